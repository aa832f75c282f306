/* test_pool.c - the bounded worker pool: every job runs once, a full pool
 * pushes back, a faulting job fails alone. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "pool.h"
#include "tests.h"
#include "twd.h"

static atomic_int ran;

static void count(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ran, 1);
}

START_TEST(runs_every_job)
{
	struct ir_pool *p;
	ck_assert_int_eq(ir_pool_new(&p, 4, 2000), 0);
	atomic_store(&ran, 0);
	struct ir_job j = {.run = count};
	for (int i = 0; i < 2000; i++)
		ck_assert_int_eq(ir_pool_submit(p, &j), 0);
	ir_pool_free(p); /* drains what is queued */
	ck_assert_int_eq(atomic_load(&ran), 2000);
}
END_TEST

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;

static void wait_gate(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&gate_mu);
	while (!gate_open)
		pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
	atomic_fetch_add(&ran, 1);
}

START_TEST(full_pool_pushes_back)
{
	struct ir_pool *p;
	ck_assert_int_eq(ir_pool_new(&p, 2, 3), 0);
	atomic_store(&ran, 0);
	gate_open = false;
	struct ir_job j = {.run = wait_gate};
	for (int i = 0; i < 5; i++) /* 2 running + 3 queued */
		ck_assert_int_eq(ir_pool_submit(p, &j), 0);
	ck_assert_int_eq(ir_pool_submit(p, &j), -EBUSY);
	ck_assert_int_eq(ir_pool_submit(p, &j), -EBUSY);
	struct ir_pool_stats st;
	uint64_t t0 = now_ms();
	do {
		ir_pool_stats(p, &st);
	} while (st.busy < 2 && now_ms() - t0 < 5000);
	ck_assert_uint_eq(st.busy, 2);
	ck_assert_uint_eq(st.queued, 3);
	ck_assert_uint_eq(st.rejected, 2);
	pthread_mutex_lock(&gate_mu);
	gate_open = true;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
	t0 = now_ms();
	while (atomic_load(&ran) < 5 && now_ms() - t0 < 5000)
		sleep_ms(1);
	ck_assert_int_eq(ir_pool_submit(p, &j), 0); /* room again */
	ir_pool_free(p);
	ck_assert_int_eq(atomic_load(&ran), 6);
}
END_TEST

#ifndef __SANITIZE_ADDRESS__ /* ASan owns SIGSEGV: the recovery is tested in the plain build */
static atomic_int crash_sig;

static void segv(void *arg)
{
	(void)arg;
	volatile int *null = NULL;
	*null = 1;
	atomic_fetch_add(&ran, 1000); /* never reached */
}

static void fpe(void *arg)
{
	(void)arg;
	raise(SIGFPE);
	atomic_fetch_add(&ran, 1000);
}

static void on_crash(void *arg, int sig)
{
	(void)arg;
	atomic_store(&crash_sig, sig);
}

START_TEST(faulting_job_fails_alone)
{
	if (test_light())
		return; /* valgrind reports the deliberate fault as an error */
	struct ir_pool *p;
	ck_assert_int_eq(ir_pool_new(&p, 1, 8), 0); /* one worker: it must survive */
	atomic_store(&ran, 0);
	struct ir_job bad = {.run = segv, .crashed = on_crash};
	struct ir_job good = {.run = count};
	ck_assert_int_eq(ir_pool_submit(p, &bad), 0);
	ck_assert_int_eq(ir_pool_submit(p, &good), 0);
	uint64_t t0 = now_ms();
	while (atomic_load(&ran) < 1 && now_ms() - t0 < 5000)
		sleep_ms(1);
	ck_assert_int_eq(atomic_load(&crash_sig), SIGSEGV);
	ck_assert_int_eq(atomic_load(&ran), 1);
	bad.run = fpe;
	ck_assert_int_eq(ir_pool_submit(p, &bad), 0);
	ck_assert_int_eq(ir_pool_submit(p, &good), 0);
	t0 = now_ms();
	while (atomic_load(&ran) < 2 && now_ms() - t0 < 5000)
		sleep_ms(1);
	ck_assert_int_eq(atomic_load(&crash_sig), SIGFPE);
	struct ir_pool_stats st;
	ir_pool_stats(p, &st);
	ck_assert_uint_eq(st.crashed, 2);
	ck_assert_uint_eq(st.done, 4);
	ir_pool_free(p);
	ck_assert_int_eq(atomic_load(&ran), 2);
}
END_TEST
#endif

START_TEST(bad_sizes)
{
	struct ir_pool *p;
	ck_assert_int_eq(ir_pool_new(&p, 0, 1), -EINVAL);
	ck_assert_int_eq(ir_pool_new(&p, 1025, 1), -EINVAL);
	ck_assert_int_eq(ir_pool_new(&p, 1, 65537), -EINVAL);
	ck_assert_ptr_null(p);
	ir_pool_free(NULL);
}
END_TEST

Suite *pool_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("pool");
	tcase_add_test(tc, runs_every_job);
	tcase_add_test(tc, full_pool_pushes_back);
#ifndef __SANITIZE_ADDRESS__
	tcase_add_test(tc, faulting_job_fails_alone);
#endif
	tcase_add_test(tc, bad_sizes);
	suite_add_tcase(s, tc);
	return s;
}
