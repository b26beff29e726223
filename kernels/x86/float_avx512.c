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
#include <string.h>

#include "../float_kernels.h"
#include "../matmul_blocked.h"

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

void kern_matmul_float_avx512(e2h_pool *pool, float *y, int64_t ldy, const float *x,
                             const void *w, int wtype, int64_t n_tok, int64_t n_in,
                             int64_t n_out, void *scratch) {
    (void)scratch;
    static const e2h_mm_tiling k_f32 = {MR, NR, tile_f32}, k_f16 = {MR, NR, tile_f16},
                               k_bf16 = {MR, NR, tile_bf16};
    const e2h_mm_tiling *tl = wtype == E2H_TYPE_F16 ? &k_f16 : wtype == E2H_TYPE_BF16 ? &k_bf16 : &k_f32;
    kern_matmul_blocked(pool, tl, y, ldy, x, w, kern_type_row_size(wtype, n_in), n_tok, n_in, n_out);
}

// ---- bf16 x bf16 dot-product matmul (arithmetic defined in kernels/float_kernels.h) ----
// vdpbf16ps adds, per 16-lane accumulator, the products of 32 bf16 weights and 32 bf16
// activations in pairs: twice the multiply-adds of an f32 fma and no weight conversion. The
// activations are rounded once per matmul into scratch rows padded with zeros to a multiple of
// 32 (so only the weights need a tail mask); the tile is the f32 one's (4 rows x 6 tokens,
// 24 accumulators), folded the same canonical way.
static inline __m512bh bd_ld(const void *p) { return (__m512bh)_mm512_loadu_si512(p); }

// One row of n f32 to bf16 (RNE), zeros up to the padded length np.
static void bd_round_row(const float *x, int64_t n, e2h_bf16 *dst, int64_t np) {
    int64_t k = 0;
    for (; k + 32 <= n; k += 32) {
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + k + 16), _mm512_loadu_ps(x + k));
        _mm512_storeu_si512((void *)(dst + k), (__m512i)v);
    }
    for (; k < np; k += 32) { // tail and padding: masked loads give zeros past n
        const int64_t n0 = n - k < 0 ? 0 : n - k > 16 ? 16 : n - k;
        const int64_t n1 = n - k - 16 < 0 ? 0 : n - k - 16 > 16 ? 16 : n - k - 16;
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(tail_mask(n1), x + k + 16),
                                         _mm512_maskz_loadu_ps(tail_mask(n0), x + k));
        _mm512_storeu_si512((void *)(dst + k), (__m512i)v);
    }
}

// Rounds tokens [t0, t1) of the thread's slice; each row is rounded alone, so the split
// changes nothing in the result.
typedef struct {
    const float *x;
    e2h_bf16 *xb;
    int64_t n_tok, n_in, np;
} bd_round_ctx;

static void bd_round_worker(void *p, int ith, int nth) {
    const bd_round_ctx *c = p;
    int64_t t0, t1;
    pool_slice(c->n_tok, ith, nth, 1, &t0, &t1);
    for (int64_t t = t0; t < t1; t++)
        bd_round_row(c->x + t * c->n_in, c->n_in, c->xb + t * c->np, c->np);
}

