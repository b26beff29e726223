// formats/hf_config.c — see hf_config.h.
#include "hf_config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io.h"
#include "json_util.h"

static e2h_status hf_parse_rope_scaling(json_ctx *c, const cJSON *root, e2h_config *cfg) {
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    cfg->rope_scaling = E2H_ROPE_NONE;
    if (!rs || cJSON_IsNull(rs)) return E2H_OK;
    if (!cJSON_IsObject(rs)) {
        fmt_errf(c->err, c->err_len, "%s: field 'rope_scaling' must be an object or null", c->file);
        return E2H_ERR_FORMAT;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!t) t = cJSON_GetObjectItemCaseSensitive(rs, "type");
    if (!cJSON_IsString(t)) {
        fmt_errf(c->err, c->err_len, "%s: field 'rope_scaling.rope_type' must be a string", c->file);
        return E2H_ERR_FORMAT;
    }
    const char *type = t->valuestring;
    if (json_get_float(c, rs, "factor", 1.0f, &cfg->rope_factor)) return E2H_ERR_FORMAT;
    if (!(cfg->rope_factor > 0)) {
        fmt_errf(c->err, c->err_len, "%s: field 'rope_scaling.factor' must be > 0", c->file);
        return E2H_ERR_FORMAT;
    }
    if (strcmp(type, "default") == 0) return E2H_OK;
    if (strcmp(type, "linear") == 0) {
        cfg->rope_scaling = E2H_ROPE_LINEAR;
        return E2H_OK;
    }
    if (strcmp(type, "llama3") == 0) {
        cfg->rope_scaling = E2H_ROPE_LLAMA3;
        if (json_get_float(c, rs, "low_freq_factor", 1.0f, &cfg->rope_low_freq_factor) ||
            json_get_float(c, rs, "high_freq_factor", 4.0f, &cfg->rope_high_freq_factor) ||
            json_get_int(c, rs, "original_max_position_embeddings", 1, 0, &cfg->rope_orig_max_pos))
            return E2H_ERR_FORMAT;
        if (!(cfg->rope_high_freq_factor > cfg->rope_low_freq_factor) || cfg->rope_orig_max_pos <= 0) {
            fmt_errf(c->err, c->err_len,
                     "%s: rope_scaling: need high_freq_factor > low_freq_factor and "
                     "original_max_position_embeddings > 0", c->file);
            return E2H_ERR_FORMAT;
        }
        return E2H_OK;
    }
    fmt_errf(c->err, c->err_len, "%s: unsupported rope_scaling type '%s' (supported: llama3, linear)",
             c->file, type);
    return E2H_ERR_UNSUPPORTED;
}

static e2h_status hf_parse_eos(json_ctx *c, const cJSON *root, e2h_config *cfg) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id");
    cfg->n_eos = 0;
    if (!v || cJSON_IsNull(v)) return E2H_OK;
    int64_t id;
    if (cJSON_IsNumber(v)) {
        if (json_num_to_i64(v, 0, INT32_MAX - 1, &id)) {
            cfg->eos_ids[cfg->n_eos++] = (int)id;
            return E2H_OK;
        }
    } else if (cJSON_IsArray(v)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, v) {
            if (!json_num_to_i64(it, 0, INT32_MAX - 1, &id)) break;
            if (cfg->n_eos < 8) cfg->eos_ids[cfg->n_eos++] = (int)id;
        }
        if (!it) return E2H_OK;
    }
    fmt_errf(c->err, c->err_len, "%s: field 'eos_token_id' must be a token id (0..2^31-2) or a list of them",
             c->file);
    return E2H_ERR_FORMAT;
}

