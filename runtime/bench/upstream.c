/* upstream.c (bench) - a small HTTP/1.1 server: the fixed-response upstream
 * of the watchdog benchmark, and a real upstream for the http-mode tests.
 *
 *   iroute-bench-upstream [--port N] [--host ADDR]
 *   iroute-bench-upstream --probe-health URL [--timeout-ms N] [--since T]
 *
 * --port beats the environment variable `port` (which a watchdog passes on
 * to its fprocess), which beats 8082; port 0 = kernel-chosen.  --host is a
 * numeric IPv4 or IPv6 address (127.0.0.1).  On success the server prints
 * one line, "listening on HOST:PORT", to stderr and nothing else; SIGTERM
 * or SIGINT ends it at once with status 0.
 *
 * Endpoints (path = request target before '?'; HEAD gets the headers only):
 *   /, anything unlisted  200 text/plain "OK\n"
 *   /echo                 200, the request body streamed back as it arrives:
 *                         Content-Length framing when the request had one,
 *                         chunked when it was chunked; Content-Type copied
 *   /headers              200 text/plain: "METHOD TARGET\n", then every
 *                         request header "Name: value\n" in arrival order
 *   /status/NNN           status NNN (200-599), body "status NNN\n" (none
 *                         for 204 and 304)
 *   /sleep?ms=N           sleeps N ms, then 200 "slept\n"
 *   /sse?n=N&ms=M         200 text/event-stream, chunked: events "data: i\n\n"
 *                         for i = 0 .. N-1, one chunk each, M ms apart
 *                         (defaults n=5, ms=100)
 *   /ndjson?n=N&ms=M      the same as application/x-ndjson, lines {"i":i}\n
 *   /big?bytes=N          200, N bytes of 'a'..'z' repeating (default 1 MiB)
 *   /exit                 200 "bye\n", then the process exits with status 3
 * A bad query value is 400.  Requests: request line + headers up to 64 KiB
 * (else 431 and close), Content-Length or chunked bodies (read and dropped
 * unless echoed), Expect: 100-continue answered, keep-alive by default on
 * HTTP/1.1 and with "Connection: keep-alive" on 1.0, "Connection: close"
 * honoured.  Bytes after a request are kept for the next one, so pipelined
 * requests work too (they are answered one by one).
 *
 * --probe-health polls URL (http://HOST:PORT/PATH) with raw sockets every
 * 0.5 ms until it answers 200, then prints the milliseconds elapsed
 * ("12.345") on stdout and exits 0; after --timeout-ms (5000) it prints the
 * last failure to stderr and exits 1.  The clock starts at --since, a
 * CLOCK_REALTIME timestamp in bash's $EPOCHREALTIME format (taken by the
 * script right before it starts the watchdog, so fork+exec are counted),
 * or when the probe itself starts.  curl in a shell loop costs a few ms a
 * try; this costs ~50 us.
 *
 * Why this design: one blocking thread per connection.  Each keep-alive
 * request costs one read() and one sendmsg() whichever way the server is
 * built, and with at most a few dozen connections (wrk at 64) the threads
 * are cheap; blocking code keeps the endpoints straight-line (sleeping
 * between /sse events, echoing a chunked body while it arrives) where an
 * epoll server would need a state machine per endpoint and timers.  The
 * rejected epoll loop would win only with thousands of connections, where
 * one wake-up can serve many ready sockets.  A connection's buffer keeps
 * the request head intact while the body is read behind it, so handlers
 * use header pointers into it without copies.
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "sock.h"

#define PROG "iroute-bench-upstream"
#define DEFAULT_PORT 8082
#define HEAD_MAX (64u << 10)		 /* request line + headers, incl. the empty line */
#define BUF_CAP (HEAD_MAX + (64u << 10)) /* the head, then room for the body behind it */
#define LINE_MAX_BODY 4096		 /* a chunk-size line or a trailer line */
#define MAX_HEADERS 2048
#define PATTERN_LEN (64u << 10)
#define THREAD_STACK (256u << 10)

struct header {
	const char *name, *value;
};

enum body_kind { BODY_NONE, BODY_LENGTH, BODY_CHUNKED };
enum chunk_state { CH_SIZE, CH_DATA, CH_DATA_END, CH_DONE };

/* One client connection.  During a request buf[0..base) holds the head
 * (NUL-terminated pieces the header array points into) and unread bytes
 * are buf[rpos..wpos), with base <= rpos <= wpos <= cap. */
