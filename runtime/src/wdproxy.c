/* wdproxy.c - the watchdog's http mode: of-watchdog's reverse proxy to a
 * function that is its own HTTP server (executor/http_runner.go).
 *
 * Why this design: the connection thread that MHD gives each client
 * (watchdog.c) does the whole exchange with blocking I/O bounded by the
 * request's deadline, so nothing is queued between threads and a slow
 * upstream delays only its own client.  Each client connection keeps its
 * own kept-alive upstream connection (struct wd_conn.up): a load balancer
 * with N connections to us makes N to the function, no pool, no lock, and
 * the upstream sees the same concurrency the watchdog sees (max_inflight
 * still applies first).  Bodies stream both ways: each request body piece
 * MHD hands us is written upstream at once (chunked unless the client gave
 * a Content-Length; buffer_http collects it first and sends a
 * Content-Length, as of-watchdog), and the response body goes out as each
 * read returns, which is what text/event-stream and application/x-ndjson
 * need (of-watchdog flushes those two; we never hold bytes back for any
 * type).  A known-length body up to 64 KiB of any other type is read whole
 * first, so that head and body leave in one writev (two packets would wake
 * the client twice).  Rejected: an epoll proxy with a connection pool (a second event
 * loop beside MHD's threads, for no gain at one function's concurrency).
 *
 * The exchange, as of-watchdog (its differences below):
 *   target      upstream_url's path prefix + the client's raw request
 *               target (path and query), method unchanged
 *   headers     the client's, Host kept (request.Host = r.Host), without
 *               the hop-by-hop ones (Connection, Keep-Alive, TE, Trailer,
 *               Transfer-Encoding, Upgrade, Proxy-Connection) and without
 *               Content-Length (we frame the body ourselves)
 *   response    the upstream's status and headers (hop-by-hop and
 *               Content-Length dropped: MHD frames the body), plus
 *               X-Duration-Seconds (time to the upstream's head, as
 *               of-watchdog) and X-Call-Id/X-Start-Time from the request
 *               when the upstream did not set them
 *   errors      connect/send/parse failure: 500; no complete head by
 *               exec_timeout (or a shorter X-Timeout): 504; an error after
 *               the head has gone out ends the body abnormally (the client
 *               sees a truncated response, never a fake success)
 *   deadline    exec_timeout bounds the whole exchange, body included (Go
 *               cancels the request's context after reading the body)
 * Differences: 500 carries the error text (of-watchdog: empty body);
 * upstream redirects are passed through as of-watchdog's newer versions
 * do; a kept-alive upstream connection is checked before reuse and a
 * bodiless request that fails on a reused connection before any answer
 * is retried once on a new one (Go's transport retries such requests too).
 *
 * The child (fprocess, started once before listening): its own process
 * group, signals unblocked, stdin /dev/null, stdout and stderr logged line
 * by line ("stdout: ", "stderr: " with prefix_logs) by one thread that
 * also reaps it through a pidfd.  The lock file is written only once
 * upstream_url accepts a TCP connection, so /_/health turns 200 when the
 * function can answer (of-watchdog writes it at once and the first
 * requests fail).  If the child exits, the watchdog exits 1, as
 * of-watchdog (log.Fatal).  On SIGTERM the child gets SIGTERM only after
 * the drain, so requests in flight complete (of-watchdog forwards it at
 * once), then SIGKILL for its group after write_timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httpc.h"
#include "iroute/log.h"
#include "watchdog_int.h"

#define PX_LOG "watchdog"
#define PX_BLOCK (32 * 1024) /* response bytes per read */
#define PX_SMALL (64 * 1024) /* known-length bodies up to this are sent in one piece */

struct wd_proxy {
	struct ir_url url;
	pid_t pid;
	int pidfd;
	int out_fd, err_fd; /* the child's stdout and stderr pipes (read ends) */
	int exit_efd;	    /* eventfd: written once the child is reaped */
	int status;	    /* wait status, valid once exited */
	atomic_bool exited;
	pthread_t logger;
	bool logger_started;
	bool prefix_logs;
	size_t line_max;
};

/* One exchange.  Owned by the wd_req until the response is queued, then by
 * the MHD response (px_free). */
