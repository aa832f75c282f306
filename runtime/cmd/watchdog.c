/* watchdog.c - iroute-watchdog: a drop-in for OpenFaaS's of-watchdog.
 *
 * Why this file is small: it only reads the configuration and wires the
 * modules; the HTTP behaviour is in runtime/src/watchdog.c.
 *
 * Environment: everything of-watchdog reads (see iroute/wdconfig.h), plus
 * two variables of ours, for tests and for running several watchdogs on
 * one host:
 *   IROUTE_LOCK_FILE     lock file path [/tmp/.lock]
 *   IROUTE_METRICS_PORT  metrics listener port [8081]
 * Exit status: 0 after SIGTERM/SIGINT (also when write_timeout ended the
 * drain), 2 for a configuration error, 1 when serving failed.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iroute/log.h"
#include "iroute/wdconfig.h"
#include "watchdog.h"

extern char **environ;

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < 1 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int main(void)
{
	struct ir_wd_config cfg;
	char err[512];
	if (ir_wd_config_load(&cfg, environ, err, sizeof(err)) != 0) {
		fprintf(stderr, "iroute-watchdog: %s\n", err);
		return 2;
	}
	struct ir_watchdog_opts opts = {.lock_path = getenv("IROUTE_LOCK_FILE")};
	if (opts.lock_path && !*opts.lock_path)
		opts.lock_path = NULL;
	const char *mp = getenv("IROUTE_METRICS_PORT");
	if (mp && *mp && parse_port(mp, &opts.metrics_port) != 0) {
		fprintf(stderr, "iroute-watchdog: IROUTE_METRICS_PORT: \"%s\" is not a port\n", mp);
		ir_wd_config_release(&cfg);
		return 2;
	}
	char line[1024];
	ir_wd_config_log(&cfg, line, sizeof(line));
	ir_info("watchdog", "%s", line);

	/* Blocked before any thread starts so that every thread inherits the
	 * mask and the signals reach only ir_watchdog_run()'s signalfd. */
	ir_watchdog_block_signals();

	int rc = ir_watchdog_run(&cfg, &opts, err, sizeof(err));
	if (rc == -ETIMEDOUT) {
		/* Request threads still run and read cfg and the daemon: leave
		 * at once, without atexit handlers tearing things down under
		 * them. */
		ir_warn("watchdog", "%s", err);
		_exit(0);
	}
	ir_wd_config_release(&cfg);
	if (rc) {
		fprintf(stderr, "iroute-watchdog: %s\n", err);
		return rc == -EINVAL ? 2 : 1; /* -EINVAL: mode=iroute without a handler */
	}
	return 0;
}
