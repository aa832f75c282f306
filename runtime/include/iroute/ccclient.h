/* ccclient.h - an instance's side of the coordinator (iroute-cc): register,
 * long-poll for the local routing table, push latency statistics, report
 * suspects, leave.  What the data plane of every function and entry links.
 *
 * Why this design: the coordinator is never on the request path, so the
 * client's job is to keep a recent table in memory whatever the
 * coordinator does.  A table is parsed once per epoch into an immutable,
 * reference-counted struct (ir_table), so a request takes a reference with
 * one mutex-protected pointer copy and an atomic increment and routes on
 * it while newer epochs arrive; the last IR_CCC_KEEP epochs are kept
 * because a join must route a request by the epoch the request started
 * in.  One background thread owns the long-poll (one kept-alive
 * connection) and re-registers on its own when the coordinator forgot the
 * instance (404: lease expired, coordinator restarted without its
 * mirror); it backs off with jitter on every failure and never spins.
 * When the coordinator cannot be reached at start-up the table is built
 * from its mirror (ZooKeeper, or the JSON file on the same host) with the
 * coordinator's own code (cctable.h), so an instance can serve while the
 * coordinator is down.  Rejected: libcurl (httpc.h already is the
 * project's client, and one thread with blocking calls is all this needs);
 * RCU or hazard pointers for the table pointer (a per-request uncontended
 * mutex costs ~20 ns, and a reference count gives the same lifetime rule
 * to the data plane and to the callbacks).
 *
 * The protocol (README "The coordinator"):
 *     POST /v1/register {function|role, node, addresses, transports,
 *                        capacity[, epoch]}   -> {instance, lease_ms,
 *                                                 poll_ms, epoch, slice, table}
 *     loop: GET /v1/routes?instance=ID&since=E -> 200 table | 304 | 404
 *     POST /v1/leave {instance}
 * Every request carries "Authorization: Bearer <cluster token>".
 */
#ifndef IROUTE_CCCLIENT_H
#define IROUTE_CCCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iroute/hist.h"

/* Transports of an instance (struct ir_route_inst.transports). */
#define IR_TR_IPC 1u
#define IR_TR_TCP 2u
#define IR_TR_RDMA 4u

#define IR_CCC_KEEP 4 /* tables kept by a client, newest epochs */

/* ---- the local table ---- */

/* One instance of a table.  The sizes are the coordinator's limits
 * (ccapi.c): an id below 80 characters, a node (boot id) of 1-64, each
 * address below 128; a table that breaks them is refused as a whole. */
struct ir_route_inst {
	char id[80];			    /* "b-3f2a0c1d9e8b7a65" */
	char function[64];		    /* "" for an entry */
	char node[65];			    /* the boot id of its node */
	char http[128], tcp[128], ipc[128]; /* "" when not offered */
	uint32_t transports;		    /* IR_TR_* */
	uint32_t capacity;		    /* 1-65535 */
	char *rdma;			    /* the "rdma" object as compact JSON, NULL when none */
};

struct ir_route_fn {
	char name[64];
	struct ir_route_inst *inst; /* n of them, in the table's order; NULL when n is 0 */
	size_t n;
};

/* Immutable once parsed.  Invariants: epoch >= 1; entry_role iff
 * function is ""; route names are distinct. */
struct ir_table {
	uint64_t epoch;
	char workflow[64];
	char function[64]; /* "" for the entry role */
	bool entry_role;
	struct ir_route_fn *routes; /* in the table's order: successors in "next" order,
				       then the function itself when it is a join */
	size_t nroutes;
	struct ir_route_inst *entries; /* where results and errors go back */
	size_t nentries;
	char *json; /* the table's JSON text, NUL-terminated */
	size_t json_len;
};

/* Parse a local table (cctable.h; @json is @len bytes, borrowed, need not
 * be NUL-terminated) into *@out with one reference.  Strict about every
 * field it knows: a wrong type, a missing field or a value out of range is
 * -EINVAL with a message naming the path, e.g.
 *   routes.b[3].addresses.tcp is not a string
 *   entries[0].capacity must be an integer 1-65535
 * Unknown keys are ignored, so a newer coordinator may add fields without
 * freezing older instances on their last table.  -ENOMEM when out of
 * memory.  @err may be NULL. */
int ir_table_parse(const char *json, size_t len, struct ir_table **out, char *err, size_t errlen);

/* The instances of function @fn in @t, or NULL when @t has no route to it. */
const struct ir_route_fn *ir_table_route(const struct ir_table *t, const char *fn);

/* Take / drop a reference (atomic: any thread).  The last put frees the
 * table.  NULL is fine for both. */
void ir_table_get(struct ir_table *t);
void ir_table_put(struct ir_table *t);

/* ---- the client ---- */

struct ir_ccc_opts {
	const char *url;      /* "http://host:port" of the coordinator ($IROUTE_CC) */
	const char *token;    /* the cluster token */
	const char *function; /* this instance's function; NULL with entry */
	bool entry;	      /* an entry (role "entry") */
	const char *node;     /* the boot id; NULL = /proc/sys/kernel/random/boot_id */
	const char *http_addr, *tcp_addr, *ipc_path; /* NULL = not offered; at least one */
	uint32_t transports; /* IR_TR_*; 0 = IPC if ipc_path, TCP if tcp_addr */
	uint32_t capacity;   /* 1-65535; 0 = 1 */
	/* The fallback when the coordinator does not answer at start-up: */
	const char *workflow;	      /* the workflow's name: required with zk_hosts (the
					 mirror's key); when given, tables and the mirror
					 of another workflow are refused */
	const char *zk_hosts;	      /* ZooKeeper "host:port,..." ($IROUTE_ZK); NULL = none */
	const char *zk_reader_cred;   /* "user:password"; NULL = ir_zk_cred_load("reader") */
	const char *mirror_file;      /* or the coordinator's JSON file mirror (same host) */
	uint32_t register_timeout_ms; /* how long start waits for the coordinator; 0 = 3000 */
	/* Called for every new table (borrowed for the call: ir_table_get() to
	 * keep it): from ir_ccc_start() for the first, then from the client
	 * thread, one at a time, epochs increasing. */
	void (*on_table)(void *arg, struct ir_table *t);
	void *arg;
};

