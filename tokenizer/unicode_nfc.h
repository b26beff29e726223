// tokenizer/unicode_nfc.h — Unicode Normalization Form C (UAX #15), as the NFC normalizer of
// Hugging Face tokenizers applies it (GPT-NeoX-20B / MPT). Unicode version: that of the
// reference, 9.0.0 (see tools/gen_unicode_nfc.py, which generates the tables).
//
// Invalid UTF-8 bytes are copied through unchanged, each acting as a character that blocks
// reordering and composition (like Python's errors="surrogateescape"); the tokenizer has
// already replaced them with U+FFFD before normalizing.
#ifndef E2H_TOKENIZER_UNICODE_NFC_H
#define E2H_TOKENIZER_UNICODE_NFC_H

#include <stddef.h>
#include <stdint.h>

// 1 when s[0..len) is certainly NFC (NFC quick check YES: all ASCII, or no character that
// is NO/MAYBE and the combining classes are in order), so normalizing it would change
// nothing; 0 when it may not be (including on invalid UTF-8).
int tok_nfc_quick_check(const char *s, size_t len);

// NFC of s[0..len): canonical decomposition, canonical ordering, canonical composition
// (Hangul algorithmically). Returns a malloc'd NUL-terminated buffer and its length in
// *out_len, or NULL when out of memory.
char *tok_nfc_normalize(const char *s, size_t len, size_t *out_len);

// The canonical combining class of a code point (0 for starters and unassigned ones).
int tok_nfc_ccc(uint32_t cp);

#endif
