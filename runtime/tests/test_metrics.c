/* test_metrics.c - the Prometheus metrics: Go float formatting, exact text
 * as client_golang writes it, bucket edges, label sanitising and order,
 * the series cap, exact totals under 8 racing threads, process metrics.
 *
 * Expected texts were derived from of-watchdog's metrics/http.go and
 * client_golang v1.23.2 (promhttp labels, expfmt text_create.go), not from
 * our own output.  Every rendered text is also run through a small line
 * validator of the 0.0.4 text format.
 */
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "iroute/metrics.h"
#include "tests.h"

Suite *metrics_suite(void); /* until tests.h lists it */

/* ---- helpers ---- */

static char *render(struct ir_metrics *m)
{
	char *out = NULL;
	size_t len = 0;
	ck_assert_int_eq(ir_metrics_render(m, &out, &len), 0);
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(len, strlen(out));
	return out;
}

/* Value of the sample whose "name{labels}" is exactly key; NAN if absent. */
static double sample(const char *text, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
			const char *v = p + kl + 1;
			if (strncmp(v, "+Inf", 4) == 0)
				return INFINITY;
			return strtod(v, NULL);
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	return NAN;
}

/* Number of lines starting with prefix. */
static int count_lines(const char *text, const char *prefix)
{
	int n = 0;
	size_t pl = strlen(prefix);
	for (const char *p = text; *p;) {
		if (strncmp(p, prefix, pl) == 0)
			n++;
		const char *nl = strchr(p, '\n');
		if (!nl)
			break;
		p = nl + 1;
	}
	return n;
}

static int valid_name(const char *s, size_t n, int metric)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int ok = isalpha(c) || c == '_' || (metric && c == ':') || (i > 0 && isdigit(c));
		if (!ok)
			return 0;
	}
	return 1;
}

static int valid_float(const char *s, size_t n)
{
	char buf[64];
	if (n == 0 || n >= sizeof(buf))
		return 0;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (!strcmp(buf, "NaN") || !strcmp(buf, "+Inf") || !strcmp(buf, "-Inf"))
		return 1;
	if (!isdigit((unsigned char)buf[0]) && buf[0] != '-')
		return 0;
	char *end;
	strtod(buf, &end);
	return *end == '\0';
}

/* Validate one line of the text format; returns NULL or what is wrong.
 * family/ftype track the last "# TYPE" so samples can be matched to it. */
static const char *check_line(const char *l, size_t n, char *family, char *ftype)
{
	if (n == 0)
		return "empty line";
	if (l[0] == '#') {
		int help = n > 7 && !strncmp(l, "# HELP ", 7);
		int type = n > 7 && !strncmp(l, "# TYPE ", 7);
		if (!help && !type)
			return "comment is neither HELP nor TYPE";
		const char *name = l + 7;
		const char *sp = memchr(name, ' ', n - 7);
		if (!sp || !valid_name(name, (size_t)(sp - name), 1))
			return "bad name in comment";
		size_t nl = (size_t)(sp - name);
		if (help) {
			/* HELP precedes TYPE of the same family */
			memcpy(family, name, nl);
			family[nl] = '\0';
			ftype[0] = '\0';
			return NULL;
		}
		if (strlen(family) != nl || strncmp(family, name, nl))
			return "TYPE without matching HELP";
		size_t tl = n - 7 - nl - 1;
		const char *t = sp + 1;
		if (!((tl == 7 && !strncmp(t, "counter", 7)) ||
		      (tl == 5 && !strncmp(t, "gauge", 5)) ||
		      (tl == 9 && !strncmp(t, "histogram", 9))))
			return "unknown TYPE";
		memcpy(ftype, t, tl);
		ftype[tl] = '\0';
		return NULL;
	}
	size_t i = 0;
	while (i < n && l[i] != '{' && l[i] != ' ')
		i++;
	if (!valid_name(l, i, 1))
		return "bad metric name";
	if (!ftype[0])
		return "sample before TYPE";
	size_t fl = strlen(family);
	if (i < fl || strncmp(l, family, fl))
		return "sample outside its family";
	const char *suf = l + fl;
	size_t sl = i - fl;
	if (!strcmp(ftype, "histogram")) {
		if (!((sl == 7 && !strncmp(suf, "_bucket", 7)) ||
		      (sl == 4 && !strncmp(suf, "_sum", 4)) ||
		      (sl == 6 && !strncmp(suf, "_count", 6))))
			return "bad histogram suffix";
	} else if (sl != 0) {
		return "suffix on a non-histogram";
	}
	if (i < n && l[i] == '{') {
		i++;
		for (;;) {
			size_t s = i;
			while (i < n && l[i] != '=')
				i++;
			if (i >= n || !valid_name(l + s, i - s, 0))
				return "bad label name";
			if (++i >= n || l[i] != '"')
				return "label value not quoted";
			i++;
			while (i < n && l[i] != '"') {
				if (l[i] == '\\')
					i++;
				i++;
			}
			if (i >= n)
				return "unterminated label value";
			i++;
			if (i < n && l[i] == ',') {
				i++;
				continue;
			}
			if (i < n && l[i] == '}') {
				i++;
				break;
			}
			return "bad label separator";
		}
	}
	if (i >= n || l[i] != ' ')
		return "no space before value";
	i++;
	if (!valid_float(l + i, n - i))
		return "bad value";
	return NULL;
}

