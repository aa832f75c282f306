/* echofn.c - iroute-bench-echofn: a stand-in workflow function for the
 * tests of the central orchestrator (test_central.c) and of the FINRA load
 * client, speaking the function contract of a c-func instance's HTTP port
 * with an answer that shows exactly what it received.
 *
 * Why this design: the orchestrator's tests must see from the final
 * answer alone which function got which inputs in which order, and must
 * make one function slow or failing on demand; a real c-func instance
 * needs the coordinator and a real handler.  This is the watchdog front
 * (mode iroute) with a handler of a few lines, one process per function
 * instance, like the real thing.
 *
 *   POST /   one input = the body, or with "X-Iroute-Inputs: L0,L1,..."
 *            the k inputs concatenated (the lengths must add up to the
 *            body, else 400).  The answer depends on ECHOFN_MODE:
 *              echo (default)  NAME(in0|in1|...)   e.g. "d(b(a(x))|c(a(x)))"
 *              raw             the inputs concatenated, unchanged
 *              finra           finra_expected() of the single input (the
 *                              FINRA workflow's correct result, computed
 *                              directly), 400 when it is not a portfolio
 *   GET /count  the number of POST / served so far (decimal)
 *
 * Environment (besides the watchdog's; mode is iroute):
 *   IROUTE_FUNCTION      NAME [echo]
 *   ECHOFN_MODE          echo | raw | finra [echo]
 *   ECHOFN_DELAY_MS      sleep this long in every call [0]
 *   ECHOFN_FAIL_STATUS   fail calls with this status and the contract's
 *                        {"function":NAME,"error":"echofn: call N fails"} [none]
 *   ECHOFN_FAIL_EVERY    with ECHOFN_FAIL_STATUS: only every K-th call
 *                        (the K-th, 2K-th, ...) fails [1]
 * Exit status: 0 after SIGTERM, 2 for a configuration error, 1 when
 * serving failed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envnum.h"
#include "iroute/wdconfig.h"
#include "watchdog.h"

#include "../../benchmarks/finra/common/finra.h"

#include "../../benchmarks/finra/common/common.c"
#include "../../benchmarks/finra/common/expected.c"

extern char **environ;

#define PROG "iroute-bench-echofn"

enum echo_mode { MODE_ECHO, MODE_RAW, MODE_FINRA };

struct echofn {
	const char *name;
	enum echo_mode mode;
	uint32_t delay_ms, fail_status, fail_every;
	atomic_ulong calls;
};

static int text_reply(struct ir_wd_reply *rep, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int text_reply(struct ir_wd_reply *rep, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	rep->status = status;
	rep->body = s;
	rep->len = (size_t)n;
	return 0;
}

/* The input lengths of X-Iroute-Inputs (or the whole body): 0, or -1. */
static int split_inputs(const char *hdr, size_t body_len, size_t *lens, size_t max, size_t *n)
{
	if (!hdr) {
		lens[0] = body_len;
		*n = 1;
		return 0;
	}
	size_t sum = 0;
	*n = 0;
	for (const char *p = hdr;;) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(p, &end, 10);
		if (end == p || errno || *n == max || *p == '-')
			return -1;
		lens[(*n)++] = (size_t)v;
		sum += (size_t)v;
		if (*end == '\0')
			break;
		if (*end != ',')
			return -1;
		p = end + 1;
	}
	return sum == body_len ? 0 : -1;
}

