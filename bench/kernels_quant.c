// bench/kernels_quant.c — quantized matmul microbenchmark.
// For each weight type and shape: validates the chosen implementation against the ref on a
// few rows, then reports decode (n_tok = 1) time and GB/s of weights streamed, and prefill
// (n_tok = 16, 64, 512) GFLOP/s = 2*n_tok*n_in*n_out / t, with the pool at 1 and 2 threads.
//
// usage: kernels_quant [-i avx512|avx2|ref|r16|r16ref] [-t q4_0,q8_0,...] [-s 7b|small|smol|dram|all] [-p]
//                      [-r N] [-T 1,2] [-c] [-m|-m7b [-k TOKENS]]
//   -p also runs n_tok = 512 (slow with the ref). -r N: best of N timings (default 3).
//   -m / -m7b: the matmuls of one model step, every matrix distinct (they stream from DRAM);
//   -k N: N tokens per call (the step of N parallel samples; default 1 = decode).
//   -T: thread counts. -c: time with the calling thread's CPU clock (1 thread only: less
//   sensitive to a loaded machine, but blind to memory stalls caused by others).
//   -i r16: the AVX-512 kernel over weights repacked at load (kernels/quant_r16.h; q4_0,
//   q4_1, q8_0), validated against its scalar reference (r16ref).
//   -m: only the matmuls of one SmolLM2-135M decode step (AVX-512), see bench_model_decode.
//   -m7b: the same for a Llama-2-7B step (fused q|k|v and gate|up as in the engine; 3.7 GB in
//   q4_0, 7 GB in q8_0), for each weight type of -t that has the chosen kernel.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/ops.h"
#include "kernels/pool.h"
#include "kernels/quant.h"
#include "kernels/quant_r16.h"
#include "engine/util.h"
#include "bench_util.h"

typedef void (*qmm_fn)(e2h_pool *, float *, int64_t, const float *, const void *, int, int64_t,
                       int64_t, int64_t, void *);

static uint64_t rs_ = 88172645463325252ull;
static uint32_t rnd(void) {
    rs_ ^= rs_ << 13;
    rs_ ^= rs_ >> 7;
    rs_ ^= rs_ << 17;
    return (uint32_t)(rs_ >> 16);
}

// Random valid blocks: random quant bytes, small positive/negative f16 scales.
static void fill_weights(int type, uint8_t *w, size_t bytes) {
    for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t)rnd();
    const size_t bsz = kern_type_row_size(type, kern_quant_is_k(type) ? 256 : 32);
    for (size_t b = 0; b + bsz <= bytes; b += bsz) {
        uint16_t h = kern_q_f2h(((int)(rnd() % 2000) - 1000) * 1e-5f);
        uint16_t m = kern_q_f2h(((int)(rnd() % 2000) - 1000) * 1e-5f);
        if (type == E2H_TYPE_Q6_K) memcpy(w + b + 208, &h, 2);
        else memcpy(w + b, &h, 2);
        if (type == E2H_TYPE_Q4_1 || type == E2H_TYPE_Q5_1 || type == E2H_TYPE_Q4_K || type == E2H_TYPE_Q5_K)
            memcpy(w + b + 2, &m, 2);
    }
}

static int g_cpu_clock = 0, g_repeats = 3, g_r16 = 0;
static int g_model_tok = 1; // -k: tokens per call in -m / -m7b (K parallel samples)

// The r16 copy of w (freed), or w itself.
// -m / -m7b carve the repacked copies from one arena on huge pages, as the engine does
// (engine/model_repack.c); NULL: each its own allocation.
static uint8_t *g_arena;
static size_t g_arena_used, g_arena_cap;

static uint8_t *maybe_repack(uint8_t *w, int type, int64_t n_in, int64_t n_out) {
    if (!g_r16) return w;
    const size_t sz = (size_t)kern_r16_size(type, n_in, n_out);
    uint8_t *wp;
    if (g_arena && g_arena_used + sz <= g_arena_cap) wp = g_arena + g_arena_used, g_arena_used += (sz + 63) / 64 * 64;
    else wp = util_alloc_large(sz); // as the engine does
    kern_r16_repack(NULL, type, w, n_in, n_out, wp);
    free(w);
    return wp;
}

