/* httpreq.c - one whole HTTP exchange on a fresh connection (see httpreq.h). */
#include "httpreq.h"
#include "httpc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void ir_http_ans_free(struct ir_http_ans *a)
{
	if (!a)
		return;
	free(a->body);
	for (size_t i = 0; i < a->nheaders; i++) {
		free(a->headers[i].name);
		free(a->headers[i].value);
	}
	free(a->headers);
	memset(a, 0, sizeof(*a));
}

const char *ir_http_ans_header(const struct ir_http_ans *a, const char *name)
{
	for (size_t i = 0; i < a->nheaders; i++)
		if (strcasecmp(a->headers[i].name, name) == 0)
			return a->headers[i].value;
	return NULL;
}

/* A header line supplied by the caller: "Name: value", a token before the
 * colon, no CR or LF anywhere (they would smuggle a header). */
static bool header_ok(const char *h)
{
	const char *c = strchr(h, ':');
	if (!c || c == h || strpbrk(h, "\r\n"))
		return false;
	for (const char *p = h; p < c; p++)
		if (*p <= ' ' || *p == 0x7f || strchr("\"(),/:;<=>?@[\\]{}", *p))
			return false;
	return true;
}

/* Request line and headers into a malloc'd string. */
static char *build_head(const struct ir_http_req *q, const struct ir_url *u, const char *path,
			size_t *len)
{
	size_t cap = 256 + strlen(u->prefix) + strlen(path) + strlen(u->host);
	for (size_t i = 0; q->headers && q->headers[i]; i++)
		cap += strlen(q->headers[i]) + 2;
	char *h = malloc(cap);
	if (!h)
		return NULL;
	/* "/" after a prefix adds nothing: http://gw/function/x posts to /function/x. */
	const char *target = *u->prefix && strcmp(path, "/") == 0 ? "" : path;
	int n = snprintf(h, cap, "%s %s%s HTTP/1.1\r\nHost: %s:%u\r\nUser-Agent: iroute\r\n",
			 q->method, u->prefix, target, u->host, u->port);
	size_t off = (size_t)n;
	bool accept = false;
	for (size_t i = 0; q->headers && q->headers[i]; i++) {
		off += (size_t)snprintf(h + off, cap - off, "%s\r\n", q->headers[i]);
		accept |= strncasecmp(q->headers[i], "Accept:", 7) == 0;
	}
	if (!accept)
		off += (size_t)snprintf(h + off, cap - off, "Accept: */*\r\n");
	off += (size_t)snprintf(h + off, cap - off, "Connection: close\r\n\r\n");
	*len = off;
	return h;
}

static int fail(char *err, size_t errlen, const struct ir_http_req *q, const char *what, int rc)
{
	snprintf(err, errlen, "%s %s%s: %s: %s", q->method, q->url, q->path ? q->path : "", what,
		 rc == -ETIMEDOUT ? "timed out" : strerror(-rc));
	return rc;
}

static int read_answer(struct ir_httpc *c, const struct ir_http_req *q, struct ir_http_ans *a,
		       char *err, size_t errlen)
{
	struct ir_httpc_resp r;
	int rc = ir_httpc_read_head(c, strcmp(q->method, "HEAD") == 0, &r);
	if (rc)
		return fail(err, errlen, q, "reading the answer", rc);
	a->status = r.status;
	a->headers = calloc(r.nheaders ? r.nheaders : 1, sizeof(*a->headers));
	if (!a->headers)
		return -ENOMEM;
	for (size_t i = 0; i < r.nheaders; i++) {
		a->headers[i].name = strdup(r.headers[i].name);
		a->headers[i].value = strdup(r.headers[i].value);
		a->nheaders++;
		if (!a->headers[i].name || !a->headers[i].value)
			return -ENOMEM;
	}
	size_t cap = r.content_length > 0 && r.content_length < (int64_t)IR_HTTP_BODY_MAX
			 ? (size_t)r.content_length + 1
			 : 4096;
	a->body = malloc(cap);
	if (!a->body)
		return -ENOMEM;
	for (;;) {
		if (a->len + 1 >= cap) {
			if (cap > IR_HTTP_BODY_MAX) {
				snprintf(err, errlen, "%s %s: the answer is over %u bytes", q->method,
					 q->url, IR_HTTP_BODY_MAX);
				return -E2BIG;
			}
			char *nb = realloc(a->body, cap * 2);
			if (!nb)
				return -ENOMEM;
			a->body = nb;
			cap *= 2;
		}
		ssize_t n = ir_httpc_read_body(c, a->body + a->len, cap - a->len - 1);
		if (n < 0)
			return fail(err, errlen, q, "reading the body", (int)n);
		if (n == 0)
			break;
		a->len += (size_t)n;
	}
	a->body[a->len] = '\0';
	return 0;
}

int ir_http_do(const struct ir_http_req *q, struct ir_http_ans *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	const char *path = q->path ? q->path : "/";
	if (*path != '/' || strpbrk(path, " \r\n\t")) {
		snprintf(err, errlen, "bad request path \"%s\"", path);
		return -EINVAL;
	}
	for (size_t i = 0; q->headers && q->headers[i]; i++)
		if (!header_ok(q->headers[i])) {
			snprintf(err, errlen, "bad header \"%s\" (want \"Name: value\")",
				 q->headers[i]);
			return -EINVAL;
		}
	struct ir_url u;
	int rc = ir_url_parse(q->url, &u, err, errlen);
	if (rc)
		return rc;
	uint64_t deadline = q->timeout_ms ? now_ns() + q->timeout_ms * 1000000ull : 0;
	int fd = ir_httpc_connect(&u, deadline);
	if (fd < 0)
		return fail(err, errlen, q, "connect", fd);
	struct ir_httpc *c;
	if ((rc = ir_httpc_open(&c, fd)))
		return fail(err, errlen, q, "connect", rc);
	ir_httpc_set_deadline(c, deadline);
	size_t hlen;
	char *head = build_head(q, &u, path, &hlen);
	if (!head) {
		ir_httpc_close(c);
		return -ENOMEM;
	}
	rc = ir_httpc_send_head(c, head, hlen, q->has_body ? (int64_t)q->len : IR_HTTPC_NO_BODY);
	free(head);
	if (!rc && q->has_body && q->len)
		rc = ir_httpc_send_body(c, q->body, q->len);
	if (!rc)
		rc = ir_httpc_end_body(c);
	if (rc) {
		ir_httpc_close(c);
		return fail(err, errlen, q, "sending the request", rc);
	}
	rc = read_answer(c, q, a, err, errlen);
	ir_httpc_close(c);
	if (rc == -ENOMEM)
		snprintf(err, errlen, "%s %s: out of memory", q->method, q->url);
	return rc;
}
