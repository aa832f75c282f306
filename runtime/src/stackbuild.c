/* stackbuild.c - faas-cli's build context of each function and the
 * template's build.sh over it (see stack.h). */
#include "stack.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define COPY_DEPTH 64 /* directories deep; deeper is a symbolic link loop */

int ir_pathf(char *out, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, cap, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int errf(char *err, size_t errlen, int e, const char *what, const char *path)
{
	snprintf(err, errlen, "%s(%s): %s", what, path, strerror(e));
	return -e;
}

int ir_mkdirs(const char *path, unsigned mode, char *err, size_t errlen)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return errf(err, errlen, ENAMETOOLONG, "mkdir", path);
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || !*p) {
			char c = *p;
			*p = '\0';
			if (mkdir(buf, mode) != 0 && errno != EEXIST)
				return errf(err, errlen, errno, "mkdir", buf);
			*p = c;
			if (!c)
				break;
		}
	}
	struct stat sb;
	if (stat(path, &sb) != 0)
		return errf(err, errlen, errno, "stat", path);
	if (!S_ISDIR(sb.st_mode))
		return errf(err, errlen, ENOTDIR, "mkdir", path);
	return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

int ir_rmtree(const char *path, char *err, size_t errlen)
{
	struct stat sb;
	if (lstat(path, &sb) != 0)
		return errno == ENOENT ? 0 : errf(err, errlen, errno, "lstat", path);
	if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) != 0)
		return errf(err, errlen, errno ? errno : EIO, "remove", path);
	return 0;
}

static int copy_file(const char *src, const char *dst, mode_t mode, char *err, size_t errlen)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return errf(err, errlen, errno, "open", src);
	int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode & 0777);
	if (out < 0) {
		int e = errno;
		close(in);
		return errf(err, errlen, e, "open", dst);
	}
	char buf[64 * 1024];
	int rc = 0;
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = errf(err, errlen, errno, "read", src);
			break;
		}
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				rc = errf(err, errlen, errno, "write", dst);
				goto out;
			}
			off += w;
		}
	}
out:
	if (fchmod(out, mode & 07777) != 0 && !rc)
		rc = errf(err, errlen, errno, "chmod", dst);
	if (close(out) != 0 && !rc)
		rc = errf(err, errlen, errno, "close", dst);
	close(in);
	return rc;
}

/* cp -rL @src @dst: directories merged into an existing @dst, files
 * replaced, modes kept, links followed; sockets, fifos and devices skipped. */
static int copy_tree(const char *src, const char *dst, int depth, char *err, size_t errlen)
{
	struct stat sb;
	if (stat(src, &sb) != 0)
		return errf(err, errlen, errno, "stat", src);
	if (S_ISREG(sb.st_mode))
		return copy_file(src, dst, sb.st_mode, err, errlen);
	if (!S_ISDIR(sb.st_mode))
		return 0;
	if (depth > COPY_DEPTH) {
		snprintf(err, errlen, "%s: directories nested over %d deep (a link loop?)", src,
			 COPY_DEPTH);
		return -ELOOP;
	}
	if (mkdir(dst, (sb.st_mode & 0777) | 0700) != 0 && errno != EEXIST)
		return errf(err, errlen, errno, "mkdir", dst);
	DIR *d = opendir(src);
	if (!d)
		return errf(err, errlen, errno, "opendir", src);
	int rc = 0;
	struct dirent *e;
	while (!rc && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char s[PATH_MAX], t[PATH_MAX];
		if (ir_pathf(s, sizeof(s), "%s/%s", src, e->d_name) >= (int)sizeof(s) ||
		    ir_pathf(t, sizeof(t), "%s/%s", dst, e->d_name) >= (int)sizeof(t))
			rc = errf(err, errlen, ENAMETOOLONG, "copy", s);
		else
			rc = copy_tree(s, t, depth + 1, err, errlen);
	}
	closedir(d);
	return rc;
}

/* @rel cleaned ("./a//b/../c" -> "a/c") into @out; false when it is
 * absolute, empty after cleaning or climbs out of its directory. */
static bool clean_rel(const char *rel, char *out, size_t cap)
{
	if (!*rel || rel[0] == '/' || strlen(rel) >= cap)
		return false;
	size_t n = 0;
	const char *p = rel;
	while (*p) {
		size_t len = strcspn(p, "/");
		if (len == 0 || (len == 1 && p[0] == '.')) {
			/* nothing */
		} else if (len == 2 && p[0] == '.' && p[1] == '.') {
			if (n == 0)
				return false;
			while (n > 0 && out[n - 1] != '/')
				n--;
			if (n > 0)
				n--; /* the '/' before the dropped component */
		} else {
			if (n)
				out[n++] = '/';
			memcpy(out + n, p, len);
			n += len;
		}
		p += len;
		if (*p == '/')
			p++;
	}
	out[n] = '\0';
	return n > 0;
}

