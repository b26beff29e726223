// bench/membw.c — memory read bandwidth probe: the roofline for decode.
//
// Decoding one token of a dense model reads every weight once, so tokens/s can never beat
// (read bandwidth) / (weight bytes per token). This program measures that bandwidth the way a
// well-written matvec kernel reads: every thread walks its own slice of a buffer much larger
// than L3 through several independent streams with wide (AVX-512) loads and many
// accumulators. A single-accumulator scalar loop is latency-bound and under-reads DRAM by
// about half, so it is reported too (kernel "naive") to show why the multi-stream loop matters.
//
//   build/bench/membw [--size-mib 1024] [--l3-mib 20] [--reps 7] [--threads 1,2] [--json]
//
// Reports GB/s (1e9 bytes/s), best of --reps runs, for a DRAM-sized buffer and an
// L3-resident one. --json prints one machine-readable line at the end (bench/vs_llamacpp.py
// reads it). --cpu-clock times each thread by its own CPU clock instead of the wall clock
// (GB/s = bytes / the slowest thread's CPU seconds): on a core shared with other processes the
// time slices they take do not count, so the figure is the bandwidth while running, comparable
// with a decode timed the same way (bench/decode_roofline.py); memory stalls still count.
#include <errno.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEMBW_MAX_THREADS 64
#define MEMBW_STREAMS 4 // independent address streams per thread (engages more prefetchers)

enum membw_kernel { MEMBW_AVX512, MEMBW_AVX2, MEMBW_SCALAR, MEMBW_NAIVE, MEMBW_N_KERNELS };
static const char *const membw_kernel_names[MEMBW_N_KERNELS] = {"avx512", "avx2", "scalar",
                                                                "naive"};

// Reads n bytes from p; n is a multiple of MEMBW_STREAMS * 128. Returns a value derived from
// every byte so the compiler cannot drop the loads.
typedef uint64_t (*membw_read_fn)(const uint8_t *p, size_t n);

__attribute__((target("avx512f"))) static uint64_t membw_read_avx512(const uint8_t *p,
                                                                       size_t n) {
    // 4 streams x 2 loads of 64 bytes each per iteration, 8 accumulators: enough loads in
    // flight to cover DRAM latency; integer adds keep the dependency chains 1 cycle long.
    size_t q = n / MEMBW_STREAMS;
    const uint8_t *s0 = p, *s1 = p + q, *s2 = p + 2 * q, *s3 = p + 3 * q;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0,
            a6 = a0, a7 = a0;
    for (size_t i = 0; i < q; i += 128) {
        a0 = _mm512_add_epi64(a0, _mm512_load_si512((const void *)(s0 + i)));
        a1 = _mm512_add_epi64(a1, _mm512_load_si512((const void *)(s0 + i + 64)));
        a2 = _mm512_add_epi64(a2, _mm512_load_si512((const void *)(s1 + i)));
        a3 = _mm512_add_epi64(a3, _mm512_load_si512((const void *)(s1 + i + 64)));
        a4 = _mm512_add_epi64(a4, _mm512_load_si512((const void *)(s2 + i)));
        a5 = _mm512_add_epi64(a5, _mm512_load_si512((const void *)(s2 + i + 64)));
        a6 = _mm512_add_epi64(a6, _mm512_load_si512((const void *)(s3 + i)));
        a7 = _mm512_add_epi64(a7, _mm512_load_si512((const void *)(s3 + i + 64)));
    }
    __m512i s = _mm512_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a0, a1),
                                                  _mm512_add_epi64(a2, a3)),
                                 _mm512_add_epi64(_mm512_add_epi64(a4, a5),
                                                  _mm512_add_epi64(a6, a7)));
    // unsigned horizontal sum: _mm512_reduce_add_epi64 adds as signed (UB on overflow)
    uint64_t lanes[8], sum = 0;
    _mm512_storeu_si512((void *)lanes, s);
    for (int k = 0; k < 8; k++) sum += lanes[k];
    return sum;
}

