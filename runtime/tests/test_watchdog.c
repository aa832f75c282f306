/* test_watchdog.c - the real iroute-watchdog binary driven by the real curl:
 * configuration errors, health and readiness, the serializing mode (body,
 * CGI environment, failures, exec_timeout, X-Timeout), the streaming mode
 * (echo, early first byte, truncation on failure, CGI environment,
 * limiter), the static mode (files, redirects, HEAD, no escape from
 * static_path, limiter), the concurrency limiter, metrics, and the SIGTERM
 * drain.
 *
 * Each test starts its own watchdog on ports the kernel just handed out
 * (bound to port 0, read back, closed), with its lock file and scripts in
 * a fresh temporary directory, and kills it in teardown if still alive.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests.h"

#include "twd.h"

/* ---- tests ---- */

START_TEST(config_error_exits_2)
{
	const char *env[] = {"mode=serializing", "fprocess=cat", "exec_timeout=10x", NULL};
	spawn_wd(env, false);
	int st = wait_exit(5000);
	ck_assert_int_ne(st, -1);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 2);
	char *err = read_file("stderr", NULL);
	ck_assert_msg(strstr(err, "iroute-watchdog: ") && strstr(err, "exec_timeout"), "%s", err);
	free(err);
}
END_TEST

START_TEST(health_and_ready)
{
	const char *extra[] = {"suppress_lock=true", NULL};
	start("cat", extra);
	/* No lock file: neither healthy nor ready (of-watchdog checks the
	 * file for both, suppress_lock or not). */
	ck_assert_int_eq(curl(twd_port, "h1", "", "/_/health"), 503);
	ck_assert_int_eq(curl(twd_port, "r1", "", "/_/ready"), 503);
	kill(twd_pid, SIGKILL);
	waitpid(twd_pid, NULL, 0);
	twd_pid = 0;

	start("cat", NULL);
	ck_assert_int_eq(curl(twd_port, "h2", "", "/_/health"), 200);
	size_t len;
	char *body = read_file("h2", &len);
	ck_assert_str_eq(body, "OK");
	free(body);
	/* GET only, as of-watchdog: HEAD is 405 too. */
	ck_assert_int_eq(curl(twd_port, "h3", "-I", "/_/health"), 405);
	ck_assert_int_eq(curl(twd_port, "h4", "-X POST", "/_/health"), 405);
	ck_assert_int_eq(curl(twd_port, "r2", "", "/_/ready"), 200);
	body = read_file("r2", &len);
	ck_assert_uint_eq(len, 0);
	free(body);
	ck_assert_int_eq(curl(twd_port, "r3", "-X POST", "/_/ready"), 405);
	ck_assert_int_eq(curl(twd_port, "n", "", "/_/nosuch"), 404);
}
END_TEST

