// tests/test_sched.c — the scheduler: lazy create / append, e2h_engine_sync computing many
// sequences in shared forward passes, output rows (log-probs of appended tokens, captured
// hidden states and logits), and engine teardown with live sequences.
//
// References: logits and log-probs are compared with e2h_eval_logits of a separate engine
// (from scratch, no cache reuse, one sequence per pass); tolerance abs 1e-5 + rel 1e-5 as in
// test_tree.c (f32 KV; only the order of attention's block merges differs). Captured hidden
// states have no outside reference through the public API: they are checked to be the state
// the logits come from (e2h_seq_hidden of the same position after a sync), to agree between
// a sequence computed alone and the same one batched beside others with a small batch, and
// to follow fork / truncate.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../engine/engine_internal.h" // e2h_seq layout: the no_logits test's sentinel
#include "../engine/prm_hooks.h"       // eng_seq_set_no_logits
#include "../include/e2h.h"
#include "harness.h"

#define FIX_MODEL "tests/fixtures/models/llama2_f32"
#define TOL 1e-5

static e2h_model *t_model;
static e2h_engine *t_ref; // from-scratch reference
static int32_t t_vocab, t_dim;

static e2h_engine *make_engine(int n_threads, int max_batch, int block_size) {
    e2h_engine_opts o;
    memset(&o, 0, sizeof o);
    o.n_threads = n_threads;
    o.max_batch_tokens = max_batch;
    o.block_size = block_size;
    o.kv_mem_gib = 0.05;
    return th_engine(t_model, &o);
}

// max |a - b| over n, or +inf when one exceeds TOL + TOL * |b|.
static double max_diff(const float *a, const float *b, int32_t n) {
    double worst = 0;
    for (int32_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > TOL + TOL * fabs((double)b[i])) return INFINITY;
        worst = d > worst ? d : worst;
    }
    return worst;
}

static int64_t n_passes(const e2h_engine *e) {
    e2h_kv_stats ks;
    e2h_engine_get_kv_stats(e, &ks);
    return ks.forward_passes;
}

static void fill_ids(int32_t *ids, int n, uint32_t seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        ids[i] = (int32_t)((seed >> 8) % (uint32_t)t_vocab);
    }
}

// Teacher-forcing 16 candidate steps of one prefix: 16 lazy appends, one sync, one pass.
TEST(sixteen_candidates_one_pass) {
    e2h_engine *e = make_engine(1, 512, 16);
    CHECK(e != NULL);
    if (!e) return;
    int32_t prompt[40], steps[16][6];
    fill_ids(prompt, 40, 1);
    e2h_seq *root = NULL, *kids[16];
    CHECK(e2h_seq_create(e, prompt, 40, NULL, &root) == E2H_OK);
    CHECK(e2h_seq_logits(root) == NULL); // lazy: nothing computed yet
    CHECK(e2h_engine_sync(e, &root, 1) == E2H_OK);
    CHECK(e2h_seq_logits(root) != NULL && e2h_seq_hidden(root) != NULL);
    CHECK(e2h_seq_fork(e, root, 16, kids) == E2H_OK);
    int64_t p0 = n_passes(e);
    for (int i = 0; i < 16; i++) {
        fill_ids(steps[i], 6, 100 + i);
        CHECK(e2h_seq_append(e, kids[i], steps[i], 6) == E2H_OK);
        CHECK(e2h_seq_logits(kids[i]) == NULL && e2h_seq_hidden(kids[i]) == NULL);
    }
    CHECK(n_passes(e) == p0); // appends are lazy
    CHECK(e2h_engine_sync(e, kids, 16) == E2H_OK);
    int64_t used = n_passes(e) - p0;
    CHECKF(used == 1, "%lld passes for 16 candidates of 6 tokens", (long long)used);
    CHECK(e2h_engine_sync(e, kids, 16) == E2H_OK); // nothing pending: no pass
    CHECK(n_passes(e) - p0 == used);
    // Each candidate's logits and log-probs equal the from-scratch ones.
    float *ref = malloc(sizeof(float) * 46 * (size_t)t_vocab);
    double worst = 0;
    for (int i = 0; i < 16; i++) {
        int32_t all[46];
        memcpy(all, prompt, sizeof prompt);
        memcpy(all + 40, steps[i], sizeof steps[i]);
        CHECK(e2h_eval_logits(t_ref, all, 46, ref) == E2H_OK);
        const float *lg = e2h_seq_logits(kids[i]);
        double d = lg ? max_diff(lg, ref + (size_t)45 * t_vocab, t_vocab) : INFINITY;
        CHECKF(d <= TOL, "candidate %d: logits differ (%g)", i, d);
        worst = d > worst ? d : worst;
        const float *lp = e2h_seq_logprobs(kids[i]);
        for (int j = 40; j < 46; j++) {
            double want = th_log_softmax_at(ref + (size_t)(j - 1) * t_vocab, t_vocab, all[j]);
            CHECKF(fabs(lp[j] - want) <= 2e-5 + 1e-5 * fabs(want), "candidate %d pos %d: %g vs %g",
                   i, j, lp[j], want);
        }
    }
    printf("  1 pass for 16 x 6 tokens; max |logit diff| %g\n", worst);
    free(ref);
    for (int i = 0; i < 16; i++) e2h_seq_release(e, kids[i]);
    e2h_seq_release(e, root);
    e2h_engine_free(e);
}

