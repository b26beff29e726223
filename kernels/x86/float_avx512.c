// kernels/x86/float_avx512.c — AVX-512 float kernels: matmul (f32/f16/bf16 weights, decode
// and tiled prefill share one micro-kernel), rmsnorm, rope, swiglu, attention chunk kernel.
//
// Matmul reduction order is the canonical one of kernels/float_kernels.h: one 16-lane
// accumulator per (row, token), fma over k in steps of 16 (masked zero tail), then halving
// folds. A tile of up to 4 rows x 6 tokens keeps 24 accumulators in registers; which tile an
// element lands in changes nothing about how it is summed, so results are bit-identical for
// any n_tok / thread count, and equal to the ref and AVX2 kernels.
#include <immintrin.h>
#include <math.h>

#include "../float_kernels.h"

#define MR 4 // rows per micro-tile
#define NR 6 // tokens per micro-tile

// ---- loads: 16 weights of type wtype converted to f32 ----
static inline __attribute__((always_inline)) __m512 ld_w(const char *p, const int wtype) {
    if (wtype == E2H_TYPE_F16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
    if (wtype == E2H_TYPE_BF16)
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
    return _mm512_loadu_ps((const float *)p);
}

static inline __attribute__((always_inline)) __m512 ld_w_mask(const char *p, const int wtype,
                                                               __mmask16 m) {
    if (wtype == E2H_TYPE_F16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
    if (wtype == E2H_TYPE_BF16)
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
    return _mm512_maskz_loadu_ps(m, p);
}

// Canonical fold: s8[i] = a[i] + a[i+8], s4 = s8[i] + s8[i+4], s2 = s4[i] + s4[i+2], s2[0]+s2[1].
static inline float hsum16(__m512 a) {
    __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

// hsum16 of four vectors at once, with exactly the same pairings (IEEE addition is
// commutative, so only which lanes are paired matters): result lane k = hsum16(k-th input).
static inline __m128 hsum16x4(__m512 a, __m512 b, __m512 c, __m512 d) {
    // 16 -> 8: [a.s8 | b.s8], [c.s8 | d.s8]
    __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
    __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
    // 8 -> 4: 128-bit quarter k holds s4 of input k
    __m512 s4 = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD));
    // 4 -> 2 -> 1 inside each quarter
    __m512 s2 = _mm512_add_ps(s4, _mm512_permute_ps(s4, 0x4E));
    __m512 s1 = _mm512_add_ps(s2, _mm512_permute_ps(s2, 0xB1));
    return _mm512_castps512_ps128(_mm512_maskz_compress_ps(0x1111, s1));
}

static inline __mmask16 tail_mask(int64_t n) { return (__mmask16)((1u << n) - 1); }

// ---- matmul micro-tile: y[t][r] for R rows x T tokens (R, T, wtype compile-time) ----
static inline __attribute__((always_inline)) void mm_tile(const int R, const int T, const int wtype,
                                                          const char *w, size_t wrow,
                                                          const float *x, int64_t ldx,
                                                          int64_t n_in, float *y, int64_t ldy) {
    const int esz = wtype == E2H_TYPE_F32 ? 4 : 2;
    __m512 acc[MR][NR];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= n_in; k += 16) {
        __m512 wv[MR];
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) wv[r] = ld_w(w + r * wrow + k * esz, wtype);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            __m512 xv = _mm512_loadu_ps(x + t * ldx + k);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
    if (k < n_in) {
        const __mmask16 m = tail_mask(n_in - k);
        __m512 wv[MR];
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) wv[r] = ld_w_mask(w + r * wrow + k * esz, wtype, m);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, x + t * ldx + k);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
    if (R == 4) { // four rows of one token folded together: y[t][0..3] in one store
#pragma GCC unroll 8
        for (int t = 0; t < T; t++)
            _mm_storeu_ps(y + t * ldy, hsum16x4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]));
        return;
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) y[t * ldy + r] = hsum16(acc[r][t]);
}

#define MM_ARGS w, wrow, x, ldx, n_in, y, ldy
#define MM_CASE(R, T, WT) \
    case (R) * 8 + (T): mm_tile(R, T, WT, MM_ARGS); break;
#define MM_ROW(R, WT) \
    MM_CASE(R, 1, WT) MM_CASE(R, 2, WT) MM_CASE(R, 3, WT) MM_CASE(R, 4, WT) MM_CASE(R, 5, WT) \
    MM_CASE(R, 6, WT)
#define MM_ALL(WT) MM_ROW(1, WT) MM_ROW(2, WT) MM_ROW(3, WT) MM_ROW(4, WT)