static void validate(const char *text)
{
	char family[128] = "", ftype[16] = "";
	size_t tl = strlen(text);
	ck_assert_msg(tl > 0 && text[tl - 1] == '\n', "text must end with a newline");
	int lineno = 1;
	for (const char *p = text; *p; lineno++) {
		const char *nl = strchr(p, '\n');
		const char *why = check_line(p, (size_t)(nl - p), family, ftype);
		ck_assert_msg(why == NULL, "line %d: %s: %.*s", lineno, why, (int)(nl - p), p);
		p = nl + 1;
	}
}

/* ---- float formatting ---- */

START_TEST(fmt_float_like_go)
{
	static const struct {
		double v;
		const char *want;
	} cases[] = {
	    {0, "0"},
	    {-0.0, "0"},
	    {1, "1"},
	    {-1, "-1"},
	    {0.005, "0.005"},
	    {0.01, "0.01"},
	    {0.025, "0.025"},
	    {2.5, "2.5"},
	    {10, "10"},
	    {-2.5, "-2.5"},
	    {123456, "123456"},
	    {123456.7, "123456.7"},
	    {800000, "800000"},
	    {1e6, "1e+06"},
	    {1234567, "1.234567e+06"},
	    {1712345678.91, "1.71234567891e+09"},
	    {0.0001, "0.0001"},
	    {0.00012, "0.00012"},
	    {0.00001, "1e-05"},
	    {1.2345e-05, "1.2345e-05"},
	    {0.1 + 0.2, "0.30000000000000004"},
	    {1e21, "1e+21"},
	    {1e100, "1e+100"},
	    {5e-324, "5e-324"},
	    {DBL_MAX, "1.7976931348623157e+308"},
	    {18446744073709551615.0, "1.8446744073709552e+19"},
	};
	char buf[40];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = ir_metrics_fmt_float(buf, sizeof(buf), cases[i].v);
		ck_assert_str_eq(buf, cases[i].want);
		ck_assert_int_eq(n, (int)strlen(cases[i].want));
	}
	ir_metrics_fmt_float(buf, sizeof(buf), NAN);
	ck_assert_str_eq(buf, "NaN");
	ir_metrics_fmt_float(buf, sizeof(buf), INFINITY);
	ck_assert_str_eq(buf, "+Inf");
	ir_metrics_fmt_float(buf, sizeof(buf), -INFINITY);
	ck_assert_str_eq(buf, "-Inf");
	/* snprintf-like truncation */
	ck_assert_int_eq(ir_metrics_fmt_float(buf, 4, 1234567), 12);
	ck_assert_str_eq(buf, "1.2");
}
END_TEST

