// tests/test_kernels.c — float kernels, conversions and paged attention: every ops table this
// CPU runs (ref, avx2, avx512) against independent double-precision oracles written here, on
// random inputs with awkward shapes; plus the bit-exactness contracts (batch invariance,
// thread-count invariance, ref == SIMD for matmul/rope, attention independent of batching).
//
// Tolerances (|got - oracle| <= abs + rel * |oracle|), inputs uniform in [-1, 1]:
//   matmul (f32/f16/bf16 weights; the weights convert exactly): abs 1e-4, rel 1e-4
//   rmsnorm: abs 1e-6, rel 1e-5     rope: abs 2e-6, rel 1e-5
//   swiglu (gate in [-20, 20]): abs 1e-6, rel 1e-5
//   attention (f32 or f16 K/V, oracle reads the same converted values): abs 2e-5, rel 1e-4
//   bf16 dot-product matmul (activations rounded to bf16; kernels/float_kernels.h): the ref
//   against a double oracle over the same rounded values, abs 1e-4, rel 1e-4; the AVX512_BF16
//   table against the ref, abs 2e-6, rel 1e-5 (same order of additions; they may differ only
//   where vdpbf16ps flushes subnormals or adds a pair differently: measured bit-identical
//   here, the count is printed)
#include <cpuid.h>
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "kernels/float_kernels.h"
#include "kernels/ops.h"
#include "kernels/pool.h"

// ---- helpers ----
typedef struct { uint64_t s; } rng;
static uint32_t rng_u32(rng *r) {
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return (uint32_t)(r->s >> 16);
}
static float rng_unif(rng *r, float lo, float hi) {
    return lo + (hi - lo) * (float)(rng_u32(r) & 0xffffff) / (float)0x1000000;
}
static void fill(rng *r, float *x, int64_t n, float lo, float hi) {
    for (int64_t i = 0; i < n; i++) x[i] = rng_unif(r, lo, hi);
}

static int close_enough(double got, double want, double abs_tol, double rel_tol) {
    return fabs(got - want) <= abs_tol + rel_tol * fabs(want);
}

// The ops tables this CPU can run.
static const e2h_ops *g_tables[3];
static int g_n_tables;
static e2h_pool *g_pool2;

static void tables_init(void) {
    const char *names[3] = {"ref", "avx2", "avx512"};
    for (int i = 0; i < 3; i++) {
        const e2h_ops *o = ops_get(names[i]);
        if (o) g_tables[g_n_tables++] = o;
        else printf("  (table %s not available on this CPU)\n", names[i]);
    }
}

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

// ---- conversions ----
__attribute__((target("f16c"))) static float f16c_to_f32(uint16_t h) { return _cvtsh_ss(h); }
__attribute__((target("f16c"))) static uint16_t f16c_from_f32(float f) {
    return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}

// CPUID.1:ECX bit 29 (clang 14's __builtin_cpu_supports does not know "f16c")
static int has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1);
}

TEST(f16_to_f32_all_values) {
    if (!has_f16c()) { printf("  skipped: no F16C\n"); return; }
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float a = kern_f16_to_f32((e2h_f16)h), b = f16c_to_f32((uint16_t)h);
        if (fbits(a) != fbits(b) && !(isnan(a) && isnan(b))) bad++;
    }
    CHECKF(bad == 0, "%d halves differ from F16C", bad);
}

TEST(f32_to_f16_matches_f16c) {
    if (!has_f16c()) { printf("  skipped: no F16C\n"); return; }
    rng r = {0x1234567};
    int bad = 0;
    float specials[] = {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, 1e-8f, 5.96e-8f, 2.98e-8f,
                        6.1e-5f, INFINITY, -INFINITY, 1.0f / 3.0f};
    for (unsigned i = 0; i < sizeof specials / sizeof *specials; i++)
        if (kern_f32_to_f16(specials[i]) != f16c_from_f32(specials[i])) bad++;
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = rng_u32(&r) | (rng_u32(&r) << 16 & 0xffff0000u);
        // concentrate on the f16 range, including subnormals and overflow
        u = (u & 0x807fffffu) | ((uint32_t)(100 + rng_u32(&r) % 50) << 23);
        float f;
        memcpy(&f, &u, 4);
        if (kern_f32_to_f16(f) != f16c_from_f32(f)) bad++;
    }
    CHECKF(bad == 0, "%d values differ from F16C", bad);
    CHECK(isnan(kern_f16_to_f32(kern_f32_to_f16(NAN))));
}

// bf16 oracle: nearest of the two truncation neighbours by exact double distance, ties even.
static uint16_t bf16_oracle(float f) {
    uint32_t u = fbits(f), lo = u & 0xffff0000u, hi = lo + 0x10000u;
    float flo, fhi;
    memcpy(&flo, &lo, 4);
    memcpy(&fhi, &hi, 4);
    if (isinf(fhi)) return (uint16_t)(((u & 0xffff) >= 0x8000 ? hi : lo) >> 16); // max finite: tie goes up (odd)
    double dl = fabs((double)f - flo), dh = fabs((double)fhi - f);
    if (dl < dh || (dl == dh && !((lo >> 16) & 1))) return (uint16_t)(lo >> 16);
    return (uint16_t)(hi >> 16);
}

TEST(bf16_conversions) {
    rng r = {99};
    int bad = 0;
    for (int i = 0; i < 1000000; i++) {
        uint32_t u = (rng_u32(&r) << 16) ^ rng_u32(&r);
        u &= 0xff7fffffu; // finite values only
        float f;
        memcpy(&f, &u, 4);
        if (kern_f32_to_bf16(f) != bf16_oracle(f)) bad++;
        uint16_t h = (uint16_t)rng_u32(&r);
        if (fbits(kern_bf16_to_f32(h)) != (uint32_t)h << 16) bad++;
    }
    CHECKF(bad == 0, "%d mismatches", bad);
    CHECK(isnan(kern_bf16_to_f32(kern_f32_to_bf16(NAN))));
    CHECK(kern_f32_to_bf16(1.0f) == 0x3f80);
}

