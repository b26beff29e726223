// engine/cli/cli.h — shared pieces of the e2h command-line tool: subcommand entry points and
// small argument/output helpers. Each subcommand lives in its own file and returns the
// process exit code: 0 success, 2 user error (bad flag, bad file, bad input), 1 internal.
#ifndef E2H_CLI_H
#define E2H_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "../../include/e2h.h"

int cli_info(int argc, char **argv);
int cli_logits(int argc, char **argv);
int cli_generate(int argc, char **argv);
int cli_tokenize(int argc, char **argv);
int cli_detokenize(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_answer(int argc, char **argv);
int cli_report(int argc, char **argv);
int cli_search(int argc, char **argv);
int cli_score(int argc, char **argv);
int cli_label(int argc, char **argv);
int cli_serve(int argc, char **argv);

// Parses "1,2,3" into a malloc'd array. Returns 0, or -1 with a message on stderr.
int cli_parse_ids(const char *s, int32_t **ids, int32_t *n);
// Strict number parsing for flag values; print "<flag>: ..." on error and return -1.
int cli_parse_int(const char *flag, const char *v, long lo, long hi, long *out);
int cli_parse_float(const char *flag, const char *v, double lo, double hi, double *out);
// Writes s as a JSON string literal (quoted, escaped; invalid UTF-8 bytes become U+FFFD).
void cli_json_string(FILE *f, const char *s, size_t len);
// Options shared by every command that loads a model.
typedef struct {
    const char *model;    // -m
    const char *quant;    // --quant q8_0|q4_0|q4_k
    int n_threads;        // -t
    double kv_mem_gib;    // --kv-mem
    int kv_f16;           // --kv-f16
    int batch;            // --batch (tokens per forward pass)
    const char *kernels;  // --kernels auto|ref|avx2|avx512|avx512bf16|amx|amx-emu
    int no_repack;        // --no-repack
    int feature_layer;    // e2h_engine_opts.feature_layer (set by commands that read it, e.g.
                          // e2h label --feature-layer, or from a --prm-head that reads a
                          // layer; not a shared flag)
} cli_model_opts;
#define CLI_MODEL_OPTS_HELP                                                                   \
    "  -m MODEL            model directory or .gguf file (required)\n"                         \
    "  --quant TYPE        quantize weights on load: q8_0, q4_0, q4_k\n"                       \
    "  -t N                threads (default 1)\n"                                              \
    "  --kv-mem GIB        KV cache budget in GiB (default: one full context)\n"               \
    "  --kv-f16            store the KV cache in f16\n"                                        \
    "  --batch N           tokens per forward pass (default 512)\n"                            \
    "  --kernels K         auto, ref, avx2, avx512, avx512bf16, amx (int8 tiles; auto where the\n"   \
    "                      CPU has AMX: e2h info says), amx-emu (tiles emulated: slow, tests)\n"  \
    "  --no-repack         do not make the row-interleaved copy of q4_0/q4_1/q8_0 weights\n"
void cli_model_opts_init(cli_model_opts *o);
// If argv[*i] is one of the shared options, consumes it (and its value) and returns 1;
// returns 0 if it is not; -1 on a bad value (message printed).
int cli_model_opts_parse(cli_model_opts *o, int argc, char **argv, int *i);
// Loads the model and creates an engine; prints the error and returns 2 on failure.
int cli_open(const cli_model_opts *o, e2h_model **m, e2h_engine **e);
// Creates an engine over a loaded model (cli_open's second half: e.g. after loading a PRM head
// whose feature layer the engine must keep); prints the error and returns 2 on failure.
int cli_engine(const cli_model_opts *o, const e2h_model *m, e2h_engine **e);

// Reads a text file ("-" = stdin) into a NUL-terminated malloc'd buffer. A directory, a
// symlink loop, a read error or (unless allow_nul) a NUL byte inside the text is an error
// naming the file: returns 2 with the message printed; 0 on success.
int cli_read_text(const char *path, int allow_nul, char **out, size_t *len);

// Prints "e2h: <message>" and returns 2.
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
