// tests/test_tree.c — the sequence tree API (create / fork / extend / append / truncate /
// release) over the paged, prefix-sharing KV cache, checked against logits computed from
// scratch by a separate engine (e2h_eval_logits, no cache reuse).
//
// For random trees of operations on a small pool (so prefixes are reused, blocks are copied
// on write and cached blocks are evicted), every live sequence's next-token logits and the
// log-probability recorded for every sampled token must equal the from-scratch values.
// Tolerance: abs 1e-5 + rel 1e-5 * |ref| for f32 KV (results do not depend on the batch
// composition; they differ only by the order in which attention merges KV blocks when the
// block size differs from the reference's: measured <= 4e-6). For f16 KV the reference also
// stores f16 K/V: abs 2e-4 + rel 2e-4 (measured <= 2.5e-4 on log-probs of magnitude ~6).
// create / append / truncate are lazy: a random op syncs random subsets, and a sequence with
// pending tokens must show no logits. Also: sampling with a seed gives
// the same tokens alone and batched beside others; exhaustion preempts (the same tokens as a
// big pool), a sequence larger than the pool returns E2H_ERR_KV_FULL and corrupts nothing; the pool returns to empty when everything is released.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../include/e2h.h"
#include "harness.h"

#define FIX_MODEL "tests/fixtures/models/llama2_f32"
#define MAX_NODES 10

static e2h_model *t_model;  // loaded once in main (read-only afterwards)
static e2h_engine *t_ref;   // from-scratch reference engine with a large pool (f32 KV)
static e2h_engine *t_ref16; // the same with f16 KV
static int32_t t_vocab;


// Engine over the fixture model with a pool of n_blocks blocks of block_size tokens.
static e2h_engine *make_engine(int n_blocks, int block_size, int kv_f16, int n_threads,
                               int max_batch) {
    e2h_model_info mi;
    e2h_model_get_info(t_model, &mi);
    e2h_engine_opts o;
    memset(&o, 0, sizeof o);
    o.n_threads = n_threads;
    o.block_size = block_size;
    o.kv_f16 = kv_f16;
    o.max_batch_tokens = max_batch;
    double block_bytes = 2.0 * mi.n_layers * mi.n_kv_heads * mi.head_dim * (kv_f16 ? 2 : 4) * block_size;
    o.kv_mem_gib = (n_blocks + 0.5) * block_bytes / 1073741824.0;
    return th_engine(t_model, &o);
}

// Compares s against a from-scratch evaluation of its tokens: its next-token logits (when
// computed) and every known log-probability (sampled tokens; appended ones once synced).
// Returns the max abs difference or +inf (and prints) when a difference exceeds abs_tol +
// rel_tol * |ref|.
static double check_seq(const e2h_seq *s, int synced, double abs_tol, double rel_tol, float *buf) {
    int32_t n = e2h_seq_len(s);
    const int32_t *t = e2h_seq_tokens(s);
    e2h_engine *ref = abs_tol > 1e-5 ? t_ref16 : t_ref;
    if (e2h_eval_logits(ref, t, n, buf)) {
        printf("  eval_logits: %s\n", e2h_engine_last_error(ref));
        return INFINITY;
    }
    double worst = 0;
    int bad = 0;
    if (synced == 0 && e2h_seq_logits(s)) {
        printf("  a sequence with pending tokens has logits\n");
        return INFINITY;
    }
    if (synced == 1 && !e2h_seq_logits(s)) {
        printf("  a synced sequence has no logits\n");
        return INFINITY;
    }
    if (e2h_seq_logits(s)) {
        const float *lg = e2h_seq_logits(s), *ref = buf + (size_t)(n - 1) * t_vocab;
        for (int32_t v = 0; v < t_vocab; v++) {
            double d = fabs((double)lg[v] - ref[v]);
            worst = d > worst ? d : worst;
            if (d > abs_tol + rel_tol * fabs(ref[v])) bad = 1;
        }
        if (bad) printf("  logits of a %d-token sequence differ (max %g)\n", n, worst);
    }
    const float *lp = e2h_seq_logprobs(s);
    for (int32_t i = 1; i < n; i++) {
        if (isnan(lp[i])) continue;
        double ref = th_log_softmax_at(buf + (size_t)(i - 1) * t_vocab, t_vocab, t[i]);
        double d = fabs(lp[i] - ref);
        worst = d > worst ? d : worst;
        if (d > abs_tol + rel_tol * fabs(ref) + 1e-5) { // + float rounding of the stored value
            printf("  logprob of token %d at %d: %g vs %g\n", t[i], i, lp[i], ref);
            bad = 1;
            break;
        }
    }
    return bad ? INFINITY : worst;
}

