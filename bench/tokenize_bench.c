// bench/tokenize_bench.c — single-thread encode throughput of the e2h tokenizer over the
// MATH test set (problems and solutions). Run through bench/tokenize_bench.py, which also
// times Hugging Face `tokenizers` on the same texts in the same run.
//   tokenize_bench MODEL FILE.jsonl [repeats]   -> one JSON line on stdout
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../include/e2h.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: tokenize_bench MODEL FILE.jsonl [repeats]\n");
        return 2;
    }
    int repeats = argc > 3 ? atoi(argv[3]) : 3;
    char err[1024];
    e2h_tokenizer *t = NULL;
    if (e2h_tokenizer_load(argv[1], &t, err, sizeof err) != E2H_OK) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    FILE *f = fopen(argv[2], "r");
    if (!f) { fprintf(stderr, "cannot open %s\n", argv[2]); return 2; }
    size_t n_texts = 0, cap_texts = 1024, lcap = 0, bytes = 0;
    char **texts = malloc(cap_texts * sizeof *texts), *line = NULL;
    while (getline(&line, &lcap, f) > 0) {
        cJSON *j = cJSON_Parse(line);
        const char *keys[2] = {"problem", "solution"};
        for (int k = 0; j && k < 2; k++) {
            cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[k]);
            if (!cJSON_IsString(v)) continue;
            if (n_texts == cap_texts) texts = realloc(texts, (cap_texts *= 2) * sizeof *texts);
            texts[n_texts++] = strdup(v->valuestring);
            bytes += strlen(v->valuestring);
        }
        cJSON_Delete(j);
    }
    free(line);
    fclose(f);
    int32_t cap = 1 << 20, n = 0;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    double best = 1e30;
    long long tokens = 0;
    for (int r = 0; r < repeats; r++) {
        tokens = 0;
        double t0 = now();
        for (size_t i = 0; i < n_texts; i++) {
            e2h_tokenize(t, texts[i], strlen(texts[i]), 0, ids, cap, &n);
            tokens += n;
        }
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("{\"impl\": \"e2h\", \"texts\": %zu, \"bytes\": %zu, \"tokens\": %lld, \"seconds\": %.4f, "
           "\"tokens_per_s\": %.0f}\n",
           n_texts, bytes, tokens, best, (double)tokens / best);
    for (size_t i = 0; i < n_texts; i++) free(texts[i]);
    free(texts);
    free(ids);
    e2h_tokenizer_free(t);
    return 0;
}
