/* wdconfig.c - parse the watchdog's environment as of-watchdog does (see
 * wdconfig.h for the variables and for where we deliberately differ).
 *
 * The environment is scanned once into a table of known keys (the later
 * entry wins, like of-watchdog's map), then each variable is converted in a
 * fixed order and the first error is reported.  The result is built in a
 * local struct and copied out only on success, so a failed load leaves
 * nothing to free.  Duration parsing follows Go's time.ParseDuration step by
 * step, including its float64 conversion of fractions, so that every value
 * of-watchdog accepts gives the same nanoseconds here.
 */
#include "iroute/wdconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum env_key {
	K_MODE,
	K_FPROCESS,
	K_FUNCTION_PROCESS,
	K_UPSTREAM_URL,
	K_HTTP_UPSTREAM_URL,
	K_PORT,
	K_READ_TIMEOUT,
	K_WRITE_TIMEOUT,
	K_EXEC_TIMEOUT,
	K_HEALTHCHECK_INTERVAL,
	K_MAX_INFLIGHT,
	K_CONTENT_TYPE,
	K_STATIC_PATH,
	K_READY_PATH,
	K_SUPPRESS_LOCK,
	K_BUFFER_HTTP,
	K_HTTP_BUFFER_REQ_BODY,
	K_PREFIX_LOGS,
	K_LOG_CALLID,
	K_LOG_BUFFER_SIZE,
	K_JWT_AUTH,
	K_JWT_AUTH_DEBUG,
	K_JWT_AUTH_LOCAL,
	K_ONE_SHOT,
	K_MAX_CONNECTIONS,
	K_MAX_CONNECTIONS_PER_IP,
	K_MAX_HEADER_BYTES,
	K_MAX_BODY_BYTES,
	K_COUNT
};

static const char *const key_name[K_COUNT] = {
    [K_MODE] = "mode",
    [K_FPROCESS] = "fprocess",
    [K_FUNCTION_PROCESS] = "function_process",
    [K_UPSTREAM_URL] = "upstream_url",
    [K_HTTP_UPSTREAM_URL] = "http_upstream_url",
    [K_PORT] = "port",
    [K_READ_TIMEOUT] = "read_timeout",
    [K_WRITE_TIMEOUT] = "write_timeout",
    [K_EXEC_TIMEOUT] = "exec_timeout",
    [K_HEALTHCHECK_INTERVAL] = "healthcheck_interval",
    [K_MAX_INFLIGHT] = "max_inflight",
    [K_CONTENT_TYPE] = "content_type",
    [K_STATIC_PATH] = "static_path",
    [K_READY_PATH] = "ready_path",
    [K_SUPPRESS_LOCK] = "suppress_lock",
    [K_BUFFER_HTTP] = "buffer_http",
    [K_HTTP_BUFFER_REQ_BODY] = "http_buffer_req_body",
    [K_PREFIX_LOGS] = "prefix_logs",
    [K_LOG_CALLID] = "log_callid",
    [K_LOG_BUFFER_SIZE] = "log_buffer_size",
    [K_JWT_AUTH] = "jwt_auth",
    [K_JWT_AUTH_DEBUG] = "jwt_auth_debug",
    [K_JWT_AUTH_LOCAL] = "jwt_auth_local",
    [K_ONE_SHOT] = "one_shot",
    [K_MAX_CONNECTIONS] = "IROUTE_MAX_CONNECTIONS",
    [K_MAX_CONNECTIONS_PER_IP] = "IROUTE_MAX_CONNECTIONS_PER_IP",
    [K_MAX_HEADER_BYTES] = "IROUTE_MAX_HEADER_BYTES",
    [K_MAX_BODY_BYTES] = "IROUTE_MAX_BODY_BYTES",
};

/* ---- bounded string building (error messages and the log line) ---- */

struct sbuf {
	char *buf;
	size_t cap, len; /* len may pass cap: then the output was truncated */
};

