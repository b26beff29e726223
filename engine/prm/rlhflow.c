// engine/prm/rlhflow.c — "rlhflow": RLHFlow/Llama3.1-8B-PRM-Mistral-Data / -Deepseek-Data
// (Llama architecture, Llama-3.1 chat template).
//
// Checked against RLHFlow/RLHF-Reward-Modeling math-rm (prm_evaluate.py) and the model card:
// the conversation grows by a user turn per step (the first is problem + " " + step 1, the
// others the step) each answered by an assistant "+"; apply_chat_template(conversation) and
// logits[:, -3, [plus, minus]] (plus = tokenizer.encode("+")[-1], minus = encode("-")[-1]),
// softmax, P(+). Position -3 is the last token of the assistant header ("\n\n"), the one that
// predicts the "+" (the last two are "+" and <|eot_id|>).
// The Llama-3.1 template: "<|begin_of_text|>", a system turn "Cutting Knowledge Date:
// December 2023\nToday Date: 26 Jul 2024\n\n" (always inserted by the 3.1 template), then
// "<|start_header_id|>{role}<|end_header_id|>\n\n{content | trim}<|eot_id|>" per turn.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util.h"
#include "prm_internal.h"

static const char *rlhf_system =
    "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
    "Today Date: 26 Jul 2024\n\n<|eot_id|>";

static e2h_status rlhf_layout(const struct e2h_prm *p, prm_build *b, const char *problem,
                              const prm_steps *st, int is_final) {
    (void)is_final;
    prm_str t = {0};
    int n = st->n;
    size_t *rd = malloc(3 * (size_t)(n ? n : 1) * sizeof *rd), *s0 = rd + n, *s1 = rd + 2 * n;
    if (!rd) return E2H_ERR_NOMEM;
    ps_adds(&t, "<|begin_of_text|>");
    if (p->variant != 1) ps_adds(&t, rlhf_system); // variant 1: a template without it
    for (int k = 0; k < n; k++) {
        ps_adds(&t, "<|start_header_id|>user<|end_header_id|>\n\n");
        // the template trims the content; the first content is problem + " " + step 1
        prm_str c = {0};
        if (k == 0) {
            ps_adds(&c, problem);
            ps_adds(&c, " ");
        }
        size_t step_at = c.n;
        ps_add(&c, st->text[k], st->len[k]);
        if (c.oom) { ps_free(&t); free(rd); return E2H_ERR_NOMEM; }
        const char *s = c.s;
        size_t len = c.n;
        prm_trim(&s, &len);
        size_t lead = (size_t)(s - c.s);
        s0[k] = t.n + (step_at > lead ? step_at - lead : 0);
        ps_add(&t, s, len);
        s1[k] = t.n;
        if (s0[k] > s1[k]) s0[k] = s1[k];
        ps_free(&c);
        ps_adds(&t, "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
        rd[k] = t.n - 1; // the last byte of the header's "\n\n"
        ps_adds(&t, "+<|eot_id|>");
    }
    e2h_status s = t.oom ? E2H_ERR_NOMEM : pb_text_steps(b, t.s, t.n, 0, rd, s0, s1);
    ps_free(&t);
    free(rd);
    return s;
}


static e2h_status rlhf_prepare(struct e2h_prm *p, char *err, size_t err_len) {
    if (pb_single_token(p->tok, "<|begin_of_text|>") < 0 || pb_single_token(p->tok, "<|eot_id|>") < 0) {
        fmt_errf(err, err_len, "rlhflow: the tokenizer lacks the Llama-3 special tokens "
                 "<|begin_of_text|> / <|eot_id|>");
        return E2H_ERR_TOKENIZER;
    }
    return prm_plus_minus(p, "+", "-", err, err_len);
}

const prm_protocol prm_proto_rlhflow = {
    "rlhflow", "\n\n", NULL, PRM_READ_PLUS_MINUS, 1, rlhf_layout, rlhf_prepare,
};
