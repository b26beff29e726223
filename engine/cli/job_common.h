// engine/cli/job_common.h — pieces shared by the easy-to-hard job's commands (label, e2h-job):
// leveled problems files, the few-shot ChatML prompt, answers, .npy output.
#ifndef E2H_CLI_JOB_COMMON_H
#define E2H_CLI_JOB_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "../../include/e2h.h"

typedef struct {
    char *problem, *answer, *unique_id;
    int level;   // 1..5, 0 when the file has no level for it
    int line;    // 1-based line in the file
} job_problem;

typedef struct {
    job_problem *p;
    int n;
    int n_without_level;
} job_problems;

// Reads a problems JSONL, each line through jl_problem_parse (engine/cli/jsonl.h, as e2h search:
// MATH schema problem, answer (else the solution's \boxed{} answer), level as 1..5 or "Level N",
// unique_id; or GSM8K question/answer); a missing unique_id becomes "<file>:<line>". Returns 0,
// or 2 with "FILE:LINE: message naming the field" printed.
int job_read_problems(const char *path, job_problems *out);
void job_problems_free(job_problems *ps);
// Parses "1,2,3" into a level mask (bit L). Returns 0 or -1 (message printed).
int job_parse_levels(const char *flag, const char *s, unsigned *mask);

typedef struct {
    char *system;                 // NULL: none
    char **shot_q, **shot_a;      // few-shot (problem, solution) pairs rendered as prior turns
    int n_shots;
} job_prompt;

// Loads system text (TEXT, or @FILE) and a few-shot JSONL ({"problem","solution"}; NULL: none).
int job_prompt_load(job_prompt *jp, const char *system, const char *fewshot);
void job_prompt_free(job_prompt *jp);
// Token ids of the ChatML prompt for problem. Refuses a policy without a ChatML chat template.
// Caller frees *ids. Returns 0 or 2 (message printed).
int job_prompt_ids(const job_prompt *jp, const e2h_model *m, const char *problem, int32_t **ids,
                   int32_t *n);

// Final answer of a solution text into out; 1 if found.
int job_answer_extract(const char *text, size_t len, char *out, size_t cap);
// 1 if the extracted answer equals the reference.
int job_answer_equal(const char *a, const char *ref);

// Writes a float32 (rows, cols) .npy. Returns 0 or -1.
int job_write_npy(const char *path, const float *a, int64_t rows, int64_t cols);
// Reads a whole text file (NUL-terminated, malloc'd) or NULL.
char *job_read_file(const char *path, size_t *len);
// Model id as 32 hex chars (the head file's "model_id").
void job_model_id(const e2h_model *m, char out[33]);

#endif
