// engine/search/search.c — the public search entry point (e2h_search_run) and the tree
// operations every method shares: fork a node, extend to the step delimiter, score the new
// steps, copy finished paths out, release pruned branches.
//
// Defaults follow the methods' sources: search-and-learn (Beeching, Tunstall, Rush, "Scaling
// test-time compute with open models", Hugging Face 2024; src/sal/config.py: n 4,
// temperature 0.8, top_p 1.0, max_tokens 2048, beam_width 4, num_iterations 40, agg "last"),
// the e2h paper (Sun et al. 2024: best-of-N by the min step score, weighted voting by the
// product) and REBASE (Wu et al. 2024, "Inference Scaling Laws", balance temperature 0.1).
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../sched.h"
#include "../util.h"
#include "search.h"

e2h_status srch_err(srch_ctx *c, e2h_status st, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return eng_set_error(c->e, st, "%s", msg);
}

e2h_status srch_tmp_reserve(srch_ctx *c, int n) {
    if (n <= c->tmp_cap) return E2H_OK;
    e2h_seq **t = realloc(c->tmp, (size_t)n * sizeof *t);
    if (t) c->tmp = t;
    srch_node **tn = realloc(c->tmpn, (size_t)n * sizeof *tn);
    if (tn) c->tmpn = tn;
    float *ts = realloc(c->tmps, (size_t)n * sizeof *ts);
    if (ts) c->tmps = ts;
    if (!t || !tn || !ts) return srch_err(c, E2H_ERR_NOMEM, "search: out of memory");
    c->tmp_cap = n;
    return E2H_OK;
}

static e2h_status srch_node_grow(srch_ctx *c, srch_node *n, int32_t need) {
    if (need <= n->cap_steps) return E2H_OK;
    int32_t cap = n->cap_steps ? n->cap_steps * 2 : 8;
    while (cap < need) cap *= 2;
    int32_t *se = realloc(n->step_end, (size_t)cap * sizeof *se);
    if (se) n->step_end = se;
    float *sc = realloc(n->score, (size_t)cap * sizeof *sc);
    if (sc) n->score = sc;
    if (!se || !sc) return srch_err(c, E2H_ERR_NOMEM, "search: out of memory");
    n->cap_steps = cap;
    return E2H_OK;
}

e2h_status srch_root(srch_ctx *c, const int32_t *prompt, int32_t n, const e2h_sampling *sp,
                     srch_node *root) {
    memset(root, 0, sizeof *root);
    e2h_status st = e2h_seq_create(c->e, prompt, n, sp, &root->seq);
    if (st) return st;
    c->policy_tokens += n;
    return E2H_OK;
}

void srch_node_free(srch_ctx *c, srch_node *n) {
    if (n->seq) e2h_seq_release(c->e, n->seq);
    free(n->step_end);
    free(n->score);
    memset(n, 0, sizeof *n);
}

e2h_status srch_fork(srch_ctx *c, srch_node *parent, int k, srch_node *kids) {
    e2h_seq **seqs = malloc((size_t)k * sizeof *seqs);
    if (!seqs) return srch_err(c, E2H_ERR_NOMEM, "search: out of memory");
    memset(kids, 0, (size_t)k * sizeof *kids);
    for (int i = 0; i < k; i++) seqs[i] = NULL;
    e2h_status st = e2h_seq_fork(c->e, parent->seq, k, seqs);
    for (int i = 0; i < k && !st; i++) {
        kids[i].seq = seqs[i];
        kids[i].done = parent->done;
        st = srch_node_grow(c, &kids[i], parent->n_steps > 0 ? parent->n_steps : 1);
        if (st) break;
        kids[i].n_steps = parent->n_steps;
        if (parent->n_steps > 0) { // a root has no step arrays yet (memcpy from NULL is UB)
            memcpy(kids[i].step_end, parent->step_end, (size_t)parent->n_steps * sizeof *parent->step_end);
            memcpy(kids[i].score, parent->score, (size_t)parent->n_steps * sizeof *parent->score);
        }
    }
    if (st) {
        for (int i = 0; i < k; i++) {
            if (!kids[i].seq && seqs[i]) kids[i].seq = seqs[i]; // forked but not yet adopted
            srch_node_free(c, &kids[i]);
        }
    }
    free(seqs);
    return st;
}

