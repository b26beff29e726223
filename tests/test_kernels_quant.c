// tests/test_kernels_quant.c — quant kernels: dequantization bit-exact against the Python
// gguf package (fixtures from tools/make_quant_fixtures.py), quantizers against gguf and by
// round trip, the ref matmul against an independent f64 reference with a rigorous bound on
// the activation-quantization error, SIMD matmuls against the ref (bit-exact), batch /
// thread invariance on awkward shapes, and the 32-block activation quantization and dots
// against llama.cpp's own (tests/fixtures/llamacpp/q8_act.bin, tools/make_llamacpp_fixtures.py).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

// The compiler's own half type is the independent reference for e2h's f16 rounding. clang < 15
// has no _Float16 on x86 (and its __fp16 needs compiler-rt): there the F16C instructions stand
// in, with the same IEEE round-to-nearest-even.
#if defined(__clang__) && __clang_major__ < 15
#include <immintrin.h>
typedef struct { uint16_t bits; } test_half;
__attribute__((target("f16c"))) static test_half test_half_from(float f) {
    test_half h = {_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)};
    return h;
}
__attribute__((target("f16c"))) static float test_half_to(test_half h) { return _cvtsh_ss(h.bits); }
#else
typedef _Float16 test_half;
static test_half test_half_from(float f) { return (test_half)f; }
static float test_half_to(test_half h) { return (float)h; }
#endif
#include "kernels/ops.h"
#include "kernels/pool.h"
#include "kernels/quant.h"

typedef void (*qmm_fn)(e2h_pool *, float *, int64_t, const float *, const void *, int, int64_t,
                       int64_t, int64_t, void *);

static const int k_types[] = {E2H_TYPE_Q4_0, E2H_TYPE_Q4_1, E2H_TYPE_Q5_0, E2H_TYPE_Q5_1,
                              E2H_TYPE_Q8_0, E2H_TYPE_Q4_K, E2H_TYPE_Q5_K, E2H_TYPE_Q6_K};
#define N_TYPES ((int)(sizeof k_types / sizeof k_types[0]))

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd_u32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float rnd_uniform(void) { return (rnd_u32() >> 8) * (1.0f / 16777216.0f); }
static float rnd_normal(void) {
    float s = 0;
    for (int i = 0; i < 12; i++) s += rnd_uniform();
    return s - 6.0f;
}

static const char *type_name(int t) {
    const e2h_type_traits *tr = kern_type_traits_get(t);
    return tr && tr->name ? tr->name : "?";
}

// ---------------------------------------------------------------- dequantization

static void check_deq_fixture(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/quant/deq_%s.bin", name);
    size_t len;
    uint8_t *buf = (uint8_t *)th_read_file(path, &len);
    CHECKF(buf != NULL, "missing fixture %s (run from the repo root)", path);
    if (!buf) return;
    uint32_t hdr[4];
    memcpy(hdr, buf + 4, 16);
    const uint32_t type = hdr[0], nb = hdr[1], bsz = hdr[2], bel = hdr[3];
    CHECK(memcmp(buf, "E2HD", 4) == 0 && len == 20 + (size_t)nb * bsz + (size_t)nb * bel * 4);
    CHECK(kern_type_row_size((int)type, bel) == bsz);
    float *out = malloc((size_t)nb * bel * 4);
    kern_dequantize_row_ref((int)type, buf + 20, out, (int64_t)nb * bel);
    const uint8_t *want = buf + 20 + (size_t)nb * bsz;
    int bad = 0;
    for (size_t i = 0; i < (size_t)nb * bel; i++) {
        if (memcmp(&out[i], want + 4 * i, 4) != 0) {
            if (bad < 3) {
                float w;
                memcpy(&w, want + 4 * i, 4);
                printf("  %s elem %zu: got %a want %a\n", name, i, out[i], w);
            }
            bad++;
        }
    }
    CHECKF(bad == 0, "%s: %d of %u values differ from gguf.quants", name, bad, nb * bel);
    free(out);
    free(buf);
}

