// tests/test_soak.c — a bounded soak: thousands of random tree operations (fork, batched
// extend greedy and sampled, append, sync, truncate, release, PRM step scoring) on two engines
// driven by two threads over one shared model and one shared PRM: the `head` PRM (reads the
// policy's hidden states), then a PRM *model* (the value-head fixture), whose mirrors live in a
// second engine per thread (its own KV pool, a split of the budget) and must follow the policy's
// sequences through fork / extend / truncate / release. Checks
// along the way and at the end: every call returns OK (or KV_FULL, answered by releasing
// sequences, as the API asks), the KV pool's internal invariants hold, scores are in [0, 1],
// every sequence released leaves no used block, and the two threads, given the same seed,
// produce the same tokens and scores (no cross-talk between engines). Deterministic seed; sized
// to run in seconds (and well under a minute under ASan / TSan on 2 loaded cores).
#include <math.h>
#include <pthread.h>
#include <stdint.h>

#include "../engine/kv.h"
#include "../engine/prm_hooks.h" // eng_kv_pool: the engine's pool, for kv_pool_validate
#include "../include/e2h.h"
#include "harness.h"

#define POLICY "tests/fixtures/prm/policy"
#define HEAD POLICY "/head_linear.safetensors"
#define PRM_MODEL "tests/fixtures/prm/value_head"
#define MAXS 24
#define N_OPS 4000
#define MAX_LEN 160

static const e2h_model *g_model;

typedef struct {
    uint64_t seed;
    const e2h_prm *prm;   // attached to the worker's engine
    int n_ops;
    // results
    int fails, kv_full, ops, scored, extended, forked, truncated, released, appended;
    uint64_t hash;        // over every token and score the thread saw
    int32_t blocks_used_end, blocks_total;
    int64_t preemptions;
    char msg[512];
} worker;

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return *s;
}
static int rndn(uint64_t *s, int n) { return (int)(rnd(s) % (uint64_t)n); }
static void mix(uint64_t *h, uint64_t v) { *h = (*h ^ v) * 0x100000001b3ull; }

#define FAILW(w, ...)                                                                 \
    do {                                                                              \
        if (!(w)->fails++) snprintf((w)->msg, sizeof (w)->msg, __VA_ARGS__);          \
    } while (0)

static void remove_at(e2h_seq **live, int *n, int i) { live[i] = live[--*n]; }

// Releases one random sequence other than those in keep[0..nk) (to answer KV_FULL).
static void shed(e2h_engine *e, e2h_seq **live, int *n_live, uint64_t *r, worker *w) {
    if (*n_live == 0) return;
    int i = rndn(r, *n_live);
    e2h_seq_release(e, live[i]);
    remove_at(live, n_live, i);
    w->released++;
}

static void check_pool(e2h_engine *e, worker *w, const char *when) {
    char err[256];
    if (kv_pool_validate(eng_kv_pool(e), err, sizeof err) != 0) FAILW(w, "kv invariants (%s): %s", when, err);
}

static e2h_seq *new_root(e2h_engine *e, uint64_t *r, worker *w, int sampled) {
    int32_t ids[24];
    int n = 4 + rndn(r, 20);
    for (int i = 0; i < n; i++) ids[i] = 3 + rndn(r, 580);
    e2h_sampling sp = e2h_sampling_default();
    if (sampled) {
        sp.temperature = 0.7f + 0.1f * (float)rndn(r, 5);
        sp.top_p = rndn(r, 2) ? 0.9f : 1.0f;
        sp.top_k = rndn(r, 2) ? 20 : 0;
        sp.seed = rnd(r);
    }
    e2h_seq *s = NULL;
    e2h_status st = e2h_seq_create(e, ids, n, &sp, &s);
    if (st != E2H_OK) { FAILW(w, "create: %s", e2h_status_name(st)); return NULL; }
    if (e2h_seq_set_problem(e, s, "What is 2 + 3?") != E2H_OK) FAILW(w, "set_problem");
    return s;
}

// Picks up to k distinct live sequences into out (returns how many).
static int pick(e2h_seq **live, int n_live, int k, uint64_t *r, e2h_seq **out) {
    int m = 0;
    for (int t = 0; t < k * 3 && m < k && n_live > 0; t++) {
        e2h_seq *s = live[rndn(r, n_live)];
        int dup = 0;
        for (int j = 0; j < m; j++) dup |= out[j] == s;
        if (!dup) out[m++] = s;
    }
    return m;
}

