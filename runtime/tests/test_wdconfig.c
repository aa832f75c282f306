/* test_wdconfig.c - the watchdog's environment, read as of-watchdog reads it.
 *
 * Expected values come from of-watchdog's config/config.go (newest version
 * read, commit 2c1b372) and config/config_test.go; where wdconfig.h
 * documents a deliberate difference the test says so.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iroute/wdconfig.h"
#include "tests.h"

#define S(x) ((uint64_t)(x)*IR_NS_PER_SEC)
#define MS(x) ((uint64_t)(x)*1000000ull)

static struct ir_wd_config cfg;
static char err[512];

static void teardown(void)
{
	ir_wd_config_release(&cfg);
}

/* Load from a NULL-terminated list of "k=v" entries. */
static int load(char **env)
{
	memset(err, 0, sizeof(err));
	return ir_wd_config_load(&cfg, env, err, sizeof(err));
}

/* One entry plus fprocess=cat, so the mode check passes. */
static int load1(char *entry)
{
	char *env[] = {"fprocess=cat", entry, NULL};
	return load(env);
}

static void assert_zeroed(void)
{
	static const struct ir_wd_config zero;
	ck_assert_mem_eq(&cfg, &zero, sizeof(cfg));
}

/* ---- defaults ---- */

START_TEST(t_defaults)
{
	/* config.go: New() requires fprocess outside static/inproc, so the
	 * empty environment is checked in static mode first. */
	char *env[] = {"mode=static", NULL};
	ck_assert_int_eq(load(env), 0);
	ck_assert_int_eq(cfg.mode, IR_WD_MODE_STATIC);
	ck_assert_str_eq(cfg.fprocess, "");
	ck_assert_ptr_null(cfg.argv);
	ck_assert_uint_eq(cfg.argc, 0);
	ck_assert_str_eq(cfg.upstream_url, "");
	/* contentType := "application/octet-stream" */
	ck_assert_str_eq(cfg.content_type, "application/octet-stream");
	/* staticPath := "/home/app/public" */
	ck_assert_str_eq(cfg.static_path, "/home/app/public");
	/* ReadyEndpoint: envMap["ready_path"] */
	ck_assert_str_eq(cfg.ready_path, "");
	/* getInt(envMap, "port", 8080); MetricsPort: 8081 */
	ck_assert_uint_eq(cfg.port, 8080);
	ck_assert_uint_eq(cfg.metrics_port, 8081);
	/* defaultTimeout := time.Second * 30 for read, write and exec */
	ck_assert_uint_eq(cfg.read_timeout_ns, S(30));
	ck_assert_uint_eq(cfg.write_timeout_ns, S(30));
	ck_assert_uint_eq(cfg.exec_timeout_ns, S(30));
	/* healthcheckInterval := writeTimeout */
	ck_assert_uint_eq(cfg.healthcheck_interval_ns, S(30));
	/* getInt(envMap, "max_inflight", 0) */
	ck_assert_uint_eq(cfg.max_inflight, 0);
	/* logBufferSize := bufio.MaxScanTokenSize (64 * 1024) */
	ck_assert_uint_eq(cfg.log_buffer_size, 65536);
	/* InjectCGIHeaders: true; prefixLogs := true; getBool()s false */
	ck_assert(cfg.inject_cgi_headers);
	ck_assert(cfg.prefix_logs);
	ck_assert(!cfg.suppress_lock);
	ck_assert(!cfg.buffer_http);
	ck_assert(!cfg.log_callid);
	ck_assert(!cfg.jwt_auth);
	ck_assert(!cfg.jwt_auth_debug);
	ck_assert(!cfg.jwt_auth_local);
	ck_assert(!cfg.one_shot);
}
END_TEST

START_TEST(t_default_mode_streaming)
{
	/* OperationalMode: ModeStreaming unless mode is non-empty */
	char *env[] = {"fprocess=cat", NULL};
	ck_assert_int_eq(load(env), 0);
	ck_assert_int_eq(cfg.mode, IR_WD_MODE_STREAMING);
	ir_wd_config_release(&cfg);
	char *env2[] = {"fprocess=cat", "mode=", NULL};
	ck_assert_int_eq(load(env2), 0);
	ck_assert_int_eq(cfg.mode, IR_WD_MODE_STREAMING);
}
END_TEST

START_TEST(t_empty_env_needs_fprocess)
{
	/* config.go: `provide a "function_process" or "fprocess" environmental
	 * variable for your function` for the default (streaming) mode. */
	char *env[] = {NULL};
	ck_assert_int_eq(load(env), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "fprocess"));
	ck_assert_ptr_nonnull(strstr(err, "\"function_process\" or \"fprocess\""));
	assert_zeroed();
	ck_assert_int_eq(load(NULL), -EINVAL);
	assert_zeroed();
}
END_TEST

/* ---- the environment array ---- */

START_TEST(t_env_syntax)
{
	/* mapEnv: split at the first '=', skip entries without one or with an
	 * empty key, later entries win, keys are case sensitive. */
	char *env[] = {"noequals", "=cat", "fprocess=first", "fprocess=env A=B", "FPROCESS=no",
		       "Port=1",   NULL};
	ck_assert_int_eq(load(env), 0);
	ck_assert_str_eq(cfg.fprocess, "env A=B");
	ck_assert_uint_eq(cfg.argc, 2);
	ck_assert_str_eq(cfg.argv[1], "A=B");
	ck_assert_uint_eq(cfg.port, 8080);
}
END_TEST

START_TEST(t_unknown_keys_ignored)
{
	char *env[] = {"PATH=/usr/bin",	   "HOME=/root",   "metrics_port=9000",
		       "hard_timeout=abc", "fprocess=cat", NULL};
	ck_assert_int_eq(load(env), 0);
	/* MetricsPort: 8081, not read from the environment */
	ck_assert_uint_eq(cfg.metrics_port, 8081);
	/* hard_timeout is no longer read: no error for its bad value */
	ck_assert_uint_eq(cfg.exec_timeout_ns, S(30));
}
END_TEST