typedef struct {
    e2h_seq *s;
    int synced; // 1: its logits are current (computed by a sync, extend or fork since its last
                // create / append / truncate, which are lazy); 0: it has pending tokens;
                // -1: unknown (after a failed batch, part of which may have run)
} node;

static int n_live(const node *nodes) {
    int k = 0;
    for (int i = 0; i < MAX_NODES; i++) k += nodes[i].s != NULL;
    return k;
}
static int pick_live(const node *nodes, uint64_t *rng) {
    int k = n_live(nodes);
    if (!k) return -1;
    int j = th_rng_int(rng, k);
    for (int i = 0; i < MAX_NODES; i++)
        if (nodes[i].s && j-- == 0) return i;
    return -1;
}

typedef struct {
    int ops, creates, forks, extends, appends, truncates, releases, syncs, full, checks;
    double worst;
} tree_stats;

// One random operation on the tree; checks the sequences it touched.
static int tree_step(e2h_engine *e, node *nodes, uint64_t *rng, const int32_t bases[3][64],
                     double tol, float *buf, tree_stats *st) {
    int op = th_rng_int(rng, 11), i = pick_live(nodes, rng), ok = 1;
    int touched[MAX_NODES], n_touched = 0;
    e2h_status rc = E2H_OK;
    if (i < 0 || op < 2) { // create from a shared base prompt with a random tail
        int slot = -1;
        for (int j = 0; j < MAX_NODES && slot < 0; j++) if (!nodes[j].s) slot = j;
        if (slot < 0) return 1;
        int32_t p[72];
        int len = 1 + th_rng_int(rng, 60), tail = th_rng_int(rng, 4);
        memcpy(p, bases[th_rng_int(rng, 3)], sizeof(int32_t) * (size_t)len);
        for (int j = 0; j < tail; j++) p[len + j] = th_rng_int(rng, t_vocab);
        e2h_sampling sp = e2h_sampling_default();
        sp.temperature = 0.9f;
        sp.seed = th_rng_next(rng);
        rc = e2h_seq_create(e, p, len + tail, &sp, &nodes[slot].s);
        if (!rc) {
            nodes[slot].synced = 0;
            touched[n_touched++] = slot;
            st->creates++;
        }
    } else if (op == 2) { // fork into free slots
        int k = 1 + th_rng_int(rng, 3), free_slots[3], nf = 0;
        for (int j = 0; j < MAX_NODES && nf < k; j++) if (!nodes[j].s) free_slots[nf++] = j;
        if (nf < k) return 1;
        e2h_seq *kids[3];
        rc = e2h_seq_fork(e, nodes[i].s, k, kids);
        if (rc) nodes[i].synced = -1;
        if (!rc) {
            nodes[i].synced = 1;
            for (int j = 0; j < k; j++) {
                nodes[free_slots[j]].s = kids[j];
                nodes[free_slots[j]].synced = 1;
                touched[n_touched++] = free_slots[j];
            }
            st->forks++;
        }
    } else if (op < 6) { // extend a random subset together
        e2h_seq *batch[MAX_NODES];
        int nb = 0, budget = 1 + th_rng_int(rng, 10);
        for (int j = 0; j < MAX_NODES; j++)
            if (nodes[j].s && (j == i || th_rng_int(rng, 2)) && e2h_seq_len(nodes[j].s) + budget < 250) {
                batch[nb++] = nodes[j].s;
                touched[n_touched++] = j;
            }
        if (!nb) return 1;
        e2h_stop stop = {budget, NULL, 0, 1, 0};
        rc = e2h_seq_extend(e, batch, nb, &stop);
        for (int j = 0; j < n_touched; j++) {
            nodes[touched[j]].synced = rc == E2H_OK ? 1 : -1;
            if (!rc && e2h_seq_stop_reason(nodes[touched[j]].s) != E2H_STOP_LENGTH) {
                printf("  extend: stop reason %d, expected length\n", e2h_seq_stop_reason(nodes[touched[j]].s));
                ok = 0;
            }
        }
        if (!rc) st->extends++;
    } else if (op == 6) { // teacher-forced tokens
        int32_t t[6];
        int n = 1 + th_rng_int(rng, 6);
        if (e2h_seq_len(nodes[i].s) + n >= 250) return 1;
        for (int j = 0; j < n; j++) t[j] = th_rng_int(rng, t_vocab);
        rc = e2h_seq_append(e, nodes[i].s, t, n);
        if (!rc) nodes[i].synced = 0;
        touched[n_touched++] = i;
        if (!rc) st->appends++;
    } else if (op == 7) {
        rc = e2h_seq_truncate(e, nodes[i].s, 1 + th_rng_int(rng, e2h_seq_len(nodes[i].s)));
        if (!rc) nodes[i].synced = 0;
        touched[n_touched++] = i;
        if (!rc) st->truncates++;
    } else if (op == 10) { // compute what is pending for a random subset, in shared passes
        e2h_seq *batch[MAX_NODES];
        int nb = 0;
        for (int j = 0; j < MAX_NODES; j++)
            if (nodes[j].s && (j == i || th_rng_int(rng, 2))) {
                batch[nb++] = nodes[j].s;
                touched[n_touched++] = j;
            }
        rc = e2h_engine_sync(e, batch, nb);
        for (int j = 0; j < n_touched; j++) nodes[touched[j]].synced = rc == E2H_OK ? 1 : -1;
        if (!rc) st->syncs++;
    } else {
        e2h_seq_release(e, nodes[i].s);
        nodes[i].s = NULL;
        st->releases++;
    }
    st->ops++;
    if (rc == E2H_ERR_KV_FULL) {
        st->full++;
        if (!strstr(e2h_engine_last_error(e), "KV")) {
            printf("  KV_FULL without a clear message: %s\n", e2h_engine_last_error(e));
            ok = 0;
        }
        int j = pick_live(nodes, rng); // make room, as a caller would
        if (j >= 0) { e2h_seq_release(e, nodes[j].s); nodes[j].s = NULL; }
    } else if (rc) {
        printf("  op %d failed: %s (%s)\n", op, e2h_engine_last_error(e), e2h_status_name(rc));
        ok = 0;
    }
    for (int j = 0; j < n_touched; j++) {
        node *nd = &nodes[touched[j]];
        if (!nd->s) continue;
        double d = check_seq(nd->s, nd->synced, tol, tol, buf);
        st->checks++;
        if (!(d <= tol * 100)) ok = 0;
        st->worst = d > st->worst ? d : st->worst;
    }
    return ok;
}

