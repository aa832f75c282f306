/* test_exec.c - fprocess runs with real programs (/bin/cat, /bin/sh,
 * /bin/sleep): stdin/stdout, environment, stderr lines, exit status,
 * signals, exec_timeout on the whole group, exec failure, output cap,
 * streaming, and nothing left behind (fds, zombies, group members).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "iroute/exec.h"
#include "iroute/log.h"
#include "tests.h"

/* Also in tests.h once the suite is registered there. */
Suite *exec_suite(void);

#define MS(x) ((uint64_t)(x)*1000000ull)

static struct ir_exec_result res;

static void teardown(void)
{
	ir_exec_result_release(&res);
	ir_log_set_sink(NULL, NULL);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int run_sh(const char *script, struct ir_exec_req *req)
{
	char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
	req->argv = argv;
	return ir_exec_run(req, &res);
}

static unsigned char *pattern(size_t n)
{
	unsigned char *p = malloc(n ? n : 1);
	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 7 + i / 251);
	return p;
}

/* ---- captured log lines ---- */

#define MAX_LINES 64
static char lines[MAX_LINES][1100];
static int nlines;

static void log_sink(enum ir_log_level level, const char *line, void *arg)
{
	(void)level;
	(void)arg;
	if (nlines < MAX_LINES)
		snprintf(lines[nlines++], sizeof(lines[0]), "%s", line);
}

