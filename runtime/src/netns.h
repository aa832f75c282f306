/* netns.h - the simulated nodes of `iroute local up --nodes K`: K network
 * namespaces on one Linux bridge.
 *
 *     host (root namespace)          bridge irb-TAG  10.77.S.1/24
 *       ├── veth irhTAG-1 ── irnTAG-1  in netns iroute-TAG-1  10.77.S.2/24
 *       ├── veth irhTAG-2 ── irnTAG-2  in netns iroute-TAG-2  10.77.S.3/24
 *       └── ...
 *
 * Why this design: a node of a cluster is a separate network stack and a
 * separate IPC directory; namespaces give the first (so every cross-node
 * hop really crosses an interface, over tcp), the caller gives the second.
 * One bridge with the host on it lets the command-line tool reach every
 * instance and every instance reach the coordinator on the host, with no
 * routing or NAT.  TAG (6 hex digits) derives from the state directory, so
 * a crashed run's leftovers are found and removed by the next one; S is the
 * first /24 of 10.77.0.0/16 (from TAG on) that no interface uses.  The
 * plumbing is iproute2's `ip` (present wherever namespaces are used);
 * processes enter a namespace with setns(2) on /run/netns/<name>.  Root
 * only (CAP_NET_ADMIN, CAP_SYS_ADMIN).
 */
#ifndef IROUTE_NETNS_H
#define IROUTE_NETNS_H

#include <stddef.h>

#define IR_NET_MAX_NODES 64

struct ir_net {
	unsigned nodes;	 /* 0: no namespaces (everything on the host) */
	char tag[8];	 /* 6 hex digits */
	unsigned subnet; /* 10.77.<subnet>.0/24 */
	char bridge[16];
	char host_ip[16]; /* the bridge's address */
};

/* The tag of state directory @state_dir into @tag (7 bytes). */
void ir_net_tag(const char *state_dir, char tag[8]);

/* Names of node @k (1..nodes): its namespace, address and veth ends. */
void ir_net_node(const struct ir_net *n, unsigned k, char ns[32], char ip[16]);

/* Create @nodes namespaces with @tag on a new bridge (leftovers with that
 * tag are removed first).  On failure everything made is removed again.
 * 0 or -errno with the failing command and its message in @err. */
int ir_net_up(struct ir_net *n, unsigned nodes, const char *tag, char *err, size_t errlen);

/* Remove the namespaces and the bridge of @n (or of @n->tag when nodes is
 * 0, up to IR_NET_MAX_NODES).  What is already gone is fine: 0, or -errno
 * for the first removal that failed otherwise. */
int ir_net_down(const struct ir_net *n, char *err, size_t errlen);

/* Move the calling thread (a forked child before exec) into node @k's
 * namespace.  0 or -errno. */
int ir_net_enter(const struct ir_net *n, unsigned k);

#endif
