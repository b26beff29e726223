// tokenizer/load_json.c — builds a tokenizer from a Hugging Face tokenizer.json (BPE model,
// byte-level or SentencePiece-style) plus tokenizer_config.json for BOS/EOS options. The
// pieces of the pipeline we support are read from the file, so a model directory and its
// GGUF conversion tokenize identically.
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../formats/json_util.h"
#include "tokenizer.h"

#define GPT2_RE \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

static cJSON *read_json(const char *path, char *err, size_t err_len, e2h_status *st) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        tok_set_err(err, err_len, "%s: cannot open", path);
        *st = E2H_ERR_IO;
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        tok_set_err(err, err_len, "%s: cannot read", path);
        *st = E2H_ERR_IO;
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    cJSON *j = cJSON_ParseWithLength(buf, (size_t)n);
    free(buf);
    if (!j) {
        tok_set_err(err, err_len, "%s: malformed JSON", path);
        *st = E2H_ERR_FORMAT;
    }
    return j;
}

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int jtrue(const cJSON *o, const char *key) {
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static int type_is(const cJSON *o, const char *type) {
    const char *t = jstr(o, "type");
    return t && strcmp(t, type) == 0;
}

// Finds a component of the given type in a pipeline stage (itself or inside a Sequence).
static const cJSON *find_component(const cJSON *stage, const char *list_key, const char *type) {
    if (!stage || cJSON_IsNull(stage)) return NULL;
    if (type_is(stage, type)) return stage;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(stage, list_key), *it;
    cJSON_ArrayForEach(it, list) {
        if (type_is(it, type)) return it;
    }
    return NULL;
}

// ---- vocabulary ----

// The vocabulary size is the largest id + 1, and ids are bounded by the number of entries
// (vocab + added tokens) plus a documented slack of TOK_ID_SLACK for sparse vocabularies, so
// a tiny file cannot ask for gigabytes. Returns -1 when an id is not an integer in that range.
#define TOK_ID_SLACK 65536
static int32_t vocab_size(const cJSON *vocab, const cJSON *added) {
    int64_t n_entries = (int64_t)cJSON_GetArraySize(vocab) + cJSON_GetArraySize(added);
    int64_t cap = n_entries + TOK_ID_SLACK, mx = -1, id;
    if (cap > INT32_MAX - 1) cap = INT32_MAX - 1;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        if (!json_num_to_i64(it, 0, cap - 1, &id)) return -1;
        if (id > mx) mx = id;
    }
    cJSON_ArrayForEach(it, added) {
        if (!json_num_to_i64(cJSON_GetObjectItemCaseSensitive(it, "id"), 0, cap - 1, &id)) return -1;
        if (id > mx) mx = id;
    }
    return mx < 0 ? -1 : (int32_t)(mx + 1);
}

static int is_byte_token(const char *s) {
    return strlen(s) == 6 && strncmp(s, "<0x", 3) == 0 && s[5] == '>';
}

static int fill_tokens(e2h_tokenizer *t, const cJSON *vocab, const cJSON *added,
                       int byte_fallback, const char *path, char *err, size_t err_len) {
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        int64_t d;
        if (!json_num_to_i64(it, 0, (int64_t)t->n_vocab - 1, &d)) {
            tok_set_err(err, err_len, "%s: model.vocab: bad id for token '%.40s'", path,
                        it->string ? it->string : "");
            return -1;
        }
        int32_t id = (int32_t)d;
        if (t->tokens[id].text) {
            tok_set_err(err, err_len, "%s: model.vocab: id %d is used twice", path, id);
            return -1;
        }
        int type = byte_fallback && is_byte_token(it->string) ? TOKT_BYTE : TOKT_NORMAL;
        if (tok_set_token(t, id, it->string, strlen(it->string), 0.0f, type)) return -1;
    }
    cJSON_ArrayForEach(it, added) {
        const cJSON *idj = cJSON_GetObjectItemCaseSensitive(it, "id");
        const char *content = jstr(it, "content");
        int64_t aid;
        if (!json_num_to_i64(idj, 0, (int64_t)t->n_vocab - 1, &aid) || !content) {
            tok_set_err(err, err_len, "%s: added_tokens: entry without a valid id and content",
                        path);
            return -1;
        }
        int32_t id = (int32_t)aid;
        if (tok_set_token(t, id, content, strlen(content), 0.0f,
                          jtrue(it, "special") ? TOKT_CONTROL : TOKT_USER))
            return -1;
    }
    return 0;
}

