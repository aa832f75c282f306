/* test_ring.c - the SPSC record ring: layout, sizes, wrap, concurrency, sleep/wake, hostile peers.
 *
 * Every test builds a real segment the way the ipc transport does: a memfd
 * of cap bytes mapped twice back to back into a reserved range, and the
 * control block in a separate shared mapping, so a fork()ed peer sees the
 * same memory.  A producer view and a consumer view are attached to it.
 *
 * Most tests start both views one lap in (head = cap): a freshly created,
 * zero-filled array then holds "records from an earlier lap" everywhere,
 * which is what the protocol is built on.  The one case that starts at
 * position 0 on a fresh segment (what transport_ipc.c does) is kept apart,
 * so that a fault there fails one test instead of hiding all the others.
 *
 * Payloads are derived from their sequence number, so a reader can verify
 * a record without sharing anything with the writer but the seed rules.
 * Concurrent tests never rely on timing: peers spin with sched_yield() or
 * block on eventfds with generous poll() limits that only catch a hang.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ring.h"
#include "tests.h"

#define WAIT_MS 5000 /* a blocked side waits this long for its doorbell before failing */

struct seg {
	int fd;
	uint64_t cap;
	uint8_t *data;		 /* 2 * cap: the memfd mapped twice */
	struct ir_ring_ctl *ctl; /* its own shared page */
	struct ir_ring prod, cons;
};

static void seg_open(struct seg *s, uint64_t cap, uint64_t start)
{
	memset(s, 0, sizeof(*s));
	s->cap = cap;
	s->fd = memfd_create("test-ring", MFD_CLOEXEC);
	ck_assert_int_ge(s->fd, 0);
	ck_assert_int_eq(ftruncate(s->fd, (off_t)cap), 0);
	uint8_t *base =
	    mmap(NULL, 2 * cap, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ck_assert_ptr_ne(base, MAP_FAILED);
	for (uint64_t copy = 0; copy < 2; copy++) {
		void *at = mmap(base + copy * cap, cap, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_FIXED, s->fd, 0);
		ck_assert_ptr_eq(at, base + copy * cap);
	}
	s->data = base;
	s->ctl =
	    mmap(NULL, sizeof(*s->ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(s->ctl, MAP_FAILED);
	atomic_store(&s->ctl->head, start);
	ir_ring_attach(&s->prod, s->ctl, s->data, cap);
	ir_ring_attach(&s->cons, s->ctl, s->data, cap);
	ck_assert_uint_eq(s->prod.pos, start);
	ck_assert_uint_eq(s->cons.pos, start);
}

static void seg_close(struct seg *s)
{
	ck_assert_int_eq(munmap(s->ctl, sizeof(*s->ctl)), 0);
	ck_assert_int_eq(munmap(s->data, 2 * s->cap), 0);
	ck_assert_int_eq(close(s->fd), 0);
}

/* The record header at absolute position @pos, as a peer would write it. */
static struct ir_ring_rec *rec_at(struct seg *s, uint64_t pos)
{
	return (struct ir_ring_rec *)(void *)(s->data + (pos & (s->cap - 1)));
}

/* The header word that publishes a record at @pos (ring.h: pos + 1, so
 * that fresh zero-filled memory never matches position 0). */
static uint64_t rec_word(uint64_t pos)
{
	return pos + 1;
}

/* ---- deterministic payloads ---- */

static uint64_t mix64(uint64_t x)
{
	/* splitmix64 finaliser */
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t xorshift(uint64_t *st)
{
	uint64_t x = *st;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*st = x;
	return x * 0x2545f4914f6cdd1dull;
}

static uint32_t sum32(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	for (; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return (uint32_t)(h ^ (h >> 32));
}

/* Length of record @seq: uniform in [0, @max]. */
static uint32_t pay_len(uint64_t seq, uint32_t max)
{
	return (uint32_t)(mix64(seq) % ((uint64_t)max + 1));
}

/* Bytes from a generator seeded by @seq; records of 12 bytes or more
 * carry the sequence number and a checksum of the rest in front. */
static void pay_fill(uint8_t *p, uint32_t len, uint64_t seq)
{
	uint64_t st = mix64(seq ^ 0x5eedull) | 1;
	for (uint32_t i = 0; i < len; i += 8) {
		uint64_t w = xorshift(&st);
		memcpy(p + i, &w, len - i < 8 ? len - i : 8);
	}
	if (len >= 12) {
		uint32_t c = sum32(p + 12, len - 12);
		memcpy(p, &seq, 8);
		memcpy(p + 8, &c, 4);
	}
}

/* 1 if @p/@len/@flags is record @seq as pay_fill() wrote it (flags = seq). */
/* Records carry their sequence number in the flags, less the bit the ring
 * reserves for its own PAD records. */
static uint32_t seq_flags(uint64_t seq)
{
	return (uint32_t)seq & ~IR_RING_F_PAD;
}

static int pay_ok(const uint8_t *p, uint32_t len, uint32_t flags, uint64_t seq, uint32_t max)
{
	if (len != pay_len(seq, max) || flags != seq_flags(seq))
		return 0;
	if (len >= 12) {
		uint64_t s;
		uint32_t c;
		memcpy(&s, p, 8);
		memcpy(&c, p + 8, 4);
		return s == seq && c == sum32(p + 12, len - 12);
	}
	uint8_t want[12];
	pay_fill(want, len, seq);
	return memcmp(p, want, len) == 0;
}

/* ---- single-threaded cases ---- */

START_TEST(double_mapping_aliases)
{
	struct seg s;
	seg_open(&s, 4096, 4096);
	s.data[10] = 0xab;
	ck_assert_uint_eq(s.data[4096 + 10], 0xab);
	s.data[4096 + 4095] = 0xcd;
	ck_assert_uint_eq(s.data[4095], 0xcd);
	seg_close(&s);
}
END_TEST

START_TEST(empty_round_trip)
{
	struct seg s;
	seg_open(&s, 4096, 4096);
	const uint8_t *d = NULL;
	uint32_t len = 99, flags = 99;
	ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), 0);

	uint8_t *w = ir_ring_reserve(&s.prod, 5);
	ck_assert_ptr_nonnull(w);
	memcpy(w, "hello", 5);
	/* Nothing is visible before the commit. */
	ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), 0);
	ck_assert_int_eq(ir_ring_commit(&s.prod, 5, IR_RING_F_FIRST | IR_RING_F_LAST), 0);

	ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), 1);
	ck_assert_ptr_eq(d, w); /* zero copy: read where it was written */
	ck_assert_uint_eq(len, 5);
	ck_assert_uint_eq(flags, IR_RING_F_FIRST | IR_RING_F_LAST);
	ck_assert_mem_eq(d, "hello", 5);
	/* Peeking again returns the same record. */
	ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), 1);
	ck_assert_uint_eq(len, 5);
	ck_assert_int_eq(ir_ring_release(&s.cons), 0);
	ck_assert_uint_eq(atomic_load(&s.ctl->head), 4096 + 64);
	ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), 0);
	seg_close(&s);
}
END_TEST

