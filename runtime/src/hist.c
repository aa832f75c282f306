/* hist.c - the log-linear latency histogram (see iroute/hist.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "iroute/hist.h"

#define LINEAR 32u   /* values below have a bucket each */
#define SUB 16u	     /* buckets per power of two above */
#define TOP_EXP 40u  /* the last power of two: [2^40, 2^41) */

unsigned ir_hist_bucket(uint64_t us)
{
	if (us < LINEAR)
		return (unsigned)us;
	unsigned e = 63u - (unsigned)__builtin_clzll(us); /* >= 5 */
	if (e > TOP_EXP)
		return IR_HIST_BUCKETS - 1;
	unsigned sub = (unsigned)(us >> (e - 4)) & (SUB - 1);
	return LINEAR + (e - 5) * SUB + sub;
}

void ir_hist_range(unsigned i, uint64_t *lo, uint64_t *hi)
{
	if (i < LINEAR) {
		*lo = i;
		*hi = i + 1;
		return;
	}
	unsigned e = 5 + (i - LINEAR) / SUB, sub = (i - LINEAR) % SUB;
	*lo = (uint64_t)(SUB + sub) << (e - 4);
	*hi = *lo + ((uint64_t)1 << (e - 4));
}

void ir_hist_add(struct ir_hist *h, uint64_t us)
{
	h->n[ir_hist_bucket(us)]++;
	h->count++;
	if (us > h->max_us)
		h->max_us = us;
}

void ir_hist_merge(struct ir_hist *dst, const struct ir_hist *src)
{
	for (unsigned i = 0; i < IR_HIST_BUCKETS; i++)
		dst->n[i] += src->n[i];
	dst->count += src->count;
	if (src->max_us > dst->max_us)
		dst->max_us = src->max_us;
}

uint64_t ir_hist_quantile(const struct ir_hist *h, double q)
{
	if (!h->count)
		return 0;
	if (q < 0)
		q = 0;
	if (q > 1)
		q = 1;
	uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999999);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < IR_HIST_BUCKETS; i++) {
		seen += h->n[i];
		if (seen >= rank) {
			uint64_t lo, hi;
			ir_hist_range(i, &lo, &hi);
			uint64_t mid = i < LINEAR ? lo : lo + (hi - lo) / 2;
			return mid > h->max_us ? h->max_us : mid;
		}
	}
	return h->max_us;
}

char *ir_hist_to_json(const struct ir_hist *h)
{
	/* "[607,18446744073709551615]," is 28 bytes at most per bucket. */
	size_t cap = 64 + 28 * (size_t)IR_HIST_BUCKETS, n = 0;
	char *s = malloc(cap);
	if (!s)
		return NULL;
	n += (size_t)snprintf(s, cap, "{\"unit\":\"us\",\"max\":%llu,\"buckets\":[",
			      (unsigned long long)h->max_us);
	bool first = true;
	for (unsigned i = 0; i < IR_HIST_BUCKETS; i++) {
		if (!h->n[i])
			continue;
		n += (size_t)snprintf(s + n, cap - n, "%s[%u,%llu]", first ? "" : ",", i,
				      (unsigned long long)h->n[i]);
		first = false;
	}
	snprintf(s + n, cap - n, "]}");
	return s;
}

static bool is_count(const cJSON *v)
{
	return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 9007199254740992.0 &&
	       v->valuedouble == (double)(uint64_t)v->valuedouble;
}

int ir_hist_from_json(const char *text, size_t len, struct ir_hist *h, char *err,
		      size_t errlen)
{
	memset(h, 0, sizeof(*h));
	cJSON *o = cJSON_ParseWithLength(text, len);
	const char *what = "not a JSON object";
	long bad = -1;
	if (!cJSON_IsObject(o))
		goto fail;
	const cJSON *unit = cJSON_GetObjectItemCaseSensitive(o, "unit");
	const cJSON *max = cJSON_GetObjectItemCaseSensitive(o, "max");
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "buckets");
	what = "\"unit\" is not \"us\"";
	if (!cJSON_IsString(unit) || strcmp(unit->valuestring, "us") != 0)
		goto fail;
	what = "\"max\" is not a non-negative integer";
	if (max && !is_count(max))
		goto fail;
	what = "\"buckets\" is not an array";
	if (!cJSON_IsArray(b))
		goto fail;
	const cJSON *pair;
	long k = 0;
	cJSON_ArrayForEach(pair, b)
	{
		bad = k++;
		const cJSON *i = cJSON_GetArrayItem(pair, 0), *c = cJSON_GetArrayItem(pair, 1);
		what = "is not [index, count] with index 0-607 and a non-negative integer count";
		if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2 || !is_count(i) ||
		    i->valuedouble >= IR_HIST_BUCKETS || !is_count(c))
			goto fail;
		unsigned idx = (unsigned)i->valuedouble;
		what = "repeats a bucket index";
		if (h->n[idx])
			goto fail;
		h->n[idx] = (uint64_t)c->valuedouble;
		h->count += h->n[idx];
	}
	uint64_t lo, hi;
	for (unsigned i = IR_HIST_BUCKETS; i-- > 0;)
		if (h->n[i]) {
			ir_hist_range(i, &lo, &hi);
			h->max_us = hi - 1;
			break;
		}
	if (max && (uint64_t)max->valuedouble < h->max_us)
		h->max_us = (uint64_t)max->valuedouble;
	cJSON_Delete(o);
	return 0;
fail:
	cJSON_Delete(o);
	memset(h, 0, sizeof(*h));
	if (err) {
		if (bad >= 0)
			snprintf(err, errlen, "histogram: buckets[%ld] %s", bad, what);
		else
			snprintf(err, errlen, "histogram: %s", what);
	}
	return -EINVAL;
}
