// kernels/ops.c — type traits, f16/bf16 conversions, scratch sizes and the ops tables
// (ref, AVX2, AVX-512) chosen at run time from CPU features.
//
// Float weight types (f32/f16/bf16) go to the float kernels (kernels/ref/float.c,
// kernels/x86/float_*.c); quantized types go to the quant kernels (kernels/quant.h).
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "float_kernels.h"
#include "ops.h"

#if defined(__has_include)
#if __has_include("quant.h")
#include "quant.h"
#include "quant_r16.h"
#define E2H_HAVE_QUANT 1
#endif
#endif
#ifndef E2H_HAVE_QUANT
#define E2H_HAVE_QUANT 0
#endif

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

float e2h_f16_to_f32(e2h_f16 h) {
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

e2h_f16 e2h_f32_to_f16(float f) {
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

float e2h_bf16_to_f32(e2h_bf16 h) { return f32_from_bits((uint32_t)h << 16); }

e2h_bf16 e2h_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (e2h_bf16)((u >> 16) | 0x40); // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1); // round to nearest even
    return (e2h_bf16)(u >> 16);
}

// ---- type traits ----
static const e2h_type_traits k_traits_init[E2H_TYPE_COUNT] = {
    [E2H_TYPE_F32] = {"f32", 1, 4, 1},
    [E2H_TYPE_F16] = {"f16", 1, 2, 1},
    [E2H_TYPE_BF16] = {"bf16", 1, 2, 1},
    [E2H_TYPE_Q4_0] = {"q4_0", E2H_QK4_0, sizeof(e2h_block_q4_0), 0},
    [E2H_TYPE_Q4_1] = {"q4_1", E2H_QK4_1, sizeof(e2h_block_q4_1), 0},
    [E2H_TYPE_Q5_0] = {"q5_0", E2H_QK5_0, sizeof(e2h_block_q5_0), 0},
    [E2H_TYPE_Q5_1] = {"q5_1", E2H_QK5_1, sizeof(e2h_block_q5_1), 0},
    [E2H_TYPE_Q8_0] = {"q8_0", E2H_QK8_0, sizeof(e2h_block_q8_0), 0},
    [E2H_TYPE_Q8_1] = {"q8_1", 32, 36, 0},
    [E2H_TYPE_Q2_K] = {"q2_K", E2H_QK_K, 84, 0},
    [E2H_TYPE_Q3_K] = {"q3_K", E2H_QK_K, 110, 0},
    [E2H_TYPE_Q4_K] = {"q4_K", E2H_QK_K, sizeof(e2h_block_q4_K), 0},
    [E2H_TYPE_Q5_K] = {"q5_K", E2H_QK_K, sizeof(e2h_block_q5_K), 0},
    [E2H_TYPE_Q6_K] = {"q6_K", E2H_QK_K, sizeof(e2h_block_q6_K), 0},
    [E2H_TYPE_Q8_K] = {"q8_K", E2H_QK_K, sizeof(e2h_block_q8_K), 0},
};

// The `supported` flags of quant types come from the quant module at run time, so the
// table is completed once (pthread_once) and is read-only afterwards.
static e2h_type_traits g_traits[E2H_TYPE_COUNT];
static pthread_once_t g_traits_once = PTHREAD_ONCE_INIT;

static void traits_fill(void) {
    memcpy(g_traits, k_traits_init, sizeof g_traits);
#if E2H_HAVE_QUANT
    for (int t = 0; t < E2H_TYPE_COUNT; t++)
        if (g_traits[t].name && !e2h_is_float_type(t))
            g_traits[t].supported = e2h_quant_type_supported(t) ? 1 : 0;
#endif
}

const e2h_type_traits *e2h_type_traits_get(int type) {
    if (type < 0 || type >= E2H_TYPE_COUNT || !k_traits_init[type].name) return NULL;
    pthread_once(&g_traits_once, traits_fill);
    return &g_traits[type];
}

size_t e2h_type_row_size(int type, int64_t n) {
    if (type < 0 || type >= E2H_TYPE_COUNT || !k_traits_init[type].name || n < 0) return 0;
    const e2h_type_traits *t = &k_traits_init[type];
    if (n % t->block_size) return 0;
    return (size_t)(n / t->block_size) * t->type_size;
}

int e2h_is_float_type(int type) {
    return type == E2H_TYPE_F32 || type == E2H_TYPE_F16 || type == E2H_TYPE_BF16;
}

// ---- scratch sizes ----
int64_t e2h_matmul_scratch_size(int wtype, int64_t n_tok, int64_t n_in) {
    if (e2h_is_float_type(wtype)) return 0; // float kernels read x directly
#if E2H_HAVE_QUANT
    int64_t sz = e2h_qmatmul_scratch_size(wtype, n_tok, n_in);
    const int64_t sp = e2h_r16_scratch_size(wtype, n_tok, n_in); // matmul_packed
    if (sp > sz) sz = sp;
    return sz < 0 ? 0 : sz; // unsupported type: matmul fills NaN and needs nothing
#else
    (void)n_tok;
    (void)n_in;
    return 0;
#endif
}

// ---- dispatch: float weight types to ours, quantized ones to the quant module ----
static void nan_fill(float *y, int64_t ldy, int64_t n_tok, int64_t n_out) {
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t i = 0; i < n_out; i++) y[t * ldy + i] = NAN;
}

