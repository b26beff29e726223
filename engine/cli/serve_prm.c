// engine/cli/serve_prm.c — the process-reward endpoints of `e2h serve`:
//   POST /v1/prm/score  {"problem", "steps": [...] | "solution"} or {"items": [such objects]}
//        -> {"protocol", "step_scores", "agg": {min, prod, mean, last}} (or "results": [...])
//   POST /v1/search     {"problem", "method", "n", "m", "max_tokens", "seed", "temperature",
//                        "top_p", "max_rounds"} -> the samples, their step scores, the selection
//   POST /v1/reward     the request of OpenRLHF's --remote_rm_url (and /get_reward, the path its
//                       examples use): {"query": [prompt+response], "prompts": [prompt],
//                       "labels": [...]} -> {"rewards": [...], "scores": [...]}, one float
//                       per query (what OpenRLHF reads: openrlhf/utils/remote_rm_utils.py,
//                       request_api_wrapper with score_key "rewards").
// Parsing runs in handler threads (no engine); the runs in the scheduler thread, one request
// at a time between generation steps (a search takes the whole pool, serve_loop.c).
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

#define PRM_MAX_ITEMS 256
#define PRM_MAX_STEPS 1024

// Writes the message; returns -1 (so `return BAD(...)` fails the parse).
static int bad_set(char *msg, size_t msg_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad_set(char *msg, size_t msg_len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msg_len, fmt, ap);
    va_end(ap);
    return -1;
}
#define BAD(...) bad_set(msg, msg_len, __VA_ARGS__)

static const char *search_instruction =
    "Solve the following math problem step by step. Separate the steps with a blank line. "
    "Put the final answer in \\boxed{}.";

// ------------------------------------------------------------------ parsing (handler threads)

// Policy tokens of a text (0 on failure): sizes a request's KV reservation.
static int64_t count_tokens(const srv *s, const char *text) {
    size_t len = strlen(text);
    int32_t cap = (int32_t)(len < (size_t)INT32_MAX - 8 ? len + 8 : INT32_MAX), n = 0;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    if (!ids) return 0;
    if (s->txt.tokenize(s->txt.ctx, text, len, 0, ids, cap, &n)) n = 0;
    free(ids);
    return n;
}

// Checks one {"problem", "steps" | "solution"} item; adds its tokens to *tokens.
static int check_item(const srv *s, const cJSON *it, const char *where, int64_t *tokens, char *msg, size_t msg_len) {
    if (!cJSON_IsObject(it)) return BAD("'%s' must be an object", where);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(it, "problem");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(it, "steps");
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(it, "solution");
    if (!cJSON_IsString(p)) return BAD("'%s.problem' is required and must be a string", where);
    *tokens += count_tokens(s, p->valuestring);
    if (st) {
        int n = cJSON_IsArray(st) ? cJSON_GetArraySize(st) : -1;
        if (n < 1 || n > PRM_MAX_STEPS) return BAD("'%s.steps' must be a list of 1 to %d strings", where, PRM_MAX_STEPS);
        for (int k = 0; k < n; k++) {
            const cJSON *x = cJSON_GetArrayItem(st, k);
            if (!cJSON_IsString(x)) return BAD("'%s.steps[%d]' must be a string", where, k);
            const char *c = x->valuestring;
            while (*c == ' ' || *c == '\n' || *c == '\t' || *c == '\r') c++;
            if (!*c) return BAD("'%s.steps[%d]' is empty", where, k);
            *tokens += count_tokens(s, x->valuestring) + 2;
        }
        return 0;
    }
    if (!cJSON_IsString(so)) return BAD("'%s' needs 'steps' (a list of strings) or 'solution' (a string)", where);
    *tokens += count_tokens(s, so->valuestring) + 2;
    return 0;
}

