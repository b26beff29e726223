// engine/cli/serve_api.c — the OpenAI API of `e2h serve`: request validation (every field's
// type and range checked before conversion; a bad field is a 400 that names it) and the JSON
// of responses, stream chunks, /v1/models and /metrics. Runs in handler threads (parsing,
// tokenizing: both thread-safe) and in the scheduler thread (building responses); it never
// touches the engine.
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve.h"

double srv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// ------------------------------------------------------------------ the model's text ops

static e2h_status text_model_tokenize(const void *ctx, const char *text, size_t len, int add_special,
                                      int32_t *ids, int32_t cap, int32_t *n_ids) {
    return e2h_tokenize(e2h_model_tokenizer(ctx), text, len, add_special, ids, cap, n_ids);
}

static e2h_status text_model_chat(const void *ctx, const char *system, const char *const *roles,
                                  const char *const *contents, int n, char *out, size_t cap, size_t *len) {
    return e2h_model_apply_chat_turns(ctx, system, roles, contents, n, out, cap, len);
}

srv_text srv_text_model(const e2h_model *m) {
    return (srv_text){text_model_tokenize, text_model_chat, m};
}

e2h_status srv_tokenize_all(const srv *s, const char *text, size_t len, int add_special,
                            int32_t **ids, int32_t *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    if (len > (size_t)INT32_MAX - 8) return E2H_ERR_INVALID_ARG;
    int32_t cap = (int32_t)len + 8, n = 0; // enough for e2h's tokenizers (<= 1 token a byte)
    int32_t *b = malloc((size_t)cap * sizeof *b);
    if (!b) return E2H_ERR_NOMEM;
    e2h_status st = s->txt.tokenize(s->txt.ctx, text, len, add_special, b, cap, &n);
    if (!st && n > cap) { // more than the guess: once more at the size it reported
        int32_t *b2 = realloc(b, (size_t)n * sizeof *b);
        if (!b2) st = E2H_ERR_NOMEM;
        else {
            b = b2;
            cap = n;
            st = s->txt.tokenize(s->txt.ctx, text, len, add_special, b, cap, &n);
        }
    }
    if (!st && (n < 0 || n > cap)) st = E2H_ERR_INVALID_ARG; // the tokenizer changed its mind
    if (st) { free(b); return st; }
    *ids = b;
    *n_ids = n;
    return E2H_OK;
}

// KV blocks a generation request may use at most: its prompt, then n choices each growing
// to max_tokens (+1 for the partial block a fork copies).
int32_t srv_request_need(const srv *s, const srv_req *r) {
    int64_t bs = s->block_size, total = (int64_t)r->n_ids + r->max_tokens;
    if (total > s->max_ctx) total = s->max_ctx;
    int64_t gen = total - r->n_ids > 0 ? total - r->n_ids : 0;
    int64_t need = (r->n_ids + bs - 1) / bs + (int64_t)r->n * ((gen + bs - 1) / bs + 1);
    return need > INT32_MAX ? INT32_MAX : (int32_t)need;
}

// ------------------------------------------------------------------ errors

static const char *err_code(const char *type) {
    return !strcmp(type, "invalid_request_error") ? "invalid_request"
         : !strcmp(type, "authentication_error") ? "invalid_api_key"
         : !strcmp(type, "not_found_error") ? "not_found"
         : !strcmp(type, "rate_limit_error") ? "queue_full" : type;
}

char *srv_error_json(const char *message, const char *type, const char *param) {
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "type", type);
    if (param) cJSON_AddStringToObject(e, "param", param);
    else cJSON_AddNullToObject(e, "param");
    cJSON_AddStringToObject(e, "code", err_code(type));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

// A parse failure: status 400 (or given), message naming the field.
typedef struct {
    int status;
    char msg[512];
    const char *param;
} parse_err;

