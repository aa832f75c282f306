/* test_finra.c - the FINRA benchmark (benchmarks/finra): generator,
 * each function's handler, the Rule 4210 join, the workflow at several
 * widths end to end against the independent expected result.
 *
 * The benchmark's sources are compiled in here (a unity include: the test
 * binary does not build benchmarks/).  Run from the repository root (the
 * width tests run benchmarks/finra/gen-workflow.sh). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iroute/handler.h"
#include "iroute/workflow.h"

#include "../../benchmarks/finra/common/finra.h"

#include "../../benchmarks/finra/common/common.c"
#include "../../benchmarks/finra/common/expected.c"
#include "../../benchmarks/finra/common/functions/lastpx.c"
#include "../../benchmarks/finra/common/functions/margin_balance.c"
#include "../../benchmarks/finra/common/functions/marketdata.c"
#include "../../benchmarks/finra/common/functions/side.c"
#include "../../benchmarks/finra/common/functions/tradedate.c"
#include "../../benchmarks/finra/common/functions/volume.c"
#include "../../benchmarks/finra/common/generate.c"

Suite *finra_suite(void);

typedef int (*handle_fn)(void *, const struct ir_req *, const struct ir_in *, size_t,
			 struct ir_out *);

/* One handler call.  Returns the output (malloc'ed) when the handler
 * succeeded, else NULL with *status and msg set. */
struct call {
	int rc, status;
	char msg[512];
	char *out;
};

static struct call call_n(handle_fn h, const char *fname, const char *const *ins,
			  const size_t *lens, size_t nin)
{
	struct call c = {0};
	struct ir_in in[1100];
	ck_assert_uint_le(nin, 1100);
	for (size_t i = 0; i < nin; i++)
		in[i] = (struct ir_in){ins[i], lens ? lens[i] : strlen(ins[i]), ""};
	struct ir_req req = {.id = 1, .function = fname, .call_id = "t"};
	struct ir_out *o = ir_out_new(NULL, 0, 0, NULL, NULL);
	ck_assert_ptr_nonnull(o);
	c.rc = h(NULL, &req, in, nin, o);
	const char *msg;
	c.status = ir_out_status(o, &msg);
	snprintf(c.msg, sizeof(c.msg), "%s", msg);
	if (c.rc == 0) {
		const void *p;
		size_t len;
		ir_out_get(o, 0, &p, &len);
		c.out = strndup(p, len);
	}
	ir_out_free(o);
	return c;
}

static struct call call1(handle_fn h, const char *fname, const char *in)
{
	return call_n(h, fname, &in, NULL, 1);
}

/* The call must fail with 400 and a message containing @want. */
static void expect_400(struct call c, const char *want)
{
	ck_assert_int_lt(c.rc, 0);
	ck_assert_ptr_null(c.out);
	ck_assert_int_eq(c.status, 400);
	if (!strstr(c.msg, want))
		ck_abort_msg("message \"%s\" lacks \"%s\"", c.msg, want);
}

static cJSON *parse_ok(struct call c)
{
	if (c.rc != 0)
		ck_abort_msg("handler failed: %d %s", c.status, c.msg);
	cJSON *j = cJSON_Parse(c.out);
	ck_assert_ptr_nonnull(j);
	free(c.out);
	return j;
}

static int64_t num(const cJSON *o, const char *k)
{
	int64_t v;
	if (finra_int(cJSON_GetObjectItemCaseSensitive(o, k), &v) < 0)
		ck_abort_msg("field \"%s\" is not an integer", k);
	return v;
}

/* "T1,T2" from a rule output's or a result's violations; each "why" must be
 * non-empty and, when @rule is set, the violation of that rule. */
static void viol_ids(const cJSON *o, const char *rule, char *ids, size_t len)
{
	const cJSON *v;
	ids[0] = '\0';
	cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(o, "violations"))
	{
		const cJSON *w = cJSON_GetObjectItemCaseSensitive(v, "why");
		ck_assert(cJSON_IsString(w) && *w->valuestring);
		if (rule)
			ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(v, "rule")->valuestring, rule);
		size_t n = strlen(ids);
		snprintf(ids + n, len - n, "%s%s", n ? "," : "",
			 cJSON_GetObjectItemCaseSensitive(v, "trade")->valuestring);
	}
}

/* The why of trade @id's violation in @o. */
static const char *why_of(const cJSON *o, const char *id)
{
	const cJSON *v;
	cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(o, "violations"))
	if (strcmp(cJSON_GetObjectItemCaseSensitive(v, "trade")->valuestring, id) == 0)
		return cJSON_GetObjectItemCaseSensitive(v, "why")->valuestring;
	ck_abort_msg("no violation of %s", id);
	return NULL;
}

/* ---- generator ---- */

