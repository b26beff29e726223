// engine/sched.h — the scheduler: computes the pending tokens of many sequences in shared
// forward passes (output rows chosen per position: last token, log-probs of appended tokens,
// captures) and runs the batched sampling loop of e2h_seq_extend. The public entry points are
// e2h_engine_sync and e2h_seq_extend (include/e2h.h); this header is for engine.c and the
// engine modules (PRM, search), which use it and the public API instead of engine_internal.h.
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
// Under KV pressure it preempts other sequences (drops their K/V, keeps tokens and outputs).
e2h_status sched_sync(e2h_engine *e, e2h_seq *const *seqs, int n);
// Computes s's outputs and makes all its K/V resident (recomputing it if s was preempted), so
// that forks share it.
e2h_status sched_sync_resident(e2h_engine *e, e2h_seq *s);

// For modules built on the engine (PRM, search): sets the message that e2h_engine_last_error
// returns without reaching into the engine's layout. Returns st.
e2h_status eng_set_error(e2h_engine *e, e2h_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// Is tok one of the engine's model's end-of-sequence tokens (config eos ids or the tokenizer's
// EOS)? Extend stops there; the PRM drops trailing EOS tokens from the text it scores.
int eng_is_eos(const e2h_engine *e, int32_t tok);

#endif
