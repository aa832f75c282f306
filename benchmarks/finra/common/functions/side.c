/* side.c - rule "side": a trade's side must be "buy", "sell" or "short"
 * (exact, lower case: FIX Side 1, 2 and 5). */
#include <stdio.h>
#include <string.h>

#include "../finra.h"

static int side_check(const struct finra_rule_ctx *c, const cJSON *t, char *why, size_t whylen)
{
	(void)c;
	const cJSON *side = cJSON_GetObjectItemCaseSensitive(t, "side");
	if (!cJSON_IsString(side)) {
		snprintf(why, whylen, "\"side\" is missing or not a string");
		return -1;
	}
	const char *s = side->valuestring;
	if (strcmp(s, "buy") != 0 && strcmp(s, "sell") != 0 && strcmp(s, "short") != 0) {
		snprintf(why, whylen, "side \"%.32s\" is not buy, sell or short", s);
		return 1;
	}
	return 0;
}

int finra_side_handle(void *state, const struct ir_req *req, const struct ir_in *in, size_t nin,
		      struct ir_out *out)
{
	(void)state;
	return finra_rule_run(FINRA_SIDE, NULL, side_check, req, in, nin, out);
}
