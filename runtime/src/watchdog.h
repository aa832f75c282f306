/* watchdog.h - the of-watchdog compatible HTTP front of one function:
 * /_/health, /_/ready, the streaming, serializing and static modes, metrics,
 * SIGTERM drain.
 *
 * Why this design: runtime/cmd/watchdog.c only parses the configuration;
 * everything that decides an HTTP answer lives here, behind one blocking
 * call, so the binary stays a few lines of wiring (STYLE.md: one binary per
 * role that only wires modules).  Internal: not a handler-author API.
 */
#ifndef IROUTE_WATCHDOG_H
#define IROUTE_WATCHDOG_H

#include <stddef.h>
#include <stdint.h>

#include "iroute/wdconfig.h"

/* ---- mode=iroute: the function is a C handler in this process ---- */

#define IR_WD_MAX_HEADERS 6 /* extra headers of one reply */

/* One HTTP request, borrowed for the handler call. */
struct ir_wd_call {
	const char *method;
	const char *path;  /* percent-decoded, as of-watchdog's Http_Path */
	const char *query; /* raw, without '?'; "" when none */
	const void *body;  /* the whole request body (read before the call) */
	size_t body_len;
	/* CLOCK_MONOTONIC ns by which the answer is due (exec_timeout, or a
	 * shorter X-Timeout); 0 = none.  A handler cannot be killed: one that
	 * returns after this instant is answered 504 and its reply dropped,
	 * so long handlers should check it. */
	uint64_t deadline_ns;
	void *priv; /* the watchdog's; use ir_wd_call_header() */
};

/* A request header (case-insensitive name, first value) or NULL. */
const char *ir_wd_call_header(const struct ir_wd_call *call, const char *name);

/* What the handler fills.  On entry: status 200, content_type NULL (=
 * the content_type variable), body NULL. */
struct ir_wd_reply {
	int status;		  /* 100-599 */
	const char *content_type; /* borrowed until the handler returns (copied) */
	void *body;		  /* malloc()ed; the watchdog frees it */
	size_t len;
	/* When set, body is not malloc()ed but borrowed until the watchdog calls
	 * release(release_arg) (once, after the response is sent or dropped):
	 * lets one buffer be sent to many clients without a copy. */
	void (*release)(void *arg);
	void *release_arg;
	/* Extra response headers (name and value borrowed until the handler
	 * returns; copied); the first with a NULL name ends the list. */
	struct {
		const char *name, *value;
	} headers[IR_WD_MAX_HEADERS];
	char error[256]; /* with a negative return: why, sent as the 500 body */
};

/* Returns 0 (the reply is sent) or a negative errno (500 with
 * reply->error, or strerror() when that is empty).  Runs on the
 * request's connection thread, several at once (up to max_inflight): it
 * must be thread-safe. */
typedef int (*ir_wd_handler_fn)(void *arg, const struct ir_wd_call *call,
				struct ir_wd_reply *reply);

/* What the configuration does not carry. */
struct ir_watchdog_opts {
	/* Lock file written after listening (unless suppress_lock) and
	 * removed on SIGTERM; borrowed for ir_watchdog_run().  NULL =
	 * "/tmp/.lock", of-watchdog's path. */
	const char *lock_path;
	/* Port of the metrics listener; 0 = cfg->metrics_port. */
	uint16_t metrics_port;
	/* mode=iroute: the function (required there, ignored elsewhere). */
	ir_wd_handler_fn handler;
	void *handler_arg;
	/* Called once when SIGTERM/SIGINT starts the drain, before the lock
	 * file goes (on the watchdog's thread; may block briefly): a workflow
	 * instance leaves the routing tables here while it still serves. */
	void (*on_drain)(void *arg);
	void *drain_arg;
};

/* Block SIGTERM and SIGINT in the calling thread (and so in every thread
 * it starts later) and ignore SIGPIPE: what ir_watchdog_run() needs from
 * main(), before anything starts a thread. */
void ir_watchdog_block_signals(void);

/* Serve @cfg (borrowed for the call) until SIGTERM or SIGINT, then drain:
 * remove the lock file, go on serving for healthcheck_interval, stop
 * accepting, wait for in-flight requests up to write_timeout.
 *
 * The caller must have blocked SIGTERM and SIGINT in every thread (block
 * them in main() before calling anything that starts threads): they are
 * read from a signalfd here, so no work happens in a signal handler.
 *
 * Returns 0 after a complete drain; -ETIMEDOUT when requests were still
 * running after write_timeout (their threads are abandoned: the caller is
 * expected to exit); -EINVAL for mode=iroute without opts->handler;
 * -EADDRINUSE/-errno when a listener, the lock file or the signalfd could
 * not be set up.  A message goes to @err (may be NULL) for every non-zero
 * return. */
int ir_watchdog_run(const struct ir_wd_config *cfg, const struct ir_watchdog_opts *opts, char *err,
		    size_t errlen);

#endif
