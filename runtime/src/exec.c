/* exec.c - one fprocess run per call: fork, poll() over stdin/stdout/stderr
 * and a pidfd, SIGKILL to the process group on timeout, reap (see exec.h).
 *
 * Why fork()+execvpe() and not posix_spawn(): between the two the child must
 * mark every inherited fd close-on-exec (close_range), reset ignored signals
 * (a server usually ignores SIGPIPE, and ignored dispositions survive exec),
 * join its own process group and report why exec failed through a CLOEXEC
 * pipe.  The child only makes async-signal-safe calls, so fork() is safe in a
 * threaded caller.  The pidfd makes the child's exit a poll() event; without
 * one (kernel < 5.3) we look with WNOHANG every few milliseconds once the
 * pipes are closed.
 */
#include "iroute/exec.h"
#include "iroute/log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IO_CHUNK 65536
#define NOPIDFD_TICK_MS 5

extern char **environ;

/* What the child reports through the error pipe before _exit(127). */
enum child_stage { STAGE_SETUP = 1, STAGE_EXEC = 2 };

struct line_buf {
	char *buf;	   /* prefix, then up to cap bytes of the line, then NUL */
	size_t prefix_len; /* bytes of "[id] stderr: " at the front */
	size_t cap;
	size_t len;
	const struct ir_exec_req *req;
};

struct run {
	const struct ir_exec_req *req;
	struct ir_exec_result *res;
	pid_t pid;
	int in_fd, out_fd, err_fd, pidfd;
	bool reaped;
	int wstatus;

	/* stdin staging: data mode points into req->stdin_data. */
	const unsigned char *in_p;
	size_t in_left;
	unsigned char *in_buf; /* callback mode */
	bool in_eof;

	unsigned char *scratch; /* streaming stdout reads */
	size_t out_cap;
	struct line_buf lb;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static const char *cmd_name(const struct ir_exec_req *req)
{
	return req->argv[0];
}

/* ---- environment ---- */

static size_t key_len(const char *kv)
{
	const char *eq = strchr(kv, '=');
	return eq ? (size_t)(eq - kv) : strlen(kv);
}

static bool same_key(const char *a, const char *b)
{
	size_t la = key_len(a);
	return la == key_len(b) && !memcmp(a, b, la);
}

static bool key_in(const char *kv, char *const *list, size_t from)
{
	for (size_t i = from; list && list[i]; i++)
		if (same_key(kv, list[i]))
			return true;
	return false;
}

/* base (minus keys @env redefines) + env (minus entries redefined later).
 * The array is owned, the strings borrowed. */
static char **build_env(const struct ir_exec_req *req)
{
	char *const *base = req->base_env ? req->base_env : environ;
	char *const *env = req->env;
	size_t nb = 0, ne = 0, n = 0;
	while (base && base[nb])
		nb++;
	while (env && env[ne])
		ne++;
	char **out = malloc((nb + ne + 1) * sizeof(*out));
	if (!out)
		return NULL;
	for (size_t i = 0; i < nb; i++)
		if (!key_in(base[i], env, 0))
			out[n++] = base[i];
	for (size_t i = 0; i < ne; i++)
		if (!key_in(env[i], env, i + 1))
			out[n++] = env[i];
	out[n] = NULL;
	return out;
}

/* ---- child ---- */

static void child_fail(int errpipe, int stage, int err)
{
	int msg[2] = {stage, err};
	ssize_t w = write(errpipe, msg, sizeof(msg));
	(void)w;
	_exit(127);
}

/* Put @fd on @target, keeping it open across exec. */
static int child_place(int fd, int target)
{
	if (fd == target)
		return fcntl(fd, F_SETFD, 0);
	return dup2(fd, target) < 0 ? -1 : 0;
}

static void child_run(int in_r, int out_w, int err_w, int errpipe, char *const *argv,
		      char *const *envp)
{
	if (setpgid(0, 0) < 0)
		child_fail(errpipe, STAGE_SETUP, errno);

	/* Lift our ends above 2 first so dup2() cannot clobber one with
	 * another when the caller runs with 0, 1 or 2 closed. */
	int src[3] = {in_r, out_w, err_w};
	for (int i = 0; i < 3; i++)
		if (src[i] < 3 && (src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 3)) < 0)
			child_fail(errpipe, STAGE_SETUP, errno);
	for (int i = 0; i < 3; i++)
		if (child_place(src[i], i) < 0)
			child_fail(errpipe, STAGE_SETUP, errno);

