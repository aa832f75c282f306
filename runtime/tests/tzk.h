/* tzk.h - a real, standalone ZooKeeper server for the mirror tests
 * (test_zk.c): Debian's zookeeper package (a declared dependency, see
 * scripts/deps.sh) run by java on a free loopback port, one per test.
 *
 * The server runs in its own process group and dies with the thread that
 * started it (PR_SET_PDEATHSIG), so a test that fails half-way (Check's
 * forked child exits) leaves no java behind.  Its output, INFO level,
 * goes to <dir>/zk.log.
 */
#ifndef IROUTE_TZK_H
#define IROUTE_TZK_H

#include <stdbool.h>
#include <sys/types.h>

struct tzk {
	char dir[64];	/* the server's directory: zoo.cfg, data/, zk.log */
	char hosts[32]; /* "127.0.0.1:PORT", for zookeeper_init() and the mirror */
	int port;
	pid_t pid; /* the java process (0: not running) */
	/* tzk_proxy_start(): a TCP forwarder to the server, to cut one
	 * client's link while the server keeps running */
	char proxy_hosts[32];
	pid_t proxy_pid;
};

/* mkdtemp()s the directory under /tmp, picks a free port, writes zoo.cfg
 * (tickTime 500 ms, sessions 1 to 60 s, no fsync) and starts the
 * server; returns 0 once it serves ("ruok" answers "imok" and "srvr" a
 * mode; 20 s at most), else -1 after printing the tail of zk.log to
 * stderr. */
int tzk_start(struct tzk *z);

/* SIGKILL the server and reap it (a crash: nothing flushed, no goodbye). */
void tzk_kill(struct tzk *z);

/* Starts the server again on the same port and data directory (what it
 * stored survives); 0 or -1 as tzk_start(). */
int tzk_restart(struct tzk *z);

/* SIGSTOP / SIGCONT: the server hangs with its sockets open, as on a long
 * GC pause or a network partition. */
void tzk_pause(struct tzk *z);
void tzk_resume(struct tzk *z);

/* Starts a forwarder (a forked process, no threads) from a new loopback
 * port (z->proxy_hosts) to the server; 0 or -1.  Call it before the test
 * opens ZooKeeper handles.  tzk_proxy_pause() SIGSTOPs it: the clients
 * behind it see a silent server while the server sees silent clients
 * and expires their sessions on time; tzk_proxy_resume() lets the
 * clients' reconnects through. */
int tzk_proxy_start(struct tzk *z);
void tzk_proxy_pause(struct tzk *z);
void tzk_proxy_resume(struct tzk *z);

/* Kills the server and the forwarder, and rm -rf the directory.  Safe on a
 * zeroed struct. */
void tzk_stop(struct tzk *z);

/* Throwaway digest credentials for a test's own ZooKeeper, "cc:<hex>"
 * (writer) and "fn:<hex>" (reader), random per process (made on first
 * use), and the environment lines that hand them to a coordinator
 * ("IROUTE_ZK_WRITER=...", "IROUTE_ZK_READER=...").  Nothing secret is
 * written in the sources. */
const char *tzk_writer_cred(void);
const char *tzk_reader_cred(void);
const char *tzk_writer_env(void);
const char *tzk_reader_env(void);

/* Whether zk.log contains @needle (e.g. "Expiring session"). */
bool tzk_log_has(const struct tzk *z, const char *needle);

#endif
