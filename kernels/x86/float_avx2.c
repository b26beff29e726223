// kernels/x86/float_avx2.c — AVX2/FMA float kernels: matmul (f32/f16/bf16 weights), rmsnorm,
// rope, swiglu, attention chunk kernel.
//
// Matmul follows the canonical 16-lane order of kernels/float_kernels.h with two 8-lane
// halves per (row, token), so it gives the same bits as the ref and AVX-512 kernels for any
// n_tok, tiling or thread count. Micro-tile: 2 rows x 3 tokens x 2 halves = 12 accumulators.
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "../float_kernels.h"
#include "../matmul_blocked.h"

#define MR 2
#define NR 3

static inline __attribute__((always_inline)) __m256 ld8_w(const char *p, const int wtype) {
    if (wtype == E2H_TYPE_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    if (wtype == E2H_TYPE_BF16)
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
    return _mm256_loadu_ps((const float *)p);
}

// Folds lanes lo[0..7] ++ hi[0..7] in the canonical order.
static inline float hsum16x2(__m256 lo, __m256 hi) {
    __m256 s8 = _mm256_add_ps(lo, hi);
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

static inline float hsum8(__m256 a) {
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

// One 16-wide k step of the tile; w rows at wp[r], x rows at xp[t] (already at k).
#define MM_STEP(WT, WOFF, WSTRIDE, XOFF, XSTRIDE)                                             \
    do {                                                                                      \
        _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {                                 \
            __m256 wv[MR];                                                                    \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                               \
                wv[r] = ld8_w((WOFF) + r * (WSTRIDE) + h * 8 * esz, WT);                      \
            _Pragma("GCC unroll 4") for (int t = 0; t < T; t++) {                             \
                __m256 xv = _mm256_loadu_ps((XOFF) + t * (XSTRIDE) + h * 8);                  \
                _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) acc[h][r][t] =            \
                    _mm256_fmadd_ps(wv[r], xv, acc[h][r][t]);                                 \
            }                                                                                 \
        }                                                                                     \
    } while (0)

static inline __attribute__((always_inline)) void mm_tile(const int R, const int T, const int wtype,
                                                          const char *w, size_t wrow,
                                                          const float *x, int64_t ldx,
                                                          int64_t n_in, float *y, int64_t ldy) {
    const int esz = wtype == E2H_TYPE_F32 ? 4 : 2;
    __m256 acc[2][MR][NR];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) acc[0][r][t] = acc[1][r][t] = _mm256_setzero_ps();
    int64_t k = 0;
#pragma GCC unroll 1
    for (; k + 16 <= n_in; k += 16) MM_STEP(wtype, w + k * esz, wrow, x + k, ldx);
    if (k < n_in) { // zero-padded copies of the tails, converted to f32
        float wt[MR][16], xt[NR][16];
        const int64_t nt = n_in - k;
        for (int r = 0; r < R; r++) {
            memset(wt[r], 0, sizeof wt[r]);
            kern_float_dequantize_row(wtype, w + r * wrow + k * esz, wt[r], nt);
        }
        for (int t = 0; t < T; t++) {
            memset(xt[t], 0, sizeof xt[t]);
            memcpy(xt[t], x + t * ldx + k, nt * sizeof(float));
        }
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m256 wv[MR];
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) wv[r] = _mm256_loadu_ps(wt[r] + h * 8);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                __m256 xv = _mm256_loadu_ps(xt[t] + h * 8);
#pragma GCC unroll 4
                for (int r = 0; r < R; r++) acc[h][r][t] = _mm256_fmadd_ps(wv[r], xv, acc[h][r][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) y[t * ldy + r] = hsum16x2(acc[0][r][t], acc[1][r][t]);
}

#define MM_ARGS w, wrow, x, ldx, n_in, y, ldy
#define MM_CASE(R, T, WT) \
    case (R) * 8 + (T): mm_tile(R, T, WT, MM_ARGS); break;
#define MM_ROW(R, WT) MM_CASE(R, 1, WT) MM_CASE(R, 2, WT) MM_CASE(R, 3, WT)
#define MM_ALL(WT) MM_ROW(1, WT) MM_ROW(2, WT)
#define MM_TILE_FN(name, WT)                                                                 \
    static void name(int R, int T, const char *w, size_t wrow, const float *x, int64_t ldx,  \
                     int64_t n_in, float *y, int64_t ldy) {                                  \
        switch (R * 8 + T) { MM_ALL(WT) default: break; }                                    \
    }
MM_TILE_FN(tile_f32, E2H_TYPE_F32)
MM_TILE_FN(tile_f16, E2H_TYPE_F16)
MM_TILE_FN(tile_bf16, E2H_TYPE_BF16)

void kern_matmul_float_avx2(e2h_pool *pool, float *y, int64_t ldy, const float *x, const void *w,
                           int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch) {
    (void)scratch;
    static const e2h_mm_tiling k_f32 = {MR, NR, tile_f32}, k_f16 = {MR, NR, tile_f16},
                               k_bf16 = {MR, NR, tile_bf16};
    const e2h_mm_tiling *tl = wtype == E2H_TYPE_F16 ? &k_f16 : wtype == E2H_TYPE_BF16 ? &k_bf16 : &k_f32;
    kern_matmul_blocked(pool, tl, y, ldy, x, w, kern_type_row_size(wtype, n_in), n_tok, n_in, n_out);
}

// ---- exp (same polynomial as the AVX-512 one); 0 below -87.3 ----
static inline __m256 exp256(__m256 x) {
    const __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654f), _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.33654f)), _mm256_set1_ps(88.37626f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500E-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 res = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    return _mm256_andnot_ps(tiny, res);
}

