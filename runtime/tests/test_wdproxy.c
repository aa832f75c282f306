/* test_wdproxy.c - mode=http: the real iroute-watchdog in front of a real
 * upstream (iroute-bench-upstream, started by the watchdog as fprocess),
 * driven by the real curl: bodies both ways (Content-Length, chunked,
 * buffer_http), headers, status codes, HEAD, big bodies, server-sent
 * events and NDJSON arriving as they are written, exec_timeout and
 * X-Timeout, an upstream that is down, the child exiting, max_inflight,
 * the SIGTERM drain, start-up errors.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"
#include "twd.h"

static int up_port;

static void upstream_cmd(char *buf, size_t len, int p)
{
	const char *bindir = getenv("IROUTE_BIN_DIR");
	char dir[512];
	ck_assert_ptr_nonnull(realpath(bindir && *bindir ? bindir : "build/bin", dir));
	snprintf(buf, len, "%s/iroute-bench-upstream --port %d", dir, p);
	char bin[600];
	snprintf(bin, sizeof(bin), "%s/iroute-bench-upstream", dir);
	ck_assert_msg(access(bin, X_OK) == 0, "%s not built", bin);
}

static bool wait_healthy(unsigned ms)
{
	uint64_t t0 = now_ms();
	while (now_ms() - t0 < ms) {
		if (curl(twd_port, "hh", "", "/_/health") == 200)
			return true;
		sleep_ms(20);
	}
	return false;
}

/* The watchdog in http mode in front of a fresh upstream; @extra env. */
static void start_proxy(const char *const *extra)
{
	up_port = free_port();
	char fp[700];
	upstream_cmd(fp, sizeof(fp), up_port);
	static char vurl[64];
	snprintf(vurl, sizeof(vurl), "upstream_url=http://127.0.0.1:%d", up_port);
	const char *env[16] = {vurl};
	size_t n = 1;
	for (size_t i = 0; extra && extra[i] && n < 15; i++)
		env[n++] = extra[i];
	env[n] = NULL;
	start_mode("http", fp, env);
	ck_assert_msg(wait_healthy(5000), "not healthy in 5 s");
}

static char *body_of(const char *out, size_t *len)
{
	return read_file(out, len);
}

START_TEST(proxy_bodies_headers_status)
{
	start_proxy(NULL);
	ck_assert_int_eq(curl(twd_port, "a", "", "/"), 200);
	char *b = body_of("a", NULL);
	ck_assert_str_eq(b, "OK\n");
	free(b);
	ck_assert(header_has("a", "X-Duration-Seconds: "));
	ck_assert(header_has("a", "Content-Type: text/plain"));

	/* 1 MiB each way with Content-Length, then chunked. */
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "head -c 1048576 /dev/urandom > %s/in", twd_dir);
	ck_assert_int_eq(system(cmd), 0);
	char args[256];
	snprintf(args, sizeof(args), "--data-binary @%s/in", twd_dir);
	ck_assert_int_eq(curl(twd_port, "e1", args, "/echo"), 200);
	snprintf(args, sizeof(args), "-H 'Transfer-Encoding: chunked' --data-binary @%s/in",
		 twd_dir);
	ck_assert_int_eq(curl(twd_port, "e2", args, "/echo"), 200);
	size_t lin, l1, l2;
	char *in = body_of("in", &lin), *e1 = body_of("e1", &l1), *e2 = body_of("e2", &l2);
	ck_assert_uint_eq(l1, lin);
	ck_assert_uint_eq(l2, lin);
	ck_assert(memcmp(in, e1, lin) == 0);
	ck_assert(memcmp(in, e2, lin) == 0);
	free(in);
	free(e1);
	free(e2);

	/* Request line and headers as the upstream saw them. */
	ck_assert_int_eq(curl(twd_port, "h", "-H 'X-Call-Id: abc' -H 'Connection: keep-alive'",
			      "/headers?x=1&y=%20"),
			 200);
	b = body_of("h", NULL);
	ck_assert_msg(strncmp(b, "GET /headers?x=1&y=%20\n", 23) == 0, "%s", b);
	ck_assert_msg(strcasestr(b, "\nX-Call-Id: abc\n"), "%s", b);
	ck_assert_msg(strcasestr(b, "\nHost: 127.0.0.1:"), "%s", b);
	ck_assert_msg(!strcasestr(b, "\nConnection:"), "hop-by-hop header forwarded: %s", b);
	free(b);
	ck_assert(header_has("h", "X-Call-Id: abc"));

	ck_assert_int_eq(curl(twd_port, "s", "", "/status/418"), 418);
	b = body_of("s", NULL);
	ck_assert_str_eq(b, "status 418\n");
	free(b);
	ck_assert_int_eq(curl(twd_port, "hd", "-I", "/"), 200);
	ck_assert(header_has("hd", "Content-Length: 3"));
	ck_assert_int_eq(curl(twd_port, "big", "", "/big?bytes=5000000"), 200);
	size_t lb;
	b = body_of("big", &lb);
	ck_assert_uint_eq(lb, 5000000);
	ck_assert(b[0] == 'a' && b[26] == 'a' && b[4999999] == 'a' + 4999999 % 26);
	free(b);

	/* Two requests on one client connection (curl reuses it): the
	 * upstream connection is kept and reused too. */
	snprintf(cmd, sizeof(cmd),
		 "curl -sv http://127.0.0.1:%d/ http://127.0.0.1:%d/headers 2>&1 | "
		 "grep -c 'Re-using existing connection\\|Reusing existing connection' ",
		 twd_port, twd_port);
	FILE *p = popen(cmd, "r");
	char line[32] = "";
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), p));
	pclose(p);
	ck_assert_int_eq(atoi(line), 1);

	/* The child's own stderr is in our log. */
	char *log = read_file("stderr", NULL);
	ck_assert_msg(strstr(log, "stderr: listening on"), "%s", log);
	free(log);
}
END_TEST

