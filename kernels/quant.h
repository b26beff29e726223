// kernels/quant.h — quantized weights: exact (de)quantization of the GGUF block types and the
// quantized-weight × int8-activation matmul (ref, AVX2, AVX-512 VNNI).
//
// Matmul semantics (the ref in kernels/ref/quant.c is the definition; SIMD versions reproduce
// it bit for bit):
//  * Activations are quantized once per call into `scratch`:
//      - 32-element block types (q4_0 q4_1 q5_0 q5_1 q8_0): llama.cpp's Q8_0 / Q8_1 (ggml-cpu
//        x86 quantize_row_q8_0/_1) exactly: per block d = amax/127 and id = 127/amax (f32,
//        id = 0 for an all-zero block), q = round-half-even(x * id) in [-127, 127];
//        the scratch holds dx = float(half(d)) and sx = float(half(d * sum(q))) (the q*_1
//        mins' term), the values llama.cpp's dot products see. So the integer block dots and
//        the block scales dw*dx (an exact product of two halves) and mins m*sx are llama.cpp's;
//        only the float accumulation order below differs.
//      - K types (q4_K q5_K q6_K): ggml's Q8_K (quantize_row_q8_K_ref, which x86 uses:
//        iscale = -127/max with max the first value of largest |x|, q = round-half-even(iscale*x)
//        through the 1.5*2^23 trick, d = 1/iscale in f32) plus sums of q per 32 elements.
//  * A row is reduced in "chunks" of 64 elements (two 32-blocks, or a quarter of a 256-super-
//    block) into 16 int32 lanes; lane k of a chunk holds the exact integer dot of 4 elements
//    (which 4 is fixed per type, see quant_lane_elem in ref/quant.c). Each output element has
//    16 float accumulators: for 32-blocks acc[k] = fma(float(lane_k), dw*dx, acc[k]) per
//    chunk (then mins: acc[0|8] = fma(m, sx, ...)); for K types the scaled integer lanes of
//    the 4 chunks of a super-block are summed exactly, then acc[k] = fma(float(isum_k), d*dx,
//    acc[k]) and for q4_K/q5_K acc[j] = fma(float(m_j * bsum_j), -dmin*dx, acc[j]), j < 8.
//    Finally y = ((acc[0..7]+acc[8..15]) folded 8 -> 4 -> 2 -> 1).
//  So each output depends only on its row, its token and n_in: never on n_tok, tiling or
//  thread count (batch invariance, see kernels/ops.h).
#ifndef E2H_KERNELS_QUANT_H
#define E2H_KERNELS_QUANT_H

#include <stdint.h>
#include <string.h>

#include "pool.h"
#include "types.h"

// 1 for the weight types the matmul and dequantize support:
// Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q4_K Q5_K Q6_K (Q8_K: dequantize/quantize only).
int kern_quant_type_supported(int type);

// Exact dequantization, bit-identical to ggml's dequantize_row_* (no fused multiply-add).
// n must be a multiple of the block size; does nothing for unsupported types.
void kern_dequantize_row_ref(int type, const void *src, float *dst, int64_t n);

// Quantizers with the rounding of ggml's quantize_row_*_ref (C semantics, no FMA contraction).
// Supported: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q4_K Q5_K Q6_K Q8_K.
void kern_quantize_row_ref(int type, const float *src, void *dst, int64_t n);

// y (n_tok, ldy)[:, 0:n_out] = x (n_tok, n_in) · W(n_out, n_in)^T, W rows in `wtype` with row
// stride kern_type_row_size(wtype, n_in). scratch: kern_qmatmul_scratch_size bytes, 64-byte
// aligned. Multithreaded over output rows through `pool` (may be NULL). Allocates nothing.
// Returns -1 from scratch_size for unsupported types or n_in not a multiple of the block.
int64_t kern_qmatmul_scratch_size(int wtype, int64_t n_tok, int64_t n_in);
void kern_qmatmul_ref(e2h_pool *pool, float *y, int64_t ldy, const float *x, const void *w,
                     int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch);
