// kernels/x86/quant_avx512.c — quantized matmul with AVX-512 VNNI (vpdpbusd).
//
// Tiles of QR weight rows × NT tokens: each 64-element chunk of a weight row is unpacked
// once per tile into unsigned bytes and reused for every token of the tile; each chunk of
// activations is loaded once and reused for every row. The lane structure and the order of
// every float operation are those of the reference (kernels/quant.h), so results are
// bit-identical to kern_qmatmul_ref and independent of n_tok, tiling and thread count.
//
// Decode (n_tok = 1) streams the weights: 6- or 8-row tiles, block scales read with one load
// and a word permute per chunk (no scalar half handling), software prefetch ahead of the
// rows, and activations quantized with SIMD on the calling thread so that a call is a single
// parallel region. Prefill uses 4-row × 4-token tiles (K types: 4 × 2), one row's K scales
// decoded at a time so that nothing spills.
#include <immintrin.h>

#include "kernels/quant.h"

#define AI static inline __attribute__((always_inline))

// Weight rows per decode tile (n_tok = 1): 8 for the 4/5-bit 32-blocks, 6 for q8_0 and the
// K types (measured from DRAM: q4_K 24 vs 13 GB/s, q8_0 24 vs 21 with 6 rows; q4_1 18 vs 16
// with 8).
#define QR_DEC 8        // the largest
#define QR_DEC_Q4 8
#define QR_DEC_Q8 6
#define QR_DEC_K 6
#ifndef QR_PRE
#define QR_PRE 4        // weight rows per prefill tile
#endif
#ifndef NT_PRE
#define NT_PRE 4        // tokens per prefill tile (at most 4; 6 spills: measured 2x slower)
#endif
#define QR_MAX (QR_DEC > QR_PRE ? QR_DEC : QR_PRE)
#define TOK_BLOCK 64    // tokens whose activations stay hot in L2 while rows stream
// Decode prefetch distance (bytes ahead of each row's current chunk). Short rows (a tile of
// at most 8 KiB, as in SmolLM2): two tiles ahead, at most 6 KiB, i.e. a steady stream over
// the contiguous rows (SmolLM2 decode matmuls 6.7 -> 4.5 ms/token on 1 thread). Long rows:
// 768 bytes ahead in the row (6 KiB with 6-8 rows in flight overflows L1: q4_0 4096-wide
// 16 -> 13 GB/s).
#define PF_TILE_MAX 8192
#define PF_FAR 6144
#define PF_ROW 768
#define QUANT_INLINE_TOK 16 // below this many tokens the caller quantizes alone (one region)

AI float q5_hsum(__m512 v) { // the fixed reduction order of kern_q_reduce16
    __m256 a8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 a4 = _mm_add_ps(_mm256_castps256_ps128(a8), _mm256_extractf128_ps(a8, 1));
    __m128 a2 = _mm_add_ps(a4, _mm_movehl_ps(a4, a4));
    return _mm_cvtss_f32(_mm_add_ss(a2, _mm_shuffle_ps(a2, a2, 1)));
}

// o[i] = kern_q_reduce16(a[i]) for i < 16, the same adds in the same pairs, but 16 reductions
// share each shuffle+add: 46 instructions instead of 16 x 7.
AI void q5_hsum16(const __m512 a[16], float o[16]) {
    __m512 p[8], q[4], r[2];
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) // [s8(a[2j]) | s8(a[2j+1])], s8[i] = a[i] + a[i+8]
        p[j] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * j], a[2 * j + 1], 0x44),
                             _mm512_shuffle_f32x4(a[2 * j], a[2 * j + 1], 0xEE));
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) // 128-bit lane L: s4(a[4k + L]), s4[i] = s8[i] + s8[i+4]
        q[k] = _mm512_add_ps(_mm512_shuffle_f32x4(p[2 * k], p[2 * k + 1], 0x88),
                             _mm512_shuffle_f32x4(p[2 * k], p[2 * k + 1], 0xDD));
#pragma GCC unroll 2
    for (int m = 0; m < 2; m++) // lane L: [s2(a[8m + L]), s2(a[8m + 4 + L])], s2[i] = s4[i] + s4[i+2]
        r[m] = _mm512_add_ps(_mm512_shuffle_ps(q[2 * m], q[2 * m + 1], 0x44),
                             _mm512_shuffle_ps(q[2 * m], q[2 * m + 1], 0xEE));
    // lane L: [a[L], a[4 + L], a[8 + L], a[12 + L]] reduced: s = s2[0] + s2[1]
    const __m512 f = _mm512_add_ps(_mm512_shuffle_ps(r[0], r[1], 0x88), _mm512_shuffle_ps(r[0], r[1], 0xDD));
    // element 4L + j holds a[4j + L]: transpose back
    const __m512i idx = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    _mm512_storeu_ps(o, _mm512_permutexvar_ps(idx, f));
}

