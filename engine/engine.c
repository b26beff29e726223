// engine/engine.c — the engine handle and the sequence (tree) API on top of the forward pass
// and the paged KV pool: creating, forking, appending to, truncating and releasing sequences.
// These only record tokens; the scheduler (sched.c) computes them in shared forward passes.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "prm_hooks.h"
#include "sched.h"
#include "util.h"

#define ENG_ERR(e, st, ...) (fmt_errf((e)->last_err, sizeof (e)->last_err, __VA_ARGS__), (st))

size_t eng_kv_bytes_per_token(const e2h_model *m, int f16) {
    const e2h_config *c = &m->cfg;
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
    size_t per_tok = eng_kv_bytes_per_token(e->model, o->kv_f16);
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
        fmt_errf(err, err_len, "kv_mem_gib: %.6f GiB holds fewer than 2 KV blocks of this model",
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
    if (o.share_pool_with) o.n_threads = o.share_pool_with->n_threads;
    if (o.n_threads <= 0) o.n_threads = 1;
    if (o.max_batch_tokens <= 0) o.max_batch_tokens = 512;
    // option errors name the e2h_engine_opts field (the CLI maps them to its flags)
#define OPT_ERR(...) (fmt_errf(err, err_len, __VA_ARGS__), E2H_ERR_INVALID_ARG)
    if (o.n_threads > 256) return OPT_ERR("n_threads: %d is above 256", o.n_threads);
    if (o.max_batch_tokens > 65536)
        return OPT_ERR("max_batch_tokens: %d is above 65536", o.max_batch_tokens);
    if (o.block_size < 0 || o.block_size > 1024)
        return OPT_ERR("block_size: %d is outside 0..1024", o.block_size);
    if (!(o.kv_mem_gib >= 0) || o.kv_mem_gib > 1048576.0) // also NaN
        return OPT_ERR("kv_mem_gib: %g is outside 0..1048576", o.kv_mem_gib);
    if (o.feature_layer < 0 || o.feature_layer > m->cfg.n_layers)
        return OPT_ERR("feature_layer: %d is outside 0..%d (this model's layers)", o.feature_layer,
                       m->cfg.n_layers);
    const e2h_ops *ops = ops_get(o.kernels ? o.kernels : "auto");
    if (!ops) {
        char why[160];
        return OPT_ERR("kernels: '%s' is unknown or not supported by this CPU: %s", o.kernels,
                       ops_why_not(o.kernels, why, sizeof why));
    }
#undef OPT_ERR
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
    e->dim = m->cfg.dim;
    e->feat_layer = o.feature_layer;
    e->hid_w = o.feature_layer ? 2 * e->dim : e->dim;
    e2h_status st = eng_init_kv(e, &o, err, err_len);
    if (st) goto fail;
    if (o.share_pool_with) { // the pool lives until the last engine using it is freed
        e->pool_ref = o.share_pool_with->pool_ref;
        e->pool_ref->refs++;
    } else if ((e->pool_ref = calloc(1, sizeof *e->pool_ref))) {
        e->pool_ref->refs = 1;
        e->pool_ref->pool = pool_init(o.n_threads);
    }
    e->pool = e->pool_ref ? e->pool_ref->pool : NULL;
    e->fwd = fwd_init(m, ops, e->max_batch, e->max_batch, e->max_ctx, o.n_threads);
    e->logits = malloc((size_t)e->max_batch * e->vocab * sizeof(float));
    e->fs = malloc((size_t)e->max_batch * sizeof *e->fs);
    e->fs_owner = malloc((size_t)e->max_batch * sizeof *e->fs_owner);
    e->hidden = malloc((size_t)e->max_batch * e->hid_w * sizeof(float));
    e->out_rows = malloc((size_t)e->max_batch * sizeof *e->out_rows);
    e->out_lg = malloc((size_t)e->max_batch * sizeof *e->out_lg);
    e->work = malloc((size_t)e->max_batch * sizeof *e->work);
    e->ss = calloc((size_t)o.n_threads, sizeof *e->ss);
    int ss_bad = !e->ss;
    for (int i = 0; i < o.n_threads && !ss_bad; i++) ss_bad = sample_scratch_init(&e->ss[i], e->vocab);
    if (!e->pool || !e->fwd || !e->logits || !e->fs || !e->fs_owner || !e->hidden ||
        !e->out_rows || !e->out_lg || !e->work || ss_bad) {
        fmt_errf(err, err_len, "out of memory allocating run state for %d tokens", e->max_batch);
        st = E2H_ERR_NOMEM;
        goto fail;
    }
    *out = e;
    return E2H_OK;
fail:
    e2h_engine_free(e);
    return st;
}

static void seq_free(e2h_engine *e, e2h_seq *s);

void e2h_engine_free(e2h_engine *e) {
    if (!e) return;
    prm_hook_engine_free(e); // PRM state of live sequences, the PRM's engines
    while (e->live) seq_free(e, e->live); // sequences still live are released with it
    fwd_free(e->fwd);
    kv_pool_free(e->kv);
    if (e->pool_ref && --e->pool_ref->refs == 0) {
        pool_free(e->pool_ref->pool);
        free(e->pool_ref);
    }
    for (int i = 0; e->ss && i < e->n_threads; i++) sample_scratch_free(&e->ss[i]);
    free(e->ss);
    free(e->logits);
    free(e->fs);
    free(e->fs_owner);
    free(e->hidden);
    free(e->out_rows);
    free(e->out_lg);
    free(e->work);
    free(e->text);
    free(e);
}

e2h_engine_opts e2h_engine_opts_default(void) {
    e2h_engine_opts o;
    memset(&o, 0, sizeof o);
    return o;
}

e2h_load_opts e2h_load_opts_default(void) {
    e2h_load_opts o;
    memset(&o, 0, sizeof o);
    return o;
}

e2h_stop e2h_stop_default(void) {
    e2h_stop s;
    memset(&s, 0, sizeof s);
    return s;
}

const char *e2h_engine_last_error(const e2h_engine *e) { return e ? e->last_err : ""; }

e2h_status eng_set_error(e2h_engine *e, e2h_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->last_err, sizeof e->last_err, fmt, ap);
    va_end(ap);
    return st;
}
const e2h_model *e2h_engine_model(const e2h_engine *e) { return e->model; }

