/* test_hello.c - the HELLO/AUTH handshake state machine, driven end to end with real frames.
 *
 * Two state machines talk through their `out` buffers: every frame is
 * decoded with ir_frame_decode() exactly as a transport would, then fed to
 * the other side.  MACs are recomputed here from the formula in hello.h
 * (not by calling into hello.c), so that the code and its documented
 * protocol cannot drift apart unnoticed, and so that a test can play a
 * peer that knows a different token.  Hostile inputs are built by hand.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "hello.h"
#include "iroute/frame.h"
#include "sha256.h"
#include "tests.h"

#define TOKEN "cluster-token-0123456789"
#define WIRE_MAX 4

/* The frames one side queued, decoded and copied out. */
struct wire {
	int n;
	struct ir_frame_hdr hdr[WIRE_MAX];
	uint8_t payload[WIRE_MAX][IR_HELLO_OUT_MAX];
};

/* Take everything @h queued (as a transport sends it and empties `out`). */
static void drain(struct ir_hello *h, struct wire *w)
{
	memset(w, 0, sizeof(*w));
	size_t off = 0;
	while (off < h->out_len) {
		ck_assert_int_lt(w->n, WIRE_MAX);
		struct ir_frame_hdr *fh = &w->hdr[w->n];
		ck_assert_int_eq(
		    ir_frame_decode(h->out + off, h->out_len - off, IR_HELLO_OUT_MAX, fh), 0);
		ck_assert_uint_le(off + IR_FRAME_HDR_SIZE + fh->payload_len, h->out_len);
		memcpy(w->payload[w->n], h->out + off + IR_FRAME_HDR_SIZE, fh->payload_len);
		off += IR_FRAME_HDR_SIZE + fh->payload_len;
		w->n++;
	}
	h->out_len = 0;
}

static int feed(struct ir_hello *h, const struct wire *w, int i, const char **why)
{
	ck_assert_int_lt(i, w->n);
	*why = NULL;
	return ir_hello_input(h, &w->hdr[i], w->payload[i], why);
}

/* Feed a hand-made frame of @type with @len payload bytes. */
static int feed_raw(struct ir_hello *h, enum ir_frame_type type, const void *payload, size_t len,
		    const char **why)
{
	static uint8_t buf[512];
	struct ir_frame_hdr fh;
	ck_assert_uint_le(len, sizeof(buf));
	memcpy(buf, payload, len);
	ir_frame_init(&fh, type);
	fh.payload_len = (uint32_t)len;
	*why = NULL;
	return ir_hello_input(h, &fh, buf, why);
}

/* @why is read through a pointer: the call that sets it is an argument. */
static void expect_err(int rc, int want, const char *const *why)
{
	ck_assert_int_eq(rc, want);
	ck_assert_ptr_nonnull(*why);
	ck_assert_uint_gt(strlen(*why), 0);
}

/* A HELLO payload: role, ident length byte @lb, nonce, @il ident bytes. */
static size_t mk_hello(uint8_t *p, char role, const uint8_t nonce[IR_HELLO_NONCE],
		       const void *ident, size_t il, uint8_t lb)
{
	p[0] = (uint8_t)role;
	p[1] = lb;
	memcpy(p + 2, nonce, IR_HELLO_NONCE);
	memcpy(p + 2 + IR_HELLO_NONCE, ident, il);
	return 2 + IR_HELLO_NONCE + il;
}

/* mac_x as hello.h defines it. */
static void spec_mac(const char *token, char role, const uint8_t *nonce_x,
		     const uint8_t *nonce_peer, const void *ident, size_t il,
		     uint8_t out[IR_HELLO_MAC])
{
	uint8_t r = (uint8_t)role;
	struct iovec parts[] = {
	    {(void *)"iroute-auth-1", 13},
	    {&r, 1},
	    {(void *)nonce_x, IR_HELLO_NONCE},
	    {(void *)nonce_peer, IR_HELLO_NONCE},
	    {(void *)ident, il},
	};
	ir_hmac_sha256((const uint8_t *)token, strlen(token), parts, 5, out);
}

