// tests/test_model.c — whole-model correctness against Hugging Face transformers, and bad
// input handling of the safetensors/config.json loader.
//
// Fixtures (tests/fixtures/models/*, made by tools/make_fixtures.py with transformers) hold a
// tiny random model of each architecture, its logits for a fixed sequence and its greedy
// continuation. Bounds: f32 weights max |logit diff| <= 1e-4. bf16 and f16 weights: the
// reference was computed in f32 from the rounded weights, and we convert bf16/f16 exactly to
// f32, so the same arithmetic-order bound applies; we check 1e-4 there too (measured ~1e-5).
// With the avx512bf16 kernels (auto on CPUs with AVX512_BF16) bf16 weights multiply
// activations rounded to bf16, which moves logits by up to ~0.05 here (row median 0.03). Those
// runs are checked against logits_bf16act.npy (transformers with every Linear's input rounded
// to bf16: the same arithmetic), and the f32-arithmetic avx512 table against logits.npy at 1e-4.
// Against logits_bf16act.npy not every row can meet 1e-4: where a value before rounding lies
// within the ~1e-6 f32 noise of a bf16 rounding midpoint, e2h and torch round it to different
// neighbours (2^-8 apart), and through K/V such a flip reaches every later row. Measured: rows
// within 1e-4 (typically 5e-7): llama2_bf16 65 of 67, qwen2_bf16 45 of 73 (flips from token 41 on);
// max 8e-4 and 0.019. Checked: at least half the rows within 1e-4 and every logit within 0.1
// (logits.npy itself has 0 rows within 1e-4 of logits_bf16act.npy, so the check can fail).
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../include/e2h.h"
#include "engine/util.h"
#include "kernels/ops.h"
#include "harness.h"

#define FIX_DIR "tests/fixtures/models"

static int write_all(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, len, f);
    return fclose(f) || w != len ? -1 : 0;
}

static int32_t *read_ids(const char *path, const char *key, int *n) {
    char *t = th_read_file(path, NULL);
    cJSON *j = t ? cJSON_Parse(t) : NULL;
    free(t);
    cJSON *arr = j ? cJSON_GetObjectItem(j, key) : NULL;
    if (!cJSON_IsArray(arr)) { cJSON_Delete(j); return NULL; }
    *n = cJSON_GetArraySize(arr);
    int32_t *ids = malloc((size_t)*n * sizeof *ids);
    for (int i = 0; i < *n; i++) ids[i] = (int32_t)cJSON_GetArrayItem(arr, i)->valuedouble;
    cJSON_Delete(j);
    return ids;
}

static int list_fixtures(char names[][64], int max) {
    DIR *d = opendir(FIX_DIR);
    if (!d) return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < max) {
        char p[512];
        snprintf(p, sizeof p, FIX_DIR "/%s/config.json", de->d_name);
        if (access(p, F_OK) == 0) snprintf(names[n++], 64, "%s", de->d_name);
    }
    closedir(d);
    // stable order
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[i], names[j]) > 0) {
                char t[64];
                memcpy(t, names[i], 64); memcpy(names[i], names[j], 64); memcpy(names[j], t, 64);
            }
    return n;
}

