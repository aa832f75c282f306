/* exec.h - run fprocess once for one request: feed it stdin, collect or
 * stream its stdout, log its stderr line by line, enforce exec_timeout.
 *
 * Why this design: the serializing and streaming modes of of-watchdog fork
 * fprocess per request; one synchronous call that owns one child from fork
 * to reap is the whole contract, and poll() over the three pipes (plus a
 * pidfd) replaces Go's goroutines without threads: stdin is written only
 * when the pipe has room while stdout and stderr are drained, so a child
 * that writes a lot before it reads cannot deadlock us.  The child gets its
 * own process group so a timeout kills its children too.  Rejected:
 * posix_spawn (no portable way to close inherited non-CLOEXEC fds and to
 * reset ignored signals before exec), a thread per pipe (three threads per
 * request for what one poll() does).
 *
 * What of-watchdog does (executor/forking_runner.go commit 1c6daa7 for
 * streaming, executor/serializing_fork_runner.go commit bd635f4, logging.go
 * commit b58b39f, pkg/watchdog.go commit b88f5a2), and what we do:
 *   - Environment: the watchdog's own environment (os.Environ()) followed by
 *     one "Http_<Header>=<first value>" per request header with '-' turned
 *     into '_' (Go's canonical header case, e.g. Http_Content_Type,
 *     Http_X_Call_Id), then Http_Method, Http_Query (only when the raw query
 *     is non-empty), Http_Path (only when non-empty) and
 *     Http_Transfer_Encoding (only when set).  Go's exec keeps the last
 *     value of a duplicated key; so do we (ir_exec_req.env).  Building
 *     these strings from a request is the HTTP layer's job.
 *   - stderr: scanned into lines (bufio.Scanner, a trailing "\r" dropped)
 *     and logged as "stderr: <line>" with prefix_logs (plus Go's date and
 *     time), or the bare line without.  The name is the stream's, not the
 *     process's.  A line that does not fit log_buffer_size makes Scanner
 *     stop with "bufio.Scanner: token too long": nothing more is logged and
 *     the pipe is no longer drained.  Deliberate difference: we split such
 *     a line into pieces of log_buffer_size bytes and keep going.  The call
 *     id ("[id] " before the line) is ours: of-watchdog prints it only on
 *     its per-request access-log line (log_callid).
 *   - exec_timeout: a timer sends SIGKILL (cmd.Process.Kill()) to the
 *     process only; its children live on.  Deliberate difference: we send
 *     SIGKILL to the whole process group.
 *   - HTTP answer (serializing): start failure is 500 with Go's error text
 *     as body.  Any other failure (non-zero exit, killed by a signal, killed
 *     by exec_timeout) is, through a bug (it returns the nil start error
 *     instead of the wait error), 200 with an empty body: stdout is
 *     dropped.  In streaming mode every outcome is 200 because the status
 *     line has gone out (or Go sends 200 for an empty handler).  The http
 *     mode answers exec_timeout with 504 and an empty body.
 *
 * The HTTP table the watchdog uses (ir_exec_http_status()), buffered mode:
 *   outcome                          status  body
 *   exit 0                           200     stdout (res->out)
 *   exit non-zero / killed by signal 500     res->error ("exit status 3",
 *                                            "signal: killed", Go's text)
 *   exec_timeout                     504     res->error
 *   fprocess could not be started    500     res->error ("fprocess \"x\":
 *                                            No such file or directory")
 *   output above max_output, other   500     res->error
 * This is what of-watchdog's serializing code means to do (it writes 500
 * and the error text for every error it sees) with the bug fixed, and 504
 * for a timeout as its http mode.  Streaming (on_stdout set): the HTTP
 * layer sends the status line with the first chunk; once it has, it can
 * no longer change the status, and on failure it should end the response
 * abnormally (no terminating chunk / close) rather than pretend success.
 * Before the first chunk it uses the table.
 */
#ifndef IROUTE_EXEC_H
#define IROUTE_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IR_EXEC_DEFAULT_LOG_BUFFER_SIZE 65536 /* of-watchdog's log_buffer_size default */
#define IR_EXEC_ERROR_LEN 256

/* Fill @buf with up to @len bytes of request body.  Returns the count
 * (> 0), 0 at end of body, or -errno to abort (the child is killed and
 * ir_exec_run() returns that value).  It may block; exec_timeout is checked
 * between calls. */
typedef ssize_t (*ir_exec_read_cb)(void *buf, size_t len, void *arg);

