// tokenizer/encode.c — text -> ids: added-token splitting, then SentencePiece BPE or
// byte-level BPE on each text segment. The merge loop is a binary heap of adjacent pairs
// ordered by (priority, position), so a word of n symbols costs O(n log n).
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"
#include "unicode_nfc.h"

typedef struct {
    int32_t id;      // token id, -1 for a character not in the vocabulary, -2 when merged away
    int32_t prev, next;
    uint32_t off, len; // bytes of the symbol in the word
} sym;

typedef struct {
    int32_t prio, left, right, lid, rid, result;
} cand;

// Per-call scratch space and output, reused across words.
typedef struct {
    const e2h_tokenizer *t;
    sym *syms;
    size_t syms_cap;
    cand *heap;
    size_t heap_n, heap_cap;
    char *buf; // SPM: normalized segment
    size_t buf_cap;
    int32_t *ids;
    int32_t cap;
    int64_t n;
    int oom;
} enc_ctx;

static void out_push(enc_ctx *c, int32_t id) {
    if (c->n < c->cap) c->ids[c->n] = id;
    c->n++;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 64;
    // overflow-checked: a doubling loop that wraps to 0 never ends (fuzzing found one)
    if (elem == 0 || need > SIZE_MAX / elem) return -1;
    while (nc < need) nc = nc > SIZE_MAX / 2 ? need : nc * 2;
    void *np = realloc(*p, nc * elem);
    if (!np) return -1;
    *p = np;
    *cap = nc;
    return 0;
}

// ---- heap ----

static int cand_less(const cand *a, const cand *b) {
    return a->prio != b->prio ? a->prio < b->prio : a->left < b->left;
}

static int heap_push(enc_ctx *c, cand x) {
    if (grow((void **)&c->heap, &c->heap_cap, c->heap_n + 1, sizeof(cand))) return -1;
    size_t i = c->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&x, &c->heap[p])) break;
        c->heap[i] = c->heap[p];
        i = p;
    }
    c->heap[i] = x;
    return 0;
}

// Moves heap[i] down to its place among heap[0..n).
static void sift_down(cand *h, size_t i, size_t n) {
    cand x = h[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const cand *best = &x;
        if (l < n && cand_less(&h[l], best)) { m = l; best = &h[l]; }
        if (r < n && cand_less(&h[r], best)) { m = r; }
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    h[i] = x;
}

static cand heap_pop(enc_ctx *c) {
    cand top = c->heap[0];
    cand x = c->heap[--c->heap_n];
    size_t i = 0, n = c->heap_n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const cand *best = &x;
        if (l < n && cand_less(&c->heap[l], best)) { m = l; best = &c->heap[l]; }
        if (r < n && cand_less(&c->heap[r], best)) { m = r; }
        if (m == i) break;
        c->heap[i] = c->heap[m];
        i = m;
    }
    if (n) c->heap[i] = x;
    return top;
}

static int try_pair(enc_ctx *c, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return 0;
    const tok_pair *p = tok_pair_get(c->t, c->syms[l].id, c->syms[r].id);
    if (!p) return 0;
    return heap_push(c, (cand){p->prio, l, r, c->syms[l].id, c->syms[r].id, p->result});
}

// Merges syms[0..n) in place until no adjacent pair is in the pair table.
static int merge_all(enc_ctx *c, int32_t n) {
    // initial pairs: append all, then heapify in O(n)
    c->heap_n = 0;
    if (n > 1 && grow((void **)&c->heap, &c->heap_cap, (size_t)n, sizeof(cand))) return -1;
    for (int32_t i = 0; i + 1 < n; i++) {
        const tok_pair *p = tok_pair_get(c->t, c->syms[i].id, c->syms[i + 1].id);
        if (p) c->heap[c->heap_n++] = (cand){p->prio, i, i + 1, c->syms[i].id, c->syms[i + 1].id, p->result};
    }
    for (size_t i = c->heap_n / 2; i-- > 0;) sift_down(c->heap, i, c->heap_n);
    while (c->heap_n) {
        cand x = heap_pop(c);
        sym *L = &c->syms[x.left], *R = &c->syms[x.right];
        if (L->id != x.lid || R->id != x.rid || L->next != x.right) continue; // stale
        L->id = x.result;
        L->len += R->len;
        L->next = R->next;
        if (R->next >= 0) c->syms[R->next].prev = x.left;
        R->id = -2;
        if (try_pair(c, L->prev, x.left) || try_pair(c, x.left, L->next)) return -1;
    }
    return 0;
}