static void random_tree(int n_blocks, int block_size, int kv_f16, int n_threads, int max_batch,
                        uint64_t seed, int steps, double tol, int expect_full) {
    e2h_engine *e = make_engine(n_blocks, block_size, kv_f16, n_threads, max_batch);
    CHECK(e != NULL);
    if (!e) return;
    float *buf = malloc(sizeof(float) * 256 * (size_t)t_vocab);
    node nodes[MAX_NODES];
    memset(nodes, 0, sizeof nodes);
    int32_t bases[3][64];
    uint64_t rng = seed;
    for (int b = 0; b < 3; b++)
        for (int j = 0; j < 64; j++) bases[b][j] = th_rng_int(&rng, t_vocab);
    tree_stats st;
    memset(&st, 0, sizeof st);
    int ok = 1;
    for (int step = 0; step < steps && ok; step++) {
        ok = tree_step(e, nodes, &rng, bases, tol, buf, &st);
        if (!ok) printf("  at step %d\n", step);
    }
    // Every live node, at the end.
    for (int j = 0; j < MAX_NODES && ok; j++)
        if (nodes[j].s && !(check_seq(nodes[j].s, nodes[j].synced, tol, tol, buf) <= tol * 100)) ok = 0;
    CHECK(ok);
    printf("  %d ops: %d creates, %d forks, %d extends, %d appends, %d truncates, %d releases, "
           "%d syncs, %d KV-full; %d checks, max |diff| %g\n", st.ops, st.creates, st.forks,
           st.extends, st.appends, st.truncates, st.releases, st.syncs, st.full, st.checks, st.worst);
    CHECK(st.forks > 0 && st.extends > 0 && st.truncates > 0 && st.appends > 0 && st.syncs > 0);
    e2h_kv_stats ks0;
    e2h_engine_get_kv_stats(e, &ks0);
    printf("  %lld preemptions\n", (long long)ks0.preemptions);
    // A small pool is overloaded: it preempts (no KV-full unless one sequence outgrows it).
    if (expect_full) CHECK(ks0.preemptions > 0);
    for (int j = 0; j < MAX_NODES; j++)
        if (nodes[j].s) e2h_seq_release(e, nodes[j].s);
    e2h_kv_stats ks;
    e2h_engine_get_kv_stats(e, &ks);
    CHECKF(ks.blocks_used == 0 && ks.independent_bytes == 0, "blocks used %d after releasing all",
           ks.blocks_used);
    CHECK(ks.blocks_cached <= ks.blocks_total);
    free(buf);
    e2h_engine_free(e);
}

