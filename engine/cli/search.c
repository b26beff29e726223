// engine/cli/search.c — `e2h search`: runs a search / re-ranking method over a problems file
// (MATH500 or GSM8K JSONL) and writes one JSON line per problem (PLAN.md §6 "Results
// JSONL"): every sample with its steps, step scores, extracted answer and correctness, and
// the answer the method selects. Resumable (problems already in the output are skipped; a
// different configuration in the output is an error), shardable (--shard i/n takes the
// problems whose index is i mod n), with a progress line on stderr.
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "jsonl.h"

static const char *search_usage =
    "usage: e2h search --policy MODEL [--prm MODEL [--prm-protocol NAME] | --prm-head FILE]\n"
    "                  --problems FILE.jsonl --method METHOD -n N [-M WIDTH] [--seed S]\n"
    "                  -o RESULTS.jsonl [--shard I/N] [options]\n"
    "Solves each problem with a policy (and a PRM) and writes one JSON line per problem.\n"
    "  --policy MODEL      the policy model (directory or .gguf; also -m)\n"
    "  --prm MODEL         a process reward model; --prm-protocol NAME picks its protocol\n"
    "                      (default: detected)\n"
    "  --prm-head FILE     an e2h head (.safetensors) on the policy's own hidden states\n"
    "  --problems FILE     JSONL: MATH500 (problem, answer, level, unique_id) or GSM8K\n"
    "                      (question, answer ending in \"#### N\")\n"
    "  --method M          greedy, maj, bon, weighted, beam, dvts, rebase\n"
    "  -n N                samples / beams / budget (default 4)\n"
    "  -M WIDTH            beam width for beam and dvts (default 4; must divide N)\n"
    "  --seed S            RNG seed (default 42)\n"
    "  --temp T            sampling temperature (default 0.8)\n"
    "  --top-p P           nucleus sampling (default 1.0)\n"
    "  --max-tokens N      generated tokens per solution (default 2048)\n"
    "  --max-rounds N      step rounds of beam/dvts/rebase (default 40)\n"
    "  --bon-agg A         step-score aggregate BoN ranks by: min (default), prod, mean, last\n"
    "  --weighted-agg A    aggregate weighted voting sums per answer: prod (default), min, ...\n"
    "  --search-agg A      aggregate beam/dvts/rebase rank by: last (default), min, prod, mean\n"
    "  -o FILE             results JSONL (appended to when it exists: resume)\n"
    "  --shard I/N         only the problems whose index (0-based line of a problem) is I mod N\n"
    "  --system TEXT       system turn of the prompt (default: an instruction to solve step\n"
    "                      by step, steps separated by blank lines, answer in \\boxed{}; \"\" for none)\n"
    "  --fewshot FILE      JSONL of {\"problem\", \"solution\"}: worked examples given as earlier\n"
    "                      user/assistant turns before the problem\n"
    "  (the prompt is the policy's chat template (ChatML, e2h_model_apply_chat_turns): a policy\n"
    "   without a chat template, or with one that is not ChatML, is refused unless --no-chat)\n"
    "  --no-chat           a raw prompt instead: the system text, each example's problem and\n"
    "                      solution, then the problem, separated by blank lines (BOS as the\n"
    "                      tokenizer adds it); for base models\n"
    "  --limit K           stop after K new problems (default: all)\n"
    "  --search-batch P    problems searched at once, their branches decoded in shared batches\n"
    "                      (search-and-learn's search_batch_size; default 4, 1..256): results are\n"
    "                      the same for every P and written in the problems' order\n"
    "  (--kv-mem default here: N x (2048 + max_tokens) tokens of KV, x2 with --prm, >= 1 GiB,\n"
    "   times P up to 8 GiB (a fuller pool preempts and recomputes); a problem that still\n"
    "   exhausts it is reported and skipped)\n"
    "  --quiet             no progress line\n";

typedef struct {
    cli_model_opts mo;
    const char *prm, *prm_protocol, *prm_head, *problems, *out, *system, *fewshot;
    char **shots;         // --fewshot: problem, solution, problem, ... (2 n_shots, owned)
    int n_shots;
    int no_chat;          // --no-chat: a raw prompt, not the chat template
    e2h_prm *prm_obj;     // loaded PRM (freed after the engine)
    e2h_search_opts so;
    double temp, top_p;
    int shard_i, shard_n, quiet;
    int batch;            // --search-batch: problems searched at once
    long limit;
    char shard[32];
} srch_args;