struct wd_preq {
	struct wd *wd;
	struct wd_conn *conn;
	struct ir_httpc *c;
	uint64_t start_ns, deadline_ns;
	int64_t body_len; /* framing announced upstream */
	bool sent_head, reused;
	int err; /* first error while sending, 0 = none */
	int status;
	bool keep_alive, body_done;
	char method[16];
};

/* ---- the child ---- */

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

struct line_buf {
	char *buf;
	size_t len;
};

static void emit_line(struct wd_proxy *p, const char *stream, const char *s, size_t n)
{
	if (n && s[n - 1] == '\r')
		n--;
	if (p->prefix_logs)
		ir_info("fprocess", "%s: %.*s", stream, (int)n, s);
	else
		ir_info("fprocess", "%.*s", (int)n, s);
}

/* Read what is there; log whole lines, a line over line_max in pieces.
 * Returns false at end of file. */
static bool drain_pipe(struct wd_proxy *p, int fd, struct line_buf *lb, const char *stream)
{
	ssize_t n = read(fd, lb->buf + lb->len, p->line_max - lb->len);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0) {
		if (lb->len)
			emit_line(p, stream, lb->buf, lb->len);
		lb->len = 0;
		return false;
	}
	lb->len += (size_t)n;
	size_t start = 0;
	for (size_t i = 0; i < lb->len; i++) {
		if (lb->buf[i] == '\n') {
			emit_line(p, stream, lb->buf + start, i - start);
			start = i + 1;
		}
	}
	if (start == 0 && lb->len == p->line_max) {
		emit_line(p, stream, lb->buf, lb->len);
		start = lb->len;
	}
	memmove(lb->buf, lb->buf + start, lb->len - start);
	lb->len -= start;
	return true;
}

static void *logger_main(void *arg)
{
	struct wd_proxy *p = arg;
	struct line_buf out = {malloc(p->line_max), 0}, err = {malloc(p->line_max), 0};
	bool out_open = out.buf != NULL, err_open = err.buf != NULL;
	bool reaped = false;
	while (!reaped || out_open || err_open) {
		struct pollfd fds[3];
		nfds_t n = 0;
		int io = -1, ie = -1, ip = -1;
		if (out_open) {
			io = (int)n;
			fds[n++] = (struct pollfd){.fd = p->out_fd, .events = POLLIN};
		}
		if (err_open) {
			ie = (int)n;
			fds[n++] = (struct pollfd){.fd = p->err_fd, .events = POLLIN};
		}
		if (!reaped && p->pidfd >= 0) {
			ip = (int)n;
			fds[n++] = (struct pollfd){.fd = p->pidfd, .events = POLLIN};
		}
		/* After the child is gone, its own children may still hold
		 * the pipes: give them 100 ms, not forever.  Without a pidfd
		 * (kernels before 5.3, valgrind) the child is checked every
		 * 100 ms. */
		int r = poll(fds, n, reaped || p->pidfd < 0 ? 100 : -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || (r == 0 && reaped))
			break;
		if (io >= 0 && fds[io].revents)
			out_open = drain_pipe(p, p->out_fd, &out, "stdout");
		if (ie >= 0 && fds[ie].revents)
			err_open = drain_pipe(p, p->err_fd, &err, "stderr");
		if (!reaped && ((ip >= 0 && fds[ip].revents) || p->pidfd < 0)) {
			int st = 0;
			if (waitpid(p->pid, &st, p->pidfd < 0 ? WNOHANG : 0) == p->pid) {
				p->status = st;
				reaped = true;
				atomic_store(&p->exited, true);
				uint64_t one = 1;
				if (write(p->exit_efd, &one, sizeof(one)) < 0)
					ir_warn(PX_LOG, "eventfd: %s", strerror(errno));
			}
		}
	}
	free(out.buf);
	free(err.buf);
	return NULL;
}

