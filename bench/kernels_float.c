// bench/kernels_float.c — microbenchmarks of the float kernels of the best ops table (each
// validated against the ref table first): matmul decode (GB/s of weights) and prefill
// (GFLOP/s, % of peak), rmsnorm / rope / swiglu (GB/s), attention decode over a paged f16
// cache with 16 sequences sharing a 200-token prefix, with and without the cascade.
//   usage: kernels_float [threads=2] [reps=5] [attn]   (attn: attention benchmarks only)
// Peak: measured here with a register-only FMA loop on one core (best of 5 short runs), times
// the thread count. For reference: Zen 4 executes a 512-bit FMA as two 256-bit halves
// (32 FP32 flop/cycle/core); Zen 5 (cpu family 26, what this project's machines report) has
// two full 512-bit FMA pipes (64 flop/cycle/core).
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/float_kernels.h"
#include "kernels/ops.h"
#include "kernels/pool.h"
#include "bench_util.h"

static void fill(float *x, int64_t n, unsigned seed, float scale) {
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = scale * ((float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f);
    }
}

// Peak probes: 12 independent chains of one instruction on one core, best of 5 short runs.
// The chains are 12 named locals (an array kept on the stack — GCC stores it back every
// iteration when asm constraints name its elements — measured a third of the peak).
#define PEAK_CHAINS(T, OP)                                                                   \
    T a0 = init, a1 = init, a2 = init, a3 = init, a4 = init, a5 = init, a6 = init, a7 = init, \
      a8 = init, a9 = init, a10 = init, a11 = init;                                          \
    double best = 1e30;                                                                      \
    for (int rep = 0; rep < 5; rep++) {                                                      \
        const double t0 = now_s();                                                           \
        for (long k = 0; k < n; k++) {                                                       \
            a0 = OP(a0), a1 = OP(a1), a2 = OP(a2), a3 = OP(a3), a4 = OP(a4), a5 = OP(a5);    \
            a6 = OP(a6), a7 = OP(a7), a8 = OP(a8), a9 = OP(a9), a10 = OP(a10), a11 = OP(a11); \
            __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), \
                             "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));  \
        }                                                                                    \
        const double t = now_s() - t0;                                                       \
        if (t < best) best = t;                                                              \
    }

// One core's FP32 FMA throughput (GFLOP/s).
__attribute__((target("avx512f"))) static double peak_avx512(void) {
    const __m512 init = _mm512_set1_ps(1e-3f), b = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-4f);
    const long n = 4000000;
#define FMA512(x) _mm512_fmadd_ps(x, b, c)
    PEAK_CHAINS(__m512, FMA512)
    return n * 12.0 * 32 / best * 1e-9;
}

// One core's vdpbf16ps throughput (GFLOP/s, 2 per bf16 pair): the bf16dot kernel's peak.
__attribute__((target("avx512f,avx512bf16"))) static double peak_bf16dot(void) {
    const __m512 init = _mm512_set1_ps(1e-3f);
    const __m512bh b = (__m512bh)_mm512_set1_epi16(0x3f7f), c = (__m512bh)_mm512_set1_epi16(0x3800);
    const long n = 4000000;
#define DP512(x) _mm512_dpbf16_ps(x, b, c)
    PEAK_CHAINS(__m512, DP512)
    return n * 12.0 * 64 / best * 1e-9;
}

__attribute__((target("avx2,fma"))) static double peak_avx2(void) {
    const __m256 init = _mm256_set1_ps(1e-3f), b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-4f);
    const long n = 4000000;
#define FMA256(x) _mm256_fmadd_ps(x, b, c)
    PEAK_CHAINS(__m256, FMA256)
    return n * 12.0 * 16 / best * 1e-9;
}

static double max_rel_err(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]) / (1e-3 + fabs((double)b[i])));
    return m;
}

