/* local.c - `iroute local up|down`: a workflow as local processes (see local.h). */
#include "local.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "httpreq.h"
#include "iroute/workflow.h"
#include "stack.h"

volatile sig_atomic_t ir_local_interrupted;

#define IPC_DIR_MAX 60 /* longer, and socket paths in it may pass sun_path's 108 bytes */
#define TOKEN_BYTES 32

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void nap_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- stopping ---- */

static void signal_proc(const struct ir_lproc *p, int sig)
{
	if (!ir_lproc_alive(p))
		return;
	kill(-p->pid, sig); /* its session's process group: setsid() made it the leader */
	kill(p->pid, sig);
}

/* Wait until no process in @s whose role matches @role (NULL: any) is alive. */
static bool wait_gone(const struct ir_lstate *s, const char *role, uint64_t deadline)
{
	for (;;) {
		bool any = false;
		for (size_t i = 0; i < s->nprocs; i++) {
			const struct ir_lproc *p = &s->procs[i];
			waitpid(p->pid, NULL, WNOHANG); /* reaps our own children (up's cleanup) */
			if ((!role || strcmp(p->role, role) == 0) && ir_lproc_alive(p))
				any = true;
		}
		if (!any)
			return true;
		if (mono_ms() >= deadline)
			return false;
		nap_ms(50);
	}
}

static int stop_all(const struct ir_lstate *s, unsigned stop_ms, FILE *out)
{
	uint64_t deadline = mono_ms() + (stop_ms ? stop_ms : IR_LOCAL_STOP_MS);
	size_t alive = 0;
	for (size_t i = 0; i < s->nprocs; i++)
		alive += ir_lproc_alive(&s->procs[i]);
	if (out && alive)
		fprintf(out, "stopping %zu process%s ...\n", alive, alive == 1 ? "" : "es");
	/* Instances first: they leave the coordinator as they drain. */
	for (size_t i = 0; i < s->nprocs; i++)
		if (strcmp(s->procs[i].role, "cc") != 0)
			signal_proc(&s->procs[i], SIGTERM);
	uint64_t first = mono_ms() + (deadline - mono_ms()) * 3 / 4;
	wait_gone(s, "func", first);
	wait_gone(s, "entry", first);
	for (size_t i = 0; i < s->nprocs; i++)
		signal_proc(&s->procs[i], SIGTERM);
	if (wait_gone(s, NULL, deadline))
		return 0;
	int killed = 0;
	for (size_t i = 0; i < s->nprocs; i++)
		if (ir_lproc_alive(&s->procs[i])) {
			if (out)
				fprintf(out, "%s#%u (pid %d) did not stop in time: SIGKILL\n",
					s->procs[i].function, s->procs[i].replica, (int)s->procs[i].pid);
			signal_proc(&s->procs[i], SIGKILL);
			killed++;
		}
	wait_gone(s, NULL, mono_ms() + 3000);
	return killed;
}

/* Remove the run state of @dir: all but logs/, build/, bin/ and prefix/. */
static int remove_state(const struct ir_lstate *s, const char *dir, char *err, size_t errlen)
{
	static const char *const names[] = {"run", "ipc", "token", "mirror.json",
					    IR_LOCAL_STATE_FILE};
	int rc = 0;
	if (s && *s->ipc_dir)
		rc = ir_rmtree(s->ipc_dir, err, errlen);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[PATH_MAX + 32];
		ir_pathf(path, sizeof(path), "%s/%s", dir, names[i]);
		int r = ir_rmtree(path, err, errlen);
		if (r && !rc)
			rc = r;
	}
	char tmp[PATH_MAX + 32];
	ir_pathf(tmp, sizeof(tmp), "%s/" IR_LOCAL_STATE_FILE ".tmp", dir);
	unlink(tmp);
	return rc;
}

static int teardown(const struct ir_lstate *s, unsigned stop_ms, FILE *out, char *err,
		    size_t errlen)
{
	stop_all(s, stop_ms, out);
	int rc = 0;
	if (s->net.nodes) {
		rc = ir_net_down(&s->net, err, errlen);
		if (!rc && out)
			fprintf(out, "removed %u network namespaces and bridge %s\n", s->net.nodes,
				s->net.bridge);
	}
	char e2[512];
	int r = remove_state(s, s->dir, e2, sizeof(e2));
	if (r && !rc) {
		snprintf(err, errlen, "%s", e2);
		rc = r;
	}
	return rc;
}

