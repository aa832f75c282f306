/* test_transport.c - the conformance suite, run against every backend.
 *
 * Each test is a Check loop test whose index picks the backend (0 ipc,
 * 1 tcp), so both media are held to one contract (transport.h).  Peers are
 * real processes where the contract is about processes: echo servers,
 * many clients, a sender killed mid-message, a server that restarts.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crc32c.h"
#include "hello.h"
#include "iroute/log.h"
#include "sock.h"
#include "stream.h"
#include "tests.h"
#include "tnet.h"
#include "transport_int.h"

#define NB 2 /* backends */

/* ---- a client that checks echoes ---- */

struct cli {
	struct ir_loop *loop;
	struct ir_conn *c;
	int opened;
	int closed;
	int close_err;
	int writable;
	int reconnect;
	uint64_t sent;
	uint64_t got;
	uint64_t bad;
};

static void cli_open(struct ir_conn *c, void *ud)
{
	(void)c;
	((struct cli *)ud)->opened++;
}

static void cli_close(struct ir_conn *c, int err, void *ud)
{
	(void)c;
	struct cli *k = ud;
	k->closed++;
	k->close_err = err;
	if (!k->reconnect)
		k->c = NULL; /* freed after this returns (transport.h) */
}

static void cli_writable(struct ir_conn *c, void *ud)
{
	(void)c;
	((struct cli *)ud)->writable++;
}

/* Echoes must come back in order, intact, with every header field. */
static void cli_msg(struct ir_conn *c, const struct ir_msg *m, void *ud)
{
	(void)c;
	struct cli *k = ud;
	uint64_t seq = m->hdr.request_id;
	if (seq != k->got || m->hdr.epoch != (uint32_t)(seq * 3) ||
	    m->hdr.branch != (seq & 0xffff) || m->hdr.origin != ~seq ||
	    m->hdr.type != IR_FRAME_DATA || !tnet_check(m->payload, m->hdr.payload_len, seq))
		k->bad++;
	k->got++;
}

static const struct ir_conn_cbs cli_cbs = {
    .on_open = cli_open, .on_msg = cli_msg, .on_writable = cli_writable, .on_close = cli_close};

static void hdr_for(struct ir_frame_hdr *h, uint64_t seq)
{
	ir_frame_init(h, IR_FRAME_DATA);
	h->request_id = seq;
	h->epoch = (uint32_t)(seq * 3);
	h->branch = (uint16_t)(seq & 0xffff);
	h->origin = ~seq;
	h->deadline_ns = ir_now_realtime_ns() + 10000000000ull;
}

static int k_open(void *a)
{
	struct cli *k = a;
	return k->opened > 0 || k->closed > 0;
}

static int k_all(void *a)
{
	struct cli *k = a;
	return k->got >= k->sent || k->closed;
}

static int k_got(void *a)
{
	struct cli *k = a;
	return k->got >= k->sent;
}

static int k_writable(void *a)
{
	struct cli *k = a;
	return k->writable > 0 || k->closed;
}

static void cli_dial(struct cli *k, int b, const char *addr, int reconnect)
{
	memset(k, 0, sizeof(*k));
	k->reconnect = reconnect;
	ck_assert_int_eq(ir_loop_new(&k->loop), 0);
	struct ir_conn_cfg cfg;
	tnet_cfg(&cfg, "client");
	cfg.reconnect = reconnect;
	cfg.reconnect_max_ms = 100;
	ck_assert_int_eq(ir_dial(k->loop, tnet_backend(b), addr, &cfg, &cli_cbs, k, &k->c), 0);
	ck_assert_int_eq(tnet_run(k->loop, k_open, k, 5000), 0);
	ck_assert_int_eq(k->opened, 1);
}

static void free_cb(struct ir_conn *c, int status, void *arg)
{
	(void)c;
	(void)status;
	free(arg);
}

/* Send frame @seq of @len bytes; waits through backpressure. */
static void cli_send(struct cli *k, uint64_t seq, size_t len, int borrow)
{
	struct ir_frame_hdr h;
	hdr_for(&h, seq);
	uint8_t *buf = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(buf);
	tnet_fill(buf, len, seq);
	struct iovec iov[2] = {{buf, len / 3}, {buf + len / 3, len - len / 3}};
	for (;;) {
		int rc = ir_conn_send(k->c, &h, iov, 2, borrow ? free_cb : NULL, buf);
		if (rc == -EAGAIN) {
			k->writable = 0;
			ck_assert_int_eq(tnet_run(k->loop, k_writable, k, 20000), 0);
			continue;
		}
		ck_assert_int_ge(rc, 0);
		if (!borrow || rc == 1)
			free(buf);
		break;
	}
	k->sent++;
}

