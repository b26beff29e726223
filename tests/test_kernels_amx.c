// tests/test_kernels_amx.c — AMX: detection, the scalar tile emulator, and the int8 tile
// kernels (kernels/x86/quant_amx.c) in both builds.
//
// What runs where:
//  * The emulator's instruction semantics are checked against independent formulas (a plain
//    matmul of the tile contents, hand-computed bf16 cases, the SDM's fault conditions).
//  * The EMULATED kernel build (the same kernel source, tile instructions emulated) runs on any
//    AVX-512 CPU: bit-identical to the r16 scalar reference (kernels/ref/quant_r16.c) on random
//    inputs and awkward shapes (tokens not a multiple of 16, blocks not a multiple of 2 (K not a
//    multiple of 64), rows not a multiple of 16, token blocks crossing the 64-token blocking),
//    within the r16 tests' tolerance of an exact double oracle, a token alone == in a batch,
//    1 thread == 2 threads, fused q|k|v segments, SwiGLU and RMSNorm.
//  * The REAL kernel build runs the same checks only where /proc/cpuinfo lists amx_int8 and
//    kern_amx_detect grants the tile state; elsewhere those tests are SKIPPED (not passed).
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "r16_case.h"
#include "kernels/amx.h"
#include "kernels/amx_emu.h"
#include "kernels/float_kernels.h"
#include "kernels/ops.h"
#include "kernels/quant.h"
#include "kernels/quant_r16.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float rnd_sym(void) { return (float)(th_rng_next(&rng) >> 40) * (2.0f / 16777216.0f) - 1.0f; }
static uint8_t rnd_byte(void) { return (uint8_t)(th_rng_next(&rng) >> 56); }

static int has_avx512bf16(void) { return ops_get("avx512bf16") != NULL; }

// 1 if /proc/cpuinfo lists amx_int8 (the kernel's view, independent of our CPUID code).
static int cpuinfo_has_amx_int8(void) {
    char *s = th_read_file("/proc/cpuinfo", NULL);
    int r = s && strstr(s, " amx_int8") != NULL;
    free(s);
    return r;
}

// Real tiles usable here? If not, *why says so (for SKIP).
static int real_amx(char *why, size_t len) {
    if (!cpuinfo_has_amx_int8()) {
        snprintf(why, len, "no amx_int8 in /proc/cpuinfo (the real-AMX kernel never ran here)");
        return 0;
    }
    char d[160];
    if (!kern_amx_detect(d, sizeof d)) {
        snprintf(why, len, "amx_int8 listed but the tile state is not usable: %s", d);
        return 0;
    }
    return 1;
}

// ---------------------------------------------------------------- detection

TEST(detection_matches_cpuinfo) {
    kern_amx_cpu c;
    kern_amx_cpu_get(&c);
    const int listed = cpuinfo_has_amx_int8();
    CHECKF(c.cpuid_int8 == listed, "CPUID AMX-INT8 %d, /proc/cpuinfo amx_int8 %d", c.cpuid_int8, listed);
    char why[160], why2[160];
    const int ok = kern_amx_detect(why, sizeof why);
    CHECK(ok == (why[0] == 0));
    if (!listed) { // this machine: the reason names the missing CPUID bits; amx is refused
        CHECKF(!ok && strstr(why, "CPUID leaf 7") && strstr(why, "AMX-INT8"), "why: '%s'", why);
        CHECK(ops_get("amx") == NULL);
        CHECK(e2h_kernels_resolve("amx") == NULL);
        CHECKF(strstr(e2h_kernels_why_not("amx", why2, sizeof why2), "CPUID"), "%s", why2);
        CHECKF(!strcmp(e2h_kernels_why_not(NULL, why2, sizeof why2), why), "%s", why2);
        const char *a = e2h_kernels_resolve(NULL);
        CHECK(a && strcmp(a, "amx") != 0);
        printf("  no AMX here: %s; auto = %s\n", why, a ? a : "?");
    } else {
        printf("  amx_int8 listed; detect %d (%s)\n", ok, why);
    }
    CHECK(!strcmp(e2h_kernels_why_not("ref", why2, sizeof why2), ""));
    CHECK(strstr(e2h_kernels_why_not("nope", why2, sizeof why2), "unknown") != NULL);
    if (has_avx512bf16()) CHECK(ops_get("amx-emu") != NULL && !strcmp(ops_get("amx-emu")->name, "amx-emu"));
}

