/* test_peers.c - per-peer transport choice, and the connection manager
 * over real ipc and tcp listeners on one loop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iroute/frame.h"
#include "peers.h"
#include "tests.h"
#include "tnet.h"

static struct ir_route_inst inst(const char *id, const char *node, const char *ipc,
				 const char *tcp)
{
	struct ir_route_inst r;
	memset(&r, 0, sizeof(r));
	snprintf(r.id, sizeof(r.id), "%s", id);
	snprintf(r.node, sizeof(r.node), "%s", node);
	snprintf(r.ipc, sizeof(r.ipc), "%s", ipc);
	snprintf(r.tcp, sizeof(r.tcp), "%s", tcp);
	r.transports = (ipc[0] ? IR_TR_IPC : 0) | (tcp[0] ? IR_TR_TCP : 0);
	r.capacity = 1;
	return r;
}

START_TEST(choose_rules)
{
	/* An existing path stands for a peer's socket in the shared directory. */
	char sock[64];
	snprintf(sock, sizeof(sock), "/tmp/iroute-peers-%d.sock", (int)getpid());
	FILE *f = fopen(sock, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	const char *addr, *gone = "/tmp/iroute-peers-none/x.sock";
	char why[256];
	struct ir_route_inst a = inst("a-1", "boot-1", sock, "10.0.0.1:7000");
	ck_assert_ptr_eq(ir_peer_choose(&a, "boot-1", NULL, &addr, why, sizeof(why)),
			 &ir_transport_ipc);
	ck_assert_str_eq(addr, sock);
	ck_assert_ptr_eq(ir_peer_choose(&a, "boot-2", "auto", &addr, why, sizeof(why)),
			 &ir_transport_tcp); /* another node */
	ck_assert_str_eq(addr, "10.0.0.1:7000");
	ck_assert_ptr_eq(ir_peer_choose(&a, "boot-1", "tcp", &addr, why, sizeof(why)),
			 &ir_transport_tcp); /* forced */
	ck_assert_ptr_eq(ir_peer_choose(&a, NULL, "", &addr, why, sizeof(why)),
			 &ir_transport_tcp); /* no own node: no ipc */
	struct ir_route_inst b = inst("b-1", "boot-1", gone, "10.0.0.2:7000");
	ck_assert_ptr_eq(ir_peer_choose(&b, "boot-1", NULL, &addr, why, sizeof(why)),
			 &ir_transport_tcp); /* same node, socket not visible: another IPC dir */
	struct ir_route_inst c = inst("c-1", "boot-1", gone, "");
	ck_assert_ptr_null(ir_peer_choose(&c, "boot-1", NULL, &addr, why, sizeof(why)));
	ck_assert_msg(strstr(why, "c-1") && strstr(why, "not in this node's IPC directory"), "%s",
		      why);
	struct ir_route_inst d = inst("d-1", "boot-9", sock, "");
	ck_assert_ptr_null(ir_peer_choose(&d, "boot-1", NULL, &addr, why, sizeof(why)));
	ck_assert(strstr(why, "on another node") != NULL);
	ck_assert_ptr_null(ir_peer_choose(&d, "boot-1", "tcp", &addr, why, sizeof(why)));
	ck_assert(strstr(why, "no tcp address") != NULL);
	struct ir_route_inst e = inst("e-1", "boot-1", "", "10.0.0.5:1");
	ck_assert_ptr_null(ir_peer_choose(&e, "boot-1", "ipc", &addr, why, sizeof(why)));
	ck_assert(strstr(why, "no ipc address") != NULL);
	/* Offered transports count, not only addresses. */
	a.transports = IR_TR_TCP;
	ck_assert_ptr_eq(ir_peer_choose(&a, "boot-1", NULL, &addr, why, sizeof(why)),
			 &ir_transport_tcp);
	unlink(sock);
}
END_TEST

struct srv {
	int got[2]; /* frames received per listener: [0] ipc, [1] tcp */
};

struct lsn {
	struct srv *s;
	int idx;
};

static void srv_msg(struct ir_conn *c, const struct ir_msg *m, void *ud)
{
	(void)c;
	(void)m;
	struct lsn *l = ud;
	l->s->got[l->idx]++;
}

struct cli {
	int opened, closed;
};

static void cli_open(struct ir_conn *c, void *ud)
{
	(void)c;
	((struct cli *)ud)->opened++;
}

static int both_got(void *arg)
{
	struct srv *s = arg;
	return s->got[0] >= 1 && s->got[1] >= 1;
}

static int two_open(void *arg)
{
	return ((struct cli *)arg)->opened >= 2;
}