/* ---- strings and aliases ---- */

START_TEST(t_fprocess_aliases)
{
	char *a[] = {"fprocess=env", NULL};
	ck_assert_int_eq(load(a), 0);
	ck_assert_str_eq(cfg.fprocess, "env");
	ir_wd_config_release(&cfg);

	char *b[] = {"function_process=env", NULL};
	ck_assert_int_eq(load(b), 0);
	ck_assert_str_eq(cfg.fprocess, "env");
	ir_wd_config_release(&cfg);

	/* function_process is read after fprocess: it wins, in either order */
	char *c[] = {"function_process=node", "fprocess=python", NULL};
	ck_assert_int_eq(load(c), 0);
	ck_assert_str_eq(cfg.fprocess, "node");
	ir_wd_config_release(&cfg);

	/* ... even when empty (of-watchdog checks existence, not length) */
	char *d[] = {"fprocess=python", "function_process=", NULL};
	ck_assert_int_eq(load(d), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "function_process: "));
}
END_TEST

START_TEST(t_upstream_aliases)
{
	char *a[] = {"mode=http", "fprocess=node index.js", "upstream_url=http://127.0.0.1:8082",
		     NULL};
	ck_assert_int_eq(load(a), 0);
	ck_assert_str_eq(cfg.upstream_url, "http://127.0.0.1:8082");
	ir_wd_config_release(&cfg);

	char *b[] = {"mode=http", "fprocess=node", "http_upstream_url=http://127.0.0.1:8083", NULL};
	ck_assert_int_eq(load(b), 0);
	ck_assert_str_eq(cfg.upstream_url, "http://127.0.0.1:8083");
	ir_wd_config_release(&cfg);

	char *c[] = {"mode=http", "fprocess=node", "http_upstream_url=http://b",
		     "upstream_url=http://a", NULL};
	ck_assert_int_eq(load(c), 0);
	ck_assert_str_eq(cfg.upstream_url, "http://b");
	ir_wd_config_release(&cfg);

	/* read in every mode, as of-watchdog does */
	ck_assert_int_eq(load1("upstream_url=http://x"), 0);
	ck_assert_str_eq(cfg.upstream_url, "http://x");
}
END_TEST

START_TEST(t_strings)
{
	char *env[] = {"fprocess=cat",	    "content_type=application/json", "static_path=/srv/www",
		       "ready_path=/ready", "upstream_url=http://u:1",	     NULL};
	ck_assert_int_eq(load(env), 0);
	ck_assert_str_eq(cfg.content_type, "application/json");
	ck_assert_str_eq(cfg.static_path, "/srv/www");
	ck_assert_str_eq(cfg.ready_path, "/ready");
	ir_wd_config_release(&cfg);

	/* an empty string is a value, as in of-watchdog */
	char *e[] = {"fprocess=cat", "content_type=", "ready_path=", NULL};
	ck_assert_int_eq(load(e), 0);
	ck_assert_str_eq(cfg.content_type, "");
	ck_assert_str_eq(cfg.ready_path, "");
}
END_TEST

/* ---- fprocess into argv ---- */

