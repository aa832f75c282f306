/* ccclient.c - the coordinator client: local tables parsed and
 * reference-counted, registration, the long-poll thread, the mirror
 * fallback (see iroute/ccclient.h for the design).
 *
 * Threads: the caller of ir_ccc_start() registers (and applies the first
 * table) before the client thread exists; from then on only the client
 * thread applies tables and touches pconn.  c->mu guards the kept tables,
 * the registration (instance id, slice), last_error and poll_fd; req_mu
 * guards rconn, the connection of push_stats/suspect/leave.  Stopping:
 * the flag, then shutdown() of the socket the client thread may be
 * blocked on (published in poll_fd under c->mu, and cleared there before
 * it is closed, so a reused descriptor number is never shut down), then
 * the eventfd that every backoff and connect waits on.
 */
#include "iroute/ccclient.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cctable.h"
#include "httpc.h"
#include "iroute/log.h"
#include "iroute/workflow.h"
#include "mirror.h"
#include "rtable.h"

#define LOG "ccc"
#define BODY_MAX (64u << 20)	     /* an answer; a table of 100k instances fits */
#define POLL_MARGIN_MS 1000	     /* a long-poll's deadline beyond poll_ms */
#define CALL_MS 2000		     /* stats, leave, a background registration */
#define SUSPECT_MS 3000
#define BOOT_ID "/proc/sys/kernel/random/boot_id"

/* ---- the client ---- */

struct ir_ccc {
	/* options, copied; read-only after start */
	struct ir_url url;
	char *url_text, *token, *function, *http_addr, *tcp_addr, *ipc_path;
	char *workflow, *zk_hosts, *zk_cred, *mirror_file;
	bool entry;
	char node[65];
	uint32_t transports, capacity, register_timeout_ms;
	void (*on_table)(void *arg, struct ir_table *t);
	void *arg;

	int evfd; /* readable once stopping */
	atomic_bool stopping;
	pthread_t thr;
	bool thr_running;
	struct ir_httpc *pconn; /* the client thread's (start's before it runs) */
	uint64_t rng;		/* jitter; client thread (start's before it runs) */

	pthread_mutex_t mu;
	int poll_fd;			    /* pconn's socket, -1 when none */
	struct ir_table *keep[IR_CCC_KEEP]; /* ascending epochs */
	size_t nkeep;
	bool registered;
	char instance[80];
	uint32_t lease_ms, poll_ms;
	char *slice;
	char last_error[256];

	pthread_mutex_t req_mu;
	struct ir_httpc *rconn;
};

struct resp {
	int status;
	bool keep_alive;
	char *body; /* NUL-terminated, malloc'ed (NULL when empty) */
	size_t len;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int ms_until(uint64_t deadline_ns)
{
	uint64_t now = now_ns();
	if (now >= deadline_ns)
		return 0;
	uint64_t ms = (deadline_ns - now + 999999) / 1000000;
	return ms > 3600000 ? 3600000 : (int)ms;
}

/* Wait @ms or until stopping; false when stopping. */
static bool nap(struct ir_ccc *c, unsigned ms)
{
	struct pollfd p = {.fd = c->evfd, .events = POLLIN};
	(void)poll(&p, 1, (int)ms); /* EINTR: a shorter nap */
	return !atomic_load(&c->stopping);
}

/* Exponential backoff from 50 ms doubling to @cap_ms after @fails
 * failures, uniform in [d/2, d] (jitter: a restarted coordinator is not
 * hit by every instance in the same millisecond). */
static unsigned backoff(struct ir_ccc *c, unsigned fails, unsigned cap_ms)
{
	unsigned d = 50;
	while (fails-- > 0 && d < cap_ms)
		d *= 2;
	if (d > cap_ms)
		d = cap_ms;
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return d / 2 + (unsigned)(c->rng % (d / 2 + 1));
}

static void set_error(struct ir_ccc *c, const char *msg)
{
	pthread_mutex_lock(&c->mu);
	bool same = strcmp(c->last_error, msg) == 0;
	snprintf(c->last_error, sizeof(c->last_error), "%s", msg);
	pthread_mutex_unlock(&c->mu);
	if (!same)
		ir_warn(LOG, "%s", msg);
}

/* ---- connections ---- */

static int connect_wait(struct ir_ccc *c, int fd, const struct addrinfo *ai, uint64_t deadline_ns,
			bool cancel)
{
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -errno;
	for (;;) {
		int ms = ms_until(deadline_ns);
		if (ms == 0)
			return -ETIMEDOUT;
		struct pollfd p[2] = {{.fd = fd, .events = POLLOUT},
				      {.fd = c->evfd, .events = POLLIN}};
		int r = poll(p, cancel ? 2 : 1, ms);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0 && cancel && p[1].revents)
			return -ECANCELED;
		if (r > 0 && p[0].revents) {
			int e = 0;
			socklen_t l = sizeof(e);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0)
				return -errno;
			return -e;
		}
	}
}

/* A connected socket to the coordinator, as ir_httpc_connect() but the
 * wait for the connection also ends when stopping (@cancel). */
