// tests/test_prm.c — PRM protocols against the torch references of tests/fixtures/prm/
// (tools/make_prm_fixtures.py: tiny random-weight models of each family): text layouts (token
// ids and read positions), step scores within 1e-4, incremental vs from-scratch scoring
// (1e-5, f32 KV), random fork / score / truncate trees that leave the pool empty, head files
// (also heads that read a policy layer, against a recomputation here), protocol detection and
// bad input.
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <unistd.h>

#include "../engine/prm/prm_internal.h"
#include "../include/e2h.h"
#include "harness.h"

#define FIX "tests/fixtures/prm"

typedef struct {
    const char *dir, *protocol;
} fam;
static const fam fams[] = {
    {"e2h_paper", "e2h-paper"}, {"math_shepherd", "math-shepherd"}, {"qwen_prm", "qwen-prm"},
    {"rlhflow", "rlhflow"},     {"value_head", "value-head"},       {"implicit", "implicit"},
};
#define N_FAMS ((int)(sizeof fams / sizeof fams[0]))

static cJSON *load_expected(const char *dir) {
    char p[512];
    snprintf(p, sizeof p, FIX "/%s/expected.json", dir);
    char *t = th_read_file(p, NULL);
    if (!t) return NULL;
    cJSON *j = cJSON_Parse(t);
    free(t);
    return j;
}

static int fixtures_present(void) {
    char *t = th_read_file(FIX "/e2h_paper/expected.json", NULL);
    free(t);
    if (!t) printf("  skipped: " FIX " not present (tools/make_prm_fixtures.py)\n");
    return t != NULL;
}

static e2h_prm *load_prm(const char *dir, const char *protocol) {
    char p[512], ref[512], err[1024];
    snprintf(p, sizeof p, FIX "/%s", dir);
    snprintf(ref, sizeof ref, FIX "/implicit_ref");
    e2h_prm_opts o = e2h_prm_opts_default();
    o.protocol = protocol;
    if (protocol && !strcmp(protocol, "implicit")) o.ref_model = ref;
    e2h_prm *prm = NULL;
    e2h_status st = e2h_prm_load(p, NULL, &o, &prm, err, sizeof err);
    if (st) printf("  load %s: %s\n", dir, err);
    return prm;
}

// The case's steps as a C array; e2h-paper: the answer as the final step "# Answer\n\n{answer}".
static int case_steps(const cJSON *c, const char **steps, char *answer_buf, size_t cap) {
    const cJSON *s = cJSON_GetObjectItem(c, "steps"), *it;
    int n = 0;
    cJSON_ArrayForEach(it, s) steps[n++] = it->valuestring;
    const cJSON *a = cJSON_GetObjectItem(c, "answer");
    if (answer_buf && cJSON_IsString(a)) {
        snprintf(answer_buf, cap, "# Answer\n\n%s", a->valuestring);
        steps[n++] = answer_buf;
    }
    return n;
}

static int json_int_at(const cJSON *arr, int i) { return cJSON_GetArrayItem(arr, i)->valueint; }

// Layout ids and read positions equal the reference's (up to the last read).
TEST(layouts_match_reference) {
    if (!fixtures_present()) return;
    for (int f = 0; f < N_FAMS; f++) {
        cJSON *x = load_expected(fams[f].dir);
        e2h_prm *p = load_prm(fams[f].dir, fams[f].protocol);
        CHECKF(x && p, "%s", fams[f].dir);
        if (!x || !p) { cJSON_Delete(x); e2h_prm_free(p); continue; }
        int paper = !strcmp(fams[f].dir, "e2h_paper"), impl = !strcmp(fams[f].dir, "implicit");
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(x, "cases")) {
            const char *steps[32];
            char ans[256];
            int n = case_steps(c, steps, paper ? ans : NULL, sizeof ans);
            prm_build b;
            char err[512] = "";
            e2h_status st = prm_build_layout(p, &b, cJSON_GetObjectItem(c, "problem")->valuestring,
                                             steps, n, 1, err, sizeof err);
            CHECKF(st == E2H_OK, "%s: %s", fams[f].dir, err);
            if (st) continue;
            const cJSON *ids = cJSON_GetObjectItem(c, "ids");
            const cJSON *pos = cJSON_GetObjectItem(c, "positions");
            int n_ids = cJSON_GetArraySize(ids);
            int32_t upto = 0; // compare through the last position read
            for (int k = 0; k < n; k++) {
                int32_t e = impl ? b.span1[k] : b.read[k] + 1;
                if (e > upto) upto = e;
            }
            int same = upto <= b.n && upto <= n_ids;
            int first_diff = -1;
            for (int32_t i = 0; same && i < upto; i++)
                if (b.ids[i] != json_int_at(ids, i)) { same = 0; first_diff = i; }
            CHECKF(same, "%s/%s: ids differ (first at %d, %d vs %d tokens)", fams[f].dir,
                   cJSON_GetObjectItem(c, "name")->valuestring, first_diff, b.n, n_ids);
            if (impl) {
                const cJSON *r = cJSON_GetObjectItem(c, "step_ranges");
                for (int k = 0; k < n; k++) {
                    const cJSON *rk = cJSON_GetArrayItem(r, k);
                    CHECKF(b.span0[k] == json_int_at(rk, 0) && b.span1[k] == json_int_at(rk, 1),
                           "implicit step %d: span [%d,%d) vs [%d,%d)", k, b.span0[k], b.span1[k],
                           json_int_at(rk, 0), json_int_at(rk, 1));
                }
            } else {
                int n_pos = cJSON_GetArraySize(pos);
                for (int k = 0; k < n_pos; k++)
                    CHECKF(b.read[k] == json_int_at(pos, k), "%s step %d: read %d vs %d",
                           fams[f].dir, k, b.read[k], json_int_at(pos, k));
                if (paper)
                    CHECKF(b.read[n - 1] == cJSON_GetObjectItem(c, "answer_position")->valueint,
                           "e2h-paper answer read %d", b.read[n - 1]);
            }
            prm_build_free(&b);
        }
        e2h_prm_free(p);
        cJSON_Delete(x);
    }
}

// Protocols are detected where config.json / tensors say so; ambiguous ones need a name.
TEST(detection) {
    if (!fixtures_present()) return;
    e2h_prm *p = load_prm("qwen_prm", NULL);
    CHECK(p && !strcmp(e2h_prm_protocol(p), "qwen-prm"));
    e2h_prm_free(p);
    p = load_prm("value_head", NULL);
    CHECK(p && !strcmp(e2h_prm_protocol(p), "value-head"));
    e2h_prm_free(p);
    char err[512];
    e2h_prm *q = NULL;
    CHECK(e2h_prm_load(FIX "/e2h_paper", NULL, NULL, &q, err, sizeof err) == E2H_ERR_INVALID_ARG &&
          !q && strstr(err, "--prm-protocol"));
}

TEST(bad_input) {
    if (!fixtures_present()) return;
    char err[512];
    e2h_prm *q = NULL;
    e2h_prm_opts o = e2h_prm_opts_default();
    o.protocol = "no-such";
    CHECK(e2h_prm_load(FIX "/e2h_paper", NULL, &o, &q, err, sizeof err) == E2H_ERR_INVALID_ARG &&
          strstr(err, "no-such"));
    o.protocol = "qwen-prm"; // a causal LM has no 2-class score head
    CHECK(e2h_prm_load(FIX "/e2h_paper", NULL, &o, &q, err, sizeof err) == E2H_ERR_UNSUPPORTED &&
          strstr(err, "score.0.weight"));
    o.protocol = "math-shepherd"; // a reward-model class has no lm_head to read "+" / "-" from
    CHECK(e2h_prm_load(FIX "/qwen_prm", NULL, &o, &q, err, sizeof err) == E2H_ERR_UNSUPPORTED &&
          strstr(err, "lm_head"));
    o.protocol = "implicit"; // needs its reference model
    CHECK(e2h_prm_load(FIX "/implicit", NULL, &o, &q, err, sizeof err) == E2H_ERR_INVALID_ARG);
    o.protocol = "head"; // needs the policy
    CHECK(e2h_prm_load(FIX "/policy/head_linear.safetensors", NULL, &o, &q, err, sizeof err) ==
          E2H_ERR_INVALID_ARG);
    // a head whose dim does not match the policy
    e2h_model *m = NULL;
    CHECK(e2h_model_load("tests/fixtures/models/qwen2_f32", NULL, &m, err, sizeof err) == E2H_OK);
    CHECK(e2h_prm_load(FIX "/policy/head_linear.safetensors", m, &o, &q, err, sizeof err) ==
          E2H_ERR_SHAPE && strstr(err, "dim"));
    e2h_model_free(m);
    CHECK(q == NULL);
}


