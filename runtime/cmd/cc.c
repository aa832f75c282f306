/* cc.c - iroute-cc: the coordinator (runtime/src/cc.c) behind the watchdog
 * front (mode iroute), as the c-cc template runs it.
 *
 * Environment (besides the watchdog's own, iroute/wdconfig.h):
 *   IROUTE_WORKFLOW        workflow.json [./workflow.json]
 *   IROUTE_TOKEN, IROUTE_TOKEN_FILE   the cluster token (iroute/token.h)
 *   IROUTE_LEASE_MS        lease of an instance [5000]
 *   IROUTE_POLL_MS         longest wait of one long-poll [2000] (< lease)
 *   IROUTE_EPOCH_BATCH_MS  changes within this make one epoch [2]
 *   IROUTE_PROBE_MS        how long a suspect gets to answer [500]
 *   IROUTE_ZK              ZooKeeper "host:port,..." (unset: a JSON file)
 *   IROUTE_ZK_WRITER[_FILE], IROUTE_ZK_READER[_FILE]  digest credentials
 *                          (default files /var/openfaas/secrets/iroute-zk-*)
 *   IROUTE_ZK_SESSION_MS   ZooKeeper session timeout [6000]
 *   IROUTE_MIRROR_FILE     the JSON mirror [/tmp/iroute-cc-<workflow>.json]
 *   IROUTE_LOCK_FILE, IROUTE_METRICS_PORT  as for iroute-watchdog
 * Watchdog defaults that differ for the coordinator (a long-poll holds a
 * connection per instance): mode=iroute (the only one allowed),
 * max_inflight unlimited, IROUTE_MAX_CONNECTIONS 16384 and
 * IROUTE_MAX_CONNECTIONS_PER_IP unlimited, unless set.
 * Exit status: 0 after SIGTERM, 2 for a configuration error (a bad
 * workflow.json among them), 1 when serving failed.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cc.h"
#include "envnum.h"
#include "iroute/log.h"
#include "iroute/token.h"
#include "iroute/wdconfig.h"
#include "mirror.h"
#include "watchdog.h"

extern char **environ;

#define PROG "iroute-cc"

/* The environment with the coordinator's watchdog defaults added; the
 * strings it added are those after environ's @n entries. */