/* What transport_ipc.c does: a new zero-filled memfd, head 0, nothing sent. */
START_TEST(fresh_segment_is_empty)
{
	struct seg s;
	seg_open(&s, 4096, 0);
	const uint8_t *d = NULL;
	uint32_t len = 99, flags = 99;
	ck_assert_msg(ir_ring_peek(&s.cons, &d, &len, &flags) == 0,
		      "peek on a fresh ring returned a record (len %u flags %#x)", len, flags);
	ck_assert_int_eq(ir_ring_consumer_arm(&s.cons), 0);
	ir_ring_consumer_disarm(&s.cons);

	uint8_t *w = ir_ring_reserve(&s.prod, 3);
	ck_assert_ptr_nonnull(w);
	memcpy(w, "abc", 3);
	ck_assert_int_eq(ir_ring_commit(&s.prod, 3, IR_RING_F_FIRST), 0);
	ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), 1);
	ck_assert_uint_eq(len, 3);
	ck_assert_uint_eq(flags, IR_RING_F_FIRST);
	ck_assert_mem_eq(d, "abc", 3);
	ir_ring_release(&s.cons);
	seg_close(&s);
}
END_TEST

START_TEST(record_sizes)
{
	const uint64_t cap = 4096;
	struct seg s;
	seg_open(&s, cap, cap);
	ck_assert_uint_eq(ir_ring_rec_size(0), 64);
	ck_assert_uint_eq(ir_ring_rec_size(48), 64);
	ck_assert_uint_eq(ir_ring_rec_size(49), 128);
	ck_assert_uint_eq(ir_ring_max_rec(cap), cap - 16);
	ck_assert_uint_eq(ir_ring_rec_size(ir_ring_max_rec(cap)), cap);

	/* The largest comes after the others, so it starts mid-array and wraps. */
	const uint32_t sizes[] = {0, 1, 15, 16, 48, 49, (uint32_t)cap - 16, 0, (uint32_t)cap - 16};
	static uint8_t buf[4096];
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint32_t n = sizes[i];
		uint64_t at = s.prod.pos;
		uint8_t *w = ir_ring_reserve(&s.prod, n);
		ck_assert_msg(w != NULL, "reserve(%u) failed", n);
		ck_assert_ptr_eq(w, s.data + (at & (cap - 1)) + IR_RING_REC_HDR);
		pay_fill(buf, n, i);
		memcpy(w, buf, n);
		ck_assert_int_eq(ir_ring_commit(&s.prod, n, seq_flags(i)), 0);
		ck_assert_uint_eq(s.prod.pos, at + ir_ring_rec_size(n));

		const uint8_t *d;
		uint32_t len, flags;
		ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), 1);
		ck_assert_uint_eq(len, n);
		ck_assert_uint_eq(flags, seq_flags(i));
		ck_assert_ptr_eq(d, w);
		ck_assert_int_eq(memcmp(d, buf, n), 0);
		ck_assert_int_eq(ir_ring_release(&s.cons), 0);
		ck_assert_uint_eq(s.cons.pos, s.prod.pos);
		ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), 0);
	}
	/* Too big for this ring, now or ever. */
	ck_assert_ptr_null(ir_ring_reserve(&s.prod, cap - 15));
	ck_assert_ptr_null(ir_ring_reserve(&s.prod, cap));
	ck_assert_ptr_null(ir_ring_reserve(&s.prod, UINT64_MAX));
	ck_assert_uint_eq(s.prod.reserved, 0);
	seg_close(&s);
}
END_TEST

