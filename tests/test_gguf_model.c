// tests/test_gguf_model.c — the GGUF model loader (engine/load_gguf.c) on GGUF files written
// here from C: a small random Llama (and Qwen2) model loads with every tensor pointing at the
// bytes we wrote and every norm equal to the values we wrote; corrupt variants (truncations,
// offsets past EOF, unknown types, dimension overflow, misaligned data, missing tensors, wrong
// shapes, bad keys, random byte flips) fail with a status and a message naming the file and
// the tensor or key. The default model (weights/, `make model`) is checked when present.
#include <stdint.h>
#include <unistd.h>

#include "../formats/gguf.h"
#include "../engine/model.h"
#include "gguf_writer.h"
#include "harness.h"

// ---------------------------------------------------------------- a GGUF writer

#define GW_MAX 128
typedef struct {
    char key[96];
    int type;
    uint8_t val[64]; // raw value bytes (strings: u64 length + bytes)
    size_t val_len;
} gw_kv;

typedef struct {
    char name[96];
    int type, n_dims;
    uint64_t ne[4];
    uint8_t *data;
    size_t nbytes;
} gw_tensor;

typedef struct {
    gw_kv kv[GW_MAX];
    int n_kv;
    gw_tensor t[GW_MAX];
    int n_t;
    uint32_t alignment;
    int misalign; // 1: shift the data section so every tensor sits 2 bytes off a 4-byte boundary
} gguf_writer;

static void gw_kv_raw(gguf_writer *w, const char *key, int type, const void *v, size_t n) {
    for (int i = 0; i < w->n_kv; i++) // replace an existing key
        if (!strcmp(w->kv[i].key, key)) {
            w->kv[i].type = type;
            memcpy(w->kv[i].val, v, n);
            w->kv[i].val_len = n;
            return;
        }
    gw_kv *k = &w->kv[w->n_kv++];
    snprintf(k->key, sizeof k->key, "%s", key);
    k->type = type;
    memcpy(k->val, v, n);
    k->val_len = n;
}
static void gw_kv_u32(gguf_writer *w, const char *key, uint32_t v) {
    gw_kv_raw(w, key, GGUF_T_UINT32, &v, 4);
}
static void gw_kv_u64(gguf_writer *w, const char *key, uint64_t v) {
    gw_kv_raw(w, key, GGUF_T_UINT64, &v, 8);
}
static void gw_kv_f32(gguf_writer *w, const char *key, float v) {
    gw_kv_raw(w, key, GGUF_T_FLOAT32, &v, 4);
}
static void gw_kv_str(gguf_writer *w, const char *key, const char *s) {
    uint8_t v[64];
    uint64_t n = strlen(s);
    memcpy(v, &n, 8);
    memcpy(v + 8, s, n);
    gw_kv_raw(w, key, GGUF_T_STRING, v, 8 + n);
}
static void gw_kv_del(gguf_writer *w, const char *key) {
    for (int i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) {
            w->kv[i] = w->kv[--w->n_kv];
            return;
        }
}

static gw_tensor *gw_find(gguf_writer *w, const char *name) {
    for (int i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name)) return &w->t[i];
    return NULL;
}
static void gw_del(gguf_writer *w, const char *name) {
    gw_tensor *t = gw_find(w, name);
    if (!t) return;
    free(t->data);
    *t = w->t[--w->n_t];
}

static void gw_free(gguf_writer *w) {
    for (int i = 0; i < w->n_t; i++)
        free(w->t[i].data);
    w->n_t = 0;
}

// Serializes the file; tensors are laid out in order, each aligned.
static void gw_serialize(const gguf_writer *w, gguf_buf *b) {
    gb_header(b, (uint64_t)w->n_t, (uint64_t)w->n_kv + 1);
    gb_str(b, "general.alignment");
    gb_u32(b, GGUF_T_UINT32);
    gb_u32(b, w->alignment);
    for (int i = 0; i < w->n_kv; i++) {
        gb_str(b, w->kv[i].key);
        gb_u32(b, (uint32_t)w->kv[i].type);
        gb_put(b, w->kv[i].val, w->kv[i].val_len);
    }
    uint64_t a = w->alignment, off = 0, shift = 0;
    // The info size does not depend on the offsets' values: compute it to place the data.
    size_t info = 0;
    for (int i = 0; i < w->n_t; i++)
        info += 8 + strlen(w->t[i].name) + 4 + 8 * w->t[i].n_dims + 4 + 8;
    uint64_t data_start = (b->n + info + a - 1) / a * a;
    if (w->misalign && data_start % 4 == 0) shift = 2; // alignment 2 allows offsets of 2 mod 4
    uint64_t offs[GW_MAX];
    off = shift;
    for (int i = 0; i < w->n_t; i++) {
        offs[i] = off;
        off = (off + w->t[i].nbytes + a - 1) / a * a;
        if (w->misalign && (data_start + off) % 4 == 0) off += 2;
    }
    for (int i = 0; i < w->n_t; i++) {
        const gw_tensor *t = &w->t[i];
        gb_tensor(b, t->name, t->n_dims, t->ne, (uint32_t)t->type, offs[i]);
    }
    gb_pad(b, a);
    for (int i = 0; i < w->n_t; i++) {
        while (b->n < data_start + offs[i])
            gb_put(b, "\0", 1);
        gb_put(b, w->t[i].data, w->t[i].nbytes);
    }
}

