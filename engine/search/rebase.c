// engine/search/rebase.c — REBASE, reward-balanced search (Wu, Sun, Li, Welleck, Yang,
// "Inference Scaling Laws: An Empirical Analysis of Compute-Optimal Inference for
// Problem-Solving with Language Models", 2024). The root gets the whole budget of N
// children. Each round the nodes of the newest depth are extended by one step and scored;
// finished ones become solutions and reduce the budget B = N - finished. Each unfinished
// node j then gets W_j = B * softmax(R_j / T_b) children, R_j its step score (by
// opts.agg_search, default "last") and T_b the balance temperature (default 0.1); nodes
// with W_j = 0 are released at once. The paper rounds each W_j; here the rounding is by
// largest remainder so that the W_j add up to exactly B (the budget is then spent exactly,
// ties to the earlier node). Up to 40 rounds; the last one writes to the end.
#include <math.h>
#include <stdlib.h>

#include "search.h"

void srch_rebase_allot(const float *r, int n, int budget, float temp, int *w) {
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++) mx = r[i] > mx ? r[i] : mx;
    double *p = malloc((size_t)n * sizeof *p);
    if (!p || !isfinite(mx)) { // no usable scores: spread evenly
        for (int i = 0; i < n; i++) w[i] = budget / n + (i < budget % n);
        free(p);
        return;
    }
    for (int i = 0; i < n; i++) sum += p[i] = isnan(r[i]) ? 0.0 : exp(((double)r[i] - mx) / temp);
    int given = 0;
    for (int i = 0; i < n; i++) {
        double x = budget * p[i] / sum;
        w[i] = (int)floor(x);
        p[i] = x - w[i]; // remainder
        given += w[i];
    }
    while (given < budget) { // largest remainders first, earlier node on ties
        int b = 0;
        for (int i = 1; i < n; i++) if (p[i] > p[b]) b = i;
        w[b]++;
        p[b] = -1;
        given++;
    }
    free(p);
}

e2h_status search_rebase(srch_ctx *c, srch_node *root) {
    const int n = c->o.n;
    srch_node *pool[2];
    pool[0] = calloc((size_t)n, sizeof(srch_node));
    pool[1] = calloc((size_t)n, sizeof(srch_node));
    srch_node **act = calloc((size_t)n, sizeof *act);
    float *rw = calloc((size_t)n, sizeof *rw);
    int *w = calloc((size_t)n, sizeof *w);
    e2h_status st = E2H_OK;
    if (!pool[0] || !pool[1] || !act || !rw || !w) st = srch_err(c, E2H_ERR_NOMEM, "search: out of memory");
    if (!st) st = srch_fork(c, root, n, pool[0]);
    srch_node_free(c, root);
    int cur = 0, n_act = 0;
    for (int i = 0; i < n && !st; i++) act[n_act++] = &pool[0][i];
    for (int r = 0; r < c->o.max_rounds && !st && n_act > 0; r++) {
        int generated = n_act;
        st = srch_round(c, act, &n_act, r == c->o.max_rounds - 1);
        if (st) break;
        int budget = n - c->n_paths;
        if (budget <= 0 || n_act == 0) break;
        for (int i = 0; i < n_act; i++) rw[i] = srch_agg(act[i]->score, act[i]->n_steps, c->o.agg_search);
        srch_rebase_allot(rw, n_act, budget, c->o.rebase_temperature, w);
        int m = 0;
        for (int i = 0; i < n_act; i++) {
            if (w[i] > 0) { w[m] = w[i]; act[m++] = act[i]; }
            else srch_node_free(c, act[i]); // no children: pruned now
        }
        n_act = m;
        srch_report_round(c, act, n_act, generated);
        srch_node *next = pool[cur ^ 1];
        int q = 0;
        for (int j = 0; j < n_act && !st; j++) {
            st = srch_fork(c, act[j], w[j], next + q);
            srch_node_free(c, act[j]);
            if (!st) q += w[j];
        }
        n_act = 0;
        for (int i = 0; i < q && !st; i++) act[n_act++] = &next[i];
        cur ^= 1;
    }
    for (int p = 0; p < 2; p++)
        for (int i = 0; pool[p] && i < n; i++) srch_node_free(c, &pool[p][i]);
    free(pool[0]); free(pool[1]); free(act); free(rw); free(w);
    return st;
}
