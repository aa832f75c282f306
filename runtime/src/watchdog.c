/* watchdog.c - of-watchdog's HTTP front for one function, on libmicrohttpd:
 * health and readiness, the streaming, serializing, static and iroute modes,
 * Prometheus metrics, the SIGTERM drain, the hardening limits.  The http
 * mode (reverse proxy to the function's own server) is in wdproxy.c; it
 * plugs into serve_function() (each body piece, then the end), the ready
 * check, the connection list (one kept-alive upstream connection per
 * client connection) and ir_watchdog_run() (the child, the lock file once
 * the upstream answers, exit when the child exits).
 *
 * Why this design: in serializing mode a request blocks in ir_exec_run()
 * for as long as fprocess runs, so each connection gets its own thread
 * (MHD_USE_THREAD_PER_CONNECTION with an internal poll() thread; MHD does
 * not allow epoll with a thread per connection).  A slow function then
 * never delays /_/health, /_/ready or another request, which is what Go's
 * goroutine per connection gives of-watchdog.  Rejected: a fixed thread
 * pool (its size would silently become a second max_inflight and a full
 * pool would make the kubelet's health probes time out) and suspending
 * connections while a worker runs fprocess (more code for no gain at the
 * concurrency one function instance sees).  Metrics get their own small
 * daemon on metrics_port, like of-watchdog's second http.Server.
 *
 * Request flow (the function handler, every path not under /_/):
 *   1st call     limiter: max_inflight requests running already -> 429 with
 *                X-OpenFaaS-Internal: faas-middleware, nothing runs (this
 *                is faas-middleware's concurrency limiter)
 *   body calls   the body is appended to one buffer (serializing mode
 *                reads it whole before starting fprocess, as of-watchdog)
 *   last call    ir_exec_run() with the CGI environment; status and body
 *                from ir_exec_http_status(); Content-Type: content_type
 *                on every answer (of-watchdog sets it before running),
 *                X-Duration-Seconds as Go's "%f" (6 decimals); X-Call-Id
 *                and X-Start-Time copied from the request when present
 *                (the pass-through; we create neither).
 * Streaming mode (of-watchdog's default; executor/forking_runner.go and
 * main.go's makeForkRequestHandler) differs in the last call only:
 *   last call    a helper thread runs ir_exec_run() with on_stdout writing
 *                into a socketpair; the connection thread waits for the
 *                first stdout byte or the child's end.  With output: 200,
 *                Content-Type, X-Call-Id/X-Start-Time, chunked body read
 *                from the socketpair by MHD's content reader as it comes
 *                (blocking there is allowed with a thread per connection).
 *                No X-Duration-Seconds, as of-watchdog (its headers leave
 *                before the duration is known).  Once 200 is out, a failed
 *                run (exit non-zero, signal, exec_timeout) ends the body
 *                without its last chunk so the client sees a truncated
 *                response.  Without any output: the buffered table
 *                (ir_exec_http_status()) with X-Duration-Seconds.  The
 *                response's free callback closes the socketpair (a child
 *                still writing is then killed: EPIPE), joins the thread
 *                and records the metrics with the whole stream's duration.
 *   Differences from of-watchdog: the body is read whole before fprocess
 *   starts (of-watchdog pipes it as it arrives: a function cannot answer
 *   before the upload ends here); each stdout chunk is sent at once (Go
 *   ResponseWriter buffers a few KiB and of-watchdog never flushes);
 *   failures before the first byte get 500/504 with the error text (Go
 *   answers 200 with an empty body); after the first byte a failure
 *   truncates the body (Go ends it normally, a success to the client);
 *   the process group is killed on exec_timeout, not the process only.
 *   A client that disconnects while the child is silent is noticed only
 *   when the child next writes, exits or hits exec_timeout.  ready_path
 *   stays buffered in both modes.
 *
 * Static mode (of-watchdog's http.FileServer(http.Dir(static_path))),
 * after the same limiter, no fprocess:
 *   last call    any method; a ".." segment (MHD has percent-decoded the
 *                path) is 404 before anything else; the path is opened
 *                one component at a time with openat(O_NOFOLLOW) from
 *                static_path, so no symlink is followed (404); a regular
 *                file is 200 from MHD_create_response_from_fd() (zero
 *                copy, HEAD without body) with Content-Length,
 *                Last-Modified, Content-Type by extension (Go's values,
 *                else application/octet-stream) and X-Duration-Seconds;
 *                Go's 301s: .../index.html -> "./", a directory without
 *                '/' -> "name/", a file with '/' -> "../name" (query
 *                kept); a directory serves its index.html, else 404.
 *   Differences from Go's FileServer: no directory listing (404); no
 *   symlinks at all, even inside static_path (Go follows any, out of the
 *   directory too); ".." is 404 (Go's ServeMux 301s to the cleaned path,
 *   which Clean keeps inside the root); no Range, If-Modified-Since/304,
 *   ETag or content sniffing; a missing static_path is 404 per request.
 *
 * Every function request, 429s included, is recorded in the metrics (the
 * instrumentation wraps the limiter in of-watchdog); /_/ paths are not.
 *
 * X-Timeout: a request header holding a Go duration ("2s", "500ms") or
 * integer seconds shortens exec_timeout for that request; it never
 * lengthens it (a value above exec_timeout, or any value when exec_timeout
 * is 0 = none, is ignored, as is a malformed one).  This is ours, from the
 * issue: of-watchdog's serializing runner only knows exec_timeout.
 *
 * /_/health and /_/ready are of-watchdog's (pkg/watchdog.go and
 * pkg/readiness.go, commit 67a6309): GET only (HEAD is 405 there too);
 * health is 200 "OK" while the lock file exists and we are not draining,
 * else 503; ready is 503 on the same test, then 429 at max_inflight, then
 * the function's own answer for a GET of ready_path when that is set, else
 * 200 with an empty body.  Neither is limited nor recorded in the metrics.
 * Other /_/ paths are 404.
 *
 * iroute mode (ours; of-watchdog's Go "inproc" mode in C): the handler of
 * ir_watchdog_opts runs on the connection's thread after the same limiter,
 * with the whole body (read as in serializing mode); its malloc()ed reply
 * goes to MHD without a copy.  No fork, no pipe.  A handler cannot be
 * killed: it gets its deadline (exec_timeout or X-Timeout) and one that
 * answers late is turned into a 504.  A negative return is a 500 with the
 * handler's error text.
 *
 * Hardening (none of it in of-watchdog; limits in wdconfig.h):
 *   - IROUTE_MAX_CONNECTIONS and IROUTE_MAX_CONNECTIONS_PER_IP are MHD's
 *     own limits: an extra connection is accepted and closed at once,
 *     before a thread is made for it.
 *   - Request deadline: read_timeout is Go's ReadTimeout, a bound on
 *     reading the whole request (head and body), not an idle timer that
 *     every trickled byte resets (MHD's connection timeout, which we also
 *     set to read_timeout, is only that).  Each connection is in a list
 *     with the instant its current request must be in: set when the
 *     connection opens and when a response completes (keep-alive), cleared
 *     when the last body byte is in.  A reaper thread sleeps until the
 *     earliest instant and shuts down (shutdown(2), never close(2): MHD
 *     owns the fd) the sockets past it; MHD then sees end-of-stream and
 *     cleans up.  The list is unlinked under the same lock in MHD's
 *     CLOSED notification, which MHD sends before it closes the fd, so a
 *     reused fd number is never shut down.
 *   - 431 for a request head over IROUTE_MAX_HEADER_BYTES (our check, with
 *     a text naming the variable; MHD's pool, 16 KiB larger, answers 431
 *     itself for anything that does not fit at all).
 *   - 413 for a body over IROUTE_MAX_BODY_BYTES: from Content-Length on
 *     the first call, before any body byte is read, and the connection is
 *     closed; a chunked body is counted as it arrives, its bytes dropped
 *     unbuffered once over the cap, and answered 413 at its end (MHD
 *     0.9.75 refuses a response in the middle of an upload), which the
 *     request deadline bounds.  fprocess never runs for such a request.
 *   - 400 for a request with more than one Content-Length header (even
 *     equal ones: an ambiguous length is the request-smuggling shape), on
 *     every path.
 *   - The process needs nothing writable but the lock file's directory
 *     (/tmp): tested as uid 65534 on a read-only root.
 *
 * SIGTERM/SIGINT (read from a signalfd by ir_watchdog_run()'s thread):
 * remove the lock file (health 503, ready 503), keep serving for
 * healthcheck_interval (0 = no wait; of-watchdog would wait forever),
 * MHD_quiesce_daemon() (no new connections), wait until no request is in
 * progress or write_timeout passed, stop.
 */
