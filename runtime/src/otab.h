/* otab.h - an open-addressing set of pointers, hashed by a key the
 * elements carry: the request tables of the join collector (join.c) and
 * the outbox (outbox.c).  Linear probing at a load of at most 1/2, and
 * backward-shift deletion, so there are no tombstones and probes stay
 * short under churn.  Lookups stay with the owner, which knows the key:
 *
 *     for (size_t i = h & t->mask; t->slot[i]; i = (i + 1) & t->mask)
 *             if (matches(t->slot[i])) ...
 *
 * Not thread-safe: the owner's thread only.
 */
#ifndef IROUTE_OTAB_H
#define IROUTE_OTAB_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ir_otab {
	void **slot; /* NULL = free */
	size_t mask, used;
	uint64_t (*hash)(const void *e); /* the element's key, mixed */
};

/* 64 slots.  0 or -ENOMEM. */
int ir_otab_init(struct ir_otab *t, uint64_t (*hash)(const void *e));
/* Room for one more element (grows by doubling): false when out of
 * memory, nothing changed. */
bool ir_otab_reserve(struct ir_otab *t);
/* Into reserved room; @e's key must not be in the table yet. */
void ir_otab_put(struct ir_otab *t, void *e);
/* Remove @e (by identity; it must be in the table). */
void ir_otab_del(struct ir_otab *t, const void *e);
/* Free the slots (not the elements). */
void ir_otab_release(struct ir_otab *t);

/* splitmix64's finalizer: every input bit reaches every output bit, so
 * sequential or high-bits-only keys spread like random ones.  Peers are
 * authenticated, so this guards against structure, not against an
 * adversary choosing keys. */
static inline uint64_t ir_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

#endif
