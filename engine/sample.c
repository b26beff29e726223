// engine/sample.c — see sample.h. Filters are applied in llama.cpp's default order:
// top-k, then temperature, softmax, top-p, min-p.
#include "sample.h"

#include <math.h>
#include <stdlib.h>

static uint64_t rng_splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void rng_seed(e2h_rng *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);
    r->s[0] = rng_splitmix(&x);
    r->s[1] = rng_splitmix(&x);
    if (!r->s[0] && !r->s[1]) r->s[1] = 1;
}

static inline uint64_t rng_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

double rng_uniform(e2h_rng *r) {
    uint64_t s0 = r->s[0], s1 = r->s[1], res = s0 + s1;
    s1 ^= s0;
    r->s[0] = rng_rotl(s0, 24) ^ s1 ^ (s1 << 16);
    r->s[1] = rng_rotl(s1, 37);
    return (double)(res >> 11) * (1.0 / 9007199254740992.0);
}

typedef struct sample_pair {
    float v;
    int32_t i;
} sample_pair;

int sample_scratch_init(sample_scratch *s, int32_t n) {
    s->pairs = malloc((size_t)n * sizeof *s->pairs);
    s->prob = malloc((size_t)n * sizeof *s->prob);
    s->n = n;
    return s->pairs && s->prob ? 0 : -1;
}

void sample_scratch_free(sample_scratch *s) {
    free(s->pairs);
    free(s->prob);
    s->pairs = NULL;
    s->prob = NULL;
}

// The vocabulary-wide loops below run once per sampled token (49k+ entries): they are
// written as fixed-width lane loops so the compiler vectorizes them, and the exponential is a
// polynomial (relative error < 3e-7 on [-87, 0], so the log-probability is exact to ~1e-6).
#if defined(__GNUC__) && !defined(__clang__)
// Built for AVX-512 and AVX2 as well as the baseline (picked at load time by ifunc): the lanes
// are independent and ISO C mode forbids fma contraction, so every clone gives the same bits.
// Not under ThreadSanitizer: the clones' ifunc resolvers run before the TSan runtime has
// started, which crashes every binary before main (the plain build is the same arithmetic).
#if defined(__x86_64__) && defined(__linux__) && !defined(__SANITIZE_THREAD__)
#define SAMPLE_VEC __attribute__((optimize("O3"), target_clones("avx512f", "avx2", "default")))
#else
#define SAMPLE_VEC __attribute__((optimize("O3")))
#endif
#else
#define SAMPLE_VEC
#endif
#define SAMPLE_LANES 16

SAMPLE_VEC static float sample_max(const float *x, int32_t n) {
    float m[SAMPLE_LANES];
    int32_t i = 0;
    for (int k = 0; k < SAMPLE_LANES; k++) m[k] = x[0];
    for (; i + SAMPLE_LANES <= n; i += SAMPLE_LANES)
        for (int k = 0; k < SAMPLE_LANES; k++) m[k] = x[i + k] > m[k] ? x[i + k] : m[k];
    float r = m[0];
    for (int k = 1; k < SAMPLE_LANES; k++) r = m[k] > r ? m[k] : r;
    for (; i < n; i++) r = x[i] > r ? x[i] : r;
    return r;
}

// exp(x) for x <= 0: 2^(x log2 e) split into 2^k * 2^f, f in [-0.5, 0.5], 6th-order polynomial.
static inline float sample_exp(float x) {
    x = x < -87.0f ? -87.0f : x;
    float t = x * 1.44269504088896341f;
    float k = (t + 12582912.0f) - 12582912.0f; // round to nearest (|t| < 2^22), no libm call
    float f = t - k;
    float p = 1.535336188319500e-4f;
    p = p * f + 1.339887440266574e-3f;
    p = p * f + 9.618437357674640e-3f;
    p = p * f + 5.550332471162809e-2f;
    p = p * f + 2.402264791363012e-1f;
    p = p * f + 6.931472028550421e-1f;
    p = p * f + 1.0f;
    union { float f; int32_t i; } u = {p};
    u.i += (int32_t)k * (1 << 23); // k in [-126, 1]: no overflow (a shift of a negative is UB)
    return u.f;
}

SAMPLE_VEC static double sample_sumexp(const float *x, int32_t n, float mx) {
    float acc[SAMPLE_LANES] = {0};
    int32_t i = 0;
    for (; i + SAMPLE_LANES <= n; i += SAMPLE_LANES)
        for (int k = 0; k < SAMPLE_LANES; k++) acc[k] += sample_exp(x[i + k] - mx);
    double sum = 0;
    for (int k = 0; k < SAMPLE_LANES; k++) sum += acc[k];
    for (; i < n; i++) sum += sample_exp(x[i] - mx);
    return sum;
}

