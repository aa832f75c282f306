/* entry.c - the workflow entry (template c-entry): the HTTP front door,
 * the sink of every result, the built-in load generator.
 *
 * A request: the HTTP thread builds a struct ereq and posts it to the I/O
 * thread, which gives it a random 64-bit id and the newest epoch and sends
 * the body one hop to an instance of every entry function; the sinks send
 * their RESULTs straight back to this entry (frames carry its id as
 * "origin"), and the request completes when every sink answered, an ERROR
 * arrived, or its deadline passed.  Completion wakes the HTTP thread (or
 * calls the bench's / the async queue's callback on the I/O thread).
 *
 * Exactly-once answer over at-least-once execution: the hop-by-hop ACKs
 * (node.h) repair a lost instance; as the last line, a request without
 * its result after IROUTE_RETRY_MS is issued again under a new id (a
 * fresh run: the instances' duplicate filters are keyed by id) and the
 * first result of either run answers; results that find their request
 * answered are counted as duplicates and dropped.
 *
 * POST /bench measures on one clock: CLOCK_MONOTONIC on this I/O thread
 * from the request's dispatch to its completion, closed loop with
 * `concurrency` requests outstanding.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "envnum.h"
#include "httpc.h"
#include "instance.h"
#include "iroute/handler.h"
#include "iroute/hist.h"
#include "iroute/log.h"
#include "node.h"
#include "otab.h"

#define PROG "iroute-entry"
#define LOG "entry"
#define MAX_IDS 4
#define BENCH_BODIES 1024

struct ereq;
typedef void (*ereq_cb)(struct ereq *r);

struct idref {
	uint64_t id;
	struct ereq *r;
};

struct ereq {
	struct entry *e;
	struct idref ids[MAX_IDS];
	size_t nids;
	const void *body;
	size_t len;
	void *owned; /* body copy (async) */
	uint64_t t0_mono, t0_rt, deadline_mono, deadline_rt, dispatched_mono;
	uint64_t deadline_timer, retry_timer;
	uint32_t epoch;
	void **res;
	size_t *res_len;
	uint64_t *res_rt; /* when each sink sent its result (its clock) */
	size_t got;
	int status;  /* 0 running, else the HTTP status */
	char *error; /* JSON of the error */
	char call_id[80];
	/* completion */
	ereq_cb cb;
	void *cb_arg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done, sync;
	char callback_url[512];
	struct ereq *qnext;
};

struct entry {
	struct ir_node *node;
	struct ir_workflow wf;
	int16_t sink_ord[IR_WF_MAX_FNS];
	ir_generate_fn gen;
	struct ir_otab ids; /* struct idref by id */
	uint64_t rng;
	uint32_t retry_ms;
	uint64_t default_timeout_ns;
	/* counters (I/O thread; read racy for stats) */
	uint64_t dups, retries; /* for /bench: duplicates and re-issues */
	pthread_mutex_t hmu;
	struct ir_hist hist; /* since the last push to the coordinator */
	/* async callbacks and stats pushes: their own thread */
	pthread_t cthread;
	pthread_mutex_t cmu;
	pthread_cond_t ccv;
	struct ereq *cq, *cq_tail;
	bool cstop;
};

/* ---- the I/O side ---- */

static uint64_t idref_hash(const void *e)
{
	return ir_mix64(((const struct idref *)e)->id);
}

static struct idref *id_find(struct entry *e, uint64_t id)
{
	for (size_t i = ir_mix64(id) & e->ids.mask;; i = (i + 1) & e->ids.mask) {
		struct idref *r = e->ids.slot[i];
		if (!r || r->id == id)
			return r;
	}
}

static uint64_t next_id(struct entry *e)
{
	uint64_t z = (e->rng += 0x9e3779b97f4a7c15ull);
	z = ir_mix64(z);
	return z ? z : 1;
}

