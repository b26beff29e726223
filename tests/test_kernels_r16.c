// tests/test_kernels_r16.c — r16 (row-interleaved) quantized matmul.
//
// Oracles: (1) an independent double-precision dot of the dequantized GGUF weights with the
// dequantized int8 activations (the exact value the quantized kernels approximate), with
// tolerance abs 1e-6 + rel 2e-6·Σ|terms| (f32 accumulation over at most a few hundred
// blocks); (2) the existing GGUF-layout reference matmul (same integer dots, other float
// order) within the same bound; (3) the AVX-512 kernel is bit-identical to the r16 scalar
// reference, and both are batch- and thread-invariant (a token alone == in a batch).
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "r16_case.h"
#include "kernels/float_kernels.h"
#include "kernels/ops.h"
#include "kernels/quant.h"
#include "kernels/quant_r16.h"

static const int k_types[] = {E2H_TYPE_Q4_0, E2H_TYPE_Q4_1, E2H_TYPE_Q8_0};

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint32_t rnd_u32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float rnd_sym(void) { return (rnd_u32() >> 8) * (2.0f / 16777216.0f) - 1.0f; }

static int has_avx512(void) { return ops_get("avx512") != NULL; }

// A case of tests/r16_case.h with the GGUF kernels' scratch too.
typedef r16_case rcase;

static void rcase_init(rcase *c, int type, int64_t n_tok, int64_t n_in, int64_t n_out) {
    r16_case_init(c, type, n_tok, n_in, n_out, rnd_sym);
    c->scratch_gguf = zalloc64((size_t)kern_qmatmul_scratch_size(type, n_tok, n_in));
}

static void rcase_free(rcase *c) { r16_case_free(c); }

// Exact dot of dequantized weights with the dequantized int8 activations (as llama.cpp's
// activations: q·dx, plus for q4_1 the min term m·sx), and the magnitude Σ|terms|.
static double exact_dot(const rcase *c, const uint8_t *scratch, int64_t t, int64_t r, double *mag) {
    const int64_t nb = c->n_in / 32, nb2 = kern_qx32_nb2(c->n_in);
    const uint8_t *tok = scratch + t * kern_r16_token_stride(c->n_in);
    const int8_t *q = (const int8_t *)tok;
    const float *dx = (const float *)(tok + nb2 * 32), *sx = dx + nb2;
    const size_t rs = kern_type_row_size(c->type, c->n_in), bsz = kern_type_row_size(c->type, 32);
    double s = 0, m = 0;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = c->w + r * rs + b * bsz;
        float deq[32];
        // levels × d (min excluded): dequantize a copy with m = 0, then the min term apart
        uint8_t tmp[64];
        memcpy(tmp, blk, bsz);
        float mw = 0;
        if (c->type == E2H_TYPE_Q4_1) {
            uint16_t h;
            memcpy(&h, blk + 2, 2);
            mw = kern_q_h2f(h);
            memset(tmp + 2, 0, 2);
        }
        kern_dequantize_row_ref(c->type, tmp, deq, 32);
        for (int e = 0; e < 32; e++) {
            const double term = (double)deq[e] * q[32 * b + e] * dx[b];
            s += term;
            m += fabs(term);
        }
        s += (double)mw * sx[b];
        m += fabs((double)mw * sx[b]);
    }
    *mag = m;
    return s;
}

typedef void (*mm_fn)(e2h_pool *, float *, int64_t, const float *, const void *, int, int64_t, int64_t,
                      int64_t, void *);

static void run_r16(mm_fn f, e2h_pool *pool, rcase *c, float *y, int64_t n_tok, int64_t t0) {
    f(pool, y, c->n_out, c->x + t0 * c->n_in, c->wp, c->type, n_tok, c->n_in, c->n_out, c->scratch);
}

// Shapes: n_out not a multiple of 16 or 32, odd block counts, 1 block, SmolLM2's 576.
static const int64_t k_shapes[][3] = {{1, 32, 1},   {3, 96, 17},   {5, 576, 45},  {1, 576, 192},
                                      {9, 160, 33}, {4, 1536, 64}, {2, 32, 100}, {7, 224, 16}};

