/* ccapi.c - the coordinator's HTTP API under /v1/ (README "The
 * coordinator"), the watchdog handler of iroute-cc.
 *
 * Why this design: every request is validated completely before it
 * touches the state, and every refusal is a 4xx with {"error": ...} naming
 * the field and what is wrong with it, so a broken client learns what to
 * fix.  Registration is strict (unknown keys are refused: a typo such as
 * "adresses" must not register an instance nobody can reach).  A long-poll
 * holds its connection thread on the state's condition variable; its
 * answer is the epoch snapshot's own bytes, released when MHD has sent
 * them.  A suspect report is verified by probing the suspect over HTTP
 * (or TCP) outside the lock before anything is removed: one confused
 * reporter cannot take a healthy instance out of every table.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cc_int.h"
#include "httpc.h"
#include "iroute/log.h"

#define JSON_TYPE "application/json"
#define BODY_MAX (1u << 20)
#define EPOCH_LIMIT 9007199254740992ull /* 2^53: exact as a JSON number */

/* ---- replies ---- */

static int reply_text(struct ir_wd_reply *r, int status, const char *text)
{
	r->status = status;
	r->content_type = JSON_TYPE;
	r->body = strdup(text);
	if (!r->body)
		return -ENOMEM;
	r->len = strlen(text);
	return 0;
}

static int reply_json(struct ir_wd_reply *r, int status, cJSON *o)
{
	char *s = o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	if (!s)
		return -ENOMEM;
	r->status = status;
	r->content_type = JSON_TYPE;
	r->body = s;
	r->len = strlen(s);
	return 0;
}

static int reply_error(struct ir_wd_reply *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int reply_error(struct ir_wd_reply *r, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cJSON *o = cJSON_CreateObject();
	if (o && !cJSON_AddStringToObject(o, "error", msg)) {
		cJSON_Delete(o);
		o = NULL;
	}
	return reply_json(r, status, o);
}

/* Hand the snapshot's bytes to the watchdog; it drops the reference. */
static void reply_snap(struct ir_wd_reply *r, struct cc_snap *s, const char *body, size_t len)
{
	r->status = 200;
	r->content_type = JSON_TYPE;
	r->body = (void *)body;
	r->len = len;
	r->release = cc_snap_release;
	r->release_arg = s;
}

/* ---- request parsing ---- */

static bool token_ok(const struct ir_cc *cc, const char *auth)
{
	if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
		return false;
	const char *t = auth + 7;
	size_t n = strlen(t);
	unsigned char diff = n != cc->p.token_len;
	for (size_t i = 0; i < cc->p.token_len; i++) /* constant time in the token */
		diff |= (unsigned char)(cc->token[i] ^ (uint8_t)(i < n ? t[i] : 0));
	return diff == 0;
}

/* The value of @key in the raw query @q into @out; false when absent. */
static bool query_get(const char *q, const char *key, char *out, size_t cap)
{
	size_t kl = strlen(key);
	for (const char *p = q; p && *p;) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
			size_t vl = len - kl - 1;
			if (vl >= cap)
				vl = cap - 1;
			memcpy(out, p + kl + 1, vl);
			out[vl] = '\0';
			return true;
		}
		p = amp ? amp + 1 : NULL;
	}
	return false;
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;
	if (!*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (*end || errno)
		return false;
	*v = x;
	return true;
}

/* The body as a JSON object, or a 400 reply. */
static cJSON *body_object(const struct ir_wd_call *call, struct ir_wd_reply *r, int *rc)
{
	cJSON *o = NULL;
	if (call->body_len > BODY_MAX)
		*rc = reply_error(r, 413, "body of %zu bytes is over %u", call->body_len, BODY_MAX);
	else if (!(o = cJSON_ParseWithLength(call->body, call->body_len)))
		*rc = reply_error(r, 400, "body is not valid JSON");
	else if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		o = NULL;
		*rc = reply_error(r, 400, "body is not a JSON object");
	}
	return o;
}

