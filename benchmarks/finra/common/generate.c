/* generate.c - the seeded portfolio generator (finra.h).
 *
 * Own PRNG (splitmix64), no rand(), no clock, no locale: the same seed
 * gives byte-identical JSON on every machine.  A portfolio:
 *   {"portfolio":"P<16 hex>","asof":"YYYY-MM-DD","cash":<cents>,"pdt":<bool>,
 *    "max_lot":10000,"market":{"ABCD":<last cents>,...},
 *    "trades":[{"id":"T00001","security":"ABCD","side":"buy","qty":100,
 *               "price":<cents>,"date":"YYYY-MM-DD"},...]}
 * A valid trade: a listed security, side buy/sell/short, price within +-5%
 * of the last price, 1..1000 shares (1 in 20: up to max_lot), a weekday
 * 0..20 days before "asof" (a weekday).  A bad trade has exactly one of
 * nine violations (README.md, "Data").  Cash is drawn after the trades,
 * 0..60% of their gross value, so both margin calls and healthy accounts
 * occur. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "finra.h"

#define GEN_MAX_LOT 10000

struct gen_rng {
	uint64_t s;
};

static uint64_t gen_next(struct gen_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [lo, hi] (the modulo bias is irrelevant here, and fixed). */
static int64_t gen_range(struct gen_rng *r, int64_t lo, int64_t hi)
{
	return lo + (int64_t)(gen_next(r) % (uint64_t)(hi - lo + 1));
}

struct gen_trade {
	char security[8], side[8], date[16];
	int64_t qty, price;
};

char *finra_generate(uint64_t seed, uint32_t ntrades, uint32_t violation_permille, uint32_t *nbad)
{
	static const char *const SIDES[3] = {"buy", "sell", "short"};
	static const char *const BAD_SIDES[5] = {"hold", "BUY", "sel", "", "cover"};
	static const char *const BAD_DATES[7] = {"2024-02-30", "2023-02-29", "2023-13-01",
						 "2023/05/04", "20230504",   "2023-04-31",
						 "yesterday"};
	struct gen_rng rng = {seed};
	struct finra_buf b = {0};
	uint32_t nsec = 5 + ntrades / 5, bad = 0;
	if (nsec > 200)
		nsec = 200;
	char(*sym)[8] = calloc(nsec, sizeof(*sym));
	int64_t *last = calloc(nsec, sizeof(*last));
	struct gen_trade *tr = calloc(ntrades ? ntrades : 1, sizeof(*tr));
	if (!sym || !last || !tr)
		goto fail;

	/* The market: unique 3-4 letter symbols; 1 in 8 below $5. */
	for (uint32_t s = 0; s < nsec; s++) {
	again:;
		int len = (int)gen_range(&rng, 3, 4);
		for (int c = 0; c < len; c++)
			sym[s][c] = (char)('A' + gen_range(&rng, 0, 25));
		sym[s][len] = '\0';
		for (uint32_t o = 0; o < s; o++)
			if (strcmp(sym[o], sym[s]) == 0)
				goto again;
		last[s] = gen_range(&rng, 0, 7) == 0 ? gen_range(&rng, 100, 499) : gen_range(&rng, 500, 60000);
	}
	/* As-of: a weekday in 2023-2024. */
	int64_t asof;
	finra_date_parse("2023-01-02", &asof);
	asof += gen_range(&rng, 0, 729);
	while (finra_weekday(asof) >= 5)
		asof--;
	bool pdt = gen_range(&rng, 0, 3) == 0;

	int64_t gross = 0;
	for (uint32_t i = 0; i < ntrades; i++) {
		struct gen_trade *t = &tr[i];
		uint32_t s = (uint32_t)gen_range(&rng, 0, nsec - 1);
		int64_t m = last[s];
		strcpy(t->security, sym[s]);
		strcpy(t->side, SIDES[gen_range(&rng, 0, 2)]);
		t->qty = gen_range(&rng, 0, 19) == 0 ? gen_range(&rng, 1, GEN_MAX_LOT) : gen_range(&rng, 1, 1000);
		t->price = m + m * gen_range(&rng, -5, 5) / 100;
		int64_t d = asof - gen_range(&rng, 0, 20);
		while (finra_weekday(d) >= 5)
			d--;
		finra_date_format(d, t->date);
		if (gen_range(&rng, 0, 999) < violation_permille) {
			bad++;
			switch (gen_range(&rng, 0, 8)) {
			case 0: /* LastPx above the band */
				t->price = m + m / 10 + 1 + gen_range(&rng, 0, m / 2);
				break;
			case 1: /* LastPx below the band */
				t->price = m - m / 10 - 1 - gen_range(&rng, 0, m / 3);
				break;
			case 2: /* not in the market snapshot: 6 letters, never listed */
				for (int c = 0; c < 6; c++)
					t->security[c] = (char)('A' + gen_range(&rng, 0, 25));
				t->security[6] = '\0';
				break;
			case 3: /* price not positive */
				t->price = -gen_range(&rng, 0, 99);
				break;
			case 4:
				strcpy(t->side, BAD_SIDES[gen_range(&rng, 0, 4)]);
				break;
			case 5: /* after as-of */
				finra_date_format(asof + gen_range(&rng, 1, 10), t->date);
				break;
			case 6: /* a weekend day on or before as-of */
				d = asof - gen_range(&rng, 0, 20);
				while (finra_weekday(d) < 5)
					d--;
				finra_date_format(d, t->date);
				break;
			case 7:
				strcpy(t->date, BAD_DATES[gen_range(&rng, 0, 6)]);
				break;
			default: /* qty: zero, negative, or over the lot */
				switch (gen_range(&rng, 0, 2)) {
				case 0:
					t->qty = 0;
					break;
				case 1:
					t->qty = -gen_range(&rng, 1, 100);
					break;
				default:
					t->qty = GEN_MAX_LOT + gen_range(&rng, 1, GEN_MAX_LOT);
				}
			}
		} else {
			gross += t->qty * t->price;
		}
	}
	int64_t cash = gross / 100 * gen_range(&rng, 0, 60);

	char date[11];
	finra_date_format(asof, date);
	finra_buf_printf(&b,
			 "{\"portfolio\":\"P%016" PRIx64 "\",\"asof\":\"%s\",\"cash\":%" PRId64
			 ",\"pdt\":%s,\"max_lot\":%d,\"market\":{",
			 seed, date, cash, pdt ? "true" : "false", GEN_MAX_LOT);
	for (uint32_t s = 0; s < nsec; s++)
		finra_buf_printf(&b, "%s\"%s\":%" PRId64, s ? "," : "", sym[s], last[s]);
	finra_buf_printf(&b, "},\"trades\":[");
	for (uint32_t i = 0; i < ntrades; i++) {
		finra_buf_printf(&b, "%s{\"id\":\"T%05" PRIu32 "\",\"security\":\"%s\",\"side\":", i ? "," : "",
				 i + 1, tr[i].security);
		finra_buf_str(&b, tr[i].side);
		finra_buf_printf(&b, ",\"qty\":%" PRId64 ",\"price\":%" PRId64 ",\"date\":", tr[i].qty,
				 tr[i].price);
		finra_buf_str(&b, tr[i].date);
		finra_buf_printf(&b, "}");
	}
	finra_buf_printf(&b, "]}");
	if (b.err)
		goto fail;
	free(sym);
	free(last);
	free(tr);
	if (nbad)
		*nbad = bad;
	return b.p;
fail:
	free(sym);
	free(last);
	free(tr);
	finra_buf_free(&b);
	return NULL;
}