// ---- rmsnorm ----
void kern_rmsnorm_avx2(float *out, const float *x, const float *w, int64_t n, int64_t dim,
                      float eps) {
    for (int64_t t = 0; t < n; t++) {
        const float *xr = x + t * dim;
        float *o = out + t * dim;
        __m256 ss = _mm256_setzero_ps();
        int64_t i = 0;
        for (; i + 8 <= dim; i += 8) {
            __m256 v = _mm256_loadu_ps(xr + i);
            ss = _mm256_fmadd_ps(v, v, ss);
        }
        float tail = 0.0f;
        for (int64_t j = i; j < dim; j++) tail += xr[j] * xr[j];
        const float rs = 1.0f / sqrtf((hsum8(ss) + tail) / (float)dim + eps);
        const __m256 r = _mm256_set1_ps(rs);
        for (i = 0; i + 8 <= dim; i += 8)
            _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + i), r),
                                                  _mm256_loadu_ps(w + i)));
        for (; i < dim; i++) o[i] = (xr[i] * rs) * w[i];
    }
}

// ---- rope (cos/sin with libm as the ref does; rotation vectorized, scalar tails) ----
#define ROPE_MAX_HALF 512
void kern_rope_avx2(float *x, const int32_t *pos, int64_t n, int n_heads, int head_dim,
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
            if (interleaved) {
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
            int i = 0;
            if (interleaved) {
                for (; i + 8 <= 2 * half; i += 8) {
                    __m256 xv = _mm256_loadu_ps(v + i);
                    __m256 sw = _mm256_permute_ps(xv, 0xB1);
                    _mm256_storeu_ps(v + i, _mm256_add_ps(_mm256_mul_ps(xv, _mm256_loadu_ps(cs + i)),
                                                          _mm256_mul_ps(sw, _mm256_loadu_ps(sn + i))));
                }
                for (; i < 2 * half; i += 2) {
                    float x0 = v[i], x1 = v[i + 1], c = cs[i], s = sn[i + 1];
                    v[i] = x0 * c - x1 * s;
                    v[i + 1] = x1 * c + x0 * s;
                }
            } else {
                for (; i + 8 <= half; i += 8) {
                    __m256 x0 = _mm256_loadu_ps(v + i), x1 = _mm256_loadu_ps(v + half + i);
                    __m256 c = _mm256_loadu_ps(cs + i), s = _mm256_loadu_ps(sn + i);
                    _mm256_storeu_ps(v + i, _mm256_sub_ps(_mm256_mul_ps(x0, c), _mm256_mul_ps(x1, s)));
                    _mm256_storeu_ps(v + half + i, _mm256_add_ps(_mm256_mul_ps(x1, c), _mm256_mul_ps(x0, s)));
                }
                for (; i < half; i++) {
                    float x0 = v[i], x1 = v[i + half];
                    v[i] = x0 * cs[i] - x1 * sn[i];
                    v[i + half] = x1 * cs[i] + x0 * sn[i];
                }
            }
        }
    }
}