static const char *str_field(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- instances ---- */

static const char *const TRANSPORTS[] = {"ipc", "tcp", "rdma"};

static bool addr_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || n >= CC_ADDR_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == '"' || s[i] == '\\' || s[i] == 0x7f)
			return false;
	return true;
}

/* Validate a registration (or a mirrored instance object) into @in's
 * fields; NULL on success, else what is wrong. */
static const char *check_instance(const cJSON *o, bool from_mirror, char *why, size_t cap,
				  struct cc_inst *in, uint64_t *epoch)
{
	static const char *const reg_keys[] = {"function", "role",	 "node", "addresses",
					       "transports", "capacity", "rdma", "epoch"};
	static const char *const inst_keys[] = {"id",	      "function", "node", "addresses",
						"transports", "capacity", "rdma"};
	const char *const *keys = from_mirror ? inst_keys : reg_keys;
	size_t nkeys = from_mirror ? 7 : 8;
	const cJSON *it;
	cJSON_ArrayForEach(it, o)
	{
		size_t k = 0;
		while (k < nkeys && strcmp(it->string, keys[k]) != 0)
			k++;
		if (k == nkeys) {
			snprintf(why, cap, "unknown field \"%.64s\"", it->string);
			return why;
		}
	}
	const char *node = str_field(o, "node");
	if (!node || !*node || strlen(node) > 64)
		return "\"node\" must be a string of 1-64 characters (the node's boot id)";
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "addresses");
	if (!cJSON_IsObject(a))
		return "\"addresses\" must be an object with \"http\", \"tcp\" and/or \"ipc\"";
	int naddr = 0;
	cJSON_ArrayForEach(it, a)
	{
		if (strcmp(it->string, "http") && strcmp(it->string, "tcp") &&
		    strcmp(it->string, "ipc")) {
			snprintf(why, cap, "addresses: unknown field \"%.64s\"", it->string);
			return why;
		}
		if (!cJSON_IsString(it) || !addr_ok(it->valuestring)) {
			snprintf(why, cap,
				 "addresses.%s must be a string of 1-%d printable characters",
				 it->string, CC_ADDR_MAX - 1);
			return why;
		}
		naddr++;
	}
	if (!naddr)
		return "\"addresses\" is empty: give at least one of http, tcp, ipc";
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "transports");
	if (!cJSON_IsArray(t) || cJSON_GetArraySize(t) < 1)
		return "\"transports\" must be a non-empty array of \"ipc\", \"tcp\", \"rdma\"";
	cJSON_ArrayForEach(it, t)
	{
		size_t k = 0;
		while (k < 3 && !(cJSON_IsString(it) && strcmp(it->valuestring, TRANSPORTS[k]) == 0))
			k++;
		if (k == 3)
			return "\"transports\" may only hold \"ipc\", \"tcp\", \"rdma\"";
	}
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "capacity");
	if (c && (!cJSON_IsNumber(c) || c->valuedouble < 1 || c->valuedouble > 65535 ||
		  c->valuedouble != (int)c->valuedouble))
		return "\"capacity\" must be an integer 1-65535";
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "rdma");
	if (r && !cJSON_IsObject(r))
		return "\"rdma\" must be an object";
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "epoch");
	if (e && (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > (double)EPOCH_LIMIT ||
		  e->valuedouble != (double)(uint64_t)e->valuedouble))
		return "\"epoch\" must be an integer 0-2^53";
	if (epoch)
		*epoch = e ? (uint64_t)e->valuedouble : 0;
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(a, "http");
	const cJSON *tc = cJSON_GetObjectItemCaseSensitive(a, "tcp");
	snprintf(in->http, sizeof(in->http), "%s", h ? h->valuestring : "");
	snprintf(in->tcp, sizeof(in->tcp), "%s", tc ? tc->valuestring : "");
	return NULL;
}

