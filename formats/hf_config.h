// formats/hf_config.h — the Hugging Face config.json reader (Llama, Mistral, Qwen2 causal LMs).
#ifndef E2H_FORMATS_HF_CONFIG_H
#define E2H_FORMATS_HF_CONFIG_H

#include <stddef.h>

#include "../include/e2h.h"
#include "model_config.h"

// Parses and checks config.json (text, read from `file`, which names it in messages) into cfg.
// Values that would make shapes impossible are errors here, before any tensor is looked at:
// E2H_ERR_FORMAT / UNSUPPORTED / SHAPE with a message naming the file and the field.
e2h_status hf_config_parse(const char *file, const char *text, e2h_config *cfg, char *err,
                           size_t err_len);

#endif
