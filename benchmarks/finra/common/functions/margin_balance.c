/* margin_balance.c - function "margin-balance", the join: combines the
 * prices and trades from marketdata (input 0) with the violations of every
 * rule function (inputs 1..nin-1, any order, each rule possibly split into
 * partitions), and computes the account's FINRA Rule 4210 maintenance
 * margin over the trades no rule flagged (README.md, "Margin"):
 *   {"portfolio":..,"cash":..,"long_value":..,"short_value":..,"equity":..,
 *    "requirement":..,"margin_call":..,"trades":n,"valid_trades":m,
 *    "violations":[{"trade":..,"rule":..,"why":..},...]}
 * Violations are sorted by (trade position, rule order), so the result does
 * not depend on the width of the workflow.  Refuses (400) an input that is
 * malformed, from another portfolio, a missing or repeated rule partition,
 * a violation of an unknown trade, an unflagged trade that cannot be
 * valued (no price, bad side, qty <= 0), and amounts that overflow. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../finra.h"

struct mb_trade {
	const char *id, *security, *side;
	int64_t qty, price;
	size_t idx;
	bool bad;
};

struct mb_viol {
	size_t tidx, seq;
	int rule;
	const char *trade, *why;
};

struct mb_pos {
	const char *security;
	int64_t last, qty;
};

static int mb_trade_by_id(const void *a, const void *b)
{
	return strcmp(((const struct mb_trade *)a)->id, ((const struct mb_trade *)b)->id);
}

static int mb_viol_order(const void *a, const void *b)
{
	const struct mb_viol *x = a, *y = b;
	if (x->tidx != y->tidx)
		return x->tidx < y->tidx ? -1 : 1;
	if (x->rule != y->rule)
		return x->rule < y->rule ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Checked int64 arithmetic: false on overflow. */
static bool mb_add(int64_t *acc, int64_t v)
{
	return !__builtin_add_overflow(*acc, v, acc);
}

static bool mb_mul(int64_t a, int64_t b, int64_t *r)
{
	return !__builtin_mul_overflow(a, b, r);
}

/* ceil(v * pct / 100) for v >= 0. */
static bool mb_pct(int64_t v, int64_t pct, int64_t *r)
{
	int64_t p;
	if (!mb_mul(v, pct, &p) || !mb_add(&p, 99))
		return false;
	*r = p / 100;
	return true;
}

/* The maintenance requirement of a position of @qty shares (negative:
 * short) at @last cents, into *@req. */
static bool mb_requirement(int64_t qty, int64_t last, int64_t *req)
{
	int64_t shares = qty < 0 ? -qty : qty, mv, a, b;
	if (!mb_mul(shares, last, &mv))
		return false;
	if (qty > 0)
		return mb_pct(mv, FINRA_LONG_PCT, req);
	if (last >= FINRA_SHORT_LOW_PRICE) {
		if (!mb_pct(mv, FINRA_SHORT_PCT, &a) || !mb_mul(shares, FINRA_SHORT_MIN_PER_SHARE, &b))
			return false;
	} else {
		a = mv;
		if (!mb_mul(shares, FINRA_SHORT_LOW_PER_SHARE, &b))
			return false;
	}
	*req = a > b ? a : b;
	return true;
}

