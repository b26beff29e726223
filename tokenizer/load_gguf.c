// tokenizer/load_gguf.c — builds a tokenizer from GGUF metadata (tokenizer.ggml.*), as
// written by llama.cpp's converter; a vocabulary-only GGUF works.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../formats/gguf.h"
#include "tokenizer.h"

// Reads element i of a numeric array kv as float (scores) or int (token types).
static float arr_f32(const gguf_kv *kv, uint64_t i) {
    float v;
    memcpy(&v, (const char *)kv->data + i * 4, 4);
    return v;
}
static int32_t arr_i32(const gguf_kv *kv, uint64_t i) {
    int32_t v;
    memcpy(&v, (const char *)kv->data + i * 4, 4);
    return v;
}

static int check_arr(const gguf_kv *kv, int want_type, uint64_t n, const char *key,
                     const char *path, char *err, size_t err_len) {
    if (!kv) return 0;
    int ok = kv->type == GGUF_T_ARRAY &&
             (kv->arr_type == want_type ||
              (want_type == GGUF_T_INT32 && kv->arr_type == GGUF_T_UINT32));
    if (!ok) {
        tok_set_err(err, err_len, "%s: %s: expected an array of type %d", path, key, want_type);
        return -1;
    }
    if (n && kv->arr_n != n) {
        tok_set_err(err, err_len, "%s: %s: has %llu entries, tokenizer.ggml.tokens has %llu",
                    path, key, (unsigned long long)kv->arr_n, (unsigned long long)n);
        return -1;
    }
    return 0;
}

static int load_tokens(e2h_tokenizer *t, gguf_file *f, const gguf_kv *toks, const char *path,
                       char *err, size_t err_len) {
    const gguf_kv *sc = gguf_find_kv(f, "tokenizer.ggml.scores");
    const gguf_kv *ty = gguf_find_kv(f, "tokenizer.ggml.token_type");
    if (check_arr(sc, GGUF_T_FLOAT32, toks->arr_n, "tokenizer.ggml.scores", path, err, err_len) ||
        check_arr(ty, GGUF_T_INT32, toks->arr_n, "tokenizer.ggml.token_type", path, err, err_len))
        return -1;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        gguf_str s;
        gguf_arr_str(f, toks, (uint64_t)i, &s);
        int type = ty ? arr_i32(ty, (uint64_t)i) : TOKT_NORMAL;
        if (type < TOKT_NORMAL || type > TOKT_BYTE) type = TOKT_NORMAL;
        if (tok_set_token(t, i, s.ptr, s.len, sc ? arr_f32(sc, (uint64_t)i) : 0.0f, type)) {
            tok_set_err(err, err_len, "%s: out of memory", path);
            return -1;
        }
    }
    return 0;
}

static int load_merges(e2h_tokenizer *t, gguf_file *f, const char *path, char *err,
                       size_t err_len) {
    const gguf_kv *m = gguf_find_kv(f, "tokenizer.ggml.merges");
    if (!m) {
        tok_set_err(err, err_len, "%s: tokenizer.ggml.merges: missing (needed by a gpt2 vocabulary)",
                    path);
        return -1;
    }
    if (check_arr(m, GGUF_T_STRING, 0, "tokenizer.ggml.merges", path, err, err_len)) return -1;
    if (m->arr_n > INT32_MAX) {
        tok_set_err(err, err_len, "%s: tokenizer.ggml.merges: too many entries", path);
        return -1;
    }
    for (uint64_t i = 0; i < m->arr_n; i++) {
        gguf_str s;
        gguf_arr_str(f, m, i, &s);
        const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
        if (!sp) {
            tok_set_err(err, err_len, "%s: tokenizer.ggml.merges[%llu]: not of the form 'a b'",
                        path, (unsigned long long)i);
            return -1;
        }
        size_t al = (size_t)(sp - s.ptr);
        if (tok_add_merge(t, s.ptr, al, sp + 1, s.len - al - 1, (int32_t)i, path, err, err_len))
            return -1;
    }
    return 0;
}

static void read_special_ids(e2h_tokenizer *t, gguf_file *f) {
    uint32_t v;
    int b;
    if (gguf_get_u32(f, "tokenizer.ggml.bos_token_id", &v) == 0) t->bos = (int32_t)v;
    if (gguf_get_u32(f, "tokenizer.ggml.eos_token_id", &v) == 0) t->eos = (int32_t)v;
    if (gguf_get_u32(f, "tokenizer.ggml.unknown_token_id", &v) == 0) t->unk = (int32_t)v;
    t->add_bos = t->family == TOK_SPM;
    if (gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b) == 0) t->add_bos = b;
    if (gguf_get_bool(f, "tokenizer.ggml.add_eos_token", &b) == 0) t->add_eos = b;
    t->add_space_prefix = t->family == TOK_SPM;
    if (gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", &b) == 0) t->add_space_prefix = b;
    t->prefix_all_segments = 1;
    t->strip_leading_space = t->add_space_prefix;
}

