// engine/engine.c — the engine handle and the sequence (tree) API on top of the forward pass
// and the paged KV pool.
//
// A sequence holds its tokens; the KV cache holds K/V for a prefix of them. Tokens past that
// prefix are "pending" and are computed lazily by eng_sync, which batches the pending tokens
// of many sequences into one forward pass. So sampling N sequences one token each is one
// pass, and a sequence that stopped keeps its last token pending until it is extended again.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "util.h"

#define ENG_ERR(e, st, ...) (e2h_errf((e)->last_err, sizeof (e)->last_err, __VA_ARGS__), (st))

static size_t eng_kv_bytes_per_token(const e2h_config *c, int f16) {
    return (size_t)c->n_layers * 2 * (size_t)c->n_kv_heads * c->head_dim * (f16 ? 2 : 4);
}

static e2h_status eng_init_kv(e2h_engine *e, const e2h_engine_opts *o, char *err, size_t err_len) {
    const e2h_config *c = &e->model->cfg;
    kv_config kc;
    memset(&kc, 0, sizeof kc);
    kc.n_layers = c->n_layers;
    kc.n_kv_heads = c->n_kv_heads;
    kc.head_dim = c->head_dim;
    kc.block_size = o->block_size > 0 ? o->block_size : 16;
    kc.kv_type = o->kv_f16 ? E2H_TYPE_F16 : E2H_TYPE_F32;
    size_t per_tok = eng_kv_bytes_per_token(c, o->kv_f16);
    if (o->kv_mem_gib > 0) {
        kc.mem_bytes = (size_t)(o->kv_mem_gib * 1073741824.0);
    } else {
        // one full context plus a margin of blocks for forks and partially filled blocks, and
        // at least 1 GiB so that many samples / search branches fit (e.g. 64 x 256 tokens of
        // SmolLM2 in f32). Costs no resident memory until used: blocks are handed out
        // lowest-first and reused last-freed-first, so only the peak in use gets touched.
        kc.mem_bytes = per_tok * ((size_t)e->max_ctx + 64 * (size_t)kc.block_size);
        if (kc.mem_bytes < ((size_t)1 << 30)) kc.mem_bytes = (size_t)1 << 30;
    }
    if (kc.mem_bytes < per_tok * (size_t)kc.block_size * 2) {
        e2h_errf(err, err_len, "--kv-mem: %.6f GiB holds fewer than 2 KV blocks of this model",
                 kc.mem_bytes / 1073741824.0);
        return E2H_ERR_INVALID_ARG;
    }
    kc.model_id[0] = e->model->model_id[0];
    kc.model_id[1] = e->model->model_id[1];
    e->kv = kv_pool_init(&kc, err, err_len);
    return e->kv ? E2H_OK : E2H_ERR_NOMEM;
}

