/* httpc.c - blocking HTTP/1.1 client for one connection (see httpc.h). */
#include "httpc.h"
#include "sock.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define IOBUF (16 * 1024) /* room for body bytes behind the pinned head */

enum body_mode { B_NONE, B_LEN, B_CHUNKED, B_CLOSE };
enum chunk_state { C_SIZE, C_DATA, C_CRLF, C_TRAILER };

/* buf: [0, keep) the current response head (pinned: the headers point
 * into it), [off, len) received and not consumed, keep <= off <= len. */
struct ir_httpc {
	int fd;
	uint64_t deadline_ns;
	char *buf;
	size_t keep, off, len, cap;
	struct ir_http_header *hdrs; /* IR_HTTPC_MAX_HEADERS */
	/* request being sent */
	bool req_chunked;
	int64_t req_left; /* Content-Length bytes still to send; -1 = not length-framed */
	/* response body being read */
	enum body_mode body;
	enum chunk_state cstate;
	uint64_t left;	/* of the Content-Length, or of the current chunk */
	size_t trailer; /* trailer bytes so far */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool expired(uint64_t deadline_ns)
{
	return deadline_ns && now_ns() >= deadline_ns;
}

/* Wait for @events on @fd until @deadline_ns; 0 or -errno. */
static int wait_fd(int fd, short events, uint64_t deadline_ns)
{
	for (;;) {
		int ms = -1;
		if (deadline_ns) {
			uint64_t now = now_ns();
			if (now >= deadline_ns)
				return -ETIMEDOUT;
			uint64_t left = (deadline_ns - now + 999999) / 1000000;
			ms = left > 1000000000 ? 1000000000 : (int)left;
		}
		struct pollfd p = {.fd = fd, .events = events};
		int r = poll(&p, 1, ms);
		if (r > 0)
			return 0;
		if (r == 0)
			continue; /* the deadline check above decides */
		if (errno != EINTR)
			return -errno;
	}
}

/* ---- URL ---- */

static int url_err(char *err, size_t errlen, const char *s, const char *why)
{
	if (err && errlen)
		snprintf(err, errlen, "\"%s\": %s", s, why);
	return -EINVAL;
}

static bool host_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '-' || ch == '.' || ch == '_';
}

int ir_url_parse(const char *s, struct ir_url *u, char *err, size_t errlen)
{
	memset(u, 0, sizeof(*u));
	if (!s)
		return url_err(err, errlen, "", "no URL");
	if (strncasecmp(s, "https://", 8) == 0)
		return url_err(err, errlen, s,
			       "https is not supported (the upstream is on loopback: use http://)");
	if (strncasecmp(s, "http://", 7) != 0)
		return url_err(err, errlen, s,
			       "not an http:// URL (want http://host[:port][/path])");
	const char *a = s + 7; /* authority: up to the path, query or fragment */
	size_t alen = strcspn(a, "/?#");
	if (memchr(a, '@', alen))
		return url_err(err, errlen, s, "user information is not supported");
	const char *h, *he, *p;
	if (*a == '[') {
		h = a + 1;
		he = memchr(h, ']', alen - 1);
		if (!he)
			return url_err(err, errlen, s, "'[' without ']' around an IPv6 address");
		for (const char *q = h; q < he; q++)
			if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.')
				return url_err(err, errlen, s,
					       "bad IPv6 address between '[' and ']'");
		if (he > h && !memchr(h, ':', (size_t)(he - h)))
			return url_err(err, errlen, s, "bad IPv6 address between '[' and ']'");
		p = he + 1;
		if (*p && *p != ':' && *p != '/' && *p != '?' && *p != '#')
			return url_err(err, errlen, s, "unexpected character after ']'");
	} else {
		h = a;
		he = a + strcspn(a, ":/?#");
		for (const char *q = h; q < he; q++)
			if (!host_char(*q))
				return url_err(err, errlen, s, "bad character in the host name");
		p = he;
	}
	if (he == h)
		return url_err(err, errlen, s, "no host");
	if ((size_t)(he - h) >= sizeof(u->host))
		return url_err(err, errlen, s, "host name too long");
	memcpy(u->host, h, (size_t)(he - h));
	u->port = 80;
	if (*p == ':') {
		p++;
		unsigned long v = 0;
		const char *d = p;
		while (*p >= '0' && *p <= '9' && v <= 65535)
			v = v * 10 + (unsigned long)(*p++ - '0');
		if (p == d || v == 0 || v > 65535 || (*p && !strchr("/?#", *p)))
			return url_err(err, errlen, s, "bad port (want 1-65535)");
		u->port = (uint16_t)v;
	}
	if (strpbrk(p, "?#"))
		return url_err(err, errlen, s, "query and fragment are not supported");
	for (const char *q = p; *q; q++)
		if ((unsigned char)*q <= ' ' || *q == 0x7f)
			return url_err(err, errlen, s, "space or control character in the path");
	size_t n = strlen(p);
	while (n && p[n - 1] == '/')
		n--;
	if (n >= sizeof(u->prefix))
		return url_err(err, errlen, s, "path too long");
	memcpy(u->prefix, p, n);
	return 0;
}

