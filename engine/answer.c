// engine/answer.c — final-answer extraction and canonical answer keys (MATH / GSM8K grading).
//
// Extraction finds the answer a solution commits to: the paper's "# Answer\n\n..." line
// (PRM800K format), else the last \boxed{...} / \boxed 7 / \fbox{...}, else GSM8K's "#### N",
// else "The answer is ...", else (free-form text) the last math span or number. Every scan is bounded by the given length (never by a NUL).
//
// Keys follow the normalization of Hendrycks et al.'s MATH `strip_string` and PRM800K's grader
// (written anew here, not copied): \left/\right, \dfrac/\tfrac, \text{} units, degrees, \%,
// thousands separators (also "{,}"), "x =" prefixes, LaTeX spaces. Then the answer is parsed
// structurally: unions of intervals, tuples/intervals (bracket type kept), sets and bare
// comma lists (unordered: element keys sorted), and each element is evaluated, if it can be,
// to an exact polynomial with rational coefficients over simple radicals sqrt(m) (m
// square-free), \pi and single-letter symbols ("0.5", "\frac12", "1/2" and "2/4" all give
// "1/2"; "\frac{1}{\sqrt2}" gives "1/2*r2"). Anything else keys as its normalized string.
// Every arithmetic step is overflow-checked; on overflow the string form is used.
//
// Thread-safety: all functions are pure (no globals, no state); call them from any thread.
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../include/e2h.h"

// ---------------------------------------------------------------- bounded string helpers

// Last occurrence of needle in s[0, n), or NULL.
static const char *ans_rfind(const char *s, size_t n, const char *needle) {
    size_t m = strlen(needle);
    if (m == 0 || m > n) return NULL;
    for (size_t i = n - m + 1; i-- > 0;)
        if (s[i] == needle[0] && memcmp(s + i, needle, m) == 0) return s + i;
    return NULL;
}

// Last case-insensitive occurrence of (lowercase) needle in s[0, n), or NULL.
static const char *ans_rfind_ci(const char *s, size_t n, const char *needle) {
    size_t m = strlen(needle);
    if (m == 0 || m > n) return NULL;
    for (size_t i = n - m + 1; i-- > 0;) {
        size_t j = 0;
        while (j < m && tolower((unsigned char)s[i + j]) == needle[j]) j++;
        if (j == m) return s + i;
    }
    return NULL;
}

static int ans_is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Trims whitespace from both ends of [*b, *e).
static void ans_trim(const char **b, const char **e) {
    while (*b < *e && ans_is_space(**b)) (*b)++;
    while (*e > *b && ans_is_space((*e)[-1])) (*e)--;
}

// Index just past the brace matching the '{' at s[i] within s[0, n), or 0 if unbalanced.
static size_t ans_match_brace(const char *s, size_t n, size_t i) {
    int depth = 0;
    for (size_t j = i; j < n; j++) {
        if (s[j] == '\\' && j + 1 < n && (s[j + 1] == '{' || s[j + 1] == '}')) { j++; continue; }
        if (s[j] == '{') depth++;
        else if (s[j] == '}' && --depth == 0) return j + 1;
    }
    return 0;
}

// Contents of the last well-formed \boxed{...}, \boxed X or \fbox{...} in s[0, n).
// Returns 1 and sets [*b, *e) or returns 0.
static int ans_last_box(const char *s, size_t n, const char **b, const char **e) {
    const char *best_b = NULL, *best_e = NULL, *best_at = NULL;
    static const char *const kw[] = {"\\boxed", "\\fbox"};
    for (int k = 0; k < 2; k++) {
        size_t lim = n;
        const char *p;
        while ((p = ans_rfind(s, lim, kw[k])) != NULL) {
            lim = (size_t)(p - s);  // the next search looks before this one
            if (best_at && p < best_at) break;
            size_t i = (size_t)(p - s) + strlen(kw[k]);
            if (i < n && isalpha((unsigned char)s[i])) continue;  // \boxedfoo is another command
            size_t j = i;
            while (j < n && ans_is_space(s[j])) j++;
            if (j < n && s[j] == '{') {
                size_t end = ans_match_brace(s, n, j);
                if (!end) continue;  // truncated box: try an earlier one
                best_b = s + j + 1, best_e = s + end - 1, best_at = p;
                break;
            }
            if (k == 0 && j > i && j < n) {  // "\boxed 7": up to whitespace or '$'
                size_t t = j;
                while (t < n && !ans_is_space(s[t]) && s[t] != '$') t++;
                best_b = s + j, best_e = s + t, best_at = p;
                break;
            }
        }
    }
    if (!best_at) return 0;
    *b = best_b, *e = best_e;
    return 1;
}

// End of the line starting at p (exclusive), bounded by e.
static const char *ans_eol(const char *p, const char *e) {
    const char *q = memchr(p, '\n', (size_t)(e - p));
    return q ? q : e;
}

// Strips enclosing math delimiters ($...$, \(...\), \[...\]) and a trailing full stop.
static void ans_strip_math(const char **b, const char **e) {
    for (int again = 1; again;) {
        again = 0;
        ans_trim(b, e);
        size_t n = (size_t)(*e - *b);
        if (n >= 1 && ((*e)[-1] == '.' || (*e)[-1] == ',')) (*e)--, again = 1;  // a full stop
        else if (n >= 2 && **b == '$' && (*e)[-1] == '$') (*b)++, (*e)--, again = 1;
        else if (n >= 4 && (*b)[0] == '\\' && ((*b)[1] == '(' || (*b)[1] == '[') && (*e)[-2] == '\\' &&
                 ((*e)[-1] == ')' || (*e)[-1] == ']'))
            *b += 2, *e -= 2, again = 1;
        else if (n >= 1 && **b == '$' && memchr(*b + 1, '$', n - 1) == NULL) (*b)++, again = 1;
        else if (n >= 1 && (*e)[-1] == '$' && memchr(*b, '$', n - 1) == NULL) (*e)--, again = 1;
    }
}

static int ans_emit(const char *b, const char *e, char *out, size_t cap) {
    size_t n = (size_t)(e - b);
    if (n == 0 || n + 1 > cap) {
        if (cap) out[0] = 0;
        return 0;
    }
    memcpy(out, b, n);
    out[n] = 0;
    return 1;
}

// First occurrence of needle in [p, e), or NULL.
static const char *ans_find(const char *p, const char *e, const char *needle) {
    size_t m = strlen(needle);
    for (; p + m <= e; p++)
        if (*p == needle[0] && memcmp(p, needle, m) == 0) return p;
    return NULL;
}

