/* envnum.h - integer settings from the environment, with one message
 * format for every binary ("NAME: "value" is not an integer MIN-MAX").
 * Internal. */
#ifndef IROUTE_ENVNUM_H
#define IROUTE_ENVNUM_H
#include <stddef.h>
#include <stdint.h>

/* *@out = $@name as a decimal in [@min, @max], or @def when unset or "".
 * 0, or -EINVAL with the message in @err (may be NULL). */
int ir_env_u32(const char *name, uint32_t def, uint32_t min, uint32_t max, uint32_t *out,
	       char *err, size_t errlen);

/* The same, printing "@prog: <message>" to stderr on error. */
int ir_env_u32_say(const char *prog, const char *name, uint32_t def, uint32_t min, uint32_t max,
		   uint32_t *out);

#endif
