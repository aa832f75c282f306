/* test_wdhard.c - the watchdog against hostile and oversized input, its
 * connection limits, a non-root run on a read-only filesystem, and the
 * in-process iroute mode.
 *
 * Hardening tests run the real iroute-watchdog binary; the raw-socket
 * client below sends what curl will not (a doubled Content-Length, a
 * request trickled line by line, idle connections held open).  The iroute
 * mode has no binary of its own (the c-func template links one), so its
 * tests fork a child that calls ir_watchdog_run() with a handler defined
 * here, and drive it with curl like the others.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "iroute/wdconfig.h"
#include "tests.h"
#include "twd.h"
#include "watchdog.h"

/* ---- raw client ---- */

/* Connected to the watchdog from @src ("127.0.0.1" when NULL). */
static int raw_connect(const char *src)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	if (src) {
		struct sockaddr_in s = {.sin_family = AF_INET};
		inet_pton(AF_INET, src, &s.sin_addr);
		ck_assert_int_eq(bind(fd, (struct sockaddr *)&s, sizeof(s)), 0);
	}
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)twd_port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void raw_send(int fd, const char *s)
{
	size_t len = strlen(s);
	ck_assert_int_eq(send(fd, s, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Read until EOF or @ms pass; returns bytes read (NUL-terminated in @buf)
 * and whether the peer closed in @closed. */
static size_t raw_read(int fd, char *buf, size_t cap, unsigned ms, bool *closed)
{
	size_t n = 0;
	uint64_t end = now_ms() + ms;
	*closed = false;
	while (n + 1 < cap) {
		uint64_t now = now_ms();
		if (now >= end)
			break;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, (int)(end - now)) <= 0)
			break;
		ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
		if (r <= 0) {
			*closed = true;
			break;
		}
		n += (size_t)r;
	}
	buf[n] = '\0';
	return n;
}

static void start_cat(const char *const *extra)
{
	start("cat", extra);
}

/* ---- oversized and malformed requests ---- */

START_TEST(header_over_cap_431)
{
	const char *extra[] = {"IROUTE_MAX_HEADER_BYTES=2048", NULL};
	start_cat(extra);
	char req[4096], resp[4096];
	bool closed;
	/* Just under the cap: served. */
	int fd = raw_connect(NULL);
	snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: x\r\nX-Big: %01800d\r\n\r\n", 0);
	raw_send(fd, req);
	raw_read(fd, resp, sizeof(resp), 1000, &closed);
	close(fd);
	ck_assert_msg(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%.80s", resp);
	/* Over it: 431 naming the variable. */
	fd = raw_connect(NULL);
	snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: x\r\nX-Big: %03000d\r\n\r\n", 0);
	raw_send(fd, req);
	raw_read(fd, resp, sizeof(resp), 3000, &closed);
	close(fd);
	ck_assert_msg(strncmp(resp, "HTTP/1.1 431", 12) == 0, "%.80s", resp);
	ck_assert_msg(strstr(resp, "over IROUTE_MAX_HEADER_BYTES (2048 bytes)"), "%.300s", resp);

	/* Far beyond the pool: MHD's own 431. */
	fd = raw_connect(NULL);
	raw_send(fd, "GET / HTTP/1.1\r\nHost: x\r\nX-Huge: ");
	char chunk[1024];
	memset(chunk, 'b', sizeof(chunk) - 1);
	chunk[sizeof(chunk) - 1] = '\0';
	for (int i = 0; i < 40; i++)
		if (send(fd, chunk, strlen(chunk), MSG_NOSIGNAL) < 0)
			break;
	raw_read(fd, resp, sizeof(resp), 3000, &closed);
	ck_assert_msg(strncmp(resp, "HTTP/1.1 431", 12) == 0, "%.80s", resp);
	close(fd);
	ck_assert_int_eq(curl(twd_port, "h", "", "/_/health"), 200);
}
END_TEST

START_TEST(body_over_cap_413_unread)
{
	write_script("fn", "touch \"$0.ran\"; cat");
	char fp[128], ran[160];
	path_in(fp, sizeof(fp), "fn");
	snprintf(ran, sizeof(ran), "%s.ran", fp);
	const char *extra[] = {"IROUTE_MAX_BODY_BYTES=1000", NULL};
	start(fp, extra);

	/* Content-Length over the cap: 413 before a byte of the body is read
	 * (the client is told after sending only the head). */
	int fd = raw_connect(NULL);
	raw_send(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n");
	char resp[2048];
	bool closed;
	raw_read(fd, resp, sizeof(resp), 3000, &closed);
	ck_assert_msg(strncmp(resp, "HTTP/1.1 413", 12) == 0, "%.80s", resp);
	ck_assert_ptr_nonnull(strstr(resp, "100000000 bytes is over IROUTE_MAX_BODY_BYTES"));
	ck_assert_ptr_nonnull(strcasestr(resp, "Connection: close"));
	ck_assert(closed);
	close(fd);

	/* Chunked over the cap: discarded as it arrives, then 413. */
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "head -c 5000 /dev/zero | curl -s -o /dev/null -w '%%{http_code}' "
		 "-H 'Transfer-Encoding: chunked' --data-binary @- http://127.0.0.1:%d/",
		 twd_port);
	FILE *f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(curl_end(f), 413);
	ck_assert_msg(access(ran, F_OK) != 0, "fprocess ran for an oversized body");

	/* At the cap: runs. */
	snprintf(cmd, sizeof(cmd),
		 "head -c 1000 /dev/zero | curl -s -o %s/eq -w '%%{http_code}' "
		 "-H 'Transfer-Encoding: chunked' --data-binary @- http://127.0.0.1:%d/",
		 twd_dir, twd_port);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(curl_end(f), 200);
	size_t len;
	free(read_file("eq", &len));
	ck_assert_uint_eq(len, 1000);
}
END_TEST

START_TEST(duplicate_content_length_400)
{
	write_script("fn", "touch \"$0.ran\"; cat");
	char fp[128], ran[160];
	path_in(fp, sizeof(fp), "fn");
	snprintf(ran, sizeof(ran), "%s.ran", fp);
	start(fp, NULL);
	int fd = raw_connect(NULL);
	raw_send(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: "
		     "30\r\n\r\nabc");
	char resp[2048];
	bool closed;
	raw_read(fd, resp, sizeof(resp), 3000, &closed);
	close(fd);
	ck_assert_msg(strncmp(resp, "HTTP/1.1 400", 12) == 0, "%.80s", resp);
	ck_assert_ptr_nonnull(strstr(resp, "Content-Length given 2 times"));
	ck_assert(closed);
	ck_assert_msg(access(ran, F_OK) != 0, "fprocess ran for an ambiguous request");
	/* Also on /_/ paths. */
	fd = raw_connect(NULL);
	raw_send(fd, "GET /_/health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
		     "Content-Length: 0\r\n\r\n");
	raw_read(fd, resp, sizeof(resp), 3000, &closed);
	close(fd);
	ck_assert_msg(strncmp(resp, "HTTP/1.1 400", 12) == 0, "%.80s", resp);
}
END_TEST

/* A client that trickles its request (a header line every 200 ms, each
 * one resetting any idle timer) is cut at read_timeout; others are
 * served meanwhile. */
START_TEST(slowloris_cut_at_read_timeout)
{
	const char *extra[] = {"read_timeout=1", NULL};
	start_cat(extra);
	int fd = raw_connect(NULL);
	uint64_t t0 = now_ms();
	raw_send(fd, "POST / HTTP/1.1\r\nHost: x\r\n");
	bool closed = false;
	int sent = 0;
	while (!closed && now_ms() - t0 < 5000) {
		if (send(fd, "X-Slow: 1\r\n", 11, MSG_NOSIGNAL) < 0)
			break;
		sent++;
		char buf[256];
		raw_read(fd, buf, sizeof(buf), 200, &closed);
		if (sent == 2)
			ck_assert_int_eq(curl(twd_port, "h", "", "/_/health"), 200);
	}
	uint64_t took = now_ms() - t0;
	close(fd);
	ck_assert_msg(took >= 900 && took < 2500, "cut after %llu ms (read_timeout=1s)",
		      (unsigned long long)took);
	char *log = read_file("stderr", NULL);
	ck_assert_msg(strstr(log, "request not read whole within read_timeout"), "%s", log);
	free(log);

	/* The same for a body that trickles after a complete head. */
	fd = raw_connect(NULL);
	t0 = now_ms();
	raw_send(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n");
	closed = false;
	while (!closed && now_ms() - t0 < 5000) {
		if (send(fd, "a", 1, MSG_NOSIGNAL) < 0)
			break;
		char buf[256];
		raw_read(fd, buf, sizeof(buf), 200, &closed);
	}
	took = now_ms() - t0;
	close(fd);
	ck_assert_msg(took >= 900 && took < 2500, "body cut after %llu ms",
		      (unsigned long long)took);

	/* A slow function is not a slow client: its run is not cut. */
	write_script("slow", "sleep 1.5; echo done");
	char fp[128];
	path_in(fp, sizeof(fp), "slow");
	kill(twd_pid, SIGKILL);
	waitpid(twd_pid, NULL, 0);
	twd_pid = 0;
	start(fp, extra);
	ck_assert_int_eq(curl(twd_port, "s", "", "/"), 200);
	char *body = read_file("s", NULL);
	ck_assert_str_eq(body, "done\n");
	free(body);
}
END_TEST

/* A held connection that has just been served once (so it is surely
 * counted, and the start-up probe's connection is surely gone). */
static int held_connection(const char *src)
{
	int fd = raw_connect(src);
	char buf[512];
	bool closed;
	raw_send(fd, "GET /_/health HTTP/1.1\r\nHost: x\r\n\r\n");
	raw_read(fd, buf, sizeof(buf), 300, &closed);
	ck_assert_msg(strstr(buf, "HTTP/1.1 200") && !closed, "held connection refused: %s", buf);
	return fd;
}

/* Whether a new connection from @src is refused (closed unanswered). */
static bool refused(const char *src)
{
	int fd = raw_connect(src);
	char buf[512];
	bool closed;
	if (send(fd, "GET /_/health HTTP/1.1\r\nHost: x\r\n\r\n", 35, MSG_NOSIGNAL) < 0) {
		close(fd);
		return true;
	}
	raw_read(fd, buf, sizeof(buf), 2000, &closed);
	close(fd);
	return closed && !strstr(buf, "200 OK");
}

START_TEST(connection_limits)
{
	const char *extra[] = {"IROUTE_MAX_CONNECTIONS=2", "IROUTE_MAX_CONNECTIONS_PER_IP=0", NULL};
	start_cat(extra);
	sleep_ms(200); /* the start-up probe's connection is cleaned up */
	int a = held_connection(NULL), b = held_connection(NULL);
	/* The third is accepted by the kernel and closed at once by us. */
	ck_assert_msg(refused(NULL), "third connection served with IROUTE_MAX_CONNECTIONS=2");
	/* A slot frees when one closes. */
	close(a);
	sleep_ms(200);
	ck_assert_int_eq(curl(twd_port, "h", "", "/_/health"), 200);
	close(b);
	kill(twd_pid, SIGKILL);
	waitpid(twd_pid, NULL, 0);
	twd_pid = 0;

	/* Per address: 127.0.0.1 holds its one slot, 127.0.0.2 still gets in. */
	const char *extra2[] = {"IROUTE_MAX_CONNECTIONS_PER_IP=1", NULL};
	twd_port = free_port();
	start_cat(extra2);
	sleep_ms(200);
	a = held_connection("127.0.0.1");
	ck_assert_msg(refused("127.0.0.1"), "second connection from one address served");
	b = held_connection("127.0.0.2");
	close(a);
	close(b);
}
END_TEST

/* As a Kubernetes pod with runAsNonRoot and readOnlyRootFilesystem: uid
 * 65534, / mounted read-only, a fresh writable /tmp (the lock file goes
 * to its default /tmp/.lock). */
START_TEST(non_root_read_only_fs)
{
	if (geteuid() != 0) {
		fprintf(stderr, "non_root_read_only_fs: needs root to build the namespace\n");
		ck_assert_msg(getenv("IROUTE_ALLOW_SKIP"), "run as root (or IROUTE_ALLOW_SKIP=1)");
		return;
	}
	const char *bindir = getenv("IROUTE_BIN_DIR");
	char bin[512], cmd[3072];
	ck_assert_ptr_nonnull(realpath(bindir && *bindir ? bindir : "build/bin", bin));
	/* The binary is copied out first: the build tree may be under /tmp,
	 * which the fresh tmpfs hides (a clean clone in /tmp, as CI makes). */
	char copy[128];
	snprintf(copy, sizeof(copy), "/dev/shm/iroute-wd-test-%d", twd_port);
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p %s && chmod 755 %s && cp %s/iroute-watchdog %s/ && "
		 "mount -o remount,bind,ro / && mount -t tmpfs -o mode=1777 tmpfs /tmp && "
		 "exec setpriv --reuid=65534 --regid=65534 --clear-groups "
		 "env -i PATH=/usr/bin:/bin mode=serializing fprocess=cat port=%d "
		 "IROUTE_METRICS_PORT=%d %s/iroute-watchdog",
		 copy, copy, bin, copy, twd_port, twd_mport, copy);
	char verr[128];
	path_in(verr, sizeof(verr), "stderr");
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		FILE *e = freopen(verr, "w", stderr);
		(void)e;
		execlp("unshare", "unshare", "--mount", "--propagation", "private", "sh", "-c", cmd,
		       (char *)NULL);
		_exit(127);
	}
	twd_pid = pid;
	uint64_t t0 = now_ms();
	while (!port_open(twd_port)) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			twd_pid = 0;
			char *log = read_file("stderr", NULL);
			ck_abort_msg("watchdog exited: %s", log);
		}
		ck_assert_msg(now_ms() - t0 < 5000, "watchdog did not listen");
		sleep_ms(10);
	}
	ck_assert_int_eq(curl(twd_port, "h", "", "/_/health"), 200);
	ck_assert_int_eq(curl(twd_port, "e", "--data-binary hello", "/"), 200);
	char *body = read_file("e", NULL);
	ck_assert_str_eq(body, "hello");
	free(body);
	char *log = read_file("stderr", NULL);
	ck_assert_msg(strstr(log, "wrote lock file at /tmp/.lock"), "%s", log);
	free(log);
	/* It really runs as nobody (unshare, sh, setpriv and env all exec
	 * in place: the pid is the watchdog's). */
	struct stat pst;
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/%d", (int)pid);
	ck_assert_int_eq(stat(proc, &pst), 0);
	ck_assert_uint_eq(pst.st_uid, 65534);
	kill(pid, SIGTERM);
	int st = wait_exit(40000);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", copy);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", copy);
	ck_assert_int_ne(st, -1);
}
END_TEST