// ---- swiglu (tail through a zero-padded copy so every element uses the same exp) ----
static inline __m256 silu_mul8(__m256 g, __m256 u) {
    __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

void kern_swiglu_avx2(float *out, const float *gate, const float *up, int64_t n, int64_t dim) {
    const int64_t total = n * dim;
    int64_t i = 0;
    for (; i + 8 <= total; i += 8)
        _mm256_storeu_ps(out + i, silu_mul8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
    if (i < total) {
        float g[8] = {0}, u[8] = {0}, o[8];
        memcpy(g, gate + i, (total - i) * sizeof(float));
        memcpy(u, up + i, (total - i) * sizeof(float));
        _mm256_storeu_ps(o, silu_mul8(_mm256_loadu_ps(g), _mm256_loadu_ps(u)));
        memcpy(out + i, o, (total - i) * sizeof(float));
    }
}

// ---- attention chunk kernel (see e2h_attn_chunk_fn) ----
// 8 elements of K/V row data from element i, zero-padded past `cnt` (cnt <= 8).
static inline __m256 ld8_kv(const void *base, int kv_type, int64_t i, int cnt) {
    if (cnt == 8) {
        if (kv_type == E2H_TYPE_F16)
            return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const e2h_f16 *)base + i)));
        return _mm256_loadu_ps((const float *)base + i);
    }
    if (kv_type == E2H_TYPE_F32) {
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        return _mm256_maskload_ps((const float *)base + i, _mm256_cmpgt_epi32(_mm256_set1_epi32(cnt), lane));
    }
    uint16_t tmp[8] = {0}; // f16 0 is +0.0
    memcpy(tmp, (const e2h_f16 *)base + i, (size_t)cnt * sizeof(uint16_t));
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)tmp));
}

// Scales a group's 8 score lanes into scores[0, cnt) and raises *mx to their maximum.
static inline void at2_put_scores(__m256 a, float scale, int cnt, float *scores, float *mx) {
    float tmp[8];
    _mm256_storeu_ps(tmp, _mm256_mul_ps(a, _mm256_set1_ps(scale)));
    for (int u = 0; u < cnt; u++) {
        scores[u] = tmp[u];
        *mx = fmaxf(*mx, tmp[u]);
    }
}

// Two full 8-slot groups of K rows (stride w) against q: two independent fma chains over d.
static inline __attribute__((always_inline)) void at2_scores16(const int T, const float *qr,
                                                               const void *k, int64_t base, int w,
                                                               int hd, __m256 *a0, __m256 *a1) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (int d = 0; d < hd; d++) {
        const __m256 qd = _mm256_set1_ps(qr[d]);
        const int64_t i = base + (int64_t)d * w;
        if (T == E2H_TYPE_F16) {
            s0 = _mm256_fmadd_ps(qd, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const e2h_f16 *)k + i))), s0);
            s1 = _mm256_fmadd_ps(qd, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const e2h_f16 *)k + i + 8))), s1);
        } else {
            s0 = _mm256_fmadd_ps(qd, _mm256_loadu_ps((const float *)k + i), s0);
            s1 = _mm256_fmadd_ps(qd, _mm256_loadu_ps((const float *)k + i + 8), s1);
        }
    }
    *a0 = s0, *a1 = s1;
}

// acc[d0, d0 + 32) = fma chains over slots j < nv of p_j * v_j: four independent chains.
static inline __attribute__((always_inline)) void at2_pv32(const int T, const float *p, int nv,
                                                           const void *v, int hd, int d0, float *out) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int j = 0; j < nv; j++) {
        const __m256 pj = _mm256_set1_ps(p[j]);
        const int64_t i = (int64_t)j * hd + d0;
        if (T == E2H_TYPE_F16) {
            const e2h_f16 *vh = (const e2h_f16 *)v + i;
            a0 = _mm256_fmadd_ps(pj, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)vh)), a0);
            a1 = _mm256_fmadd_ps(pj, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vh + 8))), a1);
            a2 = _mm256_fmadd_ps(pj, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vh + 16))), a2);
            a3 = _mm256_fmadd_ps(pj, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vh + 24))), a3);
        } else {
            const float *vf = (const float *)v + i;
            a0 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vf), a0);
            a1 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vf + 8), a1);
            a2 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vf + 16), a2);
            a3 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vf + 24), a3);
        }
    }
    _mm256_storeu_ps(out + d0, a0);
    _mm256_storeu_ps(out + d0 + 8, a1);
    _mm256_storeu_ps(out + d0 + 16, a2);
    _mm256_storeu_ps(out + d0 + 24, a3);
}

