/* httpc.h - a small blocking HTTP/1.1 client for one connection: the
 * upstream side of the watchdog's http mode (wdproxy.c).
 *
 * Why this design: the watchdog gives each client connection its own
 * thread (libmicrohttpd thread-per-connection), so the proxy can talk to
 * the upstream with plain blocking calls on that thread, each bounded by
 * the request's deadline (a deadline check before every read and write,
 * and poll() until the deadline when one would block).  What it must get
 * right is framing, because a framing mistake on a kept-alive connection
 * corrupts the next exchange: requests are framed by the caller's choice
 * (Content-Length, chunked or none), responses per RFC 9112 §6.3
 * (HEAD/1xx/204/304 have no body; chunked; one Content-Length, or several
 * equal ones; else until close).  The response head is parsed in place in
 * the connection's buffer, with no allocation per exchange, and a body read
 * returns whatever has arrived rather than waiting to fill the buffer, so
 * a proxy forwards server-sent events as they are written.  Rejected: libcurl
 * (its easy interface wants the whole exchange under its control, so the
 * request body could not be fed piece by piece from MHD's upload callback,
 * and it is one more runtime dependency in every image); a non-blocking
 * state machine on the event loop (MHD already gives us a thread per
 * connection, and blocking code is a third the size).
 *
 * The exchange on one connection, in order:
 *     send_head, [send_body...], end_body     (the request)
 *     read_head                               (1xx skipped)
 *     read_body... until it returns 0         (nothing when content_length 0)
 * then, when keep_alive, the next request on the same connection.
 *
 * The buffer: IR_HTTPC_MAX_HEAD + 16 KiB per connection.  The response head
 * is moved to its start and stays there, NUL-terminated in place, until the
 * next read_head; body bytes pass through the 16 KiB behind it, or go
 * straight from the socket into the caller's buffer when nothing is
 * buffered (one recv() per read_body for a large length-delimited body).
 *
 * Errors are negative errno values: -ETIMEDOUT once the deadline passed,
 * -ECONNRESET when the peer closed early, -EPROTO for a malformed message,
 * -E2BIG for a head over IR_HTTPC_MAX_HEAD bytes or IR_HTTPC_MAX_HEADERS
 * headers (or trailers over IR_HTTPC_MAX_HEAD bytes), -EINVAL for a call out
 * of order or a bad argument.  After any error but -EINVAL the connection's
 * state is unknown: close it.
 */
#ifndef IROUTE_HTTPC_H
#define IROUTE_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IR_HTTPC_MAX_HEAD (64 * 1024) /* a response head, status line to empty line */
#define IR_HTTPC_MAX_HEADERS 128
#define IR_HTTPC_MAX_LINE 1024 /* a chunk-size or trailer line, CRLF included */
#define IR_HTTPC_CHUNKED (-1)
#define IR_HTTPC_NO_BODY (-2)

/* "http://host[:port][/prefix]": port 80 by default, prefix without a
 * trailing '/' ("" when none). */
struct ir_url {
	char host[256]; /* a name, an IPv4 address or an IPv6 address without brackets */
	uint16_t port;
	char prefix[1024];
};

/* Parse @s into @u.  Only http (no https, userinfo, query or fragment);
 * the scheme is case-insensitive; host characters are letters, digits,
 * '-', '.', '_' (or hex digits, ':' and '.' between brackets); the path
 * may not hold spaces or control characters.  Returns 0, or -EINVAL with
 * a message naming the URL and what is wrong in @err (may be NULL), e.g.
 * "\"http://x:0\": bad port (want 1-65535)". */
int ir_url_parse(const char *s, struct ir_url *u, char *err, size_t errlen);

/* A connected blocking TCP socket (TCP_NODELAY, close-on-exec) to @u's
 * host and port: getaddrinfo(), then each address in turn, connecting
 * without blocking and waiting in poll() until @deadline_ns (CLOCK_MONOTONIC
 * ns; 0 = none).  Returns the fd (the caller owns it) or -errno: the error
 * of the last address tried (-ECONNREFUSED, ...), -ETIMEDOUT once the
 * deadline passed (no further address is tried), -EHOSTUNREACH when the
 * name does not resolve.  Name resolution itself is not bounded by the
 * deadline (the upstream is on loopback). */
int ir_httpc_connect(const struct ir_url *u, uint64_t deadline_ns);

struct ir_httpc;

/* Wrap @fd, a connected stream socket, blocking or not (taken: closed by
 * ir_httpc_close(), or here on failure).  0 or -ENOMEM. */