static void complete(struct ereq *r, int status, char *error)
{
	struct entry *e = r->e;
	struct ir_loop *loop = ir_node_loop(e->node);
	for (size_t i = 0; i < r->nids; i++)
		ir_otab_del(&e->ids, &r->ids[i]);
	r->nids = 0;
	if (r->deadline_timer)
		ir_loop_timer_cancel(loop, r->deadline_timer);
	if (r->retry_timer)
		ir_loop_timer_cancel(loop, r->retry_timer);
	r->deadline_timer = r->retry_timer = 0;
	r->status = status;
	r->error = error;
	uint64_t us = (ir_now_ns() - r->t0_mono) / 1000;
	pthread_mutex_lock(&e->hmu);
	ir_hist_add(&e->hist, us);
	pthread_mutex_unlock(&e->hmu);
	if (r->sync) {
		pthread_mutex_lock(&r->mu);
		r->done = true;
		pthread_cond_signal(&r->cv);
		pthread_mutex_unlock(&r->mu);
	} else if (r->cb) {
		r->cb(r);
	}
}

static char *error_json(const char *fn, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static char *error_json(const char *fn, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return ir_node_error_json(fn, status, msg);
}

/* Send the body to every entry function under a new id. */
static int dispatch(struct ereq *r)
{
	struct entry *e = r->e;
	if (r->nids == MAX_IDS || !ir_otab_reserve(&e->ids))
		return -ENOSPC;
	struct idref *ref = &r->ids[r->nids];
	ref->id = next_id(e);
	ref->r = r;
	ir_otab_put(&e->ids, ref);
	r->nids++;
	for (size_t i = 0; i < e->wf.nentry; i++) {
		void *p = ir_node_alloc(r->len);
		if (!p)
			return -ENOMEM;
		memcpy(p, r->body, r->len);
		struct ir_node_msg m = {.type = IR_FRAME_DATA,
					.fn = (uint16_t)e->wf.entry[i],
					.branch = 0,
					.req = ref->id,
					.origin = ir_node_origin(e->node),
					.epoch = r->epoch,
					.start_ns = r->t0_rt,
					.deadline_rt = r->deadline_rt};
		char why[256];
		if (ir_node_send(e->node, &m, p, r->len, why, sizeof(why)) != 0) {
			complete(r, 503, error_json(e->wf.fns[e->wf.entry[i]].name, 503, "%s", why));
			return -EHOSTUNREACH;
		}
	}
	return 0;
}

static void on_deadline(struct ir_loop *loop, void *arg)
{
	struct ereq *r = arg;
	(void)loop;
	r->deadline_timer = 0;
	double s = (double)(r->deadline_mono - r->t0_mono) / 1e9;
	complete(r, 504,
		 error_json(NULL, 504, "the workflow did not answer within %.3f s (%zu of %zu sink "
				       "results in)",
			    s, r->got, r->e->wf.nsinks));
}

static void on_retry(struct ir_loop *loop, void *arg)
{
	struct ereq *r = arg;
	r->retry_timer = 0;
	if (r->status)
		return;
	r->e->retries++;
	r->epoch = (uint32_t)ir_node_epoch(r->e->node);
	ir_info(LOG, "request %016" PRIx64 ": no result after %u ms: issued again",
		r->ids[0].id, r->e->retry_ms);
	int rc = dispatch(r);
	if (rc == -EHOSTUNREACH)
		return; /* completed (and maybe freed) already */
	if (rc == 0 && r->nids < MAX_IDS)
		r->retry_timer = ir_loop_timer_add(loop, (uint64_t)r->e->retry_ms * 1000, on_retry, r);
}

static void start(struct ir_loop *loop, void *arg)
{
	struct ereq *r = arg;
	struct entry *e = r->e;
	r->epoch = (uint32_t)ir_node_epoch(e->node);
	r->t0_mono = ir_now_ns();
	r->t0_rt = ir_now_realtime_ns();
	r->deadline_rt = r->t0_rt + (r->deadline_mono - r->t0_mono);
	int rc = dispatch(r);
	if (rc == -EHOSTUNREACH)
		return; /* completed (and maybe freed) already */
	if (rc) {
		complete(r, 503, error_json(NULL, 503, "out of memory"));
		return;
	}
	r->dispatched_mono = ir_now_ns();
	r->deadline_timer = ir_loop_timer_add(
	    loop, r->deadline_mono > r->t0_mono ? (r->deadline_mono - r->t0_mono) / 1000 : 0,
	    on_deadline, r);
	if (e->retry_ms)
		r->retry_timer = ir_loop_timer_add(loop, (uint64_t)e->retry_ms * 1000, on_retry, r);
}

static void on_result(void *arg, const struct ir_frame_hdr *h, const uint8_t *payload)
{
	struct entry *e = arg;
	struct idref *ref = id_find(e, h->request_id);
	if (!ref) {
		e->dups++; /* answered already (or a run we gave up on) */
		return;
	}
	struct ereq *r = ref->r;
	if (h->type == IR_FRAME_ERROR) {
		char *err = malloc(h->payload_len + 1);
		int status = 500;
		if (err) {
			memcpy(err, payload, h->payload_len);
			err[h->payload_len] = '\0';
			cJSON *o = cJSON_Parse(err);
			const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
			if (cJSON_IsNumber(st) && st->valueint >= 400 && st->valueint <= 599)
				status = st->valueint;
			cJSON_Delete(o);
		}
		complete(r, status, err);
		return;
	}
	int ord = h->src_fn < IR_WF_MAX_FNS ? e->sink_ord[h->src_fn] : -1;
	if (ord < 0 || r->res[ord]) {
		e->dups++;
		return;
	}
	r->res[ord] = malloc(h->payload_len ? h->payload_len : 1);
	if (!r->res[ord]) {
		complete(r, 500, error_json(NULL, 500, "out of memory"));
		return;
	}
	memcpy(r->res[ord], payload, h->payload_len);
	r->res_len[ord] = h->payload_len;
	r->res_rt[ord] = h->sent_ns;
	if (++r->got == e->wf.nsinks)
		complete(r, 200, NULL);
}

static void on_undelivered(void *arg, const struct ir_node_msg *m, int status, const char *why)
{
	struct entry *e = arg;
	struct idref *ref = id_find(e, m->req);
	if (!ref)
		return;
	const char *fn = m->fn < e->wf.nfns ? e->wf.fns[m->fn].name : NULL;
	complete(ref->r, status, error_json(fn, status, "%s", why));
}

/* ---- requests ---- */

static struct ereq *ereq_new(struct entry *e)
{
	struct ereq *r = calloc(1, sizeof(*r));
	size_t n = e->wf.nsinks;
	if (!r || !(r->res = calloc(n, sizeof(*r->res))) ||
	    !(r->res_len = calloc(n, sizeof(*r->res_len))) ||
	    !(r->res_rt = calloc(n, sizeof(*r->res_rt)))) {
		if (r) {
			free(r->res);
			free(r->res_len);
		}
		free(r);
		return NULL;
	}
	r->e = e;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	return r;
}

static void ereq_free(struct ereq *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->e->wf.nsinks; i++)
		free(r->res[i]);
	free(r->res);
	free(r->res_len);
	free(r->res_rt);
	free(r->error);
	free(r->owned);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r);
}