TEST(type_traits) {
    CHECK(kern_type_row_size(E2H_TYPE_F32, 72) == 288);
    CHECK(kern_type_row_size(E2H_TYPE_F16, 72) == 144);
    CHECK(kern_type_row_size(E2H_TYPE_BF16, 5) == 10);
    CHECK(kern_type_row_size(E2H_TYPE_Q4_0, 64) == 36);
    CHECK(kern_type_row_size(E2H_TYPE_Q4_0, 65) == 0);
    CHECK(kern_type_row_size(E2H_TYPE_Q4_K, 512) == 288);
    CHECK(kern_type_row_size(39, 32) == 0);
    CHECK(kern_type_row_size(-1, 32) == 0);
    CHECK(kern_type_traits_get(4) == NULL);
    CHECK(kern_type_traits_get(1000) == NULL);
    CHECK(kern_type_traits_get(E2H_TYPE_BF16)->supported == 1);
    CHECK(!strcmp(kern_type_traits_get(E2H_TYPE_Q6_K)->name, "q6_K"));
    CHECK(ops_get("nope") == NULL);
    CHECK(ops_get("auto") != NULL);
    CHECK(ops_ref() == ops_get("ref"));
    if (ops_get("avx512bf16")) CHECK(ops_get("auto") == ops_get("avx512bf16"));
}

TEST(float_row_roundtrip) {
    rng r = {7};
    float x[37], y[37];
    uint16_t h[37];
    fill(&r, x, 37, -3, 3);
    const e2h_ops *o = ops_ref();
    o->quantize_row(E2H_TYPE_F16, x, h, 37);
    o->dequantize_row(E2H_TYPE_F16, h, y, 37);
    for (int i = 0; i < 37; i++) CHECK(fabsf(x[i] - y[i]) <= 1e-3f * fabsf(x[i]) + 1e-7f);
    o->quantize_row(E2H_TYPE_BF16, x, h, 37);
    o->dequantize_row(E2H_TYPE_BF16, h, y, 37);
    for (int i = 0; i < 37; i++) CHECK(fabsf(x[i] - y[i]) <= 4e-3f * fabsf(x[i]));
    o->quantize_row(E2H_TYPE_F32, x, y, 37);
    CHECK(!memcmp(x, y, sizeof x));
}

// ---- matmul ----
static void *make_weights(rng *r, int wtype, int64_t n_out, int64_t n_in, float *wf) {
    size_t row = kern_type_row_size(wtype, n_in);
    char *w = malloc(row * n_out);
    fill(r, wf, n_out * n_in, -1, 1);
    for (int64_t i = 0; i < n_out; i++) {
        ops_ref()->quantize_row(wtype, wf + i * n_in, w + i * row, n_in);
        ops_ref()->dequantize_row(wtype, w + i * row, wf + i * n_in, n_in); // exact values
    }
    return w;
}

static const int k_wtypes[3] = {E2H_TYPE_F32, E2H_TYPE_F16, E2H_TYPE_BF16};

TEST(matmul_vs_double_oracle) {
    const int64_t shapes[][3] = {{1, 72, 37}, {9, 200, 45}, {7, 1000, 13}, {13, 31, 5},
                                 {3, 16, 4},  {1, 1, 3},    {20, 130, 66}, {6, 576, 17}};
    rng r = {42};
    for (unsigned s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int wt = 0; wt < 3; wt++) {
            const int64_t nt = shapes[s][0], ni = shapes[s][1], no = shapes[s][2], ldy = no + 3;
            float *wf = malloc(sizeof(float) * no * ni), *x = malloc(sizeof(float) * nt * ni);
            void *w = make_weights(&r, k_wtypes[wt], no, ni, wf);
            fill(&r, x, nt * ni, -1, 1);
            float *y0 = NULL;
            for (int ti = 0; ti < g_n_tables; ti++) {
                float *y = malloc(sizeof(float) * nt * ldy);
                for (int64_t i = 0; i < nt * ldy; i++) y[i] = 12345.0f;
                g_tables[ti]->matmul(g_pool2, y, ldy, x, w, k_wtypes[wt], nt, ni, no, NULL);
                int bad = 0, pad_bad = 0;
                for (int64_t t = 0; t < nt; t++) {
                    for (int64_t o = 0; o < no; o++) {
                        double want = 0;
                        for (int64_t k = 0; k < ni; k++) want += (double)wf[o * ni + k] * x[t * ni + k];
                        if (!close_enough(y[t * ldy + o], want, 1e-4, 1e-4)) bad++;
                    }
                    for (int64_t o = no; o < ldy; o++) pad_bad += y[t * ldy + o] != 12345.0f;
                }
                CHECKF(bad == 0 && pad_bad == 0, "%s wtype %d shape %ldx%ldx%ld: %d bad, %d pad",
                       g_tables[ti]->name, k_wtypes[wt], (long)nt, (long)ni, (long)no, bad, pad_bad);
                // the canonical reduction order makes every table give the same bits
                if (y0) CHECKF(!memcmp(y0, y, sizeof(float) * nt * ldy), "%s != ref bits",
                               g_tables[ti]->name);
                if (!y0) y0 = y;
                else free(y);
            }
            free(y0), free(wf), free(x), free(w);
        }
}

// One token alone vs in a batch of 9, 1 thread vs 2: identical bits.
TEST(matmul_batch_and_thread_invariance) {
    rng r = {5};
    const int64_t nt = 9, ni = 200, no = 71;
    for (int wt = 0; wt < 3; wt++) {
        float *wf = malloc(sizeof(float) * no * ni), *x = malloc(sizeof(float) * nt * ni);
        void *w = make_weights(&r, k_wtypes[wt], no, ni, wf);
        fill(&r, x, nt * ni, -1, 1);
        for (int ti = 0; ti < g_n_tables; ti++) {
            const e2h_ops *o = g_tables[ti];
            float yb1[9 * 71], yb2[9 * 71], y1[71];
            o->matmul(NULL, yb1, no, x, w, k_wtypes[wt], nt, ni, no, NULL);
            o->matmul(g_pool2, yb2, no, x, w, k_wtypes[wt], nt, ni, no, NULL);
            CHECKF(!memcmp(yb1, yb2, sizeof yb1), "%s wtype %d: 1 vs 2 threads", o->name, k_wtypes[wt]);
            for (int64_t t = 0; t < nt; t++) {
                o->matmul(t % 2 ? g_pool2 : NULL, y1, no, x + t * ni, w, k_wtypes[wt], 1, ni, no, NULL);
                CHECKF(!memcmp(y1, yb1 + t * no, sizeof y1), "%s wtype %d token %ld alone != batched",
                       o->name, k_wtypes[wt], (long)t);
            }
            // a sub-batch starting at token 4 (different tile alignment)
            o->matmul(g_pool2, yb2, no, x + 4 * ni, w, k_wtypes[wt], 5, ni, no, NULL);
            CHECK(!memcmp(yb2, yb1 + 4 * no, sizeof(float) * 5 * no));
        }
        free(wf), free(x), free(w);
    }
}