// Records the message and the field; returns -1 (so `return PERR(...)` fails the parse).
static int perr_set(parse_err *pe, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr_set(parse_err *pe, const char *field, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pe->msg, sizeof pe->msg, fmt, ap);
    va_end(ap);
    pe->param = field;
    return -1;
}
#define PERR(pe, field, ...) perr_set((pe), (field), __VA_ARGS__)

// ------------------------------------------------------------------ typed fields

// An optional number field in [lo, hi] (integral when want_int). Absent or null: *out
// unchanged, returns 0. Wrong type / out of range: -1 with the message.
static int get_num(const cJSON *o, const char *f, double lo, double hi, int want_int, double *out,
                   parse_err *pe) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, f);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v)) return PERR(pe, f, "'%s' must be a number", f);
    double d = v->valuedouble;
    if (!isfinite(d) || d < lo || d > hi)
        return PERR(pe, f, "'%s' must be in [%g, %g], got %g", f, lo, hi, d);
    if (want_int && d != floor(d)) return PERR(pe, f, "'%s' must be an integer, got %g", f, d);
    *out = d;
    return 0;
}

static int get_int(const cJSON *o, const char *f, long lo, long hi, long *out, parse_err *pe) {
    double d = (double)*out;
    if (get_num(o, f, (double)lo, (double)hi, 1, &d, pe)) return -1;
    *out = (long)d; // in [lo, hi] and integral: exact
    return 0;
}

static int get_bool(const cJSON *o, const char *f, int *out, parse_err *pe) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, f);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsBool(v)) return PERR(pe, f, "'%s' must be a boolean", f);
    *out = cJSON_IsTrue(v);
    return 0;
}

// ------------------------------------------------------------------ prompts

static int tokenize_text(const srv *s, const char *text, int add_special, srv_req *r, parse_err *pe,
                         const char *field) {
    size_t len = strlen(text);
    if (len > (size_t)s->lim.max_body) return PERR(pe, field, "'%s' is too long", field);
    int32_t n = 0;
    e2h_status st = srv_tokenize_all(s, text, len, add_special, &r->ids, &n);
    if (st == E2H_ERR_NOMEM) { pe->status = 500; return PERR(pe, field, "out of memory"); }
    if (st) return PERR(pe, field, "'%s' could not be tokenized (%s)", field, e2h_status_name(st));
    if (n == 0) return PERR(pe, field, "'%s' is empty", field);
    if (n > s->lim.max_prompt || n >= s->max_ctx)
        return PERR(pe, field, "'%s' has %d tokens; the limit is %ld (context %d)", field, n,
                    s->lim.max_prompt < s->max_ctx - 1 ? s->lim.max_prompt : (long)s->max_ctx - 1, s->max_ctx);
    r->n_ids = n;
    return 0;
}

static int parse_prompt(const srv *s, const cJSON *o, srv_req *r, parse_err *pe) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "prompt");
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1) p = cJSON_GetArrayItem(p, 0);
    else if (cJSON_IsArray(p)) return PERR(pe, "prompt", "'prompt' must be a string (or a list of one string)");
    if (!cJSON_IsString(p)) return PERR(pe, "prompt", "'prompt' is required and must be a string");
    return tokenize_text(s, p->valuestring, 1, r, pe, "prompt");
}

// A message's content: a string, or a list of {"type": "text", "text": ...} parts (joined).
static char *message_content(const cJSON *c, int k, parse_err *pe) {
    if (cJSON_IsString(c)) return strdup(c->valuestring);
    if (!cJSON_IsArray(c)) {
        PERR(pe, "messages", "'messages[%d].content' must be a string or a list of text parts", k);
        return NULL;
    }
    size_t len = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, c) {
        const cJSON *tx = cJSON_GetObjectItemCaseSensitive(it, "text");
        if (!cJSON_IsString(tx)) {
            PERR(pe, "messages", "'messages[%d].content': every part must be {\"type\": \"text\", \"text\": string}", k);
            return NULL;
        }
        len += strlen(tx->valuestring);
    }
    char *out = malloc(len + 1), *w = out;
    if (!out) return NULL;
    cJSON_ArrayForEach(it, c) {
        const char *t = cJSON_GetObjectItemCaseSensitive(it, "text")->valuestring;
        size_t l = strlen(t);
        memcpy(w, t, l);
        w += l;
    }
    *w = 0;
    return out;
}

