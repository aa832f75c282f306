/* localstate.c - the state file of `iroute local` and the identity of the
 * processes it lists (see local.h). */
#include "local.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "stack.h"

/* ---- processes ---- */

bool ir_proc_stat(pid_t pid, char *state, unsigned long long *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	const char *p = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
	if (!p)
		return false;
	p += 2;
	*state = *p;
	/* fields after comm: 3 state ... 22 starttime */
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p)
		return false;
	*start = strtoull(p, NULL, 10);
	return true;
}

bool ir_lproc_alive(const struct ir_lproc *p)
{
	char st;
	unsigned long long start;
	if (p->pid <= 0 || !ir_proc_stat(p->pid, &st, &start))
		return false;
	return st != 'Z' && st != 'X' && (!p->start || start == p->start);
}

/* ---- state.json ---- */

void ir_lstate_free(struct ir_lstate *s)
{
	free(s->procs);
	s->procs = NULL;
	s->nprocs = 0;
}

static void copy_str(char *dst, size_t cap, const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	snprintf(dst, cap, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

static double get_num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static char *slurp(const char *path, size_t max, int *rc)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		*rc = -errno;
		return NULL;
	}
	char *buf = malloc(max + 1);
	size_t n = buf ? fread(buf, 1, max, f) : 0;
	fclose(f);
	if (!buf) {
		*rc = -ENOMEM;
		return NULL;
	}
	buf[n] = '\0';
	*rc = 0;
	return buf;
}

int ir_lstate_load(const char *dir, struct ir_lstate *s, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	char path[PATH_MAX + 16];
	ir_pathf(path, sizeof(path), "%s/" IR_LOCAL_STATE_FILE, dir);
	int rc;
	char *text = slurp(path, 4u << 20, &rc);
	if (!text) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	cJSON *o = cJSON_Parse(text);
	free(text);
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		snprintf(err, errlen, "%s: not a state file (bad JSON)", path);
		return -EINVAL;
	}
	copy_str(s->dir, sizeof(s->dir), o, "state_dir");
	if (!*s->dir)
		snprintf(s->dir, sizeof(s->dir), "%s", dir);
	copy_str(s->stack, sizeof(s->stack), o, "stack");
	copy_str(s->name, sizeof(s->name), o, "name");
	copy_str(s->workflow, sizeof(s->workflow), o, "workflow");
	copy_str(s->transport, sizeof(s->transport), o, "transport");
	copy_str(s->token_file, sizeof(s->token_file), o, "token_file");
	copy_str(s->ipc_dir, sizeof(s->ipc_dir), o, "ipc_dir");
	copy_str(s->cc_url, sizeof(s->cc_url), o, "cc_url");
	copy_str(s->entry_url, sizeof(s->entry_url), o, "entry_url");
	const cJSON *net = cJSON_GetObjectItemCaseSensitive(o, "net");
	if (cJSON_IsObject(net)) {
		s->net.nodes = (unsigned)get_num(net, "nodes");
		s->net.subnet = (unsigned)get_num(net, "subnet");
		copy_str(s->net.tag, sizeof(s->net.tag), net, "tag");
		copy_str(s->net.bridge, sizeof(s->net.bridge), net, "bridge");
		copy_str(s->net.host_ip, sizeof(s->net.host_ip), net, "host_ip");
	}
	const cJSON *ps = cJSON_GetObjectItemCaseSensitive(o, "processes");
	int n = cJSON_GetArraySize(ps);
	s->procs = calloc(n > 0 ? (size_t)n : 1, sizeof(*s->procs));
	if (!s->procs) {
		cJSON_Delete(o);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	const cJSON *p;
	cJSON_ArrayForEach(p, ps)
	{
		struct ir_lproc *q = &s->procs[s->nprocs++];
		copy_str(q->function, sizeof(q->function), p, "function");
		copy_str(q->role, sizeof(q->role), p, "role");
		copy_str(q->node_name, sizeof(q->node_name), p, "node");
		copy_str(q->ip, sizeof(q->ip), p, "ip");
		copy_str(q->log, sizeof(q->log), p, "log");
		q->replica = (unsigned)get_num(p, "replica");
		q->pid = (pid_t)get_num(p, "pid");
		q->start = (unsigned long long)get_num(p, "start_time");
		q->port = (int)get_num(p, "port");
		q->metrics_port = (int)get_num(p, "metrics_port");
		q->node = (unsigned)get_num(p, "node_index");
	}
	cJSON_Delete(o);
	return 0;
}

