// tests/test_tokenizer.c — the tokenizer against the reference: llama.cpp's .inp/.out test
// vectors (produced by Hugging Face tokenizers) for every vocabulary in ../shared, the
// committed large-corpus and edge-case expected ids of the Hugging Face reference of every
// vocabulary it can be built for (tools/make_tokenizer_expected.py), round trips, streaming
// decode, bad input, the O(n log n) merge loop, and the NFC normalizer against Python's
// unicodedata / Hugging Face's NFC (tools/gen_unicode_nfc.py).
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../include/e2h.h"
#include "../tokenizer/unicode_nfc.h"
#include "harness.h"

#define FIX "tests/fixtures/tokenizer/"

// ---- helpers ----

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

static char *decode(const e2h_tokenizer *t, const int32_t *ids, int32_t n, size_t *len) {
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
static void check_vectors(const char *name, const char *vec, const e2h_tokenizer *t) {
    const char *sh = th_shared_dir();
    char p[1024];
    snprintf(p, sizeof p, "%s/assets/tokenizers/ggml-vocab-%s.gguf.inp", sh, vec);
    size_t inl;
    char *inp = th_read_file(p, &inl);
    snprintf(p, sizeof p, "%s/assets/tokenizers/ggml-vocab-%s.gguf.out", sh, vec);
    char *outp = th_read_file(p, NULL);
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

static void vectors_of(const char *name, const char *vec) {
    if (!th_shared_dir()) { printf("  skipped: ../shared absent\n"); return; }
    e2h_tokenizer *t = load_shared_vocab(name);
    CHECK(t != NULL);
    if (!t) return;
    check_vectors(name, vec, t);
    e2h_tokenizer_free(t);
}

static void vectors_for(const char *name) { vectors_of(name, name); }

TEST(vectors_llama_spm) { vectors_for("llama-spm"); }
TEST(vectors_phi_3) { vectors_for("phi-3"); }
TEST(vectors_gpt_2) { vectors_for("gpt-2"); }
TEST(vectors_starcoder) { vectors_for("starcoder"); }
TEST(vectors_refact) { vectors_for("refact"); }
TEST(vectors_mpt) { vectors_for("mpt"); }
TEST(vectors_falcon) { vectors_for("falcon"); }
TEST(vectors_deepseek_llm) { vectors_for("deepseek-llm"); }
TEST(vectors_deepseek_coder) { vectors_for("deepseek-coder"); }
// gpt-neox has no vectors of its own; its GGUF holds the same tokens and merges as mpt's (MPT
// uses the GPT-NeoX-20B tokenizer) but no tokenizer.ggml.pre key, which must mean the same.
TEST(vectors_gpt_neox) { vectors_of("gpt-neox", "mpt"); }

// ---- large corpus vs committed reference ids ----

static uint64_t fnv1a64(const int32_t *ids, int32_t n) {
    uint64_t h = 0xCBF29CE484222325ull;
    const uint8_t *b = (const uint8_t *)ids; // little-endian host, as written by the tool
    for (size_t i = 0; i < (size_t)n * 4; i++) h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}

typedef struct {
    const e2h_tokenizer *t;
    FILE *exp;
    const char *name;
    int n_texts, bad, bad_rt, n_rt;
} corpus_run;

// A record is u32 (count << 1 | round-trips) and u32 (low half of the FNV-1a-64 of the ids).
static void corpus_one(corpus_run *r, const char *text) {
    uint32_t rec[2];
    if (fread(rec, 4, 2, r->exp) != 2) { r->bad++; return; }
    uint32_t want_n = rec[0] >> 1;
    int32_t n = 0;
    size_t len = strlen(text);
    int32_t *ids = encode(r->t, text, len, 0, &n);
    if (!ids || (uint32_t)n != want_n || (uint32_t)fnv1a64(ids, n) != rec[1]) {
        if (r->bad++ < 3)
            printf("  %s: text %d differs (%d ids, want %u): '%.70s'\n", r->name, r->n_texts, n,
                   want_n, text);
    } else if (rec[0] & 1) {
        size_t dl;
        char *d = decode(r->t, ids, n, &dl);
        r->n_rt++;
        if (!d || dl != len || memcmp(d, text, len) != 0) {
            if (r->bad_rt++ < 3) printf("  %s: text %d does not round-trip\n", r->name, r->n_texts);
        }
        free(d);
    }
    free(ids);
    r->n_texts++;
}

static void corpus_file(corpus_run *r, const char *path, const char *k1, const char *k2) {
    FILE *f = fopen(path, "r");
    CHECKF(f != NULL, "cannot open %s", path);
    if (!f) return;
    size_t cap = 1 << 16;
    char *line = malloc(cap);
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        cJSON *j = cJSON_Parse(line);
        if (!j) continue;
        const char *keys[2] = {k1, k2};
        for (int k = 0; k < 2; k++) {
            cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[k]);
            if (cJSON_IsString(v)) corpus_one(r, v->valuestring);
        }
        cJSON_Delete(j);
    }
    free(line);
    fclose(f);
}

