/* control.c - iroute-bench-control: the coordinator's figures (make
 * bench-control), each next to the raw limit of the same mechanism in the
 * same run.
 *
 *   registrations/s   POST /v1/register from 4 kept-alive connections
 *                     (the file mirror: 20000 instances make a table over
 *                     ZooKeeper's 1 MiB request limit),
 *                     against GET /_/health on the same server (the
 *                     HTTP front's own request rate);
 *   propagation       N instances (100, 1000) parked in GET /v1/routes;
 *                     one registration changes the table; the time from
 *                     sending that registration to each instance's
 *                     answer, p50/p99 over all rounds.  Raw limit: the
 *                     same N connections each sending GET /_/health at
 *                     once, time to each answer;
 *   mirror lag        the coordinator's own measure (GET /v1/stats), from
 *                     an epoch's creation to its mirror write: ZooKeeper
 *                     with --zk, else the JSON file.
 *
 * The pollers are one epoll loop over N non-blocking sockets, so the
 * client costs little of the two cores the coordinator also runs on.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The cluster token of this run: random, made in main() (never a literal). */
static char token[33];

static const char *cc_bin, *zk_hosts;
static char zk_buf[64];
static pid_t zk_pid;
static char dir[64];
static int port;
static pid_t cc_pid;

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void die(const char *what)
{
	fprintf(stderr, "bench-control: %s: %s\n", what, strerror(errno));
	if (cc_pid > 0)
		kill(cc_pid, SIGKILL);
	if (zk_pid > 0)
		kill(zk_pid, SIGKILL);
	exit(1);
}

static int free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	if (s < 0 || bind(s, (void *)&a, sizeof(a)) || getsockname(s, (void *)&a, &l))
		die("free port");
	close(s);
	return ntohs(a.sin_port);
}

static int connect_cc(bool nonblock)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (s < 0 || connect(s, (void *)&a, sizeof(a)) != 0)
		return -1;
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (nonblock)
		fcntl(s, F_SETFL, O_NONBLOCK);
	return s;
}

/* ---- a tiny blocking HTTP exchange (the coordinator answers with a
 * Content-Length, or 304 without a body) ---- */

struct conn {
	int fd;
	char buf[1 << 16];
	size_t len;
};

/* A complete response in c->buf?  Returns its length (head + body) and
 * the status, or 0. */
static size_t response_len(const char *b, size_t len, int *status)
{
	const char *end = memmem(b, len, "\r\n\r\n", 4);
	if (!end)
		return 0;
	size_t head = (size_t)(end - b) + 4, body = 0;
	const char *cl = memmem(b, head, "Content-Length: ", 16);
	if (!cl)
		cl = memmem(b, head, "content-length: ", 16);
	if (cl)
		body = strtoul(cl + 16, NULL, 10);
	if (len < head + body)
		return 0;
	*status = atoi(b + 9);
	return head + body;
}

static int exchange(struct conn *c, const char *req, size_t rlen, char **body)
{
	if (write(c->fd, req, rlen) != (ssize_t)rlen)
		die("write");
	int status;
	size_t n;
	while (!(n = response_len(c->buf, c->len, &status))) {
		if (c->len == sizeof(c->buf))
			die("response too large");
		ssize_t r = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (r <= 0)
			die("read");
		c->len += (size_t)r;
	}
	if (body)
		*body = strstr(c->buf, "\r\n\r\n") + 4;
	if (c->len != n)
		die("unexpected bytes after a response");
	if (n < sizeof(c->buf))
		c->buf[n] = '\0'; /* for the caller's strstr() */
	c->len = 0;
	return status;
}

static size_t reg_request(char *out, size_t cap, const char *fn, unsigned i)
{
	char body[256];
	int bl = snprintf(body, sizeof(body),
			  "{\"function\":\"%s\",\"node\":\"bench\",\"addresses\":{\"tcp\":\"10.0.%u.%u:7000\"},"
			  "\"transports\":[\"tcp\"]}",
			  fn, (i >> 8) & 255, i & 255);
	return (size_t)snprintf(out, cap,
				"POST /v1/register HTTP/1.1\r\nHost: cc\r\nAuthorization: Bearer %s"
				"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
				token, bl, body);
}

