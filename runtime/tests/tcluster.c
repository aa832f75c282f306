/* tcluster.c - see tcluster.h. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tcluster.h"
#include "twd.h"

struct tc_proc tc_p[TC_MAX];
size_t tc_n;
int tc_cc_port, tc_entry_port;
static char common[16][256];
static size_t ncommon;

static int spawn(const char *name, const char *bin, const char *const *env)
{
	ck_assert_uint_lt(tc_n, TC_MAX);
	ck_assert_msg(access(bin, X_OK) == 0, "%s not built", bin);
	struct tc_proc *p = &tc_p[tc_n];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->port = free_port();
	p->mport = free_port();
	snprintf(p->log, sizeof(p->log), "%s/%s-%zu.log", twd_dir, name, tc_n);
	static char v[12][320];
	snprintf(v[0], sizeof(v[0]), "PATH=%s", getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	snprintf(v[1], sizeof(v[1]), "port=%d", p->port);
	snprintf(v[2], sizeof(v[2]), "IROUTE_METRICS_PORT=%d", p->mport);
	snprintf(v[3], sizeof(v[3]), "IROUTE_LOCK_FILE=%s/%s-%zu.lock", twd_dir, name, tc_n);
	snprintf(v[4], sizeof(v[4]), "IROUTE_IPC_DIR=%s/ipc", twd_dir);
	snprintf(v[5], sizeof(v[5]), "IROUTE_CC=http://127.0.0.1:%d", tc_cc_port);
	snprintf(v[6], sizeof(v[6]), "%s", test_token_env());
	snprintf(v[7], sizeof(v[7]), "IROUTE_MIRROR_FILE=%s/mirror.json", twd_dir);
	snprintf(v[8], sizeof(v[8]), "IROUTE_WORKFLOW=%s/workflow.json", twd_dir);
	snprintf(v[9], sizeof(v[9]), "IROUTE_LOG_LEVEL=info");
	snprintf(v[10], sizeof(v[10]), "healthcheck_interval=0.2s");
	char *envp[64];
	size_t n = 0;
	for (size_t i = 0; i < 11; i++)
		envp[n++] = v[i];
	for (size_t i = 0; i < ncommon && n < 40; i++)
		envp[n++] = common[i];
	for (size_t i = 0; env && env[i] && n < 63; i++)
		envp[n++] = (char *)env[i];
	envp[n] = NULL;
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		char *argv[] = {(char *)bin, NULL};
		execve(bin, argv, envp);
		_exit(127);
	}
	p->pid = pid;
	uint64_t t0 = now_ms();
	while (!port_open(p->port)) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			char *log = tc_log((int)tc_n);
			p->pid = 0;
			ck_abort_msg("%s exited early: %s", name, log);
		}
		ck_assert_msg(now_ms() - t0 < 10000, "%s did not listen", name);
		sleep_ms(5);
	}
	return (int)tc_n++;
}

void tc_start_cc(const char *wf_json, const char *const *env)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/workflow.json", twd_dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(wf_json, f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/ipc", twd_dir);
	mkdir(path, 0700);
	tc_n = 0;
	ncommon = 0;
	for (size_t i = 0; env && env[i] && ncommon < 16; i++)
		snprintf(common[ncommon++], sizeof(common[0]), "%s", env[i]);
	const char *bindir = getenv("IROUTE_BIN_DIR");
	char bin[512];
	snprintf(bin, sizeof(bin), "%s/iroute-cc", bindir && *bindir ? bindir : "build/bin");
	tc_cc_port = 0;
	int i = spawn("cc", bin, NULL);
	tc_cc_port = tc_p[i].port;
}

int tc_start_fn(const char *fn, const char *bin, const char *const *env)
{
	char v[96];
	snprintf(v, sizeof(v), "IROUTE_FUNCTION=%s", fn);
	const char *e[16] = {v};
	size_t n = 1;
	for (size_t i = 0; env && env[i] && n < 15; i++)
		e[n++] = env[i];
	e[n] = NULL;
	const char *tfn = getenv("IROUTE_TFN");
	return spawn(fn, bin ? bin : tfn && *tfn ? tfn : "build/tests/iroute-tfn", e);
}

int tc_start_entry(const char *bin, const char *const *env)
{
	char def[512];
	const char *bindir = getenv("IROUTE_BIN_DIR");
	snprintf(def, sizeof(def), "%s/iroute-entry", bindir && *bindir ? bindir : "build/bin");
	int i = spawn("entry", bin ? bin : def, env);
	tc_entry_port = tc_p[i].port;
	return i;
}

void tc_wait_ready(size_t instances)
{
	uint64_t t0 = now_ms();
	const char *auth = test_bearer_curl();
	for (;;) {
		char *out = NULL;
		int st = tc_post_port(tc_cc_port, "/v1/stats", NULL, auth, "ccstats", &out);
		const char *t = out ? strstr(out, "\"total\":") : NULL;
		size_t have = t ? (size_t)atol(t + 8) : 0;
		free(out);
		if (st == 200 && have == instances)
			break;
		ck_assert_msg(now_ms() - t0 < 15000, "the coordinator counts %zu of %zu instances",
			      have, instances);
		sleep_ms(20);
	}
	sleep_ms(150); /* the new epoch reaches every long-poll */
}

int tc_kill(int i, int sig, bool wait)
{
	ck_assert_int_gt(tc_p[i].pid, 0);
	kill(tc_p[i].pid, sig);
	if (!wait)
		return 0;
	int st = -1;
	for (int k = 0; k < 3000; k++) {
		if (waitpid(tc_p[i].pid, &st, WNOHANG) == tc_p[i].pid) {
			tc_p[i].pid = 0;
			return st;
		}
		sleep_ms(10);
	}
	return -1;
}

int tc_post_port(int port, const char *path, const char *body, const char *args, const char *tag,
		 char **out)
{
	char a[1024], bodyf[300];
	if (body) {
		snprintf(bodyf, sizeof(bodyf), "%s/%s.in", twd_dir, tag);
		FILE *f = fopen(bodyf, "w");
		ck_assert_ptr_nonnull(f);
		fwrite(body, 1, strlen(body), f);
		fclose(f);
		snprintf(a, sizeof(a), "--data-binary @%s %s", bodyf, args ? args : "");
	} else {
		snprintf(a, sizeof(a), "%s", args ? args : "");
	}
	int st = curl(port, tag, a, path);
	if (out)
		*out = read_file(tag, NULL);
	return st;
}

int tc_post(const char *path, const char *body, const char *args, const char *tag, char **out)
{
	return tc_post_port(tc_entry_port, path, body, args, tag, out);
}

char *tc_log(int i)
{
	FILE *f = fopen(tc_p[i].log, "r");
	if (!f)
		return strdup("");
	char *buf = calloc(1, 65536);
	size_t n = buf ? fread(buf, 1, 65535, f) : 0;
	(void)n;
	fclose(f);
	return buf;
}

void tc_teardown(void)
{
	for (size_t i = 0; i < tc_n; i++)
		if (tc_p[i].pid > 0)
			kill(tc_p[i].pid, SIGKILL);
	for (size_t i = 0; i < tc_n; i++)
		if (tc_p[i].pid > 0) {
			waitpid(tc_p[i].pid, NULL, 0);
			tc_p[i].pid = 0;
		}
	tc_n = 0;
}