// ---- SentencePiece BPE ----

static int spm_segment(enc_ctx *c, const char *s, size_t len, int prefix) {
    const e2h_tokenizer *t = c->t;
    // normalized text: optional "▁" prefix, spaces -> "▁"
    if (len > (SIZE_MAX - 4) / 3 || grow((void **)&c->buf, &c->buf_cap, len * 3 + 4, 1)) return -1;
    size_t n = 0;
    if (prefix) { memcpy(c->buf, "\xe2\x96\x81", 3); n = 3; }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') { memcpy(c->buf + n, "\xe2\x96\x81", 3); n += 3; }
        else c->buf[n++] = s[i];
    }
    if (grow((void **)&c->syms, &c->syms_cap, n + 1, sizeof(sym))) return -1;
    int32_t ns = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = tok_utf8_decode((const uint8_t *)c->buf + i, n - i, &cp);
        if (!l) l = 1; // cannot happen on sanitized input
        c->syms[ns] = (sym){tok_lookup(t, c->buf + i, (size_t)l), ns - 1, ns + 1, (uint32_t)i,
                            (uint32_t)l};
        ns++;
        i += (size_t)l;
    }
    if (ns) c->syms[ns - 1].next = -1;
    if (merge_all(c, ns)) return -1;
    for (int32_t i = 0; i < ns && ns; i = c->syms[i].next) {
        const sym *y = &c->syms[i];
        if (y->id >= 0) {
            out_push(c, y->id);
        } else { // byte fallback, or <unk> when the vocabulary has no byte tokens
            int all = 1;
            for (uint32_t k = 0; k < y->len; k++)
                if (t->byte_ids[(uint8_t)c->buf[y->off + k]] < 0) all = 0;
            if (all) {
                for (uint32_t k = 0; k < y->len; k++)
                    out_push(c, t->byte_ids[(uint8_t)c->buf[y->off + k]]);
            } else if (t->unk >= 0) {
                out_push(c, t->unk);
            }
        }
        if (y->next < 0) break;
    }
    return 0;
}

// ---- byte-level BPE ----

static int bpe_word(void *ctx, const char *s, size_t len) {
    enc_ctx *c = ctx;
    const e2h_tokenizer *t = c->t;
    if (!len) return 0;
    if (t->ignore_merges) {
        // whole-word lookup needs the byte-mapped form
        if (len > (SIZE_MAX - 1) / 2 || grow((void **)&c->buf, &c->buf_cap, len * 2 + 1, 1)) return -1;
        size_t n = 0;
        for (size_t i = 0; i < len; i++) n += (size_t)tok_byte_to_utf8((uint8_t)s[i], c->buf + n);
        int32_t id = tok_lookup(t, c->buf, n);
        if (id >= 0) { out_push(c, id); return 0; }
    }
    if (grow((void **)&c->syms, &c->syms_cap, len + 1, sizeof(sym))) return -1;
    int32_t ns = (int32_t)len;
    for (int32_t i = 0; i < ns; i++)
        c->syms[i] = (sym){t->byte_ids[(uint8_t)s[i]], i - 1, i + 1, (uint32_t)i, 1};
    c->syms[ns - 1].next = -1;
    if (merge_all(c, ns)) return -1;
    for (int32_t i = 0; i >= 0; i = c->syms[i].next) {
        if (c->syms[i].id >= 0) out_push(c, c->syms[i].id);
        else if (t->unk >= 0) out_push(c, t->unk);
    }
    return 0;
}

// ---- added tokens ----

// Longest added token starting at s[i], or NULL.
static const tok_added *added_at(const e2h_tokenizer *t, const char *s, size_t len, size_t i) {
    uint8_t b = (uint8_t)s[i];
    for (int32_t k = t->added_first[b]; k < t->added_first[b + 1]; k++) {
        const tok_added *a = &t->added[k];
        if (a->len <= len - i && memcmp(a->text, s + i, a->len) == 0) return a;
    }
    return NULL;
}

