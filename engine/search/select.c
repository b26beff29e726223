// engine/search/select.c — choosing one answer from finished samples: majority vote over
// canonical answer keys, the best aggregate score (best-of-N), and the vote weighted by
// aggregate scores (weighted voting). Ties go to the answer seen first, so the choice
// depends only on the samples and their order.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "search.h"

// Index of the first sample with the same key as sample i (its voting group).
static int sel_group(const e2h_search_result *r, int i) {
    if (!r->samples[i].key) return -1;
    for (int j = 0; j < i; j++)
        if (r->samples[j].key && !strcmp(r->samples[j].key, r->samples[i].key)) return j;
    return i;
}

// Votes per group (w NULL: one per sample); returns the group leader with the largest total.
static int sel_vote(const e2h_search_result *r, const float *w) {
    double *tot = calloc((size_t)r->n_samples + 1, sizeof *tot);
    if (!tot) return -1;
    for (int i = 0; i < r->n_samples; i++) {
        if (!r->samples[i].key) continue;
        double v = w ? (isnan(w[i]) ? 0.0 : w[i]) : 1.0;
        tot[sel_group(r, i)] += v;
    }
    int best = -1;
    for (int i = 0; i < r->n_samples; i++) {
        if (!r->samples[i].key || sel_group(r, i) != i) continue;
        if (best < 0 || tot[i] > tot[best]) best = i;
    }
    free(tot);
    return best;
}

int search_select_maj(const e2h_search_result *r) { return sel_vote(r, NULL); }

int search_select_agg(const e2h_search_result *r, e2h_agg a) {
    int best = -1;
    for (int i = 0; i < r->n_samples; i++) {
        float v = r->samples[i].agg[a];
        if (best < 0) { best = i; continue; }
        float b = r->samples[best].agg[a];
        if (!isnan(v) && (isnan(b) || v > b)) best = i;
    }
    return best;
}

// Weighted voting (Sun et al. 2024, after Uesato et al. 2022 / Li et al. 2023): the answer
// with the largest sum of aggregate scores; the selected sample is that answer's best one.
int search_select_weighted(const e2h_search_result *r, e2h_agg a) {
    float *w = malloc(((size_t)r->n_samples + 1) * sizeof *w);
    if (!w) return -1;
    for (int i = 0; i < r->n_samples; i++) w[i] = r->samples[i].agg[a];
    int g = sel_vote(r, w);
    free(w);
    if (g < 0) return -1;
    int best = g;
    for (int i = g + 1; i < r->n_samples; i++)
        if (sel_group(r, i) == g && r->samples[i].agg[a] > r->samples[best].agg[a]) best = i;
    return best;
}