TEST(dequant_matches_gguf_package) {
    const char *names[] = {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_k", "q5_k", "q6_k"};
    for (int i = 0; i < 8; i++) check_deq_fixture(names[i]);
}

// q8_K has no gguf-package dequantizer: check it against its definition d * q.
TEST(dequant_q8_K) {
    e2h_block_q8_K b[2];
    memset(b, 0, sizeof b);
    b[0].d = -0.37f;
    b[1].d = 1e-30f;
    for (int i = 0; i < 256; i++) b[0].qs[i] = (int8_t)(i - 128), b[1].qs[i] = (int8_t)(127 - i % 255);
    float y[512];
    kern_dequantize_row_ref(E2H_TYPE_Q8_K, b, y, 512);
    for (int i = 0; i < 512; i++) CHECK(y[i] == b[i / 256].d * (float)b[i / 256].qs[i % 256]);
}

TEST(half_conversion) {
    // every finite half converts to float and back exactly
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00) continue;
        if (kern_q_f2h(kern_q_h2f((uint16_t)h)) != h) bad++;
    }
    CHECKF(bad == 0, "%d halves do not round-trip", bad);
    // random floats: round to nearest even, compared with the compiler's _Float16
    bad = 0;
    for (int i = 0; i < 200000; i++) {
        uint32_t u = rnd_u32() << 1 ^ rnd_u32();
        float f;
        memcpy(&f, &u, 4);
        if (f != f) continue;
        test_half h = test_half_from(f);
        uint16_t want;
        memcpy(&want, &h, 2);
        if (kern_q_f2h(f) != want) bad++;
    }
    CHECKF(bad == 0, "%d floats round differently from _Float16", bad);
}

// ---------------------------------------------------------------- quantizers

// Value j of a 32-block as an integer level (for comparing quantizer outputs).
static int q32_level(int type, const uint8_t *blk, int j) {
    switch (type) {
    case E2H_TYPE_Q8_0: return ((const int8_t *)blk)[2 + j];
    case E2H_TYPE_Q4_0: return j < 16 ? blk[2 + j] & 15 : blk[2 + j - 16] >> 4;
    case E2H_TYPE_Q4_1: return j < 16 ? blk[4 + j] & 15 : blk[4 + j - 16] >> 4;
    default: {
        const int off = type == E2H_TYPE_Q5_0 ? 2 : 4;
        uint32_t qh;
        memcpy(&qh, blk + off, 4);
        int lo = j < 16 ? blk[off + 4 + j] & 15 : blk[off + 4 + j - 16] >> 4;
        return lo | (int)((qh >> j) & 1) << 4;
    }
    }
}

static void check_quant_fixture(const char *name, int type) {
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/quant/q_%s.bin", name);
    size_t len;
    uint8_t *buf = (uint8_t *)th_read_file(path, &len);
    CHECKF(buf != NULL, "missing fixture %s", path);
    if (!buf) return;
    uint32_t hdr[3];
    memcpy(hdr, buf + 4, 12);
    const uint32_t n = hdr[1], nbytes = hdr[2];
    CHECK((int)hdr[0] == type && len == 16 + (size_t)n * 4 + nbytes);
    float *x = malloc((size_t)n * 4);
    memcpy(x, buf + 16, (size_t)n * 4);
    const uint8_t *want = buf + 16 + (size_t)n * 4;
    uint8_t *got = calloc(1, nbytes);
    kern_quantize_row_ref(type, x, got, n);
    const size_t bsz = kern_type_row_size(type, 32);
    int scale_bad = 0, lev_off1 = 0, lev_bad = 0;
    for (uint32_t b = 0; b < n / 32; b++) {
        const uint8_t *g = got + b * bsz, *w = want + b * bsz;
        const int nhalf = (type == E2H_TYPE_Q4_1 || type == E2H_TYPE_Q5_1) ? 4 : 2;
        if (memcmp(g, w, (size_t)nhalf)) scale_bad++;
        for (int j = 0; j < 32; j++) {
            int d = q32_level(type, g, j) - q32_level(type, w, j);
            if (d == 1 || d == -1) lev_off1++;
            else if (d) lev_bad++;
        }
    }
    // gguf emulates the fused multiply-add of ggml's x*id + 8.5 (q4_0, q5_0) in float64, the C
    // reference rounds the product first: a level may differ by one where x*id + 8.5 lies
    // within an ulp of an integer. Everything else must match exactly.
    const int off1_allowed = (type == E2H_TYPE_Q4_0 || type == E2H_TYPE_Q5_0) ? (int)n / 500 : 0;
    CHECKF(scale_bad == 0 && lev_bad == 0 && lev_off1 <= off1_allowed,
           "%s: %d scales differ, %d levels off by 1 (allowed %d), %d levels off by more", name,
           scale_bad, lev_off1, off1_allowed, lev_bad);
    if (lev_off1) printf("  %s: %d of %u levels differ by 1 from gguf (FMA tie cases)\n", name, lev_off1, n);
    free(x);
    free(got);
    free(buf);
}

TEST(quantize_matches_gguf_package) {
    check_quant_fixture("q4_0", E2H_TYPE_Q4_0);
    check_quant_fixture("q4_1", E2H_TYPE_Q4_1);
    check_quant_fixture("q5_0", E2H_TYPE_Q5_0);
    check_quant_fixture("q5_1", E2H_TYPE_Q5_1);
    check_quant_fixture("q8_0", E2H_TYPE_Q8_0);
}

