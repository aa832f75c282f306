/* transport.c - connection life cycle shared by every backend.
 *
 * Life of a connection: CONNECTING (dialer) -> HANDSHAKE -> OPEN, and on loss
 * either BACKOFF -> CONNECTING again (a reconnecting dialer) or DEAD.  A
 * connection is freed when it is DEAD and no callback is running on it: the
 * backends hold a reference around everything that may call back, and
 * every callback may close its own connection (valkey's deferred close).
 * The send queue belongs here, not to the backend, so that it survives a
 * reconnect and one memory bound covers every medium.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iroute/log.h"
#include "transport_int.h"

#define DEF_MAX_PAYLOAD (64u << 20)
#define DEF_RING_SIZE ((size_t)16 << 20)
#define DEF_SNDQ_LIMIT ((size_t)8 << 20)

void ir_conn_cfg_init(struct ir_conn_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->ident = "";
	cfg->max_payload = DEF_MAX_PAYLOAD;
	cfg->ring_size = DEF_RING_SIZE;
	cfg->sndq_limit = DEF_SNDQ_LIMIT;
	cfg->hello_timeout_ms = 2000;
	cfg->reconnect_min_ms = 10;
	cfg->reconnect_max_ms = 2000;
}

const struct ir_transport *ir_transport_by_name(const char *name)
{
	if (!name)
		return NULL;
	if (!strcmp(name, "ipc"))
		return &ir_transport_ipc;
	if (!strcmp(name, "tcp"))
		return &ir_transport_tcp;
	return NULL;
}

const char *ir_transport_name(const struct ir_transport *t)
{
	return t->name;
}

/* Copy @src into @dst, owning the token and ident; fill unset fields. */
static int cfg_copy(struct ir_conn_cfg *dst, uint8_t **token, char **ident,
		    const struct ir_conn_cfg *src)
{
	struct ir_conn_cfg def;
	ir_conn_cfg_init(&def);
	*dst = *src;
	if (!dst->max_payload)
		dst->max_payload = def.max_payload;
	if (!dst->ring_size)
		dst->ring_size = def.ring_size;
	if (!dst->sndq_limit)
		dst->sndq_limit = def.sndq_limit;
	if (!dst->hello_timeout_ms)
		dst->hello_timeout_ms = def.hello_timeout_ms;
	if (!dst->reconnect_min_ms)
		dst->reconnect_min_ms = def.reconnect_min_ms;
	if (dst->reconnect_max_ms < dst->reconnect_min_ms)
		dst->reconnect_max_ms = dst->reconnect_min_ms;
	if (!src->token || !src->token_len) {
		ir_error("transport",
			 "no cluster token configured: refusing to run unauthenticated");
		return -EINVAL;
	}
	*token = malloc(src->token_len);
	*ident = strdup(src->ident ? src->ident : "");
	if (!*token || !*ident) {
		free(*token);
		free(*ident);
		return -ENOMEM;
	}
	memcpy(*token, src->token, src->token_len);
	dst->token = *token;
	dst->ident = *ident;
	return 0;
}

static struct ir_conn *conn_new(const struct ir_transport *t, struct ir_loop *loop,
				const struct ir_conn_cfg *cfg, const struct ir_conn_cbs *cbs,
				void *ud)
{
	struct ir_conn *c = calloc(1, t->conn_size);
	if (!c)
		return NULL;
	if (cfg_copy(&c->cfg, &c->token, &c->ident, cfg) < 0) {
		free(c);
		return NULL;
	}
	c->t = t;
	c->loop = loop;
	c->cbs = *cbs;
	c->ud = ud;
	c->refs = 1;
	c->txq_tail = &c->txq;
	c->backoff_ms = c->cfg.reconnect_min_ms;
	return c;
}

static void txe_free(struct ir_conn *c, struct ir_txe *e)
{
	c->st.sndq_bytes -= e->copied;
	free(e->copy);
	free(e->iov_own);
	free(e);
}

/* Complete @e (already unlinked) with @status. */
static void txe_complete(struct ir_conn *c, struct ir_txe *e, int status)
{
	if (!status) {
		c->st.frames_out++;
		c->st.bytes_out += e->total - IR_FRAME_HDR_SIZE;
	}
	ir_send_cb cb = e->cb;
	void *arg = e->arg;
	txe_free(c, e);
	if (cb)
		cb(c, status, arg);
}

