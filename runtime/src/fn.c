/* fn.c - a workflow function instance (template c-func): frames in, the
 * join, the handler on a worker pool, outputs one hop on (DESIGN.md §4).
 *
 * The path of a request through an instance, all on the I/O thread but
 * the handler:
 *   DATA  -> (a join's branch for a request another instance owns under
 *            the request's epoch: forwarded there once, then ACKed)
 *         -> ir_join_add(): every input goes through the join collector,
 *            k = 1 too, so duplicates are dropped by one rule
 *         -> READY: a job on the pool (full: the request fails with 429,
 *            the push back of DESIGN §4 "Threads")
 *   worker: handle(); ir_out_emit() or the return posts the outputs back
 *   I/O:  each output to its successor (ir_node_send()), or the RESULT to
 *         the entry for a sink; an error, a crash or a handler timeout
 *         becomes an ERROR frame to the entry; then every input is ACKed.
 * Each input buffer carries a struct inhdr in front of its payload (the
 * connection to ACK on and the frame fields the outputs need), so the
 * join's buffers are the only per-branch allocation.
 *
 * HTTP: POST / runs the handler alone on the request body (the gateway's
 * path, and what a central orchestrator calls): one input, or k inputs
 * split by X-Iroute-Inputs: L0,L1,...; ?next=NAME returns that
 * successor's per-edge output.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "envnum.h"
#include "instance.h"
#include "iroute/handler.h"
#include "iroute/log.h"
#include "join.h"
#include "node.h"
#include "pool.h"

#define PROG "iroute-func"
#define LOG "fn"

struct inhdr {
	uint64_t conn_id;
	uint64_t origin, start_ns, deadline_rt;
	uint32_t epoch;
	uint16_t branch, attempt;
};

struct fn {
	struct ir_node *node;
	struct ir_handler_vt vt;
	void *state;
	struct ir_join *join;
	struct ir_pool *pool;
	char name[64];
	uint32_t handler_timeout_ms;
	size_t out_max;
	uint64_t join_timer, join_timer_at;
	atomic_uint running; /* jobs submitted, not done */
	atomic_bool draining;
};

struct job {
	struct fn *f;
	struct ir_join_ready r;
	struct inhdr h; /* of branch 0: the request's fields */
	uint64_t req;
	struct ir_out *out;
	int rc, sig;
	bool sent, timed_out;
	uint64_t timer;
	/* HTTP (run alone): the waiter */
	bool http;
	const struct ir_in *hin;
	size_t hnin;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool finished;
	int refs;
};

/* What this function is in the workflow (the node parsed the slice before
 * its I/O thread started). */
static const struct ir_node_slice *sl(const struct fn *f)
{
	return ir_node_slice(f->node);
}

/* ---- errors to the entry ---- */

static void send_error(struct fn *f, const struct inhdr *h, uint64_t req, int status,
		       const char *msg)
{
	char *s = ir_node_error_json(f->name, status, msg);
	if (!s)
		return;
	size_t len = strlen(s);
	void *p = ir_node_alloc(len);
	if (p) {
		memcpy(p, s, len);
		struct ir_node_msg m = {.type = IR_FRAME_ERROR,
					.branch = sl(f)->index,
					.req = req,
					.origin = h->origin,
					.epoch = h->epoch,
					.start_ns = h->start_ns,
					.deadline_rt = h->deadline_rt};
		char why[256];
		if (ir_node_send(f->node, &m, p, len, why, sizeof(why)) != 0)
			ir_warn(LOG, "request %016llx: error not delivered (%s): %s",
				(unsigned long long)req, why, msg);
	}
	free(s);
}

static void on_undelivered(void *arg, const struct ir_node_msg *m, int status, const char *why)
{
	struct fn *f = arg;
	if (m->type == IR_FRAME_ERROR)
		return;
	struct inhdr h = {.origin = m->origin,
			  .start_ns = m->start_ns,
			  .deadline_rt = m->deadline_rt,
			  .epoch = m->epoch};
	char msg[400];
	snprintf(msg, sizeof(msg), "output not delivered: %s", why);
	send_error(f, &h, m->req, status, msg);
}

