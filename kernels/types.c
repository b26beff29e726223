// kernels/types.c — type traits and the exact f16/bf16 conversions (see types.h).
#include "types.h"

#include <math.h>
#include <string.h>

// ---- scalar conversions ----
// Bit-exact IEEE conversions without F16C (the ref table must run on any x86-64); the
// float arithmetic below does the rounding (round-to-nearest-even, subnormals kept).
static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float kern_f16_to_f32(e2h_f16 h) {
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t two_w = w + w;
    // normal: move exponent/mantissa into place, rebias by 2^-112 (also maps inf/NaN)
    const float normalized = f32_from_bits((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
    // subnormal: mantissa as the low bits of 0.5's significand, minus 0.5
    const float denormalized = f32_from_bits((two_w >> 17) | (126u << 23)) - 0.5f;
    const uint32_t r = sign | (two_w < (1u << 27) ? f32_bits(denormalized) : f32_bits(normalized));
    return f32_from_bits(r);
}

e2h_f16 kern_f32_to_f16(float f) {
    // scale up then down so the float unit rounds the mantissa to 10 bits (and overflows to inf)
    float base = (fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
    const uint32_t w = f32_bits(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u) bias = 0x71000000u;
    base = f32_from_bits((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = f32_bits(base);
    const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
    const uint32_t mantissa_bits = bits & 0x00000FFFu;
    const uint32_t nonsign = exp_bits + mantissa_bits;
    return (e2h_f16)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

float kern_bf16_to_f32(e2h_bf16 h) { return f32_from_bits((uint32_t)h << 16); }

e2h_bf16 kern_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (e2h_bf16)((u >> 16) | 0x40); // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1); // round to nearest even
    return (e2h_bf16)(u >> 16);
}

// ---- type traits ----
// `supported`: matmul and dequantize are implemented (the float kernels, and the quant
// kernels of kernels/quant.h: q4_0 q4_1 q5_0 q5_1 q8_0 q4_K q5_K q6_K; q8_K converts only).
static const e2h_type_traits k_traits[E2H_TYPE_COUNT] = {
    [E2H_TYPE_F32] = {"f32", 1, 4, 1},
    [E2H_TYPE_F16] = {"f16", 1, 2, 1},
    [E2H_TYPE_BF16] = {"bf16", 1, 2, 1},
    [E2H_TYPE_Q4_0] = {"q4_0", E2H_QK4_0, sizeof(e2h_block_q4_0), 1},
    [E2H_TYPE_Q4_1] = {"q4_1", E2H_QK4_1, sizeof(e2h_block_q4_1), 1},
    [E2H_TYPE_Q5_0] = {"q5_0", E2H_QK5_0, sizeof(e2h_block_q5_0), 1},
    [E2H_TYPE_Q5_1] = {"q5_1", E2H_QK5_1, sizeof(e2h_block_q5_1), 1},
    [E2H_TYPE_Q8_0] = {"q8_0", E2H_QK8_0, sizeof(e2h_block_q8_0), 1},
    [E2H_TYPE_Q8_1] = {"q8_1", 32, 36, 0},
    [E2H_TYPE_Q2_K] = {"q2_K", E2H_QK_K, 84, 0},
    [E2H_TYPE_Q3_K] = {"q3_K", E2H_QK_K, 110, 0},
    [E2H_TYPE_Q4_K] = {"q4_K", E2H_QK_K, sizeof(e2h_block_q4_K), 1},
    [E2H_TYPE_Q5_K] = {"q5_K", E2H_QK_K, sizeof(e2h_block_q5_K), 1},
    [E2H_TYPE_Q6_K] = {"q6_K", E2H_QK_K, sizeof(e2h_block_q6_K), 1},
    [E2H_TYPE_Q8_K] = {"q8_K", E2H_QK_K, sizeof(e2h_block_q8_K), 1},
};

const e2h_type_traits *kern_type_traits_get(int type) {
    if (type < 0 || type >= E2H_TYPE_COUNT || !k_traits[type].name) return NULL;
    return &k_traits[type];
}

size_t kern_type_row_size(int type, int64_t n) {
    if (type < 0 || type >= E2H_TYPE_COUNT || !k_traits[type].name || n < 0) return 0;
    const e2h_type_traits *t = &k_traits[type];
    if (n % t->block_size) return 0;
    return (size_t)(n / t->block_size) * t->type_size;
}

int kern_is_float_type(int type) {
    return type == E2H_TYPE_F32 || type == E2H_TYPE_F16 || type == E2H_TYPE_BF16;
}