// ------------------------------------------------------------------ the PRM seam (prm_hooks.h)

struct prm_rt *eng_prm_rt(const e2h_engine *e) { return e->prm_rt; }
void eng_set_prm_rt(e2h_engine *e, struct prm_rt *rt) { e->prm_rt = rt; }
struct prm_seq *eng_seq_prm(const e2h_seq *s) { return s->prm; }
void eng_seq_set_prm(e2h_seq *s, struct prm_seq *q) { s->prm = q; }
void eng_seq_set_no_logits(e2h_seq *s) { s->no_logits = 1; }
e2h_seq *eng_seq_first(const e2h_engine *e) { return e->live; }
e2h_seq *eng_seq_next(const e2h_seq *s) { return s->next; }
kv_pool *eng_kv_pool(const e2h_engine *e) { return e->kv; }

const char *e2h_kernels_resolve(const char *kernels) {
    const e2h_ops *ops = ops_get(kernels ? kernels : "auto");
    return ops ? ops->name : NULL;
}

const char *e2h_kernels_why_not(const char *kernels, char *buf, size_t len) {
    return ops_why_not(kernels, buf, len);
}

void eng_get_shape(const e2h_engine *e, eng_shape *out) {
    out->n_threads = e->n_threads;
    out->max_batch = e->max_batch;
    out->max_ctx = e->max_ctx;
    out->kernels = e->ops->name;
    out->feature_layer = e->feat_layer;
}

// ------------------------------------------------------------------ sequences

e2h_status eng_seq_grow(e2h_seq *s, int32_t need) {
    if (need <= s->cap) return E2H_OK;
    int32_t cap = s->cap ? s->cap : 64;
    while (cap < need) cap = cap > INT32_MAX / 2 ? INT32_MAX : cap * 2;
    int32_t *t = realloc(s->tokens, (size_t)cap * sizeof *t);
    if (!t) return E2H_ERR_NOMEM;
    s->tokens = t;
    float *lp = realloc(s->logprobs, (size_t)cap * sizeof *lp);
    if (!lp) return E2H_ERR_NOMEM;
    s->logprobs = lp;
    uint8_t *f = realloc(s->pflags, (size_t)cap * sizeof *f);
    if (!f) return E2H_ERR_NOMEM;
    s->pflags = f;
    s->cap = cap;
    return E2H_OK;
}

