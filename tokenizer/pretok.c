// tokenizer/pretok.c — the regex pre-tokenizers of byte-level BPE
// vocabularies (PCRE2 with JIT; patterns are the ones in each model's tokenizer.json).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

// ---- regexes ----

#define RE_GPT2 \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define RE_LLAMA3                                                                           \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "             \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2                                                                            \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "                  \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_DEEPSEEK_LETTERS /* cased letters, escaped so no editor normalizes them */ \
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}" \
    "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}" \
    "\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-" \
    "\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}" \
    "\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}" \
    "\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}" \
    "\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}" \
    "\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-" \
    "\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-" \
    "\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}" \
    "\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-" \
    "\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}" \
    "\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}" \
    "\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}" \
    "\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}" \
    "\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}" \
    "\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}" \
    "\\x{1E900}-\\x{1E943}]+"

typedef struct {
    const char *names; // '|'-separated GGUF tokenizer.ggml.pre values
    const char *re[TOK_MAX_REGEX];
} pretok_def;

static const pretok_def pretok_defs[] = {
    {"|default|gpt-2|gpt2|mpt|olmo|jais|", {RE_GPT2}},
    {"|starcoder|refact|smollm|codeshell|command-r|exaone|", {"\\p{N}", RE_GPT2}},
    {"|falcon|", {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}},
    {"|llama3|llama-bpe|llama-v3|dbrx|smaug-bpe|chatglm-bpe|", {RE_LLAMA3}},
    {"|qwen2|stablelm2|hunyuan|megrez|", {RE_QWEN2}},
    {"|deepseek-llm|",
     {"[\r\n]", RE_DEEPSEEK_LETTERS, "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+", "\\s+$",
      "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+", "\\p{N}+"}},
    {"|deepseek-coder|", {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+", "\\p{N}"}},
};

int tok_pretok_add(e2h_tokenizer *t, const char *pattern, const char *path, char *err,
                   size_t err_len) {
    if (t->n_regex >= TOK_MAX_REGEX) {
        tok_set_err(err, err_len, "%s: pre_tokenizer: more than %d split patterns", path,
                    TOK_MAX_REGEX);
        return -1;
    }
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        tok_set_err(err, err_len, "%s: pre_tokenizer: bad regex '%.80s' at %zu: %s", path,
                    pattern, (size_t)eo, (const char *)msg);
        return -1;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); // falls back to the interpreter on failure
    t->regex[t->n_regex++] = re;
    return 0;
}

int tok_pretok_set_named(e2h_tokenizer *t, const char *name, const char *path, char *err,
                         size_t err_len) {
    char key[80];
    snprintf(key, sizeof key, "|%s|", name && *name ? name : "default");
    for (size_t i = 0; i < sizeof pretok_defs / sizeof pretok_defs[0]; i++) {
        if (!strstr(pretok_defs[i].names, key)) continue;
        for (int k = 0; k < TOK_MAX_REGEX && pretok_defs[i].re[k]; k++)
            if (tok_pretok_add(t, pretok_defs[i].re[k], path, err, err_len)) return -1;
        snprintf(t->pre_name, sizeof t->pre_name, "%s", name && *name ? name : "default");
        return 0;
    }
    tok_set_err(err, err_len, "%s: tokenizer.ggml.pre: unsupported pre-tokenizer '%.60s'", path,
                name);
    return -1;
}

// ---- splitting ----

typedef struct { size_t off, len; } span;
typedef struct { span *v; size_t n, cap; } span_list;

static int span_push(span_list *l, size_t off, size_t len) {
    if (!len) return 0;
    if (l->n == l->cap) {
        if (l->cap > SIZE_MAX / 2 / sizeof(span)) return TOK_SPLIT_NOMEM;
        size_t nc = l->cap ? l->cap * 2 : 64;
        span *nv = realloc(l->v, nc * sizeof *nv);
        if (!nv) return -1;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = (span){off, len};
    return 0;
}

static int span_valid_utf8(const char *s, size_t len) {
    for (size_t i = 0; i < len;) {
        int full, l = tok_utf8_prefix((const uint8_t *)s + i, len - i, &full);
        if (!full) return 0;
        i += (size_t)l;
    }
    return 1;
}

// Splits s[sp] by re into matches and gaps (HF Split behaviour "Isolated").
// PCRE2_NO_UTF_CHECK is a promise that the subject is valid UTF-8 (undefined behaviour
// otherwise: fuzzing saw a match whose start lay after its end, and a hang). The whole text is
// sanitized before encoding, but an earlier split (an added token or a `\C` pattern) can cut
// inside a character: such a piece is kept whole, unsplit. A match span that is still
// impossible, or a PCRE2 error such as its match limit, is TOK_SPLIT_REGEX, not out-of-memory.
static int split_one(const pcre2_code *re, pcre2_match_data *md, pcre2_match_context *mc,
                     const char *s, span sp, span_list *out) {
    const char *sub = s + sp.off;
    if (!span_valid_utf8(sub, sp.len)) return span_push(out, sp.off, sp.len);
    size_t pos = 0, gap = 0;
    while (pos < sp.len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)sub, sp.len, pos, PCRE2_NO_UTF_CHECK, md, mc);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc == PCRE2_ERROR_NOMEMORY) return TOK_SPLIT_NOMEM;
        if (rc < 0) return TOK_SPLIT_REGEX;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (ms < pos || me < ms || me > sp.len || ms < gap) return TOK_SPLIT_REGEX;
        if (me == ms) { // empty match: step one character and keep it in the gap
            pos = ms + 1;
            while (pos < sp.len && ((uint8_t)sub[pos] & 0xC0) == 0x80) pos++;
            continue;
        }
        if (span_push(out, sp.off + gap, ms - gap) || span_push(out, sp.off + ms, me - ms))
            return -1;
        gap = pos = me;
    }
    return span_push(out, sp.off + gap, sp.len - gap);
}

int tok_pretok_split(const e2h_tokenizer *t, const char *s, size_t len, tok_word_fn fn,
                     void *ctx) {
    if (!len) return 0;
    if (t->n_regex == 0) return fn(ctx, s, len);
    span_list a = {0}, b = {0};
    int rc = TOK_SPLIT_NOMEM;
    pcre2_match_data *md = pcre2_match_data_create(16, NULL);
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    pcre2_jit_stack *js = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, NULL);
    if (!md || !mc || !js) goto done;
    pcre2_jit_stack_assign(mc, NULL, js);
    if (span_push(&a, 0, len)) goto done;
    for (int r = 0; r < t->n_regex; r++) {
        b.n = 0;
        for (size_t i = 0; i < a.n; i++)
            if ((rc = split_one(t->regex[r], md, mc, s, a.v[i], &b)) != 0) goto done;
        span_list tmp = a;
        a = b;
        b = tmp;
    }
    rc = 0;
    for (size_t i = 0; i < a.n && rc == 0; i++) rc = fn(ctx, s + a.v[i].off, a.v[i].len);
done:
    free(a.v);
    free(b.v);
    pcre2_match_data_free(md);
    pcre2_match_context_free(mc);
    pcre2_jit_stack_free(js);
    return rc;
}
