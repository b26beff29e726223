// engine/engine_internal.h — the engine and sequence structs, shared by engine.c (handles,
// sequence lifecycle) and sched.c (forward passes, extend). Not part of the public API; PRM
// and search code use the public API or narrow headers (sched.h, kv.h), never these layouts.
#ifndef E2H_ENGINE_INTERNAL_H
#define E2H_ENGINE_INTERNAL_H

#include "../include/e2h.h"
#include "forward.h"
#include "kv.h"
#include "model.h"
#include "sample.h"

// A thread pool shared by the engines that use it (e2h_engine_opts.share_pool_with); freed
// with the last of them.
typedef struct {
    e2h_pool *pool;
    int refs;
} eng_pool_ref;

struct e2h_engine {
    const struct e2h_model *model;
    const e2h_ops *ops;
    e2h_pool *pool;       // pool_ref->pool
    eng_pool_ref *pool_ref;
    kv_pool *kv;
    fwd_state *fwd;
    int n_threads;
    int max_batch;        // tokens per forward pass (also the max sequences per pass)
    int max_ctx;
    int32_t vocab;
    int dim;
    int feat_layer;       // e2h_engine_opts.feature_layer (0: none)
    int hid_w;            // floats per kept row: dim, or 2 * dim with a feature layer (the
                          // final-normed state, then the feature layer's residual stream)
    float *logits;        // (max_batch, vocab) logits of one pass (rows that need them)
    float *hidden;        // (max_batch, hid_w) final-normed hidden states of its output rows
    fwd_seq *fs;          // (max_batch) batch being built
    struct e2h_seq **fs_owner;
    int32_t *out_rows;    // (max_batch) output rows of the batch (fs[i].out_rows point in here)
    uint8_t *out_lg;      // (max_batch) which of them need logits
    struct sched_row *work; // (max_batch) what to do with each output row after the pass
    int64_t n_passes, n_pass_tokens; // counters (e2h_kv_stats)
    int64_t n_preempt;    // sequences whose KV was dropped to make room (preemptions)
    int64_t sync_gen;     // generation of the running sched_sync (membership stamps)
    sample_scratch *ss;   // (n_threads) one per pool thread: sequences are sampled in parallel
    struct e2h_seq *live; // list of live sequences (for stats)
    char *text;           // decode buffer for stop strings (full-decode fallback)
    size_t text_cap;
    size_t stop_max;      // longest stop string of the running extend
    char last_err[1024];
    struct prm_rt *prm_rt; // attached PRM (engine/prm/mirror.c) or NULL
};

// Per-position flags of a sequence (e2h_seq.pflags).
enum {
    SEQ_F_LP = 1,  // fill logprobs[pos] (needs the logits of pos - 1)
    SEQ_F_CAP = 2, // a capture (seq_capture) exists at pos
};

// A kept output row of a sequence (e2h_append_opts.capture).
typedef struct {
    int32_t pos;          // absolute position
    int done;             // computed (hidden / logits hold it)
    float *hidden;        // (hid_w): final-normed state [, feature layer's residual stream]
    float *logits;        // (vocab) or NULL when only the hidden state is kept
} seq_capture;

struct e2h_seq {
    kv_seq kv;            // K/V of tokens[0, kv.n_tokens)
    int32_t *tokens;      // (n) all tokens: prompt, sampled, appended
    float *logprobs;      // (n) log-prob of each token given the previous ones; NaN if unknown
    uint8_t *pflags;      // (n) SEQ_F_* per position
    int32_t n, cap;
    int32_t n_prompt;
    float *logits;        // (vocab) next-token logits, valid when kv.n_tokens == n
    float *hidden;        // (hid_w) final-normed hidden state of the last token [, its feature-
                          // layer residual stream], valid likewise
    int32_t feat_dim;     // dim when hidden / captures hold a feature layer too, else 0
    seq_capture *caps;    // (n_caps) ascending pos
    int32_t n_caps, cap_caps;
    int in_pass;          // set while the scheduler has the sequence in the batch being built
    int no_logits;        // a scoring-only sequence (PRM mirror, eng_seq_set_no_logits): the
                          // last token's next-token logits are never computed (a vocab-wide
                          // projection per pass that nothing reads); inherited by fork
    // Outputs (logits, hidden, log-probs, captures) of positions [0, n_done) are recorded in the
    // sequence itself, so the KV of a sequence can be dropped under memory pressure (preempted,
    // as vLLM's recompute mode does) without losing them: kv.n_tokens may be below n_done, and
    // the next pass that needs the KV recomputes it (bit-identical: the forward is
    // batch-invariant) without recording those outputs again.
    int32_t n_done;
    int64_t last_pass;    // e->n_passes when last in a pass (least recently used is preempted first)
    int64_t sync_gen;     // == e->sync_gen while a member of the running sched_sync list
    int sync_idx;         //   and its index there (priority: lower index first)
    int suspended;        // preempted during e2h_seq_extend: waits until blocks free up
    e2h_sampling sp;
    e2h_rng rng;
    int32_t next_tok;     // sampled by the parallel phase of extend, appended after it
    float next_lp;
    uint64_t stream;      // RNG stream id (path in the fork tree)
    int32_t ext_start;    // first token of the current extend call
    int32_t text_start;   // first token of the text stop strings are matched in (ext_start,
                          //   or earlier when the call resumes a previous one, e2h_stop.resume)
    e2h_detok_stream *ds; // during an extend with stop strings: its continuation's text,
    char *tail;           //   streamed; the last bytes of it that can start a stop string.
    size_t tail_len, tail_cap; // Kept after a call that stopped at its budget (for a resume)
    int stop_kept;        //   (stop_kept) while n == stop_keep_n; dropped by append / truncate
    int32_t stop_keep_n;
    e2h_stop_reason stop;
    struct e2h_seq *prev, *next; // engine's live list
    struct prm_seq *prm;  // PRM state that follows the seq (engine/prm/mirror.c) or NULL
};

// Frees the stop-string state an extend kept for a resume (engine/sched.c).
void eng_seq_drop_stop_state(struct e2h_seq *s);

// Grows s's per-position arrays (tokens, logprobs, pflags) to hold need positions.
e2h_status eng_seq_grow(struct e2h_seq *s, int32_t need);

#endif
