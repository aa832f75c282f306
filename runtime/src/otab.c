/* otab.c - the open-addressing pointer set (see otab.h). */
#include <errno.h>
#include <stdlib.h>

#include "otab.h"

#define OTAB_MIN 64u

int ir_otab_init(struct ir_otab *t, uint64_t (*hash)(const void *e))
{
	t->slot = calloc(OTAB_MIN, sizeof(*t->slot));
	if (!t->slot)
		return -ENOMEM;
	t->mask = OTAB_MIN - 1;
	t->used = 0;
	t->hash = hash;
	return 0;
}

static size_t home(const struct ir_otab *t, const void *e)
{
	return (size_t)t->hash(e) & t->mask;
}

void ir_otab_put(struct ir_otab *t, void *e)
{
	size_t i = home(t, e);
	while (t->slot[i])
		i = (i + 1) & t->mask;
	t->slot[i] = e;
	t->used++;
}

void ir_otab_del(struct ir_otab *t, const void *e)
{
	size_t i = home(t, e);
	while (t->slot[i] != e)
		i = (i + 1) & t->mask;
	for (size_t n = (i + 1) & t->mask; t->slot[n]; n = (n + 1) & t->mask) {
		size_t h = home(t, t->slot[n]);
		/* slot[n] may move to the hole at i unless its home lies in (i, n] */
		bool stays = i <= n ? (i < h && h <= n) : (i < h || h <= n);
		if (stays)
			continue;
		t->slot[i] = t->slot[n];
		i = n;
	}
	t->slot[i] = NULL;
	t->used--;
}

bool ir_otab_reserve(struct ir_otab *t)
{
	size_t cap = t->mask + 1;
	if ((t->used + 1) * 2 <= cap)
		return true;
	void **old = t->slot, **slot = calloc(cap * 2, sizeof(*slot));
	if (!slot)
		return false;
	t->slot = slot;
	t->mask = cap * 2 - 1;
	t->used = 0;
	for (size_t i = 0; i < cap; i++)
		if (old[i])
			ir_otab_put(t, old[i]);
	free(old);
	return true;
}

void ir_otab_release(struct ir_otab *t)
{
	free(t->slot);
	t->slot = NULL;
	t->mask = t->used = 0;
}
