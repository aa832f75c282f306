/* loop.c - the I/O event loop: level-triggered epoll, a timer heap, spin pollers.
 *
 * Why this shape.  Like valkey's ae the loop is one epoll set plus timers,
 * and an iteration is "timers, wait, dispatch".  Three things differ:
 *
 * - The fd table is indexed by fd and every registration gets a generation
 *   number that travels in the epoll data next to the fd.  An event that
 *   epoll_wait() returned for an fd that a callback then deleted (or deleted,
 *   closed and re-used for a new registration) carries a stale generation
 *   and is dropped, so del_fd is safe from any callback.
 * - Timers live in a binary min-heap on (deadline, id) with an id -> slot
 *   hash, so add and cancel are O(log n).  ae's unsorted list is O(n) per
 *   cancel; one timerfd per timer costs syscalls; lazy cancel flags keep
 *   cancelled timers (say, a 10 s hello timeout per connection) in the heap
 *   until they expire.
 * - Before blocking, the loop spins on the registered pollers for an
 *   adaptive budget (see loop.h).  An iteration:
 *     1. run expired timers;
 *     2. poll every poller once;
 *     3. nothing yet: spin on the pollers, with an epoll_wait(0) every
 *        SPIN_EPOLL_US for the fds, until work, a due timer or the budget;
 *     4. still nothing: arm the pollers (sleep(1)), block in epoll_wait,
 *        disarm (sleep(0)), poll once more, adapt the budget;
 *     5. dispatch the fd events;
 *     6. run the timers that expired while we waited.
 *   A timer or a post added during an iteration runs in a later one, never
 *   recursively: steps 1 and 6 skip timers younger than the iteration, and
 *   posts are swapped out of the queue before they run.  While busy (work
 *   found without blocking) the loop returns without a clock read or a
 *   syscall and looks at the fds only every BUSY_EPOLL_EVERY iterations:
 *   the shared-memory fast path costs no syscall per message.
 *
 * Posts and ir_loop_stop() come in through one eventfd in the epoll set.
 * Blocking waits are whole milliseconds (epoll_wait), rounded up: timers
 * fire up to ~1 ms late, never early.  ir_loop_free() drops pending timers
 * and posts without calling them.
 */
#include "iroute/loop.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 256
#define SPIN_DEFAULT_US 50
#define SPIN_EPOLL_US 20    /* look at the fds this often while spinning or busy */
#define SPIN_CLOCK_EVERY 64 /* read the clock once per this many spins */
#define BUSY_EPOLL_EVERY 32 /* busy iterations between two looks at the fds */
#define WAKE_TAG UINT64_MAX /* epoll data of the internal eventfd; never a valid fd tag */

struct fd_slot {
	ir_fd_cb cb; /* NULL: not watched */
	void *arg;
	unsigned events;
	uint32_t gen; /* bumped by every add; events with another generation are stale */
};

struct timer {
	uint64_t deadline; /* ir_now_us() clock */
	uint64_t id;
	ir_timer_cb cb;
	void *arg;
};

/* Where timer @id sits in the heap.  Open addressing, linear probing, id 0 is
 * a free slot; the table is kept at most half full. */
struct timer_ref {
	uint64_t id;
	size_t idx;
};

struct poller {
	ir_poll_cb poll; /* NULL: deleted, compacted away once no walk is under way */
	ir_sleep_cb sleep;
	void *arg;
	int id;
	int armed; /* sleep(1) was called and sleep(0) is owed */
};

struct post {
	ir_post_cb cb;
	void *arg;
};

struct post_queue {
	struct post *v;
	size_t len, cap;
};

struct ir_loop {
	int epfd;
	int wakefd; /* eventfd: posts and ir_loop_stop() */

	struct fd_slot *fds; /* indexed by fd */
	int nfds;
	struct epoll_event events[LOOP_MAX_EVENTS];
	uint64_t last_epoll_us;
	unsigned busy_iters; /* iterations that found work since the last epoll_wait */

