// engine/cli/jsonl.h — the line parsers of the CLI's JSONL inputs, split from the commands so
// that a fuzz target (tests/fuzz/fuzz_jsonl.c) can call them on arbitrary bytes: no I/O, no
// exit, bounded work per line. Errors come back as a message naming the field; the commands
// prefix it with "file:line". Each parse either fills its output (the caller frees it with the
// matching *_free, also after an error) or leaves it empty.
#ifndef E2H_CLI_JSONL_H
#define E2H_CLI_JSONL_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "../../include/e2h.h"

// ---- e2h search --problems and e2h label --problems: MATH500 {problem, answer, level,
// unique_id} (no "answer": the \boxed{} final answer of "solution", as MATH's train/test files)
// or GSM8K {question, answer "... #### N"}. level: a number or "N" / "Level N" (1..5); missing,
// null, 0 or "Level " + anything else (MATH's "Level ?") is none.
typedef struct {
    char *problem, *answer, *uid;
    int level;       // 0: none
    int uid_default; // 1: no "unique_id" (or null): uid is "line:LINENO"
} jl_problem;
// Returns NULL, or a static message (p is then empty). lineno names a problem without id.
const char *jl_problem_parse(const char *line, size_t len, long lineno, jl_problem *p);
void jl_problem_free(jl_problem *p);

// ---- e2h score -i: {problem, steps: [...]} or {problem, solution} (split on prm's delimiter;
// prm NULL: "\n\n"). Other fields are copied through by the command (j).
typedef struct {
    cJSON *j;              // the parsed line (owned)
    const char *problem;   // in j
    const char **steps;    // (n) in j or in buf
    int n;
    const char *field;     // "steps" or "solution", for messages
    char *buf;             // the split solution's steps, NUL-separated
} jl_score_row;
// Returns 0, or 2 with msg set.
int jl_score_parse(const char *line, size_t len, const e2h_prm *prm, jl_score_row *r, char *msg,
                   size_t msg_len);
void jl_score_row_free(jl_score_row *r);

// ---- e2h generate -i: one of {prompt | messages | problem | question | ids}, optional seed.
typedef struct {
    cJSON *row;            // the parsed line (owned)
    const char *kind;      // the prompt field
    uint64_t seed;         // row's "seed", else seed0 + index
} jl_gen_row;
// Returns 0, or 2 with msg set (naming the field and, for a JSON error, the column).
int jl_gen_parse(const char *line, size_t len, uint64_t seed0, long index, jl_gen_row *r,
                 char *msg, size_t msg_len);
void jl_gen_row_free(jl_gen_row *r);

// ---- e2h report: results files, a {"config": {method, n, m, seed, ...}} line, then problems.
#define JL_AGG_N 4
extern const char *const jl_agg_names[JL_AGG_N]; // min, prod, mean, last
typedef struct {
    char *method;          // owned
    long n, m, seed;
} jl_report_config;
// cfg: the "config" object. Returns 0, or -1 with *why set (cfg is then not taken).
int jl_report_config_parse(const cJSON *cfg, jl_report_config *c, const char **why);
typedef struct {
    int correct;
    int group;             // answer group (index into the problem's distinct keys), -1: no answer
    double score[JL_AGG_N]; // -INFINITY when missing
} jl_report_sample;
typedef struct {
    char *uid;
    int level;             // 1..5, 0 = none
    jl_report_sample *s;
    int ns;
    int n_groups;
    int *group_correct;    // (n_groups)
    int sel_correct;       // -1: no `selected`
} jl_report_problem;
// One problem line (a parsed object) into p (zeroed first). Returns 0, or -1 with *why set;
// free p with jl_report_problem_free either way.
int jl_report_problem_parse(const cJSON *j, jl_report_problem *p, int *has_level, const char **why);
void jl_report_problem_free(jl_report_problem *p);

#endif