START_TEST(gen_deterministic)
{
	uint32_t b1, b2;
	char *a = finra_generate(42, 100, 100, &b1), *b = finra_generate(42, 100, 100, &b2);
	char *c = finra_generate(43, 100, 100, NULL);
	ck_assert_ptr_nonnull(a);
	ck_assert_str_eq(a, b);
	ck_assert_uint_eq(b1, b2);
	ck_assert_str_ne(a, c);
	cJSON *j = cJSON_Parse(a);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(cJSON_GetObjectItem(j, "portfolio")->valuestring, "P000000000000002a");
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "trades")), 100);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "market")), 25);
	cJSON_Delete(j);
	/* A pinned prefix: the output must not change across machines/builds. */
	ck_assert_int_eq(strncmp(a, "{\"portfolio\":\"P000000000000002a\",\"asof\":\"", 41), 0);
	char *z = finra_generate(7, 0, 100, &b1);
	j = cJSON_Parse(z);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "trades")), 0);
	ck_assert_uint_eq(b1, 0);
	cJSON_Delete(j);
	free(a);
	free(b);
	free(c);
	free(z);
}
END_TEST

START_TEST(gen_violation_fraction)
{
	uint64_t trades = 0, bad = 0, seen = 0;
	char err[128];
	for (uint64_t s = 1; s <= 1000; s++) {
		uint32_t nb;
		char *p = finra_generate(s, 20, 100, &nb);
		char *e = finra_expected(p, strlen(p), err, sizeof(err));
		ck_assert_msg(e != NULL, "%s", err);
		cJSON *j = cJSON_Parse(e);
		/* Exactly one violation per bad trade, as the independent check sees it. */
		ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "violations")), (int)nb);
		ck_assert_int_eq(num(j, "valid_trades"), 20 - (int)nb);
		seen += nb;
		trades += 20;
		bad += nb;
		cJSON_Delete(j);
		free(p);
		free(e);
	}
	ck_assert_uint_eq(seen, bad);
	/* 10% of 20000 trades: sd 0.21%, the band is +-4.7 sd. */
	ck_assert_uint_ge(bad * 1000, trades * 90);
	ck_assert_uint_le(bad * 1000, trades * 110);
	uint32_t nb;
	char *p = finra_generate(5, 200, 0, &nb);
	ck_assert_uint_eq(nb, 0);
	char *e = finra_expected(p, strlen(p), err, sizeof(err));
	ck_assert_ptr_nonnull(strstr(e, "\"violations\":[]"));
	free(p);
	free(e);
	p = finra_generate(5, 200, 1000, &nb);
	ck_assert_uint_eq(nb, 200);
	free(p);
}
END_TEST

/* ---- the rules, on a hand-written portfolio ---- */

/* As-of Friday 2024-03-15; max lot 1000. */
#define HAND_HEAD                                                                                  \
	"{\"portfolio\":\"H1\",\"asof\":\"2024-03-15\",\"cash\":100000,\"pdt\":false,"             \
	"\"max_lot\":1000,\"market\":{\"AAA\":10000,\"BBB\":400,\"UNUSED\":5},\"trades\":["
#define TR(id, sec, side, qty, px, date)                                                           \
	"{\"id\":\"" id "\",\"security\":\"" sec "\",\"side\":\"" side "\",\"qty\":" #qty           \
	",\"price\":" #px ",\"date\":\"" date "\"}"

static const char HAND[] = HAND_HEAD TR("T1", "AAA", "buy", 10, 10500, "2024-03-14") "," /* valid */
    TR("T2", "AAA", "buy", 10, 11001, "2024-03-14") ","  /* lastpx: 10.01% over */
    TR("T3", "AAA", "sell", 10, 11000, "2024-03-14") "," /* exactly 10%: valid */
    TR("T4", "AAA", "buy", 10, 8999, "2024-03-14") ","   /* lastpx: under */
    TR("T5", "ZZZ", "buy", 10, 100, "2024-03-14") ","    /* lastpx: not listed */
    TR("T6", "BBB", "buy", 10, 0, "2024-03-14") ","      /* lastpx: price 0 */
    TR("T7", "BBB", "BUY", 10, 400, "2024-03-14") ","    /* side */
    TR("T8", "BBB", "buy", 10, 400, "2024-03-18") ","    /* tradedate: future */
    TR("T9", "BBB", "buy", 10, 400, "2024-03-10") ","    /* tradedate: Sunday */
    TR("T10", "BBB", "buy", 10, 400, "2024-02-30") ","   /* tradedate: no such day */
    TR("T11", "BBB", "short", 0, 400, "2024-03-15") ","  /* volume: 0 */
    TR("T12", "BBB", "short", 1001, 400, "2024-03-15") "," /* volume: over */
    TR("T13", "BBB", "short", 1000, 400, "2024-02-29") "," /* valid: leap day */
    TR("T14", "BBB", "sell", -5, 400, "2024-03-15") "]}";  /* volume: negative */

static void rule_case(handle_fn h, const char *rule, const char *want)
{
	cJSON *o = parse_ok(call1(h, rule, HAND));
	char ids[256];
	viol_ids(o, rule, ids, sizeof(ids));
	ck_assert_str_eq(ids, want);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "portfolio")->valuestring, "H1");
	ck_assert_str_eq(cJSON_GetObjectItem(o, "rule")->valuestring, rule);
	ck_assert_int_eq(num(o, "part"), 1);
	ck_assert_int_eq(num(o, "parts"), 1);
	ck_assert_int_eq(num(o, "checked"), 14);
	cJSON_Delete(o);
}

