// engine/cli/jsonl.c — the CLI's JSONL line parsers (see jsonl.h). Every JSON number that
// becomes an integer is range-checked (finite, integral, in range) before the conversion.
#include "jsonl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *jl_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static char *jl_trim_dup(const char *s, size_t n) {
    while (n && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) { s++; n--; }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r')) n--;
    char *d = malloc(n + 1);
    if (d) { memcpy(d, s, n); d[n] = 0; }
    return d;
}

// ------------------------------------------------------------------ search --problems

void jl_problem_free(jl_problem *p) {
    free(p->problem);
    free(p->answer);
    free(p->uid);
    memset(p, 0, sizeof *p);
}

// A problem's level (see jsonl.h): 1..5, 0 for none, -1 for anything else.
static int jl_problem_level(const cJSON *lv) {
    if (!lv || cJSON_IsNull(lv)) return 0;
    double d;
    if (cJSON_IsNumber(lv)) d = lv->valuedouble;
    else if (cJSON_IsString(lv)) {
        const char *s = lv->valuestring;
        int tagged = !strncmp(s, "Level ", 6);
        if (tagged) s += 6;
        char *end;
        errno = 0;
        d = strtod(s, &end);
        if (end == s || *end || errno) return tagged ? 0 : -1; // "Level ?" in MATH: unknown
    } else return -1;
    if (d == 0) return 0;
    return d >= 1 && d <= 5 && d == floor(d) ? (int)d : -1;
}

const char *jl_problem_parse(const char *line, size_t len, long lineno, jl_problem *p) {
    memset(p, 0, sizeof *p);
    cJSON *j = cJSON_ParseWithLength(line, len);
    if (!j || !cJSON_IsObject(j)) { cJSON_Delete(j); return "not a JSON object"; }
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(j, "problem");
    int gsm = 0;
    if (!q) { q = cJSON_GetObjectItemCaseSensitive(j, "question"); gsm = q != NULL; }
    const cJSON *ans = cJSON_GetObjectItemCaseSensitive(j, "answer");
    const cJSON *sol = cJSON_GetObjectItemCaseSensitive(j, "solution");
    const char *err = NULL;
    char boxed[1024]; // MATH's train/test files: no "answer", the solution's final answer instead
    int from_sol = !ans && !gsm && cJSON_IsString(sol) &&
                   e2h_answer_extract(sol->valuestring, strlen(sol->valuestring), boxed, sizeof boxed);
    if (!cJSON_IsString(q)) err = "field \"problem\" (or \"question\") missing or not a string";
    else if (from_sol) p->problem = jl_strdup(q->valuestring), p->answer = jl_strdup(boxed);
    else if (!cJSON_IsString(ans) && !cJSON_IsNumber(ans))
        err = "field \"answer\" missing or not a string/number (and no \"solution\" with a final answer)";
    if (!err && !from_sol) {
        p->problem = jl_strdup(q->valuestring);
        if (cJSON_IsNumber(ans)) {
            char b[64];
            snprintf(b, sizeof b, "%.17g", ans->valuedouble);
            p->answer = jl_strdup(b);
        } else {
            const char *s = ans->valuestring, *h = gsm ? strstr(s, "####") : NULL;
            if (gsm && !h) err = "GSM8K field \"answer\" has no \"#### N\"";
            else p->answer = h ? jl_trim_dup(h + 4, strlen(h + 4)) : jl_strdup(s);
        }
    }
    if (!err && (p->level = jl_problem_level(cJSON_GetObjectItemCaseSensitive(j, "level"))) < 0)
        err = "field \"level\" is not 1..5 or \"Level N\"";
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "unique_id");
    if (!err) {
        if (cJSON_IsString(u)) p->uid = jl_strdup(u->valuestring);
        else if (u && !cJSON_IsNull(u)) err = "field \"unique_id\" is not a string";
        else {
            char b[48];
            snprintf(b, sizeof b, "line:%ld", lineno);
            p->uid = jl_strdup(b);
            p->uid_default = 1;
        }
    }
    cJSON_Delete(j);
    if (!err && (!p->problem || !p->answer || !p->uid)) err = "out of memory";
    if (err) jl_problem_free(p);
    return err;
}

// ------------------------------------------------------------------ score -i

#define JL_BAD(...) (snprintf(msg, msg_len, __VA_ARGS__), 2)

void jl_score_row_free(jl_score_row *r) {
    cJSON_Delete(r->j);
    free(r->steps);
    free(r->buf);
    memset(r, 0, sizeof *r);
}