/* ---- mode=iroute ---- */

static int test_handler(void *arg, const struct ir_wd_call *call, struct ir_wd_reply *reply)
{
	(void)arg;
	if (strcmp(call->path, "/fail") == 0) {
		snprintf(reply->error, sizeof(reply->error), "the handler says no");
		return -EIO;
	}
	if (strcmp(call->path, "/slow") == 0) {
		sleep_ms(1500);
		reply->body = strdup("late");
		reply->len = 4;
		return 0;
	}
	if (strcmp(call->path, "/created") == 0) {
		reply->status = 201;
		reply->content_type = "application/json";
		reply->body = strdup("{}");
		reply->len = 2;
		return 0;
	}
	const char *name = ir_wd_call_header(call, "x-name");
	char *out = NULL;
	int n = asprintf(&out, "%s %s?%s name=%s deadline=%d body=%.*s", call->method, call->path,
			 call->query, name ? name : "-", call->deadline_ns != 0,
			 (int)call->body_len, (const char *)call->body);
	ck_assert_int_gt(n, 0);
	reply->body = out;
	reply->len = (size_t)n;
	return 0;
}

static void start_iroute(const char *const *extra)
{
	char *envp[16];
	static char vport[32], vmode[] = "mode=iroute";
	snprintf(vport, sizeof(vport), "port=%d", twd_port);
	size_t n = 0;
	envp[n++] = vmode;
	envp[n++] = vport;
	for (size_t i = 0; extra && extra[i] && n < 15; i++)
		envp[n++] = (char *)extra[i];
	envp[n] = NULL;
	char lock[128];
	path_in(lock, sizeof(lock), "lock");
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
		signal(SIGPIPE, SIG_IGN);
		struct ir_wd_config cfg;
		char err[256];
		if (ir_wd_config_load(&cfg, envp, err, sizeof(err)) != 0) {
			fprintf(stderr, "%s\n", err);
			_exit(2);
		}
		struct ir_watchdog_opts opts = {.lock_path = lock,
						.metrics_port = (uint16_t)twd_mport,
						.handler = test_handler};
		int rc = ir_watchdog_run(&cfg, &opts, err, sizeof(err));
		_exit(rc == 0 ? 0 : 1);
	}
	twd_pid = pid;
	uint64_t t0 = now_ms();
	while (!port_open(twd_port)) {
		ck_assert_msg(waitpid(pid, NULL, WNOHANG) == 0, "iroute watchdog exited");
		ck_assert_msg(now_ms() - t0 < 5000, "iroute watchdog did not listen");
		sleep_ms(10);
	}
}

