// kernels/x86/quant_avx2.c — quantized matmul with AVX2 (maddubs + madd).
//
// The same 16-lane structure as the reference and the AVX-512 kernel (kernels/quant.h),
// held in two 256-bit halves: lo = lanes 0..7, hi = lanes 8..15. The integer lane sums are
// exact (maddubs pairs never saturate: |u8 * s8 * 2| <= 63*127*2 for 4-6 bit weights, and
// q8_0 uses |w| * sign(x, w) <= 128*127*2), so results are bit-identical to the ref.
// Tiles of QR2 rows × up to 2 tokens (16 ymm registers).
#include <immintrin.h>

#include "kernels/quant.h"

#define QR2 2
#define NT2 2
#define TOK_BLOCK2 64
#define AI static inline __attribute__((always_inline))

static const uint8_t k_zero_block2[64] __attribute__((aligned(64))) = {0};

AI float q2_hsum(__m256 lo, __m256 hi) { // the fixed order of kern_q_reduce16
    __m256 a8 = _mm256_add_ps(lo, hi);
    __m128 a4 = _mm_add_ps(_mm256_castps256_ps128(a8), _mm256_extractf128_ps(a8, 1));
    __m128 a2 = _mm_add_ps(a4, _mm_movehl_ps(a4, a4));
    return _mm_cvtss_f32(_mm_add_ss(a2, _mm_shuffle_ps(a2, a2, 1)));
}

static inline uint16_t q2_ld16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static inline uint32_t q2_ld32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

// Sum of 4 consecutive u8*s8 products per int32 lane (exact when pairs do not saturate).
AI __m256i q2_dot4(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

AI __m256 q2_two_halves(uint16_t h0, uint16_t h1) {
    return _mm256_castps128_ps256(_mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)h0 | (uint32_t)h1 << 16))));
}

// 32 mask bits -> bytes 0x10 where set.
AI __m256i q2_bits_to_0x10(uint32_t m) {
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)m), shuf);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

// ---------------------------------------------------------------- 32-element blocks

typedef struct {
    int wtype;
    size_t bsz;
    int qoff, hoff, has_min, off;
    __m256i lo_idx, hi_idx; // float lane -> block (0/1) of the chunk, per half
} q2_desc;

static void q2_desc_init(q2_desc *q, int wtype) {
    q->wtype = wtype;
    q->bsz = kern_type_row_size(wtype, 32);
    q->has_min = wtype == E2H_TYPE_Q4_1 || wtype == E2H_TYPE_Q5_1;
    q->qoff = wtype == E2H_TYPE_Q4_0 ? 2 : wtype == E2H_TYPE_Q4_1 ? 4 : wtype == E2H_TYPE_Q5_0 ? 6 : 8;
    q->hoff = wtype == E2H_TYPE_Q5_0 ? 2 : wtype == E2H_TYPE_Q5_1 ? 4 : -1;
    q->off = wtype == E2H_TYPE_Q4_0 ? 8 : wtype == E2H_TYPE_Q5_0 ? 16 : 0; // q8_0: sign trick
    if (wtype == E2H_TYPE_Q8_0) {
        q->lo_idx = _mm256_set1_epi32(0);
        q->hi_idx = _mm256_set1_epi32(1);
    } else {
        q->lo_idx = q->hi_idx = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    }
}

typedef struct {
    __m256i lo, hi;      // weights (u8, or s8 for q8_0)
    __m256 dlo, dhi, mw; // per-lane block scales; mins in lanes 0 and 4 of the lo half
} q2_wchunk;

AI void q2_unpack(const q2_desc *q, const uint8_t *b0, const uint8_t *b1, q2_wchunk *u) {
    const __m256 d2 = q2_two_halves(q2_ld16(b0), q2_ld16(b1));
    u->dlo = _mm256_permutevar8x32_ps(d2, q->lo_idx);
    u->dhi = _mm256_permutevar8x32_ps(d2, q->hi_idx);
    if (q->has_min) {
        const __m256 m2 = q2_two_halves(q2_ld16(b0 + 2), q2_ld16(b1 + 2)); // [m0, m1, 0, ...]
        u->mw = _mm256_permutevar8x32_ps(m2, _mm256_setr_epi32(0, 2, 2, 2, 1, 2, 2, 2));
    }
    if (q->wtype == E2H_TYPE_Q8_0) {
        u->lo = _mm256_loadu_si256((const __m256i *)(b0 + 2));
        u->hi = _mm256_loadu_si256((const __m256i *)(b1 + 2));
        return;
    }
    const __m256i y = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(b0 + q->qoff))),
                                              _mm_loadu_si128((const __m128i *)(b1 + q->qoff)), 1);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    u->lo = _mm256_and_si256(y, m4);
    u->hi = _mm256_and_si256(_mm256_srli_epi16(y, 4), m4);
    if (q->hoff >= 0) {
        const uint32_t h0 = q2_ld32(b0 + q->hoff), h1 = q2_ld32(b1 + q->hoff);
        u->lo = _mm256_or_si256(u->lo, q2_bits_to_0x10((h0 & 0xFFFF) | (h1 & 0xFFFF) << 16));
        u->hi = _mm256_or_si256(u->hi, q2_bits_to_0x10((h0 >> 16) | (h1 >> 16) << 16));
    }
}