static const char HEALTH[] = "GET /_/health HTTP/1.1\r\nHost: cc\r\n\r\n";

/* ---- the coordinator ---- */

/* A fresh coordinator for workflow @name (a fresh mirror: each phase has
 * its own name, in ZooKeeper too). */
static void cc_start(const char *name, bool zk)
{
	char wf_json[128];
	snprintf(wf_json, sizeof(wf_json), "{\"name\":\"%s\",\"dag\":[[\"a\"],[\"b\"]]}", name);
	char wf[128], env_wf[160], env_port[32], env_mport[48], env_lock[128], env_mirror[160],
	    env_zk[256];
	snprintf(wf, sizeof(wf), "%s/wf.json", dir);
	FILE *f = fopen(wf, "w");
	if (!f)
		die(wf);
	fputs(wf_json, f);
	fclose(f);
	port = free_port();
	snprintf(env_wf, sizeof(env_wf), "IROUTE_WORKFLOW=%s", wf);
	snprintf(env_port, sizeof(env_port), "port=%d", port);
	snprintf(env_mport, sizeof(env_mport), "IROUTE_METRICS_PORT=%d", free_port());
	snprintf(env_lock, sizeof(env_lock), "IROUTE_LOCK_FILE=%s/lock", dir);
	snprintf(env_mirror, sizeof(env_mirror), "IROUTE_MIRROR_FILE=%s/%s.json", dir, name);
	snprintf(env_zk, sizeof(env_zk), "IROUTE_ZK=%s", zk && zk_hosts ? zk_hosts : "");
	/* Throwaway digest credentials for this run's own ZooKeeper, the same
	 * for every phase (the first coordinator's ACL guards /iroute). */
	static char env_wcred[64], env_rcred[64];
	if (!env_wcred[0]) {
		uint64_t rnd[2];
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			die("getrandom");
		snprintf(env_wcred, sizeof(env_wcred), "IROUTE_ZK_WRITER=cc:%016llx",
			 (unsigned long long)rnd[0]);
		snprintf(env_rcred, sizeof(env_rcred), "IROUTE_ZK_READER=fn:%016llx",
			 (unsigned long long)rnd[1]);
	}
	char env_token[64];
	snprintf(env_token, sizeof(env_token), "IROUTE_TOKEN=%s", token);
	char *env[] = {env_token, env_wf, env_port, env_mport, env_lock, env_mirror,
		       env_zk, env_wcred, env_rcred,
		       "IROUTE_LEASE_MS=60000", "IROUTE_POLL_MS=20000", "exec_timeout=60s",
		       "IROUTE_LOG_LEVEL=warn", "PATH=/usr/bin:/bin", NULL};
	cc_pid = fork();
	if (cc_pid == 0) {
		char *argv[] = {(char *)cc_bin, NULL};
		execve(cc_bin, argv, env);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		int s = connect_cc(false);
		if (s >= 0) {
			close(s);
			return;
		}
		usleep(10000);
	}
	errno = ETIMEDOUT;
	die("coordinator did not listen");
}

/* ZooKeeper's answer to a four-letter command, or "". */
static void zk_cmd(int zport, const char *cmd, char *out, size_t cap)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)zport),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	out[0] = '\0';
	if (s < 0)
		return;
	if (connect(s, (void *)&a, sizeof(a)) == 0 && write(s, cmd, 4) == 4) {
		ssize_t n = read(s, out, cap - 1);
		out[n > 0 ? n : 0] = '\0';
	}
	close(s);
}