struct pair {
	struct ir_hello d, a; /* dialer, acceptor */
	struct wire hello_d, hello_a;
};

/* Start both sides and take their HELLOs. */
static void pair_start(struct pair *p, const char *tok_d, const char *tok_a, const char *id_d,
		       const char *id_a)
{
	memset(p, 0, sizeof(*p));
	ck_assert_int_eq(ir_hello_start(&p->d, (const uint8_t *)tok_d, strlen(tok_d), id_d, 0), 0);
	ck_assert_int_eq(ir_hello_start(&p->a, (const uint8_t *)tok_a, strlen(tok_a), id_a, 1), 0);
	drain(&p->d, &p->hello_d);
	drain(&p->a, &p->hello_a);
	ck_assert_int_eq(p->hello_d.n, 1);
	ck_assert_int_eq(p->hello_a.n, 1);
}

/* Exchange HELLOs; returns with the dialer's AUTH in @auth_d. */
static void pair_hellos(struct pair *p, struct wire *auth_d)
{
	const char *why;
	struct wire none;
	ck_assert_int_eq(feed(&p->a, &p->hello_d, 0, &why), 0);
	drain(&p->a, &none);
	ck_assert_int_eq(none.n, 0); /* the acceptor proves nothing yet */
	ck_assert_int_eq(feed(&p->d, &p->hello_a, 0, &why), 0);
	drain(&p->d, auth_d);
	ck_assert_int_eq(auth_d->n, 1);
	ck_assert_uint_eq(auth_d->hdr[0].type, IR_FRAME_AUTH);
	ck_assert_uint_eq(auth_d->hdr[0].payload_len, IR_HELLO_MAC);
}

/* Run a whole handshake; the AUTHs are left in @auth_d and @auth_a. */
static void pair_run(struct pair *p, struct wire *auth_d, struct wire *auth_a)
{
	const char *why;
	struct wire none;
	pair_hellos(p, auth_d);
	ck_assert_int_eq(feed(&p->a, auth_d, 0, &why), 1);
	drain(&p->a, auth_a);
	ck_assert_int_eq(auth_a->n, 1);
	ck_assert_uint_eq(auth_a->hdr[0].type, IR_FRAME_AUTH);
	ck_assert_int_eq(feed(&p->d, auth_a, 0, &why), 1);
	drain(&p->d, &none);
	ck_assert_int_eq(none.n, 0);
}

static void check_hello_frame(const struct wire *w, char role, const struct ir_hello *h,
			      const char *ident)
{
	size_t il = strlen(ident);
	ck_assert_uint_eq(w->hdr[0].type, IR_FRAME_HELLO);
	ck_assert_uint_eq(w->hdr[0].payload_len, 2 + IR_HELLO_NONCE + il);
	ck_assert_uint_eq(w->payload[0][0], (uint8_t)role);
	ck_assert_uint_eq(w->payload[0][1], il);
	ck_assert_mem_eq(w->payload[0] + 2, h->nonce, IR_HELLO_NONCE);
	ck_assert_mem_eq(w->payload[0] + 2 + IR_HELLO_NONCE, ident, il);
}

/* ---- the good path ---- */

