// tests/test_answer.c — answer extraction, canonical keys and equivalence (engine/answer.c).
// Expected values are written by hand from the MATH / PRM800K / GSM8K conventions; the
// independent check against math-verify on real samples is tools/eval/agree.py
// (tests/py/test_answer_agreement.py).
#include <stdint.h>

#include "../include/e2h.h"
#include "harness.h"

static int ex(const char *text, const char *want) {
    char out[256];
    int found = e2h_answer_extract(text, strlen(text), out, sizeof out);
    if (!want) {
        if (found) printf("  extract(%s) = '%s', want none\n", text, out);
        return !found && out[0] == 0;
    }
    if (!found || strcmp(out, want)) printf("  extract(%s) = %d '%s', want '%s'\n", text, found, out, want);
    return found && !strcmp(out, want);
}
static int eq(const char *a, const char *b) {
    int r = e2h_answer_equal(a, strlen(a), b, strlen(b));
    int r2 = e2h_answer_equal(b, strlen(b), a, strlen(a));
    if (r != r2) printf("  equal not symmetric: '%s' '%s'\n", a, b);
    if (!r) {
        char ka[256], kb[256];
        e2h_answer_key(a, strlen(a), ka, sizeof ka);
        e2h_answer_key(b, strlen(b), kb, sizeof kb);
        printf("  '%s' -> %s  vs  '%s' -> %s\n", a, ka, b, kb);
    }
    return r && r2;
}
static int ne(const char *a, const char *b) {
    int r = e2h_answer_equal(a, strlen(a), b, strlen(b));
    if (r) {
        char ka[256];
        e2h_answer_key(a, strlen(a), ka, sizeof ka);
        printf("  '%s' and '%s' both -> %s\n", a, b, ka);
    }
    return !r;
}

TEST(extract_formats) {
    CHECK(ex("Step 1.\n\nStep 2.\n\n# Answer\n\n42", "42"));
    CHECK(ex("# Answer\n\n\\frac{1}{2}\n", "\\frac{1}{2}"));
    CHECK(ex("# Answer\n\n$3\\sqrt{2}$.", "3\\sqrt{2}"));
    CHECK(ex("so $\\boxed{5}$.", "5"));
    CHECK(ex("first \\boxed{1} then \\boxed{\\frac{a}{b}}", "\\frac{a}{b}"));
    CHECK(ex("nested \\boxed{\\frac{\\sqrt{3}}{2}} ok", "\\frac{\\sqrt{3}}{2}"));
    CHECK(ex("The answer is $\\boxed 7$.", "7"));
    CHECK(ex("\\fbox{x+1}", "x+1"));
    CHECK(ex("\\boxed{1} and later \\fbox{2}", "2"));
    CHECK(ex("He pays 5*3=15 dollars.\n#### 15", "15"));
    CHECK(ex("blah\n#### 1,000\n", "1,000"));
    CHECK(ex("Thus the answer is 12. Next problem", "12"));
    CHECK(ex("The final answer is $\\frac{3}{4}$.", "\\frac{3}{4}"));
    CHECK(ex("THE ANSWER IS: (1,2)\nmore text", "(1,2)"));
    CHECK(ex("\\boxed{\\text{(B)}}", "\\text{(B)}"));
    CHECK(ex("\\boxed{a\\{b\\}c}", "a\\{b\\}c"));
}

TEST(extract_free_form) {
    // no marked answer: the last math span (its right-hand side) or number, as math-verify reads it
    CHECK(ex("Therefore, the area of kite $ABCD$ is $75$ square units.", "75"));
    CHECK(ex("So \\( x = 10 \\).", "10"));
    CHECK(ex("We get \\[ x^3 = \\frac{8}{2/3} = 12 \\]\n\nTherefore, \\(x^3 = 12\\).", "12"));
    CHECK(ex("there are **12,441,600** ways", "12,441,600"));
    CHECK(ex("Raymond has $32 - $24 = $8\n\nSo Raymond has $8 left.", "8"));
    CHECK(ex("the change is $7.00.", "7.00"));
    CHECK(ex("the temperature is -5 today", "-5"));
    CHECK(ex("x-5 and y2", "5"));
    CHECK(ex("no digits, no math", NULL));
    CHECK(ex("an unclosed $ and \\( and ** here", NULL));
}