// Every MATH train+test problem/solution and GSM8K train+test question/answer: identical ids
// (count + hash) and decode(encode(x)) == x wherever the reference round-trips.
static void corpus_for(const char *name, const e2h_tokenizer *t) {
    const char *sh = th_shared_dir();
    if (!sh) { printf("  skipped: ../shared absent\n"); return; }
    char p[1024];
    snprintf(p, sizeof p, FIX "%s.corpus.bin", name);
    corpus_run r = {t, fopen(p, "rb"), name, 0, 0, 0, 0};
    CHECKF(r.exp != NULL, "missing %s (run tools/make_tokenizer_expected.py)", p);
    if (!r.exp) return;
    char hdr[12];
    uint32_t n_exp = 0;
    CHECK(fread(hdr, 1, 12, r.exp) == 12 && memcmp(hdr, "E2HTOKC2", 8) == 0);
    memcpy(&n_exp, hdr + 8, 4);
    const char *files[4][3] = {{"data/math/math_train.jsonl", "problem", "solution"},
                               {"data/math/math_test.jsonl", "problem", "solution"},
                               {"data/gsm8k/train.jsonl", "question", "answer"},
                               {"data/gsm8k/test.jsonl", "question", "answer"}};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", sh, files[i][0]);
        corpus_file(&r, p, files[i][1], files[i][2]);
    }
    fclose(r.exp);
    printf("  %s: %d texts, %d differ; %d round-trip checks, %d fail\n", name, r.n_texts, r.bad,
           r.n_rt, r.bad_rt);
    CHECK((uint32_t)r.n_texts == n_exp && r.n_texts > 40000);
    CHECK(r.bad == 0 && r.bad_rt == 0);
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

// Edge cases (empty, whitespace runs, scripts, emoji, invalid UTF-8, 10k repeats, LaTeX,
// special tokens): full ids.
static void edge_for(const char *name, const e2h_tokenizer *t) {
    char p[1024];
    snprintf(p, sizeof p, FIX "%s.edge.json", name);
    char *js = th_read_file(p, NULL);
    CHECKF(js != NULL, "missing %s", p);
    if (!js) return;
    cJSON *arr = cJSON_Parse(js);
    free(js);
    CHECK(cJSON_IsArray(arr));
    int n_cases = 0, bad = 0, n_gaps = 0;
    cJSON *c;
    cJSON_ArrayForEach(c, arr) {
        const char *hex = cJSON_GetObjectItem(c, "hex")->valuestring;
        cJSON *want = cJSON_GetObjectItem(c, "ids");
        size_t hl = strlen(hex), len = hl / 2;
        char *raw = malloc(len + 1);
        for (size_t i = 0; i < len; i++)
            raw[i] = (char)(hexval(hex[2 * i]) * 16 + hexval(hex[2 * i + 1]));
        int32_t n = 0;
        int32_t *ids = encode(t, raw, len, 0, &n);
        int same = ids && n == cJSON_GetArraySize(want);
        for (int i = 0; same && i < n; i++)
            same = ids[i] == cJSON_GetArrayItem(want, i)->valueint;
        if (!same && bad < 3 && !cJSON_GetObjectItem(c, "known_gap"))
            printf("  %s edge %d (%.40s...): %d ids, want %d\n", name, n_cases, hex, n,
                   cJSON_GetArraySize(want));
        if (same) { // decoding must match the reference's decoding of the same ids
            // ("decoded_hex" is left out where that decoding is the input itself)
            cJSON *dj = cJSON_GetObjectItem(c, "decoded_hex");
            const char *dh = cJSON_IsString(dj) ? dj->valuestring : hex;
            size_t dlen = strlen(dh) / 2, dl;
            char *d = decode(t, ids, n, &dl);
            same = d && dl == dlen;
            for (size_t i = 0; same && i < dlen; i++)
                same = (uint8_t)d[i] == hexval(dh[2 * i]) * 16 + hexval(dh[2 * i + 1]);
            if (!same) printf("  %s edge %d: decoded text differs\n", name, n_cases);
            free(d);
        }
        // a documented difference from the reference (the tool says which): reported, and
        // reported again once it is gone so that the marker gets removed
        cJSON *gap = cJSON_GetObjectItem(c, "known_gap");
        if (cJSON_IsString(gap)) {
            printf("  %s edge %d: known gap (%s): %s\n", name, n_cases, gap->valuestring,
                   same ? "now matches, remove the marker" : "differs");
            n_gaps++;
            same = 1;
        }
        bad += !same;
        n_cases++;
        free(ids);
        free(raw);
    }
    cJSON_Delete(arr);
    CHECKF(bad == 0 && n_cases > 30 && n_gaps <= 1, "%s: %d of %d edge cases differ", name, bad,
           n_cases);
}

