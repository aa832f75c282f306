/* test_outbox.c - the outbox: ACKs, resends, failures, bounds, expiry, and
 * a long random run checked against a plain array model.
 *
 * Nothing here reads a clock: times are plain numbers in nanoseconds.
 * Payloads carry a pattern derived from their key, so a due item's payload
 * is checked byte for byte; buffers the outbox must free (refusals, acks,
 * expiry, ir_outbox_free) are left to ASan/valgrind to account for.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbox.h"
#include "tests.h"

Suite *outbox_suite(void);

#define MS 1000000ull
#define T0 (1000 * MS)	   /* "now" at the start of every test */
#define FAR (1000000 * MS) /* a deadline no test reaches unless it says so */
#define ACK_MS 100u	   /* the ACK timeout used throughout */
#define ACK_NS ((uint64_t)ACK_MS * MS)

static uint8_t pat(uint64_t req, uint16_t fn, uint16_t branch, size_t i)
{
	return (uint8_t)(req * 31u + fn * 5u + branch * 7u + i * 13u + 1u);
}

static void *mk(uint64_t req, uint16_t fn, uint16_t branch, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < len; i++)
		p[i] = pat(req, fn, branch, i);
	return p;
}

static size_t bad_bytes(const struct ir_outbox_item *it)
{
	const uint8_t *p = it->payload;
	size_t bad = 0;
	for (size_t i = 0; i < it->len; i++)
		bad += p[i] != pat(it->req, it->fn, it->branch, i);
	return bad;
}

static int add(struct ir_outbox *o, uint64_t req, uint16_t fn, uint16_t branch, size_t len,
	       uint64_t deadline, const char *to, uint64_t now)
{
	return ir_outbox_add(o, req, fn, branch, mk(req, fn, branch, len), len, deadline, to, now);
}

static struct ir_outbox *mkob(size_t max_entries, size_t max_bytes, uint32_t max_attempts)
{
	struct ir_outbox *o;
	ck_assert_int_eq(ir_outbox_new(&o, max_entries, max_bytes, ACK_MS, max_attempts), 0);
	return o;
}

static struct ir_outbox_stats stats(const struct ir_outbox *o)
{
	struct ir_outbox_stats s;
	ir_outbox_stats(o, &s);
	return s;
}

struct expired {
	size_t n;
	uint64_t req[16];
	uint16_t fn[16], branch[16];
	uint32_t attempts[16];
};

static void on_expire(void *arg, uint64_t req, uint16_t fn, uint16_t branch, uint32_t attempts)
{
	struct expired *x = arg;
	if (x->n < 16) {
		x->req[x->n] = req;
		x->fn[x->n] = fn;
		x->branch[x->n] = branch;
		x->attempts[x->n] = attempts;
	}
	x->n++;
}

START_TEST(new_rejects_bad)
{
	struct ir_outbox *o = (void *)1;
	ck_assert_int_eq(ir_outbox_new(&o, 0, 100, ACK_MS, 3), -EINVAL);
	ck_assert_ptr_null(o);
	ck_assert_int_eq(ir_outbox_new(&o, 10, 0, ACK_MS, 3), -EINVAL);
	ck_assert_int_eq(ir_outbox_new(&o, 10, 100, 0, 3), -EINVAL);
	ck_assert_int_eq(ir_outbox_new(&o, 10, 100, ACK_MS, 0), -EINVAL);
	ck_assert_int_eq(ir_outbox_new(&o, 10, 100, ACK_MS, IR_OUTBOX_MAX_ATTEMPTS + 1), -EINVAL);
	ir_outbox_free(NULL);
}
END_TEST