static double clock_s(void) {
    if (!g_cpu_clock) return now_s();
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Best of g_repeats averages over >= min_time each.
static double time_call(qmm_fn fn, e2h_pool *pool, float *y, const float *x, const uint8_t *w,
                        int type, int64_t n_tok, int64_t n_in, int64_t n_out, void *scratch,
                        double min_time) {
    fn(pool, y, n_out, x, w, type, n_tok, n_in, n_out, scratch); // warm up
    double best = 1e30;
    for (int k = 0; k < g_repeats; k++) {
        int reps = 0;
        double t0 = clock_s(), t;
        do {
            fn(pool, y, n_out, x, w, type, n_tok, n_in, n_out, scratch);
            reps++;
            t = clock_s() - t0;
        } while (t < min_time);
        if (t / reps < best) best = t / reps;
    }
    return best;
}

// The matmuls of one decode step of a model, each matrix with its own weights, so that the
// whole set streams from DRAM as in the model (nothing is re-read from L3 as it is when one
// matrix is timed in a loop). Prints ms per token and GB/s of weights.
typedef struct {
    const char *name;
    int n_layer, n_mat, wtype, out_type;
    int64_t shp[7][2]; // per layer (n_out, n_in)
    int64_t out_rows, out_in;
} decode_model;

// SmolLM2-135M: Q4_1 q,k,v,o,gate,up,down and the tied Q8_0 49152x576 output (96 MB).
static const decode_model smollm2_model = {
    "smollm2-135m", 30, 7, E2H_TYPE_Q4_1, E2H_TYPE_Q8_0,
    {{576, 576}, {192, 576}, {192, 576}, {576, 576}, {1536, 576}, {1536, 576}, {576, 1536}}, 49152, 576};
// Llama-2-7B with the engine's fused matrices (q|k|v, gate|up): 3.7 GB in q4_0.
static const decode_model llama7b_model = {
    "llama2-7b", 32, 4, E2H_TYPE_Q4_0, E2H_TYPE_Q4_0,
    {{12288, 4096}, {4096, 4096}, {22016, 4096}, {4096, 11008}}, 32000, 4096};

static void bench_model_decode(const decode_model *md, int wtype, const char *tname, e2h_pool *pool, int nthr) {
    enum { MAX_LAYER = 32, MAX_MAT = 7 };
    uint8_t *w[MAX_LAYER][MAX_MAT];
    size_t total = 0, cap = 0;
    for (int m = 0; m < md->n_mat && g_r16; m++)
        cap += md->n_layer * (((size_t)kern_r16_size(wtype, md->shp[m][1], md->shp[m][0]) + 63) / 64 * 64);
    if (g_r16) cap += ((size_t)kern_r16_size(md->out_type, md->out_in, md->out_rows) + 63) / 64 * 64;
    g_arena = cap ? util_alloc_large(cap) : NULL, g_arena_cap = g_arena ? cap : 0, g_arena_used = 0;
    for (int l = 0; l < md->n_layer; l++)
        for (int m = 0; m < md->n_mat; m++) {
            const size_t bytes = kern_type_row_size(wtype, md->shp[m][1]) * (size_t)md->shp[m][0];
            w[l][m] = aligned_alloc(64, (bytes + 63) / 64 * 64);
            fill_weights(wtype, w[l][m], bytes);
            w[l][m] = maybe_repack(w[l][m], wtype, md->shp[m][1], md->shp[m][0]);
            total += bytes;
        }
    const size_t obytes = kern_type_row_size(md->out_type, md->out_in) * (size_t)md->out_rows;
    uint8_t *wo = aligned_alloc(64, (obytes + 63) / 64 * 64);
    fill_weights(md->out_type, wo, obytes);
    wo = maybe_repack(wo, md->out_type, md->out_in, md->out_rows);
    qmm_fn fn = g_r16 ? kern_r16_matmul_avx512 : kern_qmatmul_avx512;
    total += obytes;
    const int64_t nt = g_model_tok; // tokens per call: 1 = decode, K = K parallel samples' step
    float *x = malloc((size_t)nt * 11008 * 4), *y = malloc((size_t)nt * 49152 * 4);
    for (int64_t i = 0; i < nt * 11008; i++) x[i] = ((int)(rnd() % 2001) - 1000) * 1e-3f;
    // scratch for nt tokens of the widest input (11008) of either kernel family and type
    int64_t ss = 65536;
    const int types[2] = {wtype, md->out_type};
    for (int i = 0; i < 2; i++) {
        const int64_t a = kern_qmatmul_scratch_size(types[i], nt, 11008), r = kern_r16_scratch_size(types[i], nt, 11008);
        ss = a > ss ? a : ss;
        ss = r > ss ? r : ss;
    }
    void *scratch = aligned_alloc(64, (size_t)(ss + 63) / 64 * 64);
    double best = 1e30;
    for (int rep = 0; rep < 2 + g_repeats; rep++) {
        const double t0 = clock_s();
        for (int l = 0; l < md->n_layer; l++)
            for (int m = 0; m < md->n_mat; m++)
                fn(pool, y, md->shp[m][0], x, w[l][m], wtype, nt, md->shp[m][1], md->shp[m][0], scratch);
        fn(pool, y, md->out_rows, x, wo, md->out_type, nt, md->out_in, md->out_rows, scratch);
        const double t = clock_s() - t0;
        if (rep >= 2 && t < best) best = t;
    }
    printf("%s %s decode matmuls (%d calls, %.1f MB), %d thr, %ld tokens: %.3f ms/step = %.2f tok/s, %.2f GB/s\n",
           md->name, tname, md->n_layer * md->n_mat + 1, total * 1e-6, nthr, (long)nt, best * 1e3,
           nt / best, total / best * 1e-9);
    if (g_arena) {
        free(g_arena);
        g_arena = NULL, g_arena_cap = 0;
    } else {
        for (int l = 0; l < md->n_layer; l++)
            for (int m = 0; m < md->n_mat; m++) free(w[l][m]);
        free(wo);
    }
    free(x), free(y), free(scratch);
}

int main(int argc, char **argv) {
    const char *impl = "avx512", *types_arg = "q4_0,q4_1,q8_0,q4_k,q5_k,q6_k,q5_0,q5_1", *shapes_arg = "all";
    const char *threads_arg = "1,2";
    int prefill512 = 0, smollm2 = 0, llama7b = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-i") && i + 1 < argc) impl = argv[++i];
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) types_arg = argv[++i];
        else if (!strcmp(argv[i], "-s") && i + 1 < argc) shapes_arg = argv[++i];
        else if (!strcmp(argv[i], "-p")) prefill512 = 1;
        else if (!strcmp(argv[i], "-c")) g_cpu_clock = 1;
        else if (!strcmp(argv[i], "-m")) smollm2 = 1;
        else if (!strcmp(argv[i], "-m7b")) llama7b = 1;
        else if (!strcmp(argv[i], "-k") && i + 1 < argc) g_model_tok = atoi(argv[++i]) > 0 && atoi(argv[i]) <= 64 ? atoi(argv[i]) : 1;
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) g_repeats = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 1;
        else if (!strcmp(argv[i], "-T") && i + 1 < argc) threads_arg = argv[++i];
        else {
            fprintf(stderr, "usage: %s [-i avx512|avx2|ref] [-t q4_0,...] [-s 7b|small|smol|dram|all] [-p] [-r N] [-T 1,2] [-c] [-m|-m7b [-k TOKENS]]\n", argv[0]);
            return 2;
        }
    }
    const int r16 = !strncmp(impl, "r16", 3);
    g_r16 = r16;
    qmm_fn fn = !strcmp(impl, "ref") ? kern_qmatmul_ref : !strcmp(impl, "avx2") ? kern_qmatmul_avx2 : kern_qmatmul_avx512;
    qmm_fn fn_ref = kern_qmatmul_ref;
    if (r16) {
        fn = !strcmp(impl, "r16ref") ? kern_r16_matmul_ref : kern_r16_matmul_avx512;
        fn_ref = kern_r16_matmul_ref;
    }
    if (((fn == kern_qmatmul_avx512 || fn == kern_r16_matmul_avx512) && !__builtin_cpu_supports("avx512vnni")) ||
        (fn == kern_qmatmul_avx2 && !__builtin_cpu_supports("avx2"))) {
        fprintf(stderr, "this CPU cannot run %s\n", impl);
        return 1;
    }
    static const struct { const char *name; int type; } all_types[] = {
        {"q4_0", E2H_TYPE_Q4_0}, {"q4_1", E2H_TYPE_Q4_1}, {"q5_0", E2H_TYPE_Q5_0}, {"q5_1", E2H_TYPE_Q5_1},
        {"q8_0", E2H_TYPE_Q8_0}, {"q4_k", E2H_TYPE_Q4_K}, {"q5_k", E2H_TYPE_Q5_K}, {"q6_k", E2H_TYPE_Q6_K}};
    static const struct { const char *tag; int64_t n_out, n_in; } shapes[] = {
        {"7b", 4096, 4096}, {"7b", 11008, 4096}, {"small", 576, 1536}, {"small", 1536, 576},
        {"dram", 32000, 4096}, {"smol", 576, 576}, {"smol", 192, 576}, {"smol", 1536, 576}, {"smol", 576, 1536}};
    e2h_pool *pools[2] = {pool_init(1), pool_init(2)};
    const int use_thr[2] = {strchr(threads_arg, '1') != NULL, strchr(threads_arg, '2') != NULL};
    if (smollm2) { // AVX-512 only: the model's matmuls, then exit
        if (!__builtin_cpu_supports("avx512vnni")) return 1;
        for (int p = 0; p < 2; p++)
            if (use_thr[p]) bench_model_decode(&smollm2_model, E2H_TYPE_Q4_1, "q4_1", pools[p], p + 1);
        pool_free(pools[0]);
        pool_free(pools[1]);
        return 0;
    }
    if (llama7b) { // AVX-512 only: a 7B step's matmuls per weight type, then exit
        if (!__builtin_cpu_supports("avx512vnni")) return 1;
        for (size_t ti = 0; ti < sizeof all_types / sizeof all_types[0]; ti++) {
            if (!strstr(types_arg, all_types[ti].name) || (r16 && !kern_r16_supported(all_types[ti].type))) continue;
            decode_model md = llama7b_model;
            md.wtype = md.out_type = all_types[ti].type;
            for (int p = 0; p < 2; p++)
                if (use_thr[p]) bench_model_decode(&md, md.wtype, all_types[ti].name, pools[p], p + 1);
        }
        pool_free(pools[0]);
        pool_free(pools[1]);
        return 0;
    }
    printf("impl %s; decode GB/s = weight bytes / time; prefill GFLOP/s = 2*n_tok*n_in*n_out / time\n", impl);
    printf("%-5s %6s %6s %3s %10s %8s %9s %10s %9s %10s %9s\n", "type", "n_out", "n_in", "thr", "dec_us", "GB/s",
           "p16 GF/s", "p64_ms", "GFLOP/s", "p512_ms", "GFLOP/s");
    for (size_t ti = 0; ti < sizeof all_types / sizeof all_types[0]; ti++) {
        if (!strstr(types_arg, all_types[ti].name)) continue;
        const int type = all_types[ti].type;
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            if (!strcmp(shapes_arg, "all") ? (!strcmp(shapes[si].tag, "smol") || !strcmp(shapes[si].tag, "dram")) : strcmp(shapes_arg, shapes[si].tag) != 0) continue;
            const int64_t n_out = shapes[si].n_out, n_in = shapes[si].n_in, max_tok = prefill512 ? 512 : 64;
            if (kern_qmatmul_scratch_size(type, 1, n_in) < 0) continue; // n_in not a block multiple
            if (r16 && !kern_r16_supported(type)) continue;
            const size_t rs = kern_type_row_size(type, n_in), wbytes = rs * (size_t)n_out;
            uint8_t *w = aligned_alloc(64, (wbytes + 63) / 64 * 64);
            float *x = malloc((size_t)(max_tok * n_in) * 4), *y = malloc((size_t)(max_tok * n_out) * 4);
            float *yr = malloc((size_t)(3 * 8) * 4);
            const int64_t ss = r16 ? kern_r16_scratch_size(type, max_tok, n_in) : kern_qmatmul_scratch_size(type, max_tok, n_in);
            void *scratch = aligned_alloc(64, (size_t)(ss + 63) / 64 * 64);
            fill_weights(type, w, wbytes);
            if (r16) { // time the repacked copy (same bytes streamed per token)
                uint8_t *wp = util_alloc_large(kern_r16_size(type, n_in, n_out)); // as the engine does
                kern_r16_repack(pools[1], type, w, n_in, n_out, wp);
                free(w);
                w = wp;
            }
            for (int64_t i = 0; i < max_tok * n_in; i++) x[i] = ((int)(rnd() % 2001) - 1000) * 1e-3f;
            // validate: first 8 rows, 3 tokens, against the ref (bit-exact expected)
            fn(pools[1], y, 8, x, w, type, 3, n_in, 8, scratch);
            fn_ref(pools[1], yr, 8, x, w, type, 3, n_in, 8, scratch);
            if (memcmp(y, yr, 24 * 4)) printf("!! %s %s differs from ref\n", impl, all_types[ti].name);
            for (int p = 0; p < 2; p++) {
                if (!use_thr[p]) continue;
                double td = time_call(fn, pools[p], y, x, w, type, 1, n_in, n_out, scratch, 0.2);
                double t16 = time_call(fn, pools[p], y, x, w, type, 16, n_in, n_out, scratch, 0.2);
                double t64 = time_call(fn, pools[p], y, x, w, type, 64, n_in, n_out, scratch, 0.3);
                double t512 = prefill512 ? time_call(fn, pools[p], y, x, w, type, 512, n_in, n_out, scratch, 0.3) : 0;
                const double fl = 2.0 * n_in * n_out;
                printf("%-5s %6ld %6ld %3d %10.1f %8.2f %9.1f %10.3f %9.1f %10.3f %9.1f\n", all_types[ti].name,
                       (long)n_out, (long)n_in, p + 1, td * 1e6, wbytes / td * 1e-9, 16 * fl / t16 * 1e-9,
                       t64 * 1e3, 64 * fl / t64 * 1e-9,
                       t512 * 1e3, prefill512 ? 512 * fl / t512 * 1e-9 : 0.0);
                fflush(stdout);
            }
            free(w), free(x), free(y), free(yr), free(scratch);
        }
    }
    pool_free(pools[0]);
    pool_free(pools[1]);
    return 0;
}
