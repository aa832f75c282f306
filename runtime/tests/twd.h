/* twd.h - helpers of the watchdog tests (test_watchdog.c, test_wdhard.c):
 * each test gets a temporary directory (twd_dir), two free loopback ports
 * (twd_port for HTTP, twd_mport for metrics) and at most one watchdog
 * process (twd_pid), killed by twd_teardown(). */
#ifndef IROUTE_TWD_H
#define IROUTE_TWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

extern char twd_dir[64];
extern pid_t twd_pid;
extern int twd_port, twd_mport;

uint64_t now_ms(void);

void sleep_ms(unsigned ms);

int free_port(void);

bool port_open(int p);

void twd_setup(void);

void twd_teardown(void);

void path_in(char *buf, size_t len, const char *name);

/* Writes an executable /bin/sh script named @name into the test directory. */
void write_script(const char *name, const char *body);

char *read_file(const char *name, size_t *len);

/* Fork+exec the watchdog with only PATH, the test's lock file and metrics
 * port, and @env ("K=V", NULL-terminated).  stderr goes to dir/stderr.
 * With @wait, returns once the port accepts connections. */
pid_t spawn_wd(const char *const *env, bool wait);

/* The same for binary @name of IROUTE_BIN_DIR (e.g. "iroute-cc"). */
pid_t spawn_bin(const char *name, const char *const *env, bool wait);

/* Start the watchdog in @mode with @fprocess and @extra env. */
void start_mode(const char *mode, const char *fprocess, const char *const *extra);

void start(const char *fprocess, const char *const *extra);

/* Wait for the watchdog to exit; returns its wait status or -1 on timeout. */
int wait_exit(unsigned ms);

/* Start curl with @args on the watchdog's port (or @p); body to dir/@out,
 * headers to dir/@out.h.  Returns the pipe that yields the status code. */
FILE *curl_start(int p, const char *out, const char *args, const char *path);

int curl_end(FILE *f);

int curl(int p, const char *out, const char *args, const char *path);

bool header_has(const char *out, const char *needle);
/* The cluster token of this test process: 32 random hex digits, made once
 * (never a literal in the sources), and the forms the tests pass it in:
 * "IROUTE_TOKEN=<t>" and curl's "-H 'Authorization: Bearer <t>'". */
const char *test_token(void);
const char *test_token_env(void);
const char *test_bearer_curl(void);

#endif