// Appended tokens' log-probs: synced parent (first one from the current logits), unsynced
// sequence (first one from a pass row), log-probs off (NaN), and a small batch size so one
// append spans several passes.
TEST(appended_logprobs_equal_log_softmax) {
    e2h_engine *e = make_engine(2, 7, 5);
    CHECK(e != NULL);
    if (!e) return;
    int32_t ids[60];
    fill_ids(ids, 60, 7);
    float *ref = malloc(sizeof(float) * 60 * (size_t)t_vocab);
    CHECK(e2h_eval_logits(t_ref, ids, 60, ref) == E2H_OK);
    e2h_seq *a = NULL, *b = NULL, *c = NULL;
    CHECK(e2h_seq_create(e, ids, 20, NULL, &a) == E2H_OK);
    CHECK(e2h_engine_sync(e, &a, 1) == E2H_OK);
    CHECK(e2h_seq_append(e, a, ids + 20, 25) == E2H_OK);     // a synced before: lp[20] at once
    CHECK(e2h_seq_create(e, ids, 12, NULL, &b) == E2H_OK);
    CHECK(e2h_seq_append(e, b, ids + 12, 30) == E2H_OK);     // b never synced
    e2h_append_opts ao = e2h_append_opts_default();
    CHECK(ao.logprobs == 1 && ao.n_capture == 0 && ao.capture == NULL);
    ao.logprobs = 0;
    CHECK(e2h_seq_create(e, ids, 30, NULL, &c) == E2H_OK);
    CHECK(e2h_seq_append_ex(e, c, ids + 30, 10, &ao) == E2H_OK);
    e2h_seq *all[3] = {a, b, c};
    CHECK(e2h_engine_sync(e, all, 3) == E2H_OK);
    const struct { e2h_seq *s; int from, to, want; } cases[3] = {{a, 20, 45, 1}, {b, 12, 42, 1}, {c, 30, 40, 0}};
    for (int k = 0; k < 3; k++) {
        const float *lp = e2h_seq_logprobs(cases[k].s);
        CHECK(isnan(lp[0]) && isnan(lp[cases[k].from - 1])); // prompt tokens
        for (int j = cases[k].from; j < cases[k].to; j++) {
            if (!cases[k].want) {
                CHECKF(isnan(lp[j]), "logprobs off: pos %d = %g", j, lp[j]);
                continue;
            }
            double want = th_log_softmax_at(ref + (size_t)(j - 1) * t_vocab, t_vocab, ids[j]);
            CHECKF(fabs(lp[j] - want) <= 2e-5 + 1e-5 * fabs(want), "seq %d pos %d: %g vs %g", k, j,
                   lp[j], want);
        }
        const float *lg = e2h_seq_logits(cases[k].s);
        CHECK(lg && max_diff(lg, ref + (size_t)(cases[k].to - 1) * t_vocab, t_vocab) <= TOL);
    }
    e2h_seq_release(e, a);
    e2h_seq_release(e, b);
    e2h_seq_release(e, c);
    free(ref);
    e2h_engine_free(e);
}

// Appends ids[from..to) to s with captures at the given absolute positions (+ logits).
static e2h_status append_capturing(e2h_engine *e, e2h_seq *s, const int32_t *ids, int from, int to,
                                   const int32_t *pos, int n_pos, int with_logits) {
    int32_t offs[8];
    for (int i = 0; i < n_pos; i++) offs[i] = pos[i] - from;
    e2h_append_opts ao = e2h_append_opts_default();
    ao.capture = offs;
    ao.n_capture = n_pos;
    ao.capture_logits = with_logits;
    return e2h_seq_append_ex(e, s, ids + from, to - from, &ao);
}