TEST(ref_matches_exact_and_gguf_ref) {
    for (size_t ti = 0; ti < sizeof k_types / sizeof *k_types; ti++)
        for (size_t si = 0; si < sizeof k_shapes / sizeof *k_shapes; si++) {
            rcase c;
            rcase_init(&c, k_types[ti], k_shapes[si][0], k_shapes[si][1], k_shapes[si][2]);
            float *y = malloc(sizeof(float) * (size_t)(c.n_tok * c.n_out));
            float *yg = malloc(sizeof(float) * (size_t)(c.n_tok * c.n_out));
            run_r16(kern_r16_matmul_ref, NULL, &c, y, c.n_tok, 0);
            kern_qmatmul_ref(NULL, yg, c.n_out, c.x, c.w, c.type, c.n_tok, c.n_in, c.n_out, c.scratch_gguf);
            int bad = 0;
            for (int64_t t = 0; t < c.n_tok && !bad; t++)
                for (int64_t r = 0; r < c.n_out && !bad; r++) {
                    double mag;
                    const double ex = exact_dot(&c, c.scratch, t, r, &mag);
                    const double tol = 1e-6 + 2e-6 * mag;
                    const float a = y[t * c.n_out + r], g = yg[t * c.n_out + r];
                    if (!(fabs(a - ex) <= tol) || !(fabs(g - ex) <= tol)) {
                        CHECKF(0, "type %d shape %lldx%lldx%lld t=%lld r=%lld: r16 %.9g gguf %.9g exact %.9g tol %.3g",
                               c.type, (long long)c.n_tok, (long long)c.n_in, (long long)c.n_out, (long long)t,
                               (long long)r, a, g, ex, tol);
                        bad = 1;
                    }
                }
            free(y);
            free(yg);
            rcase_free(&c);
        }
}

// f on n tokens at once, and on each token alone, with 1 and 2 threads: all bit-identical,
// and (when want is given) bit-identical to want.
static int check_invariance(mm_fn f, rcase *c, const float *want) {
    e2h_pool *p2 = pool_init(2);
    const size_t ny = (size_t)(c->n_tok * c->n_out);
    float *ya = malloc(sizeof(float) * ny), *yb = malloc(sizeof(float) * ny), *y1 = malloc(sizeof(float) * ny);
    run_r16(f, NULL, c, ya, c->n_tok, 0);
    run_r16(f, p2, c, yb, c->n_tok, 0);
    for (int64_t t = 0; t < c->n_tok; t++) run_r16(f, p2, c, y1 + t * c->n_out, 1, t);
    int ok = !memcmp(ya, yb, sizeof(float) * ny) && !memcmp(ya, y1, sizeof(float) * ny);
    if (want) ok = ok && !memcmp(ya, want, sizeof(float) * ny);
    free(ya);
    free(yb);
    free(y1);
    pool_free(p2);
    return ok;
}

TEST(ref_batch_and_thread_invariance) {
    for (size_t ti = 0; ti < sizeof k_types / sizeof *k_types; ti++)
        for (size_t si = 0; si < sizeof k_shapes / sizeof *k_shapes; si++) {
            rcase c;
            rcase_init(&c, k_types[ti], k_shapes[si][0], k_shapes[si][1], k_shapes[si][2]);
            CHECKF(check_invariance(kern_r16_matmul_ref, &c, NULL), "type %d shape %zu", c.type, si);
            rcase_free(&c);
        }
}

TEST(avx512_bit_identical_to_ref) {
    if (!has_avx512()) {
        printf("  skipped: no AVX-512 VNNI on this CPU\n");
        return;
    }
    // The decode tiles (n_tok = 1, and every token alone in check_invariance) take 4 groups:
    // 1..3 groups left at the end of a thread's slice, a partial last group, long groups.
    const int64_t extra[][3] = {{67, 576, 49}, {16, 4096, 40}, {130, 64, 31}, {1, 576, 65},
                                {1, 1536, 150}, {3, 2048, 113}, {1, 64, 120}, {2, 352, 97}};
    const size_t n_extra = sizeof extra / sizeof *extra;
    for (size_t ti = 0; ti < sizeof k_types / sizeof *k_types; ti++)
        for (size_t si = 0; si < sizeof k_shapes / sizeof *k_shapes + n_extra; si++) {
            const int64_t *s = si < sizeof k_shapes / sizeof *k_shapes ? k_shapes[si] : extra[si - sizeof k_shapes / sizeof *k_shapes];
            rcase c;
            rcase_init(&c, k_types[ti], s[0], s[1], s[2]);
            float *want = malloc(sizeof(float) * (size_t)(c.n_tok * c.n_out));
            run_r16(kern_r16_matmul_ref, NULL, &c, want, c.n_tok, 0);
            CHECKF(check_invariance(kern_r16_matmul_avx512, &c, want), "type %d shape %lldx%lldx%lld", c.type,
                   (long long)s[0], (long long)s[1], (long long)s[2]);
            free(want);
            rcase_free(&c);
        }
}