static int spawn_child(struct wd_proxy *p, char *const *argv, char *err, size_t errlen)
{
	int po[2], pe[2], ps[2];
	if (pipe2(po, O_CLOEXEC) < 0)
		goto fail;
	if (pipe2(pe, O_CLOEXEC) < 0)
		goto fail_po;
	/* Reports an exec failure to the parent (closed by a good exec). */
	if (pipe2(ps, O_CLOEXEC) < 0)
		goto fail_pe;
	pid_t pid = fork();
	if (pid < 0)
		goto fail_ps;
	if (pid == 0) {
		setpgid(0, 0);
		sigset_t all;
		sigemptyset(&all);
		pthread_sigmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
			_exit(127);
		execvp(argv[0], argv);
		int e = errno;
		if (write(ps[1], &e, sizeof(e)) < 0)
			_exit(127);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	close(ps[1]);
	int e = 0;
	ssize_t n;
	while ((n = read(ps[0], &e, sizeof(e))) < 0 && errno == EINTR)
		;
	close(ps[0]);
	if (n == (ssize_t)sizeof(e)) {
		waitpid(pid, NULL, 0);
		close(po[0]);
		close(pe[0]);
		snprintf(err, errlen, "fprocess \"%s\": %s", argv[0], strerror(e));
		return -e;
	}
	p->pid = pid;
	p->out_fd = po[0];
	p->err_fd = pe[0];
	return 0;

fail_ps:
	close(ps[0]);
	close(ps[1]);
fail_pe:
	close(pe[0]);
	close(pe[1]);
fail_po:
	close(po[0]);
	close(po[1]);
fail:
	e = errno;
	snprintf(err, errlen, "starting fprocess: %s", strerror(e));
	return -e;
}

int wd_proxy_start(struct wd *wd, char *err, size_t errlen)
{
	const struct ir_wd_config *cfg = wd->cfg;
	struct wd_proxy *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	p->pidfd = p->out_fd = p->err_fd = p->exit_efd = -1;
	char uerr[256];
	int rc = ir_url_parse(cfg->upstream_url, &p->url, uerr, sizeof(uerr));
	if (rc) {
		snprintf(err, errlen, "upstream_url: %s", uerr);
		free(p);
		return -EINVAL;
	}
	p->prefix_logs = cfg->prefix_logs;
	p->line_max = cfg->log_buffer_size ? cfg->log_buffer_size : 65536;
	p->exit_efd = eventfd(0, EFD_CLOEXEC);
	if (p->exit_efd < 0) {
		rc = -errno;
		snprintf(err, errlen, "eventfd(): %s", strerror(errno));
		free(p);
		return rc;
	}
	rc = spawn_child(p, cfg->argv, err, errlen);
	if (rc) {
		close(p->exit_efd);
		free(p);
		return rc;
	}
	p->pidfd = pidfd_open_(p->pid); /* -1 is fine: the logger polls */
	if ((rc = pthread_create(&p->logger, NULL, logger_main, p)) != 0) {
		rc = -rc;
		snprintf(err, errlen, "watching fprocess: %s", strerror(-rc));
		kill(-p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
		if (p->pidfd >= 0)
			close(p->pidfd);
		close(p->out_fd);
		close(p->err_fd);
		close(p->exit_efd);
		free(p);
		return rc;
	}
	p->logger_started = true;
	ir_info(PX_LOG, "started fprocess \"%s\" (pid %d), forwarding to %s", cfg->fprocess,
		(int)p->pid, cfg->upstream_url);
	wd->proxy = p;
	return 0;
}

int wd_proxy_exit_fd(const struct wd *wd)
{
	return wd->proxy ? wd->proxy->exit_efd : -1;
}

void wd_proxy_exit_status(struct wd *wd, char *buf, size_t len)
{
	int st = wd->proxy ? wd->proxy->status : 0;
	if (WIFEXITED(st))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "signal: %s", strsignal(WTERMSIG(st)));
	else
		snprintf(buf, len, "status %d", st);
}

bool wd_proxy_upstream_up(const struct wd *wd)
{
	if (!wd->proxy)
		return false;
	int fd = ir_httpc_connect(&wd->proxy->url, wd_now_ns() + 100 * 1000000ull);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

void wd_proxy_stop(struct wd *wd, uint64_t wait_ns)
{
	struct wd_proxy *p = wd->proxy;
	if (!p || !p->logger_started)
		return;
	if (!atomic_load(&p->exited)) {
		kill(p->pid, SIGTERM);
		struct pollfd pf = {.fd = p->exit_efd, .events = POLLIN};
		uint64_t end = wd_now_ns() + wait_ns;
		while (!atomic_load(&p->exited)) {
			uint64_t now = wd_now_ns();
			if (now >= end)
				break;
			int ms = (int)((end - now + 999999) / 1000000);
			if (poll(&pf, 1, ms) < 0 && errno != EINTR)
				break;
		}
		if (!atomic_load(&p->exited)) {
			ir_warn(PX_LOG, "fprocess (pid %d) still running: SIGKILL", (int)p->pid);
			kill(-p->pid, SIGKILL);
			kill(p->pid, SIGKILL);
		}
	}
	pthread_join(p->logger, NULL);
	p->logger_started = false;
	if (p->pidfd >= 0)
		close(p->pidfd);
	close(p->out_fd);
	close(p->err_fd);
	p->pidfd = p->out_fd = p->err_fd = -1;
}

void wd_proxy_free(struct wd *wd)
{
	struct wd_proxy *p = wd->proxy;
	if (!p)
		return;
	wd_proxy_stop(wd, 0);
	close(p->exit_efd);
	free(p);
	wd->proxy = NULL;
}

/* ---- the exchange ---- */

struct head_buf {
	char *s;
	size_t len, cap;
	bool oom, has_host;
};

static void hb_add(struct head_buf *h, const char *a, size_t n)
{
	if (h->oom)
		return;
	if (h->len + n + 1 > h->cap) {
		size_t cap = h->cap ? h->cap : 1024;
		while (cap < h->len + n + 1)
			cap *= 2;
		char *s = realloc(h->s, cap);
		if (!s) {
			h->oom = true;
			return;
		}
		h->s = s;
		h->cap = cap;
	}
	memcpy(h->s + h->len, a, n);
	h->len += n;
	h->s[h->len] = '\0';
}

static void hb_str(struct head_buf *h, const char *s)
{
	hb_add(h, s, strlen(s));
}

static bool hop_by_hop(const char *name)
{
	static const char *const hop[] = {"Connection", "Keep-Alive",	 "Proxy-Connection",
					  "TE",		"Trailer",	 "Transfer-Encoding",
					  "Upgrade",	"Content-Length"};
	for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		if (strcasecmp(name, hop[i]) == 0)
			return true;
	return false;
}

static enum MHD_Result head_cb(void *cls, enum MHD_ValueKind kind, const char *key,
			       const char *value)
{
	struct head_buf *h = cls;
	(void)kind;
	if (hop_by_hop(key))
		return MHD_YES;
	if (strcasecmp(key, "Host") == 0)
		h->has_host = true;
	hb_str(h, key);
	hb_add(h, ": ", 2);
	hb_str(h, value ? value : "");
	hb_add(h, "\r\n", 2);
	return MHD_YES;
}

/* "METHOD prefix+target HTTP/1.1\r\n" + the client's end-to-end headers +
 * "\r\n"; malloc()ed, or NULL. */
static char *build_head(struct wd_proxy *p, struct MHD_Connection *con, const char *method,
			const char *target, size_t *len)
{
	struct head_buf h = {0};
	hb_str(&h, method);
	hb_add(&h, " ", 1);
	hb_str(&h, p->url.prefix);
	hb_str(&h, *target ? target : "/");
	hb_str(&h, " HTTP/1.1\r\n");
	MHD_get_connection_values(con, MHD_HEADER_KIND, head_cb, &h);
	if (!h.has_host) {
		char host[300];
		snprintf(host, sizeof(host), "Host: %s:%u\r\n", p->url.host, (unsigned)p->url.port);
		hb_str(&h, host);
	}
	hb_add(&h, "\r\n", 2);
	if (h.oom) {
		free(h.s);
		return NULL;
	}
	*len = h.len;
	return h.s;
}

/* The body framing to announce upstream. */
static int64_t framing(struct wd *wd, struct MHD_Connection *con, struct wd_req *r,
		       const char *method)
{
	if (wd->cfg->buffer_http)
		return (int64_t)r->len;
	const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Length");
	if (cl) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(cl, &end, 10);
		if (!errno && end != cl && !*end && v <= INT64_MAX)
			return (int64_t)v;
	}
	const char *te = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Transfer-Encoding");
	if (te && strcasestr(te, "chunked"))
		return IR_HTTPC_CHUNKED;
	/* No body: Go sends Content-Length: 0 for these methods. */
	if (!strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH"))
		return 0;
	return IR_HTTPC_NO_BODY;
}

/* A connection for this exchange: the client connection's kept-alive one
 * when still good, else a new one. */
static int take_connection(struct wd_preq *q, bool allow_reuse)
{
	struct wd_proxy *p = q->wd->proxy;
	if (allow_reuse && q->conn && q->conn->up) {
		struct ir_httpc *c = q->conn->up;
		q->conn->up = NULL;
		if (ir_httpc_idle_ok(c)) {
			q->c = c;
			q->reused = true;
			ir_httpc_set_deadline(c, q->deadline_ns);
			return 0;
		}
		ir_httpc_close(c);
	}
	q->reused = false;
	int fd = ir_httpc_connect(&p->url, q->deadline_ns);
	if (fd < 0)
		return fd;
	int rc = ir_httpc_open(&q->c, fd);
	if (rc)
		return rc;
	ir_httpc_set_deadline(q->c, q->deadline_ns);
	return 0;
}

static int send_head(struct wd_preq *q, struct MHD_Connection *con, struct wd_req *r,
		     const char *method, bool allow_reuse)
{
	int rc = take_connection(q, allow_reuse);
	if (rc)
		return rc;
	size_t len;
	char *head = build_head(q->wd->proxy, con, method, r->uri, &len);
	if (!head)
		return -ENOMEM;
	rc = ir_httpc_send_head(q->c, head, len, q->body_len);
	free(head);
	q->sent_head = rc == 0;
	return rc;
}

static struct wd_preq *preq_new(struct wd *wd, struct MHD_Connection *con, struct wd_req *r,
				const char *method)
{
	struct wd_preq *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->wd = wd;
	q->conn = wd_conn_of(con);
	q->start_ns = r->start_ns;
	uint64_t t = wd_request_timeout(wd->cfg, con);
	q->deadline_ns = t ? r->start_ns + t : 0;
	q->body_len = framing(wd, con, r, method);
	snprintf(q->method, sizeof(q->method), "%s", method);
	return q;
}

static void preq_free(struct wd_preq *q)
{
	if (!q)
		return;
	ir_httpc_close(q->c);
	free(q);
}

void wd_proxy_req_done(struct wd_req *r)
{
	preq_free(r->preq);
	r->preq = NULL;
}

void wd_proxy_conn_closed(struct wd_conn *c)
{
	ir_httpc_close(c->up);
	c->up = NULL;
}

/* MHD's content reader: whatever the upstream has, at once. */
static ssize_t px_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct wd_preq *q = cls;
	(void)pos;
	if (!q->c)
		return MHD_CONTENT_READER_END_OF_STREAM; /* handed back already */
	ssize_t n = ir_httpc_read_body(q->c, buf, max);
	if (n >= 0 && ir_httpc_body_done(q->c)) {
		/* Back to the client connection for its next request (this
		 * runs on that connection's thread, while it is alive).  MHD
		 * does not call again once a known length is complete, so
		 * this is checked after every read, not only at 0. */
		q->body_done = true;
		if (q->keep_alive && q->conn && !q->conn->up) {
			q->conn->up = q->c;
			q->c = NULL;
		}
	}
	if (n > 0)
		return n;
	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	ir_warn(PX_LOG, "%s: upstream response body: %s", q->method, strerror((int)-n));
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* The response is done (sent, or the client went away). */
static void px_free(void *cls)
{
	struct wd_preq *q = cls;
	ir_metrics_observe(q->wd->metrics, q->method, q->status,
			   (double)(wd_now_ns() - q->start_ns) / 1e9);
	preq_free(q);
}

static enum MHD_Result px_error(struct wd *wd, struct MHD_Connection *con, struct wd_req *r,
				const char *method, int rc)
{
	unsigned int status =
	    rc == -ETIMEDOUT ? MHD_HTTP_GATEWAY_TIMEOUT : MHD_HTTP_INTERNAL_SERVER_ERROR;
	char msg[300];
	if (rc == -ETIMEDOUT) {
		char d[40];
		ir_duration_format(wd_request_timeout(wd->cfg, con), d, sizeof(d));
		snprintf(msg, sizeof(msg), "upstream did not answer within %s\n", d);
	} else {
		snprintf(msg, sizeof(msg), "upstream %s: %s\n", wd->cfg->upstream_url,
			 strerror(-rc));
	}
	ir_warn(PX_LOG, "%s %s: %.*s", method, r->uri, (int)strlen(msg) - 1, msg);
	wd_proxy_req_done(r);
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(strlen(msg), msg, MHD_RESPMEM_MUST_COPY);
	if (resp)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					"text/plain; charset=utf-8");
	return wd_finish(wd, con, r, method, status, resp, true);
}

static bool retryable(int rc)
{
	return rc == -ECONNRESET || rc == -EPIPE || rc == -ECONNREFUSED;
}

/* Head (unless sent with the first body piece), buffered body, end of
 * body, the upstream's head. */
static int exchange(struct wd *wd, struct wd_preq *q, struct MHD_Connection *con, struct wd_req *r,
		    const char *method, struct ir_httpc_resp *resp, bool allow_reuse)
{
	int rc = q->sent_head ? 0 : send_head(q, con, r, method, allow_reuse);
	if (!rc && wd->cfg->buffer_http && r->len)
		rc = ir_httpc_send_body(q->c, r->body, r->len);
	if (!rc)
		rc = ir_httpc_end_body(q->c);
	if (!rc)
		rc = ir_httpc_read_head(q->c, strcmp(method, "HEAD") == 0, resp);
	return rc;
}

/* Types whose every piece must reach the client when written (of-watchdog
 * flushes these two). */
static bool streamed_type(const struct ir_httpc_resp *u)
{
	const char *t = ir_httpc_header(u, "Content-Type");
	return t && (strncasecmp(t, "text/event-stream", 17) == 0 ||
		     strncasecmp(t, "application/x-ndjson", 20) == 0);
}

static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)cls;
	(void)pos;
	(void)buf;
	(void)max;
	return MHD_CONTENT_READER_END_OF_STREAM;
}

