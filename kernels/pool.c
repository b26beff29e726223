// kernels/pool.c — persistent thread pool, spin-then-block.
//
// A parallel region is one generation number `gen`: the caller publishes fn/ctx, sets
// `pending` to the number of workers and increments `gen`; each worker runs the region once
// and decrements `pending`; the caller returns when `pending` is 0.
//
// Waiting (a worker for the next region, the caller for the workers) spins for at most
// spin_ns (default POOL_SPIN_NS_DEFAULT, tens of microseconds), then blocks on a futex on the
// very word it waits for. The short spin keeps back-to-back regions (decode: hundreds of small
// ops per token) free of syscalls on an idle machine; the block keeps an oversubscribed machine
// (more runnable threads than cores) from starving: a spinning waiter holds the core that the
// thread it waits for needs. The old pool spun (pause + sched_yield) for up to 200 000
// iterations per region and measured -t 2 running its threads ~4% of the time under load.
// When the pool has more threads than the CPUs in the process's affinity mask the spin is 0.
//
// No lost wake-ups: a waiter announces itself (n_sleeping / main_sleeping, seq_cst) before it
// re-reads the word and calls FUTEX_WAIT with the value it read; the waker changes the word
// (seq_cst) before it reads the announcement. In the single total order of seq_cst operations
// either the waiter sees the new word (no sleep) or the waker sees the announcement (wakes it);
// FUTEX_WAIT itself returns at once if the word no longer holds the value. Every wait loops on
// its condition, so spurious and stale wakes are harmless. All data hand-off (fn, ctx, the
// region's results) is ordered by the atomics, never by the futex, so TSan sees it.
#include "pool.h"

#include <limits.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <pthread.h>

#define POOL_SPIN_NS_DEFAULT 50000 // 50 us; see pool.h for E2H_POOL_SPIN_US
#define POOL_SPIN_NS_MAX 100000000

struct e2h_pool {
    int n_threads;
    _Atomic int64_t spin_ns; // bounded spin before blocking; 0: block at once (relaxed: a hint)
    pthread_t *threads;
    e2h_pool_fn fn;  // written by the caller before gen is incremented
    void *ctx;
    // futex words and their sleeper announcements, one cache line per side
    _Alignas(64) atomic_uint gen; // region number; workers wait for it to change
    atomic_int n_sleeping;        // workers that may be in FUTEX_WAIT on gen
    atomic_int stop;
    _Alignas(64) atomic_uint pending; // workers still running the current region
    atomic_int main_sleeping;         // the caller may be in FUTEX_WAIT on pending
};

typedef struct {
    e2h_pool *pool;
    int ith;
} pool_worker_arg;