// out[r][t] = reduce16(acc[r][t]) for a QR × NT tile (QR * NT <= 16). Decode tiles (NT = 1)
// reduce one by one: measured faster there (fewer, independent reductions).
#define Q5_TILE_HSUM(QR, NT, acc, out)                                                          \
    if ((NT) == 1) {                                                                            \
        _Pragma("GCC unroll 8") for (int r_ = 0; r_ < (QR); r_++) (out)[r_][0] = q5_hsum((acc)[r_][0]); \
    } else do {                                                                                 \
        __m512 a16_[16];                                                                        \
        float o16_[16];                                                                         \
        _Pragma("GCC unroll 16") for (int i_ = 0; i_ < 16; i_++) a16_[i_] = _mm512_setzero_ps(); \
        _Pragma("GCC unroll 8") for (int r_ = 0; r_ < (QR); r_++)                               \
            _Pragma("GCC unroll 4") for (int t_ = 0; t_ < (NT); t_++) a16_[r_ * (NT) + t_] = (acc)[r_][t_]; \
        q5_hsum16(a16_, o16_);                                                                  \
        _Pragma("GCC unroll 8") for (int r_ = 0; r_ < (QR); r_++)                               \
            _Pragma("GCC unroll 4") for (int t_ = 0; t_ < (NT); t_++) (out)[r_][t_] = o16_[r_ * (NT) + t_]; \
    } while (0)

static inline uint32_t q5_ld32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

// ---------------------------------------------------------------- activation quantization
// SIMD twins of kern_qx_quantize (kernels/ref/quant.c): the same float operations in the same
// order per element (max is order-free on non-NaN values; NaN never wins in either; halves
// rounded by F16C, to nearest even as kern_q_f2h), so the scratch bytes are identical for
// every input.

static void qx32_token_avx512(int wtype, const float *x, int64_t n_in, uint8_t *tok) {
    const int64_t nb = n_in / 32, nb2 = kern_qx32_nb2(n_in);
    const int64_t stride = kern_qx_token_stride(wtype, n_in);
    float *dv = (float *)(tok + nb2 * 32), *sx = dv + nb2;
    const int q8 = wtype == E2H_TYPE_Q8_0;
    const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    for (int64_t b = 0; b < nb2; b++) {
        uint8_t *qc = tok + (b / 2) * 64;
        const int h = (int)(b & 1);
        const int o0 = q8 ? 32 * h : 16 * h, o1 = q8 ? 32 * h + 16 : 32 + 16 * h; // lane order
        if (b >= nb) { // padding block of an odd count
            memset(qc + o0, 0, 16);
            memset(qc + o1, 0, 16);
            dv[b] = sx[b] = 0.0f;
            continue;
        }
        const __m512 v0 = _mm512_loadu_ps(x + 32 * b), v1 = _mm512_loadu_ps(x + 32 * b + 16);
        __m512 a = _mm512_max_ps(_mm512_abs_ps(v0), _mm512_setzero_ps()); // NaN -> 2nd operand
        a = _mm512_max_ps(_mm512_abs_ps(v1), a);
        const float amax = _mm512_reduce_max_ps(a);
        const float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
        const __m512 idv = _mm512_set1_ps(id);
        const __m512i q0 = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v0, idv), lo), hi));
        const __m512i q1 = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v1, idv), lo), hi));
        _mm_storeu_si128((__m128i *)(qc + o0), _mm512_cvtepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(qc + o1), _mm512_cvtepi32_epi8(q1));
        const int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
        dv[b] = _cvtsh_ss(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT)); // as half (llama.cpp)
        sx[b] = _cvtsh_ss(_cvtss_sh(d * (float)sum, _MM_FROUND_TO_NEAREST_INT));
    }
    memset(tok + nb2 * 40, 0, (size_t)(stride - nb2 * 40));
}