// Captured hidden states and logits: alone vs batched beside others in a small batch (each
// sequence split over several passes); logits_at equals the from-scratch logits; hidden_at of
// the last position equals e2h_seq_hidden; nothing reads before the sync.
TEST(captures_alone_and_batched) {
    e2h_engine *e1 = make_engine(1, 512, 16), *e2 = make_engine(2, 9, 4);
    CHECK(e1 && e2);
    if (!e1 || !e2) { e2h_engine_free(e1); e2h_engine_free(e2); return; }
    int32_t ids[50];
    fill_ids(ids, 50, 21);
    const int32_t cap[4] = {22, 30, 31, 49};
    float *ref = malloc(sizeof(float) * 50 * (size_t)t_vocab);
    CHECK(e2h_eval_logits(t_ref, ids, 50, ref) == E2H_OK);
    // alone
    e2h_seq *a = NULL;
    CHECK(e2h_seq_create(e1, ids, 20, NULL, &a) == E2H_OK);
    CHECK(append_capturing(e1, a, ids, 20, 50, cap, 4, 1) == E2H_OK);
    CHECK(e2h_seq_hidden_at(a, 22) == NULL && e2h_seq_logits_at(a, 22) == NULL); // not yet computed
    CHECK(e2h_engine_sync(e1, &a, 1) == E2H_OK);
    // batched: the same sequence among 4 others, in passes of 9 tokens
    e2h_seq *b[5] = {0};
    for (int i = 0; i < 5; i++) {
        int32_t other[50];
        fill_ids(other, 50, 300 + i);
        const int32_t *src = i == 2 ? ids : other;
        CHECK(e2h_seq_create(e2, src, 20, NULL, &b[i]) == E2H_OK);
        CHECK(append_capturing(e2, b[i], src, 20, 50, cap, 4, i == 2) == E2H_OK);
    }
    CHECK(e2h_engine_sync(e2, b, 5) == E2H_OK);
    double worst_h = 0, worst_l = 0;
    for (int k = 0; k < 4; k++) {
        const float *ha = e2h_seq_hidden_at(a, cap[k]), *hb = e2h_seq_hidden_at(b[2], cap[k]);
        const float *la = e2h_seq_logits_at(a, cap[k]), *lb = e2h_seq_logits_at(b[2], cap[k]);
        CHECK(ha && hb && la && lb);
        if (!ha || !hb || !la || !lb) continue;
        double dh = max_diff(hb, ha, t_dim), dl = max_diff(la, ref + (size_t)cap[k] * t_vocab, t_vocab);
        double dl2 = max_diff(lb, ref + (size_t)cap[k] * t_vocab, t_vocab);
        CHECKF(dh <= TOL && dl <= TOL && dl2 <= TOL, "capture %d: hidden %g logits %g / %g", cap[k],
               dh, dl, dl2);
        worst_h = dh > worst_h ? dh : worst_h;
        worst_l = dl > worst_l ? dl : worst_l;
    }
    // Not captured: NULL. Captured hidden only (b[0]): no logits.
    CHECK(e2h_seq_hidden_at(a, 21) == NULL && e2h_seq_hidden_at(a, 50) == NULL);
    CHECK(e2h_seq_hidden_at(b[0], 30) != NULL && e2h_seq_logits_at(b[0], 30) == NULL);
    // The last position: the capture is the row the sequence's logits come from.
    CHECK(memcmp(e2h_seq_hidden_at(a, 49), e2h_seq_hidden(a), sizeof(float) * (size_t)t_dim) == 0);
    CHECK(memcmp(e2h_seq_logits_at(a, 49), e2h_seq_logits(a), sizeof(float) * (size_t)t_vocab) == 0);
    printf("  batched vs alone: max |hidden diff| %g; max |logits_at - ref| %g\n", worst_h, worst_l);
    for (int i = 0; i < 5; i++) e2h_seq_release(e2, b[i]);
    e2h_seq_release(e1, a);
    free(ref);
    e2h_engine_free(e1);
    e2h_engine_free(e2);
}