static e2h_tokenizer *load_path(const char *p) {
    char err[512];
    e2h_tokenizer *t = NULL;
    if (e2h_tokenizer_load(p, &t, err, sizeof err) != E2H_OK) printf("  load: %s\n", err);
    return t;
}

static void corpus_gguf(const char *name) {
    e2h_tokenizer *t = load_shared_vocab(name);
    if (!t) { printf("  skipped: ../shared absent\n"); return; }
    edge_for(name, t);
    corpus_for(name, t);
    e2h_tokenizer_free(t);
}

TEST(corpus_smollm_gguf) {
    e2h_tokenizer *t = load_path(FIX "smollm.gguf");
    CHECK(t != NULL);
    if (!t) return;
    edge_for("smollm", t);
    corpus_for("smollm", t);
    e2h_tokenizer_free(t);
}

// Every vocabulary in ../shared whose reference can be built (baichuan cannot: see
// tools/make_tokenizer_expected.py).
TEST(corpus_llama_spm_gguf) { corpus_gguf("llama-spm"); }
TEST(corpus_phi_3_gguf) { corpus_gguf("phi-3"); }

// Phi-3's special tokens drop the white space after them (tokenizer.json rstrip; the GGUF is
// recognised by general.name, as llama.cpp does) except <s>, <unk>, <|endoftext|>; the same
// text under Llama-2's vocabulary keeps it (a lone "\u2581", id 29871 in both).
TEST(phi3_rstrip_special) {
    e2h_tokenizer *phi = load_shared_vocab("phi-3"), *llama = load_shared_vocab("llama-spm");
    if (!phi || !llama) {
        printf("  skipped: ../shared absent\n");
        e2h_tokenizer_free(phi);
        e2h_tokenizer_free(llama);
        return;
    }
    static const struct { const char *text; int32_t want[8]; int n; } cases[] = {
        {"</s> hello", {2, 22172}, 2},                     // "</s>" then "\u2581hello"
        {"<|user|>\nhi<|end|>\n", {32010, 7251, 32007}, 3}, // no "\u2581", "\n" after either
        {"<s> hello", {1, 29871, 22172}, 3},               // <s> keeps the space
        {"<|endoftext|> hello", {32000, 29871, 22172}, 3},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int32_t n = 0, *ids = encode(phi, cases[c].text, strlen(cases[c].text), 0, &n);
        int same = ids && n == cases[c].n && memcmp(ids, cases[c].want, (size_t)n * 4) == 0;
        CHECKF(same, "phi-3 '%s': %d ids", cases[c].text, n);
        free(ids);
    }
    int32_t n = 0, *ids = encode(llama, "</s> hello", 10, 0, &n);
    CHECK(ids && n == 3 && ids[0] == 2 && ids[1] == 29871 && ids[2] == 22172);
    free(ids);
    e2h_tokenizer_free(phi);
    e2h_tokenizer_free(llama);
}
TEST(corpus_gpt2_gguf) { corpus_gguf("gpt-2"); }
TEST(corpus_starcoder_gguf) { corpus_gguf("starcoder"); }
TEST(corpus_refact_gguf) { corpus_gguf("refact"); }
TEST(corpus_falcon_gguf) { corpus_gguf("falcon"); }
TEST(corpus_deepseek_llm_gguf) { corpus_gguf("deepseek-llm"); }
TEST(corpus_deepseek_coder_gguf) { corpus_gguf("deepseek-coder"); }
TEST(corpus_mpt_gguf) { corpus_gguf("mpt"); }
TEST(corpus_gpt_neox_gguf) { corpus_gguf("gpt-neox"); }