START_TEST(full_then_release)
{
	const uint64_t cap = 4096;
	struct seg s;
	seg_open(&s, cap, cap);
	const uint8_t *d;
	uint32_t len, flags;

	/* 64 records of 48 data bytes fill 4 KiB exactly. */
	for (uint32_t i = 0; i < cap / 64; i++) {
		uint8_t *w = ir_ring_reserve(&s.prod, 48);
		ck_assert_msg(w != NULL, "reserve %u of %u failed", i, (unsigned)(cap / 64));
		memset(w, (int)i, 48);
		ck_assert_int_eq(ir_ring_commit(&s.prod, 48, seq_flags(i)), 0);
	}
	ck_assert_int_eq(ir_ring_space(&s.prod, 64), 0);
	ck_assert_ptr_null(ir_ring_reserve(&s.prod, 0));
	ck_assert_ptr_null(ir_ring_reserve(&s.prod, 48));

	/* One released record makes room for one small record, not a bigger one. */
	ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), 1);
	ck_assert_uint_eq(flags, 0);
	ck_assert_int_eq(ir_ring_release(&s.cons), 0);
	ck_assert_ptr_null(ir_ring_reserve(&s.prod, 49));
	uint8_t *w = ir_ring_reserve(&s.prod, 48);
	ck_assert_ptr_nonnull(w);
	memset(w, 0xee, 48);
	ck_assert_int_eq(ir_ring_commit(&s.prod, 48, seq_flags(1000)), 0);
	ck_assert_ptr_null(ir_ring_reserve(&s.prod, 0));

	/* Everything comes out in order, the refill last. */
	for (uint32_t i = 1; i <= cap / 64; i++) {
		ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), 1);
		uint32_t want = seq_flags(i < cap / 64 ? i : 1000);
		ck_assert_uint_eq(flags, want);
		ck_assert_uint_eq(len, 48);
		ck_assert_uint_eq(d[0], i < cap / 64 ? (uint8_t)i : 0xee);
		ck_assert_uint_eq(d[47], i < cap / 64 ? (uint8_t)i : 0xee);
		ir_ring_release(&s.cons);
	}
	ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), 0);
	/* Empty again: the largest record fits. */
	ck_assert_ptr_nonnull(ir_ring_reserve(&s.prod, cap - 16));
	seg_close(&s);
}
END_TEST

START_TEST(commit_shorter_than_reserved)
{
	struct seg s;
	seg_open(&s, 4096, 4096);
	uint64_t at = s.prod.pos;
	uint8_t *w = ir_ring_reserve(&s.prod, 1000);
	ck_assert_ptr_nonnull(w);
	ck_assert_uint_eq(s.prod.reserved, 1000);
	memcpy(w, "0123456789", 10);
	ck_assert_int_eq(ir_ring_commit(&s.prod, 10, 3), 0);
	ck_assert_uint_eq(s.prod.reserved, 0);
	ck_assert_uint_eq(s.prod.pos, at + 64);

	const uint8_t *d;
	uint32_t len, flags;
	ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), 1);
	ck_assert_uint_eq(len, 10);
	ck_assert_uint_eq(flags, 3);
	ck_assert_mem_eq(d, "0123456789", 10);
	ir_ring_release(&s.cons);
	ck_assert_uint_eq(s.cons.pos, at + 64);
	seg_close(&s);
}
END_TEST