// Scores the newest step of nodes[0..n) in one scorer call.
static e2h_status srch_score(srch_ctx *c, srch_node **nodes, int n, int is_final) {
    if (!n || !c->sc.score) return E2H_OK;
    for (int i = 0; i < n; i++) c->tmp[i] = nodes[i]->seq;
    for (int i = 0; i < n; i++) c->tmps[i] = NAN;
    // the PRM tokens of this search alone (other searches of a batch use the same engine)
    const int64_t prm0 = e2h_engine_prm_tokens(c->e);
    e2h_status st = c->sc.score(c->sc.ctx, c->e, c->tmp, n, is_final, c->tmps);
    c->prm_engine_tokens += e2h_engine_prm_tokens(c->e) - prm0;
    if (st) {
        // keep the scorer's message if it left one
        if (!e2h_engine_last_error(c->e)[0])
            srch_err(c, st, "search: the step scorer failed (%s)", e2h_status_name(st));
        return st;
    }
    for (int i = 0; i < n; i++) {
        srch_node *nd = nodes[i];
        float s = c->tmps[i];
        if (!isfinite(s)) // scores are in [0, 1] except an implicit PRM's log-ratio
            return srch_err(c, E2H_ERR_INVALID_ARG, "search: the step scorer returned %g "
                            "for a new step", (double)s);
        nd->score[nd->n_steps - 1] = s;
        int32_t start = nd->n_steps > 1 ? nd->step_end[nd->n_steps - 2] : c->n_prompt;
        c->prm_tokens += nd->step_end[nd->n_steps - 1] - start;
    }
    return E2H_OK;
}

e2h_status srch_expand(srch_ctx *c, srch_node **nodes, int n, int final) {
    e2h_status st = srch_tmp_reserve(c, n);
    if (st) return st;
    int k = 0;
    int32_t rem_max = 0;
    for (int i = 0; i < n; i++) {
        if (nodes[i]->done) continue;
        int32_t gen = e2h_seq_len(nodes[i]->seq) - c->n_prompt;
        int32_t rem = c->o.max_tokens - gen;
        if (rem <= 0) { nodes[i]->done = 1; continue; }
        rem_max = rem > rem_max ? rem : rem_max;
        c->tmp[k] = nodes[i]->seq;
        c->tmpn[k++] = nodes[i];
    }
    if (!k) return E2H_OK;
    int32_t *before = malloc((size_t)k * sizeof *before);
    if (!before) return srch_err(c, E2H_ERR_NOMEM, "search: out of memory");
    for (int i = 0; i < k; i++) before[i] = e2h_seq_len(c->tmp[i]);
    e2h_stop stop;
    memset(&stop, 0, sizeof stop);
    stop.max_tokens = rem_max; // one call for all; a node past its own budget is cut below
    stop.ignore_eos = 0; // stop at EOS (the zero default, spelled out)
    if (!final) {
        stop.stop_strings = c->delim;
        stop.n_stop_strings = 1;
    }
    st = c->gate ? srch_gate_extend(c->gate, c->tmp, k, &stop) : e2h_seq_extend(c->e, c->tmp, k, &stop);
    for (int i = 0; i < k && !st; i++) {
        srch_node *nd = c->tmpn[i];
        int32_t len = e2h_seq_len(nd->seq);
        c->policy_tokens += len - before[i];
        e2h_stop_reason why = e2h_seq_stop_reason(nd->seq);
        if (len - c->n_prompt > c->o.max_tokens) {
            st = e2h_seq_truncate(c->e, nd->seq, c->n_prompt + c->o.max_tokens);
            len = c->n_prompt + c->o.max_tokens;
            why = E2H_STOP_LENGTH;
        }
        if (why != E2H_STOP_STRING) nd->done = 1;
        if (len > before[i] && !st) {
            st = srch_node_grow(c, nd, nd->n_steps + 1);
            if (!st) {
                nd->step_end[nd->n_steps] = len;
                nd->score[nd->n_steps++] = NAN;
            }
        }
        before[i] = len > before[i]; // now: "has a new step"
    }
    // score: unfinished steps, then finished solutions (is_final), one batched call each
    srch_node **lst = st ? NULL : malloc((size_t)k * sizeof *lst);
    if (!st && !lst) st = srch_err(c, E2H_ERR_NOMEM, "search: out of memory");
    for (int pass = 0; pass < 2 && !st; pass++) {
        int m = 0;
        for (int i = 0; i < k; i++)
            if (before[i] && c->tmpn[i]->done == pass) lst[m++] = c->tmpn[i];
        st = srch_score(c, lst, m, pass);
    }
    free(lst);
    free(before);
    return st;
}

