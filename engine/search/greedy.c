// engine/search/greedy.c — one greedy (temperature 0) solution, extended step by step so
// that a scorer (when given) scores each step as it is written.
#include "search.h"

e2h_status search_greedy(srch_ctx *c, srch_node *root) { return srch_sample_n(c, root, 1); }
