// engine/search/search.h — internals shared by the search methods (one file per method).
//
// A method grows a tree of policy sequences with the public tree API: fork a node, extend
// its children to the step delimiter, score the new step of each through a scorer
// callback, release the branches it prunes at once. Nodes carry the step boundaries and
// scores of their path; finished paths are copied out as "paths" and become the samples of
// an e2h_search_result.
#ifndef E2H_SEARCH_H
#define E2H_SEARCH_H

#include <stdint.h>

#include "../../include/e2h.h"

// PLAN.md §5: the scorer callback. The real one wraps e2h_prm_score_new_steps; tests pass a
// deterministic fake.
typedef struct {
    void *ctx;
    // Scores the newest step of each seq (tokens since that seq's previous scoring).
    // scores[i] in [0,1].
    e2h_status (*score)(void *ctx, e2h_engine *e, e2h_seq *const *seqs, int n, int is_final,
                        float *scores);
} search_scorer;

typedef struct {
    e2h_seq *seq;
    int32_t n_steps, cap_steps;
    int32_t *step_end;    // (n_steps) absolute token position where each step ends
    float *score;         // (n_steps) score of each step (NaN: not scored)
    int done;             // solution finished (EOS, token budget, context)
} srch_node;

typedef struct {          // a finished path, copied out of its node
    int32_t *tokens;      // (n_tokens) generated tokens
    int32_t n_tokens, n_steps;
    int32_t *step_end;    // (n_steps) relative to the end of the prompt
    float *score;         // (n_steps)
    e2h_stop_reason stop;
} srch_path;

// A batch of searches sharing decode batches (batch.c): a search with a gate extends its
// sequences through it instead of e2h_seq_extend.
typedef struct srch_gate srch_gate;
e2h_status srch_gate_extend(srch_gate *g, e2h_seq *const *seqs, int n, const e2h_stop *stop);

typedef struct {
    e2h_engine *e;
    srch_gate *gate;      // NULL: extend directly
    e2h_search_opts o;
    search_scorer sc;     // sc.score NULL: no scorer
    int32_t n_prompt;
    srch_path *paths;
    int n_paths, cap_paths;
    int64_t policy_tokens, prm_tokens;
    int64_t prm_engine_tokens; // tokens the attached PRM's engine computed for this search
    int rounds;
    const char *delim[1];
    e2h_seq **tmp;        // scratch lists of seqs/nodes (grown on demand)
    srch_node **tmpn;
    float *tmps;
    int tmp_cap;
} srch_ctx;

// Error with a message in the engine (e2h_engine_last_error).
e2h_status srch_err(srch_ctx *c, e2h_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
e2h_status srch_tmp_reserve(srch_ctx *c, int n);

// The root node: the prompt as a sequence with the search's sampling settings.
e2h_status srch_root(srch_ctx *c, const int32_t *prompt, int32_t n, const e2h_sampling *sp,
                     srch_node *root);
// k children of parent (sharing all its blocks; child i's RNG stream is derived from i).
e2h_status srch_fork(srch_ctx *c, srch_node *parent, int k, srch_node *kids);
// Releases the node's sequence (its blocks go back to the pool now) and its arrays.
void srch_node_free(srch_ctx *c, srch_node *n);
// Extends each node by one step (to the delimiter; to the end of the solution when final),
// records the step boundary, marks finished nodes done and scores the new steps (when
// there is a scorer). Nodes already done are skipped.
e2h_status srch_expand(srch_ctx *c, srch_node **nodes, int n, int final);
// Copies a node's path out as a finished path (sample).
e2h_status srch_emit(srch_ctx *c, const srch_node *n);
// One round of the tree methods (beam, REBASE): extends every active node by a step, emits and
// frees the nodes that finished, and compacts act[0..*n_act) to those still active.
e2h_status srch_round(srch_ctx *c, srch_node **act, int *n_act, int final);
// The same into *p (caller frees with srch_path_free), and moving a path into c->paths.
e2h_status srch_snapshot_node(srch_ctx *c, const srch_node *n, srch_path *p);
e2h_status srch_push_path(srch_ctx *c, srch_path *p);
void srch_path_free(srch_path *p);
// Aggregate of a node's or path's step scores (NaN when it has none).
float srch_agg(const float *score, int32_t n, e2h_agg a);
// Indices of a stable descending sort of v (NaN last).
void srch_argsort_desc(const float *v, int n, int *idx);
// Reports a round to opts.on_round.
void srch_report_round(srch_ctx *c, srch_node **kept, int n_kept, int n_generated);

// N samples of whole solutions, step by step (shared by greedy, maj, bon, weighted).
e2h_status srch_sample_n(srch_ctx *c, srch_node *root, int n);

// e2h_search_run through a gate (NULL: directly).
e2h_status srch_run(e2h_engine *e, const int32_t *prompt, int32_t n_prompt,
                    const e2h_search_opts *opts, srch_gate *gate, e2h_search_result *out);

// Methods: they fill c->paths (the samples) from the root (which they may release).
e2h_status search_greedy(srch_ctx *c, srch_node *root);
e2h_status search_maj(srch_ctx *c, srch_node *root);
e2h_status search_bon(srch_ctx *c, srch_node *root);
e2h_status search_weighted(srch_ctx *c, srch_node *root);
e2h_status search_beam(srch_ctx *c, srch_node *root);
e2h_status search_dvts(srch_ctx *c, srch_node *root);
e2h_status search_rebase(srch_ctx *c, srch_node *root);

// REBASE allotment: w[i] = children of node i out of budget (sum exactly budget).
void srch_rebase_allot(const float *r, int n, int budget, float temp, int *w);

// Selection over finished samples (the result's samples have answers/keys/aggs filled).
int search_select_maj(const e2h_search_result *r);
int search_select_agg(const e2h_search_result *r, e2h_agg a);       // best aggregate
int search_select_weighted(const e2h_search_result *r, e2h_agg a);  // weighted vote

#endif
