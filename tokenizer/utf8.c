// tokenizer/utf8.c — UTF-8 decoding and sanitizing (see utf8.h).
#include "utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// Valid range of the second byte for lead byte b (Unicode Table 3-7), and the length.
static int utf8_lead(uint8_t b, uint8_t *lo, uint8_t *hi) {
    *lo = 0x80;
    *hi = 0xBF;
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) return 2;
    if (b == 0xE0) { *lo = 0xA0; return 3; }
    if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) return 3;
    if (b == 0xED) { *hi = 0x9F; return 3; }
    if (b == 0xF0) { *lo = 0x90; return 4; }
    if (b >= 0xF1 && b <= 0xF3) return 4;
    if (b == 0xF4) { *hi = 0x8F; return 4; }
    return 0;
}

// Returns the number of bytes of the longest valid prefix of a sequence (>= 1 when the lead
// byte is valid), and sets *full when the whole sequence is valid.
static int utf8_scan(const uint8_t *s, size_t n, int *full, uint32_t *cp) {
    uint8_t lo, hi;
    int len = utf8_lead(s[0], &lo, &hi);
    *full = 0;
    if (len == 0) return 0;
    if (len == 1) { *full = 1; *cp = s[0]; return 1; }
    uint32_t c = s[0] & (0xFF >> (len + 1));
    int k = 1;
    for (; k < len; k++) {
        if ((size_t)k >= n) return k;
        uint8_t b = s[k];
        if (k == 1 ? (b < lo || b > hi) : (b & 0xC0) != 0x80) return k;
        c = (c << 6) | (b & 0x3F);
    }
    *full = 1;
    *cp = c;
    return len;
}

int tok_utf8_prefix(const uint8_t *s, size_t n, int *full) {
    uint32_t cp;
    *full = 0;
    return n ? utf8_scan(s, n, full, &cp) : 0;
}

int tok_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    if (!n) return 0;
    int full;
    int l = utf8_scan(s, n, &full, cp);
    return full ? l : 0;
}

// Python's bytes.decode("utf-8", errors="replace"): each maximal invalid subpart becomes one
// U+FFFD. This is how a text that is not UTF-8 reaches the reference tokenizer.
char *tok_utf8_sanitize(const char *s, size_t len, size_t *out_len) {
    // worst case: every byte becomes 3 bytes
    if (len > (SIZE_MAX - 1) / 3) return NULL;
    char *o = malloc(len * 3 + 1);
    if (!o) return NULL;
    size_t n = 0;
    const uint8_t *u = (const uint8_t *)s;
    for (size_t i = 0; i < len;) {
        int full;
        uint32_t cp;
        int l = utf8_scan(u + i, len - i, &full, &cp);
        if (full) {
            memcpy(o + n, s + i, (size_t)l);
            n += (size_t)l;
            i += (size_t)l;
        } else {
            memcpy(o + n, "\xEF\xBF\xBD", 3);
            n += 3;
            i += l ? (size_t)l : 1;
        }
    }
    o[n] = 0;
    *out_len = n;
    return o;
}
