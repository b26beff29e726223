// tests/test_feature_layer.c — e2h_engine_opts.feature_layer: the residual stream after an
// intermediate decoder block, kept at the forward pass's output rows (captured positions and
// each sequence's last token), against Hugging Face transformers' hidden_states[1]
// (tests/fixtures/models/{qwen2_f32,llama2_f32}/hidden_layer1.npy, made by
// tools/make_layer_fixtures.py). Bound: 1e-4 absolute (f32 weights; the same arithmetic-order
// bound as test_model's logits, measured ~1e-6). Logits must stay bit-identical with the
// feature layer on, through chunked prefill, fork and extend.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../include/e2h.h"
#include "harness.h"

#define FIX_DIR "tests/fixtures/models"

static int32_t *read_ids(const char *path, int *n) {
    char *t = th_read_file(path, NULL);
    cJSON *j = t ? cJSON_Parse(t) : NULL;
    free(t);
    cJSON *arr = j ? cJSON_GetObjectItem(j, "ids") : NULL;
    if (!cJSON_IsArray(arr)) { cJSON_Delete(j); return NULL; }
    *n = cJSON_GetArraySize(arr);
    int32_t *ids = malloc((size_t)*n * sizeof *ids);
    for (int i = 0; ids && i < *n; i++) ids[i] = (int32_t)cJSON_GetArrayItem(arr, i)->valuedouble;
    cJSON_Delete(j);
    return ids;
}

static e2h_engine *open_engine(const e2h_model *m, int feature_layer, int max_batch) {
    e2h_engine_opts o = e2h_engine_opts_default();
    o.n_threads = 2;
    o.max_batch_tokens = max_batch;
    o.feature_layer = feature_layer;
    e2h_engine *e = NULL;
    char err[512];
    e2h_status st = e2h_engine_init(m, &o, &e, err, sizeof err);
    CHECKF(st == E2H_OK, "engine init (feature_layer %d): %s", feature_layer, err);
    return e;
}

// Sequence over ids with every position from 1 on captured (hidden + logits), synced.
static e2h_seq *captured_seq(e2h_engine *e, const int32_t *ids, int n) {
    e2h_seq *s = NULL;
    if (e2h_seq_create(e, ids, 1, NULL, &s)) return NULL;
    int32_t *offs = malloc((size_t)(n - 1) * sizeof *offs);
    for (int i = 0; offs && i < n - 1; i++) offs[i] = i;
    e2h_append_opts ao = e2h_append_opts_default();
    ao.capture = offs;
    ao.n_capture = n - 1;
    ao.capture_logits = 1;
    e2h_status st = offs ? e2h_seq_append_ex(e, s, ids + 1, n - 1, &ao) : E2H_ERR_NOMEM;
    free(offs);
    if (!st) st = e2h_engine_sync(e, &s, 1);
    CHECKF(st == E2H_OK, "append/sync: %s", e2h_engine_last_error(e));
    if (st) { e2h_seq_release(e, s); return NULL; }
    return s;
}

static double max_diff(const float *a, const float *b, int n) {
    double w = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= w)) w = isnan(d) ? INFINITY : d;
    }
    return w;
}