/* ---- jobs ---- */

static void ack_inputs(struct fn *f, struct job *j)
{
	for (uint32_t i = 0; i < j->r.k; i++) {
		const struct inhdr *h = j->r.buf[i];
		struct ir_frame_hdr a = {.request_id = j->req, .branch = h->branch, .epoch = h->epoch};
		ir_node_ack(f->node, h->conn_id, &a, sl(f)->index);
	}
}

static void send_outputs(struct fn *f, struct job *j)
{
	char why[256];
	size_t n = sl(f)->sink ? 1 : sl(f)->nnext;
	for (size_t i = 0; i < n; i++) {
		const void *p;
		size_t len;
		ir_out_get(j->out, i, &p, &len);
		void *b = ir_node_alloc(len);
		if (!b) {
			send_error(f, &j->h, j->req, 500, "out of memory");
			return;
		}
		memcpy(b, p, len);
		struct ir_node_msg m = {.type = sl(f)->sink ? IR_FRAME_RESULT : IR_FRAME_DATA,
					.fn = sl(f)->sink ? 0 : sl(f)->next[i].index,
					.branch = sl(f)->sink ? sl(f)->index : sl(f)->next[i].branch,
					.req = j->req,
					.origin = j->h.origin,
					.epoch = j->h.epoch,
					.start_ns = j->h.start_ns,
					.deadline_rt = j->h.deadline_rt};
		if (ir_node_send(f->node, &m, b, len, why, sizeof(why)) != 0) {
			send_error(f, &j->h, j->req, 503, why);
			return;
		}
	}
}

static void job_free(struct job *j)
{
	ir_join_ready_free(&j->r);
	ir_out_free(j->out);
	free(j);
}

static void job_emit(struct ir_loop *loop, void *arg)
{
	struct job *j = arg;
	(void)loop;
	if (!j->timed_out && !j->sent) {
		j->sent = true;
		send_outputs(j->f, j);
	}
}

static int emit_cb(void *arg, struct ir_out *o)
{
	struct job *j = arg;
	(void)o;
	if (j->http)
		return 0; /* run alone: the reply is the output */
	return ir_node_post(j->f->node, job_emit, j);
}

static void job_done(struct ir_loop *loop, void *arg)
{
	struct job *j = arg;
	struct fn *f = j->f;
	if (j->timer)
		ir_loop_timer_cancel(loop, j->timer);
	if (!j->timed_out) {
		const char *msg = NULL;
		int st = j->out ? ir_out_status(j->out, &msg) : 0;
		char buf[300];
		if (j->sig) {
			snprintf(buf, sizeof(buf), "handler crashed (signal %d, %s)", j->sig,
				 strsignal(j->sig));
			send_error(f, &j->h, j->req, 500, buf);
		} else if (st) {
			send_error(f, &j->h, j->req, st, msg);
		} else if (j->rc < 0) {
			snprintf(buf, sizeof(buf), "handler returned %d", j->rc);
			send_error(f, &j->h, j->req, j->rc == -E2BIG ? 413 : 500, buf);
		} else if (!j->sent) {
			j->sent = true;
			send_outputs(f, j);
		}
		ack_inputs(f, j);
	}
	atomic_fetch_sub(&f->running, 1);
	job_free(j);
}

static void job_timeout(struct ir_loop *loop, void *arg)
{
	struct job *j = arg;
	(void)loop;
	j->timer = 0;
	j->timed_out = true;
	char msg[160];
	snprintf(msg, sizeof(msg), "handler timed out after %u ms", j->f->handler_timeout_ms);
	send_error(j->f, &j->h, j->req, 504, msg);
	ack_inputs(j->f, j);
}

/* Drop one of the two references of a run-alone job (the worker's and
 * the HTTP thread's; either may be last: a timed-out caller leaves
 * first).  Called with j->mu held; unlocks it. */
static void http_put(struct job *j)
{
	bool last = --j->refs == 0;
	pthread_mutex_unlock(&j->mu);
	if (last) {
		ir_out_free(j->out);
		pthread_mutex_destroy(&j->mu);
		pthread_cond_destroy(&j->cv);
		free(j);
	}
}

