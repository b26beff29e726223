// engine/cli/answer.c — `e2h answer`: the library's answer extraction and equivalence check.
//
//   e2h answer --pred TEXT --ref TEXT   prints "equal" or "different" (exit 0)
//   e2h answer --extract TEXT           prints the extracted final answer (exit 0; exit 1 and
//                                       nothing printed when the text has none)
//   e2h answer --key TEXT               prints the canonical key of an answer
// --pred may be an answer or a whole solution (then its final answer is extracted first); --ref
// is an answer.
// Bad usage exits 2 with a message.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *ANSWER_USAGE =
    "usage: e2h answer --pred TEXT --ref TEXT | --extract TEXT | --key TEXT\n"
    "  --pred TEXT --ref TEXT  print \"equal\" or \"different\": is the predicted answer (or the\n"
    "                          final answer of a predicted solution) equivalent to the reference?\n"
    "  --extract TEXT          print the final answer of a solution (\"# Answer\", \\boxed{},\n"
    "                          \"#### N\", \"The answer is ...\"); exit 1 if there is none\n"
    "  --key TEXT              print the canonical key of an answer\n";

int cli_answer(int argc, char **argv) {
    const char *pred = NULL, *ref = NULL, *extract = NULL, *key = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(ANSWER_USAGE, stdout);
            return 0;
        }
        const char **slot = !strcmp(a, "--pred") ? &pred : !strcmp(a, "--ref") ? &ref
                          : !strcmp(a, "--extract") ? &extract : !strcmp(a, "--key") ? &key : NULL;
        if (!slot) {
            fputs(ANSWER_USAGE, stderr);
            return cli_fail("answer: unknown argument '%s'", a);
        }
        if (i + 1 >= argc) return cli_fail("answer: %s needs a value", a);
        if (*slot) return cli_fail("answer: %s given twice", a);
        *slot = argv[++i];
    }
    int modes = (pred || ref) + (extract != NULL) + (key != NULL);
    if (modes != 1) {
        fputs(ANSWER_USAGE, stderr);
        return cli_fail("answer: give exactly one of --pred/--ref, --extract, --key");
    }
    if (extract) {
        size_t n = strlen(extract);
        char *out = malloc(n + 1);
        if (!out) return cli_fail("answer: out of memory");
        int found = e2h_answer_extract(extract, n, out, n + 1);
        if (found) printf("%s\n", out);
        free(out);
        return found ? 0 : 1;
    }
    if (key) {
        size_t cap = 4 * strlen(key) + 256;
        char *out = malloc(cap);
        if (!out) return cli_fail("answer: out of memory");
        int ok = e2h_answer_key(key, strlen(key), out, cap);
        if (ok) printf("%s\n", out);
        free(out);
        if (!ok) return cli_fail("answer: the key does not fit (%zu bytes)", cap);
        return 0;
    }
    if (!pred || !ref) return cli_fail("answer: --pred and --ref go together");
    // --pred is an answer when it is one line that keys entirely as math (no plain-string part
    // "S:" anywhere in its key); otherwise it is a solution and its final answer is graded (the
    // free-form fallback of extraction would turn the answer "\frac{1}{2}" into its last number)
    size_t n = strlen(pred), kcap = 4 * n + 256;
    char *ext = malloc(n + 1), *kb = malloc(kcap);
    if (!ext || !kb) { free(ext); free(kb); return cli_fail("answer: out of memory"); }
    int is_answer = !strchr(pred, '\n') && e2h_answer_key(pred, n, kb, kcap) && !strstr(kb, "S:");
    free(kb);
    const char *p = !is_answer && e2h_answer_extract(pred, n, ext, n + 1) ? ext : pred;
    int eq = e2h_answer_equal(p, strlen(p), ref, strlen(ref));
    free(ext);
    printf("%s\n", eq ? "equal" : "different");
    return 0;
}