static void write_bytes(const char *path, const uint8_t *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        perror(path);
        exit(1);
    }
    if (n) fwrite(p, 1, n, fp);
    fclose(fp);
}

static void gw_write(const gguf_writer *w, const char *path) {
    gguf_buf b = {0};
    gw_serialize(w, &b);
    write_bytes(path, b.p, b.n);
    free(b.p);
}

// ---------------------------------------------------------------- random tiny models

static float rng_unif(uint64_t *s) {
    return (float)((th_rng_next(s) >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
}

// f32 -> f16 bits for normal values in [2^-14, 65504] (all this test needs), truncating.
static uint16_t t_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, exp = (x >> 23) & 0xff, man = x & 0x7fffff;
    if (exp == 0) return (uint16_t)sign;
    return (uint16_t)(sign | ((exp - 127 + 15) << 10) | (man >> 13));
}
static float t_f16_to_f32(uint16_t h) { // independent of the kernels' conversion
    int e = (h >> 10) & 0x1f, mant = h & 0x3ff;
    float v = e == 0 ? ldexpf((float)mant, -24) : ldexpf((float)(mant | 0x400), e - 25);
    return (h & 0x8000) ? -v : v;
}

static size_t t_row_bytes(int type, int64_t n) {
    switch (type) {
    case E2H_TYPE_F32: return 4 * (size_t)n;
    case E2H_TYPE_F16: return 2 * (size_t)n;
    case E2H_TYPE_Q8_0: return 34 * (size_t)(n / 32);
    case E2H_TYPE_Q4_1: return 20 * (size_t)(n / 32);
    case E2H_TYPE_Q4_0: return 18 * (size_t)(n / 32);
    }
    return 0;
}

// Adds a tensor of (n_out, n_in) [n_out = 0: a vector (n_in)] with valid random contents
// (finite scales), so the file is also usable for a forward pass.
static void gw_add(gguf_writer *w, const char *name, int type, int64_t n_in, int64_t n_out,
                   uint64_t *rng) {
    gw_tensor *t = &w->t[w->n_t++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->n_dims = n_out ? 2 : 1;
    t->ne[0] = (uint64_t)n_in;
    t->ne[1] = (uint64_t)(n_out ? n_out : 1);
    int64_t rows = n_out ? n_out : 1;
    t->nbytes = t_row_bytes(type, n_in) * (size_t)rows;
    t->data = malloc(t->nbytes);
    uint8_t *p = t->data;
    int64_t n = n_in * rows;
    if (type == E2H_TYPE_F32) {
        for (int64_t i = 0; i < n; i++) {
            float v = n_out ? 0.1f * rng_unif(rng) : 1.0f + 0.25f * rng_unif(rng);
            memcpy(p + 4 * i, &v, 4);
        }
    } else if (type == E2H_TYPE_F16) {
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = t_f16(n_out ? 0.1f * rng_unif(rng) : 1.0f + 0.25f * rng_unif(rng));
            memcpy(p + 2 * i, &h, 2);
        }
    } else { // quant blocks: random bytes with sane f16 scales
        for (size_t i = 0; i < t->nbytes; i++)
            p[i] = (uint8_t)th_rng_next(rng);
        size_t bs = t_row_bytes(type, 32);
        for (size_t off = 0; off < t->nbytes; off += bs) {
            uint16_t d = t_f16(0.002f + 0.004f * (rng_unif(rng) + 1.0f) / 2.0f);
            memcpy(p + off, &d, 2);
            if (type == E2H_TYPE_Q4_1) {
                uint16_t m = t_f16(-0.02f * (rng_unif(rng) + 1.5f));
                memcpy(p + off + 2, &m, 2);
            }
        }
    }
}

typedef struct {
    const char *arch; // "llama" or "qwen2"
    int tied;
    int norm_type; // E2H_TYPE_F32 or F16
} tm_opts;

enum {
    TM_DIM = 64,
    TM_LAYERS = 2,
    TM_HEADS = 4,
    TM_KV = 2,
    TM_HD = 16,
    TM_HID = 96,
    TM_VOCAB = 100
};

static void tm_build(gguf_writer *w, const tm_opts *o) {
    memset(w, 0, sizeof *w);
    w->alignment = 32;
    uint64_t rng = 42;
    char k[128];
    const char *a = o->arch;
    gw_kv_str(w, "general.architecture", a);
    gw_kv_str(w, "general.name", "tiny random");
#define AKEY(s) (snprintf(k, sizeof k, "%s.%s", a, s), k)
    gw_kv_u32(w, AKEY("embedding_length"), TM_DIM);
    gw_kv_u32(w, AKEY("block_count"), TM_LAYERS);
    gw_kv_u32(w, AKEY("attention.head_count"), TM_HEADS);
    gw_kv_u32(w, AKEY("attention.head_count_kv"), TM_KV);
    gw_kv_u32(w, AKEY("feed_forward_length"), TM_HID);
    gw_kv_u32(w, AKEY("context_length"), 256);
    gw_kv_u32(w, AKEY("rope.dimension_count"), TM_HD);
    gw_kv_f32(w, AKEY("rope.freq_base"), 50000.0f);
    gw_kv_f32(w, AKEY("attention.layer_norm_rms_epsilon"), 2e-5f);
    gw_kv_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gw_kv_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gw_kv_u32(w, "tokenizer.ggml.eot_token_id", 7);
#undef AKEY
    gw_add(w, "token_embd.weight", E2H_TYPE_Q8_0, TM_DIM, TM_VOCAB, &rng);
    gw_add(w, "output_norm.weight", o->norm_type, TM_DIM, 0, &rng);
    if (!o->tied) gw_add(w, "output.weight", E2H_TYPE_Q4_0, TM_DIM, TM_VOCAB, &rng);
    int qkv = !strcmp(a, "qwen2");
    for (int l = 0; l < TM_LAYERS; l++) {
        char n[96];
#define LNAME(s) (snprintf(n, sizeof n, "blk.%d.%s", l, s), n)
        gw_add(w, LNAME("attn_norm.weight"), o->norm_type, TM_DIM, 0, &rng);
        gw_add(w, LNAME("attn_q.weight"), E2H_TYPE_Q4_1, TM_DIM, TM_HEADS * TM_HD, &rng);
        gw_add(w, LNAME("attn_k.weight"), E2H_TYPE_Q4_1, TM_DIM, TM_KV * TM_HD, &rng);
        gw_add(w, LNAME("attn_v.weight"), E2H_TYPE_F16, TM_DIM, TM_KV * TM_HD, &rng);
        gw_add(w, LNAME("attn_output.weight"), E2H_TYPE_Q4_1, TM_HEADS * TM_HD, TM_DIM, &rng);
        gw_add(w, LNAME("ffn_norm.weight"), o->norm_type, TM_DIM, 0, &rng);
        gw_add(w, LNAME("ffn_gate.weight"), E2H_TYPE_Q4_1, TM_DIM, TM_HID, &rng);
        gw_add(w, LNAME("ffn_up.weight"), E2H_TYPE_Q4_1, TM_DIM, TM_HID, &rng);
        gw_add(w, LNAME("ffn_down.weight"), E2H_TYPE_Q8_0, TM_HID, TM_DIM, &rng);
        if (qkv) {
            gw_add(w, LNAME("attn_q.bias"), E2H_TYPE_F32, TM_HEADS * TM_HD, 0, &rng);
            gw_add(w, LNAME("attn_k.bias"), E2H_TYPE_F32, TM_KV * TM_HD, 0, &rng);
            gw_add(w, LNAME("attn_v.bias"), E2H_TYPE_F32, TM_KV * TM_HD, 0, &rng);
        }
#undef LNAME
    }
}

// ---------------------------------------------------------------- helpers

static char g_path[256];

static const char *tmp_gguf(void) {
    snprintf(g_path, sizeof g_path, "/tmp/e2h_test_gguf_model_%d.gguf", (int)getpid());
    return g_path;
}

// Loads path with the GGUF loader into a fresh model; returns the status (model freed unless
// out is non-NULL and the load succeeded).
static e2h_status load_raw(const char *path, struct e2h_model **out, char *err, size_t err_len) {
    struct e2h_model *m = calloc(1, sizeof *m);
    e2h_status st = model_load_gguf(m, path, err, err_len);
    if (st == E2H_OK && out) {
        *out = m;
        return st;
    }
    e2h_model_free(m);
    if (out) *out = NULL;
    return st;
}

// Writes w, loads it, and checks that loading fails with status `want` (or any error if
// want < 0) and a message containing the path and `needle`.
static int expect_fail(const gguf_writer *w, int want, const char *needle) {
    const char *p = tmp_gguf();
    gw_write(w, p);
    char err[512] = "";
    e2h_status st = load_raw(p, NULL, err, sizeof err);
    unlink(p);
    int ok = st != E2H_OK && (want < 0 || (int)st == want) && strstr(err, p) &&
             (!needle || strstr(err, needle));
    if (!ok)
        printf("  status %s, want %d; err='%s'; want '%s'\n", e2h_status_name(st), want, err,
               needle ? needle : "");
    return ok;
}

static int expect_ok(const gguf_writer *w) {
    const char *p = tmp_gguf();
    gw_write(w, p);
    char err[512] = "";
    e2h_status st = load_raw(p, NULL, err, sizeof err);
    unlink(p);
    if (st != E2H_OK) printf("  unexpected failure: %s\n", err);
    return st == E2H_OK;
}

static int tensor_is(const e2h_tensor *t, const gw_tensor *g) {
    return g && t->type == g->type && t->n_in == (int64_t)g->ne[0] &&
           t->n_out == (int64_t)g->ne[1] && memcmp(t->data, g->data, g->nbytes) == 0;
}

static int vec_is(const float *v, const gw_tensor *g) {
    if (!v || !g) return 0;
    for (uint64_t i = 0; i < g->ne[0]; i++) {
        float want;
        if (g->type == E2H_TYPE_F32) {
            memcpy(&want, g->data + 4 * i, 4);
        } else {
            uint16_t h;
            memcpy(&h, g->data + 2 * i, 2);
            want = t_f16_to_f32(h);
        }
        if (v[i] != want) return 0;
    }
    return 1;
}

// Every tensor of the loaded model is the one written (bytes for matrices, values for norms).
static int model_matches(const struct e2h_model *m, gguf_writer *w) {
    int ok = tensor_is(&m->tok_embd, gw_find(w, "token_embd.weight")) &&
             vec_is(m->output_norm, gw_find(w, "output_norm.weight"));
    gw_tensor *out = gw_find(w, "output.weight");
    ok = ok && tensor_is(&m->output, out ? out : gw_find(w, "token_embd.weight"));
    for (int l = 0; l < m->cfg.n_layers && ok; l++) {
        const e2h_layer *L = &m->layers[l];
        char n[96];
#define G(s) (snprintf(n, sizeof n, "blk.%d.%s", l, s), gw_find(w, n))
        ok = vec_is(L->attn_norm, G("attn_norm.weight")) &&
             vec_is(L->ffn_norm, G("ffn_norm.weight")) && tensor_is(&L->wq, G("attn_q.weight")) &&
             tensor_is(&L->wk, G("attn_k.weight")) && tensor_is(&L->wv, G("attn_v.weight")) &&
             tensor_is(&L->wo, G("attn_output.weight")) &&
             tensor_is(&L->w_gate, G("ffn_gate.weight")) &&
             tensor_is(&L->w_up, G("ffn_up.weight")) && tensor_is(&L->w_down, G("ffn_down.weight"));
        if (ok && m->cfg.has_qkv_bias)
            ok = vec_is(L->bq, G("attn_q.bias")) && vec_is(L->bk, G("attn_k.bias")) &&
                 vec_is(L->bv, G("attn_v.bias"));
#undef G
    }
    return ok;
}

// ---------------------------------------------------------------- valid files

TEST(llama_tiny_loads) {
    gguf_writer w;
    tm_opts o = {"llama", 1, E2H_TYPE_F32};
    tm_build(&w, &o);
    gw_write(&w, tmp_gguf());
    char err[512] = "";
    struct e2h_model *m = NULL;
    e2h_status st = load_raw(g_path, &m, err, sizeof err);
    unlink(g_path);
    CHECKF(st == E2H_OK, "%s", err);
    if (m) {
        const e2h_config *c = &m->cfg;
        CHECK(!strcmp(c->arch, "LlamaForCausalLM"));
        CHECK(c->dim == TM_DIM && c->n_layers == TM_LAYERS && c->n_heads == TM_HEADS);
        CHECK(c->n_kv_heads == TM_KV && c->head_dim == TM_HD && c->hidden_dim == TM_HID);
        CHECK(c->vocab_size == TM_VOCAB && c->max_ctx == 256);
        CHECK(c->rope_theta == 50000.0f && c->norm_eps == 2e-5f);
        CHECK(c->rope_interleaved == 1 && c->rope_scaling == E2H_ROPE_NONE);
        CHECK(c->tie_embeddings == 1 && c->has_qkv_bias == 0);
        CHECK(c->bos_id == 1 && c->n_eos == 2 && c->eos_ids[0] == 2 && c->eos_ids[1] == 7);
        CHECK(m->output.data == m->tok_embd.data);
        CHECK(model_matches(m, &w));
        CHECK(m->weight_type == E2H_TYPE_Q4_1);
        CHECK(!strcmp(m->source, "gguf"));
        CHECK(m->gguf != NULL);
        int64_t want_params =
            (int64_t)TM_VOCAB * TM_DIM + TM_DIM +
            TM_LAYERS * (2 * TM_DIM + 2 * (int64_t)TM_DIM * TM_HEADS * TM_HD +
                         2 * (int64_t)TM_DIM * TM_KV * TM_HD + 3 * (int64_t)TM_DIM * TM_HID);
        CHECKF(m->n_params == want_params, "%lld vs %lld", (long long)m->n_params,
               (long long)want_params);
        e2h_model_free(m);
    }
    gw_free(&w);
}

TEST(qwen2_untied_f16_norms_loads) {
    gguf_writer w;
    tm_opts o = {"qwen2", 0, E2H_TYPE_F16};
    tm_build(&w, &o);
    gw_kv_del(&w, "qwen2.attention.layer_norm_rms_epsilon");
    gw_write(&w, tmp_gguf());
    char err[512] = "";
    struct e2h_model *m = NULL;
    e2h_status st = load_raw(g_path, &m, err, sizeof err);
    unlink(g_path);
    CHECKF(st == E2H_OK, "%s", err);
    if (m) {
        CHECK(!strcmp(m->cfg.arch, "Qwen2ForCausalLM"));
        CHECK(m->cfg.rope_interleaved == 0 && m->cfg.has_qkv_bias == 1);
        CHECK(m->cfg.tie_embeddings == 0 && m->output.data != m->tok_embd.data);
        CHECK(m->output.type == E2H_TYPE_Q4_0);
        CHECK(m->cfg.norm_eps == 1e-6f); // qwen2 default when the key is absent
        CHECK(model_matches(m, &w));
        e2h_model_free(m);
    }
    gw_free(&w);
}

// rope scaling: linear via keys, Llama 3 via rope_freqs.weight
TEST(rope_scaling_variants) {
    gguf_writer w;
    tm_opts o = {"llama", 1, E2H_TYPE_F32};
    tm_build(&w, &o);
    gw_kv_str(&w, "llama.rope.scaling.type", "linear");
    gw_kv_f32(&w, "llama.rope.scaling.factor", 4.0f);
    gw_write(&w, tmp_gguf());
    char err[512] = "";
    struct e2h_model *m = NULL;
    CHECKF(load_raw(g_path, &m, err, sizeof err) == E2H_OK, "%s", err);
    if (m) {
        CHECK(m->cfg.rope_scaling == E2H_ROPE_LINEAR && m->cfg.rope_factor == 4.0f);
        e2h_model_free(m);
    }
    gw_kv_str(&w, "llama.rope.scaling.type", "yarn");
    CHECK(expect_fail(&w, E2H_ERR_UNSUPPORTED, "llama.rope.scaling.type"));
    gw_kv_del(&w, "llama.rope.scaling.type");
    gw_kv_del(&w, "llama.rope.scaling.factor");

    // Llama 3 divisors (factor 8, low 1, high 4, original context 8192) computed here in
    // double from the published formula, for theta = 500000 and head_dim 16
    gw_kv_f32(&w, "llama.rope.freq_base", 500000.0f);
    uint64_t rng = 1;
    gw_add(&w, "rope_freqs.weight", E2H_TYPE_F32, TM_HD / 2, 0, &rng);
    float *fr = (float *)gw_find(&w, "rope_freqs.weight")->data;
    for (int i = 0; i < TM_HD / 2; i++) {
        double freq = pow(500000.0, -2.0 * i / TM_HD), wl = 2 * M_PI / freq, f;
        if (wl < 8192.0 / 4)
            f = 1;
        else if (wl > 8192.0)
            f = 8;
        else {
            double s = (8192.0 / wl - 1) / 3;
            f = 1 / ((1 - s) / 8 + s);
        }
        fr[i] = (float)f;
    }
    gw_write(&w, g_path);
    CHECKF(load_raw(g_path, &m, err, sizeof err) == E2H_OK, "%s", err);
    if (m) {
        CHECK(m->cfg.rope_scaling == E2H_ROPE_LLAMA3 && m->cfg.rope_factor == 8.0f);
        CHECK(m->cfg.rope_orig_max_pos == 8192 && m->cfg.rope_high_freq_factor == 4.0f);
        e2h_model_free(m);
    }
    fr[TM_HD / 2 - 2] *= 1.5f; // not the Llama 3 shape: refuse rather than run a wrong rope
    CHECK(expect_fail(&w, E2H_ERR_UNSUPPORTED, "rope_freqs.weight"));
    unlink(g_path);
    gw_free(&w);
}

// The public entry point: validation, rope init and model id on top of the loader.
TEST(public_load_tiny) {
    gguf_writer w;
    tm_opts o = {"llama", 1, E2H_TYPE_F32};
    tm_build(&w, &o);
    gw_write(&w, tmp_gguf());
    gw_free(&w);
    char err[512] = "";
    e2h_model *m = NULL;
    e2h_status st = e2h_model_load(g_path, NULL, &m, err, sizeof err);
    CHECKF(st == E2H_OK, "%s", err);
    if (m) {
        e2h_model_info info;
        e2h_model_get_info(m, &info);
        CHECK(!strcmp(info.source, "gguf") && !strcmp(info.weight_type, "q4_1"));
        CHECK(info.vocab_size == TM_VOCAB && info.bos_id == 1 && info.eos_id == 2);
        e2h_model_free(m);
    }
    e2h_load_opts lo = {.quant = "q8_0"};
    st = e2h_model_load(g_path, &lo, &m, err, sizeof err);
    CHECKF(st == E2H_OK, "%s", err);
    if (m) {
        CHECK(m->layers[1].wq.type == E2H_TYPE_Q8_0);
        e2h_model_free(m);
    }
    unlink(g_path);
}

// ---------------------------------------------------------------- corrupt files

TEST(missing_and_bad_keys) {
    gguf_writer w;
    tm_opts o = {"llama", 1, E2H_TYPE_F32};
    tm_build(&w, &o);
    gw_kv_del(&w, "llama.block_count");
    CHECK(expect_fail(&w, E2H_ERR_FORMAT, "llama.block_count"));
    gw_kv_str(&w, "llama.block_count", "two");
    CHECK(expect_fail(&w, E2H_ERR_FORMAT, "llama.block_count"));
    gw_kv_u32(&w, "llama.block_count", TM_LAYERS);

    gw_kv_str(&w, "general.architecture", "gpt2");
    CHECK(expect_fail(&w, E2H_ERR_UNSUPPORTED, "general.architecture"));
    gw_kv_del(&w, "general.architecture");
    CHECK(expect_fail(&w, E2H_ERR_FORMAT, "general.architecture"));
    gw_kv_str(&w, "general.architecture", "llama");

    gw_kv_u32(&w, "llama.attention.head_count_kv", 3);
    CHECK(expect_fail(&w, -1, "head_count_kv"));
    gw_kv_u32(&w, "llama.attention.head_count_kv", TM_KV);

    // dimension overflow: values that would overflow int / products of shapes
    gw_kv_u64(&w, "llama.embedding_length", 1ull << 40);
    CHECK(expect_fail(&w, E2H_ERR_FORMAT, "llama.embedding_length"));
    gw_kv_u64(&w, "llama.feed_forward_length", 0);
    gw_kv_u32(&w, "llama.embedding_length", TM_DIM);
    CHECK(expect_fail(&w, E2H_ERR_FORMAT, "llama.feed_forward_length"));
    gw_kv_u32(&w, "llama.feed_forward_length", TM_HID);

    gw_kv_u32(&w, "llama.rope.dimension_count", TM_HD / 2);
    CHECK(expect_fail(&w, E2H_ERR_UNSUPPORTED, "rope.dimension_count"));
    gw_kv_u32(&w, "llama.rope.dimension_count", TM_HD);

    gw_kv_f32(&w, "llama.attention.layer_norm_rms_epsilon", -1.0f);
    CHECK(expect_fail(&w, E2H_ERR_FORMAT, "layer_norm_rms_epsilon"));
    gw_kv_f32(&w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);

    gw_kv_u32(&w, "tokenizer.ggml.eos_token_id", TM_VOCAB);
    CHECK(expect_fail(&w, E2H_ERR_FORMAT, "tokenizer.ggml.eos_token_id"));
    gw_kv_u32(&w, "tokenizer.ggml.eos_token_id", 2);

    gw_kv_u32(&w, "llama.vocab_size", TM_VOCAB + 1);
    CHECK(expect_fail(&w, E2H_ERR_SHAPE, "llama.vocab_size"));
    gw_kv_u32(&w, "llama.vocab_size", TM_VOCAB);
    CHECK(expect_ok(&w)); // sanity: the restored file loads again
    gw_free(&w);
}

TEST(missing_tensors_and_wrong_shapes) {
    gguf_writer w;
    tm_opts o = {"llama", 1, E2H_TYPE_F32};
    static const char *const names[] = {"token_embd.weight", "output_norm.weight",
                                        "blk.1.ffn_up.weight", "blk.0.attn_norm.weight",
                                        "blk.1.attn_output.weight"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        tm_build(&w, &o);
        gw_del(&w, names[i]);
        CHECKF(expect_fail(&w, E2H_ERR_SHAPE, names[i]), "%s", names[i]);
        gw_free(&w);
    }
    // wrong n_out, wrong n_in, 3-D, norm of the wrong length
    tm_build(&w, &o);
    gw_find(&w, "blk.0.attn_k.weight")->ne[1] = TM_HEADS * TM_HD; // data size changes too
    gw_find(&w, "blk.0.attn_k.weight")->nbytes = 0;
    CHECK(expect_fail(&w, -1, "blk.0.attn_k.weight"));
    gw_free(&w);

    tm_build(&w, &o);
    gw_tensor *t = gw_find(&w, "blk.1.ffn_down.weight"); // same bytes, transposed shape
    t->ne[0] = TM_DIM;
    t->ne[1] = (uint64_t)(t->nbytes / t_row_bytes(E2H_TYPE_Q8_0, TM_DIM));
    CHECK(expect_fail(&w, E2H_ERR_SHAPE, "blk.1.ffn_down.weight"));
    gw_free(&w);

    tm_build(&w, &o);
    t = gw_find(&w, "blk.0.ffn_gate.weight");
    t->n_dims = 3;
    t->ne[1] = TM_HID / 2;
    t->ne[2] = 2;
    CHECK(expect_fail(&w, E2H_ERR_SHAPE, "blk.0.ffn_gate.weight"));
    gw_free(&w);

    tm_build(&w, &o);
    t = gw_find(&w, "blk.1.ffn_norm.weight");
    t->ne[0] = TM_DIM / 2;
    t->nbytes /= 2;
    CHECK(expect_fail(&w, E2H_ERR_SHAPE, "blk.1.ffn_norm.weight"));
    gw_free(&w);

    // qwen2 without its biases
    tm_opts q = {"qwen2", 1, E2H_TYPE_F32};
    tm_build(&w, &q);
    gw_del(&w, "blk.1.attn_v.bias");
    CHECK(expect_fail(&w, E2H_ERR_SHAPE, "blk.1.attn_v.bias"));
    gw_free(&w);
}

TEST(unsupported_types) {
    gguf_writer w;
    tm_opts o = {"llama", 1, E2H_TYPE_F32};
    // unknown type id: the reader rejects it, naming the tensor
    tm_build(&w, &o);
    gw_find(&w, "blk.0.attn_q.weight")->type = 99;
    CHECK(expect_fail(&w, E2H_ERR_FORMAT, "blk.0.attn_q.weight"));
    gw_free(&w);
    // a quantized norm
    tm_build(&w, &o);
    gw_del(&w, "blk.1.attn_norm.weight");
    uint64_t rng = 3;
    gw_add(&w, "blk.1.attn_norm.weight", E2H_TYPE_Q8_0, TM_DIM, 0, &rng);
    CHECK(expect_fail(&w, E2H_ERR_UNSUPPORTED, "blk.1.attn_norm.weight"));
    gw_free(&w);
    // a type the reader knows but the kernels do not support (if there is one)
    int unsup = -1;
    for (int ty = 0; ty < E2H_TYPE_COUNT && unsup < 0; ty++) {
        const e2h_type_traits *tr = kern_type_traits_get(ty);
        if (tr && !tr->supported && tr->block_size == 32) unsup = ty;
    }
    if (unsup >= 0) {
        tm_build(&w, &o);
        gw_tensor *t = gw_find(&w, "blk.0.ffn_up.weight");
        t->type = unsup;
        size_t nb = kern_type_row_size(unsup, TM_DIM) * TM_HID;
        t->data = realloc(t->data, nb);
        memset(t->data, 0, nb);
        t->nbytes = nb;
        CHECK(expect_fail(&w, E2H_ERR_UNSUPPORTED, "blk.0.ffn_up.weight"));
        gw_free(&w);
    }
}

TEST(misaligned_data) {
    gguf_writer w;
    tm_opts o = {"llama", 1, E2H_TYPE_F32};
    tm_build(&w, &o);
    w.alignment = 2; // legal for the reader, but leaves tensors 2 bytes off
    w.misalign = 1;
    CHECK(expect_fail(&w, -1, "misaligned"));
    w.misalign = 0;
    w.alignment = 8;
    CHECK(expect_ok(&w)); // the same tensors at aligned offsets load
    gw_free(&w);
}

// Truncated at every interesting point and with random byte flips in the header: never a
// crash, always an error naming the file.
TEST(truncated_and_fuzzed) {
    gguf_writer w;
    tm_opts o = {"qwen2", 0, E2H_TYPE_F32};
    tm_build(&w, &o);
    gguf_buf b = {0};
    gw_serialize(&w, &b);
    gw_free(&w);
    const char *p = tmp_gguf();
    char err[512];
    int bad = 0;
    for (size_t cut = 0; cut < b.n; cut += (cut < 4096 ? 7 : 997)) {
        write_bytes(p, b.p, cut);
        err[0] = 0;
        if (load_raw(p, NULL, err, sizeof err) == E2H_OK || !strstr(err, p)) {
            if (bad++ < 3) printf("  cut %zu: '%s'\n", cut, err);
        }
    }
    CHECK(bad == 0);
    // header-region byte flips: any outcome but a crash; errors must name the file
    uint64_t rng = 7;
    uint8_t *c = malloc(b.n);
    int n_err = 0;
    for (int it = 0; it < 300; it++) {
        memcpy(c, b.p, b.n);
        for (int k = 0; k < 4; k++)
            c[th_rng_next(&rng) % 3000] ^= (uint8_t)(1u << (th_rng_next(&rng) % 8));
        write_bytes(p, c, b.n);
        err[0] = 0;
        struct e2h_model *m = NULL;
        e2h_status st = load_raw(p, &m, err, sizeof err);
        if (st != E2H_OK) {
            n_err++;
            CHECKF(strstr(err, p) != NULL, "'%s'", err);
        } else {
            e2h_model_free(m);
        }
    }
    CHECK(n_err > 0);
    free(c);
    free(b.p);
    unlink(p);
    // a missing file is an I/O error
    err[0] = 0;
    CHECK(load_raw("/nonexistent/x.gguf", NULL, err, sizeof err) == E2H_ERR_IO);
    CHECK(strstr(err, "/nonexistent/x.gguf") != NULL);
}

// ---------------------------------------------------------------- the default model

TEST(default_model_smollm2) {
    const char *path = "weights/SmolLM2-135M-Instruct.Q4_1.gguf";
    char err[512] = "";
    struct e2h_model *m = NULL;
    e2h_status st = load_raw(path, &m, err, sizeof err);
    CHECKF(st == E2H_OK, "%s", err);
    if (!m) return;
    const e2h_config *c = &m->cfg;
    CHECK(!strcmp(c->arch, "LlamaForCausalLM"));
    CHECK(c->dim == 576 && c->n_layers == 30 && c->n_heads == 9 && c->n_kv_heads == 3);
    CHECK(c->head_dim == 64 && c->hidden_dim == 1536 && c->vocab_size == 49152);
    CHECK(c->max_ctx == 8192 && c->rope_theta == 100000.0f && c->norm_eps == 1e-5f);
    CHECK(c->tie_embeddings == 1 && c->rope_interleaved == 1 && c->has_qkv_bias == 0);
    CHECK(c->bos_id == 1 && c->n_eos == 1 && c->eos_ids[0] == 2);
    CHECK(m->tok_embd.type == E2H_TYPE_Q8_0 && m->layers[29].w_down.type == E2H_TYPE_Q4_1);
    CHECK(m->weight_type == E2H_TYPE_Q4_1);
    CHECKF(m->n_params > 134000000 && m->n_params < 136000000, "%lld", (long long)m->n_params);
    e2h_model_free(m);
}

int main(void) {
    RUN(llama_tiny_loads);
    RUN(qwen2_untied_f16_norms_loads);
    RUN(rope_scaling_variants);
    RUN(public_load_tiny);
    RUN(missing_and_bad_keys);
    RUN(missing_tensors_and_wrong_shapes);
    RUN(unsupported_types);
    RUN(misaligned_data);
    RUN(truncated_and_fuzzed);
    if (access("weights/SmolLM2-135M-Instruct.Q4_1.gguf", R_OK) == 0)
        RUN(default_model_smollm2);
    else
        printf("skipped default_model_smollm2: weights/SmolLM2-135M-Instruct.Q4_1.gguf absent "
               "(make model)\n");
    return TEST_SUMMARY();
}
