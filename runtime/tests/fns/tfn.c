/* tfn.c - the workflow function of the end-to-end tests (test_dag.c):
 * one binary for every function of a test DAG, so that the expected answer
 * of any DAG follows from its shape alone.
 *
 * Output: "<name>(<in0>,<in1>,...)" - the function's name around its
 * inputs in branch order, so a chain gives "c(b(a(x)))" and a join lists
 * its predecessors' outputs in predecessor order.  With TFN_EDGES=1 the
 * function writes to each successor its own output "<name>><succ>(...)"
 * (per-edge outputs).  Commands anywhere in the request (they travel
 * inside every output):
 *   CRASH@<name>   this function dereferences NULL
 *   SLEEP@<name>   this function sleeps 3 s
 *   FAIL@<name>    this function fails with 422 and a message
 *   EMIT@<name>    this function emits its output, then sleeps 300 ms
 *   SLOW@<name>    this function sleeps 20 ms (keeps requests in flight)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "iroute/handler.h"

int handle(void *state, const struct ir_req *req, const struct ir_in *in, size_t nin,
	   struct ir_out *out);

static int has_cmd(const struct ir_in *in, size_t nin, const char *cmd, const char *fn)
{
	char pat[96];
	snprintf(pat, sizeof(pat), "%s@%s)", cmd, fn);
	size_t pl = strlen(pat);
	for (size_t i = 0; i < nin; i++)
		for (size_t k = 0; k + pl <= in[i].len; k++)
			if (memcmp((const char *)in[i].data + k, pat, pl) == 0)
				return 1;
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int write_all(struct ir_out *out, const char *next, const char *name,
		     const struct ir_in *in, size_t nin)
{
	int rc = next ? ir_out_write_to(out, next, name, strlen(name))
		      : ir_out_write(out, name, strlen(name));
	if (!rc && next) {
		rc = ir_out_write_to(out, next, ">", 1);
		if (!rc)
			rc = ir_out_write_to(out, next, next, strlen(next));
	}
	for (size_t i = 0; !rc && i <= nin; i++) {
		const char *sep = i == 0 ? "(" : i == nin ? ")" : ",";
		rc = next ? ir_out_write_to(out, next, sep, 1) : ir_out_write(out, sep, 1);
		if (!rc && i < nin)
			rc = next ? ir_out_write_to(out, next, in[i].data, in[i].len)
				  : ir_out_write(out, in[i].data, in[i].len);
	}
	return rc;
}

int handle(void *state, const struct ir_req *req, const struct ir_in *in, size_t nin,
	   struct ir_out *out)
{
	(void)state;
	const char *fn = req->function;
	if (has_cmd(in, nin, "CRASH", fn)) {
		volatile int *p = NULL;
		return *p;
	}
	if (has_cmd(in, nin, "SLEEP", fn))
		sleep_ms(3000);
	if (has_cmd(in, nin, "SLOW", fn))
		sleep_ms(20);
	if (has_cmd(in, nin, "FAIL", fn))
		return ir_out_error(out, 422, "%s refused the input", fn);
	const char *edges = getenv("TFN_EDGES");
	const char *nexts = getenv("TFN_NEXT"); /* "b,c": the successors, for per-edge */
	int rc = 0;
	if (edges && *edges == '1' && nexts && *nexts) {
		char buf[1024];
		snprintf(buf, sizeof(buf), "%s", nexts);
		for (char *save, *t = strtok_r(buf, ",", &save); t && !rc;
		     t = strtok_r(NULL, ",", &save))
			rc = write_all(out, t, fn, in, nin);
	} else {
		rc = write_all(out, NULL, fn, in, nin);
	}
	if (!rc && has_cmd(in, nin, "EMIT", fn)) {
		rc = ir_out_emit(out);
		sleep_ms(300);
	}
	return rc;
}
