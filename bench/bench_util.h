// bench/bench_util.h — timing helpers shared by the C benchmarks.
#ifndef E2H_BENCH_UTIL_H
#define E2H_BENCH_UTIL_H

#include <time.h>

// Monotonic wall-clock seconds.
static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Best wall time of `reps` runs of stmt, after one warm-up run (GNU statement expression).
#define BEST_OF(reps, stmt)                                         \
    ({                                                              \
        double best_ = 1e30;                                        \
        for (int r_ = 0; r_ <= (reps); r_++) {                      \
            double t0_ = now_s();                                   \
            stmt;                                                   \
            double dt_ = now_s() - t0_;                             \
            if (r_ > 0 && dt_ < best_) best_ = dt_;                 \
        }                                                           \
        best_;                                                      \
    })

#endif