	/* Everything else closes at exec. */
	if (syscall(SYS_close_range, 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */) < 0) {
		long max = sysconf(_SC_OPEN_MAX);
		if (max < 0 || max > 65536)
			max = 65536;
		for (int fd = 3; fd < max; fd++)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	execvpe(argv[0], argv, envp);
	child_fail(errpipe, STAGE_EXEC, errno);
}

/* ---- stderr lines ---- */

static int line_init(struct line_buf *lb, const struct ir_exec_req *req)
{
	char prefix[256];
	int n = 0;
	if (req->call_id)
		n = snprintf(prefix, sizeof(prefix), "[%.200s] ", req->call_id);
	if (req->prefix_logs)
		n += snprintf(prefix + n, sizeof(prefix) - (size_t)n, "stderr: ");
	lb->req = req;
	lb->prefix_len = (size_t)n;
	lb->cap = req->log_buffer_size ? req->log_buffer_size : IR_EXEC_DEFAULT_LOG_BUFFER_SIZE;
	lb->len = 0;
	lb->buf = malloc(lb->prefix_len + lb->cap + 1);
	if (!lb->buf)
		return -ENOMEM;
	memcpy(lb->buf, prefix, lb->prefix_len);
	return 0;
}

static void line_emit(struct line_buf *lb, bool newline)
{
	size_t len = lb->len;
	if (newline && len > 0 && lb->buf[lb->prefix_len + len - 1] == '\r')
		len--; /* as Go's bufio.ScanLines */
	lb->buf[lb->prefix_len + len] = '\0';
	if (lb->req->on_stderr)
		lb->req->on_stderr(lb->buf, lb->req->stderr_arg);
	else
		ir_log(IR_LOG_INFO, "fprocess", "%s", lb->buf);
	lb->len = 0;
}

static void line_feed(struct line_buf *lb, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			line_emit(lb, true);
			continue;
		}
		/* Split lazily, on the first byte that does not fit: a line of
		 * exactly cap bytes stays whole. */
		if (lb->len == lb->cap)
			line_emit(lb, false);
		lb->buf[lb->prefix_len + lb->len++] = p[i];
	}
}

static void line_finish(struct line_buf *lb)
{
	if (lb->len > 0)
		line_emit(lb, false);
}

/* ---- parent side ---- */

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static void kill_group(struct run *r)
{
	/* The group outlives its leader while members remain, and the
	 * leader's pid cannot be reused while the group exists. */
	kill(-r->pid, SIGKILL);
	if (!r->reaped)
		kill(r->pid, SIGKILL); /* in case setpgid had not happened yet */
}

static void reap_blocking(struct run *r)
{
	while (!r->reaped) {
		pid_t w = waitpid(r->pid, &r->wstatus, 0);
		if (w == r->pid || (w < 0 && errno != EINTR))
			r->reaped = true;
	}
}

static void try_reap(struct run *r)
{
	if (r->reaped)
		return;
	pid_t w = waitpid(r->pid, &r->wstatus, WNOHANG);
	if (w == r->pid || (w < 0 && errno == ECHILD))
		r->reaped = true;
}

/* Next stdin bytes into in_p/in_left; 0, or -errno from the callback. */
static int stdin_refill(struct run *r)
{
	const struct ir_exec_req *req = r->req;
	if (!req->stdin_read) {
		r->in_eof = true;
		return 0;
	}
	ssize_t n = req->stdin_read(r->in_buf, IO_CHUNK, req->stdin_arg);
	if (n < 0)
		return (int)n;
	if (n == 0) {
		r->in_eof = true;
		return 0;
	}
	r->in_p = r->in_buf;
	r->in_left = (size_t)(n > IO_CHUNK ? IO_CHUNK : n);
	return 0;
}

