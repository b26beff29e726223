// tests/test_search.c — search and re-ranking on the tree API (engine/search/) with the
// default SmolLM2 model and a deterministic fake step scorer (a hash of the sequence's
// tokens, so scores depend only on the text written): beam search keeps exactly N/M beams
// per round and releases pruned branches at once (KV stats), DVTS and REBASE allotments,
// the same seed gives the same result across thread counts, step-wise sampling gives the
// same samples as one plain extend, KV exhaustion returns a clear status and leaks nothing,
// bad options are refused, and the selection rules (maj, best-of-N, weighted voting).
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../engine/search/search.h"
#include "../include/e2h.h"
#include "harness.h"

#define MODEL "weights/SmolLM2-135M-Instruct.Q4_1.gguf"

static e2h_model *g_model;
static int32_t g_prompt[512], g_n_prompt;

static e2h_engine *mk_engine(int threads, double kv_gib) {
    e2h_engine_opts o;
    memset(&o, 0, sizeof o);
    o.n_threads = threads;
    o.kv_mem_gib = kv_gib;
    return th_engine(g_model, &o);
}

// Fake PRM: a hash of the whole token sequence mapped to [0, 1].
typedef struct { int calls, finals; long seqs; } fake_ctx;
static e2h_status fake_score(void *ctx, e2h_engine *e, e2h_seq *const *seqs, int n, int is_final,
                             float *scores) {
    (void)e;
    fake_ctx *f = ctx;
    if (f) { f->calls++; f->finals += is_final; f->seqs += n; }
    for (int i = 0; i < n; i++) {
        uint64_t h = 1469598103934665603ull;
        const int32_t *t = e2h_seq_tokens(seqs[i]);
        for (int32_t j = 0; j < e2h_seq_len(seqs[i]); j++) h = (h ^ (uint64_t)t[j]) * 1099511628211ull;
        h ^= h >> 29;
        scores[i] = (float)((h >> 11) % 1000003) / 1000003.0f;
    }
    return E2H_OK;
}

static e2h_search_opts mk_opts(e2h_search_method m, int n, int w, fake_ctx *f) {
    e2h_search_opts o = e2h_search_opts_default();
    o.method = m;
    o.n = n;
    o.m = w;
    o.max_tokens = 40;
    o.max_rounds = 6;
    o.score = fake_score;
    o.score_ctx = f;
    return o;
}

// Per-round checks made from the on_round callback.
typedef struct {
    int n, m, method, rounds, bad_keep, bad_blocks, bad_alloc, prev_completed, max_kept;
} round_chk;
static void on_round(void *ctx, e2h_engine *e, const e2h_search_round_info *in) {
    round_chk *r = ctx;
    int new_done = in->n_completed - r->prev_completed;
    r->prev_completed = in->n_completed;
    r->rounds++;
    if (in->n_kept > r->max_kept) r->max_kept = in->n_kept;
    if (r->method == E2H_SEARCH_BEAM) {
        int keep = r->n / r->m, alive = in->n_generated - new_done;
        int want = alive < keep ? alive : keep;
        if (in->n_generated != r->n || (in->n_completed < r->n && in->n_kept != want)) r->bad_keep++;
    } else if (r->method == E2H_SEARCH_DVTS) {
        if (in->n_generated % r->m || in->n_kept > r->n / r->m) r->bad_keep++;
    } else if (r->method == E2H_SEARCH_REBASE) {
        // the N - finished budget is spread over the kept nodes (checked on the next round)
        if (in->n_kept > in->n_generated) r->bad_keep++;
    }
    // pruned branches are gone: the live sequences are exactly the kept ones, so the
    // bytes they would need alone equal the sum of the kept sequences' blocks
    e2h_kv_stats ks;
    e2h_engine_get_kv_stats(e, &ks);
    size_t want = 0;
    for (int i = 0; i < in->n_kept; i++)
        want += ((size_t)e2h_seq_len(in->kept[i]) + ks.block_size - 1) / ks.block_size * ks.block_bytes;
    if (ks.independent_bytes != want) r->bad_blocks++;
}

// One search by method m (N = n, M = w) with the fake scorer f and the per-round checks rc
// (reset here) on engine e.
static e2h_status run_round_checked(e2h_engine *e, e2h_search_method m, int n, int w, fake_ctx *f,
                                    round_chk *rc, e2h_search_result *r) {
    e2h_search_opts o = mk_opts(m, n, w, f);
    *rc = (round_chk){.n = n, .m = w, .method = m};
    o.on_round = on_round;
    o.round_ctx = rc;
    return e2h_search_run(e, g_prompt, g_n_prompt, &o, r);
}