static void line_sink(const char *line, void *arg)
{
	(void)arg;
	if (nlines < MAX_LINES)
		snprintf(lines[nlines++], sizeof(lines[0]), "%s", line);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

/* ---- stdin / stdout ---- */

static void cat_roundtrip(size_t n)
{
	unsigned char *in = pattern(n);
	char *argv[] = {"/bin/cat", NULL};
	struct ir_exec_req req = {.argv = argv, .stdin_data = in, .stdin_len = n};
	ck_assert_int_eq(ir_exec_run(&req, &res), 0);
	ck_assert(res.exited);
	ck_assert_int_eq(res.exit_code, 0);
	ck_assert_uint_eq(res.out_len, n);
	ck_assert_uint_eq(res.out_total, n);
	if (n)
		ck_assert(!memcmp(res.out, in, n));
	else
		ck_assert_ptr_null(res.out);
	ck_assert_str_eq(res.error, "");
	ck_assert_int_eq(ir_exec_http_status(&res), 200);
	free(in);
}

START_TEST(t_cat_empty)
{
	cat_roundtrip(0);
}
END_TEST

START_TEST(t_cat_one)
{
	cat_roundtrip(1);
	ck_assert_int_eq(res.out[1], 0); /* NUL after the data */
}
END_TEST

/* 10 MiB each way through 64 KiB pipes: a deadlock would hang here. */
START_TEST(t_cat_big)
{
	cat_roundtrip(10u << 20);
}
END_TEST

/* The child writes 4 MiB before it reads anything. */
START_TEST(t_writes_before_reading)
{
	size_t n = 4u << 20;
	unsigned char *in = pattern(n);
	struct ir_exec_req req = {.stdin_data = in, .stdin_len = n};
	ck_assert_int_eq(run_sh("head -c 4194304 /dev/zero; cat >/dev/null; echo done", &req), 0);
	ck_assert_int_eq(res.exit_code, 0);
	ck_assert_uint_eq(res.out_len, n + 5);
	ck_assert_str_eq((char *)res.out + n, "done\n");
	free(in);
}
END_TEST

/* A child that never reads its stdin: our SIGPIPE is swallowed. */
START_TEST(t_child_ignores_stdin)
{
	signal(SIGPIPE, SIG_DFL);
	size_t n = 4u << 20;
	unsigned char *in = pattern(n);
	struct ir_exec_req req = {.stdin_data = in, .stdin_len = n};
	ck_assert_int_eq(run_sh("echo hi", &req), 0);
	ck_assert_int_eq(res.exit_code, 0);
	ck_assert_str_eq((char *)res.out, "hi\n");
	sigset_t pend;
	sigpending(&pend);
	ck_assert(!sigismember(&pend, SIGPIPE));
	free(in);
}
END_TEST

struct feeder {
	const unsigned char *p;
	size_t left;
	size_t step;
	int calls;
	int fail_at; /* call number that returns -EIO; 0 = never */
};

static ssize_t feed(void *buf, size_t len, void *arg)
{
	struct feeder *f = arg;
	if (++f->calls == f->fail_at)
		return -EIO;
	size_t n = f->step < len ? f->step : len;
	if (n > f->left)
		n = f->left;
	memcpy(buf, f->p, n);
	f->p += n;
	f->left -= n;
	f->step = f->step * 3 % 70001 + 1; /* uneven sizes */
	return (ssize_t)n;
}

START_TEST(t_stdin_callback)
{
	size_t n = 3u << 20;
	unsigned char *in = pattern(n);
	struct feeder f = {.p = in, .left = n, .step = 1};
	char *argv[] = {"/bin/cat", NULL};
	struct ir_exec_req req = {.argv = argv, .stdin_read = feed, .stdin_arg = &f};
	ck_assert_int_eq(ir_exec_run(&req, &res), 0);
	ck_assert_uint_eq(res.out_len, n);
	ck_assert(!memcmp(res.out, in, n));
	free(in);
}
END_TEST

START_TEST(t_stdin_callback_error)
{
	unsigned char in[100] = {0};
	struct feeder f = {.p = in, .left = sizeof(in), .step = 10, .fail_at = 3};
	char *argv[] = {"/bin/cat", NULL};
	struct ir_exec_req req = {.argv = argv, .stdin_read = feed, .stdin_arg = &f};
	ck_assert_int_eq(ir_exec_run(&req, &res), -EIO);
	ck_assert(res.signaled);
	ck_assert_int_eq(res.signo, SIGKILL);
	ck_assert_int_eq(ir_exec_http_status(&res), 500);
}
END_TEST

/* ---- environment ---- */

START_TEST(t_env)
{
	char *base[] = {"BASE_ONLY=b", "Http_Method=GET", "PATH=/usr/bin:/bin", NULL};
	char *env[] = {"Http_Method=POST",
		       "Http_Path=/fn/x",
		       "DUP=1",
		       "DUP=2",
		       "Http_Content_Type=text/plain",
		       NULL};
	struct ir_exec_req req = {.base_env = base, .env = env};
	ck_assert_int_eq(
	    run_sh("echo \"$Http_Method|$Http_Path|$BASE_ONLY|$DUP|$Http_Content_Type\"", &req), 0);
	ck_assert_str_eq((char *)res.out, "POST|/fn/x|b|2|text/plain\n");
	ir_exec_result_release(&res);

	/* Each key once. */
	ck_assert_int_eq(run_sh("env | grep -c -e '^Http_Method=' -e '^DUP='", &req), 0);
	ck_assert_str_eq((char *)res.out, "2\n");
}
END_TEST

START_TEST(t_env_inherited)
{
	setenv("IR_EXEC_TEST_INHERIT", "yes", 1);
	char *env[] = {"Http_Method=PUT", NULL};
	struct ir_exec_req req = {.env = env};
	ck_assert_int_eq(run_sh("echo $IR_EXEC_TEST_INHERIT $Http_Method", &req), 0);
	ck_assert_str_eq((char *)res.out, "yes PUT\n");
}
END_TEST

/* ---- stderr ---- */

START_TEST(t_stderr_logged_with_prefix)
{
	ir_log_set_level(IR_LOG_INFO);
	ir_log_set_sink(log_sink, NULL);
	struct ir_exec_req req = {.prefix_logs = true, .call_id = "abc-1"};
	ck_assert_int_eq(
	    run_sh("echo one >&2; printf 'two\\r\\n' >&2; echo >&2; printf three >&2; echo out",
		   &req),
	    0);
	ck_assert_str_eq((char *)res.out, "out\n");
	ck_assert_int_eq(nlines, 4);
	ck_assert_msg(ends_with(lines[0], " fprocess: [abc-1] stderr: one"), "%s", lines[0]);
	ck_assert_msg(ends_with(lines[1], " fprocess: [abc-1] stderr: two"), "%s", lines[1]);
	ck_assert_msg(ends_with(lines[2], " fprocess: [abc-1] stderr: "), "%s", lines[2]);
	ck_assert_msg(ends_with(lines[3], " fprocess: [abc-1] stderr: three"), "%s", lines[3]);
	ck_assert_ptr_nonnull(strstr(lines[0], " info "));
}
END_TEST

START_TEST(t_stderr_no_prefix)
{
	struct ir_exec_req req = {.on_stderr = line_sink};
	ck_assert_int_eq(run_sh("echo plain >&2", &req), 0);
	ck_assert_int_eq(nlines, 1);
	ck_assert_str_eq(lines[0], "plain");
}
END_TEST

START_TEST(t_stderr_long_line_split)
{
	struct ir_exec_req req = {
	    .on_stderr = line_sink, .prefix_logs = true, .log_buffer_size = 8};
	ck_assert_int_eq(run_sh("printf '0123456789abcdefXYZ\\n12345678\\nend' >&2", &req), 0);
	ck_assert_int_eq(nlines, 5);
	ck_assert_str_eq(lines[0], "stderr: 01234567");
	ck_assert_str_eq(lines[1], "stderr: 89abcdef");
	ck_assert_str_eq(lines[2], "stderr: XYZ");
	ck_assert_str_eq(lines[3], "stderr: 12345678"); /* exactly the size: whole */
	ck_assert_str_eq(lines[4], "stderr: end");
}
END_TEST

/* Lots of stderr and stdout at once: neither pipe may stall the other. */
START_TEST(t_stderr_flood)
{
	struct ir_exec_req req = {.on_stderr = line_sink};
	ck_assert_int_eq(run_sh("head -c 1000000 /dev/zero >&2; head -c 1000000 /dev/zero", &req),
			 0);
	ck_assert_uint_eq(res.out_len, 1000000);
	ck_assert_int_eq(nlines, 16); /* 1e6 NULs in 65536-byte pieces */
}
END_TEST

/* ---- exit status, signals ---- */

START_TEST(t_exit_code)
{
	struct ir_exec_req req = {0};
	ck_assert_int_eq(run_sh("echo partial; exit 3", &req), 0);
	ck_assert(res.exited);
	ck_assert(!res.signaled);
	ck_assert_int_eq(res.exit_code, 3);
	ck_assert_str_eq(res.error, "exit status 3");
	ck_assert_int_eq(ir_exec_http_status(&res), 500);
}
END_TEST

START_TEST(t_killed_by_signal)
{
	struct ir_exec_req req = {0};
	ck_assert_int_eq(run_sh("kill -TERM $$", &req), 0);
	ck_assert(!res.exited);
	ck_assert(res.signaled);
	ck_assert_int_eq(res.signo, SIGTERM);
	ck_assert_str_eq(res.error, "signal: terminated");
	ck_assert_int_eq(ir_exec_http_status(&res), 500);
}
END_TEST

/* The child starts with no ignored signals even if we ignore SIGPIPE. */
START_TEST(t_signals_reset)
{
	signal(SIGPIPE, SIG_IGN);
	char *argv[] = {"/bin/grep", "^SigIgn", "/proc/self/status", NULL};
	struct ir_exec_req req = {.argv = argv};
	ck_assert_int_eq(ir_exec_run(&req, &res), 0);
	/* The classic signals 1-31 (bits 0-30).  The real-time ones above may
	 * be set by a sanitizer runtime in the test process and are not ours. */
	unsigned long long ign = 0;
	ck_assert_int_eq(sscanf((char *)res.out, "SigIgn:\t%llx", &ign), 1);
	ck_assert_msg((ign & 0x7fffffffull) == 0, "ignored in the child: %s", (char *)res.out);
}
END_TEST

/* ---- timeout ---- */

START_TEST(t_timeout_kills_group)
{
	/* Orphaned grandchildren come to us, so we can reap them here
	 * whatever PID 1 does. */
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	struct ir_exec_req req = {.timeout_ns = MS(300)};
	uint64_t t0 = now_ns();
	ck_assert_int_eq(run_sh("sleep 100 & sleep 100", &req), -ETIMEDOUT);
	uint64_t took = now_ns() - t0;
	ck_assert_msg(took >= MS(290) && took < MS(1300), "took %llu ms",
		      (unsigned long long)(took / 1000000));
	ck_assert(res.signaled);
	ck_assert_int_eq(res.signo, SIGKILL);
	ck_assert_int_eq(ir_exec_http_status(&res), 504);
	ck_assert_msg(strstr(res.error, "exec_timeout 0.300s"), "%s", res.error);

	pid_t pgid = res.pid;
	ck_assert_int_gt(pgid, 0);
	while (waitpid(-pgid, NULL, 0) > 0)
		;
	ck_assert_int_eq(kill(-pgid, 0), -1);
	ck_assert_int_eq(errno, ESRCH);
}
END_TEST

START_TEST(t_no_timeout_when_fast)
{
	char *argv[] = {"/bin/sleep", "0.1", NULL};
	struct ir_exec_req req = {.argv = argv, .timeout_ns = MS(5000)};
	ck_assert_int_eq(ir_exec_run(&req, &res), 0);
	ck_assert_int_eq(res.exit_code, 0);
	ck_assert_uint_ge(res.duration_ns, MS(90));
}
END_TEST

/* ---- exec failure ---- */

START_TEST(t_not_found)
{
	char *argv[] = {"nosuch-ir-exec-cmd", "arg", NULL};
	struct ir_exec_req req = {.argv = argv};
	ck_assert_int_eq(ir_exec_run(&req, &res), -ENOENT);
	ck_assert_str_eq(res.error, "fprocess \"nosuch-ir-exec-cmd\": No such file or directory");
	ck_assert(!res.exited);
	ck_assert(!res.signaled);
	ck_assert_int_eq(ir_exec_http_status(&res), 500);
	ir_exec_result_release(&res);

	char *argv2[] = {"/nonexistent/nosuch", NULL};
	req.argv = argv2;
	ck_assert_int_eq(ir_exec_run(&req, &res), -ENOENT);
	ck_assert_str_eq(res.error, "fprocess \"/nonexistent/nosuch\": No such file or directory");
}
END_TEST

START_TEST(t_not_executable)
{
	char *argv[] = {"/etc/passwd", NULL};
	struct ir_exec_req req = {.argv = argv};
	ck_assert_int_eq(ir_exec_run(&req, &res), -EACCES);
	ck_assert_str_eq(res.error, "fprocess \"/etc/passwd\": Permission denied");

	ir_exec_result_release(&res);
	char *empty[] = {NULL};
	req.argv = empty;
	ck_assert_int_eq(ir_exec_run(&req, &res), -EINVAL);
}
END_TEST

/* ---- output cap, streaming ---- */

START_TEST(t_output_cap)
{
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	struct ir_exec_req req = {.max_output = 100000};
	ck_assert_int_eq(run_sh("yes", &req), -EFBIG);
	ck_assert_ptr_null(res.out);
	ck_assert_uint_eq(res.out_len, 0);
	ck_assert(res.signaled);
	ck_assert_int_eq(ir_exec_http_status(&res), 500);
	ck_assert_msg(strstr(res.error, "max_output"), "%s", res.error);
	ir_exec_result_release(&res);

	req.max_output = 10;
	ck_assert_int_eq(run_sh("printf 0123456789", &req), 0);
	ck_assert_str_eq((char *)res.out, "0123456789");
}
END_TEST

struct sink {
	unsigned char *buf;
	size_t len, cap;
	int calls;
	int stop_at;
};

static int collect(const void *chunk, size_t len, void *arg)
{
	struct sink *s = arg;
	s->calls++;
	ck_assert_uint_gt(len, 0);
	ck_assert_uint_le(s->len + len, s->cap);
	memcpy(s->buf + s->len, chunk, len);
	s->len += len;
	return s->stop_at && s->calls == s->stop_at;
}

START_TEST(t_streaming)
{
	size_t n = 5u << 20;
	unsigned char *in = pattern(n);
	struct sink s = {.buf = malloc(n), .cap = n};
	char *argv[] = {"/bin/cat", NULL};
	struct ir_exec_req req = {
	    .argv = argv, .stdin_data = in, .stdin_len = n, .on_stdout = collect, .stdout_arg = &s};
	ck_assert_int_eq(ir_exec_run(&req, &res), 0);
	ck_assert_ptr_null(res.out);
	ck_assert_uint_eq(res.out_len, 0);
	ck_assert_uint_eq(res.out_total, n);
	ck_assert_uint_eq(s.len, n);
	ck_assert(!memcmp(s.buf, in, n));
	ck_assert_int_gt(s.calls, 1);
	free(s.buf);
	free(in);
}
END_TEST

START_TEST(t_streaming_cancel)
{
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	struct sink s = {.buf = malloc(1u << 20), .cap = 1u << 20, .stop_at = 2};
	struct ir_exec_req req = {.on_stdout = collect, .stdout_arg = &s};
	ck_assert_int_eq(run_sh("while :; do echo x; sleep 0.01; done", &req), -ECANCELED);
	ck_assert_int_eq(s.calls, 2);
	ck_assert(res.signaled);
	free(s.buf);
}
END_TEST

/* ---- nothing left behind ---- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	ck_assert_ptr_nonnull(d);
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

START_TEST(t_no_leaks)
{
	int before = count_fds();
	struct ir_exec_req req = {.timeout_ns = MS(200), .max_output = 1000};
	const char *scripts[] = {"echo ok", "exit 4", "sleep 5", "yes", "kill -KILL $$"};
	for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
		run_sh(scripts[i], &req);
		ir_exec_result_release(&res);
	}
	char *argv[] = {"nosuch-ir-exec-cmd", NULL};
	req.argv = argv;
	ck_assert_int_eq(ir_exec_run(&req, &res), -ENOENT);
	ck_assert_int_eq(count_fds(), before);

	/* Every child we forked was reaped by ir_exec_run() (no subreaper
	 * here: killed grandchildren go to PID 1, not to us). */
	ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
	ck_assert_int_eq(errno, ECHILD);
}
END_TEST

