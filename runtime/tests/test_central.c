/* test_central.c - the central-orchestrator baseline (iroute-bench-central)
 * and the FINRA load client (iroute-bench-finra), as real processes:
 * stand-in functions are iroute-bench-echofn instances, whose answers
 * ("name(in0|in1)") show which inputs each function got, in which order.
 * Chains, fan-out and joins (input order, levels run at once), several
 * sinks, failing, dead and slow functions, round-robin and fail-over
 * across instances, bad configurations; the client's JSON and its counts
 * of errors and wrong answers. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>
#include <cjson/cJSON.h>

#include "httpc.h"
#include "twd.h"

Suite *central_suite(void);

#define MAXP 32

static char dir[64];
static pid_t pids[MAXP];
static size_t npids;

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/iroute-central-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	npids = 0;
}

static void teardown(void)
{
	for (size_t i = 0; i < npids; i++) {
		kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
	}
	npids = 0;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "no %s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Fork+exec binary @name of IROUTE_BIN_DIR with @argv (after argv[0];
 * NULL = none) and only PATH plus @env; stdout to dir/@out (NULL: kept),
 * stderr to dir/@err. */
static pid_t spawn(const char *name, const char *const *argv, const char *const *env,
		   const char *out, const char *err)
{
	const char *bindir = getenv("IROUTE_BIN_DIR");
	char bin[512], vpath[1024], pout[128], perr[128];
	snprintf(bin, sizeof(bin), "%s/%s", bindir && *bindir ? bindir : "build/bin", name);
	ck_assert_msg(access(bin, X_OK) == 0, "%s not built", bin);
	snprintf(vpath, sizeof(vpath), "PATH=%s",
		 getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	snprintf(pout, sizeof(pout), "%s/%s", dir, out ? out : "");
	snprintf(perr, sizeof(perr), "%s/%s", dir, err);
	char *envp[40] = {vpath}, *args[40] = {bin};
	size_t ne = 1, na = 1;
	for (size_t i = 0; env && env[i] && ne < 39; i++)
		envp[ne++] = (char *)env[i];
	for (size_t i = 0; argv && argv[i] && na < 39; i++)
		args[na++] = (char *)argv[i];
	ck_assert_uint_lt(npids, MAXP);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(perr, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0)
			dup2(fd, 2);
		if (out && (fd = open(pout, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0)
			dup2(fd, 1);
		execve(bin, args, envp);
		_exit(127);
	}
	pids[npids++] = pid;
	return pid;
}

/* Wait for @pid to exit: its wait status, or -1 after @ms. */
static int wait_pid(pid_t pid, unsigned ms)
{
	uint64_t t0 = now_ms();
	for (;;) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			for (size_t i = 0; i < npids; i++)
				if (pids[i] == pid)
					pids[i] = pids[--npids];
			return st;
		}
		if (now_ms() - t0 > ms)
			return -1;
		sleep_ms(5);
	}
}

static void wait_listening(pid_t pid, int port, const char *what)
{
	uint64_t t0 = now_ms();
	while (!port_open(port)) {
		int st;
		ck_assert_msg(waitpid(pid, &st, WNOHANG) == 0, "%s exited early", what);
		ck_assert_msg(now_ms() - t0 < 5000, "%s did not listen", what);
		sleep_ms(5);
	}
}

/* Start an echofn instance of function @name with @extra env; its port. */
static int start_fn(const char *name, const char *const *extra)
{
	int port = free_port();
	char e[5][160], errf[96];
	snprintf(e[0], sizeof(e[0]), "IROUTE_FUNCTION=%s", name);
	snprintf(e[1], sizeof(e[1]), "port=%d", port);
	snprintf(e[2], sizeof(e[2]), "IROUTE_METRICS_PORT=%d", free_port());
	snprintf(e[3], sizeof(e[3]), "IROUTE_LOCK_FILE=%s/%s-%d.lock", dir, name, port);
	snprintf(e[4], sizeof(e[4]), "IROUTE_LOG_LEVEL=error");
	const char *env[24] = {e[0], e[1], e[2], e[3], e[4]};
	size_t n = 5;
	for (size_t i = 0; extra && extra[i] && n < 23; i++)
		env[n++] = extra[i];
	snprintf(errf, sizeof(errf), "%s-%d.err", name, port);
	pid_t pid = spawn("iroute-bench-echofn", NULL, env, NULL, errf);
	wait_listening(pid, port, name);
	return port;
}

