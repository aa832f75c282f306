/* tzk.c - a standalone ZooKeeper server per test (see tzk.h). */
#include <sys/random.h>

#include "tzk.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "twd.h"

#define JAVA "/usr/bin/java"
/* The server, and log4j behind slf4j (both dependencies of the package)
 * so that zk.log shows what the server did, e.g. "Expiring session". */
#define ZK_CP                                                                                      \
	"/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:"     \
	"/usr/share/java/log4j-1.2.jar"

static void path_of(const struct tzk *z, char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", z->dir, name);
}

/* Sends the four-letter word @cmd to the client port; true when the
 * answer contains @want. */
static bool four_letters(int port, const char *cmd, const char *want)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct timeval tv = {.tv_sec = 1};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	char buf[512];
	size_t n = 0;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && write(fd, cmd, 4) == 4) {
		ssize_t r;
		while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
			n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	return strstr(buf, want) != NULL;
}

/* "ruok" answers "imok" as soon as the port is open, before the server
 * takes sessions ("ZooKeeperServer not running"); "srvr" says "Mode:"
 * only once it serves. */
static bool ready(int port)
{
	return four_letters(port, "ruok", "imok") && four_letters(port, "srvr", "Mode: ");
}

static void log_tail(const struct tzk *z)
{
	char path[128];
	path_of(z, path, sizeof(path), "zk.log");
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "tzk: no %s\n", path);
		return;
	}
	char buf[4096];
	if (fseek(f, -(long)(sizeof(buf) - 1), SEEK_END) < 0)
		rewind(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	fprintf(stderr, "tzk: the server did not start on %s; %s ends:\n%s\n", z->hosts, path, buf);
}

/* Forks java: everything it needs is prepared before fork() (the test
 * process may have the ZooKeeper client's threads by now). */
static int spawn(struct tzk *z)
{
	char cfg[128], logp[128];
	path_of(z, cfg, sizeof(cfg), "zoo.cfg");
	path_of(z, logp, sizeof(logp), "zk.log");
	char *const argv[] = {"java",
			      "-XX:TieredStopAtLevel=1",
			      "-XX:+UseSerialGC",
			      "-Xmx256m",
			      "-Dzookeeper.root.logger=INFO,CONSOLE",
			      "-cp",
			      ZK_CP,
			      "org.apache.zookeeper.server.ZooKeeperServerMain",
			      cfg,
			      NULL};
	int logfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pid_t parent = getpid();
	pid_t pid = logfd >= 0 && nullfd >= 0 ? fork() : -1;
	if (pid == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		dup2(nullfd, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		execv(JAVA, argv);
		_exit(127);
	}
	if (logfd >= 0)
		close(logfd);
	if (nullfd >= 0)
		close(nullfd);
	if (pid < 0)
		return -1;
	z->pid = pid;
	for (int i = 0; i < 400; i++) { /* 20 s */
		if (ready(z->port))
			return 0;
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			z->pid = 0;
			break;
		}
		sleep_ms(50);
	}
	log_tail(z);
	tzk_kill(z);
	return -1;
}

int tzk_start(struct tzk *z)
{
	memset(z, 0, sizeof(*z));
	snprintf(z->dir, sizeof(z->dir), "/tmp/iroute-zk-XXXXXX");
	if (!mkdtemp(z->dir))
		return -1;
	z->port = free_port();
	snprintf(z->hosts, sizeof(z->hosts), "127.0.0.1:%d", z->port);
	char path[128];
	path_of(z, path, sizeof(path), "data");
	if (mkdir(path, 0755) < 0)
		return -1;
	path_of(z, path, sizeof(path), "zoo.cfg");
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f,
		"tickTime=500\n"
		"dataDir=%s/data\n"
		"clientPort=%d\n"
		"clientPortAddress=127.0.0.1\n"
		"admin.enableServer=false\n"
		"4lw.commands.whitelist=ruok,srvr\n"
		"minSessionTimeout=1000\n"
		"maxSessionTimeout=60000\n"
		"forceSync=no\n",
		z->dir, z->port);
	if (fclose(f) != 0)
		return -1;
	return spawn(z);
}

void tzk_kill(struct tzk *z)
{
	if (z->pid <= 0)
		return;
	kill(-z->pid, SIGKILL);
	kill(z->pid, SIGKILL);
	while (waitpid(z->pid, NULL, 0) < 0 && errno == EINTR)
		;
	z->pid = 0;
}

int tzk_restart(struct tzk *z)
{
	tzk_kill(z);
	return spawn(z);
}

