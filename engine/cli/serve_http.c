// engine/cli/serve_http.c — the HTTP side of `e2h serve`, on GNU libmicrohttpd.
//
// Why libmicrohttpd: it is packaged in Debian (libmicrohttpd-dev), written in C, mature and
// widely deployed, and does all HTTP parsing itself (no hand-written parser here); its
// thread-per-connection mode lets a handler block while the scheduler works, and a content
// reader callback streams server-sent events as the scheduler produces them.
//
// Per connection: the first call checks route, method, auth and Content-Length; later calls
// gather the body (bounded); the last call parses it, queues the request and waits for it
// (polling the socket so that a client that hangs up cancels its request at once). The idle
// timeout (--timeout, MHD_OPTION_CONNECTION_TIMEOUT) guards the receiving of a request against
// slow clients; it is lifted once the request is queued, since generating may take longer.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "serve.h"

typedef enum { R_NONE, R_HEALTH, R_MODELS, R_METRICS, R_GEN } route_kind;

typedef struct {
    const char *path;
    const char *method;
    route_kind route;
    srv_kind kind;
} route;

static const route routes[] = {
    {"/health", "GET", R_HEALTH, SRV_COMPLETION},
    {"/v1/models", "GET", R_MODELS, SRV_COMPLETION},
    {"/metrics", "GET", R_METRICS, SRV_COMPLETION},
    {"/v1/completions", "POST", R_GEN, SRV_COMPLETION},
    {"/v1/chat/completions", "POST", R_GEN, SRV_CHAT},
    {"/v1/prm/score", "POST", R_GEN, SRV_PRM},
    {"/v1/search", "POST", R_GEN, SRV_SEARCH},
    {"/v1/reward", "POST", R_GEN, SRV_REWARD},
    {"/get_reward", "POST", R_GEN, SRV_REWARD}, // the path of OpenRLHF's reward-server examples
};

typedef struct {
    srv *s;
    const route *rt;
    char *body;
    size_t len, cap;
    int too_large;
    srv_req *r;        // the queued request (the handler's ref)
    MHD_socket fd;
} conn_ctx;

// ------------------------------------------------------------------ replies

static enum MHD_Result reply(struct MHD_Connection *c, int status, const char *ctype, char *body,
                             int retry_after) {
    if (!body) {
        status = 500;
        body = strdup("{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,\"code\":\"server_error\"}}");
        if (!body) return MHD_NO;
    }
    struct MHD_Response *rs = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!rs) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(rs, "Content-Type", ctype);
    if (retry_after) MHD_add_response_header(rs, "Retry-After", "1");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, rs);
    MHD_destroy_response(rs);
    return ret;
}

static enum MHD_Result reply_err(struct MHD_Connection *c, int status, const char *msg, const char *type) {
    return reply(c, status, "application/json", srv_error_json(msg, type, NULL), status == 429);
}

static enum MHD_Result reply_json(struct MHD_Connection *c, int status, char *body) {
    return reply(c, status, "application/json", body, status == 429);
}

// ------------------------------------------------------------------ checks

// Constant-time comparison: the time taken does not tell how much of a key matched.
static int key_equal(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = (unsigned char)(la != lb);
    for (size_t i = 0; i < la; i++) d |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return d == 0;
}

static int authorized(const srv *s, struct MHD_Connection *c) {
    if (!s->api_key) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    return h && !strncmp(h, "Bearer ", 7) && key_equal(h + 7, s->api_key);
}

// Did the client hang up? (peer closed or reset; read side shut down)
static int client_gone(MHD_socket fd) {
    if (fd == MHD_INVALID_SOCKET) return 0;
    struct pollfd p = {fd, POLLRDHUP, 0};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

static void cancel_req(srv *s, srv_req *r) {
    __atomic_store_n(&r->cancelled, 1, __ATOMIC_RELEASE);
    pthread_mutex_lock(&s->mu);
    pthread_cond_signal(&s->cv_sched);
    pthread_mutex_unlock(&s->mu);
}

// Waits (mu held) until r leaves `state_not` ... i.e. while r->state is below `until`.
// Returns -1 if the client hung up meanwhile (the request is then cancelled).
static int wait_state_locked(srv *s, srv_req *r, srv_state until, MHD_socket fd) {
    while (r->state < until) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&s->cv_done, &s->mu, &ts);
        if (r->state < until && client_gone(fd)) {
            __atomic_store_n(&r->cancelled, 1, __ATOMIC_RELEASE);
            pthread_cond_signal(&s->cv_sched);
            return -1;
        }
    }
    return 0;
}

