/* test_ccclient.c - the coordinator client (iroute/ccclient.h): table
 * parsing; the client against a scripted coordinator in this process
 * (exact answers: 404, 401, 503, held long-polls, epochs chosen by the
 * test); and against the real iroute-cc (IROUTE_BIN_DIR), file mirror and
 * ZooKeeper (tzk.h). */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "iroute/ccclient.h"
#include "tests.h"
#include "twd.h"
#include "tzk.h"


/* ---- table parsing ---- */

#define INST(id, fn)                                                                               \
	"{\"id\":\"" id "\",\"function\":\"" fn "\",\"node\":\"n1\","                              \
	"\"addresses\":{\"tcp\":\"127.0.0.1:9101\",\"http\":\"127.0.0.1:9001\"},"                  \
	"\"transports\":[\"tcp\",\"ipc\"],\"capacity\":3}"

static const char SINK_TABLE[] =
    "{\"epoch\":12,\"workflow\":\"w\",\"function\":\"d\",\"role\":\"function\","
    "\"routes\":{\"e\":[" INST("e-1", "e") "," INST(
	"e-2", "e") "],\"d\":[]},"
		    "\"entries\":[{\"id\":\"entry-9\",\"function\":\"\",\"node\":\"n2\","
		    "\"addresses\":{\"ipc\":\"/run/x.sock\"},\"transports\":[\"ipc\",\"rdma\"],"
		    "\"rdma\":{\"gid\":\"fe80::1\",\"qpn\":7},\"future\":1}],\"future\":{\"x\":1}}";

START_TEST(table_function_role)
{
	struct ir_table *t;
	char err[256] = "";
	ck_assert_int_eq(ir_table_parse(SINK_TABLE, strlen(SINK_TABLE), &t, err, sizeof(err)), 0);
	ck_assert_uint_eq(t->epoch, 12);
	ck_assert_str_eq(t->workflow, "w");
	ck_assert_str_eq(t->function, "d");
	ck_assert(!t->entry_role);
	ck_assert_uint_eq(t->nroutes, 2);
	ck_assert_str_eq(t->routes[0].name, "e");
	ck_assert_str_eq(t->routes[1].name, "d");
	const struct ir_route_fn *e = ir_table_route(t, "e");
	ck_assert_ptr_eq(e, &t->routes[0]);
	ck_assert_uint_eq(e->n, 2);
	ck_assert_str_eq(e->inst[1].id, "e-2");
	ck_assert_str_eq(e->inst[1].function, "e");
	ck_assert_str_eq(e->inst[0].node, "n1");
	ck_assert_str_eq(e->inst[0].tcp, "127.0.0.1:9101");
	ck_assert_str_eq(e->inst[0].http, "127.0.0.1:9001");
	ck_assert_str_eq(e->inst[0].ipc, "");
	ck_assert_uint_eq(e->inst[0].transports, IR_TR_TCP | IR_TR_IPC);
	ck_assert_uint_eq(e->inst[0].capacity, 3);
	ck_assert_ptr_null(e->inst[0].rdma);
	ck_assert_uint_eq(ir_table_route(t, "d")->n, 0);
	ck_assert_ptr_null(ir_table_route(t, "zz"));
	ck_assert_uint_eq(t->nentries, 1);
	ck_assert_str_eq(t->entries[0].function, "");
	ck_assert_str_eq(t->entries[0].ipc, "/run/x.sock");
	ck_assert_uint_eq(t->entries[0].transports, IR_TR_IPC | IR_TR_RDMA);
	ck_assert_uint_eq(t->entries[0].capacity, 1); /* the default */
	ck_assert_str_eq(t->entries[0].rdma, "{\"gid\":\"fe80::1\",\"qpn\":7}");
	ck_assert_uint_eq(t->json_len, strlen(SINK_TABLE));
	ck_assert_str_eq(t->json, SINK_TABLE);
	/* references: the table outlives the first put */
	ir_table_get(t);
	ir_table_put(t);
	ck_assert_uint_eq(t->epoch, 12);
	ir_table_put(t);
	ir_table_put(NULL);
	ir_table_get(NULL);
}
END_TEST

START_TEST(table_entry_role)
{
	const char *j = "{\"epoch\":3,\"workflow\":\"w\",\"function\":null,\"role\":\"entry\","
			"\"routes\":{\"a\":[" INST("a-1", "a") "],\"b\":[]}}";
	struct ir_table *t;
	char err[256] = "";
	ck_assert_int_eq(ir_table_parse(j, strlen(j), &t, err, sizeof(err)), 0);
	ck_assert(t->entry_role);
	ck_assert_str_eq(t->function, "");
	ck_assert_uint_eq(t->nroutes, 2);
	ck_assert_uint_eq(ir_table_route(t, "a")->n, 1);
	ck_assert_uint_eq(t->nentries, 0);
	ck_assert_ptr_null(t->entries);
	ir_table_put(t);
	/* "function" may also be absent for the entry role; not NUL-terminated input */
	const char *k = "{\"epoch\":1,\"workflow\":\"w\",\"role\":\"entry\",\"routes\":{}}XYZ";
	ck_assert_int_eq(ir_table_parse(k, strlen(k) - 3, &t, err, sizeof(err)), 0);
	ck_assert_uint_eq(t->nroutes, 0);
	ck_assert_str_eq(t->json,
			 "{\"epoch\":1,\"workflow\":\"w\",\"role\":\"entry\",\"routes\":{}}");
	ir_table_put(t);
}
END_TEST

struct bad_case {
	const char *json, *msg;
};

#define HEAD "{\"epoch\":5,\"workflow\":\"w\",\"function\":\"a\",\"role\":\"function\","
#define OKI "{\"id\":\"b-1\",\"function\":\"b\",\"node\":\"n\",\"addresses\":{\"tcp\":\"h:1\"},"