e2h_status e2h_engine_init(const e2h_model *m, const e2h_engine_opts *opts, e2h_engine **out,
                           char *err, size_t err_len) {
    if (!m || !out) return E2H_ERR_INVALID_ARG;
    *out = NULL;
    e2h_engine_opts o;
    memset(&o, 0, sizeof o);
    if (opts) o = *opts;
    if (o.n_threads <= 0) o.n_threads = 1;
    if (o.max_batch_tokens <= 0) o.max_batch_tokens = 512;
    if (o.n_threads > 256 || o.max_batch_tokens > 65536 || o.block_size < 0 || o.block_size > 1024 ||
        o.kv_mem_gib < 0) {
        e2h_errf(err, err_len, "engine options out of range (threads 1..256, batch 1..65536, "
                 "block size 1..1024, kv-mem >= 0)");
        return E2H_ERR_INVALID_ARG;
    }
    const e2h_ops *ops = e2h_ops_get(o.kernels ? o.kernels : "auto");
    if (!ops) {
        e2h_errf(err, err_len, "--kernels: '%s' is unknown or not supported by this CPU", o.kernels);
        return E2H_ERR_INVALID_ARG;
    }
    e2h_engine *e = calloc(1, sizeof *e);
    if (!e) return E2H_ERR_NOMEM;
    e->model = m;
    e->ops = ops;
    e->n_threads = o.n_threads;
    e->max_batch = o.max_batch_tokens;
    e->max_ctx = m->cfg.max_ctx;
    if (m->cfg.sliding_window > 0 && m->cfg.sliding_window < e->max_ctx)
        e->max_ctx = m->cfg.sliding_window; // beyond the window the model needs masking we lack
    e->vocab = m->cfg.vocab_size;
    e2h_status st = eng_init_kv(e, &o, err, err_len);
    if (st) goto fail;
    e->pool = e2h_pool_init(o.n_threads);
    e->fwd = fwd_init(m, ops, e->max_batch, e->max_batch, e->max_ctx, o.n_threads);
    e->logits = malloc((size_t)e->max_batch * e->vocab * sizeof(float));
    e->fs = malloc((size_t)e->max_batch * sizeof *e->fs);
    e->fs_owner = malloc((size_t)e->max_batch * sizeof *e->fs_owner);
    e->ss = calloc((size_t)o.n_threads, sizeof *e->ss);
    int ss_bad = !e->ss;
    for (int i = 0; i < o.n_threads && !ss_bad; i++) ss_bad = sample_scratch_init(&e->ss[i], e->vocab);
    if (!e->pool || !e->fwd || !e->logits || !e->fs || !e->fs_owner || ss_bad) {
        e2h_errf(err, err_len, "out of memory allocating run state for %d tokens", e->max_batch);
        st = E2H_ERR_NOMEM;
        goto fail;
    }
    *out = e;
    return E2H_OK;
fail:
    e2h_engine_free(e);
    return st;
}

void e2h_engine_free(e2h_engine *e) {
    if (!e) return;
    fwd_free(e->fwd);
    kv_pool_free(e->kv);
    e2h_pool_free(e->pool);
    for (int i = 0; e->ss && i < e->n_threads; i++) sample_scratch_free(&e->ss[i]);
    free(e->ss);
    free(e->logits);
    free(e->fs);
    free(e->fs_owner);
    free(e->text);
    free(e);
}

const char *e2h_engine_last_error(const e2h_engine *e) { return e ? e->last_err : ""; }
const e2h_model *e2h_engine_model(const e2h_engine *e) { return e->model; }

// ------------------------------------------------------------------ sequences

static e2h_status seq_grow(e2h_seq *s, int32_t need) {
    if (need <= s->cap) return E2H_OK;
    int32_t cap = s->cap ? s->cap : 64;
    while (cap < need) cap *= 2;
    int32_t *t = realloc(s->tokens, (size_t)cap * sizeof *t);
    if (!t) return E2H_ERR_NOMEM;
    s->tokens = t;
    float *lp = realloc(s->logprobs, (size_t)cap * sizeof *lp);
    if (!lp) return E2H_ERR_NOMEM;
    s->logprobs = lp;
    s->cap = cap;
    return E2H_OK;
}

static e2h_seq *seq_new(e2h_engine *e) {
    e2h_seq *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->logits = malloc((size_t)e->vocab * sizeof(float));
    if (!s->logits) { free(s); return NULL; }
    kv_seq_init(&s->kv);
    s->next = e->live;
    if (e->live) e->live->prev = s;
    e->live = s;
    return s;
}

static void seq_free(e2h_engine *e, e2h_seq *s) {
    if (s->prev) s->prev->next = s->next;
    else e->live = s->next;
    if (s->next) s->next->prev = s->prev;
    kv_seq_release(e->kv, &s->kv);
    free(s->tokens);
    free(s->logprobs);
    free(s->logits);
    free(s);
}

// Gives back blocks reserved beyond the committed tokens (after a failed batch).
static void eng_unreserve(e2h_engine *e, int nb) {
    for (int b = 0; b < nb; b++) kv_seq_truncate(e->kv, &e->fs_owner[b]->kv, e->fs_owner[b]->kv.n_tokens);
}