static void sb_putc(struct sbuf *sb, char c)
{
	if (sb->cap && sb->len + 1 < sb->cap)
		sb->buf[sb->len] = c;
	sb->len++;
	if (sb->cap)
		sb->buf[sb->len < sb->cap ? sb->len : sb->cap - 1] = '\0';
}

static void sb_printf(struct sbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	char *at = sb->len < sb->cap ? sb->buf + sb->len : NULL;
	size_t room = sb->len < sb->cap ? sb->cap - sb->len : 0;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(at, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		sb->len += (size_t)n;
}

/* @s in double quotes, Go %q style for the bytes that matter: quote,
 * backslash and control bytes escaped, UTF-8 passed through.  At most @max
 * bytes of @s (0 = all), then "...". */
static void sb_quote(struct sbuf *sb, const char *s, size_t max)
{
	sb_putc(sb, '"');
	size_t i;
	for (i = 0; s[i] && (!max || i < max); i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			sb_putc(sb, '\\');
			sb_putc(sb, (char)c);
		} else if (c == '\n') {
			sb_printf(sb, "\\n");
		} else if (c == '\t') {
			sb_printf(sb, "\\t");
		} else if (c < 0x20 || c == 0x7f) {
			sb_printf(sb, "\\x%02x", c);
		} else {
			sb_putc(sb, (char)c);
		}
	}
	if (s[i])
		sb_printf(sb, "...");
	sb_putc(sb, '"');
}

/* "name: <quoted value> <rest>" into @err. */
static void errv(char *err, size_t errlen, const char *name, const char *value, const char *fmt,
		 ...) __attribute__((format(printf, 5, 6)));

static void errv(char *err, size_t errlen, const char *name, const char *value, const char *fmt,
		 ...)
{
	if (!err || !errlen)
		return;
	struct sbuf sb = {err, errlen, 0};
	err[0] = '\0';
	sb_printf(&sb, "%s: ", name);
	if (value) {
		sb_quote(&sb, value, 64);
		sb_putc(&sb, ' ');
	}
	char rest[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rest, sizeof(rest), fmt, ap);
	va_end(ap);
	sb_printf(&sb, "%s", rest);
}

/* ---- numbers ---- */

/* Go's strconv.Atoi on a 64-bit host: [+-]?[0-9]+, int64 range. */
static int atoi64(const char *s, int64_t *out)
{
	const char *p = s;
	bool neg = false;
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	if (!*p)
		return -EINVAL;
	uint64_t v = 0;
	bool big = false;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			big = true;
		else
			v = v * 10 + d;
	}
	uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	if (big || v > lim)
		return -ERANGE;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

/* Go's time.ParseDuration, magnitude and sign apart.  0, -EINVAL or
 * -ERANGE (Go's overflow cases). */
