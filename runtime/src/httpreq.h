/* httpreq.h - one whole HTTP/1.1 exchange on a fresh connection, for the
 * iroute command-line tool (invoke, bench, routes, health probes).
 *
 * Why this design: the tool makes a handful of requests, each to a
 * different process, so there is nothing to keep alive; one call that
 * connects, sends, reads the whole answer into memory and closes is all it
 * needs.  It is built on the project's client (httpc.h) rather than libcurl,
 * so the tool links nothing the runtime does not.
 */
#ifndef IROUTE_HTTPREQ_H
#define IROUTE_HTTPREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IR_HTTP_BODY_MAX (1024u * 1024u * 1024u) /* an answer over 1 GiB is refused */

struct ir_http_req {
	const char *method; /* "GET", "POST" */
	const char *url;    /* "http://host:port[/prefix]" */
	const char *path;   /* "/bench?n=10" appended to the prefix; NULL = "/" */
	const char *const *headers; /* "Name: value" lines, NULL-terminated; may be NULL */
	const void *body;	    /* sent with Content-Length when has_body */
	size_t len;
	bool has_body;
	uint64_t timeout_ms; /* the whole exchange, connect included; 0 = none */
};

struct ir_http_field {
	char *name, *value;
};

struct ir_http_ans {
	int status;
	char *body; /* NUL-terminated (not counted in len) */
	size_t len;
	struct ir_http_field *headers; /* in arrival order */
	size_t nheaders;
};

/* Run the exchange @q and fill @a (the caller frees it with
 * ir_http_ans_free(), also after a failure).  Returns 0 whatever the status,
 * or -errno with a message naming the URL in @err: -EINVAL for a bad URL or
 * header line, -ECONNREFUSED, -ETIMEDOUT, -EPROTO, -E2BIG (an answer over
 * IR_HTTP_BODY_MAX)... */
int ir_http_do(const struct ir_http_req *q, struct ir_http_ans *a, char *err, size_t errlen);

/* First value of header @name (case-insensitive) or NULL. */
const char *ir_http_ans_header(const struct ir_http_ans *a, const char *name);

void ir_http_ans_free(struct ir_http_ans *a);

#endif
