/* zkmirror.c - the mirror's ZooKeeper backend (layout and contract in
 * mirror.h); the digest credentials are zkauth.c.
 *
 * Why this design: the coordinator's mirror thread is the only caller, so
 * every call is a plain synchronous ZooKeeper call (zoo_get, zoo_multi)
 * on that thread: no completion state machine, and an error comes back
 * where the decision is made.  What cannot be synchronous is the session:
 * the library reconnects by itself, and the global watcher only records
 * the state (under m->lock) and wakes a caller that waits for it, up to
 * op_timeout_ms, instead of failing at once while a reconnect is under
 * way.  An expired session is the one thing the library does not repair:
 * the watcher makes the new handle itself (zookeeper_init() is fine from
 * a callback, zookeeper_close() is not: it joins the very thread it runs
 * on), so a mirror that only watches recovers without a call, and the
 * retired handle is closed by the caller's thread on its next call or at
 * close.  Each handle has its own struct zk_conn, freed only after
 * zookeeper_close() returned, so a callback's context is always alive.
 * The digest credential is added at a handle's first CONNECTED, not
 * right after zookeeper_init(): the library refuses zoo_add_auth()
 * between two connection attempts (ZOOKEEPER-800), and it re-sends the
 * credential by itself on every later reconnect of the session.  Once a
 * call is sent, a hung server holds it until the library gives up on the
 * connection (2/3 of the session timeout), then it fails with -EAGAIN.
 *
 * A store is one zoo_multi(): setData of the epoch node at the version
 * last seen (the compare-and-set), setData of workflow and entries, and
 * per function setData, create (a function new in this workflow) or
 * delete (one no longer in it).  Creating and deleting function nodes
 * inside the multi, rather than before it, means that a stale
 * coordinator changes nothing at all and that functions/ always holds
 * exactly the stored snapshot's functions.  A snapshot too large for one
 * request (1 MiB) is refused up front with -EMSGSIZE: the server would
 * only drop the connection, and the caller would retry forever.  The version is forgotten when
 * a new session starts and re-read (with the epoch comparison) at the
 * next store; a compare-and-set on an old version would take the same
 * path anyway.  A store whose reply was lost (connection loss after the
 * server applied it) is recognised on the retry: the epoch node then
 * holds exactly the snapshot's epoch, ms and instance count.
 *
 * Rejected: the async API for stores (the caller has nothing else to do
 * while waiting), one watcher thread of our own (the library already has
 * a completion thread), and sequential nodes per epoch (readers would
 * have to list and garbage-collect them; the version of one node is the
 * same compare-and-set for free).
 *
 * The watch is an exists watch on the epoch node (set whether or not the
 * node exists), re-armed from its own event and, after a new session or
 * a request lost to a disconnect, at the next CONNECTED; each event is
 * followed by an async get of the new value and cb(arg, epoch).  Both
 * run on ZooKeeper's completion thread (of the current handle), never
 * after ir_mirror_close() returned: zookeeper_close() joins that thread.
 *
 * load() reads the epoch node, workflow, entries and every child of
 * functions/ (names sorted with strcmp, so the output is stable), then
 * checks that the epoch node's version has not moved; if it has, a store
 * ran in between and the load is repeated (at most 3 times).  Every node
 * is read into one buffer of 1 MiB (jute.maxbuffer's default), grown to
 * the node's dataLength if a server allows more.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#ifndef THREADED
#define THREADED /* the synchronous API of libzookeeper_mt */
#endif
#include <zookeeper/zookeeper.h>

#include "mirror.h"
#include "zkauth.h"

#define ZK_READ_BUF (1u << 20)		 /* jute.maxbuffer's default */
#define ZK_MULTI_MAX ((1u << 20) - 4096) /* one request: the same limit, minus headers */
#define ZK_OP_OVERHEAD 64		 /* per op in the multi, beyond path and data */
#define ZK_ATTEMPTS 3			 /* stores and loads retried on a concurrent change */
#define ZK_NAME_MAX 255
#define ZK_WF_PATH (sizeof("/iroute/") + ZK_NAME_MAX)
#define ZK_PATH_MAX (ZK_WF_PATH + sizeof("/functions"))

/* ---- the mirror ---- */

struct zk_mirror;

/* One ZooKeeper handle (one session).  Its flags are under m->lock. */
struct zk_conn {
	struct zk_mirror *m;
	zhandle_t *zh;
	bool connected;
	bool authed; /* zoo_add_auth() done */
	bool auth_failed;
	bool arm_pending;     /* (re)arm the epoch watch at the next CONNECTED */
	struct zk_conn *next; /* on m->dead */
};