// The aggregate flags: each sets one e2h_search_opts field and names it in the results config
// when not the default.
static const struct {
    const char *flag, *config_key;
    size_t off; // of the e2h_agg in e2h_search_opts
} sa_aggs[] = {
    {"--bon-agg", "bon_agg", offsetof(e2h_search_opts, agg_bon)},
    {"--weighted-agg", "weighted_agg", offsetof(e2h_search_opts, agg_weighted)},
    {"--search-agg", "search_agg", offsetof(e2h_search_opts, agg_search)},
};
#define SA_N_AGGS ((int)(sizeof sa_aggs / sizeof sa_aggs[0]))

// The field flag f sets, or NULL if f is not an aggregate flag.
static e2h_agg *sa_agg_flag(e2h_search_opts *so, const char *f) {
    for (int k = 0; k < SA_N_AGGS; k++)
        if (!strcmp(f, sa_aggs[k].flag)) return (e2h_agg *)((char *)so + sa_aggs[k].off);
    return NULL;
}

static e2h_agg sa_agg_get(const e2h_search_opts *so, int k) {
    return *(const e2h_agg *)((const char *)so + sa_aggs[k].off);
}

static int sa_parse(srch_args *a, int argc, char **argv) {
    memset(a, 0, sizeof *a);
    cli_model_opts_init(&a->mo);
    a->so = e2h_search_opts_default();
    a->so.method = (e2h_search_method)-1;
    a->temp = 0.8;
    a->top_p = 1.0;
    a->shard_n = 1;
    a->limit = -1;
    a->batch = 4;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_opts_parse(&a->mo, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x;
        e2h_agg *agg;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            printf("%s%s", search_usage, CLI_MODEL_OPTS_HELP);
            return 1;
        }
        if (!strcmp(f, "--quiet")) { a->quiet = 1; continue; }
        if (!strcmp(f, "--no-chat")) { a->no_chat = 1; continue; }
        if (!v) return cli_fail("search: unknown option or missing value '%s' (see --help)", f);
        if (!strcmp(f, "--policy")) a->mo.model = v;
        else if (!strcmp(f, "--prm")) a->prm = v;
        else if (!strcmp(f, "--prm-protocol")) a->prm_protocol = v;
        else if (!strcmp(f, "--prm-head")) a->prm_head = v;
        else if (!strcmp(f, "--problems")) a->problems = v;
        else if (!strcmp(f, "-o")) a->out = v;
        else if (!strcmp(f, "--system")) a->system = v;
        else if (!strcmp(f, "--fewshot")) a->fewshot = v;
        else if (!strcmp(f, "--method")) {
            if (e2h_search_method_parse(v, &a->so.method))
                return cli_fail("--method: '%s' is not one of greedy, maj, bon, weighted, beam, dvts, rebase", v);
        } else if (!strcmp(f, "-n")) { if (cli_parse_int(f, v, 1, 4096, &x)) return 2; a->so.n = (int)x; }
        else if (!strcmp(f, "-M")) { if (cli_parse_int(f, v, 1, 4096, &x)) return 2; a->so.m = (int)x; }
        else if (!strcmp(f, "--seed")) { if (cli_parse_int(f, v, 0, 0x7fffffffffffffffL, &x)) return 2; a->so.sampling.seed = (uint64_t)x; }
        else if (!strcmp(f, "--temp")) { if (cli_parse_float(f, v, 0, 100, &a->temp)) return 2; }
        else if (!strcmp(f, "--top-p")) { if (cli_parse_float(f, v, 0, 1, &a->top_p)) return 2; }
        else if (!strcmp(f, "--max-tokens")) { if (cli_parse_int(f, v, 1, 1 << 24, &x)) return 2; a->so.max_tokens = (int32_t)x; }
        else if (!strcmp(f, "--max-rounds")) { if (cli_parse_int(f, v, 1, 100000, &x)) return 2; a->so.max_rounds = (int)x; }
        else if ((agg = sa_agg_flag(&a->so, f))) {
            if (e2h_agg_parse(v, agg)) return cli_fail("%s: '%s' is not one of min, prod, mean, last", f, v);
        }
        else if (!strcmp(f, "--search-batch")) { if (cli_parse_int(f, v, 1, 256, &x)) return 2; a->batch = (int)x; }
        else if (!strcmp(f, "--limit")) { if (cli_parse_int(f, v, 0, 1L << 40, &x)) return 2; a->limit = x; }
        else if (!strcmp(f, "--shard")) {
            char *end;
            errno = 0;
            long si = strtol(v, &end, 10), sn = -1;
            if (!errno && end != v && *end == '/') {
                char *e2;
                sn = strtol(end + 1, &e2, 10);
                if (errno || e2 == end + 1 || *e2) sn = -1;
            }
            if (sn < 1 || sn > 1000000 || si < 0 || si >= sn)
                return cli_fail("--shard: '%s' is not I/N with 0 <= I < N", v);
            a->shard_i = (int)si;
            a->shard_n = (int)sn;
        } else return cli_fail("search: unknown option '%s' (see e2h search --help)", f);
        i++;
    }
    if (!a->mo.model) return cli_fail("search: --policy MODEL is required");
    if (!a->problems) return cli_fail("search: --problems FILE is required");
    if (!a->out) return cli_fail("search: -o RESULTS.jsonl is required");
    if ((int)a->so.method < 0) return cli_fail("search: --method is required");
    if (a->prm && a->prm_head) return cli_fail("search: give --prm or --prm-head, not both");
    if (a->prm_protocol && !a->prm) return cli_fail("search: --prm-protocol needs --prm");
    int uses_m = a->so.method == E2H_SEARCH_BEAM || a->so.method == E2H_SEARCH_DVTS;
    if (uses_m && (a->so.m > a->so.n || a->so.n % a->so.m))
        return cli_fail("search: -M %d must divide -n %d (1 <= M <= N)", a->so.m, a->so.n);
    int needs_prm = a->so.method != E2H_SEARCH_GREEDY && a->so.method != E2H_SEARCH_MAJ;
    if (needs_prm && !a->prm && !a->prm_head)
        return cli_fail("search: --method %s needs a PRM (--prm MODEL or --prm-head FILE)",
                        e2h_search_method_name(a->so.method));
    a->so.sampling.temperature = (float)a->temp;
    a->so.sampling.top_p = (float)a->top_p;
    snprintf(a->shard, sizeof a->shard, "%d/%d", a->shard_i, a->shard_n);
    return 0;
}

