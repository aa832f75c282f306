/* test_loop.c - the event loop: fd readiness and deletion, timers, posts, stop, spin pollers.
 *
 * Every test ends in finish(), which asserts that the kernel's epoll set holds
 * only the loop's own eventfd (read from /proc/self/fdinfo, so a registration
 * the loop forgot cannot hide) and that an extra iteration finds nothing to
 * do.  Timing is only ever checked with generous bounds: the suite runs on
 * small shared VMs and under valgrind.  Where the loop's behaviour depends on
 * time (the adaptive spin budget), the test makes the interval unambiguous
 * (a 20 ms sleep against a 2 ms maximum) instead of racing the clock.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "iroute/loop.h"
#include "tests.h"

/* ---- helpers ---- */

/* Registrations in every epoll set of this process (one loop per test). */
static int epoll_registrations(void)
{
	DIR *d = opendir("/proc/self/fd");
	ck_assert_ptr_nonnull(d);
	int total = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char path[320], link[64];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = '\0';
		if (strcmp(link, "anon_inode:[eventpoll]") != 0)
			continue;
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%s", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		char line[256];
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "tfd:", 4))
				total++;
		fclose(f);
	}
	closedir(d);
	return total;
}

static struct ir_loop *new_loop(void)
{
	struct ir_loop *loop = NULL;
	ck_assert_int_eq(ir_loop_new(&loop), 0);
	ck_assert_ptr_nonnull(loop);
	ck_assert_int_eq(epoll_registrations(), 1);
	return loop;
}

/* Nothing left registered or pending, then free. */
static void finish(struct ir_loop *loop)
{
	ck_assert_int_eq(epoll_registrations(), 1); /* the loop's own eventfd */
	ck_assert_int_eq(ir_loop_run_once(loop, 0), 0);
	ir_loop_free(loop);
	ck_assert_int_eq(epoll_registrations(), 0);
}

static int new_eventfd(void)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	return fd;
}

static void ring(int fd)
{
	uint64_t one = 1;
	ck_assert_int_eq(write(fd, &one, sizeof(one)), sizeof(one));
}

static void drain(int fd)
{
	uint64_t v;
	ssize_t r = read(fd, &v, sizeof(v));
	(void)r;
}