static int random_hex(char *out, size_t nbytes)
{
	uint8_t b[16];
	if (nbytes > sizeof(b) || getrandom(b, nbytes, 0) != (ssize_t)nbytes)
		return -EIO;
	for (size_t i = 0; i < nbytes; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	return 0;
}

/* The instance object served in tables, from a validated registration. */
static char *instance_json(const struct cc_inst *in, const char *function, const cJSON *reg)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "id", in->id);
	cJSON_AddStringToObject(o, "function", function);
	static const char *const copy[] = {"node", "addresses", "transports", "rdma"};
	for (size_t i = 0; i < 4; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(reg, copy[i]);
		if (v)
			cJSON_AddItemToObject(o, copy[i], cJSON_Duplicate(v, true));
	}
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(reg, "capacity");
	cJSON_AddNumberToObject(o, "capacity", c ? c->valuedouble : 1);
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

struct cc_inst *cc_inst_from_mirror(struct ir_cc *cc, int fn, const void *obj)
{
	const cJSON *o = obj;
	char why[160];
	struct cc_inst *in = calloc(1, sizeof(*in));
	if (!in)
		return NULL;
	const char *id = cJSON_IsObject(o) ? str_field(o, "id") : NULL;
	const char *bad = !id ? "no \"id\"" : check_instance(o, true, why, sizeof(why), in, NULL);
	if (!bad && strlen(id) >= sizeof(in->id))
		bad = "id too long";
	if (bad) {
		ir_warn(CC_LOG, "mirror: %s instance skipped: %s",
			fn < 0 ? "an entry" : cc->wf.fns[fn].name, bad);
		free(in);
		return NULL;
	}
	snprintf(in->id, sizeof(in->id), "%s", id);
	in->fn = fn;
	in->json = cJSON_PrintUnformatted(o);
	if (!in->json) {
		free(in);
		return NULL;
	}
	in->json_len = strlen(in->json);
	return in;
}

/* ---- endpoints ---- */

static int do_register(struct ir_cc *cc, const struct ir_wd_call *call, struct ir_wd_reply *r)
{
	int rc = 0;
	cJSON *o = body_object(call, r, &rc);
	if (!o)
		return rc;
	char why[200];
	const char *fname = str_field(o, "function"), *role = str_field(o, "role");
	int fn = -1;
	struct cc_inst *in = calloc(1, sizeof(*in));
	uint64_t seen = 0;
	const char *bad = NULL;
	if (!in)
		bad = "out of memory";
	else if (role && strcmp(role, "entry") != 0 && strcmp(role, "function") != 0)
		bad = "\"role\" must be \"entry\" or \"function\"";
	else if (role && strcmp(role, "entry") == 0 && fname)
		bad = "give \"function\" or \"role\":\"entry\", not both";
	else if (!(role && strcmp(role, "entry") == 0) && !fname)
		bad = "\"function\" (a string) is required, or \"role\":\"entry\"";
	else if (fname && (fn = ir_workflow_find(&cc->wf, fname)) < 0) {
		snprintf(why, sizeof(why), "function \"%.63s\" is not in workflow \"%s\"", fname,
			 cc->wf.name);
		bad = why;
	} else
		bad = check_instance(o, false, why, sizeof(why), in, &seen);
	if (bad) {
		cJSON_Delete(o);
		free(in);
		return reply_error(r, 400, "register: %s", bad);
	}
	const char *fn_name = fn < 0 ? "entry" : cc->wf.fns[fn].name;
	snprintf(in->id, sizeof(in->id), "%s-", fn_name);
	if (random_hex(in->id + strlen(in->id), 8) != 0 ||
	    !(in->json = instance_json(in, fn < 0 ? "" : fn_name, o))) {
		cJSON_Delete(o);
		cc_inst_free(in);
		return -ENOMEM;
	}
	cJSON_Delete(o);
	in->json_len = strlen(in->json);
	in->fn = fn;
	in->confirmed = true;
	in->renewed_ns = cc_now_ns();
	/* An entry's slice is the whole workflow: it needs the entries,
	 * the sinks and their indices to send requests and collect results. */
	const char *slice = fn < 0 ? cc->wf_json : cc->slices[fn];
	char id[CC_ID_MAX];
	snprintf(id, sizeof(id), "%s", in->id);

	pthread_mutex_lock(&cc->mu);
	cc_lift_floor(cc, seen);
	rc = cc_add(cc, in);
	cc->registrations += rc == 0;
	struct cc_snap *s = cc_snap_get(cc->cur);
	pthread_mutex_unlock(&cc->mu);
	if (rc) {
		cc_snap_put(s);
		return rc;
	}
	size_t tix = fn < 0 ? cc->wf.nfns : (size_t)fn;
	size_t cap = 256 + strlen(id) + (slice ? strlen(slice) : 8) + s->table_len[tix];
	char *body = malloc(cap);
	if (body) {
		int n = snprintf(body, cap,
				 "{\"instance\":\"%s\",\"lease_ms\":%u,\"poll_ms\":%u,\"epoch\":%llu,"
				 "\"slice\":%s,\"table\":%s}",
				 id, cc->p.lease_ms, cc->p.poll_ms, (unsigned long long)s->epoch,
				 slice ? slice : "null", s->table[tix]);
		r->body = body;
		r->len = (size_t)n;
		r->content_type = JSON_TYPE;
	}
	cc_snap_put(s);
	return body ? 0 : -ENOMEM;
}