static inline __attribute__((always_inline)) void bd_tile(const int R, const int T, const char *w,
                                                          size_t wrow, const float *xf,
                                                          int64_t ldx, int64_t n_in, float *y,
                                                          int64_t ldy) {
    const e2h_bf16 *x = (const e2h_bf16 *)xf; // bf16 rows of 2 * ldx elements
    __m512 acc[MR][NR];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 32 <= n_in; k += 32) {
        __m512bh wv[MR];
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) wv[r] = bd_ld(w + r * wrow + k * 2);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            const __m512bh xv = bd_ld(x + t * 2 * ldx + k);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) acc[r][t] = _mm512_dpbf16_ps(acc[r][t], wv[r], xv);
        }
    }
    if (k < n_in) {
        const __mmask32 m = (__mmask32)((1ull << (n_in - k)) - 1);
        __m512bh wv[MR];
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
            wv[r] = (__m512bh)_mm512_maskz_loadu_epi16(m, w + r * wrow + k * 2);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            const __m512bh xv = bd_ld(x + t * 2 * ldx + k); // zero-padded
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) acc[r][t] = _mm512_dpbf16_ps(acc[r][t], wv[r], xv);
        }
    }
    if (R == 4) {
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

#define BD_CASE(R, T) \
    case (R) * 8 + (T): bd_tile(R, T, MM_ARGS); break;
#define BD_ROW(R) BD_CASE(R, 1) BD_CASE(R, 2) BD_CASE(R, 3) BD_CASE(R, 4) BD_CASE(R, 5) BD_CASE(R, 6)
static void tile_bf16dot(int R, int T, const char *w, size_t wrow, const float *x, int64_t ldx,
                         int64_t n_in, float *y, int64_t ldy) {
    switch (R * 8 + T) { BD_ROW(1) BD_ROW(2) BD_ROW(3) BD_ROW(4) default: break; }
}

void kern_matmul_bf16dot_avx512(e2h_pool *pool, float *y, int64_t ldy, const float *x,
                                const void *w, int64_t n_tok, int64_t n_in, int64_t n_out,
                                void *scratch) {
    static const e2h_mm_tiling k_bd = {MR, NR, tile_bf16dot};
    const int64_t np = (n_in + E2H_BF16DOT_PAD - 1) / E2H_BF16DOT_PAD * E2H_BF16DOT_PAD;
    e2h_bf16 *xb = (e2h_bf16 *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    bd_round_ctx rc = {x, xb, n_tok, n_in, np};
    if (n_tok >= 8) // rounding a prefill batch alone costs ~5% of the matmul at 2 threads
        pool_run(pool, bd_round_worker, &rc);
    else
        bd_round_worker(&rc, 0, 1);
    kern_matmul_blocked_x(pool, &k_bd, y, ldy, xb, (size_t)np * 2, w, (size_t)n_in * 2, n_tok,
                          n_in, n_out);
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
void kern_rmsnorm_avx512(float *out, const float *x, const float *w, int64_t n, int64_t dim,
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
void kern_rope_avx512(float *x, const int32_t *pos, int64_t n, int n_heads, int head_dim,
                     const float *inv_freq, int interleaved) {
    const int half = head_dim / 2;
    if (half > ROPE_MAX_HALF) {
        kern_rope_ref(x, pos, n, n_heads, head_dim, inv_freq, interleaved);
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

void kern_swiglu_avx512(float *out, const float *gate, const float *up, int64_t n, int64_t dim) {
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

// ---- attention: the tiled phase (arithmetic defined at kern_attn_phase_avx512) ----
// A group of 16 rows goes through the register tiles when it has at least this many rows;
// fewer rows (decode: one token x the group's heads) go row by row. 12 rows (4 sibling beams
// x 3 heads sharing a parent's blocks, SmolLM2 decode in a beam search) ran faster row by row:
// the batched beam search of bench/search_bench.py on 8 problems, 1 thread, 110.0 / 109.4 s
// with 12 here, 105.4 / 107.2 s with 13 (same results).
#ifndef AT_MIN_TILE_ROWS
#define AT_MIN_TILE_ROWS 13
#endif

static inline __m512 ld_kv(const void *base, int kv_type, int64_t i, __mmask16 m) {
    if (kv_type == E2H_TYPE_F16)
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const e2h_f16 *)base + i));
    return _mm512_maskz_loadu_ps(m, (const float *)base + i);
}

static inline __mmask16 at_dmask(int hd, int d) { return hd - d >= 16 ? 0xffff : tail_mask(hd - d); }

// Slots [0, ns) of a chunk (hd elements each) as f32 rows of hp floats, zero past hd.
static void at_convert(float *dst, const void *src, int kv_type, int ns, int hd, int hp) {
    for (int j = 0; j < ns; j++)
        for (int d = 0; d < hp; d += 16)
            _mm512_store_ps(dst + (int64_t)j * hp + d,
                            ld_kv(src, kv_type, (int64_t)j * hd + d, at_dmask(hd, d)));
}

// In-register 16x16 transpose: r[i] lane j <- r[j] lane i.
static inline __attribute__((always_inline)) void at_transpose16(__m512 r[16]) {
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0x88);
        t[4 + i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0xDD);
        t[8 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0x88);
        t[12 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0xDD);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
        r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xDD);
        r[4 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0x88);
        r[12 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0xDD);
    }
}

// kT (hd, 16): kT[d][j] = k_j[d], the chunk's keys as stored (kern_kv_k_index: rows of w
// slots). Full f32 chunks are used in place; otherwise rows are converted into `buf`, slots
// past ns zero. Lanes past the rows' visible slots are never used unmasked.
static const float *at_load_kt(float *buf, const void *k, int kv_type, int ns, int w, int hd) {
    if (kv_type == E2H_TYPE_F32 && w == 16) return (const float *)k;
    const __mmask16 m = ns >= 16 ? 0xffff : tail_mask(ns);
    for (int d = 0; d < hd; d++)
        _mm512_store_ps(buf + (int64_t)d * 16, ld_kv(k, kv_type, (int64_t)d * w, m));
    return buf;
}

// One chunk for one group of 16 rows as lanes. qT (hd, 16) the rows' queries; kT (hd, 16) the
// chunk's keys transposed (all 16 slots readable, only valid ones used); vf the chunk's
// values as f32 rows of hp floats;
// nvv the rows' visible slot counts (0: state kept), gmax their maximum (> 0).
// State: mT, lT (16), aT (hp, 16). pb: 256 floats of scratch.
static void at_tile(const float *qT, const float *kT, const float *vf, __m512i nvv, int gmax,
                    int hd, int hp, float scale, float *mT, float *lT, float *aT, float *pb) {
    __m512 s[16];
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) s[j] = _mm512_setzero_ps();
    for (int d = 0; d < hd; d++) { // S^T (slot, row) = K q^T: one q vector, 16 broadcast FMAs
        const __m512 qv = _mm512_load_ps(qT + (int64_t)d * 16);
        const float *kd = kT + (int64_t)d * 16;
#pragma GCC unroll 16
        for (int j = 0; j < 16; j++) s[j] = _mm512_fmadd_ps(qv, _mm512_set1_ps(kd[j]), s[j]);
    }
    const __m512 ninf = _mm512_set1_ps(-INFINITY), vs = _mm512_set1_ps(scale);
    __m512 mx = ninf;
    __mmask16 valid[16];
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) {
        valid[j] = _mm512_cmpgt_epi32_mask(nvv, _mm512_set1_epi32(j));
        s[j] = _mm512_mask_mul_ps(ninf, valid[j], s[j], vs);
        mx = _mm512_max_ps(mx, s[j]);
    }
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) s[j] = _mm512_maskz_mov_ps(valid[j], exp512(_mm512_sub_ps(s[j], mx)));
    for (int j = 0; j < gmax; j++) _mm512_store_ps(pb + 16 * j, s[j]);
    // canonical fold over the 16 slots (same pairing as hsum16 in the row-by-row path)
    __m512 t[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) t[j] = _mm512_add_ps(s[j], s[j + 8]);
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) t[j] = _mm512_add_ps(t[j], t[j + 4]);
    t[0] = _mm512_add_ps(t[0], t[2]);
    t[1] = _mm512_add_ps(t[1], t[3]);
    const __m512 lb = _mm512_add_ps(t[0], t[1]);
    // merge factors
    const __mmask16 upd = _mm512_cmpgt_epi32_mask(nvv, _mm512_setzero_si512());
    const __m512 mo = _mm512_load_ps(mT), lo = _mm512_load_ps(lT);
    const __m512 mn = _mm512_max_ps(mo, mx);
    const __m512 fa = exp512(_mm512_sub_ps(mo, mn)), fb = exp512(_mm512_sub_ps(mx, mn));
    _mm512_store_ps(lT, _mm512_mask_mov_ps(lo, upd, _mm512_fmadd_ps(lb, fb, _mm512_mul_ps(lo, fa))));
    _mm512_store_ps(mT, _mm512_mask_mov_ps(mo, upd, mn));
    // acc^T (d, row) = V^T P^T, 16 d at a time, merged straight from the registers
    for (int d0 = 0; d0 < hp; d0 += 16) {
        __m512 a[16];
#pragma GCC unroll 16
        for (int e = 0; e < 16; e++) a[e] = _mm512_setzero_ps();
        for (int j = 0; j < gmax; j++) {
            const __m512 pj = _mm512_load_ps(pb + 16 * j);
            const float *vr = vf + (int64_t)j * hp + d0;
#pragma GCC unroll 16
            for (int e = 0; e < 16; e++) a[e] = _mm512_fmadd_ps(pj, _mm512_set1_ps(vr[e]), a[e]);
        }
#pragma GCC unroll 16
        for (int e = 0; e < 16; e++) {
            float *o = aT + (int64_t)(d0 + e) * 16;
            const __m512 old = _mm512_load_ps(o);
            _mm512_store_ps(o, _mm512_mask_mov_ps(old, upd, _mm512_fmadd_ps(a[e], fb, _mm512_mul_ps(old, fa))));
        }
    }
}

