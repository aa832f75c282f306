/* hist.h - a latency histogram with bounded relative error, mergeable and
 * sent as JSON: what entries push to the coordinator (POST /v1/stats) and
 * what GET /v1/stats summarises as p50/p90/p99/p999.
 *
 * Why this design: entries measure every request and the coordinator must
 * merge many entries' figures, so averages or per-entry percentiles would
 * be wrong; a log-linear histogram (HdrHistogram's idea at its smallest)
 * merges by adding counts and keeps every quantile within 1/16 (6.25 %)
 * of the truth: values below 32 us have a bucket each, above that each
 * power of two is split into 16 equal buckets, up to 2^41 us (25 days,
 * larger values land in the last bucket).  608 buckets of 8 bytes: one
 * entry's histogram is 4.8 KiB and is sent sparse.
 *
 * Not thread-safe: the caller locks.
 */
#ifndef IROUTE_HIST_H
#define IROUTE_HIST_H
#include <stddef.h>
#include <stdint.h>

#define IR_HIST_BUCKETS 608

struct ir_hist {
	uint64_t n[IR_HIST_BUCKETS];
	uint64_t count;
	uint64_t max_us;
};

/* The bucket of @us, and the range [lo, hi) of bucket @i. */
unsigned ir_hist_bucket(uint64_t us);
void ir_hist_range(unsigned i, uint64_t *lo, uint64_t *hi);

void ir_hist_add(struct ir_hist *h, uint64_t us);
void ir_hist_merge(struct ir_hist *dst, const struct ir_hist *src);

/* The value at quantile @q (0..1) in microseconds: the middle of the bucket
 * holding the ceil(q*count)-th smallest value (never above max_us); 0 when
 * the histogram is empty. */
uint64_t ir_hist_quantile(const struct ir_hist *h, double q);

/* Sparse JSON: {"unit":"us","max":M,"buckets":[[index,count],...]}
 * (malloc'ed; NULL when out of memory). */
char *ir_hist_to_json(const struct ir_hist *h);

/* Parse that form into @h (zeroed first).  0, or -EINVAL with a message
 * naming the problem (not an object, unit other than "us", an index out of
 * range or repeated, a count that is not a non-negative integer). */
int ir_hist_from_json(const char *text, size_t len, struct ir_hist *h, char *err,
		      size_t errlen);

#endif