// log softmax(logits)[tok] given mx = max(logits).
static float sample_logprob_mx(const float *logits, int32_t n, int32_t tok, float mx) {
    return (float)((double)(logits[tok] - mx) - log(sample_sumexp(logits, n, mx)));
}

float sample_logprob(const float *logits, int32_t n, int32_t tok) {
    return sample_logprob_mx(logits, n, tok, sample_max(logits, n));
}

// First index of mx = max(logits) (ties: the lowest id).
static int32_t sample_argmax(const float *logits, int32_t n, float mx) {
    int32_t i = 0;
    while (i < n - 1 && !(logits[i] == mx)) i++;
    return i;
}

static int sample_cmp_desc(const void *a, const void *b) {
    const sample_pair *x = a, *y = b;
    if (x->v > y->v) return -1;
    if (x->v < y->v) return 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

// Min-heap on (v, then larger id = smaller) of the k best candidates.
static int sample_better(const sample_pair *a, const sample_pair *b) {
    return a->v > b->v || (a->v == b->v && a->i < b->i);
}

static void sample_heap_down(sample_pair *h, int32_t k, int32_t i) {
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < k && sample_better(&h[w], &h[l])) w = l;
        if (r < k && sample_better(&h[w], &h[r])) w = r;
        if (w == i) return;
        sample_pair t = h[i]; h[i] = h[w]; h[w] = t;
        i = w;
    }
}

// The k best tokens into s->pairs, sorted best-first (heap select, O(n log k)).
static int32_t sample_top_k(const float *logits, int32_t n, int32_t k, sample_scratch *s) {
    sample_pair *c = s->pairs;
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++) {
        sample_pair x = {logits[i], i};
        if (m < k) {
            c[m++] = x;
            if (m == k)
                for (int32_t j = k / 2 - 1; j >= 0; j--) sample_heap_down(c, k, j);
        } else if (sample_better(&x, &c[0])) {
            c[0] = x;
            sample_heap_down(c, k, 0);
        }
    }
    qsort(c, (size_t)m, sizeof *c, sample_cmp_desc);
    return m;
}

// Unnormalized weight of a logit at temperature t relative to the best logit mx. Tokens more
// than 40 (temperature-scaled) below the best weigh < e^-40 and cannot change any sample or
// top-p / min-p cut in float math: they get 0.
static double sample_weight(float v, float mx, double inv_t) {
    double x = (double)(v - mx) * inv_t;
    return x < -40.0 ? 0.0 : (double)sample_exp((float)x);
}

// Inverse CDF over candidates c[0..keep) with weights prob[0..keep).
static int32_t sample_pick(const sample_pair *c, const double *prob, int32_t keep, e2h_rng *rng) {
    double total = 0;
    for (int32_t i = 0; i < keep; i++) total += prob[i];
    double u = rng_uniform(rng) * total, acc = 0;
    for (int32_t i = 0; i < keep; i++) {
        acc += prob[i];
        if (u < acc) return c[i].i;
    }
    return c[keep - 1].i;
}

#define SAMPLE_CHUNK 256 // elements per partial sum of the inverse CDF

// Float weights exp((v - mx) / t) of the chunk [i0, i1), 0 below the e^-40 / min-p cut;
// returns their sum (lane sums, then lanes in order).
SAMPLE_VEC static float sample_chunk_weights(const float *logits, int32_t i0, int32_t i1, float mx,
                                             float inv_t, float thr, float *w) {
    float acc[SAMPLE_LANES] = {0};
    int32_t i = i0;
    for (; i + SAMPLE_LANES <= i1; i += SAMPLE_LANES)
        for (int k = 0; k < SAMPLE_LANES; k++) {
            const float x = (logits[i + k] - mx) * inv_t, e = sample_exp(x);
            w[i + k] = (x < -40.0f || e < thr) ? 0.0f : e;
            acc[k] += w[i + k];
        }
    float sum = 0.0f;
    for (int k = 0; k < SAMPLE_LANES; k++) sum += acc[k];
    for (; i < i1; i++) {
        const float x = (logits[i] - mx) * inv_t, e = sample_exp(x);
        w[i] = (x < -40.0f || e < thr) ? 0.0f : e;
        sum += w[i];
    }
    return sum;
}

