// engine/cli/bench.c — `e2h bench`: prefill and decode throughput in the spirit of llama-bench.
//
//   ppP: prefill of P tokens into an empty cache (e2h_seq_create + e2h_engine_sync), tokens/s =
//        P / time.
//   tgN: N decode steps, one token at a time (e2h_seq_extend with ignore_eos = 1) after a
//        one-token prompt, tokens/s = N / time.
//   -d D (llama-bench's --n-depth, "ppP @ dD"): each test runs on top of D tokens already in
//        the sequence (prefilled untimed): ppP times e2h_seq_append of P tokens and the sync,
//        tgN the N steps after the D-token prompt. This is where attention over a long context
//        shows (step-by-step solutions scored by a PRM are 500-2000 tokens).
// Each test runs once as a warm-up, then -r times; we report mean ± sample stdev. Only the
// public API is used, so this measures what a user of the library gets.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char *bench_usage =
    "usage: e2h bench -m MODEL [-p 512] [-n 128] [-r 5] [-t N] [--json] [options]\n"
    "Prefill (ppP: P tokens into an empty cache) and decode (tgN: N tokens one at a time)\n"
    "throughput in tokens/s, mean ± stdev over R repetitions after one warm-up.\n"
    "  -p P                prompt tokens for the prefill test (0 skips it; default 512)\n"
    "  -n N                decode steps for the generation test (0 skips it; default 128)\n"
    "  -r R                repetitions (default 5)\n"
    "  -d D                context depth: run each test after D tokens (default 0)\n"
    "  --json              print one JSON object instead of the table\n";

typedef struct {
    int n_prompt, n_gen, reps, json, depth;
    cli_model_opts mo;
} bench_opts;

typedef struct {
    const char *name; // "pp" or "tg"
    int n_tokens;
    double *tps;      // (reps) tokens/s of each repetition
    double *cpu_s;    // (reps) process CPU seconds of each repetition's timed part
    double mean, std;
} bench_result;

static double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// CPU seconds of every thread of the process: at 1 thread, time the test spent running
// (time slices taken by other processes on a shared core excluded, memory stalls included),
// which bench/decode_roofline.py compares with `membw --cpu-clock`.
static double bench_cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Deterministic pseudo-random token ids in [0, vocab). A different seed per repetition
// keeps the KV prefix index from serving a repetition out of the previous one's cache.
static void bench_fill_ids(int32_t *ids, int n, int vocab, uint64_t seed) {
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 12345;
    for (int i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((s >> 33) % (uint64_t)vocab);
    }
}

static int bench_fail_engine(e2h_engine *e, const char *what, e2h_status st) {
    return cli_fail("bench: %s: %s (%s)", what, e2h_engine_last_error(e), e2h_status_name(st));
}

// One prefill of n tokens (after `depth` untimed ones); *secs gets the wall time of the
// e2h_seq_create (depth 0) or e2h_seq_append call and the sync that computes it (appended
// tokens' log-probs off: like llama-bench, only the last token's logits). ids holds depth + n.
static int bench_pp_once(e2h_engine *e, int32_t *ids, int depth, int n, int vocab, uint64_t seed,
                         double *secs, double *cpu) {
    bench_fill_ids(ids, depth + n, vocab, seed);
    e2h_sampling sp = e2h_sampling_default();
    e2h_seq *s = NULL;
    e2h_status st = depth ? e2h_seq_create(e, ids, depth, &sp, &s) : E2H_OK;
    if (!st && s) st = e2h_engine_sync(e, &s, 1);
    if (st) {
        if (s) e2h_seq_release(e, s);
        return bench_fail_engine(e, "depth prefill", st);
    }
    e2h_append_opts ao = e2h_append_opts_default();
    ao.logprobs = 0;
    double t0 = bench_now(), c0 = bench_cpu_now();
    st = depth ? e2h_seq_append_ex(e, s, ids + depth, n, &ao) : e2h_seq_create(e, ids, n, &sp, &s);
    if (!st) st = e2h_engine_sync(e, &s, 1);
    *secs = bench_now() - t0;
    *cpu = bench_cpu_now() - c0;
    if (s) e2h_seq_release(e, s);
    if (st) return bench_fail_engine(e, "prefill", st);
    return 0;
}