/* The upstream's head is in: queue the client's response. */
static enum MHD_Result respond(struct wd *wd, struct MHD_Connection *con, struct wd_req *r,
			       struct wd_preq *q, const struct ir_httpc_resp *u, const char *method)
{
	q->status = u->status;
	q->keep_alive = u->keep_alive;
	struct MHD_Response *resp;
	if (u->content_length == 0) {
		/* No body (HEAD, 204, 304, Content-Length: 0): the upstream
		 * connection is free for the next request now, and the
		 * request is recorded by wd_finish(). */
		if (q->keep_alive && q->conn && !q->conn->up) {
			q->conn->up = q->c;
			q->c = NULL;
		}
		/* A HEAD answer keeps the upstream's Content-Length (MHD never
		 * reads a body for HEAD). */
		const char *cl = ir_httpc_header(u, "Content-Length");
		unsigned long long v = 0;
		if (!strcmp(method, "HEAD") && cl)
			v = strtoull(cl, NULL, 10);
		resp = v ? MHD_create_response_from_callback(v, 1, no_body, NULL, NULL)
			 : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	} else if (u->content_length > 0 && u->content_length <= PX_SMALL && !streamed_type(u)) {
		/* A small body of known length: read it whole, so that MHD
		 * sends head and body in one writev (a callback response goes
		 * out as two packets, and the client wakes for each). */
		size_t len = (size_t)u->content_length, got = 0;
		char *body = malloc(len);
		if (!body)
			return MHD_NO;
		while (got < len) {
			ssize_t n = ir_httpc_read_body(q->c, body + got, len - got);
			if (n <= 0) {
				free(body);
				return px_error(wd, con, r, method, n < 0 ? (int)n : -ECONNRESET);
			}
			got += (size_t)n;
		}
		if (q->keep_alive && q->conn && !q->conn->up) {
			q->conn->up = q->c;
			q->c = NULL;
		}
		resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
		if (!resp)
			free(body);
	} else {
		/* From here the exchange lives as long as the response;
		 * px_free() records the request when the body is done. */
		uint64_t size =
		    u->content_length > 0 ? (uint64_t)u->content_length : MHD_SIZE_UNKNOWN;
		resp = MHD_create_response_from_callback(size, PX_BLOCK, px_read, q, px_free);
		if (resp)
			r->preq = NULL;
	}
	if (!resp)
		return MHD_NO; /* r->preq is freed with the request */
	for (size_t i = 0; i < u->nheaders; i++) {
		const struct ir_http_header *h = &u->headers[i];
		if (hop_by_hop(h->name))
			continue;
		if (MHD_add_response_header(resp, h->name, h->value) != MHD_YES)
			ir_debug(PX_LOG, "upstream header %s dropped", h->name);
	}
	bool record = r->preq != NULL;
	if (record)
		wd_proxy_req_done(r);
	return wd_finish(wd, con, r, method, (unsigned int)u->status, resp, record);
}