static void http_finish(struct job *j)
{
	pthread_mutex_lock(&j->mu);
	j->finished = true;
	pthread_cond_signal(&j->cv);
	http_put(j);
}

static void job_run(void *arg)
{
	struct job *j = arg;
	struct fn *f = j->f;
	struct ir_in inb[8], *in = inb;
	size_t nin = j->http ? j->hnin : j->r.k;
	if (!j->http && nin > 8 && !(in = calloc(nin, sizeof(*in)))) {
		j->rc = -ENOMEM;
		ir_node_post(f->node, job_done, j);
		return;
	}
	if (j->http) {
		in = (struct ir_in *)j->hin;
	} else {
		for (size_t i = 0; i < nin; i++) {
			in[i].data = (const char *)j->r.buf[i] + sizeof(struct inhdr);
			in[i].len = j->r.len[i] - sizeof(struct inhdr);
			in[i].from = sl(f)->prev[i];
		}
	}
	struct ir_req req = {.id = j->req,
			     .epoch = j->h.epoch,
			     .deadline_ns = ir_node_mono(j->h.deadline_rt),
			     .function = f->name,
			     .call_id = ""};
	j->out = ir_out_new(sl(f)->next_names, sl(f)->nnext, f->out_max, emit_cb, j);
	j->rc = j->out ? f->vt.handle(f->state, &req, in, nin, j->out) : -ENOMEM;
	if (in != inb && !j->http)
		free(in);
	if (j->http)
		http_finish(j);
	else
		ir_node_post(f->node, job_done, j);
}

static void job_crashed(void *arg, int sig)
{
	struct job *j = arg;
	j->sig = sig;
	if (j->http)
		http_finish(j);
	else
		ir_node_post(j->f->node, job_done, j);
}

static void submit(struct fn *f, struct job *j)
{
	struct ir_job pj = {.run = job_run, .crashed = job_crashed, .arg = j};
	atomic_fetch_add(&f->running, 1);
	if (ir_pool_submit(f->pool, &pj) != 0) {
		atomic_fetch_sub(&f->running, 1);
		send_error(f, &j->h, j->req, 429,
			   "overloaded: every worker is busy and the queue is full");
		ack_inputs(f, j);
		job_free(j);
		return;
	}
	if (f->handler_timeout_ms)
		j->timer = ir_loop_timer_add(ir_node_loop(f->node),
					     (uint64_t)f->handler_timeout_ms * 1000, job_timeout, j);
}

/* ---- frames in ---- */

static void join_expired(void *arg, uint64_t req, uint32_t have, uint32_t k)
{
	(void)arg;
	ir_info(LOG, "request %016llx: %u of %u inputs by its deadline; dropped",
		(unsigned long long)req, have, k);
}

static void join_tick(struct ir_loop *loop, void *arg)
{
	struct fn *f = arg;
	(void)loop;
	f->join_timer = 0;
	ir_join_expire(f->join, ir_now_ns(), join_expired, f);
	uint64_t w = ir_join_next_deadline(f->join);
	if (w) {
		uint64_t now = ir_now_ns();
		f->join_timer_at = w;
		f->join_timer = ir_loop_timer_add(loop, w > now ? (w - now) / 1000 + 1 : 0,
						  join_tick, f);
	}
}

static void arm_join(struct fn *f)
{
	uint64_t w = ir_join_next_deadline(f->join);
	if (!w || (f->join_timer && f->join_timer_at <= w))
		return;
	struct ir_loop *loop = ir_node_loop(f->node);
	if (f->join_timer)
		ir_loop_timer_cancel(loop, f->join_timer);
	uint64_t now = ir_now_ns();
	f->join_timer_at = w;
	f->join_timer = ir_loop_timer_add(loop, w > now ? (w - now) / 1000 + 1 : 0, join_tick, f);
}