// An engine asked for kernels "amx" where there is none: a clear error, not a crash.
TEST(engine_refuses_amx_with_reason) {
    char why[160];
    if (kern_amx_detect(why, sizeof why)) { SKIP("this machine has AMX"); return; }
    e2h_model *m = NULL;
    char err[512];
    const char *path = "weights/SmolLM2-135M-Instruct.Q4_1.gguf";
    if (e2h_model_load(path, NULL, &m, err, sizeof err)) { SKIP("%s absent (make model)", path); return; }
    e2h_engine_opts o = e2h_engine_opts_default();
    o.kernels = "amx";
    e2h_engine *e = NULL;
    const e2h_status st = e2h_engine_init(m, &o, &e, err, sizeof err);
    CHECKF(st == E2H_ERR_INVALID_ARG && e == NULL && strstr(err, "amx") && strstr(err, why), "%d: %s", st, err);
    e2h_engine_free(e);
    e2h_model_free(m);
}

// ---------------------------------------------------------------- emulator

static void cfg_set(amx_tilecfg *c, int t, int rows, int colsb) {
    c->rows[t] = (uint8_t)rows;
    c->colsb[t] = (uint16_t)colsb;
}

// The four int8 TDPs on random tiles of random legal shapes against a plain matmul of the
// loaded bytes: C[m][n] += sum_k A[m][k] * B[k/4][4n + k%4], int32 wrap-around.
TEST(emu_int8_dot_products) {
    int bad = 0;
    for (int it = 0; it < 400 && !bad; it++) {
        const int M = 1 + th_rng_int(&rng, 16), K4 = 1 + th_rng_int(&rng, 16), N = 1 + th_rng_int(&rng, 16);
        const int kind = it % 4, as = kind < 2, bs = kind == 0 || kind == 2; // ss, su, us, uu
        uint8_t A[16 * 64], B[16 * 64], C0[16 * 64], C1[16 * 64];
        for (int i = 0; i < 16 * 64; i++) A[i] = rnd_byte(), B[i] = rnd_byte(), C0[i] = rnd_byte();
        if (it % 7 == 0) memset(C0, 0x7f, sizeof C0); // near INT32_MAX: the sum wraps
        amx_emu s;
        amx_emu_init(&s);
        amx_tilecfg cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.palette = 1;
        cfg_set(&cfg, 1, M, 4 * N);  // C
        cfg_set(&cfg, 2, M, 4 * K4); // A
        cfg_set(&cfg, 5, K4, 4 * N); // B
        amx_emu_ldtilecfg(&s, &cfg);
        amx_emu_tileloadd(&s, 1, C0, 64);
        amx_emu_tileloadd(&s, 2, A, 64);
        amx_emu_tileloadd(&s, 5, B, 64);
        if (kind == 0) amx_emu_tdpbssd(&s, 1, 2, 5);
        if (kind == 1) amx_emu_tdpbsud(&s, 1, 2, 5);
        if (kind == 2) amx_emu_tdpbusd(&s, 1, 2, 5);
        if (kind == 3) amx_emu_tdpbuud(&s, 1, 2, 5);
        memset(C1, 0xAB, sizeof C1);
        amx_emu_tilestored(&s, 1, C1, 64);
        CHECKF(!s.fault, "%s", s.fault);
        for (int m = 0; m < 16 && !bad; m++)
            for (int n = 0; n < 16 && !bad; n++) {
                uint32_t want, got;
                if (m >= M || n >= N) { // tilestored writes only the configured rows/columns
                    bad = C1[m * 64 + 4 * n] != 0xAB;
                    continue;
                }
                memcpy(&want, C0 + m * 64 + 4 * n, 4);
                for (int k = 0; k < 4 * K4; k++) {
                    const int a = as ? (int8_t)A[m * 64 + k] : A[m * 64 + k];
                    const int b = bs ? (int8_t)B[(k / 4) * 64 + 4 * n + k % 4] : B[(k / 4) * 64 + 4 * n + k % 4];
                    want += (uint32_t)(int32_t)(a * b);
                }
                memcpy(&got, C1 + m * 64 + 4 * n, 4);
                if (got != want) {
                    CHECKF(0, "kind %d M%d K%d N%d (%d,%d): %u want %u", kind, M, 4 * K4, N, m, n, got, want);
                    bad = 1;
                }
            }
    }
}

