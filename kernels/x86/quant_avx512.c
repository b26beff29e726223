// kernels/x86/quant_avx512.c — placeholder: forwards to the reference until the SIMD kernel lands.
#include "kernels/quant.h"

void e2h_qmatmul_avx512(e2h_pool *pool, float *y, int64_t ldy, const float *x, const void *w,
                      int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch) {
    e2h_qmatmul_ref(pool, y, ldy, x, w, wtype, n_tok, n_in, n_out, scratch);
}
