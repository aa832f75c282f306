/* transport_ipc.c - frames through shared-memory rings between processes of
 * one kernel.
 *
 * Set-up: the acceptor listens on a Unix socket in the IPC directory.  The
 * HELLO/AUTH handshake runs over that socket; once the dialer has proved the
 * cluster token, the acceptor creates a memfd segment (sealed against
 * shrinking, so the peer can never make our mappings fault) and two
 * eventfd doorbells, and sends them with its AUTH frame (SCM_RIGHTS).  From
 * then on the socket only tells each side that the other died (EOF).
 *
 * Segment:  [ page 0: header + ring control blocks ][ ring 0 ][ ring 1 ]
 * ring 0 carries dialer -> acceptor, ring 1 acceptor -> dialer (ring.h).
 * Each ring's data is mapped twice back to back, so every record is
 * contiguous: a payload up to the ring size is written once by the sender,
 * in place (ir_conn_reserve), and read in place by the receiver.  Larger
 * payloads stream through in pieces of a quarter ring, with backpressure,
 * into one buffer at the receiver.
 *
 * Wake-ups: the receiving loop spins on the ring for a while (loop.h); only
 * a side that has armed itself asleep gets its doorbell rung, so a busy
 * pair of instances exchanges frames without a single syscall.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iroute/log.h"
#include "ring.h"
#include "sock.h"
#include "stream.h"
#include "transport_int.h"

#define SEG_MAGIC 0x47455352u /* "RSEG" */
#define SEG_VERSION 1u
#define SEG_HDR 4096u
#define RING_MAX ((uint64_t)1 << 30)
#define RX_BATCH 64

struct seg_hdr {
	uint32_t magic;
	uint32_t version;
	uint64_t ring_size;
	_Alignas(64) struct ir_ring_ctl ctl[2];
};

struct ipc_conn {
	struct ir_conn base;
	int sock;
	int bell_rx; /* ours: the peer rings it */
	int bell_tx; /* the peer's */
	void *map;
	size_t map_len;
	uint64_t ring_size;
	struct ir_ring rx, tx;
	int up; /* rings attached */
	struct ir_srx hs;
	int poller;
	uint64_t tx_want; /* bytes of ring space the blocked sender waits for */
	uint8_t *big;	  /* payload being reassembled from pieces */
	size_t big_have;
	struct ir_frame_hdr big_hdr;
	int streaming;
};

struct ipc_listener {
	char path[108];
};

/* ---- the IPC directory ---- */

static int dir_usable(const char *dir)
{
	if (mkdir(dir, 0770) < 0 && errno != EEXIST)
		return 0;
	return access(dir, W_OK | X_OK) == 0;
}

const char *ir_ipc_dir(void)
{
	static char dir[PATH_MAX];
	if (dir[0])
		return dir;
	const char *want = getenv("IROUTE_IPC_DIR");
	if (!want || !*want)
		want = "/run/iroute";
	if (strlen(want) < sizeof(dir) && dir_usable(want)) {
		snprintf(dir, sizeof(dir), "%s", want);
		return dir;
	}
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/iroute-%u", tmp && *tmp ? tmp : "/tmp", (unsigned)getuid());
	if (!dir_usable(dir))
		ir_error("ipc", "neither %s nor %s is a writable directory", want, dir);
	else
		ir_info("ipc", "IPC directory %s is not writable (%s); using %s", want,
			strerror(errno ? errno : EACCES), dir);
	return dir;
}

