/* tcluster.h - a whole workflow as local processes for the end-to-end
 * tests: a real coordinator (iroute-cc), function instances (any c-func
 * binary) and an entry, each with its own ports, lock file and log under
 * the test's directory (twd_dir), all killed by tc_teardown().
 * A test calls twd_setup() first (the directory), then tc_* . */
#ifndef IROUTE_TCLUSTER_H
#define IROUTE_TCLUSTER_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define TC_MAX 64

struct tc_proc {
	pid_t pid;
	int port, mport;
	char name[64];
	char log[256];
};

extern struct tc_proc tc_p[TC_MAX];
extern size_t tc_n;
extern int tc_cc_port, tc_entry_port;

/* Start the coordinator with workflow @wf_json (written to the test
 * directory); @env: extra "K=V" for every later process too (e.g.
 * "IROUTE_TRANSPORT=tcp"), NULL-terminated or NULL. */
void tc_start_cc(const char *wf_json, const char *const *env);
/* Start one instance of function @fn from binary @bin (a path; NULL = the
 * test function $IROUTE_TFN) with @env added.  Returns its index. */
int tc_start_fn(const char *fn, const char *bin, const char *const *env);
/* The entry ($IROUTE_BIN_DIR/iroute-entry unless @bin). Returns its index. */
int tc_start_entry(const char *bin, const char *const *env);
/* Wait until the coordinator counts @instances instances (entry
 * included) and every started process listens; then a little more for
 * the tables to reach everyone. */
void tc_wait_ready(size_t instances);
/* Signal process @i; with @wait, reap it and return its wait status. */
int tc_kill(int i, int sig, bool wait);
/* POST @body to the entry's @path with extra curl @args; the body of the
 * answer in *@out (malloc()ed, NUL-terminated), headers in dir/@tag.h;
 * returns the HTTP status. */
int tc_post(const char *path, const char *body, const char *args, const char *tag, char **out);
/* The same against port @port. */
int tc_post_port(int port, const char *path, const char *body, const char *args, const char *tag,
		 char **out);
/* The log of process @i (malloc()ed). */
char *tc_log(int i);
void tc_teardown(void);

#endif
