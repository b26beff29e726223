// tests/fuzz/fuzz_answer.c — answer extraction, canonical keys and equivalence on arbitrary
// bytes: nothing may read past the end of a string (the input is not NUL-terminated: it is
// copied to an exact-size buffer so ASan sees any over-read).
// Earlier standalone runs (2026-12-06): 437k executions at -max_len=512 and 192k at 4096 found
// a __int128 overflow on long runs of fractional zeros (fixed; regression in tests/test_answer.c).
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t k = fz_split(data, size);
    size_t off = k + 4 <= size ? k + 4 : size;
    char *a = malloc(k ? k : 1), *b = malloc(size - off ? size - off : 1);
    if (!a || !b) { free(a); free(b); return 0; }
    memcpy(a, data, k);
    memcpy(b, data + off, size - off);
    char out[512], key[512];
    e2h_answer_extract(a, k, out, sizeof out);
    e2h_answer_key(a, k, key, sizeof key);
    e2h_answer_key(a, k, key, 8); // a key that does not fit
    e2h_answer_equal(a, k, b, size - off);
    e2h_answer_equal(a, k, a, k);
    free(a);
    free(b);
    return 0;
}
