// engine/cli/serve_loop.c — the scheduler thread of `e2h serve`: the only thread that uses the
// engine. Continuous batching: between forward passes it admits queued requests (a request
// whose prompt is already in the prefix cache prefills only its last token; the n choices of
// a request are forks of one prompt sequence and share its blocks), advances every running
// choice by a few tokens in one e2h_seq_extend call (one batched forward pass per token),
// turns the new tokens into text, applies each request's own stop strings and budget, streams
// or stores the result, and retires finished requests.
//
// KV admission: a request reserves the blocks its prompt and n full-length choices could use
// (an upper bound: sharing only lowers it) and is admitted only while the reservations fit
// the pool, so a running request never meets a full pool mid-generation; the rest wait in
// the queue (FIFO, no overtaking, so a large request is not starved).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve.h"

typedef struct {
    srv *s;
    srv_req **run;        // running generation requests
    int n_run, cap_run;
    e2h_seq **seqs;       // extend's argument, rebuilt each iteration
    srv_choice **chs;     //   and the choice of each
    srv_req **reqs;       //   and its request
    int cap_seqs;
    int32_t reserved;     // blocks reserved by the running requests
    int exclusive;        // a search is waiting for the running requests to drain
} sched;

// ------------------------------------------------------------------ queue (handler side)

