/* test_frame.c - the frame header codec: round trip, wire bytes, every decode error.
 *
 * The wire layout is checked byte by byte against frame.h rather than by
 * decoding what we encoded, so that a mistake made symmetrically in both
 * directions (a swapped field, a big-endian store) still fails a test.
 */
#include <ctype.h>
#include <limits.h>
#include <string.h>
#include <time.h>

#include "crc32c.h"
#include "iroute/frame.h"
#include "tests.h"

static void fill_extreme(struct ir_frame_hdr *h, int ones)
{
	ir_frame_init(h, IR_FRAME_DATA);
	h->flags = ones ? IR_FRAME_F_ALL : 0;
	h->branch = ones ? UINT16_MAX : 0;
	h->payload_len = ones ? UINT32_MAX : 0;
	h->request_id = ones ? UINT64_MAX : 0;
	h->origin = ones ? UINT64_MAX : 0;
	h->epoch = ones ? UINT32_MAX : 0;
	h->src_fn = ones ? UINT16_MAX : 0;
	h->attempt = ones ? UINT16_MAX : 0;
	h->deadline_ns = ones ? UINT64_MAX : 0;
	h->start_ns = ones ? UINT64_MAX : 0;
	h->sent_ns = ones ? UINT64_MAX : 0;
}

static void assert_hdr_eq(const struct ir_frame_hdr *a, const struct ir_frame_hdr *b)
{
	ck_assert_uint_eq(a->version, b->version);
	ck_assert_uint_eq(a->type, b->type);
	ck_assert_uint_eq(a->flags, b->flags);
	ck_assert_uint_eq(a->branch, b->branch);
	ck_assert_uint_eq(a->payload_len, b->payload_len);
	ck_assert_uint_eq(a->request_id, b->request_id);
	ck_assert_uint_eq(a->origin, b->origin);
	ck_assert_uint_eq(a->epoch, b->epoch);
	ck_assert_uint_eq(a->src_fn, b->src_fn);
	ck_assert_uint_eq(a->attempt, b->attempt);
	ck_assert_uint_eq(a->deadline_ns, b->deadline_ns);
	ck_assert_uint_eq(a->start_ns, b->start_ns);
	ck_assert_uint_eq(a->sent_ns, b->sent_ns);
}

/* A valid header with a distinct value in every field. */
static void fill_distinct(struct ir_frame_hdr *h)
{
	ir_frame_init(h, IR_FRAME_RESULT);
	h->flags = IR_FRAME_F_LAST;
	h->branch = 0x0a0b;
	h->payload_len = 0x11223344;
	h->request_id = 0x0102030405060708ull;
	h->origin = 0x1112131415161718ull;
	h->epoch = 0x21222324;
	h->src_fn = 0x3132;
	h->attempt = 0x4142;
	h->deadline_ns = 0x5152535455565758ull;
	h->start_ns = 0x6162636465666768ull;
	h->sent_ns = 0x7172737475767778ull;
}

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

START_TEST(init_sets_version_and_type)
{
	struct ir_frame_hdr h;
	memset(&h, 0xa5, sizeof(h));
	ir_frame_init(&h, IR_FRAME_PING);
	ck_assert_uint_eq(h.version, IR_FRAME_VERSION);
	ck_assert_uint_eq(h.type, IR_FRAME_PING);
	struct ir_frame_hdr z;
	memset(&z, 0, sizeof(z));
	z.version = IR_FRAME_VERSION;
	z.type = IR_FRAME_PING;
	assert_hdr_eq(&h, &z);
}
END_TEST

