// formats/io.c — see io.h.
#include "io.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void fmt_errf(char *err, size_t err_len, const char *fmt, ...) {
    if (!err || !err_len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

e2h_status fmt_read_file(const char *path, char **out, size_t *size, char *err, size_t err_len) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fmt_errf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
        return E2H_ERR_IO;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        fmt_errf(err, err_len, "%s: not a regular file", path);
        return E2H_ERR_IO;
    }
    size_t n = (size_t)sb.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        fmt_errf(err, err_len, "%s: out of memory reading %zu bytes", path, n);
        return E2H_ERR_NOMEM;
    }
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    if (got != n) {
        free(buf);
        fmt_errf(err, err_len, "%s: short read", path);
        return E2H_ERR_IO;
    }
    buf[n] = 0;
    *out = buf;
    if (size) *size = n;
    return E2H_OK;
}
