// engine/util.h — small helpers shared by the engine: error formatting, file reading,
// dtype conversion of small tensors, timing.
#ifndef E2H_ENGINE_UTIL_H
#define E2H_ENGINE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "../include/e2h.h"

// snprintf into err (if err and err_len are non-zero).
void e2h_errf(char *err, size_t err_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// Reads a whole file into a NUL-terminated malloc'd buffer (caller frees). size may be NULL.
e2h_status e2h_read_file(const char *path, char **out, size_t *size, char *err, size_t err_len);
// Converts n elements of an F32/F16/BF16 array to f32.
void e2h_convert_to_f32(int type, const void *src, float *dst, int64_t n);
double e2h_time_s(void); // monotonic seconds

#endif