static e2h_engine *engine_on(const e2h_model *m, int max_blocks_gib_mb) {
    e2h_engine_opts eo;
    memset(&eo, 0, sizeof eo);
    eo.kv_mem_gib = max_blocks_gib_mb / 1024.0;
    eo.block_size = 4; // small blocks: partial-block copies and sharing get exercised
    char err[512];
    e2h_engine *e = NULL;
    if (e2h_engine_init(m, &eo, &e, err, sizeof err)) printf("  engine: %s\n", err);
    return e;
}

// A PRM (not head) attached to an engine that runs the PRM's own model.
static e2h_engine *engine_with_prm(e2h_prm *p) {
    e2h_engine *e = engine_on(e2h_prm_model(p), 64);
    if (e && e2h_engine_attach_prm(e, p)) {
        printf("  attach: %s\n", e2h_engine_last_error(e));
        e2h_engine_free(e);
        return NULL;
    }
    return e;
}

static double max_abs_diff(const float *a, const cJSON *b, int n, double scale) {
    double d = 0;
    for (int i = 0; i < n; i++) {
        double x = fabs(a[i] * scale - cJSON_GetArrayItem(b, i)->valuedouble);
        if (!(x <= d)) d = x; // NaN -> NaN
    }
    return d;
}

// Step scores of every family within 1e-4 of the torch reference (f32 weights, f32 KV).
TEST(scores_match_reference) {
    if (!fixtures_present()) return;
    for (int f = 0; f < N_FAMS; f++) {
        cJSON *x = load_expected(fams[f].dir);
        e2h_prm *p = load_prm(fams[f].dir, fams[f].protocol);
        e2h_engine *e = p ? engine_with_prm(p) : NULL;
        CHECKF(x && p && e, "%s", fams[f].dir);
        int paper = !strcmp(fams[f].dir, "e2h_paper"), impl = !strcmp(fams[f].dir, "implicit");
        const cJSON *c;
        cJSON *cases = x && e ? cJSON_GetObjectItem(x, "cases") : NULL;
        cJSON_ArrayForEach(c, cases) {
            const char *steps[32];
            char ans[256];
            int n = case_steps(c, steps, paper ? ans : NULL, sizeof ans);
            float sc[32];
            e2h_status st = e2h_prm_score_texts(e, cJSON_GetObjectItem(c, "problem")->valuestring, steps,
                                                n, sc);
            CHECKF(st == E2H_OK, "%s: %s", fams[f].dir, e2h_engine_last_error(e));
            if (st) continue;
            const cJSON *want = cJSON_GetObjectItem(c, impl ? "step_logratio_sums" : "step_scores");
            int nw = cJSON_GetArraySize(want);
            // implicit: the fixture has the raw sums; beta (0.001 by default) scales them
            double d = max_abs_diff(sc, want, nw, impl ? 1.0 / 0.001 : 1.0);
            CHECKF(d < (impl ? 1e-3 : 1e-4), "%s/%s: max |score - reference| = %g", fams[f].dir,
                   cJSON_GetObjectItem(c, "name")->valuestring, d);
            if (paper) {
                double a = fabs(sc[n - 1] - cJSON_GetObjectItem(c, "answer_score")->valuedouble);
                CHECKF(a < 1e-4, "e2h-paper answer score off by %g", a);
            }
        }
        e2h_engine_free(e);
        e2h_prm_free(p);
        cJSON_Delete(x);
    }
}

// GGUF copies of the qwen-prm and value-head fixtures (tools/make_prm_fixtures.py
// write_prm_gguf: the same f32 weights, the tokenizer in GGUF metadata, the head under e2h's
// GGUF names cls / cls.output, key e2h.prm.protocol): protocol detected, the layout's ids from
// the GGUF tokenizer equal the reference's, step scores within 1e-4 of torch; a head of the
// wrong protocol is refused.
TEST(gguf_heads) {
    if (!fixtures_present()) return;
    static const char *dirs[2][2] = {{"qwen_prm", "qwen-prm"}, {"value_head", "value-head"}};
    char err[512], path[256];
    for (int f = 0; f < 2; f++) {
        snprintf(path, sizeof path, FIX "/%s/model.gguf", dirs[f][0]);
        e2h_prm *p = NULL;
        e2h_status st = e2h_prm_load(path, NULL, NULL, &p, err, sizeof err);
        CHECKF(st == E2H_OK && !strcmp(e2h_prm_protocol(p), dirs[f][1]), "%s: %s", path, err);
        cJSON *x = load_expected(dirs[f][0]);
        e2h_engine *e = p ? engine_with_prm(p) : NULL;
        CHECK(x && e);
        const cJSON *c;
        cJSON *cases = x && e ? cJSON_GetObjectItem(x, "cases") : NULL;
        cJSON_ArrayForEach(c, cases) {
            const char *steps[32];
            int n = case_steps(c, steps, NULL, 0);
            const char *problem = cJSON_GetObjectItem(c, "problem")->valuestring;
            prm_build b;
            CHECK(prm_build_layout(p, &b, problem, steps, n, 1, err, sizeof err) == E2H_OK);
            const cJSON *ids = cJSON_GetObjectItem(c, "ids");
            int32_t upto = b.read[n - 1] + 1, same = upto <= cJSON_GetArraySize(ids);
            for (int32_t i = 0; same && i < upto; i++) same = b.ids[i] == json_int_at(ids, i);
            CHECKF(same, "%s: layout ids differ from the reference's", path);
            prm_build_free(&b);
            float sc[32];
            st = e2h_prm_score_texts(e, problem, steps, n, sc);
            CHECKF(st == E2H_OK, "%s: %s", path, e2h_engine_last_error(e));
            double d = st ? 1 : max_abs_diff(sc, cJSON_GetObjectItem(c, "step_scores"), n, 1.0);
            CHECKF(d < 1e-4, "%s/%s: max |score - reference| = %g", path,
                   cJSON_GetObjectItem(c, "name")->valuestring, d);
        }
        e2h_engine_free(e);
        e2h_prm_free(p);
        cJSON_Delete(x);
    }
    // without the e2h.prm.protocol key (renamed in a copy of the file) the head tensors tell
    for (int f = 0; f < 2; f++) {
        snprintf(path, sizeof path, FIX "/%s/model.gguf", dirs[f][0]);
        FILE *in = fopen(path, "rb");
        static char buf[1 << 20];
        size_t n = in ? fread(buf, 1, sizeof buf, in) : 0;
        if (in) fclose(in);
        char *k = n ? memmem(buf, n, "e2h.prm.protocol", 16) : NULL;
        CHECK(n > 0 && n < sizeof buf && k);
        if (!k) continue;
        memcpy(k, "e2h.prm.zzzzzzzz", 16);
        char tmp[] = "/tmp/e2h_test_prm_XXXXXX.gguf";
        int fd = mkstemps(tmp, 5);
        FILE *out = fd >= 0 ? fdopen(fd, "wb") : NULL;
        CHECK(out && fwrite(buf, 1, n, out) == n);
        if (out) fclose(out);
        e2h_prm *p = NULL;
        e2h_status st = e2h_prm_load(tmp, NULL, NULL, &p, err, sizeof err);
        CHECKF(st == E2H_OK && !strcmp(e2h_prm_protocol(p), dirs[f][1]), "%s without the key: %s", dirs[f][0],
               st ? err : e2h_prm_protocol(p));
        e2h_prm_free(p);
        remove(tmp);
    }
    e2h_prm_opts o = e2h_prm_opts_default();
    e2h_prm *q = NULL;
    o.protocol = "value-head"; // qwen-prm's cls.output is (2, H), not a (1, dim) value head
    CHECK(e2h_prm_load(FIX "/qwen_prm/model.gguf", NULL, &o, &q, err, sizeof err) == E2H_ERR_SHAPE &&
          strstr(err, "cls.output.weight"));
    o.protocol = "qwen-prm"; // a value head has no hidden layer
    CHECK(e2h_prm_load(FIX "/value_head/model.gguf", NULL, &o, &q, err, sizeof err) == E2H_ERR_UNSUPPORTED &&
          strstr(err, "score.0.weight"));
    CHECK(q == NULL);
}

