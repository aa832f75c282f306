/* outbox.c - unacknowledged outputs (see outbox.h for the design).
 *
 * Layout.  Every output is one struct oent, found through the hash table
 * `tab` (otab.h), and held in the request-deadline heap (`dl`) for its whole life
 * and in the ACK-deadline heap (`ack`) until ir_outbox_due() finds it past
 * its request deadline (it is then only waiting for ir_outbox_expire(), and
 * leaves `ack` for good unless resent).  An entry keeps its index in each
 * heap in pos[]; NOPOS means "not in that heap".  Both heaps order by
 * (time, key), so equal times come out in one fixed order.
 *
 * An add reserves everything it may need (table slot, room in both heaps)
 * before changing anything, so a failed allocation leaves the outbox as it
 * was; both heaps then have room for every entry, so putting an entry back
 * into `ack` never allocates.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "otab.h"
#include "outbox.h"

#define NOPOS SIZE_MAX
#define H_ACK 0
#define H_DL 1

struct oent {
	uint64_t req;
	uint16_t fn, branch;
	uint32_t attempts;
	uint64_t t[2]; /* [H_ACK] ACK deadline, [H_DL] request deadline */
	size_t pos[2]; /* index in each heap, or NOPOS */
	void *payload;
	size_t len;
	char *tried[]; /* max_attempts slots, attempts of them used */
};

struct ir_outbox {
	struct ir_otab tab;
	struct ir_heap h[2];
	size_t max_entries, max_bytes;
	uint64_t ack_timeout_ns;
	uint32_t max_attempts;
	struct ir_outbox_stats st;
};

/* ---- keys ---- */

static uint64_t key_hash(uint64_t req, uint16_t fn, uint16_t branch)
{
	uint64_t sub = ((uint64_t)fn << 16) | branch;
	return ir_mix64(req ^ ir_mix64(sub + 0x9e3779b97f4a7c15ull));
}

static bool key_eq(const struct oent *e, uint64_t req, uint16_t fn, uint16_t branch)
{
	return e->req == req && e->fn == fn && e->branch == branch;
}

/* (time, req, fn, branch) order in heap @w. */
static bool before(const struct oent *a, const struct oent *b, int w)
{
	if (a->t[w] != b->t[w])
		return a->t[w] < b->t[w];
	if (a->req != b->req)
		return a->req < b->req;
	if (a->fn != b->fn)
		return a->fn < b->fn;
	return a->branch < b->branch;
}

/* ---- the two orders (heap.h) ---- */

static const int W_ACK = H_ACK, W_DL = H_DL; /* a heap's ctx: which of t[]/pos[] */

static bool oent_before(const void *a, const void *b, const void *ctx)
{
	return before(a, b, *(const int *)ctx);
}

static size_t *oent_pos(void *e, const void *ctx)
{
	return &((struct oent *)e)->pos[*(const int *)ctx];
}

static void heap_del(struct ir_heap *h, struct oent *e)
{
	ir_heap_del(h, e);
	*oent_pos(e, h->ctx) = NOPOS;
}

/* ---- the table (otab.h) ---- */

static uint64_t oent_hash(const void *p)
{
	const struct oent *e = p;
	return key_hash(e->req, e->fn, e->branch);
}

static struct oent *lookup(const struct ir_outbox *o, uint64_t req, uint16_t fn, uint16_t branch)
{
	const struct ir_otab *t = &o->tab;
	for (size_t i = key_hash(req, fn, branch) & t->mask; t->slot[i]; i = (i + 1) & t->mask)
		if (key_eq(t->slot[i], req, fn, branch))
			return t->slot[i];
	return NULL;
}

/* ---- entries ---- */

static bool id_ok(const char *id)
{
	return id && id[0] && strnlen(id, IR_OUTBOX_ID_MAX) < IR_OUTBOX_ID_MAX;
}

static void ent_free(struct oent *e)
{
	for (uint32_t i = 0; i < e->attempts; i++)
		free(e->tried[i]);
	free(e->payload);
	free(e);
}

/* Out of the table and both heaps, counters down, memory freed. */
static void forget(struct ir_outbox *o, struct oent *e)
{
	if (e->pos[H_ACK] != NOPOS)
		heap_del(&o->h[H_ACK], e);
	heap_del(&o->h[H_DL], e);
	ir_otab_del(&o->tab, e);
	o->st.entries--;
	o->st.bytes -= e->len;
	ent_free(e);
}