struct zk_mirror {
	struct ir_mirror base;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* broadcast on every session state change */
	/* under lock (the completion threads write them) */
	struct zk_conn *conn; /* the current handle; NULL after a failed re-init */
	struct zk_conn *dead; /* retired handles, closed by the caller's thread */
	uint64_t sessions;    /* handles made so far */
	void (*cb)(void *arg, uint64_t epoch);
	void *arg;
	bool closing;
	/* immutable after open */
	char *hosts, *cred;
	uint32_t session_ms, op_ms;
	bool writer;
	struct ACL acl[2];
	struct ACL_vector aclv;
	char p_wf[ZK_WF_PATH], p_epoch[ZK_PATH_MAX], p_workflow[ZK_PATH_MAX];
	char p_fns[ZK_PATH_MAX], p_entries[ZK_PATH_MAX];
	/* the caller's thread only */
	bool seen; /* ver, epoch, ems, en: the epoch node as last read or written */
	int32_t ver;
	uint64_t epoch, ems;
	uint32_t en;
	uint64_t ver_sessions; /* sessions when ver was read */
	bool tree;	       /* the fixed nodes exist and names[] lists functions/ */
	char **names;	       /* sorted */
	size_t nnames;
	char *buf; /* node reads */
	size_t cap;
};

static int zfail(const struct zk_mirror *m, char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int zfail(const struct zk_mirror *m, char *err, size_t errlen, int rc, const char *fmt, ...)
{
	if (!err || !errlen)
		return rc;
	int n = snprintf(err, errlen, "zookeeper %s: ", m->hosts);
	if (n < 0 || (size_t)n >= errlen)
		return rc;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return rc;
}

static int zrc_errno(int zrc)
{
	switch (zrc) {
	case ZCONNECTIONLOSS:
	case ZOPERATIONTIMEOUT:
	case ZSESSIONMOVED:
	case ZSESSIONEXPIRED:
	case ZINVALIDSTATE:
	case ZCLOSING:
		return -EAGAIN;
	case ZNOAUTH:
	case ZAUTHFAILED:
		return -EACCES;
	case ZNONODE:
		return -ENOENT;
	case ZNODEEXISTS:
		return -EEXIST;
	case ZBADVERSION:
		return -ESTALE;
	case ZBADARGUMENTS:
		return -EINVAL;
	case ZMARSHALLINGERROR:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

/* A failed call: -errno and "zookeeper H: <what> <path>: <zerror>". */
static int zcall_fail(const struct zk_mirror *m, char *err, size_t errlen, int zrc,
		      const char *what, const char *path)
{
	return zfail(m, err, errlen, zrc_errno(zrc), "%s %s: %s", what, path, zerror(zrc));
}

/* ---- sessions: handles, the global watcher, the epoch watch ---- */

static void on_session(zhandle_t *zh, int type, int state, const char *path, void *ctx);
static void on_epoch_event(zhandle_t *zh, int type, int state, const char *path, void *ctx);

/* Parses the epoch node's data; 0, or -EPROTO.  Empty data (nodes made,
 * no snapshot stored yet) gives epoch 0. */
static int epoch_parse(const char *p, int len, uint64_t *epoch, uint64_t *ms, uint32_t *n)
{
	*epoch = *ms = 0;
	*n = 0;
	if (len <= 0)
		return 0;
	cJSON *o = cJSON_ParseWithLength(p, (size_t)len);
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "epoch");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "ms");
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "instances");
	int rc = -EPROTO;
	if (cJSON_IsNumber(e) && e->valuedouble >= 1 && e->valuedouble <= 9007199254740992.0 &&
	    cJSON_IsNumber(t) && t->valuedouble >= 0 && t->valuedouble <= 9007199254740992.0 &&
	    cJSON_IsNumber(c) && c->valuedouble >= 0 && c->valuedouble <= UINT32_MAX) {
		*epoch = (uint64_t)e->valuedouble;
		*ms = (uint64_t)t->valuedouble;
		*n = (uint32_t)c->valuedouble;
		rc = 0;
	}
	cJSON_Delete(o);
	return rc;
}

/* Runs @cb, outside the lock, unless @c is retired or the mirror closing. */
static void watch_notify(struct zk_conn *c, uint64_t epoch)
{
	struct zk_mirror *m = c->m;
	pthread_mutex_lock(&m->lock);
	void (*cb)(void *, uint64_t) = m->closing || c != m->conn ? NULL : m->cb;
	void *arg = m->arg;
	pthread_mutex_unlock(&m->lock);
	if (cb)
		cb(arg, epoch);
}

static void on_epoch_data(int rc, const char *value, int len, const struct Stat *st,
			  const void *data)
{
	struct zk_conn *c = (struct zk_conn *)data;
	uint64_t epoch = 0, ms;
	uint32_t n;
	(void)st;
	if (rc == ZOK && epoch_parse(value, len, &epoch, &ms, &n) < 0)
		epoch = 0;
	if (rc != ZCLOSING)
		watch_notify(c, epoch);
}

/* The watch is set again after a lost request at the next CONNECTED. */
static void arm_failed(struct zk_conn *c, int rc)
{
	if (rc != ZCONNECTIONLOSS && rc != ZOPERATIONTIMEOUT)
		return; /* closing or expired: the next handle arms its own */
	pthread_mutex_lock(&c->m->lock);
	c->arm_pending = true;
	pthread_mutex_unlock(&c->m->lock);
}

