// engine/prm/value_head.c — "value-head": Skywork/Skywork-o1-Open-PRM-Qwen-2.5-1.5B / -7B
// (Qwen2ForPrmModel: a Qwen2 backbone and a linear value head).
//
// Checked against SkyworkAI/skywork-o1-prm-inference (model_utils/io_utils.py prepare_input,
// prm_model.py): prompt_ids = tokenizer.encode(bos_token + problem + "\n"); each step is
// encoded on its own, followed by the step token id (tokenizer.encode("\n")[-1]); the reward
// flag is on that step token. The head is ValueHead.summary = Linear(hidden, 1) on the final
// hidden state; return_probs applies a sigmoid. Tensors: model.*, v_head.summary.weight
// (1, dim), v_head.summary.bias (1).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util.h"
#include "prm_internal.h"

static e2h_status value_layout(const struct e2h_prm *p, prm_build *b, const char *problem,
                               const prm_steps *st, int is_final) {
    (void)is_final;
    prm_str t = {0};
    int32_t bos = e2h_tokenizer_bos(p->tok);
    size_t bl = 0;
    const char *bt = bos >= 0 ? e2h_tokenizer_piece(p->tok, bos, &bl) : NULL;
    if (bt) ps_add(&t, bt, bl);
    ps_adds(&t, problem);
    ps_adds(&t, "\n");
    e2h_status s = t.oom ? E2H_ERR_NOMEM : pb_text(b, t.s, t.n, 0, NULL, 0, NULL);
    ps_free(&t);
    for (int k = 0; !s && k < st->n; k++) {
        b->span0[k] = b->n;
        if (st->len[k]) s = pb_text(b, st->text[k], st->len[k], 0, NULL, 0, NULL);
        b->span1[k] = b->n;
        if (!s) s = pb_token(b, p->tag_id);
        b->read[k] = b->n - 1;
    }
    return s;
}

static e2h_status value_prepare(struct e2h_prm *p, char *err, size_t err_len) {
    int32_t ids[8], n = 0;
    if (e2h_tokenize(p->tok, "\n", 1, 0, ids, 8, &n) || n < 1) {
        fmt_errf(err, err_len, "value-head: cannot tokenize the step token \"\\n\"");
        return E2H_ERR_TOKENIZER;
    }
    p->tag_id = ids[n - 1];
    return prm_read_mlp_head(p, NULL, NULL, NULL, "v_head.summary.weight", "v_head.summary.bias",
                             1, err, err_len);
}

const prm_protocol prm_proto_value_head = {
    "value-head", "\n\n", NULL, PRM_READ_VALUE, 1, value_layout, value_prepare,
};
