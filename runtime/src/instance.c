/* instance.c - the shared start and drain of workflow instances (see
 * instance.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envnum.h"
#include "instance.h"
#include "iroute/loop.h"

extern char **environ;

int ir_instance_config(const char *prog, struct ir_wd_config *cfg)
{
	const char *mode = getenv("mode");
	if (mode && *mode && strcmp(mode, "iroute") != 0) {
		fprintf(stderr, "%s: mode must be \"iroute\" (or unset), not \"%s\"\n", prog, mode);
		return 2;
	}
	/* Before any thread exists: setenv is not thread-safe. */
	setenv("mode", "iroute", 1);
	char err[512];
	if (ir_wd_config_load(cfg, environ, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return 2;
	}
	ir_watchdog_block_signals();
	return 0;
}

int ir_instance_serve(const char *prog, const struct ir_wd_config *cfg, ir_wd_handler_fn h,
		      void *arg, void (*on_drain)(void *), void *darg)
{
	struct ir_watchdog_opts opts = {.lock_path = getenv("IROUTE_LOCK_FILE"),
					.handler = h,
					.handler_arg = arg,
					.on_drain = on_drain,
					.drain_arg = darg};
	if (opts.lock_path && !*opts.lock_path)
		opts.lock_path = NULL;
	uint32_t mport;
	if (ir_env_u32_say(prog, "IROUTE_METRICS_PORT", 0, 0, 65535, &mport))
		return -EINVAL;
	opts.metrics_port = (uint16_t)mport;
	char err[512];
	int rc = ir_watchdog_run(cfg, &opts, err, sizeof(err));
	if (rc && rc != -ETIMEDOUT)
		fprintf(stderr, "%s: %s\n", prog, err);
	return rc;
}

bool ir_instance_wait_idle(bool (*idle)(void *), void *arg, uint64_t timeout_ns)
{
	uint64_t end = ir_now_ns() + timeout_ns;
	for (;;) {
		if (idle(arg))
			return true;
		if (ir_now_ns() >= end)
			return false;
		struct timespec ts = {0, 5000000};
		nanosleep(&ts, NULL);
	}
}
