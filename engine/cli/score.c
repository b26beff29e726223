// engine/cli/score.c — `e2h score`: PRM step scores of given solutions (JSONL in, JSONL out).
//
// Input lines: {"problem": ..., "steps": ["...", ...]} or {"problem": ..., "solution": "..."}
// (split on the protocol's step delimiter). Every other field is copied through. Output adds
// "step_scores" (null where a protocol gives a step no score, e.g. ORM's inner steps) and
// "agg": {"min", "prod", "mean", "last"}. Bad lines name the line and field; they stop the run
// (exit 2) unless --skip-bad, which reports them, scores the rest and still exits 2.
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "jsonl.h"

static const char *score_help =
    "usage: e2h score --prm MODEL [--prm-protocol NAME] [--policy MODEL] -i IN.jsonl -o OUT.jsonl\n"
    "                 [--skip-bad] [--prm-ref MODEL] [--beta B] [options]\n\n"
    "PRM step scores of given solutions. Input lines: {\"problem\", \"steps\": [...]} or\n"
    "{\"problem\", \"solution\"} (split on the protocol's step delimiter, \"\\n\\n\"); the output adds\n"
    "\"step_scores\" and \"agg\" {min, prod, mean, last}. Progress and tokens/s on stderr.\n\n"
    "  --prm MODEL         PRM model directory / .gguf, or a head .safetensors for --prm-protocol head\n"
    "  --prm-protocol NAME e2h-paper, e2h-paper-orm, e2h-paper-oprm, math-shepherd, qwen-prm, rlhflow,\n"
    "                      value-head, implicit, head (default: detected from config.json / name)\n"
    "  --policy MODEL      the policy model whose hidden states a head reads (head only)\n"
    "  --prm-ref MODEL     implicit: the reference model\n"
    "  --beta B            implicit: beta (default 0.001)\n"
    "  -i FILE, -o FILE    input and output JSONL ('-' for stdin / stdout)\n"
    "  --skip-bad          report bad lines and score the rest (exit status still 2)\n"
    "  -t N, --kv-mem GIB, --kv-f16, --quant TYPE, --batch N, --kernels K, --no-repack  as for generate\n";

typedef struct {
    cli_model_opts mo;
    const char *prm, *protocol, *policy, *ref, *in, *out;
    double beta;
    int skip_bad;
} score_args;