// The last layer runs attention, projection and MLP on the pass's output rows only (its K/V
// are stored for every row). Reference: the same tokens where every row of every pass is an
// output (1-token prompt, then log-probs of all appended tokens: nothing is skipped); then
// with log-probs off, captures at a few positions (runs of 1 and 3 rows), batched beside
// other sequences in passes of 9 tokens (some passes have no output row of it at all) and in
// one pass of all of them.
// Captured hidden states and logits must be the same bits: block size and KV type agree.
TEST(last_layer_output_rows_only) {
    e2h_engine *e1 = make_engine(1, 512, 4);
    CHECK(e1 != NULL);
    if (!e1) return;
    int32_t ids[50];
    fill_ids(ids, 50, 77);
    const int32_t cap[5] = {22, 30, 31, 32, 49};
    e2h_seq *a = NULL;
    CHECK(e2h_seq_create(e1, ids, 1, NULL, &a) == E2H_OK);
    CHECK(e2h_engine_sync(e1, &a, 1) == E2H_OK);
    CHECK(append_capturing(e1, a, ids, 1, 50, cap, 5, 1) == E2H_OK); // log-probs: every row
    CHECK(e2h_engine_sync(e1, &a, 1) == E2H_OK);
    const size_t hsz = sizeof(float) * (size_t)t_dim, lsz = sizeof(float) * (size_t)t_vocab;
    for (int pass_tokens = 9; pass_tokens <= 512; pass_tokens += 503) { // split / one pass
        e2h_engine *e2 = make_engine(2, pass_tokens, 4);
        CHECK(e2 != NULL);
        if (!e2) break;
        e2h_seq *b[4] = {0};
        for (int i = 0; i < 4; i++) {
            int32_t other[50];
            fill_ids(other, 50, 500 + i);
            const int32_t *src = i == 1 ? ids : other;
            int32_t offs[5];
            for (int k = 0; k < 5; k++) offs[k] = cap[k] - 20;
            e2h_append_opts ao = e2h_append_opts_default();
            ao.logprobs = 0;
            ao.capture = offs;
            ao.n_capture = i == 1 ? 5 : i; // the others: 0 to 3 captures
            ao.capture_logits = 1;
            CHECK(e2h_seq_create(e2, src, 20, NULL, &b[i]) == E2H_OK);
            CHECK(e2h_seq_append_ex(e2, b[i], src + 20, 30, &ao) == E2H_OK);
        }
        CHECK(e2h_engine_sync(e2, b, 4) == E2H_OK);
        for (int k = 0; k < 5; k++) {
            const float *ha = e2h_seq_hidden_at(a, cap[k]), *hb = e2h_seq_hidden_at(b[1], cap[k]);
            const float *la = e2h_seq_logits_at(a, cap[k]), *lb = e2h_seq_logits_at(b[1], cap[k]);
            CHECK(ha && hb && la && lb);
            if (!ha || !hb || !la || !lb) continue;
            CHECKF(!memcmp(ha, hb, hsz) && !memcmp(la, lb, lsz), "passes of %d tokens: capture at %d "
                   "differs", pass_tokens, cap[k]);
        }
        CHECK(!memcmp(e2h_seq_logits(a), e2h_seq_logits(b[1]), lsz));
        for (int i = 0; i < 4; i++) e2h_seq_release(e2, b[i]);
        e2h_engine_free(e2);
    }
    e2h_seq_release(e1, a);
    e2h_engine_free(e1);
}

// A scoring-only sequence (PRM mirror, eng_seq_set_no_logits): the pass skips its last token's
// next-token logits (the sentinel in its logits buffer survives the sync), and everything else
// is bit-identical to a normal sequence computed beside it: last hidden state, captured hidden
// states and captured logits. Forks inherit the flag; extend refuses it.
TEST(no_logits_sequence) {
    e2h_engine *e = make_engine(2, 9, 4);
    CHECK(e != NULL);
    if (!e) return;
    int32_t ids[40];
    fill_ids(ids, 40, 77);
    const int32_t cap[3] = {25, 31, 38}; // not the last position (39): its row needs no logits
    e2h_seq *a = NULL, *b = NULL;
    CHECK(e2h_seq_create(e, ids, 20, NULL, &a) == E2H_OK);
    CHECK(e2h_seq_create(e, ids, 20, NULL, &b) == E2H_OK);
    if (!a || !b) { e2h_engine_free(e); return; }
    eng_seq_set_no_logits(b);
    CHECK(append_capturing(e, a, ids, 20, 40, cap, 3, 1) == E2H_OK);
    CHECK(append_capturing(e, b, ids, 20, 40, cap, 3, 1) == E2H_OK);
    b->logits[0] = 12345.0f; // no pass computes (so none copies) the last row's logits
    e2h_seq *both[2] = {a, b};
    CHECK(e2h_engine_sync(e, both, 2) == E2H_OK);
    CHECK(b->logits[0] == 12345.0f);
    CHECK(e2h_seq_logits(a) != NULL && e2h_seq_logits(b) == NULL);
    CHECK(e2h_seq_hidden(a) && e2h_seq_hidden(b) &&
          memcmp(e2h_seq_hidden(a), e2h_seq_hidden(b), sizeof(float) * (size_t)t_dim) == 0);
    for (int k = 0; k < 3; k++) {
        const float *ha = e2h_seq_hidden_at(a, cap[k]), *hb = e2h_seq_hidden_at(b, cap[k]);
        const float *la = e2h_seq_logits_at(a, cap[k]), *lb = e2h_seq_logits_at(b, cap[k]);
        CHECKF(ha && hb && la && lb && !memcmp(ha, hb, sizeof(float) * (size_t)t_dim) &&
                   !memcmp(la, lb, sizeof(float) * (size_t)t_vocab),
               "capture at %d differs", cap[k]);
    }
    e2h_seq *c = NULL;
    CHECK(e2h_seq_fork(e, b, 1, &c) == E2H_OK);
    CHECK(c && e2h_seq_logits(c) == NULL && e2h_seq_hidden(c) != NULL);
    e2h_stop stop;
    memset(&stop, 0, sizeof stop);
    stop.max_tokens = 2;
    CHECK(e2h_seq_extend(e, &b, 1, &stop) == E2H_ERR_INVALID_ARG);
    CHECK(e2h_seq_extend(e, &a, 1, &stop) == E2H_OK); // the normal one still extends
    if (c) e2h_seq_release(e, c);
    e2h_seq_release(e, a);
    e2h_seq_release(e, b);
    e2h_engine_free(e);
}

