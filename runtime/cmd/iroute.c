/* iroute.c - the iroute command-line tool: run a workflow's stack.yml as
 * local processes (`iroute local up|status|down`, local.h), call it
 * (`invoke`), load it (`bench`) and show its routing table (`routes`).
 *
 * This file parses the command line and finds things; the work is in
 * runtime/src/local.c, localstat.c, stack.c, stackbuild.c and netns.c.
 *
 * Where `local up` finds the runtime that build.sh compiles against
 * (--prefix, else $IROUTE_PREFIX, else an install around this binary:
 * <bin>/../include/iroute and <bin>/../lib/libiroute.a, else the build
 * tree this binary came from: `make -C <src> BUILD=<build> install
 * DESTDIR=<state>/prefix PREFIX=` runs first, so build.sh always sees the
 * layout of a real install, iroute.pc included, of the current build), and the
 * templates (--template-dir, else $IROUTE_TEMPLATE_DIR, else template/
 * next to stack.yml or in a directory above it, as faas-cli looks in
 * ./template, else <prefix>/share/iroute/template, else <src>/template).
 *
 * Exit status: 0 done, 1 failed, 2 a usage error (unknown command or flag,
 * bad value, --nodes without root).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httpreq.h"
#include "iroute/token.h"
#include "local.h"
#include "stack.h"

#ifndef IROUTE_SRC_DIR
#define IROUTE_SRC_DIR ""
#endif

#define PROG "iroute"
#define MAX_HEADERS 64

static const char usage_text[] =
    "usage: iroute <command> [flags]\n"
    "\n"
    "Run an iroute workflow (an OpenFaaS stack.yml of c-cc, c-func and c-entry functions)\n"
    "as local processes, call it, load it and show its routes.\n"
    "\n"
    "commands:\n"
    "  local up [STACK.yml] [--transport auto|ipc|tcp] [--replicas N] [--nodes K]\n"
    "           [--prefix DIR] [--state DIR] [--template-dir DIR] [--skip-build] [--timeout S]\n"
    "      build every function with its template and start the coordinator, N replicas of\n"
    "      every function and entry; with --nodes K (root) spread them over K network\n"
    "      namespaces.  Prints the processes and the entry URL.\n"
    "  local status [STACK.yml | --state DIR] [--json]\n"
    "      every process: alive, /_/health; the coordinator's epoch and instances.\n"
    "  local down [STACK.yml | --state DIR]\n"
    "      stop everything (SIGTERM, SIGKILL after 10 s), remove namespaces and run state.\n"
    "  invoke [STACK.yml | --state DIR | --url URL] [--data STR | --data-file F | - |\n"
    "         --generate SEQ] [--async [--callback URL]] [-H 'Name: value']... [-v]\n"
    "         [--timeout S]\n"
    "      POST to the entry; the answer's body to stdout.  --generate: the body is the\n"
    "      entry's generate_data(SEQ) (GET /generate?seq=SEQ).\n"
    "  bench [STACK.yml | --state DIR | --url URL] --n N --concurrency C [--json FILE]\n"
    "        [--data STR | --data-file F] [--timeout S]\n"
    "      the entry's load generator: N requests, C at a time; one latency line.\n"
    "  routes [STACK.yml | --state DIR | --url CC [--token-file F]] [--json]\n"
    "      the coordinator's routing table: per function its instances.\n"
    "  help\n"
    "\n"
    "STACK.yml defaults to ./stack.yml; its state directory to .iroute/<stack name> next to\n"
    "it (logs in <state>/logs).\n";

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, PROG " %s: ", cmd);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (see `iroute help`)\n");
	va_end(ap);
	return 2;
}

static int fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, PROG " %s: ", cmd);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

/* ---- the command line ---- */

struct flag {
	const char *name; /* "--state", "-H" */
	bool value;	  /* takes a value */
};

struct opts {
	const char *cmd;	/* "local up", "invoke", ... for messages */
	const char *positional; /* STACK.yml */
	bool dash;		/* "-": the body from stdin */
	const char *state, *url, *prefix, *template_dir, *transport, *data, *data_file;
	const char *callback, *json_file, *token_file;
	const char *replicas, *nodes, *n, *concurrency, *timeout, *generate;
	const char *headers[MAX_HEADERS];
	size_t nheaders;
	bool json, async, verbose, skip_build;
};