// lstrip/rstrip flags of added tokens live in tokenizer.json only.
static void apply_added_flags(e2h_tokenizer *t, const cJSON *added) {
    const cJSON *it;
    cJSON_ArrayForEach(it, added) {
        const cJSON *idj = cJSON_GetObjectItemCaseSensitive(it, "id");
        int64_t aid;
        if (!json_num_to_i64(idj, 0, INT32_MAX, &aid)) continue;
        for (int32_t k = 0; k < t->n_added; k++) {
            if (t->added[k].id != (int32_t)aid) continue;
            t->added[k].lstrip = (uint8_t)jtrue(it, "lstrip");
            t->added[k].rstrip = (uint8_t)jtrue(it, "rstrip");
        }
    }
}

static int add_merges(e2h_tokenizer *t, const cJSON *merges, const char *path, char *err,
                      size_t err_len) {
    int32_t rank = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        const char *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        if (cJSON_IsString(m)) { // "a b"
            const char *s = m->valuestring;
            const char *sp = s[0] ? strchr(s + 1, ' ') : NULL;
            if (sp) { a = s; al = (size_t)(sp - s); b = sp + 1; bl = strlen(b); }
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 &&
                   cJSON_IsString(cJSON_GetArrayItem(m, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(m, 1))) { // ["a", "b"]
            a = cJSON_GetArrayItem(m, 0)->valuestring;
            b = cJSON_GetArrayItem(m, 1)->valuestring;
            al = strlen(a);
            bl = strlen(b);
        }
        if (!a) {
            tok_set_err(err, err_len, "%s: model.merges[%d]: not a pair", path, rank);
            return -1;
        }
        if (tok_add_merge(t, a, al, b, bl, rank, path, err, err_len)) return -1;
        rank++;
    }
    return 0;
}

// ---- pipeline ----

// Regex list of a byte-level pre_tokenizer (Split / Digits / ByteLevel, alone or in a
// Sequence).
static int add_pretok(e2h_tokenizer *t, const cJSON *pt, const char *path, char *err,
                      size_t err_len) {
    if (!pt || cJSON_IsNull(pt)) return 0;
    if (type_is(pt, "Sequence")) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(pt, "pretokenizers")) {
            if (add_pretok(t, it, path, err, err_len)) return -1;
        }
        return 0;
    }
    if (type_is(pt, "ByteLevel")) {
        if (jtrue(pt, "add_prefix_space")) {
            tok_set_err(err, err_len, "%s: pre_tokenizer: ByteLevel add_prefix_space is unsupported",
                        path);
            return -1;
        }
        const cJSON *ur = cJSON_GetObjectItemCaseSensitive(pt, "use_regex");
        return (ur && cJSON_IsFalse(ur)) ? 0 : tok_pretok_add(t, GPT2_RE, path, err, err_len);
    }
    if (type_is(pt, "Digits"))
        return tok_pretok_add(t, jtrue(pt, "individual_digits") ? "\\p{N}" : "\\p{N}+", path, err,
                              err_len);
    if (type_is(pt, "Split")) {
        const char *beh = jstr(pt, "behavior");
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(pt, "pattern");
        const char *re = jstr(pat, "Regex");
        if (!beh || strcmp(beh, "Isolated") != 0 || jtrue(pt, "invert") || !re) {
            tok_set_err(err, err_len,
                        "%s: pre_tokenizer: only Split with a Regex and behavior Isolated is "
                        "supported",
                        path);
            return -1;
        }
        return tok_pretok_add(t, re, path, err, err_len);
    }
    tok_set_err(err, err_len, "%s: pre_tokenizer: unsupported type '%s'", path,
                jstr(pt, "type") ? jstr(pt, "type") : "?");
    return -1;
}

// SentencePiece-style "▁" handling: a Prepend normalizer prefixes every text segment; a
// Metaspace pre-tokenizer prefixes per its prepend_scheme.
static int spm_options(e2h_tokenizer *t, const cJSON *root, const char *path, char *err,
                       size_t err_len) {
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const cJSON *prep = find_component(norm, "normalizers", "Prepend");
    const cJSON *meta = find_component(pt, "pretokenizers", "Metaspace");
    if (prep) {
        t->add_space_prefix = 1;
        t->prefix_all_segments = 1;
    }
    if (meta) {
        const char *scheme = jstr(meta, "prepend_scheme");
        if (jtrue(meta, "split")) {
            tok_set_err(err, err_len, "%s: pre_tokenizer: Metaspace with split=true is unsupported",
                        path);
            return -1;
        }
        if (!scheme) scheme = jtrue(meta, "add_prefix_space") ? "always" : "never";
        t->add_space_prefix = strcmp(scheme, "never") != 0;
        t->prefix_all_segments = strcmp(scheme, "always") == 0;
    }
    t->strip_leading_space = t->add_space_prefix;
    return 0;
}

static int32_t token_ref(const e2h_tokenizer *t, const cJSON *v) {
    const char *s = cJSON_IsString(v) ? v->valuestring : jstr(v, "content");
    return s ? e2h_tokenizer_find(t, s, strlen(s)) : -1;
}

