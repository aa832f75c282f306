/* rtable.c - a local routing table (cctable.h's JSON) parsed into the
 * immutable, reference-counted struct ir_table of iroute/ccclient.h.
 *
 * Why a file of its own: the parser is strict (every known field is
 * checked, and a refusal names the path, e.g. "routes.b[3].addresses.tcp
 * is not a string") and is used both for the coordinator's answers and for
 * tables built from the mirror; the client's threads and connections are
 * another concern (ccclient.c).
 */
#include "rtable.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


struct table_priv {
	struct ir_table t; /* first: a struct ir_table * is a struct table_priv * */
	atomic_int refs;
};

int ir_errf(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* "path.key", or "key" at the top level. */
static const char *join(char *buf, size_t cap, const char *path, const char *key)
{
	if (snprintf(buf, cap, "%s%s%s", path, *path ? "." : "", key) >= (int)cap)
		memcpy(buf + cap - 4, "...", 4); /* paths are short: names are at most 63 */
	return buf;
}

/* String @key of @o into @dst: 1 to cap-1 characters ("" allowed with
 * @empty_ok; "" when absent and not @required). */
static int get_str(const cJSON *o, const char *path, const char *key, char *dst, size_t cap,
		   bool required, bool empty_ok, char *err, size_t errlen)
{
	char p[256];
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	dst[0] = '\0';
	if (!v && !required)
		return 0;
	if (!v)
		return ir_errf(err, errlen, "%s is missing", join(p, sizeof(p), path, key));
	if (!cJSON_IsString(v))
		return ir_errf(err, errlen, "%s is not a string", join(p, sizeof(p), path, key));
	size_t n = strlen(v->valuestring);
	if ((!n && !empty_ok) || n >= cap)
		return ir_errf(err, errlen, "%s must be %d-%zu characters",
			    join(p, sizeof(p), path, key), empty_ok ? 0 : 1, cap - 1);
	memcpy(dst, v->valuestring, n + 1);
	return 0;
}

/* Integer @key of @o in [lo, hi]; @dflt when absent and not @required. */
int ir_json_get_int(const cJSON *o, const char *path, const char *key, double lo, double hi,
		    bool required, uint64_t dflt, uint64_t *out, char *err, size_t errlen)
{
	char p[256];
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	*out = dflt;
	if (!v && !required)
		return 0;
	if (!v)
		return ir_errf(err, errlen, "%s is missing", join(p, sizeof(p), path, key));
	double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
	if (!(d >= lo && d <= hi) || d != floor(d))
		return ir_errf(err, errlen, "%s must be an integer %.0f-%.0f",
			    join(p, sizeof(p), path, key), lo, hi);
	*out = (uint64_t)d;
	return 0;
}

static int parse_addresses(const cJSON *o, const char *path, struct ir_route_inst *in, char *err,
			   size_t errlen)
{
	char p[256];
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "addresses");
	join(p, sizeof(p), path, "addresses");
	if (!a)
		return ir_errf(err, errlen, "%s is missing", p);
	if (!cJSON_IsObject(a))
		return ir_errf(err, errlen, "%s is not an object", p);
	int rc = get_str(a, p, "http", in->http, sizeof(in->http), false, false, err, errlen);
	if (!rc)
		rc = get_str(a, p, "tcp", in->tcp, sizeof(in->tcp), false, false, err, errlen);
	if (!rc)
		rc = get_str(a, p, "ipc", in->ipc, sizeof(in->ipc), false, false, err, errlen);
	if (!rc && !in->http[0] && !in->tcp[0] && !in->ipc[0])
		rc = ir_errf(err, errlen, "%s has none of http, tcp, ipc", p);
	return rc;
}