static void txq_fail_all(struct ir_conn *c, int status)
{
	while (c->txq) {
		struct ir_txe *e = c->txq;
		c->txq = e->next;
		if (!c->txq)
			c->txq_tail = &c->txq;
		txe_complete(c, e, status);
	}
}

static void conn_free(struct ir_conn *c)
{
	txq_fail_all(c, -ECANCELED);
	free(c->token);
	free(c->ident);
	free(c->addr);
	free(c);
}

void ir__conn_hold(struct ir_conn *c)
{
	c->refs++;
}

void ir__conn_put(struct ir_conn *c)
{
	if (--c->refs == 0)
		conn_free(c);
}

void ir__conn_set_error(struct ir_conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->last_error, sizeof(c->last_error), fmt, ap);
	va_end(ap);
}

static void ls_unlink(struct ir_conn *c)
{
	if (!c->ls)
		return;
	if (c->ls_prev)
		c->ls_prev->ls_next = c->ls_next;
	else
		c->ls->conns = c->ls_next;
	if (c->ls_next)
		c->ls_next->ls_prev = c->ls_prev;
	c->ls = NULL;
	c->ls_next = c->ls_prev = NULL;
}

static void cancel_timers(struct ir_conn *c)
{
	if (c->hello_timer)
		ir_loop_timer_cancel(c->loop, c->hello_timer);
	if (c->retry_timer)
		ir_loop_timer_cancel(c->loop, c->retry_timer);
	c->hello_timer = c->retry_timer = 0;
}

static void update_peer(struct ir_conn *c)
{
	if (c->hello.peer_ident[0])
		snprintf(c->peer, sizeof(c->peer), "%s '%s'", c->medium, c->hello.peer_ident);
	else
		snprintf(c->peer, sizeof(c->peer), "%s", c->medium);
}

/* ---- dialing and reconnecting ---- */

static void start_connect(struct ir_conn *c);

static void retry_timer_cb(struct ir_loop *loop, void *arg)
{
	(void)loop;
	struct ir_conn *c = arg;
	c->retry_timer = 0;
	if (c->state == IR_CONN_BACKOFF)
		start_connect(c);
}

static void schedule_retry(struct ir_conn *c)
{
	uint32_t ms = c->backoff_ms;
	/* +-25% jitter so that a crowd of dialers does not reconnect in step. */
	uint32_t jitter = ms / 4;
	if (jitter)
		ms = ms - jitter + (uint32_t)(random() % (2 * jitter + 1));
	c->state = IR_CONN_BACKOFF;
	c->retry_timer = ir_loop_timer_add(c->loop, (uint64_t)ms * 1000, retry_timer_cb, c);
	uint64_t next = (uint64_t)c->backoff_ms * 2;
	c->backoff_ms = next > c->cfg.reconnect_max_ms ? c->cfg.reconnect_max_ms : (uint32_t)next;
}

static void start_connect(struct ir_conn *c)
{
	c->state = IR_CONN_CONNECTING;
	c->last_error[0] = 0;
	c->st.connects++;
	snprintf(c->medium, sizeof(c->medium), "%s %s", c->t->name, c->addr);
	update_peer(c);
	int rc = c->t->connect(c);
	if (rc < 0)
		ir__conn_lost(c, rc, c->last_error[0] ? c->last_error : strerror(-rc));
}

int ir_dial(struct ir_loop *loop, const struct ir_transport *t, const char *addr,
	    const struct ir_conn_cfg *cfg, const struct ir_conn_cbs *cbs, void *ud,
	    struct ir_conn **out)
{
	*out = NULL;
	struct ir_conn *c = conn_new(t, loop, cfg, cbs, ud);
	if (!c)
		return cfg->token_len ? -ENOMEM : -EINVAL;
	c->dialer = 1;
	c->addr = strdup(addr);
	if (!c->addr) {
		conn_free(c);
		return -ENOMEM;
	}
	c->state = IR_CONN_CONNECTING;
	c->st.connects = 1;
	snprintf(c->medium, sizeof(c->medium), "%s %s", t->name, addr);
	update_peer(c);
	int rc = t->connect(c);
	if (rc < 0) {
		if (!c->cfg.reconnect) {
			ir_warn(t->name, "connect to %s failed: %s", addr,
				c->last_error[0] ? c->last_error : strerror(-rc));
			t->teardown(c);
			conn_free(c);
			return rc;
		}
		ir_info(t->name, "connect to %s failed: %s; retrying", addr,
			c->last_error[0] ? c->last_error : strerror(-rc));
		t->teardown(c);
		schedule_retry(c);
	}
	*out = c;
	return 0;
}