// Softmax, merge and PV of R rows (compile-time R <= 4) for one chunk, slots as lanes.
// s[i]: raw scores of row i; nvr[i]: its visible slots (0: state kept). v: the chunk's V
// slots, v_type (compile-time) f32 or f16, vstride elements apart. *mv, *lv: the R rows'
// running m and l as lanes 0..R-1 (kept in registers over a run of chunks); acc (stride hd):
// their accumulators. pb: 64 floats of scratch. The per-row maxima and sums go into lanes
// without a trip through memory (a scalar store read back by a vector load stalls).
static inline __attribute__((always_inline)) void at_rows_finish_t(
    const int R, const int v_type, const __m512 *s, const int32_t *nvr, const void *v,
    int vstride, int hd, float scale, __m512 *mv, __m512 *lv, float *acc, float *pb) {
    float faa[16], fba[16];
    __m512 mx = _mm512_setzero_ps(), lb = _mm512_setzero_ps();
    __mmask16 upd = 0;
    int jmax = 0;
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
        if (nvr[i] == 0) {
            _mm512_store_ps(pb + 16 * i, _mm512_setzero_ps());
            continue;
        }
        const __mmask16 valid = nvr[i] >= 16 ? 0xffff : tail_mask(nvr[i]), lane = (__mmask16)(1u << i);
        const __m512 si = _mm512_mask_mul_ps(_mm512_set1_ps(-INFINITY), valid, s[i], _mm512_set1_ps(scale));
        const float mxi = _mm512_reduce_max_ps(si);
        const __m512 p = _mm512_maskz_mov_ps(valid, exp512(_mm512_sub_ps(si, _mm512_set1_ps(mxi))));
        mx = _mm512_mask_mov_ps(mx, lane, _mm512_set1_ps(mxi));
        lb = _mm512_mask_mov_ps(lb, lane, _mm512_set1_ps(hsum16(p)));
        _mm512_store_ps(pb + 16 * i, p);
        upd |= lane;
        jmax = nvr[i] > jmax ? nvr[i] : jmax;
    }
    if (!upd) return;
    // merge factors of the R rows as lanes (the same lane-wise ops as the tiles)
    const __m512 mo = *mv, lo = *lv;
    const __m512 mn = _mm512_max_ps(mo, mx);
    const __m512 fa = exp512(_mm512_sub_ps(mo, mn)), fb = exp512(_mm512_sub_ps(mx, mn));
    *lv = _mm512_mask_mov_ps(lo, upd, _mm512_fmadd_ps(lb, fb, _mm512_mul_ps(lo, fa)));
    *mv = _mm512_mask_mov_ps(mo, upd, mn);
    _mm512_storeu_ps(faa, fa);
    _mm512_storeu_ps(fba, fb);
    for (int d0 = 0; d0 < hd; d0 += 64) { // 4 vectors of d x R rows = 4R FMA chains
        __m512 a[4][4];
        __mmask16 md[4];
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) {
            md[u] = d0 + 16 * u >= hd ? 0 : at_dmask(hd, d0 + 16 * u);
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) a[i][u] = _mm512_setzero_ps();
        }
        for (int j = 0; j < jmax; j++) {
            __m512 vv[4];
#pragma GCC unroll 4
            for (int u = 0; u < 4; u++)
                vv[u] = ld_kv(v, v_type, (int64_t)j * vstride + d0 + 16 * u, md[u]);
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) {
                const __m512 pj = _mm512_set1_ps(pb[16 * i + j]);
#pragma GCC unroll 4
                for (int u = 0; u < 4; u++) a[i][u] = _mm512_fmadd_ps(pj, vv[u], a[i][u]);
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) {
            if (!(upd >> i & 1)) continue;
            const __m512 fai = _mm512_set1_ps(faa[i]), fbi = _mm512_set1_ps(fba[i]);
#pragma GCC unroll 4
            for (int u = 0; u < 4; u++) {
                float *o = acc + (int64_t)i * hd + d0 + 16 * u;
                if (md[u] == 0xffff) { // plain ops: a masked store does not forward to the next chunk's load
                    _mm512_storeu_ps(o, _mm512_fmadd_ps(a[i][u], fbi, _mm512_mul_ps(_mm512_loadu_ps(o), fai)));
                    continue;
                }
                const __m512 old = _mm512_maskz_loadu_ps(md[u], o);
                _mm512_mask_storeu_ps(o, md[u], _mm512_fmadd_ps(a[i][u], fbi, _mm512_mul_ps(old, fai)));
            }
        }
    }
}

