/* finra.h - the FINRA benchmark: trade validation joined by a Rule 4210
 * margin balance (see README.md for the workflow, the formula and the
 * width mapping).
 *
 * Why this layout: each workflow function is one file under functions/
 * whose handler is finra_<fn>_handle() (the handler ABI of
 * iroute/handler.h under a unique name), so all of them, the generator and
 * the independent expected-result computation can be compiled into one
 * test binary (a unity include); <fn>/handler.c only maps handle() to it.
 * The shared helpers (JSON writer, integers, dates, the rule driver) are
 * prefixed finra_ and declared here rather than static, so that a build
 * that includes only one function does not warn about unused helpers.
 *
 * Money is integer cents and quantities integer shares everywhere (int64);
 * JSON numbers are accepted only when integral and within +-2^53, and
 * output is written with PRId64 (never through a double), so results are
 * byte-identical across machines.
 */
#ifndef FINRA_H
#define FINRA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <iroute/handler.h>

/* ---- the rules, in their canonical order (violations sort by it) ---- */
enum finra_rule { FINRA_LASTPX, FINRA_SIDE, FINRA_TRADEDATE, FINRA_VOLUME, FINRA_NRULES };

/* "lastpx", "side", "tradedate", "volume"; NULL out of range. */
const char *finra_rule_name(int rule);
/* The rule called @name, or -1. */
int finra_rule_find(const char *name);

/* ---- the handlers (same contract as handle() in iroute/handler.h) ---- */
int finra_marketdata_handle(void *state, const struct ir_req *req, const struct ir_in *in,
			    size_t nin, struct ir_out *out);
int finra_lastpx_handle(void *state, const struct ir_req *req, const struct ir_in *in, size_t nin,
			struct ir_out *out);
int finra_side_handle(void *state, const struct ir_req *req, const struct ir_in *in, size_t nin,
		      struct ir_out *out);
int finra_tradedate_handle(void *state, const struct ir_req *req, const struct ir_in *in,
			   size_t nin, struct ir_out *out);
int finra_volume_handle(void *state, const struct ir_req *req, const struct ir_in *in, size_t nin,
			struct ir_out *out);
int finra_margin_balance_handle(void *state, const struct ir_req *req, const struct ir_in *in,
				size_t nin, struct ir_out *out);

/* ---- Rule 4210 parameters (README.md, "Margin") ---- */
#define FINRA_LONG_PCT 25		/* maintenance on long market value */
#define FINRA_SHORT_PCT 30		/* short, price >= $5.00 */
#define FINRA_SHORT_MIN_PER_SHARE 500	/* cents, price >= $5.00 */
#define FINRA_SHORT_LOW_PRICE 500	/* cents: below it, the low-price short rule */
#define FINRA_SHORT_LOW_PER_SHARE 250	/* cents, price < $5.00 (and 100% of value) */
#define FINRA_MIN_EQUITY 200000		/* $2,000: any margin account holding a position */
#define FINRA_PDT_MIN_EQUITY 2500000	/* $25,000: pattern day trader */
#define FINRA_LASTPX_TOLERANCE_PCT 10	/* LastPx within +-10% of the market's last price */
#define FINRA_MAX_PARTS 1000		/* partitions of one rule */

/* ---- generator and expected result ---- */

/* A portfolio JSON (malloc'ed, NUL-terminated; caller frees; NULL when out
 * of memory), fully determined by @seed, @ntrades and @violation_permille:
 * each trade independently carries exactly one rule violation with
 * probability violation_permille/1000, of a kind drawn uniformly from the
 * nine in README.md; the others satisfy every rule.  *@nbad (may be NULL)
 * gets the number of trades with a violation. */
char *finra_generate(uint64_t seed, uint32_t ntrades, uint32_t violation_permille, uint32_t *nbad);

/* The final result the workflow must produce for @portfolio (borrowed,
 * @len bytes), computed directly from the portfolio in one pass, written
 * independently of the handlers.  Violations carry "trade" and "rule" like
 * the workflow's, but "why" texts are its own.  Malloc'ed JSON, or NULL
 * with a message in @err when the portfolio is malformed. */
char *finra_expected(const char *portfolio, size_t len, char *err, size_t errlen);

/* ---- shared helpers ---- */

/* A growable output string; err sticks after the first failed append. */
struct finra_buf {
	char *p;
	size_t len, cap;
	bool err;
};
void finra_buf_printf(struct finra_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* @s as a quoted JSON string. */
void finra_buf_str(struct finra_buf *b, const char *s);
void finra_buf_free(struct finra_buf *b);

/* 0 and *@v when @it is a number that is an integer within +-2^53, else -1. */
int finra_int(const cJSON *it, int64_t *v);

/* Days since 1970-01-01 of the strict "YYYY-MM-DD" date @s (a real
 * calendar date, year 1..9999): 0, or -1. */
int finra_date_parse(const char *s, int64_t *days);
/* "YYYY-MM-DD" of @days into @out (11 bytes). */
void finra_date_format(int64_t days, char out[11]);
/* 0 = Monday ... 6 = Sunday. */
int finra_weekday(int64_t days);

/* The slice of trades function @fname checks: "<rule>-<k>-of-<n>"
 * (1 <= k <= n <= FINRA_MAX_PARTS) checks the trades with index i % n ==
 * k - 1; any other name (or NULL) checks all of them (part 1 of 1). */
void finra_partition(const char *fname, uint32_t *part, uint32_t *parts);

/* The rule driver the four rule functions share: parses the portfolio
 * (in[0]), runs @prep once, then @check on every trade of this function's
 * partition, and writes
 *   {"portfolio":..,"rule":..,"part":k,"parts":n,"checked":c,
 *    "violations":[{"trade":..,"rule":..,"why":..},...]}
 * @check returns 0 (valid), 1 (a violation, reason in @why) or -1
 * (malformed input, message in @why: the request fails with 400). */
struct finra_rule_ctx {
	const cJSON *root;
	int64_t asof;	  /* tradedate */
	int64_t max_lot;  /* volume */
	const cJSON *market; /* lastpx */
};
typedef int (*finra_rule_prep_fn)(struct finra_rule_ctx *c, char *why, size_t whylen);
typedef int (*finra_rule_check_fn)(const struct finra_rule_ctx *c, const cJSON *trade, char *why,
				   size_t whylen);
int finra_rule_run(int rule, finra_rule_prep_fn prep, finra_rule_check_fn check,
		   const struct ir_req *req, const struct ir_in *in, size_t nin, struct ir_out *out);

/* Parse in[0] as a JSON object (the caller deletes it), or fail the request
 * with 400 naming @what; NULL then. */
cJSON *finra_parse_input(const struct ir_in *in, size_t nin, const char *what, struct ir_out *out);

#endif
