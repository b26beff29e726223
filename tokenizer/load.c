// tokenizer/load.c — e2h_tokenizer_load: picks the loader (tokenizer.json or GGUF) from the path.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tokenizer.h"

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

e2h_status e2h_tokenizer_load(const char *path, e2h_tokenizer **out, char *err, size_t err_len) {
    if (!out) return E2H_ERR_INVALID_ARG;
    *out = NULL;
    if (!path) {
        tok_set_err(err, err_len, "e2h_tokenizer_load: path is NULL");
        return E2H_ERR_INVALID_ARG;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        tok_set_err(err, err_len, "%s: no such file or directory", path);
        return E2H_ERR_IO;
    }
    if (S_ISDIR(st.st_mode)) {
        size_t n = strlen(path) + 32;
        char *j = malloc(n), *c = malloc(n);
        if (!j || !c) { free(j); free(c); return E2H_ERR_NOMEM; }
        snprintf(j, n, "%s/tokenizer.json", path);
        snprintf(c, n, "%s/tokenizer_config.json", path);
        e2h_status st2;
        if (!file_exists(j)) {
            tok_set_err(err, err_len, "%s: no tokenizer.json in this directory", path);
            st2 = E2H_ERR_TOKENIZER;
        } else {
            st2 = tok_load_json(j, file_exists(c) ? c : NULL, out, err, err_len);
        }
        free(j);
        free(c);
        return st2;
    }
    if (ends_with(path, ".gguf")) return tok_load_gguf(path, out, err, err_len);
    // a tokenizer.json path: use the tokenizer_config.json beside it, if any
    size_t n = strlen(path) + 32;
    char *c = malloc(n);
    if (!c) return E2H_ERR_NOMEM;
    snprintf(c, n, "%s", path);
    char *slash = strrchr(c, '/');
    snprintf(slash ? slash + 1 : c, n - (size_t)(slash ? slash + 1 - c : 0), "tokenizer_config.json");
    e2h_status st3 = tok_load_json(path, file_exists(c) ? c : NULL, out, err, err_len);
    free(c);
    return st3;
}
