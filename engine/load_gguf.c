// engine/load_gguf.c — the GGUF architecture adapter: maps a llama.cpp GGUF file
// (general.architecture "llama" — Llama, Mistral, SmolLM — or "qwen2") onto struct e2h_model.
//
// Weight matrices stay in their stored type and point into the GGUF mapping, which the model
// keeps open (m->gguf, closed by e2h_model_free). Norm weights and biases are converted to f32
// into model-owned buffers. Every key and tensor is checked against the config before use, so
// a corrupt file yields an error naming the file and the key or tensor, never a crash.
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../formats/gguf.h"
#include "model.h"

// Upper bounds on hyperparameters: far above any real model, low enough that every product
// of two of them fits in int64 and every count fits in int.
#define LG_MAX_DIM (1 << 17)
#define LG_MAX_LAYERS 1024
#define LG_MAX_HEADS 1024
#define LG_MAX_HEAD_DIM 1024
#define LG_MAX_HIDDEN (1 << 20)
#define LG_MAX_VOCAB (1 << 22)
#define LG_MAX_CTX (1 << 24)

typedef struct {
    struct e2h_model *m;
    gguf_file *f;
    const char *path;
    char arch[32]; // general.architecture, e.g. "llama"
    char *err;
    size_t err_len;
    int64_t type_bytes[E2H_TYPE_COUNT]; // bytes of layer matrices per type (dominant type)
    e2h_status status;                  // of the first failure
} lg_ctx;

