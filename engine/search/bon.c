// engine/search/bon.c — best-of-N: N independent samples, each step scored as it is
// written; the sample with the best aggregate wins. Default aggregate: the minimum step
// score (Lightman et al. 2023, "Let's Verify Step by Step"; Sun et al. 2024).
#include "search.h"

e2h_status search_bon(srch_ctx *c, srch_node *root) { return srch_sample_n(c, root, c->o.n); }
