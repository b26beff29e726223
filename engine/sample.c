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

float sample_logprob(const float *logits, int32_t n, int32_t tok) {
    float mx = logits[0];
    for (int32_t i = 1; i < n; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int32_t i = 0; i < n; i++) sum += exp((double)(logits[i] - mx));
    return (float)((double)(logits[tok] - mx) - log(sum));
}

static int32_t sample_argmax(const float *logits, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
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

// Collects the candidates into s->pairs sorted best-first; returns their count. With top_k,
// exactly the k best (heap, O(n log k)); otherwise every token within exp(-40) of the best
// after temperature — the rest cannot change any sample or top-p/min-p cut in float math.
static int32_t sample_candidates(const float *logits, int32_t n, const e2h_sampling *p,
                                 sample_scratch *s) {
    sample_pair *c = s->pairs;
    int32_t m = 0;
    if (p->top_k > 0 && p->top_k < n) {
        int32_t k = p->top_k;
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
    } else {
        float mx = logits[0];
        for (int32_t i = 1; i < n; i++) mx = logits[i] > mx ? logits[i] : mx;
        float cut = mx - 40.0f * p->temperature;
        for (int32_t i = 0; i < n; i++)
            if (logits[i] >= cut) c[m++] = (sample_pair){logits[i], i};
    }
    qsort(c, (size_t)m, sizeof *c, sample_cmp_desc);
    return m;
}

int32_t sample_token(const float *logits, int32_t n, const e2h_sampling *p, e2h_rng *rng,
                     sample_scratch *s, float *logprob) {
    int32_t tok;
    if (p->temperature <= 0.0f) {
        tok = sample_argmax(logits, n);
        if (logprob) *logprob = sample_logprob(logits, n, tok);
        return tok;
    }
    int32_t k = sample_candidates(logits, n, p, s);
    const sample_pair *c = s->pairs;
    double inv_t = 1.0 / p->temperature, sum = 0;
    for (int32_t i = 0; i < k; i++) {
        s->prob[i] = exp((double)(c[i].v - c[0].v) * inv_t);
        sum += s->prob[i];
    }
    int32_t keep = k;
    if (p->top_p > 0.0f && p->top_p < 1.0f) { // smallest prefix with mass >= top_p
        double cum = 0;
        for (int32_t i = 0; i < k; i++) {
            cum += s->prob[i] / sum;
            if (cum >= p->top_p) { keep = i + 1; break; }
        }
    }
    if (p->min_p > 0.0f) { // drop tokens below min_p * p(best)
        double thr = p->min_p * s->prob[0];
        int32_t j = 1;
        while (j < keep && s->prob[j] >= thr) j++;
        keep = j;
    }
    double total = 0;
    for (int32_t i = 0; i < keep; i++) total += s->prob[i];
    double u = rng_uniform(rng) * total, acc = 0;
    tok = c[keep - 1].i;
    for (int32_t i = 0; i < keep; i++) {
        acc += s->prob[i];
        if (u < acc) { tok = c[i].i; break; }
    }
    if (logprob) *logprob = sample_logprob(logits, n, tok);
    return tok;
}
