// engine/cli/generate.c — `e2h generate`: continuations of one prompt (-p/-f/--ids) or of every
// line of a JSONL file (-i), K samples each drawn in parallel through the shared KV cache.
// One model load serves the whole file; each prompt's JSON object is written as soon as it
// finishes. The input file is read and checked line by line before the model loads, so a
// malformed line fails at once with its line number and field.
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "jsonl.h"

#define GEN_DEFAULT_SAMPLING_TEMP 0.7f
#define GEN_MAX_STOPS 16

static const char *gen_usage =
    "usage: e2h generate -m MODEL (-p TEXT | -f FILE | --ids 1,2,3 | -i PROMPTS.jsonl) [options]\n"
    "Generates continuations. With one prompt and one sample, prints the text (or the ids\n"
    "when the model has no tokenizer); with --json, --samples K > 1, -i or -o, prints one JSON\n"
    "object per prompt:\n"
    "  {\"index\": 0, \"prompt_tokens\": 12, \"samples\": [{\"text\": \"...\", \"stop\": \"eos\",\n"
    "   \"tokens\": 5, \"logprob\": -1.25, \"ids\": [...]}, ...]}\n"
    "  stop: \"eos\" (end-of-sequence / end-of-turn token), \"stop\" (a --stop string, named in\n"
    "  \"stop_string\"), \"length\" (-n reached), \"context\" (context full). \"text\" leaves out the\n"
    "  end-of-turn token and the stop string (and what follows it) unless --keep-stop; \"ids\",\n"
    "  \"tokens\" and \"logprob\" count every generated token. With -i, the fields of the input\n"
    "  line are copied into its output object (except index, line, prompt_tokens, samples).\n"
    "Statistics go to stderr as one JSON line {\"stats\": {...}} (JSON output, or --stats).\n"
    "\n"
    "  -p TEXT             prompt text (tokenized with the model's tokenizer, BOS added)\n"
    "  -f FILE             read the prompt text from FILE\n"
    "  --ids LIST          prompt as comma-separated token ids (used as given)\n"
    "  -i FILE             JSONL prompts ('-' = stdin), one JSON object per line (blank lines\n"
    "                      skipped), each with exactly one of:\n"
    "                        \"prompt\": TEXT       as -p (in the chat template with --chat)\n"
    "                        \"messages\": [{\"role\": \"system\"|\"user\"|\"assistant\",\n"
    "                                      \"content\": TEXT}, ...]   a chat, in the template\n"
    "                        \"problem\" or \"question\": TEXT   (MATH / GSM8K rows) a chat user\n"
    "                                      turn: TEXT followed by --problem-suffix\n"
    "                        \"ids\": [1, 2, 3]   token ids as given\n"
    "                      and optionally \"seed\": S (default: --seed + the prompt's index)\n"
    "  -o FILE             write the JSON lines to FILE (default stdout)\n"
    "  --chat              wrap -p/-f/\"prompt\" text in the model's ChatML template\n"
    "                      (<|im_start|>), with the template's default system turn when it\n"
    "                      has one (SmolLM2)\n"
    "  --system TEXT       system message for chats without one (\"\" for none)\n"
    "  --problem-suffix S  appended to \"problem\"/\"question\" text (\\n escapes; default\n"
    "                      \"\\nPlease reason step by step, and put your final answer within\n"
    "                      \\boxed{}.\")\n"
    "  -n N                max new tokens per sample (default 128)\n"
    "  --samples K         K samples of each prompt, drawn in parallel through the shared cache\n"
    "                      (sample j's RNG stream is derived from the seed and j)\n"
    "  --temp T            temperature; 0 = greedy. Default 0 for one sample and 0.7 with\n"
    "                      --samples K > 1 (an explicit --temp 0 with K > 1 gives K identical\n"
    "                      greedy samples, with a warning)\n"
    "  --top-k K           keep the K most likely tokens (0 = off)\n"
    "  --top-p P           nucleus sampling (1 = off)\n"
    "  --min-p P           drop tokens below P x p(best) (0 = off)\n"
    "  --seed S            RNG seed (default 1); the same seed gives the same tokens\n"
    "                      whatever the thread count\n"
    "  --stop STR          stop when the continuation contains STR (repeatable, at most 16;\n"
    "                      \\n \\t \\\\ escapes)\n"
    "  --keep-stop         keep the end-of-turn token and the stop string in \"text\"\n"
    "  --ignore-eos        do not stop at end-of-sequence tokens\n"
    "  --logprobs          add \"logprobs\": the log-probability of each generated token\n"
    "                      (\"logprob\" is their sum); both are the model's own distribution\n"
    "                      (temperature 1, before top-k/top-p/min-p)\n"
    "  --json              JSON output for a single prompt and sample too\n"
    "  --stats             the {\"stats\": ...} line on stderr in plain-text mode too\n"
    "  --parallel P        -i: generate P prompts at a time in shared forward passes\n"
    "                      (default 1; P x K sequences share the KV budget, see --kv-mem)\n"
    "  --quiet             no progress line (-i prints one to stderr every 2 s)\n";