/* The answer body of a completed request: malloc()ed. */
static char *answer_body(struct ereq *r, size_t *len, const char **ctype)
{
	struct entry *e = r->e;
	if (r->status != 200) {
		*ctype = "application/json";
		char *s = r->error ? strdup(r->error) : error_json(NULL, r->status, "failed");
		*len = s ? strlen(s) : 0;
		return s;
	}
	if (e->wf.nsinks == 1) {
		*ctype = NULL;
		*len = r->res_len[0];
		char *s = malloc(*len ? *len : 1);
		if (s)
			memcpy(s, r->res[0], *len);
		return s;
	}
	*ctype = "application/json";
	cJSON *o = cJSON_CreateObject();
	for (size_t i = 0; i < e->wf.nsinks; i++) {
		const char *name = e->wf.fns[e->wf.sinks[i]].name;
		cJSON *v = cJSON_ParseWithLength(r->res[i], r->res_len[i]);
		if (!v) {
			char *t = malloc(r->res_len[i] + 1);
			if (t) {
				memcpy(t, r->res[i], r->res_len[i]);
				t[r->res_len[i]] = '\0';
				v = cJSON_CreateString(t);
				free(t);
			}
		}
		cJSON_AddItemToObject(o, name, v ? v : cJSON_CreateNull());
	}
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	*len = s ? strlen(s) : 0;
	return s;
}

static void make_call_id(const struct ir_wd_call *call, char *buf, size_t cap)
{
	const char *id = ir_wd_call_header(call, "X-Call-Id");
	if (id && *id && strlen(id) < cap) {
		snprintf(buf, cap, "%s", id);
		return;
	}
	uint8_t b[16];
	if (getrandom(b, sizeof(b), 0) != sizeof(b)) { /* next_id() is the I/O thread's */
		uint64_t x[2] = {ir_mix64(ir_now_ns()), ir_mix64(ir_now_ns() ^ (uint64_t)pthread_self())};
		memcpy(b, x, sizeof(b));
	}
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(buf, cap, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
		 b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
		 b[14], b[15]);
}