static int parse_messages(const srv *s, const cJSON *o, srv_req *r, parse_err *pe) {
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(o, "messages");
    if (!cJSON_IsArray(ms) || cJSON_GetArraySize(ms) < 1)
        return PERR(pe, "messages", "'messages' is required and must be a non-empty list");
    int n = cJSON_GetArraySize(ms);
    if (n > 4096) return PERR(pe, "messages", "'messages' has more than 4096 turns");
    const char **roles = calloc((size_t)n, sizeof *roles);
    char **contents = calloc((size_t)n, sizeof *contents);
    int rc = roles && contents ? 0 : -1, k = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, ms) {
        if (rc) break;
        const cJSON *ro = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m) || !cJSON_IsString(ro))
            rc = PERR(pe, "messages", "'messages[%d]' must be an object with a string 'role'", k);
        else if (strcmp(ro->valuestring, "system") && strcmp(ro->valuestring, "user") &&
                 strcmp(ro->valuestring, "assistant"))
            rc = PERR(pe, "messages", "'messages[%d].role' must be system, user or assistant", k);
        else if (!(contents[k] = message_content(cJSON_GetObjectItemCaseSensitive(m, "content"), k, pe)))
            rc = -1;
        else roles[k] = ro->valuestring;
        k++;
    }
    char *text = NULL;
    size_t len = 0;
    if (!rc && s->txt.chat(s->txt.ctx, NULL, roles, (const char *const *)contents, n, NULL, 0, &len))
        rc = PERR(pe, "messages", "the chat template could not be applied");
    if (!rc && !(text = malloc(len + 1))) rc = -1;
    if (!rc && s->txt.chat(s->txt.ctx, NULL, roles, (const char *const *)contents, n, text, len + 1, &len))
        rc = PERR(pe, "messages", "the chat template could not be applied");
    // the template's special tokens are text here: tokenize without adding BOS (as --chat)
    if (!rc) rc = tokenize_text(s, text, 0, r, pe, "messages");
    if (rc && !pe->msg[0]) { pe->status = 500; PERR(pe, NULL, "out of memory"); }
    for (int i = 0; contents && i < n; i++) free(contents[i]);
    free(contents);
    free(roles);
    free(text);
    return rc;
}

// ------------------------------------------------------------------ sampling fields

static int parse_stop(const cJSON *o, srv_req *r, parse_err *pe) {
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "stop");
    if (!st || cJSON_IsNull(st)) return 0;
    const cJSON *one[1] = {st};
    int n = cJSON_IsString(st) ? 1 : cJSON_IsArray(st) ? cJSON_GetArraySize(st) : -1;
    if (n < 0) return PERR(pe, "stop", "'stop' must be a string or a list of strings");
    if (n > SRV_MAX_STOPS) return PERR(pe, "stop", "'stop' has more than %d strings", SRV_MAX_STOPS);
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_IsString(st) ? one[0] : cJSON_GetArrayItem(st, i);
        if (!cJSON_IsString(v)) return PERR(pe, "stop", "'stop[%d]' must be a string", i);
        size_t l = strlen(v->valuestring);
        if (l == 0 || l > 256) return PERR(pe, "stop", "'stop[%d]' must have 1 to 256 bytes", i);
        if (!(r->stops[r->n_stops] = strdup(v->valuestring))) return PERR(pe, "stop", "out of memory");
        r->n_stops++;
        if (l > r->stop_max) r->stop_max = l;
    }
    return 0;
}

