// engine/sample.h — token sampling: greedy, temperature, top-k, top-p, min-p, with a per-
// sequence RNG so a sequence's samples never depend on what runs beside it.
#ifndef E2H_ENGINE_SAMPLE_H
#define E2H_ENGINE_SAMPLE_H

#include <stdint.h>

#include "../include/e2h.h"

typedef struct {
    uint64_t s[2]; // xoroshiro128+ state
} e2h_rng;

void rng_seed(e2h_rng *r, uint64_t seed, uint64_t stream);
double rng_uniform(e2h_rng *r); // [0, 1)

// Scratch for sampling over a vocabulary of n (allocated once per engine).
typedef struct {
    struct sample_pair *pairs; // (n) candidate (logit, id)
    double *prob;              // (n)
    int32_t n;
} sample_scratch;

int sample_scratch_init(sample_scratch *s, int32_t n_vocab);
void sample_scratch_free(sample_scratch *s);

// Picks the next token from logits (n_vocab). Writes the log-probability of the chosen token
// under the model's unmodified distribution (softmax of the raw logits) to *logprob.
// Deterministic: ties are broken by the lower token id.
int32_t sample_token(const float *logits, int32_t n_vocab, const e2h_sampling *p, e2h_rng *rng,
                     sample_scratch *s, float *logprob);

// log softmax(logits)[tok]
float sample_logprob(const float *logits, int32_t n_vocab, int32_t tok);

#endif
