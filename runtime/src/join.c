/* join.c - the join collector and done set (see join.h for the design).
 *
 * Layout.  Every request known to the collector, pending or done, is one
 * struct jent, found through the hash table `tab` (otab.h) and held in exactly one
 * of the two heaps (`pend` or `done`), where it keeps its own index `pos`.
 * A pending request's branch slots are one block of k buffer pointers, then
 * k lengths, then a bitmap of the branches present; READY passes the block
 * on as struct ir_join_ready's buf/len, so ir_join_ready_free() frees
 * buf[0..k-1] and then buf alone.
 *
 * Every add that may need more room reserves it (table slot, heap slot)
 * before changing anything, so a failed allocation leaves the collector as
 * it was.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "join.h"
#include "otab.h"

#define DONE_PER_PENDING 4u

_Static_assert(sizeof(void *) % _Alignof(size_t) == 0, "lengths follow the pointers");
_Static_assert(sizeof(size_t) % _Alignof(uint64_t) == 0, "the bitmap follows the lengths");

struct jent {
	uint64_t req;
	uint64_t deadline;
	size_t pos;   /* index in its heap */
	size_t bytes; /* payload held (pending only) */
	uint32_t k, have;
	void **buf; /* pending: the branch block; done: NULL */
};

struct ir_join {
	struct ir_otab tab; /* every request known, pending or done */
	struct ir_heap pend, done;
	size_t max_pending, max_bytes, max_done;
	struct ir_join_stats st;
};

/* ---- the branch block ---- */

static size_t *blk_len(void **buf, uint32_t k)
{
	return (size_t *)(buf + k);
}

static uint64_t *blk_bits(void **buf, uint32_t k)
{
	return (uint64_t *)(blk_len(buf, k) + k);
}

static void **blk_new(uint32_t k)
{
	size_t words = (k + 63u) / 64u;
	return calloc(1, (size_t)k * (sizeof(void *) + sizeof(size_t)) + words * sizeof(uint64_t));
}

static bool blk_has(void **buf, uint32_t k, uint32_t i)
{
	return (blk_bits(buf, k)[i / 64u] >> (i % 64u)) & 1u;
}

static void blk_put(void **buf, uint32_t k, uint32_t i, void *p, size_t len)
{
	buf[i] = p;
	blk_len(buf, k)[i] = len;
	blk_bits(buf, k)[i / 64u] |= (uint64_t)1 << (i % 64u);
}

static void blk_free(void **buf, uint32_t k)
{
	if (!buf)
		return;
	for (uint32_t i = 0; i < k; i++)
		free(buf[i]);
	free(buf);
}

/* ---- deadline order (heap.h) ---- */

static bool jent_before(const void *a, const void *b, const void *ctx)
{
	(void)ctx;
	return ((const struct jent *)a)->deadline < ((const struct jent *)b)->deadline;
}

static size_t *jent_pos(void *e, const void *ctx)
{
	(void)ctx;
	return &((struct jent *)e)->pos;
}

/* ---- the table ---- */

static uint64_t jent_hash(const void *e)
{
	return ir_mix64(((const struct jent *)e)->req);
}

static struct jent *lookup(const struct ir_join *j, uint64_t req)
{
	const struct ir_otab *t = &j->tab;
	for (size_t i = ir_mix64(req) & t->mask; t->slot[i]; i = (i + 1) & t->mask)
		if (((struct jent *)t->slot[i])->req == req)
			return t->slot[i];
	return NULL;
}

/* ---- requests ---- */

/* Out of the table and its heap, buffers freed. */
static void forget(struct ir_join *j, struct jent *e, struct ir_heap *h)
{
	ir_heap_del(h, e);
	ir_otab_del(&j->tab, e);
	blk_free(e->buf, e->k);
	free(e);
}

static void forget_done(struct ir_join *j, struct jent *e)
{
	forget(j, e, &j->done);
	j->st.done--;
}

/* Pending -> done: the block goes to @out, the entry into the done heap
 * (room reserved), evicting the earliest done request when the set is
 * full. */
static void complete(struct ir_join *j, struct jent *e, struct ir_join_ready *out)
{
	if (j->st.done >= j->max_done) {
		forget_done(j, ir_heap_top(&j->done));
		j->st.evicted++;
	}
	out->req = e->req;
	out->k = e->k;
	out->buf = e->buf;
	out->len = blk_len(e->buf, e->k);
	e->buf = NULL;
	e->bytes = 0;
	ir_heap_push(&j->done, e);
	j->st.done++;
	j->st.ready++;
}

static int refuse(struct ir_join *j, void *buf, int err)
{
	free(buf);
	j->st.refused++;
	return err;
}

static int drop_dup(struct ir_join *j, void *buf)
{
	free(buf);
	j->st.dups++;
	return IR_JOIN_DUP;
}

