/* frame.h - the iroute wire frame: one fixed 64-byte header + payload.
 *
 * Every message between two iroute processes, over any transport, is one
 * frame.  The header is fixed-size, little-endian on the wire and versioned,
 * so that a decoder can validate it completely before it looks at a single
 * payload byte.  A CRC32C over the header catches a corrupted or misaligned
 * stream (TCP) or a torn record (shared memory); payload integrity is left
 * to the transport (TCP's checksum, or memory that never leaves the host),
 * because checksumming megabyte payloads would cost more than moving them.
 *
 * Wire layout (offsets in bytes, all integers little-endian):
 *
 *    0 u16 magic        0x5249 ("IR" on the wire)
 *    2 u8  version      IR_FRAME_VERSION
 *    3 u8  type         enum ir_frame_type
 *    4 u16 flags        IR_FRAME_F_*
 *    6 u16 branch       branch index at a join (predecessor order)
 *    8 u32 hdr_crc      CRC32C of the 64 header bytes with this field zero
 *   12 u32 payload_len  bytes following the header
 *   16 u64 request_id
 *   24 u64 origin       instance id of the entry that waits for the result
 *   32 u32 epoch        routing-table epoch the request runs under
 *   36 u16 src_fn       function index (in the workflow) of the sender
 *   38 u16 attempt      resend count of this output (0 = first send)
 *   40 u64 deadline_ns  absolute deadline, CLOCK_REALTIME ns (0 = none)
 *   48 u64 start_ns     trace: CLOCK_REALTIME ns the request entered iroute
 *   56 u64 sent_ns      trace: CLOCK_REALTIME ns this frame was sent
 *
 * Decoding never trusts a length: payload_len is checked against the
 * receiver's configured maximum before any buffer is sized from it.
 */
#ifndef IROUTE_FRAME_H
#define IROUTE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define IR_FRAME_MAGIC 0x5249u
#define IR_FRAME_VERSION 1u
#define IR_FRAME_HDR_SIZE 64u
/* The largest payload a frame can describe; receivers set a lower cap. */
#define IR_FRAME_MAX_PAYLOAD 0xffffffffu

enum ir_frame_type {
	IR_FRAME_HELLO = 1,  /* handshake: nonce + identity */
	IR_FRAME_AUTH = 2,   /* handshake: HMAC proof */
	IR_FRAME_DATA = 3,   /* a function's output on its way to the next */
	IR_FRAME_ACK = 4,    /* receiver took responsibility for a DATA */
	IR_FRAME_RESULT = 5, /* a sink's output on its way to the entry */
	IR_FRAME_ERROR = 6,  /* a request failed; payload is the message */
	IR_FRAME_PING = 7,   /* liveness; echoed as PONG */
	IR_FRAME_PONG = 8,
	IR_FRAME_CREDIT = 9, /* flow control: receiver grants more sends */
	IR_FRAME_TYPE_MAX = IR_FRAME_CREDIT,
};

#define IR_FRAME_F_LAST 0x0001u /* last piece of a streamed output */
#define IR_FRAME_F_MORE 0x0002u /* more pieces of this output follow */
/* DATA for a join, sent to an instance that is not the join's owner by
 * the table alone (the owner is suspect here) or sent again: the
 * receiver keeps it instead of forwarding it to the owner. */
#define IR_FRAME_F_FWD 0x0004u
#define IR_FRAME_F_ALL 0x0007u	/* every flag this version knows */

/* The decoded header, in host byte order. */
struct ir_frame_hdr {
	uint8_t version;
	uint8_t type;
	uint16_t flags;
	uint16_t branch;
	uint32_t payload_len;
	uint64_t request_id;
	uint64_t origin;
	uint32_t epoch;
	uint16_t src_fn;
	uint16_t attempt;
	uint64_t deadline_ns;
	uint64_t start_ns;
	uint64_t sent_ns;
};

/* Why a header was rejected; ir_frame_decode() returns the negative. */
enum ir_frame_err {
	IR_FRAME_OK = 0,
	IR_FRAME_ESHORT = 1,   /* fewer than IR_FRAME_HDR_SIZE bytes */
	IR_FRAME_EMAGIC = 2,   /* not an iroute frame */
	IR_FRAME_EVERSION = 3, /* a version this build does not speak */
	IR_FRAME_ECRC = 4,     /* header checksum mismatch */
	IR_FRAME_ETYPE = 5,    /* unknown frame type */
	IR_FRAME_EFLAGS = 6,   /* flag bits this version does not define */
	IR_FRAME_ETOOBIG = 7,  /* payload_len above the receiver's cap */
};

/* Fill @h with a fresh header of @type (version set, everything else 0). */
void ir_frame_init(struct ir_frame_hdr *h, enum ir_frame_type type);

/* Encode @h into exactly IR_FRAME_HDR_SIZE bytes at @out, computing the
 * CRC.  Never fails; @h is not modified. */
void ir_frame_encode(const struct ir_frame_hdr *h, uint8_t out[IR_FRAME_HDR_SIZE]);

/* Decode and validate the header in @buf (@len bytes available).
 * @max_payload is the receiver's cap on payload_len.  Returns 0 and fills
 * @h, or -enum ir_frame_err; @h is unspecified on error. */
int ir_frame_decode(const uint8_t *buf, size_t len, uint32_t max_payload, struct ir_frame_hdr *h);

/* A short lower-case reason for a decode error code (positive or negative). */
const char *ir_frame_strerror(int err);

/* Name of a frame type ("DATA"), or "?" for an unknown one. */
const char *ir_frame_type_name(unsigned type);

/* CLOCK_REALTIME now in ns (for sent_ns/start_ns/deadline_ns). */
uint64_t ir_now_realtime_ns(void);

#endif