/* A standalone ZooKeeper (Debian's package) on a free loopback port. */
static void zk_start(void)
{
	char cfg[128], log[128], data[128];
	int zport = free_port();
	snprintf(cfg, sizeof(cfg), "%s/zoo.cfg", dir);
	snprintf(log, sizeof(log), "%s/zk.log", dir);
	snprintf(data, sizeof(data), "%s/zk-data", dir);
	FILE *f = fopen(cfg, "w");
	if (!f)
		die(cfg);
	fprintf(f, "tickTime=500\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
		   "admin.enableServer=false\n4lw.commands.whitelist=ruok\n",
		data, zport);
	fclose(f);
	zk_pid = fork();
	if (zk_pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 1);
		dup2(fd, 2);
		execlp("java", "java", "-cp", "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar",
		       "org.apache.zookeeper.server.ZooKeeperServerMain", cfg, (char *)NULL);
		_exit(127);
	}
	char ok[16];
	for (int i = 0; i < 400; i++) {
		zk_cmd(zport, "ruok", ok, sizeof(ok));
		if (strcmp(ok, "imok") == 0) {
			snprintf(zk_buf, sizeof(zk_buf), "127.0.0.1:%d", zport);
			zk_hosts = zk_buf;
			return;
		}
		usleep(50000);
	}
	errno = ETIMEDOUT;
	die("ZooKeeper did not start (see the zookeeper package; zk.log)");
}

static void cc_stop(void)
{
	kill(cc_pid, SIGKILL);
	waitpid(cc_pid, NULL, 0);
	cc_pid = 0;
}

/* ---- registrations per second ---- */

struct reg_arg {
	unsigned first, n;
	bool health;
	uint64_t us;
};

static void *reg_thread(void *p)
{
	struct reg_arg *a = p;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c || (c->fd = connect_cc(false)) < 0)
		die("connect");
	char req[512];
	uint64_t t0 = now_us();
	for (unsigned i = 0; i < a->n; i++) {
		int st;
		if (a->health)
			st = exchange(c, HEALTH, sizeof(HEALTH) - 1, NULL);
		else
			st = exchange(c, req, reg_request(req, sizeof(req), "b", a->first + i), NULL);
		if (st != 200) {
			fprintf(stderr, "bench-control: status %d: %s\n", st, c->buf);
			exit(1);
		}
	}
	a->us = now_us() - t0;
	close(c->fd);
	free(c);
	return NULL;
}

/* Requests per second of @total requests over @threads connections. */
static double rate(unsigned total, unsigned threads, bool health)
{
	pthread_t th[16];
	struct reg_arg a[16];
	uint64_t t0 = now_us();
	for (unsigned t = 0; t < threads; t++) {
		a[t] = (struct reg_arg){.first = t * (total / threads), .n = total / threads, .health = health};
		pthread_create(&th[t], NULL, reg_thread, &a[t]);
	}
	for (unsigned t = 0; t < threads; t++)
		pthread_join(th[t], NULL);
	return (double)(total / threads * threads) / ((double)(now_us() - t0) / 1e6);
}

/* ---- propagation ---- */

struct poller {
	struct conn c;
	char id[80];
	uint64_t since, done_us;
	int status;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(uint64_t *v, size_t n, double q)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	size_t i = (size_t)(q * (double)n);
	return (double)v[i >= n ? n - 1 : i] / 1000.0;
}

/* Read every poller's answer; returns when all @n have one. */
static void collect(int ep, size_t n)
{
	size_t left = n;
	struct epoll_event ev[256];
	while (left) {
		int k = epoll_wait(ep, ev, 256, 30000);
		if (k <= 0)
			die("pollers: no answer within 30 s");
		uint64_t t = now_us();
		for (int i = 0; i < k; i++) {
			struct poller *q = ev[i].data.ptr;
			ssize_t r = read(q->c.fd, q->c.buf + q->c.len, sizeof(q->c.buf) - q->c.len);
			if (r <= 0) {
				if (r < 0 && errno == EAGAIN)
					continue;
				die("poller read");
			}
			q->c.len += (size_t)r;
			int st;
			size_t len = response_len(q->c.buf, q->c.len, &st);
			if (!len || q->done_us)
				continue;
			q->done_us = t;
			q->status = st;
			const char *e = strstr(q->c.buf, "{\"epoch\":");
			if (st == 200 && e)
				q->since = strtoull(e + 9, NULL, 10);
			q->c.len = 0;
			left--;
		}
	}
}