static uint64_t deadline_of(struct entry *e, const struct ir_wd_call *call)
{
	uint64_t now = ir_now_ns();
	if (call->deadline_ns) /* answer a little before the watchdog's own 504 */
		return call->deadline_ns > now + 2000000 ? call->deadline_ns - 1000000 : now;
	return now + e->default_timeout_ns;
}

static int reply_error(struct ir_wd_reply *rep, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int reply_error(struct ir_wd_reply *rep, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rep->body = error_json(NULL, status, "%s", msg);
	rep->len = rep->body ? strlen(rep->body) : 0;
	rep->status = status;
	rep->content_type = "application/json";
	return rep->body ? 0 : -ENOMEM;
}

/* Header values that outlive the handler call only until it returns. */
struct hdrs {
	char call_id[80], timing[1024];
};

static void timing_header(struct ereq *r, uint64_t end_mono, struct hdrs *h)
{
	struct entry *e = r->e;
	int n = snprintf(h->timing, sizeof(h->timing), "entry;dur=%.3f",
			 (double)(r->dispatched_mono - r->t0_mono) / 1e6);
	for (size_t i = 0; i < e->wf.nsinks && n > 0 && (size_t)n < sizeof(h->timing); i++)
		if (r->res_rt[i] > r->t0_rt)
			n += snprintf(h->timing + n, sizeof(h->timing) - (size_t)n,
				      ", %s;dur=%.3f", e->wf.fns[e->wf.sinks[i]].name,
				      (double)(r->res_rt[i] - r->t0_rt) / 1e6);
	if (n > 0 && (size_t)n < sizeof(h->timing))
		snprintf(h->timing + n, sizeof(h->timing) - (size_t)n, ", total;dur=%.3f",
			 (double)(end_mono - r->t0_mono) / 1e6);
}

static int run_sync(struct entry *e, const struct ir_wd_call *call, struct ir_wd_reply *rep,
		    struct hdrs *h)
{
	struct ereq *r = ereq_new(e);
	if (!r)
		return -ENOMEM;
	r->sync = true;
	r->body = call->body;
	r->len = call->body_len;
	r->deadline_mono = deadline_of(e, call);
	snprintf(r->call_id, sizeof(r->call_id), "%s", h->call_id);
	if (ir_node_post(e->node, start, r) != 0) {
		ereq_free(r);
		return reply_error(rep, 503, "the entry is stopping");
	}
	pthread_mutex_lock(&r->mu);
	while (!r->done)
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
	uint64_t end = ir_now_ns();
	const char *ct;
	size_t len;
	char *body = answer_body(r, &len, &ct);
	rep->status = r->status;
	rep->body = body;
	rep->len = len;
	rep->content_type = ct;
	timing_header(r, end, h);
	ereq_free(r);
	return body ? 0 : -ENOMEM;
}

/* ---- async: the queue worker's contract ---- */

static void async_done(struct ereq *r)
{
	struct entry *e = r->e;
	pthread_mutex_lock(&e->cmu);
	if (e->cq_tail)
		e->cq_tail->qnext = r;
	else
		e->cq = r;
	e->cq_tail = r;
	pthread_cond_signal(&e->ccv);
	pthread_mutex_unlock(&e->cmu);
}

static int post_callback(struct ereq *r)
{
	struct ir_url u;
	char err[256];
	if (ir_url_parse(r->callback_url, &u, err, sizeof(err)) != 0) {
		ir_warn(LOG, "X-Callback-Url \"%s\": %s", r->callback_url, err);
		return -EINVAL;
	}
	uint64_t deadline = ir_now_ns() + 10000000000ull;
	int fd = ir_httpc_connect(&u, deadline);
	struct ir_httpc *c;
	if (fd < 0 || ir_httpc_open(&c, fd) != 0) {
		if (fd >= 0)
			close(fd);
		ir_warn(LOG, "callback %s: cannot connect", r->callback_url);
		return -ECONNREFUSED;
	}
	ir_httpc_set_deadline(c, deadline);
	const char *ct;
	size_t len;
	char *body = answer_body(r, &len, &ct);
	char head[2048];
	int hl = snprintf(head, sizeof(head),
			  "POST %s HTTP/1.1\r\nHost: %s:%u\r\nContent-Type: %s\r\n"
			  "X-Call-Id: %s\r\nX-Function-Status: %d\r\nX-Duration-Seconds: %.6f\r\n"
			  "Connection: close\r\n\r\n",
			  u.prefix[0] ? u.prefix : "/", u.host, u.port,
			  ct ? ct : "application/octet-stream", r->call_id, r->status,
			  (double)(ir_now_ns() - r->t0_mono) / 1e9);
	int rc = hl > 0 && (size_t)hl < sizeof(head) && body
		     ? ir_httpc_send_head(c, head, (size_t)hl, (int64_t)len)
		     : -EINVAL;
	if (!rc && len)
		rc = ir_httpc_send_body(c, body, len);
	if (!rc)
		rc = ir_httpc_end_body(c);
	struct ir_httpc_resp resp;
	if (!rc)
		rc = ir_httpc_read_head(c, false, &resp);
	if (rc)
		ir_warn(LOG, "callback %s: %s", r->callback_url, strerror(-rc));
	free(body);
	ir_httpc_close(c);
	return rc;
}

static void *callback_thread(void *arg)
{
	struct entry *e = arg;
	uint64_t last_push = ir_now_ns();
	pthread_mutex_lock(&e->cmu);
	while (!e->cstop) {
		if (!e->cq) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&e->ccv, &e->cmu, &ts);
		}
		struct ereq *r = e->cq;
		if (r) {
			e->cq = r->qnext;
			if (!e->cq)
				e->cq_tail = NULL;
		}
		pthread_mutex_unlock(&e->cmu);
		if (r) {
			post_callback(r);
			ereq_free(r);
		}
		if (ir_now_ns() - last_push > 1000000000ull) { /* latency to the coordinator */
			struct ir_hist *h = malloc(sizeof(*h));
			if (h) {
				pthread_mutex_lock(&e->hmu);
				*h = e->hist;
				memset(&e->hist, 0, sizeof(e->hist));
				pthread_mutex_unlock(&e->hmu);
				if (h->count)
					ir_ccc_push_stats(ir_node_ccc(e->node), h);
				free(h);
			}
			last_push = ir_now_ns();
		}
		pthread_mutex_lock(&e->cmu);
	}
	pthread_mutex_unlock(&e->cmu);
	return NULL;
}

