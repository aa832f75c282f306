/* sha256.c - SHA-256 and HMAC-SHA256, straight from FIPS 180-4 and RFC 2104.
 *
 * A plain rolled-loop implementation with a 64-word message schedule: the
 * only caller MACs a handful of short messages per connection, so an
 * unrolled or SIMD version would buy nothing but review burden.
 */
#include "sha256.h"

#include <string.h>

/* FIPS 180-4 section 4.2.2: the first 32 bits of the fractional parts of the
 * cube roots of the first 64 primes. */
static const uint32_t k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* Section 5.3.3: the first 32 bits of the fractional parts of the square
 * roots of the first 8 primes. */
static const uint32_t h0[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

static inline uint32_t rotr(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

static inline uint32_t load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Section 6.2.2: one 512-bit block into the running hash value. */
static void compress(uint32_t st[8], const uint8_t *blk)
{
	uint32_t w[64];
	for (int t = 0; t < 16; t++)
		w[t] = load_be32(blk + 4 * t);
	for (int t = 16; t < 64; t++) {
		uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
		uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
		w[t] = s1 + w[t - 7] + s0 + w[t - 16];
	}

	uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
	uint32_t e = st[4], f = st[5], g = st[6], h = st[7];
	for (int t = 0; t < 64; t++) {
		uint32_t big_s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
		uint32_t ch = (e & f) ^ (~e & g);
		uint32_t t1 = h + big_s1 + ch + k[t] + w[t];
		uint32_t big_s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
		uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
		uint32_t t2 = big_s0 + maj;
		h = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	st[0] += a;
	st[1] += b;
	st[2] += c;
	st[3] += d;
	st[4] += e;
	st[5] += f;
	st[6] += g;
	st[7] += h;
	/* The schedule is derived from the message, which may be a MAC key. */
	explicit_bzero(w, sizeof(w));
}

void ir_sha256_init(struct ir_sha256 *s)
{
	memcpy(s->h, h0, sizeof(s->h));
	s->len = 0;
	s->n = 0;
}

void ir_sha256_update(struct ir_sha256 *s, const void *data, size_t len)
{
	const uint8_t *p = data;
	if (len == 0)
		return;
	s->len += len;
	if (s->n) {
		size_t take = IR_SHA256_BLOCK - s->n;
		if (take > len)
			take = len;
		memcpy(s->buf + s->n, p, take);
		s->n += take;
		p += take;
		len -= take;
		if (s->n < IR_SHA256_BLOCK)
			return;
		compress(s->h, s->buf);
		s->n = 0;
	}
	for (; len >= IR_SHA256_BLOCK; p += IR_SHA256_BLOCK, len -= IR_SHA256_BLOCK)
		compress(s->h, p);
	if (len) {
		memcpy(s->buf, p, len);
		s->n = len;
	}
}

void ir_sha256_final(struct ir_sha256 *s, uint8_t out[32])
{
	uint64_t bits = s->len * 8;

	/* Section 5.1.1: a 1 bit, zeros up to 56 mod 64, the 64-bit length. */
	s->buf[s->n++] = 0x80;
	if (s->n > IR_SHA256_BLOCK - 8) {
		memset(s->buf + s->n, 0, IR_SHA256_BLOCK - s->n);
		compress(s->h, s->buf);
		s->n = 0;
	}
	memset(s->buf + s->n, 0, IR_SHA256_BLOCK - 8 - s->n);
	for (int i = 0; i < 8; i++)
		s->buf[IR_SHA256_BLOCK - 1 - i] = (uint8_t)(bits >> (8 * i));
	compress(s->h, s->buf);
	for (int i = 0; i < 8; i++)
		store_be32(out + 4 * i, s->h[i]);
	explicit_bzero(s, sizeof(*s));
}

void ir_sha256(const void *data, size_t len, uint8_t out[32])
{
	struct ir_sha256 s;
	ir_sha256_init(&s);
	ir_sha256_update(&s, data, len);
	ir_sha256_final(&s, out);
}

void ir_hmac_sha256(const uint8_t *key, size_t key_len, const struct iovec *parts, int n,
		    uint8_t out[32])
{
	uint8_t k0[IR_SHA256_BLOCK]; /* the key, hashed if long, zero-padded */
	uint8_t pad[IR_SHA256_BLOCK];
	uint8_t inner[IR_SHA256_SIZE];
	struct ir_sha256 s;

	memset(k0, 0, sizeof(k0));
	if (key_len > IR_SHA256_BLOCK)
		ir_sha256(key, key_len, k0);
	else if (key_len)
		memcpy(k0, key, key_len);

	/* H((K0 ^ ipad) || text) */
	for (size_t i = 0; i < sizeof(pad); i++)
		pad[i] = k0[i] ^ 0x36;
	ir_sha256_init(&s);
	ir_sha256_update(&s, pad, sizeof(pad));
	for (int i = 0; i < n; i++)
		ir_sha256_update(&s, parts[i].iov_base, parts[i].iov_len);
	ir_sha256_final(&s, inner);

	/* H((K0 ^ opad) || inner) */
	for (size_t i = 0; i < sizeof(pad); i++)
		pad[i] = k0[i] ^ 0x5c;
	ir_sha256_init(&s);
	ir_sha256_update(&s, pad, sizeof(pad));
	ir_sha256_update(&s, inner, sizeof(inner));
	ir_sha256_final(&s, out);

	explicit_bzero(k0, sizeof(k0));
	explicit_bzero(pad, sizeof(pad));
	explicit_bzero(inner, sizeof(inner));
}

int ir_ct_equal(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a;
	const volatile uint8_t *y = b;
	unsigned diff = 0;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned)(x[i] ^ y[i]);
	/* diff is 0..255: diff - 1 wraps to all ones exactly when it is 0. */
	return (int)(1u & ((diff - 1u) >> 8));
}
