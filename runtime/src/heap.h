/* heap.h - an indexed binary min-heap of pointers: each element keeps its
 * own position, so it can be removed or re-sorted in O(log n) when its key
 * changes (a deadline moved, an entry ACKed).  Shared by the join
 * collector (join.c) and the outbox (outbox.c), which both keep entries in
 * deadline order; an element may sit in several heaps at once, each with
 * its own position field (pos() picks it).
 *
 * Not thread-safe: the owner's thread only.
 */
#ifndef IROUTE_HEAP_H
#define IROUTE_HEAP_H
#include <stdbool.h>
#include <stddef.h>

struct ir_heap {
	void **v;
	size_t n, cap;
	/* a sorts before b */
	bool (*less)(const void *a, const void *b, const void *ctx);
	/* where element e keeps its index in this heap */
	size_t *(*pos)(void *e, const void *ctx);
	const void *ctx;
};

/* Room for @need elements in all: true, or false when out of memory
 * (nothing changed).  Push only into reserved room. */
bool ir_heap_reserve(struct ir_heap *h, size_t need);
void ir_heap_push(struct ir_heap *h, void *e);
void ir_heap_del(struct ir_heap *h, void *e);
/* Restore the order after @e's key changed. */
void ir_heap_fix(struct ir_heap *h, void *e);
static inline void *ir_heap_top(const struct ir_heap *h)
{
	return h->n ? h->v[0] : NULL;
}
/* Free the array (not the elements). */
void ir_heap_release(struct ir_heap *h);

#endif