TEST(extract_malformed) {
    CHECK(ex("", NULL));
    CHECK(ex("no answer here", NULL));
    CHECK(ex("\\boxed{", NULL));
    CHECK(ex("\\boxed{unclosed", NULL));
    CHECK(ex("\\boxed{}", NULL));
    CHECK(ex("\\boxed", NULL));
    CHECK(ex("\\boxedfoo{x}", NULL));
    CHECK(ex("# Answer", NULL));
    CHECK(ex("# Answer\n\n", NULL));
    CHECK(ex("####", NULL));
    CHECK(ex("the answer is", NULL));
    CHECK(ex("\\boxed{2} then a truncated \\boxed{3", "2"));  // an unclosed last box: the one before
    // never reads past len: the box closes only beyond the given length
    const char *t = "\\boxed{12}";
    char out[16];
    CHECK(e2h_answer_extract(t, 9, out, sizeof out) == 1 && !strcmp(out, "12"));  // the fallback
    CHECK(e2h_answer_extract(t, 10, out, sizeof out) == 1 && !strcmp(out, "12"));
    // a NUL inside the length ends the text
    const char z[] = "\\boxed{7}\0\\boxed{8}";
    CHECK(e2h_answer_extract(z, sizeof z - 1, out, sizeof out) == 1 && !strcmp(out, "7"));
    // too small an output buffer: not found, empty
    CHECK(e2h_answer_extract("\\boxed{123456}", 14, out, 4) == 0 && out[0] == 0);
    CHECK(e2h_answer_extract(NULL, 5, out, sizeof out) == 0);
    CHECK(e2h_answer_extract("x", 1, NULL, 0) == 0);
    // an exact-size heap copy (ASan catches a read past the end)
    const char *s = "so \\boxed{\\frac{x}{y}";
    size_t n = strlen(s);
    char *h = malloc(n);
    memcpy(h, s, n);
    CHECK(e2h_answer_extract(h, n, out, sizeof out) == 0);
    memcpy(h, "so it is $\\frac{x}{3}", n);
    CHECK(e2h_answer_extract(h, n, out, sizeof out) == 1 && !strcmp(out, "3"));
    memcpy(h, "# Answer\n\n12345678901", n);
    CHECK(e2h_answer_extract(h, n, out, sizeof out) == 1 && !strcmp(out, "12345678901"));
    free(h);
}

TEST(numbers) {
    CHECK(eq("0.5", "\\frac{1}{2}"));
    CHECK(eq("\\frac12", "1/2"));
    CHECK(eq("\\dfrac{2}{4}", "\\tfrac{1}{2}"));
    CHECK(eq(".5", "0.50"));
    CHECK(eq("10", "10.0"));
    CHECK(eq("-3", "- 3"));
    CHECK(eq("1,000", "1000"));
    CHECK(eq("1{,}234{,}567", "1234567"));
    CHECK(eq("1\\,000", "1000"));
    CHECK(eq("2\\frac{1}{2}", "\\frac{5}{2}"));       // mixed number
    CHECK(eq("-2\\frac{1}{2}", "-2.5"));
    CHECK(eq("\\frac{-1}{3}", "-\\frac13"));
    CHECK(eq("2^{10}", "1024"));
    CHECK(eq("3 \\cdot 4", "12"));
    CHECK(eq("\\$18.90", "18.9"));
    CHECK(eq("50\\%", "50"));
    CHECK(eq("30^\\circ", "30"));
    CHECK(eq("30^{\\circ}", "30"));
    CHECK(eq("+7", "7"));
    CHECK(eq("007", "7"));
    CHECK(ne("0.333", "\\frac13"));
    CHECK(ne("1", "-1"));
    CHECK(ne("12", "1.2"));
    CHECK(ne("1,23", "123"));   // not a thousands group: a list of two numbers
}