float srch_agg(const float *score, int32_t n, e2h_agg a) {
    if (n <= 0) return NAN;
    double v;
    switch (a) {
    case E2H_AGG_MIN:
        v = score[0];
        for (int32_t i = 1; i < n; i++) v = score[i] < v ? score[i] : v;
        break;
    case E2H_AGG_PROD:
        v = 1;
        for (int32_t i = 0; i < n; i++) v *= score[i];
        break;
    case E2H_AGG_MEAN:
        v = 0;
        for (int32_t i = 0; i < n; i++) v += score[i];
        v /= n;
        break;
    default:
        v = score[n - 1];
    }
    return (float)v;
}

void srch_argsort_desc(const float *v, int n, int *idx) {
    for (int i = 0; i < n; i++) idx[i] = i;
    for (int i = 1; i < n; i++) { // insertion sort: stable, n is small
        int x = idx[i], j = i - 1;
        float vx = isnan(v[x]) ? -INFINITY : v[x];
        while (j >= 0 && (isnan(v[idx[j]]) ? -INFINITY : v[idx[j]]) < vx) {
            idx[j + 1] = idx[j];
            j--;
        }
        idx[j + 1] = x;
    }
}

static e2h_status srch_paths_reserve(srch_ctx *c, int more) {
    if (c->n_paths + more <= c->cap_paths) return E2H_OK;
    int cap = c->cap_paths ? c->cap_paths : 16;
    while (cap < c->n_paths + more) cap *= 2;
    srch_path *p = realloc(c->paths, (size_t)cap * sizeof *p);
    if (!p) return srch_err(c, E2H_ERR_NOMEM, "search: out of memory");
    c->paths = p;
    c->cap_paths = cap;
    return E2H_OK;
}

void srch_path_free(srch_path *p) {
    free(p->tokens);
    free(p->step_end);
    free(p->score);
    memset(p, 0, sizeof *p);
}

// Copies a node's path into *p.
static e2h_status srch_snapshot(srch_ctx *c, const srch_node *nd, srch_path *p) {
    memset(p, 0, sizeof *p);
    int32_t len = e2h_seq_len(nd->seq);
    p->n_tokens = len - c->n_prompt;
    p->n_steps = nd->n_steps;
    p->tokens = malloc(((size_t)p->n_tokens + 1) * sizeof *p->tokens);
    p->step_end = malloc(((size_t)p->n_steps + 1) * sizeof *p->step_end);
    p->score = malloc(((size_t)p->n_steps + 1) * sizeof *p->score);
    if (!p->tokens || !p->step_end || !p->score) {
        srch_path_free(p);
        return srch_err(c, E2H_ERR_NOMEM, "search: out of memory");
    }
    memcpy(p->tokens, e2h_seq_tokens(nd->seq) + c->n_prompt, (size_t)p->n_tokens * sizeof *p->tokens);
    for (int32_t i = 0; i < p->n_steps; i++) p->step_end[i] = nd->step_end[i] - c->n_prompt;
    if (p->n_steps > 0) memcpy(p->score, nd->score, (size_t)p->n_steps * sizeof *p->score);
    p->stop = e2h_seq_stop_reason(nd->seq);
    if (nd->done && p->n_tokens >= c->o.max_tokens) p->stop = E2H_STOP_LENGTH;
    return E2H_OK;
}

