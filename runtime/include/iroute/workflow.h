/* workflow.h - the workflow DAG (workflow.json), parsed and validated: the
 * coordinator's input.
 *
 * Why this design: only the coordinator reads workflow.json (DESIGN §3);
 * it parses it once into this flat, index-based struct, and hands every
 * function's instances just their slice (ir_workflow_slice_json()) when
 * they register.  iRoute needed a hand-synced copy of the DAG in every
 * image; here the file is the single source and the slice is derived.
 * Everything is validated up front, so the data plane never meets a
 * dangling name, a cycle or an unreachable function: a bad file is refused
 * at start-up with one message naming the function and the rule.
 * Functions are referred to by index (uint32_t), not by name, so joins and
 * fan-outs are array look-ups.  Rejected: a name-keyed hash of nodes
 * (unstable order, and the join input order must be stable and
 * documented); a hand-written JSON parser (libcjson is in Debian and small;
 * what it lacks - a nesting limit below 1000, duplicate-key detection,
 * line/column of errors - is added here).
 *
 * The two accepted forms (exactly one of "dag" / "functions"):
 *
 *   iRoute's stage list; every function of stage i feeds every function of
 *   stage i+1, stage 0 is the entry:
 *     {"name": "x", "dag": [["a"], ["b", "c"], ["d"]]}
 *
 *   explicit; "entry" is required with it (a function left out of every
 *   "next" by mistake must not silently become a second entry):
 *     {"name": "finra",
 *      "functions": {"marketdata": {"next": ["margin-balance"]},
 *                    "lastpx": {"next": ["margin-balance"]},
 *                    "margin-balance": {}},
 *      "entry": ["marketdata", "lastpx"]}
 *
 * Top-level keys: name, dag, functions, entry; anything else is refused
 * (a typo like "dags" must not give an empty workflow).  A function object
 * has only "next" (optional, default []).  "name" is optional in both
 * forms; its default is the caller's (ir_workflow_load(): the file's base
 * name without ".json"), else "workflow".  "entry" is refused with "dag".
 *
 * Ordering (stable, and the same for both forms of one DAG):
 *   - Function indices: the stage form numbers functions stage by stage, in
 *     list order within a stage.  The explicit form numbers the "entry"
 *     functions first, in "entry" order, then the other functions in the
 *     order of the "functions" object in the file.  Either way the entries
 *     are indices 0..nentry-1 and entry[i] == i.
 *   - next: the stage form lists stage i+1 in list order; the explicit
 *     form keeps the "next" order of the file.
 *   - prev: ascending function index (the order in which predecessors
 *     appear in the function list).  A function with nprev > 1 is a
 *     **join**: it runs once per request with nprev inputs in exactly this
 *     order; input k comes from prev[k], and k is that predecessor's
 *     "branch" in the slice JSON.  In the explicit form this makes the
 *     "entry" order the join order among entries.
 *   - topo: Kahn's algorithm, always taking the ready function with the
 *     lowest index; for the stage form this is 0..nfns-1.
 *   - sinks (no successors): ascending index.
 *
 * Validation (each refusal is -EINVAL with one message; see workflow.c for
 * the full list): valid JSON (errors give line and column), no NUL bytes or
 * \u0000, at most IR_WF_MAX_BYTES, nesting at most IR_WF_MAX_DEPTH, no
 * duplicate keys anywhere cJSON would keep them, names are Kubernetes DNS
 * labels ([a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters: they are
 * OpenFaaS function names), no function listed twice, every successor and
 * entry is a function, no successor listed twice, at most IR_WF_MAX_FNS
 * functions and IR_WF_MAX_NEXT successors per function, no cycle
 * (including a self-loop), at least one entry, an entry has no
 * predecessor, every function is reachable from an entry.
 *
 * Messages: "<source>: <what>" until the workflow's name is known, then
 * "<source>workflow "<name>": <what>", where <source> is "workflow.json: "
 * for ir_workflow_parse() (dropped once the name is known) and "<path>: "
 * for ir_workflow_load().  Names from the file are quoted, with control
 * and non-ASCII bytes escaped as \xNN.  Examples:
 *   workflow "finra": function "b": successor "zz" is not a function
 *   workflow "x": cycle: a -> b -> c -> a
 *   workflow.json: line 3, column 7: invalid JSON near "]}"
 *
 * Line and column (1-based, columns in bytes) are those of the position
 * cJSON reports, which for a bad object key is just past the offending
 * character.
 *
 * Thread safety: the functions keep no state; a parsed workflow is
 * read-only and may be shared.  The error position comes from
 * cJSON_ParseWithOpts()'s return_parse_end, never from the global
 * cJSON_GetErrorPtr() (cJSON still writes that global on a failed parse;
 * it is not read here).
 */
