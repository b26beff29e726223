// bench/tree_samples.c — K samples of one prompt through the shared, paged KV cache, for
// choosing the KV block size and measuring prefix sharing (issue #5).
//
//   build/bench/tree_samples MODEL PROMPT_FILE [K=16] [N=64] [BLOCK=16] [KV_F16=0] [THREADS=1]
//
// Prints one JSON line: decode tokens/s over the K samples, KV bytes in use after sampling
// (blocks referenced by the root and its K children) and what K independent copies of
// prompt + sample would need.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../include/e2h.h"
#include "bench_util.h"

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    if (b) b[n] = 0;
    return b;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL PROMPT_FILE [K] [N] [BLOCK] [KV_F16] [THREADS]\n", argv[0]);
        return 2;
    }
    int k = argc > 3 ? atoi(argv[3]) : 16, n_new = argc > 4 ? atoi(argv[4]) : 64;
    e2h_engine_opts o;
    memset(&o, 0, sizeof o);
    o.block_size = argc > 5 ? atoi(argv[5]) : 16;
    o.kv_f16 = argc > 6 ? atoi(argv[6]) : 0;
    o.n_threads = argc > 7 ? atoi(argv[7]) : 1;
    if (k < 1 || k > 4096 || n_new < 1 || o.block_size < 1) {
        fprintf(stderr, "bad K / N / BLOCK\n");
        return 2;
    }
    char err[512];
    e2h_model *m = NULL;
    e2h_engine *e = NULL;
    char *text = read_text(argv[2]);
    if (!text) { fprintf(stderr, "%s: cannot read\n", argv[2]); return 2; }
    if (e2h_model_load(argv[1], NULL, &m, err, sizeof err) ||
        e2h_engine_init(m, &o, &e, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    const e2h_tokenizer *t = e2h_model_tokenizer(m);
    int32_t cap = (int32_t)strlen(text) + 16, n = 0;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)cap);
    e2h_seq *root = NULL, **kids = calloc((size_t)k, sizeof *kids);
    e2h_sampling sp = e2h_sampling_default();
    sp.temperature = 0.7f;
    e2h_stop stop = {n_new, NULL, 0, 1, 0};
    int rc = 1;
    if (!t || !ids || !kids || e2h_tokenize(t, text, strlen(text), 1, ids, cap, &n) || n > cap) {
        fprintf(stderr, "tokenizing failed\n");
        goto done;
    }
    if (e2h_seq_create(e, ids, n, &sp, &root) || e2h_seq_fork(e, root, k, kids)) goto fail;
    double t0 = now_s();
    if (e2h_seq_extend(e, kids, k, &stop)) goto fail;
    double dt = now_s() - t0;
    e2h_kv_stats ks;
    e2h_engine_get_kv_stats(e, &ks);
    size_t per_seq = ((size_t)(n + n_new) + (size_t)ks.block_size - 1) / (size_t)ks.block_size;
    printf("{\"k\": %d, \"n\": %d, \"prompt\": %d, \"block\": %d, \"kv_f16\": %d, \"threads\": %d, "
           "\"tok_s\": %.2f, \"kv_mib\": %.2f, \"indep_kv_mib\": %.2f}\n",
           k, n_new, n, ks.block_size, o.kv_f16, o.n_threads, (double)k * n_new / dt,
           (double)ks.blocks_used * (double)ks.block_bytes / 1048576.0,
           (double)k * (double)per_seq * (double)ks.block_bytes / 1048576.0);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "%s\n", e2h_engine_last_error(e));
done:
    for (int i = 0; kids && i < k; i++) e2h_seq_release(e, kids[i]);
    e2h_seq_release(e, root);
    free(kids);
    free(ids);
    free(text);
    e2h_engine_free(e);
    e2h_model_free(m);
    return rc;
}
