/* test_template.c - the three OpenFaaS templates outside Docker: `make
 * install` into an empty DESTDIR, build contexts laid out as faas-cli
 * build lays them out (scripts/faas-context.sh: template/<lang>/ copied,
 * the handler folder overlaid into function/, configuration.copy paths
 * copied to function/<path>), each template's build.sh run against the
 * installed prefix, and the built binaries run: the c-cc sample's
 * coordinator, the c-func sample registered with it and answering POST /,
 * the c-entry sample running the sample workflow end to end.  FINRA's
 * lastpx and entry are built from their stack.yml contexts (common/
 * copied in).
 *
 * Runs from the repository root (make test does); IROUTE_BIN_DIR names the
 * build tree whose libraries are installed ($(BUILD)/bin; a
 * build/san-<list> tree passes its sanitizers on to build.sh, which must
 * link its instrumented archives). */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"
#include "twd.h"


static char repo[1024];	   /* the repository root (the cwd) */
static char prefix[256];   /* twd_dir/root/usr/local after install */
static char sanflags[256]; /* -fsanitize=... of a san build tree, or "" */
static pid_t procs[8];	   /* what each test started, killed at teardown */
static size_t nprocs;

static void tt_setup(void)
{
	twd_setup();
	nprocs = 0;
	ck_assert_ptr_nonnull(getcwd(repo, sizeof(repo)));
	char probe[1200];
	snprintf(probe, sizeof(probe), "%s/template/c-func/build.sh", repo);
	ck_assert_msg(access(probe, X_OK) == 0, "run from the repository root (%s: no %s)", repo,
		      probe);
	snprintf(prefix, sizeof(prefix), "%s/root/usr/local", twd_dir);
}

static void tt_teardown(void)
{
	for (size_t i = 0; i < nprocs; i++) {
		kill(procs[i], SIGKILL);
		waitpid(procs[i], NULL, 0);
	}
	nprocs = 0;
	twd_teardown();
}

/* The build tree of IROUTE_BIN_DIR ("build" when unset), and the
 * sanitizer list of a build/san-<a>-<b> tree ("" otherwise). */
static void build_tree(char *build, size_t blen, char *san, size_t slen)
{
	const char *bin = getenv("IROUTE_BIN_DIR");
	snprintf(build, blen, "%s", bin && *bin ? bin : "build/bin");
	size_t n = strlen(build);
	while (n > 1 && build[n - 1] == '/')
		build[--n] = '\0';
	char *slash = strrchr(build, '/');
	ck_assert_msg(slash && strcmp(slash, "/bin") == 0, "IROUTE_BIN_DIR %s is not <build>/bin",
		      build);
	*slash = '\0';
	const char *base = strrchr(build, '/') ? strrchr(build, '/') + 1 : build;
	san[0] = '\0';
	if (strncmp(base, "san-", 4) == 0) {
		snprintf(san, slen, "%s", base + 4);
		for (char *p = san; *p; p++)
			if (*p == '-')
				*p = ',';
	}
}

/* Run @fmt (a /bin/sh script) from the repository root; its output goes
 * to dir/sh.log.  Returns the exit status (-1 when it did not exit). */
static int sh_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh_status(const char *fmt, ...)
{
	char path[128];
	path_in(path, sizeof(path), "cmd.sh");
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "/bin/sh -e '%s' >'%s/sh.log' 2>&1", path, twd_dir);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The last part of dir/sh.log, for a failure message. */
static const char *sh_log_tail(void)
{
	static char tail[2048];
	char *log = read_file("sh.log", NULL);
	size_t n = strlen(log);
	snprintf(tail, sizeof(tail), "%s",
		 n > sizeof(tail) - 1 ? log + n - (sizeof(tail) - 1) : log);
	free(log);
	return tail;
}

#define SH_OK(...)                                                                                 \
	do {                                                                                       \
		int st_ = sh_status(__VA_ARGS__);                                                  \
		ck_assert_msg(st_ == 0, "script exited %d:\n%s", st_, sh_log_tail());              \
	} while (0)