static void on_data(void *arg, uint64_t conn_id, const struct ir_frame_hdr *h,
		    const uint8_t *payload)
{
	struct fn *f = arg;
	if (h->deadline_ns && ir_now_realtime_ns() >= h->deadline_ns)
		return; /* too late: the entry has answered already */
	if (h->branch >= sl(f)->k) {
		ir_warn(LOG, "request %016llx: branch %u of a function with %u input(s); dropped",
			(unsigned long long)h->request_id, h->branch, sl(f)->k);
		ir_node_ack(f->node, conn_id, h, sl(f)->index);
		return;
	}
	if (sl(f)->join && !(h->flags & IR_FRAME_F_FWD) &&
	    !ir_node_owns(f->node, f->name, h->request_id, h->epoch)) {
		void *b = ir_node_alloc(h->payload_len);
		if (b) {
			memcpy(b, payload, h->payload_len);
			struct ir_node_msg m = {.type = IR_FRAME_DATA,
						.fn = sl(f)->index,
						.branch = h->branch,
						.flags = IR_FRAME_F_FWD,
						.req = h->request_id,
						.origin = h->origin,
						.epoch = h->epoch,
						.start_ns = h->start_ns,
						.deadline_rt = h->deadline_ns};
			char why[256];
			if (ir_node_send(f->node, &m, b, h->payload_len, why, sizeof(why)) == 0) {
				ir_node_ack(f->node, conn_id, h, sl(f)->index);
				return;
			}
			/* the owner cannot be reached: keep it here */
		}
	}
	struct inhdr *b = malloc(sizeof(*b) + h->payload_len);
	if (!b)
		return; /* not ACKed: the sender resends */
	*b = (struct inhdr){.conn_id = conn_id,
			    .origin = h->origin,
			    .start_ns = h->start_ns,
			    .deadline_rt = h->deadline_ns,
			    .epoch = h->epoch,
			    .branch = h->branch,
			    .attempt = h->attempt};
	memcpy(b + 1, payload, h->payload_len);
	struct ir_join_ready r;
	int rc = ir_join_add(f->join, h->request_id, sl(f)->k, h->branch, b,
			     sizeof(*b) + h->payload_len, ir_node_mono(h->deadline_ns), &r);
	if (rc == IR_JOIN_PENDING) {
		arm_join(f);
	} else if (rc == IR_JOIN_DUP) {
		ir_node_ack(f->node, conn_id, h, sl(f)->index);
	} else if (rc == IR_JOIN_READY) {
		struct job *j = calloc(1, sizeof(*j));
		if (!j) {
			ir_join_ready_free(&r);
			return;
		}
		j->f = f;
		j->r = r;
		j->req = h->request_id;
		j->h = *(const struct inhdr *)r.buf[0];
		submit(f, j);
	} else if (rc == -EINVAL) {
		ir_warn(LOG, "request %016llx: bad branch frame (%s); dropped",
			(unsigned long long)h->request_id, strerror(-rc));
		ir_node_ack(f->node, conn_id, h, sl(f)->index);
	} /* -ENOSPC, -ENOMEM: not ACKed, the sender resends later */
}

/* ---- HTTP: run the handler alone ---- */

static int reply_json_error(struct ir_wd_reply *r, int status, const char *fn, const char *msg)
{
	char *s = ir_node_error_json(fn, status, msg);
	if (!s)
		return -ENOMEM;
	r->status = status;
	r->body = s;
	r->len = strlen(s);
	r->content_type = "application/json";
	return 0;
}

