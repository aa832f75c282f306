/* test_cc.c - the coordinator binary (iroute-cc) over real HTTP: tables per
 * DAG shape, long-poll, leases, leave, suspect, stats, bad requests, bad
 * workflow files, kill -9 and restart against the file mirror, and the
 * ZooKeeper mirror against a real ZooKeeper server (tzk.h). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "httpc.h"
#include "iroute/hist.h"
#include "mirror.h"
#include "tests.h"
#include "twd.h"
#include "tzk.h"


static __thread char *last_body; /* per thread: long-polls run on their own */

/* One request to the coordinator; returns the status, the body in
 * last_body (NUL-terminated, replaced by the next call). */
static int req_tok(const char *method, const char *target, const char *body, const char *tok)
{
	free(last_body);
	last_body = NULL;
	struct ir_url u = {.port = (uint16_t)twd_port};
	snprintf(u.host, sizeof(u.host), "127.0.0.1");
	uint64_t dl = (now_ms() + 10000) * 1000000ull;
	int fd = ir_httpc_connect(&u, 0);
	ck_assert_int_ge(fd, 0);
	struct ir_httpc *c;
	ck_assert_int_eq(ir_httpc_open(&c, fd), 0);
	(void)dl;
	char head[1024], auth[256] = "";
	if (tok)
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", tok);
	int n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: cc\r\n%s\r\n", method, target,
			 auth);
	ck_assert_int_eq(ir_httpc_send_head(c, head, (size_t)n,
					    body ? (int64_t)strlen(body) : IR_HTTPC_NO_BODY),
			 0);
	if (body)
		ck_assert_int_eq(ir_httpc_send_body(c, body, strlen(body)), 0);
	ck_assert_int_eq(ir_httpc_end_body(c), 0);
	struct ir_httpc_resp r;
	ck_assert_int_eq(ir_httpc_read_head(c, strcmp(method, "HEAD") == 0, &r), 0);
	size_t len = 0, cap = 4096;
	last_body = malloc(cap);
	for (;;) {
		if (len + 1024 > cap)
			last_body = realloc(last_body, cap *= 2);
		ssize_t got = ir_httpc_read_body(c, last_body + len, cap - len - 1);
		ck_assert_int_ge(got, 0);
		if (!got)
			break;
		len += (size_t)got;
	}
	last_body[len] = '\0';
	ir_httpc_close(c);
	return r.status;
}

static int req(const char *method, const char *target, const char *body)
{
	return req_tok(method, target, body, test_token());
}

static cJSON *req_json(const char *method, const char *target, const char *body, int want)
{
	int st = req(method, target, body);
	ck_assert_msg(st == want, "%s %s: status %d (want %d): %s", method, target, st, want,
		      last_body);
	cJSON *o = cJSON_Parse(last_body);
	ck_assert_msg(o != NULL, "%s %s: not JSON: %s", method, target, last_body);
	return o;
}

static char mirror_env[160], wf_env[160], port_env[32];

/* Start iroute-cc on twd_port with @wf (JSON text) and @extra env. */
static void cc_start(const char *wf, const char *const *extra)
{
	char p[128];
	path_in(p, sizeof(p), "wf.json");
	FILE *f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(wf, f);
	fclose(f);
	snprintf(wf_env, sizeof(wf_env), "IROUTE_WORKFLOW=%s", p);
	snprintf(mirror_env, sizeof(mirror_env), "IROUTE_MIRROR_FILE=%s/mirror.json", twd_dir);
	snprintf(port_env, sizeof(port_env), "port=%d", twd_port);
	/* @extra first: getenv() takes the first of two, so it overrides. */
	const char *env[24];
	size_t n = 0;
	for (size_t i = 0; extra && extra[i] && n < 17; i++)
		env[n++] = extra[i];
	const char *const base[] = {test_token_env(), wf_env, mirror_env, port_env,
				    "IROUTE_LEASE_MS=1000", "IROUTE_POLL_MS=400"};
	for (size_t i = 0; i < 6; i++)
		env[n++] = base[i];
	env[n] = NULL;
	spawn_bin("iroute-cc", env, true);
}

static void cc_kill(void)
{
	kill(twd_pid, SIGKILL);
	waitpid(twd_pid, NULL, 0);
	twd_pid = 0;
}

/* Register and return the instance id (static buffer per call site). */
static const char *reg(const char *who, const char *http, char *id, size_t cap)
{
	char body[512];
	snprintf(body, sizeof(body),
		 "{%s,\"node\":\"n1\",\"addresses\":{\"http\":\"%s\",\"tcp\":\"127.0.0.1:1\"},"
		 "\"transports\":[\"tcp\",\"ipc\"]}",
		 who, http ? http : "127.0.0.1:1");
	cJSON *o = req_json("POST", "/v1/register", body, 200);
	const cJSON *i = cJSON_GetObjectItem(o, "instance");
	ck_assert(cJSON_IsString(i));
	snprintf(id, cap, "%s", i->valuestring);
	cJSON_Delete(o);
	return id;
}

static uint64_t epoch_now(void)
{
	cJSON *o = req_json("GET", "/v1/stats", NULL, 200);
	uint64_t e = (uint64_t)cJSON_GetObjectItem(o, "epoch")->valuedouble;
	cJSON_Delete(o);
	return e;
}

