/* join.h - one instance's join bookkeeping: collects the k branches of a
 * request for a function with k predecessors, hands them over once, in
 * branch (predecessor) order, and drops duplicates (DESIGN.md §3, §4
 * "Delivery").
 *
 * Every input goes through here, plain functions too (k = 1): the same
 * path then gives every function the same duplicate rule, keyed by
 * (request id, branch) - the function is implied, one collector serves one
 * function.  A request is in one of two states:
 *   pending - some of its k branches are held, each a malloc()ed buffer;
 *   done    - all k arrived and were handed out (IR_JOIN_READY); only its
 *             id, k and deadline are kept, so that a late copy of any
 *             branch (a resend after a lost ACK) answers IR_JOIN_DUP
 *             instead of running the function a second time.
 * Both are forgotten at the request's deadline (ir_join_expire()); a
 * pending request that expires is reported through a callback so the
 * caller can answer the entry with an error.
 *
 * Bounds: at most max_pending pending requests and max_bytes of buffered
 * payload in total (payload only: the bookkeeping adds about 24 bytes per
 * branch slot and 64 per request); an add that would pass either is
 * refused with -ENOSPC and changes nothing.  The add that completes a
 * request is never refused for space: it frees space.  The done set holds
 * at most 4 * max_pending requests; when it is full, the one with the
 * earliest deadline is forgotten early (counted in "evicted"): a duplicate
 * of it arriving later would run the function again - at-least-once
 * execution, which the entry's exactly-once answer absorbs.
 *
 * Why this design: a hash table keyed by request id (open addressing,
 * linear probing, backward-shift deletion, the id run through a 64-bit
 * mixer because ids are only *meant* to be random) gives O(1) lookups,
 * and two binary min-heaps on deadline (pending, done) make expiry cost
 * O(log n) per request dropped and O(1) when nothing is due, so the event
 * loop can call it on every wake-up and arm its timer from
 * ir_join_next_deadline().  A timer wheel was rejected: deadlines are
 * per-request and arbitrary, and a wheel needs a resolution and cascading
 * for far deadlines, while a heap of ~10^5 entries is ~17 levels.
 * Scanning the table at each tick was rejected as O(n) per tick.  A
 * pending request's branch slots are one allocation that the READY result
 * takes over as is, so completing a request allocates nothing.
 *
 * Threads: none.  The instance's I/O thread owns a collector and is the
 * only one to call into it; nothing here locks.
 */
#ifndef IROUTE_JOIN_H
#define IROUTE_JOIN_H
#include <stddef.h>
#include <stdint.h>

#define IR_JOIN_MAX_K 1024u /* most predecessors a join may have */

/* ir_join_add() results (negative values are -errno). */
#define IR_JOIN_PENDING 0 /* stored, branches still missing */
#define IR_JOIN_READY 1	  /* all k present: see struct ir_join_ready */
#define IR_JOIN_DUP 2	  /* already held or already done: dropped */

struct ir_join;

/* The k inputs of a completed request, owned by the caller: buf[i] (len[i]
 * bytes) is branch i's buffer, i = 0..k-1.  Release with
 * ir_join_ready_free(). */
struct ir_join_ready {
	uint64_t req;
	uint32_t k;
	void **buf;
	size_t *len;
};

struct ir_join_stats {
	uint64_t pending; /* requests waiting for branches (now) */
	uint64_t bytes;	  /* payload held by them (now) */
	uint64_t done;	  /* completed requests remembered (now) */
	uint64_t ready;	  /* IR_JOIN_READY returned (total) */
	uint64_t dups;	  /* IR_JOIN_DUP returned (total) */
	uint64_t expired; /* pending requests dropped at their deadline (total) */
	uint64_t refused; /* adds that returned -errno (total) */
	uint64_t evicted; /* done requests forgotten before their deadline (total) */
};

/* A collector holding at most @max_pending pending requests and
 * @max_bytes of their payload (both > 0).  0, -EINVAL, or -ENOMEM. */
int ir_join_new(struct ir_join **j, size_t max_pending, size_t max_bytes);

/* Frees every buffer still held, then @j (NULL is a no-op). */
void ir_join_free(struct ir_join *j);

/* Branch @branch of the @k inputs of request @req, whose deadline is
 * @deadline_ns (CLOCK_MONOTONIC; the first branch of a request sets it,
 * later branches' values are ignored).  @buf (@len bytes; NULL when @len
 * is 0) is taken in every case: stored, handed out in @out, or freed.
 * *@out is zeroed, then filled only on IR_JOIN_READY.
 *
 * Returns IR_JOIN_PENDING, IR_JOIN_READY, IR_JOIN_DUP, or:
 *   -EINVAL  k == 0, k > IR_JOIN_MAX_K, branch >= k, buf NULL with len > 0,
 *            or k differs from what the request said before;
 *   -ENOSPC  max_pending or max_bytes would be exceeded (nothing stored);
 *   -ENOMEM  (nothing stored).
 * The caller drops frames already past their deadline before calling:
 * a request forgotten at its deadline would otherwise start over. */
int ir_join_add(struct ir_join *j, uint64_t req, uint32_t k, uint32_t branch, void *buf, size_t len,
		uint64_t deadline_ns, struct ir_join_ready *out);

/* Frees the buffers of @r and zeroes it (a zeroed @r is a no-op). */
void ir_join_ready_free(struct ir_join_ready *r);

/* Called for each pending request dropped at its deadline, after its
 * buffers are freed: @have of its @k branches had arrived.  Must not call
 * into the collector. */
typedef void (*ir_join_expire_cb)(void *arg, uint64_t req, uint32_t have, uint32_t k);

/* Drops every pending request whose deadline is <= @now_ns (calling @cb,
 * which may be NULL, for each) and forgets every done request whose
 * deadline is <= @now_ns.  Returns the number of pending requests
 * dropped.  O(1) when nothing is due, O(log n) per request dropped. */
size_t ir_join_expire(struct ir_join *j, uint64_t now_ns, ir_join_expire_cb cb, void *arg);

/* The earliest deadline of a pending request, or 0 when none is pending
 * (a pending deadline of 0 reads as 1).  Done requests do not arm a
 * timer: they are bounded, and forgotten at the next ir_join_expire(). */
uint64_t ir_join_next_deadline(const struct ir_join *j);

void ir_join_stats(const struct ir_join *j, struct ir_join_stats *s);

#endif
