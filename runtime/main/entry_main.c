/* entry_main.c - main() of a workflow entry (template c-entry): the
 * user's function/ folder may define generate_data() (iroute/handler.h),
 * the load generator of POST /bench; a weak reference, NULL without one
 * (iroute-entry is this file alone). */
#include <stdint.h>

#include "iroute/handler.h"

int generate_data(uint64_t seq, struct ir_out *out) __attribute__((weak));

int main(void)
{
	return ir_entry_main(generate_data);
}