static int do_routes(struct ir_cc *cc, const struct ir_wd_call *call, struct ir_wd_reply *r)
{
	char id[CC_ID_MAX] = "", v[32] = "";
	uint64_t since = 0, wait = cc->p.poll_ms;
	if (!query_get(call->query, "instance", id, sizeof(id)) || !*id)
		return reply_error(r, 400, "routes: query parameter \"instance\" is required");
	if (query_get(call->query, "since", v, sizeof(v)) &&
	    (!parse_u64(v, &since) || since > EPOCH_LIMIT))
		return reply_error(r, 400, "routes: \"since\" must be an integer 0-2^53");
	if (query_get(call->query, "wait_ms", v, sizeof(v)) && !parse_u64(v, &wait))
		return reply_error(r, 400, "routes: \"wait_ms\" must be a non-negative integer");
	if (wait > cc->p.poll_ms)
		wait = cc->p.poll_ms;
	uint64_t deadline = cc_now_ns() + wait * 1000000u;
	if (call->deadline_ns && call->deadline_ns - 100000000u < deadline)
		deadline = call->deadline_ns - 100000000u; /* answer 304 before the watchdog's 504 */

	pthread_mutex_lock(&cc->mu);
	struct cc_inst *in = cc_find(cc, id);
	if (!in) {
		pthread_mutex_unlock(&cc->mu);
		return reply_error(r, 404,
				   "routes: unknown instance \"%s\" (its lease expired or it never "
				   "registered): register again",
				   id);
	}
	int fn = in->fn;
	in->renewed_ns = cc_now_ns();
	in->confirmed = true;
	cc_lift_floor(cc, since);
	pthread_mutex_unlock(&cc->mu);
	for (;;) { /* no lock while parked: see cc_int.h */
		uint32_t seq = atomic_load(&cc->pub_seq);
		if (atomic_load(&cc->pub_epoch) > since || atomic_load(&cc->stopping) ||
		    cc_now_ns() >= deadline)
			break;
		cc_wait_epoch(cc, seq, deadline);
	}
	if (atomic_load(&cc->pub_epoch) <= since) {
		pthread_mutex_lock(&cc->mu);
		if ((in = cc_find(cc, id)) != NULL)
			in->renewed_ns = cc_now_ns();
		pthread_mutex_unlock(&cc->mu);
		r->status = 304;
		return 0;
	}
	struct cc_snap *s = cc_current(cc);
	size_t tix = fn < 0 ? cc->wf.nfns : (size_t)fn;
	reply_snap(r, s, s->table[tix], s->table_len[tix]);
	return 0;
}

