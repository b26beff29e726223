// tests/test_embed.c — what an embedding program relies on: zero-filled options mean the
// defaults (e2h_*_default()), engines over one model on two threads give the same results as
// run one after the other, two engines share one thread pool, stop strings (checked on the
// streamed tail) stop exactly where the full decoded text first contains them, and
// e2h_model_apply_chat writes the ChatML layout.
//
// The stop-string and chat tests need a model with a tokenizer: the default model
// (weights/SmolLM2-135M-Instruct.Q4_1.gguf, `make model`); they print "skipped" without it.
// References: for stop strings, e2h_detokenize of the growing continuation (the semantics:
// stop at the first token after which the decoded continuation contains a stop string); for
// threads and pools, the same calls run sequentially on a standalone engine.
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "../include/e2h.h"
#include "harness.h"

#define FIX_MODEL "tests/fixtures/models/llama2_f32"
#define SMOL "weights/SmolLM2-135M-Instruct.Q4_1.gguf"

static e2h_model *t_model; // the random-weight fixture (no tokenizer)
static e2h_model *t_smol;  // the default model, or NULL when absent
static int32_t t_vocab;

static e2h_engine *make_engine(const e2h_model *m, int n_threads, const e2h_engine *share) {
    e2h_engine_opts o = e2h_engine_opts_default();
    o.n_threads = n_threads;
    o.kv_mem_gib = 0.05;
    o.share_pool_with = share;
    return th_engine(m, &o);
}

// Field by field: a struct returned by value need not carry its padding bytes (clang's ASan
// build left stack bytes in e2h_load_opts' 4 padding bytes), so memcmp with a zeroed one is
// not a test of the defaults.
TEST(zero_filled_options_are_the_defaults) {
    e2h_engine_opts eo = e2h_engine_opts_default();
    CHECK(eo.n_threads == 0 && eo.kv_mem_gib == 0 && eo.kv_f16 == 0 && eo.block_size == 0 &&
          eo.max_batch_tokens == 0 && eo.kernels == NULL && eo.share_pool_with == NULL &&
          eo.feature_layer == 0);
    const e2h_load_opts lo = e2h_load_opts_default();
    CHECK(lo.quant == NULL && lo.no_repack == 0);
    const e2h_stop st = e2h_stop_default();
    CHECK(st.max_tokens == 0 && st.stop_strings == NULL && st.n_stop_strings == 0 &&
          st.ignore_eos == 0 && st.resume == 0);
    e2h_sampling sp = e2h_sampling_default();
    CHECK(sp.temperature == 0 && sp.top_k == 0 && (sp.top_p == 1 || sp.top_p == 0) && sp.min_p == 0);
    // A zero-filled sampling struct decodes greedily, exactly as the default one does.
    e2h_engine *e = make_engine(t_model, 1, NULL);
    CHECK(e != NULL);
    if (!e) return;
    int32_t p[8] = {1, 5, 9, 13, 17, 21, 25, 29};
    e2h_sampling zs;
    memset(&zs, 0, sizeof zs);
    e2h_seq *a = NULL, *b = NULL;
    e2h_stop stop = {20, NULL, 0, 1, 0};
    CHECK(e2h_seq_create(e, p, 8, &sp, &a) == E2H_OK && e2h_seq_create(e, p, 8, &zs, &b) == E2H_OK);
    CHECK(e2h_seq_extend(e, &a, 1, &stop) == E2H_OK && e2h_seq_extend(e, &b, 1, &stop) == E2H_OK);
    CHECK(e2h_seq_len(a) == 28 && e2h_seq_len(b) == 28);
    CHECK(memcmp(e2h_seq_tokens(a), e2h_seq_tokens(b), 28 * sizeof(int32_t)) == 0);
    // Out-of-range options name the field, not a CLI flag.
    e2h_engine *bad = NULL;
    char err[256] = "";
    eo.kv_mem_gib = -1;
    CHECK(e2h_engine_init(t_model, &eo, &bad, err, sizeof err) == E2H_ERR_INVALID_ARG && !bad);
    CHECKF(strstr(err, "kv_mem_gib") && !strstr(err, "--"), "%s", err);
    eo.kv_mem_gib = 0;
    eo.kernels = "nonsense";
    CHECK(e2h_engine_init(t_model, &eo, &bad, err, sizeof err) == E2H_ERR_INVALID_ARG && !bad);
    CHECKF(strstr(err, "kernels") && !strstr(err, "--"), "%s", err);
    e2h_seq_release(e, a);
    e2h_seq_release(e, b);
    e2h_engine_free(e);
}

// The work one thread does: a tree of sampled continuations plus a teacher-forced batch.
typedef struct {
    const e2h_model *m;
    int n_threads;
    const e2h_engine *share;
    uint64_t seed;
    int32_t out[4][30];
    float lp[4][6];
    int ok;
} work;

