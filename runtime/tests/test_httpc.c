/* test_httpc.c - the HTTP/1.1 client of the http mode, byte-exact against
 * a scripted server on the other end of a socketpair: URL parsing, request
 * framing on the wire, response framing (length, chunked one byte at a
 * time, until close, no body), 1xx skipped, keep-alive reuse, a body
 * handed over piece by piece as it arrives, deadlines and malformed input.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "httpc.h"
#include "tests.h"

static int sv[2];
static struct ir_httpc *c;

static void setup(void)
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(ir_httpc_open(&c, sv[0]), 0);
}

static void teardown(void)
{
	ir_httpc_close(c);
	if (sv[1] >= 0)
		close(sv[1]);
}

static void peer_write(const char *s)
{
	ck_assert_int_eq(write(sv[1], s, strlen(s)), (ssize_t)strlen(s));
}

/* What the client wrote so far (non-blocking), NUL-terminated. */
static char *peer_read(void)
{
	static char buf[65536];
	usleep(20000);
	ssize_t n = recv(sv[1], buf, sizeof(buf) - 1, MSG_DONTWAIT);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Read the whole body into @out (NUL-terminated); returns its length or
 * the error. */
static ssize_t body_all(char *out, size_t cap)
{
	size_t n = 0;
	for (;;) {
		ssize_t r = ir_httpc_read_body(c, out + n, cap - 1 - n);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	out[n] = '\0';
	return (ssize_t)n;
}

START_TEST(url_parse)
{
	struct ir_url u;
	char err[256];
	ck_assert_int_eq(ir_url_parse("http://127.0.0.1:5000", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.host, "127.0.0.1");
	ck_assert_uint_eq(u.port, 5000);
	ck_assert_str_eq(u.prefix, "");
	ck_assert_int_eq(ir_url_parse("HTTP://fn.openfaas-fn/api/v1/", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.host, "fn.openfaas-fn");
	ck_assert_uint_eq(u.port, 80);
	ck_assert_str_eq(u.prefix, "/api/v1");
	ck_assert_int_eq(ir_url_parse("http://[::1]:8080/x", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.host, "::1");
	ck_assert_uint_eq(u.port, 8080);

	ck_assert_int_eq(ir_url_parse("https://x", &u, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "https is not supported"));
	ck_assert_int_eq(ir_url_parse("127.0.0.1:5000", &u, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "not an http:// URL"));
	ck_assert_int_eq(ir_url_parse("http://:80", &u, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "no host"));
	ck_assert_int_eq(ir_url_parse("http://x:0", &u, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(ir_url_parse("http://x:70000", &u, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "bad port"));
	ck_assert_int_eq(ir_url_parse("http://u@x", &u, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "user information"));
	ck_assert_int_eq(ir_url_parse("http://x/p?q=1", &u, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "query"));
}
END_TEST

START_TEST(connect_refused_and_ok)
{
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t len = sizeof(a);
	ck_assert_int_eq(getsockname(ls, (struct sockaddr *)&a, &len), 0);
	struct ir_url u = {.host = "127.0.0.1", .port = ntohs(a.sin_port)};
	/* Bound, not listening: refused. */
	ck_assert_int_eq(ir_httpc_connect(&u, 0), -ECONNREFUSED);
	ck_assert_int_eq(listen(ls, 1), 0);
	int fd = ir_httpc_connect(&u, 0);
	ck_assert_int_ge(fd, 0);
	close(fd);
	close(ls);
}
END_TEST

START_TEST(request_framing_on_the_wire)
{
	const char *head = "POST /x HTTP/1.1\r\nHost: h\r\n\r\n";
	ck_assert_int_eq(ir_httpc_send_head(c, head, strlen(head), 5), 0);
	ck_assert_int_eq(ir_httpc_send_body(c, "hel", 3), 0);
	ck_assert_int_eq(ir_httpc_send_body(c, "lo!", 3), -EPROTO); /* over the length */
	ck_assert_int_eq(ir_httpc_send_body(c, "lo", 2), 0);
	ck_assert_int_eq(ir_httpc_end_body(c), 0);
	ck_assert_str_eq(peer_read(),
			 "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello");

	ck_assert_int_eq(ir_httpc_send_head(c, head, strlen(head), IR_HTTPC_CHUNKED), 0);
	ck_assert_int_eq(ir_httpc_send_body(c, "hello world, ", 13), 0);
	ck_assert_int_eq(ir_httpc_send_body(c, "", 0), 0);
	ck_assert_int_eq(ir_httpc_send_body(c, "bye", 3), 0);
	ck_assert_int_eq(ir_httpc_end_body(c), 0);
	ck_assert_str_eq(peer_read(), "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
				      "chunked\r\n\r\nd\r\nhello world, \r\n3\r\nbye\r\n0\r\n\r\n");

	const char *get = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
	ck_assert_int_eq(ir_httpc_send_head(c, get, strlen(get), IR_HTTPC_NO_BODY), 0);
	ck_assert_int_eq(ir_httpc_end_body(c), 0);
	ck_assert_str_eq(peer_read(), get);

	/* Announced more than sent. */
	ck_assert_int_eq(ir_httpc_send_head(c, head, strlen(head), 4), 0);
	ck_assert_int_eq(ir_httpc_send_body(c, "ab", 2), 0);
	ck_assert_int_eq(ir_httpc_end_body(c), -EPROTO);
	/* A head without its empty line is refused. */
	ck_assert_int_eq(ir_httpc_send_head(c, "GET / HTTP/1.1\r\n", 16, IR_HTTPC_NO_BODY),
			 -EINVAL);
}
END_TEST

START_TEST(response_framings_and_keep_alive)
{
	struct ir_httpc_resp r;
	char body[4096];
	/* 100 Continue skipped, then a length-delimited body; keep-alive. */
	peer_write("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nX-A:  v  \r\n"
		   "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello");
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	ck_assert_int_eq(r.status, 201);
	ck_assert_str_eq(r.reason, "Created");
	ck_assert_str_eq(ir_httpc_header(&r, "x-a"), "v");
	ck_assert_int_eq(r.content_length, 5);
	ck_assert(r.keep_alive && !r.chunked && !r.until_close);
	ck_assert_int_eq(body_all(body, sizeof(body)), 5);
	ck_assert_str_eq(body, "hello");
	ck_assert(ir_httpc_body_done(c));

	/* The same connection: chunked with an extension and a trailer,
	 * delivered one byte at a time. */
	const char *ch = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
			 "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
	for (const char *p = ch; *p; p++)
		ck_assert_int_eq(write(sv[1], p, 1), 1);
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	ck_assert(r.chunked);
	ck_assert_int_eq(r.content_length, -1);
	ck_assert_int_eq(body_all(body, sizeof(body)), 11);
	ck_assert_str_eq(body, "hello world");

	/* No body: 204, 304, and any answer to HEAD. */
	peer_write("HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n"
		   "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n");
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	ck_assert_int_eq(r.content_length, 0);
	ck_assert_int_eq(ir_httpc_read_body(c, body, sizeof(body)), 0);
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	ck_assert_int_eq(r.status, 304);
	ck_assert_int_eq(ir_httpc_read_head(c, true, &r), 0);
	ck_assert_int_eq(r.content_length, 0);
	ck_assert_str_eq(ir_httpc_header(&r, "Content-Length"), "99");
	ck_assert(ir_httpc_idle_ok(c));

	/* HTTP/1.0 without a length: until close, not kept alive. */
	peer_write("HTTP/1.0 200 OK\r\n\r\nall of it");
	close(sv[1]);
	sv[1] = -1;
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	ck_assert(r.until_close && !r.keep_alive);
	ck_assert_int_eq(body_all(body, sizeof(body)), 9);
	ck_assert_str_eq(body, "all of it");
}
END_TEST

struct pieces {
	int fd;
	volatile int got_first;
};

static void *pieces_server(void *arg)
{
	struct pieces *p = arg;
	const char *a = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\ndata: 0\n\r\n";
	if (write(p->fd, a, strlen(a)) < 0)
		return NULL;
	while (!p->got_first)
		usleep(1000);
	const char *b = "8\r\ndata: 1\n\r\n0\r\n\r\n";
	if (write(p->fd, b, strlen(b)) < 0)
		return NULL;
	return NULL;
}

/* read_body hands over the first event before the second is written. */
START_TEST(body_returned_as_it_arrives)
{
	struct pieces p = {.fd = sv[1]};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, pieces_server, &p), 0);
	struct ir_httpc_resp r;
	ir_httpc_set_deadline(c, 0);
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), 0);
	char buf[256];
	ssize_t n = ir_httpc_read_body(c, buf, sizeof(buf));
	ck_assert_int_eq(n, 8);
	ck_assert(memcmp(buf, "data: 0\n", 8) == 0);
	p.got_first = 1;
	n = ir_httpc_read_body(c, buf, sizeof(buf));
	ck_assert_int_eq(n, 8);
	ck_assert(memcmp(buf, "data: 1\n", 8) == 0);
	ck_assert_int_eq(ir_httpc_read_body(c, buf, sizeof(buf)), 0);
	pthread_join(t, NULL);
}
END_TEST

START_TEST(deadline_and_errors)
{
	struct ir_httpc_resp r;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t t0 = now_ms();
	ir_httpc_set_deadline(c, (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec +
				     300000000ull);
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), -ETIMEDOUT);
	uint64_t took = now_ms() - t0;
	ck_assert_msg(took >= 280 && took < 1000, "timed out after %llu ms",
		      (unsigned long long)took);
}
END_TEST

static int parse_one(const char *resp)
{
	struct ir_httpc_resp r;
	struct ir_httpc *x;
	int p[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
	ck_assert_int_eq(ir_httpc_open(&x, p[0]), 0);
	ck_assert_int_eq(write(p[1], resp, strlen(resp)), (ssize_t)strlen(resp));
	close(p[1]);
	int rc = ir_httpc_read_head(x, false, &r);
	if (rc == 0) {
		char buf[64];
		ssize_t n;
		while ((n = ir_httpc_read_body(x, buf, sizeof(buf))) > 0)
			;
		rc = (int)n;
	}
	ir_httpc_close(x);
	return rc;
}

START_TEST(malformed_responses)
{
	ck_assert_int_eq(parse_one("HTTP/2 200 OK\r\n\r\n"), -EPROTO);
	ck_assert_int_eq(parse_one("HTTP/1.1 20 OK\r\n\r\n"), -EPROTO);
	ck_assert_int_eq(parse_one("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n"), -EPROTO);
	ck_assert_int_eq(
	    parse_one("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
	    -EPROTO);
	ck_assert_int_eq(parse_one("HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n"), -EPROTO);
	ck_assert_int_eq(parse_one("HTTP/1.1 200 OK\r\nBad Name: a\r\n\r\n"), -EPROTO);
	ck_assert_int_eq(parse_one("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
			 -EPROTO);
	ck_assert_int_eq(parse_one("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
				   "3\r\nabcX\r\n0\r\n\r\n"),
			 -EPROTO);
	/* Closed early: in the head, in a length, in a chunk. */
	ck_assert_int_eq(parse_one(""), -ECONNRESET);
	ck_assert_int_eq(parse_one("HTTP/1.1 200 OK\r\nContent"), -ECONNRESET);
	ck_assert_int_eq(parse_one("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
			 -ECONNRESET);
	ck_assert_int_eq(parse_one("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nab"),
			 -ECONNRESET);
	/* A head over the limit. */
	size_t big = IR_HTTPC_MAX_HEAD + 100;
	char *s = malloc(big + 64);
	ck_assert_ptr_nonnull(s);
	strcpy(s, "HTTP/1.1 200 OK\r\nX: ");
	memset(s + strlen(s), 'a', big);
	s[big] = '\0';
	struct ir_httpc_resp r;
	ck_assert_int_eq(write(sv[1], s, strlen(s)), (ssize_t)strlen(s));
	ck_assert_int_eq(ir_httpc_read_head(c, false, &r), -E2BIG);
	free(s);
	/* After the peer closed, an idle connection is not reusable. */
	close(sv[1]);
	sv[1] = -1;
	usleep(10000);
	ck_assert(!ir_httpc_idle_ok(c));
}
END_TEST

Suite *httpc_suite(void)
{
	Suite *s = suite_create("httpc");
	TCase *tc = tcase_create("client");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, url_parse);
	tcase_add_test(tc, connect_refused_and_ok);
	tcase_add_test(tc, request_framing_on_the_wire);
	tcase_add_test(tc, response_framings_and_keep_alive);
	tcase_add_test(tc, body_returned_as_it_arrives);
	tcase_add_test(tc, deadline_and_errors);
	tcase_add_test(tc, malformed_responses);
	suite_add_tcase(s, tc);
	return s;
}