#include "watchdog.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "iroute/exec.h"
#include "iroute/log.h"
#include "iroute/metrics.h"
#include "sock.h"
#include "watchdog_int.h"

uint64_t wd_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * IR_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* ---- hardening: request deadlines ---- */

struct wd_conn *wd_conn_of(struct MHD_Connection *con)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/* Start (now + read_timeout) or stop (@on false) the clock of the request
 * this connection is reading. */
static void conn_deadline(struct wd *wd, struct wd_conn *c, bool on)
{
	uint64_t t = wd->cfg->read_timeout_ns;
	if (!c || !t)
		return;
	pthread_mutex_lock(&wd->conns_mu);
	c->deadline_ns = on ? wd_now_ns() + t : 0;
	pthread_mutex_unlock(&wd->conns_mu);
	/* No signal: every new deadline is later than the ones already
	 * armed, and the reaper never sleeps past read_timeout. */
}

static void notify_cb(void *cls, struct MHD_Connection *con, void **socket_context,
		      enum MHD_ConnectionNotificationCode toe)
{
	struct wd *wd = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		struct wd_conn *c = calloc(1, sizeof(*c));
		if (!c)
			return; /* no deadline for this one; MHD's idle timeout still holds */
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
		c->fd = ci ? ci->connect_fd : -1;
		ir_sock_peer_name(c->fd, c->peer, sizeof(c->peer));
		pthread_mutex_lock(&wd->conns_mu);
		c->next = wd->conns.next;
		c->prev = &wd->conns;
		c->next->prev = c;
		wd->conns.next = c;
		if (wd->cfg->read_timeout_ns)
			c->deadline_ns = wd_now_ns() + wd->cfg->read_timeout_ns;
		pthread_mutex_unlock(&wd->conns_mu);
		*socket_context = c;
		return;
	}
	struct wd_conn *c = *socket_context;
	if (!c)
		return;
	/* MHD reports CLOSED before it closes the socket, so under the lock
	 * the reaper can only ever shut down this connection's own socket. */
	pthread_mutex_lock(&wd->conns_mu);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	pthread_mutex_unlock(&wd->conns_mu);
	wd_proxy_conn_closed(c);
	free(c);
	*socket_context = NULL;
}

static void *reaper_main(void *arg)
{
	struct wd *wd = arg;
	uint64_t period = wd->cfg->read_timeout_ns;
	pthread_mutex_lock(&wd->conns_mu);
	while (!wd->reaper_stop) {
		uint64_t now = wd_now_ns(), next = now + period;
		for (struct wd_conn *c = wd->conns.next; c != &wd->conns; c = c->next) {
			if (!c->deadline_ns)
				continue;
			if (c->deadline_ns <= now) {
				ir_warn(WD_LOG,
					"closing connection from %s: request not read whole "
					"within read_timeout",
					c->peer);
				c->deadline_ns = 0;
				if (c->fd >= 0)
					shutdown(c->fd, SHUT_RDWR);
			} else if (c->deadline_ns < next) {
				next = c->deadline_ns;
			}
		}
		struct timespec ts = {.tv_sec = (time_t)(next / IR_NS_PER_SEC),
				      .tv_nsec = (long)(next % IR_NS_PER_SEC)};
		pthread_cond_timedwait(&wd->conns_cv, &wd->conns_mu, &ts);
	}
	pthread_mutex_unlock(&wd->conns_mu);
	return NULL;
}

static void *uri_log_cb(void *cls, const char *uri, struct MHD_Connection *con)
{
	struct wd *wd = cls;
	(void)con;
	/* MHD marks the request "client aware" when this is called, so
	 * completed_cb runs for it whatever happens next. */
	struct wd_req *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->uri = strdup(uri ? uri : "");
	r->start_ns = wd_now_ns();
	atomic_fetch_add(&wd->active, 1);
	return r;
}

static void completed_cb(void *cls, struct MHD_Connection *con, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct wd *wd = cls;
	struct wd_req *r = *con_cls;
	if (!r)
		return;
	if (r->counted) {
		atomic_fetch_sub(&wd->inflight, 1);
		ir_metrics_inflight_add(wd->metrics, -1);
	}
	if (r->preq)
		wd_proxy_req_done(r);
	/* Keep-alive: the clock of the next request starts now. */
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		conn_deadline(wd, wd_conn_of(con), true);
	atomic_fetch_sub(&wd->active, 1);
	free(r->uri);
	free(r->body);
	free(r);
	*con_cls = NULL;
}

enum MHD_Result wd_queue_text(struct MHD_Connection *con, unsigned int status, const char *text)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	enum MHD_Result ret = MHD_queue_response(con, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* of-watchdog's acceptingConnections and lock-file check, in one. */
static bool healthy(struct wd *wd)
{
	return !atomic_load(&wd->draining) && access(wd->lock_path, F_OK) == 0;
}

/* /_/health: GET only (HEAD too is 405, as in of-watchdog). */
static enum MHD_Result serve_health(struct wd *wd, struct MHD_Connection *con, const char *method)
{
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return wd_queue_text(con, MHD_HTTP_METHOD_NOT_ALLOWED, "");
	if (!healthy(wd))
		return wd_queue_text(con, MHD_HTTP_SERVICE_UNAVAILABLE, "");
	return wd_queue_text(con, MHD_HTTP_OK, "OK");
}

static bool over_limit(struct wd *wd)
{
	uint32_t max = wd->cfg->max_inflight;
	return max && (uint32_t)atomic_load(&wd->inflight) >= max;
}

/* ---- CGI environment ---- */

struct env_build {
	char *vars[WD_MAX_ENV + 1];
	size_t n;
	char *transfer_encoding;
};

static void env_add(struct env_build *e, char *kv)
{
	if (!kv)
		return;
	if (e->n >= WD_MAX_ENV) {
		free(kv);
		return;
	}
	e->vars[e->n++] = kv;
	e->vars[e->n] = NULL;
}

static void env_release(struct env_build *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->vars[i]);
	e->n = 0;
}