static const char **slot_of(struct opts *o, const char *name)
{
	static const struct {
		const char *name;
		size_t off;
	} map[] = {{"--state", offsetof(struct opts, state)},
		   {"--url", offsetof(struct opts, url)},
		   {"--prefix", offsetof(struct opts, prefix)},
		   {"--template-dir", offsetof(struct opts, template_dir)},
		   {"--transport", offsetof(struct opts, transport)},
		   {"--data", offsetof(struct opts, data)},
		   {"--data-file", offsetof(struct opts, data_file)},
		   {"--callback", offsetof(struct opts, callback)},
		   {"--token-file", offsetof(struct opts, token_file)},
		   {"--replicas", offsetof(struct opts, replicas)},
		   {"--nodes", offsetof(struct opts, nodes)},
		   {"--n", offsetof(struct opts, n)},
		   {"--concurrency", offsetof(struct opts, concurrency)},
		   {"--timeout", offsetof(struct opts, timeout)},
		   {"--generate", offsetof(struct opts, generate)}};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].name, name) == 0)
			return (const char **)((char *)o + map[i].off);
	return NULL;
}

/* Parse argv[first..] against @flags; 0, or 2 after a message. */
static int parse(struct opts *o, int argc, char **argv, int first, const struct flag *flags)
{
	for (int i = first; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-") == 0 || a[0] != '-') {
			if (strcmp(a, "-") == 0) {
				bool allowed = false;
				for (const struct flag *f = flags; f->name; f++)
					allowed |= strcmp(f->name, "-") == 0;
				if (!allowed)
					return usage_error(o->cmd, "\"-\" (stdin) is not an argument "
								   "of this command");
				o->dash = true;
				continue;
			}
			if (o->positional)
				return usage_error(o->cmd, "unexpected argument \"%s\" (the stack "
							   "file is \"%s\")",
						   a, o->positional);
			o->positional = a;
			continue;
		}
		char name[64];
		const char *eq = strchr(a, '=');
		const char *val = NULL;
		if (eq && a[1] == '-') {
			snprintf(name, sizeof(name), "%.*s", (int)(eq - a), a);
			val = eq + 1;
		} else
			snprintf(name, sizeof(name), "%s", a);
		const struct flag *f = flags;
		while (f->name && strcmp(f->name, name) != 0)
			f++;
		if (!f->name)
			return usage_error(o->cmd, "unknown flag %s", name);
		if (!f->value) {
			if (val)
				return usage_error(o->cmd, "%s takes no value", name);
			if (!strcmp(name, "--json"))
				o->json = true;
			else if (!strcmp(name, "--async"))
				o->async = true;
			else if (!strcmp(name, "-v") || !strcmp(name, "--verbose"))
				o->verbose = true;
			else if (!strcmp(name, "--skip-build"))
				o->skip_build = true;
			continue;
		}
		if (!val) {
			if (i + 1 >= argc)
				return usage_error(o->cmd, "%s needs a value", name);
			val = argv[++i];
		}
		if (!strcmp(name, "-H") || !strcmp(name, "--header")) {
			if (o->nheaders == MAX_HEADERS)
				return usage_error(o->cmd, "more than %d headers", MAX_HEADERS);
			if (!strchr(val, ':'))
				return usage_error(o->cmd, "-H \"%s\": want 'Name: value'", val);
			o->headers[o->nheaders++] = val;
			continue;
		}
		if (!strcmp(name, "--json")) { /* bench: --json FILE */
			o->json_file = val;
			continue;
		}
		*slot_of(o, name) = val;
	}
	return 0;
}

/* A count in [min, max] from flag @name's value @s (NULL: @def). */
static int count(const struct opts *o, const char *name, const char *s, long def, long min,
		 long max, long *out)
{
	if (!s) {
		*out = def;
		return 0;
	}
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < min || v > max)
		return usage_error(o->cmd, "%s \"%s\": want an integer %ld-%ld", name, s, min, max);
	*out = v;
	return 0;
}