START_TEST(wrap_around)
{
	const uint64_t cap = 4096;
	const uint64_t start = 3 * cap;
	struct seg s;
	seg_open(&s, cap, start);
	uint64_t st = 0x1234567ull, next_w = 0, next_r = 0, straddles = 0;
	const uint32_t max = (uint32_t)ir_ring_max_rec(cap);

	while (s.prod.pos - start < 64 * cap) {
		/* Produce a burst until full (or a random count), then drain some. */
		unsigned burst = (unsigned)(xorshift(&st) % 8) + 1;
		for (unsigned b = 0; b < burst; b++) {
			uint32_t n = pay_len(next_w, max);
			if (next_w % 5)
				n %= 700; /* mostly small, some up to the maximum */
			uint64_t off = s.prod.pos & (cap - 1);
			uint8_t *w = ir_ring_reserve(&s.prod, n);
			if (!w)
				break;
			ck_assert_ptr_eq(w, s.data + off + IR_RING_REC_HDR);
			if (off + IR_RING_REC_HDR + n > cap)
				straddles++;
			uint8_t tmp[4096];
			pay_fill(tmp, n, next_w);
			memcpy(w, tmp, n);
			ir_ring_commit(&s.prod, n, seq_flags(next_w));
			next_w++;
		}
		unsigned drain = (unsigned)(xorshift(&st) % 8) + 1;
		for (unsigned b = 0; b < drain; b++) {
			const uint8_t *d;
			uint32_t len, flags;
			int rc = ir_ring_peek(&s.cons, &d, &len, &flags);
			ck_assert_int_ge(rc, 0);
			if (!rc) {
				ck_assert_uint_eq(next_r, next_w);
				break;
			}
			uint64_t off = s.cons.pos & (cap - 1);
			ck_assert_ptr_eq(d, s.data + off + IR_RING_REC_HDR);
			uint32_t want = pay_len(next_r, max);
			if (next_r % 5)
				want %= 700;
			ck_assert_uint_eq(len, want);
			ck_assert_uint_eq(flags, seq_flags(next_r));
			uint8_t tmp[4096];
			pay_fill(tmp, len, next_r);
			ck_assert_msg(memcmp(d, tmp, len) == 0, "record %llu corrupt",
				      (unsigned long long)next_r);
			/* Contiguous through the second copy: the same bytes, wrapped. */
			for (uint32_t i = 0; i < len; i += 61)
				ck_assert_uint_eq(d[i],
						  s.data[(off + IR_RING_REC_HDR + i) & (cap - 1)]);
			ck_assert_int_eq(ir_ring_release(&s.cons), 0);
			next_r++;
		}
	}
	ck_assert_uint_ge(s.prod.pos - start, 64 * cap);
	ck_assert_uint_ge(straddles, 10);
	ck_assert_uint_ge(next_r, 100);
	seg_close(&s);
}
END_TEST

/* ---- concurrency: two threads spinning ---- */

#define TH_MAX 3000u

struct spin_arg {
	struct ir_ring *r;
	uint64_t n;
	atomic_int stop;
	int err; /* producer: 0, or where it failed */
};

static void *spin_producer(void *p)
{
	struct spin_arg *a = p;
	for (uint64_t seq = 0; seq < a->n; seq++) {
		uint32_t n = pay_len(seq, TH_MAX);
		uint8_t *w;
		while (!(w = ir_ring_reserve(a->r, n))) {
			if (ir_ring_space(a->r, ir_ring_rec_size(n)) < 0) {
				a->err = 1;
				return NULL;
			}
			if (atomic_load(&a->stop))
				return NULL;
			sched_yield();
		}
		pay_fill(w, n, seq);
		ir_ring_commit(a->r, n, seq_flags(seq));
	}
	return NULL;
}

START_TEST(threads_spin)
{
	struct seg s;
	seg_open(&s, 64 * 1024, 64 * 1024);
	struct spin_arg a = {.r = &s.prod, .n = test_light() ? 20000 : 1000000};
	atomic_init(&a.stop, 0);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, spin_producer, &a), 0);

	uint64_t seq = 0, bad = UINT64_MAX;
	int rc = 0;
	while (seq < a.n) {
		const uint8_t *d;
		uint32_t len, flags;
		rc = ir_ring_peek(&s.cons, &d, &len, &flags);
		if (rc < 0)
			break;
		if (rc == 0) {
			sched_yield();
			continue;
		}
		if (!pay_ok(d, len, flags, seq, TH_MAX)) {
			bad = seq;
			break;
		}
		ir_ring_release(&s.cons);
		seq++;
	}
	atomic_store(&a.stop, 1);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_ge(rc, 0);
	ck_assert_msg(bad == UINT64_MAX, "record %llu out of order or corrupt",
		      (unsigned long long)bad);
	ck_assert_int_eq(a.err, 0);
	ck_assert_uint_eq(seq, a.n);
	const uint8_t *d;
	uint32_t len, flags;
	ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), 0);
	seg_close(&s);
}
END_TEST

/* ---- concurrency: a fork()ed producer, both sides sleeping on eventfds ---- */

#define FK_MAX 3000u

