// engine/search/beam.c — step-level beam search as in search-and-learn (Beeching et al.,
// "Scaling test-time compute with open models", Hugging Face 2024; after Snell et al. 2024):
// N beams; each round every active beam writes one step (to the delimiter "\n\n"), the
// steps are scored, finished beams leave the beam as solutions, and the N/M best of the rest
// survive; the survivors are duplicated back to N beams (round robin, so each gets M when
// none finished). Up to 40 rounds; the last one writes to the end. It stops once N
// solutions are finished; the first N finished are the samples. Ranking: the aggregate
// opts.agg_search of the step scores (default "last", search-and-learn's agg_strategy).
// Not done: search-and-learn's lookahead steps and duplicate filtering (both off here).
#include <stdlib.h>

#include "search.h"

// Releases the nodes that are not among the `keep` best (by aggregate), keeping the rest
// in their original order. Returns the new count.
static int beam_prune(srch_ctx *c, srch_node **act, int n_act, int keep) {
    if (n_act <= keep) return n_act;
    float *v = malloc((size_t)n_act * sizeof *v);
    int *idx = malloc((size_t)n_act * sizeof *idx);
    char *survive = calloc((size_t)n_act, 1);
    if (!v || !idx || !survive) { // keep the first `keep` rather than fail
        for (int i = keep; i < n_act; i++) srch_node_free(c, act[i]);
        free(v); free(idx); free(survive);
        return keep;
    }
    for (int i = 0; i < n_act; i++) v[i] = srch_agg(act[i]->score, act[i]->n_steps, c->o.agg_search);
    srch_argsort_desc(v, n_act, idx);
    for (int i = 0; i < keep; i++) survive[idx[i]] = 1;
    int m = 0;
    for (int i = 0; i < n_act; i++) {
        if (survive[i]) act[m++] = act[i];
        else srch_node_free(c, act[i]); // pruned: its blocks go back now
    }
    free(v); free(idx); free(survive);
    return m;
}

e2h_status search_beam(srch_ctx *c, srch_node *root) {
    const int n = c->o.n, keep = c->o.n / c->o.m;
    srch_node *pool[2];
    pool[0] = calloc((size_t)n, sizeof(srch_node));
    pool[1] = calloc((size_t)n, sizeof(srch_node));
    srch_node **act = calloc((size_t)n, sizeof *act);
    e2h_status st = E2H_OK;
    if (!pool[0] || !pool[1] || !act) st = srch_err(c, E2H_ERR_NOMEM, "search: out of memory");
    if (!st) st = srch_fork(c, root, n, pool[0]);
    srch_node_free(c, root);
    int cur = 0, n_act = 0;
    for (int i = 0; i < n && !st; i++) act[n_act++] = &pool[0][i];
    for (int r = 0; r < c->o.max_rounds && !st && n_act > 0; r++) {
        int generated = n_act;
        st = srch_round(c, act, &n_act, r == c->o.max_rounds - 1);
        if (st) break;
        n_act = beam_prune(c, act, n_act, keep);
        srch_report_round(c, act, n_act, generated);
        if (c->n_paths >= n || n_act == 0) break;
        // refill to N beams: survivor j gets N/n_act (+1 for the first N % n_act)
        srch_node *next = pool[cur ^ 1];
        int w = 0;
        for (int j = 0; j < n_act && !st; j++) {
            int k = n / n_act + (j < n % n_act);
            st = srch_fork(c, act[j], k, next + w);
            srch_node_free(c, act[j]);
            if (!st) w += k;
        }
        for (int j = 0; j < n_act; j++) srch_node_free(c, act[j]); // after an error
        n_act = 0;
        for (int i = 0; i < w && !st; i++) act[n_act++] = &next[i];
        if (st) for (int i = 0; i < w; i++) srch_node_free(c, &next[i]);
        cur ^= 1;
    }
    for (int p = 0; p < 2; p++) // every node lives in one of the pools
        for (int i = 0; pool[p] && i < n; i++) srch_node_free(c, &pool[p][i]);
    // search-and-learn keeps the first N finished beams
    while (!st && c->n_paths > n) srch_path_free(&c->paths[--c->n_paths]);
    free(pool[0]);
    free(pool[1]);
    free(act);
    return st;
}