static void write_workflow(const char *json)
{
	char p[128];
	snprintf(p, sizeof(p), "%s/wf.json", dir);
	FILE *f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(json, f);
	fclose(f);
}

/* Spawn the orchestrator on @wf (JSON text; NULL: a missing file) with
 * IROUTE_CENTRAL_FUNCTIONS @fns (NULL: unset) and @extra env; *port gets
 * its port. */
static pid_t spawn_central(const char *wf, const char *fns, const char *const *extra, int *port)
{
	if (wf)
		write_workflow(wf);
	*port = free_port();
	static char e[5][4096];
	snprintf(e[0], sizeof(e[0]), "IROUTE_WORKFLOW=%s/%s", dir, wf ? "wf.json" : "missing.json");
	snprintf(e[1], sizeof(e[1]), "port=%d", *port);
	snprintf(e[2], sizeof(e[2]), "IROUTE_METRICS_PORT=%d", free_port());
	snprintf(e[3], sizeof(e[3]), "IROUTE_LOCK_FILE=%s/central.lock", dir);
	snprintf(e[4], sizeof(e[4]), "IROUTE_CENTRAL_FUNCTIONS=%s", fns ? fns : "");
	const char *env[24] = {e[0], e[1], e[2], e[3]};
	size_t n = 4;
	if (fns)
		env[n++] = e[4];
	for (size_t i = 0; extra && extra[i] && n < 23; i++)
		env[n++] = extra[i];
	return spawn("iroute-bench-central", NULL, env, NULL, "central.err");
}

static int start_central(const char *wf, const char *fns, const char *const *extra)
{
	int port;
	pid_t pid = spawn_central(wf, fns, extra, &port);
	wait_listening(pid, port, "iroute-bench-central");
	return port;
}

/* The orchestrator must refuse the configuration: exit 2, @want in stderr. */
static void central_refuses(const char *wf, const char *fns, const char *const *extra,
			    const char *want)
{
	int port;
	int st = wait_pid(spawn_central(wf, fns, extra, &port), 5000);
	char p[128];
	snprintf(p, sizeof(p), "%s/central.err", dir);
	char *err = slurp(p);
	ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 2,
		      "status %d for %s (stderr: %s)", st, fns ? fns : "(unset)", err);
	ck_assert_msg(strstr(err, want), "stderr \"%s\" lacks \"%s\"", err, want);
	free(err);
}

struct resp {
	int status;
	char *body;
	size_t len;
	char ctype[128];
};

/* One request on a new connection. */
static struct resp http(int port, const char *method, const char *path, const char *body)
{
	struct ir_url u = {.port = (uint16_t)port};
	snprintf(u.host, sizeof(u.host), "127.0.0.1");
	uint64_t dl = (now_ms() + 20000) * 1000000ull;
	int fd = ir_httpc_connect(&u, dl);
	ck_assert_int_ge(fd, 0);
	struct ir_httpc *c;
	ck_assert_int_eq(ir_httpc_open(&c, fd), 0);
	ir_httpc_set_deadline(c, dl);
	char head[512];
	int n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: t\r\n\r\n", method, path);
	ck_assert_int_eq(
	    ir_httpc_send_head(c, head, (size_t)n, body ? (int64_t)strlen(body) : IR_HTTPC_NO_BODY),
	    0);
	if (body)
		ck_assert_int_eq(ir_httpc_send_body(c, body, strlen(body)), 0);
	ck_assert_int_eq(ir_httpc_end_body(c), 0);
	struct ir_httpc_resp r;
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	struct resp out = {.status = r.status};
	const char *ct = ir_httpc_header(&r, "Content-Type");
	snprintf(out.ctype, sizeof(out.ctype), "%s", ct ? ct : "");
	size_t cap = 4096;
	out.body = malloc(cap);
	for (;;) {
		if (out.len + 1024 > cap)
			out.body = realloc(out.body, cap *= 2);
		ck_assert_ptr_nonnull(out.body);
		ssize_t got = ir_httpc_read_body(c, out.body + out.len, cap - out.len - 1);
		ck_assert_int_ge(got, 0);
		if (got == 0)
			break;
		out.len += (size_t)got;
	}
	out.body[out.len] = '\0';
	ir_httpc_close(c);
	return out;
}

