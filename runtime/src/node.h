/* node.h - the data plane every workflow instance shares, function or
 * entry: the I/O thread and its loop, the frame listeners (ipc + tcp), the
 * connections to peers, the coordinator client and its tables, and
 * delivery (DESIGN.md §4): each output is kept in the outbox until the
 * receiver ACKs it, resent to the next choice when its peer is lost, and
 * dropped at its request's deadline.
 *
 * Why this split: the two roles differ only in what they do with a frame
 * (a function joins branches and runs its handler, fn.c; an entry collects
 * results and answers HTTP, entry.c), while the hard part - routing every
 * output one hop, keeping it until ACKed, reacting to a lost peer - is the
 * same for both; one module owns it, and the roles plug in with three
 * callbacks.  Everything here runs on the node's I/O thread (the only
 * thread that touches the loop, the peers and the outbox); other threads
 * reach it with ir_node_post().
 *
 * Delivery rules (who ACKs when):
 *   - a function ACKs a DATA once its handler ran and its own outputs were
 *     handed to the transport (or the request failed and its ERROR was);
 *     a branch of a join is ACKed when the join runs, so a join instance
 *     that dies with branches held gets them resent by their senders;
 *   - an entry ACKs a RESULT or ERROR on arrival;
 *   - a duplicate is ACKed at once (the earlier copy is done or held).
 * ACKs go back on the connection the frame came in on.  A peer is lost
 * when its connection closes or a dial fails: it becomes a local suspect
 * (excluded from every pick until a connection to it opens again), the
 * coordinator is asked to probe it, and every output whose last attempt
 * went to it is resent to the next choice - for a join the next
 * rendezvous choice, which every sender computes alike.  An output whose
 * ACK is late goes again to the same peer while its connection is up
 * (a join may legitimately wait for a slow branch).
 */
#ifndef IROUTE_NODE_H
#define IROUTE_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iroute/ccclient.h"
#include "iroute/frame.h"
#include "iroute/loop.h"
#include "iroute/workflow.h"

#define IR_FN_ENTRY 0xffffu /* "function index" of the entry (src_fn, outbox key) */
#define IR_FN_ERROR 0xfffeu /* outbox key of an ERROR on its way to the entry */

struct ir_node;

/* What a frame carries besides its payload, for ir_node_send(). */
struct ir_node_msg {
	uint8_t type;	  /* IR_FRAME_DATA, _RESULT or _ERROR */
	uint16_t fn;	  /* DATA: the destination function's index */
	uint16_t branch;  /* DATA: the input index there; RESULT/ERROR: the sender's index */
	uint16_t flags;	  /* IR_FRAME_F_FWD */
	uint64_t req;	  /* request id */
	uint64_t origin;  /* the entry waiting for the result */
	uint32_t epoch;	  /* the request's routing epoch */
	uint64_t start_ns;    /* CLOCK_REALTIME the request entered */
	uint64_t deadline_rt; /* CLOCK_REALTIME deadline */
};

/* A successor in a function's slice. */
struct ir_node_next {
	char name[64];
	uint16_t index;	 /* its function index */
	uint16_t branch; /* our input index there */
	bool join;
};

/* A function's slice of the workflow (ir_workflow_slice_json()), parsed
 * once at start-up: what the data plane and the function need. */
struct ir_node_slice {
	uint16_t index; /* this function */
	bool sink, join;
	uint32_t k;		  /* inputs per request: the predecessors, at least 1 */
	char (*prev)[64];	  /* k names ("" for an entry function) */
	struct ir_node_next *next; /* nnext successors, in "next" order */
	size_t nnext;
	const char **next_names; /* next[i].name, as ir_out_new() takes them */
};

struct ir_node_ops {
	/* A DATA frame (function role): payload borrowed for the call.
	 * @conn_id names the connection for ir_node_ack(). */
	void (*on_data)(void *arg, uint64_t conn_id, const struct ir_frame_hdr *h,
			const uint8_t *payload);
	/* A RESULT or ERROR frame (entry role), already ACKed. */
	void (*on_result)(void *arg, const struct ir_frame_hdr *h, const uint8_t *payload);
	/* An output could not be delivered (no instance left, attempts
	 * exhausted): the role fails the request with @status and @why. */
	void (*on_undelivered)(void *arg, const struct ir_node_msg *m, int status,
			       const char *why);
	void *arg;
};

