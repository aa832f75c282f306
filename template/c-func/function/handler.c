/* handler.c - the c-func sample: answers with its input in upper case.
 *
 * A workflow function is handle() over byte buffers (<iroute/handler.h>):
 * one input per predecessor (here any number: a join's inputs come out
 * one per line, in branch order), the output written into @out, which
 * the runtime sends one hop to every successor (or back to the caller
 * when this function is a sink).  POST / on the function runs it alone:
 *
 *     curl -d 'hello, world' http://127.0.0.1:8080/   ->  HELLO, WORLD
 *
 * Replace it with your own code: every .c file of function/ is compiled and
 * linked into one binary (build.sh). */
#include <ctype.h>

#include <iroute/handler.h>

int handle(void *state, const struct ir_req *req, const struct ir_in *in, size_t nin,
	   struct ir_out *out)
{
	(void)state;
	size_t total = nin ? nin - 1 : 0; /* the newlines between inputs */
	for (size_t i = 0; i < nin; i++)
		total += in[i].len;
	if (total == 0)
		return ir_out_error(out, 400, "%s: nothing to upper-case (empty body)",
				    req->function);

	/* Write straight into the output buffer: no copy of our own. */
	char *p = ir_out_reserve(out, NULL, total);
	if (!p)
		return ir_out_error(out, 413, "%s: %zu bytes is over the output limit",
				    req->function, total);
	size_t n = 0;
	for (size_t i = 0; i < nin; i++) {
		if (i > 0)
			p[n++] = '\n';
		const unsigned char *s = in[i].data;
		for (size_t k = 0; k < in[i].len; k++)
			p[n++] = (char)toupper(s[k]);
	}
	return ir_out_commit(out, NULL, n);
}