// Logits of the fixture's token sequence vs transformers', with the given kernels/threads.
// min_rows: fraction of rows whose max |diff| must be <= tol; the other rows only <= 0.1.
static void check_logits_file(const char *name, const char *kernels, int threads, double tol,
                              const char *logits_file, double min_rows) {
    char dir[256], p[512];
    snprintf(dir, sizeof dir, FIX_DIR "/%s", name);
    int n, rows, cols;
    snprintf(p, sizeof p, "%s/tokens.json", dir);
    int32_t *ids = read_ids(p, "ids", &n);
    snprintf(p, sizeof p, "%s/%s", dir, logits_file);
    float *ref = th_read_npy(p, &rows, &cols);
    CHECKF(ids && ref && rows == n, "%s: fixture files unreadable", name);
    if (!ids || !ref || rows != n) { free(ids); free(ref); return; }
    char err[1024];
    e2h_model *m = NULL;
    e2h_engine *e = NULL;
    e2h_status st = e2h_model_load(dir, NULL, &m, err, sizeof err);
    CHECKF(st == E2H_OK, "%s: load: %s", name, err);
    if (st) { free(ids); free(ref); return; }
    e2h_engine_opts eo = {0};
    eo.n_threads = threads;
    eo.kernels = kernels;
    eo.max_batch_tokens = 40; // forces chunked prefill over the cache for >= 64 tokens
    st = e2h_engine_init(m, &eo, &e, err, sizeof err);
    CHECKF(st == E2H_OK, "%s: engine: %s", name, err);
    float *out = malloc((size_t)n * cols * sizeof *out);
    if (!st) {
        st = e2h_eval_logits(e, ids, n, out);
        CHECKF(st == E2H_OK, "%s: eval: %s", name, e2h_engine_last_error(e));
        double worst = 0;
        int at = -1;
        for (size_t i = 0; !st && i < (size_t)n * cols; i++) {
            double d = fabs((double)out[i] - ref[i]);
            if (d > worst || isnan(d)) { worst = isnan(d) ? INFINITY : d; at = (int)i; }
        }
        int rows_ok = 0;
        for (int r = 0; !st && r < n; r++) {
            double mx = 0;
            for (int c = 0; c < cols; c++) {
                double d = fabs((double)out[(size_t)r * cols + c] - ref[(size_t)r * cols + c]);
                mx = d > mx || isnan(d) ? (isnan(d) ? INFINITY : d) : mx;
            }
            rows_ok += mx <= tol;
        }
        const double bound = min_rows >= 1.0 ? tol : 0.1;
        CHECKF(worst <= bound && rows_ok >= min_rows * n,
               "%s [%s, %d threads]: max |logit diff| %.3g at (%d, %d) (bound %.1g), %d of %d rows "
               "within %.1g", name, kernels, threads, worst, at / cols, at % cols, bound, rows_ok, n, tol);
        printf("  %-20s %-10s t=%d max|diff| = %.2e, %d/%d rows <= %.0e (%s)\n", name, kernels,
               threads, worst, rows_ok, n, tol, logits_file);
    }
    free(out);
    free(ids);
    free(ref);
    e2h_engine_free(e);
    e2h_model_free(m);
}

static void check_logits(const char *name, const char *kernels, int threads, double tol) {
    check_logits_file(name, kernels, threads, tol, "logits.npy", 1.0);
}

static void check_greedy(const char *name, int threads) {
    char dir[256], p[512];
    snprintf(dir, sizeof dir, FIX_DIR "/%s", name);
    snprintf(p, sizeof p, "%s/greedy.json", dir);
    int np, nc;
    int32_t *prompt = read_ids(p, "prompt", &np), *cont = read_ids(p, "continuation", &nc);
    CHECKF(prompt && cont, "%s: greedy.json unreadable", name);
    char err[1024];
    e2h_model *m = NULL;
    e2h_engine *e = NULL;
    if (prompt && cont && e2h_model_load(dir, NULL, &m, err, sizeof err) == E2H_OK) {
        e2h_engine_opts eo = {0};
        eo.n_threads = threads;
        if (e2h_engine_init(m, &eo, &e, err, sizeof err) == E2H_OK) {
            e2h_seq *s = NULL;
            e2h_sampling sp = e2h_sampling_default();
            e2h_stop stop = {nc, NULL, 0, 1, 0};
            e2h_status st = e2h_seq_create(e, prompt, np, &sp, &s);
            if (!st) st = e2h_seq_extend(e, &s, 1, &stop);
            CHECKF(st == E2H_OK, "%s: generate: %s", name, e2h_engine_last_error(e));
            if (!st) {
                const int32_t *t = e2h_seq_tokens(s);
                CHECKF(e2h_seq_len(s) == np + nc, "%s: %d tokens generated, want %d", name,
                       e2h_seq_len(s) - np, nc);
                int first = -1;
                for (int i = 0; i < nc && i + np < e2h_seq_len(s); i++)
                    if (t[np + i] != cont[i] && first < 0) first = i;
                CHECKF(first < 0, "%s: greedy differs from transformers at step %d", name, first);
            }
            e2h_seq_release(e, s);
        } else {
            CHECKF(0, "%s: %s", name, err);
        }
    } else {
        CHECKF(0, "%s: load failed: %s", name, err);
    }
    e2h_engine_free(e);
    e2h_model_free(m);
    free(prompt);
    free(cont);
}