static int run_async(struct entry *e, const struct ir_wd_call *call, struct ir_wd_reply *rep,
		     struct hdrs *h)
{
	const char *cb = ir_wd_call_header(call, "X-Callback-Url");
	struct ir_url u;
	char err[256];
	if (!cb || !*cb)
		return reply_error(rep, 400, "POST /async needs an X-Callback-Url header");
	if (strlen(cb) >= 512 || ir_url_parse(cb, &u, err, sizeof(err)) != 0)
		return reply_error(rep, 400, "X-Callback-Url: %s", strlen(cb) >= 512 ? "too long" : err);
	struct ereq *r = ereq_new(e);
	if (!r)
		return -ENOMEM;
	r->owned = malloc(call->body_len ? call->body_len : 1);
	if (!r->owned) {
		ereq_free(r);
		return -ENOMEM;
	}
	memcpy(r->owned, call->body, call->body_len);
	r->body = r->owned;
	r->len = call->body_len;
	r->deadline_mono = ir_now_ns() + e->default_timeout_ns;
	r->cb = async_done;
	snprintf(r->callback_url, sizeof(r->callback_url), "%s", cb);
	snprintf(r->call_id, sizeof(r->call_id), "%s", h->call_id);
	if (ir_node_post(e->node, start, r) != 0) {
		ereq_free(r);
		return reply_error(rep, 503, "the entry is stopping");
	}
	rep->status = 202;
	rep->body = NULL;
	rep->len = 0;
	return 0;
}

/* ---- POST /bench ---- */

struct bench {
	struct entry *e;
	uint64_t n, conc, started, done, ok, errors;
	uint64_t timeout_ns;
	void **bodies;
	size_t *lens;
	size_t nbodies;
	struct ir_hist hist;
	uint64_t t0, t1, dups0, retries0;
	char first_error[512];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool finished;
};

static void bench_next(struct bench *b);