/* Configuration from the environment (see README "Configuration"):
 *   IROUTE_CC ... (ccclient.h), IROUTE_TCP_ADDR, IROUTE_IPC, IROUTE_NODE,
 *   IROUTE_CAPACITY, IROUTE_TRANSPORT, IROUTE_ACK_TIMEOUT_MS,
 *   IROUTE_MAX_PAYLOAD. */
struct ir_node_cfg {
	bool entry;
	const char *function;  /* NULL for an entry */
	char tcp_addr[160];    /* listen + advertise */
	bool ipc;	       /* offer shared memory */
	char node[80];	       /* "" = the boot id */
	char http_addr[160];   /* advertised for the coordinator's probe */
	char transport[8];     /* "", "auto", "ipc", "tcp" */
	uint32_t capacity;     /* handler workers (registered capacity) */
	uint32_t ack_timeout_ms;
	uint32_t max_payload;
};

/* Read the configuration; @http_port is the watchdog's `port`.  0, or
 * -EINVAL with a message naming the variable. */
int ir_node_cfg_env(struct ir_node_cfg *cfg, bool entry, unsigned http_port, char *err,
		    size_t errlen);

/* Listen, register with the coordinator, start the I/O thread.  0 or
 * -errno with a message. */
int ir_node_start(struct ir_node **n, const struct ir_node_cfg *cfg, const struct ir_node_ops *ops,
		  char *err, size_t errlen);

/* Leave the routing tables (SIGTERM): the coordinator drops this instance
 * from the next epoch; frames still arriving are served. */
void ir_node_leave(struct ir_node *n);

/* Whether the outbox is empty (drain: every output was ACKed). Loop thread. */
bool ir_node_idle(struct ir_node *n);

/* Stop the I/O thread and free everything. */
void ir_node_stop(struct ir_node *n);

/* Run @cb(@arg) on the I/O thread.  Any thread. 0 or -errno. */
int ir_node_post(struct ir_node *n, void (*cb)(struct ir_loop *, void *), void *arg);

struct ir_loop *ir_node_loop(struct ir_node *n);
/* The slice of a function instance (NULL for an entry); valid until
 * ir_node_stop(). */
const struct ir_node_slice *ir_node_slice(const struct ir_node *n);
struct ir_ccc *ir_node_ccc(struct ir_node *n);
/* This instance's id ("" before registration) and its numeric form (the
 * 64-bit hex after the last '-': frames' origin for an entry). */
const char *ir_node_id(struct ir_node *n);
uint64_t ir_node_origin(struct ir_node *n);
/* The newest table's epoch. */
uint64_t ir_node_epoch(struct ir_node *n);

/* Loop thread only, from here on. */

/* A payload buffer of @len bytes for ir_node_send(), with room in front
 * for what the outbox keeps with it; NULL when out of memory.  Free one
 * that was not sent with ir_node_free_buf(). */
void *ir_node_alloc(size_t len);
void ir_node_free_buf(void *p);

/* Send @m with @payload (@len bytes, from ir_node_alloc(), taken in every case) one
 * hop: DATA to an instance of function m->fn chosen by the table of
 * m->epoch (rendezvous for a join, same-node preference + two choices
 * otherwise); RESULT/ERROR to the entry m->origin.  The payload is kept
 * until ACKed.  0, or -errno with @why (no instance, outbox full,
 * oversized): nothing was sent and the caller fails the request. */
int ir_node_send(struct ir_node *n, const struct ir_node_msg *m, void *payload, size_t len,
		 char *why, size_t cap);

/* ACK frame @h (received on @conn_id) as function @fn: a no-op when that
 * connection is gone (its sender will resend and get the duplicate ACK). */
void ir_node_ack(struct ir_node *n, uint64_t conn_id, const struct ir_frame_hdr *h, uint16_t fn);

/* Whether this instance owns request @req of its own join function
 * (index @fn, name @name) under the table of @epoch, with this node's
 * suspects excluded. */
bool ir_node_owns(struct ir_node *n, const char *name, uint64_t req, uint32_t epoch);

/* CLOCK_MONOTONIC ns for a CLOCK_REALTIME deadline (0 stays 0). */
uint64_t ir_node_mono(uint64_t deadline_rt);

/* The error body of a failed request, as the entry answers it and as an
 * ERROR frame carries it: {"function":@fn,"status":@status,"error":@msg}
 * (no "function" when @fn is NULL).  malloc()ed; NULL when out of memory. */
char *ir_node_error_json(const char *fn, int status, const char *msg);

/* The numeric id after the last '-' of an instance id (0 when none). */
uint64_t ir_node_id_num(const char *id);

#endif