static char fixtures[32][64];
static int n_fixtures;

TEST(fixtures_present) { CHECKF(n_fixtures >= 7, "found %d fixtures in " FIX_DIR, n_fixtures); }

TEST(logits_match_transformers) {
    // avx512bf16 and amx (avx512bf16 + int8 tiles) compute bf16 weights with vdpbf16ps
    const int bf16dot = ops_get("auto") == ops_get("avx512bf16") || !strcmp(ops_get("auto")->name, "amx");
    for (int i = 0; i < n_fixtures; i++) {
        char p[512];
        struct stat st;
        snprintf(p, sizeof p, FIX_DIR "/%s/logits_bf16act.npy", fixtures[i]);
        if (bf16dot && stat(p, &st) == 0) { // bf16 weights: bf16 activations under auto
            check_logits_file(fixtures[i], "auto", 2, 1e-4, "logits_bf16act.npy", 0.5);
            check_logits(fixtures[i], "avx512", 2, 1e-4);
        } else {
            check_logits(fixtures[i], "auto", 2, 1e-4);
        }
        check_logits(fixtures[i], "ref", 1, 1e-4);
    }

}

TEST(greedy_matches_transformers) {
    for (int i = 0; i < n_fixtures; i++) check_greedy(fixtures[i], 1 + i % 2);
}

// The same logits bit for bit whatever the thread count (determinism contract).
TEST(logits_independent_of_threads) {
    char dir[256], err[1024];
    snprintf(dir, sizeof dir, FIX_DIR "/llama2_bf16");
    e2h_model *m = NULL;
    if (e2h_model_load(dir, NULL, &m, err, sizeof err)) { CHECKF(0, "%s", err); return; }
    int32_t ids[50];
    for (int i = 0; i < 50; i++) ids[i] = (i * 37 + 11) % 300;
    float *a = malloc(50 * 310 * sizeof(float)), *b = malloc(50 * 310 * sizeof(float));
    for (int t = 1; t <= 2; t++) {
        e2h_engine *e = NULL;
        e2h_engine_opts eo = {0};
        eo.n_threads = t;
        CHECK(e2h_engine_init(m, &eo, &e, err, sizeof err) == E2H_OK);
        if (e) CHECK(e2h_eval_logits(e, ids, 50, t == 1 ? a : b) == E2H_OK);
        e2h_engine_free(e);
    }
    CHECK(memcmp(a, b, 50 * 310 * sizeof(float)) == 0);
    free(a);
    free(b);
    e2h_model_free(m);
}

// Sampled tokens with a seed are the same whatever the thread count, and differ by seed.
static void sample_run(e2h_model *m, int threads, uint64_t seed, int32_t *out, int n) {
    char err[256];
    e2h_engine *e = NULL;
    e2h_engine_opts eo = {0};
    eo.n_threads = threads;
    CHECK(e2h_engine_init(m, &eo, &e, err, sizeof err) == E2H_OK);
    if (!e) return;
    int32_t prompt[5] = {1, 17, 42, 99, 7};
    e2h_sampling sp = {0.9f, 40, 0.95f, 0.02f, seed};
    e2h_stop stop = {n, NULL, 0, 1, 0};
    e2h_seq *s = NULL;
    CHECK(e2h_seq_create(e, prompt, 5, &sp, &s) == E2H_OK);
    if (s && e2h_seq_extend(e, &s, 1, &stop) == E2H_OK && e2h_seq_len(s) == 5 + n)
        memcpy(out, e2h_seq_tokens(s) + 5, (size_t)n * sizeof *out);
    const float *lp = e2h_seq_logprobs(s);
    for (int i = 5; s && i < e2h_seq_len(s); i++) CHECK(lp[i] <= 0 && lp[i] > -100);
    e2h_seq_release(e, s);
    e2h_engine_free(e);
}

