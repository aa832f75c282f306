/* ring.h - the single-producer/single-consumer record ring shared by the
 * ipc transport (both ends map the same memfd) and the rdma transport (the
 * producer RDMA-WRITEs records into the consumer's registered copy).
 *
 * Protocol sketch.  A ring is a power-of-two byte array of capacity C plus a
 * control block.  Positions are absolute 64-bit byte counts; position p lives
 * at offset p & (C-1).  The producer owns `tail` (private), the consumer
 * publishes `head` (bytes it has released).  A record starts on a 64-byte
 * boundary:
 *
 *     u64 pos | u32 len | u32 flags | len bytes of data | pad to 64
 *
 * The producer writes data, len and flags, then stores pos = the record's
 * own absolute position + 1 with release semantics: that store publishes
 * it.  The consumer polls the record at its position p and accepts it only
 * when pos == p + 1 (acquire).  Before publishing, the producer clears the
 * word at its next position (if it is free space), so the consumer's next
 * position always holds 0, the header of a record of an earlier lap (a
 * smaller value), or the next record - never stale payload bytes that a
 * request could have shaped into a fake header.  So the ring is never zeroed and there is no
 * separate tail word to bounce between caches: a 64-byte message costs the consumer two cache
 * lines.  The data array is mapped twice back to back, so every record is
 * contiguous in memory however it wraps; a record may be as large as C.
 *
 * Sleep/wake (Dekker): a consumer about to block stores consumer_sleeping=1,
 * issues a full fence and checks once more; a producer that published
 * issues a full fence and, if it swaps consumer_sleeping from 1 to 0, rings
 * the consumer's doorbell.  The same pair of steps with producer_sleeping
 * covers a producer waiting for space.  Either side may be hostile or
 * broken: everything read from shared memory is validated before use and a
 * violation is reported as -EPROTO, never trusted.
 */
#ifndef IROUTE_RING_H
#define IROUTE_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define IR_RING_ALIGN 64u
#define IR_RING_REC_HDR 16u
#define IR_RING_MIN_SIZE 4096u

#define IR_RING_F_FIRST 0x1u /* starts a message (data begins with a frame header) */
#define IR_RING_F_LAST 0x2u  /* ends a message */
#define IR_RING_F_PAD 0x4u   /* filler up to the end of the lap: release and skip */

/* A record reserved while the ring is empty starts again at the beginning of
 * the array (a PAD record fills the rest of the lap) when it is at least
 * this large or the lap is at least this far along.  A lightly loaded
 * connection then keeps reusing the same few pages, still in cache and
 * already faulted in, instead of walking cold memory around the whole ring
 * (a 1 MiB copy: ~22 us hot, ~89 us cold; a first touch of a shared page:
 * a fault of several us) - and its resident memory is what it queues, not
 * the ring size.  Under load the ring is never empty and laps as usual. */
#define IR_RING_REWIND_MIN (32u << 10)

/* The shared control block of one direction (lives in the segment). */
struct ir_ring_ctl {
	_Alignas(64) _Atomic uint64_t head; /* consumer: released up to */
	_Alignas(64) _Atomic uint32_t consumer_sleeping;
	_Alignas(64) _Atomic uint32_t producer_sleeping;
};

struct ir_ring_rec {
	_Atomic uint64_t pos;
	uint32_t len;
	uint32_t flags;
};

/* One side's private view of one direction. */
struct ir_ring {
	struct ir_ring_ctl *ctl;
	uint8_t *data;	   /* 2 * cap bytes: the array mapped twice */
	uint64_t cap;	   /* power of two */
	uint64_t pos;	   /* producer: tail; consumer: next record to read */
	uint64_t head;	   /* producer: last head seen; consumer: last head published */
	uint64_t reserved; /* producer: bytes of the open reservation, 0 if none */
	uint64_t pad;	   /* producer: PAD bytes the reservation starts after */
	uint8_t *resv;	   /* producer: data of the open reservation */
	uint64_t peeked;   /* consumer: size of the record the last peek returned */
};

/* Bytes a record of @len data bytes occupies. */
static inline uint64_t ir_ring_rec_size(uint64_t len)
{
	return (IR_RING_REC_HDR + len + IR_RING_ALIGN - 1) & ~(uint64_t)(IR_RING_ALIGN - 1);
}

/* The largest data length one record can carry in a ring of @cap bytes. */
static inline uint64_t ir_ring_max_rec(uint64_t cap)
{
	return cap - IR_RING_REC_HDR;
}

/* Attach a view.  @data must map the cap-byte array twice, back to back. */
void ir_ring_attach(struct ir_ring *r, struct ir_ring_ctl *ctl, uint8_t *data, uint64_t cap);

/* Producer.  Free bytes now (re-reads head when the cached value is short
 * of @want); -EPROTO if the consumer published an impossible head. */
int64_t ir_ring_space(struct ir_ring *r, uint64_t want);
/* Room for a record of @len data bytes: pointer to its data, or NULL when
 * the ring is too full now (or @len can never fit).  Nothing is visible to
 * the consumer until ir_ring_commit(). */
void *ir_ring_reserve(struct ir_ring *r, uint64_t len);
/* Publish the reserved record with @len <= reserved bytes and @flags.
 * Returns 1 if the consumer was asleep and must be woken, else 0. */
int ir_ring_commit(struct ir_ring *r, uint64_t len, uint32_t flags);
/* Producer about to wait for @want bytes: 1 = there is room now (do not
 * sleep), 0 = armed (the consumer will ring after releasing), <0 -EPROTO. */
int ir_ring_producer_arm(struct ir_ring *r, uint64_t want);
void ir_ring_producer_disarm(struct ir_ring *r);

/* Consumer.  Next record: 1 and its data/len/flags, 0 if none, -EPROTO if
 * the record is malformed (length beyond the ring).  PAD records are
 * skipped here; callers never see one. */
int ir_ring_peek(struct ir_ring *r, const uint8_t **data, uint32_t *len, uint32_t *flags);
/* Release the record returned by the last peek.  Returns 1 if the producer
 * was waiting for room and must be woken, else 0. */
int ir_ring_release(struct ir_ring *r);
/* Consumer about to block: 1 = a record is ready (do not sleep), 0 = armed. */
int ir_ring_consumer_arm(struct ir_ring *r);
void ir_ring_consumer_disarm(struct ir_ring *r);

#endif