void kern_attn_chunk_avx2(const float *q, const int64_t *r_off, const int *n_valid, int n_rows,
                         const void *k, int k_slots, const void *v, int kv_type, int head_dim,
                         float scale, float *m, float *l, float *acc, float *scores) {
    const int hd = head_dim;
    for (int r = 0; r < n_rows; r++) {
        const int nv = n_valid[r];
        m[r] = -INFINITY;
        l[r] = 0.0f;
        if (nv == 0) continue;
        const float *qr = q + r_off[r];
        float mx = -INFINITY;
        // 8 slots as lanes (within one K chunk: E2H_KV_KCHUNK is a multiple of 8), reading
        // the stored K rows (d, slots) as they are
        for (int j0 = 0; j0 < nv; j0 += 8) {
            const int cnt = nv - j0 >= 8 ? 8 : nv - j0, w = kern_kv_k_width(k_slots, j0);
            const int64_t base = kern_kv_k_index(k_slots, hd, j0, 0);
            if (j0 % 16 == 0 && nv - j0 >= 16 && w == 16) { // a whole 16-slot chunk: two chains
                __m256 s[2];
                if (kv_type == E2H_TYPE_F16) at2_scores16(E2H_TYPE_F16, qr, k, base, w, hd, &s[0], &s[1]);
                else at2_scores16(E2H_TYPE_F32, qr, k, base, w, hd, &s[0], &s[1]);
                at2_put_scores(s[0], scale, 8, scores + j0, &mx);
                at2_put_scores(s[1], scale, 8, scores + j0 + 8, &mx);
                j0 += 8;
                continue;
            }
            __m256 a = _mm256_setzero_ps();
            for (int d = 0; d < hd; d++)
                a = _mm256_fmadd_ps(_mm256_set1_ps(qr[d]), ld8_kv(k, kv_type, base + (int64_t)d * w, cnt), a);
            at2_put_scores(a, scale, cnt, scores + j0, &mx);
        }
        // exp over a zero-padded multiple of 8, masked lanes dropped from the sum
        __m256 sum = _mm256_setzero_ps();
        for (int j = 0; j < nv; j += 8) {
            const int cnt = nv - j >= 8 ? 8 : nv - j;
            float tmp[8];
            memcpy(tmp, scores + j, cnt * sizeof(float));
            for (int u = cnt; u < 8; u++) tmp[u] = -INFINITY;
            __m256 p = exp256(_mm256_sub_ps(_mm256_loadu_ps(tmp), _mm256_set1_ps(mx)));
            _mm256_storeu_ps(tmp, p);
            memcpy(scores + j, tmp, cnt * sizeof(float));
            sum = _mm256_add_ps(sum, p);
        }
        m[r] = mx;
        l[r] = hsum8(sum);
        float *a = acc + (int64_t)r * hd;
        int d = 0;
        for (; d + 32 <= hd; d += 32) { // four chains at once where head_dim allows
            if (kv_type == E2H_TYPE_F16) at2_pv32(E2H_TYPE_F16, scores, nv, v, hd, d, a);
            else at2_pv32(E2H_TYPE_F32, scores, nv, v, hd, d, a);
        }
        for (; d < hd; d += 8) {
            const int cnt = hd - d >= 8 ? 8 : hd - d;
            __m256 av = _mm256_setzero_ps();
            for (int j = 0; j < nv; j++)
                av = _mm256_fmadd_ps(_mm256_set1_ps(scores[j]), ld8_kv(v, kv_type, (int64_t)j * hd + d, cnt), av);
            float tmp[8];
            _mm256_storeu_ps(tmp, av);
            memcpy(a + d, tmp, cnt * sizeof(float));
        }
    }
}

void kern_attn_phase_avx2(const e2h_attn_phase *ph) {
    kern_attn_phase_chunked(ph, kern_attn_chunk_avx2);
}

void kern_attention_avx2(e2h_pool *pool, float *out, const float *q, const e2h_attn_seq *seqs,
                        int n_seqs, int n_heads, const e2h_kv_layer_view *kv, float scale,
                        void *scratch) {
    kern_attention_run(kern_attn_phase_avx2, 1, pool, out, q, seqs, n_seqs, n_heads, kv, scale,
                      scratch);
}