// The last candidate answer of a free-form solution (as math-verify also reads one): the last
// math span ($...$, $$...$$, \(...\), \[...\]), bold **...** or plain number in the text; of a
// span holding "a = b", the part after the last top-level '='.
static int ans_last_candidate(const char *s, const char *end, const char **ob, const char **oe) {
    const char *cb = NULL, *ce = NULL;
    for (const char *p = s; p < end;) {
        const char *open = NULL, *close = NULL;
        size_t ol = 0;
        if (end - p >= 2 && p[0] == '$' && p[1] == '$') open = "$$", close = "$$", ol = 2;
        else if (p[0] == '$') open = "$", close = "$", ol = 1;
        else if (end - p >= 2 && p[0] == '\\' && p[1] == '(') open = "\\(", close = "\\)", ol = 2;
        else if (end - p >= 2 && p[0] == '\\' && p[1] == '[') open = "\\[", close = "\\]", ol = 2;
        else if (end - p >= 2 && p[0] == '*' && p[1] == '*') open = "**", close = "**", ol = 2;
        if (open) {
            // a '$' span stays on one line (a lone '$' is a currency sign)
            const char *lim = ol == 1 ? ans_eol(p + 1, end) : end;
            const char *q = ans_find(p + ol, lim, close);
            if (q) {
                const char *b = p + ol, *e = q;
                int depth = 0;
                for (const char *t = b; t < e; t++) {  // the right-hand side of the last '='
                    if (*t == '{' || *t == '(' || *t == '[') depth++;
                    else if ((*t == '}' || *t == ')' || *t == ']') && depth > 0) depth--;
                    else if (*t == '=' && depth == 0) b = t + 1;
                }
                ans_trim(&b, &e);
                if (e > b) cb = b, ce = e;
                p = q + strlen(close);
                continue;
            }
            p += ol;
            continue;
        }
        if (isdigit((unsigned char)*p) && (p == s || !isalnum((unsigned char)p[-1]))) {
            const char *b = p;
            if (b > s && b[-1] == '-' && (b - 1 == s || !isalnum((unsigned char)b[-2]))) b--;
            const char *q = p;
            while (q < end && isdigit((unsigned char)*q)) q++;
            while (end - q >= 4 && q[0] == ',' && isdigit((unsigned char)q[1]) && isdigit((unsigned char)q[2]) &&
                   isdigit((unsigned char)q[3]) && (end - q == 4 || !isdigit((unsigned char)q[4])))
                q += 4;
            if (end - q >= 2 && q[0] == '.' && isdigit((unsigned char)q[1])) {
                q++;
                while (q < end && isdigit((unsigned char)*q)) q++;
            }
            cb = b, ce = q;
            p = q;
            continue;
        }
        p++;
    }
    if (!cb) return 0;
    *ob = cb, *oe = ce;
    return 1;
}

int e2h_answer_extract(const char *text, size_t len, char *out, size_t cap) {
    if (!out || cap == 0) return 0;
    out[0] = 0;
    if (!text) return 0;
    len = strnlen(text, len);
    const char *end = text + len, *b, *e;
    // 1. The paper's (PRM800K) format: the line after the last "# Answer".
    const char *p = ans_rfind(text, len, "# Answer");
    if (p) {
        b = p + strlen("# Answer");
        while (b < end && ans_is_space(*b)) b++;
        e = ans_eol(b, end);
        const char *bb, *be;
        if (ans_last_box(b, (size_t)(e - b), &bb, &be)) b = bb, e = be;
        ans_strip_math(&b, &e);
        if (e > b) return ans_emit(b, e, out, cap);
    }
    // 2. The last box.
    if (ans_last_box(text, len, &b, &e)) {
        ans_trim(&b, &e);
        if (e > b) return ans_emit(b, e, out, cap);
    }
    // 3. GSM8K: "#### 42".
    p = ans_rfind(text, len, "####");
    if (p) {
        b = p + 4;
        while (b < end && *b == '#') b++;
        e = ans_eol(b, end);
        ans_strip_math(&b, &e);
        if (e > b) return ans_emit(b, e, out, cap);
    }
    // 4. "The answer is ...": up to the end of the line or of the sentence (". ").
    p = ans_rfind_ci(text, len, "answer is");
    if (p) {
        b = p + strlen("answer is");
        while (b < end && (ans_is_space(*b) || *b == ':')) b++;
        e = ans_eol(b, end);
        for (const char *q = b; q + 1 < e; q++)
            if (*q == '.' && ans_is_space(q[1])) { e = q; break; }
        ans_strip_math(&b, &e);
        if (e > b) return ans_emit(b, e, out, cap);
    }
    // 5. A free-form solution: its last math span or number.
    if (ans_last_candidate(text, end, &b, &e)) {
        ans_strip_math(&b, &e);
        if (e > b) return ans_emit(b, e, out, cap);
    }
    return 0;
}

// ---------------------------------------------------------------- a growable string

typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_reserve(sbuf *b, size_t need) {
    if (b->oom || need + 1 <= b->cap) return;
    size_t c = b->cap ? b->cap : 64;
    while (c < need + 1) c *= 2;
    char *s = realloc(b->s, c);
    if (!s) { b->oom = 1; return; }
    b->s = s, b->cap = c;
}
static void sb_put(sbuf *b, const char *s, size_t n) {
    sb_reserve(b, b->n + n);
    if (b->oom) return;
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}
static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_set(sbuf *b, const char *s, size_t n) { b->n = 0; sb_put(b, s, n); if (!b->oom && !b->s) sb_put(b, "", 0); }

// Replaces every occurrence of `from` by `to`.
static void sb_replace(sbuf *b, const char *from, const char *to) {
    if (b->oom || !b->s) return;
    size_t fl = strlen(from), tl = strlen(to);
    if (!strstr(b->s, from)) return;
    sbuf o = {0};
    sb_put(&o, "", 0);
    const char *p = b->s, *q;
    while ((q = strstr(p, from)) != NULL) {
        sb_put(&o, p, (size_t)(q - p));
        sb_put(&o, to, tl);
        p = q + fl;
    }
    sb_puts(&o, p);
    if (o.oom) { free(o.s); b->oom = 1; return; }
    free(b->s);
    *b = o;
}

// Replaces a LaTeX command `cmd` that is not a prefix of a longer command name.
static void sb_replace_cmd(sbuf *b, const char *cmd, const char *to) {
    if (b->oom || !b->s || !strstr(b->s, cmd)) return;
    size_t cl = strlen(cmd);
    sbuf o = {0};
    sb_put(&o, "", 0);
    const char *p = b->s, *q;
    while ((q = strstr(p, cmd)) != NULL) {
        sb_put(&o, p, (size_t)(q - p));
        if (isalpha((unsigned char)q[cl])) sb_put(&o, q, cl);
        else sb_puts(&o, to);
        p = q + cl;
    }
    sb_puts(&o, p);
    if (o.oom) { free(o.s); b->oom = 1; return; }
    free(b->s);
    *b = o;
}

