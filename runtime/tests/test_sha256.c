/* test_sha256.c - SHA-256 and HMAC-SHA256 against the FIPS 180-4 and RFC 4231 vectors.
 *
 * Digests are compared as hex strings so that a failure prints both values.
 * Beyond the published vectors, every message length around the block and
 * padding boundaries is checked against digests computed independently
 * (Python hashlib), folded into one hash to keep the table short.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "sha256.h"
#include "tests.h"

static void to_hex(const uint8_t *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void check_sha(const void *msg, size_t len, const char *want)
{
	uint8_t d[32];
	char hex[65];
	ir_sha256(msg, len, d);
	to_hex(d, sizeof(d), hex);
	ck_assert_str_eq(hex, want);
}

static void check_hmac(const uint8_t *key, size_t key_len, const void *msg, size_t len,
		       const char *want)
{
	uint8_t d[32];
	char hex[65];
	struct iovec part = {(void *)msg, len};
	ir_hmac_sha256(key, key_len, &part, 1, d);
	to_hex(d, sizeof(d), hex);
	ck_assert_str_eq(hex, want);
}

START_TEST(fips_abc)
{
	check_sha("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

START_TEST(fips_empty)
{
	check_sha("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check_sha(NULL, 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
END_TEST

START_TEST(fips_448_bits)
{
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	check_sha(m, strlen(m), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}
END_TEST

START_TEST(fips_896_bits)
{
	const char *m =
	    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmno"
	    "pqklmnopqrlmnopqrsmnopqrstnopqrstu";
	ck_assert_uint_eq(strlen(m), 112);
	check_sha(m, strlen(m), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}
END_TEST

START_TEST(fips_million_a)
{
	const char *want = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
	size_t n = 1000000;
	char *m = malloc(n);
	ck_assert_ptr_nonnull(m);
	memset(m, 'a', n);
	check_sha(m, n, want);

	/* The same message streamed in odd-sized pieces. */
	struct ir_sha256 s;
	uint8_t d[32];
	char hex[65];
	ir_sha256_init(&s);
	for (size_t off = 0, step = 1; off < n; off += step, step = step % 97 + 1)
		ir_sha256_update(&s, m + off, off + step > n ? n - off : step);
	ir_sha256_final(&s, d);
	to_hex(d, sizeof(d), hex);
	ck_assert_str_eq(hex, want);
	free(m);
}
END_TEST

/* Lengths 0..200 cover 55/56 (padding spills into a second block), 63/64/65
 * and several whole blocks; each digest is also computed byte-by-byte. */
START_TEST(lengths_around_blocks)
{
	uint8_t msg[200];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 7 + 3);
	struct ir_sha256 outer;
	ir_sha256_init(&outer);
	for (size_t n = 0; n <= sizeof(msg); n++) {
		uint8_t a[32], b[32];
		ir_sha256(msg, n, a);
		struct ir_sha256 s;
		ir_sha256_init(&s);
		for (size_t i = 0; i < n; i++)
			ir_sha256_update(&s, msg + i, 1);
		ir_sha256_final(&s, b);
		ck_assert_mem_eq(a, b, 32);
		ir_sha256_update(&outer, a, sizeof(a));
	}
	uint8_t d[32];
	char hex[65];
	ir_sha256_final(&outer, d);
	to_hex(d, sizeof(d), hex);
	ck_assert_str_eq(hex, "3275febb4612d86d586eb9f11cd21e648a9fc7d95e0f6b8d362786e28c9c5b79");
}
END_TEST

