/* zkauth.h - SHA-1 for ZooKeeper's digest ACL ids (zkauth.c).  Internal;
 * the credential API is in mirror.h. */
#ifndef IROUTE_ZKAUTH_H
#define IROUTE_ZKAUTH_H
#include <stddef.h>
#include <stdint.h>

/* SHA-1 (FIPS 180-4 section 6.1) of @len bytes at @msg. */
void ir_zk_sha1(const void *msg, size_t len, uint8_t out[20]);

#define ZK_CRED_MAX 1024 /* a credential's length */

/* The length of the user part of "user:password" (0 when there is no ':'). */
size_t ir_zk_cred_user_len(const char *cred);

#endif
