/* tnet.h - helpers for tests that run real peers: processes, loops, addresses. */
#ifndef IROUTE_TNET_H
#define IROUTE_TNET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "iroute/transport.h"

#define TNET_TOKEN "conformance-token-6c1f0e"

/* Backend under test for a loop-test index (0 ipc, 1 tcp). */
const struct ir_transport *tnet_backend(int i);
/* A fresh listen address for the backend: "127.0.0.1:0" or a socket path
 * in a per-process temporary directory. */
const char *tnet_addr(int i);
/* cfg with the test token and @ident. */
void tnet_cfg(struct ir_conn_cfg *cfg, const char *ident);

/* Run @loop until @done(@arg) or @timeout_ms.  Returns 0 or -ETIMEDOUT. */
int tnet_run(struct ir_loop *loop, int (*done)(void *), void *arg, int timeout_ms);
/* Run @loop for @ms milliseconds. */
void tnet_run_for(struct ir_loop *loop, int ms);

/* Deterministic payload bytes for (@seed, offset). */
void tnet_fill(uint8_t *buf, size_t len, uint64_t seed);
int tnet_check(const uint8_t *buf, size_t len, uint64_t seed);

/* Fork a child that listens on @addr with @backend and echoes every frame
 * (header and payload) back to its sender, until killed.  @ring_size 0 =
 * default.  Returns the pid; the bound address is copied to @bound. */
pid_t tnet_spawn_echo(int backend, const char *addr, size_t ring_size, char *bound, size_t blen);
/* Remember @pid so that tnet_reap_all() kills it at the end of the test. */
void tnet_track(pid_t pid);
void tnet_reap_all(void);
/* waitpid with a timeout; returns the exit status (or -1 on timeout/kill). */
int tnet_wait(pid_t pid, int timeout_ms);

/* Log capture: every line logged since the last reset, joined by newlines. */
void tnet_log_capture(void);
const char *tnet_log_text(void);

#endif
