/* test_main.c - runs every suite; CK_FORK stays on so a crash fails one test. */
#include <stdlib.h>
#include <string.h>

#include "iroute/log.h"
#include "tests.h"

int test_light(void)
{
	const char *v = getenv("IROUTE_TEST_LIGHT");
	return v && *v && strcmp(v, "0") != 0;
}

int main(void)
{
	/* Expected failures log warnings by the dozen; keep the run readable. */
	if (!getenv("IROUTE_LOG_LEVEL"))
		ir_log_set_level(IR_LOG_ERROR);
	Suite *(*const suites[])(void) = {
	    sha256_suite,   crc32c_suite,  frame_suite, loop_suite,
	    ring_suite,	    hello_suite,   token_suite, transport_suite,
	    wdconfig_suite, metrics_suite, exec_suite,	watchdog_suite,
	    wdhard_suite,   wdproxy_suite, httpc_suite, workflow_suite,
	    zk_suite,	    mirror_suite,  cc_suite,	ccclient_suite,
	    handler_suite,  join_suite,	route_suite, pool_suite,
	    finra_suite,    peers_suite,   outbox_suite, dag_suite,
	    cli_suite,      central_suite, template_suite};
	SRunner *sr = srunner_create(NULL);
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		srunner_add_suite(sr, suites[i]());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