static int go_duration(const char *s, bool *neg, uint64_t *mag)
{
	const uint64_t lim = (uint64_t)1 << 63;
	uint64_t d = 0;
	*neg = false;
	if (*s == '-' || *s == '+')
		*neg = *s++ == '-';
	if (strcmp(s, "0") == 0) {
		*mag = 0;
		return 0;
	}
	if (!*s)
		return -EINVAL;
	while (*s) {
		if (!(*s == '.' || (*s >= '0' && *s <= '9')))
			return -EINVAL;
		/* integer part */
		uint64_t v = 0;
		const char *p = s;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (v > lim / 10)
				return -ERANGE;
			v = v * 10 + (uint64_t)(*p - '0');
			if (v > lim)
				return -ERANGE;
		}
		bool pre = p != s;
		s = p;
		/* fraction: digits past what fits are consumed and ignored */
		uint64_t f = 0;
		double scale = 1;
		bool post = false;
		if (*s == '.') {
			s++;
			p = s;
			bool over = false;
			for (; *p >= '0' && *p <= '9'; p++) {
				if (over)
					continue;
				if (f > (lim - 1) / 10) {
					over = true;
					continue;
				}
				uint64_t y = f * 10 + (uint64_t)(*p - '0');
				if (y > lim) {
					over = true;
					continue;
				}
				f = y;
				scale *= 10;
			}
			post = p != s;
			s = p;
		}
		if (!pre && !post)
			return -EINVAL;
		/* unit: every byte up to the next digit or '.' */
		p = s;
		while (*p && *p != '.' && !(*p >= '0' && *p <= '9'))
			p++;
		size_t ulen = (size_t)(p - s);
		uint64_t unit;
		if (ulen == 0)
			return -EINVAL; /* missing unit */
		else if (ulen == 2 && !memcmp(s, "ns", 2))
			unit = 1;
		else if (ulen == 2 && !memcmp(s, "us", 2))
			unit = 1000;
		else if (ulen == 3 && !memcmp(s, "\xc2\xb5s", 3)) /* U+00B5 micro sign */
			unit = 1000;
		else if (ulen == 3 && !memcmp(s, "\xce\xbcs", 3)) /* U+03BC greek mu */
			unit = 1000;
		else if (ulen == 2 && !memcmp(s, "ms", 2))
			unit = 1000000;
		else if (ulen == 1 && *s == 's')
			unit = IR_NS_PER_SEC;
		else if (ulen == 1 && *s == 'm')
			unit = 60 * IR_NS_PER_SEC;
		else if (ulen == 1 && *s == 'h')
			unit = 3600 * IR_NS_PER_SEC;
		else
			return -EINVAL; /* unknown unit */
		s = p;
		if (v > lim / unit)
			return -ERANGE;
		v *= unit;
		if (f > 0) {
			/* as Go: float64 keeps fractions of hours ns-exact */
			v += (uint64_t)((double)f * ((double)unit / scale));
			if (v > lim)
				return -ERANGE;
		}
		d += v;
		if (d > lim)
			return -ERANGE;
	}
	if (!*neg && d > lim - 1)
		return -ERANGE;
	*mag = d;
	return 0;
}

int ir_duration_parse(const char *s, uint64_t *ns)
{
	bool neg;
	uint64_t mag;
	int r = go_duration(s, &neg, &mag);
	if (r)
		return r;
	if (neg && mag)
		return -ERANGE;
	*ns = mag;
	return 0;
}

int ir_wd_duration_parse(const char *s, uint64_t *ns)
{
	int64_t v;
	int r = *s ? atoi64(s, &v) : -EINVAL;
	if (r == -ERANGE)
		return -ERANGE;
	if (r == 0) {
		/* of-watchdog sends negative integers to ParseDuration, which
		 * fails for lack of a unit; we have no negatives either way. */
		if (v < 0)
			return -ERANGE;
		if ((uint64_t)v > IR_DURATION_MAX_NS / IR_NS_PER_SEC)
			return -ERANGE;
		*ns = (uint64_t)v * IR_NS_PER_SEC;
		return 0;
	}
	return ir_duration_parse(s, ns);
}

/* v / 10^prec with the fraction's trailing zeros dropped, as Go's fmtFrac. */
static void sb_frac(struct sbuf *sb, uint64_t v, int prec)
{
	uint64_t p10 = 1;
	for (int i = 0; i < prec; i++)
		p10 *= 10;
	uint64_t ip = v / p10, fp = v % p10;
	sb_printf(sb, "%llu", (unsigned long long)ip);
	if (!fp)
		return;
	int digits = prec;
	while (fp % 10 == 0) {
		fp /= 10;
		digits--;
	}
	sb_printf(sb, ".%0*llu", digits, (unsigned long long)fp);
}