// ---------------------------------------------------------------- normalization

static const char *const ans_units[] = {
    "units", "unit", "sq units", "square units", "cm", "centimeters", "centimeter", "mm", "meters", "meter",
    "m", "km", "kilometers", "inches", "inch", "in", "feet", "foot", "ft", "yards", "yard", "miles", "mile",
    "mph", "seconds", "second", "sec", "minutes", "minute", "min", "hours", "hour", "days", "day", "weeks",
    "week", "months", "month", "years", "year", "degrees", "degree", "dollars", "dollar", "cents", "cent",
    "pounds", "pound", "ounces", "ounce", "grams", "gram", "kg", "liters", "liter", "gallons", "gallon",
    "people", "students", "points", "ways", "marbles", "apples", "cookies", "square feet", "square inches",
    "square meters", "square centimeters", "sq ft", "cubic feet", "cubic inches", "cubic units", "times",
    "percent", "mm^2", "cm^2", "cm^3", "m^2", "in^2", "ft^2", "inches^2", "feet^2", "units^2", NULL};

static int ans_is_unit(const char *s, size_t n) {
    while (n && ans_is_space(*s)) s++, n--;
    while (n && (ans_is_space(s[n - 1]) || s[n - 1] == '.')) n--;
    if (!n) return 0;
    for (int i = 0; ans_units[i]; i++)
        if (strlen(ans_units[i]) == n && strncasecmp(ans_units[i], s, n) == 0) return 1;
    return 0;
}

// Only words: letters, spaces, '.', '\'', '-' (and at least one letter).
static int ans_words(const char *s, size_t n) {
    int letters = 0;
    for (size_t i = 0; i < n; i++) {
        if (isalpha((unsigned char)s[i])) letters = 1;
        else if (s[i] != ' ' && s[i] != '.' && s[i] != '\'' && s[i] != '-') return 0;
    }
    return letters;
}

// A plain number: [-]digits[,ddd][.digits] (spaces around allowed).
static int ans_pure_number(const char *s, size_t n) {
    size_t i = 0, d = 0;
    while (i < n && s[i] == ' ') i++;
    if (i < n && s[i] == '-') i++;
    for (; i < n && (isdigit((unsigned char)s[i]) || s[i] == ',' || s[i] == '.'); i++) d += isdigit((unsigned char)s[i]) != 0;
    while (i < n && s[i] == ' ') i++;
    return d > 0 && i == n;
}

// \text{...}-like commands whose braces are dropped (keeping the content).
static const char *const ans_textcmds[] = {"\\text", "\\textbf", "\\textit", "\\mathrm", "\\mathbf",
                                           "\\mbox", "\\textnormal", "\\operatorname", "\\mathit", NULL};

// True when s ends with a number-like character (so a trailing word there is a unit).
static int ans_numberish_end(const char *s, size_t n) {
    while (n && ans_is_space(s[n - 1])) n--;
    if (!n) return 0;
    char c = s[n - 1];
    return isdigit((unsigned char)c) || c == '}' || c == ')' || c == '.' || c == 'i' || c == '%';
}

// Drops a trailing \text{unit} (after a number), then unwraps the remaining text commands.
static void ans_text_units(sbuf *b) {
    for (int k = 0; ans_textcmds[k] && !b->oom; k++) {
        size_t cl = strlen(ans_textcmds[k]);
        char *p;
        size_t from = 0;
        while (!b->oom && (p = strstr(b->s + from, ans_textcmds[k])) != NULL) {
            size_t i = (size_t)(p - b->s), j = i + cl;
            if (isalpha((unsigned char)b->s[j])) { from = j; continue; }
            while (b->s[j] == ' ') j++;
            if (b->s[j] != '{') { from = j; continue; }
            size_t end = ans_match_brace(b->s, b->n, j);
            if (!end) { from = j; continue; }
            sbuf o = {0};
            // a trailing unit after a number: a known unit, or words written "\text{ words}"
            // (Hendrycks' MATH convention for units)
            int unit = end == b->n && i > 0 && ans_numberish_end(b->s, i) &&
                       (ans_is_unit(b->s + j + 1, end - j - 2) ||
                        (end - j - 2 > 0 && b->s[j + 1] == ' ' && ans_words(b->s + j + 1, end - j - 2)));
            sb_put(&o, b->s, i);
            if (!unit) sb_put(&o, b->s + j + 1, end - j - 2);
            size_t nf = o.n;
            sb_puts(&o, b->s + end);
            if (o.oom) { free(o.s); b->oom = 1; return; }
            free(b->s);
            *b = o;
            from = nf < i ? nf : i;  // rescan the unwrapped content (nested commands)
        }
    }
}

// Drops trailing plain unit words after a number ("5 cm", "12 square units").
static void ans_plain_units(sbuf *b) {
    for (int round = 0; round < 3 && !b->oom; round++) {
        size_t n = b->n;
        while (n && ans_is_space(b->s[n - 1])) n--;
        int done = 0;
        // the longest unit that is a whole trailing word run preceded by a space and a number
        for (size_t w = 0; w < n && !done; w++) {
            if (b->s[w] != ' ') continue;
            if ((ans_is_unit(b->s + w + 1, n - w - 1) && ans_numberish_end(b->s, w)) ||
                (ans_words(b->s + w + 1, n - w - 1) && ans_pure_number(b->s, w))) {
                b->n = w;
                b->s[w] = 0;
                done = 1;
            }
        }
        if (!done) return;
    }
}

// Removes commas in well-formed thousands groups: 1,234,567 -> 1234567 (not 1,23 or 1,2345).
static void ans_thousands(sbuf *b) {
    char *s = b->s;
    size_t n = b->n, w = 0;
    for (size_t i = 0; i < n;) {
        if (isdigit((unsigned char)s[i]) && (i == 0 || (!isdigit((unsigned char)s[i - 1]) && s[i - 1] != '.'))) {
            size_t j = i;
            while (j < n && isdigit((unsigned char)s[j])) j++;
            size_t lead = j - i, k = j;
            int groups = 0;
            while (lead <= 3 && k + 3 < n + 1 && s[k] == ',' && k + 3 < n + 1 && isdigit((unsigned char)s[k + 1]) &&
                   isdigit((unsigned char)s[k + 2]) && isdigit((unsigned char)s[k + 3]) &&
                   (k + 4 >= n || !isdigit((unsigned char)s[k + 4])))
                k += 4, groups++;
            for (size_t t = i; t < k; t++)
                if (!(groups && s[t] == ',')) s[w++] = s[t];
            i = k;
            continue;
        }
        s[w++] = s[i++];
    }
    s[w] = 0;
    b->n = w;
}