static char *kv_dup(const char *prefix, const char *key, const char *value)
{
	char *s = NULL;
	if (asprintf(&s, "%s%s=%s", prefix, key, value ? value : "") < 0)
		return NULL;
	return s;
}

/* Go's textproto.CanonicalMIMEHeaderKey then '-' -> '_': "x-call-id" ->
 * "X_Call_Id".  Keys with bytes outside the token set stay as given. */
static void canonical_key(const char *in, char *out, size_t len)
{
	bool token = true;
	for (const char *p = in; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", *p))
			token = false;
	size_t i = 0;
	bool upper = true;
	for (; in[i] && i + 1 < len; i++) {
		char c = in[i];
		if (token) {
			if (upper && c >= 'a' && c <= 'z')
				c = (char)(c - 'a' + 'A');
			else if (!upper && c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
			upper = c == '-';
		}
		out[i] = c == '-' ? '_' : c;
	}
	out[i] = '\0';
}

static enum MHD_Result header_cb(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *value)
{
	struct env_build *e = cls;
	(void)kind;
	/* Go moves Host out of the header map and Transfer-Encoding too. */
	if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
		return MHD_YES;
	if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		if (!e->transfer_encoding)
			e->transfer_encoding = kv_dup("Http_", "Transfer_Encoding", value);
		return MHD_YES;
	}
	char name[256];
	canonical_key(key, name, sizeof(name));
	char *kv = kv_dup("Http_", name, value);
	if (!kv)
		return MHD_YES;
	/* Go passes the first value of a repeated header. */
	size_t klen = strchr(kv, '=') - kv + 1;
	for (size_t i = 0; i < e->n; i++)
		if (strncmp(e->vars[i], kv, klen) == 0) {
			free(kv);
			return MHD_YES;
		}
	env_add(e, kv);
	return MHD_YES;
}

static void build_env(struct env_build *e, struct MHD_Connection *con, const char *method,
		      const char *url, const char *query)
{
	memset(e, 0, sizeof(*e));
	MHD_get_connection_values(con, MHD_HEADER_KIND, header_cb, e);
	env_add(e, kv_dup("Http_", "Method", method));
	if (*query)
		env_add(e, kv_dup("Http_", "Query", query));
	if (url && *url)
		env_add(e, kv_dup("Http_", "Path", url));
	if (e->transfer_encoding)
		env_add(e, e->transfer_encoding);
	e->transfer_encoding = NULL;
}

/* ---- the function handler ---- */

uint64_t wd_request_timeout(const struct ir_wd_config *cfg, struct MHD_Connection *con)
{
	uint64_t t = cfg->exec_timeout_ns, x;
	const char *v = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "X-Timeout");
	if (t && v && *v && ir_wd_duration_parse(v, &x) == 0 && x > 0 && x < t)
		t = x;
	return t;
}

void wd_add_passthrough(struct MHD_Connection *con, struct MHD_Response *resp)
{
	static const char *const pass[] = {"X-Call-Id", "X-Start-Time"};
	for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++) {
		const char *v = MHD_lookup_connection_value(con, MHD_HEADER_KIND, pass[i]);
		if (v && !MHD_get_response_header(resp, pass[i]))
			MHD_add_response_header(resp, pass[i], v);
	}
}

static void add_common_headers(struct wd *wd, struct MHD_Connection *con, struct MHD_Response *resp,
			       struct wd_req *r)
{
	char dur[64];
	snprintf(dur, sizeof(dur), "%f", (double)(wd_now_ns() - r->start_ns) / 1e9);
	MHD_add_response_header(resp, "X-Duration-Seconds", dur);
	wd_add_passthrough(con, resp);
	(void)wd;
}

enum MHD_Result wd_finish(struct wd *wd, struct MHD_Connection *con, struct wd_req *r,
			  const char *method, unsigned int status, struct MHD_Response *resp,
			  bool record)
{
	if (!resp)
		return MHD_NO;
	add_common_headers(wd, con, resp, r);
	enum MHD_Result ret = MHD_queue_response(con, status, resp);
	MHD_destroy_response(resp);
	r->responded = true;
	if (record)
		ir_metrics_observe(wd->metrics, method, (int)status,
				   (double)(wd_now_ns() - r->start_ns) / 1e9);
	return ret;
}

/* Run fprocess for this request.  @query is the raw query ("" = none);
 * @with_body passes the request body on stdin; @record counts it in the
 * metrics. */
static enum MHD_Result run_function(struct wd *wd, struct MHD_Connection *con, struct wd_req *r,
				    const char *method, const char *url, const char *query,
				    bool with_body, bool record)
{
	const struct ir_wd_config *cfg = wd->cfg;
	struct env_build env;
	build_env(&env, con, method, url, query);
	const char *call_id = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "X-Call-Id");
	struct ir_exec_req req = {
	    .argv = cfg->argv,
	    .env = env.vars,
	    .stdin_data = with_body ? r->body : NULL,
	    .stdin_len = with_body ? r->len : 0,
	    .timeout_ns = wd_request_timeout(cfg, con),
	    .prefix_logs = cfg->prefix_logs,
	    .call_id = cfg->log_callid ? call_id : NULL,
	    .log_buffer_size = cfg->log_buffer_size,
	};
	struct ir_exec_result res;
	ir_exec_run(&req, &res);
	env_release(&env);
	int status = ir_exec_http_status(&res);
	struct MHD_Response *resp;
	if (status == MHD_HTTP_OK) {
		/* Hand stdout over to MHD, which frees it with free(). */
		resp = MHD_create_response_from_buffer(res.out_len, res.out ? res.out : (void *)"",
						       res.out ? MHD_RESPMEM_MUST_FREE
							       : MHD_RESPMEM_PERSISTENT);
		if (resp)
			res.out = NULL;
	} else {
		ir_warn(WD_LOG, "%s %s: %s", method, url, res.error);
		resp = MHD_create_response_from_buffer(strlen(res.error), res.error,
						       MHD_RESPMEM_MUST_COPY);
	}
	ir_exec_result_release(&res);
	if (resp)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, cfg->content_type);
	return wd_finish(wd, con, r, method, (unsigned int)status, resp, record);
}

/* ---- iroute mode ---- */

const char *ir_wd_call_header(const struct ir_wd_call *call, const char *name)
{
	return MHD_lookup_connection_value(call->priv, MHD_HEADER_KIND, name);
}

/* A reply body borrowed until release(): MHD copies it out through a
 * content reader (into its send buffer, as for any response) and the free
 * callback gives it back. */
struct borrowed {
	const char *p;
	size_t len;
	void (*release)(void *arg);
	void *arg;
};

static ssize_t borrowed_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct borrowed *b = cls;
	if (pos >= b->len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	size_t n = b->len - (size_t)pos < max ? b->len - (size_t)pos : max;
	memcpy(buf, b->p + pos, n);
	return (ssize_t)n;
}

static void borrowed_free(void *cls)
{
	struct borrowed *b = cls;
	b->release(b->arg);
	free(b);
}

/* NULL when out of memory (the body is still the caller's to drop).  A
 * body up to 64 KiB is copied and given back at once: MHD then sends head
 * and body in one write, where a content reader costs a second one. */
