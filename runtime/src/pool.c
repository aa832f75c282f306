/* pool.c - the bounded worker pool (see pool.h for the design). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

#define ALT_STACK (64 * 1024)

static const int FAULTS[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
#define NFAULTS (sizeof(FAULTS) / sizeof(FAULTS[0]))

struct ir_pool {
	pthread_mutex_t mu;
	pthread_cond_t work;
	struct ir_job *ring; /* cap = nthreads + queue */
	unsigned cap, head, n;
	unsigned nthreads, started, busy;
	bool stop;
	uint64_t done, rejected, crashed;
	pthread_t *threads;
};

/* ---- fault recovery ---- */

static __thread sigjmp_buf *job_jb; /* set while this thread runs a job */
static struct sigaction old_act[NFAULTS];
static pthread_once_t faults_once = PTHREAD_ONCE_INIT;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	if (job_jb)
		siglongjmp(*job_jb, sig);
	/* Not in a job: the runtime itself faulted.  Put back what was there
	 * before and return: the instruction faults again and that action
	 * (by default: die with a core) runs. */
	for (size_t i = 0; i < NFAULTS; i++)
		if (FAULTS[i] == sig)
			sigaction(sig, &old_act[i], NULL);
}

static void faults_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < NFAULTS; i++)
		sigaction(FAULTS[i], &sa, &old_act[i]);
}

/* One job; a fault in it lands back here with the signal's number. */
static bool run_job(const struct ir_job *job)
{
	sigjmp_buf jb;
	int sig = sigsetjmp(jb, 1);
	if (sig == 0) {
		job_jb = &jb;
		job->run(job->arg);
		job_jb = NULL;
		return true;
	}
	job_jb = NULL;
	if (job->crashed)
		job->crashed(job->arg, sig);
	return false;
}

/* ---- workers ---- */

static void *worker(void *arg)
{
	struct ir_pool *p = arg;
	stack_t ss = {.ss_sp = malloc(ALT_STACK), .ss_size = ALT_STACK};
	if (ss.ss_sp)
		sigaltstack(&ss, NULL);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->n && !p->stop)
			pthread_cond_wait(&p->work, &p->mu);
		if (!p->n)
			break; /* stopping, and nothing left */
		struct ir_job job = p->ring[p->head];
		p->head = (p->head + 1) % p->cap;
		p->n--;
		p->busy++;
		pthread_mutex_unlock(&p->mu);
		bool ok = run_job(&job);
		pthread_mutex_lock(&p->mu);
		p->busy--;
		p->done++;
		p->crashed += !ok;
	}
	pthread_mutex_unlock(&p->mu);
	if (ss.ss_sp) {
		stack_t off = {.ss_flags = SS_DISABLE};
		sigaltstack(&off, NULL);
		free(ss.ss_sp);
	}
	return NULL;
}

int ir_pool_new(struct ir_pool **out, unsigned nthreads, unsigned queue)
{
	*out = NULL;
	if (nthreads < 1 || nthreads > 1024 || queue > 65536)
		return -EINVAL;
	struct ir_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->cap = nthreads + queue;
	p->nthreads = nthreads;
	p->ring = calloc(p->cap, sizeof(*p->ring));
	p->threads = calloc(nthreads, sizeof(*p->threads));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	if (!p->ring || !p->threads) {
		ir_pool_free(p);
		return -ENOMEM;
	}
	pthread_once(&faults_once, faults_install);
	for (; p->started < nthreads; p->started++) {
		int rc = pthread_create(&p->threads[p->started], NULL, worker, p);
		if (rc) {
			ir_pool_free(p);
			return -rc;
		}
	}
	*out = p;
	return 0;
}

int ir_pool_submit(struct ir_pool *p, const struct ir_job *job)
{
	int rc = 0;
	pthread_mutex_lock(&p->mu);
	if (p->stop) {
		rc = -ESHUTDOWN;
	} else if (p->busy + p->n >= p->cap) {
		p->rejected++;
		rc = -EBUSY;
	} else {
		p->ring[(p->head + p->n) % p->cap] = *job;
		p->n++;
		pthread_cond_signal(&p->work);
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

void ir_pool_stats(struct ir_pool *p, struct ir_pool_stats *s)
{
	pthread_mutex_lock(&p->mu);
	*s = (struct ir_pool_stats){.busy = p->busy,
				    .queued = p->n,
				    .done = p->done,
				    .rejected = p->rejected,
				    .crashed = p->crashed};
	pthread_mutex_unlock(&p->mu);
}

void ir_pool_free(struct ir_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->started; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->mu);
	free(p->threads);
	free(p->ring);
	free(p);
}
