// kernels/ref/quant.c — scalar reference for the quant types: exact dequantization, ggml-
// compatible quantizers, activation quantization and the quantized matmul whose
// accumulation order (16 lanes, see kernels/quant.h) every SIMD version reproduces.
//
// Compiled as ISO C11 (no FMA contraction), so a*b + c is two roundings, as in ggml's
// reference C; the matmul uses fmaf() explicitly where SIMD code uses FMA.
#include "kernels/quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define Q_MIN(a, b) ((a) < (b) ? (a) : (b))
#define Q_MAX(a, b) ((a) > (b) ? (a) : (b))

// The quant types of kernels/types.c's trait table marked supported.
int kern_quant_type_supported(int type) {
    const e2h_type_traits *tr = kern_type_traits_get(type);
    return tr && tr->supported && !kern_is_float_type(type);
}

// f32 -> f16 bits, round to nearest even, overflow to inf, subnormals exact.
uint16_t kern_q_f2h(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000, abs = u & 0x7fffffff;
    if (abs > 0x7f800000) return (uint16_t)(sign | 0x7e00 | ((abs >> 13) & 0x3ff)); // NaN
    if (abs >= 0x477ff000) return (uint16_t)(sign | 0x7c00); // rounds to >= 65520: inf
    if (abs < 0x38800000) { // below the smallest normal half: subnormal or zero
        if (abs < 0x33000000) return (uint16_t)sign; // < half of the smallest subnormal
        uint32_t e = abs >> 23, man = (abs & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e;                  // 14 + (112 - e)... value = man * 2^(e-150)
        uint32_t q = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t h = ((abs - 0x38000000) >> 13); // rebias exponent 127 -> 15
    uint32_t rem = abs & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

// ggml's nearest_int: round half to even through the float mantissa (|f| < 2^22).
static inline int q_nearest_int(float fval) {
    float val = fval + 12582912.f;
    int i;
    memcpy(&i, &val, sizeof(int));
    return (i & 0x007fffff) - 0x00400000;
}

static inline int q_block_size(int type) {
    return kern_quant_is_k(type) || type == E2H_TYPE_Q8_K ? 256 : 32;
}

// ---------------------------------------------------------------- dequantization

static void deq_q4_0(const e2h_block_q4_0 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float d = kern_q_h2f(x[i].d);
        for (int j = 0; j < 16; j++) {
            y[i * 32 + j] = ((x[i].qs[j] & 0x0F) - 8) * d;
            y[i * 32 + j + 16] = ((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void deq_q4_1(const e2h_block_q4_1 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float d = kern_q_h2f(x[i].d), m = kern_q_h2f(x[i].m);
        for (int j = 0; j < 16; j++) {
            y[i * 32 + j] = (x[i].qs[j] & 0x0F) * d + m;
            y[i * 32 + j + 16] = (x[i].qs[j] >> 4) * d + m;
        }
    }
}

static inline uint32_t q_load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void deq_q5_0(const e2h_block_q5_0 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float d = kern_q_h2f(x[i].d);
        const uint32_t qh = q_load_u32(x[i].qh);
        for (int j = 0; j < 16; j++) {
            const int x0 = ((x[i].qs[j] & 0x0F) | (((qh >> j) & 1) << 4)) - 16;
            const int x1 = ((x[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16;
            y[i * 32 + j] = x0 * d;
            y[i * 32 + j + 16] = x1 * d;
        }
    }
}

static void deq_q5_1(const e2h_block_q5_1 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float d = kern_q_h2f(x[i].d), m = kern_q_h2f(x[i].m);
        const uint32_t qh = q_load_u32(x[i].qh);
        for (int j = 0; j < 16; j++) {
            const int x0 = (x[i].qs[j] & 0x0F) | (((qh >> j) & 1) << 4);
            const int x1 = (x[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
            y[i * 32 + j] = x0 * d + m;
            y[i * 32 + j + 16] = x1 * d + m;
        }
    }
}

static void deq_q8_0(const e2h_block_q8_0 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float d = kern_q_h2f(x[i].d);
        for (int j = 0; j < 32; j++) y[i * 32 + j] = x[i].qs[j] * d;
    }
}

// 6-bit scale and min j (0..7) of a q4_K/q5_K super-block.
static inline void q_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static void deq_q4_K(const e2h_block_q4_K *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *q = x[i].qs;
        const float d = kern_q_h2f(x[i].d), min = kern_q_h2f(x[i].dmin);
        for (int j = 0; j < 4; j++) { // 64 elements: sub-block 2j (low nibbles), 2j+1 (high)
            uint8_t sc, m;
            q_scale_min_k4(2 * j, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            q_scale_min_k4(2 * j + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
            q += 32;
        }
    }
}

static void deq_q5_K(const e2h_block_q5_K *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        const float d = kern_q_h2f(x[i].d), min = kern_q_h2f(x[i].dmin);
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < 4; j++) {
            uint8_t sc, m;
            q_scale_min_k4(2 * j, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            q_scale_min_k4(2 * j + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            ql += 32;
            u1 = (uint8_t)(u1 << 2);
            u2 = (uint8_t)(u2 << 2);
        }
    }
}

// q6_K element e (0..255) of a block as a signed 6-bit value in [-32, 31].
static inline int q6k_value(const e2h_block_q6_K *b, int e) {
    const int half = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
    const uint8_t *ql = b->ql + 64 * half, *qh = b->qh + 32 * half;
    const int lo = (quarter & 1) ? ql[l + 32] : ql[l];
    const int nib = (quarter < 2) ? (lo & 0xF) : (lo >> 4);
    const int hi = (qh[l] >> (2 * quarter)) & 3;
    return (nib | (hi << 4)) - 32;
}

static void deq_q6_K(const e2h_block_q6_K *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float d = kern_q_h2f(x[i].d);
        for (int e = 0; e < 256; e++) y[i * 256 + e] = d * x[i].scales[e / 16] * q6k_value(&x[i], e);
    }
}

static void deq_q8_K(const e2h_block_q8_K *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++)
        for (int j = 0; j < 256; j++) y[i * 256 + j] = x[i].d * x[i].qs[j];
}

void kern_dequantize_row_ref(int type, const void *src, float *dst, int64_t n) {
    if (!kern_quant_type_supported(type) || n % q_block_size(type)) return;
    const int64_t nb = n / q_block_size(type);
    switch (type) {
    case E2H_TYPE_Q4_0: deq_q4_0(src, dst, nb); break;
    case E2H_TYPE_Q4_1: deq_q4_1(src, dst, nb); break;
    case E2H_TYPE_Q5_0: deq_q5_0(src, dst, nb); break;
    case E2H_TYPE_Q5_1: deq_q5_1(src, dst, nb); break;
    case E2H_TYPE_Q8_0: deq_q8_0(src, dst, nb); break;
    case E2H_TYPE_Q4_K: deq_q4_K(src, dst, nb); break;
    case E2H_TYPE_Q5_K: deq_q5_K(src, dst, nb); break;
    case E2H_TYPE_Q6_K: deq_q6_K(src, dst, nb); break;
    case E2H_TYPE_Q8_K: deq_q8_K(src, dst, nb); break;
    default: break;
    }
}

// ---------------------------------------------------------------- quantizers

// Truncating float -> small unsigned int as ggml's (int8_t)(v) casts, but clamped to
// [0, hi] first so that NaN or out-of-range input cannot hit undefined behaviour.
static inline uint8_t q_trunc_clamp(float v, int hi) {
    if (!(v >= 0.0f)) return 0;
    if (v >= (float)hi) return (uint8_t)hi;
    return (uint8_t)(int)v;
}

// amax and the signed value that has it (first one on ties), as ggml's q4_0/q5_0.
static float q_signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void quant_q4_0(const float *x, e2h_block_q4_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        const float d = q_signed_absmax(x, 32) / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = kern_q_f2h(d);
        for (int j = 0; j < 16; j++) {
            const float x0 = x[j] * id, x1 = x[16 + j] * id;
            y[i].qs[j] = (uint8_t)(q_trunc_clamp(x0 + 8.5f, 15) | (q_trunc_clamp(x1 + 8.5f, 15) << 4));
        }
    }
}

static void q_minmax(const float *x, int n, float *mn, float *mx) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

static void quant_q4_1(const float *x, e2h_block_q4_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float min, max;
        q_minmax(x, 32, &min, &max);
        const float d = (max - min) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = kern_q_f2h(d);
        y[i].m = kern_q_f2h(min);
        for (int j = 0; j < 16; j++) {
            const float x0 = (x[j] - min) * id, x1 = (x[16 + j] - min) * id;
            y[i].qs[j] = (uint8_t)(q_trunc_clamp(x0 + 0.5f, 15) | (q_trunc_clamp(x1 + 0.5f, 15) << 4));
        }
    }
}

static void q5_pack(const uint8_t xi[32], uint8_t qs[16], uint8_t qh_out[4]) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((xi[j] & 0x0F) | ((xi[16 + j] & 0x0F) << 4));
        qh |= ((uint32_t)(xi[j] & 0x10) >> 4) << j;
        qh |= ((uint32_t)(xi[16 + j] & 0x10) >> 4) << (j + 16);
    }
    memcpy(qh_out, &qh, 4);
}

static void quant_q5_0(const float *x, e2h_block_q5_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        const float d = q_signed_absmax(x, 32) / -16;
        const float id = d ? 1.0f / d : 0.0f;
        uint8_t xi[32];
        y[i].d = kern_q_f2h(d);
        for (int j = 0; j < 32; j++) xi[j] = q_trunc_clamp(x[j] * id + 16.5f, 31);
        q5_pack(xi, y[i].qs, y[i].qh);
    }
}

static void quant_q5_1(const float *x, e2h_block_q5_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float min, max;
        q_minmax(x, 32, &min, &max);
        const float d = (max - min) / 31;
        const float id = d ? 1.0f / d : 0.0f;
        uint8_t xi[32];
        y[i].d = kern_q_f2h(d);
        y[i].m = kern_q_f2h(min);
        for (int j = 0; j < 32; j++) xi[j] = q_trunc_clamp((x[j] - min) * id + 0.5f, 31);
        q5_pack(xi, y[i].qs, y[i].qh);
    }
}

static void quant_q8_0(const float *x, e2h_block_q8_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = Q_MAX(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = kern_q_f2h(d);
        for (int j = 0; j < 32; j++) {
            float r = roundf(x[j] * id);
            r = r > 127.0f ? 127.0f : (r < -128.0f || r != r) ? (r != r ? 0.0f : -128.0f) : r;
            y[i].qs[j] = (int8_t)r;
        }
    }
}

// ggml's make_qkx2_quants: scale and min of one sub-block by a small search that minimizes
// the weighted squared error (the same float expressions, so the same bits).
static float q_make_qkx2(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                         float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0], sum_w = weights[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min), scale = 1 / iscale, best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = q_nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)Q_MAX(0, Q_MIN(nmax, l));
        float diff = scale * L[i] + min - x[i];
        best_error += weights[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = q_nearest_int(iscale * (x[i] - min));
            l = Q_MAX(0, Q_MIN(nmax, l));
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                cur_error += weights[i] * (diff * diff);
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

// ggml's make_qx_quants with rmse_type 1 and no importance weights (used by q6_K).
static float q_make_qx(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < 1e-15f) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = q_nearest_int(iscale * x[i]);
        l = Q_MAX(-nmax, Q_MIN(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f, best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = q_nearest_int(iscale * x[i]);
            l = Q_MAX(-nmax, Q_MIN(nmax - 1, l));
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = q_nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + Q_MAX(-nmax, Q_MIN(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

// Packs 8 6-bit scales and mins into the 12-byte q4_K/q5_K layout.
static void q_pack_scales_k4(const uint8_t ls[8], const uint8_t lm[8], uint8_t s[12]) {
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            s[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            s[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

// Shared by q4_K (nmax 15) and q5_K (nmax 31): scales/mins per 32, then the levels L.
static void quant_k_levels(const float *x, int nmax, float rmin, int nstep, uint16_t *d_out,
                           uint16_t *dmin_out, uint8_t scales_out[12], uint8_t L[256]) {
    uint8_t Laux[32], ls[8], lm[8];
    float weights[32], mins[8], scales[8], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = q_make_qkx2(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin,
                                0.1f, nstep);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; j++) {
        ls[j] = (uint8_t)Q_MIN(63, (uint8_t)q_nearest_int(inv_scale * scales[j]));
        lm[j] = (uint8_t)Q_MIN(63, (uint8_t)q_nearest_int(inv_min * mins[j]));
    }
    memset(scales_out, 0, 12);
    q_pack_scales_k4(ls, lm, scales_out);
    *d_out = kern_q_f2h(max_scale / 63.f);
    *dmin_out = kern_q_f2h(max_min / 63.f);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        q_scale_min_k4(j, scales_out, &sc, &m);
        const float d = kern_q_h2f(*d_out) * sc;
        if (!d) continue;
        const float dm = kern_q_h2f(*dmin_out) * m;
        for (int ii = 0; ii < 32; ii++) {
            int l = q_nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)Q_MAX(0, Q_MIN(nmax, l));
        }
    }
}

static void quant_q4_K(const float *x, e2h_block_q4_K *y, int64_t nb) {
    uint8_t L[256];
    for (int64_t i = 0; i < nb; i++, x += 256) {
        quant_k_levels(x, 15, -1.f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
        uint8_t *q = y[i].qs;
        for (int j = 0; j < 256; j += 64, q += 32)
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

static void quant_q5_K(const float *x, e2h_block_q5_K *y, int64_t nb) {
    uint8_t L[256];
    for (int64_t i = 0; i < nb; i++, x += 256) {
        quant_k_levels(x, 31, -0.5f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        uint8_t *qh = y[i].qh, *ql = y[i].qs, m1 = 1, m2 = 2;
        memset(qh, 0, 32);
        for (int n = 0; n < 256; n += 64, ql += 32) {
            for (int j = 0; j < 32; j++) {
                int l1 = L[n + j], l2 = L[n + j + 32];
                if (l1 > 15) { l1 -= 16; qh[j] |= m1; }
                if (l2 > 15) { l2 -= 16; qh[j] |= m2; }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
            m1 = (uint8_t)(m1 << 2);
            m2 = (uint8_t)(m2 << 2);
        }
    }
}

static void quant_q6_K(const float *x, e2h_block_q6_K *y, int64_t nb) {
    int8_t L[256];
    float scales[16];
    for (int64_t i = 0; i < nb; i++, x += 256) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < 16; ib++) {
            scales[ib] = q_make_qx(16, 32, x + 16 * ib, L + 16 * ib);
            if (fabsf(scales[ib]) > max_abs_scale) {
                max_abs_scale = fabsf(scales[ib]);
                max_scale = scales[ib];
            }
        }
        memset(&y[i], 0, sizeof y[i]);
        if (max_abs_scale < 1e-15f) continue;
        float iscale = -128.f / max_scale;
        y[i].d = kern_q_f2h(1 / iscale);
        for (int ib = 0; ib < 16; ib++) y[i].scales[ib] = (int8_t)Q_MIN(127, q_nearest_int(iscale * scales[ib]));
        for (int j = 0; j < 16; j++) {
            float d = kern_q_h2f(y[i].d) * y[i].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++) {
                int l = q_nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(Q_MAX(-32, Q_MIN(31, l)) + 32);
            }
        }
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < 256; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                  ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
        }
    }
}

// ggml's Q8_K: d = -max/127 (signed), q = nearest_int(x/d) clamped above at 127.
static void quant_q8_K_block(const float *x, float *d_out, int8_t q[256]) {
    float max = 0, amax = 0;
    for (int j = 0; j < 256; j++) {
        float ax = fabsf(x[j]);
        if (ax > amax) {
            amax = ax;
            max = x[j];
        }
    }
    if (!amax) {
        *d_out = 0;
        memset(q, 0, 256);
        return;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < 256; j++) q[j] = (int8_t)Q_MAX(-128, Q_MIN(127, q_nearest_int(iscale * x[j])));
    *d_out = 1 / iscale;
}

static void quant_q8_K(const float *x, e2h_block_q8_K *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 256) {
        quant_q8_K_block(x, &y[i].d, y[i].qs);
        for (int j = 0; j < 16; j++) {
            int sum = 0;
            for (int ii = 0; ii < 16; ii++) sum += y[i].qs[j * 16 + ii];
            y[i].bsums[j] = (int16_t)sum;
        }
    }
}

void kern_quantize_row_ref(int type, const float *src, void *dst, int64_t n) {
    if (!kern_quant_type_supported(type) || n % q_block_size(type)) return;
    const int64_t nb = n / q_block_size(type);
    switch (type) {
    case E2H_TYPE_Q4_0: quant_q4_0(src, dst, nb); break;
    case E2H_TYPE_Q4_1: quant_q4_1(src, dst, nb); break;
    case E2H_TYPE_Q5_0: quant_q5_0(src, dst, nb); break;
    case E2H_TYPE_Q5_1: quant_q5_1(src, dst, nb); break;
    case E2H_TYPE_Q8_0: quant_q8_0(src, dst, nb); break;
    case E2H_TYPE_Q4_K: quant_q4_K(src, dst, nb); break;
    case E2H_TYPE_Q5_K: quant_q5_K(src, dst, nb); break;
    case E2H_TYPE_Q6_K: quant_q6_K(src, dst, nb); break;
    case E2H_TYPE_Q8_K: quant_q8_K(src, dst, nb); break;
    default: break;
    }
}

// ---------------------------------------------------------------- activation quantization

// Position of element e (0..31) of block h (0/1 within its chunk) in the chunk's lane order.
static inline int q32_lane_pos(int wtype, int h, int e) {
    if (wtype == E2H_TYPE_Q8_0) return 32 * h + e;
    return e < 16 ? 16 * h + e : 32 + 16 * h + (e - 16);
}

// llama.cpp's Q8_0 / Q8_1 activations (ggml-cpu x86 quantize_row_q8_0/_1): d = amax/127,
// q = round-half-even(x * (127/amax)), and the dot products see d and the q8_1 sum
// s = d * sum(q) only as halves (stored as the floats of those halves). The integers and
// scales are then exactly llama.cpp's, so both engines agree at near-ties.
static void qx32_quantize_token(int wtype, const float *x, int64_t n_in, uint8_t *tok) {
    const int64_t nb = n_in / 32, nb2 = kern_qx32_nb2(n_in);
    int8_t *q = (int8_t *)tok;
    float *dv = (float *)(tok + nb2 * 32), *sx = dv + nb2;
    memset(tok, 0, (size_t)kern_qx_token_stride(wtype, n_in));
    for (int64_t b = 0; b < nb; b++) {
        const float *xb = x + b * 32;
        // Every step has an exact SIMD twin (maxps, mulps, maxps/minps, cvtps2dq, vcvtps2ph),
        // so the SIMD quantizers reproduce these bytes for any input, NaN and inf included:
        // a NaN never becomes amax, and x*id is clamped in float before rounding (a no-op
        // for finite x, where |x*id| <= 127 up to one rounding; it only tames the inf id of
        // a block with amax < 127/FLT_MAX, whose half d is 0 anyway).
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) {
            const float a = fabsf(xb[j]);
            amax = a > amax ? a : amax;
        }
        const float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int8_t *qc = q + (b / 2) * 64;
        int sum = 0;
        for (int e = 0; e < 32; e++) {
            float r = xb[e] * id;
            r = r > -127.0f ? r : -127.0f; // NaN -> -127, as maxps(r, -127)
            r = r < 127.0f ? r : 127.0f;
            const int v = q_nearest_int(r); // round half to even, as cvtps2dq
            qc[q32_lane_pos(wtype, (int)(b & 1), e)] = (int8_t)v;
            sum += v;
        }
        dv[b] = kern_q_h2f(kern_q_f2h(d));
        sx[b] = kern_q_h2f(kern_q_f2h(d * (float)sum)); // from the unrounded d, as llama.cpp
    }
}

static void qxk_quantize_token(const float *x, int64_t n_in, e2h_qx_k *blk) {
    for (int64_t i = 0; i < n_in / 256; i++) {
        memset(&blk[i], 0, sizeof blk[i]);
        quant_q8_K_block(x + i * 256, &blk[i].d, blk[i].q);
        for (int j = 0; j < 8; j++) {
            int s = 0;
            for (int l = 0; l < 32; l++) s += blk[i].q[32 * j + l];
            blk[i].bsum32[j] = s;
        }
    }
}

void kern_qx_quantize(int wtype, const float *x, int64_t t0, int64_t t1, int64_t n_in,
                     void *scratch) {
    const int64_t stride = kern_qx_token_stride(wtype, n_in);
    for (int64_t t = t0; t < t1; t++) {
        uint8_t *tok = (uint8_t *)scratch + t * stride;
        if (kern_quant_is_k(wtype)) qxk_quantize_token(x + t * n_in, n_in, (e2h_qx_k *)tok);
        else qx32_quantize_token(wtype, x + t * n_in, n_in, tok);
    }
}

int64_t kern_qmatmul_scratch_size(int wtype, int64_t n_tok, int64_t n_in) {
    if (!kern_quant_type_supported(wtype) || wtype == E2H_TYPE_Q8_K || n_tok < 0 || n_in <= 0)
        return -1;
    if (n_in % q_block_size(wtype)) return -1;
    return n_tok * kern_qx_token_stride(wtype, n_in) + 64;
}

// ---------------------------------------------------------------- reference matmul

// Unpacks the weights of chunk c (blocks 2c, 2c+1) of a 32-block row into lane order as
// signed values, with the block scales (dw) and mins (mw, q*_1 only). A missing second
// block (odd block count) reads as zeros.
static void q32_unpack_chunk(int wtype, const uint8_t *row, int64_t nb, int64_t c, int wl[64],
                             float dw[2], float mw[2]) {
    const size_t bsz = kern_type_traits_get(wtype) ? kern_type_traits_get(wtype)->type_size : 0;
    for (int h = 0; h < 2; h++) {
        const int64_t b = 2 * c + h;
        dw[h] = mw[h] = 0.0f;
        for (int e = 0; e < 32; e++) wl[q32_lane_pos(wtype, h, e)] = 0;
        if (b >= nb) continue;
        float tmp[32];
        const uint8_t *blk = row + b * bsz;
        uint16_t d16, m16 = 0;
        memcpy(&d16, blk, 2);
        if (wtype == E2H_TYPE_Q4_1 || wtype == E2H_TYPE_Q5_1) memcpy(&m16, blk + 2, 2);
        // Integer levels from the dequantizer with d = 1, m = 0 (exact small integers).
        uint8_t unit[sizeof(e2h_block_q8_0)]; // the largest 32-element block
        memcpy(unit, blk, bsz);
        uint16_t one = 0x3c00, zero = 0;
        memcpy(unit, &one, 2);
        if (wtype == E2H_TYPE_Q4_1 || wtype == E2H_TYPE_Q5_1) memcpy(unit + 2, &zero, 2);
        kern_dequantize_row_ref(wtype, unit, tmp, 32);
        for (int e = 0; e < 32; e++) wl[q32_lane_pos(wtype, h, e)] = (int)tmp[e];
        dw[h] = kern_q_h2f(d16);
        mw[h] = kern_q_h2f(m16);
    }
}

static float q32_dot_ref(int wtype, const uint8_t *row, const uint8_t *tok, int64_t n_in) {
    const int64_t nb = n_in / 32, nb2 = kern_qx32_nb2(n_in);
    const int8_t *q = (const int8_t *)tok;
    const float *dx = (const float *)(tok + nb2 * 32), *sx = dx + nb2;
    const int has_min = wtype == E2H_TYPE_Q4_1 || wtype == E2H_TYPE_Q5_1;
    const int min_lane1 = wtype == E2H_TYPE_Q8_0 ? 8 : 4; // first lane of block 1 of a chunk
    float acc[16] = {0};
    for (int64_t c = 0; c < nb2 / 2; c++) {
        int wl[64];
        float dw[2], mw[2];
        q32_unpack_chunk(wtype, row, nb, c, wl, dw, mw);
        const int8_t *qc = q + c * 64;
        const float s[2] = {dw[0] * dx[2 * c], dw[1] * dx[2 * c + 1]};
        for (int k = 0; k < 16; k++) {
            int p = 0;
            for (int i = 0; i < 4; i++) p += wl[4 * k + i] * qc[4 * k + i];
            // lane k belongs to block 1 in lanes 4..7 and 12..15 (nibble order), 8..15 (q8_0)
            const int h = wtype == E2H_TYPE_Q8_0 ? k >= 8 : (k % 8) >= 4;
            acc[k] = fmaf((float)p, s[h], acc[k]);
        }
        if (has_min) {
            acc[0] = fmaf(mw[0], sx[2 * c], acc[0]);
            acc[min_lane1] = fmaf(mw[1], sx[2 * c + 1], acc[min_lane1]);
        }
    }
    return kern_q_reduce16(acc);
}

// Signed level, 6-bit scale (or int8 scale for q6_K) of element e of a K super-block.
static void qk_levels(int wtype, const uint8_t *blk, int lev[256], int sc[256], int mins[8],
                      float *d, float *dmin) {
    *dmin = 0.0f;
    for (int j = 0; j < 8; j++) mins[j] = 0;
    if (wtype == E2H_TYPE_Q6_K) {
        const e2h_block_q6_K *b = (const e2h_block_q6_K *)blk;
        for (int e = 0; e < 256; e++) {
            lev[e] = q6k_value(b, e);
            sc[e] = b->scales[e / 16];
        }
        *d = kern_q_h2f(b->d);
        return;
    }
    const e2h_block_q4_K *b4 = (const e2h_block_q4_K *)blk;    // d, dmin, scales prefix is shared
    const e2h_block_q5_K *b5 = (const e2h_block_q5_K *)blk;
    const uint8_t *scales = b4->scales, *qs = wtype == E2H_TYPE_Q4_K ? b4->qs : b5->qs;
    for (int e = 0; e < 256; e++) {
        const int g = e / 64, r = e % 64, l = r % 32, hi = r >= 32;
        int v = hi ? qs[32 * g + l] >> 4 : qs[32 * g + l] & 0xF;
        if (wtype == E2H_TYPE_Q5_K && (b5->qh[l] >> (2 * g + hi)) & 1) v += 16;
        lev[e] = v;
        uint8_t s, m;
        q_scale_min_k4(e / 32, scales, &s, &m);
        sc[e] = s;
        mins[e / 32] = m;
    }
    *d = kern_q_h2f(b4->d);
    *dmin = kern_q_h2f(b4->dmin);
}

static float qk_dot_ref(int wtype, const uint8_t *row, const e2h_qx_k *xk, int64_t n_in) {
    const size_t bsz = kern_type_traits_get(wtype)->type_size;
    float acc[16] = {0};
    for (int64_t i = 0; i < n_in / 256; i++) {
        int lev[256], sc[256], mins[8], isum[16] = {0};
        float d, dmin;
        qk_levels(wtype, row + i * bsz, lev, sc, mins, &d, &dmin);
        for (int e = 0; e < 256; e++) isum[(e % 64) / 4] += sc[e] * lev[e] * xk[i].q[e];
        const float dd = d * xk[i].d;
        for (int k = 0; k < 16; k++) acc[k] = fmaf((float)isum[k], dd, acc[k]);
        if (wtype != E2H_TYPE_Q6_K) {
            const float dm = dmin * xk[i].d;
            for (int j = 0; j < 8; j++) acc[j] = fmaf((float)(mins[j] * xk[i].bsum32[j]), -dm, acc[j]);
        }
    }
    return kern_q_reduce16(acc);
}

typedef e2h_qmm_args q_ref_ctx;

void kern_qmm_quantize_fn(void *p, int ith, int nth) {
    e2h_qmm_args *c = p;
    int64_t t0, t1;
    pool_slice(c->n_tok, ith, nth, 1, &t0, &t1);
    kern_qx_quantize(c->wtype, c->x, t0, t1, c->n_in, c->scratch);
}

static void q_ref_matmul_fn(void *p, int ith, int nth) {
    q_ref_ctx *c = p;
    int64_t r0, r1;
    pool_slice(c->n_out, ith, nth, 4, &r0, &r1);
    const size_t rs = kern_type_row_size(c->wtype, c->n_in);
    const int64_t ts = kern_qx_token_stride(c->wtype, c->n_in);
    for (int64_t t = 0; t < c->n_tok; t++) {
        const uint8_t *tok = c->scratch + t * ts;
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *row = c->w + r * rs;
            c->y[t * c->ldy + r] = kern_quant_is_k(c->wtype)
                                       ? qk_dot_ref(c->wtype, row, (const e2h_qx_k *)tok, c->n_in)
                                       : q32_dot_ref(c->wtype, row, tok, c->n_in);
        }
    }
}

void kern_qmatmul_ref(e2h_pool *pool, float *y, int64_t ldy, const float *x, const void *w,
                     int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch) {
    if (kern_qmatmul_scratch_size(wtype, n_tok, n_in) < 0 || n_tok <= 0 || n_out <= 0) return;
    q_ref_ctx c = {y, ldy, x, w, wtype, n_tok, n_in, n_out, scratch};
    pool_run(pool, kern_qmm_quantize_fn, &c);
    pool_run(pool, q_ref_matmul_fn, &c);
}