struct ir_ccc;

/* Fill @o from the environment (the strings are borrowed from it):
 *   IROUTE_CC            url (required)
 *   IROUTE_FUNCTION      function; unset or "" = an entry
 *   IROUTE_HTTP_ADDR, IROUTE_TCP_ADDR, IROUTE_IPC_PATH   addresses offered
 *   IROUTE_CAPACITY      capacity [1]
 *   IROUTE_WORKFLOW_NAME workflow (for the fallback)
 *   IROUTE_ZK            zk_hosts
 *   IROUTE_CC_MIRROR_FILE mirror_file
 *   IROUTE_CC_TIMEOUT_MS register_timeout_ms [3000]
 * The token is not read here (ir_token_load(), iroute/token.h); token,
 * on_table and arg are left as they were.  0, or -EINVAL with a message
 * naming the variable. */
int ir_ccc_opts_from_env(struct ir_ccc_opts *o, char *err, size_t errlen);

/* Register with the coordinator and start the client thread.  @o and its
 * strings are copied.  The coordinator is retried with backoff (50 ms
 * doubling to 1 s, jittered) for register_timeout_ms; then the table comes
 * from the mirror when one is configured (ir_ccc_registered() false, the
 * thread keeps trying to register).  Returns 0 with *@c set and a table
 * in place, or -errno with a message in @err and nothing started:
 *   -EINVAL  bad options, or a 4xx from the coordinator (its "error"
 *            text, e.g. an unknown function)
 *   -EACCES  401/403: the token was refused
 *   -EAGAIN  no table: the coordinator did not answer (the message names
 *            the URL and the last error), and the mirror, when there is
 *            one, could not give one either (unreachable, refused the
 *            credential, lacks the function: its message follows)
 *   -EPROTO  the coordinator's answer does not parse, or its table is not
 *            this instance's (another function, role or workflow)
 *   -ENOMEM */
int ir_ccc_start(struct ir_ccc **c, const struct ir_ccc_opts *o, char *err, size_t errlen);

/* A table, with a reference (ir_table_put() it):
 *   @epoch 0          the newest;
 *   @epoch kept       exactly that one;
 *   else              the newest kept table with an epoch below @epoch,
 *                     or, when every kept table is newer than @epoch, the
 *                     newest (the request predates all we hold; the
 *                     newest is the best guess of where things are now).
 * A join routes a request by the epoch the request started in.  Never
 * NULL after a successful start.  Any thread: one mutex around a pointer
 * copy and a reference increment. */
struct ir_table *ir_ccc_table(struct ir_ccc *c, uint64_t epoch);

/* The newest epoch applied. */
uint64_t ir_ccc_epoch(struct ir_ccc *c);
/* Whether the coordinator knows this instance now (false while running on
 * a table from the mirror, and between a 404 and the re-registration). */
bool ir_ccc_registered(struct ir_ccc *c);
/* Copy the instance id into @buf ("" when not registered); returns its
 * length.  A copy because re-registration changes it on the client
 * thread. */
size_t ir_ccc_instance(struct ir_ccc *c, char *buf, size_t cap);
/* This function's slice of the workflow (ir_workflow_slice_json()'s
 * form), or for the entry role the whole workflow (ir_workflow_to_json()'s
 * form); malloc'ed (caller frees); NULL when out of memory. */
char *ir_ccc_slice(struct ir_ccc *c);
/* The last error the client thread met ("" when none), copied into @buf. */
void ir_ccc_last_error(struct ir_ccc *c, char *buf, size_t cap);

/* POST /v1/stats with @h (borrowed): an entry's requests since its last
 * push.  0; -ENOTCONN when not registered; -ENOENT when the coordinator
 * does not know the instance; another -errno (-ECONNREFUSED,
 * -ETIMEDOUT, -EPROTO for an unexpected answer).  Blocks for at most 2 s.
 * These three calls may run on any thread, also concurrently (they are
 * serialized on one kept-alive connection). */
int ir_ccc_push_stats(struct ir_ccc *c, const struct ir_hist *h);
/* POST /v1/suspect: ask the coordinator to probe @instance (borrowed) and
 * drop it when it does not answer.  0 with *@removed set, or as above.
 * Blocks for at most 3 s (the coordinator's probe takes up to 500 ms). */
int ir_ccc_suspect(struct ir_ccc *c, const char *instance, bool *removed);
/* Stop the client thread, then POST /v1/leave: the instance is gone from
 * the next epoch.  The tables stay readable until ir_ccc_stop().  0 (also
 * when the coordinator had already forgotten the instance, or when it
 * never registered), or -errno when the coordinator could not be told. */
int ir_ccc_leave(struct ir_ccc *c);

/* Stop the client thread (within ~100 ms, also in the middle of a
 * long-poll or a backoff) and free everything; tables the caller still
 * holds stay valid until their last put.  No other call on @c may run
 * or follow.  NULL is fine. */
void ir_ccc_stop(struct ir_ccc *c);

#endif