/* ---- exact text ---- */

START_TEST(empty_render)
{
	struct ir_metrics *m;
	ck_assert_int_eq(ir_metrics_new(&m), 0);
	char *t = render(m);
	/* No series yet: client_golang drops the empty counter and histogram
	 * families, so the text starts with the in-flight gauge. */
	const char *head = "# HELP http_requests_in_flight total HTTP requests in-flight\n"
			   "# TYPE http_requests_in_flight gauge\n"
			   "http_requests_in_flight 0\n"
			   "# HELP process_cpu_seconds_total Total user and system CPU time "
			   "spent in seconds.\n"
			   "# TYPE process_cpu_seconds_total counter\n"
			   "process_cpu_seconds_total ";
	ck_assert_msg(strncmp(t, head, strlen(head)) == 0, "got:\n%s", t);
	ck_assert_ptr_null(strstr(t, "http_requests_total"));
	ck_assert_ptr_null(strstr(t, "http_request_duration_seconds"));
	validate(t);
	free(t);
	ir_metrics_free(m);
	ir_metrics_free(NULL);
}
END_TEST

START_TEST(one_request_exact_text)
{
	struct ir_metrics *m;
	ck_assert_int_eq(ir_metrics_new(&m), 0);
	ir_metrics_observe(m, "GET", 200, 0.005);
	char *t = render(m);
	const char *want =
	    "# HELP http_request_duration_seconds Seconds spent serving HTTP requests.\n"
	    "# TYPE http_request_duration_seconds histogram\n"
	    "http_request_duration_seconds_bucket{code=\"200\",method=\"get\",le=\"0.005\"} 1\n"
	    "http_request_duration_seconds_bucket{code=\"200\",method=\"get\",le=\"0.01\"} 1\n"
	    "http_request_duration_seconds_bucket{code=\"200\",method=\"get\",le=\"0.025\"} 1\n"
	    "http_request_duration_seconds_bucket{code=\"200\",method=\"get\",le=\"0.05\"} 1\n"
	    "http_request_duration_seconds_bucket{code=\"200\",method=\"get\",le=\"0.1\"} 1\n"
	    "http_request_duration_seconds_bucket{code=\"200\",method=\"get\",le=\"0.25\"} 1\n"
	    "http_request_duration_seconds_bucket{code=\"200\",method=\"get\",le=\"0.5\"} 1\n"
	    "http_request_duration_seconds_bucket{code=\"200\",method=\"get\",le=\"1\"} 1\n"
	    "http_request_duration_seconds_bucket{code=\"200\",method=\"get\",le=\"2.5\"} 1\n"
	    "http_request_duration_seconds_bucket{code=\"200\",method=\"get\",le=\"5\"} 1\n"
	    "http_request_duration_seconds_bucket{code=\"200\",method=\"get\",le=\"10\"} 1\n"
	    "http_request_duration_seconds_bucket{code=\"200\",method=\"get\",le=\"+Inf\"} 1\n"
	    "http_request_duration_seconds_sum{code=\"200\",method=\"get\"} 0.005\n"
	    "http_request_duration_seconds_count{code=\"200\",method=\"get\"} 1\n"
	    "# HELP http_requests_in_flight total HTTP requests in-flight\n"
	    "# TYPE http_requests_in_flight gauge\n"
	    "http_requests_in_flight 0\n"
	    "# HELP http_requests_total total HTTP requests processed\n"
	    "# TYPE http_requests_total counter\n"
	    "http_requests_total{code=\"200\",method=\"get\"} 1\n"
	    "# HELP process_cpu_seconds_total ";
	ck_assert_msg(strncmp(t, want, strlen(want)) == 0, "got:\n%s", t);
	validate(t);
	free(t);
	ir_metrics_free(m);
}
END_TEST