typedef struct {
    cli_model_opts mo;
    const char *prompt, *file, *ids, *input, *output, *system;
    char *suffix;
    int chat, json, samples, ignore_eos, keep_stop, logprobs, stats, quiet, temp_given;
    long n_new, parallel;
    e2h_sampling sp;
    char *stops[GEN_MAX_STOPS];
    int n_stops;
} gen_args;

// One prompt: where it came from, its input row (-i) and its ids once tokenized.
typedef struct {
    long line;     // 1-based line of the input file; 0 for -p/-f/--ids
    cJSON *row;    // the parsed input line (-i), NULL otherwise
    const char *kind; // the prompt field of the row: "prompt", "messages", "problem", ...
    int32_t *ids;
    int32_t n;
    uint64_t seed;
} gen_prompt;

// Totals over the run, for the stats line and the progress line.
typedef struct {
    long prompts, samples, prompt_tokens, generated;
    double t_start, prefill_s, decode_s, last_progress;
    e2h_kv_stats kv_peak;
} gen_totals;

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

static void gen_args_free(gen_args *a) {
    for (int i = 0; i < a->n_stops; i++) free(a->stops[i]);
    free(a->suffix);
}

// Flags without a value. Returns 1 if f was one.
static int gen_parse_switch(gen_args *a, const char *f) {
    int *dst = !strcmp(f, "--json") ? &a->json : !strcmp(f, "--chat") ? &a->chat
             : !strcmp(f, "--ignore-eos") ? &a->ignore_eos : !strcmp(f, "--keep-stop") ? &a->keep_stop
             : !strcmp(f, "--logprobs") ? &a->logprobs : !strcmp(f, "--stats") ? &a->stats
             : !strcmp(f, "--quiet") ? &a->quiet : NULL;
    if (dst) *dst = 1;
    return dst != NULL;
}

// Flags with a value v. Returns 0, 2 on a bad value, -1 if f is unknown.
static int gen_parse_valued(gen_args *a, const char *f, const char *v) {
    long x;
    double d;
    if (!strcmp(f, "-p")) a->prompt = v;
    else if (!strcmp(f, "-f")) a->file = v;
    else if (!strcmp(f, "--ids")) a->ids = v;
    else if (!strcmp(f, "-i")) a->input = v;
    else if (!strcmp(f, "-o")) a->output = v;
    else if (!strcmp(f, "--system")) a->system = v;
    else if (!strcmp(f, "-n")) { if (cli_parse_int(f, v, 1, 1 << 24, &a->n_new)) return 2; }
    else if (!strcmp(f, "--temp")) {
        if (cli_parse_float(f, v, 0, 100, &d)) return 2;
        a->sp.temperature = (float)d;
        a->temp_given = 1;
    }
    else if (!strcmp(f, "--top-k")) { if (cli_parse_int(f, v, 0, 1 << 30, &x)) return 2; a->sp.top_k = (int)x; }
    else if (!strcmp(f, "--top-p")) { if (cli_parse_float(f, v, 0, 1, &d)) return 2; a->sp.top_p = (float)d; }
    else if (!strcmp(f, "--min-p")) { if (cli_parse_float(f, v, 0, 1, &d)) return 2; a->sp.min_p = (float)d; }
    else if (!strcmp(f, "--seed")) { if (cli_parse_int(f, v, 0, 0x7fffffffffffffffL, &x)) return 2; a->sp.seed = (uint64_t)x; }
    else if (!strcmp(f, "--samples")) { if (cli_parse_int(f, v, 1, 4096, &x)) return 2; a->samples = (int)x; }
    else if (!strcmp(f, "--parallel")) { if (cli_parse_int(f, v, 1, 4096, &a->parallel)) return 2; }
    else if (!strcmp(f, "--problem-suffix")) {
        free(a->suffix);
        a->suffix = strdup(v);
        if (a->suffix) gen_unescape(a->suffix);
    } else if (!strcmp(f, "--stop")) {
        if (a->n_stops == GEN_MAX_STOPS) { cli_fail("--stop: at most %d stop strings", GEN_MAX_STOPS); return 2; }
        if (!*v) { cli_fail("--stop: empty string"); return 2; }
        a->stops[a->n_stops] = strdup(v);
        gen_unescape(a->stops[a->n_stops++]);
    } else return -1;
    return 0;
}

