/* gen_corpus.c - writes the seed corpus for fuzz_frame.c (run once; output committed).
 *
 * Seeds are generated rather than hand-made with a hex editor so that each
 * one has a valid CRC exactly where intended and a name saying what it
 * exercises.  Every file is: one selector byte (the payload cap, see
 * fuzz_frame.c), then frame bytes.
 *
 *   cc -std=c11 -D_GNU_SOURCE -Iruntime/include -Iruntime/src -o /tmp/gen \
 *      runtime/fuzz/gen_corpus.c runtime/src/frame.c runtime/src/crc32c.c -pthread
 *   /tmp/gen runtime/fuzz/corpus/frame
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iroute/frame.h"

/* Selector bytes: indexes into fuzz_frame.c's caps[]. */
#define CAP_0 0
#define CAP_64 3
#define CAP_4096 4

struct seed {
	uint8_t bytes[1024];
	size_t len;
};

static const char *dir;
static int failed;

static void start(struct seed *s, uint8_t selector)
{
	s->bytes[0] = selector;
	s->len = 1;
}

static void add_frame(struct seed *s, const struct ir_frame_hdr *h, const void *payload, size_t len)
{
	if (s->len + IR_FRAME_HDR_SIZE + len > sizeof(s->bytes))
		abort();
	ir_frame_encode(h, s->bytes + s->len);
	s->len += IR_FRAME_HDR_SIZE;
	if (len)
		memcpy(s->bytes + s->len, payload, len);
	s->len += len;
}

static void save(const char *name, const struct seed *s)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(s->bytes, 1, s->len, f) != s->len || fclose(f) != 0) {
		fprintf(stderr, "gen_corpus: cannot write \"%s\": %s\n", path, strerror(errno));
		failed = 1;
	}
}

/* A plausible DATA header with every field in use. */
static void data_hdr(struct ir_frame_hdr *h, uint32_t payload_len)
{
	ir_frame_init(h, IR_FRAME_DATA);
	h->branch = 1;
	h->payload_len = payload_len;
	h->request_id = 0x1122334455667788ull;
	h->origin = 42;
	h->epoch = 7;
	h->src_fn = 3;
	h->attempt = 1;
	h->deadline_ns = 1700000005000000000ull;
	h->start_ns = 1700000000000000000ull;
	h->sent_ns = 1700000000123456789ull;
}

