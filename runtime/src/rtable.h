/* rtable.h - the local table parser shared inside libiroute (rtable.c):
 * ccclient.c parses the coordinator's answers and mirror tables with it.
 * Internal; the public half is in iroute/ccclient.h. */
#ifndef IROUTE_RTABLE_H
#define IROUTE_RTABLE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "iroute/ccclient.h"

/* Format into @err (may be NULL) and return -EINVAL. */
int ir_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define EPOCH_MAX 9007199254740992.0 /* 2^53: exact in a JSON number */

/* Integer @key of object @o (at @path, for messages) into *@out, within
 * [@lo, @hi]; @dflt when absent and not @required.  0 or -EINVAL naming
 * the path. */
int ir_json_get_int(const cJSON *o, const char *path, const char *key, double lo, double hi,
		    bool required, uint64_t dflt, uint64_t *out, char *err, size_t errlen);

/* ir_table_parse() of the already-parsed @o; @json (taken, also on
 * failure) is its text, @len bytes. */
int ir_table_parse_obj(const cJSON *o, char *json, size_t len, struct ir_table **out, char *err,
		       size_t errlen);

#endif
