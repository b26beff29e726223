// tests/test_serve_api.c — `e2h serve`'s request-body parsers (engine/cli/serve_api.c,
// serve_prm.c) without a model or a socket: the text ops are tests/serve_text_stub.h. What an
// accepted body turns into, and that a bad one is a 400 naming its field; regressions of what
// tests/fuzz/fuzz_serve_api.c found (see tests/fuzz/README.md). The HTTP side and generation
// are tested with a real model in tests/py/test_serve.py.
#include <pthread.h>

#include "harness.h"
#include "serve_text_stub.h"

static srv g_s;

static void srv_setup(void) {
    memset(&g_s, 0, sizeof g_s);
    pthread_mutex_init(&g_s.mu, NULL);
    g_s.lim = (srv_limits){.max_body = 1 << 20, .max_n = 64, .max_tokens = 1024, .max_prompt = 2047,
                           .max_queue = 256, .max_conns = 256, .timeout_s = 60, .chunk = 8};
    g_s.txt = stub_text();
    g_s.blocks_total = 1024;
    g_s.block_size = 16;
    g_s.max_ctx = 2048;
    g_s.vocab = STUB_VOCAB;
}

// Parses body for kind; on a refusal *status / *msg / *param (static copies) describe it.
static int g_status;
static char g_msg[512], g_param[64];
static srv_req *parse(srv_kind kind, const char *body) {
    char *err = NULL;
    g_status = 0;
    g_msg[0] = g_param[0] = 0;
    srv_req *r = srv_parse_request(&g_s, kind, body, strlen(body), &g_status, &err);
    if (!r && err) {
        cJSON *j = cJSON_Parse(err);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "param");
        snprintf(g_msg, sizeof g_msg, "%s", cJSON_IsString(m) ? m->valuestring : "");
        snprintf(g_param, sizeof g_param, "%s", cJSON_IsString(p) ? p->valuestring : "");
        cJSON_Delete(j);
    }
    free(err);
    return r;
}

static int live(void) {
    pthread_mutex_lock(&g_s.mu);
    int n = g_s.n_live;
    pthread_mutex_unlock(&g_s.mu);
    return n;
}

// A refusal: NULL, status 400, param (NULL: none) and a message containing want.
static int refused(srv_kind kind, const char *body, const char *param, const char *want) {
    srv_req *r = parse(kind, body);
    if (r) {
        printf("  accepted: %s\n", body);
        srv_req_unref(&g_s, r);
        return 0;
    }
    int ok = g_status == 400 && !strcmp(g_param, param ? param : "") && strstr(g_msg, want);
    if (!ok) printf("  %s -> %d param '%s' message '%s'\n", body, g_status, g_param, g_msg);
    return ok;
}

TEST(completion_fields) {
    srv_req *r = parse(SRV_COMPLETION,
                       "{\"model\": \"x\", \"prompt\": \"ab\", \"max_tokens\": 8, \"n\": 2, \"best_of\": 2, "
                       "\"temperature\": 0.5, \"top_p\": 0, \"top_k\": -1, \"seed\": 9007199254740992, "
                       "\"stop\": [\"\\n\\n\", \"END\"], \"logprobs\": 3, \"stream\": true}");
    CHECK(r != NULL);
    if (!r) return;
    CHECK(r->n == 2 && r->max_tokens == 8 && r->stream == 1);
    CHECK(r->sp.temperature == 0.5f && r->sp.top_p == 1.0f && r->sp.top_k == 0);
    CHECK(r->sp.seed == 9007199254740992ull);
    CHECK(r->n_stops == 2 && !strcmp(r->stops[0], "\n\n") && !strcmp(r->stops[1], "END") && r->stop_max == 3);
    CHECK(r->logprobs == 1 && r->top_logprobs == 3);
    CHECK(r->n_ids == 3 && r->ids[0] == 1 && r->ids[1] == 3 + 'a' && r->ids[2] == 3 + 'b');
    CHECK(r->need == srv_request_need(&g_s, r) && r->need == 1 + 2 * 2);
    srv_req_unref(&g_s, r);
    CHECK(live() == 0);
}

