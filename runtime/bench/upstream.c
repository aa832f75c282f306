/* upstream.c - iroute-bench-upstream: a small HTTP/1.1 server that plays a
 * function's own HTTP server behind the watchdog's http mode, for the
 * watchdog benchmark (a fixed "OK" answer) and the http-mode tests.
 *
 * Why this design: a thread per connection with blocking I/O, as the
 * watchdog itself: the benchmark's clients keep their connections alive, so
 * threads are made once per run, and the code stays short enough to trust
 * as a reference point (the benchmark prints its figures next to ours).
 *
 * Usage: iroute-bench-upstream [--port N] [--host ADDR]  (port 8082,
 * 127.0.0.1).  Endpoints (path before '?'):
 *   /                 200 text/plain "OK\n" (also any unlisted path)
 *   /echo             the request body back (chunked when it came chunked,
 *                     streamed as it arrives), its Content-Type copied
 *   /headers          "METHOD TARGET\n" then every header "Name: value\n"
 *   /status/NNN       that status, "status NNN\n"
 *   /sleep?ms=N       200 "slept\n" after N ms
 *   /sse?n=N&ms=M     N events "data: i\n\n", one chunk each, M ms apart
 *   /ndjson?n=N&ms=M  the same as {"i":i} lines, application/x-ndjson
 *   /big?bytes=N      N bytes of 'a'..'z' repeated
 *   /exit             200 "bye\n", then the process exits with status 3
 * SIGTERM: exit 0.  Heads over 64 KiB: 431 and close.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
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

#define HEAD_MAX (64 * 1024)

struct conn {
	int fd;
	char buf[HEAD_MAX];
	size_t off, len;
};

static bool send_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		s += w;
		n -= (size_t)w;
	}
	return true;
}

/* More bytes into the buffer; false at EOF or error. */
static bool fill(struct conn *c)
{
	if (c->off == c->len)
		c->off = c->len = 0;
	if (c->len == sizeof(c->buf)) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
		if (c->len == sizeof(c->buf))
			return false;
	}
	for (;;) {
		ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		c->len += (size_t)n;
		return true;
	}
}

/* Up to @max body bytes (buffered first). */
static ssize_t take(struct conn *c, char *out, size_t max)
{
	if (c->len == c->off && !fill(c))
		return -1;
	size_t n = c->len - c->off < max ? c->len - c->off : max;
	memcpy(out, c->buf + c->off, n);
	c->off += n;
	return (ssize_t)n;
}

static bool line(struct conn *c, char *out, size_t max)
{
	for (;;) {
		char *s = c->buf + c->off, *nl = memchr(s, '\n', c->len - c->off);
		if (nl) {
			size_t n = (size_t)(nl - s);
			if (n && s[n - 1] == '\r')
				n--;
			if (n >= max)
				return false;
			memcpy(out, s, n);
			out[n] = '\0';
			c->off = (size_t)(nl + 1 - c->buf);
			return true;
		}
		if (!fill(c))
			return false;
	}
}

static void reply(int fd, int status, const char *type, const char *body, size_t len, bool close_)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n",
			 status, type, len, close_ ? "Connection: close\r\n" : "");
	struct iovec iov[2] = {{head, (size_t)n}, {(void *)body, len}};
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
	ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
	if (w >= 0 && (size_t)w < (size_t)n + len) {
		size_t done = (size_t)w;
		if (done < (size_t)n) {
			if (send_all(fd, head + done, (size_t)n - done))
				send_all(fd, body, len);
		} else
			send_all(fd, body + (done - (size_t)n), len - (done - (size_t)n));
	}
}

static bool chunk(int fd, const char *p, size_t n)
{
	char size[24];
	int k = snprintf(size, sizeof(size), "%zx\r\n", n);
	return send_all(fd, size, (size_t)k) && send_all(fd, p, n) && send_all(fd, "\r\n", 2);
}