struct conn {
	int fd;
	char *buf;
	size_t cap, base, rpos, wpos;
	enum body_kind body;
	uint64_t left; /* BODY_LENGTH: bytes to go; chunked: bytes left in the chunk */
	enum chunk_state chunk;
};

struct req {
	const char *method, *target, *path, *query;
	size_t path_len;
	bool http11, head, keep_alive, expect_continue;
	const char *content_type;
	struct header *hdr;
	size_t nhdr;
	uint64_t content_length;
};

static char pattern[PATTERN_LEN + 26];

/* ---- sending ---- */

/* All of iov[0..n) (modified on partial writes); MSG_NOSIGNAL so that a
 * client gone away is an error return, never SIGPIPE. */
static int send_iov(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		ir_iov_consume(&iov, &n, (size_t)w);
	}
	return 0;
}

static int send_buf(int fd, const void *p, size_t len)
{
	struct iovec iov = {.iov_base = (void *)p, .iov_len = len};
	return send_iov(fd, &iov, 1);
}

/* One chunk of a chunked body (len > 0), in one sendmsg(). */
static int send_chunk(int fd, const void *p, size_t len)
{
	char sz[32];
	int k = snprintf(sz, sizeof(sz), "%zx\r\n", len);
	struct iovec iov[3] = {{sz, (size_t)k}, {(void *)p, len}, {"\r\n", 2}};
	return send_iov(fd, iov, 3);
}

static const char *reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 413:
		return "Content Too Large";
	case 417:
		return "Expectation Failed";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Status";
	}
}

/* Framing of a response body. */
enum framing {
	FR_LENGTH, /* Content-Length: clen */
	FR_NONE,   /* no body and no Content-Length (204, 304) */
	FR_STREAM, /* chunked on HTTP/1.1; on 1.0 the body ends with the connection */
};

/* The status line and headers; with body != NULL also that body (clen
 * bytes, left out for HEAD), all in one sendmsg().  A streamed response to
 * an HTTP/1.0 client turns keep-alive off. */
static int send_response(struct conn *c, struct req *r, int status, const char *ctype,
			 enum framing fr, uint64_t clen, const void *body)
{
	char h[512];
	size_t k = 0;
	if (fr == FR_STREAM && !r->http11)
		r->keep_alive = false;
	k += (size_t)snprintf(h + k, sizeof(h) - k, "HTTP/1.1 %d %s\r\n", status, reason(status));
	if (ctype && *ctype && strlen(ctype) < 256)
		k += (size_t)snprintf(h + k, sizeof(h) - k, "Content-Type: %s\r\n", ctype);
	if (fr == FR_LENGTH)
		k += (size_t)snprintf(h + k, sizeof(h) - k, "Content-Length: %llu\r\n",
				      (unsigned long long)clen);
	else if (fr == FR_STREAM && r->http11)
		k += (size_t)snprintf(h + k, sizeof(h) - k, "Transfer-Encoding: chunked\r\n");
	if (!r->keep_alive)
		k += (size_t)snprintf(h + k, sizeof(h) - k, "Connection: close\r\n");
	else if (!r->http11)
		k += (size_t)snprintf(h + k, sizeof(h) - k, "Connection: keep-alive\r\n");
	k += (size_t)snprintf(h + k, sizeof(h) - k, "\r\n");
	struct iovec iov[2] = {{h, k}, {(void *)body, body && !r->head ? (size_t)clen : 0}};
	return send_iov(c->fd, iov, iov[1].iov_len ? 2 : 1);
}

static int send_text(struct conn *c, struct req *r, int status, const char *text)
{
	return send_response(c, r, status, "text/plain", FR_LENGTH, strlen(text), text);
}

/* One piece of a streamed body: a chunk on HTTP/1.1, raw bytes on 1.0. */
static int send_piece(struct conn *c, struct req *r, const void *p, size_t len)
{
	if (r->head || len == 0)
		return 0;
	return r->http11 ? send_chunk(c->fd, p, len) : send_buf(c->fd, p, len);
}

static int send_stream_end(struct conn *c, struct req *r)
{
	if (r->head || !r->http11)
		return 0;
	return send_buf(c->fd, "0\r\n\r\n", 5);
}

/* ---- reading ---- */