static void on_epoch_armed(int rc, const struct Stat *st, const void *data)
{
	(void)st;
	if (rc != ZOK && rc != ZNONODE)
		arm_failed((struct zk_conn *)data, rc);
}

/* Armed after an event: read the new value for the callback. */
static void on_epoch_rearmed(int rc, const struct Stat *st, const void *data)
{
	struct zk_conn *c = (struct zk_conn *)data;
	(void)st;
	if (rc == ZOK) {
		rc = zoo_aget(c->zh, c->m->p_epoch, 0, on_epoch_data, c);
		if (rc == ZOK)
			return;
	} else if (rc != ZNONODE) {
		arm_failed(c, rc);
		return;
	}
	watch_notify(c, 0);
}

/* m->lock held.  An exists watch fires on create, change and delete, and
 * is set whether or not the node exists. */
static void watch_arm(struct zk_conn *c, bool notify)
{
	int rc = zoo_awexists(c->zh, c->m->p_epoch, on_epoch_event, c,
			      notify ? on_epoch_rearmed : on_epoch_armed, c);
	if (rc != ZOK)
		c->arm_pending = true;
}

/* The epoch watch fired (watches fire once): arm it again, then report. */
static void on_epoch_event(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	struct zk_conn *c = ctx;
	struct zk_mirror *m = c->m;
	(void)zh;
	(void)state;
	(void)path;
	if (type == ZOO_SESSION_EVENT || type == ZOO_NOTWATCHING_EVENT)
		return; /* on_session() has it */
	pthread_mutex_lock(&m->lock);
	if (!m->closing && c == m->conn && m->cb)
		watch_arm(c, true);
	pthread_mutex_unlock(&m->lock);
}

/* m->lock held.  Makes m->conn: a handle, not yet authenticated. */
static int conn_new(struct zk_mirror *m)
{
	struct zk_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->m = m;
	c->arm_pending = m->cb != NULL;
	errno = 0;
	c->zh = zookeeper_init(m->hosts, on_session, (int)m->session_ms, NULL, c, 0);
	if (!c->zh) {
		int e = errno ? errno : EINVAL;
		free(c);
		return -e;
	}
	m->conn = c;
	m->sessions++;
	return 0;
}

/* m->lock held, first CONNECTED of @c.  zoo_add_auth() refuses while the
 * handle is between two connection attempts (ZOOKEEPER-800), so it is
 * called here; the library sends it again on every later reconnect of
 * the session, and before any request a caller queues once it sees
 * connected. */
static void conn_auth(struct zk_conn *c)
{
	struct zk_mirror *m = c->m;
	int rc = zoo_add_auth(c->zh, "digest", m->cred, (int)strlen(m->cred), NULL, NULL);
	c->authed = true;
	if (rc != ZOK)
		c->auth_failed = true;
}

/* The global watcher: session states only. */
static void on_session(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	struct zk_conn *c = ctx;
	struct zk_mirror *m = c->m;
	(void)zh;
	(void)path;
	if (type != ZOO_SESSION_EVENT)
		return;
	pthread_mutex_lock(&m->lock);
	if (m->closing || c != m->conn)
		goto out; /* a retired handle */
	c->connected = state == ZOO_CONNECTED_STATE;
	if (c->connected && !c->authed)
		conn_auth(c);
	if (c->connected && c->arm_pending && m->cb) {
		c->arm_pending = false;
		watch_arm(c, true); /* a change may have been missed */
	} else if (state == ZOO_EXPIRED_SESSION_STATE) {
		m->conn = NULL;
		c->next = m->dead;
		m->dead = c;
		conn_new(m); /* on failure the next call tries again */
	} else if (state == ZOO_AUTH_FAILED_STATE) {
		c->auth_failed = true;
	}
	pthread_cond_broadcast(&m->cond);
out:
	pthread_mutex_unlock(&m->lock);
}

/* Closes the retired handles (the caller's thread: never a callback). */
static void conn_reap(struct zk_mirror *m)
{
	pthread_mutex_lock(&m->lock);
	struct zk_conn *d = m->dead;
	m->dead = NULL;
	pthread_mutex_unlock(&m->lock);
	while (d) {
		struct zk_conn *next = d->next;
		zookeeper_close(d->zh);
		free(d);
		d = next;
	}
}

/* The connected handle, waiting up to op_ms for it.  The returned handle
 * stays valid until this thread's next conn_reap(), even if retired. */
