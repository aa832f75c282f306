/* token.h - the cluster token that authenticates every connection.
 *
 * Looked up in this order: $IROUTE_TOKEN (the value), $IROUTE_TOKEN_FILE (a
 * path), /var/openfaas/secrets/iroute-token (an OpenFaaS secret).  Never
 * taken from argv, never compiled in.
 */
#ifndef IROUTE_TOKEN_H
#define IROUTE_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define IR_TOKEN_MAX 4096
#define IR_TOKEN_DEFAULT_FILE "/var/openfaas/secrets/iroute-token"

/* Load the token into @buf (trailing newlines stripped).  Returns its
 * length (> 0) or -errno with a message naming the source in @err. */
int ir_token_load(uint8_t *buf, size_t cap, char *err, size_t errlen);

#endif