/* More bytes into buf[wpos..cap), compacting the body area first when it
 * is full.  >0 bytes read, 0 end of stream, -1 error. */
static ssize_t conn_fill(struct conn *c)
{
	if (c->rpos == c->wpos)
		c->rpos = c->wpos = c->base;
	if (c->wpos == c->cap && c->rpos > c->base) {
		memmove(c->buf + c->base, c->buf + c->rpos, c->wpos - c->rpos);
		c->wpos -= c->rpos - c->base;
		c->rpos = c->base;
	}
	if (c->wpos == c->cap)
		return -1;
	for (;;) {
		ssize_t n = read(c->fd, c->buf + c->wpos, c->cap - c->wpos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0)
			c->wpos += (size_t)n;
		return n;
	}
}

/* The next line of the body area (without CR LF, NUL-terminated in
 * place); NULL at end of stream, on error or when it is over
 * LINE_MAX_BODY bytes. */
static char *conn_line(struct conn *c)
{
	size_t scanned = 0;
	for (;;) {
		char *s = c->buf + c->rpos;
		char *lf = memchr(s + scanned, '\n', c->wpos - c->rpos - scanned);
		if (lf) {
			c->rpos = (size_t)(lf + 1 - c->buf);
			if (lf > s && lf[-1] == '\r')
				lf--;
			*lf = '\0';
			return s;
		}
		scanned = c->wpos - c->rpos;
		if (scanned > LINE_MAX_BODY)
			return NULL;
		size_t before = c->rpos;
		if (conn_fill(c) <= 0)
			return NULL;
		if (c->rpos != before) /* compacted or reset: the line moved */
			scanned = 0;
	}
}

/* The next piece of the request body, in place: >0 bytes at *p (consumed),
 * 0 = the body is complete, -1 = malformed or the connection failed. */
static ssize_t body_next(struct conn *c, const char **p)
{
	if (c->body == BODY_NONE)
		return 0;
	for (;;) {
		if (c->body == BODY_LENGTH || c->chunk == CH_DATA) {
			if (c->left == 0) {
				if (c->body == BODY_LENGTH) {
					c->body = BODY_NONE;
					return 0;
				}
				c->chunk = CH_DATA_END;
				continue;
			}
			if (c->rpos == c->wpos && conn_fill(c) <= 0)
				return -1;
			size_t n = c->wpos - c->rpos;
			if (n > c->left)
				n = (size_t)c->left;
			*p = c->buf + c->rpos;
			c->rpos += n;
			c->left -= n;
			return (ssize_t)n;
		}
		char *line = conn_line(c);
		if (!line)
			return -1;
		if (c->chunk == CH_DATA_END) {
			if (*line)
				return -1;
			c->chunk = CH_SIZE;
		} else if (c->chunk == CH_SIZE) {
			uint64_t v = 0;
			char *s = line;
			int digits = 0;
			for (;; s++, digits++) {
				int d = *s >= '0' && *s <= '9'	 ? *s - '0'
					: *s >= 'a' && *s <= 'f' ? *s - 'a' + 10
					: *s >= 'A' && *s <= 'F' ? *s - 'A' + 10
								 : -1;
				if (d < 0)
					break;
				if (v >> 59)
					return -1;
				v = v * 16 + (uint64_t)d;
			}
			while (*s == ' ' || *s == '\t')
				s++;
			if (!digits || (*s && *s != ';'))
				return -1;
			if (v == 0) {
				c->chunk = CH_DONE;
			} else {
				c->left = v;
				c->chunk = CH_DATA;
			}
		} else { /* CH_DONE: trailer lines up to the empty one */
			if (!*line) {
				c->body = BODY_NONE;
				return 0;
			}
		}
	}
}

/* Reads and drops the rest of the body: 0, or -1 when it is malformed. */
static int body_drain(struct conn *c)
{
	const char *p;
	ssize_t n;
	while ((n = body_next(c, &p)) > 0)
		;
	return n < 0 ? -1 : 0;
}

/* ---- request head ---- */