// ------------------------------------------------------------------ streaming

typedef struct {
    srv *s;
    srv_req *r;   // the response's own ref
    MHD_socket fd;
} stream_ctx;

// MHD pulls the event stream from here (in the connection's own thread, where blocking is
// allowed): bytes the scheduler appended, or a wait for them.
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stream_ctx *x = cls;
    srv *s = x->s;
    srv_req *r = x->r;
    ssize_t n = 0;
    pthread_mutex_lock(&s->mu);
    while (r->out_pos == r->out_len && r->state != SRV_DONE) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&s->cv_done, &s->mu, &ts);
        if (r->out_pos == r->out_len && r->state != SRV_DONE && client_gone(x->fd)) {
            __atomic_store_n(&r->cancelled, 1, __ATOMIC_RELEASE);
            pthread_cond_signal(&s->cv_sched);
            pthread_mutex_unlock(&s->mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
    if (r->out_pos < r->out_len) {
        size_t k = r->out_len - r->out_pos < max ? r->out_len - r->out_pos : max;
        memcpy(buf, r->out + r->out_pos, k);
        r->out_pos += k;
        if (r->out_pos == r->out_len) r->out_pos = r->out_len = 0; // all consumed: reuse
        n = (ssize_t)k;
    } else {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void stream_free(void *cls) {
    stream_ctx *x = cls;
    pthread_mutex_lock(&x->s->mu);
    int done = x->r->state == SRV_DONE;
    pthread_mutex_unlock(&x->s->mu);
    if (!done) cancel_req(x->s, x->r); // MHD gave up on the stream (client gone)
    srv_req_unref(x->s, x->r);
    free(x);
}

static enum MHD_Result reply_stream(conn_ctx *cc, struct MHD_Connection *c) {
    stream_ctx *x = malloc(sizeof *x);
    if (!x) return MHD_NO;
    *x = (stream_ctx){cc->s, cc->r, cc->fd};
    pthread_mutex_lock(&cc->s->mu);
    cc->r->refs++;
    pthread_mutex_unlock(&cc->s->mu);
    struct MHD_Response *rs = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, x, stream_free);
    if (!rs) {
        stream_free(x);
        return MHD_NO;
    }
    MHD_add_response_header(rs, "Content-Type", "text/event-stream");
    MHD_add_response_header(rs, "Cache-Control", "no-cache");
    enum MHD_Result ret = MHD_queue_response(c, 200, rs);
    MHD_destroy_response(rs);
    return ret;
}

// ------------------------------------------------------------------ requests

// Parses, queues and waits for a POST request; then answers it.
static enum MHD_Result handle_post(conn_ctx *cc, struct MHD_Connection *c) {
    srv *s = cc->s;
    int status = 400;
    char *err = NULL;
    srv_req *r = srv_parse_request(s, cc->rt->kind, cc->body ? cc->body : "", cc->len, &status, &err);
    if (!r) return reply_json(c, status, err);
    int rc = srv_submit(s, r);
    if (rc) {
        srv_req_unref(s, r);
        return reply_err(c, rc, rc == 429 ? "the request queue is full; retry later" : "the server is shutting down",
                         rc == 429 ? "rate_limit_error" : "server_error");
    }
    cc->r = r;
    // the request is in: generating may take longer than the receive timeout
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    pthread_mutex_lock(&s->mu);
    int gone = wait_state_locked(s, r, r->stream ? SRV_RUNNING : SRV_DONE, cc->fd);
    // a stream may start and finish (e.g. a stop string at its first token) before this
    // thread wakes: it is answered as a stream all the same (its SSE bytes are in r->out)
    int started = r->stream && (r->state == SRV_RUNNING || r->sse);
    char *body = started || gone ? NULL : r->result;
    if (body) r->result = NULL;
    status = r->status;
    pthread_mutex_unlock(&s->mu);
    if (gone) return MHD_NO; // close: nobody listens
    if (started) return reply_stream(cc, c);
    return reply_json(c, status ? status : 500, body);
}

static enum MHD_Result handle_get(conn_ctx *cc, struct MHD_Connection *c) {
    switch (cc->rt->route) {
    case R_HEALTH: {
        pthread_mutex_lock(&cc->s->mu);
        int stopping = cc->s->stopping;
        pthread_mutex_unlock(&cc->s->mu);
        return reply_json(c, stopping ? 503 : 200, strdup(stopping ? "{\"status\":\"stopping\"}" : "{\"status\":\"ok\"}"));
    }
    case R_MODELS: return reply_json(c, 200, srv_models_json(cc->s));
    case R_METRICS: return reply(c, 200, "text/plain; version=0.0.4", srv_metrics_text(cc->s), 0);
    default: return reply_err(c, 404, "not found", "not_found_error");
    }
}

// First call of a request: route, method, auth and declared size, answered at once if wrong.
static enum MHD_Result handle_first(conn_ctx *cc, struct MHD_Connection *c, const char *url, const char *method) {
    srv *s = cc->s;
    int path_known = 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(url, routes[i].path)) continue;
        path_known = 1;
        if (!strcmp(method, routes[i].method)) cc->rt = &routes[i];
    }
    if (!path_known) return reply_err(c, 404, "unknown path", "not_found_error");
    if (!cc->rt) return reply_err(c, 405, "method not allowed on this path", "invalid_request_error");
    if (cc->rt->route != R_HEALTH && !authorized(s, c))
        return reply_err(c, 401, "missing or wrong API key (Authorization: Bearer KEY)", "authentication_error");
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || end == cl || (unsigned long long)s->lim.max_body < n) {
            cc->too_large = 1;
            return reply_err(c, 413, "the request body is larger than --max-body", "invalid_request_error");
        }
    }
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    cc->fd = ci ? ci->connect_fd : MHD_INVALID_SOCKET;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size,
                                  void **con_cls) {
    (void)version;
    conn_ctx *cc = *con_cls;
    if (!cc) {
        cc = calloc(1, sizeof *cc);
        if (!cc) return MHD_NO;
        cc->s = cls;
        cc->fd = MHD_INVALID_SOCKET;
        *con_cls = cc;
        return handle_first(cc, c, url, method);
    }
    if (!cc->rt || cc->too_large) { // already answered: drop what still arrives
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t k = *upload_size;
        *upload_size = 0;
        if (cc->len + k > (size_t)cc->s->lim.max_body) { // chunked bodies have no Content-Length
            cc->too_large = 1;
            return reply_err(c, 413, "the request body is larger than --max-body", "invalid_request_error");
        }
        if (cc->len + k + 1 > cc->cap) {
            size_t cap = (cc->len + k + 1) * 2;
            char *nb = realloc(cc->body, cap);
            if (!nb) return MHD_NO;
            cc->body = nb;
            cc->cap = cap;
        }
        memcpy(cc->body + cc->len, upload, k);
        cc->len += k;
        cc->body[cc->len] = 0;
        return MHD_YES;
    }
    return cc->rt->route == R_GEN ? handle_post(cc, c) : handle_get(cc, c);
}

