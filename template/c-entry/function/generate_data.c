/* generate_data.c - the c-entry sample: the request bodies of POST /bench.
 *
 * The entry itself needs no code: POST / takes the request, runs the
 * workflow and answers with the sink's output.  Its load generator,
 * POST /bench?n=N&concurrency=C, sends generate_data(seq, ...) as the body
 * of request seq = 0, 1, ... N-1 (<iroute/handler.h>); each body must
 * depend on seq alone, so two runs send the same requests.  This one
 * writes "request <seq>: " and 48 lowercase letters drawn from seq.
 *
 * No generator at all makes /bench repeat the body POSTed to it; as
 * faas-cli lays the template's function/ folder under yours, that takes a
 * generate_data.c of your own that defines nothing. */
#include <inttypes.h>
#include <stdio.h>

#include <iroute/handler.h>

int generate_data(uint64_t seq, struct ir_out *out);

int generate_data(uint64_t seq, struct ir_out *out)
{
	char body[96];
	int n = snprintf(body, sizeof(body), "request %" PRIu64 ": ", seq);
	uint64_t x = seq + 1;
	for (int i = 0; i < 48; i++) {
		/* xorshift64: a fixed sequence of letters per seq */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		body[n++] = (char)('a' + x % 26);
	}
	return ir_out_write(out, body, (size_t)n);
}