START_TEST(iroute_mode_handler)
{
	start_iroute(NULL);
	ck_assert_int_eq(curl(twd_port, "h", "", "/_/health"), 200);
	ck_assert_int_eq(curl(twd_port, "a", "--data-binary hi -H 'X-Name: ann'", "/p/q?x=1"), 200);
	char *body = read_file("a", NULL);
	ck_assert_str_eq(body, "POST /p/q?x=1 name=ann deadline=1 body=hi");
	free(body);
	ck_assert(header_has("a", "Content-Type: application/octet-stream"));
	ck_assert(header_has("a", "X-Duration-Seconds: "));

	ck_assert_int_eq(curl(twd_port, "c", "", "/created"), 201);
	ck_assert(header_has("c", "Content-Type: application/json"));

	ck_assert_int_eq(curl(twd_port, "f", "", "/fail"), 500);
	body = read_file("f", NULL);
	ck_assert_str_eq(body, "the handler says no\n");
	free(body);

	/* X-Timeout shorter than the handler: 504, the late reply dropped. */
	ck_assert_int_eq(curl(twd_port, "s", "-H 'X-Timeout: 1s'", "/slow"), 504);
	body = read_file("s", NULL);
	ck_assert_msg(strstr(body, "timeout") && !strstr(body, "late"), "%s", body);
	free(body);
	ck_assert_int_eq(curl(twd_port, "s2", "", "/slow"), 200);

	/* The handler's requests are in the metrics. */
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "/metrics");
	ck_assert_int_eq(curl(twd_mport, "m", "", cmd), 200);
	body = read_file("m", NULL);
	ck_assert_msg(strstr(body, "http_requests_total{code=\"500\",method=\"get\"} 1\n"),
		      "%.400s", body);
	free(body);
}
END_TEST