static char **cc_environ(size_t *n_out)
{
	static const char *const defs[][2] = {{"mode", "iroute"},
					      {"max_inflight", "0"},
					      {"IROUTE_MAX_CONNECTIONS", "16384"},
					      {"IROUTE_MAX_CONNECTIONS_PER_IP", "0"}};
	size_t n = 0;
	while (environ[n])
		n++;
	*n_out = n;
	char **env = calloc(n + 5, sizeof(*env));
	if (!env)
		return NULL;
	memcpy(env, environ, n * sizeof(*env));
	for (size_t i = 0; i < 4; i++)
		if (!getenv(defs[i][0])) {
			size_t l = strlen(defs[i][0]) + strlen(defs[i][1]) + 2;
			if (!(env[n] = malloc(l))) {
				while (n > *n_out)
					free(env[--n]);
				free(env);
				return NULL;
			}
			snprintf(env[n++], l, "%s=%s", defs[i][0], defs[i][1]);
		}
	return env;
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int open_mirror(const struct ir_workflow *wf, struct ir_mirror **m, char *err,
		       size_t errlen)
{
	const char *zk = getenv("IROUTE_ZK");
	if (!zk || !*zk) {
		char def[512];
		const char *path = getenv("IROUTE_MIRROR_FILE");
		if (!path || !*path) {
			snprintf(def, sizeof(def), "/tmp/iroute-cc-%s.json", wf->name);
			path = def;
		}
		return ir_mirror_open_file(m, path, err, errlen);
	}
	char wcred[512], rcred[512];
	int rc = ir_zk_cred_load("writer", wcred, sizeof(wcred), err, errlen);
	if (rc > 0)
		rc = ir_zk_cred_load("reader", rcred, sizeof(rcred), err, errlen);
	if (rc < 0)
		return rc;
	uint32_t session;
	if (ir_env_u32_say(PROG, "IROUTE_ZK_SESSION_MS", 6000, 1000, 600000, &session))
		return -EINVAL;
	struct ir_zk_opts o = {.hosts = zk,
			       .cred = wcred,
			       .reader_cred = rcred,
			       .session_ms = session,
			       .writer = true};
	rc = ir_mirror_open_zk(m, &o, wf->name, err, errlen);
	memset(wcred, 0, sizeof(wcred));
	memset(rcred, 0, sizeof(rcred));
	return rc;
}

static int load_params(struct ir_cc_params *p, const struct ir_wd_config *cfg)
{
	if (ir_env_u32_say(PROG, "IROUTE_LEASE_MS", 5000, 100, 3600000, &p->lease_ms) ||
	    ir_env_u32_say(PROG, "IROUTE_POLL_MS", 2000, 10, 3600000, &p->poll_ms) ||
	    ir_env_u32_say(PROG, "IROUTE_EPOCH_BATCH_MS", 2, 0, 10000, &p->batch_ms) ||
	    ir_env_u32_say(PROG, "IROUTE_PROBE_MS", 500, 10, 60000, &p->probe_ms))
		return -EINVAL;
	if (p->poll_ms >= p->lease_ms) {
		fprintf(stderr, PROG ": IROUTE_POLL_MS (%u) must be below IROUTE_LEASE_MS (%u)\n",
			p->poll_ms, p->lease_ms);
		return -EINVAL;
	}
	if (cfg->exec_timeout_ns && (uint64_t)p->poll_ms * 1000000u + 200000000u > cfg->exec_timeout_ns) {
		fprintf(stderr, PROG ": IROUTE_POLL_MS (%u) must be at least 200 ms below exec_timeout\n",
			p->poll_ms);
		return -EINVAL;
	}
	return 0;
}

/* Everything after the watchdog configuration; returns the exit status. */
static int serve(const struct ir_wd_config *cfg)
{
	char err[1024];
	if (cfg->mode != IR_WD_MODE_IROUTE) {
		fprintf(stderr, PROG ": mode must be \"iroute\" (or unset) for the coordinator\n");
		return 2;
	}
	struct ir_cc_params p = {0};
	static uint8_t token[IR_TOKEN_MAX];
	uint32_t mport;
	if (load_params(&p, cfg) != 0 || ir_env_u32_say(PROG, "IROUTE_METRICS_PORT", 0, 0, 65535, &mport))
		return 2;
	int n = ir_token_load(token, sizeof(token), err, sizeof(err));
	if (n < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return 2;
	}
	p.token = token;
	p.token_len = (size_t)n;
	const char *path = getenv("IROUTE_WORKFLOW");
	struct ir_workflow wf;
	if (ir_workflow_load(path && *path ? path : "workflow.json", &wf, err, sizeof(err))) {
		fprintf(stderr, PROG ": %s\n", err);
		return 2;
	}
	struct ir_mirror *m;
	if (open_mirror(&wf, &m, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		ir_workflow_free(&wf);
		return 2;
	}
	raise_nofile();
	ir_info("cc", "workflow \"%s\": %zu function(s); mirror: %s; lease %u ms, poll %u ms",
		wf.name, wf.nfns, ir_mirror_kind(m), p.lease_ms, p.poll_ms);
	struct ir_cc *cc;
	if (ir_cc_start(&cc, &wf, m, &p, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return 1;
	}
	struct ir_watchdog_opts opts = {.lock_path = getenv("IROUTE_LOCK_FILE"),
					.metrics_port = (uint16_t)mport,
					.handler = ir_cc_handle,
					.handler_arg = cc};
	if (opts.lock_path && !*opts.lock_path)
		opts.lock_path = NULL;
	int rc = ir_watchdog_run(cfg, &opts, err, sizeof(err));
	if (rc == -ETIMEDOUT) {
		ir_warn("cc", "%s", err);
		_exit(0); /* long-polls still hold the state: do not free it under them */
	}
	ir_cc_free(cc);
	if (rc) {
		fprintf(stderr, PROG ": %s\n", err);
		return 1;
	}
	return 0;
}

int main(void)
{
	char err[1024];
	struct ir_wd_config cfg;
	size_t nenv = 0;
	char **env = cc_environ(&nenv);
	int rc = env ? ir_wd_config_load(&cfg, env, err, sizeof(err)) : -ENOMEM;
	for (size_t i = nenv; env && env[i]; i++)
		free(env[i]);
	free(env);
	if (rc) {
		fprintf(stderr, PROG ": %s\n", rc == -ENOMEM ? "out of memory" : err);
		return 2;
	}
	/* Blocked before any thread starts so that every thread inherits the
	 * mask and the signals reach only the watchdog's signalfd. */
	ir_watchdog_block_signals();
	rc = serve(&cfg);
	ir_wd_config_release(&cfg);
	return rc;
}
