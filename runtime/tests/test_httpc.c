/* test_httpc.c - the HTTP/1.1 client of the http mode, byte-exact against
 * a scripted server: the other end of a socketpair (driven from the test
 * or from a thread) or a loopback listener on port 0.  URL parsing,
 * connecting (refused, listening, deadline), request framing on the wire,
 * response framing (length, chunked and both fed one byte per read, until
 * close, no body), 1xx skipped, keep-alive flags and reuse for two
 * requests, a body handed over piece by piece as it arrives, large bodies
 * in few reads, deadlines, limits and malformed input.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "httpc.h"
#include "tests.h"

static int sv[2] = {-1, -1}; /* sv[0] belongs to c, sv[1] is the server's end */
static struct ir_httpc *c;

static void setup(void)
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(ir_httpc_open(&c, sv[0]), 0);
}

static void teardown(void)
{
	ir_httpc_close(c);
	c = NULL;
	if (sv[1] >= 0)
		close(sv[1]);
	sv[1] = -1;
}

static void peer_write_n(const char *s, size_t n)
{
	ck_assert_int_eq(write(sv[1], s, n), (ssize_t)n);
}

static void peer_write(const char *s)
{
	peer_write_n(s, strlen(s));
}

static void peer_close(void)
{
	close(sv[1]);
	sv[1] = -1;
}

/* What the client has written so far (it is in the socket once the send
 * call returned), NUL-terminated. */
