/* cc.c - the coordinator's state: instances, epochs, the publisher, the
 * lease reaper and the mirror writer (see cc.h for the design; the HTTP
 * API is ccapi.c). */
#include <errno.h>
#include <linux/futex.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cc_int.h"
#include "cctable.h"
#include "iroute/log.h"

uint64_t cc_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* An absolute CLOCK_MONOTONIC time @ms from now, for the condition
 * variables (all created with CLOCK_MONOTONIC). */
static struct timespec in_ms(uint64_t ms)
{
	uint64_t t = cc_now_ns() + ms * 1000000u;
	return (struct timespec){.tv_sec = (time_t)(t / 1000000000u),
				 .tv_nsec = (long)(t % 1000000000u)};
}

/* ---- instances ---- */

static size_t id_hash(const char *id)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *id; id++)
		h = (h ^ (uint8_t)*id) * 1099511628211ull;
	return (size_t)(h & (CC_HASH_BUCKETS - 1));
}

struct cc_inst *cc_find(struct ir_cc *cc, const char *id)
{
	for (struct cc_inst *in = cc->hash[id_hash(id)]; in; in = in->hnext)
		if (strcmp(in->id, id) == 0)
			return in;
	return NULL;
}

void cc_inst_free(struct cc_inst *in)
{
	if (in) {
		free(in->json);
		free(in);
	}
}

static struct cc_list *list_of(struct ir_cc *cc, int fn)
{
	return &cc->lists[fn < 0 ? cc->wf.nfns : (size_t)fn];
}

int cc_add(struct ir_cc *cc, struct cc_inst *in)
{
	struct cc_list *l = list_of(cc, in->fn);
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct cc_inst **v = realloc(l->v, cap * sizeof(*v));
		if (!v) {
			cc_inst_free(in);
			return -ENOMEM;
		}
		l->v = v;
		l->cap = cap;
	}
	in->slot = l->n;
	l->v[l->n++] = in;
	size_t h = id_hash(in->id);
	in->hnext = cc->hash[h];
	cc->hash[h] = in;
	cc->ninst++;
	cc_mark_dirty(cc);
	return 0;
}

void cc_remove(struct ir_cc *cc, struct cc_inst *in)
{
	struct cc_inst **pp = &cc->hash[id_hash(in->id)];
	while (*pp != in)
		pp = &(*pp)->hnext;
	*pp = in->hnext;
	struct cc_list *l = list_of(cc, in->fn);
	l->v[in->slot] = l->v[--l->n]; /* order within a function does not matter */
	l->v[in->slot]->slot = in->slot;
	cc->ninst--;
	cc->removals++;
	cc_inst_free(in);
	cc_mark_dirty(cc);
}

void cc_mark_dirty(struct ir_cc *cc)
{
	if (!cc->dirty) {
		cc->dirty = true;
		pthread_cond_signal(&cc->change_cv);
	}
}

void cc_lift_floor(struct ir_cc *cc, uint64_t epoch)
{
	if (epoch > cc->floor && epoch > cc->epoch) {
		cc->floor = epoch;
		cc_mark_dirty(cc);
	}
}

/* ---- snapshots ---- */

struct cc_snap *cc_snap_get(struct cc_snap *s)
{
	atomic_fetch_add(&s->refs, 1);
	return s;
}

static void snap_free(struct cc_snap *s)
{
	for (size_t i = 0; s->table && i <= s->nfns; i++)
		free(s->table[i]);
	for (size_t i = 0; s->lists && i < s->nfns; i++)
		free(s->lists[i]);
	free(s->table);
	free(s->table_len);
	free(s->lists);
	free(s->entries);
	free(s->global);
	free(s);
}

void cc_snap_put(struct cc_snap *s)
{
	if (s && atomic_fetch_sub(&s->refs, 1) == 1)
		snap_free(s);
}

void cc_snap_release(void *s)
{
	cc_snap_put(s);
}

struct cc_snap *cc_current(struct ir_cc *cc)
{
	pthread_spin_lock(&cc->snap_lock);
	struct cc_snap *s = cc_snap_get(cc->cur);
	pthread_spin_unlock(&cc->snap_lock);
	return s;
}

void cc_wait_epoch(struct ir_cc *cc, uint32_t seq, uint64_t deadline_ns)
{
	struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000u),
			      .tv_nsec = (long)(deadline_ns % 1000000000u)};
	/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time. */
	syscall(SYS_futex, &cc->pub_seq, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, seq, &ts, NULL,
		FUTEX_BITSET_MATCH_ANY);
}