struct fk_shared {
	_Atomic uint64_t prod_sleeps;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void bell_ring(int fd)
{
	uint64_t one = 1;
	ssize_t w = write(fd, &one, sizeof(one));
	(void)w; /* EAGAIN: the counter is already non-zero */
}

/* Block until @fd is rung: 1, or 0 if WAIT_MS passed (a lost wake-up). */
static int bell_wait(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int n;
	do
		n = poll(&p, 1, WAIT_MS);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return 0;
	uint64_t v;
	ssize_t r = read(fd, &v, sizeof(v));
	(void)r;
	return 1;
}

/* Spin until *@flag is set: 1, or 0 after WAIT_MS. */
static int await_flag(_Atomic uint32_t *flag)
{
	uint64_t until = now_ms() + WAIT_MS;
	while (!atomic_load(flag)) {
		if (now_ms() > until)
			return 0;
		sched_yield();
	}
	return 1;
}

/* The child: exit status 0, or which step failed. */
static void fk_producer(struct ir_ring *r, uint64_t n, int bell_cons, int bell_prod,
			struct fk_shared *sh)
{
	/* Let the consumer find the ring empty and go to sleep first. */
	if (!await_flag(&r->ctl->consumer_sleeping))
		_exit(10);
	for (uint64_t seq = 0; seq < n; seq++) {
		uint32_t len = pay_len(seq, FK_MAX);
		uint8_t *w;
		while (!(w = ir_ring_reserve(r, len))) {
			int a = ir_ring_producer_arm(r, ir_ring_rec_size(len));
			if (a < 0)
				_exit(11);
			if (a == 1)
				continue;
			atomic_fetch_add(&sh->prod_sleeps, 1);
			if (!bell_wait(bell_prod))
				_exit(12);
			ir_ring_producer_disarm(r);
		}
		pay_fill(w, len, seq);
		if (ir_ring_commit(r, len, seq_flags(seq)))
			bell_ring(bell_cons);
	}
	_exit(0);
}

START_TEST(fork_sleep_wake)
{
	struct seg s;
	seg_open(&s, 8192, 8192);
	const uint64_t n = test_light() ? 20000 : 200000;
	struct fk_shared *sh =
	    mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(sh, MAP_FAILED);
	atomic_init(&sh->prod_sleeps, 0);
	int bell_cons = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int bell_prod = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_ge(bell_cons, 0);
	ck_assert_int_ge(bell_prod, 0);

	pid_t parent = getpid();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(9);
		fk_producer(&s.prod, n, bell_cons, bell_prod, sh);
	}

	uint64_t seq = 0, cons_sleeps = 0, bad = UINT64_MAX;
	int rc = 0, lost = 0, waited_full = 0;
	while (seq < n) {
		const uint8_t *d;
		uint32_t len, flags;
		rc = ir_ring_peek(&s.cons, &d, &len, &flags);
		if (rc < 0)
			break;
		if (rc == 0) {
			if (ir_ring_consumer_arm(&s.cons))
				continue;
			cons_sleeps++;
			if (!bell_wait(bell_cons)) {
				lost = 1;
				break;
			}
			ir_ring_consumer_disarm(&s.cons);
			continue;
		}
		if (!waited_full) {
			/* Once, let the producer fill the ring and go to sleep. */
			waited_full = 1;
			if (!await_flag(&s.ctl->producer_sleeping)) {
				lost = 2;
				break;
			}
		}
		if (!pay_ok(d, len, flags, seq, FK_MAX)) {
			bad = seq;
			break;
		}
		if (ir_ring_release(&s.cons))
			bell_ring(bell_prod);
		seq++;
	}
	if (seq < n)
		kill(pid, SIGKILL);
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_ge(rc, 0);
	ck_assert_msg(lost != 1, "consumer slept %d ms at record %llu: lost wake-up", WAIT_MS,
		      (unsigned long long)seq);
	ck_assert_msg(lost != 2, "producer never found the ring full");
	ck_assert_msg(bad == UINT64_MAX, "record %llu out of order or corrupt",
		      (unsigned long long)bad);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "producer failed: status %#x (12 = lost wake-up)", status);
	ck_assert_uint_eq(seq, n);
	ck_assert_uint_ge(cons_sleeps, 1);
	ck_assert_uint_ge(atomic_load(&sh->prod_sleeps), 1);
	const uint8_t *d;
	uint32_t len, flags;
	ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), 0);
	close(bell_cons);
	close(bell_prod);
	munmap(sh, sizeof(*sh));
	seg_close(&s);
}
END_TEST

/* ---- arm/commit/release semantics ---- */

static void put(struct seg *s, uint32_t len, uint32_t flags, int want_wake)
{
	uint8_t *w = ir_ring_reserve(&s->prod, len);
	ck_assert_ptr_nonnull(w);
	memset(w, 0x5a, len);
	ck_assert_int_eq(ir_ring_commit(&s->prod, len, flags), want_wake);
}

static void take(struct seg *s, uint32_t flags, int want_wake)
{
	const uint8_t *d;
	uint32_t len, fl;
	ck_assert_int_eq(ir_ring_peek(&s->cons, &d, &len, &fl), 1);
	ck_assert_uint_eq(fl, flags);
	ck_assert_int_eq(ir_ring_release(&s->cons), want_wake);
}

