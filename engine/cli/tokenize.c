// engine/cli/tokenize.c — `e2h tokenize` and `e2h detokenize`.
//
//   e2h tokenize -m MODEL [--no-bos] (-f FILE | TEXT...)   ids as a JSON array on one line
//   e2h detokenize -m MODEL 1,2,3                          the text
// MODEL is a model directory, a tokenizer.json or a .gguf (a vocabulary-only GGUF works).
// Both return 0 on success and 2 on a user error (message on stderr).
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../include/e2h.h"
#include "cli.h"

int cli_tokenize(int argc, char **argv);
int cli_detokenize(int argc, char **argv);

static const char *TOK_USAGE =
    "usage: e2h tokenize -m MODEL [--no-bos] (-f FILE | TEXT)\n"
    "  Prints the token ids of TEXT (or of FILE's contents) as a JSON array on one line.\n"
    "  MODEL: a model directory, a tokenizer.json, or a .gguf file.\n"
    "  --no-bos  do not add BOS/EOS even where the model adds them by default\n";
static const char *DETOK_USAGE =
    "usage: e2h detokenize -m MODEL IDS\n"
    "  Prints the text of IDS (comma- or space-separated, e.g. 1,2,3).\n";

static e2h_tokenizer *load(const char *model) {
    char err[1024];
    e2h_tokenizer *t = NULL;
    if (e2h_tokenizer_load(model, &t, err, sizeof err) != E2H_OK) {
        fprintf(stderr, "e2h: %s\n", err);
        return NULL;
    }
    return t;
}

static char *read_all(const char *path, size_t *len) {
    char *b = NULL;
    return cli_read_text(path, 0, &b, len) ? NULL : b;
}

// Joins the positional arguments with single spaces (so `e2h tokenize -m M hello world`
// works without quoting).
static char *join_args(int argc, char **argv, int from, size_t *len) {
    size_t n = 0;
    for (int i = from; i < argc; i++) n += strlen(argv[i]) + 1;
    char *s = malloc(n + 1);
    if (!s) return NULL;
    size_t k = 0;
    for (int i = from; i < argc; i++) {
        if (i > from) s[k++] = ' ';
        memcpy(s + k, argv[i], strlen(argv[i]));
        k += strlen(argv[i]);
    }
    s[k] = 0;
    *len = k;
    return s;
}

int cli_tokenize(int argc, char **argv) {
    const char *model = NULL, *file = NULL;
    int add_special = 1, i = 1;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(TOK_USAGE, stdout); return 0; }
        else if (!strcmp(argv[i], "-m") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "-f") && i + 1 < argc) file = argv[++i];
        else if (!strcmp(argv[i], "--no-bos")) add_special = 0;
        else if (!strcmp(argv[i], "--")) { i++; break; }
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "e2h tokenize: unknown option '%s'\n%s", argv[i], TOK_USAGE);
            return 2;
        } else break;
    }
    if (!model || (file && i < argc) || (!file && i >= argc)) {
        fputs(TOK_USAGE, stderr);
        return 2;
    }
    size_t len = 0;
    char *text = file ? read_all(file, &len) : join_args(argc, argv, i, &len);
    if (!text) {
        if (!file) fprintf(stderr, "e2h tokenize: out of memory joining the arguments\n");
        return 2; // cli_read_text printed what was wrong with the file
    }
    e2h_tokenizer *t = load(model);
    if (!t) { free(text); return 2; }
    int32_t n = 0, cap = (int32_t)(len < INT32_MAX - 16 ? len + 16 : INT32_MAX);
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    e2h_status st = ids ? e2h_tokenize(t, text, len, add_special, ids, cap, &n) : E2H_ERR_NOMEM;
    if (st == E2H_OK) {
        putchar('[');
        for (int32_t k = 0; k < n && k < cap; k++) printf(k ? ",%d" : "%d", ids[k]);
        puts("]");
    } else {
        fprintf(stderr, "e2h tokenize: %s\n", e2h_status_name(st));
    }
    free(ids);
    free(text);
    e2h_tokenizer_free(t);
    return st == E2H_OK ? 0 : 2;
}

