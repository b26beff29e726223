// engine/engine_internal.h — the engine and sequence structs, shared by engine.c and the
// modules built on it (PRM scoring, search, CLI helpers). Not part of the public API.
#ifndef E2H_ENGINE_INTERNAL_H
#define E2H_ENGINE_INTERNAL_H

#include "../include/e2h.h"
#include "forward.h"
#include "kv.h"
#include "model.h"
#include "sample.h"

struct e2h_engine {
    const struct e2h_model *model;
    const e2h_ops *ops;
    e2h_pool *pool;
    kv_pool *kv;
    fwd_state *fwd;
    int n_threads;
    int max_batch;        // tokens per forward pass (also the max sequences per pass)
    int max_ctx;
    int32_t vocab;
    float *logits;        // (max_batch, vocab) logits of one pass
    fwd_seq *fs;          // (max_batch) batch being built
    struct e2h_seq **fs_owner;
    sample_scratch *ss;   // (n_threads) one per pool thread: sequences are sampled in parallel
    struct e2h_seq *live; // list of live sequences (for stats)
    char *text;           // decode buffer for stop strings
    size_t text_cap;
    char last_err[1024];
};

struct e2h_seq {
    kv_seq kv;            // K/V of tokens[0, kv.n_tokens)
    int32_t *tokens;      // (n) all tokens: prompt, sampled, appended
    float *logprobs;      // (n) log-prob of each sampled token; NaN for given tokens
    int32_t n, cap;
    int32_t n_prompt;
    float *logits;        // (vocab) next-token logits, valid when kv.n_tokens == n
    e2h_sampling sp;
    e2h_rng rng;
    int32_t next_tok;     // sampled by the parallel phase of extend, appended after it
    float next_lp;
    uint64_t stream;      // RNG stream id (path in the fork tree)
    int32_t ext_start;    // first token of the current extend call
    e2h_stop_reason stop;
    struct e2h_seq *prev, *next; // engine's live list
};

#endif