static int parse_score(srv *s, srv_req *r, cJSON *o, char *msg, size_t msg_len, const char **param) {
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(o, "items");
    int64_t tokens = 0;
    if (items) {
        *param = "items";
        int n = cJSON_IsArray(items) ? cJSON_GetArraySize(items) : -1;
        if (n < 1 || n > PRM_MAX_ITEMS) return BAD("'items' must be a list of 1 to %d objects", PRM_MAX_ITEMS);
        for (int i = 0; i < n; i++) {
            char where[32];
            snprintf(where, sizeof where, "items[%d]", i);
            if (check_item(s, cJSON_GetArrayItem(items, i), where, &tokens, msg, msg_len)) return -1;
        }
    } else {
        *param = "steps";
        if (check_item(s, o, "body", &tokens, msg, msg_len)) return -1;
    }
    int64_t need = tokens / s->block_size + 4 * (items ? cJSON_GetArraySize(items) : 1);
    r->need = need > INT32_MAX ? INT32_MAX : (int32_t)need;
    return 0;
}

// An optional integer field in [lo, hi]; absent or null leaves *out.
static int opt_int(const cJSON *o, const char *f, long lo, long hi, long *out, char *msg, size_t msg_len) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, f);
    if (!v || cJSON_IsNull(v)) return 0;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || d < (double)lo || d > (double)hi || d != floor(d))
        return BAD("'%s' must be an integer in [%ld, %ld]", f, lo, hi);
    *out = (long)d;
    return 0;
}

static int opt_num(const cJSON *o, const char *f, double lo, double hi, double *out, char *msg, size_t msg_len) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, f);
    if (!v || cJSON_IsNull(v)) return 0;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || d < lo || d > hi) return BAD("'%s' must be a number in [%g, %g]", f, lo, hi);
    *out = d;
    return 0;
}

static int parse_search(srv *s, srv_req *r, cJSON *o, char *msg, size_t msg_len, const char **param) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "problem");
    const cJSON *me = cJSON_GetObjectItemCaseSensitive(o, "method");
    e2h_search_method method = E2H_SEARCH_GREEDY;
    *param = "problem";
    if (!cJSON_IsString(p) || !*p->valuestring) return BAD("'problem' is required and must be a non-empty string");
    *param = "method";
    if (me && (!cJSON_IsString(me) || e2h_search_method_parse(me->valuestring, &method)))
        return BAD("'method' must be one of greedy, maj, bon, weighted, beam, dvts, rebase");
    e2h_search_opts so = e2h_search_opts_default();
    long n = so.n, m = so.m, mt = so.max_tokens < s->lim.max_tokens ? so.max_tokens : s->lim.max_tokens,
         rounds = so.max_rounds, seed = (long)so.sampling.seed;
    double temp = so.sampling.temperature, top_p = so.sampling.top_p;
    *param = NULL;
    if (opt_int(o, "n", 1, s->lim.max_n, &n, msg, msg_len) || opt_int(o, "m", 1, s->lim.max_n, &m, msg, msg_len) ||
        opt_int(o, "max_tokens", 1, s->lim.max_tokens, &mt, msg, msg_len) ||
        opt_int(o, "max_rounds", 1, 1000, &rounds, msg, msg_len) ||
        opt_int(o, "seed", 0, 0x7fffffffL, &seed, msg, msg_len) ||
        opt_num(o, "temperature", 0, 2, &temp, msg, msg_len) || opt_num(o, "top_p", 0, 1, &top_p, msg, msg_len))
        return -1;
    int uses_m = method == E2H_SEARCH_BEAM || method == E2H_SEARCH_DVTS;
    if (uses_m && (m > n || n % m)) return BAD("'m' (%ld) must divide 'n' (%ld)", m, n);
    int needs_prm = method != E2H_SEARCH_GREEDY && method != E2H_SEARCH_MAJ;
    *param = "method";
    if (needs_prm && !s->have_prm)
        return BAD("method '%s' needs a PRM: start the server with --prm or --prm-head", e2h_search_method_name(method));
    size_t len = 0;
    const char *role = "user", *problem = p->valuestring;
    if (s->txt.chat(s->txt.ctx, search_instruction, &role, &problem, 1, NULL, 0, &len)) return BAD("bad problem text");
    char *text = malloc(len + 1);
    int32_t k = 0;
    int bad = !text || s->txt.chat(s->txt.ctx, search_instruction, &role, &problem, 1, text, len + 1, &len) ||
              srv_tokenize_all(s, text, len, 0, &r->ids, &k);
    free(text);
    *param = "problem";
    if (bad) return BAD("the problem could not be tokenized");
    if (k > s->lim.max_prompt) return BAD("'problem' has %d tokens; the limit is %ld", k, s->lim.max_prompt);
    r->n_ids = k;
    // the fields the run reads, normalized, in a small object of its own
    r->n = (int)n;
    r->max_tokens = (int32_t)mt;
    r->sp.seed = (uint64_t)seed;
    r->sp.temperature = (float)temp;
    r->sp.top_p = (float)top_p;
    r->payload = cJSON_CreateObject();
    cJSON_AddStringToObject(r->payload, "problem", p->valuestring);
    cJSON_AddNumberToObject(r->payload, "method", (double)method);
    cJSON_AddNumberToObject(r->payload, "m", (double)m);
    cJSON_AddNumberToObject(r->payload, "max_rounds", (double)rounds);
    return 0;
}