static uint16_t bf(float f) { return kern_f32_to_bf16(f); }

// TDPBF16PS: hand-computed cases. Each product is added on its own with round-to-nearest-even
// (so 1 + 2^-24 + 2^-24 stays 1, where one rounding of the exact sum would give 1 + 2^-23);
// denormal inputs read as 0 (DAZ); a denormal result is flushed to 0 (FTZ).
TEST(emu_bf16_dot_product) {
    amx_emu s;
    amx_emu_init(&s);
    amx_tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    cfg_set(&cfg, 0, 1, 16); // C: 1 row × 4 fp32
    cfg_set(&cfg, 1, 1, 8);  // A: 1 row × 2 pairs
    cfg_set(&cfg, 2, 2, 16); // B: 2 rows × 4 pairs
    amx_emu_ldtilecfg(&s, &cfg);
    const float tiny = 0x1p-24f, den = 0x1p-130f; // den: a bf16 denormal
    // A row: pairs (a0, a1), (a2, a3); column n of B: row k holds pair (b[k][2n], b[k][2n+1])
    const uint16_t A[4] = {bf(1.0f), bf(2.0f), bf(3.0f), bf(tiny)};
    uint16_t B[2][8] = {{0}};
    const float want_c0[4] = {0.0f, 1.0f, 0.0f, 0.0f};
    const float b0[2][2][4] = {{{1.0f, tiny, 0.0f, 0x1p-120f}, {1.0f, 0.0f, den, 0.0f}},   // k = 0: (x, y) per column
                               {{1.0f, 1.0f, 0.0f, 0.0f}, {1.0f, 1.0f, 0.0f, 0.0f}}};  // k = 1
    for (int k = 0; k < 2; k++)
        for (int n = 0; n < 4; n++) B[k][2 * n] = bf(b0[k][0][n]), B[k][2 * n + 1] = bf(b0[k][1][n]);
    // column 0: 1*1 + 2*1 + 3*1 + tiny*1 = 6 (+tiny lost) ; column 1: 1 + tiny*1 + 0*2 + 3*1 + tiny*1
    //   from C = 1: 1 + tiny -> 1, +0, +3 -> 4, +tiny -> 4 ; column 2: den*2 -> 0 (DAZ) ; column 3:
    //   2^-120 * 1 = 2^-120 then + 0 ... normal; with C = 0 stays 2^-120 (not denormal)
    float C[4];
    memcpy(C, want_c0, sizeof C);
    amx_emu_tileloadd(&s, 0, C, 64);
    amx_emu_tileloadd(&s, 1, A, 64);
    amx_emu_tileloadd(&s, 2, B, 16);
    amx_emu_tdpbf16ps(&s, 0, 1, 2);
    amx_emu_tilestored(&s, 0, C, 64);
    CHECKF(!s.fault, "%s", s.fault);
    CHECKF(C[0] == 6.0f && C[1] == 4.0f && C[2] == 0.0f && C[3] == 0x1p-120f, "%a %a %a %a", C[0], C[1], C[2], C[3]);
    // per-add rounding: 1 + 2^-24 + 2^-24 = 1 (each tie rounds to even)
    const uint16_t A2[4] = {bf(1.0f), bf(1.0f), 0, 0};
    uint16_t B2[2][8] = {{bf(tiny), bf(tiny), 0, 0, 0, 0, 0, 0}, {0}};
    float C2[4] = {1.0f, 0, 0, 0};
    amx_emu_tileloadd(&s, 0, C2, 64);
    amx_emu_tileloadd(&s, 1, A2, 64);
    amx_emu_tileloadd(&s, 2, B2, 16);
    amx_emu_tdpbf16ps(&s, 0, 1, 2);
    amx_emu_tilestored(&s, 0, C2, 64);
    CHECKF(C2[0] == 1.0f, "%a", C2[0]);
    // FTZ: 2^-100 * 2^-30 = 2^-130 is denormal in f32: flushed to +0
    const uint16_t A3[4] = {bf(0x1p-100f), 0, 0, 0};
    uint16_t B3[2][8] = {{bf(0x1p-30f), 0, 0, 0, 0, 0, 0, 0}, {0}};
    float C3[4] = {0};
    amx_emu_tileloadd(&s, 0, C3, 64);
    amx_emu_tileloadd(&s, 1, A3, 64);
    amx_emu_tileloadd(&s, 2, B3, 16);
    amx_emu_tdpbf16ps(&s, 0, 1, 2);
    amx_emu_tilestored(&s, 0, C3, 64);
    CHECKF(C3[0] == 0.0f && !signbit(C3[0]), "%a", C3[0]);
}

