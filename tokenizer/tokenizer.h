// tokenizer/tokenizer.h — internal definition of e2h_tokenizer, shared by the loaders
// (load_gguf.c, load_json.c), the encoder (encode.c, pretok.c) and the decoder (decode.c).
//
// Two families:
//  * TOK_SPM: SentencePiece BPE (Llama-2, Mistral, Phi-3). Text is turned into U+2581-joined
//    characters, adjacent pieces merge by pair priority, unknown characters fall back to
//    <0xXX> byte tokens.
//  * TOK_BPE: byte-level BPE (GPT-2, Llama-3, Qwen2, StarCoder/SmolLM, DeepSeek). A regex
//    pre-tokenizer splits the text into words; each word's bytes merge by merge rank.
// Both families share one merge engine over a pair table (id_a, id_b) -> (priority, id_ab).
#ifndef E2H_TOKENIZER_TOKENIZER_H
#define E2H_TOKENIZER_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "../include/e2h.h"
#include "utf8.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

enum { TOK_SPM = 1, TOK_BPE = 2 };

// Token types, numbered like GGUF's tokenizer.ggml.token_type.
enum {
    TOKT_NORMAL = 1, TOKT_UNKNOWN = 2, TOKT_CONTROL = 3, TOKT_USER = 4, TOKT_UNUSED = 5,
    TOKT_BYTE = 6
};

typedef struct {
    char *text;       // vocabulary form ("▁the", "Ġthe", "<0x0A>"), NUL-terminated
    uint32_t len;
    char *piece;      // decoded bytes ("Ġthe" -> " the", "<0x0A>" -> "\n"), NUL-terminated
    uint32_t piece_len;
    float score;
    int type;         // TOKT_*
} tok_token;

// Open-addressing hash map from byte strings (borrowed, owned by the tokens) to ids.
typedef struct {
    int32_t *slots;   // (cap) token id or -1
    uint32_t cap;     // power of two
} tok_str_map;

typedef struct {
    uint64_t key;     // (a << 32) | b
    int32_t prio;     // lower merges first
    int32_t result;
} tok_pair;

typedef struct {
    tok_pair *slots;  // key == UINT64_MAX marks empty
    uint32_t cap;
    uint32_t n;
} tok_pair_map;

// A token matched verbatim in the input before the model runs (added/special tokens).
typedef struct {
    int32_t id;
    const char *text; // owned by tokens[id] (raw text, not byte-mapped)
    uint32_t len;
    uint8_t lstrip, rstrip;
} tok_added;

#define TOK_MAX_REGEX 8

struct e2h_tokenizer {
    int family;
    int32_t n_vocab;
    tok_token *tokens;        // (n_vocab)
    tok_str_map vocab;        // text -> id
    tok_pair_map pairs;       // merges
    int32_t byte_ids[256];    // BPE: id of each single byte; SPM: id of <0xXX>; -1 if absent
    tok_added *added;         // sorted by length, longest first
    int32_t n_added;
    int32_t added_first[257]; // bucket starts by first byte (added sorted by first byte, len desc)
    int32_t bos, eos, unk;
    int add_bos, add_eos;
    int add_space_prefix;     // SPM: prepend "▁"
    int prefix_all_segments;  // SPM: prepend after every special token too (llama.cpp, legacy HF)
    int ignore_merges;        // BPE: a word that is a whole token skips merging (Llama-3)
    int spm_explicit_merges;  // SPM from tokenizer.json: merges listed, not derived from scores
    int strip_leading_space;  // decode: drop the space the dummy prefix added
    int nfc;                  // normalize each text segment to NFC first (GPT-NeoX-20B, MPT)
    int n_regex;
    pcre2_code *regex[TOK_MAX_REGEX];
    char pre_name[64];
};

// ---- vocab.c ----
void tok_set_err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
e2h_tokenizer *tok_alloc(int32_t n_vocab);
// Copies text into tokens[id] (the loaders fill every id once).
int tok_set_token(e2h_tokenizer *t, int32_t id, const char *text, size_t len, float score,
                  int type);
int32_t tok_lookup(const e2h_tokenizer *t, const char *s, size_t len);
int tok_pair_put(e2h_tokenizer *t, int32_t a, int32_t b, int32_t prio, int32_t result);
const tok_pair *tok_pair_get(const e2h_tokenizer *t, int32_t a, int32_t b);
// After tokens are set: builds the vocab map (error on duplicate text), pieces, byte ids,
// added-token table (types CONTROL/USER/UNKNOWN), and for SPM the pair table from scores.
int tok_finalize(e2h_tokenizer *t, const char *path, char *err, size_t err_len);
// Adds a BPE merge "a b" (vocabulary form). Error names the merge index.
int tok_add_merge(e2h_tokenizer *t, const char *a, size_t alen, const char *b, size_t blen,
                  int32_t rank, const char *path, char *err, size_t err_len);
// GPT-2 byte <-> unicode mapping. Returns the UTF-8 of byte b's printable stand-in.
int tok_byte_to_utf8(uint8_t b, char out[4]);
// Inverse: code point -> byte, or -1.
int tok_unicode_to_byte(uint32_t cp);

// ---- pretok.c ----
// Compiles the regex list for a GGUF pre-tokenizer name ("gpt-2", "smollm", "llama3", ...).
int tok_pretok_set_named(e2h_tokenizer *t, const char *name, const char *path, char *err,
                         size_t err_len);
int tok_pretok_add(e2h_tokenizer *t, const char *pattern, const char *path, char *err,
                   size_t err_len);
// Splits text (valid UTF-8) with the regex list, each regex splitting the pieces of the
// previous one into matches and the gaps between them. Calls fn for each final piece.
// Returns 0, fn's non-zero result, or TOK_SPLIT_NOMEM / TOK_SPLIT_REGEX (a PCRE2 error such as
// its match limit, or an impossible match span).
#define TOK_SPLIT_NOMEM (-1)
#define TOK_SPLIT_REGEX (-2)
typedef int (*tok_word_fn)(void *ctx, const char *s, size_t len);
int tok_pretok_split(const e2h_tokenizer *t, const char *s, size_t len, tok_word_fn fn,
                     void *ctx);

// ---- load_gguf.c / load_json.c ----
e2h_status tok_load_gguf(const char *path, e2h_tokenizer **out, char *err, size_t err_len);
e2h_status tok_load_json(const char *json_path, const char *config_path, e2h_tokenizer **out,
                         char *err, size_t err_len);

#endif