enum MHD_Result wd_proxy_request(struct wd *wd, struct MHD_Connection *con, struct wd_req *r,
				 const char *method, const char *upload, size_t len)
{
	struct wd_preq *q = r->preq;
	if (!q) {
		q = r->preq = preq_new(wd, con, r, method);
		if (!q)
			return MHD_NO;
	}
	if (len) {
		/* A body piece: upstream at once (the head first). */
		if (q->err)
			return MHD_YES; /* answered at the end */
		int rc = q->sent_head ? 0 : send_head(q, con, r, method, true);
		if (!rc)
			rc = ir_httpc_send_body(q->c, upload, len);
		if (rc)
			q->err = rc;
		return MHD_YES;
	}
	/* The request is in: finish it upstream and read the answer. */
	struct ir_httpc_resp resp;
	int rc = q->err ? q->err : exchange(wd, q, con, r, method, &resp, true);
	bool bodiless = q->body_len == IR_HTTPC_NO_BODY || q->body_len == 0 || wd->cfg->buffer_http;
	if (rc && q->reused && bodiless && retryable(rc)) {
		/* The kept-alive connection had been closed upstream and
		 * nothing streamed: once more on a new one. */
		ir_httpc_close(q->c);
		q->c = NULL;
		q->sent_head = false;
		rc = exchange(wd, q, con, r, method, &resp, false);
	}
	if (rc)
		return px_error(wd, con, r, method, rc);
	return respond(wd, con, r, q, &resp, method);
}

