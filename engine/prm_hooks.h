// engine/prm_hooks.h — the seam between the engine core (engine.c, sched.c) and the PRM module
// (engine/prm/mirror.c). The PRM module never sees the layout of e2h_engine or e2h_seq
// (engine_internal.h stays private to the core); it works through the public API, sched.h,
// kv.h and the few calls below. The dependency is one-way in knowledge: the core stores the
// PRM's state as opaque pointers it never looks into, and calls the module only through the
// four prm_hook_* functions, which are no-ops when no PRM is attached.
#ifndef E2H_PRM_HOOKS_H
#define E2H_PRM_HOOKS_H

#include <stddef.h>
#include <stdint.h>

#include "../include/e2h.h"
#include "kv.h"

struct prm_rt;  // the attached PRM's runtime (its engines, counters); defined in mirror.c
struct prm_seq; // one policy sequence's PRM state (mirrors, problem, step scores); mirror.c

// ------------------------------------------------- implemented by the engine core (engine.c)

// The engine's slot for the attached PRM: e2h_engine_attach_prm fills it, the public PRM
// calls read it, prm_hook_engine_free empties it. NULL: no PRM attached.
struct prm_rt *eng_prm_rt(const e2h_engine *e);
void eng_set_prm_rt(e2h_engine *e, struct prm_rt *rt);

// A sequence's slot for its PRM state, so that the state follows the sequence (the hooks
// below) without the module keeping a side table keyed by sequence. NULL: none yet.
struct prm_seq *eng_seq_prm(const e2h_seq *s);
void eng_seq_set_prm(e2h_seq *s, struct prm_seq *q);

// The engine's live sequences, newest first (e2h_seq_release unlinks a sequence: after
// releasing, restart from eng_seq_first). For attaching (none may be live yet) and for
// dropping every sequence's PRM state when the engine is freed.
e2h_seq *eng_seq_first(const e2h_engine *e);
e2h_seq *eng_seq_next(const e2h_seq *s);

// Marks s (a PRM mirror, never extended) as scoring-only: passes skip the next-token logits of
// its last token (the vocab-wide output projection, which for a value head reads nothing and
// with a 150k vocabulary costs several layers' worth of work per sequence and pass). Its hidden
// states, captures (with or without capture_logits) and log-probs are computed as before, bit
// for bit; e2h_seq_logits returns NULL for it and e2h_seq_extend refuses it. Forks inherit it.
void eng_seq_set_no_logits(e2h_seq *s);

// The engine's KV pool: attaching a PRM model splits the policy's KV budget with it.
kv_pool *eng_kv_pool(const e2h_engine *e);
// Bytes of K and V that one token of model m takes in a pool of f32 (f16 = 0) or f16 entries.
size_t eng_kv_bytes_per_token(const e2h_model *m, int f16);

// What a PRM engine copies from the policy engine so both run alike.
typedef struct {
    int n_threads;
    int max_batch;       // tokens per forward pass
    int max_ctx;         // longest sequence (the model's context, or its sliding window)
    const char *kernels; // kernel set name (e2h_engine_opts.kernels); owned by the engine
    int feature_layer;   // e2h_engine_opts.feature_layer (0: none)
} eng_shape;
void eng_get_shape(const e2h_engine *e, eng_shape *out);

// ------------------------------------------------- implemented by the PRM module (mirror.c)

// Called by the engine core so that a policy sequence's PRM state (its mirror in the PRM's
// engine, problem text, step scores) follows the sequence through fork, truncate and release.
void prm_hook_fork(e2h_engine *e, e2h_seq *parent, e2h_seq *child);
void prm_hook_truncate(e2h_engine *e, e2h_seq *s, int32_t n_tokens);
void prm_hook_release(e2h_engine *e, e2h_seq *s);
void prm_hook_engine_free(e2h_engine *e); // releases PRM state of live seqs, the PRM engines

// The PRM's engine shares the policy engine's thread pool (e2h_engine_opts.share_pool_with),
// so policy and PRM never oversubscribe the cores.
#define E2H_PRM_SHARE_POOL(opts, e) ((opts).share_pool_with = (e))

#endif