/* Receives stdout bytes in order as they arrive; @chunk is borrowed for the
 * call.  Return 0 to go on, non-zero to abort (the child's group is killed
 * and ir_exec_run() returns -ECANCELED). */
typedef int (*ir_exec_chunk_cb)(const void *chunk, size_t len, void *arg);

/* Receives one finished stderr log line (prefixes applied, no newline, NUL
 * terminated, borrowed for the call). */
typedef void (*ir_exec_line_cb)(const char *line, void *arg);

struct ir_exec_req {
	/* Command, NULL-terminated, argv[0] looked up in PATH (execvp rules).
	 * Borrowed for the call, like every pointer here. */
	char *const *argv;

	/* Base environment, NULL = environ; @env entries ("K=V", e.g. the
	 * Http_* variables) are added after it, replacing a base entry with
	 * the same key; among @env the later entry wins.  Either may be NULL. */
	char *const *base_env;
	char *const *env;

	/* Request body: @stdin_read when set, else @stdin_data/@stdin_len
	 * (NULL/0 = empty body). */
	const void *stdin_data;
	size_t stdin_len;
	ir_exec_read_cb stdin_read;
	void *stdin_arg;

	/* Streaming: when set, stdout goes here and res->out stays NULL. */
	ir_exec_chunk_cb on_stdout;
	void *stdout_arg;

	uint64_t timeout_ns; /* exec_timeout; 0 = none */
	size_t max_output;   /* stdout bytes allowed (streamed too); 0 = no limit */

	/* stderr logging: prefix_logs adds "stderr: ", call_id (NULL = none)
	 * adds "[call_id] " before that; log_buffer_size 0 means the default.
	 * Lines go to @on_stderr when set, else to ir_log(IR_LOG_INFO,
	 * "fprocess", ...) (whose 1 KiB line limit then truncates). */
	bool prefix_logs;
	const char *call_id;
	size_t log_buffer_size;
	ir_exec_line_cb on_stderr;
	void *stderr_arg;
};

struct ir_exec_result {
	/* Same as ir_exec_run()'s return value. */
	int rc;

	/* Valid when the child was reaped (rc 0, and also on -ETIMEDOUT,
	 * -EFBIG, -ECANCELED, where it is our SIGKILL). */
	bool exited;   /* exited normally; exit_code valid */
	int exit_code; /* 0-255 */
	bool signaled; /* killed by signal signo */
	int signo;
	pid_t pid; /* the child, also its process group id; 0 if none */

	/* Buffered stdout, owned (NULL if empty or streamed; when non-NULL a
	 * NUL follows the last byte, not counted in out_len). */
	unsigned char *out;
	size_t out_len;
	uint64_t out_total; /* stdout bytes read, buffered or streamed */
	uint64_t duration_ns;

	/* Human text for every outcome other than exit 0, "" otherwise. */
	char error[IR_EXEC_ERROR_LEN];
};

/* Run req->argv once and wait for it (and for EOF on its stdout and
 * stderr, which a background grandchild may hold open, as with Go's
 * cmd.Wait()).  @res need not be initialised; release it with
 * ir_exec_result_release() whatever the return value.
 * Returns:
 *   0           the child ran and was reaped; look at exited/exit_code and
 *               signaled/signo (a non-zero exit is not an error here)
 *   -ENOENT, -EACCES, -ENOEXEC, ...
 *               fprocess could not be started; error names the command:
 *               `fprocess "nosuch": No such file or directory`
 *   -ETIMEDOUT  timeout_ns passed: the group got SIGKILL
 *   -EFBIG      stdout passed max_output: the group got SIGKILL
 *   -ECANCELED  on_stdout asked to stop: the group got SIGKILL
 *   -errno      from stdin_read (group killed), or pipe()/fork()/malloc()
 *               failures (-EMFILE, -EAGAIN, -ENOMEM)
 *   -EINVAL     argv NULL or empty
 * Our SIGPIPE from writing to a child that closed its stdin is swallowed
 * (the rest of the body is dropped, as in Go); the calling thread's signal
 * mask is restored on return.  Safe to call from several threads at once
 * (each call owns its child; only the child's pid is waited for). */
int ir_exec_run(const struct ir_exec_req *req, struct ir_exec_result *res);

/* Free res->out and zero @res.  Safe on a zeroed struct and twice. */
void ir_exec_result_release(struct ir_exec_result *res);

/* The HTTP status for @res from the table above: 200, 500 or 504. */
int ir_exec_http_status(const struct ir_exec_result *res);

#endif