static int echofn_handle(void *arg, const struct ir_wd_call *call, struct ir_wd_reply *rep)
{
	struct echofn *e = arg;
	rep->content_type = "text/plain";
	if (!strcmp(call->method, "GET") && !strcmp(call->path, "/count"))
		return text_reply(rep, 200, "%lu", (unsigned long)atomic_load(&e->calls));
	if (strcmp(call->method, "POST") || strcmp(call->path, "/"))
		return text_reply(rep, 404, "echofn: %s %s: only POST / and GET /count\n",
				  call->method, call->path);
	unsigned long nth = atomic_fetch_add(&e->calls, 1) + 1;
	if (e->delay_ms) {
		struct timespec ts = {.tv_sec = e->delay_ms / 1000,
				      .tv_nsec = (long)(e->delay_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (e->fail_status && nth % e->fail_every == 0) {
		rep->content_type = "application/json";
		return text_reply(rep, (int)e->fail_status,
				  "{\"function\":\"%s\",\"error\":\"echofn: call %lu fails\"}",
				  e->name, nth);
	}
	static _Thread_local size_t lens[1024];
	size_t n;
	if (split_inputs(ir_wd_call_header(call, "X-Iroute-Inputs"), call->body_len, lens, 1024,
			 &n))
		return text_reply(rep, 400,
				  "{\"function\":\"%s\",\"error\":\"bad X-Iroute-Inputs for a "
				  "%zu-byte body\"}",
				  e->name, call->body_len);
	const char *body = call->body;
	if (e->mode == MODE_FINRA) {
		char err[256];
		char *r = n == 1 ? finra_expected(body, call->body_len, err, sizeof(err)) : NULL;
		if (!r)
			return text_reply(rep, 400, "{\"function\":\"%s\",\"error\":\"%s\"}",
					  e->name, n == 1 ? "not a portfolio" : "want one input");
		rep->content_type = "application/json";
		rep->body = r;
		rep->len = strlen(r);
		return 0;
	}
	size_t cap = call->body_len + strlen(e->name) + n + 3;
	char *out = malloc(cap), *w = out;
	if (!out)
		return -ENOMEM;
	if (e->mode == MODE_ECHO)
		w += sprintf(w, "%s(", e->name);
	for (size_t i = 0, off = 0; i < n; off += lens[i++]) {
		if (i && e->mode == MODE_ECHO)
			*w++ = '|';
		memcpy(w, body + off, lens[i]);
		w += lens[i];
	}
	if (e->mode == MODE_ECHO)
		*w++ = ')';
	rep->body = out;
	rep->len = (size_t)(w - out);
	return 0;
}

int main(void)
{
	static struct echofn e;
	e.name = getenv("IROUTE_FUNCTION");
	if (!e.name || !*e.name)
		e.name = "echo";
	const char *m = getenv("ECHOFN_MODE");
	if (!m || !*m || !strcmp(m, "echo")) {
		e.mode = MODE_ECHO;
	} else if (!strcmp(m, "raw")) {
		e.mode = MODE_RAW;
	} else if (!strcmp(m, "finra")) {
		e.mode = MODE_FINRA;
	} else {
		fprintf(stderr, PROG ": ECHOFN_MODE: \"%s\" is not echo, raw or finra\n", m);
		return 2;
	}
	uint32_t mport;
	if (ir_env_u32_say(PROG, "ECHOFN_DELAY_MS", 0, 0, 600000, &e.delay_ms) ||
	    ir_env_u32_say(PROG, "ECHOFN_FAIL_STATUS", 0, 0, 599, &e.fail_status) ||
	    ir_env_u32_say(PROG, "ECHOFN_FAIL_EVERY", 1, 1, 1000000, &e.fail_every) ||
	    ir_env_u32_say(PROG, "IROUTE_METRICS_PORT", 0, 0, 65535, &mport))
		return 2;
	if (e.fail_status && e.fail_status < 100) {
		fprintf(stderr, PROG ": ECHOFN_FAIL_STATUS: %u is not an HTTP status\n",
			e.fail_status);
		return 2;
	}
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof(*env));
	if (!env)
		return 2;
	memcpy(env, environ, n * sizeof(*env));
	env[n] = "mode=iroute"; /* the later entry wins */
	char err[1024];
	struct ir_wd_config cfg;
	int rc = ir_wd_config_load(&cfg, env, err, sizeof(err));
	free(env);
	if (rc) {
		fprintf(stderr, PROG ": %s\n", err);
		return 2;
	}
	ir_watchdog_block_signals();
	struct ir_watchdog_opts opts = {.lock_path = getenv("IROUTE_LOCK_FILE"),
					.metrics_port = (uint16_t)mport,
					.handler = echofn_handle,
					.handler_arg = &e};
	if (opts.lock_path && !*opts.lock_path)
		opts.lock_path = NULL;
	rc = ir_watchdog_run(&cfg, &opts, err, sizeof(err));
	ir_wd_config_release(&cfg);
	if (rc) {
		fprintf(stderr, PROG ": %s\n", err);
		return 1;
	}
	return 0;
}
