/* finra.c - iroute-bench-finra: a closed-loop HTTP load client for the FINRA
 * workflow, the same for every design it measures (the iroute entry, the
 * central orchestrator iroute-bench-central, an OpenFaaS gateway route):
 * it only needs a URL that answers POST with the workflow's result.
 *
 *   iroute-bench-finra --url URL --n N --concurrency C [--warmup W]
 *       [--seed S] [--trades T] [--violations PERMILLE] [--width W]
 *       [--timeout MS] [--json FILE] [--check]
 *
 * Why this design: the latency a user sees is measured outside the system
 * under test, on one clock (CLOCK_MONOTONIC, from the first byte sent to
 * the last byte of the answer), with a load that cannot outrun the server
 * (closed loop: C threads, each with one kept-alive connection, each
 * sending its next request when the last answer is in).  The bodies are
 * the FINRA generator's portfolios (benchmarks/finra/common, compiled in),
 * made before the clock starts, so the client spends nothing per request
 * but the HTTP exchange.  Rejected: wrk/hey (they cannot check each
 * answer against the expected result, and the project is all C), an
 * open-loop client (it measures queueing in the client as much as the
 * server once the server saturates).
 *
 * Requests: W warm-up requests (not counted), then N measured ones; the
 * i-th request (from 0, warm-up included) carries portfolio i mod K, K =
 * min(W + N, 256) portfolios finra_generate(S + j, T, PERMILLE).  --width
 * is the workflow's width, only recorded in the output (the answer is the
 * same at every width).  --check compares each 2xx answer with
 * finra_expected() of its portfolio: every number, the portfolio id, and
 * each violation's trade and rule (not the "why" texts, which are worded
 * independently).
 *
 * Output, one JSON object on stdout (and into --json FILE):
 *   {"url","n","concurrency","ok","errors","wrong","p50_ms","p90_ms",
 *    "p99_ms","p999_ms","max_ms","throughput_rps","duration_s",
 *    "warmup","seed","trades","width"}
 * ok: 2xx answers; errors: other statuses and failed exchanges (refused,
 * reset, timed out after --timeout, default 30000 ms); wrong: 2xx answers
 * that --check found different (counted in ok too).  Quantiles are over
 * every measured request that got an answer (ir_hist: within 6.25 %).
 * throughput_rps = measured requests / duration_s, the time from the
 * first measured request's send to the last one's answer.
 * Exit status: 0 when every measured request was ok (and right with
 * --check), 1 otherwise, 2 for bad arguments.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "httpc.h"
#include "iroute/hist.h"

#include "../../benchmarks/finra/common/finra.h"

#include "../../benchmarks/finra/common/common.c"
#include "../../benchmarks/finra/common/expected.c"
#include "../../benchmarks/finra/common/generate.c"

#define PROG "iroute-bench-finra"
#define MAX_BODIES 256

struct opts {
	const char *url, *json;
	uint64_t n, warmup, seed;
	uint32_t concurrency, trades, violations, width, timeout_ms;
	bool check;
};

static struct opts o = {
    .seed = 1, .trades = 50, .violations = 100, .width = 5, .timeout_ms = 30000};
static struct ir_url url;
static char host_hdr[300];
static const char *target;

static char *bodies[MAX_BODIES];
static size_t body_len[MAX_BODIES], nbodies;
static cJSON *expected[MAX_BODIES]; /* --check; read-only once built */

static atomic_uint_fast64_t next_seq;

