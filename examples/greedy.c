// examples/greedy.c — a minimal embedder of libe2h: loads a model, feeds a prompt (text through
// the model's tokenizer, or token ids), and prints the greedy continuation. Uses only the
// public API (e2h.h); build it against an installed e2h with pkg-config:
//
//   shared: cc greedy.c $(pkg-config --cflags --libs e2h) -o greedy
//   static: cc greedy.c $(pkg-config --cflags e2h) $(pkg-config --static --libs e2h |
//           sed "s|-le2h|$(pkg-config --variable=libdir e2h)/libe2h.a|") -o greedy
//
// usage: greedy MODEL (--prompt TEXT | --ids 1,2,3) [-n N] [--no-eos]
// Prints "e2h VERSION", "ids: ..." (the continuation) and, with a tokenizer, "text: ...".
#include <e2h.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROMPT 4096

static int parse_ids(const char *s, int32_t *ids, int32_t cap) {
    int32_t n = 0;
    while (*s && n < cap) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > INT32_MAX) return -1;
        ids[n++] = (int32_t)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *ids_arg = NULL;
    int n_gen = 16, no_eos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--prompt") && i + 1 < argc) prompt = argv[++i];
        else if (!strcmp(argv[i], "--ids") && i + 1 < argc) ids_arg = argv[++i];
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) n_gen = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-eos")) no_eos = 1;
        else if (!model_path) model_path = argv[i];
        else { fprintf(stderr, "greedy: unexpected argument '%s'\n", argv[i]); return 2; }
    }
    if (!model_path || (!prompt == !ids_arg) || n_gen <= 0) {
        fprintf(stderr, "usage: greedy MODEL (--prompt TEXT | --ids 1,2,3) [-n N] [--no-eos]\n");
        return 2;
    }
    printf("e2h %s (header %d.%d.%d)\n", e2h_version(), E2H_VERSION_MAJOR, E2H_VERSION_MINOR,
           E2H_VERSION_PATCH);

    char err[512] = "";
    e2h_model *m = NULL;
    e2h_status st = e2h_model_load(model_path, NULL, &m, err, sizeof err);
    if (st) { fprintf(stderr, "greedy: %s (%s)\n", err, e2h_status_name(st)); return 1; }
    const e2h_tokenizer *tok = e2h_model_tokenizer(m);

    static int32_t ids[MAX_PROMPT];
    int32_t n = 0;
    if (ids_arg) {
        n = parse_ids(ids_arg, ids, MAX_PROMPT);
        if (n <= 0) { fprintf(stderr, "greedy: bad --ids\n"); e2h_model_free(m); return 2; }
    } else if (!tok) {
        fprintf(stderr, "greedy: the model has no tokenizer; use --ids\n");
        e2h_model_free(m);
        return 2;
    } else if ((st = e2h_tokenize(tok, prompt, strlen(prompt), 1, ids, MAX_PROMPT, &n))) {
        fprintf(stderr, "greedy: tokenizing failed (%s)\n", e2h_status_name(st));
        e2h_model_free(m);
        return 1;
    }

    e2h_engine *e = NULL;
    if ((st = e2h_engine_init(m, NULL, &e, err, sizeof err))) {
        fprintf(stderr, "greedy: %s (%s)\n", err, e2h_status_name(st));
        e2h_model_free(m);
        return 1;
    }
    e2h_sampling greedy = e2h_sampling_default(); // temperature 0
    e2h_seq *s = NULL;
    e2h_stop stop;
    memset(&stop, 0, sizeof stop); // zero-filled = documented defaults (stop at EOS)
    stop.max_tokens = n_gen;
    stop.ignore_eos = no_eos;
    st = e2h_seq_create(e, ids, n, &greedy, &s);
    if (!st) st = e2h_seq_extend(e, &s, 1, &stop);
    if (st) {
        fprintf(stderr, "greedy: %s (%s)\n", e2h_engine_last_error(e), e2h_status_name(st));
    } else {
        const int32_t *all = e2h_seq_tokens(s);
        const int32_t len = e2h_seq_len(s);
        printf("ids:");
        for (int32_t i = n; i < len; i++) printf(" %d", all[i]);
        printf("\n");
        if (tok) {
            static char text[1 << 16];
            size_t tl = 0;
            if (e2h_detokenize(tok, all + n, len - n, text, sizeof text - 1, &tl) == E2H_OK) {
                text[tl] = 0;
                printf("text: %s\n", text);
            }
        }
    }
    e2h_seq_release(e, s);
    e2h_engine_free(e);
    e2h_model_free(m);
    return st ? 1 : 0;
}