// Temperature (+ min-p) over the whole vocabulary needs no sort: weights and the inverse CDF
// in token-id order, O(n) per token (sorting ~50k candidates per token dominated decoding).
// The weights are computed vectorized in float, summed per chunk; the inverse CDF finds the
// chunk from the chunk sums, then the token inside it.
static int32_t sample_unsorted(const float *logits, int32_t n, float mx, const e2h_sampling *p,
                               e2h_rng *rng, sample_scratch *s) {
    const int32_t best = sample_argmax(logits, n, mx);
    // the best token weighs 1, so min-p cuts at min_p
    const float inv_t = (float)(1.0 / p->temperature), thr = p->min_p > 0.0f ? p->min_p : 0.0f;
    float *w = (float *)s->prob;        // n floats in the n doubles
    double *chunk = (double *)s->pairs; // n / SAMPLE_CHUNK + 1 sums in the n pairs
    const int32_t n_chunks = (n + SAMPLE_CHUNK - 1) / SAMPLE_CHUNK;
    double total = 0;
    for (int32_t c = 0; c < n_chunks; c++) {
        const int32_t i1 = (c + 1) * SAMPLE_CHUNK < n ? (c + 1) * SAMPLE_CHUNK : n;
        chunk[c] = sample_chunk_weights(logits, c * SAMPLE_CHUNK, i1, mx, inv_t, thr, w);
        total += chunk[c];
    }
    if (!(total > 0.0)) return best;
    const double u = rng_uniform(rng) * total;
    double acc = 0;
    int32_t c = 0;
    while (c < n_chunks - 1 && acc + chunk[c] <= u) acc += chunk[c++];
    int32_t last = -1;
    for (int32_t i = c * SAMPLE_CHUNK; i < n; i++) { // normally ends inside chunk c
        if (w[i] <= 0.0f) continue;
        acc += w[i];
        last = i;
        if (u < acc) return i;
    }
    return last >= 0 ? last : best; // rounding left u just above the running sum
}

// Top-p without sorting the vocabulary: the total mass is summed in O(n); the best M tokens
// are heap-selected and sorted, M growing x8 until their cumulative mass reaches top_p.
// Then top-p's smallest prefix, min-p, and the inverse CDF as in the sorted definition.
static int32_t sample_sorted(const float *logits, int32_t n, const e2h_sampling *p, e2h_rng *rng,
                             sample_scratch *s) {
    int32_t top_k = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    int use_p = p->top_p > 0.0f && p->top_p < 1.0f;
    double inv_t = 1.0 / p->temperature;
    for (int32_t m = top_k < 64 ? top_k : 64;; m = m > top_k / 8 ? top_k : m * 8) {
        int32_t k = sample_top_k(logits, n, m, s);
        const sample_pair *c = s->pairs;
        double sum = 0;
        if (m == top_k && top_k < n) { // top-k: the mass is that of the k candidates
            for (int32_t i = 0; i < k; i++) sum += sample_weight(c[i].v, c[0].v, inv_t);
        } else {
            for (int32_t i = 0; i < n; i++) sum += sample_weight(logits[i], c[0].v, inv_t);
        }
        int32_t keep = -1;
        double cum = 0;
        for (int32_t i = 0; i < k; i++) {
            s->prob[i] = sample_weight(c[i].v, c[0].v, inv_t);
            cum += s->prob[i];
            if (use_p && keep < 0 && cum >= p->top_p * sum) keep = i + 1;
        }
        if (keep < 0) {
            if (use_p && m < top_k) continue; // the top-p prefix is longer than m: widen
            keep = k;
        }
        if (p->min_p > 0.0f) { // drop tokens below min_p * p(best)
            double thr = p->min_p * s->prob[0];
            int32_t j = 1;
            while (j < keep && s->prob[j] >= thr) j++;
            keep = j;
        }
        return sample_pick(c, s->prob, keep, rng);
    }
}

int32_t sample_token(const float *logits, int32_t n, const e2h_sampling *p, e2h_rng *rng,
                     sample_scratch *s, float *logprob) {
    int32_t tok;
    const float mx = sample_max(logits, n); // one pass, shared by the pick and the log-prob
    if (p->temperature <= 0.0f) tok = sample_argmax(logits, n, mx);
    else if ((p->top_k <= 0 || p->top_k >= n) && !(p->top_p > 0.0f && p->top_p < 1.0f))
        tok = sample_unsorted(logits, n, mx, p, rng, s);
    else
        tok = sample_sorted(logits, n, p, rng, s);
    if (logprob) *logprob = sample_logprob_mx(logits, n, tok, mx);
    return tok;
}
