// engine/prm/e2h_paper.c — "e2h-paper": the easy-to-hard paper's reward models (Llemma-7b
// PRM / ORM / OPRM trained on PRM800K levels 1-3; Llama architecture).
//
// Checked against Edward-Sun/easy-to-hard (inference_reward.py, models/reward_model.py):
// - text: prompt "# Question\n\n{problem}\n\n# Solution\n\n" + output, steps joined by "\n\n",
//   the final answer as "# Answer\n\n{answer}"; encoded with BOS (and EOS after the answer).
// - RewardModel.forward returns backbone(idx).mean(dim=-1): the reward head is tiled over the
//   vocabulary in the converted checkpoint, so the reward is the mean of the logits row.
//   We compute it as (mean of the output rows) . h, and the step score is its sigmoid.
// - post_process_newline_scores reads each step at the first "\n" of the "\n\n" after it
//   (scores[pos - 2], where tokens pos-2 and pos-1 are both "\n"). With
//   process_reward_with_answer (OPRM) the last step before "# Answer" is not read at its
//   newline; the answer is read at the token before EOS (scores[pos - 4], pos - 3 == EOS).
// e2h's steps: a step that starts with "# Answer" is the answer step ("# Answer\n\n{answer}").
// PRM: every step at the first "\n" after it, a final step at its last token. OPRM: the same,
// the final step always at its last token (the token before EOS). ORM: only the final step,
// read at the EOS appended after it (RewardModel's eos_pos).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prm_internal.h"

static int is_answer(const char *s, size_t n) {
    return n >= 8 && !strncmp(s, "# Answer", 8);
}

static e2h_status paper_layout(const struct e2h_prm *p, prm_build *b, const char *problem,
                               const prm_steps *st, int is_final) {
    prm_str t = {0};
    int n = st->n;
    size_t *rd = malloc(3 * (size_t)(n ? n : 1) * sizeof *rd), *s0 = rd + n, *s1 = rd + 2 * n;
    if (!rd) return E2H_ERR_NOMEM;
    ps_adds(&t, "# Question\n\n");
    ps_adds(&t, problem);
    ps_adds(&t, "\n\n# Solution\n\n");
    for (int k = 0; k < n; k++) {
        s0[k] = t.n;
        ps_add(&t, st->text[k], st->len[k]);
        s1[k] = t.n;
        int last = k == n - 1;
        if (!(last && is_final)) ps_adds(&t, "\n\n"); // more steps follow
        size_t at_newline = s1[k], at_last = s1[k] ? s1[k] - 1 : 0;
        int answer = is_answer(st->text[k], st->len[k]);
        if (p->variant == 1) // ORM
            rd[k] = last && is_final ? at_last : (size_t)-1;
        else if (last && is_final && (answer || p->variant == 2))
            rd[k] = at_last;
        else
            rd[k] = last && is_final ? at_last : at_newline;
    }
    e2h_status s = t.oom ? E2H_ERR_NOMEM : pb_text_steps(b, t.s, t.n, 1, rd, s0, s1);
    // ORM: the reward of the whole solution is read at the EOS that ends it
    if (!s && p->variant == 1 && is_final && n > 0) {
        int32_t eos = e2h_tokenizer_eos(p->tok);
        s = pb_token(b, eos);
        if (!s) b->read[n - 1] = b->n - 1;
    }
    ps_free(&t);
    free(rd);
    return s;
}

// Mean of the output rows (the tiled reward head); row by row so a quantized head works too.
static e2h_status paper_prepare(struct e2h_prm *p, char *err, size_t err_len) {
    (void)err;
    (void)err_len;
    e2h_model_info mi;
    e2h_model_get_info(p->model, &mi);
    double *acc = calloc((size_t)mi.dim, sizeof *acc);
    float *row = malloc((size_t)mi.dim * sizeof *row);
    p->mean_row = malloc((size_t)mi.dim * sizeof *p->mean_row);
    if (!acc || !row || !p->mean_row) {
        free(acc);
        free(row);
        return E2H_ERR_NOMEM;
    }
    for (int v = 0; v < mi.vocab_size; v++) {
        prm_output_row(p->model, v, row);
        for (int i = 0; i < mi.dim; i++) acc[i] += row[i];
    }
    for (int i = 0; i < mi.dim; i++) p->mean_row[i] = (float)(acc[i] / mi.vocab_size);
    free(acc);
    free(row);
    return E2H_OK;
}

const prm_protocol prm_proto_e2h_paper = {
    "e2h-paper", "\n\n", NULL, PRM_READ_MEAN_SIGMOID, 1, paper_layout, paper_prepare,
};