static void wake_pollers(struct ir_cc *cc)
{
	atomic_fetch_add(&cc->pub_seq, 1);
	syscall(SYS_futex, &cc->pub_seq, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0);
}

static char *list_json(const struct cc_list *l)
{
	size_t len = 2;
	for (size_t i = 0; i < l->n; i++)
		len += l->v[i]->json_len + 1;
	char *p = malloc(len + 1), *q = p;
	if (!p)
		return NULL;
	*q++ = '[';
	for (size_t i = 0; i < l->n; i++) {
		if (i)
			*q++ = ',';
		memcpy(q, l->v[i]->json, l->v[i]->json_len);
		q += l->v[i]->json_len;
	}
	*q++ = ']';
	*q = '\0';
	return p;
}

static char *global_json(const struct ir_cc *cc, const struct cc_snap *s, size_t *len)
{
	size_t n = 128 + strlen(cc->wf.name) + strlen(s->entries);
	for (size_t i = 0; i < cc->wf.nfns; i++)
		n += strlen(cc->wf.fns[i].name) + strlen(s->lists[i]) + 4;
	char *p = malloc(n), *q = p;
	if (!p)
		return NULL;
	q += sprintf(q, "{\"epoch\":%llu,\"workflow\":\"%s\",\"functions\":{",
		     (unsigned long long)s->epoch, cc->wf.name);
	for (size_t i = 0; i < cc->wf.nfns; i++)
		q += sprintf(q, "%s\"%s\":%s", i ? "," : "", cc->wf.fns[i].name, s->lists[i]);
	q += sprintf(q, "},\"entries\":%s}", s->entries);
	*len = (size_t)(q - p);
	return p;
}

/* Under cc->mu. */
static struct cc_snap *snap_build(struct ir_cc *cc, uint64_t epoch)
{
	size_t nf = cc->wf.nfns;
	struct cc_snap *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->nfns = nf;
	atomic_init(&s->refs, 1);
	s->epoch = epoch;
	s->ms = wall_ms();
	s->made_ns = cc_now_ns();
	s->ninst = cc->ninst;
	s->table = calloc(nf + 1, sizeof(*s->table));
	s->table_len = calloc(nf + 1, sizeof(*s->table_len));
	s->lists = calloc(nf, sizeof(*s->lists));
	if (!s->table || !s->table_len || !s->lists)
		goto fail;
	for (size_t i = 0; i < nf; i++)
		if (!(s->lists[i] = list_json(&cc->lists[i])))
			goto fail;
	if (!(s->entries = list_json(&cc->lists[nf])))
		goto fail;
	for (size_t i = 0; i <= nf; i++) {
		int fn = i == nf ? -1 : (int)i;
		s->table[i] = ir_cc_table_json(&cc->wf, fn, epoch, (const char *const *)s->lists,
					       s->entries, &s->table_len[i]);
		if (!s->table[i])
			goto fail;
	}
	if (!(s->global = global_json(cc, s, &s->global_len)))
		goto fail;
	return s;
fail:
	snap_free(s);
	return NULL;
}

/* Under cc->mu: make the next epoch from the current state.  Sets
 * *@build_ns to the time the tables took (not the wake-ups). */
static int publish_locked(struct ir_cc *cc, uint64_t *build_ns)
{
	uint64_t e = (cc->epoch > cc->floor ? cc->epoch : cc->floor) + 1, t0 = cc_now_ns();
	struct cc_snap *s = snap_build(cc, e);
	if (!s)
		return -ENOMEM;
	if (build_ns)
		*build_ns = cc_now_ns() - t0;
	pthread_spin_lock(&cc->snap_lock);
	struct cc_snap *old = cc->cur;
	cc->cur = s;
	pthread_spin_unlock(&cc->snap_lock);
	cc->epoch = e;
	atomic_store(&cc->pub_epoch, e);
	wake_pollers(cc);
	pthread_cond_signal(&cc->mirror_cv);
	cc_snap_put(old);
	return 0;
}

/* Changes wait batch_ms so that a burst makes one epoch.  A big table
 * costs O(instances) to build, so the next epoch also waits until four
 * build times have passed since the last one: the publisher stays under
 * a fifth of a core however fast changes come, and a lone change after a
 * quiet spell still goes out after batch_ms. */