// Splits the solution string s into r->steps (copies in r->buf). Returns 0 or 2.
static int jl_score_split(const e2h_prm *prm, const char *s, jl_score_row *r, char *msg,
                          size_t msg_len) {
    size_t len = strlen(s), *s0, *sl;
    int m = e2h_prm_split_solution(prm, s, len, NULL, NULL, 0);
    if (m < 0 || (size_t)m > len + 1) return JL_BAD("field 'solution': cannot split it into steps");
    s0 = malloc((size_t)(m + 1) * sizeof *s0);
    sl = malloc((size_t)(m + 1) * sizeof *sl);
    r->steps = calloc((size_t)(m + 1), sizeof *r->steps);
    r->buf = malloc(len + (size_t)m + 1);
    if (!s0 || !sl || !r->steps || !r->buf) {
        free(s0);
        free(sl);
        return JL_BAD("out of memory");
    }
    r->n = e2h_prm_split_solution(prm, s, len, s0, sl, m);
    if (r->n > m) r->n = m; // never more than the first count (defensive: same input)
    char *w = r->buf;
    for (int k = 0; k < r->n; k++) {
        memcpy(w, s + s0[k], sl[k]);
        w[sl[k]] = 0;
        r->steps[k] = w;
        w += sl[k] + 1;
    }
    free(s0);
    free(sl);
    return 0;
}

int jl_score_parse(const char *line, size_t len, const e2h_prm *prm, jl_score_row *r, char *msg,
                   size_t msg_len) {
    memset(r, 0, sizeof *r);
    r->j = cJSON_ParseWithLength(line, len);
    if (!r->j) {
        const char *at = cJSON_GetErrorPtr();
        return JL_BAD("malformed JSON near byte %ld", at && at >= line && at <= line + len ? (long)(at - line) : 0L);
    }
    cJSON *j = r->j;
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(j, "problem");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "steps");
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(j, "solution");
    if (!cJSON_IsObject(j)) return JL_BAD("not a JSON object");
    if (!cJSON_IsString(pr)) return JL_BAD("field 'problem': missing or not a string");
    r->problem = pr->valuestring;
    if (st) {
        r->field = "steps";
        if (!cJSON_IsArray(st)) return JL_BAD("field 'steps': not an array");
        int n = cJSON_GetArraySize(st);
        r->steps = calloc((size_t)(n > 0 ? n : 1), sizeof *r->steps);
        if (!r->steps) return JL_BAD("out of memory");
        const cJSON *s;
        int k = 0;
        cJSON_ArrayForEach(s, st) {
            if (!cJSON_IsString(s)) return JL_BAD("field 'steps[%d]': not a string", k);
            if (k < n) r->steps[k++] = s->valuestring;
        }
        r->n = k;
    } else if (cJSON_IsString(so)) {
        r->field = "solution";
        int rc = jl_score_split(prm, so->valuestring, r, msg, msg_len);
        if (rc) return rc;
    } else {
        return JL_BAD("field 'steps' (array) or 'solution' (string) is required");
    }
    if (r->n == 0) return JL_BAD("field '%s': no steps", r->field);
    for (int k = 0; k < r->n; k++) {
        const char *s = r->steps[k];
        while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') s++;
        if (!*s) return JL_BAD("field '%s[%d]': empty step", r->field, k);
    }
    return 0;
}

// ------------------------------------------------------------------ generate -i

static const char *const jl_prompt_fields[] = {"prompt", "messages", "problem", "question", "ids"};
#define JL_N_PROMPT_FIELDS 5

void jl_gen_row_free(jl_gen_row *r) {
    cJSON_Delete(r->row);
    memset(r, 0, sizeof *r);
}

// A "messages" array of {role, content}. Returns 0 or 2.
static int jl_gen_messages(const cJSON *msgs, char *msg, size_t msg_len) {
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0)
        return JL_BAD("messages: expected a non-empty array of {\"role\", \"content\"}");
    int k = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsObject(m))
            return JL_BAD("messages[%d]: expected an object {\"role\", \"content\"}", k);
        if (!cJSON_IsString(role) || (strcmp(role->valuestring, "system") && strcmp(role->valuestring, "user") &&
                                      strcmp(role->valuestring, "assistant")))
            return JL_BAD("messages[%d].role: expected \"system\", \"user\" or \"assistant\"", k);
        if (!cJSON_IsString(content)) return JL_BAD("messages[%d].content: expected a string", k);
        k++;
    }
    return 0;
}

// An "ids" array: integers in [0, 2^31). Returns 0 or 2.
static int jl_gen_ids(const cJSON *ids, char *msg, size_t msg_len) {
    if (!cJSON_IsArray(ids) || cJSON_GetArraySize(ids) == 0)
        return JL_BAD("ids: expected a non-empty array of token ids");
    int k = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, ids) {
        double d = cJSON_IsNumber(x) ? x->valuedouble : -1;
        if (!(d >= 0 && d <= 2147483647.0 && d == floor(d)))
            return JL_BAD("ids[%d]: expected a non-negative integer token id", k);
        k++;
    }
    return 0;
}