int finra_margin_balance_handle(void *state, const struct ir_req *req, const struct ir_in *in,
				size_t nin, struct ir_out *out)
{
	(void)state;
	(void)req;
	int rc = -1;
	cJSON **roots = NULL;
	struct mb_trade *tr = NULL, *byid = NULL;
	struct mb_viol *viol = NULL;
	struct mb_pos *pos = NULL;
	bool *seen[FINRA_NRULES] = {0};
	uint32_t parts[FINRA_NRULES] = {0}, nseen[FINRA_NRULES] = {0};
	size_t ntr = 0, nviol = 0, cviol = 0, npos = 0;
	struct finra_buf b = {0};

	if (nin < 1 + FINRA_NRULES || !in)
		return ir_out_error(out, 400,
				    "margin-balance: expected marketdata and the %d rules' outputs "
				    "(at least %d inputs), got %zu",
				    FINRA_NRULES, 1 + FINRA_NRULES, nin);
	if (!(roots = calloc(nin, sizeof(*roots))))
		return ir_out_error(out, 500, "margin-balance: out of memory");
	for (size_t k = 0; k < nin; k++) {
		roots[k] = in[k].len ? cJSON_ParseWithLength(in[k].data, in[k].len) : NULL;
		if (!cJSON_IsObject(roots[k])) {
			ir_out_error(out, 400, "margin-balance: input %zu is not a JSON object", k);
			goto out;
		}
	}

	/* Input 0: marketdata. */
	const cJSON *md = roots[0];
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(md, "portfolio");
	const cJSON *pdt = cJSON_GetObjectItemCaseSensitive(md, "pdt");
	const cJSON *prices = cJSON_GetObjectItemCaseSensitive(md, "prices");
	const cJSON *trades = cJSON_GetObjectItemCaseSensitive(md, "trades");
	int64_t cash;
	if (!cJSON_IsString(id) || finra_int(cJSON_GetObjectItemCaseSensitive(md, "cash"), &cash) < 0 ||
	    !cJSON_IsBool(pdt) || !cJSON_IsObject(prices) || !cJSON_IsArray(trades)) {
		ir_out_error(out, 400,
			     "margin-balance: input 0 is not marketdata's output (portfolio, cash, pdt, "
			     "prices, trades)");
		goto out;
	}
	ntr = (size_t)cJSON_GetArraySize(trades);
	tr = calloc(ntr ? ntr : 1, sizeof(*tr));
	byid = calloc(ntr ? ntr : 1, sizeof(*byid));
	pos = calloc(ntr ? ntr : 1, sizeof(*pos));
	if (!tr || !byid || !pos) {
		ir_out_error(out, 500, "margin-balance: out of memory");
		goto out;
	}
	size_t i = 0;
	const cJSON *t;
	cJSON_ArrayForEach(t, trades)
	{
		const cJSON *tid = cJSON_GetObjectItemCaseSensitive(t, "id");
		const cJSON *sec = cJSON_GetObjectItemCaseSensitive(t, "security");
		const cJSON *side = cJSON_GetObjectItemCaseSensitive(t, "side");
		if (!cJSON_IsString(tid) || !cJSON_IsString(sec) || !cJSON_IsString(side) ||
		    finra_int(cJSON_GetObjectItemCaseSensitive(t, "qty"), &tr[i].qty) < 0 ||
		    finra_int(cJSON_GetObjectItemCaseSensitive(t, "price"), &tr[i].price) < 0) {
			ir_out_error(out, 400, "margin-balance: input 0: trade %zu is malformed", i);
			goto out;
		}
		tr[i].id = tid->valuestring;
		tr[i].security = sec->valuestring;
		tr[i].side = side->valuestring;
		tr[i].idx = i;
		i++;
	}
	memcpy(byid, tr, ntr * sizeof(*tr));
	qsort(byid, ntr, sizeof(*byid), mb_trade_by_id);
	for (i = 1; i < ntr; i++)
		if (strcmp(byid[i - 1].id, byid[i].id) == 0) {
			ir_out_error(out, 400, "margin-balance: duplicate trade id \"%.64s\"", byid[i].id);
			goto out;
		}

	/* Inputs 1..: the rules' violations. */
	for (size_t k = 1; k < nin; k++) {
		const cJSON *r = roots[k];
		const cJSON *rid = cJSON_GetObjectItemCaseSensitive(r, "portfolio");
		const cJSON *rname = cJSON_GetObjectItemCaseSensitive(r, "rule");
		const cJSON *vs = cJSON_GetObjectItemCaseSensitive(r, "violations");
		int rule = cJSON_IsString(rname) ? finra_rule_find(rname->valuestring) : -1;
		int64_t part, nparts;
		if (rule < 0 || !cJSON_IsArray(vs) ||
		    finra_int(cJSON_GetObjectItemCaseSensitive(r, "part"), &part) < 0 ||
		    finra_int(cJSON_GetObjectItemCaseSensitive(r, "parts"), &nparts) < 0 || nparts < 1 ||
		    nparts > FINRA_MAX_PARTS || part < 1 || part > nparts) {
			ir_out_error(out, 400,
				     "margin-balance: input %zu is not a rule's output (rule, part, parts, "
				     "violations)",
				     k);
			goto out;
		}
		const char *rn = finra_rule_name(rule);
		if (!cJSON_IsString(rid) || strcmp(rid->valuestring, id->valuestring) != 0) {
			ir_out_error(out, 400, "margin-balance: input %zu (%s) is not of portfolio \"%.64s\"",
				     k, rn, id->valuestring);
			goto out;
		}
		if (!seen[rule]) {
			parts[rule] = (uint32_t)nparts;
			if (!(seen[rule] = calloc((size_t)nparts + 1, sizeof(bool)))) {
				ir_out_error(out, 500, "margin-balance: out of memory");
				goto out;
			}
		}
		if (parts[rule] != (uint32_t)nparts || seen[rule][part]) {
			ir_out_error(out, 400, "margin-balance: input %zu: %s part %" PRId64 " of %" PRId64
				     " conflicts with an earlier input",
				     k, rn, part, nparts);
			goto out;
		}
		seen[rule][part] = true;
		nseen[rule]++;
		const cJSON *v;
		cJSON_ArrayForEach(v, vs)
		{
			const cJSON *vt = cJSON_GetObjectItemCaseSensitive(v, "trade");
			const cJSON *vr = cJSON_GetObjectItemCaseSensitive(v, "rule");
			const cJSON *vw = cJSON_GetObjectItemCaseSensitive(v, "why");
			if (!cJSON_IsString(vt) || !cJSON_IsString(vr) || !cJSON_IsString(vw) ||
			    strcmp(vr->valuestring, rn) != 0) {
				ir_out_error(out, 400, "margin-balance: input %zu (%s): malformed violation",
					     k, rn);
				goto out;
			}
			struct mb_trade key = {.id = vt->valuestring};
			struct mb_trade *hit = bsearch(&key, byid, ntr, sizeof(*byid), mb_trade_by_id);
			if (!hit) {
				ir_out_error(out, 400,
					     "margin-balance: input %zu (%s): violation of unknown trade \"%.64s\"",
					     k, rn, vt->valuestring);
				goto out;
			}
			if (nviol == cviol) {
				size_t c = cviol ? 2 * cviol : 64;
				struct mb_viol *nv = realloc(viol, c * sizeof(*nv));
				if (!nv) {
					ir_out_error(out, 500, "margin-balance: out of memory");
					goto out;
				}
				viol = nv;
				cviol = c;
			}
			viol[nviol] = (struct mb_viol){hit->idx, nviol, rule, hit->id, vw->valuestring};
			nviol++;
			tr[hit->idx].bad = true;
		}
	}
	for (int r = 0; r < FINRA_NRULES; r++)
		if (nseen[r] != parts[r] || !parts[r]) {
			ir_out_error(out, 400, "margin-balance: no output from rule \"%s\"%s",
				     finra_rule_name(r), parts[r] ? " for some of its parts" : "");
			goto out;
		}
	if (nviol)
		qsort(viol, nviol, sizeof(*viol), mb_viol_order);

	/* Settle the valid trades into cash and net positions. */
	size_t nvalid = 0;
	for (i = 0; i < ntr; i++) {
		struct mb_trade *x = &tr[i];
		if (x->bad)
			continue;
		nvalid++;
		int64_t amount, last;
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(prices, x->security);
		bool buy = strcmp(x->side, "buy") == 0;
		if (!buy && strcmp(x->side, "sell") != 0 && strcmp(x->side, "short") != 0) {
			ir_out_error(out, 400, "margin-balance: trade \"%.64s\": side \"%.32s\" not flagged",
				     x->id, x->side);
			goto out;
		}
		if (x->qty <= 0 || x->price <= 0) {
			ir_out_error(out, 400, "margin-balance: trade \"%.64s\": qty or price <= 0 not flagged",
				     x->id);
			goto out;
		}
		if (finra_int(p, &last) < 0 || last <= 0) {
			ir_out_error(out, 400, "margin-balance: trade \"%.64s\": no price for \"%.64s\"",
				     x->id, x->security);
			goto out;
		}
		if (!mb_mul(x->qty, x->price, &amount) || !mb_add(&cash, buy ? -amount : amount))
			goto overflow;
		size_t j = 0;
		while (j < npos && strcmp(pos[j].security, x->security) != 0)
			j++;
		if (j == npos)
			pos[npos++] = (struct mb_pos){x->security, last, 0};
		if (!mb_add(&pos[j].qty, buy ? x->qty : -x->qty))
			goto overflow;
	}

	/* Rule 4210 maintenance margin. */
	int64_t long_value = 0, short_value = 0, requirement = 0, equity = cash;
	bool holding = false;
	for (size_t j = 0; j < npos; j++) {
		int64_t mv, rq;
		if (pos[j].qty == 0)
			continue;
		holding = true;
		if (!mb_mul(pos[j].qty < 0 ? -pos[j].qty : pos[j].qty, pos[j].last, &mv) ||
		    !mb_requirement(pos[j].qty, pos[j].last, &rq) || !mb_add(&requirement, rq) ||
		    !mb_add(pos[j].qty > 0 ? &long_value : &short_value, mv) ||
		    !mb_add(&equity, pos[j].qty > 0 ? mv : -mv))
			goto overflow;
	}
	int64_t min_equity = cJSON_IsTrue(pdt) ? FINRA_PDT_MIN_EQUITY : FINRA_MIN_EQUITY;
	if (holding && requirement < min_equity)
		requirement = min_equity;
	int64_t call = requirement;
	if (__builtin_sub_overflow(requirement, equity, &call))
		goto overflow;
	if (call < 0)
		call = 0;

	finra_buf_printf(&b, "{\"portfolio\":");
	finra_buf_str(&b, id->valuestring);
	finra_buf_printf(&b,
			 ",\"cash\":%" PRId64 ",\"long_value\":%" PRId64 ",\"short_value\":%" PRId64
			 ",\"equity\":%" PRId64 ",\"requirement\":%" PRId64 ",\"margin_call\":%" PRId64
			 ",\"trades\":%zu,\"valid_trades\":%zu,\"violations\":[",
			 cash, long_value, short_value, equity, requirement, call, ntr, nvalid);
	for (i = 0; i < nviol; i++) {
		finra_buf_printf(&b, "%s{\"trade\":", i ? "," : "");
		finra_buf_str(&b, viol[i].trade);
		finra_buf_printf(&b, ",\"rule\":\"%s\",\"why\":", finra_rule_name(viol[i].rule));
		finra_buf_str(&b, viol[i].why);
		finra_buf_printf(&b, "}");
	}
	finra_buf_printf(&b, "]}");
	if (b.err) {
		ir_out_error(out, 500, "margin-balance: out of memory");
		goto out;
	}
	rc = ir_out_write(out, b.p, b.len);
	goto out;
overflow:
	ir_out_error(out, 400, "margin-balance: amounts overflow 64-bit cents");
out:
	for (int r = 0; r < FINRA_NRULES; r++)
		free(seen[r]);
	for (size_t k = 0; roots && k < nin; k++)
		cJSON_Delete(roots[k]);
	free(roots);
	free(tr);
	free(byid);
	free(viol);
	free(pos);
	finra_buf_free(&b);
	return rc;
}