static char *peer_read(void)
{
	static char buf[65536];
	ssize_t n = recv(sv[1], buf, sizeof(buf) - 1, MSG_DONTWAIT);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define MS(x) ((uint64_t)(x)*1000000ull)

/* Read the whole body into @out (NUL-terminated); its length or the error. */
static ssize_t body_all(struct ir_httpc *x, char *out, size_t cap)
{
	size_t n = 0;
	for (;;) {
		ssize_t r = ir_httpc_read_body(x, out + n, cap - 1 - n);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	out[n] = '\0';
	return (ssize_t)n;
}

/* ---- URL ---- */

START_TEST(url_parse_good)
{
	struct ir_url u;
	char err[256] = "";
	ck_assert_int_eq(ir_url_parse("http://127.0.0.1:5000", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.host, "127.0.0.1");
	ck_assert_uint_eq(u.port, 5000);
	ck_assert_str_eq(u.prefix, "");
	ck_assert_int_eq(ir_url_parse("HTTP://fn.openfaas-fn/api/v1/", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.host, "fn.openfaas-fn");
	ck_assert_uint_eq(u.port, 80);
	ck_assert_str_eq(u.prefix, "/api/v1");
	ck_assert_int_eq(ir_url_parse("http://[::1]:8080/x//", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.host, "::1");
	ck_assert_uint_eq(u.port, 8080);
	ck_assert_str_eq(u.prefix, "/x");
	ck_assert_int_eq(ir_url_parse("http://[::ffff:127.0.0.1]", &u, NULL, 0), 0);
	ck_assert_str_eq(u.host, "::ffff:127.0.0.1");
	ck_assert_uint_eq(u.port, 80);
	ck_assert_int_eq(ir_url_parse("http://my_host:65535/", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.host, "my_host");
	ck_assert_uint_eq(u.port, 65535);
	ck_assert_str_eq(u.prefix, "");
	ck_assert_str_eq(err, ""); /* untouched on success */
}
END_TEST

START_TEST(url_parse_bad)
{
	static const struct {
		const char *url, *why;
	} bad[] = {
	    {"https://x", "https is not supported"},
	    {"127.0.0.1:5000", "not an http:// URL"},
	    {"ftp://x/", "not an http:// URL"},
	    {"http://", "no host"},
	    {"http://:80", "no host"},
	    {"http:///p", "no host"},
	    {"http://[]:80", "no host"},
	    {"http://x:0", "bad port (want 1-65535)"},
	    {"http://x:70000", "bad port"},
	    {"http://x:", "bad port"},
	    {"http://x:80a/", "bad port"},
	    {"http://x:-1", "bad port"},
	    {"http://u@x", "user information is not supported"},
	    {"http://u:pw@x:80/", "user information is not supported"},
	    {"http://x/p?q=1", "query and fragment are not supported"},
	    {"http://x#f", "query and fragment are not supported"},
	    {"http://[::1", "'[' without ']'"},
	    {"http://[::1]x/", "unexpected character after ']'"},
	    {"http://[zz]/", "bad IPv6 address"},
	    {"http://[127.0.0.1]/", "bad IPv6 address"},
	    {"http://a b/", "bad character in the host name"},
	    {"http://x/a b", "space or control character in the path"},
	    {"http://x/a\r\nHost: y", "space or control character in the path"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ir_url u;
		char err[256] = "";
		ck_assert_msg(ir_url_parse(bad[i].url, &u, err, sizeof(err)) == -EINVAL,
			      "%s accepted", bad[i].url);
		ck_assert_msg(strstr(err, bad[i].why), "%s: got \"%s\", want \"%s\"", bad[i].url,
			      err, bad[i].why);
		char want[64];
		snprintf(want, sizeof(want), "\"%s\": ", bad[i].url);
		ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s: not quoted: %s",
			      bad[i].url, err);
	}
	/* A host of 256 bytes does not fit; a NULL message buffer is fine. */
	char longhost[300] = "http://";
	memset(longhost + 7, 'a', 256);
	struct ir_url u;
	char err[400];
	ck_assert_int_eq(ir_url_parse(longhost, &u, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "host name too long"));
	ck_assert_int_eq(ir_url_parse("https://x", &u, NULL, 0), -EINVAL);
}
END_TEST

/* ---- connect ---- */

/* A loopback TCP socket bound to port 0; its port in @port. */
static int bound_socket(uint16_t *port)
{
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(ls, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t len = sizeof(a);
	ck_assert_int_eq(getsockname(ls, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return ls;
}

START_TEST(connect_refused)
{
	struct ir_url u = {.host = "127.0.0.1"};
	int ls = bound_socket(&u.port); /* bound, not listening */
	ck_assert_int_eq(ir_httpc_connect(&u, 0), -ECONNREFUSED);
	ck_assert_int_eq(ir_httpc_connect(&u, now_ns() + MS(1000)), -ECONNREFUSED);
	close(ls);
}
END_TEST

START_TEST(connect_listening)
{
	struct ir_url u = {.host = "127.0.0.1"};
	int ls = bound_socket(&u.port);
	ck_assert_int_eq(listen(ls, 4), 0);
	int fd = ir_httpc_connect(&u, now_ns() + MS(2000));
	ck_assert_int_ge(fd, 0);
	int fl = fcntl(fd, F_GETFL);
	ck_assert_int_eq(fl & O_NONBLOCK, 0); /* back to blocking */
	ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	int one = 0;
	socklen_t sl = sizeof(one);
	ck_assert_int_eq(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, &sl), 0);
	ck_assert_int_eq(one, 1);
	int a = accept(ls, NULL, NULL);
	ck_assert_int_ge(a, 0);
	ck_assert_int_eq(write(fd, "x", 1), 1);
	char ch = 0;
	ck_assert_int_eq(read(a, &ch, 1), 1);
	ck_assert_int_eq(ch, 'x');
	close(a);
	close(fd);
	/* By name (resolves to 127.0.0.1 and/or ::1; the refused one is
	 * skipped). */
	struct ir_url n = {.host = "localhost", .port = u.port};
	fd = ir_httpc_connect(&n, now_ns() + MS(2000));
	ck_assert_int_ge(fd, 0);
	close(fd);
	close(ls);
}
END_TEST

/* A listener whose accept queue is full drops SYNs: connect hangs until
 * the deadline. */
START_TEST(connect_deadline)
{
	struct ir_url u = {.host = "127.0.0.1"};
	int ls = bound_socket(&u.port);
	ck_assert_int_eq(listen(ls, 0), 0);
	int fd1 = ir_httpc_connect(&u, now_ns() + MS(1000)); /* fills the queue */
	ck_assert_int_ge(fd1, 0);
	uint64_t t0 = now_ns();
	ck_assert_int_eq(ir_httpc_connect(&u, t0 + MS(200)), -ETIMEDOUT);
	uint64_t took = (now_ns() - t0) / 1000000;
	ck_assert_msg(took >= 190 && took < 800, "timed out after %llu ms",
		      (unsigned long long)took);
	/* A deadline already passed fails at once. */
	ck_assert_int_eq(ir_httpc_connect(&u, now_ns() - 1), -ETIMEDOUT);
	close(fd1);
	close(ls);
}
END_TEST

/* ---- request framing ---- */

static const char *post = "POST /x HTTP/1.1\r\nHost: h\r\n\r\n";

START_TEST(request_content_length)
{
	ck_assert_int_eq(ir_httpc_send_head(c, post, strlen(post), 5), 0);
	ck_assert_int_eq(ir_httpc_send_body(c, "hel", 3), 0);
	ck_assert_int_eq(ir_httpc_send_body(c, "lo!", 3), -EPROTO); /* over the length */
	ck_assert_int_eq(ir_httpc_send_body(c, "", 0), 0);
	ck_assert_int_eq(ir_httpc_send_body(c, "lo", 2), 0);
	ck_assert_int_eq(ir_httpc_end_body(c), 0);
	ck_assert_str_eq(peer_read(),
			 "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello");
	/* Content-Length: 0. */
	ck_assert_int_eq(ir_httpc_send_head(c, post, strlen(post), 0), 0);
	ck_assert_int_eq(ir_httpc_send_body(c, "x", 1), -EPROTO);
	ck_assert_int_eq(ir_httpc_end_body(c), 0);
	ck_assert_str_eq(peer_read(), "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
	/* Announced more than sent. */
	ck_assert_int_eq(ir_httpc_send_head(c, post, strlen(post), 4), 0);
	ck_assert_int_eq(ir_httpc_send_body(c, "ab", 2), 0);
	ck_assert_int_eq(ir_httpc_end_body(c), -EPROTO);
	ck_assert_str_eq(peer_read(), "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab");
}
END_TEST

START_TEST(request_chunked)
{
	ck_assert_int_eq(ir_httpc_send_head(c, post, strlen(post), IR_HTTPC_CHUNKED), 0);
	ck_assert_int_eq(ir_httpc_send_body(c, "hello world, ", 13), 0);
	ck_assert_int_eq(ir_httpc_send_body(c, "", 0), 0); /* would end the body: nothing */
	ck_assert_int_eq(ir_httpc_send_body(c, "bye", 3), 0);
	char big[300];
	memset(big, 'z', sizeof(big));
	ck_assert_int_eq(ir_httpc_send_body(c, big, sizeof(big)), 0);
	ck_assert_int_eq(ir_httpc_end_body(c), 0);
	ck_assert_int_eq(ir_httpc_end_body(c), 0); /* no second last-chunk */
	char want[1024];
	snprintf(want, sizeof(want),
		 "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "d\r\nhello world, \r\n3\r\nbye\r\n12c\r\n%.300s\r\n0\r\n\r\n",
		 big);
	ck_assert_str_eq(peer_read(), want);
}
END_TEST

START_TEST(request_no_body)
{
	const char *get = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
	ck_assert_int_eq(ir_httpc_send_head(c, get, strlen(get), IR_HTTPC_NO_BODY), 0);
	ck_assert_int_eq(ir_httpc_send_body(c, "x", 1), -EPROTO);
	ck_assert_int_eq(ir_httpc_end_body(c), 0);
	ck_assert_str_eq(peer_read(), get);
	/* A head without its empty line, a framing value below -2. */
	ck_assert_int_eq(ir_httpc_send_head(c, "GET / HTTP/1.1\r\n", 16, IR_HTTPC_NO_BODY),
			 -EINVAL);
	ck_assert_int_eq(ir_httpc_send_head(c, get, strlen(get), -3), -EINVAL);
	ck_assert_str_eq(peer_read(), "");
}
END_TEST

/* ---- responses ---- */

START_TEST(response_content_length)
{
	struct ir_httpc_resp r;
	char body[256];
	peer_write("HTTP/1.1 201 Created\r\nX-A:  v  \r\nx-empty:\r\n"
		   "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello");
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	ck_assert_int_eq(r.status, 201);
	ck_assert_str_eq(r.reason, "Created");
	ck_assert_uint_eq(r.nheaders, 4);
	ck_assert_str_eq(r.headers[0].name, "X-A");
	ck_assert_str_eq(r.headers[0].value, "v");
	ck_assert_str_eq(ir_httpc_header(&r, "x-a"), "v");
	ck_assert_str_eq(ir_httpc_header(&r, "X-EMPTY"), "");
	ck_assert_ptr_null(ir_httpc_header(&r, "X-None"));
	ck_assert_int_eq(r.content_length, 5);
	ck_assert(r.keep_alive && !r.chunked && !r.until_close);
	ck_assert(!ir_httpc_body_done(c));
	ck_assert_int_eq(ir_httpc_read_body(c, body, 0), -EINVAL);
	ck_assert_int_eq(body_all(c, body, sizeof(body)), 5);
	ck_assert_str_eq(body, "hello");
	ck_assert(ir_httpc_body_done(c));
	ck_assert_int_eq(ir_httpc_read_body(c, body, sizeof(body)), 0); /* stays at the end */
	/* No reason phrase. */
	peer_write("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n");
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.reason, "");
	ck_assert_int_eq(r.content_length, 0);
	ck_assert(ir_httpc_body_done(c));
	ck_assert(ir_httpc_idle_ok(c));
}
END_TEST

/* The headers point into the connection's buffer: they must survive a body
 * that passes through that buffer (chunked, larger than the buffer). */
START_TEST(headers_survive_body)
{
	struct ir_httpc_resp r;
	peer_write("HTTP/1.1 200 OK\r\nX-Keep: still here\r\nTransfer-Encoding: chunked\r\n\r\n");
	static char chunk[4096 + 16];
	size_t total = 0;
	/* 40 chunks of 4 KiB = 160 KiB, written from here: the socket holds it. */
	int big = 4 << 20;
	ck_assert_int_eq(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big)), 0);
	for (int i = 0; i < 40; i++) {
		int n = snprintf(chunk, sizeof(chunk), "1000\r\n");
		memset(chunk + n, 'a' + i % 26, 4096);
		memcpy(chunk + n + 4096, "\r\n", 2);
		peer_write_n(chunk, (size_t)n + 4098);
	}
	peer_write("0\r\n\r\n");
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	char buf[1000];
	ssize_t n;
	while ((n = ir_httpc_read_body(c, buf, sizeof(buf))) > 0)
		total += (size_t)n;
	ck_assert_int_eq(n, 0);
	ck_assert_uint_eq(total, 40 * 4096);
	ck_assert_str_eq(r.reason, "OK");
	ck_assert_str_eq(ir_httpc_header(&r, "X-Keep"), "still here");
	ck_assert_str_eq(ir_httpc_header(&r, "Transfer-Encoding"), "chunked");
}
END_TEST

/* ---- a server thread that feeds the client one byte per read ---- */

struct trickle {
	int fd, client_fd;
	const char *script;
	int ok;
};

/* Writes one byte, then waits until the client has read it, so that every
 * read the client makes returns exactly one byte. */
static void *trickle_server(void *arg)
{
	struct trickle *t = arg;
	for (const char *p = t->script; *p; p++) {
		if (write(t->fd, p, 1) != 1)
			return NULL;
		for (int i = 0; i < 20000; i++) {
			int q = -1;
			if (ioctl(t->client_fd, FIONREAD, &q) < 0 || q == 0)
				break;
			usleep(100);
		}
	}
	t->ok = 1;
	return NULL;
}

START_TEST(response_chunked_byte_by_byte)
{
	struct trickle t = {.fd = sv[1],
			    .client_fd = sv[0],
			    .script =
				"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
				"5;ext=1;q=\"a b\"\r\nhello\r\n6 ; x\r\n world\r\n"
				"A\r\n, chunked!\r\n0;last\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n"
				"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nend"};
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, trickle_server, &t), 0);
	ir_httpc_set_deadline(c, now_ns() + MS(20000));
	struct ir_httpc_resp r;
	char body[256];
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	ck_assert(r.chunked && r.keep_alive && !r.until_close);
	ck_assert_int_eq(r.content_length, -1);
	ck_assert_int_eq(body_all(c, body, sizeof(body)), 21);
	ck_assert_str_eq(body, "hello world, chunked!");
	ck_assert(ir_httpc_body_done(c));
	/* The trailers were consumed, not taken for the next head. */
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	ck_assert_int_eq(r.content_length, 3);
	ck_assert_ptr_null(ir_httpc_header(&r, "X-Trailer"));
	ck_assert_int_eq(body_all(c, body, sizeof(body)), 3);
	ck_assert_str_eq(body, "end");
	pthread_join(th, NULL);
	ck_assert_int_eq(t.ok, 1);
}
END_TEST

START_TEST(response_length_byte_by_byte)
{
	struct trickle t = {.fd = sv[1],
			    .client_fd = sv[0],
			    .script =
				"HTTP/1.1 100 Continue\r\n\r\n"
				"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX: y\r\n\r\nhello world"};
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, trickle_server, &t), 0);
	ir_httpc_set_deadline(c, now_ns() + MS(20000));
	struct ir_httpc_resp r;
	char body[256];
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(ir_httpc_header(&r, "X"), "y");
	/* One byte per read: read_body returns each as it comes. */
	ck_assert_int_eq(ir_httpc_read_body(c, body, sizeof(body)), 1);
	ck_assert_int_eq(body[0], 'h');
	ck_assert_int_eq(body_all(c, body + 1, sizeof(body) - 1), 10);
	ck_assert_str_eq(body, "hello world");
	pthread_join(th, NULL);
	ck_assert_int_eq(t.ok, 1);
}
END_TEST

START_TEST(response_until_close)
{
	struct ir_httpc_resp r;
	char body[256];
	/* HTTP/1.0 without a length. */
	peer_write("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nall of it");
	peer_close();
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	ck_assert(r.until_close && !r.keep_alive && !r.chunked);
	ck_assert_int_eq(r.content_length, -1);
	ck_assert_int_eq(body_all(c, body, sizeof(body)), 9);
	ck_assert_str_eq(body, "all of it");
	ck_assert(ir_httpc_body_done(c));
}
END_TEST

/* A Transfer-Encoding whose last coding is not chunked: until close, and
 * the Content-Length beside it is ignored. */
START_TEST(response_te_not_chunked)
{
	struct ir_httpc_resp r;
	char body[256];
	peer_write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\nContent-Length: 2\r\n"
		   "\r\nraw bytes");
	peer_close();
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	ck_assert(r.until_close && !r.keep_alive && !r.chunked);
	ck_assert_int_eq(body_all(c, body, sizeof(body)), 9);
	ck_assert_str_eq(body, "raw bytes");
}
END_TEST

START_TEST(response_no_body)
{
	struct ir_httpc_resp r;
	char body[64];
	/* 204, 304 and the answer to HEAD carry no body whatever they say:
	 * the next head follows at once. */
	peer_write("HTTP/1.1 204 No Content\r\n\r\n"
		   "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"
		   "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"
		   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		   "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok");
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	ck_assert_int_eq(r.status, 204);
	ck_assert_int_eq(r.content_length, 0);
	ck_assert(r.keep_alive && ir_httpc_body_done(c));
	ck_assert_int_eq(ir_httpc_read_body(c, body, sizeof(body)), 0);
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	ck_assert_int_eq(r.status, 304);
	ck_assert_int_eq(r.content_length, 0);
	ck_assert_int_eq(ir_httpc_read_head(c, true, &r), 0);
	ck_assert_int_eq(r.content_length, 0);
	ck_assert_str_eq(ir_httpc_header(&r, "Content-Length"), "99");
	ck_assert_int_eq(ir_httpc_read_head(c, true, &r), 0);
	ck_assert(!r.chunked && !r.until_close);
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	ck_assert_int_eq(r.status, 202);
	ck_assert_int_eq(body_all(c, body, sizeof(body)), 2);
	ck_assert_str_eq(body, "ok");
	ck_assert(ir_httpc_idle_ok(c));
}
END_TEST

START_TEST(interim_responses_skipped)
{
	struct ir_httpc_resp r;
	peer_write("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
		   "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.nheaders, 1);
	ck_assert_ptr_null(ir_httpc_header(&r, "Link"));
	/* 101 is final: returned, no body, not reusable. */
	peer_write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n");
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	ck_assert_int_eq(r.status, 101);
	ck_assert_int_eq(r.content_length, 0);
	ck_assert(!r.keep_alive);
}
END_TEST

START_TEST(keep_alive_flags)
{
	static const struct {
		const char *resp;
		bool keep;
	} cases[] = {
	    {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
	    {"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n", false},
	    {"HTTP/1.1 200 OK\r\nConnection: x, close\r\nContent-Length: 0\r\n\r\n", false},
	    {"HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 0\r\n\r\n", true},
	    {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
	    {"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", true},
	    {"HTTP/1.0 204 OK\r\nConnection: keep-alive\r\n\r\n", true},
	    /* Transfer-Encoding with Content-Length: faulty framing. */
	    {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	     false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ir_httpc_resp r;
		char body[16];
		peer_write(cases[i].resp);
		ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
		ck_assert_msg(r.keep_alive == cases[i].keep, "case %zu: keep_alive %d", i,
			      r.keep_alive);
		ck_assert_int_eq(body_all(c, body, sizeof(body)), 0);
	}
}
END_TEST

/* ---- keep-alive over real TCP: two requests, one connection ---- */

struct ka_server {
	int ls;
	char req[2][512];
	int accepted;
};

/* Read one request, until @end_marker has arrived. */
static int read_request(int fd, char *out, size_t cap, const char *end_marker)
{
	size_t n = 0;
	while (n < cap - 1) {
		ssize_t r = read(fd, out + n, cap - 1 - n);
		if (r <= 0)
			return -1;
		n += (size_t)r;
		out[n] = '\0';
		if (strstr(out, end_marker))
			return 0;
	}
	return -1;
}

static void *ka_server_main(void *arg)
{
	struct ka_server *s = arg;
	int fd = accept(s->ls, NULL, NULL);
	if (fd < 0)
		return NULL;
	s->accepted++;
	static const char *r1 = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nfirst!";
	static const char *r2 = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
				"6\r\nsecond\r\n0\r\n\r\n";
	if (read_request(fd, s->req[0], sizeof(s->req[0]), "\r\n\r\nabc") ||
	    write(fd, r1, strlen(r1)) < 0 ||
	    read_request(fd, s->req[1], sizeof(s->req[1]), "0\r\n\r\n") ||
	    write(fd, r2, strlen(r2)) < 0) {
		close(fd);
		return NULL;
	}
	/* A second connection would be accepted here within the wait. */
	struct pollfd p = {.fd = s->ls, .events = POLLIN};
	if (poll(&p, 1, 200) > 0) {
		int fd2 = accept(s->ls, NULL, NULL);
		if (fd2 >= 0) {
			s->accepted++;
			close(fd2);
		}
	}
	char ch;
	(void)!read(fd, &ch, 1); /* until the client closes */
	close(fd);
	return NULL;
}

START_TEST(keep_alive_two_requests)
{
	struct ka_server s = {0};
	struct ir_url u = {.host = "127.0.0.1"};
	s.ls = bound_socket(&u.port);
	ck_assert_int_eq(listen(s.ls, 4), 0);
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, ka_server_main, &s), 0);

	struct ir_httpc *x;
	int fd = ir_httpc_connect(&u, now_ns() + MS(2000));
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ir_httpc_open(&x, fd), 0);
	ir_httpc_set_deadline(x, now_ns() + MS(5000));
	ck_assert_int_eq(ir_httpc_fd(x), fd);
	struct ir_httpc_resp r;
	char body[64];

	const char *h1 = "PUT /a HTTP/1.1\r\nHost: up\r\n\r\n";
	ck_assert_int_eq(ir_httpc_send_head(x, h1, strlen(h1), 3), 0);
	ck_assert_int_eq(ir_httpc_send_body(x, "abc", 3), 0);
	ck_assert_int_eq(ir_httpc_end_body(x), 0);
	ck_assert_int_eq(ir_httpc_read_head(x, false, &r), 0);
	ck_assert(r.keep_alive);
	ck_assert_int_eq(body_all(x, body, sizeof(body)), 6);
	ck_assert_str_eq(body, "first!");
	ck_assert(ir_httpc_idle_ok(x));

	const char *h2 = "POST /b HTTP/1.1\r\nHost: up\r\n\r\n";
	ck_assert_int_eq(ir_httpc_send_head(x, h2, strlen(h2), IR_HTTPC_CHUNKED), 0);
	ck_assert_int_eq(ir_httpc_send_body(x, "xy", 2), 0);
	ck_assert_int_eq(ir_httpc_end_body(x), 0);
	ck_assert_int_eq(ir_httpc_read_head(x, false, &r), 0);
	ck_assert(r.chunked && r.keep_alive);
	ck_assert_int_eq(body_all(x, body, sizeof(body)), 6);
	ck_assert_str_eq(body, "second");
	ir_httpc_close(x);
	pthread_join(th, NULL);

	ck_assert_int_eq(s.accepted, 1);
	ck_assert_str_eq(s.req[0], "PUT /a HTTP/1.1\r\nHost: up\r\nContent-Length: 3\r\n\r\nabc");
	ck_assert_str_eq(s.req[1], "POST /b HTTP/1.1\r\nHost: up\r\nTransfer-Encoding: chunked\r\n"
				   "\r\n2\r\nxy\r\n0\r\n\r\n");
	close(s.ls);
}
END_TEST

/* ---- bodies as they arrive ---- */

struct pieces {
	int fd, go; /* go: a pipe the client writes to once it has piece 1 */
	const char *first, *second;
};

static void *pieces_server(void *arg)
{
	struct pieces *p = arg;
	char ch;
	if (write(p->fd, p->first, strlen(p->first)) < 0 || read(p->go, &ch, 1) != 1)
		return NULL;
	(void)!write(p->fd, p->second, strlen(p->second));
	return NULL;
}

/* read_body hands over the first piece before the second is written (the
 * server waits for the client to say it has it): a test that would hang,
 * cut by the deadline, if read_body waited to fill its buffer. */
static void pieces(const char *first, const char *second, const char *p1, const char *p2)
{
	int go[2];
	ck_assert_int_eq(pipe(go), 0);
	struct pieces p = {.fd = sv[1], .go = go[0], .first = first, .second = second};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, pieces_server, &p), 0);
	ir_httpc_set_deadline(c, now_ns() + MS(3000));
	struct ir_httpc_resp r;
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	char buf[4096];
	ssize_t n = ir_httpc_read_body(c, buf, sizeof(buf));
	ck_assert_int_eq(n, (ssize_t)strlen(p1));
	ck_assert(memcmp(buf, p1, strlen(p1)) == 0);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	n = ir_httpc_read_body(c, buf, sizeof(buf));
	ck_assert_int_eq(n, (ssize_t)strlen(p2));
	ck_assert(memcmp(buf, p2, strlen(p2)) == 0);
	ck_assert_int_eq(ir_httpc_read_body(c, buf, sizeof(buf)), 0);
	pthread_join(t, NULL);
	close(go[0]);
	close(go[1]);
}