// Round trip of every quantizer on random rows: relative RMS error within what the bit width
// allows (generous bounds: a broken packing gives errors of order 1).
TEST(quantize_round_trip) {
    const int types[] = {E2H_TYPE_Q4_0, E2H_TYPE_Q4_1, E2H_TYPE_Q5_0, E2H_TYPE_Q5_1, E2H_TYPE_Q8_0,
                         E2H_TYPE_Q4_K, E2H_TYPE_Q5_K, E2H_TYPE_Q6_K, E2H_TYPE_Q8_K};
    const double max_rel[] = {0.12, 0.12, 0.06, 0.06, 0.01, 0.10, 0.05, 0.025, 0.01};
    const int64_t n = 256 * 12;
    float *x = malloc(n * 4), *y = malloc(n * 4);
    uint8_t *q = malloc(n * 2);
    for (int64_t i = 0; i < n; i++) x[i] = rnd_normal() * (1.0f + (float)(i / 256));
    for (int i = 0; i < 9; i++) {
        kern_quantize_row_ref(types[i], x, q, n);
        kern_dequantize_row_ref(types[i], q, y, n);
        double se = 0, sx = 0;
        for (int64_t j = 0; j < n; j++) se += (double)(y[j] - x[j]) * (y[j] - x[j]), sx += (double)x[j] * x[j];
        double rel = sqrt(se / sx);
        CHECKF(rel < max_rel[i], "%s: relative rms error %.4f >= %.4f", type_name(types[i]), rel, max_rel[i]);
        // zeros quantize to exact zeros
        float z[256] = {0}, zz[256];
        kern_quantize_row_ref(types[i], z, q, 256);
        kern_dequantize_row_ref(types[i], q, zz, 256);
        for (int j = 0; j < 256; j++) CHECK(zz[j] == 0.0f);
    }
    free(x);
    free(y);
    free(q);
}

// ---------------------------------------------------------------- matmul

typedef struct {
    int type;
    int64_t n_in, n_out, n_tok;
    float *x;    // (n_tok, n_in)
    uint8_t *w;  // (n_out, row_size)
    float *wf;   // dequantized W (n_out, n_in)
    void *scratch;
} mm_case;

static void mm_case_init(mm_case *c, int type, int64_t n_tok, int64_t n_in, int64_t n_out) {
    c->type = type;
    c->n_tok = n_tok, c->n_in = n_in, c->n_out = n_out;
    const size_t rs = kern_type_row_size(type, n_in);
    c->x = malloc((size_t)(n_tok * n_in) * 4);
    c->w = malloc(rs * (size_t)n_out);
    c->wf = malloc((size_t)(n_out * n_in) * 4);
    float *tmp = malloc((size_t)n_in * 4);
    for (int64_t r = 0; r < n_out; r++) {
        for (int64_t i = 0; i < n_in; i++) tmp[i] = rnd_normal() * (0.5f + (float)((i / 32 + r) % 5));
        kern_quantize_row_ref(type, tmp, c->w + r * rs, n_in);
        kern_dequantize_row_ref(type, c->w + r * rs, c->wf + r * n_in, n_in);
    }
    for (int64_t i = 0; i < n_tok * n_in; i++) c->x[i] = rnd_normal() * (1.0f + (float)((i / 64) % 3));
    c->x[0] = 40.0f; // an outlier, as real activations have
    c->scratch = aligned_alloc(64, (size_t)((kern_qmatmul_scratch_size(type, n_tok, n_in) + 63) / 64 * 64));
    free(tmp);
}

static void mm_case_free(mm_case *c) {
    free(c->x);
    free(c->w);
    free(c->wf);
    free(c->scratch);
}

// Bound on |y_quant - x·w| from activation rounding, plus float accumulation slop.
// K types: |x - q d| <= d/2 per element. 32-blocks (llama.cpp's q8_0/q8_1): the dot sees
// the half dh of d = amax/127, |dh - d| <= e = max(d 2^-11, 2^-25), so |x - q dh| <= d/2 +
// 127 e per element; the q*_1 mins m multiply the half of d Σq, off from Σx by at most
// 32 (d/2 + 127 e). Splitting w = dw qw + m (|m| <= max |w| of the block, as the min
// element has level 0) bounds the block's error by (d/2 + 127 e) (Σ|w| + 64 max|w|).
static double mm_bound(const mm_case *c, int64_t t, int64_t r) {
    const int k = kern_quant_is_k(c->type), bs = k ? 256 : 32;
    const int has_min = c->type == E2H_TYPE_Q4_1 || c->type == E2H_TYPE_Q5_1;
    const float *x = c->x + t * c->n_in, *w = c->wf + r * c->n_in;
    double bound = 0, mag = 0;
    for (int64_t b = 0; b < c->n_in / bs; b++) {
        double amax = 0, wabs = 0, wmax = 0;
        for (int i = 0; i < bs; i++) {
            amax = fmax(amax, fabs(x[b * bs + i]));
            wabs += fabs(w[b * bs + i]);
            wmax = fmax(wmax, fabs(w[b * bs + i]));
            mag += fabs((double)x[b * bs + i] * w[b * bs + i]);
        }
        const double d = amax / 127.0, e = k ? 0.0 : fmax(d * 0x1p-11, 0x1p-25);
        bound += (wabs + (has_min ? 64.0 * wmax : 0.0)) * (d * 0.5 + 127.0 * e) * (1 + 1e-5);
    }
    return bound + 1e-5 * mag + 1e-30;
}