START_TEST(add_ack_round_trip)
{
	struct ir_outbox *o = mkob(4, 1024, 3);
	ck_assert_int_eq(add(o, 42, 3, 1, 10, FAR, "a", T0), 0);
	struct ir_outbox_stats s = stats(o);
	ck_assert_uint_eq(s.entries, 1);
	ck_assert_uint_eq(s.bytes, 10);
	/* another branch / function of the same request is another output */
	ck_assert_int_eq(add(o, 42, 3, 2, 5, FAR, "a", T0), 0);
	ck_assert_int_eq(add(o, 42, 4, 1, 5, FAR, "a", T0), 0);
	ck_assert_int_eq(ir_outbox_ack(o, 42, 3, 1), 0);
	ck_assert_int_eq(ir_outbox_ack(o, 42, 3, 1), -ENOENT);
	ck_assert_int_eq(ir_outbox_ack(o, 43, 3, 1), -ENOENT);
	s = stats(o);
	ck_assert_uint_eq(s.entries, 2);
	ck_assert_uint_eq(s.bytes, 10);
	ck_assert_uint_eq(s.acked, 1);
	ck_assert_int_eq(ir_outbox_ack(o, 42, 3, 2), 0);
	ck_assert_int_eq(ir_outbox_ack(o, 42, 4, 1), 0);
	s = stats(o);
	ck_assert_uint_eq(s.entries, 0);
	ck_assert_uint_eq(s.bytes, 0);
	ck_assert_uint_eq(s.acked, 3);
	ck_assert_uint_eq(ir_outbox_next_wakeup(o), 0);
	/* an ACKed key may be added again (a new output, e.g. a retry by us) */
	ck_assert_int_eq(add(o, 42, 3, 1, 0, FAR, "a", T0), 0);
	ir_outbox_free(o);
}
END_TEST

START_TEST(add_exists_and_invalid)
{
	struct ir_outbox *o = mkob(4, 1024, 3);
	ck_assert_int_eq(add(o, 1, 0, 0, 10, FAR, "a", T0), 0);
	ck_assert_int_eq(add(o, 1, 0, 0, 20, FAR, "b", T0), -EEXIST);
	char longid[IR_OUTBOX_ID_MAX + 1];
	memset(longid, 'x', IR_OUTBOX_ID_MAX);
	longid[IR_OUTBOX_ID_MAX] = 0;
	ck_assert_int_eq(add(o, 2, 0, 0, 10, FAR, longid, T0), -EINVAL);
	longid[IR_OUTBOX_ID_MAX - 1] = 0; /* 79 chars: fine */
	ck_assert_int_eq(add(o, 2, 0, 0, 10, FAR, longid, T0), 0);
	ck_assert_int_eq(add(o, 3, 0, 0, 10, FAR, NULL, T0), -EINVAL);
	ck_assert_int_eq(add(o, 3, 0, 0, 10, FAR, "", T0), -EINVAL);
	ck_assert_int_eq(ir_outbox_add(o, 3, 0, 0, NULL, 4, FAR, "a", T0), -EINVAL);
	ck_assert_int_eq(ir_outbox_add(o, 3, 0, 0, NULL, 0, FAR, "a", T0), 0);
	struct ir_outbox_stats s = stats(o);
	ck_assert_uint_eq(s.entries, 3);
	ck_assert_uint_eq(s.bytes, 20); /* the refused copy of key 1 changed nothing */
	ck_assert_uint_eq(s.refused, 5);
	/* the first copy is the one kept: its first attempt went to "a" */
	struct ir_outbox_item it[4];
	ck_assert_uint_eq(ir_outbox_due(o, T0 + ACK_NS, it, 4), 3);
	ck_assert_uint_eq(it[0].req, 1);
	ck_assert_uint_eq(it[0].len, 10);
	ck_assert_str_eq(it[0].tried[0], "a");
	ck_assert_str_eq(it[1].tried[0], longid);
	ck_assert_ptr_null(it[2].payload);
	ck_assert_uint_eq(it[2].len, 0);
	ir_outbox_free(o);
}
END_TEST

START_TEST(bounds_nospc)
{
	struct ir_outbox *o = mkob(2, 100, 3);
	ck_assert_int_eq(add(o, 1, 0, 0, 60, FAR, "a", T0), 0);
	ck_assert_int_eq(add(o, 2, 0, 0, 41, FAR, "a", T0), -ENOSPC); /* bytes */
	struct ir_outbox_stats s = stats(o);
	ck_assert_uint_eq(s.entries, 1);
	ck_assert_uint_eq(s.bytes, 60);
	ck_assert_int_eq(ir_outbox_ack(o, 2, 0, 0), -ENOENT);	     /* nothing stored */
	ck_assert_int_eq(add(o, 2, 0, 0, 40, FAR, "a", T0), 0);	     /* exactly full */
	ck_assert_int_eq(add(o, 3, 0, 0, 0, FAR, "a", T0), -ENOSPC); /* entries */
	s = stats(o);
	ck_assert_uint_eq(s.entries, 2);
	ck_assert_uint_eq(s.bytes, 100);
	ck_assert_uint_eq(s.refused, 2);
	struct ir_outbox_item it[4];
	ck_assert_uint_eq(ir_outbox_due(o, FAR - 1, it, 4), 2); /* 3 never stored */
	ck_assert_int_eq(ir_outbox_ack(o, 1, 0, 0), 0);
	ck_assert_int_eq(add(o, 3, 0, 0, 60, FAR, "a", T0), 0); /* room again */
	ir_outbox_free(o);
}
END_TEST