// The tokenizer.json form of the same vocabulary must give identical ids (model directory
// with tokenizer_config.json).
TEST(corpus_smollm_json) {
    e2h_tokenizer *t = load_path(FIX "smollm");
    CHECK(t != NULL);
    if (!t) return;
    CHECK(e2h_tokenizer_n_vocab(t) == 49152 && e2h_tokenizer_eos(t) == 2);
    edge_for("smollm", t);
    corpus_for("smollm", t);
    e2h_tokenizer_free(t);
}

TEST(corpus_llama_spm_json) {
    e2h_tokenizer *t = load_path(FIX "llama-spm/tokenizer.json");
    CHECK(t != NULL);
    if (!t) return;
    CHECK(e2h_tokenizer_bos(t) == 1 && e2h_tokenizer_eos(t) == 2);
    edge_for("llama-spm", t);
    corpus_for("llama-spm", t);
    e2h_tokenizer_free(t);
}

// ---- API behaviour ----

TEST(bos_eos_and_specials) {
    e2h_tokenizer *t = load_shared_vocab("llama-spm");
    if (!t) { printf("  skipped: ../shared absent\n"); return; }
    int32_t n, *ids = encode(t, "Hello world", 11, 1, &n);
    CHECK(ids && n == 3 && ids[0] == 1 && ids[1] == 15043 && ids[2] == 3186);
    free(ids);
    ids = encode(t, "", 0, 1, &n);
    CHECK(ids && n == 1 && ids[0] == 1);
    free(ids);
    // small output buffer: full count reported, nothing written past cap
    int32_t buf[2] = {-7, -7}, need = 0;
    CHECK(e2h_tokenize(t, "Hello world", 11, 1, buf, 1, &need) == E2H_OK && need == 3);
    CHECK(buf[0] == 1 && buf[1] == -7);
    CHECK(e2h_tokenizer_find(t, "</s>", 4) == 2);
    size_t pl;
    const char *p = e2h_tokenizer_piece(t, 13, &pl); // <0x0A>
    CHECK(p && pl == 1 && p[0] == '\n');
    CHECK(e2h_tokenizer_piece(t, 32000, &pl) == NULL && e2h_tokenizer_piece(t, -1, &pl) == NULL);
    int32_t bad[1] = {40000};
    char out[8];
    size_t ol;
    CHECK(e2h_detokenize(t, bad, 1, out, sizeof out, &ol) == E2H_ERR_INVALID_ARG);
    e2h_tokenizer_free(t);

    t = load_path(FIX "smollm.gguf");
    if (!t) return;
    const char *chat = "<|im_start|>user\nки<|im_end|>";
    ids = encode(t, chat, strlen(chat), 1, &n);
    CHECK(ids && n >= 4 && ids[0] == 1 && ids[n - 1] == 2); // no BOS for this vocabulary
    // "ки" is plain text, not a special token
    int32_t n2, *ki = encode(t, "ки", strlen("ки"), 0, &n2);
    CHECK(ki && n2 >= 1 && e2h_tokenizer_find(t, "ки", strlen("ки")) != ki[0] - 100000);
    for (int i = 0; ki && i < n2; i++) CHECK(ki[i] > 16);
    free(ki);
    char dec[128];
    CHECK(e2h_detokenize(t, ids, n, dec, sizeof dec, &ol) == E2H_OK && strcmp(dec, chat) == 0);
    free(ids);
    e2h_tokenizer_free(t);
}

// The streaming decoder must never emit part of a UTF-8 character, and the concatenation of
// its output must equal the whole decode.
TEST(streaming_decode) {
    e2h_tokenizer *t = load_shared_vocab("llama-spm");
    if (!t) { printf("  skipped: ../shared absent\n"); return; }
    const char *text = " this is 🦙.cpp, naïve 日本語 \xf0\x9f\x98\x80!";
    int32_t n, *ids = encode(t, text, strlen(text), 0, &n);
    CHECK(ids && n > 5);
    size_t full_len;
    char *full = decode(t, ids, n, &full_len);
    e2h_detok_stream *st = e2h_detok_stream_new(t);
    char acc[512] = "", piece[64];
    size_t acc_n = 0, pl;
    int broken = 0;
    for (int32_t i = 0; i < n; i++) {
        CHECK(e2h_detok_stream_push(st, ids[i], piece, sizeof piece, &pl) == E2H_OK);
        // every emitted chunk is whole characters on its own
        for (size_t k = 0; k < pl;) {
            unsigned char c = (unsigned char)piece[k];
            size_t l = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
            if (!l || k + l > pl) { broken = 1; break; }
            k += l;
        }
        memcpy(acc + acc_n, piece, pl);
        acc_n += pl;
    }
    CHECK(e2h_detok_stream_flush(st, piece, sizeof piece, &pl) == E2H_OK && pl == 0);
    CHECK(!broken);
    CHECK(full && acc_n == full_len && memcmp(acc, full, full_len) == 0);
    CHECK(full && strcmp(full, text) == 0); // the dummy-prefix space is removed again
    e2h_detok_stream_free(st);
    // a lone lead byte followed by nothing: held, then U+FFFD on flush
    st = e2h_detok_stream_new(t);
    int32_t b0 = e2h_tokenizer_find(t, "<0xF0>", 6);
    CHECK(b0 >= 0);
    CHECK(e2h_detok_stream_push(st, b0, piece, sizeof piece, &pl) == E2H_OK && pl == 0);
    CHECK(e2h_detok_stream_flush(st, piece, sizeof piece, &pl) == E2H_OK && pl == 3);
    e2h_detok_stream_free(st);
    free(ids);
    free(full);
    e2h_tokenizer_free(t);
}