// peak: FMA peak of the threads; peak_bd: vdpbf16ps peak (the bf16dot kernel's row), 0 if none.
static void bench_matmul(const e2h_ops *ops, const e2h_ops *ref, e2h_pool *pool, int reps,
                         double peak, double peak_bd) {
    // bf16 twice where the avx512bf16 table is in use: its vdpbf16ps kernel (compared with its
    // own ref, kern_matmul_bf16dot_ref) and the f32-arithmetic avx512 path beside it
    const e2h_ops *o512 = ops_get("avx512");
    const int bd = !strcmp(ops->name, "avx512bf16") && o512;
    const int types[] = {E2H_TYPE_F32, E2H_TYPE_BF16, E2H_TYPE_F16, E2H_TYPE_BF16};
    const char *tn[] = {"f32", "bf16", "f16", "bf16*"}; // bf16*: avx512, f32 math
    const int64_t shapes[][2] = {{2048, 2048}, {5632, 2048}, {576, 576}}; // (n_out, n_in)
    for (unsigned s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const int64_t no = shapes[s][0], ni = shapes[s][1], ntp = 128;
        float *wf = malloc(sizeof(float) * no * ni), *x = malloc(sizeof(float) * ntp * ni);
        float *y = malloc(sizeof(float) * ntp * no), *yr = malloc(sizeof(float) * ntp * no);
        uint16_t *wh = malloc(2 * no * ni);
        void *scratch = malloc((size_t)ops_matmul_scratch_size(E2H_TYPE_BF16, ntp, ni));
        fill(wf, no * ni, 1, 1.0f), fill(x, ntp * ni, 2, 1.0f);
        for (int ti = 0; ti < (bd ? 4 : 3); ti++) {
            const e2h_ops *o = ti == 3 ? o512 : ops;
            const void *w = wf;
            if (types[ti] != E2H_TYPE_F32) {
                o->quantize_row(types[ti], wf, wh, no * ni);
                w = wh;
            }
            const double wbytes = (double)kern_type_row_size(types[ti], ni) * no;
            if (bd && ti == 1) kern_matmul_bf16dot_ref(pool, yr, no, x, w, 4, ni, no, NULL);
            else ref->matmul(pool, yr, no, x, w, types[ti], 4, ni, no, NULL);
            o->matmul(pool, y, no, x, w, types[ti], 4, ni, no, scratch);
            const int exact = !memcmp(y, yr, sizeof(float) * 4 * no);
            double td = BEST_OF(reps * 4, o->matmul(pool, y, no, x, w, types[ti], 1, ni, no, scratch));
            double tp = BEST_OF(reps, o->matmul(pool, y, no, x, w, types[ti], ntp, ni, no, scratch));
            const double gf = 2.0 * ntp * ni * no / tp * 1e-9;
            const double pk = bd && ti == 1 ? peak_bd : peak; // bf16dot: % of the vdpbf16ps peak
            printf("matmul %-4s %5ldx%-5ld decode %8.1f us %6.1f GB/s | prefill %3ld tok %7.2f ms %6.1f "
                   "GFLOP/s (%4.1f%% %s peak) | ==ref bits: %s\n",
                   tn[ti], (long)no, (long)ni, td * 1e6, wbytes / td * 1e-9, (long)ntp, tp * 1e3, gf,
                   100 * gf / pk, bd && ti == 1 ? "dpbf16" : "FMA", exact ? "yes" : "NO");
        }
        free(wf), free(x), free(y), free(yr), free(wh), free(scratch);
    }
}

static void bench_elementwise(const e2h_ops *ops, const e2h_ops *ref, int reps) {
    const int64_t n = 64, dim = 2048, ff = 5632;
    float *x = malloc(sizeof(float) * n * ff), *w = malloc(sizeof(float) * ff);
    float *u = malloc(sizeof(float) * n * ff), *y = malloc(sizeof(float) * n * ff);
    float *yr = malloc(sizeof(float) * n * ff);
    fill(x, n * ff, 3, 4.0f), fill(w, ff, 4, 1.0f), fill(u, n * ff, 5, 1.0f);

    ref->rmsnorm(yr, x, w, n, dim, 1e-5f);
    ops->rmsnorm(y, x, w, n, dim, 1e-5f);
    double err = max_rel_err(y, yr, n * dim);
    double t = BEST_OF(reps * 4, ops->rmsnorm(y, x, w, n, dim, 1e-5f));
    printf("rmsnorm %ldx%ld: %8.1f us %6.1f GB/s (max rel err vs ref %.1e)\n", (long)n, (long)dim,
           t * 1e6, 3.0 * 4 * n * dim / t * 1e-9, err);

    ref->swiglu(yr, x, u, n, ff);
    ops->swiglu(y, x, u, n, ff);
    err = max_rel_err(y, yr, n * ff);
    t = BEST_OF(reps * 4, ops->swiglu(y, x, u, n, ff));
    printf("swiglu  %ldx%ld: %8.1f us %6.1f GB/s (max rel err vs ref %.1e)\n", (long)n, (long)ff,
           t * 1e6, 3.0 * 4 * n * ff / t * 1e-9, err);

    const int nh = 32, hd = 64;
    float inv[32];
    int32_t pos[64];
    for (int i = 0; i < hd / 2; i++) inv[i] = powf(10000.0f, -2.0f * i / hd);
    for (int i = 0; i < n; i++) pos[i] = 100 + i;
    memcpy(y, x, sizeof(float) * n * nh * hd);
    memcpy(yr, x, sizeof(float) * n * nh * hd);
    ref->rope(yr, pos, n, nh, hd, inv, 0);
    ops->rope(y, pos, n, nh, hd, inv, 0);
    const int exact = !memcmp(y, yr, sizeof(float) * n * nh * hd);
    t = BEST_OF(reps * 4, ops->rope(y, pos, n, nh, hd, inv, 0));
    printf("rope    %ldx%dx%d: %8.1f us %6.1f GB/s (==ref bits: %s)\n", (long)n, nh, hd, t * 1e6,
           2.0 * 4 * n * nh * hd / t * 1e-9, exact ? "yes" : "NO");
    free(x), free(w), free(u), free(y), free(yr);
}

