/* node.c - the data plane shared by function instances and entries (see
 * node.h for the delivery rules).
 *
 * Layout of a payload in flight: ir_node_alloc() hands out a buffer with
 * room in front for a struct ometa (what the frame needs besides the
 * payload: type, origin, epoch, deadline...), so the outbox keeps one
 * allocation per output - header data and payload together - and a
 * resend rebuilds the frame from it without a copy.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "envnum.h"
#include "iroute/log.h"
#include "join.h"
#include "iroute/token.h"
#include "iroute/transport.h"
#include "node.h"
#include "otab.h"
#include "outbox.h"
#include "peers.h"
#include "route.h"

#define LOG "node"
#define MAX_SUSPECTS 256
#define SUSPECT_TTL_NS (60ull * 1000000000ull)
#define DUE_BATCH 32

struct ometa {
	struct ir_node_msg m;
	uint64_t pad; /* keeps the payload 16-byte aligned */
};

/* An accepted connection, found again by id for a late ACK. */
#define CREF_MAGIC 0x43524546u
struct cref {
	uint32_t magic; /* CREF_MAGIC: tells it from the node (see acc_close) */
	uint64_t id;
	struct ir_conn *c;
	struct ir_node *n;
};

struct suspect {
	char id[80];
	uint64_t since_ns;
	uint64_t reported_ns;
};

struct load {
	char id[80];
	uint32_t inflight;
};

struct dest {
	char name[64];
	bool join, set;
};

struct ir_node {
	struct ir_node_cfg cfg;
	struct ir_node_ops ops;
	struct ir_loop *loop;
	pthread_t thread;
	bool running;
	uint8_t token[IR_TOKEN_MAX];
	size_t token_len;
	struct ir_conn_cfg ccfg;
	struct ir_listener *ltcp, *lipc;
	struct ir_peers *peers;
	struct ir_outbox *outbox;
	struct ir_ccc *ccc;
	struct ir_otab conns; /* struct cref by id */
	uint64_t next_conn;
	struct dest *dest; /* IR_WF_MAX_FNS, by function index */
	uint16_t self_fn;
	struct ir_node_slice slice; /* a function's */
	char self_node[80];
	char id[80];
	uint64_t origin;
	uint64_t rng;
	/* the outbox timer */
	uint64_t timer, timer_at;
	struct suspect sus[MAX_SUSPECTS];
	size_t nsus;
	struct load *load;
	size_t nload, capload;
	/* a new table from the client thread, applied on the loop */
	pthread_mutex_t tmu;
	bool table_posted;
	/* suspect reports, sent by their own thread (a probe takes up to 3 s) */
	pthread_t rthread;
	pthread_mutex_t rmu;
	pthread_cond_t rcond;
	char rq[16][80];
	size_t rqn;
	bool rstop;
};

/* ---- small helpers ---- */

uint64_t ir_node_mono(uint64_t deadline_rt)
{
	if (!deadline_rt)
		return 0;
	uint64_t rt = ir_now_realtime_ns(), mono = ir_now_ns();
	return deadline_rt > rt ? mono + (deadline_rt - rt) : mono;
}

uint64_t ir_node_id_num(const char *id)
{
	const char *p = strrchr(id, '-');
	p = p ? p + 1 : id;
	char *end;
	unsigned long long v = strtoull(p, &end, 16);
	return *p && !*end ? (uint64_t)v : 0;
}

static uint64_t cref_hash(const void *e)
{
	return ir_mix64(((const struct cref *)e)->id);
}

static struct cref *cref_find(struct ir_node *n, uint64_t id)
{
	uint64_t h = ir_mix64(id);
	for (size_t i = h & n->conns.mask;; i = (i + 1) & n->conns.mask) {
		struct cref *r = n->conns.slot[i];
		if (!r)
			return NULL;
		if (r->id == id)
			return r;
	}
}

/* ---- suspects and loads ---- */

static struct suspect *suspect_find(struct ir_node *n, const char *id)
{
	for (size_t i = 0; i < n->nsus; i++)
		if (strcmp(n->sus[i].id, id) == 0)
			return &n->sus[i];
	return NULL;
}

static void suspect_del(struct ir_node *n, const char *id)
{
	struct suspect *s = suspect_find(n, id);
	if (s)
		*s = n->sus[--n->nsus];
}

static void report_suspect(struct ir_node *n, const char *id)
{
	pthread_mutex_lock(&n->rmu);
	if (n->rqn < sizeof(n->rq) / sizeof(n->rq[0])) {
		snprintf(n->rq[n->rqn++], sizeof(n->rq[0]), "%s", id);
		pthread_cond_signal(&n->rcond);
	}
	pthread_mutex_unlock(&n->rmu);
}