/* The local table of @id (a poll with since=0). */
static cJSON *table_of(const char *id)
{
	char t[256];
	snprintf(t, sizeof(t), "/v1/routes?instance=%s&since=0", id);
	return req_json("GET", t, NULL, 200);
}

static int route_count(const cJSON *table, const char *fn)
{
	const cJSON *l = cJSON_GetObjectItem(cJSON_GetObjectItem(table, "routes"), fn);
	return l ? cJSON_GetArraySize(l) : -1;
}

/* Wait until every change so far is in a published epoch: the global
 * table holds as many instances as the state (GET /v1/stats). */
static void settle(void)
{
	uint64_t t0 = now_ms();
	for (;;) {
		cJSON *st = req_json("GET", "/v1/stats", NULL, 200);
		int want = (int)cJSON_GetObjectItem(cJSON_GetObjectItem(st, "instances"), "total")->valuedouble;
		cJSON_Delete(st);
		cJSON *g = req_json("GET", "/v1/table", NULL, 200), *f;
		int have = cJSON_GetArraySize(cJSON_GetObjectItem(g, "entries"));
		cJSON_ArrayForEach(f, cJSON_GetObjectItem(g, "functions"))
		have += cJSON_GetArraySize(f);
		cJSON_Delete(g);
		if (have == want)
			return;
		ck_assert_msg(now_ms() - t0 < 5000, "no epoch with all %d instances", want);
		sleep_ms(5);
	}
}

/* Poll as instance @id for @ms (renewing its lease), following epochs. */
static void keep_polling(const char *id, unsigned ms)
{
	uint64_t since = 0, t0 = now_ms();
	char target[256];
	while (now_ms() - t0 < ms) {
		snprintf(target, sizeof(target), "/v1/routes?instance=%s&since=%llu&wait_ms=300", id,
			 (unsigned long long)since);
		int st = req("GET", target, NULL);
		ck_assert_msg(st == 200 || st == 304, "poll: %d %s", st, last_body);
		if (st == 200) {
			cJSON *o = cJSON_Parse(last_body);
			since = (uint64_t)cJSON_GetObjectItem(o, "epoch")->valuedouble;
			cJSON_Delete(o);
		}
	}
}

START_TEST(tables_stage_form)
{
	cc_start("{\"name\":\"t\",\"dag\":[[\"a\"],[\"b\",\"c\"],[\"d\"]]}", NULL);
	char a[80], b[80], c[80], d1[80], d2[80], e[80];
	reg("\"function\":\"a\"", NULL, a, sizeof(a));
	reg("\"function\":\"b\"", NULL, b, sizeof(b));
	reg("\"function\":\"c\"", NULL, c, sizeof(c));
	reg("\"function\":\"d\"", NULL, d1, sizeof(d1));
	reg("\"function\":\"d\"", NULL, d2, sizeof(d2));
	reg("\"role\":\"entry\"", NULL, e, sizeof(e));
	ck_assert(strncmp(a, "a-", 2) == 0 && strncmp(e, "entry-", 6) == 0);
	settle();
	cJSON *t = table_of(a);
	ck_assert_int_eq(route_count(t, "b"), 1);
	ck_assert_int_eq(route_count(t, "c"), 1);
	ck_assert_int_eq(route_count(t, "a"), -1); /* not a join: no self list */
	/* every function knows the entries: errors go straight back */
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(t, "entries")), 1);
	const cJSON *bi = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(t, "routes"), "b"), 0);
	ck_assert_str_eq(cJSON_GetObjectItem(bi, "id")->valuestring, b);
	ck_assert_str_eq(cJSON_GetObjectItem(bi, "node")->valuestring, "n1");
	ck_assert_int_eq((int)cJSON_GetObjectItem(bi, "capacity")->valuedouble, 1);
	cJSON_Delete(t);
	t = table_of(b);
	ck_assert_int_eq(route_count(t, "d"), 2);
	ck_assert_int_eq(route_count(t, "b"), -1);
	cJSON_Delete(t);
	t = table_of(d1); /* a join and a sink: itself, and the entries */
	ck_assert_int_eq(route_count(t, "d"), 2);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(t, "entries")), 1);
	cJSON_Delete(t);
	t = table_of(e);
	ck_assert_str_eq(cJSON_GetObjectItem(t, "role")->valuestring, "entry");
	ck_assert_int_eq(route_count(t, "a"), 1);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(t, "routes")), 1);
	cJSON_Delete(t);
	cJSON *g = req_json("GET", "/v1/table", NULL, 200);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(g, "functions"), "d")), 2);
	cJSON_Delete(g);
}
END_TEST