void kern_qmatmul_avx2(e2h_pool *pool, float *y, int64_t ldy, const float *x, const void *w,
                      int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch);
void kern_qmatmul_avx512(e2h_pool *pool, float *y, int64_t ldy, const float *x, const void *w,
                        int wtype, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch);

// ---- shared by ref and SIMD: quantized-activation scratch layout ----
// 32-block types: per token, nb2 = n_in/32 rounded up to even blocks:
//   int8 q[nb2*32] (per block in "lane order", see below; padding block zero),
//   float d[nb2], float sx[nb2]; token stride rounded up to 64 bytes.
// Lane order of a 32-block's activations: for q4_*/q5_* the chunk (blocks b0, b1) is stored
// as [b0 e0..15 | b1 e0..15 | b0 e16..31 | b1 e16..31] — the order in which nibbles unpack —
// and for q8_0 as [b0 e0..31 | b1 e0..31].
// K types: per token, per super-block an e2h_qx_k, 64-byte aligned.
typedef struct {
    int8_t q[256];
    float d;
    int32_t bsum32[8]; // sum of q over each 32 elements
    uint8_t pad[28];
} e2h_qx_k;
_Static_assert(sizeof(e2h_qx_k) == 320, "e2h_qx_k layout");

static inline int kern_quant_is_k(int t) {
    return t == E2H_TYPE_Q4_K || t == E2H_TYPE_Q5_K || t == E2H_TYPE_Q6_K;
}
static inline int64_t kern_qx32_nb2(int64_t n_in) { return ((n_in / 32) + 1) / 2 * 2; }
static inline int64_t kern_qx_token_stride(int wtype, int64_t n_in) {
    if (kern_quant_is_k(wtype)) return (n_in / 256) * (int64_t)sizeof(e2h_qx_k);
    int64_t nb2 = kern_qx32_nb2(n_in);
    return (nb2 * 32 + nb2 * 8 + 63) / 64 * 64;
}

// The arguments of one quantized matmul call, shared by the ISA drivers.
typedef struct {
    float *y;
    int64_t ldy;
    const float *x;
    const uint8_t *w;
    int wtype;
    int64_t n_tok, n_in, n_out;
    uint8_t *scratch;
} e2h_qmm_args;
// Pool body (args: e2h_qmm_args *): quantizes this thread's slice of tokens into scratch with
// kern_qx_quantize.
void kern_qmm_quantize_fn(void *args, int ith, int nth);

// Quantizes tokens [t0, t1) of x into the scratch (the same code for every implementation,
// so that ref and SIMD see identical activations).
void kern_qx_quantize(int wtype, const float *x, int64_t t0, int64_t t1, int64_t n_in,
                     void *scratch);
// Its AVX-512 twin (kernels/x86/quant_avx512.c): byte-identical scratch for every input,
// NaN and inf included. Only call where the CPU has AVX-512 F/BW/VL/DQ.
void kern_qx_quantize_avx512(int wtype, const float *x, int64_t t0, int64_t t1, int64_t n_in,
                            void *scratch);

// Half <-> float, exact, round-to-nearest-even (own copies so this module stands alone).
static inline float kern_q_h2f(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        u = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        u = sign;
    } else { // subnormal: normalize
        int e = -1;
        do { man <<= 1; e++; } while (!(man & 0x400));
        u = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}
uint16_t kern_q_f2h(float f);

// Final fixed-order reduction of the 16 accumulators.
static inline float kern_q_reduce16(const float acc[16]) {
    float s8[8], s4[4], s2[2];
    for (int i = 0; i < 8; i++) s8[i] = acc[i] + acc[i + 8];
    for (int i = 0; i < 4; i++) s4[i] = s8[i] + s8[i + 4];
    for (int i = 0; i < 2; i++) s2[i] = s4[i] + s4[i + 2];
    return s2[0] + s2[1];
}

#endif