START_TEST(success)
{
	struct pair p;
	struct wire auth_d, auth_a, none;
	const char *why;
	pair_start(&p, TOKEN, TOKEN, "dialer-1", "acceptor-1");
	check_hello_frame(&p.hello_d, 'C', &p.d, "dialer-1");
	check_hello_frame(&p.hello_a, 'S', &p.a, "acceptor-1");

	ck_assert_int_eq(feed(&p.a, &p.hello_d, 0, &why), 0);
	drain(&p.a, &none);
	ck_assert_int_eq(none.n, 0);
	ck_assert_int_eq(feed(&p.d, &p.hello_a, 0, &why), 0);
	drain(&p.d, &auth_d);
	ck_assert_int_eq(auth_d.n, 1);
	ck_assert_uint_eq(auth_d.hdr[0].type, IR_FRAME_AUTH);
	ck_assert_uint_eq(auth_d.hdr[0].payload_len, IR_HELLO_MAC);
	uint8_t mac[IR_HELLO_MAC];
	spec_mac(TOKEN, 'C', p.d.nonce, p.a.nonce, "dialer-1", 8, mac);
	ck_assert_mem_eq(auth_d.payload[0], mac, IR_HELLO_MAC);

	/* The acceptor opens on the dialer's proof, and only then proves itself. */
	ck_assert_int_eq(feed(&p.a, &auth_d, 0, &why), 1);
	drain(&p.a, &auth_a);
	ck_assert_int_eq(auth_a.n, 1);
	ck_assert_uint_eq(auth_a.hdr[0].type, IR_FRAME_AUTH);
	ck_assert_uint_eq(auth_a.hdr[0].payload_len, IR_HELLO_MAC);
	spec_mac(TOKEN, 'S', p.a.nonce, p.d.nonce, "acceptor-1", 10, mac);
	ck_assert_mem_eq(auth_a.payload[0], mac, IR_HELLO_MAC);

	ck_assert_int_eq(feed(&p.d, &auth_a, 0, &why), 1);
	drain(&p.d, &none);
	ck_assert_int_eq(none.n, 0);
	ck_assert_str_eq(p.d.peer_ident, "acceptor-1");
	ck_assert_str_eq(p.a.peer_ident, "dialer-1");
	ck_assert_int_eq(p.d.done, 1);
	ck_assert_int_eq(p.a.done, 1);

	/* Nothing more is a handshake frame. */
	expect_err(feed(&p.d, &auth_a, 0, &why), -EPROTO, &why);
	expect_err(feed(&p.a, &p.hello_d, 0, &why), -EPROTO, &why);
}
END_TEST

START_TEST(empty_ident_and_token)
{
	struct pair p;
	struct wire auth_d, auth_a;
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(ir_hello_start(&p.d, (const uint8_t *)"", 0, NULL, 0), 0);
	ck_assert_int_eq(ir_hello_start(&p.a, (const uint8_t *)"", 0, "", 1), 0);
	drain(&p.d, &p.hello_d);
	drain(&p.a, &p.hello_a);
	check_hello_frame(&p.hello_d, 'C', &p.d, "");
	pair_run(&p, &auth_d, &auth_a);
	ck_assert_str_eq(p.d.peer_ident, "");
	ck_assert_str_eq(p.a.peer_ident, "");
}
END_TEST

START_TEST(nonces_fresh)
{
	struct ir_hello h1, h2;
	static const uint8_t zero[IR_HELLO_NONCE];
	ck_assert_int_eq(ir_hello_start(&h1, (const uint8_t *)TOKEN, 5, "x", 0), 0);
	ck_assert_int_eq(ir_hello_start(&h2, (const uint8_t *)TOKEN, 5, "x", 0), 0);
	ck_assert_int_ne(memcmp(h1.nonce, h2.nonce, IR_HELLO_NONCE), 0);
	ck_assert_int_ne(memcmp(h1.nonce, zero, IR_HELLO_NONCE), 0);
	struct wire w1, w2;
	drain(&h1, &w1);
	drain(&h2, &w2);
	ck_assert_int_ne(memcmp(w1.payload[0] + 2, w2.payload[0] + 2, IR_HELLO_NONCE), 0);
}
END_TEST

/* ---- wrong tokens ---- */

START_TEST(wrong_token_dialer)
{
	struct pair p;
	struct wire auth_d, none;
	const char *why;
	pair_start(&p, "not-the-token", TOKEN, "d", "a");
	pair_hellos(&p, &auth_d);
	expect_err(feed(&p.a, &auth_d, 0, &why), -EACCES, &why);
	drain(&p.a, &none);
	ck_assert_int_eq(none.n, 0); /* learned nothing but a nonce */
	ck_assert_int_eq(p.a.done, 0);
	ck_assert_int_eq(p.a.sent_auth, 0);
}
END_TEST

