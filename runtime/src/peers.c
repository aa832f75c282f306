/* peers.c - per-peer transport choice and connections (see peers.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iroute/token.h"
#include "peers.h"

/* ---- the choice ---- */

/* Is the peer's IPC socket visible from here (the shared directory)? */
static bool ipc_visible(const char *addr)
{
	char path[512];
	if (addr[0] == '/')
		snprintf(path, sizeof(path), "%s", addr);
	else
		snprintf(path, sizeof(path), "%s/%s.sock", ir_ipc_dir(), addr);
	return access(path, F_OK) == 0;
}

const struct ir_transport *ir_peer_choose(const struct ir_route_inst *peer, const char *self_node,
					  const char *force, const char **addr, char *why,
					  size_t cap)
{
	bool has_ipc = peer->ipc[0] && (peer->transports & IR_TR_IPC);
	bool has_tcp = peer->tcp[0] && (peer->transports & IR_TR_TCP);
	*addr = NULL;
	if (force && strcmp(force, "ipc") == 0) {
		if (has_ipc) {
			*addr = peer->ipc;
			return &ir_transport_ipc;
		}
		snprintf(why, cap, "%s offers no ipc address (IROUTE_TRANSPORT=ipc)", peer->id);
		return NULL;
	}
	if (force && strcmp(force, "tcp") == 0) {
		if (has_tcp) {
			*addr = peer->tcp;
			return &ir_transport_tcp;
		}
		snprintf(why, cap, "%s offers no tcp address (IROUTE_TRANSPORT=tcp)", peer->id);
		return NULL;
	}
	bool same_node = self_node && *self_node && strcmp(peer->node, self_node) == 0;
	if (has_ipc && same_node && ipc_visible(peer->ipc)) {
		*addr = peer->ipc;
		return &ir_transport_ipc;
	}
	if (has_tcp) {
		*addr = peer->tcp;
		return &ir_transport_tcp;
	}
	snprintf(why, cap, "%s: no tcp address, and %s", peer->id,
		 !has_ipc     ? "no ipc address"
		 : !same_node ? "its ipc address is on another node"
			      : "its ipc socket is not in this node's IPC directory");
	return NULL;
}

/* ---- the connections ---- */

struct peer {
	char id[80];
	struct ir_conn *c;
	struct ir_peers *owner;
};

struct ir_peers {
	struct ir_loop *loop;
	struct ir_conn_cfg cfg;
	uint8_t token[IR_TOKEN_MAX];
	char ident[128];
	struct ir_conn_cbs cbs; /* the caller's */
	void *ud;
	char self_node[65];
	char force[8];
	struct peer **v;
	size_t n, cap;
};

/* Our callbacks: the connection's data is its struct peer. */
static void p_open(struct ir_conn *c, void *ud)
{
	struct peer *pe = ud;
	if (pe->owner->cbs.on_open)
		pe->owner->cbs.on_open(c, pe->owner->ud);
}

static void p_msg(struct ir_conn *c, const struct ir_msg *m, void *ud)
{
	struct peer *pe = ud;
	if (pe->owner->cbs.on_msg)
		pe->owner->cbs.on_msg(c, m, pe->owner->ud);
}

static void p_writable(struct ir_conn *c, void *ud)
{
	struct peer *pe = ud;
	if (pe->owner->cbs.on_writable)
		pe->owner->cbs.on_writable(c, pe->owner->ud);
}

static void p_close(struct ir_conn *c, int err, void *ud)
{
	struct peer *pe = ud;
	if (pe->owner->cbs.on_close)
		pe->owner->cbs.on_close(c, err, pe->owner->ud);
}

static const struct ir_conn_cbs peer_cbs = {
    .on_open = p_open, .on_msg = p_msg, .on_writable = p_writable, .on_close = p_close};

