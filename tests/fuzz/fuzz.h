/* fuzz.h - what the libFuzzer targets of tests/fuzz share.
 *
 * Each target defines LLVMFuzzerTestOneInput() for one parser of untrusted
 * input. Beyond "no crash, leak or UB" (ASan+UBSan) a target checks the
 * parser's contract with FUZZ_CHECK: a broken invariant aborts, which
 * libFuzzer reports as a crash with the input saved.
 */
#ifndef S3CFS_FUZZ_H
#define S3CFS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