// OpenRLHF: "query" (prompt + response) and "prompts" lists of equal length; "labels" ignored.
static int parse_reward(srv *s, srv_req *r, cJSON *o, char *msg, size_t msg_len, const char **param) {
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(o, "query");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "prompts");
    *param = "query";
    int n = cJSON_IsArray(q) ? cJSON_GetArraySize(q) : -1;
    if (n < 1 || n > PRM_MAX_ITEMS) return BAD("'query' must be a list of 1 to %d strings", PRM_MAX_ITEMS);
    *param = "prompts";
    if (p && !cJSON_IsNull(p) && (!cJSON_IsArray(p) || cJSON_GetArraySize(p) != n))
        return BAD("'prompts' must be a list of strings as long as 'query'");
    int64_t tokens = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *qi = cJSON_GetArrayItem(q, i), *pi = cJSON_IsArray(p) ? cJSON_GetArrayItem(p, i) : NULL;
        *param = "query";
        if (!cJSON_IsString(qi)) return BAD("'query[%d]' must be a string", i);
        *param = "prompts";
        if (pi && !cJSON_IsString(pi)) return BAD("'prompts[%d]' must be a string", i);
        tokens += count_tokens(s, qi->valuestring) + 8;
    }
    int64_t need = tokens / s->block_size + 4 * n;
    r->need = need > INT32_MAX ? INT32_MAX : (int32_t)need;
    return 0;
}

int srv_parse_prm_payload(srv *s, srv_req *r, cJSON *o, char *msg, size_t msg_len, const char **param);
int srv_parse_prm_payload(srv *s, srv_req *r, cJSON *o, char *msg, size_t msg_len, const char **param) {
    if (r->kind != SRV_SEARCH && !s->have_prm)
        return BAD("no PRM is loaded: start the server with --prm MODEL or --prm-head FILE");
    int rc = r->kind == SRV_PRM ? parse_score(s, r, o, msg, msg_len, param)
           : r->kind == SRV_SEARCH ? parse_search(s, r, o, msg, msg_len, param)
                                   : parse_reward(s, r, o, msg, msg_len, param);
    if (!rc && !r->payload) r->payload = o; // the request keeps the validated body
    return rc;
}

// ------------------------------------------------------------------ runs (scheduler thread)

static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

// Aggregates over the finite scores (a protocol may give inner steps no score).
static cJSON *agg_json(const float *sc, int n) {
    cJSON *a = cJSON_CreateObject();
    float *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    int m = 0;
    for (int k = 0; v && k < n; k++)
        if (isfinite(sc[k])) v[m++] = sc[k];
    for (int k = 0; k < 4; k++)
        cJSON_AddItemToObject(a, e2h_agg_name((e2h_agg)k), num_or_null(v && m ? e2h_prm_aggregate(v, m, (e2h_agg)k) : NAN));
    free(v);
    return a;
}

