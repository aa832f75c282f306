/* fuzz.h - the libFuzzer entry point, shared by the fuzz targets and replay.c.
 *
 * Declared here once so that the targets build with -Wmissing-prototypes
 * under gcc too, and so that replay.c can drive the same function over the
 * committed corpus in ordinary (non-clang, non-libFuzzer) test runs.
 */
#ifndef IROUTE_FUZZ_H
#define IROUTE_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Run one input; returns 0, aborts on a detected bug. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