/* One up or down at a time on a state directory: an exclusive flock() on
 * <dir>/.lock, held until the returned fd is closed.  -1 when @dir does not
 * exist (nothing to guard); -EBUSY when another holds it. */
static int state_lock(const char *dir, char *err, size_t errlen)
{
	char path[PATH_MAX + 16];
	ir_pathf(path, sizeof(path), "%s/.lock", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		snprintf(err, errlen,
			 "another `iroute local up` or `down` is running on %s (it holds %s)", dir,
			 path);
		return -EBUSY;
	}
	return fd;
}

static int down_locked(const char *state_dir, unsigned stop_ms, FILE *out, char *err,
		       size_t errlen)
{
	struct ir_lstate s;
	int rc = ir_lstate_load(state_dir, &s, err, errlen);
	if (rc == -ENOENT) {
		/* namespaces of an up that died before it wrote its state */
		char *real = geteuid() == 0 ? realpath(state_dir, NULL) : NULL;
		if (real) {
			struct ir_net n = {0};
			ir_net_tag(real, n.tag);
			free(real);
			rc = ir_net_down(&n, err, errlen);
			if (rc)
				return rc;
		}
		if (out)
			fprintf(out, "nothing is up (no %s/%s)\n", state_dir, IR_LOCAL_STATE_FILE);
		return 0;
	}
	if (rc)
		return rc;
	snprintf(s.dir, sizeof(s.dir), "%s", state_dir);
	rc = teardown(&s, stop_ms, out, err, errlen);
	size_t left = 0;
	for (size_t i = 0; i < s.nprocs; i++)
		left += ir_lproc_alive(&s.procs[i]);
	if (!rc && left) {
		snprintf(err, errlen, "%zu process%s still alive after SIGKILL", left,
			 left == 1 ? " is" : "es are");
		rc = -EBUSY;
	}
	if (!rc && out)
		fprintf(out, "stack \"%s\" is down (logs kept in %s/logs)\n", s.name, state_dir);
	ir_lstate_free(&s);
	return rc;
}

int ir_local_down(const char *state_dir, unsigned stop_ms, FILE *out, char *err, size_t errlen)
{
	int lock = state_lock(state_dir, err, errlen);
	if (lock == -EBUSY)
		return lock;
	int rc = down_locked(state_dir, stop_ms, out, err, errlen);
	if (lock >= 0)
		close(lock);
	return rc;
}

/* ---- starting ---- */

struct env {
	char **v;
	size_t n, cap;
};

static void env_free(struct env *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	free(e->v);
	memset(e, 0, sizeof(*e));
}

/* Set @key=@value, replacing an earlier value of @key. */
static int env_set(struct env *e, const char *key, const char *value)
{
	size_t kl = strlen(key);
	char *kv = malloc(kl + strlen(value) + 2);
	if (!kv)
		return -ENOMEM;
	sprintf(kv, "%s=%s", key, value);
	for (size_t i = 0; i < e->n; i++)
		if (strncmp(e->v[i], key, kl) == 0 && e->v[i][kl] == '=') {
			free(e->v[i]);
			e->v[i] = kv;
			return 0;
		}
	if (e->n + 2 > e->cap) {
		size_t nc = e->cap ? e->cap * 2 : 32;
		char **nv = realloc(e->v, nc * sizeof(*nv));
		if (!nv) {
			free(kv);
			return -ENOMEM;
		}
		e->v = nv;
		e->cap = nc;
	}
	e->v[e->n++] = kv;
	e->v[e->n] = NULL;
	return 0;
}

