// engine/prm/mirror.c — PRM scoring on the shared pool: a PRM attached to a policy engine,
// per-sequence PRM state that forks / truncates / releases with the policy sequence, and
// incremental scoring.
//
// Incremental scoring: each policy sequence's PRM mirror (a sequence in the PRM's engine) holds
// the PRM's tokens of its layout so far. Scoring new steps lays out problem + all steps again
// (text, so PRM and policy tokenizers may differ), keeps the mirror's longest common prefix
// with the new token list and appends only the rest, capturing the hidden states at the read
// positions; all mirrors' new tokens run in shared forward passes (e2h_engine_sync). Only
// tokens up to the last read are appended: the causal model's reads do not depend on the
// template tokens after them. So step k costs its own tokens (+ tag / template tokens), a
// scored prefix costs nothing, and a re-tokenized boundary is recomputed, never stale.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kv.h"
#include "../prm_hooks.h"
#include "../sched.h"
#include "../util.h"
#include "prm_internal.h"

#define PRM_ERR(e, st, ...) eng_set_error((e), (st), __VA_ARGS__)

typedef struct {
    int ref;
    char text[];
} prm_problem;

// Per policy sequence.
struct prm_seq {
    prm_problem *problem;
    e2h_seq *mirror[2];     // in the PRM engine (and the reference engine for implicit)
    int32_t n_steps, cap;
    float *scores;          // (n_steps)
    size_t *s0, *len, *end; // (n_steps) step k's text is ptext[s0, s0 + len); consumed to end
    int32_t *end_tok;       // (n_steps) policy tokens (absolute) through step k's end
    int final_done;         // the last step was scored as final
};

struct prm_rt {
    const e2h_prm *prm;
    e2h_engine *pe[2];      // PRM engines: the model (e itself if it runs the PRM model), ref
    int own[2];
    int n_pe;
    int64_t tokens;         // PRM tokens appended to mirrors
};

// ---------------------------------------------------------------- per-seq state

static void pseq_free(struct prm_rt *rt, struct prm_seq *q) {
    if (!q) return;
    for (int j = 0; j < 2; j++)
        if (q->mirror[j]) e2h_seq_release(rt->pe[j], q->mirror[j]);
    if (q->problem && --q->problem->ref == 0) free(q->problem);
    free(q->scores);
    free(q->s0);
    free(q->len);
    free(q->end);
    free(q->end_tok);
    free(q);
}

static int pseq_grow(struct prm_seq *q, int32_t need) {
    if (need <= q->cap) return 0;
    int32_t cap = q->cap ? q->cap * 2 : 16;
    while (cap < need) cap *= 2;
    float *sc = realloc(q->scores, (size_t)cap * sizeof *sc);
    if (sc) q->scores = sc;
    size_t *a = realloc(q->s0, (size_t)cap * sizeof *a);
    if (a) q->s0 = a;
    size_t *b = realloc(q->len, (size_t)cap * sizeof *b);
    if (b) q->len = b;
    size_t *c = realloc(q->end, (size_t)cap * sizeof *c);
    if (c) q->end = c;
    int32_t *d = realloc(q->end_tok, (size_t)cap * sizeof *d);
    if (d) q->end_tok = d;
    if (!sc || !a || !b || !c || !d) return -1;
    q->cap = cap;
    return 0;
}

static struct prm_seq *pseq_get(e2h_seq *s, int create) {
    struct prm_seq *q = eng_seq_prm(s);
    if (!q && create) eng_seq_set_prm(s, q = calloc(1, sizeof *q));
    return q;
}

// ---------------------------------------------------------------- hooks (engine.c)

void prm_hook_fork(e2h_engine *e, e2h_seq *parent, e2h_seq *child) {
    struct prm_rt *rt = eng_prm_rt(e);
    struct prm_seq *p = eng_seq_prm(parent);
    if (!rt || !p) return;
    struct prm_seq *c = calloc(1, sizeof *c);
    if (!c || pseq_grow(c, p->n_steps > 0 ? p->n_steps : 1)) {
        pseq_free(rt, c);
        return; // the child scores from scratch (its mirror is rebuilt on first scoring)
    }
    c->problem = p->problem;
    if (c->problem) c->problem->ref++;
    c->n_steps = p->n_steps;
    c->final_done = p->final_done;
    size_t n = (size_t)p->n_steps;
    if (n) { // (a parent that never scored has NULL arrays: memcpy from NULL is UB even for 0)
        memcpy(c->scores, p->scores, n * sizeof *c->scores);
        memcpy(c->s0, p->s0, n * sizeof *c->s0);
        memcpy(c->len, p->len, n * sizeof *c->len);
        memcpy(c->end, p->end, n * sizeof *c->end);
        memcpy(c->end_tok, p->end_tok, n * sizeof *c->end_tok);
    }
    for (int j = 0; j < rt->n_pe; j++)
        if (p->mirror[j] && e2h_seq_fork(rt->pe[j], p->mirror[j], 1, &c->mirror[j]))
            c->mirror[j] = NULL; // rebuilt (sharing the cached prefix) on first scoring
    eng_seq_set_prm(child, c);
}

