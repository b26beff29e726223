// tokenizer/utf8.h — UTF-8 decoding and sanitizing: the bottom of tokenizer/ (the NFC
// normalizer, the vocabulary, the pre-tokenizer and the decoder use it; it uses none of them).
#ifndef E2H_TOKENIZER_UTF8_H
#define E2H_TOKENIZER_UTF8_H

#include <stddef.h>
#include <stdint.h>

// Decodes one UTF-8 sequence at s (n bytes left). Returns its length (1..4) and the code
// point, or 0 if the sequence is invalid or truncated.
int tok_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);
// Length of the longest valid prefix of the sequence at s (0 if the lead byte is invalid);
// *full is 1 when that prefix is a whole character.
int tok_utf8_prefix(const uint8_t *s, size_t n, int *full);
// Copies text replacing invalid UTF-8 like Python's errors="replace". Caller frees.
char *tok_utf8_sanitize(const char *s, size_t len, size_t *out_len);

#endif
