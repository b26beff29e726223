// engine/sched.h — the scheduler: computes the pending tokens of many sequences in shared
// forward passes (output rows chosen per position: last token, log-probs of appended tokens,
// captures) and runs the batched sampling loop of e2h_seq_extend. The public entry points are
// e2h_engine_sync and e2h_seq_extend (include/e2h.h); this header is for engine.c.
#ifndef E2H_ENGINE_SCHED_H
#define E2H_ENGINE_SCHED_H

#include "../include/e2h.h"

// What to do with one output row after a pass (engine-owned scratch, one per row).
struct sched_row {
    struct e2h_seq *s;
    int32_t pos;     // absolute position of the row
    int32_t hid;     // row in the pass's hidden buffer
    int32_t lg;      // row in the pass's logits buffer, or -1
};

// e2h_engine_sync without argument checks (seqs non-NULL).
e2h_status sched_sync(e2h_engine *e, e2h_seq *const *seqs, int n);

#endif