/* Write what the pipe takes.  0, or -errno from the body callback. */
static int stdin_pump(struct run *r)
{
	for (;;) {
		if (r->in_left == 0) {
			if (r->in_eof) {
				close_fd(&r->in_fd);
				return 0;
			}
			int rc = stdin_refill(r);
			if (rc < 0)
				return rc;
			continue;
		}
		ssize_t w = write(r->in_fd, r->in_p, r->in_left);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			/* EPIPE and the like: the child stopped reading;
			 * drop the rest of the body, as Go does. */
			close_fd(&r->in_fd);
			return 0;
		}
		r->in_p += w;
		r->in_left -= (size_t)w;
	}
}

/* One read from stdout.  0, -EFBIG, -ECANCELED or -ENOMEM. */
static int stdout_pump(struct run *r)
{
	const struct ir_exec_req *req = r->req;
	struct ir_exec_result *res = r->res;
	unsigned char *dst;
	size_t room;
	if (req->on_stdout) {
		dst = r->scratch;
		room = IO_CHUNK;
	} else {
		if (r->out_cap - res->out_len < IO_CHUNK + 1) {
			size_t ncap = r->out_cap ? r->out_cap * 2 : 2 * IO_CHUNK;
			unsigned char *nb = realloc(res->out, ncap);
			if (!nb)
				return -ENOMEM;
			res->out = nb;
			r->out_cap = ncap;
		}
		dst = res->out + res->out_len;
		room = r->out_cap - res->out_len - 1;
	}
	ssize_t n = read(r->out_fd, dst, room);
	if (n < 0) {
		if (errno != EINTR && errno != EAGAIN)
			close_fd(&r->out_fd);
		return 0;
	}
	if (n == 0) {
		close_fd(&r->out_fd);
		return 0;
	}
	res->out_total += (uint64_t)n;
	if (req->max_output && res->out_total > req->max_output)
		return -EFBIG;
	if (req->on_stdout)
		return req->on_stdout(dst, (size_t)n, req->stdout_arg) ? -ECANCELED : 0;
	res->out_len += (size_t)n;
	return 0;
}

static void stderr_pump(struct run *r)
{
	char buf[8192];
	ssize_t n = read(r->err_fd, buf, sizeof(buf));
	if (n < 0) {
		if (errno != EINTR && errno != EAGAIN)
			close_fd(&r->err_fd);
		return;
	}
	if (n == 0) {
		line_finish(&r->lb);
		close_fd(&r->err_fd);
		return;
	}
	line_feed(&r->lb, buf, (size_t)n);
}

/* The poll loop.  0 when the pipes are at EOF and the child is reaped,
 * else the -errno that made us kill the group. */