static cJSON *sa_config(const srch_args *a, const char *protocol) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "policy", a->mo.model);
    const char *prm = a->prm ? a->prm : a->prm_head;
    if (prm) cJSON_AddStringToObject(c, "prm", prm);
    else cJSON_AddNullToObject(c, "prm");
    if (protocol) cJSON_AddStringToObject(c, "protocol", protocol);
    else cJSON_AddNullToObject(c, "protocol");
    cJSON_AddStringToObject(c, "method", e2h_search_method_name(a->so.method));
    cJSON_AddNumberToObject(c, "n", a->so.n);
    cJSON_AddNumberToObject(c, "m", a->so.m);
    cJSON_AddNumberToObject(c, "seed", (double)a->so.sampling.seed);
    cJSON_AddNumberToObject(c, "temperature", a->temp);
    cJSON_AddNumberToObject(c, "top_p", a->top_p);
    cJSON_AddNumberToObject(c, "max_tokens", a->so.max_tokens);
    cJSON_AddNumberToObject(c, "max_rounds", a->so.max_rounds);
    cJSON_AddStringToObject(c, "problems", a->problems);
    cJSON_AddStringToObject(c, "shard", a->shard);
    // prompt options only when given (the default prompt keeps the PLAN §6 fields only)
    if (a->system) cJSON_AddStringToObject(c, "system", a->system);
    if (a->fewshot) cJSON_AddStringToObject(c, "fewshot", a->fewshot);
    if (a->no_chat) cJSON_AddFalseToObject(c, "chat");
    // aggregates only when not the defaults (results files of earlier runs resume unchanged)
    e2h_search_opts d = e2h_search_opts_default();
    for (int k = 0; k < SA_N_AGGS; k++)
        if (sa_agg_get(&a->so, k) != sa_agg_get(&d, k))
            cJSON_AddStringToObject(c, sa_aggs[k].config_key, e2h_agg_name(sa_agg_get(&a->so, k)));
    return c;
}

// ------------------------------------------------------------------ resume

typedef struct {
    char **ids;
    size_t n, cap;
} id_set;

static int ids_cmp(const void *x, const void *y) {
    return strcmp(*(char *const *)x, *(char *const *)y);
}
static int ids_has(const id_set *s, const char *id) {
    return s->n && bsearch(&id, s->ids, s->n, sizeof *s->ids, ids_cmp) != NULL;
}
static void ids_free(id_set *s) {
    for (size_t i = 0; i < s->n; i++) free(s->ids[i]);
    free(s->ids);
}

