// engine/search/batch.c — several searches on one engine at once (e2h_search_run_batch).
//
// Why: one beam search's round waits for its slowest branch; at the end of every round a few
// stragglers decode alone (batch 1, memory-bound) while the rest of the machine idles.
// search-and-learn avoids it by giving vLLM the beams of search_batch_size problems at once
// (Beeching et al. 2024, src/sal/config.py). Here each search keeps its own sequential code
// (engine/search/<method>.c) and runs on a thread of its own; the threads take turns, one at
// a time, with the batch's mutex as the baton: a search runs until it needs its sequences
// extended, posts that request and hands the turn to the driver (the caller's thread). When
// every search is waiting, the driver extends all their sequences in one e2h_seq_extend of a
// few tokens (a chunk), marks the requests whose sequences all stopped as complete, and
// hands the turn to their searches, one after the other. Chunks resume the stop-string state
// of the previous chunk (e2h_stop.resume) and end at each request's own token budget, so every
// sequence stops exactly where one uninterrupted extend would have stopped it.
//
// Determinism: the order of turns and the chunks depend only on the jobs, never on timing,
// and the engine's outputs do not depend on the batch, so results equal e2h_search_run's.
// Only one thread ever touches the engine at a time and every hand-over goes through the
// mutex, so the engine (not thread-safe) is used safely and race detectors see the order.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../sched.h"
#include "search.h"

#define BATCH_CHUNK 8     // tokens per shared extend call: short enough that a search whose
                          // step ended rejoins quickly, long enough to amortize the call
#define BATCH_DRIVER (-1) // the turn of the driver
#define BATCH_MAX 256

typedef enum { W_RUN, W_WAIT, W_EXIT } bw_state;

typedef struct batch batch;

struct srch_gate { // one per worker thread
    batch *b;
    int id;
    pthread_t th;
    pthread_cond_t cv;
    bw_state state;
    // the pending extend request (valid while W_WAIT)
    e2h_seq *const *seqs;
    int n;
    const e2h_stop *stop;
    int32_t *start;       // (n) each sequence's length when the request was posted
    char *stopped;        // (n) finished for this request
    int cap;
    e2h_status st;        // the request's outcome
    char msg[512];
};

struct batch {
    e2h_engine *e;
    const e2h_search_batch *spec;
    pthread_mutex_t mu;
    pthread_cond_t cv;    // the driver's
    int turn;             // BATCH_DRIVER or a worker id
    int no_more;          // next() ran dry or done() asked to stop
    srch_gate *w;
    int nw;
    e2h_seq **list;       // scratch for a chunk's sequences
    int list_cap;
};

// Hands the turn to `to` and waits (holding mu again on return) until it comes back to `me`.
static void batch_switch(batch *b, int to, int me, pthread_cond_t *my_cv) {
    b->turn = to;
    pthread_cond_broadcast(to == BATCH_DRIVER ? &b->cv : &b->w[to].cv);
    while (b->turn != me) pthread_cond_wait(my_cv, &b->mu);
}

static e2h_status gate_reserve(srch_gate *g, int n) {
    if (n <= g->cap) return E2H_OK;
    int32_t *s = realloc(g->start, (size_t)n * sizeof *s);
    if (s) g->start = s;
    char *d = realloc(g->stopped, (size_t)n);
    if (d) g->stopped = d;
    if (!s || !d) return E2H_ERR_NOMEM;
    g->cap = n;
    return E2H_OK;
}

// Called by a search on its own thread while it holds the turn (srch_expand).
e2h_status srch_gate_extend(srch_gate *g, e2h_seq *const *seqs, int n, const e2h_stop *stop) {
    batch *b = g->b;
    if (n < 1) return e2h_seq_extend(b->e, seqs, n, stop); // its own error
    if (gate_reserve(g, n))
        return eng_set_error(b->e, E2H_ERR_NOMEM, "search batch: out of memory");
    g->seqs = seqs;
    g->n = n;
    g->stop = stop;
    for (int i = 0; i < n; i++) {
        g->start[i] = e2h_seq_len(seqs[i]);
        g->stopped[i] = 0;
    }
    g->st = E2H_OK;
    g->msg[0] = 0;
    g->state = W_WAIT;
    batch_switch(b, BATCH_DRIVER, g->id, &g->cv);
    g->state = W_RUN;
    if (g->st) return eng_set_error(b->e, g->st, "%s", g->msg);
    return E2H_OK;
}

