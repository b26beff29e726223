// engine/cli/label.c — `e2h label`: Math-Shepherd-style automatic process labels for the
// easy-to-hard job (stage 2). For each problem of the chosen levels (default 1-3, the easy
// ones), sample S solutions step by step (a step ends at "\n\n"); at each step end record the
// policy's final-normed hidden state of the token that completed the delimiter (the head's
// feature, PLAN.md §4) and the step's mean token log-prob, and fork R rollouts from there
// with the tree API; a step's soft label is the fraction of its rollouts that reach the
// reference answer, its hard label whether any does. The final step is labelled by the
// solution's own answer. Levels 4-5 are refused unless --allow-hard (for the all-levels
// upper line and the hard-step AUC, never for the easy head).
//
// Output: PREFIX.npy  float32 (n_steps, dim + 1): hidden state, then the mean log-prob;
//         PREFIX.jsonl first line {"config": {...}}, then one line per step (row order);
//         with --feature-layer L also PREFIX.layer.npy float32 (n_steps, dim): the residual
//         stream after L blocks at the same token (e2h_seq_hidden_layer; config "feature_layer").
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "job_common.h"

static const char *label_usage =
    "usage: e2h label -m MODEL --problems FILE -o PREFIX [options]\n"
    "Automatic process labels (Math-Shepherd style) from rollouts: writes PREFIX.npy (features:\n"
    "final-normed hidden state at each step end + the step's mean token log-prob) and\n"
    "PREFIX.jsonl (one line per step: problem id, level, text, soft/hard label).\n"
    "  --problems FILE     MATH-schema JSONL (problem, answer, level, unique_id), read as by\n"
    "                      e2h search (no answer: the solution's \\boxed{}; GSM8K too)\n"
    "  -o PREFIX           output prefix\n"
    "  --levels LIST       levels to label (default 1,2,3); 4 or 5 need --allow-hard\n"
    "  --allow-hard        allow levels 4-5 (all-levels head, hard-step AUC only)\n"
    "  --any-level         also take problems without a level (evaluation files without levels)\n"
    "  --limit N           at most N problems (after the level filter; default all)\n"
    "  --skip K            leave out the first K problems (after the level filter): shards of a\n"
    "                      run (--skip K --limit N) give the same rows as the whole run\n"
    "  --solutions S       sampled solutions per problem (default 4)\n"
    "  --rollouts R        rollouts per step boundary (default 8)\n"
    "  --temp T            sampling temperature (default 0.7)\n"
    "  --top-p P           nucleus (default 1 = off)\n"
    "  --step-tokens N     token budget of one step (default 96)\n"
    "  --max-tokens N      token budget of a whole solution or rollout (default 256)\n"
    "  --max-steps N       at most N steps per solution (default 12)\n"
    "  --group G           problems run together through the shared cache (default 4)\n"
    "  --seed S            seed (default 1); the same seed gives the same labels\n"
    "  --system TEXT|@FILE system message (default: the policy template's)\n"
    "  --fewshot FILE      few-shot JSONL {problem, solution} rendered as prior chat turns\n"
    "  --feature-layer L   also write PREFIX.layer.npy: the residual stream after L decoder blocks\n"
    "                      (1..n_layers) at each step end (features for a multi-layer head)\n";

typedef struct {
    const char *problems, *out, *system, *fewshot;
    unsigned levels;
    int allow_hard, any_level, limit, skip, solutions, rollouts, step_tokens, max_tokens, max_steps, group;
    double temp, top_p;
    long seed;
} label_args;

// One step of one sampled solution, and its rollouts.
typedef struct {
    int prob, sol, step, final;
    int32_t start, end;        // token range of the step in the solution
    float mean_lp;
    float *feat;               // (dim) hidden state at the step end [+ (dim) feature layer]
    e2h_seq **roll;            // (R) rollouts forked at the step end (NULL for the final step)
    int hits;                  // rollouts (or, final step, the solution) reaching the answer
    int n_roll;
    char *text;
    char key[256];             // final step: canonical key of the solution's answer
} label_step;