static struct MHD_Response *borrowed_response(struct ir_wd_reply *rep)
{
	if (rep->len <= 64 * 1024) {
		struct MHD_Response *r = MHD_create_response_from_buffer(
		    rep->len, rep->body ? rep->body : (void *)"", MHD_RESPMEM_MUST_COPY);
		if (r) {
			rep->release(rep->release_arg);
			rep->release = NULL;
		}
		return r;
	}
	struct borrowed *b = malloc(sizeof(*b));
	if (!b)
		return NULL;
	*b = (struct borrowed){rep->body, rep->len, rep->release, rep->release_arg};
	struct MHD_Response *r =
	    MHD_create_response_from_callback(rep->len, 64 * 1024, borrowed_read, b, borrowed_free);
	if (!r)
		free(b);
	return r;
}

/* Give back a reply body that will not be sent. */
static void reply_drop(struct ir_wd_reply *rep)
{
	if (rep->release)
		rep->release(rep->release_arg);
	else
		free(rep->body);
	rep->body = NULL;
	rep->release = NULL;
}

/* The handler runs here, on the connection's thread, with the whole body
 * (read already, as in serializing mode): no fork, no pipe, no copy of
 * the body or the reply (MHD sends the handler's buffer and frees it). */
static enum MHD_Result serve_handler(struct wd *wd, struct MHD_Connection *con, struct wd_req *r,
				     const char *method, const char *url, const char *query)
{
	uint64_t t = wd_request_timeout(wd->cfg, con);
	struct ir_wd_call call = {
	    .method = method,
	    .path = url,
	    .query = query,
	    .body = r->body ? r->body : (void *)"",
	    .body_len = r->len,
	    .deadline_ns = t ? r->start_ns + t : 0,
	    .priv = con,
	};
	struct ir_wd_reply rep = {.status = MHD_HTTP_OK};
	int rc = wd->handler(wd->handler_arg, &call, &rep);
	unsigned int status;
	struct MHD_Response *resp;
	if (rc == 0 && call.deadline_ns && wd_now_ns() > call.deadline_ns) {
		char buf[40];
		ir_duration_format(t, buf, sizeof(buf));
		ir_warn(WD_LOG, "%s %s: handler answered after its %s timeout", method, url, buf);
		reply_drop(&rep);
		status = MHD_HTTP_GATEWAY_TIMEOUT;
		char msg[96];
		snprintf(msg, sizeof(msg), "handler exceeded its %s timeout\n", buf);
		resp = MHD_create_response_from_buffer(strlen(msg), msg, MHD_RESPMEM_MUST_COPY);
	} else if (rc == 0 && (rep.status < 100 || rep.status > 599)) {
		ir_warn(WD_LOG, "%s %s: handler returned status %d", method, url, rep.status);
		reply_drop(&rep);
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		resp = MHD_create_response_from_buffer(strlen("handler returned a bad status\n"),
						       "handler returned a bad status\n",
						       MHD_RESPMEM_PERSISTENT);
	} else if (rc == 0) {
		status = (unsigned int)rep.status;
		if (rep.release)
			resp = borrowed_response(&rep);
		else
			resp = MHD_create_response_from_buffer(
			    rep.len, rep.body ? rep.body : (void *)"",
			    rep.body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
		if (!resp) {
			reply_drop(&rep);
		} else {
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
						rep.content_type ? rep.content_type
								 : wd->cfg->content_type);
			for (size_t i = 0; i < IR_WD_MAX_HEADERS && rep.headers[i].name; i++)
				if (rep.headers[i].value)
					MHD_add_response_header(resp, rep.headers[i].name,
								rep.headers[i].value);
		}
	} else {
		reply_drop(&rep);
		rep.error[sizeof(rep.error) - 1] = '\0';
		char msg[300];
		snprintf(msg, sizeof(msg), "%s\n", rep.error[0] ? rep.error : strerror(-rc));
		ir_warn(WD_LOG, "%s %s: handler failed: %s", method, url, msg);
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		resp = MHD_create_response_from_buffer(strlen(msg), msg, MHD_RESPMEM_MUST_COPY);
	}
	return wd_finish(wd, con, r, method, status, resp, true);
}

/* ---- streaming mode ---- */

/* One streamed request: the helper thread runs fprocess and writes its
 * stdout into sv[1]; the connection thread reads sv[0] in the content
 * reader.  Owned by the MHD response once one is queued (stream_free()),
 * else by stream_function(). */
struct wd_stream {
	struct wd *wd;
	int sv[2]; /* socketpair: [0] read by MHD, [1] written by the thread */
	pthread_t thread;
	bool joined;
	struct env_build env;
	struct ir_exec_req req;
	struct ir_exec_result res;
	unsigned char *body; /* taken from the wd_req */
	uint64_t start_ns;
	uint64_t deadline_ns; /* 0 = none */
	char method[16];
	atomic_bool failed; /* set by the thread before it closes sv[1] */
};

/* on_stdout: blocks while the client reads slower than fprocess writes,
 * but never past exec_timeout (ir_exec_run() checks it only between
 * calls).  MSG_NOSIGNAL: a client gone (sv[0] closed) is EPIPE here. */