// Steps that end past the new length are dropped; the mirror is cut on the next scoring
// (by its common prefix with the new layout), so a truncate-and-regrow costs nothing extra.
void prm_hook_truncate(e2h_engine *e, e2h_seq *s, int32_t n_tokens) {
    (void)e;
    struct prm_seq *q = eng_seq_prm(s);
    if (!q) return;
    while (q->n_steps > 0 && q->end_tok[q->n_steps - 1] > n_tokens) q->n_steps--, q->final_done = 0;
}

void prm_hook_release(e2h_engine *e, e2h_seq *s) {
    struct prm_seq *q = eng_seq_prm(s);
    if (q) pseq_free(eng_prm_rt(e), q);
    eng_seq_set_prm(s, NULL);
}

void prm_hook_engine_free(e2h_engine *e) {
    struct prm_rt *rt = eng_prm_rt(e);
    if (!rt) return;
    // releasing a state may release mirrors that live in e itself: restart after each
    for (int again = 1; again;) {
        again = 0;
        for (e2h_seq *s = eng_seq_first(e); s; s = eng_seq_next(s))
            if (eng_seq_prm(s)) {
                prm_hook_release(e, s);
                again = 1;
                break;
            }
    }
    for (int j = 0; j < rt->n_pe; j++)
        if (rt->own[j]) e2h_engine_free(rt->pe[j]);
    free(rt);
    eng_set_prm_rt(e, NULL);
}

// ---------------------------------------------------------------- attach

const e2h_prm *e2h_engine_prm(const e2h_engine *e) {
    const struct prm_rt *rt = e ? eng_prm_rt(e) : NULL;
    return rt ? rt->prm : NULL;
}
int64_t e2h_engine_prm_tokens(const e2h_engine *e) {
    const struct prm_rt *rt = e ? eng_prm_rt(e) : NULL;
    return rt ? rt->tokens : 0;
}
const e2h_model *e2h_prm_model(const e2h_prm *p) { return p ? p->model : NULL; }

e2h_status e2h_engine_attach_prm(e2h_engine *e, const e2h_prm *p) {
    if (!e || !p) return E2H_ERR_INVALID_ARG;
    if (eng_prm_rt(e)) return PRM_ERR(e, E2H_ERR_INVALID_ARG, "attach_prm: a PRM is already attached");
    const e2h_model *pm = e2h_engine_model(e); // the policy
    if (!p->proto->needs_model && p->policy != pm)
        return PRM_ERR(e, E2H_ERR_INVALID_ARG, "attach_prm: the head was loaded for another policy model");
    eng_shape sh;
    eng_get_shape(e, &sh);
    if (p->feature_layer && sh.feature_layer != p->feature_layer)
        return PRM_ERR(e, E2H_ERR_INVALID_ARG, "attach_prm: the head reads policy layer %d (its "
                       "feature_layer) but the engine keeps %s%d: create the engine with "
                       "feature_layer = %d (e2h_prm_feature_layer)", p->feature_layer,
                       sh.feature_layer ? "layer " : "no layer, feature_layer = ", sh.feature_layer,
                       p->feature_layer);
    struct prm_rt *rt = calloc(1, sizeof *rt);
    if (!rt) return E2H_ERR_NOMEM;
    rt->prm = p;
    const e2h_model *models[2] = {p->model, p->ref};
    int n_models = !p->proto->needs_model ? 0 : p->ref ? 2 : 1;
    // Split the policy engine's KV budget by bytes per token so every pool holds as many tokens.
    kv_pool *kv = eng_kv_pool(e);
    const kv_config *kc = kv_pool_config(kv);
    int f16 = kc->kv_type == E2H_TYPE_F16;
    size_t total = kv_pool_block_bytes(kv) * (size_t)kv_pool_n_blocks(kv);
    size_t per_tok = eng_kv_bytes_per_token(pm, f16);
    int new_models = 0;
    for (int j = 0; j < n_models; j++)
        if (models[j] != pm) per_tok += eng_kv_bytes_per_token(models[j], f16), new_models++;
    size_t tokens = total / per_tok;
    e2h_status st = E2H_OK;
    char err[512] = "";
    for (int j = 0; j < n_models && !st; j++) {
        if (models[j] == pm) { // the policy engine runs the PRM model itself
            rt->pe[j] = e;
            continue;
        }
        e2h_engine_opts o;
        memset(&o, 0, sizeof o);
        o.n_threads = sh.n_threads;
        o.kv_mem_gib = (double)(tokens * eng_kv_bytes_per_token(models[j], f16)) / 1073741824.0;
        o.kv_f16 = f16;
        o.block_size = kc->block_size;
        o.max_batch_tokens = sh.max_batch;
        o.kernels = sh.kernels;
        E2H_PRM_SHARE_POOL(o, e);
        st = e2h_engine_init(models[j], &o, &rt->pe[j], err, sizeof err);
        if (st) (void)PRM_ERR(e, st, "attach_prm: PRM engine: %s", err);
        rt->own[j] = !st;
    }
    rt->n_pe = n_models;
    if (!st && new_models) {
        int32_t keep = (int32_t)(tokens * eng_kv_bytes_per_token(pm, f16) / kv_pool_block_bytes(kv));
        // Sequences may exist already (their mirrors are made on their first scoring): the
        // split then has to leave the policy the blocks they reference (cached ones are evicted).
        if (keep < 2)
            st = PRM_ERR(e, E2H_ERR_INVALID_ARG, "attach_prm: --kv-mem is too small to split between "
                         "the policy and the PRM");
        else if (kv_pool_set_limit(kv, keep))
            st = PRM_ERR(e, E2H_ERR_KV_FULL, "attach_prm: the policy's sequences reference %d KV blocks, "
                         "more than the %d-block share the policy keeps when --kv-mem is split with the "
                         "PRM; attach before creating them, release some, or raise --kv-mem",
                         kv_pool_n_used(kv), keep);
    }
    if (st) {
        for (int j = 0; j < 2; j++)
            if (rt->own[j]) e2h_engine_free(rt->pe[j]);
        free(rt);
        return st;
    }
    eng_set_prm_rt(e, rt);
    return E2H_OK;
}