static void sb_duration(struct sbuf *sb, uint64_t ns)
{
	if (ns == 0) {
		sb_printf(sb, "0s");
	} else if (ns < 1000) {
		sb_printf(sb, "%lluns", (unsigned long long)ns);
	} else if (ns < 1000000) {
		sb_frac(sb, ns, 3);
		sb_printf(sb, "\xc2\xb5s");
	} else if (ns < IR_NS_PER_SEC) {
		sb_frac(sb, ns, 6);
		sb_printf(sb, "ms");
	} else {
		uint64_t secs = ns / IR_NS_PER_SEC;
		uint64_t mins = secs / 60, hours = mins / 60;
		if (hours)
			sb_printf(sb, "%lluh", (unsigned long long)hours);
		if (mins)
			sb_printf(sb, "%llum", (unsigned long long)(mins % 60));
		sb_frac(sb, (secs % 60) * IR_NS_PER_SEC + ns % IR_NS_PER_SEC, 9);
		sb_printf(sb, "s");
	}
}

int ir_duration_format(uint64_t ns, char *buf, size_t len)
{
	struct sbuf sb = {buf, len, 0};
	if (len)
		buf[0] = '\0';
	sb_duration(&sb, ns);
	return sb.len < len ? 0 : -ENOSPC;
}

/* ---- the environment ---- */

static void scan_env(char *const *envp, const char *val[K_COUNT])
{
	for (int k = 0; k < K_COUNT; k++)
		val[k] = NULL;
	if (!envp)
		return;
	for (char *const *e = envp; *e; e++) {
		const char *eq = strchr(*e, '=');
		if (!eq || eq == *e)
			continue; /* of-watchdog: "Bad environment", skipped */
		size_t klen = (size_t)(eq - *e);
		for (int k = 0; k < K_COUNT; k++) {
			if (strlen(key_name[k]) == klen && !memcmp(*e, key_name[k], klen)) {
				val[k] = eq + 1; /* later entries win */
				break;
			}
		}
	}
}

static const char *const max_duration_text = "2562047h47m16.854775807s";

static int get_duration(const char *const val[K_COUNT], enum env_key k, uint64_t def, uint64_t *out,
			char *err, size_t errlen)
{
	const char *v = val[k];
	if (!v || !*v) {
		*out = def;
		return 0;
	}
	int r = ir_wd_duration_parse(v, out);
	if (r == -EINVAL) {
		errv(err, errlen, key_name[k], v,
		     "is not a duration (use seconds like 10, or 1m30s)");
	} else if (r == -ERANGE && v[0] == '-') {
		errv(err, errlen, key_name[k], v,
		     "is negative (use 0 or more seconds, like 10, or a duration like 1m30s)");
	} else if (r == -ERANGE) {
		errv(err, errlen, key_name[k], v, "is out of range (at most %s)",
		     max_duration_text);
	}
	return r;
}

/* The "true"/"1" booleans (of-watchdog's getBool). */
static int get_bool(const char *const val[K_COUNT], enum env_key k, bool *out, char *err,
		    size_t errlen)
{
	const char *v = val[k];
	*out = false;
	if (!v || !*v)
		return 0;
	if (!strcmp(v, "true") || !strcmp(v, "1")) {
		*out = true;
		return 0;
	}
	static const char *const falses[] = {"false", "0", "f", "F", "FALSE", "False"};
	for (size_t i = 0; i < sizeof(falses) / sizeof(falses[0]); i++)
		if (!strcmp(v, falses[i]))
			return 0;
	static const char *const trues[] = {"t", "T", "TRUE", "True"};
	for (size_t i = 0; i < sizeof(trues) / sizeof(trues[0]); i++) {
		if (!strcmp(v, trues[i])) {
			errv(err, errlen, key_name[k], v,
			     "is ambiguous: of-watchdog reads only \"true\" or \"1\" as true "
			     "(use true or false)");
			return -EINVAL;
		}
	}
	errv(err, errlen, key_name[k], v, "is not a boolean (use true or false)");
	return -EINVAL;
}