START_TEST(due_after_timeout_earliest_first)
{
	struct ir_outbox *o = mkob(8, 1024, 3);
	ck_assert_int_eq(add(o, 10, 1, 0, 8, FAR, "a", T0 + 20 * MS), 0);
	ck_assert_int_eq(add(o, 11, 1, 0, 9, FAR, "b", T0), 0);
	ck_assert_int_eq(add(o, 12, 1, 0, 3, FAR, "c", T0 + 10 * MS), 0);
	struct ir_outbox_item it[8];
	ck_assert_uint_eq(ir_outbox_due(o, T0, it, 8), 0);
	ck_assert_uint_eq(ir_outbox_due(o, T0 + ACK_NS - 1, it, 8), 0);
	ck_assert_uint_eq(ir_outbox_due(o, T0 + ACK_NS, it, 8), 1);
	ck_assert_uint_eq(it[0].req, 11);
	ck_assert_uint_eq(ir_outbox_due(o, T0 + ACK_NS + 20 * MS, it, 8), 3);
	ck_assert_uint_eq(it[0].req, 11);
	ck_assert_uint_eq(it[1].req, 12);
	ck_assert_uint_eq(it[2].req, 10);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_uint_eq(it[i].attempts, 1);
		ck_assert_uint_eq(it[i].ntried, 1);
		ck_assert(!it[i].exhausted);
		ck_assert_uint_eq(it[i].deadline_ns, FAR);
		ck_assert_uint_eq(bad_bytes(&it[i]), 0);
	}
	ck_assert_str_eq(it[0].tried[0], "b");
	ck_assert_str_eq(it[1].tried[0], "c");
	ck_assert_str_eq(it[2].tried[0], "a");
	ck_assert_uint_eq(it[1].len, 3);
	/* @max caps it, earliest first; due() itself changes nothing */
	ck_assert_uint_eq(ir_outbox_due(o, T0 + ACK_NS + 20 * MS, it, 2), 2);
	ck_assert_uint_eq(it[0].req, 11);
	ck_assert_uint_eq(it[1].req, 12);
	ck_assert_uint_eq(ir_outbox_due(o, T0 + ACK_NS + 20 * MS, it, 8), 3);
	ck_assert_uint_eq(ir_outbox_due(o, T0 + ACK_NS + 20 * MS, it, 0), 0);
	ir_outbox_free(o);
}
END_TEST

START_TEST(resent_records_attempt)
{
	struct ir_outbox *o = mkob(8, 1024, 3);
	ck_assert_int_eq(add(o, 5, 2, 1, 16, FAR, "a", T0), 0);
	ck_assert_int_eq(add(o, 6, 2, 1, 16, FAR, "a", T0 + 50 * MS), 0);
	struct ir_outbox_item it[4];
	uint64_t now = T0 + ACK_NS;
	ck_assert_uint_eq(ir_outbox_due(o, now, it, 4), 1);
	ck_assert_int_eq(ir_outbox_resent(o, 5, 2, 1, "b", now), 0);
	ck_assert_int_eq(ir_outbox_resent(o, 7, 2, 1, "b", now), -ENOENT);
	ck_assert_int_eq(ir_outbox_resent(o, 5, 2, 1, "", now), -EINVAL);
	ck_assert_uint_eq(stats(o).resent, 1);
	/* 5's ACK is now due at now + ACK; 6's at T0 + 150ms comes first */
	ck_assert_uint_eq(ir_outbox_next_wakeup(o), T0 + 50 * MS + ACK_NS);
	ck_assert_uint_eq(ir_outbox_due(o, now + ACK_NS - 1, it, 4), 1);
	ck_assert_uint_eq(it[0].req, 6);
	ck_assert_uint_eq(ir_outbox_ack(o, 6, 2, 1), 0);
	ck_assert_uint_eq(ir_outbox_next_wakeup(o), now + ACK_NS);
	ck_assert_uint_eq(ir_outbox_due(o, now + ACK_NS, it, 4), 1);
	ck_assert_uint_eq(it[0].req, 5);
	ck_assert_uint_eq(it[0].attempts, 2);
	ck_assert_uint_eq(it[0].ntried, 2);
	ck_assert_str_eq(it[0].tried[0], "a");
	ck_assert_str_eq(it[0].tried[1], "b");
	ck_assert(!it[0].exhausted);
	ck_assert_uint_eq(bad_bytes(&it[0]), 0);
	ir_outbox_free(o);
}
END_TEST

