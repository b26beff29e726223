// tokenizer/load_json.c — Hugging Face tokenizer.json loader (work in progress).
#include "tokenizer.h"

e2h_status tok_load_json(const char *json_path, const char *config_path, e2h_tokenizer **out,
                         char *err, size_t err_len) {
    (void)config_path;
    *out = NULL;
    tok_set_err(err, err_len, "%s: tokenizer.json loading not implemented yet", json_path);
    return E2H_ERR_UNSUPPORTED;
}