static int stream_chunk(const void *chunk, size_t len, void *arg)
{
	struct wd_stream *s = arg;
	const char *p = chunk;
	while (len) {
		int ms = -1;
		if (s->deadline_ns) {
			uint64_t now = wd_now_ns();
			if (now >= s->deadline_ns)
				return -ETIMEDOUT;
			ms = (int)((s->deadline_ns - now + 999999) / 1000000);
		}
		struct pollfd pfd = {.fd = s->sv[1], .events = POLLOUT};
		int pr = poll(&pfd, 1, ms);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			return pr == 0 ? -ETIMEDOUT : -errno;
		ssize_t n = send(s->sv[1], p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void *stream_thread(void *arg)
{
	struct wd_stream *s = arg;
	int rc = ir_exec_run(&s->req, &s->res);
	bool ok = rc == 0 && s->res.exited && s->res.exit_code == 0;
	if (!ok && s->res.out_total)
		ir_warn(WD_LOG, "%s: %s after %llu bytes were streamed", s->method, s->res.error,
			(unsigned long long)s->res.out_total);
	atomic_store(&s->failed, !ok);
	close(s->sv[1]);
	s->sv[1] = -1;
	return NULL;
}

static void stream_join(struct wd_stream *s)
{
	if (!s->joined) {
		pthread_join(s->thread, NULL);
		s->joined = true;
	}
}

/* MHD's free callback, and our own cleanup before a response exists.
 * Closing sv[0] first makes a thread blocked in stream_chunk() fail with
 * EPIPE, so fprocess is killed when the client went away mid-stream. */
static void stream_free(void *cls)
{
	struct wd_stream *s = cls;
	if (s->sv[0] >= 0)
		close(s->sv[0]);
	stream_join(s);
	ir_exec_result_release(&s->res);
	env_release(&s->env);
	free(s->body);
	free(s);
}

/* The streamed response's free callback: records the request (duration up
 * to the end of the stream, as of-watchdog's instrumentation does). */
static void stream_free_record(void *cls)
{
	struct wd_stream *s = cls;
	ir_metrics_observe(s->wd->metrics, s->method, MHD_HTTP_OK,
			   (double)(wd_now_ns() - s->start_ns) / 1e9);
	stream_free(s);
}

/* MHD's content reader; blocking is allowed with a thread per connection.
 * EOF after a failed run ends the chunked body without its last chunk, so
 * the client sees a truncated response, not a success. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct wd_stream *s = cls;
	(void)pos;
	for (;;) {
		ssize_t n = read(s->sv[0], buf, max);
		if (n > 0)
			return n;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		stream_join(s);
		return atomic_load(&s->failed) ? MHD_CONTENT_READER_END_WITH_ERROR
					       : MHD_CONTENT_READER_END_OF_STREAM;
	}
}

/* Streaming mode's last access call: start fprocess with the body read so
 * far, wait for its first stdout byte or its end, then either stream (200,
 * chunked) or, when it ended without output, answer from the buffered
 * table (so a start failure is 500 and an early timeout 504). */
static enum MHD_Result stream_function(struct wd *wd, struct MHD_Connection *con, struct wd_req *r,
				       const char *method, const char *url, const char *query)
{
	const struct ir_wd_config *cfg = wd->cfg;
	struct wd_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return MHD_NO;
	s->wd = wd;
	s->start_ns = r->start_ns;
	snprintf(s->method, sizeof(s->method), "%s", method);
	s->body = r->body;
	r->body = NULL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s->sv) != 0) {
		ir_warn(WD_LOG, "socketpair(): %s", strerror(errno));
		free(s->body);
		free(s);
		return wd_queue_text(con, MHD_HTTP_INTERNAL_SERVER_ERROR, "socketpair() failed\n");
	}
	build_env(&s->env, con, method, url, query);
	const char *call_id = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "X-Call-Id");
	uint64_t timeout = wd_request_timeout(cfg, con);
	s->deadline_ns = timeout ? wd_now_ns() + timeout : 0;
	s->req = (struct ir_exec_req){
	    .argv = cfg->argv,
	    .env = s->env.vars,
	    .stdin_data = s->body,
	    .stdin_len = r->len,
	    .on_stdout = stream_chunk,
	    .stdout_arg = s,
	    .timeout_ns = timeout,
	    .prefix_logs = cfg->prefix_logs,
	    .call_id = cfg->log_callid ? call_id : NULL,
	    .log_buffer_size = cfg->log_buffer_size,
	};
	int rc = pthread_create(&s->thread, NULL, stream_thread, s);
	if (rc) {
		s->joined = true;
		close(s->sv[1]);
		stream_free(s);
		ir_warn(WD_LOG, "pthread_create(): %s", strerror(rc));
		return wd_queue_text(con, MHD_HTTP_INTERNAL_SERVER_ERROR,
				     "pthread_create() failed\n");
	}
	struct pollfd pfd = {.fd = s->sv[0], .events = POLLIN};
	while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
		;
	char c;
	ssize_t n;
	while ((n = recv(s->sv[0], &c, 1, MSG_PEEK)) < 0 && errno == EINTR)
		;
	struct MHD_Response *resp;
	if (n <= 0) {
		/* Ended without output: the buffered table applies. */
		stream_join(s);
		int status = ir_exec_http_status(&s->res);
		const char *text = status == MHD_HTTP_OK ? "" : s->res.error;
		if (status != MHD_HTTP_OK)
			ir_warn(WD_LOG, "%s %s: %s", method, url, text);
		resp = MHD_create_response_from_buffer(strlen(text), (void *)text,
						       MHD_RESPMEM_MUST_COPY);
		stream_free(s);
		if (resp)
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
						cfg->content_type);
		return wd_finish(wd, con, r, method, (unsigned int)status, resp, true);
	}
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, stream_read, s,
						 stream_free_record);
	if (!resp) {
		stream_free(s);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, cfg->content_type);
	wd_add_passthrough(con, resp);
	enum MHD_Result ret = MHD_queue_response(con, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	r->responded = true;
	return ret;
}

/* ---- static mode ---- */

/* Go's mime table for the extensions a static site needs; the rest is
 * application/octet-stream (Go would sniff the content instead). */
static const char *static_type(const char *name)
{
	static const char *const types[][2] = {
	    {".html", "text/html; charset=utf-8"},
	    {".htm", "text/html; charset=utf-8"},
	    {".css", "text/css; charset=utf-8"},
	    {".js", "text/javascript; charset=utf-8"},
	    {".mjs", "text/javascript; charset=utf-8"},
	    {".json", "application/json"},
	    {".png", "image/png"},
	    {".jpg", "image/jpeg"},
	    {".jpeg", "image/jpeg"},
	    {".gif", "image/gif"},
	    {".svg", "image/svg+xml"},
	    {".ico", "image/x-icon"},
	    {".txt", "text/plain; charset=utf-8"},
	    {".wasm", "application/wasm"},
	    {".xml", "text/xml; charset=utf-8"},
	    {".pdf", "application/pdf"},
	    {".webp", "image/webp"},
	};
	const char *dot = strrchr(name, '.');
	if (dot && !strchr(dot, '/'))
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcasecmp(dot, types[i][0]) == 0)
				return types[i][1];
	return "application/octet-stream";
}

/* Open @url (MHD has percent-decoded it) under @root one component at a
 * time with O_NOFOLLOW, so neither a ".." nor a symlink can leave the
 * directory.  Returns an fd (regular file or directory) or -errno:
 * -ENOENT for a ".." segment, as Go's path.Clean keeps ".." inside the
 * root (there /../etc/passwd names root/etc/passwd, missing: 404). */
static int static_open(const char *root, const char *url)
{
	int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	const char *p = url;
	char seg[256];
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			return dfd;
		size_t n = strcspn(p, "/");
		if (n >= sizeof(seg) || (n == 2 && p[0] == '.' && p[1] == '.')) {
			close(dfd);
			return n >= sizeof(seg) ? -ENAMETOOLONG : -ENOENT;
		}
		memcpy(seg, p, n);
		seg[n] = '\0';
		p += n;
		if (n == 1 && seg[0] == '.')
			continue;
		/* O_NONBLOCK: a FIFO must not hang the connection. */
		int fd = openat(dfd, seg, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		int e = errno;
		close(dfd);
		if (fd < 0)
			return e == ELOOP ? -ENOENT : -e;
		struct stat st;
		if (fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
			close(fd);
			return -ENOENT;
		}
		if (S_ISREG(st.st_mode)) {
			while (*p == '/')
				p++;
			if (*p) { /* a file used as a directory */
				close(fd);
				return -ENOTDIR;
			}
			return fd;
		}
		dfd = fd;
	}
}

/* Go's localRedirect: 301 to a path relative to the request's. */
static enum MHD_Result static_redirect(struct wd *wd, struct MHD_Connection *con, struct wd_req *r,
				       const char *method, const char *to)
{
	const char *q = strchr(r->uri, '?');
	char *loc = NULL;
	if (asprintf(&loc, "%s%s", to, q ? q : "") < 0)
		return MHD_NO;
	struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
	if (resp)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc);
	free(loc);
	return wd_finish(wd, con, r, method, MHD_HTTP_MOVED_PERMANENTLY, resp, true);
}

static enum MHD_Result static_error(struct wd *wd, struct MHD_Connection *con, struct wd_req *r,
				    const char *method, unsigned int status, const char *text)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	if (resp)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					"text/plain; charset=utf-8");
	return wd_finish(wd, con, r, method, status, resp, true);
}

