/* workflow.c - workflow.json parsed and validated into the DAG (see
 * workflow.h for the forms, the ordering rules and the design).
 *
 * Steps, each refusing with one message (the exact texts; <n>, <a>, <b>
 * are quoted names, N numbers):
 *   raw bytes   larger than 1 MiB (N bytes)
 *               empty file (want a JSON object)
 *               line L, column C: NUL byte (not allowed in workflow.json)
 *               line L, column C: \u0000 in a string (not allowed in workflow.json)
 *               line L, column C: nested deeper than 16 levels (the limit for workflow.json)
 *   cJSON       line L, column C: invalid JSON near "..." | at end of input
 *               nested deeper than 16 levels (the limit for workflow.json)  [after parsing]
 *   top level   top level must be an object
 *               unknown key <k> (want name, dag, functions, entry)
 *               key <k> listed twice
 *               "name" must be a string
 *               workflow name <n>: <label rule>
 *               no "name", and the default name <n> [(the file's base name)]: <label rule>
 *   -- from here on the prefix is: workflow "<name>": --
 *               both "dag" and "functions": use one form
 *               no "dag" or "functions" (want ...)
 *   stage form  "entry" goes with "functions"; with "dag" the entry is stage 0
 *               "dag" must be an array of stages, e.g. [["a"], ["b", "c"]]
 *               no entry function ("dag" has no stages)
 *               "dag" stage N must be an array of function names
 *               "dag" stage N is empty
 *               "dag" stage N item M must be a string (a function name)
 *               more than 1024 functions (N)
 *               function <a> has N successors (at most 256): "dag" stage N has N functions
 *               function <a>: <label rule>
 *               function <a> listed twice (stage N) | (stages N and M)
 *   explicit    "functions" must be an object, e.g. {"a": {"next": ["b"]}, "b": {}}
 *               "functions" is empty
 *               more than 1024 functions (N)
 *               function <a>: <label rule>
 *               function <a> listed twice in "functions"
 *               function <a> must be an object, e.g. {"next": ["b"]}
 *               function <a>: unknown key <k> (want next)
 *               function <a>: key "next" listed twice
 *               "next" of <a> must be an array of strings
 *               function <a> has N successors (at most 256)
 *               "entry" is missing (the explicit form lists the functions a request starts at)
 *               "entry" must be an array of strings
 *               no entry function ("entry" is empty)
 *               entry <a> is not a function
 *               entry <a> listed twice
 *               function <a>: successor <b> is not a function
 *               function <a>: successor <b> listed twice
 *   the graph   cycle: a -> b -> c -> a       (a self-loop: cycle: a -> a)
 *               function <a> is both an entry and a successor of <b>
 *               function <a> is not reachable from an entry
 * Label rules: name is empty | name is N characters, over the 63 of a
 * Kubernetes DNS label | name has "X" at position N: a Kubernetes DNS label
 * (an OpenFaaS function name) has only a-z, 0-9 and '-' | name must start
 * and end with a letter or digit (a Kubernetes DNS label).
 * Check order is as listed; within one step, file order.
 */
#include "iroute/workflow.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HASH_SLOTS 2048 /* power of two, >= 2 * IR_WF_MAX_FNS */

/* ---- messages ---- */

struct ctx {
	const char *source;	  /* "workflow.json" or the path */
	bool drop_source;	  /* parse(): "workflow.json: " only until the name is known */
	const char *default_what; /* " (the file's base name)" or "" */
	const char *wfname;	  /* NULL until known (then a valid label) */
	char *err;
	size_t errlen;
};

static int fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct ctx *c, const char *fmt, ...)
{
	if (!c->err || !c->errlen)
		return -EINVAL;
	int n;
	if (!c->wfname)
		n = snprintf(c->err, c->errlen, "%s: ", c->source);
	else if (c->drop_source)
		n = snprintf(c->err, c->errlen, "workflow \"%s\": ", c->wfname);
	else
		n = snprintf(c->err, c->errlen, "%s: workflow \"%s\": ", c->source, c->wfname);
	if (n < 0 || (size_t)n >= c->errlen)
		return -EINVAL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int nomem(struct ctx *c)
{
	if (c->err && c->errlen)
		snprintf(c->err, c->errlen, "%s: out of memory", c->source);
	return -ENOMEM;
}

/* A name from the file, safe to print inside quotes: '"' and '\' escaped,
 * control and non-ASCII bytes as \xNN, cut after 64 bytes with "...". */
struct qb {
	char s[4 * 64 + 8];
};

static const char *q(struct qb *b, const char *s)
{
	size_t o = 0, i;
	for (i = 0; s[i] && i < 64; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\') {
			b->s[o++] = '\\';
			b->s[o++] = (char)ch;
		} else if (ch < 0x20 || ch >= 0x7f) {
			o += (size_t)snprintf(b->s + o, sizeof(b->s) - o, "\\x%02x", ch);
		} else {
			b->s[o++] = (char)ch;
		}
	}
	if (s[i]) {
		memcpy(b->s + o, "...", 3);
		o += 3;
	}
	b->s[o] = '\0';
	return b->s;
}