// Large pool: prefix reuse and COW without evictions.
TEST(random_tree_large_pool) { random_tree(400, 16, 0, 1, 64, 11, 120, 1e-5, 0); }
// Small pool with awkward block and batch sizes: evictions and exhaustion too.
TEST(random_tree_small_pool) { random_tree(40, 5, 0, 2, 37, 12, 160, 1e-5, 1); }
// f16 KV against the f32-KV reference.
TEST(random_tree_f16_kv) { random_tree(120, 7, 1, 1, 64, 13, 80, 2e-4, 0); }

// Runs prompt `which` with seed `seed` for `n_new` tokens, beside `n_others` other sequences.
static int sample_tokens(e2h_engine *e, const int32_t *prompt, int32_t n, uint64_t seed,
                         int n_others, int n_new, int32_t *out) {
    e2h_seq *seqs[8] = {0};
    e2h_sampling sp = e2h_sampling_default();
    sp.temperature = 1.0f;
    sp.top_p = 0.95f;
    sp.seed = seed;
    int ok = e2h_seq_create(e, prompt, n, &sp, &seqs[0]) == E2H_OK;
    for (int i = 1; i <= n_others && ok; i++) {
        int32_t other[20];
        for (int j = 0; j < 20; j++) other[j] = (prompt[j % n] * 7 + i * 13 + j) % t_vocab;
        sp.seed = seed + 1000 + i;
        ok = e2h_seq_create(e, other, 10 + i, &sp, &seqs[i]) == E2H_OK;
    }
    e2h_stop stop = {n_new, NULL, 0, 1, 0};
    if (ok) ok = e2h_seq_extend(e, seqs, 1 + n_others, &stop) == E2H_OK;
    if (ok) memcpy(out, e2h_seq_tokens(seqs[0]) + n, sizeof(int32_t) * (size_t)n_new);
    for (int i = 0; i <= n_others; i++)
        if (seqs[i]) e2h_seq_release(e, seqs[i]);
    return ok;
}

TEST(sampling_reproducible_alone_and_batched) {
    e2h_engine *e1 = make_engine(300, 16, 0, 1, 512), *e2 = make_engine(300, 8, 0, 2, 5);
    CHECK(e1 && e2);
    if (!e1 || !e2) { e2h_engine_free(e1); e2h_engine_free(e2); return; }
    int32_t prompt[30], a[40], b[40], c[40], d[40];
    for (int i = 0; i < 30; i++) prompt[i] = (i * 37 + 5) % t_vocab;
    CHECK(sample_tokens(e1, prompt, 30, 42, 0, 40, a));
    CHECK(sample_tokens(e1, prompt, 30, 42, 5, 40, b)); // batched, and with prefix reuse
    CHECK(sample_tokens(e2, prompt, 30, 42, 3, 40, c)); // other block size, batch, threads
    CHECK(sample_tokens(e1, prompt, 30, 43, 0, 40, d)); // another seed
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) == 0);
    CHECK(memcmp(a, d, sizeof a) != 0);
    e2h_engine_free(e1);
    e2h_engine_free(e2);
}