/* `make install DESTDIR=dir/root` of the build tree under test. */
static void install(void)
{
	char build[512], san[128];
	build_tree(build, sizeof(build), san, sizeof(san));
	sanflags[0] = '\0';
	if (*san)
		snprintf(sanflags, sizeof(sanflags), "-fsanitize=%s -fno-omit-frame-pointer", san);
	/* A make of its own: not the jobserver of the make running the tests. */
	SH_OK("unset MAKEFLAGS MFLAGS MAKELEVEL\n"
	      "make --no-print-directory BUILD='%s' SAN='%s' install DESTDIR='%s/root'\n",
	      build, san, twd_dir);
}

/* Lay out function @fn's build context as faas-cli does, from @cwd (the
 * stack.yml's directory: absolute, or relative to the repository root) with handler
 * folder @handler and configuration.copy path @copy (NULL: none), then run
 * the template's build.sh against the installed prefix; the binary is
 * dir/bin/@fn.  Samples and FINRA must build without a warning. */
static void build_fn(const char *lang, const char *cwd, const char *handler, const char *fn,
		     const char *copy)
{
	char dir[1200];
	snprintf(dir, sizeof(dir), "%s%s%s", cwd[0] == '/' ? "" : repo, cwd[0] == '/' ? "" : "/",
		 cwd);
	SH_OK("cd '%s'\n"
	      "'%s/scripts/faas-context.sh' -t '%s/template' -o '%s/build' %s '%s' %s %s\n"
	      "cd '%s/build/%s'\n"
	      "CFLAGS='-std=c11 -O2 -Wall -Wextra -Werror %s' LDFLAGS='%s' \\\n"
	      "  ./build.sh --prefix '%s' --out '%s/bin/%s'\n",
	      dir, repo, repo, twd_dir, lang, handler, fn, copy ? copy : "", twd_dir, fn, sanflags,
	      sanflags, prefix, twd_dir, fn);
	char bin[256];
	snprintf(bin, sizeof(bin), "%s/bin/%s", twd_dir, fn);
	ck_assert_msg(access(bin, X_OK) == 0, "build.sh of %s wrote no executable %s", fn, bin);
}

/* Write @text to dir/@rel (its folder must exist). */
static void write_in(const char *rel, const char *text)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", twd_dir, rel);
	FILE *f = fopen(p, "w");
	ck_assert_msg(f != NULL, "cannot write %s", p);
	fputs(text, f);
	fclose(f);
}

static bool in_dir(const char *rel)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", twd_dir, rel);
	return access(p, F_OK) == 0;
}

START_TEST(t_install)
{
	install();
	const char *want[] = {"include/iroute/handler.h",
			      "include/iroute/workflow.h",
			      "lib/libiroute.a",
			      "lib/libiroute_func.a",
			      "lib/libiroute_entry.a",
			      "lib/pkgconfig/iroute.pc",
			      "bin/iroute-cc",
			      "bin/iroute-watchdog",
			      "bin/iroute-entry",
			      "libexec/iroute/runtime-packages"};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char p[512];
		snprintf(p, sizeof(p), "%s/%s", prefix, want[i]);
		ck_assert_msg(access(p, F_OK) == 0, "make install left out %s", want[i]);
	}
	char p[512];
	snprintf(p, sizeof(p), "%s/bin/iroute-iroute", prefix);
	ck_assert_msg(access(p, F_OK) != 0, "the build tree's iroute-iroute link was installed");

	/* The pkg-config file serves the DESTDIR tree as it is: its -I holds
	 * the headers, and its Libs link a program against libiroute.a that
	 * parses the c-cc sample's workflow. */
	write_in("pc.c", "#include <stdio.h>\n#include <iroute/workflow.h>\n"
			 "int main(int argc, char **argv)\n{\n"
			 "\tstruct ir_workflow wf;\n\tchar err[256];\n"
			 "\tif (argc != 2 || ir_workflow_load(argv[1], &wf, err, sizeof(err))) {\n"
			 "\t\tfprintf(stderr, \"%s\\n\", err);\n\t\treturn 1;\n\t}\n"
			 "\tprintf(\"%s %zu\\n\", wf.name, wf.nfns);\n"
			 "\tir_workflow_free(&wf);\n\treturn 0;\n}\n");
	SH_OK("export PKG_CONFIG_PATH='%s/lib/pkgconfig'\n"
	      "inc=$(pkg-config --cflags-only-I iroute | cut -d' ' -f1 | sed 's/^-I//')\n"
	      "test -f \"$inc/iroute/handler.h\"\n"
	      "cc -std=c11 -Wall -Werror %s $(pkg-config --cflags iroute) '%s/pc.c' -o '%s/pc' "
	      "%s $(pkg-config --libs iroute)\n"
	      "'%s/pc' template/c-cc/function/workflow.json >'%s/pc.out'\n",
	      prefix, sanflags, twd_dir, twd_dir, sanflags, twd_dir, twd_dir);
	char *out = read_file("pc.out", NULL);
	ck_assert_str_eq(out, "hello 2\n");
	free(out);
}
END_TEST

