// tests/test_pool.c — the kernel thread pool (kernels/pool.c): every region runs once on every
// thread and its writes are visible to the caller; no lost wake-ups when every wait blocks
// (spin 0) with gaps on either side; clean shutdown right after init or a region; the spin
// budget (0 when oversubscribed by the affinity mask, E2H_POOL_SPIN_US); and a waiting thread
// blocks instead of burning the CPU that the awaited thread needs (CPU time, not wall time).
// A hang (lost wake-up) is caught by a watchdog that prints FAIL and exits without a summary.
#include <sched.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "kernels/pool.h"

#define MAX_T 8

typedef struct {
    int round;               // written by the caller before each region
    int count[MAX_T];        // regions run by each ith
    int seen_round[MAX_T];   // the round each ith saw
    int bad_nth;
    int64_t sleep_ns_ith;    // > 0: thread `sleeper` sleeps this long in the region
    int sleeper;
    double cpu_end[MAX_T];   // thread CPU seconds at the end of the last region
    double cpu_wait[MAX_T];  // thread CPU seconds spent between regions (summed)
} region_ctx;

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_ns(int64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    nanosleep(&ts, NULL);
}

static void region_fn(void *vctx, int ith, int nth) {
    region_ctx *c = vctx;
    if (c->count[ith] > 0) c->cpu_wait[ith] += thread_cpu_s() - c->cpu_end[ith];
    if (nth < 1 || nth > MAX_T || ith < 0 || ith >= nth) { c->bad_nth = 1; return; }
    c->count[ith]++;
    c->seen_round[ith] = c->round;
    if (c->sleep_ns_ith > 0 && ith == c->sleeper) sleep_ns(c->sleep_ns_ith);
    c->cpu_end[ith] = thread_cpu_s();
}

// n regions; gap_every > 0: the caller sleeps gap_ns before every gap_every-th region (the
// workers block), and thread 1 sleeps in every (gap_every+1)-th region (the caller blocks).
static int run_regions(e2h_pool *p, int n, int gap_every, int64_t gap_ns) {
    region_ctx c;
    memset(&c, 0, sizeof c);
    int nt = pool_size(p), ok = 1;
    for (int r = 0; r < n; r++) {
        c.round = r;
        c.sleeper = 1;
        c.sleep_ns_ith = gap_every > 0 && r % (gap_every + 1) == 0 ? gap_ns : 0;
        if (gap_every > 0 && r % gap_every == 0) sleep_ns(gap_ns);
        pool_run(p, region_fn, &c);
        for (int i = 0; i < nt; i++) ok &= c.count[i] == r + 1 && c.seen_round[i] == r;
        if (!ok) break;
    }
    return ok && !c.bad_nth;
}

TEST(every_region_runs_once_on_every_thread) {
    const int nts[] = {1, 2, 3, 8};
    const int64_t spins[] = {0, 5, 50};
    for (size_t a = 0; a < sizeof nts / sizeof nts[0]; a++) {
        for (size_t b = 0; b < sizeof spins / sizeof spins[0]; b++) {
            e2h_pool *p = pool_init(nts[a]);
            CHECK(p != NULL && pool_size(p) == nts[a]);
            if (!p) continue;
            pool_set_spin_us(p, spins[b]);
            CHECKF(run_regions(p, 3000, 0, 0), "n_threads %d spin %lld us", nts[a],
                   (long long)spins[b]);
            pool_free(p);
        }
    }
    region_ctx c;
    memset(&c, 0, sizeof c);
    pool_run(NULL, region_fn, &c); // NULL pool: inline, one thread
    CHECK(c.count[0] == 1 && !c.bad_nth);
}

// Every wait blocks (spin 0) and gaps on both sides (the caller sleeps between regions, a
// worker sleeps inside one) put each side to sleep in turn: a lost wake-up hangs here.
TEST(no_lost_wakeups_when_every_wait_blocks) {
    const int nts[] = {2, 4};
    for (size_t a = 0; a < sizeof nts / sizeof nts[0]; a++) {
        e2h_pool *p = pool_init(nts[a]);
        CHECK(p != NULL);
        if (!p) continue;
        pool_set_spin_us(p, 0);
        CHECKF(run_regions(p, 20000, 0, 0), "back to back, n_threads %d", nts[a]);
        CHECKF(run_regions(p, 2000, 3, 20000), "with gaps, n_threads %d", nts[a]);
        pool_set_spin_us(p, 10); // gaps longer than the spin
        CHECKF(run_regions(p, 1000, 2, 50000), "spin 10 us, gaps, n_threads %d", nts[a]);
        pool_free(p);
    }
}