static e2h_seq *seq_new(e2h_engine *e) {
    e2h_seq *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->logits = malloc((size_t)e->vocab * sizeof(float));
    s->hidden = malloc((size_t)e->hid_w * sizeof(float));
    if (!s->logits || !s->hidden) { free(s->logits); free(s->hidden); free(s); return NULL; }
    s->feat_dim = e->feat_layer ? e->dim : 0;
    kv_seq_init(&s->kv);
    s->next = e->live;
    if (e->live) e->live->prev = s;
    e->live = s;
    return s;
}

// Frees the captures at positions >= from.
static void seq_drop_caps(e2h_seq *s, int32_t from) {
    while (s->n_caps > 0 && s->caps[s->n_caps - 1].pos >= from) {
        seq_capture *c = &s->caps[--s->n_caps];
        free(c->hidden);
        free(c->logits);
    }
}

static void seq_free(e2h_engine *e, e2h_seq *s) {
    prm_hook_release(e, s);
    if (s->prev) s->prev->next = s->next;
    else e->live = s->next;
    if (s->next) s->next->prev = s->prev;
    kv_seq_release(e->kv, &s->kv);
    e2h_detok_stream_free(s->ds);
    free(s->tail);
    free(s->tokens);
    free(s->logprobs);
    free(s->pflags);
    free(s->logits);
    free(s->hidden);
    seq_drop_caps(s, 0);
    free(s->caps);
    free(s);
}

static e2h_status seq_check_len(e2h_engine *e, int32_t n) {
    if (n > e->max_ctx)
        return ENG_ERR(e, E2H_ERR_CONTEXT,
                       "sequence of %d tokens is longer than the context of %d tokens "
                       "(max_position_embeddings%s)", n, e->max_ctx,
                       e->max_ctx == e->model->cfg.sliding_window ? " / sliding_window" : "");
    return E2H_OK;
}

// A sequence of n tokens must fit in the whole pool, else no sync could ever compute it.
static e2h_status seq_check_pool(e2h_engine *e, int32_t n) {
    int64_t bs = kv_pool_config(e->kv)->block_size, blocks = ((int64_t)n + bs - 1) / bs;
    if (blocks > kv_pool_n_blocks(e->kv))
        return ENG_ERR(e, E2H_ERR_KV_FULL, "KV cache too small: a sequence of %d tokens needs %lld "
                       "blocks, the pool has %d; raise kv_mem_gib", n, (long long)blocks,
                       kv_pool_n_blocks(e->kv));
    return E2H_OK;
}

static e2h_status seq_check_ids(e2h_engine *e, const int32_t *ids, int32_t n, const char *what) {
    for (int32_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= e->vocab)
            return ENG_ERR(e, E2H_ERR_INVALID_ARG, "%s: token id %d at offset %d is outside the "
                           "vocabulary [0, %d)", what, ids[i], i, e->vocab);
    return E2H_OK;
}

e2h_status e2h_seq_create(e2h_engine *e, const int32_t *ids, int32_t n, const e2h_sampling *sp,
                          e2h_seq **out) {
    if (!e || !out) return E2H_ERR_INVALID_ARG;
    *out = NULL;
    if (!ids || n < 1) return ENG_ERR(e, E2H_ERR_INVALID_ARG, "create: a sequence needs at least one token");
    e2h_status st = seq_check_len(e, n);
    if (!st) st = seq_check_ids(e, ids, n, "create");
    if (!st) st = seq_check_pool(e, n);
    if (st) return st;
    e2h_seq *s = seq_new(e);
    if (!s || eng_seq_grow(s, n + 1)) {
        if (s) seq_free(e, s);
        return ENG_ERR(e, E2H_ERR_NOMEM, "create: out of memory for a sequence of %d tokens", n);
    }
    memcpy(s->tokens, ids, (size_t)n * sizeof *ids);
    for (int32_t i = 0; i < n; i++) s->logprobs[i] = NAN;
    memset(s->pflags, 0, (size_t)n);
    s->n = s->n_prompt = n;
    s->sp = sp ? *sp : e2h_sampling_default();
    s->stream = 0;
    rng_seed(&s->rng, s->sp.seed, s->stream);
    kv_seq_match_prefix(e->kv, &s->kv, ids, n); // the rest is pending until a sync
    s->n_done = s->kv.n_tokens; // a cached prefix has no output rows (no log-prob, no capture)
    *out = s;
    return E2H_OK;
}