static void *publisher(void *arg)
{
	struct ir_cc *cc = arg;
	uint64_t not_before = 0;
	pthread_mutex_lock(&cc->mu);
	while (!cc->stop) {
		if (!cc->dirty) {
			pthread_cond_wait(&cc->change_cv, &cc->mu);
			continue;
		}
		uint64_t at = cc_now_ns() + (uint64_t)cc->p.batch_ms * 1000000u;
		if (at < not_before)
			at = not_before;
		struct timespec until = {.tv_sec = (time_t)(at / 1000000000u),
					 .tv_nsec = (long)(at % 1000000000u)};
		while (!cc->stop && cc_now_ns() < at &&
		       pthread_cond_timedwait(&cc->reap_cv, &cc->mu, &until) != ETIMEDOUT)
			;
		if (cc->stop)
			break;
		cc->dirty = false;
		uint64_t build = 0;
		if (publish_locked(cc, &build) != 0) {
			ir_error(CC_LOG, "out of memory building epoch %llu; retrying",
				 (unsigned long long)cc->epoch + 1);
			cc->dirty = true;
			build = 100000000u;
		}
		not_before = cc_now_ns() + 4 * build;
	}
	pthread_mutex_unlock(&cc->mu);
	return NULL;
}

/* ---- leases ---- */

static void *reaper(void *arg)
{
	struct ir_cc *cc = arg;
	uint64_t lease_ns = (uint64_t)cc->p.lease_ms * 1000000u;
	uint32_t tick = cc->p.lease_ms / 8 ? cc->p.lease_ms / 8 : 1;
	pthread_mutex_lock(&cc->mu);
	while (!cc->stop) {
		struct timespec until = in_ms(tick);
		pthread_cond_timedwait(&cc->reap_cv, &cc->mu, &until);
		uint64_t now = cc_now_ns();
		for (size_t f = 0; f <= cc->wf.nfns; f++) {
			struct cc_list *l = &cc->lists[f];
			for (size_t i = 0; i < l->n;) {
				struct cc_inst *in = l->v[i];
				if (now - in->renewed_ns <= lease_ns) {
					i++;
					continue;
				}
				ir_info(CC_LOG, "instance %s: lease of %u ms expired%s", in->id,
					cc->p.lease_ms,
					in->confirmed ? "" : " (not re-confirmed after a restart)");
				cc_remove(cc, in); /* moves the last one into slot i */
			}
		}
	}
	pthread_mutex_unlock(&cc->mu);
	return NULL;
}

/* ---- the mirror ---- */

/* Under cc->mu: adopt a loaded snapshot (start-up, or ZooKeeper back after
 * being away at start-up).  Its instances get one lease to poll. */
static void adopt_locked(struct ir_cc *cc, const struct ir_mirror_snap *ms)
{
	cc_lift_floor(cc, ms->epoch);
	size_t added = 0;
	for (size_t i = 0; i < ms->nfns + 1; i++) {
		const char *name = i < ms->nfns ? ms->fns[i].name : NULL;
		const char *text = i < ms->nfns ? ms->fns[i].instances : ms->entries;
		int fn = name ? ir_workflow_find(&cc->wf, name) : -1;
		if (name && fn < 0) {
			ir_warn(CC_LOG, "mirror: function \"%s\" is no longer in the workflow; "
					"its instances are dropped",
				name);
			continue;
		}
		cJSON *arr = cJSON_Parse(text ? text : "[]"), *o;
		cJSON_ArrayForEach(o, arr)
		{
			struct cc_inst *in = cc_inst_from_mirror(cc, fn, o);
			if (!in)
				continue;
			if (cc_find(cc, in->id)) {
				cc_inst_free(in);
				continue;
			}
			in->renewed_ns = cc_now_ns();
			if (cc_add(cc, in) == 0)
				added++;
		}
		cJSON_Delete(arr);
	}
	cc->mirror_loaded = true;
	ir_info(CC_LOG, "mirror (%s): epoch %llu, %zu instance(s) to re-confirm within %u ms",
		ir_mirror_kind(cc->mirror), (unsigned long long)ms->epoch, added, cc->p.lease_ms);
}