int jl_gen_parse(const char *line, size_t len, uint64_t seed0, long index, jl_gen_row *r,
                 char *msg, size_t msg_len) {
    memset(r, 0, sizeof *r);
    size_t l = len, s = 0;
    while (l && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t')) l--;
    while (s < l && (line[s] == ' ' || line[s] == '\t')) s++;
    const char *end = NULL;
    r->row = cJSON_ParseWithLengthOpts(line + s, l - s, &end, 0);
    if (!r->row || (size_t)(end - line) < l) {
        long col = (end && end >= line + s ? (long)(end - line) : (long)s) + 1;
        return JL_BAD("malformed JSON (column %ld)", col);
    }
    cJSON *row = r->row;
    if (!cJSON_IsObject(row)) return JL_BAD("expected a JSON object");
    const char *kind = NULL;
    for (int i = 0; i < JL_N_PROMPT_FIELDS; i++) {
        if (!cJSON_GetObjectItemCaseSensitive(row, jl_prompt_fields[i])) continue;
        if (kind) return JL_BAD("give only one of \"%s\" and \"%s\"", kind, jl_prompt_fields[i]);
        kind = jl_prompt_fields[i];
    }
    if (!kind)
        return JL_BAD("no prompt: expected a field \"prompt\", \"messages\", \"problem\", "
                      "\"question\" or \"ids\"");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, kind);
    int rc = !strcmp(kind, "messages") ? jl_gen_messages(v, msg, msg_len)
           : !strcmp(kind, "ids") ? jl_gen_ids(v, msg, msg_len)
           : cJSON_IsString(v) ? 0 : JL_BAD("%s: expected a string", kind);
    if (rc) return rc;
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(row, "seed");
    r->seed = seed0 + (uint64_t)index;
    if (seed) {
        double d = cJSON_IsNumber(seed) ? seed->valuedouble : -1;
        if (!(d >= 0 && d <= 9007199254740992.0 && d == floor(d)))
            return JL_BAD("seed: expected a non-negative integer (at most 2^53)");
        r->seed = (uint64_t)d;
    }
    r->kind = kind;
    return 0;
}

// ------------------------------------------------------------------ report

const char *const jl_agg_names[JL_AGG_N] = {"min", "prod", "mean", "last"};

// An integer field in [lo, hi] (default dflt when missing or null). 0, or -1.
static int jl_get_long(const cJSON *o, const char *k, long lo, long hi, long dflt, long *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v)) { *out = dflt; return 0; }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi ||
        v->valuedouble != floor(v->valuedouble))
        return -1;
    *out = (long)v->valuedouble;
    return 0;
}

int jl_report_config_parse(const cJSON *cfg, jl_report_config *c, const char **why) {
    memset(c, 0, sizeof *c);
    const cJSON *meth = cJSON_GetObjectItemCaseSensitive(cfg, "method");
    const cJSON *sd = cJSON_GetObjectItemCaseSensitive(cfg, "seed");
    int bad_seed = sd && !cJSON_IsNull(sd) && !(cJSON_IsNumber(sd) && isfinite(sd->valuedouble));
    // the seed only tells runs apart (a 64-bit seed may not fit a double exactly)
    if (cJSON_IsNumber(sd) && isfinite(sd->valuedouble))
        c->seed = (long)fmod(sd->valuedouble, 9007199254740992.0);
    if (!cJSON_IsObject(cfg) || !cJSON_IsString(meth) || jl_get_long(cfg, "n", 1, 1 << 20, 1, &c->n) ||
        jl_get_long(cfg, "m", 0, 1 << 20, 0, &c->m) || bad_seed) {
        *why = "config needs a string 'method' and integer 'n' (and 'm', 'seed')";
        return -1;
    }
    c->method = jl_strdup(meth->valuestring);
    if (!c->method) { *why = "out of memory"; return -1; }
    return 0;
}

// Level: an integer 1..5, "Level 4", or null/missing (0).
static int jl_level(const cJSON *v, int *out) {
    *out = 0;
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsNumber(v)) {
        if (v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 || v->valuedouble > 5) return -1;
        *out = (int)v->valuedouble;
        return 0;
    }
    if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        if (!strncmp(s, "Level ", 6)) s += 6;
        if (s[0] >= '1' && s[0] <= '5' && s[1] == 0) { *out = s[0] - '0'; return 0; }
        if (!strcmp(s, "?")) return 0;  // MATH's "Level ?"
    }
    return -1;
}

void jl_report_problem_free(jl_report_problem *p) {
    free(p->uid);
    free(p->s);
    free(p->group_correct);
    memset(p, 0, sizeof *p);
}

