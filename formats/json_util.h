// formats/json_util.h — typed, range-checked reads of fields of a cJSON object, with an error
// message that names the file and the field. Used by the config.json reader; any reader of a
// small JSON metadata object can use it.
#ifndef E2H_FORMATS_JSON_UTIL_H
#define E2H_FORMATS_JSON_UTIL_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

// Where messages go: "<file>: ..." into err; failed is set on the first error.
typedef struct {
    const char *file;
    char *err;
    size_t err_len;
    int failed;
} json_ctx;

// The one place a JSON number becomes an integer: 1 if v is a finite number with no fraction
// in [lo, hi] (*out set), else 0. Converting an out-of-range double is undefined behaviour
// (and wraps on x86-64), so every integer, offset or size read from JSON goes through here.
// lo and hi must lie within +-2^53, where doubles hold every integer exactly.
int json_num_to_i64(const cJSON *v, int64_t lo, int64_t hi, int64_t *out);
#define JSON_MAX_EXACT_INT 9007199254740992LL // 2^53

// Each returns 0 (value or default stored in *out) or -1 (message written, c->failed set).
// An absent or null field takes the default, unless `required`.
// An integer in [0, 1e9].
int json_get_int(json_ctx *c, const cJSON *obj, const char *key, int required, int def, int *out);
// A finite number, converted to float.
int json_get_float(json_ctx *c, const cJSON *obj, const char *key, float def, float *out);
// true or false.
int json_get_bool(json_ctx *c, const cJSON *obj, const char *key, int def, int *out);

#endif