START_TEST(wrong_token_acceptor)
{
	struct pair p;
	struct wire auth_d, auth_a;
	const char *why;
	pair_start(&p, TOKEN, "not-the-token", "d", "a");
	pair_hellos(&p, &auth_d);
	/* A genuine dialer's proof does not verify under another token... */
	expect_err(feed(&p.a, &auth_d, 0, &why), -EACCES, &why);

	/* ...and when the acceptor is fooled by a proof made with its token,
	 * the proof it sends back fails at the dialer. */
	uint8_t forged[IR_HELLO_MAC];
	spec_mac("not-the-token", 'C', p.d.nonce, p.a.nonce, "d", 1, forged);
	ck_assert_int_eq(feed_raw(&p.a, IR_FRAME_AUTH, forged, sizeof(forged), &why), 1);
	drain(&p.a, &auth_a);
	ck_assert_int_eq(auth_a.n, 1);
	expect_err(feed(&p.d, &auth_a, 0, &why), -EACCES, &why);
	ck_assert_int_eq(p.d.done, 0);
}
END_TEST

START_TEST(replay)
{
	struct pair p1, p2;
	struct wire auth_d1, auth_a1, auth_d2, none;
	const char *why;
	pair_start(&p1, TOKEN, TOKEN, "d", "a");
	pair_run(&p1, &auth_d1, &auth_a1);

	/* Same token, same idents, fresh nonces: yesterday's proofs are useless. */
	pair_start(&p2, TOKEN, TOKEN, "d", "a");
	ck_assert_int_ne(memcmp(p1.a.nonce, p2.a.nonce, IR_HELLO_NONCE), 0);
	pair_hellos(&p2, &auth_d2);
	expect_err(feed(&p2.a, &auth_d1, 0, &why), -EACCES, &why);
	drain(&p2.a, &none);
	ck_assert_int_eq(none.n, 0);
	expect_err(feed(&p2.d, &auth_a1, 0, &why), -EACCES, &why);
	ck_assert_int_eq(p2.d.done, 0);
}
END_TEST

/* ---- out of sequence ---- */

START_TEST(reflected_hello)
{
	struct pair p;
	const char *why;
	pair_start(&p, TOKEN, TOKEN, "d", "a");
	expect_err(feed(&p.a, &p.hello_a, 0, &why), -EPROTO, &why);
	expect_err(feed(&p.d, &p.hello_d, 0, &why), -EPROTO, &why);
	ck_assert_int_eq(p.a.got_hello, 0);
	ck_assert_int_eq(p.d.got_hello, 0);
	ck_assert_uint_eq(p.d.out_len, 0); /* no AUTH for a reflection */

	/* The right role byte around our own nonce is a reflection too. */
	uint8_t hp[256];
	size_t n = mk_hello(hp, 'C', p.a.nonce, "d", 1, 1);
	expect_err(feed_raw(&p.a, IR_FRAME_HELLO, hp, n, &why), -EPROTO, &why);
	n = mk_hello(hp, 'S', p.d.nonce, "a", 1, 1);
	expect_err(feed_raw(&p.d, IR_FRAME_HELLO, hp, n, &why), -EPROTO, &why);
	ck_assert_uint_eq(p.d.out_len, 0);
}
END_TEST

START_TEST(reflected_auth)
{
	struct pair p;
	struct wire auth_d;
	const char *why;
	pair_start(&p, TOKEN, TOKEN, "same", "same");
	pair_hellos(&p, &auth_d);
	/* The dialer's own proof, bounced back, is not the acceptor's. */
	expect_err(feed(&p.d, &auth_d, 0, &why), -EACCES, &why);
	ck_assert_int_eq(p.d.done, 0);
}
END_TEST

START_TEST(auth_before_hello)
{
	struct pair p;
	const char *why;
	uint8_t mac[IR_HELLO_MAC];
	pair_start(&p, TOKEN, TOKEN, "d", "a");
	spec_mac(TOKEN, 'C', p.d.nonce, p.a.nonce, "d", 1, mac);
	expect_err(feed_raw(&p.a, IR_FRAME_AUTH, mac, sizeof(mac), &why), -EPROTO, &why);
	spec_mac(TOKEN, 'S', p.a.nonce, p.d.nonce, "a", 1, mac);
	expect_err(feed_raw(&p.d, IR_FRAME_AUTH, mac, sizeof(mac), &why), -EPROTO, &why);
	ck_assert_uint_eq(p.a.out_len, 0);
	ck_assert_int_eq(p.a.done + p.d.done, 0);
}
END_TEST

