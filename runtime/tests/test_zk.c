/* test_zk.c - the ZooKeeper mirror (zkmirror.c) against a real server.
 *
 * "digest" and "cred" need no server: SHA-1 against the FIPS 180-4
 * vectors, the digest ACL id against ZooKeeper's own
 * DigestAuthenticationProvider (the value below was printed by
 *   java -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-api.jar \
 *     org.apache.zookeeper.server.auth.DigestAuthenticationProvider super:secret
 * and agrees with `printf %s super:secret | openssl dgst -binary -sha1 |
 * base64`), and every length around the SHA-1 block boundary against
 * openssl at run time.  The ZooKeeper cases start one server per test
 * (tzk.c, about 1 s) and check what the server holds with the raw C API
 * where the mirror's own answer would prove nothing (ACLs, ZNOAUTH, the
 * epoch node's bytes and version).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef THREADED
#define THREADED
#endif
#include <zookeeper/zookeeper.h>

#include "mirror.h"
#include "zkauth.h"
#include "tests.h"
#include "twd.h"
#include "tzk.h"

/* zkmirror.c's SHA-1, exported for these vectors only. */

#define WCRED tzk_writer_cred()
#define RCRED tzk_reader_cred()
#define WF "social"

static struct tzk zk;
static char err[1024];
static pthread_mutex_t cb_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t cb_last;
static int cb_calls;
static int cb_tag, cb_bad_arg;
static struct ir_mirror *opened[8];
static size_t nopened;
static FILE *zlog;

/* ---- SHA-1 and the digest id ---- */