static int score_parse(score_args *a, int argc, char **argv) {
    cli_model_opts_init(&a->mo);
    for (int i = 1; i < argc; i++) {
        int r = cli_model_opts_parse(&a->mo, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **dst = !strcmp(f, "--prm") ? &a->prm
                         : !strcmp(f, "--prm-protocol") ? &a->protocol
                         : !strcmp(f, "--policy") ? &a->policy
                         : !strcmp(f, "--prm-ref") ? &a->ref
                         : !strcmp(f, "-i") ? &a->in
                         : !strcmp(f, "-o") ? &a->out : NULL;
        if (dst) {
            if (!v) return cli_fail("%s needs a value", f);
            *dst = v;
            i++;
        } else if (!strcmp(f, "--beta")) {
            if (cli_parse_float(f, v, 0, 1e6, &a->beta)) return 2;
            i++;
        } else if (!strcmp(f, "--skip-bad")) {
            a->skip_bad = 1;
        } else if (!strcmp(f, "-h") || !strcmp(f, "--help")) {
            fputs(score_help, stdout);
            return -1;
        } else {
            return cli_fail("score: unknown option '%s' (e2h score --help)", f);
        }
    }
    if (!a->prm) return cli_fail("score: --prm MODEL is required");
    if (!a->in || !a->out) return cli_fail("score: -i IN.jsonl and -o OUT.jsonl are required");
    return 0;
}

static void put_score(FILE *f, float x) {
    if (isfinite(x)) fprintf(f, "%.9g", x);
    else fputs("null", f);
}

#define SCORE_BAD(...) (snprintf(msg, msg_len, __VA_ARGS__), 2)

// Scores one parsed line (jl_score_parse: engine/cli/jsonl.c); writes the output line.
// Returns 0, or 2 with *msg set.
static int score_line(e2h_engine *e, jl_score_row *row, FILE *out, char *msg, size_t msg_len) {
    cJSON *j = row->j;
    const char **steps = row->steps;
    int n = row->n;
    float *sc = malloc((size_t)n * sizeof *sc);
    if (!sc) return SCORE_BAD("out of memory");
    e2h_status s = e2h_prm_score_texts(e, row->problem, steps, n, sc);
    if (s) {
        // the engine's message names the step ("step 3 contains ...") or the length
        snprintf(msg, msg_len, "field '%s': %s (%s)", row->field, e2h_engine_last_error(e),
                 e2h_status_name(s));
        free(sc);
        return 2;
    }
    // the input object (fields copied through) + step_scores + agg
    cJSON_DeleteItemFromObjectCaseSensitive(j, "step_scores");
    cJSON_DeleteItemFromObjectCaseSensitive(j, "agg");
    char *head = cJSON_PrintUnformatted(j);
    if (!head) { free(sc); return SCORE_BAD("out of memory"); }
    size_t hl = strlen(head);
    fwrite(head, 1, hl - 1, out); // without the closing brace
    fputs(hl > 2 ? ",\"step_scores\":[" : "\"step_scores\":[", out);
    int m = 0;
    float *valid = malloc((size_t)n * sizeof *valid);
    for (int k = 0; k < n; k++) {
        if (k) fputc(',', out);
        put_score(out, sc[k]);
        if (valid && isfinite(sc[k])) valid[m++] = sc[k];
    }
    static const char *names[4] = {"min", "prod", "mean", "last"};
    fputs("],\"agg\":{", out);
    for (int a = 0; a < 4; a++) {
        fprintf(out, "%s\"%s\":", a ? "," : "", names[a]);
        put_score(out, valid ? e2h_prm_aggregate(valid, m, (e2h_agg)a) : NAN);
    }
    fputs("}}\n", out);
    free(valid);
    free(head);
    free(sc);
    return 0;
}

static int score_run(score_args *a) {
    char err[1024] = "";
    e2h_load_opts lo = {a->mo.quant, a->mo.no_repack};
    e2h_model *pol = NULL;
    e2h_prm *p = NULL;
    e2h_engine *e = NULL;
    e2h_status st;
    int rc = 0;
    if (a->policy && (st = e2h_model_load(a->policy, &lo, &pol, err, sizeof err)))
        return cli_fail("--policy: %s (%s)", err, e2h_status_name(st));
    e2h_prm_opts po = e2h_prm_opts_default();
    po.protocol = a->protocol;
    po.ref_model = a->ref;
    po.beta = (float)a->beta;
    po.load = lo;
    if ((st = e2h_prm_load(a->prm, pol, &po, &p, err, sizeof err))) {
        e2h_model_free(pol);
        return cli_fail("--prm: %s (%s)", err, e2h_status_name(st));
    }
    e2h_engine_opts eo;
    memset(&eo, 0, sizeof eo);
    eo.n_threads = a->mo.n_threads;
    eo.kv_mem_gib = a->mo.kv_mem_gib;
    eo.kv_f16 = a->mo.kv_f16;
    eo.max_batch_tokens = a->mo.batch;
    eo.kernels = a->mo.kernels;
    eo.feature_layer = e2h_prm_feature_layer(p); // a head that reads a policy layer: keep it
    // a model PRM runs in an engine on its own model (no policy, no second pool); a head on
    // the policy's engine
    const e2h_model *run = e2h_prm_model(p) ? e2h_prm_model(p) : pol;
    if (!run) rc = cli_fail("--prm-protocol head needs --policy MODEL");
    else if ((st = e2h_engine_init(run, &eo, &e, err, sizeof err)))
        rc = cli_fail("%s (%s)", err, e2h_status_name(st));
    else if ((st = e2h_engine_attach_prm(e, p)))
        rc = cli_fail("%s (%s)", e2h_engine_last_error(e), e2h_status_name(st));
    FILE *in = NULL, *out = NULL;
    if (!rc) {
        in = strcmp(a->in, "-") ? fopen(a->in, "rb") : stdin;
        out = strcmp(a->out, "-") ? fopen(a->out, "wb") : stdout;
        if (!in) rc = cli_fail("-i %s: cannot open", a->in);
        else if (!out) rc = cli_fail("-o %s: cannot create", a->out);
    }
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0, n_ok = 0, n_bad = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double last_report = 0;
    ssize_t len;
    while (!rc && (len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        char *s = line;
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
        if (!*s) continue; // blank line
        char msg[1400] = "";
        jl_score_row row;
        int r = jl_score_parse(line, (size_t)len, p, &row, msg, sizeof msg);
        if (!r) r = score_line(e, &row, out, msg, sizeof msg);
        jl_score_row_free(&row);
        if (r) {
            n_bad++;
            fprintf(stderr, "e2h: %s:%ld: %s\n", a->in, lineno, msg);
            if (!a->skip_bad) rc = 2;
            continue;
        }
        n_ok++;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        if (dt - last_report >= 1.0) {
            last_report = dt;
            fprintf(stderr, "score: %ld lines, %lld PRM tokens, %.1f tok/s\n", n_ok,
                    (long long)e2h_engine_prm_tokens(e), (double)e2h_engine_prm_tokens(e) / dt);
        }
    }
    if (e && (n_ok || n_bad)) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        fprintf(stderr, "score: %ld lines scored, %ld bad, %lld PRM tokens in %.2f s (%.1f tok/s)\n",
                n_ok, n_bad, (long long)e2h_engine_prm_tokens(e), dt,
                dt > 0 ? (double)e2h_engine_prm_tokens(e) / dt : 0.0);
    }
    if (!rc && n_bad) rc = 2;
    free(line);
    if (in && in != stdin) fclose(in);
    if (out && out != stdout && fclose(out) && !rc) rc = cli_fail("-o %s: write failed", a->out);
    e2h_engine_free(e);
    e2h_prm_free(p);
    e2h_model_free(pol);
    return rc;
}

int cli_score(int argc, char **argv) {
    score_args a;
    memset(&a, 0, sizeof a);
    int r = score_parse(&a, argc, argv);
    if (r) return r < 0 ? 0 : r;
    return score_run(&a);
}