START_TEST(rule_violations)
{
	rule_case(finra_lastpx_handle, "lastpx", "T2,T4,T5,T6");
	rule_case(finra_side_handle, "side", "T7");
	rule_case(finra_tradedate_handle, "tradedate", "T8,T9,T10");
	rule_case(finra_volume_handle, "volume", "T11,T12,T14");

	cJSON *o = parse_ok(call1(finra_lastpx_handle, "lastpx", HAND));
	ck_assert_ptr_nonnull(strstr(why_of(o, "T5"), "no market price for \"ZZZ\""));
	ck_assert_ptr_nonnull(strstr(why_of(o, "T6"), "not positive"));
	ck_assert_ptr_nonnull(strstr(why_of(o, "T2"), "11001"));
	cJSON_Delete(o);
	o = parse_ok(call1(finra_tradedate_handle, "tradedate", HAND));
	ck_assert_ptr_nonnull(strstr(why_of(o, "T8"), "after the as-of date 2024-03-15"));
	ck_assert_ptr_nonnull(strstr(why_of(o, "T9"), "Sunday"));
	ck_assert_ptr_nonnull(strstr(why_of(o, "T10"), "not a valid"));
	cJSON_Delete(o);
	o = parse_ok(call1(finra_volume_handle, "volume", HAND));
	ck_assert_ptr_nonnull(strstr(why_of(o, "T12"), "exceeds the maximum lot 1000"));
	cJSON_Delete(o);
	o = parse_ok(call1(finra_side_handle, "side", HAND));
	ck_assert_ptr_nonnull(strstr(why_of(o, "T7"), "\"BUY\""));
	cJSON_Delete(o);

	/* One valid trade: no violation from any rule. */
	const char *one = HAND_HEAD TR("OK", "AAA", "short", 1, 10000, "2024-03-15") "]}";
	handle_fn rules[4] = {finra_lastpx_handle, finra_side_handle, finra_tradedate_handle,
			      finra_volume_handle};
	for (int r = 0; r < 4; r++) {
		o = parse_ok(call1(rules[r], finra_rule_name(r), one));
		ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "violations")), 0);
		ck_assert_int_eq(num(o, "checked"), 1);
		cJSON_Delete(o);
	}
}
END_TEST

START_TEST(rule_partitions)
{
	uint32_t k, n;
	finra_partition("lastpx-2-of-3", &k, &n);
	ck_assert(k == 2 && n == 3);
	finra_partition("tradedate-10-of-10", &k, &n);
	ck_assert(k == 10 && n == 10);
	const char *whole[] = {"lastpx", NULL, "lastpx-4-of-3", "lastpx-0-of-3", "-1-of-2",
			       "x-1-of-2000", "x-1-of-", "x-a-of-2", "x-1-of-2z", "x-1-of-02"};
	for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++) {
		finra_partition(whole[i], &k, &n);
		ck_assert_msg(k == 1 && n == 1, "%s", whole[i] ? whole[i] : "NULL");
	}
	/* The three parts of lastpx check disjoint strided slices whose union is
	 * the whole: trades 0,3,6,9,12 / 1,4,7,10,13 / 2,5,8,11. */
	const char *want[3] = {"T4", "T2,T5", "T6"};
	const int checked[3] = {5, 5, 4};
	for (int p = 0; p < 3; p++) {
		char name[32], ids[128];
		snprintf(name, sizeof(name), "lastpx-%d-of-3", p + 1);
		cJSON *o = parse_ok(call1(finra_lastpx_handle, name, HAND));
		viol_ids(o, "lastpx", ids, sizeof(ids));
		ck_assert_str_eq(ids, want[p]);
		ck_assert_int_eq(num(o, "part"), p + 1);
		ck_assert_int_eq(num(o, "parts"), 3);
		ck_assert_int_eq(num(o, "checked"), checked[p]);
		cJSON_Delete(o);
	}
}
END_TEST