#define MM_TILE_FN(name, WT)                                                                 \
    static void name(int R, int T, const char *w, size_t wrow, const float *x, int64_t ldx,  \
                     int64_t n_in, float *y, int64_t ldy) {                                  \
        switch (R * 8 + T) { MM_ALL(WT) default: break; }                                    \
    }
MM_TILE_FN(tile_f32, E2H_TYPE_F32)
MM_TILE_FN(tile_f16, E2H_TYPE_F16)
MM_TILE_FN(tile_bf16, E2H_TYPE_BF16)

typedef void (*tile_fn)(int R, int T, const char *w, size_t wrow, const float *x, int64_t ldx,
                        int64_t n_in, float *y, int64_t ldy);

typedef struct {
    float *y;
    int64_t ldy;
    const float *x;
    const char *w;
    int64_t n_tok, n_in, n_out;
    size_t wrow;
    tile_fn tile;
} mm_ctx;

// Cache blocking (changes only the order tiles are visited, never how an element is summed).
// Either (a) a block of tokens of x stays in L2 while every W row of the thread's slice
// streams past it (W re-read once per token block), or (b) a block of W rows stays in L2
// while all tokens stream past (x re-read once per row block). Pick the lower traffic;
// operands larger than ~L3 count double (DRAM).
#define MM_L2_BUDGET (512 * 1024)
#define MM_L3_BYTES (16ll * 1024 * 1024)

static int64_t mm_block(int64_t row_bytes, int64_t unit) {
    int64_t b = MM_L2_BUDGET / (row_bytes + 1) / unit * unit;
    return b < unit ? unit : b;
}

static void mm_tiles(const mm_ctx *c, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
    for (int64_t r = r0; r < r1; r += MR) {
        const int R = r1 - r < MR ? (int)(r1 - r) : MR;
        for (int64_t t = t0; t < t1; t += NR) {
            const int T = t1 - t < NR ? (int)(t1 - t) : NR;
            c->tile(R, T, c->w + r * c->wrow, c->wrow, c->x + t * c->n_in, c->n_in, c->n_in,
                    c->y + t * c->ldy + r, c->ldy);
        }
    }
}

static void mm_worker(void *p, int ith, int nth) {
    const mm_ctx *c = p;
    int64_t r0, r1;
    e2h_pool_slice(c->n_out, ith, nth, 16, &r0, &r1);
    const int64_t tb = mm_block(c->n_in * 4, NR), rb = mm_block((int64_t)c->wrow, MR);
    const int64_t w_bytes = (r1 - r0) * (int64_t)c->wrow, x_bytes = c->n_tok * c->n_in * 4;
    const int64_t cost_a = (c->n_tok + tb - 1) / tb * w_bytes * (w_bytes > MM_L3_BYTES ? 2 : 1);
    const int64_t cost_b = (r1 - r0 + rb - 1) / rb * x_bytes * (x_bytes > MM_L3_BYTES ? 2 : 1);
    if (cost_a <= cost_b) {
        for (int64_t t0 = 0; t0 < c->n_tok; t0 += tb)
            mm_tiles(c, r0, r1, t0, t0 + tb < c->n_tok ? t0 + tb : c->n_tok);
    } else {
        for (int64_t rr = r0; rr < r1; rr += rb)
            mm_tiles(c, rr, rr + rb < r1 ? rr + rb : r1, 0, c->n_tok);
    }
}

void e2h_matmul_float_avx512(e2h_pool *pool, float *y, int64_t ldy, const float *x,
                             const void *w, int wtype, int64_t n_tok, int64_t n_in,
                             int64_t n_out, void *scratch) {
    (void)scratch;
    tile_fn tile = wtype == E2H_TYPE_F16 ? tile_f16 : wtype == E2H_TYPE_BF16 ? tile_bf16 : tile_f32;
    mm_ctx c = {y, ldy, x, w, n_tok, n_in, n_out, e2h_type_row_size(wtype, n_in), tile};
    e2h_pool_run(pool, mm_worker, &c);
}

// ---- exp: Cephes-style range reduction + degree-5 polynomial, ~1 ulp; 0 below -87.3 ----
static inline __m512 exp512(__m512 x) {
    const __mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.33654f), _CMP_LT_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.33654f)), _mm512_set1_ps(88.37626f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500E-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    __m512 res = _mm512_mul_ps(p, _mm512_castsi512_ps(e));
    return _mm512_mask_blend_ps(tiny, res, _mm512_setzero_ps());
}