TEST(sampling_reproducible_across_threads) {
    char err[256];
    e2h_model *m = NULL;
    if (e2h_model_load(FIX_DIR "/qwen2_bf16", NULL, &m, err, sizeof err)) { CHECKF(0, "%s", err); return; }
    int32_t a[48] = {0}, b[48] = {1}, c[48] = {2};
    sample_run(m, 1, 7, a, 48);
    sample_run(m, 2, 7, b, 48);
    sample_run(m, 2, 8, c, 48);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);
    e2h_model_free(m);
}

// ------------------------------------------------------------------ bad input

static char tmpdir[256];

// Copies the llama2_f32 fixture into tmpdir/name and applies edits; returns the dir.
static const char *make_variant(const char *name, const char *cfg_from, const char *cfg_to,
                                void (*edit_st)(const char *path)) {
    static char dir[512];
    char p[600], src[600];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    mkdir(dir, 0755);
    snprintf(src, sizeof src, FIX_DIR "/llama2_f32/config.json");
    char *cfg = th_read_file(src, NULL);
    if (cfg_from) {
        char *at = strstr(cfg, cfg_from);
        if (at) {
            size_t a = (size_t)(at - cfg), lf = strlen(cfg_from), lt = strlen(cfg_to);
            char *n = malloc(strlen(cfg) + lt + 1);
            memcpy(n, cfg, a);
            memcpy(n + a, cfg_to, lt);
            strcpy(n + a + lt, at + lf);
            free(cfg);
            cfg = n;
        }
    }
    snprintf(p, sizeof p, "%s/config.json", dir);
    write_all(p, cfg, strlen(cfg));
    free(cfg);
    size_t len = 0;
    snprintf(src, sizeof src, FIX_DIR "/llama2_f32/model.safetensors");
    char *st = th_read_file(src, &len);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    write_all(p, st, len);
    free(st);
    if (edit_st) edit_st(p);
    return dir;
}

static void expect_error(const char *dir, e2h_status want, const char *must1, const char *must2) {
    char err[1024] = "";
    e2h_model *m = NULL;
    e2h_status st = e2h_model_load(dir, NULL, &m, err, sizeof err);
    CHECKF(st == want, "%s: got %s (%s), want %s", dir, e2h_status_name(st), err,
           e2h_status_name(want));
    CHECKF(m == NULL, "model returned on error");
    CHECKF(!must1 || strstr(err, must1), "message '%s' lacks '%s'", err, must1);
    CHECKF(!must2 || strstr(err, must2), "message '%s' lacks '%s'", err, must2);
    e2h_model_free(m);
}

// Rewrites a safetensors header through a text substitution.
static const char *st_from, *st_to;
static void edit_header(const char *path) {
    size_t len = 0;
    char *b = th_read_file(path, &len);
    uint64_t hl;
    memcpy(&hl, b, 8);
    char *h = malloc(hl + 1);
    memcpy(h, b + 8, hl);
    h[hl] = 0;
    char *at = strstr(h, st_from);
    if (at) {
        size_t lf = strlen(st_from), lt = strlen(st_to), nl = hl - lf + lt;
        char *nb = malloc(8 + nl + (len - 8 - hl));
        memcpy(nb, &nl, 8);
        memcpy(nb + 8, h, (size_t)(at - h));
        memcpy(nb + 8 + (at - h), st_to, lt);
        memcpy(nb + 8 + (at - h) + lt, at + lf, hl - (size_t)(at - h) - lf);
        memcpy(nb + 8 + nl, b + 8 + hl, len - 8 - hl);
        write_all(path, nb, 8 + nl + (len - 8 - hl));
        free(nb);
    }
    free(h);
    free(b);
}
static void edit_truncate(const char *path) {
    size_t len = 0;
    char *b = th_read_file(path, &len);
    if (b && len > 100) write_all(path, b, len - 100);
    free(b);
}
static void edit_header_len(const char *path) {
    size_t len = 0;
    char *b = th_read_file(path, &len);
    uint64_t hl = (uint64_t)len; // runs past the end
    memcpy(b, &hl, 8);
    write_all(path, b, len);
    free(b);
}