__attribute__((target("avx2"))) static uint64_t membw_read_avx2(const uint8_t *p, size_t n) {
    size_t q = n / MEMBW_STREAMS;
    const uint8_t *s0 = p, *s1 = p + q, *s2 = p + 2 * q, *s3 = p + 3 * q;
    __m256i a[8];
    for (int k = 0; k < 8; k++) a[k] = _mm256_setzero_si256();
    for (size_t i = 0; i < q; i += 128) {
        const uint8_t *base[4] = {s0 + i, s1 + i, s2 + i, s3 + i};
        for (int k = 0; k < 4; k++) {
            a[2 * k] = _mm256_add_epi64(a[2 * k],
                                        _mm256_load_si256((const __m256i *)base[k]) );
            a[2 * k] = _mm256_add_epi64(a[2 * k],
                                        _mm256_load_si256((const __m256i *)(base[k] + 32)));
            a[2 * k + 1] = _mm256_add_epi64(a[2 * k + 1],
                                            _mm256_load_si256((const __m256i *)(base[k] + 64)));
            a[2 * k + 1] = _mm256_add_epi64(a[2 * k + 1],
                                            _mm256_load_si256((const __m256i *)(base[k] + 96)));
        }
    }
    uint64_t out[4], sum = 0;
    for (int k = 1; k < 8; k++) a[0] = _mm256_add_epi64(a[0], a[k]);
    _mm256_storeu_si256((__m256i *)out, a[0]);
    for (int k = 0; k < 4; k++) sum += out[k];
    return sum;
}

static uint64_t membw_read_scalar(const uint8_t *p, size_t n) {
    // portable fallback: 8 independent 64-bit accumulators
    const uint64_t *w = (const uint64_t *)(const void *)p;
    uint64_t a[8] = {0};
    for (size_t i = 0; i < n / 8; i += 8)
        for (int k = 0; k < 8; k++) a[k] += w[i + k];
    return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}

static uint64_t membw_read_naive(const uint8_t *p, size_t n) {
    // the loop people write first: one float accumulator, one stream. Each add waits for
    // the previous one (FP add latency), so few cache lines are in flight.
    const float *f = (const float *)(const void *)p;
    float acc = 0.0f;
    for (size_t i = 0; i < n / sizeof(float); i++) acc += f[i];
    uint64_t bits = 0;
    memcpy(&bits, &acc, sizeof(acc));
    return bits;
}

static int membw_kernel_supported(enum membw_kernel k) {
    __builtin_cpu_init();
    if (k == MEMBW_AVX512) return __builtin_cpu_supports("avx512f");
    if (k == MEMBW_AVX2) return __builtin_cpu_supports("avx2");
    return 1;
}

static membw_read_fn membw_kernel_fn(enum membw_kernel k) {
    switch (k) {
    case MEMBW_AVX512: return membw_read_avx512;
    case MEMBW_AVX2: return membw_read_avx2;
    case MEMBW_SCALAR: return membw_read_scalar;
    default: return membw_read_naive;
    }
}

static int membw_cpu_clock = 0; // set once by main before any thread starts