static int label_parse(label_args *a, cli_model_opts *o, int argc, char **argv) {
    memset(a, 0, sizeof *a);
    a->levels = (1u << 1) | (1u << 2) | (1u << 3);
    a->solutions = 4, a->rollouts = 8, a->step_tokens = 96, a->max_tokens = 256;
    a->max_steps = 12, a->group = 4, a->temp = 0.7, a->top_p = 1, a->seed = 1, a->limit = -1;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_opts_parse(o, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            printf("%s%s", label_usage, CLI_MODEL_OPTS_HELP);
            return 1;
        }
        if (!strcmp(f, "--allow-hard")) { a->allow_hard = 1; continue; }
        if (!strcmp(f, "--any-level")) { a->any_level = 1; continue; }
        if (i + 1 >= argc) return cli_fail("label: unknown option or missing value '%s' (see e2h label --help)", f);
        const char *v = argv[++i];
        long l;
        if (!strcmp(f, "--problems")) a->problems = v;
        else if (!strcmp(f, "-o")) a->out = v;
        else if (!strcmp(f, "--system")) a->system = v;
        else if (!strcmp(f, "--fewshot")) a->fewshot = v;
        else if (!strcmp(f, "--levels")) { if (job_parse_levels(f, v, &a->levels)) return 2; }
        else if (!strcmp(f, "--skip")) { if (cli_parse_int(f, v, 0, 1 << 24, &l)) return 2; a->skip = (int)l; }
        else if (!strcmp(f, "--limit")) { if (cli_parse_int(f, v, 0, 1 << 24, &l)) return 2; a->limit = (int)l; }
        else if (!strcmp(f, "--solutions")) { if (cli_parse_int(f, v, 1, 64, &l)) return 2; a->solutions = (int)l; }
        else if (!strcmp(f, "--rollouts")) { if (cli_parse_int(f, v, 0, 64, &l)) return 2; a->rollouts = (int)l; }
        else if (!strcmp(f, "--step-tokens")) { if (cli_parse_int(f, v, 1, 4096, &l)) return 2; a->step_tokens = (int)l; }
        else if (!strcmp(f, "--max-tokens")) { if (cli_parse_int(f, v, 1, 32768, &l)) return 2; a->max_tokens = (int)l; }
        else if (!strcmp(f, "--max-steps")) { if (cli_parse_int(f, v, 1, 256, &l)) return 2; a->max_steps = (int)l; }
        else if (!strcmp(f, "--group")) { if (cli_parse_int(f, v, 1, 256, &l)) return 2; a->group = (int)l; }
        else if (!strcmp(f, "--feature-layer")) { if (cli_parse_int(f, v, 1, 4096, &l)) return 2; o->feature_layer = (int)l; }
        else if (!strcmp(f, "--seed")) { if (cli_parse_int(f, v, 0, 2147483647L, &l)) return 2; a->seed = l; }
        else if (!strcmp(f, "--temp")) { if (cli_parse_float(f, v, 0, 10, &a->temp)) return 2; }
        else if (!strcmp(f, "--top-p")) { if (cli_parse_float(f, v, 0, 1, &a->top_p)) return 2; }
        else return cli_fail("label: unknown option '%s' (see e2h label --help)", f);
    }
    if (!o->model || !a->problems || !a->out) return cli_fail("label: -m, --problems and -o are required");
    if ((a->levels & ((1u << 4) | (1u << 5))) && !a->allow_hard)
        return cli_fail("label: --levels includes 4 or 5 (hard problems); supervision for the easy head "
                        "comes from levels 1-3 only. Pass --allow-hard for the all-levels upper line.");
    return 0;
}

// Computes s's pending tokens so that e2h_seq_hidden is current.
static int label_sync(e2h_engine *e, e2h_seq *s) { return e2h_engine_sync(e, &s, 1) ? -1 : 0; }

// Decoded text of tokens [a, b) of s (malloc'd).
static char *label_text(const e2h_tokenizer *t, const e2h_seq *s, int32_t a, int32_t b) {
    size_t cap = (size_t)(b - a) * 16 + 64, len = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    if (b <= a) { out[0] = 0; return out; }
    if (e2h_detokenize(t, e2h_seq_tokens(s) + a, b - a, out, cap, &len)) { free(out); return NULL; }
    if (len >= cap) {
        free(out);
        cap = len + 1;
        out = malloc(cap);
        if (!out || e2h_detokenize(t, e2h_seq_tokens(s) + a, b - a, out, cap, &len)) { free(out); return NULL; }
    }
    return out;
}

