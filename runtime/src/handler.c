/* handler.c - struct ir_out, the output object of the handler ABI (see
 * iroute/handler.h for the contract).
 *
 * One growable buffer for the common output and one per successor that
 * got a per-edge write, allocated on first use (most functions send the
 * same bytes everywhere and never pay for the edges).  Buffers grow by
 * doubling up to the limit, so a handler writing in small pieces costs
 * amortised O(1) per byte.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iroute/handler.h"

struct obuf {
	char *p;
	size_t len, cap;
	size_t reserved; /* by the last ir_out_reserve(), until its commit */
	bool used;	 /* a per-edge output that got a write (even of 0 bytes) */
};

struct ir_out {
	const char *const *next;
	size_t nnext, max;
	struct obuf common;
	struct obuf *edge; /* nnext of them */
	bool emitted;
	int status;
	char msg[512];
	ir_out_emit_fn emit;
	void *arg;
};

struct ir_out *ir_out_new(const char *const *next, size_t nnext, size_t max, ir_out_emit_fn emit,
			  void *arg)
{
	if (nnext > IR_OUT_MAX_EDGES)
		return NULL;
	struct ir_out *o = calloc(1, sizeof(*o));
	if (!o || (nnext && !(o->edge = calloc(nnext, sizeof(*o->edge))))) {
		free(o);
		return NULL;
	}
	o->next = next;
	o->nnext = nnext;
	o->max = max ? max : IR_OUT_DEFAULT_MAX;
	o->emit = emit;
	o->arg = arg;
	return o;
}

void ir_out_free(struct ir_out *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->nnext; i++)
		free(o->edge[i].p);
	free(o->edge);
	free(o->common.p);
	free(o);
}

/* The buffer for @next (NULL: the common one), or NULL when @next is not
 * a successor. */
static struct obuf *buf_of(struct ir_out *o, const char *next)
{
	if (!next)
		return &o->common;
	for (size_t i = 0; i < o->nnext; i++)
		if (strcmp(o->next[i], next) == 0)
			return &o->edge[i];
	return NULL;
}

/* Room for @len more bytes in @b: 0, -E2BIG over the limit, -ENOMEM. */
static int make_room(struct ir_out *o, struct obuf *b, size_t len)
{
	if (len > o->max || b->len > o->max - len)
		return -E2BIG;
	if (b->len + len <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + len)
		cap = cap > o->max / 2 ? o->max : cap * 2;
	char *p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int check(struct ir_out *o, const char *next, struct obuf **b)
{
	if (o->emitted)
		return -EALREADY;
	if (!(*b = buf_of(o, next)))
		return -ENOENT;
	return 0;
}

static int append(struct ir_out *o, const char *next, const void *p, size_t len)
{
	struct obuf *b;
	int rc = check(o, next, &b);
	if (rc == 0 && (rc = make_room(o, b, len)) == 0) {
		if (len)
			memcpy(b->p + b->len, p, len);
		b->len += len;
		b->used = true;
	}
	return rc;
}

int ir_out_write(struct ir_out *o, const void *p, size_t len)
{
	return append(o, NULL, p, len);
}

int ir_out_write_to(struct ir_out *o, const char *next, const void *p, size_t len)
{
	return next ? append(o, next, p, len) : -EINVAL;
}

void *ir_out_reserve(struct ir_out *o, const char *next, size_t len)
{
	struct obuf *b;
	if (check(o, next, &b) != 0 || make_room(o, b, len ? len : 1) != 0)
		return NULL;
	b->reserved = len;
	return b->p + b->len;
}

int ir_out_commit(struct ir_out *o, const char *next, size_t used)
{
	struct obuf *b;
	int rc = check(o, next, &b);
	if (rc)
		return rc;
	if (used > b->reserved)
		return -EINVAL; /* more than was reserved */
	b->len += used;
	b->reserved = 0;
	b->used = true;
	return 0;
}

int ir_out_emit(struct ir_out *o)
{
	if (o->emitted)
		return -EALREADY;
	o->emitted = true;
	return o->emit ? o->emit(o->arg, o) : 0;
}

int ir_out_error(struct ir_out *o, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o->msg, sizeof(o->msg), fmt, ap);
	va_end(ap);
	o->status = status >= 400 && status <= 599 ? status : 500;
	return -1;
}

void ir_out_get(const struct ir_out *o, size_t i, const void **p, size_t *len)
{
	const struct obuf *b = i < o->nnext && o->edge[i].used ? &o->edge[i] : &o->common;
	*p = b->p ? b->p : "";
	*len = b->len;
}

int ir_out_status(const struct ir_out *o, const char **msg)
{
	if (msg)
		*msg = o->msg;
	return o->status;
}

bool ir_out_emitted(const struct ir_out *o)
{
	return o->emitted;
}