static void sleep_us(uint64_t us)
{
	struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Records the calls of an fd callback. */
struct fd_rec {
	int calls;
	int fd;
	unsigned events;
	void *arg;
	int drain;    /* read the eventfd in the callback */
	int del_self; /* ir_loop_del_fd() on the own fd */
};

static void rec_cb(struct ir_loop *loop, int fd, unsigned events, void *arg)
{
	struct fd_rec *r = arg;
	r->calls++;
	r->fd = fd;
	r->events = events;
	r->arg = arg;
	if (r->drain)
		drain(fd);
	if (r->del_self)
		ir_loop_del_fd(loop, fd);
}

/* ---- fds ---- */

START_TEST(fd_eventfd_readiness)
{
	struct ir_loop *loop = new_loop();
	int fd = new_eventfd();
	struct fd_rec r = {.drain = 1};
	ck_assert_int_eq(ir_loop_add_fd(loop, fd, IR_EV_READ, rec_cb, &r), 0);

	ck_assert_int_eq(ir_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(r.calls, 0);
	uint64_t t0 = ir_now_us();
	ck_assert_int_eq(ir_loop_run_once(loop, 20000), 0); /* times out */
	ck_assert_uint_ge(ir_now_us() - t0, 19000);

	ring(fd);
	ck_assert_int_eq(ir_loop_run_once(loop, 5000000), 1);
	ck_assert_int_eq(r.calls, 1);
	ck_assert_int_eq(r.fd, fd);
	ck_assert_uint_eq(r.events, IR_EV_READ);
	ck_assert_ptr_eq(r.arg, &r);
	ck_assert_int_eq(ir_loop_run_once(loop, 0), 0); /* drained: level-triggered, quiet */
	ck_assert_int_eq(r.calls, 1);

	ir_loop_del_fd(loop, fd);
	ir_loop_del_fd(loop, fd); /* twice is harmless */
	ring(fd);
	ck_assert_int_eq(ir_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(r.calls, 1);
	close(fd);
	finish(loop);
}
END_TEST

START_TEST(fd_pipe_write_mod_and_errors)
{
	struct ir_loop *loop = new_loop();
	int p[2];
	ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	struct fd_rec w = {0};
	ck_assert_int_eq(ir_loop_add_fd(loop, p[1], IR_EV_WRITE, rec_cb, &w), 0);
	ck_assert_int_eq(ir_loop_run_once(loop, 0), 1);
	ck_assert_uint_eq(w.events, IR_EV_WRITE);
	ck_assert_int_eq(ir_loop_run_once(loop, 0), 1); /* level-triggered: again */
	ck_assert_int_eq(w.calls, 2);

	ck_assert_int_eq(ir_loop_mod_fd(loop, p[1], IR_EV_READ), 0); /* never readable */
	ck_assert_int_eq(ir_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(w.calls, 2);
	ck_assert_int_eq(ir_loop_mod_fd(loop, p[1], IR_EV_READ | IR_EV_WRITE), 0);
	ck_assert_int_eq(ir_loop_run_once(loop, 0), 1);
	ck_assert_uint_eq(w.events, IR_EV_WRITE);

	/* Contract errors. */
	struct fd_rec dummy = {0};
	ck_assert_int_eq(ir_loop_add_fd(loop, p[1], IR_EV_READ, rec_cb, &dummy), -EEXIST);
	ck_assert_int_eq(ir_loop_mod_fd(loop, p[0], IR_EV_READ), -ENOENT);
	ck_assert_int_eq(ir_loop_mod_fd(loop, -1, IR_EV_READ), -ENOENT);
	ck_assert_int_eq(ir_loop_mod_fd(loop, 1 << 20, IR_EV_READ), -ENOENT);
	ck_assert_int_eq(ir_loop_add_fd(loop, -1, IR_EV_READ, rec_cb, &dummy), -EBADF);
	ck_assert_int_eq(ir_loop_add_fd(loop, p[0], IR_EV_READ, NULL, &dummy), -EINVAL);
	ck_assert_int_eq(ir_loop_add_fd(loop, p[0], 0x80, rec_cb, &dummy), -EINVAL);
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(devnull, 0);
	ck_assert_int_eq(ir_loop_add_fd(loop, devnull, IR_EV_READ, rec_cb, &dummy), -EPERM);
	close(devnull);
	int closed = new_eventfd();
	close(closed);
	ck_assert_int_eq(ir_loop_add_fd(loop, closed, IR_EV_READ, rec_cb, &dummy), -EBADF);
	ck_assert_int_eq(dummy.calls, 0);

	ir_loop_del_fd(loop, p[1]);
	close(p[0]);
	close(p[1]);
	finish(loop);
}
END_TEST

START_TEST(fd_hangup_reports_error)
{
	struct ir_loop *loop = new_loop();
	/* Pipe whose writer closed: EPOLLHUP. */
	int p[2];
	ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	struct fd_rec r = {0};
	ck_assert_int_eq(ir_loop_add_fd(loop, p[0], IR_EV_READ, rec_cb, &r), 0);
	ck_assert_int_eq(ir_loop_run_once(loop, 0), 0);
	close(p[1]);
	ck_assert_int_eq(ir_loop_run_once(loop, 5000000), 1);
	ck_assert_uint_eq(r.events & IR_EV_ERROR, IR_EV_ERROR);
	ir_loop_del_fd(loop, p[0]);
	close(p[0]);

	/* Socket whose peer shut down its write side: EPOLLRDHUP, still readable. */
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct fd_rec s = {0};
	ck_assert_int_eq(ir_loop_add_fd(loop, sv[0], IR_EV_READ, rec_cb, &s), 0);
	ck_assert_int_eq(ir_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
	ck_assert_int_eq(ir_loop_run_once(loop, 5000000), 1);
	ck_assert_uint_eq(s.events, IR_EV_READ | IR_EV_ERROR);

	/* Error is reported even without any interest. */
	ck_assert_int_eq(ir_loop_mod_fd(loop, sv[0], 0), 0);
	close(sv[1]);
	ck_assert_int_eq(ir_loop_run_once(loop, 5000000), 1);
	ck_assert_uint_eq(s.events, IR_EV_ERROR);
	ir_loop_del_fd(loop, sv[0]);
	close(sv[0]);
	finish(loop);
}
END_TEST

START_TEST(fd_del_own_in_callback)
{
	struct ir_loop *loop = new_loop();
	int fd = new_eventfd();
	struct fd_rec r = {.del_self = 1};
	ck_assert_int_eq(ir_loop_add_fd(loop, fd, IR_EV_READ, rec_cb, &r), 0);
	ring(fd); /* never drained: stays readable */
	ck_assert_int_eq(ir_loop_run_once(loop, 5000000), 1);
	ck_assert_int_eq(r.calls, 1);
	ck_assert_int_eq(ir_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(r.calls, 1);
	/* And it can be added again. */
	r.del_self = 0;
	r.drain = 1;
	ck_assert_int_eq(ir_loop_add_fd(loop, fd, IR_EV_READ, rec_cb, &r), 0);
	ck_assert_int_eq(ir_loop_run_once(loop, 5000000), 1);
	ck_assert_int_eq(r.calls, 2);
	ir_loop_del_fd(loop, fd);
	close(fd);
	finish(loop);
}
END_TEST

/* Two readable eventfds; whichever callback runs first deletes and closes the
 * other, then opens a new eventfd - which gets the closed one's number - and
 * registers it.  The event epoll already returned for the old fd must reach
 * neither the old callback nor the new registration. */
struct pair {
	int fd[2];
	int calls;
	int closed;
	int reused;
	int new_calls;
};

static void pair_new_cb(struct ir_loop *loop, int fd, unsigned events, void *arg)
{
	(void)loop;
	(void)events;
	struct pair *p = arg;
	p->new_calls++;
	drain(fd);
}

static void pair_cb(struct ir_loop *loop, int fd, unsigned events, void *arg)
{
	(void)events;
	struct pair *p = arg;
	p->calls++;
	if (p->closed >= 0)
		return;
	int other = fd == p->fd[0] ? p->fd[1] : p->fd[0];
	ir_loop_del_fd(loop, other);
	close(other);
	p->closed = other;
	p->reused = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ck_assert_int_eq(ir_loop_add_fd(loop, p->reused, IR_EV_READ, pair_new_cb, p), 0);
}

START_TEST(fd_del_other_pending)
{
	struct ir_loop *loop = new_loop();
	struct pair p = {.closed = -1, .reused = -1};
	for (int i = 0; i < 2; i++) {
		p.fd[i] = new_eventfd();
		ck_assert_int_eq(ir_loop_add_fd(loop, p.fd[i], IR_EV_READ, pair_cb, &p), 0);
		ring(p.fd[i]);
	}
	ck_assert_int_eq(ir_loop_run_once(loop, 5000000), 1);
	ck_assert_int_eq(p.calls, 1);
	ck_assert_int_eq(p.new_calls, 0);
	ck_assert_int_eq(p.reused, p.closed); /* the stale event named this very fd */

	ring(p.reused);
	ck_assert_int_eq(ir_loop_run_once(loop, 5000000), 2); /* survivor + new one */
	ck_assert_int_eq(p.new_calls, 1);
	ck_assert_int_eq(p.calls, 2);

	int survivor = p.closed == p.fd[0] ? p.fd[1] : p.fd[0];
	ir_loop_del_fd(loop, survivor);
	ir_loop_del_fd(loop, p.reused);
	close(survivor);
	close(p.reused);
	finish(loop);
}
END_TEST

/* Same race with ir_loop_mod_fd(): the first callback takes the read
 * interest away from the other fd, whose event is already pending. */
static void unwatch_cb(struct ir_loop *loop, int fd, unsigned events, void *arg)
{
	(void)events;
	struct pair *p = arg;
	p->calls++;
	int other = fd == p->fd[0] ? p->fd[1] : p->fd[0];
	ck_assert_int_eq(ir_loop_mod_fd(loop, other, 0), 0);
	ck_assert_int_eq(ir_loop_mod_fd(loop, fd, 0), 0);
}

START_TEST(fd_mod_other_pending)
{
	struct ir_loop *loop = new_loop();
	struct pair p = {.closed = -1, .reused = -1};
	for (int i = 0; i < 2; i++) {
		p.fd[i] = new_eventfd();
		ck_assert_int_eq(ir_loop_add_fd(loop, p.fd[i], IR_EV_READ, unwatch_cb, &p), 0);
		ring(p.fd[i]);
	}
	ck_assert_int_eq(ir_loop_run_once(loop, 5000000), 1);
	ck_assert_int_eq(p.calls, 1);
	ck_assert_int_eq(ir_loop_run_once(loop, 0), 0);
	for (int i = 0; i < 2; i++) {
		ir_loop_del_fd(loop, p.fd[i]);
		close(p.fd[i]);
	}
	finish(loop);
}
END_TEST

START_TEST(fd_table_grows)
{
	struct ir_loop *loop = new_loop();
	int low = new_eventfd();
	int high = fcntl(low, F_DUPFD_CLOEXEC, 700);
	ck_assert_int_ge(high, 700);
	close(low);
	struct fd_rec r = {.drain = 1};
	ck_assert_int_eq(ir_loop_add_fd(loop, high, IR_EV_READ, rec_cb, &r), 0);
	ring(high);
	ck_assert_int_eq(ir_loop_run_once(loop, 5000000), 1);
	ck_assert_int_eq(r.fd, high);
	ir_loop_del_fd(loop, high);
	close(high);
	finish(loop);
}
END_TEST

/* ---- timers ---- */

struct order {
	int seq[16];
	uint64_t at[16];
	int n;
};

struct order_arg {
	struct order *o;
	int tag;
};

static void order_cb(struct ir_loop *loop, void *arg)
{
	(void)loop;
	struct order_arg *a = arg;
	a->o->at[a->o->n] = ir_now_us();
	a->o->seq[a->o->n++] = a->tag;
}

START_TEST(timer_deadline_order)
{
	struct ir_loop *loop = new_loop();
	struct order o = {0};
	static const uint64_t delay[] = {30000, 10000, 20000, 0, 10000};
	static const int expect[] = {3, 1, 4, 2, 0}; /* equal deadlines: first added first */
	struct order_arg a[5];
	uint64_t t0 = ir_now_us();
	for (int i = 0; i < 5; i++) {
		a[i] = (struct order_arg){&o, i};
		ck_assert_uint_gt(ir_loop_timer_add(loop, delay[i], order_cb, &a[i]), 0);
	}
	for (int i = 0; i < 100 && o.n < 5; i++)
		ck_assert_int_ge(ir_loop_run_once(loop, -1), 0);
	ck_assert_int_eq(o.n, 5);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(o.seq[i], expect[i]);
		ck_assert_uint_ge(o.at[i] - t0, delay[o.seq[i]]); /* never early */
	}
	finish(loop);
}
END_TEST

struct cancel_ctx {
	uint64_t victim;
	int rc;
	int fired[4];
};

static void cancel_fired_cb(struct ir_loop *loop, void *arg)
{
	(void)loop;
	int *slot = arg;
	(*slot)++;
}

static struct cancel_ctx *cancel_ctx_of;

static void canceller_cb(struct ir_loop *loop, void *arg)
{
	cancel_ctx_of->rc = ir_loop_timer_cancel(loop, cancel_ctx_of->victim);
	cancel_fired_cb(loop, arg);
}

START_TEST(timer_cancel)
{
	struct ir_loop *loop = new_loop();
	struct cancel_ctx c = {.rc = 1};
	cancel_ctx_of = &c;
	uint64_t a = ir_loop_timer_add(loop, 15000, cancel_fired_cb, &c.fired[0]);
	uint64_t b = ir_loop_timer_add(loop, 20000, cancel_fired_cb, &c.fired[1]);
	uint64_t k = ir_loop_timer_add(loop, 5000, canceller_cb, &c.fired[2]);
	uint64_t d = ir_loop_timer_add(loop, 30000, cancel_fired_cb, &c.fired[3]);
	ck_assert(a > 0 && b > a && k > b && d > k); /* increasing ids */
	c.victim = a;

	ck_assert_int_eq(ir_loop_timer_cancel(loop, b), 0);
	ck_assert_int_eq(ir_loop_timer_cancel(loop, b), -ENOENT);
	ck_assert_int_eq(ir_loop_timer_cancel(loop, 0), -ENOENT);
	ck_assert_int_eq(ir_loop_timer_cancel(loop, d + 1000), -ENOENT);
	ck_assert_uint_eq(ir_loop_timer_add(loop, 0, NULL, NULL), 0);

	for (int i = 0; i < 100 && !c.fired[3]; i++)
		ck_assert_int_ge(ir_loop_run_once(loop, -1), 0);
	ck_assert_int_eq(c.rc, 0); /* cancelled from inside another timer */
	ck_assert_int_eq(c.fired[0], 0);
	ck_assert_int_eq(c.fired[1], 0);
	ck_assert_int_eq(c.fired[2], 1);
	ck_assert_int_eq(c.fired[3], 1);
	ck_assert_int_eq(ir_loop_timer_cancel(loop, k), -ENOENT); /* already ran */
	ck_assert_int_eq(ir_loop_timer_cancel(loop, d), -ENOENT);
	finish(loop);
}
END_TEST

struct rearm {
	int fired;
	int limit;
	uint64_t id;
};

static void rearm_cb(struct ir_loop *loop, void *arg)
{
	struct rearm *r = arg;
	r->fired++;
	/* Cancelling the running timer: it already left the heap. */
	ck_assert_int_eq(ir_loop_timer_cancel(loop, r->id), -ENOENT);
	if (r->fired < r->limit) {
		uint64_t id = ir_loop_timer_add(loop, 0, rearm_cb, r);
		ck_assert_uint_gt(id, r->id);
		r->id = id;
	}
}

START_TEST(timer_rearms_itself)
{
	struct ir_loop *loop = new_loop();
	struct rearm r = {.limit = 100};
	r.id = ir_loop_timer_add(loop, 0, rearm_cb, &r);
	ck_assert_uint_gt(r.id, 0);
	/* A delay-0 timer added by a callback runs in the next iteration. */
	for (int i = 1; i <= 100; i++) {
		ck_assert_int_eq(ir_loop_run_once(loop, 1000000), 1);
		ck_assert_int_eq(r.fired, i);
	}
	ck_assert_int_eq(ir_loop_timer_cancel(loop, r.id), -ENOENT);
	finish(loop);
}
END_TEST

/* Many timers with random delays; a third cancelled up front, and every
 * firing cancels another timer picked at random.  The loop's own deadline is
 * somewhere in [lo + delay, hi + delay] of the add call, so firing in order
 * means: no timer fires before one whose earliest deadline is later than its
 * own latest. */
struct many {
	struct ir_loop *loop;
	int n;
	uint64_t *id;
	uint64_t *lo, *hi, *delay;
	unsigned char *state; /* 0 pending, 1 fired, 2 cancelled */
	uint64_t max_lo;      /* max lo + delay over the fired timers */
	int fired, cancelled, disorder, early, bad_cancel;
	uint64_t rng;
};

static uint64_t many_rng(struct many *m)
{
	m->rng ^= m->rng >> 12;
	m->rng ^= m->rng << 25;
	m->rng ^= m->rng >> 27;
	return m->rng * 0x2545f4914f6cdd1dull;
}

static void many_cancel(struct many *m, int j)
{
	int rc = ir_loop_timer_cancel(m->loop, m->id[j]);
	if (rc != (m->state[j] == 0 ? 0 : -ENOENT))
		m->bad_cancel++;
	if (m->state[j] == 0) {
		m->state[j] = 2;
		m->cancelled++;
	}
}

static struct many *many_of;

static void many_cb(struct ir_loop *loop, void *arg)
{
	(void)loop;
	struct many *m = many_of;
	int i = (int)(intptr_t)arg;
	uint64_t now = ir_now_us();
	if (m->state[i] != 0)
		m->disorder++; /* fired twice or after cancel */
	m->state[i] = 1;
	m->fired++;
	if (now < m->lo[i] + m->delay[i])
		m->early++;
	if (m->max_lo > m->hi[i] + m->delay[i])
		m->disorder++;
	if (m->lo[i] + m->delay[i] > m->max_lo)
		m->max_lo = m->lo[i] + m->delay[i];
	many_cancel(m, (int)(many_rng(m) % (uint64_t)m->n));
}

START_TEST(timer_many_random)
{
	struct ir_loop *loop = new_loop();
	struct many m = {.loop = loop, .n = 10000, .rng = 0x9e3779b97f4a7c15ull};
	many_of = &m;
	m.id = calloc((size_t)m.n, sizeof(*m.id));
	m.lo = calloc((size_t)m.n, sizeof(*m.lo));
	m.hi = calloc((size_t)m.n, sizeof(*m.hi));
	m.delay = calloc((size_t)m.n, sizeof(*m.delay));
	m.state = calloc((size_t)m.n, 1);
	ck_assert(m.id && m.lo && m.hi && m.delay && m.state);
	for (int i = 0; i < m.n; i++) {
		m.delay[i] = many_rng(&m) % 200000;
		if (i % 10 == 0)
			m.delay[i] = m.delay[i - i % 20]; /* some equal delays */
		m.lo[i] = ir_now_us();
		m.id[i] = ir_loop_timer_add(loop, m.delay[i], many_cb, (void *)(intptr_t)i);
		m.hi[i] = ir_now_us();
		ck_assert_uint_gt(m.id[i], i ? m.id[i - 1] : 0);
	}
	for (int i = 0; i < m.n; i += 3)
		many_cancel(&m, i);
	for (int i = 0; i < 100000 && m.fired + m.cancelled < m.n; i++)
		ck_assert_int_ge(ir_loop_run_once(loop, -1), 0);
	ck_assert_int_eq(m.fired + m.cancelled, m.n);
	ck_assert_int_gt(m.fired, m.n / 3);
	ck_assert_int_eq(m.disorder, 0);
	ck_assert_int_eq(m.early, 0);
	ck_assert_int_eq(m.bad_cancel, 0);
	for (int i = 0; i < m.n; i++)
		ck_assert_int_eq(ir_loop_timer_cancel(loop, m.id[i]), -ENOENT);
	free(m.id);
	free(m.lo);
	free(m.hi);
	free(m.delay);
	free(m.state);
	finish(loop);
}
END_TEST

/* ---- posts and stop ---- */

#define POST_THREADS 4

struct posts {
	struct ir_loop *loop;
	pthread_t loop_thread;
	int per_thread;
	int next[POST_THREADS];
	int total;
	int wrong_thread, disorder;
	atomic_int post_errors;
};

struct poster {
	struct posts *p;
	int t;
};

static struct posts *posts_of;

static void counted_post_cb(struct ir_loop *loop, void *arg)
{
	struct posts *p = posts_of;
	uintptr_t v = (uintptr_t)arg;
	int t = (int)(v >> 24), seq = (int)(v & 0xffffff);
	if (!pthread_equal(pthread_self(), p->loop_thread))
		p->wrong_thread++;
	if (t >= POST_THREADS || seq != p->next[t])
		p->disorder++;
	else
		p->next[t]++;
	if (++p->total == POST_THREADS * p->per_thread)
		ir_loop_stop(loop);
}

static void *poster_main(void *arg)
{
	struct poster *w = arg;
	for (int i = 0; i < w->p->per_thread; i++) {
		uintptr_t v = (uintptr_t)w->t << 24 | (uintptr_t)i;
		if (ir_loop_post(w->p->loop, counted_post_cb, (void *)v) != 0)
			atomic_fetch_add(&w->p->post_errors, 1);
	}
	return NULL;
}

START_TEST(post_from_threads_fifo)
{
	struct ir_loop *loop = new_loop();
	struct posts p = {.loop = loop, .loop_thread = pthread_self()};
	p.per_thread = test_light() ? 2000 : 10000;
	atomic_init(&p.post_errors, 0);
	posts_of = &p;
	struct poster w[POST_THREADS];
	pthread_t th[POST_THREADS];
	for (int t = 0; t < POST_THREADS; t++) {
		w[t] = (struct poster){&p, t};
		ck_assert_int_eq(pthread_create(&th[t], NULL, poster_main, &w[t]), 0);
	}
	ck_assert_int_eq(ir_loop_run(loop), 0);
	for (int t = 0; t < POST_THREADS; t++)
		ck_assert_int_eq(pthread_join(th[t], NULL), 0);
	ck_assert_int_eq(atomic_load(&p.post_errors), 0);
	ck_assert_int_eq(p.total, POST_THREADS * p.per_thread);
	ck_assert_int_eq(p.wrong_thread, 0);
	ck_assert_int_eq(p.disorder, 0);
	for (int t = 0; t < POST_THREADS; t++)
		ck_assert_int_eq(p.next[t], p.per_thread);
	ck_assert_int_eq(ir_loop_post(loop, NULL, NULL), -EINVAL);
	finish(loop);
}
END_TEST

struct nested {
	int a, b;
};

static void nested_b(struct ir_loop *loop, void *arg)
{
	(void)loop;
	((struct nested *)arg)->b++;
}

static void nested_a(struct ir_loop *loop, void *arg)
{
	((struct nested *)arg)->a++;
	ck_assert_int_eq(ir_loop_post(loop, nested_b, arg), 0);
}

START_TEST(post_inside_post_runs_later)
{
	struct ir_loop *loop = new_loop();
	struct nested n = {0};
	ck_assert_int_eq(ir_loop_post(loop, nested_a, &n), 0);
	ck_assert_int_eq(ir_loop_run_once(loop, 5000000), 1);
	ck_assert_int_eq(n.a, 1);
	ck_assert_int_eq(n.b, 0);
	ck_assert_int_eq(ir_loop_run_once(loop, 5000000), 1);
	ck_assert_int_eq(n.b, 1);
	finish(loop);
}
END_TEST

static void *stopper_main(void *arg)
{
	sleep_us(100000);
	ir_loop_stop(arg);
	return NULL;
}

START_TEST(stop_from_thread_wakes_loop)
{
	struct ir_loop *loop = new_loop();
	/* Stop before run: run returns at once, and the stop is used up. */
	ir_loop_stop(loop);
	ck_assert_int_eq(ir_loop_run(loop), 0);

	pthread_t th;
	uint64_t t0 = ir_now_us();
	ck_assert_int_eq(pthread_create(&th, NULL, stopper_main, loop), 0);
	ck_assert_int_eq(ir_loop_run(loop), 0); /* blocked: nothing but the stop can end it */
	uint64_t took = ir_now_us() - t0;
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_uint_ge(took, 90000);
	ck_assert_uint_lt(took, 10000000);
	finish(loop);
}
END_TEST

/* ---- pollers ---- */

struct probe {
	atomic_int work;  /* set by another thread */
	atomic_int armed; /* last sleep() argument */
	atomic_int polls; /* poll() calls */
	atomic_int arms;  /* sleep(1) calls */
	atomic_int disarms;
	int found;
	int sleep_ret; /* sleep(1) returns this */
	int bell;      /* sleep(1) rings this eventfd, if >= 0 */
};

static void probe_init(struct probe *p)
{
	atomic_init(&p->work, 0);
	atomic_init(&p->armed, 0);
	atomic_init(&p->polls, 0);
	atomic_init(&p->arms, 0);
	atomic_init(&p->disarms, 0);
	p->found = 0;
	p->sleep_ret = 0;
	p->bell = -1;
}

static int probe_poll(struct ir_loop *loop, void *arg)
{
	(void)loop;
	struct probe *p = arg;
	atomic_fetch_add(&p->polls, 1);
	if (atomic_exchange(&p->work, 0)) {
		p->found++;
		return 1;
	}
	return 0;
}

static int probe_sleep(struct ir_loop *loop, int armed, void *arg)
{
	(void)loop;
	struct probe *p = arg;
	atomic_fetch_add(armed ? &p->arms : &p->disarms, 1);
	atomic_store(&p->armed, armed);
	if (armed && p->bell >= 0)
		ring(p->bell);
	return armed ? p->sleep_ret : 0;
}

static void *late_worker_main(void *arg)
{
	struct probe *p = arg;
	sleep_us(5000);
	atomic_store(&p->work, 1);
	return NULL;
}

START_TEST(poller_spin_sees_work)
{
	struct ir_loop *loop = new_loop();
	ir_loop_set_spin(loop, 2000000); /* up to 2 s: far beyond the 5 ms delay */
	struct probe p;
	probe_init(&p);
	int id = ir_loop_poller_add(loop, probe_poll, probe_sleep, &p);
	ck_assert_int_gt(id, 0);
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, late_worker_main, &p), 0);
	uint64_t t0 = ir_now_us();
	int n = ir_loop_run_once(loop, 10000000);
	uint64_t took = ir_now_us() - t0;
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(p.found, 1);
	ck_assert_int_eq(atomic_load(&p.arms), 0); /* seen while spinning, never slept */
	ck_assert_int_eq(atomic_load(&p.disarms), 0);
	ck_assert_int_gt(atomic_load(&p.polls), 2);
	ck_assert_uint_lt(took, 2000000);
	ck_assert_uint_eq(ir_loop_spin_budget(loop), 2000000); /* work while spinning: kept */
	ir_loop_poller_del(loop, id);
	finish(loop);
}
END_TEST

struct late_bell {
	int fd;
	uint64_t delay_us;
};

static void *late_bell_main(void *arg)
{
	struct late_bell *b = arg;
	sleep_us(b->delay_us);
	ring(b->fd);
	return NULL;
}

START_TEST(spin_sees_fd_events)
{
	struct ir_loop *loop = new_loop();
	ir_loop_set_spin(loop, 2000000);
	struct probe p;
	probe_init(&p);
	int id = ir_loop_poller_add(loop, probe_poll, probe_sleep, &p);
	ck_assert_int_gt(id, 0);
	struct late_bell b = {new_eventfd(), 5000};
	struct fd_rec r = {.drain = 1};
	ck_assert_int_eq(ir_loop_add_fd(loop, b.fd, IR_EV_READ, rec_cb, &r), 0);
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, late_bell_main, &b), 0);
	uint64_t t0 = ir_now_us();
	ck_assert_int_eq(ir_loop_run_once(loop, 10000000), 1);
	uint64_t took = ir_now_us() - t0;
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(r.calls, 1);
	ck_assert_int_eq(atomic_load(&p.arms), 0); /* found by the spin's epoll look */
	ck_assert_uint_lt(took, 2000000);
	ck_assert_uint_eq(ir_loop_spin_budget(loop), 2000000);
	ir_loop_poller_del(loop, id);
	ir_loop_del_fd(loop, b.fd);
	close(b.fd);
	finish(loop);
}
END_TEST

START_TEST(spin_ends_at_timer)
{
	struct ir_loop *loop = new_loop();
	ir_loop_set_spin(loop, 2000000);
	struct probe p;
	probe_init(&p);
	int id = ir_loop_poller_add(loop, probe_poll, probe_sleep, &p);
	ck_assert_int_gt(id, 0);
	int fired = 0;
	uint64_t t0 = ir_now_us();
	ck_assert_uint_gt(ir_loop_timer_add(loop, 10000, cancel_fired_cb, &fired), 0);
	ck_assert_int_eq(ir_loop_run_once(loop, -1), 1); /* spins up to the deadline, fires */
	uint64_t took = ir_now_us() - t0;
	ck_assert_int_eq(fired, 1);
	ck_assert_int_eq(atomic_load(&p.arms), 0);
	ck_assert_uint_ge(took, 10000);
	ck_assert_uint_lt(took, 2000000);
	ir_loop_poller_del(loop, id);
	finish(loop);
}
END_TEST

struct bell_wait {
	struct probe *p;
	int fd;
	int timed_out;
};

static void *bell_after_arm_main(void *arg)
{
	struct bell_wait *b = arg;
	uint64_t t0 = ir_now_us();
	while (!atomic_load(&b->p->armed)) {
		if (ir_now_us() - t0 > 10000000) {
			b->timed_out = 1;
			return NULL;
		}
		sleep_us(1000);
	}
	sleep_us(20000); /* make sure the loop really is in epoll_wait */
	ring(b->fd);
	return NULL;
}

START_TEST(poller_no_spin_blocks_armed)
{
	struct ir_loop *loop = new_loop();
	ir_loop_set_spin(loop, 0);
	ck_assert_uint_eq(ir_loop_spin_budget(loop), 0);
	struct probe p;
	probe_init(&p);
	int id = ir_loop_poller_add(loop, probe_poll, probe_sleep, &p);
	ck_assert_int_gt(id, 0);
	struct bell_wait b = {&p, new_eventfd(), 0};
	struct fd_rec r = {.drain = 1};
	ck_assert_int_eq(ir_loop_add_fd(loop, b.fd, IR_EV_READ, rec_cb, &r), 0);
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, bell_after_arm_main, &b), 0);
	ck_assert_int_eq(ir_loop_run_once(loop, 20000000), 1);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(b.timed_out, 0);
	ck_assert_int_eq(r.calls, 1);
	ck_assert_int_eq(atomic_load(&p.arms), 1);
	ck_assert_int_eq(atomic_load(&p.disarms), 1);
	ck_assert_int_eq(atomic_load(&p.armed), 0);
	ck_assert_int_eq(atomic_load(&p.polls), 2); /* before and after the block: no spin */
	ck_assert_uint_eq(ir_loop_spin_budget(loop), 0);
	ir_loop_poller_del(loop, id);
	ir_loop_del_fd(loop, b.fd);
	close(b.fd);
	finish(loop);
}
END_TEST

