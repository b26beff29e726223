// tests/r16_case.h — a random quantized matmul case for the r16 kernel tests (test_kernels_r16,
// test_kernels_amx): weights with a spread of block scales (some rows tiny, some large), their
// r16 repack, activations with outliers (so activation block scales vary too) and r16 scratch.
// The caller's generator keeps each test's own random stream.
#ifndef E2H_TESTS_R16_CASE_H
#define E2H_TESTS_R16_CASE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/quant.h"
#include "kernels/quant_r16.h"

typedef struct {
    int type;
    int64_t n_tok, n_in, n_out;
    uint8_t *w, *wp; // GGUF rows, r16 copy
    float *x;        // (n_tok, n_in)
    void *scratch;   // kern_r16_scratch_size
    void *scratch_gguf; // NULL; test_kernels_r16 sets it for the GGUF-layout kernels (freed here)
} r16_case;

static inline void *zalloc64(size_t n) {
    n = (n + 63) / 64 * 64;
    void *p = aligned_alloc(64, n ? n : 64);
    memset(p, 0, n ? n : 64);
    return p;
}

static inline void r16_case_init(r16_case *c, int type, int64_t n_tok, int64_t n_in, int64_t n_out,
                                 float (*rnd_sym)(void)) {
    c->type = type, c->n_tok = n_tok, c->n_in = n_in, c->n_out = n_out;
    const size_t rs = kern_type_row_size(type, n_in);
    c->w = zalloc64(rs * (size_t)n_out);
    float *row = malloc(sizeof(float) * (size_t)n_in);
    for (int64_t r = 0; r < n_out; r++) {
        const float scale = (r % 7 == 3) ? 1e-3f : (r % 5 == 1) ? 30.0f : 1.0f;
        for (int64_t i = 0; i < n_in; i++) row[i] = scale * rnd_sym() + (type == E2H_TYPE_Q4_1 ? 0.3f * scale : 0.0f);
        kern_quantize_row_ref(type, row, c->w + r * rs, n_in);
    }
    free(row);
    c->wp = zalloc64(kern_r16_size(type, n_in, n_out));
    kern_r16_repack(NULL, type, c->w, n_in, n_out, c->wp);
    c->x = malloc(sizeof(float) * (size_t)(n_tok * n_in));
    for (int64_t i = 0; i < n_tok * n_in; i++) c->x[i] = rnd_sym() * (i % 97 == 5 ? 50.0f : 1.0f);
    c->scratch = zalloc64((size_t)kern_r16_scratch_size(type, n_tok, n_in));
    c->scratch_gguf = NULL;
}

static inline void r16_case_free(r16_case *c) {
    free(c->w), free(c->wp), free(c->x), free(c->scratch), free(c->scratch_gguf);
}

#endif
