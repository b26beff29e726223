// kernels/x86/quant_avx512.c — quantized matmul with AVX-512 VNNI (vpdpbusd).
//
// Tiles of QR weight rows × NT tokens: each 64-element chunk of a weight row is unpacked
// once per tile into unsigned bytes and reused for every token of the tile; each chunk of
// activations is loaded once and reused for every row. The lane structure and the order of
// every float operation are those of the reference (kernels/quant.h), so results are
// bit-identical to e2h_qmatmul_ref and independent of n_tok, tiling and thread count.
#include <immintrin.h>

#include "kernels/quant.h"

#define QR 4           // weight rows per tile
#define TOK_BLOCK 64   // tokens whose activations stay hot in L2 while rows stream
#define AI static inline __attribute__((always_inline))

static const uint8_t k_zero_block[64] __attribute__((aligned(64))) = {0};

AI float q5_hsum(__m512 v) { // the fixed reduction order of e2h_q_reduce16
    __m256 a8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 a4 = _mm_add_ps(_mm256_castps256_ps128(a8), _mm256_extractf128_ps(a8, 1));
    __m128 a2 = _mm_add_ps(a4, _mm_movehl_ps(a4, a4));
    return _mm_cvtss_f32(_mm_add_ss(a2, _mm_shuffle_ps(a2, a2, 1)));
}

static inline uint16_t q5_ld16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static inline uint32_t q5_ld32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

// Two halves -> floats [h0, h1, 0, 0] (as a 512-bit register, upper lanes unused).
AI __m512 q5_two_halves(uint16_t h0, uint16_t h1) {
    __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)h0 | (uint32_t)h1 << 16)));
    return _mm512_castps128_ps512(f);
}

// ---------------------------------------------------------------- 32-element blocks

typedef struct {
    int wtype;
    size_t bsz;     // bytes per block
    int qoff;       // offset of qs in the block
    int hoff;       // offset of qh (q5_*) or -1
    int has_min;
    int off;        // unsigned weight offset subtracted through the activations (0 if none)
    __m512i lane_idx; // float lane -> block (0/1) of the chunk
} q32_desc;

// Unpacks chunk (blocks b0, b1) of a row into lane-order unsigned bytes; b1 may be the zero
// block. dw gets the per-lane block scale, mw the mins (lane 0: m0, lane 4: m1, else 0).
AI __m512i q32_unpack(const q32_desc *q, const uint8_t *b0, const uint8_t *b1, __m512 *dw,
                      __m512 *mw) {
    const __m512 d2 = q5_two_halves(q5_ld16(b0), q5_ld16(b1));
    *dw = _mm512_permutexvar_ps(q->lane_idx, d2);
    if (q->has_min) {
        const __m512 m2 = q5_two_halves(q5_ld16(b0 + 2), q5_ld16(b1 + 2));
        *mw = _mm512_maskz_permutexvar_ps(0x0011, _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0), m2);
    }
    if (q->wtype == E2H_TYPE_Q8_0) {
        __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(b0 + 2))),
                                       _mm256_loadu_si256((const __m256i *)(b1 + 2)), 1);
        return _mm512_xor_si512(w, _mm512_set1_epi8((char)0x80)); // signed -> unsigned + 128
    }
    const __m256i y = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(b0 + q->qoff))),
                                              _mm_loadu_si128((const __m128i *)(b1 + q->qoff)), 1);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(y, m4)),
                                   _mm256_and_si256(_mm256_srli_epi16(y, 4), m4), 1);
    if (q->hoff >= 0) { // 5th bits: element e of block h sits at byte 16h+e (e<16), 32+16h+e-16
        const uint64_t h0 = q5_ld32(b0 + q->hoff), h1 = q5_ld32(b1 + q->hoff);
        const __mmask64 k = (h0 & 0xFFFF) | (h1 & 0xFFFF) << 16 | (h0 >> 16) << 32 | (h1 >> 16) << 48;
        w = _mm512_mask_add_epi8(w, k, w, _mm512_set1_epi8(0x10));
    }
    return w;
}

