// engine/search/maj.c — majority voting (self-consistency, Wang et al. 2023): N independent
// samples; the most frequent canonical answer key wins (select.c). No scorer is needed;
// with one, every step is scored too so that one run also serves best-of-N and weighted
// voting in the report.
#include "search.h"

e2h_status search_maj(srch_ctx *c, srch_node *root) { return srch_sample_n(c, root, c->o.n); }