static int dial(struct ir_ccc *c, uint64_t deadline_ns, bool cancel)
{
	char port[8];
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	snprintf(port, sizeof(port), "%u", c->url.port);
	if (getaddrinfo(c->url.host, port, &hints, &res) != 0)
		return -EHOSTUNREACH;
	int rc = -ECONNREFUSED, fd = -1;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		rc = connect_wait(c, fd, ai, deadline_ns, cancel);
		if (rc == 0)
			break;
		close(fd);
		fd = -1;
		if (rc == -ETIMEDOUT || rc == -ECANCELED)
			break;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return rc;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Close *@h; @track: it is pconn, whose socket stop may shut down. */
static void drop(struct ir_ccc *c, struct ir_httpc **h, bool track)
{
	if (!*h)
		return;
	if (track) {
		pthread_mutex_lock(&c->mu);
		c->poll_fd = -1;
		pthread_mutex_unlock(&c->mu);
	}
	ir_httpc_close(*h);
	*h = NULL;
}

static int open_conn(struct ir_ccc *c, struct ir_httpc **h, bool track, uint64_t deadline_ns)
{
	int fd = dial(c, deadline_ns, track);
	if (fd < 0)
		return fd;
	int rc = ir_httpc_open(h, fd);
	if (rc || !track)
		return rc;
	pthread_mutex_lock(&c->mu);
	bool stop = atomic_load(&c->stopping);
	if (!stop)
		c->poll_fd = fd;
	pthread_mutex_unlock(&c->mu);
	if (stop) {
		ir_httpc_close(*h);
		*h = NULL;
		return -ECANCELED;
	}
	return 0;
}

static int read_all(struct ir_httpc *h, struct resp *out)
{
	size_t cap = 0;
	for (;;) {
		if (cap - out->len < 4096) {
			cap = cap ? cap * 2 : 16384;
			if (cap > BODY_MAX + 1)
				return -E2BIG;
			char *p = realloc(out->body, cap);
			if (!p)
				return -ENOMEM;
			out->body = p;
		}
		ssize_t n = ir_httpc_read_body(h, out->body + out->len, cap - out->len - 1);
		if (n < 0)
			return (int)n;
		if (n == 0)
			break;
		out->len += (size_t)n;
	}
	out->body[out->len] = '\0';
	return 0;
}

static int exchange_once(struct ir_ccc *c, struct ir_httpc *h, const char *method, const char *path,
			 const char *body, uint64_t deadline_ns, struct resp *out)
{
	bool v6 = strchr(c->url.host, ':') != NULL;
	size_t cap =
	    strlen(c->url.prefix) + strlen(path) + strlen(c->url.host) + strlen(c->token) + 256;
	char *head = malloc(cap);
	if (!head)
		return -ENOMEM;
	int n = snprintf(head, cap,
			 "%s %s%s HTTP/1.1\r\nHost: %s%s%s:%u\r\nAuthorization: Bearer %s\r\n"
			 "Accept: application/json\r\n%s\r\n",
			 method, c->url.prefix, path, v6 ? "[" : "", c->url.host, v6 ? "]" : "",
			 c->url.port, c->token, body ? "Content-Type: application/json\r\n" : "");
	ir_httpc_set_deadline(h, deadline_ns);
	size_t blen = body ? strlen(body) : 0;
	int rc = ir_httpc_send_head(h, head, (size_t)n, body ? (int64_t)blen : IR_HTTPC_NO_BODY);
	free(head);
	if (!rc && body)
		rc = ir_httpc_send_body(h, body, blen);
	if (!rc)
		rc = ir_httpc_end_body(h);
	struct ir_httpc_resp r;
	if (!rc)
		rc = ir_httpc_read_head(h, false, &r);
	if (rc)
		return rc;
	out->status = r.status;
	out->keep_alive = r.keep_alive;
	return read_all(h, out);
}

static void resp_free(struct resp *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* One request on *@h (connecting when needed; closed after an error or
 * when the answer was not keep-alive).  A kept-alive connection that the
 * peer closed while idle is retried once on a fresh one.  0 with *@out
 * filled (resp_free() it), or -errno. */
static int exchange(struct ir_ccc *c, struct ir_httpc **h, bool track, const char *method,
		    const char *path, const char *body, uint64_t deadline_ns, struct resp *out)
{
	memset(out, 0, sizeof(*out));
	for (int attempt = 0;; attempt++) {
		if (*h && !ir_httpc_idle_ok(*h))
			drop(c, h, track);
		bool reused = *h != NULL;
		int rc = reused ? 0 : open_conn(c, h, track, deadline_ns);
		if (rc)
			return rc;
		rc = exchange_once(c, *h, method, path, body, deadline_ns, out);
		if (!rc && !out->keep_alive)
			drop(c, h, track);
		if (!rc)
			return 0;
		drop(c, h, track);
		resp_free(out);
		if (!reused || attempt || (rc != -ECONNRESET && rc != -EPIPE))
			return rc;
	}
}

/* The coordinator's {"error": ...} text, else "HTTP <status>". */
static void answer_error(const struct resp *r, char *buf, size_t cap)
{
	cJSON *o = r->body ? cJSON_ParseWithLength(r->body, r->len) : NULL;
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
	if (cJSON_IsString(e))
		snprintf(buf, cap, "%s", e->valuestring);
	else
		snprintf(buf, cap, "HTTP %d", r->status);
	cJSON_Delete(o);
}

/* ---- tables kept ---- */

/* Make @t (taken) the newest table when its epoch is above the newest,
 * and tell on_table; else drop it. */
static void apply(struct ir_ccc *c, struct ir_table *t)
{
	struct ir_table *old = NULL;
	pthread_mutex_lock(&c->mu);
	if (c->nkeep && t->epoch <= c->keep[c->nkeep - 1]->epoch) {
		pthread_mutex_unlock(&c->mu);
		ir_table_put(t);
		return;
	}
	if (c->nkeep == IR_CCC_KEEP) {
		old = c->keep[0];
		memmove(&c->keep[0], &c->keep[1], (IR_CCC_KEEP - 1) * sizeof(c->keep[0]));
		c->nkeep--;
	}
	c->keep[c->nkeep++] = t;
	ir_table_get(t); /* for the callback */
	pthread_mutex_unlock(&c->mu);
	ir_table_put(old);
	ir_debug(LOG, "epoch %llu applied", (unsigned long long)t->epoch);
	if (c->on_table)
		c->on_table(c->arg, t);
	ir_table_put(t);
}

struct ir_table *ir_ccc_table(struct ir_ccc *c, uint64_t epoch)
{
	struct ir_table *t = NULL;
	pthread_mutex_lock(&c->mu);
	if (c->nkeep) {
		t = c->keep[c->nkeep - 1];
		if (epoch)
			for (size_t i = c->nkeep; i-- > 0;)
				if (c->keep[i]->epoch <= epoch) {
					t = c->keep[i];
					break;
				}
		ir_table_get(t);
	}
	pthread_mutex_unlock(&c->mu);
	return t;
}

uint64_t ir_ccc_epoch(struct ir_ccc *c)
{
	pthread_mutex_lock(&c->mu);
	uint64_t e = c->nkeep ? c->keep[c->nkeep - 1]->epoch : 0;
	pthread_mutex_unlock(&c->mu);
	return e;
}

/* Whether @t is this instance's table: its role or function, and its
 * workflow when we were told the name; else -EPROTO with why in @why. */
static int table_mine(const struct ir_ccc *c, const struct ir_table *t, char *why, size_t cap)
{
	if (c->entry && !t->entry_role)
		return snprintf(why, cap, "the table is function \"%s\"'s, not the entry role's",
				t->function),
		       -EPROTO;
	if (!c->entry && strcmp(t->function, c->function) != 0)
		return snprintf(why, cap, "the table is %s%s%s's, not function \"%s\"'s",
				t->entry_role ? "the entry role" : "function \"", t->function,
				t->entry_role ? "" : "\"", c->function),
		       -EPROTO;
	if (c->workflow && strcmp(t->workflow, c->workflow) != 0)
		return snprintf(why, cap, "the table is workflow \"%s\"'s, not \"%s\"'s",
				t->workflow, c->workflow),
		       -EPROTO;
	return 0;
}

/* ---- registration ---- */

static char *register_body(struct ir_ccc *c, uint64_t seen)
{
	static const char *const tnames[] = {"ipc", "tcp", "rdma"};
	cJSON *o = cJSON_CreateObject(), *a = cJSON_CreateObject(), *t = cJSON_CreateArray();
	char *s = NULL;
	if (!o || !a || !t)
		goto out;
	if (c->entry)
		cJSON_AddStringToObject(o, "role", "entry");
	else
		cJSON_AddStringToObject(o, "function", c->function);
	cJSON_AddStringToObject(o, "node", c->node);
	if (c->http_addr)
		cJSON_AddStringToObject(a, "http", c->http_addr);
	if (c->tcp_addr)
		cJSON_AddStringToObject(a, "tcp", c->tcp_addr);
	if (c->ipc_path)
		cJSON_AddStringToObject(a, "ipc", c->ipc_path);
	for (unsigned k = 0; k < 3; k++)
		if (c->transports & (1u << k))
			cJSON_AddItemToArray(t, cJSON_CreateString(tnames[k]));
	cJSON_AddItemToObject(o, "addresses", a);
	cJSON_AddItemToObject(o, "transports", t);
	a = t = NULL;
	cJSON_AddNumberToObject(o, "capacity", c->capacity);
	if (seen)
		cJSON_AddNumberToObject(o, "epoch", (double)seen);
	s = cJSON_PrintUnformatted(o);
out:
	cJSON_Delete(o);
	cJSON_Delete(a);
	cJSON_Delete(t);
	return s;
}

static bool id_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || n >= 80)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
		    !(s[i] >= '0' && s[i] <= '9') && !strchr("-._~", s[i]))
			return false;
	return true;
}

