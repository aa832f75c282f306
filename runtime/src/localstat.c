/* localstat.c - what `iroute local status`, `iroute routes` and `iroute
 * bench` print (see local.h): the state file, the instances' health and
 * the coordinator's answers turned into tables and one-line summaries. */
#include "local.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "httpreq.h"

/* GET @url@path, with the cluster token when @token; the JSON answer or NULL. */
static cJSON *get_json(const char *url, const char *path, const char *token, int *status,
		       char *err, size_t errlen)
{
	char auth[600];
	const char *hdrs[] = {auth, NULL};
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token ? token : "");
	struct ir_http_req q = {.method = "GET",
				.url = url,
				.path = path,
				.headers = token ? hdrs : NULL,
				.timeout_ms = 3000};
	struct ir_http_ans a;
	*status = 0;
	int rc = ir_http_do(&q, &a, err, errlen);
	cJSON *o = NULL;
	if (!rc) {
		*status = a.status;
		if (a.status != 200)
			snprintf(err, errlen, "GET %s%s answered %d: %.200s", url, path, a.status,
				 a.body);
		else if (!(o = cJSON_Parse(a.body)))
			snprintf(err, errlen, "GET %s%s: the answer is not JSON", url, path);
	}
	ir_http_ans_free(&a);
	return o;
}

static int health(const struct ir_lproc *p, char *why, size_t cap)
{
	char url[64];
	snprintf(url, sizeof(url), "http://%s:%d", p->ip, p->port);
	struct ir_http_req q = {.method = "GET", .url = url, .path = "/_/health", .timeout_ms = 1000};
	struct ir_http_ans a;
	int rc = ir_http_do(&q, &a, why, cap);
	int st = rc ? 0 : a.status;
	ir_http_ans_free(&a);
	return st;
}

static double num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

int ir_local_status(const char *state_dir, bool json, FILE *out, char *err, size_t errlen)
{
	struct ir_lstate s;
	int rc = ir_lstate_load(state_dir, &s, err, errlen);
	if (rc)
		return rc;
	bool all_ok = s.nprocs > 0;
	cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
	if (!json)
		fprintf(out, "%-24s %-5s %3s %-7s %7s %6s %-5s %s\n", "FUNCTION", "ROLE", "#",
			"NODE", "PID", "PORT", "ALIVE", "HEALTH");
	for (size_t i = 0; i < s.nprocs; i++) {
		const struct ir_lproc *p = &s.procs[i];
		bool alive = ir_lproc_alive(p);
		char why[256] = "";
		int h = alive ? health(p, why, sizeof(why)) : 0;
		all_ok &= alive && h == 200;
		if (json) {
			cJSON *j = cJSON_CreateObject();
			cJSON_AddStringToObject(j, "function", p->function);
			cJSON_AddStringToObject(j, "role", p->role);
			cJSON_AddNumberToObject(j, "replica", p->replica);
			cJSON_AddNumberToObject(j, "pid", p->pid);
			cJSON_AddNumberToObject(j, "port", p->port);
			cJSON_AddNumberToObject(j, "metrics_port", p->metrics_port);
			cJSON_AddStringToObject(j, "node", p->node_name);
			cJSON_AddStringToObject(j, "ip", p->ip);
			cJSON_AddStringToObject(j, "log", p->log);
			cJSON_AddBoolToObject(j, "alive", alive);
			cJSON_AddNumberToObject(j, "health", h);
			cJSON_AddItemToArray(arr, j);
		} else {
			char hs[300];
			if (!alive)
				snprintf(hs, sizeof(hs), "-");
			else if (h)
				snprintf(hs, sizeof(hs), "%d", h);
			else
				snprintf(hs, sizeof(hs), "%s", why);
			fprintf(out, "%-24s %-5s %3u %-7s %7d %6d %-5s %s\n", p->function, p->role,
				p->replica, p->node_name, (int)p->pid, p->port, alive ? "yes" : "NO",
				hs);
		}
	}
	cJSON *stats = NULL;
	char token[512], e2[512] = "";
	int status = 0;
	if (ir_lstate_token(&s, token, sizeof(token), e2, sizeof(e2)) == 0)
		stats = get_json(s.cc_url, "/v1/stats", token, &status, e2, sizeof(e2));
	if (json) {
		cJSON_AddStringToObject(o, "stack", s.stack);
		cJSON_AddStringToObject(o, "name", s.name);
		cJSON_AddStringToObject(o, "workflow", s.workflow);
		cJSON_AddStringToObject(o, "state_dir", s.dir);
		cJSON_AddStringToObject(o, "cc_url", s.cc_url);
		cJSON_AddStringToObject(o, "entry_url", s.entry_url);
		cJSON_AddNumberToObject(o, "nodes", s.net.nodes);
		cJSON_AddBoolToObject(o, "ok", all_ok);
		cJSON_AddItemToObject(o, "processes", arr);
		arr = NULL;
		if (stats) {
			cJSON_AddItemToObject(o, "coordinator", stats);
			stats = NULL;
		} else {
			cJSON_AddNullToObject(o, "coordinator");
			cJSON_AddStringToObject(o, "coordinator_error", e2);
		}
		char *text = cJSON_Print(o);
		if (text)
			fprintf(out, "%s\n", text);
		free(text);
	} else if (stats) {
		const cJSON *inst = cJSON_GetObjectItemCaseSensitive(stats, "instances");
		fprintf(out, "\ncoordinator %s: workflow \"%s\", epoch %.0f, %.0f instances (%.0f "
			     "entries",
			s.cc_url, s.workflow, num(stats, "epoch"), num(inst, "total"),
			num(inst, "entries"));
		const cJSON *fns = cJSON_GetObjectItemCaseSensitive(inst, "functions"), *f;
		cJSON_ArrayForEach(f, fns)
		{
			fprintf(out, ", %s %.0f", f->string, cJSON_IsNumber(f) ? f->valuedouble : 0);
		}
		fprintf(out, ")\nentry: %s/\n", s.entry_url);
	} else
		fprintf(out, "\ncoordinator %s: %s\n", s.cc_url, e2);
	if (!stats && !json)
		all_ok = false;
	cJSON_Delete(stats);
	cJSON_Delete(arr);
	cJSON_Delete(o);
	ir_lstate_free(&s);
	return all_ok ? 0 : 1;
}

