/* stack.c - stack.yml read with faas-cli's rules (see stack.h). */
#include "stack.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#define STACK_MAX (16u * 1024u * 1024u) /* a bigger stack.yml is surely a mistake */
#define MERGE_DEPTH 16

struct parse {
	struct ir_stack *st;
	yaml_document_t *doc;
	const char *file; /* as the messages name it */
	char *err;
	size_t errlen;
};

/* ---- ownership: everything hangs off st->pool ---- */

static void *own(struct ir_stack *st, void *ptr)
{
	if (!ptr)
		return NULL;
	if (st->npool == st->cpool) {
		size_t nc = st->cpool ? st->cpool * 2 : 64;
		void **np = realloc(st->pool, nc * sizeof(*np));
		if (!np) {
			free(ptr);
			return NULL;
		}
		st->pool = np;
		st->cpool = nc;
	}
	st->pool[st->npool++] = ptr;
	return ptr;
}

static char *sdup(struct ir_stack *st, const char *s)
{
	return own(st, strdup(s));
}

/* The array @arr of @n elements of @size grown by one zeroed element (the
 * pool follows the move); NULL on ENOMEM, @arr then unchanged. */
static void *grow(struct ir_stack *st, void *arr, size_t n, size_t size)
{
	void *nv = realloc(arr, (n + 1) * size);
	if (!nv)
		return NULL;
	memset((char *)nv + n * size, 0, size);
	if (arr) {
		for (size_t i = 0; i < st->npool; i++)
			if (st->pool[i] == arr) {
				st->pool[i] = nv;
				break;
			}
	} else if (!own(st, nv)) {
		return NULL;
	}
	return nv;
}

void ir_stack_free(struct ir_stack *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->npool; i++)
		free(st->pool[i]);
	free(st->pool);
	memset(st, 0, sizeof(*st));
}

static int oom(struct parse *p)
{
	snprintf(p->err, p->errlen, "%s: out of memory", p->file);
	return -ENOMEM;
}

