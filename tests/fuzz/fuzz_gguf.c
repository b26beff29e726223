// tests/fuzz/fuzz_gguf.c — GGUF header, metadata and tensor infos, then the model and the
// tokenizer loaders, on arbitrary bytes. Any crash, hang, out-of-bounds read or UB is a bug;
// every error must come back as an e2h_status.
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/in.gguf", fz_dir());
    if (fz_write(path, data, size)) return 0;
    e2h_model *m = NULL;
    e2h_load_opts o = {0};
    o.no_repack = 1;
    if (e2h_model_load(path, &o, &m, err, sizeof err) == E2H_OK) {
        e2h_model_info info;
        e2h_model_get_info(m, &info);
        e2h_model_free(m);
    }
    e2h_tokenizer *t = NULL;
    if (e2h_tokenizer_load(path, &t, err, sizeof err) == E2H_OK) {
        int32_t ids[64], n = 0;
        e2h_tokenize(t, "Hello world 123", 15, 1, ids, 64, &n);
        char out[256];
        size_t len;
        e2h_detokenize(t, ids, n < 64 ? n : 64, out, sizeof out, &len);
        e2h_tokenizer_free(t);
    }
    return 0;
}