void tzk_pause(struct tzk *z)
{
	if (z->pid > 0)
		kill(z->pid, SIGSTOP);
}

void tzk_resume(struct tzk *z)
{
	if (z->pid > 0)
		kill(z->pid, SIGCONT);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* ---- the forwarder ---- */

#define PROXY_PAIRS 32

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int dial(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* The forked child: no malloc (the parent may have had threads). */
static void proxy_run(int lfd, int port)
{
	static int fds[PROXY_PAIRS][2];
	static char buf[65536];
	for (int i = 0; i < PROXY_PAIRS; i++)
		fds[i][0] = fds[i][1] = -1;
	for (;;) {
		struct pollfd pf[1 + 2 * PROXY_PAIRS];
		pf[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
		for (int i = 0; i < PROXY_PAIRS; i++)
			for (int k = 0; k < 2; k++)
				pf[1 + 2 * i + k] =
				    (struct pollfd){.fd = fds[i][k], .events = POLLIN};
		if (poll(pf, 1 + 2 * PROXY_PAIRS, -1) < 0)
			continue;
		if (pf[0].revents & POLLIN) {
			int c = accept(lfd, NULL, NULL), s = c >= 0 ? dial(port) : -1, i = 0;
			while (i < PROXY_PAIRS && fds[i][0] >= 0)
				i++;
			if (c >= 0 && s >= 0 && i < PROXY_PAIRS) {
				fds[i][0] = c;
				fds[i][1] = s;
			} else {
				if (c >= 0)
					close(c);
				if (s >= 0)
					close(s);
			}
		}
		for (int i = 0; i < PROXY_PAIRS; i++) {
			for (int k = 0; k < 2 && fds[i][0] >= 0; k++) {
				if (!pf[1 + 2 * i + k].revents)
					continue;
				ssize_t n = read(fds[i][k], buf, sizeof(buf));
				if (n <= 0 || write_all(fds[i][!k], buf, (size_t)n) < 0) {
					close(fds[i][0]);
					close(fds[i][1]);
					fds[i][0] = fds[i][1] = -1;
				}
			}
		}
	}
}

int tzk_proxy_start(struct tzk *z)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 64) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &len) < 0) {
		if (lfd >= 0)
			close(lfd);
		return -1;
	}
	snprintf(z->proxy_hosts, sizeof(z->proxy_hosts), "127.0.0.1:%d", ntohs(a.sin_port));
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		signal(SIGPIPE, SIG_IGN);
		proxy_run(lfd, z->port);
		_exit(0);
	}
	close(lfd);
	if (pid < 0)
		return -1;
	z->proxy_pid = pid;
	return 0;
}

void tzk_proxy_pause(struct tzk *z)
{
	if (z->proxy_pid > 0)
		kill(z->proxy_pid, SIGSTOP);
}

void tzk_proxy_resume(struct tzk *z)
{
	if (z->proxy_pid > 0)
		kill(z->proxy_pid, SIGCONT);
}

void tzk_stop(struct tzk *z)
{
	if (z->proxy_pid > 0) {
		kill(z->proxy_pid, SIGKILL);
		waitpid(z->proxy_pid, NULL, 0);
		z->proxy_pid = 0;
	}
	tzk_kill(z);
	if (z->dir[0])
		nftw(z->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	z->dir[0] = '\0';
}

bool tzk_log_has(const struct tzk *z, const char *needle)
{
	char path[128];
	path_of(z, path, sizeof(path), "zk.log");
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	char line[4096];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

/* ---- throwaway credentials ---- */

static char wcred[48], rcred[48], wenv[80], renv[80];

static void creds_make(void)
{
	if (wcred[0])
		return;
	uint8_t b[32];
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		abort();
	char hex[2][33];
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < 16; i++)
			sprintf(hex[k] + 2 * i, "%02x", b[16 * k + i]);
	snprintf(wcred, sizeof(wcred), "cc:%s", hex[0]);
	snprintf(rcred, sizeof(rcred), "fn:%s", hex[1]);
	snprintf(wenv, sizeof(wenv), "IROUTE_ZK_WRITER=%s", wcred);
	snprintf(renv, sizeof(renv), "IROUTE_ZK_READER=%s", rcred);
}

const char *tzk_writer_cred(void)
{
	creds_make();
	return wcred;
}

const char *tzk_reader_cred(void)
{
	creds_make();
	return rcred;
}

const char *tzk_writer_env(void)
{
	creds_make();
	return wenv;
}

const char *tzk_reader_env(void)
{
	creds_make();
	return renv;
}
