/* sha256.h - SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104) for the handshake.
 *
 * Written in-tree from the specifications rather than linked from OpenSSL:
 * the handshake needs one MAC over a few hundred bytes per connection, which
 * does not justify a crypto library dependency (and its init/version
 * churn) in every process.  Speed is therefore secondary to being small and
 * obviously correct; the tests pin the FIPS and RFC 4231 vectors.
 */
#ifndef IROUTE_SHA256_H
#define IROUTE_SHA256_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define IR_SHA256_SIZE 32u
#define IR_SHA256_BLOCK 64u

/* Streaming state.  Invariant: n < 64 bytes wait in buf; len counts every
 * byte fed so far (the bit length is len * 8, mod 2^64 as FIPS allows). */
struct ir_sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	size_t n;
};

void ir_sha256_init(struct ir_sha256 *s);

/* Feed @len bytes at @data (may be NULL when @len is 0). */
void ir_sha256_update(struct ir_sha256 *s, const void *data, size_t len);

/* Write the digest to @out and wipe @s; call ir_sha256_init() to reuse it. */
void ir_sha256_final(struct ir_sha256 *s, uint8_t out[32]);

/* One-shot digest of @len bytes at @data. */
void ir_sha256(const void *data, size_t len, uint8_t out[32]);

/* HMAC over the concatenation of @n parts.  Keys longer than the block size
 * are hashed first (RFC 2104).  Key-derived intermediate state is wiped
 * before returning; @key and @parts are only read. */
void ir_hmac_sha256(const uint8_t *key, size_t key_len, const struct iovec *parts, int n,
		    uint8_t out[32]);

/* constant-time compare, 1 if equal: the time taken depends on @n only, never
 * on where the first difference is, so a MAC check leaks nothing. */
int ir_ct_equal(const void *a, const void *b, size_t n);

#endif