int ir_httpc_open(struct ir_httpc **c, int fd);
/* Close the fd and free everything, headers included.  NULL is fine. */
void ir_httpc_close(struct ir_httpc *c);
/* The socket (borrowed: still owned by @c). */
int ir_httpc_fd(const struct ir_httpc *c);
/* From now on connection calls below (sending, read_head, read_body of an
 * unfinished body) fail with -ETIMEDOUT once @deadline_ns (CLOCK_MONOTONIC
 * ns) has passed, also when they would not have to wait (a peer that keeps
 * sending is cut off too); 0 = no deadline.  Replaces the previous one. */
void ir_httpc_set_deadline(struct ir_httpc *c, uint64_t deadline_ns);
/* An idle kept-alive connection is still usable: the last body was read to
 * its end, nothing unread is buffered or waiting on the socket, no EOF.
 * Does not block. */
bool ir_httpc_idle_ok(const struct ir_httpc *c);

/* Send a request head.  @head (borrowed for the call) is the request line
 * and headers ending with the empty line ("\r\n\r\n"), without a framing
 * header (Content-Length, Transfer-Encoding), which is added here from
 * @body_len: >= 0 "Content-Length: N", IR_HTTPC_CHUNKED "Transfer-Encoding:
 * chunked", IR_HTTPC_NO_BODY none.  One writev() unless the socket is full.
 * 0, -EINVAL (no "\r\n\r\n" at the end, @body_len < -2) or -errno. */
int ir_httpc_send_head(struct ir_httpc *c, const char *head, size_t len, int64_t body_len);
/* Body bytes (borrowed for the call), chunk-encoded when chunked ("<hex
 * len>\r\n" data "\r\n", one writev()); @len 0 sends nothing.  -EPROTO
 * beyond the announced length or when no body was announced. */
int ir_httpc_send_body(struct ir_httpc *c, const void *p, size_t len);
/* End of the request body: the last chunk ("0\r\n\r\n") when chunked, else
 * only a check that the announced length was sent (-EPROTO if fewer bytes
 * were).  A second call is a no-op. */
int ir_httpc_end_body(struct ir_httpc *c);

struct ir_http_header {
	const char *name, *value; /* value without leading and trailing blanks */
};

struct ir_httpc_resp {
	int status;			/* 100-599 */
	const char *reason;		/* "" when none */
	struct ir_http_header *headers; /* in arrival order; all of this is valid
					   until the next read_head or close */
	size_t nheaders;
	int64_t content_length; /* 0 = no body (HEAD, 1xx, 204, 304, Content-Length: 0),
				   > 0 the length, -1 chunked or until close */
	bool chunked, until_close, keep_alive;
};

/* Read the next response head into @r.  1xx interim responses (100
 * Continue, 103 Early Hints) are skipped; 101 is returned, with no body and
 * keep_alive false.  @head_request: the request was HEAD (no body follows
 * whatever the headers say).  Accepts HTTP/1.0 and 1.1, CRLF line ends;
 * rejects obs-fold, blanks before the colon, control characters in values
 * and Content-Length other than digits or with unequal copies (-EPROTO).
 * Framing per RFC 9112 §6.3 (see struct ir_httpc_resp); keep_alive is true
 * for HTTP/1.1 without "Connection: close" and HTTP/1.0 with "Connection:
 * keep-alive", and false for an until-close body, for Transfer-Encoding
 * together with Content-Length and for Transfer-Encoding in HTTP/1.0.
 * Returns 0, -ECONNRESET when the peer closed before a complete head,
 * -EINVAL while a body is still unread, or another -errno. */
int ir_httpc_read_head(struct ir_httpc *c, bool head_request, struct ir_httpc_resp *r);
/* First value of header @name (case-insensitive) or NULL. */
const char *ir_httpc_header(const struct ir_httpc_resp *r, const char *name);
/* Body bytes into @buf (@max > 0, else -EINVAL) as soon as any are there
 * (> 0; it never waits to fill @max), 0 at the end of the body (the
 * connection may then carry the next request if keep_alive; again 0 on
 * further calls), or -errno: -ECONNRESET when the peer closed before the
 * announced end, -EPROTO for bad chunk framing or a chunk-size line over
 * IR_HTTPC_MAX_LINE.  Chunked bodies are decoded, chunk extensions ignored,
 * trailers read and dropped.  No allocation. */
ssize_t ir_httpc_read_body(struct ir_httpc *c, void *buf, size_t max);

/* The response body has been read to its end (or there was none): the
 * connection can carry the next request when keep_alive.  Lets a caller
 * that knows the length stop without one more read_body() call (a chunked
 * body is done only once read_body() has returned 0). */
bool ir_httpc_body_done(const struct ir_httpc *c);

#endif