e2h_status srch_snapshot_node(srch_ctx *c, const srch_node *nd, srch_path *p) {
    return srch_snapshot(c, nd, p);
}

e2h_status srch_push_path(srch_ctx *c, srch_path *p) {
    e2h_status st = srch_paths_reserve(c, 1);
    if (st) return st;
    c->paths[c->n_paths++] = *p;
    memset(p, 0, sizeof *p);
    return E2H_OK;
}

e2h_status srch_round(srch_ctx *c, srch_node **act, int *n_act, int final) {
    e2h_status st = srch_expand(c, act, *n_act, final);
    c->rounds++;
    int m = 0;
    for (int i = 0; i < *n_act && !st; i++) {
        if (!act[i]->done) { act[m++] = act[i]; continue; }
        st = srch_emit(c, act[i]);
        srch_node_free(c, act[i]);
    }
    *n_act = m;
    return st;
}

e2h_status srch_emit(srch_ctx *c, const srch_node *nd) {
    srch_path p;
    e2h_status st = srch_snapshot(c, nd, &p);
    if (!st) st = srch_push_path(c, &p);
    if (st) srch_path_free(&p);
    return st;
}

void srch_report_round(srch_ctx *c, srch_node **kept, int n_kept, int n_generated) {
    if (!c->o.on_round) return;
    if (srch_tmp_reserve(c, n_kept > 0 ? n_kept : 1)) return;
    for (int i = 0; i < n_kept; i++) c->tmp[i] = kept[i]->seq;
    e2h_search_round_info info = {c->rounds, c->tmp, n_kept, c->n_paths, n_generated};
    c->o.on_round(c->o.round_ctx, c->e, &info);
}

e2h_status srch_sample_n(srch_ctx *c, srch_node *root, int n) {
    srch_node *kids = calloc((size_t)n, sizeof *kids);
    srch_node **act = calloc((size_t)n, sizeof *act);
    srch_path *done = calloc((size_t)n, sizeof *done);
    e2h_status st = E2H_OK;
    if (!kids || !act || !done) st = srch_err(c, E2H_ERR_NOMEM, "search: out of memory");
    if (!st) st = srch_fork(c, root, n, kids);
    srch_node_free(c, root); // the children hold the prompt's blocks
    int n_act = 0;
    for (int i = 0; i < n && !st; i++) act[n_act++] = &kids[i];
    while (!st && n_act > 0) {
        st = srch_expand(c, act, n_act, 0);
        c->rounds++;
        int m = 0;
        for (int i = 0; i < n_act && !st; i++) {
            if (!act[i]->done) { act[m++] = act[i]; continue; }
            // finished: copy it out into its slot now and give its blocks back
            st = srch_snapshot(c, act[i], &done[act[i] - kids]);
            srch_node_free(c, act[i]);
        }
        n_act = m;
        if (!st) srch_report_round(c, act, n_act, n_act);
    }
    // samples in generation (fork) order
    for (int i = 0; i < n && !st; i++) st = srch_push_path(c, &done[i]);
    for (int i = 0; done && i < n; i++) srch_path_free(&done[i]);
    for (int i = 0; kids && i < n; i++) srch_node_free(c, &kids[i]);
    free(done);
    free(kids);
    free(act);
    return st;
}

// ------------------------------------------------------------------ public entry point

static const char *const srch_method_names[] = {"greedy", "maj", "bon", "weighted", "beam",
                                                "dvts", "rebase"};