// Reads an existing results file: checks its config against cfg, collects the unique_ids
// done, and cuts off a last line that was not finished (a run killed mid-write). Returns 0,
// or 2 with a message.
static int sa_resume(const char *path, const cJSON *cfg, id_set *done, int *has_config) {
    *has_config = 0;
    FILE *f = fopen(path, "r+");
    if (!f) return errno == ENOENT ? 0 : cli_fail("%s: cannot open (%s)", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0, good_end = 0;
    int rc = 0;
    while (!rc && (len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (line[len - 1] != '\n') break; // unfinished last line: dropped below
        cJSON *j = cJSON_ParseWithLength(line, (size_t)len);
        if (!j) {
            rc = cli_fail("%s:%ld: not JSON; is this a results file?", path, lineno);
            break;
        }
        if (lineno == 1) {
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "config");
            if (!c) rc = cli_fail("%s:1: no \"config\" object; not a results file of e2h search", path);
            else if (!cJSON_Compare(c, cfg, 1)) {
                const cJSON *it;
                const char *which = "?";
                cJSON_ArrayForEach(it, cfg) {
                    const cJSON *o = cJSON_GetObjectItemCaseSensitive(c, it->string);
                    if (!o || !cJSON_Compare(o, it, 1)) { which = it->string; break; }
                }
                char *have = cJSON_PrintUnformatted(c);
                rc = cli_fail("%s holds results of a different configuration (field \"%s\"): %s; "
                              "use another -o or the same options", path, which, have ? have : "?");
                free(have);
            }
            *has_config = 1;
        } else {
            const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "unique_id");
            if (cJSON_IsString(u)) {
                if (done->n == done->cap) {
                    done->cap = done->cap ? done->cap * 2 : 256;
                    char **p = realloc(done->ids, done->cap * sizeof *p);
                    if (!p) { cJSON_Delete(j); rc = cli_fail("out of memory"); break; }
                    done->ids = p;
                }
                done->ids[done->n++] = strdup(u->valuestring);
            }
        }
        cJSON_Delete(j);
        good_end += len;
    }
    free(line);
    if (!rc && ftruncate(fileno(f), good_end)) rc = cli_fail("%s: cannot truncate (%s)", path, strerror(errno));
    fclose(f);
    if (done->n) qsort(done->ids, done->n, sizeof *done->ids, ids_cmp);
    return rc;
}

// ------------------------------------------------------------------ problems

// Problem lines: jl_problem_parse (engine/cli/jsonl.c, fuzzed by tests/fuzz/fuzz_jsonl.c).

// The prompt: the policy's chat template (e2h_model_apply_chat_turns, as `e2h generate --chat`)
// with the step-by-step instruction as the system turn (as search-and-learn's system prompt),
// optional few-shot turns, then the problem; or with --no-chat the same parts as raw text.
static const char *sa_instruction =
    "Solve the following math problem step by step. Separate the steps with a blank line. "
    "Put the final answer in \\boxed{}.";

static void sa_free_shots(srch_args *a) {
    for (int i = 0; i < 2 * a->n_shots; i++) free(a->shots[i]);
    free(a->shots);
    a->shots = NULL;
    a->n_shots = 0;
}

// Appends one example (copies of q and s) to a->shots. Returns -1 when out of memory.
static int sa_add_shot(srch_args *a, const char *q, const char *s) {
    if (a->n_shots >= (1 << 20)) return -1;
    char **ns = realloc(a->shots, (size_t)(a->n_shots + 1) * 2 * sizeof *ns);
    if (!ns) return -1;
    a->shots = ns;
    char *dq = strdup(q), *ds = strdup(s);
    if (!dq || !ds) { free(dq); free(ds); return -1; }
    a->shots[2 * a->n_shots] = dq;
    a->shots[2 * a->n_shots + 1] = ds;
    a->n_shots++;
    return 0;
}

// Reads --fewshot FILE into a->shots. Returns 0 or 2 (message printed).
static int sa_load_fewshot(srch_args *a) {
    if (!a->fewshot) return 0;
    FILE *f = fopen(a->fewshot, "r");
    if (!f) return cli_fail("%s: cannot open (%s)", a->fewshot, strerror(errno));
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;
    while (!rc && (len = getline(&line, &lcap, f)) > 0) {
        lineno++;
        int blank = 1;
        for (ssize_t i = 0; i < len && blank; i++) blank = line[i] == ' ' || line[i] == '\n' || line[i] == '\r' || line[i] == '\t';
        if (blank) continue;
        cJSON *j = cJSON_ParseWithLength(line, (size_t)len);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "problem");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "solution");
        if (!cJSON_IsString(p) || !cJSON_IsString(s))
            rc = cli_fail("%s:%ld: expected {\"problem\": string, \"solution\": string}", a->fewshot, lineno);
        else if (sa_add_shot(a, p->valuestring, s->valuestring))
            rc = cli_fail("out of memory");
        cJSON_Delete(j);
    }
    free(line);
    fclose(f);
    if (!rc && !a->n_shots) rc = cli_fail("%s: no examples", a->fewshot);
    if (rc) sa_free_shots(a);
    return rc;
}

