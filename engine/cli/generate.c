// engine/cli/generate.c — `e2h generate`: one continuation, or K samples of one prompt drawn
// in parallel through the shared KV cache (--samples K, JSON lines).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char *gen_usage =
    "usage: e2h generate -m MODEL (-p TEXT | -f FILE | --ids 1,2,3) [options]\n"
    "Generates a continuation. Prints the text (or the ids when the model has no tokenizer).\n"
    "  -p TEXT             prompt text (tokenized with the model's tokenizer, BOS added)\n"
    "  -f FILE             read the prompt text from FILE\n"
    "  --ids LIST          prompt as comma-separated token ids (used as given)\n"
    "  --chat              wrap the prompt in the model's ChatML template (<|im_start|>), with\n"
    "                      the template's default system turn when it has one (SmolLM2)\n"
    "  --system TEXT       system message for --chat (\"\" for none)\n"
    "  -n N                max new tokens (default 128)\n"
    "  --temp T            temperature; 0 = greedy (default 0)\n"
    "  --top-k K           keep the K most likely tokens (0 = off)\n"
    "  --top-p P           nucleus sampling (1 = off)\n"
    "  --min-p P           drop tokens below P x p(best) (0 = off)\n"
    "  --seed S            RNG seed (default 1); the same seed gives the same tokens\n"
    "                      whatever the thread count\n"
    "  --stop STR          stop when the continuation contains STR (repeatable; \\n escapes)\n"
    "  --ignore-eos        do not stop at end-of-sequence tokens\n"
    "  --samples K         draw K samples in parallel through the shared cache; prints JSON\n"
    "                      lines {\"sample\", \"text\", \"tokens\", \"logprob\", \"ids\"}\n"
    "  --json              one JSON object with ids, text, logprob, stop reason, timings\n";

typedef struct {
    cli_model_opts mo;
    const char *prompt, *file, *ids, *system;
    int chat, json, samples, ignore_eos;
    long n_new;
    e2h_sampling sp;
    char *stops[16];
    int n_stops;
} gen_args;

// "\\n" -> newline, "\\t" -> tab, "\\\\" -> backslash, in place.
static void gen_unescape(char *s) {
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1]) {
            r++;
            *w++ = *r == 'n' ? '\n' : *r == 't' ? '\t' : *r;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
}

static int gen_parse(gen_args *a, int argc, char **argv) {
    memset(a, 0, sizeof *a);
    cli_model_opts_init(&a->mo);
    a->n_new = 128;
    a->sp = e2h_sampling_default();
    a->samples = 0;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_opts_parse(&a->mo, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x;
        double d;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            printf("%s%s", gen_usage, CLI_MODEL_OPTS_HELP);
            return 1;
        } else if (!strcmp(f, "--json")) { a->json = 1; continue; }
        else if (!strcmp(f, "--chat")) { a->chat = 1; continue; }
        else if (!strcmp(f, "--ignore-eos")) { a->ignore_eos = 1; continue; }
        if (!v) return cli_fail("generate: unknown option or missing value '%s' (see --help)", f);
        if (!strcmp(f, "-p")) a->prompt = v;
        else if (!strcmp(f, "-f")) a->file = v;
        else if (!strcmp(f, "--ids")) a->ids = v;
        else if (!strcmp(f, "--system")) a->system = v;
        else if (!strcmp(f, "-n")) { if (cli_parse_int(f, v, 1, 1 << 24, &a->n_new)) return 2; }
        else if (!strcmp(f, "--temp")) { if (cli_parse_float(f, v, 0, 100, &d)) return 2; a->sp.temperature = (float)d; }
        else if (!strcmp(f, "--top-k")) { if (cli_parse_int(f, v, 0, 1 << 30, &x)) return 2; a->sp.top_k = (int)x; }
        else if (!strcmp(f, "--top-p")) { if (cli_parse_float(f, v, 0, 1, &d)) return 2; a->sp.top_p = (float)d; }
        else if (!strcmp(f, "--min-p")) { if (cli_parse_float(f, v, 0, 1, &d)) return 2; a->sp.min_p = (float)d; }
        else if (!strcmp(f, "--seed")) { if (cli_parse_int(f, v, 0, 0x7fffffffffffffffL, &x)) return 2; a->sp.seed = (uint64_t)x; }
        else if (!strcmp(f, "--samples")) { if (cli_parse_int(f, v, 1, 4096, &x)) return 2; a->samples = (int)x; }
        else if (!strcmp(f, "--stop")) {
            if (a->n_stops == 16) return cli_fail("--stop: at most 16 stop strings");
            a->stops[a->n_stops] = strdup(v);
            gen_unescape(a->stops[a->n_stops++]);
        } else return cli_fail("generate: unknown option '%s' (see e2h generate --help)", f);
        i++;
    }
    if (!!a->prompt + !!a->file + !!a->ids != 1)
        return cli_fail("generate: give exactly one of -p TEXT, -f FILE, --ids LIST");
    return 0;
}

