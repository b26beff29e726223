// bench/amx_peak.c — int8 multiply-accumulate peak: AMX TDPBSSD tiles vs AVX-512 VNNI.
//
// The ceiling for prefill / PRM scoring on the int8 kernels: "% of peak" in bench/README.md
// divides a kernel's multiply-accumulates per second by these. Beside bench/membw.c (the
// decode roofline).
//
//   build/bench/amx_peak [--threads 1,2] [--seconds 0.5] [--json]
//
// AMX: per thread, tiles configured as 4 accumulators C (16 × 16 int32) and 2 + 2 sources
// (16 × 64 int8), then a loop of 4 independent TDPBSSD (C_ij += A_i · B_j, 16·16·64 = 16384
// MACs each). VNNI: 12 independent VPDPBUSD zmm accumulators (64 MACs each). Reports tera
// multiply-accumulates per second (T MAC/s), best of 3 runs, threads running at once.
// Where the CPU, OS or permission lacks AMX (kernels/amx.c decides, as the engine does) the
// AMX figure is "absent" with the reason; nothing AMX is executed then.
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "kernels/amx.h"
#include "kernels/amx_emu.h" // amx_tilecfg

#define PEAK_MAX_THREADS 64

typedef struct {
    int amx;          // 1: AMX loop, 0: VNNI loop
    double seconds;   // target run time
    double macs;      // out: multiply-accumulates done
    double dt;        // out: seconds taken
    int32_t sink;     // out: keeps the results alive
} peak_job;

__attribute__((target("amx-tile,amx-int8"))) static void peak_amx(peak_job *j) {
    amx_tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) cfg.rows[i] = 16, cfg.colsb[i] = 64;
    int8_t src[16 * 64] __attribute__((aligned(64)));
    int32_t out[16 * 16] __attribute__((aligned(64)));
    for (int i = 0; i < 16 * 64; i++) src[i] = (int8_t)(i * 7 % 13 - 6);
    __asm__ volatile("" ::: "memory"); // the intrinsics do not declare what memory they read
    _tile_loadconfig(&cfg);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    __asm__ volatile("" ::: "memory");
    _tile_loadd(4, src, 64);
    _tile_loadd(5, src, 64);
    _tile_loadd(6, src, 64);
    _tile_loadd(7, src, 64);
    const int64_t chunk = 1 << 14;
    int64_t iters = 0;
    const double t0 = now_s();
    double t = t0;
    while (t - t0 < j->seconds) {
        for (int64_t i = 0; i < chunk; i++) {
            _tile_dpbssd(0, 4, 6);
            _tile_dpbssd(1, 4, 7);
            _tile_dpbssd(2, 5, 6);
            _tile_dpbssd(3, 5, 7);
        }
        iters += chunk;
        _tile_stored(0, out, 64); // wait for the chain before reading the clock
        t = now_s();
    }
    _tile_stored(3, out, 64);
    _tile_release();
    j->dt = t - t0;
    j->macs = (double)iters * 4 * 16 * 16 * 64;
    j->sink = out[0];
}

__attribute__((target("avx512f,avx512vnni"))) static void peak_vnni(peak_job *j) {
    // 12 accumulators in registers (named: an array ends up in memory); a and b opaque so the
    // compiler cannot fold the chain
    __m512i a = _mm512_set1_epi32(0x01020304), b = _mm512_set1_epi32(0x01FF0102);
    __asm__ volatile("" : "+v"(a), "+v"(b));
    __m512i c0 = _mm512_set1_epi32(0), c1 = _mm512_set1_epi32(1), c2 = _mm512_set1_epi32(2),
            c3 = _mm512_set1_epi32(3), c4 = _mm512_set1_epi32(4), c5 = _mm512_set1_epi32(5),
            c6 = _mm512_set1_epi32(6), c7 = _mm512_set1_epi32(7), c8 = _mm512_set1_epi32(8),
            c9 = _mm512_set1_epi32(9), c10 = _mm512_set1_epi32(10), c11 = _mm512_set1_epi32(11);
    const int64_t chunk = 1 << 16;
    int64_t iters = 0;
    const double t0 = now_s();
    double t = t0;
    while (t - t0 < j->seconds) {
        for (int64_t i = 0; i < chunk; i++) {
            c0 = _mm512_dpbusd_epi32(c0, a, b), c1 = _mm512_dpbusd_epi32(c1, a, b);
            c2 = _mm512_dpbusd_epi32(c2, a, b), c3 = _mm512_dpbusd_epi32(c3, a, b);
            c4 = _mm512_dpbusd_epi32(c4, a, b), c5 = _mm512_dpbusd_epi32(c5, a, b);
            c6 = _mm512_dpbusd_epi32(c6, a, b), c7 = _mm512_dpbusd_epi32(c7, a, b);
            c8 = _mm512_dpbusd_epi32(c8, a, b), c9 = _mm512_dpbusd_epi32(c9, a, b);
            c10 = _mm512_dpbusd_epi32(c10, a, b), c11 = _mm512_dpbusd_epi32(c11, a, b);
        }
        iters += chunk;
        t = now_s();
    }
    __m512i s = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(c0, c1), _mm512_add_epi32(c2, c3)),
                                 _mm512_add_epi32(_mm512_add_epi32(c4, c5), _mm512_add_epi32(c6, c7)));
    s = _mm512_add_epi32(s, _mm512_add_epi32(_mm512_add_epi32(c8, c9), _mm512_add_epi32(c10, c11)));
    int32_t lanes[16];
    _mm512_storeu_si512((void *)lanes, s);
    j->sink = lanes[0];
    j->dt = t - t0;
    j->macs = (double)iters * 12 * 64;
}