// Records status st (the first failure wins) and the message "<path>: <fmt...>"; returns -1.
static int lg_fail(lg_ctx *c, e2h_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int lg_fail(lg_ctx *c, e2h_status st, const char *fmt, ...) {
    if (c->status == E2H_OK) c->status = st;
    if (!c->err || c->err_len == 0) return -1;
    int n = snprintf(c->err, c->err_len, "%s: ", c->path);
    if (n < 0 || (size_t)n >= c->err_len) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->err_len - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *lg_type_name(int type) {
    const e2h_type_traits *tr = kern_type_traits_get(type);
    return tr && tr->name ? tr->name : "unknown";
}

// ---------------------------------------------------------------- metadata

// Reads integer key "<arch>.<suffix>" into *out, checking lo <= value <= hi. Absent keys
// leave *out unchanged and fail only when required.
static int lg_arch_int(lg_ctx *c, const char *suffix, int required, int64_t lo, int64_t hi,
                       int *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", c->arch, suffix);
    if (!gguf_find_kv(c->f, key)) {
        if (required) return lg_fail(c, E2H_ERR_FORMAT, "key '%s' missing", key);
        return 0;
    }
    int64_t v;
    if (gguf_get_i64(c->f, key, &v) != 0)
        return lg_fail(c, E2H_ERR_FORMAT, "key '%s' is not an integer", key);
    if (v < lo || v > hi)
        return lg_fail(c, E2H_ERR_FORMAT,
                       "key '%s' = %" PRId64 " out of range [%" PRId64 ", %" PRId64 "]", key, v, lo,
                       hi);
    *out = (int)v;
    return 0;
}

static int lg_arch_float(lg_ctx *c, const char *suffix, float *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", c->arch, suffix);
    if (!gguf_find_kv(c->f, key)) return 0;
    float v;
    if (gguf_get_f32(c->f, key, &v) != 0)
        return lg_fail(c, E2H_ERR_FORMAT, "key '%s' is not a float32", key);
    if (!isfinite(v)) return lg_fail(c, E2H_ERR_FORMAT, "key '%s' is not finite", key);
    *out = v;
    return 0;
}

// Token id key (tokenizer.ggml.*): -1 when absent; an error when present but invalid.
static int lg_token_id(lg_ctx *c, const char *key, int vocab, int *out) {
    *out = -1;
    if (!gguf_find_kv(c->f, key)) return 0;
    int64_t v;
    if (gguf_get_i64(c->f, key, &v) != 0)
        return lg_fail(c, E2H_ERR_FORMAT, "key '%s' is not an integer", key);
    if (v < 0 || v >= vocab)
        return lg_fail(c, E2H_ERR_FORMAT, "key '%s' = %" PRId64 " outside the vocabulary (%d)", key,
                       v, vocab);
    *out = (int)v;
    return 0;
}

static int lg_read_arch(lg_ctx *c) {
    gguf_str s;
    if (!gguf_find_kv(c->f, "general.architecture"))
        return lg_fail(c, E2H_ERR_FORMAT, "key 'general.architecture' missing");
    if (gguf_get_str(c->f, "general.architecture", &s) != 0)
        return lg_fail(c, E2H_ERR_FORMAT, "key 'general.architecture' is not a string");
    if (s.len >= sizeof c->arch) s.len = sizeof c->arch - 1;
    memcpy(c->arch, s.ptr, s.len);
    c->arch[s.len] = 0;
    for (size_t i = 0; i < s.len; i++)
        if (c->arch[i] < 0x20 || c->arch[i] > 0x7e) c->arch[i] = '?';

    e2h_config *cfg = &c->m->cfg;
    if (strcmp(c->arch, "llama") == 0) {
        // llama.cpp's converter permuted the Q/K rows into GGML's interleaved rope layout.
        snprintf(cfg->arch, sizeof cfg->arch, "LlamaForCausalLM");
        cfg->rope_interleaved = 1;
        cfg->norm_eps = 1e-5f;
    } else if (strcmp(c->arch, "qwen2") == 0) {
        // Qwen2 is converted without permutation and run with NEOX rope.
        snprintf(cfg->arch, sizeof cfg->arch, "Qwen2ForCausalLM");
        cfg->rope_interleaved = 0;
        cfg->norm_eps = 1e-6f;
    } else {
        return lg_fail(c, E2H_ERR_UNSUPPORTED,
                       "key 'general.architecture' = '%s' is not supported (llama, qwen2)",
                       c->arch);
    }
    return 0;
}

// Llama 3 rope scaling is stored by llama.cpp as a tensor of per-frequency divisors
// (rope_freqs.weight) instead of config keys. We recover the scaling factor from it, assume
// the Llama 3.x constants (low 1, high 4, original context 8192) and check that they
// reproduce every divisor; anything else is rejected rather than run with the wrong rope.
static int lg_read_rope_freqs(lg_ctx *c) {
    e2h_config *cfg = &c->m->cfg;
    const gguf_tensor *t = gguf_find_tensor(c->f, "rope_freqs.weight");
    if (!t) return 0;
    int64_t half = cfg->head_dim / 2;
    if (t->type != E2H_TYPE_F32 || t->n_dims != 1 || t->ne[0] != half)
        return lg_fail(c, E2H_ERR_UNSUPPORTED, "tensor 'rope_freqs.weight': want f32 (%" PRId64 ")",
                       half);
    const float *fr = t->data;
    float factor = 1.0f;
    for (int64_t i = 0; i < half; i++) {
        float v;
        memcpy(&v, fr + i, sizeof v);
        if (!(v >= 1.0f && v < 1e6f))
            return lg_fail(c, E2H_ERR_UNSUPPORTED,
                           "tensor 'rope_freqs.weight': value %g at %" PRId64 " invalid", (double)v,
                           i);
        if (v > factor) factor = v;
    }
    if (factor == 1.0f) return 0;
    const double lo = 1.0, hi = 4.0, orig = 8192.0;
    for (int64_t i = 0; i < half; i++) {
        double freq = pow(cfg->rope_theta, -2.0 * (double)i / cfg->head_dim);
        double wavelen = 2.0 * M_PI / freq, want;
        if (wavelen < orig / hi)
            want = 1.0;
        else if (wavelen > orig / lo)
            want = factor;
        else {
            double smooth = (orig / wavelen - lo) / (hi - lo);
            want = 1.0 / ((1.0 - smooth) / factor + smooth);
        }
        float v;
        memcpy(&v, fr + i, sizeof v);
        if (fabs(v - want) > 1e-3 * want)
            return lg_fail(c, E2H_ERR_UNSUPPORTED,
                           "tensor 'rope_freqs.weight': not Llama-3 rope scaling "
                           "(value %g at %" PRId64 ", want %g)",
                           (double)v, i, want);
    }
    cfg->rope_scaling = E2H_ROPE_LLAMA3;
    cfg->rope_factor = factor;
    cfg->rope_low_freq_factor = (float)lo;
    cfg->rope_high_freq_factor = (float)hi;
    cfg->rope_orig_max_pos = (int)orig;
    return 0;
}

static int lg_read_rope_scaling(lg_ctx *c) {
    e2h_config *cfg = &c->m->cfg;
    char key[128];
    gguf_str s = {0};
    snprintf(key, sizeof key, "%s.rope.scaling.type", c->arch);
    if (gguf_find_kv(c->f, key)) {
        if (gguf_get_str(c->f, key, &s) != 0)
            return lg_fail(c, E2H_ERR_FORMAT, "key '%s' is not a string", key);
    }
    float factor = 0.0f;
    if (lg_arch_float(c, "rope.scaling.factor", &factor)) return -1;
    if (factor == 0.0f && lg_arch_float(c, "rope.scale_linear", &factor)) return -1; // old key
    int is_none = s.len == 0 || (s.len == 4 && memcmp(s.ptr, "none", 4) == 0);
    int is_linear = s.len == 6 && memcmp(s.ptr, "linear", 6) == 0;
    if (is_none && (factor == 0.0f || factor == 1.0f || s.len == 4)) return lg_read_rope_freqs(c);
    if (is_linear || (s.len == 0 && factor > 0.0f)) {
        if (!(factor > 0.0f && factor < 1e4f))
            return lg_fail(c, E2H_ERR_FORMAT, "key '%s.rope.scaling.factor' = %g invalid", c->arch,
                           (double)factor);
        cfg->rope_scaling = E2H_ROPE_LINEAR;
        cfg->rope_factor = factor;
        return 0;
    }
    return lg_fail(c, E2H_ERR_UNSUPPORTED, "key '%s' = '%.*s' is not supported (none, linear)", key,
                   (int)(s.len > 32 ? 32 : s.len), s.ptr);
}

// Hyperparameters, except vocab_size (taken from token_embd.weight).
static int lg_read_hparams(lg_ctx *c) {
    e2h_config *cfg = &c->m->cfg;
    if (lg_arch_int(c, "embedding_length", 1, 1, LG_MAX_DIM, &cfg->dim)) return -1;
    if (lg_arch_int(c, "block_count", 1, 1, LG_MAX_LAYERS, &cfg->n_layers)) return -1;
    if (lg_arch_int(c, "attention.head_count", 1, 1, LG_MAX_HEADS, &cfg->n_heads)) return -1;
    cfg->n_kv_heads = cfg->n_heads;
    if (lg_arch_int(c, "attention.head_count_kv", 0, 1, LG_MAX_HEADS, &cfg->n_kv_heads)) return -1;
    if (lg_arch_int(c, "feed_forward_length", 1, 1, LG_MAX_HIDDEN, &cfg->hidden_dim)) return -1;
    cfg->max_ctx = 4096;
    if (lg_arch_int(c, "context_length", 0, 1, LG_MAX_CTX, &cfg->max_ctx)) return -1;
    if (cfg->n_heads % cfg->n_kv_heads != 0)
        return lg_fail(c, E2H_ERR_FORMAT,
                       "key '%s.attention.head_count' (%d) is not a multiple of "
                       "'%s.attention.head_count_kv' (%d)",
                       c->arch, cfg->n_heads, c->arch, cfg->n_kv_heads);
    // head_dim is dim / n_heads unless the file says otherwise (key_length, e.g. Mistral Nemo)
    cfg->head_dim = cfg->dim / cfg->n_heads;
    if (lg_arch_int(c, "attention.key_length", 0, 2, LG_MAX_HEAD_DIM, &cfg->head_dim)) return -1;
    int v_len = cfg->head_dim;
    if (lg_arch_int(c, "attention.value_length", 0, 2, LG_MAX_HEAD_DIM, &v_len)) return -1;
    if (v_len != cfg->head_dim)
        return lg_fail(c, E2H_ERR_UNSUPPORTED,
                       "key '%s.attention.value_length' (%d) != key_length (%d): unsupported",
                       c->arch, v_len, cfg->head_dim);
    if (cfg->head_dim < 2 || cfg->head_dim % 2 != 0 || cfg->head_dim > LG_MAX_HEAD_DIM)
        return lg_fail(c, E2H_ERR_UNSUPPORTED,
                       "head dimension %d (embedding_length %d / head_count %d) must be even "
                       "and in [2, %d]",
                       cfg->head_dim, cfg->dim, cfg->n_heads, LG_MAX_HEAD_DIM);
    int rope_dims = cfg->head_dim;
    if (lg_arch_int(c, "rope.dimension_count", 0, 1, LG_MAX_HEAD_DIM, &rope_dims)) return -1;
    if (rope_dims != cfg->head_dim)
        return lg_fail(c, E2H_ERR_UNSUPPORTED,
                       "key '%s.rope.dimension_count' = %d: partial rotary (head dim %d) is "
                       "not supported",
                       c->arch, rope_dims, cfg->head_dim);
    cfg->rope_theta = 10000.0f;
    if (lg_arch_float(c, "rope.freq_base", &cfg->rope_theta)) return -1;
    if (!(cfg->rope_theta > 1.0f))
        return lg_fail(c, E2H_ERR_FORMAT, "key '%s.rope.freq_base' = %g invalid", c->arch,
                       (double)cfg->rope_theta);
    if (lg_arch_float(c, "attention.layer_norm_rms_epsilon", &cfg->norm_eps)) return -1;
    if (!(cfg->norm_eps > 0.0f && cfg->norm_eps < 1.0f))
        return lg_fail(c, E2H_ERR_FORMAT, "key '%s.attention.layer_norm_rms_epsilon' = %g invalid",
                       c->arch, (double)cfg->norm_eps);
    return lg_read_rope_scaling(c);
}

// ---------------------------------------------------------------- tensors

static const gguf_tensor *lg_tensor(lg_ctx *c, const char *name, int required) {
    const gguf_tensor *t = gguf_find_tensor(c->f, name);
    if (!t && required) lg_fail(c, E2H_ERR_SHAPE, "tensor '%s' missing", name);
    return t;
}

static void lg_count(lg_ctx *c, const gguf_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->n_dims; d++)
        n *= t->ne[d];
    c->m->n_params += n;
    c->m->weight_bytes += (size_t)t->nbytes;
}

static int lg_check_dims(lg_ctx *c, const gguf_tensor *t, const char *name, int n_dims) {
    if (t->n_dims < 1 || t->n_dims > 4)
        return lg_fail(c, E2H_ERR_SHAPE, "tensor '%s': %d dimensions", name, t->n_dims);
    for (int d = 0; d < t->n_dims; d++)
        if (t->ne[d] < 1)
            return lg_fail(c, E2H_ERR_SHAPE, "tensor '%s': ne[%d] = %" PRId64, name, d, t->ne[d]);
    // trailing dimensions of 1 are allowed (some writers keep them)
    for (int d = n_dims; d < t->n_dims; d++)
        if (t->ne[d] != 1)
            return lg_fail(c, E2H_ERR_SHAPE, "tensor '%s': %d dimensions, want %d", name, t->n_dims,
                           n_dims);
    return 0;
}

// A weight matrix (n_out, n_in) viewed in place. GGUF's ne[0] is the row length.
static int lg_matrix(lg_ctx *c, const char *name, int64_t n_in, int64_t n_out, e2h_tensor *out) {
    const gguf_tensor *t = lg_tensor(c, name, 1);
    if (!t) return -1;
    if (lg_check_dims(c, t, name, 2)) return -1;
    int64_t ne1 = t->n_dims >= 2 ? t->ne[1] : 1;
    if (t->ne[0] != n_in || ne1 != n_out)
        return lg_fail(c, E2H_ERR_SHAPE,
                       "tensor '%s': shape (%" PRId64 ", %" PRId64 ") (ne[0], ne[1]), "
                       "want (%" PRId64 ", %" PRId64 ")",
                       name, t->ne[0], ne1, n_in, n_out);
    const e2h_type_traits *tr = kern_type_traits_get(t->type);
    if (!tr || !tr->supported)
        return lg_fail(c, E2H_ERR_UNSUPPORTED, "tensor '%s': tensor type %d (%s) is not supported",
                       name, t->type, tr ? tr->name : "unknown");
    size_t row = kern_type_row_size(t->type, n_in);
    if (row == 0)
        return lg_fail(c, E2H_ERR_UNSUPPORTED,
                       "tensor '%s': row length %" PRId64 " is not a multiple of the %s "
                       "block size %d",
                       name, n_in, tr->name, tr->block_size);
    if ((uint64_t)n_out > UINT64_MAX / row || t->nbytes != (uint64_t)n_out * row)
        return lg_fail(c, E2H_ERR_FORMAT,
                       "tensor '%s': %" PRIu64 " bytes, want %" PRId64 " rows of %zu", name,
                       t->nbytes, n_out, row);
    // quant blocks hold f16/f32 fields; kernels may read them in place
    if ((uintptr_t)t->data % 4 != 0)
        return lg_fail(c, E2H_ERR_FORMAT, "tensor '%s': misaligned data (offset %" PRIu64 ")", name,
                       t->offset);
    out->data = t->data;
    out->type = t->type;
    out->n_in = n_in;
    out->n_out = n_out;
    lg_count(c, t);
    return 0;
}

// A (n) vector (norm weight or bias) converted to a model-owned f32 buffer.
static int lg_vector(lg_ctx *c, const char *name, int64_t n, float **out) {
    const gguf_tensor *t = lg_tensor(c, name, 1);
    if (!t) return -1;
    if (lg_check_dims(c, t, name, 1)) return -1;
    if (t->ne[0] != n)
        return lg_fail(c, E2H_ERR_SHAPE, "tensor '%s': shape (%" PRId64 "), want (%" PRId64 ")",
                       name, t->ne[0], n);
    size_t esz = t->type == E2H_TYPE_F32                                 ? 4
                 : (t->type == E2H_TYPE_F16 || t->type == E2H_TYPE_BF16) ? 2
                                                                         : 0;
    if (esz == 0)
        return lg_fail(c, E2H_ERR_UNSUPPORTED,
                       "tensor '%s': type %d (%s) not supported for a vector (f32, f16, bf16)",
                       name, t->type, lg_type_name(t->type));
    if (t->nbytes != (uint64_t)n * esz)
        return lg_fail(c, E2H_ERR_FORMAT, "tensor '%s': %" PRIu64 " bytes, want %" PRId64, name,
                       t->nbytes, n * (int64_t)esz);
    float *dst = model_alloc(c->m, (size_t)n * sizeof(float));
    if (!dst) return lg_fail(c, E2H_ERR_NOMEM, "tensor '%s': out of memory", name);
    const unsigned char *src = t->data;
    for (int64_t i = 0; i < n; i++) {
        if (esz == 4) {
            memcpy(dst + i, src + 4 * i, 4);
        } else {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2); // memcpy: the data may be only 1-byte aligned
            dst[i] = t->type == E2H_TYPE_F16 ? kern_f16_to_f32(h) : kern_bf16_to_f32(h);
        }
    }
    lg_count(c, t);
    *out = dst;
    return 0;
}