// Returns 0 to run, 1 after --help, 2 on a usage error (message printed).
static int gen_parse(gen_args *a, int argc, char **argv) {
    memset(a, 0, sizeof *a);
    cli_model_opts_init(&a->mo);
    a->n_new = 128;
    a->parallel = 1;
    a->samples = 1;
    a->sp = e2h_sampling_default();
    a->suffix = strdup("\nPlease reason step by step, and put your final answer within \\boxed{}.");
    for (int i = 1; i < argc; i++) {
        int r = cli_model_opts_parse(&a->mo, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            printf("%s%s", gen_usage, CLI_MODEL_OPTS_HELP);
            return 1;
        }
        if (gen_parse_switch(a, f)) continue;
        r = v ? gen_parse_valued(a, f, v) : -1;
        if (r > 0) return 2;
        if (r < 0) {
            int known = !strcmp(f, "-p") || !strcmp(f, "-f") || !strcmp(f, "--ids") || !strcmp(f, "-i") ||
                        !strcmp(f, "-o") || !strcmp(f, "-n") || !strcmp(f, "--temp") || !strcmp(f, "--samples") ||
                        !strcmp(f, "--stop") || !strcmp(f, "--seed") || !strcmp(f, "--system");
            return known ? cli_fail("generate: %s needs a value", f)
                         : cli_fail("generate: unknown option '%s' (see e2h generate --help)", f);
        }
        i++;
    }
    if (!!a->prompt + !!a->file + !!a->ids + !!a->input != 1)
        return cli_fail("generate: give exactly one of -p TEXT, -f FILE, --ids LIST, -i PROMPTS.jsonl");
    if (!a->suffix) return cli_fail("out of memory");
    if (a->samples > 1 && !a->temp_given) a->sp.temperature = GEN_DEFAULT_SAMPLING_TEMP;
    if (a->samples > 1 && a->sp.temperature == 0)
        fprintf(stderr, "e2h: warning: --temp 0 with --samples %d: every sample is the same greedy "
                        "continuation (leave --temp out for %.1f)\n", a->samples, GEN_DEFAULT_SAMPLING_TEMP);
    return 0;
}

static double gen_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static char *gen_read_text(const char *path) {
    char *b = NULL;
    size_t len;
    return cli_read_text(path, 0, &b, &len) ? NULL : b;
}

// ------------------------------------------------------------------ input rows (-i)

// Rows: jl_gen_parse (engine/cli/jsonl.c, fuzzed by tests/fuzz/fuzz_jsonl.c).