START_TEST(rule_malformed)
{
	handle_fn all[5] = {finra_lastpx_handle, finra_side_handle, finra_tradedate_handle,
			    finra_volume_handle, finra_marketdata_handle};
	for (int r = 0; r < 5; r++) {
		expect_400(call1(all[r], "f", "{\"portfolio\":"), "not valid JSON");
		expect_400(call1(all[r], "f", ""), "not valid JSON");
		expect_400(call1(all[r], "f", "[1,2]"), "not a JSON object");
		expect_400(call1(all[r], "f",
				 "{\"portfolio\":\"p\",\"cash\":0,\"pdt\":false,\"market\":{}}"),
			   "\"trades\"");
		expect_400(call1(all[r], "f",
				 "{\"portfolio\":\"p\",\"asof\":\"2024-03-15\",\"cash\":0,\"pdt\":false,"
				 "\"max_lot\":5,\"market\":{},\"trades\":[3]}"),
			   "trade 0");
		const char *two[2] = {HAND, HAND};
		expect_400(call_n(all[r], "f", two, NULL, 2), "expected 1 input, got 2");
		expect_400(call_n(all[r], "f", NULL, NULL, 0), "expected 1 input, got 0");
	}
	/* Each rule's own fields. */
#define ONE(tr) HAND_HEAD tr "]}"
	expect_400(call1(finra_lastpx_handle, "lastpx",
			 ONE("{\"id\":\"X\",\"security\":\"AAA\",\"price\":\"100\"}")),
		   "trade \"X\": \"price\" is missing or not an integer");
	expect_400(call1(finra_lastpx_handle, "lastpx", ONE("{\"id\":\"X\",\"price\":100}")),
		   "\"security\"");
	expect_400(call1(finra_lastpx_handle, "lastpx",
			 "{\"portfolio\":\"p\",\"market\":{\"A\":-1},\"trades\":[]}"),
		   "market price of \"A\"");
	expect_400(call1(finra_lastpx_handle, "lastpx", "{\"portfolio\":\"p\",\"trades\":[]}"),
		   "\"market\"");
	expect_400(call1(finra_side_handle, "side", ONE("{\"id\":\"X\",\"side\":1}")), "\"side\"");
	expect_400(call1(finra_tradedate_handle, "tradedate", ONE("{\"id\":\"X\",\"date\":20240314}")),
		   "\"date\"");
	expect_400(call1(finra_tradedate_handle, "tradedate",
			 "{\"portfolio\":\"p\",\"asof\":\"2024-02-30\",\"trades\":[]}"),
		   "\"asof\"");
	expect_400(call1(finra_volume_handle, "volume", ONE("{\"id\":\"X\",\"qty\":1.5}")), "\"qty\"");
	expect_400(call1(finra_volume_handle, "volume", ONE("{\"id\":\"X\",\"qty\":1e300}")), "\"qty\"");
	expect_400(call1(finra_volume_handle, "volume",
			 "{\"portfolio\":\"p\",\"max_lot\":0,\"trades\":[]}"),
		   "\"max_lot\"");
	expect_400(call1(finra_side_handle, "side", ONE("{\"side\":\"buy\"}")), "non-empty \"id\"");
	/* marketdata's own checks. */
	expect_400(call1(finra_marketdata_handle, "marketdata",
			 HAND_HEAD TR("A", "AAA", "buy", 1, 1, "x") "," TR("A", "AAA", "buy", 1, 1,
									    "x") "]}"),
		   "duplicate trade id \"A\"");
	expect_400(call1(finra_marketdata_handle, "marketdata",
			 "{\"portfolio\":\"p\",\"cash\":1.25,\"pdt\":false,\"market\":{},\"trades\":[]}"),
		   "\"cash\"");
	expect_400(call1(finra_marketdata_handle, "marketdata",
			 "{\"portfolio\":\"p\",\"cash\":1,\"market\":{},\"trades\":[]}"),
		   "\"pdt\"");
	expect_400(call1(finra_marketdata_handle, "marketdata",
			 "{\"portfolio\":\"\",\"cash\":1,\"pdt\":true,\"market\":{},\"trades\":[]}"),
		   "\"portfolio\"");
#undef ONE
}
END_TEST

START_TEST(marketdata_prices)
{
	cJSON *o = parse_ok(call1(finra_marketdata_handle, "marketdata", HAND));
	/* Traded and listed securities only, once each, in order of first use. */
	char *prices = cJSON_PrintUnformatted(cJSON_GetObjectItem(o, "prices"));
	ck_assert_str_eq(prices, "{\"AAA\":10000,\"BBB\":400}");
	free(prices);
	ck_assert_int_eq(num(o, "cash"), 100000);
	ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(o, "pdt")));
	const cJSON *tr = cJSON_GetObjectItem(o, "trades");
	ck_assert_int_eq(cJSON_GetArraySize(tr), 14);
	const cJSON *t14 = cJSON_GetArrayItem(tr, 13);
	ck_assert_str_eq(cJSON_GetObjectItem(t14, "id")->valuestring, "T14");
	ck_assert_int_eq(num(t14, "qty"), -5);
	ck_assert_ptr_null(cJSON_GetObjectItem(t14, "date"));
	cJSON_Delete(o);
}
END_TEST

/* ---- the join ---- */

/* Run the width-5 workflow in-process on @portfolio: the 5 entries, then
 * margin-balance on their outputs in predecessor order. */
static struct call run_w5(const char *portfolio)
{
	handle_fn entries[5] = {finra_marketdata_handle, finra_lastpx_handle, finra_side_handle,
				finra_tradedate_handle, finra_volume_handle};
	const char *names[5] = {"marketdata", "lastpx", "side", "tradedate", "volume"};
	char *outs[5];
	for (int i = 0; i < 5; i++) {
		struct call c = call1(entries[i], names[i], portfolio);
		if (c.rc != 0)
			ck_abort_msg("%s failed: %s", names[i], c.msg);
		outs[i] = c.out;
	}
	struct call j = call_n(finra_margin_balance_handle, "margin-balance",
			       (const char *const *)outs, NULL, 5);
	for (int i = 0; i < 5; i++)
		free(outs[i]);
	return j;
}

static void expect_margin(const char *portfolio, int64_t cash, int64_t lv, int64_t sv, int64_t eq,
			  int64_t req, int64_t call, const char *viols)
{
	cJSON *o = parse_ok(run_w5(portfolio));
	char ids[256];
	viol_ids(o, NULL, ids, sizeof(ids));
	ck_assert_str_eq(ids, viols);
	ck_assert_int_eq(num(o, "cash"), cash);
	ck_assert_int_eq(num(o, "long_value"), lv);
	ck_assert_int_eq(num(o, "short_value"), sv);
	ck_assert_int_eq(num(o, "equity"), eq);
	ck_assert_int_eq(num(o, "requirement"), req);
	ck_assert_int_eq(num(o, "margin_call"), call);
	/* The independent computation agrees. */
	char err[128];
	char *e = finra_expected(portfolio, strlen(portfolio), err, sizeof(err));
	cJSON *x = cJSON_Parse(e);
	ck_assert_int_eq(num(x, "margin_call"), call);
	ck_assert_int_eq(num(x, "requirement"), req);
	ck_assert_int_eq(num(x, "equity"), eq);
	cJSON_Delete(x);
	free(e);
	cJSON_Delete(o);
}