int srv_submit(srv *s, srv_req *r) {
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (s->stopping) rc = 503;
    else if (s->q_len >= s->lim.max_queue) rc = 429;
    if (rc) {
        s->met.rejected++;
        pthread_mutex_unlock(&s->mu);
        return rc;
    }
    r->refs++;
    r->state = SRV_QUEUED;
    r->next = NULL;
    if (s->q_tail) s->q_tail->next = r;
    else s->q_head = r;
    s->q_tail = r;
    s->q_len++;
    s->met.requests++;
    pthread_cond_signal(&s->cv_sched);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

// ------------------------------------------------------------------ finishing (mu taken here)

// Appends bytes to r's stream buffer (mu held by the caller).
static void sched_out_append(srv_req *r, const char *b) {
    size_t l = strlen(b);
    if (r->out_len + l + 1 > r->out_cap) {
        size_t c = (r->out_len + l + 1) * 2;
        char *nb = realloc(r->out, c);
        if (!nb) return; // the client sees a gap; nothing better to do without memory
        r->out = nb;
        r->out_cap = c;
    }
    memcpy(r->out + r->out_len, b, l + 1);
    r->out_len += l;
}

// Marks r done with a body and status, wakes its handler and drops the scheduler's ref.
static void sched_finish(srv *s, srv_req *r, int status, char *body) {
    pthread_mutex_lock(&s->mu);
    // a stream whose headers went out (it was running) carries the end, or an error, as
    // SSE events; anything else answers with its own status and body
    int started = r->stream && r->state == SRV_RUNNING;
    if (started && status != 200 && body) {
        size_t l = strlen(body) + 16;
        char *ev = malloc(l);
        if (ev) snprintf(ev, l, "data: %s\n\n", body);
        free(body);
        body = ev;
    }
    r->status = started ? 200 : status;
    r->sse = started;
    if (started) {
        if (body) sched_out_append(r, body);
        free(body);
    } else {
        free(r->result);
        r->result = body;
    }
    if (status != 200 && status != 499) s->met.failed++;
    r->state = SRV_DONE;
    pthread_cond_broadcast(&s->cv_done);
    pthread_mutex_unlock(&s->mu);
    srv_req_unref(s, r);
}

static void sched_fail(srv *s, srv_req *r, int status, const char *msg, const char *type) {
    sched_finish(s, r, status, srv_error_json(msg, type, NULL));
}

// ------------------------------------------------------------------ choices

static void choice_free(srv *s, srv_choice *c) {
    if (c->seq) e2h_seq_release(s->e, c->seq);
    e2h_detok_stream_free(c->ds);
    free(c->text);
    free(c->toks);
    memset(c, 0, sizeof *c);
}

static int choice_cat(srv_choice *c, const char *b, size_t l) {
    if (c->len + l + 1 > c->cap) {
        size_t cap = (c->len + l + 1) * 2;
        char *nb = realloc(c->text, cap);
        if (!nb) return -1;
        c->text = nb;
        c->cap = cap;
    }
    memcpy(c->text + c->len, b, l);
    c->len += l;
    c->text[c->len] = 0;
    return 0;
}

static srv_tok *choice_tok(srv_choice *c) {
    if (c->n_toks == c->cap_toks) {
        int cap = c->cap_toks ? c->cap_toks * 2 : 32;
        srv_tok *nt = realloc(c->toks, (size_t)cap * sizeof *nt);
        if (!nt) return NULL;
        c->toks = nt;
        c->cap_toks = cap;
    }
    srv_tok *t = &c->toks[c->n_toks++];
    memset(t, 0, sizeof *t);
    return t;
}

// The k most likely next tokens from the sequence's current logits (log-softmax, the model's
// own distribution as e2h_seq_logprobs). Stored in *t.
static void choice_top(const srv *s, const e2h_seq *q, int k, srv_tok *t) {
    const float *lg = e2h_seq_logits(q);
    int V = s->vocab; // the logits row's length (the model's vocabulary, not the tokenizer's)
    t->n_top = 0;
    if (!lg || k <= 0 || V <= 0) return;
    float mx = -INFINITY;
    for (int v = 0; v < V; v++) mx = lg[v] > mx ? lg[v] : mx;
    double z = 0;
    for (int v = 0; v < V; v++) z += exp((double)(lg[v] - mx));
    float lz = mx + (float)log(z);
    for (int v = 0; v < V; v++) { // insertion into a k-long sorted list
        int j = t->n_top < k ? t->n_top++ : k;
        if (j == k && lg[v] - lz <= t->top_lp[k - 1]) continue;
        if (j == k) j = k - 1;
        while (j > 0 && t->top_lp[j - 1] < lg[v] - lz) {
            t->top_lp[j] = t->top_lp[j - 1];
            t->top_id[j] = t->top_id[j - 1];
            j--;
        }
        t->top_lp[j] = lg[v] - lz;
        t->top_id[j] = v;
    }
}

// Earliest stop string in c->text that ends after byte `from`; returns its offset or -1.
static long choice_find_stop(const srv_req *r, const srv_choice *c, size_t from) {
    size_t start = from > r->stop_max ? from - r->stop_max : 0;
    long best = -1;
    for (int i = 0; i < r->n_stops; i++) {
        const char *hit = memmem(c->text + start, c->len - start, r->stops[i], strlen(r->stops[i]));
        if (hit && (best < 0 || hit - c->text < best)) best = hit - c->text;
    }
    return best;
}

// Takes the tokens that extend added to c: text, logprob records, stop strings, budget.
static void choice_take(srv_req *r, srv_choice *c, const srv_tok *pending_top) {
    const int32_t *tk = e2h_seq_tokens(c->seq);
    const float *lp = e2h_seq_logprobs(c->seq);
    int32_t len = e2h_seq_len(c->seq), p0 = e2h_seq_n_prompt(c->seq) + c->n_gen;
    e2h_stop_reason why = e2h_seq_stop_reason(c->seq);
    size_t old_len = c->len;
    for (int32_t p = p0; p < len; p++) {
        c->n_gen++;
        if (p == len - 1 && why == E2H_STOP_EOS) { c->finish = "stop"; break; } // no EOS text
        char piece[256];
        size_t pl = 0;
        if (e2h_detok_stream_push(c->ds, tk[p], piece, sizeof piece, &pl) || pl >= sizeof piece) pl = 0;
        srv_tok *t = r->logprobs ? choice_tok(c) : NULL;
        if (t) {
            if (pending_top && p == p0) *t = *pending_top;
            t->id = tk[p];
            t->lp = lp[p];
            t->offset = c->len;
            t->text_len = pl;
        }
        if (pl) choice_cat(c, piece, pl);
    }
    long cut = r->n_stops ? choice_find_stop(r, c, old_len) : -1;
    if (cut >= 0) {
        c->len = (size_t)cut;
        c->text[c->len] = 0;
        c->finish = "stop";
        while (c->n_toks > 0 && c->toks[c->n_toks - 1].offset >= c->len && c->toks[c->n_toks - 1].text_len)
            c->n_toks--; // tokens after the cut
        return;
    }
    if (!c->finish && (c->n_gen >= r->max_tokens || why == E2H_STOP_CONTEXT)) c->finish = "length";
    if (c->finish) { // what the stream still holds (an unfinished character) is emitted
        char piece[64];
        size_t pl = 0;
        if (!e2h_detok_stream_flush(c->ds, piece, sizeof piece, &pl) && pl && pl < sizeof piece)
            choice_cat(c, piece, pl);
    }
}

// Streams what choice i may show: everything when finished, else all but the bytes that
// could still become a stop string.
static void choice_stream(srv *s, srv_req *r, int i) {
    srv_choice *c = &r->ch[i];
    size_t hold = c->finish || !r->n_stops ? 0 : r->stop_max - 1;
    size_t safe = c->len > hold ? c->len - hold : 0;
    if (safe < c->sent) safe = c->sent;
    int k = (int)c->toks_sent;
    while (k < c->n_toks && (c->finish || c->toks[k].offset + c->toks[k].text_len <= safe)) k++;
    if (safe == c->sent && k == (int)c->toks_sent && !c->finish) return;
    char *ev = srv_chunk_sse(s, r, i, c->sent, safe, (int)c->toks_sent, k, c->finish);
    c->sent = safe;
    c->toks_sent = (size_t)k;
    if (!ev) return;
    pthread_mutex_lock(&s->mu);
    sched_out_append(r, ev);
    pthread_cond_broadcast(&s->cv_done);
    pthread_mutex_unlock(&s->mu);
    free(ev);
}

// ------------------------------------------------------------------ requests

static void sched_retire(sched *q, int idx) {
    srv *s = q->s;
    srv_req *r = q->run[idx];
    for (int i = 0; i < r->n; i++) choice_free(s, &r->ch[i]);
    q->reserved -= r->reserved;
    q->run[idx] = q->run[--q->n_run];
}

// Prefills the prompt (alone, so an identical prompt of a request admitted after it finds
// every block cached) and forks the n choices. Returns 0, or fails r and returns -1.
static int sched_start(sched *q, srv_req *r) {
    srv *s = q->s;
    r->ch = calloc((size_t)r->n, sizeof *r->ch);
    e2h_seq *root = NULL;
    e2h_status st = r->ch ? e2h_seq_create(s->e, r->ids, r->n_ids, &r->sp, &root) : E2H_ERR_NOMEM;
    if (!st) st = e2h_engine_sync(s->e, &root, 1);
    e2h_seq **kids = NULL;
    if (!st && r->n == 1) {
        r->ch[0].seq = root;
    } else if (!st) { // the children hold the prompt's blocks; the root is not needed
        kids = malloc((size_t)r->n * sizeof *kids);
        st = kids ? e2h_seq_fork(s->e, root, r->n, kids) : E2H_ERR_NOMEM;
        for (int i = 0; !st && i < r->n; i++) r->ch[i].seq = kids[i];
        e2h_seq_release(s->e, root);
    } else if (root) {
        e2h_seq_release(s->e, root);
    }
    for (int i = 0; !st && i < r->n; i++) { // text starts as "" (never NULL: it is sliced)
        r->ch[i].ds = e2h_detok_stream_new(e2h_model_tokenizer(s->m));
        if (!r->ch[i].ds || choice_cat(&r->ch[i], "", 0)) st = E2H_ERR_NOMEM;
    }
    free(kids);
    if (st) {
        char msg[512];
        snprintf(msg, sizeof msg, "starting the request: %s (%s)", e2h_engine_last_error(s->e),
                 e2h_status_name(st));
        if (r->ch)
            for (int i = 0; i < r->n; i++) choice_free(s, &r->ch[i]);
        q->reserved -= r->reserved;
        sched_fail(s, r, st == E2H_ERR_KV_FULL ? 503 : 500, msg, "server_error");
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    r->state = SRV_RUNNING;
    s->met.prompt_tokens += r->n_ids;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static int sched_push_run(sched *q, srv_req *r) {
    if (q->n_run == q->cap_run) {
        int cap = q->cap_run ? q->cap_run * 2 : 16;
        srv_req **nr = realloc(q->run, (size_t)cap * sizeof *nr);
        if (!nr) return -1;
        q->run = nr;
        q->cap_run = cap;
    }
    q->run[q->n_run++] = r;
    return 0;
}

// Runs a PRM / search / reward request to completion (they hold the engine while they run).
static void sched_run_other(sched *q, srv_req *r) {
    srv *s = q->s;
    int status = 200;
    char *body = r->kind == SRV_PRM ? srv_run_prm(s, r, &status)
               : r->kind == SRV_SEARCH ? srv_run_search(s, r, &status)
                                       : srv_run_reward(s, r, &status);
    q->reserved -= r->reserved;
    sched_finish(s, r, status, body);
}

// Pops the requests that fit (mu held). Searches need the whole pool: they wait until the
// running requests finish, and nothing is admitted past them meanwhile.
static int sched_admit_locked(sched *q, srv_req **out, int cap) {
    srv *s = q->s;
    int k = 0;
    while (s->q_head && k < cap) {
        srv_req *r = s->q_head;
        int excl = r->kind == SRV_SEARCH;
        int32_t need = excl ? s->blocks_total : r->need;
        if (__atomic_load_n(&r->cancelled, __ATOMIC_ACQUIRE)) need = 0;
        else if (excl && (q->n_run > 0 || k > 0)) break;
        else if (need > 0 && q->reserved + need > s->blocks_total && (q->n_run > 0 || k > 0)) break;
        s->q_head = r->next;
        if (!s->q_head) s->q_tail = NULL;
        s->q_len--;
        r->reserved = need;
        q->reserved += need;
        out[k++] = r;
        if (excl) break;
    }
    return k;
}

// ------------------------------------------------------------------ one iteration

// Collects the running choices into q->seqs; drops cancelled requests. Returns the count.
static int sched_collect(sched *q) {
    srv *s = q->s;
    int total = 0;
    for (int i = 0; i < q->n_run; i++) total += q->run[i]->n;
    if (total > q->cap_seqs) {
        free(q->seqs); free(q->chs); free(q->reqs);
        q->seqs = malloc((size_t)total * sizeof *q->seqs);
        q->chs = malloc((size_t)total * sizeof *q->chs);
        q->reqs = malloc((size_t)total * sizeof *q->reqs);
        q->cap_seqs = q->seqs && q->chs && q->reqs ? total : 0;
        if (!q->cap_seqs) return -1;
    }
    int k = 0;
    for (int i = 0; i < q->n_run; i++) {
        srv_req *r = q->run[i];
        if (__atomic_load_n(&r->cancelled, __ATOMIC_ACQUIRE)) { // the client went away: its blocks go back to the pool now
            sched_retire(q, i--);
            sched_finish(s, r, 499, NULL);
            continue;
        }
        for (int j = 0; j < r->n; j++)
            if (!r->ch[j].finish) {
                q->seqs[k] = r->ch[j].seq;
                q->chs[k] = &r->ch[j];
                q->reqs[k++] = r;
            }
    }
    return k;
}

// Streams, and retires the requests whose choices have all finished.
static void sched_emit(sched *q) {
    srv *s = q->s;
    for (int i = 0; i < q->n_run; i++) {
        srv_req *r = q->run[i];
        int done = 1;
        for (int j = 0; j < r->n; j++) {
            if (r->stream) choice_stream(s, r, j);
            done &= r->ch[j].finish != NULL;
        }
        if (!done) continue;
        int32_t gen = 0;
        for (int j = 0; j < r->n; j++) gen += r->ch[j].n_gen;
        r->prompt_tokens = r->n_ids;
        r->completion_tokens = gen;
        char *body = r->stream ? srv_stream_end(s, r) : srv_completion_json(s, r);
        sched_retire(q, i--);
        sched_finish(s, r, body ? 200 : 500, body ? body : srv_error_json("out of memory", "server_error", NULL));
    }
}

// Publishes the scheduler's gauges for /metrics (the KV stats are read here, in the engine's
// thread).
static void sched_publish(sched *q) {
    srv *s = q->s;
    pthread_mutex_lock(&s->mu);
    s->met.running = q->n_run;
    s->met.queue_depth = s->q_len;
    e2h_engine_get_kv_stats(s->e, &s->met.kv);
    pthread_mutex_unlock(&s->mu);
}

// One scheduler step over the running requests: a few tokens for every running choice.
static void sched_step(sched *q) {
    srv *s = q->s;
    int n = sched_collect(q);
    if (n <= 0) {
        sched_emit(q);
        sched_publish(q);
        return;
    }
    // a request waits that would fit: one token per step, so it joins at the next forward
    // pass (one that waits for KV keeps waiting, and the batch keeps its longer steps)
    pthread_mutex_lock(&s->mu);
    const srv_req *h = s->q_head;
    int waiting = h && h->kind != SRV_SEARCH && q->reserved + h->need <= s->blocks_total;
    pthread_mutex_unlock(&s->mu);
    int32_t chunk = waiting ? 1 : (int32_t)s->lim.chunk;
    int top = 0;
    for (int i = 0; i < n; i++) {
        int32_t rem = q->reqs[i]->max_tokens - q->chs[i]->n_gen;
        if (rem < chunk) chunk = rem > 0 ? rem : 1;
        top |= q->reqs[i]->top_logprobs > 0;
    }
    // alternatives of a token come from the logits before it is sampled: one token per
    // step while a request wants them
    srv_tok *tops = NULL;
    if (top) {
        chunk = 1;
        tops = calloc((size_t)n, sizeof *tops);
        for (int i = 0; tops && i < n; i++)
            if (q->reqs[i]->top_logprobs > 0) choice_top(s, q->seqs[i], q->reqs[i]->top_logprobs, &tops[i]);
    }
    e2h_stop stop = e2h_stop_default();
    stop.max_tokens = chunk;
    double t0 = srv_now();
    e2h_status st = e2h_seq_extend(s->e, q->seqs, n, &stop);
    double dt = srv_now() - t0;
    if (st) { // fail every running request: the engine's state is not trusted further
        char msg[512];
        snprintf(msg, sizeof msg, "generation failed: %s (%s)", e2h_engine_last_error(s->e), e2h_status_name(st));
        while (q->n_run) {
            srv_req *r = q->run[0];
            sched_retire(q, 0);
            sched_fail(s, r, 500, msg, "server_error");
        }
        free(tops);
        return;
    }
    int64_t toks = 0;
    for (int i = 0; i < n; i++) {
        int32_t before = q->chs[i]->n_gen;
        choice_take(q->reqs[i], q->chs[i], tops && q->reqs[i]->top_logprobs > 0 ? &tops[i] : NULL);
        toks += q->chs[i]->n_gen - before;
    }
    free(tops);
    pthread_mutex_lock(&s->mu);
    s->met.gen_tokens += toks;
    s->met.gen_seconds += dt;
    pthread_mutex_unlock(&s->mu);
    sched_emit(q);
    sched_publish(q);
}

// Waits for work; pops what can be admitted. Returns -1 when the loop should end.
static int sched_wait_admit(sched *q, srv_req **adm, int cap, int *n_adm) {
    srv *s = q->s;
    pthread_mutex_lock(&s->mu);
    while (!s->q_head && q->n_run == 0 && !s->stopping) pthread_cond_wait(&s->cv_sched, &s->mu);
    srv_req *rej = NULL;
    if (s->stopping) { // shutdown: queued requests are rejected, running ones finish
        rej = s->q_head;
        s->q_head = s->q_tail = NULL;
        s->q_len = 0;
    }
    *n_adm = sched_admit_locked(q, adm, cap);
    s->met.queue_depth = s->q_len;
    s->met.running = q->n_run + *n_adm;
    e2h_engine_get_kv_stats(s->e, &s->met.kv);
    int end = s->stopping && q->n_run == 0 && *n_adm == 0;
    pthread_mutex_unlock(&s->mu);
    while (rej) {
        srv_req *nx = rej->next;
        sched_fail(s, rej, 503, "the server is shutting down", "server_error");
        rej = nx;
    }
    return end ? -1 : 0;
}

void *srv_sched_main(void *arg) {
    sched q = {0};
    q.s = arg;
    srv_req *adm[64];
    for (;;) {
        int n_adm = 0;
        if (sched_wait_admit(&q, adm, 64, &n_adm) < 0) break;
        for (int i = 0; i < n_adm; i++) {
            srv_req *r = adm[i];
            if (__atomic_load_n(&r->cancelled, __ATOMIC_ACQUIRE)) { q.reserved -= r->reserved; sched_finish(q.s, r, 499, NULL); continue; }
            if (r->kind != SRV_COMPLETION && r->kind != SRV_CHAT) { sched_run_other(&q, r); continue; }
            if (sched_start(&q, r)) continue;
            if (sched_push_run(&q, r)) {
                for (int j = 0; j < r->n; j++) choice_free(q.s, &r->ch[j]);
                q.reserved -= r->reserved;
                sched_fail(q.s, r, 500, "out of memory", "server_error");
            }
        }
        sched_step(&q);
    }
    free(q.run);
    free(q.seqs);
    free(q.chs);
    free(q.reqs);
    pthread_mutex_lock(&q.s->mu);
    e2h_engine_get_kv_stats(q.s->e, &q.s->met.kv);
    q.s->sched_exited = 1;
    pthread_cond_broadcast(&q.s->cv_done);
    pthread_mutex_unlock(&q.s->mu);
    return NULL;
}