// Reads and checks every line of the JSONL file. Returns 0 or 2.
static int gen_read_rows(const gen_args *a, gen_prompt **out, long *n_out) {
    const char *path = a->input;
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return cli_fail("%s: cannot open the prompts file", path);
    gen_prompt *ps = NULL;
    long n = 0, cap = 0, line = 0;
    char *buf = NULL;
    size_t bcap = 0;
    ssize_t len;
    int rc = 0;
    while (!rc && (len = getline(&buf, &bcap, f)) >= 0) {
        line++;
        size_t l = (size_t)len, s = 0;
        while (l && (buf[l - 1] == '\n' || buf[l - 1] == '\r' || buf[l - 1] == ' ' || buf[l - 1] == '\t')) l--;
        while (s < l && (buf[s] == ' ' || buf[s] == '\t')) s++;
        if (s == l) continue; // blank line
        if (n == cap) {
            gen_prompt *np = realloc(ps, (size_t)(cap = cap ? cap * 2 : 64) * sizeof *np);
            if (!np) { rc = cli_fail("out of memory"); break; }
            ps = np;
        }
        char msg[512];
        jl_gen_row row;
        if (jl_gen_parse(buf, (size_t)len, a->sp.seed, n, &row, msg, sizeof msg)) {
            jl_gen_row_free(&row);
            rc = cli_fail("%s:%ld: %s", path, line, msg);
            break;
        }
        memset(&ps[n], 0, sizeof ps[n]);
        ps[n] = (gen_prompt){.line = line, .row = row.row, .kind = row.kind, .seed = row.seed};
        n++;
    }
    free(buf);
    if (f != stdin) fclose(f);
    if (!rc && n == 0) rc = cli_fail("%s: no prompts (every line is blank)", path);
    if (rc) {
        for (long i = 0; i < n; i++) cJSON_Delete(ps[i].row);
        free(ps);
        return rc;
    }
    *out = ps;
    *n_out = n;
    return 0;
}

// ------------------------------------------------------------------ prompt text -> ids

typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} gen_buf;

static void gen_cat(gen_buf *b, const char *s) {
    size_t l = strlen(s);
    if (b->n + l + 1 > b->cap) {
        size_t nc = (b->n + l + 1) * 2;
        char *ns = realloc(b->s, nc);
        if (!ns) { b->oom = 1; return; }
        b->s = ns;
        b->cap = nc;
    }
    memcpy(b->s + b->n, s, l + 1);
    b->n += l;
}

// ChatML text of a conversation (e2h_model_apply_chat_turns): the given turns, preceded by
// the system message (--system, else the template's default) when the conversation has none,
// and the assistant's header.
static char *gen_chatml(const gen_args *a, const e2h_model *m, const char *const *roles,
                        const char *const *contents, int n) {
    size_t len = 0;
    if (e2h_model_apply_chat_turns(m, a->system, roles, contents, n, NULL, 0, &len)) return NULL;
    char *t = malloc(len + 1);
    if (t && e2h_model_apply_chat_turns(m, a->system, roles, contents, n, t, len + 1, &len)) {
        free(t);
        t = NULL;
    }
    return t;
}

// The prompt text of a row or of -p/-f; *chat is set when it is in the chat template.
static char *gen_row_text(const gen_args *a, const e2h_model *m, const gen_prompt *p, int *chat) {
    const cJSON *v = p->row ? cJSON_GetObjectItemCaseSensitive(p->row, p->kind) : NULL;
    if (p->row && !strcmp(p->kind, "messages")) {
        int n = cJSON_GetArraySize(v), k = 0;
        const char **roles = calloc((size_t)n + 1, sizeof *roles);
        const char **contents = calloc((size_t)n + 1, sizeof *contents);
        const cJSON *it;
        cJSON_ArrayForEach(it, v) {
            if (!roles || !contents) break;
            roles[k] = cJSON_GetObjectItemCaseSensitive(it, "role")->valuestring;
            contents[k++] = cJSON_GetObjectItemCaseSensitive(it, "content")->valuestring;
        }
        char *t = roles && contents ? gen_chatml(a, m, roles, contents, n) : NULL;
        free(roles);
        free(contents);
        *chat = 1;
        return t;
    }
    char *text;
    int problem = p->row && (!strcmp(p->kind, "problem") || !strcmp(p->kind, "question"));
    if (problem) {
        gen_buf b = {0};
        gen_cat(&b, v->valuestring);
        gen_cat(&b, a->suffix);
        text = b.oom ? (free(b.s), NULL) : b.s;
    } else if (p->row) {
        text = strdup(v->valuestring);
    } else {
        text = a->file ? gen_read_text(a->file) : strdup(a->prompt);
    }
    *chat = problem || a->chat;
    if (!text || !*chat) return text;
    const char *role = "user";
    const char *content = text;
    char *t = gen_chatml(a, m, &role, &content, 1);
    free(text);
    return t;
}

