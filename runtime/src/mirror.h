/* mirror.h - where the coordinator's global routing table survives it:
 * a JSON file (the embedded default) or ZooKeeper.
 *
 * Why this design: the coordinator is the only writer and writes whole
 * snapshots, one per epoch (or the newest of several that came while a
 * write was in flight: the mirror only has to converge on the newest
 * epoch, never go back).  The backends store opaque strings - the
 * workflow's canonical JSON and, per function, the JSON array of its live
 * instances - so they need not know the table's schema, and the reader
 * side (an instance that cannot reach the coordinator at start-up) loads
 * the same struct back and builds its local table with the coordinator's
 * own code.  A vtable with two backends (file, ZooKeeper), chosen by
 * IROUTE_ZK being set.
 *
 * ZooKeeper layout (every node persistent, ACL: the writer digest with all
 * rights, the reader digest with READ; the writer's credential is the
 * only one that can change anything):
 *   /iroute                          (created if missing)
 *   /iroute/<workflow>               data: ""
 *   /iroute/<workflow>/epoch         data: {"epoch":E,"instances":N,"ms":T}
 *   /iroute/<workflow>/workflow      data: the canonical workflow JSON
 *   /iroute/<workflow>/functions/<f> data: JSON array of f's instances
 *   /iroute/<workflow>/entries       data: JSON array of the entry instances
 * One snapshot = one zoo_multi(): setData of the epoch node at the version
 * last seen (compare-and-set), setData (or create) of every function node,
 * the entries node and the workflow node.  A stale coordinator thus fails
 * the whole multi with ZBADVERSION and learns the newer epoch: it never
 * overwrites a newer table.
 *
 * File layout: one JSON object, written to "<path>.tmp", fsync()ed and
 * renamed over <path>:
 *   {"epoch":E,"ms":T,"workflow":{...},"functions":{"a":[...],...},
 *    "entries":[...]}
 *
 * Thread safety: one mirror is used by one thread at a time (the
 * coordinator's mirror thread, or an instance at start-up).  The watch
 * callback runs on ZooKeeper's completion thread.
 */
#ifndef IROUTE_MIRROR_H
#define IROUTE_MIRROR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One snapshot of the global table. */
struct ir_mirror_fn {
	char *name;	 /* function name */
	char *instances; /* JSON array text, e.g. "[{...},{...}]" ("[]" when none) */
};
struct ir_mirror_snap {
	uint64_t epoch;		/* >= 1 */
	uint64_t ms;		/* wall clock (ms since 1970) when the epoch was made */
	uint32_t ninstances;	/* total, entries included */
	char *workflow;		/* canonical workflow JSON (ir_workflow_to_json()) */
	struct ir_mirror_fn *fns;
	size_t nfns;
	char *entries; /* JSON array text of the entry instances ("[]" when none) */
};

/* Free what a loaded snapshot owns (everything: strings and the fns
 * array) and zero it.  Safe on a zeroed struct.  Snapshots built by the
 * caller for ir_mirror_store() are the caller's business. */
void ir_mirror_snap_free(struct ir_mirror_snap *s);

/* ZooKeeper connection settings.  Credentials are "user:password" (the
 * text of the secret file, trailing newlines stripped). */
struct ir_zk_opts {
	const char *hosts;	  /* "host:port[,host:port...]" ($IROUTE_ZK) */
	const char *cred;	  /* this side's credential (writer or reader) */
	const char *reader_cred;  /* the writer needs it for the ACL; NULL for a reader */
	uint32_t session_ms;	  /* session timeout; 0 = 6000 */
	uint32_t op_timeout_ms;	  /* how long one call waits for a connection; 0 = 2000 */
	bool writer;		  /* true: coordinator (creates nodes, stores); false: read only */
};

/* Credentials of role "writer" or "reader", looked up in this order:
 *   $IROUTE_ZK_<ROLE>        the value itself ("user:password")
 *   $IROUTE_ZK_<ROLE>_FILE   a path
 *   /var/openfaas/secrets/iroute-zk-<role>   (an OpenFaaS secret)
 * Never argv, never compiled in.  Returns the length (> 0) or -errno with a
 * message naming the source in @err (-ENOENT when none of them exists,
 * -EINVAL when the value has no ':' or an empty user). */