TEST(chat_fields) {
    srv_req *r = parse(SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\", "
                                 "\"text\": \"a\"}, {\"type\": \"text\", \"text\": \"b\"}]}], "
                                 "\"logprobs\": true, \"top_logprobs\": 2}");
    CHECK(r != NULL);
    if (!r) return;
    const char *want = "<|im_start|>system\nYou are a stand-in.<|im_end|>\n<|im_start|>user\nab<|im_end|>\n"
                       "<|im_start|>assistant\n";
    CHECK(r->n_ids == (int32_t)strlen(want)); // no BOS: the template's text only
    int same = r->n_ids == (int32_t)strlen(want);
    for (int32_t i = 0; same && i < r->n_ids; i++) same = r->ids[i] == 3 + (unsigned char)want[i];
    CHECK(same);
    CHECK(r->logprobs == 1 && r->top_logprobs == 2 && r->max_tokens == g_s.lim.max_tokens);
    srv_req_unref(&g_s, r);
    CHECK(live() == 0);
}

// Found with fuzz_serve_api's stand-in tokenizer (3 tokens for a byte >= 0xF0): a text with
// more tokens than bytes + 8 was refused as "'prompt' could not be tokenized (ok)"
// (tokenize_text sized its buffer once at len + 8; parse_search the same). e2h's own
// tokenizers give at most one token a byte, but e2h_tokenize's contract is "call again with a
// larger buffer": srv_tokenize_all does.
TEST(more_tokens_than_bytes) {
    // 12 four-byte characters: 48 bytes, 1 + 12 * (3 + 3) = 73 tokens > 48 + 8
    char body[512] = "{\"prompt\": \"";
    for (int i = 0; i < 12; i++) strcat(body, "\xF0\x9F\x98\x80");
    strcat(body, "\"}");
    srv_req *r = parse(SRV_COMPLETION, body);
    CHECKF(r != NULL, "refused: %s", g_msg);
    CHECK(r && r->n_ids == 73);
    if (r) srv_req_unref(&g_s, r);
    g_s.have_prm = 0;
    char sbody[512] = "{\"method\": \"greedy\", \"problem\": \"";
    for (int i = 0; i < 40; i++) strcat(sbody, "\xF0\x9F\x98\x80");
    strcat(sbody, "\"}");
    r = parse(SRV_SEARCH, sbody);
    CHECKF(r != NULL, "refused: %s", g_msg);
    CHECK(r && r->n_ids > 160 + 8 && r->payload);
    if (r) srv_req_unref(&g_s, r);
    CHECK(live() == 0);
}

