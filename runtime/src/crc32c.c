/* crc32c.c - CRC32C: SSE4.2 instruction when present, slicing-by-8 otherwise.
 *
 * The implementation is chosen once, on first use, from a CPU feature check
 * rather than at build time, so one binary runs everywhere and still uses
 * the instruction where it exists.  A single-stream 8-bytes-per-step loop is
 * enough: the inputs are 64-byte headers, far below the size where
 * interleaving three streams and combining them would pay off.  The tables
 * are built at run time (under pthread_once) instead of being pasted in as
 * 8 KiB of opaque constants.
 */
#include "crc32c.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

/* The Castagnoli polynomial 0x1edc6f41, bit-reversed. */
#define POLY 0x82f63b78u

enum { IMPL_UNKNOWN, IMPL_TABLE, IMPL_SSE42 };

static uint32_t table[8][256];
static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_int impl = IMPL_UNKNOWN;

static void setup(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int b = 0; b < 8; b++)
			c = (c >> 1) ^ (POLY & (0u - (c & 1u)));
		table[0][i] = c;
	}
	/* table[j][i]: byte i followed by j zero bytes. */
	for (int j = 1; j < 8; j++)
		for (int i = 0; i < 256; i++)
			table[j][i] = (table[j - 1][i] >> 8) ^ table[0][table[j - 1][i] & 0xff];

	int which = IMPL_TABLE;
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.2"))
		which = IMPL_SSE42;
#endif
	atomic_store_explicit(&impl, which, memory_order_release);
}

static int get_impl(void)
{
	int which = atomic_load_explicit(&impl, memory_order_acquire);
	if (__builtin_expect(which == IMPL_UNKNOWN, 0)) {
		pthread_once(&once, setup);
		which = atomic_load_explicit(&impl, memory_order_acquire);
	}
	return which;
}

static inline uint64_t load_le64(const uint8_t *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
	       (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
	       (uint64_t)p[7] << 56;
}

static uint32_t crc_table(uint32_t crc, const uint8_t *p, size_t len)
{
	uint32_t c = ~crc;
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t v = load_le64(p) ^ c;
		c = table[7][v & 0xff] ^ table[6][(v >> 8) & 0xff] ^ table[5][(v >> 16) & 0xff] ^
		    table[4][(v >> 24) & 0xff] ^ table[3][(v >> 32) & 0xff] ^
		    table[2][(v >> 40) & 0xff] ^ table[1][(v >> 48) & 0xff] ^ table[0][v >> 56];
	}
	while (len--)
		c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
	return ~c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const uint8_t *p,
							    size_t len)
{
	uint64_t c = ~crc;
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t v;
		memcpy(&v, p, sizeof(v)); /* unaligned load; x86 is little-endian */
		c = _mm_crc32_u64(c, v);
	}
	uint32_t c32 = (uint32_t)c;
	if (len >= 4) {
		uint32_t v;
		memcpy(&v, p, sizeof(v));
		c32 = _mm_crc32_u32(c32, v);
		p += 4;
		len -= 4;
	}
	while (len--)
		c32 = _mm_crc32_u8(c32, *p++);
	return ~c32;
}
#endif

uint32_t ir_crc32c(uint32_t crc, const void *buf, size_t len)
{
#if defined(__x86_64__)
	if (get_impl() == IMPL_SSE42)
		return crc_sse42(crc, buf, len);
#else
	(void)get_impl();
#endif
	return crc_table(crc, buf, len);
}

uint32_t ir_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	(void)get_impl();
	return crc_table(crc, buf, len);
}