int ir_zk_cred_load(const char *role, char *buf, size_t cap, char *err, size_t errlen);

/* ZooKeeper's digest ACL id of "user:password": "user:" followed by
 * base64(sha1("user:password")).  Returns 0 or -EINVAL (no ':', or @cap too
 * small). */
int ir_zk_digest_id(const char *cred, char *out, size_t cap);

struct ir_mirror;

/* The file backend (always "connected").  @path is copied. */
int ir_mirror_open_file(struct ir_mirror **m, const char *path, char *err, size_t errlen);

/* The ZooKeeper backend for @workflow.  Does not wait for the connection:
 * calls made while ZooKeeper is away fail with -EAGAIN after
 * op_timeout_ms, and the handle keeps reconnecting in the background.  An
 * expired session is replaced by a new handle, re-authenticated (digest
 * @cred), and the epoch node's version and the watch re-read/re-armed, on
 * the next call or event.  Returns 0, -EINVAL (bad hosts or credential)
 * or -ENOMEM. */
int ir_mirror_open_zk(struct ir_mirror **m, const struct ir_zk_opts *o, const char *workflow,
		      char *err, size_t errlen);

/* Load the newest snapshot.  0 with @out filled (free it with
 * ir_mirror_snap_free()), -ENOENT when there is none yet, -EAGAIN when the
 * backend is unreachable, -EACCES when the credential may not read,
 * -EPROTO for content that does not parse, or another -errno; a message in
 * @err.  Records the epoch node's version for the next store. */
int ir_mirror_load(struct ir_mirror *m, struct ir_mirror_snap *out, char *err, size_t errlen);

/* Store @s (borrowed), replacing what is there.  Returns 0; -ESTALE when
 * the mirror already holds an epoch >= s->epoch written by someone else
 * (nothing is written; *@newer = that epoch); -EAGAIN when unreachable
 * (retry later, with the newest snapshot); -EACCES without write rights;
 * another -errno.  @newer may be NULL. */
int ir_mirror_store(struct ir_mirror *m, const struct ir_mirror_snap *s, uint64_t *newer,
		    char *err, size_t errlen);

/* Call @cb(@arg, epoch) whenever the stored epoch changes (ZooKeeper
 * only: a data watch on the epoch node, re-armed after every event and
 * after a session is re-established; the file backend returns -ENOTSUP).
 * epoch is 0 when it could not be read. */
int ir_mirror_watch(struct ir_mirror *m, void (*cb)(void *arg, uint64_t epoch), void *arg);

/* "file" or "zookeeper". */
const char *ir_mirror_kind(const struct ir_mirror *m);

void ir_mirror_close(struct ir_mirror *m);

/* ---- backends implement this (mirror.c dispatches) ---- */
struct ir_mirror_ops {
	const char *kind;
	int (*load)(struct ir_mirror *m, struct ir_mirror_snap *out, char *err, size_t errlen);
	int (*store)(struct ir_mirror *m, const struct ir_mirror_snap *s, uint64_t *newer,
		     char *err, size_t errlen);
	int (*watch)(struct ir_mirror *m, void (*cb)(void *arg, uint64_t epoch), void *arg);
	void (*close)(struct ir_mirror *m);
};
/* Every backend's struct starts with this. */
struct ir_mirror {
	const struct ir_mirror_ops *ops;
};

/* Shared by the backends: the snapshot's parts as JSON text, and back.
 * ir_mirror_snap_json() gives the file layout above (malloc'ed, NULL when
 * out of memory); ir_mirror_snap_parse() reads it (0, -EPROTO with a
 * message, -ENOMEM). */
char *ir_mirror_snap_json(const struct ir_mirror_snap *s);
int ir_mirror_snap_parse(const char *text, size_t len, struct ir_mirror_snap *out, char *err,
			 size_t errlen);

#endif