static void dequantize_row_any(int type, const void *src, float *dst, int64_t n) {
    if (e2h_is_float_type(type)) {
        e2h_float_dequantize_row(type, src, dst, n);
        return;
    }
#if E2H_HAVE_QUANT
    if (e2h_quant_type_supported(type)) {
        e2h_dequantize_row_ref(type, src, dst, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) dst[i] = NAN; // unsupported: callers check traits first
}

static void quantize_row_any(int type, const float *src, void *dst, int64_t n) {
    if (e2h_is_float_type(type)) {
        e2h_float_quantize_row(type, src, dst, n);
        return;
    }
#if E2H_HAVE_QUANT
    if (e2h_quant_type_supported(type)) e2h_quantize_row_ref(type, src, dst, n);
#else
    (void)src;
    (void)dst;
    (void)n;
#endif
}

#if E2H_HAVE_QUANT
#define QMATMUL(isa) e2h_qmatmul_##isa(pool, y, ldy, x, w, wtype, n_tok, n_in, n_out, scratch)
#else
#define QMATMUL(isa) ((void)scratch, nan_fill(y, ldy, n_tok, n_out))
#endif

#define DEFINE_MATMUL(isa)                                                                   \
    static void matmul_##isa(e2h_pool *pool, float *y, int64_t ldy, const float *x,          \
                             const void *w, int wtype, int64_t n_tok, int64_t n_in,          \
                             int64_t n_out, void *scratch) {                                 \
        if (e2h_is_float_type(wtype))                                                        \
            e2h_matmul_float_##isa(pool, y, ldy, x, w, wtype, n_tok, n_in, n_out, scratch);  \
        else if (e2h_type_traits_get(wtype) && e2h_type_traits_get(wtype)->supported)        \
            QMATMUL(isa);                                                                    \
        else                                                                                 \
            nan_fill(y, ldy, n_tok, n_out);                                                  \
    }
DEFINE_MATMUL(ref)
DEFINE_MATMUL(avx2)
DEFINE_MATMUL(avx512)

// ---- the tables ----
static const e2h_ops k_ops_ref = {
    .name = "ref",
    .dequantize_row = dequantize_row_any,
    .quantize_row = quantize_row_any,
    .matmul = matmul_ref,
    .rmsnorm = e2h_rmsnorm_ref,
    .rope = e2h_rope_ref,
    .swiglu = e2h_swiglu_ref,
    .attention = e2h_attention_ref,
#if E2H_HAVE_QUANT
    .matmul_packed = e2h_r16_matmul_ex_ref,
#endif
};

static const e2h_ops k_ops_avx2 = {
    .name = "avx2",
    .dequantize_row = dequantize_row_any,
    .quantize_row = quantize_row_any,
    .matmul = matmul_avx2,
    .rmsnorm = e2h_rmsnorm_avx2,
    .rope = e2h_rope_avx2,
    .swiglu = e2h_swiglu_avx2,
    .attention = e2h_attention_avx2,
};

static const e2h_ops k_ops_avx512 = {
    .name = "avx512",
    .dequantize_row = dequantize_row_any,
    .quantize_row = quantize_row_any,
    .matmul = matmul_avx512,
    .rmsnorm = e2h_rmsnorm_avx512,
    .rope = e2h_rope_avx512,
    .swiglu = e2h_swiglu_avx512,
    .attention = e2h_attention_avx512,
#if E2H_HAVE_QUANT
    .matmul_packed = e2h_r16_matmul_ex_avx512,
#endif
};

static int cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

// The AVX-512 files are compiled with F/BW/VL/DQ/VNNI(/BF16); the quant kernels use VNNI.
static int cpu_has_avx512(void) {
    __builtin_cpu_init();
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni");
}

const e2h_ops *e2h_ops_ref(void) { return &k_ops_ref; }

const e2h_ops *e2h_ops_get(const char *which) {
    if (!which || !strcmp(which, "auto")) {
        if (cpu_has_avx512()) return &k_ops_avx512;
        if (cpu_has_avx2()) return &k_ops_avx2;
        return &k_ops_ref;
    }
    if (!strcmp(which, "ref")) return &k_ops_ref;
    if (!strcmp(which, "avx2")) return cpu_has_avx2() ? &k_ops_avx2 : NULL;
    if (!strcmp(which, "avx512")) return cpu_has_avx512() ? &k_ops_avx512 : NULL;
    return NULL;
}