// ggml's Q8_K as quant_q8_K_block: d = -max/127 with max the first value of largest |x|,
// q = nearest_int(x * iscale) through the same float trick, bit for bit.
static void qxk_token_avx512(const float *x, int64_t n_in, e2h_qx_k *blk) {
    for (int64_t i = 0; i < n_in / 256; i++) {
        const float *xb = x + i * 256;
        e2h_qx_k *o = &blk[i];
        memset(o, 0, sizeof *o);
        __m512 a = _mm512_setzero_ps();
        for (int j = 0; j < 16; j++) a = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(xb + 16 * j)), a);
        const float amax = _mm512_reduce_max_ps(a);
        if (!amax) continue;
        float mx = 0.0f;
        for (int j = 0; j < 16; j++) {
            const __mmask16 m = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(xb + 16 * j)),
                                                   _mm512_set1_ps(amax), _CMP_EQ_OQ);
            if (m) {
                mx = xb[16 * j + __builtin_ctz(m)];
                break;
            }
        }
        const float iscale = -127.f / mx;
        const __m512 isv = _mm512_set1_ps(iscale), magic = _mm512_set1_ps(12582912.f);
        const __m512i mant = _mm512_set1_epi32(0x007fffff), bias = _mm512_set1_epi32(0x00400000);
        const __m512i qmin = _mm512_set1_epi32(-128), qmax = _mm512_set1_epi32(127);
        for (int j = 0; j < 16; j++) {
            const __m512 f = _mm512_add_ps(_mm512_mul_ps(isv, _mm512_loadu_ps(xb + 16 * j)), magic);
            __m512i q = _mm512_sub_epi32(_mm512_and_si512(_mm512_castps_si512(f), mant), bias);
            q = _mm512_max_epi32(qmin, _mm512_min_epi32(qmax, q));
            _mm_storeu_si128((__m128i *)(o->q + 16 * j), _mm512_cvtepi32_epi8(q));
        }
        for (int j = 0; j < 8; j++) {
            const __m512i q0 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(o->q + 32 * j)));
            const __m512i q1 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(o->q + 32 * j + 16)));
            o->bsum32[j] = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
        }
        o->d = 1 / iscale;
    }
}

void kern_qx_quantize_avx512(int wtype, const float *x, int64_t t0, int64_t t1, int64_t n_in,
                            void *scratch) {
    const int64_t stride = kern_qx_token_stride(wtype, n_in);
    for (int64_t t = t0; t < t1; t++) {
        uint8_t *tok = (uint8_t *)scratch + t * stride;
        if (kern_quant_is_k(wtype)) qxk_token_avx512(x + t * n_in, n_in, (e2h_qx_k *)tok);
        else qx32_token_avx512(wtype, x + t * n_in, n_in, tok);
    }
}

// ---------------------------------------------------------------- 32-element blocks
// Compile-time traits (wt is a constant in every instantiation).

AI int q32_bsz(int wt) {
    return wt == E2H_TYPE_Q4_0 ? 18 : wt == E2H_TYPE_Q4_1 ? 20 : wt == E2H_TYPE_Q5_0 ? 22 : wt == E2H_TYPE_Q5_1 ? 24 : 34;
}
AI int q32_qoff(int wt) {
    return wt == E2H_TYPE_Q4_0 ? 2 : wt == E2H_TYPE_Q4_1 ? 4 : wt == E2H_TYPE_Q5_0 ? 6 : wt == E2H_TYPE_Q5_1 ? 8 : 2;
}
AI int q32_hoff(int wt) { return wt == E2H_TYPE_Q5_0 ? 2 : wt == E2H_TYPE_Q5_1 ? 4 : -1; }
AI int q32_has_min(int wt) { return wt == E2H_TYPE_Q4_1 || wt == E2H_TYPE_Q5_1; }
// unsigned weight offset, subtracted through the activations (0: weights already unsigned)
AI int q32_off(int wt) {
    return wt == E2H_TYPE_Q4_0 ? 8 : wt == E2H_TYPE_Q5_0 ? 16 : wt == E2H_TYPE_Q8_0 ? 128 : 0;
}
// float lane -> block (0/1) of the chunk: nibble order for q4/q5, halves for q8_0
AI __m512i q32_lane_block(int wt) {
    return wt == E2H_TYPE_Q8_0 ? _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)
                               : _mm512_set_epi32(1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0);
}

// Per-lane block scale d (as float) of the chunk whose two blocks start at b0 (b1 = b0 + bsz):
// one load of both headers and a word permute into lane order, then one f16 -> f32.
AI __m512 q32_dw(int wt, const uint8_t *b0) {
    const int w1 = q32_bsz(wt) / 2; // word index of block 1's d
    if (wt == E2H_TYPE_Q8_0) {       // b1's d is at byte 34: needs a 64-byte view (68 bytes exist)
        const __m512i idx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                             w1, w1, w1, w1, w1, w1, w1, w1, 0, 0, 0, 0, 0, 0, 0, 0);
        const __m512i h = _mm512_permutexvar_epi16(idx, _mm512_loadu_si512((const void *)b0));
        return _mm512_cvtph_ps(_mm512_castsi512_si256(h));
    }
    const __m256i idx = _mm256_set_epi16(w1, w1, w1, w1, 0, 0, 0, 0, w1, w1, w1, w1, 0, 0, 0, 0);
    return _mm512_cvtph_ps(_mm256_permutexvar_epi16(idx, _mm256_loadu_si256((const __m256i *)b0)));
}