#define MB_HEAD(cash, pdt)                                                                        \
	"{\"portfolio\":\"M\",\"asof\":\"2024-03-15\",\"cash\":" #cash ",\"pdt\":" #pdt            \
	",\"max_lot\":10000,\"market\":{\"AAA\":10000,\"BBB\":2000,\"CCC\":300,\"DDD\":600,"       \
	"\"EEE\":10001},\"trades\":["
#define MB_TRADES                                                                                 \
	TR("T1", "AAA", "buy", 100, 9900, "2024-03-11")                                            \
	"," TR("T2", "BBB", "short", 200, 2000, "2024-03-12")                                      \
	"," TR("T3", "CCC", "short", 1000, 300, "2024-03-13")                                      \
	"," TR("T4", "AAA", "sell", 50, 10100, "2024-03-14")                                       \
	"," TR("T5", "BBB", "buy", 10, 5000, "2024-03-14") "]}"

/* The worked example of README.md ("Margin"). */
START_TEST(margin_examples)
{
	/* cash 10000.00 + T1..T4 (T5 fails lastpx and is left out):
	 * cash 1000000 - 990000 + 400000 + 300000 + 505000 = 1215000;
	 * AAA +50 x 10000 = 500000 long, req 25% = 125000;
	 * BBB -200 x 2000 = 400000 short, req max(30% = 120000, 200 x 500 = 100000);
	 * CCC -1000 x 300 = 300000 short (< $5), req max(100% = 300000, 1000 x 250);
	 * equity 1215000 + 500000 - 700000 = 1015000; requirement 545000; no call. */
	expect_margin(MB_HEAD(1000000, false) MB_TRADES, 1215000, 500000, 700000, 1015000, 545000, 0,
		      "T5");
	/* No starting cash: equity 15000, call 545000 - 15000. */
	expect_margin(MB_HEAD(0, false) MB_TRADES, 215000, 500000, 700000, 15000, 545000, 530000,
		      "T5");
	/* A pattern day trader: the $25,000 minimum dominates. */
	expect_margin(MB_HEAD(1000000, true) MB_TRADES, 1215000, 500000, 700000, 1015000, 2500000,
		      1485000, "T5");
	/* Short only, $6: 30% = 180000 < $5/share = 500000; proceeds 600000 are
	 * the cash, equity 0, call 500000. */
	expect_margin(MB_HEAD(0, false) TR("S", "DDD", "short", 1000, 600, "2024-03-15") "]}", 600000,
		      0, 600000, 0, 500000, 500000, "");
	/* Rounding up: 8001 x 10001 = 80018001, 25% = 20004500.25 -> 20004501. */
	expect_margin(MB_HEAD(0, false) TR("L", "EEE", "buy", 8001, 10001, "2024-03-15") "]}",
		      -80018001, 80018001, 0, 0, 20004501, 20004501, "");
	/* Small account: the $2,000 minimum; a flat position (bought and sold)
	 * holds nothing, so no minimum applies. */
	expect_margin(MB_HEAD(500000, false) TR("A", "CCC", "buy", 10, 300, "2024-03-15") "]}",
		      497000, 3000, 0, 500000, 200000, 0, "");
	expect_margin(MB_HEAD(0, false) TR("A", "CCC", "buy", 10, 300, "2024-03-15") "," TR(
			  "B", "CCC", "sell", 10, 310, "2024-03-15") "]}",
		      100, 0, 0, 100, 0, 0, "");
	/* Every trade invalid: cash only; negative cash is a call by itself. */
	expect_margin(MB_HEAD(-5000, false) TR("X", "AAA", "hold", 1, 10000, "2024-03-15") "]}", -5000,
		      0, 0, -5000, 0, 5000, "X");
}
END_TEST

static char *rule_out(const char *rule, const char *portfolio, const char *violations, int part,
		      int parts)
{
	char *s;
	ck_assert_int_ge(asprintf(&s,
				  "{\"portfolio\":\"%s\",\"rule\":\"%s\",\"part\":%d,\"parts\":%d,"
				  "\"checked\":0,\"violations\":[%s]}",
				  portfolio, rule, part, parts, violations),
			 0);
	return s;
}

