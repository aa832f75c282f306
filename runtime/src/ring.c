/* ring.c - SPSC record ring over shared memory; protocol in ring.h. */
#include "ring.h"

#include <errno.h>
#include <string.h>

static inline uint64_t ring_off(const struct ir_ring *r, uint64_t pos)
{
	return pos & (r->cap - 1);
}

static inline struct ir_ring_rec *ring_rec(const struct ir_ring *r, uint64_t pos)
{
	return (struct ir_ring_rec *)(void *)(r->data + ring_off(r, pos));
}

void ir_ring_attach(struct ir_ring *r, struct ir_ring_ctl *ctl, uint8_t *data, uint64_t cap)
{
	memset(r, 0, sizeof(*r));
	r->ctl = ctl;
	r->data = data;
	r->cap = cap;
	r->pos = atomic_load_explicit(&ctl->head, memory_order_acquire);
	r->head = r->pos;
}

int64_t ir_ring_space(struct ir_ring *r, uint64_t want)
{
	uint64_t used = r->pos - r->head;
	if (r->cap - used >= want)
		return (int64_t)(r->cap - used);
	uint64_t head = atomic_load_explicit(&r->ctl->head, memory_order_acquire);
	/* The consumer can only move forward and never past what we wrote. */
	if (head - r->head > r->pos - r->head)
		return -EPROTO;
	r->head = head;
	return (int64_t)(r->cap - (r->pos - head));
}

/* Publish a record; the caller decides about waking the consumer. */
static void publish(struct ir_ring *r, uint64_t len, uint32_t flags)
{
	struct ir_ring_rec *rec = ring_rec(r, r->pos);
	uint64_t next = r->pos + ir_ring_rec_size(len);
	rec->len = (uint32_t)len;
	rec->flags = flags;
	/* Clear the word where the consumer looks next, unless it is the header
	 * of a record not yet released (ring exactly full).  Otherwise payload
	 * bytes of an earlier lap lying there could read as a valid record -
	 * and payloads are whatever a request carried.  (ir_ring_reserve()
	 * already asked for that line, so this store rarely waits for it.) */
	if (next - r->head < r->cap)
		atomic_store_explicit(&ring_rec(r, next)->pos, 0, memory_order_relaxed);
	/* A seq_cst exchange publishes and fences at once (one xchg on x86,
	 * cheaper than a store + mfence). */
	atomic_exchange_explicit(&rec->pos, r->pos + 1, memory_order_seq_cst);
	r->pos = next;
}

void *ir_ring_reserve(struct ir_ring *r, uint64_t len)
{
	if (len > ir_ring_max_rec(r->cap))
		return NULL;
	uint64_t need = ir_ring_rec_size(len);
	uint64_t off = ring_off(r, r->pos);
	r->pad = 0;
	/* Rewind (see IR_RING_REWIND_MIN) when the ring is empty and the record
	 * fits in front of the consumer: the PAD goes out with the record. */
	if ((len >= IR_RING_REWIND_MIN || off >= IR_RING_REWIND_MIN) && off != 0 && need <= off &&
	    ir_ring_space(r, r->cap) == (int64_t)r->cap)
		r->pad = r->cap - off;
	int64_t space = ir_ring_space(r, r->pad + need);
	if (space < 0 || (uint64_t)space < r->pad + need)
		return NULL;
	r->reserved = len;
	r->resv = (uint8_t *)ring_rec(r, r->pos + r->pad) + IR_RING_REC_HDR;
	/* Fetch the next record's line for writing now, while the caller builds
	 * its payload: publish() clears a word there before it can publish. */
	__builtin_prefetch(ring_rec(r, r->pos + r->pad + need), 1);
	return r->resv;
}

int ir_ring_commit(struct ir_ring *r, uint64_t len, uint32_t flags)
{
	if (r->pad)
		publish(r, r->pad - IR_RING_REC_HDR, IR_RING_F_PAD);
	publish(r, len, flags);
	r->reserved = 0;
	r->pad = 0;
	/* The seq_cst exchange in publish() and this seq_cst load pair with
	 * ir_ring_consumer_arm(): either the consumer sees our record on its
	 * re-check, or we see it asleep. */
	if (atomic_load_explicit(&r->ctl->consumer_sleeping, memory_order_seq_cst) &&
	    atomic_exchange_explicit(&r->ctl->consumer_sleeping, 0, memory_order_acq_rel))
		return 1;
	return 0;
}

int ir_ring_producer_arm(struct ir_ring *r, uint64_t want)
{
	atomic_store_explicit(&r->ctl->producer_sleeping, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	int64_t space = ir_ring_space(r, r->cap + 1); /* force a fresh read of head */
	if (space < 0)
		return (int)space;
	if ((uint64_t)space >= want) {
		atomic_store_explicit(&r->ctl->producer_sleeping, 0, memory_order_relaxed);
		return 1;
	}
	return 0;
}

void ir_ring_producer_disarm(struct ir_ring *r)
{
	atomic_store_explicit(&r->ctl->producer_sleeping, 0, memory_order_relaxed);
}

int ir_ring_peek(struct ir_ring *r, const uint8_t **data, uint32_t *len, uint32_t *flags)
{
	for (;;) {
		struct ir_ring_rec *rec = ring_rec(r, r->pos);
		if (atomic_load_explicit(&rec->pos, memory_order_acquire) != r->pos + 1)
			return 0;
		uint32_t l = rec->len;
		if (l > ir_ring_max_rec(r->cap))
			return -EPROTO;
		uint32_t f = rec->flags;
		if (f & IR_RING_F_PAD) {
			/* Skip it; the next release publishes the head past it.  A
			 * PAD is always committed together with the record after it,
			 * so no producer is waiting for this space. */
			r->pos += ir_ring_rec_size(l);
			continue;
		}
		/* Copy what we validated: the peer may rewrite shared memory at will. */
		r->peeked = ir_ring_rec_size(l);
		*len = l;
		*flags = f;
		*data = (const uint8_t *)rec + IR_RING_REC_HDR;
		return 1;
	}
}

int ir_ring_release(struct ir_ring *r)
{
	r->pos += r->peeked;
	r->peeked = 0;
	r->head = r->pos;
	atomic_exchange_explicit(&r->ctl->head, r->pos, memory_order_seq_cst);
	if (atomic_load_explicit(&r->ctl->producer_sleeping, memory_order_seq_cst) &&
	    atomic_exchange_explicit(&r->ctl->producer_sleeping, 0, memory_order_acq_rel))
		return 1;
	return 0;
}

int ir_ring_consumer_arm(struct ir_ring *r)
{
	atomic_store_explicit(&r->ctl->consumer_sleeping, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	struct ir_ring_rec *rec = ring_rec(r, r->pos);
	if (atomic_load_explicit(&rec->pos, memory_order_acquire) == r->pos + 1) {
		atomic_store_explicit(&r->ctl->consumer_sleeping, 0, memory_order_relaxed);
		return 1;
	}
	return 0;
}

void ir_ring_consumer_disarm(struct ir_ring *r)
{
	atomic_store_explicit(&r->ctl->consumer_sleeping, 0, memory_order_relaxed);
}