START_TEST(ready_path_runs_function)
{
	write_script("fn", "[ \"$Http_Method $Http_Path\" = \"GET /ready-check\" ] || exit 1\n"
			   "[ -f \"$0.notready\" ] && exit 1\necho ready");
	char fp[128], flag[160];
	path_in(fp, sizeof(fp), "fn");
	snprintf(flag, sizeof(flag), "%s.notready", fp);
	const char *extra[] = {"ready_path=/ready-check", NULL};
	start(fp, extra);
	ck_assert_int_eq(curl(twd_port, "r1", "", "/_/ready"), 200);
	char *body = read_file("r1", NULL);
	ck_assert_str_eq(body, "ready\n");
	free(body);
	FILE *f = fopen(flag, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(curl(twd_port, "r2", "", "/_/ready"), 500);
	/* Not an invocation: nothing in the metrics. */
	ck_assert_int_eq(curl(twd_mport, "m", "", "/metrics"), 200);
	body = read_file("m", NULL);
	ck_assert_msg(!strstr(body, "http_requests_total"), "%s", body);
	free(body);
}
END_TEST

/* POST 1 MiB of patterned bytes to /echo with @call_id (response saved as
 * "e1") and check that exactly those bytes come back. */
static void echo_1mib(const char *call_id)
{
	size_t n = 1 << 20, len;
	char *data = malloc(n);
	ck_assert_ptr_nonnull(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (char)(i * 7 + i / 251);
	char p[128];
	path_in(p, sizeof(p), "in");
	FILE *f = fopen(p, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, n, f), n);
	fclose(f);
	char args[200];
	snprintf(args, sizeof(args), "--data-binary '@%s' -H 'X-Call-Id: %s'", p, call_id);
	ck_assert_int_eq(curl(twd_port, "e1", args, "/echo"), 200);
	char *body = read_file("e1", &len);
	ck_assert_uint_eq(len, n);
	ck_assert(memcmp(body, data, n) == 0);
	free(body);
	free(data);
}

START_TEST(echo_body)
{
	start("cat", NULL);
	/* Empty body. */
	ck_assert_int_eq(curl(twd_port, "e0", "-X POST", "/"), 200);
	size_t len;
	char *body = read_file("e0", &len);
	ck_assert_uint_eq(len, 0);
	free(body);
	ck_assert(header_has("e0", "X-Duration-Seconds: 0."));
	ck_assert(header_has("e0", "Content-Type: application/octet-stream"));

	/* 1 MiB of patterned bytes. */
	echo_1mib("call-42");
	ck_assert(header_has("e1", "X-Call-Id: call-42"));
	ck_assert(header_has("e1", "X-Duration-Seconds:"));
}
END_TEST

START_TEST(cgi_env)
{
	start("env", NULL);
	ck_assert_int_eq(curl(twd_port, "env", "-d x -H 'X-Call-Id: c1' -H 'x-custom-thing: v'",
			      "/some/path?a=1&b=2"),
			 200);
	char *body = read_file("env", NULL);
	ck_assert_msg(strstr(body, "Http_Method=POST\n"), "%s", body);
	ck_assert_msg(strstr(body, "Http_Path=/some/path\n"), "%s", body);
	ck_assert_msg(strstr(body, "Http_Query=a=1&b=2\n"), "%s", body);
	ck_assert_msg(strstr(body, "Http_X_Call_Id=c1\n"), "%s", body);
	ck_assert_msg(strstr(body, "Http_X_Custom_Thing=v\n"), "%s", body);
	ck_assert_msg(strstr(body, "Http_Content_Type=application/x-www-form-urlencoded\n"), "%s",
		      body);
	free(body);
}
END_TEST

START_TEST(failing_fprocess_500)
{
	write_script("fail", "echo partial; exit 3");
	char fp[128];
	path_in(fp, sizeof(fp), "fail");
	start(fp, NULL);
	ck_assert_int_eq(curl(twd_port, "f", "-d x", "/"), 500);
	char *body = read_file("f", NULL);
	ck_assert_msg(strstr(body, "exit status 3"), "%s", body);
	free(body);
	ck_assert(header_has("f", "X-Duration-Seconds:"));
}
END_TEST

START_TEST(exec_timeout_504)
{
	write_script("slow", "sleep 5");
	char fp[128];
	path_in(fp, sizeof(fp), "slow");
	const char *extra[] = {"exec_timeout=1", NULL};
	start(fp, extra);
	uint64_t t0 = now_ms();
	ck_assert_int_eq(curl(twd_port, "t", "-d x", "/"), 504);
	uint64_t took = now_ms() - t0;
	ck_assert_msg(took >= 900 && took < 2500, "took %llu ms", (unsigned long long)took);
}
END_TEST

START_TEST(x_timeout_shortens)
{
	write_script("slow", "sleep 5");
	char fp[128];
	path_in(fp, sizeof(fp), "slow");
	const char *extra[] = {"exec_timeout=20", NULL};
	start(fp, extra);
	uint64_t t0 = now_ms();
	ck_assert_int_eq(curl(twd_port, "t", "-d x -H 'X-Timeout: 500ms'", "/"), 504);
	uint64_t took = now_ms() - t0;
	ck_assert_msg(took >= 400 && took < 2000, "took %llu ms", (unsigned long long)took);
}
END_TEST

START_TEST(max_inflight_429)
{
	write_script("slow", "sleep 2; echo done");
	char fp[128];
	path_in(fp, sizeof(fp), "slow");
	const char *extra[] = {"max_inflight=1", NULL};
	start(fp, extra);
	FILE *c[4];
	char out[16];
	for (int i = 0; i < 4; i++) {
		snprintf(out, sizeof(out), "p%d", i);
		c[i] = curl_start(twd_port, out, "-d x", "/");
	}
	/* Ready says 429 while one request runs (polled: a loaded machine,
	 * e.g. the sanitizer run, may take a while to start curl). */
	int ready = 0;
	for (uint64_t t0 = now_ms(); now_ms() - t0 < 1500 && ready != 429; sleep_ms(20))
		ready = curl(twd_port, "ready", "", "/_/ready");
	ck_assert_int_eq(ready, 429);
	int ok = 0, limited = 0;
	for (int i = 0; i < 4; i++) {
		int code = curl_end(c[i]);
		snprintf(out, sizeof(out), "p%d", i);
		if (code == 200)
			ok++;
		else if (code == 429) {
			limited++;
			ck_assert(header_has(out, "X-OpenFaaS-Internal: faas-middleware"));
			char *b = read_file(out, NULL);
			ck_assert_str_eq(
			    b, "Concurrent request limit exceeded. Max concurrent requests: 1\n");
			free(b);
		} else
			ck_abort_msg("unexpected status %d", code);
	}
	ck_assert_int_ge(ok, 1);
	ck_assert_int_ge(limited, 1);
	ck_assert_int_eq(curl(twd_port, "ready2", "", "/_/ready"), 200);
}
END_TEST

START_TEST(metrics)
{
	start("cat", NULL);
	ck_assert_int_eq(curl(twd_port, "a", "-d x", "/"), 200);
	ck_assert_int_eq(curl(twd_port, "a2", "-d x", "/"), 200);
	ck_assert_int_eq(curl(twd_port, "h", "", "/_/health"), 200);
	ck_assert_int_eq(curl(twd_mport, "m", "", "/metrics"), 200);
	char *body = read_file("m", NULL);
	ck_assert_msg(strstr(body, "http_requests_total{code=\"200\",method=\"post\"} 2\n"), "%s",
		      body);
	ck_assert_msg(strstr(body, "http_requests_in_flight 0\n"), "%s", body);
	ck_assert_msg(strstr(body, "http_request_duration_seconds_count{code=\"200\",method="
				   "\"post\"} 2\n"),
		      "%s", body);
	/* /_/ paths are not recorded. */
	ck_assert_msg(!strstr(body, "method=\"get\""), "%s", body);
	free(body);
	ck_assert(header_has("m", "Content-Type: text/plain; version=0.0.4; charset=utf-8"));
	ck_assert_int_eq(curl(twd_mport, "m2", "", "/other"), 404);
}
END_TEST

START_TEST(sigterm_drain)
{
	write_script("slow", "sleep 1; echo finished");
	char fp[128];
	path_in(fp, sizeof(fp), "slow");
	const char *extra[] = {"healthcheck_interval=1", "write_timeout=5", NULL};
	start(fp, extra);
	ck_assert_int_eq(curl(twd_port, "h0", "", "/_/health"), 200);
	FILE *c = curl_start(twd_port, "slow", "-d x", "/");
	sleep_ms(200);
	uint64_t t0 = now_ms();
	ck_assert_int_eq(kill(twd_pid, SIGTERM), 0);
	/* The lock goes at once: health turns 503 while serving goes on. */
	int code = 0;
	while (now_ms() - t0 < 500 && (code = curl(twd_port, "h1", "", "/_/health")) != 503)
		sleep_ms(20);
	ck_assert_int_eq(code, 503);
	ck_assert_int_eq(curl(twd_port, "r1", "", "/_/ready"), 503);
	ck_assert_int_eq(curl_end(c), 200);
	char *body = read_file("slow", NULL);
	ck_assert_str_eq(body, "finished\n");
	free(body);
	int st = wait_exit(1000 + 5000 + 2000);
	ck_assert_msg(st != -1, "watchdog still running");
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	uint64_t took = now_ms() - t0;
	ck_assert_msg(took >= 900, "exited after %llu ms, before healthcheck_interval",
		      (unsigned long long)took);
}
END_TEST

START_TEST(sigterm_drain_gives_up_after_write_timeout)
{
	write_script("slow", "sleep 4");
	char fp[128];
	path_in(fp, sizeof(fp), "slow");
	const char *extra[] = {"healthcheck_interval=0", "write_timeout=1", NULL};
	start(fp, extra);
	FILE *c = curl_start(twd_port, "slow", "-m 3 -d x", "/");
	sleep_ms(200);
	uint64_t t0 = now_ms();
	ck_assert_int_eq(kill(twd_pid, SIGTERM), 0);
	int st = wait_exit(4000);
	ck_assert_msg(st != -1, "watchdog still running");
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	uint64_t took = now_ms() - t0;
	ck_assert_msg(took >= 900 && took < 3000, "exited after %llu ms", (unsigned long long)took);
	ck_assert_int_ne(curl_end(c), 200);
}
END_TEST

/* ---- streaming mode ---- */

/* Runs curl with --no-buffer and -w on @path; returns curl's exit code and
 * fills @code, @start_s (time to first body byte) and @total_s. */
static int curl_timed(const char *out, const char *args, const char *path, int *code,
		      double *start_s, double *total_s)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "curl -s --no-buffer -m 20 -o '%s/%s' -D '%s/%s.h' "
		 "-w '%%{http_code} %%{time_starttransfer} %%{time_total}' %s "
		 "'http://127.0.0.1:%d%s'",
		 twd_dir, out, twd_dir, out, args, twd_port, path);
	FILE *f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	char buf[128] = "";
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	int st = pclose(f);
	*code = 0;
	*start_s = *total_s = -1;
	ck_assert_int_eq(sscanf(buf, "%d %lf %lf", code, start_s, total_s), 3);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(streaming_echo)
{
	start_mode("streaming", "cat", NULL);
	ck_assert_int_eq(curl(twd_port, "e0", "-X POST", "/"), 200);
	size_t len;
	char *body = read_file("e0", &len);
	ck_assert_uint_eq(len, 0);
	free(body);
	ck_assert(header_has("e0", "Content-Type: application/octet-stream"));

	echo_1mib("call-7");
	ck_assert(header_has("e1", "X-Call-Id: call-7"));
	ck_assert(header_has("e1", "Transfer-Encoding: chunked"));
	/* As of-watchdog's streaming mode: the headers leave before the
	 * duration is known. */
	ck_assert(!header_has("e1", "X-Duration-Seconds"));

	ck_assert_int_eq(curl(twd_mport, "m", "", "/metrics"), 200);
	body = read_file("m", NULL);
	ck_assert_msg(strstr(body, "http_requests_total{code=\"200\",method=\"post\"} 2\n"), "%s",
		      body);
	ck_assert_msg(strstr(body, "http_requests_in_flight 0\n"), "%s", body);
	free(body);
}
END_TEST