static bool is_tchar(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Does the comma-separated list `v` hold the token `tok` (case-insensitive)? */
static bool list_has(const char *v, const char *tok)
{
	size_t n = strlen(tok);
	while (*v) {
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		const char *e = v;
		while (*e && *e != ',')
			e++;
		const char *t = e;
		while (t > v && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if ((size_t)(t - v) == n && strncasecmp(v, tok, n) == 0)
			return true;
		v = e;
	}
	return false;
}

/* The last element of a comma-separated list, trimmed, compared to `tok`. */
static bool list_last_is(const char *v, const char *tok)
{
	const char *s = strrchr(v, ',');
	s = s ? s + 1 : v;
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return n == strlen(tok) && strncasecmp(s, tok, n) == 0;
}

/* Waits for a whole head in buf[0..), parses it in place.  0 = a request;
 * 1 = the client closed between requests; otherwise the HTTP status to
 * answer before closing (400, 431, 501), or -1 to just close. */
static int read_head(struct conn *c, struct req *r)
{
	size_t scan = 0, start = 0, end = 0;
	c->base = 0;
	for (;;) {
		/* Skip empty lines before the request line (RFC 9112 2.2). */
		while (start < c->wpos && (c->buf[start] == '\r' || c->buf[start] == '\n'))
			start++;
		if (scan < start)
			scan = start;
		size_t lim = c->wpos < HEAD_MAX ? c->wpos : HEAD_MAX;
		for (; scan < lim; scan++) {
			if (c->buf[scan] != '\n')
				continue;
			if (scan + 1 < lim && c->buf[scan + 1] == '\n') {
				end = scan + 2;
				break;
			}
			if (scan + 2 < lim && c->buf[scan + 1] == '\r' &&
			    c->buf[scan + 2] == '\n') {
				end = scan + 3;
				break;
			}
		}
		if (end)
			break;
		if (scan >= HEAD_MAX)
			return 431;
		/* Re-check the last two bytes once more bytes arrive. */
		scan = scan >= start + 2 ? scan - 2 : start;
		ssize_t n = conn_fill(c);
		if (n == 0 && c->wpos == start)
			return 1;
		if (n <= 0)
			return -1;
	}

	/* NUL-terminate every line of the head in place. */
	char *s = c->buf + start, *stop = c->buf + end;
	char *lines[MAX_HEADERS + 1];
	size_t nlines = 0;
	while (s < stop) {
		char *lf = memchr(s, '\n', (size_t)(stop - s));
		char *e = lf > s && lf[-1] == '\r' ? lf - 1 : lf;
		*e = '\0';
		if (e == s) /* the empty line */
			break;
		if (nlines == MAX_HEADERS + 1)
			return 431;
		lines[nlines++] = s;
		s = lf + 1;
	}
	c->base = c->rpos = end;

	/* Request line: METHOD SP TARGET SP HTTP/1.x */
	char *m = lines[0], *sp1 = strchr(m, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || sp1 == m || sp2 == sp1 + 1 || strchr(sp2 + 1, ' '))
		return 400;
	*sp1 = *sp2 = '\0';
	for (char *p = m; *p; p++)
		if (!is_tchar(*p))
			return 400;
	for (char *p = sp1 + 1; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return 400;
	const char *ver = sp2 + 1;
	if (strncmp(ver, "HTTP/1.", 7) || !ver[7] || ver[8] || ver[7] < '0' || ver[7] > '9')
		return strncmp(ver, "HTTP/", 5) ? 400 : 505;
	memset(r, 0, sizeof(*r));
	r->method = m;
	r->target = sp1 + 1;
	r->http11 = ver[7] != '0';
	r->head = strcmp(m, "HEAD") == 0;
	r->keep_alive = r->http11;

	/* Origin form, or absolute form (http://host/path?q). */
	const char *t = r->target;
	if (strncasecmp(t, "http://", 7) == 0 || strncasecmp(t, "https://", 8) == 0) {
		t = strstr(t, "://") + 3;
		t += strcspn(t, "/?");
		if (!*t || *t == '?')
			t = *t ? t : "/";
	}
	r->path = *t == '?' ? "/" : t;
	r->path_len = *t == '?' ? 1 : strcspn(t, "?");
	const char *q = strchr(t, '?');
	r->query = q ? q + 1 : "";

	/* Header fields. */
	struct header *hdr = malloc(sizeof(*hdr) * (nlines ? nlines : 1));
	if (!hdr)
		return 500;
	r->hdr = hdr;
	bool have_cl = false, chunked = false, have_te = false, conn_close = false,
	     conn_keep = false;
	for (size_t i = 1; i < nlines; i++) {
		char *l = lines[i], *colon = strchr(l, ':');
		if (*l == ' ' || *l == '\t' || !colon || colon == l)
			goto bad; /* obsolete line folding or no name */
		for (char *p = l; p < colon; p++)
			if (!is_tchar(*p))
				goto bad;
		*colon = '\0';
		char *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		char *ve = v + strlen(v);
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			*--ve = '\0';
		hdr[r->nhdr].name = l;
		hdr[r->nhdr].value = v;
		r->nhdr++;
		if (strcasecmp(l, "Content-Length") == 0) {
			uint64_t n = 0;
			if (!*v)
				goto bad;
			for (const char *p = v; *p; p++) {
				if (*p < '0' || *p > '9' || n > (UINT64_MAX - 9) / 10)
					goto bad;
				n = n * 10 + (uint64_t)(*p - '0');
			}
			if (have_cl && n != r->content_length)
				goto bad;
			have_cl = true;
			r->content_length = n;
		} else if (strcasecmp(l, "Transfer-Encoding") == 0) {
			have_te = true;
			chunked = list_last_is(v, "chunked");
		} else if (strcasecmp(l, "Connection") == 0) {
			conn_close |= list_has(v, "close");
			conn_keep |= list_has(v, "keep-alive");
		} else if (strcasecmp(l, "Content-Type") == 0) {
			r->content_type = v;
		} else if (strcasecmp(l, "Expect") == 0) {
			if (strcasecmp(v, "100-continue"))
				goto bad_expect;
			r->expect_continue = true;
		}
	}
	if (conn_close)
		r->keep_alive = false;
	else if (!r->http11 && conn_keep)
		r->keep_alive = true;
	if (have_te) {
		/* A body whose length cannot be known (not chunked last) or
		 * that carries both framings: refused, as RFC 9112 6.3 says. */
		if (!chunked || !r->http11)
			goto bad;
		if (have_cl)
			r->keep_alive = false;
		c->body = BODY_CHUNKED;
		c->chunk = CH_SIZE;
		c->left = 0;
	} else if (have_cl && r->content_length > 0) {
		c->body = BODY_LENGTH;
		c->left = r->content_length;
	} else {
		c->body = BODY_NONE;
	}
	return 0;
bad:
	free(hdr);
	r->hdr = NULL;
	return 400;
bad_expect:
	free(hdr);
	r->hdr = NULL;
	return 417;
}

/* ---- endpoints ---- */

static bool path_is(const struct req *r, const char *p)
{
	return r->path_len == strlen(p) && memcmp(r->path, p, r->path_len) == 0;
}

/* Query parameter `name` as an unsigned integer <= max: 0 = set (or `def`
 * when absent), -1 = malformed. */
static int query_u64(const struct req *r, const char *name, uint64_t def, uint64_t max,
		     uint64_t *out)
{
	size_t n = strlen(name);
	*out = def;
	for (const char *q = r->query; *q;) {
		const char *amp = q + strcspn(q, "&");
		if ((size_t)(amp - q) > n && strncmp(q, name, n) == 0 && q[n] == '=') {
			uint64_t v = 0;
			const char *p = q + n + 1;
			if (p == amp)
				return -1;
			for (; p < amp; p++) {
				if (*p < '0' || *p > '9' || v > max)
					return -1;
				v = v * 10 + (uint64_t)(*p - '0');
			}
			if (v > max)
				return -1;
			*out = v;
		}
		q = *amp ? amp + 1 : amp;
	}
	return 0;
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int do_echo(struct conn *c, struct req *r)
{
	bool chunked = c->body == BODY_CHUNKED;
	enum framing fr = chunked ? FR_STREAM : FR_LENGTH;
	uint64_t len = c->body == BODY_LENGTH ? r->content_length : 0;
	if (send_response(c, r, 200, r->content_type, fr, len, NULL))
		return -1;
	const char *p;
	ssize_t n;
	while ((n = body_next(c, &p)) > 0) {
		if (chunked ? send_piece(c, r, p, (size_t)n)
			    : (!r->head && send_buf(c->fd, p, (size_t)n)))
			return -1;
	}
	if (n < 0)
		return -1;
	return chunked ? send_stream_end(c, r) : 0;
}

static int do_headers(struct conn *c, struct req *r)
{
	size_t len = strlen(r->method) + strlen(r->target) + 2;
	for (size_t i = 0; i < r->nhdr; i++)
		len += strlen(r->hdr[i].name) + strlen(r->hdr[i].value) + 3;
	char *b = malloc(len + 1), *w = b;
	if (!b)
		return send_text(c, r, 500, "out of memory\n");
	w += sprintf(w, "%s %s\n", r->method, r->target);
	for (size_t i = 0; i < r->nhdr; i++)
		w += sprintf(w, "%s: %s\n", r->hdr[i].name, r->hdr[i].value);
	int rc = send_response(c, r, 200, "text/plain", FR_LENGTH, (uint64_t)(w - b), b);
	free(b);
	return rc;
}

static int do_status(struct conn *c, struct req *r)
{
	const char *d = r->path + 8;
	size_t nd = r->path_len - 8;
	if (nd != 3 || d[0] < '2' || d[0] > '5' || d[1] < '0' || d[1] > '9' || d[2] < '0' ||
	    d[2] > '9')
		return send_text(c, r, 400, "status must be 200-599\n");
	int st = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
	if (st == 204 || st == 304)
		return send_response(c, r, st, NULL, FR_NONE, 0, NULL);
	char body[32];
	int k = snprintf(body, sizeof(body), "status %d\n", st);
	return send_response(c, r, st, "text/plain", FR_LENGTH, (uint64_t)k, body);
}

static int do_events(struct conn *c, struct req *r, bool sse)
{
	uint64_t n, ms;
	if (query_u64(r, "n", 5, 1000000000, &n) || query_u64(r, "ms", 100, 3600000, &ms))
		return send_text(c, r, 400, "n and ms must be unsigned integers\n");
	if (send_response(c, r, 200, sse ? "text/event-stream" : "application/x-ndjson", FR_STREAM,
			  0, NULL))
		return -1;
	for (uint64_t i = 0; i < n; i++) {
		char ev[64];
		int k = sse ? snprintf(ev, sizeof(ev), "data: %llu\n\n", (unsigned long long)i)
			    : snprintf(ev, sizeof(ev), "{\"i\":%llu}\n", (unsigned long long)i);
		if (send_piece(c, r, ev, (size_t)k))
			return -1;
		if (i + 1 < n && ms)
			sleep_ms(ms);
	}
	return send_stream_end(c, r);
}

static int do_big(struct conn *c, struct req *r)
{
	uint64_t n;
	if (query_u64(r, "bytes", 1u << 20, UINT64_C(1) << 40, &n))
		return send_text(c, r, 400, "bytes must be an unsigned integer <= 2^40\n");
	if (send_response(c, r, 200, "text/plain", FR_LENGTH, n, NULL))
		return -1;
	for (uint64_t sent = 0; !r->head && sent < n;) {
		size_t k = n - sent < PATTERN_LEN ? (size_t)(n - sent) : PATTERN_LEN;
		if (send_buf(c->fd, pattern + sent % 26, k))
			return -1;
		sent += k;
	}
	return 0;
}

/* Answers one parsed request.  0 = the connection may serve another one. */
static int handle(struct conn *c, struct req *r)
{
	if (r->expect_continue && c->body != BODY_NONE &&
	    send_buf(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25))
		return -1;
	if (path_is(r, "/echo"))
		return do_echo(c, r);
	/* Every other endpoint ignores the body: read it first so that the
	 * connection is clean for the next request. */
	if (body_drain(c)) {
		r->keep_alive = false;
		send_text(c, r, 400, "malformed request body\n");
		return -1;
	}
	if (path_is(r, "/headers"))
		return do_headers(c, r);
	if (r->path_len >= 8 && memcmp(r->path, "/status/", 8) == 0)
		return do_status(c, r);
	if (path_is(r, "/sleep")) {
		uint64_t ms;
		if (query_u64(r, "ms", 0, 3600000, &ms))
			return send_text(c, r, 400, "ms must be an unsigned integer\n");
		sleep_ms(ms);
		return send_text(c, r, 200, "slept\n");
	}
	if (path_is(r, "/sse"))
		return do_events(c, r, true);
	if (path_is(r, "/ndjson"))
		return do_events(c, r, false);
	if (path_is(r, "/big"))
		return do_big(c, r);
	if (path_is(r, "/exit")) {
		r->keep_alive = false;
		send_text(c, r, 200, "bye\n");
		shutdown(c->fd, SHUT_WR);
		_exit(3);
	}
	return send_text(c, r, 200, "OK\n");
}

static void *conn_main(void *arg)
{
	struct conn c = {.fd = (int)(intptr_t)arg, .cap = BUF_CAP};
	int one = 1;
	setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c.buf = malloc(c.cap);
	while (c.buf) {
		struct req r = {0};
		int st = read_head(&c, &r);
		if (st != 0) {
			if (st > 1) {
				struct req e = {.http11 = true};
				char msg[64];
				snprintf(msg, sizeof(msg), "%s\n", reason(st));
				send_text(&c, &e, st, msg);
			}
			free(r.hdr);
			break;
		}
		int rc = handle(&c, &r);
		free(r.hdr);
		if (rc || !r.keep_alive || c.body != BODY_NONE)
			break;
		/* Keep what follows this request for the next one. */
		size_t left = c.wpos - c.rpos;
		memmove(c.buf, c.buf + c.rpos, left);
		c.base = c.rpos = 0;
		c.wpos = left;
	}
	free(c.buf);
	close(c.fd);
	return NULL;
}

/* ---- server ---- */

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

static int serve(const char *host, const char *port)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE},
			*ai;
	int g = getaddrinfo(host, port, &hints, &ai);
	if (g) {
		fprintf(stderr, PROG ": address '%s' port '%s': %s\n", host, port, gai_strerror(g));
		return 2;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0) {
		fprintf(stderr, PROG ": socket(): %s\n", strerror(errno));
		freeaddrinfo(ai);
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
		fprintf(stderr, PROG ": bind(%s:%s): %s\n", host, port, strerror(errno));
		freeaddrinfo(ai);
		close(fd);
		return 1;
	}
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char hbuf[NI_MAXHOST], pbuf[NI_MAXSERV];
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
	    getnameinfo((struct sockaddr *)&ss, sl, hbuf, sizeof(hbuf), pbuf, sizeof(pbuf),
			NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		fprintf(stderr, "listening on %s:%s\n", hbuf, pbuf);

	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				sleep_ms(10); /* out of resources: let connections end */
				continue;
			}
			fprintf(stderr, PROG ": accept(): %s\n", strerror(errno));
			return 1;
		}
		pthread_t th;
		if (pthread_create(&th, &attr, conn_main, (void *)(intptr_t)cfd))
			close(cfd);
	}
}