static struct resp post(int port, const char *body)
{
	return http(port, "POST", "/", body);
}

/* POST @body; the answer must be 200 with @want. */
static void expect_answer(int port, const char *body, const char *want)
{
	struct resp r = post(port, body);
	ck_assert_msg(r.status == 200, "status %d: %s", r.status, r.body);
	ck_assert_str_eq(r.body, want);
	free(r.body);
}

/* The answer must be @status with {"error": containing @want, "function": @fn}. */
static void expect_error(struct resp r, int status, const char *fn, const char *want)
{
	ck_assert_msg(r.status == status, "status %d (want %d): %s", r.status, status, r.body);
	ck_assert_str_eq(r.ctype, "application/json");
	cJSON *j = cJSON_Parse(r.body);
	ck_assert_msg(j != NULL, "not JSON: %s", r.body);
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error"),
		    *f = cJSON_GetObjectItemCaseSensitive(j, "function");
	ck_assert_msg(cJSON_IsString(e) && strstr(e->valuestring, want), "error lacks \"%s\": %s",
		      want, r.body);
	if (fn) {
		ck_assert_msg(cJSON_IsString(f), "no function: %s", r.body);
		ck_assert_str_eq(f->valuestring, fn);
	}
	cJSON_Delete(j);
	free(r.body);
}

static long fn_count(int port)
{
	struct resp r = http(port, "GET", "/count", NULL);
	ck_assert_int_eq(r.status, 200);
	long n = atol(r.body);
	free(r.body);
	return n;
}

/* ---- the orchestrator ---- */

START_TEST(chain)
{
	int a = start_fn("a", NULL), b = start_fn("b", NULL), c = start_fn("c", NULL);
	char fns[256];
	snprintf(fns, sizeof(fns),
		 "a=http://127.0.0.1:%d;b=http://127.0.0.1:%d;c=http://127.0.0.1:%d", a, b, c);
	int p = start_central("{\"dag\":[[\"a\"],[\"b\"],[\"c\"]]}", fns, NULL);
	expect_answer(p, "hello", "c(b(a(hello)))");
	expect_answer(p, "", "c(b(a()))");
	struct resp r = http(p, "GET", "/_/health", NULL);
	ck_assert_int_eq(r.status, 200);
	free(r.body);
	ck_assert_int_eq(fn_count(a), 2);
	ck_assert_int_eq(fn_count(c), 2);
	expect_error(http(p, "GET", "/", NULL), 405, NULL, "POST /");
	expect_error(http(p, "POST", "/other", "x"), 404, NULL, "/other");
}
END_TEST

/* Fan-out then a join: the join's inputs come in workflow order whatever
 * order they finish in, and one level's calls run at the same time. */
START_TEST(fanout_join)
{
	const char *slow[] = {"ECHOFN_DELAY_MS=700", NULL}, *mid[] = {"ECHOFN_DELAY_MS=400", NULL};
	int a = start_fn("a", NULL), b = start_fn("b", slow), c = start_fn("c", mid),
	    d = start_fn("d", mid), e = start_fn("e", NULL);
	char fns[512];
	snprintf(fns, sizeof(fns),
		 "a=http://127.0.0.1:%d;b=http://127.0.0.1:%d;c=http://127.0.0.1:%d;"
		 "d=http://127.0.0.1:%d;e=http://127.0.0.1:%d",
		 a, b, c, d, e);
	int p = start_central("{\"dag\":[[\"a\"],[\"b\",\"c\",\"d\"],[\"e\"]]}", fns, NULL);
	uint64_t t0 = now_ms();
	expect_answer(p, "x", "e(b(a(x))|c(a(x))|d(a(x)))");
	uint64_t ms = now_ms() - t0;
	ck_assert_msg(ms >= 700 && ms < 1300, "took %llu ms (in turn: 1500)",
		      (unsigned long long)ms);
}
END_TEST