static int ipc_path(const char *addr, char *out, size_t len)
{
	int n = addr[0] == '/' ? snprintf(out, len, "%s", addr)
			       : snprintf(out, len, "%s/%s.sock", ir_ipc_dir(), addr);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* ---- segment ---- */

static void ring_bell(int fd)
{
	uint64_t one = 1;
	ssize_t w = write(fd, &one, sizeof(one));
	(void)w; /* EAGAIN means the counter is already non-zero: awake anyway */
}

/* Map the segment in @fd: header page, then each ring twice. */
static int seg_map(struct ipc_conn *ic, int fd, uint64_t ring)
{
	size_t len = SEG_HDR + 4 * ring;
	uint8_t *base =
	    mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return -errno;
	int rc = 0;
	if (mmap(base, SEG_HDR, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) ==
	    MAP_FAILED)
		rc = -errno;
	for (int r = 0; r < 2 && !rc; r++)
		for (int copy = 0; copy < 2 && !rc; copy++) {
			void *at = base + SEG_HDR + (2 * (uint64_t)r + (uint64_t)copy) * ring;
			off_t off = (off_t)(SEG_HDR + (uint64_t)r * ring);
			if (mmap(at, ring, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
				 off) == MAP_FAILED)
				rc = -errno;
		}
	if (rc) {
		munmap(base, len);
		return rc;
	}
	ic->map = base;
	ic->map_len = len;
	ic->ring_size = ring;
	return 0;
}

static void seg_attach(struct ipc_conn *ic)
{
	struct seg_hdr *sh = ic->map;
	uint8_t *r0 = (uint8_t *)ic->map + SEG_HDR;
	uint8_t *r1 = r0 + 2 * ic->ring_size;
	int dialer = ic->base.dialer;
	ir_ring_attach(&ic->tx, &sh->ctl[dialer ? 0 : 1], dialer ? r0 : r1, ic->ring_size);
	ir_ring_attach(&ic->rx, &sh->ctl[dialer ? 1 : 0], dialer ? r1 : r0, ic->ring_size);
}

static int seg_create(struct ipc_conn *ic, int *memfd)
{
	uint64_t ring = ic->base.cfg.ring_size;
	if (ring < IR_RING_MIN_SIZE || ring > RING_MAX || (ring & (ring - 1))) {
		ir__conn_set_error(&ic->base,
				   "ring_size %llu is not a power of two in [4 KiB, 1 GiB]",
				   (unsigned long long)ring);
		return -EINVAL;
	}
	int fd = memfd_create("iroute-ipc", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		ir__conn_set_error(&ic->base, "memfd_create(): %s", strerror(errno));
		return -errno;
	}
	int rc = 0;
	if (ftruncate(fd, (off_t)(SEG_HDR + 2 * ring)) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		rc = -errno;
		ir__conn_set_error(&ic->base, "memfd set-up: %s", strerror(errno));
	}
	if (!rc)
		rc = seg_map(ic, fd, ring);
	if (rc) {
		close(fd);
		return rc;
	}
	struct seg_hdr *sh = ic->map;
	sh->magic = SEG_MAGIC;
	sh->version = SEG_VERSION;
	sh->ring_size = ring;
	*memfd = fd;
	return 0;
}

/* Dialer: validate and map what the acceptor sent. */
static int seg_open(struct ipc_conn *ic, int fd)
{
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);
	if (fstat(fd, &st) < 0 || seals < 0 || !(seals & F_SEAL_SHRINK)) {
		ir__conn_set_error(&ic->base, "segment from %s is not a sealed memfd",
				   ic->base.peer);
		return -EPROTO;
	}
	struct seg_hdr *sh = mmap(NULL, SEG_HDR, PROT_READ, MAP_SHARED, fd, 0);
	if (sh == MAP_FAILED)
		return -errno;
	uint32_t magic = sh->magic, version = sh->version;
	uint64_t ring = sh->ring_size;
	munmap(sh, SEG_HDR);
	if (magic != SEG_MAGIC || version != SEG_VERSION || ring < IR_RING_MIN_SIZE ||
	    ring > RING_MAX || (ring & (ring - 1)) || (uint64_t)st.st_size != SEG_HDR + 2 * ring) {
		ir__conn_set_error(&ic->base, "segment from %s has a bad header", ic->base.peer);
		return -EPROTO;
	}
	return seg_map(ic, fd, ring);
}

/* ---- data path ---- */

