// engine/search/answer_standin.c — PRIVATE STAND-IN for the answer API of PLAN.md §2 (owner:
// helper "answers") until engine/answer.c lands: the last \boxed{...} (nested braces),
// "#### N" or "The answer is X"; the key is the answer without spaces, "$" and a trailing
// period. Replaced by e2h_answer_extract / e2h_answer_key.
#include <ctype.h>
#include <string.h>

#include "search.h"

static int sa_copy(const char *s, size_t n, char *out, size_t cap) {
    while (n && isspace((unsigned char)*s)) { s++; n--; }
    while (n && (isspace((unsigned char)s[n - 1]) || s[n - 1] == '.')) n--;
    if (!n || n + 1 > cap) return 0;
    memcpy(out, s, n);
    out[n] = 0;
    return 1;
}

int srch_answer_extract(const char *text, size_t len, char *out, size_t cap) {
    const char *last = NULL;
    for (size_t i = 0; i + 7 <= len; i++)
        if (!memcmp(text + i, "\\boxed{", 7)) last = text + i + 7;
    if (last) {
        int depth = 1;
        const char *p = last, *end = text + len;
        for (; p < end; p++) {
            if (*p == '{') depth++;
            else if (*p == '}' && --depth == 0) return sa_copy(last, (size_t)(p - last), out, cap);
        }
        return 0;
    }
    for (size_t i = len; i-- > 0;)
        if (i + 4 <= len && !memcmp(text + i, "####", 4)) return sa_copy(text + i + 4, len - i - 4, out, cap);
    static const char ph[] = "The answer is";
    for (size_t i = len; i-- > 0;)
        if (i + sizeof ph - 1 <= len && !memcmp(text + i, ph, sizeof ph - 1)) {
            size_t a = i + sizeof ph - 1, b = a;
            while (b < len && text[b] != '\n') b++;
            return sa_copy(text + a, b - a, out, cap);
        }
    return 0;
}

int srch_answer_key(const char *ans, size_t len, char *out, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (isspace((unsigned char)ans[i]) || ans[i] == '$') continue;
        if (k + 1 >= cap) return 0;
        out[k++] = ans[i];
    }
    while (k && out[k - 1] == '.') k--;
    out[k] = 0;
    return k > 0;
}