static int env_setf(struct env *e, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int env_setf(struct env *e, const char *key, const char *fmt, ...)
{
	char buf[PATH_MAX + 64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return env_set(e, key, buf);
}

struct up {
	const struct ir_local_up_opts *o;
	struct ir_stack st;
	struct ir_workflow wf;
	struct ir_lstate s;
	size_t cap;
	int *ports;
	size_t nports;
	char workflow_json[PATH_MAX];
	FILE *out;
};

/* A TCP port nobody listens on now (and that this run has not handed out). */
static int pick_port(struct up *u)
{
	for (int tries = 0; tries < 100; tries++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
		socklen_t len = sizeof(a);
		int rc = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
				 getsockname(fd, (struct sockaddr *)&a, &len) == 0
			     ? ntohs(a.sin_port)
			     : -errno;
		close(fd);
		if (rc < 0)
			return rc;
		bool dup = false;
		for (size_t i = 0; i < u->nports; i++)
			dup |= u->ports[i] == rc;
		if (dup)
			continue;
		int *np = realloc(u->ports, (u->nports + 1) * sizeof(*np));
		if (!np)
			return -ENOMEM;
		u->ports = np;
		u->ports[u->nports++] = rc;
		return rc;
	}
	return -EADDRINUSE;
}

static struct ir_lproc *add_proc(struct up *u, const char *fn, const char *role, unsigned replica,
				 unsigned node)
{
	if (u->s.nprocs == u->cap) {
		size_t nc = u->cap ? u->cap * 2 : 16;
		struct ir_lproc *np = realloc(u->s.procs, nc * sizeof(*np));
		if (!np)
			return NULL;
		u->s.procs = np;
		u->cap = nc;
	}
	struct ir_lproc *p = &u->s.procs[u->s.nprocs];
	memset(p, 0, sizeof(*p));
	snprintf(p->function, sizeof(p->function), "%s", fn);
	snprintf(p->role, sizeof(p->role), "%s", role);
	p->replica = replica;
	p->node = node;
	if (node) {
		char ns[32];
		ir_net_node(&u->s.net, node, ns, p->ip);
		snprintf(p->node_name, sizeof(p->node_name), "node-%u", node);
	} else {
		snprintf(p->ip, sizeof(p->ip), "127.0.0.1");
		snprintf(p->node_name, sizeof(p->node_name), "host");
	}
	ir_pathf(p->log, sizeof(p->log), "%s/logs/%s-%u.log", u->s.dir, fn, replica);
	return p;
}

/* The variables a process starts with from the caller's environment. */
static int env_base(struct env *e)
{
	static const char *const keep[] = {"PATH",	"HOME",	    "LANG",	 "LC_ALL",
					   "TZ",	"TMPDIR",   "IROUTE_LOG_LEVEL", "USER",
					   "LOGNAME"};
	int rc = 0;
	for (size_t i = 0; !rc && i < sizeof(keep) / sizeof(keep[0]); i++) {
		const char *v = getenv(keep[i]);
		if (v)
			rc = env_set(e, keep[i], v);
	}
	if (!rc && !getenv("PATH"))
		rc = env_set(e, "PATH", "/usr/local/bin:/usr/bin:/bin");
	return rc;
}

/* Fork @bin as @p: its own session, node @p->node's namespace, stdout and
 * stderr to its log, cwd @cwd.  An exec failure comes back over a pipe. */
static int spawn(struct up *u, struct ir_lproc *p, const char *bin, const char *cwd,
		 struct env *e, char *err, size_t errlen)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return -errno;
	int logfd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (logfd < 0) {
		int er = errno;
		close(pfd[0]);
		close(pfd[1]);
		snprintf(err, errlen, "open(%s): %s", p->log, strerror(er));
		return -er;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int er = errno;
		close(pfd[0]);
		close(pfd[1]);
		close(logfd);
		snprintf(err, errlen, "fork(): %s", strerror(er));
		return -er;
	}
	if (pid == 0) {
		int code = 0;
		setsid();
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		if (p->node && (code = ir_net_enter(&u->s.net, p->node)) != 0)
			code = -code;
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		if (!code && chdir(cwd) != 0)
			code = errno;
		if (!code) {
			char *argv[] = {(char *)bin, NULL};
			execve(bin, argv, e->v);
			code = errno;
		}
		ssize_t w = write(pfd[1], &code, sizeof(code));
		(void)w;
		_exit(127);
	}
	close(pfd[1]);
	close(logfd);
	int code = 0;
	ssize_t n;
	while ((n = read(pfd[0], &code, sizeof(code))) < 0 && errno == EINTR)
		;
	close(pfd[0]);
	if (n > 0) {
		waitpid(pid, NULL, 0);
		snprintf(err, errlen, "%s#%u: cannot start %s: %s", p->function, p->replica, bin,
			 strerror(code));
		return -code;
	}
	p->pid = pid;
	char st;
	ir_proc_stat(pid, &st, &p->start);
	u->s.nprocs++;
	return ir_lstate_save(&u->s, err, errlen);
}

/* port, metrics, lock file, token, coordinator and the addresses of @p. */
static int env_instance(struct up *u, struct env *e, const struct ir_stack_fn *fn,
			const struct ir_lproc *p, int cc_port)
{
	char ipc[PATH_MAX + 16];
	const struct ir_lstate *s = &u->s;
	int rc = env_base(e);
	/* soft defaults: the stack's environment may change them */
	if (!rc)
		rc = env_set(e, "healthcheck_interval", "0"); /* no load balancer to wait for */
	if (!rc)
		rc = env_set(e, "IROUTE_TRANSPORT", "auto");
	for (size_t i = 0; !rc && i < fn->environment.n; i++)
		rc = env_set(e, fn->environment.v[i].key, fn->environment.v[i].value);
	/* what iroute local owns */
	if (!rc)
		rc = env_setf(e, "port", "%d", p->port);
	if (!rc)
		rc = env_setf(e, "IROUTE_METRICS_PORT", "%d", p->metrics_port);
	if (!rc)
		rc = env_setf(e, "IROUTE_LOCK_FILE", "%s/run/%s-%u.lock", s->dir, p->function,
			      p->replica);
	if (!rc)
		rc = env_set(e, "IROUTE_TOKEN_FILE", s->token_file);
	if (!rc && u->o->transport)
		rc = env_set(e, "IROUTE_TRANSPORT", u->o->transport);
	if (!rc && strcmp(p->role, "cc") == 0) {
		/* the build context's copy, as the image has it; the handler's when there is none */
		char wf[PATH_MAX + 64];
		ir_pathf(wf, sizeof(wf), "%s/build/%s/function/workflow.json", s->dir, fn->name);
		rc = env_set(e, "IROUTE_WORKFLOW", access(wf, F_OK) == 0 ? wf : u->workflow_json);
		if (!rc)
			rc = env_setf(e, "IROUTE_MIRROR_FILE", "%s/mirror.json", s->dir);
		return rc;
	}
	if (!rc)
		rc = env_setf(e, "IROUTE_CC", "http://%s:%d",
			      s->net.nodes ? s->net.host_ip : "127.0.0.1", cc_port);
	if (!rc)
		rc = strcmp(p->role, "func") == 0 ? env_set(e, "IROUTE_FUNCTION", fn->name)
						  : env_set(e, "IROUTE_FUNCTION", "");
	if (!rc)
		rc = env_set(e, "IROUTE_WORKFLOW_NAME", s->workflow);
	if (!rc)
		rc = env_setf(e, "IROUTE_CC_MIRROR_FILE", "%s/mirror.json", s->dir);
	if (!rc)
		rc = env_setf(e, "IROUTE_HTTP_ADDR", "%s:%d", p->ip, p->port);
	if (!rc)
		rc = env_setf(e, "IROUTE_TCP_ADDR", "%s:0", p->ip);
	if (p->node)
		ir_pathf(ipc, sizeof(ipc), "%s/%s", s->ipc_dir, p->node_name);
	else
		snprintf(ipc, sizeof(ipc), "%s", s->ipc_dir);
	if (!rc)
		rc = env_set(e, "IROUTE_IPC_DIR", ipc);
	if (!rc && p->node)
		rc = env_set(e, "IROUTE_NODE", p->node_name);
	return rc;
}

static int start_one(struct up *u, const struct ir_stack_fn *fn, const char *role,
		     unsigned replica, unsigned node, int cc_port, char *err, size_t errlen)
{
	struct ir_lproc *p = add_proc(u, fn->name, role, replica, node);
	if (!p)
		return -ENOMEM;
	int port = pick_port(u), mport = pick_port(u);
	if (port < 0 || mport < 0) {
		snprintf(err, errlen, "no free TCP port: %s", strerror(-(port < 0 ? port : mport)));
		return port < 0 ? port : mport;
	}
	p->port = port;
	p->metrics_port = mport;
	char bin[PATH_MAX + 16], cwd[PATH_MAX + 16];
	ir_pathf(bin, sizeof(bin), "%s/bin/%s", u->s.dir, fn->name);
	ir_pathf(cwd, sizeof(cwd), "%s/build/%s", u->s.dir, fn->name);
	if (strcmp(role, "cc") == 0 && access(bin, X_OK) != 0)
		snprintf(bin, sizeof(bin), "%s", u->o->cc_bin);
	if (access(cwd, F_OK) != 0)
		snprintf(cwd, sizeof(cwd), "%s", u->s.dir);
	struct env e = {0};
	int rc = env_instance(u, &e, fn, p, cc_port);
	if (!rc)
		rc = spawn(u, p, bin, cwd, &e, err, errlen);
	else
		snprintf(err, errlen, "out of memory");
	env_free(&e);
	return rc;
}

/* Wait until every process from @first on answers GET /_/health with 200. */
static int wait_healthy(struct up *u, size_t first, char *err, size_t errlen)
{
	const struct ir_local_up_opts *o = u->o;
	uint64_t deadline = mono_ms() + (o->health_ms ? o->health_ms : IR_LOCAL_HEALTH_MS);
	size_t n = u->s.nprocs - first;
	bool *ok = calloc(n ? n : 1, sizeof(*ok));
	char (*why)[300] = calloc(n ? n : 1, sizeof(*why));
	if (!ok || !why) {
		free(ok);
		free(why);
		return -ENOMEM;
	}
	int rc = 0;
	for (size_t left = n; left && !rc;) {
		for (size_t i = 0; i < n && !rc; i++) {
			struct ir_lproc *p = &u->s.procs[first + i];
			if (ok[i])
				continue;
			int st;
			if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
				char tail[2048];
				ir_file_tail(p->log, 20, tail, sizeof(tail));
				snprintf(err, errlen, "%s#%u (%s, pid %d) exited (%s %d) before it "
						      "was healthy; the end of %s:\n%s",
					 p->function, p->replica, p->role, (int)p->pid,
					 WIFEXITED(st) ? "status" : "signal",
					 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), p->log, tail);
				rc = -ECHILD;
				break;
			}
			char url[64], e2[256];
			snprintf(url, sizeof(url), "http://%s:%d", p->ip, p->port);
			struct ir_http_req q = {.method = "GET", .url = url, .path = "/_/health",
						.timeout_ms = 1000};
			struct ir_http_ans a;
			int r = ir_http_do(&q, &a, e2, sizeof(e2));
			if (!r && a.status == 200) {
				ok[i] = true;
				left--;
			} else if (!r)
				snprintf(why[i], sizeof(why[i]), "GET /_/health answered %d", a.status);
			else
				snprintf(why[i], sizeof(why[i]), "%s", e2);
			ir_http_ans_free(&a);
		}
		if (rc || !left)
			break;
		if (ir_local_interrupted) {
			snprintf(err, errlen, "interrupted");
			rc = -EINTR;
		} else if (mono_ms() >= deadline) {
			size_t off = 0;
			off += (size_t)snprintf(err + off, errlen - off,
						"not healthy after %u s:",
						(o->health_ms ? o->health_ms : IR_LOCAL_HEALTH_MS) /
						    1000);
			for (size_t i = 0; i < n && off < errlen; i++) {
				struct ir_lproc *p = &u->s.procs[first + i];
				if (ok[i])
					continue;
				char tail[1024];
				ir_file_tail(p->log, 10, tail, sizeof(tail));
				off += (size_t)snprintf(err + off, errlen - off,
							"\n%s#%u (%s, pid %d, http://%s:%d): %s; "
							"the end of %s:\n%s",
							p->function, p->replica, p->role,
							(int)p->pid, p->ip, p->port, why[i], p->log,
							tail);
			}
			rc = -ETIMEDOUT;
		} else
			nap_ms(100);
	}
	free(ok);
	free(why);
	return rc;
}