/* ---- connection ---- */

/* Connect @fd (non-blocking) to @ai until @deadline_ns; 0 or -errno. */
static int connect_one(int fd, const struct addrinfo *ai, uint64_t deadline_ns)
{
	if (expired(deadline_ns))
		return -ETIMEDOUT;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EINTR)
		return -errno;
	int rc = wait_fd(fd, POLLOUT, deadline_ns);
	if (rc)
		return rc;
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		return -errno;
	return -soerr;
}

int ir_httpc_connect(const struct ir_url *u, uint64_t deadline_ns)
{
	char port[8];
	snprintf(port, sizeof(port), "%u", (unsigned)u->port);
	struct addrinfo hints = {
	    .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res;
	int gr = getaddrinfo(u->host, port, &hints, &res);
	if (gr)
		return gr == EAI_SYSTEM ? -errno : gr == EAI_MEMORY ? -ENOMEM : -EHOSTUNREACH;
	int rc = -ECONNREFUSED;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		rc = connect_one(fd, ai, deadline_ns);
		if (!rc) {
			int one = 1, fl = fcntl(fd, F_GETFL);
			if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0 ||
			    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
				rc = -errno;
		}
		if (!rc) {
			freeaddrinfo(res);
			return fd;
		}
		close(fd);
		if (rc == -ETIMEDOUT)
			break; /* the deadline is spent for every address */
	}
	freeaddrinfo(res);
	return rc;
}

int ir_httpc_open(struct ir_httpc **cp, int fd)
{
	struct ir_httpc *c = calloc(1, sizeof(*c));
	if (!c)
		goto out_close;
	c->cap = IR_HTTPC_MAX_HEAD + IOBUF;
	c->buf = malloc(c->cap);
	if (!c->buf)
		goto out_free_conn;
	c->hdrs = calloc(IR_HTTPC_MAX_HEADERS, sizeof(*c->hdrs));
	if (!c->hdrs)
		goto out_free_buf;
	c->fd = fd;
	c->req_left = -1;
	*cp = c;
	return 0;

out_free_buf:
	free(c->buf);
out_free_conn:
	free(c);
out_close:
	close(fd);
	return -ENOMEM;
}

void ir_httpc_close(struct ir_httpc *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c->buf);
	free(c->hdrs);
	free(c);
}

int ir_httpc_fd(const struct ir_httpc *c)
{
	return c->fd;
}

void ir_httpc_set_deadline(struct ir_httpc *c, uint64_t deadline_ns)
{
	c->deadline_ns = deadline_ns;
}

bool ir_httpc_idle_ok(const struct ir_httpc *c)
{
	if (c->body != B_NONE || c->len > c->off)
		return false;
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	return poll(&p, 1, 0) == 0;
}

/* ---- sending ---- */

/* All of @iov (modified), with short writes resumed. */
static int send_iov(struct ir_httpc *c, struct iovec *iov, int n)
{
	while (n > 0) {
		if (expired(c->deadline_ns))
			return -ETIMEDOUT;
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			int rc = wait_fd(c->fd, POLLOUT, c->deadline_ns);
			if (rc)
				return rc;
			continue;
		}
		ir_iov_consume(&iov, &n, (size_t)w);
	}
	return 0;
}

int ir_httpc_send_head(struct ir_httpc *c, const char *head, size_t len, int64_t body_len)
{
	if (len < 4 || memcmp(head + len - 4, "\r\n\r\n", 4) != 0 || body_len < IR_HTTPC_NO_BODY)
		return -EINVAL;
	char frame[48] = "";
	if (body_len >= 0)
		snprintf(frame, sizeof(frame), "Content-Length: %lld\r\n", (long long)body_len);
	else if (body_len == IR_HTTPC_CHUNKED)
		snprintf(frame, sizeof(frame), "Transfer-Encoding: chunked\r\n");
	c->req_chunked = body_len == IR_HTTPC_CHUNKED;
	c->req_left = body_len >= 0 ? body_len : -1;
	/* The framing header goes before the empty line. */
	struct iovec iov[3] = {
	    {(void *)head, len - 2}, {frame, strlen(frame)}, {(void *)"\r\n", 2}};
	return send_iov(c, iov, 3);
}