int main(int argc, char **argv)
{
	dir = argc > 1 ? argv[1] : "runtime/fuzz/corpus/frame";
	struct ir_frame_hdr h;
	struct seed s;
	static const char msg[] = "{\"hello\":\"world\"}";

	start(&s, CAP_4096);
	data_hdr(&h, sizeof(msg) - 1);
	add_frame(&s, &h, msg, sizeof(msg) - 1);
	save("valid_data_payload", &s);

	start(&s, CAP_4096);
	ir_frame_init(&h, IR_FRAME_HELLO);
	uint8_t hello[2 + 32 + 6] = {'C', 6};
	for (int i = 0; i < 32; i++)
		hello[2 + i] = (uint8_t)(i * 37 + 11);
	memcpy(hello + 34, "node-a", 6);
	h.payload_len = sizeof(hello);
	add_frame(&s, &h, hello, sizeof(hello));
	save("valid_hello", &s);

	start(&s, CAP_4096);
	ir_frame_init(&h, IR_FRAME_AUTH);
	uint8_t mac[32];
	memset(mac, 0x5a, sizeof(mac));
	h.payload_len = sizeof(mac);
	add_frame(&s, &h, mac, sizeof(mac));
	save("valid_auth", &s);

	start(&s, CAP_0);
	ir_frame_init(&h, IR_FRAME_PING);
	h.sent_ns = 1700000000000000000ull;
	add_frame(&s, &h, NULL, 0);
	save("valid_ping_empty_payload_cap0", &s);

	start(&s, CAP_4096);
	data_hdr(&h, 5);
	h.flags = IR_FRAME_F_MORE;
	add_frame(&s, &h, "part1", 5);
	h.flags = IR_FRAME_F_LAST;
	h.request_id++;
	add_frame(&s, &h, "part2", 5);
	save("two_data_frames_back_to_back", &s);

	start(&s, CAP_4096);
	ir_frame_init(&h, IR_FRAME_HELLO);
	h.payload_len = sizeof(hello);
	add_frame(&s, &h, hello, sizeof(hello));
	ir_frame_init(&h, IR_FRAME_AUTH);
	h.payload_len = sizeof(mac);
	add_frame(&s, &h, mac, sizeof(mac));
	data_hdr(&h, 0);
	add_frame(&s, &h, NULL, 0);
	ir_frame_init(&h, IR_FRAME_ACK);
	h.request_id = 0x1122334455667788ull;
	add_frame(&s, &h, NULL, 0);
	save("handshake_then_data_ack_stream", &s);

	start(&s, CAP_4096);
	ir_frame_init(&h, IR_FRAME_RESULT);
	h.request_id = 9;
	h.payload_len = 3;
	add_frame(&s, &h, "ok\n", 3);
	ir_frame_init(&h, IR_FRAME_ERROR);
	h.request_id = 10;
	h.payload_len = 7;
	add_frame(&s, &h, "timeout", 7);
	ir_frame_init(&h, IR_FRAME_CREDIT);
	h.payload_len = 0;
	add_frame(&s, &h, NULL, 0);
	ir_frame_init(&h, IR_FRAME_PONG);
	add_frame(&s, &h, NULL, 0);
	save("result_error_credit_pong_stream", &s);

	start(&s, 7); /* cap IR_FRAME_MAX_PAYLOAD */
	ir_frame_init(&h, IR_FRAME_DATA);
	h.flags = IR_FRAME_F_ALL;
	h.branch = UINT16_MAX;
	h.request_id = h.origin = UINT64_MAX;
	h.epoch = UINT32_MAX;
	h.src_fn = h.attempt = UINT16_MAX;
	h.deadline_ns = h.start_ns = h.sent_ns = UINT64_MAX;
	h.payload_len = 0;
	add_frame(&s, &h, NULL, 0);
	save("valid_extreme_fields", &s);

	start(&s, CAP_4096);
	data_hdr(&h, 100);
	add_frame(&s, &h, "only ten b", 10);
	save("truncated_payload", &s);

	start(&s, CAP_4096);
	data_hdr(&h, 0);
	add_frame(&s, &h, NULL, 0);
	s.len = 1 + 40;
	save("truncated_header", &s);

	start(&s, CAP_4096);
	data_hdr(&h, 4);
	add_frame(&s, &h, "abcd", 4);
	add_frame(&s, &h, "abcd", 4);
	s.len -= 30; /* second header cut short */
	save("frame_then_truncated_header", &s);

	start(&s, CAP_4096);
	data_hdr(&h, 0);
	add_frame(&s, &h, NULL, 0);
	s.bytes[1] ^= 0xff;
	save("err_magic", &s);

	start(&s, CAP_4096);
	data_hdr(&h, 0);
	h.version = 2;
	add_frame(&s, &h, NULL, 0);
	save("err_version_2", &s);

	start(&s, CAP_4096);
	data_hdr(&h, 0);
	add_frame(&s, &h, NULL, 0);
	s.bytes[1 + 20] ^= 0x10; /* inside request_id */
	save("err_crc_bit_flip", &s);

	start(&s, CAP_4096);
	data_hdr(&h, 0);
	h.type = 0;
	add_frame(&s, &h, NULL, 0);
	save("err_type_0", &s);

	start(&s, CAP_4096);
	data_hdr(&h, 0);
	h.type = 10;
	add_frame(&s, &h, NULL, 0);
	save("err_type_10", &s);

	start(&s, CAP_4096);
	data_hdr(&h, 0);
	h.flags = 0x0004;
	add_frame(&s, &h, NULL, 0);
	save("err_flags_unknown_bit", &s);

	start(&s, CAP_64);
	data_hdr(&h, 65);
	add_frame(&s, &h, NULL, 0);
	save("err_too_big_cap64", &s);

	start(&s, CAP_4096);
	data_hdr(&h, 3);
	add_frame(&s, &h, "abc", 3);
	data_hdr(&h, 0);
	add_frame(&s, &h, NULL, 0);
	s.bytes[1 + 64 + 3 + 9] ^= 0x01; /* second header's checksum */
	save("frame_then_err_crc", &s);

	start(&s, CAP_4096);
	save("selector_only", &s);

	s.len = 0;
	save("empty", &s);

	return failed ? 1 : 0;
}