/* Go's strconv.ParseBool; an empty value keeps @def. */
static int get_parsebool(const char *const val[K_COUNT], enum env_key k, bool def, bool *out,
			 char *err, size_t errlen)
{
	static const char *const trues[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const falses[] = {"0", "f", "F", "FALSE", "false", "False"};
	const char *v = val[k];
	*out = def;
	if (!v || !*v)
		return 0;
	for (size_t i = 0; i < sizeof(trues) / sizeof(trues[0]); i++) {
		if (!strcmp(v, trues[i])) {
			*out = true;
			return 0;
		}
		if (!strcmp(v, falses[i])) {
			*out = false;
			return 0;
		}
	}
	errv(err, errlen, key_name[k], v, "is not a boolean (use true or false)");
	return -EINVAL;
}

/* An Atoi integer in [lo, hi]; an empty value keeps @def. */
static int get_int(const char *const val[K_COUNT], enum env_key k, int64_t def, int64_t lo,
		   int64_t hi, const char *what, int64_t *out, char *err, size_t errlen)
{
	const char *v = val[k];
	*out = def;
	if (!v || !*v)
		return 0;
	int64_t n;
	int r = atoi64(v, &n);
	if (r == -EINVAL) {
		errv(err, errlen, key_name[k], v, "is not an integer (want %s)", what);
		return r;
	}
	if (r || n < lo || n > hi) {
		errv(err, errlen, key_name[k], v, "is out of range (want %s)", what);
		return -ERANGE;
	}
	*out = n;
	return 0;
}

static int parse_mode(const char *v, enum ir_wd_mode *mode, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		enum ir_wd_mode mode;
	} modes[] = {
	    {"streaming", IR_WD_MODE_STREAMING}, {"serializing", IR_WD_MODE_SERIALIZING},
	    {"http", IR_WD_MODE_HTTP},		 {"static", IR_WD_MODE_STATIC},
	    {"iroute", IR_WD_MODE_IROUTE},
	};
	*mode = IR_WD_MODE_STREAMING;
	if (!v || !*v)
		return 0;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (!strcmp(v, modes[i].name)) {
			*mode = modes[i].mode;
			return 0;
		}
	}
	if (!strcmp(v, "afterburn"))
		errv(err, errlen, "mode", v,
		     "is no longer supported by of-watchdog (use http, or iroute)");
	else if (!strcmp(v, "inproc"))
		errv(err, errlen, "mode", v,
		     "is of-watchdog's Go-library mode (use iroute for an in-process C handler)");
	else
		errv(err, errlen, "mode", v,
		     "is unknown (want streaming, serializing, http, static or iroute)");
	return -EINVAL;
}

static char *dup_or(const char *v, const char *def)
{
	return strdup(v ? v : def);
}

/* fprocess split on every ' ', as strings.Split(s, " "). */
static int split_argv(const char *s, char ***argv_out, size_t *argc_out)
{
	*argv_out = NULL;
	*argc_out = 0;
	if (!*s)
		return 0;
	size_t n = 1;
	for (const char *p = s; *p; p++)
		n += *p == ' ';
	char **argv = calloc(n + 1, sizeof(*argv));
	if (!argv)
		return -ENOMEM;
	const char *start = s;
	for (size_t i = 0; i < n; i++) {
		const char *end = strchr(start, ' ');
		size_t len = end ? (size_t)(end - start) : strlen(start);
		argv[i] = strndup(start, len);
		if (!argv[i]) {
			for (size_t j = 0; j < i; j++)
				free(argv[j]);
			free(argv);
			return -ENOMEM;
		}
		start = end ? end + 1 : start + len;
	}
	*argv_out = argv;
	*argc_out = n;
	return 0;
}

void ir_wd_config_release(struct ir_wd_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->fprocess);
	free(cfg->upstream_url);
	free(cfg->content_type);
	free(cfg->static_path);
	free(cfg->ready_path);
	if (cfg->argv) {
		for (size_t i = 0; cfg->argv[i]; i++)
			free(cfg->argv[i]);
		free(cfg->argv);
	}
	memset(cfg, 0, sizeof(*cfg));
}

