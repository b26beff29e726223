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
    int32_t n_out;         // output rows of this sequence (0..n): positions whose final-normed
                           // hidden state (and logits) the pass returns
    const int32_t *out_rows; // (n_out) ascending offsets in [0, n); NULL: the last n_out tokens
    const uint8_t *out_logits; // (n_out) nonzero where that row also needs logits; NULL: all do
} fwd_seq;

typedef struct fwd_state fwd_state;

// Allocates all run buffers once for batches of up to max_tokens new tokens and max_seqs
// sequences, contexts up to max_ctx. The caller owns the result (fwd_free).
fwd_state *fwd_init(const struct e2h_model *m, const e2h_ops *ops, int max_tokens, int max_seqs,
                    int max_ctx, int n_threads);
void fwd_free(fwd_state *s);
int fwd_max_tokens(const fwd_state *s);

// Runs the pass. Output rows are taken in order of seqs and, within a sequence, of out_rows.
// Every row's K/V is stored in every layer; the last layer's attention, projection and MLP
// run on the output rows only (nothing reads the others' final states; each output row gets
// the same bits as when every row is computed, see test_sched last_layer_output_rows_only).
// hidden (optional, may be NULL): (sum of n_out, dim) final-normed hidden states of every
// output row (PRM and value heads); with feat_layer L in 1..n_layers, (sum of n_out, 2 * dim):
// each row's final-normed state, then its residual stream after L blocks (0: none). logits (optional): (rows that need logits, vocab), the
// output rows flagged in out_logits only, in the same order. Allocates nothing. Returns E2H_OK or E2H_ERR_INVALID_ARG /
// E2H_ERR_CONTEXT with a message in err.
e2h_status fwd_run(fwd_state *s, const struct e2h_model *m, kv_pool *kv, e2h_pool *pool,
                   const fwd_seq *seqs, int n_seqs, float *logits, float *hidden, int feat_layer,
                   char *err, size_t err_len);

#endif