TEST(matmul_large_prefill_invariance) {
    // shapes that take both cache-blocking orders of the tiled path (token blocks / row blocks)
    const int64_t shapes[][3] = {{77, 2100, 37}, {40, 300, 3000}};
    rng r = {11};
    for (int s = 0; s < 2; s++) {
        const int64_t nt = shapes[s][0], ni = shapes[s][1], no = shapes[s][2];
        float *wf = malloc(sizeof(float) * no * ni), *x = malloc(sizeof(float) * nt * ni);
        void *w = make_weights(&r, E2H_TYPE_BF16, no, ni, wf);
        fill(&r, x, nt * ni, -1, 1);
        float *yb = malloc(sizeof(float) * nt * no), *y1 = malloc(sizeof(float) * no);
        for (int ti = 0; ti < g_n_tables; ti++) {
            g_tables[ti]->matmul(g_pool2, yb, no, x, w, E2H_TYPE_BF16, nt, ni, no, NULL);
            int bad = 0;
            for (int64_t t = 0; t < nt; t += 13) {
                g_tables[ti]->matmul(NULL, y1, no, x + t * ni, w, E2H_TYPE_BF16, 1, ni, no, NULL);
                bad += memcmp(y1, yb + t * no, sizeof(float) * no) != 0;
            }
            CHECKF(bad == 0, "%s shape %d: %d tokens differ", g_tables[ti]->name, s, bad);
        }
        free(wf), free(x), free(w), free(yb), free(y1);
    }
}

// ---- bf16 x bf16 dot-product matmul (the avx512bf16 table's kernel for bf16 weights) ----
static const int64_t k_bd_shapes[][3] = {{1, 72, 37},  {9, 200, 45}, {7, 1000, 13}, {13, 31, 5},
                                         {3, 16, 4},   {1, 1, 3},    {20, 130, 66}, {6, 576, 17},
                                         {33, 1536, 70}, {2, 33, 19}, {5, 64, 16}};
#define BD_NSHAPES (int)(sizeof k_bd_shapes / sizeof *k_bd_shapes)

static float bd_round(float x) { return kern_bf16_to_f32(kern_f32_to_bf16(x)); }

static const e2h_ops *bd_table(void) {
    const e2h_ops *o = ops_get("avx512bf16");
    if (!o) printf("  skipped: this CPU has no AVX512_BF16 (avx512bf16 table not available)\n");
    return o;
}

TEST(bf16dot_ref_vs_double_oracle) {
    rng r = {77};
    for (int s = 0; s < BD_NSHAPES; s++) {
        const int64_t nt = k_bd_shapes[s][0], ni = k_bd_shapes[s][1], no = k_bd_shapes[s][2];
        const int64_t ldy = no + 2;
        float *wf = malloc(sizeof(float) * no * ni), *x = malloc(sizeof(float) * nt * ni);
        float *y = malloc(sizeof(float) * nt * ldy);
        void *w = make_weights(&r, E2H_TYPE_BF16, no, ni, wf);
        fill(&r, x, nt * ni, -1, 1);
        for (int64_t i = 0; i < nt * ldy; i++) y[i] = 12345.0f;
        kern_matmul_bf16dot_ref(g_pool2, y, ldy, x, w, nt, ni, no, NULL);
        int bad = 0, pad_bad = 0, differs = 0;
        for (int64_t t = 0; t < nt; t++) {
            for (int64_t o = 0; o < no; o++) {
                double want = 0, want_f32 = 0;
                for (int64_t k = 0; k < ni; k++) {
                    want += (double)wf[o * ni + k] * bd_round(x[t * ni + k]);
                    want_f32 += (double)wf[o * ni + k] * x[t * ni + k];
                }
                bad += !close_enough(y[t * ldy + o], want, 1e-4, 1e-4);
                differs += fabs(want - want_f32) > 1e-6; // the rounding is really applied
            }
            for (int64_t o = no; o < ldy; o++) pad_bad += y[t * ldy + o] != 12345.0f;
        }
        CHECKF(bad == 0 && pad_bad == 0, "shape %ldx%ldx%ld: %d bad, %d pad", (long)nt, (long)ni,
               (long)no, bad, pad_bad);
        if (ni >= 16) CHECKF(differs > 0, "shape %d: no output depends on the rounding", s);
        free(wf), free(x), free(y), free(w);
    }
}

TEST(bf16dot_avx512_vs_ref) {
    const e2h_ops *o = bd_table();
    if (!o) return;
    rng r = {78};
    long exact = 0, total = 0;
    for (int s = 0; s < BD_NSHAPES; s++) {
        const int64_t nt = k_bd_shapes[s][0], ni = k_bd_shapes[s][1], no = k_bd_shapes[s][2];
        const int64_t ldy = no + 3;
        float *wf = malloc(sizeof(float) * no * ni), *x = malloc(sizeof(float) * nt * ni);
        float *y = malloc(sizeof(float) * nt * ldy), *yr = malloc(sizeof(float) * nt * ldy);
        void *w = make_weights(&r, E2H_TYPE_BF16, no, ni, wf);
        void *scratch = malloc((size_t)ops_matmul_scratch_size(E2H_TYPE_BF16, nt, ni));
        fill(&r, x, nt * ni, -1, 1);
        for (int64_t i = 0; i < nt * ldy; i++) y[i] = 12345.0f;
        o->matmul(g_pool2, y, ldy, x, w, E2H_TYPE_BF16, nt, ni, no, scratch);
        kern_matmul_bf16dot_ref(NULL, yr, ldy, x, w, nt, ni, no, NULL);
        int bad = 0, pad_bad = 0;
        for (int64_t t = 0; t < nt; t++) {
            for (int64_t c = 0; c < no; c++) {
                const float g = y[t * ldy + c], want = yr[t * ldy + c];
                bad += !close_enough(g, want, 2e-6, 1e-5);
                exact += fbits(g) == fbits(want);
                total++;
            }
            for (int64_t c = no; c < ldy; c++) pad_bad += y[t * ldy + c] != 12345.0f;
        }
        CHECKF(bad == 0 && pad_bad == 0, "shape %ldx%ldx%ld: %d bad, %d pad", (long)nt, (long)ni,
               (long)no, bad, pad_bad);
        free(wf), free(x), free(y), free(yr), free(w), free(scratch);
    }
    printf("  avx512bf16 vs ref: %ld of %ld outputs bit-identical\n", exact, total);
}