// The chat template must be one e2h_model_apply_chat_turns renders (ChatML); anything else
// would give the policy a layout it was not trained on. Returns 0 or 2 (message printed).
static int sa_check_chat(const srch_args *a, const e2h_model *m) {
    if (a->no_chat) return 0;
    const char *t = e2h_model_chat_template(m);
    if (!t)
        return cli_fail("%s: the policy has no chat template (GGUF tokenizer.chat_template or "
                        "tokenizer_config.json chat_template); pass --no-chat for a raw prompt", a->mo.model);
    if (!strstr(t, "<|im_start|>"))
        return cli_fail("%s: the policy's chat template is not ChatML, the one layout e2h renders "
                        "(e2h_model_apply_chat_turns); pass --no-chat for a raw prompt", a->mo.model);
    return 0;
}

// Renders the prompt text (NUL-terminated, caller frees) or NULL when out of memory.
static char *sa_prompt_text(const srch_args *a, const e2h_model *m, const char *problem, size_t *len) {
    const char *sys = a->system ? a->system : sa_instruction;
    int n = 2 * a->n_shots + 1;
    const char **roles = malloc((size_t)n * sizeof *roles), **contents = malloc((size_t)n * sizeof *contents);
    char *w = NULL;
    if (!roles || !contents) goto out;
    for (int i = 0; i < 2 * a->n_shots; i++) {
        roles[i] = i % 2 ? "assistant" : "user";
        contents[i] = a->shots[i];
    }
    roles[n - 1] = "user";
    contents[n - 1] = problem;
    if (a->no_chat) { // raw: parts separated by blank lines, the last one too (the solution follows)
        size_t k = *sys ? strlen(sys) + 2 : 0;
        for (int i = 0; i < n; i++) k += strlen(contents[i]) + 2;
        w = malloc(k + 1);
        if (!w) goto out;
        size_t o = 0;
        if (*sys) o += (size_t)sprintf(w + o, "%s\n\n", sys);
        for (int i = 0; i < n; i++) o += (size_t)sprintf(w + o, "%s\n\n", contents[i]);
        *len = o;
    } else {
        // system "" = no system turn; never NULL: the template's default system turn is not
        // the step-by-step instruction
        size_t need = 0;
        if (e2h_model_apply_chat_turns(m, sys, roles, contents, n, NULL, 0, &need) == E2H_OK &&
            (w = malloc(need + 1)) != NULL &&
            e2h_model_apply_chat_turns(m, sys, roles, contents, n, w, need + 1, len) != E2H_OK) {
            free(w);
            w = NULL;
        }
    }
out:
    free(roles);
    free(contents);
    return w;
}

static int sa_prompt(const srch_args *a, const e2h_model *m, const char *problem, int32_t **ids, int32_t *n) {
    const e2h_tokenizer *t = e2h_model_tokenizer(m);
    size_t len = 0;
    char *w = sa_prompt_text(a, m, problem, &len);
    if (!w || len > (1u << 28)) { free(w); return -1; }
    int32_t tcap = (int32_t)len + 16, need = 0;
    *ids = malloc((size_t)tcap * sizeof **ids);
    // the chat text spells its special tokens; a raw prompt gets BOS as the tokenizer adds it
    e2h_status st = *ids ? e2h_tokenize(t, w, len, a->no_chat, *ids, tcap, &need) : E2H_ERR_NOMEM;
    free(w);
    if (st || need > tcap) { free(*ids); *ids = NULL; return -1; }
    *n = need;
    return 0;
}

// Graded with the library's answer check (PLAN.md §2); no answer is never correct.
static int sa_answer_equal(const char *a, const char *b) {
    return a && b && e2h_answer_equal(a, strlen(a), b, strlen(b));
}

static cJSON *sa_num(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }
static cJSON *sa_str(const char *s) { return s ? cJSON_CreateString(s) : cJSON_CreateNull(); }