START_TEST(t_build_contexts)
{
	install();
	/* The samples, as `faas-cli new --lang <t>` hands them out: the
	 * template's function/ folder is the handler folder. */
	build_fn("c-func", ".", "template/c-func/function", "hello", NULL);
	build_fn("c-entry", ".", "template/c-entry/function", "hello-entry", NULL);
	build_fn("c-cc", ".", "template/c-cc/function", "hello-cc", NULL);
	/* FINRA as its stack.yml builds it: handler folder + ./common. */
	build_fn("c-func", "benchmarks/finra", "./lastpx", "lastpx", "./common");
	build_fn("c-entry", "benchmarks/finra", "./entry", "finra-entry", "./common");

	/* faas-cli's layout: the template at the top, the handler folder in
	 * function/, the copy path at function/common/. */
	ck_assert(in_dir("build/lastpx/Dockerfile"));
	ck_assert(in_dir("build/lastpx/template.yml"));
	ck_assert(in_dir("build/lastpx/function/handler.c"));
	ck_assert(in_dir("build/lastpx/function/common/finra.h"));
	ck_assert(in_dir("build/lastpx/function/common/functions/lastpx.c"));
	ck_assert(in_dir("build/finra-entry/function/generate_data.c"));
	ck_assert(in_dir("build/finra-entry/function/common/generate.c"));
	ck_assert(in_dir("build/hello-cc/function/workflow.json"));

	/* function/libs: a pkg-config module the handler uses is compiled and
	 * linked in (and only what is used stays NEEDED: --as-needed); a
	 * module that does not exist fails the build, named. */
	char own[128];
	snprintf(own, sizeof(own), "%s/own", twd_dir);
	ck_assert_int_eq(mkdir(own, 0755), 0);
	write_in("own/handler.c",
		 "#include <string.h>\n#include <yaml.h>\n#include <iroute/handler.h>\n"
		 "int handle(void *s, const struct ir_req *r, const struct ir_in *in, size_t n,\n"
		 "\t   struct ir_out *out);\n"
		 "int handle(void *s, const struct ir_req *r, const struct ir_in *in, size_t n,\n"
		 "\t   struct ir_out *out)\n{\n"
		 "\t(void)s, (void)r, (void)in, (void)n;\n"
		 "\tconst char *v = yaml_get_version_string();\n"
		 "\treturn ir_out_write(out, v, strlen(v));\n}\n");
	write_in("own/libs", "# the handler's own libraries\nyaml-0.1\n");
	build_fn("c-func", twd_dir, "./own", "own", NULL);
	SH_OK("readelf -d '%s/bin/own' | grep -q 'NEEDED.*libyaml'\n"
	      "! readelf -d '%s/bin/hello' | grep -q 'NEEDED.*libyaml'\n",
	      twd_dir, twd_dir);
	ck_assert_int_eq(sh_status("cd '%s/build/own'\necho no-such-module >function/libs\n"
				   "./build.sh --prefix '%s' --out '%s/bin/z'\n",
				   twd_dir, prefix, twd_dir),
			 1);
	char *log = read_file("sh.log", NULL);
	ck_assert_msg(strstr(log, "no pkg-config module \"no-such-module\""), "%s", log);
	free(log);

	/* A prefix without iroute fails with a message that says so. */
	ck_assert_int_eq(sh_status("cd '%s/build/hello'\n./build.sh --prefix '%s/nowhere' "
				   "--out '%s/bin/x'\n",
				   twd_dir, twd_dir, twd_dir),
			 1);
	log = read_file("sh.log", NULL);
	ck_assert_msg(strstr(log, "is missing") && strstr(log, "is iroute installed"), "%s", log);
	free(log);
	/* A c-cc handler folder without its workflow fails the build. */
	ck_assert_int_eq(sh_status("cd '%s/build/hello-cc'\nrm function/workflow.json\n"
				   "./build.sh --prefix '%s' --out '%s/bin/y'\n",
				   twd_dir, prefix, twd_dir),
			 1);
	log = read_file("sh.log", NULL);
	ck_assert_msg(strstr(log, "function/workflow.json is missing"), "%s", log);
	free(log);
}
END_TEST