START_TEST(tables_explicit_form)
{
	cc_start("{\"name\":\"finra\",\"functions\":{\"marketdata\":{\"next\":[\"margin\"]},"
		 "\"lastpx\":{\"next\":[\"margin\"]},\"margin\":{}},"
		 "\"entry\":[\"marketdata\",\"lastpx\"]}",
		 NULL);
	cJSON *o = req_json("POST", "/v1/register",
			    "{\"function\":\"lastpx\",\"node\":\"n\",\"addresses\":{\"tcp\":\"h:1\"},"
			    "\"transports\":[\"tcp\"],\"capacity\":8}",
			    200);
	const cJSON *sl = cJSON_GetObjectItem(o, "slice");
	const cJSON *nx = cJSON_GetArrayItem(cJSON_GetObjectItem(sl, "next"), 0);
	ck_assert_str_eq(cJSON_GetObjectItem(nx, "name")->valuestring, "margin");
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(nx, "join")));
	ck_assert_int_eq((int)cJSON_GetObjectItem(nx, "branch")->valuedouble, 1);
	ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(o, "lease_ms")));
	cJSON_Delete(o);
	char m[80], e[80];
	reg("\"function\":\"margin\"", NULL, m, sizeof(m));
	reg("\"role\":\"entry\"", NULL, e, sizeof(e));
	settle();
	cJSON *t = table_of(e);
	ck_assert_int_eq(route_count(t, "marketdata"), 0);
	ck_assert_int_eq(route_count(t, "lastpx"), 1);
	cJSON_Delete(t);
	t = table_of(m);
	ck_assert_int_eq(route_count(t, "margin"), 1);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(t, "entries")), 1);
	cJSON_Delete(t);
	/* An entry's slice is the whole workflow (entries, sinks, indices). */
	cJSON *eo = req_json("POST", "/v1/register",
			     "{\"role\":\"entry\",\"node\":\"n\",\"addresses\":{\"tcp\":\"h:2\"},"
			     "\"transports\":[\"tcp\"],\"capacity\":1}",
			     200);
	const cJSON *es = cJSON_GetObjectItem(eo, "slice");
	ck_assert_str_eq(cJSON_GetObjectItem(es, "name")->valuestring, "finra");
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(es, "entry")), 2);
	ck_assert(cJSON_IsObject(cJSON_GetObjectItem(es, "functions")));
	cJSON_Delete(eo);
	cJSON *w = req_json("GET", "/v1/workflow", NULL, 200);
	ck_assert_str_eq(cJSON_GetObjectItem(w, "name")->valuestring, "finra");
	cJSON_Delete(w);
}
END_TEST

struct poll_arg {
	char target[256];
	int status;
	uint64_t done_ms;
	char *body;
};

static void *poll_thread(void *p)
{
	struct poll_arg *a = p;
	a->status = req("GET", a->target, NULL);
	a->done_ms = now_ms();
	a->body = strdup(last_body);
	free(last_body);
	last_body = NULL;
	return NULL;
}

START_TEST(long_poll_wakes_and_times_out)
{
	cc_start("{\"dag\":[[\"a\"],[\"b\"]]}", NULL);
	char a[80], b1[80], b2[80];
	reg("\"function\":\"a\"", NULL, a, sizeof(a));
	reg("\"function\":\"b\"", NULL, b1, sizeof(b1));
	settle();
	uint64_t e = epoch_now();
	struct poll_arg pa;
	snprintf(pa.target, sizeof(pa.target), "/v1/routes?instance=%s&since=%llu", a,
		 (unsigned long long)e);
	pthread_t th;
	pthread_create(&th, NULL, poll_thread, &pa);
	sleep_ms(150);
	uint64_t t0 = now_ms();
	reg("\"function\":\"b\"", NULL, b2, sizeof(b2));
	pthread_join(th, NULL);
	ck_assert_int_eq(pa.status, 200);
	ck_assert_msg(pa.done_ms - t0 < 150, "poll answered %llu ms after the change",
		      (unsigned long long)(pa.done_ms - t0));
	cJSON *t = cJSON_Parse(pa.body);
	ck_assert_int_gt((uint64_t)cJSON_GetObjectItem(t, "epoch")->valuedouble, e);
	ck_assert_int_eq(route_count(t, "b"), 2);
	uint64_t e2 = (uint64_t)cJSON_GetObjectItem(t, "epoch")->valuedouble;
	cJSON_Delete(t);
	free(pa.body);
	/* No change: 304 after wait_ms, no body. */
	char target[256];
	snprintf(target, sizeof(target), "/v1/routes?instance=%s&since=%llu&wait_ms=200", a,
		 (unsigned long long)e2);
	t0 = now_ms();
	ck_assert_int_eq(req("GET", target, NULL), 304);
	ck_assert_uint_ge(now_ms() - t0, 180);
	ck_assert_str_eq(last_body, "");
	/* An instance that saw a higher epoch lifts the next one above it. */
	snprintf(target, sizeof(target), "/v1/routes?instance=%s&since=%llu", a,
		 (unsigned long long)e2 + 100);
	cJSON *o = req_json("GET", target, NULL, 200);
	ck_assert_uint_gt((uint64_t)cJSON_GetObjectItem(o, "epoch")->valuedouble, e2 + 100);
	cJSON_Delete(o);
}
END_TEST

START_TEST(lease_expiry_and_renewal)
{
	cc_start("{\"dag\":[[\"a\"],[\"b\"]]}", NULL); /* lease 1000 ms */
	char a[80], b[80];
	reg("\"function\":\"a\"", NULL, a, sizeof(a));
	reg("\"function\":\"b\"", NULL, b, sizeof(b)); /* never polls */
	settle();
	uint64_t e = epoch_now();
	char target[256];
	keep_polling(a, 2000); /* renews a's lease, not b's */
	cJSON *g = req_json("GET", "/v1/table", NULL, 200);
	const cJSON *fns = cJSON_GetObjectItem(g, "functions");
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(fns, "a")), 1);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(fns, "b")), 0);
	ck_assert_uint_gt((uint64_t)cJSON_GetObjectItem(g, "epoch")->valuedouble, e);
	cJSON_Delete(g);
	snprintf(target, sizeof(target), "/v1/routes?instance=%s&since=0", b);
	ck_assert_int_eq(req("GET", target, NULL), 404);
	ck_assert(strstr(last_body, "register again") != NULL);
}
END_TEST

