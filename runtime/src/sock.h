/* sock.h - socket helpers: every failure names the syscall and the address,
 * as valkey's anet does ("connect(127.0.0.1:9): Connection refused"). */
#ifndef IROUTE_SOCK_H
#define IROUTE_SOCK_H

#include <stddef.h>
#include <sys/uio.h>

/* Split "host:port" / "[v6]:port".  Returns 0 or -EINVAL (message in @err). */
int ir_sock_split(const char *addr, char *host, size_t hlen, char *port, size_t plen, char *err,
		  size_t errlen);
/* Non-blocking listening TCP socket; @bound receives "host:port" with the
 * real port.  Returns the fd or -errno. */
int ir_sock_tcp_listen(const char *addr, char *bound, size_t blen, char *err, size_t errlen);
/* Start a non-blocking connect (TCP_NODELAY set).  Returns the fd (the
 * connect may still be in progress) or -errno. */
int ir_sock_tcp_connect(const char *addr, char *err, size_t errlen);
/* Finish a connect that was in progress: 0 or -errno (SO_ERROR). */
int ir_sock_connect_result(int fd);
/* "ip:port" of the peer of @fd (or "?"). */
void ir_sock_peer_name(int fd, char *out, size_t len);
int ir_sock_unix_listen(const char *path, char *err, size_t errlen);
int ir_sock_unix_connect(const char *path, char *err, size_t errlen);
int ir_sock_nodelay(int fd);

/* After a write of @done bytes from iov[0..*n): skip the iovecs written
 * whole and trim the first one written in part (it is modified). */
void ir_iov_consume(struct iovec **iov, int *n, size_t done);

#endif