/* Start dir/bin/@name with only PATH and @env ("K=V", NULL-terminated);
 * stdout and stderr go to dir/@name.log. */
static pid_t start_bin(const char *name, const char *const *env)
{
	char bin[256], logp[256], vpath[1024];
	snprintf(bin, sizeof(bin), "%s/bin/%s", twd_dir, name);
	snprintf(logp, sizeof(logp), "%s/%s.log", twd_dir, name);
	snprintf(vpath, sizeof(vpath), "PATH=%s",
		 getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	char *envp[32] = {vpath};
	size_t n = 1;
	for (size_t i = 0; env[i] && n < 31; i++)
		envp[n++] = (char *)env[i];
	envp[n] = NULL;
	ck_assert_uint_lt(nprocs, sizeof(procs) / sizeof(procs[0]));
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		char *argv[] = {bin, NULL};
		execve(bin, argv, envp);
		_exit(127);
	}
	procs[nprocs++] = pid;
	return pid;
}

/* Poll GET /_/health on @port until 200 (10 s), while @pid lives. */
static void wait_healthy(const char *name, pid_t pid, int port)
{
	uint64_t t0 = now_ms();
	for (;;) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			char logn[128];
			snprintf(logn, sizeof(logn), "%s.log", name);
			char *log = read_file(logn, NULL);
			ck_abort_msg("%s exited (status %d) before it was healthy:\n%s", name, st,
				     log);
		}
		if (curl(port, "health", "", "/_/health") == 200)
			return;
		ck_assert_msg(now_ms() - t0 < 10000, "%s: /_/health not 200 after 10 s", name);
		sleep_ms(50);
	}
}

struct inst {
	char port[32], mport[32], lock[128], ipc[128];
	int p;
};

/* The environment every instance of the sample workflow shares, plus its
 * own ports, lock file and IPC directory. */
static void inst_init(struct inst *in, const char *name, int port)
{
	in->p = port;
	snprintf(in->port, sizeof(in->port), "port=%d", port);
	snprintf(in->mport, sizeof(in->mport), "IROUTE_METRICS_PORT=%d", free_port());
	snprintf(in->lock, sizeof(in->lock), "IROUTE_LOCK_FILE=%s/%s.lock", twd_dir, name);
	snprintf(in->ipc, sizeof(in->ipc), "IROUTE_IPC_DIR=%s/ipc", twd_dir);
}

static char cc_url[64];

/* The c-cc sample (workflow "hello": hello -> world) on twd_port. */
static void start_cc(void)
{
	build_fn("c-cc", ".", "template/c-cc/function", "hello-cc", NULL);
	static struct inst cc;
	inst_init(&cc, "hello-cc", twd_port);
	static char wf[256], mirror[256];
	snprintf(wf, sizeof(wf), "IROUTE_WORKFLOW=%s/build/hello-cc/function/workflow.json",
		 twd_dir);
	snprintf(mirror, sizeof(mirror), "IROUTE_MIRROR_FILE=%s/mirror.json", twd_dir);
	const char *env[] = {cc.port, cc.mport, cc.lock, wf, mirror, test_token_env(), NULL};
	pid_t pid = start_bin("hello-cc", env);
	wait_healthy("hello-cc", pid, twd_port);
	snprintf(cc_url, sizeof(cc_url), "IROUTE_CC=http://127.0.0.1:%d", twd_port);
}

