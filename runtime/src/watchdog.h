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

/* What the configuration does not carry. */
struct ir_watchdog_opts {
	/* Lock file written after listening (unless suppress_lock) and
	 * removed on SIGTERM; borrowed for ir_watchdog_run().  NULL =
	 * "/tmp/.lock", of-watchdog's path. */
	const char *lock_path;
	/* Port of the metrics listener; 0 = cfg->metrics_port. */
	uint16_t metrics_port;
};

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
 * expected to exit); -ENOTSUP for a mode not implemented yet (http,
 * iroute; streaming, serializing and static are); -EADDRINUSE/-errno when a listener, the lock file
 * or the signalfd could not be set up.  A message goes to @err (may be NULL) for every non-zero
 * return. */
int ir_watchdog_run(const struct ir_wd_config *cfg, const struct ir_watchdog_opts *opts, char *err,
		    size_t errlen);

#endif