static const char *const srch_agg_names[] = {"min", "prod", "mean", "last"};

const char *e2h_search_method_name(e2h_search_method m) {
    return (unsigned)m < 7 ? srch_method_names[m] : NULL;
}

int e2h_search_method_parse(const char *name, e2h_search_method *out) {
    for (int i = 0; name && i < 7; i++)
        if (!strcmp(name, srch_method_names[i])) { *out = (e2h_search_method)i; return 0; }
    return -1;
}

const char *e2h_agg_name(e2h_agg a) { return (unsigned)a < 4 ? srch_agg_names[a] : NULL; }

int e2h_agg_parse(const char *name, e2h_agg *out) {
    for (int i = 0; name && i < 4; i++)
        if (!strcmp(name, srch_agg_names[i])) { *out = (e2h_agg)i; return 0; }
    return -1;
}

e2h_search_opts e2h_search_opts_default(void) {
    e2h_search_opts o;
    memset(&o, 0, sizeof o);
    o.method = E2H_SEARCH_GREEDY;
    o.n = 4;             // search-and-learn Config.n
    o.m = 4;             // Config.beam_width ("m in the paper")
    o.max_rounds = 40;   // Config.num_iterations
    o.max_tokens = 2048; // Config.max_tokens
    o.step_delimiter = "\n\n";
    o.sampling = e2h_sampling_default();
    o.sampling.temperature = 0.8f; // Config.temperature
    o.sampling.top_p = 1.0f;       // Config.top_p
    o.sampling.seed = 42;          // Config.seed
    o.agg_bon = E2H_AGG_MIN;
    o.agg_weighted = E2H_AGG_PROD;
    o.agg_search = E2H_AGG_LAST;   // Config.agg_strategy
    o.rebase_temperature = 0.1f;
    return o;
}

static int srch_needs_scorer(e2h_search_method m) {
    return m != E2H_SEARCH_GREEDY && m != E2H_SEARCH_MAJ;
}

static e2h_status srch_check_opts(e2h_engine *e, const e2h_search_opts *o) {
    const e2h_status bad = E2H_ERR_INVALID_ARG;
    if (!e2h_search_method_name(o->method))
        return eng_set_error(e, bad, "search: unknown method %d", (int)o->method);
    if (o->n < 1 || o->n > 4096)
        return eng_set_error(e, bad, "search: n = %d outside [1, 4096]", o->n);
    int uses_m = o->method == E2H_SEARCH_BEAM || o->method == E2H_SEARCH_DVTS;
    if (uses_m && (o->m < 1 || o->m > o->n || o->n % o->m))
        return eng_set_error(e, bad, "search: beam width M = %d must divide N = %d (1 <= M <= N)",
                             o->m, o->n);
    if (o->max_rounds < 1 || o->max_rounds > 100000 || o->max_tokens < 1)
        return eng_set_error(e, bad, "search: max_rounds (%d) and max_tokens (%d) must be >= 1",
                             o->max_rounds, (int)o->max_tokens);
    if (!e2h_agg_name(o->agg_bon) || !e2h_agg_name(o->agg_weighted) || !e2h_agg_name(o->agg_search))
        return eng_set_error(e, bad, "search: unknown aggregation");
    if (!(o->rebase_temperature > 0) || !isfinite(o->rebase_temperature))
        return eng_set_error(e, bad, "search: REBASE temperature must be > 0");
    if (srch_needs_scorer(o->method) && !o->score && !e2h_engine_prm(e))
        return eng_set_error(e, bad, "search: method '%s' needs a step scorer (attach a PRM or pass "
                             "opts.score)", e2h_search_method_name(o->method));
    if (!e2h_model_tokenizer(e2h_engine_model(e)))
        return eng_set_error(e, E2H_ERR_TOKENIZER, "search: the policy model has no tokenizer (steps "
                             "end at a text delimiter)");
    return E2H_OK;
}