/* The fields of a register answer @o: 0, -ENOMEM, or -EPROTO with why. */
static int answer_fields(const struct ir_ccc *c, const cJSON *o, uint64_t *lease, uint64_t *poll_ms,
			 char **slice, struct ir_table **t, char *why, size_t cap)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "instance");
	const cJSON *sl = cJSON_GetObjectItemCaseSensitive(o, "slice");
	const cJSON *tb = cJSON_GetObjectItemCaseSensitive(o, "table");
	if (!cJSON_IsObject(o))
		return snprintf(why, cap, "not a JSON object"), -EPROTO;
	if (!cJSON_IsString(id) || !id_ok(id->valuestring))
		return snprintf(why, cap, "\"instance\" is not an id of [A-Za-z0-9._~-]"), -EPROTO;
	if (ir_json_get_int(o, "", "lease_ms", 1, 86400000, true, 0, lease, why, cap) ||
	    ir_json_get_int(o, "", "poll_ms", 1, 86400000, true, 0, poll_ms, why, cap))
		return -EPROTO;
	if (sl && !cJSON_IsNull(sl) && !cJSON_IsObject(sl))
		return snprintf(why, cap, "\"slice\" is not an object"), -EPROTO;
	if (!tb)
		return snprintf(why, cap, "\"table\" is missing"), -EPROTO;
	char *text = cJSON_PrintUnformatted(tb);
	if (!text)
		return -ENOMEM;
	int rc = ir_table_parse_obj(tb, text, strlen(text), t, why, cap); /* takes text */
	if (!rc && (rc = table_mine(c, *t, why, cap)) != 0) {
		ir_table_put(*t);
		*t = NULL;
	}
	if (!rc && cJSON_IsObject(sl) && !(*slice = cJSON_PrintUnformatted(sl))) {
		ir_table_put(*t);
		*t = NULL;
		rc = -ENOMEM;
	}
	return rc == -EINVAL ? -EPROTO : rc;
}