/* The Kubernetes DNS label rule; on a violation, the reason in @why. */
static bool label_ok(const char *s, char *why, size_t len)
{
	size_t n = strlen(s);
	if (!n) {
		snprintf(why, len, "name is empty");
		return false;
	}
	if (n > IR_WF_MAX_NAME) {
		snprintf(why, len, "name is %zu characters, over the %d of a Kubernetes DNS label",
			 n, IR_WF_MAX_NAME);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-')
			continue;
		char one[2] = {ch, '\0'};
		struct qb b;
		snprintf(why, len,
			 "name has \"%s\" at position %zu: a Kubernetes DNS label (an OpenFaaS "
			 "function name) has only a-z, 0-9 and '-'",
			 q(&b, one), i + 1);
		return false;
	}
	if (s[0] == '-' || s[n - 1] == '-') {
		snprintf(why, len,
			 "name must start and end with a letter or digit (a Kubernetes DNS label)");
		return false;
	}
	return true;
}

/* ---- raw bytes and JSON ---- */

static void line_col(const char *s, size_t pos, size_t *line, size_t *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < pos; i++) {
		if (s[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

/* Before cJSON sees the text: NUL bytes, \u0000 (cJSON would cut the string
 * there, so "a\u0000x" would silently name "a"), and the nesting depth,
 * counted over brackets outside strings (exact for valid JSON; for invalid
 * JSON cJSON reports the syntax error afterwards). */
static int prescan(struct ctx *c, const char *s, size_t len)
{
	size_t depth = 0, line = 1, col = 1;
	bool in_str = false, esc = false;
	for (size_t i = 0; i < len; i++, col++) {
		char ch = s[i];
		if (ch == '\0')
			return fail(c,
				    "line %zu, column %zu: NUL byte (not allowed in workflow.json)",
				    line, col);
		if (ch == '\n') {
			line++;
			col = 0;
		}
		if (in_str) {
			if (esc) {
				esc = false;
				if (ch == 'u' && len - i > 4 && !memcmp(s + i + 1, "0000", 4))
					return fail(
					    c,
					    "line %zu, column %zu: \\u0000 in a string (not "
					    "allowed in workflow.json)",
					    line, col - 1);
			} else if (ch == '\\') {
				esc = true;
			} else if (ch == '"') {
				in_str = false;
			}
		} else if (ch == '"') {
			in_str = true;
		} else if (ch == '[' || ch == '{') {
			if (++depth > IR_WF_MAX_DEPTH)
				return fail(
				    c,
				    "line %zu, column %zu: nested deeper than %d levels (the "
				    "limit for workflow.json)",
				    line, col, IR_WF_MAX_DEPTH);
		} else if ((ch == ']' || ch == '}') && depth) {
			depth--;
		}
	}
	return 0;
}

static int json_depth(const cJSON *item, int d)
{
	int max = d;
	if (d > IR_WF_MAX_DEPTH)
		return d;
	for (const cJSON *ch = item->child; ch; ch = ch->next) {
		int k = json_depth(ch, d + 1);
		if (k > max)
			max = k;
		if (max > IR_WF_MAX_DEPTH)
			break;
	}
	return max;
}

static int parse_json(struct ctx *c, const char *json, size_t len, cJSON **root)
{
	*root = NULL;
	if (len > IR_WF_MAX_BYTES)
		return fail(c, "larger than 1 MiB (%zu bytes)", len);
	if (len >= 3 && !memcmp(json, "\xef\xbb\xbf", 3)) {
		json += 3;
		len -= 3;
	}
	size_t i = 0;
	while (i < len && (json[i] == ' ' || json[i] == '\t' || json[i] == '\n' || json[i] == '\r'))
		i++;
	if (i == len)
		return fail(c, "empty file (want a JSON object)");
	int r = prescan(c, json, len);
	if (r)
		return r;

	char *buf = malloc(len + 1);
	if (!buf)
		return nomem(c);
	memcpy(buf, json, len);
	buf[len] = '\0';
	const char *end = NULL;
	cJSON *j = cJSON_ParseWithOpts(buf, &end, 1);
	if (!j) {
		size_t pos = end && end >= buf && end <= buf + len ? (size_t)(end - buf) : len;
		size_t line, col;
		line_col(buf, pos, &line, &col);
		if (pos >= len) {
			r = fail(c, "line %zu, column %zu: invalid JSON at end of input", line,
				 col);
		} else {
			char near[17];
			size_t n = len - pos < 16 ? len - pos : 16;
			memcpy(near, buf + pos, n);
			near[n] = '\0';
			struct qb b;
			r = fail(c, "line %zu, column %zu: invalid JSON near \"%s\"", line, col,
				 q(&b, near));
		}
		free(buf);
		return r;
	}
	free(buf);
	if (json_depth(j, 1) > IR_WF_MAX_DEPTH) {
		cJSON_Delete(j);
		return fail(c, "nested deeper than %d levels (the limit for workflow.json)",
			    IR_WF_MAX_DEPTH);
	}
	*root = j;
	return 0;
}

/* ---- names -> positions ---- */

struct names {
	const char **name; /* borrowed from the cJSON tree */
	size_t n;
	int32_t slot[HASH_SLOTS];
};

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Position of @s, or -1. */
static int32_t names_find(const struct names *t, const char *s)
{
	for (uint32_t h = hash(s) & (HASH_SLOTS - 1);; h = (h + 1) & (HASH_SLOTS - 1)) {
		int32_t p = t->slot[h];
		if (p < 0 || !strcmp(t->name[p], s))
			return p;
	}
}

/* Append @s; returns its position, or the earlier position of a duplicate
 * as -(pos + 2).  The caller keeps n <= IR_WF_MAX_FNS. */
static int32_t names_add(struct names *t, const char *s)
{
	uint32_t h = hash(s) & (HASH_SLOTS - 1);
	for (; t->slot[h] >= 0; h = (h + 1) & (HASH_SLOTS - 1))
		if (!strcmp(t->name[t->slot[h]], s))
			return -(t->slot[h] + 2);
	t->name[t->n] = s;
	t->slot[h] = (int32_t)t->n;
	return (int32_t)t->n++;
}

static struct names *names_new(size_t cap)
{
	struct names *t = malloc(sizeof(*t));
	if (!t)
		return NULL;
	t->name = calloc(cap ? cap : 1, sizeof(*t->name));
	if (!t->name) {
		free(t);
		return NULL;
	}
	t->n = 0;
	memset(t->slot, 0xff, sizeof(t->slot));
	return t;
}

static void names_free(struct names *t)
{
	if (t) {
		free(t->name);
		free(t);
	}
}

/* ---- the workflow ---- */

void ir_workflow_free(struct ir_workflow *wf)
{
	if (!wf)
		return;
	for (size_t i = 0; wf->fns && i < wf->nfns; i++) {
		free(wf->fns[i].name);
		free(wf->fns[i].next);
		free(wf->fns[i].prev);
	}
	free(wf->fns);
	free(wf->name);
	free(wf->entry);
	free(wf->topo);
	free(wf->sinks);
	memset(wf, 0, sizeof(*wf));
}

/* Allocate fns[] with names (index order) from @names. */
static int alloc_fns(struct ctx *c, struct ir_workflow *w, const char *const *names, size_t n)
{
	w->fns = calloc(n, sizeof(*w->fns));
	if (!w->fns)
		return nomem(c);
	w->nfns = n;
	for (size_t i = 0; i < n; i++)
		if (!(w->fns[i].name = strdup(names[i])))
			return nomem(c);
	return 0;
}

static bool is_string_array(const cJSON *a)
{
	if (!cJSON_IsArray(a))
		return false;
	for (const cJSON *it = a->child; it; it = it->next)
		if (!cJSON_IsString(it))
			return false;
	return true;
}

static int build_stages(struct ctx *c, const cJSON *dag, struct ir_workflow *w)
{
	struct qb b1;
	char why[256];
	if (!cJSON_IsArray(dag))
		return fail(c,
			    "\"dag\" must be an array of stages, e.g. [[\"a\"], [\"b\", \"c\"]]");
	size_t nst = 0, total = 0;
	for (const cJSON *st = dag->child; st; st = st->next, nst++) {
		if (!cJSON_IsArray(st))
			return fail(c, "\"dag\" stage %zu must be an array of function names", nst);
		size_t k = 0;
		for (const cJSON *it = st->child; it; it = it->next, k++)
			if (!cJSON_IsString(it))
				return fail(
				    c,
				    "\"dag\" stage %zu item %zu must be a string (a function "
				    "name)",
				    nst, k);
		if (!k)
			return fail(c, "\"dag\" stage %zu is empty", nst);
		total += k;
	}
	if (!nst)
		return fail(c, "no entry function (\"dag\" has no stages)");
	if (total > IR_WF_MAX_FNS)
		return fail(c, "more than %d functions (%zu)", IR_WF_MAX_FNS, total);
	/* A stage's size is the successor count of each function before it. */
	const cJSON *prev_st = NULL;
	size_t si = 0;
	for (const cJSON *st = dag->child; st; prev_st = st, st = st->next, si++) {
		size_t k = (size_t)cJSON_GetArraySize(st);
		if (prev_st && k > IR_WF_MAX_NEXT)
			return fail(
			    c,
			    "function \"%s\" has %zu successors (at most %d): \"dag\" stage "
			    "%zu has %zu functions",
			    q(&b1, prev_st->child->valuestring), k, IR_WF_MAX_NEXT, si, k);
	}

	int r = -ENOMEM;
	struct names *t = names_new(total);
	size_t *stage_of = calloc(total, sizeof(*stage_of));
	size_t *stage_start = calloc(nst + 1, sizeof(*stage_start));
	if (!t || !stage_of || !stage_start) {
		r = nomem(c);
		goto out;
	}
	si = 0;
	for (const cJSON *st = dag->child; st; st = st->next, si++) {
		stage_start[si] = t->n;
		for (const cJSON *it = st->child; it; it = it->next) {
			const char *s = it->valuestring;
			if (!label_ok(s, why, sizeof(why))) {
				r = fail(c, "function \"%s\": %s", q(&b1, s), why);
				goto out;
			}
			int32_t p = names_add(t, s);
			if (p < 0) {
				size_t first = stage_of[-p - 2];
				if (first == si)
					r = fail(c, "function \"%s\" listed twice (stage %zu)",
						 q(&b1, s), si);
				else
					r = fail(
					    c, "function \"%s\" listed twice (stages %zu and %zu)",
					    q(&b1, s), first, si);
				goto out;
			}
			stage_of[p] = si;
		}
	}
	stage_start[nst] = t->n;
	if ((r = alloc_fns(c, w, t->name, t->n)))
		goto out;
	for (size_t s = 0; s + 1 < nst; s++) {
		size_t lo = stage_start[s + 1], hi = stage_start[s + 2];
		for (size_t i = stage_start[s]; i < stage_start[s + 1]; i++) {
			struct ir_wf_fn *f = &w->fns[i];
			if (!(f->next = malloc((hi - lo) * sizeof(*f->next)))) {
				r = nomem(c);
				goto out;
			}
			for (size_t j = lo; j < hi; j++)
				f->next[f->nnext++] = (uint32_t)j;
		}
	}
	w->nentry = stage_start[1];
	if (!(w->entry = malloc(w->nentry * sizeof(*w->entry)))) {
		r = nomem(c);
		goto out;
	}
	for (size_t i = 0; i < w->nentry; i++)
		w->entry[i] = (uint32_t)i;
	r = 0;
out:
	names_free(t);
	free(stage_of);
	free(stage_start);
	return r;
}

/* One value of "functions": {} or {"next": [names]}; sets *next. */
static int check_fn_object(struct ctx *c, const cJSON *fo, const cJSON **next)
{
	struct qb b1, b2;
	const char *name = fo->string;
	*next = NULL;
	if (!cJSON_IsObject(fo))
		return fail(c, "function \"%s\" must be an object, e.g. {\"next\": [\"b\"]}",
			    q(&b1, name));
	for (const cJSON *k = fo->child; k; k = k->next) {
		if (strcmp(k->string, "next"))
			return fail(c, "function \"%s\": unknown key \"%s\" (want next)",
				    q(&b1, name), q(&b2, k->string));
		if (*next)
			return fail(c, "function \"%s\": key \"next\" listed twice", q(&b1, name));
		*next = k;
	}
	if (*next && !is_string_array(*next))
		return fail(c, "\"next\" of \"%s\" must be an array of strings", q(&b1, name));
	int k = *next ? cJSON_GetArraySize(*next) : 0;
	if (k > IR_WF_MAX_NEXT)
		return fail(c, "function \"%s\" has %d successors (at most %d)", q(&b1, name), k,
			    IR_WF_MAX_NEXT);
	return 0;
}

static int build_explicit(struct ctx *c, const cJSON *fns, const cJSON *entry,
			  struct ir_workflow *w)
{
	struct qb b1, b2;
	char why[256];
	if (!cJSON_IsObject(fns))
		return fail(c, "\"functions\" must be an object, e.g. {\"a\": {\"next\": [\"b\"]}, "
			       "\"b\": {}}");
	size_t n = (size_t)cJSON_GetArraySize(fns);
	if (!n)
		return fail(c, "\"functions\" is empty");
	if (n > IR_WF_MAX_FNS)
		return fail(c, "more than %d functions (%zu)", IR_WF_MAX_FNS, n);

	int r = -ENOMEM;
	struct names *t = names_new(n);
	const cJSON **nexts = calloc(n, sizeof(*nexts));
	uint32_t *idx_of = malloc(n * sizeof(*idx_of));	  /* file position -> index */
	const char **by_idx = calloc(n, sizeof(*by_idx)); /* index -> name */
	uint32_t *seen = malloc(n * sizeof(*seen));	  /* per-function stamp */
	if (!t || !nexts || !idx_of || !by_idx || !seen) {
		r = nomem(c);
		goto out;
	}
	size_t p = 0;
	for (const cJSON *fo = fns->child; fo; fo = fo->next, p++) {
		if (!label_ok(fo->string, why, sizeof(why))) {
			r = fail(c, "function \"%s\": %s", q(&b1, fo->string), why);
			goto out;
		}
		if (names_add(t, fo->string) < 0) {
			r = fail(c, "function \"%s\" listed twice in \"functions\"",
				 q(&b1, fo->string));
			goto out;
		}
		if ((r = check_fn_object(c, fo, &nexts[p])))
			goto out;
	}

	if (!entry) {
		r = fail(c, "\"entry\" is missing (the explicit form lists the functions a request "
			    "starts at)");
		goto out;
	}
	if (!is_string_array(entry)) {
		r = fail(c, "\"entry\" must be an array of strings");
		goto out;
	}
	if (!entry->child) {
		r = fail(c, "no entry function (\"entry\" is empty)");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		idx_of[i] = UINT32_MAX;
	size_t ne = 0;
	for (const cJSON *e = entry->child; e; e = e->next) {
		int32_t pos = names_find(t, e->valuestring);
		if (pos < 0) {
			r = fail(c, "entry \"%s\" is not a function", q(&b1, e->valuestring));
			goto out;
		}
		if (idx_of[pos] != UINT32_MAX) {
			r = fail(c, "entry \"%s\" listed twice", q(&b1, e->valuestring));
			goto out;
		}
		idx_of[pos] = (uint32_t)ne;
		by_idx[ne++] = t->name[pos];
	}
	size_t ni = ne;
	for (size_t i = 0; i < n; i++) {
		if (idx_of[i] == UINT32_MAX) {
			idx_of[i] = (uint32_t)ni;
			by_idx[ni++] = t->name[i];
		}
	}
	if ((r = alloc_fns(c, w, by_idx, n)))
		goto out;
	w->nentry = ne;
	if (!(w->entry = malloc(ne * sizeof(*w->entry)))) {
		r = nomem(c);
		goto out;
	}
	for (size_t i = 0; i < ne; i++)
		w->entry[i] = (uint32_t)i;

	for (size_t i = 0; i < n; i++)
		seen[i] = UINT32_MAX;
	for (size_t i = 0; i < n; i++) {
		struct ir_wf_fn *f = &w->fns[idx_of[i]];
		size_t k = nexts[i] ? (size_t)cJSON_GetArraySize(nexts[i]) : 0;
		if (!k)
			continue;
		if (!(f->next = malloc(k * sizeof(*f->next)))) {
			r = nomem(c);
			goto out;
		}
		for (const cJSON *s = nexts[i]->child; s; s = s->next) {
			int32_t pos = names_find(t, s->valuestring);
			if (pos < 0) {
				r = fail(c, "function \"%s\": successor \"%s\" is not a function",
					 q(&b1, f->name), q(&b2, s->valuestring));
				goto out;
			}
			if (seen[pos] == i) {
				r = fail(c, "function \"%s\": successor \"%s\" listed twice",
					 q(&b1, f->name), q(&b2, s->valuestring));
				goto out;
			}
			seen[pos] = (uint32_t)i;
			f->next[f->nnext++] = idx_of[pos];
		}
	}
	r = 0;
out:
	names_free(t);
	free(nexts);
	free(idx_of);
	free(by_idx);
	free(seen);
	return r;
}

/* "cycle: a -> b -> a" for the cycle found by walking back from the lowest
 * function Kahn's algorithm left over (each of those has a left-over
 * predecessor), printed forwards from its lowest index. */
static int report_cycle(struct ctx *c, const struct ir_workflow *w, const bool *done)
{
	size_t n = w->nfns;
	size_t *step = malloc(n * sizeof(*step));
	uint32_t *walk = malloc((n + 1) * sizeof(*walk));
	if (!step || !walk) {
		free(step);
		free(walk);
		return nomem(c);
	}
	for (size_t i = 0; i < n; i++)
		step[i] = SIZE_MAX;
	uint32_t v = 0;
	while (done[v])
		v++;
	size_t len = 0;
	while (step[v] == SIZE_MAX) {
		step[v] = len;
		walk[len++] = v;
		const struct ir_wf_fn *f = &w->fns[v];
		for (size_t k = 0; k < f->nprev; k++) {
			if (!done[f->prev[k]]) {
				v = f->prev[k];
				break;
			}
		}
	}
	/* walk[step[v]..len-1] is the cycle backwards: walk[i+1] -> walk[i]. */
	size_t from = step[v], cl = len - from, low = from;
	for (size_t i = from; i < len; i++)
		if (walk[i] < walk[low])
			low = i;
	size_t sz = 1;
	for (size_t i = from; i < len; i++)
		sz += strlen(w->fns[walk[i]].name) + 4;
	sz += strlen(w->fns[walk[low]].name);
	char *txt = malloc(sz);
	if (!txt) {
		free(step);
		free(walk);
		return nomem(c);
	}
	size_t o = 0;
	for (size_t k = 0; k <= cl; k++) {
		/* Forwards: low, low-1, ... wrapping within [from, len). */
		size_t i = from + (low - from + cl - k % cl) % cl;
		o += (size_t)snprintf(txt + o, sz - o, "%s%s", k ? " -> " : "",
				      w->fns[walk[i]].name);
	}
	int r = fail(c, "cycle: %s", txt);
	free(txt);
	free(step);
	free(walk);
	return r;
}

/* prev, sinks, topo, then the graph rules. */
static int finish(struct ctx *c, struct ir_workflow *w)
{
	struct qb b1, b2;
	size_t n = w->nfns;
	int r = -ENOMEM;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < w->fns[i].nnext; k++)
			w->fns[w->fns[i].next[k]].nprev++;
	for (size_t i = 0; i < n; i++) {
		struct ir_wf_fn *f = &w->fns[i];
		if (f->nprev && !(f->prev = malloc(f->nprev * sizeof(*f->prev))))
			return nomem(c);
		f->nprev = 0;
		f->sink = f->nnext == 0;
		w->nsinks += f->sink;
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < w->fns[i].nnext; k++) {
			struct ir_wf_fn *s = &w->fns[w->fns[i].next[k]];
			s->prev[s->nprev++] = (uint32_t)i;
		}
	}
	for (size_t i = 0; i < w->nentry; i++)
		w->fns[w->entry[i]].entry = true;

	size_t *indeg = malloc(n * sizeof(*indeg));
	bool *done = calloc(n, sizeof(*done));
	w->topo = malloc(n * sizeof(*w->topo));
	w->sinks = malloc((w->nsinks ? w->nsinks : 1) * sizeof(*w->sinks));
	if (!indeg || !done || !w->topo || !w->sinks) {
		r = nomem(c);
		goto out;
	}
	size_t ns = 0;
	for (size_t i = 0; i < n; i++) {
		indeg[i] = w->fns[i].nprev;
		if (w->fns[i].sink)
			w->sinks[ns++] = (uint32_t)i;
	}
	/* Kahn's algorithm, lowest ready index first (n <= 1024: a scan). */
	size_t nt = 0;
	for (;;) {
		size_t v = n;
		for (size_t i = 0; i < n; i++) {
			if (!done[i] && !indeg[i]) {
				v = i;
				break;
			}
		}
		if (v == n)
			break;
		done[v] = true;
		w->topo[nt++] = (uint32_t)v;
		for (size_t k = 0; k < w->fns[v].nnext; k++)
			indeg[w->fns[v].next[k]]--;
	}
	if (nt < n) {
		r = report_cycle(c, w, done);
		goto out;
	}
	for (size_t i = 0; i < w->nentry; i++) {
		const struct ir_wf_fn *f = &w->fns[w->entry[i]];
		if (f->nprev) {
			r = fail(c, "function \"%s\" is both an entry and a successor of \"%s\"",
				 q(&b1, f->name), q(&b2, w->fns[f->prev[0]].name));
			goto out;
		}
	}
	/* Reachability: in topological order every predecessor comes first. */
	memset(done, 0, n * sizeof(*done));
	for (size_t i = 0; i < w->nentry; i++)
		done[w->entry[i]] = true;
	for (size_t t = 0; t < n; t++) {
		uint32_t v = w->topo[t];
		if (!done[v])
			continue;
		for (size_t k = 0; k < w->fns[v].nnext; k++)
			done[w->fns[v].next[k]] = true;
	}
	for (size_t i = 0; i < n; i++) {
		if (!done[i]) {
			r = fail(c, "function \"%s\" is not reachable from an entry",
				 q(&b1, w->fns[i].name));
			goto out;
		}
	}
	r = 0;
out:
	free(indeg);
	free(done);
	return r;
}

static int build(struct ctx *c, const cJSON *root, const char *default_name, struct ir_workflow *w)
{
	struct qb b1;
	char why[256];
	static const char *const keys[] = {"name", "dag", "functions", "entry"};
	const cJSON *val[4] = {NULL, NULL, NULL, NULL};

	if (!cJSON_IsObject(root))
		return fail(c, "top level must be an object");
	for (const cJSON *k = root->child; k; k = k->next) {
		size_t i = 0;
		while (i < 4 && strcmp(k->string, keys[i]))
			i++;
		if (i == 4)
			return fail(c, "unknown key \"%s\" (want name, dag, functions, entry)",
				    q(&b1, k->string));
		if (val[i])
			return fail(c, "key \"%s\" listed twice", keys[i]);
		val[i] = k;
	}
	const char *name;
	if (val[0]) {
		if (!cJSON_IsString(val[0]))
			return fail(c, "\"name\" must be a string");
		name = val[0]->valuestring;
		if (!label_ok(name, why, sizeof(why)))
			return fail(c, "workflow name \"%s\": %s", q(&b1, name), why);
	} else {
		name = default_name ? default_name : "workflow";
		if (!label_ok(name, why, sizeof(why)))
			return fail(c, "no \"name\", and the default name \"%s\"%s: %s",
				    q(&b1, name), c->default_what, why);
	}
	if (!(w->name = strdup(name)))
		return nomem(c);
	c->wfname = w->name;
	if (val[1] && val[2])
		return fail(c, "both \"dag\" and \"functions\": use one form");
	if (!val[1] && !val[2])
		return fail(c,
			    "no \"dag\" or \"functions\" (want {\"dag\": [[\"a\"], [\"b\"]]} or "
			    "{\"functions\": {\"a\": {\"next\": [\"b\"]}, \"b\": {}}, \"entry\": "
			    "[\"a\"]})");

	int r;
	if (val[1]) {
		if (val[3])
			return fail(
			    c,
			    "\"entry\" goes with \"functions\"; with \"dag\" the entry is stage 0");
		r = build_stages(c, val[1], w);
	} else {
		r = build_explicit(c, val[2], val[3], w);
	}
	return r ? r : finish(c, w);
}

static int parse(struct ctx *c, const char *json, size_t len, const char *default_name,
		 struct ir_workflow *wf)
{
	struct ir_workflow w;
	memset(&w, 0, sizeof(w));
	memset(wf, 0, sizeof(*wf));
	if (c->err && c->errlen)
		c->err[0] = '\0';
	if (!json && len)
		return fail(c, "no input");
	cJSON *root;
	int r = parse_json(c, json ? json : "", len, &root);
	if (r)
		return r;
	r = build(c, root, default_name, &w);
	cJSON_Delete(root);
	if (r) {
		ir_workflow_free(&w);
		return r;
	}
	*wf = w;
	return 0;
}

int ir_workflow_parse(const char *json, size_t len, const char *default_name,
		      struct ir_workflow *wf, char *err, size_t errlen)
{
	struct ctx c = {"workflow.json", true, "", NULL, err, errlen};
	return parse(&c, json, len, default_name, wf);
}

int ir_workflow_load(const char *path, struct ir_workflow *wf, char *err, size_t errlen)
{
	struct ctx c = {path, false, " (the file's base name)", NULL, err, errlen};
	memset(wf, 0, sizeof(*wf));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (err && errlen)
			snprintf(err, errlen, "%s: open(): %s", path, strerror(e));
		return -e;
	}
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		if (err && errlen)
			snprintf(err, errlen, "%s: is a directory (want workflow.json)", path);
		return -EISDIR;
	}
	char *buf = malloc(IR_WF_MAX_BYTES + 1);
	if (!buf) {
		close(fd);
		return nomem(&c);
	}
	size_t len = 0;
	while (len <= IR_WF_MAX_BYTES) {
		ssize_t k = read(fd, buf + len, IR_WF_MAX_BYTES + 1 - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int e = errno;
			if (err && errlen)
				snprintf(err, errlen, "%s: read(): %s", path, strerror(e));
			free(buf);
			close(fd);
			return -e;
		}
		if (!k)
			break;
		len += (size_t)k;
	}
	close(fd);
	if (len > IR_WF_MAX_BYTES) {
		free(buf);
		return fail(&c, "larger than 1 MiB (more than %u bytes)", IR_WF_MAX_BYTES);
	}
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	size_t bl = strlen(base);
	if (bl >= 5 && !strcmp(base + bl - 5, ".json"))
		bl -= 5;
	char *dname = strndup(base, bl);
	if (!dname) {
		free(buf);
		return nomem(&c);
	}
	int r = parse(&c, buf, len, dname, wf);
	free(dname);
	free(buf);
	return r;
}