// Mins of q*_1 in lanes 0 (block 0) and 4 (block 1); lanes 8..15 undefined (only lanes 0
// and 4 are ever used), so the conversion is a cheap 8-lane one.
AI __m512 q32_mw(int wt, const uint8_t *b0) {
    const int w1 = q32_bsz(wt) / 2 + 1;
    const __m256i idx = _mm256_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, w1, 0, 0, 0, 1);
    const __m256i h = _mm256_maskz_permutexvar_epi16(0x0011, idx, _mm256_loadu_si256((const __m256i *)b0));
    return _mm512_castps256_ps512(_mm256_cvtph_ps(_mm256_castsi256_si128(h)));
}

// Unsigned levels of chunk (b0, b1) in lane order.
AI __m512i q32_w(int wt, const uint8_t *b0, const uint8_t *b1) {
    if (wt == E2H_TYPE_Q8_0) {
        const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(b0 + 2))),
                                             _mm256_loadu_si256((const __m256i *)(b1 + 2)), 1);
        return _mm512_xor_si512(w, _mm512_set1_epi8((char)0x80)); // signed -> unsigned + 128
    }
    // [b0 | b1 | b0 | b1] (16 bytes each), upper half shifted by 4, masked: 4 instructions
    // (the core is bound by instruction count more than by vector throughput)
    const int qoff = q32_qoff(wt);
    __m512i w = _mm512_broadcast_i64x2(_mm_loadu_si128((const __m128i *)(b0 + qoff)));
    w = _mm512_mask_broadcast_i64x2(w, 0xCC, _mm_loadu_si128((const __m128i *)(b1 + qoff)));
    w = _mm512_and_si512(_mm512_mask_srli_epi16(w, 0xFFFF0000u, w, 4), _mm512_set1_epi8(0x0F));
    if (q32_hoff(wt) >= 0) { // 5th bits: element e of block h sits at byte 16h+e (e<16), 32+16h+e-16
        const uint64_t h0 = q5_ld32(b0 + q32_hoff(wt)), h1 = q5_ld32(b1 + q32_hoff(wt));
        const __mmask64 k = (h0 & 0xFFFF) | (h1 & 0xFFFF) << 16 | (h0 >> 16) << 32 | (h1 >> 16) << 48;
        w = _mm512_mask_add_epi8(w, k, w, _mm512_set1_epi8(0x10));
    }
    return w;
}

// Token-side values of one chunk: activations, per-lane dx, offset init, per-lane sx.
typedef struct {
    __m512i x, init;
    __m512 dx, sx;
} q32_tokc;

AI void q32_tok_chunk(int wt, const uint8_t *tok, int64_t nb2, int64_t c, q32_tokc *o) {
    o->x = _mm512_loadu_si512((const void *)(tok + c * 64));
    const float *dxp = (const float *)(tok + nb2 * 32) + 2 * c;
    o->dx = _mm512_permutexvar_ps(q32_lane_block(wt), _mm512_castps128_ps512(_mm_castpd_ps(_mm_load_sd((const double *)dxp))));
    o->init = _mm512_setzero_si512();
    if (q32_off(wt))
        o->init = _mm512_sub_epi32(o->init, _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)q32_off(wt)), o->x));
    o->sx = _mm512_setzero_ps();
    if (q32_has_min(wt))
        o->sx = _mm512_maskz_permutexvar_ps(0x0011, _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0),
                                            _mm512_castps128_ps512(_mm_castpd_ps(_mm_load_sd((const double *)(dxp + nb2)))));
}

// acc[r][t] += chunk c of row r · token t, in the reference's order. blk[r] is the chunk's
// first block; its second block follows at + bsz.
AI void q32_chunk(int wt, int QR, int NT, const uint8_t *const blk[], const q32_tokc *tc,
                  __m512 acc[][NT_PRE], int64_t pf) {
#pragma GCC unroll 8
    for (int r = 0; r < QR; r++) {
        const uint8_t *b0 = blk[r];
        if (pf) _mm_prefetch((const char *)(b0 + pf), _MM_HINT_T0);
        const __m512 dw = q32_dw(wt, b0);
        const __m512i w = q32_w(wt, b0, b0 + q32_bsz(wt));
        __m512 mw = _mm512_setzero_ps();
        if (q32_has_min(wt)) mw = q32_mw(wt, b0);
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const __m512i p = _mm512_dpbusd_epi32(tc[t].init, w, tc[t].x);
            acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw, tc[t].dx), acc[r][t]);
            if (q32_has_min(wt)) acc[r][t] = _mm512_mask3_fmadd_ps(mw, tc[t].sx, acc[r][t], 0x0011);
        }
    }
}