e2h_status e2h_seq_set_problem(e2h_engine *e, e2h_seq *s, const char *problem) {
    if (!e || !s || !problem) return E2H_ERR_INVALID_ARG;
    if (!eng_prm_rt(e)) return PRM_ERR(e, E2H_ERR_INVALID_ARG, "set_problem: no PRM attached");
    struct prm_seq *q = pseq_get(s, 1);
    if (!q) return E2H_ERR_NOMEM;
    size_t n = strlen(problem);
    prm_problem *pp = malloc(sizeof *pp + n + 1);
    if (!pp) return E2H_ERR_NOMEM;
    pp->ref = 1;
    memcpy(pp->text, problem, n + 1);
    if (q->problem && --q->problem->ref == 0) free(q->problem);
    q->problem = pp;
    q->n_steps = 0;
    q->final_done = 0;
    return E2H_OK;
}

int32_t e2h_seq_step_scores(const e2h_seq *s, const float **scores) {
    const struct prm_seq *q = s ? eng_seq_prm(s) : NULL;
    if (scores) *scores = q ? q->scores : NULL;
    return q ? q->n_steps : 0;
}

// ---------------------------------------------------------------- one scoring job

// What one sequence needs from a scoring round.
typedef struct {
    e2h_seq *s;             // policy sequence (NULL for score_texts)
    struct prm_seq *q;
    prm_build b;            // the layout of all steps
    int first_new;          // steps >= first_new get (re)scored
    int32_t cut[2];         // mirror kept length per engine
    char *ptext;            // policy text (after the prompt)
    size_t ptext_len;
    int n_new_steps;
} prm_job;

static void job_free(prm_job *j) {
    free(j->b.ids);
    free(j->b.read);
    free(j->b.span0);
    free(j->b.span1);
    free(j->ptext);
    memset(j, 0, sizeof *j);
}

static e2h_status job_layout(e2h_engine *e, const e2h_prm *p, prm_job *j, const char *problem,
                             const prm_steps *steps, int is_final) {
    j->b.tok = p->tok;
    j->b.n_steps = steps->n;
    size_t n = (size_t)(steps->n ? steps->n : 1);
    j->b.read = malloc(n * sizeof(int32_t));
    j->b.span0 = malloc(n * sizeof(int32_t));
    j->b.span1 = malloc(n * sizeof(int32_t));
    if (!j->b.read || !j->b.span0 || !j->b.span1) return E2H_ERR_NOMEM;
    const char *tag = p->proto->tag;
    for (int k = 0; k < steps->n; k++) {
        if (steps->len[k] == 0)
            return PRM_ERR(e, E2H_ERR_INVALID_ARG, "steps[%d] is empty", k);
        if (tag && memmem(steps->text[k], steps->len[k], tag, strlen(tag)))
            return PRM_ERR(e, E2H_ERR_INVALID_ARG, "steps[%d] contains the protocol's step tag \"%s\"",
                           k, tag);
    }
    // the layout writes its message here; it becomes the engine's last error
    char err[1024] = "";
    j->b.err = err;
    j->b.err_len = sizeof err;
    e2h_status st = p->proto->layout(p, &j->b, problem, steps, is_final);
    j->b.err = NULL;
    j->b.err_len = 0;
    if (err[0]) (void)eng_set_error(e, st, "%s", err);
    return st;
}

// Longest common prefix of a mirror's tokens and the new layout.
static int32_t prm_lcp(const e2h_seq *m, const int32_t *ids, int32_t n) {
    int32_t ml = e2h_seq_len(m), k = 0;
    const int32_t *mt = e2h_seq_tokens(m);
    while (k < ml && k < n && mt[k] == ids[k]) k++;
    return k;
}

