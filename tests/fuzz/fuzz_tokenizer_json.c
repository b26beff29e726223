// tests/fuzz/fuzz_tokenizer_json.c — tokenizer.json: load, then encode and decode a fixed text
// and the input's own bytes.
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/tokenizer.json", fz_dir());
    if (fz_write(path, data, size)) return 0;
    e2h_tokenizer *t = NULL;
    if (e2h_tokenizer_load(path, &t, err, sizeof err) != E2H_OK) return 0;
    const char *texts[2] = {"Hello, world! \xc3\xa9t\xc3\xa9 2024 \xf0\x9f\x98\x80", (const char *)data};
    size_t lens[2] = {strlen(texts[0]), size < 256 ? size : 256};
    for (int i = 0; i < 2; i++) {
        int32_t ids[1024], n = 0;
        if (e2h_tokenize(t, texts[i], lens[i], 1, ids, 1024, &n) != E2H_OK) continue;
        char out[4096];
        size_t len;
        e2h_detokenize(t, ids, n < 1024 ? n : 1024, out, sizeof out, &len);
    }
    e2h_tokenizer_free(t);
    return 0;
}
