/* test_handler.c - struct ir_out, the handler ABI's output object. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "iroute/handler.h"
#include "tests.h"

static const char *const NEXT[] = {"b", "c", "d"};

static void expect(const struct ir_out *o, size_t i, const char *want)
{
	const void *p;
	size_t len;
	ir_out_get(o, i, &p, &len);
	ck_assert_uint_eq(len, strlen(want));
	ck_assert_mem_eq(p, want, len);
}

START_TEST(common_and_per_edge)
{
	struct ir_out *o = ir_out_new(NEXT, 3, 0, NULL, NULL);
	ck_assert_ptr_nonnull(o);
	expect(o, 0, ""); /* nothing written: an empty output */
	ck_assert_int_eq(ir_out_write(o, "he", 2), 0);
	ck_assert_int_eq(ir_out_write(o, "llo", 3), 0);
	ck_assert_int_eq(ir_out_write_to(o, "c", "just c", 6), 0);
	ck_assert_int_eq(ir_out_write_to(o, "d", "", 0), 0); /* d gets its own, empty */
	ck_assert_int_eq(ir_out_write_to(o, "zz", "x", 1), -ENOENT);
	ck_assert_int_eq(ir_out_write_to(o, NULL, "x", 1), -EINVAL);
	expect(o, 0, "hello");
	expect(o, 1, "just c");
	expect(o, 2, "");
	ir_out_free(o);
}
END_TEST

START_TEST(sink_and_growth)
{
	struct ir_out *o = ir_out_new(NULL, 0, 0, NULL, NULL);
	size_t n = test_light() ? 1u << 16 : 1u << 20, failed = 0;
	char *want = malloc(n);
	for (size_t i = 0; i < n; i++) { /* one write per byte: growth by doubling */
		want[i] = (char)('a' + i % 26);
		failed += ir_out_write(o, &want[i], 1) != 0;
	}
	ck_assert_uint_eq(failed, 0);
	const void *p;
	size_t len;
	ir_out_get(o, 0, &p, &len);
	ck_assert_uint_eq(len, n);
	ck_assert_mem_eq(p, want, len);
	ck_assert_int_eq(ir_out_write_to(o, "b", "x", 1), -ENOENT); /* a sink has no edges */
	free(want);
	ir_out_free(o);
}
END_TEST

START_TEST(reserve_commit)
{
	struct ir_out *o = ir_out_new(NEXT, 3, 0, NULL, NULL);
	char *w = ir_out_reserve(o, NULL, 100);
	ck_assert_ptr_nonnull(w);
	memcpy(w, "in place", 8);
	ck_assert_int_eq(ir_out_commit(o, NULL, 8), 0);
	ck_assert_int_eq(ir_out_write(o, "!", 1), 0);
	expect(o, 0, "in place!");
	w = ir_out_reserve(o, "b", 4);
	memcpy(w, "edge", 4);
	ck_assert_int_eq(ir_out_commit(o, "b", 5), -EINVAL); /* more than reserved */
	ck_assert_int_eq(ir_out_commit(o, "b", 4), 0);
	ck_assert_int_eq(ir_out_commit(o, "b", 1), -EINVAL); /* nothing reserved any more */
	expect(o, 0, "edge");
	expect(o, 1, "in place!");
	ck_assert_ptr_null(ir_out_reserve(o, "nope", 1));
	ir_out_free(o);
}
END_TEST

START_TEST(limit)
{
	struct ir_out *o = ir_out_new(NEXT, 3, 1000, NULL, NULL);
	char buf[600] = {0};
	ck_assert_int_eq(ir_out_write(o, buf, 600), 0);
	ck_assert_int_eq(ir_out_write(o, buf, 401), -E2BIG);
	ck_assert_int_eq(ir_out_write(o, buf, 400), 0); /* exactly the limit */
	ck_assert_int_eq(ir_out_write(o, buf, 1), -E2BIG);
	ck_assert_int_eq(ir_out_write_to(o, "b", buf, 600), 0); /* per output */
	ck_assert_ptr_null(ir_out_reserve(o, "b", 401));
	ck_assert_ptr_null(ir_out_reserve(o, NULL, SIZE_MAX));
	const void *p;
	size_t len;
	ir_out_get(o, 0, &p, &len);
	ck_assert_uint_eq(len, 600);
	ir_out_get(o, 1, &p, &len);
	ck_assert_uint_eq(len, 1000);
	ir_out_free(o);
}
END_TEST

struct emitted {
	int calls;
	char seen[32];
};

static int on_emit(void *arg, struct ir_out *o)
{
	struct emitted *e = arg;
	const void *p;
	size_t len;
	ir_out_get(o, 0, &p, &len);
	memcpy(e->seen, p, len < 31 ? len : 31);
	e->calls++;
	return 0;
}

START_TEST(emit_ends_output)
{
	struct emitted e = {0};
	struct ir_out *o = ir_out_new(NEXT, 3, 0, on_emit, &e);
	ck_assert_int_eq(ir_out_write(o, "early", 5), 0);
	ck_assert(!ir_out_emitted(o));
	ck_assert_int_eq(ir_out_emit(o), 0);
	ck_assert_int_eq(e.calls, 1);
	ck_assert_str_eq(e.seen, "early");
	ck_assert(ir_out_emitted(o));
	ck_assert_int_eq(ir_out_write(o, "late", 4), -EALREADY);
	ck_assert_int_eq(ir_out_write_to(o, "b", "late", 4), -EALREADY);
	ck_assert_ptr_null(ir_out_reserve(o, NULL, 4));
	ck_assert_int_eq(ir_out_emit(o), -EALREADY);
	ck_assert_int_eq(e.calls, 1);
	expect(o, 0, "early");
	ir_out_free(o);
}
END_TEST

START_TEST(errors)
{
	struct ir_out *o = ir_out_new(NEXT, 3, 0, NULL, NULL);
	const char *msg;
	ck_assert_int_eq(ir_out_status(o, &msg), 0);
	ck_assert_int_eq(ir_out_error(o, 422, "portfolio %d: no positions", 7), -1);
	ck_assert_int_eq(ir_out_status(o, &msg), 422);
	ck_assert_str_eq(msg, "portfolio 7: no positions");
	ck_assert_int_eq(ir_out_error(o, 200, "not an error status"), -1);
	ck_assert_int_eq(ir_out_status(o, NULL), 500);
	ir_out_free(o);
	ck_assert_ptr_null(ir_out_new(NEXT, IR_OUT_MAX_EDGES + 1, 0, NULL, NULL));
	ir_out_free(NULL);
}
END_TEST

Suite *handler_suite(void)
{
	Suite *s = suite_create("handler");
	TCase *tc = tcase_create("out");
	tcase_add_test(tc, common_and_per_edge);
	tcase_add_test(tc, sink_and_growth);
	tcase_add_test(tc, reserve_commit);
	tcase_add_test(tc, limit);
	tcase_add_test(tc, emit_ends_output);
	tcase_add_test(tc, errors);
	suite_add_tcase(s, tc);
	return s;
}