// Last position job j needs computed (read position or span end), or -1.
static int32_t job_need_end(const e2h_prm *p, const prm_job *j) {
    int32_t need = -1;
    for (int k = j->first_new; k < j->b.n_steps; k++) {
        int32_t x = p->proto->read == PRM_READ_IMPLICIT ? j->b.span1[k] - 1 : j->b.read[k];
        if (x > need) need = x;
    }
    return need;
}

// First position whose computation job j needs: a read (hidden state) or, for implicit, a
// span token (log-prob); INT32_MAX if none.
static int32_t job_first_need(const e2h_prm *p, const prm_job *j) {
    int implicit = p->proto->read == PRM_READ_IMPLICIT;
    int32_t first = INT32_MAX;
    for (int k = j->first_new; k < j->b.n_steps; k++) {
        int32_t x = implicit ? j->b.span0[k] : j->b.read[k];
        if (x >= 0 && x < first) first = x;
    }
    return first;
}

// Tokens a new mirror of job j is created with: every token before the first one that needs
// a capture / log-prob (implicit: lp[first] needs first - 1's logits), at least 1; 0 if the
// job needs no mirror work.
static int32_t job_create_len(const e2h_prm *p, const prm_job *j) {
    int32_t end = job_need_end(p, j) + 1;
    if (end <= 0) return 0;
    if (end > j->b.n) end = j->b.n;
    int32_t first = job_first_need(p, j);
    int32_t k = first < end ? first : end - 1;
    if (p->proto->read == PRM_READ_IMPLICIT) k = first - 1 < end ? first - 1 : end - 1;
    return k < 1 ? 1 : k;
}

// Brings mirror engine idx of job j up to the layout (lazy: computed by the sync after).
static e2h_status job_append(e2h_engine *pe, struct prm_rt *rt, prm_job *j, e2h_seq **mirror) {
    const e2h_prm *p = rt->prm;
    int implicit = p->proto->read == PRM_READ_IMPLICIT;
    int32_t end = job_need_end(p, j) + 1; // tokens needed
    if (end <= 0) return E2H_OK;
    if (end > j->b.n) end = j->b.n;
    int32_t first = job_first_need(p, j);
    int32_t cut = *mirror ? prm_lcp(*mirror, j->b.ids, end) : 0;
    if (!implicit && first < cut) cut = first; // a read below the common prefix: recompute it
    if (implicit && *mirror) { // logprobs of kept tokens are still in the mirror unless missing
        const float *lp = e2h_seq_logprobs(*mirror);
        for (int32_t t = first > 1 ? first : 1; t < cut; t++)
            if (isnan(lp[t])) { cut = t; break; }
    }
    if (cut >= end && *mirror) return E2H_OK;
    if (cut < 1 && *mirror) {
        e2h_seq_release(pe, *mirror);
        *mirror = NULL;
    }
    e2h_status st;
    if (!*mirror) {
        // created with every token before the first one that needs a capture / log-prob, so
        // the prefix index can hand back the cached blocks of an earlier mirror (same problem)
        int32_t k = job_create_len(p, j);
        if ((st = e2h_seq_create(pe, j->b.ids, k, NULL, mirror))) return st;
        // hidden-state and tag-logit protocols read captures only; implicit's next append takes
        // its first log-prob from the last token's logits
        if (!implicit) eng_seq_set_no_logits(*mirror);
        cut = k;
    } else if (cut < e2h_seq_len(*mirror)) {
        if ((st = e2h_seq_truncate(pe, *mirror, cut))) return st;
    }
    int32_t n_new = end - cut;
    int32_t *cap = malloc((size_t)(j->b.n_steps + 1) * sizeof *cap);
    if (!cap) return E2H_ERR_NOMEM;
    e2h_append_opts o = e2h_append_opts_default();
    o.logprobs = implicit;
    o.n_capture = 0;
    if (!implicit)
        for (int k = 0; k < j->b.n_steps; k++) {
            int32_t r = j->b.read[k];
            if (r >= cut && r < end && (o.n_capture == 0 || cap[o.n_capture - 1] < r - cut))
                cap[o.n_capture++] = r - cut;
        }
    o.capture = cap;
    st = e2h_seq_append_ex(pe, *mirror, j->b.ids + cut, n_new, &o);
    free(cap);
    return st;
}

// Syncs PRM work and counts the tokens the passes computed (e2h_engine_prm_tokens).
static e2h_status prm_sync(struct prm_rt *rt, e2h_engine *en, e2h_seq *const *m, int n) {
    e2h_kv_stats a, b;
    e2h_engine_get_kv_stats(en, &a);
    e2h_status st = e2h_engine_sync(en, m, n);
    e2h_engine_get_kv_stats(en, &b);
    rt->tokens += b.forward_tokens - a.forward_tokens;
    return st;
}