AI __m256i q2_lane_dot(const q2_desc *q, __m256i w, __m256i x, __m256i ncorr) {
    if (q->wtype == E2H_TYPE_Q8_0) return q2_dot4(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
    return _mm256_add_epi32(q2_dot4(w, x), ncorr);
}

AI void q2_tile32(const q2_desc *q, const uint8_t *const rows[QR2], const uint8_t *const toks[],
                  int NT, int64_t n_in, float out[QR2][NT2]) {
    const int64_t nb = n_in / 32, nb2 = kern_qx32_nb2(n_in);
    __m256 alo[QR2][NT2], ahi[QR2][NT2];
    for (int r = 0; r < QR2; r++)
        for (int t = 0; t < NT2; t++) alo[r][t] = ahi[r][t] = _mm256_setzero_ps();
    const __m256i offv = _mm256_set1_epi8((char)q->off);
    for (int64_t c = 0; c < nb2 / 2; c++) {
        q2_wchunk u[QR2];
        const int has_b1 = 2 * c + 1 < nb;
#pragma GCC unroll 2
        for (int r = 0; r < QR2; r++) {
            const uint8_t *b0 = rows[r] + (2 * c) * q->bsz;
            q2_unpack(q, b0, has_b1 ? b0 + q->bsz : k_zero_block2, &u[r]);
        }
#pragma GCC unroll 2
        for (int t = 0; t < NT; t++) {
            const uint8_t *tok = toks[t];
            const __m256i xlo = _mm256_loadu_si256((const __m256i *)(tok + c * 64));
            const __m256i xhi = _mm256_loadu_si256((const __m256i *)(tok + c * 64 + 32));
            const float *dxp = (const float *)(tok + nb2 * 32) + 2 * c;
            const __m256 dx2 = _mm256_castps128_ps256(_mm_castpd_ps(_mm_load_sd((const double *)dxp)));
            const __m256 dxlo = _mm256_permutevar8x32_ps(dx2, q->lo_idx), dxhi = _mm256_permutevar8x32_ps(dx2, q->hi_idx);
            __m256i nclo = _mm256_setzero_si256(), nchi = nclo;
            if (q->off) {
                nclo = _mm256_sub_epi32(nclo, q2_dot4(offv, xlo));
                nchi = _mm256_sub_epi32(nchi, q2_dot4(offv, xhi));
            }
            __m256 sx = _mm256_setzero_ps();
            if (q->has_min)
                sx = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_castpd_ps(_mm_load_sd((const double *)(dxp + nb2)))),
                                              _mm256_setr_epi32(0, 2, 2, 2, 1, 2, 2, 2));
#pragma GCC unroll 2
            for (int r = 0; r < QR2; r++) {
                const __m256i plo = q2_lane_dot(q, u[r].lo, xlo, nclo), phi = q2_lane_dot(q, u[r].hi, xhi, nchi);
                alo[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(plo), _mm256_mul_ps(u[r].dlo, dxlo), alo[r][t]);
                ahi[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(phi), _mm256_mul_ps(u[r].dhi, dxhi), ahi[r][t]);
                if (q->has_min)
                    alo[r][t] = _mm256_blend_ps(alo[r][t], _mm256_fmadd_ps(u[r].mw, sx, alo[r][t]), 0x11);
            }
        }
    }
    for (int r = 0; r < QR2; r++)
        for (int t = 0; t < NT; t++) out[r][t] = q2_hsum(alo[r][t], ahi[r][t]);
}

static void q2_tile32_1(const q2_desc *q, const uint8_t *const rows[QR2], const uint8_t *const toks[],
                        int64_t n_in, float out[QR2][NT2]) {
    q2_tile32(q, rows, toks, 1, n_in, out);
}
static void q2_tile32_2(const q2_desc *q, const uint8_t *const rows[QR2], const uint8_t *const toks[],
                        int64_t n_in, float out[QR2][NT2]) {
    q2_tile32(q, rows, toks, 2, n_in, out);
}

