/* expected.c - the expected final result of the workflow for a portfolio,
 * computed the plain way: one pass over the trades applying all four rules
 * in order, then the margin.  Written apart from the handlers (own date
 * checks: string comparison for "after as-of" and Sakamoto's weekday
 * formula; own position table; no partitions), so the end-to-end test
 * compares two implementations of README.md.  Input is trusted to be
 * well-formed (the generator's); a malformed one gives NULL. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finra.h"

static bool exp_is_date(const char *s)
{
	static const int dim[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (strlen(s) != 10)
		return false;
	for (int i = 0; i < 10; i++) {
		bool dash = i == 4 || i == 7;
		if (dash ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
			return false;
	}
	int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
	if (y < 1 || m < 1 || m > 12 || d < 1 || d > dim[m])
		return false;
	return !(m == 2 && d == 29 && !(y % 400 == 0 || (y % 4 == 0 && y % 100 != 0)));
}

/* Sakamoto: 0 = Sunday ... 6 = Saturday. */
static int exp_dow(const char *s)
{
	static const int t[12] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
	int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
	y -= m < 3;
	return (y + y / 4 - y / 100 + y / 400 + t[m - 1] + d) % 7;
}

static int64_t exp_int(const cJSON *o, const char *k, bool *ok)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (!cJSON_IsNumber(v)) {
		*ok = false;
		return 0;
	}
	return (int64_t)v->valuedouble;
}

static const char *exp_str(const cJSON *o, const char *k, bool *ok)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (!cJSON_IsString(v)) {
		*ok = false;
		return "";
	}
	return v->valuestring;
}

char *finra_expected(const char *portfolio, size_t len, char *err, size_t errlen)
{
	cJSON *root = cJSON_ParseWithLength(portfolio, len);
	struct finra_buf v = {0}, b = {0};
	char **psec = NULL;
	int64_t *pqty = NULL, *plast = NULL;
	char *res = NULL;
	bool ok = true;
	const char *id = exp_str(root, "portfolio", &ok);
	const char *asof = exp_str(root, "asof", &ok);
	int64_t cash = exp_int(root, "cash", &ok);
	int64_t max_lot = exp_int(root, "max_lot", &ok);
	const cJSON *market = cJSON_GetObjectItemCaseSensitive(root, "market");
	const cJSON *trades = cJSON_GetObjectItemCaseSensitive(root, "trades");
	bool pdt = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "pdt"));
	int n = cJSON_GetArraySize(trades);
	if (!ok || !cJSON_IsObject(market) || !cJSON_IsArray(trades)) {
		snprintf(err, errlen, "expected: malformed portfolio");
		goto out;
	}
	psec = calloc((size_t)n + 1, sizeof(*psec));
	pqty = calloc((size_t)n + 1, sizeof(*pqty));
	plast = calloc((size_t)n + 1, sizeof(*plast));
	if (!psec || !pqty || !plast) {
		snprintf(err, errlen, "expected: out of memory");
		goto out;
	}
	int npos = 0, nvalid = 0, nviol = 0;
	for (int i = 0; i < n; i++) {
		const cJSON *t = cJSON_GetArrayItem(trades, i);
		const char *tid = exp_str(t, "id", &ok), *sec = exp_str(t, "security", &ok);
		const char *side = exp_str(t, "side", &ok), *date = exp_str(t, "date", &ok);
		int64_t qty = exp_int(t, "qty", &ok), price = exp_int(t, "price", &ok);
		if (!ok) {
			snprintf(err, errlen, "expected: trade %d malformed", i);
			goto out;
		}
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(market, sec);
		int64_t last = m ? (int64_t)m->valuedouble : 0;
		const char *why[FINRA_NRULES] = {0};
		if (!m)
			why[FINRA_LASTPX] = "unlisted security";
		else if (price < 1)
			why[FINRA_LASTPX] = "non-positive price";
		else if (10 * (price > last ? price - last : last - price) > last)
			why[FINRA_LASTPX] = "price off market by more than 10%";
		if (strcmp(side, "buy") && strcmp(side, "sell") && strcmp(side, "short"))
			why[FINRA_SIDE] = "unknown side";
		if (!exp_is_date(date))
			why[FINRA_TRADEDATE] = "bad date";
		else if (strcmp(date, asof) > 0)
			why[FINRA_TRADEDATE] = "future date";
		else if (exp_dow(date) == 0 || exp_dow(date) == 6)
			why[FINRA_TRADEDATE] = "weekend date";
		if (qty < 1 || qty > max_lot)
			why[FINRA_VOLUME] = "qty out of range";
		bool valid = true;
		for (int r = 0; r < FINRA_NRULES; r++) {
			if (!why[r])
				continue;
			valid = false;
			finra_buf_printf(&v, "%s{\"trade\":", nviol++ ? "," : "");
			finra_buf_str(&v, tid);
			finra_buf_printf(&v, ",\"rule\":\"%s\",\"why\":\"%s\"}", finra_rule_name(r), why[r]);
		}
		if (!valid)
			continue;
		nvalid++;
		cash += (strcmp(side, "buy") == 0 ? -1 : 1) * qty * price;
		int p = 0;
		while (p < npos && strcmp(psec[p], sec) != 0)
			p++;
		if (p == npos) {
			psec[npos] = (char *)sec;
			plast[npos++] = last;
		}
		pqty[p] += strcmp(side, "buy") == 0 ? qty : -qty;
	}
	int64_t lv = 0, sv = 0, req = 0;
	bool holding = false;
	for (int p = 0; p < npos; p++) {
		int64_t q = pqty[p], px = plast[p];
		if (q > 0) {
			lv += q * px;
			req += (q * px * 25 + 99) / 100;
		} else if (q < 0) {
			int64_t sh = -q, mv = sh * px, a, c;
			sv += mv;
			if (px >= 500) {
				a = (mv * 30 + 99) / 100;
				c = sh * 500;
			} else {
				a = mv;
				c = sh * 250;
			}
			req += a > c ? a : c;
		}
		holding |= q != 0;
	}
	if (holding && req < (pdt ? 2500000 : 200000))
		req = pdt ? 2500000 : 200000;
	int64_t equity = cash + lv - sv;
	int64_t call = req > equity ? req - equity : 0;
	finra_buf_printf(&b, "{\"portfolio\":");
	finra_buf_str(&b, id);
	finra_buf_printf(&b,
			 ",\"cash\":%" PRId64 ",\"long_value\":%" PRId64 ",\"short_value\":%" PRId64
			 ",\"equity\":%" PRId64 ",\"requirement\":%" PRId64 ",\"margin_call\":%" PRId64
			 ",\"trades\":%d,\"valid_trades\":%d,\"violations\":[%s]}",
			 cash, lv, sv, equity, req, call, n, nvalid, v.p ? v.p : "");
	if (!b.err && !v.err) {
		res = b.p;
		b.p = NULL;
	} else {
		snprintf(err, errlen, "expected: out of memory");
	}
out:
	free(psec);
	free(pqty);
	free(plast);
	finra_buf_free(&v);
	finra_buf_free(&b);
	cJSON_Delete(root);
	return res;
}