static void suspect_add(struct ir_node *n, const char *id)
{
	uint64_t now = ir_now_ns();
	struct suspect *s = suspect_find(n, id);
	if (!s) {
		if (n->nsus == MAX_SUSPECTS) { /* forget the oldest */
			size_t o = 0;
			for (size_t i = 1; i < n->nsus; i++)
				if (n->sus[i].since_ns < n->sus[o].since_ns)
					o = i;
			n->sus[o] = n->sus[--n->nsus];
		}
		s = &n->sus[n->nsus++];
		snprintf(s->id, sizeof(s->id), "%s", id);
		s->since_ns = now;
		s->reported_ns = 0;
	}
	if (!s->reported_ns || now - s->reported_ns > 5000000000ull) {
		s->reported_ns = now;
		report_suspect(n, id);
	}
}

/* Suspect ids as an exclusion list (borrowed until the next change). */
static size_t suspect_list(struct ir_node *n, const char **out, size_t cap)
{
	uint64_t now = ir_now_ns();
	for (size_t i = 0; i < n->nsus;)
		if (now - n->sus[i].since_ns > SUSPECT_TTL_NS)
			n->sus[i] = n->sus[--n->nsus];
		else
			i++;
	size_t k = 0;
	for (size_t i = 0; i < n->nsus && k < cap; i++)
		out[k++] = n->sus[i].id;
	return k;
}

static struct load *load_of(struct ir_node *n, const char *id, bool make)
{
	for (size_t i = 0; i < n->nload; i++)
		if (strcmp(n->load[i].id, id) == 0)
			return &n->load[i];
	if (!make)
		return NULL;
	if (n->nload == n->capload) {
		size_t cap = n->capload ? n->capload * 2 : 16;
		struct load *v = realloc(n->load, cap * sizeof(*v));
		if (!v)
			return NULL;
		n->load = v;
		n->capload = cap;
	}
	struct load *l = &n->load[n->nload++];
	snprintf(l->id, sizeof(l->id), "%s", id);
	l->inflight = 0;
	return l;
}

static uint32_t inflight_cb(void *arg, const char *id)
{
	struct load *l = load_of(arg, id, false);
	return l ? l->inflight : 0;
}

