// engine/search/weighted.c — weighted voting (Sun et al. 2024, "Easy-to-Hard
// Generalization", after Li et al. 2023): N samples; each distinct answer key gets the sum
// of its samples' aggregate scores (default: the product of the step scores); the largest
// sum wins (select.c).
#include "search.h"

e2h_status search_weighted(srch_ctx *c, srch_node *root) { return srch_sample_n(c, root, c->o.n); }
