/* zkauth.c - ZooKeeper's digest credentials: where the "user:password"
 * secrets come from (ir_zk_cred_load()) and the ACL id ZooKeeper derives
 * from one, "user:" + base64(sha1("user:password")) (ir_zk_digest_id()),
 * which the coordinator needs for the reader's ACL entry without ever
 * authenticating as the reader.  SHA-1 is written here (60 lines) rather
 * than taken from a crypto library that only this would need.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mirror.h"
#include "zkauth.h"

/* ---- SHA-1 (FIPS 180-4 section 6.1) and the digest ACL id ---- */


static inline uint32_t rol(uint32_t x, unsigned n)
{
	return (x << n) | (x >> (32 - n));
}

static inline uint32_t load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void sha1_block(uint32_t h[5], const uint8_t *blk)
{
	uint32_t w[80];
	for (int i = 0; i < 16; i++)
		w[i] = load_be32(blk + 4 * i);
	for (int i = 16; i < 80; i++)
		w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
	for (int i = 0; i < 80; i++) {
		uint32_t f, k;
		if (i < 20) {
			f = (b & c) | (~b & d);
			k = 0x5a827999;
		} else if (i < 40) {
			f = b ^ c ^ d;
			k = 0x6ed9eba1;
		} else if (i < 60) {
			f = (b & c) | (b & d) | (c & d);
			k = 0x8f1bbcdc;
		} else {
			f = b ^ c ^ d;
			k = 0xca62c1d6;
		}
		uint32_t t = rol(a, 5) + f + e + k + w[i];
		e = d;
		d = c;
		c = rol(b, 30);
		b = a;
		a = t;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
}

void ir_zk_sha1(const void *msg, size_t len, uint8_t out[20])
{
	uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
	const uint8_t *p = msg;
	size_t left = len;
	for (; left >= 64; p += 64, left -= 64)
		sha1_block(h, p);
	/* Section 5.1.1: 0x80, zeros, the bit length big-endian in 64 bits. */
	uint8_t tail[128] = {0};
	if (left)
		memcpy(tail, p, left);
	tail[left] = 0x80;
	size_t tl = left < 56 ? 64 : 128;
	uint64_t bits = (uint64_t)len * 8;
	for (int i = 0; i < 8; i++)
		tail[tl - 1 - i] = (uint8_t)(bits >> (8 * i));
	sha1_block(h, tail);
	if (tl == 128)
		sha1_block(h, tail + 64);
	for (int i = 0; i < 5; i++) {
		out[4 * i] = (uint8_t)(h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(h[i] >> 8);
		out[4 * i + 3] = (uint8_t)h[i];
	}
}

/* RFC 4648 base64 with padding of @n bytes into @out (4 * ceil(n / 3) + 1). */
static void base64(const uint8_t *in, size_t n, char *out)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (; n >= 3; in += 3, n -= 3) {
		*out++ = tab[in[0] >> 2];
		*out++ = tab[(in[0] & 3) << 4 | in[1] >> 4];
		*out++ = tab[(in[1] & 15) << 2 | in[2] >> 6];
		*out++ = tab[in[2] & 63];
	}
	if (n) {
		*out++ = tab[in[0] >> 2];
		*out++ = tab[(in[0] & 3) << 4 | (n > 1 ? in[1] >> 4 : 0)];
		*out++ = n > 1 ? tab[(in[1] & 15) << 2] : '=';
		*out++ = '=';
	}
	*out = '\0';
}

/* The length of the user part of "user:password", or 0 when malformed. */
size_t ir_zk_cred_user_len(const char *cred)
{
	const char *colon = cred ? strchr(cred, ':') : NULL;
	return colon ? (size_t)(colon - cred) : 0;
}

int ir_zk_digest_id(const char *cred, char *out, size_t cap)
{
	size_t u = ir_zk_cred_user_len(cred);
	if (!u || cap < u + 1 + 28 + 1)
		return -EINVAL;
	uint8_t d[20];
	ir_zk_sha1(cred, strlen(cred), d);
	memcpy(out, cred, u + 1);
	base64(d, sizeof(d), out + u + 1);
	return 0;
}

/* ---- credentials ---- */

/* Validates @n bytes at @buf (trailing CR/LF dropped, NUL-terminated). */
static int cred_take(char *buf, size_t n, const char *src, char *err, size_t errlen)
{
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	if (!ir_zk_cred_user_len(buf) || memchr(buf, '\0', n) || strpbrk(buf, "\r\n")) {
		memset(buf, 0, n);
		if (err)
			snprintf(err, errlen,
				 "zookeeper credential from %s: want one line \"user:password\" "
				 "with a non-empty user",
				 src);
		return -EINVAL;
	}
	return (int)n;
}

/* Reads the credential file @path; -ENOENT only when it does not exist. */
static int cred_file(const char *path, const char *src, char *buf, size_t cap, char *err,
		     size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (err)
			snprintf(err, errlen, "zookeeper credential from %s: %s", src, strerror(e));
		return -e;
	}
	size_t n = 0;
	ssize_t r = 0;
	while (n < cap && (r = read(fd, buf + n, cap - n)) > 0)
		n += (size_t)r;
	int e = r < 0 ? errno : 0;
	close(fd);
	if (e || n == cap) {
		memset(buf, 0, n);
		if (err)
			snprintf(err, errlen, "zookeeper credential from %s: %s", src,
				 e ? strerror(e) : "longer than the buffer");
		return e ? -e : -E2BIG;
	}
	return cred_take(buf, n, src, err, errlen);
}

int ir_zk_cred_load(const char *role, char *buf, size_t cap, char *err, size_t errlen)
{
	char up[16], var[64], fvar[64], path[96], src[128];
	size_t i, rl = role ? strlen(role) : 0;
	if (!rl || rl >= sizeof(up) || cap < 2) {
		if (err)
			snprintf(err, errlen, "zookeeper credential: bad role or buffer");
		return -EINVAL;
	}
	for (i = 0; i < rl; i++) {
		if (role[i] < 'a' || role[i] > 'z') {
			if (err)
				snprintf(err, errlen, "zookeeper credential: bad role \"%s\"",
					 role);
			return -EINVAL;
		}
		up[i] = (char)(role[i] - 'a' + 'A');
	}
	up[i] = '\0';
	snprintf(var, sizeof(var), "IROUTE_ZK_%s", up);
	snprintf(fvar, sizeof(fvar), "IROUTE_ZK_%s_FILE", up);
	snprintf(path, sizeof(path), "/var/openfaas/secrets/iroute-zk-%s", role);

	/* an empty variable counts as unset, as in shells' ${VAR:-...} */
	const char *v = getenv(var);
	if (v && *v) {
		size_t n = strlen(v);
		snprintf(src, sizeof(src), "$%s", var);
		if (n >= cap) {
			if (err)
				snprintf(err, errlen, "zookeeper credential from %s: too long",
					 src);
			return -E2BIG;
		}
		memcpy(buf, v, n);
		return cred_take(buf, n, src, err, errlen);
	}
	const char *f = getenv(fvar);
	if (f && *f) {
		snprintf(src, sizeof(src), "$%s (%s)", fvar, f);
		return cred_file(f, src, buf, cap, err, errlen);
	}
	int rc = cred_file(path, path, buf, cap, err, errlen);
	if (rc == -ENOENT && err)
		snprintf(err, errlen, "zookeeper %s credential: none of $%s, $%s, %s", role, var,
			 fvar, path);
	return rc;
}

