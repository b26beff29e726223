// engine/prm/layout.c — building a PRM's token layout and mapping text offsets to tokens.
//
// Layouts are built from text exactly as the references do (one tokenizer call per string
// they encode), and read positions are found by byte offsets in that text: the decoded
// pieces of the ids give each token's byte range. So the read position does not depend on
// how a given tokenizer happens to merge a step's last characters.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util.h"
#include "prm_internal.h"

void ps_add(prm_str *p, const char *s, size_t n) {
    if (p->oom) return;
    if (p->n + n + 1 > p->cap) {
        size_t cap = p->cap ? p->cap : 256;
        while (cap < p->n + n + 1) cap *= 2;
        char *t = realloc(p->s, cap);
        if (!t) { p->oom = 1; return; }
        p->s = t;
        p->cap = cap;
    }
    memcpy(p->s + p->n, s, n);
    p->n += n;
    p->s[p->n] = 0;
}

void ps_adds(prm_str *p, const char *s) { ps_add(p, s, strlen(s)); }

void ps_free(prm_str *p) {
    free(p->s);
    memset(p, 0, sizeof *p);
}

static e2h_status pb_grow(prm_build *b, int32_t need) {
    if (need <= b->cap) return E2H_OK;
    int64_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    if (cap > INT32_MAX) return E2H_ERR_NOMEM;
    int32_t *t = realloc(b->ids, (size_t)cap * sizeof *t);
    if (!t) return E2H_ERR_NOMEM;
    b->ids = t;
    b->cap = (int32_t)cap;
    return E2H_OK;
}

e2h_status pb_token(prm_build *b, int32_t id) {
    if (id < 0) {
        fmt_errf(b->err, b->err_len, "layout: a protocol token is missing from the vocabulary");
        return E2H_ERR_TOKENIZER;
    }
    if (pb_grow(b, b->n + 1)) return E2H_ERR_NOMEM;
    b->ids[b->n++] = id;
    return E2H_OK;
}

int prm_map_offsets(const e2h_tokenizer *t, const int32_t *ids, int32_t n, const size_t *marks,
                    int n_marks, int32_t *out_tok) {
    for (int k = 0; k < n_marks; k++) out_tok[k] = -1;
    e2h_detok_stream *ds = e2h_detok_stream_new(t);
    if (!ds) return -1;
    size_t off = 0, len;
    char buf[512];
    for (int32_t i = 0; i < n; i++) {
        if (e2h_detok_stream_push(ds, ids[i], buf, sizeof buf, &len)) {
            e2h_detok_stream_free(ds);
            return -1;
        }
        // token i covers [off, off + len): bytes an earlier token started (a multi-byte
        // character split over byte tokens) belong to the token that completes them
        for (int k = 0; k < n_marks; k++)
            if (out_tok[k] < 0 && marks[k] < off + len) out_tok[k] = i;
        off += len;
    }
    e2h_detok_stream_free(ds);
    for (int k = 0; k < n_marks; k++)
        if (out_tok[k] < 0) {
            if (marks[k] != off) return -1;
            out_tok[k] = n;
        }
    return 0;
}

e2h_status pb_text(prm_build *b, const char *text, size_t len, int add_special,
                   const size_t *marks, int n_marks, int32_t *mark_tok) {
    int32_t need = 0;
    e2h_status st = e2h_tokenize(b->tok, text, len, add_special, NULL, 0, &need);
    if (st) {
        fmt_errf(b->err, b->err_len, "layout: tokenizing %zu bytes failed (%s)", len,
                 e2h_status_name(st));
        return st;
    }
    if (pb_grow(b, b->n + need)) return E2H_ERR_NOMEM;
    int32_t got = 0;
    if ((st = e2h_tokenize(b->tok, text, len, add_special, b->ids + b->n, need, &got)) ||
        got != need)
        return st ? st : E2H_ERR_TOKENIZER;
    int32_t base = b->n;
    b->n += got;
    if (n_marks <= 0) return E2H_OK;
    // a BOS added by the tokenizer has no bytes in the text
    int32_t skip = 0, plain = 0;
    if (add_special && got > 0 && b->ids[base] == e2h_tokenizer_bos(b->tok) &&
        !e2h_tokenize(b->tok, text, len, 0, NULL, 0, &plain) && plain < got)
        skip = 1;
    if (prm_map_offsets(b->tok, b->ids + base + skip, got - skip, marks, n_marks, mark_tok)) {
        fmt_errf(b->err, b->err_len, "layout: the decoded tokens do not reproduce the text, "
                 "cannot place the read positions");
        return E2H_ERR_TOKENIZER;
    }
    for (int k = 0; k < n_marks; k++) mark_tok[k] += base + skip;
    return E2H_OK;
}

int32_t pb_single_token(const e2h_tokenizer *t, const char *text) {
    int32_t ids[4], n = 0;
    if (e2h_tokenize(t, text, strlen(text), 0, ids, 4, &n) || n != 1) return -1;
    return ids[0];
}

e2h_status pb_text_steps(prm_build *b, const char *text, size_t len, int add_special,
                         const size_t *read_b, const size_t *span0_b, const size_t *span1_b) {
    int n = b->n_steps;
    size_t *marks = calloc((size_t)(3 * n + 1), sizeof *marks);
    int32_t *tok = malloc((size_t)(3 * n + 1) * sizeof *tok);
    if (!marks || !tok) {
        free(marks);
        free(tok);
        return E2H_ERR_NOMEM;
    }
    int m = 0;
    for (int k = 0; k < n; k++) {
        marks[m++] = span0_b[k];
        marks[m++] = span1_b[k];
        if (read_b[k] != (size_t)-1) marks[m++] = read_b[k];
    }
    e2h_status st = pb_text(b, text, len, add_special, marks, m, tok);
    if (!st) {
        m = 0;
        for (int k = 0; k < n; k++) {
            b->span0[k] = tok[m++];
            b->span1[k] = tok[m++];
            b->read[k] = read_b[k] != (size_t)-1 ? tok[m++] : -1;
        }
    }
    free(marks);
    free(tok);
    return st;
}

void prm_trim(const char **s, size_t *n) {
    while (*n && (**s == ' ' || **s == '\n' || **s == '\t' || **s == '\r')) (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\n' || (*s)[*n - 1] == '\t' ||
                  (*s)[*n - 1] == '\r'))
        (*n)--;
}

e2h_status prm_build_layout(const struct e2h_prm *p, prm_build *b, const char *problem,
                            const char *const *steps, int n, int is_final, char *err,
                            size_t err_len) {
    memset(b, 0, sizeof *b);
    b->tok = p->tok;
    b->err = err;
    b->err_len = err_len;
    b->n_steps = n;
    size_t m = (size_t)(n > 0 ? n : 1);
    size_t *lens = malloc(m * sizeof *lens);
    b->read = malloc(m * sizeof *b->read);
    b->span0 = malloc(m * sizeof *b->span0);
    b->span1 = malloc(m * sizeof *b->span1);
    if (!lens || !b->read || !b->span0 || !b->span1) {
        free(lens);
        prm_build_free(b);
        return E2H_ERR_NOMEM;
    }
    for (int k = 0; k < n; k++) lens[k] = strlen(steps[k]);
    prm_steps ps = {steps, lens, n};
    e2h_status st = p->proto->layout(p, b, problem, &ps, is_final);
    free(lens);
    if (st) prm_build_free(b);
    return st;
}

void prm_build_free(prm_build *b) {
    free(b->ids);
    free(b->read);
    free(b->span0);
    free(b->span1);
    memset(b, 0, sizeof *b);
}
