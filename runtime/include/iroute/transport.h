/* transport.h - one-hop frame transports behind one interface.
 *
 * A connection (struct ir_conn) carries frames between two processes over
 * one backend:
 *   - ir_transport_ipc: two single-producer/single-consumer rings in a memfd
 *     segment, handed over a Unix socket in the IPC directory; wake-ups by
 *     eventfd after an adaptive spin (see loop.h).  Zero-copy: a sender can
 *     reserve room in the ring, build its payload in place and publish it;
 *     a receiver reads the payload in place.
 *   - ir_transport_tcp: non-blocking TCP, TCP_NODELAY, writev.
 * Both start with the same mutual HELLO/AUTH handshake (HMAC-SHA256 over
 * both sides' nonces with the cluster token); a peer that fails it is
 * closed, with a log line naming it, before any frame is delivered.
 *
 * Contract (all backends):
 *   - Everything runs on the loop's thread; callbacks are called from it.
 *   - Frames arrive complete and in the order they were sent.
 *   - A malformed frame (ir_frame_decode() error, or a record a ring cannot
 *     hold) is counted in bad_frames, logged, and the connection is closed:
 *     after garbage there is no trusted framing left.
 *   - Memory is bounded: ir_conn_send() without a completion callback copies
 *     at most cfg.sndq_limit bytes into the send queue and otherwise fails
 *     with -EAGAIN; on_writable() fires when there is room again.  A slow
 *     receiver therefore stalls its senders instead of growing queues.
 *   - A dialer with cfg.reconnect set survives the loss of its peer: it
 *     reports on_close(), reconnects with exponential backoff, re-runs the
 *     handshake and then sends what was still queued (a frame cut in the
 *     middle is resent whole).  Every failed attempt after ir_dial()
 *     returned is reported as well, with on_close(@err < 0), so the layer
 *     above can give up on a peer that never answers.  Frames already written to the peer are not
 *     resent: delivery guarantees belong to the ACK layer above.
 *   - Functions return 0 or -errno; detail is in ir_conn_last_error().
 */
#ifndef IROUTE_TRANSPORT_H
#define IROUTE_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "iroute/frame.h"
#include "iroute/loop.h"

struct ir_transport; /* a backend's operations table */
struct ir_conn;
struct ir_listener;

extern const struct ir_transport ir_transport_ipc;
extern const struct ir_transport ir_transport_tcp;

/* "ipc" or "tcp" -> backend, NULL if unknown. */
const struct ir_transport *ir_transport_by_name(const char *name);
const char *ir_transport_name(const struct ir_transport *t);

struct ir_conn_cfg {
	const uint8_t *token; /* cluster token; copied by dial/listen */
	size_t token_len;
	const char *ident;	   /* our name in HELLO, e.g. "finra/lastpx#2"; copied */
	uint32_t max_payload;	   /* largest payload accepted (default 64 MiB) */
	size_t ring_size;	   /* ipc: bytes per direction, power of 2 (16 MiB) */
	size_t sndq_limit;	   /* bytes send() may copy into the queue (8 MiB) */
	uint32_t hello_timeout_ms; /* handshake must finish within (2000) */
	int reconnect;		   /* dialer: reconnect after loss (0) */
	uint32_t reconnect_min_ms; /* first backoff step (10) */
	uint32_t reconnect_max_ms; /* backoff cap (2000) */
};

/* Fill @cfg with the defaults above (no token: set one before use). */
void ir_conn_cfg_init(struct ir_conn_cfg *cfg);

/* A received frame.  @payload is borrowed until on_msg() returns (for ipc it
 * points into the shared ring); copy what must outlive the callback. */
struct ir_msg {
	struct ir_frame_hdr hdr;
	const uint8_t *payload;
};

struct ir_conn_cbs {
	/* The handshake succeeded (after every reconnect, too). */
	void (*on_open)(struct ir_conn *c, void *ud);
	void (*on_msg)(struct ir_conn *c, const struct ir_msg *m, void *ud);
	/* There is room again after a send or reserve returned -EAGAIN. */
	void (*on_writable)(struct ir_conn *c, void *ud);
	/* The connection was lost (@err < 0) or closed by the peer (@err == 0).
	 * A reconnecting dialer keeps @c and retries; any other @c is freed
	 * after this returns.  Not called after ir_conn_close(). */
	void (*on_close)(struct ir_conn *c, int err, void *ud);
};

/* Completion of a send whose buffers were borrowed: @status is 0 once the
 * whole frame was handed to the peer (ring or kernel), or -errno if the
 * connection went away first (-ECANCELED after ir_conn_close()). */
typedef void (*ir_send_cb)(struct ir_conn *c, int status, void *arg);