// ---- bad input ----

static void write_text(const char *path, const char *s) {
    FILE *f = fopen(path, "w");
    if (f) { fputs(s, f); fclose(f); }
}

static void expect_load_error(const char *path, const char *needle) {
    char err[512] = "";
    e2h_tokenizer *t = NULL;
    e2h_status st = e2h_tokenizer_load(path, &t, err, sizeof err);
    CHECKF(st != E2H_OK && t == NULL && strstr(err, needle) != NULL,
           "want error containing '%s', got %d '%s'", needle, (int)st, err);
    e2h_tokenizer_free(t);
}

TEST(malformed_tokenizer_json) {
    char p[256];
    snprintf(p, sizeof p, "/tmp/e2h_tok_bad_%d.json", (int)getpid());
    write_text(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a c\"]},"
                  "\"pre_tokenizer\": {\"type\": \"ByteLevel\"}}");
    expect_load_error(p, "merges[0]");
    write_text(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}}");
    expect_load_error(p, "used twice");
    write_text(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 2}, \"merges\": []}}");
    expect_load_error(p, "id 1 is missing");
    write_text(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}");
    expect_load_error(p, "model.merges");
    write_text(p, "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}");
    expect_load_error(p, "model.type");
    write_text(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": []},"
                  "\"added_tokens\": [{\"id\": 1, \"content\": \"a\", \"special\": true}]}");
    expect_load_error(p, "duplicate token 'a'");
    write_text(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                  "\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"},"
                  "\"decoder\": {\"type\": \"ByteLevel\"}}");
    expect_load_error(p, "regex");
    write_text(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": ");
    expect_load_error(p, "malformed JSON");
    // ids are integers bounded by the number of entries: a 60-byte file must not ask for
    // 20 GB (fuzzing), and 2^64 or a fraction must not be converted at all
    write_text(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 5000000000}, \"merges\": []}}");
    expect_load_error(p, "model.vocab");
    write_text(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1e30}, \"merges\": []}}");
    expect_load_error(p, "model.vocab");
    write_text(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0.5}, \"merges\": []}}");
    expect_load_error(p, "model.vocab");
    write_text(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                  "\"added_tokens\": [{\"id\": 18446744073709551616, \"content\": \"x\"}]}");
    expect_load_error(p, "added_tokens");
    unlink(p);
    expect_load_error("/nonexistent/dir/tokenizer.json", "/nonexistent/dir");
    expect_load_error("/tmp", "no tokenizer.json");
}