static int rx_one(struct ipc_conn *ic)
{
	struct ir_conn *c = &ic->base;
	const uint8_t *d;
	uint32_t len, flags;
	int r = ir_ring_peek(&ic->rx, &d, &len, &flags);
	if (r == 0)
		return 0;
	if (r < 0)
		return ir__conn_bad_frame(c, "ring record longer than the ring");
	struct ir_frame_hdr h;
	if (!ic->streaming) {
		if (!(flags & IR_RING_F_FIRST))
			return ir__conn_bad_frame(c, "ring record continues no message");
		int rc = ir_frame_decode(d, len, c->cfg.max_payload, &h);
		if (rc < 0)
			return ir__conn_bad_frame(c, ir_frame_strerror(rc));
		size_t piece = len - IR_FRAME_HDR_SIZE;
		if (flags & IR_RING_F_LAST) {
			if (piece != h.payload_len)
				return ir__conn_bad_frame(
				    c, "ring record length disagrees with its frame");
			/* Zero copy: the payload is read where the sender wrote it. */
			rc = ir__conn_deliver(c, &h, d + IR_FRAME_HDR_SIZE);
			if (rc < 0)
				return rc;
		} else {
			if (piece > h.payload_len)
				return ir__conn_bad_frame(c, "ring record longer than its frame");
			ic->big = malloc(h.payload_len ? h.payload_len : 1);
			if (!ic->big) {
				ir__conn_lost(c, -ENOMEM, "out of memory for a payload");
				return -ENOMEM;
			}
			memcpy(ic->big, d + IR_FRAME_HDR_SIZE, piece);
			ic->big_have = piece;
			ic->big_hdr = h;
			ic->streaming = 1;
		}
	} else {
		if ((flags & IR_RING_F_FIRST) || ic->big_have + len > ic->big_hdr.payload_len)
			return ir__conn_bad_frame(c, "ring record breaks the message it continues");
		memcpy(ic->big + ic->big_have, d, len);
		ic->big_have += len;
		if ((flags & IR_RING_F_LAST) && ic->big_have != ic->big_hdr.payload_len)
			return ir__conn_bad_frame(c, "streamed message ends short");
	}
	if (ir_ring_release(&ic->rx))
		ring_bell(ic->bell_tx);
	if (ic->streaming && (flags & IR_RING_F_LAST)) {
		uint8_t *big = ic->big;
		ic->big = NULL;
		ic->streaming = 0;
		int rc = ir__conn_deliver(c, &ic->big_hdr, big);
		free(big);
		if (rc < 0)
			return rc;
	}
	return 1;
}

/* Process what is ready.  Returns items handled, or < 0 if @ic is gone. */
static int ipc_work(struct ipc_conn *ic)
{
	struct ir_conn *c = &ic->base;
	int n = 0;
	for (int i = 0; i < RX_BATCH; i++) {
		int r = rx_one(ic);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		n++;
	}
	if (ic->tx_want && c->state == IR_CONN_OPEN) {
		int64_t space = ir_ring_space(&ic->tx, ic->tx_want);
		if (space < 0)
			return ir__conn_bad_frame(c, "peer published an impossible ring head");
		if ((uint64_t)space >= ic->tx_want) {
			ic->tx_want = 0;
			ir__conn_flush(c);
			n++;
		}
	}
	return n;
}

static int ipc_poll(struct ir_loop *loop, void *arg)
{
	(void)loop;
	struct ipc_conn *ic = arg;
	if (!ic->up)
		return 0;
	ir__conn_hold(&ic->base);
	int n = ipc_work(ic);
	ir__conn_put(&ic->base);
	return n < 0 ? 1 : n;
}

static int ipc_sleep(struct ir_loop *loop, int armed, void *arg)
{
	(void)loop;
	struct ipc_conn *ic = arg;
	if (!ic->up)
		return 0;
	if (!armed) {
		ir_ring_consumer_disarm(&ic->rx);
		if (ic->tx_want)
			ir_ring_producer_disarm(&ic->tx);
		return 0;
	}
	if (ir_ring_consumer_arm(&ic->rx))
		return 1;
	if (ic->tx_want && ir_ring_producer_arm(&ic->tx, ic->tx_want) != 0)
		return 1; /* room already (or a broken peer: ipc_work will say so) */
	return 0;
}

/* The doorbell is edge-triggered: each ring is one event and the counter is
 * never read back (it would take 2^64 rings to fill it). */