// Whether the vocabulary is GPT-NeoX-20B's, whose tokenizer.json normalizes text to NFC (a
// GGUF does not record normalizers). llama.cpp's converter names that tokenizer "mpt" (MPT-7B
// uses it); GGUFs converted before tokenizer.ggml.pre existed have no name, and then the
// architecture tells: "gptneox" (GPT-NeoX-20B, Pythia, RedPajama-INCITE, StableLM-alpha) all
// use the GPT-NeoX-20B tokenizer.
static int uses_neox_tokenizer(gguf_file *f, const char *pre_name, size_t pre_len) {
    if (strcmp(pre_name, "mpt") == 0) return 1;
    gguf_str arch;
    return pre_len == 0 && gguf_get_str(f, "general.architecture", &arch) == 0 &&
           arch.len == 7 && memcmp(arch.ptr, "gptneox", 7) == 0;
}

// A GGUF does not record the lstrip/rstrip flags of tokenizer.json's added tokens. Phi-3's
// tokenizer.json sets rstrip on its special tokens ("</s>", "<|user|>", "<|end|>", ...: the
// white space after them is dropped) except "<unk>", "<s>" and "<|endoftext|>"; like llama.cpp
// (llama-vocab.cpp), recognise that vocabulary by general.name containing "phi-3" or "phi3".
static void apply_strip_attrs(e2h_tokenizer *t, gguf_file *f) {
    gguf_str name;
    if (gguf_get_str(f, "general.name", &name) != 0) return;
    char low[128];
    size_t n = name.len < sizeof low - 1 ? name.len : sizeof low - 1;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)(name.ptr[i] >= 'A' && name.ptr[i] <= 'Z' ? name.ptr[i] + 32 : name.ptr[i]);
    low[n] = 0;
    if (!strstr(low, "phi-3") && !strstr(low, "phi3")) return;
    static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
    for (int32_t k = 0; k < t->n_added; k++) {
        tok_added *a = &t->added[k];
        a->rstrip = 1;
        for (size_t j = 0; j < sizeof keep / sizeof keep[0]; j++)
            if (a->len == strlen(keep[j]) && memcmp(a->text, keep[j], a->len) == 0) a->rstrip = 0;
    }
}

static e2h_status build(gguf_file *f, const char *path, e2h_tokenizer **out, char *err,
                        size_t err_len) {
    gguf_str model;
    if (gguf_get_str(f, "tokenizer.ggml.model", &model) != 0) {
        tok_set_err(err, err_len, "%s: tokenizer.ggml.model: missing (no tokenizer in this GGUF)",
                    path);
        return E2H_ERR_TOKENIZER;
    }
    int family = 0;
    if (model.len == 5 && memcmp(model.ptr, "llama", 5) == 0) family = TOK_SPM;
    if (model.len == 4 && memcmp(model.ptr, "gpt2", 4) == 0) family = TOK_BPE;
    if (!family) {
        tok_set_err(err, err_len, "%s: tokenizer.ggml.model: unsupported tokenizer '%.*s'", path,
                    (int)(model.len > 40 ? 40 : model.len), model.ptr);
        return E2H_ERR_UNSUPPORTED;
    }
    const gguf_kv *toks = gguf_find_kv(f, "tokenizer.ggml.tokens");
    if (!toks || check_arr(toks, GGUF_T_STRING, 0, "tokenizer.ggml.tokens", path, err, err_len) ||
        toks->arr_n == 0 || toks->arr_n > INT32_MAX) {
        if (!toks || toks->type == GGUF_T_ARRAY)
            tok_set_err(err, err_len, "%s: tokenizer.ggml.tokens: missing or empty", path);
        return E2H_ERR_TOKENIZER;
    }
    e2h_tokenizer *t = tok_alloc((int32_t)toks->arr_n);
    if (!t) {
        tok_set_err(err, err_len, "%s: out of memory", path);
        return E2H_ERR_NOMEM;
    }
    t->family = family;
    read_special_ids(t, f);
    if (load_tokens(t, f, toks, path, err, err_len) || tok_finalize(t, path, err, err_len))
        goto fail;
    apply_strip_attrs(t, f);
    if (family == TOK_BPE) {
        gguf_str pre = {"", 0};
        char name[64];
        gguf_get_str(f, "tokenizer.ggml.pre", &pre);
        snprintf(name, sizeof name, "%.*s", (int)(pre.len > 60 ? 60 : pre.len), pre.ptr);
        if (load_merges(t, f, path, err, err_len) ||
            tok_pretok_set_named(t, name, path, err, err_len))
            goto fail;
        t->ignore_merges = strcmp(name, "llama3") == 0 || strcmp(name, "llama-bpe") == 0;
        t->nfc = uses_neox_tokenizer(f, name, pre.len);
    }
    *out = t;
    return E2H_OK;
fail:
    e2h_tokenizer_free(t);
    return E2H_ERR_TOKENIZER;
}

e2h_status tok_load_gguf(const char *path, e2h_tokenizer **out, char *err, size_t err_len) {
    *out = NULL;
    gguf_file *f = gguf_open(path, err, err_len);
    if (!f) return E2H_ERR_FORMAT;
    e2h_status st = build(f, path, out, err, err_len);
    gguf_close(f); // every string was copied
    return st;
}