TEST(radicals_and_symbols) {
    CHECK(eq("\\sqrt{8}", "2\\sqrt{2}"));
    CHECK(eq("\\sqrt8", "2\\sqrt2"));
    CHECK(eq("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}"));
    CHECK(eq("\\sqrt{\\frac{1}{3}}", "\\frac{\\sqrt3}{3}"));
    CHECK(eq("\\sqrt{12}+\\sqrt{3}", "3\\sqrt{3}"));
    CHECK(eq("\\frac{\\pi}{2}", "\\pi/2"));
    CHECK(eq("2\\pi", "\\pi \\cdot 2"));
    CHECK(eq("3+2x", "2x + 3"));
    CHECK(eq("x^2-1", "-1+x^{2}"));
    CHECK(eq("\\frac{x}{2}", "0.5x"));
    CHECK(ne("\\sqrt{2}", "2"));
    CHECK(ne("\\sqrt{2}", "\\sqrt{3}"));
    CHECK(ne("x", "y"));
    CHECK(ne("2x", "x^2"));
    CHECK(ne("\\frac{1}{2}\\pi", "2\\pi"));
}

TEST(text_units_prefix) {
    CHECK(eq("5\\text{ cm}", "5"));
    CHECK(eq("12 \\text{square units}", "12"));
    CHECK(eq("12 square units", "12"));
    CHECK(eq("65 \\text{ children tickets }", "65"));     // "\\text{ words}" after a number: units
    CHECK(eq("12 tomatoes", "12"));
    CHECK(eq("4210_{5}", "4210_5"));
    CHECK(eq("(b,c) = (6,5)", "(6,5)"));
    CHECK(eq("\\frac{28}{4} = 7", "7"));
    CHECK(ne("x + 1 = 7", "7"));
    CHECK(eq("\\text{(C)}", "C"));
    CHECK(eq("\\textbf{(C)}", "(C)"));
    CHECK(eq("\\text{Monday}", "Monday"));
    CHECK(eq("x = 5", "5"));
    CHECK(eq("y=\\frac{1}{2}", "0.5"));
    CHECK(eq("\\theta = 30^\\circ", "30"));
    CHECK(eq("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"));
    CHECK(eq("\\!\\!12", "12"));
    CHECK(eq("\\boxed{4}", "4"));
    CHECK(eq("$4$", "4"));
    CHECK(ne("\\text{Monday}", "\\text{Tuesday}"));
    CHECK(ne("\\text{Monday}", "dynamo"));
}

TEST(structures) {
    CHECK(eq("(1,2)", "(1, 2)"));
    CHECK(eq("(1/2, 3)", "(0.5,\\sqrt{9})"));
    CHECK(ne("(1,2)", "(2,1)"));                  // tuples are ordered
    CHECK(ne("(1,2)", "[1,2]"));                  // bracket type matters
    CHECK(ne("[1,2)", "[1,2]"));
    CHECK(eq("[-2, 3)", "\\left[ -2, 3 \\right)"));
    CHECK(eq("(-\\infty, 0) \\cup (1, \\infty)", "(1,\\infty)\\cup(-\\infty,0)"));
    CHECK(eq("1, 2, 3", "3,2,1"));                // answer lists are unordered
    CHECK(eq("-2, \\frac12", "0.5, -2"));
    CHECK(eq("\\{1, 2\\}", "\\{2,1\\}"));
    CHECK(eq("2 \\text{ and } 3", "3, 2"));
    CHECK(ne("1,2", "1,2,3"));
    CHECK(ne("1,2", "1,3"));
    CHECK(eq("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"));
    CHECK(ne("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}2\\\\1\\end{pmatrix}"));
    CHECK(eq("\\begin{pmatrix} -1/3 \\\\ 2/3 \\end{pmatrix}", "\\begin{pmatrix} -\\frac{1}{3} \\\\ \\frac{2}{3} \\end{pmatrix}"));
    CHECK(eq("\\begin{pmatrix} 1/\\sqrt{2} & 0 \\\\ 0 & 1 \\end{pmatrix}", "\\begin{pmatrix} \\frac{\\sqrt2}{2} & 0 \\\\ 0 & 1 \\end{pmatrix}"));
    CHECK(ne("\\begin{pmatrix} 1 & 0 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 0 \\end{pmatrix}"));
    CHECK(eq("3 \\pm 2\\sqrt{2}", "3 - 2\\sqrt{2}, 2\\sqrt{2} + 3"));
    CHECK(ne("3 \\pm 2\\sqrt{2}", "3 + 2\\sqrt{2}"));
    CHECK(eq("5x - 7y + 11z + 4 = 0", "-5x+7y-11z-4=0"));      // equations up to a factor
    CHECK(eq("x^2 + y^2 = 13", "x^2+y^2-13=0"));
    CHECK(ne("x^2 + y^2 = 13", "x^2+y^2=12"));
}

