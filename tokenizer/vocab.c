// tokenizer/vocab.c — vocabulary tables shared by both families: token storage, the string
// -> id hash map, the merge pair table, byte tokens, the added-token table, and the GPT-2
// byte <-> unicode mapping.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "tokenizer.h"

void tok_set_err(char *err, size_t err_len, const char *fmt, ...) {
    if (!err || !err_len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

e2h_tokenizer *tok_alloc(int32_t n_vocab) {
    if (n_vocab <= 0) return NULL;
    e2h_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->tokens = calloc((size_t)n_vocab, sizeof *t->tokens);
    if (!t->tokens) { free(t); return NULL; }
    t->n_vocab = n_vocab;
    t->bos = t->eos = t->unk = -1;
    for (int i = 0; i < 256; i++) t->byte_ids[i] = -1;
    return t;
}

void e2h_tokenizer_free(e2h_tokenizer *t) {
    if (!t) return;
    if (t->tokens) {
        for (int32_t i = 0; i < t->n_vocab; i++) {
            if (t->tokens[i].piece != t->tokens[i].text) free(t->tokens[i].piece);
            free(t->tokens[i].text);
        }
    }
    free(t->tokens);
    free(t->vocab.slots);
    free(t->pairs.slots);
    free(t->added);
    for (int i = 0; i < t->n_regex; i++) pcre2_code_free(t->regex[i]);
    free(t);
}

int tok_set_token(e2h_tokenizer *t, int32_t id, const char *text, size_t len, float score,
                  int type) {
    if (id < 0 || id >= t->n_vocab || len > UINT32_MAX / 2) return -1;
    char *s = malloc(len + 1);
    if (!s) return -1;
    memcpy(s, text, len);
    s[len] = 0;
    if (t->tokens[id].piece != t->tokens[id].text) free(t->tokens[id].piece);
    free(t->tokens[id].text);
    t->tokens[id] = (tok_token){s, (uint32_t)len, NULL, 0, score, type};
    return 0;
}

// ---- string map ----

static uint32_t str_hash(const char *s, size_t len) { return (uint32_t)XXH3_64bits(s, len); }

int32_t tok_lookup(const e2h_tokenizer *t, const char *s, size_t len) {
    const tok_str_map *m = &t->vocab;
    if (!m->cap) return -1;
    uint32_t mask = m->cap - 1;
    for (uint32_t h = str_hash(s, len) & mask;; h = (h + 1) & mask) {
        int32_t id = m->slots[h];
        if (id < 0) return -1;
        const tok_token *tk = &t->tokens[id];
        if (tk->len == len && memcmp(tk->text, s, len) == 0) return id;
    }
}

// Inserts every token; returns the id of an earlier token with the same text on a clash.
static int32_t vocab_build(e2h_tokenizer *t, int32_t *dup_of) {
    uint32_t cap = 16;
    while (cap < (uint32_t)t->n_vocab * 2u) cap <<= 1;
    t->vocab.slots = malloc(cap * sizeof(int32_t));
    if (!t->vocab.slots) return -2;
    memset(t->vocab.slots, 0xff, cap * sizeof(int32_t));
    t->vocab.cap = cap;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const tok_token *tk = &t->tokens[id];
        uint32_t h = str_hash(tk->text, tk->len) & (cap - 1);
        for (;; h = (h + 1) & (cap - 1)) {
            int32_t o = t->vocab.slots[h];
            if (o < 0) { t->vocab.slots[h] = id; break; }
            if (t->tokens[o].len == tk->len && memcmp(t->tokens[o].text, tk->text, tk->len) == 0) {
                *dup_of = o;
                return id;
            }
        }
    }
    return -1;
}

// ---- pair map ----

static uint32_t pair_hash(uint64_t k) { return (uint32_t)((k * 0x9E3779B97F4A7C15ull) >> 32); }

static int pair_grow(tok_pair_map *m) {
    if (m->cap > UINT32_MAX / 2 || (size_t)m->cap * 2 > SIZE_MAX / sizeof(tok_pair)) return -1;
    uint32_t ncap = m->cap ? m->cap * 2 : 1024;
    tok_pair *ns = malloc(ncap * sizeof *ns);
    if (!ns) return -1;
    for (uint32_t i = 0; i < ncap; i++) ns[i].key = UINT64_MAX;
    for (uint32_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key == UINT64_MAX) continue;
        uint32_t h = pair_hash(m->slots[i].key) & (ncap - 1);
        while (ns[h].key != UINT64_MAX) h = (h + 1) & (ncap - 1);
        ns[h] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

// Keeps the existing entry if the pair is already present with a lower priority.
int tok_pair_put(e2h_tokenizer *t, int32_t a, int32_t b, int32_t prio, int32_t result) {
    tok_pair_map *m = &t->pairs;
    if ((m->n + 1) * 2 > m->cap && pair_grow(m)) return -1;
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t h = pair_hash(k) & (m->cap - 1);
    for (;; h = (h + 1) & (m->cap - 1)) {
        if (m->slots[h].key == UINT64_MAX) {
            m->slots[h] = (tok_pair){k, prio, result};
            m->n++;
            return 0;
        }
        if (m->slots[h].key == k) {
            if (prio < m->slots[h].prio) m->slots[h] = (tok_pair){k, prio, result};
            return 0;
        }
    }
}

const tok_pair *tok_pair_get(const e2h_tokenizer *t, int32_t a, int32_t b) {
    const tok_pair_map *m = &t->pairs;
    if (!m->cap || a < 0 || b < 0) return NULL;
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (uint32_t h = pair_hash(k) & (m->cap - 1);; h = (h + 1) & (m->cap - 1)) {
        if (m->slots[h].key == k) return &m->slots[h];
        if (m->slots[h].key == UINT64_MAX) return NULL;
    }
}

// ---- GPT-2 byte <-> unicode ----

// Printable bytes stand for themselves; the others map to 256, 257, ... in byte order.
static uint32_t byte_to_cp(uint8_t b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    uint32_t n = 0;
    for (int i = 0; i < b; i++)
        if (!((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || i >= 174)) n++;
    return 256 + n;
}

static int utf8_put(uint32_t cp, char *o) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int tok_byte_to_utf8(uint8_t b, char out[4]) { return utf8_put(byte_to_cp(b), out); }

int tok_unicode_to_byte(uint32_t cp) {
    if (cp < 256) {
        uint8_t b = (uint8_t)cp;
        return byte_to_cp(b) == cp ? (int)cp : -1;
    }
    if (cp >= 256 + 68) return -1; // 68 bytes are remapped
    for (int b = 0; b < 256; b++)
        if (byte_to_cp((uint8_t)b) == cp) return b;
    return -1;
}

// ---- pieces (decoded text of each token) ----

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// "<0xAB>" -> 0xAB, else -1.
static int spm_byte_value(const char *s, size_t len) {
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int hi = hexval(s[3]), lo = hexval(s[4]);
    return (hi < 0 || lo < 0) ? -1 : hi * 16 + lo;
}

static int make_piece_spm(tok_token *tk) {
    int bv = tk->type == TOKT_BYTE ? spm_byte_value(tk->text, tk->len) : -1;
    char *p = malloc(tk->len + 1);
    if (!p) return -1;
    size_t n = 0;
    if (bv >= 0) {
        p[n++] = (char)bv;
    } else {
        for (size_t i = 0; i < tk->len;) {
            if (i + 3 <= tk->len && memcmp(tk->text + i, "\xe2\x96\x81", 3) == 0) {
                p[n++] = ' ';
                i += 3;
            } else {
                p[n++] = tk->text[i++];
            }
        }
    }
    p[n] = 0;
    tk->piece = p;
    tk->piece_len = (uint32_t)n;
    return 0;
}

// Byte-level tokens store bytes as printable stand-ins; map them back. Like the reference's
// ByteLevel decoder this applies to added tokens too: "<|im_end|>" maps to itself, a token
// with a character outside the byte alphabet ("<｜end▁of▁sentence｜>", "   ") stays raw
// text, and DeepSeek's added "ö" (U+00F6) is the stand-in of the byte 0xF6.
static int make_piece_bpe(tok_token *tk) {
    char *p = malloc(tk->len + 1);
    if (!p) return -1;
    size_t n = 0;
    for (size_t i = 0; i < tk->len;) {
        uint32_t cp;
        int l = tok_utf8_decode((const uint8_t *)tk->text + i, tk->len - i, &cp);
        int b = l ? tok_unicode_to_byte(cp) : -1;
        if (b < 0) { // not a byte-level token: keep its text as is
            free(p);
            tk->piece = tk->text;
            tk->piece_len = tk->len;
            return 0;
        }
        p[n++] = (char)b;
        i += (size_t)l;
    }
    p[n] = 0;
    tk->piece = p;
    tk->piece_len = (uint32_t)n;
    return 0;
}

// ---- added tokens ----

static int added_cmp(const void *pa, const void *pb) {
    const tok_added *a = pa, *b = pb;
    uint8_t fa = (uint8_t)a->text[0], fb = (uint8_t)b->text[0];
    if (fa != fb) return fa < fb ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : (a->id > b->id);
}

static int build_added(e2h_tokenizer *t) {
    int32_t n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        int ty = t->tokens[i].type;
        if ((ty == TOKT_CONTROL || ty == TOKT_USER || ty == TOKT_UNKNOWN) && t->tokens[i].len) n++;
    }
    t->added = calloc((size_t)n + 1, sizeof *t->added);
    if (!t->added) return -1;
    t->n_added = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        const tok_token *tk = &t->tokens[i];
        if ((tk->type == TOKT_CONTROL || tk->type == TOKT_USER || tk->type == TOKT_UNKNOWN) &&
            tk->len)
            t->added[t->n_added++] = (tok_added){i, tk->text, tk->len, 0, 0};
    }
    qsort(t->added, (size_t)t->n_added, sizeof *t->added, added_cmp);
    // added_first[c] .. added_first[c+1]: the entries whose first byte is c
    int32_t j = 0;
    for (int c = 0; c < 256; c++) {
        t->added_first[c] = j;
        while (j < t->n_added && (uint8_t)t->added[j].text[0] == c) j++;
    }
    t->added_first[256] = j;
    return 0;
}

// ---- SPM merges from scores ----

typedef struct { float score; int32_t id; } score_id;
static int score_cmp(const void *pa, const void *pb) {
    const score_id *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return a->id < b->id ? -1 : (a->id > b->id);
}

// SentencePiece BPE merges the adjacent pair whose concatenation is the highest-scoring
// token. Every way of splitting a token into two tokens is such a pair; its priority is the
// token's rank by score.
static int build_spm_pairs(e2h_tokenizer *t) {
    score_id *order = malloc((size_t)t->n_vocab * sizeof *order);
    if (!order) return -1;
    for (int32_t i = 0; i < t->n_vocab; i++) order[i] = (score_id){t->tokens[i].score, i};
    qsort(order, (size_t)t->n_vocab, sizeof *order, score_cmp);
    for (int32_t r = 0; r < t->n_vocab; r++) {
        const tok_token *tk = &t->tokens[order[r].id];
        if (tk->type == TOKT_BYTE || tk->type == TOKT_CONTROL || tk->type == TOKT_UNKNOWN) continue;
        for (uint32_t k = 1; k < tk->len; k++) {
            if (((uint8_t)tk->text[k] & 0xC0) == 0x80) continue; // split at code points only
            int32_t a = tok_lookup(t, tk->text, k);
            int32_t b = a >= 0 ? tok_lookup(t, tk->text + k, tk->len - k) : -1;
            if (b >= 0 && tok_pair_put(t, a, b, r, order[r].id)) { free(order); return -1; }
        }
    }
    free(order);
    return 0;
}

int tok_finalize(e2h_tokenizer *t, const char *path, char *err, size_t err_len) {
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (!t->tokens[i].text) {
            tok_set_err(err, err_len, "%s: vocabulary: token id %d is missing", path, i);
            return -1;
        }
    }
    int32_t dup_of = -1;
    int32_t dup = vocab_build(t, &dup_of);
    if (dup == -2) { tok_set_err(err, err_len, "%s: out of memory", path); return -1; }
    if (dup >= 0) {
        tok_set_err(err, err_len, "%s: vocabulary: duplicate token '%.*s' (ids %d and %d)", path,
                    (int)(t->tokens[dup].len > 64 ? 64 : t->tokens[dup].len), t->tokens[dup].text,
                    dup_of, dup);
        return -1;
    }
    for (int32_t i = 0; i < t->n_vocab; i++) {
        int rc = t->family == TOK_SPM ? make_piece_spm(&t->tokens[i]) : make_piece_bpe(&t->tokens[i]);
        if (rc) { tok_set_err(err, err_len, "%s: out of memory", path); return -1; }
    }
    for (int b = 0; b < 256; b++) {
        char s[8];
        int n = t->family == TOK_SPM ? snprintf(s, sizeof s, "<0x%02X>", b) : tok_byte_to_utf8((uint8_t)b, s);
        t->byte_ids[b] = tok_lookup(t, s, (size_t)n);
    }
    if (build_added(t) ||
        (t->family == TOK_SPM && !t->spm_explicit_merges && build_spm_pairs(t))) {
        tok_set_err(err, err_len, "%s: out of memory", path);
        return -1;
    }
    if (t->bos >= t->n_vocab || t->bos < -1) t->bos = -1;
    if (t->eos >= t->n_vocab || t->eos < -1) t->eos = -1;
    if (t->unk >= t->n_vocab || t->unk < -1) t->unk = -1;
    return 0;
}

int tok_add_merge(e2h_tokenizer *t, const char *a, size_t alen, const char *b, size_t blen,
                  int32_t rank, const char *path, char *err, size_t err_len) {
    int32_t ia = tok_lookup(t, a, alen), ib = tok_lookup(t, b, blen);
    char small[256];
    int32_t ir = -1;
    if (ia >= 0 && ib >= 0) {
        char *buf = alen + blen <= sizeof small ? small : malloc(alen + blen);
        if (!buf) {
            tok_set_err(err, err_len, "%s: out of memory", path);
            return -1;
        }
        memcpy(buf, a, alen);
        memcpy(buf + alen, b, blen);
        ir = tok_lookup(t, buf, alen + blen);
        if (buf != small) free(buf);
    }
    if (ia < 0 || ib < 0 || ir < 0) {
        tok_set_err(err, err_len, "%s: merges[%d] '%.*s %.*s' names a token not in the vocabulary",
                    path, rank, (int)(alen > 64 ? 64 : alen), a, (int)(blen > 64 ? 64 : blen), b);
        return -1;
    }
    if (tok_pair_put(t, ia, ib, rank, ir)) {
        tok_set_err(err, err_len, "%s: out of memory", path);
        return -1;
    }
    return 0;
}