/* Each event reaches the client when the upstream writes it. */
static void first_line_early(const char *path, const char *want)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "curl -sN 'http://127.0.0.1:%d%s'", twd_port, path);
	uint64_t t0 = now_ms();
	FILE *f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	char line[128];
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
	uint64_t first = now_ms() - t0;
	ck_assert_str_eq(line, want);
	int lines = 1;
	while (fgets(line, sizeof(line), f))
		lines++;
	uint64_t all = now_ms() - t0;
	pclose(f);
	ck_assert_msg(first < 500 && all >= 1000, "first line after %llu ms, all after %llu ms",
		      (unsigned long long)first, (unsigned long long)all);
	ck_assert_int_ge(lines, 3);
}

START_TEST(proxy_streams_sse_and_ndjson)
{
	start_proxy(NULL);
	first_line_early("/sse?n=3&ms=600", "data: 0\n");
	first_line_early("/ndjson?n=3&ms=600", "{\"i\":0}\n");
	ck_assert_int_eq(curl(twd_port, "s", "", "/sse?n=2&ms=10"), 200);
	ck_assert(header_has("s", "Content-Type: text/event-stream"));
}
END_TEST

START_TEST(proxy_timeouts_504)
{
	const char *extra[] = {"exec_timeout=1", NULL};
	start_proxy(extra);
	uint64_t t0 = now_ms();
	ck_assert_int_eq(curl(twd_port, "t", "", "/sleep?ms=3000"), 504);
	uint64_t took = now_ms() - t0;
	ck_assert_msg(took >= 900 && took < 2000, "504 after %llu ms", (unsigned long long)took);
	ck_assert(header_has("t", "X-Duration-Seconds: "));
	t0 = now_ms();
	ck_assert_int_eq(curl(twd_port, "x", "-H 'X-Timeout: 300ms'", "/sleep?ms=800"), 504);
	ck_assert_uint_lt(now_ms() - t0, 700);
	ck_assert_int_eq(curl(twd_port, "ok", "", "/sleep?ms=100"), 200);
}
END_TEST