// Where a prompt came from, for error messages: "FILE:LINE: FIELD" or the flag.
static void gen_where(const gen_args *a, const gen_prompt *p, char *out, size_t cap) {
    if (p->row) snprintf(out, cap, "%s:%ld: %s", a->input, p->line, p->kind);
    else snprintf(out, cap, "%s", a->ids ? "--ids" : a->file ? a->file : "-p");
}

// Checks the ids against the vocabulary and the context, so that a bad prompt anywhere in a
// file fails before anything is generated. Returns 0 or 2.
static int gen_check_prompt(const gen_args *a, const e2h_model *m, const gen_prompt *p) {
    char where[512];
    gen_where(a, p, where, sizeof where);
    e2h_model_info mi;
    e2h_model_get_info(m, &mi);
    for (int32_t i = 0; i < p->n; i++)
        if (p->ids[i] >= mi.vocab_size)
            return cli_fail("%s: token id %d (position %d) is outside the vocabulary (0..%d)", where,
                            p->ids[i], i, mi.vocab_size - 1);
    if (p->n >= mi.max_ctx)
        return cli_fail("%s: the prompt has %d tokens, the context holds %d (no room to generate)", where,
                        p->n, mi.max_ctx);
    return 0;
}

// Fills p->ids. Returns 0 or 2 (message printed).
static int gen_prompt_ids(const gen_args *a, const e2h_model *m, gen_prompt *p) {
    char where[512];
    gen_where(a, p, where, sizeof where);
    if (!p->row && a->ids) return cli_parse_ids(a->ids, &p->ids, &p->n) ? 2 : 0;
    if (p->row && !strcmp(p->kind, "ids")) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(p->row, "ids"), *x;
        p->n = 0;
        p->ids = malloc((size_t)cJSON_GetArraySize(v) * sizeof *p->ids);
        if (!p->ids) return cli_fail("out of memory");
        cJSON_ArrayForEach(x, v) p->ids[p->n++] = (int32_t)x->valuedouble;
        return 0;
    }
    const e2h_tokenizer *t = e2h_model_tokenizer(m);
    if (!t) return cli_fail("%s: this model has no tokenizer; give the prompt as token ids", where);
    int chat = 0;
    char *text = gen_row_text(a, m, p, &chat);
    if (!text) return cli_fail("%s: cannot read the prompt", where);
    size_t len = strlen(text);
    int32_t need = 0;
    e2h_status st = e2h_tokenize(t, text, len, !chat, NULL, 0, &need);
    p->ids = st ? NULL : malloc(((size_t)need + 1) * sizeof *p->ids);
    if (p->ids) st = e2h_tokenize(t, text, len, !chat, p->ids, need, &p->n);
    free(text);
    if (st || !p->ids) {
        free(p->ids);
        p->ids = NULL;
        return cli_fail("%s: tokenizing the prompt failed (%s)", where, e2h_status_name(st ? st : E2H_ERR_NOMEM));
    }
    if (p->n == 0) return cli_fail("%s: the prompt is empty", where);
    return 0;
}

// ------------------------------------------------------------------ output

static const char *gen_stop_name(e2h_stop_reason r) {
    switch (r) {
    case E2H_STOP_EOS: return "eos";
    case E2H_STOP_STRING: return "stop";
    case E2H_STOP_LENGTH: return "length";
    case E2H_STOP_CONTEXT: return "context";
    default: return "none";
    }
}

static void gen_json_num(FILE *f, double x) {
    if (isfinite(x)) fprintf(f, "%.6g", x);
    else fputs("null", f);
}

