/* stream.c - frame parsing over a byte stream (see stream.h). */
#include "stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport_int.h"

void ir_srx_init(struct ir_srx *rx, size_t cap)
{
	memset(rx, 0, sizeof(*rx));
	rx->cap = cap < 2 * IR_FRAME_HDR_SIZE ? 2 * IR_FRAME_HDR_SIZE : cap;
}

void ir_srx_release(struct ir_srx *rx)
{
	free(rx->buf);
	free(rx->big);
	for (int i = 0; i < rx->nfds; i++)
		close(rx->fds[i]);
	rx->buf = rx->big = NULL;
	rx->start = rx->end = rx->big_have = 0;
	rx->nfds = 0;
}

static ssize_t rx_read(struct ir_srx *rx, int fd, void *dst, size_t len)
{
	if (!rx->want_fds)
		return read(fd, dst, len);
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * IR_SRX_MAX_FDS)];
	} cm;
	struct iovec iov = {dst, len};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof(cm.b)};
	ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return n;
	for (struct cmsghdr *ch = CMSG_FIRSTHDR(&mh); ch; ch = CMSG_NXTHDR(&mh, ch)) {
		if (ch->cmsg_level != SOL_SOCKET || ch->cmsg_type != SCM_RIGHTS)
			continue;
		int cnt = (int)((ch->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		int *fds = (int *)(void *)CMSG_DATA(ch);
		for (int i = 0; i < cnt; i++) {
			if (rx->nfds < IR_SRX_MAX_FDS)
				rx->fds[rx->nfds++] = fds[i];
			else
				close(fds[i]);
		}
	}
	return n;
}

static int read_failed(struct ir_conn *c, struct ir_srx *rx, ssize_t n)
{
	if (n == 0 && (rx->big || rx->end > rx->start)) {
		ir__conn_lost(c, -ECONNRESET, "peer went away in the middle of a frame");
		return -ECONNRESET;
	}
	if (n == 0 && c->state == IR_CONN_HANDSHAKE && c->dialer) {
		ir__conn_lost(c, -EACCES,
			      "peer closed during the handshake (wrong cluster token?)");
		return -EACCES;
	}
	if (n == 0) {
		ir__conn_lost(c, 0, "closed by peer");
		return -ECONNRESET;
	}
	int e = errno;
	ir__conn_set_error(c, "read(%s): %s", c->medium, strerror(e));
	ir__conn_lost(c, -e, c->last_error);
	return -e;
}

/* Deliver the frames that are complete in the buffer. */
static int parse(struct ir_conn *c, struct ir_srx *rx)
{
	while (rx->end - rx->start >= IR_FRAME_HDR_SIZE) {
		if (rx->stop_when_open && c->state == IR_CONN_OPEN)
			return ir__conn_bad_frame(
			    c, "data after the handshake on the ipc control socket");
		struct ir_frame_hdr h;
		int rc = ir_frame_decode(rx->buf + rx->start, rx->end - rx->start,
					 c->cfg.max_payload, &h);
		if (rc < 0)
			return ir__conn_bad_frame(c, ir_frame_strerror(rc));
		size_t need = IR_FRAME_HDR_SIZE + (size_t)h.payload_len;
		if (need > rx->cap) {
			/* Large: an exact buffer, filled with what we have, the rest read into it.
			 */
			rx->big = malloc(h.payload_len);
			if (!rx->big) {
				ir__conn_lost(c, -ENOMEM, "out of memory for a payload");
				return -ENOMEM;
			}
			size_t have = rx->end - rx->start - IR_FRAME_HDR_SIZE;
			memcpy(rx->big, rx->buf + rx->start + IR_FRAME_HDR_SIZE, have);
			rx->big_have = have;
			rx->big_hdr = h;
			rx->start = rx->end = 0;
			return 0;
		}
		if (rx->end - rx->start < need)
			break;
		const uint8_t *payload = rx->buf + rx->start + IR_FRAME_HDR_SIZE;
		rx->start += need;
		rc = ir__conn_deliver(c, &h, payload);
		if (rc < 0)
			return rc;
	}
	if (rx->start == rx->end)
		rx->start = rx->end = 0;
	return 0;
}

int ir_srx_pump(struct ir_conn *c, struct ir_srx *rx, int fd)
{
	/* Bounded work per call: level-triggered epoll calls us again. */
	for (int round = 0; round < 16; round++) {
		if (rx->big) {
			size_t want = rx->big_hdr.payload_len - rx->big_have;
			ssize_t n = want ? rx_read(rx, fd, rx->big + rx->big_have, want) : 0;
			if (want && n <= 0) {
				if (n < 0 && (errno == EAGAIN || errno == EINTR))
					return 0;
				return read_failed(c, rx, n);
			}
			rx->big_have += (size_t)(want ? n : 0);
			if (rx->big_have < rx->big_hdr.payload_len)
				continue;
			uint8_t *big = rx->big;
			rx->big = NULL;
			int rc = ir__conn_deliver(c, &rx->big_hdr, big);
			free(big);
			if (rc < 0)
				return rc;
			continue;
		}
		if (!rx->buf) {
			rx->buf = malloc(rx->cap);
			if (!rx->buf) {
				ir__conn_lost(c, -ENOMEM, "out of memory for the receive buffer");
				return -ENOMEM;
			}
		}
		if (rx->start && rx->cap - rx->end < IR_FRAME_HDR_SIZE) {
			memmove(rx->buf, rx->buf + rx->start, rx->end - rx->start);
			rx->end -= rx->start;
			rx->start = 0;
		}
		ssize_t n = rx_read(rx, fd, rx->buf + rx->end, rx->cap - rx->end);
		if (n <= 0) {
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return 0;
			return read_failed(c, rx, n);
		}
		rx->end += (size_t)n;
		int rc = parse(c, rx);
		if (rc < 0)
			return rc;
		/* A frame that needs more room than is left: make room next round. */
		if (rx->start && rx->end - rx->start >= IR_FRAME_HDR_SIZE) {
			memmove(rx->buf, rx->buf + rx->start, rx->end - rx->start);
			rx->end -= rx->start;
			rx->start = 0;
		}
		if ((size_t)n < 4096 && !rx->big)
			return 0; /* the socket is most likely drained */
	}
	return 0;
}

int ir_stream_write_all(int fd, const uint8_t *buf, size_t len, const int *fds, int nfds)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * IR_SRX_MAX_FDS)];
	} cm;
	while (len) {
		struct iovec iov = {(void *)buf, len};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		if (nfds > 0) {
			memset(&cm, 0, sizeof(cm));
			mh.msg_control = cm.b;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
			struct cmsghdr *ch = CMSG_FIRSTHDR(&mh);
			ch->cmsg_level = SOL_SOCKET;
			ch->cmsg_type = SCM_RIGHTS;
			ch->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
			memcpy(CMSG_DATA(ch), fds, sizeof(int) * (size_t)nfds);
		}
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		nfds = 0; /* the fds travel with the first byte */
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}
