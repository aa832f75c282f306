/* test_cli.c - the iroute command-line tool: stack.yml read as faas-cli
 * reads it (and every refusal with its message), faas-cli's build context,
 * build.sh runs, the output of status/routes/bench, the command line, and
 * whole workflows brought up, called, loaded and brought down again as
 * local processes (over network namespaces as root).
 *
 * The process tests run the real tool ($IROUTE_BIN_DIR/iroute) on the real
 * templates (template/) in a fresh directory per test, under one root made
 * by the tcase's unchecked fixture.  Whatever a test leaves running is
 * stopped three times over: by the test itself, by the checked teardown
 * and an atexit() handler in the test's process (a failed assertion exits
 * it), and by the unchecked teardown in the runner (a test killed on
 * timeout), which takes down every state directory under the root and
 * SIGKILLs the pids its state.json lists.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include <cjson/cJSON.h>

#include "local.h"
#include "netns.h"
#include "stack.h"
#include "tests.h"

static char cli_root[PATH_MAX]; /* made by the unchecked fixture */
static char cli_dir[PATH_MAX];	/* this test's directory */
/* The state directory the tests use: "st" (--state), or the default one
 * next to stack.yml after cli_default_state(). */
static const char *cli_state_rel = "st";

/* ---- files ---- */

static void cli_path(char *out, size_t cap, const char *rel)
{
	ck_assert_int_eq(ir_pathf(out, cap, "%s/%s", cli_dir, rel), 0);
}

static void cli_write(const char *rel, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void cli_write(const char *rel, const char *fmt, ...)
{
	char path[PATH_MAX], err[512];
	cli_path(path, sizeof(path), rel);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	ck_assert_msg(ir_mkdirs(path, 0755, err, sizeof(err)) == 0, "%s", err);
	*slash = '/';
	FILE *f = fopen(path, "w");
	ck_assert_msg(f != NULL, "fopen(%s): %s", path, strerror(errno));
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	ck_assert_int_eq(fclose(f), 0);
}

static char *cli_read(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = malloc(1 << 20);
	ck_assert_ptr_nonnull(buf);
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static bool cli_exists(const char *rel)
{
	char path[PATH_MAX];
	cli_path(path, sizeof(path), rel);
	return access(path, F_OK) == 0;
}

static void cli_expect_file(const char *rel, const char *content)
{
	char path[PATH_MAX];
	cli_path(path, sizeof(path), rel);
	char *got = cli_read(path);
	ck_assert_msg(got != NULL, "%s is missing", rel);
	ck_assert_str_eq(got, content);
	free(got);
}

/* ---- cleanup of whatever a test started ---- */

/* The pids listed in @state's state.json, SIGKILLed if still theirs. */
static void cli_kill_listed(const char *state)
{
	struct ir_lstate s;
	char err[512];
	if (ir_lstate_load(state, &s, err, sizeof(err)))
		return;
	for (size_t i = 0; i < s.nprocs; i++)
		if (ir_lproc_alive(&s.procs[i])) {
			kill(-s.procs[i].pid, SIGKILL);
			kill(s.procs[i].pid, SIGKILL);
		}
	if (s.net.nodes)
		ir_net_down(&s.net, err, sizeof(err));
	ir_lstate_free(&s);
}

/* Bring down every state directory under @dir (state.json found at any depth <= 3). */
static void cli_down_all(const char *dir, int depth)
{
	char sj[PATH_MAX + 16];
	ir_pathf(sj, sizeof(sj), "%s/" IR_LOCAL_STATE_FILE, dir);
	if (access(sj, F_OK) == 0) {
		char err[1024];
		FILE *devnull = fopen("/dev/null", "w");
		ir_local_down(dir, 3000, devnull, err, sizeof(err));
		if (devnull)
			fclose(devnull);
		cli_kill_listed(dir);
	}
	if (depth >= 3)
		return;
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			char sub[PATH_MAX + 256];
			ir_pathf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
			struct stat sb;
			if (lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode))
				cli_down_all(sub, depth + 1);
		}
	closedir(d);
}

static void cli_cleanup(void)
{
	if (!*cli_dir)
		return;
	cli_down_all(cli_dir, 0);
	char err[512];
	ir_rmtree(cli_dir, err, sizeof(err));
	cli_dir[0] = '\0';
}

static void cli_root_setup(void)
{
	snprintf(cli_root, sizeof(cli_root), "/tmp/iroute-cli-XXXXXX");
	if (!mkdtemp(cli_root))
		cli_root[0] = '\0';
}

static void cli_root_teardown(void)
{
	if (!*cli_root)
		return;
	cli_down_all(cli_root, 0);
	char err[512];
	ir_rmtree(cli_root, err, sizeof(err));
}

static void cli_setup(void)
{
	static bool registered;
	if (!registered) {
		atexit(cli_cleanup);
		registered = true;
	}
	cli_state_rel = "st";
	ck_assert_msg(*cli_root, "no root directory");
	ck_assert_int_eq(ir_pathf(cli_dir, sizeof(cli_dir), "%s/t-XXXXXX", cli_root), 0);
	ck_assert_ptr_nonnull(mkdtemp(cli_dir));
}

static void cli_teardown(void)
{
	cli_cleanup();
}

/* ---- running the tool ---- */

struct cli_res {
	int status; /* exit status, or 128 + signal */
	char *out, *err;
};

static void cli_res_free(struct cli_res *r)
{
	free(r->out);
	free(r->err);
}

/* The sanitizers of the build under test ("address,undefined"), from
 * IROUTE_BIN_DIR ".../san-address-undefined/bin"; "" when none. */
static void cli_san(char *out, size_t cap)
{
	const char *b = getenv("IROUTE_BIN_DIR");
	const char *s = b ? strstr(b, "san-") : NULL;
	out[0] = '\0';
	if (!s)
		return;
	snprintf(out, cap, "%s", s + 4);
	out[strcspn(out, "/")] = '\0';
	for (char *p = out; *p; p++)
		if (*p == '-')
			*p = ',';
}

/* Run iroute with @args (NULL-terminated), stdin from @in (NULL: /dev/null). */
static struct cli_res cli_run_in(const char *in, const char *const *args)
{
	const char *bindir = getenv("IROUTE_BIN_DIR");
	char bin[PATH_MAX], out[PATH_MAX], err[PATH_MAX];
	ir_pathf(bin, sizeof(bin), "%s/iroute", bindir && *bindir ? bindir : "build/bin");
	ck_assert_msg(access(bin, X_OK) == 0, "%s is not built", bin);
	static int seq;
	seq++;
	ir_pathf(out, sizeof(out), "%s/.out-%d", cli_dir, seq);
	ir_pathf(err, sizeof(err), "%s/.err-%d", cli_dir, seq);
	const char *argv[32] = {bin};
	size_t n = 1;
	for (size_t i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fi = open(in ? in : "/dev/null", O_RDONLY);
		int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fi < 0 || fo < 0 || fe < 0)
			_exit(126);
		dup2(fi, 0);
		dup2(fo, 1);
		dup2(fe, 2);
		char san[64];
		cli_san(san, sizeof(san));
		if (*san) { /* the templates' build.sh links the sanitized libiroute.a */
			char cf[128], lf[128];
			snprintf(cf, sizeof(cf), "-std=c11 -O1 -g -fsanitize=%s", san);
			snprintf(lf, sizeof(lf), "-fsanitize=%s", san);
			setenv("CFLAGS", cf, 1);
			setenv("LDFLAGS", lf, 1);
		}
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	struct cli_res r = {.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st)};
	r.out = cli_read(out);
	r.err = cli_read(err);
	ck_assert_ptr_nonnull(r.out);
	ck_assert_ptr_nonnull(r.err);
	return r;
}

#define CLI(...) cli_run_in(NULL, (const char *const[]){__VA_ARGS__, NULL})