// The head protocol on the policy fixture: both head files.
TEST(head_scores_match_reference) {
    if (!fixtures_present()) return;
    cJSON *x = load_expected("policy");
    char err[512];
    e2h_model *pol = NULL;
    CHECK(x && e2h_model_load(FIX "/policy", NULL, &pol, err, sizeof err) == E2H_OK);
    const char *heads[2] = {"head_linear", "head_mlp"};
    for (int h = 0; h < 2 && pol; h++) {
        char path[512];
        snprintf(path, sizeof path, FIX "/policy/%s.safetensors", heads[h]);
        e2h_prm *p = NULL;
        e2h_status st = e2h_prm_load(path, pol, NULL, &p, err, sizeof err); // detected: head
        CHECKF(st == E2H_OK && !strcmp(e2h_prm_protocol(p), "head"), "%s", err);
        e2h_engine *e = p ? engine_on(pol, 64) : NULL;
        CHECK(e && e2h_engine_attach_prm(e, p) == E2H_OK);
        const cJSON *c;
        cJSON *cases = e ? cJSON_GetObjectItem(x, "cases") : NULL;
        cJSON_ArrayForEach(c, cases) {
            const char *steps[32];
            int n = case_steps(c, steps, NULL, 0);
            float sc[32];
            st = e2h_prm_score_texts(e, cJSON_GetObjectItem(c, "problem")->valuestring, steps, n, sc);
            CHECKF(st == E2H_OK, "%s", e2h_engine_last_error(e));
            if (st) continue;
            const cJSON *want = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "step_scores"), heads[h]);
            double d = max_abs_diff(sc, want, n, 1.0);
            CHECKF(d < 1e-4, "%s/%s: max |score - reference| = %g", heads[h],
                   cJSON_GetObjectItem(c, "name")->valuestring, d);
        }
        e2h_engine_free(e);
        e2h_prm_free(p);
    }
    e2h_model_free(pol);
    cJSON_Delete(x);
}


// ---------------------------------------------------------------- incremental scoring

// Appends text (policy tokens) to a policy sequence.
static int append_text(e2h_engine *e, e2h_seq *s, const char *text) {
    const e2h_tokenizer *t = e2h_model_tokenizer(e2h_engine_model(e));
    int32_t ids[1024], n = 0;
    if (e2h_tokenize(t, text, strlen(text), 0, ids, 1024, &n) || n > 1024) return -1;
    return e2h_seq_append(e, s, ids, n) ? -1 : 0;
}

static e2h_seq *policy_root(e2h_engine *e, const char *problem) {
    const e2h_tokenizer *t = e2h_model_tokenizer(e2h_engine_model(e));
    int32_t ids[1024], n = 0;
    e2h_seq *s = NULL;
    if (e2h_tokenize(t, problem, strlen(problem), 1, ids, 1024, &n) || n < 1 ||
        e2h_seq_create(e, ids, n, NULL, &s) || e2h_seq_set_problem(e, s, problem)) {
        if (s) e2h_seq_release(e, s);
        return NULL;
    }
    return s;
}

// Generates steps[from..n) on s one at a time (step + "\n\n", the last without the delimiter
// when final) and scores each as it completes.
static int grow_and_score(e2h_engine *e, e2h_seq *s, const char *const *steps, int from, int n,
                          int final) {
    for (int k = from; k < n; k++) {
        int last = k == n - 1 && final;
        if (append_text(e, s, steps[k]) || (!last && append_text(e, s, "\n\n"))) return -1;
        float sc;
        if (e2h_prm_score_new_steps(e, &s, 1, last, &sc)) {
            printf("  score: %s\n", e2h_engine_last_error(e));
            return -1;
        }
    }
    return 0;
}

static void kv_empty(e2h_engine *e, const char *what) {
    e2h_kv_stats ks;
    e2h_engine_get_kv_stats(e, &ks);
    CHECKF(ks.blocks_used == 0, "%s: %d KV blocks still used after release", what, ks.blocks_used);
}

// Mirrors of a policy whose tokenizer differs from the PRM's (text mapping): step by step, in
// a tree (two branches share three steps), against from-scratch scoring (1e-5) and the torch
// reference (1e-4); truncate-and-regrow; everything released leaves both pools empty.
TEST(incremental_matches_from_scratch) {
    if (!fixtures_present()) return;
    char err[512];
    e2h_model *pol = NULL;
    CHECK(e2h_model_load(FIX "/policy", NULL, &pol, err, sizeof err) == E2H_OK);
    for (int f = 0; f < N_FAMS && pol; f++) {
        cJSON *x = load_expected(fams[f].dir);
        e2h_prm *p = load_prm(fams[f].dir, fams[f].protocol);
        e2h_engine *e = engine_on(pol, 64);
        CHECKF(x && p && e && e2h_engine_attach_prm(e, p) == E2H_OK, "%s: %s", fams[f].dir,
               e ? e2h_engine_last_error(e) : "");
        int paper = !strcmp(fams[f].dir, "e2h_paper"), impl = !strcmp(fams[f].dir, "implicit");
        const cJSON *cases = x ? cJSON_GetObjectItem(x, "cases") : NULL;
        const cJSON *ca = cJSON_GetArrayItem(cases, 1), *cb = cJSON_GetArrayItem(cases, 2);
        if (!e || !ca || !cb) { e2h_engine_free(e); e2h_prm_free(p); cJSON_Delete(x); continue; }
        const char *sa[32], *sb[32];
        char aa[256], ab[256];
        int na = case_steps(ca, sa, paper ? aa : NULL, sizeof aa);
        int nb = case_steps(cb, sb, paper ? ab : NULL, sizeof ab);
        const char *problem = cJSON_GetObjectItem(ca, "problem")->valuestring;
        e2h_seq *root = policy_root(e, problem), *ch[2] = {NULL, NULL};
        int64_t t0 = e2h_engine_prm_tokens(e);
        CHECK(root && grow_and_score(e, root, sa, 0, 3, 0) == 0);
        { // three steps scored one at a time cost about one layout of three steps, not three
          // (implicit: two models)
            prm_build b3;
            CHECK(prm_build_layout(p, &b3, problem, sa, 3, 0, err, sizeof err) == E2H_OK);
            int64_t used = e2h_engine_prm_tokens(e) - t0;
            CHECKF(used <= (impl ? 2 : 1) * ((int64_t)b3.n + 3), "%s: %lld PRM tokens for a %d-token layout",
                   fams[f].dir, (long long)used, b3.n);
            prm_build_free(&b3);
        }
        CHECK(root && e2h_seq_fork(e, root, 2, ch) == E2H_OK);
        CHECK(ch[0] && grow_and_score(e, ch[0], sa, 3, na, 1) == 0);
        CHECK(ch[1] && grow_and_score(e, ch[1], sb, 3, nb, 1) == 0);
        for (int b = 0; b < 2 && ch[b]; b++) {
            const char **st = b ? sb : sa;
            int n = b ? nb : na;
            const float *inc = NULL;
            int got = e2h_seq_step_scores(ch[b], &inc);
            float full[32];
            CHECKF(got == n, "%s branch %d: %d step scores, want %d", fams[f].dir, b, got, n);
            CHECK(e2h_prm_score_texts(e, problem, st, n, full) == E2H_OK);
            double d = 0;
            for (int k = 0; k < n && got == n; k++) d = fmax(d, fabs(inc[k] - full[k]));
            CHECKF(d <= 1e-5 * (impl ? 1000 : 1), "%s branch %d: incremental vs from scratch %g",
                   fams[f].dir, b, d);
            const cJSON *want = cJSON_GetObjectItem(b ? cb : ca, impl ? "step_logratio_sums" : "step_scores");
            if (got == n) {
                double r = max_abs_diff(inc, want, cJSON_GetArraySize(want), impl ? 1000.0 : 1.0);
                CHECKF(r < (impl ? 1e-3 : 1e-4), "%s branch %d: vs reference %g", fams[f].dir, b, r);
            }
        }
        // truncate branch 1 back into step 4 and regrow it as branch 0's step 4: the same scores
        if (ch[1]) {
            const float *s1 = NULL;
            int32_t len = e2h_seq_len(ch[1]);
            CHECK(e2h_seq_truncate(e, ch[1], len - 3) == E2H_OK);
            CHECK(e2h_seq_step_scores(ch[1], &s1) <= nb - 1);
            e2h_seq *g = NULL;
            CHECK(e2h_seq_fork(e, root, 1, &g) == E2H_OK && g);
            if (g) {
                CHECK(grow_and_score(e, g, sa, 3, na, 1) == 0);
                const float *x0 = NULL, *x1 = NULL;
                int n0 = e2h_seq_step_scores(ch[0], &x0), n1 = e2h_seq_step_scores(g, &x1);
                CHECK(n0 == n1);
                for (int k = 0; k < n0 && n0 == n1; k++)
                    CHECKF(fabs(x0[k] - x1[k]) <= 1e-6, "%s: regrown step %d differs", fams[f].dir, k);
                // re-scoring a scored sequence costs nothing and returns the last score
                int64_t before = e2h_engine_prm_tokens(e);
                float again;
                CHECK(e2h_prm_score_new_steps(e, &g, 1, 1, &again) == E2H_OK);
                CHECK(e2h_engine_prm_tokens(e) == before && n1 > 0 && again == x1[n1 - 1]);
                e2h_seq_release(e, g);
            }
        }
        e2h_seq_release(e, ch[0]);
        e2h_seq_release(e, ch[1]);
        e2h_seq_release(e, root);
        kv_empty(e, "policy");
        for (int j = 0; j < 2; j++)
            if (prm_engine_of(e, j)) kv_empty(prm_engine_of(e, j), fams[f].dir);
        e2h_engine_free(e);
        e2h_prm_free(p);
        cJSON_Delete(x);
    }
    e2h_model_free(pol);
}