static const struct bad_case BAD[] = {
    {"[1]", "the table is not a JSON object"},
    {"{\"epoch\":5,", "invalid JSON at byte"},
    {"{\"workflow\":\"w\",\"role\":\"entry\",\"routes\":{}}", "epoch is missing"},
    {"{\"epoch\":0,\"workflow\":\"w\",\"role\":\"entry\",\"routes\":{}}",
     "epoch must be an integer 1-"},
    {"{\"epoch\":1.5,\"workflow\":\"w\",\"role\":\"entry\",\"routes\":{}}",
     "epoch must be an integer"},
    {"{\"epoch\":\"5\",\"workflow\":\"w\",\"role\":\"entry\",\"routes\":{}}",
     "epoch must be an integer"},
    {"{\"epoch\":5,\"workflow\":7,\"role\":\"entry\",\"routes\":{}}", "workflow is not a string"},
    {"{\"epoch\":5,\"workflow\":\"\",\"role\":\"entry\",\"routes\":{}}",
     "workflow must be 1-63 characters"},
    {"{\"epoch\":5,\"workflow\":\"w\",\"routes\":{}}", "role is missing"},
    {"{\"epoch\":5,\"workflow\":\"w\",\"role\":\"boss\",\"routes\":{}}",
     "role must be \"function\" or \"entry\""},
    {"{\"epoch\":5,\"workflow\":\"w\",\"role\":\"entry\",\"function\":\"a\",\"routes\":{}}",
     "function must be null for role \"entry\""},
    {"{\"epoch\":5,\"workflow\":\"w\",\"role\":\"function\",\"routes\":{}}", "function is missing"},
    {HEAD "\"routes\":[]}", "routes is not an object"},
    {HEAD "\"x\":1}", "routes is missing"},
    {HEAD "\"routes\":{\"b\":{}}}", "routes.b is not an array"},
    {HEAD "\"routes\":{\"b\":[],\"b\":[]}}", "routes.b is listed twice"},
    {HEAD "\"routes\":{\"b\":[7]}}", "routes.b[0] is not an object"},
    {HEAD "\"routes\":{\"b\":[" OKI "\"transports\":[\"tcp\"]},{\"id\":3,\"function\":\"b\"}]}}",
     "routes.b[1].id is not a string"},
    {HEAD "\"routes\":{\"b\":[{\"function\":\"b\",\"node\":\"n\",\"addresses\":{\"tcp\":\"h:1\"},"
	  "\"transports\":[\"tcp\"]}]}}",
     "routes.b[0].id is missing"},
    {HEAD "\"routes\":{\"b\":[{\"id\":\"b-1\",\"function\":\"c\",\"node\":\"n\",\"addresses\":{"
	  "\"tcp\":\"h:1\"},\"transports\":[\"tcp\"]}]}}",
     "routes.b[0].function is \"c\", want \"b\""},
    {HEAD "\"routes\":{\"b\":[{\"id\":\"b-1\",\"function\":\"b\",\"addresses\":{\"tcp\":\"h:1\"},"
	  "\"transports\":[\"tcp\"]}]}}",
     "routes.b[0].node is missing"},
    {HEAD "\"routes\":{\"b\":[{\"id\":\"b-1\",\"function\":\"b\",\"node\":\"n\",\"transports\":["
	  "\"tcp\"]}]}}",
     "routes.b[0].addresses is missing"},
    {HEAD "\"routes\":{\"b\":[{\"id\":\"b-1\",\"function\":\"b\",\"node\":\"n\",\"addresses\":{"
	  "\"tcp\":9},\"transports\":[\"tcp\"]}]}}",
     "routes.b[0].addresses.tcp is not a string"},
    {HEAD "\"routes\":{\"b\":[{\"id\":\"b-1\",\"function\":\"b\",\"node\":\"n\",\"addresses\":{},"
	  "\"transports\":[\"tcp\"]}]}}",
     "routes.b[0].addresses has none of http, tcp, ipc"},
    {HEAD "\"routes\":{\"b\":[" OKI "\"transports\":[]}]}}",
     "routes.b[0].transports is not a non-empty array"},
    {HEAD "\"routes\":{\"b\":[" OKI "\"transports\":[\"tcp\",\"udp\"]}]}}",
     "routes.b[0].transports[1] is not one of"},
    {HEAD "\"routes\":{\"b\":[" OKI "\"transports\":[\"tcp\"],\"capacity\":0}]}}",
     "routes.b[0].capacity must be an integer 1-65535"},
    {HEAD "\"routes\":{\"b\":[" OKI "\"transports\":[\"tcp\"],\"capacity\":70000}]}}",
     "routes.b[0].capacity must be an integer 1-65535"},
    {HEAD "\"routes\":{\"b\":[" OKI "\"transports\":[\"tcp\"],\"rdma\":[1]}]}}",
     "routes.b[0].rdma is not an object"},
    {HEAD "\"routes\":{\"b\":[]},\"entries\":{}}", "entries is not an array"},
    {HEAD "\"routes\":{\"b\":[]},\"entries\":[" OKI "\"transports\":[\"tcp\"]}]}",
     "entries[0].function is \"b\", want \"\""},
    {HEAD "\"routes\":{\"b\":[{\"id\":\"b-1\",\"function\":\"b\",\"node\":\"n\",\"addresses\":{"
	  "\"tcp\":\"h:1\"},\"transports\":[\"tcp\"],\"rdma\":{\"k\":1}}, 5]}}",
     "routes.b[1] is not an object"},
};

START_TEST(table_malformed)
{
	for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
		struct ir_table *t = (struct ir_table *)1;
		char err[256] = "";
		int rc = ir_table_parse(BAD[i].json, strlen(BAD[i].json), &t, err, sizeof(err));
		ck_assert_msg(rc == -EINVAL, "case %zu: rc %d for %s", i, rc, BAD[i].json);
		ck_assert_ptr_null(t);
		ck_assert_msg(strstr(err, BAD[i].msg) != NULL, "case %zu: \"%s\" lacks \"%s\"", i,
			      err, BAD[i].msg);
	}
	/* an address of 128 characters is over the coordinator's limit */
	char j[1024], addr[129];
	memset(addr, 'x', 128);
	addr[128] = '\0';
	snprintf(j, sizeof(j),
		 HEAD "\"routes\":{\"b\":[{\"id\":\"b-1\",\"function\":\"b\","
		      "\"node\":\"n\",\"addresses\":{\"ipc\":\"%s\"},\"transports\":[\"ipc\"]}]}}",
		 addr);
	struct ir_table *t;
	char err[256] = "";
	ck_assert_int_eq(ir_table_parse(j, strlen(j), &t, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "routes.b[0].addresses.ipc must be 1-127 characters");
	addr[127] = '\0';
	snprintf(j, sizeof(j),
		 HEAD "\"routes\":{\"b\":[{\"id\":\"b-1\",\"function\":\"b\","
		      "\"node\":\"n\",\"addresses\":{\"ipc\":\"%s\"},\"transports\":[\"ipc\"]}]}}",
		 addr);
	ck_assert_int_eq(ir_table_parse(j, strlen(j), &t, err, sizeof(err)), 0);
	ck_assert_uint_eq(strlen(t->routes[0].inst[0].ipc), 127);
	ir_table_put(t);
}
END_TEST

/* ---- a scripted coordinator in this process ---- */

struct fake {
	int lfd, port;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t epoch;	  /* tables are fake_table(epoch) */
	unsigned poll_ms; /* a long-poll waits this long for a newer epoch */
	bool hold;	  /* long-polls never answer */
	int reg_status;	  /* != 200: register answers this with reg_error */
	const char *reg_error;
	int poll_status; /* != 0: routes answers this at once */
	int n404;	 /* the next n polls answer 404 */
	int registers, polls, leaves, stats, suspects, bad_auth;
	char reg_body[2048], leave_body[512], stats_body[8192], suspect_body[512];
};

static struct fake F;

static void fake_table(char *buf, size_t cap, uint64_t e)
{
	snprintf(
	    buf, cap,
	    "{\"epoch\":%llu,\"workflow\":\"t\",\"function\":\"a\",\"role\":\"function\","
	    "\"routes\":{\"b\":[{\"id\":\"b-%llu\",\"function\":\"b\",\"node\":\"n\","
	    "\"addresses\":{\"tcp\":\"127.0.0.1:1\"},\"transports\":[\"tcp\"],\"capacity\":1}]}}",
	    (unsigned long long)e, (unsigned long long)e);
}

static void send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void reply(int fd, int status, const char *body)
{
	char head[256];
	int n = status == 304 ? snprintf(head, sizeof(head), "HTTP/1.1 304 Not Modified\r\n\r\n")
			      : snprintf(head, sizeof(head),
					 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
					 "Content-Length: %zu\r\n\r\n",
					 status, strlen(body));
	send_all(fd, head, (size_t)n);
	if (status != 304)
		send_all(fd, body, strlen(body));
}

/* One request into @buf: the head, then the body at *@body. */
static bool read_request(int fd, char *buf, size_t cap, char **body)
{
	size_t len = 0;
	char *end;
	for (;;) {
		buf[len] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")))
			break;
		ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
		if (r <= 0)
			return false;
		len += (size_t)r;
	}
	*end = '\0';
	*body = end + 4;
	const char *cl = strcasestr(buf, "Content-Length:");
	size_t want = cl ? strtoul(cl + 15, NULL, 10) : 0, have = len - (size_t)(*body - buf);
	while (have < want && len < cap - 1) {
		ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
		if (r <= 0)
			return false;
		len += (size_t)r;
		have += (size_t)r;
	}
	(*body)[want] = '\0';
	return true;
}