START_TEST(margin_malformed)
{
	struct call md = call1(finra_marketdata_handle, "marketdata", MB_HEAD(0, false) MB_TRADES);
	ck_assert_int_eq(md.rc, 0);
	char *in[8] = {md.out, rule_out("lastpx", "M", "", 1, 1), rule_out("side", "M", "", 1, 1),
		       rule_out("tradedate", "M", "", 1, 1), rule_out("volume", "M", "", 1, 1)};
	/* T5 is not flagged by anyone here, yet valid: fine (side buy, qty>0). */
	struct call c = call_n(finra_margin_balance_handle, "mb", (const char *const *)in, NULL, 5);
	ck_assert_int_eq(c.rc, 0);
	free(c.out);
	expect_400(call_n(finra_margin_balance_handle, "mb", (const char *const *)in, NULL, 4),
		   "at least 5 inputs), got 4");
	char *save = in[2];
	in[2] = rule_out("lastpx", "M", "", 1, 1);
	expect_400(call_n(finra_margin_balance_handle, "mb", (const char *const *)in, NULL, 5),
		   "conflicts with an earlier input");
	free(in[2]);
	in[2] = rule_out("side", "M", "", 1, 2); /* part 2 of side missing */
	expect_400(call_n(finra_margin_balance_handle, "mb", (const char *const *)in, NULL, 5),
		   "no output from rule \"side\" for some of its parts");
	free(in[2]);
	in[2] = rule_out("side", "OTHER", "", 1, 1);
	expect_400(call_n(finra_margin_balance_handle, "mb", (const char *const *)in, NULL, 5),
		   "input 2 (side) is not of portfolio \"M\"");
	free(in[2]);
	in[2] = rule_out("side", "M", "{\"trade\":\"NOPE\",\"rule\":\"side\",\"why\":\"w\"}", 1, 1);
	expect_400(call_n(finra_margin_balance_handle, "mb", (const char *const *)in, NULL, 5),
		   "violation of unknown trade \"NOPE\"");
	free(in[2]);
	in[2] = rule_out("side", "M", "{\"trade\":\"T1\",\"rule\":\"volume\",\"why\":\"w\"}", 1, 1);
	expect_400(call_n(finra_margin_balance_handle, "mb", (const char *const *)in, NULL, 5),
		   "malformed violation");
	free(in[2]);
	in[2] = strdup("{\"rule\":\"nosuch\"}");
	expect_400(call_n(finra_margin_balance_handle, "mb", (const char *const *)in, NULL, 5),
		   "input 2 is not a rule's output");
	free(in[2]);
	in[2] = strdup("not json");
	expect_400(call_n(finra_margin_balance_handle, "mb", (const char *const *)in, NULL, 5),
		   "input 2 is not a JSON object");
	free(in[2]);
	in[2] = save;
	/* Input 0 must be marketdata's. */
	char *md_save = in[0];
	in[0] = rule_out("volume", "M", "", 1, 1);
	expect_400(call_n(finra_margin_balance_handle, "mb", (const char *const *)in, NULL, 5),
		   "input 0 is not marketdata's output");
	free(in[0]);
	/* An unflagged trade the margin cannot value. */
	struct call bad = call1(finra_marketdata_handle, "marketdata",
				MB_HEAD(0, false) TR("Q", "AAA", "hold", 1, 10000, "2024-03-15") "]}");
	in[0] = bad.out;
	expect_400(call_n(finra_margin_balance_handle, "mb", (const char *const *)in, NULL, 5),
		   "side \"hold\" not flagged");
	free(in[0]);
	bad = call1(finra_marketdata_handle, "marketdata",
		    MB_HEAD(0, false) TR("Q", "NOPE", "buy", 1, 10000, "2024-03-15") "]}");
	in[0] = bad.out;
	expect_400(call_n(finra_margin_balance_handle, "mb", (const char *const *)in, NULL, 5),
		   "no price for \"NOPE\"");
	free(in[0]);
	/* Overflow of 64-bit cents is refused, not wrapped. */
	bad = call1(finra_marketdata_handle, "marketdata",
		    "{\"portfolio\":\"M\",\"cash\":0,\"pdt\":false,\"market\":{\"AAA\":4503599627370496},"
		    "\"trades\":[" TR("Q", "AAA", "buy", 4503599627370496, 4503599627370496, "x") "]}");
	ck_assert_int_eq(bad.rc, 0);
	in[0] = bad.out;
	expect_400(call_n(finra_margin_balance_handle, "mb", (const char *const *)in, NULL, 5),
		   "overflow");
	free(in[0]);
	in[0] = md_save;
	for (int i = 0; i < 5; i++)
		free(in[i]);
}
END_TEST

/* ---- the workflow at a width, end to end ---- */

static int wf_load(int width, struct ir_workflow *wf, char **text)
{
	char cmd[128], buf[4096], err[256];
	snprintf(cmd, sizeof(cmd), "sh benchmarks/finra/gen-workflow.sh %d 2>/dev/null", width);
	FILE *f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	size_t len = 0, cap = 0;
	char *s = NULL;
	for (size_t n; (n = fread(buf, 1, sizeof(buf), f)) > 0;) {
		if (len + n + 1 > cap) {
			cap = 2 * (len + n + 1);
			s = realloc(s, cap);
		}
		memcpy(s + len, buf, n);
		len += n;
	}
	int st = pclose(f);
	if (st != 0) {
		free(s);
		return -1;
	}
	ck_assert_ptr_nonnull(s);
	s[len] = '\0';
	int rc = ir_workflow_parse(s, len, NULL, wf, err, sizeof(err));
	ck_assert_msg(rc == 0, "width %d: %s", width, err);
	if (text)
		*text = s;
	else
		free(s);
	return 0;
}