// Is s[0, n) a variable name: "x", "a_1", "x'", "\theta", or a tuple of them "(b,c)"?
static int ans_is_ident(const char *s, size_t n) {
    char t[40];
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '{' && s[i] != '}') {
            if (m + 1 >= sizeof t) return 0;
            t[m++] = s[i];
        }
    t[m] = 0;
    if (m >= 3 && t[0] == '(' && t[m - 1] == ')') {  // a tuple of names
        size_t st = 1;
        for (size_t i = 1; i < m; i++)
            if (t[i] == ',' || i == m - 1) {
                if (!ans_is_ident(t + st, i - st)) return 0;
                st = i + 1;
            }
        return 1;
    }
    if (m >= 1 && m <= 3 && isalpha((unsigned char)t[0])) {
        for (size_t i = 1; i < m; i++)
            if (!isalnum((unsigned char)t[i]) && t[i] != '_' && t[i] != '\'') return 0;
        return 1;
    }
    if (m >= 2 && m <= 8 && t[0] == '\\') {
        for (size_t i = 1; i < m; i++)
            if (!isalpha((unsigned char)t[i])) return 0;
        return 1;
    }
    return 0;
}

// True when s[0, n) has no letters outside LaTeX command names (a constant like \frac{28}{4}).
static int ans_no_bare_letters(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\') {
            while (i + 1 < n && isalpha((unsigned char)s[i + 1])) i++;
        } else if (isalpha((unsigned char)s[i])) return 0;
    }
    return 1;
}

// Drops a left-hand side: "x = 5", "(b,c) = (6,5)", "x \in [1,2]" -> the right-hand side; a
// chain of equal constants "\frac{28}{4} = 7" -> its last member.
static void ans_lhs(sbuf *b) {
    char *s = b->s;
    int depth = 0, n_eq = 0;
    size_t first = 0, last = 0;
    for (size_t i = 0; i < b->n; i++) {
        char c = s[i];
        if (c == '{' || c == '(' || c == '[') depth++;
        else if ((c == '}' || c == ')' || c == ']') && depth > 0) depth--;
        else if (c == '=' && depth == 0) {
            if (!n_eq++) first = i;
            last = i;
        }
    }
    size_t from;
    if (n_eq == 0) {
        char *q = strstr(s, "\\in");
        if (!q || isalpha((unsigned char)q[3]) || !ans_is_ident(s, (size_t)(q - s))) return;
        from = (size_t)(q - s) + 3;
    } else {
        if (!ans_is_ident(s, first) && !(first > 0 && ans_no_bare_letters(s, last))) return;
        from = last + 1;
    }
    while (from < b->n && s[from] == ' ') from++;
    if (from >= b->n) return;  // "x =" alone: keep it
    memmove(s, s + from, b->n - from + 1);
    b->n -= from;
}

// Drops the base subscript of a number: 4210_{5}, 4210_5 -> 4210 (as math-verify reads them).
static void ans_base_subscripts(sbuf *b) {
    char *s = b->s;
    size_t w = 0;
    for (size_t i = 0; i < b->n;) {
        if (s[i] == '_' && i > 0 && isdigit((unsigned char)s[i - 1])) {
            size_t j = i + 1;
            if (j < b->n && s[j] == '{') {
                size_t k = j + 1;
                while (k < b->n && isdigit((unsigned char)s[k])) k++;
                if (k > j + 1 && k < b->n && s[k] == '}') { i = k + 1; continue; }
            } else if (j < b->n && isdigit((unsigned char)s[j])) {
                while (j < b->n && isdigit((unsigned char)s[j])) j++;
                i = j;
                continue;
            }
        }
        s[w++] = s[i++];
    }
    s[w] = 0;
    b->n = w;
}

// Hendrycks/PRM800K-style string normalization of one answer.
static void ans_normalize(sbuf *b, const char *a, size_t n) {
    n = strnlen(a, n);
    const char *bb = a, *be = a + n;
    // an answer given as a whole solution or as \boxed{...}
    const char *xb, *xe;
    if (ans_last_box(a, n, &xb, &xe)) bb = xb, be = xe;
    ans_strip_math(&bb, &be);
    sb_set(b, bb, (size_t)(be - bb));
    if (b->oom) return;
    sb_replace(b, "\x01", "");
    sb_replace(b, "\\\\", "\x01");  // a LaTeX row break "\\" is not "\ " (a space)
    sb_replace(b, "\n", " ");
    sb_replace(b, "\r", " ");
    sb_replace(b, "\t", " ");
    sb_replace(b, "\\!", "");
    sb_replace(b, "\\,", " ");
    sb_replace(b, "\\;", " ");
    sb_replace(b, "\\:", " ");
    sb_replace(b, "\\ ", " ");
    sb_replace(b, "~", " ");
    sb_replace(b, "\x01", "\\\\");
    sb_replace_cmd(b, "\\quad", " ");
    sb_replace_cmd(b, "\\qquad", " ");
    sb_replace_cmd(b, "\\displaystyle", "");
    sb_replace_cmd(b, "\\dfrac", "\\frac");
    sb_replace_cmd(b, "\\tfrac", "\\frac");
    sb_replace_cmd(b, "\\cfrac", "\\frac");
    sb_replace(b, "\\left\\{", "\\{");
    sb_replace(b, "\\right\\}", "\\}");
    sb_replace(b, "\\left.", "");
    sb_replace(b, "\\right.", "");
    sb_replace_cmd(b, "\\left", "");
    sb_replace_cmd(b, "\\right", "");
    sb_replace_cmd(b, "\\bigl", "");
    sb_replace_cmd(b, "\\bigr", "");
    sb_replace_cmd(b, "\\Bigl", "");
    sb_replace_cmd(b, "\\Bigr", "");
    sb_replace(b, "\\lbrace", "\\{");
    sb_replace(b, "\\rbrace", "\\}");
    sb_replace(b, "^{\\circ}", "");
    sb_replace(b, "^\\circ", "");
    sb_replace(b, "{}^\\circ", "");
    sb_replace(b, "\xc2\xb0", "");  // the degree sign
    sb_replace_cmd(b, "\\degree", "");
    sb_replace(b, "\\%", "");
    sb_replace(b, "%", "");
    sb_replace(b, "\\$", "");
    sb_replace(b, "$", "");
    sb_replace(b, "{,}", ",");
    sb_replace_cmd(b, "\\dots", "\\ldots");
    sb_replace_cmd(b, "\\cdots", "\\ldots");
    if (b->oom) return;
    ans_text_units(b);
    if (b->oom) return;
    sb_replace(b, " and ", ",");
    sb_replace(b, " or ", ",");
    ans_plain_units(b);
    ans_thousands(b);
    ans_lhs(b);
    // spaces carry no meaning once the commands above are resolved
    size_t w = 0;
    for (size_t i = 0; i < b->n; i++)
        if (!ans_is_space(b->s[i])) b->s[w++] = b->s[i];
    b->s[w] = 0;
    b->n = w;
    while (b->n && (b->s[b->n - 1] == '.' || b->s[b->n - 1] == ',')) b->s[--b->n] = 0;
    ans_base_subscripts(b);
    if (b->n > 0 && b->s[0] == '+' && b->n > 1 && isdigit((unsigned char)b->s[1])) memmove(b->s, b->s + 1, b->n--);
}

