/* pool.h - the bounded worker pool that runs handlers off the I/O thread.
 *
 * Why this design: DESIGN §4 "Threads" - handlers never run on the event
 * loop, and a full pool pushes back instead of growing a queue: submit()
 * fails with -EBUSY when every worker is busy and the queue (a fixed ring)
 * is full, and the caller answers CREDIT/429.  A fixed set of threads
 * (the instance's capacity) rather than a thread per request: memory and
 * scheduling stay bounded whatever the offered load.
 *
 * Crashes: a handler that faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL) on a
 * worker thread must fail its request, not the instance.  Each worker runs
 * jobs under sigsetjmp() with the fault signals handled on an alternate
 * stack; a fault in a job jumps back to the worker, which reports it
 * through the job's crash callback and goes on with the next job.  This is
 * a best effort by nature: what the handler allocated is leaked and a lock
 * it held stays held, so the pool counts crashes (ir_pool_stats()) and the
 * runtime can decide to restart the instance after too many.  A fault
 * outside a job (the runtime's own code) is not caught: the signal's
 * default action runs (the process dies, as it should).
 */
#ifndef IROUTE_POOL_H
#define IROUTE_POOL_H
#include <stdint.h>

struct ir_pool;

/* A job: @run does the work on a worker thread; @crashed (may be NULL) is
 * called on the same worker instead of the rest of @run when it faulted
 * with signal @sig.  @arg belongs to the caller. */
struct ir_job {
	void (*run)(void *arg);
	void (*crashed)(void *arg, int sig);
	void *arg;
};

/* @nthreads workers (1-1024) and room for @queue jobs waiting (0-65536).
 * 0 or -EINVAL / -ENOMEM / -errno of pthread_create(). */
int ir_pool_new(struct ir_pool **p, unsigned nthreads, unsigned queue);

/* Queue @job (copied).  0; -EBUSY when every worker is busy and the queue
 * is full (push back: nothing queued); -ESHUTDOWN after ir_pool_free() has
 * begun.  Any thread. */
int ir_pool_submit(struct ir_pool *p, const struct ir_job *job);

struct ir_pool_stats {
	uint32_t busy, queued;
	uint64_t done, rejected, crashed;
};
void ir_pool_stats(struct ir_pool *p, struct ir_pool_stats *s);

/* Run what is queued, wait for the workers, free.  NULL is fine. */
void ir_pool_free(struct ir_pool *p);

#endif