// Pieces that split inside a UTF-8 character (a `\C` Split; an added token that is not valid
// UTF-8) must not reach PCRE2 under PCRE2_NO_UTF_CHECK: fuzzing found a hang at 100% CPU there.
// A catastrophic pattern hits PCRE2's match limit: E2H_ERR_TOKENIZER, not out-of-memory.
// alarm() turns a hang into a failure of this binary.
static e2h_tokenizer *load_text(const char *json) {
    char p[256], err[512];
    snprintf(p, sizeof p, "/tmp/e2h_tok_split_%d.json", (int)getpid());
    write_text(p, json);
    e2h_tokenizer *t = NULL;
    e2h_status st = e2h_tokenizer_load(p, &t, err, sizeof err);
    CHECKF(st == E2H_OK, "%s", err);
    unlink(p);
    return t;
}
TEST(split_inside_utf8_characters) {
    alarm(60);
    e2h_tokenizer *t = load_text(
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": []},"
        "\"added_tokens\": [{\"id\": 2, \"content\": \"\\u00e9\", \"special\": false}],"
        "\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": ["
        "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\C\"}, \"behavior\": \"Isolated\"},"
        "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}]},"
        "\"decoder\": {\"type\": \"ByteLevel\"}}");
    if (!t) return;
    const char *texts[] = {"h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac\xf0\x9f\x98\x80 ab", "\xc3\xa9\xc3\xa9\xc3\xa9",
                           "\xff\xfe caf\xc3\xa9 \xe2\x82"};
    for (int i = 0; i < 3; i++) {
        int32_t ids[256], n = 0;
        e2h_status st = e2h_tokenize(t, texts[i], strlen(texts[i]), 0, ids, 256, &n);
        CHECKF(st == E2H_OK || st == E2H_ERR_TOKENIZER, "text %d: %s", i, e2h_status_name(st));
    }
    e2h_tokenizer_free(t);
    t = load_text("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": []},"
                  "\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(a+)+$\"},"
                  " \"behavior\": \"Isolated\"}, \"decoder\": {\"type\": \"ByteLevel\"}}");
    if (t) {
        char text[64];
        memset(text, 'a', 40);
        strcpy(text + 40, "b");
        int32_t ids[256], n = 0;
        e2h_status st = e2h_tokenize(t, text, strlen(text), 0, ids, 256, &n);
        CHECKF(st == E2H_ERR_TOKENIZER, "catastrophic regex: %s", e2h_status_name(st));
        e2h_tokenizer_free(t);
    }
    alarm(0);
}

// A GGUF without a tokenizer, and one whose merges name unknown tokens.
TEST(malformed_gguf_vocab) {
    char p[256];
    snprintf(p, sizeof p, "/tmp/e2h_tok_bad_%d.gguf", (int)getpid());
    FILE *f = fopen(p, "wb");
    uint32_t v3 = 3;
    uint64_t zero = 0;
    fwrite("GGUF", 1, 4, f);
    fwrite(&v3, 4, 1, f);
    fwrite(&zero, 8, 1, f);
    fwrite(&zero, 8, 1, f);
    fclose(f);
    expect_load_error(p, "tokenizer.ggml.model");
    // gpt2 vocabulary "a","b" with merge "a c"
    f = fopen(p, "wb");
    uint64_t n_kv = 3;
    fwrite("GGUF", 1, 4, f);
    fwrite(&v3, 4, 1, f);
    fwrite(&zero, 8, 1, f);
    fwrite(&n_kv, 8, 1, f);
#define W_STR(s) do { uint64_t l_ = strlen(s); fwrite(&l_, 8, 1, f); fwrite(s, 1, l_, f); } while (0)
    uint32_t t_str = 8, t_arr = 9;
    uint64_t two = 2, one = 1;
    W_STR("tokenizer.ggml.model"); fwrite(&t_str, 4, 1, f); W_STR("gpt2");
    W_STR("tokenizer.ggml.tokens"); fwrite(&t_arr, 4, 1, f); fwrite(&t_str, 4, 1, f);
    fwrite(&two, 8, 1, f); W_STR("a"); W_STR("b");
    W_STR("tokenizer.ggml.merges"); fwrite(&t_arr, 4, 1, f); fwrite(&t_str, 4, 1, f);
    fwrite(&one, 8, 1, f); W_STR("a c");
#undef W_STR
    fclose(f);
    expect_load_error(p, "merges[0]");
    unlink(p);
    expect_load_error("/nonexistent.gguf", "nonexistent.gguf");
}

// Invalid UTF-8 never reads out of bounds (ASan) and is handled like Python's
// errors="replace" (the edge fixtures check the ids); truncated sequences at the very end.
TEST(invalid_utf8_bounds) {
    e2h_tokenizer *t = load_path(FIX "smollm.gguf");
    if (!t) return;
    const char *cases[] = {"\xff", "\xe2\x82", "a\xf0\x9f", "\xc3", "\xed\xa0\x80"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = strlen(cases[i]);
        char *heap = malloc(len); // exact size so ASan catches any over-read
        memcpy(heap, cases[i], len);
        int32_t n = 0, *ids = encode(t, heap, len, 0, &n);
        CHECK(ids && n >= 1);
        free(ids);
        free(heap);
    }
    e2h_tokenizer_free(t);
}

// The BPE merge loop must be near-linear in the length of one pre-token: 1 MiB of 'a' (one
// pre-token) against 64 KiB. Measured in thread CPU time and as a ratio, so a loaded machine
// does not fail it: linear is 16x, the quadratic loop this guards against is 256x.
static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