static void cli_expect(const struct cli_res *r, int status, const char *what)
{
	ck_assert_msg(r->status == status, "%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", what,
		      r->status, status, r->out, r->err);
}

/* ---- stacks ---- */

static const char cli_handler_c[] =
    "/* name(in0,in1,...): the shape of the DAG in the answer */\n"
    "#include <string.h>\n"
    "#include <iroute/handler.h>\n"
    "int handle(void *state, const struct ir_req *req, const struct ir_in *in, size_t nin,\n"
    "\t   struct ir_out *out)\n"
    "{\n"
    "\t(void)state;\n"
    "\tint rc = ir_out_write(out, req->function, strlen(req->function));\n"
    "\tif (!rc)\n"
    "\t\trc = ir_out_write(out, \"(\", 1);\n"
    "\tfor (size_t i = 0; !rc && i < nin; i++) {\n"
    "\t\tif (i)\n"
    "\t\t\trc = ir_out_write(out, \",\", 1);\n"
    "\t\tif (!rc)\n"
    "\t\t\trc = ir_out_write(out, in[i].data, in[i].len);\n"
    "\t}\n"
    "\treturn rc ? rc : ir_out_write(out, \")\", 1);\n"
    "}\n";

/* The diamond a -> {b, c} -> d with one handler; @d_extra is added to d's entry. */
static void cli_stack(const char *d_extra)
{
	cli_write("cc/workflow.json",
		  "{\"name\": \"diamond\", \"functions\": {\"a\": {\"next\": [\"b\", \"c\"]},\n"
		  " \"b\": {\"next\": [\"d\"]}, \"c\": {\"next\": [\"d\"]}, \"d\": {}},\n"
		  " \"entry\": [\"a\"]}\n");
	cli_write("fn/handler.c", "%s", cli_handler_c);
	cli_write("entry/README.md", "the entry runs no code of its own\n");
	cli_write("stack.yml",
		  "version: 1.0\n"
		  "provider:\n"
		  "  name: openfaas\n"
		  "  gateway: http://127.0.0.1:8080\n"
		  "functions:\n"
		  "  diamond-cc:\n"
		  "    lang: c-cc\n"
		  "    handler: ./cc\n"
		  "    image: test/diamond-cc\n"
		  "  diamond-entry:\n"
		  "    lang: c-entry\n"
		  "    handler: ./entry\n"
		  "  a: &fn\n"
		  "    lang: c-func\n"
		  "    handler: ./fn\n"
		  "  b: *fn\n"
		  "  c: *fn\n"
		  "  d:\n"
		  "    <<: *fn\n"
		  "%s",
		  d_extra ? d_extra : "");
}

/* "--template-dir" and the repository's template/ when the runner is in the tree. */
static const char *cli_templates(void)
{
	static char t[PATH_MAX];
	if (!realpath("template", t) || access("template/c-func/build.sh", F_OK) != 0)
		return NULL;
	return t;
}


static void cli_default_state(void)
{
	cli_state_rel = ".iroute/stack";
}

/* Bring the stack of this test's directory up with @extra flags (NULL-terminated). */
static struct cli_res cli_up(const char *const *extra)
{
	char stack[PATH_MAX], state[PATH_MAX];
	cli_path(stack, sizeof(stack), "stack.yml");
	cli_path(state, sizeof(state), "st");
	bool own = strcmp(cli_state_rel, "st") == 0;
	const char *args[24] = {"local", "up", stack, own ? "--state" : NULL, state};
	size_t n = own ? 5 : 3;
	const char *t = cli_templates();
	if (t) {
		args[n++] = "--template-dir";
		args[n++] = t;
	}
	for (size_t i = 0; extra && extra[i] && n < 23; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	return cli_run_in(NULL, args);
}

/* The processes of state "st": pids into @pids (up to @cap); their count. */
static size_t cli_pids(pid_t *pids, unsigned long long *starts, size_t cap)
{
	char state[PATH_MAX], err[512];
	cli_path(state, sizeof(state), cli_state_rel);
	struct ir_lstate s;
	ck_assert_msg(ir_lstate_load(state, &s, err, sizeof(err)) == 0, "%s", err);
	size_t n = s.nprocs < cap ? s.nprocs : cap;
	for (size_t i = 0; i < n; i++) {
		pids[i] = s.procs[i].pid;
		starts[i] = s.procs[i].start;
	}
	ir_lstate_free(&s);
	return n;
}

static void cli_expect_gone(const pid_t *pids, const unsigned long long *starts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct ir_lproc p = {.pid = pids[i], .start = starts[i]};
		ck_assert_msg(!ir_lproc_alive(&p), "pid %d is still running after down",
			      (int)pids[i]);
	}
}

/* ---- stack.yml ---- */

START_TEST(t_stack_good)
{
	cli_write("cc/workflow.json", "{}\n");
	cli_write("fn/handler.c", "\n");
	cli_write("entry/x", "\n");
	cli_write("env/common.yml", "environment:\n  FROM_FILE: one\n  SHARED: file\n");
	cli_write("stack.yml",
		  "version: 1.0\n"
		  "provider:\n"
		  "  name: openfaas\n"
		  "  gateway: ${CLI_TEST_GW:-http://gw:8080}\n"
		  "functions:\n"
		  "  my-cc:\n"
		  "    lang: c-cc\n"
		  "    handler: ./cc\n"
		  "    image: x/cc:${CLI_TEST_TAG}\n"
		  "  my-entry:\n"
		  "    lang: c-entry\n"
		  "    handler: ./entry\n"
		  "    hander: typo\n"
		  "  f1: &base\n"
		  "    lang: c-func\n"
		  "    handler: ./fn\n"
		  "    image: x/f1\n"
		  "    environment_file:\n"
		  "      - env/common.yml\n"
		  "    environment:\n"
		  "      SHARED: inline\n"
		  "      NUM: 42\n"
		  "      EMPTY:\n"
		  "    secrets: [iroute-token, db]\n"
		  "    labels:\n"
		  "      com.openfaas.scale.min: 3\n"
		  "    annotations:\n"
		  "      topic: x\n"
		  "    build_args:\n"
		  "      ADDITIONAL_PACKAGE: libhiredis-dev\n"
		  "    limits:\n"
		  "      memory: 128Mi\n"
		  "    skip_build: true\n"
		  "  f2:\n"
		  "    <<: *base\n"
		  "    image: x/f2\n"
		  "configuration:\n"
		  "  templates:\n"
		  "    - name: c-func\n"
		  "  copy:\n"
		  "    - ./common\n");
	setenv("CLI_TEST_TAG", "v7", 1);
	unsetenv("CLI_TEST_GW");
	char path[PATH_MAX], err[1024];
	cli_path(path, sizeof(path), "stack.yml");
	struct ir_stack st;
	int rc = ir_stack_load(path, &st, err, sizeof(err));
	ck_assert_msg(rc == 0, "%s", err);
	ck_assert_str_eq(st.name, "stack");
	ck_assert_str_eq(st.version, "1.0");
	ck_assert_str_eq(st.provider, "openfaas");
	ck_assert_str_eq(st.gateway, "http://gw:8080");
	ck_assert_uint_eq(st.nfns, 4);
	const struct ir_stack_fn *cc = ir_stack_cc(&st);
	ck_assert_ptr_nonnull(cc);
	ck_assert_str_eq(cc->name, "my-cc");
	ck_assert_str_eq(cc->image, "x/cc:v7");
	ck_assert_int_eq(ir_stack_find(&st, "my-entry")->lang, IR_LANG_ENTRY);
	const struct ir_stack_fn *f1 = ir_stack_find(&st, "f1"), *f2 = ir_stack_find(&st, "f2");
	ck_assert_ptr_nonnull(f1);
	ck_assert_ptr_nonnull(f2);
	ck_assert_int_eq(f1->lang, IR_LANG_FUNC);
	char want[PATH_MAX];
	cli_path(want, sizeof(want), "fn");
	ck_assert_str_eq(f1->handler_path, want);
	ck_assert_str_eq(ir_kv_get(&f1->environment, "FROM_FILE"), "one");
	ck_assert_str_eq(ir_kv_get(&f1->environment, "SHARED"), "inline"); /* inline wins */
	ck_assert_str_eq(ir_kv_get(&f1->environment, "NUM"), "42");
	ck_assert_str_eq(ir_kv_get(&f1->environment, "EMPTY"), "");
	ck_assert_uint_eq(f1->secrets.n, 2);
	ck_assert_str_eq(f1->secrets.v[1], "db");
	ck_assert_uint_eq(f1->scale_min, 3);
	ck_assert_str_eq(ir_kv_get(&f1->annotations, "topic"), "x");
	ck_assert_str_eq(ir_kv_get(&f1->build_args, "ADDITIONAL_PACKAGE"), "libhiredis-dev");
	ck_assert_str_eq(ir_kv_get(&f1->limits, "memory"), "128Mi");
	ck_assert(f1->skip_build);
	/* the merge key: f2 is f1 with its own image */
	ck_assert_str_eq(f2->image, "x/f2");
	ck_assert_str_eq(f2->lang_name, "c-func");
	ck_assert_uint_eq(f2->scale_min, 3);
	ck_assert_str_eq(ir_kv_get(&f2->environment, "SHARED"), "inline");
	ck_assert_uint_eq(st.copy.n, 1);
	ck_assert_str_eq(st.copy.v[0], "./common");
	ck_assert_uint_eq(st.warnings.n, 1);
	ck_assert_msg(strstr(st.warnings.v[0], ":13: function \"my-entry\": unknown key \"hander\""),
		      "%s", st.warnings.v[0]);
	ir_stack_free(&st);
}
END_TEST