static int parse_transports(const cJSON *o, const char *path, uint32_t *mask, char *err,
			    size_t errlen)
{
	static const char *const names[] = {"ipc", "tcp", "rdma"};
	char p[256];
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "transports"), *it;
	join(p, sizeof(p), path, "transports");
	if (!t)
		return ir_errf(err, errlen, "%s is missing", p);
	if (!cJSON_IsArray(t) || cJSON_GetArraySize(t) == 0)
		return ir_errf(err, errlen, "%s is not a non-empty array", p);
	int i = 0;
	*mask = 0;
	cJSON_ArrayForEach(it, t)
	{
		size_t k = 0;
		while (k < 3 && !(cJSON_IsString(it) && strcmp(it->valuestring, names[k]) == 0))
			k++;
		if (k == 3)
			return ir_errf(err, errlen, "%s[%d] is not one of \"ipc\", \"tcp\", \"rdma\"",
				    p, i);
		*mask |= 1u << k;
		i++;
	}
	return 0;
}

/* One instance object at @path; its "function" must be @fn. */
static int parse_inst(const cJSON *o, const char *path, const char *fn, struct ir_route_inst *in,
		      char *err, size_t errlen)
{
	if (!cJSON_IsObject(o))
		return ir_errf(err, errlen, "%s is not an object", path);
	int rc = get_str(o, path, "id", in->id, sizeof(in->id), true, false, err, errlen);
	if (!rc)
		rc = get_str(o, path, "function", in->function, sizeof(in->function), true, true,
			     err, errlen);
	if (!rc && strcmp(in->function, fn) != 0)
		rc =
		    ir_errf(err, errlen, "%s.function is \"%s\", want \"%s\"", path, in->function, fn);
	if (!rc)
		rc = get_str(o, path, "node", in->node, sizeof(in->node), true, false, err, errlen);
	if (!rc)
		rc = parse_addresses(o, path, in, err, errlen);
	if (!rc)
		rc = parse_transports(o, path, &in->transports, err, errlen);
	uint64_t cap = 1;
	if (!rc)
		rc = ir_json_get_int(o, path, "capacity", 1, 65535, false, 1, &cap, err, errlen);
	in->capacity = (uint32_t)cap;
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "rdma");
	if (!rc && r && !cJSON_IsObject(r))
		rc = ir_errf(err, errlen, "%s.rdma is not an object", path);
	if (!rc && r && !(in->rdma = cJSON_PrintUnformatted(r)))
		rc = -ENOMEM;
	return rc;
}

static void insts_free(struct ir_route_inst *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].rdma);
	free(v);
}

/* The array @a at @path into *@v / *@n (instances of function @fn). */
static int parse_list(const cJSON *a, const char *path, const char *fn, struct ir_route_inst **v,
		      size_t *n, char *err, size_t errlen)
{
	if (!cJSON_IsArray(a))
		return ir_errf(err, errlen, "%s is not an array", path);
	size_t cnt = (size_t)cJSON_GetArraySize(a);
	*v = cnt ? calloc(cnt, sizeof(**v)) : NULL;
	if (cnt && !*v)
		return -ENOMEM;
	const cJSON *it;
	cJSON_ArrayForEach(it, a)
	{
		char p[256];
		snprintf(p, sizeof(p), "%s[%zu]", path, *n);
		int rc = parse_inst(it, p, fn, &(*v)[*n], err, errlen);
		(*n)++; /* counted before the check: its rdma is freed with the rest */
		if (rc)
			return rc;
	}
	return 0;
}