// Sibling mirrors share their common prefix. Mirrors created in one scoring round (policy
// sequences scored for the first time, e.g. 16 branches of one problem) would each compute the
// problem: none of them is in the prefix index while the pass is built. So new mirrors whose
// creation prefixes (job_create_len) start with the same >= PRM_SHARE_MIN tokens are grouped;
// each group's common prefix is created once as a temporary sequence, all groups are computed
// in one pass, and each member's mirror is a fork of it (blocks shared, the partial last one
// copied on write), so job_append then adds only the member's own tokens.
#define PRM_SHARE_MIN 8
static e2h_status share_new_mirrors(struct prm_rt *rt, int pe, prm_job *jobs, int n) {
    const e2h_prm *p = rt->prm;
    e2h_engine *en = rt->pe[pe];
    int32_t *klen = calloc((size_t)n, sizeof *klen), *grp = malloc((size_t)n * sizeof *grp);
    int32_t *glen = malloc((size_t)n * sizeof *glen), *lead = malloc((size_t)n * sizeof *lead);
    e2h_seq **pre = calloc((size_t)n, sizeof *pre), **kids = calloc((size_t)n, sizeof *kids);
    e2h_status st = E2H_OK;
    if (!klen || !grp || !glen || !lead || !pre || !kids) st = E2H_ERR_NOMEM;
    int ng = 0;
    for (int i = 0; i < n && !st; i++) {
        prm_job *j = &jobs[i];
        grp[i] = -1;
        if (j->q && j->q->n_steps > j->first_new && !j->q->mirror[pe]) klen[i] = job_create_len(p, j);
    }
    for (int i = 0; i < n && !st; i++) {
        if (klen[i] < PRM_SHARE_MIN || grp[i] >= 0) continue;
        int32_t L = klen[i];
        int members = 1;
        for (int c = i + 1; c < n; c++) {
            if (klen[c] < PRM_SHARE_MIN || grp[c] >= 0) continue;
            int32_t lim = klen[c] < klen[i] ? klen[c] : klen[i], l = 0;
            while (l < lim && jobs[c].b.ids[l] == jobs[i].b.ids[l]) l++;
            if (l < PRM_SHARE_MIN) continue;
            grp[c] = ng;
            if (l < L) L = l;
            members++;
        }
        if (members < 2) continue;
        grp[i] = ng;
        glen[ng] = L;
        lead[ng++] = i;
    }
    for (int g = 0; g < ng && !st; g++)
        if (!(st = e2h_seq_create(en, jobs[lead[g]].b.ids, glen[g], NULL, &pre[g])) &&
            p->proto->read != PRM_READ_IMPLICIT)
            eng_seq_set_no_logits(pre[g]); // its forks (the mirrors) inherit it (see job_append)
    if (!st && ng) st = prm_sync(rt, en, pre, ng);
    for (int g = 0; g < ng && !st; g++) {
        int m = 0;
        for (int i = 0; i < n; i++) m += grp[i] == g;
        if ((st = e2h_seq_fork(en, pre[g], m, kids))) break;
        m = 0;
        for (int i = 0; i < n; i++)
            if (grp[i] == g) jobs[i].q->mirror[pe] = kids[m++];
    }
    for (int g = 0; g < ng; g++)
        if (pre[g]) e2h_seq_release(en, pre[g]);
    free(klen);
    free(grp);
    free(glen);
    free(lead);
    free(pre);
    free(kids);
    return st;
}

// Reads the scores of steps >= first_new from the synced mirrors.
static e2h_status job_read(e2h_engine *e, struct prm_rt *rt, prm_job *j, e2h_seq *const *m,
                           float *out) {
    const e2h_prm *p = rt->prm;
    for (int k = j->first_new; k < j->b.n_steps; k++) {
        float sc = NAN;
        if (p->proto->read == PRM_READ_IMPLICIT) {
            const float *a = e2h_seq_logprobs(m[0]), *b = e2h_seq_logprobs(m[1]);
            double sum = 0;
            for (int32_t t = j->b.span0[k]; t < j->b.span1[k]; t++) sum += (double)a[t] - b[t];
            sc = (float)(p->beta * sum);
        } else if (j->b.read[k] >= 0) {
            const float *h = e2h_seq_hidden_at(m[0], j->b.read[k]);
            if (!h) return PRM_ERR(e, E2H_ERR_INVALID_ARG, "internal: PRM read at %d not captured",
                                   j->b.read[k]);
            sc = prm_read_hidden(p, h, 0, NULL); // (a PRM model's head reads no policy layer)
        }
        out[k] = sc;
    }
    return E2H_OK;
}

// ---------------------------------------------------------------- policy text -> steps

static const e2h_tokenizer *policy_tok(const e2h_engine *e) {
    return e2h_model_tokenizer(e2h_engine_model(e));
}