	struct timer *heap;
	size_t heap_len, heap_cap;
	struct timer_ref *refs;
	size_t refs_cap; /* a power of two, or 0 */
	unsigned refs_shift;
	uint64_t last_timer_id;

	struct poller *pollers;
	int npollers, pollers_cap;
	int live_pollers;
	int last_poller_id;
	int poller_walks; /* nesting depth of walks over pollers[] */
	int pollers_dirty;

	uint32_t spin_max, spin_budget;

	pthread_mutex_t post_mu;
	struct post_queue posted;  /* guarded by post_mu */
	struct post_queue running; /* loop thread only */

	atomic_int stop;
};

uint64_t ir_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t ir_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* IROUTE_SPIN_US: a plain decimal number of microseconds, else the default. */
static uint32_t spin_from_env(void)
{
	const char *v = getenv("IROUTE_SPIN_US");
	if (!v || *v < '0' || *v > '9')
		return SPIN_DEFAULT_US;
	char *end;
	int saved = errno;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	int bad = errno || *end || n > UINT32_MAX;
	errno = saved;
	return bad ? SPIN_DEFAULT_US : (uint32_t)n;
}

static void wake(struct ir_loop *loop)
{
	uint64_t one = 1;
	/* EAGAIN means the counter is already non-zero: the loop wakes anyway. */
	while (write(loop->wakefd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

int ir_loop_new(struct ir_loop **out)
{
	int rc;
	struct ir_loop *loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		rc = -errno;
		goto out_free;
	}
	loop->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (loop->wakefd < 0) {
		rc = -errno;
		goto out_close_epfd;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_TAG};
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) < 0) {
		rc = -errno;
		goto out_close_wakefd;
	}
	rc = pthread_mutex_init(&loop->post_mu, NULL);
	if (rc) {
		rc = -rc;
		goto out_close_wakefd;
	}
	atomic_init(&loop->stop, 0);
	loop->spin_max = loop->spin_budget = spin_from_env();
	*out = loop;
	return 0;

out_close_wakefd:
	close(loop->wakefd);
out_close_epfd:
	close(loop->epfd);
out_free:
	free(loop);
	return rc;
}

void ir_loop_free(struct ir_loop *loop)
{
	if (!loop)
		return;
	close(loop->wakefd);
	close(loop->epfd);
	pthread_mutex_destroy(&loop->post_mu);
	free(loop->posted.v);
	free(loop->running.v);
	free(loop->pollers);
	free(loop->refs);
	free(loop->heap);
	free(loop->fds);
	free(loop);
}

/* ---- fds ---- */

static uint64_t fd_tag(int fd, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint32_t)fd;
}

static uint32_t epoll_mask(unsigned events)
{
	uint32_t m = 0;
	if (events & IR_EV_READ)
		m |= EPOLLIN | EPOLLRDHUP;
	if (events & IR_EV_WRITE)
		m |= EPOLLOUT;
	if (events & IR_EV_EDGE)
		m |= EPOLLET;
	return m;
}

static int fds_reserve(struct ir_loop *loop, int fd)
{
	if (fd < loop->nfds)
		return 0;
	size_t n = loop->nfds ? (size_t)loop->nfds : 64;
	while (n <= (size_t)fd)
		n *= 2;
	if (n > INT_MAX)
		n = INT_MAX;
	struct fd_slot *s = realloc(loop->fds, n * sizeof(*s));
	if (!s)
		return -ENOMEM;
	memset(s + loop->nfds, 0, (n - (size_t)loop->nfds) * sizeof(*s));
	loop->fds = s;
	loop->nfds = (int)n;
	return 0;
}

static struct fd_slot *fd_watched(struct ir_loop *loop, int fd)
{
	if (fd < 0 || fd >= loop->nfds || !loop->fds[fd].cb)
		return NULL;
	return &loop->fds[fd];
}

