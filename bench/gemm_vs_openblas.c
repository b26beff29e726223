// bench/gemm_vs_openblas.c — prefill GEMM throughput: our batch-invariant float matmul
// (f32/bf16/f16 weights) next to OpenBLAS cblas_sgemm (f32) on the same shapes, 1 and 2 threads.
//   usage: gemm_vs_openblas [reps]      (run on a quiet machine; prints GFLOP/s)
// y (n_tok, n_out) = x (n_tok, n_in) · W(n_out, n_in)^T; flops = 2 * n_tok * n_in * n_out.
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/ops.h"
#include "kernels/pool.h"
#include "bench_util.h"

static void fill(float *x, int64_t n, unsigned seed) {
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 3;
    const e2h_ops *ops = ops_get("auto");
    printf("ops table: %s; OpenBLAS core: %s\n", ops->name, openblas_get_corename());
    const int64_t shapes[][3] = {{512, 576, 576}, {512, 2048, 2048}, {512, 2048, 5632}, {512, 5632, 2048}};
    const int types[] = {E2H_TYPE_F32, E2H_TYPE_BF16, E2H_TYPE_F16};
    printf("%-18s %3s %10s %10s %10s %10s %9s\n", "n_tok x n_in x n_out", "thr", "ours f32",
           "ours bf16", "ours f16", "sgemm", "max|d|");
    for (unsigned s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const int64_t nt = shapes[s][0], ni = shapes[s][1], no = shapes[s][2];
        const double gflop = 2.0 * nt * ni * no * 1e-9;
        float *x = malloc(sizeof(float) * nt * ni), *wf = malloc(sizeof(float) * no * ni);
        float *y = malloc(sizeof(float) * nt * no), *yb = malloc(sizeof(float) * nt * no);
        uint16_t *wh = malloc(2 * no * ni);
        void *scratch = malloc((size_t)ops_matmul_scratch_size(E2H_TYPE_BF16, nt, ni));
        fill(x, nt * ni, 1), fill(wf, no * ni, 2);
        for (int nth = 1; nth <= 2; nth++) {
            e2h_pool *pool = pool_init(nth);
            double gf[3];
            for (int ti = 0; ti < 3; ti++) {
                const void *w = wf;
                if (types[ti] != E2H_TYPE_F32) {
                    for (int64_t r = 0; r < no; r++)
                        ops->quantize_row(types[ti], wf + r * ni, wh + r * ni, ni);
                    w = wh;
                }
                double t = BEST_OF(reps, ops->matmul(pool, y, no, x, w, types[ti], nt, ni, no, scratch));
                gf[ti] = gflop / t;
            }
            ops->matmul(pool, y, no, x, wf, E2H_TYPE_F32, nt, ni, no, NULL);
            openblas_set_num_threads(nth);
            double tb = BEST_OF(reps, cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nt,
                                                  (int)no, (int)ni, 1.0f, x, (int)ni, wf, (int)ni,
                                                  0.0f, yb, (int)no));
            double md = 0;
            for (int64_t i = 0; i < nt * no; i++) md = fmax(md, fabs((double)y[i] - yb[i]));
            printf("%4ldx%5ldx%5ld   %3d %10.1f %10.1f %10.1f %10.1f %9.2e\n", (long)nt, (long)ni,
                   (long)no, nth, gf[0], gf[1], gf[2], gflop / tb, md);
            pool_free(pool);
        }
        free(x), free(wf), free(y), free(yb), free(wh), free(scratch);
    }
    printf("(GFLOP/s, best of %d; bench/kernels_float measures this machine's FMA peak)\n", reps);
    return 0;
}