// Loads zero what lies outside the configured rows/columns; LDTILECFG zeroes every tile.
TEST(emu_load_zeroes_and_config_clears) {
    amx_emu s;
    amx_emu_init(&s);
    amx_tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    cfg_set(&cfg, 0, 16, 64);
    cfg_set(&cfg, 3, 3, 8);
    amx_emu_ldtilecfg(&s, &cfg);
    uint8_t ff[16 * 64];
    memset(ff, 0xFF, sizeof ff);
    amx_emu_tileloadd(&s, 0, ff, 64);
    amx_emu_tileloadd(&s, 3, ff, 64);
    int ok = 1;
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 64; c++) ok &= s.t[3][r][c] == ((r < 3 && c < 8) ? 0xFF : 0) && s.t[0][r][c] == 0xFF;
    CHECK(ok);
    amx_emu_ldtilecfg(&s, &cfg);
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 64; c++) ok &= s.t[0][r][c] == 0;
    CHECK(ok && !s.fault);
    amx_emu_tilerelease(&s);
    CHECK(!s.configured);
}

// The #GP/#UD conditions: each recorded as a fault, the instruction ignored.
TEST(emu_faults) {
    amx_tilecfg good;
    memset(&good, 0, sizeof good);
    good.palette = 1;
    cfg_set(&good, 0, 16, 64); // C
    cfg_set(&good, 1, 16, 32); // A
    cfg_set(&good, 2, 8, 64);  // B
    struct { const char *what; int field, val; } bad_cfgs[] = {
        {"palette 2", 0, 2}, {"rows 17", 1, 17}, {"colsb 65", 2, 65}, {"reserved byte", 3, 1},
        {"start_row", 4, 1}, {"rows without colsb", 5, 4}};
    for (size_t i = 0; i < sizeof bad_cfgs / sizeof *bad_cfgs; i++) {
        amx_tilecfg c = good;
        switch (bad_cfgs[i].field) {
        case 0: c.palette = (uint8_t)bad_cfgs[i].val; break;
        case 1: c.rows[0] = (uint8_t)bad_cfgs[i].val; break;
        case 2: c.colsb[0] = (uint16_t)bad_cfgs[i].val; break;
        case 3: c.reserved0[5] = 1; break;
        case 4: c.start_row = 1; break;
        case 5: c.rows[6] = 4; break;
        }
        amx_emu s;
        amx_emu_init(&s);
        amx_emu_ldtilecfg(&s, &c);
        CHECKF(s.fault && !s.configured, "%s: no fault", bad_cfgs[i].what);
    }
    uint8_t buf[16 * 64] = {0};
    amx_emu s;
    amx_emu_init(&s);
    amx_emu_tileloadd(&s, 0, buf, 64);
    CHECKF(s.fault && strstr(s.fault, "TILES_CONFIGURED"), "%s", s.fault ? s.fault : "none");
    amx_emu_init(&s);
    amx_emu_ldtilecfg(&s, &good);
    amx_emu_tileloadd(&s, 5, buf, 64); // tile 5 not configured
    CHECK(s.fault != NULL);
    amx_emu_init(&s);
    amx_emu_ldtilecfg(&s, &good);
    amx_emu_tdpbsud(&s, 0, 2, 1); // A/B swapped: 64/4 != 16 rows... shapes mismatch
    CHECK(s.fault != NULL);
    amx_emu_init(&s);
    amx_emu_ldtilecfg(&s, &good);
    amx_emu_tdpbsud(&s, 0, 0, 2); // operands not distinct
    CHECK(s.fault != NULL);
    amx_emu_init(&s);
    amx_emu_ldtilecfg(&s, &good);
    amx_emu_tdpbsud(&s, 0, 1, 2); // legal
    CHECK(s.fault == NULL);
    amx_tilecfg odd = good;
    cfg_set(&odd, 1, 15, 32); // A 15 rows, C 16
    amx_emu_ldtilecfg(&s, &odd);
    amx_emu_tdpbsud(&s, 0, 1, 2);
    CHECK(s.fault != NULL);
}