static void cli_free(struct cli *k)
{
	if (k->c)
		ir_conn_close(k->c);
	ir_loop_free(k->loop);
}

static void teardown(void)
{
	tnet_reap_all();
}

/* ---- ordering and sizes ---- */

START_TEST(t_sizes)
{
	char addr[256];
	pid_t pid = tnet_spawn_echo(_i, tnet_addr(_i), 0, addr, sizeof(addr));
	ck_assert_int_gt(pid, 0);
	struct cli k;
	cli_dial(&k, _i, addr, 0);
	static const size_t sizes[] = {0,	 1,	    63,	      64,	65,
				       4095,	 65536,	    65537,    1u << 20, (1u << 20) + 7,
				       8u << 20, 16u << 20, 64u << 20};
	size_t n = sizeof(sizes) / sizeof(sizes[0]) - (test_light() ? 2 : 0);
	for (size_t i = 0; i < n; i++) {
		cli_send(&k, k.sent, sizes[i], sizes[i] >= (1u << 20));
		ck_assert_int_eq(tnet_run(k.loop, k_all, &k, 60000), 0);
		ck_assert_msg(k.bad == 0, "echo of %zu bytes came back wrong", sizes[i]);
	}
	struct ir_conn_stats st;
	ir_conn_stats(k.c, &st);
	ck_assert_uint_eq(st.frames_in, n);
	ck_assert_uint_eq(st.frames_out, n);
	ck_assert_uint_eq(st.bad_frames, 0);
	cli_free(&k);
}
END_TEST

START_TEST(t_order_burst)
{
	char addr[256];
	pid_t pid = tnet_spawn_echo(_i, tnet_addr(_i), 0, addr, sizeof(addr));
	ck_assert_int_gt(pid, 0);
	struct cli k;
	cli_dial(&k, _i, addr, 0);
	srandom(7);
	int frames = test_light() ? 500 : 20000;
	for (int i = 0; i < frames; i++) {
		size_t len = (size_t)random() % 2000;
		if (i % 97 == 0)
			len = 70000 + (size_t)random() % 300000; /* larger ones in between */
		cli_send(&k, k.sent, len, 0);
		if (i % 256 == 0)
			ir_loop_run_once(k.loop, 0);
	}
	ck_assert_int_eq(tnet_run(k.loop, k_all, &k, 60000), 0);
	ck_assert_uint_eq(k.got, (uint64_t)frames);
	ck_assert_uint_eq(k.bad, 0);
	ck_assert_int_eq(k.closed, 0);
	cli_free(&k);
}
END_TEST

/* ---- many peers at once ---- */

struct srv {
	struct ir_loop *loop;
	struct ir_listener *ls;
	int opened, closed, last_err;
	uint64_t msgs;
	uint64_t from_victim;
	int check_shm;
	uint64_t in_shm; /* payloads that were read in place, in an ipc segment */
	struct ir_conn *victim;
	int victim_err;
	int echo;
	int close_on_msg;
};

static void srv_open(struct ir_conn *c, void *ud)
{
	struct srv *s = ud;
	s->opened++;
	if (!strcmp(ir_conn_peer_ident(c), "victim"))
		s->victim = c;
}

static void srv_close(struct ir_conn *c, int err, void *ud)
{
	struct srv *s = ud;
	s->closed++;
	s->last_err = err;
	if (c == s->victim) {
		s->victim_err = err;
		s->victim = NULL;
	}
}

/* Does @p lie in a mapping of an ipc segment (/proc/self/maps)? */
static int in_ipc_segment(const void *p)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int found = 0;
	while (f && !found && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && (unsigned long)p >= lo &&
		    (unsigned long)p < hi)
			found = strstr(line, "memfd:iroute-ipc") != NULL;
	}
	if (f)
		fclose(f);
	return found;
}

static void srv_msg(struct ir_conn *c, const struct ir_msg *m, void *ud)
{
	struct srv *s = ud;
	s->msgs++;
	if (s->check_shm && m->hdr.payload_len && in_ipc_segment(m->payload))
		s->in_shm++;
	if (s->close_on_msg) {
		ir_conn_close(c); /* a callback may close its own connection */
		return;
	}
	if (c == s->victim)
		s->from_victim++;
	if (s->echo) {
		struct iovec iov = {(void *)m->payload, m->hdr.payload_len};
		ir_conn_send(c, &m->hdr, &iov, 1, NULL, NULL);
	}
}

static const struct ir_conn_cbs srv_cbs = {
    .on_open = srv_open, .on_msg = srv_msg, .on_close = srv_close};