static void print_instance(FILE *out, const cJSON *in)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(in, "id");
	const cJSON *node = cJSON_GetObjectItemCaseSensitive(in, "node");
	const cJSON *tr = cJSON_GetObjectItemCaseSensitive(in, "transports");
	const cJSON *ad = cJSON_GetObjectItemCaseSensitive(in, "addresses"), *e;
	char trs[128] = "";
	size_t off = 0;
	cJSON_ArrayForEach(e, tr)
	{
		if (cJSON_IsString(e) && off < sizeof(trs))
			off += (size_t)snprintf(trs + off, sizeof(trs) - off, "%s%s", off ? "," : "",
						e->valuestring);
	}
	fprintf(out, "  %-28s node %-12s %-12s", cJSON_IsString(id) ? id->valuestring : "?",
		cJSON_IsString(node) ? node->valuestring : "?", trs);
	cJSON_ArrayForEach(e, ad)
	{
		if (cJSON_IsString(e))
			fprintf(out, " %s=%s", e->string, e->valuestring);
	}
	fputc('\n', out);
}

struct node_count {
	char name[64];
	unsigned n;
};

static void count_node(struct node_count *nc, size_t *n, size_t cap, const cJSON *in)
{
	const cJSON *node = cJSON_GetObjectItemCaseSensitive(in, "node");
	const char *name = cJSON_IsString(node) ? node->valuestring : "?";
	for (size_t i = 0; i < *n; i++)
		if (strcmp(nc[i].name, name) == 0) {
			nc[i].n++;
			return;
		}
	if (*n < cap) {
		snprintf(nc[*n].name, sizeof(nc[*n].name), "%s", name);
		nc[(*n)++].n = 1;
	}
}

int ir_routes_print(const char *json, FILE *out, char *err, size_t errlen)
{
	cJSON *o = cJSON_Parse(json);
	const cJSON *fns = cJSON_GetObjectItemCaseSensitive(o, "functions");
	const cJSON *entries = cJSON_GetObjectItemCaseSensitive(o, "entries");
	if (!cJSON_IsObject(o) || !cJSON_IsObject(fns)) {
		snprintf(err, errlen, "not a routing table (want {\"epoch\", \"functions\", ...})");
		cJSON_Delete(o);
		return -EINVAL;
	}
	const cJSON *wf = cJSON_GetObjectItemCaseSensitive(o, "workflow");
	fprintf(out, "workflow \"%s\", epoch %.0f\n", cJSON_IsString(wf) ? wf->valuestring : "?",
		num(o, "epoch"));
	struct node_count nc[256];
	size_t nn = 0;
	const cJSON *in, *f;
	fprintf(out, "entries (%d):\n", cJSON_GetArraySize(entries));
	cJSON_ArrayForEach(in, entries)
	{
		print_instance(out, in);
		count_node(nc, &nn, 256, in);
	}
	cJSON_ArrayForEach(f, fns)
	{
		fprintf(out, "%s (%d):\n", f->string, cJSON_GetArraySize(f));
		cJSON_ArrayForEach(in, f)
		{
			print_instance(out, in);
			count_node(nc, &nn, 256, in);
		}
	}
	fprintf(out, "nodes (%zu):", nn);
	for (size_t i = 0; i < nn; i++)
		fprintf(out, " %s=%u", nc[i].name, nc[i].n);
	fputc('\n', out);
	cJSON_Delete(o);
	return 0;
}

int ir_bench_format(const char *json, char *line, size_t cap, char *err, size_t errlen)
{
	cJSON *o = cJSON_Parse(json);
	static const char *const need[] = {"n",	     "p50_ms", "p90_ms", "p99_ms",
					   "p999_ms", "max_ms", "errors", "throughput_rps"};
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, need[i]))) {
			snprintf(err, errlen, "the bench answer has no number \"%s\": %.200s",
				 need[i], json);
			cJSON_Delete(o);
			return -EINVAL;
		}
	int errors = (int)num(o, "errors");
	snprintf(line, cap,
		 "latency: p50=%.3fms p90=%.3fms p99=%.3fms p999=%.3fms max=%.3fms n=%.0f "
		 "errors=%d throughput=%.1frps",
		 num(o, "p50_ms"), num(o, "p90_ms"), num(o, "p99_ms"), num(o, "p999_ms"),
		 num(o, "max_ms"), num(o, "n"), errors, num(o, "throughput_rps"));
	cJSON_Delete(o);
	return errors < 0 ? 0 : errors;
}