static void fake_routes(int fd, const char *path)
{
	const char *s = strstr(path, "since=");
	uint64_t since = s ? strtoull(s + 6, NULL, 10) : 0;
	char tbl[1024];
	pthread_mutex_lock(&F.mu);
	F.polls++;
	if (F.n404 > 0) {
		F.n404--;
		pthread_mutex_unlock(&F.mu);
		reply(fd, 404, "{\"error\":\"routes: unknown instance\"}");
		return;
	}
	if (F.poll_status) {
		int st = F.poll_status;
		pthread_mutex_unlock(&F.mu);
		reply(fd, st, "{\"error\":\"scripted\"}");
		return;
	}
	uint64_t until = now_ms() + F.poll_ms;
	while ((F.hold || F.epoch <= since) && now_ms() < until) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&F.cv, &F.mu, &ts);
	}
	uint64_t e = F.epoch;
	pthread_mutex_unlock(&F.mu);
	if (e <= since) {
		reply(fd, 304, "");
		return;
	}
	fake_table(tbl, sizeof(tbl), e);
	reply(fd, 200, tbl);
}

static void fake_register(int fd, const char *body)
{
	char tbl[1024], out[2048];
	pthread_mutex_lock(&F.mu);
	int n = ++F.registers;
	snprintf(F.reg_body, sizeof(F.reg_body), "%s", body);
	int st = F.reg_status;
	const char *e = F.reg_error;
	fake_table(tbl, sizeof(tbl), F.epoch);
	pthread_mutex_unlock(&F.mu);
	if (st != 200) {
		snprintf(out, sizeof(out), "{\"error\":\"%s\"}", e);
		reply(fd, st, out);
		return;
	}
	snprintf(out, sizeof(out),
		 "{\"instance\":\"a-%d\",\"lease_ms\":1000,\"poll_ms\":%u,\"epoch\":1,"
		 "\"slice\":{\"workflow\":\"t\",\"function\":\"a\"},\"table\":%s}",
		 n, F.poll_ms, tbl);
	reply(fd, 200, out);
}

/* Record @body in @dst under the lock and count it. */
static void fake_note(int *count, char *dst, size_t cap, const char *body)
{
	pthread_mutex_lock(&F.mu);
	(*count)++;
	snprintf(dst, cap, "%s", body);
	pthread_mutex_unlock(&F.mu);
}

static void *fake_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	static _Thread_local char buf[16384];
	char *body;
	while (read_request(fd, buf, sizeof(buf), &body)) {
		char method[8] = "", path[512] = "";
		sscanf(buf, "%7s %511s", method, path);
		char want[96];
		snprintf(want, sizeof(want), "\r\nAuthorization: Bearer %s\r\n", test_token());
		if (!strstr(buf, want)) {
			pthread_mutex_lock(&F.mu);
			F.bad_auth++;
			pthread_mutex_unlock(&F.mu);
			reply(fd, 401, "{\"error\":\"bad token\"}");
		} else if (strcmp(path, "/v1/register") == 0)
			fake_register(fd, body);
		else if (strncmp(path, "/v1/routes?", 11) == 0)
			fake_routes(fd, path);
		else if (strcmp(path, "/v1/leave") == 0) {
			fake_note(&F.leaves, F.leave_body, sizeof(F.leave_body), body);
			reply(fd, 200, "{\"epoch\":9}");
		} else if (strcmp(path, "/v1/stats") == 0) {
			fake_note(&F.stats, F.stats_body, sizeof(F.stats_body), body);
			reply(fd, 200, "{}");
		} else if (strcmp(path, "/v1/suspect") == 0) {
			fake_note(&F.suspects, F.suspect_body, sizeof(F.suspect_body), body);
			reply(fd, 200, "{\"removed\":true,\"epoch\":9}");
		} else
			reply(fd, 404, "{\"error\":\"no\"}");
	}
	close(fd);
	return NULL;
}

static void *fake_accept(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(F.lfd, NULL, NULL);
		if (fd < 0)
			return NULL;
		pthread_t t;
		pthread_create(&t, NULL, fake_conn, (void *)(intptr_t)fd);
		pthread_detach(t);
	}
}

/* Listen on @port (0 = any) and serve from a thread until the process
 * ends (Check forks one per test). */