/* ---- handshake ---- */

static void hello_timeout_cb(struct ir_loop *loop, void *arg)
{
	(void)loop;
	struct ir_conn *c = arg;
	c->hello_timer = 0;
	if (c->state == IR_CONN_HANDSHAKE) {
		if (c->ls)
			c->ls->st.auth_failed++;
		ir_warn(c->t->name, "handshake with %s timed out after %u ms; closing", c->peer,
			c->cfg.hello_timeout_ms);
		ir__conn_lost(c, -ETIMEDOUT, "handshake timed out");
	}
}

int ir__conn_handshake_start(struct ir_conn *c)
{
	c->state = IR_CONN_HANDSHAKE;
	update_peer(c);
	int rc = ir_hello_start(&c->hello, c->token, c->cfg.token_len, c->ident, !c->dialer);
	if (rc < 0)
		return rc;
	c->hello_timer = ir_loop_timer_add(c->loop, (uint64_t)c->cfg.hello_timeout_ms * 1000,
					   hello_timeout_cb, c);
	rc = c->t->hs_send(c, c->hello.out, c->hello.out_len, 0);
	c->hello.out_len = 0;
	return rc;
}

static void conn_opened(struct ir_conn *c)
{
	if (c->hello_timer)
		ir_loop_timer_cancel(c->loop, c->hello_timer);
	c->hello_timer = 0;
	c->state = IR_CONN_OPEN;
	update_peer(c);
	if (c->dialer) {
		if (c->opened_once)
			c->st.reconnects++;
		c->opened_once = 1;
		c->backoff_ms = c->cfg.reconnect_min_ms;
	} else if (c->ls) {
		c->ls->st.accepted++;
	}
	ir_debug(c->t->name, "open: %s", c->peer);
	ir__conn_hold(c);
	if (c->cbs.on_open)
		c->cbs.on_open(c, c->ud);
	if (c->state == IR_CONN_OPEN)
		ir__conn_flush(c);
	ir__conn_put(c);
}

static int handshake_input(struct ir_conn *c, const struct ir_frame_hdr *h, const uint8_t *payload)
{
	const char *why = "";
	int rc = ir_hello_input(&c->hello, h, payload, &why);
	if (rc < 0) {
		if (c->ls)
			c->ls->st.auth_failed++;
		update_peer(c);
		ir_warn(c->t->name, "authentication failed with %s: %s; closing", c->peer, why);
		ir__conn_set_error(c, "authentication failed: %s", why);
		ir__conn_lost(c, rc, why);
		return rc;
	}
	if (c->hello.out_len) {
		int wr = c->t->hs_send(c, c->hello.out, c->hello.out_len, rc == 1);
		c->hello.out_len = 0;
		if (wr < 0) {
			ir__conn_lost(c, wr, "handshake write failed");
			return wr;
		}
	}
	if (rc == 1) {
		update_peer(c);
		if (c->t->hs_done) {
			int d = c->t->hs_done(c);
			if (d < 0) {
				ir__conn_lost(c, d, c->last_error);
				return d;
			}
		}
		conn_opened(c);
		if (c->state != IR_CONN_OPEN)
			return -ECANCELED;
	}
	return 0;
}

/* ---- receiving ---- */

int ir__conn_bad_frame(struct ir_conn *c, const char *why)
{
	c->st.bad_frames++;
	if (c->ls)
		c->ls->st.bad_frames++;
	ir_warn(c->t->name, "bad frame from %s: %s; closing", c->peer, why);
	ir__conn_set_error(c, "bad frame: %s", why);
	ir__conn_lost(c, -EPROTO, why);
	return -EPROTO;
}

int ir__conn_deliver(struct ir_conn *c, const struct ir_frame_hdr *h, const uint8_t *payload)
{
	if (c->state == IR_CONN_HANDSHAKE)
		return handshake_input(c, h, payload);
	if (c->state != IR_CONN_OPEN)
		return -ECANCELED;
	if (h->type == IR_FRAME_HELLO || h->type == IR_FRAME_AUTH)
		return ir__conn_bad_frame(c, "handshake frame on an open connection");
	c->st.frames_in++;
	c->st.bytes_in += h->payload_len;
	if (c->cbs.on_msg) {
		struct ir_msg m = {.hdr = *h, .payload = payload};
		c->cbs.on_msg(c, &m, c->ud);
	}
	return c->state == IR_CONN_OPEN ? 0 : -ECANCELED;
}