struct worker {
	pthread_t thread;
	struct ir_hist h;
	uint64_t ok, errors, wrong;
	uint64_t first_ns, last_ns; /* measured period seen by this thread */
	char first_err[256];
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Does @got (an answer body) match @want (finra_expected())? */
static bool matches(const cJSON *want, const char *got, size_t len)
{
	cJSON *g = cJSON_ParseWithLength(got, len);
	bool ok = cJSON_IsObject(g);
	const cJSON *w;
	cJSON_ArrayForEach(w, want)
	{
		if (!ok)
			break;
		const cJSON *x = cJSON_GetObjectItemCaseSensitive(g, w->string);
		if (strcmp(w->string, "violations") != 0) {
			ok = x && cJSON_Compare(w, x, true);
			continue;
		}
		ok = cJSON_IsArray(x) && cJSON_GetArraySize(x) == cJSON_GetArraySize(w);
		for (int i = 0; ok && i < cJSON_GetArraySize(w); i++) {
			const cJSON *a = cJSON_GetArrayItem(w, i), *b = cJSON_GetArrayItem(x, i);
			static const char *const keys[] = {"trade", "rule"};
			for (size_t k = 0; ok && k < 2; k++) {
				const cJSON *p = cJSON_GetObjectItemCaseSensitive(a, keys[k]),
					    *q = cJSON_GetObjectItemCaseSensitive(b, keys[k]);
				ok = p && q && cJSON_Compare(p, q, true);
			}
		}
	}
	cJSON_Delete(g);
	return ok;
}

/* One exchange on *@cp (connecting when NULL).  Returns the status, or
 * -errno with *@cp closed and NULL. */
static int exchange(struct ir_httpc **cp, const char *body, size_t len, char **buf, size_t *cap,
		    size_t *got)
{
	uint64_t deadline = now_ns() + (uint64_t)o.timeout_ms * 1000000u;
	for (int attempt = 0;; attempt++) {
		bool reused = *cp != NULL;
		if (!*cp) {
			int fd = ir_httpc_connect(&url, deadline);
			if (fd < 0)
				return fd;
			int rc = ir_httpc_open(cp, fd);
			if (rc)
				return rc;
		}
		struct ir_httpc *c = *cp;
		ir_httpc_set_deadline(c, deadline);
		char head[1400];
		int hl = snprintf(
		    head, sizeof(head),
		    "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n\r\n",
		    target, host_hdr);
		struct ir_httpc_resp r;
		int rc = ir_httpc_send_head(c, head, (size_t)hl, (int64_t)len);
		if (!rc)
			rc = ir_httpc_send_body(c, body, len);
		if (!rc)
			rc = ir_httpc_end_body(c);
		if (!rc)
			rc = ir_httpc_read_head(c, false, &r);
		*got = 0;
		while (!rc && !ir_httpc_body_done(c)) {
			if (*got == *cap) {
				size_t ncap = *cap ? *cap * 2 : 65536;
				char *p = realloc(*buf, ncap);
				if (!p) {
					rc = -ENOMEM;
					break;
				}
				*buf = p;
				*cap = ncap;
			}
			ssize_t k = ir_httpc_read_body(c, *buf + *got, *cap - *got);
			if (k < 0)
				rc = (int)k;
			else if (k == 0)
				break;
			else
				*got += (size_t)k;
		}
		if (!rc) {
			if (!r.keep_alive || !ir_httpc_body_done(c)) {
				ir_httpc_close(c);
				*cp = NULL;
			}
			return r.status;
		}
		ir_httpc_close(c);
		*cp = NULL;
		/* A kept-alive connection the server closed meanwhile: once
		 * more on a new one. */
		if (!(reused && attempt == 0 && (rc == -ECONNRESET || rc == -EPIPE)))
			return rc;
	}
}

static void *run_worker(void *arg)
{
	struct worker *w = arg;
	struct ir_httpc *c = NULL;
	char *buf = NULL;
	size_t cap = 0, got;
	for (;;) {
		uint64_t seq = atomic_fetch_add(&next_seq, 1);
		if (seq >= o.warmup + o.n)
			break;
		bool measured = seq >= o.warmup;
		size_t b = (size_t)(seq % nbodies);
		uint64_t t0 = now_ns();
		int st = exchange(&c, bodies[b], body_len[b], &buf, &cap, &got);
		uint64_t t1 = now_ns();
		if (!measured)
			continue;
		if (!w->first_ns || t0 < w->first_ns)
			w->first_ns = t0;
		if (t1 > w->last_ns)
			w->last_ns = t1;
		if (st > 0)
			ir_hist_add(&w->h, (t1 - t0) / 1000u);
		if (st >= 200 && st < 300) {
			w->ok++;
			if (o.check && !matches(expected[b], buf, got)) {
				w->wrong++;
				if (!w->first_err[0])
					snprintf(w->first_err, sizeof(w->first_err),
						 "request %" PRIu64 ": wrong answer: %.*s", seq,
						 (int)(got < 160 ? got : 160), buf ? buf : "");
			}
			continue;
		}
		w->errors++;
		if (!w->first_err[0]) {
			if (st > 0)
				snprintf(w->first_err, sizeof(w->first_err),
					 "request %" PRIu64 ": HTTP %d: %.*s", seq, st,
					 (int)(got < 160 ? got : 160), buf ? buf : "");
			else
				snprintf(w->first_err, sizeof(w->first_err),
					 "request %" PRIu64 ": %s", seq,
					 st == -ETIMEDOUT ? "timed out" : strerror(-st));
		}
		if (st == -ECONNREFUSED) {
			struct timespec ts = {0, 1000000}; /* no busy loop on a dead server */
			nanosleep(&ts, NULL);
		}
	}
	ir_httpc_close(c);
	free(buf);
	return NULL;
}

static int usage(const char *argv0)
{
	fprintf(
	    stderr,
	    "usage: %s --url URL --n N --concurrency C [--warmup W] [--seed S] [--trades T]\n"
	    "       [--violations PERMILLE] [--width W] [--timeout MS] [--json FILE] [--check]\n",
	    argv0);
	return 2;
}

static int num_arg(const char *name, const char *s, uint64_t min, uint64_t max, uint64_t *v)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (!*s || *end || errno || *s == '-' || x < min || x > max) {
		fprintf(stderr, PROG ": %s: \"%s\" is not an integer %" PRIu64 "-%" PRIu64 "\n",
			name, s, min, max);
		return -1;
	}
	*v = x;
	return 0;
}

