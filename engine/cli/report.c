// engine/cli/report.c — `e2h report`: accuracy per method x N x level from results JSONL files.
//
//   e2h report results.jsonl [more shards...] [--json] [--png plot.png] [options]
//
// Input: results files (PLAN.md "6. Results JSONL"): a {"config": {...}} line, then one line per
// problem. Files whose configs agree on method, n, m and seed are shards of one run and are
// merged (a problem twice in one run is an error). All files must agree on the policy, PRM,
// protocol, problems file, temperature and max_tokens ("another configuration" is an error:
// the rows would not be comparable).
//
// Re-ranking runs (method maj, bon or weighted: N independent samples) give, from the one run,
// maj@k, BoN@k and weighted@k for k = 1, 2, 4, ... up to N (and N), each the UNBIASED estimate
// of the accuracy of that rule on a uniformly random size-k subset of the N samples, averaged
// over ALL C(N, k) subsets (Best-of-N: Lightman et al. 2023, weighted voting: Uesato et al. 2022
// and Sun et al. 2024; unbiased subset estimators as in Chen et al. 2021's pass@k):
//   - BoN@k (aggregation min by default): closed form over ranks. With samples sorted by score,
//     a tie group occupying ranks [a, b) (descending) holds the subset's best with probability
//     (C(N-a, k) - C(N-b, k)) / C(N, k), and then each member in the subset is equally likely.
//   - maj@k: all subsets enumerated when C(N, k) <= --exact-limit (default 20000), else an exact
//     dynamic program over answer groups (see maj_dp). Ties share the credit: 1/t each.
//   - weighted@k (sum of prod-aggregated scores per distinct answer key): all subsets enumerated
//     when C(N, k) <= --exact-limit; beyond that (N >= 18 at middle k) no exact method is known
//     to us, so it averages --weighted-samples (default 20000) uniformly drawn subsets with a
//     fixed seed and says so ("estimator": "sampled") in the JSON and table.
// Samples without an answer key never vote (a subset with no votes is wrong); samples without a
// score rank last. Other methods (greedy, beam, dvts, rebase) report the accuracy of `selected`
// at their N. Every number comes with a bootstrap 95% interval over problems (--bootstrap B
// resamples, default 1000, fixed --seed). Levels: per MATH level, easy (1-3), hard (4-5), all;
// problems without levels form one level "all" (the table says so).
// --json prints the numbers as JSON instead of the table; --png runs tools/plot_report.py on
// them (matplotlib) to plot accuracy against N per method, easy and hard side by side.
// Exit: 0, or 2 on bad input with a message naming the file and line.
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "jsonl.h"

static const char *REPORT_USAGE =
    "usage: e2h report RESULTS.jsonl [more shards...] [--json] [--png PLOT.png] [options]\n"
    "  Accuracy per method x N x level (easy 1-3, hard 4-5) of search/re-ranking results, with\n"
    "  bootstrap 95%% intervals over problems. maj@k, BoN@k and weighted@k come from one run of\n"
    "  N samples via unbiased estimators over all size-k subsets.\n"
    "  --json              print the numbers as JSON (instead of the table)\n"
    "  --png FILE          also plot accuracy vs N (runs tools/plot_report.py, matplotlib)\n"
    "  --bon-agg A         step-score aggregation for BoN: min (default), prod, mean, last\n"
    "  --weighted-agg A    aggregation for weighted voting: prod (default), min, mean, last\n"
    "  --bootstrap B       bootstrap resamples (default 1000; 0: no intervals)\n"
    "  --seed S            bootstrap / sampling seed (default 0)\n"
    "  --exact-limit L     enumerate all subsets when C(N,k) <= L (default 20000)\n"
    "  --weighted-samples S  subsets drawn for weighted@k beyond the limit (default 20000)\n";

enum { AGG_MIN, AGG_PROD, AGG_MEAN, AGG_LAST, AGG_N };
static const char *const agg_names[AGG_N] = {"min", "prod", "mean", "last"};
_Static_assert(AGG_N == JL_AGG_N, "the aggregations of jsonl.c");

// Problem lines: jl_report_problem_parse (engine/cli/jsonl.c, fuzzed by tests/fuzz/fuzz_jsonl.c).
typedef jl_report_sample rp_sample;
typedef jl_report_problem rp_problem;

typedef struct {
    char *method;
    long n, m, seed;
    const char *file;      // first file of the run
    rp_problem *p;
    int np, cap;
} rp_run;