int ir_workflow_find(const struct ir_workflow *wf, const char *name)
{
	if (!wf || !name)
		return -1;
	for (size_t i = 0; i < wf->nfns; i++)
		if (!strcmp(wf->fns[i].name, name))
			return (int)i;
	return -1;
}

/* ---- JSON out ---- */

static cJSON *name_array(const struct ir_workflow *wf, const uint32_t *idx, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && i < n; i++) {
		cJSON *s = cJSON_CreateString(wf->fns[idx[i]].name);
		if (!s) {
			cJSON_Delete(a);
			return NULL;
		}
		cJSON_AddItemToArray(a, s);
	}
	return a;
}

/* Adds @item to @obj under @key (which then owns it); false when @item is
 * NULL (a failed allocation). */
static bool add(cJSON *obj, const char *key, cJSON *item)
{
	if (!item)
		return false;
	cJSON_AddItemToObject(obj, key, item);
	return true;
}

char *ir_workflow_to_json(const struct ir_workflow *wf)
{
	cJSON *root = cJSON_CreateObject(), *fns = cJSON_CreateObject();
	char *out = NULL;
	if (!root || !fns) {
		cJSON_Delete(fns);
		goto out;
	}
	if (!add(root, "name", cJSON_CreateString(wf->name)) || !add(root, "functions", fns))
		goto out;
	for (size_t i = 0; i < wf->nfns; i++) {
		const struct ir_wf_fn *f = &wf->fns[i];
		cJSON *fo = cJSON_CreateObject();
		if (!add(fns, f->name, fo) || !add(fo, "next", name_array(wf, f->next, f->nnext)))
			goto out;
	}
	if (!add(root, "entry", name_array(wf, wf->entry, wf->nentry)))
		goto out;
	out = cJSON_PrintUnformatted(root);
out:
	cJSON_Delete(root);
	return out;
}