/* Under cc->mu, dropped around the I/O. */
static void try_load_locked(struct ir_cc *cc)
{
	struct ir_mirror_snap ms;
	char err[256] = "";
	pthread_mutex_unlock(&cc->mu);
	int rc = ir_mirror_load(cc->mirror, &ms, err, sizeof(err));
	pthread_mutex_lock(&cc->mu);
	if (rc == 0) {
		adopt_locked(cc, &ms);
		ir_mirror_snap_free(&ms);
	} else if (rc == -ENOENT) {
		cc->mirror_loaded = true;
	} else {
		cc->mirror_errors++;
		ir_warn(CC_LOG, "mirror: cannot read it yet: %s", err);
	}
}

static int store_snap(struct ir_cc *cc, const struct cc_snap *s, uint64_t *newer, char *err,
		      size_t errlen)
{
	size_t nf = cc->wf.nfns;
	struct ir_mirror_fn *fns = calloc(nf, sizeof(*fns));
	if (!fns)
		return -ENOMEM;
	for (size_t i = 0; i < nf; i++)
		fns[i] = (struct ir_mirror_fn){.name = cc->wf.fns[i].name, .instances = s->lists[i]};
	struct ir_mirror_snap ms = {.epoch = s->epoch,
				    .ms = s->ms,
				    .ninstances = s->ninst,
				    .workflow = cc->wf_json,
				    .fns = fns,
				    .nfns = nf,
				    .entries = s->entries};
	int rc = ir_mirror_store(cc->mirror, &ms, newer, err, errlen);
	free(fns);
	return rc;
}

static void *mirror_writer(void *arg)
{
	struct ir_cc *cc = arg;
	/* The mirror is for recovery, the tables are for instances: when both
	 * want the CPU (an epoch reaching a thousand long-polls while its
	 * ZooKeeper write is built and sent), the instances go first.  nice
	 * is per thread on Linux, and ZooKeeper's own threads, created from
	 * here, inherit it. */
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), 10) != 0)
		ir_debug(CC_LOG, "mirror thread: setpriority: %s", strerror(errno));
	uint32_t backoff = 0;
	bool failing = false;
	pthread_mutex_lock(&cc->mu);
	while (!cc->stop) {
		if (backoff) {
			struct timespec until = in_ms(backoff);
			pthread_cond_timedwait(&cc->reap_cv, &cc->mu, &until);
			if (cc->stop)
				break;
		}
		if (!cc->mirror_loaded) {
			try_load_locked(cc);
			if (!cc->mirror_loaded) {
				backoff = backoff ? (backoff * 2 > 2000 ? 2000 : backoff * 2) : 100;
				continue;
			}
		}
		if (!cc->cur || cc->cur->epoch <= cc->mirrored_epoch) {
			backoff = 0;
			pthread_cond_wait(&cc->mirror_cv, &cc->mu);
			continue;
		}
		struct cc_snap *s = cc_snap_get(cc->cur);
		pthread_mutex_unlock(&cc->mu);
		char err[256] = "";
		uint64_t newer = 0;
		int rc = store_snap(cc, s, &newer, err, sizeof(err));
		pthread_mutex_lock(&cc->mu);
		if (rc == 0) {
			if (failing)
				ir_info(CC_LOG, "mirror: caught up at epoch %llu",
					(unsigned long long)s->epoch);
			failing = false;
			backoff = 0;
			cc->mirrored_epoch = s->epoch;
			ir_hist_add(&cc->mirror_lag, (cc_now_ns() - s->made_ns) / 1000u);
		} else if (rc == -ESTALE) {
			ir_error(CC_LOG, "mirror: %s; not overwritten: this coordinator's next "
					 "epoch will be above %llu",
				 err, (unsigned long long)newer);
			cc->mirror_stale++;
			cc->mirrored_epoch = s->epoch; /* given up: never overwrite */
			if (newer > cc->floor)
				cc->floor = newer;
		} else {
			if (!failing)
				ir_warn(CC_LOG, "mirror: %s; serving on, retrying", err);
			failing = true;
			cc->mirror_errors++;
			backoff = backoff ? (backoff * 2 > 2000 ? 2000 : backoff * 2) : 100;
		}
		cc_snap_put(s);
	}
	pthread_mutex_unlock(&cc->mu);
	return NULL;
}

/* ---- life cycle ---- */

static int cv_init(pthread_cond_t *cv)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	int rc = pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
	return -rc;
}