// 1 if the generated text of s (from its prompt end) reaches the reference answer. key
// (optional, cap 256): the canonical key of its final answer ("" when it has none).
static int label_correct(const e2h_tokenizer *t, const e2h_seq *s, const char *ref, char *key) {
    int32_t end = e2h_seq_len(s) - (e2h_seq_stop_reason(s) == E2H_STOP_EOS); // without the EOS text
    char *txt = label_text(t, s, e2h_seq_n_prompt(s), end);
    char ans[256];
    int found = txt && job_answer_extract(txt, strlen(txt), ans, sizeof ans);
    int ok = found && job_answer_equal(ans, ref);
    if (key && (!found || !e2h_answer_key(ans, strlen(ans), key, 256))) key[0] = 0;
    free(txt);
    return ok;
}

static void label_json_config(FILE *f, const label_args *a, const cli_model_opts *o, const char *model_id,
                              int dim) {
    fprintf(f, "{\"config\": {\"command\": \"label\", \"policy\": ");
    cli_json_string(f, o->model, strlen(o->model));
    fprintf(f, ", \"model_id\": \"%s\", \"dim\": %d, \"features\": \"hidden+mean_logprob\", "
               "\"layer\": \"final\", \"feature_layer\": %d, \"pooling\": \"last\", "
               "\"step_delimiter\": \"\\n\\n\", \"problems\": ",
            model_id, dim, o->feature_layer);
    cli_json_string(f, a->problems, strlen(a->problems));
    fprintf(f, ", \"levels\": [");
    for (int l = 1, first = 1; l <= 5; l++)
        if (a->levels & (1u << l)) { fprintf(f, "%s%d", first ? "" : ", ", l); first = 0; }
    fprintf(f, "], \"solutions\": %d, \"rollouts\": %d, \"temperature\": %g, \"top_p\": %g, "
               "\"step_tokens\": %d, \"max_tokens\": %d, \"max_steps\": %d, \"seed\": %ld, \"system\": ",
            a->solutions, a->rollouts, a->temp, a->top_p, a->step_tokens, a->max_tokens, a->max_steps,
            a->seed);
    if (a->system) cli_json_string(f, a->system, strlen(a->system));
    else fprintf(f, "null");
    fprintf(f, ", \"fewshot\": ");
    if (a->fewshot) cli_json_string(f, a->fewshot, strlen(a->fewshot));
    else fprintf(f, "null");
    fprintf(f, "}}\n");
}

typedef struct {
    label_step *v;
    int n, cap;
} label_steps;

static label_step *label_push(label_steps *ss) {
    if (ss->n == ss->cap) {
        int cap = ss->cap ? ss->cap * 2 : 64;
        label_step *nv = realloc(ss->v, (size_t)cap * sizeof *nv);
        if (!nv) return NULL;
        ss->v = nv;
        ss->cap = cap;
    }
    label_step *s = &ss->v[ss->n++];
    memset(s, 0, sizeof *s);
    return s;
}