/* ---- --probe-health ---- */

static double now_real_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* "1700000000.123456" (bash $EPOCHREALTIME; ',' in some locales) -> ms. */
static int parse_epoch(const char *s, double *ms)
{
	char *e;
	errno = 0;
	long long sec = strtoll(s, &e, 10);
	if (errno || e == s || sec < 0)
		return -1;
	double frac = 0, scale = 0.1;
	if (*e == '.' || *e == ',') {
		for (e++; *e >= '0' && *e <= '9'; e++, scale /= 10)
			frac += (*e - '0') * scale;
	}
	if (*e)
		return -1;
	*ms = ((double)sec + frac) * 1e3;
	return 0;
}

/* One GET: 200 -> 0, any other answer or failure -> -1 with `why` set. */
static int probe_once(const struct addrinfo *ai, const char *req, size_t reqlen, int budget_ms,
		      char *why, size_t whylen)
{
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, whylen, "socket(): %s", strerror(errno));
		return -1;
	}
	struct timeval tv = {budget_ms / 1000, (budget_ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int rc = -1;
	char buf[64];
	size_t got = 0;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		snprintf(why, whylen, "connect(): %s", strerror(errno));
		goto out;
	}
	if (send_buf(fd, req, reqlen)) {
		snprintf(why, whylen, "send(): %s", strerror(errno));
		goto out;
	}
	while (got < 12) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(why, whylen, "read(): %s",
				 n ? strerror(errno) : "connection closed");
			goto out;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	if (strncmp(buf, "HTTP/1.", 7) == 0 && strncmp(buf + 8, " 200", 4) == 0) {
		rc = 0;
	} else {
		buf[strcspn(buf, "\r\n")] = '\0';
		snprintf(why, whylen, "answered \"%s\"", buf);
	}
out:
	close(fd);
	return rc;
}

