// formats/io.h — the two helpers every layer's readers share: error formatting into a
// caller's buffer, and reading a whole (small) file. They sit at the bottom layer so the
// file-format readers, the tokenizer and the engine can all use them.
#ifndef E2H_FORMATS_IO_H
#define E2H_FORMATS_IO_H

#include <stddef.h>

#include "../include/e2h.h"

// snprintf into err (if err and err_len are non-zero).
void fmt_errf(char *err, size_t err_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// Reads a whole file into a NUL-terminated malloc'd buffer (caller frees). size may be NULL.
e2h_status fmt_read_file(const char *path, char **out, size_t *size, char *err, size_t err_len);

#endif