static int lg_layer_matrix(lg_ctx *c, int il, const char *what, int64_t n_in, int64_t n_out,
                           e2h_tensor *out) {
    char name[96];
    snprintf(name, sizeof name, "blk.%d.%s.weight", il, what);
    if (lg_matrix(c, name, n_in, n_out, out)) return -1;
    c->type_bytes[out->type] += (int64_t)kern_type_row_size(out->type, n_in) * n_out;
    return 0;
}

static int lg_layer_vector(lg_ctx *c, int il, const char *what, int64_t n, float **out) {
    char name[96];
    snprintf(name, sizeof name, "blk.%d.%s", il, what);
    return lg_vector(c, name, n, out);
}

static int lg_read_layer(lg_ctx *c, int il) {
    const e2h_config *cfg = &c->m->cfg;
    e2h_layer *L = &c->m->layers[il];
    int64_t dim = cfg->dim, q_dim = (int64_t)cfg->n_heads * cfg->head_dim;
    int64_t kv_dim = (int64_t)cfg->n_kv_heads * cfg->head_dim, hid = cfg->hidden_dim;
    if (lg_layer_vector(c, il, "attn_norm.weight", dim, &L->attn_norm)) return -1;
    if (lg_layer_vector(c, il, "ffn_norm.weight", dim, &L->ffn_norm)) return -1;
    if (lg_layer_matrix(c, il, "attn_q", dim, q_dim, &L->wq)) return -1;      // (q_dim, dim)
    if (lg_layer_matrix(c, il, "attn_k", dim, kv_dim, &L->wk)) return -1;     // (kv_dim, dim)
    if (lg_layer_matrix(c, il, "attn_v", dim, kv_dim, &L->wv)) return -1;     // (kv_dim, dim)
    if (lg_layer_matrix(c, il, "attn_output", q_dim, dim, &L->wo)) return -1; // (dim, q_dim)
    if (lg_layer_matrix(c, il, "ffn_gate", dim, hid, &L->w_gate)) return -1;  // (hid, dim)
    if (lg_layer_matrix(c, il, "ffn_up", dim, hid, &L->w_up)) return -1;      // (hid, dim)
    if (lg_layer_matrix(c, il, "ffn_down", hid, dim, &L->w_down)) return -1;  // (dim, hid)
    if (!cfg->has_qkv_bias) return 0;
    if (lg_layer_vector(c, il, "attn_q.bias", q_dim, &L->bq)) return -1;
    if (lg_layer_vector(c, il, "attn_k.bias", kv_dim, &L->bk)) return -1;
    return lg_layer_vector(c, il, "attn_v.bias", kv_dim, &L->bv);
}