START_TEST(t_stack_finra)
{
	char err[1024];
	struct ir_stack st;
	int rc = ir_stack_load("benchmarks/finra/stack.yml", &st, err, sizeof(err));
	ck_assert_msg(rc == 0, "%s", err);
	ck_assert_uint_eq(st.nfns, 8);
	ck_assert_str_eq(ir_stack_cc(&st)->name, "finra-cc");
	ck_assert_int_eq(ir_stack_find(&st, "finra-entry")->lang, IR_LANG_ENTRY);
	static const char *const fns[] = {"marketdata", "lastpx", "side", "tradedate", "volume",
					  "margin-balance"};
	for (size_t i = 0; i < 6; i++) {
		const struct ir_stack_fn *f = ir_stack_find(&st, fns[i]);
		ck_assert_msg(f && f->lang == IR_LANG_FUNC, "%s", fns[i]);
		char hc[PATH_MAX];
		ir_pathf(hc, sizeof(hc), "%s/handler.c", f->handler_path);
		ck_assert_msg(access(hc, F_OK) == 0, "%s", hc);
	}
	char wf[PATH_MAX];
	ir_pathf(wf, sizeof(wf), "%s/workflow.json", ir_stack_cc(&st)->handler_path);
	ck_assert_msg(access(wf, F_OK) == 0, "%s", wf);
	ir_stack_free(&st);
}
END_TEST

/* Each bad stack, the error code and a piece of its message. */
static const struct {
	const char *name, *yaml, *want;
	int rc;
} cli_bad[] = {
    {"unknown lang",
     "functions:\n  c:\n    lang: c-cc\n    handler: ./h\n  e:\n    lang: c-entry\n"
     "    handler: ./h\n  py:\n    lang: python3\n    handler: ./h\n",
     ":8:3: function \"py\": unknown lang \"python3\"", -EINVAL},
    {"no c-cc", "functions:\n  e:\n    lang: c-entry\n    handler: ./h\n",
     "no function has lang c-cc", -EINVAL},
    {"two c-cc",
     "functions:\n  one:\n    lang: c-cc\n    handler: ./h\n  e:\n    lang: c-entry\n"
     "    handler: ./h\n  two:\n    lang: c-cc\n    handler: ./h\n",
     "functions \"one\" (line 2) and \"two\" (line 8) both have lang c-cc", -EINVAL},
    {"no c-entry", "functions:\n  c:\n    lang: c-cc\n    handler: ./h\n",
     "no function has lang c-entry", -EINVAL},
    {"missing handler",
     "functions:\n  c:\n    lang: c-cc\n    handler: ./h\n  e:\n    lang: c-entry\n"
     "    handler: ./nowhere\n",
     "function \"e\": handler \"./nowhere\"", -ENOENT},
    {"no handler", "functions:\n  c:\n    lang: c-cc\n", "function \"c\": no handler",
     -EINVAL},
    {"no lang", "functions:\n  c:\n    handler: ./h\n", "function \"c\": no lang", -EINVAL},
    {"bad YAML", "version: 1.0\nfunctions:\n  a: [\n  b: c: d\n",
     ":4:7: bad YAML", -EINVAL},
    {"bad YAML indent", "functions:\n  c:\n    lang: c-cc\n   handler: ./h\n",
     "stack.yml:4:", -EINVAL},
    {"version", "version: 2.0\nfunctions:\n  c:\n    lang: c-cc\n",
     "version: \"2.0\" is not supported", -EINVAL},
    {"provider", "provider:\n  name: faasd\nfunctions: {}\n", "provider.name: \"faasd\"",
     -EINVAL},
    {"bad name", "functions:\n  Bad_Name:\n    lang: c-cc\n    handler: ./h\n",
     "function \"Bad_Name\": a name is", -EINVAL},
    {"duplicate", "functions:\n  c:\n    lang: c-cc\n  c:\n    lang: c-cc\n",
     ":4:3: duplicate key \"c\"", -EINVAL},
    {"scale.min",
     "functions:\n  c:\n    lang: c-cc\n    handler: ./h\n    labels:\n"
     "      com.openfaas.scale.min: lots\n",
     "label com.openfaas.scale.min: \"lots\" is not a count", -EINVAL},
    {"env type", "functions:\n  c:\n    lang: c-cc\n    environment: [a, b]\n",
     "function \"c\": environment must be a mapping", -EINVAL},
    {"no functions", "version: 1.0\n", "no functions", -EINVAL},
    {"empty", "", "empty file", -EINVAL},
    {"unterminated ${", "version: ${X\n", "line 1: \"${\" without \"}\"", -EINVAL},
};

START_TEST(t_stack_bad)
{
	cli_write("h/handler.c", "\n");
	char path[PATH_MAX], err[1024];
	cli_path(path, sizeof(path), "stack.yml");
	cli_write("stack.yml", "%s", cli_bad[_i].yaml);
	struct ir_stack st;
	int rc = ir_stack_load(path, &st, err, sizeof(err));
	ck_assert_msg(rc == cli_bad[_i].rc, "%s: rc %d (%s), want %d", cli_bad[_i].name, rc, err,
		      cli_bad[_i].rc);
	ck_assert_msg(strstr(err, cli_bad[_i].want), "%s: message \"%s\" lacks \"%s\"",
		      cli_bad[_i].name, err, cli_bad[_i].want);
	ck_assert_msg(strncmp(err, path, strlen(path)) == 0 || strstr(err, "function \""),
		      "%s: message \"%s\" names neither the file nor the function",
		      cli_bad[_i].name, err);
	ir_stack_free(&st);
}
END_TEST

START_TEST(t_envsubst)
{
	char err[256];
	setenv("CLI_A", "alpha", 1);
	setenv("CLI_EMPTY", "", 1);
	unsetenv("CLI_UNSET");
	const char *in = "${CLI_A} ${CLI_UNSET:-dflt} ${CLI_EMPTY:-e} ${CLI_EMPTY-kept} "
			 "${CLI_UNSET-u} ${CLI_UNSET} $CLI_A $ {x} ${not valid}";
	char *out = ir_stack_envsubst(in, strlen(in), err, sizeof(err));
	ck_assert_ptr_nonnull(out);
	ck_assert_str_eq(out, "alpha dflt e  u  $CLI_A $ {x} ${not valid}");
	free(out);
	ck_assert_ptr_null(ir_stack_envsubst("a\nb ${X", 7, err, sizeof(err)));
	ck_assert_str_eq(err, "line 2: \"${\" without \"}\"");
}
END_TEST