START_TEST(body_pieces_chunked)
{
	pieces("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
	       "Transfer-Encoding: chunked\r\n\r\n8\r\ndata: 0\n\r\n",
	       "8\r\ndata: 1\n\r\n0\r\n\r\n", "data: 0\n", "data: 1\n");
}
END_TEST

START_TEST(body_pieces_length)
{
	pieces("HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\ndata: 0\n", "data: 1\n", "data: 0\n",
	       "data: 1\n");
}
END_TEST

START_TEST(body_pieces_until_close)
{
	/* The server thread writes piece 2 once told; closing its end then
	 * ends the body. */
	int go[2];
	ck_assert_int_eq(pipe(go), 0);
	struct pieces p = {.fd = sv[1],
			   .go = go[0],
			   .first = "HTTP/1.0 200 OK\r\n\r\nevent 1",
			   .second = "event 2"};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, pieces_server, &p), 0);
	ir_httpc_set_deadline(c, now_ns() + MS(3000));
	struct ir_httpc_resp r;
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	ck_assert(r.until_close);
	char buf[4096];
	ck_assert_int_eq(ir_httpc_read_body(c, buf, sizeof(buf)), 7);
	ck_assert(memcmp(buf, "event 1", 7) == 0);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	ck_assert_int_eq(ir_httpc_read_body(c, buf, sizeof(buf)), 7);
	ck_assert(memcmp(buf, "event 2", 7) == 0);
	pthread_join(t, NULL);
	peer_close();
	ck_assert_int_eq(ir_httpc_read_body(c, buf, sizeof(buf)), 0);
	close(go[0]);
	close(go[1]);
}
END_TEST

