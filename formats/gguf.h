// formats/gguf.h — GGUF v2/v3 reader: mmaps the file, parses metadata and tensor infos, and
// validates every count, offset and size against the file length before anything reads it.
#ifndef E2H_FORMATS_GGUF_H
#define E2H_FORMATS_GGUF_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    GGUF_T_UINT8 = 0, GGUF_T_INT8 = 1, GGUF_T_UINT16 = 2, GGUF_T_INT16 = 3,
    GGUF_T_UINT32 = 4, GGUF_T_INT32 = 5, GGUF_T_FLOAT32 = 6, GGUF_T_BOOL = 7,
    GGUF_T_STRING = 8, GGUF_T_ARRAY = 9, GGUF_T_UINT64 = 10, GGUF_T_INT64 = 11,
    GGUF_T_FLOAT64 = 12
} gguf_value_type;

typedef struct {
    const char *ptr; // not NUL-terminated; points into the mapping
    uint64_t len;
} gguf_str;

typedef struct {
    gguf_str key;
    int type;            // gguf_value_type
    int arr_type;        // element type when type == GGUF_T_ARRAY
    uint64_t arr_n;      // element count when type == GGUF_T_ARRAY
    const void *data;    // raw value bytes in the mapping (for arrays: first element;
                         // string arrays are length-prefixed and must be walked with
                         // gguf_arr_str)
} gguf_kv;

typedef struct {
    gguf_str name;
    int n_dims;
    int64_t ne[4];       // ne[0] is the fastest-varying (row length), like ggml
    int type;            // e2h_type / ggml type id
    uint64_t offset;     // relative to the data section
    const void *data;    // absolute pointer into the mapping
    uint64_t nbytes;
} gguf_tensor;

typedef struct gguf_file gguf_file;

// Opens and validates `path`. On failure returns NULL and writes a message naming the file
// and the field into err. The caller owns the result; free with gguf_close.
gguf_file *gguf_open(const char *path, char *err, size_t err_len);
void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
int64_t gguf_n_kv(const gguf_file *f);
const gguf_kv *gguf_kv_at(const gguf_file *f, int64_t i);
const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key); // NULL if absent
int64_t gguf_n_tensors(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t i);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

// Typed getters: return 0 on success, -1 if absent or of another type (integers of any
// width convert to the requested one when the value fits).
int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out);
int gguf_get_f32(const gguf_file *f, const char *key, float *out);
int gguf_get_bool(const gguf_file *f, const char *key, int *out);
int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);
// Array element i of a string array (bounds-checked; -1 on error). Cached index: O(1) after
// the first call on that kv.
int gguf_arr_str(const gguf_file *f, const gguf_kv *kv, uint64_t i, gguf_str *out);

#endif
