/* mirror.c - the mirror's dispatch, the snapshot's JSON form and the file
 * backend (the embedded default: no IROUTE_ZK).  ZooKeeper is zkmirror.c.
 *
 * Why this design: the file backend writes the whole snapshot to a
 * temporary file, fsync()s it and rename()s it over the old one, so a
 * reader (or a coordinator restarted after kill -9) sees either the old or
 * the new snapshot, never half of one.  It has no compare-and-set: on one
 * machine there is one coordinator per workflow, and the epoch check on
 * load is enough (a file never holds an epoch the coordinator will not
 * pass).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "mirror.h"

#define MIRROR_FILE_MAX (64u << 20)

void ir_mirror_snap_free(struct ir_mirror_snap *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nfns; i++) {
		free(s->fns[i].name);
		free(s->fns[i].instances);
	}
	free(s->fns);
	free(s->workflow);
	free(s->entries);
	memset(s, 0, sizeof(*s));
}

int ir_mirror_load(struct ir_mirror *m, struct ir_mirror_snap *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	return m->ops->load(m, out, err, errlen);
}

int ir_mirror_store(struct ir_mirror *m, const struct ir_mirror_snap *s, uint64_t *newer,
		    char *err, size_t errlen)
{
	if (newer)
		*newer = 0;
	return m->ops->store(m, s, newer, err, errlen);
}

int ir_mirror_watch(struct ir_mirror *m, void (*cb)(void *arg, uint64_t epoch), void *arg)
{
	return m->ops->watch ? m->ops->watch(m, cb, arg) : -ENOTSUP;
}

const char *ir_mirror_kind(const struct ir_mirror *m)
{
	return m->ops->kind;
}

void ir_mirror_close(struct ir_mirror *m)
{
	if (m)
		m->ops->close(m);
}

/* ---- the snapshot as one JSON object ---- */

/* Plain concatenation: the parts are JSON text already (the coordinator's
 * own, or parsed on load), and re-parsing a table of thousands of
 * instances for every epoch would cost more than the write. */
char *ir_mirror_snap_json(const struct ir_mirror_snap *s)
{
	const char *wf = s->workflow ? s->workflow : "{}";
	const char *ent = s->entries ? s->entries : "[]";
	size_t cap = 128 + strlen(wf) + strlen(ent);
	for (size_t i = 0; i < s->nfns; i++)
		cap += strlen(s->fns[i].name) + strlen(s->fns[i].instances ? s->fns[i].instances : "[]") + 4;
	char *out = malloc(cap), *q = out;
	if (!out)
		return NULL;
	q += sprintf(q, "{\"epoch\":%llu,\"ms\":%llu,\"instances\":%u,\"workflow\":%s,\"functions\":{",
		     (unsigned long long)s->epoch, (unsigned long long)s->ms, s->ninstances, wf);
	for (size_t i = 0; i < s->nfns; i++)
		q += sprintf(q, "%s\"%s\":%s", i ? "," : "", s->fns[i].name,
			     s->fns[i].instances ? s->fns[i].instances : "[]");
	sprintf(q, "},\"entries\":%s}", ent);
	return out;
}

static char *print_or_null(const cJSON *v)
{
	return v ? cJSON_PrintUnformatted(v) : NULL;
}

int ir_mirror_snap_parse(const char *text, size_t len, struct ir_mirror_snap *out, char *err,
			 size_t errlen)
{
	memset(out, 0, sizeof(*out));
	cJSON *o = cJSON_ParseWithLength(text, len);
	const char *what = "not a JSON object";
	if (!o || !cJSON_IsObject(o))
		goto bad;
	const cJSON *ep = cJSON_GetObjectItemCaseSensitive(o, "epoch");
	const cJSON *ms = cJSON_GetObjectItemCaseSensitive(o, "ms");
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "instances");
	const cJSON *wf = cJSON_GetObjectItemCaseSensitive(o, "workflow");
	const cJSON *fns = cJSON_GetObjectItemCaseSensitive(o, "functions");
	const cJSON *ent = cJSON_GetObjectItemCaseSensitive(o, "entries");
	what = "\"epoch\" is not a positive integer";
	if (!cJSON_IsNumber(ep) || ep->valuedouble < 1 || ep->valuedouble > 9007199254740992.0)
		goto bad;
	what = "\"workflow\" is not an object";
	if (!cJSON_IsObject(wf))
		goto bad;
	what = "\"functions\" is not an object";
	if (!cJSON_IsObject(fns))
		goto bad;
	what = "\"entries\" is not an array";
	if (!cJSON_IsArray(ent))
		goto bad;
	out->epoch = (uint64_t)ep->valuedouble;
	out->ms = cJSON_IsNumber(ms) && ms->valuedouble > 0 ? (uint64_t)ms->valuedouble : 0;
	out->ninstances = cJSON_IsNumber(n) && n->valuedouble > 0 ? (uint32_t)n->valuedouble : 0;
	size_t nfns = (size_t)cJSON_GetArraySize(fns);
	out->fns = calloc(nfns ? nfns : 1, sizeof(*out->fns));
	out->workflow = print_or_null(wf);
	out->entries = print_or_null(ent);
	if (!out->fns || !out->workflow || !out->entries)
		goto nomem;
	const cJSON *f;
	cJSON_ArrayForEach(f, fns)
	{
		what = "a function's instances are not an array";
		if (!cJSON_IsArray(f))
			goto bad;
		struct ir_mirror_fn *d = &out->fns[out->nfns++];
		d->name = strdup(f->string);
		d->instances = print_or_null(f);
		if (!d->name || !d->instances)
			goto nomem;
	}
	cJSON_Delete(o);
	return 0;