enum MHD_Result wd_proxy_ready(struct wd *wd, struct MHD_Connection *con, struct wd_req *r)
{
	(void)r;
	struct wd_proxy *p = wd->proxy;
	uint64_t t = wd_request_timeout(wd->cfg, con);
	uint64_t deadline = wd_now_ns() + (t ? t : 10 * IR_NS_PER_SEC);
	int status = 0;
	int fd = ir_httpc_connect(&p->url, deadline);
	struct ir_httpc *c = NULL;
	if (fd >= 0 && ir_httpc_open(&c, fd) == 0) {
		ir_httpc_set_deadline(c, deadline);
		char head[1400];
		int n = snprintf(head, sizeof(head), "GET %s%s HTTP/1.1\r\nHost: %s:%u\r\n\r\n",
				 p->url.prefix, wd->cfg->ready_path, p->url.host,
				 (unsigned)p->url.port);
		struct ir_httpc_resp resp;
		if (n > 0 && (size_t)n < sizeof(head) &&
		    ir_httpc_send_head(c, head, (size_t)n, IR_HTTPC_NO_BODY) == 0 &&
		    ir_httpc_read_head(c, false, &resp) == 0)
			status = resp.status;
	}
	ir_httpc_close(c);
	if (status >= 200 && status < 300)
		return wd_queue_text(con, MHD_HTTP_OK, "");
	return wd_queue_text(con, MHD_HTTP_SERVICE_UNAVAILABLE, "");
}