TEST(merge_loop_scales) {
    const char *names[2] = {"llama-spm", "gpt-2"};
    for (int k = 0; k < 2; k++) {
        e2h_tokenizer *t = load_shared_vocab(names[k]);
        if (!t) { printf("  skipped: ../shared absent\n"); return; }
        size_t len = 1 << 20, small = len / 16;
        char *s = malloc(len);
        memset(s, 'a', len);
        double a = cpu_seconds();
        int32_t n_small = 0, *ids_small = encode(t, s, small, 0, &n_small);
        double b = cpu_seconds();
        int32_t n = 0, *ids = encode(t, s, len, 0, &n);
        double c = cpu_seconds();
        double ratio = (c - b) / ((b - a) > 1e-4 ? (b - a) : 1e-4);
        printf("  %s: 64 KiB of 'a' in %.3f s, 1 MiB -> %d ids in %.3f s CPU (ratio %.1f)\n",
               names[k], b - a, n, c - b, ratio);
        CHECK(ids && ids_small && n > 1000 && ratio < 64.0);
        free(ids);
        free(ids_small);
        free(s);
        e2h_tokenizer_free(t);
    }
}

// ---- NFC normalizer ----

static char *unhex(const char *hex, size_t *len) {
    size_t n = strlen(hex) / 2;
    char *b = malloc(n ? n : 1); // exact size so that ASan catches any over-read
    for (size_t i = 0; i < n; i++) b[i] = (char)(hexval(hex[2 * i]) * 16 + hexval(hex[2 * i + 1]));
    *len = n;
    return b;
}

// Every case of tests/fixtures/tokenizer/nfc.json (Hangul, reordering, blocked composition,
// exclusions, singletons, long non-starter runs, random mixes, invalid UTF-8): the output is
// Python's unicodedata.normalize("NFC") (Hugging Face's where Unicode 9 and 14 differ), it
// is stable under a second pass, and a quick-check YES input is returned unchanged.
TEST(nfc_normalizer_fixture) {
    char *js = th_read_file(FIX "nfc.json", NULL);
    CHECKF(js != NULL, "missing " FIX "nfc.json (run tools/gen_unicode_nfc.py)");
    if (!js) return;
    cJSON *arr = cJSON_Parse(js), *c;
    free(js);
    int n_cases = 0, bad = 0, n_version = 0;
    cJSON_ArrayForEach(c, arr) {
        size_t il, wl, ol = 0, ol2 = 0;
        char *in = unhex(cJSON_GetObjectItem(c, "hex")->valuestring, &il);
        char *want = unhex(cJSON_GetObjectItem(c, "nfc")->valuestring, &wl);
        char *out = tok_nfc_normalize(in, il, &ol);
        char *again = out ? tok_nfc_normalize(out, ol, &ol2) : NULL;
        int ok = out && again && ol == wl && memcmp(out, want, wl) == 0 && ol2 == ol &&
                 memcmp(again, out, ol) == 0;
        if (tok_nfc_quick_check(in, il)) ok = ok && il == wl && memcmp(in, want, il) == 0;
        if (!ok && bad < 5)
            printf("  case %d (%s): got %zu bytes, want %zu\n", n_cases,
                   cJSON_GetObjectItem(c, "hex")->valuestring, ol, wl);
        bad += !ok;
        n_version += cJSON_GetObjectItem(c, "python") != NULL;
        n_cases++;
        free(in), free(want), free(out), free(again);
    }
    cJSON_Delete(arr);
    printf("  %d cases, %d differ (%d where Unicode 9 != Python's Unicode 14)\n", n_cases, bad,
           n_version);
    CHECK(n_cases > 300 && bad == 0 && n_version == 3);
    // spot checks independent of the fixture
    size_t ol;
    char *o = tok_nfc_normalize("\xe2\x84\xab", 3, &ol); // U+212B ANGSTROM SIGN -> U+00C5
    CHECK(o && ol == 2 && memcmp(o, "\xc3\x85", 2) == 0);
    free(o);
    CHECK(tok_nfc_quick_check("plain ascii", 11) == 1 && tok_nfc_quick_check("caf\xc3\xa9", 5) == 1);
    CHECK(tok_nfc_quick_check("cafe\xcc\x81", 6) == 0 && tok_nfc_quick_check("\xff", 1) == 0);
    CHECK(tok_nfc_ccc(0x0301) == 230 && tok_nfc_ccc(0x0316) == 220 && tok_nfc_ccc('a') == 0);
}