// Rounding of the activations: with unit-vector weight rows, y[t][i] = bf16(x[t][i]) exactly;
// inputs include exact ties (low half 0x8000) and values next to them.
TEST(bf16dot_activation_rounding) {
    const e2h_ops *o = bd_table();
    if (!o) return;
    const int64_t ni = 45, nt = 3;
    rng r = {79};
    e2h_bf16 *w = calloc((size_t)(ni * ni), sizeof *w);
    for (int64_t i = 0; i < ni; i++) w[i * ni + i] = 0x3f80; // 1.0
    float x[3 * 45], y[3 * 45], yr[3 * 45];
    for (int64_t i = 0; i < nt * ni; i++) {
        uint32_t u = (rng_u32(&r) & 0x807f0000u) | (uint32_t)(120 + rng_u32(&r) % 16) << 23;
        const uint32_t lows[4] = {0x8000, 0x7fff, 0x8001, rng_u32(&r) & 0xffff};
        u |= lows[i % 4];
        memcpy(&x[i], &u, 4);
    }
    void *scratch = malloc((size_t)ops_matmul_scratch_size(E2H_TYPE_BF16, nt, ni));
    o->matmul(NULL, y, ni, x, w, E2H_TYPE_BF16, nt, ni, ni, scratch);
    kern_matmul_bf16dot_ref(NULL, yr, ni, x, w, nt, ni, ni, NULL);
    int bad = 0, bad_ref = 0;
    for (int64_t i = 0; i < nt * ni; i++) {
        const uint32_t want = (uint32_t)bf16_oracle(x[i]) << 16;
        bad += fbits(y[i]) != want;
        bad_ref += fbits(yr[i]) != want;
    }
    CHECKF(bad == 0 && bad_ref == 0, "%d (avx512bf16) / %d (ref) outputs not bf16(x)", bad, bad_ref);
    free(w), free(scratch);
}

// A row alone vs in a batch, 1 vs 2 threads, sub-batches at other tile alignments, and both
// cache-blocking orders: identical bits. Other weight types: the avx512 table's bits.
TEST(bf16dot_batch_and_thread_invariance) {
    const e2h_ops *o = bd_table(), *o512 = ops_get("avx512");
    if (!o) return;
    const int64_t shapes[][3] = {{9, 200, 71}, {77, 2100, 37}, {40, 300, 3000}, {11, 1537, 45}};
    rng r = {80};
    for (int s = 0; s < 4; s++) {
        const int64_t nt = shapes[s][0], ni = shapes[s][1], no = shapes[s][2];
        float *wf = malloc(sizeof(float) * no * ni), *x = malloc(sizeof(float) * nt * ni);
        float *yb1 = malloc(sizeof(float) * nt * no), *yb2 = malloc(sizeof(float) * nt * no);
        float *y1 = malloc(sizeof(float) * no);
        void *w = make_weights(&r, E2H_TYPE_BF16, no, ni, wf);
        void *scratch = malloc((size_t)ops_matmul_scratch_size(E2H_TYPE_BF16, nt, ni));
        fill(&r, x, nt * ni, -1, 1);
        o->matmul(NULL, yb1, no, x, w, E2H_TYPE_BF16, nt, ni, no, scratch);
        o->matmul(g_pool2, yb2, no, x, w, E2H_TYPE_BF16, nt, ni, no, scratch);
        CHECKF(!memcmp(yb1, yb2, sizeof(float) * nt * no), "shape %d: 1 vs 2 threads", s);
        int bad = 0;
        for (int64_t t = 0; t < nt; t += (nt > 20 ? 7 : 1)) {
            o->matmul(t % 2 ? g_pool2 : NULL, y1, no, x + t * ni, w, E2H_TYPE_BF16, 1, ni, no, scratch);
            bad += memcmp(y1, yb1 + t * no, sizeof(float) * no) != 0;
        }
        CHECKF(bad == 0, "shape %d: %d tokens alone != batched", s, bad);
        o->matmul(g_pool2, yb2, no, x + 4 * ni, w, E2H_TYPE_BF16, 5, ni, no, scratch);
        CHECKF(!memcmp(yb2, yb1 + 4 * no, sizeof(float) * 5 * no), "shape %d: sub-batch", s);
        free(wf), free(x), free(yb1), free(yb2), free(y1), free(w), free(scratch);
    }
    for (int wt = 0; wt < 2; wt++) { // f32, f16: unchanged
        const int64_t nt = 5, ni = 100, no = 19;
        float wf[19 * 100], x[5 * 100], ya[5 * 19], yb[5 * 19];
        void *w = make_weights(&r, k_wtypes[wt], no, ni, wf);
        fill(&r, x, nt * ni, -1, 1);
        o->matmul(g_pool2, ya, no, x, w, k_wtypes[wt], nt, ni, no, NULL);
        o512->matmul(g_pool2, yb, no, x, w, k_wtypes[wt], nt, ni, no, NULL);
        CHECKF(!memcmp(ya, yb, sizeof ya), "wtype %d differs from the avx512 table", k_wtypes[wt]);
        free(w);
    }
}