START_TEST(iroute_mode_max_inflight_and_drain)
{
	const char *extra[] = {"max_inflight=1", "healthcheck_interval=0", NULL};
	start_iroute(extra);
	FILE *slow = curl_start(twd_port, "s", "", "/slow");
	sleep_ms(400);
	ck_assert_int_eq(curl(twd_port, "b", "", "/x"), 429);
	ck_assert(header_has("b", "X-OpenFaaS-Internal: faas-middleware"));
	/* SIGTERM while the slow handler runs: it completes, exit 0. */
	kill(twd_pid, SIGTERM);
	ck_assert_int_eq(curl_end(slow), 200);
	int st = wait_exit(5000);
	ck_assert_int_ne(st, -1);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST

START_TEST(iroute_mode_binary_without_handler_exits_2)
{
	static char vport[32];
	snprintf(vport, sizeof(vport), "port=%d", twd_port);
	const char *env[] = {"mode=iroute", vport, NULL};
	spawn_wd(env, false);
	int st = wait_exit(5000);
	ck_assert_int_ne(st, -1);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 2);
	char *err = read_file("stderr", NULL);
	ck_assert_msg(strstr(err, "mode=iroute runs a C handler"), "%s", err);
	free(err);
}
END_TEST

Suite *wdhard_suite(void)
{
	Suite *s = suite_create("wdhard");
	TCase *tc = tcase_create("hardening");
	tcase_add_checked_fixture(tc, twd_setup, twd_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, header_over_cap_431);
	tcase_add_test(tc, body_over_cap_413_unread);
	tcase_add_test(tc, duplicate_content_length_400);
	tcase_add_test(tc, slowloris_cut_at_read_timeout);
	tcase_add_test(tc, connection_limits);
	tcase_add_test(tc, non_root_read_only_fs);
	suite_add_tcase(s, tc);
	tc = tcase_create("iroute");
	tcase_add_checked_fixture(tc, twd_setup, twd_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, iroute_mode_handler);
	tcase_add_test(tc, iroute_mode_max_inflight_and_drain);
	tcase_add_test(tc, iroute_mode_binary_without_handler_exits_2);
	suite_add_tcase(s, tc);
	return s;
}