static handle_fn handler_of(const char *name)
{
	static const struct {
		const char *prefix;
		handle_fn h;
	} map[] = {{"marketdata", finra_marketdata_handle}, {"lastpx", finra_lastpx_handle},
		   {"side", finra_side_handle},		    {"tradedate", finra_tradedate_handle},
		   {"volume", finra_volume_handle},	    {"margin-balance", finra_margin_balance_handle}};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		size_t n = strlen(map[i].prefix);
		if (strncmp(name, map[i].prefix, n) == 0 && (!name[n] || name[n] == '-'))
			return map[i].h;
	}
	ck_abort_msg("no handler for %s", name);
	return NULL;
}

/* Run @wf on @portfolio as the runtime would: every entry on the request,
 * then the join with its inputs in prev order.  The result (malloc'ed). */
static char *wf_run(const struct ir_workflow *wf, const char *portfolio)
{
	int join = ir_workflow_find(wf, "margin-balance");
	ck_assert_int_ge(join, 0);
	const struct ir_wf_fn *j = &wf->fns[join];
	char **outs = calloc(j->nprev, sizeof(*outs));
	for (size_t k = 0; k < j->nprev; k++) {
		const char *name = wf->fns[j->prev[k]].name;
		struct call c = call1(handler_of(name), name, portfolio);
		if (c.rc != 0)
			ck_abort_msg("%s failed: %s", name, c.msg);
		outs[k] = c.out;
	}
	struct call r = call_n(finra_margin_balance_handle, j->name, (const char *const *)outs, NULL,
			       j->nprev);
	for (size_t k = 0; k < j->nprev; k++)
		free(outs[k]);
	free(outs);
	if (r.rc != 0)
		ck_abort_msg("margin-balance failed: %s", r.msg);
	return r.out;
}

static void compare_expected(const char *got, const char *portfolio, uint64_t seed)
{
	char err[128];
	char *e = finra_expected(portfolio, strlen(portfolio), err, sizeof(err));
	ck_assert_msg(e != NULL, "%s", err);
	cJSON *a = cJSON_Parse(got), *x = cJSON_Parse(e);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(x);
	ck_assert_str_eq(cJSON_GetObjectItem(a, "portfolio")->valuestring,
			 cJSON_GetObjectItem(x, "portfolio")->valuestring);
	static const char *const F[] = {"cash",	       "long_value",  "short_value", "equity",
					"requirement", "margin_call", "trades",	     "valid_trades"};
	for (size_t i = 0; i < sizeof(F) / sizeof(F[0]); i++)
		ck_assert_msg(num(a, F[i]) == num(x, F[i]), "seed %" PRIu64 ": %s %" PRId64 " != %" PRId64,
			      seed, F[i], num(a, F[i]), num(x, F[i]));
	const cJSON *va = cJSON_GetObjectItem(a, "violations"), *vx = cJSON_GetObjectItem(x, "violations");
	ck_assert_int_eq(cJSON_GetArraySize(va), cJSON_GetArraySize(vx));
	for (int i = 0; i < cJSON_GetArraySize(va); i++) {
		const cJSON *p = cJSON_GetArrayItem(va, i), *q = cJSON_GetArrayItem(vx, i);
		ck_assert_str_eq(cJSON_GetObjectItem(p, "trade")->valuestring,
				 cJSON_GetObjectItem(q, "trade")->valuestring);
		ck_assert_str_eq(cJSON_GetObjectItem(p, "rule")->valuestring,
				 cJSON_GetObjectItem(q, "rule")->valuestring);
		ck_assert(*cJSON_GetObjectItem(p, "why")->valuestring);
	}
	cJSON_Delete(a);
	cJSON_Delete(x);
	free(e);
}

START_TEST(e2e_width5_200_seeds)
{
	struct ir_workflow wf;
	ck_assert_int_eq(wf_load(5, &wf, NULL), 0);
	int calls = 0, healthy = 0, viols = 0;
	for (uint64_t seed = 1; seed <= 200; seed++) {
		char *p = finra_generate(seed * 7919, (uint32_t)(seed % 61), 100, NULL);
		char *got = wf_run(&wf, p);
		/* Also the fixed width-5 wiring of run_w5(): the same bytes. */
		struct call c = run_w5(p);
		ck_assert_int_eq(c.rc, 0);
		ck_assert_str_eq(c.out, got);
		free(c.out);
		compare_expected(got, p, seed);
		cJSON *o = cJSON_Parse(got);
		if (num(o, "margin_call") > 0)
			calls++;
		else
			healthy++;
		viols += cJSON_GetArraySize(cJSON_GetObjectItem(o, "violations"));
		cJSON_Delete(o);
		free(got);
		free(p);
	}
	/* The seeds cover both outcomes and do contain violations. */
	ck_assert_int_ge(calls, 20);
	ck_assert_int_ge(healthy, 20);
	ck_assert_int_ge(viols, 200);
	ir_workflow_free(&wf);
}
END_TEST