// One tile: rows[QR] × toks[NT] over the whole row. out[r][t].
AI void q32_tile(int wt, int QR, int NT, const uint8_t *const rows[], const uint8_t *const toks[],
                 int64_t n_in, float out[][NT_PRE], int64_t pf) {
    const int64_t nb = n_in / 32, nb2 = kern_qx32_nb2(n_in), bsz = q32_bsz(wt);
    __m512 acc[QR_MAX][NT_PRE];
#pragma GCC unroll 8
    for (int r = 0; r < QR; r++)
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) acc[r][t] = _mm512_setzero_ps();
    q32_tokc tc[NT_PRE];
    const uint8_t *blk[QR_MAX];
    for (int64_t c = 0; c < nb / 2; c++) { // chunks with both blocks
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) q32_tok_chunk(wt, toks[t], nb2, c, &tc[t]);
#pragma GCC unroll 8
        for (int r = 0; r < QR; r++) blk[r] = rows[r] + 2 * c * bsz;
        q32_chunk(wt, QR, NT, blk, tc, acc, pf);
    }
    if (nb & 1) { // last chunk: block nb-1 and a zero block, copied so that loads stay in bounds
        uint8_t buf[QR_MAX][128] __attribute__((aligned(64)));
#pragma GCC unroll 4
        for (int t = 0; t < NT; t++) q32_tok_chunk(wt, toks[t], nb2, nb / 2, &tc[t]);
        for (int r = 0; r < QR; r++) {
            memset(buf[r], 0, sizeof buf[r]);
            memcpy(buf[r], rows[r] + (nb - 1) * bsz, (size_t)bsz);
            blk[r] = buf[r];
        }
        q32_chunk(wt, QR, NT, blk, tc, acc, 0);
    }
    Q5_TILE_HSUM(QR, NT, acc, out);
}

AI int q32_dec_rows(int wt) { return wt == E2H_TYPE_Q8_0 ? QR_DEC_Q8 : QR_DEC_Q4; }

typedef void (*q5_tile_fn)(const uint8_t *const rows[], const uint8_t *const toks[], int64_t n_in,
                           float out[][NT_PRE], int64_t pf); // pf: decode prefetch distance

// Instantiations: per type, the decode tile and prefill tiles of 1..4 tokens.
#define Q32_DEC_FN(TYPE)                                                                        \
    static void q32_dtile_##TYPE(const uint8_t *const rows[], const uint8_t *const toks[], int64_t n_in, \
                                 float out[][NT_PRE], int64_t pf) {                             \
        q32_tile(E2H_TYPE_##TYPE, q32_dec_rows(E2H_TYPE_##TYPE), 1, rows, toks, n_in, out, pf); \
    }
#define Q32_FN(TYPE, QRV, NTV)                                                                  \
    static void q32_tile_##TYPE##_##QRV##_##NTV(const uint8_t *const rows[], const uint8_t *const toks[], \
                                                int64_t n_in, float out[][NT_PRE], int64_t pf) { \
        q32_tile(E2H_TYPE_##TYPE, QRV ? q32_dec_rows(E2H_TYPE_##TYPE) : QR_PRE, NTV <= NT_PRE ? NTV : NT_PRE, \
                 rows, toks, n_in, out, pf);                                                    \
    }
#define Q32_FNS(TYPE)                                                                        \
    Q32_DEC_FN(TYPE) Q32_FN(TYPE, 0, 1) Q32_FN(TYPE, 0, 2) Q32_FN(TYPE, 0, 3) Q32_FN(TYPE, 0, 4)
Q32_FNS(Q4_0)
Q32_FNS(Q4_1)
Q32_FNS(Q5_0)
Q32_FNS(Q5_1)
Q32_FNS(Q8_0)

// ---------------------------------------------------------------- K super-blocks

// Scales and mins (6-bit, 8 each) of a q4_K/q5_K block as int32 lanes 0..7 of two vectors.
AI void qk_scales_mins(const uint8_t *s12, __m512i *sc, __m512i *mn) {
    const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
    const uint32_t u0 = q5_ld32(s12), u1 = q5_ld32(s12 + 4), u2 = q5_ld32(s12 + 8);
    const uint64_t s = (u0 & m6) | (uint64_t)((u2 & m4) | ((u0 >> 6) & m2) << 4) << 32;
    const uint64_t n = (u1 & m6) | (uint64_t)(((u2 >> 4) & m4) | ((u1 >> 6) & m2) << 4) << 32;
    *sc = _mm512_cvtepu8_epi32(_mm_cvtsi64_si128((long long)s));
    *mn = _mm512_cvtepu8_epi32(_mm_cvtsi64_si128((long long)n)); // lanes 8..15 zero
}

#ifndef QK_NT
#define QK_NT 2 // tokens per K-quant prefill tile (3: same speed, 4: spills, 2x slower)
#endif