static void assert_argv(const char *fprocess, const char *const *want, size_t n)
{
	char entry[256];
	snprintf(entry, sizeof(entry), "fprocess=%s", fprocess);
	char *env[] = {"mode=static", entry, NULL};
	ck_assert_int_eq(load(env), 0);
	ck_assert_str_eq(cfg.fprocess, fprocess);
	ck_assert_uint_eq(cfg.argc, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(cfg.argv[i], want[i]);
	ck_assert_ptr_null(cfg.argv[n]);
	ir_wd_config_release(&cfg);
}

START_TEST(t_argv_split)
{
	/* Process(): strings.Split(w.FunctionProcess, " ") */
	assert_argv("cat", (const char *[]){"cat"}, 1);
	assert_argv("python3 index.py", (const char *[]){"python3", "index.py"}, 2);
	/* config_test.go cases */
	assert_argv("node index.js --this-is-a-flag=1234",
		    (const char *[]){"node", "index.js", "--this-is-a-flag=1234"}, 3);
	assert_argv("node --this-is-a-flag", (const char *[]){"node", "--this-is-a-flag"}, 2);
	/* every space separates: empty arguments appear */
	assert_argv("python3  index.py", (const char *[]){"python3", "", "index.py"}, 3);
	assert_argv("cat ", (const char *[]){"cat", ""}, 2);
	assert_argv("cat  ", (const char *[]){"cat", "", ""}, 3);
	assert_argv(" cat", (const char *[]){"", "cat"}, 2);
	assert_argv(" ", (const char *[]){"", ""}, 2);
	/* tabs do not separate, quotes are not interpreted */
	assert_argv("a\tb", (const char *[]){"a\tb"}, 1);
	assert_argv("sh -c \"echo hi\"", (const char *[]){"sh", "-c", "\"echo", "hi\""}, 4);
}
END_TEST

START_TEST(t_argv_leading_space_rejected)
{
	/* Deliberate: argv[0] would be "" (of-watchdog fails every exec). */
	char *env[] = {"fprocess= cat", NULL};
	ck_assert_int_eq(load(env), -EINVAL);
	ck_assert_str_eq(err, "fprocess: \" cat\" starts with a space: the program name would "
			      "be empty (of-watchdog splits on every space)");
	assert_zeroed();
	/* trailing spaces only add empty arguments: accepted */
	char *ok[] = {"fprocess=cat ", NULL};
	ck_assert_int_eq(load(ok), 0);
	ck_assert_uint_eq(cfg.argc, 2);
}
END_TEST

/* ---- modes ---- */

START_TEST(t_modes)
{
	static const struct {
		char *entry;
		enum ir_wd_mode mode;
		const char *name;
	} cases[] = {
	    {"mode=streaming", IR_WD_MODE_STREAMING, "streaming"},
	    {"mode=serializing", IR_WD_MODE_SERIALIZING, "serializing"},
	    {"mode=http", IR_WD_MODE_HTTP, "http"},
	    {"mode=static", IR_WD_MODE_STATIC, "static"},
	    {"mode=iroute", IR_WD_MODE_IROUTE, "iroute"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *env[] = {"fprocess=cat", "upstream_url=http://127.0.0.1:5000", cases[i].entry,
			       NULL};
		ck_assert_int_eq(load(env), 0);
		ck_assert_int_eq(cfg.mode, cases[i].mode);
		ck_assert_str_eq(ir_wd_mode_name(cfg.mode), cases[i].name);
		ir_wd_config_release(&cfg);
	}
	ck_assert_str_eq(ir_wd_mode_name((enum ir_wd_mode)0), "unknown");
}
END_TEST

START_TEST(t_mode_errors)
{
	/* of-watchdog: WatchdogModeConst() gives 0, then log.Panicf("unknown
	 * watchdog mode: 0") when the handler is built. */
	ck_assert_int_eq(load1("mode=foo"), -EINVAL);
	ck_assert_str_eq(err, "mode: \"foo\" is unknown (want streaming, serializing, http, "
			      "static or iroute)");
	assert_zeroed();
	/* values are case sensitive */
	ck_assert_int_eq(load1("mode=Streaming"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "mode: \"Streaming\""));
	/* afterburn still parses in config.go but buildRequestHandler has no
	 * case for it any more */
	ck_assert_int_eq(load1("mode=afterburn"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "mode: \"afterburn\" is no longer supported"));
	/* inproc needs a Go handler (SetHandler); ours is iroute */
	ck_assert_int_eq(load1("mode=inproc"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "use iroute"));
}
END_TEST

START_TEST(t_mode_requirements)
{
	/* streaming, serializing, http: fprocess required, as config.go */
	static char *needs[] = {"mode=streaming", "mode=serializing", "mode=http"};
	for (size_t i = 0; i < 3; i++) {
		char *env[] = {needs[i], "upstream_url=http://127.0.0.1:5000", NULL};
		ck_assert_int_eq(load(env), -EINVAL);
		ck_assert_msg(strncmp(err, "fprocess: mode=", 15) == 0, "%s", err);
		ck_assert_ptr_nonnull(strstr(err, needs[i]));
		assert_zeroed();
	}
	/* static and iroute: none */
	char *st[] = {"mode=static", NULL};
	ck_assert_int_eq(load(st), 0);
	ir_wd_config_release(&cfg);
	char *ir[] = {"mode=iroute", NULL};
	ck_assert_int_eq(load(ir), 0);
	ck_assert_ptr_null(cfg.argv);
	ir_wd_config_release(&cfg);

	/* http without an upstream URL: of-watchdog log.Fatal()s at start-up */
	char *h1[] = {"mode=http", "fprocess=node index.js", NULL};
	ck_assert_int_eq(load(h1), -EINVAL);
	ck_assert_str_eq(err, "http_upstream_url: mode=http needs the URL to forward to (alias "
			      "upstream_url), e.g. http_upstream_url=http://127.0.0.1:5000");
	char *h2[] = {"mode=http", "fprocess=node index.js", "upstream_url=", NULL};
	ck_assert_int_eq(load(h2), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "upstream_url: mode=http"));
	ck_assert_ptr_nonnull(strstr(err, "(alias http_upstream_url)"));

	/* static: static_path has a default; only an explicit "" is an error
	 * (of-watchdog: log.Fatal `For mode=static you must specify the
	 * "static_path" to serve`) */
	char *s1[] = {"mode=static", "static_path=", NULL};
	ck_assert_int_eq(load(s1), -EINVAL);
	ck_assert_str_eq(err, "static_path: is empty: mode=static needs the directory to serve");
	assert_zeroed();
}
END_TEST

/* ---- numbers ---- */

START_TEST(t_port)
{
	/* config_test.go Test_PortOverride */
	ck_assert_int_eq(load1("port=8081"), 0);
	ck_assert_uint_eq(cfg.port, 8081);
	ir_wd_config_release(&cfg);
	/* strconv.Atoi accepts a sign */
	ck_assert_int_eq(load1("port=+9000"), 0);
	ck_assert_uint_eq(cfg.port, 9000);
	ir_wd_config_release(&cfg);
	ck_assert_int_eq(load1("port=0"), 0);
	ck_assert_uint_eq(cfg.port, 0);
	ir_wd_config_release(&cfg);
	ck_assert_int_eq(load1("port=65535"), 0);
	ck_assert_uint_eq(cfg.port, 65535);
	ir_wd_config_release(&cfg);
	/* deliberate: empty is unset (of-watchdog: Atoi("") fails -> port 0) */
	ck_assert_int_eq(load1("port="), 0);
	ck_assert_uint_eq(cfg.port, 8080);
	ir_wd_config_release(&cfg);

	/* deliberate: of-watchdog gives port 0 for these */
	ck_assert_int_eq(load1("port=abc"), -EINVAL);
	ck_assert_str_eq(err, "port: \"abc\" is not an integer (want a TCP port, 0-65535)");
	ck_assert_int_eq(load1("port=80 "), -EINVAL);
	ck_assert_int_eq(load1("port=65536"), -ERANGE);
	ck_assert_str_eq(err, "port: \"65536\" is out of range (want a TCP port, 0-65535)");
	ck_assert_int_eq(load1("port=-1"), -ERANGE);
	ck_assert_int_eq(load1("port=99999999999999999999"), -ERANGE);
	assert_zeroed();
}
END_TEST

START_TEST(t_max_inflight)
{
	ck_assert_int_eq(load1("max_inflight=10"), 0);
	ck_assert_uint_eq(cfg.max_inflight, 10);
	ir_wd_config_release(&cfg);
	ck_assert_int_eq(load1("max_inflight=0"), 0);
	ck_assert_uint_eq(cfg.max_inflight, 0);
	ir_wd_config_release(&cfg);
	ck_assert_int_eq(load1("max_inflight="), 0);
	ck_assert_uint_eq(cfg.max_inflight, 0);
	ir_wd_config_release(&cfg);
	ck_assert_int_eq(load1("max_inflight=4294967295"), 0);
	ck_assert_uint_eq(cfg.max_inflight, 4294967295u);
	ir_wd_config_release(&cfg);

	ck_assert_int_eq(load1("max_inflight=ten"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "max_inflight: \"ten\" is not an integer"));
	/* deliberate: of-watchdog treats a negative limit as no limit */
	ck_assert_int_eq(load1("max_inflight=-1"), -ERANGE);
	ck_assert_ptr_nonnull(strstr(err, "max_inflight: \"-1\" is out of range"));
	ck_assert_int_eq(load1("max_inflight=4294967296"), -ERANGE);
}
END_TEST

START_TEST(t_hardening_limits)
{
	ck_assert_int_eq(load1("mode=static"), 0);
	ck_assert_uint_eq(cfg.max_connections, 1024);
	ck_assert_uint_eq(cfg.max_connections_per_ip, 512);
	ck_assert_uint_eq(cfg.max_header_bytes, 65536);
	ck_assert_uint_eq(cfg.max_body_bytes, 64u << 20);
	ir_wd_config_release(&cfg);
	ck_assert_int_eq(load1("IROUTE_MAX_CONNECTIONS=8"), 0);
	ck_assert_uint_eq(cfg.max_connections, 8);
	ir_wd_config_release(&cfg);
	ck_assert_int_eq(load1("IROUTE_MAX_CONNECTIONS_PER_IP=0"), 0);
	ck_assert_uint_eq(cfg.max_connections_per_ip, 0);
	ir_wd_config_release(&cfg);
	ck_assert_int_eq(load1("IROUTE_MAX_BODY_BYTES=0"), 0);
	ck_assert_uint_eq(cfg.max_body_bytes, 0);
	ir_wd_config_release(&cfg);
	ck_assert_int_eq(load1("IROUTE_MAX_HEADER_BYTES=4096"), 0);
	ck_assert_uint_eq(cfg.max_header_bytes, 4096);
	ir_wd_config_release(&cfg);

	ck_assert_int_eq(load1("IROUTE_MAX_CONNECTIONS=0"), -ERANGE);
	ck_assert_ptr_nonnull(strstr(err, "IROUTE_MAX_CONNECTIONS: \"0\" is out of range"));
	ck_assert_int_eq(load1("IROUTE_MAX_HEADER_BYTES=100"), -ERANGE);
	ck_assert_ptr_nonnull(strstr(err, "IROUTE_MAX_HEADER_BYTES"));
	ck_assert_int_eq(load1("IROUTE_MAX_BODY_BYTES=1MB"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "IROUTE_MAX_BODY_BYTES: \"1MB\" is not an integer"));
	ck_assert_int_eq(load1("IROUTE_MAX_CONNECTIONS_PER_IP=-1"), -ERANGE);
}
END_TEST

START_TEST(t_log_buffer_size)
{
	/* config_test.go Test_LogBufferSize_Override */
	ck_assert_int_eq(load1("log_buffer_size=1024"), 0);
	ck_assert_uint_eq(cfg.log_buffer_size, 1024);
	ir_wd_config_release(&cfg);
	ck_assert_int_eq(load1("log_buffer_size="), 0);
	ck_assert_uint_eq(cfg.log_buffer_size, 65536);
	ir_wd_config_release(&cfg);
	/* of-watchdog also refuses a non-integer ("invalid log_buffer_size") */
	ck_assert_int_eq(load1("log_buffer_size=1k"), -EINVAL);
	ck_assert_str_eq(
	    err, "log_buffer_size: \"1k\" is not an integer (want a size in bytes, at least 1)");
	/* deliberate: 0 and negatives (of-watchdog: useless / panics) */
	ck_assert_int_eq(load1("log_buffer_size=0"), -ERANGE);
	ck_assert_ptr_nonnull(strstr(err, "log_buffer_size: \"0\""));
	ck_assert_int_eq(load1("log_buffer_size=-1"), -ERANGE);
	assert_zeroed();
}
END_TEST

/* ---- durations in the environment ---- */

START_TEST(t_timeouts)
{
	/* config_test.go Test_Timeouts, plus integer seconds */
	char *a[] = {"fprocess=cat", "read_timeout=5s", NULL};
	ck_assert_int_eq(load(a), 0);
	ck_assert_uint_eq(cfg.read_timeout_ns, S(5));
	ck_assert_uint_eq(cfg.write_timeout_ns, S(30));
	ck_assert_uint_eq(cfg.exec_timeout_ns, S(30));
	ir_wd_config_release(&cfg);

	char *b[] = {"fprocess=cat", "write_timeout=5", "exec_timeout=1m30s", NULL};
	ck_assert_int_eq(load(b), 0);
	ck_assert_uint_eq(cfg.read_timeout_ns, S(30));
	ck_assert_uint_eq(cfg.write_timeout_ns, S(5));
	ck_assert_uint_eq(cfg.exec_timeout_ns, S(90));
	/* healthcheck_interval follows the effective write_timeout */
	ck_assert_uint_eq(cfg.healthcheck_interval_ns, S(5));
	ir_wd_config_release(&cfg);

	char *c[] = {"fprocess=cat", "write_timeout=1.5h", "healthcheck_interval=300ms", NULL};
	ck_assert_int_eq(load(c), 0);
	ck_assert_uint_eq(cfg.write_timeout_ns, S(5400));
	ck_assert_uint_eq(cfg.healthcheck_interval_ns, MS(300));
	ir_wd_config_release(&cfg);

	/* empty is unset (of-watchdog: parse error -> the default) */
	char *d[] = {"fprocess=cat",  "read_timeout=",	       "write_timeout=12",
		     "exec_timeout=", "healthcheck_interval=", NULL};
	ck_assert_int_eq(load(d), 0);
	ck_assert_uint_eq(cfg.read_timeout_ns, S(30));
	ck_assert_uint_eq(cfg.exec_timeout_ns, S(30));
	ck_assert_uint_eq(cfg.healthcheck_interval_ns, S(12));
	ir_wd_config_release(&cfg);

	/* zero: no read/exec timeout, accepted health interval */
	char *z[] = {"fprocess=cat", "read_timeout=0", "exec_timeout=0s", "healthcheck_interval=0",
		     NULL};
	ck_assert_int_eq(load(z), 0);
	ck_assert_uint_eq(cfg.read_timeout_ns, 0);
	ck_assert_uint_eq(cfg.exec_timeout_ns, 0);
	ck_assert_uint_eq(cfg.healthcheck_interval_ns, 0);
	ir_wd_config_release(&cfg);

	ck_assert_int_eq(load1("exec_timeout=2us"), 0);
	ck_assert_uint_eq(cfg.exec_timeout_ns, 2000);
}
END_TEST

START_TEST(t_write_timeout_zero)
{
	/* config.go: "HTTP write timeout must be over 0s" */
	ck_assert_int_eq(load1("write_timeout=0"), -EINVAL);
	ck_assert_str_eq(err, "write_timeout: \"0\" must be over 0s (of-watchdog: \"HTTP write "
			      "timeout must be over 0s\")");
	assert_zeroed();
	ck_assert_int_eq(load1("write_timeout=0ms"), -EINVAL);
	ck_assert_int_eq(load1("write_timeout=-0s"), -EINVAL);
}
END_TEST

START_TEST(t_duration_errors)
{
	static const struct {
		char *entry;
		int ret;
		const char *msg;
	} cases[] = {
	    {"exec_timeout=10x", -EINVAL,
	     "exec_timeout: \"10x\" is not a duration (use seconds like 10, or 1m30s)"},
	    {"read_timeout=abc", -EINVAL,
	     "read_timeout: \"abc\" is not a duration (use seconds like 10, or 1m30s)"},
	    {"write_timeout=1h-2m", -EINVAL, "write_timeout: \"1h-2m\" is not a duration"},
	    {"healthcheck_interval=5 s", -EINVAL, "healthcheck_interval: \"5 s\" is not a"},
	    {"exec_timeout= 5", -EINVAL, "exec_timeout: \" 5\" is not a duration"},
	    {"exec_timeout=1.5", -EINVAL, "exec_timeout: \"1.5\" is not a duration"},
	    /* deliberate: of-watchdog accepts "-1s", and uses the default for "-5" */
	    {"exec_timeout=-1s", -ERANGE,
	     "exec_timeout: \"-1s\" is negative (use 0 or more seconds, like 10, or a duration "
	     "like 1m30s)"},
	    {"read_timeout=-5", -ERANGE, "read_timeout: \"-5\" is negative"},
	    /* deliberate: of-watchdog wraps 9223372037 * time.Second */
	    {"write_timeout=9223372037", -ERANGE,
	     "write_timeout: \"9223372037\" is out of range (at most 2562047h47m16.854775807s)"},
	    {"exec_timeout=99999999999999999999", -ERANGE,
	     "exec_timeout: \"99999999999999999999\""},
	    {"exec_timeout=2562048h", -ERANGE, "is out of range"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(load1(cases[i].entry), cases[i].ret);
		ck_assert_msg(strstr(err, cases[i].msg), "%s: got \"%s\"", cases[i].entry, err);
		assert_zeroed();
	}
	/* the largest values that fit */
	ck_assert_int_eq(load1("exec_timeout=9223372036"), 0);
	ck_assert_uint_eq(cfg.exec_timeout_ns, S(9223372036ull));
}
END_TEST

/* ---- booleans ---- */

START_TEST(t_getbool_vars)
{
	/* getBool(): "true" or "1"; anything else false */
	static char *const names[] = {"suppress_lock", "jwt_auth", "jwt_auth_debug",
				      "jwt_auth_local", "one_shot"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		static const struct {
			const char *v;
			int ret;
			bool want;
		} vals[] = {
		    {"true", 0, true},	   {"1", 0, true},	 {"false", 0, false},
		    {"0", 0, false},	   {"", 0, false},	 {"FALSE", 0, false},
		    {"f", 0, false},	   {"TRUE", -EINVAL, 0}, {"True", -EINVAL, 0},
		    {"t", -EINVAL, 0},	   {"yes", -EINVAL, 0},	 {"on", -EINVAL, 0},
		    {"true ", -EINVAL, 0},
		};
		for (size_t j = 0; j < sizeof(vals) / sizeof(vals[0]); j++) {
			char entry[64];
			snprintf(entry, sizeof(entry), "%s=%s", names[i], vals[j].v);
			ck_assert_int_eq(load1(entry), vals[j].ret);
			if (vals[j].ret) {
				ck_assert_msg(strncmp(err, names[i], strlen(names[i])) == 0, "%s",
					      err);
				continue;
			}
			bool got = i == 0   ? cfg.suppress_lock
				   : i == 1 ? cfg.jwt_auth
				   : i == 2 ? cfg.jwt_auth_debug
				   : i == 3 ? cfg.jwt_auth_local
					    : cfg.one_shot;
			ck_assert_msg(got == vals[j].want, "%s", entry);
			ir_wd_config_release(&cfg);
		}
	}
	ck_assert_int_eq(load1("suppress_lock=TRUE"), -EINVAL);
	ck_assert_str_eq(err, "suppress_lock: \"TRUE\" is ambiguous: of-watchdog reads only "
			      "\"true\" or \"1\" as true (use true or false)");
	ck_assert_int_eq(load1("one_shot=yes"), -EINVAL);
	ck_assert_str_eq(err, "one_shot: \"yes\" is not a boolean (use true or false)");
}
END_TEST

START_TEST(t_buffer_http)
{
	/* getBools(envMap, "buffer_http", "http_buffer_req_body"): either */
	ck_assert_int_eq(load1("buffer_http=true"), 0);
	ck_assert(cfg.buffer_http);
	ir_wd_config_release(&cfg);
	ck_assert_int_eq(load1("http_buffer_req_body=1"), 0);
	ck_assert(cfg.buffer_http);
	ir_wd_config_release(&cfg);
	char *env[] = {"fprocess=cat", "buffer_http=false", "http_buffer_req_body=true", NULL};
	ck_assert_int_eq(load(env), 0);
	ck_assert(cfg.buffer_http);
	ir_wd_config_release(&cfg);
	ck_assert_int_eq(load1("http_buffer_req_body=false"), 0);
	ck_assert(!cfg.buffer_http);
	ir_wd_config_release(&cfg);
	ck_assert_int_eq(load1("http_buffer_req_body=maybe"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "http_buffer_req_body: \"maybe\""));
}
END_TEST

START_TEST(t_prefix_logs)
{
	/* strconv.ParseBool; default true */
	static const struct {
		char *entry;
		bool want;
	} ok[] = {
	    {"prefix_logs=false", false}, {"prefix_logs=0", false},   {"prefix_logs=F", false},
	    {"prefix_logs=False", false}, {"prefix_logs=true", true}, {"prefix_logs=T", true},
	    {"prefix_logs=TRUE", true},	  {"prefix_logs=", true},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_int_eq(load1(ok[i].entry), 0);
		ck_assert_msg(cfg.prefix_logs == ok[i].want, "%s", ok[i].entry);
		ir_wd_config_release(&cfg);
	}
	/* deliberate: of-watchdog keeps true for an unparsable value */
	ck_assert_int_eq(load1("prefix_logs=no"), -EINVAL);
	ck_assert_str_eq(err, "prefix_logs: \"no\" is not a boolean (use true or false)");
}
END_TEST

START_TEST(t_log_callid)
{
	/* "1", else strconv.ParseBool with the error ignored */
	static const struct {
		char *entry;
		bool want;
	} ok[] = {
	    {"log_callid=1", true},  {"log_callid=true", true},	  {"log_callid=T", true},
	    {"log_callid=0", false}, {"log_callid=false", false}, {"log_callid=", false},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_int_eq(load1(ok[i].entry), 0);
		ck_assert_msg(cfg.log_callid == ok[i].want, "%s", ok[i].entry);
		ir_wd_config_release(&cfg);
	}
	/* deliberate: of-watchdog reads an unparsable value as false */
	ck_assert_int_eq(load1("log_callid=2"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "log_callid: \"2\""));
}
END_TEST

/* ---- every error names its variable ---- */

START_TEST(t_errors_name_variable)
{
	static char *const bad[][2] = {
	    {"mode=x", "mode"},
	    {"port=x", "port"},
	    {"read_timeout=x", "read_timeout"},
	    {"write_timeout=x", "write_timeout"},
	    {"exec_timeout=x", "exec_timeout"},
	    {"healthcheck_interval=x", "healthcheck_interval"},
	    {"max_inflight=x", "max_inflight"},
	    {"log_buffer_size=x", "log_buffer_size"},
	    {"suppress_lock=x", "suppress_lock"},
	    {"buffer_http=x", "buffer_http"},
	    {"http_buffer_req_body=x", "http_buffer_req_body"},
	    {"prefix_logs=x", "prefix_logs"},
	    {"log_callid=x", "log_callid"},
	    {"jwt_auth=x", "jwt_auth"},
	    {"jwt_auth_debug=x", "jwt_auth_debug"},
	    {"jwt_auth_local=x", "jwt_auth_local"},
	    {"one_shot=x", "one_shot"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_lt(load1(bad[i][0]), 0);
		char prefix[64];
		snprintf(prefix, sizeof(prefix), "%s: \"x\" ", bad[i][1]);
		ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "%s -> %s", bad[i][0],
			      err);
		assert_zeroed();
	}
}
END_TEST

START_TEST(t_error_value_quoted)
{
	/* control bytes escaped, long values cut */
	ck_assert_int_eq(load1("exec_timeout=1\n\"x"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "exec_timeout: \"1\\n\\\"x\" is not"));
	char entry[200] = "port=";
	memset(entry + 5, '9', 150);
	entry[155] = '\0';
	ck_assert_int_eq(load1(entry), -ERANGE);
	ck_assert_ptr_nonnull(strstr(err, "9999...\" is out of range"));
}
END_TEST

START_TEST(t_err_buffer_limits)
{
	/* NULL or tiny error buffers are fine */
	char *env[] = {"fprocess=cat", "exec_timeout=10x", NULL};
	ck_assert_int_eq(ir_wd_config_load(&cfg, env, NULL, 0), -EINVAL);
	char tiny[8];
	memset(tiny, 'z', sizeof(tiny));
	ck_assert_int_eq(ir_wd_config_load(&cfg, env, tiny, sizeof(tiny)), -EINVAL);
	ck_assert_str_eq(tiny, "exec_ti");
	/* success clears a stale message */
	char msg[64] = "stale";
	char *good[] = {"fprocess=cat", NULL};
	ck_assert_int_eq(ir_wd_config_load(&cfg, good, msg, sizeof(msg)), 0);
	ck_assert_str_eq(msg, "");
}
END_TEST

/* ---- release ---- */

START_TEST(t_release)
{
	char *env[] = {"fprocess=python3  index.py --x ",
		       "content_type=text/plain",
		       "static_path=/x",
		       "ready_path=/r",
		       "upstream_url=http://u",
		       NULL};
	ck_assert_int_eq(load(env), 0);
	ck_assert_uint_eq(cfg.argc, 5);
	ir_wd_config_release(&cfg);
	assert_zeroed();
	ir_wd_config_release(&cfg); /* twice */
	ir_wd_config_release(NULL);
	/* a struct can be reloaded after release, many times */
	for (int i = 0; i < 100; i++) {
		ck_assert_int_eq(load(env), 0);
		ir_wd_config_release(&cfg);
	}
}
END_TEST

/* ---- ir_duration_parse: Go's time.ParseDuration ---- */

START_TEST(t_duration_parse)
{
	static const struct {
		const char *s;
		uint64_t ns;
	} ok[] = {
	    {"0", 0},
	    {"+0", 0},
	    {"-0", 0},
	    {"0s", 0},
	    {"-0s", 0},
	    {"5s", S(5)},
	    {"+5s", S(5)},
	    {"1m30s", S(90)},
	    {"1.5h", S(5400)},
	    {"300ms", MS(300)},
	    {"2us", 2000},
	    {"2\xc2\xb5s", 2000}, /* µ U+00B5 */
	    {"2\xce\xbcs", 2000}, /* μ U+03BC */
	    {"7ns", 7},
	    {"1h2m3.5s", S(3723) + MS(500)},
	    {"3s2h", S(7203)},
	    {"1s1s", S(2)},
	    {".5s", MS(500)},
	    {"5.s", S(5)},
	    {"0.1s", MS(100)},
	    {"1.001us", 1001},
	    {"1.0000000001s", S(1)}, /* fraction below 1ns: truncated, as Go */
	    {"0.9999999999ns", 0},
	    {"100.00000000000000000000000000001ms", MS(100)}, /* long fraction */
	    {"9223372036854775807ns", IR_DURATION_MAX_NS},
	    {"2562047h47m16.854775807s", IR_DURATION_MAX_NS},
	    {"2562047.7880152155h", 9223372036854775800ull},
	    /* float64 fraction arithmetic, as Go (exact math: 1199999999999) */
	    {"0.3333333333333333333h", 1200000000000ull},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint64_t ns = 12345;
		ck_assert_msg(ir_duration_parse(ok[i].s, &ns) == 0, "%s", ok[i].s);
		ck_assert_msg(ns == ok[i].ns, "%s: %llu", ok[i].s, (unsigned long long)ns);
	}
	static const struct {
		const char *s;
		int ret;
	} bad[] = {
	    {"", -EINVAL},
	    {"+", -EINVAL},
	    {"-", -EINVAL},
	    {"5", -EINVAL}, /* a bare number has no unit */
	    {"00", -EINVAL},
	    {"1.5", -EINVAL},
	    {"abc", -EINVAL},
	    {"10x", -EINVAL},
	    {"s", -EINVAL},
	    {".s", -EINVAL},
	    {"-.s", -EINVAL},
	    {".", -EINVAL},
	    {"1h-2m", -EINVAL},
	    {"--1s", -EINVAL},
	    {"+-1s", -EINVAL},
	    {" 5s", -EINVAL},
	    {"5s ", -EINVAL},
	    {"5 s", -EINVAL},
	    {"1e3s", -EINVAL},
	    {"5S", -EINVAL},
	    {"5sec", -EINVAL},
	    {"5\xc2s", -EINVAL},
	    {"-1s", -ERANGE}, /* we have no negative durations */
	    {"-1ns", -ERANGE},
	    {"-9223372036854775808ns", -ERANGE},
	    {"9223372036854775808ns", -ERANGE},
	    {"2562047h47m16.854775808s", -ERANGE},
	    {"2562048h", -ERANGE},
	    {"99999999999999999999s", -ERANGE},
	    {"9223372036854775807ns1ns", -ERANGE},
	    {"18446744073709551616ns", -ERANGE},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t ns = 12345;
		ck_assert_msg(ir_duration_parse(bad[i].s, &ns) == bad[i].ret, "%s", bad[i].s);
		ck_assert_uint_eq(ns, 12345);
	}
}
END_TEST

START_TEST(t_wd_duration_parse)
{
	/* parseIntOrDurationValue(): Atoi >= 0 is seconds, else ParseDuration */
	static const struct {
		const char *s;
		int ret;
		uint64_t ns;
	} cases[] = {
	    {"10", 0, S(10)}, /* Test_IntAsString_parseIntOrDurationValue */
	    {"10s", 0, S(10)},
	    {"0", 0, 0}, /* Test_ZeroAsString_parseIntOrDurationValue */
	    {"+5", 0, S(5)},
	    {"007", 0, S(7)},
	    {"00", 0, 0},
	    {"-0", 0, 0},
	    {"1m30s", 0, S(90)},
	    {"9223372036", 0, S(9223372036ull)},
	    {"", -EINVAL, 0}, /* the loader treats "" as unset */
	    {"this is not good", -EINVAL, 0},
	    {"10x", -EINVAL, 0},
	    {"-5", -ERANGE, 0},
	    {"-1s", -ERANGE, 0},
	    {"9223372037", -ERANGE, 0},
	    {"99999999999999999999", -ERANGE, 0},
	    {"-99999999999999999999", -ERANGE, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t ns = 12345;
		ck_assert_msg(ir_wd_duration_parse(cases[i].s, &ns) == cases[i].ret, "%s",
			      cases[i].s);
		ck_assert_msg(ns == (cases[i].ret ? 12345 : cases[i].ns), "%s", cases[i].s);
	}
}
END_TEST

START_TEST(t_duration_format)
{
	/* Go's Duration.String() */
	static const struct {
		uint64_t ns;
		const char *s;
	} cases[] = {
	    {0, "0s"},
	    {1, "1ns"},
	    {999, "999ns"},
	    {1000, "1\xc2\xb5s"},
	    {1500, "1.5\xc2\xb5s"},
	    {MS(1), "1ms"},
	    {1500000, "1.5ms"},
	    {MS(300), "300ms"},
	    {999999999, "999.999999ms"},
	    {S(1), "1s"},
	    {S(30), "30s"},
	    {S(90), "1m30s"},
	    {S(60), "1m0s"},
	    {S(3600), "1h0m0s"},
	    {S(5400), "1h30m0s"},
	    {S(3723) + MS(500), "1h2m3.5s"},
	    {S(1) + 1, "1.000000001s"},
	    {IR_DURATION_MAX_NS, "2562047h47m16.854775807s"},
	};
	char buf[40];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(ir_duration_format(cases[i].ns, buf, sizeof(buf)), 0);
		ck_assert_str_eq(buf, cases[i].s);
		/* and back */
		uint64_t ns;
		ck_assert_int_eq(ir_duration_parse(buf, &ns), 0);
		ck_assert_uint_eq(ns, cases[i].ns);
	}
	ck_assert_int_eq(ir_duration_format(S(90), buf, 5), -ENOSPC);
	ck_assert_str_eq(buf, "1m30");
	ck_assert_int_eq(ir_duration_format(S(90), buf, 6), 0);
	ck_assert_int_eq(ir_duration_format(S(90), NULL, 0), -ENOSPC);
}
END_TEST

/* ---- the start-up line ---- */

START_TEST(t_log_line)
{
	char *env[] = {"fprocess=python3 index.py", "exec_timeout=1m30s", "write_timeout=500ms",
		       NULL};
	ck_assert_int_eq(load(env), 0);
	char line[1024];
	ck_assert_int_eq(ir_wd_config_log(&cfg, line, sizeof(line)), 0);
	ck_assert_str_eq(
	    line, "mode=streaming fprocess=\"python3 index.py\" "
		  "content_type=\"application/octet-stream\" port=8080 metrics_port=8081 "
		  "read_timeout=30s write_timeout=500ms exec_timeout=1m30s "
		  "healthcheck_interval=500ms max_inflight=0 ready_path=\"\" suppress_lock=false "
		  "prefix_logs=true log_buffer_size=65536 log_callid=false jwt_auth=false "
		  "jwt_auth_debug=false jwt_auth_local=false one_shot=false "
		  "IROUTE_MAX_CONNECTIONS=1024 IROUTE_MAX_CONNECTIONS_PER_IP=512 "
		  "IROUTE_MAX_HEADER_BYTES=65536 IROUTE_MAX_BODY_BYTES=67108864");
	/* truncation is reported and the line stays terminated */
	char small[16];
	ck_assert_int_eq(ir_wd_config_log(&cfg, small, sizeof(small)), -ENOSPC);
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	ir_wd_config_release(&cfg);

	char *h[] = {"mode=http", "fprocess=node index.js", "upstream_url=http://127.0.0.1:3000",
		     "http_buffer_req_body=true", NULL};
	ck_assert_int_eq(load(h), 0);
	ck_assert_int_eq(ir_wd_config_log(&cfg, line, sizeof(line)), 0);
	ck_assert_ptr_nonnull(strstr(line,
				     "mode=http fprocess=\"node index.js\" "
				     "upstream_url=\"http://127.0.0.1:3000\" buffer_http=true "
				     "port=8080"));
	ck_assert_ptr_null(strstr(line, "content_type"));
	ir_wd_config_release(&cfg);

	char *st[] = {"mode=static", "fprocess=ignored", NULL};
	ck_assert_int_eq(load(st), 0);
	ck_assert_int_eq(ir_wd_config_log(&cfg, line, sizeof(line)), 0);
	ck_assert_ptr_nonnull(strstr(line, "mode=static static_path=\"/home/app/public\" port="));
	ck_assert_ptr_null(strstr(line, "fprocess"));
	ir_wd_config_release(&cfg);

	char *ir[] = {"mode=iroute", "port=0", NULL};
	ck_assert_int_eq(load(ir), 0);
	ck_assert_int_eq(ir_wd_config_log(&cfg, line, sizeof(line)), 0);
	ck_assert_ptr_nonnull(strstr(line, "mode=iroute port=0 metrics_port=8081"));
}
END_TEST

Suite *wdconfig_suite(void)
{
	Suite *s = suite_create("wdconfig");
	TCase *tc = tcase_create("load");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, t_defaults);
	tcase_add_test(tc, t_default_mode_streaming);
	tcase_add_test(tc, t_empty_env_needs_fprocess);
	tcase_add_test(tc, t_env_syntax);
	tcase_add_test(tc, t_unknown_keys_ignored);
	tcase_add_test(tc, t_fprocess_aliases);
	tcase_add_test(tc, t_upstream_aliases);
	tcase_add_test(tc, t_strings);
	tcase_add_test(tc, t_argv_split);
	tcase_add_test(tc, t_argv_leading_space_rejected);
	tcase_add_test(tc, t_modes);
	tcase_add_test(tc, t_mode_errors);
	tcase_add_test(tc, t_mode_requirements);
	tcase_add_test(tc, t_port);
	tcase_add_test(tc, t_max_inflight);
	tcase_add_test(tc, t_hardening_limits);
	tcase_add_test(tc, t_log_buffer_size);
	tcase_add_test(tc, t_timeouts);
	tcase_add_test(tc, t_write_timeout_zero);
	tcase_add_test(tc, t_duration_errors);
	tcase_add_test(tc, t_getbool_vars);
	tcase_add_test(tc, t_buffer_http);
	tcase_add_test(tc, t_prefix_logs);
	tcase_add_test(tc, t_log_callid);
	tcase_add_test(tc, t_errors_name_variable);
	tcase_add_test(tc, t_error_value_quoted);
	tcase_add_test(tc, t_err_buffer_limits);
	tcase_add_test(tc, t_release);
	tcase_add_test(tc, t_log_line);
	suite_add_tcase(s, tc);

	tc = tcase_create("duration");
	tcase_add_test(tc, t_duration_parse);
	tcase_add_test(tc, t_wd_duration_parse);
	tcase_add_test(tc, t_duration_format);
	suite_add_tcase(s, tc);
	return s;
}
