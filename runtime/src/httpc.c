/* httpc.c - blocking HTTP/1.1 client for one connection (see httpc.h). */
#include "httpc.h"

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

#define LINE_MAX_ 1024 /* a chunk-size or trailer line */

enum body_mode { B_NONE, B_LEN, B_CHUNKED, B_CLOSE };
enum chunk_state { C_SIZE, C_DATA, C_CRLF, C_TRAILER };

struct ir_httpc {
	int fd;
	uint64_t deadline_ns;
	char *buf; /* received, not yet consumed: buf[off, len) */
	size_t off, len, cap;
	struct ir_http_header *hdrs;
	/* request being sent */
	bool req_chunked;
	int64_t req_left; /* Content-Length bytes still to send; -1 = not length-framed */
	/* response body being read */
	enum body_mode body;
	enum chunk_state cstate;
	uint64_t left; /* of the Content-Length, or of the current chunk */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
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
			ms = (int)((deadline_ns - now + 999999) / 1000000);
		}
		struct pollfd p = {.fd = fd, .events = events};
		int r = poll(&p, 1, ms);
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
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

int ir_url_parse(const char *s, struct ir_url *u, char *err, size_t errlen)
{
	memset(u, 0, sizeof(*u));
	if (strncasecmp(s, "http://", 7) != 0)
		return url_err(
		    err, errlen, s,
		    strncasecmp(s, "https://", 8) == 0
			? "https is not supported (the upstream is on loopback: use http://)"
			: "not an http:// URL (want http://host[:port][/path])");
	const char *p = s + 7, *h, *he;
	if (*p == '[') {
		h = p + 1;
		he = strchr(h, ']');
		if (!he)
			return url_err(err, errlen, s, "'[' without ']' around an IPv6 address");
		p = he + 1;
	} else {
		h = p;
		p += strcspn(p, ":/?#@");
		he = p;
	}
	if (*p == '@')
		return url_err(err, errlen, s, "user information is not supported");
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
		if (p == d || v == 0 || v > 65535 || (*p && *p != '/'))
			return url_err(err, errlen, s, "bad port (want 1-65535)");
		u->port = (uint16_t)v;
	}
	if (*p && *p != '/')
		return url_err(err, errlen, s,
			       *p == '@' ? "user information is not supported"
					 : "query and fragment are not supported");
	if (strpbrk(p, "?#"))
		return url_err(err, errlen, s, "query and fragment are not supported");
	size_t n = strlen(p);
	while (n && p[n - 1] == '/')
		n--;
	if (n >= sizeof(u->prefix))
		return url_err(err, errlen, s, "path too long");
	memcpy(u->prefix, p, n);
	return 0;
}

/* ---- connection ---- */

int ir_httpc_connect(const struct ir_url *u, uint64_t deadline_ns)
{
	char port[8];
	snprintf(port, sizeof(port), "%u", (unsigned)u->port);
	struct addrinfo hints = {
	    .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res;
	int gr = getaddrinfo(u->host, port, &hints, &res);
	if (gr)
		return gr == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
	int rc = -ECONNREFUSED;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			if (errno != EINPROGRESS) {
				rc = -errno;
				close(fd);
				continue;
			}
			rc = wait_fd(fd, POLLOUT, deadline_ns);
			int soerr = 0;
			socklen_t sl = sizeof(soerr);
			if (!rc && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr)
				rc = -soerr;
			if (rc) {
				close(fd);
				if (rc == -ETIMEDOUT)
					break;
				continue;
			}
		}
		int fl = fcntl(fd, F_GETFL);
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		freeaddrinfo(res);
		return fd;
	}
	freeaddrinfo(res);
	return rc;
}

int ir_httpc_open(struct ir_httpc **cp, int fd)
{
	struct ir_httpc *c = calloc(1, sizeof(*c));
	if (c) {
		c->cap = IR_HTTPC_MAX_HEAD;
		c->buf = malloc(c->cap);
		c->hdrs = calloc(IR_HTTPC_MAX_HEADERS, sizeof(*c->hdrs));
	}
	if (!c || !c->buf || !c->hdrs) {
		if (c) {
			free(c->buf);
			free(c->hdrs);
			free(c);
		}
		close(fd);
		return -ENOMEM;
	}
	c->fd = fd;
	c->req_left = -1;
	*cp = c;
	return 0;
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
	if (c->len > c->off)
		return false;
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	return poll(&p, 1, 0) == 0;
}

/* ---- sending ---- */