// Random trees of fork / append step / score / truncate / release: every scored sequence's
// step scores equal from-scratch scoring, and the pools are empty after release.
TEST(random_trees) {
    if (!fixtures_present()) return;
    char err[512];
    e2h_model *pol = NULL;
    CHECK(e2h_model_load(FIX "/policy", NULL, &pol, err, sizeof err) == E2H_OK);
    e2h_prm *p = load_prm("qwen_prm", "qwen-prm");
    e2h_engine *e = pol && p ? engine_on(pol, 64) : NULL;
    CHECK(e && e2h_engine_attach_prm(e, p) == E2H_OK);
    static const char *pool[] = {"We factor it.", "So x = 2 or x = 3.", "The sum is 5.",
                                 "Check: 2 + 3 = 5.", "By Vieta the sum is 5.", "Hence $\\boxed{5}$."};
    const char *problem = "Find the sum of the roots of $x^2-5x+6=0$.";
    enum { MAXS = 12 };
    e2h_seq *live[MAXS];
    int steps[MAXS][16], n_steps[MAXS], n_live = 0;
    uint64_t rng = 12345;
#define RND(n) ((int)((rng = rng * 6364136223846793005ull + 1442695040888963407ull) >> 33) % (n))
    if (e) {
        live[0] = policy_root(e, problem);
        n_steps[0] = 0;
        n_live = live[0] ? 1 : 0;
    }
    for (int it = 0; it < 60 && n_live > 0; it++) {
        int i = RND(n_live), op = RND(10);
        e2h_seq *s = live[i];
        if (op < 2 && n_live < MAXS) { // fork
            e2h_seq *c = NULL;
            if (e2h_seq_fork(e, s, 1, &c) == E2H_OK) {
                live[n_live] = c;
                memcpy(steps[n_live], steps[i], sizeof steps[i]);
                n_steps[n_live++] = n_steps[i];
            }
        } else if (op < 7 && n_steps[i] < 8) { // a new step, scored
            int k = RND(6);
            steps[i][n_steps[i]++] = k;
            CHECK(append_text(e, s, pool[k]) == 0 && append_text(e, s, "\n\n") == 0);
            float sc;
            CHECKF(e2h_prm_score_new_steps(e, &s, 1, 0, &sc) == E2H_OK, "%s", e2h_engine_last_error(e));
        } else if (op < 9 && n_steps[i] > 1) { // truncate to the end of an earlier step
            const float *sc;
            int keep = 1 + RND(n_steps[i] - 1);
            int32_t len = e2h_seq_n_prompt(s);
            for (int k = 0; k < keep; k++) {
                const e2h_tokenizer *t = e2h_model_tokenizer(pol);
                int32_t n = 0;
                char buf[256];
                snprintf(buf, sizeof buf, "%s\n\n", pool[steps[i][k]]);
                e2h_tokenize(t, buf, strlen(buf), 0, NULL, 0, &n);
                len += n;
            }
            CHECK(e2h_seq_truncate(e, s, len) == E2H_OK);
            n_steps[i] = keep;
            CHECK(e2h_seq_step_scores(s, &sc) == keep);
        } else if (n_live > 1) { // release
            e2h_seq_release(e, s);
            live[i] = live[n_live - 1];
            memcpy(steps[i], steps[n_live - 1], sizeof steps[i]);
            n_steps[i] = n_steps[n_live - 1];
            n_live--;
        }
    }
    for (int i = 0; i < n_live; i++) {
        const float *inc;
        int n = e2h_seq_step_scores(live[i], &inc);
        CHECKF(n == n_steps[i], "seq %d: %d scores for %d steps", i, n, n_steps[i]);
        if (n == 0 || n != n_steps[i]) continue;
        const char *st[16];
        float full[16];
        for (int k = 0; k < n; k++) st[k] = pool[steps[i][k]];
        // the tree scored every step as not final: compare with the same layout
        prm_build b;
        CHECK(prm_build_layout(p, &b, problem, st, n, 0, err, sizeof err) == E2H_OK);
        prm_build_free(&b);
        CHECK(e2h_prm_score_texts(e, problem, st, n, full) == E2H_OK);
        for (int k = 0; k < n; k++) // qwen-prm: a final layout reads the same positions
            CHECKF(fabs(inc[k] - full[k]) <= 1e-5, "seq %d step %d: %g vs %g", i, k, inc[k], full[k]);
    }
    for (int i = 0; i < n_live; i++) e2h_seq_release(e, live[i]);
    if (e) {
        kv_empty(e, "policy");
        kv_empty(prm_engine_of(e, 0), "prm");
    }
    e2h_engine_free(e);
    e2h_prm_free(p);
    e2h_model_free(pol);
}


// e2h-paper ORM reads only the final answer, at the EOS after it (the reference's eos_score);
// OPRM reads every step and the answer at its last token (answer_score).
TEST(e2h_paper_orm_oprm) {
    if (!fixtures_present()) return;
    cJSON *x = load_expected("e2h_paper");
    const char *variants[2] = {"e2h-paper-orm", "e2h-paper-oprm"};
    for (int v = 0; v < 2 && x; v++) {
        e2h_prm *p = load_prm("e2h_paper", variants[v]);
        e2h_engine *e = p ? engine_with_prm(p) : NULL;
        CHECK(e != NULL);
        const cJSON *c;
        cJSON *cases = e ? cJSON_GetObjectItem(x, "cases") : NULL;
        cJSON_ArrayForEach(c, cases) {
            const char *steps[32];
            char ans[256];
            int n = case_steps(c, steps, ans, sizeof ans);
            float sc[32];
            CHECK(e2h_prm_score_texts(e, cJSON_GetObjectItem(c, "problem")->valuestring, steps, n, sc) == E2H_OK);
            double want = cJSON_GetObjectItem(c, v ? "answer_score" : "eos_score")->valuedouble;
            CHECKF(fabs(sc[n - 1] - want) < 1e-4, "%s: final %g vs %g", variants[v], sc[n - 1], want);
            const cJSON *ws = cJSON_GetObjectItem(c, "step_scores");
            for (int k = 0; k < n - 1; k++) {
                if (v == 0) CHECKF(isnan(sc[k]), "orm step %d scored", k);
                else CHECKF(fabs(sc[k] - cJSON_GetArrayItem(ws, k)->valuedouble) < 1e-4, "oprm step %d", k);
            }
        }
        e2h_engine_free(e);
        e2h_prm_free(p);
    }
    cJSON_Delete(x);
}


// The head protocol on live policy sequences: the policy's own hidden states at each step's
// last token (no PRM forward), in a tree, against the reference and from-scratch scoring.
TEST(head_incremental) {
    if (!fixtures_present()) return;
    cJSON *x = load_expected("policy");
    char err[512];
    e2h_model *pol = NULL;
    CHECK(x && e2h_model_load(FIX "/policy", NULL, &pol, err, sizeof err) == E2H_OK);
    e2h_prm *p = NULL;
    CHECK(pol && e2h_prm_load(FIX "/policy/head_mlp.safetensors", pol, NULL, &p, err, sizeof err) == E2H_OK);
    e2h_engine *e = p ? engine_on(pol, 64) : NULL;
    CHECK(e && e2h_engine_attach_prm(e, p) == E2H_OK);
    const cJSON *ca = cJSON_GetArrayItem(cJSON_GetObjectItem(x, "cases"), 1);
    const cJSON *cb = cJSON_GetArrayItem(cJSON_GetObjectItem(x, "cases"), 2);
    if (e && ca && cb) {
        const char *problem = cJSON_GetObjectItem(ca, "problem")->valuestring;
        char prompt[2048];
        snprintf(prompt, sizeof prompt, "<|im_start|>system\n%s<|im_end|>\n<|im_start|>user\n%s<|im_end|>\n"
                 "<|im_start|>assistant\n", e2h_model_chat_system(pol), problem);
        const e2h_tokenizer *t = e2h_model_tokenizer(pol);
        int32_t ids[1024], n = 0;
        e2h_seq *root = NULL, *ch[2] = {NULL, NULL};
        CHECK(e2h_tokenize(t, prompt, strlen(prompt), 0, ids, 1024, &n) == E2H_OK &&
              e2h_seq_create(e, ids, n, NULL, &root) == E2H_OK);
        const char *sa[32], *sb[32];
        int na = case_steps(ca, sa, NULL, 0), nb = case_steps(cb, sb, NULL, 0);
        int64_t before = e2h_engine_prm_tokens(e);
        // each step tokenized on its own, as the fixture (and a sampling policy) does
        for (int k = 0; k < 3 && root; k++) {
            char buf[512];
            snprintf(buf, sizeof buf, "%s\n\n", sa[k]);
            CHECK(append_text(e, root, buf) == 0);
            float sc;
            CHECK(e2h_prm_score_new_steps(e, &root, 1, 0, &sc) == E2H_OK);
        }
        CHECK(root && e2h_seq_fork(e, root, 2, ch) == E2H_OK);
        for (int b = 0; b < 2 && ch[0]; b++) {
            const char **st = b ? sb : sa;
            int ns = b ? nb : na;
            for (int k = 3; k < ns; k++) {
                char buf[512];
                snprintf(buf, sizeof buf, "%s\n\n", st[k]);
                CHECK(append_text(e, ch[b], buf) == 0);
                float sc;
                CHECK(e2h_prm_score_new_steps(e, &ch[b], 1, 0, &sc) == E2H_OK);
            }
            const float *inc;
            int got = e2h_seq_step_scores(ch[b], &inc);
            CHECK(got == ns);
            const cJSON *want = cJSON_GetObjectItem(cJSON_GetObjectItem(b ? cb : ca, "step_scores"), "head_mlp");
            if (got == ns) {
                double d = max_abs_diff(inc, want, ns, 1.0);
                CHECKF(d < 1e-4, "head branch %d: vs reference %g", b, d);
            }
        }
        CHECK(e2h_engine_prm_tokens(e) == before); // no PRM forward for the head
        e2h_seq_release(e, ch[0]);
        e2h_seq_release(e, ch[1]);
        e2h_seq_release(e, root);
        kv_empty(e, "head policy");
    }
    e2h_engine_free(e);
    e2h_prm_free(p);
    e2h_model_free(pol);
    cJSON_Delete(x);
}