// ---------------------------------------------------------------- exact arithmetic

typedef struct { int64_t p, q; } rat;  // q > 0, gcd(|p|, q) = 1

static int64_t ans_gcd(int64_t a, int64_t b) {
    if (a < 0) a = -a;
    if (b < 0) b = -b;
    while (b) { int64_t t = a % b; a = b; b = t; }
    return a;
}

// Reduces p/q into r; 0 if out of range.
static int rat_make(__int128 p, __int128 q, rat *r) {
    if (q == 0) return 0;
    if (q < 0) p = -p, q = -q;
    __int128 a = p < 0 ? -p : p, b = q;
    while (b) { __int128 t = a % b; a = b; b = t; }
    if (a > 1) p /= a, q /= a;
    if (p > INT64_MAX || p < -INT64_MAX || q > INT64_MAX) return 0;
    r->p = (int64_t)p, r->q = (int64_t)q;
    return 1;
}
static int rat_add(rat a, rat b, rat *r) { return rat_make((__int128)a.p * b.q + (__int128)b.p * a.q, (__int128)a.q * b.q, r); }
static int rat_mul(rat a, rat b, rat *r) {
    // cross-reduce first so that products stay small
    int64_t g1 = ans_gcd(a.p, b.q), g2 = ans_gcd(b.p, a.q);
    if (g1 == 0) g1 = 1;
    if (g2 == 0) g2 = 1;
    return rat_make((__int128)(a.p / g1) * (b.p / g2), (__int128)(a.q / g2) * (b.q / g1), r);
}

#define ANS_NSYM 64   // 52 letters + Greek/constants below
#define ANS_MAXT 16   // terms per polynomial
#define ANS_MAXDEPTH 40

static const char *const ans_greek[] = {"pi", "infty", "theta", "alpha", "beta", "gamma", "delta", "phi",
                                        "omega", "lambda", "mu", "sigma", NULL};

typedef struct {
    rat c;
    int64_t rad;             // square-free, >= 1: the term is c * sqrt(rad) * prod sym^e
    int8_t e[ANS_NSYM];
} mono;
typedef struct {
    int n;
    mono t[ANS_MAXT];
} poly;

static int mono_same(const mono *a, const mono *b) { return a->rad == b->rad && memcmp(a->e, b->e, sizeof a->e) == 0; }

static int poly_add_term(poly *p, const mono *m) {
    if (m->c.p == 0) return 1;
    for (int i = 0; i < p->n; i++)
        if (mono_same(&p->t[i], m)) {
            if (!rat_add(p->t[i].c, m->c, &p->t[i].c)) return 0;
            if (p->t[i].c.p == 0) p->t[i] = p->t[--p->n];
            return 1;
        }
    if (p->n == ANS_MAXT) return 0;
    p->t[p->n++] = *m;
    return 1;
}
static int poly_add(poly *a, const poly *b, int sign) {
    for (int i = 0; i < b->n; i++) {
        mono m = b->t[i];
        m.c.p *= sign;
        if (!poly_add_term(a, &m)) return 0;
    }
    return 1;
}
static int mono_mul(const mono *a, const mono *b, mono *r) {
    *r = *a;
    if (!rat_mul(a->c, b->c, &r->c)) return 0;
    int64_t g = ans_gcd(a->rad, b->rad);  // sqrt(a)sqrt(b) = g sqrt((a/g)(b/g)), square-free
    __int128 rr = (__int128)(a->rad / g) * (b->rad / g);
    if (rr > INT64_MAX) return 0;
    r->rad = (int64_t)rr;
    if (g > 1 && !rat_mul(r->c, (rat){g, 1}, &r->c)) return 0;
    for (int i = 0; i < ANS_NSYM; i++) {
        int s = a->e[i] + b->e[i];
        if (s > 100 || s < -100) return 0;
        r->e[i] = (int8_t)s;
    }
    return 1;
}
static int poly_mul(const poly *a, const poly *b, poly *r) {
    poly o;
    o.n = 0;
    for (int i = 0; i < a->n; i++)
        for (int j = 0; j < b->n; j++) {
            mono m;
            if (!mono_mul(&a->t[i], &b->t[j], &m) || !poly_add_term(&o, &m)) return 0;
        }
    *r = o;
    return 1;
}
// 1 / (c sqrt(r) X^e) = sqrt(r) / (c r) X^-e; only single-term divisors.
static int poly_inv(const poly *a, poly *r) {
    if (a->n != 1) return 0;
    const mono *m = &a->t[0];
    mono o = *m;
    if (!rat_make((__int128)m->c.q, (__int128)m->c.p * m->rad, &o.c)) return 0;
    for (int i = 0; i < ANS_NSYM; i++) o.e[i] = (int8_t)-m->e[i];
    r->n = 1;
    r->t[0] = o;
    return 1;
}
static int poly_is_const(const poly *p) {
    for (int i = 0; i < p->n; i++) {
        if (p->t[i].rad != 1) return 0;
        for (int k = 0; k < ANS_NSYM; k++)
            if (p->t[i].e[k]) return 0;
    }
    return 1;
}
static rat poly_const(const poly *p) { return p->n ? p->t[0].c : (rat){0, 1}; }
static void poly_from_rat(poly *p, rat r) {
    memset(p, 0, sizeof *p);
    if (r.p == 0) return;
    p->n = 1;
    p->t[0].c = r;
    p->t[0].rad = 1;
}

// sqrt(n) = k sqrt(m), m square-free; 0 if n is too large to factor quickly.
static int ans_sqrt_int(int64_t n, int64_t *k, int64_t *m) {
    if (n < 0 || n > 1000000000000LL) return 0;
    *k = 1, *m = 1;
    for (int64_t d = 2; d * d <= n; d++)
        while (n % (d * d) == 0) n /= d * d, *k *= d;
    *m = n;
    return 1;
}

// ---------------------------------------------------------------- expression parser

typedef struct {
    const char *s;
    size_t i, n;
    int depth;
} ep;

static int ep_peek(ep *p) { return p->i < p->n ? (unsigned char)p->s[p->i] : 0; }
static int ep_cmd(ep *p, const char *cmd) {  // consumes \cmd if next (and not a longer name)
    size_t l = strlen(cmd);
    if (p->i + l <= p->n && memcmp(p->s + p->i, cmd, l) == 0 &&
        (p->i + l == p->n || !isalpha((unsigned char)p->s[p->i + l]))) {
        p->i += l;
        return 1;
    }
    return 0;
}