static int parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--check")) {
			o.check = true;
			continue;
		}
		if (i + 1 >= argc)
			return usage(argv[0]);
		const char *v = argv[++i];
		uint64_t x = 0;
		int rc = 0;
		if (!strcmp(a, "--url"))
			o.url = v;
		else if (!strcmp(a, "--json"))
			o.json = v;
		else if (!strcmp(a, "--n"))
			rc = num_arg(a, v, 1, UINT64_C(1) << 40, &o.n);
		else if (!strcmp(a, "--warmup"))
			rc = num_arg(a, v, 0, UINT64_C(1) << 40, &o.warmup);
		else if (!strcmp(a, "--seed"))
			rc = num_arg(a, v, 0, UINT64_MAX, &o.seed);
		else if (!strcmp(a, "--concurrency") && !(rc = num_arg(a, v, 1, 4096, &x)))
			o.concurrency = (uint32_t)x;
		else if (!strcmp(a, "--trades") && !(rc = num_arg(a, v, 0, 100000, &x)))
			o.trades = (uint32_t)x;
		else if (!strcmp(a, "--violations") && !(rc = num_arg(a, v, 0, 1000, &x)))
			o.violations = (uint32_t)x;
		else if (!strcmp(a, "--width") && !(rc = num_arg(a, v, 5, 1000, &x)))
			o.width = (uint32_t)x;
		else if (!strcmp(a, "--timeout") && !(rc = num_arg(a, v, 1, 3600000, &x)))
			o.timeout_ms = (uint32_t)x;
		else if (!rc)
			return usage(argv[0]);
		if (rc)
			return 2;
	}
	if (!o.url || !o.n || !o.concurrency) {
		fprintf(stderr, PROG ": --url, --n and --concurrency are required\n");
		return usage(argv[0]);
	}
	char err[512];
	if (ir_url_parse(o.url, &url, err, sizeof(err))) {
		fprintf(stderr, PROG ": --url: %s\n", err);
		return 2;
	}
	snprintf(host_hdr, sizeof(host_hdr), strchr(url.host, ':') ? "[%s]:%u" : "%s:%u", url.host,
		 (unsigned)url.port);
	target = url.prefix[0] ? url.prefix : "/";
	return 0;
}