static void send_all(struct poller *p, size_t n, bool health)
{
	char req[256];
	for (size_t i = 0; i < n; i++) {
		p[i].done_us = 0;
		size_t len = health ? sizeof(HEALTH) - 1
				    : (size_t)snprintf(req, sizeof(req),
						       "GET /v1/routes?instance=%s&since=%llu HTTP/1.1\r\n"
						       "Host: cc\r\nAuthorization: Bearer %s\r\n\r\n",
						       p[i].id, (unsigned long long)p[i].since, token);
		if (write(p[i].c.fd, health ? HEALTH : req, len) != (ssize_t)len)
			die("poller write");
	}
}

/* p50/p99 in ms of one change reaching @n parked pollers, and of @n
 * simultaneous health requests (raw). */
static void propagation(size_t n, unsigned rounds, double out[4])
{
	char name[32];
	snprintf(name, sizeof(name), "bench-%zu-%d", n, (int)getpid());
	cc_start(name, true);
	struct poller *p = calloc(n, sizeof(*p));
	struct conn *ctl = calloc(1, sizeof(*ctl));
	uint64_t *lat = calloc(n * rounds, sizeof(*lat)), *raw = calloc(n * rounds, sizeof(*raw));
	if (!p || !ctl || !lat || !raw || (ctl->fd = connect_cc(false)) < 0)
		die("propagation setup");
	char req[512], *body;
	for (size_t i = 0; i < n; i++) {
		if (exchange(ctl, req, reg_request(req, sizeof(req), "a", (unsigned)i), &body) != 200)
			die("register");
		const char *id = strstr(body, "\"instance\":\"") + 12;
		snprintf(p[i].id, sizeof(p[i].id), "%.*s", (int)(strchr(id, '"') - id), id);
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	for (size_t i = 0; i < n; i++) {
		if ((p[i].c.fd = connect_cc(true)) < 0)
			die("poller connect");
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &p[i]};
		epoll_ctl(ep, EPOLL_CTL_ADD, p[i].c.fd, &ev);
	}
	send_all(p, n, false); /* since=0: everyone gets the current table */
	collect(ep, n);
	size_t k = 0, kr = 0;
	for (unsigned r = 0; r < rounds; r++) {
		send_all(p, n, false);
		usleep(300000); /* let every poll park */
		uint64_t t0 = now_us();
		if (exchange(ctl, req, reg_request(req, sizeof(req), "b", 60000 + r), NULL) != 200)
			die("trigger");
		collect(ep, n);
		for (size_t i = 0; i < n; i++) {
			if (p[i].status != 200)
				die("a poll did not get the new table");
			lat[k++] = p[i].done_us - t0;
		}
		usleep(50000);
		t0 = now_us();
		send_all(p, n, true);
		collect(ep, n);
		for (size_t i = 0; i < n; i++)
			raw[kr++] = p[i].done_us - t0;
	}
	out[0] = pct(lat, k, 0.5);
	out[1] = pct(lat, k, 0.99);
	out[2] = pct(raw, kr, 0.5);
	out[3] = pct(raw, kr, 0.99);
	for (size_t i = 0; i < n; i++)
		close(p[i].c.fd);
	close(ep);
	close(ctl->fd);
	free(p);
	free(ctl);
	free(lat);
	free(raw);
}

/* The coordinator's mirror lag (ms, p50 and p99) from /v1/stats. */
static void mirror_lag(double out[2], char *kind, size_t cap)
{
	struct conn *c = calloc(1, sizeof(*c));
	char *body;
	if (!c || (c->fd = connect_cc(false)) < 0)
		die("stats");
	char req[160];
	int rl = snprintf(req, sizeof(req),
			  "GET /v1/stats HTTP/1.1\r\nHost: cc\r\nAuthorization: Bearer %s\r\n\r\n",
			  token);
	usleep(200000); /* the last epoch's write */
	if (exchange(c, req, (size_t)rl, &body) != 200)
		die("stats");
	const char *m = strstr(body, "\"mirror\":");
	const char *k = m ? strstr(m, "\"kind\":\"") : NULL;
	const char *p50 = m ? strstr(m, "\"lag_ms_p50\":") : NULL;
	const char *p99 = m ? strstr(m, "\"lag_ms_p99\":") : NULL;
	out[0] = p50 ? strtod(p50 + 13, NULL) : -1;
	out[1] = p99 ? strtod(p99 + 13, NULL) : -1;
	snprintf(kind, cap, "%.*s", k ? (int)(strchr(k + 8, '"') - k - 8) : 1, k ? k + 8 : "?");
	close(c->fd);
	free(c);
}