static int probe_health(const char *url, long timeout_ms, const char *since)
{
	double t0 = now_real_ms();
	if (since && parse_epoch(since, &t0)) {
		fprintf(stderr, PROG ": --since '%s' is not a $EPOCHREALTIME timestamp\n", since);
		return 2;
	}
	/* http://HOST[:PORT][/PATH] with a numeric host ([v6] in brackets). */
	char host[256], port[16] = "80";
	const char *p = url, *path;
	if (strncmp(p, "http://", 7)) {
		fprintf(stderr, PROG ": '%s' is not an http:// URL\n", url);
		return 2;
	}
	p += 7;
	size_t hl;
	const char *after;
	if (*p == '[') {
		const char *rb = strchr(p, ']');
		if (!rb) {
			fprintf(stderr, PROG ": '%s': no ']'\n", url);
			return 2;
		}
		hl = (size_t)(rb - p - 1);
		p++;
		after = rb + 1;
	} else {
		hl = strcspn(p, ":/");
		after = p + hl;
	}
	if (hl == 0 || hl >= sizeof(host)) {
		fprintf(stderr, PROG ": '%s': bad host\n", url);
		return 2;
	}
	memcpy(host, p, hl);
	host[hl] = '\0';
	if (*after == ':') {
		size_t pl = strcspn(after + 1, "/");
		if (pl == 0 || pl >= sizeof(port)) {
			fprintf(stderr, PROG ": '%s': bad port\n", url);
			return 2;
		}
		memcpy(port, after + 1, pl);
		port[pl] = '\0';
		after += 1 + pl;
	}
	path = *after ? after : "/";
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV},
			*ai;
	int g = getaddrinfo(host, port, &hints, &ai);
	if (g) {
		fprintf(stderr, PROG ": '%s': %s\n", url, gai_strerror(g));
		return 2;
	}
	char req[1024];
	int k = snprintf(req, sizeof(req),
			 "GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n\r\n", path, host,
			 port);
	if (k < 0 || (size_t)k >= sizeof(req)) {
		fprintf(stderr, PROG ": '%s': URL too long\n", url);
		freeaddrinfo(ai);
		return 2;
	}
	char why[256] = "no attempt";
	for (;;) {
		double left = t0 + (double)timeout_ms - now_real_ms();
		if (left <= 0) {
			fprintf(stderr, PROG ": %s not healthy after %ld ms: last try: %s\n", url,
				timeout_ms, why);
			freeaddrinfo(ai);
			return 1;
		}
		if (probe_once(ai, req, (size_t)k, (int)left + 1, why, sizeof(why)) == 0)
			break;
		struct timespec ts = {0, 500000L};
		nanosleep(&ts, NULL);
	}
	printf("%.3f\n", now_real_ms() - t0);
	freeaddrinfo(ai);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: " PROG " [--port N] [--host ADDR]\n"
		"       " PROG " --probe-health URL [--timeout-ms N] [--since EPOCHREALTIME]\n");
}