// acc[r][t] += super-block i of rows × tokens, in the reference's order: exact integer lane
// sums of the 4 chunks scaled by the sub-block scales, then one fma per super-block (and the
// mins). Rows are handled one at a time so that per-row state never spills.
AI void qk_tile(int wt, int QR, int NT, const uint8_t *const rows[], const uint8_t *const toks[],
                int64_t n_in, float out[][NT_PRE], int64_t pf) {
    const size_t bsz = kern_type_row_size(wt, 256);
    const int is6 = wt == E2H_TYPE_Q6_K;
    __m512 acc[QR_MAX][QK_NT];
#pragma GCC unroll 8
    for (int r = 0; r < QR; r++)
#pragma GCC unroll 2
        for (int t = 0; t < NT; t++) acc[r][t] = _mm512_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t i = 0; i < n_in / 256; i++) {
        const e2h_qx_k *xk[QK_NT];
        __m512i init[QK_NT][4];
        __m512 dx[QK_NT];
        __m512i bs[QK_NT];
#pragma GCC unroll 2
        for (int t = 0; t < NT; t++) {
            xk[t] = (const e2h_qx_k *)toks[t] + i;
            dx[t] = _mm512_set1_ps(xk[t]->d);
            bs[t] = _mm512_maskz_loadu_epi32(0x00FF, xk[t]->bsum32);
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++) {
                init[t][g] = _mm512_setzero_si512();
                if (is6) init[t][g] = _mm512_sub_epi32(init[t][g], _mm512_dpbusd_epi32(_mm512_setzero_si512(),
                                          _mm512_set1_epi8(32), _mm512_loadu_si512((const void *)(xk[t]->q + 64 * g))));
            }
        }
#pragma GCC unroll 8
        for (int r = 0; r < QR; r++) {
            const uint8_t *blk = rows[r] + i * bsz;
            if (pf) // a whole super-block: 144..210 bytes
                for (size_t off = 0; off < bsz + 63; off += 64) _mm_prefetch((const char *)(blk + pf + off), _MM_HINT_T0);
            __m512i isum[QK_NT];
#pragma GCC unroll 2
            for (int t = 0; t < NT; t++) isum[t] = _mm512_setzero_si512();
            __m512i s8, mins = _mm512_setzero_si512();
            float d, dmin = 0.0f;
            const uint8_t *qs = NULL;
            __m512i qh2 = _mm512_setzero_si512(), ql0 = _mm512_setzero_si512(), ql1 = _mm512_setzero_si512();
            if (is6) {
                const e2h_block_q6_K *b = (const e2h_block_q6_K *)blk;
                s8 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)b->scales));
                d = kern_q_h2f(b->d);
                ql0 = _mm512_loadu_si512((const void *)b->ql);
                ql1 = _mm512_loadu_si512((const void *)(b->ql + 64));
            } else {
                const e2h_block_q4_K *b4 = (const e2h_block_q4_K *)blk;
                qk_scales_mins(b4->scales, &s8, &mins);
                d = kern_q_h2f(b4->d);
                dmin = kern_q_h2f(b4->dmin);
                qs = wt == E2H_TYPE_Q4_K ? b4->qs : ((const e2h_block_q5_K *)blk)->qs;
                if (wt == E2H_TYPE_Q5_K) {
                    const __m256i qh = _mm256_loadu_si256((const __m256i *)((const e2h_block_q5_K *)blk)->qh);
                    qh2 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), qh, 1);
                }
            }
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++) {
                __m512i w, sc;
                if (is6) {
                    const int n = g / 2, hi = g % 2;
                    // q6_K element e = 128n + 32q + l: nibble of ql[64n + l + 32(q&1)] (low if q<2),
                    // high bits (qh[32n + l] >> 2q) & 3. Chunk g covers quarters 2hi, 2hi+1 of half n.
                    const __m512i ql = n ? ql1 : ql0;
                    const __m256i qhn = _mm256_loadu_si256((const __m256i *)(((const e2h_block_q6_K *)blk)->qh + 32 * n));
                    const __m512i qhz = _mm512_inserti64x4(_mm512_castsi256_si512(qhn), qhn, 1);
                    const __m512i m4z = _mm512_set1_epi8(0x0F), m3 = _mm512_set1_epi8(0x03);
                    const __m512i nib = hi ? _mm512_and_si512(_mm512_srli_epi16(ql, 4), m4z) : _mm512_and_si512(ql, m4z);
                    const __m512i sh = hi ? _mm512_set_epi16(6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
                                                             4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4)
                                          : _mm512_set_epi16(2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
                                                             0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
                    const __m512i h2 = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qhz, sh), m3), 4);
                    w = _mm512_or_si512(nib, h2);
                    // lane k of chunk g: 16-element sub-block 4g + k/4
                    sc = _mm512_permutexvar_epi32(_mm512_add_epi32(_mm512_set1_epi32(4 * g),
                                                  _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0)), s8);
                } else {
                    const __m256i y = _mm256_loadu_si256((const __m256i *)(qs + 32 * g));
                    w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(y, m4)),
                                           _mm256_and_si256(_mm256_srli_epi16(y, 4), m4), 1);
                    if (wt == E2H_TYPE_Q5_K) { // bit 2g (low nibbles) / 2g+1 (high nibbles) of qh[l]
                        const __m512i bit01 = _mm512_inserti64x4(_mm512_set1_epi8(1), _mm256_set1_epi8(2), 1);
                        const __mmask64 k = _mm512_test_epi8_mask(qh2, _mm512_slli_epi64(bit01, 2 * g));
                        w = _mm512_mask_add_epi8(w, k, w, _mm512_set1_epi8(0x10));
                    }
                    sc = _mm512_permutexvar_epi32(_mm512_add_epi32(_mm512_set1_epi32(2 * g),
                                                  _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)), s8);
                }