TEST(bad_config_missing_field) {
    expect_error(make_variant("nohidden", "\"hidden_size\"", "\"hidden_sizeX\"", NULL),
                 E2H_ERR_FORMAT, "config.json", "hidden_size");
}
TEST(bad_config_ill_typed) {
    expect_error(make_variant("badtype", "\"num_hidden_layers\": 2", "\"num_hidden_layers\": \"two\"", NULL),
                 E2H_ERR_FORMAT, "config.json", "num_hidden_layers");
}
TEST(bad_config_not_json) {
    expect_error(make_variant("notjson", "{", "{{", NULL), E2H_ERR_FORMAT, "config.json", NULL);
}
TEST(unsupported_architecture) {
    expect_error(make_variant("arch", "LlamaForCausalLM", "GPTNeoXForCausalLM", NULL),
                 E2H_ERR_UNSUPPORTED, "config.json", "GPTNeoXForCausalLM");
}
TEST(unsupported_rope_scaling) {
    expect_error(make_variant("rope", "\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 2.0}", NULL),
                 E2H_ERR_UNSUPPORTED, "config.json", "yarn");
}
TEST(tensor_missing) {
    st_from = "model.layers.1.mlp.up_proj.weight";
    st_to = "model.layers.1.mlp.up_projX.weight";
    expect_error(make_variant("missing", NULL, NULL, edit_header), E2H_ERR_SHAPE,
                 "model.layers.1.mlp.up_proj.weight", "missing");
}
TEST(tensor_wrong_shape) {
    expect_error(make_variant("shape", "\"intermediate_size\": 200", "\"intermediate_size\": 201", NULL),
                 E2H_ERR_SHAPE, "model.safetensors", "mlp.gate_proj.weight");
}
TEST(header_past_end_of_file) {
    expect_error(make_variant("hdr", NULL, NULL, edit_header_len), E2H_ERR_FORMAT,
                 "model.safetensors", "header length");
}
TEST(truncated_data) {
    expect_error(make_variant("trunc", NULL, NULL, edit_truncate), E2H_ERR_FORMAT,
                 "model.safetensors", "truncated");
}
TEST(unknown_dtype) {
    st_from = "\"F32\"";
    st_to = "\"F64\"";
    expect_error(make_variant("dtype", NULL, NULL, edit_header), E2H_ERR_UNSUPPORTED,
                 "model.safetensors", "F64");
}
// JSON numbers that become integers are range-checked before conversion (fuzzing found an
// offset of 2^64 wrapping to 0 and pointing the tensor before the mapping).
TEST(data_offsets_out_of_range) {
    const char *bad[] = {"[18446744073709551616, 18446744073709641000]", "[0, 1e300]",
                         "[-1, 89279]", "[0.5, 89280]", "[0, 89280.25]", "[0, \"89280\"]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st_from = "[0,89280]";
        st_to = bad[i];
        char name[32];
        snprintf(name, sizeof name, "offs%zu", i);
        expect_error(make_variant(name, NULL, NULL, edit_header), E2H_ERR_FORMAT,
                     "model.safetensors", "data_offsets");
    }
    st_from = "\"shape\":[310,72]";
    st_to = "\"shape\":[1e30,72]";
    expect_error(make_variant("shape_huge", NULL, NULL, edit_header), E2H_ERR_FORMAT, "model.safetensors", "shape");
}
TEST(config_numbers_out_of_range) {
    expect_error(make_variant("eos_huge", "\"eos_token_id\": null", "\"eos_token_id\": 1e20", NULL),
                 E2H_ERR_FORMAT, "config.json", "eos_token_id");
    expect_error(make_variant("eos_neg", "\"eos_token_id\": null", "\"eos_token_id\": [2, -3]", NULL),
                 E2H_ERR_FORMAT, "config.json", "eos_token_id");
    expect_error(make_variant("sw_huge", "\"eos_token_id\": null", "\"eos_token_id\": null, \"sliding_window\": 1e19", NULL),
                 E2H_ERR_FORMAT, "config.json", "sliding_window");
    expect_error(make_variant("layers_huge", "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1e300", NULL),
                 E2H_ERR_FORMAT, "config.json", "num_hidden_layers");
}
TEST(missing_directory) {
    expect_error("/nonexistent/e2h-model", E2H_ERR_IO, "/nonexistent/e2h-model", NULL);
}
TEST(prompt_longer_than_context) {
    const char *dir = make_variant("ctx", "\"max_position_embeddings\": 256", "\"max_position_embeddings\": 20", NULL);
    char err[1024];
    e2h_model *m = NULL;
    e2h_engine *e = NULL;
    CHECK(e2h_model_load(dir, NULL, &m, err, sizeof err) == E2H_OK);
    if (!m) return;
    CHECK(e2h_engine_init(m, NULL, &e, err, sizeof err) == E2H_OK);
    int32_t ids[21] = {0};
    e2h_seq *s = NULL;
    CHECK(e2h_seq_create(e, ids, 21, NULL, &s) == E2H_ERR_CONTEXT);
    CHECK(s == NULL);
    CHECKF(strstr(e2h_engine_last_error(e), "context"), "%s", e2h_engine_last_error(e));
    float *lg = malloc(21 * 310 * sizeof(float));
    CHECK(e2h_eval_logits(e, ids, 21, lg) == E2H_ERR_CONTEXT);
    ids[3] = 310; // outside the vocabulary
    CHECK(e2h_seq_create(e, ids, 5, NULL, &s) == E2H_ERR_INVALID_ARG);
    free(lg);
    e2h_engine_free(e);
    e2h_model_free(m);
}

