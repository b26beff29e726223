// tests/fuzz/fuzz_safetensors.c — config.json + model.safetensors of a Hugging Face model
// directory. Input: config.json bytes, the separator "\n--\n", then the safetensors bytes.
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[256], err[512];
    size_t k = fz_split(data, size);
    snprintf(path, sizeof path, "%s/config.json", fz_dir());
    if (fz_write(path, data, k)) return 0;
    snprintf(path, sizeof path, "%s/model.safetensors", fz_dir());
    size_t off = k + 4 <= size ? k + 4 : size;
    if (fz_write(path, data + off, size - off)) return 0;
    e2h_model *m = NULL;
    e2h_load_opts o = {0};
    o.no_repack = 1;
    if (e2h_model_load(fz_dir(), &o, &m, err, sizeof err) == E2H_OK) e2h_model_free(m);
    return 0;
}
