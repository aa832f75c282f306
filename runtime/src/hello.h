/* hello.h - the mutual HELLO/AUTH handshake every connection starts with.
 *
 *   dialer                                   acceptor
 *     HELLO {role 'C', nonce_c, ident_c} -->
 *                                        <-- HELLO {role 'S', nonce_s, ident_s}
 *     AUTH  {mac_c} ----------------------->   verifies mac_c, then
 *                                        <-- AUTH {mac_s}   (ipc: + segment fds)
 *     verifies mac_s: open                     open
 *
 *   mac_x = HMAC-SHA256(token, "iroute-auth-1" | role_x | nonce_x | nonce_peer | ident_x)
 *
 * Each MAC covers the receiver's fresh nonce (no replay) and the sender's
 * role (no reflection of the acceptor's proof back at it).  The acceptor
 * proves itself only after the dialer did, so an unauthenticated dialer
 * learns nothing but a nonce and never gets a shared-memory segment.  The
 * state machine is pure: it consumes decoded frames and leaves the frames
 * to send in `out`; the transports do the I/O.
 */
#ifndef IROUTE_HELLO_H
#define IROUTE_HELLO_H

#include <stddef.h>
#include <stdint.h>

#include "iroute/frame.h"

#define IR_HELLO_NONCE 32u
#define IR_HELLO_MAC 32u
#define IR_IDENT_MAX 128u
#define IR_HELLO_OUT_MAX (2u * (IR_FRAME_HDR_SIZE + 2u + IR_HELLO_NONCE + IR_IDENT_MAX))

struct ir_hello {
	const uint8_t *token; /* borrowed from the connection */
	size_t token_len;
	int acceptor;
	int got_hello;
	int sent_auth;
	int done;
	uint8_t nonce[IR_HELLO_NONCE];
	uint8_t peer_nonce[IR_HELLO_NONCE];
	char ident[IR_IDENT_MAX + 1];
	char peer_ident[IR_IDENT_MAX + 1];    /* printable copy, for logs */
	uint8_t peer_ident_raw[IR_IDENT_MAX]; /* as received: what its MAC covers */
	size_t peer_ident_len;
	uint8_t out[IR_HELLO_OUT_MAX]; /* encoded frames waiting to be sent */
	size_t out_len;
};

/* Begin: queue our HELLO in h->out.  @ident is truncated to IR_IDENT_MAX and
 * bytes outside printable ASCII become '?' (it ends up in log lines).
 * Returns 0, or -errno if no random nonce could be had. */
int ir_hello_start(struct ir_hello *h, const uint8_t *token, size_t token_len, const char *ident,
		   int acceptor);

/* Feed one decoded frame from the peer.  Returns 0 (more to do; maybe frames
 * in h->out), 1 (authenticated; maybe a last frame in h->out), or -EACCES
 * (proof did not verify) / -EPROTO (out of sequence or malformed) with
 * *why set to a static reason. */
int ir_hello_input(struct ir_hello *h, const struct ir_frame_hdr *fh, const uint8_t *payload,
		   const char **why);

#endif
