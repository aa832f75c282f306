/* central.c - iroute-bench-central: the design iRoute replaces, a central
 * orchestrator that relays every hop of a workflow through itself over
 * HTTP.  It is the baseline of DESIGN §8: the same workflow.json and the
 * same functions, but each edge costs two HTTP exchanges through this
 * process (result back here, input out again) instead of one direct hop.
 *
 * Why this design: it is the gateway-driven workflow engine at its
 * fairest, so that the comparison measures the relaying and nothing else:
 * keep-alive connections pooled per function instance, the functions of
 * one topological level called at once, no queue, no serialisation beyond
 * HTTP framing, the join's k inputs sent from the buffers they arrived in
 * (no concatenation copy).  Rejected: going through an OpenFaaS gateway
 * per hop (a second relay would make the baseline look worse than the
 * design it stands for), libcurl (httpc.c is the project's client).
 *
 * One request (POST / on the watchdog front, mode iroute):
 *     level 0: every entry function gets the request body
 *     level L: a function whose predecessors are all at levels < L; its
 *              input is its predecessor's output, or for a join the k
 *              outputs in workflow.json's prev order, concatenated, with
 *              "X-Iroute-Inputs: L0,L1,..." (the function contract)
 *     answer:  the sink's output (its Content-Type); several sinks: a JSON
 *              object keyed by sink name (an output that is JSON is
 *              embedded as is, any other as a JSON string)
 * Each function is asked once, without ?next=, and its common output goes
 * to every successor.  The functions of a level run concurrently: the
 * request's thread calls the first, a pool of worker threads the others;
 * the request's thread takes back any call no worker has picked up yet,
 * so a saturated pool degrades to sequential calls, never to a deadlock.
 *
 * Errors, as {"error":"...","function":"name"} (application/json), from
 * the first function of the first failed level (topological order):
 *     the function answered non-2xx   its status; its "error" text when
 *                                     the body is JSON with one, else the
 *                                     body's first line
 *     no instance could be reached    502 (each instance of the function
 *                                     is tried once, round-robin start)
 *     the connection failed after the request went out, a malformed or
 *                                     oversized answer: 502
 *     exec_timeout (or X-Timeout) ran out during a call: 504 (calls are
 *                                     cut 20 ms before it, so that the
 *                                     answer is ours and names the function)
 *
 * Environment (besides the watchdog's own, iroute/wdconfig.h; mode must
 * be iroute, the default here):
 *   IROUTE_WORKFLOW            workflow.json [./workflow.json]
 *   IROUTE_CENTRAL_FUNCTIONS   required: "name=http://host:port[,url...];name2=..."
 *                              every function of the workflow, each with
 *                              one or more instances (round-robin)
 *   IROUTE_CENTRAL_WORKERS     worker threads for concurrent calls [64]
 *   IROUTE_CENTRAL_CONNECT_MS  bound on one connect() [3000]
 *   IROUTE_LOCK_FILE, IROUTE_METRICS_PORT  as for iroute-watchdog
 * Exit status: 0 after SIGTERM, 2 for a configuration error, 1 when
 * serving failed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "httpc.h"
#include "envnum.h"
#include "iroute/log.h"
#include "iroute/wdconfig.h"
#include "iroute/workflow.h"
#include "watchdog.h"

extern char **environ;

#define PROG "iroute-bench-central"
#define LOGC "central"
#define IDLE_MAX 64 /* kept-alive connections parked per instance */
#define DEADLINE_MARGIN_NS (20 * 1000000ull)

struct inst {
	char *spec; /* the URL as configured */
	struct ir_url url;
	char host[300];	    /* Host header: host:port, IPv6 in brackets */
	const char *target; /* request target: the URL's path, or "/" */
	pthread_mutex_t mu;
	struct ir_httpc *idle[IDLE_MAX];
	size_t nidle;
};

struct fnode {
	struct inst *inst;
	size_t ninst;
	atomic_uint rr;
};

/* One input of a call (borrowed). */
struct part {
	const void *data;
	size_t len;
};

struct job;

struct pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail; /* queued calls, FIFO */
	pthread_t *threads;
	size_t nthreads;
	bool stop;
};

struct central {
	struct ir_workflow wf;
	struct fnode *fn; /* wf.nfns */
	uint32_t *order;  /* functions by (level, topological position) */
	size_t *lvl;	  /* level L is order[lvl[L] .. lvl[L+1]) */
	size_t nlevels;
	uint64_t connect_ns;
	uint64_t max_body; /* 0 = none */
	struct pool pool;
};