// One forward pass over as many pending tokens of seqs as fit in the batch. Sets *progress
// to whether anything ran.
static e2h_status eng_sync_once(e2h_engine *e, e2h_seq *const *seqs, int n, int *progress) {
    int nb = 0, budget = e->max_batch;
    *progress = 0;
    for (int i = 0; i < n && budget > 0 && nb < e->max_batch; i++) {
        e2h_seq *s = seqs[i];
        int32_t pending = s->n - s->kv.n_tokens;
        if (pending <= 0) continue;
        int32_t take = pending < budget ? pending : budget;
        if (kv_seq_reserve(e->kv, &s->kv, take)) {
            eng_unreserve(e, nb);
            return ENG_ERR(e, E2H_ERR_KV_FULL,
                           "KV cache exhausted: no free block for %d more tokens (pool of %d blocks, "
                           "%d cached); release sequences or raise --kv-mem",
                           take, kv_pool_n_blocks(e->kv), kv_pool_n_cached(e->kv));
        }
        e->fs[nb] = (fwd_seq){&s->kv, s->tokens + s->kv.n_tokens, take, take == pending ? 1 : 0};
        e->fs_owner[nb++] = s;
        budget -= take;
    }
    if (nb == 0) return E2H_OK;
    e2h_status st = fwd_run(e->fwd, e->model, e->kv, e->pool, e->fs, nb, e->logits, NULL,
                            e->last_err, sizeof e->last_err);
    if (st) {
        eng_unreserve(e, nb);
        return st;
    }
    int row = 0;
    e2h_status cst = E2H_OK;
    for (int b = 0; b < nb; b++) {
        e2h_seq *s = e->fs_owner[b];
        // A refused commit would leave the tokens pending forever: report it, never loop.
        if (kv_seq_commit(e->kv, &s->kv, e->fs[b].tokens, e->fs[b].n) && !cst)
            cst = ENG_ERR(e, E2H_ERR_INVALID_ARG, "internal: the KV cache refused to record %d "
                          "tokens of a sequence", e->fs[b].n);
        if (e->fs[b].n_logits) {
            memcpy(s->logits, e->logits + (size_t)row * e->vocab, (size_t)e->vocab * sizeof(float));
            row++;
        }
    }
    *progress = !cst;
    return cst;
}

// Computes every pending token of seqs so that each one's logits are current.
static e2h_status eng_sync(e2h_engine *e, e2h_seq *const *seqs, int n) {
    for (;;) {
        int progress;
        e2h_status st = eng_sync_once(e, seqs, n, &progress);
        if (st || !progress) return st;
    }
}

static e2h_status seq_check_len(e2h_engine *e, int32_t n) {
    if (n > e->max_ctx)
        return ENG_ERR(e, E2H_ERR_CONTEXT,
                       "sequence of %d tokens is longer than the context of %d tokens "
                       "(max_position_embeddings%s)", n, e->max_ctx,
                       e->max_ctx == e->model->cfg.sliding_window ? " / sliding_window" : "");
    return E2H_OK;
}

e2h_status e2h_seq_create(e2h_engine *e, const int32_t *ids, int32_t n, const e2h_sampling *sp,
                          e2h_seq **out) {
    if (!e || !out) return E2H_ERR_INVALID_ARG;
    *out = NULL;
    if (!ids || n < 1) return ENG_ERR(e, E2H_ERR_INVALID_ARG, "a sequence needs at least one token");
    e2h_status st = seq_check_len(e, n);
    if (st) return st;
    for (int32_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= e->vocab)
            return ENG_ERR(e, E2H_ERR_INVALID_ARG, "token id %d at position %d is outside the "
                           "vocabulary [0, %d)", ids[i], i, e->vocab);
    e2h_seq *s = seq_new(e);
    if (!s || seq_grow(s, n + 1)) {
        if (s) seq_free(e, s);
        return ENG_ERR(e, E2H_ERR_NOMEM, "out of memory creating a sequence");
    }
    memcpy(s->tokens, ids, (size_t)n * sizeof *ids);
    for (int32_t i = 0; i < n; i++) s->logprobs[i] = NAN;
    s->n = s->n_prompt = n;
    s->sp = sp ? *sp : e2h_sampling_default();
    s->stream = 0;
    rng_seed(&s->rng, s->sp.seed, s->stream);
    kv_seq_match_prefix(e->kv, &s->kv, ids, n);
    st = eng_sync(e, &s, 1);
    if (st) {
        seq_free(e, s);
        return st;
    }
    *out = s;
    return E2H_OK;
}