static void *run_work(void *p) {
    work *w = p;
    w->ok = 0;
    e2h_engine *e = make_engine(w->m, w->n_threads, w->share);
    if (!e) return NULL;
    int32_t prompt[24], step[6];
    for (int i = 0; i < 24; i++) prompt[i] = (int32_t)((i * 31 + w->seed * 7) % (uint64_t)t_vocab);
    for (int i = 0; i < 6; i++) step[i] = (int32_t)((i * 11 + 3) % t_vocab);
    e2h_sampling sp = e2h_sampling_default();
    sp.temperature = 0.9f;
    sp.seed = w->seed;
    e2h_seq *root = NULL, *kids[4] = {0};
    e2h_stop stop = {30, NULL, 0, 1, 0};
    int ok = e2h_seq_create(e, prompt, 24, &sp, &root) == E2H_OK &&
             e2h_seq_fork(e, root, 4, kids) == E2H_OK && e2h_seq_extend(e, kids, 4, &stop) == E2H_OK;
    for (int i = 0; i < 4 && ok; i++) {
        memcpy(w->out[i], e2h_seq_tokens(kids[i]) + 24, sizeof w->out[i]);
        ok = e2h_seq_append(e, kids[i], step, 6) == E2H_OK;
    }
    ok = ok && e2h_engine_sync(e, kids, 4) == E2H_OK;
    for (int i = 0; i < 4 && ok; i++) memcpy(w->lp[i], e2h_seq_logprobs(kids[i]) + 54, sizeof w->lp[i]);
    w->ok = ok;
    e2h_engine_free(e); // releases the root and the children too
    return NULL;
}

