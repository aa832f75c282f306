/* generate_data.c - the FINRA entry's load generator (template c-entry):
 * the body of POST /bench request @seq is the portfolio
 * finra_generate(seed = seq, FINRA_TRADES, FINRA_VIOLATION_PERMILLE)
 * (common/generate.c, README.md "Data"), so a run of N requests sends N
 * different portfolios, and the same N on every run and every machine.
 *
 * Sizes, from the entry's environment (read once):
 *   FINRA_TRADES              trades per portfolio, 1..100000 [100: ~9.5 KB]
 *   FINRA_VIOLATION_PERMILLE  chance of a rule violation per trade, per
 *                             mille, 0..1000 [50]
 * A bad value fails every /bench request (and says why on stderr once).
 * common/ is copied in by stack.yml (configuration.copy). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iroute/handler.h>

#include "common/common.c"
#include "common/generate.c"

#define FINRA_DEFAULT_TRADES 100
#define FINRA_DEFAULT_PERMILLE 50

static pthread_once_t gen_once = PTHREAD_ONCE_INIT;
static uint32_t gen_trades, gen_permille;
static int gen_err;

static int env_u32(const char *name, uint32_t def, uint32_t min, uint32_t max, uint32_t *v)
{
	const char *s = getenv(name);
	if (!s || !*s) {
		*v = def;
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long x = strtoul(s, &end, 10);
	if (*end || errno || *s == '-' || x < min || x > max) {
		fprintf(stderr, "generate_data: %s: \"%s\" is not an integer %u-%u\n", name, s, min,
			max);
		return -EINVAL;
	}
	*v = (uint32_t)x;
	return 0;
}

static void gen_config(void)
{
	if (env_u32("FINRA_TRADES", FINRA_DEFAULT_TRADES, 1, 100000, &gen_trades) ||
	    env_u32("FINRA_VIOLATION_PERMILLE", FINRA_DEFAULT_PERMILLE, 0, 1000, &gen_permille))
		gen_err = -EINVAL;
}

int generate_data(uint64_t seq, struct ir_out *out);

int generate_data(uint64_t seq, struct ir_out *out)
{
	pthread_once(&gen_once, gen_config);
	if (gen_err)
		return gen_err;
	char *p = finra_generate(seq, gen_trades, gen_permille, NULL);
	if (!p)
		return -ENOMEM;
	int rc = ir_out_write(out, p, strlen(p));
	free(p);
	return rc;
}