/* A descriptor we forgot to mark CLOEXEC does not reach the child. */
START_TEST(t_fds_not_inherited)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0); /* no O_CLOEXEC on purpose */
	char script[128];
	snprintf(script, sizeof(script),
		 "for f in %d %d; do [ -e /proc/$$/fd/$f ] && echo open$f; done; echo done", fds[0],
		 fds[1]);
	struct ir_exec_req req = {0};
	ck_assert_int_eq(run_sh(script, &req), 0);
	/* (Counting the child's fds is not stable: the shell may hold a few of
	 * its own.  The two we leaked on purpose must not be there.) */
	ck_assert_str_eq((char *)res.out, "done\n");
	close(fds[0]);
	close(fds[1]);
}
END_TEST

START_TEST(t_http_table)
{
	struct ir_exec_result r = {0};
	r.exited = true;
	ck_assert_int_eq(ir_exec_http_status(&r), 200);
	r.exit_code = 1;
	ck_assert_int_eq(ir_exec_http_status(&r), 500);
	r.exit_code = 0;
	r.exited = false;
	r.signaled = true;
	ck_assert_int_eq(ir_exec_http_status(&r), 500);
	r.rc = -ETIMEDOUT;
	ck_assert_int_eq(ir_exec_http_status(&r), 504);
	r.rc = -ENOENT;
	ck_assert_int_eq(ir_exec_http_status(&r), 500);
	r.rc = -EFBIG;
	ck_assert_int_eq(ir_exec_http_status(&r), 500);
}
END_TEST