/* ---- the build context and build.sh ---- */

static void cli_template(const char *build_sh)
{
	cli_write("tpl/c-func/Dockerfile", "FROM scratch\n");
	cli_write("tpl/c-func/template.yml", "language: c-func\n");
	cli_write("tpl/c-func/function/handler.c", "/* the template's sample */\n");
	cli_write("tpl/c-func/function/keep.txt", "from the template\n");
	cli_write("tpl/c-func/build.sh", "%s", build_sh);
	char p[PATH_MAX];
	cli_path(p, sizeof(p), "tpl/c-func/build.sh");
	ck_assert_int_eq(chmod(p, 0755), 0);
	cli_write("tpl/c-cc/build.sh", "%s", build_sh);
	cli_path(p, sizeof(p), "tpl/c-cc/build.sh");
	ck_assert_int_eq(chmod(p, 0755), 0);
	cli_write("tpl/c-entry/build.sh", "%s", build_sh);
	cli_path(p, sizeof(p), "tpl/c-entry/build.sh");
	ck_assert_int_eq(chmod(p, 0755), 0);
}

static void cli_small_stack(const char *copy)
{
	cli_write("cc/workflow.json", "{\"dag\": [[\"f\"]]}\n");
	cli_write("entry/README", "entry\n");
	cli_write("fn/handler.c", "/* the user's handler */\n");
	cli_write("fn/sub/util.h", "#define UTIL 1\n");
	cli_write("fn/build/stale.o", "not copied\n");
	cli_write("fn/template/x", "not copied\n");
	cli_write("common/common.c", "/* shared */\n");
	cli_write("common/deep/d.h", "/* deep */\n");
	cli_write("data.txt", "data\n");
	cli_write("nested/dir/f", "nested\n");
	cli_write("stack.yml",
		  "version: 1.0\nfunctions:\n"
		  "  s-cc: {lang: c-cc, handler: ./cc}\n"
		  "  s-entry: {lang: c-entry, handler: ./entry}\n"
		  "  f:\n    lang: c-func\n    handler: ./fn\n"
		  "    build_args: {CLI_BUILD_ARG: from-stack}\n"
		  "configuration:\n  copy:\n%s",
		  copy);
}

START_TEST(t_context)
{
	cli_template("#!/bin/sh\nexit 0\n");
	cli_small_stack("    - ./common\n    - data.txt\n    - nested/dir/../dir/f\n");
	char path[PATH_MAX], tpl[PATH_MAX], ctx[PATH_MAX], err[1024];
	cli_path(path, sizeof(path), "stack.yml");
	cli_path(tpl, sizeof(tpl), "tpl");
	cli_path(ctx, sizeof(ctx), "st/build/f");
	struct ir_stack st;
	ck_assert_msg(ir_stack_load(path, &st, err, sizeof(err)) == 0, "%s", err);
	cli_write("st/build/f/leftover", "from an earlier build\n");
	int rc = ir_stack_context(&st, ir_stack_find(&st, "f"), tpl, ctx, err, sizeof(err));
	ck_assert_msg(rc == 0, "%s", err);
	cli_expect_file("st/build/f/Dockerfile", "FROM scratch\n");
	cli_expect_file("st/build/f/function/keep.txt", "from the template\n");
	cli_expect_file("st/build/f/function/handler.c", "/* the user's handler */\n");
	cli_expect_file("st/build/f/function/sub/util.h", "#define UTIL 1\n");
	cli_expect_file("st/build/f/function/common/common.c", "/* shared */\n");
	cli_expect_file("st/build/f/function/common/deep/d.h", "/* deep */\n");
	cli_expect_file("st/build/f/function/data.txt", "data\n");
	cli_expect_file("st/build/f/function/nested/dir/f", "nested\n");
	ck_assert(!cli_exists("st/build/f/function/build"));
	ck_assert(!cli_exists("st/build/f/function/template"));
	ck_assert(!cli_exists("st/build/f/leftover"));
	struct stat sb;
	char bs[PATH_MAX];
	cli_path(bs, sizeof(bs), "st/build/f/build.sh");
	ck_assert_int_eq(stat(bs, &sb), 0);
	ck_assert(sb.st_mode & S_IXUSR); /* modes kept */
	ir_stack_free(&st);

	/* copy paths outside the stack's directory, or all of it, are refused */
	static const char *const bad[] = {"    - ../outside\n", "    - .\n", "    - /etc/passwd\n",
					  "    - a/../../b\n"};
	for (size_t i = 0; i < 4; i++) {
		cli_small_stack(bad[i]);
		ck_assert_msg(ir_stack_load(path, &st, err, sizeof(err)) == 0, "%s", err);
		rc = ir_stack_context(&st, ir_stack_find(&st, "f"), tpl, ctx, err, sizeof(err));
		ck_assert_int_eq(rc, -EINVAL);
		ck_assert_msg(strstr(err, "configuration.copy:") && strstr(err, "not a path inside"),
			      "%s", err);
		ir_stack_free(&st);
	}
	cli_small_stack("    - missing.txt\n");
	ck_assert_msg(ir_stack_load(path, &st, err, sizeof(err)) == 0, "%s", err);
	rc = ir_stack_context(&st, ir_stack_find(&st, "f"), tpl, ctx, err, sizeof(err));
	ck_assert_int_eq(rc, -ENOENT);
	ck_assert_msg(strstr(err, "\"missing.txt\""), "%s", err);
	/* a lang without a template */
	rc = ir_stack_context(&st, ir_stack_find(&st, "f"), "/nonexistent", ctx, err, sizeof(err));
	ck_assert_int_eq(rc, -ENOENT);
	ck_assert_msg(strstr(err, "no template c-func in /nonexistent"), "%s", err);
	ir_stack_free(&st);
}
END_TEST

START_TEST(t_build)
{
	/* build.sh writes its arguments, cwd contents and a build_arg into --out */
	cli_template("#!/bin/sh\nset -eu\n"
		     "[ \"$1\" = --prefix ] && [ \"$3\" = --out ] || exit 9\n"
		     "{ echo '#!/bin/sh'; echo \"# prefix=$2 arg=${CLI_BUILD_ARG:-none}\";\n"
		     "  ls function | sed 's/^/# /'; } > \"$4\"\n"
		     "chmod +x \"$4\"\necho built\n");
	cli_small_stack("    - data.txt\n");
	char path[PATH_MAX], tpl[PATH_MAX], state[PATH_MAX], err[4096];
	cli_path(path, sizeof(path), "stack.yml");
	cli_path(tpl, sizeof(tpl), "tpl");
	cli_path(state, sizeof(state), "st");
	struct ir_stack st;
	ck_assert_msg(ir_stack_load(path, &st, err, sizeof(err)) == 0, "%s", err);
	struct ir_build_opts bo = {
	    .template_dir = tpl, .prefix = "/the/prefix", .state_dir = state, .jobs = 2};
	int rc = ir_stack_build(&st, &bo, err, sizeof(err));
	ck_assert_msg(rc == 0, "%s", err);
	char out[PATH_MAX];
	cli_path(out, sizeof(out), "st/bin/f");
	ck_assert_int_eq(access(out, X_OK), 0);
	cli_expect_file("st/bin/f", "#!/bin/sh\n# prefix=/the/prefix arg=from-stack\n"
				    "# data.txt\n# handler.c\n# keep.txt\n# sub\n");
	cli_path(out, sizeof(out), "st/bin/s-cc");
	ck_assert_int_eq(access(out, X_OK), 0);
	cli_expect_file("st/logs/build-f.log", "built\n");

	/* a failing build names the function, its status and its log's end */
	cli_template("#!/bin/sh\n[ -d function/sub ] || { touch \"$4\"; chmod +x \"$4\"; exit 0; }\n"
		     "echo compiling\necho 'handler.c:3: error: expected ;' >&2\nexit 3\n");
	rc = ir_stack_build(&st, &bo, err, sizeof(err));
	ck_assert_int_eq(rc, -EIO);
	ck_assert_msg(strstr(err, "build of \"f\"") && strstr(err, "exit status 3") &&
			  strstr(err, "handler.c:3: error: expected ;"),
		      "%s", err);
	ck_assert(!cli_exists("st/bin/f")); /* no stale binary left behind */

	/* exit 0 without an executable is a failure too */
	cli_template("#!/bin/sh\nexit 0\n");
	rc = ir_stack_build(&st, &bo, err, sizeof(err));
	ck_assert_int_eq(rc, -EIO);
	ck_assert_msg(strstr(err, "wrote no executable"), "%s", err);
	ir_stack_free(&st);
}
END_TEST