// ------------------------------------------------------------------ the driver's chunks

static int32_t req_budget(const srch_gate *g) {
    return g->stop->max_tokens > 0 ? g->stop->max_tokens : INT32_MAX;
}

// Same stop strings and EOS handling: the requests can share one extend call.
static int stop_same(const e2h_stop *a, const e2h_stop *b) {
    if (a->n_stop_strings != b->n_stop_strings || a->ignore_eos != b->ignore_eos) return 0;
    for (int i = 0; i < a->n_stop_strings; i++)
        if (strcmp(a->stop_strings[i], b->stop_strings[i])) return 0;
    return 1;
}

static e2h_status batch_list_reserve(batch *b, int n) {
    if (n <= b->list_cap) return E2H_OK;
    e2h_seq **l = realloc(b->list, (size_t)n * sizeof *l);
    if (!l) return E2H_ERR_NOMEM;
    b->list = l;
    b->list_cap = n;
    return E2H_OK;
}

// One extend call of at most BATCH_CHUNK tokens over the running sequences of the waiting
// requests grouped with w[lead] (same stop strings); grp[i] marks the group's members.
static void batch_chunk(batch *b, const char *grp) {
    int total = 0, lead = -1;
    int32_t chunk = BATCH_CHUNK;
    for (int i = 0; i < b->nw; i++) {
        if (!grp[i]) continue;
        srch_gate *g = &b->w[i];
        lead = lead < 0 ? i : lead;
        for (int j = 0; j < g->n; j++) {
            if (g->stopped[j]) continue;
            total++;
            int32_t left = req_budget(g) - (e2h_seq_len(g->seqs[j]) - g->start[j]);
            chunk = left < chunk ? left : chunk; // never past a request's own budget
        }
    }
    if (lead < 0 || total == 0) return;
    e2h_status st = batch_list_reserve(b, total);
    if (!st) {
        int k = 0;
        for (int i = 0; i < b->nw; i++)
            for (int j = 0; grp[i] && j < b->w[i].n; j++)
                if (!b->w[i].stopped[j]) b->list[k++] = b->w[i].seqs[j];
        e2h_stop stop = *b->w[lead].stop;
        stop.max_tokens = chunk > 0 ? chunk : 1;
        stop.resume = 1;
        st = e2h_seq_extend(b->e, b->list, total, &stop);
    }
    for (int i = 0; i < b->nw; i++) {
        if (!grp[i]) continue;
        srch_gate *g = &b->w[i];
        if (st) { // the call failed: every request in it fails with its message
            g->st = st;
            snprintf(g->msg, sizeof g->msg, "%s", st == E2H_ERR_NOMEM && !e2h_engine_last_error(b->e)[0]
                     ? "search batch: out of memory" : e2h_engine_last_error(b->e));
            g->state = W_RUN;
            continue;
        }
        int open = 0;
        for (int j = 0; j < g->n; j++) {
            if (g->stopped[j]) continue;
            e2h_stop_reason why = e2h_seq_stop_reason(g->seqs[j]);
            int32_t gen = e2h_seq_len(g->seqs[j]) - g->start[j];
            if (why != E2H_STOP_LENGTH || gen >= req_budget(g)) g->stopped[j] = 1;
            else open++;
        }
        if (!open) g->state = W_RUN; // complete: its search goes on
    }
}

