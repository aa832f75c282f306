/* common.c - helpers shared by the FINRA functions: the JSON writer, exact
 * integers, calendar dates, trade partitions and the rule driver. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finra.h"

static const char *const RULE_NAMES[FINRA_NRULES] = {"lastpx", "side", "tradedate", "volume"};

const char *finra_rule_name(int rule)
{
	return rule >= 0 && rule < FINRA_NRULES ? RULE_NAMES[rule] : NULL;
}

int finra_rule_find(const char *name)
{
	for (int r = 0; name && r < FINRA_NRULES; r++)
		if (strcmp(name, RULE_NAMES[r]) == 0)
			return r;
	return -1;
}

/* ---- the JSON writer ---- */

static bool buf_room(struct finra_buf *b, size_t n)
{
	if (b->err)
		return false;
	if (b->len + n + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 1024;
	while (cap < b->len + n + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		b->err = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void finra_buf_printf(struct finra_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !buf_room(b, (size_t)n)) {
		b->err = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void finra_buf_str(struct finra_buf *b, const char *s)
{
	if (!buf_room(b, 6 * strlen(s) + 2))
		return;
	char *w = b->p + b->len;
	*w++ = '"';
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\') {
			*w++ = '\\';
			*w++ = (char)*c;
		} else if (*c < 0x20) {
			w += sprintf(w, "\\u%04x", *c);
		} else {
			*w++ = (char)*c;
		}
	}
	*w++ = '"';
	*w = '\0';
	b->len = (size_t)(w - b->p);
}

void finra_buf_free(struct finra_buf *b)
{
	free(b->p);
	*b = (struct finra_buf){0};
}

/* ---- numbers and dates ---- */

int finra_int(const cJSON *it, int64_t *v)
{
	if (!cJSON_IsNumber(it))
		return -1;
	double d = it->valuedouble;
	if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0) || d != (double)(int64_t)d)
		return -1;
	*v = (int64_t)d;
	return 0;
}

/* Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int finra_date_parse(const char *s, int64_t *days)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return -1;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return -1;
	int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	int m = (s[5] - '0') * 10 + (s[6] - '0');
	int d = (s[8] - '0') * 10 + (s[9] - '0');
	if (y < 1 || m < 1 || m > 12 || d < 1)
		return -1;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (d > mdays[m - 1] + (m == 2 && leap))
		return -1;
	*days = days_from_civil(y, m, d);
	return 0;
}

void finra_date_format(int64_t days, char out[11])
{
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = yoe + era * 400;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int64_t d = doy - (153 * mp + 2) / 5 + 1;
	int64_t m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	unsigned yy = (unsigned)((y % 10000 + 10000) % 10000), mm = (unsigned)m, dd = (unsigned)d;
	const char f[11] = {(char)('0' + yy / 1000), (char)('0' + yy / 100 % 10), (char)('0' + yy / 10 % 10),
			    (char)('0' + yy % 10),   '-', (char)('0' + mm / 10 % 10), (char)('0' + mm % 10),
			    '-', (char)('0' + dd / 10 % 10), (char)('0' + dd % 10), '\0'};
	memcpy(out, f, sizeof(f));
}

int finra_weekday(int64_t days)
{
	/* 1970-01-01 was a Thursday (3). */
	int64_t w = (days % 7 + 7 + 3) % 7;
	return (int)w;
}

void finra_partition(const char *fname, uint32_t *part, uint32_t *parts)
{
	*part = *parts = 1;
	const char *of = fname ? strstr(fname, "-of-") : NULL;
	if (!of)
		return;
	const char *k = of;
	while (k > fname && k[-1] >= '0' && k[-1] <= '9')
		k--;
	if (k == of || k <= fname + 1 || k[-1] != '-')
		return;
	char *end;
	unsigned long pk = strtoul(k, &end, 10);
	if (end != of || of[4] < '1' || of[4] > '9')
		return;
	unsigned long pn = strtoul(of + 4, &end, 10);
	if (*end || pk < 1 || pk > pn || pn > FINRA_MAX_PARTS)
		return;
	*part = (uint32_t)pk;
	*parts = (uint32_t)pn;
}