#define B(le) "http_request_duration_seconds_bucket{code=\"200\",method=\"post\",le=\"" le "\"}"

START_TEST(bucket_edges_and_cumulative)
{
	struct ir_metrics *m;
	ck_assert_int_eq(ir_metrics_new(&m), 0);
	static const double obs[] = {
	    -1,	   /* negative: first bucket, like client_golang */
	    0,	   /* le 0.005 */
	    0.005, /* exactly on the bound: upper-inclusive */
	    0.0050000001,
	    0.01,
	    0.3,
	    1,
	    2.5000001,
	    10,
	    10.0000001,
	    1e9,
	};
	for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++)
		ir_metrics_observe(m, "POST", 200, obs[i]);
	char *t = render(m);
	ck_assert(sample(t, B("0.005")) == 3);
	ck_assert(sample(t, B("0.01")) == 5);
	ck_assert(sample(t, B("0.025")) == 5);
	ck_assert(sample(t, B("0.05")) == 5);
	ck_assert(sample(t, B("0.1")) == 5);
	ck_assert(sample(t, B("0.25")) == 5);
	ck_assert(sample(t, B("0.5")) == 6);
	ck_assert(sample(t, B("1")) == 7);
	ck_assert(sample(t, B("2.5")) == 7);
	ck_assert(sample(t, B("5")) == 8);
	ck_assert(sample(t, B("10")) == 9);
	ck_assert(sample(t, B("+Inf")) == 11);
	ck_assert(sample(t, "http_request_duration_seconds_count{code=\"200\",method=\"post\"}") ==
		  11);
	ck_assert(sample(t, "http_requests_total{code=\"200\",method=\"post\"}") == 11);
	double sum = 0;
	for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++)
		sum += obs[i];
	char want[200], num[40];
	ir_metrics_fmt_float(num, sizeof(num), sum);
	snprintf(want, sizeof(want),
		 "\nhttp_request_duration_seconds_sum{code=\"200\",method=\"post\"} %s\n", num);
	ck_assert_msg(strstr(t, want) != NULL, "want %s in:\n%s", want, t);
	validate(t);
	free(t);
	ir_metrics_free(m);
}
END_TEST

START_TEST(sum_formatting)
{
	struct ir_metrics *m;
	ck_assert_int_eq(ir_metrics_new(&m), 0);
	ir_metrics_observe(m, "GET", 204, 1.2345e-05);
	ir_metrics_observe(m, "PUT", 201, 0.25);
	ir_metrics_observe(m, "PUT", 201, 0.5);
	ir_metrics_observe(m, "PUT", 201, 0.5);
	ir_metrics_observe(m, "HEAD", 200, NAN);
	char *t = render(m);
	ck_assert_ptr_nonnull(strstr(
	    t, "\nhttp_request_duration_seconds_sum{code=\"204\",method=\"get\"} 1.2345e-05\n"));
	ck_assert_ptr_nonnull(
	    strstr(t, "\nhttp_request_duration_seconds_sum{code=\"201\",method=\"put\"} 1.25\n"));
	ck_assert_ptr_nonnull(
	    strstr(t, "\nhttp_request_duration_seconds_count{code=\"201\",method=\"put\"} 3\n"));
	/* NaN: only the +Inf bucket counts it; the sum becomes NaN */
	ck_assert_ptr_nonnull(
	    strstr(t, "\nhttp_request_duration_seconds_sum{code=\"200\",method=\"head\"} NaN\n"));
	ck_assert(sample(t, "http_request_duration_seconds_bucket{code=\"200\",method=\"head\","
			    "le=\"10\"}") == 0);
	ck_assert(sample(t, "http_request_duration_seconds_bucket{code=\"200\",method=\"head\","
			    "le=\"+Inf\"}") == 1);
	validate(t);
	free(t);
	ir_metrics_free(m);
}
END_TEST