START_TEST(leave_removes)
{
	cc_start("{\"dag\":[[\"a\"],[\"b\"]]}", NULL);
	char a[80], b[80], body[160];
	reg("\"function\":\"a\"", NULL, a, sizeof(a));
	reg("\"function\":\"b\"", NULL, b, sizeof(b));
	settle();
	uint64_t e = epoch_now();
	snprintf(body, sizeof(body), "{\"instance\":\"%s\"}", b);
	cJSON *o = req_json("POST", "/v1/leave", body, 200);
	ck_assert_uint_gt((uint64_t)cJSON_GetObjectItem(o, "epoch")->valuedouble, e);
	cJSON_Delete(o);
	settle();
	cJSON *t = table_of(a);
	ck_assert_int_eq(route_count(t, "b"), 0);
	cJSON_Delete(t);
	ck_assert_int_eq(req("POST", "/v1/leave", body), 404);
	ck_assert(strstr(last_body, b) != NULL);
}
END_TEST

START_TEST(suspect_is_verified)
{
	cc_start("{\"dag\":[[\"a\"],[\"b\"]]}", NULL);
	char self[64], dead[64], a[80], live[80], gone[80], body[256];
	snprintf(self, sizeof(self), "127.0.0.1:%d", twd_port); /* answers /_/health 200 */
	snprintf(dead, sizeof(dead), "127.0.0.1:%d", free_port());
	reg("\"function\":\"a\"", NULL, a, sizeof(a));
	reg("\"function\":\"b\"", self, live, sizeof(live));
	reg("\"function\":\"b\"", dead, gone, sizeof(gone));
	snprintf(body, sizeof(body), "{\"instance\":\"%s\",\"by\":\"%s\"}", live, a);
	cJSON *o = req_json("POST", "/v1/suspect", body, 200);
	ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(o, "removed")));
	ck_assert(strstr(cJSON_GetObjectItem(o, "reason")->valuestring, "answered 200") != NULL);
	cJSON_Delete(o);
	snprintf(body, sizeof(body), "{\"instance\":\"%s\",\"by\":\"%s\"}", gone, a);
	o = req_json("POST", "/v1/suspect", body, 200);
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(o, "removed")));
	cJSON_Delete(o);
	settle();
	cJSON *t = table_of(a);
	ck_assert_int_eq(route_count(t, "b"), 1);
	cJSON_Delete(t);
	snprintf(body, sizeof(body), "{\"instance\":\"%s\",\"by\":\"nobody-1\"}", live);
	ck_assert_int_eq(req("POST", "/v1/suspect", body), 404);
	ck_assert(strstr(last_body, "reporter") != NULL);
}
END_TEST

START_TEST(stats_histograms)
{
	cc_start("{\"dag\":[[\"a\"]]}", NULL);
	char e[80];
	reg("\"role\":\"entry\"", NULL, e, sizeof(e));
	struct ir_hist *h = calloc(1, sizeof(*h));
	for (uint64_t v = 1; v <= 10000; v++)
		ir_hist_add(h, v * 10); /* 10 us .. 100 ms, uniform */
	char *hj = ir_hist_to_json(h);
	size_t cap = strlen(hj) + 128;
	char *body = malloc(cap);
	snprintf(body, cap, "{\"instance\":\"%s\",\"latency\":%s}", e, hj);
	ck_assert_int_eq(req("POST", "/v1/stats", body), 200);
	ck_assert_int_eq(req("POST", "/v1/stats", body), 200); /* merged: count doubles */
	cJSON *s = req_json("GET", "/v1/stats", NULL, 200);
	const cJSON *l = cJSON_GetObjectItem(s, "latency_ms");
	ck_assert_int_eq((int)cJSON_GetObjectItem(l, "count")->valuedouble, 20000);
	double p50 = cJSON_GetObjectItem(l, "p50")->valuedouble;
	double p99 = cJSON_GetObjectItem(l, "p99")->valuedouble;
	double p999 = cJSON_GetObjectItem(l, "p999")->valuedouble;
	ck_assert_msg(p50 > 50 * 0.93 && p50 < 50 * 1.07, "p50 %f", p50);
	ck_assert_msg(p99 > 99 * 0.93 && p99 < 99 * 1.07, "p99 %f", p99);
	ck_assert_msg(p999 > 99.9 * 0.93 && p999 <= 100, "p999 %f", p999);
	cJSON_Delete(s);
	snprintf(body, cap, "{\"instance\":\"%s\",\"latency\":{\"unit\":\"ms\",\"buckets\":[]}}", e);
	ck_assert_int_eq(req("POST", "/v1/stats", body), 400);
	ck_assert(strstr(last_body, "unit") != NULL);
	ck_assert_int_eq(req("POST", "/v1/stats", "{\"instance\":\"x-1\",\"latency\":{\"unit\":\"us\",\"buckets\":[]}}"), 404);
	free(body);
	free(hj);
	free(h);
}
END_TEST

