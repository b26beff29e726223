// engine/cli/main.c — `e2h CMD ...`: dispatch to one file per subcommand.
#include <stdio.h>
#include <string.h>

#include "cli.h"

// The version of the library the CLI was built with (E2H_VERSION_* from e2h.h when the
// header defines them).
#if defined(E2H_VERSION_MAJOR) && defined(E2H_VERSION_MINOR) && defined(E2H_VERSION_PATCH)
#define CLI_STR2(x) #x
#define CLI_STR(x) CLI_STR2(x)
#define CLI_VERSION CLI_STR(E2H_VERSION_MAJOR) "." CLI_STR(E2H_VERSION_MINOR) "." CLI_STR(E2H_VERSION_PATCH)
#else
#define CLI_VERSION "0.1.0"
#endif

static int cli_version(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: e2h version   (or e2h --version): prints \"e2h MAJOR.MINOR.PATCH\"\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "e2h version: unexpected argument '%s'\n", argv[1]);
        return 2;
    }
    printf("e2h %s\n", CLI_VERSION);
    return 0;
}

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} cli_cmds[] = {
    {"info", cli_info, "show a model's architecture, shapes, dtypes, parameters, memory"},
    {"logits", cli_logits, "write the float32 logits of every position to a .npy file"},
    {"generate", cli_generate, "generate a continuation (or K samples through the shared cache)"},
    {"tokenize", cli_tokenize, "print the token ids of a text as a JSON array"},
    {"detokenize", cli_detokenize, "print the text of comma-separated token ids"},
    {"answer", cli_answer, "extract a final answer, or check two answers for equivalence"},
    {"report", cli_report, "accuracy per method x N x level (easy/hard) from results JSONL"},
    {"search", cli_search, "solve a problems file by search / re-ranking (results JSONL)"},
    {"bench", cli_bench, "prefill and decode tokens/s (llama-bench style)"},
    {"version", cli_version, "print the version (also e2h --version)"},
    {"score", cli_score, "PRM step scores of given solutions (JSONL in, JSONL out)"},
    {"serve", cli_serve, "OpenAI-compatible HTTP server (continuous batching, PRM endpoints)"},
    {"label", cli_label, "easy-to-hard job stage 2: automatic step labels + hidden-state features"},
};

static void cli_usage(FILE *f) {
    fprintf(f, "usage: e2h CMD [options]   (e2h CMD --help for the options of CMD)\n\n"
               "e2h — an inference engine for easy-to-hard reasoning (policy sampling and PRM\n"
               "scoring over one paged KV cache).\n\ncommands:\n");
    for (size_t i = 0; i < sizeof cli_cmds / sizeof cli_cmds[0]; i++)
        fprintf(f, "  %-11s %s\n", cli_cmds[i].name, cli_cmds[i].help);
    fprintf(f, "\nMODEL is a Hugging Face model directory (config.json + safetensors) or a .gguf file.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        cli_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        cli_usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) return cli_version(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof cli_cmds / sizeof cli_cmds[0]; i++)
        if (!strcmp(argv[1], cli_cmds[i].name)) return cli_cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "e2h: unknown command '%s'\n\n", argv[1]);
    cli_usage(stderr);
    return 2;
}