START_TEST(labels_sanitised_and_sorted)
{
	struct ir_metrics *m;
	ck_assert_int_eq(ir_metrics_new(&m), 0);
	ir_metrics_observe(m, "POST", 500, 0.1);
	ir_metrics_observe(m, "GET", 200, 0.1);
	ir_metrics_observe(m, "GET", 404, 0.1);
	ir_metrics_observe(m, "DELETE", 200, 0.1);
	ir_metrics_observe(m, "get", 200, 0.1);	  /* promhttp accepts lower case */
	ir_metrics_observe(m, "Get", 200, 0.1);	  /* but not mixed: unknown */
	ir_metrics_observe(m, "BREW", 200, 0.1);  /* unknown */
	ir_metrics_observe(m, NULL, 200, 0.1);	  /* unknown */
	ir_metrics_observe(m, "PUT", 0, 0.1);	  /* no status written: 200 */
	ir_metrics_observe(m, "GET", 42, 0.1);	  /* out of range: unknown */
	ir_metrics_observe(m, "GET", 600, 0.1);	  /* out of range: unknown */
	ir_metrics_observe(m, "GET", 599, 0.1);	  /* in range */
	ir_metrics_observe(m, "PATCH", 100, 0.1); /* in range */
	ir_metrics_observe(m, "TRACE", 200, 0.1);
	ir_metrics_observe(m, "OPTIONS", 200, 0.1);
	ir_metrics_observe(m, "CONNECT", 200, 0.1);
	ir_metrics_observe(m, "NOTIFY", 200, 0.1);
	ir_metrics_observe(m, "HEAD", 200, 0.1);
	char *t = render(m);
	const char *want = "# HELP http_requests_total total HTTP requests processed\n"
			   "# TYPE http_requests_total counter\n"
			   "http_requests_total{code=\"100\",method=\"patch\"} 1\n"
			   "http_requests_total{code=\"200\",method=\"connect\"} 1\n"
			   "http_requests_total{code=\"200\",method=\"delete\"} 1\n"
			   "http_requests_total{code=\"200\",method=\"get\"} 2\n"
			   "http_requests_total{code=\"200\",method=\"head\"} 1\n"
			   "http_requests_total{code=\"200\",method=\"notify\"} 1\n"
			   "http_requests_total{code=\"200\",method=\"options\"} 1\n"
			   "http_requests_total{code=\"200\",method=\"put\"} 1\n"
			   "http_requests_total{code=\"200\",method=\"trace\"} 1\n"
			   "http_requests_total{code=\"200\",method=\"unknown\"} 3\n"
			   "http_requests_total{code=\"404\",method=\"get\"} 1\n"
			   "http_requests_total{code=\"500\",method=\"post\"} 1\n"
			   "http_requests_total{code=\"599\",method=\"get\"} 1\n"
			   "http_requests_total{code=\"unknown\",method=\"get\"} 2\n"
			   "# HELP process_cpu_seconds_total ";
	ck_assert_msg(strstr(t, want) != NULL, "got:\n%s", t);
	/* the histogram lists its series in the same order */
	const char *a = strstr(t, "_count{code=\"100\",method=\"patch\"} 1\n");
	const char *b = strstr(t, "_count{code=\"200\",method=\"connect\"} 1\n");
	const char *c = strstr(t, "_count{code=\"unknown\",method=\"get\"} 2\n");
	ck_assert(a && b && c && a < b && b < c);
	ck_assert_int_eq(count_lines(t, "http_request_duration_seconds_count{"), 14);
	ck_assert_int_eq(count_lines(t, "http_request_duration_seconds_bucket{"), 14 * 12);
	validate(t);
	free(t);
	ir_metrics_free(m);
}
END_TEST

