/* tests.h - the suites of the one test runner (test_main.c). */
#ifndef IROUTE_TESTS_H
#define IROUTE_TESTS_H

#include <check.h>

Suite *sha256_suite(void);
Suite *crc32c_suite(void);
Suite *frame_suite(void);
Suite *loop_suite(void);
Suite *ring_suite(void);
Suite *hello_suite(void);
Suite *token_suite(void);
Suite *transport_suite(void);
Suite *metrics_suite(void);
Suite *exec_suite(void);
Suite *wdconfig_suite(void);
Suite *watchdog_suite(void);
Suite *wdhard_suite(void);
Suite *wdproxy_suite(void);
Suite *httpc_suite(void);
Suite *workflow_suite(void);
Suite *zk_suite(void);
Suite *mirror_suite(void);
Suite *cc_suite(void);
Suite *ccclient_suite(void);
Suite *handler_suite(void);
Suite *join_suite(void);
Suite *route_suite(void);
Suite *pool_suite(void);
Suite *finra_suite(void);
Suite *peers_suite(void);
Suite *outbox_suite(void);
Suite *dag_suite(void);
Suite *cli_suite(void);
Suite *central_suite(void);
Suite *template_suite(void);

/* IROUTE_TEST_LIGHT=1 (valgrind runs) shrinks the heaviest cases. */
int test_light(void);

#endif