static void bench_done(struct ereq *r)
{
	struct bench *b = r->cb_arg;
	ir_hist_add(&b->hist, (ir_now_ns() - r->t0_mono) / 1000);
	if (r->status == 200)
		b->ok++;
	else {
		if (!b->errors && r->error)
			snprintf(b->first_error, sizeof(b->first_error), "%s", r->error);
		b->errors++;
	}
	b->done++;
	ereq_free(r);
	if (b->done == b->n) {
		b->t1 = ir_now_ns();
		pthread_mutex_lock(&b->mu);
		b->finished = true;
		pthread_cond_signal(&b->cv);
		pthread_mutex_unlock(&b->mu);
		return;
	}
	bench_next(b);
}

static void bench_next(struct bench *b)
{
	struct ir_loop *loop = ir_node_loop(b->e->node);
	while (b->started < b->n && b->started - b->done < b->conc) {
		struct ereq *r = ereq_new(b->e);
		if (!r) {
			b->errors++;
			b->done++;
			b->started++;
			continue;
		}
		size_t i = (size_t)(b->started % b->nbodies);
		r->body = b->bodies[i];
		r->len = b->lens[i];
		r->cb = bench_done;
		r->cb_arg = b;
		r->deadline_mono = ir_now_ns() + b->timeout_ns;
		b->started++;
		start(loop, r);
	}
	if (b->done == b->n && !b->finished) {
		b->t1 = ir_now_ns();
		pthread_mutex_lock(&b->mu);
		b->finished = true;
		pthread_cond_signal(&b->cv);
		pthread_mutex_unlock(&b->mu);
	}
}

static void bench_start(struct ir_loop *loop, void *arg)
{
	struct bench *b = arg;
	(void)loop;
	b->t0 = ir_now_ns();
	b->dups0 = b->e->dups;
	b->retries0 = b->e->retries;
	bench_next(b);
}

static bool query_u64(const char *q, const char *key, uint64_t *v)
{
	size_t kl = strlen(key);
	for (const char *p = q; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL)
		if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
			char *end;
			unsigned long long x = strtoull(p + kl + 1, &end, 10);
			if (end == p + kl + 1 || (*end && *end != '&'))
				return false;
			*v = x;
			return true;
		}
	return true; /* absent: the default stays */
}