// n decode steps after a prompt of max(depth, 1) tokens (ids holds them); *secs gets the
// wall time of the extend call.
static int bench_tg_once(e2h_engine *e, int32_t *ids, int depth, int n, int vocab, uint64_t seed,
                         double *secs, double *cpu) {
    const int n_prompt = depth > 1 ? depth : 1;
    bench_fill_ids(ids, n_prompt, vocab, seed);
    e2h_sampling sp = e2h_sampling_default(); // greedy: no sampling cost worth measuring
    e2h_seq *s = NULL;
    e2h_status st = e2h_seq_create(e, ids, n_prompt, &sp, &s);
    if (!st) st = e2h_engine_sync(e, &s, 1); // the prompt is not part of the timing
    if (st) {
        if (s) e2h_seq_release(e, s);
        return bench_fail_engine(e, "decode prompt", st);
    }
    e2h_stop stop = {.max_tokens = n, .stop_strings = NULL, .n_stop_strings = 0, .ignore_eos = 1};
    double t0 = bench_now(), c0 = bench_cpu_now();
    st = e2h_seq_extend(e, &s, 1, &stop);
    *secs = bench_now() - t0;
    *cpu = bench_cpu_now() - c0;
    int got = e2h_seq_len(s) - e2h_seq_n_prompt(s);
    e2h_seq_release(e, s);
    if (st) return bench_fail_engine(e, "decode", st);
    if (got != n) return cli_fail("bench: decode produced %d tokens, want %d", got, n);
    return 0;
}

static void bench_stats(bench_result *r, int reps) {
    double sum = 0, sq = 0;
    for (int i = 0; i < reps; i++) sum += r->tps[i];
    r->mean = sum / reps;
    for (int i = 0; i < reps; i++) sq += (r->tps[i] - r->mean) * (r->tps[i] - r->mean);
    r->std = reps > 1 ? sqrt(sq / (reps - 1)) : 0.0;
}

// Runs one test (warm-up + reps). Repetition i uses seed i + 1 (warm-up: seed 0).
static int bench_run(e2h_engine *e, const bench_opts *o, int vocab, bench_result *r) {
    int is_pp = !strcmp(r->name, "pp");
    int32_t *ids = malloc((size_t)(o->depth + r->n_tokens + 1) * sizeof *ids);
    if (!ids) return cli_fail("bench: out of memory");
    int rc = 0;
    for (int i = 0; i <= o->reps && !rc; i++) {
        double secs = 0, cpu = 0;
        rc = is_pp ? bench_pp_once(e, ids, o->depth, r->n_tokens, vocab, (uint64_t)i, &secs, &cpu)
                   : bench_tg_once(e, ids, o->depth, r->n_tokens, vocab, (uint64_t)i + 1000, &secs,
                                   &cpu);
        if (!rc && i > 0) {
            r->tps[i - 1] = r->n_tokens / (secs > 0 ? secs : 1e-9);
            r->cpu_s[i - 1] = cpu;
        }
    }
    free(ids);
    if (!rc) bench_stats(r, o->reps);
    return rc;
}

static const char *bench_basename(const char *p) {
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') n--; // "dir/" names the directory
    const char *b = p;
    for (size_t i = 0; i + 1 < n; i++)
        if (p[i] == '/') b = p + i + 1;
    return b;
}

static void bench_print_json(const bench_opts *o, const e2h_model_info *mi,
                             const bench_result *res, int n_res) {
    printf("{\"model\": ");
    cli_json_string(stdout, o->mo.model, strlen(o->mo.model));
    printf(", \"arch\": ");
    cli_json_string(stdout, mi->arch, strlen(mi->arch));
    printf(", \"source\": \"%s\", \"weight_type\": \"%s\", \"quant\": \"%s\", \"n_params\": %lld, "
           "\"weight_bytes\": %zu, \"n_threads\": %d, \"kernels\": \"%s\", \"reps\": %d",
           mi->source, mi->weight_type, o->mo.quant ? o->mo.quant : "none",
           (long long)mi->n_params, mi->weight_bytes, o->mo.n_threads,
           o->mo.kernels ? o->mo.kernels : "auto", o->reps);
    for (int k = 0; k < n_res; k++) {
        const bench_result *r = &res[k];
        printf(", \"%s\": {\"test\": \"%s%d\", \"n_tokens\": %d, \"n_depth\": %d, \"tps_mean\": %.3f, "
               "\"tps_std\": %.3f, \"tps\": [",
               r->name, r->name, r->n_tokens, r->n_tokens, o->depth, r->mean, r->std);
        for (int i = 0; i < o->reps; i++) printf("%s%.3f", i ? ", " : "", r->tps[i]);
        printf("], \"cpu_s\": [");
        for (int i = 0; i < o->reps; i++) printf("%s%.4f", i ? ", " : "", r->cpu_s[i]);
        printf("]}");
    }
    printf("}\n");
}