/* The same answer with no worker threads (every call on the request's
 * thread, in turn). */
START_TEST(fanout_no_workers)
{
	const char *mid[] = {"ECHOFN_DELAY_MS=200", NULL};
	int a = start_fn("a", NULL), b = start_fn("b", mid), c = start_fn("c", mid),
	    d = start_fn("d", NULL);
	char fns[512];
	snprintf(fns, sizeof(fns),
		 "a=http://127.0.0.1:%d;b=http://127.0.0.1:%d;c=http://127.0.0.1:%d;"
		 "d=http://127.0.0.1:%d",
		 a, b, c, d);
	const char *env[] = {"IROUTE_CENTRAL_WORKERS=0", NULL};
	int p = start_central("{\"dag\":[[\"a\"],[\"b\",\"c\"],[\"d\"]]}", fns, env);
	uint64_t t0 = now_ms();
	expect_answer(p, "x", "d(b(a(x))|c(a(x)))");
	ck_assert_uint_ge(now_ms() - t0, 400);
}
END_TEST

/* Join order is workflow.json's prev order (the explicit form's "entry"
 * order among entries), and a join may take inputs from different levels. */
START_TEST(join_order)
{
	int z = start_fn("z", NULL), a = start_fn("a", NULL), j = start_fn("j", NULL);
	char fns[256];
	snprintf(fns, sizeof(fns),
		 "j=http://127.0.0.1:%d;a=http://127.0.0.1:%d;z=http://127.0.0.1:%d", j, a, z);
	int p = start_central("{\"functions\":{\"a\":{\"next\":[\"j\"]},\"j\":{},"
			      "\"z\":{\"next\":[\"j\"]}},\"entry\":[\"z\",\"a\"]}",
			      fns, NULL);
	expect_answer(p, "x", "j(z(x)|a(x))");
	teardown();
	setup();

	int a2 = start_fn("a", NULL), b2 = start_fn("b", NULL), j2 = start_fn("j", NULL);
	snprintf(fns, sizeof(fns),
		 "a=http://127.0.0.1:%d;b=http://127.0.0.1:%d;j=http://127.0.0.1:%d", a2, b2, j2);
	p = start_central("{\"functions\":{\"a\":{\"next\":[\"b\",\"j\"]},\"b\":{\"next\":[\"j\"]},"
			  "\"j\":{}},\"entry\":[\"a\"]}",
			  fns, NULL);
	expect_answer(p, "x", "j(a(x)|b(a(x)))");
	ck_assert_int_eq(fn_count(a2), 1); /* asked once for both successors */
}
END_TEST

/* Two sinks: a JSON object keyed by sink name; JSON outputs embedded. */
START_TEST(two_sinks)
{
	const char *raw[] = {"ECHOFN_MODE=raw", NULL};
	int a = start_fn("a", raw), b = start_fn("b", raw), c = start_fn("c", NULL);
	char fns[256];
	snprintf(fns, sizeof(fns),
		 "a=http://127.0.0.1:%d;b=http://127.0.0.1:%d;c=http://127.0.0.1:%d", a, b, c);
	int p = start_central("{\"dag\":[[\"a\"],[\"b\",\"c\"]]}", fns, NULL);
	struct resp r = post(p, "{\"k\":1}");
	ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
	ck_assert_str_eq(r.ctype, "application/json");
	cJSON *j = cJSON_Parse(r.body);
	ck_assert_msg(j != NULL, "not JSON: %s", r.body);
	ck_assert_int_eq(cJSON_GetArraySize(j), 2);
	const cJSON *vb = cJSON_GetObjectItemCaseSensitive(j, "b"),
		    *vc = cJSON_GetObjectItemCaseSensitive(j, "c");
	ck_assert(cJSON_IsObject(vb));
	ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(vb, "k")->valueint, 1);
	ck_assert(cJSON_IsString(vc));
	ck_assert_str_eq(vc->valuestring, "c({\"k\":1})");
	ck_assert_str_eq(j->child->string, "b"); /* sink order */
	cJSON_Delete(j);
	free(r.body);
}
END_TEST

