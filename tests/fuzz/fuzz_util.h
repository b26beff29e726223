// tests/fuzz/fuzz_util.h — helpers shared by the libFuzzer targets: write the input to a
// per-process file (the loaders take paths), split an input into parts.
#ifndef E2H_FUZZ_UTIL_H
#define E2H_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../include/e2h.h"

// Writes n bytes to path (truncating). Returns 0 or -1.
static inline int fz_write(const char *path, const uint8_t *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(d, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

// A per-process scratch directory under /dev/shm (or /tmp), created once.
static inline const char *fz_dir(void) {
    static char dir[128];
    if (!dir[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/e2h_fuzz_%d", base, (int)getpid());
        mkdir(dir, 0700);
    }
    return dir;
}

// Splits d at the first occurrence of the 4-byte separator "\n--\n" (or at n when absent).
static inline size_t fz_split(const uint8_t *d, size_t n) {
    for (size_t i = 0; i + 4 <= n; i++)
        if (!memcmp(d + i, "\n--\n", 4)) return i;
    return n;
}

#endif