START_TEST(round_trip_extremes)
{
	for (int ones = 0; ones < 2; ones++) {
		for (unsigned type = 1; type <= IR_FRAME_TYPE_MAX; type++) {
			for (unsigned flags = 0; flags <= IR_FRAME_F_ALL; flags++) {
				struct ir_frame_hdr h, d;
				uint8_t buf[IR_FRAME_HDR_SIZE];
				fill_extreme(&h, ones);
				h.type = (uint8_t)type;
				h.flags = (uint16_t)flags;
				ir_frame_encode(&h, buf);
				ck_assert_int_eq(
				    ir_frame_decode(buf, sizeof(buf), IR_FRAME_MAX_PAYLOAD, &d), 0);
				assert_hdr_eq(&h, &d);
			}
		}
	}
	struct ir_frame_hdr h, d;
	uint8_t buf[IR_FRAME_HDR_SIZE];
	fill_distinct(&h);
	ir_frame_encode(&h, buf);
	ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf), UINT32_MAX, &d), 0);
	assert_hdr_eq(&h, &d);
}
END_TEST

START_TEST(encode_leaves_input_alone)
{
	struct ir_frame_hdr h, copy;
	uint8_t buf[IR_FRAME_HDR_SIZE];
	fill_distinct(&h);
	copy = h;
	ir_frame_encode(&h, buf);
	assert_hdr_eq(&h, &copy);
}
END_TEST

START_TEST(wire_layout_little_endian)
{
	struct ir_frame_hdr h;
	uint8_t buf[IR_FRAME_HDR_SIZE];
	fill_distinct(&h);
	memset(buf, 0xee, sizeof(buf));
	ir_frame_encode(&h, buf);

	ck_assert_uint_eq(buf[0], 'I');
	ck_assert_uint_eq(buf[1], 'R');
	ck_assert_uint_eq(le(buf + 0, 2), IR_FRAME_MAGIC);
	ck_assert_uint_eq(buf[2], IR_FRAME_VERSION);
	ck_assert_uint_eq(buf[3], IR_FRAME_RESULT);
	ck_assert_uint_eq(buf[4], 0x01);
	ck_assert_uint_eq(buf[5], 0x00);
	ck_assert_uint_eq(buf[6], 0x0b);
	ck_assert_uint_eq(buf[7], 0x0a);
	ck_assert_uint_eq(buf[12], 0x44);
	ck_assert_uint_eq(buf[15], 0x11);
	ck_assert_uint_eq(le(buf + 12, 4), 0x11223344u);
	for (int i = 0; i < 8; i++) {
		ck_assert_uint_eq(buf[16 + i], 0x08 - i);
		ck_assert_uint_eq(buf[24 + i], 0x18 - i);
		ck_assert_uint_eq(buf[40 + i], 0x58 - i);
		ck_assert_uint_eq(buf[48 + i], 0x68 - i);
		ck_assert_uint_eq(buf[56 + i], 0x78 - i);
	}
	ck_assert_uint_eq(le(buf + 32, 4), 0x21222324u);
	ck_assert_uint_eq(buf[32], 0x24);
	ck_assert_uint_eq(le(buf + 36, 2), 0x3132u);
	ck_assert_uint_eq(buf[36], 0x32);
	ck_assert_uint_eq(le(buf + 38, 2), 0x4142u);
	ck_assert_uint_eq(buf[38], 0x42);

	/* hdr_crc: CRC32C of the 64 bytes with the field zero, little-endian. */
	uint8_t z[IR_FRAME_HDR_SIZE];
	memcpy(z, buf, sizeof(z));
	memset(z + 8, 0, 4);
	ck_assert_uint_eq(le(buf + 8, 4), ir_crc32c(0, z, sizeof(z)));
}
END_TEST

/* A fixed header pinned to its exact bytes, so that the wire format
 * (including the CRC) cannot drift without a test noticing. */
START_TEST(wire_golden)
{
	struct ir_frame_hdr h;
	uint8_t buf[IR_FRAME_HDR_SIZE];
	ir_frame_init(&h, IR_FRAME_HELLO);
	ir_frame_encode(&h, buf);
	static const uint8_t want_prefix[8] = {0x49, 0x52, 0x01, 0x01, 0, 0, 0, 0};
	ck_assert_mem_eq(buf, want_prefix, sizeof(want_prefix));
	for (size_t i = 12; i < sizeof(buf); i++)
		ck_assert_uint_eq(buf[i], 0);
	uint8_t z[IR_FRAME_HDR_SIZE] = {0x49, 0x52, 0x01, 0x01};
	ck_assert_uint_eq(le(buf + 8, 4), ir_crc32c(0, z, sizeof(z)));
}
END_TEST