static double membw_now(void) {
    struct timespec ts;
    clock_gettime(membw_cpu_clock ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct membw_worker {
    const uint8_t *p; // this thread's slice
    size_t n;         // bytes in the slice
    int passes;       // how many times to read it (small buffers: many, to time reliably)
    membw_read_fn fn;
    pthread_barrier_t *start;
    double t0, t1;
    uint64_t sink;
};

static void *membw_worker_main(void *arg) {
    struct membw_worker *w = arg;
    pthread_barrier_wait(w->start);
    w->t0 = membw_now();
    uint64_t s = 0;
    for (int i = 0; i < w->passes; i++) s += w->fn(w->p, w->n);
    w->t1 = membw_now();
    w->sink = s;
    return NULL;
}

// One timed run: n_threads threads read disjoint slices of buf concurrently. Returns GB/s
// over the wall time from the first start to the last finish, or a negative value on error.
static double membw_run_once(const uint8_t *buf, size_t size, int passes, int n_threads,
                             membw_read_fn fn, uint64_t *sink) {
    pthread_t tid[MEMBW_MAX_THREADS];
    struct membw_worker w[MEMBW_MAX_THREADS];
    pthread_barrier_t start;
    size_t unit = (size_t)MEMBW_STREAMS * 128;
    size_t slice = size / (size_t)n_threads / unit * unit; // every slice a whole number of units
    if (slice == 0 || pthread_barrier_init(&start, NULL, (unsigned)n_threads) != 0) return -1;
    int started = 0;
    for (int t = 0; t < n_threads; t++) {
        w[t] = (struct membw_worker){.p = buf + (size_t)t * slice, .n = slice, .passes = passes,
                                     .fn = fn, .start = &start};
        if (pthread_create(&tid[t], NULL, membw_worker_main, &w[t]) != 0) break;
        started++;
    }
    if (started != n_threads) {
        // the barrier can never open: cannot recover cleanly, so give up loudly
        fprintf(stderr, "membw: pthread_create failed after %d threads\n", started);
        exit(1);
    }
    double t0 = 1e300, t1 = 0, cpu = 0;
    for (int t = 0; t < n_threads; t++) {
        pthread_join(tid[t], NULL);
        if (w[t].t0 < t0) t0 = w[t].t0;
        if (w[t].t1 > t1) t1 = w[t].t1;
        if (w[t].t1 - w[t].t0 > cpu) cpu = w[t].t1 - w[t].t0;
        *sink += w[t].sink;
    }
    pthread_barrier_destroy(&start);
    double bytes = (double)slice * (double)n_threads * (double)passes;
    // per-thread CPU clocks have no common origin: the slowest thread's own span
    return bytes / (membw_cpu_clock ? cpu : t1 - t0) / 1e9;
}

// Best of reps runs (the best run is the least disturbed by other processes).
static double membw_best(const uint8_t *buf, size_t size, int passes, int n_threads,
                         membw_read_fn fn, int reps, uint64_t *sink) {
    double best = -1;
    for (int r = 0; r < reps; r++) {
        double g = membw_run_once(buf, size, passes, n_threads, fn, sink);
        if (g > best) best = g;
    }
    return best;
}

static uint8_t *membw_alloc(size_t size) {
    // 2 MiB alignment lets transparent huge pages back the buffer (fewer TLB misses, as
    // a mmapped model would get with THP); the memset faults every page in before timing.
    void *p = NULL;
    if (posix_memalign(&p, (size_t)2 << 20, size) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, size, MADV_HUGEPAGE);
#endif
    // small non-zero pattern so the float "naive" kernel sums finite values
    memset(p, 0x01, size);
    return p;
}

struct membw_opts {
    size_t size_mib, l3_mib;
    int reps;
    int threads[MEMBW_MAX_THREADS];
    int n_threads_list;
    int json;
    int all_kernels;
    int cpu_clock;
};

static int membw_parse_threads(const char *s, struct membw_opts *o) {
    o->n_threads_list = 0;
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 1 || v > MEMBW_MAX_THREADS ||
            o->n_threads_list == MEMBW_MAX_THREADS)
            return -1;
        o->threads[o->n_threads_list++] = (int)v;
        s = end;
        if (*s == ',') s++;
        else if (*s) return -1;
    }
    return o->n_threads_list > 0 ? 0 : -1;
}

static long membw_parse_long(const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) return -1;
    return v;
}

static void membw_usage(void) {
    fprintf(stderr,
            "usage: membw [--size-mib N (1024)] [--l3-mib N (20)] [--reps N (7)]\n"
            "             [--threads LIST (default 1,nproc)]\n"
            "             [--all-kernels] [--cpu-clock] [--json]\n");
}

static int membw_parse_args(int argc, char **argv, struct membw_opts *o) {
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1) ncpu = 1;
    if (ncpu > MEMBW_MAX_THREADS) ncpu = MEMBW_MAX_THREADS;
    *o = (struct membw_opts){.size_mib = 1024, .l3_mib = 20, .reps = 7};
    o->threads[o->n_threads_list++] = 1;
    if (ncpu > 1) o->threads[o->n_threads_list++] = (int)ncpu;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x;
        if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "--all-kernels")) o->all_kernels = 1;
        else if (!strcmp(a, "--cpu-clock")) o->cpu_clock = 1;
        else if (!strcmp(a, "--size-mib") && v && (x = membw_parse_long(v, 1, 1 << 20)) > 0)
            o->size_mib = (size_t)x, i++;
        else if (!strcmp(a, "--l3-mib") && v && (x = membw_parse_long(v, 0, 1 << 16)) >= 0)
            o->l3_mib = (size_t)x, i++;
        else if (!strcmp(a, "--reps") && v && (x = membw_parse_long(v, 1, 1000)) > 0)
            o->reps = (int)x, i++;
        else if (!strcmp(a, "--threads") && v && membw_parse_threads(v, o) == 0) i++;
        else {
            fprintf(stderr, "membw: bad argument '%s'%s\n", a, v ? "" : " (missing value?)");
            return -1;
        }
    }
    return 0;
}

