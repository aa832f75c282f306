/* test_mirror.c - the file mirror, the snapshot's JSON form, the latency
 * histogram and the local-table builder: the coordinator's parts that need
 * no process. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cctable.h"
#include "iroute/hist.h"
#include "iroute/workflow.h"
#include "mirror.h"
#include "tests.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/iroute-mirror-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct ir_mirror_fn fns2[] = {{"a", "[{\"id\":\"a-1\"}]"}, {"b", "[]"}};

static const struct ir_mirror_snap snap7 = {
    .epoch = 7,
    .ms = 1700000000000ull,
    .ninstances = 2,
    .workflow = "{\"name\":\"t\",\"functions\":{\"a\":{\"next\":[\"b\"]},\"b\":{\"next\":[]}},"
		"\"entry\":[\"a\"]}",
    .fns = fns2,
    .nfns = 2,
    .entries = "[{\"id\":\"entry-1\"}]",
};

START_TEST(file_round_trip)
{
	char path[128], err[256];
	snprintf(path, sizeof(path), "%s/m.json", dir);
	struct ir_mirror *m;
	ck_assert_int_eq(ir_mirror_open_file(&m, path, err, sizeof(err)), 0);
	ck_assert_str_eq(ir_mirror_kind(m), "file");
	struct ir_mirror_snap s;
	ck_assert_int_eq(ir_mirror_load(m, &s, err, sizeof(err)), -ENOENT);
	ck_assert(strstr(err, path) != NULL);
	ck_assert_int_eq(ir_mirror_store(m, &snap7, NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(access(path, F_OK), 0);
	char tmp[160];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	ck_assert_int_ne(access(tmp, F_OK), 0); /* renamed away */
	ck_assert_int_eq(ir_mirror_load(m, &s, err, sizeof(err)), 0);
	ck_assert_uint_eq(s.epoch, 7);
	ck_assert_uint_eq(s.ms, 1700000000000ull);
	ck_assert_uint_eq(s.ninstances, 2);
	ck_assert_uint_eq(s.nfns, 2);
	ck_assert_str_eq(s.fns[0].name, "a");
	ck_assert_str_eq(s.fns[0].instances, "[{\"id\":\"a-1\"}]");
	ck_assert_str_eq(s.fns[1].instances, "[]");
	ck_assert_str_eq(s.entries, "[{\"id\":\"entry-1\"}]");
	ck_assert_str_eq(s.workflow, snap7.workflow);
	ir_mirror_snap_free(&s);
	ck_assert_int_eq(ir_mirror_watch(m, NULL, NULL), -ENOTSUP);
	ir_mirror_close(m);
}
END_TEST

