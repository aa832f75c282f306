/* transport_tcp.c - frames over non-blocking TCP.
 *
 * One socket per peer pair, TCP_NODELAY, header and payload leave in one
 * writev() (no user-space copy of the payload), partial writes resume at
 * the byte they stopped.  Write interest is armed only while something is
 * queued, so an idle connection costs epoll nothing.  Receive: stream.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "iroute/log.h"
#include "sock.h"
#include "stream.h"
#include "transport_int.h"

#define TCP_RX_BUF (64u << 10)
#define TCP_IOV_MAX 64

struct tcp_conn {
	struct ir_conn base;
	int fd;
	int connecting;
	int want_out; /* EPOLLOUT armed */
	struct ir_srx rx;
	uint8_t *resv; /* reserve(): the payload is built here */
};

static void tcp_io_cb(struct ir_loop *loop, int fd, unsigned events, void *arg);

static void set_out(struct tcp_conn *tc, int on)
{
	if (tc->want_out == on || tc->fd < 0)
		return;
	tc->want_out = on;
	ir_loop_mod_fd(tc->base.loop, tc->fd, IR_EV_READ | (on ? IR_EV_WRITE : 0));
}

static int tcp_listen(struct ir_listener *ls, const char *addr)
{
	char err[256];
	int fd = ir_sock_tcp_listen(addr, ls->addr, sizeof(ls->addr), err, sizeof(err));
	if (fd < 0) {
		ir_error("tcp", "cannot listen: %s", err);
		return fd;
	}
	ls->fd = fd;
	return 0;
}

static void tcp_listener_close(struct ir_listener *ls)
{
	if (ls->fd >= 0)
		close(ls->fd);
	ls->fd = -1;
}

static int tcp_attach(struct tcp_conn *tc, int fd, unsigned events)
{
	tc->fd = fd;
	ir_srx_init(&tc->rx, TCP_RX_BUF);
	int rc = ir_loop_add_fd(tc->base.loop, fd, events, tcp_io_cb, tc);
	if (rc < 0) {
		close(fd);
		tc->fd = -1;
	}
	return rc;
}

static void tcp_accept(struct ir_listener *ls)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				ir_warn("tcp", "accept(%s): %s", ls->addr, strerror(errno));
			return;
		}
		ir_sock_nodelay(fd);
		struct ir_conn *c = ir__conn_accepted(ls);
		if (!c) {
			close(fd);
			continue;
		}
		struct tcp_conn *tc = (struct tcp_conn *)c;
		char name[80];
		ir_sock_peer_name(fd, name, sizeof(name));
		snprintf(c->medium, sizeof(c->medium), "tcp %s", name);
		int rc = tcp_attach(tc, fd, IR_EV_READ);
		if (rc == 0)
			rc = ir__conn_handshake_start(c);
		if (rc < 0)
			ir__conn_lost(c, rc, "handshake start failed");
	}
}

static int tcp_connect(struct ir_conn *c)
{
	struct tcp_conn *tc = (struct tcp_conn *)c;
	char err[256];
	tc->fd = -1;
	int fd = ir_sock_tcp_connect(c->addr, err, sizeof(err));
	if (fd < 0) {
		ir__conn_set_error(c, "%s", err);
		return fd;
	}
	tc->connecting = 1;
	tc->want_out = 1;
	return tcp_attach(tc, fd, IR_EV_READ | IR_EV_WRITE);
}

static void tcp_connected(struct tcp_conn *tc)
{
	struct ir_conn *c = &tc->base;
	int rc = ir_sock_connect_result(tc->fd);
	if (rc < 0) {
		ir__conn_set_error(c, "connect(%s): %s", c->addr, strerror(-rc));
		ir__conn_lost(c, rc, c->last_error);
		return;
	}
	tc->connecting = 0;
	set_out(tc, 0);
	rc = ir__conn_handshake_start(c);
	if (rc < 0)
		ir__conn_lost(c, rc, "handshake write failed");
}

static void tcp_io_cb(struct ir_loop *loop, int fd, unsigned events, void *arg)
{
	(void)loop;
	(void)fd;
	struct tcp_conn *tc = arg;
	struct ir_conn *c = &tc->base;
	ir__conn_hold(c);
	if (tc->connecting) {
		if (events & (IR_EV_WRITE | IR_EV_ERROR))
			tcp_connected(tc);
		goto out;
	}
	if (events & (IR_EV_READ | IR_EV_ERROR)) {
		if (ir_srx_pump(c, &tc->rx, tc->fd) < 0)
			goto out;
	}
	if ((events & IR_EV_WRITE) && c->state == IR_CONN_OPEN) {
		ir__conn_flush(c);
		if (c->state == IR_CONN_OPEN && !c->txq)
			set_out(tc, 0);
	}
out:
	ir__conn_put(c);
}