static void fake_start(int port)
{
	memset(&F, 0, sizeof(F));
	pthread_mutex_init(&F.mu, NULL);
	pthread_cond_init(&F.cv, NULL);
	F.epoch = 1;
	F.poll_ms = 300;
	F.reg_status = 200;
	F.lfd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(F.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(bind(F.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(F.lfd, 64), 0);
	socklen_t len = sizeof(a);
	getsockname(F.lfd, (struct sockaddr *)&a, &len);
	F.port = ntohs(a.sin_port);
	pthread_t t;
	pthread_create(&t, NULL, fake_accept, NULL);
	pthread_detach(t);
}

static void fake_set_epoch(uint64_t e)
{
	pthread_mutex_lock(&F.mu);
	F.epoch = e;
	pthread_cond_broadcast(&F.cv);
	pthread_mutex_unlock(&F.mu);
}

static int fake_count(const int *n)
{
	pthread_mutex_lock(&F.mu);
	int v = *n;
	pthread_mutex_unlock(&F.mu);
	return v;
}

/* on_table: every epoch seen, and whether they only grew. */
struct rec {
	pthread_mutex_t mu;
	uint64_t epochs[512];
	int nb[512]; /* instances of route "b" in that table, -1 when no route */
	int n;
	bool decreased;
};

static void rec_cb(void *arg, struct ir_table *t)
{
	struct rec *r = arg;
	pthread_mutex_lock(&r->mu);
	if (r->n && t->epoch <= r->epochs[r->n - 1])
		r->decreased = true;
	const struct ir_route_fn *b = ir_table_route(t, "b");
	if (r->n < 512) {
		r->nb[r->n] = b ? (int)b->n : -1;
		r->epochs[r->n++] = t->epoch;
	}
	pthread_mutex_unlock(&r->mu);
}

static void rec_init(struct rec *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
}

static char url_buf[64];

static void opts_for(struct ir_ccc_opts *o, int port, const char *fn, struct rec *r)
{
	snprintf(url_buf, sizeof(url_buf), "http://127.0.0.1:%d", port);
	*o = (struct ir_ccc_opts){.url = url_buf,
				  .token = test_token(),
				  .function = fn,
				  .entry = fn == NULL,
				  .node = "node-1",
				  .tcp_addr = "127.0.0.1:1",
				  .register_timeout_ms = 1500,
				  .on_table = r ? rec_cb : NULL,
				  .arg = r};
}

static bool wait_epoch(struct ir_ccc *c, uint64_t e, unsigned ms)
{
	uint64_t t0 = now_ms();
	while (ir_ccc_epoch(c) != e) {
		if (now_ms() - t0 > ms)
			return false;
		sleep_ms(5);
	}
	return true;
}

START_TEST(fake_register_and_poll)
{
	fake_start(0);
	struct rec r;
	rec_init(&r);
	struct ir_ccc_opts o;
	opts_for(&o, F.port, "a", &r);
	o.http_addr = "127.0.0.1:2";
	o.ipc_path = "/run/iroute/a.sock";
	o.capacity = 7;
	struct ir_ccc *c;
	char err[512] = "";
	ck_assert_int_eq(ir_ccc_start(&c, &o, err, sizeof(err)), 0);
	ck_assert(ir_ccc_registered(c));
	char id[80];
	ck_assert_uint_eq(ir_ccc_instance(c, id, sizeof(id)), 3);
	ck_assert_str_eq(id, "a-1");
	ck_assert_uint_eq(ir_ccc_epoch(c), 1);
	ck_assert_int_eq(r.n, 1); /* on_table ran for the first table, in start */
	char *slice = ir_ccc_slice(c);
	ck_assert_str_eq(slice, "{\"workflow\":\"t\",\"function\":\"a\"}");
	free(slice);
	/* what was sent; no "epoch" before any was seen */
	ck_assert_str_eq(F.reg_body,
			 "{\"function\":\"a\",\"node\":\"node-1\",\"addresses\":{\"http\":"
			 "\"127.0.0.1:2\",\"tcp\":\"127.0.0.1:1\",\"ipc\":\"/run/iroute/a.sock\"},"
			 "\"transports\":[\"ipc\",\"tcp\"],\"capacity\":7}");
	fake_set_epoch(2);
	ck_assert(wait_epoch(c, 2, 1000));
	struct ir_table *t = ir_ccc_table(c, 0);
	ck_assert_str_eq(ir_table_route(t, "b")->inst[0].id, "b-2");
	ir_table_put(t);
	pthread_mutex_lock(&r.mu);
	ck_assert_int_eq(r.n, 2);
	ck_assert_uint_eq(r.epochs[1], 2);
	pthread_mutex_unlock(&r.mu);
	/* 304s: nothing new, the client keeps polling at the server's pace */
	int p0 = fake_count(&F.polls);
	sleep_ms(1000);
	int polls = fake_count(&F.polls) - p0;
	ck_assert_msg(polls >= 2 && polls <= 5, "%d polls in 1 s with poll_ms 300", polls);
	ck_assert_int_eq(r.n, 2);
	ck_assert_int_eq(fake_count(&F.bad_auth), 0);
	ck_assert_int_eq(fake_count(&F.registers), 1);
	ir_ccc_stop(c);
}
END_TEST

START_TEST(fake_keep_last_four)
{
	fake_start(0);
	struct rec r;
	rec_init(&r);
	struct ir_ccc_opts o;
	opts_for(&o, F.port, "a", &r);
	struct ir_ccc *c;
	char err[512] = "";
	ck_assert_int_eq(ir_ccc_start(&c, &o, err, sizeof(err)), 0);
	struct ir_table *held = ir_ccc_table(c, 1);
	ck_assert_uint_eq(held->epoch, 1);
	static const uint64_t seq[] = {2, 5, 7, 8};
	for (size_t i = 0; i < 4; i++) {
		fake_set_epoch(seq[i]);
		ck_assert_msg(wait_epoch(c, seq[i], 1000), "epoch %llu not seen",
			      (unsigned long long)seq[i]);
	}
	/* kept: 2 5 7 8; epoch 1 evicted but still valid through our reference */
	ck_assert_str_eq(ir_table_route(held, "b")->inst[0].id, "b-1");
	ir_table_put(held);
	static const struct {
		uint64_t ask, want;
	} q[] = {{0, 8}, {8, 8},   {7, 7},
		 {5, 5}, {2, 2},   {6, 5},
		 {3, 2}, {4, 2},   {1, 8} /* older than all kept: the newest */,
		 {9, 8}, {1000, 8}};
	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		struct ir_table *t = ir_ccc_table(c, q[i].ask);
		ck_assert_msg(t && t->epoch == q[i].want, "table(%llu) = %llu, want %llu",
			      (unsigned long long)q[i].ask, (unsigned long long)(t ? t->epoch : 0),
			      (unsigned long long)q[i].want);
		ir_table_put(t);
	}
	/* an older epoch from the coordinator is never applied */
	fake_set_epoch(6);
	sleep_ms(400);
	ck_assert_uint_eq(ir_ccc_epoch(c), 8);
	pthread_mutex_lock(&r.mu);
	ck_assert_int_eq(r.n, 5);
	ck_assert(!r.decreased);
	pthread_mutex_unlock(&r.mu);
	ir_ccc_stop(c);
}
END_TEST

/* 404: the coordinator forgot us.  Register again, reporting the newest
 * epoch seen; the answer's table is older (a coordinator restarted without
 * its mirror) and must not replace the newer one. */
START_TEST(fake_404_registers_again)
{
	fake_start(0);
	struct rec r;
	rec_init(&r);
	struct ir_ccc_opts o;
	opts_for(&o, F.port, "a", &r);
	struct ir_ccc *c;
	char err[512] = "";
	fake_set_epoch(4);
	ck_assert_int_eq(ir_ccc_start(&c, &o, err, sizeof(err)), 0);
	ck_assert_uint_eq(ir_ccc_epoch(c), 4);
	fake_set_epoch(5);
	ck_assert(wait_epoch(c, 5, 1000));
	uint64_t t0 = now_ms();
	int p0 = fake_count(&F.polls);
	while (fake_count(&F.polls) == p0 && now_ms() - t0 < 1000)
		sleep_ms(2);
	ck_assert_int_gt(fake_count(&F.polls), p0); /* a poll since=5 is held */
	pthread_mutex_lock(&F.mu);
	F.n404 = 1;
	F.epoch = 3; /* no wake-up: the held poll ends with 304, the next is a 404 */
	pthread_mutex_unlock(&F.mu);
	t0 = now_ms();
	while (fake_count(&F.registers) < 2 && now_ms() - t0 < 2000)
		sleep_ms(5);
	ck_assert_int_eq(fake_count(&F.registers), 2);
	pthread_mutex_lock(&F.mu);
	ck_assert_msg(strstr(F.reg_body, "\"epoch\":5") != NULL, "%s", F.reg_body);
	pthread_mutex_unlock(&F.mu);
	t0 = now_ms();
	char id[80] = "";
	while (strcmp(id, "a-2") != 0 && now_ms() - t0 < 1000) {
		ir_ccc_instance(c, id, sizeof(id));
		sleep_ms(5);
	}
	ck_assert_str_eq(id, "a-2");
	ck_assert(ir_ccc_registered(c));
	sleep_ms(50);
	ck_assert_uint_eq(ir_ccc_epoch(c), 5); /* epoch 3 from the answer was dropped */
	struct ir_table *t = ir_ccc_table(c, 3);
	ck_assert_uint_eq(t->epoch, 5); /* nothing <= 3 is kept: the newest */
	ir_table_put(t);
	fake_set_epoch(6);
	ck_assert(wait_epoch(c, 6, 1000));
	pthread_mutex_lock(&r.mu);
	ck_assert(!r.decreased);
	ck_assert_int_eq(r.n, 3); /* 4, 5, 6 */
	pthread_mutex_unlock(&r.mu);
	ir_ccc_stop(c);
}
END_TEST

START_TEST(fake_stop_mid_poll)
{
	fake_start(0);
	pthread_mutex_lock(&F.mu);
	F.hold = true;
	F.poll_ms = 20000;
	pthread_mutex_unlock(&F.mu);
	struct ir_ccc_opts o;
	opts_for(&o, F.port, "a", NULL);
	struct ir_ccc *c;
	char err[512] = "";
	ck_assert_int_eq(ir_ccc_start(&c, &o, err, sizeof(err)), 0);
	uint64_t t0 = now_ms();
	while (fake_count(&F.polls) < 1 && now_ms() - t0 < 1000)
		sleep_ms(5);
	ck_assert_int_eq(fake_count(&F.polls), 1);
	sleep_ms(100); /* well inside the held long-poll */
	t0 = now_ms();
	ir_ccc_stop(c);
	uint64_t took = now_ms() - t0;
	ck_assert_msg(took < 100, "stop took %llu ms", (unsigned long long)took);
}
END_TEST

START_TEST(fake_poll_errors_back_off)
{
	fake_start(0);
	struct ir_ccc_opts o;
	opts_for(&o, F.port, "a", NULL);
	struct ir_ccc *c;
	char err[512] = "";
	ck_assert_int_eq(ir_ccc_start(&c, &o, err, sizeof(err)), 0);
	pthread_mutex_lock(&F.mu);
	F.poll_status = 500;
	int p0 = F.polls;
	pthread_mutex_unlock(&F.mu);
	sleep_ms(2000);
	/* 50, 100, 200, 400, 800 ms (each jittered to [d/2, d]) + the held poll */
	int polls = fake_count(&F.polls) - p0;
	ck_assert_msg(polls >= 4 && polls <= 14, "%d polls in 2 s of 500s", polls);
	char last[512];
	ir_ccc_last_error(c, last, sizeof(last));
	ck_assert_msg(strstr(last, "GET /v1/routes: 500: scripted") != NULL, "%s", last);
	struct ir_table *t = ir_ccc_table(c, 0); /* still served */
	ck_assert_uint_eq(t->epoch, 1);
	ir_table_put(t);
	/* and it recovers */
	pthread_mutex_lock(&F.mu);
	F.poll_status = 0;
	pthread_mutex_unlock(&F.mu);
	fake_set_epoch(3);
	ck_assert(wait_epoch(c, 3, 3000));
	ir_ccc_stop(c);
}
END_TEST

START_TEST(fake_register_refused)
{
	fake_start(0);
	struct ir_ccc_opts o;
	struct ir_ccc *c = (struct ir_ccc *)1;
	char err[512] = "";
	opts_for(&o, F.port, "a", NULL);
	char wrong[64];
	snprintf(wrong, sizeof(wrong), "%sx", test_token()); /* not the cluster's */
	o.token = wrong;
	ck_assert_int_eq(ir_ccc_start(&c, &o, err, sizeof(err)), -EACCES);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(err, "401: bad token") != NULL, "%s", err);
	ck_assert_int_eq(fake_count(&F.bad_auth), 1); /* not retried */

	opts_for(&o, F.port, "a", NULL);
	F.reg_status = 400;
	F.reg_error = "register: function \\\"zz\\\" is not in workflow \\\"t\\\"";
	ck_assert_int_eq(ir_ccc_start(&c, &o, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "400: register: function \"zz\" is not in workflow") != NULL,
		      "%s", err);
	ck_assert_int_eq(fake_count(&F.registers), 1);

	/* 503 is retried with backoff until register_timeout_ms */
	F.reg_status = 503;
	F.reg_error = "busy";
	o.register_timeout_ms = 1000;
	uint64_t t0 = now_ms();
	ck_assert_int_eq(ir_ccc_start(&c, &o, err, sizeof(err)), -EAGAIN);
	uint64_t took = now_ms() - t0;
	ck_assert_msg(took >= 1000 && took < 1300, "took %llu ms", (unsigned long long)took);
	int n = fake_count(&F.registers) - 1;
	/* 50..1000 ms doubling, jittered: 5 to 12 attempts in one second */
	ck_assert_msg(n >= 4 && n <= 12, "%d attempts", n);
	ck_assert_msg(strstr(err, "did not answer within 1000 ms") && strstr(err, "503: busy"),
		      "%s", err);
}
END_TEST