static long qparam(const char *query, const char *name, long def)
{
	size_t nl = strlen(name);
	for (const char *p = query; p && *p;) {
		if (!strncmp(p, name, nl) && p[nl] == '=')
			return strtol(p + nl + 1, NULL, 10);
		p = strchr(p, '&');
		if (p)
			p++;
	}
	return def;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* One request; false to close the connection. */
static bool serve_one(struct conn *c)
{
	char *s, *end;
	for (;;) {
		s = c->buf + c->off;
		end = memmem(s, c->len - c->off, "\r\n\r\n", 4);
		if (end)
			break;
		if (c->len - c->off >= HEAD_MAX) {
			reply(c->fd, 431, "text/plain", "head too large\n", 15, true);
			return false;
		}
		if (!fill(c))
			return false;
	}
	size_t hlen = (size_t)(end + 4 - s);
	char head[HEAD_MAX + 1];
	memcpy(head, s, hlen);
	head[hlen] = '\0';
	c->off += hlen;

	char method[16], target[4096], version[16];
	if (sscanf(head, "%15s %4095s %15s", method, target, version) != 3) {
		reply(c->fd, 400, "text/plain", "bad request line\n", 17, true);
		return false;
	}
	bool keep = strcmp(version, "HTTP/1.1") == 0;
	long long clen = -1;
	bool chunked = false;
	const char *ctype = "application/octet-stream";
	char ctbuf[256];
	char *hdrs = strstr(head, "\r\n") + 2;
	for (char *h = hdrs; *h && strncmp(h, "\r\n", 2);) {
		char *e = strstr(h, "\r\n");
		char *colon = memchr(h, ':', (size_t)(e - h));
		if (colon) {
			size_t nl = (size_t)(colon - h);
			const char *v = colon + 1;
			while (*v == ' ')
				v++;
			size_t vl = (size_t)(e - v);
			if (nl == 14 && !strncasecmp(h, "Content-Length", 14))
				clen = strtoll(v, NULL, 10);
			else if (nl == 17 && !strncasecmp(h, "Transfer-Encoding", 17))
				chunked = vl >= 7 && !strncasecmp(v + vl - 7, "chunked", 7);
			else if (nl == 10 && !strncasecmp(h, "Connection", 10))
				keep = !(vl >= 5 && !strncasecmp(v, "close", 5)) &&
				       (keep || (vl >= 10 && !strncasecmp(v, "keep-alive", 10)));
			else if (nl == 12 && !strncasecmp(h, "Content-Type", 12) &&
				 vl < sizeof(ctbuf)) {
				memcpy(ctbuf, v, vl);
				ctbuf[vl] = '\0';
				ctype = ctbuf;
			}
		}
		h = e + 2;
	}
	char *query = strchr(target, '?');
	char path[4096];
	size_t pl = query ? (size_t)(query - target) : strlen(target);
	memcpy(path, target, pl);
	path[pl] = '\0';
	if (query)
		query++;
	bool echo = !strcmp(path, "/echo");

	/* The body: echoed as it arrives, or read and dropped. */
	char buf[65536];
	if (echo) {
		char h2[256];
		int n = snprintf(h2, sizeof(h2), "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n", ctype);
		if (chunked)
			n += snprintf(h2 + n, sizeof(h2) - (size_t)n,
				      "Transfer-Encoding: chunked\r\n\r\n");
		else
			n += snprintf(h2 + n, sizeof(h2) - (size_t)n,
				      "Content-Length: %lld\r\n\r\n", clen > 0 ? clen : 0);
		if (!send_all(c->fd, h2, (size_t)n))
			return false;
	}
	if (chunked) {
		char l[1100];
		for (;;) {
			if (!line(c, l, sizeof(l)))
				return false;
			unsigned long long sz = strtoull(l, NULL, 16);
			if (!sz)
				break;
			while (sz) {
				ssize_t n = take(c, buf, sz < sizeof(buf) ? sz : sizeof(buf));
				if (n <= 0)
					return false;
				if (echo && !chunk(c->fd, buf, (size_t)n))
					return false;
				sz -= (unsigned long long)n;
			}
			if (!line(c, l, sizeof(l)))
				return false;
		}
		while (line(c, buf, sizeof(buf)) && buf[0])
			; /* trailers */
		if (echo && !send_all(c->fd, "0\r\n\r\n", 5))
			return false;
	} else if (clen > 0) {
		while (clen) {
			ssize_t n =
			    take(c, buf, (size_t)clen < sizeof(buf) ? (size_t)clen : sizeof(buf));
			if (n <= 0)
				return false;
			if (echo && !send_all(c->fd, buf, (size_t)n))
				return false;
			clen -= n;
		}
	}
	if (echo)
		return keep;

	if (!strcmp(path, "/headers")) {
		size_t n = (size_t)snprintf(buf, sizeof(buf), "%s %s\n", method, target);
		for (char *h = hdrs; *h && strncmp(h, "\r\n", 2) && n < sizeof(buf) - 2;) {
			char *e = strstr(h, "\r\n");
			size_t l = (size_t)(e - h);
			if (n + l + 1 >= sizeof(buf))
				break;
			memcpy(buf + n, h, l);
			n += l;
			buf[n++] = '\n';
			h = e + 2;
		}
		reply(c->fd, 200, "text/plain", buf, n, !keep);
	} else if (!strncmp(path, "/status/", 8)) {
		int st = atoi(path + 8);
		if (st < 100 || st > 599)
			st = 400;
		int n = snprintf(buf, sizeof(buf), "status %d\n", st);
		reply(c->fd, st, "text/plain", buf, (size_t)n, !keep);
	} else if (!strcmp(path, "/sleep")) {
		sleep_ms(qparam(query, "ms", 0));
		reply(c->fd, 200, "text/plain", "slept\n", 6, !keep);
	} else if (!strcmp(path, "/sse") || !strcmp(path, "/ndjson")) {
		bool sse = !strcmp(path, "/sse");
		long n = qparam(query, "n", 3), ms = qparam(query, "ms", 100);
		int k = snprintf(buf, sizeof(buf),
				 "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: "
				 "chunked\r\n\r\n",
				 sse ? "text/event-stream" : "application/x-ndjson");
		if (!send_all(c->fd, buf, (size_t)k))
			return false;
		for (long i = 0; i < n; i++) {
			if (i)
				sleep_ms(ms);
			k = snprintf(buf, sizeof(buf), sse ? "data: %ld\n\n" : "{\"i\":%ld}\n", i);
			if (!chunk(c->fd, buf, (size_t)k))
				return false;
		}
		if (!send_all(c->fd, "0\r\n\r\n", 5))
			return false;
	} else if (!strcmp(path, "/big")) {
		long long total = qparam(query, "bytes", 0);
		int k = snprintf(buf, sizeof(buf),
				 "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
				 "Content-Length: %lld\r\n\r\n",
				 total);
		if (!send_all(c->fd, buf, (size_t)k))
			return false;
		char pat[65520]; /* a multiple of 26 */
		for (size_t i = 0; i < sizeof(pat); i++)
			pat[i] = (char)('a' + i % 26);
		while (total > 0) {
			size_t n = (size_t)total < sizeof(pat) ? (size_t)total : sizeof(pat);
			if (!send_all(c->fd, pat, n))
				return false;
			total -= (long long)n;
		}
	} else if (!strcmp(path, "/exit")) {
		reply(c->fd, 200, "text/plain", "bye\n", 4, true);
		shutdown(c->fd, SHUT_WR);
		sleep_ms(50);
		_exit(3);
	} else {
		reply(c->fd, 200, "text/plain", "OK\n", 3, !keep);
	}
	return keep;
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	while (serve_one(c))
		;
	close(c->fd);
	free(c);
	return NULL;
}

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	int port = getenv("port") ? atoi(getenv("port")) : 8082;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--host") && i + 1 < argc)
			host = argv[++i];
		else {
			fprintf(stderr, "usage: %s [--port N] [--host ADDR]\n", argv[0]);
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_term);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
		fprintf(stderr, "iroute-bench-upstream: --host %s: not an IPv4 address\n", host);
		return 2;
	}
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 1024) < 0) {
		fprintf(stderr, "iroute-bench-upstream: %s:%d: %s\n", host, port, strerror(errno));
		return 1;
	}
	fprintf(stderr, "listening on %s:%d\n", host, port);
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 512 * 1024);
	for (;;) {
		int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
				continue;
			fprintf(stderr, "accept: %s\n", strerror(errno));
			return 1;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn *c = malloc(sizeof(*c));
		pthread_t t;
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->off = c->len = 0;
		if (pthread_create(&t, &at, conn_main, c) != 0) {
			close(fd);
			free(c);
		}
	}
}