// One tile: rows[QR] × toks[NT] over the whole row. out[r][t].
AI void q32_tile(const q32_desc *q, const uint8_t *const rows[QR], const uint8_t *const toks[],
                 int NT, int64_t n_in, float out[QR][4]) {
    const int64_t nb = n_in / 32, nb2 = e2h_qx32_nb2(n_in);
    __m512 acc[QR][4];
#pragma GCC unroll 4
    for (int r = 0; r < QR; r++)
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++) acc[r][t] = _mm512_setzero_ps();
    const __m512i offv = _mm512_set1_epi8((char)q->off);
    const __m512i minidx = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0);
    for (int64_t c = 0; c < nb2 / 2; c++) {
        __m512i w[QR];
        __m512 dw[QR], mw[QR];
        const int has_b1 = 2 * c + 1 < nb;
#pragma GCC unroll 4
        for (int r = 0; r < QR; r++) {
            const uint8_t *b0 = rows[r] + (2 * c) * q->bsz;
            const uint8_t *b1 = has_b1 ? b0 + q->bsz : k_zero_block;
            w[r] = q32_unpack(q, b0, b1, &dw[r], &mw[r]);
        }
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const uint8_t *tok = toks[t];
            const __m512i x = _mm512_loadu_si512((const void *)(tok + c * 64));
            const float *dxp = (const float *)(tok + nb2 * 32) + 2 * c;
            const __m512 dx = _mm512_permutexvar_ps(q->lane_idx, _mm512_castps128_ps512(
                                  _mm_castpd_ps(_mm_load_sd((const double *)dxp))));
            __m512i init = _mm512_setzero_si512();
            if (q->off) init = _mm512_sub_epi32(init, _mm512_dpbusd_epi32(_mm512_setzero_si512(), offv, x));
            __m512 sx = _mm512_setzero_ps();
            if (q->has_min)
                sx = _mm512_maskz_permutexvar_ps(0x0011, minidx, _mm512_castps128_ps512(_mm_castpd_ps(
                                                     _mm_load_sd((const double *)(dxp + nb2)))));
#pragma GCC unroll 4
            for (int r = 0; r < QR; r++) {
                const __m512i p = _mm512_dpbusd_epi32(init, w[r], x);
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw[r], dx), acc[r][t]);
                if (q->has_min) acc[r][t] = _mm512_mask3_fmadd_ps(mw[r], sx, acc[r][t], 0x0011);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < QR; r++)
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) out[r][t] = q5_hsum(acc[r][t]);
}

static void q32_desc_init(q32_desc *q, int wtype) {
    q->wtype = wtype;
    q->bsz = e2h_type_row_size(wtype, 32);
    q->has_min = wtype == E2H_TYPE_Q4_1 || wtype == E2H_TYPE_Q5_1;
    q->qoff = wtype == E2H_TYPE_Q4_0 ? 2 : wtype == E2H_TYPE_Q4_1 ? 4 : wtype == E2H_TYPE_Q5_0 ? 6 : 8;
    q->hoff = wtype == E2H_TYPE_Q5_0 ? 2 : wtype == E2H_TYPE_Q5_1 ? 4 : -1;
    q->off = wtype == E2H_TYPE_Q4_0 ? 8 : wtype == E2H_TYPE_Q5_0 ? 16 : wtype == E2H_TYPE_Q8_0 ? 128 : 0;
    q->lane_idx = wtype == E2H_TYPE_Q8_0
                      ? _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)
                      : _mm512_set_epi32(1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0);
}

// Instantiations with NT known at compile time.
#define Q32_TILE_FN(NTV)                                                                         \
    static void q32_tile_##NTV(const q32_desc *q, const uint8_t *const rows[QR],               \
                               const uint8_t *const toks[], int64_t n_in, float out[QR][4]) {  \
        q32_tile(q, rows, toks, NTV, n_in, out);                                               \
    }
Q32_TILE_FN(1)
Q32_TILE_FN(2)
Q32_TILE_FN(3)
Q32_TILE_FN(4)

