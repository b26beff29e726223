// tests/fuzz/fuzz_jsonl.c — the CLI's JSONL line parsers (engine/cli/jsonl.c) on arbitrary
// bytes: the first byte picks the reader (mod 4: 0 `e2h score -i` solutions, 1 `e2h search
// --problems` MATH500/GSM8K problems, 2 `e2h report` results lines (config or problem), 3
// `e2h generate -i` prompts), the rest is one line. The line is copied to an exact-size buffer
// (not NUL-terminated) so ASan sees any over-read; every parse is freed (LeakSanitizer).
#include <cjson/cJSON.h>

#include "../../engine/cli/jsonl.h"
#include "fuzz_util.h"

static void fz_score(const char *s, size_t n) {
    char msg[512] = "";
    jl_score_row r;
    if (!jl_score_parse(s, n, NULL, &r, msg, sizeof msg)) {
        // what score_line relies on: n steps, each a NUL-terminated non-blank string
        if (r.n < 1 || !r.problem) abort();
        for (int k = 0; k < r.n; k++)
            if (!r.steps[k]) abort();
    } else if (!msg[0]) {
        abort(); // an error always says why
    }
    jl_score_row_free(&r);
}

static void fz_problem(const char *s, size_t n) {
    jl_problem p;
    const char *err = jl_problem_parse(s, n, 7, &p);
    if (!err && (!p.problem || !p.answer || !p.uid || p.level < 0 || p.level > 5)) abort();
    if (err && (p.problem || p.answer || p.uid)) abort(); // empty after an error
    jl_problem_free(&p);
}

static void fz_report(const char *s, size_t n) {
    cJSON *j = cJSON_ParseWithLength(s, n);
    if (!cJSON_IsObject(j)) { cJSON_Delete(j); return; }
    const char *why = NULL;
    cJSON *cfg = cJSON_GetObjectItemCaseSensitive(j, "config");
    if (cfg) {
        jl_report_config c;
        if (!jl_report_config_parse(cfg, &c, &why)) {
            if (!c.method || c.n < 1 || c.m < 0) abort();
            free(c.method);
        } else if (!why) {
            abort();
        }
    } else {
        jl_report_problem p;
        int has_level;
        if (!jl_report_problem_parse(j, &p, &has_level, &why)) {
            if (!p.uid || p.ns < 0 || p.n_groups > p.ns) abort();
            for (int i = 0; i < p.ns; i++)
                if (p.s[i].group < -1 || p.s[i].group >= p.n_groups) abort();
        } else if (!why) {
            abort();
        }
        jl_report_problem_free(&p);
    }
    cJSON_Delete(j);
}

static void fz_generate(const char *s, size_t n) {
    char msg[512] = "";
    jl_gen_row r;
    if (!jl_gen_parse(s, n, 1, 3, &r, msg, sizeof msg)) {
        if (!r.row || !r.kind || !cJSON_GetObjectItemCaseSensitive(r.row, r.kind)) abort();
    } else if (!msg[0]) {
        abort();
    }
    jl_gen_row_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t n = size - 1;
    char *s = malloc(n ? n : 1);
    if (!s) return 0;
    memcpy(s, data + 1, n);
    switch (data[0] & 3) {
    case 0: fz_score(s, n); break;
    case 1: fz_problem(s, n); break;
    case 2: fz_report(s, n); break;
    default: fz_generate(s, n); break;
    }
    free(s);
    return 0;
}