// 16 sequences decoding one token each; all share the first 12 blocks (192 of the 200 prompt
// tokens); blocks after the prefix are private. K/V f16, block 16.
static void bench_attention(const e2h_ops *ops, e2h_pool *pool, int reps, int n_heads, int n_kv,
                            int hd, int GEN) {
    enum { NS = 16, BS = 16, PREFIX = 200 };
    const int ctx = PREFIX + GEN, nb_seq = (ctx + BS - 1) / BS, shared = PREFIX / BS;
    const int n_blocks = shared + NS * (nb_seq - shared);
    const int64_t blk_elems = (int64_t)n_kv * BS * hd;
    uint16_t *k = malloc(2 * blk_elems * n_blocks), *v = malloc(2 * blk_elems * n_blocks);
    float *tmp = malloc(sizeof(float) * blk_elems * n_blocks);
    fill(tmp, blk_elems * n_blocks, 7, 1.0f);
    ops->quantize_row(E2H_TYPE_F16, tmp, k, blk_elems * n_blocks);
    fill(tmp, blk_elems * n_blocks, 8, 1.0f);
    ops->quantize_row(E2H_TYPE_F16, tmp, v, blk_elems * n_blocks);
    int32_t tables[NS][64];
    if (nb_seq > 64) return;
    e2h_attn_seq seqs[NS];
    int next = shared;
    for (int s = 0; s < NS; s++) {
        for (int b = 0; b < nb_seq; b++) tables[s][b] = b < shared ? b : next++;
        seqs[s] = (e2h_attn_seq){tables[s], ctx - 1, 1, s};
    }
    float *q = malloc(sizeof(float) * NS * n_heads * hd), *o1 = malloc(sizeof(float) * NS * n_heads * hd);
    float *o2 = malloc(sizeof(float) * NS * n_heads * hd);
    fill(q, (int64_t)NS * n_heads * hd, 9, 1.0f);
    e2h_kv_layer_view kv = {k, v, E2H_TYPE_F16, BS, n_kv, hd};
    void *scratch = malloc(kern_attn_scratch_size(pool_size(pool), n_heads, hd, ctx));
    const float sc = 1.0f / sqrtf((float)hd);
    e2h_attn_phase_fn chunk = ops->attention_phase;
    kern_attention_ref(pool, o2, q, seqs, NS, n_heads, &kv, sc, scratch);
    kern_attention_run(chunk, 0, pool, o1, q, seqs, NS, n_heads, &kv, sc, scratch);
    const double err = max_rel_err(o1, o2, (int64_t)NS * n_heads * hd);
    double t0 = BEST_OF(reps * 4, kern_attention_run(chunk, 0, pool, o1, q, seqs, NS, n_heads, &kv, sc, scratch));
    double t1 = BEST_OF(reps * 4, kern_attention_run(chunk, 1, pool, o2, q, seqs, NS, n_heads, &kv, sc, scratch));
    const int same = !memcmp(o1, o2, sizeof(float) * NS * n_heads * hd);
    const double bytes = 2.0 * 2 * (double)NS * ctx * n_kv * hd; // K+V f16 as if read per sequence
    const double flops = 4.0 * NS * n_heads * (double)ctx * hd;
    printf("attention decode %d seqs x ctx %d (prefix %d shared), heads %d/%d hd %d f16: "
           "per-seq %7.1f us (%5.1f GB/s, %5.1f GFLOP/s) | cascade %7.1f us (x%.2f) | same bits: %s | "
           "max rel err vs ref %.1e\n",
           NS, ctx, PREFIX, n_heads, n_kv, hd, t0 * 1e6, bytes / t0 * 1e-9, flops / t0 * 1e-9,
           t1 * 1e6, t0 / t1, same ? "yes" : "NO", err);
    free(k), free(v), free(tmp), free(q), free(o1), free(o2), free(scratch);
}

