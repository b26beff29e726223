// engine/prm/implicit.c — "implicit": implicit PRMs (PRIME / PRIME-RL/EurusPRM-Stage1/2):
// step reward = beta * sum over the step's tokens of (log pi(token) - log pi_ref(token)), pi
// the PRM (a causal LM) and pi_ref its reference model, both teacher-forced over one text.
//
// Checked against the EurusPRM model card: the conversation is user = problem, assistant =
// "\n\n".join(steps) through the model's chat template (Qwen2.5-Math ChatML, whose default
// system turn is "Please reason step by step, and put your final answer within \boxed{}.");
// step k owns its tokens through the "\n\n" after it (the last step through <|im_end|>), as
// the card's step_last_tokens do; coef (beta) = 0.001.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prm_internal.h"

static e2h_status implicit_layout(const struct e2h_prm *p, prm_build *b, const char *problem,
                                  const prm_steps *st, int is_final) {
    (void)p;
    prm_str t = {0};
    int n = st->n;
    size_t *rd = malloc(3 * (size_t)(n ? n : 1) * sizeof *rd), *s0 = rd + n, *s1 = rd + 2 * n;
    if (!rd) return E2H_ERR_NOMEM;
    ps_adds(&t, "<|im_start|>system\nPlease reason step by step, and put your final answer "
                "within \\boxed{}.<|im_end|>\n<|im_start|>user\n");
    ps_adds(&t, problem);
    ps_adds(&t, "<|im_end|>\n<|im_start|>assistant\n");
    for (int k = 0; k < n; k++) {
        s0[k] = t.n;
        ps_add(&t, st->text[k], st->len[k]);
        ps_adds(&t, k == n - 1 && is_final ? "<|im_end|>" : "\n\n");
        s1[k] = t.n;
        rd[k] = (size_t)-1; // no hidden-state read: the sum runs over the span
    }
    e2h_status s = t.oom ? E2H_ERR_NOMEM : pb_text_steps(b, t.s, t.n, 0, rd, s0, s1);
    ps_free(&t);
    free(rd);
    return s;
}

static e2h_status implicit_prepare(struct e2h_prm *p, char *err, size_t err_len) {
    (void)p;
    (void)err;
    (void)err_len;
    return E2H_OK;
}

const prm_protocol prm_proto_implicit = {
    "implicit", "\n\n", NULL, PRM_READ_IMPLICIT, 1, implicit_layout, implicit_prepare,
};