START_TEST(bad_requests)
{
	cc_start("{\"dag\":[[\"a\"]]}", NULL);
	char wrong[64], shorter[64]; /* the token plus a byte, and a prefix of it */
	snprintf(wrong, sizeof(wrong), "%sx", test_token());
	snprintf(shorter, sizeof(shorter), "%.5s", test_token());
	const struct {
		const char *method, *target, *body, *tok;
		int status;
		const char *needle;
	} cases[] = {
	    {"GET", "/v1/stats", NULL, NULL, 401, "Authorization"},
	    {"GET", "/v1/stats", NULL, shorter, 401, "Authorization"},
	    {"GET", "/v1/stats", NULL, wrong, 401, "Authorization"},
	    {"POST", "/v1/register", "{\"function\":", test_token(), 400, "not valid JSON"},
	    {"POST", "/v1/register", "[1,2]", test_token(), 400, "not a JSON object"},
	    {"POST", "/v1/register", "{}", test_token(), 400, "\\\"function\\\""},
	    {"POST", "/v1/register", "{\"function\":\"zz\"}", test_token(), 400, "not in workflow"},
	    {"POST", "/v1/register", "{\"function\":\"a\",\"node\":\"n\",\"transports\":[\"tcp\"]}",
	     test_token(), 400, "addresses"},
	    {"POST", "/v1/register",
	     "{\"function\":\"a\",\"node\":\"n\",\"addresses\":{\"tcp\":\"h:1\"},\"transports\":[\"udp\"]}",
	     test_token(), 400, "transports"},
	    {"POST", "/v1/register",
	     "{\"function\":\"a\",\"node\":\"n\",\"addresses\":{\"tcp\":\"h:1\"},\"transports\":[\"tcp\"],"
	     "\"capacity\":0}",
	     test_token(), 400, "capacity"},
	    {"POST", "/v1/register",
	     "{\"function\":\"a\",\"node\":\"n\",\"adresses\":{\"tcp\":\"h:1\"},\"transports\":[\"tcp\"]}",
	     test_token(), 400, "unknown field \\\"adresses\\\""},
	    {"POST", "/v1/register", "{\"function\":\"a\",\"role\":\"entry\"}", test_token(), 400, "not both"},
	    {"GET", "/v1/routes?instance=a-0000&since=0", NULL, test_token(), 404, "unknown instance"},
	    {"GET", "/v1/routes?since=0", NULL, test_token(), 400, "instance"},
	    {"GET", "/v1/routes?instance=a-1&since=x", NULL, test_token(), 400, "since"},
	    {"GET", "/v1/routes?instance=a-1&since=18446744073709551615", NULL, test_token(), 400, "since"},
	    {"POST", "/v1/register",
	     "{\"function\":\"a\",\"node\":\"n\",\"addresses\":{\"tcp\":\"h:1\"},\"transports\":[\"tcp\"],"
	     "\"epoch\":1.5}",
	     test_token(), 400, "epoch"},
	    {"POST", "/v1/leave", "{\"id\":\"a-1\"}", test_token(), 400, "instance"},
	    {"POST", "/v1/suspect", "{\"instance\":\"a-1\"}", test_token(), 400, "by"},
	    {"GET", "/v1/register", NULL, test_token(), 405, "not allowed"},
	    {"GET", "/v1/nothing", NULL, test_token(), 404, "no such endpoint"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int st = req_tok(cases[i].method, cases[i].target, cases[i].body, cases[i].tok);
		ck_assert_msg(st == cases[i].status, "case %zu: %s %s: %d %s", i, cases[i].method,
			      cases[i].target, st, last_body);
		ck_assert_msg(strstr(last_body, "\"error\":") && strstr(last_body, cases[i].needle),
			      "case %zu: body %s lacks %s", i, last_body, cases[i].needle);
	}
	/* Health stays open without the token (OpenFaaS probes it). */
	ck_assert_int_eq(req_tok("GET", "/_/health", NULL, NULL), 200);
}
END_TEST

/* Runs iroute-cc on @wf; it must exit 2 with @needle on stderr. */
static void refused(const char *wf, const char *needle)
{
	char p[128], errp[128];
	path_in(p, sizeof(p), "wf.json");
	FILE *f = fopen(p, "w");
	fputs(wf, f);
	fclose(f);
	snprintf(wf_env, sizeof(wf_env), "IROUTE_WORKFLOW=%s", p);
	snprintf(port_env, sizeof(port_env), "port=%d", twd_port);
	const char *env[] = {test_token_env(), wf_env, port_env, NULL};
	spawn_bin("iroute-cc", env, false);
	int st = wait_exit(5000);
	ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s: status %d", wf, st);
	ck_assert_msg(!port_open(twd_port), "it served");
	path_in(errp, sizeof(errp), "stderr");
	size_t len;
	char *e = read_file("stderr", &len);
	ck_assert_msg(e && strstr(e, needle), "%s: stderr \"%s\" lacks \"%s\"", wf, e ? e : "",
		      needle);
	free(e);
}

START_TEST(bad_workflow_files)
{
	refused("{\"dag\":[[\"a\"],[\"b\"],[\"a\"]]}", "listed twice");
	refused("{\"functions\":{\"a\":{\"next\":[\"b\"]},\"b\":{\"next\":[\"a\"]},\"c\":{\"next\":[\"a\"]}},"
		"\"entry\":[\"c\"]}",
		"cycle: a -> b -> a");
	refused("{\"functions\":{\"a\":{\"next\":[\"zz\"]}},\"entry\":[\"a\"]}",
		"function \"a\": successor \"zz\" is not a function");
	refused("{\"functions\":{\"a\":{}}}", "\"entry\" is missing");
	refused("{\"functions\":{\"a\":{},\"b\":{}},\"entry\":[\"a\"]}", "not reachable");
	refused("[1,2]", "top level must be an object");
	refused("{\"dag\":[[\"a\"]", "invalid JSON");
	refused("{\"dag\":[[\"A_b\"]]}", "DNS label");
	/* And a missing file, and a missing token. */
	char p[160];
	snprintf(p, sizeof(p), "IROUTE_WORKFLOW=%s/none.json", twd_dir);
	const char *env[] = {test_token_env(), p, NULL};
	spawn_bin("iroute-cc", env, false);
	int st = wait_exit(5000);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2);
	size_t len;
	char *e = read_file("stderr", &len);
	ck_assert(e && strstr(e, "none.json") && strstr(e, "No such file"));
	free(e);
}
END_TEST