TEST(beam_keeps_n_over_m_and_frees) {
    e2h_engine *e = mk_engine(1, 0);
    fake_ctx f = {0};
    round_chk rc;
    e2h_search_result r;
    e2h_status st = run_round_checked(e, E2H_SEARCH_BEAM, 8, 4, &f, &rc, &r);
    CHECKF(st == E2H_OK, "%s", e2h_engine_last_error(e));
    CHECKF(rc.rounds >= 2 && rc.bad_keep == 0 && rc.bad_blocks == 0,
           "rounds %d bad_keep %d bad_blocks %d", rc.rounds, rc.bad_keep, rc.bad_blocks);
    CHECK(rc.max_kept == 2);
    CHECKF(r.n_samples == 8, "%d samples", r.n_samples);
    CHECK(r.selected >= 0 && r.selected < r.n_samples);
    CHECK(r.policy_tokens > g_n_prompt && r.prm_tokens > 0 && r.rounds == rc.rounds);
    for (int i = 0; i < r.n_samples; i++) {
        const e2h_search_sample *s = &r.samples[i];
        // steps concatenate to the text; scores are the fake's, in [0, 1]
        char buf[8192] = "";
        for (int j = 0; j < s->n_steps; j++) strncat(buf, s->steps[j], sizeof buf - strlen(buf) - 1);
        CHECK(!strcmp(buf, s->text));
        for (int j = 0; j < s->n_steps; j++) CHECK(s->step_scores[j] >= 0 && s->step_scores[j] <= 1);
        CHECK(s->n_steps >= 1 && s->agg[E2H_AGG_LAST] == s->step_scores[s->n_steps - 1]);
        // every step but the last ends at the delimiter
        for (int j = 0; j + 1 < s->n_steps; j++) CHECK(strstr(s->steps[j], "\n\n") != NULL);
        CHECK(s->n_tokens <= 40);
    }
    // the selected sample has the best last-step score
    for (int i = 0; i < r.n_samples; i++) CHECK(r.samples[i].agg[E2H_AGG_LAST] <= r.samples[r.selected].agg[E2H_AGG_LAST]);
    e2h_kv_stats ks;
    e2h_engine_get_kv_stats(e, &ks);
    CHECKF(ks.blocks_used == 0 && ks.independent_bytes == 0, "blocks still used: %d", ks.blocks_used);
    e2h_search_result_free(&r);
    e2h_engine_free(e);
}

static int same_result(const e2h_search_result *a, const e2h_search_result *b) {
    if (a->n_samples != b->n_samples || a->selected != b->selected) return 0;
    for (int i = 0; i < a->n_samples; i++) {
        if (strcmp(a->samples[i].text, b->samples[i].text) || a->samples[i].n_steps != b->samples[i].n_steps)
            return 0;
        for (int j = 0; j < a->samples[i].n_steps; j++)
            if (a->samples[i].step_scores[j] != b->samples[i].step_scores[j]) return 0;
    }
    return 1;
}

TEST(deterministic_across_threads) {
    e2h_search_method ms[] = {E2H_SEARCH_BEAM, E2H_SEARCH_REBASE};
    for (int k = 0; k < 2; k++) {
        e2h_engine *e1 = mk_engine(1, 0), *e2 = mk_engine(2, 0);
        e2h_search_opts o = mk_opts(ms[k], 4, 2, NULL);
        o.max_rounds = 4;
        e2h_search_result r1, r2, r3;
        CHECK(e2h_search_run(e1, g_prompt, g_n_prompt, &o, &r1) == E2H_OK);
        CHECK(e2h_search_run(e2, g_prompt, g_n_prompt, &o, &r2) == E2H_OK);
        CHECKF(same_result(&r1, &r2), "%s differs between 1 and 2 threads", e2h_search_method_name(ms[k]));
        o.sampling.seed = 7; // and a different seed gives different samples
        CHECK(e2h_search_run(e1, g_prompt, g_n_prompt, &o, &r3) == E2H_OK);
        CHECK(!same_result(&r1, &r3));
        e2h_search_result_free(&r1);
        e2h_search_result_free(&r2);
        e2h_search_result_free(&r3);
        e2h_engine_free(e1);
        e2h_engine_free(e2);
    }
}