/* The c-func sample as workflow function @fn; returns its HTTP port. */
static int start_func(const char *fn)
{
	static struct inst insts[8]; /* one per started process, as procs[] */
	static char names[8][80];
	ck_assert_uint_lt(nprocs, 8);
	struct inst *i = &insts[nprocs];
	inst_init(i, fn, free_port());
	snprintf(names[nprocs], sizeof(names[nprocs]), "IROUTE_FUNCTION=%s", fn);
	const char *env[] = {
	    i->port, i->mport, i->lock, i->ipc, cc_url, names[nprocs], test_token_env(), NULL};
	pid_t pid = start_bin(fn, env);
	wait_healthy(fn, pid, i->p);
	return i->p;
}

START_TEST(t_run_func)
{
	install();
	start_cc();
	build_fn("c-func", ".", "template/c-func/function", "hello", NULL);
	int port = start_func("hello");

	/* POST / runs the handler alone: the sample upper-cases. */
	ck_assert_int_eq(curl(port, "out", "--data-binary 'hello, world'", "/"), 200);
	char *body = read_file("out", NULL);
	ck_assert_str_eq(body, "HELLO, WORLD");
	free(body);
	/* Its error path: 400 and a JSON error naming the function. */
	ck_assert_int_eq(curl(port, "err", "-X POST", "/"), 400);
	body = read_file("err", NULL);
	ck_assert_msg(strstr(body, "hello") && strstr(body, "empty body"), "%s", body);
	free(body);

	/* The coordinator's table holds the instance it registered. */
	ck_assert_int_eq(
	    curl(twd_port, "table", test_bearer_curl(), "/v1/table"), 200);
	body = read_file("table", NULL);
	ck_assert_msg(strstr(body, "\"hello\"") && strstr(body, "\"workflow\":\"hello\""), "%s",
		      body);
	free(body);
}
END_TEST

START_TEST(t_run_workflow)
{
	install();
	start_cc();
	build_fn("c-func", ".", "template/c-func/function", "hello", NULL);
	build_fn("c-func", ".", "template/c-func/function", "world", NULL);
	build_fn("c-entry", ".", "template/c-entry/function", "hello-entry", NULL);
	start_func("hello");
	start_func("world");
	static struct inst e;
	inst_init(&e, "hello-entry", free_port());
	const char *env[] = {e.port, e.mport, e.lock, e.ipc, cc_url, test_token_env(), NULL};
	pid_t pid = start_bin("hello-entry", env);
	wait_healthy("hello-entry", pid, e.p);

	/* hello -> world through the entry: upper case twice, and back. */
	ck_assert_int_eq(curl(e.p, "out", "--data-binary 'one hop at a time'", "/"), 200);
	char *body = read_file("out", NULL);
	ck_assert_str_eq(body, "ONE HOP AT A TIME");
	free(body);

	/* The sample generator feeds POST /bench: every request answered. */
	ck_assert_int_eq(curl(e.p, "bench", "-X POST", "/bench?n=20&concurrency=2"), 200);
	body = read_file("bench", NULL);
	ck_assert_msg(strstr(body, "\"ok\":20") && strstr(body, "\"errors\":0"), "%s", body);
	free(body);
}
END_TEST

Suite *template_suite(void); /* also in tests.h, once test_main.c runs it */

Suite *template_suite(void)
{
	Suite *s = suite_create("template");
	TCase *tc = tcase_create("template");
	tcase_add_checked_fixture(tc, tt_setup, tt_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, t_install);
	tcase_add_test(tc, t_build_contexts);
	tcase_add_test(tc, t_run_func);
	tcase_add_test(tc, t_run_workflow);
	suite_add_tcase(s, tc);
	return s;
}