START_TEST(consumer_arm)
{
	struct seg s;
	seg_open(&s, 4096, 4096);
	/* Empty: armed; the next commit must wake us, and only that one. */
	ck_assert_int_eq(ir_ring_consumer_arm(&s.cons), 0);
	ck_assert_uint_eq(atomic_load(&s.ctl->consumer_sleeping), 1);
	put(&s, 10, 1, 1);
	ck_assert_uint_eq(atomic_load(&s.ctl->consumer_sleeping), 0);
	put(&s, 10, 2, 0);
	ir_ring_consumer_disarm(&s.cons);

	/* A record is ready: do not sleep, and leave nothing armed. */
	ck_assert_int_eq(ir_ring_consumer_arm(&s.cons), 1);
	ck_assert_uint_eq(atomic_load(&s.ctl->consumer_sleeping), 0);
	take(&s, 1, 0);
	ck_assert_int_eq(ir_ring_consumer_arm(&s.cons), 1);
	take(&s, 2, 0);

	/* Disarmed after a wake-up that never came: commits stay silent. */
	ck_assert_int_eq(ir_ring_consumer_arm(&s.cons), 0);
	ir_ring_consumer_disarm(&s.cons);
	ck_assert_uint_eq(atomic_load(&s.ctl->consumer_sleeping), 0);
	put(&s, 0, 3, 0);
	take(&s, 3, 0);

	/* A stale record from an earlier lap does not count as ready. */
	ck_assert_int_eq(ir_ring_consumer_arm(&s.cons), 0);
	ir_ring_consumer_disarm(&s.cons);
	seg_close(&s);
}
END_TEST

START_TEST(producer_arm)
{
	const uint64_t cap = 4096;
	struct seg s;
	seg_open(&s, cap, cap);
	/* Room: do not sleep, nothing left armed. */
	ck_assert_int_eq(ir_ring_producer_arm(&s.prod, cap), 1);
	ck_assert_uint_eq(atomic_load(&s.ctl->producer_sleeping), 0);
	ck_assert_int_eq(ir_ring_release(&s.cons), 0);

	for (uint32_t i = 0; i < cap / 64; i++)
		put(&s, 48, i, 0);
	/* Full: armed; the next release must wake us, and only that one. */
	ck_assert_int_eq(ir_ring_producer_arm(&s.prod, 64), 0);
	ck_assert_uint_eq(atomic_load(&s.ctl->producer_sleeping), 1);
	take(&s, 0, 1);
	ck_assert_uint_eq(atomic_load(&s.ctl->producer_sleeping), 0);
	take(&s, 1, 0);
	ir_ring_producer_disarm(&s.prod);

	/* Arming reads head afresh: 128 bytes are free although the cached
	 * head says the ring is full. */
	ck_assert_int_eq(ir_ring_producer_arm(&s.prod, 128), 1);
	ck_assert_uint_eq(atomic_load(&s.ctl->producer_sleeping), 0);
	/* Not enough for 192: armed; disarming silences the release. */
	ck_assert_int_eq(ir_ring_producer_arm(&s.prod, 192), 0);
	ir_ring_producer_disarm(&s.prod);
	take(&s, 2, 0);
	ck_assert_int_eq(ir_ring_producer_arm(&s.prod, 192), 1);
	seg_close(&s);
}
END_TEST

/* Two threads, each blocking on its own eventfd: a deterministic hand-off
 * of every doorbell the protocol promises. */
struct pingpong {
	struct seg *s;
	int bell;
	int ok;
};

static void *pp_consumer(void *p)
{
	struct pingpong *pp = p;
	const uint8_t *d;
	uint32_t len, flags;
	for (;;) {
		int rc = ir_ring_peek(&pp->s->cons, &d, &len, &flags);
		if (rc < 0)
			return NULL;
		if (rc == 1)
			break;
		if (ir_ring_consumer_arm(&pp->s->cons))
			continue;
		if (!bell_wait(pp->bell))
			return NULL;
		ir_ring_consumer_disarm(&pp->s->cons);
	}
	pp->ok = len == 4 && flags == 42 && memcmp(d, "ping", 4) == 0;
	ir_ring_release(&pp->s->cons);
	return NULL;
}

START_TEST(blocked_consumer_is_woken)
{
	struct seg s;
	seg_open(&s, 4096, 4096);
	struct pingpong pp = {.s = &s, .bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
	ck_assert_int_ge(pp.bell, 0);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, pp_consumer, &pp), 0);
	/* Wait until the consumer is asleep, so the commit must ring. */
	ck_assert(await_flag(&s.ctl->consumer_sleeping));
	uint8_t *w = ir_ring_reserve(&s.prod, 4);
	ck_assert_ptr_nonnull(w);
	memcpy(w, "ping", 4);
	ck_assert_int_eq(ir_ring_commit(&s.prod, 4, 42), 1);
	bell_ring(pp.bell);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(pp.ok, 1);
	close(pp.bell);
	seg_close(&s);
}
END_TEST

/* ---- hostile peers ---- */