static void at_rows_finish(int R, const __m512 *s, const int32_t *nvr, const void *v, int v_type,
                           int vstride, int hd, float scale, __m512 *mv, __m512 *lv, float *acc,
                           float *pb) {
#define AT_RF(RR, TT) at_rows_finish_t(RR, TT, s, nvr, v, vstride, hd, scale, mv, lv, acc, pb)
    if (v_type == E2H_TYPE_F16) {
        switch (R) {
        case 1: AT_RF(1, E2H_TYPE_F16); break;
        case 2: AT_RF(2, E2H_TYPE_F16); break;
        case 3: AT_RF(3, E2H_TYPE_F16); break;
        default: AT_RF(4, E2H_TYPE_F16); break;
        }
    } else {
        switch (R) {
        case 1: AT_RF(1, E2H_TYPE_F32); break;
        case 2: AT_RF(2, E2H_TYPE_F32); break;
        case 3: AT_RF(3, E2H_TYPE_F32); break;
        default: AT_RF(4, E2H_TYPE_F32); break;
        }
    }
#undef AT_RF
}

// ---- the row-by-row path: the rows a tiled phase leaves over (one chunk at a time), and
// whole phases with few rows (decode), AT_RB chunks at a time so that R rows x AT_RB chunks
// score chains run interleaved (one chain per (row, chunk) is a latency-bound sequence of
// head_dim FMAs) ----
#define AT_RB 3