TEST(keys) {
    char k[128];
    CHECK(e2h_answer_key("\\frac{6}{4}", 11, k, sizeof k) == 1 && !strcmp(k, "3/2"));
    CHECK(e2h_answer_key("1.5", 3, k, sizeof k) == 1 && !strcmp(k, "3/2"));
    CHECK(e2h_answer_key("\\text{A}", 8, k, sizeof k) == 1);
    CHECK(e2h_answer_key("3/2", 3, k, 3) == 0 && k[0] == 0);  // does not fit
    CHECK(e2h_answer_key("3/2", 3, NULL, 0) == 0);
    // the length bounds the answer
    CHECK(e2h_answer_key("123", 2, k, sizeof k) == 1 && !strcmp(k, "12"));
    CHECK(e2h_answer_key(NULL, 0, k, sizeof k) == 1 && !strcmp(k, "S:"));
    CHECK(!e2h_answer_equal("", 0, "", 0));                 // empty answers are never equal
    CHECK(!e2h_answer_equal(NULL, 0, "1", 1));
}

TEST(overflow_and_malformed) {
    // huge numbers: exact where they fit, else compared as strings, never UB
    CHECK(eq("123456789012345678901234567890", "123456789012345678901234567890"));
    CHECK(ne("123456789012345678901234567890", "123456789012345678901234567891"));
    CHECK(eq("9223372036854775807", "9223372036854775807.0"));
    CHECK(ne("2^{64}", "0"));
    CHECK(ne("10^{100}", "1"));
    CHECK(ne("\\frac{1}{0}", "1"));
    CHECK(ne("\\frac{1}{0}", "\\frac{2}{0}"));
    CHECK(eq("\\frac{1}{0}", "\\frac{1}{0}"));
    CHECK(ne("\\sqrt{-4}", "2"));
    // many fractional zeros: the denominator would pass 2^127 (string form instead, no overflow)
    CHECK(eq("0.00000000000000000000000000000000000000000000000001", "0.00000000000000000000000000000000000000000000000001"));
    CHECK(ne("0.00000000000000000000000000000000000000000000000001", "0"));
    CHECK(ne("\\sqrt{1000000000000000000}", "1"));
    const char *bad[] = {"(((((", ")))", "\\frac{", "\\sqrt", "^^^", "{}{}{}", "\\left(", "1/", "/1",
                         "..", ".", "-", "+-+-", "\\", "$$", "\\{1,2", "[1,2", "x==y", "= 5", "\\cup",
                         ",,,", "\\text{", "2\\frac{1}{", "\xff\xfe", "^{2}", "1^{1^{1^{1}}}", NULL};
    for (int i = 0; bad[i]; i++) {
        char k[512];
        (void)e2h_answer_key(bad[i], strlen(bad[i]), k, sizeof k);  // must not crash
        (void)e2h_answer_equal(bad[i], strlen(bad[i]), "1", 1);
    }
    // deep nesting: bounded recursion, string fallback
    char deep[4001];
    for (int i = 0; i < 2000; i++) deep[i] = '(', deep[4000 - 1 - i] = ')';
    deep[1999] = '1', deep[2000] = ')';
    deep[4000] = 0;
    for (int i = 0; i < 2000; i++) deep[i] = '(';
    for (int i = 2000; i < 4000; i++) deep[i] = ')';
    deep[2000] = '1';
    char k[8192];
    CHECK(e2h_answer_key(deep, strlen(deep), k, sizeof k) == 1);
    char deepb[6001];
    for (int i = 0; i < 3000; i++) deepb[i] = '{', deepb[3000 + i] = '}';
    deepb[6000] = 0;
    CHECK(e2h_answer_key(deepb, strlen(deepb), k, sizeof k) == 1);
    char fr[8000] = "";
    for (int i = 0; i < 500; i++) strcat(fr, "\\frac{1}{");
    strcat(fr, "2");
    for (int i = 0; i < 500; i++) strcat(fr, "}");
    CHECK(e2h_answer_key(fr, strlen(fr), k, sizeof k) == 1);
    // a long list and a long answer
    char list[4000] = "";
    for (int i = 0; i < 300; i++) { char t[16]; snprintf(t, sizeof t, "%d,", i); strcat(list, t); }
    strcat(list, "1");
    CHECK(e2h_answer_key(list, strlen(list), k, sizeof k) == 1);
}