START_TEST(proxy_upstream_down)
{
	/* fprocess runs but never listens on upstream_url: not healthy, and
	 * requests get 500 naming the upstream. */
	int dead = free_port();
	static char vurl[64];
	snprintf(vurl, sizeof(vurl), "upstream_url=http://127.0.0.1:%d", dead);
	const char *extra[] = {vurl, NULL};
	start_mode("http", "sleep 30", extra);
	sleep_ms(300);
	ck_assert_int_eq(curl(twd_port, "h", "", "/_/health"), 503);
	ck_assert_int_eq(curl(twd_port, "r", "", "/"), 500);
	char *b = body_of("r", NULL);
	ck_assert_msg(strstr(b, "upstream http://127.0.0.1:") && strstr(b, "refused"), "%s", b);
	free(b);
}
END_TEST

START_TEST(proxy_child_exit_exits)
{
	start_proxy(NULL);
	ck_assert_int_eq(curl(twd_port, "x", "", "/exit"), 200);
	int st = wait_exit(5000);
	ck_assert_int_ne(st, -1);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 1);
	char *log = read_file("stderr", NULL);
	ck_assert_msg(strstr(log, "fprocess exited (exit status 3)"), "%s", log);
	free(log);
}
END_TEST

START_TEST(proxy_max_inflight_and_drain)
{
	const char *extra[] = {"max_inflight=1", "healthcheck_interval=200ms", NULL};
	start_proxy(extra);
	FILE *slow = curl_start(twd_port, "s", "", "/sleep?ms=1500");
	sleep_ms(300);
	ck_assert_int_eq(curl(twd_port, "b", "", "/"), 429);
	ck_assert(header_has("b", "X-OpenFaaS-Internal: faas-middleware"));
	uint64_t t0 = now_ms();
	kill(twd_pid, SIGTERM);
	ck_assert_int_eq(curl_end(slow), 200);
	int st = wait_exit(10000);
	ck_assert_int_ne(st, -1);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	ck_assert_uint_lt(now_ms() - t0, 5000);
	/* The upstream got SIGTERM after the drain and is gone. */
	sleep_ms(100);
	ck_assert(!port_open(up_port));
}
END_TEST

START_TEST(proxy_buffer_http_sends_length)
{
	const char *extra[] = {"buffer_http=true", NULL};
	start_proxy(extra);
	char cmd[512];
	snprintf(cmd, sizeof(cmd),
		 "printf hello | curl -s -o %s/h -w '%%{http_code}' -H 'Transfer-Encoding: "
		 "chunked' --data-binary @- http://127.0.0.1:%d/headers",
		 twd_dir, twd_port);
	FILE *f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(curl_end(f), 200);
	char *b = body_of("h", NULL);
	ck_assert_msg(strcasestr(b, "\nContent-Length: 5\n") && !strcasestr(b, "Transfer-Encoding"),
		      "%s", b);
	free(b);
}
END_TEST

START_TEST(proxy_start_errors)
{
	const char *env[] = {"mode=http", "fprocess=cat", "upstream_url=https://x", NULL};
	spawn_wd(env, false);
	int st = wait_exit(5000);
	ck_assert(st != -1 && WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 2);
	char *log = read_file("stderr", NULL);
	ck_assert_msg(strstr(log, "upstream_url"), "%s", log);
	free(log);

	const char *env2[] = {"mode=http", "fprocess=/nonexistent/fn",
			      "upstream_url=http://127.0.0.1:1", NULL};
	spawn_wd(env2, false);
	st = wait_exit(5000);
	ck_assert(st != -1 && WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 1);
	log = read_file("stderr", NULL);
	ck_assert_msg(strstr(log, "/nonexistent/fn") && strstr(log, "No such file"), "%s", log);
	free(log);
}
END_TEST

Suite *wdproxy_suite(void)
{
	Suite *s = suite_create("wdproxy");
	TCase *tc = tcase_create("http");
	tcase_add_checked_fixture(tc, twd_setup, twd_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, proxy_bodies_headers_status);
	tcase_add_test(tc, proxy_streams_sse_and_ndjson);
	tcase_add_test(tc, proxy_timeouts_504);
	tcase_add_test(tc, proxy_upstream_down);
	tcase_add_test(tc, proxy_child_exit_exits);
	tcase_add_test(tc, proxy_max_inflight_and_drain);
	tcase_add_test(tc, proxy_buffer_http_sends_length);
	tcase_add_test(tc, proxy_start_errors);
	suite_add_tcase(s, tc);
	return s;
}
