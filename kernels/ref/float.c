// kernels/ref/float.c — scalar reference float kernels: f32/f16/bf16 rows, matmul with the
// canonical 16-lane reduction order (see kernels/float_kernels.h), rmsnorm, rope, swiglu.
// Plain C; the oracle for kernels/x86/float_*.c.
#include <math.h>
#include <string.h>

#include "../float_kernels.h"

// ---- float rows ----
static inline float load_elem(int type, const void *row, int64_t i) {
    switch (type) {
    case E2H_TYPE_F16: return kern_f16_to_f32(((const e2h_f16 *)row)[i]);
    case E2H_TYPE_BF16: return kern_bf16_to_f32(((const e2h_bf16 *)row)[i]);
    default: return ((const float *)row)[i];
    }
}

void kern_float_dequantize_row(int type, const void *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = load_elem(type, src, i);
}

void kern_float_quantize_row(int type, const float *src, void *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        if (type == E2H_TYPE_F16) ((e2h_f16 *)dst)[i] = kern_f32_to_f16(src[i]);
        else if (type == E2H_TYPE_BF16) ((e2h_bf16 *)dst)[i] = kern_f32_to_bf16(src[i]);
        else ((float *)dst)[i] = src[i];
    }
}

// ---- matmul ----
// The canonical dot product: 16 lane accumulators with fma, then halving folds.
static float dot_canonical(int wtype, const void *wrow, const float *x, int64_t n) {
    float acc[E2H_DOT_LANES] = {0};
    for (int64_t k = 0; k < n; k += E2H_DOT_LANES) {
        for (int l = 0; l < E2H_DOT_LANES; l++) {
            // lanes past n add fma(0, 0, acc), exactly like a zero-padded vector load
            float wv = k + l < n ? load_elem(wtype, wrow, k + l) : 0.0f;
            float xv = k + l < n ? x[k + l] : 0.0f;
            acc[l] = fmaf(wv, xv, acc[l]);
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
    const char *w;
    int wtype;
    int64_t n_tok, n_in, n_out;
    size_t wrow;
} matmul_ctx;

static void matmul_ref_worker(void *p, int ith, int nth) {
    const matmul_ctx *c = p;
    int64_t r0, r1;
    pool_slice(c->n_out, ith, nth, 16, &r0, &r1);
    for (int64_t t = 0; t < c->n_tok; t++)
        for (int64_t r = r0; r < r1; r++)
            c->y[t * c->ldy + r] =
                dot_canonical(c->wtype, c->w + r * c->wrow, c->x + t * c->n_in, c->n_in);
}

void kern_matmul_float_ref(e2h_pool *pool, float *y, int64_t ldy, const float *x, const void *w,
                          int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch) {
    (void)scratch;
    matmul_ctx c = {y, ldy, x, w, wtype, n_tok, n_in, n_out, kern_type_row_size(wtype, n_in)};
    pool_run(pool, matmul_ref_worker, &c);
}

// ---- rmsnorm: out = x * (1 / sqrt(mean(x^2) + eps)) * w, as HF LlamaRMSNorm ----
void kern_rmsnorm_ref(float *out, const float *x, const float *w, int64_t n, int64_t dim,
                     float eps) {
    for (int64_t t = 0; t < n; t++) {
        const float *xr = x + t * dim;
        float *o = out + t * dim;
        double ss = 0.0;
        for (int64_t i = 0; i < dim; i++) ss += (double)xr[i] * xr[i];
        float r = 1.0f / sqrtf((float)(ss / (double)dim) + eps);
        for (int64_t i = 0; i < dim; i++) o[i] = (xr[i] * r) * w[i];
    }
}

// ---- rope ----
// theta = pos * inv_freq[i] in f32 (as HF computes its cos/sin tables), then cosf/sinf.
void kern_rope_ref(float *x, const int32_t *pos, int64_t n, int n_heads, int head_dim,
                  const float *inv_freq, int interleaved) {
    const int half = head_dim / 2;
    for (int64_t t = 0; t < n; t++) {
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (t * n_heads + h) * (int64_t)head_dim;
            for (int i = 0; i < half; i++) {
                float theta = (float)pos[t] * inv_freq[i];
                float c = cosf(theta), s = sinf(theta);
                int i0 = interleaved ? 2 * i : i;
                int i1 = interleaved ? 2 * i + 1 : i + half;
                float x0 = v[i0], x1 = v[i1];
                v[i0] = x0 * c - x1 * s;
                v[i1] = x1 * c + x0 * s;
            }
        }
    }
}

// ---- swiglu: silu(g) * u = g / (1 + exp(-g)) * u ----
void kern_swiglu_ref(float *out, const float *gate, const float *up, int64_t n, int64_t dim) {
    for (int64_t i = 0; i < n * dim; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}