// ---------------------------------------------------------------- tile kernels

typedef void (*mmx_fn)(e2h_pool *, const e2h_mm_out *, const float *, const void *, int, int64_t, int64_t,
                       int64_t, void *);

typedef r16_case acase;

static void acase_init(acase *c, int type, int64_t n_tok, int64_t n_in, int64_t n_out) {
    r16_case_init(c, type, n_tok, n_in, n_out, rnd_sym);
}

static void acase_free(acase *c) { r16_case_free(c); }

static void run(mmx_fn f, e2h_pool *pool, acase *c, float *y, int64_t n_tok, int64_t t0) {
    kern_r16_matmul_plain(f, pool, y, c->n_out, c->x + t0 * c->n_in, c->wp, c->type, n_tok, c->n_in, c->n_out,
                          c->scratch);
}

// Exact value the quantized kernels approximate (test_kernels_r16.c's oracle): dequantized
// weights · dequantized int8 activations in double, and the magnitude Σ|terms|.
static double exact_dot(const acase *c, int64_t t, int64_t r, double *mag) {
    const int64_t nb = c->n_in / 32, nb2 = kern_qx32_nb2(c->n_in);
    const uint8_t *tok = (const uint8_t *)c->scratch + t * kern_r16_token_stride(c->n_in);
    const int8_t *q = (const int8_t *)tok;
    const float *dx = (const float *)(tok + nb2 * 32), *sx = dx + nb2;
    const size_t rs = kern_type_row_size(c->type, c->n_in), bsz = kern_type_row_size(c->type, 32);
    double s = 0, m = 0;
    for (int64_t b = 0; b < nb; b++) {
        uint8_t tmp[64];
        memcpy(tmp, c->w + r * rs + b * bsz, bsz);
        float deq[32], mw = 0;
        if (c->type == E2H_TYPE_Q4_1) {
            uint16_t h;
            memcpy(&h, tmp + 2, 2);
            mw = kern_q_h2f(h);
            memset(tmp + 2, 0, 2);
        }
        kern_dequantize_row_ref(c->type, tmp, deq, 32);
        for (int e = 0; e < 32; e++) {
            const double term = (double)deq[e] * q[32 * b + e] * dx[b];
            s += term, m += fabs(term);
        }
        s += (double)mw * sx[b], m += fabs((double)mw * sx[b]);
    }
    *mag = m;
    return s;
}

static const int k_types[] = {E2H_TYPE_Q4_0, E2H_TYPE_Q4_1, E2H_TYPE_Q8_0};
// (tokens, n_in, n_out): tokens around 16 and across the 64-token blocking; n_in with odd block
// counts (K not a multiple of 64) and 1 block; n_out not a multiple of 16, odd group counts.
static const int64_t k_shapes[][3] = {{16, 64, 16},  {17, 96, 17},  {1, 32, 1},    {15, 160, 33},
                                      {33, 576, 45}, {64, 224, 31}, {67, 96, 100}, {130, 64, 49},
                                      {5, 1536, 64}, {48, 32, 20}};

// f (a tile kernel) against the r16 ref, bit for bit, then invariance: n tokens at once with 1
// and 2 threads, and each token alone: all identical.
static int check_kernel(mmx_fn f, acase *c, const char **what) {
    const size_t ny = (size_t)(c->n_tok * c->n_out);
    float *want = malloc(sizeof(float) * ny), *ya = malloc(sizeof(float) * ny);
    float *yb = malloc(sizeof(float) * ny), *y1 = malloc(sizeof(float) * ny);
    e2h_pool *p2 = pool_init(2);
    run(kern_r16_matmul_ex_ref, NULL, c, want, c->n_tok, 0);
    run(f, NULL, c, ya, c->n_tok, 0);
    run(f, p2, c, yb, c->n_tok, 0);
    int ok = 1;
    *what = "";
    if (memcmp(want, ya, sizeof(float) * ny)) ok = 0, *what = "differs from the r16 ref";
    else if (memcmp(ya, yb, sizeof(float) * ny)) ok = 0, *what = "1 thread != 2 threads";
    // the exact oracle (needs the batch's quantized activations: recompute them)
    run(kern_r16_matmul_ex_ref, NULL, c, want, c->n_tok, 0);
    for (int64_t t = 0; t < c->n_tok && ok; t++)
        for (int64_t r = 0; r < c->n_out && ok; r++) {
            double mag;
            const double ex = exact_dot(c, t, r, &mag);
            if (!(fabs(ya[t * c->n_out + r] - ex) <= 1e-6 + 2e-6 * mag)) ok = 0, *what = "off the exact oracle";
        }
    for (int64_t t = 0; t < c->n_tok; t++) run(f, p2, c, y1 + t * c->n_out, 1, t);
    if (ok && memcmp(ya, y1, sizeof(float) * ny)) ok = 0, *what = "a token alone != in the batch";
    pool_free(p2);
    free(want), free(ya), free(yb), free(y1);
    return ok;
}