static void srv_start(struct srv *s, int b, size_t ring, uint32_t max_payload)
{
	memset(s, 0, sizeof(*s));
	s->echo = 1;
	ck_assert_int_eq(ir_loop_new(&s->loop), 0);
	struct ir_conn_cfg cfg;
	tnet_cfg(&cfg, "server");
	if (ring)
		cfg.ring_size = ring;
	if (max_payload)
		cfg.max_payload = max_payload;
	cfg.hello_timeout_ms = 500;
	ck_assert_int_eq(
	    ir_listen(s->loop, tnet_backend(b), tnet_addr(b), &cfg, &srv_cbs, s, &s->ls), 0);
}

/* A client process: @rounds echoes of random sizes, exit 0 if all good. */
static pid_t spawn_client(int b, const char *addr, const char *ident, int rounds, int go_fd,
			  int ready_fd)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid != 0) {
		tnet_track(pid);
		return pid;
	}
	struct cli k;
	memset(&k, 0, sizeof(k));
	if (ir_loop_new(&k.loop) < 0)
		_exit(10);
	struct ir_conn_cfg cfg;
	tnet_cfg(&cfg, ident);
	if (ir_dial(k.loop, tnet_backend(b), addr, &cfg, &cli_cbs, &k, &k.c) < 0)
		_exit(11);
	if (tnet_run(k.loop, k_open, &k, 5000) < 0 || !k.opened)
		_exit(12);
	for (int phase = 0; phase < (go_fd >= 0 ? 2 : 1); phase++) {
		if (phase == 1) {
			if (write(ready_fd, "r", 1) != 1)
				_exit(13);
			char g;
			if (read(go_fd, &g, 1) != 1)
				_exit(14);
		}
		for (int i = 0; i < rounds; i++) {
			size_t len = (size_t)(random() % 3000);
			struct ir_frame_hdr h;
			hdr_for(&h, k.sent);
			uint8_t buf[3000];
			tnet_fill(buf, len, k.sent);
			struct iovec iov = {buf, len};
			if (ir_conn_send(k.c, &h, &iov, 1, NULL, NULL) < 0)
				_exit(15);
			k.sent++;
			if (tnet_run(k.loop, k_all, &k, 10000) < 0)
				_exit(16);
			if (k.closed)
				_exit(17);
		}
	}
	_exit(k.bad == 0 && k.got == k.sent ? 0 : 18);
}

struct kids {
	pid_t pid[32];
	int status[32];
	int n, left;
};

static int kids_done(void *a)
{
	struct kids *kd = a;
	for (int i = 0; i < kd->n; i++) {
		if (kd->pid[i] <= 0)
			continue;
		int st;
		if (waitpid(kd->pid[i], &st, WNOHANG) == kd->pid[i]) {
			kd->status[i] = WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
			kd->pid[i] = 0;
			kd->left--;
		}
	}
	return kd->left == 0;
}

START_TEST(t_many_peers)
{
	struct srv s;
	srv_start(&s, _i, 1u << 20, 0);
	struct kids kd = {.n = test_light() ? 4 : 24};
	kd.left = kd.n;
	for (int i = 0; i < kd.n; i++) {
		char ident[32];
		snprintf(ident, sizeof(ident), "peer-%d", i);
		kd.pid[i] = spawn_client(_i, ir_listener_addr(s.ls), ident, 300, -1, -1);
		ck_assert_int_gt(kd.pid[i], 0);
	}
	ck_assert_int_eq(tnet_run(s.loop, kids_done, &kd, 60000), 0);
	for (int i = 0; i < kd.n; i++)
		ck_assert_msg(kd.status[i] == 0, "client %d exited %d", i, kd.status[i]);
	tnet_run_for(s.loop, 50);
	struct ir_listener_stats ls;
	ir_listener_stats(s.ls, &ls);
	ck_assert_uint_eq(ls.accepted, (uint64_t)kd.n);
	ck_assert_uint_eq(s.msgs, (uint64_t)kd.n * 300);
	ck_assert_int_eq(s.closed, kd.n);
	ir_listener_close(s.ls);
	ir_loop_free(s.loop);
}
END_TEST

/* ---- slow receiver: backpressure with bounded memory ---- */

struct slow {
	uint64_t got, bad;
	int slept;
};

static void slow_msg(struct ir_conn *c, const struct ir_msg *m, void *ud)
{
	struct slow *s = ud;
	if (m->hdr.request_id != s->got || !tnet_check(m->payload, m->hdr.payload_len, s->got))
		s->bad++;
	s->got++;
	if (!s->slept) {
		s->slept = 1;
		usleep(1500 * 1000); /* a receiver that stops reading for a while */
	}
	if (m->hdr.flags & IR_FRAME_F_LAST) {
		struct ir_frame_hdr h;
		ir_frame_init(&h, IR_FRAME_ACK);
		h.request_id = s->got;
		h.attempt = (uint16_t)(s->bad ? 1 : 0);
		ir_conn_send(c, &h, NULL, 0, NULL, NULL);
	}
}

