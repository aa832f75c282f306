/* func_main.c - main() of a workflow function (template c-func): the
 * user's function/handler.c provides handle() and, optionally,
 * handler_init() and handler_teardown() (iroute/handler.h).  Weak
 * references, so a binary without a hook links and the runtime sees NULL;
 * a binary without handle() starts and says so. */
#include <stddef.h>

#include "iroute/handler.h"

int handle(void *state, const struct ir_req *req, const struct ir_in *in, size_t nin,
	   struct ir_out *out) __attribute__((weak));
int handler_init(void **state) __attribute__((weak));
void handler_teardown(void *state) __attribute__((weak));

int main(void)
{
	const struct ir_handler_vt vt = {
	    .handle = handle, .init = handler_init, .teardown = handler_teardown};
	return ir_func_main(&vt);
}