/* A function answering 500: its status, its message, its name; nothing
 * after it runs. */
START_TEST(function_500)
{
	const char *fail[] = {"ECHOFN_FAIL_STATUS=500", NULL};
	int a = start_fn("a", NULL), b = start_fn("b", fail), c = start_fn("c", NULL);
	char fns[256];
	snprintf(fns, sizeof(fns),
		 "a=http://127.0.0.1:%d;b=http://127.0.0.1:%d;c=http://127.0.0.1:%d", a, b, c);
	int p = start_central("{\"dag\":[[\"a\"],[\"b\"],[\"c\"]]}", fns, NULL);
	expect_error(post(p, "x"), 500, "b", "echofn: call 1 fails");
	ck_assert_int_eq(fn_count(c), 0);
	teardown();
	setup();
	/* Any status passes through, and in a level the first function in
	 * workflow order is the one reported. */
	const char *f422[] = {"ECHOFN_FAIL_STATUS=422", NULL};
	a = start_fn("a", NULL);
	b = start_fn("b", f422);
	c = start_fn("c", fail);
	snprintf(fns, sizeof(fns),
		 "a=http://127.0.0.1:%d;b=http://127.0.0.1:%d;c=http://127.0.0.1:%d", a, b, c);
	p = start_central("{\"dag\":[[\"a\"],[\"b\",\"c\"]]}", fns, NULL);
	expect_error(post(p, "x"), 422, "b", "call 1 fails");
}
END_TEST

/* A dead instance: 502 naming the function and the refusal; with a live
 * instance beside it, every request still succeeds. */
START_TEST(dead_instance)
{
	int a = start_fn("a", NULL), dead = free_port();
	char fns[256];
	snprintf(fns, sizeof(fns), "a=http://127.0.0.1:%d;b=http://127.0.0.1:%d", a, dead);
	int p = start_central("{\"dag\":[[\"a\"],[\"b\"]]}", fns, NULL);
	expect_error(post(p, "x"), 502, "b", "Connection refused");
	teardown();
	setup();
	a = start_fn("a", NULL);
	int b = start_fn("b", NULL);
	snprintf(fns, sizeof(fns),
		 "a=http://127.0.0.1:%d;b=http://127.0.0.1:%d,http://127.0.0.1:%d", a, dead, b);
	p = start_central("{\"dag\":[[\"a\"],[\"b\"]]}", fns, NULL);
	for (int i = 0; i < 4; i++)
		expect_answer(p, "x", "b(a(x))");
	ck_assert_int_eq(fn_count(b), 4);
}
END_TEST

/* An instance that dies after serving: the parked connection is gone, the
 * next call gets a clear 502 instead of hanging. */
START_TEST(instance_dies)
{
	int a = start_fn("a", NULL), b = start_fn("b", NULL);
	pid_t bpid = pids[npids - 1];
	char fns[256];
	snprintf(fns, sizeof(fns), "a=http://127.0.0.1:%d;b=http://127.0.0.1:%d", a, b);
	int p = start_central("{\"dag\":[[\"a\"],[\"b\"]]}", fns, NULL);
	expect_answer(p, "x", "b(a(x))");
	kill(bpid, SIGKILL);
	ck_assert_int_ne(wait_pid(bpid, 5000), -1);
	expect_error(post(p, "x"), 502, "b", "Connection refused");
}
END_TEST