START_TEST(file_bad_content)
{
	static const struct {
		const char *text, *needle;
	} cases[] = {
	    {"", "not a JSON object"},
	    {"[1]", "not a JSON object"},
	    {"{\"epoch\":0,\"workflow\":{},\"functions\":{},\"entries\":[]}", "epoch"},
	    {"{\"epoch\":3,\"workflow\":1,\"functions\":{},\"entries\":[]}", "workflow"},
	    {"{\"epoch\":3,\"workflow\":{},\"functions\":[],\"entries\":[]}", "functions"},
	    {"{\"epoch\":3,\"workflow\":{},\"functions\":{\"a\":{}},\"entries\":[]}", "instances"},
	    {"{\"epoch\":3,\"workflow\":{},\"functions\":{}}", "entries"},
	};
	char path[128], err[256];
	snprintf(path, sizeof(path), "%s/m.json", dir);
	struct ir_mirror *m;
	ck_assert_int_eq(ir_mirror_open_file(&m, path, err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		FILE *f = fopen(path, "w");
		fputs(cases[i].text, f);
		fclose(f);
		struct ir_mirror_snap s;
		err[0] = '\0';
		ck_assert_int_eq(ir_mirror_load(m, &s, err, sizeof(err)), -EPROTO);
		ck_assert_msg(strstr(err, path) && strstr(err, cases[i].needle),
			      "case %zu: \"%s\"", i, err);
	}
	ir_mirror_close(m);
	ck_assert_int_eq(ir_mirror_open_file(&m, "", err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(file_store_fails_cleanly)
{
	char path[160], err[256];
	snprintf(path, sizeof(path), "%s/no/such/dir/m.json", dir);
	struct ir_mirror *m;
	ck_assert_int_eq(ir_mirror_open_file(&m, path, err, sizeof(err)), 0);
	ck_assert_int_eq(ir_mirror_store(m, &snap7, NULL, err, sizeof(err)), -ENOENT);
	ck_assert(strstr(err, path) != NULL);
	ir_mirror_close(m);
}
END_TEST

START_TEST(hist_buckets_and_quantiles)
{
	/* Every value falls in its bucket's range, buckets are contiguous. */
	uint64_t prev_hi = 0;
	for (unsigned i = 0; i < IR_HIST_BUCKETS; i++) {
		uint64_t lo, hi;
		ir_hist_range(i, &lo, &hi);
		ck_assert_uint_eq(lo, prev_hi);
		ck_assert_uint_gt(hi, lo);
		ck_assert_uint_eq(ir_hist_bucket(lo), i);
		ck_assert_uint_eq(ir_hist_bucket(hi - 1), i);
		if (i >= 32)
			ck_assert_uint_le((hi - lo) * 16, lo); /* width <= 1/16 of the value */
		prev_hi = hi;
	}
	ck_assert_uint_eq(ir_hist_bucket(UINT64_MAX), IR_HIST_BUCKETS - 1);
	struct ir_hist *h = calloc(1, sizeof(*h));
	ck_assert_uint_eq(ir_hist_quantile(h, 0.5), 0);
	for (uint64_t v = 1; v <= 100000; v++)
		ir_hist_add(h, v);
	static const double q[] = {0.5, 0.9, 0.99, 0.999};
	for (size_t i = 0; i < 4; i++) {
		double want = q[i] * 100000, got = (double)ir_hist_quantile(h, q[i]);
		ck_assert_msg(got > want * 0.96 && got < want * 1.04, "q%.3f: %f", q[i], got);
	}
	ck_assert_uint_eq(ir_hist_quantile(h, 1.0), 100000);
	/* Merge = adding counts. */
	struct ir_hist *h2 = calloc(1, sizeof(*h2));
	ir_hist_add(h2, 5);
	ir_hist_merge(h2, h);
	ck_assert_uint_eq(h2->count, 100001);
	ck_assert_uint_eq(h2->max_us, 100000);
	free(h);
	free(h2);
}
END_TEST

START_TEST(hist_json)
{
	struct ir_hist *h = calloc(1, sizeof(*h)), *back = calloc(1, sizeof(*back));
	ir_hist_add(h, 3);
	ir_hist_add(h, 3);
	ir_hist_add(h, 1000);
	ir_hist_add(h, 123456789);
	char *j = ir_hist_to_json(h), err[200];
	ck_assert_int_eq(ir_hist_from_json(j, strlen(j), back, err, sizeof(err)), 0);
	ck_assert_mem_eq(h->n, back->n, sizeof(h->n));
	ck_assert_uint_eq(back->count, 4);
	ck_assert_uint_eq(back->max_us, 123456789);
	free(j);
	static const struct {
		const char *text, *needle;
	} bad[] = {
	    {"[]", "not a JSON object"},
	    {"{\"unit\":\"ms\",\"buckets\":[]}", "unit"},
	    {"{\"unit\":\"us\"}", "buckets"},
	    {"{\"unit\":\"us\",\"buckets\":[[608,1]]}", "buckets[0]"},
	    {"{\"unit\":\"us\",\"buckets\":[[1,2],[1,3]]}", "repeats"},
	    {"{\"unit\":\"us\",\"buckets\":[[1,-2]]}", "buckets[0]"},
	    {"{\"unit\":\"us\",\"buckets\":[[1,2.5]]}", "buckets[0]"},
	    {"{\"unit\":\"us\",\"buckets\":[[1]]}", "buckets[0]"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(ir_hist_from_json(bad[i].text, strlen(bad[i].text), back, err,
						   sizeof(err)),
				 -EINVAL);
		ck_assert_msg(strstr(err, bad[i].needle), "case %zu: %s", i, err);
		ck_assert_uint_eq(back->count, 0);
	}
	free(h);
	free(back);
}
END_TEST

START_TEST(table_shapes)
{
	struct ir_workflow wf;
	char err[256];
	const char *text = "{\"name\":\"w\",\"dag\":[[\"a\"],[\"b\",\"c\"],[\"d\"]]}";
	ck_assert_int_eq(ir_workflow_parse(text, strlen(text), NULL, &wf, err, sizeof(err)), 0);
	const char *lists[] = {"[1]", "[2]", "[3]", "[4,5]"};
	size_t len;
	char *t = ir_cc_table_json(&wf, 0, 9, lists, "[6]", &len);
	ck_assert_str_eq(t, "{\"epoch\":9,\"workflow\":\"w\",\"function\":\"a\",\"role\":\"function\","
			    "\"routes\":{\"b\":[2],\"c\":[3]},\"entries\":[6]}");
	ck_assert_uint_eq(len, strlen(t));
	free(t);
	t = ir_cc_table_json(&wf, 3, 9, lists, "[6]", NULL);
	ck_assert_str_eq(t, "{\"epoch\":9,\"workflow\":\"w\",\"function\":\"d\",\"role\":\"function\","
			    "\"routes\":{\"d\":[4,5]},\"entries\":[6]}");
	free(t);
	t = ir_cc_table_json(&wf, -1, 9, lists, "[6]", NULL);
	ck_assert_str_eq(t, "{\"epoch\":9,\"workflow\":\"w\",\"function\":null,\"role\":\"entry\","
			    "\"routes\":{\"a\":[1]}}");
	free(t);
	const char *none[] = {NULL, NULL, NULL, NULL};
	t = ir_cc_table_json(&wf, 1, 1, none, NULL, NULL);
	ck_assert(strstr(t, "\"routes\":{\"d\":[]}") != NULL);
	cJSON *o = cJSON_Parse(t);
	ck_assert_ptr_nonnull(o);
	cJSON_Delete(o);
	free(t);
	ir_workflow_free(&wf);
}
END_TEST

Suite *mirror_suite(void)
{
	Suite *s = suite_create("mirror");
	TCase *tc = tcase_create("file");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, file_round_trip);
	tcase_add_test(tc, file_bad_content);
	tcase_add_test(tc, file_store_fails_cleanly);
	suite_add_tcase(s, tc);
	TCase *h = tcase_create("hist-table");
	tcase_add_test(h, hist_buckets_and_quantiles);
	tcase_add_test(h, hist_json);
	tcase_add_test(h, table_shapes);
	suite_add_tcase(s, h);
	return s;
}