// Copies src's captures into dst (empty). 0, or -1 when out of memory.
static int seq_copy_caps(const e2h_seq *src, e2h_seq *dst, int32_t hid_w, int32_t vocab) {
    if (!src->n_caps) return 0;
    dst->caps = malloc((size_t)src->n_caps * sizeof *dst->caps);
    if (!dst->caps) return -1;
    dst->cap_caps = src->n_caps;
    for (int32_t i = 0; i < src->n_caps; i++) {
        const seq_capture *a = &src->caps[i];
        seq_capture *b = &dst->caps[i];
        *b = *a;
        b->hidden = malloc((size_t)hid_w * sizeof(float));
        b->logits = a->logits ? malloc((size_t)vocab * sizeof(float)) : NULL;
        dst->n_caps = i + 1;
        if (!b->hidden || (a->logits && !b->logits)) return -1;
        memcpy(b->hidden, a->hidden, (size_t)hid_w * sizeof(float));
        if (a->logits) memcpy(b->logits, a->logits, (size_t)vocab * sizeof(float));
    }
    return 0;
}

e2h_status e2h_seq_fork(e2h_engine *e, e2h_seq *parent, int k, e2h_seq **children) {
    if (!e || !parent || !children || k < 1)
        return e ? ENG_ERR(e, E2H_ERR_INVALID_ARG, "fork: need a parent and k >= 1") : E2H_ERR_INVALID_ARG;
    // children share the parent's complete cache (recomputed first if it was preempted)
    e2h_status st = sched_sync_resident(e, parent);
    if (st) return st;
    for (int i = 0; i < k; i++) children[i] = NULL;
    for (int i = 0; i < k; i++) {
        e2h_seq *c = seq_new(e);
        if (!c || eng_seq_grow(c, parent->n + 1) || kv_seq_fork(e->kv, &parent->kv, &c->kv) ||
            seq_copy_caps(parent, c, e->hid_w, e->vocab)) {
            if (c) seq_free(e, c);
            for (int j = 0; j < i; j++) { seq_free(e, children[j]); children[j] = NULL; }
            return ENG_ERR(e, E2H_ERR_NOMEM, "fork: out of memory");
        }
        memcpy(c->tokens, parent->tokens, (size_t)parent->n * sizeof *c->tokens);
        memcpy(c->logprobs, parent->logprobs, (size_t)parent->n * sizeof *c->logprobs);
        memcpy(c->pflags, parent->pflags, (size_t)parent->n);
        memcpy(c->logits, parent->logits, (size_t)e->vocab * sizeof(float));
        memcpy(c->hidden, parent->hidden, (size_t)e->hid_w * sizeof(float));
        c->n = parent->n;
        c->n_done = parent->n_done;
        c->n_prompt = parent->n_prompt;
        c->no_logits = parent->no_logits;
        c->sp = parent->sp;
        // distinct, reproducible stream per tree path: (parent stream, child index)
        c->stream = parent->stream * 1000003ull + (uint64_t)i + 1;
        rng_seed(&c->rng, c->sp.seed, c->stream);
        children[i] = c;
        prm_hook_fork(e, parent, c); // the child's PRM mirror shares the parent's
    }
    return E2H_OK;
}

e2h_append_opts e2h_append_opts_default(void) {
    e2h_append_opts o;
    memset(&o, 0, sizeof o);
    o.logprobs = 1;
    return o;
}

