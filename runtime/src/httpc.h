/* httpc.h - a small blocking HTTP/1.1 client for one connection: the
 * upstream side of the watchdog's http mode (wdproxy.c).
 *
 * Why this design: the watchdog gives each client connection its own
 * thread (libmicrohttpd thread-per-connection), so the proxy can talk to
 * the upstream with plain blocking calls on that thread, each bounded by
 * the request's deadline (poll() before every read and write).  What it
 * must get right is framing, because a framing mistake on a kept-alive
 * connection corrupts the next exchange: requests are framed by the caller's
 * choice (Content-Length, chunked or none), responses per RFC 9112 §6.3
 * (HEAD/1xx/204/304 have no body; chunked; one Content-Length, or several
 * equal ones; else until close).  The response head is parsed in place in
 * the connection's buffer, with no allocation per exchange, and a body read
 * returns whatever has arrived rather than waiting to fill the buffer, so
 * a proxy forwards server-sent events as they are written.  Rejected: libcurl
 * (its easy interface wants the whole exchange under its control, so the
 * request body could not be fed piece by piece from MHD's upload callback,
 * and it is one more runtime dependency in every image).
 *
 * Errors are negative errno values: -ETIMEDOUT once the deadline passed,
 * -ECONNRESET when the peer closed early, -EPROTO for a malformed message,
 * -E2BIG for a head over IR_HTTPC_MAX_HEAD bytes or IR_HTTPC_MAX_HEADERS
 * headers.  After any error the connection must be closed.
 */
#ifndef IROUTE_HTTPC_H
#define IROUTE_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IR_HTTPC_MAX_HEAD (64 * 1024)
#define IR_HTTPC_MAX_HEADERS 128
#define IR_HTTPC_CHUNKED (-1)
#define IR_HTTPC_NO_BODY (-2)

/* "http://host[:port][/prefix]": port 80 by default, prefix without a
 * trailing '/' ("" when none). */
struct ir_url {
	char host[256]; /* name or address, without brackets */
	uint16_t port;
	char prefix[1024];
};

/* Only http (no https, userinfo, query or fragment).  Returns 0, or
 * -EINVAL with a message in @err (may be NULL). */
int ir_url_parse(const char *s, struct ir_url *u, char *err, size_t errlen);

/* A connected blocking TCP socket (TCP_NODELAY, close-on-exec): each
 * address of @u's host is tried until @deadline_ns (CLOCK_MONOTONIC; 0 =
 * none).  Returns the fd or -errno. */
int ir_httpc_connect(const struct ir_url *u, uint64_t deadline_ns);

struct ir_httpc;

/* Wrap @fd (taken: closed here on failure).  0 or -ENOMEM. */
int ir_httpc_open(struct ir_httpc **c, int fd);
/* Close the fd and free.  NULL is fine. */
void ir_httpc_close(struct ir_httpc *c);
int ir_httpc_fd(const struct ir_httpc *c);
/* Every blocking call below fails with -ETIMEDOUT once @deadline_ns
 * (CLOCK_MONOTONIC) has passed; 0 = no deadline. */
void ir_httpc_set_deadline(struct ir_httpc *c, uint64_t deadline_ns);
/* An idle kept-alive connection is usable: nothing to read, no EOF. */
bool ir_httpc_idle_ok(const struct ir_httpc *c);

/* Send a request head.  @head is the request line and headers ending with
 * the empty line ("\r\n\r\n"), without the framing header, which is added
 * here from @body_len: >= 0 Content-Length, IR_HTTPC_CHUNKED
 * Transfer-Encoding: chunked, IR_HTTPC_NO_BODY none.  One writev(). */
int ir_httpc_send_head(struct ir_httpc *c, const char *head, size_t len, int64_t body_len);
/* Body bytes (chunk-encoded when chunked; @len 0 sends nothing).  -EPROTO
 * beyond the announced length. */
int ir_httpc_send_body(struct ir_httpc *c, const void *p, size_t len);
/* End of the body: the last chunk when chunked, else a check that the
 * announced length was sent (-EPROTO). */
int ir_httpc_end_body(struct ir_httpc *c);

struct ir_http_header {
	const char *name, *value;
};

struct ir_httpc_resp {
	int status;
	const char *reason;
	struct ir_http_header *headers; /* valid until the next read_head, read_body or close */
	size_t nheaders;
	int64_t content_length; /* 0 = no body, > 0 length, -1 chunked or until close */
	bool chunked, until_close, keep_alive;
};

/* Read the response head (1xx interim responses skipped).  @head_request:
 * the request was HEAD (no body follows whatever the headers say). */
int ir_httpc_read_head(struct ir_httpc *c, bool head_request, struct ir_httpc_resp *r);
/* First value of header @name (case-insensitive) or NULL. */
const char *ir_httpc_header(const struct ir_httpc_resp *r, const char *name);
/* Body bytes as soon as any are there (> 0), 0 at the end of the body
 * (the connection may then carry the next request if keep_alive), or
 * -errno.  Chunked bodies are decoded, trailers dropped. */
ssize_t ir_httpc_read_body(struct ir_httpc *c, void *buf, size_t max);

/* The response body has been read to its end (or there was none): the
 * connection can carry the next request when keep_alive.  Lets a caller
 * that knows the length stop without one more read_body() call. */
bool ir_httpc_body_done(const struct ir_httpc *c);

#endif
