// formats/safetensors.h — safetensors reader: mmaps one file, or every shard named by a
// model.safetensors.index.json, parses each header and checks every tensor's dtype, shape and
// data_offsets against the file before anything reads it. A corrupt file yields a status and
// a message naming the file and the tensor, never a wild read.
#ifndef E2H_FORMATS_SAFETENSORS_H
#define E2H_FORMATS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../include/e2h.h"

// Element types, numbered like GGML (and so like e2h_type): F32, F16, BF16 only.
enum { ST_TYPE_F32 = 0, ST_TYPE_F16 = 1, ST_TYPE_BF16 = 30 };

typedef struct {
    char name[160];
    int type;         // ST_TYPE_*
    int n_dims;
    int64_t shape[4]; // as stored (row-major: shape[n_dims-1] is the fastest-varying)
    const void *data; // into the file's mapping
    size_t nbytes;
    char file[1024];  // the file it came from (for messages)
} st_tensor;

#define ST_MAX_FILES 64

typedef struct {
    void *addr;
    size_t len;
} st_map;

// The tensors of one or more files. Zero-initialize; st_index_free releases it.
typedef struct {
    st_tensor *t;
    int n, cap;
    st_map maps[ST_MAX_FILES]; // the files' mappings, unmapped by st_index_free unless a
    int n_maps;                // caller takes them over (moves them out and sets n_maps = 0)
} st_index;

// Maps `path` and adds its tensors. On failure the mappings made so far stay in ix.
e2h_status st_index_add_file(st_index *ix, const char *path, char *err, size_t err_len);
// Adds every shard named by the weight_map of index_path (files in dir), each once.
e2h_status st_index_add_shards(st_index *ix, const char *dir, const char *index_path, char *err,
                               size_t err_len);
const st_tensor *st_find(const st_index *ix, const char *name); // NULL if absent
void st_index_free(st_index *ix);

#endif