static int perr(struct parse *p, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int perr(struct parse *p, const yaml_node_t *n, const char *fmt, ...)
{
	int off = n ? snprintf(p->err, p->errlen, "%s:%zu:%zu: ", p->file,
			       n->start_mark.line + 1, n->start_mark.column + 1)
		    : snprintf(p->err, p->errlen, "%s: ", p->file);
	if (off < 0 || (size_t)off >= p->errlen)
		return -EINVAL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err + off, p->errlen - (size_t)off, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int warn(struct parse *p, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int warn(struct parse *p, const yaml_node_t *n, const char *fmt, ...)
{
	char line[512];
	int off = snprintf(line, sizeof(line), "%s:%zu: ", p->file, n->start_mark.line + 1);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + off, sizeof(line) - (size_t)off, fmt, ap);
	va_end(ap);
	struct ir_strlist *w = &p->st->warnings;
	char **nv = grow(p->st, w->v, w->n, sizeof(*w->v));
	if (!nv)
		return oom(p);
	w->v = nv;
	if (!(nv[w->n] = sdup(p->st, line)))
		return oom(p);
	w->n++;
	return 0;
}

/* ---- ${VAR} substitution ---- */

char *ir_stack_envsubst(const char *text, size_t len, char *err, size_t errlen)
{
	size_t cap = len + 1, n = 0, line = 1;
	char *out = malloc(cap);
	if (!out) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < len;) {
		const char *add = text + i;
		size_t alen = 1;
		if (text[i] == '\n')
			line++;
		if (text[i] == '$' && i + 1 < len && text[i + 1] == '{') {
			const char *end = memchr(text + i, '}', len - i);
			const char *nl = memchr(text + i, '\n', len - i);
			if (!end || (nl && nl < end)) {
				snprintf(err, errlen, "line %zu: \"${\" without \"}\"", line);
				free(out);
				return NULL;
			}
			const char *name = text + i + 2;
			size_t nlen = 0;
			while (name + nlen < end &&
			       (isalnum((unsigned char)name[nlen]) || name[nlen] == '_'))
				nlen++;
			const char *rest = name + nlen;
			bool colon = rest < end && *rest == ':';
			bool has_def = rest < end && (colon ? rest + 1 < end && rest[1] == '-'
							    : *rest == '-');
			if (nlen && (rest == end || has_def)) {
				char key[256];
				if (nlen >= sizeof(key)) {
					snprintf(err, errlen, "line %zu: variable name too long", line);
					free(out);
					return NULL;
				}
				memcpy(key, name, nlen);
				key[nlen] = '\0';
				const char *v = getenv(key);
				if (has_def && (!v || (colon && !*v))) {
					add = rest + (colon ? 2 : 1);
					alen = (size_t)(end - add);
				} else {
					add = v ? v : "";
					alen = strlen(add);
				}
				i = (size_t)(end - text) + 1;
				goto append;
			}
		}
		i++;
	append:
		if (n + alen + 1 > cap) {
			while (n + alen + 1 > cap)
				cap *= 2;
			char *no = realloc(out, cap);
			if (!no) {
				free(out);
				snprintf(err, errlen, "out of memory");
				return NULL;
			}
			out = no;
		}
		memcpy(out + n, add, alen);
		n += alen;
	}
	out[n] = '\0';
	return out;
}

/* ---- nodes ---- */

static const yaml_node_t *node(struct parse *p, int id)
{
	return yaml_document_get_node(p->doc, id);
}

static bool is_null(const yaml_node_t *n)
{
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *v = (const char *)n->data.scalar.value;
	return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
	       strcmp(v, "NULL") == 0;
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

struct pairs {
	const yaml_node_t **k, **v;
	size_t n, cap;
};

static void pairs_free(struct pairs *ps)
{
	free(ps->k);
	free(ps->v);
	memset(ps, 0, sizeof(*ps));
}

static int pairs_add(struct pairs *ps, const yaml_node_t *k, const yaml_node_t *v)
{
	if (ps->n == ps->cap) {
		size_t nc = ps->cap ? ps->cap * 2 : 16;
		const yaml_node_t **nk = realloc(ps->k, nc * sizeof(*nk));
		if (!nk)
			return -ENOMEM;
		ps->k = nk;
		const yaml_node_t **nv = realloc(ps->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		ps->v = nv;
		ps->cap = nc;
	}
	ps->k[ps->n] = k;
	ps->v[ps->n++] = v;
	return 0;
}

static const yaml_node_t *pairs_get(const struct pairs *ps, const char *key)
{
	for (size_t i = 0; i < ps->n; i++)
		if (strcmp(scalar(ps->k[i]), key) == 0)
			return ps->v[i];
	return NULL;
}

static int collect(struct parse *p, const yaml_node_t *map, struct pairs *ps, bool merged,
		   int depth);

static int merge_in(struct parse *p, const yaml_node_t *src, struct pairs *ps, int depth)
{
	if (depth > MERGE_DEPTH)
		return perr(p, src, "merge keys nested too deep");
	if (src->type == YAML_MAPPING_NODE)
		return collect(p, src, ps, true, depth + 1);
	if (src->type != YAML_SEQUENCE_NODE)
		return perr(p, src, "\"<<\" wants a mapping or a list of mappings");
	for (yaml_node_item_t *it = src->data.sequence.items.start;
	     it < src->data.sequence.items.top; it++) {
		const yaml_node_t *m = node(p, *it);
		if (m->type != YAML_MAPPING_NODE)
			return perr(p, m, "\"<<\" wants a mapping or a list of mappings");
		int rc = collect(p, m, ps, true, depth + 1);
		if (rc)
			return rc;
	}
	return 0;
}

/* The key/value pairs of @map in order, "<<" merge keys expanded (an
 * explicit key wins over a merged one); a key twice is an error. */
static int collect(struct parse *p, const yaml_node_t *map, struct pairs *ps, bool merged,
		   int depth)
{
	for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
	     pr++) {
		const yaml_node_t *k = node(p, pr->key), *v = node(p, pr->value);
		const char *ks = scalar(k);
		if (!ks)
			return perr(p, k, "a key must be a plain string");
		if (strcmp(ks, "<<") == 0)
			continue;
		const yaml_node_t *prev = pairs_get(ps, ks);
		if (prev) {
			if (merged)
				continue; /* set explicitly, or by an earlier merge */
			return perr(p, k, "duplicate key \"%s\"", ks);
		}
		if (pairs_add(ps, k, v))
			return oom(p);
	}
	for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
	     pr++) {
		const char *ks = scalar(node(p, pr->key));
		if (ks && strcmp(ks, "<<") == 0) {
			int rc = merge_in(p, node(p, pr->value), ps, depth);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static int mapping(struct parse *p, const yaml_node_t *n, const char *what, struct pairs *ps)
{
	memset(ps, 0, sizeof(*ps));
	if (is_null(n))
		return 0;
	if (n->type != YAML_MAPPING_NODE)
		return perr(p, n, "%s must be a mapping", what);
	return collect(p, n, ps, false, 0);
}

/* A string value; NULL for a plain null. */
static int get_str(struct parse *p, const yaml_node_t *n, const char *what, char **out)
{
	if (is_null(n)) {
		*out = NULL;
		return 0;
	}
	const char *s = scalar(n);
	if (!s)
		return perr(p, n, "%s must be a string", what);
	if (!(*out = sdup(p->st, s)))
		return oom(p);
	return 0;
}

static int get_bool(struct parse *p, const yaml_node_t *n, const char *what, bool *out)
{
	const char *s = scalar(n);
	static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "on", "On"};
	static const char *const no[] = {"false", "False", "FALSE", "no", "No", "off", "Off"};
	for (size_t i = 0; s && i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return perr(p, n, "%s must be true or false", what);
}

/* Set @key to @value in @l, replacing an earlier value. */
static int kv_set(struct parse *p, struct ir_kvlist *l, const char *key, const char *value)
{
	char *v = sdup(p->st, value);
	if (!v)
		return oom(p);
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].key, key) == 0) {
			l->v[i].value = v;
			return 0;
		}
	struct ir_kv *nv = grow(p->st, l->v, l->n, sizeof(*l->v));
	if (!nv)
		return oom(p);
	l->v = nv;
	if (!(nv[l->n].key = sdup(p->st, key)))
		return oom(p);
	nv[l->n++].value = v;
	return 0;
}

/* A mapping of strings to strings (numbers and booleans as written; null = ""). */
static int get_map(struct parse *p, const yaml_node_t *n, const char *what, struct ir_kvlist *l)
{
	struct pairs ps;
	int rc = mapping(p, n, what, &ps);
	for (size_t i = 0; !rc && i < ps.n; i++) {
		const char *v = is_null(ps.v[i]) ? "" : scalar(ps.v[i]);
		if (!v)
			rc = perr(p, ps.v[i], "%s: the value of \"%s\" must be a string", what,
				  scalar(ps.k[i]));
		else
			rc = kv_set(p, l, scalar(ps.k[i]), v);
	}
	pairs_free(&ps);
	return rc;
}

static int get_list(struct parse *p, const yaml_node_t *n, const char *what, struct ir_strlist *l)
{
	if (is_null(n))
		return 0;
	if (n->type != YAML_SEQUENCE_NODE)
		return perr(p, n, "%s must be a list", what);
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		const yaml_node_t *e = node(p, *it);
		const char *s = scalar(e);
		if (!s || is_null(e))
			return perr(p, e, "%s: each item must be a string", what);
		char **nv = grow(p->st, l->v, l->n, sizeof(*l->v));
		if (!nv)
			return oom(p);
		l->v = nv;
		if (!(nv[l->n] = sdup(p->st, s)))
			return oom(p);
		l->n++;
	}
	return 0;
}