int ir_stack_context(const struct ir_stack *st, const struct ir_stack_fn *fn,
		     const char *template_dir, const char *ctx, char *err, size_t errlen)
{
	char tpl[PATH_MAX], fdir[PATH_MAX];
	ir_pathf(tpl, sizeof(tpl), "%s/%s", template_dir, fn->lang_name);
	struct stat sb;
	if (stat(tpl, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "function \"%s\": no template %s in %s (%s)", fn->name,
			 fn->lang_name, template_dir, strerror(errno ? errno : ENOTDIR));
		return -ENOENT;
	}
	/* Check the copy paths before anything is written. */
	for (size_t i = 0; i < st->copy.n; i++) {
		char clean[PATH_MAX], src[PATH_MAX];
		if (!clean_rel(st->copy.v[i], clean, sizeof(clean))) {
			snprintf(err, errlen,
				 "configuration.copy: \"%s\" is not a path inside %s (faas-cli "
				 "copies only paths under the stack's directory, never all of it)",
				 st->copy.v[i], st->dir);
			return -EINVAL;
		}
		ir_pathf(src, sizeof(src), "%s/%s", st->dir, clean);
		if (stat(src, &sb) != 0) {
			int e = errno;
			snprintf(err, errlen, "configuration.copy: \"%s\": %s: %s", st->copy.v[i],
				 src, strerror(e));
			return -e;
		}
	}
	int rc = ir_rmtree(ctx, err, errlen);
	if (!rc)
		rc = ir_mkdirs(ctx, 0755, err, errlen);
	if (!rc)
		rc = copy_tree(tpl, ctx, 0, err, errlen);
	ir_pathf(fdir, sizeof(fdir), "%s/function", ctx);
	if (!rc)
		rc = ir_mkdirs(fdir, 0755, err, errlen);
	if (rc)
		return rc;
	/* The handler folder overlaid into function/, minus build/ and template/. */
	DIR *d = opendir(fn->handler_path);
	if (!d)
		return errf(err, errlen, errno, "opendir", fn->handler_path);
	struct dirent *e;
	while (!rc && (e = readdir(d))) {
		const char *nm = e->d_name;
		if (!strcmp(nm, ".") || !strcmp(nm, "..") || !strcmp(nm, "build") ||
		    !strcmp(nm, "template") || !strcmp(nm, ".iroute"))
			continue; /* .iroute: our state, with the contexts being made */
		char s[PATH_MAX], t[PATH_MAX];
		ir_pathf(s, sizeof(s), "%s/%s", fn->handler_path, nm);
		ir_pathf(t, sizeof(t), "%s/%s", fdir, nm);
		rc = copy_tree(s, t, 0, err, errlen);
	}
	closedir(d);
	for (size_t i = 0; !rc && i < st->copy.n; i++) {
		char clean[PATH_MAX], src[PATH_MAX], dst[PATH_MAX * 2];
		clean_rel(st->copy.v[i], clean, sizeof(clean));
		ir_pathf(src, sizeof(src), "%s/%s", st->dir, clean);
		ir_pathf(dst, sizeof(dst), "%s/%s", fdir, clean);
		char *slash = strrchr(dst, '/');
		*slash = '\0';
		rc = ir_mkdirs(dst, 0755, err, errlen);
		*slash = '/';
		if (!rc)
			rc = copy_tree(src, dst, 0, err, errlen);
	}
	return rc;
}

void ir_file_tail(const char *path, unsigned lines, char *buf, size_t cap)
{
	if (!cap)
		return;
	buf[0] = '\0';
	FILE *f = fopen(path, "rb");
	if (!f)
		return;
	char raw[16 * 1024];
	long start = 0;
	if (fseek(f, 0, SEEK_END) == 0) {
		long size = ftell(f);
		start = size > (long)sizeof(raw) - 1 ? size - (long)sizeof(raw) + 1 : 0;
	}
	fseek(f, start, SEEK_SET);
	size_t n = fread(raw, 1, sizeof(raw) - 1, f);
	fclose(f);
	while (n && raw[n - 1] == '\n')
		n--;
	raw[n] = '\0';
	size_t from = n;
	unsigned seen = 0;
	while (from > 0) {
		if (raw[from - 1] == '\n' && ++seen == lines)
			break;
		from--;
	}
	size_t off = 0;
	for (char *l = raw + from; l && *l && off + 1 < cap;) {
		char *nl = strchr(l, '\n');
		if (nl)
			*nl = '\0';
		int w = snprintf(buf + off, cap - off, "  %s\n", l);
		if (w < 0)
			break;
		off += (size_t)w;
		l = nl ? nl + 1 : NULL;
	}
	if (off >= cap)
		buf[cap - 1] = '\0';
}

/* ---- running build.sh ---- */