// Embedding and output head; sets vocab_size from token_embd.weight.
static int lg_read_embeddings(lg_ctx *c) {
    struct e2h_model *m = c->m;
    e2h_config *cfg = &m->cfg;
    const gguf_tensor *t = lg_tensor(c, "token_embd.weight", 1);
    if (!t) return -1;
    if (lg_check_dims(c, t, "token_embd.weight", 2)) return -1;
    int64_t vocab = t->n_dims >= 2 ? t->ne[1] : 1;
    if (vocab < 1 || vocab > LG_MAX_VOCAB)
        return lg_fail(c, E2H_ERR_SHAPE,
                       "tensor 'token_embd.weight': vocabulary %" PRId64 " out of range", vocab);
    cfg->vocab_size = (int)vocab;
    char key[128];
    snprintf(key, sizeof key, "%s.vocab_size", c->arch);
    int64_t kv_vocab;
    if (gguf_find_kv(c->f, key) && gguf_get_i64(c->f, key, &kv_vocab) == 0 && kv_vocab != vocab)
        return lg_fail(c, E2H_ERR_SHAPE,
                       "key '%s' = %" PRId64 " disagrees with tensor 'token_embd.weight' "
                       "(%" PRId64 " rows)",
                       key, kv_vocab, vocab);
    if (lg_matrix(c, "token_embd.weight", cfg->dim, vocab, &m->tok_embd)) return -1;
    if (lg_vector(c, "output_norm.weight", cfg->dim, &m->output_norm)) return -1;
    if (gguf_find_tensor(c->f, "output.weight")) {
        cfg->tie_embeddings = 0;
        return lg_matrix(c, "output.weight", cfg->dim, vocab, &m->output);
    }
    cfg->tie_embeddings = 1; // absent output.weight means the head reuses the embedding
    m->output = m->tok_embd;
    return 0;
}