typedef struct {
    const char *k, *v; // chunk's first slot in the cache
    int clen;
    int64_t p0;        // position of the first slot
} at_chunk;

// Scores s[r][c] of R rows x C chunks against the chunks' kT[c] (hd, 16) of type T (R, C, T
// compile-time; f16: the cache's full K chunks converted as they are read).
static inline __attribute__((always_inline)) void at_multi_scores(const int R, const int C,
                                                                   const int T,
                                                                   const float *const *qr,
                                                                   const void *const *kT, int hd,
                                                                   __m512 s[4][AT_RB]) {
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 3
        for (int c = 0; c < C; c++) s[r][c] = _mm512_setzero_ps();
    for (int d = 0; d < hd; d++) {
        __m512 kv[AT_RB];
#pragma GCC unroll 3
        for (int c = 0; c < C; c++)
            kv[c] = T == E2H_TYPE_F16
                        ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const e2h_f16 *)kT[c] + (int64_t)d * 16)))
                        : _mm512_loadu_ps((const float *)kT[c] + (int64_t)d * 16);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const __m512 qv = _mm512_set1_ps(qr[r][d]);
#pragma GCC unroll 3
            for (int c = 0; c < C; c++) s[r][c] = _mm512_fmadd_ps(qv, kv[c], s[r][c]);
        }
    }
}

// Rows [r0, r1) of the phase one by one (up to 4 score chains interleaved).
static void at_rows(const e2h_attn_phase *ph, int r0, int r1, const int32_t *nv, const float *kT,
                    const float *vf, int hp, float *pb) {
    const int hd = ph->kv->head_dim;
    for (int r = r0; r < r1; r += 4) {
        const int R = r1 - r < 4 ? r1 - r : 4;
        const float *qr[4];
        for (int i = 0; i < 4; i++) qr[i] = ph->q + ph->r_off[r + (i < R ? i : 0)];
        __m512 s[4][AT_RB], s1[4];
        const void *kc = kT;
        switch (R) {
        case 1: at_multi_scores(1, 1, E2H_TYPE_F32, qr, &kc, hd, s); break;
        case 2: at_multi_scores(2, 1, E2H_TYPE_F32, qr, &kc, hd, s); break;
        case 3: at_multi_scores(3, 1, E2H_TYPE_F32, qr, &kc, hd, s); break;
        default: at_multi_scores(4, 1, E2H_TYPE_F32, qr, &kc, hd, s); break;
        }
        for (int i = 0; i < R; i++) s1[i] = s[i][0];
        const __mmask16 rm = tail_mask(R);
        __m512 mv = _mm512_maskz_loadu_ps(rm, ph->m + r), lv = _mm512_maskz_loadu_ps(rm, ph->l + r);
        at_rows_finish(R, s1, nv + r, vf, E2H_TYPE_F32, hp, hd, ph->scale, &mv, &lv,
                       ph->acc + (int64_t)r * hd, pb);
        _mm512_mask_storeu_ps(ph->m + r, rm, mv);
        _mm512_mask_storeu_ps(ph->l + r, rm, lv);
    }
}

// Moves the running state of group g's rows between the row layout and the tile layout
// (16x16 transposes; lanes past the last row get q = 0, m = -inf, l = 0, acc = 0).
static void at_group_load(const e2h_attn_phase *ph, int g, int hp, float *qT, float *aT,
                          float *mT, float *lT) {
    const int hd = ph->kv->head_dim, nr = ph->n_rows - 16 * g < 16 ? ph->n_rows - 16 * g : 16;
    const int r0 = 16 * g;
    for (int d0 = 0; d0 < hp; d0 += 16) {
        const __mmask16 md = at_dmask(hd, d0);
        __m512 x[16], y[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            x[i] = i < nr ? _mm512_maskz_loadu_ps(md, ph->q + ph->r_off[r0 + i] + d0) : _mm512_setzero_ps();
            y[i] = i < nr ? _mm512_maskz_loadu_ps(md, ph->acc + (int64_t)(r0 + i) * hd + d0) : _mm512_setzero_ps();
        }
        at_transpose16(x);
        at_transpose16(y);
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            _mm512_store_ps(qT + (int64_t)(d0 + i) * 16, x[i]);
            _mm512_store_ps(aT + (int64_t)(d0 + i) * 16, y[i]);
        }
    }
    const __mmask16 rm = tail_mask(nr);
    _mm512_store_ps(mT, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), rm, ph->m + r0));
    _mm512_store_ps(lT, _mm512_maskz_loadu_ps(rm, ph->l + r0));
}