/* ---- what status, routes and bench print ---- */

START_TEST(t_bench_format)
{
	char line[512], err[512];
	const char *ok = "{\"n\":1000,\"concurrency\":8,\"ok\":998,\"errors\":2,\"duplicates\":0,"
			 "\"p50_ms\":1.25,\"p90_ms\":2.5,\"p99_ms\":4,\"p999_ms\":9.125,"
			 "\"max_ms\":12,\"throughput_rps\":3999.94,\"duration_s\":0.25}";
	ck_assert_int_eq(ir_bench_format(ok, line, sizeof(line), err, sizeof(err)), 2);
	ck_assert_str_eq(line, "latency: p50=1.250ms p90=2.500ms p99=4.000ms p999=9.125ms "
			       "max=12.000ms n=1000 errors=2 throughput=3999.9rps");
	ck_assert_int_eq(ir_bench_format("{\"n\":1}", line, sizeof(line), err, sizeof(err)),
			 -EINVAL);
	ck_assert_msg(strstr(err, "no number \"p50_ms\""), "%s", err);
	ck_assert_int_eq(ir_bench_format("<html>", line, sizeof(line), err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(t_routes_print)
{
	const char *table =
	    "{\"epoch\":9,\"workflow\":\"w\",\"functions\":{\"a\":[{\"id\":\"a-1\",\"function\":"
	    "\"a\",\"node\":\"node-1\",\"addresses\":{\"http\":\"10.0.0.2:80\",\"tcp\":\"10.0.0.2:"
	    "9\"},\"transports\":[\"ipc\",\"tcp\"],\"capacity\":2}],\"b\":[{\"id\":\"b-1\","
	    "\"node\":\"node-2\",\"addresses\":{\"tcp\":\"10.0.0.3:9\"},\"transports\":[\"tcp\"]},"
	    "{\"id\":\"b-2\",\"node\":\"node-1\",\"addresses\":{},\"transports\":[]}]},"
	    "\"entries\":[{\"id\":\"entry-1\",\"node\":\"node-1\",\"addresses\":{\"http\":"
	    "\"10.0.0.2:81\"},\"transports\":[\"tcp\"]}]}";
	char *buf = NULL, err[256];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ck_assert_int_eq(ir_routes_print(table, f, err, sizeof(err)), 0);
	fclose(f);
	ck_assert_msg(strstr(buf, "workflow \"w\", epoch 9\n"), "%s", buf);
	ck_assert_msg(strstr(buf, "entries (1):\n  entry-1"), "%s", buf);
	ck_assert_msg(strstr(buf, "a (1):\n  a-1 "), "%s", buf);
	ck_assert_msg(strstr(buf, "ipc,tcp") && strstr(buf, "http=10.0.0.2:80 tcp=10.0.0.2:9"),
		      "%s", buf);
	ck_assert_msg(strstr(buf, "b (2):\n"), "%s", buf);
	ck_assert_msg(strstr(buf, "nodes (2): node-1=3 node-2=1\n"), "%s", buf);
	free(buf);
	f = fopen("/dev/null", "w");
	ck_assert_int_eq(ir_routes_print("[1,2]", f, err, sizeof(err)), -EINVAL);
	fclose(f);
}
END_TEST

START_TEST(t_state_roundtrip)
{
	struct ir_lstate s = {0};
	cli_path(s.dir, sizeof(s.dir), "");
	snprintf(s.name, sizeof(s.name), "stack");
	snprintf(s.workflow, sizeof(s.workflow), "w");
	snprintf(s.cc_url, sizeof(s.cc_url), "http://127.0.0.1:1");
	snprintf(s.entry_url, sizeof(s.entry_url), "http://10.77.3.2:2");
	s.net.nodes = 2;
	s.net.subnet = 3;
	snprintf(s.net.tag, sizeof(s.net.tag), "abcdef");
	pid_t child = fork(); /* stands for a process of the stack: cleanup may signal it */
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	struct ir_lproc p[2] = {{.pid = child, .port = 5, .metrics_port = 6, .node = 2}};
	snprintf(p[0].function, sizeof(p[0].function), "f");
	snprintf(p[0].role, sizeof(p[0].role), "func");
	snprintf(p[0].node_name, sizeof(p[0].node_name), "node-2");
	p[1] = p[0];
	p[1].pid = 999999999; /* not a process */
	s.procs = p;
	s.nprocs = 2;
	char err[512];
	ck_assert_int_eq(ir_lstate_save(&s, err, sizeof(err)), 0);
	struct ir_lstate t;
	ck_assert_msg(ir_lstate_load(s.dir, &t, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(t.nprocs, 2);
	ck_assert_int_eq(t.procs[0].pid, child);
	ck_assert_int_eq(t.procs[0].port, 5);
	ck_assert_uint_eq(t.procs[0].node, 2);
	ck_assert_str_eq(t.procs[0].node_name, "node-2");
	ck_assert_str_eq(t.entry_url, "http://10.77.3.2:2");
	ck_assert_uint_eq(t.net.nodes, 2);
	ck_assert_str_eq(t.net.tag, "abcdef");
	ck_assert(ir_lproc_alive(&t.procs[0])); /* start time 0: pid only */
	ck_assert(!ir_lproc_alive(&t.procs[1]));
	t.procs[0].start = 1; /* another process with this pid */
	ck_assert(!ir_lproc_alive(&t.procs[0]));
	ir_lstate_free(&t);
	char missing[PATH_MAX];
	cli_path(missing, sizeof(missing), "nope");
	ck_assert_int_eq(ir_lstate_load(missing, &t, err, sizeof(err)), -ENOENT);

	char d[PATH_MAX];
	ir_local_default_state("/x/y/stack.yml", d, sizeof(d));
	ck_assert_str_eq(d, "/x/y/.iroute/stack");
	ir_local_default_state("finra.yaml", d, sizeof(d));
	ck_assert_str_eq(d, "./.iroute/finra");
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}
END_TEST

/* ---- the command line ---- */

START_TEST(t_usage)
{
	struct cli_res r = CLI("help");
	cli_expect(&r, 0, "help");
	static const char *const cmds[] = {"local up", "local status", "local down", "invoke",
					   "bench", "routes", "--nodes K", "--transport"};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		ck_assert_msg(strstr(r.out, cmds[i]), "help lacks %s:\n%s", cmds[i], r.out);
	cli_res_free(&r);

	r = CLI("frobnicate");
	cli_expect(&r, 2, "unknown command");
	ck_assert_msg(strstr(r.err, "unknown command \"frobnicate\""), "%s", r.err);
	cli_res_free(&r);
	r = CLI("local", "sideways");
	cli_expect(&r, 2, "unknown local command");
	ck_assert_msg(strstr(r.err, "\"sideways\""), "%s", r.err);
	cli_res_free(&r);
	r = CLI("local", "up", "--frob");
	cli_expect(&r, 2, "unknown flag");
	ck_assert_msg(strstr(r.err, "unknown flag --frob"), "%s", r.err);
	cli_res_free(&r);
	r = CLI("invoke", "--url", "http://127.0.0.1:1", "--zap=3");
	cli_expect(&r, 2, "unknown flag with =");
	ck_assert_msg(strstr(r.err, "unknown flag --zap"), "%s", r.err);
	cli_res_free(&r);
	r = CLI("local", "up", "--transport", "rdma-ish");
	cli_expect(&r, 2, "bad transport");
	ck_assert_msg(strstr(r.err, "--transport \"rdma-ish\""), "%s", r.err);
	cli_res_free(&r);
	r = CLI("local", "up", "--replicas", "0");
	cli_expect(&r, 2, "bad replicas");
	ck_assert_msg(strstr(r.err, "--replicas \"0\""), "%s", r.err);
	cli_res_free(&r);
	r = CLI("bench", "--url", "http://127.0.0.1:1");
	cli_expect(&r, 2, "bench without --n");
	ck_assert_msg(strstr(r.err, "--n N is required"), "%s", r.err);
	cli_res_free(&r);
	r = CLI("routes", "--state");
	cli_expect(&r, 2, "flag without its value");
	ck_assert_msg(strstr(r.err, "--state needs a value"), "%s", r.err);
	cli_res_free(&r);
	char missing[PATH_MAX];
	cli_path(missing, sizeof(missing), "none.yml");
	r = CLI("local", "status", missing);
	cli_expect(&r, 1, "status of a missing stack file");
	ck_assert_msg(strstr(r.err, "none.yml: no such file"), "%s", r.err);
	cli_res_free(&r);
	cli_path(missing, sizeof(missing), "nostate");
	r = CLI("local", "down", "--state", missing);
	cli_expect(&r, 0, "down of nothing");
	ck_assert_msg(strstr(r.out, "nothing is up"), "%s", r.out);
	cli_res_free(&r);
	r = CLI("invoke", "--state", missing, "--data", "x");
	cli_expect(&r, 1, "invoke of nothing");
	ck_assert_msg(strstr(r.err, "nothing is up"), "%s", r.err);
	cli_res_free(&r);
	r = CLI("invoke", "--url", "http://127.0.0.1:1", "--data", "x");
	cli_expect(&r, 1, "invoke of a closed port");
	ck_assert_msg(strstr(r.err, "Connection refused"), "%s", r.err);
	cli_res_free(&r);
}
END_TEST

START_TEST(t_nodes_need_root)
{
	if (geteuid() == 0) {
		/* as root, the same check runs as nobody */
		const char *bindir = getenv("IROUTE_BIN_DIR");
		char bin[PATH_MAX];
		ir_pathf(bin, sizeof(bin), "%s/iroute", bindir && *bindir ? bindir : "build/bin");
		char real[PATH_MAX];
		ck_assert_ptr_nonnull(realpath(bin, real));
		int pfd[2];
		ck_assert_int_eq(pipe(pfd), 0);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			dup2(pfd[1], 2);
			if (setgid(65534) || setuid(65534))
				_exit(125);
			execl(real, real, "local", "up", "--nodes", "2", (char *)NULL);
			_exit(126);
		}
		close(pfd[1]);
		char msg[1024];
		size_t got = 0;
		ssize_t n;
		while (got < sizeof(msg) - 1 && (n = read(pfd[0], msg + got, sizeof(msg) - 1 - got)) > 0)
			got += (size_t)n;
		msg[got] = '\0';
		close(pfd[0]);
		int st;
		waitpid(pid, &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 126) {
			fprintf(stderr, "t_nodes_need_root: skipped: nobody cannot run %s\n", real);
			return;
		}
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %d: %s", st, msg);
		ck_assert_msg(strstr(msg, "--nodes needs root"), "%s", msg);
		return;
	}
	struct cli_res r = CLI("local", "up", "--nodes", "2");
	cli_expect(&r, 2, "--nodes without root");
	ck_assert_msg(strstr(r.err, "--nodes needs root"), "%s", r.err);
	cli_res_free(&r);
}
END_TEST

/* ---- whole workflows ---- */

START_TEST(t_local_lifecycle)
{
	cli_stack("    environment:\n      CLI_MARK: d-env\n");
	char state[PATH_MAX], stack[PATH_MAX];
	cli_path(state, sizeof(state), "st");
	cli_path(stack, sizeof(stack), "stack.yml");
	struct cli_res r = cli_up(NULL);
	cli_expect(&r, 0, "local up");
	ck_assert_msg(strstr(r.out, "entry:       http://127.0.0.1:"), "%s", r.out);
	ck_assert_msg(strstr(r.out, "workflow \"diamond\" is up: 6 processes"), "%s", r.out);
	cli_res_free(&r);

	/* the state: every process, a private token */
	pid_t pids[16];
	unsigned long long starts[16];
	size_t n = cli_pids(pids, starts, 16);
	ck_assert_uint_eq(n, 6);
	struct stat sb;
	char tok[PATH_MAX];
	cli_path(tok, sizeof(tok), "st/token");
	ck_assert_int_eq(stat(tok, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0600);
	ck_assert_uint_ge(sb.st_size, 32);
	/* d got its environment (its /proc environ holds it) */
	struct ir_lstate s;
	char err[512];
	ck_assert_int_eq(ir_lstate_load(state, &s, err, sizeof(err)), 0);
	for (size_t i = 0; i < s.nprocs; i++) {
		char envp[64];
		snprintf(envp, sizeof(envp), "/proc/%d/environ", (int)s.procs[i].pid);
		FILE *f = fopen(envp, "rb");
		ck_assert_ptr_nonnull(f);
		char env[16384];
		size_t len = fread(env, 1, sizeof(env) - 1, f);
		fclose(f);
		for (size_t k = 0; k < len; k++)
			if (!env[k])
				env[k] = '\n';
		env[len] = '\0';
		bool is_d = strcmp(s.procs[i].function, "d") == 0;
		ck_assert_msg(!is_d || strstr(env, "\nCLI_MARK=d-env\n"), "%s", env);
		ck_assert_msg(!is_d || strstr(env, "\nIROUTE_FUNCTION=d\n"), "%s", env);
		ck_assert_msg(strstr(env, "IROUTE_TOKEN_FILE="), "%s", env);
		if (strcmp(s.procs[i].role, "cc") != 0)
			ck_assert_msg(strstr(env, "\nIROUTE_CC=http://127.0.0.1:"), "%s", env);
	}
	ir_lstate_free(&s);

	/* up again while up: refused */
	r = cli_up(NULL);
	cli_expect(&r, 1, "second up");
	ck_assert_msg(strstr(r.err, "already up"), "%s", r.err);
	cli_res_free(&r);

	r = CLI("local", "status", "--state", state);
	cli_expect(&r, 0, "status");
	ck_assert_msg(strstr(r.out, "epoch") && strstr(r.out, "5 instances"), "%s", r.out);
	cli_res_free(&r);
	r = CLI("local", "status", "--state", state, "--json");
	cli_expect(&r, 0, "status --json");
	cJSON *o = cJSON_Parse(r.out);
	ck_assert_msg(o != NULL, "%s", r.out);
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(o, "ok")));
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "processes")), 6);
	cJSON *coord = cJSON_GetObjectItem(o, "coordinator");
	ck_assert_int_eq(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(coord, "instances"), "total")->valueint, 5);
	cJSON_Delete(o);
	cli_res_free(&r);

	/* invoke: the workflow's answer on stdout */
	r = CLI("invoke", "--state", state, "--data", "x");
	cli_expect(&r, 0, "invoke");
	ck_assert_str_eq(r.out, "d(b(a(x)),c(a(x)))");
	cli_res_free(&r);
	char body[PATH_MAX];
	cli_path(body, sizeof(body), "body.txt");
	cli_write("body.txt", "from a file");
	r = CLI("invoke", "--state", state, "--data-file", body, "-v", "-H", "X-Test: 1");
	cli_expect(&r, 0, "invoke --data-file");
	ck_assert_str_eq(r.out, "d(b(a(from a file)),c(a(from a file)))");
	ck_assert_msg(strstr(r.err, "HTTP 200") && strstr(r.err, "X-Call-Id: ") &&
			  strstr(r.err, "X-Duration-Seconds: "),
		      "%s", r.err);
	cli_res_free(&r);
	r = cli_run_in(body, (const char *const[]){"invoke", "--state", state, "-", NULL});
	cli_expect(&r, 0, "invoke -");
	ck_assert_str_eq(r.out, "d(b(a(from a file)),c(a(from a file)))");
	cli_res_free(&r);
	/* an error answer (the coordinator has no POST /): exit 1, the answer on stderr */
	ck_assert_int_eq(ir_lstate_load(state, &s, err, sizeof(err)), 0);
	r = CLI("invoke", "--url", s.cc_url, "--data", "x");
	ir_lstate_free(&s);
	cli_expect(&r, 1, "invoke with an error answer");
	ck_assert_msg(strstr(r.err, "answered 404") && strstr(r.err, "no such path"), "%s", r.err);
	ck_assert_str_eq(r.out, "");
	cli_res_free(&r);

	/* routes: every function with its instance */
	r = CLI("routes", "--state", state);
	cli_expect(&r, 0, "routes");
	ck_assert_msg(strstr(r.out, "workflow \"diamond\"") && strstr(r.out, "entries (1)") &&
			  strstr(r.out, "\na (1):\n") && strstr(r.out, "\nd (1):\n") &&
			  strstr(r.out, "http=127.0.0.1:"),
		      "%s", r.out);
	cli_res_free(&r);
	r = CLI("routes", "--state", state, "--json");
	cli_expect(&r, 0, "routes --json");
	o = cJSON_Parse(r.out);
	ck_assert_msg(o && cJSON_GetObjectItem(o, "functions"), "%s", r.out);
	cJSON_Delete(o);
	cli_res_free(&r);

	/* bench: the line and the JSON file */
	char json[PATH_MAX];
	cli_path(json, sizeof(json), "bench.json");
	r = CLI("bench", "--state", state, "--n", "50", "--concurrency", "4", "--json", json);
	cli_expect(&r, 0, "bench");
	ck_assert_msg(strncmp(r.out, "latency: p50=", 13) == 0 &&
			  strstr(r.out, "ms p99=") && strstr(r.out, " n=50 errors=0 throughput="),
		      "%s", r.out);
	cli_res_free(&r);
	char *bj = cli_read(json);
	o = cJSON_Parse(bj);
	ck_assert_msg(o && cJSON_GetObjectItem(o, "ok")->valueint == 50, "%s", bj);
	cJSON_Delete(o);
	free(bj);

	/* down: nothing left, logs kept; twice is fine */
	r = CLI("local", "down", stack, "--state", state);
	cli_expect(&r, 2, "down with both");
	cli_res_free(&r);
	r = CLI("local", "down", "--state", state);
	cli_expect(&r, 0, "down");
	cli_res_free(&r);
	cli_expect_gone(pids, starts, n);
	ck_assert(!cli_exists("st/state.json"));
	ck_assert(!cli_exists("st/token"));
	ck_assert(cli_exists("st/logs/d-0.log"));
	ck_assert(cli_exists("st/logs/diamond-cc-0.log"));
	r = CLI("local", "down", "--state", state);
	cli_expect(&r, 0, "down again");
	cli_res_free(&r);
	r = CLI("local", "status", "--state", state);
	cli_expect(&r, 1, "status when down");
	cli_res_free(&r);

	/* up again from the build cache */
	const char *const skip[] = {"--skip-build", "--transport", "tcp", NULL};
	r = cli_up(skip);
	cli_expect(&r, 0, "up --skip-build");
	ck_assert_msg(!strstr(r.out, "build: "), "%s", r.out);
	cli_res_free(&r);
	r = CLI("invoke", "--state", state, "--data", "again");
	cli_expect(&r, 0, "invoke after up --skip-build");
	ck_assert_str_eq(r.out, "d(b(a(again)),c(a(again)))");
	cli_res_free(&r);
	n = cli_pids(pids, starts, 16);
	r = CLI("local", "down", "--state", state);
	cli_expect(&r, 0, "down after --skip-build");
	cli_res_free(&r);
	cli_expect_gone(pids, starts, n);
}
END_TEST