START_TEST(round_robin)
{
	int a = start_fn("a", NULL), b1 = start_fn("b", NULL), b2 = start_fn("b", NULL);
	char fns[256];
	snprintf(fns, sizeof(fns),
		 "a=http://127.0.0.1:%d;b=http://127.0.0.1:%d,http://127.0.0.1:%d", a, b1, b2);
	int p = start_central("{\"dag\":[[\"a\"],[\"b\"]]}", fns, NULL);
	for (int i = 0; i < 6; i++)
		expect_answer(p, "x", "b(a(x))");
	ck_assert_int_eq(fn_count(b1), 3);
	ck_assert_int_eq(fn_count(b2), 3);
}
END_TEST

/* exec_timeout bounds the whole workflow: a slow function is a 504 naming it. */
START_TEST(slow_function)
{
	const char *slow[] = {"ECHOFN_DELAY_MS=3000", NULL};
	int a = start_fn("a", NULL), b = start_fn("b", slow);
	char fns[256];
	snprintf(fns, sizeof(fns), "a=http://127.0.0.1:%d;b=http://127.0.0.1:%d", a, b);
	const char *env[] = {"exec_timeout=1", NULL};
	int p = start_central("{\"dag\":[[\"a\"],[\"b\"]]}", fns, env);
	uint64_t t0 = now_ms();
	struct resp r = post(p, "x");
	uint64_t ms = now_ms() - t0;
	ck_assert_msg(ms < 2500, "took %llu ms", (unsigned long long)ms);
	expect_error(r, 504, "b", "deadline");
}
END_TEST

START_TEST(bad_env)
{
	const char *wf = "{\"dag\":[[\"a\"],[\"b\"]]}";
	central_refuses(wf, NULL, NULL, "IROUTE_CENTRAL_FUNCTIONS is required");
	central_refuses(wf, "a=http://127.0.0.1:1", NULL,
			"function \"b\" of workflow \"wf\" has no instance");
	central_refuses(wf, "a=http://127.0.0.1:1;b=http://127.0.0.1:2;zz=http://127.0.0.1:3", NULL,
			"\"zz\" is not a function of workflow \"wf\"");
	central_refuses(wf, "a=http://127.0.0.1:1;b=https://127.0.0.1:2", NULL,
			"IROUTE_CENTRAL_FUNCTIONS: ");
	central_refuses(wf, "a=http://127.0.0.1:1;b=", NULL, "function \"b\" has no URL");
	central_refuses(wf, "a=http://127.0.0.1:1;b", NULL, "\"b\": want name=url");
	central_refuses(wf, "a=http://127.0.0.1:1;a=http://127.0.0.1:2;b=http://127.0.0.1:3", NULL,
			"function \"a\" listed twice");
	const char *fns = "a=http://127.0.0.1:1;b=http://127.0.0.1:2";
	central_refuses("{\"dag\":[[\"a\"],[\"b\"]],\"x\":1}", fns, NULL, "wf.json: ");
	const char *w[] = {"IROUTE_CENTRAL_WORKERS=lots", NULL};
	central_refuses(wf, fns, w, "IROUTE_CENTRAL_WORKERS: \"lots\"");
	const char *m[] = {"mode=http", "upstream_url=http://127.0.0.1:1", "fprocess=cat", NULL};
	central_refuses(wf, fns, m, "mode must be \"iroute\"");
	const char *t[] = {"exec_timeout=10x", NULL};
	central_refuses(wf, fns, t, "exec_timeout");
	central_refuses(NULL, fns, NULL, "missing.json: open(): No such file or directory");
}
END_TEST

/* ---- the FINRA load client ---- */

/* Run iroute-bench-finra with @args; its exit status; *@j its stdout JSON. */
static int run_finra(const char *const *args, cJSON **j)
{
	pid_t pid = spawn("iroute-bench-finra", args, NULL, "finra.out", "finra.err");
	int st = wait_pid(pid, 60000);
	ck_assert_msg(st != -1, "iroute-bench-finra did not finish");
	ck_assert(WIFEXITED(st));
	char p[128];
	snprintf(p, sizeof(p), "%s/finra.out", dir);
	char *out = slurp(p);
	*j = out[0] ? cJSON_Parse(out) : NULL;
	free(out);
	return WEXITSTATUS(st);
}