// One --kv-mem budget split between the policy's pool and the PRM's by bytes per token.
TEST(kv_budget_split) {
    if (!fixtures_present()) return;
    char err[512];
    e2h_model *pol = NULL;
    CHECK(e2h_model_load(FIX "/policy", NULL, &pol, err, sizeof err) == E2H_OK);
    e2h_prm *p = load_prm("math_shepherd", "math-shepherd");
    e2h_engine *e = pol && p ? engine_on(pol, 16) : NULL;
    if (!e) { e2h_prm_free(p); e2h_model_free(pol); CHECK(0); return; }
    e2h_kv_stats a, b, c;
    e2h_engine_get_kv_stats(e, &a);
    e2h_seq *s = policy_root(e, "What?");
    CHECK(s == NULL); // no PRM attached: set_problem refuses
    int32_t id = 1;
    CHECK(e2h_seq_create(e, &id, 1, NULL, &s) == E2H_OK);
    CHECK(e2h_engine_attach_prm(e, p) == E2H_OK); // a live sequence does not prevent it
    e2h_seq_release(e, s);
    CHECK(e2h_engine_attach_prm(e, p) == E2H_ERR_INVALID_ARG); // one PRM per engine
    e2h_engine_get_kv_stats(e, &b);
    e2h_engine_get_kv_stats(prm_engine_of(e, 0), &c);
    double total = (double)a.blocks_total * a.block_bytes;
    double used = (double)b.blocks_total * b.block_bytes + (double)c.blocks_total * c.block_bytes;
    CHECKF(b.blocks_total > 0 && c.blocks_total > 0 && used <= total && used > 0.9 * total,
           "split %d + %d blocks of %g bytes budget", b.blocks_total, c.blocks_total, total);
    // same number of tokens in each pool (within a block)
    CHECK(abs(b.blocks_total - c.blocks_total) <= 1);
    e2h_engine_free(e);
    e2h_prm_free(p);
    e2h_model_free(pol);
}


// Attaching while sequences exist: refused (KV_FULL, nothing changed) while they reference more
// blocks than the policy's share of the split; cached blocks are evicted. A tree whose root was
// generated before the attach is then scored (set_problem after the attach): the same scores as
// from scratch (1e-5) and as the torch reference (1e-4).
TEST(attach_after_sequences) {
    if (!fixtures_present()) return;
    char err[512];
    e2h_model *pol = NULL;
    CHECK(e2h_model_load(FIX "/policy", NULL, &pol, err, sizeof err) == E2H_OK);
    cJSON *x = load_expected("math_shepherd");
    e2h_prm *p = load_prm("math_shepherd", "math-shepherd");
    e2h_engine *e = pol && p && x ? engine_on(pol, 1) : NULL;
    if (!e) { cJSON_Delete(x); e2h_prm_free(p); e2h_model_free(pol); CHECK(0); return; }
    e2h_kv_stats a, b, c;
    e2h_engine_get_kv_stats(e, &a);
    // a sequence holding ~3/4 of the pool: more than the policy's half after the split
    int32_t n_big = a.blocks_total * 4 * 3 / 4, ids[4096];
    CHECK(n_big > 64 && n_big <= 4096);
    if (n_big > 4096) n_big = 4096;
    for (int32_t i = 0; i < n_big; i++) ids[i] = 1 + (i * 7) % 500;
    e2h_seq *big = NULL;
    CHECK(e2h_seq_create(e, ids, n_big, NULL, &big) == E2H_OK && e2h_engine_sync(e, &big, 1) == E2H_OK);
    e2h_engine_get_kv_stats(e, &b);
    CHECK(e2h_engine_attach_prm(e, p) == E2H_ERR_KV_FULL &&
          strstr(e2h_engine_last_error(e), "reference"));
    CHECK(e2h_engine_prm(e) == NULL && prm_engine_of(e, 0) == NULL);
    e2h_engine_get_kv_stats(e, &c);
    CHECK(c.blocks_total == a.blocks_total && c.blocks_used == b.blocks_used);
    e2h_seq_release(e, big); // its blocks stay cached (prefix index): evicted by the split
    // the root of a tree, generated (three steps) before the attach
    const cJSON *ca = cJSON_GetArrayItem(cJSON_GetObjectItem(x, "cases"), 1);
    const cJSON *cb = cJSON_GetArrayItem(cJSON_GetObjectItem(x, "cases"), 2);
    const char *sa[32], *sb[32];
    int na = case_steps(ca, sa, NULL, 0), nb = case_steps(cb, sb, NULL, 0);
    const char *problem = cJSON_GetObjectItem(ca, "problem")->valuestring;
    const e2h_tokenizer *t = e2h_model_tokenizer(pol);
    int32_t n = 0;
    e2h_seq *root = NULL;
    CHECK(e2h_tokenize(t, problem, strlen(problem), 1, ids, 4096, &n) == E2H_OK &&
          e2h_seq_create(e, ids, n, NULL, &root) == E2H_OK);
    for (int k = 0; k < 3 && root; k++)
        CHECK(append_text(e, root, sa[k]) == 0 && append_text(e, root, "\n\n") == 0);
    CHECK(root && e2h_engine_sync(e, &root, 1) == E2H_OK);
    e2h_engine_get_kv_stats(e, &b);
    CHECK(b.blocks_cached > 0);
    CHECKF(e2h_engine_attach_prm(e, p) == E2H_OK, "%s", e2h_engine_last_error(e));
    e2h_engine_get_kv_stats(e, &b);
    e2h_engine_get_kv_stats(prm_engine_of(e, 0), &c);
    CHECKF(abs(b.blocks_total - c.blocks_total) <= 1 && b.blocks_total + c.blocks_total <= a.blocks_total &&
           b.blocks_used + b.blocks_cached <= b.blocks_total,
           "split %d + %d of %d blocks, policy uses %d + %d cached", b.blocks_total, c.blocks_total,
           a.blocks_total, b.blocks_used, b.blocks_cached);
    CHECK(root && e2h_seq_set_problem(e, root, problem) == E2H_OK);
    e2h_seq *ch[2] = {NULL, NULL};
    CHECK(root && e2h_seq_fork(e, root, 2, ch) == E2H_OK);
    for (int br = 0; br < 2 && ch[br]; br++) {
        const char **st = br ? sb : sa;
        int ns = br ? nb : na;
        for (int k = 3; k < ns; k++)
            CHECK(append_text(e, ch[br], st[k]) == 0 && (k == ns - 1 || append_text(e, ch[br], "\n\n") == 0));
    }
    float last[2];
    CHECKF(ch[1] && e2h_prm_score_new_steps(e, ch, 2, 1, last) == E2H_OK, "%s", e2h_engine_last_error(e));
    for (int br = 0; br < 2 && ch[br]; br++) {
        const float *inc = NULL;
        int ns = br ? nb : na, got = e2h_seq_step_scores(ch[br], &inc);
        float full[32];
        CHECKF(got == ns, "branch %d: %d scores, want %d", br, got, ns);
        CHECK(e2h_prm_score_texts(e, problem, br ? sb : sa, ns, full) == E2H_OK);
        for (int k = 0; k < ns && got == ns; k++)
            CHECKF(fabs(inc[k] - full[k]) <= 1e-5, "branch %d step %d: %g vs %g", br, k, inc[k], full[k]);
        const cJSON *want = cJSON_GetObjectItem(br ? cb : ca, "step_scores");
        double d = got == ns ? max_abs_diff(inc, want, ns, 1.0) : 1;
        CHECKF(d < 1e-4, "branch %d vs reference: %g", br, d);
    }
    for (int br = 0; br < 2; br++)
        if (ch[br]) e2h_seq_release(e, ch[br]);
    if (root) e2h_seq_release(e, root);
    kv_empty(e, "policy");
    kv_empty(prm_engine_of(e, 0), "math_shepherd");
    e2h_engine_free(e);
    e2h_prm_free(p);
    e2h_model_free(pol);
    cJSON_Delete(x);
}