START_TEST(streaming_first_line_early)
{
	write_script("lines", "echo first; sleep 1; echo second");
	char fp[128];
	path_in(fp, sizeof(fp), "lines");
	start_mode("streaming", fp, NULL);
	int code;
	double t_start, t_total;
	ck_assert_int_eq(curl_timed("l", "-d x", "/", &code, &t_start, &t_total), 0);
	ck_assert_int_eq(code, 200);
	ck_assert_msg(t_total >= 0.9 && t_start < t_total - 0.5, "first byte %.3f s, total %.3f s",
		      t_start, t_total);
	char *body = read_file("l", NULL);
	ck_assert_str_eq(body, "first\nsecond\n");
	free(body);
}
END_TEST

START_TEST(streaming_exec_timeout_truncates)
{
	write_script("slow", "echo partial; sleep 5; echo never");
	char fp[128];
	path_in(fp, sizeof(fp), "slow");
	const char *extra[] = {"exec_timeout=1", NULL};
	start_mode("streaming", fp, extra);
	int code;
	double t_start, t_total;
	uint64_t t0 = now_ms();
	int rc = curl_timed("t", "-d x", "/", &code, &t_start, &t_total);
	uint64_t took = now_ms() - t0;
	/* 200 went out with the first chunk; the body then ends abnormally. */
	ck_assert_int_eq(code, 200);
	ck_assert_msg(rc != 0, "curl exit %d", rc);
	ck_assert_msg(took >= 900 && took < 2000, "took %llu ms", (unsigned long long)took);
	char *body = read_file("t", NULL);
	ck_assert_str_eq(body, "partial\n");
	free(body);

	/* Killed before any output: the buffered table's 504. */
	write_script("silent", "sleep 5");
	kill(twd_pid, SIGKILL);
	waitpid(twd_pid, NULL, 0);
	path_in(fp, sizeof(fp), "silent");
	start_mode("streaming", fp, extra);
	ck_assert_int_eq(curl(twd_port, "t2", "-d x", "/"), 504);
}
END_TEST

