// kernels/ops.c — the dispatch layer of kernels/: scratch sizes and the ops tables (ref, AVX2,
// AVX-512) chosen at run time from CPU features. Kernel files never include ops.h (types.h is
// their vocabulary), so the arrows point one way: ops.c -> kernel files -> types.c.
//
// Float weight types (f32/f16/bf16) go to the float kernels (kernels/ref/float.c,
// kernels/x86/float_*.c); quantized types go to the quant kernels (kernels/quant.h).
#include "ops.h"

#include <math.h>
#include <string.h>

#include <stdio.h>

#include "amx.h"
#include "float_kernels.h"
#include "quant.h"
#include "quant_r16.h"

// ---- scratch sizes ----
int64_t ops_matmul_scratch_size(int wtype, int64_t n_tok, int64_t n_in) {
    // float kernels read x directly, but for bf16 weights the avx512bf16 table rounds it to bf16
    if (wtype == E2H_TYPE_BF16) return kern_bf16dot_scratch_size(n_tok, n_in);
    if (kern_is_float_type(wtype)) return 0;
    int64_t sz = kern_qmatmul_scratch_size(wtype, n_tok, n_in);
    const int64_t sp = kern_r16_scratch_size(wtype, n_tok, n_in); // matmul_packed
    if (sp > sz) sz = sp;
    return sz < 0 ? 0 : sz; // unsupported type: matmul fills NaN and needs nothing
}

// ---- dispatch: float weight types to ours, quantized ones to the quant module ----
static void nan_fill(float *y, int64_t ldy, int64_t n_tok, int64_t n_out) {
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t i = 0; i < n_out; i++) y[t * ldy + i] = NAN;
}

static void dequantize_row_any(int type, const void *src, float *dst, int64_t n) {
    if (kern_is_float_type(type)) {
        kern_float_dequantize_row(type, src, dst, n);
        return;
    }
    if (kern_quant_type_supported(type)) {
        kern_dequantize_row_ref(type, src, dst, n);
        return;
    }
    for (int64_t i = 0; i < n; i++) dst[i] = NAN; // unsupported: callers check traits first
}

static void quantize_row_any(int type, const float *src, void *dst, int64_t n) {
    if (kern_is_float_type(type)) {
        kern_float_quantize_row(type, src, dst, n);
        return;
    }
    if (kern_quant_type_supported(type)) kern_quantize_row_ref(type, src, dst, n);
}

#define QMATMUL(isa) kern_qmatmul_##isa(pool, y, ldy, x, w, wtype, n_tok, n_in, n_out, scratch)

#define DEFINE_MATMUL(isa)                                                                   \
    static void matmul_##isa(e2h_pool *pool, float *y, int64_t ldy, const float *x,          \
                             const void *w, int wtype, int64_t n_tok, int64_t n_in,          \
                             int64_t n_out, void *scratch) {                                 \
        if (kern_is_float_type(wtype))                                                        \
            kern_matmul_float_##isa(pool, y, ldy, x, w, wtype, n_tok, n_in, n_out, scratch);  \
        else if (kern_type_traits_get(wtype) && kern_type_traits_get(wtype)->supported)        \
            QMATMUL(isa);                                                                    \
        else                                                                                 \
            nan_fill(y, ldy, n_tok, n_out);                                                  \
    }
DEFINE_MATMUL(ref)
DEFINE_MATMUL(avx2)
DEFINE_MATMUL(avx512)

// AVX-512 with AVX512_BF16: bf16 weights go to the vdpbf16ps kernel (activations rounded to
// bf16; a different arithmetic from the f32 tables, see kernels/float_kernels.h) for every
// batch size, decode included, so a row's result never depends on the batch it is in. Other
// weight types as the avx512 table.
static void matmul_avx512bf16(e2h_pool *pool, float *y, int64_t ldy, const float *x,
                              const void *w, int wtype, int64_t n_tok, int64_t n_in,
                              int64_t n_out, void *scratch) {
    if (wtype == E2H_TYPE_BF16)
        kern_matmul_bf16dot_avx512(pool, y, ldy, x, w, n_tok, n_in, n_out, scratch);
    else
        matmul_avx512(pool, y, ldy, x, w, wtype, n_tok, n_in, n_out, scratch);
}