static void check_sha1(const void *msg, size_t len, const char *want)
{
	uint8_t d[20];
	char hex[41];
	ir_zk_sha1(msg, len, d);
	for (int i = 0; i < 20; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	ck_assert_str_eq(hex, want);
}

START_TEST(sha1_fips)
{
	check_sha1("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
	check_sha1("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	check_sha1(NULL, 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	check_sha1(m448, strlen(m448), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
	const char *m896 =
	    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmno"
	    "pqklmnopqrlmnopqrsmnopqrstnopqrstu";
	check_sha1(m896, strlen(m896), "a49b2446a02c645bf419f995b67091253a04a259");
	size_t n = 1000000;
	char *m = malloc(n);
	ck_assert_ptr_nonnull(m);
	memset(m, 'a', n);
	check_sha1(m, n, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
	free(m);
}
END_TEST

START_TEST(digest_id_vector)
{
	char id[128];
	ck_assert_int_eq(ir_zk_digest_id("super:secret", id, sizeof(id)), 0);
	ck_assert_str_eq(id, "super:lK75jTNcA+U9vtVEw5vB51mj/w4=");
	/* known-answer vectors (not credentials of anything) */
	ck_assert_int_eq(ir_zk_digest_id("iroute-cc:w-secret", id, sizeof(id)), 0);
	ck_assert_str_eq(id, "iroute-cc:NXH9Qw+iK5FQfR/naX45bYOq1oM=");
	/* the password may hold ':' (only the first one splits) */
	ck_assert_int_eq(ir_zk_digest_id("u:p:q", id, sizeof(id)), 0);
	ck_assert_int_eq(strncmp(id, "u:", 2), 0);
	ck_assert_uint_eq(strlen(id), 2 + 28);
	ck_assert_int_eq(ir_zk_digest_id("nocolon", id, sizeof(id)), -EINVAL);
	ck_assert_int_eq(ir_zk_digest_id(":nouser", id, sizeof(id)), -EINVAL);
	ck_assert_int_eq(ir_zk_digest_id(NULL, id, sizeof(id)), -EINVAL);
	/* "super:" + 28 + NUL = 35 */
	ck_assert_int_eq(ir_zk_digest_id("super:secret", id, 34), -EINVAL);
	ck_assert_int_eq(ir_zk_digest_id("super:secret", id, 35), 0);
}
END_TEST

/* Credentials of every length from 1 to 3 blocks (the padding's edge
 * cases) against openssl. */
START_TEST(digest_id_openssl)
{
	char cred[200], id[256], cmd[400], want[64];
	for (size_t len = 3; len <= 150; len++) {
		/* under valgrind: the lengths next to 55/56, 63/64, 119/120, 127/128 */
		size_t r = len % 64;
		if (test_light() && len != 3 && !(r >= 54 && r <= 57) && r != 63 && r != 0 &&
		    r != 1)
			continue;
		memset(cred, 'x', len);
		memcpy(cred, "u:", 2);
		cred[len] = '\0';
		snprintf(cmd, sizeof(cmd), "printf %%s '%s' | openssl dgst -binary -sha1 | base64",
			 cred);
		FILE *p = popen(cmd, "r");
		ck_assert_ptr_nonnull(p);
		ck_assert_ptr_nonnull(fgets(want, sizeof(want), p));
		ck_assert_int_eq(pclose(p), 0);
		want[strcspn(want, "\n")] = '\0';
		ck_assert_uint_eq(strlen(want), 28);
		ck_assert_int_eq(ir_zk_digest_id(cred, id, sizeof(id)), 0);
		ck_assert_str_eq(id + 2, want);
	}
}
END_TEST

/* ---- credentials ---- */

static void cred_env_clear(void)
{
	unsetenv("IROUTE_ZK_WRITER");
	unsetenv("IROUTE_ZK_WRITER_FILE");
	/* the last place looked in must not exist on the test machine */
	ck_assert_int_ne(access("/var/openfaas/secrets/iroute-zk-writer", F_OK), 0);
}

START_TEST(cred_env_and_file)
{
	char buf[64], path[] = "/tmp/iroute-zkcred-XXXXXX";
	cred_env_clear();
	const char *w = tzk_writer_cred();
	setenv("IROUTE_ZK_WRITER", w, 1);
	ck_assert_int_eq(ir_zk_cred_load("writer", buf, sizeof(buf), err, sizeof(err)),
			 (int)strlen(w));
	ck_assert_str_eq(buf, w);

	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "cc:from-file\n\n", 14), 14);
	close(fd);
	setenv("IROUTE_ZK_WRITER_FILE", path, 1);
	/* the value wins over the file */
	ck_assert_int_eq(ir_zk_cred_load("writer", buf, sizeof(buf), err, sizeof(err)),
			 (int)strlen(w));
	ck_assert_str_eq(buf, w);
	unsetenv("IROUTE_ZK_WRITER");
	ck_assert_int_eq(ir_zk_cred_load("writer", buf, sizeof(buf), err, sizeof(err)), 12);
	ck_assert_str_eq(buf, "cc:from-file");
	/* too long for the buffer */
	ck_assert_int_eq(ir_zk_cred_load("writer", buf, 8, err, sizeof(err)), -E2BIG);
	unlink(path);
	/* a _FILE that does not exist is named */
	ck_assert_int_eq(ir_zk_cred_load("writer", buf, sizeof(buf), err, sizeof(err)), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, path));
}
END_TEST

START_TEST(cred_missing_and_bad)
{
	char buf[64];
	cred_env_clear();
	ck_assert_int_eq(ir_zk_cred_load("writer", buf, sizeof(buf), err, sizeof(err)), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "$IROUTE_ZK_WRITER,"));
	ck_assert_ptr_nonnull(strstr(err, "$IROUTE_ZK_WRITER_FILE"));
	ck_assert_ptr_nonnull(strstr(err, "/var/openfaas/secrets/iroute-zk-writer"));

	setenv("IROUTE_ZK_WRITER", "nocolon", 1);
	ck_assert_int_eq(ir_zk_cred_load("writer", buf, sizeof(buf), err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "$IROUTE_ZK_WRITER"));
	setenv("IROUTE_ZK_WRITER", ":nouser", 1);
	ck_assert_int_eq(ir_zk_cred_load("writer", buf, sizeof(buf), err, sizeof(err)), -EINVAL);
	setenv("IROUTE_ZK_WRITER", "a:b\nc", 1);
	ck_assert_int_eq(ir_zk_cred_load("writer", buf, sizeof(buf), err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(ir_zk_cred_load("Writer", buf, sizeof(buf), err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(ir_zk_cred_load("", buf, sizeof(buf), err, sizeof(err)), -EINVAL);
}
END_TEST

/* ---- the server, raw handles, snapshots ---- */

static void zk_setup(void)
{
	nopened = 0;
	cb_last = 0; /* CK_FORK=no runs every test in one process */
	cb_calls = cb_bad_arg = 0;
	ck_assert_int_eq(tzk_start(&zk), 0);
	/* the client library's own messages (connection refused while the
	 * server is away, on purpose) go next to the server's log */
	char path[128];
	snprintf(path, sizeof(path), "%s/client.log", zk.dir);
	zlog = fopen(path, "a");
	if (zlog) {
		setvbuf(zlog, NULL, _IOLBF, 0);
		zoo_set_log_stream(zlog);
	}
}

static void zk_teardown(void)
{
	for (size_t i = 0; i < nopened; i++)
		ir_mirror_close(opened[i]);
	nopened = 0;
	tzk_stop(&zk);
	zoo_set_log_stream(NULL);
	if (zlog)
		fclose(zlog);
	zlog = NULL;
}

static struct ir_mirror *open_at(const char *hosts, const char *cred, const char *rcred,
				 bool writer, uint32_t session_ms, uint32_t op_ms)
{
	struct ir_zk_opts o = {.hosts = hosts,
			       .cred = cred,
			       .reader_cred = rcred,
			       .session_ms = session_ms,
			       .op_timeout_ms = op_ms,
			       .writer = writer};
	struct ir_mirror *m = NULL;
	int rc = ir_mirror_open_zk(&m, &o, WF, err, sizeof(err));
	ck_assert_msg(rc == 0, "open: %d %s", rc, err);
	ck_assert_str_eq(ir_mirror_kind(m), "zookeeper");
	ck_assert_uint_lt(nopened, sizeof(opened) / sizeof(opened[0]));
	opened[nopened++] = m;
	return m;
}

static struct ir_mirror *open_as(const char *cred, const char *rcred, bool writer,
				 uint32_t session_ms, uint32_t op_ms)
{
	return open_at(zk.hosts, cred, rcred, writer, session_ms, op_ms);
}

static struct ir_mirror *open_writer(void)
{
	return open_as(WCRED, RCRED, true, 0, 0);
}

static struct ir_mirror *open_reader(void)
{
	return open_as(RCRED, NULL, false, 0, 0);
}

static void raw_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	(void)zh;
	(void)type;
	(void)state;
	(void)path;
	(void)ctx;
}

/* A plain handle, connected, authenticated with @cred unless NULL. */
static zhandle_t *raw_open(const char *cred)
{
	zhandle_t *zh = zookeeper_init(zk.hosts, raw_watcher, 10000, NULL, NULL, 0);
	ck_assert_ptr_nonnull(zh);
	uint64_t end = now_ms() + 10000;
	while (zoo_state(zh) != ZOO_CONNECTED_STATE && now_ms() < end)
		sleep_ms(10);
	ck_assert_int_eq(zoo_state(zh), ZOO_CONNECTED_STATE);
	if (cred)
		ck_assert_int_eq(zoo_add_auth(zh, "digest", cred, (int)strlen(cred), NULL, NULL),
				 ZOK);
	return zh;
}

/* A snapshot with its own storage: functions @names, contents tagged
 * with @tag so that two snapshots never look alike. */
struct tsnap {
	struct ir_mirror_snap s;
	struct ir_mirror_fn fns[8];
	char names[8][16], inst[8][96], wf[256], ent[64];
};

static void snap_make(struct tsnap *t, uint64_t epoch, const char *names, const char *tag)
{
	memset(t, 0, sizeof(*t));
	t->s.epoch = epoch;
	t->s.ms = 1700000000000ull + epoch;
	t->s.fns = t->fns;
	snprintf(t->wf, sizeof(t->wf), "{\"name\":\"social\",\"functions\":\"%s\",\"tag\":\"%s\"}",
		 names, tag);
	snprintf(t->ent, sizeof(t->ent), "[{\"id\":\"entry-%s\"}]", tag);
	t->s.workflow = t->wf;
	t->s.entries = t->ent;
	t->s.ninstances = 1;
	for (const char *p = names; *p; p++) {
		size_t i = t->s.nfns++;
		ck_assert_uint_lt(i, 8);
		snprintf(t->names[i], sizeof(t->names[i]), "fn-%c", *p);
		snprintf(t->inst[i], sizeof(t->inst[i]),
			 "[{\"id\":\"%c-%s-1\",\"addr\":\"10.0.0.1:8080\"},{\"id\":\"%c-%s-2\"}]",
			 *p, tag, *p, tag);
		t->fns[i].name = t->names[i];
		t->fns[i].instances = t->inst[i];
		t->s.ninstances += 2;
	}
}

/* @got (loaded: functions sorted by name) holds exactly @want. */
static void snap_check(const struct ir_mirror_snap *got, const struct ir_mirror_snap *want)
{
	ck_assert_uint_eq(got->epoch, want->epoch);
	ck_assert_uint_eq(got->ms, want->ms);
	ck_assert_uint_eq(got->ninstances, want->ninstances);
	ck_assert_str_eq(got->workflow, want->workflow);
	ck_assert_str_eq(got->entries, want->entries);
	ck_assert_uint_eq(got->nfns, want->nfns);
	for (size_t i = 0; i < got->nfns; i++) {
		if (i)
			ck_assert_int_lt(strcmp(got->fns[i - 1].name, got->fns[i].name), 0);
		size_t j = 0;
		while (j < want->nfns && strcmp(want->fns[j].name, got->fns[i].name))
			j++;
		ck_assert_msg(j < want->nfns, "unexpected function %s", got->fns[i].name);
		ck_assert_str_eq(got->fns[i].instances, want->fns[j].instances);
	}
}

static void store_ok(struct ir_mirror *m, const struct tsnap *t)
{
	uint64_t newer = 99;
	int rc = ir_mirror_store(m, &t->s, &newer, err, sizeof(err));
	ck_assert_msg(rc == 0, "store epoch %" PRIu64 ": %d %s", t->s.epoch, rc, err);
	ck_assert_uint_eq(newer, 0);
}

static void load_check(struct ir_mirror *m, const struct tsnap *t)
{
	struct ir_mirror_snap got;
	int rc = ir_mirror_load(m, &got, err, sizeof(err));
	ck_assert_msg(rc == 0, "load: %d %s", rc, err);
	snap_check(&got, &t->s);
	ir_mirror_snap_free(&got);
}

/* Retries @op while it gives -EAGAIN, for up to @ms. */
static int store_until(struct ir_mirror *m, const struct tsnap *t, unsigned ms)
{
	uint64_t end = now_ms() + ms;
	int rc;
	while ((rc = ir_mirror_store(m, &t->s, NULL, err, sizeof(err))) == -EAGAIN &&
	       now_ms() < end)
		sleep_ms(100);
	return rc;
}

static const char *epoch_path = "/iroute/" WF "/epoch";

/* ---- what the server holds ---- */

START_TEST(store_load_round_trip)
{
	struct ir_mirror *w = open_writer();
	struct tsnap t1, t2;
	snap_make(&t1, 1, "abc", "one");
	store_ok(w, &t1);
	load_check(w, &t1);
	/* a reader, on its own handle and credential, sees the same */
	struct ir_mirror *r = open_reader();
	load_check(r, &t1);

	/* the bytes of the epoch node, its version and the ACLs */
	zhandle_t *zh = raw_open(WCRED);
	char buf[256];
	int len = sizeof(buf) - 1;
	struct Stat st;
	ck_assert_int_eq(zoo_get(zh, epoch_path, 0, buf, &len, &st), ZOK);
	buf[len] = '\0';
	ck_assert_str_eq(buf, "{\"epoch\":1,\"instances\":7,\"ms\":1700000000001}");
	ck_assert_int_eq(st.version, 1); /* created empty, then one store */
	const char *nodes[] = {"/iroute",
			       "/iroute/" WF,
			       epoch_path,
			       "/iroute/" WF "/workflow",
			       "/iroute/" WF "/functions",
			       "/iroute/" WF "/functions/fn-a",
			       "/iroute/" WF "/entries"};
	char wid[64], rid[64];
	ck_assert_int_eq(ir_zk_digest_id(WCRED, wid, sizeof(wid)), 0);
	ck_assert_int_eq(ir_zk_digest_id(RCRED, rid, sizeof(rid)), 0);
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		struct ACL_vector acl;
		ck_assert_int_eq(zoo_get_acl(zh, nodes[i], &acl, &st), ZOK);
		ck_assert_int_eq(acl.count, 2);
		ck_assert_str_eq(acl.data[0].id.scheme, "digest");
		ck_assert_str_eq(acl.data[0].id.id, wid);
		ck_assert_int_eq(acl.data[0].perms, ZOO_PERM_ALL);
		ck_assert_str_eq(acl.data[1].id.scheme, "digest");
		ck_assert_str_eq(acl.data[1].id.id, rid);
		ck_assert_int_eq(acl.data[1].perms, ZOO_PERM_READ);
		deallocate_ACL_vector(&acl);
	}

	/* the next epoch: fn-a leaves the workflow, fn-d joins it */
	snap_make(&t2, 2, "bcd", "two");
	store_ok(w, &t2);
	load_check(w, &t2);
	load_check(r, &t2);
	ck_assert_int_eq(zoo_exists(zh, "/iroute/" WF "/functions/fn-a", 0, &st), ZNONODE);
	ck_assert_int_eq(zoo_exists(zh, epoch_path, 0, &st), ZOK);
	ck_assert_int_eq(st.version, 2);

	/* never back: an older epoch is refused, nothing written */
	uint64_t newer = 0;
	ck_assert_int_eq(ir_mirror_store(w, &t1.s, &newer, err, sizeof(err)), -ESTALE);
	ck_assert_uint_eq(newer, 2);
	load_check(r, &t2);
	/* the same snapshot again (a retry whose first reply was lost), here
	 * from a fresh writer that never saw the version: nothing written */
	struct ir_mirror *w2 = open_writer();
	store_ok(w2, &t2);
	ck_assert_int_eq(zoo_exists(zh, epoch_path, 0, &st), ZOK);
	ck_assert_int_eq(st.version, 2);
	/* the same after a load (which records the version it read) */
	struct ir_mirror *w3 = open_writer();
	load_check(w3, &t2);
	store_ok(w3, &t2);
	ck_assert_int_eq(zoo_exists(zh, epoch_path, 0, &st), ZOK);
	ck_assert_int_eq(st.version, 2);
	zookeeper_close(zh);
}
END_TEST

START_TEST(large_node_and_limit)
{
	struct ir_mirror *w = open_writer();
	struct tsnap t;
	snap_make(&t, 1, "ab", "big");
	/* one function node of 900 kB: near jute.maxbuffer, still allowed */
	size_t n = 900 * 1000;
	char *big = malloc(n + 1);
	ck_assert_ptr_nonnull(big);
	big[0] = '[';
	for (size_t i = 1; i < n - 1; i += 4)
		memcpy(big + i, "1,2,", 4);
	memcpy(big + n - 4, "1,2]", 4);
	big[n] = '\0';
	t.fns[0].instances = big;
	store_ok(w, &t);
	load_check(open_reader(), &t);
	/* a whole snapshot over 1 MiB cannot be one request: refused up front */
	t.s.epoch = 2;
	t.fns[1].instances = big;
	ck_assert_int_eq(ir_mirror_store(w, &t.s, NULL, err, sizeof(err)), -EMSGSIZE);
	ck_assert_ptr_nonnull(strstr(err, "jute.maxbuffer"));
	free(big);
}
END_TEST

START_TEST(reader_cannot_write)
{
	struct ir_mirror *w = open_writer();
	struct tsnap t1, t9;
	snap_make(&t1, 1, "ab", "one");
	snap_make(&t9, 9, "ab", "nine");
	store_ok(w, &t1);

	char buf[256];
	int len = sizeof(buf);
	struct Stat st;
	/* the reader's credential reads and may not write */
	zhandle_t *rz = raw_open(RCRED);
	ck_assert_int_eq(zoo_get(rz, epoch_path, 0, buf, &len, &st), ZOK);
	ck_assert_int_eq(zoo_set(rz, epoch_path, "{}", 2, -1), ZNOAUTH);
	ck_assert_int_eq(
	    zoo_create(rz, "/iroute/" WF "/functions/x", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0),
	    ZNOAUTH);
	zookeeper_close(rz);
	/* the writer's user with a wrong password is someone else */
	zhandle_t *bz = raw_open("iroute-cc:wrong");
	ck_assert_int_eq(zoo_set(bz, epoch_path, "{}", 2, -1), ZNOAUTH);
	zookeeper_close(bz);
	/* no credential: not even read */
	zhandle_t *az = raw_open(NULL);
	len = sizeof(buf);
	ck_assert_int_eq(zoo_get(az, epoch_path, 0, buf, &len, &st), ZNOAUTH);
	zookeeper_close(az);

	/* a reader mirror refuses to store */
	struct ir_mirror *r = open_reader();
	ck_assert_int_eq(ir_mirror_store(r, &t9.s, NULL, err, sizeof(err)), -EACCES);
	/* a "writer" mirror holding the reader's credential: the server refuses */
	struct ir_mirror *fake = open_as(RCRED, RCRED, true, 0, 0);
	ck_assert_int_eq(ir_mirror_store(fake, &t9.s, NULL, err, sizeof(err)), -EACCES);
	ck_assert_msg(strstr(err, "not authenticated") || strstr(err, "auth"), "%s", err);
	load_check(r, &t1);
}
END_TEST

START_TEST(stale_writer)
{
	struct ir_mirror *a = open_writer();
	struct ir_mirror *b = open_writer();
	struct tsnap t5, t6, t7, t8;
	snap_make(&t5, 5, "ab", "five");
	snap_make(&t6, 6, "abc", "six");
	snap_make(&t7, 7, "b", "seven");
	snap_make(&t8, 8, "ac", "eight");
	store_ok(a, &t5);
	store_ok(b, &t7); /* b never saw a version: it reads 5 < 7 and goes on */
	uint64_t newer = 0;
	ck_assert_int_eq(ir_mirror_store(a, &t6.s, &newer, err, sizeof(err)), -ESTALE);
	ck_assert_uint_eq(newer, 7);
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "zookeeper %s: ", zk.hosts);
	ck_assert_int_eq(strncmp(err, prefix, strlen(prefix)), 0);
	ck_assert_ptr_nonnull(strstr(err, "epoch 7"));
	ck_assert_ptr_nonnull(strstr(err, "epoch 6"));
	load_check(a, &t7); /* 6 wrote nothing (fn-c not created either) */
	/* a newer epoch from the same stale handle: CAS fails, 7 < 8, retried */
	store_ok(a, &t8);
	load_check(b, &t8);
}
END_TEST

START_TEST(zookeeper_away)
{
	struct ir_mirror *w = open_as(WCRED, RCRED, true, 0, 1000);
	struct ir_mirror *r = open_reader();
	struct tsnap t1, t2, t3;
	snap_make(&t1, 1, "ab", "one");
	snap_make(&t2, 2, "abc", "two");
	snap_make(&t3, 3, "c", "three");
	store_ok(w, &t1);
	load_check(r, &t1);

	tzk_kill(&zk);
	sleep_ms(300); /* the client has seen the connection drop */
	uint64_t t0 = now_ms();
	ck_assert_int_eq(ir_mirror_store(w, &t2.s, NULL, err, sizeof(err)), -EAGAIN);
	uint64_t took = now_ms() - t0;
	ck_assert_msg(took >= 950 && took < 2500, "store gave up after %" PRIu64 " ms", took);
	char want[128];
	snprintf(want, sizeof(want), "zookeeper %s: not connected after 1000 ms", zk.hosts);
	ck_assert_str_eq(err, want);
	struct ir_mirror_snap s;
	ck_assert_int_eq(ir_mirror_load(w, &s, err, sizeof(err)), -EAGAIN);

	/* back (same data): the handles reconnect by themselves and the
	 * mirror converges on the newest epoch */
	ck_assert_int_eq(tzk_restart(&zk), 0);
	int rc = store_until(w, &t3, 15000);
	ck_assert_msg(rc == 0, "store after restart: %d %s", rc, err);
	load_check(w, &t3);
	load_check(r, &t3);
}
END_TEST

/* ---- watches and sessions ---- */

/* ZooKeeper's completion thread: record, assert on the test's thread. */
static void on_epoch(void *arg, uint64_t epoch)
{
	pthread_mutex_lock(&cb_lock);
	cb_last = epoch;
	cb_calls++;
	cb_bad_arg += arg != &cb_tag;
	pthread_mutex_unlock(&cb_lock);
}

static int cb_count(void)
{
	pthread_mutex_lock(&cb_lock);
	int n = cb_calls;
	ck_assert_int_eq(cb_bad_arg, 0);
	pthread_mutex_unlock(&cb_lock);
	return n;
}

/* Waits up to @ms for the callback to report @epoch. */
static bool cb_wait(uint64_t epoch, unsigned ms)
{
	uint64_t end = now_ms() + ms;
	for (;;) {
		pthread_mutex_lock(&cb_lock);
		bool seen = cb_last == epoch;
		pthread_mutex_unlock(&cb_lock);
		if (seen)
			return true;
		if (now_ms() >= end)
			return false;
		sleep_ms(20);
	}
}

START_TEST(watch_sees_other_writer)
{
	struct ir_mirror *w = open_writer();
	struct ir_mirror *r = open_reader();
	struct tsnap t1, t2, t3;
	snap_make(&t1, 1, "ab", "one");
	snap_make(&t2, 2, "abc", "two");
	snap_make(&t3, 3, "c", "three");
	store_ok(w, &t1);
	load_check(r, &t1); /* connected */
	ck_assert_int_eq(ir_mirror_watch(r, on_epoch, &cb_tag), 0);
	sleep_ms(300);
	ck_assert_int_eq(cb_count(), 0); /* setting the watch reports nothing */
	store_ok(w, &t2);
	ck_assert_msg(cb_wait(2, 5000), "no callback for epoch 2");
	store_ok(w, &t3); /* watches fire once: this needs the re-armed one */
	ck_assert_msg(cb_wait(3, 5000), "no callback for epoch 3");
	ck_assert_int_eq(cb_count(), 2);
}
END_TEST

/* The session of a (2 s) expires for certain: its link (through the
 * forwarder) is cut while the server runs, and only restored once the
 * server logged the expiry.  b, a writer on a 30 s session, connects
 * directly. */
START_TEST(session_expiry)
{
	ck_assert_int_eq(tzk_proxy_start(&zk), 0);
	struct ir_mirror *a = open_at(zk.proxy_hosts, WCRED, RCRED, true, 2000, 2000);
	struct ir_mirror *b = open_as(WCRED, RCRED, true, 30000, 2000);
	struct tsnap t1, t2, t3, t4;
	snap_make(&t1, 1, "ab", "one");
	snap_make(&t2, 2, "abc", "two");
	snap_make(&t3, 3, "c", "three");
	snap_make(&t4, 4, "ac", "four");
	store_ok(a, &t1);
	ck_assert_int_eq(ir_mirror_watch(a, on_epoch, &cb_tag), 0);
	load_check(b, &t1);

	tzk_proxy_pause(&zk);
	uint64_t end = now_ms() + 10000;
	while (!tzk_log_has(&zk, "timeout of 2000ms exceeded") && now_ms() < end)
		sleep_ms(100);
	ck_assert_msg(tzk_log_has(&zk, "timeout of 2000ms exceeded"), "a's session did not expire");
	store_ok(b, &t2); /* while a is away: its watch will have missed it */
	tzk_proxy_resume(&zk);

	/* a: a new handle, authenticated again (the nodes' ACL demands it),
	 * the version re-read (it moved: b stored 2) */
	int rc = store_until(a, &t3, 15000);
	ck_assert_msg(rc == 0, "store after expiry: %d %s", rc, err);
	load_check(b, &t3);
	/* a's watch was re-armed on the new session */
	store_ok(b, &t4);
	ck_assert_msg(cb_wait(4, 10000), "no callback for epoch 4 after the expiry");
	load_check(a, &t4);
}
END_TEST

/* The server itself hangs longer than a's session (2 s): whether the
 * server then expires the session or a's reconnect revives it first (a
 * race inside the server), the mirror stores again and its watch works. */
START_TEST(server_pause)
{
	struct ir_mirror *a = open_as(WCRED, RCRED, true, 2000, 2000);
	struct ir_mirror *b = open_as(WCRED, RCRED, true, 30000, 2000);
	struct tsnap t1, t2, t3;
	snap_make(&t1, 1, "ab", "one");
	snap_make(&t2, 2, "abc", "two");
	snap_make(&t3, 3, "c", "three");
	store_ok(a, &t1);
	ck_assert_int_eq(ir_mirror_watch(a, on_epoch, &cb_tag), 0);
	load_check(b, &t1);

	tzk_pause(&zk);
	sleep_ms(4000);
	tzk_resume(&zk);
	int rc = store_until(a, &t2, 15000);
	ck_assert_msg(rc == 0, "store after the pause: %d %s", rc, err);
	load_check(b, &t2);
	store_ok(b, &t3);
	ck_assert_msg(cb_wait(3, 10000), "no callback for epoch 3 after the pause");
	load_check(a, &t3);
}
END_TEST

/* ---- errors ---- */

START_TEST(open_errors)
{
	struct ir_mirror *m = (struct ir_mirror *)&m;
	struct ir_zk_opts o = {.hosts = "", .cred = WCRED, .reader_cred = RCRED, .writer = true};
	ck_assert_int_eq(ir_mirror_open_zk(&m, &o, WF, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_null(m);
	ck_assert_ptr_nonnull(strstr(err, "bad hosts"));
	o.hosts = NULL;
	ck_assert_int_eq(ir_mirror_open_zk(&m, &o, WF, err, sizeof(err)), -EINVAL);
	o.hosts = "127.0.0.1:1";
	ck_assert_int_eq(ir_mirror_open_zk(&m, &o, "a/b", err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(ir_mirror_open_zk(&m, &o, "", err, sizeof(err)), -EINVAL);
	o.reader_cred = NULL;
	ck_assert_int_eq(ir_mirror_open_zk(&m, &o, WF, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "reader's credential"));
	o.writer = false;
	o.cred = "nocolon";
	ck_assert_int_eq(ir_mirror_open_zk(&m, &o, WF, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_null(m);
}
END_TEST

START_TEST(not_connected_message)
{
	int port = free_port(); /* nobody listens */
	char hosts[32], want[128];
	snprintf(hosts, sizeof(hosts), "127.0.0.1:%d", port);
	struct ir_zk_opts o = {.hosts = hosts, .cred = RCRED, .op_timeout_ms = 300};
	struct ir_mirror *m;
	FILE *devnull = fopen("/dev/null", "w"); /* "connection refused", on purpose */
	zoo_set_log_stream(devnull);
	int rc = ir_mirror_open_zk(&m, &o, WF, err, sizeof(err));
	ck_assert_msg(rc == 0, "open: %d %s", rc, err);
	uint64_t t0 = now_ms();
	struct ir_mirror_snap s;
	ck_assert_int_eq(ir_mirror_load(m, &s, err, sizeof(err)), -EAGAIN);
	uint64_t took = now_ms() - t0;
	ck_assert_msg(took >= 290 && took < 1500, "gave up after %" PRIu64 " ms", took);
	snprintf(want, sizeof(want), "zookeeper %s: not connected after 300 ms", hosts);
	ck_assert_str_eq(err, want);
	ir_mirror_close(m);
	zoo_set_log_stream(NULL);
	fclose(devnull);
}
END_TEST

START_TEST(load_empty_server)
{
	struct ir_mirror *r = open_reader();
	struct ir_mirror_snap s;
	ck_assert_int_eq(ir_mirror_load(r, &s, err, sizeof(err)), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "no snapshot"));
	ck_assert_ptr_null(s.workflow);
	/* still none while the epoch node exists but is empty (a writer made
	 * the nodes and has not stored yet); here made by someone else, with
	 * an open ACL */
	zhandle_t *zh = raw_open(WCRED);
	ck_assert_int_eq(zoo_create(zh, "/iroute", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
	ck_assert_int_eq(zoo_create(zh, "/iroute/" WF, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0),
			 ZOK);
	ck_assert_int_eq(zoo_create(zh, epoch_path, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
	ck_assert_int_eq(ir_mirror_load(r, &s, err, sizeof(err)), -ENOENT);
	/* garbage in the epoch node is -EPROTO */
	ck_assert_int_eq(zoo_set(zh, epoch_path, "{\"epoch\":\"x\"}", 13, -1), ZOK);
	ck_assert_int_eq(ir_mirror_load(r, &s, err, sizeof(err)), -EPROTO);
	ck_assert_ptr_nonnull(strstr(err, epoch_path));
	/* a writer does not overwrite what it cannot read: it might be newer */
	struct tsnap t1;
	snap_make(&t1, 1, "a", "one");
	struct ir_mirror *w = open_writer();
	ck_assert_int_eq(ir_mirror_store(w, &t1.s, NULL, err, sizeof(err)), -EPROTO);
	/* emptied: the writer takes over the foreign nodes (any ACL) and stores */
	ck_assert_int_eq(zoo_set(zh, epoch_path, "", 0, -1), ZOK);
	store_ok(w, &t1);
	load_check(r, &t1);
	zookeeper_close(zh);
}
END_TEST

Suite *zk_suite(void)
{
	Suite *s = suite_create("zk");
	TCase *tc = tcase_create("digest");
	tcase_add_test(tc, sha1_fips);
	tcase_add_test(tc, digest_id_vector);
	tcase_add_test(tc, digest_id_openssl);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("cred");
	tcase_add_test(tc, cred_env_and_file);
	tcase_add_test(tc, cred_missing_and_bad);
	tcase_add_test(tc, open_errors);
	tcase_add_test(tc, not_connected_message);
	suite_add_tcase(s, tc);

	tc = tcase_create("server");
	tcase_add_checked_fixture(tc, zk_setup, zk_teardown);
	tcase_set_timeout(tc, 40);
	tcase_add_test(tc, store_load_round_trip);
	tcase_add_test(tc, large_node_and_limit);
	tcase_add_test(tc, reader_cannot_write);
	tcase_add_test(tc, stale_writer);
	tcase_add_test(tc, watch_sees_other_writer);
	tcase_add_test(tc, load_empty_server);
	tcase_add_test(tc, zookeeper_away);
	tcase_add_test(tc, session_expiry);
	tcase_add_test(tc, server_pause);
	suite_add_tcase(s, tc);
	return s;
}
