/* tnet.c - real-process test helpers (tnet.h). */
#include "tnet.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "iroute/log.h"

const struct ir_transport *tnet_backend(int i)
{
	return i == 0 ? &ir_transport_ipc : &ir_transport_tcp;
}

const char *tnet_addr(int i)
{
	static char dir[64];
	static char buf[128];
	static int n;
	if (i != 0)
		return "127.0.0.1:0";
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/irt-%d-XXXXXX", (int)getpid());
		if (!mkdtemp(dir))
			abort();
	}
	snprintf(buf, sizeof(buf), "%s/s%d.sock", dir, n++);
	return buf;
}

void tnet_cfg(struct ir_conn_cfg *cfg, const char *ident)
{
	ir_conn_cfg_init(cfg);
	cfg->token = (const uint8_t *)TNET_TOKEN;
	cfg->token_len = sizeof(TNET_TOKEN) - 1;
	cfg->ident = ident;
}

int tnet_run(struct ir_loop *loop, int (*done)(void *), void *arg, int timeout_ms)
{
	uint64_t end = ir_now_us() + (uint64_t)timeout_ms * 1000;
	while (!done(arg)) {
		if (ir_now_us() > end)
			return -ETIMEDOUT;
		ir_loop_run_once(loop, 10000);
	}
	return 0;
}

void tnet_run_for(struct ir_loop *loop, int ms)
{
	uint64_t end = ir_now_us() + (uint64_t)ms * 1000;
	while (ir_now_us() < end)
		ir_loop_run_once(loop, 5000);
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

void tnet_fill(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t s = mix(seed + 1);
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = mix(s + i);
		size_t k = len - i < 8 ? len - i : 8;
		memcpy(buf + i, &v, k);
	}
}

int tnet_check(const uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t s = mix(seed + 1);
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = mix(s + i);
		size_t k = len - i < 8 ? len - i : 8;
		if (memcmp(buf + i, &v, k))
			return 0;
	}
	return 1;
}

/* ---- echo child ---- */

static void free_cb(struct ir_conn *c, int status, void *arg)
{
	(void)c;
	(void)status;
	free(arg);
}

static void echo_msg(struct ir_conn *c, const struct ir_msg *m, void *ud)
{
	(void)ud;
	struct iovec iov = {(void *)m->payload, m->hdr.payload_len};
	int rc = ir_conn_send(c, &m->hdr, &iov, 1, NULL, NULL);
	if (rc == -EAGAIN) {
		void *copy = malloc(m->hdr.payload_len ? m->hdr.payload_len : 1);
		memcpy(copy, m->payload, m->hdr.payload_len);
		iov.iov_base = copy;
		rc = ir_conn_send(c, &m->hdr, &iov, 1, free_cb, copy);
		if (rc == 1)
			free(copy);
	}
}

pid_t tnet_spawn_echo(int backend, const char *addr, size_t ring_size, char *bound, size_t blen)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(p[0]);
		struct ir_loop *loop;
		if (ir_loop_new(&loop) < 0)
			_exit(2);
		struct ir_conn_cfg cfg;
		tnet_cfg(&cfg, "echo");
		if (ring_size)
			cfg.ring_size = ring_size;
		struct ir_conn_cbs cbs = {.on_msg = echo_msg};
		struct ir_listener *ls;
		if (ir_listen(loop, tnet_backend(backend), addr, &cfg, &cbs, NULL, &ls) < 0)
			_exit(3);
		const char *a = ir_listener_addr(ls);
		if (write(p[1], a, strlen(a) + 1) < 0)
			_exit(4);
		close(p[1]);
		ir_loop_run(loop);
		_exit(0);
	}
	close(p[1]);
	size_t n = 0;
	while (n < blen - 1) {
		ssize_t r = read(p[0], bound + n, blen - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		if (bound[n - 1] == 0)
			break;
	}
	bound[n] = 0;
	close(p[0]);
	tnet_track(pid);
	return n ? pid : -1;
}

static pid_t tracked[64];
static int ntracked;

void tnet_track(pid_t pid)
{
	if (ntracked < 64)
		tracked[ntracked++] = pid;
}

void tnet_reap_all(void)
{
	for (int i = 0; i < ntracked; i++) {
		kill(tracked[i], SIGKILL);
		waitpid(tracked[i], NULL, 0);
	}
	ntracked = 0;
}

int tnet_wait(pid_t pid, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 5) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			for (int i = 0; i < ntracked; i++)
				if (tracked[i] == pid)
					tracked[i] = tracked[--ntracked];
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		}
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return -1;
}

/* ---- log capture ---- */

static char logbuf[16384];
static size_t loglen;

static void capture(enum ir_log_level level, const char *line, void *arg)
{
	(void)level;
	(void)arg;
	size_t n = strlen(line);
	if (loglen + n + 2 < sizeof(logbuf)) {
		memcpy(logbuf + loglen, line, n);
		loglen += n;
		logbuf[loglen++] = '\n';
		logbuf[loglen] = 0;
	}
}

void tnet_log_capture(void)
{
	loglen = 0;
	logbuf[0] = 0;
	ir_log_set_level(IR_LOG_INFO);
	ir_log_set_sink(capture, NULL);
}

const char *tnet_log_text(void)
{
	return logbuf;
}