START_TEST(streaming_failure_after_output_truncates)
{
	write_script("fail", "echo partial; exit 3");
	char fp[128];
	path_in(fp, sizeof(fp), "fail");
	start_mode("streaming", fp, NULL);
	int code;
	double t_start, t_total;
	int rc = curl_timed("f", "-d x", "/", &code, &t_start, &t_total);
	ck_assert_int_eq(code, 200);
	ck_assert_msg(rc != 0, "curl exit %d", rc);
	/* Not startable: nothing went out yet, so 500 with the error. */
	kill(twd_pid, SIGKILL);
	waitpid(twd_pid, NULL, 0);
	path_in(fp, sizeof(fp), "nosuch");
	start_mode("streaming", fp, NULL);
	ck_assert_int_eq(curl(twd_port, "n", "-d x", "/"), 500);
	char *body = read_file("n", NULL);
	ck_assert_msg(strstr(body, "No such file"), "%s", body);
	free(body);
}
END_TEST

START_TEST(streaming_cgi_env)
{
	start_mode("streaming", "env", NULL);
	ck_assert_int_eq(curl(twd_port, "env", "-X PUT -d x", "/p?q=1"), 200);
	char *body = read_file("env", NULL);
	ck_assert_msg(strstr(body, "Http_Method=PUT\n"), "%s", body);
	ck_assert_msg(strstr(body, "Http_Path=/p\n"), "%s", body);
	ck_assert_msg(strstr(body, "Http_Query=q=1\n"), "%s", body);
	free(body);
}
END_TEST