static void kernel_suite(mmx_fn f, const char *name) {
    for (size_t ti = 0; ti < sizeof k_types / sizeof *k_types; ti++)
        for (size_t si = 0; si < sizeof k_shapes / sizeof *k_shapes; si++) {
            acase c;
            const int64_t *s = k_shapes[si];
            acase_init(&c, k_types[ti], s[0], s[1], s[2]);
            const char *what;
            CHECKF(check_kernel(f, &c, &what), "%s type %d shape %lldx%lldx%lld: %s", name, c.type, (long long)s[0],
                   (long long)s[1], (long long)s[2], what);
            acase_free(&c);
        }
}

// Fused outputs (q|k|v segments; gate/up groups interleaved with SwiGLU; RMSNorm in the
// prologue) against the fused call of the r16 ref (segments) or of the AVX-512 r16 kernel
// (SwiGLU: the tile kernels' epilogue is the AVX-512 swiglu, which differs from the ref's in
// the last bits; their matmuls are identical), bit for bit.
static int check_fused(mmx_fn f, int type, int64_t n_tok, int64_t n_in, int norm, int swiglu) {
    const int64_t rows = swiglu ? 64 : 48 + 16 + 16;
    acase c;
    acase_init(&c, type, n_tok, n_in, rows);
    float *nw = malloc(sizeof(float) * (size_t)n_in);
    for (int64_t i = 0; i < n_in; i++) nw[i] = 0.5f + rnd_sym();
    const int64_t w_out = swiglu ? rows / 2 : rows;
    float *a = calloc((size_t)(n_tok * w_out), 4), *b = calloc((size_t)(n_tok * w_out), 4);
    int ok = 1;
    for (int threads = 1; threads <= 2; threads++) {
        e2h_pool *p = threads == 2 ? pool_init(2) : NULL;
        float *ys[2] = {a, b};
        for (int i = 0; i < 2; i++) {
            float *y = ys[i];
            if (swiglu) {
                const e2h_mm_seg seg = {y, w_out, w_out};
                const e2h_mm_out o = {&seg, 1, 1, norm ? nw : NULL, 1e-5f};
                (i ? f : kern_r16_matmul_ex_avx512)(p, &o, c.x, c.wp, type, n_tok, n_in, rows, c.scratch);
            } else { // 3 segments of 48, 16, 16 rows, each its own array (here: one, strided)
                const e2h_mm_seg segs[3] = {{y, rows, 48}, {y + 48, rows, 16}, {y + 64, rows, 16}};
                const e2h_mm_out o = {segs, 3, 0, norm ? nw : NULL, 1e-5f};
                (i ? f : kern_r16_matmul_ex_ref)(p, &o, c.x, c.wp, type, n_tok, n_in, rows, c.scratch);
            }
        }
        ok &= !memcmp(a, b, sizeof(float) * (size_t)(n_tok * w_out));
        pool_free(p);
    }
    free(a), free(b), free(nw);
    acase_free(&c);
    return ok;
}

static void fused_suite(mmx_fn f, const char *name) {
    const int64_t shapes[][2] = {{16, 96}, {19, 576}, {40, 160}};
    for (size_t ti = 0; ti < sizeof k_types / sizeof *k_types; ti++)
        for (size_t si = 0; si < 3; si++)
            for (int norm = 0; norm < 2; norm++)
                for (int sw = 0; sw < 2; sw++)
                    CHECKF(check_fused(f, k_types[ti], shapes[si][0], shapes[si][1], norm, sw),
                           "%s type %d shape %zu norm %d swiglu %d", name, k_types[ti], si, norm, sw);
}

