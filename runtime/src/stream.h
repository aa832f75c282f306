/* stream.h - frames over a byte-stream socket: the receive side.
 *
 * Used by tcp for its whole life and by ipc for the handshake on its Unix
 * socket.  Small frames are parsed out of one reusable buffer, several per
 * read(); a frame whose payload does not fit gets an exact buffer sized
 * from the validated header and the rest is read straight into it, so a
 * large payload is copied once, by the kernel.
 */
#ifndef IROUTE_STREAM_H
#define IROUTE_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "iroute/frame.h"

struct ir_conn;

#define IR_SRX_MAX_FDS 4

struct ir_srx {
	uint8_t *buf; /* allocated on first read */
	size_t cap, start, end;
	uint8_t *big; /* payload of the frame being read directly */
	size_t big_have;
	struct ir_frame_hdr big_hdr;
	int want_fds;	    /* Unix socket: collect SCM_RIGHTS fds */
	int stop_when_open; /* ipc: the stream carries only the handshake */
	int fds[IR_SRX_MAX_FDS];
	int nfds;
};

void ir_srx_init(struct ir_srx *rx, size_t cap);
/* Free buffers and close collected fds. */
void ir_srx_release(struct ir_srx *rx);
/* Read what @fd has and deliver complete frames to ir__conn_deliver().
 * Returns 0 when the socket would block, or < 0 when the connection is no
 * longer usable (it has been told: lost, closed or bad frame).  The caller
 * holds a reference on @c. */
int ir_srx_pump(struct ir_conn *c, struct ir_srx *rx, int fd);
/* Write all of @buf to a fresh socket (handshake bytes), optionally with
 * SCM_RIGHTS @fds.  Returns 0 or -errno. */
int ir_stream_write_all(int fd, const uint8_t *buf, size_t len, const int *fds, int nfds);

#endif
