// engine/model.h — the in-memory model: config, per-layer weight views, owned buffers.
// Both loaders (safetensors + config.json in load_hf.c, GGUF in load_gguf.c) fill this one
// struct through the architecture adapter, so the forward pass never sees the file format.
#ifndef E2H_ENGINE_MODEL_H
#define E2H_ENGINE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "../formats/model_config.h" // e2h_config
#include "../include/e2h.h"
#include "../kernels/ops.h"

// A weight matrix (n_out rows of n_in elements) viewed in its stored type. `data` points
// into an mmapped file or into an owned buffer of the model (quantize-on-load).
typedef struct {
    const void *data;
    int type;      // e2h_type
    int64_t n_in;  // ne[0], elements per row (reduction dimension)
    int64_t n_out; // ne[1], rows
    const void *packed; // row-interleaved (r16) copy of data for the SIMD kernels, or NULL;
                        // owned by the model
} e2h_tensor;

typedef struct {
    float *attn_norm;     // (dim) f32, owned by the model
    float *ffn_norm;      // (dim)
    float *bq, *bk, *bv;  // (n_heads*head_dim), (n_kv_heads*head_dim) or NULL
    e2h_tensor wq;        // (n_heads*head_dim, dim)
    e2h_tensor wk;        // (n_kv_heads*head_dim, dim)
    e2h_tensor wv;        // (n_kv_heads*head_dim, dim)
    e2h_tensor wo;        // (dim, n_heads*head_dim)
    e2h_tensor w_gate;    // (hidden_dim, dim)
    e2h_tensor w_up;      // (hidden_dim, dim)
    e2h_tensor w_down;    // (dim, hidden_dim)
    // Fused r16 copies (packed only, data NULL; model_repack): q, k, v rows concatenated
    // (one matmul call) and gate/up groups interleaved (one call with the SwiGLU epilogue).
    // When set, the parts' own packed copies are not made.
    e2h_tensor wqkv;      // (n_heads*head_dim + 2*n_kv_heads*head_dim, dim)
    e2h_tensor w_gate_up; // (2*hidden_dim, dim), gate and up groups of 16 rows alternating
} e2h_layer;

typedef struct {
    void *addr;
    size_t len;
} e2h_mapping;

struct e2h_model {
    e2h_config cfg;
    e2h_tensor tok_embd;  // (vocab, dim), any supported type; rows dequantized on lookup
    e2h_tensor output;    // (vocab, dim); same data as tok_embd when tied
    float *output_norm;   // (dim)
    e2h_layer *layers;    // (n_layers)
    float *inv_freq;      // (head_dim/2) rope inverse frequencies incl. scaling

    e2h_mapping maps[64]; // mmapped files (unmapped at free)
    int n_maps;
    void **owned;         // buffers to free (converted norms, quantized-on-load weights)
    int n_owned, cap_owned;

    struct e2h_tokenizer *tok; // NULL if the model directory has no tokenizer
    void *gguf;                // gguf_file kept open for the model's life when source is gguf
                               // (weights point into its mapping); gguf_close at free
    uint64_t model_id[2];      // identity for the KV prefix index
    int no_lm_head;            // PRM class without lm_head: `output` is a stand-in (engine/prm)
    char path[1024];
    char source[16];      // "safetensors" or "gguf"
    int weight_type;      // dominant weight type (for info)
    int n_quant_fallback; // tensors quantized to q5_0 because rows are not a multiple of 256
    size_t weight_bytes;  // bytes of all weights as stored
    size_t packed_bytes;  // bytes of the r16 copies (model_repack)
    char *chat_system;    // default system message of the chat template or NULL (owned)
    char *chat_template;  // the chat template text or NULL (owned)
    int64_t n_params;
};

// Allocation helpers used by the loaders: buffers are freed with the model.
void *model_own(struct e2h_model *m, void *p); // takes p (may be NULL); NULL if it cannot grow
void *model_alloc(struct e2h_model *m, size_t bytes);
void *model_alloc_aligned(struct e2h_model *m, size_t bytes); // 64-byte aligned, not zeroed
// Computes inv_freq from rope_theta and the rope scaling config. Returns 0 or -1 (ENOMEM).
int model_init_rope(struct e2h_model *m);
// Checks every tensor's shape against cfg and the supported types. err names the tensor.
int model_validate(const struct e2h_model *m, char *err, size_t err_len);
// Quantizes every linear weight to `type` into owned buffers (quantize-on-load).
int model_quantize(struct e2h_model *m, int type, char *err, size_t err_len);

// Gives the quantized matrices their row-interleaved copies when the best kernels use them
// (engine/model_repack.c). Returns 0 or -1 (out of memory, message in err).
int model_repack(struct e2h_model *m, char *err, size_t err_len);
// Reads the chat template into m->chat_template and its default system turn into
// m->chat_system (engine/model_chat.c).
void model_load_chat_system(struct e2h_model *m, const char *path);

// The Hugging Face loader (engine/load_hf.c): config.json + model.safetensors (or the shards
// of model.safetensors.index.json) in directory `dir`. Same contract as model_load_gguf.
e2h_status model_load_hf(struct e2h_model *m, const char *dir, char *err, size_t err_len);

// The GGUF loader (engine/load_gguf.c): fills m (cfg, tensors, norms, maps or gguf handle,
// source, weight_type, weight_bytes, n_params) from a GGUF file. Returns E2H_OK or a status
// (E2H_ERR_IO / FORMAT / UNSUPPORTED / SHAPE / NOMEM) with a message naming file and field.
e2h_status model_load_gguf(struct e2h_model *m, const char *path, char *err, size_t err_len);

#endif