/* The 200 answer of /v1/register: take the registration, apply the table. */
static int register_answer(struct ir_ccc *c, const struct resp *r, char *err, size_t errlen)
{
	char why[256] = "";
	cJSON *o = cJSON_ParseWithLength(r->body ? r->body : "", r->len);
	uint64_t lease = 0, poll_ms = 0;
	struct ir_table *t = NULL;
	char *slice = NULL;
	int rc = answer_fields(c, o, &lease, &poll_ms, &slice, &t, why, sizeof(why));
	if (rc) {
		cJSON_Delete(o);
		if (rc == -EPROTO)
			snprintf(err, errlen, "%s: register answer: %s", c->url_text, why);
		return rc;
	}
	const char *id = cJSON_GetObjectItemCaseSensitive(o, "instance")->valuestring;
	pthread_mutex_lock(&c->mu);
	snprintf(c->instance, sizeof(c->instance), "%s", id);
	c->lease_ms = (uint32_t)lease;
	c->poll_ms = (uint32_t)poll_ms;
	if (slice) {
		free(c->slice);
		c->slice = slice;
	}
	c->registered = true;
	c->last_error[0] = '\0';
	pthread_mutex_unlock(&c->mu);
	ir_info(LOG, "registered as %s (epoch %llu)", id, (unsigned long long)t->epoch);
	cJSON_Delete(o);
	apply(c, t);
	return 0;
}

/* One registration attempt on pconn.  0 (registered, table applied);
 * -EAGAIN when worth retrying (no connection, a timeout, 5xx), with the
 * reason in @err; -EACCES / -EINVAL for a refusal (the coordinator's
 * text); -EPROTO, -ENOMEM, -ECANCELED (stopping). */
static int try_register(struct ir_ccc *c, uint64_t deadline_ns, char *err, size_t errlen)
{
	char *body = register_body(c, ir_ccc_epoch(c));
	if (!body)
		return -ENOMEM;
	struct resp r;
	int rc = exchange(c, &c->pconn, true, "POST", "/v1/register", body, deadline_ns, &r);
	free(body);
	if (rc == -ECANCELED || rc == -ENOMEM)
		return rc;
	if (rc) {
		snprintf(err, errlen, "%s: POST /v1/register: %s", c->url_text, strerror(-rc));
		return -EAGAIN;
	}
	char why[512];
	if (r.status != 200) {
		answer_error(&r, why, sizeof(why));
		snprintf(err, errlen, "%s: POST /v1/register: %d: %s", c->url_text, r.status, why);
		rc = r.status >= 500 || r.status == 408 || r.status == 429 ? -EAGAIN
		     : r.status == 401 || r.status == 403		   ? -EACCES
									   : -EINVAL;
	} else
		rc = register_answer(c, &r, err, errlen);
	resp_free(&r);
	return rc;
}

/* ---- the mirror fallback ---- */

/* This instance's local table from snapshot @s, built the coordinator's
 * way (ir_cc_table_json()). */
static int table_from_snap(struct ir_ccc *c, const struct ir_mirror_snap *s, struct ir_table **t,
			   char *err, size_t errlen)
{
	struct ir_workflow wf;
	char why[512];
	int rc = ir_workflow_parse(s->workflow, strlen(s->workflow), NULL, &wf, why, sizeof(why));
	if (rc)
		return rc == -ENOMEM ? rc : (ir_errf(err, errlen, "mirror: %s", why), -EPROTO);
	int fn = c->entry ? -1 : ir_workflow_find(&wf, c->function);
	const char **lists = calloc(wf.nfns, sizeof(*lists));
	char *text = NULL, *slice = NULL;
	size_t len = 0;
	if (c->workflow && strcmp(c->workflow, wf.name) != 0)
		rc = ir_errf(err, errlen, "mirror: holds workflow \"%s\", not \"%s\"", wf.name,
			  c->workflow);
	else if (!c->entry && fn < 0)
		rc = ir_errf(err, errlen, "mirror: function \"%s\" is not in workflow \"%s\"",
			  c->function, wf.name);
	else if (!lists)
		rc = -ENOMEM;
	if (rc)
		goto out;
	for (size_t i = 0; i < s->nfns; i++) {
		int k = ir_workflow_find(&wf, s->fns[i].name);
		if (k >= 0)
			lists[k] = s->fns[i].instances;
	}
	text = ir_cc_table_json(&wf, fn, s->epoch, lists, s->entries, &len);
	slice = fn >= 0 ? ir_workflow_slice_json(&wf, c->function) : ir_workflow_to_json(&wf);
	if (!text || !slice) {
		rc = -ENOMEM;
		goto out;
	}
	rc = ir_table_parse(text, len, t, why, sizeof(why));
	if (rc == -EINVAL)
		rc =
		    (ir_errf(err, errlen, "mirror: epoch %llu: %s", (unsigned long long)s->epoch, why),
		     -EPROTO);
	if (!rc) {
		pthread_mutex_lock(&c->mu);
		free(c->slice);
		c->slice = slice;
		slice = NULL;
		pthread_mutex_unlock(&c->mu);
	}
out:
	free(text);
	free(slice);
	free(lists);
	ir_workflow_free(&wf);
	return rc;
}