int ir_lstate_save(const struct ir_lstate *s, char *err, size_t errlen)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "stack", s->stack);
	cJSON_AddStringToObject(o, "name", s->name);
	cJSON_AddStringToObject(o, "workflow", s->workflow);
	cJSON_AddStringToObject(o, "state_dir", s->dir);
	cJSON_AddStringToObject(o, "transport", s->transport);
	cJSON_AddStringToObject(o, "token_file", s->token_file);
	cJSON_AddStringToObject(o, "ipc_dir", s->ipc_dir);
	cJSON_AddStringToObject(o, "cc_url", s->cc_url);
	cJSON_AddStringToObject(o, "entry_url", s->entry_url);
	cJSON *net = cJSON_AddObjectToObject(o, "net");
	cJSON_AddNumberToObject(net, "nodes", s->net.nodes);
	cJSON_AddStringToObject(net, "tag", s->net.tag);
	cJSON_AddNumberToObject(net, "subnet", s->net.subnet);
	cJSON_AddStringToObject(net, "bridge", s->net.bridge);
	cJSON_AddStringToObject(net, "host_ip", s->net.host_ip);
	cJSON *ps = cJSON_AddArrayToObject(o, "processes");
	for (size_t i = 0; i < s->nprocs; i++) {
		const struct ir_lproc *q = &s->procs[i];
		cJSON *p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "function", q->function);
		cJSON_AddStringToObject(p, "role", q->role);
		cJSON_AddNumberToObject(p, "replica", q->replica);
		cJSON_AddNumberToObject(p, "pid", q->pid);
		cJSON_AddNumberToObject(p, "start_time", (double)q->start);
		cJSON_AddNumberToObject(p, "port", q->port);
		cJSON_AddNumberToObject(p, "metrics_port", q->metrics_port);
		cJSON_AddStringToObject(p, "node", q->node_name);
		cJSON_AddNumberToObject(p, "node_index", q->node);
		cJSON_AddStringToObject(p, "ip", q->ip);
		cJSON_AddStringToObject(p, "log", q->log);
		cJSON_AddItemToArray(ps, p);
	}
	char *text = cJSON_Print(o);
	cJSON_Delete(o);
	if (!text) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	char tmp[PATH_MAX + 32], path[PATH_MAX + 16];
	ir_pathf(path, sizeof(path), "%s/" IR_LOCAL_STATE_FILE, s->dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	int rc = 0;
	if (!f || fputs(text, f) < 0 || fputc('\n', f) < 0)
		rc = -errno;
	if (f && fclose(f) != 0 && !rc)
		rc = -errno;
	free(text);
	if (!rc && rename(tmp, path) != 0)
		rc = -errno;
	if (rc)
		snprintf(err, errlen, "writing %s: %s", path, strerror(-rc));
	return rc;
}

int ir_lstate_token(const struct ir_lstate *s, char *buf, size_t cap, char *err, size_t errlen)
{
	int rc;
	char *t = slurp(s->token_file, cap - 1, &rc);
	if (!t) {
		snprintf(err, errlen, "token %s: %s", s->token_file, strerror(-rc));
		return rc;
	}
	size_t n = strcspn(t, "\r\n");
	t[n] = '\0';
	snprintf(buf, cap, "%s", t);
	free(t);
	return 0;
}

void ir_local_default_state(const char *stack_path, char *out, size_t cap)
{
	char dir[PATH_MAX], name[PATH_MAX];
	const char *slash = strrchr(stack_path, '/');
	if (slash)
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - stack_path), stack_path);
	else
		snprintf(dir, sizeof(dir), ".");
	if (!*dir)
		snprintf(dir, sizeof(dir), "/");
	snprintf(name, sizeof(name), "%s", slash ? slash + 1 : stack_path);
	size_t n = strlen(name);
	if (n > 4 && strcmp(name + n - 4, ".yml") == 0)
		name[n - 4] = '\0';
	else if (n > 5 && strcmp(name + n - 5, ".yaml") == 0)
		name[n - 5] = '\0';
	ir_pathf(out, cap, "%s/.iroute/%s", dir, name);
}

