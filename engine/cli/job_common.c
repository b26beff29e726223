// engine/cli/job_common.c — see job_common.h.
#include "job_common.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

char *job_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    for (size_t r; b && (r = fread(b + n, 1, cap - n - 1, f)) > 0;) {
        n += r;
        if (n + 1 == cap) {
            char *nb = cap > ((size_t)1 << 40) ? NULL : realloc(b, cap *= 2);
            if (!nb) { free(b); b = NULL; }
            else b = nb;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (b && bad) { free(b); b = NULL; }
    if (b) b[n] = 0;
    if (len) *len = n;
    return b;
}

// ------------------------------------------------------------------ problems

// "Level 4", 4, "4" -> 4; null/absent -> 0; anything else -> -1.
static int job_level_of(const cJSON *v) {
    if (!v || cJSON_IsNull(v)) return 0;
    double d;
    if (cJSON_IsNumber(v)) d = v->valuedouble;
    else if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        if (!strncmp(s, "Level ", 6)) s += 6;
        char *end;
        errno = 0;
        d = strtod(s, &end);
        if (end == s || *end || errno) return -1;
    } else return -1;
    if (!(d >= 1 && d <= 5) || d != floor(d)) return -1;
    return (int)d;
}

static char *job_json_text(const cJSON *v) {
    if (cJSON_IsString(v)) return strdup(v->valuestring);
    if (cJSON_IsNumber(v)) {
        char b[64];
        if (v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 1e15)
            snprintf(b, sizeof b, "%.0f", v->valuedouble);
        else snprintf(b, sizeof b, "%.17g", v->valuedouble);
        return strdup(b);
    }
    return NULL;
}

// The reference answer: field "answer", else the final answer of field "solution" (MATH's train
// and test files carry only the solution, with its \boxed{} answer); NULL if neither.
static char *job_answer_of(const cJSON *j) {
    const cJSON *an = cJSON_GetObjectItemCaseSensitive(j, "answer");
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(j, "solution");
    if (an || !cJSON_IsString(so)) return job_json_text(an);
    char buf[1024];
    if (!e2h_answer_extract(so->valuestring, strlen(so->valuestring), buf, sizeof buf)) return NULL;
    return strdup(buf);
}

int job_read_problems(const char *path, job_problems *out) {
    memset(out, 0, sizeof *out);
    size_t len;
    char *buf = job_read_file(path, &len);
    if (!buf) return cli_fail("%s: cannot read the problems file", path);
    int cap = 0, line = 0, rc = 0;
    for (char *p = buf; p < buf + len && !rc;) {
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        char *end = nl ? nl : buf + len;
        line++;
        *end = 0;
        char *q = p;
        p = end + 1;
        while (isspace((unsigned char)*q)) q++;
        if (!*q) continue;
        cJSON *j = cJSON_Parse(q);
        if (!j || !cJSON_IsObject(j)) {
            cJSON_Delete(j);
            rc = cli_fail("%s:%d: not a JSON object", path, line);
            break;
        }
        const cJSON *pr = cJSON_GetObjectItemCaseSensitive(j, "problem");
        const cJSON *lv = cJSON_GetObjectItemCaseSensitive(j, "level");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "unique_id");
        int level = job_level_of(lv);
        char *ans = job_answer_of(j);
        if (!cJSON_IsString(pr) || !ans || level < 0 || (id && !cJSON_IsString(id))) {
            rc = cli_fail("%s:%d: %s", path, line,
                          !cJSON_IsString(pr) ? "field \"problem\" missing or not a string"
                          : !ans ? "field \"answer\" missing or not a string/number (and no "
                                   "\"solution\" with a final answer)"
                          : level < 0 ? "field \"level\" must be 1..5 or \"Level N\""
                                      : "field \"unique_id\" is not a string");
            free(ans);
            cJSON_Delete(j);
            break;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 256;
            job_problem *np = cap > (1 << 24) ? NULL : realloc(out->p, (size_t)cap * sizeof *np);
            if (!np) { free(ans); cJSON_Delete(j); rc = cli_fail("%s: too many problems", path); break; }
            out->p = np;
        }
        job_problem *jp = &out->p[out->n++];
        jp->problem = strdup(pr->valuestring);
        jp->answer = ans;
        if (id) jp->unique_id = strdup(id->valuestring);
        else {
            char b[64];
            snprintf(b, sizeof b, ":%d", line);
            size_t l = strlen(path) + strlen(b) + 1;
            jp->unique_id = malloc(l);
            if (jp->unique_id) snprintf(jp->unique_id, l, "%s%s", path, b);
        }
        jp->level = level;
        jp->line = line;
        if (!level) out->n_without_level++;
        cJSON_Delete(j);
        if (!jp->problem || !jp->unique_id) rc = cli_fail("out of memory");
    }
    free(buf);
    if (!rc && out->n == 0) rc = cli_fail("%s: no problems in the file", path);
    if (rc) job_problems_free(out);
    return rc;
}

