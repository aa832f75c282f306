/* loop.h - the per-instance I/O event loop: epoll fds, timers, spin pollers.
 *
 * One loop runs on one thread (the I/O thread); every function here except
 * ir_loop_post() and ir_loop_stop() must be called on that thread.  Modelled
 * on valkey's ae: level-triggered epoll, a timer heap, nothing else.
 *
 * What ae does not have is the spin phase.  On this kind of machine an idle
 * vCPU halts and waking a blocked thread on another core costs ~25 us, while
 * a spinning reader sees a shared-memory write in ~0.1 us.  So before it
 * blocks in epoll_wait() the loop may spin: it calls every registered
 * poller (cheap shared-memory checks) for up to a spin budget.  The budget
 * adapts: it doubles (up to the configured maximum) when a message arrived
 * soon after the loop went to sleep - spinning longer would have caught it -
 * and halves when the loop slept long, so an idle instance stops burning its
 * core.  Spin maximum 0 disables spinning: pure blocking wake-ups.
 */
#ifndef IROUTE_LOOP_H
#define IROUTE_LOOP_H

#include <stdint.h>

struct ir_loop;

#define IR_EV_READ 0x1u
#define IR_EV_WRITE 0x2u
#define IR_EV_ERROR 0x4u /* EPOLLERR/EPOLLHUP/EPOLLRDHUP: always reported (with READ, usually) */
/* Edge-triggered: reported once per change (EPOLLET).  For an eventfd this
 * means once per write, and the counter never has to be read back: one
 * syscall less per wake-up. */
#define IR_EV_EDGE 0x8u

/* Called on the loop thread with the events that fired. */
typedef void (*ir_fd_cb)(struct ir_loop *loop, int fd, unsigned events, void *arg);
typedef void (*ir_timer_cb)(struct ir_loop *loop, void *arg);
/* A spin poller: do any work that is ready without blocking; return the
 * number of items handled (> 0 ends the spin as a success). */
typedef int (*ir_poll_cb)(struct ir_loop *loop, void *arg);
/* Before the loop blocks: arm the wake-up (e.g. set "consumer sleeping" in
 * shared memory) and re-check; return > 0 if work appeared meanwhile, in
 * which case the loop does not block.  Called again with @armed = 0 after
 * the loop wakes, to disarm. */
typedef int (*ir_sleep_cb)(struct ir_loop *loop, int armed, void *arg);
/* A function posted from another thread, run on the loop thread. */
typedef void (*ir_post_cb)(struct ir_loop *loop, void *arg);

/* Create a loop.  Returns 0 or -errno. */
int ir_loop_new(struct ir_loop **out);
/* Free a loop that is not running.  Registered fds are not closed; pending
 * timers and posts are dropped without being called (their arguments are
 * the caller's to free).  No ir_loop_post()/ir_loop_stop() may race it. */
void ir_loop_free(struct ir_loop *loop);

/* Watch @fd for @events (IR_EV_READ|IR_EV_WRITE).  The loop borrows @fd; the
 * caller closes it after ir_loop_del_fd().  Returns 0 or -errno. */
int ir_loop_add_fd(struct ir_loop *loop, int fd, unsigned events, ir_fd_cb cb, void *arg);
int ir_loop_mod_fd(struct ir_loop *loop, int fd, unsigned events);
/* Stop watching @fd.  Safe from inside any callback, also @fd's own. */
void ir_loop_del_fd(struct ir_loop *loop, int fd);

/* Run @cb once after @delay_us.  Returns a timer id (> 0), or 0 when out of
 * memory. */
uint64_t ir_loop_timer_add(struct ir_loop *loop, uint64_t delay_us, ir_timer_cb cb, void *arg);
/* Cancel a pending timer; returns 0, or -ENOENT if it already ran. */
int ir_loop_timer_cancel(struct ir_loop *loop, uint64_t id);

/* Register a spin poller (see top of file).  @sleep may be NULL; if not, its
 * armed call must set up a real wake-up (an fd the loop watches), or the
 * loop may block until some other event.  Returns an id > 0 or -errno. */
int ir_loop_poller_add(struct ir_loop *loop, ir_poll_cb poll, ir_sleep_cb sleep, void *arg);
/* Safe inside any poll/sleep callback, the poller's own included. */
void ir_loop_poller_del(struct ir_loop *loop, int id);
/* Maximum spin before blocking, in microseconds; 0 disables spinning.  The
 * budget restarts at the new maximum.  Default: $IROUTE_SPIN_US or 50. */
void ir_loop_set_spin(struct ir_loop *loop, uint32_t max_spin_us);
/* The current adaptive budget (for stats and tests). */
uint32_t ir_loop_spin_budget(const struct ir_loop *loop);

/* Run until ir_loop_stop().  Returns 0, or -errno if epoll failed. */
int ir_loop_run(struct ir_loop *loop);
/* One iteration: expired timers, ready fds, waiting at most @timeout_us
 * (-1 forever, 0 not at all; blocking waits round up to whole ms, so timers
 * fire up to ~1 ms late, never early).  Returns what it handled (fd
 * callbacks + timers + posts + work the pollers reported) or -errno.  Not
 * reentrant: never call it from inside a callback. */
int ir_loop_run_once(struct ir_loop *loop, int64_t timeout_us);
/* Make ir_loop_run() return after the current iteration.  Thread-safe. */
void ir_loop_stop(struct ir_loop *loop);

/* Run @cb(@arg) on the loop thread soon.  Thread-safe; returns 0 or -errno. */
int ir_loop_post(struct ir_loop *loop, ir_post_cb cb, void *arg);

/* CLOCK_MONOTONIC now, in microseconds and nanoseconds. */
uint64_t ir_now_us(void);
uint64_t ir_now_ns(void);

#endif
