// engine/sched.c — the scheduler. A sequence holds its tokens; the KV cache holds K/V for a
// prefix of them. Tokens past that prefix are "pending": create, append and truncate only
// record tokens, and sched_sync computes the pending tokens of many sequences in shared
// forward passes. Each pass asks the forward for the output rows it needs only: the last
// token of a sequence (its next-token logits and hidden state), the position before each
// appended token whose log-prob is wanted, and captured positions (PRM / value heads).
// e2h_seq_extend samples all its sequences one token each and syncs them: one pass per token.
#include "sched.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "util.h"

// Longest text of one token that the streamed stop-string check takes (longer: full decode).
#define SCHED_PIECE_MAX 256

#define ENG_ERR(e, st, ...) (fmt_errf((e)->last_err, sizeof (e)->last_err, __VA_ARGS__), (st))

// Gives back blocks reserved beyond the committed tokens (after a failed batch).
static void sched_unreserve(e2h_engine *e, int nb) {
    for (int b = 0; b < nb; b++) {
        kv_seq_truncate(e->kv, &e->fs_owner[b]->kv, e->fs_owner[b]->kv.n_tokens);
        e->fs_owner[b]->in_pass = 0;
    }
}

static seq_capture *sched_find_cap(e2h_seq *s, int32_t pos) {
    int32_t lo = 0, hi = s->n_caps;
    while (lo < hi) {
        int32_t mid = (lo + hi) / 2;
        if (s->caps[mid].pos < pos) lo = mid + 1;
        else hi = mid;
    }
    return lo < s->n_caps && s->caps[lo].pos == pos ? &s->caps[lo] : NULL;
}

// Output rows of positions [p0, p0 + take) of s: appended to e->out_rows / e->out_lg / e->work
// from index *n_rows; *n_lg counts logits rows.
static int32_t sched_rows(e2h_engine *e, e2h_seq *s, int32_t p0, int32_t take, int32_t *n_rows,
                          int32_t *n_lg) {
    int32_t n_out = 0;
    // Positions below n_done had their outputs recorded before the sequence was preempted:
    // only its K/V is recomputed for them.
    for (int32_t p = p0 > s->n_done ? p0 : s->n_done; p < p0 + take; p++) {
        int last = p == s->n - 1;
        int lp = p + 1 < s->n && (s->pflags[p + 1] & SEQ_F_LP);
        seq_capture *c = (s->pflags[p] & SEQ_F_CAP) ? sched_find_cap(s, p) : NULL;
        if (!last && !lp && !c) continue;
        int need_lg = (last && !s->no_logits) || lp || (c && c->logits);
        int32_t r = *n_rows;
        e->out_rows[r] = p - p0;
        e->out_lg[r] = (uint8_t)need_lg;
        e->work[r] = (struct sched_row){s, p, r, need_lg ? (*n_lg)++ : -1};
        (*n_rows)++;
        n_out++;
    }
    return n_out;
}

typedef struct {
    e2h_engine *e;
    int32_t n;
} sched_post_args;

// Pool body: copies each output row where it belongs. Rows of one pass touch disjoint memory
// (distinct sequences or distinct positions), so any split over threads gives the same result.
static void sched_post_fn(void *p, int ith, int nth) {
    const sched_post_args *a = p;
    e2h_engine *e = a->e;
    int64_t i0, i1;
    pool_slice(a->n, ith, nth, 1, &i0, &i1);
    for (int64_t i = i0; i < i1; i++) {
        const struct sched_row *w = &e->work[i];
        e2h_seq *s = w->s;
        const float *h = e->hidden + (size_t)w->hid * e->hid_w;
        const float *lg = w->lg >= 0 ? e->logits + (size_t)w->lg * e->vocab : NULL;
        if (w->pos == s->n - 1) {
            memcpy(s->hidden, h, (size_t)e->hid_w * sizeof(float));
            if (lg) memcpy(s->logits, lg, (size_t)e->vocab * sizeof(float)); // NULL: no_logits
        }
        if (w->pos + 1 < s->n && (s->pflags[w->pos + 1] & SEQ_F_LP))
            s->logprobs[w->pos + 1] = sample_logprob(lg, e->vocab, s->tokens[w->pos + 1]);
        seq_capture *c = (s->pflags[w->pos] & SEQ_F_CAP) ? sched_find_cap(s, w->pos) : NULL;
        if (c) {
            memcpy(c->hidden, h, (size_t)e->hid_w * sizeof(float));
            if (c->logits) memcpy(c->logits, lg, (size_t)e->vocab * sizeof(float));
            c->done = 1;
        }
    }
}

