/* wdconfig.h - the watchdog's configuration, read from the environment the
 * way OpenFaaS's of-watchdog reads it.
 *
 * Why this design: the watchdog must be a drop-in replacement, so every
 * variable name, alias, default and value syntax below is of-watchdog's
 * (config/config.go, newest version read: commit 2c1b372), parsed once into
 * one typed struct the way of-watchdog's config.New() does.  The environment
 * is passed in explicitly (callers pass environ) so tests never touch the
 * process environment.  Rejected: getenv() lookups scattered through the
 * watchdog (untestable, and the alias rules would be repeated).
 *
 * Variables (of-watchdog default in brackets):
 *   mode                  streaming|serializing|http|static, and our iroute
 *                         [streaming]
 *   fprocess, function_process
 *                         command line; function_process wins when both are
 *                         set, even when it is empty [""]
 *   upstream_url, http_upstream_url
 *                         http mode target; http_upstream_url wins [""]
 *   port                  [8080]
 *   read_timeout, write_timeout, exec_timeout
 *                         [30s each; older of-watchdog versions, e.g.
 *                         commit e479ad7 (ready_path, no JWT), used 10s]
 *   healthcheck_interval  [the effective write_timeout]
 *   max_inflight          [0 = no limit]
 *   content_type          [application/octet-stream]
 *   static_path           [/home/app/public]
 *   ready_path            [""]
 *   suppress_lock, buffer_http, http_buffer_req_body, jwt_auth,
 *   jwt_auth_debug, jwt_auth_local, one_shot
 *                         [false]; true is "true" or "1"; buffer_http and
 *                         http_buffer_req_body are OR-ed
 *   prefix_logs           [true]; strconv.ParseBool spellings
 *   log_callid            [false]; "1" or strconv.ParseBool spellings
 *   log_buffer_size       [65536 = bufio.MaxScanTokenSize]
 * Ours, not of-watchdog's (the hardening limits; of-watchdog has none of
 * them, Go's http.Server only caps headers at 1 MiB):
 *   IROUTE_MAX_CONNECTIONS        open client connections at once; more
 *                                 are accepted and closed at once [1024]
 *   IROUTE_MAX_CONNECTIONS_PER_IP the same per client address, 0 = off
 *                                 [512: half, so that one client cannot
 *                                 take every slot, while a gateway, which
 *                                 is one address, still gets most]
 *   IROUTE_MAX_HEADER_BYTES       request line + headers; more is 431
 *                                 [65536]
 *   IROUTE_MAX_BODY_BYTES         request body, 0 = no cap; more is 413,
 *                                 from Content-Length before any byte of
 *                                 the body is read, or as soon as a chunked
 *                                 body passes it [67108864 = the transport's
 *                                 payload cap]
 * read_timeout is also the deadline for reading a whole request (Go's
 * ReadTimeout: request line, headers and body), counted from the moment
 * the connection waits for it, however the bytes trickle in.
 * Not read from the environment, as in of-watchdog: metrics_port (always
 * 8081) and CGI header injection (always on).  hard_timeout was renamed
 * exec_timeout long ago and is no longer read.
 *
 * Value syntax, as of-watchdog:
 *   - The environment is KEY=VALUE split at the first '='; keys are case
 *     sensitive; an entry without '=' or with an empty key is skipped; when
 *     a key appears twice the later entry wins (of-watchdog builds a map).
 *   - Durations: a decimal integer >= 0 is seconds ("10", "+10", "007");
 *     anything else is a Go duration (ir_duration_parse(): "1m30s", "500ms",
 *     "1.5h", "2us").
 *   - Integers: strconv.Atoi (optional sign, decimal digits, nothing else).
 *   - fprocess is split into argv on every single space (strings.Split(s,
 *     " ")): "a  b" gives {"a", "", "b"}, a trailing space gives a trailing
 *     "" argument, tabs are not separators, quotes are not interpreted.
 *
 * Deliberate differences (our issue: "unknown or malformed values: a clear
 * error naming the variable"; everything else is exactly of-watchdog):
 *   - A malformed duration ("10x", "abc", "1h-2m", "5 s") is -EINVAL.
 *     of-watchdog silently uses the default.
 *   - A negative duration ("-1s", or "-5", which of-watchdog treats as
 *     malformed) is -ERANGE.  of-watchdog accepts "-1s" and then behaves
 *     as if there were no timeout, except that a negative
 *     healthcheck_interval makes its SIGTERM drain wait forever.
 *   - A duration above Go's maximum (2562047h47m16.854775807s) is -ERANGE.
 *     of-watchdog falls back to the default, or for integer seconds above
 *     9223372036 silently wraps the multiplication.
 *   - port, max_inflight: a non-integer is -EINVAL (of-watchdog silently
 *     uses 0, i.e. a kernel-chosen port / no limit); a port outside
 *     0-65535 or a negative max_inflight is -ERANGE (of-watchdog fails at
 *     listen() / treats it as no limit).
 *   - log_buffer_size must be > 0: of-watchdog accepts 0 (its
 *     bufio.Scanner then stops at once with "token too long" and no
 *     function output is logged) and panics on a negative size
 *     (make([]byte, n) in executor/logging.go).
 *   - Booleans: a value of-watchdog would read as false but that does not
 *     look false is -EINVAL.  For the "true"/"1" variables this includes
 *     "TRUE", "True", "t" and "T", which of-watchdog silently reads as
 *     false; "false", "0", "f", "F", "FALSE", "False" are false as there.
 *     prefix_logs and log_callid accept what strconv.ParseBool accepts;
 *     of-watchdog ignores other values (prefix_logs stays true, log_callid
 *     becomes false).
 *   - An empty value means "not set" for every non-string variable.  This
 *     is of-watchdog's result everywhere except port (of-watchdog: 0) and
 *     log_buffer_size (of-watchdog: error).  String variables (fprocess,
 *     upstream_url, content_type, static_path, ready_path) keep an empty
 *     value as the value, as of-watchdog does.
 *   - mode: an unknown value is -EINVAL (of-watchdog panics at start-up
 *     with "unknown watchdog mode: 0").  "afterburn" is -EINVAL too: its
 *     name still parses in of-watchdog but no handler exists any more, so
 *     it panics the same way.  "inproc" (of-watchdog's Go-library mode,
 *     handler set with SetHandler()) is -EINVAL with a pointer to our
 *     iroute mode, which is its C equivalent.
 *   - mode=http without upstream_url, and mode=static with static_path set
 *     to "", are -EINVAL here; of-watchdog exits with log.Fatal when it
 *     builds the handler, a moment later.  static_path unset is not an
 *     error (default /home/app/public), as in of-watchdog.  The URL syntax
 *     itself is checked by the http mode, not here.
 *   - streaming, serializing and http need fprocess, as in of-watchdog
 *     (whose error text we keep); we also reject an fprocess that starts
 *     with a space (argv[0] would be "", which of-watchdog fails to exec
 *     on every request).  static and iroute need none.
 *   - write_timeout of 0 is -EINVAL, as in of-watchdog ("HTTP write timeout
 *     must be over 0s").
 *
 * Other zero values keep of-watchdog's meaning: read_timeout 0 = no read
 * timeout, exec_timeout 0 = no exec timeout, max_inflight 0 = no limit,
 * port 0 = kernel-chosen.  healthcheck_interval 0 is accepted; of-watchdog
 * then waits forever after SIGTERM (time.Tick(0) is nil): the watchdog
 * decides what 0 means for us.
 */
