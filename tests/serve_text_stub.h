// tests/serve_text_stub.h — a model-free stand-in for `e2h serve`'s text ops (srv_text,
// engine/cli/serve.h), shared by tests/test_serve_api.c and tests/fuzz/fuzz_serve_api.c:
//   - a byte tokenizer: BOS (id 1) when add_special, then id 3 + byte per byte, except that a
//     byte >= 0xF0 becomes three tokens, so a text can have more tokens than its bytes + 8
//     (the parsers' first guess); e2h_tokenize's contract: writes up to cap ids, *n_ids gets
//     the full count;
//   - a ChatML renderer with e2h_model_apply_chat_turns's contract (the default system turn
//     "You are a stand-in." unless the conversation has one; truncates to cap, *len gets the
//     full length).
// The vocabulary is 3 + 256 ids (STUB_VOCAB).
#ifndef E2H_TESTS_SERVE_TEXT_STUB_H
#define E2H_TESTS_SERVE_TEXT_STUB_H

#include <stdint.h>
#include <string.h>

#include "../engine/cli/serve.h"

#define STUB_VOCAB 259

static inline e2h_status stub_tokenize(const void *ctx, const char *text, size_t len, int add_special,
                              int32_t *ids, int32_t cap, int32_t *n_ids) {
    (void)ctx;
    int64_t n = 0;
    if (add_special) {
        if (n < cap) ids[n] = 1;
        n++;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        int k = c >= 0xF0 ? 3 : 1;
        for (int j = 0; j < k; j++, n++)
            if (n < cap) ids[n] = 3 + c;
    }
    if (n > INT32_MAX) return E2H_ERR_INVALID_ARG;
    *n_ids = (int32_t)n;
    return E2H_OK;
}

static inline void stub_put(char *out, size_t cap, size_t *k, const char *s) {
    size_t l = strlen(s);
    for (size_t i = 0; i < l; i++, (*k)++)
        if (out && *k + 1 < cap) out[*k] = s[i];
    if (out && cap) out[*k < cap ? *k : cap - 1] = 0;
}

static inline e2h_status stub_chat(const void *ctx, const char *system, const char *const *roles,
                          const char *const *contents, int n, char *out, size_t cap, size_t *len) {
    (void)ctx;
    if (!len || n < 0 || (n > 0 && (!roles || !contents)) || (!out && cap)) return E2H_ERR_INVALID_ARG;
    size_t k = 0;
    if (out && cap) out[0] = 0;
    const char *sys = system ? system : "You are a stand-in.";
    if (*sys && !(n > 0 && !strcmp(roles[0], "system"))) {
        stub_put(out, cap, &k, "<|im_start|>system\n");
        stub_put(out, cap, &k, sys);
        stub_put(out, cap, &k, "<|im_end|>\n");
    }
    for (int i = 0; i < n; i++) {
        if (!roles[i] || !contents[i]) return E2H_ERR_INVALID_ARG;
        stub_put(out, cap, &k, "<|im_start|>");
        stub_put(out, cap, &k, roles[i]);
        stub_put(out, cap, &k, "\n");
        stub_put(out, cap, &k, contents[i]);
        stub_put(out, cap, &k, "<|im_end|>\n");
    }
    stub_put(out, cap, &k, "<|im_start|>assistant\n");
    *len = k;
    return E2H_OK;
}

static inline srv_text stub_text(void) { return (srv_text){stub_tokenize, stub_chat, NULL}; }

#endif