int ir_httpc_send_body(struct ir_httpc *c, const void *p, size_t len)
{
	if (!len)
		return 0;
	if (c->req_chunked) {
		char size[24];
		snprintf(size, sizeof(size), "%zx\r\n", len);
		struct iovec iov[3] = {{size, strlen(size)}, {(void *)p, len}, {(void *)"\r\n", 2}};
		return send_iov(c, iov, 3);
	}
	if (c->req_left < 0 || (uint64_t)c->req_left < len)
		return -EPROTO;
	c->req_left -= (int64_t)len;
	struct iovec iov[1] = {{(void *)p, len}};
	return send_iov(c, iov, 1);
}

int ir_httpc_end_body(struct ir_httpc *c)
{
	if (c->req_chunked) {
		c->req_chunked = false;
		struct iovec iov[1] = {{(void *)"0\r\n\r\n", 5}};
		return send_iov(c, iov, 1);
	}
	int rc = c->req_left > 0 ? -EPROTO : 0;
	c->req_left = -1;
	return rc;
}

/* ---- receiving ---- */

/* One recv() into @p (waiting until the deadline): > 0, 0 at EOF, -errno. */
static ssize_t recv_some(struct ir_httpc *c, void *p, size_t max)
{
	for (;;) {
		if (expired(c->deadline_ns))
			return -ETIMEDOUT;
		ssize_t n = recv(c->fd, p, max, MSG_DONTWAIT);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		int rc = wait_fd(c->fd, POLLIN, c->deadline_ns);
		if (rc)
			return rc;
	}
}

/* Read more into the buffer, behind the pinned head (compacting first when
 * the buffer is full).  0, -ECONNRESET at EOF, -E2BIG when the buffer is
 * full of unconsumed bytes, or -errno. */
static int fill(struct ir_httpc *c)
{
	if (c->off == c->len) {
		c->off = c->len = c->keep;
	} else if (c->len == c->cap && c->off > c->keep) {
		memmove(c->buf + c->keep, c->buf + c->off, c->len - c->off);
		c->len = c->keep + (c->len - c->off);
		c->off = c->keep;
	}
	if (c->len == c->cap)
		return -E2BIG;
	ssize_t n = recv_some(c, c->buf + c->len, c->cap - c->len);
	if (n < 0)
		return (int)n;
	if (n == 0)
		return -ECONNRESET;
	c->len += (size_t)n;
	return 0;
}