// Writes zeros: a kernel the self-test must reject.
static void zero_kernel(e2h_pool *pool, const e2h_mm_out *out, const float *x, const void *wp, int wtype,
                        int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch) {
    (void)pool, (void)x, (void)wp, (void)wtype, (void)n_in, (void)scratch;
    for (int64_t t = 0; t < n_tok; t++) memset(out->segs[0].y + t * out->segs[0].ldy, 0, sizeof(float) * (size_t)n_out);
}

TEST(emulated_tiles_match_ref) {
    if (!has_avx512bf16()) { SKIP("no AVX-512 BF16 (the tile kernels' epilogue needs AVX-512)"); return; }
    kernel_suite(kern_amx_r16_matmul_ex_tiles_emu, "emu tiles");
    kernel_suite(kern_amx_r16_matmul_ex_emu, "emu dispatch (< 16 tokens: VNNI)");
}

TEST(emulated_tiles_fused) {
    if (!has_avx512bf16()) { SKIP("no AVX-512 BF16"); return; }
    fused_suite(kern_amx_r16_matmul_ex_tiles_emu, "emu");
}

TEST(selftest_accepts_emu_rejects_wrong) {
    if (!has_avx512bf16()) { SKIP("no AVX-512 BF16"); return; }
    CHECK(ops_amx_selftest(kern_amx_r16_matmul_ex_tiles_emu) == 1);
    CHECK(ops_amx_selftest(zero_kernel) == 0);
}

// The whole model through the amx-emu table: logits of a 40-token prompt (prefill on tiles:
// two full token tiles and a tail) bit-identical to the avx512bf16 table's.
TEST(model_logits_amx_emu_equal_avx512) {
    if (!has_avx512bf16()) { SKIP("no AVX-512 BF16"); return; }
    const char *path = "weights/SmolLM2-135M-Instruct.Q4_1.gguf";
    e2h_model *m = NULL;
    char err[512];
    if (e2h_model_load(path, NULL, &m, err, sizeof err)) { SKIP("%s absent (make model)", path); return; }
    e2h_model_info mi;
    e2h_model_get_info(m, &mi);
    CHECK(mi.packed_bytes > 0); // the r16 copies exist (else the tiles would not run)
    enum { N = 40 };
    int32_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = 1 + (i * 7919) % 40000;
    float *l[2];
    const char *k[2] = {"avx512bf16", "amx-emu"};
    for (int i = 0; i < 2; i++) {
        e2h_engine_opts o = e2h_engine_opts_default();
        o.kernels = k[i];
        o.n_threads = 2;
        l[i] = malloc(sizeof(float) * (size_t)N * (size_t)mi.vocab_size);
        e2h_engine *e = th_engine(m, &o);
        CHECK(e && e2h_eval_logits(e, ids, N, l[i]) == E2H_OK);
        e2h_engine_free(e);
    }
    CHECK(!memcmp(l[0], l[1], sizeof(float) * (size_t)N * (size_t)mi.vocab_size));
    free(l[0]), free(l[1]);
    e2h_model_free(m);
}

// The real-instruction build: the same checks, only where the tiles exist.
TEST(real_tiles_match_ref) {
    char why[200];
    if (!real_amx(why, sizeof why)) { SKIP("%s", why); return; }
    kernel_suite(kern_amx_r16_matmul_ex_tiles, "real tiles");
    kernel_suite(kern_amx_r16_matmul_ex, "real dispatch");
    CHECK(ops_amx_selftest(kern_amx_r16_matmul_ex_tiles) == 1);
    CHECK(ops_get("amx") != NULL);
}

TEST(real_tiles_fused) {
    char why[200];
    if (!real_amx(why, sizeof why)) { SKIP("%s", why); return; }
    fused_suite(kern_amx_r16_matmul_ex_tiles, "real");
}

int main(void) {
    RUN(detection_matches_cpuinfo);
    RUN(engine_refuses_amx_with_reason);
    RUN(emu_int8_dot_products);
    RUN(emu_bf16_dot_product);
    RUN(emu_load_zeroes_and_config_clears);
    RUN(emu_faults);
    RUN(emulated_tiles_match_ref);
    RUN(emulated_tiles_fused);
    RUN(selftest_accepts_emu_rejects_wrong);
    RUN(model_logits_amx_emu_equal_avx512);
    RUN(real_tiles_match_ref);
    RUN(real_tiles_fused);
    return TEST_SUMMARY();
}