START_TEST(failed_due_at_once)
{
	struct ir_outbox *o = mkob(8, 1024, 3);
	ck_assert_int_eq(add(o, 1, 0, 0, 4, FAR, "a", T0), 0);
	ck_assert_int_eq(add(o, 2, 0, 0, 4, FAR, "a", T0), 0);
	struct ir_outbox_item it[4];
	ck_assert_uint_eq(ir_outbox_due(o, T0 + MS, it, 4), 0);
	ck_assert_int_eq(ir_outbox_failed(o, 2, 0, 0, T0 + MS), 0);
	ck_assert_int_eq(ir_outbox_failed(o, 3, 0, 0, T0 + MS), -ENOENT);
	ck_assert_uint_eq(ir_outbox_next_wakeup(o), T0 + MS);
	ck_assert_uint_eq(ir_outbox_due(o, T0 + MS, it, 4), 1);
	ck_assert_uint_eq(it[0].req, 2);
	ck_assert_uint_eq(it[0].attempts, 1);
	/* a later failure does not push an earlier due time back */
	ck_assert_int_eq(ir_outbox_failed(o, 2, 0, 0, T0 + 5 * MS), 0);
	ck_assert_uint_eq(ir_outbox_next_wakeup(o), T0 + MS);
	ck_assert_int_eq(ir_outbox_resent(o, 2, 0, 0, "b", T0 + 5 * MS), 0);
	ck_assert_uint_eq(ir_outbox_due(o, T0 + 5 * MS, it, 4), 0);
	ck_assert_uint_eq(ir_outbox_next_wakeup(o), T0 + ACK_NS);
	ir_outbox_free(o);
}
END_TEST

START_TEST(peer_lost_marks_last_sent)
{
	struct ir_outbox *o = mkob(16, 1024, 3);
	/* 1, 2: last sent to "a"; 3: to "b"; 4: first "a", then "b" */
	ck_assert_int_eq(add(o, 1, 0, 0, 1, FAR, "a", T0), 0);
	ck_assert_int_eq(add(o, 2, 0, 0, 1, FAR, "a", T0), 0);
	ck_assert_int_eq(add(o, 3, 0, 0, 1, FAR, "b", T0), 0);
	ck_assert_int_eq(add(o, 4, 0, 0, 1, FAR, "a", T0), 0);
	ck_assert_int_eq(ir_outbox_resent(o, 4, 0, 0, "b", T0), 0);
	/* 5: sent to "a" but its request deadline has passed by then */
	ck_assert_int_eq(add(o, 5, 0, 0, 1, T0 + 2 * MS, "a", T0), 0);
	ck_assert_uint_eq(ir_outbox_peer_lost(o, "c", T0 + 3 * MS), 0);
	ck_assert_uint_eq(ir_outbox_peer_lost(o, "a", T0 + 3 * MS), 2);
	struct ir_outbox_item it[8];
	ck_assert_uint_eq(ir_outbox_due(o, T0 + 3 * MS, it, 8), 2);
	ck_assert_uint_eq(it[0].req, 1);
	ck_assert_uint_eq(it[1].req, 2);
	ck_assert_uint_eq(ir_outbox_peer_lost(o, "b", T0 + 4 * MS), 2);
	ck_assert_uint_eq(ir_outbox_due(o, T0 + 4 * MS, it, 8), 4);
	ck_assert_uint_eq(it[2].req, 3);
	ck_assert_uint_eq(it[3].req, 4);
	ck_assert_uint_eq(it[3].ntried, 2);
	ir_outbox_free(o);
}
END_TEST