static int parse_logprobs(const cJSON *o, srv_req *r, parse_err *pe) {
    if (r->kind == SRV_COMPLETION) { // legacy API: logprobs = number of alternatives (0..5)
        long k = -1;
        if (get_int(o, "logprobs", 0, 5, &k, pe)) return -1;
        r->logprobs = k >= 0;
        r->top_logprobs = k > 0 ? (int)k : 0;
        return 0;
    }
    long k = 0;
    if (get_bool(o, "logprobs", &r->logprobs, pe) || get_int(o, "top_logprobs", 0, SRV_MAX_TOP, &k, pe))
        return -1;
    if (k > 0 && !r->logprobs) return PERR(pe, "top_logprobs", "'top_logprobs' needs 'logprobs': true");
    r->top_logprobs = (int)k;
    return 0;
}

// Fields e2h does not implement are refused when they would change the result (a client
// must not believe a penalty or a tool call was applied); neutral values are accepted.
static int parse_unsupported(const cJSON *o, parse_err *pe) {
    static const char *zero[] = {"presence_penalty", "frequency_penalty"};
    for (int i = 0; i < 2; i++) {
        double v = 0;
        if (get_num(o, zero[i], -2, 2, 0, &v, pe)) return -1;
        if (v != 0) return PERR(pe, zero[i], "'%s' is not supported (only 0)", zero[i]);
    }
    static const char *absent[] = {"logit_bias", "suffix", "tools", "functions", "response_format"};
    for (int i = 0; i < 5; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, absent[i]);
        if (v && !cJSON_IsNull(v) && !((cJSON_IsObject(v) || cJSON_IsArray(v)) && !v->child) &&
            !(i == 4 && cJSON_IsObject(v) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(v, "type")) &&
              !strcmp(cJSON_GetObjectItemCaseSensitive(v, "type")->valuestring, "text")))
            return PERR(pe, absent[i], "'%s' is not supported", absent[i]);
    }
    return 0;
}

static int parse_sampling(const srv *s, const cJSON *o, srv_req *r, parse_err *pe) {
    double temp = 1.0, top_p = 1.0, min_p = 0.0, seed = (double)r->sp.seed;
    long n = 1, top_k = 0, max_tokens = r->kind == SRV_COMPLETION ? 16 : s->lim.max_tokens;
    if (get_int(o, "n", 1, s->lim.max_n, &n, pe) ||
        get_num(o, "temperature", 0, 2, 0, &temp, pe) || get_num(o, "top_p", 0, 1, 0, &top_p, pe) ||
        get_int(o, "top_k", -1, 1 << 20, &top_k, pe) || get_num(o, "min_p", 0, 1, 0, &min_p, pe) ||
        get_num(o, "seed", 0, 9007199254740992.0, 1, &seed, pe) ||
        get_int(o, "max_tokens", 1, s->lim.max_tokens, &max_tokens, pe) ||
        get_int(o, "max_completion_tokens", 1, s->lim.max_tokens, &max_tokens, pe) ||
        get_bool(o, "stream", &r->stream, pe) || parse_stop(o, r, pe) || parse_logprobs(o, r, pe))
        return -1;
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(o, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        if (!cJSON_IsObject(so)) return PERR(pe, "stream_options", "'stream_options' must be an object");
        if (get_bool(so, "include_usage", &r->stream_usage, pe)) return PERR(pe, "stream_options", "'stream_options.include_usage' must be a boolean");
    }
    int echo = 0;
    if (get_bool(o, "echo", &echo, pe)) return -1;
    if (echo) return PERR(pe, "echo", "'echo' is not supported");
    if (parse_unsupported(o, pe)) return -1;
    long best_of = n;
    if (get_int(o, "best_of", 1, s->lim.max_n, &best_of, pe)) return -1;
    if (best_of != n) return PERR(pe, "best_of", "'best_of' other than n is not supported");
    r->n = (int)n;
    r->max_tokens = (int32_t)max_tokens;
    r->sp.temperature = (float)temp;
    r->sp.top_p = top_p == 0 ? 1.0f : (float)top_p;
    r->sp.top_k = top_k < 0 ? 0 : (int)top_k; // -1: off (vLLM's convention)
    r->sp.min_p = (float)min_p;
    r->sp.seed = (uint64_t)seed;
    return 0;
}