/* A large length-delimited body already in the socket comes out in two
 * reads: what the head read buffered, then the rest in one recv() straight
 * into the caller's buffer. */
START_TEST(large_body_few_reads)
{
	enum { LEN = 300 * 1024 };
	int big = 4 << 20;
	ck_assert_int_eq(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big)), 0);
	char *src = malloc(LEN), *dst = malloc(LEN + 1);
	ck_assert(src && dst);
	for (size_t i = 0; i < LEN; i++)
		src[i] = (char)(i * 7 + i / 251);
	char head[128];
	int hl = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", LEN);
	peer_write_n(head, (size_t)hl);
	ck_assert_int_eq(send(sv[1], src, LEN, MSG_DONTWAIT), LEN);
	struct ir_httpc_resp r;
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	ck_assert_int_eq(r.content_length, LEN);
	size_t got = 0;
	int calls = 0;
	ssize_t n, largest = 0;
	while ((n = ir_httpc_read_body(c, dst + got, LEN + 1 - got)) > 0) {
		got += (size_t)n;
		calls++;
		if (n > largest)
			largest = n;
	}
	ck_assert_int_eq(n, 0);
	ck_assert_uint_eq(got, LEN);
	ck_assert(memcmp(src, dst, LEN) == 0);
	ck_assert_int_le(calls, 2);
	ck_assert_int_gt(largest, LEN / 2);
	free(src);
	free(dst);
}
END_TEST