// How a sync treats the sequences it is given (see sched_pass).
enum {
    SCHED_NORMAL,   // compute every output; preempted sequences are recomputed within the sync
    SCHED_SUSPEND,  // (extend) lower-priority sequences that do not fit are suspended instead
    SCHED_RESIDENT, // (fork, one sequence) also recompute the K/V of a preempted sequence
};

static int sched_needs_work(const e2h_seq *s, int mode) {
    if (s->suspended) return 0;
    return mode == SCHED_RESIDENT ? s->kv.n_tokens < s->n : s->n_done < s->n;
}

static int sched_member(const e2h_engine *e, const e2h_seq *s) { return s->sync_gen == e->sync_gen; }

// Drops v's K/V (its tokens and recorded outputs stay); full blocks stay in the prefix index
// as cached blocks until evicted, so a re-prefill may find them again.
static void sched_preempt(e2h_engine *e, e2h_seq *v) {
    kv_seq_truncate(e->kv, &v->kv, 0);
    e->n_preempt++;
}

// The sequence whose K/V to drop so that s (index i of the sync list) can reserve, or NULL.
// Preference (why): first sequences outside the sync and, in NORMAL mode, list members whose
// outputs are already computed, least recently used first: dropping them costs nothing now
// (their K/V is needed only when they are next extended, maybe never: finished search
// branches, kept roots). Then list members after s, last first: the lowest priority, as vLLM
// preempts the most recently arrived request. Never a sequence in the pass being built, never
// s, never one listed before s that still needs work (that one is in the pass: the loop goes in
// list order), so the first sequence that needs work always progresses. *lower: the victim is
// a list member after s.
static e2h_seq *sched_pick_victim(e2h_engine *e, const e2h_seq *s, int i, int mode, int *lower) {
    e2h_seq *lru = NULL, *last = NULL;
    for (e2h_seq *v = e->live; v; v = v->next) {
        if (v == s || v->in_pass || v->kv.n_blocks == 0) continue;
        int member = sched_member(e, v);
        if (member && v->sync_idx > i) {
            if (mode == SCHED_SUSPEND || v->n_done < v->n) {
                if (!last || v->sync_idx > last->sync_idx) last = v;
                continue;
            }
        } else if (member && (mode == SCHED_SUSPEND || v->n_done < v->n)) {
            continue;
        }
        if (!lru || v->last_pass < lru->last_pass) lru = v;
    }
    *lower = !lru && last;
    return lru ? lru : last;
}

// Makes room for take more tokens of s (index i): reserves, preempting as needed. Returns 0 when
// reserved, 1 when s should wait (not reserved; in SUSPEND mode s may have been suspended), -1
// when s cannot fit even alone (error set).
static int sched_make_room(e2h_engine *e, e2h_seq *s, int i, int32_t take, int mode, int nb) {
    for (;;) {
        if (!kv_seq_reserve(e->kv, &s->kv, take)) return 0;
        int lower;
        e2h_seq *v = sched_pick_victim(e, s, i, mode, &lower);
        if (v) {
            sched_preempt(e, v);
            if (lower && mode == SCHED_SUSPEND) v->suspended = 1;
            continue;
        }
        if (nb > 0) return 1; // run the pass built so far; its members free nothing now
        // Only list members before s (computed, in SUSPEND mode) still hold blocks: s waits.
        if (mode == SCHED_SUSPEND) {
            for (e2h_seq *w = e->live; w; w = w->next)
                if (w != s && w->kv.n_blocks > 0 && sched_member(e, w)) {
                    sched_preempt(e, s);
                    s->suspended = 1;
                    return 1;
                }
        }
        int32_t bs = kv_pool_config(e->kv)->block_size;
        (void)ENG_ERR(e, E2H_ERR_KV_FULL,
                "KV cache full: sequence %d of the batch (%d tokens, %d to compute) needs %d more "
                "blocks of %d tokens and no other sequence's K/V can be dropped: the pool has %d "
                "blocks, %d of them held by this sequence; raise kv_mem_gib",
                i, s->n, take, kv_seq_blocks_needed(e->kv, &s->kv, take), bs,
                kv_pool_n_blocks(e->kv), s->kv.n_blocks);
        return -1;
    }
}

