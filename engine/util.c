// engine/util.c — see util.h.
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "../kernels/ops.h"

void util_convert_to_f32(int type, const void *src, float *dst, int64_t n) {
    if (type == E2H_TYPE_F32) {
        memcpy(dst, src, (size_t)n * sizeof(float));
    } else if (type == E2H_TYPE_F16) {
        const e2h_f16 *s = src;
        for (int64_t i = 0; i < n; i++) dst[i] = kern_f16_to_f32(s[i]);
    } else if (type == E2H_TYPE_BF16) {
        const e2h_bf16 *s = src;
        for (int64_t i = 0; i < n; i++) dst[i] = kern_bf16_to_f32(s[i]);
    } else {
        ops_ref()->dequantize_row(type, src, dst, n);
    }
}

double util_time_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void *util_alloc_large(size_t bytes) {
    const size_t huge = (size_t)2 << 20;
    if (bytes > UTIL_ALLOC_LARGE_MAX) return NULL; // an impossible size (corrupt shape): fail here
    if (bytes < huge) return aligned_alloc(64, (bytes + 63) / 64 * 64 + (bytes == 0) * 64);
    const size_t n = (bytes + huge - 1) / huge * huge;
    void *p = aligned_alloc(huge, n);
#ifdef MADV_HUGEPAGE
    if (p) (void)madvise(p, n, MADV_HUGEPAGE); // advice only: THP may be off ("never")
#endif
    return p;
}