START_TEST(hmac_rfc4231_1)
{
	uint8_t key[20];
	memset(key, 0x0b, sizeof(key));
	check_hmac(key, sizeof(key), "Hi There", 8,
		   "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}
END_TEST

START_TEST(hmac_rfc4231_2)
{
	const char *m = "what do ya want for nothing?";
	check_hmac((const uint8_t *)"Jefe", 4, m, strlen(m),
		   "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}
END_TEST

START_TEST(hmac_rfc4231_3)
{
	uint8_t key[20], msg[50];
	memset(key, 0xaa, sizeof(key));
	memset(msg, 0xdd, sizeof(msg));
	check_hmac(key, sizeof(key), msg, sizeof(msg),
		   "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
}
END_TEST

START_TEST(hmac_rfc4231_4)
{
	uint8_t key[25], msg[50];
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i + 1);
	memset(msg, 0xcd, sizeof(msg));
	check_hmac(key, sizeof(key), msg, sizeof(msg),
		   "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
}
END_TEST

START_TEST(hmac_rfc4231_6)
{
	uint8_t key[131];
	const char *m = "Test Using Larger Than Block-Size Key - Hash Key First";
	memset(key, 0xaa, sizeof(key));
	check_hmac(key, sizeof(key), m, strlen(m),
		   "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}
END_TEST

START_TEST(hmac_rfc4231_7)
{
	uint8_t key[131];
	const char *m = "This is a test using a larger than block-size key and a larger than "
			"block-size data. The key needs to be hashed before being used by the HMAC "
			"algorithm.";
	memset(key, 0xaa, sizeof(key));
	check_hmac(key, sizeof(key), m, strlen(m),
		   "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}
END_TEST

/* Key lengths 0..140 cross the "hash a long key" boundary at 64/65. */
START_TEST(hmac_key_lengths)
{
	uint8_t key[140];
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 13 + 1);
	struct ir_sha256 outer;
	ir_sha256_init(&outer);
	struct iovec part = {(void *)"iroute", 6};
	for (size_t n = 0; n <= sizeof(key); n++) {
		uint8_t mac[32];
		ir_hmac_sha256(key, n, &part, 1, mac);
		ir_sha256_update(&outer, mac, sizeof(mac));
	}
	uint8_t d[32];
	char hex[65];
	ir_sha256_final(&outer, d);
	to_hex(d, sizeof(d), hex);
	ck_assert_str_eq(hex, "02b02e73d687de416c0131a7de03f831ad7b877778acd57573c3623d9948ab39");
}
END_TEST

START_TEST(hmac_multipart_equals_onepart)
{
	const char *m = "This is a test using a larger than block-size key and a larger than "
			"block-size data. The key needs to be hashed before being used by the HMAC "
			"algorithm.";
	size_t len = strlen(m);
	uint8_t key[131];
	memset(key, 0xaa, sizeof(key));

	uint8_t one[32];
	struct iovec whole = {(void *)m, len};
	ir_hmac_sha256(key, sizeof(key), &whole, 1, one);

	/* Every two-way split, with an empty part in between. */
	for (size_t cut = 0; cut <= len; cut++) {
		struct iovec parts[] = {
		    {(void *)m, cut},
		    {NULL, 0},
		    {(void *)(m + cut), len - cut},
		};
		uint8_t many[32];
		ir_hmac_sha256(key, sizeof(key), parts, 3, many);
		ck_assert_mem_eq(one, many, 32);
	}

	/* One part per byte. */
	struct iovec bytes[200];
	ck_assert_uint_le(len, 200);
	for (size_t i = 0; i < len; i++)
		bytes[i] = (struct iovec){(void *)(m + i), 1};
	uint8_t per_byte[32];
	ir_hmac_sha256(key, sizeof(key), bytes, (int)len, per_byte);
	ck_assert_mem_eq(one, per_byte, 32);

	/* No parts at all is the MAC of the empty message. */
	uint8_t none[32], empty[32];
	struct iovec nothing = {(void *)"", 0};
	ir_hmac_sha256(key, 20, NULL, 0, none);
	ir_hmac_sha256(key, 20, &nothing, 1, empty);
	ck_assert_mem_eq(none, empty, 32);
}
END_TEST

START_TEST(ct_equal)
{
	uint8_t a[64], b[64];
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = b[i] = (uint8_t)(i * 31 + 5);
	ck_assert_int_eq(ir_ct_equal(a, b, sizeof(a)), 1);
	ck_assert_int_eq(ir_ct_equal(a, b, 0), 1);
	ck_assert_int_eq(ir_ct_equal(NULL, NULL, 0), 1);
	for (size_t i = 0; i < sizeof(a); i++) {
		for (int bit = 0; bit < 8; bit++) {
			b[i] ^= (uint8_t)(1u << bit);
			ck_assert_int_eq(ir_ct_equal(a, b, sizeof(a)), 0);
			/* A difference past n is not looked at. */
			ck_assert_int_eq(ir_ct_equal(a, b, i), 1);
			b[i] ^= (uint8_t)(1u << bit);
		}
	}
	memset(b, 0, sizeof(b));
	memset(a, 0xff, sizeof(a));
	ck_assert_int_eq(ir_ct_equal(a, b, sizeof(a)), 0);
}
END_TEST

Suite *sha256_suite(void)
{
	Suite *s = suite_create("sha256");
	TCase *tc = tcase_create("sha256");
	tcase_add_test(tc, fips_abc);
	tcase_add_test(tc, fips_empty);
	tcase_add_test(tc, fips_448_bits);
	tcase_add_test(tc, fips_896_bits);
	tcase_add_test(tc, fips_million_a);
	tcase_add_test(tc, lengths_around_blocks);
	suite_add_tcase(s, tc);

	tc = tcase_create("hmac");
	tcase_add_test(tc, hmac_rfc4231_1);
	tcase_add_test(tc, hmac_rfc4231_2);
	tcase_add_test(tc, hmac_rfc4231_3);
	tcase_add_test(tc, hmac_rfc4231_4);
	tcase_add_test(tc, hmac_rfc4231_6);
	tcase_add_test(tc, hmac_rfc4231_7);
	tcase_add_test(tc, hmac_key_lengths);
	tcase_add_test(tc, hmac_multipart_equals_onepart);
	tcase_add_test(tc, ct_equal);
	suite_add_tcase(s, tc);
	return s;
}