// Splits a solution on the PRM's delimiter into malloc'd step strings (*n of them).
static char **split_steps(const srv *s, const char *text, int *n) {
    size_t len = strlen(text);
    int m = e2h_prm_split_solution(s->prm, text, len, NULL, NULL, 0);
    size_t *st = malloc((size_t)(m + 1) * sizeof *st), *ln = malloc((size_t)(m + 1) * sizeof *ln);
    char **out = calloc((size_t)(m + 1), sizeof *out);
    if (!st || !ln || !out) { free(st); free(ln); free(out); *n = -1; return NULL; }
    *n = e2h_prm_split_solution(s->prm, text, len, st, ln, m);
    for (int k = 0; k < *n; k++) out[k] = strndup(text + st[k], ln[k]);
    free(st);
    free(ln);
    return out;
}

static void free_steps(char **steps, int n) {
    for (int k = 0; steps && k < n; k++) free(steps[k]);
    free(steps);
}

// Scores one item into a {"step_scores", "agg"} object; NULL with msg on error.
static cJSON *score_item(srv *s, const cJSON *it, const char *where, char *msg, size_t msg_len, int *status) {
    const char *problem = cJSON_GetObjectItemCaseSensitive(it, "problem")->valuestring;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(it, "steps");
    int n = 0;
    char **steps = NULL;
    if (st) {
        n = cJSON_GetArraySize(st);
        steps = calloc((size_t)n, sizeof *steps);
        for (int k = 0; steps && k < n; k++) steps[k] = strdup(cJSON_GetArrayItem(st, k)->valuestring);
    } else {
        steps = split_steps(s, cJSON_GetObjectItemCaseSensitive(it, "solution")->valuestring, &n);
    }
    float *sc = n > 0 ? malloc((size_t)n * sizeof *sc) : NULL;
    cJSON *o = NULL;
    *status = 400;
    if (n == 0) snprintf(msg, msg_len, "'%s.solution' has no steps", where);
    else if (!steps || !sc) { *status = 500; snprintf(msg, msg_len, "out of memory"); }
    else {
        e2h_status e = e2h_prm_score_texts(s->e, problem, (const char *const *)steps, n, sc);
        if (e) {
            *status = e == E2H_ERR_KV_FULL ? 503 : e == E2H_ERR_NOMEM ? 500 : 400;
            snprintf(msg, msg_len, "'%s': %s (%s)", where, e2h_engine_last_error(s->e), e2h_status_name(e));
        } else {
            o = cJSON_CreateObject();
            cJSON *a = cJSON_AddArrayToObject(o, "step_scores");
            for (int k = 0; k < n; k++) cJSON_AddItemToArray(a, num_or_null(sc[k]));
            cJSON_AddItemToObject(o, "agg", agg_json(sc, n));
        }
    }
    free(sc);
    free_steps(steps, n > 0 ? n : 0);
    return o;
}

static char *print_free(cJSON *o) {
    char *p = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return p;
}

char *srv_run_prm(srv *s, srv_req *r, int *status) {
    char msg[1024] = "";
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(r->payload, "items");
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "object", "prm.score");
    cJSON_AddStringToObject(out, "protocol", e2h_prm_protocol(s->prm));
    cJSON_AddStringToObject(out, "model", s->model_name);
    if (!items) {
        cJSON *one = score_item(s, r->payload, "body", msg, sizeof msg, status);
        if (!one) { cJSON_Delete(out); return srv_error_json(msg, *status == 400 ? "invalid_request_error" : "server_error", "steps"); }
        cJSON_AddItemToObject(out, "step_scores", cJSON_DetachItemFromObject(one, "step_scores"));
        cJSON_AddItemToObject(out, "agg", cJSON_DetachItemFromObject(one, "agg"));
        cJSON_Delete(one);
    } else {
        cJSON *res = cJSON_AddArrayToObject(out, "results");
        for (int i = 0; i < cJSON_GetArraySize(items); i++) {
            char where[32];
            snprintf(where, sizeof where, "items[%d]", i);
            cJSON *one = score_item(s, cJSON_GetArrayItem(items, i), where, msg, sizeof msg, status);
            if (!one) { cJSON_Delete(out); return srv_error_json(msg, *status == 400 ? "invalid_request_error" : "server_error", "items"); }
            cJSON_AddItemToArray(res, one);
        }
    }
    *status = 200;
    return print_free(out);
}