START_TEST(exhausted_after_max_attempts)
{
	struct ir_outbox *o = mkob(4, 1024, 3);
	ck_assert_int_eq(add(o, 9, 1, 1, 7, T0 + 10000 * MS, "i0", T0), 0);
	struct ir_outbox_item it[2];
	uint64_t now = T0;
	char id[16];
	for (int a = 1; a <= 3; a++) {
		now += ACK_NS;
		ck_assert_uint_eq(ir_outbox_due(o, now, it, 2), 1);
		ck_assert_uint_eq(it[0].attempts, (uint32_t)a);
		ck_assert_int_eq(it[0].exhausted, a == 3);
		if (a < 3) {
			snprintf(id, sizeof(id), "i%d", a);
			ck_assert_int_eq(ir_outbox_resent(o, 9, 1, 1, id, now), 0);
		}
	}
	ck_assert_str_eq(it[0].tried[2], "i2");
	ck_assert_int_eq(ir_outbox_resent(o, 9, 1, 1, "i3", now), -ENOSPC);
	ck_assert_uint_eq(ir_outbox_due(o, now, it, 2), 1); /* unchanged */
	uint64_t dl = 0;
	ck_assert_int_eq(ir_outbox_give_up(o, 9, 1, 1, &dl), 0);
	ck_assert_uint_eq(dl, T0 + 10000 * MS);
	ck_assert_int_eq(ir_outbox_give_up(o, 9, 1, 1, &dl), -ENOENT);
	struct ir_outbox_stats s = stats(o);
	ck_assert_uint_eq(s.gave_up, 1);
	ck_assert_uint_eq(s.resent, 2);
	ck_assert_uint_eq(s.entries, 0);
	ck_assert_uint_eq(s.bytes, 0);
	ck_assert_uint_eq(ir_outbox_next_wakeup(o), 0);
	ir_outbox_free(o);
}
END_TEST

START_TEST(expire_drops_past_deadline)
{
	struct ir_outbox *o = mkob(8, 1024, 3);
	ck_assert_int_eq(add(o, 1, 0, 0, 4, T0 + 300 * MS, "a", T0), 0);
	ck_assert_int_eq(add(o, 2, 7, 3, 4, T0 + 150 * MS, "a", T0), 0);
	ck_assert_int_eq(add(o, 3, 0, 0, 4, FAR, "a", T0), 0);
	ck_assert_int_eq(ir_outbox_resent(o, 2, 7, 3, "b", T0 + 10 * MS), 0);
	struct ir_outbox_item it[8];
	/* at 150ms: 1 and 3 are overdue, 2 is at its deadline: never due */
	ck_assert_uint_eq(ir_outbox_due(o, T0 + 150 * MS, it, 8), 2);
	ck_assert_uint_eq(it[0].req, 1);
	ck_assert_uint_eq(it[1].req, 3);
	ck_assert_int_eq(ir_outbox_failed(o, 2, 7, 3, T0 + 150 * MS), 0);
	ck_assert_uint_eq(ir_outbox_due(o, T0 + 150 * MS, it, 8), 2);
	ck_assert_uint_eq(ir_outbox_due(o, T0 + 300 * MS, it, 8), 1);
	ck_assert_uint_eq(it[0].req, 3);
	struct expired x = {0};
	ck_assert_uint_eq(ir_outbox_expire(o, T0 + 149 * MS, on_expire, &x), 0);
	ck_assert_uint_eq(x.n, 0);
	ck_assert_uint_eq(ir_outbox_expire(o, T0 + 300 * MS, on_expire, &x), 2);
	ck_assert_uint_eq(x.n, 2);
	ck_assert_uint_eq(x.req[0], 2);
	ck_assert_uint_eq(x.fn[0], 7);
	ck_assert_uint_eq(x.branch[0], 3);
	ck_assert_uint_eq(x.attempts[0], 2);
	ck_assert_uint_eq(x.req[1], 1);
	ck_assert_uint_eq(x.attempts[1], 1);
	ck_assert_int_eq(ir_outbox_ack(o, 2, 7, 3), -ENOENT);
	struct ir_outbox_stats s = stats(o);
	ck_assert_uint_eq(s.expired, 2);
	ck_assert_uint_eq(s.entries, 1);
	ck_assert_uint_eq(s.bytes, 4);
	ck_assert_uint_eq(ir_outbox_expire(o, T0 + 300 * MS, NULL, NULL), 0);
	ir_outbox_free(o);
}
END_TEST