nomem:
	cJSON_Delete(o);
	ir_mirror_snap_free(out);
	return -ENOMEM;
bad:
	cJSON_Delete(o);
	ir_mirror_snap_free(out);
	if (err)
		snprintf(err, errlen, "mirror snapshot: %s", what);
	return -EPROTO;
}

/* ---- the file backend ---- */

struct file_mirror {
	struct ir_mirror base;
	char path[PATH_MAX];
};

static int file_load(struct ir_mirror *m, struct ir_mirror_snap *out, char *err, size_t errlen)
{
	struct file_mirror *fm = (struct file_mirror *)m;
	int fd = open(fm->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (err)
			snprintf(err, errlen, "mirror file %s: %s", fm->path, strerror(e));
		return -e;
	}
	struct stat st;
	char *buf = NULL;
	int rc = -EPROTO;
	if (fstat(fd, &st) != 0 || st.st_size > (off_t)MIRROR_FILE_MAX) {
		if (err)
			snprintf(err, errlen, "mirror file %s: not a regular file under %u MiB",
				 fm->path, MIRROR_FILE_MAX >> 20);
		goto out;
	}
	size_t len = (size_t)st.st_size, got = 0;
	rc = -ENOMEM;
	if (!(buf = malloc(len + 1)))
		goto out;
	while (got < len) {
		ssize_t r = read(fd, buf + got, len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -errno : -EPROTO;
			if (err)
				snprintf(err, errlen, "mirror file %s: short read", fm->path);
			goto out;
		}
		got += (size_t)r;
	}
	char perr[200] = "";
	rc = ir_mirror_snap_parse(buf, len, out, perr, sizeof(perr));
	if (rc && err)
		snprintf(err, errlen, "mirror file %s: %s", fm->path, perr);
out:
	free(buf);
	close(fd);
	return rc;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int file_store(struct ir_mirror *m, const struct ir_mirror_snap *s, uint64_t *newer,
		      char *err, size_t errlen)
{
	(void)newer;
	struct file_mirror *fm = (struct file_mirror *)m;
	char *text = ir_mirror_snap_json(s);
	if (!text)
		return -ENOMEM;
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof(tmp), "%s.tmp", fm->path);
	int rc = 0, fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		rc = -errno;
	if (!rc)
		rc = write_all(fd, text, strlen(text));
	if (!rc && fsync(fd) != 0)
		rc = -errno;
	if (fd >= 0 && close(fd) != 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, fm->path) != 0)
		rc = -errno;
	free(text);
	if (rc) {
		unlink(tmp);
		if (err)
			snprintf(err, errlen, "mirror file %s: %s", fm->path, strerror(-rc));
	}
	return rc;
}

static void file_close(struct ir_mirror *m)
{
	free(m);
}

static const struct ir_mirror_ops file_ops = {
    .kind = "file",
    .load = file_load,
    .store = file_store,
    .watch = NULL,
    .close = file_close,
};

int ir_mirror_open_file(struct ir_mirror **m, const char *path, char *err, size_t errlen)
{
	if (!path || !*path || strlen(path) >= PATH_MAX) {
		if (err)
			snprintf(err, errlen, "mirror file: no path, or a path over %d bytes",
				 PATH_MAX - 1);
		return -EINVAL;
	}
	struct file_mirror *fm = calloc(1, sizeof(*fm));
	if (!fm)
		return -ENOMEM;
	fm->base.ops = &file_ops;
	memcpy(fm->path, path, strlen(path) + 1);
	*m = &fm->base;
	return 0;
}