// One forward pass over as many pending tokens of seqs as fit in the batch and the pool.
// Sets *progress to whether anything ran.
static e2h_status sched_pass(e2h_engine *e, e2h_seq *const *seqs, int n, int mode, int *progress) {
    int nb = 0, budget = e->max_batch;
    int32_t n_rows = 0, n_lg = 0;
    *progress = 0;
    for (int i = 0; i < n && budget > 0 && nb < e->max_batch; i++) {
        e2h_seq *s = seqs[i];
        if (!sched_needs_work(s, mode) || s->in_pass) continue;
        // A preempted sequence takes back what the prefix index still holds of its K/V, up to
        // its recorded outputs (rows past n_done must be computed).
        if (s->kv.n_blocks == 0 && s->kv.n_tokens == 0)
            kv_seq_match_prefix(e->kv, &s->kv, s->tokens, s->n_done + 1 < s->n ? s->n_done + 1 : s->n);
        int32_t pending = s->n - s->kv.n_tokens;
        int32_t take = pending < budget ? pending : budget;
        int room = sched_make_room(e, s, i, take, mode, nb);
        if (room < 0) {
            sched_unreserve(e, nb);
            return E2H_ERR_KV_FULL;
        }
        if (room > 0) {
            if (nb > 0) break;
            continue; // s was suspended; the next sequences may still fit
        }
        int32_t r0 = n_rows, p0 = s->kv.n_tokens;
        int32_t n_out = sched_rows(e, s, p0, take, &n_rows, &n_lg);
        e->fs[nb] = (fwd_seq){&s->kv, s->tokens + p0, take, n_out, e->out_rows + r0, e->out_lg + r0};
        e->fs_owner[nb++] = s;
        s->in_pass = 1;
        s->last_pass = e->n_passes;
        budget -= take;
    }
    if (nb == 0) return E2H_OK;
    e2h_status st = fwd_run(e->fwd, e->model, e->kv, e->pool, e->fs, nb, e->logits, e->hidden,
                            e->feat_layer, e->last_err, sizeof e->last_err);
    if (st) {
        sched_unreserve(e, nb);
        return st;
    }
    e->n_passes++;
    e->n_pass_tokens += e->max_batch - budget;
    sched_post_args pa = {e, n_rows};
    pool_run(n_rows > 1 ? e->pool : NULL, sched_post_fn, &pa);
    e2h_status cst = E2H_OK;
    for (int b = 0; b < nb; b++) {
        e2h_seq *s = e->fs_owner[b];
        s->in_pass = 0;
        // A refused commit would leave the tokens pending forever: report it, never loop.
        if (kv_seq_commit(e->kv, &s->kv, e->fs[b].tokens, e->fs[b].n) && !cst)
            cst = ENG_ERR(e, E2H_ERR_INVALID_ARG, "internal: the KV cache refused to record %d "
                          "tokens of a sequence", e->fs[b].n);
        if (s->kv.n_tokens > s->n_done) s->n_done = s->kv.n_tokens;
    }
    *progress = !cst;
    return cst;
}

// Runs passes until no sequence of seqs needs work (or, SUSPEND, every one left is suspended).
// Terminates: each pass advances the first sequence that needs work, which nothing preempts.
static e2h_status sched_sync_mode(e2h_engine *e, e2h_seq *const *seqs, int n, int mode) {
    e->sync_gen++;
    for (int i = 0; i < n; i++) {
        seqs[i]->sync_gen = e->sync_gen;
        seqs[i]->sync_idx = i;
    }
    e2h_status st;
    for (;;) {
        int progress;
        st = sched_pass(e, seqs, n, mode, &progress);
        if (st || !progress) break;
    }
    e->sync_gen++; // membership ends with the sync
    return st;
}

e2h_status sched_sync(e2h_engine *e, e2h_seq *const *seqs, int n) {
    return sched_sync_mode(e, seqs, n, SCHED_NORMAL);
}