char *ir_node_error_json(const char *fn, int status, const char *msg)
{
	cJSON *o = cJSON_CreateObject();
	if (fn)
		cJSON_AddStringToObject(o, "function", fn);
	cJSON_AddNumberToObject(o, "status", status);
	cJSON_AddStringToObject(o, "error", msg);
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

/* ---- payload buffers ---- */

void *ir_node_alloc(size_t len)
{
	char *b = malloc(sizeof(struct ometa) + len);
	return b ? b + sizeof(struct ometa) : NULL;
}

void ir_node_free_buf(void *p)
{
	if (p)
		free((char *)p - sizeof(struct ometa));
}

static struct ometa *meta_of(const void *block)
{
	return (struct ometa *)block;
}

/* ---- choosing and sending ---- */

static int entry_inst(struct ir_node *n, uint64_t origin, struct ir_route_inst *out)
{
	struct ir_table *t = ir_ccc_table(n->ccc, 0);
	int rc = -ENOENT;
	for (size_t i = 0; t && i < t->nentries; i++)
		if (ir_node_id_num(t->entries[i].id) == origin) {
			*out = t->entries[i];
			out->rdma = NULL;
			rc = 0;
			break;
		}
	ir_table_put(t);
	return rc;
}

/* The instance for @m: excluding suspects, and @tried too when
 * @avoid_tried (plain successors only; a join's owner is what it is). */
static int choose(struct ir_node *n, const struct ir_node_msg *m, const char *const *tried,
		  size_t ntried, struct ir_route_inst *out, bool *moved, char *why, size_t cap)
{
	*moved = false;
	if (m->type != IR_FRAME_DATA) {
		if (entry_inst(n, m->origin, out) == 0)
			return 0;
		snprintf(why, cap, "the entry %016llx that took the request is gone",
			 (unsigned long long)m->origin);
		return -EHOSTUNREACH;
	}
	const struct dest *d = m->fn < IR_WF_MAX_FNS ? &n->dest[m->fn] : NULL;
	if (!d || !d->set) {
		snprintf(why, cap, "function index %u is not a successor", m->fn);
		return -EINVAL;
	}
	const char *excl[MAX_SUSPECTS + IR_OUTBOX_MAX_ATTEMPTS];
	size_t nex = suspect_list(n, excl, MAX_SUSPECTS);
	struct ir_table *t = ir_ccc_table(n->ccc, m->epoch);
	const struct ir_route_fn *fn = ir_table_route(t, d->name);
	int idx;
	if (d->join) {
		idx = ir_route_rendezvous(fn, m->req, excl, nex);
		/* Not the owner by the table alone: the receiver must keep it
		 * rather than forward it back to the one we avoided. */
		*moved = nex && idx >= 0 && idx != ir_route_rendezvous(fn, m->req, NULL, 0);
	} else {
		struct ir_route_ctx ctx = {.self_node = n->self_node,
					   .inflight = inflight_cb,
					   .arg = n,
					   .rng = &n->rng};
		size_t base = nex;
		for (size_t i = 0; i < ntried; i++)
			excl[nex++] = tried[i];
		idx = ir_route_pick(fn, &ctx, excl, nex);
		if (idx < 0 && ntried) /* every live one was tried: try them again */
			idx = ir_route_pick(fn, &ctx, excl, base);
	}
	if (idx < 0) {
		snprintf(why, cap, "no live instance of function \"%s\" (epoch %llu: %zu listed)",
			 d->name, (unsigned long long)(t ? t->epoch : 0), fn ? fn->n : 0);
		ir_table_put(t);
		return -EHOSTUNREACH;
	}
	*out = fn->inst[idx];
	out->rdma = NULL;
	ir_table_put(t);
	return 0;
}

static int xmit(struct ir_node *n, const struct ir_node_msg *m, const void *p, size_t len,
		uint16_t attempt, bool moved, const struct ir_route_inst *to, char *why, size_t cap)
{
	struct ir_conn *c;
	int rc = ir_peers_get(n->peers, to, &c, why, cap);
	if (rc)
		return rc;
	struct ir_frame_hdr h;
	ir_frame_init(&h, (enum ir_frame_type)m->type);
	h.flags = m->flags;
	/* A resent or rerouted branch of a join is never forwarded again. */
	if (m->type == IR_FRAME_DATA && n->dest[m->fn].join && (moved || attempt))
		h.flags |= IR_FRAME_F_FWD;
	h.branch = m->branch;
	h.request_id = m->req;
	h.origin = m->origin;
	h.epoch = m->epoch;
	h.src_fn = n->self_fn;
	h.attempt = attempt;
	h.deadline_ns = m->deadline_rt;
	h.start_ns = m->start_ns;
	h.sent_ns = ir_now_realtime_ns();
	struct iovec iov = {.iov_base = (void *)p, .iov_len = len};
	rc = ir_conn_send(c, &h, &iov, 1, NULL, NULL);
	if (rc == -EAGAIN)
		rc = 0; /* queue full: the ACK timeout resends it */
	if (rc < 0) {
		snprintf(why, cap, "send to %s: %s", to->id, strerror(-rc));
		return rc;
	}
	struct load *l = load_of(n, to->id, true);
	if (l)
		l->inflight++;
	return 0;
}

static void key_of(const struct ir_node_msg *m, uint16_t *fn, uint16_t *branch)
{
	*fn = m->type == IR_FRAME_DATA ? m->fn
	      : m->type == IR_FRAME_RESULT ? IR_FN_ENTRY
					   : IR_FN_ERROR;
	*branch = m->branch;
}

static void arm(struct ir_node *n);

int ir_node_send(struct ir_node *n, const struct ir_node_msg *m, void *payload, size_t len,
		 char *why, size_t cap)
{
	struct ometa *mt = meta_of((char *)payload - sizeof(struct ometa));
	mt->m = *m;
	if (len > n->cfg.max_payload) {
		snprintf(why, cap, "output of %zu bytes is over the limit of %u", len,
			 n->cfg.max_payload);
		ir_node_free_buf(payload);
		return -EMSGSIZE;
	}
	struct ir_route_inst to;
	bool moved;
	int rc = choose(n, m, NULL, 0, &to, &moved, why, cap);
	if (!rc)
		rc = xmit(n, m, payload, len, 0, moved, &to, why, cap);
	if (rc) {
		ir_node_free_buf(payload);
		return rc;
	}
	uint16_t fn, branch;
	key_of(m, &fn, &branch);
	rc = ir_outbox_add(n->outbox, m->req, fn, branch, mt, len + sizeof(struct ometa),
			   ir_node_mono(m->deadline_rt), to.id, ir_now_ns());
	if (rc == -EEXIST)
		return 0; /* the same output is on its way already */
	if (rc) {
		/* Sent, but not kept: a loss will not be repaired here (the
		 * entry's re-issue still covers it). */
		ir_warn(LOG, "outbox: %s: output of request %016llx not kept", strerror(-rc),
			(unsigned long long)m->req);
		return 0;
	}
	arm(n);
	return 0;
}

void ir_node_ack(struct ir_node *n, uint64_t conn_id, const struct ir_frame_hdr *h, uint16_t fn)
{
	struct cref *r = cref_find(n, conn_id);
	if (!r)
		return;
	struct ir_frame_hdr a;
	ir_frame_init(&a, IR_FRAME_ACK);
	a.request_id = h->request_id;
	a.branch = h->branch;
	a.src_fn = fn;
	a.epoch = h->epoch;
	a.origin = h->origin;
	a.sent_ns = h->sent_ns;
	ir_conn_send(r->c, &a, NULL, 0, NULL, NULL);
}

bool ir_node_owns(struct ir_node *n, const char *name, uint64_t req, uint32_t epoch)
{
	const char *excl[MAX_SUSPECTS];
	size_t nex = suspect_list(n, excl, MAX_SUSPECTS);
	struct ir_table *t = ir_ccc_table(n->ccc, epoch);
	const struct ir_route_fn *fn = ir_table_route(t, name);
	int idx = ir_route_rendezvous(fn, req, excl, nex);
	bool mine = idx < 0 || strcmp(fn->inst[idx].id, n->id) == 0;
	ir_table_put(t);
	return mine;
}

/* ---- resends and expiry ---- */

static void give_up(struct ir_node *n, const struct ir_outbox_item *it, int status,
		    const char *why)
{
	struct ir_node_msg m = meta_of(it->payload)->m;
	ir_outbox_give_up(n->outbox, it->req, it->fn, it->branch, NULL);
	if (n->ops.on_undelivered)
		n->ops.on_undelivered(n->ops.arg, &m, status, why);
}

static void pump(struct ir_loop *loop, void *arg)
{
	struct ir_node *n = arg;
	(void)loop;
	n->timer = 0;
	uint64_t now = ir_now_ns();
	ir_outbox_expire(n->outbox, now, NULL, NULL); /* the entry times them out itself */
	struct ir_outbox_item it[DUE_BATCH];
	size_t k;
	do {
		k = ir_outbox_due(n->outbox, now, it, DUE_BATCH);
		for (size_t i = 0; i < k; i++) {
			const struct ometa *mt = meta_of(it[i].payload);
			const void *p = (const char *)it[i].payload + sizeof(struct ometa);
			size_t len = it[i].len - sizeof(struct ometa);
			char why[256] = "";
			if (it[i].exhausted) {
				snprintf(why, sizeof(why), "no ACK after %u attempts",
					 it[i].attempts);
				give_up(n, &it[i], 504, why);
				continue;
			}
			const char *last = it[i].tried[it[i].ntried - 1];
			struct ir_route_inst to;
			bool moved = false;
			int rc = -1;
			if (!suspect_find(n, last) && mt->m.type == IR_FRAME_DATA) {
				/* the peer is up: it may be waiting for a slow branch */
				struct ir_table *t = ir_ccc_table(n->ccc, mt->m.epoch);
				const struct ir_route_fn *fn =
				    ir_table_route(t, n->dest[mt->m.fn].name);
				for (size_t j = 0; fn && j < fn->n; j++)
					if (strcmp(fn->inst[j].id, last) == 0) {
						to = fn->inst[j];
						to.rdma = NULL;
						rc = 0;
					}
				ir_table_put(t);
			}
			if (rc)
				rc = choose(n, &mt->m, it[i].tried, it[i].ntried, &to, &moved, why,
					    sizeof(why));
			if (!rc)
				rc = xmit(n, &mt->m, p, len, (uint16_t)it[i].attempts, moved, &to,
					  why, sizeof(why));
			if (!rc)
				rc = ir_outbox_resent(n->outbox, it[i].req, it[i].fn, it[i].branch,
						      to.id, now);
			if (rc) {
				give_up(n, &it[i], 503, why[0] ? why : strerror(-rc));
				continue;
			}
		}
	} while (k == DUE_BATCH);
	arm(n);
}

static void arm(struct ir_node *n)
{
	uint64_t w = ir_outbox_next_wakeup(n->outbox);
	if (!w)
		return;
	if (n->timer && n->timer_at <= w)
		return;
	if (n->timer)
		ir_loop_timer_cancel(n->loop, n->timer);
	uint64_t now = ir_now_ns();
	n->timer_at = w;
	n->timer = ir_loop_timer_add(n->loop, w > now ? (w - now) / 1000 : 0, pump, n);
}

/* ---- connections ---- */

static void peer_open(struct ir_conn *c, void *ud)
{
	struct ir_node *n = ud;
	const char *id = ir_peers_id(n->peers, c);
	if (id)
		suspect_del(n, id);
}

static void peer_msg(struct ir_conn *c, const struct ir_msg *m, void *ud)
{
	struct ir_node *n = ud;
	if (m->hdr.type != IR_FRAME_ACK)
		return;
	if (ir_outbox_ack(n->outbox, m->hdr.request_id, m->hdr.src_fn, m->hdr.branch) != 0)
		return; /* a late or duplicate ACK */
	const char *id = ir_peers_id(n->peers, c);
	struct load *l = id ? load_of(n, id, false) : NULL;
	if (l && l->inflight)
		l->inflight--;
}

static void peer_close(struct ir_conn *c, int err, void *ud)
{
	struct ir_node *n = ud;
	const char *id = ir_peers_id(n->peers, c);
	if (!id)
		return;
	ir_info(LOG, "peer %s lost (%s): resending what it held", id,
		err ? strerror(-err) : "closed");
	suspect_add(n, id);
	struct load *l = load_of(n, id, false);
	if (l)
		l->inflight = 0;
	if (ir_outbox_peer_lost(n->outbox, id, ir_now_ns()))
		arm(n);
}

static const struct ir_conn_cbs peer_cbs = {
    .on_open = peer_open, .on_msg = peer_msg, .on_close = peer_close};

static void acc_open(struct ir_conn *c, void *ud)
{
	struct ir_node *n = ud;
	struct cref *r = malloc(sizeof(*r));
	if (!r || !ir_otab_reserve(&n->conns)) {
		free(r);
		ir_conn_close(c);
		return;
	}
	r->magic = CREF_MAGIC;
	r->id = ++n->next_conn;
	r->c = c;
	r->n = n;
	ir_otab_put(&n->conns, r);
	ir_conn_set_data(c, r);
}

static void acc_msg(struct ir_conn *c, const struct ir_msg *m, void *ud)
{
	struct cref *r = ud;
	struct ir_node *n = r->n;
	(void)c;
	switch (m->hdr.type) {
	case IR_FRAME_DATA:
		if (n->ops.on_data)
			n->ops.on_data(n->ops.arg, r->id, &m->hdr, m->payload);
		break;
	case IR_FRAME_RESULT:
	case IR_FRAME_ERROR:
		ir_node_ack(n, r->id, &m->hdr,
			    m->hdr.type == IR_FRAME_RESULT ? IR_FN_ENTRY : IR_FN_ERROR);
		if (n->ops.on_result)
			n->ops.on_result(n->ops.arg, &m->hdr, m->payload);
		break;
	case IR_FRAME_PING: {
		struct ir_frame_hdr p = m->hdr;
		p.type = IR_FRAME_PONG;
		p.payload_len = 0;
		ir_conn_send(r->c, &p, NULL, 0, NULL, NULL);
		break;
	}
	default:
		ir_warn(LOG, "%s: unexpected %s frame", ir_conn_peer(c),
			ir_frame_type_name(m->hdr.type));
	}
}

static void acc_close(struct ir_conn *c, int err, void *ud)
{
	(void)c, (void)err;
	struct cref *r = ud;
	/* Before on_open the data is the node itself (the listener's). */
	if (r && r->magic == CREF_MAGIC && cref_find(r->n, r->id) == r) {
		ir_otab_del(&r->n->conns, r);
		r->magic = 0;
		free(r);
	}
}

static const struct ir_conn_cbs acc_cbs = {
    .on_open = acc_open, .on_msg = acc_msg, .on_close = acc_close};

/* ---- tables ---- */

static void apply_table(struct ir_loop *loop, void *arg)
{
	struct ir_node *n = arg;
	(void)loop;
	pthread_mutex_lock(&n->tmu);
	n->table_posted = false;
	pthread_mutex_unlock(&n->tmu);
	char id[80];
	ir_ccc_instance(n->ccc, id, sizeof(id));
	if (id[0] && strcmp(id, n->id) != 0) {
		snprintf(n->id, sizeof(n->id), "%s", id);
		n->origin = ir_node_id_num(id);
	}
	struct ir_table *t = ir_ccc_table(n->ccc, 0);
	if (t)
		ir_peers_prune(n->peers, t);
	ir_table_put(t);
}

static void on_table(void *arg, struct ir_table *t)
{
	struct ir_node *n = arg;
	(void)t;
	pthread_mutex_lock(&n->tmu);
	bool post = n->running && !n->table_posted;
	if (post)
		n->table_posted = true;
	pthread_mutex_unlock(&n->tmu);
	if (post && ir_loop_post(n->loop, apply_table, n) != 0) {
		pthread_mutex_lock(&n->tmu);
		n->table_posted = false;
		pthread_mutex_unlock(&n->tmu);
	}
}

/* ---- the suspect reporter ---- */

static void *reporter(void *arg)
{
	struct ir_node *n = arg;
	pthread_mutex_lock(&n->rmu);
	for (;;) {
		while (!n->rstop && !n->rqn)
			pthread_cond_wait(&n->rcond, &n->rmu);
		if (n->rstop)
			break;
		char id[80];
		memcpy(id, n->rq[--n->rqn], sizeof(id));
		pthread_mutex_unlock(&n->rmu);
		bool removed = false;
		int rc = ir_ccc_suspect(n->ccc, id, &removed);
		ir_info(LOG, "suspect %s reported: %s", id,
			rc ? strerror(-rc) : removed ? "removed" : "kept (it answered the probe)");
		pthread_mutex_lock(&n->rmu);
	}
	pthread_mutex_unlock(&n->rmu);
	return NULL;
}

/* ---- configuration ---- */

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

int ir_node_cfg_env(struct ir_node_cfg *cfg, bool entry, unsigned http_port, char *err,
		    size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->entry = entry;
	cfg->function = entry ? NULL : env("IROUTE_FUNCTION");
	if (!entry && !cfg->function) {
		snprintf(err, errlen, "IROUTE_FUNCTION is not set (this instance's function)");
		return -EINVAL;
	}
	const char *host = env("POD_IP") ? env("POD_IP") : "127.0.0.1";
	const char *tcp = env("IROUTE_TCP_ADDR");
	if (tcp && !strchr(tcp, ':')) {
		snprintf(err, errlen, "IROUTE_TCP_ADDR: \"%s\" is not host:port", tcp);
		return -EINVAL;
	}
	snprintf(cfg->tcp_addr, sizeof(cfg->tcp_addr), "%s", tcp ? tcp : "");
	if (!tcp)
		snprintf(cfg->tcp_addr, sizeof(cfg->tcp_addr), "%s:0", host);
	const char *ipc = env("IROUTE_IPC");
	cfg->ipc = !ipc || strcmp(ipc, "0") != 0;
	snprintf(cfg->node, sizeof(cfg->node), "%s", env("IROUTE_NODE") ? env("IROUTE_NODE") : "");
	const char *http = env("IROUTE_HTTP_ADDR");
	if (http)
		snprintf(cfg->http_addr, sizeof(cfg->http_addr), "%s", http);
	else
		snprintf(cfg->http_addr, sizeof(cfg->http_addr), "%s:%u", host, http_port);
	const char *tr = env("IROUTE_TRANSPORT");
	if (tr && strcmp(tr, "auto") && strcmp(tr, "ipc") && strcmp(tr, "tcp")) {
		snprintf(err, errlen, "IROUTE_TRANSPORT: \"%s\" is not auto, ipc or tcp", tr);
		return -EINVAL;
	}
	snprintf(cfg->transport, sizeof(cfg->transport), "%s", tr ? tr : "auto");
	if (strcmp(cfg->transport, "ipc") == 0 && !cfg->ipc) {
		snprintf(err, errlen, "IROUTE_TRANSPORT=ipc with IROUTE_IPC=0");
		return -EINVAL;
	}
	if (ir_env_u32("IROUTE_CAPACITY", 2, 1, 1024, &cfg->capacity, err, errlen) ||
	    ir_env_u32("IROUTE_ACK_TIMEOUT_MS", 1000, 1, 3600000, &cfg->ack_timeout_ms, err, errlen) ||
	    ir_env_u32("IROUTE_MAX_PAYLOAD", 64u << 20, 1024, 1u << 30, &cfg->max_payload, err,
		    errlen))
		return -EINVAL;
	return 0;
}

/* ---- life ---- */

static void *loop_main(void *arg)
{
	struct ir_node *n = arg;
	int rc = ir_loop_run(n->loop);
	if (rc)
		ir_error(LOG, "event loop: %s", strerror(-rc));
	return NULL;
}

static void slice_free(struct ir_node_slice *s)
{
	free(s->prev);
	free(s->next);
	free(s->next_names);
	memset(s, 0, sizeof(*s));
}

/* A function's slice JSON into @s: 0, -EPROTO with @err, or -ENOMEM. */
static int parse_slice(struct ir_node_slice *s, const char *json, char *err, size_t errlen)
{
	cJSON *o = cJSON_Parse(json);
	const cJSON *next = cJSON_GetObjectItemCaseSensitive(o, "next");
	const cJSON *prev = cJSON_GetObjectItemCaseSensitive(o, "prev");
	const cJSON *idx = cJSON_GetObjectItemCaseSensitive(o, "index");
	if (!cJSON_IsArray(next) || !cJSON_IsArray(prev) || !cJSON_IsNumber(idx) ||
	    idx->valueint < 0 || idx->valueint >= IR_WF_MAX_FNS) {
		cJSON_Delete(o);
		snprintf(err, errlen, "the coordinator's slice lacks next/prev/index: %.200s", json);
		return -EPROTO;
	}
	int np = cJSON_GetArraySize(prev);
	s->index = (uint16_t)idx->valueint;
	s->sink = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "sink"));
	s->join = np > 1;
	s->k = np > 1 ? (uint32_t)np : 1;
	s->nnext = (size_t)cJSON_GetArraySize(next);
	s->prev = calloc(s->k, sizeof(*s->prev));
	s->next = calloc(s->nnext ? s->nnext : 1, sizeof(*s->next));
	s->next_names = calloc(s->nnext ? s->nnext : 1, sizeof(*s->next_names));
	if (!s->prev || !s->next || !s->next_names) {
		cJSON_Delete(o);
		slice_free(s);
		return -ENOMEM;
	}
	for (int i = 0; i < np; i++) {
		const cJSON *p = cJSON_GetArrayItem(prev, i);
		snprintf(s->prev[i], sizeof(s->prev[i]), "%s", cJSON_IsString(p) ? p->valuestring : "");
	}
	int rc = 0;
	for (size_t i = 0; i < s->nnext; i++) {
		const cJSON *e = cJSON_GetArrayItem(next, (int)i);
		const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
		const cJSON *ix = cJSON_GetObjectItemCaseSensitive(e, "index");
		const cJSON *br = cJSON_GetObjectItemCaseSensitive(e, "branch");
		if (!cJSON_IsString(nm) || !cJSON_IsNumber(ix) || !cJSON_IsNumber(br) ||
		    ix->valueint < 0 || ix->valueint >= IR_WF_MAX_FNS || br->valueint < 0 ||
		    br->valueint >= (int)IR_JOIN_MAX_K) {
			snprintf(err, errlen, "the coordinator's slice: next[%zu] is malformed", i);
			rc = -EPROTO;
			break;
		}
		struct ir_node_next *x = &s->next[i];
		snprintf(x->name, sizeof(x->name), "%s", nm->valuestring);
		x->index = (uint16_t)ix->valueint;
		x->branch = (uint16_t)br->valueint;
		x->join = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "join"));
		s->next_names[i] = x->name;
	}
	cJSON_Delete(o);
	if (rc)
		slice_free(s);
	return rc;
}