e2h_status hf_config_parse(const char *file, const char *text, e2h_config *cfg, char *err,
                           size_t err_len) {
    cJSON *root = cJSON_Parse(text);
    if (!root || !cJSON_IsObject(root)) {
        fmt_errf(err, err_len, "%s: not a JSON object (parse error near byte %ld)", file,
                 root ? 0L : (long)(cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - text : 0));
        cJSON_Delete(root);
        return E2H_ERR_FORMAT;
    }
    json_ctx c = {file, err, err_len, 0};
    e2h_status st = E2H_OK;
    memset(cfg, 0, sizeof *cfg);
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *a0 = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
    if (!cJSON_IsString(a0)) {
        fmt_errf(err, err_len, "%s: field 'architectures' must be a list with one string", file);
        st = E2H_ERR_FORMAT;
        goto done;
    }
    snprintf(cfg->arch, sizeof cfg->arch, "%s", a0->valuestring);
    // The PRM classes (Qwen2ForProcessRewardModel, Skywork's Qwen2ForPrmModel) are a Qwen2
    // backbone plus a head that engine/prm reads itself; the backbone loads like a causal LM.
    if (strcmp(cfg->arch, "LlamaForCausalLM") && strcmp(cfg->arch, "MistralForCausalLM") &&
        strcmp(cfg->arch, "Qwen2ForCausalLM") && strcmp(cfg->arch, "Qwen2ForProcessRewardModel") &&
        strcmp(cfg->arch, "Qwen2ForPrmModel")) {
        fmt_errf(err, err_len,
                 "%s: unsupported architecture '%s' in field 'architectures' (supported: "
                 "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, "
                 "Qwen2ForProcessRewardModel, Qwen2ForPrmModel)", file, cfg->arch);
        st = E2H_ERR_UNSUPPORTED;
        goto done;
    }
    int is_qwen2 = strncmp(cfg->arch, "Qwen2For", 8) == 0;
    json_get_int(&c, root, "hidden_size", 1, 0, &cfg->dim);
    if (!c.failed) json_get_int(&c, root, "num_hidden_layers", 1, 0, &cfg->n_layers);
    if (!c.failed) json_get_int(&c, root, "num_attention_heads", 1, 0, &cfg->n_heads);
    if (!c.failed) json_get_int(&c, root, "num_key_value_heads", 0, cfg->n_heads, &cfg->n_kv_heads);
    if (!c.failed) json_get_int(&c, root, "intermediate_size", 1, 0, &cfg->hidden_dim);
    if (!c.failed) json_get_int(&c, root, "vocab_size", 1, 0, &cfg->vocab_size);
    if (!c.failed) json_get_int(&c, root, "max_position_embeddings", 0, 2048, &cfg->max_ctx);
    if (!c.failed) json_get_float(&c, root, "rope_theta", 10000.0f, &cfg->rope_theta);
    if (!c.failed) json_get_float(&c, root, "rms_norm_eps", 1e-6f, &cfg->norm_eps);
    if (!c.failed) json_get_bool(&c, root, "tie_word_embeddings", 0, &cfg->tie_embeddings);
    if (!c.failed) json_get_int(&c, root, "bos_token_id", 0, -1, &cfg->bos_id);
    if (!c.failed && cfg->n_heads > 0)
        json_get_int(&c, root, "head_dim", 0, cfg->dim / cfg->n_heads, &cfg->head_dim);
    if (c.failed) { st = E2H_ERR_FORMAT; goto done; }
    {
        int attention_bias = 0, mlp_bias = 0;
        if (json_get_bool(&c, root, "attention_bias", 0, &attention_bias) ||
            json_get_bool(&c, root, "mlp_bias", 0, &mlp_bias)) { st = E2H_ERR_FORMAT; goto done; }
        if (attention_bias || mlp_bias) {
            fmt_errf(err, err_len, "%s: unsupported config value: '%s' = true", file,
                     attention_bias ? "attention_bias" : "mlp_bias");
            st = E2H_ERR_UNSUPPORTED;
            goto done;
        }
    }
    {
        const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
        if (act && !(cJSON_IsString(act) && strcmp(act->valuestring, "silu") == 0)) {
            fmt_errf(err, err_len, "%s: unsupported config value 'hidden_act' (only \"silu\")", file);
            st = E2H_ERR_UNSUPPORTED;
            goto done;
        }
    }
    {
        const cJSON *sw = cJSON_GetObjectItemCaseSensitive(root, "sliding_window");
        int use_sw = 1;
        json_get_bool(&c, root, "use_sliding_window", !is_qwen2, &use_sw);
        int64_t w = 0;
        if (sw && !cJSON_IsNull(sw) && use_sw) {
            if (!json_num_to_i64(sw, 0, INT32_MAX, &w)) {
                fmt_errf(c.err, c.err_len, "%s: field 'sliding_window' must be an integer in "
                         "[0, 2^31)", c.file);
                st = E2H_ERR_FORMAT;
                goto done;
            }
            cfg->sliding_window = (int)w;
        }
    }
    cfg->has_qkv_bias = is_qwen2;
    if ((st = hf_parse_rope_scaling(&c, root, cfg)) != E2H_OK) goto done;
    if ((st = hf_parse_eos(&c, root, cfg)) != E2H_OK) goto done;
    if (cfg->dim <= 0 || cfg->n_layers <= 0 || cfg->n_heads <= 0 || cfg->n_kv_heads <= 0 ||
        cfg->hidden_dim <= 0 || cfg->vocab_size <= 0 || cfg->head_dim <= 0 || cfg->max_ctx <= 0) {
        fmt_errf(err, err_len, "%s: sizes must be positive (hidden_size, num_hidden_layers, "
                 "num_attention_heads, num_key_value_heads, intermediate_size, vocab_size, head_dim)",
                 file);
        st = E2H_ERR_FORMAT;
        goto done;
    }
    if (cfg->n_heads % cfg->n_kv_heads != 0) {
        fmt_errf(err, err_len, "%s: num_attention_heads (%d) is not a multiple of "
                 "num_key_value_heads (%d)", file, cfg->n_heads, cfg->n_kv_heads);
        st = E2H_ERR_SHAPE;
        goto done;
    }
    if (cfg->head_dim % 2 != 0 || cfg->head_dim > 1024) {
        fmt_errf(err, err_len, "%s: head_dim %d must be even and <= 1024", file, cfg->head_dim);
        st = E2H_ERR_UNSUPPORTED;
        goto done;
    }
    if (!(cfg->rope_theta > 0) || !(cfg->norm_eps >= 0)) {
        fmt_errf(err, err_len, "%s: rope_theta must be > 0 and rms_norm_eps >= 0", file);
        st = E2H_ERR_FORMAT;
        goto done;
    }
done:
    cJSON_Delete(root);
    return st;
}