struct job {
	const struct ir_stack_fn *fn;
	pid_t pid;
	int status;
	uint64_t t0_ms;
	char ctx[PATH_MAX], out[PATH_MAX], log[PATH_MAX];
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int start_job(const struct ir_build_opts *o, struct job *j, char *err, size_t errlen)
{
	char script[PATH_MAX];
	ir_pathf(script, sizeof(script), "%s/build.sh", j->ctx);
	struct stat sb;
	if (stat(script, &sb) != 0) {
		snprintf(err, errlen, "function \"%s\": template %s has no build.sh (%s/%s)",
			 j->fn->name, j->fn->lang_name, o->template_dir, j->fn->lang_name);
		return -ENOENT;
	}
	if (unlink(j->out) != 0 && errno != ENOENT)
		return errf(err, errlen, errno, "unlink", j->out);
	int logfd = open(j->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (logfd < 0)
		return errf(err, errlen, errno, "open", j->log);
	bool exec_ok = access(script, X_OK) == 0;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(logfd);
		return errf(err, errlen, e, "fork", "build.sh");
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		if (chdir(j->ctx) != 0) {
			dprintf(2, "iroute: chdir(%s): %s\n", j->ctx, strerror(errno));
			_exit(126);
		}
		for (size_t i = 0; i < j->fn->build_args.n; i++)
			setenv(j->fn->build_args.v[i].key, j->fn->build_args.v[i].value, 1);
		if (exec_ok) {
			char *argv[] = {"./build.sh", "--prefix", (char *)o->prefix, "--out", j->out,
					NULL};
			execv("./build.sh", argv);
		} else {
			char *argv[] = {"/bin/sh", "build.sh", "--prefix", (char *)o->prefix, "--out",
					j->out, NULL};
			execv("/bin/sh", argv);
		}
		dprintf(2, "iroute: exec build.sh: %s\n", strerror(errno));
		_exit(127);
	}
	close(logfd);
	j->pid = pid;
	j->t0_ms = mono_ms();
	if (o->progress)
		fprintf(o->progress, "build: %s (%s) ...\n", j->fn->name, j->fn->lang_name);
	return 0;
}

static int job_result(const struct ir_build_opts *o, struct job *j, char *err, size_t errlen)
{
	char tail[2048], how[64];
	int st = j->status;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		if (access(j->out, X_OK) == 0) {
			if (o->progress)
				fprintf(o->progress, "build: %s ok (%.1f s)\n", j->fn->name,
					(double)(mono_ms() - j->t0_ms) / 1000.0);
			return 0;
		}
		snprintf(how, sizeof(how), "exited 0 but wrote no executable %s", "--out");
	} else if (WIFEXITED(st))
		snprintf(how, sizeof(how), "failed (exit status %d)", WEXITSTATUS(st));
	else
		snprintf(how, sizeof(how), "failed (signal %d)", WTERMSIG(st));
	ir_file_tail(j->log, 15, tail, sizeof(tail));
	snprintf(err, errlen, "build of \"%s\" (%s/build.sh) %s; the end of %s:\n%s", j->fn->name,
		 j->ctx, how, j->log, tail);
	return -EIO;
}

int ir_stack_build(const struct ir_stack *st, const struct ir_build_opts *o, char *err,
		   size_t errlen)
{
	char dir[PATH_MAX];
	const char *sub[] = {"build", "bin", "logs"};
	for (size_t i = 0; i < 3; i++) {
		ir_pathf(dir, sizeof(dir), "%s/%s", o->state_dir, sub[i]);
		int rc = ir_mkdirs(dir, 0755, err, errlen);
		if (rc)
			return rc;
	}
	struct job *jobs = calloc(st->nfns ? st->nfns : 1, sizeof(*jobs));
	if (!jobs) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < st->nfns; i++) {
		struct job *j = &jobs[i];
		j->fn = &st->fns[i];
		ir_pathf(j->ctx, sizeof(j->ctx), "%s/build/%s", o->state_dir, j->fn->name);
		ir_pathf(j->out, sizeof(j->out), "%s/bin/%s", o->state_dir, j->fn->name);
		ir_pathf(j->log, sizeof(j->log), "%s/logs/build-%s.log", o->state_dir, j->fn->name);
	}
	/* Every context first: a bad copy path fails before any compiler runs. */
	int rc = 0;
	for (size_t i = 0; !rc && i < st->nfns; i++)
		rc = ir_stack_context(st, jobs[i].fn, o->template_dir, jobs[i].ctx, err, errlen);
	size_t next = 0, running = 0, done = 0;
	unsigned max = o->jobs ? o->jobs : 1;
	while (done < st->nfns) {
		while (!rc && next < st->nfns && running < max) {
			rc = start_job(o, &jobs[next], err, errlen);
			if (!rc)
				running++;
			next++;
		}
		if (rc && !running)
			break;
		if (!running)
			break;
		int status;
		pid_t pid = wait(&status);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (size_t i = 0; i < st->nfns; i++)
			if (jobs[i].pid == pid) {
				jobs[i].status = status;
				jobs[i].pid = 0;
				running--;
				done++;
				if (!rc)
					rc = job_result(o, &jobs[i], err, errlen);
			}
	}
	free(jobs);
	return rc;
}