static void *peak_thread(void *p) {
    peak_job *j = p;
    if (j->amx) peak_amx(j);
    else peak_vnni(j);
    return NULL;
}

// Sum over nth threads running at once of MAC/s, best of 3; in T MAC/s.
static double peak_run(int amx, int nth, double seconds) {
    double best = 0;
    if (nth < 1 || nth > PEAK_MAX_THREADS) return -1;
    for (int rep = 0; rep < 3; rep++) {
        peak_job jobs[PEAK_MAX_THREADS] = {{0}};
        pthread_t th[PEAK_MAX_THREADS];
        for (int i = 0; i < nth; i++) {
            memset(&jobs[i], 0, sizeof jobs[i]);
            jobs[i].amx = amx, jobs[i].seconds = seconds;
            if (i && pthread_create(&th[i], NULL, peak_thread, &jobs[i])) return -1;
        }
        peak_thread(&jobs[0]);
        for (int i = 1; i < nth; i++) pthread_join(th[i], NULL);
        double sum = 0;
        for (int i = 0; i < nth; i++) sum += jobs[i].macs / jobs[i].dt;
        if (sum > best) best = sum;
    }
    return best / 1e12;
}

int main(int argc, char **argv) {
    const char *threads = "1,2";
    double seconds = 0.5;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--json")) json = 1;
        else {
            fprintf(stderr, "usage: amx_peak [--threads 1,2] [--seconds 0.5] [--json]\n");
            return 2;
        }
    }
    if (!(seconds > 0 && seconds <= 60)) {
        fprintf(stderr, "amx_peak: --seconds must be in (0, 60]\n");
        return 2;
    }
    kern_amx_cpu c;
    kern_amx_cpu_get(&c);
    char why[200];
    const int amx = kern_amx_detect(why, sizeof why);
    __builtin_cpu_init();
    const int vnni = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni");
    printf("cpuid: amx-tile %d amx-int8 %d amx-bf16 %d, osxsave %d, xcr0 tilecfg %d tiledata %d\n", c.cpuid_tile,
           c.cpuid_int8, c.cpuid_bf16, c.osxsave, c.xcr0_tilecfg, c.xcr0_tiledata);
    if (amx) printf("amx: usable (tile data permission granted)\n");
    else printf("amx: ABSENT: %s (no AMX figure on this machine)\n", why);
    if (!vnni) printf("avx512 vnni: absent\n");
    char js[2048];
    int jl = snprintf(js, sizeof js, "{\"amx\": %s, \"amx_why_not\": \"%s\", \"threads\": [", amx ? "true" : "false",
                      amx ? "" : why);
    int first = 1;
    for (const char *p = threads; *p;) {
        const int n = atoi(p);
        if (n >= 1 && n <= PEAK_MAX_THREADS) {
            const double tv = vnni ? peak_run(0, n, seconds) : 0;
            const double ta = amx ? peak_run(1, n, seconds) : 0;
            printf("%2d thread%s: vnni %.3f T MAC/s", n, n > 1 ? "s" : " ", tv);
            if (amx) printf(", amx tdpbssd %.3f T MAC/s (%.1fx vnni)", ta, tv > 0 ? ta / tv : 0);
            else printf(", amx absent");
            printf("\n");
            char av[32] = "null";
            if (amx) snprintf(av, sizeof av, "%.4f", ta);
            if (jl < (int)sizeof js)
                jl += snprintf(js + jl, sizeof js - (size_t)jl, "%s{\"n\": %d, \"vnni_tmacs\": %.4f, \"amx_tmacs\": %s}",
                               first ? "" : ", ", n, tv, av);
            first = 0;
        }
        while (*p && *p != ',') p++;
        if (*p == ',') p++;
    }
    if (json && jl < (int)sizeof js) printf("%s]}\n", js);
    return 0;
}
