/* hello.c - the HELLO/AUTH handshake state machine (protocol in hello.h). */
#include "hello.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>

#include "sha256.h"

#define AUTH_LABEL "iroute-auth-1"

static void put_frame(struct ir_hello *h, enum ir_frame_type type, const uint8_t *payload,
		      size_t len)
{
	struct ir_frame_hdr fh;
	ir_frame_init(&fh, type);
	fh.payload_len = (uint32_t)len;
	ir_frame_encode(&fh, h->out + h->out_len);
	memcpy(h->out + h->out_len + IR_FRAME_HDR_SIZE, payload, len);
	h->out_len += IR_FRAME_HDR_SIZE + len;
}

static void compute_mac(const struct ir_hello *h, int own, uint8_t mac[IR_HELLO_MAC])
{
	uint8_t role = (uint8_t)((own ? h->acceptor : !h->acceptor) ? 'S' : 'C');
	const void *ident = own ? (const void *)h->ident : h->peer_ident_raw;
	size_t ident_len = own ? strlen(h->ident) : h->peer_ident_len;
	struct iovec parts[] = {
	    {(void *)AUTH_LABEL, sizeof(AUTH_LABEL) - 1},
	    {&role, 1},
	    {(void *)(own ? h->nonce : h->peer_nonce), IR_HELLO_NONCE},
	    {(void *)(own ? h->peer_nonce : h->nonce), IR_HELLO_NONCE},
	    {(void *)ident, ident_len},
	};
	ir_hmac_sha256(h->token, h->token_len, parts, 5, mac);
}

int ir_hello_start(struct ir_hello *h, const uint8_t *token, size_t token_len, const char *ident,
		   int acceptor)
{
	memset(h, 0, sizeof(*h));
	h->token = token;
	h->token_len = token_len;
	h->acceptor = acceptor;
	size_t il = strlen(ident ? ident : "");
	if (il > IR_IDENT_MAX)
		il = IR_IDENT_MAX;
	memcpy(h->ident, ident ? ident : "", il);
	for (size_t i = 0; i < il; i++)
		if (h->ident[i] < 0x20 || h->ident[i] > 0x7e)
			h->ident[i] = '?';
	if (getrandom(h->nonce, sizeof(h->nonce), 0) != (ssize_t)sizeof(h->nonce))
		return -errno ? -errno : -EIO;
	uint8_t p[2 + IR_HELLO_NONCE + IR_IDENT_MAX];
	p[0] = acceptor ? 'S' : 'C';
	p[1] = (uint8_t)il;
	memcpy(p + 2, h->nonce, IR_HELLO_NONCE);
	memcpy(p + 2 + IR_HELLO_NONCE, h->ident, il);
	put_frame(h, IR_FRAME_HELLO, p, 2 + IR_HELLO_NONCE + il);
	return 0;
}

static void send_auth(struct ir_hello *h)
{
	uint8_t mac[IR_HELLO_MAC];
	compute_mac(h, 1, mac);
	put_frame(h, IR_FRAME_AUTH, mac, sizeof(mac));
	h->sent_auth = 1;
}

int ir_hello_input(struct ir_hello *h, const struct ir_frame_hdr *fh, const uint8_t *payload,
		   const char **why)
{
	if (h->done) {
		*why = "handshake frame after the handshake";
		return -EPROTO;
	}
	if (fh->type == IR_FRAME_HELLO) {
		size_t n = fh->payload_len;
		if (h->got_hello) {
			*why = "second HELLO";
			return -EPROTO;
		}
		if (n < 2 + IR_HELLO_NONCE || n != 2u + IR_HELLO_NONCE + payload[1]) {
			*why = "malformed HELLO";
			return -EPROTO;
		}
		if (payload[1] > IR_IDENT_MAX) {
			*why = "HELLO ident longer than 128 bytes";
			return -EPROTO;
		}
		if (payload[0] != (h->acceptor ? 'C' : 'S')) {
			*why = "HELLO from a peer with the same role (reflected or crossed "
			       "connection)";
			return -EPROTO;
		}
		memcpy(h->peer_nonce, payload + 2, IR_HELLO_NONCE);
		if (!memcmp(h->peer_nonce, h->nonce, IR_HELLO_NONCE)) {
			*why = "HELLO echoes our own nonce";
			return -EPROTO;
		}
		memcpy(h->peer_ident_raw, payload + 2 + IR_HELLO_NONCE, payload[1]);
		h->peer_ident_len = payload[1];
		memcpy(h->peer_ident, payload + 2 + IR_HELLO_NONCE, payload[1]);
		h->peer_ident[payload[1]] = 0;
		for (size_t i = 0; i < payload[1]; i++)
			if (h->peer_ident[i] < 0x20 || h->peer_ident[i] > 0x7e)
				h->peer_ident[i] = '?'; /* it goes into log lines */
		h->got_hello = 1;
		if (!h->acceptor)
			send_auth(h);
		return 0;
	}
	if (fh->type == IR_FRAME_AUTH) {
		if (!h->got_hello || (!h->acceptor && !h->sent_auth)) {
			*why = "AUTH before HELLO";
			return -EPROTO;
		}
		if (fh->payload_len != IR_HELLO_MAC) {
			*why = "malformed AUTH";
			return -EPROTO;
		}
		uint8_t mac[IR_HELLO_MAC];
		compute_mac(h, 0, mac);
		int ok = ir_ct_equal(mac, payload, IR_HELLO_MAC);
		explicit_bzero(mac, sizeof(mac));
		if (!ok) {
			*why = "bad HMAC (wrong cluster token)";
			return -EACCES;
		}
		if (h->acceptor)
			send_auth(h);
		h->done = 1;
		return 1;
	}
	*why = "frame before authentication";
	return -EPROTO;
}
