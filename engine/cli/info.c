// engine/cli/info.c — `e2h info -m MODEL [--json]`.
#include <string.h>

#include "cli.h"

static const char *info_usage =
    "usage: e2h info -m MODEL [--json] [--quant TYPE]\n"
    "Prints the architecture, shapes, weight type, parameter count and memory of a model.\n"
    "  --json              one JSON object instead of text\n";

int cli_info(int argc, char **argv) {
    cli_model_opts o;
    cli_model_opts_init(&o);
    int json = 0;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_opts_parse(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s%s", info_usage, CLI_MODEL_OPTS_HELP);
            return 0;
        } else return cli_fail("info: unknown option '%s' (see e2h info --help)", argv[i]);
    }
    e2h_model *m;
    if (cli_open(&o, &m, NULL)) return 2;
    e2h_model_info mi;
    e2h_model_get_info(m, &mi);
    const e2h_tokenizer *t = e2h_model_tokenizer(m);
    size_t kv_per_tok = (size_t)mi.n_layers * 2 * mi.n_kv_heads * mi.head_dim * sizeof(float);
    const char *kern = e2h_kernels_resolve(o.kernels);
    char amx_why[160];
    if (!kern) {
        e2h_model_free(m);
        return cli_fail("info: --kernels '%s' is unknown or not supported by this CPU: %s", o.kernels,
                        e2h_kernels_why_not(o.kernels, amx_why, sizeof amx_why));
    }
    e2h_kernels_why_not(NULL, amx_why, sizeof amx_why); // why auto does not use AMX ("" if it does)
    if (json) {
        printf("{\"arch\": \"%s\", \"source\": \"%s\", \"weight_type\": \"%s\", \"dim\": %d, "
               "\"n_layers\": %d, \"n_heads\": %d, \"n_kv_heads\": %d, \"head_dim\": %d, "
               "\"hidden_dim\": %d, \"vocab_size\": %d, \"max_ctx\": %d, \"rope_theta\": %g, "
               "\"norm_eps\": %g, \"tie_embeddings\": %s, \"qkv_bias\": %s, \"bos_id\": %d, "
               "\"eos_id\": %d, \"n_params\": %lld, \"weight_bytes\": %zu, "
               "\"kv_bytes_per_token_f32\": %zu, \"tokenizer\": %s, \"packed_bytes\": %zu, "
               "\"kernels\": \"%s\", \"amx_why_not\": ",
               mi.arch, mi.source, mi.weight_type, mi.dim, mi.n_layers, mi.n_heads, mi.n_kv_heads,
               mi.head_dim, mi.hidden_dim, mi.vocab_size, mi.max_ctx, mi.rope_theta, mi.norm_eps,
               mi.tie_embeddings ? "true" : "false", mi.has_qkv_bias ? "true" : "false", mi.bos_id,
               mi.eos_id, (long long)mi.n_params, mi.weight_bytes, kv_per_tok,
               t ? "true" : "false", mi.packed_bytes, kern);
        if (amx_why[0]) cli_json_string(stdout, amx_why, strlen(amx_why));
        else printf("null");
        printf(", \"chat_system\": ");
        const char *sys = e2h_model_chat_system(m);
        if (sys) cli_json_string(stdout, sys, strlen(sys));
        else printf("null");
        printf("}\n");
    } else {
        printf("architecture   %s (%s)\n", mi.arch, mi.source);
        printf("weights        %s, %.2f M parameters, %.1f MiB as stored (mmapped)\n", mi.weight_type,
               mi.n_params / 1e6, mi.weight_bytes / 1048576.0);
        if (mi.packed_bytes)
            printf("               + %.1f MiB row-interleaved copy for the SIMD kernels (--no-repack: none)\n",
                   mi.packed_bytes / 1048576.0);
        if (e2h_model_chat_system(m)) printf("chat system    \"%s\" (template default)\n", e2h_model_chat_system(m));
        if (mi.n_quant_fallback)
            printf("               (%d matrices as q5_0: rows not a multiple of the 256-value "
                   "k-quant super-block)\n", mi.n_quant_fallback);
        printf("layers         %d x (dim %d, heads %d, kv heads %d, head dim %d, ffn %d)\n",
               mi.n_layers, mi.dim, mi.n_heads, mi.n_kv_heads, mi.head_dim, mi.hidden_dim);
        printf("vocab          %d%s, bos %d, eos %d, tokenizer: %s\n", mi.vocab_size,
               mi.tie_embeddings ? " (tied embeddings)" : "", mi.bos_id, mi.eos_id,
               t ? "yes" : "no");
        printf("context        %d tokens, rope theta %g, rms eps %g%s\n", mi.max_ctx, mi.rope_theta,
               mi.norm_eps, mi.has_qkv_bias ? ", q/k/v bias" : "");
        printf("kv cache       %.1f KiB per token (f32), %.1f MiB for the full context\n",
               kv_per_tok / 1024.0, kv_per_tok * (double)mi.max_ctx / 1048576.0);
        printf("kernels        %s%s\n", kern,
               !strcmp(kern, "avx512bf16") && !strcmp(mi.weight_type, "bf16")
                   ? " (bf16 weights: vdpbf16ps, activations rounded to bf16)" : "");
        if (amx_why[0]) printf("amx            not used: %s\n", amx_why);
        else if (!strcmp(kern, "amx")) printf("amx            yes: int8 tiles for q4_0/q4_1/q8_0 batches of 16+ tokens\n");
        else printf("amx            available, not chosen (--kernels %s)\n", kern);
    }
    e2h_model_free(m);
    return 0;
}