/* ---- finding things ---- */

static bool is_file(const char *p)
{
	struct stat sb;
	return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool is_dir(const char *p)
{
	struct stat sb;
	return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* The stack file: the positional argument, else ./stack.yml. */
static const char *stack_file(const struct opts *o)
{
	if (o->positional)
		return o->positional;
	return is_file("stack.yml") ? "stack.yml" : NULL;
}

/* The state directory from --state or the stack file; 0 or 1/2 after a message. */
static int state_dir(const struct opts *o, char *out, size_t cap)
{
	if (o->state) {
		if (o->positional)
			return usage_error(o->cmd, "give the stack file or --state, not both");
		snprintf(out, cap, "%s", o->state);
		return 0;
	}
	const char *sf = stack_file(o);
	if (!sf)
		return usage_error(o->cmd, "no STACK.yml given and no ./stack.yml");
	if (!is_file(sf))
		return fail(o->cmd, "%s: no such file", sf);
	ir_local_default_state(sf, out, cap);
	return 0;
}

/* The directory of this executable. */
static void exe_dir(char *out, size_t cap)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	char *slash = strrchr(buf, '/');
	if (slash)
		*slash = '\0';
	snprintf(out, cap, "%s", buf);
}

static bool runtime_at(const char *inc, const char *lib)
{
	char a[PATH_MAX + 32], b[PATH_MAX + 32];
	ir_pathf(a, sizeof(a), "%s/iroute/handler.h", inc);
	ir_pathf(b, sizeof(b), "%s/libiroute.a", lib);
	return is_file(a) && is_file(b);
}

/* `make -C SRC BUILD=@build install DESTDIR=@dest PREFIX=`, output to @log. */
static int make_install(const char *cmd, const char *build, const char *dest, const char *log)
{
	char bvar[PATH_MAX + 8], dvar[PATH_MAX + 16];
	ir_pathf(bvar, sizeof(bvar), "BUILD=%s", build);
	ir_pathf(dvar, sizeof(dvar), "DESTDIR=%s", dest);
	printf("prefix: make -C %s %s install %s PREFIX= (log %s)\n", IROUTE_SRC_DIR, bvar, dvar,
	       log);
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return fail(cmd, "fork(): %s", strerror(errno));
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		unsetenv("MAKEFLAGS"); /* not the jobserver of a make we may run under */
		unsetenv("MFLAGS");
		unsetenv("MAKELEVEL");
		execlp("make", "make", "-s", "-C", IROUTE_SRC_DIR, bvar, "install", dvar, "PREFIX=",
		       (char *)NULL);
		dprintf(2, "exec make: %s\n", strerror(errno));
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	char tail[4096];
	ir_file_tail(log, 15, tail, sizeof(tail));
	return fail(cmd, "make install into %s failed; the end of %s:\n%s", dest, log, tail);
}

/* The runtime prefix build.sh gets (see the file comment) into @out. */
static int find_prefix(const struct opts *o, const char *state, char *out, size_t cap)
{
	const char *p = o->prefix ? o->prefix : getenv("IROUTE_PREFIX");
	char bin[PATH_MAX], inc[PATH_MAX + 32], lib[PATH_MAX + 32];
	if (p && *p) {
		ir_pathf(inc, sizeof(inc), "%s/include", p);
		ir_pathf(lib, sizeof(lib), "%s/lib", p);
		if (!runtime_at(inc, lib))
			return fail(o->cmd, "--prefix %s: no include/iroute/handler.h and "
					    "lib/libiroute.a there",
				    p);
		if (!realpath(p, out))
			snprintf(out, cap, "%s", p);
		return 0;
	}
	exe_dir(bin, sizeof(bin));
	ir_pathf(inc, sizeof(inc), "%s/../include", bin);
	ir_pathf(lib, sizeof(lib), "%s/../lib", bin);
	if (runtime_at(inc, lib)) { /* an install: PREFIX/bin/iroute */
		ir_pathf(inc, sizeof(inc), "%s/..", bin);
		if (!realpath(inc, out))
			ir_pathf(out, cap, "%s", inc);
		return 0;
	}
	ir_pathf(inc, sizeof(inc), "%s/runtime/include", IROUTE_SRC_DIR);
	if (*IROUTE_SRC_DIR && runtime_at(inc, lib)) { /* a build tree: BUILD/bin/iroute */
		char build[PATH_MAX], log[PATH_MAX + 32];
		ir_pathf(inc, sizeof(inc), "%s/..", bin);
		if (!realpath(inc, build))
			return fail(o->cmd, "realpath(%s): %s", inc, strerror(errno));
		ir_pathf(out, cap, "%s/prefix", state);
		ir_pathf(log, sizeof(log), "%s/logs/install.log", state);
		char err[512], logs[PATH_MAX + 16];
		ir_pathf(logs, sizeof(logs), "%s/logs", state);
		if (ir_mkdirs(logs, 0755, err, sizeof(err)))
			return fail(o->cmd, "%s", err);
		return make_install(o->cmd, build, out, log);
	}
	return fail(o->cmd, "cannot find the iroute runtime (include/iroute/handler.h, "
			    "lib/libiroute.a): build it (make) or pass --prefix DIR / set "
			    "IROUTE_PREFIX");
}

static int find_templates(const struct opts *o, const char *stack, const char *prefix,
			  char *out, size_t cap)
{
	const char *t = o->template_dir ? o->template_dir : getenv("IROUTE_TEMPLATE_DIR");
	char cand[PATH_MAX + 64];
	if (t && *t) {
		ir_pathf(cand, sizeof(cand), "%s/c-func", t);
		if (!is_dir(cand))
			return fail(o->cmd, "--template-dir %s: no c-func template there", t);
		snprintf(out, cap, "%s", t);
		return 0;
	}
	char dir[PATH_MAX];
	if (!realpath(stack, dir))
		snprintf(dir, sizeof(dir), "%s", stack);
	for (char *slash = strrchr(dir, '/'); slash; slash = strrchr(dir, '/')) {
		*slash = '\0';
		ir_pathf(cand, sizeof(cand), "%s/template/c-func", *dir ? dir : "");
		if (is_dir(cand)) {
			ir_pathf(out, cap, "%s/template", *dir ? dir : "");
			return 0;
		}
	}
	ir_pathf(cand, sizeof(cand), "%s/share/iroute/template/c-func", prefix);
	if (is_dir(cand)) {
		ir_pathf(out, cap, "%s/share/iroute/template", prefix);
		return 0;
	}
	ir_pathf(cand, sizeof(cand), "%s/template/c-func", IROUTE_SRC_DIR);
	if (*IROUTE_SRC_DIR && is_dir(cand)) {
		ir_pathf(out, cap, "%s/template", IROUTE_SRC_DIR);
		return 0;
	}
	return fail(o->cmd, "cannot find the templates (template/c-func): pass --template-dir "
			    "DIR or set IROUTE_TEMPLATE_DIR");
}

/* ---- commands ---- */

static void on_signal(int sig)
{
	(void)sig;
	ir_local_interrupted = 1;
}

static int cmd_up(int argc, char **argv)
{
	static const struct flag flags[] = {
	    {"--transport", true}, {"--replicas", true},     {"--nodes", true},
	    {"--prefix", true},	   {"--state", true},	     {"--template-dir", true},
	    {"--skip-build", false}, {"--timeout", true},    {NULL, false}};
	struct opts o = {.cmd = "local up"};
	int rc = parse(&o, argc, argv, 3, flags);
	if (rc)
		return rc;
	long replicas, nodes, timeout;
	if ((rc = count(&o, "--replicas", o.replicas, 1, 1, 1000, &replicas)) ||
	    (rc = count(&o, "--nodes", o.nodes, 0, 1, IR_NET_MAX_NODES, &nodes)) ||
	    (rc = count(&o, "--timeout", o.timeout, IR_LOCAL_HEALTH_MS / 1000, 1, 3600, &timeout)))
		return rc;
	if (o.transport && strcmp(o.transport, "auto") && strcmp(o.transport, "ipc") &&
	    strcmp(o.transport, "tcp"))
		return usage_error(o.cmd, "--transport \"%s\": want auto, ipc or tcp", o.transport);
	if (nodes && geteuid() != 0)
		return usage_error(o.cmd, "--nodes needs root (it creates network namespaces and a "
					  "bridge); run as root, or without --nodes");
	const char *sf = stack_file(&o);
	if (!sf)
		return usage_error(o.cmd, "no STACK.yml given and no ./stack.yml");
	if (!is_file(sf))
		return fail(o.cmd, "%s: no such file", sf);
	char state[PATH_MAX], prefix[PATH_MAX], templates[PATH_MAX], cc[PATH_MAX + 32];
	char err[16384];
	struct ir_stack st; /* checked before anything is made; local up reads it again */
	rc = ir_stack_load(sf, &st, err, sizeof(err));
	ir_stack_free(&st);
	if (rc)
		return fail(o.cmd, "%s", err);
	if (o.state)
		snprintf(state, sizeof(state), "%s", o.state);
	else
		ir_local_default_state(sf, state, sizeof(state));
	if ((rc = ir_mkdirs(state, 0755, err, sizeof(err))))
		return fail(o.cmd, "%s", err);
	if (realpath(state, prefix))
		snprintf(state, sizeof(state), "%s", prefix);
	if ((rc = find_prefix(&o, state, prefix, sizeof(prefix))) ||
	    (rc = find_templates(&o, sf, prefix, templates, sizeof(templates))))
		return rc;
	ir_pathf(cc, sizeof(cc), "%s/bin/iroute-cc", prefix);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	struct ir_local_up_opts uo = {.stack_path = sf,
				      .state_dir = state,
				      .prefix = prefix,
				      .template_dir = templates,
				      .cc_bin = cc,
				      .transport = o.transport,
				      .replicas = (unsigned)replicas,
				      .nodes = (unsigned)nodes,
				      .health_ms = (unsigned)timeout * 1000u,
				      .skip_build = o.skip_build,
				      .out = stdout};
	setvbuf(stdout, NULL, _IOLBF, 0);
	rc = ir_local_up(&uo, err, sizeof(err));
	if (rc)
		return fail(o.cmd, "%s", err);
	return 0;
}

static int cmd_down(int argc, char **argv)
{
	static const struct flag flags[] = {{"--state", true}, {NULL, false}};
	struct opts o = {.cmd = "local down"};
	char state[PATH_MAX], err[1024];
	int rc = parse(&o, argc, argv, 3, flags);
	if (rc || (rc = state_dir(&o, state, sizeof(state))))
		return rc;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((rc = ir_local_down(state, 0, stdout, err, sizeof(err))))
		return fail(o.cmd, "%s", err);
	return 0;
}

static int cmd_status(int argc, char **argv)
{
	static const struct flag flags[] = {{"--state", true}, {"--json", false}, {NULL, false}};
	struct opts o = {.cmd = "local status"};
	char state[PATH_MAX], err[1024];
	int rc = parse(&o, argc, argv, 3, flags);
	if (rc || (rc = state_dir(&o, state, sizeof(state))))
		return rc;
	rc = ir_local_status(state, o.json, stdout, err, sizeof(err));
	if (rc == -ENOENT)
		return fail(o.cmd, "nothing is up (no %s/%s)", state, IR_LOCAL_STATE_FILE);
	if (rc < 0)
		return fail(o.cmd, "%s", err);
	return rc;
}

/* The loaded state of the command's target, for the entry or coordinator URL. */
static int target_state(const struct opts *o, struct ir_lstate *s)
{
	char state[PATH_MAX], err[1024];
	int rc = state_dir(o, state, sizeof(state));
	if (rc)
		return rc;
	rc = ir_lstate_load(state, s, err, sizeof(err));
	if (rc == -ENOENT)
		return fail(o->cmd, "nothing is up (no %s/%s): run `iroute local up` first", state,
			    IR_LOCAL_STATE_FILE);
	if (rc)
		return fail(o->cmd, "%s", err);
	return 0;
}

static int read_stream(FILE *f, char **buf, size_t *len)
{
	size_t cap = 64 * 1024, n = 0;
	char *b = malloc(cap);
	while (b) {
		if (n == cap) {
			char *nb = realloc(b, cap * 2);
			if (!nb)
				break;
			b = nb;
			cap *= 2;
		}
		size_t r = fread(b + n, 1, cap - n, f);
		n += r;
		if (r == 0) {
			*buf = b;
			*len = n;
			return ferror(f) ? -EIO : 0;
		}
	}
	free(b);
	return -ENOMEM;
}

/* The request body from --data, --data-file or "-"; @stdin_default: read
 * stdin when none is given and it is not a terminal.  0 or 1/2. */
static int body_of(const struct opts *o, bool stdin_default, char **buf, size_t *len)
{
	int given = !!o->data + !!o->data_file + !!o->dash;
	*buf = NULL;
	*len = 0;
	if (given > 1)
		return usage_error(o->cmd, "give one of --data, --data-file and -");
	if (o->data) {
		*buf = strdup(o->data);
		*len = strlen(o->data);
		return *buf ? 0 : fail(o->cmd, "out of memory");
	}
	FILE *f = NULL;
	if (o->data_file && !(f = fopen(o->data_file, "rb")))
		return fail(o->cmd, "--data-file %s: %s", o->data_file, strerror(errno));
	if (!f && (o->dash || (stdin_default && !isatty(0))))
		f = stdin;
	if (!f)
		return 0;
	int rc = read_stream(f, buf, len);
	if (f != stdin)
		fclose(f);
	if (rc)
		return fail(o->cmd, "reading %s: %s", o->data_file ? o->data_file : "stdin",
			    strerror(-rc));
	return 0;
}

/* The entry's URL: --url, or the state's (the stack or --state).  0 or 1/2. */
static int entry_url(struct opts *o, char *url, size_t cap)
{
	if (o->url) {
		if (o->state || o->positional)
			return usage_error(o->cmd, "give --url or the stack, not both");
		snprintf(url, cap, "%s", o->url);
		return 0;
	}
	struct ir_lstate s;
	int rc = target_state(o, &s);
	if (rc)
		return rc;
	snprintf(url, cap, "%s", s.entry_url);
	ir_lstate_free(&s);
	return 0;
}

static int cmd_invoke(int argc, char **argv)
{
	static const struct flag flags[] = {
	    {"--state", true},	  {"--url", true},    {"--data", true}, {"--data-file", true},
	    {"-", false},	  {"--async", false}, {"--callback", true}, {"-H", true},
	    {"--header", true},	  {"-v", false},      {"--verbose", false}, {"--timeout", true},
	    {"--generate", true}, {NULL, false}};
	struct opts o = {.cmd = "invoke"};
	int rc = parse(&o, argc, argv, 2, flags);
	if (rc)
		return rc;
	long timeout;
	if ((rc = count(&o, "--timeout", o.timeout, 120, 1, 86400, &timeout)))
		return rc;
	if (o.callback && !o.async)
		return usage_error(o.cmd, "--callback goes with --async");
	char url[PATH_MAX];
	if ((rc = entry_url(&o, url, sizeof(url))))
		return rc;
	char *body;
	size_t len;
	if (o.generate) {
		long seq;
		if (o.data || o.data_file || o.dash)
			return usage_error(o.cmd, "--generate replaces --data, --data-file and -");
		if ((rc = count(&o, "--generate", o.generate, 0, 0, 1000000000, &seq)))
			return rc;
		char path[64], err[1024];
		snprintf(path, sizeof(path), "/generate?seq=%ld", seq);
		struct ir_http_req g = {
		    .method = "GET", .url = url, .path = path, .timeout_ms = (uint64_t)timeout * 1000u};
		struct ir_http_ans ga;
		if ((rc = ir_http_do(&g, &ga, err, sizeof(err)))) {
			ir_http_ans_free(&ga);
			return fail(o.cmd, "%s", err);
		}
		if (ga.status != 200) {
			rc = fail(o.cmd, "%s/generate answered %d: %.*s", url, ga.status, (int)ga.len,
				  ga.body ? ga.body : "");
			ir_http_ans_free(&ga);
			return rc;
		}
		body = malloc(ga.len + 1);
		if (!body) {
			ir_http_ans_free(&ga);
			return fail(o.cmd, "out of memory");
		}
		memcpy(body, ga.body, ga.len);
		len = ga.len;
		ir_http_ans_free(&ga);
	} else if ((rc = body_of(&o, true, &body, &len))) {
		return rc;
	}
	const char *hdrs[MAX_HEADERS + 2];
	char cb[PATH_MAX + 32];
	size_t nh = 0;
	for (size_t i = 0; i < o.nheaders; i++)
		hdrs[nh++] = o.headers[i];
	if (o.callback) {
		snprintf(cb, sizeof(cb), "X-Callback-Url: %s", o.callback);
		hdrs[nh++] = cb;
	}
	hdrs[nh] = NULL;
	struct ir_http_req q = {.method = "POST",
				.url = url,
				.path = o.async ? "/async" : "/",
				.headers = hdrs,
				.body = body,
				.len = len,
				.has_body = true,
				.timeout_ms = (uint64_t)timeout * 1000u};
	struct ir_http_ans a;
	char err[1024];
	rc = ir_http_do(&q, &a, err, sizeof(err));
	free(body);
	if (rc) {
		ir_http_ans_free(&a);
		return fail(o.cmd, "%s", err);
	}
	const char *cid = ir_http_ans_header(&a, "X-Call-Id");
	const char *dur = ir_http_ans_header(&a, "X-Duration-Seconds");
	if (o.verbose) {
		fprintf(stderr, "HTTP %d\n", a.status);
		if (cid)
			fprintf(stderr, "X-Call-Id: %s\n", cid);
		if (dur)
			fprintf(stderr, "X-Duration-Seconds: %s\n", dur);
	}
	int ret = 0;
	if (a.status < 200 || a.status > 299) {
		fprintf(stderr, PROG " invoke: %s answered %d: %s%s", url, a.status, a.body,
			a.len && a.body[a.len - 1] == '\n' ? "" : "\n");
		ret = 1;
	} else if (o.async) {
		fprintf(stderr, "accepted (%d)%s%s\n", a.status, cid ? ", call id " : "",
			cid ? cid : "");
	} else if (a.len && fwrite(a.body, 1, a.len, stdout) != a.len)
		ret = fail(o.cmd, "writing stdout: %s", strerror(errno));
	ir_http_ans_free(&a);
	if (fflush(stdout) != 0)
		ret = 1;
	return ret;
}

static int cmd_bench(int argc, char **argv)
{
	static const struct flag flags[] = {
	    {"--state", true}, {"--url", true},	 {"--n", true},	   {"--concurrency", true},
	    {"--json", true},  {"--data", true}, {"--data-file", true}, {"--timeout", true},
	    {NULL, false}};
	struct opts o = {.cmd = "bench"};
	int rc = parse(&o, argc, argv, 2, flags);
	if (rc)
		return rc;
	long n, conc, timeout;
	if (!o.n)
		return usage_error(o.cmd, "--n N is required");
	if ((rc = count(&o, "--n", o.n, 0, 1, 100000000, &n)) ||
	    (rc = count(&o, "--concurrency", o.concurrency, 1, 1, 100000, &conc)) ||
	    (rc = count(&o, "--timeout", o.timeout, 0, 0, 86400 * 7, &timeout)))
		return rc;
	char url[PATH_MAX];
	if ((rc = entry_url(&o, url, sizeof(url))))
		return rc;
	char *body;
	size_t len;
	if ((rc = body_of(&o, false, &body, &len)))
		return rc;
	char path[96];
	snprintf(path, sizeof(path), "/bench?n=%ld&concurrency=%ld", n, conc);
	struct ir_http_req q = {.method = "POST",
				.url = url,
				.path = path,
				.body = body,
				.len = len,
				.has_body = true,
				.timeout_ms = (uint64_t)timeout * 1000u};
	struct ir_http_ans a;
	char err[1024], line[512];
	rc = ir_http_do(&q, &a, err, sizeof(err));
	free(body);
	int ret = 0;
	if (rc)
		ret = fail(o.cmd, "%s", err);
	else if (a.status != 200)
		ret = fail(o.cmd, "%s%s answered %d: %s", url, path, a.status, a.body);
	else if ((rc = ir_bench_format(a.body, line, sizeof(line), err, sizeof(err))) < 0)
		ret = fail(o.cmd, "%s", err);
	else {
		printf("%s\n", line);
		if (rc > 0)
			ret = fail(o.cmd, "%d of %ld requests failed", rc, n);
		if (o.json_file) {
			FILE *f = fopen(o.json_file, "w");
			if (!f || fwrite(a.body, 1, a.len, f) != a.len || fputc('\n', f) < 0)
				ret = fail(o.cmd, "--json %s: %s", o.json_file, strerror(errno));
			if (f && fclose(f) != 0)
				ret = fail(o.cmd, "--json %s: %s", o.json_file, strerror(errno));
		}
	}
	ir_http_ans_free(&a);
	return ret;
}

static int cmd_routes(int argc, char **argv)
{
	static const struct flag flags[] = {{"--state", true},	    {"--url", true},
					    {"--token-file", true}, {"--json", false},
					    {NULL, false}};
	struct opts o = {.cmd = "routes"};
	int rc = parse(&o, argc, argv, 2, flags);
	if (rc)
		return rc;
	char url[PATH_MAX], token[IR_TOKEN_MAX + 1], err[1024];
	if (o.url) {
		if (o.state || o.positional)
			return usage_error(o.cmd, "give --url or the stack, not both");
		snprintf(url, sizeof(url), "%s", o.url);
		if (o.token_file)
			setenv("IROUTE_TOKEN_FILE", o.token_file, 1);
		int n = ir_token_load((uint8_t *)token, IR_TOKEN_MAX, err, sizeof(err));
		if (n < 0)
			return fail(o.cmd, "%s", err);
		token[n] = '\0';
	} else {
		if (o.token_file)
			return usage_error(o.cmd, "--token-file goes with --url");
		struct ir_lstate s;
		if ((rc = target_state(&o, &s)))
			return rc;
		snprintf(url, sizeof(url), "%s", s.cc_url);
		rc = ir_lstate_token(&s, token, sizeof(token), err, sizeof(err));
		ir_lstate_free(&s);
		if (rc)
			return fail(o.cmd, "%s", err);
	}
	char auth[IR_TOKEN_MAX + 32];
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	const char *hdrs[] = {auth, NULL};
	struct ir_http_req q = {
	    .method = "GET", .url = url, .path = "/v1/table", .headers = hdrs, .timeout_ms = 5000};
	struct ir_http_ans a;
	rc = ir_http_do(&q, &a, err, sizeof(err));
	int ret = 0;
	if (rc)
		ret = fail(o.cmd, "%s", err);
	else if (a.status != 200)
		ret = fail(o.cmd, "GET %s/v1/table answered %d: %s", url, a.status, a.body);
	else if (o.json)
		printf("%s\n", a.body);
	else if (ir_routes_print(a.body, stdout, err, sizeof(err)))
		ret = fail(o.cmd, "%s", err);
	ir_http_ans_free(&a);
	return ret;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		fputs(usage_text, stderr);
		return 2;
	}
	const char *c = argv[1];
	if (!strcmp(c, "help") || !strcmp(c, "-h") || !strcmp(c, "--help")) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (!strcmp(c, "local")) {
		const char *sub = argc > 2 ? argv[2] : "";
		if (!strcmp(sub, "up"))
			return cmd_up(argc, argv);
		if (!strcmp(sub, "down"))
			return cmd_down(argc, argv);
		if (!strcmp(sub, "status"))
			return cmd_status(argc, argv);
		if (!*sub)
			return usage_error("local", "want up, status or down");
		return usage_error("local", "unknown command \"%s\" (want up, status or down)",
				   sub);
	}
	if (!strcmp(c, "invoke"))
		return cmd_invoke(argc, argv);
	if (!strcmp(c, "bench"))
		return cmd_bench(argc, argv);
	if (!strcmp(c, "routes"))
		return cmd_routes(argc, argv);
	fprintf(stderr, PROG ": unknown command \"%s\" (see `iroute help`)\n", c);
	return 2;
}