START_TEST(streaming_max_inflight_429)
{
	write_script("slow", "sleep 1; echo done");
	char fp[128];
	path_in(fp, sizeof(fp), "slow");
	const char *extra[] = {"max_inflight=1", NULL};
	start_mode("streaming", fp, extra);
	FILE *c[3];
	char out[16];
	for (int i = 0; i < 3; i++) {
		snprintf(out, sizeof(out), "p%d", i);
		c[i] = curl_start(twd_port, out, "-d x", "/");
	}
	int ok = 0, limited = 0;
	for (int i = 0; i < 3; i++) {
		int code = curl_end(c[i]);
		snprintf(out, sizeof(out), "p%d", i);
		if (code == 200) {
			ok++;
			char *b = read_file(out, NULL);
			ck_assert_str_eq(b, "done\n");
			free(b);
		} else if (code == 429) {
			limited++;
			ck_assert(header_has(out, "X-OpenFaaS-Internal: faas-middleware"));
		} else
			ck_abort_msg("unexpected status %d", code);
	}
	ck_assert_int_ge(ok, 1);
	ck_assert_int_ge(limited, 1);
	ck_assert_int_eq(curl(twd_port, "ready", "", "/_/ready"), 200);
}
END_TEST

/* ---- static mode ---- */

/* Writes @len bytes of @data to twd_dir/@name (parents must exist). */
static void write_bytes(const char *name, const void *data, size_t len)
{
	char p[160];
	path_in(p, sizeof(p), name);
	FILE *f = fopen(p, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	fclose(f);
}

/* twd_dir/www with index.html, css/site.css, img/blob.bin (1 MiB, every
 * byte value), a symlink to /etc/passwd and a subdirectory without an
 * index; then the watchdog in static mode on it, without fprocess. */
static void start_static(const char *const *extra)
{
	char p[160];
	path_in(p, sizeof(p), "www");
	ck_assert_int_eq(mkdir(p, 0755), 0);
	path_in(p, sizeof(p), "www/css");
	ck_assert_int_eq(mkdir(p, 0755), 0);
	path_in(p, sizeof(p), "www/img");
	ck_assert_int_eq(mkdir(p, 0755), 0);
	path_in(p, sizeof(p), "www/empty");
	ck_assert_int_eq(mkdir(p, 0755), 0);
	const char *index = "<html>hello static</html>\n";
	write_bytes("www/index.html", index, strlen(index));
	const char *css = "body { color: red; }\n";
	write_bytes("www/css/site.css", css, strlen(css));
	size_t n = 1024 * 1024;
	unsigned char *blob = malloc(n);
	ck_assert_ptr_nonnull(blob);
	for (size_t i = 0; i < n; i++)
		blob[i] = (unsigned char)((i * 7 + i / 256) & 0xff);
	write_bytes("www/img/blob.bin", blob, n);
	free(blob);
	path_in(p, sizeof(p), "www/passwd");
	ck_assert_int_eq(symlink("/etc/passwd", p), 0);
	path_in(p, sizeof(p), "www/etc");
	ck_assert_int_eq(symlink("/etc", p), 0);

	static char vport[32], vpath[160];
	snprintf(vport, sizeof(vport), "port=%d", twd_port);
	snprintf(vpath, sizeof(vpath), "static_path=%s/www", twd_dir);
	const char *env[16] = {"mode=static", vport, vpath};
	size_t k = 3;
	for (size_t i = 0; extra && extra[i] && k < 15; i++)
		env[k++] = extra[i];
	env[k] = NULL;
	spawn_wd(env, true);
}

/* Neither a failure code nor the passwd file's content. */
static void assert_not_passwd(const char *out, const char *args, const char *path)
{
	int code = curl(twd_port, out, args, path);
	ck_assert_msg(code == 404 || code == 403, "%s: %d", path, code);
	char *body = read_file(out, NULL);
	ck_assert_msg(!strstr(body, "root:"), "%s served passwd", path);
	free(body);
}

START_TEST(static_serves_files)
{
	start_static(NULL);
	ck_assert_int_eq(curl(twd_port, "i", "", "/"), 200);
	size_t len;
	char *body = read_file("i", &len);
	ck_assert_str_eq(body, "<html>hello static</html>\n");
	free(body);
	ck_assert(header_has("i", "Content-Type: text/html; charset=utf-8"));
	ck_assert(header_has("i", "Content-Length: 26"));
	ck_assert(header_has("i", "Last-Modified: "));
	ck_assert(header_has("i", "X-Duration-Seconds: "));

	ck_assert_int_eq(curl(twd_port, "c", "", "/css/site.css"), 200);
	body = read_file("c", &len);
	ck_assert_str_eq(body, "body { color: red; }\n");
	free(body);
	ck_assert(header_has("c", "Content-Type: text/css; charset=utf-8"));

	ck_assert_int_eq(curl(twd_port, "b", "", "/img/blob.bin"), 200);
	ck_assert(header_has("b", "Content-Type: application/octet-stream"));
	ck_assert(header_has("b", "Content-Length: 1048576"));
	size_t blen;
	char *got = read_file("b", &blen);
	char *want = read_file("www/img/blob.bin", &len);
	ck_assert_uint_eq(blen, len);
	ck_assert(memcmp(got, want, len) == 0);
	free(got);
	free(want);

	/* HEAD: the headers, no body. */
	ck_assert_int_eq(curl(twd_port, "hd", "-I", "/css/site.css"), 200);
	ck_assert(header_has("hd", "Content-Length: 21"));
	ck_assert(header_has("hd", "Content-Type: text/css"));
	body = read_file("hd", &len);
	ck_assert_msg(!strstr(body, "color"), "HEAD sent a body: %s", body);
	free(body);

	/* Go's redirects: /index.html -> ./, a directory -> twd_dir/, a file
	 * with a trailing slash -> ../file. */
	ck_assert_int_eq(curl(twd_port, "r1", "", "/index.html"), 301);
	ck_assert(header_has("r1", "Location: ./"));
	ck_assert_int_eq(curl(twd_port, "r2", "", "/css"), 301);
	ck_assert(header_has("r2", "Location: css/"));
	ck_assert_int_eq(curl(twd_port, "r3", "", "/css/site.css/"), 301);
	ck_assert(header_has("r3", "Location: ../site.css"));

	ck_assert_int_eq(curl(twd_port, "m", "", "/nosuch.html"), 404);
	ck_assert_int_eq(curl(twd_port, "m2", "", "/css/site.css/x"), 404);
	/* No directory listings: 404. */
	ck_assert_int_eq(curl(twd_port, "e", "", "/empty/"), 404);

	/* The rest of the watchdog is unchanged. */
	ck_assert_int_eq(curl(twd_port, "h", "", "/_/health"), 200);
	ck_assert_int_eq(curl(twd_port, "r", "", "/_/ready"), 200);
	char mpath[64];
	snprintf(mpath, sizeof(mpath), "/metrics");
	ck_assert_int_eq(curl(twd_mport, "met", "", mpath), 200);
	body = read_file("met", NULL);
	ck_assert_msg(strstr(body, "code=\"200\""), "%s", body);
	ck_assert_msg(strstr(body, "code=\"404\""), "%s", body);
	free(body);
}
END_TEST

START_TEST(static_never_escapes)
{
	start_static(NULL);
	/* A file next to static_path, reachable only through "..". */
	write_bytes("secret.txt", "root:secret\n", 12);
	assert_not_passwd("s1", "--path-as-is", "/../secret.txt");
	assert_not_passwd("s2", "--path-as-is", "/%2e%2e/secret.txt");
	assert_not_passwd("s3", "--path-as-is", "/css/../../secret.txt");
	assert_not_passwd("s4", "--path-as-is", "/css/.%2e/%2E./secret.txt");
	assert_not_passwd("s5", "--path-as-is", "/%2e%2e%2fsecret.txt");
	/* A ".." is 404 even where it would stay inside static_path. */
	ck_assert_int_eq(curl(twd_port, "d1", "--path-as-is", "/css/%2e%2e/index.html"), 404);
	ck_assert_int_eq(curl(twd_port, "d2", "--path-as-is", "/css/../"), 404);
	assert_not_passwd("p1", "--path-as-is", "/../etc/passwd");
	assert_not_passwd("p2", "--path-as-is", "/../../../../etc/passwd");
	assert_not_passwd("p3", "--path-as-is", "/%2e%2e/%2e%2e/etc/passwd");
	assert_not_passwd("p4", "--path-as-is", "/css/%2e%2e/%2e%2e/%2e%2e/etc/passwd");
	assert_not_passwd("p5", "--path-as-is", "/..%2f..%2f..%2fetc%2fpasswd");
	assert_not_passwd("p6", "--path-as-is", "/%2E%2E/%2E%2E/etc/passwd");
	/* Symlinks inside static_path are not followed, to a file or a
	 * directory. */
	assert_not_passwd("p7", "--path-as-is", "/passwd");
	assert_not_passwd("p8", "--path-as-is", "/etc/passwd");
	assert_not_passwd("p9", "--path-as-is -I", "/passwd");
	/* Still serving. */
	ck_assert_int_eq(curl(twd_port, "ok", "", "/css/site.css"), 200);
}
END_TEST

START_TEST(static_max_inflight_and_missing_dir)
{
	/* A slow download of a 32 MiB file (more than loopback's socket
	 * buffers hold) keeps the only slot for a few seconds. */
	const char *lim[] = {"max_inflight=1", NULL};
	start_static(lim);
	char big[160];
	path_in(big, sizeof(big), "www/big.bin");
	int bfd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(bfd, 0);
	ck_assert_int_eq(ftruncate(bfd, 32 * 1024 * 1024), 0);
	close(bfd);
	FILE *slow = curl_start(twd_port, "slow", "--limit-rate 8M", "/big.bin");
	sleep_ms(500);
	ck_assert_int_eq(curl(twd_port, "l", "", "/css/site.css"), 429);
	ck_assert(header_has("l", "X-OpenFaaS-Internal: faas-middleware"));
	ck_assert_int_eq(curl(twd_port, "lr", "", "/_/ready"), 429);
	ck_assert_int_eq(curl_end(slow), 200);
	size_t slen;
	free(read_file("slow", &slen));
	ck_assert_uint_eq(slen, 32 * 1024 * 1024);
	ck_assert_int_eq(curl(twd_port, "l2", "", "/css/site.css"), 200);
	kill(twd_pid, SIGKILL);
	waitpid(twd_pid, NULL, 0);
	twd_pid = 0;
	twd_port = free_port();

	/* A static_path that does not exist: every file is 404, health is
	 * still 200. */
	static char vport[32], vpath[160];
	snprintf(vport, sizeof(vport), "port=%d", twd_port);
	snprintf(vpath, sizeof(vpath), "static_path=%s/nosuch", twd_dir);
	const char *env[] = {"mode=static", vport, vpath, NULL};
	spawn_wd(env, true);
	ck_assert_int_eq(curl(twd_port, "m", "", "/"), 404);
	ck_assert_int_eq(curl(twd_port, "h", "", "/_/health"), 200);
}
END_TEST

Suite *watchdog_suite(void)
{
	Suite *s = suite_create("watchdog");
	TCase *tc = tcase_create("binary");
	tcase_add_checked_fixture(tc, twd_setup, twd_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, config_error_exits_2);
	tcase_add_test(tc, health_and_ready);
	tcase_add_test(tc, ready_path_runs_function);
	tcase_add_test(tc, echo_body);
	tcase_add_test(tc, cgi_env);
	tcase_add_test(tc, failing_fprocess_500);
	tcase_add_test(tc, exec_timeout_504);
	tcase_add_test(tc, x_timeout_shortens);
	tcase_add_test(tc, max_inflight_429);
	tcase_add_test(tc, metrics);
	tcase_add_test(tc, sigterm_drain);
	tcase_add_test(tc, sigterm_drain_gives_up_after_write_timeout);
	tcase_add_test(tc, streaming_echo);
	tcase_add_test(tc, streaming_first_line_early);
	tcase_add_test(tc, streaming_exec_timeout_truncates);
	tcase_add_test(tc, streaming_failure_after_output_truncates);
	tcase_add_test(tc, streaming_cgi_env);
	tcase_add_test(tc, streaming_max_inflight_429);
	tcase_add_test(tc, static_serves_files);
	tcase_add_test(tc, static_never_escapes);
	tcase_add_test(tc, static_max_inflight_and_missing_dir);
	suite_add_tcase(s, tc);
	return s;
}
