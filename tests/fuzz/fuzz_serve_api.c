// tests/fuzz/fuzz_serve_api.c — `e2h serve`'s request-body parsers (engine/cli/serve_api.c,
// the PRM / search / reward validators of engine/cli/serve_prm.c) on arbitrary bytes, without
// a model, a socket or any I/O. Byte 0 picks the endpoint (mod 5: /v1/completions,
// /v1/chat/completions, /v1/prm/score, /v1/search, /v1/reward) and, with (byte 0 / 5) % 2,
// whether a PRM is loaded; the rest is the HTTP body, copied to an exact-size buffer (not
// NUL-terminated) so ASan sees any over-read.
//
// The model is replaced by tests/serve_text_stub.h (a byte tokenizer that can give more tokens
// than bytes + 8, a ChatML renderer). Every accepted request is checked against what the scheduler
// relies on; every refusal must be a 400 (or 500) with an OpenAI error body naming why; every
// request is freed (LeakSanitizer) and the live count returns to 0.
#include <cjson/cJSON.h>
#include <math.h>

#include "../../engine/cli/serve.h"
#include "../serve_text_stub.h"
#include "fuzz_util.h"

static srv g_srv;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    srv *s = &g_srv;
    pthread_mutex_init(&s->mu, NULL);
    // the defaults of `e2h serve` (serve.c) on a 2048-token model, 1024 blocks of 16
    s->lim = (srv_limits){.max_body = 1 << 20, .max_n = 64, .max_tokens = 1024, .max_prompt = 2047,
                          .max_queue = 256, .max_conns = 256, .timeout_s = 60, .chunk = 8};
    s->txt = stub_text();
    s->blocks_total = 1024;
    s->block_size = 16;
    s->max_ctx = 2048;
    s->vocab = STUB_VOCAB;
    return 0;
}

// What the handler and the scheduler rely on in an accepted request.
static void check_accepted(const srv *s, const srv_req *r) {
    if (r->refs != 1 || !r->id[0]) abort();
    if (r->kind == SRV_COMPLETION || r->kind == SRV_CHAT) {
        if (r->n < 1 || r->n > s->lim.max_n || r->max_tokens < 1 || r->max_tokens > s->lim.max_tokens) abort();
        if (!r->ids || r->n_ids < 1 || r->n_ids > s->lim.max_prompt || r->n_ids >= s->max_ctx) abort();
        for (int32_t i = 0; i < r->n_ids; i++)
            if (r->ids[i] < 0 || r->ids[i] >= s->vocab) abort();
        if (r->need < 1 || r->need > s->blocks_total || r->need != srv_request_need(s, r)) abort();
        if (r->n_stops < 0 || r->n_stops > SRV_MAX_STOPS) abort();
        size_t mx = 0;
        for (int i = 0; i < r->n_stops; i++) {
            size_t l = r->stops[i] ? strlen(r->stops[i]) : 0;
            if (l < 1 || l > 256) abort();
            if (l > mx) mx = l;
        }
        if (mx != r->stop_max) abort();
        if (r->top_logprobs < 0 || r->top_logprobs > SRV_MAX_TOP || (r->top_logprobs && !r->logprobs)) abort();
        const e2h_sampling *sp = &r->sp;
        if (!(sp->temperature >= 0 && sp->temperature <= 2) || !(sp->top_p > 0 && sp->top_p <= 1) ||
            sp->top_k < 0 || !(sp->min_p >= 0 && sp->min_p <= 1))
            abort();
        if (r->payload) abort();
    } else if (r->kind == SRV_SEARCH) {
        if (!r->payload || !r->ids || r->n_ids < 1 || r->n_ids > s->lim.max_prompt) abort();
        if (r->n < 1 || r->n > s->lim.max_n || r->max_tokens < 1 || r->max_tokens > s->lim.max_tokens) abort();
        for (int32_t i = 0; i < r->n_ids; i++)
            if (r->ids[i] < 0 || r->ids[i] >= s->vocab) abort();
    } else {
        if (!s->have_prm || !r->payload || r->need < 0) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const srv_kind kinds[5] = {SRV_COMPLETION, SRV_CHAT, SRV_PRM, SRV_SEARCH, SRV_REWARD};
    srv *s = &g_srv;
    srv_kind kind = kinds[data[0] % 5];
    s->have_prm = (data[0] / 5) % 2;
    size_t n = size - 1;
    char *body = malloc(n ? n : 1);
    if (!body) return 0;
    memcpy(body, data + 1, n);
    int status = 0;
    char *err = NULL;
    srv_req *r = srv_parse_request(s, kind, body, n, &status, &err);
    if (r) {
        if (err) abort();
        check_accepted(s, r);
        srv_req_unref(s, r);
    } else {
        // a refusal is a 400 (client) or 500 (out of memory) with {"error": {"message", ...}}
        if (!err || (status != 400 && status != 500)) abort();
        cJSON *j = cJSON_Parse(err);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
        if (!cJSON_IsString(m) || !m->valuestring[0]) abort();
        // the stand-in tokenizes every text: "could not be tokenized" would be the parser's bug
        if (strstr(m->valuestring, "could not be tokenized")) abort();
        cJSON_Delete(j);
        free(err);
    }
    free(body);
    pthread_mutex_lock(&s->mu);
    int live = s->n_live;
    pthread_mutex_unlock(&s->mu);
    if (live != 0) abort();
    return 0;
}