// Blocks while *word == val (or returns at once if it does not); spurious returns allowed.
static void pool_futex_wait(atomic_uint *word, unsigned val) {
#if defined(__linux__)
    syscall(SYS_futex, (unsigned *)word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
#else
    (void)word, (void)val;
    sched_yield(); // no futex: degrade to a yield loop (callers re-check)
#endif
}

static void pool_futex_wake(atomic_uint *word, int n) {
#if defined(__linux__)
    syscall(SYS_futex, (unsigned *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
#else
    (void)word, (void)n;
#endif
}

static int64_t pool_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void pool_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// Spins up to spin_ns while (*word == val) != until_eq, i.e. until *word changes from val
// (until_eq 0) or reaches val (until_eq 1); returns the last value read (acquire).
static unsigned pool_spin(const e2h_pool *p, atomic_uint *word, unsigned val, int until_eq) {
    unsigned v = atomic_load_explicit(word, memory_order_acquire);
    int64_t spin_ns = atomic_load_explicit(&p->spin_ns, memory_order_relaxed);
    if ((v == val) == until_eq || spin_ns <= 0) return v;
    int64_t deadline = pool_now_ns() + spin_ns;
    for (unsigned i = 1;; i++) {
        pool_cpu_relax();
        v = atomic_load_explicit(word, memory_order_acquire);
        if ((v == val) == until_eq) return v;
        if ((i & 15) == 0 && pool_now_ns() >= deadline) return v; // clock: ~20 ns per 16 pauses
    }
}

// Worker: returns the new region number (!= seen).
static unsigned pool_wait_start(e2h_pool *p, unsigned seen) {
    unsigned g = pool_spin(p, &p->gen, seen, 0);
    while (g == seen) {
        atomic_fetch_add(&p->n_sleeping, 1);        // announce (seq_cst) ...
        if (atomic_load(&p->gen) == seen)           // ... then re-check (seq_cst)
            pool_futex_wait(&p->gen, seen);
        atomic_fetch_sub(&p->n_sleeping, 1);
        g = atomic_load_explicit(&p->gen, memory_order_acquire);
    }
    return g;
}

// Caller: returns when every worker has finished the current region.
static void pool_wait_done(e2h_pool *p) {
    unsigned v = pool_spin(p, &p->pending, 0, 1);
    while (v != 0) {
        atomic_store(&p->main_sleeping, 1);          // announce (seq_cst) ...
        v = atomic_load(&p->pending);                // ... then re-check (seq_cst)
        if (v != 0) pool_futex_wait(&p->pending, v);
        atomic_store_explicit(&p->main_sleeping, 0, memory_order_relaxed);
        v = atomic_load_explicit(&p->pending, memory_order_acquire);
    }
}

static void *pool_worker(void *arg) {
    pool_worker_arg *a = arg;
    e2h_pool *p = a->pool;
    int ith = a->ith;
    free(a);
    unsigned seen = 0;
    for (;;) {
        seen = pool_wait_start(p, seen);
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) return NULL;
        p->fn(p->ctx, ith, p->n_threads);
        // the last one out wakes the caller if it announced a sleep (seq_cst pairs with it)
        if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->main_sleeping))
            pool_futex_wake(&p->pending, 1);
    }
}

// Spin budget: E2H_POOL_SPIN_US if set and valid, else the default; 0 when the pool has more
// threads than the CPUs this process may run on (a spin there only delays the thread awaited).
static int64_t pool_spin_budget(int n_threads) {
    int64_t ns = POOL_SPIN_NS_DEFAULT;
    const char *env = getenv("E2H_POOL_SPIN_US");
    if (env && *env) {
        char *end = NULL;
        long long us = strtoll(env, &end, 10);
        if (end && *end == '\0' && us >= 0 && us <= POOL_SPIN_NS_MAX / 1000) return us * 1000;
    }
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) < n_threads) ns = 0;
#else
    (void)n_threads;
#endif
    return ns;
}

e2h_pool *pool_init(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 256) return NULL;
    e2h_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    atomic_init(&p->spin_ns, pool_spin_budget(n_threads));
    atomic_init(&p->gen, 0);
    atomic_init(&p->n_sleeping, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->main_sleeping, 0);
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
    atomic_store_explicit(&p->stop, 1, memory_order_relaxed);
    atomic_fetch_add(&p->gen, 1); // release: a worker that sees the new gen sees stop
    pool_futex_wake(&p->gen, INT_MAX);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
    free(p->threads);
    free(p);
}

int pool_size(const e2h_pool *p) { return p ? p->n_threads : 1; }

void pool_set_spin_us(e2h_pool *p, int64_t us) {
    if (!p) return;
    if (us < 0) us = 0;
    if (us > POOL_SPIN_NS_MAX / 1000) us = POOL_SPIN_NS_MAX / 1000;
    atomic_store_explicit(&p->spin_ns, us * 1000, memory_order_relaxed);
}

int64_t pool_spin_us(const e2h_pool *p) {
    return p ? atomic_load_explicit(&p->spin_ns, memory_order_relaxed) / 1000 : 0;
}

void pool_run(e2h_pool *p, e2h_pool_fn fn, void *ctx) {
    if (!p || p->n_threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    // every worker has finished the previous region (pending was 0, acquired): safe to write
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->pending, (unsigned)(p->n_threads - 1), memory_order_relaxed);
    atomic_fetch_add(&p->gen, 1);             // publish (seq_cst, so also release) ...
    if (atomic_load(&p->n_sleeping) > 0)      // ... then look for sleepers (seq_cst)
        pool_futex_wake(&p->gen, INT_MAX);
    fn(ctx, 0, p->n_threads);
    pool_wait_done(p);
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