static char *gen_read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    for (size_t r; b && (r = fread(b + n, 1, cap - n - 1, f)) > 0;) {
        n += r;
        if (n + 1 == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) { free(b); b = NULL; }
            else b = nb;
        }
    }
    fclose(f);
    if (b) b[n] = 0;
    return b;
}

// Builds the prompt ids from -p/-f/--ids (optionally in the ChatML template).
static int gen_prompt_ids(const gen_args *a, const e2h_model *m, int32_t **ids, int32_t *n) {
    if (a->ids) return cli_parse_ids(a->ids, ids, n) ? 2 : 0;
    const e2h_tokenizer *t = e2h_model_tokenizer(m);
    if (!t) return cli_fail("generate: this model has no tokenizer; give the prompt with --ids");
    char *text = a->file ? gen_read_text(a->file) : strdup(a->prompt);
    if (!text) return cli_fail("%s: cannot read prompt file", a->file ? a->file : "-p");
    if (a->chat) {
        const char *sys = a->system ? a->system : e2h_model_chat_system(m);
        size_t len = strlen(text) + (sys ? strlen(sys) : 0) + 128;
        char *w = malloc(len);
        if (!w) { free(text); return cli_fail("out of memory"); }
        if (sys && *sys)
            snprintf(w, len, "<|im_start|>system\n%s<|im_end|>\n<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n",
                     sys, text);
        else
            snprintf(w, len, "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", text);
        free(text);
        text = w;
    }
    size_t len = strlen(text);
    int32_t cap = (int32_t)len + 16, need = 0;
    *ids = malloc((size_t)cap * sizeof **ids);
    e2h_status st = *ids ? e2h_tokenize(t, text, len, !a->chat, *ids, cap, &need) : E2H_ERR_NOMEM;
    free(text);
    if (st || need > cap) {
        free(*ids);
        *ids = NULL;
        return cli_fail("generate: tokenizing the prompt failed (%s)", e2h_status_name(st));
    }
    *n = need;
    return 0;
}

static const char *gen_stop_name(e2h_stop_reason r) {
    switch (r) {
    case E2H_STOP_EOS: return "eos";
    case E2H_STOP_STRING: return "stop";
    case E2H_STOP_LENGTH: return "length";
    case E2H_STOP_CONTEXT: return "context";
    default: return "none";
    }
}

static double gen_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// Prints the continuation of s: JSON fields or plain text.
static void gen_print_seq(const e2h_model *m, const e2h_seq *s, int json, int sample_idx,
                          double prefill_s, double decode_s) {
    const e2h_tokenizer *t = e2h_model_tokenizer(m);
    int32_t n0 = e2h_seq_n_prompt(s), n = e2h_seq_len(s) - n0;
    const int32_t *ids = e2h_seq_tokens(s) + n0;
    const float *lp = e2h_seq_logprobs(s) + n0;
    double sum_lp = 0;
    for (int32_t i = 0; i < n; i++) sum_lp += isnan(lp[i]) ? 0 : lp[i];
    size_t cap = 64 + (size_t)n * 64, len = 0;
    char *text = malloc(cap);
    if (text && t) {
        if (e2h_detokenize(t, ids, n, text, cap, &len) || len >= cap) len = 0;
    }
    if (!json) {
        if (t && text) fwrite(text, 1, len, stdout);
        else
            for (int32_t i = 0; i < n; i++) printf("%s%d", i ? "," : "", ids[i]);
        printf("\n");
        free(text);
        return;
    }
    printf("{");
    if (sample_idx >= 0) printf("\"sample\": %d, ", sample_idx);
    printf("\"text\": ");
    if (t && text) cli_json_string(stdout, text, len);
    else printf("null");
    printf(", \"tokens\": %d, \"logprob\": %.6f, \"stop\": \"%s\", \"prompt_tokens\": %d", n, sum_lp,
           gen_stop_name(e2h_seq_stop_reason(s)), n0);
    if (sample_idx < 0)
        printf(", \"prefill_s\": %.6f, \"decode_s\": %.6f, \"decode_tok_s\": %.3f", prefill_s,
               decode_s, decode_s > 0 ? n / decode_s : 0.0);
    printf(", \"ids\": [");
    for (int32_t i = 0; i < n; i++) printf("%s%d", i ? ", " : "", ids[i]);
    printf("]}\n");
    free(text);
}