/* ---- loss and close ---- */

void ir__conn_lost(struct ir_conn *c, int err, const char *why)
{
	if (c->state == IR_CONN_DEAD || c->state == IR_CONN_BACKOFF)
		return;
	int was_open = c->state == IR_CONN_OPEN;
	if (why && *why && why != c->last_error)
		ir__conn_set_error(c, "%s", why);
	const char *reason = why && *why ? why : (err ? strerror(-err) : "closed by peer");
	if (was_open)
		ir_log(err ? IR_LOG_WARN : IR_LOG_INFO, c->t->name, "connection to %s lost: %s",
		       c->peer, reason);
	else if (c->dialer)
		ir_log(c->cfg.reconnect ? IR_LOG_DEBUG : IR_LOG_WARN, c->t->name,
		       "connecting to %s failed: %s", c->peer, reason);
	c->t->teardown(c);
	if (c->hello_timer)
		ir_loop_timer_cancel(c->loop, c->hello_timer);
	c->hello_timer = 0;
	c->reserving = 0;
	/* A frame cut in the middle goes again, whole, on the next connection. */
	if (c->txq)
		c->txq->off = 0;
	ir__conn_hold(c);
	if (c->dialer && c->cfg.reconnect) {
		schedule_retry(c);
		/* A failed attempt is reported too: the peer may be gone for
		 * good, and the layer above decides (node.c resends elsewhere). */
		if (c->cbs.on_close)
			c->cbs.on_close(c, was_open ? err : (err ? err : -ECONNREFUSED), c->ud);
	} else {
		c->state = IR_CONN_DEAD;
		ls_unlink(c);
		txq_fail_all(c, err ? err : -EPIPE);
		if ((was_open || c->dialer) && c->cbs.on_close)
			c->cbs.on_close(c, err, c->ud);
		ir__conn_put(c); /* the reference the connection held on itself */
	}
	ir__conn_put(c);
}

void ir_conn_close(struct ir_conn *c)
{
	if (!c || c->state == IR_CONN_DEAD)
		return;
	c->state = IR_CONN_DEAD;
	cancel_timers(c);
	c->t->teardown(c);
	ls_unlink(c);
	ir__conn_hold(c);
	txq_fail_all(c, -ECANCELED);
	ir__conn_put(c);
	ir__conn_put(c);
}

/* ---- sending ---- */

void ir_txe_gather(const struct ir_txe *e, size_t off, uint8_t *dst, size_t n)
{
	while (n && off < IR_FRAME_HDR_SIZE) {
		size_t k = IR_FRAME_HDR_SIZE - off < n ? IR_FRAME_HDR_SIZE - off : n;
		memcpy(dst, e->hdr + off, k);
		dst += k;
		off += k;
		n -= k;
	}
	off -= IR_FRAME_HDR_SIZE;
	for (int i = 0; n && i < e->iovcnt; i++) {
		size_t len = e->iov[i].iov_len;
		if (off >= len) {
			off -= len;
			continue;
		}
		size_t k = len - off < n ? len - off : n;
		memcpy(dst, (const uint8_t *)e->iov[i].iov_base + off, k);
		dst += k;
		n -= k;
		off = 0;
	}
}

int ir_txe_iov(const struct ir_txe *e, size_t off, struct iovec *out, int max)
{
	int n = 0;
	if (off < IR_FRAME_HDR_SIZE && n < max) {
		out[n].iov_base = (void *)(e->hdr + off);
		out[n++].iov_len = IR_FRAME_HDR_SIZE - off;
		off = 0;
	} else {
		off -= IR_FRAME_HDR_SIZE;
	}
	for (int i = 0; i < e->iovcnt && n < max; i++) {
		size_t len = e->iov[i].iov_len;
		if (off >= len) {
			off -= len;
			continue;
		}
		out[n].iov_base = (uint8_t *)e->iov[i].iov_base + off;
		out[n++].iov_len = len - off;
		off = 0;
	}
	return n;
}

void ir__conn_flush(struct ir_conn *c)
{
	ir__conn_hold(c);
	while (c->txq && c->state == IR_CONN_OPEN) {
		struct ir_txe *e = c->txq;
		int rc = c->t->push(c, e);
		if (rc < 0) {
			ir__conn_lost(c, rc, c->last_error[0] ? c->last_error : strerror(-rc));
			break;
		}
		if (e->off < e->total)
			break;
		c->txq = e->next;
		if (!c->txq)
			c->txq_tail = &c->txq;
		txe_complete(c, e, 0);
	}
	if (!c->txq && c->want_writable && c->state == IR_CONN_OPEN) {
		c->want_writable = 0;
		if (c->cbs.on_writable)
			c->cbs.on_writable(c, c->ud);
	}
	ir__conn_put(c);
}