static cJSON *sa_result_json(const srch_args *a, const jl_problem *p, const e2h_search_result *r,
                             int32_t n_prompt) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "unique_id", p->uid);
    if (p->level) cJSON_AddNumberToObject(o, "level", p->level);
    else cJSON_AddNullToObject(o, "level");
    cJSON_AddStringToObject(o, "problem", p->problem);
    cJSON_AddStringToObject(o, "answer", p->answer);
    cJSON_AddStringToObject(o, "method", e2h_search_method_name(a->so.method));
    cJSON_AddNumberToObject(o, "n", a->so.n);
    cJSON *ss = cJSON_AddArrayToObject(o, "samples");
    for (int i = 0; i < r->n_samples; i++) {
        const e2h_search_sample *s = &r->samples[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "text", s->text);
        cJSON *st = cJSON_AddArrayToObject(j, "steps"), *sc = cJSON_AddArrayToObject(j, "step_scores");
        for (int k = 0; k < s->n_steps; k++) {
            cJSON_AddItemToArray(st, cJSON_CreateString(s->steps[k]));
            cJSON_AddItemToArray(sc, sa_num(s->step_scores[k]));
        }
        cJSON_AddItemToObject(j, "answer", sa_str(s->answer));
        cJSON_AddItemToObject(j, "key", sa_str(s->key));
        cJSON_AddBoolToObject(j, "correct", sa_answer_equal(s->answer, p->answer));
        cJSON *ag = cJSON_AddObjectToObject(j, "agg");
        for (int k = 0; k < 4; k++) cJSON_AddItemToObject(ag, e2h_agg_name((e2h_agg)k), sa_num(s->agg[k]));
        cJSON_AddNumberToObject(j, "tokens", s->n_tokens);
        cJSON_AddItemToArray(ss, j);
    }
    cJSON *sel = cJSON_AddObjectToObject(o, "selected");
    const char *sa = r->selected >= 0 ? r->samples[r->selected].answer : NULL;
    cJSON_AddItemToObject(sel, "answer", sa_str(sa));
    cJSON_AddBoolToObject(sel, "correct", sa_answer_equal(sa, p->answer));
    cJSON_AddNumberToObject(o, "prompt_tokens", n_prompt);
    cJSON_AddNumberToObject(o, "policy_tokens", (double)r->policy_tokens);
    cJSON_AddNumberToObject(o, "prm_tokens", (double)r->prm_tokens);
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    return o;
}

static int sa_write_line(FILE *f, const cJSON *j) {
    char *s = cJSON_PrintUnformatted(j);
    if (!s) return -1;
    int bad = fputs(s, f) < 0 || fputc('\n', f) == EOF || fflush(f);
    free(s);
    return bad ? -1 : 0;
}

static double sa_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// Number of problems of this shard in the file (for the ETA): non-blank lines with index
// i mod n.
static long sa_count_shard(const char *path, const srch_args *a) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0;
    long k = 0, mine = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        int blank = 1;
        for (ssize_t i = 0; i < len && blank; i++) blank = line[i] == ' ' || line[i] == '\n' || line[i] == '\r' || line[i] == '\t';
        if (blank) continue;
        mine += k % a->shard_n == a->shard_i;
        k++;
    }
    free(line);
    fclose(f);
    return mine;
}

// ------------------------------------------------------------------ the problems as jobs

// A problem handed to the search batch; results are written in the problems' order.
typedef struct sa_job {
    struct sa_job *next;
    jl_problem p;
    int32_t *ids, n_ids;
    long lineno;
    int finished;         // done() was called
    cJSON *json;          // the result line (NULL: skipped)
} sa_job;

typedef struct {
    srch_args *a;
    const e2h_model *m;
    FILE *pf, *of;
    const id_set *done;
    char *line;
    size_t cap;
    long lineno, k, n_new, n_bad, n_done_before, total, handed;
    int rc;
    double t0;
    int64_t gen_tokens;   // policy tokens computed (prompts + every branch)
    sa_job *head, *tail;  // jobs handed out and not yet written, in order
} sa_feed;

static void sa_job_free(sa_job *j) {
    free(j->ids);
    jl_problem_free(&j->p);
    cJSON_Delete(j->json);
    free(j);
}