// The policy's generated text (after the prompt, without trailing EOS tokens).
static e2h_status policy_text(e2h_engine *e, e2h_seq *s, char **out, size_t *len, int32_t *n_gen) {
    const int32_t *t = e2h_seq_tokens(s);
    int32_t a = e2h_seq_n_prompt(s), b = e2h_seq_len(s);
    if (a > b) a = b;
    while (b > a && eng_is_eos(e, t[b - 1])) b--;
    *n_gen = b - a;
    size_t need = 0;
    e2h_status st = e2h_detokenize(policy_tok(e), t + a, b - a, NULL, 0, &need);
    if (st) return st;
    char *buf = malloc(need + 1);
    if (!buf) return E2H_ERR_NOMEM;
    if ((st = e2h_detokenize(policy_tok(e), t + a, b - a, buf, need + 1, &need))) {
        free(buf);
        return st;
    }
    *out = buf;
    *len = need;
    return E2H_OK;
}

// Adds the steps of the policy text after the scored ones to q (their token ends too).
// Returns the number of new steps (0: nothing new), or -1 on error.
static int add_new_steps(e2h_engine *e, const e2h_prm *p, e2h_seq *s, struct prm_seq *q,
                         const char *text, size_t len, int is_final) {
    // a final round re-scores the last step if it was scored as not final
    if (is_final && !q->final_done && q->n_steps > 0) q->n_steps--;
    size_t from = q->n_steps ? q->end[q->n_steps - 1] : 0;
    if (from > len) from = len;
    int cap = 64;
    size_t st0[64], sl[64];
    int n = e2h_prm_split_solution(p, text + from, len - from, st0, sl, cap);
    if (n > cap) n = cap; // (64 new steps in one round: the rest next round)
    if (n == 0) return 0;
    if (pseq_grow(q, q->n_steps + n)) return -1;
    const char *d = e2h_prm_step_delimiter(p);
    size_t dl = strlen(d);
    // token ends: map each step's consumed end to the policy token that completes it
    size_t *marks = malloc((size_t)n * sizeof *marks);
    int32_t *tk = malloc((size_t)n * sizeof *tk);
    if (!marks || !tk) { free(marks); free(tk); return -1; }
    for (int i = 0; i < n; i++) {
        size_t s0 = from + st0[i], e0 = s0 + sl[i];
        size_t end = e0 + dl <= len && !memcmp(text + e0, d, dl) ? e0 + dl : e0;
        q->s0[q->n_steps + i] = s0;
        q->len[q->n_steps + i] = sl[i];
        q->end[q->n_steps + i] = end;
        marks[i] = end ? end - 1 : 0;
    }
    int32_t a = e2h_seq_n_prompt(s);
    if (prm_map_offsets(policy_tok(e), e2h_seq_tokens(s) + a, e2h_seq_len(s) - a, marks, n, tk))
        for (int i = 0; i < n; i++) tk[i] = e2h_seq_len(s) - a - 1; // cannot map: the last token
    for (int i = 0; i < n; i++) q->end_tok[q->n_steps + i] = a + tk[i] + 1;
    free(marks);
    free(tk);
    q->n_steps += n;
    return n;
}

// ---------------------------------------------------------------- head protocol

// Hidden state at policy position pos into h (dim) and, for a head that reads a policy layer,
// that layer's residual stream into h + dim (dim): captured, the last token's, or recomputed
// through a temporary fork truncated after pos (one token's forward pass).
static e2h_status head_hidden(e2h_engine *e, e2h_seq *s, int32_t pos, float *h, int dim, int layer) {
    int last = pos == e2h_seq_len(s) - 1;
    const float *x = last ? e2h_seq_hidden(s) : e2h_seq_hidden_at(s, pos);
    const float *xl = last ? e2h_seq_hidden_layer(s) : e2h_seq_hidden_layer_at(s, pos);
    e2h_seq *c = NULL;
    e2h_status st = E2H_OK;
    if (!x) { // not kept: recompute it
        st = e2h_seq_fork(e, s, 1, &c);
        if (!st) st = e2h_seq_truncate(e, c, pos + 1);
        if (!st) st = e2h_engine_sync(e, &c, 1);
        if (!st) x = e2h_seq_hidden(c), xl = e2h_seq_hidden_layer(c);
        if (!st && !x) st = PRM_ERR(e, E2H_ERR_INVALID_ARG, "internal: no hidden state after sync");
    }
    if (!st && layer && !xl) // (attach checks the engine's feature_layer)
        st = PRM_ERR(e, E2H_ERR_INVALID_ARG, "head: the engine keeps no feature layer (the head "
                     "reads layer %d)", layer);
    if (!st) {
        memcpy(h, x, (size_t)dim * sizeof *h);
        if (layer) memcpy(h + dim, xl, (size_t)dim * sizeof *h);
    }
    if (c) e2h_seq_release(e, c);
    return st;
}

static float mean_logprob(const e2h_seq *s, int32_t a, int32_t b) {
    const float *lp = e2h_seq_logprobs(s);
    double sum = 0;
    int n = 0;
    for (int32_t t = a; t < b; t++)
        if (!isnan(lp[t])) sum += lp[t], n++;
    return n ? (float)(sum / n) : 0.0f;
}

