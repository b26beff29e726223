// engine/model_chat.c — what the model's chat template says: its default system turn.
#include "model.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../formats/gguf.h"
#include "util.h"

// A ChatML template that inserts a fixed system turn when the conversation has none holds it
// as a literal: '<|im_start|>system\n<text><|im_end|>' (SmolLM2, Qwen2). Returns a copy of
// <text>, or NULL when the template has no such literal (a text with template syntax in it
// is not a literal).
static char *model_template_system(const char *t, size_t len) {
    static const char *open = "<|im_start|>system", *close = "<|im_end|>";
    const char *end = t + len;
    for (const char *p = t; p && p < end; p = memchr(p + 1, '<', (size_t)(end - p - 1))) {
        if ((size_t)(end - p) < strlen(open) || strncmp(p, open, strlen(open))) continue;
        const char *s = p + strlen(open);
        int escaped = 0; // inside a Jinja string literal: \\, \n, \' are escapes
        if (end - s >= 2 && s[0] == '\\' && s[1] == 'n') s += 2, escaped = 1;
        else if (s < end && s[0] == '\n') s += 1;
        else continue;
        const char *e = s;
        while (e < end && (size_t)(end - e) >= strlen(close) && strncmp(e, close, strlen(close))) e++;
        if ((size_t)(end - e) < strlen(close) || e == s) continue;
        // a literal has no template syntax ({{ }} {% %}, an unescaped quote ending the string
        // or +): single braces are text (Qwen2.5-Math's "\\boxed{}")
        int literal = 1;
        for (const char *q = s; q < e; q++) {
            if (escaped && *q == '\\' && q + 1 < e) { q++; continue; }
            literal &= *q != '\'' && *q != '+' && !(q + 1 < e && ((q[0] == '{' && (q[1] == '{' || q[1] == '%')) ||
                                                                 ((q[0] == '}' || q[0] == '%') && q[1] == '}')));
        }
        if (!literal) continue;
        size_t span = (size_t)(e - s);
        char *r = span < ((size_t)1 << 30) ? malloc(span + 1) : NULL;
        if (!r) return NULL;
        size_t n = 0;
        for (const char *q = s; q < e; q++) {
            if (escaped && *q == '\\' && q + 1 < e) {
                q++;
                r[n++] = *q == 'n' ? '\n' : *q == 't' ? '\t' : *q;
            } else {
                r[n++] = *q;
            }
        }
        r[n] = 0;
        return r;
    }
    return NULL;
}

// A NUL-terminated copy of len bytes (NULL when out of memory or absurdly long).
static char *model_chat_dup(const char *s, size_t len) {
    char *r = len < ((size_t)1 << 30) ? malloc(len + 1) : NULL;
    if (r) {
        memcpy(r, s, len);
        r[len] = 0;
    }
    return r;
}

// Reads the chat template (GGUF metadata or tokenizer_config.json): its text and its default
// system turn.
void model_load_chat_system(struct e2h_model *m, const char *path) {
    if (m->gguf) {
        gguf_str s;
        if (gguf_get_str((const gguf_file *)m->gguf, "tokenizer.chat_template", &s) == 0) {
            m->chat_system = model_template_system(s.ptr, (size_t)s.len);
            m->chat_template = model_chat_dup(s.ptr, (size_t)s.len);
        }
        return;
    }
    char p[2048], err[256], *txt = NULL;
    size_t n = 0;
    snprintf(p, sizeof p, "%s/tokenizer_config.json", path);
    if (access(p, F_OK) || fmt_read_file(p, &txt, &n, err, sizeof err)) return;
    cJSON *j = cJSON_ParseWithLength(txt, n);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "chat_template");
    if (cJSON_IsString(t)) {
        m->chat_system = model_template_system(t->valuestring, strlen(t->valuestring));
        m->chat_template = model_chat_dup(t->valuestring, strlen(t->valuestring));
    }
    cJSON_Delete(j);
    free(txt);
}

const char *e2h_model_chat_system(const e2h_model *m) { return m ? m->chat_system : NULL; }
const char *e2h_model_chat_template(const e2h_model *m) { return m ? m->chat_template : NULL; }

// Appends s to out (up to cap - 1 bytes kept, NUL-terminated), counting every byte in *n.
static void chat_put(char *out, size_t cap, size_t *n, const char *s) {
    size_t l = strlen(s);
    if (out && cap && *n < cap - 1) {
        size_t k = l < cap - 1 - *n ? l : cap - 1 - *n;
        memcpy(out + *n, s, k);
        out[*n + k] = 0;
    }
    *n += l;
}

static void chat_turn(char *out, size_t cap, size_t *n, const char *role, const char *content) {
    chat_put(out, cap, n, "<|im_start|>");
    chat_put(out, cap, n, role);
    chat_put(out, cap, n, "\n");
    chat_put(out, cap, n, content);
    chat_put(out, cap, n, "<|im_end|>\n");
}

e2h_status e2h_model_apply_chat_turns(const e2h_model *m, const char *system,
                                      const char *const *roles, const char *const *contents, int n,
                                      char *out, size_t cap, size_t *len) {
    if (!m || !len || n < 0 || (n > 0 && (!roles || !contents)) || (!out && cap)) return E2H_ERR_INVALID_ARG;
    for (int i = 0; i < n; i++)
        if (!roles[i] || !contents[i]) return E2H_ERR_INVALID_ARG;
    size_t k = 0;
    if (out && cap) out[0] = 0;
    const char *sys = system ? system : m->chat_system;
    if (sys && *sys && !(n > 0 && !strcmp(roles[0], "system"))) chat_turn(out, cap, &k, "system", sys);
    for (int i = 0; i < n; i++) chat_turn(out, cap, &k, roles[i], contents[i]);
    chat_put(out, cap, &k, "<|im_start|>assistant\n");
    *len = k;
    return E2H_OK;
}

e2h_status e2h_model_apply_chat(const e2h_model *m, const char *system, const char *user,
                                char *out, size_t cap, size_t *len) {
    if (!user) return E2H_ERR_INVALID_ARG;
    const char *role = "user";
    return e2h_model_apply_chat_turns(m, system, &role, &user, 1, out, cap, len);
}