// Unicode White_Space (Rust's char::is_whitespace, which the reference's lstrip/rstrip use).
static int is_white_cp(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

// Bytes of the white-space character starting at s[i] (i < len), or 0.
static size_t ws_after(const char *s, size_t len, size_t i) {
    uint32_t cp;
    int l = tok_utf8_decode((const uint8_t *)s + i, len - i, &cp);
    return l && is_white_cp(cp) ? (size_t)l : 0;
}

// Bytes of the white-space character ending at s[end) (that starts at or after from), or 0.
static size_t ws_before(const char *s, size_t from, size_t end) {
    size_t b = end;
    while (b > from && end - b < 4) {
        b--;
        if (((uint8_t)s[b] & 0xC0) != 0x80) break; // the lead byte
    }
    if (b == end) return 0;
    size_t l = ws_after(s, end, b);
    return l == end - b ? l : 0;
}

static int encode_segment(enc_ctx *c, const char *s, size_t len, int first) {
    if (!len) return 0;
    // The NFC normalizer runs on the text between added tokens, as in the reference (its
    // added tokens match the raw text). Most text is ASCII or already NFC: checked first.
    char *norm = NULL;
    if (c->t->nfc && !tok_nfc_quick_check(s, len)) {
        norm = tok_nfc_normalize(s, len, &len);
        if (!norm) return -1;
        s = norm;
    }
    int rc;
    if (c->t->family == TOK_SPM)
        rc = spm_segment(c, s, len, c->t->add_space_prefix && (first || c->t->prefix_all_segments));
    else
        rc = tok_pretok_split(c->t, s, len, bpe_word, c);
    free(norm);
    return rc;
}

static int encode_text(enc_ctx *c, const char *s, size_t len) {
    const e2h_tokenizer *t = c->t;
    size_t seg = 0; // start of the pending text segment
    int first = 1;
    for (size_t i = 0; i < len;) {
        const tok_added *a = t->n_added ? added_at(t, s, len, i) : NULL;
        if (!a) { i++; continue; }
        size_t end = i;
        if (a->lstrip)
            for (size_t w; end > seg && (w = ws_before(s, seg, end));) end -= w;
        int rc = encode_segment(c, s + seg, end - seg, first);
        if (rc) return rc;
        if (end > seg) first = 0;
        out_push(c, a->id);
        first = 0;
        i += a->len;
        if (a->rstrip)
            for (size_t w; i < len && (w = ws_after(s, len, i));) i += w;
        seg = i;
    }
    return encode_segment(c, s + seg, len - seg, first);
}

static int utf8_valid(const char *s, size_t len) {
    for (size_t i = 0; i < len;) {
        if ((uint8_t)s[i] < 0x80) { i++; continue; }
        uint32_t cp;
        int l = tok_utf8_decode((const uint8_t *)s + i, len - i, &cp);
        if (!l) return 0;
        i += (size_t)l;
    }
    return 1;
}

e2h_status e2h_tokenize(const e2h_tokenizer *t, const char *text, size_t len, int add_special,
                        int32_t *ids, int32_t cap, int32_t *n_ids) {
    if (!t || (!text && len) || !n_ids || cap < 0 || (cap && !ids)) return E2H_ERR_INVALID_ARG;
    *n_ids = 0;
    char *clean = NULL;
    if (len && !utf8_valid(text, len)) {
        clean = tok_utf8_sanitize(text, len, &len);
        if (!clean) return E2H_ERR_NOMEM;
        text = clean;
    }
    enc_ctx c = {0};
    c.t = t;
    c.ids = ids;
    c.cap = cap;
    if (add_special && t->add_bos && t->bos >= 0) out_push(&c, t->bos);
    int rc = len ? encode_text(&c, text, len) : 0;
    if (add_special && t->add_eos && t->eos >= 0) out_push(&c, t->eos);
    free(c.syms);
    free(c.heap);
    free(c.buf);
    free(clean);
    if (rc) return rc == TOK_SPLIT_REGEX ? E2H_ERR_TOKENIZER : E2H_ERR_NOMEM;
    if (c.n > INT32_MAX) return E2H_ERR_CONTEXT;
    *n_ids = (int32_t)c.n;
    return E2H_OK;
}