static bool mode_needs_fprocess(enum ir_wd_mode m)
{
	return m == IR_WD_MODE_STREAMING || m == IR_WD_MODE_SERIALIZING || m == IR_WD_MODE_HTTP;
}

static int load(struct ir_wd_config *c, const char *const val[K_COUNT], char *err, size_t errlen)
{
	int r;
	int64_t n;

	if ((r = parse_mode(val[K_MODE], &c->mode, err, errlen)))
		return r;

	/* Strings: the alias read last in config.go wins when present. */
	enum env_key fp_key = val[K_FUNCTION_PROCESS] ? K_FUNCTION_PROCESS : K_FPROCESS;
	enum env_key up_key = val[K_HTTP_UPSTREAM_URL] ? K_HTTP_UPSTREAM_URL
			      : val[K_UPSTREAM_URL]    ? K_UPSTREAM_URL
						       : K_HTTP_UPSTREAM_URL;
	c->fprocess = dup_or(val[fp_key], "");
	c->upstream_url = dup_or(val[up_key], "");
	c->content_type = dup_or(val[K_CONTENT_TYPE], IR_WD_DEFAULT_CONTENT_TYPE);
	c->static_path = dup_or(val[K_STATIC_PATH], IR_WD_DEFAULT_STATIC_PATH);
	c->ready_path = dup_or(val[K_READY_PATH], "");
	if (!c->fprocess || !c->upstream_url || !c->content_type || !c->static_path ||
	    !c->ready_path)
		goto nomem;
	if (split_argv(c->fprocess, &c->argv, &c->argc))
		goto nomem;

	if ((r = get_int(val, K_PORT, IR_WD_DEFAULT_PORT, 0, 65535, "a TCP port, 0-65535", &n, err,
			 errlen)))
		return r;
	c->port = (uint16_t)n;
	c->metrics_port = IR_WD_METRICS_PORT;

	if ((r = get_duration(val, K_READ_TIMEOUT, IR_WD_DEFAULT_TIMEOUT_NS, &c->read_timeout_ns,
			      err, errlen)))
		return r;
	if ((r = get_duration(val, K_WRITE_TIMEOUT, IR_WD_DEFAULT_TIMEOUT_NS, &c->write_timeout_ns,
			      err, errlen)))
		return r;
	if (c->write_timeout_ns == 0) {
		errv(err, errlen, "write_timeout", val[K_WRITE_TIMEOUT],
		     "must be over 0s (of-watchdog: \"HTTP write timeout must be over 0s\")");
		return -EINVAL;
	}
	if ((r = get_duration(val, K_EXEC_TIMEOUT, IR_WD_DEFAULT_TIMEOUT_NS, &c->exec_timeout_ns,
			      err, errlen)))
		return r;
	if ((r = get_duration(val, K_HEALTHCHECK_INTERVAL, c->write_timeout_ns,
			      &c->healthcheck_interval_ns, err, errlen)))
		return r;

	if ((r = get_int(val, K_MAX_INFLIGHT, 0, 0, UINT32_MAX, "0 for no limit, or a count", &n,
			 err, errlen)))
		return r;
	c->max_inflight = (uint32_t)n;
	const int64_t size_hi =
	    (uint64_t)SIZE_MAX < (uint64_t)INT64_MAX ? (int64_t)SIZE_MAX : INT64_MAX;
	if ((r = get_int(val, K_LOG_BUFFER_SIZE, IR_WD_DEFAULT_LOG_BUFFER_SIZE, 1, size_hi,
			 "a size in bytes, at least 1", &n, err, errlen)))
		return r;
	c->log_buffer_size = (size_t)n;

	/* Ours: the hardening limits (see wdconfig.h). */
	if ((r = get_int(val, K_MAX_CONNECTIONS, IR_WD_DEFAULT_MAX_CONNECTIONS, 1, 65536,
			 "a count of connections, 1-65536", &n, err, errlen)))
		return r;
	c->max_connections = (uint32_t)n;
	if ((r = get_int(val, K_MAX_CONNECTIONS_PER_IP, IR_WD_DEFAULT_MAX_CONNECTIONS_PER_IP, 0,
			 65536, "0 for no limit, or a count of connections", &n, err, errlen)))
		return r;
	c->max_connections_per_ip = (uint32_t)n;
	if ((r = get_int(val, K_MAX_HEADER_BYTES, IR_WD_DEFAULT_MAX_HEADER_BYTES, 1024,
			 16 * 1024 * 1024, "a size in bytes, 1024-16777216", &n, err, errlen)))
		return r;
	c->max_header_bytes = (size_t)n;
	if ((r = get_int(val, K_MAX_BODY_BYTES, IR_WD_DEFAULT_MAX_BODY_BYTES, 0, size_hi,
			 "0 for no limit, or a size in bytes", &n, err, errlen)))
		return r;
	c->max_body_bytes = (uint64_t)n;

	bool b1, b2;
	c->inject_cgi_headers = true;
	if ((r = get_bool(val, K_SUPPRESS_LOCK, &c->suppress_lock, err, errlen)) ||
	    (r = get_bool(val, K_BUFFER_HTTP, &b1, err, errlen)) ||
	    (r = get_bool(val, K_HTTP_BUFFER_REQ_BODY, &b2, err, errlen)) ||
	    (r = get_parsebool(val, K_PREFIX_LOGS, true, &c->prefix_logs, err, errlen)) ||
	    (r = get_parsebool(val, K_LOG_CALLID, false, &c->log_callid, err, errlen)) ||
	    (r = get_bool(val, K_JWT_AUTH, &c->jwt_auth, err, errlen)) ||
	    (r = get_bool(val, K_JWT_AUTH_DEBUG, &c->jwt_auth_debug, err, errlen)) ||
	    (r = get_bool(val, K_JWT_AUTH_LOCAL, &c->jwt_auth_local, err, errlen)) ||
	    (r = get_bool(val, K_ONE_SHOT, &c->one_shot, err, errlen)))
		return r;
	c->buffer_http = b1 || b2;

	/* What each mode needs. */
	const char *mname = ir_wd_mode_name(c->mode);
	if (mode_needs_fprocess(c->mode)) {
		if (!c->argc) {
			errv(err, errlen, key_name[fp_key], NULL,
			     "mode=%s needs a command: provide a \"function_process\" or "
			     "\"fprocess\" environmental variable for your function",
			     mname);
			return -EINVAL;
		}
		if (!c->argv[0][0]) {
			errv(err, errlen, key_name[fp_key], c->fprocess,
			     "starts with a space: the program name would be empty "
			     "(of-watchdog splits on every space)");
			return -EINVAL;
		}
	}
	if (c->mode == IR_WD_MODE_HTTP && !c->upstream_url[0]) {
		errv(err, errlen, key_name[up_key], NULL,
		     "mode=http needs the URL to forward to (alias %s), e.g. "
		     "http_upstream_url=http://127.0.0.1:5000",
		     up_key == K_UPSTREAM_URL ? "http_upstream_url" : "upstream_url");
		return -EINVAL;
	}
	if (c->mode == IR_WD_MODE_STATIC && !c->static_path[0]) {
		errv(err, errlen, "static_path", NULL,
		     "is empty: mode=static needs the directory to serve");
		return -EINVAL;
	}
	return 0;

nomem:
	if (err && errlen)
		snprintf(err, errlen, "watchdog config: out of memory");
	return -ENOMEM;
}