// Reads problem lines until one is to be solved (bad lines and resumed ones are reported /
// counted and skipped). Returns the job or NULL at the end of the file (or of --limit).
static sa_job *sa_next_problem(sa_feed *f) {
    srch_args *a = f->a;
    ssize_t len;
    while (!f->rc && (a->limit < 0 || f->handed < a->limit) && (len = getline(&f->line, &f->cap, f->pf)) > 0) {
        const char *line = f->line;
        f->lineno++;
        int blank = 1;
        for (ssize_t i = 0; i < len && blank; i++) blank = line[i] == ' ' || line[i] == '\n' || line[i] == '\r' || line[i] == '\t';
        if (blank) continue;
        long idx = f->k++;
        if (idx % a->shard_n != a->shard_i) continue;
        sa_job *j = calloc(1, sizeof *j);
        if (!j) { f->rc = cli_fail("out of memory"); return NULL; }
        j->lineno = f->lineno;
        const char *perr = jl_problem_parse(line, (size_t)len, f->lineno, &j->p);
        if (perr) {
            fprintf(stderr, "e2h: %s:%ld: %s; problem skipped\n", a->problems, f->lineno, perr);
            f->n_bad++;
            free(j);
            continue;
        }
        if (ids_has(f->done, j->p.uid)) { f->n_done_before++; sa_job_free(j); continue; }
        if (sa_prompt(a, f->m, j->p.problem, &j->ids, &j->n_ids)) {
            fprintf(stderr, "e2h: %s:%ld: tokenizing the problem failed; skipped\n", a->problems, f->lineno);
            f->n_bad++;
            sa_job_free(j);
            continue;
        }
        f->handed++;
        return j;
    }
    return NULL;
}

static int sa_next(void *ctx, e2h_search_job *job) {
    sa_feed *f = ctx;
    sa_job *j = sa_next_problem(f);
    if (!j) return 0;
    if (f->tail) f->tail->next = j;
    else f->head = j;
    f->tail = j;
    job->prompt = j->ids;
    job->n_prompt = j->n_ids;
    job->opts = f->a->so;
    job->opts.problem = j->p.problem;
    job->tag = j;
    return 1;
}

// Writes the finished jobs at the head of the queue (results keep the problems' order
// whatever order the searches of a batch end in).
static void sa_flush(sa_feed *f) {
    while (f->head && f->head->finished) {
        sa_job *j = f->head;
        if (j->json && !f->rc && sa_write_line(f->of, j->json))
            f->rc = cli_fail("%s: write failed (%s)", f->a->out, strerror(errno));
        f->head = j->next;
        if (!f->head) f->tail = NULL;
        sa_job_free(j);
    }
}

static int sa_done(void *ctx, void *tag, e2h_status st, const char *msg, e2h_search_result *r) {
    sa_feed *f = ctx;
    srch_args *a = f->a;
    sa_job *j = tag;
    j->finished = 1;
    if (st == E2H_ERR_CONTEXT || st == E2H_ERR_KV_FULL) { // this problem only
        fprintf(stderr, "e2h: %s:%ld (%s): %s (%s); problem skipped\n", a->problems, j->lineno,
                j->p.uid, msg, e2h_status_name(st));
        f->n_bad++;
        f->handed--; // --limit counts problems solved
    } else if (st) {
        if (!f->rc) f->rc = cli_fail("%s:%ld: %s (%s)", a->problems, j->lineno, msg, e2h_status_name(st));
    } else {
        j->json = sa_result_json(a, &j->p, r, j->n_ids);
        f->gen_tokens += r->policy_tokens;
        f->n_new++;
        e2h_search_result_free(r);
        if (!j->json && !f->rc) f->rc = cli_fail("out of memory");
    }
    sa_flush(f);
    if (!f->rc && !st && !a->quiet) {
        double dt = sa_now() - f->t0;
        long left = f->total - f->n_done_before - f->n_new - f->n_bad;
        double eta = f->n_new ? dt / f->n_new * (left > 0 ? left : 0) : 0;
        fprintf(stderr, "search %s: %ld/%ld problems (shard %s), %.1f tok/s, ETA %02d:%02d:%02d\n",
                e2h_search_method_name(a->so.method), f->n_done_before + f->n_new, f->total, a->shard,
                dt > 0 ? f->gen_tokens / dt : 0.0, (int)(eta / 3600), (int)fmod(eta / 60, 60), (int)fmod(eta, 60));
    }
    return f->rc != 0;
}

// Loads the PRM (if any) into a->prm_obj before the engine exists: a head that reads a policy
// layer sets the feature_layer the engine is created with.
static int sa_load_prm(srch_args *a, e2h_model *m) {
    if (!a->prm && !a->prm_head) return 0;
    char err[1024] = "";
    e2h_prm_opts po = e2h_prm_opts_default();
    po.protocol = a->prm_head ? "head" : a->prm_protocol;
    po.load.quant = a->mo.quant;
    e2h_status st = e2h_prm_load(a->prm ? a->prm : a->prm_head, m, &po, &a->prm_obj, err, sizeof err);
    return st ? cli_fail("%s (%s)", err, e2h_status_name(st)) : 0;
}