e2h_status sched_sync_resident(e2h_engine *e, e2h_seq *s) {
    return sched_sync_mode(e, &s, 1, SCHED_RESIDENT);
}

e2h_status e2h_engine_sync(e2h_engine *e, e2h_seq *const *seqs, int n) {
    if (!e) return E2H_ERR_INVALID_ARG;
    if (n < 0 || (n > 0 && !seqs)) return ENG_ERR(e, E2H_ERR_INVALID_ARG, "sync: no sequence list");
    for (int i = 0; i < n; i++)
        if (!seqs[i]) return ENG_ERR(e, E2H_ERR_INVALID_ARG, "sync: sequence %d is NULL", i);
    return sched_sync(e, seqs, n);
}

// ------------------------------------------------------------------ extend

int eng_is_eos(const e2h_engine *e, int32_t tok) {
    const e2h_config *c = &e->model->cfg;
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] == tok) return 1;
    const e2h_tokenizer *t = e->model->tok;
    return t && e2h_tokenizer_eos(t) == tok;
}

// Does the text generated since text_start contain one of the stop strings? The whole
// continuation, decoded again: the fallback when the streamed tail cannot be used.
static int sched_stop_full(e2h_engine *e, const e2h_seq *s, const e2h_stop *stop) {
    size_t len = 0;
    int32_t n = s->n - s->text_start;
    for (;;) {
        if (e2h_detokenize(e->model->tok, s->tokens + s->text_start, n, e->text, e->text_cap, &len))
            return 0;
        if (len < e->text_cap) break;
        size_t cap = (len + 1) * 2;
        char *t = realloc(e->text, cap);
        if (!t) return 0;
        e->text = t;
        e->text_cap = cap;
    }
    for (int i = 0; i < stop->n_stop_strings; i++)
        if (stop->stop_strings[i][0] && memmem(e->text, len, stop->stop_strings[i], strlen(stop->stop_strings[i])))
            return 1;
    return 0;
}

// The same, checking only the tail that can complete a stop string: the newest token's text
// (from the sequence's detokenizing stream) and the stop_max - 1 bytes before it. Earlier
// text was checked when it arrived, so a new match must end in the new text. Per token this
// costs O(longest stop string), not O(continuation) as decoding it all again would.
static int sched_hit_stop_string(e2h_engine *e, e2h_seq *s, const e2h_stop *stop) {
    if (!stop || stop->n_stop_strings <= 0) return 0;
    char piece[SCHED_PIECE_MAX + 1];
    size_t len = 0;
    if (!s->ds || e2h_detok_stream_push(s->ds, s->tokens[s->n - 1], piece, sizeof piece, &len) ||
        len >= sizeof piece) {
        e2h_detok_stream_free(s->ds); // a piece too long (or no stream): decode all from now on
        s->ds = NULL;
        return sched_stop_full(e, s, stop);
    }
    size_t keep = s->tail_len < e->stop_max - 1 ? s->tail_len : e->stop_max - 1;
    memmove(s->tail, s->tail + s->tail_len - keep, keep);
    memcpy(s->tail + keep, piece, len);
    s->tail_len = keep + len;
    for (int i = 0; i < stop->n_stop_strings; i++)
        if (stop->stop_strings[i][0] && memmem(s->tail, s->tail_len, stop->stop_strings[i],
                                               strlen(stop->stop_strings[i])))
            return 1;
    return 0;
}

void eng_seq_drop_stop_state(e2h_seq *s) {
    e2h_detok_stream_free(s->ds);
    s->ds = NULL;
    free(s->tail);
    s->tail = NULL;
    s->tail_len = s->tail_cap = 0;
    s->stop_kept = 0;
}

// Can s continue the stop-string state its previous extend call kept (e2h_stop.resume)?
static int sched_can_resume(const e2h_seq *s) {
    return s->stop_kept && s->stop == E2H_STOP_LENGTH && s->stop_keep_n == s->n;
}

