// engine/util.h — small helpers shared by the engine (error formatting and file reading come
// from formats/io.h): dtype conversion of small tensors, timing.
#ifndef E2H_ENGINE_UTIL_H
#define E2H_ENGINE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "../formats/io.h" // fmt_errf, fmt_read_file
#include "../include/e2h.h"

// Converts n elements of an F32/F16/BF16 array to f32.
void util_convert_to_f32(int type, const void *src, float *dst, int64_t n);
double util_time_s(void); // monotonic seconds
// Allocates a large buffer that decode streams (the repacked weights): 64-byte aligned, not
// zeroed; from 2 MiB up it is 2 MiB aligned and advised to use transparent huge pages.
// Why: on 4 KiB pages every read stream takes a TLB miss each 4 KiB and software prefetches
// far ahead do not pay; on huge pages a 4 KiB prefetch distance does (random 7B Q4_0, 1
// thread: 7.1 -> 8.3 tok/s). The caller frees it with free(); NULL when out of memory.
#define UTIL_ALLOC_LARGE_MAX ((size_t)1 << 46) // 64 TiB: larger requests return NULL
void *util_alloc_large(size_t bytes);

#endif