// Two engines over one model on two threads at once == the same work run sequentially.
TEST(two_engines_two_threads) {
    work seq[2], par[2];
    memset(seq, 0, sizeof seq);
    memset(par, 0, sizeof par);
    for (int i = 0; i < 2; i++) {
        seq[i] = (work){.m = t_model, .n_threads = 1 + i, .seed = 100 + (uint64_t)i};
        run_work(&seq[i]);
        CHECK(seq[i].ok);
        par[i] = (work){.m = t_model, .n_threads = 1 + i, .seed = 100 + (uint64_t)i};
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++) CHECK(pthread_create(&th[i], NULL, run_work, &par[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        CHECK(par[i].ok);
        CHECK(memcmp(seq[i].out, par[i].out, sizeof seq[i].out) == 0);
        CHECK(memcmp(seq[i].lp, par[i].lp, sizeof seq[i].lp) == 0);
    }
    CHECK(memcmp(seq[0].out, seq[1].out, sizeof seq[0].out) != 0); // different seeds differ
}

// A second engine that uses the first one's thread pool gives the results of a standalone
// engine, and either engine may be freed first.
TEST(shared_thread_pool) {
    e2h_engine *host = make_engine(t_model, 2, NULL);
    CHECK(host != NULL);
    if (!host) return;
    work alone = {.m = t_model, .n_threads = 2, .seed = 7}, shared = {.m = t_model, .share = host, .seed = 7};
    run_work(&alone);
    run_work(&shared); // its engine is freed before the host
    CHECK(alone.ok && shared.ok);
    CHECK(memcmp(alone.out, shared.out, sizeof alone.out) == 0);
    CHECK(memcmp(alone.lp, shared.lp, sizeof alone.lp) == 0);
    // the other order: the host goes first, the guest keeps the pool
    e2h_engine *guest = make_engine(t_model, 0, host);
    CHECK(guest != NULL);
    e2h_engine_free(host);
    int32_t p[5] = {1, 2, 3, 4, 5};
    e2h_seq *s = NULL;
    e2h_stop stop = {6, NULL, 0, 1, 0};
    CHECK(guest && e2h_seq_create(guest, p, 5, NULL, &s) == E2H_OK);
    CHECK(guest && e2h_seq_extend(guest, &s, 1, &stop) == E2H_OK && e2h_seq_len(s) == 11);
    e2h_engine_free(guest);
}

// Token index m (1-based count of generated tokens) after which the decoded continuation
// first contains str, or -1.
static int first_stop(const e2h_tokenizer *t, const int32_t *ids, int n, const char *str) {
    char buf[4096];
    for (int m = 1; m <= n; m++) {
        size_t len = 0;
        if (e2h_detokenize(t, ids, m, buf, sizeof buf, &len) || len >= sizeof buf) return -1;
        if (memmem(buf, len, str, strlen(str))) return m;
    }
    return -1;
}

// Stop strings: the streamed-tail check stops at exactly the token where the full decode of
// the continuation first contains a stop string (strings spanning several tokens, with a
// leading space, longer than any one token, several at once, and an empty one that is ignored).
TEST(stop_strings_match_full_decode) {
    if (!t_smol) { printf("  skipped: %s absent (make model)\n", SMOL); return; }
    const e2h_tokenizer *t = e2h_model_tokenizer(t_smol);
    e2h_engine *e = make_engine(t_smol, 1, NULL);
    CHECK(e != NULL);
    if (!e) return;
    const char *text = "Once upon a time, in a small village by the sea, there lived";
    int32_t ids[64], n = 0;
    CHECK(e2h_tokenize(t, text, strlen(text), 1, ids, 64, &n) == E2H_OK && n < 64);
    e2h_sampling sp = e2h_sampling_default();
    sp.temperature = 0.8f;
    sp.seed = 5;
    e2h_seq *s = NULL;
    e2h_stop free_run = {80, NULL, 0, 1, 0};
    CHECK(e2h_seq_create(e, ids, n, &sp, &s) == E2H_OK && e2h_seq_extend(e, &s, 1, &free_run) == E2H_OK);
    int32_t cont[80];
    int nc = e2h_seq_len(s) - n;
    CHECK(nc == 80);
    memcpy(cont, e2h_seq_tokens(s) + n, sizeof cont);
    e2h_seq_release(e, s);
    char full[4096];
    size_t flen = 0;
    CHECK(e2h_detokenize(t, cont, 80, full, sizeof full, &flen) == E2H_OK && flen > 100);
    // stop strings cut from the generated text itself: (offset, length) pairs
    const int cuts[][2] = {{0, 3}, {10, 1}, {25, 6}, {40, 24}, {60, 2}, {90, 12}};
    int tested = 0;
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        char str[64];
        int off = cuts[c][0], len = cuts[c][1];
        if ((size_t)(off + len) > flen) continue;
        memcpy(str, full + off, (size_t)len);
        str[len] = 0;
        int ascii = 1;
        for (int i = 0; i < len; i++) ascii &= (unsigned char)str[i] < 0x80;
        if (!ascii) continue;
        int want = first_stop(t, cont, 80, str);
        const char *list[3] = {"", str, "\x01never\x01"};
        e2h_stop stop = {80, list, 3, 1, 0};
        CHECK(e2h_seq_create(e, ids, n, &sp, &s) == E2H_OK && e2h_seq_extend(e, &s, 1, &stop) == E2H_OK);
        int got = e2h_seq_len(s) - n;
        CHECKF(want > 0 && got == want && e2h_seq_stop_reason(s) == E2H_STOP_STRING,
               "stop '%s': stopped after %d tokens (reason %d), the full decode first has it after %d",
               str, got, e2h_seq_stop_reason(s), want);
        e2h_seq_release(e, s);
        // the same in chunks of `chunk` tokens with e2h_stop.resume: a stop string that
        // begins in one chunk and ends in the next still stops at the same token
        for (int chunk = 1; chunk <= 7; chunk += 3) {
            e2h_stop part = {chunk, list, 3, 1, 1};
            CHECK(e2h_seq_create(e, ids, n, &sp, &s) == E2H_OK);
            e2h_status st = E2H_OK;
            int calls = 0;
            do {
                st = e2h_seq_extend(e, &s, 1, &part);
                calls++;
            } while (!st && e2h_seq_stop_reason(s) == E2H_STOP_LENGTH && e2h_seq_len(s) - n < 80);
            int got2 = e2h_seq_len(s) - n;
            CHECKF(!st && got2 == want && e2h_seq_stop_reason(s) == E2H_STOP_STRING &&
                   !memcmp(e2h_seq_tokens(s) + n, cont, sizeof(int32_t) * (size_t)got2),
                   "stop '%s' in chunks of %d: %d tokens in %d calls (reason %d), want %d", str,
                   chunk, got2, calls, e2h_seq_stop_reason(s), want);
            e2h_seq_release(e, s);
        }
        tested++;
    }
    CHECK(tested >= 4);
    printf("  %d stop strings, each stopped at the token the full decode gives (also in chunks "
           "of 1, 4, 7 tokens resumed)\n", tested);
    e2h_engine_free(e);
}

// e2h_model_apply_chat: the ChatML layout, the template's default system turn (NULL), none
// (""), truncation with the full length reported; a zero-filled e2h_stop stops at <|im_end|>
// and ignore_eos goes past it.
TEST(apply_chat_and_eos) {
    if (!t_smol) { printf("  skipped: %s absent (make model)\n", SMOL); return; }
    char buf[1024];
    size_t len = 0;
    CHECK(e2h_model_apply_chat(t_smol, "Be brief.", "Hi", buf, sizeof buf, &len) == E2H_OK);
    const char *want = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                       "<|im_start|>assistant\n";
    CHECKF(!strcmp(buf, want) && len == strlen(want), "%s", buf);
    CHECK(e2h_model_apply_chat(t_smol, "", "Hi", buf, sizeof buf, &len) == E2H_OK);
    CHECK(!strcmp(buf, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));
    const char *sys = e2h_model_chat_system(t_smol);
    CHECK(sys != NULL);
    CHECK(e2h_model_apply_chat(t_smol, NULL, "Hi", buf, sizeof buf, &len) == E2H_OK);
    CHECK(sys && strstr(buf, sys) == buf + strlen("<|im_start|>system\n"));
    size_t full = len;
    char small[10];
    CHECK(e2h_model_apply_chat(t_smol, NULL, "Hi", small, sizeof small, &len) == E2H_OK);
    CHECK(len == full && strlen(small) == 9 && !memcmp(small, buf, 9));
    CHECK(e2h_model_apply_chat(t_smol, NULL, "Hi", NULL, 0, &len) == E2H_OK && len == full);
    const char *roles[2] = {"system", "user"}, *contents[2] = {"S", "U"};
    CHECK(e2h_model_apply_chat_turns(t_smol, NULL, roles, contents, 2, buf, sizeof buf, &len) == E2H_OK);
    CHECK(!strcmp(buf, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"));
    // EOS: a short greedy answer ends with <|im_end|> under a zero-filled e2h_stop.
    CHECK(e2h_model_apply_chat(t_smol, NULL, "Say only the word yes.", buf, sizeof buf, &len) == E2H_OK);
    const e2h_tokenizer *t = e2h_model_tokenizer(t_smol);
    int32_t ids[256], n = 0;
    CHECK(e2h_tokenize(t, buf, len, 0, ids, 256, &n) == E2H_OK && n < 256);
    e2h_engine *e = make_engine(t_smol, 1, NULL);
    CHECK(e != NULL);
    if (!e) return;
    e2h_stop zero;
    memset(&zero, 0, sizeof zero);
    zero.max_tokens = 64;
    e2h_seq *s = NULL;
    CHECK(e2h_seq_create(e, ids, n, NULL, &s) == E2H_OK && e2h_seq_extend(e, &s, 1, &zero) == E2H_OK);
    int got = e2h_seq_len(s) - n;
    CHECKF(e2h_seq_stop_reason(s) == E2H_STOP_EOS && got < 64, "reason %d after %d tokens",
           e2h_seq_stop_reason(s), got);
    e2h_seq_release(e, s);
    zero.ignore_eos = 1;
    CHECK(e2h_seq_create(e, ids, n, NULL, &s) == E2H_OK && e2h_seq_extend(e, &s, 1, &zero) == E2H_OK);
    CHECK(e2h_seq_stop_reason(s) == E2H_STOP_LENGTH && e2h_seq_len(s) - n == 64);
    e2h_engine_free(e); // releases s
    // A failed detok-stream push says why, and leaves the stream usable.
    e2h_detok_stream *ds = e2h_detok_stream_new(t);
    CHECK(ds != NULL);
    if (!ds) return;
    char out[64];
    size_t ol = 0;
    CHECK(e2h_detok_stream_push(ds, -3, out, sizeof out, &ol) == E2H_ERR_INVALID_ARG);
    CHECKF(strstr(e2h_detok_stream_last_error(ds), "-3") && strstr(e2h_detok_stream_last_error(ds),
           "vocabulary"), "%s", e2h_detok_stream_last_error(ds));
    CHECK(e2h_detok_stream_push(ds, ids[n - 2], out, sizeof out, &ol) == E2H_OK);
    CHECK(e2h_detok_stream_last_error(ds)[0] == 0);
    CHECK(e2h_detok_stream_push(ds, ids[n - 2], out, sizeof out, NULL) == E2H_ERR_INVALID_ARG);
    CHECK(strstr(e2h_detok_stream_last_error(ds), "len") != NULL);
    e2h_detok_stream_free(ds);
}

int main(void) {
    char err[512];
    e2h_model_info mi;
    if (!(t_model = th_load_model(FIX_MODEL, &mi))) return 1;
    t_vocab = mi.vocab_size;
    if (access(SMOL, R_OK) == 0 && e2h_model_load(SMOL, NULL, &t_smol, err, sizeof err)) {
        printf("cannot load %s: %s\n", SMOL, err);
        t_smol = NULL;
    }
    RUN(zero_filled_options_are_the_defaults);
    RUN(two_engines_two_threads);
    RUN(shared_thread_pool);
    RUN(stop_strings_match_full_decode);
    RUN(apply_chat_and_eos);
    e2h_model_free(t_smol);
    e2h_model_free(t_model);
    return TEST_SUMMARY();
}
