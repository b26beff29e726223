// engine/forward.h — one forward pass for everything: a batch of sequences, each with some
// new tokens (a prefill chunk or one decode token), runs through the model together. Linear
// layers see one (n_tokens, dim) matrix of all new tokens, so weights are read once per pass;
// attention runs per sequence over its KV block table.
#ifndef E2H_ENGINE_FORWARD_H
#define E2H_ENGINE_FORWARD_H

#include "kv.h"
#include "model.h"

typedef struct {
    kv_seq *kv;            // the sequence's cache; its K/V for positions
                           // [kv->n_tokens, kv->n_tokens + n) are written by the pass.
                           // Blocks must be reserved (kv_seq_reserve) by the caller; the
                           // caller commits the tokens (kv_seq_commit) after the pass.
    const int32_t *tokens; // (n) new token ids
    int32_t n;
    int32_t n_logits;      // logits for the last n_logits of its tokens (0..n)
} fwd_seq;

typedef struct fwd_state fwd_state;

// Allocates all run buffers once for batches of up to max_tokens new tokens and max_seqs
// sequences, contexts up to max_ctx. The caller owns the result (fwd_free).
fwd_state *fwd_init(const struct e2h_model *m, const e2h_ops *ops, int max_tokens, int max_seqs,
                    int max_ctx, int n_threads);
void fwd_free(fwd_state *s);
int fwd_max_tokens(const fwd_state *s);

// Runs the pass. logits: (sum of n_logits, vocab), rows in order of seqs and positions.
// hidden (optional, may be NULL): (sum of n_logits, dim) final-normed hidden states of the
// same rows (for PRM heads). Allocates nothing. Returns E2H_OK or E2H_ERR_INVALID_ARG /
// E2H_ERR_CONTEXT with a message in err.
e2h_status fwd_run(fwd_state *s, const struct e2h_model *m, kv_pool *kv, e2h_pool *pool,
                   const fwd_seq *seqs, int n_seqs, float *logits, float *hidden, char *err,
                   size_t err_len);

#endif