START_TEST(t_local_replicas)
{
	cli_stack("    labels:\n      com.openfaas.scale.min: 3\n");
	cli_default_state(); /* and the stack file names it in every command */
	char stack[PATH_MAX];
	cli_path(stack, sizeof(stack), "stack.yml");
	const char *const flags[] = {"--replicas", "2", "--transport", "ipc", NULL};
	struct cli_res r = cli_up(flags);
	cli_expect(&r, 0, "up --replicas 2");
	ck_assert(cli_exists(".iroute/stack/state.json"));
	cli_res_free(&r);
	pid_t pids[32];
	unsigned long long starts[32];
	size_t n = cli_pids(pids, starts, 32);
	ck_assert_uint_eq(n, 1 + 2 + 2 + 2 + 2 + 3); /* cc, entry, a, b, c, d (scale.min 3) */
	r = CLI("local", "status", stack, "--json");
	cli_expect(&r, 0, "status");
	cJSON *o = cJSON_Parse(r.out);
	cJSON *fns = cJSON_GetObjectItem(
	    cJSON_GetObjectItem(cJSON_GetObjectItem(o, "coordinator"), "instances"), "functions");
	ck_assert_msg(fns && cJSON_GetObjectItem(fns, "d")->valueint == 3 &&
			  cJSON_GetObjectItem(fns, "a")->valueint == 2,
		      "%s", r.out);
	cJSON_Delete(o);
	cli_res_free(&r);
	for (int i = 0; i < 4; i++) {
		r = CLI("invoke", stack, "--data", "r");
		cli_expect(&r, 0, "invoke");
		ck_assert_str_eq(r.out, "d(b(a(r)),c(a(r)))");
		cli_res_free(&r);
	}
	r = CLI("local", "down", stack);
	cli_expect(&r, 0, "down");
	cli_res_free(&r);
	cli_expect_gone(pids, starts, n);
}
END_TEST