static int http_handle(void *arg, const struct ir_wd_call *call, struct ir_wd_reply *r)
{
	struct fn *f = arg;
	if (strcmp(call->method, "POST") != 0 && strcmp(call->method, "PUT") != 0)
		return reply_json_error(r, 405, f->name, "use POST with the input as the body");
	struct ir_in in[64];
	size_t nin = 1;
	const char *spec = ir_wd_call_header(call, "X-Iroute-Inputs");
	in[0] = (struct ir_in){.data = call->body, .len = call->body_len, .from = ""};
	if (spec) {
		size_t off = 0;
		nin = 0;
		for (const char *p = spec; *p;) {
			char *end;
			unsigned long long v = strtoull(p, &end, 10);
			if (end == p || nin == 64 || v > call->body_len - off)
				return reply_json_error(
				    r, 400, f->name,
				    "X-Iroute-Inputs must be comma-separated lengths that add up to "
				    "the body length (at most 64)");
			in[nin] = (struct ir_in){.data = (const char *)call->body + off,
						 .len = (size_t)v,
						 .from = nin < sl(f)->k && sl(f)->prev ? sl(f)->prev[nin] : ""};
			nin++;
			off += (size_t)v;
			p = *end == ',' ? end + 1 : end;
			if (*end && *end != ',')
				return reply_json_error(r, 400, f->name,
							"X-Iroute-Inputs: not a list of lengths");
		}
		if (off != call->body_len || nin == 0)
			return reply_json_error(r, 400, f->name,
						"X-Iroute-Inputs: the lengths do not add up to the "
						"body length");
	}
	size_t idx = 0;
	const char *q = call->query ? strstr(call->query, "next=") : NULL;
	if (q && (q == call->query || q[-1] == '&')) {
		char want[64];
		size_t l = strcspn(q + 5, "&");
		snprintf(want, sizeof(want), "%.*s", (int)(l < 63 ? l : 63), q + 5);
		size_t i = 0;
		while (i < sl(f)->nnext && strcmp(sl(f)->next[i].name, want) != 0)
			i++;
		if (i == sl(f)->nnext) {
			char m[160];
			snprintf(m, sizeof(m), "\"%s\" is not a successor of this function", want);
			return reply_json_error(r, 400, f->name, m);
		}
		idx = i;
	}
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->f = f;
	j->http = true;
	j->hin = in;
	j->hnin = nin;
	j->refs = 2;
	j->h.deadline_rt =
	    call->deadline_ns ? ir_now_realtime_ns() + (call->deadline_ns - ir_now_ns()) : 0;
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	struct ir_job pj = {.run = job_run, .crashed = job_crashed, .arg = j};
	if (ir_pool_submit(f->pool, &pj) != 0) {
		pthread_mutex_destroy(&j->mu);
		pthread_cond_destroy(&j->cv);
		free(j);
		return reply_json_error(r, 429, f->name, "overloaded: every worker is busy");
	}
	pthread_mutex_lock(&j->mu);
	int timed_out = 0;
	while (!j->finished && !timed_out) {
		if (call->deadline_ns) {
			uint64_t d = call->deadline_ns;
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
			if (now >= d) {
				timed_out = 1;
				break;
			}
			/* the condvar runs on CLOCK_REALTIME: wait in short slices */
			struct timespec w;
			clock_gettime(CLOCK_REALTIME, &w);
			uint64_t step = d - now < 50000000ull ? d - now : 50000000ull;
			uint64_t t = (uint64_t)w.tv_nsec + step;
			w.tv_sec += (time_t)(t / 1000000000ull);
			w.tv_nsec = (long)(t % 1000000000ull);
			pthread_cond_timedwait(&j->cv, &j->mu, &w);
		} else {
			pthread_cond_wait(&j->cv, &j->mu);
		}
	}
	int rc = 0;
	if (!j->finished) {
		rc = reply_json_error(r, 504, f->name, "handler timed out");
	} else if (j->sig) {
		char m[120];
		snprintf(m, sizeof(m), "handler crashed (signal %d, %s)", j->sig, strsignal(j->sig));
		rc = reply_json_error(r, 500, f->name, m);
	} else {
		const char *msg = NULL;
		int st = j->out ? ir_out_status(j->out, &msg) : 0;
		if (st) {
			rc = reply_json_error(r, st, f->name, msg);
		} else if (j->rc < 0) {
			char m[80];
			snprintf(m, sizeof(m), "handler returned %d", j->rc);
			rc = reply_json_error(r, j->rc == -E2BIG ? 413 : 500, f->name, m);
		} else {
			const void *p;
			size_t len;
			ir_out_get(j->out, sl(f)->sink ? 0 : idx, &p, &len);
			r->body = malloc(len ? len : 1);
			if (!r->body)
				rc = -ENOMEM;
			else {
				memcpy(r->body, p, len);
				r->len = len;
			}
		}
	}
	http_put(j);
	return rc;
}