// ---- the tables ----
static const e2h_ops k_ops_ref = {
    .name = "ref",
    .dequantize_row = dequantize_row_any,
    .quantize_row = quantize_row_any,
    .matmul = matmul_ref,
    .rmsnorm = kern_rmsnorm_ref,
    .rope = kern_rope_ref,
    .swiglu = kern_swiglu_ref,
    .attention = kern_attention_ref,
    .attention_phase = kern_attn_phase_ref,
    .matmul_packed = kern_r16_matmul_ex_ref,
};

static const e2h_ops k_ops_avx2 = {
    .name = "avx2",
    .dequantize_row = dequantize_row_any,
    .quantize_row = quantize_row_any,
    .matmul = matmul_avx2,
    .rmsnorm = kern_rmsnorm_avx2,
    .rope = kern_rope_avx2,
    .swiglu = kern_swiglu_avx2,
    .attention = kern_attention_avx2,
    .attention_phase = kern_attn_phase_avx2,
};

// The AVX-512 family's tables differ only in their name and matmuls.
#define OPS_AVX512_COMMON                                                                          \
    .dequantize_row = dequantize_row_any, .quantize_row = quantize_row_any,                       \
    .rmsnorm = kern_rmsnorm_avx512, .rope = kern_rope_avx512, .swiglu = kern_swiglu_avx512,        \
    .attention = kern_attention_avx512, .attention_phase = kern_attn_phase_avx512

static const e2h_ops k_ops_avx512 = {
    OPS_AVX512_COMMON,
    .name = "avx512",
    .matmul = matmul_avx512,
    .matmul_packed = kern_r16_matmul_ex_avx512,
};

static const e2h_ops k_ops_avx512bf16 = {
    OPS_AVX512_COMMON,
    .name = "avx512bf16",
    .matmul = matmul_avx512bf16,
    .matmul_packed = kern_r16_matmul_ex_avx512,
};

// AMX (kernels/amx.h): the avx512bf16 table with r16 matmuls of 16+ tokens on int8 tiles
// (bit-identical results); opt-in until it has run on AMX hardware (see ops_get). "amx-emu"
// runs the same kernel source on the scalar tile emulator: slow, for tests on CPUs without AMX.
// Neither is chosen by "auto".
static const e2h_ops k_ops_amx = {
    OPS_AVX512_COMMON,
    .name = "amx",
    .matmul = matmul_avx512bf16,
    .matmul_packed = kern_amx_r16_matmul_ex,
};