TEST(repack_layout) {
    // Row r, element e of a q8_0 matrix is at group r/16, block e/32, vector (e%32)/4,
    // lane r%16, byte e%4, plus 128; its scale at the group's scale area.
    rcase c;
    rcase_init(&c, E2H_TYPE_Q8_0, 1, 64, 20);
    const int64_t gs = kern_r16_group_stride(E2H_TYPE_Q8_0, 64);
    CHECK(kern_r16_size(E2H_TYPE_Q8_0, 64, 20) == (size_t)(2 * gs));
    int ok = 1;
    for (int64_t r = 0; r < 20; r++)
        for (int e = 0; e < 64; e++) {
            const e2h_block_q8_0 *blk = (const e2h_block_q8_0 *)(c.w + r * kern_type_row_size(E2H_TYPE_Q8_0, 64)) + e / 32;
            const uint8_t *g = c.wp + (r / 16) * gs;
            const uint8_t got = g[(e / 32) * 512 + ((e % 32) / 4) * 64 + (r % 16) * 4 + e % 4];
            ok &= got == (uint8_t)(blk->qs[e % 32] + 128);
            uint16_t d;
            memcpy(&d, g + 2 * 512 + (e / 32) * 32 + (r % 16) * 2, 2);
            ok &= d == blk->d;
        }
    CHECK(ok);
    rcase_free(&c);
}

// Fused calls against the unfused ones of the same implementation, bit for bit: q|k|v rows
// concatenated into 3 segments, and gate/up groups interleaved with the SwiGLU epilogue.
typedef void (*mmx_fn)(e2h_pool *, const e2h_mm_out *, const float *, const void *, int, int64_t, int64_t,
                       int64_t, void *);
typedef void (*swiglu_fn)(float *, const float *, const float *, int64_t, int64_t);
typedef void (*rmsnorm_fn)(float *, const float *, const float *, int64_t, int64_t, float);

// With norm: the fused calls take the raw rows and RMSNorm them (norm weights nw) on the way
// in; the unfused ones get rmsnorm(x) from the same implementation's rmsnorm.
static int check_fused(mm_fn plain, mmx_fn ex, swiglu_fn sw, rmsnorm_fn rn, int norm, int type, int64_t n_tok,
                       int64_t n_in) {
    const int64_t rq = 48, rk = 16, rh = 64; // rows of q, k (= v), and gate (= up)
    e2h_pool *p2 = pool_init(2);
    rcase q, k, v, g, u;
    rcase_init(&q, type, n_tok, n_in, rq);
    rcase_init(&k, type, n_tok, n_in, rk);
    rcase_init(&v, type, n_tok, n_in, rk);
    rcase_init(&g, type, n_tok, n_in, rh);
    rcase_init(&u, type, n_tok, n_in, rh);
    float *raw = malloc(sizeof(float) * (size_t)(n_tok * n_in)), *nw = malloc(sizeof(float) * (size_t)n_in);
    memcpy(raw, q.x, sizeof(float) * (size_t)(n_tok * n_in));
    for (int64_t i = 0; i < n_in; i++) nw[i] = 0.5f + rnd_sym();
    if (norm) rn(q.x, raw, nw, n_tok, n_in, 1e-5f); // the unfused calls' input
    memcpy(k.x, q.x, sizeof(float) * (size_t)(n_tok * n_in)); // one input for all
    memcpy(v.x, q.x, sizeof(float) * (size_t)(n_tok * n_in));
    memcpy(g.x, q.x, sizeof(float) * (size_t)(n_tok * n_in));
    memcpy(u.x, q.x, sizeof(float) * (size_t)(n_tok * n_in));
    const int64_t gs = kern_r16_group_stride(type, n_in);
    uint8_t *wqkv = zalloc64(kern_r16_size(type, n_in, rq + 2 * rk));
    kern_r16_repack_to(NULL, type, q.w, n_in, rq, wqkv, gs);
    kern_r16_repack_to(NULL, type, k.w, n_in, rk, wqkv + (rq / 16) * gs, gs);
    kern_r16_repack_to(NULL, type, v.w, n_in, rk, wqkv + ((rq + rk) / 16) * gs, gs);
    uint8_t *wgu = zalloc64(kern_r16_size(type, n_in, 2 * rh));
    kern_r16_repack_to(p2, type, g.w, n_in, rh, wgu, 2 * gs);
    kern_r16_repack_to(p2, type, u.w, n_in, rh, wgu + gs, 2 * gs);
    float *yq = calloc((size_t)(n_tok * rq), 4), *yk = calloc((size_t)(n_tok * rk), 4), *yv = calloc((size_t)(n_tok * rk), 4);
    float *fq = calloc((size_t)(n_tok * rq), 4), *fk = calloc((size_t)(n_tok * rk), 4), *fv = calloc((size_t)(n_tok * rk), 4);
    float *yg = calloc((size_t)(n_tok * rh), 4), *yu = calloc((size_t)(n_tok * rh), 4), *fh = calloc((size_t)(n_tok * rh), 4);
    run_r16(plain, NULL, &q, yq, n_tok, 0);
    run_r16(plain, NULL, &k, yk, n_tok, 0);
    run_r16(plain, NULL, &v, yv, n_tok, 0);
    run_r16(plain, NULL, &g, yg, n_tok, 0);
    run_r16(plain, NULL, &u, yu, n_tok, 0);
    sw(yg, yg, yu, n_tok, rh);
    int ok = 1;
    for (int threads = 0; threads < 2; threads++) {
        const e2h_mm_seg segs[3] = {{fq, rq, rq}, {fk, rk, rk}, {fv, rk, rk}};
        const e2h_mm_out o3 = {segs, 3, 0, norm ? nw : NULL, 1e-5f};
        ex(threads ? p2 : NULL, &o3, norm ? raw : q.x, wqkv, type, n_tok, n_in, rq + 2 * rk, q.scratch);
        const e2h_mm_seg sh = {fh, rh, rh};
        const e2h_mm_out osw = {&sh, 1, 1, norm ? nw : NULL, 1e-5f};
        ex(threads ? p2 : NULL, &osw, norm ? raw : q.x, wgu, type, n_tok, n_in, 2 * rh, g.scratch);
        ok &= !memcmp(yq, fq, sizeof(float) * (size_t)(n_tok * rq)) && !memcmp(yk, fk, sizeof(float) * (size_t)(n_tok * rk)) &&
              !memcmp(yv, fv, sizeof(float) * (size_t)(n_tok * rk)) && !memcmp(yg, fh, sizeof(float) * (size_t)(n_tok * rh));
    }
    free(raw), free(nw);
    free(yq), free(yk), free(yv), free(fq), free(fk), free(fv), free(yg), free(yu), free(fh), free(wqkv), free(wgu);
    rcase_free(&q), rcase_free(&k), rcase_free(&v), rcase_free(&g), rcase_free(&u);
    pool_free(p2);
    return ok;
}