START_TEST(inflight_up_down)
{
	struct ir_metrics *m;
	ck_assert_int_eq(ir_metrics_new(&m), 0);
	ir_metrics_inflight_add(m, 1);
	ir_metrics_inflight_add(m, 1);
	ir_metrics_inflight_add(m, 1);
	char *t = render(m);
	ck_assert_ptr_nonnull(strstr(t, "\nhttp_requests_in_flight 3\n"));
	free(t);
	ir_metrics_inflight_add(m, -1);
	ir_metrics_inflight_add(m, -1);
	t = render(m);
	ck_assert_ptr_nonnull(strstr(t, "\nhttp_requests_in_flight 1\n"));
	free(t);
	ir_metrics_inflight_add(m, -1);
	t = render(m);
	ck_assert_ptr_nonnull(strstr(t, "\nhttp_requests_in_flight 0\n"));
	validate(t);
	free(t);
	ir_metrics_free(m);
}
END_TEST

START_TEST(series_cap_folds_into_unknown_code)
{
	struct ir_metrics *m;
	ck_assert_int_eq(ir_metrics_new(&m), 0);
	/* 100 distinct codes: the first 64 get series, the rest fold. */
	for (int code = 100; code < 200; code++)
		ir_metrics_observe(m, "GET", code, 0.1);
	ir_metrics_observe(m, "GET", 100, 0.1);	 /* existing series still counts */
	ir_metrics_observe(m, "POST", 200, 0.1); /* new pair after the cap */
	ir_metrics_observe(m, "GET", 700, 0.1);	 /* unknown code joins the fold */
	char *t = render(m);
	ck_assert_int_eq(count_lines(t, "http_requests_total{"), IR_METRICS_MAX_SERIES + 2);
	ck_assert(sample(t, "http_requests_total{code=\"100\",method=\"get\"}") == 2);
	ck_assert(sample(t, "http_requests_total{code=\"163\",method=\"get\"}") == 1);
	ck_assert(isnan(sample(t, "http_requests_total{code=\"164\",method=\"get\"}")));
	ck_assert(sample(t, "http_requests_total{code=\"unknown\",method=\"get\"}") == 37);
	ck_assert(sample(t, "http_requests_total{code=\"unknown\",method=\"post\"}") == 1);
	ck_assert(isnan(sample(t, "http_requests_total{code=\"200\",method=\"post\"}")));
	/* every method can still fold: 11 more series at most */
	static const char *const ms[] = {"CONNECT", "DELETE", "HEAD",  "NOTIFY", "OPTIONS",
					 "PATCH",   "PUT",    "TRACE", "WHAT",	 "GET"};
	for (int r = 0; r < 3; r++)
		for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++)
			ir_metrics_observe(m, ms[i], 300 + r, 0.1);
	free(t);
	t = render(m);
	ck_assert_int_eq(count_lines(t, "http_requests_total{"), IR_METRICS_MAX_SERIES + 11);
	ck_assert(sample(t, "http_requests_total{code=\"unknown\",method=\"unknown\"}") == 3);
	validate(t);
	free(t);
	ir_metrics_free(m);
}
END_TEST

/* ---- concurrency ---- */

struct worker {
	struct ir_metrics *m;
	int id, n;
};

static void *observer(void *arg)
{
	struct worker *w = arg;
	static const char *const meth[] = {"GET", "POST"};
	for (int i = 0; i < w->n; i++) {
		ir_metrics_inflight_add(w->m, 1);
		/* 0.25 and 0.5 sum exactly in binary; codes spread creation */
		ir_metrics_observe(w->m, meth[w->id % 2], 200 + (i % 4), (i & 1) ? 0.5 : 0.25);
		ir_metrics_inflight_add(w->m, -1);
	}
	return NULL;
}

static _Atomic int stop_scraping;
static _Atomic int scrape_failures;

static void *scraper(void *arg)
{
	struct ir_metrics *m = arg;
	while (!atomic_load(&stop_scraping)) {
		char *out;
		size_t len;
		if (ir_metrics_render(m, &out, &len) != 0 || strlen(out) != len)
			atomic_fetch_add(&scrape_failures, 1);
		else
			free(out);
	}
	return NULL;
}

