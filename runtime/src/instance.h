/* instance.h - what the main() of a function (fn.c) and of an entry
 * (entry.c) share: the watchdog configuration with mode "iroute" forced,
 * the signal mask, and serving until SIGTERM with a hook at the start of
 * the drain.  Internal. */
#ifndef IROUTE_INSTANCE_H
#define IROUTE_INSTANCE_H

#include <stdbool.h>
#include <stdint.h>

#include "iroute/wdconfig.h"
#include "watchdog.h"

/* Load the watchdog configuration from the environment (mode must be
 * unset or "iroute"), block SIGTERM/SIGINT.  @prog names the binary in
 * messages.  0, or the exit status 2 after printing why. */
int ir_instance_config(const char *prog, struct ir_wd_config *cfg);

/* Serve HTTP with @h until SIGTERM, calling @on_drain when the drain
 * starts.  0, or -errno after printing why. */
int ir_instance_serve(const char *prog, const struct ir_wd_config *cfg, ir_wd_handler_fn h,
		      void *arg, void (*on_drain)(void *), void *darg);

/* Wait until @idle(@arg) is true or @timeout_ns passed (polling every
 * 5 ms); returns whether it became idle. */
bool ir_instance_wait_idle(bool (*idle)(void *), void *arg, uint64_t timeout_ns);

#endif