static void at_group_store(const e2h_attn_phase *ph, int g, int hp, const float *aT,
                           const float *mT, const float *lT) {
    const int hd = ph->kv->head_dim, nr = ph->n_rows - 16 * g < 16 ? ph->n_rows - 16 * g : 16;
    const int r0 = 16 * g;
    for (int d0 = 0; d0 < hp; d0 += 16) {
        const __mmask16 md = at_dmask(hd, d0);
        __m512 y[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) y[i] = _mm512_load_ps(aT + (int64_t)(d0 + i) * 16);
        at_transpose16(y);
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++)
            if (i < nr) _mm512_mask_storeu_ps(ph->acc + (int64_t)(r0 + i) * hd + d0, md, y[i]);
    }
    const __mmask16 rm = tail_mask(nr);
    _mm512_mask_storeu_ps(ph->m + r0, rm, _mm512_load_ps(mT));
    _mm512_mask_storeu_ps(ph->l + r0, rm, _mm512_load_ps(lT));
}

// n_valid of rows [0, n) for the chunk at position p0 of clen slots: clamp(limit + 1 - p0,
// 0, clen); returns the maximum over rows [r_from, n).
static int at_n_valid(const int32_t *limit, int n, int64_t p0, int clen, int32_t *nv, int r_from) {
    const __m512i add = _mm512_set1_epi32((int32_t)(1 - p0)), hi = _mm512_set1_epi32(clen);
    __m512i mx = _mm512_setzero_si512();
    for (int r = 0; r < n; r += 16) {
        const __mmask16 m = n - r >= 16 ? 0xffff : tail_mask(n - r);
        __m512i v = _mm512_add_epi32(_mm512_maskz_loadu_epi32(m, limit + r), add);
        v = _mm512_min_epi32(_mm512_max_epi32(v, _mm512_setzero_si512()), hi);
        v = _mm512_maskz_mov_epi32(m, v);
        _mm512_mask_storeu_epi32(nv + r, m, v);
        const int lo = r_from - r;
        const __mmask16 mf = lo <= 0 ? m : lo >= 16 ? 0 : (__mmask16)(m & ~tail_mask(lo));
        mx = _mm512_mask_max_epi32(mx, mf, mx, v);
    }
    return _mm512_reduce_max_epi32(mx);
}

// Chunks ch[0..C) in order for every row of the phase.
static void at_rows_batch(const e2h_attn_phase *ph, const at_chunk *ch, int C, float *kT,
                          float *pb, int32_t *nv, int nvs) {
    const e2h_kv_layer_view *kv = ph->kv;
    const int hd = kv->head_dim, hp = (hd + 15) & ~15, n = ph->n_rows;
    // full chunks are read in place (f16 converted in the score loop); with a partial one
    // (block_size not a multiple of 16) all go through f32 copies
    int full = 1;
    for (int c = 0; c < C; c++) full &= ch[c].clen == 16;
    const int T = full ? kv->kv_type : E2H_TYPE_F32;
    const void *kc[AT_RB];
    for (int c = 0; c < C; c++) { // a chunk no row sees gets scores masked out below
        const int nvmax = at_n_valid(ph->limit, n, ch[c].p0, ch[c].clen, nv + c * nvs, 0);
        kc[c] = full ? (const void *)ch[c].k : (const void *)at_load_kt(kT + (int64_t)c * hp * 16, ch[c].k, kv->kv_type, nvmax, ch[c].clen, hd);
    }
    for (int r = 0; r < n; r += 4) {
        const int R = n - r < 4 ? n - r : 4;
        const float *qr[4];
        for (int i = 0; i < 4; i++) qr[i] = ph->q + ph->r_off[r + (i < R ? i : 0)];
        __m512 s[4][AT_RB];
#define AT_MS(RR, CC, TT) case (TT == E2H_TYPE_F16) * 16 + (RR) * 4 + (CC): at_multi_scores(RR, CC, TT, qr, kc, hd, s); break
#define AT_MS_T(TT) AT_MS(1, 1, TT); AT_MS(1, 2, TT); AT_MS(1, 3, TT); AT_MS(2, 1, TT); AT_MS(2, 2, TT); \
        AT_MS(2, 3, TT); AT_MS(3, 1, TT); AT_MS(3, 2, TT); AT_MS(3, 3, TT); AT_MS(4, 1, TT); AT_MS(4, 2, TT); AT_MS(4, 3, TT)
        switch ((T == E2H_TYPE_F16) * 16 + R * 4 + C) {
        AT_MS_T(E2H_TYPE_F32);
        AT_MS_T(E2H_TYPE_F16);
        default: break; // R in 1..4, C in 1..AT_RB
        }
#undef AT_MS_T
#undef AT_MS
        const __mmask16 rm = tail_mask(R);
        __m512 mv = _mm512_maskz_loadu_ps(rm, ph->m + r), lv = _mm512_maskz_loadu_ps(rm, ph->l + r);
        for (int c = 0; c < C; c++) { // merge in chunk order
            __m512 sc[4];
            for (int i = 0; i < R; i++) sc[i] = s[i][c];
            at_rows_finish(R, sc, nv + c * nvs + r, ch[c].v, kv->kv_type, hd, hd, ph->scale,
                           &mv, &lv, ph->acc + (int64_t)r * hd, pb);
        }
        _mm512_mask_storeu_ps(ph->m + r, rm, mv);
        _mm512_mask_storeu_ps(ph->l + r, rm, lv);
    }
}

