/* route.c - local routing decisions (see route.h).  Up to three passes
 * for a pick: the first finds the least loaded instances and sums the
 * candidates' capacities, then one for each of the two draws finds the
 * instance at the weight drawn; nothing is allocated, so a table of any
 * size costs a few scans and no memory. */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "route.h"

#define CAP_MAX 65535u /* the coordinator's limit; keeps the products below 2^51 */

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t next_rand(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	return mix64(*s);
}

/* Uniform in [0, n), 1 <= n < 2^48: the bias of the modulo is below 2^-16
 * of a draw's probability. */
static uint64_t draw(uint64_t *s, uint64_t n)
{
	return next_rand(s) % n;
}

uint64_t ir_route_hash_id(const char *id)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ull;
	}
	return h;
}

static bool excluded(const char *id, const char *const *exclude, size_t nexclude)
{
	if (!exclude)
		return false;
	for (size_t i = 0; i < nexclude; i++)
		if (exclude[i] && !strcmp(exclude[i], id))
			return true;
	return false;
}

/* The instances looked at: a table larger than INT_MAX cannot be indexed. */
static size_t count(const struct ir_route_fn *fn)
{
	if (!fn || !fn->inst)
		return 0;
	return fn->n > (size_t)INT_MAX ? (size_t)INT_MAX : fn->n;
}

/* ---- plain successors ---- */

struct load {
	uint64_t inflight, cap;
};

static struct load load_of(const struct ir_route_ctx *ctx, const struct ir_route_inst *in)
{
	struct load l = {0, in->capacity};
	if (l.cap < 1)
		l.cap = 1;
	if (l.cap > CAP_MAX)
		l.cap = CAP_MAX;
	if (ctx && ctx->inflight)
		l.inflight = ctx->inflight(ctx->arg, in->id);
	return l;
}

/* a/ca < b/cb, exactly. */
static bool lighter(struct load a, struct load b)
{
	return a.inflight * b.cap < b.inflight * a.cap;
}

/* load(l) <= 2 * load(g) + 1 (route.h). */
static bool comparable(struct load l, struct load g)
{
	return l.inflight * g.cap <= (2 * g.inflight + g.cap) * l.cap;
}

static bool on_node(const struct ir_route_ctx *ctx, const struct ir_route_inst *in)
{
	return ctx->self_node && ctx->self_node[0] && !strcmp(in->node, ctx->self_node);
}

/* The candidate (not excluded, on_node() == @local, not @skip) that
 * covers the weight @pos when each one weighs its capacity, in @fn's
 * order: a draw proportional to capacity. */
static int at_weight(const struct ir_route_fn *fn, const struct ir_route_ctx *ctx, bool local,
		     uint64_t pos, int skip, const char *const *exclude, size_t nexclude)
{
	size_t n = count(fn);
	for (size_t i = 0; i < n; i++) {
		const struct ir_route_inst *in = &fn->inst[i];
		if ((int)i == skip || on_node(ctx, in) != local ||
		    excluded(in->id, exclude, nexclude))
			continue;
		uint64_t cap = load_of(NULL, in).cap;
		if (pos < cap)
			return (int)i;
		pos -= cap;
	}
	return -1; /* unreachable while @pos comes from the same table */
}

int ir_route_pick(const struct ir_route_fn *fn, const struct ir_route_ctx *ctx,
		  const char *const *exclude, size_t nexclude)
{
	static _Thread_local uint64_t own_rng;
	static const struct ir_route_ctx none;
	size_t n = count(fn), k[2] = {0, 0}; /* candidates elsewhere / on this node */
	uint64_t wsum[2] = {0, 0};	     /* their capacities */
	struct load best[2] = {{0, 0}, {0, 0}};

	if (!ctx)
		ctx = &none;
	for (size_t i = 0; i < n; i++) {
		const struct ir_route_inst *in = &fn->inst[i];
		if (excluded(in->id, exclude, nexclude))
			continue;
		bool local = on_node(ctx, in);
		struct load l = load_of(ctx, in);
		if (!k[local]++ || lighter(l, best[local]))
			best[local] = l;
		wsum[local] += l.cap;
	}
	if (!k[0] && !k[1])
		return -1;
	struct load g = !k[1] || (k[0] && lighter(best[0], best[1])) ? best[0] : best[1];
	bool local = k[1] && comparable(best[1], g);

	if (k[local] == 1)
		return at_weight(fn, ctx, local, 0, -1, exclude, nexclude);
	uint64_t *rng = ctx->rng ? ctx->rng : &own_rng;
	int a = at_weight(fn, ctx, local, draw(rng, wsum[local]), -1, exclude, nexclude);
	if (a < 0)
		return -1;
	struct load la = load_of(ctx, &fn->inst[a]);
	uint64_t rest = wsum[local] - la.cap;
	int b = at_weight(fn, ctx, local, draw(rng, rest), a, exclude, nexclude);
	if (b < 0)
		return a;
	return lighter(load_of(ctx, &fn->inst[b]), la) ? b : a;
}

/* ---- join successors ---- */

int ir_route_rendezvous(const struct ir_route_fn *fn, uint64_t req_id, const char *const *exclude,
			size_t nexclude)
{
	size_t n = count(fn);
	int best = -1;
	uint64_t best_w = 0;

	for (size_t i = 0; i < n; i++) {
		const char *id = fn->inst[i].id;
		if (excluded(id, exclude, nexclude))
			continue;
		uint64_t w = mix64(req_id ^ ir_route_hash_id(id));
		if (best < 0 || w > best_w || (w == best_w && strcmp(id, fn->inst[best].id) < 0)) {
			best = (int)i;
			best_w = w;
		}
	}
	return best;
}

bool ir_route_owner(const struct ir_route_fn *fn, uint64_t req_id, const char *self_id)
{
	if (!self_id)
		return false;
	int i = ir_route_rendezvous(fn, req_id, NULL, 0);
	return i >= 0 && !strcmp(fn->inst[i].id, self_id);
}