static int ep_expr(ep *p, poly *r);
static int ep_factor(ep *p, poly *r, int *int_lit);

// A braced group or a single token (\frac12, \sqrt2, \frac\pi2).
static int ep_arg(ep *p, poly *r) {
    int c = ep_peek(p);
    if (c == '{') {
        p->i++;
        if (!ep_expr(p, r) || ep_peek(p) != '}') return 0;
        p->i++;
        return 1;
    }
    if (isdigit(c)) {
        poly_from_rat(r, (rat){c - '0', 1});
        p->i++;
        return 1;
    }
    int lit;
    return ep_factor(p, r, &lit);
}

static int ep_number(ep *p, poly *r) {
    __int128 num = 0, den = 1;
    int digits = 0, frac = 0, any = 0, fdigits = 0;
    while (p->i < p->n && (isdigit((unsigned char)p->s[p->i]) || p->s[p->i] == '.')) {
        char c = p->s[p->i];
        if (c == '.') {
            if (frac) return 0;
            frac = 1;
        } else {
            if (digits >= 36) return 0;
            any = 1;
            if (num != 0 || c != '0') digits++;
            if (frac && ++fdigits > 30) return 0;  // 10^30 still fits; more would overflow den
            num = num * 10 + (c - '0');
            if (frac) den *= 10;
        }
        p->i++;
    }
    rat q;
    if (!any || !rat_make(num, den, &q)) return 0;
    poly_from_rat(r, q);
    return 1;
}

// A primary: number, group, \frac, \sqrt, symbol. *int_lit = 1 for a plain integer literal.
static int ep_primary(ep *p, poly *r, int *int_lit) {
    *int_lit = 0;
    if (++p->depth > ANS_MAXDEPTH) return 0;
    int ok = 0, c = ep_peek(p);
    if (isdigit(c) || c == '.') {
        size_t st = p->i;
        ok = ep_number(p, r);
        *int_lit = ok && memchr(p->s + st, '.', p->i - st) == NULL;
    } else if (c == '(' || c == '{' || c == '[') {
        int close = c == '(' ? ')' : c == '{' ? '}' : ']';
        p->i++;
        ok = ep_expr(p, r) && ep_peek(p) == close;
        if (ok) p->i++;
    } else if (ep_cmd(p, "\\frac")) {
        poly a, b, ib;
        ok = ep_arg(p, &a) && ep_arg(p, &b) && poly_inv(&b, &ib) && poly_mul(&a, &ib, r);
    } else if (ep_cmd(p, "\\sqrt")) {
        poly a;
        ok = ep_peek(p) != '[' && ep_arg(p, &a) && poly_is_const(&a);
        if (ok) {
            rat q = poly_const(&a);
            int64_t k1, m1;
            // sqrt(p/q) = sqrt(p q) / q
            __int128 pq = (__int128)q.p * q.q;
            ok = q.p >= 0 && pq <= INT64_MAX && ans_sqrt_int((int64_t)pq, &k1, &m1);
            if (ok) {
                memset(r, 0, sizeof *r);
                if (k1 && pq) {
                    r->n = 1;
                    r->t[0].rad = m1;
                    ok = rat_make(k1, q.q, &r->t[0].c);
                }
            }
        }
    } else if (c == '\\') {
        for (int g = 0; ans_greek[g]; g++) {
            char cmd[16] = "\\";
            strcat(cmd, ans_greek[g]);
            if (ep_cmd(p, cmd)) {
                poly_from_rat(r, (rat){1, 1});
                r->t[0].e[52 + g] = 1;
                ok = 1;
                break;
            }
        }
    } else if (isalpha(c)) {
        // a single-letter symbol; runs of letters (words, function names) are not algebra here
        if (!(p->i + 1 < p->n && isalpha((unsigned char)p->s[p->i + 1]))) {
            poly_from_rat(r, (rat){1, 1});
            r->t[0].e[isupper(c) ? 26 + (c - 'A') : c - 'a'] = 1;
            p->i++;
            ok = 1;
        }
    }
    p->depth--;
    return ok;
}

// Integer power of a polynomial (|n| <= 64; negative only for single terms).
static int poly_pow(const poly *a, int64_t n, poly *r) {
    if (n < -64 || n > 64) return 0;
    poly base = *a, acc;
    if (n < 0) {
        if (!poly_inv(a, &base)) return 0;
        n = -n;
    }
    poly_from_rat(&acc, (rat){1, 1});
    for (int64_t k = 0; k < n; k++)
        if (!poly_mul(&acc, &base, &acc)) return 0;
    *r = acc;
    return 1;
}

// factor := ['-'|'+'] primary ['^' arg]
static int ep_factor(ep *p, poly *r, int *int_lit) {
    int c = ep_peek(p);
    if (c == '-' || c == '+') {
        p->i++;
        if (++p->depth > ANS_MAXDEPTH) return 0;
        int ok = ep_factor(p, r, int_lit);
        p->depth--;
        if (ok && c == '-')
            for (int i = 0; i < r->n; i++) r->t[i].c.p = -r->t[i].c.p;
        *int_lit = 0;
        return ok;
    }
    if (!ep_primary(p, r, int_lit)) return 0;
    while (ep_peek(p) == '^') {
        p->i++;
        poly e;
        if (!ep_arg(p, &e) || !poly_is_const(&e)) return 0;
        rat q = poly_const(&e);
        if (q.q != 1 || !poly_pow(r, q.p, r)) return 0;
        *int_lit = 0;
    }
    return 1;
}

// Starts a factor by juxtaposition (implicit multiplication)?
static int ep_starts_factor(ep *p) {
    int c = ep_peek(p);
    if (isdigit(c) || c == '.' || c == '(' || c == '{' || isalpha(c)) return 1;
    if (c != '\\') return 0;
    if (p->i + 1 < p->n && !isalpha((unsigned char)p->s[p->i + 1])) return 0;
    return 1;
}