// e2h_seq_hidden after extend is the hidden state of the last token: a second sequence that
// teacher-forces the same tokens and captures that position gets the same state.
TEST(hidden_after_extend) {
    e2h_engine *e = make_engine(1, 64, 16);
    CHECK(e != NULL);
    if (!e) return;
    int32_t ids[10];
    fill_ids(ids, 10, 5);
    e2h_sampling sp = e2h_sampling_default();
    sp.temperature = 0.8f;
    e2h_seq *s = NULL, *t = NULL;
    CHECK(e2h_seq_create(e, ids, 10, &sp, &s) == E2H_OK);
    e2h_stop stop = {12, NULL, 0, 1, 0};
    CHECK(e2h_seq_extend(e, &s, 1, &stop) == E2H_OK);
    int32_t n = e2h_seq_len(s);
    const float *h = e2h_seq_hidden(s);
    CHECK(n == 22 && h != NULL);
    CHECK(e2h_seq_create(e, ids, 10, NULL, &t) == E2H_OK);
    int32_t last = n - 1;
    CHECK(append_capturing(e, t, e2h_seq_tokens(s), 10, n, &last, 1, 0) == E2H_OK);
    CHECK(e2h_engine_sync(e, &t, 1) == E2H_OK);
    const float *ht = e2h_seq_hidden_at(t, last);
    CHECK(ht && h && max_diff(ht, h, t_dim) <= TOL);
    CHECK(ht && e2h_seq_hidden(t) && memcmp(ht, e2h_seq_hidden(t), sizeof(float) * (size_t)t_dim) == 0);
    // Sampled tokens' log-probs and the teacher-forced ones agree.
    const float *la = e2h_seq_logprobs(s), *lb = e2h_seq_logprobs(t);
    for (int i = 10; i < n; i++) CHECKF(fabs(la[i] - lb[i]) <= 2e-5, "pos %d: %g vs %g", i, la[i], lb[i]);
    e2h_seq_release(e, s);
    e2h_seq_release(e, t);
    e2h_engine_free(e);
}