// Extends every waiting request by one chunk, grouped by stop strings.
static void batch_step(batch *b) {
    char grp[BATCH_MAX], seen[BATCH_MAX];
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < b->nw; i++) {
        if (b->w[i].state != W_WAIT || seen[i]) continue;
        memset(grp, 0, sizeof grp);
        for (int j = i; j < b->nw; j++)
            if (b->w[j].state == W_WAIT && !seen[j] && stop_same(b->w[i].stop, b->w[j].stop))
                grp[j] = seen[j] = 1;
        batch_chunk(b, grp);
    }
}

// ------------------------------------------------------------------ the workers

static void *batch_worker(void *arg) {
    srch_gate *g = arg;
    batch *b = g->b;
    pthread_mutex_lock(&b->mu);
    while (b->turn != g->id) pthread_cond_wait(&g->cv, &b->mu);
    for (;;) {
        e2h_search_job job;
        memset(&job, 0, sizeof job);
        if (b->no_more || !b->spec->next(b->spec->ctx, &job)) {
            b->no_more = 1;
            break;
        }
        e2h_search_result res;
        e2h_status st = srch_run(b->e, job.prompt, job.n_prompt, &job.opts, g, &res);
        const char *msg = st ? e2h_engine_last_error(b->e) : "";
        if (b->spec->done(b->spec->ctx, job.tag, st, msg, st ? NULL : &res)) b->no_more = 1;
    }
    g->state = W_EXIT;
    b->turn = BATCH_DRIVER;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static void batch_free(batch *b, int started) {
    for (int i = 0; i < started; i++) pthread_join(b->w[i].th, NULL);
    for (int i = 0; b->w && i < b->nw; i++) {
        pthread_cond_destroy(&b->w[i].cv);
        free(b->w[i].start);
        free(b->w[i].stopped);
    }
    free(b->w);
    free(b->list);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
}

e2h_status e2h_search_run_batch(e2h_engine *e, const e2h_search_batch *spec) {
    if (!e) return E2H_ERR_INVALID_ARG;
    if (!spec || !spec->next || !spec->done || spec->max_concurrent < 1 ||
        spec->max_concurrent > BATCH_MAX)
        return eng_set_error(e, E2H_ERR_INVALID_ARG, "search batch: need next() and done() and "
                             "1 <= max_concurrent <= %d", BATCH_MAX);
    batch b;
    memset(&b, 0, sizeof b);
    b.e = e;
    b.spec = spec;
    b.turn = BATCH_DRIVER;
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    b.w = calloc((size_t)spec->max_concurrent, sizeof *b.w);
    if (!b.w) {
        batch_free(&b, 0);
        return eng_set_error(e, E2H_ERR_NOMEM, "search batch: out of memory");
    }
    b.nw = spec->max_concurrent;
    for (int i = 0; i < b.nw; i++) {
        b.w[i].b = &b;
        b.w[i].id = i;
        b.w[i].state = W_RUN;
        pthread_cond_init(&b.w[i].cv, NULL);
    }
    pthread_mutex_lock(&b.mu);
    int started = 0;
    for (; started < b.nw; started++)
        if (pthread_create(&b.w[started].th, NULL, batch_worker, &b.w[started])) break;
    if (started == 0) {
        pthread_mutex_unlock(&b.mu);
        batch_free(&b, 0);
        return eng_set_error(e, E2H_ERR_NOMEM, "search batch: could not start a thread");
    }
    for (int i = started; i < b.nw; i++) b.w[i].state = W_EXIT; // run with fewer
    for (;;) {
        // every search that can go on runs until it waits for an extend or has no more jobs
        for (int i = 0; i < b.nw; i++)
            if (b.w[i].state == W_RUN) batch_switch(&b, i, BATCH_DRIVER, &b.cv);
        int waiting = 0;
        for (int i = 0; i < b.nw; i++) waiting += b.w[i].state == W_WAIT;
        if (!waiting) break; // all exited
        batch_step(&b);
    }
    pthread_mutex_unlock(&b.mu);
    batch_free(&b, started);
    return E2H_OK;
}