static e2h_status score_head(e2h_engine *e, struct prm_rt *rt, e2h_seq *const *seqs, int n,
                             int is_final, float *scores) {
    const e2h_prm *p = rt->prm;
    e2h_status st = e2h_engine_sync(e, seqs, n);
    if (st) return st;
    float *h = malloc((size_t)p->dim * 2 * sizeof *h); // (dim) hidden, (dim) feature layer
    if (!h) return E2H_ERR_NOMEM;
    for (int i = 0; i < n && !st; i++) {
        e2h_seq *s = seqs[i];
        struct prm_seq *q = pseq_get(s, 1);
        if (!q) { st = E2H_ERR_NOMEM; break; }
        char *text = NULL;
        size_t len = 0;
        int32_t n_gen;
        if ((st = policy_text(e, s, &text, &len, &n_gen))) break;
        int first = q->n_steps - (is_final && !q->final_done && q->n_steps > 0);
        int added = add_new_steps(e, p, s, q, text, len, is_final);
        free(text);
        if (added < 0) { st = E2H_ERR_NOMEM; break; }
        for (int k = first; k < q->n_steps && !st; k++) {
            int32_t a = k ? q->end_tok[k - 1] : e2h_seq_n_prompt(s), pos = q->end_tok[k] - 1;
            if ((st = head_hidden(e, s, pos, h, p->dim, p->feature_layer))) {
                // (KV_FULL in the temporary fork) forget the unscored steps so the next call
                // scores them, instead of counting steps whose scores were never written
                q->n_steps = k;
                break;
            }
            float mlp = p->head_mean_logprob ? mean_logprob(s, a, pos + 1) : 0;
            q->scores[k] = prm_read_hidden(p, h, mlp, p->feature_layer ? h + p->dim : NULL);
        }
        if (st) break;
        if (is_final) q->final_done = 1;
        scores[i] = q->n_steps ? q->scores[q->n_steps - 1] : NAN;
    }
    free(h);
    return st;
}

// ---------------------------------------------------------------- model protocols

e2h_status e2h_prm_score_new_steps(e2h_engine *e, e2h_seq *const *seqs, int n, int is_final,
                                   float *scores) {
    if (!e || !seqs || n < 1 || !scores) return E2H_ERR_INVALID_ARG;
    struct prm_rt *rt = eng_prm_rt(e);
    if (!rt) return PRM_ERR(e, E2H_ERR_INVALID_ARG, "score: no PRM attached (e2h_engine_attach_prm)");
    if (!policy_tok(e)) return PRM_ERR(e, E2H_ERR_TOKENIZER, "score: the policy has no tokenizer");
    if (!rt->prm->proto->needs_model) return score_head(e, rt, seqs, n, is_final, scores);
    const e2h_prm *p = rt->prm;
    prm_job *jobs = calloc((size_t)n, sizeof *jobs);
    e2h_seq **mir = malloc((size_t)n * 2 * sizeof *mir);
    if (!jobs || !mir) { free(jobs); free(mir); return E2H_ERR_NOMEM; }
    e2h_status st = E2H_OK;
    for (int i = 0; i < n && !st; i++) {
        prm_job *j = &jobs[i];
        e2h_seq *s = seqs[i];
        struct prm_seq *q = eng_seq_prm(s);
        if (!q || !q->problem) {
            st = PRM_ERR(e, E2H_ERR_INVALID_ARG, "score: sequence %d has no problem text "
                         "(e2h_seq_set_problem on its root)", i);
            break;
        }
        j->s = s;
        j->q = q;
        int32_t n_gen;
        if ((st = policy_text(e, s, &j->ptext, &j->ptext_len, &n_gen))) break;
        int before = q->n_steps - (is_final && !q->final_done && q->n_steps > 0);
        int added = add_new_steps(e, p, s, q, j->ptext, j->ptext_len, is_final);
        if (added < 0) { st = E2H_ERR_NOMEM; break; }
        j->first_new = before;
        if (q->n_steps == before) continue; // nothing new: no work
        const char **tx = malloc((size_t)q->n_steps * sizeof *tx);
        if (!tx) { st = E2H_ERR_NOMEM; break; }
        for (int k = 0; k < q->n_steps; k++) tx[k] = j->ptext + q->s0[k];
        prm_steps steps = {tx, q->len, q->n_steps};
        st = job_layout(e, p, j, q->problem->text, &steps, is_final);
        free(tx);
        if (st) {
            q->n_steps = before; // leave the sequence as it was scored
            break;
        }
    }
    // append every mirror's new tokens, then one sync per PRM engine for all of them
    for (int pe = 0; pe < rt->n_pe && !st; pe++) {
        int m = 0;
        st = share_new_mirrors(rt, pe, jobs, n);
        if (st && rt->pe[pe] != e) (void)PRM_ERR(e, st, "PRM: %s", e2h_engine_last_error(rt->pe[pe]));
        for (int i = 0; i < n && !st; i++) {
            prm_job *j = &jobs[i];
            if (!j->q || j->q->n_steps == j->first_new) continue;
            st = job_append(rt->pe[pe], rt, j, &j->q->mirror[pe]);
            if (!st && j->q->mirror[pe]) mir[m++] = j->q->mirror[pe];
        }
        if (!st && m) {
            st = prm_sync(rt, rt->pe[pe], mir, m);
            if (st && rt->pe[pe] != e)
                (void)PRM_ERR(e, st, "PRM: %s", e2h_engine_last_error(rt->pe[pe]));
        }
    }
    for (int i = 0; i < n; i++) {
        prm_job *j = &jobs[i];
        if (!st && j->q && j->q->n_steps > j->first_new) {
            st = job_read(e, rt, j, j->q->mirror, j->q->scores);
            if (is_final) j->q->final_done = 1;
        }
        if (!st) scores[i] = j->q && j->q->n_steps ? j->q->scores[j->q->n_steps - 1] : NAN;
        if (st && j->q) j->q->n_steps = j->first_new;
        job_free(j);
    }
    free(jobs);
    free(mir);
    return st;
}

