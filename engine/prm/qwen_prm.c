// engine/prm/qwen_prm.c — "qwen-prm": Qwen/Qwen2.5-Math-PRM-7B / -72B
// (Qwen2ForProcessRewardModel).
//
// Checked against the model card and its modeling_qwen2_rm.py: messages = system "Please reason
// step by step, and put your final answer within \boxed{}.", user = the query, assistant =
// "<extra_0>".join(steps) + "<extra_0>"; apply_chat_template(tokenize=False) then
// tokenizer.encode (Qwen2 adds no BOS). Head: score = Sequential(Linear(hidden, hidden), ReLU,
// Linear(hidden, num_labels=2)) on the final (normed) hidden state; make_step_rewards takes
// softmax(logits)[..., 1] at every "<extra_0>" position.
// Tensors: model.* (Qwen2 backbone, no lm_head), score.0.weight (H, dim), score.0.bias (H),
// score.2.weight (2, H), score.2.bias (2).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util.h"
#include "prm_internal.h"

#define QWEN_PRM_SYSTEM "Please reason step by step, and put your final answer within \\boxed{}."

static e2h_status qwen_layout(const struct e2h_prm *p, prm_build *b, const char *problem,
                              const prm_steps *st, int is_final) {
    (void)p;
    (void)is_final;
    prm_str t = {0};
    int n = st->n;
    size_t *rd = malloc(3 * (size_t)(n ? n : 1) * sizeof *rd), *s0 = rd + n, *s1 = rd + 2 * n;
    if (!rd) return E2H_ERR_NOMEM;
    ps_adds(&t, "<|im_start|>system\n" QWEN_PRM_SYSTEM "<|im_end|>\n<|im_start|>user\n");
    ps_adds(&t, problem);
    ps_adds(&t, "<|im_end|>\n<|im_start|>assistant\n");
    for (int k = 0; k < n; k++) {
        s0[k] = t.n;
        ps_add(&t, st->text[k], st->len[k]);
        s1[k] = t.n;
        rd[k] = t.n;
        ps_adds(&t, "<extra_0>");
    }
    ps_adds(&t, "<|im_end|>\n");
    e2h_status s = t.oom ? E2H_ERR_NOMEM : pb_text_steps(b, t.s, t.n, 0, rd, s0, s1);
    ps_free(&t);
    free(rd);
    return s;
}


static e2h_status qwen_prepare(struct e2h_prm *p, char *err, size_t err_len) {
    e2h_status st = prm_read_mlp_head(p, NULL, "score.0.weight", "score.0.bias", "score.2.weight",
                                      "score.2.bias", 2, err, err_len);
    if (!st && pb_single_token(p->tok, "<extra_0>") < 0) {
        fmt_errf(err, err_len, "qwen-prm: the tokenizer has no single token \"<extra_0>\"");
        return E2H_ERR_TOKENIZER;
    }
    return st;
}

const prm_protocol prm_proto_qwen_prm = {
    "qwen-prm", "\n\n", "<extra_0>", PRM_READ_CLS2, 1, qwen_layout, qwen_prepare,
};