// ------------------------------------------------------------------ request

static srv_req *req_new(srv *s, srv_kind kind) {
    srv_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->kind = kind;
    r->refs = 1;
    r->created = (long)time(NULL);
    r->sp = e2h_sampling_default();
    pthread_mutex_lock(&s->mu);
    long id = ++s->next_id;
    s->n_live++;
    pthread_mutex_unlock(&s->mu);
    snprintf(r->id, sizeof r->id, "%s-%ld", kind == SRV_CHAT ? "chatcmpl" : "cmpl", id);
    r->sp.seed = (uint64_t)id; // no seed given: one per request (reproducible per server run)
    return r;
}

static void req_free(srv *s, srv_req *r) {
    pthread_mutex_lock(&s->mu);
    s->n_live--;
    pthread_mutex_unlock(&s->mu);
    free(r->ids);
    for (int i = 0; i < r->n_stops; i++) free(r->stops[i]);
    cJSON_Delete(r->payload);
    free(r->ch);
    free(r->result);
    free(r->out);
    free(r);
}

void srv_req_unref(srv *s, srv_req *r) {
    pthread_mutex_lock(&s->mu);
    int last = --r->refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (last) req_free(s, r);
}

// PRM / search / reward bodies are validated by serve_prm.c (declared there).
int srv_parse_prm_payload(srv *s, srv_req *r, cJSON *o, char *msg, size_t msg_len, const char **param);

static int parse_body(srv *s, srv_req *r, cJSON *o, parse_err *pe) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(o, "model");
    if (model && !cJSON_IsString(model) && !cJSON_IsNull(model))
        return PERR(pe, "model", "'model' must be a string");
    if (r->kind == SRV_PRM || r->kind == SRV_SEARCH || r->kind == SRV_REWARD)
        return srv_parse_prm_payload(s, r, o, pe->msg, sizeof pe->msg, &pe->param) ? -1 : 0;
    if (parse_sampling(s, o, r, pe)) return -1;
    if (r->kind == SRV_COMPLETION ? parse_prompt(s, o, r, pe) : parse_messages(s, o, r, pe)) return -1;
    r->need = srv_request_need(s, r);
    if (r->need > s->blocks_total)
        return PERR(pe, "max_tokens", "the request needs up to %d KV blocks and the pool has %d: "
                    "lower n or max_tokens (or start the server with more --kv-mem)", r->need, s->blocks_total);
    return 0;
}

srv_req *srv_parse_request(srv *s, srv_kind kind, const char *body, size_t len, int *status, char **err) {
    parse_err pe = {400, "", NULL};
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    srv_req *r = NULL;
    if (!o) {
        long at = end ? (long)(end - body) : 0;
        PERR(&pe, NULL, "malformed JSON near byte %ld", at);
    } else if (!cJSON_IsObject(o)) {
        PERR(&pe, NULL, "the request body must be a JSON object");
    } else if (!(r = req_new(s, kind))) {
        pe.status = 500;
        PERR(&pe, NULL, "out of memory");
    } else if (parse_body(s, r, o, &pe)) {
        req_free(s, r);
        r = NULL;
    }
    if (r && r->payload == o) o = NULL; // kept by the request
    cJSON_Delete(o);
    if (!r) {
        *status = pe.status;
        *err = srv_error_json(pe.msg, pe.status == 500 ? "server_error" : "invalid_request_error", pe.param);
    }
    return r;
}

// ------------------------------------------------------------------ responses

// A token's text for logprobs: the bytes it completed in the choice's text.
static cJSON *tok_text(const srv_choice *c, const srv_tok *t) {
    char *b = malloc(t->text_len + 1);
    if (!b) return cJSON_CreateString("");
    size_t l = t->offset + t->text_len <= c->len ? t->text_len : 0;
    memcpy(b, c->text + t->offset, l);
    b[l] = 0;
    cJSON *j = cJSON_CreateString(b);
    free(b);
    return j;
}

