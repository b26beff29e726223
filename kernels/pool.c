// kernels/pool.c — persistent thread pool. Workers sleep on a condition variable between
// parallel regions; a region is one generation number, so a worker runs each region once.
// Spinning briefly before sleeping keeps per-op latency low for decode (many small ops).
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdlib.h>

struct e2h_pool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_start;
    pthread_cond_t cv_done;
    e2h_pool_fn fn;
    void *ctx;
    atomic_uint gen;     // incremented per region
    atomic_int pending;  // workers still running the current region
    int stop;
};

typedef struct {
    e2h_pool *pool;
    int ith;
} pool_worker_arg;

static void pool_wait_start(e2h_pool *p, unsigned seen) {
    // spin a little: back-to-back regions (decode) wake without a syscall
    for (int i = 0; i < 20000; i++) {
        if (atomic_load_explicit(&p->gen, memory_order_acquire) != seen) return;
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
        // on an oversubscribed machine a pure spin holds the core that the thread we wait
        // for needs (measured: 2-thread matmuls 50x slower than 1 thread under load)
        if ((i & 255) == 255) sched_yield();
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->gen) == seen && !p->stop) pthread_cond_wait(&p->cv_start, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

static void *pool_worker(void *arg) {
    pool_worker_arg *a = arg;
    e2h_pool *p = a->pool;
    int ith = a->ith;
    free(a);
    unsigned seen = 0;
    for (;;) {
        pool_wait_start(p, seen);
        pthread_mutex_lock(&p->mu);
        int stop = p->stop;
        pthread_mutex_unlock(&p->mu);
        if (stop) return NULL;
        seen = atomic_load(&p->gen);
        p->fn(p->ctx, ith, p->n_threads);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

e2h_pool *pool_init(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 256) return NULL;
    e2h_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_start, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) { free(p); return NULL; }
    for (int i = 1; i < n_threads; i++) {
        pool_worker_arg *a = malloc(sizeof *a);
        if (!a) { p->n_threads = i; pool_free(p); return NULL; }
        a->pool = p;
        a->ith = i;
        if (pthread_create(&p->threads[i], NULL, pool_worker, a) != 0) {
            free(a);
            p->n_threads = i;
            pool_free(p);
            return NULL;
        }
    }
    return p;
}

void pool_free(e2h_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_start);
    pthread_cond_destroy(&p->cv_done);
    free(p->threads);
    free(p);
}

int pool_size(const e2h_pool *p) { return p ? p->n_threads : 1; }

void pool_run(e2h_pool *p, e2h_pool_fn fn, void *ctx) {
    if (!p || p->n_threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->pending, p->n_threads - 1);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0, p->n_threads);
    // spin briefly for the others, then sleep
    for (int i = 0; i < 200000 && atomic_load_explicit(&p->pending, memory_order_acquire); i++) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
        if ((i & 255) == 255) sched_yield(); // see pool_wait_start
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void pool_slice(int64_t n, int ith, int nth, int64_t align, int64_t *begin, int64_t *end) {
    if (align < 1) align = 1;
    int64_t chunks = (n + align - 1) / align;
    int64_t per = chunks / nth, extra = chunks % nth;
    int64_t c0 = ith * per + (ith < extra ? ith : extra);
    int64_t c1 = c0 + per + (ith < extra ? 1 : 0);
    int64_t b = c0 * align, e = c1 * align;
    if (b > n) b = n;
    if (e > n) e = n;
    *begin = b;
    *end = e;
}
