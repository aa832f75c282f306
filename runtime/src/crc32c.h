/* crc32c.h - CRC32C (Castagnoli), the frame header checksum.
 *
 * Castagnoli rather than the zlib polynomial because x86 computes it in one
 * instruction (SSE4.2 crc32), which keeps a 64-byte header check to a few
 * nanoseconds on every frame; other CPUs get a table-driven version.
 */
#ifndef IROUTE_CRC32C_H
#define IROUTE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue the CRC32C @crc (0 to start) over @len bytes at @buf and return
 * the finished value.  The pre/post inversion is done inside, so
 * ir_crc32c(ir_crc32c(0, a, la), b, lb) == ir_crc32c(0, a || b, la + lb) and
 * ir_crc32c(0, "123456789", 9) == 0xe3069283.  Thread-safe; picks the
 * hardware instruction on first use when the CPU has it. */
uint32_t ir_crc32c(uint32_t crc, const void *buf, size_t len);

/* The same function, always table-driven (for tests and benchmarks). */
uint32_t ir_crc32c_sw(uint32_t crc, const void *buf, size_t len);

#endif