static void check_fixture(const char *name) {
    char dir[256], p[512];
    snprintf(dir, sizeof dir, FIX_DIR "/%s", name);
    int n = 0, r1, c1, rf, cf;
    snprintf(p, sizeof p, "%s/tokens.json", dir);
    int32_t *ids = read_ids(p, &n);
    snprintf(p, sizeof p, "%s/hidden_layer1.npy", dir);
    float *h1 = th_read_npy(p, &r1, &c1);
    snprintf(p, sizeof p, "%s/hidden_final.npy", dir);
    float *hf = th_read_npy(p, &rf, &cf);
    CHECKF(ids && h1 && hf && r1 == n && rf == n && c1 == cf, "%s: fixture files unreadable", name);
    char err[512];
    e2h_model *m = NULL;
    if (!ids || !h1 || !hf || r1 != n || rf != n || e2h_model_load(dir, NULL, &m, err, sizeof err)) {
        CHECKF(0, "%s: cannot load", name);
        free(ids); free(h1); free(hf);
        return;
    }
    e2h_model_info mi;
    e2h_model_get_info(m, &mi);
    CHECK(mi.dim == c1);
    // 40 tokens per pass: the prefill is chunked, so rows come from two passes
    e2h_engine *on = open_engine(m, 1, 40), *off = open_engine(m, 0, 40);
    e2h_seq *s = on ? captured_seq(on, ids, n) : NULL, *t = off ? captured_seq(off, ids, n) : NULL;
    if (s && t) {
        double w1 = 0, wf = 0;
        int same_logits = 1, all = 1;
        for (int pos = 1; pos < n; pos++) {
            const float *a = e2h_seq_hidden_layer_at(s, pos), *hfin = e2h_seq_hidden_at(s, pos);
            const float *la = e2h_seq_logits_at(s, pos), *lb = e2h_seq_logits_at(t, pos);
            const float *hb = e2h_seq_hidden_at(t, pos);
            if (!a || !hfin || !la || !lb || !hb) { all = 0; break; }
            double d = max_diff(a, h1 + (size_t)pos * c1, c1);
            if (!(d <= w1)) w1 = d;
            d = max_diff(hfin, hf + (size_t)pos * c1, c1);
            if (!(d <= wf)) wf = d;
            same_logits &= !memcmp(la, lb, (size_t)mi.vocab_size * sizeof(float));
            same_logits &= !memcmp(hfin, hb, (size_t)mi.dim * sizeof(float));
        }
        CHECKF(all, "%s: a captured row is missing", name);
        CHECKF(w1 <= 1e-4, "%s: layer-1 residual max |diff| %.3g > 1e-4 vs transformers", name, w1);
        CHECKF(wf <= 1e-4, "%s: final-normed hidden max |diff| %.3g > 1e-4 vs transformers", name, wf);
        CHECKF(same_logits, "%s: logits / final hidden changed with feature_layer on", name);
        // the last token's row (e2h_seq_hidden_layer) is the last captured position
        const float *last = e2h_seq_hidden_layer(s);
        CHECKF(last && max_diff(last, h1 + (size_t)(n - 1) * c1, c1) <= 1e-4, "%s: e2h_seq_hidden_layer", name);
        CHECK(e2h_seq_hidden_layer(t) == NULL && e2h_seq_hidden_layer_at(t, 5) == NULL);
        printf("  %-12s layer 1 max|diff| %.2e, final %.2e, logits bit-identical: %s\n", name, w1, wf,
               same_logits ? "yes" : "NO");
        // fork inherits the rows; greedy extend gives the same tokens and logits either way,
        // and a row that is not current reads NULL
        e2h_seq *cs = NULL, *ct = NULL;
        CHECK(e2h_seq_fork(on, s, 1, &cs) == E2H_OK && e2h_seq_fork(off, t, 1, &ct) == E2H_OK);
        if (cs && ct) {
            CHECK(e2h_seq_hidden_layer_at(cs, 7) && !memcmp(e2h_seq_hidden_layer_at(cs, 7),
                                                           e2h_seq_hidden_layer_at(s, 7), (size_t)c1 * 4));
            e2h_stop stop = {.max_tokens = 6};
            CHECK(e2h_seq_extend(on, &cs, 1, &stop) == E2H_OK && e2h_seq_extend(off, &ct, 1, &stop) == E2H_OK);
            CHECK(e2h_seq_len(cs) == e2h_seq_len(ct) &&
                  !memcmp(e2h_seq_tokens(cs), e2h_seq_tokens(ct), (size_t)e2h_seq_len(cs) * 4));
            CHECK(!memcmp(e2h_seq_logits(cs), e2h_seq_logits(ct), (size_t)mi.vocab_size * 4));
            CHECK(e2h_seq_hidden_layer(cs) != NULL);
            int32_t tok = 3;
            CHECK(e2h_seq_append(on, cs, &tok, 1) == E2H_OK);
            CHECK(e2h_seq_hidden_layer(cs) == NULL); // pending
        }
        if (cs) e2h_seq_release(on, cs);
        if (ct) e2h_seq_release(off, ct);
    }
    if (s) e2h_seq_release(on, s);
    if (t) e2h_seq_release(off, t);
    e2h_engine_free(on);
    e2h_engine_free(off);
    e2h_model_free(m);
    free(ids); free(h1); free(hf);
}

TEST(feature_layer_matches_transformers) {
    check_fixture("qwen2_f32");
    check_fixture("llama2_f32");
}

TEST(feature_layer_out_of_range) {
    char err[512];
    e2h_model *m = NULL;
    if (e2h_model_load(FIX_DIR "/qwen2_f32", NULL, &m, err, sizeof err)) { CHECKF(0, "load: %s", err); return; }
    int bad[] = {-1, 3, 1 << 30};
    for (int i = 0; i < 3; i++) {
        e2h_engine_opts o = e2h_engine_opts_default();
        o.feature_layer = bad[i];
        e2h_engine *e = NULL;
        err[0] = 0;
        CHECKF(e2h_engine_init(m, &o, &e, err, sizeof err) == E2H_ERR_INVALID_ARG && !e &&
               strstr(err, "feature_layer"), "feature_layer %d accepted (%s)", bad[i], err);
    }
    e2h_engine_opts o = e2h_engine_opts_default();
    o.feature_layer = 2; // n_layers: the residual stream before the final norm
    e2h_engine *e = NULL;
    CHECK(e2h_engine_init(m, &o, &e, err, sizeof err) == E2H_OK);
    e2h_engine_free(e);
    e2h_model_free(m);
}

int main(void) {
    RUN(feature_layer_matches_transformers);
    RUN(feature_layer_out_of_range);
    return TEST_SUMMARY();
}