static int do_leave(struct ir_cc *cc, const struct ir_wd_call *call, struct ir_wd_reply *r)
{
	int rc = 0;
	cJSON *o = body_object(call, r, &rc);
	if (!o)
		return rc;
	const char *id = str_field(o, "instance");
	if (!id) {
		cJSON_Delete(o);
		return reply_error(r, 400, "leave: \"instance\" (a string) is required");
	}
	pthread_mutex_lock(&cc->mu);
	struct cc_inst *in = cc_find(cc, id);
	if (in) {
		ir_info(CC_LOG, "instance %s left", id);
		cc_remove(cc, in);
	}
	uint64_t next = (cc->epoch > cc->floor ? cc->epoch : cc->floor) + 1;
	pthread_mutex_unlock(&cc->mu);
	if (!in) {
		rc = reply_error(r, 404, "leave: unknown instance \"%.79s\"", id);
		cJSON_Delete(o);
		return rc;
	}
	cJSON_Delete(o);
	char buf[64];
	snprintf(buf, sizeof(buf), "{\"epoch\":%llu}", (unsigned long long)next);
	return reply_text(r, 200, buf);
}

/* Does the instance at @http (GET /_/health) or @tcp (connect) answer
 * within @ms?  Sets @how to what was tried. */
static bool probe(const char *http, const char *tcp, uint32_t ms, char *how, size_t cap)
{
	char url[CC_ADDR_MAX + 16];
	struct ir_url u;
	uint64_t deadline = cc_now_ns() + (uint64_t)ms * 1000000u;
	snprintf(url, sizeof(url), "http://%s", *http ? http : tcp);
	if (ir_url_parse(url, &u, NULL, 0) != 0) {
		snprintf(how, cap, "its address \"%s\" is not host:port", *http ? http : tcp);
		return false;
	}
	int fd = ir_httpc_connect(&u, deadline);
	if (fd < 0) {
		snprintf(how, cap, "connect to %s: %s", url + 7, strerror(-fd));
		return false;
	}
	if (!*http) {
		close(fd);
		snprintf(how, cap, "%s accepts TCP connections", tcp);
		return true;
	}
	struct ir_httpc *c;
	if (ir_httpc_open(&c, fd) != 0)
		return true; /* out of memory: do not remove on our own failure */
	ir_httpc_set_deadline(c, deadline);
	char head[CC_ADDR_MAX + 64];
	int n = snprintf(head, sizeof(head), "GET /_/health HTTP/1.1\r\nHost: %s\r\n\r\n", http);
	struct ir_httpc_resp resp;
	int rc = ir_httpc_send_head(c, head, (size_t)n, IR_HTTPC_NO_BODY);
	if (rc == 0)
		rc = ir_httpc_read_head(c, false, &resp);
	bool alive = rc == 0 && resp.status == 200;
	if (rc)
		snprintf(how, cap, "GET http://%s/_/health: %s", http, strerror(-rc));
	else
		snprintf(how, cap, "GET http://%s/_/health answered %d", http, resp.status);
	ir_httpc_close(c);
	return alive;
}