e2h_status e2h_seq_fork(e2h_engine *e, e2h_seq *parent, int k, e2h_seq **children) {
    if (!e || !parent || !children || k < 1)
        return e ? ENG_ERR(e, E2H_ERR_INVALID_ARG, "fork: need a parent and k >= 1") : E2H_ERR_INVALID_ARG;
    e2h_status st = eng_sync(e, &parent, 1); // children share the parent's complete cache
    if (st) return st;
    for (int i = 0; i < k; i++) children[i] = NULL;
    for (int i = 0; i < k; i++) {
        e2h_seq *c = seq_new(e);
        if (!c || seq_grow(c, parent->n + 1) || kv_seq_fork(e->kv, &parent->kv, &c->kv)) {
            if (c) seq_free(e, c);
            for (int j = 0; j < i; j++) { seq_free(e, children[j]); children[j] = NULL; }
            return ENG_ERR(e, E2H_ERR_NOMEM, "fork: out of memory");
        }
        memcpy(c->tokens, parent->tokens, (size_t)parent->n * sizeof *c->tokens);
        memcpy(c->logprobs, parent->logprobs, (size_t)parent->n * sizeof *c->logprobs);
        memcpy(c->logits, parent->logits, (size_t)e->vocab * sizeof(float));
        c->n = parent->n;
        c->n_prompt = parent->n_prompt;
        c->sp = parent->sp;
        // distinct, reproducible stream per tree path: (parent stream, child index)
        c->stream = parent->stream * 1000003ull + (uint64_t)i + 1;
        rng_seed(&c->rng, c->sp.seed, c->stream);
        children[i] = c;
    }
    return E2H_OK;
}

static int eng_is_eos(const e2h_engine *e, int32_t tok) {
    const e2h_config *c = &e->model->cfg;
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] == tok) return 1;
    const e2h_tokenizer *t = e->model->tok;
    return t && e2h_tokenizer_eos(t) == tok;
}

// Does the text generated since ext_start contain one of the stop strings?
static int eng_hit_stop_string(e2h_engine *e, const e2h_seq *s, const e2h_stop *stop) {
    if (!stop || stop->n_stop_strings <= 0) return 0;
    size_t len = 0;
    int32_t n = s->n - s->ext_start;
    for (;;) {
        if (e2h_detokenize(e->model->tok, s->tokens + s->ext_start, n, e->text, e->text_cap, &len))
            return 0;
        if (len < e->text_cap) break;
        size_t cap = (len + 1) * 2;
        char *t = realloc(e->text, cap);
        if (!t) return 0;
        e->text = t;
        e->text_cap = cap;
    }
    for (int i = 0; i < stop->n_stop_strings; i++)
        if (stop->stop_strings[i][0] && strstr(e->text, stop->stop_strings[i])) return 1;
    return 0;
}

typedef struct {
    e2h_engine *e;
    e2h_seq *const *seqs;
    int n;
} eng_sample_args;

// Pool body: each thread samples its share of the sequences (each has its own RNG, so the
// tokens do not depend on the thread count) with its own scratch.
static void eng_sample_fn(void *p, int ith, int nth) {
    const eng_sample_args *a = p;
    int64_t i0, i1;
    e2h_pool_slice(a->n, ith, nth, 1, &i0, &i1);
    for (int64_t i = i0; i < i1; i++) {
        e2h_seq *s = a->seqs[i];
        s->next_tok = sample_token(s->logits, a->e->vocab, &s->sp, &s->rng, &a->e->ss[ith], &s->next_lp);
    }
}