int ir_conn_send(struct ir_conn *c, const struct ir_frame_hdr *h, const struct iovec *iov,
		 int iovcnt, ir_send_cb cb, void *arg)
{
	if (c->state == IR_CONN_DEAD)
		return -ENOTCONN;
	if (c->reserving)
		return -EBUSY;
	if (iovcnt < 0 || (iovcnt > 0 && !iov))
		return -EINVAL;
	size_t plen = 0;
	for (int i = 0; i < iovcnt; i++)
		plen += iov[i].iov_len;
	if (plen > c->cfg.max_payload) {
		ir__conn_set_error(c, "payload of %zu bytes is over the limit of %u", plen,
				   c->cfg.max_payload);
		return -EMSGSIZE;
	}
	if (!cb && c->txq && c->st.sndq_bytes + plen > c->cfg.sndq_limit) {
		c->want_writable = 1;
		return -EAGAIN;
	}
	struct ir_frame_hdr fh = *h;
	fh.payload_len = (uint32_t)plen;
	struct ir_txe se = {.total = IR_FRAME_HDR_SIZE + plen, .iov = iov, .iovcnt = iovcnt};
	ir_frame_encode(&fh, se.hdr);

	if (c->state == IR_CONN_OPEN && !c->txq) {
		int rc = c->t->push(c, &se);
		if (rc < 0) {
			ir__conn_lost(c, rc, c->last_error[0] ? c->last_error : strerror(-rc));
			if (c->state == IR_CONN_DEAD)
				return rc;
			se.off = 0; /* reconnecting: queue it for the next connection */
		} else if (se.off == se.total) {
			c->st.frames_out++;
			c->st.bytes_out += plen;
			return 1;
		}
	}

	struct ir_txe *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	memcpy(e->hdr, se.hdr, sizeof(e->hdr));
	e->total = se.total;
	e->off = se.off;
	e->cb = cb;
	e->arg = arg;
	if (!cb) {
		/* Copy semantics: the caller's buffers are free when we return. */
		if (plen) {
			e->copy = malloc(plen);
			if (!e->copy) {
				free(e);
				return -ENOMEM;
			}
			size_t o = 0;
			for (int i = 0; i < iovcnt; i++) {
				memcpy(e->copy + o, iov[i].iov_base, iov[i].iov_len);
				o += iov[i].iov_len;
			}
		}
		e->copied = plen;
		e->iov_one.iov_base = e->copy;
		e->iov_one.iov_len = plen;
		e->iov = &e->iov_one;
		e->iovcnt = 1;
		c->st.sndq_bytes += plen;
		if (c->st.sndq_bytes > c->st.sndq_peak)
			c->st.sndq_peak = c->st.sndq_bytes;
	} else if (iovcnt == 1) {
		e->iov_one = iov[0];
		e->iov = &e->iov_one;
		e->iovcnt = 1;
	} else if (iovcnt > 1) {
		e->iov_own = malloc(sizeof(*iov) * (size_t)iovcnt);
		if (!e->iov_own) {
			free(e);
			return -ENOMEM;
		}
		memcpy(e->iov_own, iov, sizeof(*iov) * (size_t)iovcnt);
		e->iov = e->iov_own;
		e->iovcnt = iovcnt;
	}
	*c->txq_tail = e;
	c->txq_tail = &e->next;
	return 0;
}

int ir_conn_reserve(struct ir_conn *c, size_t len, void **buf)
{
	if (c->state != IR_CONN_OPEN)
		return -ENOTCONN;
	if (c->reserving)
		return -EBUSY;
	if (len > c->cfg.max_payload)
		return -EMSGSIZE;
	if (c->txq) {
		c->want_writable = 1;
		return -EAGAIN;
	}
	int rc = c->t->reserve(c, len, buf);
	if (rc == -EAGAIN)
		c->want_writable = 1;
	else if (rc == 0)
		c->reserving = 1;
	return rc;
}

