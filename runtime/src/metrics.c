/* metrics.c - lock-free recording and client_golang-identical rendering of
 * the watchdog's Prometheus metrics (see metrics.h for what and why).
 *
 * A (code, method) pair is a key in [0, NKEYS): code index (100-599 -> 0-499,
 * "unknown" -> 500) times NMETHODS plus method index, with methods numbered
 * in alphabetical order.  Code strings are all three digits and "unknown"
 * sorts after digits, so ascending keys are exactly client_golang's series
 * order and rendering needs no sort.  slot[key] holds 0 or 1 + the index of
 * the series in a fixed pool; it is written once, under the mutex, with a
 * release store after the series is zeroed, so the hot path is one acquire
 * load, one relaxed fetch_add on a bucket and a CAS loop on the sum's bits.
 * Each series keeps per-bucket (not cumulative) counts plus the one above
 * the last bound; the renderer cumulates, as client_golang does.
 */
#include "iroute/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define NMETHODS 11				/* ten known methods + "unknown" */
#define METHOD_UNKNOWN 10			/* index of "unknown" */
#define NCODES 501				/* 100-599, then "unknown" */
#define CODE_UNKNOWN 500			/* index of "unknown" */
#define NKEYS (NCODES * NMETHODS)		/* 5511 possible series */
#define POOL (IR_METRICS_MAX_SERIES + NMETHODS) /* cap + the fold targets */

_Static_assert(POOL < 256, "slot[] holds 1 + a pool index in one byte");

/* Alphabetical, so that the method index orders series like the label. */
static const char *const method_names[NMETHODS] = {
    "connect", "delete", "get", "head",	 "notify",  "options",
    "patch",   "post",	 "put", "trace", "unknown",
};

static const double bucket_bounds[IR_METRICS_NBUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

struct series {
	_Atomic uint64_t bucket[IR_METRICS_NBUCKETS + 1]; /* last: above 10 */
	_Atomic uint64_t sum_bits;			  /* a double's bits */
};

struct ir_metrics {
	_Atomic long long inflight;
	_Atomic unsigned char slot[NKEYS]; /* 0 or 1 + pool index */
	pthread_mutex_t create_lock;	   /* serialises series creation */
	int nnumeric;			   /* series with a numeric code */
	int nused;			   /* pool entries handed out */
	struct series pool[POOL];
};

static int method_index(const char *m)
{
	/* promhttp accepts exactly the upper- and the lower-case spelling. */
	static const char *const upper[METHOD_UNKNOWN] = {
	    "CONNECT", "DELETE", "GET",	 "HEAD", "NOTIFY",
	    "OPTIONS", "PATCH",	 "POST", "PUT",	 "TRACE",
	};
	if (!m)
		return METHOD_UNKNOWN;
	for (int i = 0; i < METHOD_UNKNOWN; i++)
		if (strcmp(m, upper[i]) == 0 || strcmp(m, method_names[i]) == 0)
			return i;
	return METHOD_UNKNOWN;
}

static int code_index(int code)
{
	if (code == 0)
		return 200 - 100;
	if (code >= 100 && code <= 599)
		return code - 100;
	return CODE_UNKNOWN;
}

int ir_metrics_new(struct ir_metrics **out)
{
	struct ir_metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	int rc = pthread_mutex_init(&m->create_lock, NULL);
	if (rc != 0) {
		free(m);
		return -rc;
	}
	atomic_init(&m->inflight, 0);
	for (size_t i = 0; i < NKEYS; i++)
		atomic_init(&m->slot[i], 0);
	for (size_t i = 0; i < POOL; i++) {
		for (size_t b = 0; b <= IR_METRICS_NBUCKETS; b++)
			atomic_init(&m->pool[i].bucket[b], 0);
		atomic_init(&m->pool[i].sum_bits, 0); /* +0.0 */
	}
	*out = m;
	return 0;
}

void ir_metrics_free(struct ir_metrics *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->create_lock);
	free(m);
}

void ir_metrics_inflight_add(struct ir_metrics *m, int delta)
{
	atomic_fetch_add_explicit(&m->inflight, delta, memory_order_relaxed);
}