static int fallback(struct ir_ccc *c, char *err, size_t errlen)
{
	struct ir_mirror *m = NULL;
	char cred[512];
	int rc = 0;
	if (c->zk_hosts) {
		const char *cr = c->zk_cred;
		if (!cr && (rc = ir_zk_cred_load("reader", cred, sizeof(cred), err, errlen)) > 0) {
			cr = cred;
			rc = 0;
		}
		struct ir_zk_opts zo = {.hosts = c->zk_hosts, .cred = cr, .writer = false};
		if (!rc)
			rc = ir_mirror_open_zk(&m, &zo, c->workflow, err, errlen);
		explicit_bzero(cred, sizeof(cred));
	} else
		rc = ir_mirror_open_file(&m, c->mirror_file, err, errlen);
	if (rc)
		return rc;
	struct ir_mirror_snap s = {0};
	struct ir_table *t = NULL;
	rc = ir_mirror_load(m, &s, err, errlen);
	ir_mirror_close(m);
	if (!rc)
		rc = table_from_snap(c, &s, &t, err, errlen);
	ir_mirror_snap_free(&s);
	if (rc)
		return rc;
	ir_warn(LOG, "coordinator %s unreachable: serving epoch %llu from the %s mirror",
		c->url_text, (unsigned long long)t->epoch, c->zk_hosts ? "ZooKeeper" : "file");
	apply(c, t);
	return 0;
}

/* ---- the client thread ---- */

static void registration(struct ir_ccc *c, char *id, size_t cap, uint64_t *since, uint32_t *poll_ms)
{
	pthread_mutex_lock(&c->mu);
	snprintf(id, cap, "%s", c->instance);
	*since = c->nkeep ? c->keep[c->nkeep - 1]->epoch : 0;
	*poll_ms = c->poll_ms;
	pthread_mutex_unlock(&c->mu);
}

/* One long-poll.  0 when the next step may follow at once (a table, 304,
 * or 404: registration dropped), else -errno (back off). */
static int poll_once(struct ir_ccc *c)
{
	char id[80], path[160], msg[640], why[512];
	uint64_t since;
	uint32_t poll_ms;
	registration(c, id, sizeof(id), &since, &poll_ms);
	snprintf(path, sizeof(path), "/v1/routes?instance=%s&since=%llu", id,
		 (unsigned long long)since);
	uint64_t t0 = now_ns();
	struct resp r;
	int rc = exchange(c, &c->pconn, true, "GET", path, NULL,
			  t0 + (uint64_t)(poll_ms + POLL_MARGIN_MS) * 1000000u, &r);
	if (rc) {
		if (rc != -ECANCELED) {
			snprintf(msg, sizeof(msg), "%s: GET /v1/routes: %s", c->url_text,
				 strerror(-rc));
			set_error(c, msg);
		}
		return rc;
	}
	struct ir_table *t = NULL;
	if (r.status == 200 &&
	    (rc = ir_table_parse(r.body ? r.body : "", r.len, &t, why, sizeof(why))) == 0 &&
	    (rc = table_mine(c, t, why, sizeof(why))) == 0) {
		apply(c, t);
	} else if (r.status == 200) {
		ir_table_put(t);
		snprintf(msg, sizeof(msg), "%s: GET /v1/routes: table refused: %s", c->url_text,
			 why);
		set_error(c, msg);
		rc = rc == -EINVAL ? -EPROTO : rc;
	} else if (r.status == 304) {
		/* a coordinator that answers 304 at once must not make us spin */
		if (now_ns() - t0 < (uint64_t)poll_ms * 250000u)
			rc = -EAGAIN;
	} else if (r.status == 404) {
		ir_info(LOG, "coordinator %s forgot instance %s: registering again", c->url_text,
			id);
		pthread_mutex_lock(&c->mu);
		c->registered = false;
		c->instance[0] = '\0';
		pthread_mutex_unlock(&c->mu);
	} else {
		answer_error(&r, why, sizeof(why));
		snprintf(msg, sizeof(msg), "%s: GET /v1/routes: %d: %s", c->url_text, r.status,
			 why);
		set_error(c, msg);
		rc = -EPROTO;
	}
	resp_free(&r);
	return rc;
}