static int do_suspect(struct ir_cc *cc, const struct ir_wd_call *call, struct ir_wd_reply *r)
{
	int rc = 0;
	cJSON *o = body_object(call, r, &rc);
	if (!o)
		return rc;
	const char *id = str_field(o, "instance"), *by = str_field(o, "by");
	char sid[CC_ID_MAX], http[CC_ADDR_MAX] = "", tcp[CC_ADDR_MAX] = "";
	if (!id || !by || strlen(id) >= sizeof(sid)) {
		cJSON_Delete(o);
		return reply_error(r, 400, "suspect: \"instance\" and \"by\" (strings) are required");
	}
	snprintf(sid, sizeof(sid), "%s", id);
	pthread_mutex_lock(&cc->mu);
	struct cc_inst *in = cc_find(cc, sid);
	bool reporter = cc_find(cc, by) != NULL;
	if (in) {
		memcpy(http, in->http, sizeof(http));
		memcpy(tcp, in->tcp, sizeof(tcp));
	}
	pthread_mutex_unlock(&cc->mu);
	if (!reporter || !in) {
		rc = reply_error(r, 404, "suspect: unknown %s \"%.79s\"",
				 !reporter ? "reporter" : "instance", !reporter ? by : sid);
		cJSON_Delete(o);
		return rc;
	}
	char how[300] = "it offers no http or tcp address to probe";
	bool alive = (*http || *tcp) && probe(http, tcp, cc->p.probe_ms, how, sizeof(how));
	ir_info(CC_LOG, "suspect %s reported by %s: %s; %s", sid, by, how,
		alive ? "kept" : "removed");
	cJSON_Delete(o);
	cJSON *a = cJSON_CreateObject();
	cJSON_AddBoolToObject(a, "removed", !alive);
	if (alive) {
		cJSON_AddStringToObject(a, "reason", how);
		return reply_json(r, 200, a);
	}
	pthread_mutex_lock(&cc->mu);
	if ((in = cc_find(cc, sid)) != NULL)
		cc_remove(cc, in);
	uint64_t next = (cc->epoch > cc->floor ? cc->epoch : cc->floor) + 1;
	pthread_mutex_unlock(&cc->mu);
	cJSON_AddNumberToObject(a, "epoch", (double)next);
	cJSON_AddStringToObject(a, "reason", how);
	return reply_json(r, 200, a);
}

static int do_stats_push(struct ir_cc *cc, const struct ir_wd_call *call, struct ir_wd_reply *r)
{
	int rc = 0;
	cJSON *o = body_object(call, r, &rc);
	if (!o)
		return rc;
	const char *id = str_field(o, "instance");
	const cJSON *lat = cJSON_GetObjectItemCaseSensitive(o, "latency");
	char *text = lat ? cJSON_PrintUnformatted(lat) : NULL;
	struct ir_hist *h = malloc(sizeof(*h));
	char err[200] = "\"latency\" is required";
	if (!id || !h || !text || ir_hist_from_json(text, strlen(text), h, err, sizeof(err))) {
		rc = !id ? reply_error(r, 400, "stats: \"instance\" (a string) is required")
			 : reply_error(r, 400, "stats: %s", err);
		goto out;
	}
	pthread_mutex_lock(&cc->mu);
	bool known = cc_find(cc, id) != NULL;
	if (known)
		ir_hist_merge(&cc->latency, h);
	pthread_mutex_unlock(&cc->mu);
	rc = known ? reply_text(r, 200, "{}")
		   : reply_error(r, 404, "stats: unknown instance \"%.79s\"", id);
out:
	free(text);
	free(h);
	cJSON_Delete(o);
	return rc;
}

static cJSON *quantiles(const struct ir_hist *h, double scale)
{
	static const double q[] = {0.5, 0.9, 0.99, 0.999};
	static const char *const name[] = {"p50", "p90", "p99", "p999"};
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "count", (double)h->count);
	for (size_t i = 0; i < 4; i++)
		cJSON_AddNumberToObject(o, name[i], (double)ir_hist_quantile(h, q[i]) * scale);
	cJSON_AddNumberToObject(o, "max", (double)h->max_us * scale);
	return o;
}