typedef struct {
    rp_run *runs;
    int nr;
    cJSON *cfg0;           // the first file's config
    const char *file0;
    int any_level, any_nolevel;
} rp_data;

static char *rp_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static int rp_is_rerank(const char *m) { return !strcmp(m, "maj") || !strcmp(m, "bon") || !strcmp(m, "weighted"); }

// Fields that make two runs comparable.
static const char *const rp_cmp_fields[] = {"policy", "prm", "protocol", "problems", "temperature", "top_p",
                                            "max_tokens", "system", "fewshot", NULL};

static int rp_check_config(rp_data *d, cJSON *cfg, const char *file) {
    if (!d->cfg0) {
        d->cfg0 = cJSON_Duplicate(cfg, 1);
        d->file0 = file;
        return 0;
    }
    for (int i = 0; rp_cmp_fields[i]; i++) {
        cJSON *a = cJSON_GetObjectItemCaseSensitive(d->cfg0, rp_cmp_fields[i]);
        cJSON *b = cJSON_GetObjectItemCaseSensitive(cfg, rp_cmp_fields[i]);
        if (!a && !b) continue;
        if (!a || !b || !cJSON_Compare(a, b, 1)) {
            char *sa = a ? cJSON_PrintUnformatted(a) : NULL, *sb = b ? cJSON_PrintUnformatted(b) : NULL;
            cli_fail("report: %s:1: another configuration: '%s' is %s here but %s in %s", file, rp_cmp_fields[i],
                     sb ? sb : "missing", sa ? sa : "missing", d->file0);
            free(sa);
            free(sb);
            return -1;
        }
    }
    return 0;
}

static rp_run *rp_find_run(rp_data *d, const char *method, long n, long m, long seed, const char *file) {
    for (int i = 0; i < d->nr; i++)
        if (!strcmp(d->runs[i].method, method) && d->runs[i].n == n && d->runs[i].m == m && d->runs[i].seed == seed)
            return &d->runs[i];
    rp_run *r = realloc(d->runs, (size_t)(d->nr + 1) * sizeof *r);
    if (!r) return NULL;
    d->runs = r;
    rp_run *x = &d->runs[d->nr++];
    memset(x, 0, sizeof *x);
    x->method = rp_strdup(method);
    x->n = n, x->m = m, x->seed = seed, x->file = file;
    return x->method ? x : NULL;
}

static void rp_free_problem(rp_problem *p) { jl_report_problem_free(p); }