static void bell_cb(struct ir_loop *loop, int fd, unsigned events, void *arg)
{
	(void)fd;
	(void)events;
	ipc_poll(loop, arg);
}

/* Write a record of the frame in @e from e->off, as much as fits. */
static int ipc_push(struct ir_conn *c, struct ir_txe *e)
{
	struct ipc_conn *ic = (struct ipc_conn *)c;
	uint64_t cap = ic->ring_size;
	uint64_t max_rec = ir_ring_max_rec(cap);
	while (e->off < e->total) {
		uint64_t left = e->total - e->off;
		uint64_t len;
		uint32_t flags = 0;
		if (e->off == 0 && left <= max_rec) {
			len = left; /* the whole frame in one record */
			flags = IR_RING_F_FIRST | IR_RING_F_LAST;
		} else {
			/* Stream: quarter-ring pieces keep both sides busy at once. */
			uint64_t piece = cap / 4 - IR_RING_REC_HDR;
			len = left < piece ? left : piece;
			if (e->off == 0 && len < IR_FRAME_HDR_SIZE)
				len = IR_FRAME_HDR_SIZE;
			flags = (e->off == 0 ? IR_RING_F_FIRST : 0) |
				(len == left ? IR_RING_F_LAST : 0);
		}
		uint8_t *dst = ir_ring_reserve(&ic->tx, len);
		if (!dst) {
			int64_t space = ir_ring_space(&ic->tx, ir_ring_rec_size(len));
			if (space < 0) {
				ir__conn_set_error(c, "peer published an impossible ring head");
				return -EPROTO;
			}
			ic->tx_want = ir_ring_rec_size(len);
			return 0;
		}
		ir_txe_gather(e, e->off, dst, len);
		if (ir_ring_commit(&ic->tx, len, flags))
			ring_bell(ic->bell_tx);
		e->off += len;
	}
	return 0;
}

static int ipc_reserve(struct ir_conn *c, size_t len, void **buf)
{
	struct ipc_conn *ic = (struct ipc_conn *)c;
	uint64_t rec = IR_FRAME_HDR_SIZE + (uint64_t)len;
	if (rec > ir_ring_max_rec(ic->ring_size))
		return -EMSGSIZE;
	uint8_t *dst = ir_ring_reserve(&ic->tx, rec);
	if (!dst) {
		if (ir_ring_space(&ic->tx, ir_ring_rec_size(rec)) < 0)
			return -EPROTO;
		ic->tx_want = ir_ring_rec_size(rec);
		return -EAGAIN;
	}
	*buf = dst + IR_FRAME_HDR_SIZE;
	return 0;
}

static int ipc_publish(struct ir_conn *c, const uint8_t hdr[IR_FRAME_HDR_SIZE], size_t len)
{
	struct ipc_conn *ic = (struct ipc_conn *)c;
	uint64_t rec = IR_FRAME_HDR_SIZE + (uint64_t)len;
	if (rec > ic->tx.reserved)
		return -EINVAL;
	memcpy(ic->tx.resv, hdr, IR_FRAME_HDR_SIZE);
	if (ir_ring_commit(&ic->tx, rec, IR_RING_F_FIRST | IR_RING_F_LAST))
		ring_bell(ic->bell_tx);
	return 0;
}

static void ipc_unreserve(struct ir_conn *c)
{
	((struct ipc_conn *)c)->tx.reserved = 0;
	((struct ipc_conn *)c)->tx.pad = 0;
}

static int ipc_inject(struct ir_conn *c, const void *data, size_t len, uint32_t flags)
{
	struct ipc_conn *ic = (struct ipc_conn *)c;
	uint8_t *dst = ir_ring_reserve(&ic->tx, len);
	if (!dst)
		return -EAGAIN;
	memcpy(dst, data, len);
	if (ir_ring_commit(&ic->tx, len, flags))
		ring_bell(ic->bell_tx);
	return 0;
}

/* ---- control socket ---- */