static int run_bench(struct entry *e, const struct ir_wd_call *call, struct ir_wd_reply *rep)
{
	uint64_t n = 1000, conc = 1, timeout_ms = 10000;
	if (!query_u64(call->query, "n", &n) || !query_u64(call->query, "concurrency", &conc) ||
	    !query_u64(call->query, "timeout_ms", &timeout_ms) || n < 1 || n > 100000000 ||
	    conc < 1 || conc > 65536 || timeout_ms < 1)
		return reply_error(rep, 400,
				   "bench: n (1-100000000), concurrency (1-65536) and timeout_ms "
				   "must be positive integers");
	if (!e->gen && !call->body_len)
		return reply_error(rep, 400,
				   "bench: this entry has no generate_data(): POST the request body "
				   "to repeat");
	struct bench *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->e = e;
	b->n = n;
	b->conc = conc;
	b->timeout_ns = timeout_ms * 1000000ull;
	b->nbodies = e->gen ? (size_t)(n < BENCH_BODIES ? n : BENCH_BODIES) : 1;
	b->bodies = calloc(b->nbodies, sizeof(*b->bodies));
	b->lens = calloc(b->nbodies, sizeof(*b->lens));
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	int rc = b->bodies && b->lens ? 0 : -ENOMEM;
	for (size_t i = 0; !rc && i < b->nbodies; i++) {
		if (!e->gen) {
			b->bodies[i] = malloc(call->body_len);
			if (!b->bodies[i]) {
				rc = -ENOMEM;
				break;
			}
			memcpy(b->bodies[i], call->body, call->body_len);
			b->lens[i] = call->body_len;
			continue;
		}
		struct ir_out *o = ir_out_new(NULL, 0, 0, NULL, NULL);
		int g = o ? e->gen(i, o) : -ENOMEM;
		const void *p;
		size_t len = 0;
		if (!g) {
			ir_out_get(o, 0, &p, &len);
			b->bodies[i] = malloc(len ? len : 1);
			if (b->bodies[i])
				memcpy(b->bodies[i], p, len);
			b->lens[i] = len;
		}
		ir_out_free(o);
		if (g || !b->bodies[i]) {
			rc = reply_error(rep, 500, "bench: generate_data(%zu) returned %d", i, g);
			rc = rc ? rc : 1;
		}
	}
	if (!rc && ir_node_post(e->node, bench_start, b) != 0)
		rc = reply_error(rep, 503, "the entry is stopping"), rc = rc ? rc : 1;
	if (!rc) {
		pthread_mutex_lock(&b->mu);
		while (!b->finished)
			pthread_cond_wait(&b->cv, &b->mu);
		pthread_mutex_unlock(&b->mu);
		double secs = (double)(b->t1 - b->t0) / 1e9;
		cJSON *o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "n", (double)b->n);
		cJSON_AddNumberToObject(o, "concurrency", (double)b->conc);
		cJSON_AddNumberToObject(o, "ok", (double)b->ok);
		cJSON_AddNumberToObject(o, "errors", (double)b->errors);
		cJSON_AddNumberToObject(o, "duplicates", (double)(e->dups - b->dups0));
		cJSON_AddNumberToObject(o, "retries", (double)(e->retries - b->retries0));
		static const char *const qn[] = {"p50_ms", "p90_ms", "p99_ms", "p999_ms"};
		static const double qv[] = {0.5, 0.9, 0.99, 0.999};
		for (size_t i = 0; i < 4; i++)
			cJSON_AddNumberToObject(o, qn[i],
						(double)ir_hist_quantile(&b->hist, qv[i]) / 1000.0);
		cJSON_AddNumberToObject(o, "max_ms", (double)b->hist.max_us / 1000.0);
		cJSON_AddNumberToObject(o, "throughput_rps", secs > 0 ? (double)b->n / secs : 0);
		cJSON_AddNumberToObject(o, "duration_s", secs);
		if (b->errors)
			cJSON_AddStringToObject(o, "first_error", b->first_error);
		rep->body = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		rep->len = rep->body ? strlen(rep->body) : 0;
		rep->content_type = "application/json";
		rc = rep->body ? 0 : -ENOMEM;
	}
	for (size_t i = 0; b->bodies && i < b->nbodies; i++)
		free(b->bodies[i]);
	free(b->bodies);
	free(b->lens);
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);
	free(b);
	return rc > 0 ? 0 : rc;
}

/* GET /generate?seq=N: the N-th request body of generate_data(), e.g. for
 * `iroute invoke --generate N`. */
static int run_generate(struct entry *e, const struct ir_wd_call *call, struct ir_wd_reply *rep)
{
	uint64_t seq = 0;
	if (!e->gen)
		return reply_error(rep, 404, "this entry has no generate_data()");
	if (!query_u64(call->query, "seq", &seq))
		return reply_error(rep, 400, "generate: seq must be a non-negative integer");
	struct ir_out *o = ir_out_new(NULL, 0, 0, NULL, NULL);
	int g = o ? e->gen(seq, o) : -ENOMEM;
	if (g) {
		ir_out_free(o);
		return reply_error(rep, 500, "generate_data(%" PRIu64 ") returned %d", seq, g);
	}
	const void *p;
	size_t len;
	ir_out_get(o, 0, &p, &len);
	rep->body = malloc(len ? len : 1);
	if (rep->body) {
		memcpy(rep->body, p, len);
		rep->len = len;
	}
	ir_out_free(o);
	return rep->body ? 0 : -ENOMEM;
}

/* ---- HTTP ---- */

static int http_handle(void *arg, const struct ir_wd_call *call, struct ir_wd_reply *rep)
{
	struct entry *e = arg;
	static __thread struct hdrs h;
	make_call_id(call, h.call_id, sizeof(h.call_id));
	h.timing[0] = '\0';
	rep->headers[0].name = "X-Call-Id";
	rep->headers[0].value = h.call_id;
	int rc;
	bool post = strcmp(call->method, "POST") == 0;
	if (strcmp(call->path, "/bench") == 0 && post)
		return run_bench(e, call, rep);
	if (strcmp(call->path, "/async") == 0 && post)
		return run_async(e, call, rep, &h);
	if (strcmp(call->path, "/generate") == 0 && strcmp(call->method, "GET") == 0)
		return run_generate(e, call, rep);
	if (strcmp(call->path, "/") != 0 && strcmp(call->path, "") != 0)
		return reply_error(rep, 404,
				   "no such path \"%s\": POST / runs the workflow, POST /async, "
				   "POST /bench?n=&concurrency=",
				   call->path);
	if (!post && strcmp(call->method, "PUT") != 0)
		return reply_error(rep, 405, "use POST with the workflow's input as the body");
	rc = run_sync(e, call, rep, &h);
	/* X-Duration-Seconds is the watchdog's (of-watchdog sets it too). */
	rep->headers[1].name = "Server-Timing";
	rep->headers[1].value = h.timing;
	return rc;
}

