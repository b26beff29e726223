// engine/prm/prm_hooks.h — what the engine calls so that a policy sequence's PRM state (its
// mirror in the PRM's engine, problem text, step scores) follows the sequence through fork,
// truncate and release. Implemented in engine/prm/mirror.c; no-ops when no PRM is attached.
#ifndef E2H_PRM_HOOKS_H
#define E2H_PRM_HOOKS_H

#include "../../include/e2h.h"

struct prm_rt;  // e2h_engine.prm_rt: the attached PRM's runtime (engines, counters)
struct prm_seq; // e2h_seq.prm: one sequence's PRM state

void prm_hook_fork(e2h_engine *e, e2h_seq *parent, e2h_seq *child);
void prm_hook_truncate(e2h_engine *e, e2h_seq *s, int32_t n_tokens);
void prm_hook_release(e2h_engine *e, e2h_seq *s);
void prm_hook_engine_free(e2h_engine *e); // releases PRM state of live seqs, the PRM engines

// The PRM's engine shares the policy engine's thread pool (e2h_engine_opts.share_pool_with),
// so policy and PRM never oversubscribe the cores.
#define E2H_PRM_SHARE_POOL(opts, e) ((opts).share_pool_with = (e))

#endif