void job_problems_free(job_problems *ps) {
    for (int i = 0; ps->p && i < ps->n; i++) {
        free(ps->p[i].problem);
        free(ps->p[i].answer);
        free(ps->p[i].unique_id);
    }
    free(ps->p);
    memset(ps, 0, sizeof *ps);
}

int job_parse_levels(const char *flag, const char *s, unsigned *mask) {
    *mask = 0;
    for (const char *p = s; *p;) {
        if (*p < '1' || *p > '5' || (p[1] && p[1] != ',')) {
            fprintf(stderr, "e2h: %s: expected a comma-separated list of levels 1..5, got '%s'\n", flag, s);
            return -1;
        }
        *mask |= 1u << (*p - '0');
        p += p[1] ? 2 : 1;
    }
    if (!*mask) {
        fprintf(stderr, "e2h: %s: no level given\n", flag);
        return -1;
    }
    return 0;
}

// ------------------------------------------------------------------ prompt

int job_prompt_load(job_prompt *jp, const char *system, const char *fewshot) {
    memset(jp, 0, sizeof *jp);
    if (system && system[0] == '@') {
        size_t len;
        jp->system = job_read_file(system + 1, &len);
        if (!jp->system) return cli_fail("%s: cannot read the system prompt file", system + 1);
        while (len && (jp->system[len - 1] == '\n' || jp->system[len - 1] == '\r')) jp->system[--len] = 0;
    } else if (system && *system) jp->system = strdup(system);
    if (!fewshot || !*fewshot) return 0;
    job_problems fs;
    // the few-shot file is {"problem","solution"} lines: reuse the reader with "solution" as answer
    size_t len;
    char *buf = job_read_file(fewshot, &len);
    if (!buf) return cli_fail("%s: cannot read the few-shot file", fewshot);
    int line = 0, rc = 0;
    memset(&fs, 0, sizeof fs);
    for (char *p = buf; p < buf + len && !rc;) {
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        char *end = nl ? nl : buf + len;
        line++;
        *end = 0;
        char *q = p;
        p = end + 1;
        while (isspace((unsigned char)*q)) q++;
        if (!*q) continue;
        cJSON *j = cJSON_Parse(q);
        const cJSON *pr = cJSON_GetObjectItemCaseSensitive(j, "problem");
        const cJSON *so = cJSON_GetObjectItemCaseSensitive(j, "solution");
        if (!cJSON_IsString(pr) || !cJSON_IsString(so) || jp->n_shots >= 64) {
            rc = cli_fail("%s:%d: expected {\"problem\": string, \"solution\": string} (at most 64 lines)",
                          fewshot, line);
        } else {
            char **nq = realloc(jp->shot_q, (size_t)(jp->n_shots + 1) * sizeof *nq);
            if (nq) jp->shot_q = nq;
            char **na = realloc(jp->shot_a, (size_t)(jp->n_shots + 1) * sizeof *na);
            if (na) jp->shot_a = na;
            if (!nq || !na) rc = cli_fail("out of memory");
            else {
                jp->shot_q[jp->n_shots] = strdup(pr->valuestring);
                jp->shot_a[jp->n_shots] = strdup(so->valuestring);
                jp->n_shots++;
            }
        }
        cJSON_Delete(j);
    }
    free(buf);
    if (rc) job_prompt_free(jp);
    return rc;
}

