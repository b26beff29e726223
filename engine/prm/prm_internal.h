// engine/prm/prm_internal.h — PRM protocols, text layouts and score readers (not public).
//
// A protocol is a small table (one file per protocol in engine/prm/): how problem + steps
// are laid out as the PRM's tokens, which token position is read for each step, and how a
// score is computed there. Every reader works from the final-normed hidden state at the read
// position (the PRM model's, or the policy's for "head") except "implicit", which sums the
// tokens' log-probs under two models.
#ifndef E2H_PRM_INTERNAL_H
#define E2H_PRM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "../../include/e2h.h"

typedef enum {
    PRM_READ_MEAN_SIGMOID, // sigmoid(mean over the vocabulary of the logits)    (e2h-paper)
    PRM_READ_PLUS_MINUS,   // softmax over the "+" / "-" logits, P(+)  (math-shepherd, rlhflow)
    PRM_READ_CLS2,         // Linear-ReLU-Linear to 2 classes, softmax, P(class 1) (qwen-prm)
    PRM_READ_VALUE,        // sigmoid(w . h + b)                                   (value-head)
    PRM_READ_IMPLICIT,     // beta * sum over the step's tokens of (log pi - log pi_ref)
    PRM_READ_HEAD,         // e2h head file on the policy's hidden state           (head)
} prm_read_kind;

// A growing token list with, for each step, the token position read and the span of the
// step's own tokens. Filled by a protocol's layout function through the pb_* helpers.
typedef struct {
    const e2h_tokenizer *tok;
    int32_t *ids;
    int32_t n, cap;
    int n_steps;
    int32_t *read;        // (n_steps) position read for step k, -1: the step is not scored
    int32_t *span0, *span1; // (n_steps) tokens [span0, span1) hold step k's text
    char *err;
    size_t err_len;
} prm_build;

// Tokenizes text[0..len) as one string (added/special tokens are split out by the tokenizer,
// as Hugging Face does) and appends its ids. add_special: let the tokenizer add BOS as the
// reference's encode() does. marks: byte offsets into text; mark_tok[i] gets the absolute
// position of the token holding byte marks[i] (marks == len: the position after the last).
e2h_status pb_text(prm_build *b, const char *text, size_t len, int add_special,
                   const size_t *marks, int n_marks, int32_t *mark_tok);
e2h_status pb_token(prm_build *b, int32_t id);
// Tokenizes a whole layout text and sets each step's read position and span from byte
// offsets: read_b[k] (SIZE_MAX: step k is not scored), the step's text [span0_b, span1_b).
e2h_status pb_text_steps(prm_build *b, const char *text, size_t len, int add_special,
                         const size_t *read_b, const size_t *span0_b, const size_t *span1_b);
// Step k's text with surrounding whitespace trimmed (templates that trim their content).
void prm_trim(const char **s, size_t *n);
// Id of a token given as text that must be a single token (e.g. "<extra_0>", "+").
int32_t pb_single_token(const e2h_tokenizer *t, const char *text);

// Positions of the tokens holding the given byte offsets of the decoded text of ids[0..n)
// (the text e2h_detokenize gives). Returns 0, or -1 if the decoded pieces do not add up.
int prm_map_offsets(const e2h_tokenizer *t, const int32_t *ids, int32_t n, const size_t *marks,
                    int n_marks, int32_t *out_tok);

// A growable byte string.
typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} prm_str;
void ps_add(prm_str *p, const char *s, size_t n);
void ps_adds(prm_str *p, const char *s);
void ps_free(prm_str *p);

typedef struct {
    const char *const *text;
    const size_t *len;
    int n;
} prm_steps;

struct e2h_prm;
typedef struct prm_protocol {
    const char *name;
    const char *delimiter;   // splits a solution string into steps
    const char *tag;         // a step may not contain this text (NULL: no restriction)
    prm_read_kind read;
    int needs_model;         // 0: "head" (a head file on the policy)
    // Lays out problem + steps as the PRM's tokens and marks one read per step.
    e2h_status (*layout)(const struct e2h_prm *p, prm_build *b, const char *problem,
                         const prm_steps *steps, int is_final);
    // Resolves protocol tokens / head tensors once the model is loaded.
    e2h_status (*prepare)(struct e2h_prm *p, char *err, size_t err_len);
} prm_protocol;