START_TEST(other_frames_during_handshake)
{
	struct pair p;
	struct wire auth_d;
	const char *why;
	uint8_t junk[16] = {0};
	pair_start(&p, TOKEN, TOKEN, "d", "a");
	for (int t = IR_FRAME_DATA; t <= IR_FRAME_TYPE_MAX; t++) {
		expect_err(feed_raw(&p.a, (enum ir_frame_type)t, junk, sizeof(junk), &why), -EPROTO,
			   &why);
		expect_err(feed_raw(&p.d, (enum ir_frame_type)t, junk, 0, &why), -EPROTO, &why);
	}
	pair_hellos(&p, &auth_d);
	for (int t = IR_FRAME_DATA; t <= IR_FRAME_TYPE_MAX; t++) {
		expect_err(feed_raw(&p.a, (enum ir_frame_type)t, junk, sizeof(junk), &why), -EPROTO,
			   &why);
		expect_err(feed_raw(&p.d, (enum ir_frame_type)t, junk, 0, &why), -EPROTO, &why);
	}
	ck_assert_int_eq(p.a.done + p.d.done, 0);
	ck_assert_uint_eq(p.a.out_len, 0);
}
END_TEST

START_TEST(second_hello)
{
	struct pair p;
	struct wire auth_d;
	const char *why;
	pair_start(&p, TOKEN, TOKEN, "d", "a");
	pair_hellos(&p, &auth_d);
	expect_err(feed(&p.a, &p.hello_d, 0, &why), -EPROTO, &why);
	expect_err(feed(&p.d, &p.hello_a, 0, &why), -EPROTO, &why);
	ck_assert_uint_eq(p.d.out_len, 0); /* no second AUTH */

	/* A different HELLO is no better than the same one twice. */
	uint8_t hp[256], nonce[IR_HELLO_NONCE];
	memset(nonce, 0x77, sizeof(nonce));
	size_t n = mk_hello(hp, 'C', nonce, "other", 5, 5);
	expect_err(feed_raw(&p.a, IR_FRAME_HELLO, hp, n, &why), -EPROTO, &why);
	ck_assert_str_eq(p.a.peer_ident, "d");
	ck_assert_mem_eq(p.a.peer_nonce, p.d.nonce, IR_HELLO_NONCE);
}
END_TEST

/* ---- malformed payloads ---- */

START_TEST(malformed_hello)
{
	struct pair p;
	const char *why;
	uint8_t hp[256], nonce[IR_HELLO_NONCE];
	memset(nonce, 0x42, sizeof(nonce));
	pair_start(&p, TOKEN, TOKEN, "d", "a");
	size_t n = mk_hello(hp, 'C', nonce, "abcde", 5, 5);

	/* Too short to hold role, length and nonce. */
	const size_t shorts[] = {0, 1, 2, 2 + IR_HELLO_NONCE - 1};
	for (size_t i = 0; i < sizeof(shorts) / sizeof(shorts[0]); i++)
		expect_err(feed_raw(&p.a, IR_FRAME_HELLO, hp, shorts[i], &why), -EPROTO, &why);
	/* The ident length byte disagrees with payload_len, both ways. */
	hp[1] = 4;
	expect_err(feed_raw(&p.a, IR_FRAME_HELLO, hp, n, &why), -EPROTO, &why);
	hp[1] = 6;
	expect_err(feed_raw(&p.a, IR_FRAME_HELLO, hp, n, &why), -EPROTO, &why);
	hp[1] = 0;
	expect_err(feed_raw(&p.a, IR_FRAME_HELLO, hp, n, &why), -EPROTO, &why);
	hp[1] = 5;
	expect_err(feed_raw(&p.a, IR_FRAME_HELLO, hp, n - 1, &why), -EPROTO, &why);
	/* An unknown role. */
	hp[0] = 'X';
	expect_err(feed_raw(&p.a, IR_FRAME_HELLO, hp, n, &why), -EPROTO, &why);
	ck_assert_int_eq(p.a.got_hello, 0);

	/* The well-formed one is still taken. */
	hp[0] = 'C';
	ck_assert_int_eq(feed_raw(&p.a, IR_FRAME_HELLO, hp, n, &why), 0);
	ck_assert_str_eq(p.a.peer_ident, "abcde");
}
END_TEST