/* ---- life ---- */

static void on_drain(void *arg)
{
	struct fn *f = arg;
	atomic_store(&f->draining, true);
	ir_info(LOG, "%s: SIGTERM: leaving the routing tables, serving what still arrives",
		f->name);
	ir_node_leave(f->node);
}

struct idle_probe {
	struct fn *f;
	atomic_int state; /* 0 asked, 1 busy, 2 idle */
};

static void probe_idle(struct ir_loop *loop, void *arg)
{
	struct idle_probe *p = arg;
	(void)loop;
	struct ir_join_stats js;
	ir_join_stats(p->f->join, &js);
	bool idle = atomic_load(&p->f->running) == 0 && js.pending == 0 && ir_node_idle(p->f->node);
	atomic_store(&p->state, idle ? 2 : 1);
}

static bool is_idle(void *arg)
{
	struct idle_probe *p = arg;
	int s = atomic_load(&p->state);
	if (s == 2)
		return true;
	if (s == 1 || s == 3) {
		atomic_store(&p->state, 0);
		if (ir_node_post(p->f->node, probe_idle, p) != 0)
			return true;
	}
	return false;
}

int ir_func_main(const struct ir_handler_vt *vt)
{
	struct ir_wd_config cfg;
	int rc = ir_instance_config(PROG, &cfg);
	if (rc)
		return rc;
	struct fn *f = calloc(1, sizeof(*f));
	char err[1024];
	int status = 2;
	if (!f)
		goto out;
	f->vt = *vt;
	if (!vt->handle) {
		fprintf(stderr, PROG ": this binary defines no handle() (function/handler.c must: "
				"see iroute/handler.h)\n");
		goto out;
	}
	struct ir_node_cfg ncfg;
	if (ir_node_cfg_env(&ncfg, false, cfg.port, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	snprintf(f->name, sizeof(f->name), "%s", ncfg.function);
	if (ir_env_u32_say(PROG, "IROUTE_HANDLER_TIMEOUT_MS", 0, 0, 3600000, &f->handler_timeout_ms))
		goto out;
	f->out_max = ncfg.max_payload;
	if (vt->init && (rc = vt->init(&f->state)) != 0) {
		fprintf(stderr, PROG ": %s: handler_init() returned %d\n", f->name, rc);
		status = 1;
		goto out;
	}
	status = 1;
	if ((rc = ir_pool_new(&f->pool, ncfg.capacity, 4096)) ||
	    (rc = ir_join_new(&f->join, 65536, 1u << 30))) {
		fprintf(stderr, PROG ": %s\n", strerror(-rc));
		goto teardown;
	}
	struct ir_node_ops ops = {.on_data = on_data, .on_undelivered = on_undelivered, .arg = f};
	if ((rc = ir_node_start(&f->node, &ncfg, &ops, err, sizeof(err)))) {
		fprintf(stderr, PROG ": %s: %s\n", f->name, err);
		goto teardown;
	}
	rc = ir_instance_serve(PROG, &cfg, http_handle, f, on_drain, f);
	if (rc == 0 || rc == -ETIMEDOUT) {
		struct idle_probe p = {.f = f};
		atomic_store(&p.state, 3);
		uint64_t wait = cfg.write_timeout_ns ? cfg.write_timeout_ns : 10000000000ull;
		if (!ir_instance_wait_idle(is_idle, &p, wait)) {
			/* A handler that never returns holds a worker: nothing
			 * can be freed under it. */
			ir_warn(LOG, "%s: drain: work still held after %llu ms; exiting",
				f->name, (unsigned long long)(wait / 1000000));
			_exit(0);
		}
		ir_info(LOG, "%s: drained: no job, join or unacknowledged output left", f->name);
		status = 0;
	}
teardown:
	ir_pool_free(f->pool); /* its last jobs post to the loop: before the node stops */
	ir_node_stop(f->node);
	f->node = NULL;
	ir_join_free(f->join);
	if (vt->teardown)
		vt->teardown(f->state);
out:
	free(f);
	ir_wd_config_release(&cfg);
	return status;
}
