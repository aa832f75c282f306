/* local.h - `iroute local`: a whole workflow as local processes.
 *
 * Why this design: a workflow on a laptop should behave as it does on a
 * cluster, so `up` runs the very binaries the templates build, with the
 * environment faas-netes and our overlays give them (port, IROUTE_CC, the
 * token as a file, IROUTE_FUNCTION...), one process per replica, each in its
 * own session so that the terminal's ^C does not reach it and `down` can
 * signal its whole process group.  Everything `down`, `status`, `invoke`
 * and `routes` need is in one file, <state>/state.json, written after every
 * process starts, so a crashed `up` still leaves a state that `down`
 * cleans.  A process is identified by pid *and* its start time in
 * /proc/<pid>/stat, so a recycled pid is never signalled.  With --nodes K
 * (netns.h) the instances are dealt round-robin over K namespaces, each a
 * "node" with its own IROUTE_NODE and IPC directory, so hops between nodes
 * go over tcp as they would between machines.
 *
 * State directory (default .iroute/<stack name> next to stack.yml):
 *   state.json  token (0600)  mirror.json  run/<fn>-<i>.lock
 *   ipc/[node-k/]  build/<fn>/ (contexts)  bin/<fn>  prefix/ (see the tool)
 *   logs/<fn>-<i>.log  logs/build-<fn>.log
 * `down` removes the run state and keeps logs/, build/, bin/ and prefix/
 * (the build cache `up --skip-build` reuses).
 */
#ifndef IROUTE_LOCAL_H
#define IROUTE_LOCAL_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "netns.h"

#define IR_LOCAL_STATE_FILE "state.json"
#define IR_LOCAL_HEALTH_MS 30000
#define IR_LOCAL_STOP_MS 10000

/* Set by the tool's SIGINT/SIGTERM handler: up stops waiting and cleans up. */
extern volatile sig_atomic_t ir_local_interrupted;

struct ir_lproc {
	char function[64];
	char role[8]; /* "cc", "func", "entry" */
	unsigned replica;
	pid_t pid;
	unsigned long long start; /* /proc/<pid>/stat starttime: a recycled pid differs */
	int port, metrics_port;
	unsigned node;	    /* 0: the host, k: netns node k */
	char node_name[16]; /* "host" or "node-k" */
	char ip[16];	    /* where its ports answer from the host */
	char log[PATH_MAX];
};

struct ir_lstate {
	char dir[PATH_MAX]; /* the state directory, absolute */
	char stack[PATH_MAX];
	char name[64];	    /* the stack's name */
	char workflow[128]; /* the workflow's name */
	char transport[8];
	char token_file[PATH_MAX];
	char ipc_dir[PATH_MAX];
	char cc_url[64], entry_url[64];
	struct ir_net net;
	struct ir_lproc *procs;
	size_t nprocs;
};

/* Load <@dir>/state.json into @s (free with ir_lstate_free()).  -ENOENT
 * when there is none (nothing is up), -EINVAL for a damaged one. */
int ir_lstate_load(const char *dir, struct ir_lstate *s, char *err, size_t errlen);
/* Write it (to a temporary file, then renamed over). */
int ir_lstate_save(const struct ir_lstate *s, char *err, size_t errlen);
void ir_lstate_free(struct ir_lstate *s);
/* The cluster token of @s (from its token file) into @buf; 0 or -errno. */
int ir_lstate_token(const struct ir_lstate *s, char *buf, size_t cap, char *err, size_t errlen);

/* The state letter and start time (clock ticks since boot) of @pid from
 * /proc/<pid>/stat; false when there is no such process. */
bool ir_proc_stat(pid_t pid, char *state, unsigned long long *start);

/* Is process @p still the one that was started (alive, not a zombie, same start time)? */
bool ir_lproc_alive(const struct ir_lproc *p);

/* The default state directory of stack file @stack_path:
 * <its directory>/.iroute/<base name without .yml>. */
void ir_local_default_state(const char *stack_path, char *out, size_t cap);

struct ir_local_up_opts {
	const char *stack_path;
	const char *state_dir; /* NULL: the default */
	const char *prefix;    /* the runtime, as build.sh's --prefix */
	const char *template_dir;
	const char *cc_bin;    /* the coordinator binary (PREFIX/bin/iroute-cc) */
	const char *transport; /* NULL: auto unless the stack's environment sets one */
	unsigned replicas;     /* >= 1 */
	unsigned nodes;	       /* 0: no namespaces */
	unsigned health_ms;    /* 0: IR_LOCAL_HEALTH_MS */
	bool skip_build;       /* reuse <state>/bin/<fn> when there */
	FILE *out;	       /* progress and the summary */
};

/* Build and start the stack (see the file comment).  0 once every process
 * answers /_/health; else everything started is stopped again (logs kept)
 * and -errno returned with the reason in @err (for a process that did not
 * become healthy: which one, why, and the end of its log).  -EEXIST when
 * the stack is already up. */
int ir_local_up(const struct ir_local_up_opts *o, char *err, size_t errlen);

/* SIGTERM every process (instances first, the coordinator last), SIGKILL
 * what is left after @stop_ms (0: IR_LOCAL_STOP_MS), remove the namespaces
 * and the run state (logs/, build/, bin/, prefix/ stay).  Nothing up is not an
 * error.  0 or -errno. */
int ir_local_down(const char *state_dir, unsigned stop_ms, FILE *out, char *err, size_t errlen);

/* Print every process (alive? /_/health?) and the coordinator's epoch and
 * instances (GET /v1/stats); @json: one JSON object instead of the table.
 * Returns 0 when everything is alive and healthy, 1 when not, -errno when
 * there is no state (-ENOENT) or it cannot be read. */
int ir_local_status(const char *state_dir, bool json, FILE *out, char *err, size_t errlen);

/* ---- the client commands (localstat.c) ---- */

/* Print the coordinator's global table @json (GET /v1/table): per function
 * its instances with id, node, transports and addresses, then how many
 * instances each node holds.  -EINVAL when it is not such a table. */
int ir_routes_print(const char *json, FILE *out, char *err, size_t errlen);

/* The answer of an entry's POST /bench as one line:
 * "latency: p50=1.203ms p90=... p99=... p999=... max=... n=N errors=E
 * throughput=812.4rps".  Returns the number of errors (>= 0) or -EINVAL. */
int ir_bench_format(const char *json, char *line, size_t cap, char *err, size_t errlen);

#endif