/* Function names and join flags by index, from the slice (a function) or
 * the workflow (an entry). */
static int load_dests(struct ir_node *n, char *err, size_t errlen)
{
	char *slice = ir_ccc_slice(n->ccc);
	if (!slice)
		return snprintf(err, errlen, "no workflow slice from the coordinator"), -EPROTO;
	int rc = 0;
	if (n->cfg.entry) {
		struct ir_workflow wf;
		rc = ir_workflow_parse(slice, strlen(slice), NULL, &wf, err, errlen);
		if (!rc) {
			for (size_t i = 0; i < wf.nfns; i++) {
				snprintf(n->dest[i].name, sizeof(n->dest[i].name), "%s",
					 wf.fns[i].name);
				n->dest[i].join = wf.fns[i].nprev > 1;
				n->dest[i].set = true;
			}
			ir_workflow_free(&wf);
		}
		n->self_fn = IR_FN_ENTRY;
	} else {
		rc = parse_slice(&n->slice, slice, err, errlen);
		if (!rc) {
			n->self_fn = n->slice.index;
			struct dest *d = &n->dest[n->self_fn];
			snprintf(d->name, sizeof(d->name), "%s", n->cfg.function);
			d->join = n->slice.join;
			d->set = true;
			for (size_t i = 0; i < n->slice.nnext; i++) {
				d = &n->dest[n->slice.next[i].index];
				snprintf(d->name, sizeof(d->name), "%s", n->slice.next[i].name);
				d->join = n->slice.next[i].join;
				d->set = true;
			}
		}
	}
	free(slice);
	return rc;
}