// MHD's request-completed callback: a request that ends before its result was delivered
// (client gone, timeout, error) is cancelled, so its sequences are freed at once.
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)c;
    (void)toe;
    srv *s = cls;
    conn_ctx *cc = *con_cls;
    if (!cc) return;
    if (cc->r) {
        pthread_mutex_lock(&s->mu);
        int done = cc->r->state == SRV_DONE;
        pthread_mutex_unlock(&s->mu);
        if (!done) cancel_req(s, cc->r);
        srv_req_unref(s, cc->r);
    }
    free(cc->body);
    free(cc);
    *con_cls = NULL;
}

// ------------------------------------------------------------------ daemon

int srv_http_start(srv *s) {
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    const struct sockaddr *sa;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG;
    const char *host = !strcmp(s->host, "localhost") ? "127.0.0.1" : s->host;
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)s->port);
        sa = (const struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)s->port);
        sa = (const struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        return cli_fail("--host: '%s' is not an IPv4 or IPv6 address", s->host);
    }
    s->daemon = MHD_start_daemon(flags, (uint16_t)s->port, NULL, NULL, on_request, s,
                                 MHD_OPTION_SOCK_ADDR, sa,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->lim.timeout_s,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->lim.max_conns,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_END);
    if (!s->daemon) return cli_fail("serve: cannot listen on %s port %ld (%s)", s->host, s->port, strerror(errno));
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (di) s->port = di->port;
    return 0;
}

// Stops accepting connections (open ones go on until their requests end).
void srv_http_quiesce(srv *s) {
    if (!s->daemon) return;
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET) close(fd);
}

void srv_http_stop(srv *s) {
    if (s->daemon) MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
}