static cJSON *sample_json(const e2h_search_sample *x) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "text", x->text ? x->text : "");
    cJSON *st = cJSON_AddArrayToObject(j, "steps"), *sc = cJSON_AddArrayToObject(j, "step_scores");
    for (int k = 0; k < x->n_steps; k++) {
        cJSON_AddItemToArray(st, cJSON_CreateString(x->steps[k]));
        cJSON_AddItemToArray(sc, num_or_null(x->step_scores[k]));
    }
    cJSON_AddItemToObject(j, "answer", x->answer ? cJSON_CreateString(x->answer) : cJSON_CreateNull());
    cJSON *ag = cJSON_AddObjectToObject(j, "agg");
    for (int k = 0; k < 4; k++) cJSON_AddItemToObject(ag, e2h_agg_name((e2h_agg)k), num_or_null(x->agg[k]));
    cJSON_AddNumberToObject(j, "tokens", x->n_tokens);
    static const char *why[] = {"none", "eos", "stop", "length", "context"};
    cJSON_AddStringToObject(j, "stop", (unsigned)x->stop < 5 ? why[x->stop] : "none");
    return j;
}

char *srv_run_search(srv *s, srv_req *r, int *status) {
    e2h_search_opts so = e2h_search_opts_default();
    const cJSON *p = r->payload;
    so.method = (e2h_search_method)cJSON_GetObjectItemCaseSensitive(p, "method")->valuedouble;
    so.m = (int)cJSON_GetObjectItemCaseSensitive(p, "m")->valuedouble;
    so.max_rounds = (int)cJSON_GetObjectItemCaseSensitive(p, "max_rounds")->valuedouble;
    so.problem = cJSON_GetObjectItemCaseSensitive(p, "problem")->valuestring;
    so.n = r->n;
    so.max_tokens = r->max_tokens;
    so.sampling.seed = r->sp.seed;
    so.sampling.temperature = r->sp.temperature;
    so.sampling.top_p = r->sp.top_p;
    e2h_search_result res;
    e2h_status st = e2h_search_run(s->e, r->ids, r->n_ids, &so, &res);
    if (st) {
        char msg[1024];
        snprintf(msg, sizeof msg, "search failed: %s (%s)%s", e2h_engine_last_error(s->e), e2h_status_name(st),
                 st == E2H_ERR_KV_FULL ? "; lower n or max_tokens" : "");
        *status = st == E2H_ERR_KV_FULL || st == E2H_ERR_CONTEXT || st == E2H_ERR_INVALID_ARG ? 400 : 500;
        return srv_error_json(msg, *status == 400 ? "invalid_request_error" : "server_error", NULL);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "search.result");
    cJSON_AddStringToObject(o, "method", e2h_search_method_name(so.method));
    cJSON_AddNumberToObject(o, "n", so.n);
    cJSON_AddNumberToObject(o, "selected", res.selected);
    const char *ans = res.selected >= 0 ? res.samples[res.selected].answer : NULL;
    cJSON_AddItemToObject(o, "answer", ans ? cJSON_CreateString(ans) : cJSON_CreateNull());
    cJSON *ss = cJSON_AddArrayToObject(o, "samples");
    for (int i = 0; i < res.n_samples; i++) cJSON_AddItemToArray(ss, sample_json(&res.samples[i]));
    cJSON_AddNumberToObject(o, "policy_tokens", (double)res.policy_tokens);
    cJSON_AddNumberToObject(o, "prm_tokens", (double)res.prm_tokens);
    cJSON_AddNumberToObject(o, "rounds", res.rounds);
    cJSON_AddNumberToObject(o, "seconds", res.seconds);
    e2h_search_result_free(&res);
    *status = 200;
    return print_free(o);
}