// Variance of the activation-rounding error if it were uniform in [-d_x/2, d_x/2].
static double mm_var(const mm_case *c, int64_t t, int64_t r) {
    const int bs = kern_quant_is_k(c->type) ? 256 : 32;
    const float *x = c->x + t * c->n_in, *w = c->wf + r * c->n_in;
    double var = 0;
    for (int64_t b = 0; b < c->n_in / bs; b++) {
        double amax = 0, w2 = 0;
        for (int i = 0; i < bs; i++) amax = fmax(amax, fabs(x[b * bs + i])), w2 += (double)w[b * bs + i] * w[b * bs + i];
        var += w2 * (amax / 127.0) * (amax / 127.0) / 12.0;
    }
    return var;
}

static double mm_exact(const mm_case *c, int64_t t, int64_t r) {
    double s = 0;
    for (int64_t i = 0; i < c->n_in; i++) s += (double)c->x[t * c->n_in + i] * c->wf[r * c->n_in + i];
    return s;
}

static void run_mm(qmm_fn fn, e2h_pool *pool, const mm_case *c, float *y, int64_t ldy, int64_t n_tok,
                   const float *x) {
    fn(pool, y, ldy, x, c->w, c->type, n_tok, c->n_in, c->n_out, c->scratch);
}

TEST(ref_matmul_vs_float_reference) {
    e2h_pool *pool = pool_init(2);
    const int64_t shapes[][3] = {{3, 96, 5}, {7, 288, 13}, {1, 800, 6}};
    const int64_t kshapes[][3] = {{3, 256, 5}, {7, 768, 9}, {1, 1280, 4}};
    for (int ti = 0; ti < N_TYPES; ti++) {
        const int k = kern_quant_is_k(k_types[ti]);
        double sum_e2 = 0, sum_var = 0;
        for (int s = 0; s < 3; s++) {
            const int64_t *sh = k ? kshapes[s] : shapes[s];
            mm_case c;
            mm_case_init(&c, k_types[ti], sh[0], sh[1], sh[2]);
            const int64_t ldy = sh[2] + 3;
            float *y = calloc((size_t)(sh[0] * ldy), 4);
            run_mm(kern_qmatmul_ref, pool, &c, y, ldy, sh[0], c.x);
            int bad = 0;
            for (int64_t t = 0; t < sh[0]; t++)
                for (int64_t r = 0; r < sh[2]; r++) {
                    double err = fabs(y[t * ldy + r] - mm_exact(&c, t, r)), b = mm_bound(&c, t, r);
                    sum_e2 += err * err;
                    sum_var += mm_var(&c, t, r);
                    if (!(err <= b)) {
                        if (bad++ < 3) printf("  %s t=%ld r=%ld err %g bound %g\n", type_name(c.type), (long)t, (long)r, err, b);
                    }
                }
            for (int64_t t = 0; t < sh[0]; t++) // padding columns untouched
                for (int64_t r = sh[2]; r < ldy; r++) CHECK(y[t * ldy + r] == 0.0f);
            CHECKF(bad == 0, "%s n_in=%ld: %d outputs outside the quantization bound", type_name(c.type), (long)sh[1], bad);
            free(y);
            mm_case_free(&c);
        }
        // statistically the error is the sum of many independent roundings: its RMS must be
        // close to the predicted one (catches a wrong scale that the worst-case bound misses)
        const double ratio = sqrt(sum_e2 / sum_var);
        CHECKF(ratio > 0.5 && ratio < 1.5, "%s: error rms / predicted rms = %.3f", type_name(k_types[ti]), ratio);
    }
    pool_free(pool);
}

