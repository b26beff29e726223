// kernels/pool.h — a persistent thread pool: threads are created once at init and woken per
// parallel region, never created per operation.
#ifndef E2H_KERNELS_POOL_H
#define E2H_KERNELS_POOL_H

#include <stdint.h>

typedef struct e2h_pool e2h_pool;

// Body of a parallel region: called once per thread with ith in [0, nth).
// Split work deterministically from (ith, nth) — by output rows, never by the reduction.
typedef void (*e2h_pool_fn)(void *ctx, int ith, int nth);

// Creates n_threads - 1 worker threads (the caller is thread 0). Returns NULL on failure.
// Caller owns the pool and frees it with pool_free.
e2h_pool *pool_init(int n_threads);
void pool_free(e2h_pool *pool);
int pool_size(const e2h_pool *pool); // 1 when pool is NULL
// Runs fn(ctx, ith, nth) on every thread and returns when all are done.
// pool may be NULL: runs fn(ctx, 0, 1) inline.
void pool_run(e2h_pool *pool, e2h_pool_fn fn, void *ctx);

// Helper: the [begin, end) slice of n items for thread ith of nth, in chunks of `align`.
void pool_slice(int64_t n, int ith, int nth, int64_t align, int64_t *begin, int64_t *end);

#endif
