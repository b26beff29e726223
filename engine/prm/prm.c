// engine/prm/prm.c — loading a PRM (protocol detection, model, heads), the score readers,
// solution splitting and aggregation.
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../../kernels/ops.h"
#include "../model.h"
#include "../util.h"
#include "prm_internal.h"

static const prm_protocol *const prm_protocols[] = {
    &prm_proto_e2h_paper, &prm_proto_math_shepherd, &prm_proto_qwen_prm, &prm_proto_rlhflow,
    &prm_proto_value_head, &prm_proto_implicit, &prm_proto_head,
};
#define PRM_N_PROTOCOLS ((int)(sizeof prm_protocols / sizeof prm_protocols[0]))
#define PRM_PROTOCOL_LIST "e2h-paper, e2h-paper-orm, e2h-paper-oprm, math-shepherd, qwen-prm, " \
                          "rlhflow, value-head, implicit, head"

e2h_prm_opts e2h_prm_opts_default(void) {
    e2h_prm_opts o;
    memset(&o, 0, sizeof o);
    return o;
}

// Name -> protocol and variant. NULL if unknown.
static const prm_protocol *prm_find(const char *name, int *variant) {
    *variant = 0;
    if (!strcmp(name, "e2h-paper-orm")) { *variant = 1; return &prm_proto_e2h_paper; }
    if (!strcmp(name, "e2h-paper-oprm")) { *variant = 2; return &prm_proto_e2h_paper; }
    for (int i = 0; i < PRM_N_PROTOCOLS; i++)
        if (!strcmp(name, prm_protocols[i]->name)) return prm_protocols[i];
    return NULL;
}

// ---------------------------------------------------------------- readers

static float prm_sigmoid(double x) { return (float)(1.0 / (1.0 + exp(-x))); }

