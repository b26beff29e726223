// engine/prm/math_shepherd.c — "math-shepherd": peiyi9979/math-shepherd-mistral-7b-prm
// (Mistral architecture).
//
// Checked against the model card's example: input = f"{question} {output}" where each step of
// output ends with the tag " ки" and steps are joined by "\n" ("Step 1: ... ки\nStep 2: ...
// ки"); tokenizer.encode adds BOS. good/bad tokens: candidate_tokens =
// tokenizer.encode("+ -")[1:] ("▁+", "▁-"); step_tag_id = tokenizer.encode("ки")[-1]. Score =
// softmax(logits[..., candidate_tokens])[..., 0] at every position whose id is step_tag_id.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prm_internal.h"

static e2h_status shepherd_layout(const struct e2h_prm *p, prm_build *b, const char *problem,
                                  const prm_steps *st, int is_final) {
    (void)p;
    (void)is_final;
    prm_str t = {0};
    int n = st->n;
    size_t *rd = malloc(3 * (size_t)(n ? n : 1) * sizeof *rd), *s0 = rd + n, *s1 = rd + 2 * n;
    if (!rd) return E2H_ERR_NOMEM;
    ps_adds(&t, problem);
    ps_adds(&t, " ");
    for (int k = 0; k < n; k++) {
        if (k) ps_adds(&t, "\n");
        s0[k] = t.n;
        ps_add(&t, st->text[k], st->len[k]);
        s1[k] = t.n;
        ps_adds(&t, " ");
        rd[k] = t.n - 1; // the space before the tag: SentencePiece's "▁ки" holds both
        ps_adds(&t, "ки");
    }
    e2h_status s = t.oom ? E2H_ERR_NOMEM : pb_text_steps(b, t.s, t.n, 1, rd, s0, s1);
    // the read is the tag token itself (its id is step_tag_id in the reference)
    for (int k = 0; !s && k < n; k++)
        if (b->read[k] >= 0 && b->read[k] < b->n && b->ids[b->read[k]] != p->tag_id &&
            b->read[k] + 1 < b->n && b->ids[b->read[k] + 1] == p->tag_id)
            b->read[k]++;
    ps_free(&t);
    free(rd);
    return s;
}


static e2h_status shepherd_prepare(struct e2h_prm *p, char *err, size_t err_len) {
    e2h_status st = prm_plus_minus(p, "+ -", NULL, err, err_len);
    if (st) return st;
    int32_t ids[8], n = 0;
    if (e2h_tokenize(p->tok, "ки", strlen("ки"), 1, ids, 8, &n) || n < 1) return E2H_ERR_TOKENIZER;
    p->tag_id = ids[n - 1];
    return E2H_OK;
}

const prm_protocol prm_proto_math_shepherd = {
    "math-shepherd", "\n\n", "ки", PRM_READ_PLUS_MINUS, 1, shepherd_layout, shepherd_prepare,
};
