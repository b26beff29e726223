// engine/cli/serve.h — `e2h serve`: an OpenAI-compatible HTTP server over one e2h engine.
//
// Threads (an e2h engine is used by one thread only, include/e2h.h):
//   - libmicrohttpd's threads (one per connection) parse and validate requests (serve_api.c),
//     tokenize them (the tokenizer is thread-safe), push them to a bounded queue and wait;
//   - ONE scheduler thread (serve_loop.c) owns the engine: between forward passes it admits
//     queued requests, advances every running sequence a few tokens together (continuous
//     batching), publishes new text and retires finished requests;
//   - the main thread (serve.c) waits for SIGTERM/SIGINT and shuts everything down in order.
// Everything below marked "(mu)" is read and written only with srv.mu held.
#ifndef E2H_SERVE_H
#define E2H_SERVE_H

#include <pthread.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cli.h"

#define SRV_MAX_STOPS 8
#define SRV_MAX_TOP 20     // top_logprobs bound (OpenAI's limit for chat)

typedef enum { SRV_COMPLETION, SRV_CHAT, SRV_PRM, SRV_SEARCH, SRV_REWARD } srv_kind;
typedef enum { SRV_QUEUED, SRV_RUNNING, SRV_DONE } srv_state;

// Bounds on what one request may ask for (flags of `e2h serve`).
typedef struct {
    long max_body;        // bytes of a request body
    long max_n;           // choices per request
    long max_tokens;      // max_tokens per choice
    long max_prompt;      // prompt tokens
    long max_queue;       // requests waiting for admission
    long max_conns;       // open connections
    long timeout_s;       // idle seconds while a request is being received (slow clients)
    long chunk;           // tokens per sequence per scheduler iteration
} srv_limits;

// One generated token of a choice, for logprobs.
typedef struct {
    int32_t id;
    float lp;
    size_t offset;        // byte offset of its text in the choice's text
    size_t text_len;      // bytes of text it completed (0 for part of a UTF-8 character)
    int n_top;
    int32_t top_id[SRV_MAX_TOP];
    float top_lp[SRV_MAX_TOP];
} srv_tok;

// One choice (sample) of a generation request. Owned by the scheduler while running; read by
// the handler only once the request is SRV_DONE.
typedef struct {
    e2h_seq *seq;
    e2h_detok_stream *ds;
    char *text;           // decoded text (NUL-terminated), cut at a stop string when done
    size_t len, cap;
    size_t sent;          // bytes already streamed
    int32_t n_gen;        // generated tokens taken
    srv_tok *toks;
    int n_toks, cap_toks;
    size_t toks_sent;     // logprob records already streamed
    const char *finish;   // "stop" / "length"; NULL while running
} srv_choice;

typedef struct srv_req {
    // set by the handler before the request is queued, then read-only
    srv_kind kind;
    int stream;
    int stream_usage;     // stream_options.include_usage: a last chunk with the usage
    char id[48];
    long created;
    int32_t *ids;         // prompt (completions, chat, search)
    int32_t n_ids;
    int n;
    e2h_sampling sp;
    int32_t max_tokens;
    char *stops[SRV_MAX_STOPS];
    int n_stops;
    size_t stop_max;      // longest stop string (text held back while streaming)
    int logprobs;         // report logprobs
    int top_logprobs;     // alternatives per token (0..SRV_MAX_TOP)
    cJSON *payload;       // PRM / search / reward: the validated request body (owned)
    // scheduler-owned
    srv_choice *ch;       // (n)
    int32_t reserved;     // KV blocks reserved at admission
    // (mu)
    srv_state state;
    int sse;              // a stream that started running: its result is the SSE bytes in out,
                          // even when it is already done before its handler looks
    int cancelled;        // the client went away: free its sequences at once (atomic, no mu)
    int32_t need;         // KV blocks the request may use (set by the handler)
    int refs;             // holders: handler, scheduler, stream response
    int status;           // HTTP status of the result (0 until done)
    char *result;         // response body (JSON) once done
    char *out;            // streaming: SSE bytes produced, not yet consumed from out_pos
    size_t out_len, out_cap, out_pos;
    int32_t prompt_tokens, completion_tokens;
    struct srv_req *next; // queue link
} srv_req;

typedef struct {
    int64_t requests, rejected, failed, prompt_tokens, gen_tokens;
    int queue_depth, running;
    e2h_kv_stats kv;
    double gen_seconds;   // scheduler seconds spent with sequences running
} srv_metrics;