static void *run_worker(void *arg) {
    worker *w = arg;
    uint64_t r = w->seed;
    e2h_engine_opts eo = e2h_engine_opts_default();
    eo.n_threads = 1;
    eo.block_size = 4;                              // small blocks: partial-block COW everywhere
    eo.kv_mem_gib = 0.15 / 1024.0;                  // a small pool: KV_FULL does happen
    char err[512];
    e2h_engine *e = NULL;
    if (e2h_engine_init(g_model, &eo, &e, err, sizeof err) != E2H_OK) {
        FAILW(w, "engine: %s", err);
        return NULL;
    }
    if (e2h_engine_attach_prm(e, w->prm) != E2H_OK) {
        FAILW(w, "attach: %s", e2h_engine_last_error(e));
        e2h_engine_free(e);
        return NULL;
    }
    const e2h_tokenizer *tok = e2h_model_tokenizer(g_model);
    int32_t delim[8], n_delim = 0;
    if (e2h_tokenize(tok, "\n\n", 2, 0, delim, 8, &n_delim) != E2H_OK || n_delim < 1)
        FAILW(w, "tokenize delimiter");
    e2h_seq *live[MAXS];
    int n_live = 0;
    for (int op = 0; op < w->n_ops && !w->fails; op++) {
        w->ops++;
        if (n_live == 0) {
            e2h_seq *s = new_root(e, &r, w, rndn(&r, 2));
            if (!s) break;
            live[n_live++] = s;
        }
        int kind = rndn(&r, 100);
        e2h_status st = E2H_OK;
        if (kind < 12) { // fork 1..3 children of one sequence
            int i = rndn(&r, n_live), k = 1 + rndn(&r, 3);
            if (n_live + k > MAXS) { shed(e, live, &n_live, &r, w); continue; }
            e2h_seq *kids[3];
            st = e2h_seq_fork(e, live[i], k, kids);
            if (st == E2H_OK) {
                for (int j = 0; j < k; j++) live[n_live++] = kids[j];
                w->forked += k;
            }
        } else if (kind < 40) { // batched extend, short
            e2h_seq *b[4];
            int m = pick(live, n_live, 1 + rndn(&r, 4), &r, b);
            e2h_stop stop = e2h_stop_default();
            stop.max_tokens = 1 + rndn(&r, 6);
            stop.ignore_eos = rndn(&r, 2);
            static const char *const stops[] = {"\n\n", "."};
            if (rndn(&r, 4) == 0) { stop.stop_strings = stops; stop.n_stop_strings = 2; }
            st = e2h_seq_extend(e, b, m, &stop);
            if (st == E2H_OK) w->extended += m;
        } else if (kind < 55) { // append random tokens (lazy), sometimes a step delimiter
            e2h_seq *s = live[rndn(&r, n_live)];
            int32_t ids[12];
            int n = 1 + rndn(&r, 8);
            for (int j = 0; j < n; j++) ids[j] = 3 + rndn(&r, 580);
            if (rndn(&r, 2)) for (int j = 0; j < n_delim && n < 12; j++) ids[n++] = delim[j];
            e2h_append_opts ao = e2h_append_opts_default();
            ao.logprobs = rndn(&r, 2);
            st = e2h_seq_append_ex(e, s, ids, n, &ao);
            if (st == E2H_OK) w->appended++;
        } else if (kind < 62) { // sync a few
            e2h_seq *b[4];
            int m = pick(live, n_live, 1 + rndn(&r, 4), &r, b);
            st = e2h_engine_sync(e, b, m);
        } else if (kind < 74) { // truncate (at or after the prompt: the PRM scores the rest)
            e2h_seq *s = live[rndn(&r, n_live)];
            int32_t np = e2h_seq_n_prompt(s), len = e2h_seq_len(s);
            int32_t keep = np + rndn(&r, len - np + 1);
            if (keep < 1) keep = 1;
            st = e2h_seq_truncate(e, s, keep);
            if (st == E2H_OK) {
                w->truncated++;
                if (e2h_seq_len(s) != keep) FAILW(w, "truncate: len %d want %d", e2h_seq_len(s), keep);
            }
        } else if (kind < 86) { // PRM scoring of the new steps of a few sequences
            e2h_seq *b[4];
            float sc[4];
            int m = pick(live, n_live, 1 + rndn(&r, 4), &r, b);
            st = e2h_prm_score_new_steps(e, b, m, rndn(&r, 5) == 0, sc);
            if (st == E2H_OK) {
                w->scored += m;
                for (int j = 0; j < m; j++) {
                    if (!isnan(sc[j]) && !(sc[j] >= 0.0f && sc[j] <= 1.0f))
                        FAILW(w, "score %g out of [0,1]", sc[j]);
                    mix(&w->hash, isnan(sc[j]) ? 0x7fc00000u : (uint64_t)(int64_t)lrintf(sc[j] * 1e6f));
                }
            }
        } else if (kind < 96 && n_live > 1) { // release
            int i = rndn(&r, n_live);
            e2h_seq_release(e, live[i]);
            remove_at(live, &n_live, i);
            w->released++;
        } else { // a new root (greedy or sampled) sharing nothing
            if (n_live < MAXS) {
                e2h_seq *s = new_root(e, &r, w, rndn(&r, 2));
                if (s) live[n_live++] = s;
            }
        }
        if (st == E2H_ERR_KV_FULL) {
            w->kv_full++;
            shed(e, live, &n_live, &r, w);
            shed(e, live, &n_live, &r, w);
        } else if (st != E2H_OK) {
            FAILW(w, "op %d kind %d: %s: %s", op, kind, e2h_status_name(st), e2h_engine_last_error(e));
        }
        // keep sequences short: the soak is about the tree, not long contexts
        for (int i = 0; i < n_live; i++)
            if (e2h_seq_len(live[i]) > MAX_LEN) {
                int32_t np = e2h_seq_n_prompt(live[i]);
                if (e2h_seq_truncate(e, live[i], np + 4 > MAX_LEN ? 1 : np + 4) != E2H_OK)
                    FAILW(w, "truncate long: %s", e2h_engine_last_error(e));
            }
        if (op % 100 == 99) {
            check_pool(e, w, "periodic");
            for (int i = 0; i < n_live; i++) {
                const int32_t *t = e2h_seq_tokens(live[i]);
                for (int j = 0; j < e2h_seq_len(live[i]); j++) mix(&w->hash, (uint32_t)t[j]);
            }
        }
    }
    for (int i = 0; i < n_live; i++) {
        const float *sc;
        int n = e2h_seq_step_scores(live[i], &sc);
        for (int j = 0; j < n; j++)
            if (!isnan(sc[j]) && !(sc[j] >= 0.0f && sc[j] <= 1.0f)) FAILW(w, "step score %g", sc[j]);
        e2h_seq_release(e, live[i]);
        w->released++;
    }
    check_pool(e, w, "end");
    e2h_kv_stats ks;
    e2h_engine_get_kv_stats(e, &ks);
    w->blocks_used_end = ks.blocks_used;
    w->blocks_total = ks.blocks_total;
    w->preemptions = ks.preemptions;
    e2h_engine_free(e);
    return NULL;
}