START_TEST(kill9_restart_recovers)
{
	cc_start("{\"dag\":[[\"a\"],[\"b\"]]}", NULL); /* lease 1000 */
	char a[80], b[80];
	reg("\"function\":\"a\"", NULL, a, sizeof(a));
	reg("\"function\":\"b\"", NULL, b, sizeof(b));
	settle();
	uint64_t e = epoch_now();
	sleep_ms(50); /* the mirror writes the newest epoch */
	cc_kill();
	cc_start("{\"dag\":[[\"a\"],[\"b\"]]}", NULL);
	uint64_t e2 = epoch_now();
	ck_assert_uint_gt(e2, e);
	/* a re-confirms by polling; b stays silent. */
	cJSON *t = table_of(a);
	ck_assert_int_eq(route_count(t, "b"), 1);
	ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(t, "routes"), "b"), 0), "id")->valuestring, b);
	cJSON_Delete(t);
	keep_polling(a, 1800);
	t = table_of(a);
	ck_assert_int_eq(route_count(t, "b"), 0);
	ck_assert_uint_gt((uint64_t)cJSON_GetObjectItem(t, "epoch")->valuedouble, e2);
	cJSON_Delete(t);
	/* The file mirror converged on the newest epoch. */
	sleep_ms(50);
	size_t len;
	char *m = read_file("mirror.json", &len);
	cJSON *mj = cJSON_Parse(m);
	ck_assert_uint_eq((uint64_t)cJSON_GetObjectItem(mj, "epoch")->valuedouble, epoch_now());
	cJSON_Delete(mj);
	free(m);
}
END_TEST

/* ---- with ZooKeeper ---- */

static struct tzk zk;
static char zk_env[96];
/* A long lease: these tests count instances that never poll. */
static const char *zk_extra[] = {zk_env, NULL /* writer */, NULL /* reader */,
				 "IROUTE_ZK_SESSION_MS=4000", "IROUTE_LEASE_MS=60000", NULL};

static void zk_setup(void)
{
	twd_setup();
	ck_assert_int_eq(tzk_start(&zk), 0);
	snprintf(zk_env, sizeof(zk_env), "IROUTE_ZK=%s", zk.hosts);
	zk_extra[1] = tzk_writer_env();
	zk_extra[2] = tzk_reader_env();
}

static void zk_teardown(void)
{
	twd_teardown();
	tzk_stop(&zk);
}


/* The mirror as an instance reads it: reader credential, read-only. */
static int zk_read(struct ir_mirror_snap *s)
{
	struct ir_zk_opts o = {.hosts = zk.hosts, .cred = tzk_reader_cred(), .op_timeout_ms = 3000};
	struct ir_mirror *m;
	char err[256];
	ck_assert_int_eq(ir_mirror_open_zk(&m, &o, "t", err, sizeof(err)), 0);
	int rc = ir_mirror_load(m, s, err, sizeof(err));
	ir_mirror_close(m);
	return rc;
}

/* Wait until the mirror holds epoch >= @e; returns what it holds. */
static uint64_t zk_wait_epoch(uint64_t e, unsigned ms)
{
	uint64_t t0 = now_ms(), got = 0;
	do {
		struct ir_mirror_snap s;
		if (zk_read(&s) == 0) {
			got = s.epoch;
			ir_mirror_snap_free(&s);
			if (got >= e)
				break;
		}
		sleep_ms(50);
	} while (now_ms() - t0 < ms);
	return got;
}

