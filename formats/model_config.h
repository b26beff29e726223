// formats/model_config.h — a decoder-only transformer's hyperparameters, as a checkpoint's
// metadata describes them (config.json here, GGUF keys in engine/load_gguf.c). Plain data: the
// readers fill it, the engine builds its model around it.
#ifndef E2H_FORMATS_MODEL_CONFIG_H
#define E2H_FORMATS_MODEL_CONFIG_H

typedef enum { E2H_ROPE_NONE = 0, E2H_ROPE_LLAMA3 = 1, E2H_ROPE_LINEAR = 2 } e2h_rope_scaling;

typedef struct {
    char arch[64];        // "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"
    int dim;              // hidden_size
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;
    int hidden_dim;       // intermediate_size
    int vocab_size;
    int max_ctx;          // max_position_embeddings
    float rope_theta;
    float norm_eps;
    int rope_scaling;     // e2h_rope_scaling
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_orig_max_pos;
    int tie_embeddings;
    int has_qkv_bias;     // Qwen2
    int rope_interleaved; // 1 for Llama-family GGUF (Q/K rows permuted by the converter)
    int sliding_window;   // Mistral; 0 = none (only matters beyond the window)
    int bos_id;           // -1 if none
    int eos_ids[8];       // eos token ids (config may list several)
    int n_eos;
} e2h_config;

#endif