TEST(bad_bodies_are_400_naming_the_field) {
    CHECK(refused(SRV_COMPLETION, "{\"prompt\": ", NULL, "malformed JSON"));
    CHECK(refused(SRV_COMPLETION, "[1, 2]", NULL, "must be a JSON object"));
    CHECK(refused(SRV_COMPLETION, "{}", "prompt", "'prompt' is required"));
    CHECK(refused(SRV_COMPLETION, "{\"prompt\": \"a\", \"max_tokens\": 1e300}", "max_tokens", "must be in"));
    CHECK(refused(SRV_COMPLETION, "{\"prompt\": \"a\", \"max_tokens\": 2.5}", "max_tokens", "integer"));
    CHECK(refused(SRV_COMPLETION, "{\"prompt\": \"a\", \"n\": -1}", "n", "must be in"));
    CHECK(refused(SRV_COMPLETION, "{\"prompt\": \"a\", \"seed\": 1e19}", "seed", "must be in"));
    CHECK(refused(SRV_COMPLETION, "{\"prompt\": \"a\", \"temperature\": \"hot\"}", "temperature", "number"));
    CHECK(refused(SRV_COMPLETION, "{\"prompt\": \"a\", \"stop\": [\"\"]}", "stop", "1 to 256 bytes"));
    CHECK(refused(SRV_COMPLETION, "{\"prompt\": \"a\", \"stop\": [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]}",
                  "stop", "more than 8"));
    CHECK(refused(SRV_COMPLETION, "{\"prompt\": \"a\", \"best_of\": 3}", "best_of", "not supported"));
    CHECK(refused(SRV_COMPLETION, "{\"prompt\": \"a\", \"logit_bias\": {\"1\": 5}}", "logit_bias", "not supported"));
    CHECK(refused(SRV_COMPLETION, "{\"prompt\": \"a\", \"n\": 64, \"max_tokens\": 1024}", "max_tokens", "KV blocks"));
    CHECK(refused(SRV_CHAT, "{\"messages\": []}", "messages", "non-empty list"));
    CHECK(refused(SRV_CHAT, "{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}", "messages", "role"));
    CHECK(refused(SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": [1]}]}", "messages", "text"));
    CHECK(refused(SRV_CHAT, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"top_logprobs\": 2}",
                  "top_logprobs", "needs 'logprobs'"));
    g_s.have_prm = 0;
    CHECK(refused(SRV_PRM, "{\"problem\": \"p\", \"steps\": [\"s\"]}", NULL, "no PRM is loaded"));
    CHECK(refused(SRV_SEARCH, "{\"problem\": \"p\", \"method\": \"bon\"}", "method", "needs a PRM"));
    g_s.have_prm = 1;
    CHECK(refused(SRV_PRM, "{\"problem\": \"p\", \"steps\": [\" \\n\"]}", "steps", "is empty"));
    CHECK(refused(SRV_PRM, "{\"items\": []}", "items", "1 to 256"));
    CHECK(refused(SRV_SEARCH, "{\"problem\": \"p\", \"method\": \"beam\", \"n\": 6, \"m\": 4}", NULL, "must divide"));
    CHECK(refused(SRV_REWARD, "{\"query\": [\"a\", \"b\"], \"prompts\": [\"a\"]}", "prompts", "as long as"));
    CHECK(live() == 0);
}

TEST(prm_search_reward_accepted) {
    g_s.have_prm = 1;
    srv_req *r = parse(SRV_PRM, "{\"items\": [{\"problem\": \"p\", \"steps\": [\"a\", \"b\"]}, "
                                "{\"problem\": \"q\", \"solution\": \"c\\n\\nd\"}]}");
    CHECK(r && r->payload && r->need >= 8);
    if (r) srv_req_unref(&g_s, r);
    r = parse(SRV_SEARCH, "{\"problem\": \"2+2?\", \"method\": \"beam\", \"n\": 8, \"m\": 4, \"seed\": 5}");
    CHECK(r && r->payload && r->n == 8 && r->sp.seed == 5 && r->n_ids > 4);
    if (r) srv_req_unref(&g_s, r);
    r = parse(SRV_REWARD, "{\"query\": [\"a\", \"b\"], \"prompts\": [\"x\", null], \"labels\": [1]}");
    CHECK(r == NULL); // prompts[1] must be a string
    r = parse(SRV_REWARD, "{\"query\": [\"a\", \"b\"], \"labels\": [1]}");
    CHECK(r && r->payload && r->need >= 8);
    if (r) srv_req_unref(&g_s, r);
    g_s.have_prm = 0;
    CHECK(live() == 0);
}

int main(void) {
    srv_setup();
    RUN(completion_fields);
    RUN(chat_fields);
    RUN(more_tokens_than_bytes);
    RUN(bad_bodies_are_400_naming_the_field);
    RUN(prm_search_reward_accepted);
    pthread_mutex_destroy(&g_s.mu);
    return TEST_SUMMARY();
}