START_TEST(decode_accepts_trailing_bytes)
{
	struct ir_frame_hdr h, d;
	uint8_t buf[IR_FRAME_HDR_SIZE + 5] = {0};
	ir_frame_init(&h, IR_FRAME_DATA);
	h.payload_len = 5;
	ir_frame_encode(&h, buf);
	memcpy(buf + IR_FRAME_HDR_SIZE, "hello", 5);
	ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf), 5, &d), 0);
	assert_hdr_eq(&h, &d);
}
END_TEST

START_TEST(err_short)
{
	struct ir_frame_hdr h, d;
	uint8_t buf[IR_FRAME_HDR_SIZE];
	ir_frame_init(&h, IR_FRAME_DATA);
	ir_frame_encode(&h, buf);
	for (size_t len = 0; len < IR_FRAME_HDR_SIZE; len++)
		ck_assert_int_eq(ir_frame_decode(buf, len, 0, &d), -IR_FRAME_ESHORT);
	ck_assert_int_eq(ir_frame_decode(buf, IR_FRAME_HDR_SIZE, 0, &d), 0);
}
END_TEST

START_TEST(err_magic)
{
	struct ir_frame_hdr h, d;
	uint8_t buf[IR_FRAME_HDR_SIZE];
	ir_frame_init(&h, IR_FRAME_DATA);
	ir_frame_encode(&h, buf);
	buf[0] ^= 0xff;
	ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf), 0, &d), -IR_FRAME_EMAGIC);
	buf[0] ^= 0xff;
	/* Byte-swapped magic ("RI") is what a big-endian encoder would send. */
	buf[0] = 0x52;
	buf[1] = 0x49;
	ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf), 0, &d), -IR_FRAME_EMAGIC);
}
END_TEST

START_TEST(err_version)
{
	struct ir_frame_hdr h, d;
	uint8_t buf[IR_FRAME_HDR_SIZE];
	const unsigned bad[] = {0, 2, 255};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* With a correct CRC for the bad version... */
		ir_frame_init(&h, IR_FRAME_DATA);
		h.version = (uint8_t)bad[i];
		ir_frame_encode(&h, buf);
		ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf), 0, &d), -IR_FRAME_EVERSION);
		/* ...and patched in place (CRC now wrong too: version wins). */
		h.version = IR_FRAME_VERSION;
		ir_frame_encode(&h, buf);
		buf[2] = (uint8_t)bad[i];
		ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf), 0, &d), -IR_FRAME_EVERSION);
	}
}
END_TEST

START_TEST(err_crc)
{
	struct ir_frame_hdr h, d;
	uint8_t buf[IR_FRAME_HDR_SIZE];
	fill_distinct(&h);
	ir_frame_encode(&h, buf);
	buf[12] ^= 0x01; /* payload_len */
	ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf), UINT32_MAX, &d), -IR_FRAME_ECRC);
	buf[12] ^= 0x01;
	buf[9] ^= 0x80; /* the checksum itself */
	ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf), UINT32_MAX, &d), -IR_FRAME_ECRC);
}
END_TEST

/* A single flipped bit anywhere is always caught: magic and version by
 * their own checks, everything else by the CRC. */
START_TEST(every_single_bit_flip_rejected)
{
	struct ir_frame_hdr h, d;
	uint8_t buf[IR_FRAME_HDR_SIZE];
	for (int ones = 0; ones < 3; ones++) {
		if (ones == 2)
			fill_distinct(&h);
		else
			fill_extreme(&h, ones);
		ir_frame_encode(&h, buf);
		for (unsigned bit = 0; bit < 8 * IR_FRAME_HDR_SIZE; bit++) {
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			int rc = ir_frame_decode(buf, sizeof(buf), UINT32_MAX, &d);
			int want = bit < 16   ? -IR_FRAME_EMAGIC
				   : bit < 24 ? -IR_FRAME_EVERSION
					      : -IR_FRAME_ECRC;
			ck_assert_msg(rc == want, "bit %u: got %d want %d", bit, rc, want);
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf), UINT32_MAX, &d), 0);
	}
}
END_TEST