// Appends the token sampled for s (next_tok); sets s->stop if done.
static e2h_status seq_sample_one(e2h_engine *e, e2h_seq *s, const e2h_stop *stop) {
    if (seq_grow(s, s->n + 2)) return ENG_ERR(e, E2H_ERR_NOMEM, "out of memory");
    const int32_t tok = s->next_tok;
    s->tokens[s->n] = tok;
    s->logprobs[s->n] = s->next_lp;
    s->n++;
    int at_eos = stop ? stop->stop_at_eos : 1;
    int32_t budget = stop && stop->max_tokens > 0 ? stop->max_tokens : INT32_MAX;
    if (at_eos && eng_is_eos(e, tok)) s->stop = E2H_STOP_EOS;
    else if (eng_hit_stop_string(e, s, stop)) s->stop = E2H_STOP_STRING;
    else if (s->n - s->ext_start >= budget) s->stop = E2H_STOP_LENGTH;
    else if (s->n >= e->max_ctx) s->stop = E2H_STOP_CONTEXT;
    return E2H_OK;
}

e2h_status e2h_seq_extend(e2h_engine *e, e2h_seq *const *seqs, int n, const e2h_stop *stop) {
    if (!e || !seqs || n < 1) return e ? ENG_ERR(e, E2H_ERR_INVALID_ARG, "extend: no sequences") : E2H_ERR_INVALID_ARG;
    if (stop && stop->n_stop_strings > 0 && !e->model->tok)
        return ENG_ERR(e, E2H_ERR_TOKENIZER, "stop strings need a tokenizer, and this model has none");
    // A sequence listed twice would be sampled twice per step and written twice per pass.
    for (int i = 0; i < n; i++) {
        if (!seqs[i]) return ENG_ERR(e, E2H_ERR_INVALID_ARG, "extend: sequence %d is NULL", i);
        for (int j = 0; j < i; j++)
            if (seqs[j] == seqs[i])
                return ENG_ERR(e, E2H_ERR_INVALID_ARG, "extend: sequence %d is listed twice", i);
    }
    e2h_seq **active = malloc((size_t)n * sizeof *active);
    if (!active) return ENG_ERR(e, E2H_ERR_NOMEM, "out of memory");
    e2h_status st = eng_sync(e, seqs, n);
    int n_active = 0;
    for (int i = 0; i < n && !st; i++) {
        seqs[i]->ext_start = seqs[i]->n;
        seqs[i]->stop = E2H_STOP_NONE;
        if (seqs[i]->n >= e->max_ctx) seqs[i]->stop = E2H_STOP_CONTEXT;
        else active[n_active++] = seqs[i];
    }
    while (!st && n_active > 0) {
        int m = 0;
        eng_sample_args sa = {e, active, n_active};
        e2h_pool_run(n_active > 1 ? e->pool : NULL, eng_sample_fn, &sa);
        for (int i = 0; i < n_active && !st; i++) {
            st = seq_sample_one(e, active[i], stop);
            if (active[i]->stop == E2H_STOP_NONE) active[m++] = active[i];
        }
        n_active = m;
        if (!st && n_active) st = eng_sync(e, active, n_active);
    }
    // The last sampled token of each stopped sequence is still pending: compute them all in
    // one pass so e2h_seq_logits is current, as the API promises.
    if (!st) st = eng_sync(e, seqs, n);
    free(active);
    return st;
}

e2h_status e2h_seq_append(e2h_engine *e, e2h_seq *s, const int32_t *ids, int32_t n) {
    if (!e || !s || (!ids && n) || n < 0) return E2H_ERR_INVALID_ARG;
    e2h_status st = seq_check_len(e, s->n + n);
    if (st) return st;
    for (int32_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= e->vocab)
            return ENG_ERR(e, E2H_ERR_INVALID_ARG, "token id %d is outside the vocabulary [0, %d)",
                           ids[i], e->vocab);
    if (seq_grow(s, s->n + n + 1)) return ENG_ERR(e, E2H_ERR_NOMEM, "out of memory");
    memcpy(s->tokens + s->n, ids, (size_t)n * sizeof *ids);
    for (int32_t i = 0; i < n; i++) s->logprobs[s->n + i] = NAN;
    s->n += n;
    st = eng_sync(e, &s, 1);
    if (st) { // leave the sequence as it was
        s->n -= n;
        kv_seq_truncate(e->kv, &s->kv, s->kv.n_tokens < s->n ? s->kv.n_tokens : s->n - 1);
    }
    return st;
}