int ir_node_start(struct ir_node **out, const struct ir_node_cfg *cfg,
		  const struct ir_node_ops *ops, char *err, size_t errlen)
{
	*out = NULL;
	struct ir_node *n = calloc(1, sizeof(*n));
	if (!n || !(n->dest = calloc(IR_WF_MAX_FNS, sizeof(*n->dest)))) {
		free(n);
		return snprintf(err, errlen, "out of memory"), -ENOMEM;
	}
	n->cfg = *cfg;
	n->ops = *ops;
	pthread_mutex_init(&n->tmu, NULL);
	pthread_mutex_init(&n->rmu, NULL);
	pthread_cond_init(&n->rcond, NULL);
	if (getrandom(&n->rng, sizeof(n->rng), 0) != sizeof(n->rng))
		n->rng = (uint64_t)ir_now_ns() ^ (uint64_t)getpid();
	int rc = ir_token_load(n->token, sizeof(n->token), err, errlen);
	if (rc < 0)
		goto fail;
	n->token_len = (size_t)rc;
	n->token[rc] = '\0'; /* ccclient takes it as a string; a file's newline stays past len */
	if (n->cfg.node[0])
		snprintf(n->self_node, sizeof(n->self_node), "%s", n->cfg.node);
	else {
		FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
		if (!f || !fgets(n->self_node, sizeof(n->self_node), f))
			snprintf(n->self_node, sizeof(n->self_node), "unknown");
		if (f)
			fclose(f);
		n->self_node[strcspn(n->self_node, "\n")] = '\0';
	}
	char ident[128];
	snprintf(ident, sizeof(ident), "%s#%d", cfg->entry ? "entry" : cfg->function, (int)getpid());
	ir_conn_cfg_init(&n->ccfg);
	n->ccfg.token = n->token;
	n->ccfg.token_len = n->token_len;
	n->ccfg.ident = ident;
	n->ccfg.max_payload = cfg->max_payload;
	if ((rc = ir_loop_new(&n->loop)) == 0 && !env("IROUTE_SPIN_US"))
		/* Measured on 2 vCPUs with 6 instances (README "Benchmarks"):
		 * spinning loops steal the core the next handler needs; no spin
		 * gave p50 0.31 ms vs 0.49 ms at concurrency 1 and 13.4k vs
		 * 8.0k requests/s at 16.  IROUTE_SPIN_US turns it back on where
		 * cores are spare. */
		ir_loop_set_spin(n->loop, 0);
	if (rc || (rc = ir_otab_init(&n->conns, cref_hash)) ||
	    (rc = ir_outbox_new(&n->outbox, 65536, 1u << 30, cfg->ack_timeout_ms, 32))) {
		snprintf(err, errlen, "start: %s", strerror(-rc));
		goto fail;
	}
	if ((rc = ir_listen(n->loop, &ir_transport_tcp, cfg->tcp_addr, &n->ccfg, &acc_cbs, n,
			    &n->ltcp))) {
		snprintf(err, errlen, "IROUTE_TCP_ADDR: cannot listen on %s: %s", cfg->tcp_addr,
			 strerror(-rc));
		goto fail;
	}
	if (cfg->ipc) {
		char name[160];
		snprintf(name, sizeof(name), "%s-%d-%08x", cfg->entry ? "entry" : cfg->function,
			 (int)getpid(), (unsigned)(n->rng & 0xffffffffu));
		if ((rc = ir_listen(n->loop, &ir_transport_ipc, name, &n->ccfg, &acc_cbs, n,
				    &n->lipc))) {
			snprintf(err, errlen, "ipc: cannot listen on %s in %s: %s", name,
				 ir_ipc_dir(), strerror(-rc));
			goto fail;
		}
	}
	if ((rc = ir_peers_new(&n->peers, n->loop, &n->ccfg, &peer_cbs, n, n->self_node,
			       cfg->transport))) {
		snprintf(err, errlen, "peers: %s", strerror(-rc));
		goto fail;
	}
	struct ir_ccc_opts o = {0};
	if ((rc = ir_ccc_opts_from_env(&o, err, errlen)))
		goto fail;
	o.token = (const char *)n->token; /* NUL-terminated: calloc'ed, loaded below cap */
	o.entry = cfg->entry;
	o.function = cfg->function;
	o.node = n->self_node;
	o.http_addr = cfg->http_addr;
	o.tcp_addr = ir_listener_addr(n->ltcp);
	o.ipc_path = n->lipc ? ir_listener_addr(n->lipc) : NULL;
	o.transports = IR_TR_TCP | (n->lipc ? IR_TR_IPC : 0);
	o.capacity = cfg->capacity;
	o.on_table = on_table;
	o.arg = n;
	if ((rc = ir_ccc_start(&n->ccc, &o, err, errlen)))
		goto fail;
	ir_ccc_instance(n->ccc, n->id, sizeof(n->id));
	n->origin = ir_node_id_num(n->id);
	if ((rc = load_dests(n, err, errlen)))
		goto fail;
	n->running = true;
	if ((rc = -pthread_create(&n->rthread, NULL, reporter, n))) {
		n->running = false;
		snprintf(err, errlen, "thread: %s", strerror(-rc));
		goto fail;
	}
	*out = n; /* before the loop runs: its callbacks may use the caller's pointer */
	if ((rc = -pthread_create(&n->thread, NULL, loop_main, n))) {
		*out = NULL;
		snprintf(err, errlen, "thread: %s", strerror(-rc));
		pthread_mutex_lock(&n->rmu);
		n->rstop = true;
		pthread_cond_signal(&n->rcond);
		pthread_mutex_unlock(&n->rmu);
		pthread_join(n->rthread, NULL);
		n->running = false;
		goto fail;
	}
	ir_info(LOG, "%s %s: tcp %s%s%s, node %.12s, capacity %u", cfg->entry ? "entry" : "function",
		n->id, ir_listener_addr(n->ltcp), n->lipc ? ", ipc " : "",
		n->lipc ? ir_listener_addr(n->lipc) : "", n->self_node, cfg->capacity);
	*out = n;
	return 0;
fail:
	ir_node_stop(n);
	return rc ? rc : -EINVAL;
}