// Walks the chunks of a phase in order: blocks [blk0, blk1) up to the last position any row
// sees, 16 slots at a time.
typedef struct {
    int64_t blk;
    int c0;
    int32_t last; // last position any row sees
} at_cursor;

static at_cursor at_cursor_start(const e2h_attn_phase *ph) {
    at_cursor cu = {ph->blk0, 0, -1};
    for (int r = 0; r < ph->n_rows; r++) cu.last = ph->limit[r] > cu.last ? ph->limit[r] : cu.last;
    return cu;
}

// The chunk at the cursor, then advances; 0 when the phase has no more chunks.
static int at_cursor_next(const e2h_attn_phase *ph, at_cursor *cu, at_chunk *ch) {
    const e2h_kv_layer_view *kv = ph->kv;
    const int hd = kv->head_dim, bs = kv->block_size;
    const size_t es = kv->kv_type == E2H_TYPE_F16 ? 2 : 4;
    if (cu->c0 >= bs) cu->blk++, cu->c0 = 0;
    if (cu->blk >= ph->blk1 || cu->blk * bs + cu->c0 > cu->last) return 0;
    const size_t off = ((size_t)((int64_t)ph->table[cu->blk] * kv->n_kv_heads + ph->kh) * bs +
                        (size_t)cu->c0) * hd * es;
    ch->k = (const char *)kv->k + off;
    ch->v = (const char *)kv->v + off;
    ch->clen = bs - cu->c0 < 16 ? bs - cu->c0 : 16;
    ch->p0 = cu->blk * bs + cu->c0;
    cu->c0 += 16;
    return 1;
}

// Walks up to n chunks from the cursor and brings the lines of their K and V into the cache:
// touch = 0 with software prefetches, touch = 1 with plain loads (whole 64-byte lines). Returns how
// many chunks it walked. Blocks are scattered over the pool in 4 KiB pieces (one KV head of a
// block), too short for the hardware prefetchers.
static inline __attribute__((always_inline)) int at_walk_t(const int touch, const e2h_attn_phase *ph,
                                                           at_cursor *cu, int n) {
    const size_t es = ph->kv->kv_type == E2H_TYPE_F16 ? 2 : 4;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0;
    at_chunk ch;
    int c = 0;
    for (; c < n && at_cursor_next(ph, cu, &ch); c++) {
        const size_t bytes = (size_t)ch.clen * ph->kv->head_dim * es;
        for (size_t o = 0; touch ? o + 64 <= bytes : o < bytes; o += 64) { // loads stay in bounds
            if (touch) {
                a0 = _mm512_or_si512(a0, _mm512_loadu_si512((const void *)(ch.k + o)));
                a1 = _mm512_or_si512(a1, _mm512_loadu_si512((const void *)(ch.v + o)));
            } else {
                _mm_prefetch(ch.k + o, _MM_HINT_T0);
                _mm_prefetch(ch.v + o, _MM_HINT_T0);
            }
        }
    }
    if (touch) __asm__ volatile("" : : "v"(a0), "v"(a1)); // the loads are the point: keep them
    return c;
}

// The tiled (prefill) path: the next chunk is prefetched while one is computed.
static void at_prefetch(const e2h_attn_phase *ph, at_cursor *pf, int n_chunks) {
    (void)at_walk_t(0, ph, pf, n_chunks);
}

// The row-by-row (decode) path reads the KV cache in segments of this many chunks: first every
// line of the segment's K and V with plain loads (into L2: 256 KiB in f32 at head_dim 64), then
// the compute over it. In decode the cache comes from DRAM (the weights evicted it since the
// last step), and interleaved with the compute its loads stalled even with software prefetch
// a few chunks ahead: SmolLM2 at depth 1000 (1 thread, 30 layers x 3 KV heads, 46 MB of f32
// K/V) read 10.9 GB/s, 4.28 ms per step; touched first, 2.6 ms (a plain read loop streams
// 33 GB/s from this pattern). 8 to 64 chunks measured alike.
#ifndef AT_TOUCH_CHUNKS
#define AT_TOUCH_CHUNKS 32
#endif
static int at_touch(const e2h_attn_phase *ph, at_cursor *cu, int n) { return at_walk_t(1, ph, cu, n); }