/* Static mode (of-watchdog's http.FileServer(http.Dir(static_path))). */
static enum MHD_Result serve_static(struct wd *wd, struct MHD_Connection *con, struct wd_req *r,
				    const char *method, const char *url)
{
	size_t ulen = strlen(url);
	const char *base = strrchr(url, '/');
	base = base ? base + 1 : url;
	/* ".." first, so that no answer, a redirect included, depends on
	 * what lies outside static_path. */
	for (const char *p = url; (p = strstr(p, "..")); p += 2)
		if ((p == url || p[-1] == '/') && (p[2] == '/' || !p[2]))
			return static_error(wd, con, r, method, MHD_HTTP_NOT_FOUND,
					    "404 page not found\n");
	if (strcmp(base, "index.html") == 0)
		return static_redirect(wd, con, r, method, "./");
	int fd = static_open(wd->cfg->static_path, url);
	if (fd == -ENOENT || fd == -ENOTDIR || fd == -ENAMETOOLONG)
		return static_error(wd, con, r, method, MHD_HTTP_NOT_FOUND, "404 page not found\n");
	if (fd == -EACCES || fd == -EPERM)
		return static_error(wd, con, r, method, MHD_HTTP_FORBIDDEN, "403 Forbidden\n");
	if (fd < 0) {
		ir_warn(WD_LOG, "static %s: %s", url, strerror(-fd));
		return static_error(wd, con, r, method, MHD_HTTP_INTERNAL_SERVER_ERROR,
				    "500 Internal Server Error\n");
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return static_error(wd, con, r, method, MHD_HTTP_INTERNAL_SERVER_ERROR,
				    "500 Internal Server Error\n");
	}
	const char *name = url;
	if (S_ISDIR(st.st_mode)) {
		if (ulen == 0 || url[ulen - 1] != '/') {
			close(fd);
			char *to = NULL;
			if (asprintf(&to, "%s/", *base ? base : ".") < 0)
				return MHD_NO;
			enum MHD_Result ret = static_redirect(wd, con, r, method, to);
			free(to);
			return ret;
		}
		int ifd = openat(fd, "index.html", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		close(fd);
		fd = ifd;
		if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
			if (fd >= 0)
				close(fd);
			/* No directory listings (Go would list). */
			return static_error(wd, con, r, method, MHD_HTTP_NOT_FOUND,
					    "404 page not found\n");
		}
		name = "index.html";
	} else if (ulen && url[ulen - 1] == '/') {
		close(fd);
		char *to = NULL;
		/* base is "" here: name the file from the path before the '/'. */
		size_t end = ulen - 1, start = end;
		while (start && url[start - 1] != '/')
			start--;
		if (asprintf(&to, "../%.*s", (int)(end - start), url + start) < 0)
			return MHD_NO;
		enum MHD_Result ret = static_redirect(wd, con, r, method, to);
		free(to);
		return ret;
	}
	struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
	if (!resp) {
		close(fd);
		return MHD_NO;
	}
	char lm[64];
	struct tm tm;
	if (gmtime_r(&st.st_mtime, &tm) &&
	    strftime(lm, sizeof(lm), "%a, %d %b %Y %H:%M:%S GMT", &tm))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, lm);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, static_type(name));
	return wd_finish(wd, con, r, method, MHD_HTTP_OK, resp, true);
}

/* /_/ready (pkg/readiness.go): GET only; 503 while draining or without
 * the lock file (also with suppress_lock, as there), 429 at max_inflight,
 * else ready_path's answer from the function itself (a GET with the
 * request's headers, neither limited nor recorded), else 200 with an
 * empty body. */
static enum MHD_Result serve_ready(struct wd *wd, struct MHD_Connection *con, struct wd_req *r)
{
	if (!healthy(wd))
		return wd_queue_text(con, MHD_HTTP_SERVICE_UNAVAILABLE, "");
	if (over_limit(wd))
		return wd_queue_text(con, MHD_HTTP_TOO_MANY_REQUESTS, "");
	if (*wd->cfg->ready_path && wd->cfg->mode == IR_WD_MODE_HTTP)
		return wd_proxy_ready(wd, con, r);
	if (*wd->cfg->ready_path && wd->cfg->argc && wd->cfg->mode != IR_WD_MODE_STATIC &&
	    wd->cfg->mode != IR_WD_MODE_IROUTE)
		return run_function(wd, con, r, MHD_HTTP_METHOD_GET, wd->cfg->ready_path, "", false,
				    false);
	return wd_queue_text(con, MHD_HTTP_OK, "");
}

static enum MHD_Result serve_function(struct wd *wd, struct MHD_Connection *con, struct wd_req *r,
				      const char *method, const char *url, const char *upload,
				      size_t *upload_size)
{
	if (!r->started) {
		r->started = true;
		/* Take a slot first, so that two racing requests cannot both
		 * pass a check of the count. */
		uint32_t max = wd->cfg->max_inflight;
		if (max && (uint32_t)atomic_fetch_add(&wd->inflight, 1) >= max) {
			atomic_fetch_sub(&wd->inflight, 1);
			/* faas-middleware's text (concurrency_limiter.go). */
			char msg[96];
			snprintf(msg, sizeof(msg),
				 "Concurrent request limit exceeded. Max concurrent requests: %u\n",
				 max);
			struct MHD_Response *resp = MHD_create_response_from_buffer(
			    strlen(msg), msg, MHD_RESPMEM_MUST_COPY);
			if (resp)
				MHD_add_response_header(resp, "X-OpenFaaS-Internal",
							"faas-middleware");
			return wd_finish(wd, con, r, method, MHD_HTTP_TOO_MANY_REQUESTS, resp,
					 true);
		}
		if (!max)
			atomic_fetch_add(&wd->inflight, 1);
		ir_metrics_inflight_add(wd->metrics, 1);
		r->counted = true;
		return MHD_YES;
	}
	if (r->responded) {
		*upload_size = 0; /* 429 queued: discard the body */
		return MHD_YES;
	}
	if (wd->cfg->mode == IR_WD_MODE_HTTP && !wd->cfg->buffer_http) {
		/* Streamed upstream piece by piece, then the answer. */
		size_t n = *upload_size;
		*upload_size = 0;
		return wd_proxy_request(wd, con, r, method, upload, n);
	}
	if (*upload_size) {
		size_t n = *upload_size;
		if (r->len + n > r->cap) {
			size_t cap = r->cap ? r->cap : 65536;
			while (cap < r->len + n)
				cap *= 2;
			unsigned char *p = realloc(r->body, cap);
			if (!p)
				return MHD_NO;
			r->body = p;
			r->cap = cap;
		}
		memcpy(r->body + r->len, upload, n);
		r->len += n;
		*upload_size = 0;
		return MHD_YES;
	}
	if (wd->cfg->mode == IR_WD_MODE_STATIC)
		return serve_static(wd, con, r, method, url);
	const char *q = strchr(r->uri, '?');
	if (wd->cfg->mode == IR_WD_MODE_STREAMING)
		return stream_function(wd, con, r, method, url, q ? q + 1 : "");
	if (wd->cfg->mode == IR_WD_MODE_IROUTE)
		return serve_handler(wd, con, r, method, url, q ? q + 1 : "");
	if (wd->cfg->mode == IR_WD_MODE_HTTP) /* buffer_http: the whole body is in r->body */
		return wd_proxy_request(wd, con, r, method, NULL, 0);
	return run_function(wd, con, r, method, url, q ? q + 1 : "", true, true);
}