int ir_loop_add_fd(struct ir_loop *loop, int fd, unsigned events, ir_fd_cb cb, void *arg)
{
	if (fd < 0 || fd == INT_MAX)
		return -EBADF;
	if (!cb || (events & ~(IR_EV_READ | IR_EV_WRITE | IR_EV_ERROR | IR_EV_EDGE)))
		return -EINVAL;
	int rc = fds_reserve(loop, fd);
	if (rc < 0)
		return rc;
	struct fd_slot *s = &loop->fds[fd];
	if (s->cb)
		return -EEXIST;
	struct epoll_event ev = {.events = epoll_mask(events), .data.u64 = fd_tag(fd, s->gen + 1)};
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	s->gen++;
	s->cb = cb;
	s->arg = arg;
	s->events = events & (IR_EV_READ | IR_EV_WRITE | IR_EV_EDGE);
	return 0;
}

int ir_loop_mod_fd(struct ir_loop *loop, int fd, unsigned events)
{
	struct fd_slot *s = fd_watched(loop, fd);
	if (!s)
		return -ENOENT;
	if (events & ~(IR_EV_READ | IR_EV_WRITE | IR_EV_ERROR | IR_EV_EDGE))
		return -EINVAL;
	struct epoll_event ev = {.events = epoll_mask(events), .data.u64 = fd_tag(fd, s->gen)};
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -errno;
	s->events = events & (IR_EV_READ | IR_EV_WRITE | IR_EV_EDGE);
	return 0;
}

void ir_loop_del_fd(struct ir_loop *loop, int fd)
{
	struct fd_slot *s = fd_watched(loop, fd);
	if (!s)
		return;
	/* Fails only if the caller already closed @fd, which removed it anyway. */
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	s->cb = NULL;
	s->arg = NULL;
	s->events = 0;
}

/* ---- posts ---- */

int ir_loop_post(struct ir_loop *loop, ir_post_cb cb, void *arg)
{
	if (!cb)
		return -EINVAL;
	pthread_mutex_lock(&loop->post_mu);
	struct post_queue *q = &loop->posted;
	if (q->len == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 64;
		struct post *v = realloc(q->v, cap * sizeof(*v));
		if (!v) {
			pthread_mutex_unlock(&loop->post_mu);
			return -ENOMEM;
		}
		q->v = v;
		q->cap = cap;
	}
	q->v[q->len++] = (struct post){cb, arg};
	int first = q->len == 1;
	pthread_mutex_unlock(&loop->post_mu);
	/* Only the first post of a batch rings: the loop drains the eventfd
	 * before it takes the queue, so a later first post rings again. */
	if (first)
		wake(loop);
	return 0;
}

void ir_loop_stop(struct ir_loop *loop)
{
	atomic_store(&loop->stop, 1);
	wake(loop);
}

/* The eventfd fired: run what was posted until now, in order. */
static int run_posts(struct ir_loop *loop)
{
	uint64_t v;
	while (read(loop->wakefd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&loop->post_mu);
	struct post_queue q = loop->posted;
	loop->posted = loop->running; /* empty, keeps its buffer */
	loop->running = q;
	pthread_mutex_unlock(&loop->post_mu);
	size_t n = loop->running.len;
	for (size_t i = 0; i < n; i++)
		loop->running.v[i].cb(loop, loop->running.v[i].arg);
	loop->running.len = 0;
	return n > INT_MAX ? INT_MAX : (int)n;
}

/* ---- timers ---- */

static int timer_before(const struct timer *a, const struct timer *b)
{
	return a->deadline < b->deadline || (a->deadline == b->deadline && a->id < b->id);
}

static size_t ref_home(const struct ir_loop *loop, uint64_t id)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> loop->refs_shift);
}

static struct timer_ref *ref_find(struct ir_loop *loop, uint64_t id)
{
	if (!loop->refs_cap)
		return NULL;
	size_t mask = loop->refs_cap - 1;
	for (size_t i = ref_home(loop, id);; i = (i + 1) & mask) {
		if (loop->refs[i].id == id)
			return &loop->refs[i];
		if (!loop->refs[i].id)
			return NULL;
	}
}

