// tests/test_sample.c — the sampler against exact expectations: argmax for greedy and top-k 1,
// empirical frequencies against the softmax (temperature), and the top-p / min-p cuts.
#include "../engine/sample.h"
#include "harness.h"

static sample_scratch ss;

TEST(greedy_is_argmax_lowest_id_on_ties) {
    float l[6] = {0.5f, 2.0f, -1.0f, 2.0f, 1.9f, 0.0f};
    e2h_sampling p = {0.0f, 0, 1.0f, 0.0f, 1};
    e2h_rng r;
    rng_seed(&r, 1, 0);
    float lp;
    CHECK(sample_token(l, 6, &p, &r, &ss, &lp) == 1);
    double z = 0;
    for (int i = 0; i < 6; i++) z += exp(l[i]);
    CHECK(fabs(lp - (2.0 - log(z))) < 1e-5);
}

TEST(top_k_1_is_argmax) {
    float l[5] = {0.1f, 0.2f, 3.0f, 0.3f, 2.9f};
    e2h_sampling p = {1.5f, 1, 1.0f, 0.0f, 3};
    e2h_rng r;
    rng_seed(&r, 3, 0);
    for (int i = 0; i < 200; i++) CHECK(sample_token(l, 5, &p, &r, &ss, NULL) == 2);
}

// Frequencies of 200k draws at temperature 0.7 within 4 sigma of softmax(l / 0.7).
TEST(temperature_frequencies_match_softmax) {
    float l[4] = {1.0f, 0.0f, -0.5f, 0.7f};
    e2h_sampling p = {0.7f, 0, 1.0f, 0.0f, 11};
    e2h_rng r;
    rng_seed(&r, 11, 0);
    int cnt[4] = {0};
    const int n = 200000;
    for (int i = 0; i < n; i++) cnt[sample_token(l, 4, &p, &r, &ss, NULL)]++;
    double z = 0, q[4];
    for (int i = 0; i < 4; i++) z += q[i] = exp(l[i] / 0.7);
    for (int i = 0; i < 4; i++) {
        double e = q[i] / z, sd = sqrt(e * (1 - e) / n);
        CHECKF(fabs((double)cnt[i] / n - e) < 4 * sd, "token %d: %f vs %f", i, (double)cnt[i] / n, e);
    }
}

// A vocabulary of 1,003 (several 256-token chunks of the vectorized inverse CDF and a ragged
// tail): the frequency of every token with p > 0.5% and of each 100-token id range within
// 4 sigma of softmax(l / 0.8), and min-p 0.05 never picks a token below the cut.
TEST(large_vocab_frequencies_match_softmax) {
    enum { V = 1003 };
    static float l[V];
    uint64_t x = 12345;
    for (int i = 0; i < V; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        l[i] = (float)((x >> 40) % 4000) / 1000.0f; // [0, 4)
    }
    l[1002] = 5.0f; // the best token in the tail
    sample_scratch big;
    CHECK(sample_scratch_init(&big, V) == 0);
    e2h_sampling p = {0.8f, 0, 1.0f, 0.0f, 4};
    e2h_rng r;
    rng_seed(&r, 4, 0);
    static int cnt[V];
    const int n = 200000;
    for (int i = 0; i < n; i++) cnt[sample_token(l, V, &p, &r, &big, NULL)]++;
    double z = 0, q[V];
    for (int i = 0; i < V; i++) z += q[i] = exp((l[i] - 5.0) / 0.8);
    for (int i = 0; i < V; i++) {
        const double e = q[i] / z, sd = sqrt(e * (1 - e) / n);
        if (e > 0.005) CHECKF(fabs((double)cnt[i] / n - e) < 4 * sd, "token %d: %f vs %f", i, (double)cnt[i] / n, e);
    }
    for (int g = 0; g < V; g += 100) {
        double e = 0;
        int c = 0;
        for (int i = g; i < g + 100 && i < V; i++) e += q[i] / z, c += cnt[i];
        const double sd = sqrt(e * (1 - e) / n);
        CHECKF(fabs((double)c / n - e) < 4 * sd, "ids %d..: %f vs %f", g, (double)c / n, e);
    }
    e2h_sampling pm = {0.8f, 0, 1.0f, 0.05f, 4};
    int below = 0;
    for (int i = 0; i < 20000; i++) {
        const int t = sample_token(l, V, &pm, &r, &big, NULL);
        below += exp((l[t] - 5.0) / 0.8) < 0.05;
    }
    CHECK(below == 0);
    sample_scratch_free(&big);
}