/* ---- hardening: malformed and oversized requests ---- */

/* Answer @status with a one-line text and have MHD close the connection
 * after it (the rest of the request is never read). */
static enum MHD_Result reject(struct wd *wd, struct MHD_Connection *con, struct wd_req *r,
			      const char *method, bool record, unsigned int status, const char *fmt,
			      ...) __attribute__((format(printf, 7, 8)));
static enum MHD_Result reject(struct wd *wd, struct MHD_Connection *con, struct wd_req *r,
			      const char *method, bool record, unsigned int status, const char *fmt,
			      ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->started = true;
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(strlen(msg), msg, MHD_RESPMEM_MUST_COPY);
	if (resp) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					"text/plain; charset=utf-8");
	}
	return wd_finish(wd, con, r, method, status, resp, record);
}

static enum MHD_Result count_cb(void *cls, enum MHD_ValueKind kind, const char *key,
				const char *value)
{
	(void)kind;
	(void)value;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
		++*(unsigned *)cls;
	return MHD_YES;
}

/* First call of a request, before any byte of its body is read: 400 for
 * more than one Content-Length (the framing is ambiguous: the classic
 * request-smuggling shape), 413 when Content-Length is over the cap.
 * 431 for a head over IROUTE_MAX_HEADER_BYTES; MHD itself answers 431
 * (with its own HTML) for a head that does not even fit its
 * per-connection memory pool (the cap + 16 KiB) before we are called. */
static bool reject_request(struct wd *wd, struct MHD_Connection *con, struct wd_req *r,
			   const char *method, bool record, enum MHD_Result *ret)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(con, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	if (ci && ci->header_size > wd->cfg->max_header_bytes) {
		*ret = reject(wd, con, r, method, record, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE,
			      "request head of %zu bytes is over IROUTE_MAX_HEADER_BYTES (%zu "
			      "bytes)\n",
			      ci->header_size, wd->cfg->max_header_bytes);
		return true;
	}
	unsigned n = 0;
	MHD_get_connection_values(con, MHD_HEADER_KIND, count_cb, &n);
	if (n > 1) {
		*ret = reject(wd, con, r, method, record, MHD_HTTP_BAD_REQUEST,
			      "Content-Length given %u times\n", n);
		return true;
	}
	uint64_t cap = wd->cfg->max_body_bytes;
	const char *cl =
	    MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cap && cl) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(cl, &end, 10);
		if (!errno && end != cl && !*end && v > cap) {
			*ret = reject(wd, con, r, method, record, MHD_HTTP_CONTENT_TOO_LARGE,
				      "request body of %llu bytes is over IROUTE_MAX_BODY_BYTES "
				      "(%llu bytes)\n",
				      v, (unsigned long long)cap);
			return true;
		}
	}
	return false;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *con, const char *url,
				 const char *method, const char *version, const char *upload,
				 size_t *upload_size, void **con_cls)
{
	struct wd *wd = cls;
	struct wd_req *r = *con_cls;
	(void)version;
	if (!r)
		return MHD_NO; /* out of memory in uri_log_cb */
	bool fn = strncmp(url, "/_/", 3) != 0;
	if (!r->started) {
		enum MHD_Result ret;
		if (reject_request(wd, con, r, method, fn, &ret))
			return ret;
	} else if (*upload_size) {
		/* A chunked body over the cap: MHD cannot answer before the
		 * request is read (0.9.75 refuses a response mid-upload), so
		 * the rest is discarded unbuffered, bounded by read_timeout,
		 * and answered 413 at the end. */
		uint64_t cap = wd->cfg->max_body_bytes;
		r->body_seen += *upload_size;
		if (cap && r->body_seen > cap)
			r->too_large = true;
		if (r->too_large) {
			*upload_size = 0;
			return MHD_YES;
		}
	} else if (!r->received) {
		r->received = true; /* the whole request is in */
		conn_deadline(wd, wd_conn_of(con), false);
		if (r->too_large && !r->responded)
			return reject(wd, con, r, method, fn, MHD_HTTP_CONTENT_TOO_LARGE,
				      "request body over IROUTE_MAX_BODY_BYTES (%llu bytes)\n",
				      (unsigned long long)wd->cfg->max_body_bytes);
	}
	if (r->responded) {
		*upload_size = 0; /* answered early (400, 413, 429): discard the body */
		return MHD_YES;
	}
	if (fn)
		return serve_function(wd, con, r, method, url, upload, upload_size);
	if (!r->started) {
		r->started = true;
		return MHD_YES; /* answer once the (ignored) body is in */
	}
	if (*upload_size) {
		*upload_size = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/_/health") == 0)
		return serve_health(wd, con, method);
	if (strcmp(url, "/_/ready") == 0) {
		if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
			return wd_queue_text(con, MHD_HTTP_METHOD_NOT_ALLOWED, "");
		return serve_ready(wd, con, r);
	}
	return wd_queue_text(con, MHD_HTTP_NOT_FOUND, "404 page not found\n");
}

static enum MHD_Result metrics_cb(void *cls, struct MHD_Connection *con, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct wd *wd = cls;
	(void)version;
	(void)upload;
	if (!*con_cls) {
		*con_cls = (void *)1;
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/metrics") != 0)
		return wd_queue_text(con, MHD_HTTP_NOT_FOUND, "404 page not found\n");
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return wd_queue_text(con, MHD_HTTP_METHOD_NOT_ALLOWED, "");
	char *text;
	size_t len;
	if (ir_metrics_render(wd->metrics, &text, &len) != 0)
		return wd_queue_text(con, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; version=0.0.4; charset=utf-8");
	enum MHD_Result ret = MHD_queue_response(con, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* ---- lifecycle ---- */

static int write_lock(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0660);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / IR_NS_PER_SEC),
			      .tv_nsec = (long)(ns % IR_NS_PER_SEC)};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static struct MHD_Daemon *start_http(struct wd *wd, uint16_t port)
{
	const struct ir_wd_config *cfg = wd->cfg;
	unsigned int timeout_s = 0;
	if (cfg->read_timeout_ns)
		timeout_s =
		    (unsigned int)((cfg->read_timeout_ns + IR_NS_PER_SEC - 1) / IR_NS_PER_SEC);
	/* MHD keeps the request head in a per-connection pool and answers 431
	 * when it does not fit; the read buffer for the body comes from the
	 * same pool, hence the slack. */
	size_t pool = cfg->max_header_bytes + 16384;
	return MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
		MHD_USE_ITC,
	    port, NULL, NULL, access_cb, wd, MHD_OPTION_URI_LOG_CALLBACK, uri_log_cb, wd,
	    MHD_OPTION_NOTIFY_COMPLETED, completed_cb, wd, MHD_OPTION_NOTIFY_CONNECTION, notify_cb,
	    wd, MHD_OPTION_CONNECTION_TIMEOUT, timeout_s, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned int)cfg->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned int)cfg->max_connections_per_ip, MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
	    MHD_OPTION_END);
}