static int register_bg(struct ir_ccc *c)
{
	char err[640];
	int rc = try_register(c, now_ns() + CALL_MS * 1000000ull, err, sizeof(err));
	if (rc && rc != -ECANCELED)
		set_error(c, err);
	return rc;
}

static void *client_main(void *arg)
{
	struct ir_ccc *c = arg;
	unsigned fails = 0;
	while (!atomic_load(&c->stopping)) {
		int rc = ir_ccc_registered(c) ? poll_once(c) : register_bg(c);
		if (rc == -ECANCELED)
			break;
		if (rc == 0)
			fails = 0;
		else if (!nap(c, backoff(c, fails++, 2000)))
			break;
	}
	drop(c, &c->pconn, true);
	return NULL;
}

/* ---- start, stop ---- */

static int copy_str(char **dst, const char *src)
{
	*dst = NULL;
	if (src && !(*dst = strdup(src)))
		return -ENOMEM;
	return 0;
}

static int read_boot_id(char *buf, size_t cap, char *err, size_t errlen)
{
	FILE *f = fopen(BOOT_ID, "r");
	if (!f)
		return ir_errf(err, errlen, "%s: %s", BOOT_ID, strerror(errno));
	bool ok = fgets(buf, (int)cap, f) != NULL;
	fclose(f);
	buf[ok ? strcspn(buf, "\r\n") : 0] = '\0';
	return buf[0] ? 0 : ir_errf(err, errlen, "%s: empty", BOOT_ID);
}

static int check_addr(const char *name, const char *v, char *err, size_t errlen)
{
	if (v && (!*v || strlen(v) > 127))
		return ir_errf(err, errlen, "%s must be 1-127 characters", name);
	return 0;
}

static int check_opts(const struct ir_ccc_opts *o, char *err, size_t errlen)
{
	if (!o->url)
		return ir_errf(err, errlen, "no coordinator url (IROUTE_CC)");
	if (!o->token || !*o->token)
		return ir_errf(err, errlen, "no cluster token");
	if (o->entry && o->function)
		return ir_errf(err, errlen, "give a function or entry, not both");
	if (!o->entry && (!o->function || !*o->function || strlen(o->function) > 63))
		return ir_errf(err, errlen, "function must be 1-63 characters (or entry)");
	if (!o->http_addr && !o->tcp_addr && !o->ipc_path)
		return ir_errf(err, errlen, "no address: offer http_addr, tcp_addr or ipc_path");
	if (o->node && (!*o->node || strlen(o->node) > 64))
		return ir_errf(err, errlen, "node must be 1-64 characters");
	if (o->capacity > 65535)
		return ir_errf(err, errlen, "capacity must be 1-65535");
	if (o->transports & ~(IR_TR_IPC | IR_TR_TCP | IR_TR_RDMA))
		return ir_errf(err, errlen, "transports: unknown bits 0x%x", o->transports);
	if (o->zk_hosts && (!o->workflow || !*o->workflow))
		return ir_errf(err, errlen, "the ZooKeeper fallback needs the workflow's name");
	int rc = check_addr("http_addr", o->http_addr, err, errlen);
	if (!rc)
		rc = check_addr("tcp_addr", o->tcp_addr, err, errlen);
	if (!rc)
		rc = check_addr("ipc_path", o->ipc_path, err, errlen);
	return rc;
}

static int copy_opts(struct ir_ccc *c, const struct ir_ccc_opts *o, char *err, size_t errlen)
{
	int rc = check_opts(o, err, errlen);
	if (!rc)
		rc = ir_url_parse(o->url, &c->url, err, errlen);
	if (rc)
		return rc;
	if (copy_str(&c->url_text, o->url) || copy_str(&c->token, o->token) ||
	    copy_str(&c->function, o->entry ? NULL : o->function) ||
	    copy_str(&c->http_addr, o->http_addr) || copy_str(&c->tcp_addr, o->tcp_addr) ||
	    copy_str(&c->ipc_path, o->ipc_path) || copy_str(&c->workflow, o->workflow) ||
	    copy_str(&c->zk_hosts, o->zk_hosts) || copy_str(&c->zk_cred, o->zk_reader_cred) ||
	    copy_str(&c->mirror_file, o->mirror_file))
		return -ENOMEM;
	c->entry = o->entry;
	c->transports = o->transports;
	if (!c->transports)
		c->transports = (o->ipc_path ? IR_TR_IPC : 0) | (o->tcp_addr ? IR_TR_TCP : 0);
	if (!c->transports)
		return ir_errf(err, errlen, "transports: none (only http offered: set transports)");
	c->capacity = o->capacity ? o->capacity : 1;
	c->register_timeout_ms = o->register_timeout_ms ? o->register_timeout_ms : 3000;
	c->on_table = o->on_table;
	c->arg = o->arg;
	if (o->node) {
		snprintf(c->node, sizeof(c->node), "%s", o->node);
		return 0;
	}
	return read_boot_id(c->node, sizeof(c->node), err, errlen);
}