/* A new ACK deadline @t; (back) into the ACK heap, which has room. */
static void set_ack(struct ir_outbox *o, struct oent *e, uint64_t t)
{
	struct ir_heap *h = &o->h[H_ACK];
	e->t[H_ACK] = t;
	if (e->pos[H_ACK] == NOPOS) {
		ir_heap_push(h, e);
		return;
	}
	ir_heap_fix(h, e);
}

static void mark_failed(struct ir_outbox *o, struct oent *e, uint64_t now_ns)
{
	if (e->t[H_ACK] > now_ns)
		set_ack(o, e, now_ns);
}

static uint64_t ack_at(const struct ir_outbox *o, uint64_t now_ns)
{
	return now_ns > UINT64_MAX - o->ack_timeout_ns ? UINT64_MAX : now_ns + o->ack_timeout_ns;
}

static int refuse(struct ir_outbox *o, void *payload, int err)
{
	free(payload);
	o->st.refused++;
	return err;
}

static struct oent *ent_new(const struct ir_outbox *o, const char *instance_id)
{
	struct oent *e = calloc(1, sizeof(*e) + o->max_attempts * sizeof(e->tried[0]));
	if (!e)
		return NULL;
	e->tried[0] = strdup(instance_id);
	if (!e->tried[0]) {
		free(e);
		return NULL;
	}
	e->attempts = 1;
	e->pos[H_ACK] = e->pos[H_DL] = NOPOS;
	return e;
}

int ir_outbox_add(struct ir_outbox *o, uint64_t req, uint16_t fn, uint16_t branch, void *payload,
		  size_t len, uint64_t deadline_ns, const char *instance_id, uint64_t now_ns)
{
	if ((!payload && len) || !id_ok(instance_id))
		return refuse(o, payload, -EINVAL);
	if (lookup(o, req, fn, branch))
		return refuse(o, payload, -EEXIST);
	if (o->st.entries >= o->max_entries || len > o->max_bytes - o->st.bytes)
		return refuse(o, payload, -ENOSPC);
	size_t need = o->st.entries + 1;
	if (!ir_otab_reserve(&o->tab) || !ir_heap_reserve(&o->h[H_ACK], need) ||
	    !ir_heap_reserve(&o->h[H_DL], need))
		return refuse(o, payload, -ENOMEM);
	struct oent *e = ent_new(o, instance_id);
	if (!e)
		return refuse(o, payload, -ENOMEM);
	e->req = req;
	e->fn = fn;
	e->branch = branch;
	e->payload = payload;
	e->len = len;
	e->t[H_ACK] = ack_at(o, now_ns);
	e->t[H_DL] = deadline_ns;
	ir_otab_put(&o->tab, e);
	ir_heap_push(&o->h[H_ACK], e);
	ir_heap_push(&o->h[H_DL], e);
	o->st.entries++;
	o->st.bytes += len;
	return 0;
}

int ir_outbox_ack(struct ir_outbox *o, uint64_t req, uint16_t fn, uint16_t branch)
{
	struct oent *e = lookup(o, req, fn, branch);
	if (!e)
		return -ENOENT;
	forget(o, e);
	o->st.acked++;
	return 0;
}

int ir_outbox_failed(struct ir_outbox *o, uint64_t req, uint16_t fn, uint16_t branch,
		     uint64_t now_ns)
{
	struct oent *e = lookup(o, req, fn, branch);
	if (!e)
		return -ENOENT;
	mark_failed(o, e, now_ns);
	return 0;
}

size_t ir_outbox_peer_lost(struct ir_outbox *o, const char *instance_id, uint64_t now_ns)
{
	size_t n = 0;
	if (!instance_id)
		return 0;
	for (size_t i = 0; i <= o->tab.mask; i++) {
		struct oent *e = o->tab.slot[i];
		if (!e || e->t[H_DL] <= now_ns || strcmp(e->tried[e->attempts - 1], instance_id))
			continue;
		mark_failed(o, e, now_ns);
		n++;
	}
	return n;
}

static void fill_item(const struct ir_outbox *o, const struct oent *e, struct ir_outbox_item *it)
{
	it->req = e->req;
	it->fn = e->fn;
	it->branch = e->branch;
	it->attempts = e->attempts;
	it->exhausted = e->attempts >= o->max_attempts;
	it->payload = e->payload;
	it->len = e->len;
	it->deadline_ns = e->t[H_DL];
	it->tried = (const char *const *)e->tried;
	it->ntried = e->attempts;
}