static double prm_dot(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

// A head's input x (head_in) in tools/train_head.py features()' column order: [h (dim) if
// head_hidden_in, extra (1) if head_mean_logprob, hl (dim) if feature_layer].
typedef struct {
    const float *h, *hl; // (dim) final-normed hidden state, feature-layer residual stream
    float extra;         // the step's mean token log-prob
} prm_x;

// w . x for one weight row w (head_in).
static double prm_dot_x(const e2h_prm *p, const float *w, const prm_x *x) {
    double s = 0;
    int c = 0;
    if (p->head_hidden_in) s += prm_dot(w, x->h, p->dim), c += p->dim;
    if (p->head_mean_logprob) s += (double)w[c++] * x->extra;
    if (p->feature_layer) s += prm_dot(w + c, x->hl, p->dim);
    return s;
}

// out[o] = w2[o] . relu(w1 x + b1) + b2[o] (or w2[o] . x + b2[o] for a linear head).
static void prm_head_eval(const e2h_prm *p, const prm_x *x, double *out) {
    double hid[4096], *hb = hid; // (head_hidden)
    double *heap = NULL;
    if (p->w1 && p->head_hidden > 4096) hb = heap = malloc((size_t)p->head_hidden * sizeof *hb);
    if (p->w1 && !hb) { out[0] = out[1] = NAN; return; }
    for (int j = 0; p->w1 && j < p->head_hidden; j++) {
        double s = p->b1[j] + prm_dot_x(p, p->w1 + (size_t)j * p->head_in, x);
        hb[j] = s > 0 ? s : 0;
    }
    for (int o = 0; o < p->head_out; o++) {
        double s = p->b2 ? p->b2[o] : 0;
        if (p->w1) {
            const float *w = p->w2 + (size_t)o * p->head_hidden;
            for (int j = 0; j < p->head_hidden; j++) s += (double)w[j] * hb[j];
        } else {
            s += prm_dot_x(p, p->w2 + (size_t)o * p->head_in, x);
        }
        out[o] = s;
    }
    free(heap);
}

float prm_read_hidden(const e2h_prm *p, const float *h, float mean_lp, const float *hl) {
    double o[2];
    prm_x x = {h, hl, mean_lp};
    switch (p->proto->read) {
    case PRM_READ_MEAN_SIGMOID:
        return prm_sigmoid(prm_dot(p->mean_row, h, p->dim));
    case PRM_READ_PLUS_MINUS:
        return prm_sigmoid(prm_dot(p->pm_rows, h, p->dim) - prm_dot(p->pm_rows + p->dim, h, p->dim));
    case PRM_READ_CLS2:
        prm_head_eval(p, &x, o);
        return prm_sigmoid(o[1] - o[0]); // softmax over 2 classes, P(class 1)
    case PRM_READ_VALUE:
    case PRM_READ_HEAD:
        if (p->feature_layer && !hl) return NAN; // (callers pass the layer row; see mirror.c)
        prm_head_eval(p, &x, o);
        return prm_sigmoid(o[0]);
    case PRM_READ_IMPLICIT:
        break;
    }
    return NAN;
}

// ---------------------------------------------------------------- model-side helpers

void prm_output_row(const e2h_model *m, int32_t id, float *out) {
    const e2h_tensor *t = &m->output;
    size_t row = kern_type_row_size(t->type, t->n_in);
    ops_ref()->dequantize_row(t->type, (const uint8_t *)t->data + (size_t)id * row, out, t->n_in);
}

e2h_status prm_plus_minus(e2h_prm *p, const char *plus, const char *minus, char *err,
                          size_t err_len) {
    int32_t ids[16], n = 0;
    if (!minus) { // the pair "+ -" encoded with BOS; the last two ids
        if (e2h_tokenize(p->tok, plus, strlen(plus), 1, ids, 16, &n) || n < 2) goto bad;
        p->plus_id = ids[n - 2];
        p->minus_id = ids[n - 1];
    } else {
        if (e2h_tokenize(p->tok, plus, strlen(plus), 1, ids, 16, &n) || n < 1) goto bad;
        p->plus_id = ids[n - 1];
        if (e2h_tokenize(p->tok, minus, strlen(minus), 1, ids, 16, &n) || n < 1) goto bad;
        p->minus_id = ids[n - 1];
    }
    p->pm_rows = malloc(2 * (size_t)p->dim * sizeof *p->pm_rows);
    if (!p->pm_rows) return E2H_ERR_NOMEM;
    prm_output_row(p->model, p->plus_id, p->pm_rows);
    prm_output_row(p->model, p->minus_id, p->pm_rows + p->dim);
    return E2H_OK;
bad:
    fmt_errf(err, err_len, "%s: cannot find the \"+\" / \"-\" tokens in the tokenizer", p->proto->name);
    return E2H_ERR_TOKENIZER;
}

e2h_status prm_read_mlp_head(e2h_prm *p, const char *path, const char *w1, const char *b1,
                             const char *w2, const char *b2, int n_out, char *err, size_t err_len) {
    if (!path) path = p->model->path;
    if (p->head_in <= 0) p->head_in = p->dim, p->head_hidden_in = 1; // a model's head: x = h
    e2h_status st;
    if (w1) {
        int64_t sh[2] = {0, 0};
        int nd = 0;
        if (prm_st_shape(path, w1, sh, &nd) || nd != 2 || sh[0] < 1 || sh[0] > (1 << 20)) {
            fmt_errf(err, err_len, "%s: %s head: tensor '%s' is missing or not 2-D (this model "
                     "does not have the protocol's head)", path, p->proto->name, w1);
            return E2H_ERR_UNSUPPORTED;
        }
        p->head_hidden = (int)sh[0];
        if ((st = prm_st_read(path, w1, p->head_hidden, p->head_in, &p->w1, err, err_len)) ||
            (st = prm_st_read(path, b1, p->head_hidden, 0, &p->b1, err, err_len)) ||
            (st = prm_st_read(path, w2, n_out, p->head_hidden, &p->w2, err, err_len)))
            return st;
    } else {
        if (!prm_st_has(path, w2)) {
            fmt_errf(err, err_len, "%s: %s head: tensor '%s' is missing (this model does not "
                     "have the protocol's head)", path, p->proto->name, w2);
            return E2H_ERR_UNSUPPORTED;
        }
        if ((st = prm_st_read(path, w2, n_out, p->head_in, &p->w2, err, err_len))) return st;
    }
    if (b2 && (st = prm_st_read(path, b2, n_out, 0, &p->b2, err, err_len))) return st;
    p->head_out = n_out;
    return E2H_OK;
}

// ---------------------------------------------------------------- head files (PLAN §4)

static const char *md_str(const cJSON *md, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(md, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

// A head file's features (tools/train_head.py FEATURES) -> which inputs x holds, in column
// order [hidden, mean log-prob, feature layer]. NULL metadata: "hidden".
static const struct {
    const char *name;
    int hidden, mean_lp, layer;
} prm_head_features[] = {
    {"hidden", 1, 0, 0}, {"hidden+mean_logprob", 1, 1, 0}, {"layer", 0, 0, 1},
    {"layer+mean_logprob", 0, 1, 1}, {"hidden+mean_logprob+layer", 1, 1, 1},
};

// Sets the head's inputs from metadata 'features' and 'feature_layer' (1..n_layers for the
// kinds that read a layer; absent or "0" for the others).
static e2h_status prm_head_inputs(e2h_prm *p, const char *path, const char *feat, const char *fl,
                                  int n_layers, char *err, size_t err_len) {
    int k = 0, n = (int)(sizeof prm_head_features / sizeof prm_head_features[0]);
    while (feat && k < n && strcmp(feat, prm_head_features[k].name)) k++;
    if (k == n) {
        fmt_errf(err, err_len, "%s: __metadata__ field 'features' must be one of hidden, "
                 "hidden+mean_logprob, layer, layer+mean_logprob, hidden+mean_logprob+layer", path);
        return E2H_ERR_UNSUPPORTED;
    }
    long L = fl ? -1 : 0; // -1: not an integer
    char *end = NULL;
    if (fl) {
        errno = 0;
        long v = strtol(fl, &end, 10);
        if (!errno && end != fl && !*end) L = v;
    }
    int want = prm_head_features[k].layer;
    if (want ? L >= 1 && L <= n_layers : L == 0) {
        p->feature_layer = (int)L;
    } else {
        char need[64];
        if (want) snprintf(need, sizeof need, "a layer in 1..%d (the policy's layers)", n_layers);
        else snprintf(need, sizeof need, "\"0\" or no field (they read no layer)");
        fmt_errf(err, err_len, "%s: __metadata__ field 'feature_layer' is %s%s%s; features \"%s\" need %s",
                 path, fl ? "\"" : "", fl ? fl : "missing", fl ? "\"" : "", prm_head_features[k].name, need);
        return L < 0 || !fl ? E2H_ERR_FORMAT : E2H_ERR_INVALID_ARG;
    }
    p->head_hidden_in = prm_head_features[k].hidden;
    p->head_mean_logprob = prm_head_features[k].mean_lp;
    p->head_in = p->dim * (p->head_hidden_in + (p->feature_layer > 0)) + p->head_mean_logprob;
    return E2H_OK;
}

static e2h_status prm_load_head_file(e2h_prm *p, const char *path, char *err, size_t err_len) {
    char *js = prm_st_metadata(path, err, err_len);
    if (!js) return E2H_ERR_FORMAT;
    cJSON *md = cJSON_Parse(js);
    free(js);
    e2h_status st = E2H_ERR_FORMAT;
    const char *fmt = md_str(md, "format"), *ver = md_str(md, "version"), *kind = md_str(md, "kind");
    const char *dim = md_str(md, "dim"), *mid = md_str(md, "model_id"), *layer = md_str(md, "layer");
    const char *pool = md_str(md, "pooling"), *delim = md_str(md, "step_delimiter");
    const char *feat = md_str(md, "features"), *act = md_str(md, "activation");
    const char *fl = md_str(md, "feature_layer");
    e2h_model_info pi;
    e2h_model_get_info(p->policy, &pi);
    p->dim = pi.dim; // (prm_head_inputs sizes x by it)
    if (!fmt || strcmp(fmt, "e2h-head")) {
        fmt_errf(err, err_len, "%s: __metadata__ field 'format' must be \"e2h-head\"", path);
    } else if (!ver || strcmp(ver, "1")) {
        fmt_errf(err, err_len, "%s: __metadata__ field 'version': only \"1\" is supported", path);
        st = E2H_ERR_UNSUPPORTED;
    } else if (!kind || (strcmp(kind, "linear") && strcmp(kind, "mlp"))) {
        fmt_errf(err, err_len, "%s: __metadata__ field 'kind' must be \"linear\" or \"mlp\"", path);
    } else if (!dim || atoi(dim) != pi.dim) {
        fmt_errf(err, err_len, "%s: __metadata__ field 'dim' is %s but the policy's dim is %d", path,
                 dim ? dim : "missing", pi.dim);
        st = E2H_ERR_SHAPE;
    } else if (!mid || strlen(mid) != 32) {
        fmt_errf(err, err_len, "%s: __metadata__ field 'model_id' must be 32 hex characters", path);
    } else if (strcmp(mid, pi.model_id) && strspn(mid, "0") != 32) {
        // all zeros: a head made without a model id (checked by dim only)
        fmt_errf(err, err_len, "%s: __metadata__ field 'model_id' %s does not match the policy's "
                 "model id %s (the head was trained on another policy)", path, mid, pi.model_id);
        st = E2H_ERR_INVALID_ARG;
    } else if ((layer && strcmp(layer, "final")) || (pool && strcmp(pool, "last")) ||
               (act && strcmp(act, "relu"))) {
        fmt_errf(err, err_len, "%s: __metadata__: only layer \"final\", pooling \"last\", "
                 "activation \"relu\" are supported", path);
        st = E2H_ERR_UNSUPPORTED;
    } else if (delim && strcmp(delim, "\n\n")) {
        fmt_errf(err, err_len, "%s: __metadata__ field 'step_delimiter': only \"\\n\\n\"", path);
        st = E2H_ERR_UNSUPPORTED;
    } else if (!(st = prm_head_inputs(p, path, feat, fl, pi.n_layers, err, err_len))) {
        snprintf(p->head_model_id, sizeof p->head_model_id, "%s", mid);
        if (!strcmp(kind, "linear"))
            st = prm_read_mlp_head(p, path, NULL, NULL, "w", "b", 1, err, err_len);
        else
            st = prm_read_mlp_head(p, path, "w1", "b1", "w2", "b2", 1, err, err_len);
    }
    cJSON_Delete(md);
    return st;
}

// ---------------------------------------------------------------- detection

static int path_is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int has_suffix(const char *p, const char *suf) {
    size_t a = strlen(p), b = strlen(suf);
    return a >= b && !strcmp(p + a - b, suf);
}

// Protocol name from config.json / tensors / names, or NULL (ambiguous).
static const char *prm_detect(const char *path, char *keep, size_t keep_len) {
    if (!path_is_dir(path) && has_suffix(path, ".safetensors")) return "head";
    const char *hint = path;
    char gname[256] = "";
    if (!path_is_dir(path) && has_suffix(path, ".gguf")) {
        if (prm_gguf_protocol(path, keep, keep_len, gname, sizeof gname)) return keep;
        if (gname[0]) hint = gname; // the checkpoint's name, for the name hints below
    }
    char *text = NULL, err[64];
    cJSON *cfg = NULL;
    const char *found = NULL;
    if (path_is_dir(path)) {
        char cp[2048];
        snprintf(cp, sizeof cp, "%s/config.json", path);
        if (fmt_read_file(cp, &text, NULL, err, sizeof err) == E2H_OK) cfg = cJSON_Parse(text);
        const char *arch = NULL;
        const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cfg, "architectures"), 0);
        if (cJSON_IsString(a)) arch = a->valuestring;
        const char *e2hp = md_str(cfg, "e2h_prm_protocol");
        if (e2hp) found = e2hp;
        else if (arch && !strcmp(arch, "Qwen2ForProcessRewardModel")) found = "qwen-prm";
        else if (arch && !strcmp(arch, "Qwen2ForPrmModel")) found = "value-head";
        else if (prm_st_has(path, "v_head.summary.weight")) found = "value-head";
        const char *nop = md_str(cfg, "_name_or_path");
        if (nop) hint = nop;
    }
    if (!found) { // names of the published checkpoints; only one family may match
        static const struct { const char *needle, *proto; } names[] = {
            {"math-shepherd", "math-shepherd"}, {"rlhflow", "rlhflow"}, {"eurusprm", "implicit"},
            {"easy-to-hard", "e2h-paper"}, {"scalablemath", "e2h-paper"}, {"qwen2.5-math-prm", "qwen-prm"},
            {"skywork-o1-open-prm", "value-head"},
        };
        char low[1024];
        size_t i = 0;
        for (; hint[i] && i < sizeof low - 1; i++) low[i] = (char)tolower((unsigned char)hint[i]);
        low[i] = 0;
        int hits = 0;
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
            if (strstr(low, names[k].needle) && (!found || strcmp(found, names[k].proto)))
                found = names[k].proto, hits++;
        if (hits != 1) found = NULL;
    }
    if (found) snprintf(keep, keep_len, "%s", found);
    cJSON_Delete(cfg);
    free(text);
    return found ? keep : NULL;
}

// ---------------------------------------------------------------- load / free

static e2h_status prm_check_lm_head(e2h_prm *p, const e2h_model *m, char *err, size_t err_len) {
    if (m->no_lm_head) {
        fmt_errf(err, err_len, "%s: the model (%s) has no lm_head, but protocol %s reads the "
                 "LM's logits (use qwen-prm / value-head for reward-model classes)", m->path,
                 m->cfg.arch, p->name);
        return E2H_ERR_UNSUPPORTED;
    }
    return E2H_OK;
}

e2h_status e2h_prm_load(const char *path, const e2h_model *policy, const e2h_prm_opts *opts,
                        e2h_prm **out, char *err, size_t err_len) {
    if (!path || !out) return E2H_ERR_INVALID_ARG;
    *out = NULL;
    e2h_prm_opts o = opts ? *opts : e2h_prm_opts_default();
    char detected[32];
    const char *name = o.protocol && *o.protocol ? o.protocol : prm_detect(path, detected, sizeof detected);
    if (!name) {
        fmt_errf(err, err_len, "%s: cannot tell the PRM protocol from its config.json / name; "
                 "pass one (--prm-protocol): " PRM_PROTOCOL_LIST, path);
        return E2H_ERR_INVALID_ARG;
    }
    int variant;
    const prm_protocol *proto = prm_find(name, &variant);
    if (!proto) {
        fmt_errf(err, err_len, "--prm-protocol: unknown protocol '%s' (known: " PRM_PROTOCOL_LIST ")", name);
        return E2H_ERR_INVALID_ARG;
    }
    if (!(o.beta >= 0) || !isfinite(o.beta)) {
        fmt_errf(err, err_len, "PRM beta must be a finite number >= 0");
        return E2H_ERR_INVALID_ARG;
    }
    e2h_prm *p = calloc(1, sizeof *p);
    if (!p) return E2H_ERR_NOMEM;
    p->proto = proto;
    p->variant = variant;
    snprintf(p->name, sizeof p->name, "%s", name);
    p->beta = o.beta > 0 ? o.beta : 0.001f;
    p->tag_id = p->plus_id = p->minus_id = -1;
    e2h_status st = E2H_OK;
    if (!proto->needs_model) {
        if (!policy) {
            fmt_errf(err, err_len, "%s: protocol head needs the policy model (--policy)", path);
            st = E2H_ERR_INVALID_ARG;
        } else {
            p->policy = policy;
            p->tok = e2h_model_tokenizer(policy);
            st = prm_load_head_file(p, path, err, err_len);
            if (!st && !p->tok) {
                fmt_errf(err, err_len, "protocol head: the policy has no tokenizer");
                st = E2H_ERR_TOKENIZER;
            }
        }
        goto done;
    }
    if ((st = e2h_model_load(path, &o.load, &p->model, err, err_len))) goto done;
    p->tok = e2h_model_tokenizer(p->model);
    p->dim = p->model->cfg.dim;
    if (!p->tok) {
        fmt_errf(err, err_len, "%s: the PRM has no tokenizer (tokenizer.json)", path);
        st = E2H_ERR_TOKENIZER;
        goto done;
    }
    if (proto->read == PRM_READ_MEAN_SIGMOID || proto->read == PRM_READ_PLUS_MINUS ||
        proto->read == PRM_READ_IMPLICIT)
        if ((st = prm_check_lm_head(p, p->model, err, err_len))) goto done;
    if (proto->read == PRM_READ_IMPLICIT) {
        if (!o.ref_model) {
            fmt_errf(err, err_len, "protocol implicit needs the reference model (--prm-ref)");
            st = E2H_ERR_INVALID_ARG;
            goto done;
        }
        if ((st = e2h_model_load(o.ref_model, &o.load, &p->ref, err, err_len))) goto done;
        if (p->ref->cfg.vocab_size != p->model->cfg.vocab_size) {
            fmt_errf(err, err_len, "%s: the reference model's vocabulary (%d) differs from the "
                     "PRM's (%d)", o.ref_model, p->ref->cfg.vocab_size, p->model->cfg.vocab_size);
            st = E2H_ERR_SHAPE;
            goto done;
        }
    }
    if (proto->prepare) st = proto->prepare(p, err, err_len);
done:
    if (st) {
        e2h_prm_free(p);
        return st;
    }
    *out = p;
    return E2H_OK;
}

void e2h_prm_free(e2h_prm *p) {
    if (!p) return;
    e2h_model_free(p->model);
    e2h_model_free(p->ref);
    free(p->mean_row);
    free(p->pm_rows);
    free(p->w1);
    free(p->b1);
    free(p->w2);
    free(p->b2);
    free(p);
}

const char *e2h_prm_protocol(const e2h_prm *p) { return p ? p->name : NULL; }
int e2h_prm_feature_layer(const e2h_prm *p) { return p ? p->feature_layer : 0; }
const char *e2h_prm_step_delimiter(const e2h_prm *p) { return p ? p->proto->delimiter : "\n\n"; }

// ---------------------------------------------------------------- text helpers

int e2h_prm_split_solution(const e2h_prm *p, const char *text, size_t len, size_t *starts,
                           size_t *lens, int cap) {
    const char *d = e2h_prm_step_delimiter(p);
    size_t dl = strlen(d), i = 0;
    int n = 0, join = 0;
    while (i <= len) {
        const char *hit = NULL;
        for (size_t j = i; j + dl <= len; j++)
            if (!memcmp(text + j, d, dl)) { hit = text + j; break; }
        size_t end = hit ? (size_t)(hit - text) : len;
        if (join && n > 0 && n - 1 < cap) { // "# Answer" + delimiter + the answer: one step
            lens[n - 1] = end - starts[n - 1];
            join = 0;
        } else if (end > i) {
            if (n < cap) starts[n] = i, lens[n] = end - i;
            n++;
            join = end - i == 8 && !memcmp(text + i, "# Answer", 8);
        }
        if (!hit) break;
        i = end + dl;
    }
    return n;
}

float e2h_prm_aggregate(const float *s, int n, e2h_agg how) {
    if (!s || n <= 0) return NAN;
    double acc = how == E2H_AGG_PROD ? 1.0 : how == E2H_AGG_MIN ? INFINITY : 0.0;
    for (int i = 0; i < n; i++) {
        if (how == E2H_AGG_MIN) acc = s[i] < acc ? s[i] : acc;
        else if (how == E2H_AGG_PROD) acc *= s[i];
        else acc += s[i];
    }
    if (how == E2H_AGG_MEAN) acc /= n;
    if (how == E2H_AGG_LAST) acc = s[n - 1];
    return (float)acc;
}

// The policy's prompt for a problem (head protocol): ChatML with the template's default
// system turn when the policy has a ChatML template, else the problem text.
e2h_status prm_head_prompt(const e2h_model *policy, const char *problem, prm_str *out) {
    const char *sys = e2h_model_chat_system(policy);
    const e2h_tokenizer *t = e2h_model_tokenizer(policy);
    if (t && e2h_tokenizer_find(t, "<|im_start|>", 12) >= 0) {
        if (sys) {
            ps_adds(out, "<|im_start|>system\n");
            ps_adds(out, sys);
            ps_adds(out, "<|im_end|>\n");
        }
        ps_adds(out, "<|im_start|>user\n");
        ps_adds(out, problem);
        ps_adds(out, "<|im_end|>\n<|im_start|>assistant\n");
    } else {
        ps_adds(out, problem);
    }
    return out->oom ? E2H_ERR_NOMEM : E2H_OK;
}