void ir_node_leave(struct ir_node *n)
{
	int rc = ir_ccc_leave(n->ccc);
	if (rc)
		ir_warn(LOG, "leave: %s", strerror(-rc));
}

bool ir_node_idle(struct ir_node *n)
{
	struct ir_outbox_stats s;
	ir_outbox_stats(n->outbox, &s);
	return s.entries == 0;
}

int ir_node_post(struct ir_node *n, void (*cb)(struct ir_loop *, void *), void *arg)
{
	return ir_loop_post(n->loop, cb, arg);
}

struct ir_loop *ir_node_loop(struct ir_node *n)
{
	return n->loop;
}

const struct ir_node_slice *ir_node_slice(const struct ir_node *n)
{
	return n->cfg.entry ? NULL : &n->slice;
}

struct ir_ccc *ir_node_ccc(struct ir_node *n)
{
	return n->ccc;
}

const char *ir_node_id(struct ir_node *n)
{
	return n->id;
}

uint64_t ir_node_origin(struct ir_node *n)
{
	return n->origin;
}

uint64_t ir_node_epoch(struct ir_node *n)
{
	return ir_ccc_epoch(n->ccc);
}

void ir_node_stop(struct ir_node *n)
{
	if (!n)
		return;
	if (n->running) {
		pthread_mutex_lock(&n->tmu);
		n->running = false;
		pthread_mutex_unlock(&n->tmu);
		ir_loop_stop(n->loop);
		pthread_join(n->thread, NULL);
		pthread_mutex_lock(&n->rmu);
		n->rstop = true;
		pthread_cond_signal(&n->rcond);
		pthread_mutex_unlock(&n->rmu);
		pthread_join(n->rthread, NULL);
	}
	ir_ccc_stop(n->ccc);
	ir_peers_free(n->peers);
	if (n->ltcp)
		ir_listener_close(n->ltcp);
	if (n->lipc)
		ir_listener_close(n->lipc);
	for (size_t i = 0; n->conns.slot && i <= n->conns.mask; i++) {
		struct cref *r = n->conns.slot[i];
		if (r) {
			ir_conn_close(r->c);
			free(r);
		}
	}
	ir_otab_release(&n->conns);
	ir_outbox_free(n->outbox);
	if (n->loop) {
		/* let closed connections free themselves */
		ir_loop_run_once(n->loop, 0);
		ir_loop_free(n->loop);
	}
	free(n->load);
	free(n->dest);
	slice_free(&n->slice);
	pthread_mutex_destroy(&n->tmu);
	pthread_mutex_destroy(&n->rmu);
	pthread_cond_destroy(&n->rcond);
	memset(n->token, 0, sizeof(n->token));
	free(n);
}
