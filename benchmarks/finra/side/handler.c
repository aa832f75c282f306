/* handler.c - the c-func handler of FINRA function "side" (functions/side.c).
 * Includes the shared sources, so the build needs benchmarks/finra/ around
 * this folder (README.md, "Building"). */
#include <iroute/handler.h>

#include "../common.c"
#include "../functions/side.c"

int handle(void *state, const struct ir_req *req, const struct ir_in *in, size_t nin,
	   struct ir_out *out);

int handle(void *state, const struct ir_req *req, const struct ir_in *in, size_t nin,
	   struct ir_out *out)
{
	return finra_side_handle(state, req, in, nin, out);
}
