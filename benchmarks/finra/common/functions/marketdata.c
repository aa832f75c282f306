/* marketdata.c - function "marketdata": looks up the market's last price of
 * every security the portfolio trades in the request's market snapshot, and
 * hands margin-balance the account (id, cash, pattern-day-trader flag) and
 * the trades it needs (no dates):
 *   {"portfolio":..,"cash":..,"pdt":..,"prices":{"ABC":12345,...},
 *    "trades":[{"id":..,"security":..,"side":..,"qty":..,"price":..},...]}
 * "prices" lists each traded security once, in order of first appearance;
 * a security the snapshot lacks is left out (rule lastpx reports it).
 * Refuses (400) a malformed portfolio and duplicate trade ids (the join
 * matches violations to trades by id). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../finra.h"

struct md_sec {
	const char *name;
	size_t first; /* index of the first trade in it */
};

static int md_by_name(const void *a, const void *b)
{
	const struct md_sec *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : (x->first > y->first) - (x->first < y->first);
}

static int md_by_first(const void *a, const void *b)
{
	const struct md_sec *x = a, *y = b;
	return (x->first > y->first) - (x->first < y->first);
}

int finra_marketdata_handle(void *state, const struct ir_req *req, const struct ir_in *in,
			    size_t nin, struct ir_out *out)
{
	(void)state;
	(void)req;
	cJSON *root = finra_parse_input(in, nin, "marketdata", out);
	if (!root)
		return -1;
	int rc = -1;
	struct finra_buf b = {0};
	struct md_sec *secs = NULL, *ids = NULL;
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "portfolio");
	const cJSON *pdt = cJSON_GetObjectItemCaseSensitive(root, "pdt");
	const cJSON *market = cJSON_GetObjectItemCaseSensitive(root, "market");
	const cJSON *trades = cJSON_GetObjectItemCaseSensitive(root, "trades");
	int64_t cash;
	if (!cJSON_IsString(id) || !*id->valuestring) {
		ir_out_error(out, 400, "marketdata: \"portfolio\" is missing or not a non-empty string");
		goto out;
	}
	if (finra_int(cJSON_GetObjectItemCaseSensitive(root, "cash"), &cash) < 0) {
		ir_out_error(out, 400, "marketdata: \"cash\" is missing or not an integer (cents)");
		goto out;
	}
	if (!cJSON_IsBool(pdt)) {
		ir_out_error(out, 400, "marketdata: \"pdt\" is missing or not a boolean");
		goto out;
	}
	if (!cJSON_IsObject(market)) {
		ir_out_error(out, 400, "marketdata: \"market\" is missing or not an object");
		goto out;
	}
	if (!cJSON_IsArray(trades)) {
		ir_out_error(out, 400, "marketdata: \"trades\" is missing or not an array");
		goto out;
	}
	size_t n = (size_t)cJSON_GetArraySize(trades), i = 0;
	secs = calloc(n ? n : 1, sizeof(*secs));
	ids = calloc(n ? n : 1, sizeof(*ids));
	if (!secs || !ids) {
		ir_out_error(out, 500, "marketdata: out of memory");
		goto out;
	}
	const cJSON *t;
	cJSON_ArrayForEach(t, trades)
	{
		const cJSON *tid = cJSON_GetObjectItemCaseSensitive(t, "id");
		const cJSON *sec = cJSON_GetObjectItemCaseSensitive(t, "security");
		const cJSON *side = cJSON_GetObjectItemCaseSensitive(t, "side");
		int64_t v;
		const char *bad = NULL;
		if (!cJSON_IsObject(t) || !cJSON_IsString(tid) || !*tid->valuestring)
			bad = "not an object with a non-empty \"id\"";
		else if (!cJSON_IsString(sec))
			bad = "\"security\" is missing or not a string";
		else if (!cJSON_IsString(side))
			bad = "\"side\" is missing or not a string";
		else if (finra_int(cJSON_GetObjectItemCaseSensitive(t, "qty"), &v) < 0)
			bad = "\"qty\" is missing or not an integer";
		else if (finra_int(cJSON_GetObjectItemCaseSensitive(t, "price"), &v) < 0)
			bad = "\"price\" is missing or not an integer (cents)";
		if (bad) {
			ir_out_error(out, 400, "marketdata: trade %zu: %s", i, bad);
			goto out;
		}
		ids[i] = (struct md_sec){tid->valuestring, i};
		secs[i] = (struct md_sec){sec->valuestring, i};
		i++;
	}
	qsort(ids, n, sizeof(*ids), md_by_name);
	for (i = 1; i < n; i++)
		if (strcmp(ids[i - 1].name, ids[i].name) == 0) {
			ir_out_error(out, 400, "marketdata: duplicate trade id \"%.64s\"", ids[i].name);
			goto out;
		}
	/* Each security once, at its first trade. */
	qsort(secs, n, sizeof(*secs), md_by_name);
	size_t nsec = 0;
	for (i = 0; i < n; i++)
		if (i == 0 || strcmp(secs[i].name, secs[nsec - 1].name) != 0)
			secs[nsec++] = secs[i];
	qsort(secs, nsec, sizeof(*secs), md_by_first);

	finra_buf_printf(&b, "{\"portfolio\":");
	finra_buf_str(&b, id->valuestring);
	finra_buf_printf(&b, ",\"cash\":%" PRId64 ",\"pdt\":%s,\"prices\":{", cash,
			 cJSON_IsTrue(pdt) ? "true" : "false");
	size_t np = 0;
	for (i = 0; i < nsec; i++) {
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(market, secs[i].name);
		int64_t last;
		if (!m)
			continue;
		if (finra_int(m, &last) < 0 || last <= 0) {
			ir_out_error(out, 400,
				     "marketdata: market price of \"%.64s\" is not a positive integer (cents)",
				     secs[i].name);
			goto out;
		}
		finra_buf_printf(&b, "%s", np++ ? "," : "");
		finra_buf_str(&b, secs[i].name);
		finra_buf_printf(&b, ":%" PRId64, last);
	}
	finra_buf_printf(&b, "},\"trades\":[");
	i = 0;
	cJSON_ArrayForEach(t, trades)
	{
		int64_t qty = 0, px = 0;
		finra_int(cJSON_GetObjectItemCaseSensitive(t, "qty"), &qty);
		finra_int(cJSON_GetObjectItemCaseSensitive(t, "price"), &px);
		finra_buf_printf(&b, "%s{\"id\":", i++ ? "," : "");
		finra_buf_str(&b, cJSON_GetObjectItemCaseSensitive(t, "id")->valuestring);
		finra_buf_printf(&b, ",\"security\":");
		finra_buf_str(&b, cJSON_GetObjectItemCaseSensitive(t, "security")->valuestring);
		finra_buf_printf(&b, ",\"side\":");
		finra_buf_str(&b, cJSON_GetObjectItemCaseSensitive(t, "side")->valuestring);
		finra_buf_printf(&b, ",\"qty\":%" PRId64 ",\"price\":%" PRId64 "}", qty, px);
	}
	finra_buf_printf(&b, "]}");
	if (b.err) {
		ir_out_error(out, 500, "marketdata: out of memory");
		goto out;
	}
	rc = ir_out_write(out, b.p, b.len);
out:
	free(secs);
	free(ids);
	finra_buf_free(&b);
	cJSON_Delete(root);
	return rc;
}
