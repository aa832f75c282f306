/* cc.h - the coordinator (iroute-cc): instances, leases, epochs of the
 * routing table, the mirror, latency statistics; and its HTTP API, served
 * as the in-process handler of the watchdog (mode iroute).
 *
 * Why this design: the coordinator is never on the request path, so it can
 * be simple and correct first: one mutex over all state, and one immutable,
 * reference-counted snapshot per epoch holding every function's local
 * table already as JSON text.  A long-poll that sees a newer epoch takes a
 * reference and hands the snapshot's bytes to the HTTP layer without a copy,
 * so one epoch change reaches a thousand waiting instances at the cost of a
 * thousand writes.  Changes are batched: a registration, leave, expiry or
 * suspect removal marks the state dirty, and a publisher thread makes the
 * next epoch after IROUTE_EPOCH_BATCH_MS, so a burst of registrations is
 * one epoch, one table build and one mirror write rather than thousands.
 * The mirror has its own thread and always writes the newest snapshot: a
 * slow or absent ZooKeeper delays the mirror, never an instance.
 *
 * Threads: the watchdog's connection threads call ir_cc_handle(); the
 * publisher, the lease reaper and the mirror writer are started by
 * ir_cc_start().  Long-polls wait on a condition variable, so their number
 * is bounded by the watchdog's connection limit, not by a worker pool.
 *
 * Epochs only grow: the first epoch is one above the mirror's, and an
 * instance that reports a higher epoch (since=, or "epoch" at registration:
 * it saw a coordinator whose last epochs never reached the mirror) lifts
 * the next epoch above it.  The mirror never holds two different tables
 * under one epoch, and a store that finds a newer epoch there (another
 * coordinator) is refused: this one then continues above that epoch.
 */
#ifndef IROUTE_CC_H
#define IROUTE_CC_H
#include <stddef.h>
#include <stdint.h>

#include "iroute/workflow.h"
#include "mirror.h"
#include "watchdog.h"

struct ir_cc_params {
	uint32_t lease_ms;	/* IROUTE_LEASE_MS: an instance that does not poll for this long is removed */
	uint32_t poll_ms;	/* IROUTE_POLL_MS: longest wait of one long-poll */
	uint32_t batch_ms;	/* IROUTE_EPOCH_BATCH_MS: changes within this make one epoch */
	uint32_t probe_ms;	/* how long a suspect's probe may take */
	const uint8_t *token;	/* the cluster token (copied) */
	size_t token_len;
};

struct ir_cc;

/* Take @wf and @m (freed by ir_cc_free(), also on failure), load the
 * mirror (its instances get one lease to re-confirm), publish the first
 * epoch and start the threads.  A mirror that cannot be read (ZooKeeper
 * away) is logged and skipped: the coordinator serves with an empty table
 * and the epoch starts above what it learns later.  Returns 0 or -errno
 * with a message. */
int ir_cc_start(struct ir_cc **cc, struct ir_workflow *wf, struct ir_mirror *m,
		const struct ir_cc_params *p, char *err, size_t errlen);

/* Stop the threads (waking every long-poll), then free.  NULL is fine. */
void ir_cc_free(struct ir_cc *cc);

/* The watchdog handler: serves /v1/... (see README "The coordinator"). */
int ir_cc_handle(void *cc, const struct ir_wd_call *call, struct ir_wd_reply *reply);

#endif
