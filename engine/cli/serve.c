// engine/cli/serve.c — `e2h serve`: flags, start-up and orderly shutdown of the OpenAI-compatible
// server (serve.h says which thread does what; serve_http.c the HTTP side, serve_api.c the
// API's JSON, serve_loop.c the scheduler, serve_prm.c the PRM / search / reward endpoints).
//
// SIGTERM / SIGINT: stop accepting connections, reject what is still queued (503), let the
// running requests finish and their answers go out, free every sequence (the KV pool is then
// empty: said on stderr), free everything, exit 0.
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve.h"

static const char *serve_usage =
    "usage: e2h serve -m MODEL [--prm MODEL [--prm-protocol NAME] | --prm-head FILE] [options]\n"
    "An OpenAI-compatible HTTP server with continuous batching over one engine:\n"
    "  POST /v1/completions, /v1/chat/completions (n, temperature, top_p, top_k, min_p, seed,\n"
    "       stop, max_tokens, logprobs, stream), /v1/prm/score, /v1/search, /v1/reward\n"
    "       (OpenRLHF --remote_rm_url); GET /v1/models, /health, /metrics (Prometheus)\n"
    "  --host ADDR         address to bind (default 127.0.0.1: loopback only)\n"
    "  --port N            port (default 8080; 0: any free port, printed on stderr)\n"
    "  --api-key KEY       require 'Authorization: Bearer KEY' on every endpoint but /health\n"
    "                      (also read from E2H_API_KEY when the flag is absent)\n"
    "  --prm MODEL         a process reward model for /v1/prm/score, /v1/search, /v1/reward;\n"
    "                      --prm-protocol NAME picks its protocol (default: detected)\n"
    "  --prm-head FILE     an e2h head (.safetensors) on the policy's hidden states instead\n"
    "  --max-queue N       requests waiting for admission before 429 (default 64)\n"
    "  --max-conns N       open connections (default 256)\n"
    "  --max-body BYTES    request body size (default 4194304)\n"
    "  --max-n N           choices per request (default 16)\n"
    "  --max-tokens N      max_tokens per choice (default 4096)\n"
    "  --max-prompt N      prompt tokens (default: the context)\n"
    "  --timeout S         seconds a client may idle while sending a request (default 10)\n"
    "  --chunk N           tokens per running sequence per scheduler step while no request\n"
    "                      waits (default 8; 1 while one does, so it joins at the next pass)\n";

static int serve_parse(srv *s, int argc, char **argv) {
    cli_model_opts_init(&s->mo);
    s->host = "127.0.0.1";
    s->port = 8080;
    s->lim = (srv_limits){4L << 20, 16, 4096, 0, 64, 256, 10, 8};
    for (int i = 1; i < argc; i++) {
        int r = cli_model_opts_parse(&s->mo, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) {
            printf("%s%s", serve_usage, CLI_MODEL_OPTS_HELP);
            return 1;
        }
        if (!v) return cli_fail("serve: unknown option or missing value '%s' (see --help)", f);
        const char **str = !strcmp(f, "--host") ? &s->host : !strcmp(f, "--api-key") ? &s->api_key
                         : !strcmp(f, "--prm") ? &s->prm_path : !strcmp(f, "--prm-protocol") ? &s->prm_protocol
                         : !strcmp(f, "--prm-head") ? &s->prm_head : NULL;
        long *num = !strcmp(f, "--port") ? &s->port : !strcmp(f, "--max-queue") ? &s->lim.max_queue
                  : !strcmp(f, "--max-conns") ? &s->lim.max_conns : !strcmp(f, "--max-body") ? &s->lim.max_body
                  : !strcmp(f, "--max-n") ? &s->lim.max_n : !strcmp(f, "--max-tokens") ? &s->lim.max_tokens
                  : !strcmp(f, "--max-prompt") ? &s->lim.max_prompt : !strcmp(f, "--timeout") ? &s->lim.timeout_s
                  : !strcmp(f, "--chunk") ? &s->lim.chunk : NULL;
        long hi = num == &s->port ? 65535 : num == &s->lim.max_body ? 1L << 30 : num == &s->lim.timeout_s ? 3600
                : num == &s->lim.max_conns ? 4096 : 1L << 24;
        if (str) *str = v;
        else if (!num) return cli_fail("serve: unknown option '%s' (see e2h serve --help)", f);
        else if (cli_parse_int(f, v, num == &s->port ? 0 : 1, hi, num)) return 2;
        i++;
    }
    if (!s->mo.model) return cli_fail("serve: -m MODEL is required");
    if (s->prm_path && s->prm_head) return cli_fail("serve: give --prm or --prm-head, not both");
    if (s->prm_protocol && !s->prm_path) return cli_fail("serve: --prm-protocol needs --prm");
    if (!s->api_key) s->api_key = getenv("E2H_API_KEY");
    if (s->api_key && !*s->api_key) return cli_fail("--api-key: empty key");
    return 0;
}