// Sets up the streamed tails of seqs for a call with stop strings (none: frees them). With
// stop->resume, a sequence that kept its state (stopped at its budget last call) goes on
// with it: a stop string may then begin in the previous call's text.
static e2h_status sched_stop_begin(e2h_engine *e, e2h_seq *const *seqs, int n, const e2h_stop *stop) {
    const int with = stop && stop->n_stop_strings > 0;
    char *fresh = with ? calloc((size_t)n, 1) : NULL;
    if (with && !fresh) return ENG_ERR(e, E2H_ERR_NOMEM, "extend: out of memory");
    for (int i = 0; i < n; i++) {
        e2h_seq *s = seqs[i];
        if (!(with && stop->resume && sched_can_resume(s))) {
            eng_seq_drop_stop_state(s);
            s->text_start = s->n;
            if (with) fresh[i] = 1;
        }
        s->stop_kept = 0;
    }
    if (!with) return E2H_OK;
    e->stop_max = 1;
    for (int i = 0; i < stop->n_stop_strings; i++) {
        if (!stop->stop_strings || !stop->stop_strings[i]) {
            free(fresh);
            return ENG_ERR(e, E2H_ERR_INVALID_ARG, "extend: stop_strings[%d] is NULL", i);
        }
        size_t l = strlen(stop->stop_strings[i]);
        e->stop_max = l > e->stop_max ? l : e->stop_max;
    }
    const size_t cap = e->stop_max + SCHED_PIECE_MAX + 1;
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        e2h_seq *s = seqs[i];
        // a resumed sequence in the decode-it-all fallback (no stream) stays in it
        if (fresh[i]) ok = (s->ds = e2h_detok_stream_new(e->model->tok)) != NULL;
        if (ok && s->tail_cap < cap) { // resumed with longer stop strings: keep the tail
            char *t = realloc(s->tail, cap);
            if (t) s->tail = t, s->tail_cap = cap;
            ok = t != NULL;
        }
    }
    free(fresh);
    if (!ok) {
        for (int j = 0; j < n; j++) eng_seq_drop_stop_state(seqs[j]);
        return ENG_ERR(e, E2H_ERR_NOMEM, "extend: out of memory for stop-string state");
    }
    return E2H_OK;
}

// After a call: a sequence that stopped at its budget keeps its stop-string state for a
// resume (while nothing else changes it); the others free theirs.
static void sched_stop_end(e2h_seq *const *seqs, int n, e2h_status st) {
    for (int i = 0; i < n; i++) {
        e2h_seq *s = seqs[i];
        if (!st && s->tail && s->stop == E2H_STOP_LENGTH) { // had stop strings, hit its budget
            s->stop_kept = 1;
            s->stop_keep_n = s->n;
        } else {
            eng_seq_drop_stop_state(s);
        }
    }
}

typedef struct {
    e2h_engine *e;
    e2h_seq *const *seqs;
    int n;
} sched_sample_args;

// Pool body: each thread samples its share of the sequences (each has its own RNG, so the
// tokens do not depend on the thread count) with its own scratch.
static void sched_sample_fn(void *p, int ith, int nth) {
    const sched_sample_args *a = p;
    int64_t i0, i1;
    pool_slice(a->n, ith, nth, 1, &i0, &i1);
    for (int64_t i = i0; i < i1; i++) {
        e2h_seq *s = a->seqs[i];
        s->next_tok = sample_token(s->logits, a->e->vocab, &s->sp, &s->rng, &a->e->ss[ith], &s->next_lp);
    }
}

// Appends the token sampled for s (next_tok); sets s->stop if done.
static e2h_status sched_take_sample(e2h_engine *e, e2h_seq *s, const e2h_stop *stop) {
    if (eng_seq_grow(s, s->n + 2)) return ENG_ERR(e, E2H_ERR_NOMEM, "out of memory");
    const int32_t tok = s->next_tok;
    s->tokens[s->n] = tok;
    s->logprobs[s->n] = s->next_lp;
    s->pflags[s->n] = 0;
    s->n++;
    int at_eos = !(stop && stop->ignore_eos);
    int32_t budget = stop && stop->max_tokens > 0 ? stop->max_tokens : INT32_MAX;
    if (at_eos && eng_is_eos(e, tok)) s->stop = E2H_STOP_EOS;
    else if (sched_hit_stop_string(e, s, stop)) s->stop = E2H_STOP_STRING;
    else if (s->n - s->ext_start >= budget) s->stop = E2H_STOP_LENGTH;
    else if (s->n >= e->max_ctx) s->stop = E2H_STOP_CONTEXT;
    return E2H_OK;
}

