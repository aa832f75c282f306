/* cctable.c - a function's local routing table as JSON (see cctable.h).
 * Plain string concatenation: the instance arrays are already JSON, and
 * the coordinator builds one table per function per epoch for up to
 * thousands of instances, so parsing them back into a tree would cost more
 * than everything else an epoch does. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cctable.h"

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void put(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void puts_(struct sbuf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* Function names are DNS labels (validated): no escaping needed. */
static void route(struct sbuf *b, bool *first, const char *name, const char *list)
{
	puts_(b, *first ? "\"" : ",\"");
	puts_(b, name);
	puts_(b, "\":");
	puts_(b, list ? list : "[]");
	*first = false;
}

char *ir_cc_table_json(const struct ir_workflow *wf, int fn, uint64_t epoch,
		       const char *const *fnlists, const char *entries, size_t *len)
{
	struct sbuf b = {0};
	char head[160];
	snprintf(head, sizeof(head), "{\"epoch\":%llu,\"workflow\":\"", (unsigned long long)epoch);
	puts_(&b, head);
	puts_(&b, wf->name);
	bool first = true;
	if (fn < 0) {
		puts_(&b, "\",\"function\":null,\"role\":\"entry\",\"routes\":{");
		for (size_t i = 0; i < wf->nentry; i++)
			route(&b, &first, wf->fns[wf->entry[i]].name, fnlists[wf->entry[i]]);
		puts_(&b, "}}");
	} else {
		const struct ir_wf_fn *f = &wf->fns[fn];
		puts_(&b, "\",\"function\":\"");
		puts_(&b, f->name);
		puts_(&b, "\",\"role\":\"function\",\"routes\":{");
		for (size_t i = 0; i < f->nnext; i++)
			route(&b, &first, wf->fns[f->next[i]].name, fnlists[f->next[i]]);
		if (f->nprev > 1)
			route(&b, &first, f->name, fnlists[fn]);
		puts_(&b, "}");
		/* Every function: a sink sends its result, any function an
		 * error, straight back to the entry that took the request. */
		puts_(&b, ",\"entries\":");
		puts_(&b, entries ? entries : "[]");
		puts_(&b, "}");
	}
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	if (len)
		*len = b.len;
	return b.p;
}