#ifndef IROUTE_WDCONFIG_H
#define IROUTE_WDCONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IR_NS_PER_SEC 1000000000ull

/* of-watchdog's defaults (config/config.go). */
#define IR_WD_DEFAULT_PORT 8080
#define IR_WD_METRICS_PORT 8081
#define IR_WD_DEFAULT_TIMEOUT_NS (30 * IR_NS_PER_SEC)
#define IR_WD_DEFAULT_CONTENT_TYPE "application/octet-stream"
#define IR_WD_DEFAULT_STATIC_PATH "/home/app/public"
#define IR_WD_DEFAULT_LOG_BUFFER_SIZE 65536 /* Go's bufio.MaxScanTokenSize */
#define IR_WD_DEFAULT_MAX_CONNECTIONS 1024
#define IR_WD_DEFAULT_MAX_CONNECTIONS_PER_IP 512
#define IR_WD_DEFAULT_MAX_HEADER_BYTES 65536
#define IR_WD_DEFAULT_MAX_BODY_BYTES (64ull << 20)

/* Largest duration: Go's time.Duration is int64 nanoseconds. */
#define IR_DURATION_MAX_NS ((uint64_t)INT64_MAX)

enum ir_wd_mode {
	IR_WD_MODE_STREAMING = 1, /* fork fprocess per request, stream stdin/stdout */
	IR_WD_MODE_SERIALIZING,	  /* fork per request, buffer request and response */
	IR_WD_MODE_HTTP,	  /* start fprocess once, reverse-proxy to upstream_url */
	IR_WD_MODE_STATIC,	  /* serve files under static_path */
	IR_WD_MODE_IROUTE,	  /* ours: in-process C handler, no fprocess */
};