static double num(const cJSON *j, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
	ck_assert_msg(cJSON_IsNumber(v), "no number \"%s\"", k);
	return v->valuedouble;
}

/* Every key, and the quantiles in order. */
static void check_shape(const cJSON *j, const char *url, double n, double conc)
{
	static const char *const keys[] = {
	    "url",    "n",	"concurrency", "ok",	 "errors",	   "wrong",	"p50_ms",
	    "p90_ms", "p99_ms", "p999_ms",     "max_ms", "throughput_rps", "duration_s"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		ck_assert_msg(cJSON_GetObjectItemCaseSensitive(j, keys[i]), "no \"%s\"", keys[i]);
	ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "url")->valuestring, url);
	ck_assert(num(j, "n") == n);
	ck_assert(num(j, "concurrency") == conc);
	ck_assert(num(j, "ok") + num(j, "errors") == n);
	ck_assert(num(j, "p50_ms") > 0);
	ck_assert(num(j, "p50_ms") <= num(j, "p90_ms"));
	ck_assert(num(j, "p90_ms") <= num(j, "p99_ms"));
	ck_assert(num(j, "p99_ms") <= num(j, "p999_ms"));
	ck_assert(num(j, "p999_ms") <= num(j, "max_ms") * 1.07);
	ck_assert(num(j, "duration_s") > 0);
	ck_assert(num(j, "throughput_rps") > 0);
}

/* raw -> finra: the orchestrator over echo functions answers the FINRA
 * expected result; every answer right, then counted errors. */
START_TEST(finra_client)
{
	const char *raw[] = {"ECHOFN_MODE=raw", NULL}, *fin[] = {"ECHOFN_MODE=finra", NULL};
	int a = start_fn("a", raw), b = start_fn("b", fin);
	char fns[256], url[64], json[128];
	snprintf(fns, sizeof(fns), "a=http://127.0.0.1:%d;b=http://127.0.0.1:%d", a, b);
	int p = start_central("{\"dag\":[[\"a\"],[\"b\"]]}", fns, NULL);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", p);
	snprintf(json, sizeof(json), "%s/r.json", dir);
	cJSON *j;
	const char *ok[] = {"--url",	     url,      "--n",	   "200",
			    "--concurrency", "8",      "--warmup", "20",
			    "--check",	     "--json", json,	   NULL};
	ck_assert_int_eq(run_finra(ok, &j), 0);
	ck_assert_ptr_nonnull(j);
	check_shape(j, url, 200, 8);
	ck_assert(num(j, "ok") == 200);
	ck_assert(num(j, "errors") == 0);
	ck_assert(num(j, "wrong") == 0);
	char *ftext = slurp(json);
	cJSON *f = cJSON_Parse(ftext);
	ck_assert(cJSON_Compare(j, f, true)); /* --json holds the same object */
	cJSON_Delete(f);
	free(ftext);
	cJSON_Delete(j);
	ck_assert_int_eq(fn_count(b), 220); /* warm-up included */

	/* The echo chain's answers are not the FINRA result: all wrong. */
	teardown();
	setup();
	a = start_fn("a", raw);
	b = start_fn("b", NULL);
	snprintf(fns, sizeof(fns), "a=http://127.0.0.1:%d;b=http://127.0.0.1:%d", a, b);
	p = start_central("{\"dag\":[[\"a\"],[\"b\"]]}", fns, NULL);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", p);
	const char *wrong[] = {"--url", url, "--n", "50", "--concurrency", "4", "--check", NULL};
	ck_assert_int_eq(run_finra(wrong, &j), 1);
	check_shape(j, url, 50, 4);
	ck_assert(num(j, "ok") == 50);
	ck_assert(num(j, "wrong") == 50);
	cJSON_Delete(j);
	/* Without --check nothing is compared. */
	const char *nocheck[] = {"--url", url, "--n", "50", "--concurrency", "4", NULL};
	ck_assert_int_eq(run_finra(nocheck, &j), 0);
	ck_assert(num(j, "wrong") == 0);
	cJSON_Delete(j);
}
END_TEST