static void sock_cb(struct ir_loop *loop, int fd, unsigned events, void *arg)
{
	(void)loop;
	(void)events;
	struct ipc_conn *ic = arg;
	struct ir_conn *c = &ic->base;
	ir__conn_hold(c);
	if (c->state == IR_CONN_HANDSHAKE) {
		ir_srx_pump(c, &ic->hs, fd);
	} else if (c->state == IR_CONN_OPEN) {
		/* Drain what the ring still holds before reporting a dead peer. */
		if (ipc_work(ic) >= 0) {
			char b[64];
			ssize_t n = read(fd, b, sizeof(b));
			if (n == 0 && ic->streaming)
				ir__conn_lost(c, -ECONNRESET,
					      "peer went away in the middle of a message");
			else if (n == 0)
				ir__conn_lost(c, 0, "closed by peer");
			else if (n > 0)
				ir__conn_bad_frame(c, "data on the ipc control socket");
			else if (errno != EAGAIN && errno != EINTR)
				ir__conn_lost(c, -errno, strerror(errno));
		}
	}
	ir__conn_put(c);
}

static void set_medium(struct ipc_conn *ic, const char *path)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	if (getsockopt(ic->sock, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0)
		snprintf(ic->base.medium, sizeof(ic->base.medium), "ipc pid %d uid %u via %s",
			 (int)cred.pid, (unsigned)cred.uid, path);
	else
		snprintf(ic->base.medium, sizeof(ic->base.medium), "ipc via %s", path);
}

static void ipc_init_conn(struct ipc_conn *ic, int sock)
{
	ic->sock = sock;
	ic->bell_rx = ic->bell_tx = -1;
	ic->poller = 0;
	ir_srx_init(&ic->hs, 4096);
	ic->hs.want_fds = 1;
	ic->hs.stop_when_open = 1;
}

static int ipc_listen(struct ir_listener *ls, const char *addr)
{
	struct ipc_listener *il = calloc(1, sizeof(*il));
	if (!il)
		return -ENOMEM;
	char err[256];
	int rc = ipc_path(addr, il->path, sizeof(il->path));
	if (rc < 0) {
		ir_error("ipc", "socket path for '%s' is too long", addr);
		free(il);
		return rc;
	}
	int fd = ir_sock_unix_listen(il->path, err, sizeof(err));
	if (fd < 0) {
		ir_error("ipc", "cannot listen: %s", err);
		free(il);
		return fd;
	}
	ls->fd = fd;
	ls->impl = il;
	snprintf(ls->addr, sizeof(ls->addr), "%s", il->path);
	return 0;
}

static void ipc_listener_close(struct ir_listener *ls)
{
	struct ipc_listener *il = ls->impl;
	if (ls->fd >= 0)
		close(ls->fd);
	ls->fd = -1;
	if (il)
		unlink(il->path);
	free(il);
	ls->impl = NULL;
}

static void ipc_accept(struct ir_listener *ls)
{
	struct ipc_listener *il = ls->impl;
	for (int i = 0; i < 64; i++) {
		int fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				ir_warn("ipc", "accept(%s): %s", il->path, strerror(errno));
			return;
		}
		struct ir_conn *c = ir__conn_accepted(ls);
		if (!c) {
			close(fd);
			continue;
		}
		struct ipc_conn *ic = (struct ipc_conn *)c;
		ipc_init_conn(ic, fd);
		set_medium(ic, il->path);
		int rc = ir_loop_add_fd(c->loop, fd, IR_EV_READ, sock_cb, ic);
		if (rc < 0) {
			close(fd);
			ic->sock = -1;
		} else {
			rc = ir__conn_handshake_start(c);
		}
		if (rc < 0)
			ir__conn_lost(c, rc, "handshake start failed");
	}
}

static int ipc_connect(struct ir_conn *c)
{
	struct ipc_conn *ic = (struct ipc_conn *)c;
	char path[108], err[256];
	ipc_init_conn(ic, -1);
	if (ipc_path(c->addr, path, sizeof(path)) < 0) {
		ir__conn_set_error(c, "socket path for '%s' is too long", c->addr);
		return -ENAMETOOLONG;
	}
	int fd = ir_sock_unix_connect(path, err, sizeof(err));
	if (fd < 0) {
		ir__conn_set_error(c, "%s", err);
		return fd;
	}
	ic->sock = fd;
	set_medium(ic, path);
	int rc = ir_loop_add_fd(c->loop, fd, IR_EV_READ, sock_cb, ic);
	if (rc < 0)
		return rc;
	return ir__conn_handshake_start(c);
}