// The text of a sample's continuation: without its end-of-turn token and stop string unless
// keep. *stop_str gets the stop string found (stop reason "stop"). Caller frees.
static char *gen_sample_text(const gen_args *a, const e2h_tokenizer *t, const e2h_seq *s,
                             size_t *len, const char **stop_str) {
    int32_t n0 = e2h_seq_n_prompt(s), n = e2h_seq_len(s) - n0;
    e2h_stop_reason why = e2h_seq_stop_reason(s);
    *stop_str = NULL;
    *len = 0;
    if (why == E2H_STOP_EOS && !a->keep_stop && n > 0) n--;
    const int32_t *ids = e2h_seq_tokens(s) + n0;
    size_t need = 0;
    if (e2h_detokenize(t, ids, n, NULL, 0, &need)) return NULL;
    char *text = malloc(need + 1);
    if (!text || e2h_detokenize(t, ids, n, text, need + 1, len)) { free(text); return NULL; }
    if (why != E2H_STOP_STRING) return text;
    // the earliest occurrence of any stop string (the one that stopped the sample)
    const char *cut = NULL;
    for (int i = 0; i < a->n_stops; i++) {
        const char *h = strstr(text, a->stops[i]);
        if (h && (!cut || h < cut)) { cut = h; *stop_str = a->stops[i]; }
    }
    if (cut && !a->keep_stop) {
        *len = (size_t)(cut - text);
        text[*len] = 0;
    }
    return text;
}

// One sample object {"text", "stop", ["stop_string"], "tokens", "logprob", "ids", ["logprobs"]}.
static void gen_print_sample(FILE *out, const gen_args *a, const e2h_tokenizer *t, const e2h_seq *s) {
    int32_t n0 = e2h_seq_n_prompt(s), n = e2h_seq_len(s) - n0;
    const int32_t *ids = e2h_seq_tokens(s) + n0;
    const float *lp = e2h_seq_logprobs(s) + n0;
    double sum_lp = 0;
    for (int32_t i = 0; i < n; i++) sum_lp += isnan(lp[i]) ? 0 : lp[i];
    size_t len = 0;
    const char *stop_str = NULL;
    char *text = t ? gen_sample_text(a, t, s, &len, &stop_str) : NULL;
    fputs("{\"text\": ", out);
    if (text) cli_json_string(out, text, len);
    else fputs("null", out);
    fprintf(out, ", \"stop\": \"%s\"", gen_stop_name(e2h_seq_stop_reason(s)));
    if (stop_str) {
        fputs(", \"stop_string\": ", out);
        cli_json_string(out, stop_str, strlen(stop_str));
    }
    fprintf(out, ", \"tokens\": %d, \"logprob\": ", n);
    gen_json_num(out, sum_lp);
    fputs(", \"ids\": [", out);
    for (int32_t i = 0; i < n; i++) fprintf(out, "%s%d", i ? ", " : "", ids[i]);
    fputs("]", out);
    if (a->logprobs) {
        fputs(", \"logprobs\": [", out);
        for (int32_t i = 0; i < n; i++) {
            if (i) fputs(", ", out);
            gen_json_num(out, lp[i]);
        }
        fputs("]", out);
    }
    fputs("}", out);
    free(text);
}

static int gen_reserved_key(const char *k) {
    return !strcmp(k, "index") || !strcmp(k, "line") || !strcmp(k, "prompt_tokens") ||
           !strcmp(k, "samples");
}

// One prompt's object: index, line, the input row's fields, prompt_tokens, samples.
static void gen_print_prompt(FILE *out, const gen_args *a, const e2h_tokenizer *t, long index,
                             const gen_prompt *p, e2h_seq *const *seqs, int k) {
    fprintf(out, "{\"index\": %ld", index);
    if (p->row) {
        fprintf(out, ", \"line\": %ld", p->line);
        const cJSON *it;
        cJSON_ArrayForEach(it, p->row) {
            if (!it->string || gen_reserved_key(it->string)) continue;
            char *v = cJSON_PrintUnformatted(it);
            if (!v) continue;
            fputs(", ", out);
            cli_json_string(out, it->string, strlen(it->string));
            fprintf(out, ": %s", v);
            free(v);
        }
    }
    fprintf(out, ", \"prompt_tokens\": %d, \"samples\": [", p->n);
    for (int j = 0; j < k; j++) {
        if (j) fputs(", ", out);
        gen_print_sample(out, a, t, seqs[j]);
    }
    fputs("]}\n", out);
    fflush(out);
}