// Reordering is linear: 1 MiB of non-starters in alternating class order (every pair
// out of order) normalizes in well under a second, sorted by class.
TEST(nfc_normalizer_scales) {
    size_t len = 1 << 20;
    char *s = malloc(len);
    s[0] = 'a';
    for (size_t i = 1; i + 2 <= len; i += 2) // U+0301 (230), U+0316 (220), ...
        memcpy(s + i, (i / 2) % 2 ? "\xcc\x96" : "\xcc\x81", 2);
    len = 1 + (len - 1) / 2 * 2;
    double a = cpu_seconds(); // thread CPU time: a loaded machine does not fail it
    size_t ol = 0;
    char *o = tok_nfc_normalize(s, len, &ol);
    double sec = cpu_seconds() - a;
    printf("  1 MiB of alternating combining marks in %.3f s CPU\n", sec);
    // U+00E1 (the first U+0301 is not blocked by the U+0316 run, of a lower class), then
    // all U+0316, then the remaining U+0301
    size_t k = (len - 1) / 4;
    int sorted = o != NULL && ol == len - 1 && memcmp(o, "\xc3\xa1", 2) == 0;
    for (size_t i = 0; sorted && i < 2 * k - 1; i++)
        sorted = memcmp(o + 2 + 2 * i, i < k ? "\xcc\x96" : "\xcc\x81", 2) == 0;
    CHECK(sorted && sec < 2.0);
    free(o);
    free(s);
}

// tokenizer.json: an NFC normalizer, alone or inside a Sequence, makes decomposed text
// tokenize like its composed form; without it the two differ.
TEST(nfc_in_tokenizer_json) {
    char *js = th_read_file(FIX "smollm/tokenizer.json", NULL);
    CHECK(js != NULL);
    if (!js) return;
    cJSON *root = cJSON_Parse(js);
    free(js);
    const char *norms[3] = {NULL, "{\"type\": \"NFC\"}",
                            "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}]}"};
    const char *composed = "caf\xc3\xa9 \xc3\x85ngstr\xc3\xb6m \xed\x95\x9c";
    const char *decomposed = "cafe\xcc\x81 \xe2\x84\xabngstro\xcc\x88m \xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab";
    char p[256];
    snprintf(p, sizeof p, "/tmp/e2h_tok_nfc_%d.json", (int)getpid());
    for (int k = 0; k < 3; k++) {
        cJSON_ReplaceItemInObject(root, "normalizer",
                                  norms[k] ? cJSON_Parse(norms[k]) : cJSON_CreateNull());
        char *txt = cJSON_PrintUnformatted(root);
        write_text(p, txt);
        free(txt);
        e2h_tokenizer *t = load_path(p);
        CHECK(t != NULL);
        if (!t) continue;
        int32_t na = 0, nb = 0;
        int32_t *a = encode(t, composed, strlen(composed), 0, &na);
        int32_t *b = encode(t, decomposed, strlen(decomposed), 0, &nb);
        int same = a && b && na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0;
        CHECKF(same == (norms[k] != NULL), "normalizer %s", norms[k] ? norms[k] : "null");
        free(a), free(b);
        e2h_tokenizer_free(t);
    }
    unlink(p);
    cJSON_Delete(root);
}

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
    RUN(vectors_gpt_neox);
    RUN(corpus_smollm_gguf);
    RUN(corpus_llama_spm_gguf);
    RUN(corpus_phi_3_gguf);
    RUN(phi3_rstrip_special);
    RUN(corpus_gpt2_gguf);
    RUN(corpus_starcoder_gguf);
    RUN(corpus_refact_gguf);
    RUN(corpus_falcon_gguf);
    RUN(corpus_deepseek_llm_gguf);
    RUN(corpus_deepseek_coder_gguf);
    RUN(corpus_mpt_gguf);
    RUN(corpus_gpt_neox_gguf);
    RUN(corpus_smollm_json);
    RUN(corpus_llama_spm_json);
    RUN(bos_eos_and_specials);
    RUN(streaming_decode);
    RUN(malformed_tokenizer_json);
    RUN(split_inside_utf8_characters);
    RUN(malformed_gguf_vocab);
    RUN(invalid_utf8_bounds);
    RUN(merge_loop_scales);
    RUN(nfc_normalizer_fixture);
    RUN(nfc_normalizer_scales);
    RUN(nfc_in_tokenizer_json);
    return TEST_SUMMARY();
}