// impl vs ref bit for bit, and batch/thread invariance of impl, on awkward shapes.
static void check_impl(const char *impl_name, qmm_fn fn, int compare_ref) {
    e2h_pool *pool1 = pool_init(1), *pool2 = pool_init(2);
    const int64_t toks[] = {1, 3, 7, 17, 33};
    const int64_t ins32[] = {96, 288, 800}, insk[] = {256, 768, 1280};
    const int64_t outs[] = {1, 5, 13, 37};
    for (int ti = 0; ti < N_TYPES; ti++) {
        const int k = kern_quant_is_k(k_types[ti]);
        for (int si = 0; si < 5; si++) {
            const int64_t n_tok = toks[si], n_in = k ? insk[si % 3] : ins32[si % 3], n_out = outs[si % 4] + (si == 4 ? 64 : 0);
            mm_case c;
            mm_case_init(&c, k_types[ti], n_tok, n_in, n_out);
            float *y = malloc((size_t)(n_tok * n_out) * 4), *yr = malloc((size_t)(n_tok * n_out) * 4);
            float *y1 = malloc((size_t)n_out * 4);
            run_mm(fn, pool2, &c, y, n_out, n_tok, c.x);
            if (compare_ref) {
                run_mm(kern_qmatmul_ref, pool2, &c, yr, n_out, n_tok, c.x);
                int bad = 0;
                for (int64_t i = 0; i < n_tok * n_out; i++) {
                    if (memcmp(&y[i], &yr[i], 4) && bad++ < 3)
                        printf("  %s %s: elem %ld got %.9g ref %.9g\n", impl_name, type_name(c.type), (long)i, y[i], yr[i]);
                }
                CHECKF(bad == 0, "%s %s n_tok=%ld n_in=%ld n_out=%ld: %d differ from ref", impl_name,
                       type_name(c.type), (long)n_tok, (long)n_in, (long)n_out, bad);
            }
            // each token alone (1 thread) must reproduce its row of the batch (2 threads)
            int bad = 0;
            for (int64_t t = 0; t < n_tok; t++) {
                run_mm(fn, pool1, &c, y1, n_out, 1, c.x + t * n_in);
                if (memcmp(y1, y + t * n_out, (size_t)n_out * 4)) bad++;
            }
            CHECKF(bad == 0, "%s %s n_tok=%ld: %d tokens differ alone vs in batch", impl_name,
                   type_name(c.type), (long)n_tok, bad);
            // 1 thread vs 2 threads on the whole batch
            run_mm(fn, pool1, &c, yr, n_out, n_tok, c.x);
            CHECKF(memcmp(y, yr, (size_t)(n_tok * n_out) * 4) == 0, "%s %s: 1 vs 2 threads differ", impl_name, type_name(c.type));
            free(y);
            free(yr);
            free(y1);
            mm_case_free(&c);
        }
    }
    pool_free(pool1);
    pool_free(pool2);
}

TEST(ref_batch_and_thread_invariance) { check_impl("ref", kern_qmatmul_ref, 0); }

TEST(avx2_matches_ref) {
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
        printf("  skipped: no AVX2\n");
        return;
    }
    check_impl("avx2", kern_qmatmul_avx2, 1);
}

TEST(avx512_matches_ref) {
    if (!__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vnni")) {
        printf("  skipped: no AVX-512 VNNI\n");
        return;
    }
    check_impl("avx512", kern_qmatmul_avx512, 1);
}

// Awkward activations: ties of x/d at k + 0.5, NaN, inf, -0, subnormal and all-zero blocks,
// equal |max| of both signs (q8_K takes the first), plus ordinary values.
static void fill_awkward_activations(float *x, int64_t n, int variant) {
    for (int64_t i = 0; i < n; i++) x[i] = rnd_normal() * (variant ? 1e-3f : 3.0f);
    for (int64_t b = 0; b < n / 32; b++) {
        float *xb = x + b * 32;
        switch ((b + variant) % 7) {
        case 0: // amax 127 -> d = 1: exact ties round half to even
            xb[0] = 127.0f, xb[1] = 2.5f, xb[2] = -2.5f, xb[3] = 3.5f, xb[4] = -0.5f, xb[5] = 0.5f, xb[6] = -0.0f;
            break;
        case 1: xb[(b * 5 + variant) % 16] = __builtin_nanf(""), xb[16 + b % 16] = -__builtin_nanf(""); break;
        case 2: xb[5] = __builtin_inff(); break;
        case 3: for (int i = 0; i < 32; i++) xb[i] = (i % 3 ? 1e-40f : -3e-41f); break; // subnormal
        case 4: for (int i = 0; i < 32; i++) xb[i] = 0.0f; break;
        case 5: xb[7] = -9.0f, xb[20] = 9.0f; for (int i = 0; i < 32; i++) if (i != 7 && i != 20) xb[i] = 1.0f; break;
        default: xb[31] = -__builtin_inff(), xb[(b * 3) % 31] = __builtin_nanf(""); break;
        }
    }
}