/* Pops the due outputs off the ACK heap in order, then puts them back:
 * they stay due until resent or given up.  Outputs past their request
 * deadline leave the heap for good (only expiry is left for them). */
size_t ir_outbox_due(struct ir_outbox *o, uint64_t now_ns, struct ir_outbox_item *items, size_t max)
{
	struct ir_heap *h = &o->h[H_ACK];
	struct oent *e;
	size_t n = 0;
	while (n < max && (e = ir_heap_top(h)) && e->t[H_ACK] <= now_ns) {
		heap_del(h, e);
		if (e->t[H_DL] <= now_ns)
			continue;
		fill_item(o, e, &items[n++]);
	}
	for (size_t i = 0; i < n; i++)
		ir_heap_push(h, lookup(o, items[i].req, items[i].fn, items[i].branch));
	return n;
}

int ir_outbox_resent(struct ir_outbox *o, uint64_t req, uint16_t fn, uint16_t branch,
		     const char *instance_id, uint64_t now_ns)
{
	struct oent *e = lookup(o, req, fn, branch);
	if (!e)
		return -ENOENT;
	if (!id_ok(instance_id))
		return -EINVAL;
	if (e->attempts >= o->max_attempts)
		return -ENOSPC;
	char *id = strdup(instance_id);
	if (!id)
		return -ENOMEM;
	e->tried[e->attempts++] = id;
	set_ack(o, e, ack_at(o, now_ns));
	o->st.resent++;
	return 0;
}

int ir_outbox_give_up(struct ir_outbox *o, uint64_t req, uint16_t fn, uint16_t branch,
		      uint64_t *deadline_ns)
{
	struct oent *e = lookup(o, req, fn, branch);
	if (!e)
		return -ENOENT;
	if (deadline_ns)
		*deadline_ns = e->t[H_DL];
	forget(o, e);
	o->st.gave_up++;
	return 0;
}

size_t ir_outbox_expire(struct ir_outbox *o, uint64_t now_ns, ir_outbox_expire_cb cb, void *arg)
{
	size_t n = 0;
	struct oent *e;
	while ((e = ir_heap_top(&o->h[H_DL])) && e->t[H_DL] <= now_ns) {
		uint64_t req = e->req;
		uint16_t fn = e->fn, branch = e->branch;
		uint32_t attempts = e->attempts;
		forget(o, e);
		o->st.expired++;
		n++;
		if (cb)
			cb(arg, req, fn, branch, attempts);
	}
	return n;
}

uint64_t ir_outbox_next_wakeup(const struct ir_outbox *o)
{
	const struct oent *a = ir_heap_top(&o->h[H_ACK]), *d = ir_heap_top(&o->h[H_DL]);
	if (!d)
		return 0;
	uint64_t t = d->t[H_DL];
	if (a && a->t[H_ACK] < t)
		t = a->t[H_ACK];
	return t ? t : 1;
}

void ir_outbox_stats(const struct ir_outbox *o, struct ir_outbox_stats *s)
{
	*s = o->st;
}

int ir_outbox_new(struct ir_outbox **op, size_t max_entries, size_t max_bytes,
		  uint32_t ack_timeout_ms, uint32_t max_attempts)
{
	*op = NULL;
	if (!max_entries || !max_bytes || !ack_timeout_ms || !max_attempts ||
	    max_attempts > IR_OUTBOX_MAX_ATTEMPTS || max_entries > SIZE_MAX / 64)
		return -EINVAL;
	struct ir_outbox *o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	if (ir_otab_init(&o->tab, oent_hash) != 0) {
		free(o);
		return -ENOMEM;
	}
	o->h[H_ACK] = (struct ir_heap){.less = oent_before, .pos = oent_pos, .ctx = &W_ACK};
	o->h[H_DL] = (struct ir_heap){.less = oent_before, .pos = oent_pos, .ctx = &W_DL};
	o->max_entries = max_entries;
	o->max_bytes = max_bytes;
	o->ack_timeout_ns = (uint64_t)ack_timeout_ms * 1000000u;
	o->max_attempts = max_attempts;
	*op = o;
	return 0;
}

void ir_outbox_free(struct ir_outbox *o)
{
	if (!o)
		return;
	for (size_t i = 0; i <= o->tab.mask; i++)
		if (o->tab.slot[i])
			ent_free(o->tab.slot[i]);
	ir_otab_release(&o->tab);
	ir_heap_release(&o->h[H_ACK]);
	ir_heap_release(&o->h[H_DL]);
	free(o);
}