static int gen_run(const gen_args *a, e2h_model *m, e2h_engine *e) {
    int32_t *ids = NULL, n = 0;
    int rc = gen_prompt_ids(a, m, &ids, &n);
    if (rc) return rc;
    e2h_stop stop = {(int32_t)a->n_new, (const char *const *)a->stops, a->n_stops, !a->ignore_eos};
    e2h_seq *root = NULL, **kids = NULL;
    int k = a->samples > 0 ? a->samples : 0;
    double t0 = gen_now();
    e2h_status st = e2h_seq_create(e, ids, n, &a->sp, &root);
    double t1 = gen_now(), t2 = t1;
    if (!st && k > 0) {
        kids = calloc((size_t)k, sizeof *kids);
        st = kids ? e2h_seq_fork(e, root, k, kids) : E2H_ERR_NOMEM;
        // the children hold references to every prompt block: the root is no longer needed
        // (and KV stats then count the K samples only)
        e2h_seq_release(e, root);
        root = NULL;
        if (!st) st = e2h_seq_extend(e, kids, k, &stop);
        t2 = gen_now();
        if (!st) {
            long total = 0;
            for (int i = 0; i < k; i++) {
                gen_print_seq(m, kids[i], 1, i, 0, 0);
                total += e2h_seq_len(kids[i]) - e2h_seq_n_prompt(kids[i]);
            }
            e2h_kv_stats ks;
            e2h_engine_get_kv_stats(e, &ks);
            fprintf(stderr, "stats: {\"samples\": %d, \"prompt_tokens\": %d, \"generated_tokens\": %ld, "
                    "\"prefill_s\": %.6f, \"decode_s\": %.6f, \"tok_s\": %.3f, \"kv_blocks_used\": %d, "
                    "\"kv_block_bytes\": %zu, \"kv_bytes_used\": %zu, \"kv_bytes_independent\": %zu}\n",
                    k, n, total, t1 - t0, t2 - t1, total / (t2 - t1 > 0 ? t2 - t1 : 1e-9),
                    ks.blocks_used, ks.block_bytes, ks.blocks_used * ks.block_bytes,
                    ks.independent_bytes);
        }
    } else if (!st) {
        st = e2h_seq_extend(e, &root, 1, &stop);
        t2 = gen_now();
        if (!st) gen_print_seq(m, root, a->json, -1, t1 - t0, t2 - t1);
    }
    if (st) rc = cli_fail("%s (%s)", e2h_engine_last_error(e), e2h_status_name(st));
    for (int i = 0; kids && i < k; i++) e2h_seq_release(e, kids[i]);
    free(kids);
    e2h_seq_release(e, root);
    free(ids);
    return rc;
}

int cli_generate(int argc, char **argv) {
    gen_args a;
    int rc = gen_parse(&a, argc, argv);
    if (rc == 0) {
        e2h_model *m;
        e2h_engine *e;
        rc = cli_open(&a.mo, &m, &e);
        if (!rc) {
            rc = gen_run(&a, m, e);
            e2h_engine_free(e);
            e2h_model_free(m);
        }
    } else if (rc == 1) {
        rc = 0;
    }
    for (int i = 0; i < a.n_stops; i++) free(a.stops[i]);
    return rc;
}
