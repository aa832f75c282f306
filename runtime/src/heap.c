/* heap.c - the indexed binary min-heap (see heap.h). */
#include <stdlib.h>

#include "heap.h"

bool ir_heap_reserve(struct ir_heap *h, size_t need)
{
	if (need <= h->cap)
		return true;
	size_t cap = h->cap ? h->cap : 64;
	while (cap < need)
		cap *= 2;
	void **v = realloc(h->v, cap * sizeof(*v));
	if (!v)
		return false;
	h->v = v;
	h->cap = cap;
	return true;
}

static void set(struct ir_heap *h, size_t i, void *e)
{
	h->v[i] = e;
	*h->pos(e, h->ctx) = i;
}

static void sift_up(struct ir_heap *h, size_t i)
{
	void *e = h->v[i];
	while (i > 0) {
		size_t up = (i - 1) / 2;
		if (!h->less(e, h->v[up], h->ctx))
			break;
		set(h, i, h->v[up]);
		i = up;
	}
	set(h, i, e);
}

static void sift_down(struct ir_heap *h, size_t i)
{
	void *e = h->v[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->less(h->v[c + 1], h->v[c], h->ctx))
			c++;
		if (!h->less(h->v[c], e, h->ctx))
			break;
		set(h, i, h->v[c]);
		i = c;
	}
	set(h, i, e);
}

void ir_heap_push(struct ir_heap *h, void *e)
{
	set(h, h->n++, e);
	sift_up(h, h->n - 1);
}

void ir_heap_del(struct ir_heap *h, void *e)
{
	size_t i = *h->pos(e, h->ctx);
	void *last = h->v[--h->n];
	if (i == h->n)
		return;
	set(h, i, last);
	ir_heap_fix(h, last);
}

void ir_heap_fix(struct ir_heap *h, void *e)
{
	size_t i = *h->pos(e, h->ctx);
	sift_up(h, i);
	sift_down(h, *h->pos(e, h->ctx));
}

void ir_heap_release(struct ir_heap *h)
{
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}