// Adds captures at absolute positions base + offs[i] (ascending, past every existing one).
static e2h_status seq_add_caps(e2h_engine *e, e2h_seq *s, int32_t base, const int32_t *offs,
                               int32_t n, int with_logits) {
    if (s->n_caps + n > s->cap_caps) {
        int32_t cap = s->n_caps + n > 2 * s->cap_caps ? s->n_caps + n : 2 * s->cap_caps;
        seq_capture *c = realloc(s->caps, (size_t)cap * sizeof *c);
        if (!c) return E2H_ERR_NOMEM;
        s->caps = c;
        s->cap_caps = cap;
    }
    for (int32_t i = 0; i < n; i++) {
        seq_capture *c = &s->caps[s->n_caps];
        c->pos = base + offs[i];
        c->done = 0;
        c->hidden = malloc((size_t)e->hid_w * sizeof(float));
        c->logits = with_logits ? malloc((size_t)e->vocab * sizeof(float)) : NULL;
        s->n_caps++;
        if (!c->hidden || (with_logits && !c->logits)) return E2H_ERR_NOMEM;
    }
    return E2H_OK;
}

e2h_status e2h_seq_append_ex(e2h_engine *e, e2h_seq *s, const int32_t *ids, int32_t n,
                             const e2h_append_opts *opts) {
    if (!e) return E2H_ERR_INVALID_ARG;
    if (!s || (!ids && n) || n < 0)
        return ENG_ERR(e, E2H_ERR_INVALID_ARG, "append: need a sequence and n >= 0 token ids");
    e2h_append_opts o = opts ? *opts : e2h_append_opts_default();
    if (o.n_capture < 0 || (o.n_capture > 0 && !o.capture))
        return ENG_ERR(e, E2H_ERR_INVALID_ARG, "append: n_capture %d without a capture list", o.n_capture);
    for (int32_t i = 0; i < o.n_capture; i++)
        if (o.capture[i] < 0 || o.capture[i] >= n || (i && o.capture[i] <= o.capture[i - 1]))
            return ENG_ERR(e, E2H_ERR_INVALID_ARG, "append: capture offset %d (index %d) is not "
                           "ascending in [0, %d)", o.capture[i], i, n);
    if (n > INT32_MAX - s->n) return ENG_ERR(e, E2H_ERR_CONTEXT, "append: %d tokens overflow", n);
    e2h_status st = seq_check_len(e, s->n + n);
    if (!st) st = seq_check_ids(e, ids, n, "append");
    if (!st) st = seq_check_pool(e, s->n + n);
    if (st) return st;
    if (n == 0) return E2H_OK;
    if (eng_seq_grow(s, s->n + n + 1))
        return ENG_ERR(e, E2H_ERR_NOMEM, "append: out of memory for %d tokens", s->n + n);
    if (seq_add_caps(e, s, s->n, o.capture, o.n_capture, o.capture_logits)) {
        seq_drop_caps(s, s->n);
        return ENG_ERR(e, E2H_ERR_NOMEM, "append: out of memory for %d captures", o.n_capture);
    }
    const int synced = s->n_done == s->n;
    memcpy(s->tokens + s->n, ids, (size_t)n * sizeof *ids);
    for (int32_t i = 0; i < n; i++) {
        s->logprobs[s->n + i] = NAN;
        s->pflags[s->n + i] = o.logprobs ? SEQ_F_LP : 0;
    }
    for (int32_t i = 0; i < o.n_capture; i++) s->pflags[s->n + o.capture[i]] |= SEQ_F_CAP;
    // The first token's log-prob comes from the current logits (no pass needed for it).
    if (o.logprobs && synced) {
        s->logprobs[s->n] = sample_logprob(s->logits, e->vocab, ids[0]);
        s->pflags[s->n] &= (uint8_t)~SEQ_F_LP;
    }
    s->n += n;
    eng_seq_drop_stop_state(s); // an extend after this cannot resume the previous one's text
    return E2H_OK;
}

e2h_status e2h_seq_append(e2h_engine *e, e2h_seq *s, const int32_t *ids, int32_t n) {
    return e2h_seq_append_ex(e, s, ids, n, NULL);
}