int ir_wd_config_load(struct ir_wd_config *cfg, char *const *envp, char *err, size_t errlen)
{
	const char *val[K_COUNT];
	struct ir_wd_config c;
	memset(&c, 0, sizeof(c));
	memset(cfg, 0, sizeof(*cfg));
	if (err && errlen)
		err[0] = '\0';
	scan_env(envp, val);
	int r = load(&c, val, err, errlen);
	if (r) {
		ir_wd_config_release(&c);
		return r;
	}
	*cfg = c;
	return 0;
}

const char *ir_wd_mode_name(enum ir_wd_mode mode)
{
	switch (mode) {
	case IR_WD_MODE_STREAMING:
		return "streaming";
	case IR_WD_MODE_SERIALIZING:
		return "serializing";
	case IR_WD_MODE_HTTP:
		return "http";
	case IR_WD_MODE_STATIC:
		return "static";
	case IR_WD_MODE_IROUTE:
		return "iroute";
	}
	return "unknown";
}

static const char *yn(bool b)
{
	return b ? "true" : "false";
}

int ir_wd_config_log(const struct ir_wd_config *c, char *buf, size_t len)
{
	struct sbuf sb = {buf, len, 0};
	if (len)
		buf[0] = '\0';
	sb_printf(&sb, "mode=%s", ir_wd_mode_name(c->mode));
	if (mode_needs_fprocess(c->mode)) {
		sb_printf(&sb, " fprocess=");
		sb_quote(&sb, c->fprocess ? c->fprocess : "", 0);
	}
	if (c->mode == IR_WD_MODE_HTTP) {
		sb_printf(&sb, " upstream_url=");
		sb_quote(&sb, c->upstream_url ? c->upstream_url : "", 0);
		sb_printf(&sb, " buffer_http=%s", yn(c->buffer_http));
	}
	if (c->mode == IR_WD_MODE_STATIC) {
		sb_printf(&sb, " static_path=");
		sb_quote(&sb, c->static_path ? c->static_path : "", 0);
	}
	if (c->mode == IR_WD_MODE_STREAMING || c->mode == IR_WD_MODE_SERIALIZING) {
		sb_printf(&sb, " content_type=");
		sb_quote(&sb, c->content_type ? c->content_type : "", 0);
	}
	sb_printf(&sb, " port=%u metrics_port=%u", (unsigned)c->port, (unsigned)c->metrics_port);
	static const char *const tnames[] = {"read_timeout", "write_timeout", "exec_timeout",
					     "healthcheck_interval"};
	const uint64_t tvals[] = {c->read_timeout_ns, c->write_timeout_ns, c->exec_timeout_ns,
				  c->healthcheck_interval_ns};
	for (size_t i = 0; i < 4; i++) {
		sb_printf(&sb, " %s=", tnames[i]);
		sb_duration(&sb, tvals[i]);
	}
	sb_printf(&sb, " max_inflight=%u", (unsigned)c->max_inflight);
	sb_printf(&sb, " ready_path=");
	sb_quote(&sb, c->ready_path ? c->ready_path : "", 0);
	sb_printf(&sb,
		  " suppress_lock=%s prefix_logs=%s log_buffer_size=%zu log_callid=%s jwt_auth=%s"
		  " jwt_auth_debug=%s jwt_auth_local=%s one_shot=%s",
		  yn(c->suppress_lock), yn(c->prefix_logs), c->log_buffer_size, yn(c->log_callid),
		  yn(c->jwt_auth), yn(c->jwt_auth_debug), yn(c->jwt_auth_local), yn(c->one_shot));
	sb_printf(&sb,
		  " IROUTE_MAX_CONNECTIONS=%u IROUTE_MAX_CONNECTIONS_PER_IP=%u"
		  " IROUTE_MAX_HEADER_BYTES=%zu IROUTE_MAX_BODY_BYTES=%llu",
		  (unsigned)c->max_connections, (unsigned)c->max_connections_per_ip,
		  c->max_header_bytes, (unsigned long long)c->max_body_bytes);
	return sb.len < len ? 0 : -ENOSPC;
}