// term := factor ((* | \cdot | \times | / | \div | juxtaposition) factor)*; "2\frac{1}{2}" is the
// mixed number 5/2 (an integer literal followed by a fraction of integer literals).
static int ep_term(ep *p, poly *r) {
    int lit;
    if (!ep_factor(p, r, &lit)) return 0;
    int first = 1, first_lit = lit;
    for (;;) {
        int op = 0;
        if (ep_peek(p) == '*') p->i++, op = '*';
        else if (ep_peek(p) == '/') p->i++, op = '/';
        else if (ep_cmd(p, "\\cdot") || ep_cmd(p, "\\times")) op = '*';
        else if (ep_cmd(p, "\\div")) op = '/';
        else if (ep_starts_factor(p)) op = 'j';
        else return 1;
        size_t at = p->i;
        poly f;
        int flit;
        if (op == 'j' && first && first_lit && ep_cmd(p, "\\frac")) {
            // mixed number?
            poly a, b;
            int la, lb;
            size_t s2 = p->i;
            if (ep_peek(p) == '{') {
                p->i++;
                la = ep_factor(p, &a, &la) && la && ep_peek(p) == '}';
                if (la) p->i++;
            } else la = 0;
            if (la && ep_peek(p) == '{') {
                p->i++;
                lb = ep_factor(p, &b, &lb) && lb && ep_peek(p) == '}';
                if (lb) p->i++;
            } else lb = 0;
            if (la && lb && !(ep_peek(p) == '^') && !ep_starts_factor(p)) {
                poly ib, fr;
                if (!poly_inv(&b, &ib) || !poly_mul(&a, &ib, &fr) || !poly_add(r, &fr, 1)) return 0;
                first = 0;
                continue;
            }
            (void)s2;
            p->i = at;
        }
        if (!ep_factor(p, &f, &flit)) return 0;
        if (op == '/') {
            poly inv;
            if (!poly_inv(&f, &inv) || !poly_mul(r, &inv, r)) return 0;
        } else if (!poly_mul(r, &f, r)) return 0;
        first = 0;
    }
}

// expr := term (('+'|'-') term)*
static int ep_expr(ep *p, poly *r) {
    if (++p->depth > ANS_MAXDEPTH) return 0;
    int sign = 1;
    if (ep_peek(p) == '-') p->i++, sign = -1;
    else if (ep_peek(p) == '+') p->i++;
    poly t;
    memset(r, 0, sizeof *r);
    for (;;) {
        if (!ep_term(p, &t) || !poly_add(r, &t, sign)) return 0;
        if (ep_peek(p) == '+') p->i++, sign = 1;
        else if (ep_peek(p) == '-') p->i++, sign = -1;
        else break;
    }
    p->depth--;
    return 1;
}

static int mono_cmp(const void *x, const void *y) {
    const mono *a = x, *b = y;
    int c = memcmp(a->e, b->e, sizeof a->e);
    if (c) return c;
    return (a->rad > b->rad) - (a->rad < b->rad);
}

// The key of a polynomial: terms in a fixed order, "c*rM*sym^e".
static void poly_key(poly *p, sbuf *o) {
    if (p->n == 0) { sb_puts(o, "0"); return; }
    qsort(p->t, (size_t)p->n, sizeof p->t[0], mono_cmp);
    for (int i = 0; i < p->n; i++) {
        char tmp[96];
        const mono *m = &p->t[i];
        if (m->c.q == 1) snprintf(tmp, sizeof tmp, "%s%lld", i ? "+" : "", (long long)m->c.p);
        else snprintf(tmp, sizeof tmp, "%s%lld/%lld", i ? "+" : "", (long long)m->c.p, (long long)m->c.q);
        sb_puts(o, tmp);
        if (m->rad != 1) {
            snprintf(tmp, sizeof tmp, "*r%lld", (long long)m->rad);
            sb_puts(o, tmp);
        }
        for (int k = 0; k < ANS_NSYM; k++)
            if (m->e[k]) {
                if (k < 52) snprintf(tmp, sizeof tmp, "*%c", k < 26 ? 'a' + k : 'A' + k - 26);
                else snprintf(tmp, sizeof tmp, "*\\%s", ans_greek[k - 52]);
                sb_puts(o, tmp);
                if (m->e[k] != 1) {
                    snprintf(tmp, sizeof tmp, "^%d", m->e[k]);
                    sb_puts(o, tmp);
                }
            }
    }
}

// ---------------------------------------------------------------- structure

// Splits s[0, n) at top-level occurrences of sep (depth counted over (), [], {}, \{ \}).
// Returns the number of parts (stored up to max in starts/lens), 0 on unbalanced input.
static int ans_split(const char *s, size_t n, const char *sep, size_t *starts, size_t *lens, int max) {
    int depth = 0, k = 0;
    size_t sl = strlen(sep), st = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n && (s[i + 1] == '{' || s[i + 1] == '}')) {
            depth += s[i + 1] == '{' ? 1 : -1;
            i++;
            continue;
        }
        if (c == '(' || c == '[' || c == '{') depth++;
        else if (c == ')' || c == ']' || c == '}') depth--;
        else if (depth == 0 && i + sl <= n && memcmp(s + i, sep, sl) == 0) {
            if (k < max) starts[k] = st, lens[k] = i - st;
            k++;
            st = i + sl;
            i += sl - 1;
        }
        if (depth < 0) return 0;
    }
    if (depth != 0) return 0;
    if (k < max) starts[k] = st, lens[k] = n - st;
    return k + 1;
}

// Index of the bracket closing the one at s[0] (over the whole string), or 0.
static size_t ans_close_of(const char *s, size_t n) {
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n && (s[i + 1] == '{' || s[i + 1] == '}')) { i++; continue; }
        if (c == '(' || c == '[' || c == '{') depth++;
        else if (c == ')' || c == ']' || c == '}') {
            if (--depth == 0) return i;
        }
    }
    return 0;
}

static int key_cmp(const void *x, const void *y) { return strcmp(*(char *const *)x, *(char *const *)y); }

static void ans_key_rec(const char *s, size_t n, sbuf *o, int depth);

// Keys of the parts of s, written as open + parts (sorted if unordered) + close.
static void ans_key_list(const char *s, size_t n, const char *sep, const char *open, const char *close,
                         int unordered, sbuf *o, int depth) {
    enum { MAXP = 64 };
    size_t st[MAXP], ln[MAXP];
    int k = ans_split(s, n, sep, st, ln, MAXP);
    if (k > MAXP) {  // too many parts: the string form
        sb_puts(o, "S:");
        sb_put(o, s, n);
        return;
    }
    sbuf parts[MAXP];
    char *ptr[MAXP];
    memset(parts, 0, sizeof parts);
    for (int i = 0; i < k; i++) {
        sb_put(&parts[i], "", 0);
        ans_key_rec(s + st[i], ln[i], &parts[i], depth + 1);
        if (parts[i].oom) o->oom = 1;
        ptr[i] = parts[i].s ? parts[i].s : (char *)"";
    }
    if (unordered) qsort(ptr, (size_t)k, sizeof ptr[0], key_cmp);
    sb_puts(o, open);
    for (int i = 0; i < k; i++) {
        if (i) sb_puts(o, ";");
        sb_puts(o, ptr[i]);
    }
    sb_puts(o, close);
    for (int i = 0; i < k; i++) free(parts[i].s);
}