TEST(fork_children_reproducible_alone) {
    e2h_engine *e = make_engine(300, 16, 0, 1, 512);
    CHECK(e != NULL);
    if (!e) return;
    int32_t prompt[21];
    for (int i = 0; i < 21; i++) prompt[i] = (i * 11 + 3) % t_vocab;
    e2h_sampling sp = e2h_sampling_default();
    sp.temperature = 0.8f;
    sp.seed = 9;
    e2h_stop stop = {25, NULL, 0, 1, 0};
    int32_t all[4][25], alone[25];
    e2h_seq *root = NULL, *kids[4];
    CHECK(e2h_seq_create(e, prompt, 21, &sp, &root) == E2H_OK);
    CHECK(e2h_seq_fork(e, root, 4, kids) == E2H_OK);
    CHECK(e2h_seq_extend(e, kids, 4, &stop) == E2H_OK);
    for (int i = 0; i < 4; i++) memcpy(all[i], e2h_seq_tokens(kids[i]) + 21, sizeof all[i]);
    CHECK(memcmp(all[0], all[1], sizeof all[0]) != 0); // children draw different samples
    e2h_kv_stats ks;
    e2h_engine_get_kv_stats(e, &ks);
    // Shared: prompt blocks once (2) + each child's own blocks (46 tokens, positions 16..45).
    CHECKF(ks.blocks_used * ks.block_bytes < ks.independent_bytes, "used %d blocks", ks.blocks_used);
    for (int i = 0; i < 4; i++) e2h_seq_release(e, kids[i]);
    e2h_seq_release(e, root);
    // Child 2 alone gives the same tokens.
    CHECK(e2h_seq_create(e, prompt, 21, &sp, &root) == E2H_OK);
    CHECK(e2h_seq_fork(e, root, 4, kids) == E2H_OK);
    CHECK(e2h_seq_extend(e, &kids[2], 1, &stop) == E2H_OK);
    memcpy(alone, e2h_seq_tokens(kids[2]) + 21, sizeof alone);
    CHECK(memcmp(alone, all[2], sizeof alone) == 0);
    for (int i = 0; i < 4; i++) e2h_seq_release(e, kids[i]);
    e2h_seq_release(e, root);
    e2h_engine_get_kv_stats(e, &ks);
    CHECK(ks.blocks_used == 0);
    e2h_engine_free(e);
}

// Runs a root of 22 tokens forked 4 ways and extended 20 sampled tokens on e; copies the
// kids' tokens into out (4 x 42). Checks each kid against the from-scratch reference.
static e2h_status fork_extend(e2h_engine *e, int32_t (*out)[42], float *buf, e2h_seq **root_out) {
    int32_t prompt[22];
    for (int i = 0; i < 22; i++) prompt[i] = (i * 5 + 1) % t_vocab;
    e2h_sampling sp = e2h_sampling_default();
    sp.temperature = 0.7f;
    e2h_seq *root = NULL, *kids[4] = {0};
    e2h_status st = e2h_seq_create(e, prompt, 22, &sp, &root); // 5 blocks
    if (!st) st = e2h_seq_fork(e, root, 4, kids);
    e2h_stop stop = {20, NULL, 0, 1, 0};
    if (!st) st = e2h_seq_extend(e, kids, 4, &stop);
    for (int i = 0; i < 4 && !st; i++) {
        CHECK(e2h_seq_len(kids[i]) == 42);
        memcpy(out[i], e2h_seq_tokens(kids[i]), sizeof out[i]);
        CHECK(check_seq(kids[i], 1, 1e-5, 1e-5, buf) <= 1e-5);
    }
    for (int i = 0; i < 4; i++) e2h_seq_release(e, kids[i]);
    *root_out = root;
    return st;
}