// ---- rmsnorm ----
void e2h_rmsnorm_avx512(float *out, const float *x, const float *w, int64_t n, int64_t dim,
                        float eps) {
    for (int64_t t = 0; t < n; t++) {
        const float *xr = x + t * dim;
        float *o = out + t * dim;
        __m512 ss = _mm512_setzero_ps();
        int64_t i = 0;
        for (; i + 16 <= dim; i += 16) {
            __m512 v = _mm512_loadu_ps(xr + i);
            ss = _mm512_fmadd_ps(v, v, ss);
        }
        if (i < dim) {
            __m512 v = _mm512_maskz_loadu_ps(tail_mask(dim - i), xr + i);
            ss = _mm512_fmadd_ps(v, v, ss);
        }
        const __m512 r = _mm512_set1_ps(1.0f / sqrtf(hsum16(ss) / (float)dim + eps));
        for (i = 0; i + 16 <= dim; i += 16)
            _mm512_storeu_ps(o + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(xr + i), r),
                                                  _mm512_loadu_ps(w + i)));
        if (i < dim) {
            const __mmask16 m = tail_mask(dim - i);
            __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, xr + i), r),
                                     _mm512_maskz_loadu_ps(m, w + i));
            _mm512_mask_storeu_ps(o + i, m, v);
        }
    }
}

// ---- rope: cos/sin per (token, pair) with libm (same bits as ref), rotation vectorized ----
#define ROPE_MAX_HALF 512
void e2h_rope_avx512(float *x, const int32_t *pos, int64_t n, int n_heads, int head_dim,
                     const float *inv_freq, int interleaved) {
    const int half = head_dim / 2;
    if (half > ROPE_MAX_HALF) {
        e2h_rope_ref(x, pos, n, n_heads, head_dim, inv_freq, interleaved);
        return;
    }
    float cs[2 * ROPE_MAX_HALF], sn[2 * ROPE_MAX_HALF];
    for (int64_t t = 0; t < n; t++) {
        for (int i = 0; i < half; i++) {
            float theta = (float)pos[t] * inv_freq[i];
            float c = cosf(theta), s = sinf(theta);
            if (interleaved) { // pair (2i, 2i+1): out = x * c + swap(x) * (-s, +s)
                cs[2 * i] = cs[2 * i + 1] = c;
                sn[2 * i] = -s;
                sn[2 * i + 1] = s;
            } else {
                cs[i] = c;
                sn[i] = s;
            }
        }
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (t * n_heads + h) * (int64_t)head_dim;
            if (interleaved) {
                for (int i = 0; i < 2 * half; i += 16) {
                    const __mmask16 m = 2 * half - i >= 16 ? 0xffff : tail_mask(2 * half - i);
                    __m512 xv = _mm512_maskz_loadu_ps(m, v + i);
                    __m512 sw = _mm512_permute_ps(xv, 0xB1); // swap neighbours
                    __m512 o = _mm512_add_ps(_mm512_mul_ps(xv, _mm512_maskz_loadu_ps(m, cs + i)),
                                             _mm512_mul_ps(sw, _mm512_maskz_loadu_ps(m, sn + i)));
                    _mm512_mask_storeu_ps(v + i, m, o);
                }
            } else {
                for (int i = 0; i < half; i += 16) {
                    const __mmask16 m = half - i >= 16 ? 0xffff : tail_mask(half - i);
                    __m512 x0 = _mm512_maskz_loadu_ps(m, v + i);
                    __m512 x1 = _mm512_maskz_loadu_ps(m, v + half + i);
                    __m512 c = _mm512_maskz_loadu_ps(m, cs + i);
                    __m512 s = _mm512_maskz_loadu_ps(m, sn + i);
                    _mm512_mask_storeu_ps(v + i, m,
                                          _mm512_sub_ps(_mm512_mul_ps(x0, c), _mm512_mul_ps(x1, s)));
                    _mm512_mask_storeu_ps(v + half + i, m,
                                          _mm512_add_ps(_mm512_mul_ps(x1, c), _mm512_mul_ps(x0, s)));
                }
            }
        }
    }
}

// ---- swiglu ----
static inline __m512 silu_mul(__m512 g, __m512 u) {
    __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), g));
    return _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), u);
}

void e2h_swiglu_avx512(float *out, const float *gate, const float *up, int64_t n, int64_t dim) {
    const int64_t total = n * dim;
    int64_t i = 0;
    for (; i + 16 <= total; i += 16)
        _mm512_storeu_ps(out + i, silu_mul(_mm512_loadu_ps(gate + i), _mm512_loadu_ps(up + i)));
    if (i < total) {
        const __mmask16 m = tail_mask(total - i);
        _mm512_mask_storeu_ps(out + i, m,
                              silu_mul(_mm512_maskz_loadu_ps(m, gate + i), _mm512_maskz_loadu_ps(m, up + i)));
    }
}

// ---- attention chunk kernel (see e2h_attn_chunk_fn) ----
static inline __m512 ld_kv(const void *base, int kv_type, int64_t i, __mmask16 m) {
    if (kv_type == E2H_TYPE_F16)
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const e2h_f16 *)base + i));
    return _mm512_maskz_loadu_ps(m, (const float *)base + i);
}

