/* netns.c - namespaces on a bridge for `iroute local up --nodes K` (see netns.h). */
#include "netns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NS_DIR "/run/netns"

void ir_net_tag(const char *state_dir, char tag[8])
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)state_dir; *p; p++)
		h = (h ^ *p) * 16777619u;
	snprintf(tag, 8, "%06x", (unsigned)(h & 0xffffff));
}

void ir_net_node(const struct ir_net *n, unsigned k, char ns[32], char ip[16])
{
	snprintf(ns, 32, "iroute-%s-%u", n->tag, k);
	snprintf(ip, 16, "10.77.%u.%u", n->subnet, k + 1);
}

static void veth_names(const struct ir_net *n, unsigned k, char host[IFNAMSIZ], char peer[IFNAMSIZ])
{
	snprintf(host, IFNAMSIZ, "irh%s-%u", n->tag, k);
	snprintf(peer, IFNAMSIZ, "irn%s-%u", n->tag, k);
}

/* Run `ip ARGS...` (NULL-terminated); its stderr goes into @err on failure. */
static int run_ip(char *err, size_t errlen, const char *arg, ...)
{
	const char *argv[24] = {"ip"};
	size_t argc = 1;
	va_list ap;
	va_start(ap, arg);
	for (const char *a = arg; a && argc < 23; a = va_arg(ap, const char *))
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return -errno;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(pfd[0]);
		close(pfd[1]);
		return -e;
	}
	if (pid == 0) {
		dup2(pfd[1], 2);
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
		}
		execvp("ip", (char *const *)argv);
		dprintf(2, "exec ip: %s (install iproute2)", strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	char msg[512];
	size_t got = 0;
	for (;;) {
		ssize_t r = read(pfd[0], msg + got, sizeof(msg) - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == sizeof(msg) - 1)
			break;
	}
	msg[got] = '\0';
	close(pfd[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	while (got && (msg[got - 1] == '\n' || msg[got - 1] == ' '))
		msg[--got] = '\0';
	int off = snprintf(err, errlen, "ip");
	for (size_t i = 1; i < argc && off > 0 && (size_t)off < errlen; i++)
		off += snprintf(err + off, errlen - (size_t)off, " %s", argv[i]);
	if (off > 0 && (size_t)off < errlen)
		snprintf(err + off, errlen - (size_t)off, ": %s", *msg ? msg : "failed");
	return -EIO;
}

static bool link_exists(const char *name)
{
	return if_nametoindex(name) != 0;
}

static bool ns_exists(const char *ns)
{
	char path[64];
	snprintf(path, sizeof(path), NS_DIR "/%s", ns);
	struct stat sb;
	return stat(path, &sb) == 0;
}

/* A /24 of 10.77.0.0/16 that no interface address is in, from @start on. */
static int pick_subnet(unsigned start, unsigned *out)
{
	bool used[256] = {false};
	struct ifaddrs *ifa;
	if (getifaddrs(&ifa) != 0)
		return -errno;
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		uint32_t a = ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
		if ((a >> 16) == ((10u << 8) | 77u))
			used[(a >> 8) & 0xff] = true;
	}
	freeifaddrs(ifa);
	for (unsigned i = 0; i < 254; i++) {
		unsigned s = 1 + (start + i) % 254;
		if (!used[s]) {
			*out = s;
			return 0;
		}
	}
	return -EADDRINUSE;
}

int ir_net_down(const struct ir_net *n, char *err, size_t errlen)
{
	int rc = 0;
	char e2[512];
	unsigned max = n->nodes ? n->nodes : IR_NET_MAX_NODES;
	for (unsigned k = 1; k <= max; k++) {
		char ns[32], ip[16], vh[IFNAMSIZ], vn[IFNAMSIZ];
		ir_net_node(n, k, ns, ip);
		veth_names(n, k, vh, vn);
		if (link_exists(vh)) {
			int r = run_ip(e2, sizeof(e2), "link", "del", vh, NULL);
			if (r && !rc) {
				rc = r;
				snprintf(err, errlen, "%s", e2);
			}
		}
		if (ns_exists(ns)) {
			int r = run_ip(e2, sizeof(e2), "netns", "del", ns, NULL);
			if (r && !rc) {
				rc = r;
				snprintf(err, errlen, "%s", e2);
			}
		}
	}
	char br[IFNAMSIZ];
	snprintf(br, sizeof(br), "irb-%s", n->tag);
	if (link_exists(br)) {
		int r = run_ip(e2, sizeof(e2), "link", "del", br, NULL);
		if (r && !rc) {
			rc = r;
			snprintf(err, errlen, "%s", e2);
		}
	}
	return rc;
}

static int node_up(struct ir_net *n, unsigned k, char *err, size_t errlen)
{
	char ns[32], ip[16], cidr[24], vh[IFNAMSIZ], vn[IFNAMSIZ];
	ir_net_node(n, k, ns, ip);
	veth_names(n, k, vh, vn);
	snprintf(cidr, sizeof(cidr), "%s/24", ip);
	int rc;
	if ((rc = run_ip(err, errlen, "netns", "add", ns, NULL)) ||
	    (rc = run_ip(err, errlen, "link", "add", vh, "type", "veth", "peer", "name", vn,
			 NULL)) ||
	    (rc = run_ip(err, errlen, "link", "set", vh, "master", n->bridge, "up", NULL)) ||
	    (rc = run_ip(err, errlen, "link", "set", vn, "netns", ns, NULL)) ||
	    (rc = run_ip(err, errlen, "-n", ns, "addr", "add", cidr, "dev", vn, NULL)) ||
	    (rc = run_ip(err, errlen, "-n", ns, "link", "set", vn, "up", NULL)) ||
	    (rc = run_ip(err, errlen, "-n", ns, "link", "set", "lo", "up", NULL)))
		return rc;
	return 0;
}

int ir_net_up(struct ir_net *n, unsigned nodes, const char *tag, char *err, size_t errlen)
{
	memset(n, 0, sizeof(*n));
	if (nodes < 1 || nodes > IR_NET_MAX_NODES) {
		snprintf(err, errlen, "--nodes %u: want 1-%d", nodes, IR_NET_MAX_NODES);
		return -EINVAL;
	}
	snprintf(n->tag, sizeof(n->tag), "%s", tag);
	char e2[256];
	ir_net_down(n, e2, sizeof(e2)); /* a crashed run's leftovers */
	int rc = pick_subnet((unsigned)strtoul(tag, NULL, 16) % 254, &n->subnet);
	if (rc) {
		snprintf(err, errlen, "no free /24 in 10.77.0.0/16: %s", strerror(-rc));
		return rc;
	}
	n->nodes = nodes;
	snprintf(n->bridge, sizeof(n->bridge), "irb-%s", n->tag);
	snprintf(n->host_ip, sizeof(n->host_ip), "10.77.%u.1", n->subnet);
	char cidr[24];
	snprintf(cidr, sizeof(cidr), "%s/24", n->host_ip);
	if ((rc = run_ip(err, errlen, "link", "add", n->bridge, "type", "bridge", NULL)) == 0 &&
	    (rc = run_ip(err, errlen, "addr", "add", cidr, "dev", n->bridge, NULL)) == 0 &&
	    (rc = run_ip(err, errlen, "link", "set", n->bridge, "up", NULL)) == 0) {
		/* Bridged frames must not meet the host's iptables FORWARD policy
		 * (Docker sets it to DROP); older kernels lack the option. */
		run_ip(e2, sizeof(e2), "link", "set", n->bridge, "type", "bridge",
		       "nf_call_iptables", "0", NULL);
		for (unsigned k = 1; !rc && k <= nodes; k++)
			rc = node_up(n, k, err, errlen);
	}
	if (rc) {
		ir_net_down(n, e2, sizeof(e2));
		n->nodes = 0;
	}
	return rc;
}

int ir_net_enter(const struct ir_net *n, unsigned k)
{
	char ns[32], ip[16], path[64];
	ir_net_node(n, k, ns, ip);
	snprintf(path, sizeof(path), NS_DIR "/%s", ns);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = setns(fd, CLONE_NEWNET) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}