TEST(fused_qkv_swiglu_rmsnorm_equal_unfused) {
    const int64_t shapes[][2] = {{1, 96}, {5, 576}, {9, 160}};
    for (size_t ti = 0; ti < sizeof k_types / sizeof *k_types; ti++)
        for (size_t si = 0; si < 3; si++)
            for (int norm = 0; norm < 2; norm++) {
                CHECKF(check_fused(kern_r16_matmul_ref, kern_r16_matmul_ex_ref, kern_swiglu_ref, kern_rmsnorm_ref, norm,
                                   k_types[ti], shapes[si][0], shapes[si][1]),
                       "ref type %d shape %zu norm %d", k_types[ti], si, norm);
                if (has_avx512())
                    CHECKF(check_fused(kern_r16_matmul_avx512, kern_r16_matmul_ex_avx512, kern_swiglu_avx512,
                                       kern_rmsnorm_avx512, norm, k_types[ti], shapes[si][0], shapes[si][1]),
                           "avx512 type %d shape %zu norm %d", k_types[ti], si, norm);
            }
}

TEST(rejects_bad_shapes) {
    CHECK(kern_r16_size(E2H_TYPE_Q4_0, 33, 16) == 0);
    CHECK(kern_r16_size(E2H_TYPE_Q4_K, 256, 16) == 0);
    CHECK(kern_r16_size(E2H_TYPE_Q4_0, 32, 0) == 0);
    CHECK(kern_r16_scratch_size(E2H_TYPE_Q4_1, 1, 48) < 0);
    CHECK(kern_r16_scratch_size(E2H_TYPE_Q5_0, 1, 64) < 0);
    CHECK(!kern_r16_supported(E2H_TYPE_F32));
}

int main(void) {
    RUN(repack_layout);
    RUN(rejects_bad_shapes);
    RUN(ref_matches_exact_and_gguf_ref);
    RUN(ref_batch_and_thread_invariance);
    RUN(avx512_bit_identical_to_ref);
    RUN(fused_qkv_swiglu_rmsnorm_equal_unfused);
    return TEST_SUMMARY();
}