static int io_loop(struct run *r, uint64_t deadline)
{
	for (;;) {
		if (r->pidfd < 0 && !r->reaped)
			try_reap(r);
		if (r->out_fd < 0 && r->err_fd < 0 && r->reaped)
			return 0;

		struct pollfd p[4];
		int idx_in = -1, idx_out = -1, idx_err = -1, idx_pid = -1, np = 0;
		if (r->in_fd >= 0) {
			idx_in = np;
			p[np++] = (struct pollfd){.fd = r->in_fd, .events = POLLOUT};
		}
		if (r->out_fd >= 0) {
			idx_out = np;
			p[np++] = (struct pollfd){.fd = r->out_fd, .events = POLLIN};
		}
		if (r->err_fd >= 0) {
			idx_err = np;
			p[np++] = (struct pollfd){.fd = r->err_fd, .events = POLLIN};
		}
		if (r->pidfd >= 0 && !r->reaped) {
			idx_pid = np;
			p[np++] = (struct pollfd){.fd = r->pidfd, .events = POLLIN};
		}

		int timeout = -1;
		if (r->pidfd < 0 && !r->reaped)
			timeout = NOPIDFD_TICK_MS;
		if (deadline) {
			uint64_t t = now_ns();
			if (t >= deadline)
				return -ETIMEDOUT;
			uint64_t ms = (deadline - t + 999999) / 1000000;
			if (timeout < 0 || ms < (uint64_t)timeout)
				timeout = ms > 1000000 ? 1000000 : (int)ms;
		}

		int n = poll(p, (nfds_t)np, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			continue; /* the deadline is checked at the top */

		int rc;
		if (idx_in >= 0 && p[idx_in].revents && (rc = stdin_pump(r)) < 0)
			return rc;
		if (idx_out >= 0 && p[idx_out].revents && (rc = stdout_pump(r)) < 0)
			return rc;
		if (idx_err >= 0 && p[idx_err].revents)
			stderr_pump(r);
		if (idx_pid >= 0 && p[idx_pid].revents)
			try_reap(r);
	}
}

static void describe(struct run *r, int rc, uint64_t timeout_ns)
{
	struct ir_exec_result *res = r->res;
	const char *cmd = cmd_name(r->req);
	switch (rc) {
	case 0:
		if (res->exited && res->exit_code != 0) {
			snprintf(res->error, sizeof(res->error), "exit status %d", res->exit_code);
		} else if (res->signaled) {
			/* Go's wording: "signal: killed", "signal: segmentation fault". */
			const char *s = strsignal(res->signo);
			int n = snprintf(res->error, sizeof(res->error), "signal: %s",
					 s ? s : "unknown");
			for (int i = 8; i < n && i < (int)sizeof(res->error); i++)
				res->error[i] = (char)tolower((unsigned char)res->error[i]);
		}
		break;
	case -ETIMEDOUT:
		snprintf(res->error, sizeof(res->error),
			 "fprocess \"%s\": killed after exec_timeout %llu.%03llus", cmd,
			 (unsigned long long)(timeout_ns / 1000000000ull),
			 (unsigned long long)(timeout_ns % 1000000000ull / 1000000ull));
		break;
	case -EFBIG:
		snprintf(res->error, sizeof(res->error),
			 "fprocess \"%s\": killed, output above max_output (%zu bytes)", cmd,
			 r->req->max_output);
		break;
	case -ECANCELED:
		snprintf(res->error, sizeof(res->error),
			 "fprocess \"%s\": killed, the output consumer stopped", cmd);
		break;
	default:
		snprintf(res->error, sizeof(res->error), "fprocess \"%s\": killed: %s", cmd,
			 strerror(-rc));
		break;
	}
}

/* Block SIGPIPE for the call; swallow one we caused; restore the mask. */
struct sigpipe_guard {
	sigset_t old;
	bool was_pending;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
	sigset_t set, pend;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pend);
	g->was_pending = sigismember(&pend, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void sigpipe_restore(struct sigpipe_guard *g)
{
	sigset_t set, pend;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pend);
	if (!g->was_pending && sigismember(&pend, SIGPIPE) == 1) {
		struct timespec zero = {0, 0};
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

static int make_pipe(int fds[2])
{
	return pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0;
}

int ir_exec_run(const struct ir_exec_req *req, struct ir_exec_result *res)
{
	memset(res, 0, sizeof(*res));
	if (!req->argv || !req->argv[0] || !req->argv[0][0]) {
		snprintf(res->error, sizeof(res->error), "fprocess: empty command");
		return res->rc = -EINVAL;
	}

	uint64_t start = now_ns();
	struct run r = {
	    .req = req, .res = res, .in_fd = -1, .out_fd = -1, .err_fd = -1, .pidfd = -1};
	int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1}, pe[2] = {-1, -1};
	char **envp = NULL;
	int rc;

	if ((rc = line_init(&r.lb, req)) < 0)
		goto out_msg;
	r.scratch = malloc(IO_CHUNK);
	r.in_buf = req->stdin_read ? malloc(IO_CHUNK) : NULL;
	envp = build_env(req);
	if (!r.scratch || (req->stdin_read && !r.in_buf) || !envp) {
		rc = -ENOMEM;
		goto out_msg;
	}
	if ((rc = make_pipe(pin)) < 0 || (rc = make_pipe(pout)) < 0 || (rc = make_pipe(perr)) < 0 ||
	    (rc = make_pipe(pe)) < 0)
		goto out_msg;

	pid_t pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto out_msg;
	}
	if (pid == 0)
		child_run(pin[0], pout[1], perr[1], pe[1], req->argv, envp);

	r.pid = res->pid = pid;
	setpgid(pid, pid); /* also in the child: whoever runs first wins */
	close_fd(&pin[0]);
	close_fd(&pout[1]);
	close_fd(&perr[1]);
	close_fd(&pe[1]);

	/* EOF = exec succeeded (the pipe was CLOEXEC), else {stage, errno}. */
	int msg[2];
	size_t got = 0;
	while (got < sizeof(msg)) {
		ssize_t n = read(pe[0], (char *)msg + got, sizeof(msg) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close_fd(&pe[0]);
	if (got == sizeof(msg)) {
		reap_blocking(&r);
		rc = msg[1] > 0 ? -msg[1] : -EIO;
		snprintf(res->error, sizeof(res->error), "fprocess \"%s\": %s%s", cmd_name(req),
			 msg[0] == STAGE_SETUP ? "child setup: " : "", strerror(-rc));
		res->pid = 0;
		goto out_close;
	}

	r.in_fd = pin[1];
	r.out_fd = pout[0];
	r.err_fd = perr[0];
	pin[1] = pout[0] = perr[0] = -1;
	if ((rc = set_nonblock(r.in_fd)) < 0 || (rc = set_nonblock(r.out_fd)) < 0 ||
	    (rc = set_nonblock(r.err_fd)) < 0) {
		kill_group(&r);
		goto out_kill;
	}
#ifdef SYS_pidfd_open
	r.pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (r.pidfd < 0)
		r.pidfd = -1;
#endif
	if (req->stdin_read) {
		r.in_left = 0;
	} else {
		r.in_p = req->stdin_data;
		r.in_left = req->stdin_data ? req->stdin_len : 0;
		r.in_eof = true;
	}
	if (r.in_left == 0 && r.in_eof)
		close_fd(&r.in_fd);

	uint64_t deadline = req->timeout_ns ? start + req->timeout_ns : 0;
	if (deadline && deadline < start)
		deadline = UINT64_MAX; /* overflow: as good as none */

	struct sigpipe_guard g;
	sigpipe_block(&g);
	rc = io_loop(&r, deadline);
	sigpipe_restore(&g);

	if (rc < 0)
		kill_group(&r);
out_kill:
	close_fd(&r.in_fd);
	close_fd(&r.out_fd);
	close_fd(&r.err_fd);
	reap_blocking(&r);
	if (WIFEXITED(r.wstatus)) {
		res->exited = true;
		res->exit_code = WEXITSTATUS(r.wstatus);
	} else if (WIFSIGNALED(r.wstatus)) {
		res->signaled = true;
		res->signo = WTERMSIG(r.wstatus);
	}
	describe(&r, rc, req->timeout_ns);
	if (rc == -ETIMEDOUT || rc == -EFBIG)
		ir_warn("exec", "%s", res->error);
	goto out_close;

out_msg:
	snprintf(res->error, sizeof(res->error), "fprocess \"%s\": %s", cmd_name(req),
		 strerror(-rc));
out_close:
	close_fd(&pin[0]);
	close_fd(&pin[1]);
	close_fd(&pout[0]);
	close_fd(&pout[1]);
	close_fd(&perr[0]);
	close_fd(&perr[1]);
	close_fd(&pe[0]);
	close_fd(&pe[1]);
	close_fd(&r.pidfd);
	free(envp);
	free(r.scratch);
	free(r.in_buf);
	free(r.lb.buf);
	if (res->out) {
		if (rc < 0 || res->out_len == 0) {
			free(res->out);
			res->out = NULL;
			res->out_len = 0;
		} else {
			res->out[res->out_len] = '\0';
		}
	}
	res->duration_ns = now_ns() - start;
	return res->rc = rc;
}

void ir_exec_result_release(struct ir_exec_result *res)
{
	free(res->out);
	memset(res, 0, sizeof(*res));
}

int ir_exec_http_status(const struct ir_exec_result *res)
{
	if (res->rc == -ETIMEDOUT)
		return 504;
	if (res->rc == 0 && res->exited && res->exit_code == 0)
		return 200;
	return 500;
}
