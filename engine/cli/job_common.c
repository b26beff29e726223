// engine/cli/job_common.c — see job_common.h.
#include "job_common.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "jsonl.h"

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
        jl_problem jp; // one parser of a problem line with e2h search (engine/cli/jsonl.c)
        const char *err = jl_problem_parse(q, strlen(q), line, &jp);
        if (err) {
            rc = cli_fail("%s:%d: %s", path, line, err);
            break;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 256;
            job_problem *np = cap > (1 << 24) ? NULL : realloc(out->p, (size_t)cap * sizeof *np);
            if (!np) { jl_problem_free(&jp); rc = cli_fail("%s: too many problems", path); break; }
            out->p = np;
        }
        job_problem *o = &out->p[out->n++];
        o->problem = jp.problem;
        o->answer = jp.answer;
        o->unique_id = jp.uid;
        if (jp.uid_default) { // no unique_id: "<file>:<line>" (jl_problem_parse's is "line:N")
            free(jp.uid);
            size_t l = strlen(path) + 24;
            o->unique_id = malloc(l);
            if (o->unique_id) snprintf(o->unique_id, l, "%s:%d", path, line);
        }
        o->level = jp.level;
        o->line = line;
        if (!jp.level) out->n_without_level++;
        if (!o->unique_id) rc = cli_fail("out of memory");
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
    // the few-shot file is {"problem","solution"} lines whose solution is kept verbatim as the
    // assistant turn: another format than a problem line (no answer, level or id), its own reader
    size_t len;
    char *buf = job_read_file(fewshot, &len);
    if (!buf) return cli_fail("%s: cannot read the few-shot file", fewshot);
    int line = 0, rc = 0;
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