// BOS/EOS: tokenizer_config.json when present, else the post_processor's template.
static void special_options(e2h_tokenizer *t, const cJSON *root, const cJSON *cfg) {
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    const cJSON *tp = find_component(pp, "processors", "TemplateProcessing");
    if (tp) {
        const cJSON *single = cJSON_GetObjectItemCaseSensitive(tp, "single");
        int n = cJSON_GetArraySize(single);
        const cJSON *first = cJSON_GetArrayItem(single, 0), *last = cJSON_GetArrayItem(single, n - 1);
        const char *fb = jstr(cJSON_GetObjectItemCaseSensitive(first, "SpecialToken"), "id");
        const char *le = jstr(cJSON_GetObjectItemCaseSensitive(last, "SpecialToken"), "id");
        if (fb) {
            t->bos = e2h_tokenizer_find(t, fb, strlen(fb));
            t->add_bos = t->bos >= 0;
        }
        if (le && n > 1) {
            t->eos = e2h_tokenizer_find(t, le, strlen(le));
            t->add_eos = t->eos >= 0;
        }
    }
    if (!cfg) return;
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(cfg, "bos_token");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(cfg, "eos_token");
    if (b && !cJSON_IsNull(b)) t->bos = token_ref(t, b);
    if (e && !cJSON_IsNull(e)) t->eos = token_ref(t, e);
    const cJSON *ab = cJSON_GetObjectItemCaseSensitive(cfg, "add_bos_token");
    const cJSON *ae = cJSON_GetObjectItemCaseSensitive(cfg, "add_eos_token");
    if (cJSON_IsBool(ab)) t->add_bos = cJSON_IsTrue(ab);
    if (cJSON_IsBool(ae)) t->add_eos = cJSON_IsTrue(ae);
}

static e2h_status build(const cJSON *root, const cJSON *cfg, const char *path,
                        e2h_tokenizer **out, char *err, size_t err_len) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!model || !type_is(model, "BPE")) {
        tok_set_err(err, err_len, "%s: model.type: missing or not BPE (unsupported)", path);
        return model ? E2H_ERR_UNSUPPORTED : E2H_ERR_FORMAT;
    }
    if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges)) {
        tok_set_err(err, err_len, "%s: model.vocab/model.merges: missing", path);
        return E2H_ERR_FORMAT;
    }
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    int byte_level = find_component(pt, "pretokenizers", "ByteLevel") ||
                     find_component(dec, "decoders", "ByteLevel");
    int byte_fallback = jtrue(model, "byte_fallback");
    int32_t n = vocab_size(vocab, added);
    if (n <= 0) {
        tok_set_err(err, err_len, "%s: model.vocab/added_tokens: empty, or an id that is not an "
                    "integer in [0, entries + %d)", path, TOK_ID_SLACK);
        return E2H_ERR_FORMAT;
    }
    e2h_tokenizer *t = tok_alloc(n);
    if (!t) {
        tok_set_err(err, err_len, "%s: out of memory for a vocabulary of %d tokens", path, n);
        return E2H_ERR_NOMEM;
    }
    t->family = byte_level ? TOK_BPE : TOK_SPM;
    t->spm_explicit_merges = 1;
    if (fill_tokens(t, vocab, added, byte_fallback, path, err, err_len) ||
        tok_finalize(t, path, err, err_len) || add_merges(t, merges, path, err, err_len))
        goto fail;
    apply_added_flags(t, added);
    const char *unk = jstr(model, "unk_token");
    if (unk) t->unk = tok_lookup(t, unk, strlen(unk));
    t->ignore_merges = jtrue(model, "ignore_merges");
    // an NFC normalizer, alone or in a Sequence (GPT-NeoX-20B, MPT)
    t->nfc = find_component(cJSON_GetObjectItemCaseSensitive(root, "normalizer"), "normalizers",
                            "NFC") != NULL;
    if (byte_level) {
        if (add_pretok(t, pt, path, err, err_len)) goto fail;
        snprintf(t->pre_name, sizeof t->pre_name, "tokenizer.json");
    } else if (spm_options(t, root, path, err, err_len)) {
        goto fail;
    }
    special_options(t, root, cfg);
    *out = t;
    return E2H_OK;
fail:
    e2h_tokenizer_free(t);
    return E2H_ERR_TOKENIZER;
}

e2h_status tok_load_json(const char *json_path, const char *config_path, e2h_tokenizer **out,
                         char *err, size_t err_len) {
    *out = NULL;
    e2h_status st = E2H_OK;
    cJSON *root = read_json(json_path, err, err_len, &st);
    if (!root) return st;
    cJSON *cfg = config_path ? read_json(config_path, err, err_len, &st) : NULL;
    if (config_path && !cfg) {
        cJSON_Delete(root);
        return st;
    }
    st = build(root, cfg, json_path, out, err, err_len);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    return st;
}