// Parses "1,2,3" / "1 2 3" / "[1, 2, 3]" from the remaining arguments. On a bad item prints
// what it was and where, and returns NULL.
static int32_t *parse_ids(int argc, char **argv, int from, int32_t *n) {
    size_t len;
    char *s = join_args(argc, argv, from, &len);
    int32_t *ids = s ? malloc((len / 2 + 2) * sizeof *ids) : NULL;
    *n = 0;
    if (!s || !ids) {
        fprintf(stderr, "e2h detokenize: out of memory\n");
        free(s);
        free(ids);
        return NULL;
    }
    for (char *p = s; *p;) {
        if (strchr("[], \t\n", *p)) { p++; continue; }
        char *e;
        errno = 0;
        long v = strtol(p, &e, 10);
        if (e == p || errno || v < 0 || v > INT32_MAX || (*e && !strchr("[], \t\n", *e))) {
            size_t w = strcspn(p, "[], \t\n");
            fprintf(stderr, "e2h detokenize: item %d '%.*s' is not a token id: expected non-negative "
                            "integers separated by commas or spaces, e.g. 1,2,3\n",
                    *n + 1, (int)(w > 40 ? 40 : w), p);
            free(s);
            free(ids);
            return NULL;
        }
        ids[(*n)++] = (int32_t)v;
        p = e;
    }
    free(s);
    if (*n == 0) {
        fprintf(stderr, "e2h detokenize: no token ids given (e.g. 1,2,3)\n");
        free(ids);
        return NULL;
    }
    return ids;
}

int cli_detokenize(int argc, char **argv) {
    const char *model = NULL;
    int i = 1;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(DETOK_USAGE, stdout); return 0; }
        else if (!strcmp(argv[i], "-m") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--")) { i++; break; }
        else if (argv[i][0] == '-' && !(argv[i][1] >= '0' && argv[i][1] <= '9')) {
            fprintf(stderr, "e2h detokenize: unknown option or missing value '%s'\n%s", argv[i], DETOK_USAGE);
            return 2;
        } else break;
    }
    if (!model) { fprintf(stderr, "e2h detokenize: -m MODEL is required\n%s", DETOK_USAGE); return 2; }
    if (i >= argc) { fprintf(stderr, "e2h detokenize: no token ids given\n%s", DETOK_USAGE); return 2; }
    int32_t n;
    int32_t *ids = parse_ids(argc, argv, i, &n);
    if (!ids) return 2;
    e2h_tokenizer *t = load(model);
    if (!t) { free(ids); return 2; }
    int32_t nv = e2h_tokenizer_n_vocab(t);
    for (int32_t k = 0; k < n; k++) {
        if (ids[k] >= nv) {
            fprintf(stderr, "e2h detokenize: id %d (item %d) is outside the vocabulary: valid ids are 0..%d\n",
                    ids[k], k + 1, nv - 1);
            free(ids);
            e2h_tokenizer_free(t);
            return 2;
        }
    }
    size_t len = 0;
    e2h_status st = e2h_detokenize(t, ids, n, NULL, 0, &len);
    char *out = st == E2H_OK ? malloc(len + 1) : NULL;
    if (out) st = e2h_detokenize(t, ids, n, out, len + 1, &len);
    if (st == E2H_OK && out) {
        fwrite(out, 1, len, stdout);
        putchar('\n');
    } else {
        fprintf(stderr, "e2h detokenize: decoding failed (%s)\n", out ? e2h_status_name(st) : "out of memory");
    }
    free(out);
    free(ids);
    e2h_tokenizer_free(t);
    return st == E2H_OK && out ? 0 : 2;
}