static int lg_read_special_tokens(lg_ctx *c) {
    e2h_config *cfg = &c->m->cfg;
    int v = cfg->vocab_size, id;
    if (lg_token_id(c, "tokenizer.ggml.bos_token_id", v, &cfg->bos_id)) return -1;
    cfg->n_eos = 0;
    // eot / eom end a chat turn in Llama-3-style vocabularies: stop there as well
    static const char *const keys[] = {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                                       "tokenizer.ggml.eom_token_id"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        if (lg_token_id(c, keys[k], v, &id)) return -1;
        int dup = id < 0;
        for (int j = 0; j < cfg->n_eos && !dup; j++)
            dup = cfg->eos_ids[j] == id;
        if (!dup && cfg->n_eos < 8) cfg->eos_ids[cfg->n_eos++] = id;
    }
    return 0;
}

static int lg_load(lg_ctx *c) {
    struct e2h_model *m = c->m;
    e2h_config *cfg = &m->cfg;
    cfg->bos_id = -1;
    if (lg_read_arch(c) || lg_read_hparams(c)) return -1;
    if (lg_read_embeddings(c) || lg_read_special_tokens(c)) return -1;
    // Qwen2 always has Q/K/V biases; a llama file may carry them too (converted from HF
    // attention_bias=true). Layer 0 decides; every layer must then have them.
    cfg->has_qkv_bias =
        strcmp(c->arch, "qwen2") == 0 || gguf_find_tensor(c->f, "blk.0.attn_q.bias") != NULL;
    m->layers = model_alloc(m, (size_t)cfg->n_layers * sizeof(e2h_layer));
    if (!m->layers) return lg_fail(c, E2H_ERR_NOMEM, "out of memory for %d layers", cfg->n_layers);
    memset(m->layers, 0, (size_t)cfg->n_layers * sizeof(e2h_layer));
    for (int il = 0; il < cfg->n_layers; il++)
        if (lg_read_layer(c, il)) return -1;
    int best = E2H_TYPE_F32;
    for (int t = 0; t < E2H_TYPE_COUNT; t++)
        if (c->type_bytes[t] > c->type_bytes[best]) best = t;
    m->weight_type = best;
    snprintf(m->source, sizeof m->source, "gguf");
    snprintf(m->path, sizeof m->path, "%s", c->path);
    return 0;
}

e2h_status model_load_gguf(struct e2h_model *m, const char *path, char *err, size_t err_len) {
    if (err && err_len) err[0] = 0;
    lg_ctx c = {.m = m, .path = path ? path : "(null)", .err = err, .err_len = err_len};
    if (!m || !path) {
        lg_fail(&c, E2H_ERR_INVALID_ARG, "invalid argument");
        return c.status;
    }
    if (access(path, R_OK) != 0) {
        lg_fail(&c, E2H_ERR_IO, "cannot read file: %s", strerror(errno));
        return c.status;
    }
    c.f = gguf_open(path, err, err_len); // its message already names the file and field
    if (!c.f) return E2H_ERR_FORMAT;
    if (lg_load(&c) != 0) {
        gguf_close(c.f); // buffers from model_alloc are freed with the model
        m->gguf = NULL;
        return c.status;
    }
    m->gguf = c.f; // weights point into its mapping: closed by e2h_model_free
    return E2H_OK;
}