START_TEST(malformed_auth)
{
	struct pair p;
	struct wire auth_d, none;
	const char *why;
	pair_start(&p, TOKEN, TOKEN, "d", "a");
	pair_hellos(&p, &auth_d);
	uint8_t buf[64];
	memset(buf, 0, sizeof(buf));
	memcpy(buf, auth_d.payload[0], IR_HELLO_MAC);
	const size_t lens[] = {0, 1, IR_HELLO_MAC - 1, IR_HELLO_MAC + 1, 64};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		expect_err(feed_raw(&p.a, IR_FRAME_AUTH, buf, lens[i], &why), -EPROTO, &why);
		expect_err(feed_raw(&p.d, IR_FRAME_AUTH, buf, lens[i], &why), -EPROTO, &why);
	}
	drain(&p.a, &none);
	ck_assert_int_eq(none.n, 0);
	ck_assert_int_eq(p.a.done + p.d.done, 0);
}
END_TEST

/* ---- identities ---- */

START_TEST(peer_ident_sanitised)
{
	struct pair p;
	const char *why;
	uint8_t hp[256], nonce[IR_HELLO_NONCE];
	memset(nonce, 0x42, sizeof(nonce));
	pair_start(&p, TOKEN, TOKEN, "d", "a");
	const uint8_t id[] = {'a', 0x01, 'b', 0x7f, 0x80, 0xff, ' ', '~', 0x00, '\n', 'z'};
	size_t n = mk_hello(hp, 'C', nonce, id, sizeof(id), sizeof(id));
	ck_assert_int_eq(feed_raw(&p.a, IR_FRAME_HELLO, hp, n, &why), 0);
	ck_assert_str_eq(p.a.peer_ident, "a?b??? ~??z");
}
END_TEST

/* A peer whose ident is not printable ASCII (say UTF-8) still authenticates:
 * sanitising is for log lines, the MAC covers the bytes that were sent. */
START_TEST(nonprintable_ident_authenticates)
{
	struct pair p;
	struct wire auth_d, auth_a, none;
	const char *why;
	pair_start(&p, TOKEN, TOKEN, "caf\xc3\xa9\tfn", "h\xc3\xb4te");
	pair_hellos(&p, &auth_d);
	ck_assert_str_eq(p.d.peer_ident, "h??te");
	ck_assert_str_eq(p.a.peer_ident, "caf??\?fn");
	int rc = feed(&p.a, &auth_d, 0, &why);
	ck_assert_msg(rc == 1, "genuine dialer rejected: %d (%s)", rc, why ? why : "");
	drain(&p.a, &auth_a);
	ck_assert_int_eq(auth_a.n, 1);
	rc = feed(&p.d, &auth_a, 0, &why);
	ck_assert_msg(rc == 1, "genuine acceptor rejected: %d (%s)", rc, why ? why : "");
	drain(&p.d, &none);
}
END_TEST

START_TEST(own_ident_truncated)
{
	char longid[300];
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = 0;
	longid[IR_IDENT_MAX - 1] = 'E'; /* the last byte kept */
	struct pair p;
	struct wire auth_d, auth_a;
	pair_start(&p, TOKEN, TOKEN, longid, "a");
	ck_assert_uint_eq(strlen(p.d.ident), IR_IDENT_MAX);
	ck_assert_uint_eq(p.hello_d.hdr[0].payload_len, 2 + IR_HELLO_NONCE + IR_IDENT_MAX);
	ck_assert_uint_eq(p.hello_d.payload[0][1], IR_IDENT_MAX);
	pair_run(&p, &auth_d, &auth_a);
	ck_assert_uint_eq(strlen(p.a.peer_ident), IR_IDENT_MAX);
	ck_assert_int_eq(strncmp(p.a.peer_ident, longid, IR_IDENT_MAX), 0);
	ck_assert_int_eq(p.a.peer_ident[IR_IDENT_MAX - 1], 'E');
}
END_TEST

