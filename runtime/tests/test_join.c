/* test_join.c - the join collector: order, duplicates, the done set, bounds, expiry.
 *
 * Every buffer handed in is malloc()ed with contents derived from (request,
 * branch, length), so a READY result is checked byte for byte without
 * keeping copies; buffers that the collector must free (duplicates,
 * refusals, expiry, ir_join_free) are left to ASan/valgrind to account
 * for.  Nothing here reads a clock: deadlines are plain numbers and "now"
 * is whatever the test passes to ir_join_expire().
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "join.h"
#include "tests.h"

Suite *join_suite(void);

#define FAR 1000000000ull /* a deadline no test reaches unless it says so */

static uint8_t pat(uint64_t req, uint32_t branch, size_t i)
{
	return (uint8_t)(req * 31u + branch * 7u + i * 13u + 1u);
}

static void *mk(uint64_t req, uint32_t branch, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < len; i++)
		p[i] = pat(req, branch, i);
	return p;
}

/* One assertion per buffer: Check reports every passing one to its parent. */
static void check_buf(const void *buf, size_t len, uint64_t req, uint32_t branch, size_t want)
{
	const uint8_t *p = buf;
	size_t bad = 0;
	ck_assert_uint_eq(len, want);
	for (size_t i = 0; i < len; i++)
		bad += p[i] != pat(req, branch, i);
	ck_assert_msg(bad == 0, "req %llu branch %u: %zu bytes differ", (unsigned long long)req,
		      branch, bad);
}

/* Add branch @b of request @r (k @k), a buffer of @len bytes. */
static int add(struct ir_join *j, uint64_t r, uint32_t k, uint32_t b, size_t len, uint64_t dl,
	       struct ir_join_ready *out)
{
	return ir_join_add(j, r, k, b, mk(r, b, len), len, dl, out);
}

static struct ir_join *mkjoin(size_t max_pending, size_t max_bytes)
{
	struct ir_join *j;
	ck_assert_int_eq(ir_join_new(&j, max_pending, max_bytes), 0);
	return j;
}

/* A bijection (odd multiplier, xor-shift): distinct, random-looking ids. */
static uint64_t mix_id(uint64_t q)
{
	q *= 0x9e3779b97f4a7c15ull;
	return q ^ (q >> 29);
}

static uint64_t rng_state;