static int ipc_hs_send(struct ir_conn *c, const uint8_t *buf, size_t len, int final)
{
	struct ipc_conn *ic = (struct ipc_conn *)c;
	int fds[3] = {-1, -1, -1}, nfds = 0, memfd = -1;
	if (final && !c->dialer) {
		/* The dialer proved the token: now it may have memory. */
		int rc = seg_create(ic, &memfd);
		if (rc < 0)
			return rc;
		int bell_d = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		int bell_a = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (bell_d < 0 || bell_a < 0) {
			rc = -errno;
			ir__conn_set_error(c, "eventfd(): %s", strerror(errno));
			if (bell_d >= 0)
				close(bell_d);
			if (bell_a >= 0)
				close(bell_a);
			close(memfd);
			return rc;
		}
		ic->bell_rx = bell_a;
		ic->bell_tx = bell_d;
		fds[0] = memfd;
		fds[1] = bell_d;
		fds[2] = bell_a;
		nfds = 3;
	}
	int rc = ir_stream_write_all(ic->sock, buf, len, fds, nfds);
	if (memfd >= 0)
		close(memfd);
	if (rc < 0)
		ir__conn_set_error(c, "sendmsg(%s): %s", c->medium, strerror(-rc));
	return rc;
}

static int ipc_hs_done(struct ir_conn *c)
{
	struct ipc_conn *ic = (struct ipc_conn *)c;
	if (c->dialer) {
		if (ic->hs.nfds != 3) {
			ir__conn_set_error(c, "%s sent %d descriptors with its AUTH, not 3",
					   c->peer, ic->hs.nfds);
			return -EPROTO;
		}
		int rc = seg_open(ic, ic->hs.fds[0]);
		close(ic->hs.fds[0]);
		ic->bell_rx = ic->hs.fds[1];
		ic->bell_tx = ic->hs.fds[2];
		ic->hs.nfds = 0;
		if (rc < 0)
			return rc;
	}
	seg_attach(ic);
	int rc = ir_loop_add_fd(c->loop, ic->bell_rx, IR_EV_READ | IR_EV_EDGE, bell_cb, ic);
	if (rc < 0)
		return rc;
	rc = ir_loop_poller_add(c->loop, ipc_poll, ipc_sleep, ic);
	if (rc < 0)
		return rc;
	ic->poller = rc;
	ic->up = 1;
	return 0;
}

static void ipc_teardown(struct ir_conn *c)
{
	struct ipc_conn *ic = (struct ipc_conn *)c;
	if (ic->poller > 0)
		ir_loop_poller_del(c->loop, ic->poller);
	ic->poller = 0;
	ic->up = 0;
	if (ic->sock >= 0) {
		ir_loop_del_fd(c->loop, ic->sock);
		close(ic->sock);
	}
	if (ic->bell_rx >= 0) {
		ir_loop_del_fd(c->loop, ic->bell_rx);
		close(ic->bell_rx);
	}
	if (ic->bell_tx >= 0)
		close(ic->bell_tx);
	ic->sock = ic->bell_rx = ic->bell_tx = -1;
	if (ic->map)
		munmap(ic->map, ic->map_len);
	ic->map = NULL;
	ir_srx_release(&ic->hs);
	free(ic->big);
	ic->big = NULL;
	ic->streaming = 0;
	ic->tx_want = 0;
}

const struct ir_transport ir_transport_ipc = {
    .name = "ipc",
    .conn_size = sizeof(struct ipc_conn),
    .listen = ipc_listen,
    .accept = ipc_accept,
    .listener_close = ipc_listener_close,
    .connect = ipc_connect,
    .push = ipc_push,
    .reserve = ipc_reserve,
    .publish = ipc_publish,
    .unreserve = ipc_unreserve,
    .hs_send = ipc_hs_send,
    .hs_done = ipc_hs_done,
    .inject = ipc_inject,
    .teardown = ipc_teardown,
};