START_TEST(threads_lose_nothing)
{
	enum { NT = 8 };
	int per = test_light() ? 10000 : 100000;
	struct ir_metrics *m;
	ck_assert_int_eq(ir_metrics_new(&m), 0);
	struct worker w[NT];
	pthread_t th[NT], sc;
	atomic_store(&stop_scraping, 0);
	atomic_store(&scrape_failures, 0);
	ck_assert_int_eq(pthread_create(&sc, NULL, scraper, m), 0);
	for (int i = 0; i < NT; i++) {
		w[i] = (struct worker){m, i, per};
		ck_assert_int_eq(pthread_create(&th[i], NULL, observer, &w[i]), 0);
	}
	for (int i = 0; i < NT; i++)
		pthread_join(th[i], NULL);
	atomic_store(&stop_scraping, 1);
	pthread_join(sc, NULL);
	ck_assert_int_eq(atomic_load(&scrape_failures), 0);

	char *t = render(m);
	ck_assert_ptr_nonnull(strstr(t, "\nhttp_requests_in_flight 0\n"));
	double total = 0, sum = 0;
	static const char *const meth[] = {"get", "post"};
	for (int mi = 0; mi < 2; mi++)
		for (int c = 200; c < 204; c++) {
			char key[160];
			/* 4 threads per method, per/4 requests per code each */
			double want = (double)(NT / 2) * (per / 4);
			snprintf(key, sizeof(key), "http_requests_total{code=\"%d\",method=\"%s\"}",
				 c, meth[mi]);
			ck_assert_msg(sample(t, key) == want, "%s", key);
			snprintf(key, sizeof(key),
				 "http_request_duration_seconds_bucket{code=\"%d\",method=\"%s\","
				 "le=\"0.25\"}",
				 c, meth[mi]);
			ck_assert(sample(t, key) == ((c % 2) ? 0 : want));
			snprintf(key, sizeof(key),
				 "http_request_duration_seconds_count{code=\"%d\",method=\"%s\"}",
				 c, meth[mi]);
			total += sample(t, key);
			snprintf(key, sizeof(key),
				 "http_request_duration_seconds_sum{code=\"%d\",method=\"%s\"}", c,
				 meth[mi]);
			sum += sample(t, key);
		}
	ck_assert(total == (double)NT * per);
	ck_assert(sum == (double)NT * per * 0.375);
	ck_assert_int_eq(count_lines(t, "http_requests_total{"), 8);
	validate(t);
	free(t);
	ir_metrics_free(m);
}
END_TEST

static void *creator(void *arg)
{
	struct worker *w = arg;
	/* every thread walks the same 40 new pairs: creation races */
	for (int r = 0; r < w->n; r++)
		for (int c = 0; c < 40; c++)
			ir_metrics_observe(w->m, "PUT", 100 + c, 1);
	return NULL;
}

START_TEST(threads_create_series_once)
{
	enum { NT = 8, ROUNDS = 50 };
	struct ir_metrics *m;
	ck_assert_int_eq(ir_metrics_new(&m), 0);
	struct worker w[NT];
	pthread_t th[NT];
	for (int i = 0; i < NT; i++) {
		w[i] = (struct worker){m, i, ROUNDS};
		ck_assert_int_eq(pthread_create(&th[i], NULL, creator, &w[i]), 0);
	}
	for (int i = 0; i < NT; i++)
		pthread_join(th[i], NULL);
	char *t = render(m);
	ck_assert_int_eq(count_lines(t, "http_requests_total{"), 40);
	for (int c = 0; c < 40; c++) {
		char key[100];
		snprintf(key, sizeof(key), "http_requests_total{code=\"%d\",method=\"put\"}",
			 100 + c);
		ck_assert(sample(t, key) == NT * ROUNDS);
	}
	validate(t);
	free(t);
	ir_metrics_free(m);
}
END_TEST