static int drain(struct wd *wd, int sfd)
{
	const struct ir_wd_config *cfg = wd->cfg;
	atomic_store(&wd->draining, true);
	if (wd->on_drain)
		wd->on_drain(wd->drain_arg);
	if (!cfg->suppress_lock && unlink(wd->lock_path) != 0 && errno != ENOENT)
		ir_warn(WD_LOG, "unlink \"%s\": %s", wd->lock_path, strerror(errno));
	char buf[40];
	ir_duration_format(cfg->healthcheck_interval_ns, buf, sizeof(buf));
	ir_info(WD_LOG, "SIGTERM: no new connections in %s", buf);
	sleep_ns(cfg->healthcheck_interval_ns);
	MHD_socket ls = MHD_quiesce_daemon(wd->http);
	if (ls != MHD_INVALID_SOCKET)
		close(ls);
	uint64_t deadline = wd_now_ns() + cfg->write_timeout_ns;
	while (atomic_load(&wd->active) > 0 && wd_now_ns() < deadline)
		sleep_ns(10 * 1000000ull);
	(void)sfd;
	if (atomic_load(&wd->active) > 0) {
		ir_warn(WD_LOG, "%d request(s) still running after write_timeout",
			atomic_load(&wd->active));
		return -ETIMEDOUT;
	}
	ir_info(WD_LOG, "drained: no request in flight; exiting");
	return 0;
}

void ir_watchdog_block_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int ir_watchdog_run(const struct ir_wd_config *cfg, const struct ir_watchdog_opts *opts, char *err,
		    size_t errlen)
{
	char dummy[1];
	if (!err) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	if (cfg->mode == IR_WD_MODE_IROUTE && !(opts && opts->handler)) {
		snprintf(err, errlen,
			 "mode=iroute runs a C handler linked into the binary (the c-func template "
			 "builds one); iroute-watchdog alone has none: use mode=http, streaming, "
			 "serializing or static");
		return -EINVAL;
	}
	struct wd wd = {.cfg = cfg, .lock_path = WD_LOCK_DEFAULT};
	if (opts) {
		wd.handler = opts->handler;
		wd.handler_arg = opts->handler_arg;
		wd.on_drain = opts->on_drain;
		wd.drain_arg = opts->drain_arg;
	}
	wd.conns.next = wd.conns.prev = &wd.conns;
	pthread_mutex_init(&wd.conns_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wd.conns_cv, &ca);
	pthread_condattr_destroy(&ca);
	if (opts && opts->lock_path)
		wd.lock_path = opts->lock_path;
	uint16_t mport = opts && opts->metrics_port ? opts->metrics_port : cfg->metrics_port;

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	int rc;
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "signalfd(): %s", strerror(errno));
		return rc;
	}
	if (cfg->mode == IR_WD_MODE_HTTP) {
		rc = wd_proxy_start(&wd, err, errlen);
		if (rc)
			goto out_close_sfd;
	}
	rc = ir_metrics_new(&wd.metrics);
	if (rc) {
		snprintf(err, errlen, "metrics: %s", strerror(-rc));
		goto out_close_sfd;
	}
	wd.mhttp = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, mport, NULL,
				    NULL, metrics_cb, &wd, MHD_OPTION_END);
	if (!wd.mhttp) {
		rc = -EADDRINUSE;
		snprintf(err, errlen, "metrics listener on port %u failed", mport);
		goto out_free_metrics;
	}
	if (cfg->read_timeout_ns) {
		rc = -pthread_create(&wd.reaper, NULL, reaper_main, &wd);
		if (rc) {
			snprintf(err, errlen, "pthread_create(): %s", strerror(-rc));
			goto out_stop_metrics;
		}
		wd.reaper_started = true;
	}
	wd.http = start_http(&wd, cfg->port);
	if (!wd.http) {
		rc = -EADDRINUSE;
		snprintf(err, errlen, "listener on port %u failed", cfg->port);
		goto out_stop_reaper;
	}
	ir_info(WD_LOG, "listening on port %u, metrics on port %u", cfg->port, mport);
	/* The lock file (health 200) once the function can answer: at once,
	 * or in http mode once upstream_url accepts connections. */
	bool ready = false;
	uint64_t t0 = wd_now_ns();
	int efd = wd_proxy_exit_fd(&wd);
	for (;;) {
		if (!ready && (cfg->mode != IR_WD_MODE_HTTP || wd_proxy_upstream_up(&wd))) {
			ready = true;
			if (cfg->mode == IR_WD_MODE_HTTP)
				ir_info(WD_LOG, "upstream %s is up after %.1f ms",
					cfg->upstream_url, (double)(wd_now_ns() - t0) / 1e6);
			if (!cfg->suppress_lock) {
				rc = write_lock(wd.lock_path);
				if (rc) {
					snprintf(err, errlen, "lock file \"%s\": %s", wd.lock_path,
						 strerror(-rc));
					goto out_stop_http;
				}
				ir_info(WD_LOG, "wrote lock file at %s", wd.lock_path);
			}
		}
		struct pollfd pf[2] = {{.fd = sfd, .events = POLLIN},
				       {.fd = efd, .events = POLLIN}};
		int n = poll(pf, efd >= 0 ? 2 : 1, ready ? -1 : 2);
		if (n < 0 && errno != EINTR) {
			rc = -errno;
			snprintf(err, errlen, "poll(): %s", strerror(errno));
			goto out_stop_http;
		}
		if (n > 0 && efd >= 0 && pf[1].revents) {
			char how[64];
			wd_proxy_exit_status(&wd, how, sizeof(how));
			snprintf(err, errlen, "fprocess exited (%s): exiting, as of-watchdog does",
				 how);
			/* A response the function sent before it exited still
			 * reaches its client: up to 1 s for requests in flight
			 * (the upstream is gone, so they end quickly). */
			uint64_t grace = wd_now_ns() + 1000000000ull;
			while (atomic_load(&wd.active) > 0 && wd_now_ns() < grace)
				sleep_ns(5 * 1000000ull);
			rc = -ECHILD;
			goto out_stop_http;
		}
		if (n > 0 && pf[0].revents) {
			struct signalfd_siginfo si;
			ssize_t r = read(sfd, &si, sizeof(si));
			if (r == (ssize_t)sizeof(si))
				break;
			if (r < 0 && errno != EINTR && errno != EAGAIN) {
				rc = -errno;
				snprintf(err, errlen, "read(signalfd): %s", strerror(errno));
				goto out_stop_http;
			}
		}
	}
	rc = drain(&wd, sfd);
	/* The function's server goes last: requests in flight needed it. */
	wd_proxy_stop(&wd, rc == -ETIMEDOUT ? 0 : cfg->write_timeout_ns);
	if (rc == -ETIMEDOUT) {
		/* Stopping the daemon would join the busy connection threads. */
		snprintf(err, errlen, "requests still running after write_timeout");
		close(sfd);
		return rc;
	}
out_stop_http:
	MHD_stop_daemon(wd.http);
out_stop_reaper:
	if (wd.reaper_started) {
		pthread_mutex_lock(&wd.conns_mu);
		wd.reaper_stop = true;
		pthread_cond_signal(&wd.conns_cv);
		pthread_mutex_unlock(&wd.conns_mu);
		pthread_join(wd.reaper, NULL);
	}
	pthread_cond_destroy(&wd.conns_cv);
	pthread_mutex_destroy(&wd.conns_mu);
out_stop_metrics:
	MHD_stop_daemon(wd.mhttp);
out_free_metrics:
	ir_metrics_free(wd.metrics);
out_close_sfd:
	wd_proxy_free(&wd);
	close(sfd);
	return rc;
}