// Overload, not failure: 4 kids of 42 tokens need 24 blocks of 5, the pool has 10. The
// extend preempts (drops K/V, keeps tokens, recomputes) and gives the tokens of a big pool.
TEST(exhaustion_preempts_not_fails) {
    e2h_engine *e = make_engine(10, 5, 0, 1, 64); // 50 token slots
    e2h_engine *big = make_engine(400, 5, 0, 1, 64);
    CHECK(e != NULL && big != NULL);
    if (!e || !big) return;
    float *buf = malloc(sizeof(float) * 256 * (size_t)t_vocab);
    int32_t a[4][42], b[4][42];
    e2h_seq *root = NULL, *broot = NULL;
    e2h_status st = fork_extend(e, a, buf, &root);
    CHECKF(st == E2H_OK, "%s: %s", e2h_status_name(st), e2h_engine_last_error(e));
    CHECK(fork_extend(big, b, buf, &broot) == E2H_OK);
    CHECK(memcmp(a, b, sizeof a) == 0);
    e2h_kv_stats ks;
    e2h_engine_get_kv_stats(e, &ks);
    CHECKF(ks.preemptions > 0, "%lld preemptions", (long long)ks.preemptions);
    // The root (preempted or not) keeps its logits, and a kid forked from it now is right.
    CHECK(root && check_seq(root, 1, 1e-5, 1e-5, buf) <= 1e-5);
    e2h_seq *kid = NULL;
    CHECK(root && e2h_seq_fork(e, root, 1, &kid) == E2H_OK);
    e2h_stop stop = {8, NULL, 0, 1, 0};
    CHECK(kid && e2h_seq_extend(e, &kid, 1, &stop) == E2H_OK);
    CHECK(kid && check_seq(kid, 1, 1e-5, 1e-5, buf) <= 1e-5);
    e2h_seq_release(e, kid);
    // Only what cannot fit in the empty pool fails: a prompt longer than the pool, and a
    // sequence extended past it (the error names the sequence and the sizes).
    int32_t big_ids[120];
    for (int i = 0; i < 120; i++) big_ids[i] = i % t_vocab;
    e2h_sampling sp = e2h_sampling_default();
    e2h_seq *s = NULL;
    CHECK(e2h_seq_create(e, big_ids, 120, &sp, &s) == E2H_ERR_KV_FULL && s == NULL);
    CHECK(root && e2h_seq_fork(e, root, 1, &kid) == E2H_OK);
    stop.max_tokens = 100; // 122 tokens: 25 blocks of 5
    st = kid ? e2h_seq_extend(e, &kid, 1, &stop) : E2H_ERR_INVALID_ARG;
    CHECKF(st == E2H_ERR_KV_FULL, "%s", e2h_status_name(st));
    CHECKF(strstr(e2h_engine_last_error(e), "sequence 0") != NULL, "%s", e2h_engine_last_error(e));
    CHECK(root && check_seq(root, 1, 1e-5, 1e-5, buf) <= 1e-5); // nothing corrupted
    e2h_seq_release(e, kid);
    e2h_seq_release(e, root);
    e2h_seq_release(big, broot);
    e2h_engine_get_kv_stats(e, &ks);
    CHECK(ks.blocks_used == 0);
    free(buf);
    e2h_engine_free(big);
    e2h_engine_free(e);
}

TEST(bad_arguments_are_rejected) {
    e2h_engine *e = make_engine(40, 16, 0, 1, 64);
    CHECK(e != NULL);
    if (!e) return;
    int32_t prompt[5] = {1, 2, 3, 4, 5}, bad[2] = {1, 100000};
    e2h_seq *s = NULL, *list[2];
    CHECK(e2h_seq_create(e, prompt, 5, NULL, &s) == E2H_OK);
    CHECK(e2h_engine_sync(e, &s, 1) == E2H_OK);
    e2h_stop stop = {4, NULL, 0, 1, 0};
    list[0] = list[1] = s;
    CHECK(e2h_seq_extend(e, list, 2, &stop) == E2H_ERR_INVALID_ARG); // listed twice
    list[1] = NULL;
    CHECK(e2h_seq_extend(e, list, 2, &stop) == E2H_ERR_INVALID_ARG);
    CHECK(e2h_seq_append(e, s, bad, 2) == E2H_ERR_INVALID_ARG);
    CHECK(e2h_seq_truncate(e, s, 0) == E2H_ERR_INVALID_ARG);
    CHECK(e2h_seq_truncate(e, s, 6) == E2H_ERR_INVALID_ARG);
    CHECK(e2h_seq_fork(e, s, 0, list) == E2H_ERR_INVALID_ARG);
    CHECK(e2h_seq_len(s) == 5);
    float *buf = malloc(sizeof(float) * 256 * (size_t)t_vocab);
    CHECK(check_seq(s, 1, 1e-5, 1e-5, buf) <= 1e-5); // unchanged and still consistent
    free(buf);
    e2h_seq_release(e, s);
    e2h_engine_free(e);
}

int main(void) {
    e2h_model_info mi;
    if (!(t_model = th_load_model(FIX_MODEL, &mi))) return 1;
    t_vocab = mi.vocab_size;
    t_ref = make_engine(2000, 16, 0, 1, 256);
    t_ref16 = make_engine(2000, 16, 1, 1, 256);
    if (!t_ref || !t_ref16) return th_setup_failed();
    RUN(random_tree_large_pool);
    RUN(random_tree_small_pool);
    RUN(random_tree_f16_kv);
    RUN(sampling_reproducible_alone_and_batched);
    RUN(fork_children_reproducible_alone);
    RUN(exhaustion_preempts_not_fails);
    RUN(bad_arguments_are_rejected);
    e2h_engine_free(t_ref);
    e2h_engine_free(t_ref16);
    e2h_model_free(t_model);
    return TEST_SUMMARY();
}
