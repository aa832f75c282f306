/* cctable.h - one function's local routing table, as JSON text: built by
 * the coordinator for every epoch, and by an instance from the ZooKeeper
 * mirror when the coordinator cannot be reached at start-up (the same
 * code, so both give the same table).
 *
 * The local table of function F:
 *   {"epoch":E,"workflow":"w","function":"F","role":"function",
 *    "routes":{"S1":[inst,...],"S2":[...],"F":[...]},"entries":[...]}
 * routes: every successor of F in "next" order, then F itself when F is a
 * join (a branch that reaches an instance which does not own the request
 * under its table is forwarded to the owner); "entries": the entry
 * instances (a sink's output, and any function's error, go straight back
 * to the entry that took the request).
 * The entry role ("function":null,"role":"entry") routes to the
 * workflow's entry functions.  inst is the instance object the coordinator
 * made at registration (see README "The coordinator").
 */
#ifndef IROUTE_CCTABLE_H
#define IROUTE_CCTABLE_H
#include <stddef.h>
#include <stdint.h>

#include "iroute/workflow.h"

/* @fn: a function index of @wf, or -1 for the entry role.  @fnlists[i]:
 * the JSON array of function i's instances (borrowed; NULL = "[]");
 * @entries: the entry instances' array (NULL = "[]").  Returns malloc'ed
 * text (its length in *@len when @len is not NULL), or NULL when out of
 * memory. */
char *ir_cc_table_json(const struct ir_workflow *wf, int fn, uint64_t epoch,
		       const char *const *fnlists, const char *entries, size_t *len);

#endif