/* ---- deadlines ---- */

static void assert_took(uint64_t t0, unsigned lo, unsigned hi)
{
	uint64_t took = (now_ns() - t0) / 1000000;
	ck_assert_msg(took >= lo && took < hi, "timed out after %llu ms, want %u-%u",
		      (unsigned long long)took, lo, hi);
}

START_TEST(deadline_silent_server)
{
	struct ir_httpc_resp r;
	uint64_t t0 = now_ns();
	ir_httpc_set_deadline(c, t0 + MS(300));
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), -ETIMEDOUT);
	assert_took(t0, 290, 1000);
	/* Past the deadline, even with bytes there. */
	peer_write("HTTP/1.1 200 OK\r\n\r\n");
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), -ETIMEDOUT);
	/* A new deadline replaces it. */
	ir_httpc_set_deadline(c, now_ns() + MS(1000));
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	ck_assert_int_eq(r.status, 200);
}
END_TEST

START_TEST(deadline_body)
{
	struct ir_httpc_resp r;
	char buf[64];
	peer_write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	uint64_t t0 = now_ns();
	ir_httpc_set_deadline(c, t0 + MS(200));
	ck_assert_int_eq(ir_httpc_read_body(c, buf, sizeof(buf)), 3);
	ck_assert_int_eq(ir_httpc_read_body(c, buf, sizeof(buf)), -ETIMEDOUT);
	assert_took(t0, 190, 900);
}
END_TEST