// Scores do not depend on batching: three sequences scored in one call equal each scored alone,
// with 1 and 2 threads.
TEST(batch_and_threads_invariant) {
    if (!fixtures_present()) return;
    char err[512];
    e2h_model *pol = NULL;
    CHECK(e2h_model_load(FIX "/policy", NULL, &pol, err, sizeof err) == E2H_OK);
    e2h_prm *p = load_prm("value_head", "value-head");
    static const char *steps[3] = {"We factor it.\n\n", "So x = 2 or x = 3.\n\n", "The sum is 5.\n\n"};
    float got[2][2][3];
    for (int th = 0; th < 2 && pol && p; th++) {
        for (int mode = 0; mode < 2; mode++) {
            e2h_engine_opts eo;
            memset(&eo, 0, sizeof eo);
            eo.n_threads = th + 1;
            eo.kv_mem_gib = 16 / 1024.0;
            e2h_engine *e = NULL;
            CHECK(e2h_engine_init(pol, &eo, &e, err, sizeof err) == E2H_OK);
            CHECK(e && e2h_engine_attach_prm(e, p) == E2H_OK);
            e2h_seq *s[3] = {NULL, NULL, NULL};
            for (int i = 0; i < 3 && e; i++) {
                s[i] = policy_root(e, "Find the sum of the roots.");
                for (int k = 0; k <= i && s[i]; k++) CHECK(append_text(e, s[i], steps[k]) == 0);
            }
            if (mode == 0) CHECK(e2h_prm_score_new_steps(e, s, 3, 0, got[th][mode]) == E2H_OK);
            else
                for (int i = 0; i < 3; i++)
                    CHECK(e2h_prm_score_new_steps(e, &s[i], 1, 0, &got[th][mode][i]) == E2H_OK);
            for (int i = 0; i < 3; i++) e2h_seq_release(e, s[i]);
            e2h_engine_free(e);
        }
    }
    for (int th = 0; th < 2; th++)
        for (int i = 0; i < 3; i++)
            CHECKF(got[th][0][i] == got[0][1][i], "threads %d seq %d: batched %.9g vs alone %.9g",
                   th + 1, i, got[th][0][i], got[0][1][i]);
    e2h_prm_free(p);
    e2h_model_free(pol);
}


// Sibling mirrors share the problem: 16 branches of one problem scored for the first time in
// one call compute the problem's PRM tokens once, plus each branch's own tokens (per PRM
// engine: implicit has two); their scores equal from-scratch scoring (1e-5).
TEST(sibling_mirrors_share_problem) {
    if (!fixtures_present()) return;
    char err[512];
    e2h_model *pol = NULL;
    CHECK(e2h_model_load(FIX "/policy", NULL, &pol, err, sizeof err) == E2H_OK);
    static const char *dirs[3][2] = {{"value_head", "value-head"}, {"qwen_prm", "qwen-prm"},
                                     {"implicit", "implicit"}};
    static const char *first[16] = {"First", "Next", "Then", "So", "Now", "Hence", "Thus", "We",
                                    "Let", "Since", "Note", "Consider", "Write", "Take", "Observe",
                                    "Recall"};
    const char *problem = "Find the sum of the roots of $x^2-5x+6=0$.";
    enum { NB = 16 };
    for (int f = 0; f < 3 && pol; f++) {
        e2h_prm *p = load_prm(dirs[f][0], dirs[f][1]);
        e2h_engine *e = p ? engine_on(pol, 64) : NULL;
        CHECKF(e && e2h_engine_attach_prm(e, p) == E2H_OK, "%s", dirs[f][0]);
        if (!e) { e2h_prm_free(p); continue; }
        int impl = !strcmp(dirs[f][0], "implicit");
        char text[NB][96];
        const char *steps[NB][1];
        for (int b = 0; b < NB; b++) {
            snprintf(text[b], sizeof text[b], "%s, %d times %d is %d.", first[b], b + 2, b + 3,
                     (b + 2) * (b + 3));
            steps[b][0] = text[b];
        }
        // the expected count from the layouts: the tokens all branches share (up to the first
        // token any branch needs computed by itself) once, then each branch's own
        prm_build lb[NB];
        int32_t L = INT32_MAX, need[NB];
        for (int b = 0; b < NB; b++) {
            CHECK(prm_build_layout(p, &lb[b], problem, steps[b], 1, 0, err, sizeof err) == E2H_OK);
            need[b] = (impl ? lb[b].span1[0] - 1 : lb[b].read[0]) + 1;
            int32_t own = impl ? lb[b].span0[0] - 1 : lb[b].read[0]; // first token needed alone
            if (own < L) L = own;
        }
        for (int b = 1; b < NB; b++) {
            int32_t l = 0;
            while (l < L && lb[b].ids[l] == lb[0].ids[l]) l++;
            L = l;
        }
        int64_t want = L;
        for (int b = 0; b < NB; b++) want += need[b] - L;
        want *= impl ? 2 : 1;
        e2h_seq *root = policy_root(e, problem), *br[NB] = {NULL};
        CHECK(root && e2h_seq_fork(e, root, NB, br) == E2H_OK);
        for (int b = 0; b < NB && br[0]; b++)
            CHECK(append_text(e, br[b], text[b]) == 0 && append_text(e, br[b], "\n\n") == 0);
        int64_t t0 = e2h_engine_prm_tokens(e);
        float sc[NB];
        e2h_status st = br[0] ? e2h_prm_score_new_steps(e, br, NB, 0, sc) : E2H_ERR_INVALID_ARG;
        CHECKF(st == E2H_OK, "%s: %s", dirs[f][0], e2h_engine_last_error(e));
        int64_t used = e2h_engine_prm_tokens(e) - t0;
        CHECKF(used == want, "%s: %lld PRM tokens for %d new branches, want %lld (problem part %d "
               "once + each branch's own)", dirs[f][0], (long long)used, NB, (long long)want, L);
        CHECKF(L > 10, "%s: shared prefix of %d tokens", dirs[f][0], L);
        for (int b = 0; b < NB && !st; b++) {
            float full;
            CHECK(e2h_prm_score_texts(e, problem, steps[b], 1, &full) == E2H_OK);
            // score_texts treats its text as final; value-head / qwen-prm / implicit reads of a
            // step do not depend on it
            CHECKF(fabs(full - sc[b]) <= 1e-5 * (impl ? 1000 : 1), "%s branch %d: %g vs %g",
                   dirs[f][0], b, sc[b], full);
        }
        for (int b = 0; b < NB; b++) {
            prm_build_free(&lb[b]);
            if (br[b]) e2h_seq_release(e, br[b]);
        }
        if (root) e2h_seq_release(e, root);
        for (int j = 0; j < 2; j++)
            if (prm_engine_of(e, j)) kv_empty(prm_engine_of(e, j), dirs[f][0]);
        e2h_engine_free(e);
        e2h_prm_free(p);
    }
    e2h_model_free(pol);
}

// Scoring given texts reuses the cached blocks of an earlier text with the same problem and
// first steps (the prefix index), so the second costs only its new part.
TEST(score_texts_reuses_prefix) {
    if (!fixtures_present()) return;
    cJSON *x = load_expected("qwen_prm");
    e2h_prm *p = load_prm("qwen_prm", "qwen-prm");
    e2h_engine *e = p ? engine_with_prm(p) : NULL;
    const cJSON *ca = x ? cJSON_GetArrayItem(cJSON_GetObjectItem(x, "cases"), 1) : NULL;
    const cJSON *cb = x ? cJSON_GetArrayItem(cJSON_GetObjectItem(x, "cases"), 2) : NULL;
    CHECK(e && ca && cb);
    if (e && ca && cb) {
        const char *sa[32], *sb[32];
        int na = case_steps(ca, sa, NULL, 0), nb = case_steps(cb, sb, NULL, 0);
        float sc[32];
        int64_t t0 = e2h_engine_prm_tokens(e);
        CHECK(e2h_prm_score_texts(e, cJSON_GetObjectItem(ca, "problem")->valuestring, sa, na, sc) == E2H_OK);
        int64_t t1 = e2h_engine_prm_tokens(e);
        CHECK(e2h_prm_score_texts(e, cJSON_GetObjectItem(cb, "problem")->valuestring, sb, nb, sc) == E2H_OK);
        int64_t t2 = e2h_engine_prm_tokens(e);
        CHECKF(t2 - t1 < (t1 - t0) * 3 / 5, "first text %lld PRM tokens, second %lld",
               (long long)(t1 - t0), (long long)(t2 - t1));
        double d = max_abs_diff(sc, cJSON_GetObjectItem(cb, "step_scores"), nb, 1.0);
        CHECKF(d < 1e-4, "reused prefix: scores off by %g", d);
    }
    e2h_engine_free(e);
    e2h_prm_free(p);
    cJSON_Delete(x);
}