// Labels one group of problems; appends the steps to the outputs. Returns 0 or 2.
static int label_group(const label_args *a, e2h_engine *e, const e2h_model *m, const job_prompt *jp,
                       const job_problem *const *probs, int np, int dim, FILE *fj, float **feat,
                       float **lfeat, int64_t *n_rows, int64_t *cap_rows, int *n_steps_total) {
    const int fl = lfeat != NULL; // --feature-layer: rows of (dim) in *lfeat too
    const e2h_tokenizer *t = e2h_model_tokenizer(m);
    const int S = a->solutions, R = a->rollouts;
    e2h_seq **sols = calloc((size_t)np * S, sizeof *sols);
    int32_t *step_start = calloc((size_t)np * S, sizeof *step_start);
    int *n_steps = calloc((size_t)np * S, sizeof *n_steps), *done = calloc((size_t)np * S, sizeof *done);
    e2h_seq **active = calloc((size_t)np * S, sizeof *active);
    int *active_ix = calloc((size_t)np * S, sizeof *active_ix);
    label_steps ss = {0};
    int rc = 0;
    if (!sols || !step_start || !n_steps || !done || !active || !active_ix) { rc = cli_fail("out of memory"); goto out; }
    for (int p = 0; p < np && !rc; p++) {
        int32_t *ids, n;
        if ((rc = job_prompt_ids(jp, m, probs[p]->problem, &ids, &n))) break;
        e2h_sampling sp = e2h_sampling_default();
        sp.temperature = (float)a->temp;
        sp.top_p = (float)a->top_p;
        // one seed per problem line: labels do not depend on the group or the other problems
        sp.seed = (uint64_t)a->seed * 1000003ull + (uint64_t)probs[p]->line;
        e2h_seq *root;
        e2h_status st = e2h_seq_create(e, ids, n, &sp, &root);
        free(ids);
        if (!st) {
            st = e2h_seq_fork(e, root, S, sols + p * S);
            e2h_seq_release(e, root);
        }
        if (st) { rc = cli_fail("label: %s: %s", probs[p]->unique_id, e2h_engine_last_error(e)); break; }
        for (int k = 0; k < S; k++) step_start[p * S + k] = e2h_seq_len(sols[p * S + k]);
    }
    const char *delim[] = {"\n\n"};
    for (int round = 0; !rc; round++) {
        int na = 0;
        for (int i = 0; i < np * S; i++)
            if (sols[i] && !done[i]) { active[na] = sols[i]; active_ix[na++] = i; }
        if (!na) break;
        e2h_stop stop = {.max_tokens = a->step_tokens, .stop_strings = delim, .n_stop_strings = 1};
        e2h_status st = e2h_seq_extend(e, active, na, &stop);
        if (st) { rc = cli_fail("label: %s", e2h_engine_last_error(e)); break; }
        for (int j = 0; j < na && !rc; j++) {
            int i = active_ix[j];
            e2h_seq *s = sols[i];
            e2h_stop_reason why = e2h_seq_stop_reason(s);
            int32_t len = e2h_seq_len(s), n_gen = len - e2h_seq_n_prompt(s);
            int last = why != E2H_STOP_STRING || n_steps[i] + 1 >= a->max_steps || n_gen >= a->max_tokens;
            label_step *ls = label_push(&ss);
            if (!ls) { rc = cli_fail("out of memory"); break; }
            ls->prob = i / S, ls->sol = i % S, ls->step = n_steps[i]++, ls->final = last;
            if (last) {
                ls->hits = label_correct(t, s, probs[ls->prob]->answer, ls->key);
                ls->n_roll = 1;
                done[i] = 1;
                // as the head scorer reads a final step: its last token with the end-of-turn
                // token dropped (the hidden state there, the mean log-prob without it)
                if (why == E2H_STOP_EOS && len - 1 > step_start[i]) {
                    len--;
                    if (e2h_seq_truncate(e, s, len) || label_sync(e, s)) {
                        rc = cli_fail("label: %s", e2h_engine_last_error(e));
                        break;
                    }
                }
            }
            ls->start = step_start[i], ls->end = len;
            double lp = 0;
            int n_lp = 0;
            const float *lps = e2h_seq_logprobs(s);
            for (int32_t q = ls->start; q < len; q++)
                if (isfinite(lps[q])) { lp += lps[q]; n_lp++; }
            ls->mean_lp = n_lp ? (float)(lp / n_lp) : 0;
            const float *h = e2h_seq_hidden(s), *hl = e2h_seq_hidden_layer(s);
            ls->feat = malloc((size_t)dim * (1 + fl) * sizeof(float));
            ls->text = label_text(t, s, ls->start, len);
            if (!ls->feat || !ls->text || !h || (fl && !hl)) {
                rc = cli_fail(h && (hl || !fl) ? "out of memory" : "label: no hidden state");
                break;
            }
            memcpy(ls->feat, h, (size_t)dim * sizeof(float));
            if (fl) memcpy(ls->feat + dim, hl, (size_t)dim * sizeof(float));
            step_start[i] = len;
            if (!last && R > 0) {
                ls->roll = calloc((size_t)R, sizeof *ls->roll);
                if (!ls->roll || e2h_seq_fork(e, s, R, ls->roll)) {
                    rc = cli_fail("label: fork failed: %s", e2h_engine_last_error(e));
                    break;
                }
                ls->n_roll = R;
            }
        }
        (void)round;
    }
    // all rollouts of the group in one batched extend to the end of the solution
    int n_roll = 0;
    for (int i = 0; i < ss.n; i++) n_roll += ss.v[i].roll ? ss.v[i].n_roll : 0;
    if (!rc && n_roll) {
        e2h_seq **all = malloc((size_t)n_roll * sizeof *all);
        if (!all) rc = cli_fail("out of memory");
        for (int i = 0, k = 0; all && i < ss.n; i++)
            for (int r = 0; ss.v[i].roll && r < ss.v[i].n_roll; r++) all[k++] = ss.v[i].roll[r];
        // the rollout's budget: what the solution budget leaves after its prefix
        e2h_stop stop = {.max_tokens = a->max_tokens};
        if (all && e2h_seq_extend(e, all, n_roll, &stop))
            rc = cli_fail("label: rollouts: %s", e2h_engine_last_error(e));
        free(all);
        for (int i = 0; !rc && i < ss.n; i++)
            for (int r = 0; ss.v[i].roll && r < ss.v[i].n_roll; r++)
                ss.v[i].hits += label_correct(t, ss.v[i].roll[r], probs[ss.v[i].prob]->answer, NULL);
    }
    for (int i = 0; !rc && i < ss.n; i++) {
        label_step *ls = &ss.v[i];
        const job_problem *pb = probs[ls->prob];
        if (*n_rows == *cap_rows) {
            int64_t cap = *cap_rows ? *cap_rows * 2 : 1024;
            float *nf = realloc(*feat, (size_t)cap * (dim + 1) * sizeof(float));
            if (nf) *feat = nf;
            float *nl = nf && fl ? realloc(*lfeat, (size_t)cap * dim * sizeof(float)) : NULL;
            if (nl) *lfeat = nl;
            if (!nf || (fl && !nl)) { rc = cli_fail("out of memory"); break; }
            *cap_rows = cap;
        }
        float *row = *feat + (size_t)*n_rows * (dim + 1);
        memcpy(row, ls->feat, (size_t)dim * sizeof(float));
        if (fl) memcpy(*lfeat + (size_t)*n_rows * dim, ls->feat + dim, (size_t)dim * sizeof(float));
        row[dim] = ls->mean_lp;
        double soft = ls->n_roll ? (double)ls->hits / ls->n_roll : 0;
        fprintf(fj, "{\"row\": %lld, \"unique_id\": ", (long long)*n_rows);
        cli_json_string(fj, pb->unique_id, strlen(pb->unique_id));
        fprintf(fj, ", \"level\": ");
        if (pb->level) fprintf(fj, "%d", pb->level);
        else fprintf(fj, "null");
        fprintf(fj, ", \"solution\": %d, \"step\": %d, \"final\": %s, \"tokens\": %d, \"mean_logprob\": %.6f, "
                    "\"rollouts\": %d, \"hits\": %d, \"soft\": %.6f, \"hard\": %d, \"text\": ",
                ls->sol, ls->step, ls->final ? "true" : "false", ls->end - ls->start, ls->mean_lp,
                ls->n_roll, ls->hits, soft, ls->hits > 0);
        cli_json_string(fj, ls->text, strlen(ls->text));
        if (ls->final) {
            fprintf(fj, ", \"key\": ");
            if (ls->key[0]) cli_json_string(fj, ls->key, strlen(ls->key));
            else fprintf(fj, "null");
        }
        fprintf(fj, "}\n");
        (*n_rows)++;
        (*n_steps_total)++;
    }
out:
    for (int i = 0; i < ss.n; i++) {
        for (int r = 0; ss.v[i].roll && r < ss.v[i].n_roll; r++)
            if (ss.v[i].roll[r]) e2h_seq_release(e, ss.v[i].roll[r]);
        free(ss.v[i].roll);
        free(ss.v[i].feat);
        free(ss.v[i].text);
    }
    free(ss.v);
    for (int i = 0; sols && i < np * S; i++)
        if (sols[i]) e2h_seq_release(e, sols[i]);
    free(sols);
    free(step_start);
    free(n_steps);
    free(done);
    free(active);
    free(active_ix);
    return rc;
}