// "a \pm b" -> the unordered list {a + b, a - b}. Returns 1 if it wrote a key.
static int ans_key_pm(const char *s, size_t n, sbuf *o, int depth) {
    size_t st[3], ln[3];
    if (ans_split(s, n, "\\pm", st, ln, 3) != 2 || isalpha((unsigned char)s[st[1]])) return 0;
    sbuf t = {0};
    sb_put(&t, s, ln[0]);
    sb_puts(&t, "+");
    sb_put(&t, s + st[1], ln[1]);
    sb_puts(&t, ",");
    sb_put(&t, s, ln[0]);
    sb_puts(&t, "-(");
    sb_put(&t, s + st[1], ln[1]);
    sb_puts(&t, ")");
    if (t.oom) { free(t.s); o->oom = 1; return 1; }
    ans_key_list(t.s, t.n, ",", "L{", "}", 1, o, depth);
    free(t.s);
    return 1;
}

// \begin{pmatrix} a & b \\ c & d \end{pmatrix} (also bmatrix, matrix): entries keyed one by one.
static int ans_key_matrix(const char *s, size_t n, sbuf *o, int depth) {
    static const char *const env[] = {"pmatrix", "bmatrix", "matrix", NULL};
    for (int k = 0; env[k]; k++) {
        char b[32], e[32];
        snprintf(b, sizeof b, "\\begin{%s}", env[k]);
        snprintf(e, sizeof e, "\\end{%s}", env[k]);
        size_t bl = strlen(b), el = strlen(e);
        if (n < bl + el || memcmp(s, b, bl) || memcmp(s + n - el, e, el)) continue;
        const char *c = s + bl;
        size_t cn = n - bl - el;
        enum { MAXR = 32 };
        size_t rs[MAXR], rl[MAXR];
        int nr = ans_split(c, cn, "\\\\", rs, rl, MAXR);
        if (nr < 1 || nr > MAXR) return 0;
        if (nr > 1 && rl[nr - 1] == 0) nr--;  // a trailing row break
        sb_puts(o, "M[");
        for (int r = 0; r < nr; r++) {
            if (r) sb_puts(o, ";");
            ans_key_list(c + rs[r], rl[r], "&", "[", "]", 0, o, depth);
        }
        sb_puts(o, "]");
        return 1;
    }
    return 0;
}

// "A = B" with both sides polynomials: the key of A - B scaled so that its first term has
// coefficient 1 (equivalent equations up to a constant factor key alike).
static int ans_key_equation(const char *s, size_t n, sbuf *o) {
    size_t st[3], ln[3];
    if (ans_split(s, n, "=", st, ln, 3) != 2 || ln[0] == 0 || ln[1] == 0) return 0;
    poly a, b;
    ep pa = {s + st[0], 0, ln[0], 0}, pb = {s + st[1], 0, ln[1], 0};
    if (!ep_expr(&pa, &a) || pa.i != ln[0] || !ep_expr(&pb, &b) || pb.i != ln[1] || !poly_add(&a, &b, -1))
        return 0;
    if (a.n > 0) {
        qsort(a.t, (size_t)a.n, sizeof a.t[0], mono_cmp);
        if (a.t[0].rad == 1) {
            rat inv;
            if (!rat_make(a.t[0].c.q, a.t[0].c.p, &inv)) return 0;
            for (int i = 0; i < a.n; i++)
                if (!rat_mul(a.t[i].c, inv, &a.t[i].c)) return 0;
        }
    }
    sb_puts(o, "E:");
    poly_key(&a, o);
    return 1;
}

// The key of a normalized answer s[0, n).
static void ans_key_rec(const char *s, size_t n, sbuf *o, int depth) {
    size_t st[2], ln[2];
    if (n == 0) { sb_puts(o, "S:"); return; }
    if (depth > 8) goto str;
    if (ans_split(s, n, "\\cup", st, ln, 2) > 1) {
        ans_key_list(s, n, "\\cup", "U{", "}", 1, o, depth);
        return;
    }
    if (ans_split(s, n, ",", st, ln, 2) > 1) {  // a bare list: order does not matter
        ans_key_list(s, n, ",", "L{", "}", 1, o, depth);
        return;
    }
    if (n >= 4 && s[0] == '\\' && s[1] == '{' && s[n - 2] == '\\' && s[n - 1] == '}' &&
        ans_split(s + 2, n - 4, ",", st, ln, 2) > 0) {
        ans_key_list(s + 2, n - 4, ",", "L{", "}", 1, o, depth);
        return;
    }
    if (n >= 2 && (s[0] == '(' || s[0] == '[') && (s[n - 1] == ')' || s[n - 1] == ']') &&
        ans_close_of(s, n) == n - 1) {
        int k = ans_split(s + 1, n - 2, ",", st, ln, 2);
        if (k > 1) {
            char open[2] = {s[0], 0}, close[2] = {s[n - 1], 0};
            ans_key_list(s + 1, n - 2, ",", open, close, 0, o, depth);
            return;
        }
        if (k == 1 && s[0] == '(' && s[n - 1] == ')') {  // plain grouping
            ans_key_rec(s + 1, n - 2, o, depth + 1);
            return;
        }
    }
    if (ans_key_pm(s, n, o, depth) || ans_key_matrix(s, n, o, depth) || ans_key_equation(s, n, o)) return;
    {
        poly r;
        ep p = {s, 0, n, 0};
        if (ep_expr(&p, &r) && p.i == n) {
            poly_key(&r, o);
            return;
        }
    }
str:
    sb_puts(o, "S:");
    sb_put(o, s, n);
}

// Key into a malloc'd string (NULL on out of memory).
static char *ans_key_alloc(const char *a, size_t len) {
    sbuf norm = {0}, o = {0};
    ans_normalize(&norm, a ? a : "", a ? len : 0);
    sb_put(&o, "", 0);
    if (!norm.oom) ans_key_rec(norm.s ? norm.s : "", norm.n, &o, 0);
    int bad = norm.oom || o.oom;
    free(norm.s);
    if (bad) { free(o.s); return NULL; }
    return o.s;
}

int e2h_answer_key(const char *answer, size_t len, char *out, size_t cap) {
    if (!out || cap == 0) return 0;
    out[0] = 0;
    char *k = ans_key_alloc(answer, len);
    if (!k) return 0;
    size_t n = strlen(k);
    int ok = n + 1 <= cap;
    if (ok) memcpy(out, k, n + 1);
    free(k);
    return ok;
}

int e2h_answer_equal(const char *a, size_t alen, const char *b, size_t blen) {
    if (!a || !b) return 0;
    char *ka = ans_key_alloc(a, alen), *kb = ans_key_alloc(b, blen);
    int eq = ka && kb && strcmp(ka, kb) == 0 && strcmp(ka, "S:") != 0;
    free(ka);
    free(kb);
    return eq;
}