// Measures one buffer size for every thread count; fills gbs[t].
static int membw_measure(const char *label, size_t size, int passes, enum membw_kernel k,
                         const struct membw_opts *o, double *gbs, uint64_t *sink) {
    uint8_t *buf = membw_alloc(size);
    if (!buf) {
        fprintf(stderr, "membw: cannot allocate %zu MiB for the %s buffer\n", size >> 20, label);
        return -1;
    }
    for (int t = 0; t < o->n_threads_list; t++) {
        gbs[t] = membw_best(buf, size, passes, o->threads[t], membw_kernel_fn(k), o->reps, sink);
        printf("%-6s %-7s %8zu MiB  %2d thread%s  %7.2f GB/s\n", label, membw_kernel_names[k],
               size >> 20, o->threads[t], o->threads[t] == 1 ? " " : "s", gbs[t]);
        fflush(stdout);
    }
    free(buf);
    return 0;
}

static void membw_print_json(const struct membw_opts *o, enum membw_kernel k,
                             const double *dram, const double *l3) {
    printf("{\"bench\":\"membw\",\"kernel\":\"%s\",\"size_mib\":%zu,\"l3_mib\":%zu,\"reps\":%d,"
           "\"clock\":\"%s\",\"dram_gbs\":{",
           membw_kernel_names[k], o->size_mib, o->l3_mib, o->reps, o->cpu_clock ? "cpu" : "wall");
    for (int t = 0; t < o->n_threads_list; t++)
        printf("%s\"%d\":%.3f", t ? "," : "", o->threads[t], dram[t]);
    printf("},\"l3_gbs\":{");
    for (int t = 0; o->l3_mib && t < o->n_threads_list; t++)
        printf("%s\"%d\":%.3f", t ? "," : "", o->threads[t], l3[t]);
    printf("}}\n");
}

int main(int argc, char **argv) {
    struct membw_opts o;
    if (membw_parse_args(argc, argv, &o) != 0) {
        membw_usage();
        return 2;
    }
    membw_cpu_clock = o.cpu_clock;
    enum membw_kernel best = membw_kernel_supported(MEMBW_AVX512) ? MEMBW_AVX512
                             : membw_kernel_supported(MEMBW_AVX2) ? MEMBW_AVX2
                                                                  : MEMBW_SCALAR;
    double dram[MEMBW_MAX_THREADS] = {0}, l3[MEMBW_MAX_THREADS] = {0}, other[MEMBW_MAX_THREADS];
    uint64_t sink = 0;
    size_t size = o.size_mib << 20, l3size = o.l3_mib << 20;
    if (membw_measure("dram", size, 1, best, &o, dram, &sink) != 0) return 1;
    // ~2 GB read per L3 run so the timer resolution and thread start-up do not matter
    int l3_passes = l3size ? (int)((size_t)2000000000 / l3size) + 1 : 0;
    if (l3size && membw_measure("l3", l3size, l3_passes, best, &o, l3, &sink) != 0) return 1;
    if (o.all_kernels) {
        for (int k = 0; k < MEMBW_N_KERNELS; k++) {
            if (k == (int)best || !membw_kernel_supported((enum membw_kernel)k)) continue;
            if (membw_measure("dram", size, 1, (enum membw_kernel)k, &o, other, &sink) != 0)
                return 1;
        }
    }
    if (o.json) membw_print_json(&o, best, dram, l3);
    // the sink keeps every load live; print it where nobody looks
    fprintf(stderr, "%s", sink == 42 ? " " : "");
    return 0;
}