#ifndef IROUTE_WORKFLOW_H
#define IROUTE_WORKFLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IR_WF_MAX_BYTES (1u << 20) /* workflow.json, 1 MiB */
#define IR_WF_MAX_DEPTH 16	   /* JSON nesting; the explicit form needs 4 */
#define IR_WF_MAX_FNS 1024
#define IR_WF_MAX_NEXT 256 /* successors of one function */
#define IR_WF_MAX_NAME 63  /* a Kubernetes DNS label */

struct ir_wf_fn {
	char *name;	  /* owned; a valid DNS label */
	uint32_t *next;	  /* successor indices, nnext of them (NULL when 0) */
	size_t nnext;	  /* <= IR_WF_MAX_NEXT */
	uint32_t *prev;	  /* predecessor indices, ascending (NULL when 0) */
	size_t nprev;	  /* > 1: a join */
	bool entry, sink; /* entry: nprev == 0 and listed as entry; sink: nnext == 0 */
};

/* Invariants after a successful parse: 1 <= nfns <= IR_WF_MAX_FNS; nentry
 * >= 1 and entry[i] == i; no cycle; every function reachable from an
 * entry; nsinks >= 1; topo is a permutation of 0..nfns-1 in which every
 * function comes after its predecessors. */
struct ir_workflow {
	char *name; /* owned */
	struct ir_wf_fn *fns;
	size_t nfns;
	uint32_t *entry; /* ascending, see above */
	size_t nentry;
	uint32_t *topo; /* nfns */
	uint32_t *sinks;
	size_t nsinks;
};

/* Parse and validate @json (@len bytes, borrowed; need not be
 * NUL-terminated; a leading UTF-8 byte order mark is skipped).
 * @default_name (borrowed; NULL = "workflow") is used when the file has no
 * "name"; it must then be a valid name itself.  @wf need not be
 * initialised.  Returns 0, -EINVAL with the message in @err (see above),
 * or -ENOMEM.  On error @wf is zeroed and holds nothing to free; on
 * success free it with ir_workflow_free().  @err may be NULL. */
int ir_workflow_parse(const char *json, size_t len, const char *default_name,
		      struct ir_workflow *wf, char *err, size_t errlen);

/* Read @path (at most IR_WF_MAX_BYTES) and ir_workflow_parse() it with the
 * file's base name without ".json" as the default name.  Every message
 * starts with "<path>: ".  Returns 0, -EINVAL, -ENOMEM, or -errno of
 * open()/read() (message e.g. "<path>: open(): No such file or
 * directory"). */
int ir_workflow_load(const char *path, struct ir_workflow *wf, char *err, size_t errlen);

/* Free what @wf owns and zero it.  Safe on a zeroed struct and twice. */
void ir_workflow_free(struct ir_workflow *wf);

/* The index of function @name, or -1. */
int ir_workflow_find(const struct ir_workflow *wf, const char *name);

/* The canonical JSON of @wf in the explicit form, compact, functions in
 * index order, each with its "next" (also when empty), then "entry":
 *   {"name":"x","functions":{"a":{"next":["b","c"]},...,"d":{"next":[]}},
 *    "entry":["a"]}
 * This is what the coordinator serves at /v1/workflow.  Both forms of one
 * DAG give the same text, and parsing it gives the same workflow again.
 * Returns a malloc'ed string (caller frees), or NULL when out of memory. */
char *ir_workflow_to_json(const struct ir_workflow *wf);

/* The slice of @wf that function @fn's instances need, handed to an
 * instance when it registers; compact JSON, malloc'ed (caller frees):
 *   {"workflow":"finra","function":"lastpx","entry":true,"sink":false,
 *    "join":false,"index":1,
 *    "next":[{"name":"margin-balance","index":5,"join":true,"branch":1,
 *             "inputs":5}],
 *    "prev":[]}
 * "index" is the function's index in the workflow (frames carry it as
 * src_fn; an entry maps a sink's RESULT back to the sink by it).
 * "join" (top level): @fn itself has more than one predecessor, and
 * "prev" lists them in input order.  For each successor: "join" whether it
 * is a join, "inputs" its number of predecessors, "branch" the position of
 * @fn among them (its input index there; 0 for a non-join).  Returns NULL
 * for an unknown @fn or when out of memory. */
char *ir_workflow_slice_json(const struct ir_workflow *wf, const char *fn);

#endif