static void ack_msg(struct ir_conn *c, const struct ir_msg *m, void *ud)
{
	(void)c;
	struct cli *k = ud;
	if (m->hdr.type == IR_FRAME_ACK) {
		k->got = m->hdr.request_id;
		k->bad = m->hdr.attempt;
	}
}

START_TEST(t_slow_receiver)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		struct ir_loop *loop;
		ir_loop_new(&loop);
		struct ir_conn_cfg cfg;
		tnet_cfg(&cfg, "slow");
		cfg.ring_size = 64u << 10;
		struct slow s = {0};
		struct ir_conn_cbs cbs = {.on_msg = slow_msg};
		struct ir_listener *ls;
		if (ir_listen(loop, tnet_backend(_i), tnet_addr(_i), &cfg, &cbs, &s, &ls) < 0)
			_exit(3);
		const char *a = ir_listener_addr(ls);
		if (write(p[1], a, strlen(a) + 1) < 0)
			_exit(4);
		ir_loop_run(loop);
		_exit(0);
	}
	tnet_track(pid);
	close(p[1]);
	char addr[256] = {0};
	ck_assert_int_gt(read(p[0], addr, sizeof(addr) - 1), 0);
	close(p[0]);

	struct cli k;
	memset(&k, 0, sizeof(k));
	ck_assert_int_eq(ir_loop_new(&k.loop), 0);
	struct ir_conn_cfg cfg;
	tnet_cfg(&cfg, "fast-sender");
	cfg.sndq_limit = 256u << 10;
	struct ir_conn_cbs cbs = {.on_open = cli_open,
				  .on_msg = ack_msg,
				  .on_writable = cli_writable,
				  .on_close = cli_close};
	ck_assert_int_eq(ir_dial(k.loop, tnet_backend(_i), addr, &cfg, &cbs, &k, &k.c), 0);
	ck_assert_int_eq(tnet_run(k.loop, k_open, &k, 5000), 0);

	const size_t len = 4096;
	const uint64_t total = test_light() ? 2048 : 16384; /* 64 MiB through a 64 KiB ring */
	uint8_t buf[4096];
	int eagain = 0;
	for (uint64_t seq = 0; seq < total; seq++) {
		struct ir_frame_hdr h;
		ir_frame_init(&h, IR_FRAME_DATA);
		h.request_id = seq;
		h.flags = seq == total - 1 ? IR_FRAME_F_LAST : 0;
		tnet_fill(buf, len, seq);
		struct iovec iov = {buf, len};
		int rc;
		while ((rc = ir_conn_send(k.c, &h, &iov, 1, NULL, NULL)) == -EAGAIN) {
			eagain++;
			k.writable = 0;
			ck_assert_int_eq(tnet_run(k.loop, k_writable, &k, 20000), 0);
		}
		ck_assert_int_ge(rc, 0);
		struct ir_conn_stats st;
		ir_conn_stats(k.c, &st);
		ck_assert_uint_le(st.sndq_bytes, cfg.sndq_limit + len);
	}
	k.sent = total;
	ck_assert_int_eq(tnet_run(k.loop, k_all, &k, 60000), 0);
	ck_assert_uint_eq(k.got, total);
	ck_assert_uint_eq(k.bad, 0);
	ck_assert_int_gt(eagain, 0); /* the stall did reach the sender */
	struct ir_conn_stats st;
	ir_conn_stats(k.c, &st);
	ck_assert_uint_le(st.sndq_peak, cfg.sndq_limit + len);
	cli_free(&k);
}
END_TEST

/* ---- a peer killed in the middle of a message ---- */

static void victim_main(int b, const char *addr, int ready_fd)
{
	struct cli k;
	memset(&k, 0, sizeof(k));
	ir_loop_new(&k.loop);
	struct ir_conn_cfg cfg;
	tnet_cfg(&cfg, "victim");
	if (ir_dial(k.loop, tnet_backend(b), addr, &cfg, &cli_cbs, &k, &k.c) < 0)
		_exit(1);
	if (tnet_run(k.loop, k_open, &k, 5000) < 0)
		_exit(2);
	size_t len = 48u << 20;
	uint8_t *buf = malloc(len);
	memset(buf, 0x5a, len);
	struct iovec iov = {buf, len};
	struct ir_frame_hdr h;
	hdr_for(&h, 0);
	if (ir_conn_send(k.c, &h, &iov, 1, free_cb, buf) != 0)
		_exit(3); /* must not have gone through whole: nobody reads */
	tnet_run_for(k.loop, 300);
	if (write(ready_fd, "v", 1) != 1)
		_exit(4);
	for (;;)
		ir_loop_run_once(k.loop, -1);
}