static int sa_run(srch_args *a, e2h_model *m, e2h_engine *e) {
    const char *protocol = NULL;
    if (a->prm_obj) {
        e2h_status st = e2h_engine_attach_prm(e, a->prm_obj);
        if (st) return cli_fail("attaching the PRM: %s (%s)", e2h_engine_last_error(e), e2h_status_name(st));
        protocol = e2h_prm_protocol(a->prm_obj);
    }
    int rc = sa_check_chat(a, m);
    if (!rc) rc = sa_load_fewshot(a);
    if (rc) return rc;
    cJSON *cfg = sa_config(a, protocol);
    id_set done = {0};
    int has_cfg = 0;
    rc = sa_resume(a->out, cfg, &done, &has_cfg);
    FILE *pf = rc ? NULL : fopen(a->problems, "r");
    if (!rc && !pf) rc = cli_fail("%s: cannot open (%s)", a->problems, strerror(errno));
    FILE *of = rc ? NULL : fopen(a->out, "a");
    if (!rc && !of) rc = cli_fail("%s: cannot open for writing (%s)", a->out, strerror(errno));
    if (!rc && !has_cfg) {
        cJSON *head = cJSON_CreateObject();
        cJSON_AddItemReferenceToObject(head, "config", cfg);
        if (sa_write_line(of, head)) rc = cli_fail("%s: write failed", a->out);
        cJSON_Delete(head);
    }
    long total = rc ? 0 : sa_count_shard(a->problems, a);
    sa_feed f;
    memset(&f, 0, sizeof f);
    f.a = a;
    f.m = m;
    f.pf = pf;
    f.of = of;
    f.done = &done;
    f.rc = rc;
    f.total = total;
    f.t0 = sa_now();
    if (!rc) {
        // the searches of --batch problems share decode batches (e2h_search_run_batch)
        e2h_search_batch b = {a->batch, sa_next, sa_done, &f};
        e2h_status st = e2h_search_run_batch(e, &b);
        if (st && !f.rc) f.rc = cli_fail("search: %s (%s)", e2h_engine_last_error(e), e2h_status_name(st));
        rc = f.rc;
    }
    while (f.head) { // only after an error: results not yet written
        sa_job *j = f.head;
        f.head = j->next;
        sa_job_free(j);
    }
    if (!rc && !a->quiet)
        fprintf(stderr, "search: %ld new, %ld already done, %ld skipped (bad lines / too long) -> %s\n",
                f.n_new, f.n_done_before, f.n_bad, a->out);
    // bad lines are skipped so that one does not stop a long run; a file with nothing else is an
    // error (a wrong file or schema), not an empty success
    if (!rc && f.n_bad > 0 && f.n_new == 0 && f.n_done_before == 0)
        rc = cli_fail("%s: no problem could be run (%ld skipped, each reported above)", a->problems, f.n_bad);
    free(f.line);
    if (pf) fclose(pf);
    if (of && fclose(of) && !rc) rc = cli_fail("%s: write failed", a->out);
    ids_free(&done);
    cJSON_Delete(cfg);
    sa_free_shots(a);
    return rc;
}

int cli_search(int argc, char **argv) {
    srch_args a;
    int rc = sa_parse(&a, argc, argv);
    if (rc == 1) return 0;
    if (rc) return rc;
    e2h_model *m;
    e2h_engine *e = NULL;
    rc = cli_open(&a.mo, &m, NULL);
    if (rc) return rc;
    if (a.mo.kv_mem_gib <= 0) {
        // room for every branch at full length: N x (a long prompt + max_tokens) tokens, twice
        // when a PRM model shares the budget. Only the blocks used are ever touched.
        e2h_model_info mi;
        e2h_model_get_info(m, &mi);
        double per_tok = 2.0 * mi.n_layers * mi.n_kv_heads * mi.head_dim * (a.mo.kv_f16 ? 2 : 4);
        double need = per_tok * a.so.n * (2048.0 + a.so.max_tokens) * (a.prm ? 2 : 1) / 1073741824.0;
        double batch = need * a.batch, cap = need > 8 ? need : 8; // P problems at once
        need = batch < cap ? batch : cap;
        a.mo.kv_mem_gib = need > 1 ? need : 1;
    }
    a.prm_obj = NULL;
    if (!e2h_model_tokenizer(m)) rc = cli_fail("%s: the policy has no tokenizer", a.mo.model);
    if (!rc) rc = sa_load_prm(&a, m);
    a.mo.feature_layer = e2h_prm_feature_layer(a.prm_obj); // (0 without a PRM)
    if (!rc) rc = cli_engine(&a.mo, m, &e);
    if (!rc) rc = sa_run(&a, m, e);
    e2h_engine_free(e); // detaches the PRM, which must outlive the engine
    e2h_prm_free(a.prm_obj);
    e2h_model_free(m);
    return rc;
}