TEST(split_and_aggregate) {
    e2h_prm_opts o = e2h_prm_opts_default();
    (void)o;
    const char *sol = "Step one.\n\nStep two.\n\n\n\n# Answer\n\n42";
    size_t st[8], ln[8];
    int n = e2h_prm_split_solution(NULL, sol, strlen(sol), st, ln, 8);
    CHECK(n == 3);
    CHECK(n == 3 && ln[0] == 9 && !strncmp(sol + st[0], "Step one.", 9));
    CHECK(n == 3 && !strncmp(sol + st[2], "# Answer\n\n42", ln[2]) && ln[2] == 12);
    float s[3] = {0.5f, 0.25f, 1.0f};
    CHECK(e2h_prm_aggregate(s, 3, E2H_AGG_MIN) == 0.25f);
    CHECK(fabsf(e2h_prm_aggregate(s, 3, E2H_AGG_PROD) - 0.125f) < 1e-7f);
    CHECK(fabsf(e2h_prm_aggregate(s, 3, E2H_AGG_MEAN) - 1.75f / 3) < 1e-7f);
    CHECK(e2h_prm_aggregate(s, 3, E2H_AGG_LAST) == 1.0f);
    CHECK(isnan(e2h_prm_aggregate(s, 0, E2H_AGG_MIN)));
}

// ---------------------------------------------------------------- heads that read a policy layer

// A linear head file as tools/train_head.py writes it (w (1, n_in), b (1), e2h-head metadata)
// with metadata features feat and feature_layer fl (NULL: no such field). 0, or -1.
static int write_linear_head(const char *path, const e2h_model_info *mi, const char *feat,
                             const char *fl, const float *w, int n_in, float b) {
    cJSON *h = cJSON_CreateObject(), *md = cJSON_AddObjectToObject(h, "__metadata__");
    char dim[16];
    snprintf(dim, sizeof dim, "%d", mi->dim);
    const char *kv[][2] = {{"format", "e2h-head"}, {"version", "1"}, {"kind", "linear"}, {"dim", dim},
                           {"model_id", mi->model_id}, {"layer", "final"}, {"pooling", "last"},
                           {"step_delimiter", "\n\n"}, {"features", feat}, {"activation", "relu"},
                           {"feature_layer", fl}, {"command", "tests/test_prm.c"}};
    for (size_t k = 0; k < sizeof kv / sizeof kv[0]; k++)
        if (kv[k][1]) cJSON_AddStringToObject(md, kv[k][0], kv[k][1]);
    int shape_w[2] = {1, n_in}, shape_b[1] = {1}, off_w[2] = {0, 4 * n_in}, off_b[2] = {4 * n_in, 4 * n_in + 4};
    cJSON *tw = cJSON_AddObjectToObject(h, "w"), *tb = cJSON_AddObjectToObject(h, "b");
    cJSON_AddStringToObject(tw, "dtype", "F32");
    cJSON_AddItemToObject(tw, "shape", cJSON_CreateIntArray(shape_w, 2));
    cJSON_AddItemToObject(tw, "data_offsets", cJSON_CreateIntArray(off_w, 2));
    cJSON_AddStringToObject(tb, "dtype", "F32");
    cJSON_AddItemToObject(tb, "shape", cJSON_CreateIntArray(shape_b, 1));
    cJSON_AddItemToObject(tb, "data_offsets", cJSON_CreateIntArray(off_b, 2));
    char *js = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    FILE *f = js ? fopen(path, "wb") : NULL;
    int ok = f != NULL;
    if (f) {
        size_t n = strlen(js);
        uint64_t hl = (n + 7) / 8 * 8; // the header padded with spaces to 8 bytes (little-endian host)
        ok = fwrite(&hl, 8, 1, f) == 1 && fwrite(js, 1, n, f) == n;
        for (size_t i = n; ok && i < hl; i++) ok = fputc(' ', f) != EOF;
        ok = ok && fwrite(w, 4, (size_t)n_in, f) == (size_t)n_in && fwrite(&b, 4, 1, f) == 1;
        ok = !fclose(f) && ok;
    }
    free(js);
    return ok ? 0 : -1;
}

// Loads the head at path on pol; checks the status and (on failure) that the message names
// feature_layer (and need, if given). want -1: any error. Returns the PRM or NULL.
static e2h_prm *load_head_expect(const char *path, const e2h_model *pol, int want, const char *need,
                                 const char *what) {
    char err[1024] = "";
    e2h_prm *p = NULL;
    e2h_status st = e2h_prm_load(path, pol, NULL, &p, err, sizeof err);
    CHECKF(want < 0 ? st != E2H_OK : (int)st == want, "%s: %s (%s), want %s", what, e2h_status_name(st), err,
           want < 0 ? "an error" : e2h_status_name((e2h_status)want));
    CHECKF(want == E2H_OK || (!p && strstr(err, "feature_layer") && (!need || strstr(err, need))),
           "%s: message '%s'", what, err);
    if (st != E2H_OK && p) { e2h_prm_free(p); p = NULL; }
    return p;
}