// What request parsing needs from the model: its tokenizer and its chat template (as
// e2h_tokenize and e2h_model_apply_chat_turns). serve.c binds them to the loaded model
// (srv_text_model); tests/fuzz/fuzz_serve_api.c binds a model-free stand-in, so the request
// parsers run without a model, a socket or any I/O. Called from handler threads: thread-safe.
typedef struct {
    e2h_status (*tokenize)(const void *ctx, const char *text, size_t len, int add_special,
                           int32_t *ids, int32_t cap, int32_t *n_ids);
    e2h_status (*chat)(const void *ctx, const char *system, const char *const *roles,
                       const char *const *contents, int n, char *out, size_t cap, size_t *len);
    const void *ctx;
} srv_text;

typedef struct srv {
    // configuration (read-only after start)
    cli_model_opts mo;
    const char *host, *api_key, *prm_path, *prm_protocol, *prm_head;
    long port;
    srv_limits lim;
    char model_name[256];
    e2h_model *m;
    e2h_engine *e;        // scheduler thread only
    e2h_prm *prm;
    // what request parsing reads (never m or prm themselves): set by serve_open
    srv_text txt;
    int have_prm;         // a PRM is loaded
    int32_t blocks_total, block_size, max_ctx, vocab;
    // shared (mu)
    pthread_mutex_t mu;
    pthread_cond_t cv_sched;  // the scheduler waits for work
    pthread_cond_t cv_done;   // handlers wait for progress on their request
    srv_req *q_head, *q_tail;
    int q_len;
    int stopping;         // SIGTERM: reject new requests, finish the running ones
    int sched_exited;
    int n_live;           // requests allocated and not yet freed
    srv_metrics met;
    double t_start;
    long next_id;
    pthread_t sched;
    struct MHD_Daemon *daemon;
} srv;

double srv_now(void);

// serve_api.c: request parsing and response building (handler threads, no engine use).
// Parses body into a new request (refs 1, the caller's). On a client error returns NULL and
// writes an OpenAI error body into *err (malloc'd) with *status. Reads of s only lim,
// txt, have_prm, blocks_total, block_size, max_ctx, and mu/next_id/n_live (under mu); no I/O.
// Needs s->txt set (srv_text_model) and s->mu initialized.
srv_req *srv_parse_request(srv *s, srv_kind kind, const char *body, size_t len, int *status,
                           char **err);
char *srv_error_json(const char *message, const char *type, const char *param);
// The text ops of a loaded model (its tokenizer and chat template; m must outlive them).
srv_text srv_text_model(const e2h_model *m);
// All the tokens of text through s->txt: *ids (malloc'd, caller frees; NULL on error) and
// *n_ids. Sizes the buffer at len + 8 and asks again at the reported count if that is short
// (e2h_tokenize's contract), so any tokenizer works.
e2h_status srv_tokenize_all(const srv *s, const char *text, size_t len, int add_special,
                            int32_t **ids, int32_t *n_ids);
// The final JSON body of a finished generation request (scheduler thread, req done).
char *srv_completion_json(const srv *s, const srv_req *r);
// One SSE chunk of choice i carrying text[from, to) (and its logprob records); finish may
// be NULL. Returns a malloc'd "data: {...}\n\n".
char *srv_chunk_sse(const srv *s, const srv_req *r, int i, size_t from, size_t to, int tok_from,
                    int tok_to, const char *finish);
// The stream's closing events: the usage chunk (if asked for) and "data: [DONE]".
char *srv_stream_end(const srv *s, const srv_req *r);
char *srv_models_json(const srv *s);
char *srv_metrics_text(srv *s);
void srv_req_unref(srv *s, srv_req *r); // (takes mu itself) frees at zero refs

// KV blocks a generation request may use at most (its reservation at admission; serve_api.c).
int32_t srv_request_need(const srv *s, const srv_req *r);

// serve_loop.c: the scheduler thread.
void *srv_sched_main(void *arg);
// Queues r (a ref is taken for the scheduler). Returns 0, 429 (queue full) or 503 (stopping).
int srv_submit(srv *s, srv_req *r);

// serve_http.c: the daemon.
int srv_http_start(srv *s);
void srv_http_quiesce(srv *s);
void srv_http_stop(srv *s);

// serve_prm.c: PRM, search and reward requests (scheduler thread).
char *srv_run_prm(srv *s, srv_req *r, int *status);
char *srv_run_search(srv *s, srv_req *r, int *status);
char *srv_run_reward(srv *s, srv_req *r, int *status);

#endif