/* ---- input and the rule driver ---- */

cJSON *finra_parse_input(const struct ir_in *in, size_t nin, const char *what, struct ir_out *out)
{
	if (nin != 1 || !in) {
		ir_out_error(out, 400, "%s: expected 1 input, got %zu", what, nin);
		return NULL;
	}
	cJSON *root = in[0].len ? cJSON_ParseWithLength(in[0].data, in[0].len) : NULL;
	if (!root) {
		ir_out_error(out, 400, "%s: input is not valid JSON", what);
		return NULL;
	}
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		ir_out_error(out, 400, "%s: input is not a JSON object", what);
		return NULL;
	}
	return root;
}

int finra_rule_run(int rule, finra_rule_prep_fn prep, finra_rule_check_fn check,
		   const struct ir_req *req, const struct ir_in *in, size_t nin, struct ir_out *out)
{
	const char *name = finra_rule_name(rule);
	cJSON *root = finra_parse_input(in, nin, name, out);
	if (!root)
		return -1;
	int rc = -1;
	char why[256] = "";
	struct finra_buf b = {0};
	struct finra_rule_ctx c = {.root = root};
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "portfolio");
	const cJSON *trades = cJSON_GetObjectItemCaseSensitive(root, "trades");
	if (!cJSON_IsString(id) || !*id->valuestring) {
		ir_out_error(out, 400, "%s: \"portfolio\" is missing or not a non-empty string", name);
		goto out;
	}
	if (!cJSON_IsArray(trades)) {
		ir_out_error(out, 400, "%s: \"trades\" is missing or not an array", name);
		goto out;
	}
	if (prep && prep(&c, why, sizeof(why)) < 0) {
		ir_out_error(out, 400, "%s: %s", name, why);
		goto out;
	}
	uint32_t part, parts;
	finra_partition(req ? req->function : NULL, &part, &parts);
	finra_buf_printf(&b, "{\"portfolio\":");
	finra_buf_str(&b, id->valuestring);
	finra_buf_printf(&b, ",\"rule\":\"%s\",\"part\":%" PRIu32 ",\"parts\":%" PRIu32, name, part,
			 parts);
	struct finra_buf v = {0};
	uint64_t i = 0, checked = 0, nv = 0;
	const cJSON *t;
	cJSON_ArrayForEach(t, trades)
	{
		uint64_t idx = i++;
		const cJSON *tid = cJSON_GetObjectItemCaseSensitive(t, "id");
		if (!cJSON_IsObject(t) || !cJSON_IsString(tid) || !*tid->valuestring) {
			ir_out_error(out, 400, "%s: trade %" PRIu64 ": not an object with a non-empty \"id\"",
				     name, idx);
			finra_buf_free(&v);
			goto out;
		}
		if (idx % parts != part - 1)
			continue;
		checked++;
		why[0] = '\0';
		int r = check(&c, t, why, sizeof(why));
		if (r < 0) {
			ir_out_error(out, 400, "%s: trade \"%s\": %s", name, tid->valuestring, why);
			finra_buf_free(&v);
			goto out;
		}
		if (r > 0) {
			finra_buf_printf(&v, "%s{\"trade\":", nv++ ? "," : "");
			finra_buf_str(&v, tid->valuestring);
			finra_buf_printf(&v, ",\"rule\":\"%s\",\"why\":", name);
			finra_buf_str(&v, why);
			finra_buf_printf(&v, "}");
		}
	}
	finra_buf_printf(&b, ",\"checked\":%" PRIu64 ",\"violations\":[%s]}", checked,
			 v.p ? v.p : "");
	if (v.err || b.err) {
		finra_buf_free(&v);
		ir_out_error(out, 500, "%s: out of memory", name);
		goto out;
	}
	finra_buf_free(&v);
	rc = ir_out_write(out, b.p, b.len);
out:
	finra_buf_free(&b);
	cJSON_Delete(root);
	return rc;
}