static void ref_put(struct ir_loop *loop, uint64_t id, size_t idx)
{
	size_t mask = loop->refs_cap - 1;
	size_t i = ref_home(loop, id);
	while (loop->refs[i].id)
		i = (i + 1) & mask;
	loop->refs[i] = (struct timer_ref){id, idx};
}

/* Backward-shift deletion keeps every probe chain unbroken, no tombstones. */
static void ref_del(struct ir_loop *loop, struct timer_ref *r)
{
	size_t mask = loop->refs_cap - 1;
	size_t i = (size_t)(r - loop->refs);
	for (size_t j = (i + 1) & mask; loop->refs[j].id; j = (j + 1) & mask) {
		size_t k = ref_home(loop, loop->refs[j].id);
		/* Entry j may fill the hole at i unless its home lies in (i, j]. */
		int home_between = i < j ? (k > i && k <= j) : (k > i || k <= j);
		if (!home_between) {
			loop->refs[i] = loop->refs[j];
			i = j;
		}
	}
	loop->refs[i].id = 0;
}

static int timers_reserve(struct ir_loop *loop)
{
	if (loop->heap_len == loop->heap_cap) {
		size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
		struct timer *h = realloc(loop->heap, cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		loop->heap = h;
		loop->heap_cap = cap;
	}
	if ((loop->heap_len + 1) * 2 > loop->refs_cap) {
		size_t cap = loop->refs_cap ? loop->refs_cap * 2 : 128;
		struct timer_ref *refs = calloc(cap, sizeof(*refs));
		if (!refs)
			return -ENOMEM;
		struct timer_ref *old = loop->refs;
		size_t old_cap = loop->refs_cap;
		loop->refs = refs;
		loop->refs_cap = cap;
		loop->refs_shift = 64u - (unsigned)__builtin_ctzll(cap);
		for (size_t i = 0; i < old_cap; i++)
			if (old[i].id)
				ref_put(loop, old[i].id, old[i].idx);
		free(old);
	}
	return 0;
}

static void heap_place(struct ir_loop *loop, size_t i, const struct timer *t)
{
	loop->heap[i] = *t;
	ref_find(loop, t->id)->idx = i;
}

/* Move the timer at @i up or down to where it belongs. */
static void heap_sift(struct ir_loop *loop, size_t i)
{
	struct timer *h = loop->heap;
	struct timer t = h[i];
	while (i > 0 && timer_before(&t, &h[(i - 1) / 2])) {
		heap_place(loop, i, &h[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= loop->heap_len)
			break;
		if (c + 1 < loop->heap_len && timer_before(&h[c + 1], &h[c]))
			c++;
		if (!timer_before(&h[c], &t))
			break;
		heap_place(loop, i, &h[c]);
		i = c;
	}
	heap_place(loop, i, &t);
}

static void heap_remove(struct ir_loop *loop, size_t i)
{
	ref_del(loop, ref_find(loop, loop->heap[i].id));
	if (i == --loop->heap_len)
		return;
	loop->heap[i] = loop->heap[loop->heap_len];
	heap_sift(loop, i);
}

uint64_t ir_loop_timer_add(struct ir_loop *loop, uint64_t delay_us, ir_timer_cb cb, void *arg)
{
	if (!cb || timers_reserve(loop) < 0)
		return 0;
	uint64_t now = ir_now_us();
	uint64_t deadline = delay_us > UINT64_MAX - now ? UINT64_MAX : now + delay_us;
	struct timer t = {deadline, ++loop->last_timer_id, cb, arg};
	size_t i = loop->heap_len++;
	ref_put(loop, t.id, i);
	loop->heap[i] = t;
	heap_sift(loop, i);
	return t.id;
}

int ir_loop_timer_cancel(struct ir_loop *loop, uint64_t id)
{
	struct timer_ref *r = id ? ref_find(loop, id) : NULL;
	if (!r)
		return -ENOENT;
	heap_remove(loop, r->idx);
	return 0;
}

/* Run the expired timers that existed when the iteration began (id <= @last_id).
 * A younger timer at the top also ends the pass: its deadline is no earlier
 * than the reading of the clock below, so no older one is due behind it. */
static int run_timers(struct ir_loop *loop, uint64_t last_id)
{
	if (!loop->heap_len)
		return 0;
	uint64_t now = ir_now_us();
	int n = 0;
	while (loop->heap_len) {
		struct timer t = loop->heap[0];
		if (t.deadline > now || t.id > last_id)
			break;
		heap_remove(loop, 0);
		t.cb(loop, t.arg);
		n++;
	}
	return n;
}

/* ---- pollers ---- */

int ir_loop_poller_add(struct ir_loop *loop, ir_poll_cb poll_cb, ir_sleep_cb sleep_cb, void *arg)
{
	if (!poll_cb)
		return -EINVAL;
	if (loop->last_poller_id == INT_MAX)
		return -ENOSPC;
	if (loop->npollers == loop->pollers_cap) {
		int cap = loop->pollers_cap ? loop->pollers_cap * 2 : 8;
		struct poller *p = realloc(loop->pollers, (size_t)cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		loop->pollers = p;
		loop->pollers_cap = cap;
	}
	int id = ++loop->last_poller_id;
	loop->pollers[loop->npollers++] = (struct poller){poll_cb, sleep_cb, arg, id, 0};
	loop->live_pollers++;
	return id;
}

static void pollers_compact(struct ir_loop *loop)
{
	int j = 0;
	for (int i = 0; i < loop->npollers; i++)
		if (loop->pollers[i].poll)
			loop->pollers[j++] = loop->pollers[i];
	loop->npollers = j;
	loop->pollers_dirty = 0;
}

/* Walks index pollers[] afresh on every step (a callback may add a poller and
 * move the array) and only compact once the outermost walk ends. */
static void walk_begin(struct ir_loop *loop)
{
	loop->poller_walks++;
}

static void walk_end(struct ir_loop *loop)
{
	if (--loop->poller_walks == 0 && loop->pollers_dirty)
		pollers_compact(loop);
}

void ir_loop_poller_del(struct ir_loop *loop, int id)
{
	for (int i = 0; i < loop->npollers; i++) {
		struct poller *p = &loop->pollers[i];
		if (p->poll && p->id == id) {
			*p = (struct poller){0};
			loop->live_pollers--;
			loop->pollers_dirty = 1;
			if (!loop->poller_walks)
				pollers_compact(loop);
			return;
		}
	}
}

static int poll_pollers(struct ir_loop *loop)
{
	int work = 0;
	walk_begin(loop);
	for (int i = 0; i < loop->npollers; i++) {
		struct poller *p = &loop->pollers[i];
		if (!p->poll)
			continue;
		int n = p->poll(loop, p->arg);
		if (n > 0)
			work += n;
	}
	walk_end(loop);
	return work;
}

/* sleep(1) on the pollers until one reports work.  Returns 1 if one did. */
static int arm_pollers(struct ir_loop *loop)
{
	int ready = 0;
	walk_begin(loop);
	for (int i = 0; i < loop->npollers && !ready; i++) {
		struct poller *p = &loop->pollers[i];
		if (!p->poll || !p->sleep)
			continue;
		p->armed = 1;
		ready = p->sleep(loop, 1, p->arg) > 0;
	}
	walk_end(loop);
	return ready;
}

static void disarm_pollers(struct ir_loop *loop)
{
	walk_begin(loop);
	for (int i = 0; i < loop->npollers; i++) {
		struct poller *p = &loop->pollers[i];
		if (!p->poll || !p->armed)
			continue;
		p->armed = 0;
		p->sleep(loop, 0, p->arg);
	}
	walk_end(loop);
}

void ir_loop_set_spin(struct ir_loop *loop, uint32_t max_spin_us)
{
	loop->spin_max = loop->spin_budget = max_spin_us;
}

uint32_t ir_loop_spin_budget(const struct ir_loop *loop)
{
	return loop->spin_budget;
}

/* After a block of @slept_us: a wake-up that came sooner than the maximum
 * spin would have been caught by spinning, so spin longer; a long sleep
 * means idle, so spin less. */
static void spin_adapt(struct ir_loop *loop, uint64_t slept_us, int woken)
{
	uint64_t max = loop->spin_max;
	if (woken && slept_us < max) {
		uint64_t b = (uint64_t)loop->spin_budget * 2 + 1;
		loop->spin_budget = (uint32_t)(b < max ? b : max);
	} else if (slept_us > 4 * max) {
		loop->spin_budget /= 2;
	}
}

/* ---- the iteration ---- */

/* How long the iteration may still wait: -1 forever, else microseconds. */
static int64_t wait_left(const struct ir_loop *loop, uint64_t start, uint64_t now,
			 int64_t timeout_us)
{
	int64_t w = -1;
	if (timeout_us >= 0) {
		uint64_t spent = now - start;
		w = (uint64_t)timeout_us > spent ? timeout_us - (int64_t)spent : 0;
	}
	if (loop->heap_len) {
		uint64_t d = loop->heap[0].deadline;
		uint64_t t = d > now ? d - now : 0;
		if (t > INT64_MAX)
			t = INT64_MAX;
		if (w < 0 || (int64_t)t < w)
			w = (int64_t)t;
	}
	return w;
}

/* epoll_wait() for at most @wait_us (-1 forever), rounded up to whole ms so
 * that a timer is never woken for early.  Returns the events or -errno. */
static int epoll_for(struct ir_loop *loop, int64_t wait_us)
{
	int ms = -1;
	if (wait_us >= 0) {
		int64_t m = wait_us / 1000 + (wait_us % 1000 != 0);
		ms = m > INT_MAX ? INT_MAX : (int)m;
	}
	int n = epoll_wait(loop->epfd, loop->events, LOOP_MAX_EVENTS, ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	return n;
}

/* Step 3: spin on the pollers until @until (us), looking at the fds every
 * SPIN_EPOLL_US.  Returns the pollers' work, or -errno; *nev gets the fd
 * events found (then the work is 0). */
static int spin(struct ir_loop *loop, uint64_t now, uint64_t until, int *nev)
{
	uint64_t next_epoll = now + SPIN_EPOLL_US;
	for (unsigned i = 1;; i++) {
		int work = poll_pollers(loop);
		if (work > 0)
			return work;
		if (!loop->live_pollers)
			return 0;
		cpu_relax();
		if (i % SPIN_CLOCK_EVERY)
			continue;
		now = ir_now_us();
		if (now >= until)
			return 0;
		if (loop->heap_len && loop->heap[0].deadline <= now)
			return 0; /* a poller added a timer that is already due */
		if (now >= next_epoll) {
			int n = epoll_for(loop, 0);
			loop->last_epoll_us = now;
			if (n != 0) {
				*nev = n > 0 ? n : 0;
				return n < 0 ? n : 0;
			}
			next_epoll = now + SPIN_EPOLL_US;
		}
	}
}

/* Step 4: arm the pollers, block for @wait_us, disarm, poll, adapt the spin
 * budget.  Returns the pollers' work or -errno; *nev gets the fd events. */
static int block(struct ir_loop *loop, int64_t wait_us, int *nev)
{
	uint64_t slept = 0;
	int n = 0;
	int woken = 1; /* work appeared while arming: a wake-up after 0 us */
	if (arm_pollers(loop)) {
		n = epoll_for(loop, 0);
		loop->last_epoll_us = ir_now_us();
	} else {
		uint64_t t0 = ir_now_us();
		n = epoll_for(loop, wait_us);
		loop->last_epoll_us = ir_now_us();
		slept = loop->last_epoll_us - t0;
		woken = n > 0;
	}
	disarm_pollers(loop);
	if (n < 0)
		return n;
	*nev = n;
	int work = poll_pollers(loop);
	spin_adapt(loop, slept, woken || work > 0);
	return work;
}

static int dispatch(struct ir_loop *loop, int nev)
{
	int handled = 0;
	for (int i = 0; i < nev; i++) {
		uint64_t tag = loop->events[i].data.u64;
		uint32_t ev = loop->events[i].events;
		if (tag == WAKE_TAG) {
			handled += run_posts(loop);
			continue;
		}
		int fd = (int)(uint32_t)tag;
		struct fd_slot *s = fd_watched(loop, fd);
		if (!s || s->gen != (uint32_t)(tag >> 32))
			continue; /* deleted (and maybe re-added) by an earlier callback */
		unsigned mask = 0;
		if (ev & EPOLLIN)
			mask |= IR_EV_READ;
		if (ev & EPOLLOUT)
			mask |= IR_EV_WRITE;
		mask &= s->events; /* an earlier callback may have changed them */
		if (ev & (EPOLLERR | EPOLLHUP | EPOLLRDHUP))
			mask |= IR_EV_ERROR;
		if (!mask)
			continue;
		s->cb(loop, fd, mask, s->arg);
		handled++;
	}
	return handled;
}

/* Work was found without blocking: the fast path back to the caller reads
 * no clock (a clock read costs ~30-40 ns on a VM, as much as the rest of a
 * shared-memory hop).  The fds are looked at every BUSY_EPOLL_EVERY busy
 * iterations instead of by time. */
static int busy_tail(struct ir_loop *loop, uint64_t last_id)
{
	int handled = 0;
	if (++loop->busy_iters >= BUSY_EPOLL_EVERY) {
		loop->busy_iters = 0;
		int nev = epoll_for(loop, 0);
		if (nev < 0)
			return nev;
		handled += dispatch(loop, nev);
	}
	return handled + run_timers(loop, last_id);
}

int ir_loop_run_once(struct ir_loop *loop, int64_t timeout_us)
{
	uint64_t last_id = loop->last_timer_id;
	int nev = 0;
	int rc;

	int handled = run_timers(loop, last_id);
	if (loop->live_pollers)
		handled += poll_pollers(loop);
	if (handled) {
		rc = busy_tail(loop, last_id);
		return rc < 0 ? rc : handled + rc;
	}

	uint64_t start = ir_now_us();
	uint64_t now = start;
	int64_t wait = wait_left(loop, start, now, timeout_us);
	if (wait != 0 && loop->live_pollers && loop->spin_budget) {
		uint64_t until = now + loop->spin_budget;
		if (wait > 0 && (uint64_t)wait < loop->spin_budget)
			until = now + (uint64_t)wait;
		rc = spin(loop, now, until, &nev);
		if (rc < 0)
			return rc;
		if (rc > 0) {
			int t = busy_tail(loop, last_id);
			return t < 0 ? t : rc + t;
		}
		now = ir_now_us();
		wait = nev ? 0 : wait_left(loop, start, now, timeout_us);
	}

	if (nev) {
		/* the spin found fd events */
	} else if (wait != 0 && loop->live_pollers) {
		rc = block(loop, wait, &nev);
		if (rc < 0)
			return rc;
		handled += rc;
	} else {
		nev = epoll_for(loop, wait);
		if (nev < 0)
			return nev;
		loop->last_epoll_us = wait ? ir_now_us() : now;
	}
	loop->busy_iters = 0;

	handled += dispatch(loop, nev);
	handled += run_timers(loop, last_id);
	return handled;
}

int ir_loop_run(struct ir_loop *loop)
{
	while (!atomic_exchange(&loop->stop, 0)) {
		int rc = ir_loop_run_once(loop, -1);
		if (rc < 0)
			return rc;
	}
	return 0;
}