static bool parse_port(const char *s)
{
	char *e;
	errno = 0;
	long v = strtol(s, &e, 10);
	return !errno && e != s && !*e && v >= 0 && v <= 65535;
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *port = getenv("port"), *probe = NULL, *since = NULL;
	long timeout_ms = 5000;
	char defport[8];
	snprintf(defport, sizeof(defport), "%d", DEFAULT_PORT);
	if (!port || !*port)
		port = defport;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v) {
			usage();
			return 2;
		}
		if (strcmp(a, "--port") == 0) {
			port = v;
		} else if (strcmp(a, "--host") == 0) {
			host = v;
		} else if (strcmp(a, "--probe-health") == 0) {
			probe = v;
		} else if (strcmp(a, "--timeout-ms") == 0) {
			char *e;
			timeout_ms = strtol(v, &e, 10);
			if (*e || e == v || timeout_ms <= 0 || timeout_ms > INT_MAX / 2) {
				fprintf(stderr,
					PROG ": --timeout-ms '%s': not a positive integer\n", v);
				return 2;
			}
		} else if (strcmp(a, "--since") == 0) {
			since = v;
		} else {
			usage();
			return 2;
		}
		i++;
	}
	signal(SIGPIPE, SIG_IGN);
	if (probe)
		return probe_health(probe, timeout_ms, since);
	if (!parse_port(port)) {
		fprintf(stderr, PROG ": port '%s': not a port number (0-65535)\n", port);
		return 2;
	}
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (char)('a' + i % 26);
	struct sigaction sa = {.sa_handler = on_term};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	return serve(host, port);
}