START_TEST(poller_sleep_work_skips_block)
{
	struct ir_loop *loop = new_loop();
	ir_loop_set_spin(loop, 0);
	struct probe p;
	probe_init(&p);
	p.sleep_ret = 1;
	int id = ir_loop_poller_add(loop, probe_poll, probe_sleep, &p);
	ck_assert_int_gt(id, 0);
	uint64_t t0 = ir_now_us();
	ck_assert_int_eq(ir_loop_run_once(loop, 10000000), 0);
	ck_assert_uint_lt(ir_now_us() - t0, 5000000);
	ck_assert_int_eq(atomic_load(&p.arms), 1);
	ck_assert_int_eq(atomic_load(&p.disarms), 1);
	ck_assert_int_eq(atomic_load(&p.polls), 2);
	/* A poller without a sleep callback is never armed, nor disarmed. */
	ir_loop_poller_del(loop, id);
	struct probe q;
	probe_init(&q);
	id = ir_loop_poller_add(loop, probe_poll, NULL, &q);
	ck_assert_int_gt(id, 0);
	ck_assert_int_eq(ir_loop_run_once(loop, 10000), 0);
	ck_assert_int_ge(atomic_load(&q.polls), 1); /* 2 unless preempted past the 10 ms */
	ck_assert_int_eq(atomic_load(&q.arms), 0);
	ir_loop_poller_del(loop, id);
	finish(loop);
}
END_TEST