int jl_report_problem_parse(const cJSON *j, jl_report_problem *p, int *has_level, const char **why) {
    memset(p, 0, sizeof *p);
    *has_level = 0;
    const cJSON *uid = cJSON_GetObjectItemCaseSensitive(j, "unique_id");
    if (!cJSON_IsString(uid)) { *why = "'unique_id' missing or not a string"; return -1; }
    const cJSON *lv = cJSON_GetObjectItemCaseSensitive(j, "level");
    if (jl_level(lv, &p->level)) { *why = "'level' is not 1..5, \"Level N\" or null"; return -1; }
    *has_level = p->level != 0;
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(j, "answer");
    const cJSON *samples = cJSON_GetObjectItemCaseSensitive(j, "samples");
    if (samples && !cJSON_IsArray(samples)) { *why = "'samples' is not an array"; return -1; }
    int ns = samples ? cJSON_GetArraySize(samples) : 0;
    if (ns > 4096) { *why = "more than 4096 samples"; return -1; }
    p->uid = jl_strdup(uid->valuestring);
    p->s = calloc((size_t)(ns ? ns : 1), sizeof *p->s);
    p->group_correct = calloc((size_t)(ns ? ns : 1), sizeof *p->group_correct);
    char **keys = calloc((size_t)(ns ? ns : 1), sizeof *keys);
    int *gcount = calloc((size_t)(ns ? ns : 1), sizeof *gcount);
    if (!p->uid || !p->s || !p->group_correct || !keys || !gcount) { free(keys); free(gcount); *why = "out of memory"; return -1; }
    p->ns = ns;
    int ok = 1, i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, samples) {
        if (i >= ns) break;
        jl_report_sample *o = &p->s[i++];
        if (!cJSON_IsObject(s)) { *why = "a sample is not an object"; ok = 0; break; }
        const cJSON *ans = cJSON_GetObjectItemCaseSensitive(s, "answer");
        const cJSON *key = cJSON_GetObjectItemCaseSensitive(s, "key");
        const cJSON *cor = cJSON_GetObjectItemCaseSensitive(s, "correct");
        char kb[4096];
        const char *k = NULL;
        if (cJSON_IsString(key)) k = key->valuestring;
        else if (cJSON_IsString(ans) && e2h_answer_key(ans->valuestring, strlen(ans->valuestring), kb, sizeof kb)) k = kb;
        if (cor && !cJSON_IsBool(cor) && !cJSON_IsNull(cor)) { *why = "a sample's 'correct' is not a boolean"; ok = 0; break; }
        if (cJSON_IsBool(cor)) o->correct = cJSON_IsTrue(cor);
        else if (cJSON_IsString(ans) && cJSON_IsString(ref))  // not graded yet: grade it here
            o->correct = e2h_answer_equal(ans->valuestring, strlen(ans->valuestring), ref->valuestring,
                                          strlen(ref->valuestring));
        else o->correct = 0;
        o->group = -1;
        if (k && *k) {
            for (int g = 0; g < p->n_groups; g++)
                if (!strcmp(keys[g], k)) { o->group = g; break; }
            if (o->group < 0) {
                keys[p->n_groups] = jl_strdup(k);
                if (!keys[p->n_groups]) { *why = "out of memory"; ok = 0; break; }
                o->group = p->n_groups++;
            }
            gcount[o->group]++;
            p->group_correct[o->group] += o->correct;
        }
        const cJSON *agg = cJSON_GetObjectItemCaseSensitive(s, "agg");
        for (int a = 0; a < JL_AGG_N; a++) {
            const cJSON *v = agg ? cJSON_GetObjectItemCaseSensitive(agg, jl_agg_names[a]) : NULL;
            o->score[a] = cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : -INFINITY;
        }
    }
    // a group is correct when most of its samples are (they share one key, so normally all)
    for (int g = 0; g < p->n_groups; g++) p->group_correct[g] = 2 * p->group_correct[g] >= gcount[g];
    for (int g = 0; g < p->n_groups; g++) free(keys[g]);
    free(keys);
    free(gcount);
    if (!ok) return -1;
    p->sel_correct = -1;
    const cJSON *sel = cJSON_GetObjectItemCaseSensitive(j, "selected");
    if (cJSON_IsObject(sel)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(sel, "correct");
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(sel, "answer");
        if (cJSON_IsBool(c)) p->sel_correct = cJSON_IsTrue(c);
        else if (cJSON_IsString(a) && cJSON_IsString(ref))
            p->sel_correct = e2h_answer_equal(a->valuestring, strlen(a->valuestring), ref->valuestring,
                                              strlen(ref->valuestring));
        else p->sel_correct = 0;
    }
    return 0;
}
