/* token.c - find the cluster token (see token.h). */
#include "iroute/token.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int finish(uint8_t *buf, size_t len, const char *src, char *err, size_t errlen)
{
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (!len) {
		snprintf(err, errlen, "cluster token from %s is empty", src);
		return -EINVAL;
	}
	return (int)len;
}

int ir_token_load(uint8_t *buf, size_t cap, char *err, size_t errlen)
{
	const char *v = getenv("IROUTE_TOKEN");
	if (v && *v) {
		size_t len = strlen(v);
		if (len > cap) {
			snprintf(err, errlen, "IROUTE_TOKEN is longer than %zu bytes", cap);
			return -E2BIG;
		}
		memcpy(buf, v, len);
		return finish(buf, len, "IROUTE_TOKEN", err, errlen);
	}
	const char *path = getenv("IROUTE_TOKEN_FILE");
	int from_env = path && *path;
	if (!from_env)
		path = IR_TOKEN_DEFAULT_FILE;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen,
			 "no cluster token: IROUTE_TOKEN is unset and %s%s cannot be read (%s)",
			 from_env ? "IROUTE_TOKEN_FILE=" : "", path, strerror(e));
		return -e;
	}
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			snprintf(err, errlen, "read(%s): %s", path, strerror(e));
			return -e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap) {
			char extra;
			if (read(fd, &extra, 1) > 0) {
				close(fd);
				snprintf(err, errlen,
					 "cluster token in %s is longer than %zu bytes", path, cap);
				return -E2BIG;
			}
			break;
		}
	}
	close(fd);
	return finish(buf, len, path, err, errlen);
}