// ---------------------------------------------------------------- given texts

e2h_status e2h_prm_score_texts(e2h_engine *e, const char *problem, const char *const *steps,
                               int n_steps, float *step_scores) {
    if (!e || !problem || (!steps && n_steps) || n_steps < 0 || (!step_scores && n_steps))
        return E2H_ERR_INVALID_ARG;
    struct prm_rt *rt = eng_prm_rt(e);
    if (!rt) return PRM_ERR(e, E2H_ERR_INVALID_ARG, "score: no PRM attached (e2h_engine_attach_prm)");
    if (n_steps == 0) return PRM_ERR(e, E2H_ERR_INVALID_ARG, "score: no steps");
    const e2h_prm *p = rt->prm;
    size_t *lens = malloc((size_t)n_steps * sizeof *lens);
    if (!lens) return E2H_ERR_NOMEM;
    for (int k = 0; k < n_steps; k++) lens[k] = steps[k] ? strlen(steps[k]) : 0;
    prm_steps ps = {steps, lens, n_steps};
    prm_job j;
    memset(&j, 0, sizeof j);
    e2h_status st = job_layout(e, p, &j, problem, &ps, 1);
    int n_eng = p->proto->needs_model ? rt->n_pe : 1;
    e2h_seq *m[2] = {NULL, NULL};
    for (int pe = 0; pe < n_eng && !st; pe++) {
        e2h_engine *en = p->proto->needs_model ? rt->pe[pe] : e;
        int32_t need = job_need_end(p, &j) + 1;
        eng_shape sh; // (the engine's max_ctx is at most its model's)
        eng_get_shape(en, &sh);
        if (need > sh.max_ctx) {
            st = PRM_ERR(e, E2H_ERR_CONTEXT, "the solution is %d PRM tokens, longer than the PRM's "
                         "context of %d", need, sh.max_ctx);
            break;
        }
        if (p->proto->needs_model) {
            st = job_append(en, rt, &j, &m[pe]);
        } else { // head: the policy's own forward, with log-probs for the mean feature
            st = e2h_seq_create(en, j.b.ids, 1, NULL, &m[pe]);
            if (!st) {
                e2h_append_opts o = e2h_append_opts_default();
                int32_t *cap = malloc((size_t)n_steps * sizeof *cap);
                if (!cap) { st = E2H_ERR_NOMEM; break; }
                o.n_capture = 0;
                for (int k = 0; k < n_steps; k++)
                    if (j.b.read[k] >= 1 && (!o.n_capture || cap[o.n_capture - 1] < j.b.read[k] - 1))
                        cap[o.n_capture++] = j.b.read[k] - 1;
                o.capture = cap;
                st = e2h_seq_append_ex(en, m[pe], j.b.ids + 1, need - 1, &o);
                free(cap);
            }
        }
        if (!st) st = prm_sync(rt, en, &m[pe], 1);
        if (st && en != e) (void)PRM_ERR(e, st, "PRM: %s", e2h_engine_last_error(en));
    }
    if (!st && p->proto->needs_model) {
        st = job_read(e, rt, &j, m, step_scores);
    } else if (!st) {
        for (int k = 0; k < n_steps; k++) {
            const float *h = e2h_seq_hidden_at(m[0], j.b.read[k]);
            const float *hl = e2h_seq_hidden_layer_at(m[0], j.b.read[k]); // NULL: no layer kept
            float mlp = p->head_mean_logprob ? mean_logprob(m[0], j.b.span0[k], j.b.span1[k]) : 0;
            step_scores[k] = h ? prm_read_hidden(p, h, mlp, hl) : NAN;
        }
    }
    for (int pe = 0; pe < 2; pe++)
        if (m[pe]) e2h_seq_release(p->proto->needs_model ? rt->pe[pe] : e, m[pe]);
    job_free(&j);
    free(lens);
    return st;
}

e2h_engine *prm_engine_of(const e2h_engine *e, int j) {
    const struct prm_rt *rt = e ? eng_prm_rt(e) : NULL;
    return rt && j >= 0 && j < rt->n_pe ? rt->pe[j] : NULL;
}