START_TEST(err_type)
{
	struct ir_frame_hdr h, d;
	uint8_t buf[IR_FRAME_HDR_SIZE];
	const unsigned bad[] = {0, IR_FRAME_TYPE_MAX + 1, 10, 255};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ir_frame_init(&h, IR_FRAME_DATA);
		h.type = (uint8_t)bad[i];
		ir_frame_encode(&h, buf);
		ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf), 0, &d), -IR_FRAME_ETYPE);
	}
}
END_TEST

START_TEST(err_flags)
{
	struct ir_frame_hdr h, d;
	uint8_t buf[IR_FRAME_HDR_SIZE];
	for (unsigned bit = 0; bit < 16; bit++) {
		ir_frame_init(&h, IR_FRAME_DATA);
		h.flags = (uint16_t)(1u << bit);
		ir_frame_encode(&h, buf);
		int want = (h.flags & ~IR_FRAME_F_ALL) ? -IR_FRAME_EFLAGS : 0;
		ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf), 0, &d), want);
	}
	ir_frame_init(&h, IR_FRAME_DATA);
	h.flags = 0xffff;
	ir_frame_encode(&h, buf);
	ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf), 0, &d), -IR_FRAME_EFLAGS);
}
END_TEST

START_TEST(err_too_big)
{
	struct ir_frame_hdr h, d;
	uint8_t buf[IR_FRAME_HDR_SIZE];
	ir_frame_init(&h, IR_FRAME_DATA);
	h.payload_len = 4096;
	ir_frame_encode(&h, buf);
	ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf), 4096, &d), 0);
	ck_assert_uint_eq(d.payload_len, 4096);
	ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf), 4095, &d), -IR_FRAME_ETOOBIG);
	ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf), 0, &d), -IR_FRAME_ETOOBIG);

	h.payload_len = IR_FRAME_MAX_PAYLOAD;
	ir_frame_encode(&h, buf);
	ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf), IR_FRAME_MAX_PAYLOAD, &d), 0);
	ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf), IR_FRAME_MAX_PAYLOAD - 1, &d),
			 -IR_FRAME_ETOOBIG);
}
END_TEST

/* When several things are wrong, the first check in the documented order
 * (length, magic, version, crc, type, flags, payload_len) is reported. */
START_TEST(error_precedence)
{
	struct ir_frame_hdr h, d;
	uint8_t buf[IR_FRAME_HDR_SIZE];

	ir_frame_init(&h, 0);
	h.flags = 0x8000;
	h.payload_len = 100;
	ir_frame_encode(&h, buf);
	ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf), 10, &d), -IR_FRAME_ETYPE);
	ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf) - 1, 10, &d), -IR_FRAME_ESHORT);

	h.type = IR_FRAME_ACK;
	ir_frame_encode(&h, buf);
	ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf), 10, &d), -IR_FRAME_EFLAGS);

	buf[20] ^= 1; /* CRC now wrong as well */
	ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf), 10, &d), -IR_FRAME_ECRC);
	buf[2] = 7;
	ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf), 10, &d), -IR_FRAME_EVERSION);
	buf[1] = 0;
	ck_assert_int_eq(ir_frame_decode(buf, sizeof(buf), 10, &d), -IR_FRAME_EMAGIC);
}
END_TEST

static int all_lower(const char *s)
{
	for (; *s; s++)
		if (isupper((unsigned char)*s))
			return 0;
	return 1;
}

