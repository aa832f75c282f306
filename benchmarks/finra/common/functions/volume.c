/* volume.c - rule "volume": a trade's quantity (LastQty, shares) must be
 * at least 1 and at most the portfolio's "max_lot". */
#include <inttypes.h>
#include <stdio.h>

#include "../finra.h"

static int volume_prep(struct finra_rule_ctx *c, char *why, size_t whylen)
{
	if (finra_int(cJSON_GetObjectItemCaseSensitive(c->root, "max_lot"), &c->max_lot) < 0 ||
	    c->max_lot <= 0) {
		snprintf(why, whylen, "\"max_lot\" is missing or not a positive integer");
		return -1;
	}
	return 0;
}

static int volume_check(const struct finra_rule_ctx *c, const cJSON *t, char *why, size_t whylen)
{
	int64_t qty;
	if (finra_int(cJSON_GetObjectItemCaseSensitive(t, "qty"), &qty) < 0) {
		snprintf(why, whylen, "\"qty\" is missing or not an integer");
		return -1;
	}
	if (qty <= 0) {
		snprintf(why, whylen, "qty %" PRId64 " is not positive", qty);
		return 1;
	}
	if (qty > c->max_lot) {
		snprintf(why, whylen, "qty %" PRId64 " exceeds the maximum lot %" PRId64, qty,
			 c->max_lot);
		return 1;
	}
	return 0;
}

int finra_volume_handle(void *state, const struct ir_req *req, const struct ir_in *in, size_t nin,
			struct ir_out *out)
{
	(void)state;
	return finra_rule_run(FINRA_VOLUME, volume_prep, volume_check, req, in, nin, out);
}
