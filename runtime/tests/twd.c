/* twd.c - what the watchdog tests share: a fresh temporary directory and
 * free ports per test, the real iroute-watchdog binary started with a
 * chosen environment, and the real curl to talk to it. */
#include "twd.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/random.h>
#include <unistd.h>

#include <check.h>

char twd_dir[64];
pid_t twd_pid;
int twd_port, twd_mport;

uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t len = sizeof(a);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

bool port_open(int p)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)p),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

void twd_setup(void)
{
	snprintf(twd_dir, sizeof(twd_dir), "/tmp/iroute-wd-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(twd_dir));
	twd_pid = 0;
	twd_port = free_port();
	twd_mport = free_port();
}

/* SIGKILL every process whose parent is @pid (the http mode's upstream
 * lives in its own process group and would outlive its watchdog). */
static void kill_children(pid_t pid)
{
	DIR *d = opendir("/proc");
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		char path[300], buf[512];
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		const char *rp = strrchr(buf, ')'); /* comm may hold spaces */
		int ppid;
		char state;
		if (rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == pid)
			kill((pid_t)atoi(e->d_name), SIGKILL);
	}
	closedir(d);
}

void twd_teardown(void)
{
	if (twd_pid > 0) {
		kill_children(twd_pid);
		kill(twd_pid, SIGKILL);
		waitpid(twd_pid, NULL, 0);
		twd_pid = 0;
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", twd_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", twd_dir);
}

void path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", twd_dir, name);
}

/* Writes an executable /bin/sh script named @name into the test directory. */
void write_script(const char *name, const char *body)
{
	char p[128];
	path_in(p, sizeof(p), name);
	FILE *f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	ck_assert_int_eq(chmod(p, 0755), 0);
}

char *read_file(const char *name, size_t *len)
{
	char p[128];
	path_in(p, sizeof(p), name);
	FILE *f = fopen(p, "rb");
	ck_assert_msg(f != NULL, "no %s", p);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

/* Fork+exec the watchdog with only PATH, the test's lock file and metrics
 * port, and @env ("K=V", NULL-terminated).  stderr goes to dir/stderr.
 * With @wait, returns once the port accepts connections. */
pid_t spawn_wd(const char *const *env, bool wait)
{
	return spawn_bin("iroute-watchdog", env, wait);
}

pid_t spawn_bin(const char *name, const char *const *env, bool wait)
{
	const char *bindir = getenv("IROUTE_BIN_DIR");
	char bin[512];
	snprintf(bin, sizeof(bin), "%s/%s", bindir && *bindir ? bindir : "build/bin", name);
	ck_assert_msg(access(bin, X_OK) == 0, "%s not built", bin);
	char vpath[1024], vlock[128], vmport[64], verr[128];
	snprintf(vpath, sizeof(vpath), "PATH=%s",
		 getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	snprintf(vlock, sizeof(vlock), "IROUTE_LOCK_FILE=%s/lock", twd_dir);
	snprintf(vmport, sizeof(vmport), "IROUTE_METRICS_PORT=%d", twd_mport);
	path_in(verr, sizeof(verr), "stderr");
	char *envp[32] = {vpath, vlock, vmport};
	size_t n = 3;
	for (size_t i = 0; env[i] && n < 31; i++)
		envp[n++] = (char *)env[i];
	envp[n] = NULL;
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(verr, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0)
			dup2(fd, 2);
		char *argv[] = {bin, NULL};
		execve(bin, argv, envp);
		_exit(127);
	}
	twd_pid = pid;
	if (wait) {
		uint64_t t0 = now_ms();
		while (!port_open(twd_port)) {
			int st;
			ck_assert_msg(waitpid(pid, &st, WNOHANG) == 0, "%s exited early", name);
			ck_assert_msg(now_ms() - t0 < 5000, "%s did not listen", name);
			sleep_ms(10);
		}
	}
	return pid;
}

/* Start the watchdog in @mode with @fprocess and @extra env. */
void start_mode(const char *mode, const char *fprocess, const char *const *extra)
{
	static char vport[32], vfp[160], vmode[32];
	snprintf(vport, sizeof(vport), "port=%d", twd_port);
	snprintf(vfp, sizeof(vfp), "fprocess=%s", fprocess);
	snprintf(vmode, sizeof(vmode), "mode=%s", mode);
	const char *env[24] = {vmode, vport, vfp};
	size_t n = 3;
	for (size_t i = 0; extra && extra[i] && n < 23; i++)
		env[n++] = extra[i];
	env[n] = NULL;
	spawn_wd(env, true);
}

void start(const char *fprocess, const char *const *extra)
{
	start_mode("serializing", fprocess, extra);
}

/* Wait for the watchdog to exit; returns its wait status or -1 on timeout. */
int wait_exit(unsigned ms)
{
	uint64_t t0 = now_ms();
	for (;;) {
		int st;
		pid_t r = waitpid(twd_pid, &st, WNOHANG);
		if (r == twd_pid) {
			twd_pid = 0;
			return st;
		}
		if (now_ms() - t0 > ms)
			return -1;
		sleep_ms(10);
	}
}

/* Start curl with @args on the watchdog's port (or @p); body to dir/@out,
 * headers to dir/@out.h.  Returns the pipe that yields the status code. */
FILE *curl_start(int p, const char *out, const char *args, const char *path)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "curl -s -m 20 -o '%s/%s' -D '%s/%s.h' -w '%%{http_code}' %s "
		 "'http://127.0.0.1:%d%s'",
		 twd_dir, out, twd_dir, out, args, p, path);
	FILE *f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	return f;
}

int curl_end(FILE *f)
{
	char buf[16] = "";
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	pclose(f);
	return atoi(buf);
}

int curl(int p, const char *out, const char *args, const char *path)
{
	return curl_end(curl_start(p, out, args, path));
}

bool header_has(const char *out, const char *needle)
{
	char name[64];
	snprintf(name, sizeof(name), "%s.h", out);
	char *h = read_file(name, NULL);
	bool found = strcasestr(h, needle) != NULL;
	free(h);
	return found;
}

const char *test_token(void)
{
	static char tok[33];
	if (!tok[0]) {
		unsigned char b[16];
		if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
			for (size_t i = 0; i < sizeof(b); i++)
				b[i] = (unsigned char)(rand() ^ getpid() >> (i % 8));
		for (size_t i = 0; i < sizeof(b); i++)
			snprintf(tok + 2 * i, 3, "%02x", b[i]);
	}
	return tok;
}

const char *test_token_env(void)
{
	static char env[64];
	snprintf(env, sizeof(env), "IROUTE_TOKEN=%s", test_token());
	return env;
}

const char *test_bearer_curl(void)
{
	static char h[96];
	snprintf(h, sizeof(h), "-H 'Authorization: Bearer %s'", test_token());
	return h;
}