// ---------------------------------------------------------------- K super-blocks

// Scales and mins (6-bit, 8 each) of a q4_K/q5_K block as bytes sc[0..7], mn[0..7].
static inline void qk_scales_mins(const uint8_t *s12, uint8_t sc[8], uint8_t mn[8]) {
    const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
    const uint32_t u0 = q5_ld32(s12), u1 = q5_ld32(s12 + 4), u2 = q5_ld32(s12 + 8);
    const uint32_t s_lo = u0 & m6, s_hi = (u2 & m4) | ((u0 >> 6) & m2) << 4;
    const uint32_t n_lo = u1 & m6, n_hi = ((u2 >> 4) & m4) | ((u1 >> 6) & m2) << 4;
    memcpy(sc, &s_lo, 4);
    memcpy(sc + 4, &s_hi, 4);
    memcpy(mn, &n_lo, 4);
    memcpy(mn + 4, &n_hi, 4);
}

typedef struct {
    __m512i w[4];   // unsigned levels of the 4 chunks
    __m512i sc[4];  // per-lane int32 scale of each chunk
    __m512i mins;   // int32 mins in lanes 0..7 (q4_K/q5_K)
    __m512 d, dmin; // broadcast
} qk_unpacked;

AI void qk_unpack(int wtype, const uint8_t *blk, qk_unpacked *u) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    if (wtype == E2H_TYPE_Q6_K) {
        const e2h_block_q6_K *b = (const e2h_block_q6_K *)blk;
        const __m512i s16 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)b->scales));
        const __m512i m4z = _mm512_set1_epi8(0x0F), m3 = _mm512_set1_epi8(0x03);
#pragma GCC unroll 2
        for (int n = 0; n < 2; n++) {
            const __m512i ql = _mm512_loadu_si512((const void *)(b->ql + 64 * n));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * n));
            const __m512i qh2 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), qh, 1);
            const __m512i ha = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh2, _mm512_set_epi16(
                2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)), m3), 4);
            const __m512i hb = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh2, _mm512_set_epi16(
                6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4)), m3), 4);
            u->w[2 * n] = _mm512_or_si512(_mm512_and_si512(ql, m4z), ha);
            u->w[2 * n + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4z), hb);
        }
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) { // lane k of chunk g: 16-element sub-block 4g + k/4
            const __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(4 * g),
                                                 _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0));
            u->sc[g] = _mm512_permutexvar_epi32(idx, s16);
        }
        u->d = _mm512_set1_ps(e2h_q_h2f(b->d));
        u->dmin = _mm512_setzero_ps();
        u->mins = _mm512_setzero_si512();
        return;
    }
    const e2h_block_q4_K *b4 = (const e2h_block_q4_K *)blk;
    const e2h_block_q5_K *b5 = (const e2h_block_q5_K *)blk;
    uint8_t sc[16], mn[16];
    qk_scales_mins(b4->scales, sc, mn);
    const __m512i s8 = _mm512_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)sc));
    u->mins = _mm512_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)mn)); // lanes 8..15 zero
    const uint8_t *qs = wtype == E2H_TYPE_Q4_K ? b4->qs : b5->qs;
    __m512i qh2 = _mm512_setzero_si512();
    if (wtype == E2H_TYPE_Q5_K) {
        const __m256i qh = _mm256_loadu_si256((const __m256i *)b5->qh);
        qh2 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), qh, 1);
    }
    const __m512i bit01 = _mm512_inserti64x4(_mm512_set1_epi8(1), _mm256_set1_epi8(2), 1);
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
        const __m256i y = _mm256_loadu_si256((const __m256i *)(qs + 32 * g));
        __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(y, m4)),
                                       _mm256_and_si256(_mm256_srli_epi16(y, 4), m4), 1);
        if (wtype == E2H_TYPE_Q5_K) { // bit 2g (low nibbles) / 2g+1 (high nibbles) of qh[l]
            const __mmask64 k = _mm512_test_epi8_mask(qh2, _mm512_slli_epi64(bit01, 2 * g));
            w = _mm512_mask_add_epi8(w, k, w, _mm512_set1_epi8(0x10));
        }
        u->w[g] = w;
        const __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(2 * g),
                                             _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0));
        u->sc[g] = _mm512_permutexvar_epi32(idx, s8);
    }
    u->d = _mm512_set1_ps(e2h_q_h2f(b4->d));
    u->dmin = _mm512_set1_ps(e2h_q_h2f(b4->dmin));
}