// A vocabulary piece as valid UTF-8 (byte pieces of a character become U+FFFD).
static char *piece_utf8(const srv *s, int32_t id) {
    size_t l = 0;
    const char *p = e2h_tokenizer_piece(e2h_model_tokenizer(s->m), id, &l);
    char *o = malloc(l * 3 + 1), *w = o;
    if (!o) return NULL;
    for (size_t i = 0; p && i < l;) {
        unsigned char c = (unsigned char)p[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        int ok = k > 0 && i + k <= l && c != 0;
        for (size_t j = 1; ok && j < k; j++) ok = ((unsigned char)p[i + j] >> 6) == 2;
        if (ok) { memcpy(w, p + i, k); w += k; i += k; }
        else { memcpy(w, "\xEF\xBF\xBD", 3); w += 3; i++; }
    }
    *w = 0;
    return o;
}

static cJSON *bytes_json(const char *s) {
    cJSON *a = cJSON_CreateArray();
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) cJSON_AddItemToArray(a, cJSON_CreateNumber(*p));
    return a;
}

// Chat logprobs: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}.
static cJSON *chat_logprobs(const srv *s, const srv_choice *c, int k0, int k1) {
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "content");
    for (int k = k0; k < k1; k++) {
        const srv_tok *t = &c->toks[k];
        cJSON *e = cJSON_CreateObject(), *tx = tok_text(c, t);
        cJSON_AddItemToObject(e, "token", tx);
        cJSON_AddNumberToObject(e, "logprob", isfinite(t->lp) ? t->lp : -9999.0);
        cJSON_AddItemToObject(e, "bytes", bytes_json(cJSON_GetStringValue(tx)));
        cJSON *tops = cJSON_AddArrayToObject(e, "top_logprobs");
        for (int j = 0; j < t->n_top; j++) {
            char *p = piece_utf8(s, t->top_id[j]);
            cJSON *a = cJSON_CreateObject();
            cJSON_AddStringToObject(a, "token", p ? p : "");
            cJSON_AddNumberToObject(a, "logprob", t->top_lp[j]);
            cJSON_AddItemToObject(a, "bytes", bytes_json(p ? p : ""));
            cJSON_AddItemToArray(tops, a);
            free(p);
        }
        cJSON_AddItemToArray(arr, e);
    }
    return o;
}

// Completions logprobs: {"tokens", "token_logprobs", "top_logprobs", "text_offset"}.
static cJSON *cmpl_logprobs(const srv *s, const srv_req *r, const srv_choice *c, int k0, int k1) {
    cJSON *o = cJSON_CreateObject();
    cJSON *tk = cJSON_AddArrayToObject(o, "tokens"), *lp = cJSON_AddArrayToObject(o, "token_logprobs");
    cJSON *tp = r->top_logprobs ? cJSON_AddArrayToObject(o, "top_logprobs") : NULL;
    if (!tp) cJSON_AddNullToObject(o, "top_logprobs");
    cJSON *off = cJSON_AddArrayToObject(o, "text_offset");
    for (int k = k0; k < k1; k++) {
        const srv_tok *t = &c->toks[k];
        cJSON_AddItemToArray(tk, tok_text(c, t));
        cJSON_AddItemToArray(lp, cJSON_CreateNumber(isfinite(t->lp) ? t->lp : -9999.0));
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)t->offset));
        if (!tp) continue;
        cJSON *m = cJSON_CreateObject();
        for (int j = 0; j < t->n_top; j++) {
            char *p = piece_utf8(s, t->top_id[j]);
            if (p && !cJSON_GetObjectItemCaseSensitive(m, p)) cJSON_AddNumberToObject(m, p, t->top_lp[j]);
            free(p);
        }
        cJSON_AddItemToArray(tp, m);
    }
    return o;
}

static cJSON *resp_head(const srv *s, const srv_req *r, const char *object) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", (double)r->created);
    cJSON_AddStringToObject(o, "model", s->model_name);
    return o;
}

static char *print_free(cJSON *o) {
    char *p = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return p;
}