static int tcp_push(struct ir_conn *c, struct ir_txe *e)
{
	struct tcp_conn *tc = (struct tcp_conn *)c;
	while (e->off < e->total) {
		struct iovec iov[TCP_IOV_MAX];
		int n = ir_txe_iov(e, e->off, iov, TCP_IOV_MAX);
		ssize_t w = writev(tc->fd, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				set_out(tc, 1);
				return 0;
			}
			int err = errno;
			ir__conn_set_error(c, "writev(%s): %s", c->medium, strerror(err));
			return -err;
		}
		e->off += (size_t)w;
	}
	return 0;
}

static int tcp_hs_send(struct ir_conn *c, const uint8_t *buf, size_t len, int final)
{
	(void) final;
	struct tcp_conn *tc = (struct tcp_conn *)c;
	int rc = ir_stream_write_all(tc->fd, buf, len, NULL, 0);
	if (rc < 0)
		ir__conn_set_error(c, "write(%s): %s", c->medium, strerror(-rc));
	return rc;
}

static int tcp_reserve(struct ir_conn *c, size_t len, void **buf)
{
	struct tcp_conn *tc = (struct tcp_conn *)c;
	tc->resv = malloc(len ? len : 1);
	if (!tc->resv)
		return -ENOMEM;
	*buf = tc->resv;
	return 0;
}

static int tcp_publish(struct ir_conn *c, const uint8_t hdr[IR_FRAME_HDR_SIZE], size_t len)
{
	struct tcp_conn *tc = (struct tcp_conn *)c;
	uint8_t *payload = tc->resv;
	tc->resv = NULL;
	struct ir_txe *e = calloc(1, sizeof(*e));
	if (!e) {
		free(payload);
		return -ENOMEM;
	}
	memcpy(e->hdr, hdr, IR_FRAME_HDR_SIZE);
	e->total = IR_FRAME_HDR_SIZE + len;
	e->copy = payload;
	e->iov_one.iov_base = payload;
	e->iov_one.iov_len = len;
	e->iov = &e->iov_one;
	e->iovcnt = 1;
	int rc = tcp_push(c, e);
	if (rc < 0 || e->off == e->total) {
		free(payload);
		free(e);
		return rc;
	}
	/* The rest goes out from the queue; the entry owns the buffer. */
	e->copied = len;
	c->st.sndq_bytes += len;
	if (c->st.sndq_bytes > c->st.sndq_peak)
		c->st.sndq_peak = c->st.sndq_bytes;
	*c->txq_tail = e;
	c->txq_tail = &e->next;
	return 0;
}

static void tcp_unreserve(struct ir_conn *c)
{
	struct tcp_conn *tc = (struct tcp_conn *)c;
	free(tc->resv);
	tc->resv = NULL;
}

static int tcp_inject(struct ir_conn *c, const void *data, size_t len, uint32_t flags)
{
	(void)flags;
	return ir_stream_write_all(((struct tcp_conn *)c)->fd, data, len, NULL, 0);
}

static void tcp_teardown(struct ir_conn *c)
{
	struct tcp_conn *tc = (struct tcp_conn *)c;
	if (tc->fd >= 0) {
		ir_loop_del_fd(c->loop, tc->fd);
		close(tc->fd);
	}
	tc->fd = -1;
	tc->connecting = 0;
	tc->want_out = 0;
	ir_srx_release(&tc->rx);
	free(tc->resv);
	tc->resv = NULL;
}

const struct ir_transport ir_transport_tcp = {
    .name = "tcp",
    .conn_size = sizeof(struct tcp_conn),
    .listen = tcp_listen,
    .accept = tcp_accept,
    .listener_close = tcp_listener_close,
    .connect = tcp_connect,
    .push = tcp_push,
    .reserve = tcp_reserve,
    .publish = tcp_publish,
    .unreserve = tcp_unreserve,
    .hs_send = tcp_hs_send,
    .hs_done = NULL,
    .inject = tcp_inject,
    .teardown = tcp_teardown,
};