// Loads the PRM (if any) before the engine exists: a head that reads a policy layer sets the
// feature_layer the engine is created with.
static int serve_load_prm(srv *s) {
    if (!s->prm_path && !s->prm_head) return 0;
    char err[1024] = "";
    e2h_prm_opts po = e2h_prm_opts_default();
    po.protocol = s->prm_head ? "head" : s->prm_protocol;
    po.load.quant = s->mo.quant;
    e2h_status st = e2h_prm_load(s->prm_head ? s->prm_head : s->prm_path, s->m, &po, &s->prm, err, sizeof err);
    if (st) return cli_fail("%s (%s)", err, e2h_status_name(st));
    s->mo.feature_layer = e2h_prm_feature_layer(s->prm);
    return 0;
}

// Loads the model (and PRM); fills what the handlers read.
static int serve_open(srv *s) {
    int rc = cli_open(&s->mo, &s->m, NULL);
    if (rc) return rc;
    if (!e2h_model_tokenizer(s->m)) return cli_fail("%s: the model has no tokenizer", s->mo.model);
    if ((rc = serve_load_prm(s)) || (rc = cli_engine(&s->mo, s->m, &s->e))) return rc;
    e2h_status st;
    if (s->prm && (st = e2h_engine_attach_prm(s->e, s->prm)))
        return cli_fail("attaching the PRM: %s (%s)", e2h_engine_last_error(s->e), e2h_status_name(st));
    s->txt = srv_text_model(s->m);
    s->have_prm = s->prm != NULL;
    e2h_model_info mi;
    e2h_model_get_info(s->m, &mi);
    e2h_kv_stats ks;
    e2h_engine_get_kv_stats(s->e, &ks);
    s->blocks_total = ks.blocks_total;
    s->block_size = ks.block_size > 0 ? ks.block_size : 16;
    s->max_ctx = mi.max_ctx;
    s->vocab = mi.vocab_size;
    if (s->lim.max_prompt <= 0 || s->lim.max_prompt >= s->max_ctx) s->lim.max_prompt = s->max_ctx - 1;
    const char *base = strrchr(s->mo.model, '/');
    snprintf(s->model_name, sizeof s->model_name, "%s", base && base[1] ? base + 1 : s->mo.model);
    s->met.kv = ks;
    return 0;
}

// Waits (up to 30 s) for every request to be answered and released by its connection.
static void serve_drain(srv *s) {
    for (int i = 0; i < 300; i++) {
        pthread_mutex_lock(&s->mu);
        int live = s->n_live;
        pthread_mutex_unlock(&s->mu);
        if (!live) return;
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int serve_run(srv *s, const sigset_t *sigs) {
    int rc = srv_http_start(s);
    if (rc) return rc;
    if (pthread_create(&s->sched, NULL, srv_sched_main, s)) {
        srv_http_stop(s);
        return cli_fail("serve: cannot start the scheduler thread");
    }
    fprintf(stderr, "e2h serve: listening on http://%s:%ld (model %s, %d KV blocks of %d tokens%s%s)\n",
            s->host, s->port, s->model_name, s->blocks_total, s->block_size, s->prm ? ", PRM " : "",
            s->prm ? e2h_prm_protocol(s->prm) : "");
    int sig = 0;
    sigwait(sigs, &sig);
    fprintf(stderr, "e2h serve: signal %d: stopping (queued requests rejected, running ones finish)\n", sig);
    srv_http_quiesce(s);
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cv_sched);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->sched, NULL);
    serve_drain(s);
    srv_http_stop(s);
    e2h_kv_stats ks;
    e2h_engine_get_kv_stats(s->e, &ks);
    fprintf(stderr, "e2h serve: stopped; %lld requests, KV blocks used %d of %d (cached prefixes %d)\n",
            (long long)s->met.requests, ks.blocks_used, ks.blocks_total, ks.blocks_cached);
    return ks.blocks_used ? 1 : 0;
}

int cli_serve(int argc, char **argv) {
    srv s;
    memset(&s, 0, sizeof s);
    int rc = serve_parse(&s, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    // every thread started from here on inherits the mask: the signals reach only sigwait
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN); // a client that hangs up mid-write must not kill the server
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv_sched, NULL);
    pthread_cond_init(&s.cv_done, NULL);
    s.t_start = srv_now();
    rc = serve_open(&s);
    if (!rc) rc = serve_run(&s, &sigs);
    if (s.e) e2h_engine_free(s.e); // detaches the PRM, which must outlive the engine
    e2h_prm_free(s.prm);
    e2h_model_free(s.m);
    pthread_cond_destroy(&s.cv_done);
    pthread_cond_destroy(&s.cv_sched);
    pthread_mutex_destroy(&s.mu);
    return rc;
}