e2h_status e2h_seq_truncate(e2h_engine *e, e2h_seq *s, int32_t n_tokens) {
    if (!e) return E2H_ERR_INVALID_ARG;
    if (!s) return ENG_ERR(e, E2H_ERR_INVALID_ARG, "truncate: no sequence");
    if (n_tokens < 1 || n_tokens > s->n)
        return ENG_ERR(e, E2H_ERR_INVALID_ARG, "truncate: length %d outside [1, %d]", n_tokens, s->n);
    // keep the last token pending so its logits are recomputed by the next sync
    int32_t keep = n_tokens - 1 < s->kv.n_tokens ? n_tokens - 1 : s->kv.n_tokens;
    if (kv_seq_truncate(e->kv, &s->kv, keep))
        return ENG_ERR(e, E2H_ERR_INVALID_ARG, "truncate: the KV cache refused to drop positions "
                       "[%d, %d)", keep, s->kv.n_tokens);
    s->n = n_tokens;
    if (s->n_done > n_tokens - 1) s->n_done = n_tokens - 1; // the last token's outputs are redone
    if (s->n_prompt > n_tokens) s->n_prompt = n_tokens;
    seq_drop_caps(s, n_tokens);
    eng_seq_drop_stop_state(s);
    prm_hook_truncate(e, s, n_tokens);
    return E2H_OK;
}

void e2h_seq_release(e2h_engine *e, e2h_seq *s) {
    if (e && s) seq_free(e, s);
}

int32_t e2h_seq_len(const e2h_seq *s) { return s->n; }
const int32_t *e2h_seq_tokens(const e2h_seq *s) { return s->tokens; }
const float *e2h_seq_logprobs(const e2h_seq *s) { return s->logprobs; }
int32_t e2h_seq_n_prompt(const e2h_seq *s) { return s->n_prompt; }
e2h_stop_reason e2h_seq_stop_reason(const e2h_seq *s) { return s->stop; }
const float *e2h_seq_logits(const e2h_seq *s) {
    return s->n_done == s->n && !s->no_logits ? s->logits : NULL;
}
const float *e2h_seq_hidden(const e2h_seq *s) { return s->n_done == s->n ? s->hidden : NULL; }

static const seq_capture *seq_cap_at(const e2h_seq *s, int32_t pos) {
    int32_t lo = 0, hi = s->n_caps;
    while (lo < hi) {
        int32_t mid = (lo + hi) / 2;
        if (s->caps[mid].pos < pos) lo = mid + 1;
        else hi = mid;
    }
    return lo < s->n_caps && s->caps[lo].pos == pos && s->caps[lo].done ? &s->caps[lo] : NULL;
}
const float *e2h_seq_hidden_at(const e2h_seq *s, int32_t pos) {
    const seq_capture *c = seq_cap_at(s, pos);
    return c ? c->hidden : NULL;
}
const float *e2h_seq_logits_at(const e2h_seq *s, int32_t pos) {
    const seq_capture *c = seq_cap_at(s, pos);
    return c ? c->logits : NULL;
}
const float *e2h_seq_hidden_layer(const e2h_seq *s) {
    const float *h = e2h_seq_hidden(s);
    return h && s->feat_dim ? h + s->feat_dim : NULL;
}
const float *e2h_seq_hidden_layer_at(const e2h_seq *s, int32_t pos) {
    const float *h = e2h_seq_hidden_at(s, pos);
    return h && s->feat_dim ? h + s->feat_dim : NULL;
}

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
        fwd_seq fs = {&kv, ids + done, take, take, NULL, NULL};
        st = fwd_run(e->fwd, e->model, e->kv, e->pool, &fs, 1, logits + (size_t)done * e->vocab,
                     NULL, 0, e->last_err, sizeof e->last_err);
        if (!st) {
            e->n_passes++;
            e->n_pass_tokens += take;
        }
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
    out->blocks_total = kv_pool_n_blocks(e->kv);
    out->blocks_cached = kv_pool_n_cached(e->kv);
    out->blocks_used = out->blocks_total - kv_pool_n_free(e->kv) - out->blocks_cached;
    out->block_size = kc->block_size;
    out->forward_passes = e->n_passes;
    out->forward_tokens = e->n_pass_tokens;
    out->preemptions = e->n_preempt;
    out->block_bytes = kv_pool_block_bytes(e->kv);
    for (const e2h_seq *s = e->live; s; s = s->next) {
        size_t blocks = ((size_t)s->n + kc->block_size - 1) / kc->block_size;
        out->independent_bytes += blocks * out->block_bytes;
    }
}