/* A branch of a request already known. */
static int add_known(struct ir_join *j, struct jent *e, uint32_t branch, void *buf, size_t len,
		     struct ir_join_ready *out)
{
	if (!e->buf || blk_has(e->buf, e->k, branch))
		return drop_dup(j, buf);
	if (e->have + 1 == e->k) {
		if (!ir_heap_reserve(&j->done, j->done.n + 1))
			return refuse(j, buf, -ENOMEM);
		blk_put(e->buf, e->k, branch, buf, len);
		e->have++;
		ir_heap_del(&j->pend, e);
		j->st.pending--;
		j->st.bytes -= e->bytes;
		complete(j, e, out);
		return IR_JOIN_READY;
	}
	if (len > j->max_bytes - j->st.bytes)
		return refuse(j, buf, -ENOSPC);
	blk_put(e->buf, e->k, branch, buf, len);
	e->have++;
	e->bytes += len;
	j->st.bytes += len;
	return IR_JOIN_PENDING;
}

/* The first branch of a request. */
static int add_new(struct ir_join *j, uint64_t req, uint32_t k, uint32_t branch, void *buf,
		   size_t len, uint64_t deadline_ns, struct ir_join_ready *out)
{
	bool ready = k == 1;
	if (!ready && (j->st.pending >= j->max_pending || len > j->max_bytes - j->st.bytes))
		return refuse(j, buf, -ENOSPC);
	struct ir_heap *h = ready ? &j->done : &j->pend;
	if (!ir_otab_reserve(&j->tab) || !ir_heap_reserve(h, h->n + 1))
		return refuse(j, buf, -ENOMEM);
	struct jent *e = calloc(1, sizeof(*e));
	void **blk = blk_new(k);
	if (!e || !blk) {
		free(blk);
		free(e);
		return refuse(j, buf, -ENOMEM);
	}
	e->req = req;
	e->deadline = deadline_ns;
	e->k = k;
	e->have = 1;
	e->buf = blk;
	blk_put(blk, k, branch, buf, len);
	ir_otab_put(&j->tab, e);
	if (ready) {
		complete(j, e, out);
		return IR_JOIN_READY;
	}
	e->bytes = len;
	ir_heap_push(&j->pend, e);
	j->st.pending++;
	j->st.bytes += len;
	return IR_JOIN_PENDING;
}

int ir_join_add(struct ir_join *j, uint64_t req, uint32_t k, uint32_t branch, void *buf, size_t len,
		uint64_t deadline_ns, struct ir_join_ready *out)
{
	memset(out, 0, sizeof(*out));
	if (k == 0 || k > IR_JOIN_MAX_K || branch >= k || (!buf && len))
		return refuse(j, buf, -EINVAL);
	struct jent *e = lookup(j, req);
	if (e && e->k != k)
		return refuse(j, buf, -EINVAL);
	if (e)
		return add_known(j, e, branch, buf, len, out);
	return add_new(j, req, k, branch, buf, len, deadline_ns, out);
}

void ir_join_ready_free(struct ir_join_ready *r)
{
	blk_free(r->buf, r->k);
	memset(r, 0, sizeof(*r));
}

size_t ir_join_expire(struct ir_join *j, uint64_t now_ns, ir_join_expire_cb cb, void *arg)
{
	size_t n = 0;
	struct jent *e;
	while ((e = ir_heap_top(&j->pend)) && e->deadline <= now_ns) {
		uint64_t req = e->req;
		uint32_t have = e->have, k = e->k;
		j->st.pending--;
		j->st.bytes -= e->bytes;
		j->st.expired++;
		forget(j, e, &j->pend);
		n++;
		if (cb)
			cb(arg, req, have, k);
	}
	while ((e = ir_heap_top(&j->done)) && e->deadline <= now_ns)
		forget_done(j, e);
	return n;
}

uint64_t ir_join_next_deadline(const struct ir_join *j)
{
	const struct jent *e = ir_heap_top(&j->pend);
	if (!e)
		return 0;
	return e->deadline ? e->deadline : 1;
}

void ir_join_stats(const struct ir_join *j, struct ir_join_stats *s)
{
	*s = j->st;
}

int ir_join_new(struct ir_join **jp, size_t max_pending, size_t max_bytes)
{
	*jp = NULL;
	if (!max_pending || !max_bytes || max_pending > SIZE_MAX / 64 / DONE_PER_PENDING)
		return -EINVAL;
	struct ir_join *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	if (ir_otab_init(&j->tab, jent_hash) != 0) {
		free(j);
		return -ENOMEM;
	}
	j->pend = j->done = (struct ir_heap){.less = jent_before, .pos = jent_pos};
	j->max_pending = max_pending;
	j->max_bytes = max_bytes;
	j->max_done = max_pending * DONE_PER_PENDING;
	*jp = j;
	return 0;
}

void ir_join_free(struct ir_join *j)
{
	if (!j)
		return;
	for (size_t i = 0; i <= j->tab.mask; i++) {
		struct jent *e = j->tab.slot[i];
		if (!e)
			continue;
		blk_free(e->buf, e->k);
		free(e);
	}
	ir_otab_release(&j->tab);
	ir_heap_release(&j->pend);
	ir_heap_release(&j->done);
	free(j);
}