// ---- rmsnorm / rope / swiglu ----
TEST(rmsnorm_vs_oracle) {
    const int64_t dims[] = {72, 200, 1000, 5, 16};
    rng r = {3};
    for (unsigned d = 0; d < sizeof dims / sizeof *dims; d++) {
        const int64_t n = 3, dim = dims[d];
        float *x = malloc(sizeof(float) * n * dim), *w = malloc(sizeof(float) * dim);
        float *y = malloc(sizeof(float) * n * dim);
        fill(&r, x, n * dim, -1, 1);
        fill(&r, w, dim, 0.5f, 1.5f);
        for (int ti = 0; ti < g_n_tables; ti++) {
            g_tables[ti]->rmsnorm(y, x, w, n, dim, 1e-5f);
            int bad = 0;
            for (int64_t t = 0; t < n; t++) {
                double ss = 0;
                for (int64_t i = 0; i < dim; i++) ss += (double)x[t * dim + i] * x[t * dim + i];
                double rs = 1.0 / sqrt(ss / dim + 1e-5);
                for (int64_t i = 0; i < dim; i++)
                    bad += !close_enough(y[t * dim + i], x[t * dim + i] * rs * w[i], 1e-6, 1e-5);
            }
            CHECKF(bad == 0, "%s dim %ld: %d bad", g_tables[ti]->name, (long)dim, bad);
            // in place
            float *xc = malloc(sizeof(float) * n * dim);
            memcpy(xc, x, sizeof(float) * n * dim);
            g_tables[ti]->rmsnorm(xc, xc, w, n, dim, 1e-5f);
            CHECK(!memcmp(xc, y, sizeof(float) * n * dim));
            free(xc);
        }
        free(x), free(w), free(y);
    }
}

TEST(rope_vs_oracle) {
    const int hds[] = {12, 64, 80, 2, 130};
    rng r = {17};
    for (unsigned hi = 0; hi < sizeof hds / sizeof *hds; hi++)
        for (int il = 0; il < 2; il++) {
            const int hd = hds[hi], nh = 6, half = hd / 2;
            const int64_t n = 5, len = n * nh * hd;
            float *x = malloc(sizeof(float) * len), *y = malloc(sizeof(float) * len);
            float *y0 = malloc(sizeof(float) * len), inv[128];
            int32_t pos[5] = {0, 1, 17, 999, 4097};
            for (int i = 0; i < half; i++) inv[i] = (float)pow(10000.0, -2.0 * i / hd);
            fill(&r, x, len, -1, 1);
            for (int ti = 0; ti < g_n_tables; ti++) {
                memcpy(y, x, sizeof(float) * len);
                g_tables[ti]->rope(y, pos, n, nh, hd, inv, il);
                int bad = 0;
                for (int64_t t = 0; t < n; t++)
                    for (int h = 0; h < nh; h++)
                        for (int i = 0; i < half; i++) {
                            const float *xv = x + (t * nh + h) * hd;
                            const float *yv = y + (t * nh + h) * hd;
                            int i0 = il ? 2 * i : i, i1 = il ? 2 * i + 1 : i + half;
                            double th = (double)((float)pos[t] * inv[i]);
                            double c = cos(th), s = sin(th);
                            bad += !close_enough(yv[i0], xv[i0] * c - xv[i1] * s, 2e-6, 1e-5);
                            bad += !close_enough(yv[i1], xv[i1] * c + xv[i0] * s, 2e-6, 1e-5);
                        }
                CHECKF(bad == 0, "%s hd %d interleaved %d: %d bad", g_tables[ti]->name, hd, il, bad);
                if (ti == 0) memcpy(y0, y, sizeof(float) * len);
                else CHECKF(!memcmp(y0, y, sizeof(float) * len), "%s != ref bits", g_tables[ti]->name);
            }
            free(x), free(y), free(y0);
        }
}

TEST(swiglu_vs_oracle) {
    const int64_t dims[] = {72, 200, 1000, 3, 17};
    rng r = {23};
    for (unsigned d = 0; d < sizeof dims / sizeof *dims; d++) {
        const int64_t n = 2, dim = dims[d];
        float *g = malloc(sizeof(float) * n * dim), *u = malloc(sizeof(float) * n * dim);
        float *y = malloc(sizeof(float) * n * dim);
        fill(&r, g, n * dim, -20, 20);
        fill(&r, u, n * dim, -1, 1);
        g[0] = -100.0f; // exp(-g) overflow side
        g[1] = 100.0f;
        for (int ti = 0; ti < g_n_tables; ti++) {
            g_tables[ti]->swiglu(y, g, u, n, dim);
            int bad = 0;
            for (int64_t i = 0; i < n * dim; i++) {
                double want = g[i] / (1.0 + exp(-(double)g[i])) * u[i];
                bad += !close_enough(y[i], want, 1e-6, 1e-5);
            }
            CHECKF(bad == 0, "%s dim %ld: %d bad", g_tables[ti]->name, (long)dim, bad);
        }
        free(g), free(u), free(y);
    }
}

// ---- attention ----
typedef struct {
    int hd, n_heads, n_kv, bs, kv_type;
    int n_blocks;
    void *k, *v;        // [block][kv_head] pieces (kernels/types.h: K chunks transposed)
    int32_t *tables[32]; // per sequence
    e2h_attn_seq seqs[32];
    int n_seqs, n_tok;
    float *q, *out;
} attn_case;

static float kv_get(const attn_case *c, const void *base, int64_t idx) {
    return c->kv_type == E2H_TYPE_F16 ? kern_f16_to_f32(((const e2h_f16 *)base)[idx])
                                      : ((const float *)base)[idx];
}

// V element d of position p; K element with is_k (the pieces' chunks stored transposed).
static int64_t kv_index(const attn_case *c, int s, int kh, int64_t p, int d, int is_k) {
    int64_t blk = c->tables[s][p / c->bs], piece = (blk * c->n_kv + kh) * c->bs * c->hd;
    return piece + (is_k ? kern_kv_k_index(c->bs, c->hd, (int)(p % c->bs), d) : (p % c->bs) * c->hd + d);
}

