// tests/harness.h — a tiny test harness. Each test program defines tests with TEST(name),
// lists them in main with RUN(name), and ends with TEST_SUMMARY(), which prints
// "N passed, N failed" as its last line and returns non-zero if anything failed. A test that
// calls SKIP(reason) counts as neither (its reason is printed, and "N skipped" above the line).
#ifndef E2H_TESTS_HARNESS_H
#define E2H_TESTS_HARNESS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../include/e2h.h"

static int th_passed, th_failed, th_cur_failed, th_skipped, th_cur_skipped;

#define TEST(name) static void test_##name(void)
// E2H_TEST_ONLY=substring runs only the tests whose name contains it (e.g. one test of a
// slow binary under a sanitizer); the others are not run and not counted.
static inline int th_selected(const char *name) {
    const char *only = getenv("E2H_TEST_ONLY");
    return !only || !only[0] || strstr(name, only);
}
#define RUN(name)                                                                      \
    do {                                                                               \
        if (!th_selected(#name)) break;                                                \
        th_cur_failed = th_cur_skipped = 0;                                            \
        test_##name();                                                                 \
        if (th_cur_failed) { th_failed++; printf("FAIL %s\n", #name); }                \
        else if (th_cur_skipped) { th_skipped++; printf("skip %s\n", #name); }         \
        else { th_passed++; printf("ok   %s\n", #name); }                              \
        fflush(stdout);                                                                \
    } while (0)
#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);          \
            th_cur_failed = 1;                                                         \
        }                                                                              \
    } while (0)
#define CHECKF(cond, ...)                                                              \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            printf("  %s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);          \
            printf(__VA_ARGS__);                                                       \
            printf("\n");                                                              \
            th_cur_failed = 1;                                                         \
        }                                                                              \
    } while (0)
// Inside a test: it cannot run here (prints the reason; counted as skipped, not passed).
#define SKIP(...)                                                                      \
    do {                                                                               \
        printf("  skipped: ");                                                         \
        printf(__VA_ARGS__);                                                           \
        printf("\n");                                                                  \
        th_cur_skipped = 1;                                                            \
    } while (0)
#define TEST_SUMMARY()                                                                 \
    (th_skipped ? printf("%d skipped\n", th_skipped) : 0,                              \
     printf("%d passed, %d failed\n", th_passed, th_failed), th_failed ? 1 : 0)

// The whole file as a NUL-terminated buffer (caller frees); *len (if given) its size.
// NULL if it cannot be opened or read.
static inline char *th_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        b = malloc((size_t)n + 1);
        if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    }
    fclose(f);
    if (b) { b[n] = 0; if (len) *len = (size_t)n; }
    return b;
}

// A '<f4' C-order 2-D .npy array (numpy's np.save of the fixtures), malloc'd (caller frees);
// *rows, *cols its shape. NULL if the file is missing, in another format, or shorter than its
// shape says.
static inline float *th_read_npy(const char *path, int *rows, int *cols) {
    size_t len = 0;
    char *b = th_read_file(path, &len);
    if (!b || len < 10 || memcmp(b, "\x93NUMPY", 6)) { free(b); return NULL; }
    unsigned hl = (unsigned char)b[8] | ((unsigned char)b[9] << 8);
    char *hdr = b + 10;
    if (!strstr(hdr, "'<f4'") || !strstr(hdr, "'fortran_order': False")) { free(b); return NULL; }
    char *sh = strstr(hdr, "'shape': (");
    if (!sh || sscanf(sh, "'shape': (%d, %d)", rows, cols) != 2 || *rows < 0 || *cols < 0) {
        free(b);
        return NULL;
    }
    size_t n = (size_t)*rows * (size_t)*cols;
    if (10 + hl + n * 4 > len) { free(b); return NULL; }
    float *a = malloc(n * sizeof *a + 1); // (+1: an empty array is not a failure)
    if (a) memcpy(a, b + 10 + hl, n * 4);
    free(b);
    return a;
}

// Directory of shared data (../shared from the repo root), or NULL if absent: tests that
// need it print a clear "skipped" line and do not count as passed.
static inline const char *th_shared_dir(void) {
    const char *d = getenv("E2H_SHARED");
    if (!d) d = "../shared";
    FILE *f;
    char p[4096];
    snprintf(p, sizeof p, "%s/README.md", d);
    f = fopen(p, "r");
    if (!f) return NULL;
    fclose(f);
    return d;
}

// splitmix64: a small reproducible random stream for the randomized tests (seed: *s).
static inline uint64_t th_rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
// Uniform-ish integer in [0, n) (modulo bias is irrelevant at test sizes).
static inline int th_rng_int(uint64_t *s, int n) { return (int)(th_rng_next(s) % (uint64_t)n); }

// log softmax(l)[tok] over n logits, in double: the reference for recorded log-probs.
static inline double th_log_softmax_at(const float *l, int32_t n, int32_t tok) {
    double mx = l[0], sum = 0;
    for (int32_t i = 1; i < n; i++) mx = l[i] > mx ? l[i] : mx;
    for (int32_t i = 0; i < n; i++) sum += exp((double)l[i] - mx);
    return (double)l[tok] - mx - log(sum);
}

// An engine over m with options o, or NULL after printing why (the test's checks then fail).
static inline e2h_engine *th_engine(const e2h_model *m, const e2h_engine_opts *o) {
    char err[512];
    e2h_engine *e = NULL;
    if (e2h_engine_init(m, o, &e, err, sizeof err)) printf("  engine: %s\n", err);
    return e;
}

// A test program that cannot start (a fixture or an engine it needs fails): the summary line
// counts one failure. Returns main's exit status.
static inline int th_setup_failed(void) {
    printf("0 passed, 1 failed\n");
    return 1;
}

// For a test program's main: the fixture model at path, with its info in *info (if given). On
// failure prints why and th_setup_failed's line and returns NULL (main then returns 1).
static inline e2h_model *th_load_model(const char *path, e2h_model_info *info) {
    char err[512];
    e2h_model *m = NULL;
    if (e2h_model_load(path, NULL, &m, err, sizeof err)) {
        printf("cannot load %s: %s\n", path, err);
        th_setup_failed();
        return NULL;
    }
    if (info) e2h_model_get_info(m, info);
    return m;
}

#endif