START_TEST(zk_mirror_read_back)
{
	cc_start("{\"name\":\"t\",\"dag\":[[\"a\"],[\"b\"]]}", zk_extra);
	char a[80], b[80];
	reg("\"function\":\"a\"", NULL, a, sizeof(a));
	reg("\"function\":\"b\"", NULL, b, sizeof(b));
	settle();
	uint64_t e = epoch_now();
	ck_assert_uint_eq(zk_wait_epoch(e, 5000), e);
	struct ir_mirror_snap s;
	ck_assert_int_eq(zk_read(&s), 0);
	ck_assert_uint_eq(s.ninstances, 2);
	bool seen_b = false;
	for (size_t i = 0; i < s.nfns; i++)
		if (strcmp(s.fns[i].name, "b") == 0)
			seen_b = strstr(s.fns[i].instances, b) != NULL;
	ck_assert(seen_b);
	ck_assert(strstr(s.workflow, "\"name\":\"t\"") != NULL);
	ir_mirror_snap_free(&s);
	/* The reader cannot write. */
	struct ir_zk_opts o = {.hosts = zk.hosts, .cred = tzk_reader_cred(), .op_timeout_ms = 3000};
	struct ir_mirror *m;
	char err[256];
	ck_assert_int_eq(ir_mirror_open_zk(&m, &o, "t", err, sizeof(err)), 0);
	ck_assert_int_eq(ir_mirror_load(m, &s, err, sizeof(err)), 0);
	s.epoch += 10;
	ck_assert_int_eq(ir_mirror_store(m, &s, NULL, err, sizeof(err)), -EACCES);
	ir_mirror_snap_free(&s);
	ir_mirror_close(m);
	cJSON *st = req_json("GET", "/v1/stats", NULL, 200);
	ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "mirror"), "kind")->valuestring,
			 "zookeeper");
	cJSON_Delete(st);
}
END_TEST

START_TEST(zk_away_then_back_converges)
{
	cc_start("{\"name\":\"t\",\"dag\":[[\"a\"],[\"b\"]]}", zk_extra);
	char a[80], b[80];
	reg("\"function\":\"a\"", NULL, a, sizeof(a));
	settle();
	ck_assert_uint_eq(zk_wait_epoch(epoch_now(), 5000), epoch_now());
	tzk_kill(&zk);
	/* Tables keep changing while ZooKeeper is away; the API keeps serving. */
	for (int i = 0; i < 5; i++) {
		reg("\"function\":\"b\"", NULL, b, sizeof(b));
		settle();
	}
	uint64_t e = epoch_now(); /* settled: this epoch has all 6 */
	cJSON *st = req_json("GET", "/v1/stats", NULL, 200);
	ck_assert_uint_lt((uint64_t)cJSON_GetObjectItem(cJSON_GetObjectItem(st, "mirror"), "epoch")->valuedouble, e);
	cJSON_Delete(st);
	ck_assert_int_eq(tzk_restart(&zk), 0);
	ck_assert_uint_eq(zk_wait_epoch(e, 10000), e);
	struct ir_mirror_snap s;
	ck_assert_int_eq(zk_read(&s), 0);
	ck_assert_uint_eq(s.ninstances, 6);
	ir_mirror_snap_free(&s);
}
END_TEST

START_TEST(zk_kill9_restart_recovers)
{
	cc_start("{\"name\":\"t\",\"dag\":[[\"a\"],[\"b\"]]}", zk_extra);
	char a[80], b[80];
	reg("\"function\":\"a\"", NULL, a, sizeof(a));
	reg("\"function\":\"b\"", NULL, b, sizeof(b));
	settle();
	uint64_t e = epoch_now();
	ck_assert_uint_eq(zk_wait_epoch(e, 5000), e);
	cc_kill();
	/* A fresh file path: everything must come back from ZooKeeper. */
	snprintf(mirror_env, sizeof(mirror_env), "IROUTE_MIRROR_FILE=%s/unused.json", twd_dir);
	cc_start("{\"name\":\"t\",\"dag\":[[\"a\"],[\"b\"]]}", zk_extra);
	uint64_t e2 = epoch_now();
	ck_assert_uint_gt(e2, e);
	cJSON *t = table_of(a);
	ck_assert_int_eq(route_count(t, "b"), 1);
	cJSON_Delete(t);
	ck_assert_uint_ge(zk_wait_epoch(e2, 5000), e2);
}
END_TEST


START_TEST(zk_down_at_start_then_adopted)
{
	/* A mirror from an earlier coordinator: epoch 40, one instance of b. */
	struct ir_zk_opts w = {.hosts = zk.hosts,
			       .cred = tzk_writer_cred(),
			       .reader_cred = tzk_reader_cred(),
			       .op_timeout_ms = 3000,
			       .writer = true};
	struct ir_mirror *m;
	char err[256];
	ck_assert_int_eq(ir_mirror_open_zk(&m, &w, "t", err, sizeof(err)), 0);
	struct ir_mirror_fn fns[] = {
	    {"a", "[]"},
	    {"b", "[{\"id\":\"b-00000000000000aa\",\"function\":\"b\",\"node\":\"n\","
		  "\"addresses\":{\"tcp\":\"h:1\"},\"transports\":[\"tcp\"],\"capacity\":1}]"}};
	struct ir_mirror_snap s = {.epoch = 40,
				   .ms = 1,
				   .ninstances = 1,
				   .workflow = "{\"name\":\"t\"}",
				   .fns = fns,
				   .nfns = 2,
				   .entries = "[]"};
	ck_assert_int_eq(ir_mirror_store(m, &s, NULL, err, sizeof(err)), 0);
	ir_mirror_close(m);
	tzk_kill(&zk);
	/* ZooKeeper away at start-up: the coordinator says so and serves. */
	cc_start("{\"name\":\"t\",\"dag\":[[\"a\"],[\"b\"]]}", zk_extra);
	char a[80];
	reg("\"function\":\"a\"", NULL, a, sizeof(a));
	ck_assert_uint_lt(epoch_now(), 40);
	ck_assert_int_eq(tzk_restart(&zk), 0);
	/* It reads the mirror first: epoch above 40, b-...aa adopted, a kept. */
	uint64_t t0 = now_ms();
	while (epoch_now() <= 40 && now_ms() - t0 < 10000)
		sleep_ms(50);
	ck_assert_uint_gt(epoch_now(), 40);
	cJSON *g = req_json("GET", "/v1/table", NULL, 200);
	const cJSON *fl = cJSON_GetObjectItem(g, "functions");
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(fl, "a")), 1);
	ck_assert(strstr(last_body, "b-00000000000000aa") != NULL);
	cJSON_Delete(g);
	ck_assert_uint_ge(zk_wait_epoch(epoch_now(), 10000), 41);
	size_t len;
	char *e = read_file("stderr", &len);
	ck_assert_msg(e && strstr(e, "not connected"), "no warning that ZooKeeper is away: %s", e);
	free(e);
}
END_TEST