// One sequence's prompt of n_tok tokens (causal, n_past 0) over a paged cache of 16-slot blocks:
// the prefill attention of one layer. kv_type f16 or f32. GFLOP/s counts QK^T and PV only
// (4 * hd flops per visible (query, head, position)).
static void bench_attention_prefill(const e2h_ops *ops, e2h_pool *pool, int reps, int n_heads,
                                    int n_kv, int hd, int n_tok, int n_past, int kv_type) {
    enum { BS = 16 };
    const int ctx = n_past + n_tok, nb = (ctx + BS - 1) / BS;
    const int64_t blk_elems = (int64_t)n_kv * BS * hd, n_el = blk_elems * nb;
    const size_t es = kv_type == E2H_TYPE_F16 ? 2 : 4;
    void *k = malloc(es * n_el), *v = malloc(es * n_el);
    float *tmp = malloc(sizeof(float) * n_el);
    fill(tmp, n_el, 17, 1.0f);
    ops->quantize_row(kv_type, tmp, k, n_el);
    fill(tmp, n_el, 18, 1.0f);
    ops->quantize_row(kv_type, tmp, v, n_el);
    int32_t *table = malloc(sizeof(int32_t) * nb);
    for (int b = 0; b < nb; b++) table[b] = b;
    e2h_attn_seq seq = {table, n_past, n_tok, 0};
    const int64_t qn = (int64_t)n_tok * n_heads * hd;
    float *q = malloc(sizeof(float) * qn), *o1 = malloc(sizeof(float) * qn);
    float *o2 = malloc(sizeof(float) * qn);
    fill(q, qn, 19, 1.0f);
    e2h_kv_layer_view kv = {k, v, kv_type, BS, n_kv, hd};
    void *scratch = malloc(kern_attn_scratch_size(pool_size(pool), n_heads, hd, ctx));
    const float sc = 1.0f / sqrtf((float)hd);
    ops_ref()->attention(pool, o2, q, &seq, 1, n_heads, &kv, sc, scratch);
    double t = BEST_OF(reps, ops->attention(pool, o1, q, &seq, 1, n_heads, &kv, sc, scratch));
    double vis = 0;
    for (int i = 0; i < n_tok; i++) vis += n_past + i + 1;
    const double flops = 4.0 * hd * n_heads * vis;
    printf("attention %s %d tok (n_past %d), heads %d/%d hd %d %s: %8.1f us %6.1f GFLOP/s | "
           "max rel err vs ref %.1e\n", n_tok == 1 ? "decode " : "prefill", n_tok, n_past, n_heads,
           n_kv, hd, kv_type == E2H_TYPE_F16 ? "f16" : "f32", t * 1e6, flops / t * 1e-9,
           max_rel_err(o1, o2, qn));
    free(k), free(v), free(tmp), free(table), free(q), free(o1), free(o2), free(scratch);
}

int main(int argc, char **argv) {
    const int nth = argc > 1 ? atoi(argv[1]) : 2, reps = argc > 2 ? atoi(argv[2]) : 5;
    if (nth < 1 || nth > 256 || reps < 1) {
        fprintf(stderr, "usage: kernels_float [threads=2, 1-256] [reps=5, >= 1] [attn]\n");
        return 2;
    }
    const e2h_ops *ops = ops_get("auto"), *ref = ops_ref();
    e2h_pool *pool = pool_init(nth);
    double core = !strncmp(ops->name, "avx512", 6) ? peak_avx512()
                  : !strcmp(ops->name, "avx2") ? peak_avx2()
                                               : 0.0;
    double peak = core * nth;
    const double core_bd = !strcmp(ops->name, "avx512bf16") ? peak_bf16dot() : 0.0;
    printf("ops table: %s, threads %d; measured FMA peak %.1f GFLOP/s per core -> %.1f for %d threads",
           ops->name, nth, core, peak, nth);
    if (core_bd > 0) printf("; vdpbf16ps peak %.1f per core -> %.1f", core_bd, core_bd * nth);
    printf("\n");
    if (peak <= 0) peak = 1;
    const int attn_only = argc > 3 && !strcmp(argv[3], "attn");
    if (!attn_only) {
        bench_matmul(ops, ref, pool, reps, peak, core_bd * nth);
        bench_elementwise(ops, ref, reps);
    }
    for (int kt = 0; kt < 2; kt++) { // SmolLM2-135M shapes
        const int type = kt ? E2H_TYPE_F32 : E2H_TYPE_F16;
        bench_attention_prefill(ops, pool, reps, 9, 3, 64, 512, 0, type);
        bench_attention_prefill(ops, pool, reps * 20, 9, 3, 64, 1, 511, type);
    }
    bench_attention_prefill(ops, pool, reps, 32, 4, 64, 512, 0, E2H_TYPE_F16); // TinyLlama-like
    // a PRM step (bench/prm_bench.py: Qwen2-1.5B heads, a 40-token step over ~600 positions)
    bench_attention_prefill(ops, pool, reps * 4, 12, 2, 128, 40, 600, E2H_TYPE_F32);
    bench_attention(ops, pool, reps, 9, 3, 64, 40);  // SmolLM2-135M
    bench_attention(ops, pool, reps, 9, 3, 64, 256);
    bench_attention(ops, pool, reps, 32, 4, 64, 40); // TinyLlama-1.1B-like
    pool_free(pool);
    return 0;
}