/* The server never reads: a large request body times out. */
START_TEST(deadline_send)
{
	ck_assert_int_eq(ir_httpc_send_head(c, post, strlen(post), 64 << 20), 0);
	size_t len = 1 << 20;
	char *p = calloc(1, len);
	ck_assert_ptr_nonnull(p);
	uint64_t t0 = now_ns();
	ir_httpc_set_deadline(c, t0 + MS(200));
	int rc = 0;
	for (int i = 0; i < 64 && !rc; i++)
		rc = ir_httpc_send_body(c, p, len);
	ck_assert_int_eq(rc, -ETIMEDOUT);
	assert_took(t0, 190, 900);
	free(p);
}
END_TEST

struct flood {
	int fd;
};

static void *flood_server(void *arg)
{
	struct flood *f = arg;
	static char junk[4096];
	const char *h = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
	if (write(f->fd, h, strlen(h)) < 0)
		return NULL;
	memset(junk, 'j', sizeof(junk));
	while (send(f->fd, junk, sizeof(junk), MSG_NOSIGNAL) > 0)
		;
	return NULL;
}

/* A server that never stops sending is cut off at the deadline too. */
START_TEST(deadline_endless_body)
{
	struct flood f = {.fd = sv[1]};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, flood_server, &f), 0);
	uint64_t t0 = now_ns();
	ir_httpc_set_deadline(c, t0 + MS(300));
	struct ir_httpc_resp r;
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	ck_assert(r.until_close);
	char buf[4096];
	ssize_t n;
	uint64_t total = 0;
	while ((n = ir_httpc_read_body(c, buf, sizeof(buf))) > 0)
		total += (uint64_t)n;
	ck_assert_int_eq(n, -ETIMEDOUT);
	ck_assert_uint_gt(total, 0);
	assert_took(t0, 290, 1500);
	ir_httpc_close(c); /* the server's send fails now */
	c = NULL;
	pthread_join(t, NULL);
}
END_TEST

/* ---- malformed input and early close ---- */

/* Feed @resp (@len bytes) and close; the head then the body to its end.
 * Returns the first error or the body length. */
