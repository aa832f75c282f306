/* route.h - where an output goes: every instance picks the successor
 * instance of each output on its own, from its local table (ccclient.h),
 * with no coordinator on the path (DESIGN §4 "Routing (local decisions)").
 *
 * Why this design: a plain successor may take any instance, so the pick
 * balances load with the sender's own view of it (its unacknowledged sends
 * per peer, which it keeps anyway for delivery) and power-of-two-choices,
 * which keeps the spread of loads small with two samples and no global
 * state; instances on the sender's node are preferred while they are
 * not much busier, because IPC beats TCP by more than a short queue costs.
 * A join successor must be the same instance for every branch of a
 * request whoever sends it, without the senders talking to each other:
 * rendezvous (highest-random-weight) hashing of (request id, instance id)
 * gives that from the table alone, moves only the requests of an instance
 * that comes or goes, and its order of choices is the retry order every
 * sender computes alike.  Rejected: a consistent-hash ring (needs virtual
 * nodes to spread evenly and a sorted ring rebuilt per epoch, for nothing
 * rendezvous lacks at the sizes of a table); capacity-weighted rendezvous
 * (-capacity / ln(u)) because a floating-point log is not bit-identical
 * across libm versions and machines, and a join's owner must be; a
 * shared load view from the coordinator (stale by an epoch, and the
 * coordinator must stay off the request path).
 *
 * Pure functions of their arguments (and of the random state for a
 * pick): no locks, no allocation, no I/O.  Cost: one pass over the
 * instances (up to three for ir_route_pick()), each comparing the
 * instance id with the @nexclude excluded ids.
 */
#ifndef IROUTE_ROUTE_H
#define IROUTE_ROUTE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iroute/ccclient.h"

/* What ir_route_pick() needs besides the table; all borrowed for the call. */
struct ir_route_ctx {
	/* This instance's node (boot id); NULL or "" = prefer no node. */
	const char *self_node;
	/* This instance's own count of unacknowledged sends to the instance
	 * @instance_id; NULL = every count is 0.  Called once for each
	 * instance that is not excluded, then once more for each of the two
	 * drawn (so it must be cheap and need not be exact: a count that
	 * moves between the calls only makes a pick less good). */
	uint32_t (*inflight)(void *arg, const char *instance_id);
	void *arg;
	/* The random state (splitmix64), owned by the caller and advanced by
	 * every pick that has a choice to make: one per thread, or used under
	 * the caller's lock, never shared unlocked.  Any value, 0 too, is a
	 * valid seed.  NULL = a per-thread state inside this module (seeded
	 * with a constant: the same sequence in every thread). */
	uint64_t *rng;
};

/* A plain successor: an index into @fn->inst, or -1 when @fn is NULL, has
 * no instance, or every instance is excluded.  @ctx NULL = no node of our
 * own, every load 0, the per-thread random state.  @exclude: @nexclude
 * instance ids not to pick (peers this sender suspects, or already tried
 * for this output); NULL is fine with @nexclude 0, and NULL entries are
 * ignored.
 *
 * The rule.  The load of an instance is inflight / capacity (capacity
 * below 1 counts as 1, above 65535 as 65535).  Among the instances not
 * excluded, let l be the least loaded on this node (node equal to
 * self_node) and g the least loaded of all.  When l exists and
 *     load(l) <= 2 * load(g) + 1
 * (exactly, in integers: inflight_l * cap_g <= (2 * inflight_g + cap_g) *
 * cap_l; with capacity 1 everywhere: inflight_l <= 2 * inflight_g + 1), the
 * candidates are the instances on this node; otherwise they are the
 * instances on other nodes (those on this node already lost: they are
 * more than twice as busy as the best one, plus one request per unit of
 * capacity, the slack that keeps an idle node's own instances preferred).
 * Then power of two choices among the candidates: one candidate is
 * returned as it is; else two distinct candidates are drawn at random,
 * each with a probability proportional to its capacity (the second among
 * the rest; uniform when the capacities are equal), and the less loaded
 * one is returned, the first drawn on a tie.  Weighted draws because a
 * uniform pair leaves a big instance out of most pairs: with capacities
 * 4, 1, 1 it could never get the 4/6 of the work its capacity asks for.
 *
 * Duplicate ids in @fn (which a coordinator's table never has) are
 * separate candidates that share one inflight count and are excluded
 * together. */
int ir_route_pick(const struct ir_route_fn *fn, const struct ir_route_ctx *ctx,
		  const char *const *exclude, size_t nexclude);

/* A join successor, by rendezvous hashing: the index into @fn->inst of
 * the instance not excluded with the highest weight
 *     w(req_id, id) = mix64(req_id ^ ir_route_hash_id(id))
 * where mix64 is splitmix64's finalizer:
 *     z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
 *     z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
 *     z ^ (z >> 31)
 * (all mod 2^64).  On equal weights the smaller id (strcmp, bytes
 * unsigned) wins; among equal ids (duplicates) the first in @fn's order.
 * -1 when @fn is NULL, empty, or everything is excluded.  Deterministic:
 * the same ids and @req_id give the same id on every machine and in every
 * process, whatever the order of @fn->inst; capacity and load play no
 * part.  Excluding the choice gives the second choice, which is also the
 * choice of the table without that instance, and so on: the retry order.
 * @exclude as for ir_route_pick(). */
int ir_route_rendezvous(const struct ir_route_fn *fn, uint64_t req_id, const char *const *exclude,
			size_t nexclude);

/* Whether @self_id is the rendezvous choice for @req_id in @fn (nothing
 * excluded): a join instance that receives a branch it does not own
 * forwards it to the owner.  False when @fn or @self_id is NULL or @fn is
 * empty. */
bool ir_route_owner(const struct ir_route_fn *fn, uint64_t req_id, const char *self_id);

/* The 64-bit hash of an instance id used by the rendezvous weight: plain
 * FNV-1a 64 over the bytes up to the NUL (offset basis
 * 0xcbf29ce484222325, prime 0x100000001b3), so another language can
 * reproduce a choice.  ir_route_hash_id("") = 0xcbf29ce484222325. */
uint64_t ir_route_hash_id(const char *id);

#endif