START_TEST(hostile_head)
{
	const uint64_t cap = 4096;
	struct seg s;
	seg_open(&s, cap, cap);
	put(&s, 100, 1, 0);
	put(&s, 100, 2, 0);
	uint64_t tail = s.prod.pos;
	take(&s, 1, 0);
	ck_assert_int_eq(ir_ring_space(&s.prod, cap), (int64_t)(cap - 128));

	/* Beyond what was written. */
	atomic_store(&s.ctl->head, tail + 64);
	ck_assert_int_eq(ir_ring_space(&s.prod, cap), -EPROTO);
	ck_assert_int_eq(ir_ring_producer_arm(&s.prod, 64), -EPROTO);
	ir_ring_producer_disarm(&s.prod);
	ck_assert_ptr_null(ir_ring_reserve(&s.prod, cap - 16));
	atomic_store(&s.ctl->head, UINT64_MAX);
	ck_assert_int_eq(ir_ring_space(&s.prod, cap), -EPROTO);

	/* Backwards, behind what was already released. */
	atomic_store(&s.ctl->head, cap);
	ck_assert_int_eq(ir_ring_space(&s.prod, cap), -EPROTO);

	/* Exactly the tail is fine: everything released. */
	atomic_store(&s.ctl->head, tail);
	ck_assert_int_eq(ir_ring_space(&s.prod, cap), (int64_t)cap);
	seg_close(&s);
}
END_TEST

START_TEST(hostile_record)
{
	const uint64_t cap = 4096;
	struct seg s;
	seg_open(&s, cap, 5 * cap);
	const uint8_t *d;
	uint32_t len, flags;
	uint64_t p = s.cons.pos;
	struct ir_ring_rec *rec = rec_at(&s, p);

	/* Stale: a record of an earlier lap, or one from a lap not reached. */
	rec->len = 5;
	rec->flags = 1;
	atomic_store(&rec->pos, rec_word(p - cap));
	ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), 0);
	ck_assert_int_eq(ir_ring_consumer_arm(&s.cons), 0);
	ir_ring_consumer_disarm(&s.cons);
	atomic_store(&rec->pos, rec_word(p - 4 * cap));
	ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), 0);
	atomic_store(&rec->pos, rec_word(p + cap));
	ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), 0);
	atomic_store(&rec->pos, rec_word(p + 64));
	ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), 0);

	/* The position matches but the length does not fit the ring. */
	rec->len = (uint32_t)cap - 15;
	atomic_store(&rec->pos, rec_word(p));
	ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), -EPROTO);
	rec->len = UINT32_MAX;
	ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), -EPROTO);
	ck_assert_uint_eq(s.cons.pos, p);

	/* The largest legal length is accepted... */
	rec->len = (uint32_t)cap - 16;
	ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), 1);
	ck_assert_uint_eq(len, cap - 16);
	ck_assert_ptr_eq(d, (const uint8_t *)rec + IR_RING_REC_HDR);
	/* ...and what release skips is what peek validated, whatever the
	 * peer writes in between. */
	rec->len = 7;
	ir_ring_release(&s.cons);
	ck_assert_uint_eq(s.cons.pos, p + cap);
	ck_assert_uint_eq(atomic_load(&s.ctl->head), p + cap);
	seg_close(&s);
}
END_TEST

/* An honest producer's payload is not the consumer's to interpret: bytes
 * that an earlier lap left where the next header goes must not be taken
 * for a record, even when they happen to hold the position value.
 * (Payloads carry data from outside the process, so this is reachable.) */
START_TEST(stale_payload_is_not_a_record)
{
	const uint64_t cap = 4096;
	struct seg s;
	seg_open(&s, cap, cap);
	uint64_t p0 = s.prod.pos;

	/* Lap 1: one 200-byte record at p0 whose data covers p0 + 64. */
	uint8_t *w = ir_ring_reserve(&s.prod, 200);
	ck_assert_ptr_nonnull(w);
	memset(w, 0, 200);
	uint64_t forged = rec_word(p0 + cap + 64); /* a header read there next lap */
	uint32_t forged_len = 16, forged_flags = IR_RING_F_FIRST | IR_RING_F_LAST;
	memcpy(w + 48, &forged, 8); /* data byte 48 lies at p0 + 64 */
	memcpy(w + 56, &forged_len, 4);
	memcpy(w + 60, &forged_flags, 4);
	ir_ring_commit(&s.prod, 200, 0);
	take(&s, 0, 0);

	/* Fill up to the end of the lap, then one record at p0 + cap. */
	while (s.prod.pos < p0 + cap) {
		put(&s, 48, 1, 0);
		take(&s, 1, 0);
	}
	put(&s, 0, 2, 0);
	take(&s, 2, 0);
	ck_assert_uint_eq(s.cons.pos, p0 + cap + 64);

	/* The producer has written nothing at p0 + cap + 64. */
	const uint8_t *d;
	uint32_t len = 0, flags = 0;
	int rc = ir_ring_peek(&s.cons, &d, &len, &flags);
	ck_assert_msg(rc == 0, "peek returned %d: a record (len %u flags %#x) forged by payload",
		      rc, len, flags);
	seg_close(&s);
}
END_TEST