START_TEST(peer_ident_at_max)
{
	struct pair p;
	const char *why;
	uint8_t hp[256], nonce[IR_HELLO_NONCE], id[IR_IDENT_MAX];
	memset(nonce, 0x42, sizeof(nonce));
	memset(id, 'y', sizeof(id));
	pair_start(&p, TOKEN, TOKEN, "d", "a");
	size_t n = mk_hello(hp, 'C', nonce, id, IR_IDENT_MAX, IR_IDENT_MAX);
	ck_assert_int_eq(feed_raw(&p.a, IR_FRAME_HELLO, hp, n, &why), 0);
	ck_assert_uint_eq(strlen(p.a.peer_ident), IR_IDENT_MAX);
}
END_TEST

/* A HELLO whose ident is longer than any honest peer sends (the length
 * byte allows 255) must be refused or truncated, never copied past
 * peer_ident; the frames queued in `out` stay as they were. */
START_TEST(peer_ident_overlong)
{
	struct pair p;
	const char *why;
	uint8_t hp[2 + IR_HELLO_NONCE + 255], nonce[IR_HELLO_NONCE], id[255];
	memset(nonce, 0x42, sizeof(nonce));
	memset(id, 'y', sizeof(id));
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(ir_hello_start(&p.a, (const uint8_t *)TOKEN, strlen(TOKEN), "a", 1), 0);
	uint8_t out_before[IR_HELLO_OUT_MAX];
	size_t out_len = p.a.out_len;
	memcpy(out_before, p.a.out, sizeof(out_before));

	const size_t lens[] = {IR_IDENT_MAX + 1, 200, 255};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct ir_hello a = p.a;
		size_t n = mk_hello(hp, 'C', nonce, id, lens[i], (uint8_t)lens[i]);
		int rc = feed_raw(&a, IR_FRAME_HELLO, hp, n, &why);
		ck_assert_msg(rc == 0 || rc == -EPROTO, "ident of %zu bytes: %d", lens[i], rc);
		ck_assert_msg(memchr(a.peer_ident, 0, sizeof(a.peer_ident)) != NULL,
			      "ident of %zu bytes overran peer_ident", lens[i]);
		ck_assert_msg(a.out_len == out_len && !memcmp(a.out, out_before, sizeof(a.out)),
			      "ident of %zu bytes overwrote the queued frames", lens[i]);
	}
}
END_TEST

Suite *hello_suite(void)
{
	Suite *s = suite_create("hello");
	TCase *tc = tcase_create("good");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, success);
	tcase_add_test(tc, empty_ident_and_token);
	tcase_add_test(tc, nonces_fresh);
	suite_add_tcase(s, tc);

	tc = tcase_create("auth");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, wrong_token_dialer);
	tcase_add_test(tc, wrong_token_acceptor);
	tcase_add_test(tc, replay);
	tcase_add_test(tc, reflected_auth);
	suite_add_tcase(s, tc);

	tc = tcase_create("sequence");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, reflected_hello);
	tcase_add_test(tc, auth_before_hello);
	tcase_add_test(tc, other_frames_during_handshake);
	tcase_add_test(tc, second_hello);
	tcase_add_test(tc, malformed_hello);
	tcase_add_test(tc, malformed_auth);
	suite_add_tcase(s, tc);

	tc = tcase_create("ident");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, peer_ident_sanitised);
	tcase_add_test(tc, nonprintable_ident_authenticates);
	tcase_add_test(tc, own_ident_truncated);
	tcase_add_test(tc, peer_ident_at_max);
	tcase_add_test(tc, peer_ident_overlong);
	suite_add_tcase(s, tc);
	return s;
}