int ir_peers_new(struct ir_peers **out, struct ir_loop *loop, const struct ir_conn_cfg *cfg,
		 const struct ir_conn_cbs *cbs, void *ud, const char *self_node, const char *force)
{
	*out = NULL;
	if (cfg->token_len > IR_TOKEN_MAX)
		return -EINVAL;
	struct ir_peers *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->loop = loop;
	p->cfg = *cfg;
	memcpy(p->token, cfg->token, cfg->token_len);
	p->cfg.token = p->token;
	snprintf(p->ident, sizeof(p->ident), "%s", cfg->ident ? cfg->ident : "");
	p->cfg.ident = p->ident;
	p->cfg.reconnect = 1;
	p->cbs = *cbs;
	p->ud = ud;
	snprintf(p->self_node, sizeof(p->self_node), "%s", self_node ? self_node : "");
	snprintf(p->force, sizeof(p->force), "%s", force ? force : "");
	*out = p;
	return 0;
}

static struct peer *find(const struct ir_peers *p, const char *id, size_t *at)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->v[i]->id, id) == 0) {
			if (at)
				*at = i;
			return p->v[i];
		}
	return NULL;
}

int ir_peers_get(struct ir_peers *p, const struct ir_route_inst *peer, struct ir_conn **c,
		 char *why, size_t cap)
{
	struct peer *pe = find(p, peer->id, NULL);
	if (pe) {
		*c = pe->c;
		return 0;
	}
	const char *addr;
	const struct ir_transport *t = ir_peer_choose(peer, p->self_node, p->force, &addr, why, cap);
	if (!t)
		return -EHOSTUNREACH;
	if (p->n == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 8;
		struct peer **v = realloc(p->v, ncap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		p->v = v;
		p->cap = ncap;
	}
	if (!(pe = calloc(1, sizeof(*pe))))
		return -ENOMEM;
	snprintf(pe->id, sizeof(pe->id), "%s", peer->id);
	pe->owner = p;
	int rc = ir_dial(p->loop, t, addr, &p->cfg, &peer_cbs, pe, &pe->c);
	if (rc < 0) {
		snprintf(why, cap, "dial %s %s (%s): %s", ir_transport_name(t), addr, peer->id,
			 strerror(-rc));
		free(pe);
		return rc;
	}
	p->v[p->n++] = pe;
	*c = pe->c;
	return 0;
}

const char *ir_peers_id(const struct ir_peers *p, const struct ir_conn *c)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i]->c == c)
			return p->v[i]->id;
	return NULL;
}

static void drop_at(struct ir_peers *p, size_t i)
{
	struct peer *pe = p->v[i];
	ir_conn_close(pe->c); /* no on_close after this */
	free(pe);
	p->v[i] = p->v[--p->n];
}

bool ir_peers_drop(struct ir_peers *p, const char *id)
{
	size_t i;
	if (!find(p, id, &i))
		return false;
	drop_at(p, i);
	return true;
}

static bool in_table(const struct ir_table *t, const char *id)
{
	for (size_t r = 0; r < t->nroutes; r++)
		for (size_t i = 0; i < t->routes[r].n; i++)
			if (strcmp(t->routes[r].inst[i].id, id) == 0)
				return true;
	for (size_t i = 0; i < t->nentries; i++)
		if (strcmp(t->entries[i].id, id) == 0)
			return true;
	return false;
}

size_t ir_peers_prune(struct ir_peers *p, const struct ir_table *t)
{
	size_t closed = 0;
	for (size_t i = 0; i < p->n;) {
		if (in_table(t, p->v[i]->id)) {
			i++;
			continue;
		}
		drop_at(p, i); /* moves the last one into i */
		closed++;
	}
	return closed;
}

size_t ir_peers_count(const struct ir_peers *p)
{
	return p->n;
}

void ir_peers_free(struct ir_peers *p)
{
	if (!p)
		return;
	while (p->n)
		drop_at(p, p->n - 1);
	free(p->v);
	free(p);
}
