/* test_crc32c.c - CRC32C check values, chaining, and hardware == table == bitwise.
 *
 * The hardware path (when the CPU has SSE4.2) and the slicing-by-8 table
 * path are both compared with a deliberately naive bit-at-a-time reference
 * written from the polynomial, so a shared mistake in table generation or
 * word handling cannot hide.  Random inputs come from a fixed-seed
 * generator so that a failure reproduces.
 */
#include <stdint.h>
#include <string.h>

#include "crc32c.h"
#include "tests.h"

static uint32_t ref_crc32c(uint32_t crc, const uint8_t *p, size_t len)
{
	uint32_t c = ~crc;
	while (len--) {
		c ^= *p++;
		for (int b = 0; b < 8; b++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
	}
	return ~c;
}

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static void fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rng() >> 56);
}

START_TEST(check_value)
{
	ck_assert_uint_eq(ir_crc32c(0, "123456789", 9), 0xe3069283u);
	ck_assert_uint_eq(ir_crc32c_sw(0, "123456789", 9), 0xe3069283u);
	ck_assert_uint_eq(ir_crc32c(0, "", 0), 0);
	ck_assert_uint_eq(ir_crc32c(0, NULL, 0), 0);
	ck_assert_uint_eq(ir_crc32c(0x12345678u, NULL, 0), 0x12345678u);
}
END_TEST

/* RFC 3720 (iSCSI) appendix B.4. */
START_TEST(iscsi_vectors)
{
	uint8_t b[32];
	memset(b, 0, sizeof(b));
	ck_assert_uint_eq(ir_crc32c(0, b, 32), 0x8a9136aau);
	memset(b, 0xff, sizeof(b));
	ck_assert_uint_eq(ir_crc32c(0, b, 32), 0x62a8ab43u);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	ck_assert_uint_eq(ir_crc32c(0, b, 32), 0x46dd794eu);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(31 - i);
	ck_assert_uint_eq(ir_crc32c(0, b, 32), 0x113fdb5cu);
	ck_assert_uint_eq(ir_crc32c_sw(0, b, 32), 0x113fdb5cu);
}
END_TEST

START_TEST(chaining)
{
	uint8_t buf[1024];
	rng_state = 0x9e3779b97f4a7c15ull;
	for (int iter = 0; iter < 500; iter++) {
		size_t len = rng() % (sizeof(buf) + 1);
		fill(buf, len);
		uint32_t whole = ir_crc32c(0, buf, len);
		ck_assert_uint_eq(whole, ref_crc32c(0, buf, len));

		/* Up to four pieces at random cut points. */
		size_t cuts[5] = {0, 0, 0, 0, len};
		for (int i = 1; i < 4; i++)
			cuts[i] = len ? rng() % (len + 1) : 0;
		for (int i = 1; i < 4; i++)
			for (int j = i + 1; j < 4; j++)
				if (cuts[j] < cuts[i]) {
					size_t t = cuts[i];
					cuts[i] = cuts[j];
					cuts[j] = t;
				}
		uint32_t hw = 0, sw = 0;
		for (int i = 0; i < 4; i++) {
			hw = ir_crc32c(hw, buf + cuts[i], cuts[i + 1] - cuts[i]);
			sw = ir_crc32c_sw(sw, buf + cuts[i], cuts[i + 1] - cuts[i]);
		}
		ck_assert_uint_eq(hw, whole);
		ck_assert_uint_eq(sw, whole);
	}
}
END_TEST

START_TEST(hw_equals_table)
{
	uint8_t buf[300 + 16];
	rng_state = 0x0123456789abcdefull;
	for (size_t len = 0; len <= 300; len++) {
		for (size_t start = 0; start < 16; start++) {
			fill(buf, sizeof(buf));
			uint32_t seed = (start & 1) ? (uint32_t)rng() : 0;
			uint32_t want = ref_crc32c(seed, buf + start, len);
			ck_assert_uint_eq(ir_crc32c_sw(seed, buf + start, len), want);
			ck_assert_uint_eq(ir_crc32c(seed, buf + start, len), want);
		}
	}
}
END_TEST

Suite *crc32c_suite(void)
{
	Suite *s = suite_create("crc32c");
	TCase *tc = tcase_create("crc32c");
	tcase_add_test(tc, check_value);
	tcase_add_test(tc, iscsi_vectors);
	tcase_add_test(tc, chaining);
	tcase_add_test(tc, hw_equals_table);
	suite_add_tcase(s, tc);
	return s;
}