START_TEST(strerror_every_code)
{
	const char *want[] = {
	    [IR_FRAME_OK] = "ok",
	    [IR_FRAME_ESHORT] = "truncated header",
	    [IR_FRAME_EMAGIC] = "bad magic",
	    [IR_FRAME_EVERSION] = "unsupported version",
	    [IR_FRAME_ECRC] = "header checksum mismatch",
	    [IR_FRAME_ETYPE] = "unknown frame type",
	    [IR_FRAME_EFLAGS] = "unknown flags",
	    [IR_FRAME_ETOOBIG] = "payload too large",
	};
	for (int e = IR_FRAME_OK; e <= IR_FRAME_ETOOBIG; e++) {
		ck_assert_str_eq(ir_frame_strerror(e), want[e]);
		ck_assert_str_eq(ir_frame_strerror(-e), want[e]);
		ck_assert(all_lower(want[e]));
		for (int f = 0; f < e; f++)
			ck_assert_str_ne(want[e], want[f]);
	}
	const int unknown[] = {IR_FRAME_ETOOBIG + 1, -(IR_FRAME_ETOOBIG + 1), 100, INT_MAX, INT_MIN,
			       INT_MIN + 1};
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
		ck_assert_str_eq(ir_frame_strerror(unknown[i]), "unknown error");
}
END_TEST

START_TEST(type_names)
{
	ck_assert_str_eq(ir_frame_type_name(IR_FRAME_HELLO), "HELLO");
	ck_assert_str_eq(ir_frame_type_name(IR_FRAME_AUTH), "AUTH");
	ck_assert_str_eq(ir_frame_type_name(IR_FRAME_DATA), "DATA");
	ck_assert_str_eq(ir_frame_type_name(IR_FRAME_ACK), "ACK");
	ck_assert_str_eq(ir_frame_type_name(IR_FRAME_RESULT), "RESULT");
	ck_assert_str_eq(ir_frame_type_name(IR_FRAME_ERROR), "ERROR");
	ck_assert_str_eq(ir_frame_type_name(IR_FRAME_PING), "PING");
	ck_assert_str_eq(ir_frame_type_name(IR_FRAME_PONG), "PONG");
	ck_assert_str_eq(ir_frame_type_name(IR_FRAME_CREDIT), "CREDIT");
	ck_assert_str_eq(ir_frame_type_name(0), "?");
	ck_assert_str_eq(ir_frame_type_name(IR_FRAME_TYPE_MAX + 1), "?");
	ck_assert_str_eq(ir_frame_type_name(255), "?");
	ck_assert_str_eq(ir_frame_type_name(UINT_MAX), "?");
}
END_TEST

START_TEST(now_is_realtime)
{
	uint64_t before = (uint64_t)time(NULL);
	uint64_t now = ir_now_realtime_ns();
	uint64_t after = (uint64_t)time(NULL);
	ck_assert_uint_ge(now / 1000000000u, before);
	ck_assert_uint_le(now / 1000000000u, after);
}
END_TEST

Suite *frame_suite(void)
{
	Suite *s = suite_create("frame");
	TCase *tc = tcase_create("codec");
	tcase_add_test(tc, init_sets_version_and_type);
	tcase_add_test(tc, round_trip_extremes);
	tcase_add_test(tc, encode_leaves_input_alone);
	tcase_add_test(tc, wire_layout_little_endian);
	tcase_add_test(tc, wire_golden);
	tcase_add_test(tc, decode_accepts_trailing_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, err_short);
	tcase_add_test(tc, err_magic);
	tcase_add_test(tc, err_version);
	tcase_add_test(tc, err_crc);
	tcase_add_test(tc, every_single_bit_flip_rejected);
	tcase_add_test(tc, err_type);
	tcase_add_test(tc, err_flags);
	tcase_add_test(tc, err_too_big);
	tcase_add_test(tc, error_precedence);
	suite_add_tcase(s, tc);

	tc = tcase_create("names");
	tcase_add_test(tc, strerror_every_code);
	tcase_add_test(tc, type_names);
	tcase_add_test(tc, now_is_realtime);
	suite_add_tcase(s, tc);
	return s;
}