TEST(avx512_activation_quant_matches_ref) {
    if (!__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512dq") ||
        !__builtin_cpu_supports("avx512vl")) {
        printf("  skipped: no AVX-512\n");
        return;
    }
    const int64_t ins32[] = {32, 96, 288, 64}, insk[] = {256, 768, 1280, 512};
    for (int ti = 0; ti < N_TYPES; ti++) {
        const int k = kern_quant_is_k(k_types[ti]);
        for (int si = 0; si < 4; si++) {
            for (int variant = 0; variant < 2; variant++) {
                const int64_t n_in = k ? insk[si] : ins32[si], n_tok = 3;
                const int64_t sz = kern_qmatmul_scratch_size(k_types[ti], n_tok, n_in);
                float *x = malloc((size_t)(n_tok * n_in) * 4);
                uint8_t *a = aligned_alloc(64, (size_t)(sz + 63) / 64 * 64), *b = aligned_alloc(64, (size_t)(sz + 63) / 64 * 64);
                fill_awkward_activations(x, n_tok * n_in, variant);
                memset(a, 0xAB, (size_t)sz);
                memset(b, 0xCD, (size_t)sz);
                kern_qx_quantize(k_types[ti], x, 0, n_tok, n_in, a);
                kern_qx_quantize_avx512(k_types[ti], x, 0, n_tok, n_in, b);
                const int64_t used = n_tok * kern_qx_token_stride(k_types[ti], n_in);
                int64_t first = -1;
                for (int64_t i = 0; i < used && first < 0; i++)
                    if (a[i] != b[i]) first = i;
                CHECKF(first < 0, "%s n_in=%ld variant %d: scratch byte %ld differs (ref %02x simd %02x)",
                       type_name(k_types[ti]), (long)n_in, variant, (long)first, first >= 0 ? a[first] : 0,
                       first >= 0 ? b[first] : 0);
                free(x), free(a), free(b);
            }
        }
    }
}

// More tokens than one token block of the tiled kernel, quantized in parallel, odd ldy.
TEST(avx512_large_batch_matches_ref) {
    if (!__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vnni")) {
        printf("  skipped: no AVX-512 VNNI\n");
        return;
    }
    e2h_pool *pool = pool_init(2);
    for (int ti = 0; ti < N_TYPES; ti++) {
        const int k = kern_quant_is_k(k_types[ti]);
        const int64_t n_tok = 70, n_in = k ? 768 : 320, n_out = 21, ldy = 23;
        mm_case c;
        mm_case_init(&c, k_types[ti], n_tok, n_in, n_out);
        float *y = calloc((size_t)(n_tok * ldy), 4), *yr = calloc((size_t)(n_tok * ldy), 4);
        run_mm(kern_qmatmul_avx512, pool, &c, y, ldy, n_tok, c.x);
        run_mm(kern_qmatmul_ref, pool, &c, yr, ldy, n_tok, c.x);
        CHECKF(memcmp(y, yr, (size_t)(n_tok * ldy) * 4) == 0, "%s: n_tok=70 differs from ref", type_name(c.type));
        free(y), free(yr);
        mm_case_free(&c);
    }
    pool_free(pool);
}

// ---------------------------------------------------------------- llama.cpp's activations

// f16 bits -> float through the compiler's _Float16 (independent of kern_q_h2f).
static float half_bits_to_float(const uint8_t *p) {
    test_half h;
    memcpy(&h, p, 2);
    return test_half_to(h);
}

// Byte offset of element e of block b in a token's 32-block scratch (kernels/quant.h: chunk
// of blocks (2c, 2c+1), nibble order [b0 0..15 | b1 0..15 | b0 16..31 | b1 16..31] for the
// 4/5-bit types, [b0 | b1] for q8_0).
static int64_t qx32_offset(int type, int64_t b, int e) {
    const int h = (int)(b & 1);
    const int pos = type == E2H_TYPE_Q8_0 ? 32 * h + e : (e < 16 ? 16 * h + e : 32 + 16 * h + e - 16);
    return (b / 2) * 64 + pos;
}

typedef struct {
    uint32_t rows, n_in, n_w;
    const float *x;                                // (rows, n_in)
    const uint8_t *q80, *q81, *w41, *w80;          // llama.cpp blocks
    const float *y41, *y80;                        // (rows, n_w) vec_dot results
} act_fixture;