static int do_stats(struct ir_cc *cc, struct ir_wd_reply *r)
{
	cJSON *o = cJSON_CreateObject(), *inst = cJSON_CreateObject(), *fns = cJSON_CreateObject();
	cJSON *m = cJSON_CreateObject();
	pthread_mutex_lock(&cc->mu);
	cJSON_AddStringToObject(o, "workflow", cc->wf.name);
	cJSON_AddNumberToObject(o, "epoch", (double)cc->epoch);
	cJSON_AddNumberToObject(inst, "total", cc->ninst);
	cJSON_AddNumberToObject(inst, "entries", (double)cc->lists[cc->wf.nfns].n);
	for (size_t i = 0; i < cc->wf.nfns; i++)
		cJSON_AddNumberToObject(fns, cc->wf.fns[i].name, (double)cc->lists[i].n);
	cJSON_AddItemToObject(inst, "functions", fns);
	cJSON_AddItemToObject(o, "instances", inst);
	cJSON_AddNumberToObject(o, "registrations", (double)cc->registrations);
	cJSON_AddNumberToObject(o, "removals", (double)cc->removals);
	cJSON_AddItemToObject(o, "latency_ms", quantiles(&cc->latency, 0.001));
	cJSON_AddStringToObject(m, "kind", ir_mirror_kind(cc->mirror));
	cJSON_AddNumberToObject(m, "epoch", (double)cc->mirrored_epoch);
	cJSON_AddNumberToObject(m, "lag_ms_p50", ir_hist_quantile(&cc->mirror_lag, 0.5) * 0.001);
	cJSON_AddNumberToObject(m, "lag_ms_p99", ir_hist_quantile(&cc->mirror_lag, 0.99) * 0.001);
	cJSON_AddNumberToObject(m, "errors", (double)cc->mirror_errors);
	cJSON_AddNumberToObject(m, "stale", (double)cc->mirror_stale);
	pthread_mutex_unlock(&cc->mu);
	cJSON_AddItemToObject(o, "mirror", m);
	return reply_json(r, 200, o);
}

static int do_table(struct ir_cc *cc, struct ir_wd_reply *r)
{
	struct cc_snap *s = cc_current(cc);
	reply_snap(r, s, s->global, s->global_len);
	return 0;
}

int ir_cc_handle(void *arg, const struct ir_wd_call *call, struct ir_wd_reply *r)
{
	struct ir_cc *cc = arg;
	const char *p = call->path, *m = call->method;
	bool get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0;
	if (strncmp(p, "/v1/", 4) != 0)
		return reply_error(r, 404, "no such path: %.200s (the API is under /v1/)", p);
	if (!token_ok(cc, ir_wd_call_header(call, "Authorization"))) {
		r->headers[0].name = "WWW-Authenticate";
		r->headers[0].value = "Bearer";
		return reply_error(r, 401, "%s %.200s: missing or wrong \"Authorization: Bearer "
					   "<cluster token>\"",
				   m, p);
	}
	p += 4;
	if (strcmp(p, "register") == 0 && post)
		return do_register(cc, call, r);
	if (strcmp(p, "routes") == 0 && get)
		return do_routes(cc, call, r);
	if (strcmp(p, "leave") == 0 && post)
		return do_leave(cc, call, r);
	if (strcmp(p, "suspect") == 0 && post)
		return do_suspect(cc, call, r);
	if (strcmp(p, "stats") == 0 && post)
		return do_stats_push(cc, call, r);
	if (strcmp(p, "stats") == 0 && get)
		return do_stats(cc, r);
	if (strcmp(p, "table") == 0 && get)
		return do_table(cc, r);
	if (strcmp(p, "workflow") == 0 && get)
		return reply_text(r, 200, cc->wf_json);
	static const char *const known[] = {"register", "routes", "leave",   "suspect",
					    "stats",	"table",  "workflow"};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(p, known[i]) == 0)
			return reply_error(r, 405, "%s is not allowed on /v1/%s", m, p);
	return reply_error(r, 404, "no such endpoint: %s /v1/%.200s", m, p);
}