TEST(dvts_subtrees) {
    e2h_engine *e = mk_engine(1, 0);
    fake_ctx f = {0};
    round_chk rc;
    e2h_search_result r;
    CHECKF(run_round_checked(e, E2H_SEARCH_DVTS, 6, 3, &f, &rc, &r) == E2H_OK, "%s",
           e2h_engine_last_error(e));
    CHECKF(rc.bad_keep == 0 && rc.bad_blocks == 0 && rc.max_kept <= 2, "keep %d blocks %d", rc.bad_keep, rc.bad_blocks);
    CHECK(r.n_samples == 6);
    // within each subtree the M candidates share every step but the last
    for (int s = 0; s < 2; s++)
        for (int j = 1; j < 3; j++) {
            const e2h_search_sample *a = &r.samples[s * 3], *b = &r.samples[s * 3 + j];
            CHECK(a->n_steps == b->n_steps);
            for (int q = 0; q + 1 < a->n_steps && a->n_steps == b->n_steps; q++) CHECK(!strcmp(a->steps[q], b->steps[q]));
        }
    e2h_kv_stats ks;
    e2h_engine_get_kv_stats(e, &ks);
    CHECK(ks.blocks_used == 0);
    e2h_search_result_free(&r);
    e2h_engine_free(e);
}