// Captures are inherited by fork and dropped by a truncate below them.
TEST(captures_follow_fork_and_truncate) {
    e2h_engine *e = make_engine(1, 64, 8);
    CHECK(e != NULL);
    if (!e) return;
    int32_t ids[30];
    fill_ids(ids, 30, 9);
    const int32_t cap[2] = {15, 25};
    e2h_seq *p = NULL, *kids[2];
    CHECK(e2h_seq_create(e, ids, 10, NULL, &p) == E2H_OK);
    CHECK(append_capturing(e, p, ids, 10, 30, cap, 2, 1) == E2H_OK);
    CHECK(e2h_seq_fork(e, p, 2, kids) == E2H_OK); // syncs the parent first
    const float *h15 = e2h_seq_hidden_at(p, 15), *h25 = e2h_seq_hidden_at(p, 25);
    CHECK(h15 && h25);
    for (int i = 0; i < 2 && h15 && h25; i++) {
        const float *c15 = e2h_seq_hidden_at(kids[i], 15), *c25 = e2h_seq_hidden_at(kids[i], 25);
        CHECK(c15 && c25 && c15 != h15); // the child's own copy
        CHECK(c15 && memcmp(c15, h15, sizeof(float) * (size_t)t_dim) == 0);
        CHECK(c25 && memcmp(c25, h25, sizeof(float) * (size_t)t_dim) == 0);
        CHECK(e2h_seq_logits_at(kids[i], 25) != NULL);
    }
    CHECK(e2h_seq_truncate(e, kids[0], 20) == E2H_OK); // drops 25, keeps 15
    CHECK(e2h_seq_hidden_at(kids[0], 25) == NULL && e2h_seq_logits_at(kids[0], 25) == NULL);
    CHECK(e2h_seq_hidden_at(kids[0], 15) != NULL);
    CHECK(e2h_seq_truncate(e, kids[0], 15) == E2H_OK); // position 15 itself goes
    CHECK(e2h_seq_hidden_at(kids[0], 15) == NULL);
    CHECK(e2h_seq_hidden_at(kids[1], 25) != NULL && e2h_seq_hidden_at(p, 25) != NULL); // others keep theirs
    // A truncated then re-extended sequence captures again.
    CHECK(append_capturing(e, kids[0], ids, 15, 30, cap, 2, 0) == E2H_OK);
    CHECK(e2h_engine_sync(e, kids, 1) == E2H_OK);
    const float *r25 = e2h_seq_hidden_at(kids[0], 25);
    CHECK(r25 && h25 && max_diff(r25, h25, t_dim) <= TOL);
    CHECK(e2h_seq_logits_at(kids[0], 25) == NULL);
    // Bad capture lists are rejected and leave the sequence unchanged.
    const int32_t bad1[2] = {3, 3}, bad2[1] = {5};
    e2h_append_opts ao = e2h_append_opts_default();
    ao.capture = bad1;
    ao.n_capture = 2;
    int32_t len = e2h_seq_len(kids[1]);
    CHECK(e2h_seq_append_ex(e, kids[1], ids, 5, &ao) == E2H_ERR_INVALID_ARG);
    ao.capture = bad2;
    ao.n_capture = 1;
    CHECK(e2h_seq_append_ex(e, kids[1], ids, 5, &ao) == E2H_ERR_INVALID_ARG);
    CHECK(strstr(e2h_engine_last_error(e), "capture") != NULL);
    CHECK(e2h_seq_len(kids[1]) == len && e2h_seq_logits(kids[1]) != NULL);
    for (int i = 0; i < 2; i++) e2h_seq_release(e, kids[i]);
    e2h_seq_release(e, p);
    e2h_engine_free(e);
}

// KV exhaustion shows at sync and leaves every sequence valid; a sequence larger than the
// whole pool is refused at create / append.
TEST(exhaustion_at_sync) {
    e2h_model_info mi;
    e2h_model_get_info(t_model, &mi);
    e2h_engine_opts o;
    memset(&o, 0, sizeof o);
    o.block_size = 4;
    o.max_batch_tokens = 64;
    o.kv_mem_gib = 10.5 * 2.0 * mi.n_layers * mi.n_kv_heads * mi.head_dim * 4 * 4 / 1073741824.0;
    char err[256];
    e2h_engine *e = NULL;
    CHECK(e2h_engine_init(t_model, &o, &e, err, sizeof err) == E2H_OK); // 10 blocks of 4
    if (!e) return;
    int32_t ids[44];
    fill_ids(ids, 44, 3);
    e2h_seq *s[3] = {0}, *big = NULL;
    CHECK(e2h_seq_create(e, ids, 41, NULL, &big) == E2H_ERR_KV_FULL && big == NULL);
    CHECK(strstr(e2h_engine_last_error(e), "kv_mem_gib") != NULL);
    for (int i = 0; i < 3; i++) CHECK(e2h_seq_create(e, ids + i, 16, NULL, &s[i]) == E2H_OK);
    CHECK(e2h_seq_append(e, s[0], ids, 25) == E2H_ERR_KV_FULL); // 41 tokens never fit
    CHECK(e2h_seq_len(s[0]) == 16);
    // 12 blocks wanted, 10 exist: the sync preempts (drops the K/V of a computed sequence,
    // keeps its logits) instead of failing, and every sequence ends with its logits.
    CHECK(e2h_engine_sync(e, s, 3) == E2H_OK);
    e2h_kv_stats ks;
    e2h_engine_get_kv_stats(e, &ks);
    CHECKF(ks.preemptions > 0, "%lld preemptions", (long long)ks.preemptions);
    float *ref = malloc(sizeof(float) * 20 * (size_t)t_vocab);
    for (int i = 0; i < 3; i++) {
        CHECK(e2h_eval_logits(t_ref, ids + i, 16, ref) == E2H_OK);
        const float *lg = e2h_seq_logits(s[i]);
        CHECK(lg && max_diff(lg, ref + (size_t)15 * t_vocab, t_vocab) <= TOL);
    }
    // A preempted sequence extended again is recomputed and still agrees with the reference.
    CHECK(e2h_seq_append(e, s[0], ids + 16, 4) == E2H_OK);
    CHECK(e2h_seq_append(e, s[2], ids + 20, 4) == E2H_OK);
    e2h_seq *two[2] = {s[2], s[0]};
    CHECK(e2h_engine_sync(e, two, 2) == E2H_OK);
    int32_t cat[20];
    memcpy(cat, ids, 16 * sizeof *cat);
    memcpy(cat + 16, ids + 16, 4 * sizeof *cat);
    CHECK(e2h_eval_logits(t_ref, cat, 20, ref) == E2H_OK);
    CHECK(e2h_seq_logits(s[0]) && max_diff(e2h_seq_logits(s[0]), ref + (size_t)19 * t_vocab, t_vocab) <= TOL);
    const float *lp = e2h_seq_logprobs(s[0]);
    for (int i = 17; i < 20; i++)
        CHECK(fabs(lp[i] - th_log_softmax_at(ref + (size_t)(i - 1) * t_vocab, t_vocab, cat[i])) < 1e-4);
    e2h_seq_release(e, s[2]);
    CHECK(e2h_engine_sync(e, s, 2) == E2H_OK);
    free(ref);
    e2h_seq_release(e, s[0]);
    e2h_seq_release(e, s[1]);
    e2h_engine_free(e);
}