// Two threads with one seed (they must agree exactly), then one thread with another seed
// (the hash depends on the ops, so the agreement check can fail).
static void soak(const e2h_prm *p, int n_ops, const char *what) {
    worker w[2] = {{.seed = 0x5eed5eedull, .prm = p, .n_ops = n_ops},
                   {.seed = 0x5eed5eedull, .prm = p, .n_ops = n_ops}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) CHECK(pthread_create(&th[i], NULL, run_worker, &w[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        printf("  %s, thread %d: %d ops, %d forks, %d extends, %d appends, %d truncates, %d scores, "
               "%d releases, %d KV_FULL, %lld preemptions, pool %d blocks\n", what, i, w[i].ops,
               w[i].forked, w[i].extended, w[i].appended, w[i].truncated, w[i].scored, w[i].released,
               w[i].kv_full, (long long)w[i].preemptions, w[i].blocks_total);
        CHECKF(w[i].fails == 0, "thread %d: %d failures, first: %s", i, w[i].fails, w[i].msg);
        CHECKF(w[i].blocks_used_end == 0, "thread %d: %d blocks still used", i, w[i].blocks_used_end);
        CHECK(w[i].ops == n_ops && w[i].extended > n_ops / 40 && w[i].scored > n_ops / 40 &&
              w[i].forked > n_ops / 80);
    }
    CHECKF(w[0].hash == w[1].hash, "same seed, different results: %016llx vs %016llx",
           (unsigned long long)w[0].hash, (unsigned long long)w[1].hash);
    worker w3 = {.seed = 0xabcdef12345ull, .prm = p, .n_ops = n_ops};
    run_worker(&w3);
    CHECKF(w3.fails == 0 && w3.blocks_used_end == 0, "seed 2: %s, %d blocks", w3.msg, w3.blocks_used_end);
    CHECK(w3.hash != w[0].hash);
}

TEST(two_engines_two_threads_soak) {
    char err[512];
    e2h_prm *p = NULL;
    CHECKF(e2h_prm_load(HEAD, g_model, NULL, &p, err, sizeof err) == E2H_OK, "%s", err);
    if (!p) return;
    soak(p, N_OPS, "head");
    e2h_prm_free(p);
}

// The same soak with a PRM model: each policy sequence has a mirror in the PRM engine (shared
// prefix blocks, forked / truncated / released with it), scored on demand; both pools small,
// so preemption happens in both engines.
TEST(two_engines_two_threads_prm_model_soak) {
    char err[512];
    e2h_prm_opts o = e2h_prm_opts_default();
    o.protocol = "value-head";
    e2h_prm *p = NULL;
    CHECKF(e2h_prm_load(PRM_MODEL, NULL, &o, &p, err, sizeof err) == E2H_OK, "%s", err);
    if (!p) return;
    soak(p, N_OPS / 2, "value-head model");
    e2h_prm_free(p);
}

int main(void) {
    char err[512];
    e2h_model *m = NULL;
    if (e2h_model_load(POLICY, NULL, &m, err, sizeof err) != E2H_OK) {
        printf("cannot load %s: %s\n", POLICY, err);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    g_model = m;
    RUN(two_engines_two_threads_soak);
    RUN(two_engines_two_threads_prm_model_soak);
    e2h_model_free(m);
    return TEST_SUMMARY();
}