static const e2h_ops k_ops_amx_emu = {
    OPS_AVX512_COMMON,
    .name = "amx-emu",
    .matmul = matmul_avx512bf16,
    .matmul_packed = kern_amx_r16_matmul_ex_emu,
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

static int cpu_has_avx512bf16(void) {
    return cpu_has_avx512() && __builtin_cpu_supports("avx512bf16");
}

// Runs a tile kernel `f` once on a small q8_0 case (17 tokens: a full tile and a 1-token tail;
// 2 groups, the second partial) and compares it bit for bit with the AVX-512 r16 kernel: a
// guard against a tile path that runs but computes something else on some CPU.
int ops_amx_selftest(e2h_r16_ex_fn f) {
    enum { NT = 17, NI = 64, NO = 20 };
    static_assert(NT * 128 + NT * (NI / 32) * 4 + 64 <= 4096, "self-test scratch");
    uint8_t w[2 * (NI / 32) * (512 + 32)] __attribute__((aligned(64)));
    uint8_t scratch[4096] __attribute__((aligned(64)));
    float x[NT * NI], y0[NT * NO], y1[NT * NO];
    uint32_t r = 12345u;
    for (size_t i = 0; i < sizeof w; i++) w[i] = (uint8_t)((r = r * 1103515245u + 12345u) >> 16);
    for (int g = 0; g < 2; g++) // f16 scales in 0.5..1: finite, so the comparison is strict
        for (int b = 0; b < NI / 32; b++)
            for (int k = 0; k < 16; k++) {
                const uint16_t h = (uint16_t)(0x3800 + (k * 37 + b * 11 + g * 5) % 1024);
                memcpy(w + g * (NI / 32) * 544 + (NI / 32) * 512 + b * 32 + 2 * k, &h, 2);
            }
    for (int i = 0; i < NT * NI; i++) x[i] = (float)((int)((r = r * 1103515245u + 12345u) >> 20) % 200 - 100) / 37.0f;
    if (kern_r16_scratch_size(E2H_TYPE_Q8_0, NT, NI) > (int64_t)sizeof scratch) return 0;
    kern_r16_matmul_plain(kern_r16_matmul_ex_avx512, NULL, y0, NO, x, w, E2H_TYPE_Q8_0, NT, NI, NO, scratch);
    kern_r16_matmul_plain(f, NULL, y1, NO, x, w, E2H_TYPE_Q8_0, NT, NI, NO, scratch);
    return !memcmp(y0, y1, sizeof y0);
}

// 1 if the amx table can run here; else 0 and why.
static int cpu_has_amx(char *why, size_t len) {
    if (!kern_amx_detect(why, len)) return 0;
    if (!cpu_has_avx512bf16()) {
        snprintf(why, len, "AMX present but AVX-512 F/BW/VL/DQ/VNNI/BF16 missing (the tile kernels use them)");
        return 0;
    }
    if (!ops_amx_selftest(kern_amx_r16_matmul_ex_tiles)) {
        snprintf(why, len, "AMX self-test: tile results differ from the AVX-512 kernel's");
        return 0;
    }
    return 1;
}

const char *ops_why_not(const char *which, char *why, size_t len) {
    if (!len) return why;
    why[0] = 0;
    if (!which || !strcmp(which, "auto")) {
        // see ops_get: auto never picks the tile kernels yet
        if (cpu_has_amx(why, len))
            snprintf(why, len, "AMX present, not picked by auto: the tile kernels have never run on AMX "
                               "hardware (only emulated); opt in with --kernels amx");
    } else if (!strcmp(which, "amx")) {
        if (cpu_has_amx(why, len)) why[0] = 0;
    } else if (!strcmp(which, "amx-emu")) {
        if (!cpu_has_avx512bf16()) snprintf(why, len, "amx-emu needs AVX-512 with BF16");
    } else if (!ops_get(which)) {
        snprintf(why, len, "'%s' is unknown or not supported by this CPU", which);
    }
    return why;
}

const e2h_ops *ops_ref(void) { return &k_ops_ref; }

const e2h_ops *ops_get(const char *which) {
    char why[160];
    if (!which || !strcmp(which, "auto")) {
        // The AMX tile kernels are opt-in (--kernels amx) until they have run on AMX hardware:
        // they are verified only through the scalar tile emulator (amx-emu), and the start-up
        // self-test catches wrong results, not a fault in a never-executed instruction path.
        if (cpu_has_avx512bf16()) return &k_ops_avx512bf16;
        if (cpu_has_avx512()) return &k_ops_avx512;
        if (cpu_has_avx2()) return &k_ops_avx2;
        return &k_ops_ref;
    }
    if (!strcmp(which, "ref")) return &k_ops_ref;
    if (!strcmp(which, "avx2")) return cpu_has_avx2() ? &k_ops_avx2 : NULL;
    if (!strcmp(which, "avx512")) return cpu_has_avx512() ? &k_ops_avx512 : NULL;
    if (!strcmp(which, "avx512bf16")) return cpu_has_avx512bf16() ? &k_ops_avx512bf16 : NULL;
    if (!strcmp(which, "amx")) return cpu_has_amx(why, sizeof why) ? &k_ops_amx : NULL;
    if (!strcmp(which, "amx-emu")) return cpu_has_avx512bf16() ? &k_ops_amx_emu : NULL;
    return NULL;
}