// Resumes suspended sequences of an extend: all of them when none is running, else, in
// priority order, those whose whole K/V fits in what the pool can still give beyond one block
// per running sequence (the headroom a step may need), as vLLM re-admits preempted requests.
static void sched_resume(e2h_engine *e, e2h_seq *const *active, int n) {
    int n_run = 0, n_susp = 0;
    for (int i = 0; i < n; i++) active[i]->suspended ? n_susp++ : n_run++;
    if (!n_susp) return;
    int32_t avail = kv_pool_n_available(e->kv) - n_run;
    for (int i = 0; i < n; i++) {
        e2h_seq *s = active[i];
        if (!s->suspended) continue;
        int32_t need = kv_seq_blocks_needed(e->kv, &s->kv, s->n - s->kv.n_tokens) + 1;
        if (n_run == 0 || need <= avail) {
            s->suspended = 0;
            avail -= need;
            n_run++;
        }
    }
}

e2h_status e2h_seq_extend(e2h_engine *e, e2h_seq *const *seqs, int n, const e2h_stop *stop) {
    if (!e || !seqs || n < 1) return e ? ENG_ERR(e, E2H_ERR_INVALID_ARG, "extend: no sequences") : E2H_ERR_INVALID_ARG;
    if (stop && stop->n_stop_strings > 0 && !e->model->tok)
        return ENG_ERR(e, E2H_ERR_TOKENIZER, "stop strings need a tokenizer, and this model has none");
    // A sequence listed twice would be sampled twice per step.
    for (int i = 0; i < n; i++) {
        if (!seqs[i]) return ENG_ERR(e, E2H_ERR_INVALID_ARG, "extend: sequence %d is NULL", i);
        for (int j = 0; j < i; j++)
            if (seqs[j] == seqs[i])
                return ENG_ERR(e, E2H_ERR_INVALID_ARG, "extend: sequence %d is listed twice", i);
        if (seqs[i]->no_logits) // a PRM mirror: it never has next-token logits to sample from
            return ENG_ERR(e, E2H_ERR_INVALID_ARG, "extend: sequence %d is scoring-only", i);
    }
    e2h_status st = sched_stop_begin(e, seqs, n, stop);
    if (st) return st;
    e2h_seq **active = malloc((size_t)n * 2 * sizeof *active), **run = active + n;
    if (!active) {
        sched_stop_end(seqs, n, E2H_ERR_NOMEM);
        return ENG_ERR(e, E2H_ERR_NOMEM, "out of memory");
    }
    int n_active = 0;
    for (int i = 0; i < n; i++) {
        seqs[i]->ext_start = seqs[i]->n;
        seqs[i]->stop = E2H_STOP_NONE;
        seqs[i]->suspended = 0;
        if (seqs[i]->n >= e->max_ctx) seqs[i]->stop = E2H_STOP_CONTEXT;
        else active[n_active++] = seqs[i];
    }
    // active: in priority (list) order; suspended ones (preempted when the pool was full) wait
    // and are resumed when they fit beside the running ones, or when none runs any more.
    while (!st && n_active > 0) {
        sched_resume(e, active, n_active);
        st = sched_sync_mode(e, active, n_active, SCHED_SUSPEND);
        int n_run = 0;
        for (int i = 0; i < n_active && !st; i++)
            if (!active[i]->suspended) run[n_run++] = active[i];
        if (st) break;
        sched_sample_args sa = {e, run, n_run};
        pool_run(n_run > 1 ? e->pool : NULL, sched_sample_fn, &sa);
        for (int i = 0; i < n_run && !st; i++) st = sched_take_sample(e, run[i], stop);
        int m = 0;
        for (int i = 0; i < n_active; i++)
            if (active[i]->stop == E2H_STOP_NONE) active[m++] = active[i];
        n_active = m;
    }
    for (int i = 0; i < n; i++) seqs[i]->suspended = 0;
    // The last sampled token of each stopped sequence is still pending: compute them all in
    // one pass so e2h_seq_logits is current, as the API promises.
    if (!st) st = sched_sync(e, seqs, n);
    sched_stop_end(seqs, n, st);
    free(active);
    return st;
}