static uint8_t *act_fixture_load(act_fixture *f) {
    size_t len;
    uint8_t *buf = (uint8_t *)th_read_file("tests/fixtures/llamacpp/q8_act.bin", &len);
    CHECKF(buf != NULL, "missing tests/fixtures/llamacpp/q8_act.bin (run from the repo root)");
    if (!buf) return NULL;
    uint32_t hdr[3];
    memcpy(hdr, buf + 8, 12);
    f->rows = hdr[0], f->n_in = hdr[1], f->n_w = hdr[2];
    const size_t nb = f->n_in / 32, o_x = 20, o_q80 = o_x + (size_t)f->rows * f->n_in * 4;
    const size_t o_q81 = o_q80 + f->rows * nb * 34, o_w41 = o_q81 + f->rows * nb * 36;
    const size_t o_w80 = o_w41 + f->n_w * nb * 20, o_y = o_w80 + f->n_w * nb * 34;
    const int ok = memcmp(buf, "E2HQ8ACT", 8) == 0 && f->n_in % 32 == 0 &&
                   len == o_y + 2 * (size_t)f->rows * f->n_w * 4;
    CHECKF(ok, "q8_act.bin: bad header or size %zu", len);
    if (!ok) {
        free(buf);
        return NULL;
    }
    f->x = (const float *)(buf + o_x); // 20 is a multiple of 4: aligned for malloc'd buf
    f->q80 = buf + o_q80, f->q81 = buf + o_q81, f->w41 = buf + o_w41, f->w80 = buf + o_w80;
    f->y41 = (const float *)(buf + o_y), f->y80 = f->y41 + (size_t)f->rows * f->n_w;
    return buf;
}

typedef void (*qx_fn)(int, const float *, int64_t, int64_t, int64_t, void *);

// Compares the activation scratch of `quant` with llama.cpp's q8_0 / q8_1 blocks: the int8
// values, dx = half d, and (q8_1) sx = half s, exactly.
static void check_act_scratch(const act_fixture *f, int type, qx_fn quant, const char *impl) {
    const int q81 = type == E2H_TYPE_Q4_1 || type == E2H_TYPE_Q5_1;
    const int64_t n_in = f->n_in, nb = n_in / 32, nb2 = kern_qx32_nb2(n_in), ts = kern_qx_token_stride(type, n_in);
    uint8_t *sc = aligned_alloc(64, (size_t)(kern_qmatmul_scratch_size(type, f->rows, n_in) + 63) / 64 * 64);
    quant(type, f->x, 0, f->rows, n_in, sc);
    int bad_q = 0, bad_d = 0, bad_s = 0;
    for (uint32_t r = 0; r < f->rows; r++) {
        const uint8_t *tok = sc + r * ts;
        const float *dx = (const float *)(tok + nb2 * 32), *sx = dx + nb2;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = (q81 ? f->q81 + (r * nb + b) * 36 : f->q80 + (r * nb + b) * 34);
            const int8_t *want = (const int8_t *)(blk + (q81 ? 4 : 2));
            for (int e = 0; e < 32; e++) {
                const int8_t got = (int8_t)tok[qx32_offset(type, b, e)];
                if (got != want[e] && bad_q++ < 3)
                    printf("  %s %s row %u block %ld elem %d: q %d, llama.cpp %d (x %a)\n", impl, type_name(type), r,
                           (long)b, e, got, want[e], f->x[r * n_in + b * 32 + e]);
            }
            if (dx[b] != half_bits_to_float(blk) && bad_d++ < 3)
                printf("  %s %s row %u block %ld: dx %a, llama.cpp %a\n", impl, type_name(type), r, (long)b, dx[b],
                       half_bits_to_float(blk));
            if (q81 && sx[b] != half_bits_to_float(blk + 2) && bad_s++ < 3)
                printf("  %s %s row %u block %ld: sx %a, llama.cpp %a\n", impl, type_name(type), r, (long)b, sx[b],
                       half_bits_to_float(blk + 2));
        }
    }
    CHECKF(bad_q == 0 && bad_d == 0 && bad_s == 0, "%s %s: %d q, %d d, %d s differ from llama.cpp", impl,
           type_name(type), bad_q, bad_d, bad_s);
    free(sc);
}

// llama.cpp's quantize_row_q8_0/_1 (ggml-cpu x86) on awkward activations: fixture from
// tools/make_llamacpp_fixtures.py (calls the installed llama-cpp-python's libggml-cpu).
TEST(activation_quant_matches_llamacpp) {
    act_fixture f;
    uint8_t *buf = act_fixture_load(&f);
    if (!buf) return;
    const int types[] = {E2H_TYPE_Q4_0, E2H_TYPE_Q4_1, E2H_TYPE_Q5_0, E2H_TYPE_Q5_1, E2H_TYPE_Q8_0};
    const int simd = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                     __builtin_cpu_supports("avx512vl");
    for (int i = 0; i < 5; i++) {
        check_act_scratch(&f, types[i], kern_qx_quantize, "ref");
        if (simd) check_act_scratch(&f, types[i], kern_qx_quantize_avx512, "avx512");
    }
    free(buf);
}