START_TEST(e2e_widths_agree)
{
	static const int W[] = {10, 20, 40};
	struct ir_workflow w5, wf[3];
	ck_assert_int_eq(wf_load(5, &w5, NULL), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(wf_load(W[i], &wf[i], NULL), 0);
	for (uint64_t seed = 1; seed <= 40; seed++) {
		char *p = finra_generate(seed, (uint32_t)(seed * 3), 150, NULL);
		char *base = wf_run(&w5, p);
		for (int i = 0; i < 3; i++) {
			char *got = wf_run(&wf[i], p);
			ck_assert_str_eq(got, base); /* byte-identical at every width */
			free(got);
		}
		compare_expected(base, p, seed);
		free(base);
		free(p);
	}
	ir_workflow_free(&w5);
	for (int i = 0; i < 3; i++)
		ir_workflow_free(&wf[i]);
}
END_TEST

START_TEST(width_workflows)
{
	static const int W[] = {5, 10, 20, 40, 100};
	for (size_t i = 0; i < sizeof(W) / sizeof(W[0]); i++) {
		struct ir_workflow wf;
		ck_assert_int_eq(wf_load(W[i], &wf, NULL), 0);
		ck_assert_str_eq(wf.name, "finra");
		ck_assert_uint_eq(wf.nfns, (size_t)W[i] + 1);
		ck_assert_uint_eq(wf.nentry, (size_t)W[i]);
		int j = ir_workflow_find(&wf, "margin-balance");
		ck_assert_int_ge(j, 0);
		ck_assert_uint_eq(wf.fns[j].nprev, (size_t)W[i]);
		ck_assert(wf.fns[j].sink);
		ck_assert_uint_eq(wf.nsinks, 1);
		ck_assert_str_eq(wf.fns[wf.fns[j].prev[0]].name, "marketdata");
		/* Rule r gets floor((W-1-r+3)/4) functions, in rule order. */
		int count[FINRA_NRULES] = {0}, last = -1;
		for (size_t k = 1; k < wf.fns[j].nprev; k++) {
			const char *name = wf.fns[wf.fns[j].prev[k]].name;
			int r = -1;
			for (int q = 0; q < FINRA_NRULES; q++) {
				size_t n = strlen(finra_rule_name(q));
				if (strncmp(name, finra_rule_name(q), n) == 0 && (!name[n] || name[n] == '-'))
					r = q;
			}
			ck_assert_int_ge(r, last);
			last = r;
			count[r]++;
		}
		for (int r = 0; r < FINRA_NRULES; r++)
			ck_assert_int_eq(count[r], (W[i] - 1 - r + 3) / 4);
		ir_workflow_free(&wf);
	}
	struct ir_workflow wf;
	ck_assert_int_eq(wf_load(4, &wf, NULL), -1);
	ck_assert_int_eq(wf_load(0, &wf, NULL), -1);
	ck_assert_int_eq(wf_load(1001, &wf, NULL), -1);
	/* The checked-in files are the width-5 output. */
	char *text;
	ck_assert_int_eq(wf_load(5, &wf, &text), 0);
	ir_workflow_free(&wf);
	const char *files[] = {"benchmarks/finra/workflow.json", "benchmarks/finra/cc/workflow.json"};
	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "r");
		ck_assert_ptr_nonnull(f);
		char buf[8192];
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		fclose(f);
		ck_assert_str_eq(buf, text);
	}
	free(text);
}
END_TEST

START_TEST(dates)
{
	int64_t d;
	char s[11];
	ck_assert_int_eq(finra_date_parse("1970-01-01", &d), 0);
	ck_assert_int_eq(d, 0);
	ck_assert_int_eq(finra_weekday(d), 3); /* Thursday */
	ck_assert_int_eq(finra_date_parse("2024-03-15", &d), 0);
	ck_assert_int_eq(finra_weekday(d), 4); /* Friday */
	finra_date_format(d, s);
	ck_assert_str_eq(s, "2024-03-15");
	ck_assert_int_eq(finra_date_parse("2000-02-29", &d), 0);
	ck_assert_int_eq(finra_date_parse("1900-02-29", &d), -1);
	ck_assert_int_eq(finra_date_parse("2024-3-15", &d), -1);
	ck_assert_int_eq(finra_date_parse("2024-03-15 ", &d), -1);
	ck_assert_int_eq(finra_date_parse("0000-01-01", &d), -1);
	/* Round trip and agreement with the expected side's Sakamoto formula. */
	finra_date_parse("1999-12-25", &d);
	for (int i = 0; i < 3000; i++, d++) {
		int64_t back;
		finra_date_format(d, s);
		ck_assert_int_eq(finra_date_parse(s, &back), 0);
		ck_assert_int_eq(back, d);
		ck_assert_int_eq((finra_weekday(d) + 1) % 7, exp_dow(s));
		ck_assert(exp_is_date(s));
	}
}
END_TEST

Suite *finra_suite(void)
{
	Suite *s = suite_create("finra");
	TCase *tc = tcase_create("finra");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, gen_deterministic);
	tcase_add_test(tc, gen_violation_fraction);
	tcase_add_test(tc, dates);
	tcase_add_test(tc, rule_violations);
	tcase_add_test(tc, rule_partitions);
	tcase_add_test(tc, rule_malformed);
	tcase_add_test(tc, marketdata_prices);
	tcase_add_test(tc, margin_examples);
	tcase_add_test(tc, margin_malformed);
	tcase_add_test(tc, width_workflows);
	tcase_add_test(tc, e2e_width5_200_seeds);
	tcase_add_test(tc, e2e_widths_agree);
	suite_add_tcase(s, tc);
	return s;
}