/* An empty ring sends the next record back to the start of the array once
 * the lap is IR_RING_REWIND_MIN along (or the record is that large); the
 * PAD in between is invisible to the consumer. */
static void put_get(struct seg *s, uint32_t n, uint64_t seq, uint64_t want_off)
{
	uint8_t *w = ir_ring_reserve(&s->prod, n);
	ck_assert_ptr_nonnull(w);
	ck_assert_msg(w == s->data + want_off + IR_RING_REC_HDR,
		      "record %llu at offset %lld, not %llu", (unsigned long long)seq,
		      (long long)(w - s->data - IR_RING_REC_HDR), (unsigned long long)want_off);
	memset(w, (int)(seq & 0xff), n);
	ir_ring_commit(&s->prod, n, IR_RING_F_FIRST | IR_RING_F_LAST);
	const uint8_t *d;
	uint32_t len, flags;
	ck_assert_int_eq(ir_ring_peek(&s->cons, &d, &len, &flags), 1);
	ck_assert_ptr_eq(d, w);
	ck_assert_uint_eq(len, n);
	ck_assert_uint_eq(flags, IR_RING_F_FIRST | IR_RING_F_LAST);
	ck_assert_uint_eq(d[n ? n - 1 : 0], n ? (uint8_t)seq : d[0]);
	ir_ring_release(&s->cons);
	ck_assert_uint_eq(s->cons.pos, s->prod.pos);
}

START_TEST(rewind_when_empty)
{
	const uint64_t cap = 256u << 10;
	struct seg s;
	seg_open(&s, cap, 0);
	/* Small records walk forward until the lap is 32 KiB along ... */
	uint64_t seq = 0, off = 0;
	while (off < IR_RING_REWIND_MIN) {
		put_get(&s, 100, seq++, off);
		off += ir_ring_rec_size(100);
	}
	/* ... then the next one starts the array again. */
	put_get(&s, 100, seq++, 0);
	put_get(&s, 100, seq++, ir_ring_rec_size(100));
	/* A large record rewinds only if it fits in front of the consumer ... */
	uint64_t at = 2 * ir_ring_rec_size(100);
	put_get(&s, IR_RING_REWIND_MIN, seq++, at);
	at += ir_ring_rec_size(IR_RING_REWIND_MIN);
	put_get(&s, 100 * 1024, seq++, at);
	/* ... and then it does, whatever the lap's progress. */
	put_get(&s, 60 * 1024, seq++, 0);
	put_get(&s, 60 * 1024, seq++, 0);
	/* Not while records are queued: a second record goes behind the first
	 * (which itself rewound: the ring was empty and the lap far along). */
	uint8_t *w1 = ir_ring_reserve(&s.prod, 100);
	ck_assert_ptr_eq(w1, s.data + IR_RING_REC_HDR);
	ir_ring_commit(&s.prod, 100, 3);
	uint8_t *w2 = ir_ring_reserve(&s.prod, IR_RING_REWIND_MIN);
	ck_assert_ptr_eq(w2, s.data + ir_ring_rec_size(100) + IR_RING_REC_HDR);
	ir_ring_commit(&s.prod, IR_RING_REWIND_MIN, 3);
	const uint8_t *d;
	uint32_t len, flags;
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), 1);
		ck_assert_ptr_eq(d, i ? w2 : w1);
		ir_ring_release(&s.cons);
	}
	ck_assert_int_eq(ir_ring_peek(&s.cons, &d, &len, &flags), 0);
	seg_close(&s);
}
END_TEST

Suite *ring_suite(void)
{
	Suite *s = suite_create("ring");
	TCase *tc = tcase_create("basic");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, double_mapping_aliases);
	tcase_add_test(tc, empty_round_trip);
	tcase_add_test(tc, fresh_segment_is_empty);
	tcase_add_test(tc, record_sizes);
	tcase_add_test(tc, rewind_when_empty);
	tcase_add_test(tc, full_then_release);
	tcase_add_test(tc, commit_shorter_than_reserved);
	tcase_add_test(tc, wrap_around);
	suite_add_tcase(s, tc);

	tc = tcase_create("arm");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, consumer_arm);
	tcase_add_test(tc, producer_arm);
	tcase_add_test(tc, blocked_consumer_is_woken);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostile");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, hostile_head);
	tcase_add_test(tc, hostile_record);
	tcase_add_test(tc, stale_payload_is_not_a_record);
	suite_add_tcase(s, tc);

	tc = tcase_create("concurrent");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, threads_spin);
	tcase_add_test(tc, fork_sleep_wake);
	suite_add_tcase(s, tc);
	return s;
}