START_TEST(bad_options)
{
	struct ir_ccc_opts o;
	struct ir_ccc *c;
	char err[512] = "";
	opts_for(&o, 1, "a", NULL);
	o.url = "ftp://x";
	ck_assert_int_eq(ir_ccc_start(&c, &o, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "ftp://x") != NULL, "%s", err);
	opts_for(&o, 1, "a", NULL);
	o.entry = true;
	ck_assert_int_eq(ir_ccc_start(&c, &o, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "give a function or entry, not both");
	opts_for(&o, 1, "a", NULL);
	o.tcp_addr = NULL;
	ck_assert_int_eq(ir_ccc_start(&c, &o, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "no address: offer http_addr, tcp_addr or ipc_path");
	opts_for(&o, 1, "a", NULL);
	o.tcp_addr = NULL;
	o.http_addr = "127.0.0.1:5";
	ck_assert_int_eq(ir_ccc_start(&c, &o, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "transports: none (only http offered: set transports)");
	opts_for(&o, 1, "a", NULL);
	o.zk_hosts = "127.0.0.1:2181";
	ck_assert_int_eq(ir_ccc_start(&c, &o, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "the ZooKeeper fallback needs the workflow's name");
}
END_TEST

START_TEST(no_coordinator)
{
	struct ir_ccc_opts o;
	struct ir_ccc *c;
	char err[512] = "";
	int port = free_port();
	opts_for(&o, port, "a", NULL);
	o.node = NULL; /* the boot id */
	o.register_timeout_ms = 400;
	uint64_t t0 = now_ms();
	ck_assert_int_eq(ir_ccc_start(&c, &o, err, sizeof(err)), -EAGAIN);
	uint64_t took = now_ms() - t0;
	ck_assert_msg(took >= 400 && took < 600, "took %llu ms", (unsigned long long)took);
	char want[128];
	snprintf(want, sizeof(want), "coordinator http://127.0.0.1:%d did not answer within 400 ms",
		 port);
	ck_assert_msg(strstr(err, want) && strstr(err, "Connection refused"), "%s", err);
}
END_TEST

START_TEST(fake_stats_suspect_leave)
{
	fake_start(0);
	struct ir_ccc_opts o;
	opts_for(&o, F.port, NULL, NULL); /* an entry */
	struct ir_ccc *c;
	char err[512] = "";
	ck_assert_int_eq(ir_ccc_start(&c, &o, err, sizeof(err)), -EPROTO);
	/* the fake answers every registration with function a's table: an entry refuses it */
	ck_assert_msg(strstr(err, "register answer: the table is function \"a\"'s, not the entry "
				  "role's"),
		      "%s", err);
	opts_for(&o, F.port, "a", NULL);
	ck_assert_int_eq(ir_ccc_start(&c, &o, err, sizeof(err)), 0);
	struct ir_hist h = {0};
	ir_hist_add(&h, 1500);
	ir_hist_add(&h, 40);
	ck_assert_int_eq(ir_ccc_push_stats(c, &h), 0);
	ck_assert_int_eq(ir_ccc_push_stats(c, &h), 0); /* the same kept-alive connection */
	ck_assert_int_eq(fake_count(&F.stats), 2);
	ck_assert_msg(strstr(F.stats_body, "\"instance\":\"a-2\",\"latency\":{\"unit\":\"us\","
					   "\"max\":1500,\"buckets\":[") != NULL,
		      "%s", F.stats_body);
	bool removed = false;
	ck_assert_int_eq(ir_ccc_suspect(c, "b-9", &removed), 0);
	ck_assert(removed);
	ck_assert_str_eq(F.suspect_body, "{\"instance\":\"b-9\",\"by\":\"a-2\"}");
	int p0 = fake_count(&F.polls);
	ck_assert_int_eq(ir_ccc_leave(c), 0);
	ck_assert_str_eq(F.leave_body, "{\"instance\":\"a-2\"}");
	ck_assert(!ir_ccc_registered(c));
	ck_assert_int_eq(ir_ccc_push_stats(c, &h), -ENOTCONN);
	sleep_ms(400);
	ck_assert_int_le(fake_count(&F.polls), p0 + 1); /* the thread has stopped */
	struct ir_table *t = ir_ccc_table(c, 0);	/* tables stay readable */
	ck_assert_uint_eq(t->epoch, 1);
	ir_table_put(t);
	ck_assert_int_eq(ir_ccc_leave(c), 0); /* twice: nothing to do */
	ck_assert_int_eq(fake_count(&F.leaves), 1);
	ir_ccc_stop(c);
}
END_TEST

/* The file mirror when the coordinator is away, then the coordinator
 * comes up on that address and the client thread registers. */
START_TEST(fallback_file_then_register)
{
	twd_setup();
	char mp[128];
	path_in(mp, sizeof(mp), "mirror.json");
	FILE *f = fopen(mp, "w");
	ck_assert_ptr_nonnull(f);
	fputs("{\"epoch\":7,\"ms\":1,\"workflow\":{\"name\":\"t\",\"functions\":{\"a\":{\"next\":"
	      "[\"b\"]},\"b\":{\"next\":[]}},\"entry\":[\"a\"]},\"functions\":{\"b\":["
	      "{\"id\":\"b-77\",\"function\":\"b\",\"node\":\"n\",\"addresses\":{\"tcp\":"
	      "\"127.0.0.1:3\"},\"transports\":[\"tcp\"],\"capacity\":2}]},\"entries\":[]}",
	      f);
	fclose(f);
	int port = free_port();
	struct ir_ccc_opts o;
	opts_for(&o, port, "a", NULL);
	o.mirror_file = mp;
	o.workflow = "t";
	o.register_timeout_ms = 200;
	struct ir_ccc *c;
	char err[512] = "";
	ck_assert_int_eq(ir_ccc_start(&c, &o, err, sizeof(err)), 0);
	ck_assert(!ir_ccc_registered(c));
	struct ir_table *t = ir_ccc_table(c, 0);
	ck_assert_uint_eq(t->epoch, 7);
	ck_assert_str_eq(t->function, "a");
	ck_assert_uint_eq(t->nroutes, 1);
	ck_assert_str_eq(ir_table_route(t, "b")->inst[0].id, "b-77");
	ck_assert_uint_eq(ir_table_route(t, "b")->inst[0].capacity, 2);
	ir_table_put(t);
	char *slice = ir_ccc_slice(c); /* built from the mirror's workflow */
	ck_assert_msg(slice && strstr(slice, "\"function\":\"a\""), "%s", slice);
	free(slice);
	/* an unknown function, a wrong workflow name: refused, naming it */
	struct ir_ccc *c2;
	o.function = "zz";
	ck_assert_int_eq(ir_ccc_start(&c2, &o, err, sizeof(err)), -EAGAIN);
	ck_assert_msg(strstr(err, "mirror: function \"zz\" is not in workflow \"t\""), "%s", err);
	o.function = "a";
	o.workflow = "other";
	ck_assert_int_eq(ir_ccc_start(&c2, &o, err, sizeof(err)), -EAGAIN);
	ck_assert_msg(strstr(err, "mirror: holds workflow \"t\", not \"other\""), "%s", err);
	/* the coordinator appears: the thread registers, with the epoch it saw */
	fake_start(port);
	fake_set_epoch(9);
	uint64_t t0 = now_ms();
	while (!ir_ccc_registered(c) && now_ms() - t0 < 3000)
		sleep_ms(10);
	ck_assert(ir_ccc_registered(c));
	ck_assert_msg(strstr(F.reg_body, "\"epoch\":7"), "%s", F.reg_body);
	ck_assert(wait_epoch(c, 9, 1000));
	ir_ccc_stop(c);
	twd_teardown();
}
END_TEST

START_TEST(opts_env)
{
	struct ir_ccc_opts o = {.token = test_token()};
	char err[256] = "";
	unsetenv("IROUTE_CC");
	ck_assert_int_eq(ir_ccc_opts_from_env(&o, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "IROUTE_CC is not set"), "%s", err);
	setenv("IROUTE_CC", "http://cc:8080", 1);
	setenv("IROUTE_FUNCTION", "b", 1);
	setenv("IROUTE_TCP_ADDR", "10.0.0.1:9", 1);
	setenv("IROUTE_CAPACITY", "4", 1);
	setenv("IROUTE_ZK", "zk:2181", 1);
	setenv("IROUTE_WORKFLOW_NAME", "t", 1);
	ck_assert_int_eq(ir_ccc_opts_from_env(&o, err, sizeof(err)), 0);
	ck_assert_str_eq(o.url, "http://cc:8080");
	ck_assert_str_eq(o.function, "b");
	ck_assert(!o.entry);
	ck_assert_str_eq(o.tcp_addr, "10.0.0.1:9");
	ck_assert_ptr_null(o.http_addr);
	ck_assert_uint_eq(o.capacity, 4);
	ck_assert_str_eq(o.zk_hosts, "zk:2181");
	ck_assert_str_eq(o.workflow, "t");
	ck_assert_ptr_eq(o.token, test_token()); /* not read from the environment */
	setenv("IROUTE_FUNCTION", "", 1);
	setenv("IROUTE_CAPACITY", "0", 1);
	ck_assert_int_eq(ir_ccc_opts_from_env(&o, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "IROUTE_CAPACITY=\"0\""), "%s", err);
	ck_assert(o.entry);
}
END_TEST

/* ---- the real coordinator ---- */

static char cc_env[4][200];

/* iroute-cc on twd_port, workflow a -> b, mirror in the test directory. */
static void cc_run(const char *const *extra)
{
	char p[128];
	path_in(p, sizeof(p), "wf.json");
	FILE *f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs("{\"name\":\"t\",\"dag\":[[\"a\"],[\"b\"]]}", f);
	fclose(f);
	snprintf(cc_env[0], sizeof(cc_env[0]), "IROUTE_WORKFLOW=%s", p);
	snprintf(cc_env[1], sizeof(cc_env[1]), "IROUTE_MIRROR_FILE=%s/mirror.json", twd_dir);
	snprintf(cc_env[2], sizeof(cc_env[2]), "port=%d", twd_port);
	const char *env[16] = {test_token_env(),  cc_env[0],	    cc_env[1], cc_env[2],
			       "IROUTE_LEASE_MS=1000", "IROUTE_POLL_MS=300"};
	size_t n = 6;
	for (size_t i = 0; extra && extra[i]; i++)
		env[n++] = extra[i];
	env[n] = NULL;
	spawn_bin("iroute-cc", env, true);
}

/* Wait until the coordinator's mirror holds its current epoch with @n
 * instances (GET /v1/stats). */
static void wait_mirrored(int n)
{
	uint64_t t0 = now_ms();
	for (;;) {
		ck_assert_int_eq(
		    curl(twd_port, "stats", test_bearer_curl(), "/v1/stats"),
		    200);
		char *s = read_file("stats", NULL);
		cJSON *o = cJSON_Parse(s);
		free(s);
		const cJSON *m = cJSON_GetObjectItem(o, "mirror");
		const cJSON *in = cJSON_GetObjectItem(o, "instances");
		bool ok = cJSON_GetObjectItem(in, "total")->valuedouble == n &&
			  cJSON_GetObjectItem(m, "epoch")->valuedouble ==
			      cJSON_GetObjectItem(o, "epoch")->valuedouble;
		cJSON_Delete(o);
		if (ok)
			return;
		ck_assert_msg(now_ms() - t0 < 5000, "the mirror did not catch up");
		sleep_ms(50);
	}
}

static void cc_kill(void)
{
	kill(twd_pid, SIGKILL);
	waitpid(twd_pid, NULL, 0);
	twd_pid = 0;
}

static struct ir_ccc *client(const char *fn, const char *tcp, struct rec *r)
{
	struct ir_ccc_opts o;
	opts_for(&o, twd_port, fn, r);
	o.tcp_addr = tcp;
	o.node = NULL;
	struct ir_ccc *c;
	char err[512] = "";
	int rc = ir_ccc_start(&c, &o, err, sizeof(err));
	ck_assert_msg(rc == 0, "start %s: %d %s", fn ? fn : "entry", rc, err);
	ck_assert(ir_ccc_registered(c));
	return c;
}

/* Instances of @fn in @c's newest table; with @id, whether it is one. */
static size_t route_n(struct ir_ccc *c, const char *fn, const char *id, bool *has)
{
	struct ir_table *t = ir_ccc_table(c, 0);
	const struct ir_route_fn *r = ir_table_route(t, fn);
	size_t n = r ? r->n : 0;
	if (has) {
		*has = false;
		for (size_t i = 0; r && i < r->n; i++)
			*has |= strcmp(r->inst[i].id, id) == 0;
	}
	ir_table_put(t);
	return n;
}

static bool wait_route_n(struct ir_ccc *c, const char *fn, size_t n, unsigned ms)
{
	uint64_t t0 = now_ms();
	while (route_n(c, fn, NULL, NULL) != n) {
		if (now_ms() - t0 > ms)
			return false;
		sleep_ms(10);
	}
	return true;
}

START_TEST(cc_routes_leave_lease)
{
	twd_setup();
	cc_run(NULL);
	struct rec ra;
	rec_init(&ra);
	struct ir_ccc *a = client("a", "127.0.0.1:9001", &ra);
	struct ir_ccc *b1 = client("b", "127.0.0.1:9101", NULL);
	struct ir_ccc *b2 = client("b", "127.0.0.1:9102", NULL);
	struct ir_ccc *e = client(NULL, "127.0.0.1:9201", NULL);
	uint64_t t0 = now_ms();
	ck_assert(wait_route_n(a, "b", 2, 1000));
	ck_assert_msg(now_ms() - t0 < 1000, "a saw both b's after %llu ms",
		      (unsigned long long)(now_ms() - t0));
	char id1[80], id2[80];
	ir_ccc_instance(b1, id1, sizeof(id1));
	ir_ccc_instance(b2, id2, sizeof(id2));
	bool has1, has2;
	route_n(a, "b", id1, &has1);
	route_n(a, "b", id2, &has2);
	ck_assert(has1 && has2);
	/* the entry routes to a; b (a sink) sees the entry */
	ck_assert(wait_route_n(e, "a", 1, 1000));
	struct ir_table *bt = ir_ccc_table(b1, 0);
	ck_assert(bt->entry_role == false && strcmp(bt->function, "b") == 0);
	ir_table_put(bt);
	t0 = now_ms();
	while (now_ms() - t0 < 1000) {
		bt = ir_ccc_table(b1, 0);
		size_t ne = bt->nentries;
		ir_table_put(bt);
		if (ne == 1)
			break;
		sleep_ms(10);
	}
	bt = ir_ccc_table(b1, 0);
	ck_assert_uint_eq(bt->nentries, 1);
	ir_table_put(bt);
	/* b1 leaves */
	ck_assert_int_eq(ir_ccc_leave(b1), 0);
	ck_assert(wait_route_n(a, "b", 1, 1000));
	route_n(a, "b", id2, &has2);
	ck_assert(has2);
	/* b2 stops without leaving: gone after its lease (1 s) */
	t0 = now_ms();
	ir_ccc_stop(b2);
	ck_assert(wait_route_n(a, "b", 0, 3000));
	ck_assert_msg(now_ms() - t0 >= 700, "removed after %llu ms, before the lease",
		      (unsigned long long)(now_ms() - t0));
	/* a's epochs only grew, and a polled through all of it */
	pthread_mutex_lock(&ra.mu);
	ck_assert(!ra.decreased);
	ck_assert_int_ge(ra.n, 4);
	pthread_mutex_unlock(&ra.mu);
	ck_assert(ir_ccc_registered(a));
	ir_ccc_stop(b1);
	ir_ccc_stop(e);
	ir_ccc_stop(a);
	twd_teardown();
}
END_TEST

START_TEST(cc_restart)
{
	twd_setup();
	cc_run(NULL);
	struct rec ra;
	rec_init(&ra);
	struct ir_ccc *a = client("a", "127.0.0.1:9001", &ra);
	struct ir_ccc *b = client("b", "127.0.0.1:9101", NULL);
	char idb[80], ida[80];
	ir_ccc_instance(b, idb, sizeof(idb));
	ir_ccc_instance(a, ida, sizeof(ida));
	ck_assert(wait_route_n(a, "b", 1, 1000));
	wait_mirrored(2); /* the mirror has b before the crash */
	uint64_t t0;
	uint64_t e0 = ir_ccc_epoch(a);
	cc_kill();
	sleep_ms(700); /* polls fail, back off; tables still served */
	struct ir_table *t = ir_ccc_table(a, 0);
	ck_assert_uint_eq(t->epoch, e0);
	ck_assert_uint_eq(ir_table_route(t, "b")->n, 1);
	ir_table_put(t);
	t = ir_ccc_table(a, e0);
	ck_assert_uint_eq(t->epoch, e0);
	ir_table_put(t);
	char last[512];
	ir_ccc_last_error(a, last, sizeof(last));
	ck_assert_msg(strstr(last, "GET /v1/routes"), "%s", last);
	cc_run(NULL);
	/* a newer epoch with b in it, from the same instances (re-confirmed) */
	t0 = now_ms();
	bool has = false;
	while (now_ms() - t0 < 4000) {
		if (ir_ccc_epoch(a) > e0 && route_n(a, "b", idb, &has) == 1 && has)
			break;
		sleep_ms(20);
	}
	ck_assert_msg(ir_ccc_epoch(a) > e0, "epoch %llu, was %llu",
		      (unsigned long long)ir_ccc_epoch(a), (unsigned long long)e0);
	ck_assert(has);
	/* still there after a lease: re-confirmed, not just reloaded */
	sleep_ms(1600);
	ck_assert_uint_eq(route_n(a, "b", idb, &has), 1);
	ck_assert(has);
	ck_assert(ir_ccc_registered(a) && ir_ccc_registered(b));
	char now_a[80];
	ir_ccc_instance(a, now_a, sizeof(now_a));
	ck_assert_str_eq(now_a, ida);
	pthread_mutex_lock(&ra.mu);
	ck_assert(!ra.decreased);
	pthread_mutex_unlock(&ra.mu);
	/* a restart without the mirror: 404, register again, epochs still grow */
	uint64_t e1 = ir_ccc_epoch(a);
	cc_kill();
	char mp[128];
	path_in(mp, sizeof(mp), "mirror.json");
	unlink(mp);
	cc_run(NULL);
	t0 = now_ms();
	char id_new[80] = "";
	while (now_ms() - t0 < 4000) {
		ir_ccc_instance(a, id_new, sizeof(id_new));
		if (*id_new && strcmp(id_new, ida) != 0 && route_n(a, "b", NULL, NULL) == 1 &&
		    ir_ccc_epoch(a) > e1)
			break;
		sleep_ms(20);
	}
	ck_assert_msg(*id_new && strcmp(id_new, ida) != 0, "a did not register again");
	ck_assert_uint_gt(ir_ccc_epoch(a), e1);
	ck_assert_uint_eq(route_n(a, "b", NULL, NULL), 1);
	pthread_mutex_lock(&ra.mu);
	ck_assert(!ra.decreased);
	pthread_mutex_unlock(&ra.mu);
	ir_ccc_stop(b);
	ir_ccc_stop(a);
	twd_teardown();
}
END_TEST

START_TEST(cc_refusals)
{
	twd_setup();
	cc_run(NULL);
	struct ir_ccc_opts o;
	struct ir_ccc *c;
	char err[512] = "";
	opts_for(&o, twd_port, "a", NULL);
	o.token = "not-the-token";
	ck_assert_int_eq(ir_ccc_start(&c, &o, err, sizeof(err)), -EACCES);
	ck_assert_msg(strstr(err, "401") && strstr(err, "Authorization: Bearer"), "%s", err);
	opts_for(&o, twd_port, "zz", NULL);
	ck_assert_int_eq(ir_ccc_start(&c, &o, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "function \"zz\" is not in workflow \"t\""), "%s", err);
	twd_teardown();
}
END_TEST

START_TEST(cc_stats_suspect)
{
	twd_setup();
	cc_run(NULL);
	struct ir_ccc *e = client(NULL, "127.0.0.1:9201", NULL);
	int dead = free_port();
	char addr[32];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", dead);
	struct ir_ccc *b = client("b", addr, NULL);
	struct rec ra;
	rec_init(&ra);
	struct ir_ccc *a = client("a", "127.0.0.1:9001", &ra);
	struct ir_hist h = {0};
	for (int i = 0; i < 100; i++)
		ir_hist_add(&h, 2000);
	ck_assert_int_eq(ir_ccc_push_stats(e, &h), 0);
	ck_assert_int_eq(
	    curl(twd_port, "stats", test_bearer_curl(), "/v1/stats"), 200);
	char *s = read_file("stats", NULL);
	ck_assert_msg(strstr(s, "\"count\":100"), "%s", s);
	free(s);
	/* b's tcp address does not answer: the coordinator removes it */
	char idb[80];
	ir_ccc_instance(b, idb, sizeof(idb));
	ck_assert(wait_route_n(a, "b", 1, 1000));
	bool removed = false;
	ck_assert_int_eq(ir_ccc_suspect(a, idb, &removed), 0);
	ck_assert(removed);
	ck_assert_int_eq(ir_ccc_suspect(a, "b-nope", &removed), -ENOENT);
	/* a saw a table without b; b's next poll is a 404: it registers again
	 * (a new id) and is back */
	uint64_t t0 = now_ms();
	char idb2[80] = "";
	while (now_ms() - t0 < 3000) {
		ir_ccc_instance(b, idb2, sizeof(idb2));
		if (*idb2 && strcmp(idb2, idb) != 0)
			break;
		sleep_ms(10);
	}
	ck_assert_msg(*idb2 && strcmp(idb2, idb) != 0, "b kept id %s", idb2);
	ck_assert(wait_route_n(a, "b", 1, 2000));
	bool has;
	route_n(a, "b", idb2, &has);
	ck_assert(has);
	pthread_mutex_lock(&ra.mu);
	bool saw_empty = false;
	for (int i = 0; i < ra.n; i++)
		saw_empty |= i > 0 && ra.nb[i] == 0 && ra.nb[i - 1] == 1;
	ck_assert(saw_empty);
	pthread_mutex_unlock(&ra.mu);
	ir_ccc_stop(a);
	ir_ccc_stop(b);
	ir_ccc_stop(e);
	twd_teardown();
}
END_TEST

/* The coordinator crashed; a new instance starts from the mirror (the
 * real coordinator's file), then registers once the coordinator is back. */
START_TEST(cc_fallback_file)
{
	twd_setup();
	cc_run(NULL);
	struct ir_ccc *b = client("b", "127.0.0.1:9101", NULL);
	char idb[80], mp[128];
	ir_ccc_instance(b, idb, sizeof(idb));
	path_in(mp, sizeof(mp), "mirror.json");
	wait_mirrored(1);
	uint64_t t0;
	cc_kill();
	struct ir_ccc_opts o;
	opts_for(&o, twd_port, "a", NULL);
	o.mirror_file = mp;
	o.workflow = "t";
	o.register_timeout_ms = 300;
	struct ir_ccc *a;
	char err[512] = "";
	ck_assert_int_eq(ir_ccc_start(&a, &o, err, sizeof(err)), 0);
	ck_assert(!ir_ccc_registered(a));
	bool has = false;
	ck_assert_uint_eq(route_n(a, "b", idb, &has), 1);
	ck_assert(has);
	uint64_t e0 = ir_ccc_epoch(a);
	cc_run(NULL);
	t0 = now_ms();
	while (!ir_ccc_registered(a) && now_ms() - t0 < 4000)
		sleep_ms(10);
	ck_assert(ir_ccc_registered(a));
	t0 = now_ms();
	while (ir_ccc_epoch(a) <= e0 && now_ms() - t0 < 2000)
		sleep_ms(10);
	ck_assert_uint_gt(ir_ccc_epoch(a), e0);
	ck_assert_uint_eq(route_n(a, "b", idb, &has), 1);
	ck_assert(has);
	ir_ccc_stop(a);
	ir_ccc_stop(b);
	twd_teardown();
}
END_TEST

/* The same with ZooKeeper: the coordinator mirrors there; an instance
 * reads it with the reader credential when the coordinator is down. */
START_TEST(cc_fallback_zk)
{
	struct tzk zk = {0};
	twd_setup();
	ck_assert_int_eq(tzk_start(&zk), 0);
	char zk_env[64];
	snprintf(zk_env, sizeof(zk_env), "IROUTE_ZK=%s", zk.hosts);
	const char *extra[] = {zk_env, tzk_writer_env(), tzk_reader_env(), NULL};
	cc_run(extra);
	struct ir_ccc *b = client("b", "127.0.0.1:9101", NULL);
	char idb[80];
	ir_ccc_instance(b, idb, sizeof(idb));
	wait_mirrored(1);
	cc_kill();
	struct ir_ccc_opts o;
	opts_for(&o, twd_port, "a", NULL);
	o.zk_hosts = zk.hosts;
	o.workflow = "t";
	o.register_timeout_ms = 300;
	struct ir_ccc *a;
	char err[512] = "";
	o.zk_reader_cred = "fn:wrong";
	ck_assert_int_eq(ir_ccc_start(&a, &o, err, sizeof(err)), -EAGAIN);
	ck_assert_msg(strstr(err, "the mirror neither"), "%s", err);
	o.zk_reader_cred = tzk_reader_cred();
	ck_assert_int_eq(ir_ccc_start(&a, &o, err, sizeof(err)), 0);
	ck_assert(!ir_ccc_registered(a));
	bool has = false;
	ck_assert_uint_eq(route_n(a, "b", idb, &has), 1);
	ck_assert(has);
	ir_ccc_stop(a);
	ir_ccc_stop(b);
	tzk_stop(&zk);
	twd_teardown();
}
END_TEST

Suite *ccclient_suite(void)
{
	Suite *s = suite_create("ccclient");
	TCase *tc = tcase_create("table");
	tcase_add_test(tc, table_function_role);
	tcase_add_test(tc, table_entry_role);
	tcase_add_test(tc, table_malformed);
	tcase_add_test(tc, opts_env);
	tcase_add_test(tc, bad_options);
	suite_add_tcase(s, tc);

	tc = tcase_create("scripted");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, fake_register_and_poll);
	tcase_add_test(tc, fake_keep_last_four);
	tcase_add_test(tc, fake_404_registers_again);
	tcase_add_test(tc, fake_stop_mid_poll);
	tcase_add_test(tc, fake_poll_errors_back_off);
	tcase_add_test(tc, fake_register_refused);
	tcase_add_test(tc, fake_stats_suspect_leave);
	tcase_add_test(tc, no_coordinator);
	tcase_add_test(tc, fallback_file_then_register);
	suite_add_tcase(s, tc);

	tc = tcase_create("coordinator");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, cc_routes_leave_lease);
	tcase_add_test(tc, cc_restart);
	tcase_add_test(tc, cc_refusals);
	tcase_add_test(tc, cc_stats_suspect);
	tcase_add_test(tc, cc_fallback_file);
	tcase_add_test(tc, cc_fallback_zk);
	suite_add_tcase(s, tc);
	return s;
}