void job_prompt_free(job_prompt *jp) {
    free(jp->system);
    for (int i = 0; i < jp->n_shots; i++) {
        free(jp->shot_q[i]);
        free(jp->shot_a[i]);
    }
    free(jp->shot_q);
    free(jp->shot_a);
    memset(jp, 0, sizeof *jp);
}

typedef struct {
    char *b;
    size_t n, cap;
    int oom;
} job_buf;

static void job_cat(job_buf *w, const char *s) {
    size_t l = strlen(s);
    if (w->oom) return;
    if (w->n + l + 1 > w->cap) {
        size_t cap = (w->cap ? w->cap : 1024);
        while (cap < w->n + l + 1) cap *= 2;
        char *nb = realloc(w->b, cap);
        if (!nb) { w->oom = 1; return; }
        w->b = nb;
        w->cap = cap;
    }
    memcpy(w->b + w->n, s, l + 1);
    w->n += l;
}

int job_prompt_ids(const job_prompt *jp, const e2h_model *m, const char *problem, int32_t **ids,
                   int32_t *n) {
    *ids = NULL;
    const e2h_tokenizer *t = e2h_model_tokenizer(m);
    if (!t) return cli_fail("the policy has no tokenizer");
    if (e2h_tokenizer_find(t, "<|im_start|>", 12) < 0 || e2h_tokenizer_find(t, "<|im_end|>", 10) < 0)
        return cli_fail("the policy has no ChatML chat template (no <|im_start|>/<|im_end|> tokens); "
                        "the job needs a chat (instruct) policy");
    job_buf w = {0};
    const char *sys = jp->system ? jp->system : e2h_model_chat_system(m);
    if (sys && *sys) { job_cat(&w, "<|im_start|>system\n"); job_cat(&w, sys); job_cat(&w, "<|im_end|>\n"); }
    for (int i = 0; i < jp->n_shots; i++) {
        job_cat(&w, "<|im_start|>user\n");
        job_cat(&w, jp->shot_q[i]);
        job_cat(&w, "<|im_end|>\n<|im_start|>assistant\n");
        job_cat(&w, jp->shot_a[i]);
        job_cat(&w, "<|im_end|>\n");
    }
    job_cat(&w, "<|im_start|>user\n");
    job_cat(&w, problem);
    job_cat(&w, "<|im_end|>\n<|im_start|>assistant\n");
    if (w.oom) { free(w.b); return cli_fail("out of memory"); }
    int32_t cap = (int32_t)(w.n < (1u << 28) ? w.n : (1u << 28)) + 16, need = 0;
    *ids = malloc((size_t)cap * sizeof **ids);
    e2h_status st = *ids ? e2h_tokenize(t, w.b, w.n, 0, *ids, cap, &need) : E2H_ERR_NOMEM;
    free(w.b);
    if (st || need > cap) {
        free(*ids);
        *ids = NULL;
        return cli_fail("tokenizing the prompt failed (%s)", e2h_status_name(st));
    }
    *n = need;
    return 0;
}

// ------------------------------------------------------------------ answers

int job_answer_extract(const char *text, size_t len, char *out, size_t cap) {
    return e2h_answer_extract(text, len, out, cap);
}

int job_answer_equal(const char *a, const char *ref) {
    return e2h_answer_equal(a, strlen(a), ref, strlen(ref));
}

// ------------------------------------------------------------------ output

int job_write_npy(const char *path, const float *a, int64_t rows, int64_t cols) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    char hdr[160];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                     (long long)rows, (long long)cols);
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    unsigned short hlen = (unsigned short)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fwrite(&hlen, 2, 1, f);
    fwrite(hdr, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    size_t w = (rows > 0 && cols > 0) ? fwrite(a, sizeof(float), (size_t)(rows * cols), f) : 0;
    int bad = ferror(f) || w != (size_t)(rows * cols);
    return fclose(f) || bad ? -1 : 0;
}

void job_model_id(const e2h_model *m, char out[33]) {
    e2h_model_info mi;
    e2h_model_get_info(m, &mi);
    snprintf(out, 33, "%s", mi.model_id);
}