// The problem of an OpenRLHF prompt: the last ChatML user turn when there is one, else the
// prompt as given. The response is the query after the prompt, without an end-of-turn tag.
static char *reward_problem(const char *prompt) {
    const char *u = NULL, *x = prompt;
    while ((x = strstr(x, "<|im_start|>user\n"))) u = x = x + strlen("<|im_start|>user\n");
    if (!u) return strdup(prompt);
    const char *e = strstr(u, "<|im_end|>");
    return strndup(u, e ? (size_t)(e - u) : strlen(u));
}

static char *reward_response(const char *query, const char *prompt) {
    size_t pl = prompt ? strlen(prompt) : 0;
    const char *r = prompt && !strncmp(query, prompt, pl) ? query + pl : query;
    size_t l = strlen(r);
    static const char *tails[] = {"<|im_end|>", "<|endoftext|>", "</s>"};
    for (int k = 0; k < 3; k++) {
        size_t tl = strlen(tails[k]);
        while (l >= tl && !strncmp(r + l - tl, tails[k], tl)) l -= tl;
    }
    return strndup(r, l);
}

// One reward: the min over the steps' scores (the paper's aggregate); 0 without steps.
static int reward_one(srv *s, const char *query, const char *prompt, float *out, char *msg, size_t msg_len, int i) {
    char *problem = reward_problem(prompt ? prompt : "");
    char *resp = reward_response(query, prompt);
    int n = 0;
    char **steps = problem && resp ? split_steps(s, resp, &n) : NULL;
    float *sc = n > 0 ? malloc((size_t)n * sizeof *sc) : NULL;
    int rc = 0;
    *out = 0;
    if (n < 0 || !problem || !resp) rc = BAD("out of memory");
    else if (n > 0 && sc) {
        e2h_status e = e2h_prm_score_texts(s->e, problem, (const char *const *)steps, n, sc);
        if (e) rc = BAD("'query[%d]': %s (%s)", i, e2h_engine_last_error(s->e), e2h_status_name(e));
        float v[PRM_MAX_STEPS];
        int m = 0;
        for (int k = 0; !rc && k < n && m < PRM_MAX_STEPS; k++)
            if (isfinite(sc[k])) v[m++] = sc[k];
        if (!rc && m) *out = e2h_prm_aggregate(v, m, E2H_AGG_MIN);
    }
    free(sc);
    free_steps(steps, n > 0 ? n : 0);
    free(problem);
    free(resp);
    return rc;
}

char *srv_run_reward(srv *s, srv_req *r, int *status) {
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(r->payload, "query");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(r->payload, "prompts");
    cJSON *o = cJSON_CreateObject(), *rw = cJSON_AddArrayToObject(o, "rewards");
    cJSON *sc = cJSON_AddArrayToObject(o, "scores");
    char msg[1024];
    for (int i = 0; i < cJSON_GetArraySize(q); i++) {
        const cJSON *pi = cJSON_IsArray(p) ? cJSON_GetArrayItem(p, i) : NULL;
        float v = 0;
        if (reward_one(s, cJSON_GetArrayItem(q, i)->valuestring, pi ? pi->valuestring : NULL, &v, msg, sizeof msg, i)) {
            cJSON_Delete(o);
            *status = 400;
            return srv_error_json(msg, "invalid_request_error", "query");
        }
        cJSON_AddItemToArray(rw, cJSON_CreateNumber(v));
        cJSON_AddItemToArray(sc, cJSON_CreateNumber(v));
    }
    *status = 200;
    return print_free(o);
}