// Sum over blocks of |dw dx Σ qw qx| + |m s|: the size of the terms whose summation order
// differs between e2h (16 lanes, kernels/quant.h) and ggml's vec_dot (8 lanes + hsum).
static double act_dot_magnitude(int type, const uint8_t *w, const uint8_t *a, int64_t nb) {
    double mag = 0;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wb = w + b * (type == E2H_TYPE_Q4_1 ? 20 : 34), *ab = a + b * (type == E2H_TYPE_Q4_1 ? 36 : 34);
        const int8_t *qa = (const int8_t *)(ab + (type == E2H_TYPE_Q4_1 ? 4 : 2));
        double isum = 0;
        for (int e = 0; e < 32; e++) {
            const int qw = type == E2H_TYPE_Q4_1 ? (e < 16 ? wb[4 + e] & 15 : wb[4 + e - 16] >> 4) : ((const int8_t *)(wb + 2))[e];
            isum += fabs((double)qw * qa[e]);
        }
        mag += fabs((double)half_bits_to_float(wb) * half_bits_to_float(ab)) * isum;
        if (type == E2H_TYPE_Q4_1) mag += fabs((double)half_bits_to_float(wb + 2) * half_bits_to_float(ab + 2));
    }
    return mag;
}

// The matmul on those activations vs llama.cpp's ggml_vec_dot_q4_1_q8_1 / _q8_0_q8_0: equal
// up to the float summation order (a wrong block scale, e.g. d in f32, is ~5e-4 off).
TEST(matmul_matches_llamacpp_vec_dot) {
    act_fixture f;
    uint8_t *buf = act_fixture_load(&f);
    if (!buf) return;
    const int64_t n_in = f.n_in, nb = n_in / 32;
    for (int ti = 0; ti < 2; ti++) {
        const int type = ti ? E2H_TYPE_Q8_0 : E2H_TYPE_Q4_1;
        const uint8_t *w = ti ? f.w80 : f.w41, *act = ti ? f.q80 : f.q81;
        const float *want = ti ? f.y80 : f.y41;
        const int64_t wbs = ti ? 34 : 20, abs_ = ti ? 34 : 36;
        float *y = malloc((size_t)f.rows * f.n_w * 4);
        void *sc = aligned_alloc(64, (size_t)(kern_qmatmul_scratch_size(type, f.rows, n_in) + 63) / 64 * 64);
        kern_qmatmul_ref(NULL, y, f.n_w, f.x, w, type, f.rows, n_in, f.n_w, sc);
        int bad = 0;
        double worst = 0;
        for (uint32_t r = 0; r < f.rows; r++) {
            for (uint32_t j = 0; j < f.n_w; j++) {
                const double mag = act_dot_magnitude(type, w + j * nb * wbs, act + r * nb * abs_, nb);
                const double err = fabs((double)y[r * f.n_w + j] - want[r * f.n_w + j]);
                if (mag > 0 && err / mag > worst) worst = err / mag;
                if (!(err <= 4e-6 * mag + 1e-37) && bad++ < 3)
                    printf("  %s row %u w %u: e2h %.9g llama.cpp %.9g (|terms| %.3g)\n", type_name(type), r, j,
                           y[r * f.n_w + j], want[r * f.n_w + j], mag);
            }
        }
        CHECKF(bad == 0, "%s: %d dots differ from llama.cpp beyond summation order (worst %.2e)", type_name(type),
               bad, worst);
        free(y);
        free(sc);
    }
    free(buf);
}

TEST(scratch_size_rejects_bad_shapes) {
    CHECK(kern_qmatmul_scratch_size(E2H_TYPE_Q4_0, 4, 100) < 0);
    CHECK(kern_qmatmul_scratch_size(E2H_TYPE_Q4_K, 4, 288) < 0);
    CHECK(kern_qmatmul_scratch_size(E2H_TYPE_Q2_K, 4, 256) < 0);
    CHECK(kern_qmatmul_scratch_size(E2H_TYPE_F32, 4, 256) < 0);
    CHECK(kern_qmatmul_scratch_size(999, 4, 256) < 0);
    CHECK(kern_qmatmul_scratch_size(E2H_TYPE_Q8_0, 4, 256) > 4 * 256);
    CHECK(!kern_quant_type_supported(E2H_TYPE_Q2_K) && kern_quant_type_supported(E2H_TYPE_Q6_K));
}

int main(void) {
    RUN(half_conversion);
    RUN(dequant_matches_gguf_package);
    RUN(dequant_q8_K);
    RUN(quantize_matches_gguf_package);
    RUN(quantize_round_trip);
    RUN(scratch_size_rejects_bad_shapes);
    RUN(ref_matmul_vs_float_reference);
    RUN(ref_batch_and_thread_invariance);
    RUN(avx2_matches_ref);
    RUN(avx512_matches_ref);
    RUN(avx512_activation_quant_matches_ref);
    RUN(avx512_large_batch_matches_ref);
    RUN(activation_quant_matches_llamacpp);
    RUN(matmul_matches_llamacpp_vec_dot);
    return TEST_SUMMARY();
}