// Runs n sampled sequences (distinct prompts and seeds) for `steps` tokens with one extend on
// engine e; copies their tokens (out: n x (20 + steps)), log-probs and final logits.
static e2h_status extend_many(e2h_engine *e, int n, int steps, int32_t *out, float *lps,
                              float *logits) {
    e2h_seq *s[12] = {0};
    e2h_status st = E2H_OK;
    for (int i = 0; i < n && !st; i++) {
        int32_t p[20];
        fill_ids(p, 20, 100 + (uint32_t)i);
        e2h_sampling sp = e2h_sampling_default();
        sp.temperature = i % 3 ? 1.0f : 0.0f; // greedy and sampled
        sp.seed = 7 + (uint64_t)i;
        st = e2h_seq_create(e, p, 12 + i % 9, &sp, &s[i]);
    }
    e2h_stop stop = {steps, NULL, 0, 1, 0};
    if (!st) st = e2h_seq_extend(e, s, n, &stop);
    for (int i = 0; i < n && !st; i++) {
        int32_t len = e2h_seq_len(s[i]);
        CHECKF(len == 12 + i % 9 + steps, "seq %d: %d tokens", i, len);
        if (len != 12 + i % 9 + steps) { st = E2H_ERR_INVALID_ARG; break; }
        memcpy(out + (size_t)i * (20 + steps), e2h_seq_tokens(s[i]), (size_t)len * sizeof *out);
        memcpy(lps + (size_t)i * (20 + steps), e2h_seq_logprobs(s[i]), (size_t)len * sizeof *lps);
        const float *lg = e2h_seq_logits(s[i]);
        CHECK(lg != NULL);
        if (lg) memcpy(logits + (size_t)i * t_vocab, lg, (size_t)t_vocab * sizeof *lg);
    }
    for (int i = 0; i < n; i++) e2h_seq_release(e, s[i]);
    return st;
}