int ir_conn_publish(struct ir_conn *c, const struct ir_frame_hdr *h, size_t len)
{
	if (!c->reserving || c->state != IR_CONN_OPEN)
		return -EINVAL;
	struct ir_frame_hdr fh = *h;
	fh.payload_len = (uint32_t)len;
	uint8_t hdr[IR_FRAME_HDR_SIZE];
	ir_frame_encode(&fh, hdr);
	c->reserving = 0;
	int rc = c->t->publish(c, hdr, len);
	if (rc < 0) {
		ir__conn_lost(c, rc, c->last_error[0] ? c->last_error : strerror(-rc));
		return rc;
	}
	c->st.frames_out++;
	c->st.bytes_out += len;
	return 0;
}

void ir_conn_unreserve(struct ir_conn *c)
{
	if (!c->reserving)
		return;
	c->reserving = 0;
	c->t->unreserve(c);
}

int ir__conn_inject(struct ir_conn *c, const void *data, size_t len, uint32_t flags)
{
	if (c->state != IR_CONN_OPEN || c->txq || c->reserving)
		return -ENOTCONN;
	return c->t->inject(c, data, len, flags);
}

/* ---- accessors ---- */

int ir_conn_is_open(const struct ir_conn *c)
{
	return c->state == IR_CONN_OPEN;
}

void *ir_conn_data(const struct ir_conn *c)
{
	return c->ud;
}

void ir_conn_set_data(struct ir_conn *c, void *ud)
{
	c->ud = ud;
}

const char *ir_conn_peer(const struct ir_conn *c)
{
	return c->peer;
}

const char *ir_conn_peer_ident(const struct ir_conn *c)
{
	return c->hello.peer_ident;
}

const char *ir_conn_last_error(const struct ir_conn *c)
{
	return c->last_error;
}

const struct ir_transport *ir_conn_transport(const struct ir_conn *c)
{
	return c->t;
}

void ir_conn_stats(const struct ir_conn *c, struct ir_conn_stats *st)
{
	*st = c->st;
}

/* ---- listeners ---- */

static void listener_io_cb(struct ir_loop *loop, int fd, unsigned events, void *arg)
{
	(void)loop;
	(void)fd;
	(void)events;
	struct ir_listener *ls = arg;
	ls->t->accept(ls);
}

int ir_listen(struct ir_loop *loop, const struct ir_transport *t, const char *addr,
	      const struct ir_conn_cfg *cfg, const struct ir_conn_cbs *cbs, void *ud,
	      struct ir_listener **out)
{
	*out = NULL;
	struct ir_listener *ls = calloc(1, sizeof(*ls));
	if (!ls)
		return -ENOMEM;
	int rc = cfg_copy(&ls->cfg, &ls->token, &ls->ident, cfg);
	if (rc < 0) {
		free(ls);
		return rc;
	}
	ls->t = t;
	ls->loop = loop;
	ls->cbs = *cbs;
	ls->ud = ud;
	ls->fd = -1;
	rc = t->listen(ls, addr);
	if (rc == 0) {
		rc = ir_loop_add_fd(loop, ls->fd, IR_EV_READ, listener_io_cb, ls);
		if (rc < 0)
			t->listener_close(ls);
	}
	if (rc < 0) {
		free(ls->token);
		free(ls->ident);
		free(ls);
		return rc;
	}
	*out = ls;
	return 0;
}

struct ir_conn *ir__conn_accepted(struct ir_listener *ls)
{
	struct ir_conn *c = conn_new(ls->t, ls->loop, &ls->cfg, &ls->cbs, ls->ud);
	if (!c)
		return NULL;
	c->ls = ls;
	c->ls_next = ls->conns;
	if (ls->conns)
		ls->conns->ls_prev = c;
	ls->conns = c;
	return c;
}

const char *ir_listener_addr(const struct ir_listener *ls)
{
	return ls->addr;
}

void ir_listener_stats(const struct ir_listener *ls, struct ir_listener_stats *st)
{
	*st = ls->st;
}

void ir_listener_close(struct ir_listener *ls)
{
	if (!ls)
		return;
	while (ls->conns) {
		struct ir_conn *c = ls->conns;
		ls->conns = c->ls_next;
		c->ls = NULL;
		c->ls_next = c->ls_prev = NULL;
		/* Handshakes in progress die with their listener. */
		if (c->state == IR_CONN_HANDSHAKE)
			ir_conn_close(c);
	}
	ir_loop_del_fd(ls->loop, ls->fd);
	ls->t->listener_close(ls);
	free(ls->token);
	free(ls->ident);
	free(ls);
}