static int send_iov(struct ir_httpc *c, struct iovec *iov, int n)
{
	while (n > 0) {
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
		size_t left = (size_t)w;
		while (n > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

int ir_httpc_send_head(struct ir_httpc *c, const char *head, size_t len, int64_t body_len)
{
	if (len < 4 || memcmp(head + len - 4, "\r\n\r\n", 4) != 0)
		return -EINVAL;
	char frame[64] = "";
	if (body_len >= 0)
		snprintf(frame, sizeof(frame), "Content-Length: %lld\r\n", (long long)body_len);
	else if (body_len == IR_HTTPC_CHUNKED)
		snprintf(frame, sizeof(frame), "Transfer-Encoding: chunked\r\n");
	c->req_chunked = body_len == IR_HTTPC_CHUNKED;
	c->req_left = body_len >= 0 ? body_len : -1;
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

/* Read more into the buffer (compacting first).  0, -ECONNRESET at EOF,
 * -E2BIG when the buffer is full of unconsumed bytes, or -errno. */
static int fill(struct ir_httpc *c)
{
	if (c->off == c->len) {
		c->off = c->len = 0;
	} else if (c->len == c->cap && c->off) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	if (c->len == c->cap)
		return -E2BIG;
	for (;;) {
		ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
		if (n > 0) {
			c->len += (size_t)n;
			return 0;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		int rc = wait_fd(c->fd, POLLIN, c->deadline_ns);
		if (rc)
			return rc;
	}
}

static bool is_tchar(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
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
	while (v && *v) {
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

/* Parse the head in buf[off, end) (end just past "\r\n\r\n"). */
static int parse_head(struct ir_httpc *c, char *p, char *end, bool head_request,
		      struct ir_httpc_resp *r)
{
	memset(r, 0, sizeof(*r));
	char *eol = memchr(p, '\r', (size_t)(end - p));
	if (!eol || eol[1] != '\n')
		return -EPROTO;
	*eol = '\0';
	int minor;
	if (strncmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ')
		return -EPROTO;
	minor = p[7] - '0';
	if (p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' ||
	    (p[12] != ' ' && p[12] != '\0'))
		return -EPROTO;
	r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	r->reason = p[12] ? p + 13 : "";
	r->headers = c->hdrs;
	p = eol + 2;
	while (p < end - 2) {
		eol = memchr(p, '\r', (size_t)(end - p));
		if (!eol || eol[1] != '\n')
			return -EPROTO;
		if (*p == ' ' || *p == '\t')
			return -EPROTO; /* obs-fold */
		char *colon = p;
		while (colon < eol && is_tchar(*colon))
			colon++;
		if (colon == p || colon == eol || *colon != ':')
			return -EPROTO;
		if (r->nheaders == IR_HTTPC_MAX_HEADERS)
			return -E2BIG;
		*colon = '\0';
		c->hdrs[r->nheaders].name = p;
		c->hdrs[r->nheaders].value = trim(colon + 1, eol);
		r->nheaders++;
		p = eol + 2;
	}
	/* Framing (RFC 9112 §6.3). */
	const char *te = NULL;
	int64_t cl = -1;
	bool conn_close = false, conn_keep = false;
	for (size_t i = 0; i < r->nheaders; i++) {
		const char *n = c->hdrs[i].name, *v = c->hdrs[i].value;
		if (strcasecmp(n, "Transfer-Encoding") == 0) {
			te = v;
		} else if (strcasecmp(n, "Content-Length") == 0) {
			if (!*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 18)
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
	if (head_request || r->status < 200 || r->status == 204 || r->status == 304) {
		r->content_length = 0;
		c->body = B_NONE;
	} else if (te && last_chunked(te)) {
		r->chunked = true;
		r->content_length = -1;
		c->body = B_CHUNKED;
		c->cstate = C_SIZE;
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
	for (;;) {
		char *start = c->buf + c->off;
		char *end = memmem(start, c->len - c->off, "\r\n\r\n", 4);
		if (!end) {
			if (c->len - c->off >= IR_HTTPC_MAX_HEAD)
				return -E2BIG;
			int rc = fill(c);
			if (rc)
				return rc;
			continue;
		}
		end += 4;
		c->off = (size_t)(end - c->buf);
		int rc = parse_head(c, start, end, head_request, r);
		if (rc)
			return rc;
		if (r->status >= 100 && r->status < 200 && r->status != 101)
			continue; /* interim (100 Continue, 103 Early Hints) */
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
	if (avail) {
		size_t n = avail < max ? avail : max;
		memcpy(buf, c->buf + c->off, n);
		c->off += n;
		return (ssize_t)n;
	}
	for (;;) {
		ssize_t n = recv(c->fd, buf, max, MSG_DONTWAIT);
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

/* One CRLF-terminated line (at most LINE_MAX_ bytes) from the buffer,
 * NUL-terminated in place. */
static int read_line(struct ir_httpc *c, char **line)
{
	for (;;) {
		char *s = c->buf + c->off;
		size_t avail = c->len - c->off;
		char *nl = memchr(s, '\n', avail < LINE_MAX_ ? avail : LINE_MAX_);
		if (nl) {
			if (nl == s || nl[-1] != '\r')
				return -EPROTO;
			nl[-1] = '\0';
			c->off = (size_t)(nl + 1 - c->buf);
			*line = s;
			return 0;
		}
		if (avail >= LINE_MAX_)
			return -EPROTO;
		int rc = fill(c);
		if (rc)
			return rc;
	}
}

ssize_t ir_httpc_read_body(struct ir_httpc *c, void *buf, size_t max)
{
	if (!max)
		return -EINVAL;
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
		ssize_t n = take(c, buf, c->left < max ? (size_t)c->left : max);
		if (n == 0)
			return -ECONNRESET;
		if (n > 0) {
			c->left -= (uint64_t)n;
			if (!c->left)
				c->body = B_NONE;
		}
		return n;
	}
	case B_CHUNKED:
		break;
	}
	for (;;) {
		char *line;
		int rc;
		switch (c->cstate) {
		case C_SIZE: {
			if ((rc = read_line(c, &line)))
				return rc;
			char *e;
			if (!isxdigit((unsigned char)*line))
				return -EPROTO;
			errno = 0;
			unsigned long long v = strtoull(line, &e, 16);
			if (errno || (*e && *e != ';' && *e != ' ' && *e != '\t'))
				return -EPROTO;
			c->left = v;
			c->cstate = v ? C_DATA : C_TRAILER;
			break;
		}
		case C_DATA: {
			ssize_t n = take(c, buf, c->left < max ? (size_t)c->left : max);
			if (n == 0)
				return -ECONNRESET;
			if (n > 0) {
				c->left -= (uint64_t)n;
				if (!c->left)
					c->cstate = C_CRLF;
			}
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
			break;
		}
	}
}

bool ir_httpc_body_done(const struct ir_httpc *c)
{
	return c->body == B_NONE;
}