static void bench_print_table(const bench_opts *o, const e2h_model_info *mi,
                              const bench_result *res, int n_res) {
    char test[48];
    printf("| %-32s | %9s | %8s | %-6s | %7s | %-13s | %20s |\n", "model", "size", "params",
           "type", "threads", "test", "t/s");
    printf("| %.32s | %.9s | %.8s | %.6s | %.7s | %.13s | %.20s |\n", "--------------------------------",
           "---------:", "--------:", "------", "------:", "-------------", "-------------------:");
    for (int k = 0; k < n_res; k++) {
        int len = snprintf(test, sizeof test, "%s%d", res[k].name, res[k].n_tokens);
        if (o->depth) snprintf(test + len, sizeof test - (size_t)len, " @ d%d", o->depth);
        printf("| %-32.32s | %5.1f MiB | %6.1f M | %-6s | %7d | %-13s | %10.2f ± %7.2f |\n",
               bench_basename(o->mo.model), mi->weight_bytes / 1048576.0, mi->n_params / 1e6,
               mi->weight_type, o->mo.n_threads, test, res[k].mean, res[k].std);
    }
}

static int bench_parse(bench_opts *o, int argc, char **argv) {
    long x;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_opts_parse(&o->mo, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("%s%s", bench_usage, CLI_MODEL_OPTS_HELP);
            return -1;
        } else if (!strcmp(a, "-p") || !strcmp(a, "-n") || !strcmp(a, "-r") || !strcmp(a, "-d")) {
            long hi = a[1] == 'r' ? 1000 : 1 << 20;
            if (cli_parse_int(a, v, a[1] == 'r' ? 1 : 0, hi, &x)) return 2;
            if (a[1] == 'p') o->n_prompt = (int)x;
            else if (a[1] == 'n') o->n_gen = (int)x;
            else if (a[1] == 'd') o->depth = (int)x;
            else o->reps = (int)x;
            i++;
        } else {
            return cli_fail("bench: unknown option or missing value '%s' (see e2h bench --help)",
                            a);
        }
    }
    if (!o->mo.model) return cli_fail("bench: -m MODEL is required");
    if (o->n_prompt == 0 && o->n_gen == 0) return cli_fail("bench: -p and -n are both 0");
    return 0;
}

int cli_bench(int argc, char **argv) {
    bench_opts o = {.n_prompt = 512, .n_gen = 128, .reps = 5};
    cli_model_opts_init(&o.mo);
    int rc = bench_parse(&o, argc, argv);
    if (rc) return rc < 0 ? 0 : rc;
    e2h_model *m;
    e2h_engine *e;
    if (cli_open(&o.mo, &m, &e)) return 2;
    e2h_model_info mi;
    e2h_model_get_info(m, &mi);
    const int64_t tg_ctx = (int64_t)(o.depth > 1 ? o.depth : 1) + o.n_gen;
    if ((int64_t)o.depth + o.n_prompt > mi.max_ctx || tg_ctx > mi.max_ctx) {
        e2h_engine_free(e);
        e2h_model_free(m);
        return cli_fail("bench: -d %d with -p %d / -n %d exceeds the model's context (%d)", o.depth,
                        o.n_prompt, o.n_gen, mi.max_ctx);
    }
    bench_result res[2];
    int n_res = 0;
    if (o.n_prompt > 0) res[n_res++] = (bench_result){.name = "pp", .n_tokens = o.n_prompt};
    if (o.n_gen > 0) res[n_res++] = (bench_result){.name = "tg", .n_tokens = o.n_gen};
    for (int k = 0; k < n_res && !rc; k++) {
        res[k].tps = calloc((size_t)o.reps, sizeof(double));
        res[k].cpu_s = calloc((size_t)o.reps, sizeof(double));
        rc = res[k].tps && res[k].cpu_s ? bench_run(e, &o, mi.vocab_size, &res[k])
                                        : cli_fail("out of memory");
    }
    if (!rc) {
        if (o.json) bench_print_json(&o, &mi, res, n_res);
        else bench_print_table(&o, &mi, res, n_res);
    }
    for (int k = 0; k < n_res; k++) {
        free(res[k].tps);
        free(res[k].cpu_s);
    }
    e2h_engine_free(e);
    e2h_model_free(m);
    return rc;
}