/* Listen on @addr: tcp "host:port" (port 0 picks a free one); ipc a name in
 * the IPC directory or an absolute socket path.  Accepted connections use
 * @cbs with user data @ud (change per connection with ir_conn_set_data()).
 * Returns 0 and *out, or -errno (and *out = NULL). */
int ir_listen(struct ir_loop *loop, const struct ir_transport *t, const char *addr,
	      const struct ir_conn_cfg *cfg, const struct ir_conn_cbs *cbs, void *ud,
	      struct ir_listener **out);
/* The address peers dial (with the real port when 0 was asked for). */
const char *ir_listener_addr(const struct ir_listener *ls);
/* Stop accepting and free @ls; established connections stay open. */
void ir_listener_close(struct ir_listener *ls);

struct ir_listener_stats {
	uint64_t accepted;    /* connections that completed the handshake */
	uint64_t auth_failed; /* peers closed for a failed handshake */
	uint64_t bad_frames;  /* malformed frames over all accepted conns */
};
void ir_listener_stats(const struct ir_listener *ls, struct ir_listener_stats *st);

/* Connect to @addr.  Returns 0 with *out at once; on_open() follows when the
 * handshake is done, or on_close() if it fails (then, without
 * cfg.reconnect, @c is freed).  Sends before on_open() are queued. */
int ir_dial(struct ir_loop *loop, const struct ir_transport *t, const char *addr,
	    const struct ir_conn_cfg *cfg, const struct ir_conn_cbs *cbs, void *ud,
	    struct ir_conn **out);

/* Send one frame: header @h (payload_len is set from the iovecs; the trace
 * fields are the caller's: stamping a clock costs ~40 ns on a VM, more
 * than the rest of a shared-memory hop) and @iovcnt payload pieces.
 *   @cb == NULL: what cannot be written now is copied into the send queue;
 *     when the queue already holds frames and this one would take it past
 *     sndq_limit, nothing is queued and -EAGAIN is returned (on_writable
 *     follows).  So the queue holds at most sndq_limit + one frame.
 *   @cb != NULL: the buffers are borrowed until @cb runs (no copy, no
 *     limit: the caller owns that memory).
 * Returns 1 when the whole frame went out at once (@cb is then NOT called
 * and the buffers are free again: no reentrancy), 0 when it was queued
 * (@cb runs later), or -errno: -EMSGSIZE above cfg.max_payload, -EBUSY
 * while a reservation is open, -ENOTCONN once closed. */
int ir_conn_send(struct ir_conn *c, const struct ir_frame_hdr *h, const struct iovec *iov,
		 int iovcnt, ir_send_cb cb, void *arg);

/* Zero-copy send: reserve room for a payload of @len bytes and get a
 * pointer to it in *@buf (inside the shared ring for ipc); fill it, then
 * ir_conn_publish() it with its header, or ir_conn_unreserve().  One
 * reservation at a time.  Returns 0, -EAGAIN (no room now: on_writable
 * follows), -EMSGSIZE (can never fit in one piece: use ir_conn_send), or
 * -ENOTCONN (not open yet). */
int ir_conn_reserve(struct ir_conn *c, size_t len, void **buf);
/* Publish the reserved payload, @len <= the reserved length. */
int ir_conn_publish(struct ir_conn *c, const struct ir_frame_hdr *h, size_t len);
void ir_conn_unreserve(struct ir_conn *c);

/* Close now: pending sends complete with -ECANCELED, on_close() is not
 * called.  Safe inside any of @c's callbacks; memory is freed once no
 * callback is running. */
void ir_conn_close(struct ir_conn *c);

int ir_conn_is_open(const struct ir_conn *c);
void *ir_conn_data(const struct ir_conn *c);
void ir_conn_set_data(struct ir_conn *c, void *ud);
/* "tcp 127.0.0.1:4021 'finra/lastpx#2'" - who is at the other end. */
const char *ir_conn_peer(const struct ir_conn *c);
/* The peer's ident from its HELLO ("" before the handshake). */
const char *ir_conn_peer_ident(const struct ir_conn *c);
const char *ir_conn_last_error(const struct ir_conn *c);
const struct ir_transport *ir_conn_transport(const struct ir_conn *c);

struct ir_conn_stats {
	uint64_t frames_in, frames_out;
	uint64_t bytes_in, bytes_out; /* payload bytes */
	uint64_t bad_frames;
	uint64_t connects;   /* dialer: connection attempts, the first included */
	uint64_t reconnects; /* dialer: successful handshakes after the first */
	size_t sndq_bytes;   /* bytes copied into the send queue now */
	size_t sndq_peak;    /* highest sndq_bytes seen */
};
void ir_conn_stats(const struct ir_conn *c, struct ir_conn_stats *st);

/* The IPC directory: $IROUTE_IPC_DIR, default /run/iroute, created if
 * missing; when that is not writable, a per-user directory under the temp
 * dir (logged once).  The string is static. */
const char *ir_ipc_dir(void);

#endif