// Plain-text output of one sample: the text, or the ids when there is no tokenizer.
static void gen_print_plain(const gen_args *a, const e2h_tokenizer *t, const e2h_seq *s) {
    size_t len = 0;
    const char *stop_str;
    char *text = t ? gen_sample_text(a, t, s, &len, &stop_str) : NULL;
    if (text) {
        fwrite(text, 1, len, stdout);
    } else {
        int32_t n0 = e2h_seq_n_prompt(s), n = e2h_seq_len(s) - n0;
        for (int32_t i = 0; i < n; i++) printf("%s%d", i ? "," : "", e2h_seq_tokens(s)[n0 + i]);
    }
    printf("\n");
    fflush(stdout);
    free(text);
}

static void gen_print_stats(const gen_args *a, const gen_totals *tt) {
    const e2h_kv_stats *ks = &tt->kv_peak;
    double wall = gen_now() - tt->t_start;
    fprintf(stderr, "{\"stats\": {\"prompts\": %ld, \"samples\": %ld, \"samples_per_prompt\": %d, "
            "\"prompt_tokens\": %ld, \"generated_tokens\": %ld, \"prefill_s\": %.6f, \"decode_s\": %.6f, "
            "\"tok_s\": %.3f, \"wall_s\": %.6f, \"temperature\": %g, \"seed\": %llu, "
            "\"kv_blocks_used\": %d, \"kv_block_bytes\": %zu, \"kv_bytes_used\": %zu, "
            "\"kv_bytes_independent\": %zu}}\n",
            tt->prompts, tt->samples, a->samples, tt->prompt_tokens, tt->generated, tt->prefill_s,
            tt->decode_s, tt->decode_s > 0 ? tt->generated / tt->decode_s : 0.0, wall,
            a->sp.temperature, (unsigned long long)a->sp.seed, ks->blocks_used, ks->block_bytes,
            (size_t)ks->blocks_used * ks->block_bytes, ks->independent_bytes);
}

// A progress line on stderr at most every 2 s (and after the last prompt) for -i runs.
static void gen_progress(const gen_args *a, gen_totals *tt, long total) {
    double now = gen_now();
    if (a->quiet || !a->input || total < 2) return;
    if (tt->prompts < total && now - tt->last_progress < 2.0) return;
    tt->last_progress = now;
    double el = now - tt->t_start, rate = tt->generated / (el > 0 ? el : 1e-9);
    double left = tt->prompts ? el / tt->prompts * (total - tt->prompts) : 0;
    fprintf(stderr, "e2h: %ld/%ld prompts, %ld samples, %ld tokens, %.1f tok/s, %.0f s elapsed, ~%.0f s left\n",
            tt->prompts, total, tt->samples, tt->generated, rate, el, left);
}

// ------------------------------------------------------------------ running

// Releases the group's sequences.
static void gen_release(e2h_engine *e, e2h_seq **seqs, int n) {
    for (int i = 0; i < n; i++) {
        e2h_seq_release(e, seqs[i]);
        seqs[i] = NULL;
    }
}

// Creates the K sequences of prompt p at seqs[0..K): the prompt itself when K == 1, else K
// forks of it (which hold the prompt's blocks, so the root is released).
static e2h_status gen_start(const gen_args *a, e2h_engine *e, const gen_prompt *p, e2h_seq **seqs) {
    e2h_sampling sp = a->sp;
    sp.seed = p->seed;
    e2h_seq *root = NULL;
    e2h_status st = e2h_seq_create(e, p->ids, p->n, &sp, &root);
    if (st || a->samples == 1) {
        seqs[0] = root;
        return st;
    }
    st = e2h_seq_fork(e, root, a->samples, seqs);
    e2h_seq_release(e, root);
    return st;
}

static void gen_kv_peak(e2h_engine *e, gen_totals *tt) {
    e2h_kv_stats ks;
    e2h_engine_get_kv_stats(e, &ks);
    if (ks.blocks_used >= tt->kv_peak.blocks_used) tt->kv_peak = ks;
}

