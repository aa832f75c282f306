/* transport_int.h - what transport.c shares with the backends.
 *
 * Split of work: transport.c owns everything that does not depend on the
 * medium - connection life cycle (refcount + deferred free, so a callback
 * may close its own connection), the handshake driver, the send queue with
 * its memory bound, reconnect with backoff, stats and the public API.  A
 * backend (transport_tcp.c, transport_ipc.c, later transport_rdma.c)
 * embeds struct ir_conn first in its own struct and fills the ops table:
 * how to listen/accept/connect, how to push one queued frame, how to
 * reserve/publish in place, how to tear the medium down.
 */
#ifndef IROUTE_TRANSPORT_INT_H
#define IROUTE_TRANSPORT_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "hello.h"
#include "iroute/transport.h"

/* One frame waiting to be sent.  Bytes are numbered over header+payload;
 * `off` of them were handed over already. */
struct ir_txe {
	struct ir_txe *next;
	uint8_t hdr[IR_FRAME_HDR_SIZE];
	size_t total;
	size_t off;
	const struct iovec *iov; /* payload pieces: borrowed, iov_own, or owned copy */
	int iovcnt;
	struct iovec iov_one;
	struct iovec *iov_own; /* malloc'd iovec array when borrowed with >1 piece */
	uint8_t *copy;	       /* owned copy of the payload (counted in sndq_bytes) */
	size_t copied;
	ir_send_cb cb;
	void *arg;
};

/* Copy @n bytes starting at byte @off of the frame into @dst. */
void ir_txe_gather(const struct ir_txe *e, size_t off, uint8_t *dst, size_t n);
/* Fill up to @max iovecs describing the frame from byte @off on. */
int ir_txe_iov(const struct ir_txe *e, size_t off, struct iovec *out, int max);

enum ir_conn_state {
	IR_CONN_CONNECTING, /* dialer: waiting for the medium */
	IR_CONN_HANDSHAKE,  /* HELLO/AUTH in progress */
	IR_CONN_OPEN,
	IR_CONN_BACKOFF, /* dialer: lost, waiting to reconnect */
	IR_CONN_DEAD,	 /* closed or lost for good; freed when refs drop */
};

struct ir_conn {
	const struct ir_transport *t;
	struct ir_loop *loop;
	struct ir_listener *ls; /* acceptor side: our listener (may be closed: NULL) */
	char *addr;		/* dialer: where to connect */
	int dialer;
	int opened_once;
	enum ir_conn_state state;
	int refs;
	struct ir_conn_cfg cfg;
	uint8_t *token;
	char *ident;
	struct ir_conn_cbs cbs;
	void *ud;
	struct ir_hello hello;
	uint64_t hello_timer;
	uint64_t retry_timer;
	uint32_t backoff_ms;
	struct ir_txe *txq;
	struct ir_txe **txq_tail;
	int want_writable;
	int reserving;
	struct ir_conn *ls_next, *ls_prev; /* acceptor side: listener's list */
	struct ir_conn_stats st;
	char medium[96]; /* "tcp 127.0.0.1:4021" / "ipc pid 812 via /run/iroute/x.sock" */
	char peer[IR_IDENT_MAX + 128];
	char last_error[256];
};

struct ir_listener {
	const struct ir_transport *t;
	struct ir_loop *loop;
	int fd;
	char addr[256];
	struct ir_conn_cfg cfg;
	uint8_t *token;
	char *ident;
	struct ir_conn_cbs cbs;
	void *ud;
	struct ir_listener_stats st;
	struct ir_conn *conns; /* accepted, not yet freed */
	void *impl;	       /* backend private */
};

struct ir_transport {
	const char *name;
	size_t conn_size;
	/* Bind and listen on @addr: set ls->fd and ls->addr. */
	int (*listen)(struct ir_listener *ls, const char *addr);
	/* ls->fd is readable: accept what is pending (ir__conn_accepted()). */
	void (*accept)(struct ir_listener *ls);
	void (*listener_close)(struct ir_listener *ls);
	/* Start connecting to c->addr; on success the backend runs the
	 * handshake via ir__conn_handshake_*(). */
	int (*connect)(struct ir_conn *c);
	/* Hand over as much of @e as possible now; advance e->off.  Returns 0
	 * (maybe partial: the backend arranges to call ir__conn_flush() when it
	 * can go on) or -errno (connection unusable). */
	int (*push)(struct ir_conn *c, struct ir_txe *e);
	int (*reserve)(struct ir_conn *c, size_t len, void **buf);
	int (*publish)(struct ir_conn *c, const uint8_t hdr[IR_FRAME_HDR_SIZE], size_t len);
	void (*unreserve)(struct ir_conn *c);
	/* Write handshake bytes (small; the medium is fresh).  @final: this
	 * is the acceptor's last frame (ipc attaches the segment to it). */
	int (*hs_send)(struct ir_conn *c, const uint8_t *buf, size_t len, int final);
	/* The peer is authenticated: bring the data path up (may be NULL). */
	int (*hs_done)(struct ir_conn *c);
	/* Fault injection for the conformance tests: put @len raw bytes on the
	 * medium as they are (tcp: the stream; ipc: one ring record with ring
	 * @flags), bypassing the encoder. */
	int (*inject)(struct ir_conn *c, const void *data, size_t len, uint32_t flags);
	/* Release the medium (fds, mappings); the struct stays. */
	void (*teardown)(struct ir_conn *c);
};

/* Backend -> core. */
struct ir_conn *ir__conn_accepted(struct ir_listener *ls);
/* Begin the handshake (HELLO queued in c->hello.out for the backend). */
int ir__conn_handshake_start(struct ir_conn *c);
/* A decoded frame arrived (handshake or data).  Returns 0 to go on, or < 0
 * if the connection is no longer usable (stop touching the medium). */
int ir__conn_deliver(struct ir_conn *c, const struct ir_frame_hdr *h, const uint8_t *payload);
/* A malformed frame: count, log, fail the connection.  Returns -EPROTO. */
int ir__conn_bad_frame(struct ir_conn *c, const char *why);
/* The medium failed (@err < 0) or the peer closed (@err == 0). */
void ir__conn_lost(struct ir_conn *c, int err, const char *why);
/* The backend can take more: push the queue, then on_writable if wanted. */
void ir__conn_flush(struct ir_conn *c);
/* Test hook: see ir_transport.inject.  -ENOTCONN unless open. */
int ir__conn_inject(struct ir_conn *c, const void *data, size_t len, uint32_t flags);
void ir__conn_hold(struct ir_conn *c);
void ir__conn_put(struct ir_conn *c);
void ir__conn_set_error(struct ir_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
