// kernels/ref/bf16dot.c — scalar reference of the bf16 x bf16 dot-product matmul (arithmetic
// defined in kernels/float_kernels.h): activations rounded to bf16, pairs of exact products
// added to 16 f32 lanes in vdpbf16ps' documented order, canonical fold. Plain C; the oracle
// for kernels/x86/bf16dot_avx512.c.
#include "../float_kernels.h"

int64_t kern_bf16dot_scratch_size(int64_t n_tok, int64_t n_in) {
    const int64_t pad = (n_in + E2H_BF16DOT_PAD - 1) / E2H_BF16DOT_PAD * E2H_BF16DOT_PAD;
    return n_tok * pad * (int64_t)sizeof(e2h_bf16) + 64;
}

// x rounded to bf16 and back: the value the dot product multiplies.
static float bf16_round(float x) { return kern_bf16_to_f32(kern_f32_to_bf16(x)); }

static float dot_bf16(const e2h_bf16 *w, const float *x, int64_t n) {
    float acc[E2H_DOT_LANES] = {0};
    for (int64_t k0 = 0; k0 < n; k0 += 2 * E2H_DOT_LANES) {
        for (int l = 0; l < E2H_DOT_LANES; l++) {
            const int64_t k1 = k0 + 2 * l + 1, k = k0 + 2 * l;
            const float p1 = k1 < n ? kern_bf16_to_f32(w[k1]) * bf16_round(x[k1]) : 0.0f * 0.0f;
            const float p0 = k < n ? kern_bf16_to_f32(w[k]) * bf16_round(x[k]) : 0.0f * 0.0f;
            acc[l] = acc[l] + p1; // the odd element first, as vdpbf16ps is documented
            acc[l] = acc[l] + p0;
        }
    }
    for (int half = E2H_DOT_LANES / 2; half >= 1; half /= 2)
        for (int i = 0; i < half; i++) acc[i] = acc[i] + acc[i + half];
    return acc[0];
}

typedef struct {
    float *y;
    int64_t ldy;
    const float *x;
    const e2h_bf16 *w;
    int64_t n_tok, n_in, n_out;
} bf16dot_ctx;

static void bf16dot_worker(void *p, int ith, int nth) {
    const bf16dot_ctx *c = p;
    int64_t r0, r1;
    pool_slice(c->n_out, ith, nth, 16, &r0, &r1);
    for (int64_t t = 0; t < c->n_tok; t++)
        for (int64_t r = r0; r < r1; r++)
            c->y[t * c->ldy + r] = dot_bf16(c->w + r * c->n_in, c->x + t * c->n_in, c->n_in);
}

void kern_matmul_bf16dot_ref(e2h_pool *pool, float *y, int64_t ldy, const float *x,
                             const void *w, int64_t n_tok, int64_t n_in, int64_t n_out,
                             void *scratch) {
    (void)scratch; // rounds on the fly
    bf16dot_ctx c = {y, ldy, x, w, n_tok, n_in, n_out};
    pool_run(pool, bf16dot_worker, &c);
}
