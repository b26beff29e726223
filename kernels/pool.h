// kernels/pool.h — a persistent thread pool: threads are created once at init and woken per
// parallel region, never created per operation. Waiting threads spin briefly, then block on a
// futex (kernels/pool.c), so an oversubscribed machine does not starve the pool.
#ifndef E2H_KERNELS_POOL_H
#define E2H_KERNELS_POOL_H

#include <stdint.h>

typedef struct e2h_pool e2h_pool;

// Body of a parallel region: called once per thread with ith in [0, nth).
// Split work deterministically from (ith, nth) — by output rows, never by the reduction.
typedef void (*e2h_pool_fn)(void *ctx, int ith, int nth);

// Creates n_threads - 1 worker threads (the caller is thread 0). Returns NULL on failure.
// Caller owns the pool and frees it with pool_free. The spin budget before a waiting thread
// blocks is 50 us, 0 when n_threads exceeds the CPUs of the process's affinity mask, or the
// environment's E2H_POOL_SPIN_US (0..100000000, microseconds; for tuning) when set.
// Thread-safety: pool_run and pool_free are called by one thread at a time (not concurrently,
// not from inside a region).
e2h_pool *pool_init(int n_threads);
void pool_free(e2h_pool *pool);
int pool_size(const e2h_pool *pool); // 1 when pool is NULL
// Runs fn(ctx, ith, nth) on every thread and returns when all are done.
// pool may be NULL: runs fn(ctx, 0, 1) inline.
void pool_run(e2h_pool *pool, e2h_pool_fn fn, void *ctx);
// The spin budget in microseconds (tests, tuning); takes effect at the next wait.
void pool_set_spin_us(e2h_pool *pool, int64_t us);
int64_t pool_spin_us(const e2h_pool *pool);

// Helper: the [begin, end) slice of n items for thread ith of nth, in chunks of `align`.
void pool_slice(int64_t n, int ith, int nth, int64_t align, int64_t *begin, int64_t *end);

#endif