TEST(shutdown_right_after_init_or_a_region) {
    for (int i = 0; i < 300; i++) {
        e2h_pool *p = pool_init(2 + i % 4);
        CHECK(p != NULL);
        if (!p) continue;
        if (i % 2) pool_set_spin_us(p, 0);
        if (i % 3) CHECK(run_regions(p, i % 3, 0, 0));
        if (i % 5 == 0) sleep_ns(200000); // the workers are asleep when pool_free comes
        pool_free(p);
    }
    pool_free(NULL);
    CHECK(pool_size(NULL) == 1);
}

TEST(spin_budget) {
    cpu_set_t all;
    CHECK(sched_getaffinity(0, sizeof all, &all) == 0);
    int ncpu = CPU_COUNT(&all);
    unsetenv("E2H_POOL_SPIN_US");
    e2h_pool *p = pool_init(2);
    CHECK(p && pool_spin_us(p) == (ncpu >= 2 ? 50 : 0));
    pool_free(p);
    // more threads than CPUs in the affinity mask: no spin
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &all)) { CPU_SET(c, &one); break; }
    CHECK(sched_setaffinity(0, sizeof one, &one) == 0);
    p = pool_init(2);
    CHECK(p && pool_spin_us(p) == 0);
    CHECK(p && run_regions(p, 500, 0, 0));
    pool_free(p);
    CHECK(sched_setaffinity(0, sizeof all, &all) == 0);
    // the environment overrides (for tuning); invalid values are ignored
    setenv("E2H_POOL_SPIN_US", "7", 1);
    p = pool_init(2);
    CHECK(p && pool_spin_us(p) == 7);
    pool_free(p);
    const char *bad[] = {"x", "-1", "12us", "99999999999999999999", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("E2H_POOL_SPIN_US", bad[i], 1);
        p = pool_init(2);
        CHECKF(p && pool_spin_us(p) == (ncpu >= 2 ? 50 : 0), "E2H_POOL_SPIN_US=%s", bad[i]);
        pool_free(p);
    }
    unsetenv("E2H_POOL_SPIN_US");
    p = pool_init(2);
    pool_set_spin_us(p, -5);
    CHECK(p && pool_spin_us(p) == 0);
    pool_free(p);
}

// A thread that waits (the caller for a slow worker, a worker for the next region) blocks after
// its short spin: over 10 waits of 50 ms each it uses far less CPU than the 500 ms it waited.
// The old pool spun 200 000 pause+yield iterations per wait (issue #14: -t 2 starved when
// oversubscribed).
TEST(waiting_threads_block) {
    e2h_pool *p = pool_init(2);
    CHECK(p != NULL);
    if (!p) return;
    pool_set_spin_us(p, 50);
    region_ctx c;
    memset(&c, 0, sizeof c);
    c.sleeper = 1;
    c.sleep_ns_ith = 50000000; // the worker takes 50 ms: the caller waits
    double t0 = thread_cpu_s();
    for (int r = 0; r < 10; r++) pool_run(p, region_fn, &c);
    double caller_cpu = thread_cpu_s() - t0;
    c.sleep_ns_ith = 0;
    memset(c.cpu_wait, 0, sizeof c.cpu_wait);
    for (int r = 0; r < 10; r++) { // the caller takes 50 ms between regions: the worker waits
        sleep_ns(50000000);
        pool_run(p, region_fn, &c);
    }
    CHECKF(caller_cpu < 0.05, "caller used %.1f ms CPU waiting 500 ms", 1e3 * caller_cpu);
    CHECKF(c.cpu_wait[1] < 0.05, "worker used %.1f ms CPU waiting 500 ms", 1e3 * c.cpu_wait[1]);
    printf("  CPU while waiting 500 ms: caller %.2f ms, worker %.2f ms\n", 1e3 * caller_cpu,
           1e3 * c.cpu_wait[1]);
    pool_free(p);
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "FAIL test_pool: watchdog (a wait never returned: lost wake-up?)\n";
    ssize_t w = write(1, msg, sizeof msg - 1);
    (void)w;
    _exit(1);
}

int main(void) {
    signal(SIGALRM, on_alarm);
    alarm(300);
    RUN(every_region_runs_once_on_every_thread);
    RUN(no_lost_wakeups_when_every_wait_blocks);
    RUN(shutdown_right_after_init_or_a_region);
    RUN(spin_budget);
    RUN(waiting_threads_block);
    return TEST_SUMMARY();
}
