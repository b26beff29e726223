// engine/cli/logits.c — `e2h logits -m MODEL --ids 1,2,3 -o out.npy`: float32 logits of every
// position as a .npy array of shape (n_tokens, vocab).
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *logits_usage =
    "usage: e2h logits -m MODEL --ids 1,2,3 -o OUT.npy [options]\n"
    "Writes the float32 logits of every position, shape (n_tokens, vocab), as .npy.\n"
    "  --ids LIST          comma-separated token ids (no BOS is added)\n"
    "  -o FILE             output .npy path\n";

static int logits_write_npy(const char *path, const float *a, int32_t rows, int32_t cols) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    char hdr[128];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }",
                     rows, cols);
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    unsigned short hlen = (unsigned short)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fwrite(&hlen, 2, 1, f);
    fwrite(hdr, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    size_t w = fwrite(a, sizeof(float), (size_t)rows * cols, f);
    int bad = ferror(f) || w != (size_t)rows * cols;
    return fclose(f) || bad ? -1 : 0;
}

int cli_logits(int argc, char **argv) {
    cli_model_opts o;
    cli_model_opts_init(&o);
    const char *ids_s = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_opts_parse(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        if (!strcmp(argv[i], "--ids") && i + 1 < argc) ids_s = argv[++i];
        else if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s%s", logits_usage, CLI_MODEL_OPTS_HELP);
            return 0;
        } else return cli_fail("logits: unknown option or missing value '%s' (see e2h logits --help)", argv[i]);
    }
    if (!ids_s || !out) return cli_fail("logits: --ids and -o are required");
    int32_t *ids, n;
    if (cli_parse_ids(ids_s, &ids, &n)) return 2;
    e2h_model *m;
    e2h_engine *e;
    if (cli_open(&o, &m, &e)) { free(ids); return 2; }
    e2h_model_info mi;
    e2h_model_get_info(m, &mi);
    float *logits = malloc((size_t)n * mi.vocab_size * sizeof(float));
    int rc = 0;
    if (!logits) rc = cli_fail("out of memory for %d x %d logits", n, mi.vocab_size);
    e2h_status st = rc ? E2H_OK : e2h_eval_logits(e, ids, n, logits);
    if (!rc && st) rc = cli_fail("%s (%s)", e2h_engine_last_error(e), e2h_status_name(st));
    if (!rc && logits_write_npy(out, logits, n, mi.vocab_size)) rc = cli_fail("%s: cannot write", out);
    free(logits);
    free(ids);
    e2h_engine_free(e);
    e2h_model_free(m);
    return rc;
}
