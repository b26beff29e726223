// tests/fuzz/fuzz_encode.c — encode, decode and streaming decode of arbitrary bytes with real
// vocabularies (../shared/assets/tokenizers, or E2H_FUZZ_VOCABS=dir, plus the committed SmolLM2
// vocabulary, so a checkout without ../shared still fuzzes one BPE). The first byte picks the
// vocabulary; the rest is the text. Ids from the input also go through decode.
#include "fuzz_util.h"

static const char *const fz_names[] = {"llama-spm", "gpt-2", "phi-3", "falcon", "deepseek-llm",
                                       "deepseek-coder", "mpt", "starcoder", "refact", "baichuan",
                                       "gpt-neox"};
#define FZ_N (int)(sizeof fz_names / sizeof fz_names[0])
static e2h_tokenizer *fz_tok[FZ_N + 1];
#define FZ_COMMITTED "tests/fixtures/tokenizer/smollm.gguf" // from the repository root
static int fz_n;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("E2H_FUZZ_VOCABS");
    if (!dir) dir = "../shared/assets/tokenizers";
    for (int i = 0; i <= FZ_N; i++) { // the last one: the committed vocabulary
        char p[512], err[512];
        if (i < FZ_N) snprintf(p, sizeof p, "%s/ggml-vocab-%s.gguf", dir, fz_names[i]);
        else snprintf(p, sizeof p, "%s", FZ_COMMITTED);
        if (access(p, R_OK) == 0 && e2h_tokenizer_load(p, &fz_tok[fz_n], err, sizeof err) == E2H_OK) fz_n++;
    }
    if (!fz_n) {
        fprintf(stderr, "fuzz_encode: no vocabulary found in %s nor %s (set E2H_FUZZ_VOCABS)\n", dir, FZ_COMMITTED);
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const e2h_tokenizer *t = fz_tok[data[0] % fz_n];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int32_t cap = (int32_t)len * 2 + 8, n = 0;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    if (!ids) return 0;
    if (e2h_tokenize(t, text, len, 1, ids, cap, &n) == E2H_OK) {
        size_t out_cap = len * 4 + 64, olen;
        char *out = malloc(out_cap);
        if (out) e2h_detokenize(t, ids, n < cap ? n : cap, out, out_cap, &olen);
        e2h_detok_stream *s = e2h_detok_stream_new(t);
        for (int32_t i = 0; s && out && i < n && i < cap; i++) e2h_detok_stream_push(s, ids[i], out, out_cap, &olen);
        if (s && out) e2h_detok_stream_flush(s, out, out_cap, &olen);
        e2h_detok_stream_free(s);
        free(out);
    }
    // the raw bytes as ids (any value, in or out of range)
    int32_t raw[64], nr = (int32_t)(len / 4 < 64 ? len / 4 : 64);
    memcpy(raw, text, (size_t)nr * 4);
    char small[64];
    size_t sl;
    e2h_detokenize(t, raw, nr, small, sizeof small, &sl);
    free(ids);
    return 0;
}