/* ---- process metrics ---- */

START_TEST(process_metrics_plausible)
{
	struct ir_metrics *m;
	ck_assert_int_eq(ir_metrics_new(&m), 0);
	char *t = render(m);
	static const char *const fams[] = {
	    "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
	    "# TYPE process_cpu_seconds_total counter\n",
	    "# HELP process_max_fds Maximum number of open file descriptors.\n"
	    "# TYPE process_max_fds gauge\n",
	    "# HELP process_open_fds Number of open file descriptors.\n"
	    "# TYPE process_open_fds gauge\n",
	    "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
	    "# TYPE process_resident_memory_bytes gauge\n",
	    "# HELP process_start_time_seconds Start time of the process since unix epoch in "
	    "seconds.\n"
	    "# TYPE process_start_time_seconds gauge\n",
	    "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
	    "# TYPE process_virtual_memory_bytes gauge\n",
	    "# HELP process_virtual_memory_max_bytes Maximum amount of virtual memory available "
	    "in bytes.\n"
	    "# TYPE process_virtual_memory_max_bytes gauge\n",
	};
	const char *prev = t;
	for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
		const char *at = strstr(t, fams[i]);
		ck_assert_msg(at != NULL, "missing %s", fams[i]);
		ck_assert_msg(at >= prev, "families out of order at %s", fams[i]);
		prev = at;
	}
	ck_assert(sample(t, "process_resident_memory_bytes") > 0);
	ck_assert(sample(t, "process_virtual_memory_bytes") >=
		  sample(t, "process_resident_memory_bytes"));
	ck_assert(sample(t, "process_open_fds") >= 3);
	ck_assert(sample(t, "process_max_fds") >= sample(t, "process_open_fds"));
	ck_assert(sample(t, "process_cpu_seconds_total") >= 0);
	double now = (double)time(NULL);
	double st = sample(t, "process_start_time_seconds");
	ck_assert_msg(st > now - 86400.0 * 365 && st <= now + 2, "start %f now %f", st, now);
	ck_assert(sample(t, "process_virtual_memory_max_bytes") > 0);
	validate(t);
	free(t);
	ir_metrics_free(m);
}
END_TEST

START_TEST(validator_rejects_garbage)
{
	/* the validator itself must catch what it is there to catch */
	char fam[128] = "x", ty[16] = "counter";
#define CL(l) check_line(l, strlen(l), fam, ty)
	ck_assert_ptr_nonnull(CL("x 1.2.3"));
	ck_assert_ptr_nonnull(CL("x{a=\"b\"}1"));
	ck_assert_ptr_nonnull(CL("x{a=b} 1"));
	ck_assert_ptr_nonnull(CL("x{1a=\"b\"} 1"));
	ck_assert_ptr_nonnull(CL("y 1"));
	ck_assert_ptr_nonnull(CL("# FOO x"));
	ck_assert_ptr_null(CL("x{a=\"b\\\"\",c=\"\"} -1e+06"));
	ck_assert_ptr_null(CL("x +Inf"));
#undef CL
}
END_TEST

Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, fmt_float_like_go);
	tcase_add_test(tc, empty_render);
	tcase_add_test(tc, one_request_exact_text);
	tcase_add_test(tc, bucket_edges_and_cumulative);
	tcase_add_test(tc, sum_formatting);
	tcase_add_test(tc, labels_sanitised_and_sorted);
	tcase_add_test(tc, inflight_up_down);
	tcase_add_test(tc, series_cap_folds_into_unknown_code);
	tcase_add_test(tc, threads_lose_nothing);
	tcase_add_test(tc, threads_create_series_once);
	tcase_add_test(tc, process_metrics_plausible);
	tcase_add_test(tc, validator_rejects_garbage);
	suite_add_tcase(s, tc);
	return s;
}
