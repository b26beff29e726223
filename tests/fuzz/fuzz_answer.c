// tests/fuzz/fuzz_answer.c — libFuzzer target for answer extraction, keys and equality
// (engine/answer.c). The input is copied to an exact-size heap buffer so ASan flags any read past
// its end; the second half is compared with the first.
//   clang -g -O1 -fsanitize=fuzzer,address,undefined,float-cast-overflow -D_GNU_SOURCE -Iinclude \
//         tests/fuzz/fuzz_answer.c engine/answer.c -o fuzz_answer && ./fuzz_answer -max_len=4096
// Local runs (2026-12-06): 437k executions at -max_len=512 and 192k at 4096, no crash or hang after
// the fix of a __int128 overflow on long runs of fractional zeros (regression test in
// tests/test_answer.c).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "e2h.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    char out[256], k[512];
    char *h = malloc(n ? n : 1);
    if (!h) return 0;
    memcpy(h, d, n);
    e2h_answer_extract(h, n, out, sizeof out);
    e2h_answer_key(h, n, k, sizeof k);
    size_t half = n / 2;
    e2h_answer_equal(h, half, h + half, n - half);
    free(h);
    return 0;
}