// Generates prompts [i0, i1) together and writes them in order.
static int gen_group(const gen_args *a, e2h_model *m, e2h_engine *e, gen_prompt *ps, long i0,
                     long i1, FILE *out, int json, gen_totals *tt) {
    int k = a->samples;
    long np = i1 - i0;
    e2h_seq **seqs = calloc((size_t)(np * k), sizeof *seqs);
    if (!seqs) return cli_fail("out of memory");
    e2h_stop stop = {(int32_t)a->n_new, (const char *const *)a->stops, a->n_stops, a->ignore_eos, 0};
    e2h_status st = E2H_OK;
    long failed = -1;
    double t0 = gen_now();
    for (long i = 0; i < np && !st; i++)
        if ((st = gen_start(a, e, &ps[i0 + i], seqs + i * k))) failed = i0 + i;
    // creates are lazy: the prompts still pending are computed here, together, as the prefill
    if (!st) st = e2h_engine_sync(e, seqs, (int)(np * k));
    double t1 = gen_now();
    if (!st) st = e2h_seq_extend(e, seqs, (int)(np * k), &stop);
    double t2 = gen_now();
    int rc = 0;
    if (st) {
        char where[512] = "";
        if (failed >= 0) gen_where(a, &ps[failed], where, sizeof where);
        else if (ps[i0].row) snprintf(where, sizeof where, "%s:%ld-%ld", a->input, ps[i0].line, ps[i1 - 1].line);
        rc = cli_fail("%s%s%s (%s)%s", where, *where ? ": " : "", e2h_engine_last_error(e), e2h_status_name(st),
                      st == E2H_ERR_KV_FULL ? "; raise --kv-mem, or lower --samples / --parallel" : "");
    } else {
        gen_kv_peak(e, tt);
        tt->prefill_s += t1 - t0;
        tt->decode_s += t2 - t1;
        const e2h_tokenizer *t = e2h_model_tokenizer(m);
        for (long i = 0; i < np; i++) {
            e2h_seq **s = seqs + i * k;
            if (json) gen_print_prompt(out, a, t, i0 + i, &ps[i0 + i], s, k);
            else gen_print_plain(a, t, s[0]);
            tt->prompts++;
            tt->samples += k;
            tt->prompt_tokens += ps[i0 + i].n;
            for (int j = 0; j < k; j++) tt->generated += e2h_seq_len(s[j]) - e2h_seq_n_prompt(s[j]);
        }
    }
    gen_release(e, seqs, (int)(np * k));
    free(seqs);
    return rc;
}

static int gen_run(const gen_args *a, e2h_model *m, e2h_engine *e, gen_prompt *ps, long n,
                   FILE *out, gen_totals *tt) {
    for (long i = 0; i < n; i++) {
        int rc = gen_prompt_ids(a, m, &ps[i]);
        if (!rc) rc = gen_check_prompt(a, m, &ps[i]);
        if (rc) return rc;
    }
    int json = a->json || a->samples > 1 || a->input || a->output;
    for (long i = 0; i < n; i += a->parallel) {
        long i1 = i + a->parallel < n ? i + a->parallel : n;
        int rc = gen_group(a, m, e, ps, i, i1, out, json, tt);
        if (rc) return rc;
        gen_progress(a, tt, n);
    }
    if (json || a->stats) gen_print_stats(a, tt);
    return 0;
}

int cli_generate(int argc, char **argv) {
    gen_args a;
    int rc = gen_parse(&a, argc, argv);
    if (rc) {
        gen_args_free(&a);
        return rc == 1 ? 0 : rc;
    }
    gen_totals tt = {0};
    tt.t_start = gen_now();
    gen_prompt one = {0}, *ps = &one;
    long n = 1;
    one.seed = a.sp.seed;
    if (a.input) rc = gen_read_rows(&a, &ps, &n);
    FILE *out = stdout;
    if (!rc && a.output && !(out = fopen(a.output, "w"))) {
        out = stdout;
        rc = cli_fail("%s: cannot open for writing", a.output);
    }
    e2h_model *m = NULL;
    e2h_engine *e = NULL;
    if (!rc) rc = cli_open(&a.mo, &m, &e);
    if (!rc) rc = gen_run(&a, m, e, ps, n, out, &tt);
    if (out != stdout && fclose(out) && !rc) rc = cli_fail("%s: write failed", a.output);
    if (e) e2h_engine_free(e);
    if (m) e2h_model_free(m);
    for (long i = 0; i < n; i++) {
        free(ps[i].ids);
        cJSON_Delete(ps[i].row);
    }
    if (ps != &one) free(ps);
    gen_args_free(&a);
    return rc;
}