static void at_phase_rows(const e2h_attn_phase *ph) {
    const int hd = ph->kv->head_dim, hp = (hd + 15) & ~15, n = ph->n_rows;
    const int nvs = (n + 15) & ~15;
    // work: kT (AT_RB, hp, 16) | p (4, 16) | n_valid (AT_RB, nvs)
    float *kT = ph->work, *pb = kT + AT_RB * 16 * hp;
    int32_t *nv = (int32_t *)(pb + 64);
    at_cursor cu = at_cursor_start(ph), pf = cu;
    for (int left; (left = at_touch(ph, &pf, AT_TOUCH_CHUNKS)) > 0;) { // pf runs a segment ahead of cu
        at_chunk ch[AT_RB];
        while (left > 0) {
            int C = 0;
            while (C < AT_RB && C < left && at_cursor_next(ph, &cu, &ch[C])) C++;
            at_rows_batch(ph, ch, C, kT, pb, nv, nvs);
            left -= C;
        }
    }
}

void kern_attn_phase_avx512(const e2h_attn_phase *ph) {
    if (ph->n_rows < AT_MIN_TILE_ROWS) {
        at_phase_rows(ph);
        return;
    }
    const e2h_kv_layer_view *kv = ph->kv;
    const int hd = kv->head_dim, hp = (hd + 15) & ~15, n = ph->n_rows;
    int n_groups = n / 16;
    if (n % 16 >= AT_MIN_TILE_ROWS) n_groups++;
    const int n_tile = n_groups * 16 < n ? n_groups * 16 : n; // the rest go row by row
    // work: qT, aT (groups, hp, 16) | mT, lT (groups, 16) | vf (16, hp) | kT (hp, 16) |
    // p tile (16, 16) | n_valid (rows rounded up to 16)
    float *qT = ph->work, *aT = qT + (int64_t)n_groups * hp * 16;
    float *mT = aT + (int64_t)n_groups * hp * 16, *lT = mT + n_groups * 16;
    float *vf = lT + n_groups * 16, *kT = vf + 16 * hp, *pb = kT + 16 * hp;
    int32_t *nv = (int32_t *)(pb + 256);
    for (int g = 0; g < n_groups; g++)
        at_group_load(ph, g, hp, qT + (int64_t)g * hp * 16, aT + (int64_t)g * hp * 16,
                      mT + 16 * g, lT + 16 * g);
    for (int r = n; r < n_groups * 16; r++) nv[r] = 0;
    at_cursor cu = at_cursor_start(ph), pf = cu;
    at_prefetch(ph, &pf, 1);
    at_chunk ch;
    while (at_cursor_next(ph, &cu, &ch)) {
        at_prefetch(ph, &pf, 1); // one chunk ahead
        const int nvmax = at_n_valid(ph->limit, n, ch.p0, ch.clen, nv, 0);
        const int nvrow = n_tile < n ? at_n_valid(ph->limit, n, ch.p0, ch.clen, nv, n_tile) : 0;
        const float *vfp = vf;
        if (kv->kv_type == E2H_TYPE_F32 && hd == hp) vfp = (const float *)ch.v; // as is
        else at_convert(vf, ch.v, kv->kv_type, nvmax, hd, hp);
        const float *kTp = at_load_kt(kT, ch.k, kv->kv_type, nvmax, ch.clen, hd);
        for (int g = 0; g < n_groups; g++) {
            const __m512i nvv = _mm512_loadu_si512(nv + 16 * g);
            const int gmax = _mm512_reduce_max_epi32(nvv);
            if (gmax > 0)
                at_tile(qT + (int64_t)g * hp * 16, kTp, vfp, nvv, gmax, hd, hp, ph->scale,
                        mT + 16 * g, lT + 16 * g, aT + (int64_t)g * hp * 16, pb);
        }
        if (nvrow > 0) at_rows(ph, n_tile, n, nv, kTp, vfp, hp, pb);
    }
    for (int g = 0; g < n_groups; g++)
        at_group_store(ph, g, hp, aT + (int64_t)g * hp * 16, mT + 16 * g, lT + 16 * g);
}

void kern_attention_avx512(e2h_pool *pool, float *out, const float *q, const e2h_attn_seq *seqs,
                          int n_seqs, int n_heads, const e2h_kv_layer_view *kv, float scale,
                          void *scratch) {
    kern_attention_run(kern_attn_phase_avx512, 1, pool, out, q, seqs, n_seqs, n_heads, kv, scale,
                      scratch);
}