static int parse_n(const char *resp, size_t len)
{
	struct ir_httpc_resp r;
	struct ir_httpc *x;
	int p[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
	ck_assert_int_eq(ir_httpc_open(&x, p[0]), 0);
	ir_httpc_set_deadline(x, now_ns() + MS(5000));
	int big = 4 << 20;
	ck_assert_int_eq(setsockopt(p[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big)), 0);
	ck_assert_int_eq(send(p[1], resp, len, MSG_DONTWAIT), (ssize_t)len);
	close(p[1]);
	int rc = ir_httpc_read_head(x, false, &r);
	if (rc == 0) {
		char buf[64];
		ssize_t n, total = 0;
		while ((n = ir_httpc_read_body(x, buf, sizeof(buf))) > 0)
			total += n;
		rc = n < 0 ? (int)n : (int)total;
	}
	ir_httpc_close(x);
	return rc;
}

static int parse_one(const char *resp)
{
	return parse_n(resp, strlen(resp));
}

START_TEST(malformed_heads)
{
	static const struct {
		const char *resp;
		int rc;
	} cases[] = {
	    {"HTTP/2 200 OK\r\n\r\n", -EPROTO},
	    {"HTTP/1.2 200 OK\r\n\r\n", -EPROTO},
	    {"http/1.1 200 OK\r\n\r\n", -EPROTO},
	    {"HTTP/1.1 20 OK\r\n\r\n", -EPROTO},
	    {"HTTP/1.1 200OK\r\n\r\n", -EPROTO},
	    {"HTTP/1.1 600 X\r\n\r\n", -EPROTO},
	    {"HTTP/1.1 200 O\x01K\r\n\r\n", -EPROTO},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", -EPROTO},
	    {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", -EPROTO},
	    {"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello", -EPROTO},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nh", -EPROTO},
	    {"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", -EPROTO},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", -EPROTO},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", -EPROTO},
	    {"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", -EPROTO},
	    {"HTTP/1.1 200 OK\r\nX: a\r\n\tfolded\r\n\r\n", -EPROTO},
	    {"HTTP/1.1 200 OK\r\nBad Name: a\r\n\r\n", -EPROTO},
	    {"HTTP/1.1 200 OK\r\nName : a\r\n\r\n", -EPROTO},
	    {"HTTP/1.1 200 OK\r\n: a\r\n\r\n", -EPROTO},
	    {"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", -EPROTO},
	    {"HTTP/1.1 200 OK\r\nX: a\nContent-Length: 0\r\n\r\n", -EPROTO},
	    {"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", -EPROTO},
	    /* Well-formed, for contrast: the same machinery says yes. */
	    {"HTTP/1.1 200 OK\r\nContent-Length: 00\r\n\r\n", 0},
	    {"HTTP/1.1 599 Whatever\t it is\r\nX: \x80\xff\r\nContent-Length: 2\r\n\r\nab", 2},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(parse_one(cases[i].resp) == cases[i].rc, "case %zu (%s): %d", i,
			      cases[i].resp, parse_one(cases[i].resp));
	/* A NUL in a value. */
	static const char nul[] = "HTTP/1.1 200 OK\r\nX: a\0b\r\nContent-Length: 0\r\n\r\n";
	ck_assert_int_eq(parse_n(nul, sizeof(nul) - 1), -EPROTO);
}
END_TEST

START_TEST(malformed_chunks)
{
	static const char *te = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
	static const struct {
		const char *body;
		int rc;
	} cases[] = {
	    {"zz\r\n", -EPROTO},
	    {"0x5\r\nhello\r\n0\r\n\r\n", -EPROTO},
	    {"-5\r\nhello\r\n0\r\n\r\n", -EPROTO},
	    {" 5\r\nhello\r\n0\r\n\r\n", -EPROTO},
	    {"5 x\r\nhello\r\n0\r\n\r\n", -EPROTO},
	    {"5\nhello\r\n0\r\n\r\n", -EPROTO},
	    {"3\r\nabcX\r\n0\r\n\r\n", -EPROTO},
	    {"3\r\nabc\n0\r\n\r\n", -EPROTO},
	    {"1000000000000000\r\n", -EPROTO},
	    {"3\r\nabc\r\n0\r\nBad\ntrailer\r\n\r\n", -EPROTO},
	    /* For contrast. */
	    {"3\r\nabc\r\n0\r\n\r\n", 3},
	    {"00003;a=b\r\nabc\r\n000\r\n\r\n", 3},
	    {"fffffffffffffff\r\nab", -ECONNRESET},
	};
	char resp[256];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(resp, sizeof(resp), "%s%s", te, cases[i].body);
		int rc = parse_one(resp);
		ck_assert_msg(rc == cases[i].rc, "case %zu (%s): %d", i, cases[i].body, rc);
	}
	/* A chunk-size line over 1 KiB (a long extension). */
	char *s = malloc(4096);
	ck_assert_ptr_nonnull(s);
	int n = snprintf(s, 4096, "%s3;", te);
	memset(s + n, 'e', 1100);
	strcpy(s + n + 1100, "\r\nabc\r\n0\r\n\r\n");
	ck_assert_int_eq(parse_one(s), -EPROTO);
	/* Under 1 KiB is fine. */
	n = snprintf(s, 4096, "%s3;", te);
	memset(s + n, 'e', 1000);
	strcpy(s + n + 1000, "\r\nabc\r\n0\r\n\r\n");
	ck_assert_int_eq(parse_one(s), 3);
	free(s);
}
END_TEST

START_TEST(limits)
{
	size_t cap = 2 * IR_HTTPC_MAX_HEAD;
	char *s = malloc(cap);
	ck_assert_ptr_nonnull(s);
	/* A head of exactly IR_HTTPC_MAX_HEAD bytes, then one byte more. */
	const char *pre = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: ";
	for (int extra = 0; extra <= 1; extra++) {
		size_t pl = strlen(pre), fill = IR_HTTPC_MAX_HEAD - pl - 4 + (size_t)extra;
		memcpy(s, pre, pl);
		memset(s + pl, 'a', fill);
		memcpy(s + pl + fill, "\r\n\r\n", 4);
		ck_assert_uint_eq(pl + fill + 4, IR_HTTPC_MAX_HEAD + (size_t)extra);
		ck_assert_int_eq(parse_n(s, pl + fill + 4), extra ? -E2BIG : 0);
	}
	/* A head that never ends. */
	memcpy(s, pre, strlen(pre));
	memset(s + strlen(pre), 'a', cap - strlen(pre));
	ck_assert_int_eq(parse_n(s, cap), -E2BIG);
	/* 128 headers, then 129. */
	for (int nh = 128; nh <= 129; nh++) {
		size_t n = (size_t)snprintf(s, cap, "HTTP/1.1 200 OK\r\n");
		for (int i = 0; i < nh - 1; i++)
			n += (size_t)snprintf(s + n, cap - n, "H%d: v\r\n", i);
		n += (size_t)snprintf(s + n, cap - n, "Content-Length: 0\r\n\r\n");
		ck_assert_int_eq(parse_n(s, n), nh == 128 ? 0 : -E2BIG);
	}
	/* Trailers over IR_HTTPC_MAX_HEAD in all. */
	size_t n =
	    (size_t)snprintf(s, cap, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n");
	while (n < IR_HTTPC_MAX_HEAD + 2048)
		n += (size_t)snprintf(s + n, cap - n, "T: %0500d\r\n", 0);
	n += (size_t)snprintf(s + n, cap - n, "\r\n");
	ck_assert_int_eq(parse_n(s, n), -E2BIG);
	free(s);
}
END_TEST

START_TEST(peer_closes_early)
{
	/* Before any byte, in the status line, in the headers, in a length,
	 * in a chunk, in a chunk-size line, in the trailers. */
	ck_assert_int_eq(parse_one(""), -ECONNRESET);
	ck_assert_int_eq(parse_one("HTTP/1.1 2"), -ECONNRESET);
	ck_assert_int_eq(parse_one("HTTP/1.1 200 OK\r\nContent"), -ECONNRESET);
	ck_assert_int_eq(parse_one("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
			 -ECONNRESET);
	ck_assert_int_eq(parse_one("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nab"),
			 -ECONNRESET);
	ck_assert_int_eq(parse_one("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9"),
			 -ECONNRESET);
	ck_assert_int_eq(
	    parse_one("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nT: x"),
	    -ECONNRESET);
	/* Until close: the close is the end, not an error. */
	ck_assert_int_eq(parse_one("HTTP/1.1 200 OK\r\n\r\n"), 0);
	/* A request to a closed peer fails (EPIPE, not SIGPIPE). */
	peer_close();
	int rc = ir_httpc_send_head(c, post, strlen(post), IR_HTTPC_NO_BODY);
	ck_assert_int_eq(rc, -EPIPE);
}
END_TEST

START_TEST(idle_and_order)
{
	struct ir_httpc_resp r;
	char buf[16];
	ck_assert(ir_httpc_idle_ok(c));
	peer_write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab");
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	/* A body is unread: no next head, not idle. */
	ck_assert(!ir_httpc_idle_ok(c));
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), -EINVAL);
	peer_write("cd");
	ck_assert_int_eq(body_all(c, buf, sizeof(buf)), 4);
	ck_assert(ir_httpc_idle_ok(c));
	/* Stray bytes after a complete response: not reusable. */
	peer_write("X");
	ck_assert(!ir_httpc_idle_ok(c));
}
END_TEST

START_TEST(idle_after_peer_close)
{
	ck_assert(ir_httpc_idle_ok(c));
	peer_close();
	ck_assert(!ir_httpc_idle_ok(c));
	struct ir_httpc_resp r;
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), -ECONNRESET);
}
END_TEST

