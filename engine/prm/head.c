// engine/prm/head.c — "head": e2h's shared-backbone PRM, a small head (PLAN.md §4: linear or
// 2-layer MLP in a safetensors file whose metadata names the layer, pooling and step
// delimiter) on the POLICY's final-normed hidden state at the last token of each step (the
// token that completes its "\n\n") [+ the step's mean token log-prob] [+ the residual stream
// after feature_layer blocks at that token, which the policy engine keeps: e2h_prm_feature_layer],
// in tools/train_head.py's column order (prm.c prm_head_inputs). Scoring policy samples costs no
// PRM forward pass.
//
// Text layout (for e2h_prm_score_texts; as the policy samples): the policy's chat prompt
// (ChatML: its default system turn, user = problem, then "<|im_start|>assistant\n"; the
// problem text alone for a model without a chat template), then each step + "\n\n" tokenized
// on its own, as a policy produces a step at a time. The read is the last token of each.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prm_internal.h"

e2h_status prm_head_prompt(const e2h_model *policy, const char *problem, prm_str *out);

static e2h_status head_layout(const struct e2h_prm *p, prm_build *b, const char *problem,
                              const prm_steps *st, int is_final) {
    (void)is_final;
    prm_str t = {0};
    e2h_status s = prm_head_prompt(p->policy, problem, &t);
    if (!s) s = t.oom ? E2H_ERR_NOMEM : pb_text(b, t.s, t.n, 0, NULL, 0, NULL);
    ps_free(&t);
    for (int k = 0; !s && k < st->n; k++) {
        prm_str c = {0};
        ps_add(&c, st->text[k], st->len[k]);
        ps_adds(&c, "\n\n");
        b->span0[k] = b->n;
        s = c.oom ? E2H_ERR_NOMEM : pb_text(b, c.s, c.n, 0, NULL, 0, NULL);
        b->span1[k] = b->n;
        b->read[k] = b->n - 1;
        ps_free(&c);
    }
    return s;
}

const prm_protocol prm_proto_head = {
    "head", "\n\n", NULL, PRM_READ_HEAD, 0, head_layout, NULL,
};