#pragma GCC unroll 2
                for (int t = 0; t < NT; t++) {
                    const __m512i x = _mm512_loadu_si512((const void *)(xk[t]->q + 64 * g));
                    const __m512i p = _mm512_dpbusd_epi32(init[t][g], w, x);
                    isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(p, sc));
                }
            }
            const __m512 dv = _mm512_set1_ps(d), dmv = _mm512_set1_ps(dmin);
#pragma GCC unroll 2
            for (int t = 0; t < NT; t++) {
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(dv, dx[t]), acc[r][t]);
                if (!is6) {
                    const __m512 mp = _mm512_cvtepi32_ps(_mm512_mullo_epi32(mins, bs[t]));
                    acc[r][t] = _mm512_mask3_fnmadd_ps(mp, _mm512_mul_ps(dmv, dx[t]), acc[r][t], 0x00FF);
                }
            }
        }
    }
    Q5_TILE_HSUM(QR, NT, acc, out);
}

#define QK_FN(TYPE, QRV, NTV)                                                                   \
    static void qk_tile_##TYPE##_##QRV##_##NTV(const uint8_t *const rows[], const uint8_t *const toks[], \
                                               int64_t n_in, float out[][NT_PRE], int64_t pf) { \
        qk_tile(E2H_TYPE_##TYPE, QRV ? QR_DEC_K : QR_PRE, NTV <= QK_NT ? NTV : QK_NT, rows, toks, n_in, out, pf); \
    }
#define QK_FNS(TYPE) QK_FN(TYPE, 8, 1) QK_FN(TYPE, 0, 1) QK_FN(TYPE, 0, 2) QK_FN(TYPE, 0, 3) QK_FN(TYPE, 0, 4)
QK_FNS(Q4_K)
QK_FNS(Q5_K)
QK_FNS(Q6_K)

// ---------------------------------------------------------------- driver

typedef struct {
    q5_tile_fn dec;        // dec_rows rows × 1 token
    int dec_rows;
    q5_tile_fn pre[NT_PRE]; // QR_PRE rows × (index + 1) tokens; NULL past the type's maximum
} q5_tiles;

static int q5_tiles_get(int wtype, q5_tiles *t) {
    memset(t, 0, sizeof *t);
#define Q32_SET(TYPE)                                                                                    \
    do {                                                                                                 \
        q5_tile_fn f[4] = {q32_tile_##TYPE##_0_1, q32_tile_##TYPE##_0_2, q32_tile_##TYPE##_0_3,          \
                           q32_tile_##TYPE##_0_4};                                                       \
        t->dec = q32_dtile_##TYPE;                                                                       \
        t->dec_rows = q32_dec_rows(E2H_TYPE_##TYPE);                                                     \
        for (int i = 0; i < NT_PRE; i++) t->pre[i] = f[i];                                               \
    } while (0)
#define QK_SET(TYPE)                                                                                     \
    do {                                                                                                 \
        q5_tile_fn f[4] = {qk_tile_##TYPE##_0_1, qk_tile_##TYPE##_0_2, qk_tile_##TYPE##_0_3, qk_tile_##TYPE##_0_4}; \
        t->dec = qk_tile_##TYPE##_8_1;                                                                   \
        t->dec_rows = QR_DEC_K;                                                                          \
        for (int i = 0; i < QK_NT; i++) t->pre[i] = f[i];                                                \
    } while (0)
    switch (wtype) {
    case E2H_TYPE_Q4_0: Q32_SET(Q4_0); return 0;
    case E2H_TYPE_Q4_1: Q32_SET(Q4_1); return 0;
    case E2H_TYPE_Q5_0: Q32_SET(Q5_0); return 0;
    case E2H_TYPE_Q5_1: Q32_SET(Q5_1); return 0;
    case E2H_TYPE_Q8_0: Q32_SET(Q8_0); return 0;
    case E2H_TYPE_Q4_K: QK_SET(Q4_K); return 0;
    case E2H_TYPE_Q5_K: QK_SET(Q5_K); return 0;
    case E2H_TYPE_Q6_K: QK_SET(Q6_K); return 0;
    default: return -1;
    }
#undef Q32_SET
#undef QK_SET
}

typedef struct {
    e2h_qmm_args a; // the call's arguments, as the other ISA drivers take them
    q5_tiles tiles;
} q5_ctx;

static void q5_quantize_fn(void *p, int ith, int nth) {
    q5_ctx *c = p;
    int64_t t0, t1;
    pool_slice(c->a.n_tok, ith, nth, 1, &t0, &t1);
    kern_qx_quantize_avx512(c->a.wtype, c->a.x, t0, t1, c->a.n_in, c->a.scratch);
}

// Rows [r0, r1) × tokens [t0, t1) with the decode tiles (QR_DEC × 1) or the prefill tiles
// (QR_PRE × up to nt_max).
static void q5_run_rows(const q5_ctx *c, int64_t r0, int64_t r1, int64_t t0, int64_t t1, int decode,
                        int nt_max) {
    const int qr = decode ? c->tiles.dec_rows : QR_PRE;
    const size_t rs = kern_type_row_size(c->a.wtype, c->a.n_in);
    const int64_t tile = qr * (int64_t)rs;
    const int64_t pf = !decode ? 0 : tile > PF_TILE_MAX ? PF_ROW : 2 * tile < PF_FAR ? 2 * tile : PF_FAR;
    const int64_t ts = kern_qx_token_stride(c->a.wtype, c->a.n_in);
    for (int64_t r = r0; r < r1; r += qr) {
        const uint8_t *rows[QR_MAX];
        for (int i = 0; i < qr; i++) // rows past the slice repeat the last one (not stored)
            rows[i] = c->a.w + (r + i < r1 ? r + i : r1 - 1) * rs;
        for (int64_t t = t0; t < t1; t += nt_max) {
            const int nt = (int)(t1 - t < nt_max ? t1 - t : nt_max);
            const uint8_t *toks[NT_PRE];
            for (int i = 0; i < nt; i++) toks[i] = c->a.scratch + (t + i) * ts;
            float out[QR_MAX][NT_PRE];
            (decode ? c->tiles.dec : c->tiles.pre[nt - 1])(rows, toks, c->a.n_in, out, pf);
            for (int i = 0; i < qr && r + i < r1; i++)
                for (int j = 0; j < nt; j++) c->a.y[(t + j) * c->a.ldy + r + i] = out[i][j];
        }
    }
}

static void q5_matmul_fn(void *p, int ith, int nth) {
    const q5_ctx *c = p;
    if (c->a.n_tok == 1) { // decode: equal slices of whole tiles
        int64_t r0, r1;
        pool_slice(c->a.n_out, ith, nth, c->tiles.dec_rows, &r0, &r1);
        if (r0 < r1) q5_run_rows(c, r0, r1, 0, 1, 1, 1);
        return;
    }
    int64_t r0, r1;
    pool_slice(c->a.n_out, ith, nth, QR_PRE, &r0, &r1);
    if (r0 >= r1) return;
    const int nt_max = kern_quant_is_k(c->a.wtype) ? QK_NT : NT_PRE;
    for (int64_t tb = 0; tb < c->a.n_tok; tb += TOK_BLOCK) {
        const int64_t te = tb + TOK_BLOCK < c->a.n_tok ? tb + TOK_BLOCK : c->a.n_tok;
        q5_run_rows(c, r0, r1, tb, te, 0, nt_max);
    }
}

void kern_qmatmul_avx512(e2h_pool *pool, float *y, int64_t ldy, const float *x, const void *w,
                        int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch) {
    if (kern_qmatmul_scratch_size(wtype, n_tok, n_in) < 0 || n_tok <= 0 || n_out <= 0) return;
    q5_ctx c = {{y, ldy, x, w, wtype, n_tok, n_in, n_out, scratch}, {0}};
    if (q5_tiles_get(wtype, &c.tiles)) return;
    // Few tokens: quantizing here costs less than waking the pool twice.
    if (n_tok < QUANT_INLINE_TOK || pool_size(pool) == 1) kern_qx_quantize_avx512(wtype, x, 0, n_tok, n_in, scratch);
    else pool_run(pool, q5_quantize_fn, &c);
    pool_run(pool, q5_matmul_fn, &c);
}
