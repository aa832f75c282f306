/* outbox.h - one instance's unacknowledged outputs: each is kept until the
 * receiver ACKs it, resent to the next choice when the ACK is late or the
 * send failed, and dropped at its request's deadline (DESIGN.md §4
 * "Delivery").
 *
 * An output is keyed by (request id, destination function, branch) - the
 * same key the receiver drops duplicates by - and held at most once.  Its
 * life:
 *   ir_outbox_add()       first send to instance A: attempts 1, tried {A},
 *                         ACK due at now + ack_timeout;
 *   ir_outbox_ack()       the receiver took it: freed;
 *   ir_outbox_failed()    the send to it failed: due for resend now;
 *   ir_outbox_due()       the outputs whose ACK is overdue (or that failed),
 *                         each with the instances tried so far, for the
 *                         caller to exclude when it picks the next one
 *                         (route.h: ir_route_pick(), ir_route_rendezvous());
 *   ir_outbox_resent()    sent again to B: attempts++, tried {A, B}, a new
 *                         ACK deadline;
 *   ir_outbox_give_up()   no choice left, or attempts exhausted: freed, the
 *                         caller answers the request with an error;
 *   ir_outbox_expire()    the request's deadline passed: freed, reported
 *                         through a callback.
 * An output past its request's deadline is never returned by
 * ir_outbox_due(): resending it is pointless, only expiry is left.
 *
 * Bounds: at most max_entries outputs and max_bytes of payload in total
 * (payload only: the bookkeeping adds about 100 bytes per output plus
 * 8 bytes and one copied id per attempt slot); an add that would pass
 * either is refused with -ENOSPC and changes nothing.  At most
 * max_attempts sends per output (ir_outbox_resent() refuses more).
 *
 * Why this design: the same shape as join.c - a hash table keyed by the
 * mixed 64-bit key (open addressing, linear probing, backward-shift
 * deletion) for O(1) add/ack/lookup, and two binary min-heaps, one on the
 * ACK deadline and one on the request deadline, so that ir_outbox_due()
 * and ir_outbox_expire() cost O(log n) per output returned or dropped and
 * O(1) when nothing is due; the event loop arms its timer from
 * ir_outbox_next_wakeup().  A failed send just moves the output's ACK
 * deadline to now, so "due" has a single order.  Ties break by the order
 * in which deadlines were set, so the order is deterministic.  Rejected: a
 * per-peer list of outputs (it makes ir_outbox_peer_lost() O(k) but costs
 * a second index to keep right on every resend, for an event - a peer
 * lost - that is rare; ir_outbox_peer_lost() scans the table, O(n));
 * a timer wheel (see join.h); a retry queue separate from the ACK heap
 * (two orders to merge).  Each output is one allocation holding its
 * max_attempts id slots, so recording a resend allocates only the id copy.
 *
 * Threads: none.  The instance's I/O thread owns an outbox and is the only
 * one to call into it; nothing here locks.
 */
#ifndef IROUTE_OUTBOX_H
#define IROUTE_OUTBOX_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IR_OUTBOX_ID_MAX 80u	   /* an instance id is shorter than this */
#define IR_OUTBOX_MAX_ATTEMPTS 64u /* the most max_attempts may be */

struct ir_outbox;

/* An output due for resend, as ir_outbox_due() reports it.  Everything
 * pointed to is borrowed from the outbox: valid until the output is freed
 * (ack, give_up, expire, ir_outbox_free); tried[] gains an element on
 * ir_outbox_resent() but never moves. */
struct ir_outbox_item {
	uint64_t req;
	uint16_t fn, branch;
	bool exhausted;	   /* attempts >= max_attempts: give up */
	uint32_t attempts; /* sends so far (>= 1) */
	const void *payload;
	size_t len;
	uint64_t deadline_ns;	  /* the request's deadline */
	const char *const *tried; /* the instance ids sent to, oldest first */
	size_t ntried;		  /* == attempts */
};

struct ir_outbox_stats {
	uint64_t entries; /* outputs held (now) */
	uint64_t bytes;	  /* their payload (now) */
	uint64_t acked;	  /* freed by an ACK (total) */
	uint64_t resent;  /* ir_outbox_resent() calls that succeeded (total) */
	uint64_t expired; /* dropped at their request's deadline (total) */
	uint64_t gave_up; /* freed by ir_outbox_give_up() (total) */
	uint64_t refused; /* adds that returned -errno, -EEXIST included (total) */
};

/* An outbox of at most @max_entries outputs and @max_bytes of payload
 * (both > 0), expecting an ACK within @ack_timeout_ms (> 0) of each send
 * and sending each output at most @max_attempts times (1 ..
 * IR_OUTBOX_MAX_ATTEMPTS).  0, -EINVAL, or -ENOMEM; *@o is NULL on error. */