static uint64_t rng(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

struct expired {
	size_t n;
	uint64_t req[8];
	uint32_t have[8], k[8];
};

static void on_expire(void *arg, uint64_t req, uint32_t have, uint32_t k)
{
	struct expired *x = arg;
	if (x->n < 8) {
		x->req[x->n] = req;
		x->have[x->n] = have;
		x->k[x->n] = k;
	}
	x->n++;
}

START_TEST(new_rejects_zero)
{
	struct ir_join *j = (void *)1;
	ck_assert_int_eq(ir_join_new(&j, 0, 100), -EINVAL);
	ck_assert_ptr_null(j);
	ck_assert_int_eq(ir_join_new(&j, 10, 0), -EINVAL);
	ir_join_free(NULL);
}
END_TEST

START_TEST(k1_ready_then_dup)
{
	struct ir_join *j = mkjoin(4, 1024);
	struct ir_join_ready r;
	ck_assert_int_eq(add(j, 42, 1, 0, 10, FAR, &r), IR_JOIN_READY);
	ck_assert_uint_eq(r.req, 42);
	ck_assert_uint_eq(r.k, 1);
	check_buf(r.buf[0], r.len[0], 42, 0, 10);
	ir_join_ready_free(&r);
	ck_assert_ptr_null(r.buf);
	ir_join_ready_free(&r); /* zeroed: no-op */

	ck_assert_int_eq(add(j, 42, 1, 0, 10, FAR, &r), IR_JOIN_DUP);
	ck_assert_ptr_null(r.buf);
	struct ir_join_stats s;
	ir_join_stats(j, &s);
	ck_assert_uint_eq(s.ready, 1);
	ck_assert_uint_eq(s.dups, 1);
	ck_assert_uint_eq(s.pending, 0);
	ck_assert_uint_eq(s.bytes, 0);
	ck_assert_uint_eq(s.done, 1);
	ck_assert_uint_eq(ir_join_next_deadline(j), 0); /* done entries arm no timer */
	ir_join_free(j);
}
END_TEST

START_TEST(k3_out_of_order)
{
	struct ir_join *j = mkjoin(4, 1024);
	struct ir_join_ready r;
	ck_assert_int_eq(add(j, 7, 3, 2, 30, FAR, &r), IR_JOIN_PENDING);
	ck_assert_ptr_null(r.buf);
	ck_assert_int_eq(add(j, 7, 3, 0, 10, FAR, &r), IR_JOIN_PENDING);
	struct ir_join_stats s;
	ir_join_stats(j, &s);
	ck_assert_uint_eq(s.pending, 1);
	ck_assert_uint_eq(s.bytes, 40);
	ck_assert_int_eq(add(j, 7, 3, 1, 0, FAR, &r), IR_JOIN_READY);
	ck_assert_uint_eq(r.req, 7);
	ck_assert_uint_eq(r.k, 3);
	check_buf(r.buf[0], r.len[0], 7, 0, 10);
	check_buf(r.buf[1], r.len[1], 7, 1, 0);
	check_buf(r.buf[2], r.len[2], 7, 2, 30);
	ir_join_ready_free(&r);
	ir_join_stats(j, &s);
	ck_assert_uint_eq(s.pending, 0);
	ck_assert_uint_eq(s.bytes, 0);
	ck_assert_uint_eq(s.ready, 1);
	ir_join_free(j);
}
END_TEST

/* k = IR_JOIN_MAX_K in reverse order: the presence bitmap spans many words. */
START_TEST(max_k_reverse)
{
	struct ir_join *j = mkjoin(4, 1 << 20);
	struct ir_join_ready r;
	uint32_t k = IR_JOIN_MAX_K;
	for (uint32_t b = k - 1; b > 0; b--) {
		ck_assert_int_eq(add(j, 9, k, b, b % 5, FAR, &r), IR_JOIN_PENDING);
		ck_assert_int_eq(add(j, 9, k, b, 3, FAR, &r), IR_JOIN_DUP);
	}
	ck_assert_int_eq(add(j, 9, k, 0, 0, FAR, &r), IR_JOIN_READY);
	for (uint32_t b = 0; b < k; b++)
		check_buf(r.buf[b], r.len[b], 9, b, b % 5);
	ir_join_ready_free(&r);
	ir_join_free(j);
}
END_TEST

START_TEST(dup_while_pending)
{
	struct ir_join *j = mkjoin(4, 1024);
	struct ir_join_ready r;
	ck_assert_int_eq(add(j, 5, 2, 0, 8, FAR, &r), IR_JOIN_PENDING);
	/* a copy with other contents: dropped, the first one is kept */
	ck_assert_int_eq(ir_join_add(j, 5, 2, 0, mk(99, 99, 20), 20, FAR, &r), IR_JOIN_DUP);
	struct ir_join_stats s;
	ir_join_stats(j, &s);
	ck_assert_uint_eq(s.dups, 1);
	ck_assert_uint_eq(s.bytes, 8);
	ck_assert_int_eq(add(j, 5, 2, 1, 4, FAR, &r), IR_JOIN_READY);
	check_buf(r.buf[0], r.len[0], 5, 0, 8);
	check_buf(r.buf[1], r.len[1], 5, 1, 4);
	ir_join_ready_free(&r);
	ir_join_free(j);
}
END_TEST

START_TEST(done_until_deadline)
{
	struct ir_join *j = mkjoin(4, 1024);
	struct ir_join_ready r;
	ck_assert_int_eq(add(j, 11, 2, 1, 4, 500, &r), IR_JOIN_PENDING);
	ck_assert_int_eq(add(j, 11, 2, 0, 4, 500, &r), IR_JOIN_READY);
	ir_join_ready_free(&r);
	for (uint32_t b = 0; b < 2; b++)
		ck_assert_int_eq(add(j, 11, 2, b, 4, 500, &r), IR_JOIN_DUP);
	ck_assert_uint_eq(ir_join_expire(j, 499, NULL, NULL), 0);
	ck_assert_int_eq(add(j, 11, 2, 0, 4, 500, &r), IR_JOIN_DUP);
	struct ir_join_stats s;
	ir_join_stats(j, &s);
	ck_assert_uint_eq(s.done, 1);
	ck_assert_uint_eq(s.dups, 3);

	/* past the deadline: forgotten, no callback (it was not pending) */
	struct expired x = {0};
	ck_assert_uint_eq(ir_join_expire(j, 500, on_expire, &x), 0);
	ck_assert_uint_eq(x.n, 0);
	ir_join_stats(j, &s);
	ck_assert_uint_eq(s.done, 0);
	ck_assert_uint_eq(s.expired, 0);
	ck_assert_int_eq(add(j, 11, 2, 0, 4, 900, &r), IR_JOIN_PENDING);
	ir_join_free(j); /* with a request still pending */
}
END_TEST

START_TEST(einval)
{
	struct ir_join *j = mkjoin(4, 1024);
	struct ir_join_ready r;
	ck_assert_int_eq(add(j, 1, 0, 0, 4, FAR, &r), -EINVAL);
	ck_assert_int_eq(add(j, 1, 3, 3, 4, FAR, &r), -EINVAL);
	ck_assert_int_eq(add(j, 1, 3, 7, 4, FAR, &r), -EINVAL);
	ck_assert_int_eq(add(j, 1, IR_JOIN_MAX_K + 1, 0, 4, FAR, &r), -EINVAL);
	ck_assert_int_eq(add(j, 1, UINT32_MAX, 0, 4, FAR, &r), -EINVAL);
	ck_assert_int_eq(ir_join_add(j, 1, 2, 0, NULL, 4, FAR, &r), -EINVAL);
	struct ir_join_stats s;
	ir_join_stats(j, &s);
	ck_assert_uint_eq(s.pending, 0);
	ck_assert_uint_eq(s.refused, 6);

	/* k mismatch against a pending request, then against a done one */
	ck_assert_int_eq(add(j, 1, 3, 0, 4, FAR, &r), IR_JOIN_PENDING);
	ck_assert_int_eq(add(j, 1, 2, 1, 4, FAR, &r), -EINVAL);
	ck_assert_int_eq(add(j, 1, 4, 1, 4, FAR, &r), -EINVAL);
	ir_join_stats(j, &s);
	ck_assert_uint_eq(s.bytes, 4);
	ck_assert_int_eq(add(j, 2, 1, 0, 4, FAR, &r), IR_JOIN_READY);
	ir_join_ready_free(&r);
	ck_assert_int_eq(add(j, 2, 2, 0, 4, FAR, &r), -EINVAL);
	ir_join_stats(j, &s);
	ck_assert_uint_eq(s.refused, 9);
	ck_assert_uint_eq(s.dups, 0);

	/* the edges that are legal: NULL with 0 bytes, k == max */
	ck_assert_int_eq(ir_join_add(j, 1, 3, 1, NULL, 0, FAR, &r), IR_JOIN_PENDING);
	ck_assert_int_eq(add(j, 3, IR_JOIN_MAX_K, IR_JOIN_MAX_K - 1, 4, FAR, &r), IR_JOIN_PENDING);
	ck_assert_int_eq(add(j, 1, 3, 2, 4, FAR, &r), IR_JOIN_READY);
	ck_assert_ptr_null(r.buf[1]);
	ck_assert_uint_eq(r.len[1], 0);
	ir_join_ready_free(&r);
	ir_join_free(j);
}
END_TEST

START_TEST(bound_pending)
{
	struct ir_join *j = mkjoin(2, 1024);
	struct ir_join_ready r;
	struct ir_join_stats s;
	ck_assert_int_eq(add(j, 1, 2, 0, 4, 100, &r), IR_JOIN_PENDING);
	ck_assert_int_eq(add(j, 2, 3, 0, 4, 200, &r), IR_JOIN_PENDING);
	ck_assert_int_eq(add(j, 3, 2, 0, 4, 50, &r), -ENOSPC);
	ir_join_stats(j, &s);
	ck_assert_uint_eq(s.pending, 2);
	ck_assert_uint_eq(s.bytes, 8);
	ck_assert_uint_eq(s.refused, 1);
	ck_assert_uint_eq(ir_join_next_deadline(j), 100); /* 3's deadline was not stored */
	/* full: a known request still takes branches, k = 1 still runs */
	ck_assert_int_eq(add(j, 2, 3, 1, 4, 200, &r), IR_JOIN_PENDING);
	ck_assert_int_eq(add(j, 4, 1, 0, 4, 200, &r), IR_JOIN_READY);
	ir_join_ready_free(&r);

	/* READY makes room */
	ck_assert_int_eq(add(j, 1, 2, 1, 4, 100, &r), IR_JOIN_READY);
	ir_join_ready_free(&r);
	ck_assert_int_eq(add(j, 3, 2, 0, 4, 50, &r), IR_JOIN_PENDING);
	ck_assert_int_eq(add(j, 5, 2, 0, 4, 300, &r), -ENOSPC);
	/* and so does expiry */
	ck_assert_uint_eq(ir_join_expire(j, 60, NULL, NULL), 1);
	ck_assert_int_eq(add(j, 5, 2, 0, 4, 300, &r), IR_JOIN_PENDING);
	ir_join_stats(j, &s);
	ck_assert_uint_eq(s.pending, 2);
	ck_assert_uint_eq(s.refused, 2);
	ck_assert_uint_eq(s.expired, 1);
	ir_join_free(j);
}
END_TEST

START_TEST(bound_bytes)
{
	struct ir_join *j = mkjoin(8, 100);
	struct ir_join_ready r;
	struct ir_join_stats s;
	ck_assert_int_eq(add(j, 1, 2, 0, 60, 100, &r), IR_JOIN_PENDING);
	ck_assert_int_eq(add(j, 2, 3, 0, 41, 200, &r), -ENOSPC);
	ck_assert_int_eq(add(j, 1, 2, 0, 0, 100, &r), IR_JOIN_DUP);
	ck_assert_int_eq(add(j, 2, 3, 0, 40, 200, &r), IR_JOIN_PENDING); /* exactly full */
	ck_assert_int_eq(add(j, 2, 3, 1, 1, 200, &r), -ENOSPC);		 /* a known request too */
	ck_assert_int_eq(add(j, 3, 2, 0, 1, 200, &r), -ENOSPC);
	ir_join_stats(j, &s);
	ck_assert_uint_eq(s.bytes, 100);
	ck_assert_uint_eq(s.pending, 2);
	ck_assert_uint_eq(s.refused, 3);
	/* the completing branch is never refused, however large */
	ck_assert_int_eq(add(j, 1, 2, 1, 500, 100, &r), IR_JOIN_READY);
	check_buf(r.buf[1], r.len[1], 1, 1, 500);
	ir_join_ready_free(&r);
	ir_join_stats(j, &s);
	ck_assert_uint_eq(s.bytes, 40);
	ck_assert_int_eq(add(j, 2, 3, 1, 60, 200, &r), IR_JOIN_PENDING);
	ck_assert_int_eq(add(j, 3, 2, 0, 1, 300, &r), -ENOSPC);
	/* expiry frees the bytes */
	struct expired x = {0};
	ck_assert_uint_eq(ir_join_expire(j, 200, on_expire, &x), 1);
	ck_assert_uint_eq(x.n, 1);
	ck_assert_uint_eq(x.req[0], 2);
	ck_assert_uint_eq(x.have[0], 2);
	ck_assert_uint_eq(x.k[0], 3);
	ir_join_stats(j, &s);
	ck_assert_uint_eq(s.bytes, 0);
	ck_assert_int_eq(add(j, 3, 2, 0, 100, 300, &r), IR_JOIN_PENDING);
	ir_join_free(j);
}
END_TEST

START_TEST(expire_and_next_deadline)
{
	struct ir_join *j = mkjoin(16, 1024);
	struct ir_join_ready r;
	struct expired x = {0};
	ck_assert_uint_eq(ir_join_next_deadline(j), 0);
	ck_assert_uint_eq(ir_join_expire(j, FAR, on_expire, &x), 0);
	ck_assert_int_eq(add(j, 30, 2, 0, 4, 300, &r), IR_JOIN_PENDING);
	ck_assert_uint_eq(ir_join_next_deadline(j), 300);
	ck_assert_int_eq(add(j, 10, 3, 1, 4, 100, &r), IR_JOIN_PENDING);
	ck_assert_uint_eq(ir_join_next_deadline(j), 100);
	ck_assert_int_eq(add(j, 20, 4, 3, 4, 200, &r), IR_JOIN_PENDING);
	ck_assert_int_eq(add(j, 20, 4, 0, 4, 200, &r), IR_JOIN_PENDING);
	ck_assert_int_eq(add(j, 25, 2, 0, 4, 250, &r), IR_JOIN_PENDING);
	ck_assert_uint_eq(ir_join_next_deadline(j), 100);
	/* a later branch does not move the deadline */
	ck_assert_int_eq(add(j, 30, 2, 0, 4, 50, &r), IR_JOIN_DUP);
	ck_assert_uint_eq(ir_join_next_deadline(j), 100);

	/* completing the earliest moves the timer on */
	ck_assert_int_eq(add(j, 10, 3, 0, 4, 100, &r), IR_JOIN_PENDING);
	ck_assert_int_eq(add(j, 10, 3, 2, 4, 100, &r), IR_JOIN_READY);
	ir_join_ready_free(&r);
	ck_assert_uint_eq(ir_join_next_deadline(j), 200);

	ck_assert_uint_eq(ir_join_expire(j, 199, on_expire, &x), 0);
	ck_assert_uint_eq(x.n, 0);
	ck_assert_uint_eq(ir_join_expire(j, 260, on_expire, &x), 2);
	ck_assert_uint_eq(x.n, 2);
	ck_assert_uint_eq(x.req[0], 20); /* earliest first */
	ck_assert_uint_eq(x.have[0], 2);
	ck_assert_uint_eq(x.k[0], 4);
	ck_assert_uint_eq(x.req[1], 25);
	ck_assert_uint_eq(x.have[1], 1);
	ck_assert_uint_eq(x.k[1], 2);
	ck_assert_uint_eq(ir_join_next_deadline(j), 300);
	/* expired: gone, a late branch starts over (the caller would drop it) */
	ck_assert_int_eq(add(j, 20, 4, 3, 4, 900, &r), IR_JOIN_PENDING);
	ck_assert_uint_eq(ir_join_expire(j, FAR, on_expire, &x), 2);
	ck_assert_uint_eq(x.n, 4);
	ck_assert_uint_eq(ir_join_next_deadline(j), 0);
	struct ir_join_stats s;
	ir_join_stats(j, &s);
	ck_assert_uint_eq(s.expired, 4);
	ck_assert_uint_eq(s.pending, 0);
	ck_assert_uint_eq(s.bytes, 0);
	ck_assert_uint_eq(s.done, 0); /* request 10's done entry went at 260 */

	/* a deadline of 0 still arms a timer */
	ck_assert_int_eq(add(j, 40, 2, 0, 4, 0, &r), IR_JOIN_PENDING);
	ck_assert_uint_eq(ir_join_next_deadline(j), 1);
	ck_assert_uint_eq(ir_join_expire(j, 0, NULL, NULL), 1);
	ir_join_free(j);
}
END_TEST

/* Nothing due: each call looks at the heap top and returns.  A sanity
 * check, not a measurement (no clock is read): a scan per call would be
 * 10^9 steps here, slow enough to notice, not necessarily to fail. */
START_TEST(expire_nothing_due)
{
	size_t n = test_light() ? 10000 : 100000;
	struct ir_join *j = mkjoin(n, n * 8);
	struct ir_join_ready r;
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(add(j, i, 2, i & 1, 8, FAR + n - i, &r), IR_JOIN_PENDING);
	ck_assert_uint_eq(ir_join_next_deadline(j), FAR + 1);
	struct expired x = {0};
	for (size_t i = 0; i < 10000; i++)
		ck_assert_uint_eq(ir_join_expire(j, FAR, on_expire, &x), 0);
	ck_assert_uint_eq(x.n, 0);
	struct ir_join_stats s;
	ir_join_stats(j, &s);
	ck_assert_uint_eq(s.pending, n);
	ck_assert_uint_eq(s.bytes, n * 8);
	/* the latest half */
	ck_assert_uint_eq(ir_join_expire(j, FAR + n / 2, on_expire, &x), n / 2);
	ck_assert_uint_eq(x.req[0], n - 1);
	ck_assert_uint_eq(ir_join_next_deadline(j), FAR + n / 2 + 1);
	ck_assert_uint_eq(ir_join_expire(j, UINT64_MAX, on_expire, &x), n - n / 2);
	ck_assert_uint_eq(x.n, n);
	ir_join_stats(j, &s);
	ck_assert_uint_eq(s.pending, 0);
	ck_assert_uint_eq(s.bytes, 0);
	ck_assert_uint_eq(s.expired, n);
	ir_join_free(j);
}
END_TEST

/* max_pending 1: the done set holds 4; the fifth completion forgets the
 * earliest deadline, whose duplicate then runs again. */
START_TEST(done_eviction)
{
	struct ir_join *j = mkjoin(1, 1024);
	struct ir_join_ready r;
	static const uint64_t dl[5] = {40, 10, 50, 30, 20};
	for (uint64_t i = 0; i < 5; i++) {
		ck_assert_int_eq(add(j, 100 + i, 1, 0, 4, dl[i], &r), IR_JOIN_READY);
		ir_join_ready_free(&r);
	}
	struct ir_join_stats s;
	ir_join_stats(j, &s);
	ck_assert_uint_eq(s.done, 4);
	ck_assert_uint_eq(s.evicted, 1);
	ck_assert_int_eq(add(j, 101, 1, 0, 4, 10, &r), IR_JOIN_READY); /* deadline 10: evicted */
	ir_join_ready_free(&r);
	/* that evicted 104 (deadline 20), the earliest left */
	ck_assert_int_eq(add(j, 104, 1, 0, 4, 20, &r), IR_JOIN_READY);
	ir_join_ready_free(&r);
	ck_assert_int_eq(add(j, 100, 1, 0, 4, 40, &r), IR_JOIN_DUP);
	ck_assert_int_eq(add(j, 102, 1, 0, 4, 50, &r), IR_JOIN_DUP);
	ir_join_stats(j, &s);
	ck_assert_uint_eq(s.evicted, 3);
	ck_assert_uint_eq(s.done, 4);
	ir_join_free(j);
}
END_TEST

/* Structured ids (only high bits differ) through many deletions: the table
 * must still find every survivor after backward shifts. */
START_TEST(structured_ids_churn)
{
	const uint64_t n = 4000;
	struct ir_join *j = mkjoin(n, n * 4);
	struct ir_join_ready r;
	for (uint64_t i = 0; i < n; i++)
		ck_assert_int_eq(add(j, i << 40, 2, 0, 4, i, &r), IR_JOIN_PENDING);
	for (uint64_t i = 1; i < n; i += 2) {
		ck_assert_int_eq(add(j, i << 40, 2, 1, 4, i, &r), IR_JOIN_READY);
		ck_assert_uint_eq(r.req, i << 40);
		ir_join_ready_free(&r);
	}
	ck_assert_uint_eq(ir_join_expire(j, n / 2, NULL, NULL), n / 4 + 1);
	for (uint64_t i = 0; i < n; i++) {
		int want = i <= n / 2 ? IR_JOIN_PENDING : i & 1 ? IR_JOIN_DUP : IR_JOIN_READY;
		ck_assert_int_eq(add(j, i << 40, 2, 1, 4, FAR, &r), want);
		ir_join_ready_free(&r);
	}
	ir_join_free(j);
}
END_TEST

/* 10k requests x 4 branches, shuffled, with about one in five sent twice
 * (a duplicate may land before or after its request completes). */
START_TEST(many_interleaved)
{
	const uint32_t k = 4;
	const size_t nreq = test_light() ? 2000 : 10000;
	size_t nmsg = nreq * k * 6 / 5 + 1, m = 0;
	uint64_t *msg = malloc(nmsg * sizeof(*msg));
	uint8_t *seen = calloc(nreq, 1);
	ck_assert_ptr_nonnull(msg);
	ck_assert_ptr_nonnull(seen);
	rng_state = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < nreq; i++)
		for (uint32_t b = 0; b < k; b++) {
			msg[m++] = i * k + b;
			if (rng() % 5 == 0 && m < nmsg)
				msg[m++] = i * k + b;
		}
	for (size_t i = m - 1; i > 0; i--) {
		size_t o = rng() % (i + 1);
		uint64_t t = msg[i];
		msg[i] = msg[o];
		msg[o] = t;
	}
	struct ir_join *j = mkjoin(nreq, nreq * k * 64);
	size_t count[3] = {0};
	for (size_t i = 0; i < m; i++) {
		size_t q = msg[i] / k;
		uint64_t req = mix_id(q);
		uint32_t b = msg[i] % k;
		struct ir_join_ready r;
		int rc = add(j, req, k, b, (q + b) % 64, FAR + q, &r);
		ck_assert_int_ge(rc, 0);
		count[rc]++;
		if (rc != IR_JOIN_READY)
			continue;
		ck_assert_uint_eq(seen[q]++, 0);
		ck_assert_uint_eq(r.req, req);
		for (uint32_t c = 0; c < k; c++)
			check_buf(r.buf[c], r.len[c], req, c, (q + c) % 64);
		ir_join_ready_free(&r);
	}
	for (size_t q = 0; q < nreq; q++)
		ck_assert_uint_eq(seen[q], 1);
	struct ir_join_stats s;
	ir_join_stats(j, &s);
	ck_assert_uint_eq(count[IR_JOIN_READY], nreq);
	ck_assert_uint_eq(count[IR_JOIN_PENDING], nreq * (k - 1));
	ck_assert_uint_eq(count[IR_JOIN_DUP], m - nreq * k);
	ck_assert_uint_eq(s.ready, nreq);
	ck_assert_uint_eq(s.dups, m - nreq * k);
	ck_assert_uint_eq(s.pending, 0);
	ck_assert_uint_eq(s.bytes, 0);
	ck_assert_uint_eq(s.done, nreq);
	ck_assert_uint_eq(s.refused, 0);
	ck_assert_uint_eq(s.evicted, 0);
	ck_assert_uint_eq(ir_join_expire(j, UINT64_MAX, NULL, NULL), 0);
	ir_join_stats(j, &s);
	ck_assert_uint_eq(s.done, 0);
	ir_join_free(j);
	free(seen);
	free(msg);
}
END_TEST

Suite *join_suite(void)
{
	Suite *s = suite_create("join");
	TCase *tc = tcase_create("join");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, new_rejects_zero);
	tcase_add_test(tc, k1_ready_then_dup);
	tcase_add_test(tc, k3_out_of_order);
	tcase_add_test(tc, max_k_reverse);
	tcase_add_test(tc, dup_while_pending);
	tcase_add_test(tc, done_until_deadline);
	tcase_add_test(tc, einval);
	tcase_add_test(tc, bound_pending);
	tcase_add_test(tc, bound_bytes);
	tcase_add_test(tc, expire_and_next_deadline);
	tcase_add_test(tc, expire_nothing_due);
	tcase_add_test(tc, done_eviction);
	tcase_add_test(tc, structured_ids_churn);
	tcase_add_test(tc, many_interleaved);
	suite_add_tcase(s, tc);
	return s;
}