START_TEST(t_local_up_fails)
{
	/* a handler that does not compile: up fails before anything runs */
	cli_stack(NULL);
	cli_write("bad/handler.c", "int handle(void) { return }\n");
	char stack[PATH_MAX];
	cli_path(stack, sizeof(stack), "stack.yml");
	FILE *f = fopen(stack, "a");
	ck_assert_ptr_nonnull(f);
	fputs("    handler: ./bad\n", f); /* d's handler: the merge key gives way */
	fclose(f);
	struct cli_res r = cli_up(NULL);
	cli_expect(&r, 1, "up with a broken handler");
	ck_assert_msg(strstr(r.err, "build of \"d\"") && strstr(r.err, "handler.c"), "%s", r.err);
	ck_assert(!cli_exists("st/state.json"));
	cli_res_free(&r);

	/* a function that dies at start: up names it, shows its log, stops the rest */
	cli_write("bad/handler.c",
		  "#include <stdio.h>\n#include <iroute/handler.h>\n%s\n"
		  "int handler_init(void **state);\n"
		  "int handler_init(void **state)\n{\n\t(void)state;\n"
		  "\tfprintf(stderr, \"d refuses to start\\n\");\n\treturn -5;\n}\n",
		  cli_handler_c);
	r = cli_up(NULL);
	cli_expect(&r, 1, "up with a function that dies");
	ck_assert_msg(strstr(r.err, "d#0 (func") && strstr(r.err, "d refuses to start"), "%s",
		      r.err);
	ck_assert_msg(strstr(r.out, "up failed; stopping what was started"), "%s", r.out);
	ck_assert(!cli_exists("st/state.json"));
	cli_res_free(&r);

	/* a workflow function the stack does not have */
	cli_stack(NULL);
	cli_write("cc/workflow.json", "{\"dag\": [[\"a\"], [\"zz\"]]}\n");
	r = cli_up(NULL);
	cli_expect(&r, 1, "up with a workflow/stack mismatch");
	ck_assert_msg(strstr(r.err, "function \"zz\"") && strstr(r.err, "no c-func"), "%s",
		      r.err);
	cli_res_free(&r);
}
END_TEST

