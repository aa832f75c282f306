/* lastpx.c - rule "lastpx": a trade's price (LastPx, cents) must be
 * positive and within +-FINRA_LASTPX_TOLERANCE_PCT of the market snapshot's
 * last price for its security; a security missing from the snapshot is a
 * violation too (the trade cannot be priced). */
#include <inttypes.h>
#include <stdio.h>

#include "../finra.h"

static int lastpx_prep(struct finra_rule_ctx *c, char *why, size_t whylen)
{
	c->market = cJSON_GetObjectItemCaseSensitive(c->root, "market");
	if (!cJSON_IsObject(c->market)) {
		snprintf(why, whylen, "\"market\" is missing or not an object");
		return -1;
	}
	const cJSON *m;
	cJSON_ArrayForEach(m, c->market)
	{
		int64_t px;
		if (finra_int(m, &px) < 0 || px <= 0) {
			snprintf(why, whylen, "market price of \"%.64s\" is not a positive integer (cents)",
				 m->string);
			return -1;
		}
	}
	return 0;
}

static int lastpx_check(const struct finra_rule_ctx *c, const cJSON *t, char *why, size_t whylen)
{
	const cJSON *sec = cJSON_GetObjectItemCaseSensitive(t, "security");
	int64_t px, last = 1;
	if (!cJSON_IsString(sec)) {
		snprintf(why, whylen, "\"security\" is missing or not a string");
		return -1;
	}
	if (finra_int(cJSON_GetObjectItemCaseSensitive(t, "price"), &px) < 0) {
		snprintf(why, whylen, "\"price\" is missing or not an integer (cents)");
		return -1;
	}
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(c->market, sec->valuestring);
	if (!m) {
		snprintf(why, whylen, "no market price for \"%.64s\"", sec->valuestring);
		return 1;
	}
	finra_int(m, &last); /* checked by lastpx_prep() */
	if (px <= 0) {
		snprintf(why, whylen, "price %" PRId64 " is not positive", px);
		return 1;
	}
	int64_t diff = px > last ? px - last : last - px;
	if (diff * 100 > last * FINRA_LASTPX_TOLERANCE_PCT) {
		snprintf(why, whylen, "price %" PRId64 " is more than %d%% from the last price %" PRId64,
			 px, FINRA_LASTPX_TOLERANCE_PCT, last);
		return 1;
	}
	return 0;
}

int finra_lastpx_handle(void *state, const struct ir_req *req, const struct ir_in *in, size_t nin,
			struct ir_out *out)
{
	(void)state;
	return finra_rule_run(FINRA_LASTPX, lastpx_prep, lastpx_check, req, in, nin, out);
}