Suite *exec_suite(void)
{
	Suite *s = suite_create("exec");
	TCase *tc = tcase_create("io");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_cat_empty);
	tcase_add_test(tc, t_cat_one);
	tcase_add_test(tc, t_cat_big);
	tcase_add_test(tc, t_writes_before_reading);
	tcase_add_test(tc, t_child_ignores_stdin);
	tcase_add_test(tc, t_stdin_callback);
	tcase_add_test(tc, t_stdin_callback_error);
	tcase_add_test(tc, t_streaming);
	tcase_add_test(tc, t_streaming_cancel);
	tcase_add_test(tc, t_output_cap);
	suite_add_tcase(s, tc);

	tc = tcase_create("env_log");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, t_env);
	tcase_add_test(tc, t_env_inherited);
	tcase_add_test(tc, t_stderr_logged_with_prefix);
	tcase_add_test(tc, t_stderr_no_prefix);
	tcase_add_test(tc, t_stderr_long_line_split);
	tcase_add_test(tc, t_stderr_flood);
	suite_add_tcase(s, tc);

	tc = tcase_create("status");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, t_exit_code);
	tcase_add_test(tc, t_killed_by_signal);
	tcase_add_test(tc, t_signals_reset);
	tcase_add_test(tc, t_timeout_kills_group);
	tcase_add_test(tc, t_no_timeout_when_fast);
	tcase_add_test(tc, t_not_found);
	tcase_add_test(tc, t_not_executable);
	tcase_add_test(tc, t_no_leaks);
	tcase_add_test(tc, t_fds_not_inherited);
	tcase_add_test(tc, t_http_table);
	suite_add_tcase(s, tc);
	return s;
}
