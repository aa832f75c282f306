/* handler.c - the c-func handler of FINRA function "volume" (common/functions/volume.c).
 * Includes the shared sources from common/, which stack.yml copies into the
 * function folder (configuration.copy; README.md, "Building"). */
#include <iroute/handler.h>

#include "common/common.c"
#include "common/functions/volume.c"

int handle(void *state, const struct ir_req *req, const struct ir_in *in, size_t nin,
	   struct ir_out *out);

int handle(void *state, const struct ir_req *req, const struct ir_in *in, size_t nin,
	   struct ir_out *out)
{
	return finra_volume_handle(state, req, in, nin, out);
}