static bool is_tchar(char ch)
{
	return isalnum((unsigned char)ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* No control character but HTAB in [s, end) (obs-text allowed). */
static bool clean_text(const char *s, const char *end)
{
	for (; s < end; s++)
		if (((unsigned char)*s < ' ' && *s != '\t') || *s == 0x7f)
			return false;
	return true;
}

static char *trim(char *s, char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';
	return s;
}

/* Whether the comma-separated header value @v has token @tok. */
static bool has_token(const char *v, const char *tok)
{
	size_t tl = strlen(tok);
	while (*v) {
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		size_t n = strcspn(v, ",");
		size_t m = n;
		while (m && (v[m - 1] == ' ' || v[m - 1] == '\t'))
			m--;
		if (m == tl && strncasecmp(v, tok, tl) == 0)
			return true;
		v += n;
	}
	return false;
}

/* Whether the last coding of Transfer-Encoding value @v is chunked. */
static bool last_chunked(const char *v)
{
	const char *last = strrchr(v, ',');
	last = last ? last + 1 : v;
	while (*last == ' ' || *last == '\t')
		last++;
	size_t n = strlen(last);
	while (n && (last[n - 1] == ' ' || last[n - 1] == '\t'))
		n--;
	return n == 7 && strncasecmp(last, "chunked", 7) == 0;
}

/* The status line at @p, NUL-terminated in place. */
static int parse_status(char *p, int *minor, struct ir_httpc_resp *r)
{
	if (strncmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ')
		return -EPROTO;
	*minor = p[7] - '0';
	if (p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' ||
	    (p[12] != ' ' && p[12] != '\0'))
		return -EPROTO;
	r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	r->reason = p[12] ? p + 13 : "";
	return 0;
}

/* Parse the head in [p, end) (end just past "\r\n\r\n") in place and set
 * the body framing. */
static int parse_head(struct ir_httpc *c, char *p, char *end, bool head_request,
		      struct ir_httpc_resp *r)
{
	memset(r, 0, sizeof(*r));
	r->headers = c->hdrs;
	char *eol = memchr(p, '\r', (size_t)(end - p));
	if (!eol || eol[1] != '\n' || !clean_text(p, eol))
		return -EPROTO;
	*eol = '\0';
	int minor, rc = parse_status(p, &minor, r);
	if (rc)
		return rc;
	for (p = eol + 2; p < end - 2; p = eol + 2) {
		eol = memchr(p, '\r', (size_t)(end - p));
		if (!eol || eol[1] != '\n')
			return -EPROTO;
		if (*p == ' ' || *p == '\t')
			return -EPROTO; /* obs-fold */
		char *colon = p;
		while (colon < eol && is_tchar(*colon))
			colon++;
		if (colon == p || colon == eol || *colon != ':' || !clean_text(colon + 1, eol))
			return -EPROTO;
		if (r->nheaders == IR_HTTPC_MAX_HEADERS)
			return -E2BIG;
		*colon = '\0';
		c->hdrs[r->nheaders].name = p;
		c->hdrs[r->nheaders].value = trim(colon + 1, eol);
		r->nheaders++;
	}
	/* Framing (RFC 9112 §6.3). */
	const char *te = NULL;
	int64_t cl = -1;
	bool conn_close = false, conn_keep = false;
	for (size_t i = 0; i < r->nheaders; i++) {
		const char *n = c->hdrs[i].name, *v = c->hdrs[i].value;
		if (strcasecmp(n, "Transfer-Encoding") == 0) {
			te = v; /* the last one's last coding is the last coding */
		} else if (strcasecmp(n, "Content-Length") == 0) {
			size_t len = strlen(v);
			if (!len || len > 18 || strspn(v, "0123456789") != len)
				return -EPROTO;
			int64_t x = strtoll(v, NULL, 10);
			if (cl >= 0 && x != cl)
				return -EPROTO;
			cl = x;
		} else if (strcasecmp(n, "Connection") == 0) {
			conn_close |= has_token(v, "close");
			conn_keep |= has_token(v, "keep-alive");
		}
	}
	r->keep_alive = minor == 1 ? !conn_close : conn_keep && !conn_close;
	if (te && (minor == 0 || cl >= 0))
		r->keep_alive = false; /* faulty framing: RFC 9112 §6.1, §6.3 */
	c->body = B_NONE;
	if (head_request || r->status < 200 || r->status == 204 || r->status == 304) {
		r->content_length = 0;
		if (r->status == 101)
			r->keep_alive = false; /* no longer HTTP */
	} else if (te && last_chunked(te)) {
		r->chunked = true;
		r->content_length = -1;
		c->body = B_CHUNKED;
		c->cstate = C_SIZE;
		c->trailer = 0;
	} else if (!te && cl >= 0) {
		r->content_length = cl;
		c->body = cl ? B_LEN : B_NONE;
		c->left = (uint64_t)cl;
	} else {
		r->until_close = true;
		r->keep_alive = false;
		r->content_length = -1;
		c->body = B_CLOSE;
	}
	return 0;
}

int ir_httpc_read_head(struct ir_httpc *c, bool head_request, struct ir_httpc_resp *r)
{
	if (c->body != B_NONE)
		return -EINVAL;
	if (expired(c->deadline_ns))
		return -ETIMEDOUT;
	for (;;) {
		/* Unpin the last head; the new one starts at buf[0]. */
		c->keep = 0;
		if (c->off) {
			memmove(c->buf, c->buf + c->off, c->len - c->off);
			c->len -= c->off;
			c->off = 0;
		}
		char *end;
		size_t scanned = 0;
		for (;;) {
			size_t lim = c->len < IR_HTTPC_MAX_HEAD ? c->len : IR_HTTPC_MAX_HEAD;
			size_t from = scanned > 3 ? scanned - 3 : 0;
			end = lim > from ? memmem(c->buf + from, lim - from, "\r\n\r\n", 4) : NULL;
			if (end)
				break;
			if (c->len >= IR_HTTPC_MAX_HEAD)
				return -E2BIG;
			scanned = lim;
			int rc = fill(c);
			if (rc)
				return rc;
		}
		end += 4;
		c->off = (size_t)(end - c->buf);
		int rc = parse_head(c, c->buf, end, head_request, r);
		if (rc)
			return rc;
		if (r->status < 200 && r->status != 101)
			continue; /* interim (100 Continue, 103 Early Hints) */
		c->keep = c->off;
		return 0;
	}
}

const char *ir_httpc_header(const struct ir_httpc_resp *r, const char *name)
{
	for (size_t i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

/* Up to @max bytes of what is buffered or, with nothing buffered, of one
 * recv() straight into @buf.  0 = EOF. */
static ssize_t take(struct ir_httpc *c, void *buf, size_t max)
{
	size_t avail = c->len - c->off;
	if (!avail)
		return recv_some(c, buf, max);
	size_t n = avail < max ? avail : max;
	memcpy(buf, c->buf + c->off, n);
	c->off += n;
	return (ssize_t)n;
}

/* One CRLF-terminated line of at most IR_HTTPC_MAX_LINE bytes from the
 * buffer, NUL-terminated in place (the CRLF dropped). */
static int read_line(struct ir_httpc *c, char **line)
{
	for (;;) {
		char *s = c->buf + c->off;
		size_t avail = c->len - c->off;
		char *nl = memchr(s, '\n', avail < IR_HTTPC_MAX_LINE ? avail : IR_HTTPC_MAX_LINE);
		if (nl) {
			if (nl == s || nl[-1] != '\r')
				return -EPROTO;
			nl[-1] = '\0';
			c->off = (size_t)(nl + 1 - c->buf);
			*line = s;
			return 0;
		}
		if (avail >= IR_HTTPC_MAX_LINE)
			return -EPROTO;
		int rc = fill(c);
		if (rc)
			return rc;
	}
}

/* chunk-size [BWS] [";" extensions]: hex digits, below 2^60. */
static int chunk_size(const char *p, uint64_t *size)
{
	uint64_t v = 0;
	if (!isxdigit((unsigned char)*p))
		return -EPROTO;
	for (; isxdigit((unsigned char)*p); p++) {
		if (v >> 56)
			return -EPROTO;
		int d = *p <= '9' ? *p - '0' : (*p | 0x20) - 'a' + 10;
		v = v * 16 + (uint64_t)d;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p && *p != ';')
		return -EPROTO;
	*size = v;
	return 0;
}

/* take() bounded by c->left (a length or a chunk), counted down; the peer
 * closing before the announced end is -ECONNRESET. */
static ssize_t take_left(struct ir_httpc *c, void *buf, size_t max)
{
	ssize_t n = take(c, buf, c->left < max ? (size_t)c->left : max);
	if (n == 0)
		return -ECONNRESET;
	if (n > 0)
		c->left -= (uint64_t)n;
	return n;
}

static ssize_t read_chunked(struct ir_httpc *c, void *buf, size_t max)
{
	for (;;) {
		char *line;
		int rc;
		switch (c->cstate) {
		case C_SIZE:
			if ((rc = read_line(c, &line)) || (rc = chunk_size(line, &c->left)))
				return rc;
			c->cstate = c->left ? C_DATA : C_TRAILER;
			break;
		case C_DATA: {
			ssize_t n = take_left(c, buf, max);
			if (n > 0 && !c->left)
				c->cstate = C_CRLF;
			return n;
		}
		case C_CRLF:
			if ((rc = read_line(c, &line)))
				return rc;
			if (*line)
				return -EPROTO;
			c->cstate = C_SIZE;
			break;
		case C_TRAILER:
			if ((rc = read_line(c, &line)))
				return rc;
			if (!*line) {
				c->body = B_NONE;
				return 0;
			}
			c->trailer += strlen(line) + 2;
			if (c->trailer > IR_HTTPC_MAX_HEAD)
				return -E2BIG;
			break;
		}
	}
}

ssize_t ir_httpc_read_body(struct ir_httpc *c, void *buf, size_t max)
{
	if (!max)
		return -EINVAL;
	if (c->body != B_NONE && expired(c->deadline_ns))
		return -ETIMEDOUT;
	switch (c->body) {
	case B_NONE:
		return 0;
	case B_CLOSE: {
		ssize_t n = take(c, buf, max);
		if (n == 0)
			c->body = B_NONE;
		return n;
	}
	case B_LEN: {
		ssize_t n = take_left(c, buf, max);
		if (n > 0 && !c->left)
			c->body = B_NONE;
		return n;
	}
	case B_CHUNKED:
		break;
	}
	return read_chunked(c, buf, max);
}

bool ir_httpc_body_done(const struct ir_httpc *c)
{
	return c->body == B_NONE;
}