int ir_outbox_new(struct ir_outbox **o, size_t max_entries, size_t max_bytes,
		  uint32_t ack_timeout_ms, uint32_t max_attempts);

/* Frees every output still held, then @o (NULL is a no-op). */
void ir_outbox_free(struct ir_outbox *o);

/* Keeps output (@req, @fn, @branch), just sent to @instance_id (copied;
 * shorter than IR_OUTBOX_ID_MAX), of a request whose deadline is
 * @deadline_ns (CLOCK_MONOTONIC, like @now_ns).  @payload (@len bytes,
 * malloc()ed; NULL when @len is 0) is taken in every case: kept, or freed
 * on error.  Returns 0 or:
 *   -EINVAL  @instance_id NULL, "" or too long, @payload NULL with @len > 0;
 *   -EEXIST  this key is held already (a second copy: dropped);
 *   -ENOSPC  max_entries or max_bytes would be exceeded (nothing stored);
 *   -ENOMEM  (nothing stored). */
int ir_outbox_add(struct ir_outbox *o, uint64_t req, uint16_t fn, uint16_t branch, void *payload,
		  size_t len, uint64_t deadline_ns, const char *instance_id, uint64_t now_ns);

/* The receiver ACKed: the output is freed.  0, or -ENOENT when it is not
 * held (a duplicate or late ACK: nothing to do). */
int ir_outbox_ack(struct ir_outbox *o, uint64_t req, uint16_t fn, uint16_t branch);

/* The send of the output failed at @now_ns: it is due from @now_ns on (an
 * ACK deadline already earlier stays).  0 or -ENOENT. */
int ir_outbox_failed(struct ir_outbox *o, uint64_t req, uint16_t fn, uint16_t branch,
		     uint64_t now_ns);

/* Every output whose last attempt went to @instance_id and whose request
 * deadline is after @now_ns is marked failed at @now_ns, as by
 * ir_outbox_failed(); returns how many.  O(n): a scan of the table (rare:
 * a connection lost or a peer declared dead). */
size_t ir_outbox_peer_lost(struct ir_outbox *o, const char *instance_id, uint64_t now_ns);

/* Fills @items with at most @max outputs whose ACK deadline is <= @now_ns
 * and whose request deadline is after @now_ns, earliest ACK deadline
 * first; returns how many.  Changes nothing the caller sees: an output
 * stays due, and is returned again, until the caller calls
 * ir_outbox_resent() or ir_outbox_give_up() (or ack) for it - the caller
 * must do one of them for every item, or ir_outbox_next_wakeup() stays in
 * the past.  O(log n) per output returned, plus O(log n) once per output
 * found past its request deadline (call ir_outbox_expire() first and
 * there are none). */
size_t ir_outbox_due(struct ir_outbox *o, uint64_t now_ns, struct ir_outbox_item *items,
		     size_t max);

/* The output was sent again, to @instance_id (copied, as for add), at
 * @now_ns: attempts++, @instance_id appended to tried, ACK due at now +
 * ack_timeout.  0 or:
 *   -ENOENT  not held;
 *   -EINVAL  @instance_id NULL, "" or too long;
 *   -ENOSPC  attempts already reached max_attempts (give up instead);
 *   -ENOMEM.
 * Nothing changes on error. */
int ir_outbox_resent(struct ir_outbox *o, uint64_t req, uint16_t fn, uint16_t branch,
		     const char *instance_id, uint64_t now_ns);

/* No further attempt: the output is freed; its request's deadline is
 * stored in *@deadline_ns (when not NULL) so the caller can answer the
 * request with an error.  0 or -ENOENT (*@deadline_ns untouched). */
int ir_outbox_give_up(struct ir_outbox *o, uint64_t req, uint16_t fn, uint16_t branch,
		      uint64_t *deadline_ns);

/* Called for each output dropped at its request's deadline, after it is
 * freed; @attempts sends had been made.  Must not call into the outbox. */
typedef void (*ir_outbox_expire_cb)(void *arg, uint64_t req, uint16_t fn, uint16_t branch,
				    uint32_t attempts);

/* Drops every output whose request deadline is <= @now_ns, earliest
 * first, calling @cb (may be NULL) for each; returns how many.  O(1) when
 * none is due, O(log n) per output dropped. */
size_t ir_outbox_expire(struct ir_outbox *o, uint64_t now_ns, ir_outbox_expire_cb cb, void *arg);

/* When the caller should next call ir_outbox_due()/ir_outbox_expire(): the
 * earliest ACK deadline or request deadline held, or 0 when the outbox is
 * empty (a deadline of 0 reads as 1).  May be in the past. */
uint64_t ir_outbox_next_wakeup(const struct ir_outbox *o);

void ir_outbox_stats(const struct ir_outbox *o, struct ir_outbox_stats *s);

#endif