static void ccc_free(struct ir_ccc *c)
{
	drop(c, &c->pconn, false);
	ir_httpc_close(c->rconn);
	for (size_t i = 0; i < c->nkeep; i++)
		ir_table_put(c->keep[i]);
	if (c->token)
		explicit_bzero(c->token, strlen(c->token));
	if (c->zk_cred)
		explicit_bzero(c->zk_cred, strlen(c->zk_cred));
	char *strs[] = {c->url_text, c->token,	     c->function, c->http_addr,
			c->tcp_addr, c->ipc_path,    c->workflow, c->zk_hosts,
			c->zk_cred,  c->mirror_file, c->slice};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(strs[i]);
	if (c->evfd >= 0)
		close(c->evfd);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->req_mu);
	free(c);
}

/* Register within register_timeout_ms, retrying what is worth it. */
static int register_first(struct ir_ccc *c, char *err, size_t errlen)
{
	uint64_t deadline = now_ns() + (uint64_t)c->register_timeout_ms * 1000000u;
	char last[512] = "";
	for (unsigned k = 0;; k++) {
		int rc = try_register(c, deadline, last, sizeof(last));
		if (rc != -EAGAIN) {
			if (rc)
				snprintf(err, errlen, "%s", last);
			return rc;
		}
		int left = ms_until(deadline);
		unsigned d = backoff(c, k, 1000);
		if (left == 0)
			break;
		nap(c, d < (unsigned)left ? d : (unsigned)left);
		if (ms_until(deadline) == 0)
			break; /* no attempt cut short: keep the last real error */
	}
	drop(c, &c->pconn, true);
	snprintf(err, errlen, "coordinator %s did not answer within %u ms (%s)", c->url_text,
		 c->register_timeout_ms, last);
	return -EAGAIN;
}

static int ccc_new(struct ir_ccc **cp)
{
	struct ir_ccc *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->poll_fd = -1;
	atomic_init(&c->stopping, false);
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->req_mu, NULL);
	c->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->evfd < 0) {
		int rc = -errno;
		ccc_free(c);
		return rc;
	}
	if (getrandom(&c->rng, sizeof(c->rng), 0) != sizeof(c->rng) || !c->rng)
		c->rng = now_ns() | 1;
	*cp = c;
	return 0;
}

int ir_ccc_start(struct ir_ccc **cp, const struct ir_ccc_opts *o, char *err, size_t errlen)
{
	struct ir_ccc *c = NULL;
	char why[640];
	*cp = NULL;
	int rc = ccc_new(&c);
	if (rc)
		return ir_errf(err, errlen, "out of resources: %s", strerror(-rc)), rc;
	rc = copy_opts(c, o, err, errlen);
	if (!rc)
		rc = register_first(c, err, errlen);
	if (rc == -EAGAIN && (c->zk_hosts || c->mirror_file)) {
		snprintf(why, sizeof(why), "%s", err ? err : "");
		rc = fallback(c, err, errlen);
		if (rc) {
			char mirror[512];
			snprintf(mirror, sizeof(mirror), "%s", err ? err : "");
			ir_errf(err, errlen, "%s; the mirror neither: %s", why, mirror);
			rc = -EAGAIN;
		}
	}
	if (!rc && (rc = -pthread_create(&c->thr, NULL, client_main, c)) != 0)
		ir_errf(err, errlen, "pthread_create: %s", strerror(-rc));
	if (rc) {
		ccc_free(c);
		return rc;
	}
	c->thr_running = true;
	*cp = c;
	return 0;
}

static void stop_thread(struct ir_ccc *c)
{
	if (!c->thr_running)
		return;
	pthread_mutex_lock(&c->mu);
	atomic_store(&c->stopping, true);
	if (c->poll_fd >= 0)
		shutdown(c->poll_fd, SHUT_RDWR);
	pthread_mutex_unlock(&c->mu);
	uint64_t one = 1;
	if (write(c->evfd, &one, sizeof(one)) < 0)
		ir_warn(LOG, "eventfd write: %s", strerror(errno));
	pthread_join(c->thr, NULL);
	c->thr_running = false;
}

void ir_ccc_stop(struct ir_ccc *c)
{
	if (!c)
		return;
	stop_thread(c);
	ccc_free(c);
}

/* ---- queries ---- */

bool ir_ccc_registered(struct ir_ccc *c)
{
	pthread_mutex_lock(&c->mu);
	bool r = c->registered;
	pthread_mutex_unlock(&c->mu);
	return r;
}

size_t ir_ccc_instance(struct ir_ccc *c, char *buf, size_t cap)
{
	pthread_mutex_lock(&c->mu);
	int n = snprintf(buf, cap, "%s", c->registered ? c->instance : "");
	pthread_mutex_unlock(&c->mu);
	return (size_t)n;
}

char *ir_ccc_slice(struct ir_ccc *c)
{
	pthread_mutex_lock(&c->mu);
	char *s = c->slice ? strdup(c->slice) : NULL;
	pthread_mutex_unlock(&c->mu);
	return s;
}

void ir_ccc_last_error(struct ir_ccc *c, char *buf, size_t cap)
{
	pthread_mutex_lock(&c->mu);
	snprintf(buf, cap, "%s", c->last_error);
	pthread_mutex_unlock(&c->mu);
}

/* ---- calls from other threads ---- */

/* POST @body to @path on rconn; 0 with the 200 answer in *@out, -ENOENT
 * for a 404, another -errno. */