// Random token soup (deterministic): no crash, no read past the end (ASan), extraction returns a
// piece of the input, keys are deterministic, equality is symmetric and reflexive for parsable keys.
TEST(random_inputs) {
    static const char *const tok[] = {"\\boxed{", "\\fbox{", "{", "}", "(", ")", "[", "]", "\\{", "\\}", ",",
                                      "=", "+", "-", "/", "^", "1", "23", "0.5", ".", "\\frac", "\\sqrt", "\\pi",
                                      "x", "ab", " ", "\\text{", "cm", "\\left(", "\\right)", "$", "\\(",
                                      "\\)", "**", "# Answer\n\n", "####", "The answer is ", "\\pm", "\\cup",
                                      "\\\\", "&", "\\begin{pmatrix}", "\\end{pmatrix}", "\n", "\xff", "_", "{,}",
                                      "\\infty", "%", "^\\circ", "\\!", "99999999999999999999", "\\in"};
    const int nt = (int)(sizeof tok / sizeof tok[0]);
    uint64_t st = 12345;
    int bad = 0;
    for (int it = 0; it < 20000 && !bad; it++) {
        char a[256];
        size_t n = 0;
        int len = 1 + (int)((st = st * 6364136223846793005ULL + 1442695040888963407ULL) >> 59);
        for (int t = 0; t < len; t++) {
            st = st * 6364136223846793005ULL + 1442695040888963407ULL;
            const char *w = tok[(st >> 33) % (uint64_t)nt];
            size_t wl = strlen(w);
            if (n + wl >= sizeof a) break;
            memcpy(a + n, w, wl);
            n += wl;
        }
        char *h = malloc(n ? n : 1);  // exact size: ASan flags any read past the end
        memcpy(h, a, n);
        char out[512], k1[1024], k2[1024];
        if (e2h_answer_extract(h, n, out, sizeof out)) {
            if (!out[0] || !memmem(h, n, out, strlen(out))) { printf("  extract not a piece: %.*s\n", (int)n, a); bad = 1; }
        } else if (out[0]) bad = 1;
        int r1 = e2h_answer_key(h, n, k1, sizeof k1), r2 = e2h_answer_key(h, n, k2, sizeof k2);
        if (r1 != r2 || (r1 && strcmp(k1, k2))) { printf("  key not deterministic: %.*s\n", (int)n, a); bad = 1; }
        if (r1 && strcmp(k1, "S:") && !e2h_answer_equal(h, n, h, n)) { printf("  not reflexive: %.*s\n", (int)n, a); bad = 1; }
        const char *o = tok[it % nt];
        if (e2h_answer_equal(h, n, o, strlen(o)) != e2h_answer_equal(o, strlen(o), h, n)) bad = 1;
        free(h);
    }
    CHECK(!bad);
}

int main(void) {
    RUN(extract_formats);
    RUN(extract_free_form);
    RUN(extract_malformed);
    RUN(numbers);
    RUN(radicals_and_symbols);
    RUN(text_units_prefix);
    RUN(structures);
    RUN(keys);
    RUN(overflow_and_malformed);
    RUN(random_inputs);
    return TEST_SUMMARY();
}