// The repacked weights' allocator (engine/util.c): 64-byte aligned below 2 MiB, 2 MiB
// aligned from there (huge pages), every byte writable, NULL for an impossible size.
TEST(alloc_large_alignment) {
    const size_t mib2 = (size_t)2 << 20;
    const size_t sizes[] = {0, 1, 100, mib2 - 1, mib2, 5 * mib2 + 3};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *p = util_alloc_large(sizes[i]);
        CHECKF(p != NULL, "size %zu", sizes[i]);
        if (!p) continue;
        const size_t align = sizes[i] >= mib2 ? mib2 : 64;
        CHECKF((uintptr_t)p % align == 0, "size %zu: %p not %zu-aligned", sizes[i], (void *)p, align);
        if (sizes[i]) p[0] = 1, p[sizes[i] - 1] = 2;
        free(p);
    }
    CHECK(util_alloc_large(SIZE_MAX) == NULL);
    CHECK(util_alloc_large(UTIL_ALLOC_LARGE_MAX + 1) == NULL);
}

int main(void) {
    RUN(alloc_large_alignment);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/e2h_test_model_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    n_fixtures = list_fixtures(fixtures, 32);
    RUN(fixtures_present);
    RUN(logits_match_transformers);
    RUN(greedy_matches_transformers);
    RUN(logits_independent_of_threads);
    RUN(sampling_reproducible_across_threads);
    RUN(bad_config_missing_field);
    RUN(bad_config_ill_typed);
    RUN(bad_config_not_json);
    RUN(unsupported_architecture);
    RUN(unsupported_rope_scaling);
    RUN(tensor_missing);
    RUN(tensor_wrong_shape);
    RUN(header_past_end_of_file);
    RUN(truncated_data);
    RUN(unknown_dtype);
    RUN(data_offsets_out_of_range);
    RUN(config_numbers_out_of_range);
    RUN(missing_directory);
    RUN(prompt_longer_than_context);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) {}
    return TEST_SUMMARY();
}