// ---------------------------------------------------------------- K super-blocks

static inline void q2k_scales_mins(const uint8_t *s12, uint8_t sc[8], uint8_t mn[8]) {
    const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
    const uint32_t u0 = q2_ld32(s12), u1 = q2_ld32(s12 + 4), u2 = q2_ld32(s12 + 8);
    const uint32_t s_lo = u0 & m6, s_hi = (u2 & m4) | ((u0 >> 6) & m2) << 4;
    const uint32_t n_lo = u1 & m6, n_hi = ((u2 >> 4) & m4) | ((u1 >> 6) & m2) << 4;
    memcpy(sc, &s_lo, 4);
    memcpy(sc + 4, &s_hi, 4);
    memcpy(mn, &n_lo, 4);
    memcpy(mn + 4, &n_hi, 4);
}

// Weights of chunk g (64 elements) of a K super-block as lo/hi unsigned bytes, with the
// per-lane int32 scales.
AI void q2k_chunk(int wtype, const uint8_t *blk, int g, __m256i *wlo, __m256i *whi, __m256i *slo,
                  __m256i *shi) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    if (wtype == E2H_TYPE_Q6_K) {
        const e2h_block_q6_K *b = (const e2h_block_q6_K *)blk;
        const int n = g / 2, sh = (g % 2) * 4; // group B of a half uses the high nibbles and qh bits 4..7
        const __m256i ql0 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * n));
        const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * n + 32));
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * n));
        const __m256i m3 = _mm256_set1_epi8(0x03);
        const __m256i h_lo = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, sh), m3), 4);
        const __m256i h_hi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, sh + 2), m3), 4);
        *wlo = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, sh), m4), h_lo);
        *whi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, sh), m4), h_hi);
        const __m256i s8 = _mm256_cvtepi8_epi32(_mm_cvtsi32_si128((int)q2_ld32((const uint8_t *)b->scales + 4 * g)));
        *slo = _mm256_permutevar8x32_epi32(s8, _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
        *shi = _mm256_permutevar8x32_epi32(s8, _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3));
        return;
    }
    const e2h_block_q4_K *b4 = (const e2h_block_q4_K *)blk;
    const e2h_block_q5_K *b5 = (const e2h_block_q5_K *)blk;
    uint8_t sc[8], mn[8];
    q2k_scales_mins(b4->scales, sc, mn);
    const uint8_t *qs = wtype == E2H_TYPE_Q4_K ? b4->qs : b5->qs;
    const __m256i y = _mm256_loadu_si256((const __m256i *)(qs + 32 * g));
    *wlo = _mm256_and_si256(y, m4);
    *whi = _mm256_and_si256(_mm256_srli_epi16(y, 4), m4);
    if (wtype == E2H_TYPE_Q5_K) {
        const __m256i qh = _mm256_loadu_si256((const __m256i *)b5->qh), one = _mm256_set1_epi8(1);
        *wlo = _mm256_or_si256(*wlo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * g), one), 4));
        *whi = _mm256_or_si256(*whi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * g + 1), one), 4));
    }
    *slo = _mm256_set1_epi32(sc[2 * g]);
    *shi = _mm256_set1_epi32(sc[2 * g + 1]);
}