char *ir_workflow_slice_json(const struct ir_workflow *wf, const char *fn)
{
	int i = ir_workflow_find(wf, fn);
	if (i < 0)
		return NULL;
	const struct ir_wf_fn *f = &wf->fns[i];
	cJSON *root = cJSON_CreateObject(), *next = cJSON_CreateArray();
	char *out = NULL;
	if (!root || !next) {
		cJSON_Delete(next);
		goto out;
	}
	if (!add(root, "workflow", cJSON_CreateString(wf->name)) ||
	    !add(root, "function", cJSON_CreateString(f->name)) ||
	    !add(root, "entry", cJSON_CreateBool(f->entry)) ||
	    !add(root, "sink", cJSON_CreateBool(f->sink)) ||
	    !add(root, "join", cJSON_CreateBool(f->nprev > 1)) ||
	    !add(root, "index", cJSON_CreateNumber((double)i)) || !add(root, "next", next))
		goto out;
	for (size_t k = 0; k < f->nnext; k++) {
		const struct ir_wf_fn *s = &wf->fns[f->next[k]];
		size_t branch = 0;
		while (branch < s->nprev && s->prev[branch] != (uint32_t)i)
			branch++;
		cJSON *so = cJSON_CreateObject();
		if (!so)
			goto out;
		cJSON_AddItemToArray(next, so);
		if (!add(so, "name", cJSON_CreateString(s->name)) ||
		    !add(so, "index", cJSON_CreateNumber((double)f->next[k])) ||
		    !add(so, "join", cJSON_CreateBool(s->nprev > 1)) ||
		    !add(so, "branch", cJSON_CreateNumber((double)branch)) ||
		    !add(so, "inputs", cJSON_CreateNumber((double)s->nprev)))
			goto out;
	}
	if (!add(root, "prev", name_array(wf, f->prev, f->nprev)))
		goto out;
	out = cJSON_PrintUnformatted(root);
out:
	cJSON_Delete(root);
	return out;
}