int cli_label(int argc, char **argv) {
    cli_model_opts o;
    cli_model_opts_init(&o);
    label_args a;
    int rc = label_parse(&a, &o, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    job_problems ps;
    if (job_read_problems(a.problems, &ps)) return 2;
    if (ps.n_without_level == ps.n)
        fprintf(stderr, "e2h: label: %s has no levels: every problem counts as one level, so nothing in "
                        "it is easy or hard (%s)\n", a.problems,
                a.any_level ? "--any-level: all of them are labelled" : "none labelled without --any-level");
    const job_problem **sel = malloc((size_t)ps.n * sizeof *sel);
    int n_sel = 0, n_hard_skipped = 0, n_skip = 0;
    for (int i = 0; sel && i < ps.n; i++) {
        if (!ps.p[i].level ? !a.any_level : !(a.levels & (1u << ps.p[i].level))) {
            n_hard_skipped += ps.p[i].level >= 4;
            continue;
        }
        if (n_skip < a.skip) { n_skip++; continue; } // seeds follow file lines: shards match
        if (a.limit >= 0 && n_sel >= a.limit) break;
        sel[n_sel++] = &ps.p[i];
    }
    if (n_hard_skipped)
        fprintf(stderr, "e2h: label: %d problem(s) of levels 4-5 left out (easy levels only; "
                        "--allow-hard to label them)\n", n_hard_skipped);
    if (!sel || !n_sel) {
        free(sel);
        job_problems_free(&ps);
        return cli_fail("label: no problem of the chosen levels in %s", a.problems);
    }
    job_prompt jp;
    if (job_prompt_load(&jp, a.system, a.fewshot)) { free(sel); job_problems_free(&ps); return 2; }
    e2h_model *m = NULL;
    e2h_engine *e = NULL;
    if (cli_open(&o, &m, &e)) { job_prompt_free(&jp); free(sel); job_problems_free(&ps); return 2; }
    e2h_model_info mi;
    e2h_model_get_info(m, &mi);
    char model_id[33];
    job_model_id(m, model_id);
    size_t pl = strlen(a.out) + 16;
    char *pj = malloc(pl), *pn = malloc(pl);
    FILE *fj = NULL;
    if (pj && pn) {
        snprintf(pj, pl, "%s.jsonl", a.out);
        snprintf(pn, pl, "%s.npy", a.out);
        fj = fopen(pj, "w");
    }
    float *feat = NULL, *lfeat = NULL;
    int64_t n_rows = 0, cap_rows = 0;
    int n_steps = 0;
    if (!fj) rc = cli_fail("%s.jsonl: cannot write", a.out);
    else label_json_config(fj, &a, &o, model_id, mi.dim);
    for (int g = 0; !rc && g < n_sel; g += a.group) {
        int np = n_sel - g < a.group ? n_sel - g : a.group;
        rc = label_group(&a, e, m, &jp, sel + g, np, mi.dim, fj, &feat, o.feature_layer ? &lfeat : NULL,
                         &n_rows, &cap_rows, &n_steps);
        fflush(fj);
        fprintf(stderr, "label: %d/%d problems, %d steps\n", g + np, n_sel, n_steps);
    }
    if (fj && fclose(fj) && !rc) rc = cli_fail("%s.jsonl: write error", a.out);
    if (!rc && job_write_npy(pn, feat, n_rows, mi.dim + 1)) rc = cli_fail("%s: cannot write", pn);
    if (!rc && o.feature_layer) {
        snprintf(pn, pl, "%s.layer.npy", a.out);
        if (job_write_npy(pn, lfeat, n_rows, mi.dim)) rc = cli_fail("%s: cannot write", pn);
        snprintf(pn, pl, "%s.npy", a.out);
    }
    if (!rc)
        fprintf(stderr, "label: wrote %lld steps of %d problems to %s and %s\n", (long long)n_rows, n_sel, pj, pn);
    free(feat);
    free(lfeat);
    free(pj);
    free(pn);
    e2h_engine_free(e);
    e2h_model_free(m);
    job_prompt_free(&jp);
    free(sel);
    job_problems_free(&ps);
    return rc;
}