START_TEST(t_peer_killed)
{
	struct srv s;
	srv_start(&s, _i, 256u << 10, 0);
	tnet_log_capture();
	const char *addr = ir_listener_addr(s.ls);
	int ready[2], go[2], vready[2];
	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(vready), 0);

	/* A bystander that must be served before and after. */
	struct kids kd = {.n = 1, .left = 1};
	kd.pid[0] = spawn_client(_i, addr, "bystander", 200, go[0], ready[1]);
	char c;
	/* Serve the bystander's first phase until it says it is ready. */
	for (;;) {
		ir_loop_run_once(s.loop, 10000);
		struct timeval tv = {0, 0};
		fd_set fs;
		FD_ZERO(&fs);
		FD_SET(ready[0], &fs);
		if (select(ready[0] + 1, &fs, NULL, NULL, &tv) == 1)
			break;
	}
	ck_assert_int_eq(read(ready[0], &c, 1), 1);

	/* The victim connects, starts a 48 MiB frame and stalls: we do not read. */
	fflush(NULL);
	pid_t victim = fork();
	if (victim == 0)
		victim_main(_i, addr, vready[1]);
	tnet_track(victim);
	for (;;) {
		ir_loop_run_once(s.loop, 10000); /* handshake */
		if (s.victim)
			break;
	}
	ck_assert_int_eq(read(vready[0], &c, 1), 1);
	kill(victim, SIGKILL);
	ck_assert_int_eq(tnet_wait(victim, 5000), -1);

	/* The survivor reports it and keeps serving the bystander. */
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	ck_assert_int_eq(tnet_run(s.loop, kids_done, &kd, 30000), 0);
	ck_assert_int_eq(kd.status[0], 0);
	ck_assert_ptr_null(s.victim);
	ck_assert_int_eq(s.victim_err, -ECONNRESET);
	ck_assert_uint_eq(s.from_victim, 0);
	ck_assert_ptr_nonnull(strstr(tnet_log_text(), "middle"));
	ck_assert_ptr_nonnull(strstr(tnet_log_text(), "'victim'"));
	ir_log_set_sink(NULL, NULL);
	ir_listener_close(s.ls);
	ir_loop_free(s.loop);
}
END_TEST

/* ---- reconnect ---- */

START_TEST(t_reconnect)
{
	char addr[256], addr2[256];
	pid_t s1 = tnet_spawn_echo(_i, tnet_addr(_i), 0, addr, sizeof(addr));
	ck_assert_int_gt(s1, 0);
	struct cli k;
	cli_dial(&k, _i, addr, 1);
	for (int i = 0; i < 50; i++)
		cli_send(&k, k.sent, 100, 0);
	ck_assert_int_eq(tnet_run(k.loop, k_all, &k, 10000), 0);

	kill(s1, SIGKILL);
	tnet_wait(s1, 5000);
	for (int i = 0; i < 200 && !k.closed; i++)
		ir_loop_run_once(k.loop, 10000);
	ck_assert_int_eq(k.closed, 1);
	ck_assert(!ir_conn_is_open(k.c));
	/* Frames sent while the peer is away wait for the next connection. */
	for (int i = 0; i < 20; i++)
		cli_send(&k, k.sent, 1000 + (size_t)i, 0);
	struct ir_conn_stats st;
	ir_conn_stats(k.c, &st);
	uint64_t before = st.connects;
	tnet_run_for(k.loop, 300); /* a few failed attempts with backoff */
	ck_assert(!ir_conn_is_open(k.c));
	/* Backoff 10 ms doubling to 100 ms: ~5 attempts in 300 ms (30 without). */
	ir_conn_stats(k.c, &st);
	ck_assert_uint_ge(st.connects - before, 2);
	ck_assert_uint_le(st.connects - before, 12);

	pid_t s2 = tnet_spawn_echo(_i, addr, 0, addr2, sizeof(addr2));
	ck_assert_int_gt(s2, 0);
	ck_assert_str_eq(addr, addr2);
	ck_assert_int_eq(tnet_run(k.loop, k_got, &k, 10000), 0);
	ck_assert_int_eq(k.opened, 2);
	ck_assert_uint_eq(k.got, 70);
	ck_assert_uint_eq(k.bad, 0);
	ir_conn_stats(k.c, &st);
	ck_assert_uint_eq(st.reconnects, 1);
	cli_free(&k);
}
END_TEST

/* ---- bad HELLO ---- */