static int make_bodies(void)
{
	uint64_t total = o.warmup + o.n;
	nbodies = total < MAX_BODIES ? (size_t)total : MAX_BODIES;
	for (size_t i = 0; i < nbodies; i++) {
		if (!(bodies[i] = finra_generate(o.seed + i, o.trades, o.violations, NULL))) {
			fprintf(stderr, PROG ": out of memory\n");
			return -1;
		}
		body_len[i] = strlen(bodies[i]);
		if (!o.check)
			continue;
		char err[256];
		char *e = finra_expected(bodies[i], body_len[i], err, sizeof(err));
		if (!e || !(expected[i] = cJSON_Parse(e))) {
			fprintf(stderr, PROG ": expected result of portfolio %zu: %s\n", i,
				e ? "unparsable" : err);
			free(e);
			return -1;
		}
		free(e);
	}
	return 0;
}

int main(int argc, char **argv)
{
	int rc = parse_args(argc, argv);
	if (rc)
		return rc;
	signal(SIGPIPE, SIG_IGN);
	if (make_bodies())
		return 1;
	struct worker *w = calloc(o.concurrency, sizeof(*w));
	if (!w) {
		fprintf(stderr, PROG ": out of memory\n");
		return 1;
	}
	for (uint32_t i = 0; i < o.concurrency; i++)
		if ((rc = pthread_create(&w[i].thread, NULL, run_worker, &w[i]))) {
			fprintf(stderr, PROG ": pthread_create: %s\n", strerror(rc));
			return 1;
		}
	static struct ir_hist h;
	uint64_t ok = 0, errors = 0, wrong = 0, first = 0, last = 0;
	const char *first_err = NULL;
	for (uint32_t i = 0; i < o.concurrency; i++) {
		pthread_join(w[i].thread, NULL);
		ir_hist_merge(&h, &w[i].h);
		ok += w[i].ok;
		errors += w[i].errors;
		wrong += w[i].wrong;
		if (w[i].first_ns && (!first || w[i].first_ns < first))
			first = w[i].first_ns;
		if (w[i].last_ns > last)
			last = w[i].last_ns;
		if (!first_err && w[i].first_err[0])
			first_err = w[i].first_err;
	}
	double dur = last > first ? (double)(last - first) / 1e9 : 0;
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "url", o.url);
	cJSON_AddNumberToObject(j, "n", (double)o.n);
	cJSON_AddNumberToObject(j, "concurrency", o.concurrency);
	cJSON_AddNumberToObject(j, "ok", (double)ok);
	cJSON_AddNumberToObject(j, "errors", (double)errors);
	cJSON_AddNumberToObject(j, "wrong", (double)wrong);
	static const char *const qn[] = {"p50_ms", "p90_ms", "p99_ms", "p999_ms"};
	static const double qv[] = {0.5, 0.9, 0.99, 0.999};
	for (size_t i = 0; i < 4; i++)
		cJSON_AddNumberToObject(j, qn[i], (double)ir_hist_quantile(&h, qv[i]) / 1000.0);
	cJSON_AddNumberToObject(j, "max_ms", (double)h.max_us / 1000.0);
	cJSON_AddNumberToObject(j, "throughput_rps",
				dur > 0 ? round((double)o.n / dur * 10) / 10 : 0);
	cJSON_AddNumberToObject(j, "duration_s", round(dur * 1e6) / 1e6);
	cJSON_AddNumberToObject(j, "warmup", (double)o.warmup);
	cJSON_AddNumberToObject(j, "seed", (double)o.seed);
	cJSON_AddNumberToObject(j, "trades", o.trades);
	cJSON_AddNumberToObject(j, "width", o.width);
	char *s = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	if (!s) {
		fprintf(stderr, PROG ": out of memory\n");
		return 1;
	}
	printf("%s\n", s);
	fflush(stdout);
	if (o.json) {
		FILE *f = fopen(o.json, "w");
		if (!f || fprintf(f, "%s\n", s) < 0 || fclose(f) != 0) {
			fprintf(stderr, PROG ": %s: %s\n", o.json, strerror(errno));
			free(s);
			return 1;
		}
	}
	free(s);
	if (first_err)
		fprintf(stderr, PROG ": %" PRIu64 " error(s), %" PRIu64 " wrong; first: %s\n",
			errors, wrong, first_err);
	for (size_t i = 0; i < nbodies; i++) {
		free(bodies[i]);
		cJSON_Delete(expected[i]);
	}
	free(w);
	return errors || wrong ? 1 : 0;
}
