/* tradedate.c - rule "tradedate": a trade's date must be a real calendar
 * date "YYYY-MM-DD", not after the portfolio's as-of date, and a weekday
 * (no trading on Saturday or Sunday; exchange holidays are not modelled). */
#include <stdio.h>

#include "../finra.h"

static int tradedate_prep(struct finra_rule_ctx *c, char *why, size_t whylen)
{
	const cJSON *asof = cJSON_GetObjectItemCaseSensitive(c->root, "asof");
	if (!cJSON_IsString(asof) || finra_date_parse(asof->valuestring, &c->asof) < 0) {
		snprintf(why, whylen, "\"asof\" is missing or not a valid YYYY-MM-DD date");
		return -1;
	}
	return 0;
}

static int tradedate_check(const struct finra_rule_ctx *c, const cJSON *t, char *why, size_t whylen)
{
	static const char *const DAY[7] = {"Monday", "Tuesday", "Wednesday", "Thursday",
					   "Friday", "Saturday", "Sunday"};
	const cJSON *date = cJSON_GetObjectItemCaseSensitive(t, "date");
	int64_t d;
	if (!cJSON_IsString(date)) {
		snprintf(why, whylen, "\"date\" is missing or not a string");
		return -1;
	}
	if (finra_date_parse(date->valuestring, &d) < 0) {
		snprintf(why, whylen, "date \"%.32s\" is not a valid YYYY-MM-DD date", date->valuestring);
		return 1;
	}
	if (d > c->asof) {
		char asof[11];
		finra_date_format(c->asof, asof);
		snprintf(why, whylen, "date %s is after the as-of date %s", date->valuestring, asof);
		return 1;
	}
	int wd = finra_weekday(d);
	if (wd >= 5) {
		snprintf(why, whylen, "date %s is a %s", date->valuestring, DAY[wd]);
		return 1;
	}
	return 0;
}

int finra_tradedate_handle(void *state, const struct ir_req *req, const struct ir_in *in,
			   size_t nin, struct ir_out *out)
{
	(void)state;
	return finra_rule_run(FINRA_TRADEDATE, tradedate_prep, tradedate_check, req, in, nin, out);
}
