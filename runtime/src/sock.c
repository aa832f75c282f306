/* sock.c - TCP and Unix socket setup; errors name the syscall (sock.h). */
#include "sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int fail(char *err, size_t errlen, int e, const char *call, const char *what)
{
	snprintf(err, errlen, "%s(%s): %s", call, what, strerror(e));
	return -e;
}

int ir_sock_split(const char *addr, char *host, size_t hlen, char *port, size_t plen, char *err,
		  size_t errlen)
{
	const char *colon, *hs = addr, *he;
	if (addr[0] == '[') {
		he = strchr(addr, ']');
		if (!he || he[1] != ':') {
			snprintf(err, errlen, "address '%s' is not [host]:port", addr);
			return -EINVAL;
		}
		hs = addr + 1;
		colon = he + 1;
	} else {
		colon = strrchr(addr, ':');
		he = colon;
	}
	if (!colon || !colon[1] || (size_t)(he - hs) >= hlen || strlen(colon + 1) >= plen) {
		snprintf(err, errlen, "address '%s' is not host:port", addr);
		return -EINVAL;
	}
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = 0;
	strcpy(port, colon + 1);
	for (const char *p = port; *p; p++)
		if (*p < '0' || *p > '9') {
			snprintf(err, errlen, "address '%s': port '%s' is not a number", addr,
				 port);
			return -EINVAL;
		}
	return 0;
}

static int resolve(const char *addr, int passive, struct addrinfo **res, char *err, size_t errlen)
{
	char host[256], port[16];
	int rc = ir_sock_split(addr, host, sizeof(host), port, sizeof(port), err, errlen);
	if (rc < 0)
		return rc;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	if (passive)
		hints.ai_flags = AI_PASSIVE;
	int g = getaddrinfo(host[0] ? host : NULL, port, &hints, res);
	if (g) {
		snprintf(err, errlen, "getaddrinfo(%s): %s", addr, gai_strerror(g));
		return -EHOSTUNREACH;
	}
	return 0;
}

int ir_sock_nodelay(int fd)
{
	int one = 1;
	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ? -errno : 0;
}

static void name_of(const struct sockaddr *sa, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		port = ntohs(in->sin_port);
		snprintf(out, len, "%s:%u", ip, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
		snprintf(out, len, "[%s]:%u", ip, port);
	} else {
		snprintf(out, len, "?");
	}
}

void ir_sock_peer_name(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
		snprintf(out, len, "?");
		return;
	}
	name_of((struct sockaddr *)&ss, out, len);
}

int ir_sock_tcp_listen(const char *addr, char *bound, size_t blen, char *err, size_t errlen)
{
	struct addrinfo *res, *ai;
	int rc = resolve(addr, 1, &res, err, errlen);
	if (rc < 0)
		return rc;
	int fd = -1;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			rc = fail(err, errlen, errno, "socket", addr);
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			rc = fail(err, errlen, errno, "bind", addr);
		} else if (listen(fd, 1024) < 0) {
			rc = fail(err, errlen, errno, "listen", addr);
		} else {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof(ss);
			getsockname(fd, (struct sockaddr *)&ss, &sl);
			name_of((struct sockaddr *)&ss, bound, blen);
			rc = 0;
			break;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return rc < 0 ? rc : fd;
}

int ir_sock_tcp_connect(const char *addr, char *err, size_t errlen)
{
	struct addrinfo *res, *ai;
	int rc = resolve(addr, 0, &res, err, errlen);
	if (rc < 0)
		return rc;
	int fd = -1;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			rc = fail(err, errlen, errno, "socket", addr);
			continue;
		}
		ir_sock_nodelay(fd);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) {
			rc = 0;
			break;
		}
		rc = fail(err, errlen, errno, "connect", addr);
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return rc < 0 ? rc : fd;
}

int ir_sock_connect_result(int fd)
{
	int e = 0;
	socklen_t sl = sizeof(e);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) < 0)
		return -errno;
	return -e;
}

static int unix_addr(const char *path, struct sockaddr_un *sun, char *err, size_t errlen)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path)) {
		snprintf(err, errlen, "socket path '%s' is longer than %zu bytes", path,
			 sizeof(sun->sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sun->sun_path, path);
	return 0;
}

int ir_sock_unix_listen(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	int rc = unix_addr(path, &sun, err, errlen);
	if (rc < 0)
		return rc;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(err, errlen, errno, "socket", path);
	int b = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	if (b < 0 && errno == EADDRINUSE) {
		/* A socket file left by a dead process: reclaim it; a live one: refuse. */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int alive = probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0;
		if (probe >= 0)
			close(probe);
		if (alive) {
			close(fd);
			return fail(err, errlen, EADDRINUSE, "bind", path);
		}
		unlink(path);
		b = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	}
	if (b < 0) {
		rc = fail(err, errlen, errno, "bind", path);
		close(fd);
		return rc;
	}
	if (listen(fd, 1024) < 0) {
		rc = fail(err, errlen, errno, "listen", path);
		close(fd);
		unlink(path);
		return rc;
	}
	return fd;
}

int ir_sock_unix_connect(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	int rc = unix_addr(path, &sun, err, errlen);
	if (rc < 0)
		return rc;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(err, errlen, errno, "socket", path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 && errno != EINPROGRESS) {
		rc = fail(err, errlen, errno, "connect", path);
		close(fd);
		return rc;
	}
	return fd;
}

void ir_iov_consume(struct iovec **iov, int *n, size_t done)
{
	struct iovec *v = *iov;
	while (*n > 0 && done >= v->iov_len) {
		done -= v->iov_len;
		v++;
		(*n)--;
	}
	if (*n > 0) {
		v->iov_base = (char *)v->iov_base + done;
		v->iov_len -= done;
	}
	*iov = v;
}