/* Slow path: find or create the series for key, folding into code
 * "unknown" once the cap on numeric-code series is reached. */
static struct series *series_create(struct ir_metrics *m, int key)
{
	pthread_mutex_lock(&m->create_lock);
	unsigned char s = atomic_load_explicit(&m->slot[key], memory_order_relaxed);
	if (s == 0 && key / NMETHODS != CODE_UNKNOWN && m->nnumeric >= IR_METRICS_MAX_SERIES) {
		key = CODE_UNKNOWN * NMETHODS + key % NMETHODS;
		s = atomic_load_explicit(&m->slot[key], memory_order_relaxed);
	}
	if (s == 0) {
		/* At most MAX_SERIES numeric + NMETHODS unknown-code keys. */
		if (key / NMETHODS != CODE_UNKNOWN)
			m->nnumeric++;
		s = (unsigned char)(++m->nused);
		atomic_store_explicit(&m->slot[key], s, memory_order_release);
	}
	pthread_mutex_unlock(&m->create_lock);
	return &m->pool[s - 1];
}

static void add_double(_Atomic uint64_t *bits, double v)
{
	uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
	uint64_t new;
	do {
		double d;
		memcpy(&d, &old, sizeof(d));
		d += v;
		memcpy(&new, &d, sizeof(new));
	} while (!atomic_compare_exchange_weak_explicit(bits, &old, new, memory_order_relaxed,
							memory_order_relaxed));
}

void ir_metrics_observe(struct ir_metrics *m, const char *method, int code, double seconds)
{
	int key = code_index(code) * NMETHODS + method_index(method);
	unsigned char s = atomic_load_explicit(&m->slot[key], memory_order_acquire);
	struct series *se = s ? &m->pool[s - 1] : series_create(m, key);

	/* First bound >= seconds (upper-inclusive); NaN compares false
	 * everywhere and lands above the last bound, like Go's search. */
	int b = 0;
	while (b < IR_METRICS_NBUCKETS && !(seconds <= bucket_bounds[b]))
		b++;
	atomic_fetch_add_explicit(&se->bucket[b], 1, memory_order_relaxed);
	add_double(&se->sum_bits, seconds);
}

/* ---- float formatting ---- */

int ir_metrics_fmt_float(char *buf, size_t size, double v)
{
	char tmp[40];
	if (v == 0)
		return snprintf(buf, size, "0");
	if (v == 1)
		return snprintf(buf, size, "1");
	if (v == -1)
		return snprintf(buf, size, "-1");
	if (isnan(v))
		return snprintf(buf, size, "NaN");
	if (isinf(v))
		return snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");

	/* Shortest digit count that reads back as v: what Go's 'g', -1 picks. */
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
		if (strtod(tmp, NULL) == v)
			break;
	}

	/* Split "-d.ddde+XX" (any decimal point character) into digits and
	 * the exponent of the first digit. */
	char digs[24];
	int nd = 0, neg = 0;
	const char *p = tmp;
	if (*p == '-') {
		neg = 1;
		p++;
	}
	for (; *p && *p != 'e'; p++)
		if (*p >= '0' && *p <= '9' && nd < (int)sizeof(digs) - 1)
			digs[nd++] = *p;
	int exp = *p == 'e' ? atoi(p + 1) : 0;
	while (nd > 1 && digs[nd - 1] == '0')
		nd--;
	digs[nd] = '\0';

	char res[40];
	int n = 0;
	if (neg)
		res[n++] = '-';
	if (exp < -4 || exp >= 6) {
		res[n++] = digs[0];
		if (nd > 1) {
			res[n++] = '.';
			memcpy(res + n, digs + 1, (size_t)nd - 1);
			n += nd - 1;
		}
		n += snprintf(res + n, sizeof(res) - (size_t)n, "e%c%02d", exp < 0 ? '-' : '+',
			      exp < 0 ? -exp : exp);
	} else if (exp < 0) {
		res[n++] = '0';
		res[n++] = '.';
		for (int i = -1; i > exp; i--)
			res[n++] = '0';
		memcpy(res + n, digs, (size_t)nd);
		n += nd;
	} else {
		int dp = exp + 1; /* digits before the point */
		for (int i = 0; i < dp; i++)
			res[n++] = i < nd ? digs[i] : '0';
		if (nd > dp) {
			res[n++] = '.';
			memcpy(res + n, digs + dp, (size_t)(nd - dp));
			n += nd - dp;
		}
	}
	res[n] = '\0';
	return snprintf(buf, size, "%s", res);
}