static int conn_get(struct zk_mirror *m, zhandle_t **zh, char *err, size_t errlen)
{
	conn_reap(m);
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += m->op_ms / 1000;
	dl.tv_nsec += (long)(m->op_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	int rc = 0;
	bool tried = false;
	pthread_mutex_lock(&m->lock);
	for (;;) {
		struct zk_conn *c = m->conn;
		if (c && c->connected) {
			*zh = c->zh;
			break;
		}
		if (c && c->auth_failed) {
			rc = zfail(m, err, errlen, -EACCES, "authentication failed");
			break;
		}
		if (!c && !tried) {
			tried = true;
			rc = conn_new(m);
			if (rc < 0) {
				rc = zfail(m, err, errlen, rc == -ENOMEM ? rc : -EAGAIN,
					   "new session: %s", strerror(-rc));
				break;
			}
			continue;
		}
		if (pthread_cond_timedwait(&m->cond, &m->lock, &dl) == ETIMEDOUT) {
			rc = zfail(m, err, errlen, -EAGAIN, "not connected after %" PRIu32 " ms",
				   m->op_ms);
			break;
		}
	}
	if (!rc && m->ver_sessions != m->sessions) {
		m->ver_sessions = m->sessions;
		m->seen = false; /* re-read at the next store */
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* ---- reading nodes ---- */

/* Reads @path into m->buf; *len = its length (0 for empty data). */
static int node_get(struct zk_mirror *m, zhandle_t *zh, const char *path, int *len, struct Stat *st,
		    char *err, size_t errlen)
{
	if (!m->buf) {
		m->buf = malloc(ZK_READ_BUF);
		if (!m->buf)
			return zfail(m, err, errlen, -ENOMEM, "out of memory");
		m->cap = ZK_READ_BUF;
	}
	for (;;) {
		int n = (int)m->cap;
		int rc = zoo_get(zh, path, 0, m->buf, &n, st);
		if (rc != ZOK)
			return zcall_fail(m, err, errlen, rc, "get", path);
		if (st->dataLength <= 0 || (size_t)st->dataLength <= m->cap) {
			*len = n < 0 ? 0 : n;
			return 0;
		}
		char *nb = realloc(m->buf, (size_t)st->dataLength); /* truncated: grow, re-read */
		if (!nb)
			return zfail(m, err, errlen, -ENOMEM, "out of memory");
		m->buf = nb;
		m->cap = (size_t)st->dataLength;
	}
}

/* Reads the epoch node: -ENOENT when missing, -EPROTO when unreadable. */
static int epoch_get(struct zk_mirror *m, zhandle_t *zh, uint64_t *epoch, uint64_t *ms, uint32_t *n,
		     int32_t *ver, char *err, size_t errlen)
{
	struct Stat st;
	int len;
	int rc = node_get(m, zh, m->p_epoch, &len, &st, err, errlen);
	if (rc < 0)
		return rc;
	if (epoch_parse(m->buf, len, epoch, ms, n) < 0)
		return zfail(m, err, errlen, -EPROTO,
			     "%s: want {\"epoch\":E,\"instances\":N,\"ms\":T}", m->p_epoch);
	*ver = st.version;
	return 0;
}

/* A copy of @path's data, which must be a JSON array (or object). */
static int node_dup(struct zk_mirror *m, zhandle_t *zh, const char *path, bool object, char **out,
		    char *err, size_t errlen)
{
	struct Stat st;
	int len;
	int rc = node_get(m, zh, path, &len, &st, err, errlen);
	if (rc < 0)
		return rc;
	cJSON *j = cJSON_ParseWithLength(m->buf, (size_t)len);
	bool ok = object ? cJSON_IsObject(j) : cJSON_IsArray(j);
	cJSON_Delete(j);
	if (!ok)
		return zfail(m, err, errlen, -EPROTO, "%s: not a JSON %s", path,
			     object ? "object" : "array");
	*out = strndup(m->buf, (size_t)len);
	return *out ? 0 : zfail(m, err, errlen, -ENOMEM, "out of memory");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists functions/ (sorted); the vector is the caller's to deallocate. */
static int fns_list(struct zk_mirror *m, zhandle_t *zh, struct String_vector *sv, char *err,
		    size_t errlen)
{
	memset(sv, 0, sizeof(*sv));
	int rc = zoo_get_children(zh, m->p_fns, 0, sv);
	if (rc != ZOK)
		return zcall_fail(m, err, errlen, rc, "list", m->p_fns);
	if (sv->count > 1)
		qsort(sv->data, (size_t)sv->count, sizeof(*sv->data), cmp_str);
	return 0;
}

static int fns_load(struct zk_mirror *m, zhandle_t *zh, struct ir_mirror_snap *out, char *err,
		    size_t errlen)
{
	struct String_vector sv;
	int rc = fns_list(m, zh, &sv, err, errlen);
	if (rc < 0)
		return rc;
	out->fns = calloc(sv.count > 0 ? (size_t)sv.count : 1, sizeof(*out->fns));
	if (!out->fns)
		rc = zfail(m, err, errlen, -ENOMEM, "out of memory");
	for (int32_t i = 0; !rc && i < sv.count; i++) {
		char path[ZK_PATH_MAX + 1 + ZK_NAME_MAX];
		struct ir_mirror_fn *f = &out->fns[out->nfns];
		snprintf(path, sizeof(path), "%s/%s", m->p_fns, sv.data[i]);
		f->name = strdup(sv.data[i]);
		if (!f->name) {
			rc = zfail(m, err, errlen, -ENOMEM, "out of memory");
			break;
		}
		out->nfns++;
		rc = node_dup(m, zh, path, false, &f->instances, err, errlen);
	}
	deallocate_String_vector(&sv);
	return rc;
}

/* One pass; @out is the caller's to free on error.  1 when a node went
 * away after the epoch node was read: a store ran in between. */
static int load_once(struct zk_mirror *m, zhandle_t *zh, struct ir_mirror_snap *out, int32_t *ver,
		     char *err, size_t errlen)
{
	int rc = epoch_get(m, zh, &out->epoch, &out->ms, &out->ninstances, ver, err, errlen);
	if (rc == -ENOENT || (!rc && !out->epoch))
		return zfail(m, err, errlen, -ENOENT, "no snapshot in %s yet", m->p_wf);
	if (!rc)
		rc = node_dup(m, zh, m->p_workflow, true, &out->workflow, err, errlen);
	if (!rc)
		rc = node_dup(m, zh, m->p_entries, false, &out->entries, err, errlen);
	if (!rc)
		rc = fns_load(m, zh, out, err, errlen);
	return rc == -ENOENT ? 1 : rc;
}

/* 0 when the epoch node still has version @ver, 1 when it moved. */
static int epoch_moved(struct zk_mirror *m, zhandle_t *zh, int32_t ver, char *err, size_t errlen)
{
	struct Stat st;
	int zrc = zoo_exists(zh, m->p_epoch, 0, &st);
	if (zrc == ZOK)
		return st.version != ver;
	return zrc == ZNONODE ? 1 : zcall_fail(m, err, errlen, zrc, "exists", m->p_epoch);
}

static int zk_load(struct ir_mirror *base, struct ir_mirror_snap *out, char *err, size_t errlen)
{
	struct zk_mirror *m = (struct zk_mirror *)base;
	zhandle_t *zh;
	int rc = conn_get(m, &zh, err, errlen);
	if (rc < 0)
		return rc;
	for (int i = 0; i < ZK_ATTEMPTS; i++) {
		int32_t ver = -1;
		rc = load_once(m, zh, out, &ver, err, errlen);
		if (!rc)
			rc = epoch_moved(m, zh, ver, err, errlen);
		if (!rc) {
			m->seen = true;
			m->ver = ver;
			m->epoch = out->epoch;
			m->ems = out->ms;
			m->en = out->ninstances;
			return 0;
		}
		ir_mirror_snap_free(out);
		if (rc < 0)
			return rc;
	}
	return zfail(m, err, errlen, -EAGAIN, "%s changed during %d loads in a row", m->p_wf,
		     ZK_ATTEMPTS);
}

/* ---- storing ---- */

static bool name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (!n || n > ZK_NAME_MAX || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '/')
			return false;
	return true;
}

static void names_free(char **v, size_t n)
{
	for (size_t i = 0; i < n && v; i++)
		free(v[i]);
	free(v);
}

/* Creates @path unless it exists: exists() first, because the parent (a
 * foreign /iroute) may not give us CREATE even where the node is there. */
static int node_make(struct zk_mirror *m, zhandle_t *zh, const char *path, char *err, size_t errlen)
{
	struct Stat st;
	int rc = zoo_exists(zh, path, 0, &st);
	if (rc == ZOK)
		return 0;
	if (rc != ZNONODE)
		return zcall_fail(m, err, errlen, rc, "exists", path);
	rc = zoo_create(zh, path, "", 0, &m->aclv, 0, NULL, 0);
	if (rc != ZOK && rc != ZNODEEXISTS)
		return zcall_fail(m, err, errlen, rc, "create", path);
	return 0;
}

/* Makes the fixed nodes and reads names[] from functions/. */
static int tree_make(struct zk_mirror *m, zhandle_t *zh, char *err, size_t errlen)
{
	const char *paths[] = {"/iroute",     m->p_wf,	m->p_epoch,
			       m->p_workflow, m->p_fns, m->p_entries};
	int rc = 0;
	for (size_t i = 0; !rc && i < sizeof(paths) / sizeof(paths[0]); i++)
		rc = node_make(m, zh, paths[i], err, errlen);
	struct String_vector sv;
	if (rc || (rc = fns_list(m, zh, &sv, err, errlen)) < 0)
		return rc;
	size_t n = (size_t)(sv.count > 0 ? sv.count : 0);
	char **v = calloc(n ? n : 1, sizeof(*v));
	for (size_t i = 0; v && i < n; i++) {
		if (!(v[i] = strdup(sv.data[i]))) {
			names_free(v, i);
			v = NULL;
		}
	}
	deallocate_String_vector(&sv);
	if (!v)
		return zfail(m, err, errlen, -ENOMEM, "out of memory");
	names_free(m->names, m->nnames);
	m->names = v;
	m->nnames = n;
	m->tree = true;
	return 0;
}

/* What the epoch node holds (m->epoch ...) against @s: 0 when @s is
 * newer, 1 when it is this very snapshot (a store whose reply was lost),
 * else -ESTALE. */
static int epoch_cmp(struct zk_mirror *m, const struct ir_mirror_snap *s, uint64_t *newer,
		     char *err, size_t errlen)
{
	if (m->epoch < s->epoch)
		return 0;
	if (m->epoch == s->epoch && m->ems == s->ms && m->en == s->ninstances)
		return 1;
	if (newer)
		*newer = m->epoch;
	return zfail(m, err, errlen, -ESTALE,
		     "%s holds epoch %" PRIu64 ", not older than epoch %" PRIu64
		     " (a newer coordinator wrote it)",
		     m->p_epoch, m->epoch, s->epoch);
}

/* Reads the epoch node (version unknown) and compares, as epoch_cmp(). */
static int epoch_check(struct zk_mirror *m, zhandle_t *zh, const struct ir_mirror_snap *s,
		       uint64_t *newer, char *err, size_t errlen)
{
	int rc = epoch_get(m, zh, &m->epoch, &m->ems, &m->en, &m->ver, err, errlen);
	if (rc == -ENOENT)
		m->tree = false; /* deleted under us: make it again */
	if (rc < 0)
		return rc;
	m->seen = true;
	return epoch_cmp(m, s, newer, err, errlen);
}

/* A store prepared once for all attempts: the functions sorted by name,
 * a copy of their names (names[] after success), the epoch node's data. */
struct plan {
	const struct ir_mirror_fn **fns;
	char **names;
	size_t n;
	char edata[96];
	int elen;
};

static int cmp_fn(const void *a, const void *b)
{
	return strcmp((*(const struct ir_mirror_fn *const *)a)->name,
		      (*(const struct ir_mirror_fn *const *)b)->name);
}

static void plan_free(struct plan *p)
{
	free(p->fns);
	names_free(p->names, p->n);
	memset(p, 0, sizeof(*p));
}

static int plan_init(struct zk_mirror *m, const struct ir_mirror_snap *s, struct plan *p, char *err,
		     size_t errlen)
{
	memset(p, 0, sizeof(*p));
	if (!s->epoch || !s->workflow || !s->entries || (s->nfns && !s->fns))
		return zfail(m, err, errlen, -EINVAL, "store: incomplete snapshot");
	size_t bytes =
	    strlen(s->workflow) + strlen(s->entries) + 4 * (ZK_PATH_MAX + ZK_OP_OVERHEAD);
	p->fns = calloc(s->nfns ? s->nfns : 1, sizeof(*p->fns));
	p->names = calloc(s->nfns ? s->nfns : 1, sizeof(*p->names));
	if (!p->fns || !p->names) {
		plan_free(p);
		return zfail(m, err, errlen, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < s->nfns; i++) {
		const struct ir_mirror_fn *f = &s->fns[i];
		if (!name_ok(f->name) || !f->instances) {
			plan_free(p);
			return zfail(m, err, errlen, -EINVAL,
				     "store: bad function name or instances");
		}
		p->fns[i] = f;
		bytes += strlen(f->instances) + strlen(f->name) + ZK_PATH_MAX + ZK_OP_OVERHEAD;
	}
	qsort(p->fns, s->nfns, sizeof(*p->fns), cmp_fn);
	for (; p->n < s->nfns; p->n++) {
		if (p->n && !strcmp(p->fns[p->n]->name, p->fns[p->n - 1]->name)) {
			int rc = zfail(m, err, errlen, -EINVAL,
				       "store: function \"%s\" listed twice", p->fns[p->n]->name);
			plan_free(p);
			return rc;
		}
		if (!(p->names[p->n] = strdup(p->fns[p->n]->name))) {
			plan_free(p);
			return zfail(m, err, errlen, -ENOMEM, "out of memory");
		}
	}
	if (bytes > ZK_MULTI_MAX) {
		plan_free(p);
		return zfail(
		    m, err, errlen, -EMSGSIZE,
		    "store: snapshot of about %zu bytes, over the 1 MiB a request may have "
		    "(jute.maxbuffer)",
		    bytes);
	}
	p->elen = snprintf(p->edata, sizeof(p->edata),
			   "{\"epoch\":%" PRIu64 ",\"instances\":%" PRIu32 ",\"ms\":%" PRIu64 "}",
			   s->epoch, s->ninstances, s->ms);
	return 0;
}

/* Appends the op of one function node: set (in names[] and @s), create
 * (only in @s) or delete (only in names[]); @path is kept for the multi. */
static int multi_fn(struct zk_mirror *m, zoo_op_t *op, char **path, const char *name,
		    const struct ir_mirror_fn *f, bool exists)
{
	if (asprintf(path, "%s/%s", m->p_fns, name) < 0) {
		*path = NULL;
		return -ENOMEM;
	}
	if (!f)
		zoo_delete_op_init(op, *path, -1);
	else if (exists)
		zoo_set_op_init(op, *path, f->instances, (int)strlen(f->instances), -1, NULL);
	else
		zoo_create_op_init(op, *path, f->instances, (int)strlen(f->instances), &m->aclv, 0,
				   NULL, 0);
	return 0;
}

/* The one zoo_multi() of a store.  *zrc is its result, *first the epoch
 * op's; 0, or -ENOMEM before anything was sent. */
static int multi_run(struct zk_mirror *m, zhandle_t *zh, const struct ir_mirror_snap *s,
		     struct plan *p, struct Stat *st, int *zrc, int *first)
{
	size_t cap = 3 + p->n + m->nnames, n = 3, i = 0, j = 0;
	zoo_op_t *ops = calloc(cap, sizeof(*ops));
	zoo_op_result_t *res = calloc(cap, sizeof(*res));
	char **paths = calloc(cap, sizeof(*paths));
	int rc = ops && res && paths ? 0 : -ENOMEM;
	if (!rc) {
		zoo_set_op_init(&ops[0], m->p_epoch, p->edata, p->elen, m->ver, st);
		zoo_set_op_init(&ops[1], m->p_workflow, s->workflow, (int)strlen(s->workflow), -1,
				NULL);
		zoo_set_op_init(&ops[2], m->p_entries, s->entries, (int)strlen(s->entries), -1,
				NULL);
	}
	/* merge the sorted names of the snapshot and of functions/ */
	while (!rc && (i < p->n || j < m->nnames)) {
		int c = i == p->n ? 1 : j == m->nnames ? -1 : strcmp(p->names[i], m->names[j]);
		const char *name = c <= 0 ? p->names[i] : m->names[j];
		rc = multi_fn(m, &ops[n], &paths[n], name, c <= 0 ? p->fns[i] : NULL, c == 0);
		n++;
		i += c <= 0;
		j += c >= 0;
	}
	if (!rc) {
		*zrc = zoo_multi(zh, (int)n, ops, res);
		*first = res[0].err;
	}
	for (size_t k = 0; paths && k < n; k++)
		free(paths[k]);
	free(paths);
	free(res);
	free(ops);
	return rc;
}

static int store_try(struct zk_mirror *m, zhandle_t *zh, const struct ir_mirror_snap *s,
		     struct plan *p, uint64_t *newer, int *zrc, int *first, char *err,
		     size_t errlen)
{
	int rc = m->tree ? 0 : tree_make(m, zh, err, errlen);
	if (!rc)
		rc = m->seen ? epoch_cmp(m, s, newer, err, errlen)
			     : epoch_check(m, zh, s, newer, err, errlen);
	if (rc)
		return rc; /* 1: already stored */
	struct Stat st;
	rc = multi_run(m, zh, s, p, &st, zrc, first);
	if (rc < 0)
		return zfail(m, err, errlen, rc, "out of memory");
	if (*zrc != ZOK)
		return 0;
	m->ver = st.version;
	m->epoch = s->epoch;
	m->ems = s->ms;
	m->en = s->ninstances;
	names_free(m->names, m->nnames);
	m->names = p->names;
	m->nnames = p->n;
	p->names = NULL;
	p->n = 0;
	return 0;
}

static int zk_store(struct ir_mirror *base, const struct ir_mirror_snap *s, uint64_t *newer,
		    char *err, size_t errlen)
{
	struct zk_mirror *m = (struct zk_mirror *)base;
	struct plan p;
	zhandle_t *zh;
	if (!m->writer)
		return zfail(m, err, errlen, -EACCES, "store: opened as a reader");
	int rc = plan_init(m, s, &p, err, errlen);
	if (rc < 0)
		return rc;
	rc = conn_get(m, &zh, err, errlen);
	for (int i = 0; !rc; i++) {
		int zrc = ZOK, first = ZOK;
		rc = store_try(m, zh, s, &p, newer, &zrc, &first, err, errlen);
		if (rc || zrc == ZOK)
			break;
		if (i + 1 == ZK_ATTEMPTS) {
			rc = zfail(m, err, errlen, -EAGAIN, "store %s: %s after %d attempts",
				   m->p_wf, zerror(zrc), ZK_ATTEMPTS);
		} else if (first == ZBADVERSION) {
			m->seen = false; /* someone else stored: compare epochs */
		} else if (zrc == ZNONODE || zrc == ZNODEEXISTS) {
			m->tree = false; /* functions/ is not what we thought */
		} else {
			rc = zcall_fail(m, err, errlen, zrc, "multi", m->p_wf);
		}
	}
	plan_free(&p);
	return rc > 0 ? 0 : rc;
}

/* ---- watch, open, close ---- */

static int zk_watch(struct ir_mirror *base, void (*cb)(void *arg, uint64_t epoch), void *arg)
{
	struct zk_mirror *m = (struct zk_mirror *)base;
	if (!cb)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	bool first = !m->cb;
	m->cb = cb;
	m->arg = arg;
	if (first && m->conn) {
		if (m->conn->connected)
			watch_arm(m->conn, false);
		else
			m->conn->arm_pending = true;
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static void zk_free(struct zk_mirror *m)
{
	names_free(m->names, m->nnames);
	for (int i = 0; i < 2; i++)
		free(m->acl[i].id.id);
	if (m->cred)
		memset(m->cred, 0, strlen(m->cred));
	free(m->cred);
	free(m->hosts);
	free(m->buf);
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static void zk_close(struct ir_mirror *base)
{
	struct zk_mirror *m = (struct zk_mirror *)base;
	pthread_mutex_lock(&m->lock);
	m->closing = true; /* no callback from here on */
	struct zk_conn *c = m->conn;
	m->conn = NULL;
	if (c) {
		c->next = m->dead;
		m->dead = c;
	}
	pthread_mutex_unlock(&m->lock);
	conn_reap(m);
	zk_free(m);
}

static const struct ir_mirror_ops zk_ops = {
    .kind = "zookeeper",
    .load = zk_load,
    .store = zk_store,
    .watch = zk_watch,
    .close = zk_close,
};

static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static void log_level_set(void)
{
	zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
}

/* The writer's ACL: its own digest with every right, the reader's with READ. */
static int acl_init(struct zk_mirror *m, const struct ir_zk_opts *o)
{
	const char *creds[2] = {o->cred, o->reader_cred};
	const int32_t perms[2] = {ZOO_PERM_ALL, ZOO_PERM_READ};
	for (int i = 0; i < 2; i++) {
		size_t cap = ir_zk_cred_user_len(creds[i]) + 32;
		m->acl[i].perms = perms[i];
		m->acl[i].id.scheme = (char *)"digest";
		m->acl[i].id.id = malloc(cap);
		if (!m->acl[i].id.id || ir_zk_digest_id(creds[i], m->acl[i].id.id, cap) < 0)
			return -ENOMEM;
	}
	m->aclv.count = 2;
	m->aclv.data = m->acl;
	return 0;
}

static int open_check(const struct ir_zk_opts *o, const char *workflow, char *err, size_t errlen)
{
	const char *what = NULL;
	if (!o || !o->hosts || !*o->hosts || strpbrk(o->hosts, " \t\r\n"))
		what = "bad hosts (want host:port[,host:port...])";
	else if (!name_ok(workflow))
		what = "bad workflow name (want 1 to 255 characters, no '/')";
	else if (!ir_zk_cred_user_len(o->cred) || strlen(o->cred) > ZK_CRED_MAX)
		what = "bad credential (want \"user:password\")";
	else if (o->writer &&
		 (!ir_zk_cred_user_len(o->reader_cred) || strlen(o->reader_cred) > ZK_CRED_MAX))
		what = "a writer needs the reader's credential (\"user:password\") for the ACL";
	if (what && err)
		snprintf(err, errlen, "zookeeper %s: %s", o && o->hosts ? o->hosts : "(none)",
			 what);
	return what ? -EINVAL : 0;
}

int ir_mirror_open_zk(struct ir_mirror **out, const struct ir_zk_opts *o, const char *workflow,
		      char *err, size_t errlen)
{
	*out = NULL;
	int rc = open_check(o, workflow, err, errlen);
	if (rc < 0)
		return rc;
	struct zk_mirror *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&m->lock, NULL);
	m->base.ops = &zk_ops;
	m->hosts = strdup(o->hosts);
	m->cred = strdup(o->cred);
	m->session_ms = o->session_ms ? o->session_ms : 6000;
	m->op_ms = o->op_timeout_ms ? o->op_timeout_ms : 2000;
	m->writer = o->writer;
	snprintf(m->p_wf, sizeof(m->p_wf), "/iroute/%s", workflow);
	snprintf(m->p_epoch, sizeof(m->p_epoch), "%s/epoch", m->p_wf);
	snprintf(m->p_workflow, sizeof(m->p_workflow), "%s/workflow", m->p_wf);
	snprintf(m->p_fns, sizeof(m->p_fns), "%s/functions", m->p_wf);
	snprintf(m->p_entries, sizeof(m->p_entries), "%s/entries", m->p_wf);
	if (!m->hosts || !m->cred || (m->writer && acl_init(m, o) < 0)) {
		zk_free(m);
		return -ENOMEM;
	}
	pthread_once(&log_once, log_level_set);
	pthread_mutex_lock(&m->lock);
	rc = conn_new(m);
	m->ver_sessions = m->sessions;
	pthread_mutex_unlock(&m->lock);
	if (rc < 0) {
		rc = rc == -ENOMEM ? rc : -EINVAL;
		zfail(m, err, errlen, rc, "zookeeper_init: %s", strerror(-rc));
		conn_reap(m);
		zk_free(m);
		return rc;
	}
	*out = &m->base;
	return 0;
}