// Heads whose features read policy layer L (metadata feature_layer; "layer" and
// "hidden+mean_logprob+layer"), as tests/py/test_head_layer.py through Python but from C alone:
// the head loads and e2h_prm_feature_layer says L; an out-of-range, missing or stray
// feature_layer is refused; e2h_prm_score_texts on an engine keeping layer L equals
// sigmoid(w . x + b) recomputed here, x = [final hidden, the step's mean log-prob, layer-L row]
// captured by teacher-forcing each fixture case in the head layout (expected.json ids and read
// positions), within 1e-4; the same recomputation with the final hidden row in place of the
// layer row must differ (the comparison can tell the layer apart).
#define HL_L 1 // of the fixture policy's 2 layers: an intermediate one
#define HL_ROWS 64
TEST(head_reads_policy_layer) {
    if (!fixtures_present()) return;
    cJSON *x = load_expected("policy");
    char err[512];
    e2h_model *pol = NULL;
    CHECK(x && e2h_model_load(FIX "/policy", NULL, &pol, err, sizeof err) == E2H_OK);
    char dir[] = "/tmp/e2h_test_prm_XXXXXX";
    int have_dir = mkdtemp(dir) != NULL;
    CHECK(have_dir);
    if (!x || !pol || !have_dir) { cJSON_Delete(x); e2h_model_free(pol); return; }
    e2h_model_info mi;
    e2h_model_get_info(pol, &mi);
    const int dim = mi.dim, n_full = 2 * dim + 1;
    CHECK(mi.n_layers >= 2 && dim <= 256);

    // features at every step's read position: [h (dim), mean log-prob, layer L (dim)]
    static double feat[HL_ROWS][2 * 256 + 1];
    int rows = 0, case_rows[8] = {0}, n_cases = 0;
    e2h_engine_opts eo = e2h_engine_opts_default();
    eo.kv_mem_gib = 64 / 1024.0;
    eo.n_threads = 1;
    eo.feature_layer = HL_L;
    e2h_engine *fe = NULL;
    CHECKF(e2h_engine_init(pol, &eo, &fe, err, sizeof err) == E2H_OK, "%s", err);
    const cJSON *c, *cases = cJSON_GetObjectItem(x, "cases"), *todo = fe ? cases : NULL;
    cJSON_ArrayForEach(c, todo) {
        const cJSON *jids = cJSON_GetObjectItem(c, "ids"), *rg = cJSON_GetObjectItem(c, "step_ranges");
        const cJSON *pos = cJSON_GetObjectItem(c, "positions");
        int n = cJSON_GetArraySize(jids), np = cJSON_GetObjectItem(c, "n_prompt")->valueint;
        int ns = cJSON_GetArraySize(rg);
        int32_t *ids = malloc((size_t)n * sizeof *ids);
        for (int i = 0; ids && i < n; i++) ids[i] = json_int_at(jids, i);
        e2h_seq *s = NULL;
        e2h_status st = ids && n_cases < 8 && rows + ns <= HL_ROWS ? e2h_seq_create(fe, ids, np, NULL, &s)
                                                                  : E2H_ERR_INVALID_ARG;
        for (int k = 0; !st && k < ns; k++) {
            const cJSON *r = cJSON_GetArrayItem(rg, k);
            int a = json_int_at(r, 0), b = json_int_at(r, 1);
            int32_t off = json_int_at(pos, k) - a;
            e2h_append_opts ao = e2h_append_opts_default();
            ao.capture = &off;
            ao.n_capture = 1;
            st = e2h_seq_append_ex(fe, s, ids + a, b - a, &ao);
        }
        if (!st) st = e2h_engine_sync(fe, &s, 1);
        CHECKF(st == E2H_OK, "teacher-forcing: %s", e2h_engine_last_error(fe));
        for (int k = 0; !st && k < ns; k++) {
            const cJSON *r = cJSON_GetArrayItem(rg, k);
            int a = json_int_at(r, 0), b = json_int_at(r, 1), p = json_int_at(pos, k);
            const float *h = e2h_seq_hidden_at(s, p), *hl = e2h_seq_hidden_layer_at(s, p);
            const float *lp = e2h_seq_logprobs(s);
            CHECK(h && hl && lp);
            if (!h || !hl || !lp) { st = E2H_ERR_INVALID_ARG; break; }
            double m = 0;
            for (int i = a; i < b; i++) m += lp[i];
            double *xr = feat[rows + k];
            for (int i = 0; i < dim; i++) xr[i] = h[i], xr[dim + 1 + i] = hl[i];
            xr[dim] = m / (b - a);
        }
        if (s) e2h_seq_release(fe, s);
        free(ids);
        if (st) break;
        case_rows[n_cases++] = ns;
        rows += ns;
    }
    e2h_engine_free(fe);
    double diff_hl = 0; // max |h - hl| over the rows: the layer is not the final state
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < dim; i++) diff_hl = fmax(diff_hl, fabs(feat[r][i] - feat[r][dim + 1 + i]));
    CHECKF(rows >= 6 && diff_hl > 1e-2, "%d rows, max |hidden - layer| %g", rows, diff_hl);

    static const char *feats[2] = {"layer", "hidden+mean_logprob+layer"};
    for (int fk = 0; fk < 2 && rows >= 6; fk++) {
        int col0 = fk ? 0 : dim + 1, n_in = fk ? n_full : dim; // x's columns the head reads
        // random weights (an LCG), scaled so the logits spread around 0 with std ~2
        float w[2 * 256 + 1];
        uint64_t rng = 0x9e3779b97f4a7c15ull + (uint64_t)fk;
        for (int i = 0; i < n_in; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            w[i] = (float)(((double)(rng >> 11) / 9007199254740992.0) * 2 - 1);
        }
        double z[HL_ROWS], mean = 0, var = 0;
        for (int r = 0; r < rows; r++) {
            z[r] = 0;
            for (int i = 0; i < n_in; i++) z[r] += (double)w[i] * feat[r][col0 + i];
            mean += z[r] / rows;
        }
        for (int r = 0; r < rows; r++) var += (z[r] - mean) * (z[r] - mean) / rows;
        double scale = var > 0 ? 2 / sqrt(var) : 1;
        for (int i = 0; i < n_in; i++) w[i] = (float)(w[i] * scale);
        float bias = (float)(-mean * scale);
        char path[512];
        snprintf(path, sizeof path, "%s/head_%d.safetensors", dir, fk);
        CHECK(write_linear_head(path, &mi, feats[fk], "1", w, n_in, bias) == 0);
        e2h_prm *p = load_head_expect(path, pol, E2H_OK, NULL, feats[fk]);
        CHECK(p && !strcmp(e2h_prm_protocol(p), "head") && e2h_prm_feature_layer(p) == HL_L);
        // an engine keeping another layer (or none) is refused
        eo.feature_layer = 0;
        e2h_engine *e = NULL;
        CHECK(p && e2h_engine_init(pol, &eo, &e, err, sizeof err) == E2H_OK);
        CHECK(e && e2h_engine_attach_prm(e, p) == E2H_ERR_INVALID_ARG);
        e2h_engine_free(e);
        e = NULL;
        eo.feature_layer = HL_L;
        CHECK(p && e2h_engine_init(pol, &eo, &e, err, sizeof err) == E2H_OK);
        CHECK(e && e2h_engine_attach_prm(e, p) == E2H_OK);
        double dmax = 0, dswap = 0;
        int r0 = 0, mid = 0, ci = 0;
        todo = e ? cases : NULL;
        cJSON_ArrayForEach(c, todo) {
            if (ci >= n_cases) break;
            const char *steps[32];
            int n = case_steps(c, steps, NULL, 0);
            float sc[32];
            CHECK(n == case_rows[ci]);
            e2h_status st = n == case_rows[ci]
                ? e2h_prm_score_texts(e, cJSON_GetObjectItem(c, "problem")->valuestring, steps, n, sc)
                : E2H_ERR_INVALID_ARG;
            CHECKF(st == E2H_OK, "%s: %s", feats[fk], e2h_engine_last_error(e));
            for (int k = 0; !st && k < n; k++) {
                const double *xr = feat[r0 + k];
                double zz = bias, zs = bias; // zs: the final hidden row where the layer row goes
                for (int i = 0; i < n_in; i++) {
                    int col = col0 + i;
                    zz += (double)w[i] * xr[col];
                    zs += (double)w[i] * (col > dim ? xr[col - dim - 1] : xr[col]);
                }
                double want = 1 / (1 + exp(-zz)), swapped = 1 / (1 + exp(-zs));
                dmax = fmax(dmax, fabs(sc[k] - want));
                dswap = fmax(dswap, fabs(sc[k] - swapped));
                mid += want > 0.05 && want < 0.95;
            }
            r0 += n;
            ci++;
        }
        CHECKF(r0 == rows && dmax < 1e-4, "%s: %d/%d rows scored, max |C score - recomputed| = %g", feats[fk],
               r0, rows, dmax);
        CHECKF(dswap > 1e-2 && 2 * mid >= rows, "%s: cannot tell the layer row apart (%g, %d of %d mid)",
               feats[fk], dswap, mid, rows);
        e2h_engine_free(e);
        e2h_prm_free(p);
        remove(path);
    }

    // refused: feature_layer out of range (0 or beyond the policy's layers), missing, not an
    // integer, or set on a head that reads no layer; the last layer is accepted
    static const struct {
        const char *feat, *fl;
        int want; // an e2h_status, -1: any error
    } bad[] = {
        {"layer", "3", E2H_ERR_INVALID_ARG}, {"layer", "0", E2H_ERR_INVALID_ARG},
        {"hidden+mean_logprob+layer", "99", E2H_ERR_INVALID_ARG}, {"hidden+mean_logprob+layer", "-1", -1},
        {"layer", NULL, E2H_ERR_FORMAT}, {"layer", "1x", E2H_ERR_FORMAT}, {"layer", "1.5", E2H_ERR_FORMAT},
        {"hidden", "1", E2H_ERR_INVALID_ARG}, {"layer", "2", E2H_OK},
    };
    char range[32];
    snprintf(range, sizeof range, "1..%d", mi.n_layers);
    static float zw[2 * 256 + 1];
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char path[512], what[128];
        snprintf(path, sizeof path, "%s/bad_%d.safetensors", dir, (int)k);
        snprintf(what, sizeof what, "features %s, feature_layer %s", bad[k].feat, bad[k].fl ? bad[k].fl : "missing");
        int n_in = !strcmp(bad[k].feat, "hidden") || !strcmp(bad[k].feat, "layer") ? dim : n_full;
        CHECK(write_linear_head(path, &mi, bad[k].feat, bad[k].fl, zw, n_in, 0) == 0);
        int reads_layer = strcmp(bad[k].feat, "hidden") != 0;
        e2h_prm *p = load_head_expect(path, pol, bad[k].want, reads_layer ? range : NULL, what);
        CHECKF(bad[k].want || (p && e2h_prm_feature_layer(p) == mi.n_layers), "%s", what);
        e2h_prm_free(p);
        remove(path);
    }
    rmdir(dir);
    e2h_model_free(pol);
    cJSON_Delete(x);
}

int main(void) {
    RUN(layouts_match_reference);
    RUN(detection);
    RUN(bad_input);
    RUN(gguf_heads);
    RUN(split_and_aggregate);
    RUN(scores_match_reference);
    RUN(head_scores_match_reference);
    RUN(e2h_paper_orm_oprm);
    RUN(incremental_matches_from_scratch);
    RUN(random_trees);
    RUN(head_incremental);
    RUN(head_reads_policy_layer);
    RUN(kv_budget_split);
    RUN(attach_after_sequences);
    RUN(batch_and_threads_invariant);
    RUN(score_texts_reuses_prefix);
    RUN(sibling_mirrors_share_problem);
    return TEST_SUMMARY();
}
