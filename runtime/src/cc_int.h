/* cc_int.h - the coordinator's state, shared by cc.c (state, epochs,
 * threads) and ccapi.c (the HTTP API).  Internal. */
#ifndef IROUTE_CC_INT_H
#define IROUTE_CC_INT_H
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cc.h"
#include "iroute/hist.h"
#include "iroute/token.h"

#define CC_LOG "cc"
#define CC_ID_MAX 80
#define CC_ADDR_MAX 128
#define CC_HASH_BUCKETS 16384 /* a power of two */

struct cc_inst {
	char id[CC_ID_MAX];
	int fn; /* function index, or -1 for an entry */
	char *json;
	size_t json_len;
	char http[CC_ADDR_MAX], tcp[CC_ADDR_MAX]; /* "" when not offered */
	uint64_t renewed_ns;
	bool confirmed; /* false: loaded from the mirror, not heard from yet */
	size_t slot;	/* index in its list */
	struct cc_inst *hnext;
};

struct cc_list {
	struct cc_inst **v;
	size_t n, cap;
};

/* One published epoch; immutable once published. */
struct cc_snap {
	atomic_int refs;
	uint64_t epoch, ms, made_ns;
	uint32_t ninst;
	size_t nfns;  /* the workflow's functions */
	char **table; /* nfns + 1 local tables; [nfns] is the entry role's */
	size_t *table_len;
	char **lists; /* nfns instance arrays */
	char *entries;
	char *global;
	size_t global_len;
};

struct ir_cc {
	struct ir_workflow wf;
	char *wf_json;
	size_t wf_json_len;
	char **slices; /* per function: its DAG slice, handed out at registration */
	struct ir_mirror *mirror;
	struct ir_cc_params p;
	uint8_t token[IR_TOKEN_MAX];

	pthread_mutex_t mu;
	/* Long-polls wait for a new epoch without the state's mutex: on a
	 * futex on pub_seq (bumped at every epoch and at stop), then take the
	 * snapshot under snap_lock, a spinlock held for a pointer copy and a
	 * reference.  A thousand pollers woken at once then do not queue on
	 * one mutex (each would sleep and be woken again: ~25 us a wake-up on
	 * this VM). */
	_Atomic uint32_t pub_seq;
	_Atomic uint64_t pub_epoch;
	atomic_bool stopping;
	pthread_spinlock_t snap_lock;
	pthread_cond_t change_cv; /* dirty, or stop (publisher) */
	pthread_cond_t mirror_cv; /* a new epoch to store, or stop */
	pthread_cond_t reap_cv;	  /* stop (reaper's timed sleep) */

	struct cc_inst *hash[CC_HASH_BUCKETS];
	struct cc_list *lists; /* nfns + 1: [nfns] are the entries */
	uint32_t ninst;
	bool dirty, stop, mirror_loaded;
	uint64_t epoch; /* published */
	uint64_t floor; /* the next epoch must be above this */
	struct cc_snap *cur;

	uint64_t registrations, removals;
	uint64_t mirrored_epoch, mirror_errors, mirror_stale;
	struct ir_hist mirror_lag;
	struct ir_hist latency; /* pushed by entries */

	pthread_t publisher, reaper, mirror_thr;
	bool threads;
};

uint64_t cc_now_ns(void);

/* Under cc->mu. */
struct cc_inst *cc_find(struct ir_cc *cc, const char *id);
int cc_add(struct ir_cc *cc, struct cc_inst *in); /* takes @in */
void cc_remove(struct ir_cc *cc, struct cc_inst *in);
void cc_mark_dirty(struct ir_cc *cc);
void cc_lift_floor(struct ir_cc *cc, uint64_t epoch);

struct cc_snap *cc_snap_get(struct cc_snap *s);
/* The newest snapshot, with a reference; any thread, no lock needed. */
struct cc_snap *cc_current(struct ir_cc *cc);
/* Wait until pub_seq differs from @seq or @deadline_ns (CLOCK_MONOTONIC). */
void cc_wait_epoch(struct ir_cc *cc, uint32_t seq, uint64_t deadline_ns);
void cc_snap_put(struct cc_snap *s);
void cc_snap_release(void *s); /* for ir_wd_reply.release */
void cc_inst_free(struct cc_inst *in);

/* An instance object as stored in the mirror (ccapi.c knows the
 * schema): NULL when it is not one (logged) or out of memory. */
struct cc_inst *cc_inst_from_mirror(struct ir_cc *cc, int fn, const void *cjson_obj);

#endif