static float attn_dot(const float *q, const void *k, int kv_type, int64_t k0, int hd) {
    __m512 a = _mm512_setzero_ps();
    for (int d = 0; d < hd; d += 16) {
        const __mmask16 m = hd - d >= 16 ? 0xffff : tail_mask(hd - d);
        a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + d), ld_kv(k, kv_type, k0 + d, m), a);
    }
    return hsum16(a);
}

void e2h_attn_chunk_avx512(const float *q, const int64_t *r_off, const int *n_valid,
                           int n_rows, const void *k, const void *v, int kv_type, int head_dim,
                           float scale, float *m, float *l, float *acc, float *scores) {
    const int hd = head_dim;
    for (int r = 0; r < n_rows; r++) {
        const int nv = n_valid[r];
        m[r] = -INFINITY;
        l[r] = 0.0f;
        if (nv == 0) continue;
        const float *qr = q + r_off[r];
        int j = 0;
        for (; j + 4 <= nv; j += 4) { // four slots per pass, one fold for all four
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int d = 0; d < hd; d += 16) {
                const __mmask16 md = hd - d >= 16 ? 0xffff : tail_mask(hd - d);
                const __m512 qv = _mm512_maskz_loadu_ps(md, qr + d);
                a0 = _mm512_fmadd_ps(qv, ld_kv(k, kv_type, (int64_t)j * hd + d, md), a0);
                a1 = _mm512_fmadd_ps(qv, ld_kv(k, kv_type, (int64_t)(j + 1) * hd + d, md), a1);
                a2 = _mm512_fmadd_ps(qv, ld_kv(k, kv_type, (int64_t)(j + 2) * hd + d, md), a2);
                a3 = _mm512_fmadd_ps(qv, ld_kv(k, kv_type, (int64_t)(j + 3) * hd + d, md), a3);
            }
            _mm_storeu_ps(scores + j, _mm_mul_ps(hsum16x4(a0, a1, a2, a3), _mm_set1_ps(scale)));
        }
        for (; j < nv; j++) scores[j] = attn_dot(qr, k, kv_type, (int64_t)j * hd, hd) * scale;
        __m512 mx = _mm512_set1_ps(-INFINITY);
        for (int j = 0; j < nv; j += 16) {
            const __mmask16 mk = nv - j >= 16 ? 0xffff : tail_mask(nv - j);
            mx = _mm512_mask_max_ps(mx, mk, mx, _mm512_maskz_loadu_ps(mk, scores + j));
        }
        const float mxs = _mm512_reduce_max_ps(mx);
        __m512 sum = _mm512_setzero_ps();
        for (int j = 0; j < nv; j += 16) {
            const __mmask16 mk = nv - j >= 16 ? 0xffff : tail_mask(nv - j);
            __m512 p = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, scores + j), _mm512_set1_ps(mxs)));
            p = _mm512_maskz_mov_ps(mk, p);
            _mm512_mask_storeu_ps(scores + j, mk, p);
            sum = _mm512_add_ps(sum, p);
        }
        m[r] = mxs;
        l[r] = hsum16(sum);
        float *a = acc + (int64_t)r * hd;
        // acc[d] = sum_j p_j v_j[d] in slot order; 4 vectors of d at a time = 4 FMA chains
        for (int d0 = 0; d0 < hd; d0 += 64) {
            __m512 av[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                            _mm512_setzero_ps()};
            __mmask16 md[4];
            for (int u = 0; u < 4; u++) {
                const int d = d0 + 16 * u;
                md[u] = d >= hd ? 0 : hd - d >= 16 ? 0xffff : tail_mask(hd - d);
            }
            for (int jj = 0; jj < nv; jj++) {
                const __m512 pj = _mm512_set1_ps(scores[jj]);
#pragma GCC unroll 4
                for (int u = 0; u < 4; u++)
                    av[u] = _mm512_fmadd_ps(pj, ld_kv(v, kv_type, (int64_t)jj * hd + d0 + 16 * u, md[u]), av[u]);
            }
            for (int u = 0; u < 4; u++) _mm512_mask_storeu_ps(a + d0 + 16 * u, md[u], av[u]);
        }
    }
}

void e2h_attention_avx512(e2h_pool *pool, float *out, const float *q, const e2h_attn_seq *seqs,
                          int n_seqs, int n_heads, const e2h_kv_layer_view *kv, float scale,
                          void *scratch) {
    e2h_attention_run(e2h_attn_chunk_avx512, 1, pool, out, q, seqs, n_seqs, n_heads, kv, scale,
                      scratch);
}