static void q2_tilek(int wtype, const uint8_t *const rows[QR2], const uint8_t *tok, int64_t n_in,
                     float out[QR2]) {
    const size_t bsz = kern_type_row_size(wtype, 256);
    const int is6 = wtype == E2H_TYPE_Q6_K;
    const __m256i off32 = _mm256_set1_epi8(32);
    __m256 alo[QR2], ahi[QR2];
    for (int r = 0; r < QR2; r++) alo[r] = ahi[r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n_in / 256; i++) {
        const e2h_qx_k *xk = (const e2h_qx_k *)tok + i;
        __m256i ilo[QR2], ihi[QR2];
        for (int r = 0; r < QR2; r++) ilo[r] = ihi[r] = _mm256_setzero_si256();
        for (int g = 0; g < 4; g++) {
            const __m256i xlo = _mm256_loadu_si256((const __m256i *)(xk->q + 64 * g));
            const __m256i xhi = _mm256_loadu_si256((const __m256i *)(xk->q + 64 * g + 32));
            __m256i nclo = _mm256_setzero_si256(), nchi = nclo;
            if (is6) {
                nclo = _mm256_sub_epi32(nclo, q2_dot4(off32, xlo));
                nchi = _mm256_sub_epi32(nchi, q2_dot4(off32, xhi));
            }
#pragma GCC unroll 2
            for (int r = 0; r < QR2; r++) {
                __m256i wlo, whi, slo, shi;
                q2k_chunk(wtype, rows[r] + i * bsz, g, &wlo, &whi, &slo, &shi);
                ilo[r] = _mm256_add_epi32(ilo[r], _mm256_mullo_epi32(_mm256_add_epi32(q2_dot4(wlo, xlo), nclo), slo));
                ihi[r] = _mm256_add_epi32(ihi[r], _mm256_mullo_epi32(_mm256_add_epi32(q2_dot4(whi, xhi), nchi), shi));
            }
        }
        const __m256 dx = _mm256_set1_ps(xk->d);
#pragma GCC unroll 2
        for (int r = 0; r < QR2; r++) {
            const uint8_t *blk = rows[r] + i * bsz;
            const __m256 dd = _mm256_mul_ps(_mm256_set1_ps(kern_q_h2f(is6 ? ((const e2h_block_q6_K *)blk)->d
                                                                           : ((const e2h_block_q4_K *)blk)->d)), dx);
            alo[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ilo[r]), dd, alo[r]);
            ahi[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ihi[r]), dd, ahi[r]);
            if (!is6) {
                uint8_t sc[8], mn[8];
                q2k_scales_mins(((const e2h_block_q4_K *)blk)->scales, sc, mn);
                const __m256i mins = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)mn));
                const __m256i bs = _mm256_loadu_si256((const __m256i *)xk->bsum32);
                const __m256 dm = _mm256_mul_ps(_mm256_set1_ps(kern_q_h2f(((const e2h_block_q4_K *)blk)->dmin)), dx);
                alo[r] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(_mm256_mullo_epi32(mins, bs)), dm, alo[r]);
            }
        }
    }
    for (int r = 0; r < QR2; r++) out[r] = q2_hsum(alo[r], ahi[r]);
}

// ---------------------------------------------------------------- driver

typedef e2h_qmm_args q2_ctx;

static void q2_matmul_fn(void *p, int ith, int nth) {
    const q2_ctx *c = p;
    int64_t r0, r1;
    pool_slice(c->n_out, ith, nth, 4, &r0, &r1);
    if (r0 >= r1) return;
    q2_desc qd;
    q2_desc_init(&qd, c->wtype); // unused by the K types
    const int is_k = kern_quant_is_k(c->wtype), nt_max = is_k ? 1 : NT2;
    const size_t rs = kern_type_row_size(c->wtype, c->n_in);
    const int64_t ts = kern_qx_token_stride(c->wtype, c->n_in);
    for (int64_t tb = 0; tb < c->n_tok; tb += TOK_BLOCK2) {
        const int64_t te = tb + TOK_BLOCK2 < c->n_tok ? tb + TOK_BLOCK2 : c->n_tok;
        for (int64_t r = r0; r < r1; r += QR2) {
            const uint8_t *rows[QR2];
            for (int i = 0; i < QR2; i++) rows[i] = c->w + (r + i < r1 ? r + i : r1 - 1) * rs;
            for (int64_t t = tb; t < te; t += nt_max) {
                const int nt = (int)(te - t < nt_max ? te - t : nt_max);
                const uint8_t *toks[NT2];
                for (int i = 0; i < nt; i++) toks[i] = c->scratch + (t + i) * ts;
                float out[QR2][NT2];
                if (is_k) {
                    float o1[QR2];
                    q2_tilek(c->wtype, rows, toks[0], c->n_in, o1);
                    for (int i = 0; i < QR2; i++) out[i][0] = o1[i];
                } else if (nt == 1) {
                    q2_tile32_1(&qd, rows, toks, c->n_in, out);
                } else {
                    q2_tile32_2(&qd, rows, toks, c->n_in, out);
                }
                for (int i = 0; i < QR2 && r + i < r1; i++)
                    for (int j = 0; j < nt; j++) c->y[(t + j) * c->ldy + r + i] = out[i][j];
            }
        }
    }
}

void kern_qmatmul_avx2(e2h_pool *pool, float *y, int64_t ldy, const float *x, const void *w,
                      int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch) {
    if (kern_qmatmul_scratch_size(wtype, n_tok, n_in) < 0 || n_tok <= 0 || n_out <= 0) return;
    q2_ctx c = {y, ldy, x, w, wtype, n_tok, n_in, n_out, scratch};
    // Few tokens (decode): quantizing here costs less than a second pool wake-up.
    if (n_tok < 16 || pool_size(pool) == 1) kern_qx_quantize(wtype, x, 0, n_tok, n_in, scratch);
    else pool_run(pool, kern_qmm_quantize_fn, &c);
    pool_run(pool, q2_matmul_fn, &c);
}
