/* peers.h - an instance's connections to the instances it sends to: one
 * per peer, over the transport chosen per peer, dialed on first use.
 *
 * Why this design: DESIGN §4 chooses the transport per peer, not per
 * deployment - same kernel (boot id) and the peer's IPC socket visible in
 * the shared directory: shared memory; else TCP (RDMA, where both sides
 * have a device, is not built on machines without the verbs headers'
 * device and falls back to TCP here).  IROUTE_TRANSPORT forces one.  The
 * choice is a pure function of the two instances' table entries, so it is
 * tested without sockets, and the manager only adds what needs the event
 * loop: one reconnecting connection per peer id, found again on every
 * send, and closed when the peer leaves the routing table.
 *
 * Everything runs on the loop's thread (as the transports do).
 */
#ifndef IROUTE_PEERS_H
#define IROUTE_PEERS_H
#include <stdbool.h>
#include <stddef.h>

#include "iroute/ccclient.h"
#include "iroute/transport.h"

/* The transport for sending to @peer from an instance on node @self_node
 * (its boot id), and the address to dial in *@addr (borrowed from @peer).
 * @force: NULL, "" or "auto" (the rule above), "ipc" or "tcp".  NULL when
 * there is no way to reach @peer, with the reason in @why. */
const struct ir_transport *ir_peer_choose(const struct ir_route_inst *peer, const char *self_node,
					  const char *force, const char **addr, char *why,
					  size_t cap);

struct ir_peers;

/* @cfg is copied (its token too) and used for every dial, with reconnect
 * on; @cbs and @ud are the caller's callbacks for every peer connection
 * (find the peer of a connection with ir_peers_id()). */
int ir_peers_new(struct ir_peers **p, struct ir_loop *loop, const struct ir_conn_cfg *cfg,
		 const struct ir_conn_cbs *cbs, void *ud, const char *self_node, const char *force);

/* The connection to @peer, dialed now if there is none (sends before it
 * opens are queued by the transport).  0, or -EHOSTUNREACH (no transport
 * reaches it; message in @why), or the dial's -errno. */
int ir_peers_get(struct ir_peers *p, const struct ir_route_inst *peer, struct ir_conn **c,
		 char *why, size_t cap);

/* The peer id of @c, or NULL when @c is not one of ours. */
const char *ir_peers_id(const struct ir_peers *p, const struct ir_conn *c);

/* Close the connection to @id (a peer that left, or a suspect).  Returns
 * whether there was one. */
bool ir_peers_drop(struct ir_peers *p, const char *id);

/* Close every connection whose peer is not in @t (routes or entries).
 * Returns how many were closed. */
size_t ir_peers_prune(struct ir_peers *p, const struct ir_table *t);

size_t ir_peers_count(const struct ir_peers *p);

void ir_peers_free(struct ir_peers *p);

#endif
