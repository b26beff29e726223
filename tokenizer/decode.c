// tokenizer/decode.c — ids -> text (whole and streaming), piece lookup, simple getters.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

int32_t e2h_tokenizer_n_vocab(const e2h_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t e2h_tokenizer_bos(const e2h_tokenizer *t) { return t ? t->bos : -1; }
int32_t e2h_tokenizer_eos(const e2h_tokenizer *t) { return t ? t->eos : -1; }

const char *e2h_tokenizer_piece(const e2h_tokenizer *t, int32_t id, size_t *len) {
    if (!t || id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->tokens[id].piece_len;
    return t->tokens[id].piece;
}

int32_t e2h_tokenizer_find(const e2h_tokenizer *t, const char *text, size_t len) {
    if (!t || !text) return -1;
    for (int32_t k = 0; k < t->n_added; k++)
        if (t->added[k].len == len && memcmp(t->added[k].text, text, len) == 0)
            return t->added[k].id;
    return tok_lookup(t, text, len);
}

// Bytes id contributes to decoded text. Like the reference decoder, special tokens render as
// their text, and the first piece loses the space that the SentencePiece dummy prefix added.
static const char *visible_piece(const e2h_tokenizer *t, int32_t id, int first, size_t *len) {
    const tok_token *tk = &t->tokens[id];
    const char *p = tk->piece;
    *len = tk->piece_len;
    if (first && t->strip_leading_space && *len && p[0] == ' ') { p++; (*len)--; }
    return p;
}

e2h_status e2h_detokenize(const e2h_tokenizer *t, const int32_t *ids, int32_t n, char *out,
                          size_t cap, size_t *len) {
    if (!t || n < 0 || (n && !ids) || (cap && !out)) return E2H_ERR_INVALID_ARG;
    size_t total = 0;
    int first = 1;
    for (int32_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab) return E2H_ERR_INVALID_ARG;
        size_t l;
        visible_piece(t, ids[i], first, &l);
        first = 0;
        total += l;
    }
    char *raw = malloc(total + 1);
    if (!raw) return E2H_ERR_NOMEM;
    size_t k = 0;
    first = 1;
    for (int32_t i = 0; i < n; i++) {
        size_t l;
        const char *p = visible_piece(t, ids[i], first, &l);
        first = 0;
        memcpy(raw + k, p, l);
        k += l;
    }
    // byte tokens may form invalid UTF-8; replace it the way the reference does
    size_t cl;
    char *clean = tok_utf8_sanitize(raw, k, &cl);
    free(raw);
    if (!clean) return E2H_ERR_NOMEM;
    if (len) *len = cl;
    if (cap) {
        size_t c = cl < cap - 1 ? cl : cap - 1;
        memcpy(out, clean, c);
        out[c] = 0;
    }
    free(clean);
    return E2H_OK;
}

// ---- streaming ----

struct e2h_detok_stream {
    const e2h_tokenizer *t;
    int first;
    uint8_t held[4]; // the bytes of an unfinished character
    int n_held;
    char err[160];   // message of the last failed call ("" if none)
};

e2h_detok_stream *e2h_detok_stream_new(const e2h_tokenizer *t) {
    if (!t) return NULL;
    e2h_detok_stream *s = calloc(1, sizeof *s);
    if (s) { s->t = t; s->first = 1; }
    return s;
}

void e2h_detok_stream_free(e2h_detok_stream *s) { free(s); }

const char *e2h_detok_stream_last_error(const e2h_detok_stream *s) { return s ? s->err : ""; }

// Appends b to out if room; counts either way.
static void put(char *out, size_t cap, size_t *n, const void *b, size_t l) {
    if (*n < cap) memcpy(out + *n, b, (*n + l <= cap) ? l : cap - *n);
    *n += l;
}

// Emits the complete characters of held+piece; keeps a trailing unfinished character.
// Returns the bytes emitted, or (size_t)-1 when out of memory (nothing consumed then).
static size_t stream_emit(e2h_detok_stream *s, const char *p, size_t pl, char *out, size_t cap) {
    size_t n = 0;
    size_t tot = (size_t)s->n_held + pl;
    uint8_t *buf = malloc(tot ? tot : 1);
    if (!buf) return (size_t)-1;
    memcpy(buf, s->held, (size_t)s->n_held);
    memcpy(buf + s->n_held, p, pl);
    s->n_held = 0;
    for (size_t i = 0; i < tot;) {
        int full;
        size_t k = (size_t)tok_utf8_prefix(buf + i, tot - i, &full);
        if (full) { put(out, cap, &n, buf + i, k); i += k; continue; }
        if (k && i + k == tot) { // an unfinished character: hold it for the next piece
            memcpy(s->held, buf + i, k);
            s->n_held = (int)k;
            break;
        }
        put(out, cap, &n, "\xEF\xBF\xBD", 3); // broken: one U+FFFD per maximal invalid part
        i += k ? k : 1;
    }
    free(buf);
    return n;
}

e2h_status e2h_detok_stream_push(e2h_detok_stream *s, int32_t id, char *out, size_t cap,
                                 size_t *len) {
    if (!s) return E2H_ERR_INVALID_ARG;
    s->err[0] = 0;
    if ((cap && !out) || !len) {
        snprintf(s->err, sizeof s->err, "detok stream push: %s", !len ? "len is NULL" : "out is NULL with cap > 0");
        return E2H_ERR_INVALID_ARG;
    }
    if (id < 0 || id >= s->t->n_vocab) {
        snprintf(s->err, sizeof s->err, "detok stream push: token id %d is outside the vocabulary "
                 "[0, %d)", id, s->t->n_vocab);
        return E2H_ERR_INVALID_ARG;
    }
    size_t pl;
    const char *p = visible_piece(s->t, id, s->first, &pl);
    size_t n = stream_emit(s, p, pl, out, cap ? cap - 1 : 0);
    if (n == (size_t)-1) {
        snprintf(s->err, sizeof s->err, "detok stream push: out of memory");
        return E2H_ERR_NOMEM;
    }
    s->first = 0;
    if (cap) out[n < cap - 1 ? n : cap - 1] = 0;
    *len = n;
    return E2H_OK;
}

e2h_status e2h_detok_stream_flush(e2h_detok_stream *s, char *out, size_t cap, size_t *len) {
    if (!s) return E2H_ERR_INVALID_ARG;
    s->err[0] = 0;
    if ((cap && !out) || !len) {
        snprintf(s->err, sizeof s->err, "detok stream flush: %s", !len ? "len is NULL" : "out is NULL with cap > 0");
        return E2H_ERR_INVALID_ARG;
    }
    size_t n = 0;
    if (s->n_held) put(out, cap ? cap - 1 : 0, &n, "\xEF\xBF\xBD", 3);
    s->n_held = 0;
    if (cap) out[n < cap - 1 ? n : cap - 1] = 0;
    *len = n;
    return E2H_OK;
}