TEST(rebase_allotment) {
    int w[4];
    float r1[3] = {0.9f, 0.8f, 0.1f}; // softmax(/0.1) = .731 .269 .0002 of 8 -> 5.85 2.15 0
    srch_rebase_allot(r1, 3, 8, 0.1f, w);
    CHECKF(w[0] == 6 && w[1] == 2 && w[2] == 0, "%d %d %d", w[0], w[1], w[2]);
    float r2[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    srch_rebase_allot(r2, 4, 6, 0.1f, w);
    CHECK(w[0] == 2 && w[1] == 2 && w[2] == 1 && w[3] == 1);
    srch_rebase_allot(r1, 3, 8, 100.0f, w); // hot: nearly even
    CHECK(w[0] == 3 && w[1] == 3 && w[2] == 2);
    if (!g_model) return;
    // a full run: every round spends exactly the remaining budget
    e2h_engine *e = mk_engine(1, 0);
    fake_ctx f = {0};
    round_chk rc;
    e2h_search_result r;
    CHECKF(run_round_checked(e, E2H_SEARCH_REBASE, 6, 1, &f, &rc, &r) == E2H_OK, "%s",
           e2h_engine_last_error(e));
    CHECK(rc.bad_keep == 0 && rc.bad_blocks == 0);
    CHECKF(r.n_samples == 6, "%d", r.n_samples);
    e2h_search_result_free(&r);
    e2h_engine_free(e);
}

// Step-wise sampling (stop at each "\n\n", continue) draws exactly the samples of one plain
// extend per child: the steps only pause the sequences. (A sample's text leaves out a final
// end-of-sequence token.)
TEST(stepwise_equals_plain_sampling) {
    e2h_engine *e = mk_engine(1, 0);
    e2h_search_opts o = mk_opts(E2H_SEARCH_MAJ, 3, 1, NULL);
    o.score = NULL;
    e2h_search_result r;
    CHECKF(e2h_search_run(e, g_prompt, g_n_prompt, &o, &r) == E2H_OK, "%s", e2h_engine_last_error(e));
    e2h_seq *root, *kids[3];
    CHECK(e2h_seq_create(e, g_prompt, g_n_prompt, &o.sampling, &root) == E2H_OK);
    CHECK(e2h_seq_fork(e, root, 3, kids) == E2H_OK);
    e2h_stop stop;
    memset(&stop, 0, sizeof stop);
    stop.max_tokens = 40;
    stop.ignore_eos = 0; // stop at EOS (the zero default, spelled out)
    CHECK(e2h_seq_extend(e, kids, 3, &stop) == E2H_OK);
    const e2h_tokenizer *t = e2h_model_tokenizer(g_model);
    for (int i = 0; i < 3 && r.n_samples == 3; i++) {
        char buf[8192];
        size_t len;
        e2h_detokenize(t, e2h_seq_tokens(kids[i]) + g_n_prompt, e2h_seq_len(kids[i]) - g_n_prompt -
                       (e2h_seq_stop_reason(kids[i]) == E2H_STOP_EOS), buf, sizeof buf, &len);
        CHECKF(!strcmp(buf, r.samples[i].text), "sample %d:\n[%s]\n[%s]", i, buf, r.samples[i].text);
        CHECK(isnan(r.samples[i].agg[E2H_AGG_MIN])); // no scorer
    }
    for (int i = 0; i < 3; i++) e2h_seq_release(e, kids[i]);
    e2h_seq_release(e, root);
    e2h_search_result_free(&r);
    // greedy equals a greedy extend
    o = mk_opts(E2H_SEARCH_GREEDY, 1, 1, NULL);
    CHECK(e2h_search_run(e, g_prompt, g_n_prompt, &o, &r) == E2H_OK);
    e2h_sampling g = e2h_sampling_default();
    CHECK(e2h_seq_create(e, g_prompt, g_n_prompt, &g, &root) == E2H_OK);
    CHECK(e2h_seq_extend(e, &root, 1, &stop) == E2H_OK);
    char buf[8192];
    size_t len;
    e2h_detokenize(t, e2h_seq_tokens(root) + g_n_prompt,
                   e2h_seq_len(root) - g_n_prompt - (e2h_seq_stop_reason(root) == E2H_STOP_EOS), buf, sizeof buf, &len);
    CHECK(r.n_samples == 1 && r.selected == 0 && !strcmp(buf, r.samples[0].text));
    e2h_seq_release(e, root);
    e2h_search_result_free(&r);
    e2h_engine_free(e);
}

// Overload, not failure: a search larger than the KV pool (8 branches of up to 40 tokens
// beside the prompt; the pool holds the prompt and 4 more blocks) preempts instead of failing,
// finishes, and gives exactly the results of a pool that holds everything.
TEST(search_larger_than_the_pool) {
    e2h_model_info mi;
    e2h_model_get_info(g_model, &mi);
    double block = 2.0 * mi.n_layers * mi.n_kv_heads * mi.head_dim * 4 * 16;
    int blocks = (g_n_prompt + 15) / 16 + 4;
    e2h_engine *e = mk_engine(1, (blocks + 0.5) * block / 1073741824.0), *big = mk_engine(1, 0);
    CHECK(e != NULL && big != NULL);
    e2h_search_method ms[] = {E2H_SEARCH_BEAM, E2H_SEARCH_BON, E2H_SEARCH_MAJ, E2H_SEARCH_DVTS,
                              E2H_SEARCH_REBASE};
    for (int k = 0; e && big && k < 5; k++) {
        e2h_search_opts o = mk_opts(ms[k], 8, 2, NULL);
        e2h_search_result r, rb;
        e2h_kv_stats k0, ks;
        e2h_engine_get_kv_stats(e, &k0);
        e2h_status st = e2h_search_run(e, g_prompt, g_n_prompt, &o, &r);
        const char *name = e2h_search_method_name(ms[k]);
        CHECKF(st == E2H_OK, "%s: %s: %s", name, e2h_status_name(st), e2h_engine_last_error(e));
        CHECK(e2h_search_run(big, g_prompt, g_n_prompt, &o, &rb) == E2H_OK);
        e2h_engine_get_kv_stats(e, &ks);
        printf("  %s: %d samples, %lld preemptions in a pool of %d blocks\n", name,
               st ? 0 : r.n_samples, (long long)(ks.preemptions - k0.preemptions), ks.blocks_total);
        CHECKF(ks.preemptions > k0.preemptions, "%s: the pool was not overloaded", name);
        CHECKF(!st && r.n_samples == 8 && same_result(&r, &rb), "%s: differs from a big pool", name);
        CHECKF(ks.blocks_used == 0, "%s leaves %d blocks", name, ks.blocks_used);
        if (!st) e2h_search_result_free(&r);
        e2h_search_result_free(&rb);
    }
    e2h_engine_free(e);
    e2h_engine_free(big);
}

TEST(bad_options) {
    e2h_engine *e = mk_engine(1, 0);
    e2h_search_result r;
    e2h_search_opts o = mk_opts(E2H_SEARCH_BEAM, 6, 4, NULL);
    CHECK(e2h_search_run(e, g_prompt, g_n_prompt, &o, &r) == E2H_ERR_INVALID_ARG);
    CHECK(strstr(e2h_engine_last_error(e), "divide") != NULL);
    o = mk_opts(E2H_SEARCH_DVTS, 4, 8, NULL);
    CHECK(e2h_search_run(e, g_prompt, g_n_prompt, &o, &r) == E2H_ERR_INVALID_ARG);
    o = mk_opts(E2H_SEARCH_BON, 4, 1, NULL);
    o.score = NULL;
    CHECK(e2h_search_run(e, g_prompt, g_n_prompt, &o, &r) == E2H_ERR_INVALID_ARG);
    CHECK(strstr(e2h_engine_last_error(e), "scorer") != NULL);
    o = mk_opts(E2H_SEARCH_MAJ, 0, 1, NULL);
    CHECK(e2h_search_run(e, g_prompt, g_n_prompt, &o, &r) == E2H_ERR_INVALID_ARG);
    o = mk_opts((e2h_search_method)42, 4, 1, NULL);
    CHECK(e2h_search_run(e, g_prompt, g_n_prompt, &o, &r) == E2H_ERR_INVALID_ARG);
    e2h_search_method m;
    CHECK(e2h_search_method_parse("rebase", &m) == 0 && m == E2H_SEARCH_REBASE);
    CHECK(e2h_search_method_parse("beams", &m) == -1);
    e2h_engine_free(e);
}

// Selection rules on hand-made samples.
TEST(selection_rules) {
    e2h_search_sample s[5];
    memset(s, 0, sizeof s);
    const char *keys[5] = {"1", "2", "2", NULL, "1"};
    float mins[5] = {0.9f, 0.2f, 0.3f, 0.99f, 0.1f};
    float prods[5] = {0.5f, 0.3f, 0.3f, 0.9f, 0.05f};
    for (int i = 0; i < 5; i++) {
        s[i].key = (char *)keys[i];
        s[i].agg[E2H_AGG_MIN] = mins[i];
        s[i].agg[E2H_AGG_PROD] = prods[i];
    }
    e2h_search_result r = {5, s, -1, 0, 0, 0, 0};
    CHECK(search_select_maj(&r) == 0);              // "1" x2 vs "2" x2: first seen wins
    CHECK(search_select_agg(&r, E2H_AGG_MIN) == 3); // best min, answer or not
    CHECK(search_select_weighted(&r, E2H_AGG_PROD) == 1); // "2": 0.6 > "1": 0.55; its best sample
    s[4].key = (char *)"2";
    CHECK(search_select_maj(&r) == 1);
    char out[64];
    CHECK(e2h_answer_extract("so \\boxed{\\frac{1}{2}} and \\boxed{7}.", strlen("so \\boxed{\\frac{1}{2}} and \\boxed{7}."), out, sizeof out) && !strcmp(out, "7"));
    CHECK(!e2h_answer_extract("no answer here", 14, out, sizeof out));
}

// The real scorer: a PRM model attached to the engine (the e2h-paper fixture, a tiny random
// Llama with its own tokenizer) scores each step incrementally inside the search; every
// finished sample's step scores equal the PRM's from-scratch scores of its steps
// (e2h_prm_score_texts, an independent code path that lays out the whole text at once).
#define PRM_FIX "tests/fixtures/prm/e2h_paper"
TEST(attached_prm_scores_match_from_scratch) {
    e2h_prm_opts po = e2h_prm_opts_default();
    po.protocol = "e2h-paper";
    e2h_prm *prm = NULL;
    char err[512];
    if (e2h_prm_load(PRM_FIX, g_model, &po, &prm, err, sizeof err)) {
        printf("  prm: %s\n", err);
        CHECK(0);
        return;
    }
    e2h_engine *e = mk_engine(1, 0);
    CHECKF(e2h_engine_attach_prm(e, prm) == E2H_OK, "%s", e2h_engine_last_error(e));
    e2h_search_method ms[] = {E2H_SEARCH_BEAM, E2H_SEARCH_BON};
    int compared = 0;
    for (int k = 0; k < 2; k++) {
        e2h_search_opts o = mk_opts(ms[k], 4, 2, NULL);
        o.score = NULL; // the attached PRM
        o.problem = "What is 12 times 7?";
        e2h_search_result r;
        e2h_status st = e2h_search_run(e, g_prompt, g_n_prompt, &o, &r);
        CHECKF(st == E2H_OK, "%s", e2h_engine_last_error(e));
        CHECK(r.prm_tokens > 0);
        for (int i = 0; !st && i < r.n_samples; i++) {
            const e2h_search_sample *s = &r.samples[i];
            char *steps[64];
            int n = s->n_steps < 64 ? s->n_steps : 64, empty = 0;
            for (int j = 0; j < n; j++) { // the PRM sees steps without their delimiter
                steps[j] = strdup(s->steps[j]);
                size_t l = strlen(steps[j]);
                while (l >= 2 && !strcmp(steps[j] + l - 2, "\n\n")) steps[j][l -= 2] = 0;
                empty |= l == 0;
            }
            float ref[64];
            if (!empty && n == s->n_steps &&
                e2h_prm_score_texts(e, o.problem, (const char *const *)steps, n, ref) == E2H_OK) {
                for (int j = 0; j < n; j++)
                    CHECKF(fabsf(ref[j] - s->step_scores[j]) < 1e-4f, "%s sample %d step %d: %g vs %g",
                           e2h_search_method_name(ms[k]), i, j, s->step_scores[j], ref[j]);
                compared++;
            }
            for (int j = 0; j < n; j++) free(steps[j]);
        }
        e2h_search_result_free(&r);
    }
    CHECKF(compared >= 4, "only %d samples compared", compared);
    e2h_engine_free(e);
    e2h_prm_free(prm);
}

// ---- e2h_search_run_batch: several searches sharing decode batches
typedef struct {
    int n_jobs, next, stop_after, n_done, order[16], bad_job;
    e2h_search_opts opts[16];
    e2h_status st[16];
    e2h_search_result res[16];
} batch_chk;

static int bc_next(void *ctx, e2h_search_job *job) {
    batch_chk *b = ctx;
    if (b->next >= b->n_jobs) return 0;
    int i = b->next++;
    job->prompt = g_prompt;
    job->n_prompt = g_n_prompt;
    job->opts = b->opts[i];
    job->tag = (void *)(intptr_t)i;
    return 1;
}

static int bc_done(void *ctx, void *tag, e2h_status st, const char *msg, e2h_search_result *r) {
    batch_chk *b = ctx;
    int i = (int)(intptr_t)tag;
    b->order[b->n_done++] = i;
    b->st[i] = st;
    if (!st) b->res[i] = *r; // the test takes ownership
    else if (!msg || !msg[0]) b->st[i] = E2H_ERR_UNSUPPORTED; // an error needs its message
    return b->stop_after > 0 && b->n_done >= b->stop_after;
}

// n_jobs jobs of every method, seeds and budgets (one with bad options, two with a step
// delimiter often split over two tokens) run conc[k] at a time: each result equals
// e2h_search_run's, the pool is empty afterwards, and the bad job fails alone with a message.
static void batch_vs_alone(e2h_engine *e, int n_jobs, const int *conc, int n_conc) {
    const e2h_search_method ms[] = {E2H_SEARCH_BEAM, E2H_SEARCH_REBASE, E2H_SEARCH_DVTS,
                                    E2H_SEARCH_BON, E2H_SEARCH_BEAM, E2H_SEARCH_MAJ};
    batch_chk ref;
    memset(&ref, 0, sizeof ref);
    ref.n_jobs = n_jobs;
    ref.bad_job = 4;
    for (int i = 0; i < n_jobs; i++) {
        ref.opts[i] = mk_opts(ms[i % 6], 4, 2, NULL);
        ref.opts[i].sampling.seed = 100 + (uint64_t)i;
        ref.opts[i].max_tokens = 24 + 9 * i; // budgets end mid-chunk
        if (i == ref.bad_job) ref.opts[i].m = 3; // does not divide N: refused
        if (i % 2) ref.opts[i].step_delimiter = ". "; // often split over two tokens (and chunks)
        ref.st[i] = e2h_search_run(e, g_prompt, g_n_prompt, &ref.opts[i], &ref.res[i]);
    }
    CHECK(n_jobs <= ref.bad_job || ref.st[ref.bad_job] == E2H_ERR_INVALID_ARG);
    for (int c = 0; c < n_conc; c++) {
        batch_chk b;
        memset(&b, 0, sizeof b);
        b.n_jobs = n_jobs;
        memcpy(b.opts, ref.opts, sizeof b.opts);
        e2h_search_batch spec = {conc[c], bc_next, bc_done, &b};
        CHECK(e2h_search_run_batch(e, &spec) == E2H_OK);
        CHECKF(b.n_done == b.n_jobs, "%d of %d jobs reported", b.n_done, b.n_jobs);
        for (int i = 0; i < b.n_jobs; i++) {
            CHECKF(b.st[i] == ref.st[i], "P=%d job %d: status %d, alone %d", conc[c], i, b.st[i], ref.st[i]);
            if (b.st[i] || ref.st[i]) continue;
            CHECKF(same_result(&b.res[i], &ref.res[i]) &&
                   b.res[i].policy_tokens == ref.res[i].policy_tokens &&
                   b.res[i].rounds == ref.res[i].rounds,
                   "P=%d job %d (%s) differs from the same search alone", conc[c], i,
                   e2h_search_method_name(ms[i % 6]));
            e2h_search_result_free(&b.res[i]);
        }
        e2h_kv_stats ks;
        e2h_engine_get_kv_stats(e, &ks);
        CHECKF(ks.blocks_used == 0, "P=%d: %d blocks still used", conc[c], ks.blocks_used);
    }
    for (int i = 0; i < n_jobs; i++)
        if (!ref.st[i]) e2h_search_result_free(&ref.res[i]);
}

// Six jobs 1, 3 and 8 at a time; done() returning non-zero stops handing out jobs; bad
// arguments are refused.
TEST(search_batch_equals_one_by_one) {
    e2h_engine *e = mk_engine(2, 0);
    const int conc[] = {1, 3, 8};
    batch_vs_alone(e, 6, conc, 3);
    batch_chk b;
    memset(&b, 0, sizeof b);
    b.n_jobs = 6;
    b.stop_after = 2;
    for (int i = 0; i < b.n_jobs; i++) b.opts[i] = mk_opts(E2H_SEARCH_BEAM, 4, 2, NULL);
    e2h_search_batch spec = {2, bc_next, bc_done, &b};
    CHECK(e2h_search_run_batch(e, &spec) == E2H_OK);
    CHECKF(b.n_done == b.next && b.next < b.n_jobs, "stop: %d handed out, %d reported", b.next, b.n_done);
    for (int i = 0; i < b.n_done; i++)
        if (!b.st[b.order[i]]) e2h_search_result_free(&b.res[b.order[i]]);
    spec.max_concurrent = 0;
    CHECK(e2h_search_run_batch(e, &spec) == E2H_ERR_INVALID_ARG && e2h_engine_last_error(e)[0]);
    spec.max_concurrent = 2;
    spec.next = NULL;
    CHECK(e2h_search_run_batch(e, &spec) == E2H_ERR_INVALID_ARG);
    CHECK(e2h_search_run_batch(NULL, &spec) == E2H_ERR_INVALID_ARG);
    e2h_engine_free(e);
}

// The small case `make tsan` runs (E2H_TEST_ONLY=search_batch_threads): three searches
// taking turns on their threads, with the engine's pool threads under them.
TEST(search_batch_threads) {
    e2h_engine *e = mk_engine(2, 0);
    const int conc[] = {3};
    batch_vs_alone(e, 3, conc, 1);
    e2h_engine_free(e);
}

int main(void) {
    char err[512];
    if (e2h_model_load(MODEL, NULL, &g_model, err, sizeof err)) {
        printf("skipped: %s (run `make model`)\n", err);
        RUN(selection_rules);
        RUN(rebase_allotment);
        return TEST_SUMMARY();
    }
    const char *text = "<|im_start|>user\nWhat is 12 times 7? Solve it step by step, separating the "
                       "steps with a blank line, and put the final answer in \\boxed{}.<|im_end|>\n"
                       "<|im_start|>assistant\n";
    const e2h_tokenizer *t = e2h_model_tokenizer(g_model);
    e2h_tokenize(t, text, strlen(text), 0, g_prompt, 512, &g_n_prompt);
    RUN(selection_rules);
    RUN(bad_options);
    RUN(beam_keeps_n_over_m_and_frees);
    RUN(dvts_subtrees);
    RUN(rebase_allotment);
    RUN(stepwise_equals_plain_sampling);
    RUN(deterministic_across_threads);
    RUN(search_larger_than_the_pool);
    RUN(attached_prm_scores_match_from_scratch);
    RUN(search_batch_equals_one_by_one);
    RUN(search_batch_threads);
    e2h_model_free(g_model);
    return TEST_SUMMARY();
}