int main(int argc, char **argv)
{
	const char *json = NULL;
	bool quick = false;
	uint64_t t[2];
	if (getrandom(t, sizeof(t), 0) != (ssize_t)sizeof(t))
		die("getrandom");
	snprintf(token, sizeof(token), "%016llx%016llx", (unsigned long long)t[0],
		 (unsigned long long)t[1]);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--cc") && i + 1 < argc)
			cc_bin = argv[++i];
		else if (!strcmp(argv[i], "--zk") && i + 1 < argc)
			zk_hosts = argv[++i];
		else if (!strcmp(argv[i], "--zk-start"))
			zk_pid = -1;
		else if (!strcmp(argv[i], "--json") && i + 1 < argc)
			json = argv[++i];
		else if (!strcmp(argv[i], "--quick"))
			quick = true;
		else {
			fprintf(stderr, "usage: %s --cc IROUTE-CC [--zk HOSTS | --zk-start] [--json FILE] [--quick]\n",
				argv[0]);
			return 2;
		}
	}
	if (!cc_bin) {
		fprintf(stderr, "%s: --cc is required\n", argv[0]);
		return 2;
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "/tmp/iroute-bench-cc-XXXXXX");
	if (!mkdtemp(dir))
		die("mkdtemp");
	if (zk_pid == -1)
		zk_start();

	unsigned total = quick ? 4000 : 20000;
	char name[32];
	snprintf(name, sizeof(name), "bench-reg-%d", (int)getpid());
	cc_start(name, false); /* 20000 instances: over ZooKeeper's 1 MiB per request */
	double health_rps = rate(total, 4, true);
	double reg_rps = rate(total, 4, false);
	cc_stop();
	printf("registrations/s: %.0f   (raw: GET /_/health on the same server: %.0f/s)\n",
	       reg_rps, health_rps);

	static const size_t ns[] = {100, 1000};
	double prop[2][4], lag[2];
	char kind[32];
	for (size_t i = 0; i < 2; i++) {
		propagation(ns[i], quick ? 3 : 10, prop[i]);
		if (i == 1)
			mirror_lag(lag, kind, sizeof(kind));
		cc_stop();
		printf("propagation to %4zu instances: p50 %.2f ms, p99 %.2f ms   "
		       "(raw: %zu simultaneous /_/health: p50 %.2f ms, p99 %.2f ms)\n",
		       ns[i], prop[i][0], prop[i][1], ns[i], prop[i][2], prop[i][3]);
	}
	printf("mirror (%s) lag: p50 %.2f ms, p99 %.2f ms\n", kind, lag[0], lag[1]);
	if (zk_pid > 0) {
		kill(zk_pid, SIGKILL);
		waitpid(zk_pid, NULL, 0);
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench-control: could not remove %s\n", dir);
	if (json) {
		FILE *f = fopen(json, "w");
		if (!f)
			die(json);
		fprintf(f,
			"{\"registrations_per_s\": %.0f, \"health_per_s\": %.0f,\n"
			" \"propagation\": [{\"instances\": %zu, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
			"\"raw_p50_ms\": %.3f, \"raw_p99_ms\": %.3f},\n"
			"                 {\"instances\": %zu, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
			"\"raw_p50_ms\": %.3f, \"raw_p99_ms\": %.3f}],\n"
			" \"zk_mirror_lag_ms\": %.3f, \"mirror_lag_p99_ms\": %.3f, \"mirror\": \"%s\"}\n",
			reg_rps, health_rps, ns[0], prop[0][0], prop[0][1], prop[0][2], prop[0][3],
			ns[1], prop[1][0], prop[1][1], prop[1][2], prop[1][3], lag[0], lag[1], kind);
		fclose(f);
		printf("wrote %s\n", json);
	}
	return 0;
}