e2h_status e2h_seq_truncate(e2h_engine *e, e2h_seq *s, int32_t n_tokens) {
    if (!e || !s) return E2H_ERR_INVALID_ARG;
    if (n_tokens < 1 || n_tokens > s->n)
        return ENG_ERR(e, E2H_ERR_INVALID_ARG, "truncate: length %d outside [1, %d]", n_tokens, s->n);
    // keep the last token pending so its logits are recomputed on the next extend
    int32_t keep = n_tokens - 1 < s->kv.n_tokens ? n_tokens - 1 : s->kv.n_tokens;
    if (kv_seq_truncate(e->kv, &s->kv, keep))
        return ENG_ERR(e, E2H_ERR_INVALID_ARG, "truncate: KV cache refused");
    s->n = n_tokens;
    if (s->n_prompt > n_tokens) s->n_prompt = n_tokens;
    return eng_sync(e, &s, 1);
}

void e2h_seq_release(e2h_engine *e, e2h_seq *s) {
    if (e && s) seq_free(e, s);
}

int32_t e2h_seq_len(const e2h_seq *s) { return s->n; }
const int32_t *e2h_seq_tokens(const e2h_seq *s) { return s->tokens; }
const float *e2h_seq_logprobs(const e2h_seq *s) { return s->logprobs; }
int32_t e2h_seq_n_prompt(const e2h_seq *s) { return s->n_prompt; }
e2h_stop_reason e2h_seq_stop_reason(const e2h_seq *s) { return s->stop; }
const float *e2h_seq_logits(const e2h_seq *s) { return s->logits; }

e2h_sampling e2h_sampling_default(void) {
    e2h_sampling p = {0.0f, 0, 1.0f, 0.0f, 1};
    return p;
}

// Logits of every position, from scratch: a private sequence with no prefix reuse.
e2h_status e2h_eval_logits(e2h_engine *e, const int32_t *ids, int32_t n, float *logits) {
    if (!e || !ids || !logits || n < 1) return e ? ENG_ERR(e, E2H_ERR_INVALID_ARG, "eval: need tokens") : E2H_ERR_INVALID_ARG;
    e2h_status st = seq_check_len(e, n);
    if (st) return st;
    kv_seq kv;
    kv_seq_init(&kv);
    for (int32_t done = 0; done < n && !st;) {
        int32_t take = n - done < e->max_batch ? n - done : e->max_batch;
        if (kv_seq_reserve(e->kv, &kv, take)) {
            st = ENG_ERR(e, E2H_ERR_KV_FULL, "KV cache exhausted evaluating %d tokens", n);
            break;
        }
        fwd_seq fs = {&kv, ids + done, take, take};
        st = fwd_run(e->fwd, e->model, e->kv, e->pool, &fs, 1, logits + (size_t)done * e->vocab,
                     NULL, e->last_err, sizeof e->last_err);
        if (!st && kv_seq_commit(e->kv, &kv, ids + done, take))
            st = ENG_ERR(e, E2H_ERR_INVALID_ARG, "internal: the KV cache refused to record tokens");
        done += take;
    }
    kv_seq_release(e->kv, &kv);
    return st;
}

void e2h_engine_get_kv_stats(const e2h_engine *e, e2h_kv_stats *out) {
    memset(out, 0, sizeof *out);
    const kv_config *kc = kv_pool_config(e->kv);
    const e2h_config *c = &e->model->cfg;
    out->blocks_total = kv_pool_n_blocks(e->kv);
    out->blocks_cached = kv_pool_n_cached(e->kv);
    out->blocks_used = out->blocks_total - kv_pool_n_free(e->kv) - out->blocks_cached;
    out->block_size = kc->block_size;
    out->block_bytes = (size_t)c->n_layers * 2 * (size_t)c->n_kv_heads * c->head_dim *
                       (size_t)kc->block_size * (kc->kv_type == E2H_TYPE_F16 ? 2 : 4);
    for (const e2h_seq *s = e->live; s; s = s->next) {
        size_t blocks = ((size_t)s->n + kc->block_size - 1) / kc->block_size;
        out->independent_bytes += blocks * out->block_bytes;
    }
}