START_TEST(zk_stale_coordinator_does_not_overwrite)
{
	cc_start("{\"name\":\"t\",\"dag\":[[\"a\"],[\"b\"]]}", zk_extra);
	char a[80], b[80];
	reg("\"function\":\"a\"", NULL, a, sizeof(a));
	settle();
	uint64_t e = epoch_now();
	ck_assert_uint_eq(zk_wait_epoch(e, 5000), e);
	/* Another coordinator (same writer credential) writes epoch e + 50. */
	struct ir_zk_opts w = {.hosts = zk.hosts,
			       .cred = tzk_writer_cred(),
			       .reader_cred = tzk_reader_cred(),
			       .op_timeout_ms = 3000,
			       .writer = true};
	struct ir_mirror *m;
	char err[256];
	ck_assert_int_eq(ir_mirror_open_zk(&m, &w, "t", err, sizeof(err)), 0);
	struct ir_mirror_snap s;
	ck_assert_int_eq(ir_mirror_load(m, &s, err, sizeof(err)), 0);
	s.epoch = e + 50;
	free(s.entries);
	s.entries = strdup("[{\"id\":\"entry-other\"}]");
	ck_assert_int_eq(ir_mirror_store(m, &s, NULL, err, sizeof(err)), 0);
	ir_mirror_snap_free(&s);
	ir_mirror_close(m);
	/* Our coordinator's next epoch (e + 1) must not overwrite e + 50. */
	reg("\"function\":\"b\"", NULL, b, sizeof(b));
	uint64_t t0 = now_ms();
	cJSON *st = NULL;
	for (;;) {
		st = req_json("GET", "/v1/stats", NULL, 200);
		if (cJSON_GetObjectItem(cJSON_GetObjectItem(st, "mirror"), "stale")->valuedouble >= 1 ||
		    now_ms() - t0 > 5000)
			break;
		cJSON_Delete(st);
		sleep_ms(50);
	}
	ck_assert_int_eq((int)cJSON_GetObjectItem(cJSON_GetObjectItem(st, "mirror"), "stale")->valuedouble, 1);
	cJSON_Delete(st);
	ck_assert_int_eq(zk_read(&s), 0);
	ck_assert_uint_eq(s.epoch, e + 50);
	ck_assert(strstr(s.entries, "entry-other") != NULL);
	ir_mirror_snap_free(&s);
	/* Its next change goes out above the other's epoch. */
	reg("\"function\":\"b\"", NULL, b, sizeof(b));
	settle();
	ck_assert_uint_gt(epoch_now(), e + 50);
	ck_assert_uint_gt(zk_wait_epoch(e + 51, 5000), e + 50);
}
END_TEST

Suite *cc_suite(void)
{
	Suite *s = suite_create("cc");
	TCase *tc = tcase_create("api");
	tcase_add_checked_fixture(tc, twd_setup, twd_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, tables_stage_form);
	tcase_add_test(tc, tables_explicit_form);
	tcase_add_test(tc, long_poll_wakes_and_times_out);
	tcase_add_test(tc, lease_expiry_and_renewal);
	tcase_add_test(tc, leave_removes);
	tcase_add_test(tc, suspect_is_verified);
	tcase_add_test(tc, stats_histograms);
	tcase_add_test(tc, bad_requests);
	tcase_add_test(tc, bad_workflow_files);
	tcase_add_test(tc, kill9_restart_recovers);
	suite_add_tcase(s, tc);
	TCase *z = tcase_create("zookeeper");
	tcase_add_checked_fixture(z, zk_setup, zk_teardown);
	tcase_set_timeout(z, 90);
	tcase_add_test(z, zk_mirror_read_back);
	tcase_add_test(z, zk_away_then_back_converges);
	tcase_add_test(z, zk_kill9_restart_recovers);
	tcase_add_test(z, zk_down_at_start_then_adopted);
	tcase_add_test(z, zk_stale_coordinator_does_not_overwrite);
	suite_add_tcase(s, z);
	return s;
}
