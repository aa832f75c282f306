/* metrics.h - the watchdog's Prometheus metrics, rendered the way
 * of-watchdog (through client_golang) serves them on :8081/metrics.
 *
 * Why this design: dashboards and alerts written for of-watchdog must keep
 * working, so names, help texts, types, label names, label values, buckets
 * and the text format are of-watchdog's (metrics/http.go and
 * metrics/metrics.go; pkg/watchdog.go wraps the function handler only, not
 * /_/health or /_/ready) as produced by client_golang v1.23.2 (promhttp's
 * InstrumentHandlerCounter/Duration, expfmt's text encoder).  Recording is
 * on every request's path from many threads, so it takes no lock: a
 * (code, method) pair maps to a small integer, a per-pair byte table of
 * atomics finds its series, and counts and sums are C11 atomics.  A mutex
 * is taken only to create a series.  Rejected: one mutex around everything
 * (serialises all workers on each request) and a hash map keyed by strings
 * (the label values come from a closed set, so a direct index is enough).
 *
 * What is exposed (families sorted by name, as client_golang's gatherer
 * does; series sorted by their label values, code before method):
 *   http_request_duration_seconds  histogram {code, method}
 *       "Seconds spent serving HTTP requests."
 *       buckets client_golang DefBuckets: .005 .01 .025 .05 .1 .25 .5 1
 *       2.5 5 10, upper-inclusive (an observation of exactly 0.005 is
 *       counted in le="0.005"), then le="+Inf", _sum, _count
 *   http_requests_in_flight        gauge  "total HTTP requests in-flight"
 *       always present (of-watchdog sets it to 0 at start)
 *   http_requests_total            counter {code, method}
 *       "total HTTP requests processed"
 *   process_cpu_seconds_total, process_max_fds, process_open_fds,
 *   process_resident_memory_bytes, process_start_time_seconds,
 *   process_virtual_memory_bytes, process_virtual_memory_max_bytes
 *       client_golang's process collector, same names, help texts and
 *       meaning, read from /proc/self (a value that cannot be read is left
 *       out, as client_golang does without ReportErrors)
 * A counter or histogram family with no series yet is not printed at all
 * (client_golang drops empty families), so before the first request only
 * the in-flight gauge and the process metrics appear.
 *
 * Label values, exactly as promhttp makes them:
 *   method  the request method lower-cased if it is one of GET PUT HEAD
 *           POST DELETE CONNECT OPTIONS NOTIFY TRACE PATCH (matched in all
 *           upper or all lower case only, like promhttp), otherwise
 *           "unknown".  Note: lower case ("get"), not "GET".
 *   code    the status as a decimal string for 100-599; 0 (no status
 *           written) is "200"; anything else is "unknown".
 *
 * Not exposed, deliberately: the Go runtime's go_* metrics,
 * promhttp_metric_handler_* (they describe the Go metrics server) and
 * process_network_*_bytes_total (newer client_golang only).
 *
 * Cardinality cap (ours; of-watchdog has none): at most
 * IR_METRICS_MAX_SERIES (code, method) series with a numeric code.  Once
 * that many exist, a request whose pair has no series yet is counted under
 * code="unknown" with its method (at most 11 more series, so the total is
 * bounded by 75).  "unknown" is the value promhttp itself uses for what it
 * does not itemise, so no new label value is invented; sums over code
 * stay exact.
 *
 * Consistency: each series' buckets are read once per render and _count,
 * le="+Inf" and http_requests_total are derived from that one read, so they
 * always agree within a render; _sum may include an observation whose
 * bucket was not yet read (client_golang avoids this with a hot/cold swap;
 * we accept the skew of a request in progress).
 */
#ifndef IROUTE_METRICS_H
#define IROUTE_METRICS_H

#include <stddef.h>

/* Series with a numeric code before new pairs fold into code="unknown". */
#define IR_METRICS_MAX_SERIES 64

/* Number of finite histogram buckets (client_golang DefBuckets). */
#define IR_METRICS_NBUCKETS 11

/* Opaque: the series table and the in-flight gauge. */
struct ir_metrics;

/* Allocate an empty metric set (in-flight 0, no series) into *out; process
 * metrics are read at render time, not here.  Returns 0, or -ENOMEM (or
 * the -errno of pthread_mutex_init) with *out untouched.  The caller owns
 * the result; release it with ir_metrics_free(). */
int ir_metrics_new(struct ir_metrics **out);

/* Release m.  No other thread may be using it.  NULL is a no-op. */
void ir_metrics_free(struct ir_metrics *m);

/* Add delta (+1 when a request starts, -1 when it ends) to
 * http_requests_in_flight.  Thread-safe, lock-free. */
void ir_metrics_inflight_add(struct ir_metrics *m, int delta);

/* Record one finished request: http_requests_total{code,method} += 1 and
 * one observation of seconds in http_request_duration_seconds{code,method}.
 * method is the raw request method (borrowed for the call; NULL counts as
 * "unknown"); code is the HTTP status (see the label rules above).  A
 * negative duration lands in the first bucket and NaN in +Inf only, as in
 * client_golang.  Thread-safe; lock-free except the first time a series is
 * seen. */
void ir_metrics_observe(struct ir_metrics *m, const char *method, int code, double seconds);

/* Render everything in the Prometheus text format 0.0.4 (content type
 * "text/plain; version=0.0.4; charset=utf-8") into a new NUL-terminated
 * buffer: *out (caller frees with free()) and its length *len without the
 * NUL.  Safe while other threads record.  Returns 0, or -ENOMEM with *out
 * and *len untouched. */
int ir_metrics_render(struct ir_metrics *m, char **out, size_t *len);

/* Format v as client_golang's text encoder does: "0", "1", "-1", "NaN",
 * "+Inf", "-Inf" for those values (so -0 is "0"), otherwise Go's
 * strconv.FormatFloat(v, 'g', -1, 64): the shortest digits that read back
 * as v, in exponent form ("1e+06", "1.2345e-05") when the decimal exponent
 * is < -4 or >= 6, else plain ("0.005", "2.5", "123456").  Writes at most
 * size bytes including the NUL (32 always suffices) and returns the length
 * it needs without the NUL, like snprintf. */
int ir_metrics_fmt_float(char *buf, size_t size, double v);

#endif