/* ---- output buffer ---- */

struct obuf {
	char *p;
	size_t len, cap;
	int oom;
};

static void ob_put(struct obuf *o, const char *s, size_t n)
{
	if (o->oom)
		return;
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 4096;
		while (o->len + n + 1 > cap)
			cap *= 2;
		char *p = realloc(o->p, cap);
		if (!p) {
			o->oom = 1;
			return;
		}
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

static void ob_str(struct obuf *o, const char *s)
{
	ob_put(o, s, strlen(s));
}

static void ob_float(struct obuf *o, double v)
{
	char b[40];
	int n = ir_metrics_fmt_float(b, sizeof(b), v);
	ob_put(o, b, (size_t)n);
}

static void ob_family(struct obuf *o, const char *name, const char *help, const char *type)
{
	ob_str(o, "# HELP ");
	ob_str(o, name);
	ob_str(o, " ");
	ob_str(o, help);
	ob_str(o, "\n# TYPE ");
	ob_str(o, name);
	ob_str(o, " ");
	ob_str(o, type);
	ob_str(o, "\n");
}

/* name{code="...",method="..."[,le="..."]} value\n */
static void ob_sample(struct obuf *o, const char *name, const char *suffix, int key,
		      const double *le, double value)
{
	char code[16];
	int ci = key / NMETHODS;
	if (ci == CODE_UNKNOWN)
		snprintf(code, sizeof(code), "unknown");
	else
		snprintf(code, sizeof(code), "%d", ci + 100);
	ob_str(o, name);
	ob_str(o, suffix);
	ob_str(o, "{code=\"");
	ob_str(o, code);
	ob_str(o, "\",method=\"");
	ob_str(o, method_names[key % NMETHODS]);
	if (le) {
		ob_str(o, "\",le=\"");
		ob_float(o, *le);
	}
	ob_str(o, "\"} ");
	ob_float(o, value);
	ob_str(o, "\n");
}

static void ob_plain(struct obuf *o, const char *name, const char *help, const char *type,
		     double value)
{
	ob_family(o, name, help, type);
	ob_str(o, name);
	ob_str(o, " ");
	ob_float(o, value);
	ob_str(o, "\n");
}

/* ---- process metrics, as client_golang's procfs-based collector ---- */

struct proc_stat {
	int ok;
	double cpu_seconds, start_time;
	double vsize, rss;
};

static void read_proc_stat(struct proc_stat *ps)
{
	char buf[1024];
	memset(ps, 0, sizeof(*ps));
	FILE *f = fopen("/proc/self/stat", "r");
	if (!f)
		return;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* comm may hold spaces and ')': fields resume after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return;
	/* Field 3 (state) onwards; we need 14 utime, 15 stime, 22 starttime,
	 * 23 vsize, 24 rss. */
	unsigned long long fld[25] = {0};
	char *save = NULL;
	int i = 3;
	for (char *t = strtok_r(p + 1, " ", &save); t && i <= 24;
	     t = strtok_r(NULL, " ", &save), i++)
		fld[i] = strtoull(t, NULL, 10);
	if (i <= 24)
		return;
	long hz = sysconf(_SC_CLK_TCK);
	long page = sysconf(_SC_PAGESIZE);
	if (hz <= 0 || page <= 0)
		return;

	/* Boot time from /proc/stat "btime", as procfs does. */
	double btime = -1;
	f = fopen("/proc/stat", "r");
	if (f) {
		char line[256];
		while (fgets(line, sizeof(line), f))
			if (strncmp(line, "btime ", 6) == 0) {
				btime = (double)strtoull(line + 6, NULL, 10);
				break;
			}
		fclose(f);
	}
	if (btime < 0)
		return;
	ps->cpu_seconds = (double)(fld[14] + fld[15]) / (double)hz;
	ps->start_time = btime + (double)fld[22] / (double)hz;
	ps->vsize = (double)fld[23];
	ps->rss = (double)fld[24] * (double)page;
	ps->ok = 1;
}

static int count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void render_process(struct obuf *o)
{
	struct proc_stat ps;
	struct rlimit rl;
	read_proc_stat(&ps);
	if (ps.ok)
		ob_plain(o, "process_cpu_seconds_total",
			 "Total user and system CPU time spent in seconds.", "counter",
			 ps.cpu_seconds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		ob_plain(o, "process_max_fds", "Maximum number of open file descriptors.", "gauge",
			 (double)rl.rlim_cur);
	int fds = count_open_fds();
	if (fds >= 0)
		ob_plain(o, "process_open_fds", "Number of open file descriptors.", "gauge",
			 (double)fds);
	if (ps.ok) {
		ob_plain(o, "process_resident_memory_bytes", "Resident memory size in bytes.",
			 "gauge", ps.rss);
		ob_plain(o, "process_start_time_seconds",
			 "Start time of the process since unix epoch in seconds.", "gauge",
			 ps.start_time);
		ob_plain(o, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
			 "gauge", ps.vsize);
	}
	if (getrlimit(RLIMIT_AS, &rl) == 0)
		ob_plain(o, "process_virtual_memory_max_bytes",
			 "Maximum amount of virtual memory available in bytes.", "gauge",
			 (double)rl.rlim_cur);
}

/* ---- render ---- */

struct snap {
	int key;
	uint64_t cum[IR_METRICS_NBUCKETS + 1]; /* cumulative; last = count */
	double sum;
};

int ir_metrics_render(struct ir_metrics *m, char **out, size_t *len)
{
	static const double inf = INFINITY;
	struct snap *sn = malloc(sizeof(*sn) * POOL);
	if (!sn)
		return -ENOMEM;
	int ns = 0;
	for (int key = 0; key < NKEYS && ns < POOL; key++) {
		unsigned char s = atomic_load_explicit(&m->slot[key], memory_order_acquire);
		if (!s)
			continue;
		struct series *se = &m->pool[s - 1];
		uint64_t c = 0;
		for (int b = 0; b <= IR_METRICS_NBUCKETS; b++) {
			c += atomic_load_explicit(&se->bucket[b], memory_order_relaxed);
			sn[ns].cum[b] = c;
		}
		uint64_t bits = atomic_load_explicit(&se->sum_bits, memory_order_relaxed);
		memcpy(&sn[ns].sum, &bits, sizeof(double));
		sn[ns].key = key;
		ns++;
	}

	struct obuf o = {0};
	static const char *const hist = "http_request_duration_seconds";
	if (ns > 0) {
		ob_family(&o, hist, "Seconds spent serving HTTP requests.", "histogram");
		for (int i = 0; i < ns; i++) {
			for (int b = 0; b < IR_METRICS_NBUCKETS; b++)
				ob_sample(&o, hist, "_bucket", sn[i].key, &bucket_bounds[b],
					  (double)sn[i].cum[b]);
			double count = (double)sn[i].cum[IR_METRICS_NBUCKETS];
			ob_sample(&o, hist, "_bucket", sn[i].key, &inf, count);
			ob_sample(&o, hist, "_sum", sn[i].key, NULL, sn[i].sum);
			ob_sample(&o, hist, "_count", sn[i].key, NULL, count);
		}
	}
	ob_plain(&o, "http_requests_in_flight", "total HTTP requests in-flight", "gauge",
		 (double)atomic_load_explicit(&m->inflight, memory_order_relaxed));
	if (ns > 0) {
		ob_family(&o, "http_requests_total", "total HTTP requests processed", "counter");
		for (int i = 0; i < ns; i++)
			ob_sample(&o, "http_requests_total", "", sn[i].key, NULL,
				  (double)sn[i].cum[IR_METRICS_NBUCKETS]);
	}
	render_process(&o);
	free(sn);
	if (o.oom) {
		free(o.p);
		return -ENOMEM;
	}
	*out = o.p;
	*len = o.len;
	return 0;
}