// n_past[i], n_q[i] per sequence; seqs 'share_with' >= 0 reuse the first `share_blocks` block
// ids of that sequence (a shared prefix).
static void attn_case_init(attn_case *c, rng *r, int hd, int n_heads, int n_kv, int bs,
                           int kv_type, int n_seqs, const int *n_past, const int *n_q,
                           int share_blocks) {
    memset(c, 0, sizeof *c);
    c->hd = hd, c->n_heads = n_heads, c->n_kv = n_kv, c->bs = bs, c->kv_type = kv_type;
    c->n_seqs = n_seqs;
    int total_blocks = 0;
    for (int s = 0; s < n_seqs; s++) total_blocks += (n_past[s] + n_q[s] + bs - 1) / bs;
    c->n_blocks = total_blocks + 3;
    // block ids handed out in a shuffled order so tables are not contiguous
    int32_t *perm = malloc(sizeof(int32_t) * c->n_blocks);
    for (int i = 0; i < c->n_blocks; i++) perm[i] = i;
    for (int i = c->n_blocks - 1; i > 0; i--) {
        int j = rng_u32(r) % (i + 1);
        int32_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    int next = 0, tok = 0;
    for (int s = 0; s < n_seqs; s++) {
        int nb = (n_past[s] + n_q[s] + bs - 1) / bs;
        c->tables[s] = malloc(sizeof(int32_t) * nb);
        for (int b = 0; b < nb; b++)
            c->tables[s][b] = (s > 0 && b < share_blocks) ? c->tables[0][b] : perm[next++];
        c->seqs[s] = (e2h_attn_seq){c->tables[s], n_past[s], n_q[s], tok};
        tok += n_q[s];
    }
    free(perm);
    c->n_tok = tok;
    const int64_t kv_elems = (int64_t)c->n_blocks * n_kv * bs * hd;
    const size_t es = kv_type == E2H_TYPE_F16 ? 2 : 4;
    c->k = malloc(kv_elems * es);
    c->v = malloc(kv_elems * es);
    float *tmp = malloc(sizeof(float) * kv_elems);
    fill(r, tmp, kv_elems, -1, 1);
    ops_ref()->quantize_row(kv_type, tmp, c->k, kv_elems);
    fill(r, tmp, kv_elems, -1, 1);
    ops_ref()->quantize_row(kv_type, tmp, c->v, kv_elems);
    free(tmp);
    c->q = malloc(sizeof(float) * tok * n_heads * hd);
    c->out = malloc(sizeof(float) * tok * n_heads * hd);
    fill(r, c->q, (int64_t)tok * n_heads * hd, -2, 2);
}

static void attn_case_free(attn_case *c) {
    for (int s = 0; s < c->n_seqs; s++) free(c->tables[s]);
    free(c->k), free(c->v), free(c->q), free(c->out);
}

static void attn_run(const attn_case *c, const e2h_ops *o, e2h_pool *pool, float *out,
                     const e2h_attn_seq *seqs, int n_seqs) {
    e2h_kv_layer_view kv = {c->k, c->v, c->kv_type, c->bs, c->n_kv, c->hd};
    int64_t sz = kern_attn_scratch_size(pool_size(pool), c->n_heads, c->hd, 4096);
    void *scratch = malloc(sz);
    o->attention(pool, out, c->q, seqs, n_seqs, c->n_heads, &kv, 1.0f / sqrtf((float)c->hd),
                 scratch);
    free(scratch);
}

// Naive double-precision softmax(q k^T * scale) v over positions [0, n_past + i].
static int attn_check_oracle(const attn_case *c, const float *out) {
    int bad = 0;
    const int group = c->n_heads / c->n_kv, hd = c->hd;
    double *sc = malloc(sizeof(double) * 8192), *acc = malloc(sizeof(double) * hd);
    for (int s = 0; s < c->n_seqs; s++)
        for (int i = 0; i < c->seqs[s].n_q; i++)
            for (int h = 0; h < c->n_heads; h++) {
                const int kh = h / group;
                const int64_t row = (int64_t)(c->seqs[s].q_offset + i) * c->n_heads * hd + h * hd;
                const int np = c->seqs[s].n_past + i + 1;
                double mx = -INFINITY, sum = 0;
                for (int p = 0; p < np; p++) {
                    double d = 0;
                    for (int e = 0; e < hd; e++) d += (double)c->q[row + e] * kv_get(c, c->k, kv_index(c, s, kh, p, e, 1));
                    sc[p] = d / sqrt((double)hd);
                    mx = fmax(mx, sc[p]);
                }
                for (int e = 0; e < hd; e++) acc[e] = 0;
                for (int p = 0; p < np; p++) {
                    double w = exp(sc[p] - mx);
                    sum += w;
                    for (int e = 0; e < hd; e++) acc[e] += w * kv_get(c, c->v, kv_index(c, s, kh, p, e, 0));
                }
                for (int e = 0; e < hd; e++) bad += !close_enough(out[row + e], acc[e] / sum, 2e-5, 1e-4);
            }
    free(sc), free(acc);
    return bad;
}

// The K piece layout's properties the kernels rely on, stated without its formula: every
// (slot, d) has its own element of the piece; a chunk's row d holds its slots consecutively
// (vector loads of 16 or 8 lanes); chunk c fills [16c * hd, (16c + w) * hd) (the touch loop
// reads it as one range).
TEST(kv_k_index_layout) {
    const int cfg[][2] = {{16, 64}, {7, 64}, {100, 12}, {5, 16}, {48, 80}, {17, 3}};
    for (unsigned ci = 0; ci < sizeof cfg / sizeof *cfg; ci++) {
        const int slots = cfg[ci][0], hd = cfg[ci][1];
        char *seen = calloc((size_t)slots * hd, 1);
        int bad = 0;
        for (int j = 0; j < slots; j++)
            for (int d = 0; d < hd; d++) {
                const int64_t i = kern_kv_k_index(slots, hd, j, d);
                const int c0 = j / 16 * 16, w = slots - c0 < 16 ? slots - c0 : 16;
                if (i < (int64_t)c0 * hd || i >= (int64_t)(c0 + w) * hd || seen[i]++) bad++;
                if (j > c0 && i != kern_kv_k_index(slots, hd, j - 1, d) + 1) bad++;
                if (kern_kv_k_width(slots, j) != w) bad++;
            }
        CHECKF(bad == 0, "slots %d hd %d: %d bad", slots, hd, bad);
        free(seen);
    }
}

TEST(attention_vs_double_oracle) {
    // (head_dim, n_heads, n_kv, block_size): awkward sizes, GQA, blocks not dividing contexts,
    // and a block larger than the 64-slot chunk
    const int cfg[][4] = {{12, 6, 2, 16}, {64, 6, 2, 7}, {80, 6, 2, 16}, {64, 4, 4, 100},
                          {16, 3, 1, 5}};
    const int n_past[] = {0, 13, 40, 5}, n_q[] = {9, 1, 20, 3};
    rng r = {77};
    for (unsigned ci = 0; ci < sizeof cfg / sizeof *cfg; ci++)
        for (int kt = 0; kt < 2; kt++) {
            attn_case c;
            attn_case_init(&c, &r, cfg[ci][0], cfg[ci][1], cfg[ci][2], cfg[ci][3],
                           kt ? E2H_TYPE_F16 : E2H_TYPE_F32, 4, n_past, n_q, 0);
            for (int ti = 0; ti < g_n_tables; ti++) {
                memset(c.out, 0, sizeof(float) * c.n_tok * c.n_heads * c.hd);
                attn_run(&c, g_tables[ti], g_pool2, c.out, c.seqs, c.n_seqs);
                int bad = attn_check_oracle(&c, c.out);
                CHECKF(bad == 0, "%s hd %d heads %d/%d bs %d kv %s: %d bad", g_tables[ti]->name,
                       c.hd, c.n_heads, c.n_kv, c.bs, kt ? "f16" : "f32", bad);
            }
            attn_case_free(&c);
        }
}

// Batched on 2 threads and on 1, and each sequence alone: the same bits. all gets the batch's
// output; one is scratch of the same size.
static void attn_check_batched(const attn_case *c, const e2h_ops *o, float *all, float *one,
                               const char *label) {
    const int64_t ld = (int64_t)c->n_heads * c->hd, total = c->n_tok * ld;
    attn_run(c, o, g_pool2, all, c->seqs, c->n_seqs);
    attn_run(c, o, NULL, one, c->seqs, c->n_seqs);
    CHECKF(!memcmp(all, one, sizeof(float) * total), "%s %s: 1 vs 2 threads", o->name, label);
    for (int s = 0; s < c->n_seqs; s++) {
        attn_run(c, o, s % 2 ? g_pool2 : NULL, one, &c->seqs[s], 1);
        const int64_t off = c->seqs[s].q_offset * ld;
        CHECKF(!memcmp(one + off, all + off, sizeof(float) * c->seqs[s].n_q * ld),
               "%s %s: seq %d alone != batched", o->name, label, s);
    }
}

// A sequence's bits do not depend on: thread count, other sequences in the batch, prefix
// blocks shared with other sequences, or whether its tokens come in one call or one by one.
// Configs (hd, heads, kv heads, block, kv type, shared blocks) give query-row counts (tokens x
// group) on both sides of the AVX-512 tile/row-by-row split (13 rows) and of 16-row groups.
TEST(attention_invariance) {
    const int n_past[] = {37, 37, 37, 20}, n_q[] = {5, 1, 17, 4};
    const int cfg[][6] = {{64, 6, 2, 7, E2H_TYPE_F16, 5},  // group 3, 35-token shared prefix
                          {64, 16, 2, 16, E2H_TYPE_F32, 2}, // group 8
                          {40, 4, 1, 5, E2H_TYPE_F16, 7},   // group 4, hd not a multiple of 16
                          {64, 2, 2, 33, E2H_TYPE_F32, 1}}; // group 1, blocks of 33 slots
    rng r = {91};
    for (unsigned ci = 0; ci < sizeof cfg / sizeof *cfg; ci++)
    for (int ti = 0; ti < g_n_tables; ti++) {
        attn_case c;
        attn_case_init(&c, &r, cfg[ci][0], cfg[ci][1], cfg[ci][2], cfg[ci][3], cfg[ci][4], 4,
                       n_past, n_q, cfg[ci][5]);
        const int64_t ld = (int64_t)c.n_heads * c.hd, total = c.n_tok * ld;
        float *all1 = malloc(sizeof(float) * total), *one = malloc(sizeof(float) * total);
        char label[32];
        snprintf(label, sizeof label, "cfg %u", ci);
        attn_check_batched(&c, g_tables[ti], all1, one, label);
        for (int s = 0; s < c.n_seqs; s++) {
            for (int i = 0; i < c.seqs[s].n_q; i++) { // token by token (decode)
                e2h_attn_seq d = c.seqs[s];
                d.n_past += i, d.n_q = 1, d.q_offset += i;
                attn_run(&c, g_tables[ti], NULL, one, &d, 1);
                CHECKF(!memcmp(one + d.q_offset * ld, all1 + d.q_offset * ld, sizeof(float) * ld),
                       "%s cfg %u: seq %d token %d decode != prefill", g_tables[ti]->name, ci, s, i);
            }
        }
        CHECK(attn_check_oracle(&c, all1) == 0);
        free(all1), free(one);
        attn_case_free(&c);
    }
}

// Contexts long enough that the decode path reads the cache in several segments of chunks
// (AT_TOUCH_CHUNKS = 32 in the AVX-512 kernel: 512 slots), with segment ends inside blocks of
// 7 slots: against the oracle, and decode token by token == the same tokens in one call.
TEST(attention_long_context_decode) {
    const int n_past[] = {1100, 1037}, n_q[] = {5, 1};
    const int cfg[][5] = {{64, 9, 3, 16, E2H_TYPE_F32}, {64, 9, 3, 7, E2H_TYPE_F16}, {40, 2, 1, 16, E2H_TYPE_F32}};
    rng r = {4242};
    for (unsigned ci = 0; ci < sizeof cfg / sizeof *cfg; ci++)
        for (int ti = 0; ti < g_n_tables; ti++) {
            attn_case c;
            attn_case_init(&c, &r, cfg[ci][0], cfg[ci][1], cfg[ci][2], cfg[ci][3], cfg[ci][4], 2, n_past, n_q, 0);
            const int64_t ld = (int64_t)c.n_heads * c.hd, total = c.n_tok * ld;
            float *all = malloc(sizeof(float) * total), *one = malloc(sizeof(float) * total);
            attn_run(&c, g_tables[ti], g_pool2, all, c.seqs, c.n_seqs);
            CHECKF(attn_check_oracle(&c, all) == 0, "%s cfg %u", g_tables[ti]->name, ci);
            for (int s = 0; s < c.n_seqs; s++)
                for (int i = 0; i < c.seqs[s].n_q; i++) {
                    e2h_attn_seq d = c.seqs[s];
                    d.n_past += i, d.n_q = 1, d.q_offset += i;
                    attn_run(&c, g_tables[ti], NULL, one, &d, 1);
                    CHECKF(!memcmp(one + d.q_offset * ld, all + d.q_offset * ld, sizeof(float) * ld),
                           "%s cfg %u: seq %d token %d decode != batched", g_tables[ti]->name, ci, s, i);
                }
            free(all), free(one);
            attn_case_free(&c);
        }
}

// 16 decoding sequences forked from one 200-token prompt (12 shared blocks of 16, then
// private blocks): batched (cascade over the shared blocks) == each alone, bit for bit.
TEST(attention_shared_prefix_decode) {
    enum { NS = 16, BS = 16, PREFIX = 200 };
    rng r = {1234};
    for (int ti = 0; ti < g_n_tables; ti++) {
        int n_past[NS], n_q[NS];
        for (int s = 0; s < NS; s++) n_past[s] = PREFIX + (s % 5), n_q[s] = 1;
        attn_case c;
        attn_case_init(&c, &r, 64, 9, 3, BS, E2H_TYPE_F16, NS, n_past, n_q, PREFIX / BS);
        const int64_t ld = (int64_t)c.n_heads * c.hd;
        float *all = malloc(sizeof(float) * c.n_tok * ld), *one = malloc(sizeof(float) * c.n_tok * ld);
        attn_run(&c, g_tables[ti], g_pool2, all, c.seqs, c.n_seqs);
        for (int s = 0; s < NS; s++) {
            attn_run(&c, g_tables[ti], NULL, one, &c.seqs[s], 1);
            CHECKF(!memcmp(one + s * ld, all + s * ld, sizeof(float) * ld), "%s: seq %d",
                   g_tables[ti]->name, s);
        }
        CHECK(attn_check_oracle(&c, all) == 0);
        // the cascade (shared blocks once for all sequences) against processing them per sequence
        e2h_attn_phase_fn phase = g_tables[ti]->attention_phase;
        e2h_kv_layer_view kv = {c.k, c.v, c.kv_type, c.bs, c.n_kv, c.hd};
        void *scratch = malloc(kern_attn_scratch_size(2, c.n_heads, c.hd, 0));
        for (int cas = 0; cas < 2; cas++) {
            kern_attention_run(phase, cas, g_pool2, one, c.q, c.seqs, NS, c.n_heads, &kv,
                              1.0f / sqrtf((float)c.hd), scratch);
            CHECKF(!memcmp(one, all, sizeof(float) * c.n_tok * ld), "%s cascade=%d", g_tables[ti]->name, cas);
        }
        free(scratch);
        free(all), free(one);
        attn_case_free(&c);
    }
}

// A beam-search-shaped batch: sequences whose block tables share a tree of prefixes (a
// prompt shared by all but two, 3 subtrees sharing more, pairs within them sharing more
// still), listed in an interleaved order, some decoding and some with several queries (row
// counts on both sides of the AVX-512 tile threshold). Batched with the prefix tree walked
// once (1 and 2 threads) == each sequence alone == cascade off, bit for bit; and the oracle.
TEST(attention_prefix_tree) {
    enum { NS = 24, BS = 16 };
    const int levels[3] = {4, 7, 9}; // blocks shared by all / by s % 3 / by s % 6
    rng r = {777};
    for (int ti = 0; ti < g_n_tables; ti++)
    for (int kt = 0; kt < 2; kt++) {
        int n_past[NS], n_q[NS];
        for (int s = 0; s < NS; s++) {
            n_past[s] = 9 * BS + 3 + (s * 7) % 40;
            n_q[s] = s % 5 == 0 ? 6 : s % 7 == 0 ? 2 : 1;
        }
        attn_case c;
        attn_case_init(&c, &r, 64, 9, 3, BS, kt ? E2H_TYPE_F32 : E2H_TYPE_F16, NS, n_past, n_q, 0);
        for (int s = 0; s < NS - 2; s++) // seqs NS-2, NS-1 share nothing
            for (int b = 0; b < levels[2]; b++) {
                const int rep = b < levels[0] ? 0 : b < levels[1] ? s % 3 : s % 6;
                c.tables[s][b] = c.tables[rep][b];
            }
        const int64_t total = c.n_tok * (int64_t)c.n_heads * c.hd;
        float *all = malloc(sizeof(float) * total), *one = malloc(sizeof(float) * total);
        attn_check_batched(&c, g_tables[ti], all, one, kt ? "kv f32" : "kv f16");
        CHECK(attn_check_oracle(&c, all) == 0);
        e2h_kv_layer_view kv = {c.k, c.v, c.kv_type, c.bs, c.n_kv, c.hd};
        void *scratch = malloc(kern_attn_scratch_size(2, c.n_heads, c.hd, 0));
        kern_attention_run(g_tables[ti]->attention_phase, 0, g_pool2, one, c.q, c.seqs, NS,
                          c.n_heads, &kv, 1.0f / sqrtf((float)c.hd), scratch);
        CHECKF(!memcmp(one, all, sizeof(float) * total), "%s kv %d: cascade off", g_tables[ti]->name, kt);
        free(scratch);
        free(all), free(one);
        attn_case_free(&c);
    }
}

int main(void) {
    tables_init();
    g_pool2 = pool_init(2);
    RUN(f16_to_f32_all_values);
    RUN(f32_to_f16_matches_f16c);
    RUN(bf16_conversions);
    RUN(type_traits);
    RUN(float_row_roundtrip);
    RUN(matmul_vs_double_oracle);
    RUN(matmul_batch_and_thread_invariance);
    RUN(matmul_large_prefill_invariance);
    RUN(bf16dot_ref_vs_double_oracle);
    RUN(bf16dot_avx512_vs_ref);
    RUN(bf16dot_activation_rounding);
    RUN(bf16dot_batch_and_thread_invariance);
    RUN(rmsnorm_vs_oracle);
    RUN(rope_vs_oracle);
    RUN(swiglu_vs_oracle);
    RUN(kv_k_index_layout);
    RUN(attention_vs_double_oracle);
    RUN(attention_invariance);
    RUN(attention_long_context_decode);
    RUN(attention_shared_prefix_decode);
    RUN(attention_prefix_tree);
    pool_free(g_pool2);
    return TEST_SUMMARY();
}