static int call(struct ir_ccc *c, const char *path, const char *body, unsigned ms, struct resp *out)
{
	pthread_mutex_lock(&c->req_mu);
	int rc = exchange(c, &c->rconn, false, "POST", path, body,
			  now_ns() + (uint64_t)ms * 1000000u, out);
	pthread_mutex_unlock(&c->req_mu);
	if (rc || out->status == 200)
		return rc;
	char why[512];
	answer_error(out, why, sizeof(why));
	ir_warn(LOG, "%s: POST %s: %d: %s", c->url_text, path, out->status, why);
	rc = out->status == 404				? -ENOENT
	     : out->status == 401 || out->status == 403 ? -EACCES
							: -EPROTO;
	resp_free(out);
	return rc;
}

/* {"instance": <ours>[, @key: @val]} (@val taken); NULL when not
 * registered or out of memory. */
static char *instance_body(struct ir_ccc *c, const char *key, cJSON *val)
{
	char id[80];
	cJSON *o = ir_ccc_instance(c, id, sizeof(id)) ? cJSON_CreateObject() : NULL;
	char *s = NULL;
	if (o && cJSON_AddStringToObject(o, "instance", id) &&
	    (!val || cJSON_AddItemToObject(o, key, val))) {
		val = NULL;
		s = cJSON_PrintUnformatted(o);
	}
	cJSON_Delete(o);
	cJSON_Delete(val);
	return s;
}

int ir_ccc_push_stats(struct ir_ccc *c, const struct ir_hist *h)
{
	if (!ir_ccc_registered(c))
		return -ENOTCONN;
	char *hj = ir_hist_to_json(h);
	cJSON *lat = hj ? cJSON_Parse(hj) : NULL;
	free(hj);
	if (!lat)
		return -ENOMEM;
	char *body = instance_body(c, "latency", lat);
	if (!body)
		return ir_ccc_registered(c) ? -ENOMEM : -ENOTCONN;
	struct resp r;
	int rc = call(c, "/v1/stats", body, CALL_MS, &r);
	free(body);
	if (!rc)
		resp_free(&r);
	return rc;
}

int ir_ccc_suspect(struct ir_ccc *c, const char *instance, bool *removed)
{
	*removed = false;
	if (!ir_ccc_registered(c))
		return -ENOTCONN;
	char id[80], *body = NULL;
	cJSON *o = ir_ccc_instance(c, id, sizeof(id)) ? cJSON_CreateObject() : NULL;
	if (o && cJSON_AddStringToObject(o, "instance", instance) &&
	    cJSON_AddStringToObject(o, "by", id))
		body = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!body)
		return ir_ccc_registered(c) ? -ENOMEM : -ENOTCONN;
	struct resp r;
	int rc = call(c, "/v1/suspect", body, SUSPECT_MS, &r);
	free(body);
	if (rc)
		return rc;
	cJSON *a = cJSON_ParseWithLength(r.body ? r.body : "", r.len);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(a, "removed");
	if (cJSON_IsBool(v))
		*removed = cJSON_IsTrue(v);
	else
		rc = -EPROTO;
	cJSON_Delete(a);
	resp_free(&r);
	return rc;
}

int ir_ccc_leave(struct ir_ccc *c)
{
	stop_thread(c);
	drop(c, &c->pconn, false);
	if (!ir_ccc_registered(c))
		return 0;
	char *body = instance_body(c, NULL, NULL);
	if (!body)
		return -ENOMEM;
	struct resp r;
	int rc = call(c, "/v1/leave", body, CALL_MS, &r);
	free(body);
	if (!rc)
		resp_free(&r);
	if (rc == 0 || rc == -ENOENT) {
		pthread_mutex_lock(&c->mu);
		c->registered = false;
		pthread_mutex_unlock(&c->mu);
		rc = 0;
	}
	return rc;
}

/* ---- environment ---- */

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static int env_u32(const char *name, uint32_t lo, uint32_t hi, uint32_t *out, char *err,
		   size_t errlen)
{
	const char *v = env(name);
	if (!v)
		return 0;
	char *end;
	errno = 0;
	unsigned long x = strtoul(v, &end, 10);
	if (*end || errno || v[0] == '-' || x < lo || x > hi)
		return ir_errf(err, errlen, "%s=\"%.32s\": want an integer %u-%u", name, v, lo, hi);
	*out = (uint32_t)x;
	return 0;
}

int ir_ccc_opts_from_env(struct ir_ccc_opts *o, char *err, size_t errlen)
{
	o->url = env("IROUTE_CC");
	if (!o->url)
		return ir_errf(err, errlen,
			    "IROUTE_CC is not set (the coordinator's http://host:port)");
	o->function = env("IROUTE_FUNCTION");
	o->entry = o->function == NULL;
	o->http_addr = env("IROUTE_HTTP_ADDR");
	o->tcp_addr = env("IROUTE_TCP_ADDR");
	o->ipc_path = env("IROUTE_IPC_PATH");
	o->workflow = env("IROUTE_WORKFLOW_NAME");
	o->zk_hosts = env("IROUTE_ZK");
	o->mirror_file = env("IROUTE_CC_MIRROR_FILE");
	int rc = env_u32("IROUTE_CAPACITY", 1, 65535, &o->capacity, err, errlen);
	if (!rc)
		rc = env_u32("IROUTE_CC_TIMEOUT_MS", 1, 3600000, &o->register_timeout_ms, err,
			     errlen);
	return rc;
}