char *srv_completion_json(const srv *s, const srv_req *r) {
    int chat = r->kind == SRV_CHAT;
    cJSON *o = resp_head(s, r, chat ? "chat.completion" : "text_completion");
    cJSON *cs = cJSON_AddArrayToObject(o, "choices");
    for (int i = 0; i < r->n; i++) {
        const srv_choice *c = &r->ch[i];
        cJSON *ch = cJSON_CreateObject();
        cJSON_AddNumberToObject(ch, "index", i);
        if (chat) {
            cJSON *m = cJSON_AddObjectToObject(ch, "message");
            cJSON_AddStringToObject(m, "role", "assistant");
            cJSON_AddStringToObject(m, "content", c->text ? c->text : "");
        } else {
            cJSON_AddStringToObject(ch, "text", c->text ? c->text : "");
        }
        if (r->logprobs)
            cJSON_AddItemToObject(ch, "logprobs", chat ? chat_logprobs(s, c, 0, c->n_toks) : cmpl_logprobs(s, r, c, 0, c->n_toks));
        else cJSON_AddNullToObject(ch, "logprobs");
        cJSON_AddStringToObject(ch, "finish_reason", c->finish ? c->finish : "length");
        cJSON_AddItemToArray(cs, ch);
    }
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", r->prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", r->completion_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", (double)r->prompt_tokens + r->completion_tokens);
    return print_free(o);
}

char *srv_chunk_sse(const srv *s, const srv_req *r, int i, size_t from, size_t to, int tok_from,
                    int tok_to, const char *finish) {
    const srv_choice *c = &r->ch[i];
    int chat = r->kind == SRV_CHAT;
    cJSON *o = resp_head(s, r, chat ? "chat.completion.chunk" : "text_completion");
    cJSON *cs = cJSON_AddArrayToObject(o, "choices"), *ch = cJSON_CreateObject();
    cJSON_AddItemToArray(cs, ch);
    cJSON_AddNumberToObject(ch, "index", i);
    char *delta = malloc(to - from + 1);
    if (!delta) { cJSON_Delete(o); return NULL; }
    memcpy(delta, c->text + from, to - from);
    delta[to - from] = 0;
    if (chat) {
        cJSON *d = cJSON_AddObjectToObject(ch, "delta");
        if (from == 0 && tok_from == 0) cJSON_AddStringToObject(d, "role", "assistant");
        cJSON_AddStringToObject(d, "content", delta);
    } else {
        cJSON_AddStringToObject(ch, "text", delta);
    }
    free(delta);
    if (r->logprobs)
        cJSON_AddItemToObject(ch, "logprobs", chat ? chat_logprobs(s, c, tok_from, tok_to) : cmpl_logprobs(s, r, c, tok_from, tok_to));
    else cJSON_AddNullToObject(ch, "logprobs");
    if (finish) cJSON_AddStringToObject(ch, "finish_reason", finish);
    else cJSON_AddNullToObject(ch, "finish_reason");
    char *j = print_free(o);
    if (!j) return NULL;
    size_t l = strlen(j) + 16;
    char *ev = malloc(l);
    if (ev) snprintf(ev, l, "data: %s\n\n", j);
    free(j);
    return ev;
}

char *srv_stream_end(const srv *s, const srv_req *r) {
    char *u = NULL;
    if (r->stream_usage) {
        cJSON *o = resp_head(s, r, r->kind == SRV_CHAT ? "chat.completion.chunk" : "text_completion");
        cJSON_AddArrayToObject(o, "choices");
        cJSON *us = cJSON_AddObjectToObject(o, "usage");
        cJSON_AddNumberToObject(us, "prompt_tokens", r->prompt_tokens);
        cJSON_AddNumberToObject(us, "completion_tokens", r->completion_tokens);
        cJSON_AddNumberToObject(us, "total_tokens", (double)r->prompt_tokens + r->completion_tokens);
        u = print_free(o);
        if (!u) return NULL;
    }
    size_t l = (u ? strlen(u) : 0) + 32;
    char *ev = malloc(l);
    if (ev) snprintf(ev, l, "%s%s%sdata: [DONE]\n\n", u ? "data: " : "", u ? u : "", u ? "\n\n" : "");
    free(u);
    return ev;
}