static int raw_connect(int b, const char *addr)
{
	char err[256];
	int fd = b == 0 ? ir_sock_unix_connect(addr, err, sizeof(err))
			: ir_sock_tcp_connect(addr, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	return fd;
}

static void raw_write(int fd, const void *buf, size_t len)
{
	ck_assert_int_eq(ir_stream_write_all(fd, buf, len, NULL, 0), 0);
}

/* Read everything the server sent so far (non-blocking); -1 at EOF. */
static ssize_t raw_read(int fd, uint8_t *buf, size_t cap)
{
	ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
	if (n == 0)
		return -1;
	return n < 0 ? 0 : n;
}

/* Run the server until it closes raw socket @fd (EOF seen): 1, or 0 if it
 * stays open for @rounds loop iterations. */
static int raw_wait_eof(struct srv *s, int fd, int rounds)
{
	uint8_t buf[4096];
	for (int i = 0; i < rounds; i++) {
		ir_loop_run_once(s->loop, 10000);
		if (raw_read(fd, buf, sizeof(buf)) < 0)
			return 1;
	}
	return 0;
}

static int srv_closed_one(void *a)
{
	return ((struct srv *)a)->closed > 0;
}

/* Handshake with token @tok from a raw socket; then send @after bytes. */
static int raw_handshake(struct srv *s, int fd, const char *tok, const uint8_t *after, size_t alen)
{
	struct ir_hello h;
	ck_assert_int_eq(ir_hello_start(&h, (const uint8_t *)tok, strlen(tok), "intruder", 0), 0);
	raw_write(fd, h.out, h.out_len);
	h.out_len = 0;
	uint8_t buf[4096];
	size_t have = 0;
	int eof = 0;
	for (int i = 0; i < 100 && have < IR_FRAME_HDR_SIZE + 2 + IR_HELLO_NONCE; i++) {
		ir_loop_run_once(s->loop, 10000);
		ssize_t n = raw_read(fd, buf + have, sizeof(buf) - have);
		if (n < 0)
			return -1;
		have += (size_t)n;
	}
	struct ir_frame_hdr fh;
	ck_assert_int_eq(ir_frame_decode(buf, have, 1 << 20, &fh), 0);
	ck_assert_int_eq(fh.type, IR_FRAME_HELLO);
	const char *why;
	ck_assert_int_eq(ir_hello_input(&h, &fh, buf + IR_FRAME_HDR_SIZE, &why), 0);
	ck_assert_uint_gt(h.out_len, 0);
	raw_write(fd, h.out, h.out_len);
	if (alen)
		raw_write(fd, after, alen);
	for (int i = 0; i < 50 && !eof; i++) {
		ir_loop_run_once(s->loop, 10000);
		eof = raw_read(fd, buf, sizeof(buf)) < 0;
	}
	return eof;
}

static size_t data_frame(uint8_t *out, size_t plen)
{
	struct ir_frame_hdr h;
	hdr_for(&h, 1);
	h.payload_len = (uint32_t)plen;
	ir_frame_encode(&h, out);
	memset(out + IR_FRAME_HDR_SIZE, 'd', plen);
	return IR_FRAME_HDR_SIZE + plen;
}

START_TEST(t_bad_hello)
{
	struct srv s;
	srv_start(&s, _i, 0, 0);
	const char *addr = ir_listener_addr(s.ls);
	tnet_log_capture();

	/* 1. The library with a wrong token: the dialer is told, nothing opens. */
	struct cli k;
	memset(&k, 0, sizeof(k));
	k.loop = s.loop;
	struct ir_conn_cfg cfg;
	tnet_cfg(&cfg, "wrong-token");
	cfg.token = (const uint8_t *)"not-the-token";
	cfg.token_len = 13;
	ck_assert_int_eq(ir_dial(s.loop, tnet_backend(_i), addr, &cfg, &cli_cbs, &k, &k.c), 0);
	ck_assert_int_eq(tnet_run(s.loop, k_open, &k, 5000), 0);
	ck_assert_int_eq(k.opened, 0);
	ck_assert_int_eq(k.closed, 1);
	ck_assert_int_eq(s.opened, 0);
	ck_assert_ptr_nonnull(strstr(tnet_log_text(), "authentication failed"));
	ck_assert_ptr_nonnull(strstr(tnet_log_text(), "'wrong-token'"));
	ck_assert_ptr_nonnull(strstr(tnet_log_text(), _i == 0 ? "ipc pid" : "tcp 127.0.0.1:"));

	/* 2. A raw peer with a wrong token pipelines a DATA frame: never delivered. */
	uint8_t frame[IR_FRAME_HDR_SIZE + 32];
	size_t flen = data_frame(frame, 32);
	int fd = raw_connect(_i, addr);
	ck_assert_int_eq(raw_handshake(&s, fd, "bad-token", frame, flen), 1);
	close(fd);

	/* 3. DATA before any HELLO. */
	fd = raw_connect(_i, addr);
	raw_write(fd, frame, flen);
	ck_assert_int_eq(raw_wait_eof(&s, fd, 100), 1);
	close(fd);

	/* 4. Garbage instead of a frame: counted as a bad frame. */
	fd = raw_connect(_i, addr);
	uint8_t junk[128];
	memset(junk, 0xab, sizeof(junk));
	raw_write(fd, junk, sizeof(junk));
	ck_assert_int_eq(raw_wait_eof(&s, fd, 100), 1);
	close(fd);

	/* 5. A peer that never finishes the handshake times out. */
	fd = raw_connect(_i, addr);
	ck_assert_int_eq(raw_wait_eof(&s, fd, 200), 1);
	close(fd);

	/* 6. The right token still gets in (tcp: and its frame is delivered;
	 * ipc data never travels on the control socket). */
	fd = raw_connect(_i, addr);
	ck_assert_int_eq(raw_handshake(&s, fd, TNET_TOKEN, frame, _i == 1 ? flen : 0), 0);
	for (int i = 0; i < 50 && s.msgs < (uint64_t)_i; i++)
		ir_loop_run_once(s.loop, 10000);
	ck_assert_uint_eq(s.msgs, (uint64_t)_i);
	close(fd);
	tnet_run(s.loop, srv_closed_one, &s, 2000);

	struct ir_listener_stats ls;
	ir_listener_stats(s.ls, &ls);
	ck_assert_uint_eq(ls.auth_failed, 4); /* 1, 2, 3 and 5 */
	ck_assert_uint_eq(ls.bad_frames, 1);  /* 4 */
	ck_assert_uint_eq(ls.accepted, 1);    /* 6 */
	ck_assert_int_eq(s.opened, 1);
	ck_assert_ptr_nonnull(strstr(tnet_log_text(), "'intruder'"));
	ck_assert_ptr_nonnull(strstr(tnet_log_text(), "timed out"));
	ir_log_set_sink(NULL, NULL);
	ir_listener_close(s.ls);
	ir_loop_free(s.loop);
}
END_TEST

/* ---- corrupted frames ---- */

enum corruption { C_CRC, C_MAGIC, C_TOOBIG, C_TYPE, C_RECORD, C_N };

START_TEST(t_corrupt)
{
	int b = _i / C_N, kind = _i % C_N;
	if (kind == C_RECORD && b != 0)
		return; /* ring records exist only on ipc */
	struct srv s;
	srv_start(&s, b, 0, 1u << 20);
	s.echo = 0;
	tnet_log_capture();
	struct cli k;
	memset(&k, 0, sizeof(k));
	k.loop = s.loop;
	struct ir_conn_cfg cfg;
	tnet_cfg(&cfg, "corrupter");
	ck_assert_int_eq(
	    ir_dial(s.loop, tnet_backend(b), ir_listener_addr(s.ls), &cfg, &cli_cbs, &k, &k.c), 0);
	ck_assert_int_eq(tnet_run(s.loop, k_open, &k, 5000), 0);
	ck_assert_int_eq(k.opened, 1);

	cli_send(&k, 0, 10, 0); /* a good one first: delivered */
	for (int i = 0; i < 20 && !s.msgs; i++)
		ir_loop_run_once(s.loop, 10000);
	ck_assert_uint_eq(s.msgs, 1);

	uint8_t f[IR_FRAME_HDR_SIZE + 16];
	struct ir_frame_hdr h;
	hdr_for(&h, 1);
	h.payload_len = 16;
	uint32_t rflags = 3; /* FIRST|LAST */
	size_t flen = sizeof(f);
	ir_frame_encode(&h, f);
	memset(f + IR_FRAME_HDR_SIZE, 'x', 16);
	switch (kind) {
	case C_CRC:
		f[20] ^= 0x10;
		break;
	case C_MAGIC:
		f[0] = 'X';
		break;
	case C_TOOBIG:
		h.payload_len = 2u << 20; /* valid header, over the receiver's cap */
		ir_frame_encode(&h, f);
		flen = IR_FRAME_HDR_SIZE;
		break;
	case C_TYPE:
		f[3] = 0x77;
		f[8] = f[9] = f[10] = f[11] = 0;
		{
			uint32_t crc = ir_crc32c(0, f, IR_FRAME_HDR_SIZE);
			f[8] = (uint8_t)crc;
			f[9] = (uint8_t)(crc >> 8);
			f[10] = (uint8_t)(crc >> 16);
			f[11] = (uint8_t)(crc >> 24);
		}
		break;
	case C_RECORD:
		rflags = 2; /* LAST without FIRST: continues nothing */
		break;
	}
	ck_assert_int_eq(ir__conn_inject(k.c, f, flen, rflags), 0);
	cli_send(&k, 2, 10, 0); /* never delivered: the connection is gone */
	for (int i = 0; i < 100 && !(s.closed && k.closed); i++)
		ir_loop_run_once(s.loop, 10000);
	ck_assert_int_eq(s.closed, 1);
	ck_assert_int_eq(s.last_err, -EPROTO);
	ck_assert_int_eq(k.closed, 1);
	ck_assert_uint_eq(s.msgs, 1);
	struct ir_listener_stats ls;
	ir_listener_stats(s.ls, &ls);
	ck_assert_uint_eq(ls.bad_frames, 1);
	ck_assert_ptr_nonnull(strstr(tnet_log_text(), "bad frame from"));
	ir_log_set_sink(NULL, NULL);
	ir_listener_close(s.ls);
	ir_loop_free(s.loop);
}
END_TEST

/* ---- zero-copy reserve/publish, and closing inside callbacks ---- */

START_TEST(t_zero_copy)
{
	struct srv s;
	srv_start(&s, _i, 4u << 20, 0);
	s.echo = 0;
	s.check_shm = 1;
	struct cli k;
	memset(&k, 0, sizeof(k));
	k.loop = s.loop;
	struct ir_conn_cfg cfg;
	tnet_cfg(&cfg, "zc");
	ck_assert_int_eq(
	    ir_dial(s.loop, tnet_backend(_i), ir_listener_addr(s.ls), &cfg, &cli_cbs, &k, &k.c), 0);
	ck_assert_int_eq(tnet_run(s.loop, k_open, &k, 5000), 0);
	ck_assert_int_eq(k.opened, 1);
	static const size_t sizes[] = {0, 100, 65536, 1u << 20, 3u << 20};
	for (size_t i = 0; i < 5; i++) {
		void *p;
		int rc;
		while ((rc = ir_conn_reserve(k.c, sizes[i], &p)) == -EAGAIN)
			ir_loop_run_once(s.loop, 10000);
		ck_assert_int_eq(rc, 0);
		struct ir_frame_hdr h;
		hdr_for(&h, i);
		ck_assert_int_eq(ir_conn_send(k.c, &h, NULL, 0, NULL, NULL), -EBUSY);
		tnet_fill(p, sizes[i], 1000 + i);
		ck_assert_int_eq(ir_conn_publish(k.c, &h, sizes[i]), 0);
		uint64_t want = i + 1;
		for (int j = 0; j < 200 && s.msgs < want; j++)
			ir_loop_run_once(s.loop, 10000);
		ck_assert_uint_eq(s.msgs, want);
	}
	/* ipc: every payload was read where the sender built it (zero copy). */
	ck_assert_uint_eq(s.in_shm, _i == 0 ? 4 : 0);
	void *p;
	if (_i == 0) /* a frame larger than the ring cannot be built in place */
		ck_assert_int_eq(ir_conn_reserve(k.c, 5u << 20, &p), -EMSGSIZE);
	ck_assert_int_eq(ir_conn_reserve(k.c, 10, &p), 0);
	ir_conn_unreserve(k.c);
	s.close_on_msg = 1;
	cli_send(&k, 99, 10, 0);
	for (int j = 0; j < 100 && !k.closed; j++)
		ir_loop_run_once(s.loop, 10000);
	ck_assert_int_eq(k.closed, 1);
	ck_assert_uint_eq(s.msgs, 6);
	ir_listener_close(s.ls);
	ir_loop_free(s.loop);
}
END_TEST

Suite *transport_suite(void)
{
	Suite *s = suite_create("transport");
	struct {
		const char *name;
		const TTest *fn;
		int n;
		int timeout;
	} cases[] = {
	    {"sizes", t_sizes, NB, 240},
	    {"order", t_order_burst, NB, 120},
	    {"many_peers", t_many_peers, NB, 120},
	    {"slow_receiver", t_slow_receiver, NB, 120},
	    {"peer_killed", t_peer_killed, NB, 60},
	    {"reconnect", t_reconnect, NB, 60},
	    {"bad_hello", t_bad_hello, NB, 60},
	    {"corrupt", t_corrupt, NB * C_N, 30},
	    {"zero_copy", t_zero_copy, NB, 30},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_set_timeout(tc, cases[i].timeout);
		tcase_add_checked_fixture(tc, NULL, teardown);
		tcase_add_loop_test(tc, cases[i].fn, 0, cases[i].n);
		suite_add_tcase(s, tc);
	}
	return s;
}