/* The outcome of one function's call. */
struct out {
	int status; /* 200 = success; else the answer's status */
	char *p;    /* success: the output (malloc'ed, NUL after len) */
	size_t len;
	char *err; /* failure: the message (malloc'ed) */
	char ctype[128];
};

struct run {
	struct central *c;
	const struct ir_wd_call *call;
	const char *call_id; /* X-Call-Id of the request, or NULL */
	struct out *outs;    /* wf.nfns */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t pending; /* calls handed to workers and not finished */
};

struct job {
	struct run *run;
	uint32_t fn;
	struct job *prev, *next;
	bool queued; /* in the pool's queue (under pool.mu) */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void out_fail(struct out *o, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void out_fail(struct out *o, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	free(o->p);
	o->p = NULL;
	o->len = 0;
	o->status = status;
	o->err = strdup(msg);
}

/* ---- connections ---- */

/* A parked connection that is still usable, or NULL. */
static struct ir_httpc *conn_take(struct inst *in)
{
	for (;;) {
		pthread_mutex_lock(&in->mu);
		struct ir_httpc *c = in->nidle ? in->idle[--in->nidle] : NULL;
		pthread_mutex_unlock(&in->mu);
		if (!c || ir_httpc_idle_ok(c))
			return c;
		ir_httpc_close(c);
	}
}

static void conn_park(struct inst *in, struct ir_httpc *c)
{
	ir_httpc_set_deadline(c, 0);
	pthread_mutex_lock(&in->mu);
	if (in->nidle < IDLE_MAX) {
		in->idle[in->nidle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&in->mu);
	ir_httpc_close(c);
}

/* The response body into @o->p (NUL-terminated). */
static int read_all(struct ir_httpc *c, const struct ir_httpc_resp *r, uint64_t max, struct out *o)
{
	if (max && r->content_length > 0 && (uint64_t)r->content_length > max)
		return -E2BIG;
	size_t cap = r->content_length > 0 ? (size_t)r->content_length : 4096, n = 0;
	char *p = malloc(cap + 1);
	if (!p)
		return -ENOMEM;
	while (!ir_httpc_body_done(c)) {
		if (n == cap) {
			if (max && cap >= max) {
				free(p);
				return -E2BIG;
			}
			size_t ncap = cap * 2;
			if (max && ncap > max)
				ncap = max;
			char *q = realloc(p, ncap + 1);
			if (!q) {
				free(p);
				return -ENOMEM;
			}
			p = q;
			cap = ncap;
		}
		ssize_t k = ir_httpc_read_body(c, p + n, cap - n);
		if (k < 0) {
			free(p);
			return (int)k;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	p[n] = '\0';
	o->p = p;
	o->len = n;
	return 0;
}

/* The error text of a function's non-2xx answer: "error" of a JSON body,
 * else the body's first line (at most 300 bytes). */
static void answer_error(const struct out *o, char *buf, size_t len)
{
	cJSON *j = o->p ? cJSON_ParseWithLength(o->p, o->len) : NULL;
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
	if (cJSON_IsString(e)) {
		snprintf(buf, len, "%s", e->valuestring);
	} else {
		size_t n = o->p ? strcspn(o->p, "\r\n") : 0;
		if (n > 300)
			n = 300;
		if (n)
			snprintf(buf, len, "%.*s", (int)n, o->p);
		else
			snprintf(buf, len, "status %d with no message", o->status);
	}
	cJSON_Delete(j);
}

/* One POST on @c: the head, then the @nparts inputs (@total bytes) as
 * one body.  Returns 0 with the answer (any status) in @o and *@keep when
 * the connection can carry the next request, or -errno. */
static int exchange(struct central *ce, struct ir_httpc *c, const char *head, size_t hlen,
		    const struct part *parts, size_t nparts, size_t total, struct out *o,
		    bool *keep)
{
	int rc = ir_httpc_send_head(c, head, hlen, (int64_t)total);
	for (size_t i = 0; rc == 0 && i < nparts; i++)
		rc = ir_httpc_send_body(c, parts[i].data, parts[i].len);
	if (rc == 0)
		rc = ir_httpc_end_body(c);
	struct ir_httpc_resp r;
	if (rc == 0)
		rc = ir_httpc_read_head(c, false, &r);
	if (rc)
		return rc;
	o->status = r.status;
	const char *ct = ir_httpc_header(&r, "Content-Type");
	snprintf(o->ctype, sizeof(o->ctype), "%s", ct ? ct : "");
	if ((rc = read_all(c, &r, ce->max_body, o)))
		return rc;
	*keep = r.keep_alive && ir_httpc_body_done(c);
	return 0;
}

/* Call function @fi once with its inputs; fills run->outs[fi]. */
static void call_fn(struct run *run, uint32_t fi)
{
	struct central *ce = run->c;
	const struct ir_wf_fn *f = &ce->wf.fns[fi];
	struct fnode *fn = &ce->fn[fi];
	struct out *o = &run->outs[fi];
	size_t nparts = f->nprev ? f->nprev : 1, total = 0;
	struct part one, *parts = nparts > 1 ? calloc(nparts, sizeof(*parts)) : &one;
	size_t hcap = 512 + 21 * nparts + (run->call_id ? strlen(run->call_id) : 0) + 2048;
	char *head = malloc(hcap);
	if (!parts || !head) {
		out_fail(o, 500, "out of memory");
		goto out_free;
	}
	if (!f->nprev) {
		one = (struct part){run->call->body, run->call->body_len};
		total = one.len;
	} else {
		for (size_t k = 0; k < f->nprev; k++) {
			const struct out *p = &run->outs[f->prev[k]];
			parts[k] = (struct part){p->p ? p->p : "", p->len};
			total += p->len;
		}
	}

	/* Calls end a little before the request's deadline, so that the 504
	 * is ours and names the function (the watchdog would replace a late
	 * answer with its own anonymous one). */
	uint64_t deadline = run->call->deadline_ns;
	if (deadline > DEADLINE_MARGIN_NS)
		deadline -= DEADLINE_MARGIN_NS;
	unsigned start = atomic_fetch_add(&fn->rr, 1);
	char why[1024] = "";
	for (size_t t = 0; t < fn->ninst; t++) {
		struct inst *in = &fn->inst[(start + t) % fn->ninst];
		size_t hl = (size_t)snprintf(head, hcap, "POST %s HTTP/1.1\r\nHost: %s\r\n",
					     in->target, in->host);
		if (nparts > 1) {
			hl += (size_t)snprintf(head + hl, hcap - hl, "X-Iroute-Inputs: ");
			for (size_t k = 0; k < nparts; k++)
				hl += (size_t)snprintf(head + hl, hcap - hl, "%s%zu", k ? "," : "",
						       parts[k].len);
			hl += (size_t)snprintf(head + hl, hcap - hl, "\r\n");
		}
		if (run->call_id)
			hl += (size_t)snprintf(head + hl, hcap - hl, "X-Call-Id: %s\r\n",
					       run->call_id);
		hl += (size_t)snprintf(head + hl, hcap - hl, "\r\n");

		/* A parked connection first; a reused one that fails is
		 * retried once on a new one (the function may have closed it
		 * just then; its calls are idempotent). */
		for (int attempt = 0; attempt < 2; attempt++) {
			struct ir_httpc *c = attempt == 0 ? conn_take(in) : NULL;
			bool reused = c != NULL;
			if (!c) {
				uint64_t cd = now_ns() + ce->connect_ns;
				if (deadline && deadline < cd)
					cd = deadline;
				int fd = ir_httpc_connect(&in->url, cd);
				if (fd < 0) {
					snprintf(why, sizeof(why), "%s: connect: %s", in->spec,
						 fd == -ETIMEDOUT ? "timed out" : strerror(-fd));
					if (fd == -ETIMEDOUT && deadline && now_ns() >= deadline) {
						out_fail(o, 504,
							 "no answer from %s before the deadline",
							 in->spec);
						goto out_free;
					}
					break; /* the next instance */
				}
				if (ir_httpc_open(&c, fd) != 0) {
					out_fail(o, 500, "out of memory");
					goto out_free;
				}
			}
			ir_httpc_set_deadline(c, deadline);
			bool keep = false;
			int rc = exchange(ce, c, head, hl, nparts > 1 ? parts : &one, nparts, total,
					  o, &keep);
			if (rc == 0) {
				if (keep)
					conn_park(in, c);
				else
					ir_httpc_close(c);
				if (o->status / 100 != 2) {
					char msg[512];
					answer_error(o, msg, sizeof(msg));
					out_fail(o, o->status, "%s", msg);
				} else {
					o->status = 200;
				}
				goto out_free;
			}
			ir_httpc_close(c);
			free(o->p);
			o->p = NULL;
			if (rc == -ETIMEDOUT) {
				out_fail(o, 504, "no answer from %s before the deadline", in->spec);
				goto out_free;
			}
			if (reused && (rc == -ECONNRESET || rc == -EPIPE) && attempt == 0)
				continue;
			if (rc == -E2BIG)
				out_fail(o, 502, "%s: answer over the %llu-byte limit", in->spec,
					 (unsigned long long)ce->max_body);
			else
				out_fail(o, 502, "%s: %s", in->spec,
					 rc == -EPROTO ? "malformed HTTP answer" : strerror(-rc));
			goto out_free;
		}
	}
	out_fail(o, 502, "no instance reachable (%s)", why);
out_free:
	if (parts != &one)
		free(parts);
	free(head);
}

/* ---- the worker pool ---- */

static void job_done(struct run *run)
{
	pthread_mutex_lock(&run->mu);
	if (--run->pending == 0)
		pthread_cond_broadcast(&run->cv);
	pthread_mutex_unlock(&run->mu);
}

static void *worker(void *arg)
{
	struct pool *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		if (!p->head)
			break;
		struct job *j = p->head;
		p->head = j->next;
		if (p->head)
			p->head->prev = NULL;
		else
			p->tail = NULL;
		j->queued = false;
		pthread_mutex_unlock(&p->mu);
		struct run *run = j->run; /* j lives until job_done() */
		call_fn(run, j->fn);
		job_done(run);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void unlink_job(struct pool *p, struct job *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		p->head = j->next;
	if (j->next)
		j->next->prev = j->prev;
	else
		p->tail = j->prev;
	j->queued = false;
}

/* Call the @n functions @fns concurrently; returns once all are done. */
static void run_level(struct run *run, const uint32_t *fns, size_t n)
{
	struct pool *p = &run->c->pool;
	struct job *jobs = n > 1 && p->nthreads ? calloc(n - 1, sizeof(*jobs)) : NULL;
	if (!jobs) { /* one function, or no memory for the jobs: in turn */
		for (size_t i = 0; i < n; i++)
			call_fn(run, fns[i]);
		return;
	}
	run->pending = n - 1;
	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < n - 1; i++) {
		struct job *j = &jobs[i];
		*j = (struct job){.run = run, .fn = fns[i + 1], .prev = p->tail, .queued = true};
		if (p->tail)
			p->tail->next = j;
		else
			p->head = j;
		p->tail = j;
	}
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);

	call_fn(run, fns[0]);
	/* Take back, one at a time, the calls no worker has started. */
	for (size_t i = 0; i < n - 1; i++) {
		pthread_mutex_lock(&p->mu);
		bool mine = jobs[i].queued;
		if (mine)
			unlink_job(p, &jobs[i]);
		pthread_mutex_unlock(&p->mu);
		if (mine) {
			call_fn(run, jobs[i].fn);
			job_done(run);
		}
	}
	pthread_mutex_lock(&run->mu);
	while (run->pending)
		pthread_cond_wait(&run->cv, &run->mu);
	pthread_mutex_unlock(&run->mu);
	free(jobs);
}

static int pool_start(struct pool *p, size_t n)
{
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->threads = calloc(n ? n : 1, sizeof(*p->threads));
	if (!p->threads)
		return -ENOMEM;
	for (; p->nthreads < n; p->nthreads++) {
		int rc = pthread_create(&p->threads[p->nthreads], NULL, worker, p);
		if (rc)
			return -rc;
	}
	return 0;
}

static void pool_stop(struct pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (size_t i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	free(p->threads);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
}

/* ---- the HTTP handler ---- */

static int reply_json(struct ir_wd_reply *rep, int status, cJSON *j)
{
	char *s = j ? cJSON_PrintUnformatted(j) : NULL;
	cJSON_Delete(j);
	if (!s) {
		snprintf(rep->error, sizeof(rep->error), "out of memory");
		return -ENOMEM;
	}
	rep->status = status;
	rep->content_type = "application/json";
	rep->body = s;
	rep->len = strlen(s);
	return 0;
}

static int reply_error(struct ir_wd_reply *rep, int status, const char *msg, const char *fn)
{
	cJSON *j = cJSON_CreateObject();
	if (j && (!cJSON_AddStringToObject(j, "error", msg) ||
		  (fn && !cJSON_AddStringToObject(j, "function", fn)))) {
		cJSON_Delete(j);
		j = NULL;
	}
	return reply_json(rep, status, j);
}

static int central_handle(void *arg, const struct ir_wd_call *call, struct ir_wd_reply *rep)
{
	struct central *ce = arg;
	if (strcmp(call->path, "/") != 0) {
		char msg[300];
		snprintf(msg, sizeof(msg), "no such path: %.200s (the workflow is POST /)",
			 call->path);
		return reply_error(rep, 404, msg, NULL);
	}
	if (strcmp(call->method, "POST") != 0)
		return reply_error(rep, 405, "the workflow runs on POST /", NULL);

	struct run run = {.c = ce, .call = call, .call_id = ir_wd_call_header(call, "X-Call-Id")};
	if (run.call_id && strpbrk(run.call_id, "\r\n"))
		run.call_id = NULL;
	run.outs = calloc(ce->wf.nfns, sizeof(*run.outs));
	if (!run.outs)
		return reply_error(rep, 500, "out of memory", NULL);
	pthread_mutex_init(&run.mu, NULL);
	pthread_cond_init(&run.cv, NULL);

	int rc = 0;
	const struct out *failed = NULL;
	uint32_t failed_fn = 0;
	for (size_t l = 0; l < ce->nlevels && !failed; l++) {
		run_level(&run, ce->order + ce->lvl[l], ce->lvl[l + 1] - ce->lvl[l]);
		for (size_t i = ce->lvl[l]; i < ce->lvl[l + 1] && !failed; i++)
			if (run.outs[ce->order[i]].status != 200) {
				failed_fn = ce->order[i];
				failed = &run.outs[failed_fn];
			}
	}
	if (failed) {
		const char *name = ce->wf.fns[failed_fn].name;
		ir_warn(LOGC, "function \"%s\" failed (%d): %s", name, failed->status,
			failed->err ? failed->err : "?");
		rc = reply_error(rep, failed->status, failed->err ? failed->err : "out of memory",
				 name);
	} else if (ce->wf.nsinks == 1) {
		/* Borrowed until the handler returns, then copied by the
		 * watchdog on this thread; run.outs is gone by then. */
		static _Thread_local char ctype[128];
		struct out *o = &run.outs[ce->wf.sinks[0]];
		rep->body = o->p;
		rep->len = o->len;
		o->p = NULL;
		memcpy(ctype, o->ctype, sizeof(ctype));
		rep->content_type = ctype[0] ? ctype : NULL;
	} else {
		cJSON *j = cJSON_CreateObject();
		for (size_t s = 0; j && s < ce->wf.nsinks; s++) {
			const struct out *o = &run.outs[ce->wf.sinks[s]];
			cJSON *v = cJSON_ParseWithLength(o->p, o->len);
			if (!v)
				v = cJSON_CreateString(o->p);
			if (!v || !cJSON_AddItemToObject(j, ce->wf.fns[ce->wf.sinks[s]].name, v)) {
				cJSON_Delete(v);
				cJSON_Delete(j);
				j = NULL;
			}
		}
		rc = reply_json(rep, 200, j);
	}
	for (size_t i = 0; i < ce->wf.nfns; i++) {
		free(run.outs[i].p);
		free(run.outs[i].err);
	}
	free(run.outs);
	pthread_cond_destroy(&run.cv);
	pthread_mutex_destroy(&run.mu);
	return rc;
}

/* ---- configuration ---- */

static int add_inst(struct fnode *fn, const char *url, size_t len)
{
	char err[512];
	struct inst *v = realloc(fn->inst, (fn->ninst + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	fn->inst = v;
	struct inst *in = &v[fn->ninst];
	memset(in, 0, sizeof(*in));
	if (!(in->spec = strndup(url, len)))
		return -ENOMEM;
	fn->ninst++;
	pthread_mutex_init(&in->mu, NULL);
	if (ir_url_parse(in->spec, &in->url, err, sizeof(err))) {
		fprintf(stderr, PROG ": IROUTE_CENTRAL_FUNCTIONS: %s\n", err);
		return -EINVAL;
	}
	snprintf(in->host, sizeof(in->host), strchr(in->url.host, ':') ? "[%s]:%u" : "%s:%u",
		 in->url.host, (unsigned)in->url.port);
	in->target = in->url.prefix[0] ? in->url.prefix : "/";
	return 0;
}

/* IROUTE_CENTRAL_FUNCTIONS into ce->fn: every function exactly once, each
 * with at least one URL. */
static int parse_functions(struct central *ce, const char *spec)
{
	const struct ir_workflow *wf = &ce->wf;
	const char *p = spec;
	while (*p) {
		size_t n = strcspn(p, ";");
		const char *eq = memchr(p, '=', n);
		if (n == 0) {
			p++;
			continue;
		}
		if (!eq) {
			fprintf(stderr,
				PROG
				": IROUTE_CENTRAL_FUNCTIONS: \"%.*s\": want name=url[,url...]\n",
				(int)n, p);
			return -EINVAL;
		}
		char name[IR_WF_MAX_NAME + 2];
		size_t nl = (size_t)(eq - p);
		int fi = -1;
		if (nl < sizeof(name)) {
			memcpy(name, p, nl);
			name[nl] = '\0';
			fi = ir_workflow_find(wf, name);
		}
		if (fi < 0) {
			fprintf(
			    stderr,
			    PROG
			    ": IROUTE_CENTRAL_FUNCTIONS: \"%.*s\" is not a function of workflow "
			    "\"%s\"\n",
			    (int)nl, p, wf->name);
			return -EINVAL;
		}
		struct fnode *fn = &ce->fn[fi];
		if (fn->ninst) {
			fprintf(stderr,
				PROG ": IROUTE_CENTRAL_FUNCTIONS: function \"%s\" listed twice\n",
				name);
			return -EINVAL;
		}
		const char *u = eq + 1, *end = p + n;
		while (u < end) {
			size_t ul = strcspn(u, ",;");
			if (ul) {
				int rc = add_inst(fn, u, ul);
				if (rc)
					return rc;
			}
			u += ul + 1;
		}
		if (!fn->ninst) {
			fprintf(stderr,
				PROG ": IROUTE_CENTRAL_FUNCTIONS: function \"%s\" has no URL\n",
				name);
			return -EINVAL;
		}
		p = end + (*end == ';');
	}
	for (size_t i = 0; i < wf->nfns; i++)
		if (!ce->fn[i].ninst) {
			fprintf(
			    stderr,
			    PROG
			    ": IROUTE_CENTRAL_FUNCTIONS: function \"%s\" of workflow \"%s\" has "
			    "no instance\n",
			    wf->fns[i].name, wf->name);
			return -EINVAL;
		}
	return 0;
}

/* Levels: an entry is level 0, any other function one above its highest
 * predecessor; order[] lists the functions by level, topological order
 * within a level. */
static int make_levels(struct central *ce)
{
	const struct ir_workflow *wf = &ce->wf;
	uint32_t *level = calloc(wf->nfns, sizeof(*level));
	ce->order = calloc(wf->nfns, sizeof(*ce->order));
	ce->lvl = calloc(wf->nfns + 1, sizeof(*ce->lvl));
	if (!level || !ce->order || !ce->lvl) {
		free(level);
		return -ENOMEM;
	}
	uint32_t top = 0;
	for (size_t t = 0; t < wf->nfns; t++) {
		const struct ir_wf_fn *f = &wf->fns[wf->topo[t]];
		uint32_t l = 0;
		for (size_t k = 0; k < f->nprev; k++)
			if (level[f->prev[k]] + 1 > l)
				l = level[f->prev[k]] + 1;
		level[wf->topo[t]] = l;
		if (l > top)
			top = l;
	}
	ce->nlevels = top + 1;
	size_t n = 0;
	for (uint32_t l = 0; l <= top; l++) {
		ce->lvl[l] = n;
		for (size_t t = 0; t < wf->nfns; t++)
			if (level[wf->topo[t]] == l)
				ce->order[n++] = wf->topo[t];
	}
	ce->lvl[top + 1] = n;
	free(level);
	return 0;
}

static void central_free(struct central *ce)
{
	for (size_t i = 0; ce->fn && i < ce->wf.nfns; i++) {
		for (size_t k = 0; k < ce->fn[i].ninst; k++) {
			struct inst *in = &ce->fn[i].inst[k];
			while (in->nidle)
				ir_httpc_close(in->idle[--in->nidle]);
			pthread_mutex_destroy(&in->mu);
			free(in->spec);
		}
		free(ce->fn[i].inst);
	}
	free(ce->fn);
	free(ce->order);
	free(ce->lvl);
	ir_workflow_free(&ce->wf);
}

/* Everything after the watchdog configuration; returns the exit status. */
static int serve(const struct ir_wd_config *cfg)
{
	char err[1024];
	if (cfg->mode != IR_WD_MODE_IROUTE) {
		fprintf(stderr, PROG ": mode must be \"iroute\" (or unset) for the orchestrator\n");
		return 2;
	}
	uint32_t mport, workers, connect_ms;
	if (ir_env_u32_say(PROG, "IROUTE_METRICS_PORT", 0, 0, 65535, &mport) ||
	    ir_env_u32_say(PROG, "IROUTE_CENTRAL_WORKERS", 64, 0, 4096, &workers) ||
	    ir_env_u32_say(PROG, "IROUTE_CENTRAL_CONNECT_MS", 3000, 1, 600000, &connect_ms))
		return 2;
	const char *spec = getenv("IROUTE_CENTRAL_FUNCTIONS");
	if (!spec || !*spec) {
		fprintf(stderr, PROG ": IROUTE_CENTRAL_FUNCTIONS is required "
				     "(\"name=http://host:port[,url...];name2=...\")\n");
		return 2;
	}
	static struct central ce;
	const char *path = getenv("IROUTE_WORKFLOW");
	if (ir_workflow_load(path && *path ? path : "workflow.json", &ce.wf, err, sizeof(err))) {
		fprintf(stderr, PROG ": %s\n", err);
		return 2;
	}
	ce.connect_ns = (uint64_t)connect_ms * 1000000u;
	ce.max_body = cfg->max_body_bytes;
	if (!(ce.fn = calloc(ce.wf.nfns, sizeof(*ce.fn))) || make_levels(&ce) != 0) {
		fprintf(stderr, PROG ": out of memory\n");
		central_free(&ce);
		return 1;
	}
	int rc = parse_functions(&ce, spec);
	if (rc) {
		if (rc == -ENOMEM)
			fprintf(stderr, PROG ": out of memory\n");
		central_free(&ce);
		return rc == -ENOMEM ? 1 : 2;
	}
	if ((rc = pool_start(&ce.pool, workers)) != 0) {
		fprintf(stderr, PROG ": starting %u workers: %s\n", workers, strerror(-rc));
		return 1;
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	size_t ninst = 0;
	for (size_t i = 0; i < ce.wf.nfns; i++)
		ninst += ce.fn[i].ninst;
	ir_info(LOGC,
		"workflow \"%s\": %zu function(s) in %zu level(s), %zu instance(s), %u workers",
		ce.wf.name, ce.wf.nfns, ce.nlevels, ninst, workers);
	struct ir_watchdog_opts opts = {.lock_path = getenv("IROUTE_LOCK_FILE"),
					.metrics_port = (uint16_t)mport,
					.handler = central_handle,
					.handler_arg = &ce};
	if (opts.lock_path && !*opts.lock_path)
		opts.lock_path = NULL;
	rc = ir_watchdog_run(cfg, &opts, err, sizeof(err));
	if (rc == -ETIMEDOUT) {
		ir_warn(LOGC, "%s", err);
		_exit(0); /* calls still running use the state: do not free it */
	}
	pool_stop(&ce.pool);
	central_free(&ce);
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
	/* mode defaults to iroute here (the only mode the orchestrator has). */
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof(*env));
	if (!env) {
		fprintf(stderr, PROG ": out of memory\n");
		return 2;
	}
	memcpy(env, environ, n * sizeof(*env));
	if (!getenv("mode"))
		env[n] = "mode=iroute";
	int rc = ir_wd_config_load(&cfg, env, err, sizeof(err));
	free(env);
	if (rc) {
		fprintf(stderr, PROG ": %s\n", rc == -ENOMEM ? "out of memory" : err);
		return 2;
	}
	/* Blocked before any thread starts, so that every thread inherits the
	 * mask and the signals reach only the watchdog's signalfd. */
	ir_watchdog_block_signals();
	rc = serve(&cfg);
	ir_wd_config_release(&cfg);
	return rc;
}