// Text of ids (malloc'd, NUL-terminated).
static char *srch_detok(const e2h_tokenizer *t, const int32_t *ids, int32_t n) {
    size_t cap = (size_t)n * 8 + 16, len = 0;
    for (;;) {
        char *b = malloc(cap);
        if (!b) return NULL;
        if (e2h_detokenize(t, ids, n, b, cap, &len)) { free(b); return NULL; }
        if (len < cap) return b;
        free(b);
        cap = len + 1;
    }
}

static e2h_status srch_fill_sample(srch_ctx *c, const srch_path *p, e2h_search_sample *s) {
    const e2h_tokenizer *t = e2h_model_tokenizer(e2h_engine_model(c->e));
    memset(s, 0, sizeof *s);
    s->n_tokens = p->n_tokens;
    s->n_steps = p->n_steps;
    s->stop = p->stop;
    // the end-of-sequence token is not part of the solution's text (nor of what the PRM reads)
    int32_t n_text = p->n_tokens - (p->stop == E2H_STOP_EOS && p->n_tokens > 0);
    s->text = srch_detok(t, p->tokens, n_text);
    s->steps = calloc((size_t)p->n_steps + 1, sizeof *s->steps);
    s->step_scores = malloc(((size_t)p->n_steps + 1) * sizeof *s->step_scores);
    if (!s->text || !s->steps || !s->step_scores) return E2H_ERR_NOMEM;
    for (int32_t i = 0; i < p->n_steps; i++) {
        int32_t a = i ? p->step_end[i - 1] : 0, b = p->step_end[i] < n_text ? p->step_end[i] : n_text;
        if (!(s->steps[i] = srch_detok(t, p->tokens + a, b > a ? b - a : 0))) return E2H_ERR_NOMEM;
        s->step_scores[i] = p->score[i];
    }
    for (int a = 0; a < 4; a++) s->agg[a] = srch_agg(p->score, p->n_steps, (e2h_agg)a);
    size_t len = strlen(s->text), cap = len + 1;
    char *ans = malloc(cap), *key = malloc(2 * cap + 64);
    if (!ans || !key) { free(ans); free(key); return E2H_ERR_NOMEM; }
    if (e2h_answer_extract(s->text, len, ans, cap)) {
        s->answer = ans;
        if (e2h_answer_key(ans, strlen(ans), key, 2 * cap + 64)) s->key = key;
        else free(key);
    } else {
        free(ans);
        free(key);
    }
    return E2H_OK;
}

// The attached PRM as the step scorer (PLAN.md §5: the real scorer).
static e2h_status srch_prm_score(void *ctx, e2h_engine *e, e2h_seq *const *seqs, int n, int is_final,
                                 float *scores) {
    (void)ctx;
    return e2h_prm_score_new_steps(e, seqs, n, is_final, scores);
}

static void srch_ctx_free(srch_ctx *c) {
    for (int i = 0; i < c->n_paths; i++) srch_path_free(&c->paths[i]);
    free(c->paths);
    free(c->tmp);
    free(c->tmpn);
    free(c->tmps);
}

e2h_status e2h_search_run(e2h_engine *e, const int32_t *prompt, int32_t n_prompt,
                          const e2h_search_opts *opts, e2h_search_result *out) {
    return srch_run(e, prompt, n_prompt, opts, NULL, out);
}

