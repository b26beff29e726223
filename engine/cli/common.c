// engine/cli/common.c — argument parsing and JSON output helpers for the CLI.
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

int cli_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "e2h: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 2;
}

int cli_parse_int(const char *flag, const char *v, long lo, long hi, long *out) {
    if (!v) { cli_fail("%s needs a value", flag); return -1; }
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        cli_fail("%s: '%s' is not an integer in [%ld, %ld]", flag, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

int cli_parse_float(const char *flag, const char *v, double lo, double hi, double *out) {
    if (!v) { cli_fail("%s needs a value", flag); return -1; }
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x) || x < lo || x > hi) {
        cli_fail("%s: '%s' is not a number in [%g, %g]", flag, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

int cli_parse_ids(const char *s, int32_t **ids, int32_t *n) {
    *ids = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    int32_t *a = malloc(cap * sizeof *a);
    if (!a) return -1;
    const char *p = s;
    int32_t k = 0;
    while (*p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > INT32_MAX || (*end && *end != ',')) {
            cli_fail("--ids: expected comma-separated non-negative integers, got '%s'", s);
            free(a);
            return -1;
        }
        a[k++] = (int32_t)x;
        p = *end ? end + 1 : end;
    }
    if (k == 0) {
        cli_fail("--ids: empty list");
        free(a);
        return -1;
    }
    *ids = a;
    *n = k;
    return 0;
}

// Length of a valid UTF-8 sequence at s (max n bytes), 0 if invalid.
static int cli_utf8_len(const unsigned char *s, size_t n) {
    int len = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3
              : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (!len || (size_t)len > n) return 0;
    for (int i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (len == 2 && s[0] < 0xC2) return 0;
    return len;
}

void cli_json_string(FILE *f, const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', f);
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') { fputc('\\', f); fputc(c, f); i++; continue; }
        if (c == '\n') { fputs("\\n", f); i++; continue; }
        if (c == '\t') { fputs("\\t", f); i++; continue; }
        if (c == '\r') { fputs("\\r", f); i++; continue; }
        if (c < 0x20) { fprintf(f, "\\u%04x", c); i++; continue; }
        int l = cli_utf8_len(s + i, len - i);
        if (!l) { fputs("\\ufffd", f); i++; continue; }
        fwrite(s + i, 1, (size_t)l, f);
        i += (size_t)l;
    }
    fputc('"', f);
}

void cli_model_opts_init(cli_model_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_threads = 1;
}

int cli_model_opts_parse(cli_model_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    long x;
    double d;
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
        if (!v) { cli_fail("%s needs a value", a); return -1; }
        o->model = v;
    } else if (!strcmp(a, "--quant")) {
        if (!v) { cli_fail("%s needs a value", a); return -1; }
        o->quant = v;
    } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        if (cli_parse_int(a, v, 1, 256, &x)) return -1;
        o->n_threads = (int)x;
    } else if (!strcmp(a, "--kv-mem")) {
        if (cli_parse_float(a, v, 1e-6, 4096, &d)) return -1;
        o->kv_mem_gib = d;
    } else if (!strcmp(a, "--batch")) {
        if (cli_parse_int(a, v, 1, 65536, &x)) return -1;
        o->batch = (int)x;
    } else if (!strcmp(a, "--kernels")) {
        if (!v) { cli_fail("%s needs a value", a); return -1; }
        o->kernels = v;
    } else if (!strcmp(a, "--kv-f16")) {
        o->kv_f16 = 1;
        return 1;
    } else if (!strcmp(a, "--no-repack")) {
        o->no_repack = 1;
        return 1;
    } else {
        return 0;
    }
    (*i)++;
    return 1;
}

// The library's option errors name the options field ("kv_mem_gib: ..."): the flag that sets it.
static const char *cli_flag_of(const char *err) {
    static const char *const map[][2] = {{"kv_mem_gib", "--kv-mem"}, {"kernels", "--kernels"},
                                         {"n_threads", "-t"}, {"max_batch_tokens", "--batch"},
                                         {"quant", "--quant"}, {"feature_layer", "--feature-layer"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        size_t n = strlen(map[i][0]);
        if (!strncmp(err, map[i][0], n) && err[n] == ':') return map[i][1];
    }
    return NULL;
}

int cli_open(const cli_model_opts *o, e2h_model **m, e2h_engine **e) {
    char err[1024] = "";
    *m = NULL;
    if (e) *e = NULL;
    if (!o->model) return cli_fail("-m MODEL is required");
    e2h_load_opts lo = {o->quant, o->no_repack};
    e2h_status st = e2h_model_load(o->model, &lo, m, err, sizeof err);
    const char *flag = cli_flag_of(err);
    if (st) return cli_fail("%s%s%s (%s)", flag ? flag : "", flag ? ": " : "", err, e2h_status_name(st));
    if (!e) return 0;
    int rc = cli_engine(o, *m, e);
    if (rc) {
        e2h_model_free(*m);
        *m = NULL;
    }
    return rc;
}

int cli_engine(const cli_model_opts *o, const e2h_model *m, e2h_engine **e) {
    char err[1024] = "";
    e2h_engine_opts eo = {0};
    eo.n_threads = o->n_threads;
    eo.kv_mem_gib = o->kv_mem_gib;
    eo.kv_f16 = o->kv_f16;
    eo.max_batch_tokens = o->batch;
    eo.kernels = o->kernels;
    eo.feature_layer = o->feature_layer;
    e2h_status st = e2h_engine_init(m, &eo, e, err, sizeof err);
    if (st) {
        const char *flag = cli_flag_of(err);
        return cli_fail("%s%s%s (%s)", flag ? flag : "", flag ? ": " : "", err, e2h_status_name(st));
    }
    return 0;
}

int cli_read_text(const char *path, int allow_nul, char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    int is_stdin = strcmp(path, "-") == 0;
    struct stat sb;
    if (!is_stdin && stat(path, &sb) != 0) return cli_fail("%s: %s", path, strerror(errno));
    if (!is_stdin && S_ISDIR(sb.st_mode)) return cli_fail("%s: is a directory, not a text file", path);
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) return cli_fail("%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0, r;
    char *b = malloc(cap + 1);
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = cap > SIZE_MAX / 4 ? NULL : realloc(b, cap * 2 + 1);
            if (!nb) { free(b); b = NULL; break; }
            b = nb;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    if (!is_stdin) fclose(f);
    if (!b) return cli_fail("%s: out of memory reading it", path);
    if (bad) { free(b); return cli_fail("%s: read error", path); }
    b[n] = 0;
    const char *nul = allow_nul ? NULL : memchr(b, 0, n);
    if (nul) {
        size_t at = (size_t)(nul - b);
        free(b);
        return cli_fail("%s: contains a NUL byte at offset %zu (a prompt must be text)", path, at);
    }
    *out = b;
    *len = n;
    return 0;
}