START_TEST(t_local_nodes)
{
	if (geteuid() != 0) {
		fprintf(stderr, "t_local_nodes: skipped: --nodes needs root\n");
		return;
	}
	cli_stack(NULL);
	char state[PATH_MAX];
	cli_path(state, sizeof(state), "st");
	const char *const flags[] = {"--nodes", "2", NULL};
	struct cli_res r = cli_up(flags);
	cli_expect(&r, 0, "up --nodes 2");
	ck_assert_msg(strstr(r.out, "entry:       http://10.77."), "%s", r.out);
	cli_res_free(&r);
	struct ir_lstate s;
	char err[512];
	ck_assert_int_eq(ir_lstate_load(state, &s, err, sizeof(err)), 0);
	struct ir_net net = s.net;
	ck_assert_uint_eq(net.nodes, 2);
	ck_assert_uint_ne(if_nametoindex(net.bridge), 0);
	ir_lstate_free(&s);
	pid_t pids[16];
	unsigned long long starts[16];
	size_t n = cli_pids(pids, starts, 16);

	r = CLI("routes", "--state", state);
	cli_expect(&r, 0, "routes");
	ck_assert_msg(strstr(r.out, "node node-1") && strstr(r.out, "node node-2") &&
			  strstr(r.out, "nodes (2):"),
		      "%s", r.out);
	cli_res_free(&r);
	r = CLI("invoke", "--state", state, "--data", "n");
	cli_expect(&r, 0, "invoke across nodes");
	ck_assert_str_eq(r.out, "d(b(a(n)),c(a(n)))");
	cli_res_free(&r);
	r = CLI("local", "status", "--state", state);
	cli_expect(&r, 0, "status");
	ck_assert_msg(strstr(r.out, "node-2"), "%s", r.out);
	cli_res_free(&r);

	r = CLI("local", "down", "--state", state);
	cli_expect(&r, 0, "down");
	cli_res_free(&r);
	cli_expect_gone(pids, starts, n);
	ck_assert_uint_eq(if_nametoindex(net.bridge), 0);
	for (unsigned k = 1; k <= 2; k++) {
		char ns[32], ip[16], path[64];
		ir_net_node(&net, k, ns, ip);
		snprintf(path, sizeof(path), "/run/netns/%s", ns);
		ck_assert_msg(access(path, F_OK) != 0, "%s is still there", path);
	}
}
END_TEST

/* FINRA end to end: benchmarks/finra/stack.yml up as processes (@flags),
 * 300 generated portfolios through the entry, every answer checked
 * against the independent expected result (iroute-bench-finra --check),
 * then down. */
static void finra_e2e(const char *const *flags)
{
	char stack[PATH_MAX], state[PATH_MAX];
	ck_assert_ptr_nonnull(realpath("benchmarks/finra/stack.yml", stack));
	cli_path(state, sizeof(state), "st");
	const char *args[16] = {"local", "up", stack, "--state", state};
	size_t n = 5;
	for (size_t i = 0; flags && flags[i] && n < 15; i++)
		args[n++] = flags[i];
	args[n] = NULL;
	struct cli_res r = cli_run_in(NULL, args);
	cli_expect(&r, 0, "up finra");
	cli_res_free(&r);
	struct ir_lstate s;
	char err[512];
	ck_assert_int_eq(ir_lstate_load(state, &s, err, sizeof(err)), 0);
	char url[256], json[PATH_MAX + 16], cmd[2 * PATH_MAX];
	snprintf(url, sizeof(url), "%s", s.entry_url);
	ir_lstate_free(&s);
	cli_path(json, sizeof(json), "finra.json");
	const char *bindir = getenv("IROUTE_BIN_DIR");
	snprintf(cmd, sizeof(cmd),
		 "%s/iroute-bench-finra --url %s --n 300 --concurrency 4 --seed 7 --check "
		 "--json %s > /dev/null",
		 bindir && *bindir ? bindir : "build/bin", url, json);
	int st = system(cmd);
	FILE *f = fopen(json, "r");
	ck_assert_msg(f != NULL, "no %s (exit %d)", json, st);
	char buf[4096] = "";
	size_t got = fread(buf, 1, sizeof(buf) - 1, f);
	buf[got] = '\0';
	fclose(f);
	ck_assert_msg(st == 0 && strstr(buf, "\"ok\":300") && strstr(buf, "\"wrong\":0") &&
			  strstr(buf, "\"errors\":0"),
		      "exit %d: %s", st, buf);
	/* wrong content: a clear 4xx that names the function that refused it */
	r = CLI("invoke", "--state", state, "--data", "{\"trades\": 3}");
	cli_expect(&r, 1, "invoke with a bad portfolio");
	ck_assert_msg(strstr(r.err, "answered 400") && strstr(r.err, "\"function\":\""), "%s",
		      r.err);
	cli_res_free(&r);
	r = CLI("invoke", "--state", state, "--data", "not json");
	cli_expect(&r, 1, "invoke with a body that is not JSON");
	ck_assert_msg(strstr(r.err, "answered 400"), "%s", r.err);
	cli_res_free(&r);
	r = CLI("local", "down", "--state", state);
	cli_expect(&r, 0, "down finra");
	cli_res_free(&r);
}

START_TEST(t_finra_ipc)
{
	const char *const f[] = {"--transport", "ipc", NULL};
	finra_e2e(f);
}
END_TEST

START_TEST(t_finra_tcp)
{
	const char *const f[] = {"--transport", "tcp", NULL};
	finra_e2e(f);
}
END_TEST

START_TEST(t_finra_nodes)
{
	if (geteuid() != 0) {
		fprintf(stderr, "t_finra_nodes: skipped: --nodes needs root\n");
		return;
	}
	const char *const f[] = {"--nodes", "2", NULL};
	finra_e2e(f);
}
END_TEST

Suite *cli_suite(void); /* tests.h */

Suite *cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("stack");
	tcase_add_unchecked_fixture(tc, cli_root_setup, cli_root_teardown);
	tcase_add_checked_fixture(tc, cli_setup, cli_teardown);
	tcase_add_test(tc, t_stack_good);
	tcase_add_test(tc, t_stack_finra);
	tcase_add_loop_test(tc, t_stack_bad, 0, (int)(sizeof(cli_bad) / sizeof(cli_bad[0])));
	tcase_add_test(tc, t_envsubst);
	tcase_add_test(tc, t_context);
	tcase_add_test(tc, t_build);
	tcase_add_test(tc, t_bench_format);
	tcase_add_test(tc, t_routes_print);
	tcase_add_test(tc, t_state_roundtrip);
	tcase_add_test(tc, t_usage);
	tcase_add_test(tc, t_nodes_need_root);
	suite_add_tcase(s, tc);

	tc = tcase_create("local");
	tcase_add_unchecked_fixture(tc, cli_root_setup, cli_root_teardown);
	tcase_add_checked_fixture(tc, cli_setup, cli_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, t_local_lifecycle);
	tcase_add_test(tc, t_local_replicas);
	tcase_add_test(tc, t_local_up_fails);
	tcase_add_test(tc, t_local_nodes);
	tcase_add_test(tc, t_finra_ipc);
	tcase_add_test(tc, t_finra_tcp);
	tcase_add_test(tc, t_finra_nodes);
	suite_add_tcase(s, tc);
	return s;
}