e2h_status srch_run(e2h_engine *e, const int32_t *prompt, int32_t n_prompt,
                    const e2h_search_opts *opts, srch_gate *gate, e2h_search_result *out) {
    if (!e || !out) return E2H_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    out->selected = -1;
    double t0 = util_time_s();
    srch_ctx c;
    memset(&c, 0, sizeof c);
    c.e = e;
    c.gate = gate;
    c.o = opts ? *opts : e2h_search_opts_default();
    (void)eng_set_error(e, E2H_OK, "%s", ""); // a scorer's message is told from an old one
    e2h_status st = srch_check_opts(e, &c.o);
    if (st) return st;
    if (!prompt || n_prompt < 1) return srch_err(&c, E2H_ERR_INVALID_ARG, "search: empty prompt");
    if (c.o.method == E2H_SEARCH_GREEDY) {
        c.o.sampling.temperature = 0; // one greedy solution
        c.o.n = 1;
    }
    const e2h_prm *prm = e2h_engine_prm(e);
    const char *pd = prm ? e2h_prm_step_delimiter(prm) : NULL;
    c.delim[0] = c.o.step_delimiter && c.o.step_delimiter[0] ? c.o.step_delimiter
                 : pd && pd[0] ? pd : "\n\n";
    c.sc.ctx = c.o.score_ctx;
    c.sc.score = c.o.score;
    if (!c.sc.score && prm) c.sc.score = srch_prm_score;
    c.n_prompt = n_prompt;
    srch_node root;
    st = srch_root(&c, prompt, n_prompt, &c.o.sampling, &root);
    if (st) return st;
    if (prm && c.o.problem) { // the PRM's layout needs the problem; forks inherit it
        st = e2h_seq_set_problem(e, root.seq, c.o.problem);
        if (st) { srch_node_free(&c, &root); srch_ctx_free(&c); return st; }
    }
    switch (c.o.method) {
    case E2H_SEARCH_GREEDY: st = search_greedy(&c, &root); break;
    case E2H_SEARCH_MAJ: st = search_maj(&c, &root); break;
    case E2H_SEARCH_BON: st = search_bon(&c, &root); break;
    case E2H_SEARCH_WEIGHTED: st = search_weighted(&c, &root); break;
    case E2H_SEARCH_BEAM: st = search_beam(&c, &root); break;
    case E2H_SEARCH_DVTS: st = search_dvts(&c, &root); break;
    default: st = search_rebase(&c, &root); break;
    }
    srch_node_free(&c, &root); // no-op when the method released it
    if (!st) {
        out->samples = calloc((size_t)c.n_paths + 1, sizeof *out->samples);
        if (!out->samples) st = srch_err(&c, E2H_ERR_NOMEM, "search: out of memory");
        for (int i = 0; i < c.n_paths && !st; i++) {
            out->n_samples = i + 1;
            if (srch_fill_sample(&c, &c.paths[i], &out->samples[i]))
                st = srch_err(&c, E2H_ERR_NOMEM, "search: out of memory building the result");
        }
    }
    if (!st) {
        switch (c.o.method) {
        case E2H_SEARCH_GREEDY: out->selected = out->n_samples > 0 ? 0 : -1; break;
        case E2H_SEARCH_MAJ: out->selected = search_select_maj(out); break;
        case E2H_SEARCH_BON: out->selected = search_select_agg(out, c.o.agg_bon); break;
        case E2H_SEARCH_WEIGHTED: out->selected = search_select_weighted(out, c.o.agg_weighted); break;
        default: out->selected = search_select_agg(out, c.o.agg_search); break;
        }
        out->policy_tokens = c.policy_tokens;
        // with an attached PRM: the tokens its engine computed (0 for a head on the policy's
        // hidden states); else the policy tokens handed to the scorer
        out->prm_tokens = prm ? c.prm_engine_tokens : c.prm_tokens;
        out->rounds = c.rounds;
        out->seconds = util_time_s() - t0;
    }
    srch_ctx_free(&c);
    if (st) e2h_search_result_free(out);
    return st;
}

void e2h_search_result_free(e2h_search_result *r) {
    if (!r) return;
    for (int i = 0; r->samples && i < r->n_samples; i++) {
        e2h_search_sample *s = &r->samples[i];
        for (int32_t j = 0; s->steps && j < s->n_steps; j++) free(s->steps[j]);
        free(s->steps);
        free(s->step_scores);
        free(s->text);
        free(s->answer);
        free(s->key);
    }
    free(r->samples);
    memset(r, 0, sizeof *r);
    r->selected = -1;
}