static int write_token(struct up *u, char *err, size_t errlen)
{
	unsigned char raw[TOKEN_BYTES];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		snprintf(err, errlen, "getrandom(): %s", strerror(errno));
		return -EIO;
	}
	char hex[TOKEN_BYTES * 2 + 2];
	for (size_t i = 0; i < sizeof(raw); i++)
		sprintf(hex + 2 * i, "%02x", raw[i]);
	/* No trailing newline, as a Kubernetes secret: the runtime must not
	 * have to strip one. */
	ir_pathf(u->s.token_file, sizeof(u->s.token_file), "%s/token", u->s.dir);
	unlink(u->s.token_file);
	int fd = open(u->s.token_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, hex, strlen(hex)) != (ssize_t)strlen(hex) || fchmod(fd, 0600)) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "writing %s: %s", u->s.token_file, strerror(e));
		return -e;
	}
	close(fd);
	return 0;
}

/* The stack, its workflow, and the pairing of the two. */
static int check_stack(struct up *u, char *err, size_t errlen)
{
	int rc = ir_stack_load(u->o->stack_path, &u->st, err, errlen);
	if (rc)
		return rc;
	for (size_t i = 0; i < u->st.warnings.n && u->out; i++)
		fprintf(u->out, "warning: %s\n", u->st.warnings.v[i]);
	const struct ir_stack_fn *cc = ir_stack_cc(&u->st);
	ir_pathf(u->workflow_json, sizeof(u->workflow_json), "%s/workflow.json", cc->handler_path);
	char e2[512];
	if ((rc = ir_workflow_load(u->workflow_json, &u->wf, e2, sizeof(e2)))) {
		snprintf(err, errlen, "coordinator \"%s\": %s", cc->name, e2);
		return rc;
	}
	for (size_t i = 0; i < u->wf.nfns; i++) {
		const struct ir_stack_fn *fn = ir_stack_find(&u->st, u->wf.fns[i].name);
		if (!fn || fn->lang != IR_LANG_FUNC) {
			snprintf(err, errlen,
				 "workflow \"%s\" (%s) has function \"%s\", but %s has no c-func "
				 "of that name",
				 u->wf.name, u->workflow_json, u->wf.fns[i].name, u->st.path);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < u->st.nfns; i++)
		if (u->st.fns[i].lang == IR_LANG_FUNC &&
		    ir_workflow_find(&u->wf, u->st.fns[i].name) < 0) {
			snprintf(err, errlen,
				 "function \"%s\" (c-func) is not in workflow \"%s\" (%s): the "
				 "coordinator would refuse it",
				 u->st.fns[i].name, u->wf.name, u->workflow_json);
			return -EINVAL;
		}
	return 0;
}

/* Refuse a stack that is up; clean the leftovers of one that died. */
static int check_prior(struct up *u, char *err, size_t errlen)
{
	struct ir_lstate old;
	char e2[512];
	int rc = ir_lstate_load(u->s.dir, &old, e2, sizeof(e2));
	if (rc == -ENOENT)
		return 0;
	if (!rc) {
		for (size_t i = 0; i < old.nprocs; i++)
			if (ir_lproc_alive(&old.procs[i])) {
				snprintf(err, errlen,
					 "stack \"%s\" is already up (%s#%u is pid %d); run "
					 "`iroute local down` first",
					 old.name, old.procs[i].function, old.procs[i].replica,
					 (int)old.procs[i].pid);
				ir_lstate_free(&old);
				return -EEXIST;
			}
		snprintf(old.dir, sizeof(old.dir), "%s", u->s.dir);
		teardown(&old, 1000, NULL, e2, sizeof(e2));
		ir_lstate_free(&old);
	}
	return 0;
}

static void summary(struct up *u)
{
	FILE *f = u->out;
	if (!f)
		return;
	fprintf(f, "\n%-24s %-5s %3s %-7s %7s %6s %7s  %s\n", "FUNCTION", "ROLE", "#", "NODE",
		"PID", "PORT", "METRICS", "LOG");
	for (size_t i = 0; i < u->s.nprocs; i++) {
		const struct ir_lproc *p = &u->s.procs[i];
		fprintf(f, "%-24s %-5s %3u %-7s %7d %6d %7d  %s\n", p->function, p->role,
			p->replica, p->node_name, (int)p->pid, p->port, p->metrics_port, p->log);
	}
	fprintf(f, "\nworkflow \"%s\" is up: %zu processes, transport %s%s\n", u->s.workflow,
		u->s.nprocs, u->s.transport, u->s.net.nodes ? "" : ", one node");
	if (u->s.net.nodes)
		fprintf(f, "nodes: %u network namespaces on bridge %s (10.77.%u.0/24)\n",
			u->s.net.nodes, u->s.net.bridge, u->s.net.subnet);
	fprintf(f, "coordinator: %s\nentry:       %s/\nstate:       %s\n", u->s.cc_url,
		u->s.entry_url, u->s.dir);
	fprintf(f, "try:         iroute invoke --state %s --data '...'\n", u->s.dir);
}

static int up_run(struct up *u, char *err, size_t errlen)
{
	const struct ir_local_up_opts *o = u->o;
	int rc;
	for (size_t i = 0; i < u->st.nfns; i++) {
		char bin[PATH_MAX + 16];
		ir_pathf(bin, sizeof(bin), "%s/bin/%s", u->s.dir, u->st.fns[i].name);
		if (!o->skip_build || access(bin, X_OK) != 0) {
			long cpus = sysconf(_SC_NPROCESSORS_ONLN);
			struct ir_build_opts bo = {.template_dir = o->template_dir,
						   .prefix = o->prefix,
						   .state_dir = u->s.dir,
						   .jobs = cpus > 0 ? (unsigned)cpus : 1,
						   .progress = u->out};
			if ((rc = ir_stack_build(&u->st, &bo, err, errlen)))
				return rc;
			break;
		}
	}
	if (ir_local_interrupted) {
		snprintf(err, errlen, "interrupted");
		return -EINTR;
	}
	char path[PATH_MAX + 16];
	ir_pathf(path, sizeof(path), "%s/run", u->s.dir);
	if ((rc = ir_mkdirs(path, 0755, err, errlen)) || (rc = write_token(u, err, errlen)))
		return rc;
	if (o->nodes) {
		char tag[8];
		ir_net_tag(u->s.dir, tag);
		if ((rc = ir_net_up(&u->s.net, o->nodes, tag, err, errlen)))
			return rc;
		if (u->out)
			fprintf(u->out, "nodes: %u network namespaces on bridge %s, 10.77.%u.0/24\n",
				o->nodes, u->s.net.bridge, u->s.net.subnet);
	}
	if (strlen(u->s.dir) + 4 > IPC_DIR_MAX) {
		char tag[8];
		ir_net_tag(u->s.dir, tag);
		snprintf(u->s.ipc_dir, sizeof(u->s.ipc_dir), "/tmp/iroute-ipc-%s", tag);
	} else
		ir_pathf(u->s.ipc_dir, sizeof(u->s.ipc_dir), "%s/ipc", u->s.dir);
	ir_rmtree(u->s.ipc_dir, err, errlen);
	if ((rc = ir_mkdirs(u->s.ipc_dir, 0700, err, errlen)))
		return rc;
	for (unsigned k = 1; k <= o->nodes; k++) {
		ir_pathf(path, sizeof(path), "%s/node-%u", u->s.ipc_dir, k);
		if ((rc = ir_mkdirs(path, 0700, err, errlen)))
			return rc;
	}
	if ((rc = ir_lstate_save(&u->s, err, errlen)))
		return rc;

	/* The coordinator, on the host, first. */
	const struct ir_stack_fn *cc = ir_stack_cc(&u->st);
	if ((rc = start_one(u, cc, "cc", 0, 0, 0, err, errlen)))
		return rc;
	int cc_port = u->s.procs[0].port;
	snprintf(u->s.cc_url, sizeof(u->s.cc_url), "http://127.0.0.1:%d", cc_port);
	if (u->out)
		fprintf(u->out, "start: coordinator %s (pid %d, port %d)\n", cc->name,
			(int)u->s.procs[0].pid, cc_port);
	if ((rc = wait_healthy(u, 0, err, errlen)))
		return rc;
	/* Then every replica of every function and entry. */
	unsigned rr = 0;
	for (size_t i = 0; i < u->st.nfns; i++) {
		const struct ir_stack_fn *fn = &u->st.fns[i];
		if (fn->lang == IR_LANG_CC)
			continue;
		unsigned n = o->replicas ? o->replicas : 1;
		if (fn->scale_min > n)
			n = fn->scale_min;
		bool entry = fn->lang == IR_LANG_ENTRY;
		for (unsigned r = 0; r < n; r++) {
			unsigned node = !o->nodes ? 0 : entry ? 1 : 1 + rr++ % o->nodes;
			if ((rc = start_one(u, fn, entry ? "entry" : "func", r, node, cc_port, err,
					    errlen)))
				return rc;
			const struct ir_lproc *p = &u->s.procs[u->s.nprocs - 1];
			if (entry && !*u->s.entry_url)
				snprintf(u->s.entry_url, sizeof(u->s.entry_url), "http://%s:%d",
					 p->ip, p->port);
		}
	}
	if ((rc = ir_lstate_save(&u->s, err, errlen)))
		return rc;
	if (u->out)
		fprintf(u->out, "start: %zu instances, waiting for /_/health ...\n",
			u->s.nprocs - 1);
	if ((rc = wait_healthy(u, 1, err, errlen)))
		return rc;
	return 0;
}

int ir_local_up(const struct ir_local_up_opts *o, char *err, size_t errlen)
{
	struct up u = {.o = o, .out = o->out};
	int lock = -1;
	int rc = check_stack(&u, err, errlen);
	if (rc)
		goto out;
	if (o->nodes && geteuid() != 0) {
		snprintf(err, errlen, "--nodes needs root (network namespaces and a bridge)");
		rc = -EPERM;
		goto out;
	}
	if (o->state_dir)
		snprintf(u.s.dir, sizeof(u.s.dir), "%s", o->state_dir);
	else
		ir_local_default_state(u.st.path, u.s.dir, sizeof(u.s.dir));
	if ((rc = ir_mkdirs(u.s.dir, 0755, err, errlen)))
		goto out;
	char *real = realpath(u.s.dir, NULL);
	if (real) {
		snprintf(u.s.dir, sizeof(u.s.dir), "%s", real);
		free(real);
	}
	if ((lock = state_lock(u.s.dir, err, errlen)) == -EBUSY) {
		rc = lock;
		goto out;
	}
	char logs[PATH_MAX + 8];
	ir_pathf(logs, sizeof(logs), "%s/logs", u.s.dir);
	if ((rc = check_prior(&u, err, errlen)) || (rc = ir_mkdirs(logs, 0755, err, errlen)))
		goto out;
	snprintf(u.s.stack, sizeof(u.s.stack), "%s", u.st.path);
	snprintf(u.s.name, sizeof(u.s.name), "%s", u.st.name);
	snprintf(u.s.workflow, sizeof(u.s.workflow), "%s", u.wf.name);
	snprintf(u.s.transport, sizeof(u.s.transport), "%s", o->transport ? o->transport : "auto");
	if (u.out)
		fprintf(u.out, "stack \"%s\": workflow \"%s\", %zu functions, state %s\n", u.s.name,
			u.s.workflow, u.st.nfns, u.s.dir);
	rc = up_run(&u, err, errlen);
	if (rc) {
		char e2[512];
		if (u.out)
			fprintf(u.out, "up failed; stopping what was started\n");
		teardown(&u.s, 3000, u.out, e2, sizeof(e2));
	} else
		summary(&u);
out:
	if (lock >= 0)
		close(lock);
	ir_stack_free(&u.st);
	ir_workflow_free(&u.wf);
	ir_lstate_free(&u.s);
	free(u.ports);
	return rc;
}
