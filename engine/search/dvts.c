// engine/search/dvts.c — diverse verifier tree search (DVTS) as in search-and-learn
// (Beeching et al., Hugging Face 2024): the N samples are split into N/M independent
// subtrees. Each round every unfinished subtree forks M candidates of its next step,
// all candidates are extended to the delimiter and scored in one batch, and each subtree
// continues greedily with its best candidate (by opts.agg_search, default "last"); the
// other M-1 are released at once. A subtree ends when its chosen candidate finishes (or at
// the last of up to 40 rounds, which writes to the end). The samples are the M candidates
// of each subtree's last round, subtree by subtree (N in all), as search-and-learn returns.
#include <stdlib.h>

#include "search.h"

e2h_status search_dvts(srch_ctx *c, srch_node *root) {
    const int n = c->o.n, m = c->o.m, nsub = n / m;
    srch_node *sub = calloc((size_t)nsub, sizeof *sub);    // each subtree's current node
    srch_node *kids = calloc((size_t)n, sizeof *kids);     // candidates of this round
    srch_node **lst = calloc((size_t)n, sizeof *lst);
    srch_path *last = calloc((size_t)n, sizeof *last);     // each subtree's last candidates
    char *done = calloc((size_t)nsub, 1);
    e2h_status st = E2H_OK;
    if (!sub || !kids || !lst || !last || !done) st = srch_err(c, E2H_ERR_NOMEM, "search: out of memory");
    if (!st) st = srch_fork(c, root, nsub, sub);
    srch_node_free(c, root);
    for (int r = 0; r < c->o.max_rounds && !st; r++) {
        int k = 0, active = 0;
        for (int s = 0; s < nsub && !st; s++) {
            if (done[s]) continue;
            st = srch_fork(c, &sub[s], m, kids + s * m);
            srch_node_free(c, &sub[s]); // its candidates hold its blocks
            for (int j = 0; j < m && !st; j++) lst[k++] = &kids[s * m + j];
            active++;
        }
        if (st || active == 0) break;
        st = srch_expand(c, lst, k, r == c->o.max_rounds - 1);
        c->rounds++;
        int kept = 0;
        for (int s = 0; s < nsub && !st; s++) {
            if (done[s]) continue;
            srch_node *cand = kids + s * m;
            int best = 0;
            float bv = srch_agg(cand[0].score, cand[0].n_steps, c->o.agg_search);
            for (int j = 1; j < m; j++) {
                float v = srch_agg(cand[j].score, cand[j].n_steps, c->o.agg_search);
                if (v > bv || (bv != bv && v == v)) { best = j; bv = v; }
            }
            for (int j = 0; j < m && !st; j++) {
                srch_path_free(&last[s * m + j]);
                st = srch_snapshot_node(c, &cand[j], &last[s * m + j]);
            }
            sub[s] = cand[best];
            cand[best].seq = NULL; // moved (its arrays too)
            cand[best].step_end = NULL;
            cand[best].score = NULL;
            for (int j = 0; j < m; j++) srch_node_free(c, &cand[j]);
            if (sub[s].done) {
                done[s] = 1;
                srch_node_free(c, &sub[s]);
            } else {
                lst[kept++] = &sub[s];
            }
        }
        if (!st) srch_report_round(c, lst, kept, k);
    }
    for (int i = 0; i < n && !st; i++)
        if (last[i].tokens) st = srch_push_path(c, &last[i]);
    for (int i = 0; last && i < n; i++) srch_path_free(&last[i]);
    for (int i = 0; kids && i < n; i++) srch_node_free(c, &kids[i]);
    for (int s = 0; sub && s < nsub; s++) srch_node_free(c, &sub[s]);
    free(sub); free(kids); free(lst); free(last); free(done);
    return st;
}
