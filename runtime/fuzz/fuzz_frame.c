/* fuzz_frame.c - libFuzzer target for the frame header decoder (and encoder).
 *
 * Input: one selector byte, then the bytes a receiver would see.  The
 * selector picks the receiver's payload cap, so that the ETOOBIG boundary
 * is explored too without the cap being hidden in the frame bytes
 * themselves.  Three properties are checked: a header that decodes
 * re-encodes to exactly the same 64 bytes (there is one encoding per
 * header), a decoded header obeys every documented limit, and walking the
 * input as a TCP byte stream (header, payload_len bytes, next header...)
 * never reads outside the input.  A violation abort()s.
 */
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "fuzz.h"
#include "iroute/frame.h"

static const uint32_t caps[8] = {
    0, 1, 63, 64, 4096, 1u << 20, IR_FRAME_MAX_PAYLOAD - 1, IR_FRAME_MAX_PAYLOAD,
};

/* Decode @p as one header and check every property of the result. */
static int check_one(const uint8_t *p, size_t len, uint32_t cap, struct ir_frame_hdr *h)
{
	int rc = ir_frame_decode(p, len, cap, h);
	if (rc > 0 || rc < -IR_FRAME_ETOOBIG)
		abort();
	if (len < IR_FRAME_HDR_SIZE && rc != -IR_FRAME_ESHORT)
		abort();
	if (rc != 0)
		return rc;

	if (h->version != IR_FRAME_VERSION || h->type < 1 || h->type > IR_FRAME_TYPE_MAX ||
	    (h->flags & ~IR_FRAME_F_ALL) || h->payload_len > cap)
		abort();
	uint8_t again[IR_FRAME_HDR_SIZE];
	ir_frame_encode(h, again);
	if (memcmp(again, p, IR_FRAME_HDR_SIZE) != 0)
		abort();
	/* A prefix of a valid header is never accepted. */
	struct ir_frame_hdr tmp;
	if (ir_frame_decode(p, IR_FRAME_HDR_SIZE - 1, cap, &tmp) != -IR_FRAME_ESHORT)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint32_t cap = caps[data[0] & 7];
	const uint8_t *p = data + 1;
	size_t left = size - 1;

	/* The input as a stream of frames, as a TCP receiver would see it. */
	uint32_t sum = 0;
	while (left > 0) {
		struct ir_frame_hdr h;
		if (check_one(p, left, cap, &h) != 0)
			break;
		p += IR_FRAME_HDR_SIZE;
		left -= IR_FRAME_HDR_SIZE;
		if (h.payload_len > left)
			break; /* short read: wait for more bytes */
		/* Touch every payload byte so that the sanitizer sees the reads. */
		sum = ir_crc32c(sum, p, h.payload_len);
		p += h.payload_len;
		left -= h.payload_len;
	}
	/* Keep the checksum from being optimised away. */
	volatile uint32_t sink = sum;
	(void)sink;
	return 0;
}