char *srv_models_json(const srv *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *d = cJSON_AddArrayToObject(o, "data"), *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", s->model_name);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", 0);
    cJSON_AddStringToObject(m, "owned_by", "e2h");
    cJSON_AddItemToArray(d, m);
    return print_free(o);
}

char *srv_metrics_text(srv *s) {
    pthread_mutex_lock(&s->mu);
    srv_metrics m = s->met;
    m.queue_depth = s->q_len;
    double up = srv_now() - s->t_start;
    pthread_mutex_unlock(&s->mu);
    size_t cap = 4096;
    char *b = malloc(cap);
    if (!b) return NULL;
    snprintf(b, cap,
             "# HELP e2h_requests_total Requests accepted into the queue.\n# TYPE e2h_requests_total counter\n"
             "e2h_requests_total %lld\n"
             "# HELP e2h_requests_rejected_total Requests refused (queue full or shutting down).\n"
             "# TYPE e2h_requests_rejected_total counter\ne2h_requests_rejected_total %lld\n"
             "# HELP e2h_requests_failed_total Accepted requests that ended in an error.\n"
             "# TYPE e2h_requests_failed_total counter\ne2h_requests_failed_total %lld\n"
             "# HELP e2h_prompt_tokens_total Prompt tokens of started requests.\n"
             "# TYPE e2h_prompt_tokens_total counter\ne2h_prompt_tokens_total %lld\n"
             "# HELP e2h_generated_tokens_total Tokens generated.\n"
             "# TYPE e2h_generated_tokens_total counter\ne2h_generated_tokens_total %lld\n"
             "# HELP e2h_generation_tokens_per_second Generated tokens per second of generation time.\n"
             "# TYPE e2h_generation_tokens_per_second gauge\ne2h_generation_tokens_per_second %.3f\n"
             "# HELP e2h_queue_depth Requests waiting for admission.\n# TYPE e2h_queue_depth gauge\n"
             "e2h_queue_depth %d\n"
             "# HELP e2h_running_requests Requests being generated.\n# TYPE e2h_running_requests gauge\n"
             "e2h_running_requests %d\n"
             "# HELP e2h_kv_blocks_used KV blocks referenced by live sequences.\n# TYPE e2h_kv_blocks_used gauge\n"
             "e2h_kv_blocks_used %d\n"
             "# HELP e2h_kv_blocks_cached KV blocks kept only as cached prefixes.\n"
             "# TYPE e2h_kv_blocks_cached gauge\ne2h_kv_blocks_cached %d\n"
             "# HELP e2h_kv_blocks_total KV blocks in the pool.\n# TYPE e2h_kv_blocks_total gauge\n"
             "e2h_kv_blocks_total %d\n"
             "# HELP e2h_forward_passes_total Forward passes run.\n# TYPE e2h_forward_passes_total counter\n"
             "e2h_forward_passes_total %lld\n"
             "# HELP e2h_forward_tokens_total Tokens computed by forward passes (prompts + generated).\n"
             "# TYPE e2h_forward_tokens_total counter\ne2h_forward_tokens_total %lld\n"
             "# HELP e2h_uptime_seconds Seconds since the server started.\n# TYPE e2h_uptime_seconds gauge\n"
             "e2h_uptime_seconds %.3f\n",
             (long long)m.requests, (long long)m.rejected, (long long)m.failed, (long long)m.prompt_tokens,
             (long long)m.gen_tokens, m.gen_seconds > 0 ? (double)m.gen_tokens / m.gen_seconds : 0.0,
             m.queue_depth, m.running, m.kv.blocks_used, m.kv.blocks_cached, m.kv.blocks_total,
             (long long)m.kv.forward_passes, (long long)m.kv.forward_tokens, up);
    return b;
}