START_TEST(next_wakeup_tracks)
{
	struct ir_outbox *o = mkob(8, 1024, 3);
	ck_assert_uint_eq(ir_outbox_next_wakeup(o), 0);
	ck_assert_int_eq(add(o, 1, 0, 0, 1, FAR, "a", T0), 0);
	ck_assert_uint_eq(ir_outbox_next_wakeup(o), T0 + ACK_NS);
	ck_assert_int_eq(add(o, 2, 0, 0, 1, T0 + 40 * MS, "a", T0 + 10 * MS), 0);
	ck_assert_uint_eq(ir_outbox_next_wakeup(o), T0 + 40 * MS); /* request deadline */
	ck_assert_int_eq(ir_outbox_ack(o, 2, 0, 0), 0);
	ck_assert_uint_eq(ir_outbox_next_wakeup(o), T0 + ACK_NS);
	ck_assert_int_eq(add(o, 3, 0, 0, 1, FAR, "a", T0 + 30 * MS), 0);
	ck_assert_int_eq(ir_outbox_resent(o, 1, 0, 0, "b", T0 + 60 * MS), 0);
	ck_assert_uint_eq(ir_outbox_next_wakeup(o), T0 + 30 * MS + ACK_NS);
	ck_assert_int_eq(ir_outbox_ack(o, 3, 0, 0), 0);
	ck_assert_uint_eq(ir_outbox_next_wakeup(o), T0 + 60 * MS + ACK_NS);
	ck_assert_int_eq(ir_outbox_give_up(o, 1, 0, 0, NULL), 0);
	ck_assert_uint_eq(ir_outbox_next_wakeup(o), 0);
	/* a deadline of 0 still arms a timer */
	ck_assert_int_eq(add(o, 4, 0, 0, 1, 0, "a", 0), 0);
	ck_assert_uint_eq(ir_outbox_next_wakeup(o), 1);
	ir_outbox_free(o);
}
END_TEST

/* ---- the random run against a model ---- */

#define NKEYS 20000u
#define NPEERS 8u
#define MAXDUE 64u

struct ment {
	bool live;
	uint64_t ack, dl;
	uint32_t attempts;
	uint8_t tried[IR_OUTBOX_MAX_ATTEMPTS]; /* peer numbers */
	size_t len;
};

struct model {
	struct ment e[NKEYS];
	size_t entries, bytes, max_entries, max_bytes;
	uint32_t max_attempts;
};

static uint64_t rng_state;