/* ---- life ---- */

static void on_drain(void *arg)
{
	struct entry *e = arg;
	ir_info(LOG, "SIGTERM: leaving the routing tables");
	ir_node_leave(e->node);
}

static int load_workflow(struct entry *e, char *err, size_t errlen)
{
	char *slice = ir_ccc_slice(ir_node_ccc(e->node));
	if (!slice)
		return snprintf(err, errlen, "no workflow from the coordinator"), -EPROTO;
	int rc = ir_workflow_parse(slice, strlen(slice), NULL, &e->wf, err, errlen);
	free(slice);
	if (rc)
		return rc;
	for (size_t i = 0; i < IR_WF_MAX_FNS; i++)
		e->sink_ord[i] = -1;
	for (size_t i = 0; i < e->wf.nsinks; i++)
		e->sink_ord[e->wf.sinks[i]] = (int16_t)i;
	return 0;
}

int ir_entry_main(ir_generate_fn gen)
{
	struct ir_wd_config cfg;
	int rc = ir_instance_config(PROG, &cfg);
	if (rc)
		return rc;
	int status = 2;
	char err[1024];
	struct entry *e = calloc(1, sizeof(*e));
	struct ir_node_cfg ncfg;
	uint32_t timeout_ms;
	if (!e)
		goto out;
	e->gen = gen;
	if (ir_env_u32_say(PROG, "IROUTE_RETRY_MS", 3000, 0, 3600000, &e->retry_ms) ||
	    ir_env_u32_say(PROG, "IROUTE_TIMEOUT_MS", 30000, 0, 3600000, &timeout_ms))
		goto out;
	e->default_timeout_ns = (uint64_t)(timeout_ms ? timeout_ms : 30000) * 1000000ull;
	if (ir_node_cfg_env(&ncfg, true, cfg.port, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	if (getrandom(&e->rng, sizeof(e->rng), 0) != sizeof(e->rng))
		e->rng = ir_now_ns() ^ (uint64_t)getpid() << 32;
	pthread_mutex_init(&e->hmu, NULL);
	pthread_mutex_init(&e->cmu, NULL);
	pthread_cond_init(&e->ccv, NULL);
	status = 1;
	if ((rc = ir_otab_init(&e->ids, idref_hash))) {
		fprintf(stderr, PROG ": out of memory\n");
		goto out;
	}
	struct ir_node_ops ops = {
	    .on_result = on_result, .on_undelivered = on_undelivered, .arg = e};
	if ((rc = ir_node_start(&e->node, &ncfg, &ops, err, sizeof(err))) ||
	    (rc = load_workflow(e, err, sizeof(err)))) {
		fprintf(stderr, PROG ": %s\n", err);
		goto stop;
	}
	if ((rc = -pthread_create(&e->cthread, NULL, callback_thread, e))) {
		fprintf(stderr, PROG ": thread: %s\n", strerror(-rc));
		goto stop;
	}
	ir_info(LOG, "workflow \"%s\": %zu entry function(s), %zu sink(s); retry after %u ms",
		e->wf.name, e->wf.nentry, e->wf.nsinks, e->retry_ms);
	rc = ir_instance_serve(PROG, &cfg, http_handle, e, on_drain, e);
	status = rc == 0 || rc == -ETIMEDOUT ? 0 : 1;
	if (rc == -ETIMEDOUT)
		_exit(0); /* requests still wait on the loop: nothing can be freed */
	pthread_mutex_lock(&e->cmu);
	e->cstop = true;
	pthread_cond_signal(&e->ccv);
	pthread_mutex_unlock(&e->cmu);
	pthread_join(e->cthread, NULL);
stop:
	ir_node_stop(e->node);
	ir_otab_release(&e->ids);
	ir_workflow_free(&e->wf);
out:
	free(e);
	ir_wd_config_release(&cfg);
	return status;
}