int ir_cc_start(struct ir_cc **out, struct ir_workflow *wf, struct ir_mirror *m,
		const struct ir_cc_params *p, char *err, size_t errlen)
{
	struct ir_cc *cc = calloc(1, sizeof(*cc));
	if (!cc) {
		ir_workflow_free(wf);
		ir_mirror_close(m);
		return -ENOMEM;
	}
	cc->wf = *wf;
	memset(wf, 0, sizeof(*wf));
	cc->mirror = m;
	cc->p = *p;
	if (p->token_len > sizeof(cc->token))
		cc->p.token_len = sizeof(cc->token);
	memcpy(cc->token, p->token, cc->p.token_len);
	cc->p.token = NULL;
	pthread_mutex_init(&cc->mu, NULL);
	pthread_spin_init(&cc->snap_lock, PTHREAD_PROCESS_PRIVATE);
	cv_init(&cc->change_cv);
	cv_init(&cc->mirror_cv);
	cv_init(&cc->reap_cv);
	cc->wf_json = ir_workflow_to_json(&cc->wf);
	cc->lists = calloc(cc->wf.nfns + 1, sizeof(*cc->lists));
	cc->slices = calloc(cc->wf.nfns, sizeof(*cc->slices));
	for (size_t i = 0; cc->slices && i < cc->wf.nfns; i++)
		if (!(cc->slices[i] = ir_workflow_slice_json(&cc->wf, cc->wf.fns[i].name)))
			break;
	if (!cc->wf_json || !cc->lists || !cc->slices ||
	    (cc->wf.nfns && !cc->slices[cc->wf.nfns - 1])) {
		ir_cc_free(cc);
		return -ENOMEM;
	}
	cc->wf_json_len = strlen(cc->wf_json);
	pthread_mutex_lock(&cc->mu);
	try_load_locked(cc);
	int rc = publish_locked(cc, NULL);
	cc->dirty = false;
	pthread_mutex_unlock(&cc->mu);
	if (rc == 0 && (rc = -pthread_create(&cc->publisher, NULL, publisher, cc)) == 0) {
		if ((rc = -pthread_create(&cc->reaper, NULL, reaper, cc)) == 0) {
			if ((rc = -pthread_create(&cc->mirror_thr, NULL, mirror_writer, cc)) == 0) {
				cc->threads = true;
				*out = cc;
				return 0;
			}
			pthread_mutex_lock(&cc->mu);
			cc->stop = true;
			pthread_cond_broadcast(&cc->reap_cv);
			pthread_mutex_unlock(&cc->mu);
			pthread_join(cc->reaper, NULL);
		}
		pthread_mutex_lock(&cc->mu);
		cc->stop = true;
		pthread_cond_broadcast(&cc->change_cv);
		pthread_cond_broadcast(&cc->reap_cv);
		pthread_mutex_unlock(&cc->mu);
		pthread_join(cc->publisher, NULL);
	}
	if (err)
		snprintf(err, errlen, "coordinator start: %s", strerror(-rc));
	ir_cc_free(cc);
	return rc;
}

void ir_cc_free(struct ir_cc *cc)
{
	if (!cc)
		return;
	pthread_mutex_lock(&cc->mu);
	cc->stop = true;
	atomic_store(&cc->stopping, true);
	wake_pollers(cc);
	pthread_cond_broadcast(&cc->change_cv);
	pthread_cond_broadcast(&cc->mirror_cv);
	pthread_cond_broadcast(&cc->reap_cv);
	pthread_mutex_unlock(&cc->mu);
	if (cc->threads) {
		pthread_join(cc->publisher, NULL);
		pthread_join(cc->reaper, NULL);
		pthread_join(cc->mirror_thr, NULL);
	}
	for (size_t f = 0; cc->lists && f <= cc->wf.nfns; f++) {
		for (size_t i = 0; i < cc->lists[f].n; i++)
			cc_inst_free(cc->lists[f].v[i]);
		free(cc->lists[f].v);
	}
	free(cc->lists);
	cc_snap_put(cc->cur);
	ir_mirror_close(cc->mirror);
	for (size_t i = 0; cc->slices && i < cc->wf.nfns; i++)
		free(cc->slices[i]);
	free(cc->slices);
	free(cc->wf_json);
	ir_workflow_free(&cc->wf);
	pthread_spin_destroy(&cc->snap_lock);
	pthread_cond_destroy(&cc->change_cv);
	pthread_cond_destroy(&cc->mirror_cv);
	pthread_cond_destroy(&cc->reap_cv);
	pthread_mutex_destroy(&cc->mu);
	free(cc);
}