static uint64_t rng(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* Key i: four outputs per request (two functions x two branches). */
static uint64_t k_req(size_t i)
{
	uint64_t q = (i / 4 + 1) * 0x9e3779b97f4a7c15ull;
	return q ^ (q >> 29);
}

static uint16_t k_fn(size_t i)
{
	return (uint16_t)(i % 2);
}

static uint16_t k_branch(size_t i)
{
	return (uint16_t)((i / 2) % 2);
}

static const char *peer(unsigned p)
{
	static const char *const ids[NPEERS] = {"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"};
	return ids[p];
}

/* Key order as the outbox breaks ties; every key is distinct. */
static int key_cmp(size_t a, size_t b)
{
	if (k_req(a) != k_req(b))
		return k_req(a) < k_req(b) ? -1 : 1;
	if (k_fn(a) != k_fn(b))
		return k_fn(a) < k_fn(b) ? -1 : 1;
	return k_branch(a) < k_branch(b) ? -1 : 1;
}

static const struct model *sort_m;
static int sort_by_ack;

static int cmp_idx(const void *pa, const void *pb)
{
	size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
	uint64_t ta = sort_by_ack ? sort_m->e[a].ack : sort_m->e[a].dl;
	uint64_t tb = sort_by_ack ? sort_m->e[b].ack : sort_m->e[b].dl;
	if (ta != tb)
		return ta < tb ? -1 : 1;
	return key_cmp(a, b);
}

/* The keys the model says are due (by_ack) or expired at @now, in order. */
static size_t m_select(const struct model *m, uint64_t now, int by_ack, size_t *out)
{
	size_t n = 0;
	for (size_t i = 0; i < NKEYS; i++) {
		const struct ment *e = &m->e[i];
		if (!e->live)
			continue;
		if (by_ack ? (e->ack <= now && e->dl > now) : e->dl <= now)
			out[n++] = i;
	}
	sort_m = m;
	sort_by_ack = by_ack;
	qsort(out, n, sizeof(*out), cmp_idx);
	return n;
}

static size_t key_index(uint64_t req, uint16_t fn, uint16_t branch, const size_t *hint, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (k_req(hint[i]) == req && k_fn(hint[i]) == fn && k_branch(hint[i]) == branch)
			return hint[i];
	return SIZE_MAX;
}

static void m_drop(struct model *m, size_t i)
{
	m->e[i].live = false;
	m->entries--;
	m->bytes -= m->e[i].len;
}

static void r_add(struct ir_outbox *o, struct model *m, size_t i, uint64_t now)
{
	struct ment *e = &m->e[i];
	size_t len = rng() % 48;
	uint64_t dl = now + (rng() % 2000) * MS;
	unsigned p = (unsigned)(rng() % NPEERS);
	int want = 0;
	if (e->live)
		want = -EEXIST;
	else if (m->entries >= m->max_entries || len > m->max_bytes - m->bytes)
		want = -ENOSPC;
	int got = add(o, k_req(i), k_fn(i), k_branch(i), len, dl, peer(p), now);
	ck_assert_int_eq(got, want);
	if (want)
		return;
	*e = (struct ment){.live = true, .ack = now + ACK_NS, .dl = dl, .attempts = 1, .len = len};
	e->tried[0] = (uint8_t)p;
	m->entries++;
	m->bytes += len;
}

static void m_fail(struct ment *e, uint64_t now)
{
	if (e->ack > now)
		e->ack = now;
}

static size_t m_peer_lost(struct model *m, unsigned p, uint64_t now)
{
	size_t n = 0;
	for (size_t i = 0; i < NKEYS; i++) {
		struct ment *e = &m->e[i];
		if (!e->live || e->dl <= now || e->tried[e->attempts - 1] != p)
			continue;
		m_fail(e, now);
		n++;
	}
	return n;
}

struct xlog {
	size_t n, cap;
	size_t *key;
	uint32_t *attempts;
	const size_t *want;
};

static void on_expire_log(void *arg, uint64_t req, uint16_t fn, uint16_t branch, uint32_t attempts)
{
	struct xlog *x = arg;
	size_t i = x->n < x->cap ? key_index(req, fn, branch, x->want + x->n, 1) : SIZE_MAX;
	if (x->n < x->cap) {
		x->key[x->n] = i;
		x->attempts[x->n] = attempts;
	}
	x->n++;
}

static void r_expire(struct ir_outbox *o, struct model *m, uint64_t now, size_t *want, size_t *got,
		     uint32_t *att)
{
	size_t n = m_select(m, now, 0, want);
	struct xlog x = {.cap = NKEYS, .key = got, .attempts = att, .want = want};
	ck_assert_uint_eq(ir_outbox_expire(o, now, on_expire_log, &x), n);
	ck_assert_uint_eq(x.n, n);
	size_t bad = 0;
	for (size_t k = 0; k < n; k++) {
		bad += got[k] != want[k] || att[k] != m->e[want[k]].attempts;
		m_drop(m, want[k]);
	}
	ck_assert_msg(bad == 0, "%zu expiries differ from the model", bad);
}

/* The next peer for key i: one not tried yet, or -1. */
static int next_peer(const struct ment *e)
{
	unsigned start = (unsigned)(rng() % NPEERS);
	for (unsigned k = 0; k < NPEERS; k++) {
		unsigned p = (start + k) % NPEERS;
		bool seen = false;
		for (uint32_t a = 0; a < e->attempts; a++)
			seen |= e->tried[a] == p;
		if (!seen)
			return (int)p;
	}
	return -1;
}

static size_t check_item(const struct model *m, size_t i, const struct ir_outbox_item *it)
{
	const struct ment *e = &m->e[i];
	size_t bad = it->req != k_req(i) || it->fn != k_fn(i) || it->branch != k_branch(i);
	bad += it->attempts != e->attempts || it->ntried != e->attempts;
	bad += it->exhausted != (e->attempts >= m->max_attempts);
	bad += it->deadline_ns != e->dl || it->len != e->len || bad_bytes(it) != 0;
	for (uint32_t a = 0; a < e->attempts && !bad; a++)
		bad += strcmp(it->tried[a], peer(e->tried[a])) != 0;
	return bad;
}

/* Compares due() with the model, then acts on each item as a caller would. */
static void r_due(struct ir_outbox *o, struct model *m, uint64_t now, size_t *want)
{
	struct ir_outbox_item it[MAXDUE];
	size_t max = 1 + rng() % MAXDUE;
	size_t n = m_select(m, now, 1, want);
	if (n > max)
		n = max;
	ck_assert_uint_eq(ir_outbox_due(o, now, it, max), n);
	size_t bad = 0;
	for (size_t k = 0; k < n; k++)
		bad += check_item(m, want[k], &it[k]);
	ck_assert_msg(bad == 0, "%zu due items differ from the model", bad);
	for (size_t k = 0; k < n; k++) {
		size_t i = want[k];
		struct ment *e = &m->e[i];
		int p = next_peer(e);
		unsigned r = (unsigned)(rng() % 8);
		if (r == 0)
			continue; /* left due: must come back next time */
		if (it[k].exhausted || p < 0 || r == 1) {
			uint64_t dl = 0;
			ck_assert_int_eq(ir_outbox_give_up(o, k_req(i), k_fn(i), k_branch(i), &dl),
					 0);
			ck_assert_uint_eq(dl, e->dl);
			m_drop(m, i);
			continue;
		}
		ck_assert_int_eq(
		    ir_outbox_resent(o, k_req(i), k_fn(i), k_branch(i), peer((unsigned)p), now), 0);
		e->tried[e->attempts++] = (uint8_t)p;
		e->ack = now + ACK_NS;
	}
}

static uint64_t m_wakeup(const struct model *m)
{
	uint64_t t = UINT64_MAX;
	for (size_t i = 0; i < NKEYS; i++) {
		const struct ment *e = &m->e[i];
		if (!e->live)
			continue;
		t = e->ack < t ? e->ack : t;
		t = e->dl < t ? e->dl : t;
	}
	return t == UINT64_MAX ? 0 : t;
}

static void r_step(struct ir_outbox *o, struct model *m, uint64_t now)
{
	size_t i = rng() % NKEYS;
	struct ment *e = &m->e[i];
	unsigned r = (unsigned)(rng() % 100);
	if (r < 55) {
		r_add(o, m, i, now);
	} else if (r < 80) {
		ck_assert_int_eq(ir_outbox_ack(o, k_req(i), k_fn(i), k_branch(i)),
				 e->live ? 0 : -ENOENT);
		if (e->live)
			m_drop(m, i);
	} else if (r < 97) {
		ck_assert_int_eq(ir_outbox_failed(o, k_req(i), k_fn(i), k_branch(i), now),
				 e->live ? 0 : -ENOENT);
		if (e->live)
			m_fail(e, now);
	} else {
		unsigned p = (unsigned)(rng() % NPEERS);
		ck_assert_uint_eq(ir_outbox_peer_lost(o, peer(p), now), m_peer_lost(m, p, now));
	}
}

START_TEST(random_against_model)
{
	struct model *m = calloc(1, sizeof(*m));
	size_t *want = calloc(NKEYS, sizeof(*want));
	size_t *got = calloc(NKEYS, sizeof(*got));
	uint32_t *att = calloc(NKEYS, sizeof(*att));
	ck_assert(m && want && got && att);
	m->max_entries = 15000;
	m->max_bytes = 15000 * 20;
	m->max_attempts = 4;
	struct ir_outbox *o = mkob(m->max_entries, m->max_bytes, m->max_attempts);
	rng_state = 0x1234567887654321ull;
	size_t rounds = test_light() ? 300 : 3000;
	uint64_t now = T0;
	for (size_t round = 0; round < rounds; round++) {
		for (int s = 0; s < 40; s++)
			r_step(o, m, now);
		now += (rng() % 20) * MS;
		if (rng() % 4)
			r_due(o, m, now, want);
		if (rng() % 3 == 0) {
			r_expire(o, m, now, want, got, att);
			ck_assert_uint_eq(ir_outbox_next_wakeup(o), m_wakeup(m));
		}
		struct ir_outbox_stats s = stats(o);
		ck_assert_uint_eq(s.entries, m->entries);
		ck_assert_uint_eq(s.bytes, m->bytes);
	}
	struct ir_outbox_stats s = stats(o);
	ck_assert_uint_gt(s.expired, 1000);
	ck_assert_uint_gt(s.resent, 1000);
	ck_assert_uint_gt(s.gave_up, 100);
	ck_assert_uint_gt(s.acked, 1000);
	ck_assert_uint_gt(s.refused, 1000);
	ck_assert_uint_gt(m->entries, 1000); /* still holding plenty: freed by ir_outbox_free */
	ir_outbox_free(o);
	free(att);
	free(got);
	free(want);
	free(m);
}
END_TEST

Suite *outbox_suite(void)
{
	Suite *s = suite_create("outbox");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, new_rejects_bad);
	tcase_add_test(tc, add_ack_round_trip);
	tcase_add_test(tc, add_exists_and_invalid);
	tcase_add_test(tc, bounds_nospc);
	tcase_add_test(tc, due_after_timeout_earliest_first);
	tcase_add_test(tc, resent_records_attempt);
	tcase_add_test(tc, failed_due_at_once);
	tcase_add_test(tc, peer_lost_marks_last_sent);
	tcase_add_test(tc, exhausted_after_max_attempts);
	tcase_add_test(tc, expire_drops_past_deadline);
	tcase_add_test(tc, next_wakeup_tracks);
	suite_add_tcase(s, tc);
	TCase *tr = tcase_create("random");
	tcase_set_timeout(tr, 120);
	tcase_add_test(tr, random_against_model);
	suite_add_tcase(s, tr);
	return s;
}