struct self_del {
	int ids[3];
	int calls[3];
};

static struct self_del *self_del_of;

static int del_poll(struct ir_loop *loop, void *arg)
{
	struct self_del *s = self_del_of;
	int i = (int)(intptr_t)arg;
	s->calls[i]++;
	if (i == 0) {
		ir_loop_poller_del(loop, s->ids[0]); /* itself */
		ir_loop_poller_del(loop, s->ids[1]); /* one not yet called */
		/* Added during the walk: must not disturb it. */
		int id = ir_loop_poller_add(loop, del_poll, NULL, (void *)(intptr_t)2);
		ck_assert_int_gt(id, s->ids[2]);
		ir_loop_poller_del(loop, id);
	}
	return 0;
}

START_TEST(poller_del_during_poll)
{
	struct ir_loop *loop = new_loop();
	struct self_del s = {0};
	self_del_of = &s;
	for (int i = 0; i < 3; i++) {
		s.ids[i] = ir_loop_poller_add(loop, del_poll, NULL, (void *)(intptr_t)i);
		ck_assert_int_gt(s.ids[i], i ? s.ids[i - 1] : 0);
	}
	ck_assert_int_eq(ir_loop_poller_add(loop, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(ir_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(s.calls[0], 1);
	ck_assert_int_eq(s.calls[1], 0);
	ck_assert_int_eq(s.calls[2], 1);
	ck_assert_int_eq(ir_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(s.calls[0], 1);
	ck_assert_int_eq(s.calls[1], 0);
	ck_assert_int_eq(s.calls[2], 2);
	ir_loop_poller_del(loop, s.ids[2]);
	ir_loop_poller_del(loop, s.ids[2]); /* unknown: ignored */
	ir_loop_poller_del(loop, 12345);
	ck_assert_int_eq(ir_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(s.calls[2], 2);
	finish(loop);
}
END_TEST

START_TEST(spin_budget_adapts)
{
	struct ir_loop *loop = new_loop();
	const uint32_t max = 2000;
	ir_loop_set_spin(loop, max);
	ck_assert_uint_eq(ir_loop_spin_budget(loop), max);
	struct probe p;
	probe_init(&p);
	int id = ir_loop_poller_add(loop, probe_poll, probe_sleep, &p);
	ck_assert_int_gt(id, 0);
	int fd = new_eventfd();
	struct fd_rec r = {.drain = 1};
	ck_assert_int_eq(ir_loop_add_fd(loop, fd, IR_EV_READ, rec_cb, &r), 0);

	/* Idle: each iteration spins, then sleeps ~20 ms > 4 * max: halve.  (An
	 * iteration preempted for most of its 20 ms may sleep too little to count
	 * as idle; it must then leave the budget alone.) */
	uint32_t budget = max;
	int halved = 0;
	for (int i = 0; i < 200 && budget > 0; i++) {
		ck_assert_int_eq(ir_loop_run_once(loop, 20000), 0);
		uint32_t b = ir_loop_spin_budget(loop);
		ck_assert(b == budget || b == budget / 2);
		halved += b < budget;
		budget = b;
	}
	ck_assert_uint_eq(budget, 0);
	ck_assert_int_eq(halved, 11); /* 2000 -> 1000 -> ... -> 1 -> 0 */
	ck_assert_int_eq(ir_loop_run_once(loop, 20000), 0);
	ck_assert_uint_eq(ir_loop_spin_budget(loop), 0);
	/* A short sleep that ends by timeout, not by an event: no growth. */
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(ir_loop_run_once(loop, 500), 0);
		ck_assert_uint_eq(ir_loop_spin_budget(loop), 0);
	}
	ck_assert_int_eq(r.calls, 0);

	/* Busy: the wake-up comes right after the loop arms (the sleep callback
	 * rings the eventfd), far sooner than max: the budget grows back. */
	p.bell = fd;
	int grew = 0;
	for (int i = 0; i < 200 && ir_loop_spin_budget(loop) < max; i++) {
		uint32_t before = ir_loop_spin_budget(loop);
		ck_assert_int_eq(ir_loop_run_once(loop, 5000000), 1);
		grew += ir_loop_spin_budget(loop) > before;
	}
	ck_assert_uint_eq(ir_loop_spin_budget(loop), max);
	ck_assert_int_ge(grew, 11); /* 0 -> 1 -> 3 -> ... -> 2047 capped at 2000 */
	ck_assert_int_eq(atomic_load(&p.arms), atomic_load(&p.disarms));

	ir_loop_poller_del(loop, id);
	ir_loop_del_fd(loop, fd);
	close(fd);
	finish(loop);
}
END_TEST

START_TEST(no_pollers_never_spins)
{
	struct ir_loop *loop = new_loop();
	ir_loop_set_spin(loop, 1000000); /* a 1 s budget, were there a poller */
	int fd = new_eventfd();
	struct fd_rec r = {.drain = 1};
	ck_assert_int_eq(ir_loop_add_fd(loop, fd, IR_EV_READ, rec_cb, &r), 0);
	/* A poller that came and went leaves no reason to spin either. */
	struct probe p;
	probe_init(&p);
	int id = ir_loop_poller_add(loop, probe_poll, probe_sleep, &p);
	ck_assert_int_gt(id, 0);
	ir_loop_poller_del(loop, id);

	uint64_t c0 = cpu_ns(), t0 = ir_now_us();
	ck_assert_int_eq(ir_loop_run_once(loop, 200000), 0);
	uint64_t cpu = cpu_ns() - c0, took = ir_now_us() - t0;
	ck_assert_uint_ge(took, 190000);
	ck_assert_uint_lt(cpu, 50000000);
	ck_assert_int_eq(atomic_load(&p.polls), 0);
	ck_assert_int_eq(r.calls, 0);
	ir_loop_del_fd(loop, fd);
	close(fd);
	finish(loop);
}
END_TEST

START_TEST(spin_env)
{
	static const struct {
		const char *v;
		uint32_t want;
	} cases[] = {{NULL, 50},	{"123", 123}, {"0", 0},
		     {"", 50},		{"abc", 50},  {"12x", 50},
		     {"-5", 50},	{" 7", 50},   {"4294967295", 4294967295u},
		     {"4294967296", 50}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].v)
			setenv("IROUTE_SPIN_US", cases[i].v, 1);
		else
			unsetenv("IROUTE_SPIN_US");
		struct ir_loop *loop = new_loop();
		ck_assert_uint_eq(ir_loop_spin_budget(loop), cases[i].want);
		finish(loop);
	}
	unsetenv("IROUTE_SPIN_US");
}
END_TEST

START_TEST(clock_is_monotonic)
{
	uint64_t a = ir_now_us(), an = ir_now_ns();
	sleep_us(2000);
	uint64_t b = ir_now_us(), bn = ir_now_ns();
	ck_assert_uint_ge(b - a, 2000);
	ck_assert_uint_ge(bn - an, 2000000);
	ck_assert_uint_lt(b - a, 10000000);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t mono = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	ck_assert_uint_ge(mono, b);
	ck_assert_uint_lt(mono - b, 10000000);
}
END_TEST

Suite *loop_suite(void)
{
	Suite *s = suite_create("loop");
	TCase *tc = tcase_create("fd");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, fd_eventfd_readiness);
	tcase_add_test(tc, fd_pipe_write_mod_and_errors);
	tcase_add_test(tc, fd_hangup_reports_error);
	tcase_add_test(tc, fd_del_own_in_callback);
	tcase_add_test(tc, fd_del_other_pending);
	tcase_add_test(tc, fd_mod_other_pending);
	tcase_add_test(tc, fd_table_grows);
	suite_add_tcase(s, tc);

	tc = tcase_create("timer");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, timer_deadline_order);
	tcase_add_test(tc, timer_cancel);
	tcase_add_test(tc, timer_rearms_itself);
	tcase_add_test(tc, timer_many_random);
	tcase_add_test(tc, clock_is_monotonic);
	suite_add_tcase(s, tc);

	tc = tcase_create("post");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, post_from_threads_fifo);
	tcase_add_test(tc, post_inside_post_runs_later);
	tcase_add_test(tc, stop_from_thread_wakes_loop);
	suite_add_tcase(s, tc);

	tc = tcase_create("spin");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, poller_spin_sees_work);
	tcase_add_test(tc, spin_sees_fd_events);
	tcase_add_test(tc, spin_ends_at_timer);
	tcase_add_test(tc, poller_no_spin_blocks_armed);
	tcase_add_test(tc, poller_sleep_work_skips_block);
	tcase_add_test(tc, poller_del_during_poll);
	tcase_add_test(tc, spin_budget_adapts);
	tcase_add_test(tc, no_pollers_never_spins);
	tcase_add_test(tc, spin_env);
	suite_add_tcase(s, tc);
	return s;
}