/* A function failing every 4th call: exactly n/4 errors, the rest ok
 * and right. */
START_TEST(finra_client_errors)
{
	const char *raw[] = {"ECHOFN_MODE=raw", NULL},
		   *fin[] = {"ECHOFN_MODE=finra", "ECHOFN_FAIL_STATUS=500", "ECHOFN_FAIL_EVERY=4",
			     NULL};
	int a = start_fn("a", raw), b = start_fn("b", fin);
	char fns[256], url[64];
	snprintf(fns, sizeof(fns), "a=http://127.0.0.1:%d;b=http://127.0.0.1:%d", a, b);
	int p = start_central("{\"dag\":[[\"a\"],[\"b\"]]}", fns, NULL);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", p);
	cJSON *j;
	const char *args[] = {"--url", url, "--n", "40", "--concurrency", "4", "--check", NULL};
	ck_assert_int_eq(run_finra(args, &j), 1);
	check_shape(j, url, 40, 4);
	ck_assert(num(j, "errors") == 10);
	ck_assert(num(j, "ok") == 30);
	ck_assert(num(j, "wrong") == 0);
	cJSON_Delete(j);
	char p2[128];
	snprintf(p2, sizeof(p2), "%s/finra.err", dir);
	char *err = slurp(p2);
	ck_assert_msg(strstr(err, "HTTP 500") && strstr(err, "\"function\":\"b\""), "%s", err);
	free(err);

	/* Nothing listening: every request an error, no quantiles. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", free_port());
	const char *dead[] = {"--url", url, "--n", "5", "--concurrency", "2", NULL};
	ck_assert_int_eq(run_finra(dead, &j), 1);
	ck_assert(num(j, "errors") == 5);
	ck_assert(num(j, "ok") == 0);
	ck_assert(num(j, "max_ms") == 0);
	cJSON_Delete(j);
}
END_TEST

START_TEST(finra_client_args)
{
	cJSON *j;
	const char *none[] = {"--n", "5", "--concurrency", "1", NULL};
	ck_assert_int_eq(run_finra(none, &j), 2);
	const char *zero[] = {"--url", "http://127.0.0.1:1", "--n", "0", "--concurrency", "1",
			      NULL};
	ck_assert_int_eq(run_finra(zero, &j), 2);
	const char *badurl[] = {"--url", "https://x", "--n", "5", "--concurrency", "1", NULL};
	ck_assert_int_eq(run_finra(badurl, &j), 2);
	const char *unknown[] = {"--url", "http://127.0.0.1:1", "--n", "5", "--concurrency",
				 "1",	  "--frobnicate",	"1",   NULL};
	ck_assert_int_eq(run_finra(unknown, &j), 2);
	char p[128];
	snprintf(p, sizeof(p), "%s/finra.err", dir);
	char *err = slurp(p);
	ck_assert_msg(strstr(err, "usage:"), "%s", err);
	free(err);
}
END_TEST

Suite *central_suite(void)
{
	Suite *s = suite_create("central");
	TCase *tc = tcase_create("orchestrator");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, chain);
	tcase_add_test(tc, fanout_join);
	tcase_add_test(tc, fanout_no_workers);
	tcase_add_test(tc, join_order);
	tcase_add_test(tc, two_sinks);
	tcase_add_test(tc, function_500);
	tcase_add_test(tc, dead_instance);
	tcase_add_test(tc, instance_dies);
	tcase_add_test(tc, round_robin);
	tcase_add_test(tc, slow_function);
	tcase_add_test(tc, bad_env);
	suite_add_tcase(s, tc);
	TCase *fc = tcase_create("finra-client");
	tcase_add_checked_fixture(fc, setup, teardown);
	tcase_set_timeout(fc, 90);
	tcase_add_test(fc, finra_client);
	tcase_add_test(fc, finra_client_errors);
	tcase_add_test(fc, finra_client_args);
	suite_add_tcase(s, fc);
	return s;
}