// Overload, not failure: e2h_seq_extend over more sequences than the pool holds at once
// preempts (drops K/V, keeps tokens, recomputes later) and gives bit-identical tokens,
// log-probs and final logits to a run with a pool that holds them all.
TEST(extend_more_sequences_than_the_pool) {
    enum { N = 10, STEPS = 40 };
    e2h_model_info mi;
    e2h_model_get_info(t_model, &mi);
    double block = 2.0 * mi.n_layers * mi.n_kv_heads * mi.head_dim * 4 * 8;
    e2h_engine_opts o;
    memset(&o, 0, sizeof o);
    o.block_size = 8;
    o.max_batch_tokens = 64;
    o.kv_mem_gib = 0.05;
    char err[256];
    e2h_engine *big = NULL, *small = NULL;
    CHECK(e2h_engine_init(t_model, &o, &big, err, sizeof err) == E2H_OK);
    o.kv_mem_gib = 20.5 * block / 1073741824.0; // 20 blocks of 8: about 3 of the 10 sequences
    CHECK(e2h_engine_init(t_model, &o, &small, err, sizeof err) == E2H_OK);
    if (!big || !small) return;
    size_t nt = (size_t)N * (20 + STEPS);
    int32_t *ta = calloc(nt, sizeof *ta), *tb = calloc(nt, sizeof *tb);
    float *la = calloc(nt, sizeof *la), *lb = calloc(nt, sizeof *lb);
    float *ga = calloc((size_t)N * t_vocab, sizeof *ga), *gb = calloc((size_t)N * t_vocab, sizeof *gb);
    CHECK(extend_many(big, N, STEPS, ta, la, ga) == E2H_OK);
    e2h_status st = extend_many(small, N, STEPS, tb, lb, gb);
    CHECKF(st == E2H_OK, "small pool: %s: %s", e2h_status_name(st), e2h_engine_last_error(small));
    e2h_kv_stats ka, kb;
    e2h_engine_get_kv_stats(big, &ka);
    e2h_engine_get_kv_stats(small, &kb);
    printf("  big pool: %d blocks, %lld passes, %lld preemptions; small: %d blocks, %lld passes, "
           "%lld preemptions\n", ka.blocks_total, (long long)ka.forward_passes,
           (long long)ka.preemptions, kb.blocks_total, (long long)kb.forward_passes,
           (long long)kb.preemptions);
    CHECK(ka.preemptions == 0 && kb.preemptions > 0);
    CHECK(memcmp(ta, tb, nt * sizeof *ta) == 0);
    CHECK(memcmp(la, lb, nt * sizeof *la) == 0); // NaN slots (prompt) are the same bits too
    CHECK(memcmp(ga, gb, (size_t)N * t_vocab * sizeof *ga) == 0);
    CHECK(kb.blocks_used == 0);
    // One sequence that cannot fit even in the empty pool is the only error: it names the
    // sequence and the sizes, and nothing is corrupted.
    int32_t p[20];
    fill_ids(p, 20, 5);
    e2h_seq *s[2] = {0};
    CHECK(e2h_seq_create(small, p, 20, NULL, &s[0]) == E2H_OK);
    CHECK(e2h_seq_create(small, p + 1, 19, NULL, &s[1]) == E2H_OK);
    e2h_stop stop = {200, NULL, 0, 1, 0}; // 20 + 200 tokens need 28 blocks, the pool has 20
    st = e2h_seq_extend(small, s, 2, &stop);
    CHECKF(st == E2H_ERR_KV_FULL, "%s", e2h_status_name(st));
    const char *msg = e2h_engine_last_error(small);
    CHECKF(strstr(msg, "sequence") && strstr(msg, "blocks") && strstr(msg, "kv_mem_gib"), "%s", msg);
    for (int i = 0; i < 2; i++) e2h_seq_release(small, s[i]);
    e2h_engine_get_kv_stats(small, &kb);
    CHECK(kb.blocks_used == 0);
    free(ta); free(tb); free(la); free(lb); free(ga); free(gb);
    e2h_engine_free(big);
    e2h_engine_free(small);
}

// Freeing an engine releases the sequences still live (no leak under ASan, no crash), also
// ones with pending tokens and captures.
TEST(engine_free_releases_live_sequences) {
    e2h_engine *e = make_engine(2, 32, 16);
    CHECK(e != NULL);
    if (!e) return;
    int32_t ids[40];
    fill_ids(ids, 40, 4);
    e2h_seq *a = NULL, *b = NULL, *kids[3];
    CHECK(e2h_seq_create(e, ids, 30, NULL, &a) == E2H_OK);
    CHECK(e2h_seq_fork(e, a, 3, kids) == E2H_OK);
    const int32_t cap[1] = {35};
    CHECK(append_capturing(e, kids[1], ids, 30, 40, cap, 1, 1) == E2H_OK);
    CHECK(e2h_seq_create(e, ids, 12, NULL, &b) == E2H_OK); // pending
    e2h_engine_free(e);
}

int main(void) {
    e2h_model_info mi;
    if (!(t_model = th_load_model(FIX_MODEL, &mi))) return 1;
    t_vocab = mi.vocab_size;
    t_dim = mi.dim;
    t_ref = make_engine(1, 256, 16);
    if (!t_ref) return th_setup_failed();
    RUN(sixteen_candidates_one_pass);
    RUN(appended_logprobs_equal_log_softmax);
    RUN(captures_alone_and_batched);
    RUN(last_layer_output_rows_only);
    RUN(no_logits_sequence);
    RUN(hidden_after_extend);
    RUN(captures_follow_fork_and_truncate);
    RUN(exhaustion_at_sync);
    RUN(extend_more_sequences_than_the_pool);
    RUN(engine_free_releases_live_sequences);
    e2h_engine_free(t_ref);
    e2h_model_free(t_model);
    return TEST_SUMMARY();
}
