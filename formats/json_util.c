// formats/json_util.c — see json_util.h.
#include "json_util.h"

#include <math.h>

#include "io.h"

int json_get_int(json_ctx *c, const cJSON *obj, const char *key, int required, int def, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) {
        if (required) {
            fmt_errf(c->err, c->err_len, "%s: missing required field '%s'", c->file, key);
            c->failed = 1;
            return -1;
        }
        *out = def;
        return 0;
    }
    int64_t x;
    if (!json_num_to_i64(v, 0, 1000000000, &x)) {
        fmt_errf(c->err, c->err_len, "%s: field '%s' must be a non-negative integer", c->file, key);
        c->failed = 1;
        return -1;
    }
    *out = (int)x;
    return 0;
}

int json_num_to_i64(const cJSON *v, int64_t lo, int64_t hi, int64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    // compare as doubles first: only a value known to be in range is converted
    if (!isfinite(d) || d != floor(d) || d < (double)lo || d > (double)hi) return 0;
    *out = (int64_t)d;
    return 1;
}

int json_get_float(json_ctx *c, const cJSON *obj, const char *key, float def, float *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) { *out = def; return 0; }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
        fmt_errf(c->err, c->err_len, "%s: field '%s' must be a number", c->file, key);
        c->failed = 1;
        return -1;
    }
    *out = (float)v->valuedouble;
    return 0;
}

int json_get_bool(json_ctx *c, const cJSON *obj, const char *key, int def, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) { *out = def; return 0; }
    if (!cJSON_IsBool(v)) {
        fmt_errf(c->err, c->err_len, "%s: field '%s' must be true or false", c->file, key);
        c->failed = 1;
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}