static int rp_read_file(rp_data *d, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return cli_fail("report: %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long ln = 0;
    int rc = 0, have_cfg = 0;
    rp_run *run = NULL;
    while ((len = getline(&line, &cap, f)) != -1) {
        ln++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        size_t sp = strspn(line, " \t");
        if ((ssize_t)sp == len) continue;  // blank line
        cJSON *j = cJSON_ParseWithLength(line, (size_t)len);
        if (!cJSON_IsObject(j)) {
            cJSON_Delete(j);
            rc = cli_fail("report: %s:%ld: malformed JSON line", path, ln);
            break;
        }
        if (!have_cfg) {
            cJSON *cfg = cJSON_GetObjectItemCaseSensitive(j, "config");
            if (!cJSON_IsObject(cfg)) {
                cJSON_Delete(j);
                rc = cli_fail("report: %s:%ld: the first line must be {\"config\": {...}}", path, ln);
                break;
            }
            jl_report_config rc0;
            const char *why = NULL;
            if (jl_report_config_parse(cfg, &rc0, &why)) {
                cJSON_Delete(j);
                rc = cli_fail("report: %s:%ld: %s", path, ln, why);
                break;
            }
            if (rp_check_config(d, cfg, path)) { cJSON_Delete(j); free(rc0.method); rc = 2; break; }
            run = rp_find_run(d, rc0.method, rc0.n, rc0.m, rc0.seed, path);
            free(rc0.method);
            cJSON_Delete(j);
            if (!run) { rc = cli_fail("report: out of memory"); break; }
            have_cfg = 1;
            continue;
        }
        if (cJSON_GetObjectItemCaseSensitive(j, "config")) {
            cJSON_Delete(j);
            rc = cli_fail("report: %s:%ld: a second config line", path, ln);
            break;
        }
        cJSON *meth = cJSON_GetObjectItemCaseSensitive(j, "method");
        if (cJSON_IsString(meth) && strcmp(meth->valuestring, run->method)) {
            cJSON_Delete(j);
            rc = cli_fail("report: %s:%ld: method '%s' but the config says '%s'", path, ln, meth->valuestring, run->method);
            break;
        }
        if (run->np == run->cap) {
            int nc = run->cap ? 2 * run->cap : 64;
            rp_problem *np = realloc(run->p, (size_t)nc * sizeof *np);
            if (!np) { cJSON_Delete(j); rc = cli_fail("report: out of memory"); break; }
            run->p = np, run->cap = nc;
        }
        rp_problem *p = &run->p[run->np];
        memset(p, 0, sizeof *p);
        const char *why = NULL;
        int has_level = 0;
        int bad = jl_report_problem_parse(j, p, &has_level, &why);
        cJSON_Delete(j);
        if (bad) {
            rp_free_problem(p);
            rc = cli_fail("report: %s:%ld: %s", path, ln, why);
            break;
        }
        for (int i = 0; i < run->np; i++)
            if (!strcmp(run->p[i].uid, p->uid)) {
                rc = cli_fail("report: %s:%ld: problem '%s' appears twice in the %s run (overlapping shards?)", path,
                              ln, p->uid, run->method);
                break;
            }
        if (rc) { rp_free_problem(p); break; }
        if (has_level) d->any_level = 1;
        else d->any_nolevel = 1;
        run->np++;
    }
    free(line);
    fclose(f);
    if (!rc && !have_cfg) rc = cli_fail("report: %s: empty (no config line)", path);
    return rc;
}

// ---------------------------------------------------------------- estimators

// C(n, k) as a double (exact below 2^53).
static double rp_binom(int n, int k) {
    if (k < 0 || k > n) return 0;
    if (k > n - k) k = n - k;
    double r = 1;
    for (int i = 1; i <= k; i++) r = r * (n - k + i) / i;
    return r < 9e15 ? round(r) : r;
}

// P(a uniformly random size-k subset of N lies inside a given s-element set) = C(s,k)/C(N,k).
static double rp_inside(int s, int k, int N) {
    if (s < k) return 0;
    double p = 1;
    for (int i = 0; i < k; i++) p *= (double)(s - i) / (N - i);
    return p;
}

static int rp_cmp_score_desc(const void *a, const void *b) {
    double x = ((const double *)a)[0], y = ((const double *)b)[0];
    return (x < y) - (x > y);
}

// BoN@k: closed form over ranks with tie groups (see the file comment).
static double est_bon(const rp_problem *p, int k, int agg) {
    int N = p->ns;
    double (*sc)[2] = malloc((size_t)N * sizeof *sc);
    if (!sc) return NAN;
    for (int i = 0; i < N; i++) sc[i][0] = p->s[i].score[agg], sc[i][1] = p->s[i].correct;
    qsort(sc, (size_t)N, sizeof *sc, rp_cmp_score_desc);
    double acc = 0;
    for (int a = 0; a < N;) {
        int b = a, nc = 0;
        while (b < N && (sc[b][0] == sc[a][0] || (isinf(sc[b][0]) && isinf(sc[a][0])))) nc += sc[b][1] > 0, b++;
        double pmax = rp_inside(N - a, k, N) - rp_inside(N - b, k, N);
        acc += pmax * nc / (b - a);
        a = b;
    }
    free(sc);
    return acc;
}

// Credit of one subset (indices idx[0..k)) under majority (agg < 0) or weighted voting: the
// answer group with the most votes (largest score sum) wins; t tied winners share the credit.
// sum and cnt are scratch arrays of n_groups.
static double rp_vote(const rp_problem *p, const int *idx, int k, int agg, double *sum, int *cnt) {
    for (int g = 0; g < p->n_groups; g++) sum[g] = 0, cnt[g] = 0;
    int any = 0;
    for (int i = 0; i < k; i++) {
        const rp_sample *s = &p->s[idx[i]];
        if (s->group < 0) continue;
        double w = agg < 0 ? 1.0 : s->score[agg];
        if (!isfinite(w)) w = 0;  // an unscored sample votes with weight 0
        sum[s->group] += w;
        cnt[s->group]++;
        any = 1;
    }
    if (!any) return 0;
    double best = -INFINITY;
    for (int g = 0; g < p->n_groups; g++)
        if (cnt[g] && sum[g] > best) best = sum[g];
    int t = 0, c = 0;
    for (int g = 0; g < p->n_groups; g++)
        if (cnt[g] && fabs(sum[g] - best) <= 1e-12 * fabs(best)) t++, c += p->group_correct[g];
    return t ? (double)c / t : 0;
}

// Enumerates all size-k subsets of N (N <= 64) and averages the vote credit.
static double est_vote_enum(const rp_problem *p, int k, int agg) {
    int N = p->ns, idx[64];
    double *sum = malloc((size_t)(p->n_groups ? p->n_groups : 1) * sizeof *sum);
    int *cnt = malloc((size_t)(p->n_groups ? p->n_groups : 1) * sizeof *cnt);
    if (!sum || !cnt) { free(sum); free(cnt); return NAN; }
    for (int i = 0; i < k; i++) idx[i] = i;
    double tot = 0;
    long n_sub = 0;
    for (;;) {
        tot += rp_vote(p, idx, k, agg, sum, cnt);
        n_sub++;
        int i = k - 1;
        while (i >= 0 && idx[i] == N - k + i) i--;
        if (i < 0) break;
        idx[i]++;
        for (int j = i + 1; j < k; j++) idx[j] = idx[j - 1] + 1;
    }
    free(sum);
    free(cnt);
    return tot / n_sub;
}

// splitmix64: the fixed-seed generator of the bootstrap and of sampled subsets.
static uint64_t rp_rng(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// Averages the vote credit over S uniformly drawn size-k subsets (partial Fisher-Yates).
static double est_vote_sampled(const rp_problem *p, int k, int agg, long S, uint64_t seed) {
    int N = p->ns;
    int *perm = malloc((size_t)N * sizeof *perm);
    double *sum = malloc((size_t)(p->n_groups ? p->n_groups : 1) * sizeof *sum);
    int *cnt = malloc((size_t)(p->n_groups ? p->n_groups : 1) * sizeof *cnt);
    if (!perm || !sum || !cnt) { free(perm); free(sum); free(cnt); return NAN; }
    for (int i = 0; i < N; i++) perm[i] = i;
    double tot = 0;
    for (long s = 0; s < S; s++) {
        for (int i = 0; i < k; i++) {
            int j = i + (int)(rp_rng(&seed) % (uint64_t)(N - i));
            int t = perm[i]; perm[i] = perm[j]; perm[j] = t;
        }
        tot += rp_vote(p, perm, k, agg, sum, cnt);
    }
    free(perm);
    free(sum);
    free(cnt);
    return tot / S;
}

// maj@k exactly by dynamic programming over answer groups. For each correct group g and each
// vote count v it gets, count the ways the other groups take the remaining k - v samples with
// at most v votes each, tracking t = how many tie with v (the null group, samples without an
// answer, is unconstrained); each such way credits 1/(t+1). Total over C(N, k).
// Cost O(n_groups^2 k^3) per problem and k in the worst case (all answers distinct).
static double est_maj_dp(const rp_problem *p, int k) {
    int N = p->ns, G = p->n_groups;
    int *cnt = calloc((size_t)(G ? G : 1), sizeof *cnt);
    double *dp = malloc((size_t)(k + 1) * (size_t)(k + 2) * sizeof *dp);
    double *nx = malloc((size_t)(k + 1) * (size_t)(k + 2) * sizeof *nx);
    if (!cnt || !dp || !nx) { free(cnt); free(dp); free(nx); return NAN; }
    int n_null = 0;
    for (int i = 0; i < N; i++) {
        if (p->s[i].group < 0) n_null++;
        else cnt[p->s[i].group]++;
    }
    int T = k + 1;  // t in [0, k]
#define DP(a, s, t) (a)[(size_t)(s) * (size_t)T + (size_t)(t)]
    double total = 0;
    for (int g = 0; g < G; g++) {
        if (!p->group_correct[g]) continue;
        for (int v = 1; v <= cnt[g] && v <= k; v++) {
            for (int i = 0; i < (k + 1) * T; i++) dp[i] = 0;
            DP(dp, 0, 0) = 1;
            for (int j = -1; j < G; j++) {  // j = -1: the null group
                if (j == g) continue;
                int nj = j < 0 ? n_null : cnt[j], lim = j < 0 ? nj : (nj < v ? nj : v);
                for (int i = 0; i < (k + 1) * T; i++) nx[i] = 0;
                for (int s = 0; s <= k - v; s++)
                    for (int t = 0; t < T; t++) {
                        double w = DP(dp, s, t);
                        if (w == 0) continue;
                        for (int x = 0; x <= lim && s + x <= k - v; x++) {
                            int tt = t + (j >= 0 && x == v);
                            if (tt >= T) continue;
                            DP(nx, s + x, tt) += w * rp_binom(nj, x);
                        }
                    }
                double *sw = dp; dp = nx; nx = sw;
            }
            double ways = 0;
            for (int t = 0; t < T; t++) ways += DP(dp, k - v, t) / (t + 1);
            total += rp_binom(cnt[g], v) * ways;
        }
    }
#undef DP
    free(cnt);
    free(dp);
    free(nx);
    return total / rp_binom(N, k);
}

typedef struct {
    int exact_limit;
    long weighted_samples;
    uint64_t seed;
    int bon_agg, w_agg;
} rp_opts;

// Which estimator a (rule, k, N) uses.
static const char *rp_estimator(const char *rule, int k, int N, const rp_opts *o) {
    if (!strcmp(rule, "bon")) return "closed-form";
    int small = N <= 64 && rp_binom(N, k) <= o->exact_limit;
    if (!strcmp(rule, "maj")) return small ? "exact-enumeration" : "exact-dp";
    return small ? "exact-enumeration" : "sampled";
}

static double rp_estimate(const rp_problem *p, const char *rule, int k, const rp_opts *o, int pi) {
    if (p->ns == 0) return 0;  // attempted, nothing sampled: wrong
    if (p->ns < k) return NAN;
    const char *e = rp_estimator(rule, k, p->ns, o);
    if (!strcmp(rule, "bon")) return est_bon(p, k, o->bon_agg);
    if (!strcmp(rule, "maj")) return !strcmp(e, "exact-dp") ? est_maj_dp(p, k) : est_vote_enum(p, k, -1);
    if (!strcmp(e, "sampled")) return est_vote_sampled(p, k, o->w_agg, o->weighted_samples, o->seed * 1000003u + (uint64_t)pi * 131 + (uint64_t)k);
    return est_vote_enum(p, k, o->w_agg);
}

// ---------------------------------------------------------------- buckets, bootstrap, output

enum { B_ALL, B_EASY, B_HARD, B_L1, B_N = B_L1 + 5 };
static const char *const bucket_names[B_N] = {"all", "easy", "hard", "L1", "L2", "L3", "L4", "L5"};
static int rp_in_bucket(int level, int b) {
    if (b == B_ALL) return 1;
    if (b == B_EASY) return level >= 1 && level <= 3;
    if (b == B_HARD) return level >= 4;
    return level == b - B_L1 + 1;
}

typedef struct { double acc, lo, hi; int n; } rp_cell;

static int rp_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Mean and bootstrap percentile interval of v[0..n).
static rp_cell rp_summarize(const double *v, int n, int B, uint64_t seed) {
    rp_cell c = {NAN, NAN, NAN, n};
    if (n == 0) return c;
    double s = 0;
    for (int i = 0; i < n; i++) s += v[i];
    c.acc = s / n;
    if (B <= 0) return c;
    double *m = malloc((size_t)B * sizeof *m);
    if (!m) return c;
    uint64_t st = seed ^ 0x2545f4914f6cdd1dULL;
    for (int b = 0; b < B; b++) {
        double t = 0;
        for (int i = 0; i < n; i++) t += v[rp_rng(&st) % (uint64_t)n];
        m[b] = t / n;
    }
    qsort(m, (size_t)B, sizeof *m, rp_cmp_double);
    int lo = (int)floor(0.025 * (B - 1)), hi = (int)ceil(0.975 * (B - 1));
    c.lo = m[lo], c.hi = m[hi];
    free(m);
    return c;
}

typedef struct {
    char label[64];
    const char *rule;        // maj | bon | weighted | selected
    const char *estimator;
    const rp_run *run;
    int k;
    rp_cell cell[B_N];
} rp_row;

static int rp_add_row(rp_row **rows, int *nrows, const rp_run *r, const char *label, const char *rule, int k,
                      const rp_opts *o, int B) {
    rp_row *nr = realloc(*rows, (size_t)(*nrows + 1) * sizeof *nr);
    if (!nr) return -1;
    *rows = nr;
    rp_row *row = &nr[(*nrows)++];
    memset(row, 0, sizeof *row);
    snprintf(row->label, sizeof row->label, "%s", label);
    row->rule = rule, row->run = r, row->k = k;
    row->estimator = !strcmp(rule, "selected") ? "selected" : rp_estimator(rule, k, (int)r->n, o);
    double *acc = malloc((size_t)(r->np ? r->np : 1) * sizeof *acc), *v = malloc((size_t)(r->np ? r->np : 1) * sizeof *v);
    if (!acc || !v) { free(acc); free(v); return -1; }
    for (int i = 0; i < r->np; i++)
        acc[i] = !strcmp(rule, "selected") ? (r->p[i].sel_correct > 0) : rp_estimate(&r->p[i], rule, k, o, i);
    for (int b = 0; b < B_N; b++) {
        int n = 0;
        for (int i = 0; i < r->np; i++)
            if (rp_in_bucket(r->p[i].level, b) && !isnan(acc[i])) v[n++] = acc[i];
        row->cell[b] = rp_summarize(v, n, B, o->seed + (uint64_t)b);
    }
    free(acc);
    free(v);
    return 0;
}

static void rp_json_num(FILE *f, double x) {
    if (isfinite(x)) fprintf(f, "%.6f", x);
    else fputs("null", f);
}

static void rp_write_json(FILE *f, const rp_data *d, const rp_row *rows, int nrows, int argc, char **argv,
                          const rp_opts *o, int B) {
    fprintf(f, "{\"files\": [");
    int first = 1;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') { if (strcmp(argv[i], "--json")) i++; continue; }
        fprintf(f, "%s", first ? "" : ", ");
        cli_json_string(f, argv[i], strlen(argv[i]));
        first = 0;
    }
    fprintf(f, "], \"levels\": %s, \"bon_agg\": \"%s\", \"weighted_agg\": \"%s\", ",
            d->any_level ? "true" : "false", agg_names[o->bon_agg], agg_names[o->w_agg]);
    fprintf(f, "\"bootstrap\": {\"resamples\": %d, \"seed\": %llu, \"ci\": 0.95}, ", B, (unsigned long long)o->seed);
    if (!d->any_level) fprintf(f, "\"note\": \"no problem has a level: one level 'all'\", ");
    else if (d->any_nolevel) fprintf(f, "\"note\": \"some problems have no level: counted in 'all' only\", ");
    fprintf(f, "\"rows\": [");
    for (int r = 0; r < nrows; r++) {
        const rp_row *w = &rows[r];
        fprintf(f, "%s\n  {\"method\": ", r ? "," : "");
        cli_json_string(f, w->label, strlen(w->label));
        fprintf(f, ", \"rule\": \"%s\", \"run_method\": ", w->rule);
        cli_json_string(f, w->run->method, strlen(w->run->method));
        fprintf(f, ", \"run_n\": %ld, \"run_file\": ", w->run->n);
        cli_json_string(f, w->run->file, strlen(w->run->file));
        fprintf(f, ", \"k\": %d, \"estimator\": \"%s\", \"buckets\": {", w->k, w->estimator);
        int fb = 1;
        for (int b = 0; b < B_N; b++) {
            if (!d->any_level && b != B_ALL) continue;
            const rp_cell *c = &w->cell[b];
            fprintf(f, "%s\"%s\": {\"acc\": ", fb ? "" : ", ", bucket_names[b]);
            rp_json_num(f, c->acc);
            fprintf(f, ", \"lo\": ");
            rp_json_num(f, c->lo);
            fprintf(f, ", \"hi\": ");
            rp_json_num(f, c->hi);
            fprintf(f, ", \"n\": %d}", c->n);
            fb = 0;
        }
        fprintf(f, "}}");
    }
    fprintf(f, "\n]}\n");
}

static void rp_print_table(FILE *f, const rp_data *d, const rp_row *rows, int nrows, const rp_opts *o, int B) {
    int np = 0;
    for (int i = 0; i < d->nr; i++) np = d->runs[i].np > np ? d->runs[i].np : np;
    fprintf(f, "e2h report: %d run(s), up to %d problems; accuracy %% with bootstrap 95%% interval (%d resamples)\n",
            d->nr, np, B);
    fprintf(f, "BoN aggregation: %s; weighted voting: sum of %s per answer\n", agg_names[o->bon_agg], agg_names[o->w_agg]);
    if (!d->any_level) fprintf(f, "note: no problem has a level: one level \"all\"\n");
    else if (d->any_nolevel) fprintf(f, "note: some problems have no level: they count in \"all\" only\n");
    fprintf(f, "%-12s %5s", "method", "N");
    for (int b = 0; b < B_N; b++) {
        if (!d->any_level && b != B_ALL) continue;
        fprintf(f, "  %-20s", b == B_EASY ? "easy (1-3)" : b == B_HARD ? "hard (4-5)" : bucket_names[b]);
    }
    fprintf(f, "\n");
    for (int r = 0; r < nrows; r++) {
        const rp_row *w = &rows[r];
        fprintf(f, "%-12s %5d", w->label, w->k);
        for (int b = 0; b < B_N; b++) {
            if (!d->any_level && b != B_ALL) continue;
            const rp_cell *c = &w->cell[b];
            char t[40];
            if (c->n == 0) snprintf(t, sizeof t, "-");
            else if (B > 0) snprintf(t, sizeof t, "%.1f (%.1f-%.1f)", 100 * c->acc, 100 * c->lo, 100 * c->hi);
            else snprintf(t, sizeof t, "%.1f", 100 * c->acc);
            fprintf(f, "  %-20s", t);
        }
        if (!strcmp(w->estimator, "sampled")) fprintf(f, "  (sampled subsets)");
        fprintf(f, "\n");
    }
    for (int i = 0; i < d->nr; i++)
        fprintf(f, "run %s (n=%ld, m=%ld, seed=%ld; %s...): %d problems\n", d->runs[i].method, d->runs[i].n,
                d->runs[i].m, d->runs[i].seed, d->runs[i].file, d->runs[i].np);
}

static int rp_parse_agg(const char *flag, const char *v, int *out) {
    for (int a = 0; a < AGG_N; a++)
        if (v && !strcmp(v, agg_names[a])) { *out = a; return 0; }
    cli_fail("report: %s: '%s' is not one of min, prod, mean, last", flag, v ? v : "");
    return -1;
}

// The plotting tool next to the executable's repository (../tools/plot_report.py from build/e2h).
static int rp_plot(const char *json_path, const char *png, const char *argv0) {
    char tool[4096] = "";
    const char *env = getenv("E2H_PLOT_TOOL");
    if (env) snprintf(tool, sizeof tool, "%s", env);
    else {
        char exe[4096];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) {
            exe[n] = 0;
            char *sl = strrchr(exe, '/');
            if (sl) *sl = 0;
            snprintf(tool, sizeof tool, "%s/../tools/plot_report.py", exe);
        }
        if (access(tool, R_OK)) snprintf(tool, sizeof tool, "tools/plot_report.py");
    }
    (void)argv0;
    if (access(tool, R_OK)) return cli_fail("report: --png: %s not found (set E2H_PLOT_TOOL)", tool);
    pid_t pid = fork();
    if (pid < 0) return cli_fail("report: --png: fork failed");
    if (pid == 0) {
        execlp("python3", "python3", tool, json_path, png, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return cli_fail("report: --png: %s failed (exit %d; is matplotlib installed?)", tool, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}

static int rp_cmp_uid(const void *a, const void *b) {
    return strcmp(((const rp_problem *)a)->uid, ((const rp_problem *)b)->uid);
}

int cli_report(int argc, char **argv) {
    rp_opts o = {20000, 20000, 0, AGG_MIN, AGG_PROD};
    int json = 0, B = 1000, nfiles = 0;
    const char *png = NULL;
    const char **files = calloc((size_t)argc, sizeof *files);
    if (!files) return cli_fail("report: out of memory");
    int rc = 0;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        long x;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(REPORT_USAGE, stdout); free(files); return 0; }
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--png")) { if (i + 1 >= argc) rc = cli_fail("report: --png needs a file"); else png = argv[++i]; }
        else if (!strcmp(a, "--bon-agg")) rc = rp_parse_agg(a, i + 1 < argc ? argv[++i] : NULL, &o.bon_agg) ? 2 : 0;
        else if (!strcmp(a, "--weighted-agg")) rc = rp_parse_agg(a, i + 1 < argc ? argv[++i] : NULL, &o.w_agg) ? 2 : 0;
        else if (!strcmp(a, "--bootstrap")) { if (cli_parse_int(a, i + 1 < argc ? argv[++i] : NULL, 0, 1000000, &x)) rc = 2; else B = (int)x; }
        else if (!strcmp(a, "--seed")) { if (cli_parse_int(a, i + 1 < argc ? argv[++i] : NULL, 0, 1L << 62, &x)) rc = 2; else o.seed = (uint64_t)x; }
        else if (!strcmp(a, "--exact-limit")) { if (cli_parse_int(a, i + 1 < argc ? argv[++i] : NULL, 0, 100000000, &x)) rc = 2; else o.exact_limit = (int)x; }
        else if (!strcmp(a, "--weighted-samples")) { if (cli_parse_int(a, i + 1 < argc ? argv[++i] : NULL, 1, 100000000, &x)) rc = 2; else o.weighted_samples = x; }
        else if (a[0] == '-' && a[1]) { fputs(REPORT_USAGE, stderr); rc = cli_fail("report: unknown option '%s'", a); }
        else files[nfiles++] = a;
    }
    if (!rc && nfiles == 0) { fputs(REPORT_USAGE, stderr); rc = cli_fail("report: no results file given"); }
    rp_data d;
    memset(&d, 0, sizeof d);
    for (int i = 0; i < nfiles && !rc; i++) rc = rp_read_file(&d, files[i]);
    rp_row *rows = NULL;
    int nrows = 0;
    for (int r = 0; r < d.nr && !rc; r++) {
        rp_run *run = &d.runs[r];
        if (run->np == 0) continue;
        // shards in any order give the same numbers (the bootstrap resamples by position)
        qsort(run->p, (size_t)run->np, sizeof *run->p, rp_cmp_uid);
        if (rp_is_rerank(run->method)) {
            // k goes up to the smallest sample count; problems with no samples at all count as wrong
            int Nmin = INT32_MAX, n_empty = 0;
            for (int i = 0; i < run->np; i++) {
                if (run->p[i].ns == 0) n_empty++;
                else if (run->p[i].ns < Nmin) Nmin = run->p[i].ns;
            }
            if (n_empty == run->np) { rc = cli_fail("report: %s: no problem of the %s run has samples", run->file, run->method); break; }
            if (n_empty) fprintf(stderr, "e2h: report: %d problem(s) of the %s run have no samples: counted as wrong\n", n_empty, run->method);
            if (Nmin < run->n) fprintf(stderr, "e2h: report: the %s run has problems with %d < n = %ld samples: k goes up to %d\n", run->method, Nmin, run->n, Nmin);
            int has_scores = 0;
            for (int i = 0; i < run->np && !has_scores; i++)
                for (int s = 0; s < run->p[i].ns; s++)
                    if (isfinite(run->p[i].s[s].score[o.bon_agg])) { has_scores = 1; break; }
            static const char *const rules[] = {"maj", "bon", "weighted"};
            for (int ru = 0; ru < 3 && !rc; ru++) {
                if (ru > 0 && !has_scores) continue;  // no PRM scores: majority voting only
                char label[64];
                int dup = 0;
                for (int q = 0; q < r; q++) dup += rp_is_rerank(d.runs[q].method);
                if (dup) snprintf(label, sizeof label, "%s#%d", rules[ru], dup + 1);
                else snprintf(label, sizeof label, "%s", rules[ru]);
                for (int k = 1;; k *= 2) {
                    int kk = k > Nmin ? Nmin : k;
                    if (rp_add_row(&rows, &nrows, run, label, rules[ru], kk, &o, B)) { rc = cli_fail("report: out of memory"); break; }
                    if (kk == Nmin) break;
                }
            }
        } else {
            if (rp_add_row(&rows, &nrows, run, run->method, "selected", (int)run->n, &o, B)) rc = cli_fail("report: out of memory");
        }
    }
    if (!rc) {
        if (json) rp_write_json(stdout, &d, rows, nrows, argc, argv, &o, B);
        else rp_print_table(stdout, &d, rows, nrows, &o, B);
        if (png) {
            char tmp[] = "/tmp/e2h_report_XXXXXX";
            int fd = mkstemp(tmp);
            FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
            if (!f) rc = cli_fail("report: cannot write a temporary file");
            else {
                rp_write_json(f, &d, rows, nrows, argc, argv, &o, B);
                fclose(f);
                rc = rp_plot(tmp, png, argv[0]);
                unlink(tmp);
                if (!rc) fprintf(stderr, "e2h: report: wrote %s\n", png);
            }
        }
    }
    for (int r = 0; r < d.nr; r++) {
        for (int i = 0; i < d.runs[r].np; i++) rp_free_problem(&d.runs[r].p[i]);
        free(d.runs[r].p);
        free(d.runs[r].method);
    }
    free(d.runs);
    cJSON_Delete(d.cfg0);
    free(rows);
    free(files);
    return rc;
}