#define QK_NT_MAX 2

AI void qk_tile(int wtype, const uint8_t *const rows[QR], const uint8_t *const toks[], int NT,
                int64_t n_in, float out[QR][4]) {
    const size_t bsz = e2h_type_row_size(wtype, 256);
    const int is6 = wtype == E2H_TYPE_Q6_K;
    __m512 acc[QR][QK_NT_MAX];
#pragma GCC unroll 4
    for (int r = 0; r < QR; r++)
#pragma GCC unroll 2
        for (int t = 0; t < QK_NT_MAX; t++) acc[r][t] = _mm512_setzero_ps();
    const __m512i off32 = _mm512_set1_epi8(32);
    for (int64_t i = 0; i < n_in / 256; i++) {
        __m512i isum[QR][QK_NT_MAX];
#pragma GCC unroll 4
        for (int r = 0; r < QR; r++)
#pragma GCC unroll 2
            for (int t = 0; t < QK_NT_MAX; t++) isum[r][t] = _mm512_setzero_si512();
        qk_unpacked u[QR];
#pragma GCC unroll 4
        for (int r = 0; r < QR; r++) qk_unpack(wtype, rows[r] + i * bsz, &u[r]);
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) {
#pragma GCC unroll 2
            for (int t = 0; t < NT; t++) {
                const e2h_qx_k *xk = (const e2h_qx_k *)toks[t] + i;
                const __m512i x = _mm512_loadu_si512((const void *)(xk->q + 64 * g));
                __m512i init = _mm512_setzero_si512();
                if (is6) init = _mm512_sub_epi32(init, _mm512_dpbusd_epi32(_mm512_setzero_si512(), off32, x));
#pragma GCC unroll 4
                for (int r = 0; r < QR; r++) {
                    const __m512i p = _mm512_dpbusd_epi32(init, u[r].w[g], x);
                    isum[r][t] = _mm512_add_epi32(isum[r][t], _mm512_mullo_epi32(p, u[r].sc[g]));
                }
            }
        }
#pragma GCC unroll 2
        for (int t = 0; t < NT; t++) {
            const e2h_qx_k *xk = (const e2h_qx_k *)toks[t] + i;
            const __m512 dx = _mm512_set1_ps(xk->d);
            const __m512i bs = _mm512_maskz_loadu_epi32(0x00FF, xk->bsum32);
#pragma GCC unroll 4
            for (int r = 0; r < QR; r++) {
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[r][t]), _mm512_mul_ps(u[r].d, dx), acc[r][t]);
                if (!is6) {
                    const __m512 mp = _mm512_cvtepi32_ps(_mm512_mullo_epi32(u[r].mins, bs));
                    acc[r][t] = _mm512_mask3_fnmadd_ps(mp, _mm512_mul_ps(u[r].dmin, dx), acc[r][t], 0x00FF);
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < QR; r++)
#pragma GCC unroll 2
        for (int t = 0; t < NT; t++) out[r][t] = q5_hsum(acc[r][t]);
}