struct e2h_prm {
    const prm_protocol *proto;
    int variant;               // e2h-paper: 0 PRM, 1 ORM, 2 OPRM
    char name[32];             // protocol name as given (with the variant)
    e2h_model *model;          // owned (NULL for head)
    e2h_model *ref;            // owned, implicit only
    const e2h_model *policy;   // head only
    const e2h_tokenizer *tok;  // the PRM model's tokenizer
    float beta;
    int dim;
    // readers
    float *mean_row;           // (dim) mean of the output rows (e2h-paper)
    float *pm_rows;            // (2, dim) output rows of "+" and "-"
    int32_t plus_id, minus_id, tag_id;
    // a one- or two-layer head: hidden = relu(w1 x + b1) (if w1), out = w2 hidden + b2
    int head_in, head_hidden, head_out;
    float *w1, *b1, *w2, *b2;
    // head file inputs, in tools/train_head.py features()' column order: x = [hidden (dim) if
    // head_hidden_in, mean log-prob (1) if head_mean_logprob, feature layer (dim) if
    // feature_layer]; head_in is their total
    int head_hidden_in;        // the final-normed hidden state
    int head_mean_logprob;     // the step's mean token log-prob
    int feature_layer;         // 0, or L: the residual stream after L blocks (engine feature_layer)
    char head_model_id[33];
};

// Protocol tables (one file each).
extern const prm_protocol prm_proto_e2h_paper, prm_proto_math_shepherd, prm_proto_qwen_prm,
    prm_proto_rlhflow, prm_proto_value_head, prm_proto_implicit, prm_proto_head;

// Score of one step from the final-normed hidden state h (dim) at its read position.
// mean_lp: the step's mean token log-prob (head files with that feature), else ignored.
// hl (dim): the residual stream after p->feature_layer blocks at the same position (head files
// that read a layer; NULL otherwise: then such a head scores NaN).
float prm_read_hidden(const struct e2h_prm *p, const float *h, float mean_lp, const float *hl);

// The PRM engine j (0: the PRM model, 1: implicit's reference) attached to e, or NULL (tests).
e2h_engine *prm_engine_of(const e2h_engine *e, int j);

// The layout of problem + steps (for tests and tools); b is allocated, free with prm_build_free.
e2h_status prm_build_layout(const struct e2h_prm *p, prm_build *b, const char *problem,
                            const char *const *steps, int n, int is_final, char *err,
                            size_t err_len);
void prm_build_free(prm_build *b);

// Reads f32 copies of tensors from safetensors files (a model directory with model.safetensors
// or a sharded index, or one file). *out is malloc'd; shape checked against (rows, cols)
// (cols 0: a 1-D tensor of rows elements). Missing -> E2H_ERR_SHAPE naming the tensor.
e2h_status prm_st_read(const char *path, const char *name, int64_t rows, int64_t cols,
                       float **out, char *err, size_t err_len);
// 1 if the tensor exists in path's safetensors (dir or file).
int prm_st_has(const char *path, const char *name);
// Shape of a tensor (up to 2-D): 0 and its dims, or -1 if absent / more dims.
int prm_st_shape(const char *path, const char *name, int64_t shape[2], int *nd);
// A GGUF PRM's protocol: the "e2h.prm.protocol" key, else (general.architecture qwen2) the head
// tensors: cls + cls.output (2 rows) -> qwen-prm, cls.output (1 row) alone -> value-head. Writes
// it into proto (and general.name, if any, into name) and returns 1; 0 if neither tells.
// Head tensors of a .gguf path are read by prm_st_* under e2h's names (st_read.c).
int prm_gguf_protocol(const char *path, char *proto, size_t cap, char *name, size_t name_cap);
// The "__metadata__" JSON object of a safetensors file as a malloc'd string, or NULL.
char *prm_st_metadata(const char *file, char *err, size_t err_len);

// Sets plus_id / minus_id / pm_rows. minus NULL: plus is a pair "+ -" encoded with BOS whose
// last two ids are the tokens (math-shepherd); else each text encoded alone, last id (rlhflow).
e2h_status prm_plus_minus(struct e2h_prm *p, const char *plus, const char *minus, char *err,
                          size_t err_len);
// Reads a head from the PRM's safetensors (path NULL: the PRM model's directory): w1/b1 may be
// NULL (a linear head); w2 (n_out, H or dim), b2 (n_out).
e2h_status prm_read_mlp_head(struct e2h_prm *p, const char *path, const char *w1, const char *b1,
                             const char *w2, const char *b2, int n_out, char *err, size_t err_len);
// The model's output row of token id as f32 (dim), into out.
void prm_output_row(const e2h_model *m, int32_t id, float *out);

#endif