static void send_one(struct ir_conn *c, uint64_t id)
{
	struct ir_frame_hdr h;
	ir_frame_init(&h, IR_FRAME_DATA);
	h.request_id = id;
	struct iovec iov = {"x", 1};
	ck_assert_int_ge(ir_conn_send(c, &h, &iov, 1, NULL, NULL), 0);
}

START_TEST(manager_dials_once_per_peer)
{
	struct ir_loop *loop;
	ck_assert_int_eq(ir_loop_new(&loop), 0);
	struct ir_conn_cfg cfg;
	tnet_cfg(&cfg, "peers-test");
	struct srv s = {{0, 0}};
	struct lsn l0 = {&s, 0}, l1 = {&s, 1};
	struct ir_conn_cbs scbs = {.on_msg = srv_msg};
	struct ir_listener *ipc_ls, *tcp_ls;
	ck_assert_int_eq(ir_listen(loop, &ir_transport_ipc, tnet_addr(0), &cfg, &scbs, &l0, &ipc_ls), 0);
	ck_assert_int_eq(ir_listen(loop, &ir_transport_tcp, tnet_addr(1), &cfg, &scbs, &l1, &tcp_ls), 0);
	char ipc_addr[256], tcp_addr[64];
	snprintf(ipc_addr, sizeof(ipc_addr), "%s", ir_listener_addr(ipc_ls));
	snprintf(tcp_addr, sizeof(tcp_addr), "%s", ir_listener_addr(tcp_ls));

	struct cli k = {0};
	struct ir_conn_cbs ccbs = {.on_open = cli_open};
	struct ir_peers *p;
	ck_assert_int_eq(ir_peers_new(&p, loop, &cfg, &ccbs, &k, "boot-self", NULL), 0);
	struct ir_route_inst local = inst("b-local", "boot-self", ipc_addr, tcp_addr);
	struct ir_route_inst remote = inst("b-remote", "boot-other", ipc_addr, tcp_addr);
	struct ir_route_inst nowhere = inst("b-nowhere", "boot-other", ipc_addr, "");
	struct ir_conn *c1, *c2, *c3;
	char why[256];
	ck_assert_int_eq(ir_peers_get(p, &local, &c1, why, sizeof(why)), 0);
	ck_assert_int_eq(ir_peers_get(p, &remote, &c2, why, sizeof(why)), 0);
	ck_assert_ptr_ne(c1, c2);
	ck_assert_int_eq(ir_peers_get(p, &local, &c3, why, sizeof(why)), 0);
	ck_assert_ptr_eq(c1, c3); /* one connection per peer */
	ck_assert_int_eq(ir_peers_get(p, &nowhere, &c3, why, sizeof(why)), -EHOSTUNREACH);
	ck_assert(strstr(why, "b-nowhere") != NULL);
	ck_assert_uint_eq(ir_peers_count(p), 2);
	ck_assert_str_eq(ir_peers_id(p, c2), "b-remote");
	ck_assert_ptr_null(ir_peers_id(p, NULL));
	ck_assert_int_eq(tnet_run(loop, two_open, &k, 5000), 0);
	send_one(c1, 1);
	send_one(c2, 2);
	ck_assert_int_eq(tnet_run(loop, both_got, &s, 5000), 0);
	ck_assert_int_eq(s.got[0], 1); /* the local peer over shared memory */
	ck_assert_int_eq(s.got[1], 1); /* the remote one over tcp */

	/* A table without b-remote closes its connection only. */
	struct ir_table t;
	memset(&t, 0, sizeof(t));
	struct ir_route_fn fn = {.name = "b", .inst = &local, .n = 1};
	t.routes = &fn;
	t.nroutes = 1;
	ck_assert_uint_eq(ir_peers_prune(p, &t), 1);
	ck_assert_uint_eq(ir_peers_count(p), 1);
	ck_assert_str_eq(ir_peers_id(p, c1), "b-local");
	ck_assert(ir_peers_drop(p, "b-local"));
	ck_assert(!ir_peers_drop(p, "b-local"));
	ck_assert_uint_eq(ir_peers_count(p), 0);
	ir_peers_free(p);
	tnet_run_for(loop, 100); /* the accepted ends see the closes and are freed */
	ir_listener_close(ipc_ls);
	ir_listener_close(tcp_ls);
	ir_loop_free(loop);
}
END_TEST

Suite *peers_suite(void)
{
	Suite *s = suite_create("peers");
	TCase *tc = tcase_create("peers");
	tcase_add_test(tc, choose_rules);
	tcase_add_test(tc, manager_dials_once_per_peer);
	suite_add_tcase(s, tc);
	return s;
}