struct ir_wd_config {
	enum ir_wd_mode mode;

	/* Owned strings, never NULL after a successful load. */
	char *fprocess;	    /* as given ("" if unset) */
	char *upstream_url; /* "" if unset */
	char *content_type;
	char *static_path;
	char *ready_path; /* "" = /_/ready answers from the lock and the limiter */

	/* fprocess split on ' ' (see above); NULL-terminated, owned, argc
	 * entries.  NULL with argc 0 when fprocess is "". */
	char **argv;
	size_t argc;

	uint16_t port;
	uint16_t metrics_port; /* always IR_WD_METRICS_PORT */

	/* Nanoseconds, at most IR_DURATION_MAX_NS. */
	uint64_t read_timeout_ns;
	uint64_t write_timeout_ns; /* > 0 */
	uint64_t exec_timeout_ns;
	uint64_t healthcheck_interval_ns;

	uint32_t max_inflight;		 /* 0 = no limit */
	uint32_t max_connections;	 /* >= 1 */
	uint32_t max_connections_per_ip; /* 0 = no limit */
	size_t max_header_bytes;	 /* >= 1024 */
	uint64_t max_body_bytes;	 /* 0 = no cap */
	size_t log_buffer_size;		 /* > 0 */

	bool inject_cgi_headers; /* always true, as in of-watchdog */
	bool suppress_lock;
	bool buffer_http; /* buffer_http || http_buffer_req_body */
	bool prefix_logs;
	bool log_callid;
	bool jwt_auth;
	bool jwt_auth_debug;
	bool jwt_auth_local;
	bool one_shot;
};

/* Fill @cfg from @envp (a NULL-terminated "KEY=VALUE" array, e.g. environ;
 * borrowed for the call; NULL = empty environment).  @cfg need not be
 * initialised.  Returns 0, -EINVAL or -ERANGE with a message naming the
 * variable in @err (e.g. `exec_timeout: "10x" is not a duration (use
 * seconds like 10, or 1m30s)`), or -ENOMEM.  On error @cfg holds nothing to
 * release (it is zeroed); on success release it with ir_wd_config_release().
 * @err may be NULL. */
int ir_wd_config_load(struct ir_wd_config *cfg, char *const *envp, char *err, size_t errlen);

/* Free what @cfg owns and zero it.  Safe on a zeroed struct and twice. */
void ir_wd_config_release(struct ir_wd_config *cfg);

/* One line with the effective values for the start-up log, e.g.
 * `mode=streaming fprocess="python3 index.py" port=8080 ... read_timeout=30s`.
 * Fields a mode does not use are left out.  Durations are printed as Go
 * prints them.  Returns 0, or -ENOSPC when @buf was too small (it then
 * holds a truncated, NUL-terminated line). */
int ir_wd_config_log(const struct ir_wd_config *cfg, char *buf, size_t len);

/* "streaming", "serializing", "http", "static", "iroute"; "unknown" else. */
const char *ir_wd_mode_name(enum ir_wd_mode mode);

/* Go's time.ParseDuration: [-+]?([0-9]*(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))+
 * or a bare "0" (optionally signed).  "1h2m3.5s", ".5s", "1.5h"; fractions
 * are converted as Go converts them.  A bare integer other than 0 has no
 * unit and is -EINVAL here (only the watchdog rule below reads it as
 * seconds).  Returns 0, -EINVAL (syntax), or -ERANGE (above
 * IR_DURATION_MAX_NS, or negative and not zero: we have no negative
 * durations). */
int ir_duration_parse(const char *s, uint64_t *ns);

/* of-watchdog's rule for its duration variables (parseIntOrDurationValue):
 * a non-empty strconv.Atoi integer >= 0 is seconds, anything else goes to
 * ir_duration_parse().  Same return values; "" is -EINVAL (the loader
 * treats an empty value as unset before calling this). */
int ir_wd_duration_parse(const char *s, uint64_t *ns);

/* Print @ns as Go's Duration.String() does ("0s", "1.5ms", "2µs", "1m30s",
 * "1h0m0s").  Returns 0, or -ENOSPC if @len is too small (36 always
 * suffices). */
int ir_duration_format(uint64_t ns, char *buf, size_t len);

#endif