/* ---- files ---- */

static int read_all(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		if (n + 1 >= cap) {
			if (cap > STACK_MAX) {
				free(buf);
				fclose(f);
				snprintf(err, errlen, "%s: larger than %u bytes", path, STACK_MAX);
				return -EFBIG;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		size_t r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
		if (r == 0)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	if (bad) {
		free(buf);
		snprintf(err, errlen, "%s: read error", path);
		return -EIO;
	}
	buf[n] = '\0';
	*text = buf;
	*len = n;
	return 0;
}

/* @rel against @dir (absolute @rel unchanged) into @out. */
static void join_path(char *out, size_t cap, const char *dir, const char *rel)
{
	while (rel[0] == '.' && rel[1] == '/')
		for (rel += 2; *rel == '/'; rel++)
			;
	if (rel[0] == '/')
		snprintf(out, cap, "%s", rel);
	else
		ir_pathf(out, cap, "%s/%s", dir, *rel ? rel : ".");
}

/* Load the YAML text @text (substituted) into @doc; libyaml's error with
 * its line and column into @p's message. */
static int load_doc(struct parse *p, const char *text, size_t len, yaml_document_t *doc)
{
	char serr[256];
	char *sub = ir_stack_envsubst(text, len, serr, sizeof(serr));
	if (!sub) {
		snprintf(p->err, p->errlen, "%s: %s", p->file, serr);
		return -EINVAL;
	}
	yaml_parser_t yp;
	if (!yaml_parser_initialize(&yp)) {
		free(sub);
		return oom(p);
	}
	yaml_parser_set_input_string(&yp, (const unsigned char *)sub, strlen(sub));
	int rc = 0;
	if (!yaml_parser_load(&yp, doc)) {
		if (yp.error == YAML_MEMORY_ERROR)
			rc = oom(p);
		else {
			int off = snprintf(p->err, p->errlen, "%s:%zu:%zu: bad YAML: %s", p->file,
					   yp.problem_mark.line + 1, yp.problem_mark.column + 1,
					   yp.problem ? yp.problem : "syntax error");
			if (yp.context && off > 0 && (size_t)off < p->errlen)
				snprintf(p->err + off, p->errlen - (size_t)off, " (%s at line %zu)",
					 yp.context, yp.context_mark.line + 1);
			rc = -EINVAL;
		}
	}
	yaml_parser_delete(&yp);
	free(sub);
	return rc;
}

/* environment_file: YAML files, each with an "environment:" mapping. */
static int env_file(struct parse *p, struct ir_stack_fn *fn, const char *rel)
{
	char path[PATH_MAX], *text;
	size_t len;
	join_path(path, sizeof(path), p->st->dir, rel);
	char rerr[PATH_MAX + 64];
	int rc = read_all(path, &text, &len, rerr, sizeof(rerr));
	if (rc) {
		snprintf(p->err, p->errlen, "function \"%s\": environment_file %s", fn->name, rerr);
		return rc;
	}
	struct parse sub = {.st = p->st, .file = rel, .err = p->err, .errlen = p->errlen};
	yaml_document_t doc;
	sub.doc = &doc;
	rc = load_doc(&sub, text, len, &doc);
	free(text);
	if (rc)
		return rc;
	const yaml_node_t *root = yaml_document_get_root_node(&doc);
	struct pairs ps = {0};
	if (root && (rc = mapping(&sub, root, "an environment file", &ps)) == 0) {
		const yaml_node_t *e = pairs_get(&ps, "environment");
		if (!e)
			rc = perr(&sub, root, "no \"environment:\" mapping");
		else
			rc = get_map(&sub, e, "environment", &fn->environment);
	}
	pairs_free(&ps);
	yaml_document_delete(&doc);
	return rc;
}

/* ---- the schema ---- */

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
			return false;
	return true;
}

static int fn_lang(struct parse *p, struct ir_stack_fn *fn, const yaml_node_t *at)
{
	static const struct {
		const char *name;
		enum ir_stack_lang lang;
	} langs[] = {{"c-cc", IR_LANG_CC}, {"c-func", IR_LANG_FUNC}, {"c-entry", IR_LANG_ENTRY}};
	if (!fn->lang_name)
		return perr(p, at, "function \"%s\": no lang (iroute runs c-cc, c-func, c-entry)",
			    fn->name);
	for (size_t i = 0; i < sizeof(langs) / sizeof(langs[0]); i++)
		if (strcmp(fn->lang_name, langs[i].name) == 0) {
			fn->lang = langs[i].lang;
			return 0;
		}
	return perr(p, at, "function \"%s\": unknown lang \"%s\" (iroute runs c-cc, c-func, c-entry)",
		    fn->name, fn->lang_name);
}

static int fn_handler(struct parse *p, struct ir_stack_fn *fn, const yaml_node_t *at)
{
	if (!fn->handler || !*fn->handler)
		return perr(p, at, "function \"%s\": no handler (the folder with its code)",
			    fn->name);
	char path[PATH_MAX], real[PATH_MAX];
	join_path(path, sizeof(path), p->st->dir, fn->handler);
	struct stat sb;
	if (stat(path, &sb) != 0) {
		int e = errno;
		perr(p, at, "function \"%s\": handler \"%s\": %s: %s", fn->name, fn->handler, path,
		     strerror(e));
		return -e;
	}
	if (!S_ISDIR(sb.st_mode))
		return perr(p, at, "function \"%s\": handler \"%s\": %s is not a directory",
			    fn->name, fn->handler, path);
	if (!realpath(path, real))
		snprintf(real, sizeof(real), "%s", path);
	if (!(fn->handler_path = sdup(p->st, real)))
		return oom(p);
	return 0;
}

static int fn_scale(struct parse *p, struct ir_stack_fn *fn, const yaml_node_t *at)
{
	const char *v = ir_kv_get(&fn->labels, IR_STACK_SCALE_MIN_LABEL);
	if (!v)
		return 0;
	char *end;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (!*v || *end || errno || *v == '-' || n > 1000)
		return perr(p, at, "function \"%s\": label %s: \"%s\" is not a count 0-1000",
			    fn->name, IR_STACK_SCALE_MIN_LABEL, v);
	fn->scale_min = (unsigned)n;
	return 0;
}

static int function(struct parse *p, const yaml_node_t *k, const yaml_node_t *v)
{
	struct ir_stack *st = p->st;
	const char *name = scalar(k);
	if (!name_ok(name))
		return perr(p, k,
			    "function \"%s\": a name is 1-63 lower-case letters, digits and '-', "
			    "starting and ending with a letter or digit",
			    name);
	struct ir_stack_fn *nf = grow(st, st->fns, st->nfns, sizeof(*st->fns));
	if (!nf)
		return oom(p);
	st->fns = nf;
	struct ir_stack_fn *fn = &nf[st->nfns++];
	if (!(fn->name = sdup(st, name)))
		return oom(p);
	fn->line = (int)k->start_mark.line + 1;
	struct pairs ps;
	char what[160];
	snprintf(what, sizeof(what), "function \"%s\"", name);
	int rc = mapping(p, v, what, &ps);
	const yaml_node_t *envn = NULL;
	for (size_t i = 0; !rc && i < ps.n; i++) {
		const char *key = scalar(ps.k[i]);
		const yaml_node_t *val = ps.v[i];
		snprintf(what, sizeof(what), "function \"%s\": %s", name, key);
		if (strcmp(key, "lang") == 0)
			rc = get_str(p, val, what, &fn->lang_name);
		else if (strcmp(key, "handler") == 0)
			rc = get_str(p, val, what, &fn->handler);
		else if (strcmp(key, "image") == 0)
			rc = get_str(p, val, what, &fn->image);
		else if (strcmp(key, "fprocess") == 0)
			rc = get_str(p, val, what, &fn->fprocess);
		else if (strcmp(key, "namespace") == 0)
			rc = get_str(p, val, what, &fn->namespace_);
		else if (strcmp(key, "environment") == 0)
			envn = val; /* after environment_file, whatever the order */
		else if (strcmp(key, "environment_file") == 0)
			rc = get_list(p, val, what, &fn->environment_file);
		else if (strcmp(key, "secrets") == 0)
			rc = get_list(p, val, what, &fn->secrets);
		else if (strcmp(key, "build_options") == 0)
			rc = get_list(p, val, what, &fn->build_options);
		else if (strcmp(key, "constraints") == 0)
			rc = get_list(p, val, what, &fn->constraints);
		else if (strcmp(key, "labels") == 0)
			rc = get_map(p, val, what, &fn->labels);
		else if (strcmp(key, "annotations") == 0)
			rc = get_map(p, val, what, &fn->annotations);
		else if (strcmp(key, "build_args") == 0)
			rc = get_map(p, val, what, &fn->build_args);
		else if (strcmp(key, "limits") == 0)
			rc = get_map(p, val, what, &fn->limits);
		else if (strcmp(key, "requests") == 0)
			rc = get_map(p, val, what, &fn->requests);
		else if (strcmp(key, "skip_build") == 0)
			rc = get_bool(p, val, what, &fn->skip_build);
		else if (strcmp(key, "readonly_root_filesystem") == 0) {
			bool ro;
			rc = get_bool(p, val, what, &ro);
		} else
			rc = warn(p, ps.k[i], "function \"%s\": unknown key \"%s\" (ignored)", name,
				  key);
	}
	pairs_free(&ps);
	for (size_t i = 0; !rc && i < fn->environment_file.n; i++)
		rc = env_file(p, fn, fn->environment_file.v[i]);
	if (!rc && envn) {
		snprintf(what, sizeof(what), "function \"%s\": environment", name);
		rc = get_map(p, envn, what, &fn->environment);
	}
	if (!rc)
		rc = fn_lang(p, fn, k);
	if (!rc)
		rc = fn_handler(p, fn, k);
	if (!rc)
		rc = fn_scale(p, fn, k);
	return rc;
}

static int provider(struct parse *p, const yaml_node_t *v)
{
	struct pairs ps;
	int rc = mapping(p, v, "provider", &ps);
	for (size_t i = 0; !rc && i < ps.n; i++) {
		const char *key = scalar(ps.k[i]);
		if (strcmp(key, "name") == 0)
			rc = get_str(p, ps.v[i], "provider.name", &p->st->provider);
		else if (strcmp(key, "gateway") == 0)
			rc = get_str(p, ps.v[i], "provider.gateway", &p->st->gateway);
		else if (strcmp(key, "network") != 0)
			rc = warn(p, ps.k[i], "provider: unknown key \"%s\" (ignored)", key);
	}
	pairs_free(&ps);
	if (!rc && p->st->provider && strcmp(p->st->provider, "openfaas") != 0)
		rc = perr(p, v,
			  "provider.name: \"%s\" is not supported (faas-cli's only provider is "
			  "\"openfaas\")",
			  p->st->provider);
	return rc;
}

static int configuration(struct parse *p, const yaml_node_t *v)
{
	struct pairs ps;
	int rc = mapping(p, v, "configuration", &ps);
	for (size_t i = 0; !rc && i < ps.n; i++) {
		const char *key = scalar(ps.k[i]);
		if (strcmp(key, "copy") == 0)
			rc = get_list(p, ps.v[i], "configuration.copy", &p->st->copy);
		else if (strcmp(key, "templates") != 0 && strcmp(key, "template_configs") != 0)
			rc = warn(p, ps.k[i], "configuration: unknown key \"%s\" (ignored)", key);
	}
	pairs_free(&ps);
	return rc;
}

/* What iroute needs beyond faas-cli: one coordinator, an entry. */
static int roles(struct parse *p)
{
	const struct ir_stack *st = p->st;
	const struct ir_stack_fn *cc = NULL, *entry = NULL;
	for (size_t i = 0; i < st->nfns; i++) {
		const struct ir_stack_fn *fn = &st->fns[i];
		if (fn->lang == IR_LANG_CC) {
			if (cc) {
				snprintf(p->err, p->errlen,
					 "%s: functions \"%s\" (line %d) and \"%s\" (line %d) both "
					 "have lang c-cc: a stack has exactly one coordinator",
					 p->file, cc->name, cc->line, fn->name, fn->line);
				return -EINVAL;
			}
			cc = fn;
		} else if (fn->lang == IR_LANG_ENTRY && !entry)
			entry = fn;
	}
	if (!cc)
		return perr(p, NULL, "no function has lang c-cc: a stack needs exactly one "
				     "coordinator (its handler folder holds workflow.json)");
	if (!entry)
		return perr(p, NULL, "no function has lang c-entry: a stack needs an entry (the "
				     "workflow's HTTP front door)");
	return 0;
}

static int top(struct parse *p, const yaml_node_t *root)
{
	if (!root)
		return perr(p, NULL, "empty file (want version, provider and functions)");
	if (root->type != YAML_MAPPING_NODE)
		return perr(p, root, "the top level must be a mapping (version, provider, functions)");
	struct pairs ps;
	int rc = mapping(p, root, "the top level", &ps);
	const yaml_node_t *fns = NULL;
	for (size_t i = 0; !rc && i < ps.n; i++) {
		const char *key = scalar(ps.k[i]);
		const yaml_node_t *v = ps.v[i];
		if (strcmp(key, "version") == 0) {
			rc = get_str(p, v, "version", &p->st->version);
			if (!rc && p->st->version && strcmp(p->st->version, "1.0") != 0)
				rc = perr(p, v, "version: \"%s\" is not supported (faas-cli reads 1.0)",
					  p->st->version);
		} else if (strcmp(key, "provider") == 0)
			rc = provider(p, v);
		else if (strcmp(key, "functions") == 0)
			fns = v;
		else if (strcmp(key, "configuration") == 0)
			rc = configuration(p, v);
		else
			rc = warn(p, ps.k[i], "unknown top-level key \"%s\" (ignored)", key);
	}
	pairs_free(&ps);
	if (rc)
		return rc;
	if (!fns || is_null(fns))
		return perr(p, NULL, "no functions");
	rc = mapping(p, fns, "functions", &ps);
	for (size_t i = 0; !rc && i < ps.n; i++)
		rc = function(p, ps.k[i], ps.v[i]);
	pairs_free(&ps);
	return rc ? rc : roles(p);
}

/* Absolute path, directory and stack name of @path. */
static int names(struct parse *p, const char *path)
{
	char abs[PATH_MAX], tmp[PATH_MAX];
	if (path[0] == '/')
		snprintf(abs, sizeof(abs), "%s", path);
	else {
		if (!getcwd(tmp, sizeof(tmp)))
			return perr(p, NULL, "getcwd(): %s", strerror(errno));
		ir_pathf(abs, sizeof(abs), "%s/%s", tmp, path);
	}
	char *real = realpath(abs, NULL); /* NULL for text that is not (yet) a file */
	if (real) {
		snprintf(abs, sizeof(abs), "%s", real);
		free(real);
	}
	char *slash = strrchr(abs, '/');
	const char *base = slash + 1;
	if (!(p->st->path = sdup(p->st, abs)))
		return oom(p);
	*slash = '\0';
	if (!(p->st->dir = sdup(p->st, *abs ? abs : "/")))
		return oom(p);
	snprintf(tmp, sizeof(tmp), "%s", base);
	size_t n = strlen(tmp);
	if (n > 4 && strcmp(tmp + n - 4, ".yml") == 0)
		tmp[n - 4] = '\0';
	else if (n > 5 && strcmp(tmp + n - 5, ".yaml") == 0)
		tmp[n - 5] = '\0';
	if (!(p->st->name = sdup(p->st, tmp)))
		return oom(p);
	return 0;
}

int ir_stack_parse(const char *text, size_t len, const char *path, struct ir_stack *st, char *err,
		   size_t errlen)
{
	memset(st, 0, sizeof(*st));
	struct parse p = {.st = st, .file = path, .err = err, .errlen = errlen};
	int rc = names(&p, path);
	if (rc)
		return rc;
	yaml_document_t doc;
	p.doc = &doc;
	if ((rc = load_doc(&p, text, len, &doc)))
		return rc;
	rc = top(&p, yaml_document_get_root_node(&doc));
	yaml_document_delete(&doc);
	return rc;
}

int ir_stack_load(const char *path, struct ir_stack *st, char *err, size_t errlen)
{
	memset(st, 0, sizeof(*st));
	char *text;
	size_t len;
	int rc = read_all(path, &text, &len, err, errlen);
	if (rc)
		return rc;
	rc = ir_stack_parse(text, len, path, st, err, errlen);
	free(text);
	return rc;
}

const struct ir_stack_fn *ir_stack_cc(const struct ir_stack *st)
{
	for (size_t i = 0; i < st->nfns; i++)
		if (st->fns[i].lang == IR_LANG_CC)
			return &st->fns[i];
	return NULL;
}

const struct ir_stack_fn *ir_stack_find(const struct ir_stack *st, const char *name)
{
	for (size_t i = 0; i < st->nfns; i++)
		if (strcmp(st->fns[i].name, name) == 0)
			return &st->fns[i];
	return NULL;
}

const char *ir_kv_get(const struct ir_kvlist *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].key, key) == 0)
			return l->v[i].value;
	return NULL;
}