Suite *httpc_suite(void)
{
	Suite *s = suite_create("httpc");
	TCase *tc = tcase_create("client");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, url_parse_good);
	tcase_add_test(tc, url_parse_bad);
	tcase_add_test(tc, connect_refused);
	tcase_add_test(tc, connect_listening);
	tcase_add_test(tc, connect_deadline);
	tcase_add_test(tc, request_content_length);
	tcase_add_test(tc, request_chunked);
	tcase_add_test(tc, request_no_body);
	tcase_add_test(tc, response_content_length);
	tcase_add_test(tc, headers_survive_body);
	tcase_add_test(tc, response_chunked_byte_by_byte);
	tcase_add_test(tc, response_length_byte_by_byte);
	tcase_add_test(tc, response_until_close);
	tcase_add_test(tc, response_te_not_chunked);
	tcase_add_test(tc, response_no_body);
	tcase_add_test(tc, interim_responses_skipped);
	tcase_add_test(tc, keep_alive_flags);
	tcase_add_test(tc, keep_alive_two_requests);
	tcase_add_test(tc, body_pieces_chunked);
	tcase_add_test(tc, body_pieces_length);
	tcase_add_test(tc, body_pieces_until_close);
	tcase_add_test(tc, large_body_few_reads);
	tcase_add_test(tc, deadline_silent_server);
	tcase_add_test(tc, deadline_body);
	tcase_add_test(tc, deadline_send);
	tcase_add_test(tc, deadline_endless_body);
	tcase_add_test(tc, malformed_heads);
	tcase_add_test(tc, malformed_chunks);
	tcase_add_test(tc, limits);
	tcase_add_test(tc, peer_closes_early);
	tcase_add_test(tc, idle_and_order);
	tcase_add_test(tc, idle_after_peer_close);
	suite_add_tcase(s, tc);
	return s;
}
