/* envnum.c - see envnum.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "envnum.h"

int ir_env_u32(const char *name, uint32_t def, uint32_t min, uint32_t max, uint32_t *out,
	       char *err, size_t errlen)
{
	const char *s = getenv(name);
	if (!s || !*s) {
		*out = def;
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (*end || errno || *s == '-' || v < min || v > max) {
		if (err)
			snprintf(err, errlen, "%s: \"%s\" is not an integer %u-%u", name, s, min,
				 max);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

int ir_env_u32_say(const char *prog, const char *name, uint32_t def, uint32_t min, uint32_t max,
		   uint32_t *out)
{
	char err[512];
	int rc = ir_env_u32(name, def, min, max, out, err, sizeof(err));
	if (rc)
		fprintf(stderr, "%s: %s\n", prog, err);
	return rc;
}