#define QK_TILE_FN(TYPE, NTV)                                                                   \
    static void qk_tile_##TYPE##_##NTV(const uint8_t *const rows[QR], const uint8_t *const toks[], \
                                       int64_t n_in, float out[QR][4]) {                        \
        qk_tile(E2H_TYPE_##TYPE, rows, toks, NTV, n_in, out);                                   \
    }
QK_TILE_FN(Q4_K, 1)
QK_TILE_FN(Q4_K, 2)
QK_TILE_FN(Q5_K, 1)
QK_TILE_FN(Q5_K, 2)
QK_TILE_FN(Q6_K, 1)
QK_TILE_FN(Q6_K, 2)

// ---------------------------------------------------------------- driver

typedef struct {
    float *y;
    int64_t ldy;
    const float *x;
    const uint8_t *w;
    int wtype;
    int64_t n_tok, n_in, n_out;
    uint8_t *scratch;
} q5_ctx;

static void q5_quantize_fn(void *p, int ith, int nth) {
    q5_ctx *c = p;
    int64_t t0, t1;
    e2h_pool_slice(c->n_tok, ith, nth, 1, &t0, &t1);
    e2h_qx_quantize(c->wtype, c->x, t0, t1, c->n_in, c->scratch);
}

static void q5_run_tile(const q5_ctx *c, const q32_desc *qd, const uint8_t *const rows[QR],
                        const uint8_t *const toks[], int nt, float out[QR][4]) {
    switch (c->wtype) {
    case E2H_TYPE_Q4_K: (nt == 1 ? qk_tile_Q4_K_1 : qk_tile_Q4_K_2)(rows, toks, c->n_in, out); break;
    case E2H_TYPE_Q5_K: (nt == 1 ? qk_tile_Q5_K_1 : qk_tile_Q5_K_2)(rows, toks, c->n_in, out); break;
    case E2H_TYPE_Q6_K: (nt == 1 ? qk_tile_Q6_K_1 : qk_tile_Q6_K_2)(rows, toks, c->n_in, out); break;
    default:
        switch (nt) {
        case 1: q32_tile_1(qd, rows, toks, c->n_in, out); break;
        case 2: q32_tile_2(qd, rows, toks, c->n_in, out); break;
        case 3: q32_tile_3(qd, rows, toks, c->n_in, out); break;
        default: q32_tile_4(qd, rows, toks, c->n_in, out); break;
        }
    }
}

static void q5_matmul_fn(void *p, int ith, int nth) {
    const q5_ctx *c = p;
    int64_t r0, r1;
    e2h_pool_slice(c->n_out, ith, nth, QR, &r0, &r1);
    if (r0 >= r1) return;
    q32_desc qd;
    q32_desc_init(&qd, c->wtype); // unused by the K types
    const int nt_max = e2h_quant_is_k(c->wtype) ? QK_NT_MAX : 4;
    const size_t rs = e2h_type_row_size(c->wtype, c->n_in);
    const int64_t ts = e2h_qx_token_stride(c->wtype, c->n_in);
    for (int64_t tb = 0; tb < c->n_tok; tb += TOK_BLOCK) {
        const int64_t te = tb + TOK_BLOCK < c->n_tok ? tb + TOK_BLOCK : c->n_tok;
        for (int64_t r = r0; r < r1; r += QR) {
            const uint8_t *rows[QR];
            for (int i = 0; i < QR; i++) // rows past the slice repeat the last one (not stored)
                rows[i] = c->w + (r + i < r1 ? r + i : r1 - 1) * rs;
            for (int64_t t = tb; t < te; t += nt_max) {
                const int nt = (int)(te - t < nt_max ? te - t : nt_max);
                const uint8_t *toks[4];
                for (int i = 0; i < nt; i++) toks[i] = c->scratch + (t + i) * ts;
                float out[QR][4];
                q5_run_tile(c, &qd, rows, toks, nt, out);
                for (int i = 0; i < QR && r + i < r1; i++)
                    for (int j = 0; j < nt; j++) c->y[(t + j) * c->ldy + r + i] = out[i][j];
            }
        }
    }
}

void e2h_qmatmul_avx512(e2h_pool *pool, float *y, int64_t ldy, const float *x, const void *w,
                        int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch) {
    if (e2h_qmatmul_scratch_size(wtype, n_tok, n_in) < 0 || n_tok <= 0 || n_out <= 0) return;
    q5_ctx c = {y, ldy, x, w, wtype, n_tok, n_in, n_out, scratch};
    e2h_pool_run(pool, q5_quantize_fn, &c);
    e2h_pool_run(pool, q5_matmul_fn, &c);
}