static int parse_routes(const cJSON *o, struct ir_table *t, char *err, size_t errlen)
{
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "routes"), *it;
	if (!r)
		return ir_errf(err, errlen, "routes is missing");
	if (!cJSON_IsObject(r))
		return ir_errf(err, errlen, "routes is not an object");
	size_t cnt = (size_t)cJSON_GetArraySize(r);
	t->routes = cnt ? calloc(cnt, sizeof(*t->routes)) : NULL;
	if (cnt && !t->routes)
		return -ENOMEM;
	cJSON_ArrayForEach(it, r)
	{
		size_t len = strlen(it->string);
		if (!len || len >= sizeof(t->routes[0].name))
			return ir_errf(err, errlen,
				    "routes: function name \"%.63s\" must be 1-63 "
				    "characters",
				    it->string);
		for (size_t i = 0; i < t->nroutes; i++)
			if (strcmp(t->routes[i].name, it->string) == 0)
				return ir_errf(err, errlen, "routes.%s is listed twice", it->string);
		struct ir_route_fn *f = &t->routes[t->nroutes++];
		memcpy(f->name, it->string, len + 1);
		char p[96];
		snprintf(p, sizeof(p), "routes.%s", f->name);
		int rc = parse_list(it, p, f->name, &f->inst, &f->n, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

static int parse_role(const cJSON *o, struct ir_table *t, char *err, size_t errlen)
{
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "role");
	if (!r)
		return ir_errf(err, errlen, "role is missing");
	if (!cJSON_IsString(r) ||
	    (strcmp(r->valuestring, "entry") != 0 && strcmp(r->valuestring, "function") != 0))
		return ir_errf(err, errlen, "role must be \"function\" or \"entry\"");
	t->entry_role = r->valuestring[0] == 'e';
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "function");
	if (t->entry_role) {
		if (f && !cJSON_IsNull(f))
			return ir_errf(err, errlen, "function must be null for role \"entry\"");
		return 0;
	}
	return get_str(o, "", "function", t->function, sizeof(t->function), true, false, err,
		       errlen);
}

static int table_from(const cJSON *o, struct ir_table *t, char *err, size_t errlen)
{
	if (!cJSON_IsObject(o))
		return ir_errf(err, errlen, "the table is not a JSON object");
	int rc = ir_json_get_int(o, "", "epoch", 1, EPOCH_MAX, true, 0, &t->epoch, err, errlen);
	if (!rc)
		rc = get_str(o, "", "workflow", t->workflow, sizeof(t->workflow), true, false, err,
			     errlen);
	if (!rc)
		rc = parse_role(o, t, err, errlen);
	if (!rc)
		rc = parse_routes(o, t, err, errlen);
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "entries");
	if (!rc && e)
		rc = parse_list(e, "entries", "", &t->entries, &t->nentries, err, errlen);
	return rc;
}

static void table_free(struct ir_table *t)
{
	for (size_t i = 0; i < t->nroutes; i++)
		insts_free(t->routes[i].inst, t->routes[i].n);
	free(t->routes);
	insts_free(t->entries, t->nentries);
	free(t->json);
	free(t);
}

int ir_table_parse_obj(const cJSON *o, char *json, size_t len, struct ir_table **out, char *err,
			   size_t errlen)
{
	struct table_priv *p = calloc(1, sizeof(*p));
	if (!p) {
		free(json);
		return -ENOMEM;
	}
	atomic_init(&p->refs, 1);
	p->t.json = json;
	p->t.json_len = len;
	int rc = table_from(o, &p->t, err, errlen);
	if (rc) {
		table_free(&p->t);
		return rc;
	}
	*out = &p->t;
	return 0;
}

int ir_table_parse(const char *json, size_t len, struct ir_table **out, char *err, size_t errlen)
{
	const char *end = NULL;
	*out = NULL;
	cJSON *o = cJSON_ParseWithLengthOpts(json, len, &end, false);
	if (!o)
		return ir_errf(err, errlen, "invalid JSON at byte %zu",
			    end && end >= json ? (size_t)(end - json) : (size_t)0);
	char *copy = malloc(len + 1);
	if (!copy) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	memcpy(copy, json, len);
	copy[len] = '\0';
	int rc = ir_table_parse_obj(o, copy, len, out, err, errlen);
	cJSON_Delete(o);
	return rc;
}

const struct ir_route_fn *ir_table_route(const struct ir_table *t, const char *fn)
{
	for (size_t i = 0; i < t->nroutes; i++)
		if (strcmp(t->routes[i].name, fn) == 0)
			return &t->routes[i];
	return NULL;
}

void ir_table_get(struct ir_table *t)
{
	if (t)
		atomic_fetch_add_explicit(&((struct table_priv *)t)->refs, 1, memory_order_relaxed);
}

void ir_table_put(struct ir_table *t)
{
	if (t && atomic_fetch_sub_explicit(&((struct table_priv *)t)->refs, 1,
					   memory_order_acq_rel) == 1)
		table_free(t);
}