TEST(top_p_keeps_smallest_prefix) {
    // probabilities at T=1: ~0.64, 0.24, 0.09, 0.03 -> top_p 0.8 keeps the first two
    float l[4] = {2.0f, 1.0f, 0.0f, -1.0f};
    e2h_sampling p = {1.0f, 0, 0.8f, 0.0f, 5};
    e2h_rng r;
    rng_seed(&r, 5, 0);
    int seen[4] = {0};
    for (int i = 0; i < 20000; i++) seen[sample_token(l, 4, &p, &r, &ss, NULL)]++;
    CHECK(seen[0] > 0 && seen[1] > 0 && seen[2] == 0 && seen[3] == 0);
}

TEST(min_p_drops_unlikely) {
    float l[4] = {2.0f, 1.0f, 0.0f, -1.0f}; // p/p0 = 1, 0.37, 0.135, 0.05
    e2h_sampling p = {1.0f, 0, 1.0f, 0.1f, 9};
    e2h_rng r;
    rng_seed(&r, 9, 0);
    int seen[4] = {0};
    for (int i = 0; i < 20000; i++) seen[sample_token(l, 4, &p, &r, &ss, NULL)]++;
    CHECK(seen[0] && seen[1] && seen[2] && !seen[3]);
}

TEST(same_seed_same_stream_different_stream_differs) {
    e2h_rng a, b, c;
    rng_seed(&a, 42, 0);
    rng_seed(&b, 42, 0);
    rng_seed(&c, 42, 1);
    int same = 1, diff = 0;
    for (int i = 0; i < 100; i++) {
        double x = rng_uniform(&a), y = rng_uniform(&b), z = rng_uniform(&c);
        same &= x == y;
        diff |= x != z;
        CHECK(x >= 0 && x < 1);
    }
    CHECK(same && diff);
}

// Top-p over a vocabulary whose nucleus is larger than the first selection of candidates:
// the kept set must be exactly the smallest prefix (in logit order) with mass >= top_p.
TEST(top_p_large_nucleus) {
    enum { N = 1000 };
    static float l[N];
    for (int i = 0; i < N; i++) l[(i * 7) % N] = -0.01f * (float)i; // best first, shuffled ids
    double z = 0, cum = 0;
    for (int i = 0; i < N; i++) z += exp(-0.01 * i);
    int k = 0;
    while (cum < 0.5 * z) cum += exp(-0.01 * k++);
    sample_scratch big;
    CHECK(sample_scratch_init(&big, N) == 0);
    e2h_sampling p = {1.0f, 0, 0.5f, 0.0f, 4};
    e2h_rng r;
    rng_seed(&r, 4, 0);
    static int seen[N];
    for (int i = 0; i < 40000; i++) seen[sample_token(l, N, &p, &r, &big, NULL)]++;
    int outside = 0;
    for (int i = k; i < N; i++) outside += seen[(i * 7) % N];
    CHECKF(k > 64 && outside == 0 && seen[((k - 1) * 7) % N] > 0, "k %d outside %d", k, outside);
    sample_scratch_free(&big);
}

int main(void) {
    if (sample_scratch_init(&ss, 64)) return 1;
    RUN(greedy_is_argmax_lowest_id_on_ties);
    RUN(top_k_1_is_argmax);
    RUN(temperature_frequencies_match_softmax);
    RUN(large_vocab_frequencies_match_softmax);
    RUN(top_p_keeps_smallest_prefix);
    RUN(min_p_drops_unlikely);
    RUN(same_seed_same_stream_different_stream_differs);
    RUN(top_p_large_nucleus);
    sample_scratch_free(&ss);
    return TEST_SUMMARY();
}
