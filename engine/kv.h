// engine/kv.h — the paged KV block pool with reference counts, a chained-hash prefix index
// (XXH3-128 over parent hash, the block's token ids, model identity) and LRU eviction of
// unreferenced cached blocks. Allocated once up to a memory budget; no allocation per token.
//
// Storage: for each layer, K and V arrays of n_blocks blocks laid out [block][kv_head] and
// within that V as [slot][head_dim], K in transposed chunks of slots (see e2h_kv_layer_view
// and kern_kv_k_index in kernels/types.h). A block id names
// the same block in every layer, so one block table per sequence serves all layers.
#ifndef E2H_ENGINE_KV_H
#define E2H_ENGINE_KV_H

#include <stddef.h>
#include <stdint.h>

#include "../kernels/ops.h"

typedef struct {
    int n_layers;
    int n_kv_heads;
    int head_dim;
    int block_size;      // token slots per block (16 by default)
    int kv_type;         // E2H_TYPE_F32 or E2H_TYPE_F16
    size_t mem_bytes;    // budget for K+V of all layers; n_blocks = mem_bytes / bytes_per_block
    int32_t max_blocks;  // if > 0, caps n_blocks (tests use tiny pools)
    uint64_t model_id[2];// identity of the model (hash of config + weights' header) for the prefix index
} kv_config;

typedef struct kv_pool kv_pool;

// One sequence's view of the cache: block table and the tokens whose K/V are stored.
// Owned by its creator; contents managed by the kv_seq_* functions.
typedef struct {
    int32_t *blocks;     // block ids, blocks[i] covers positions [i*bs, (i+1)*bs)
    int32_t n_blocks;
    int32_t cap_blocks;
    int32_t *tokens;     // token ids at positions [0, n_tokens)
    int32_t n_tokens;    // positions whose K/V are valid in the cache
    int32_t cap_tokens;
    uint64_t *hashes;    // (n_blocks * 2) chained hash of each *full* block (for the index)
} kv_seq;

// Allocates the pool (one allocation for all K/V). err names the failing field.
kv_pool *kv_pool_init(const kv_config *cfg, char *err, size_t err_len);
void kv_pool_free(kv_pool *p);

const kv_config *kv_pool_config(const kv_pool *p);
// Caps the blocks the pool hands out (referenced + cached) at limit, so one --kv-mem budget can
// be split between two pools (a policy's and its PRM's); the allocation's remainder is never
// touched. The getters below then count only limit blocks. Cached blocks beyond the limit are
// evicted (least recently used first). Returns 0, or -1 (nothing changed) if limit is below 1,
// above the allocation, or below the blocks sequences reference now.
int kv_pool_set_limit(kv_pool *p, int32_t limit);
int32_t kv_pool_n_blocks(const kv_pool *p);
int32_t kv_pool_n_free(const kv_pool *p);      // blocks neither referenced nor cached
int32_t kv_pool_n_cached(const kv_pool *p);    // unreferenced but kept in the prefix index
int32_t kv_pool_refcount(const kv_pool *p, int32_t block);
int32_t kv_pool_n_used(const kv_pool *p);      // blocks referenced by at least one sequence
// Blocks a reservation can still obtain: free ones plus evictable cached ones.
int32_t kv_pool_n_available(const kv_pool *p);
size_t kv_pool_block_bytes(const kv_pool *p);  // K+V bytes of one block over all layers
e2h_kv_layer_view kv_pool_layer_view(const kv_pool *p, int layer);
// Checks the pool's internal invariants (each block in exactly one state, LRU and free lists
// consistent, every registered block found by its hash). 0 if sound; else -1 and err says
// what is wrong. For tests; O(n_blocks).
int kv_pool_validate(const kv_pool *p, char *err, size_t err_len);
// The K piece of (layer, block, kv_head): block_size * head_dim elements, element (slot, d)
// at kern_kv_k_index(block_size, head_dim, slot, d). The V row of (layer, block, kv_head,
// slot): head_dim elements. For writing new entries.
void *kv_pool_k_piece(kv_pool *p, int layer, int32_t block, int kv_head);
void *kv_pool_v_ptr(kv_pool *p, int layer, int32_t block, int kv_head, int slot);

// Sequence lifecycle. All return 0 on success, -1 on exhaustion/invalid argument (the pool
// is unchanged then, and no other sequence is affected).
void kv_seq_init(kv_seq *s);
// Reserves array capacity for cap_tokens positions up front (so later calls do not realloc).
// Returns 0, or -1 on allocation failure (the sequence stays valid and empty).
int kv_seq_init_capacity(const kv_pool *p, kv_seq *s, int32_t cap_tokens);
// New blocks kv_seq_reserve(p, s, n_new) would take from the pool (COW copy included), so a
// batch can check all its sequences fit before reserving any.
int32_t kv_seq_blocks_needed(const kv_pool *p, const kv_seq *s, int32_t n_new);
// Reuses cached full blocks matching a prefix of tokens[0..n) from the prefix index (only
// for an empty sequence). Returns the number of tokens whose K/V were reused (a multiple of
// block_size, and at most n - 1 so the last token is always computed for its logits).
int32_t kv_seq_match_prefix(kv_pool *p, kv_seq *s, const int32_t *tokens, int32_t n);
// Makes room for n_new more positions: allocates blocks (evicting LRU cached blocks if
// needed) and copies a shared partially-filled last block before it is written (COW).
int kv_seq_reserve(kv_pool *p, kv_seq *s, int32_t n_new);
// Records that positions [n_tokens, n_tokens + n) now hold K/V of tokens[0..n) and
// registers newly completed blocks in the prefix index.
int kv_seq_commit(kv_pool *p, kv_seq *s, const int32_t *tokens, int32_t n);
// dst (must be empty) shares every block of src covering [0, src->n_tokens) (reserved but
// unwritten blocks are not shared); refcounts are incremented.
int kv_seq_fork(kv_pool *p, const kv_seq *src, kv_seq *dst);
// Drops positions [n, n_tokens); releases blocks no longer needed. A kept last block that
// becomes partial is copied (if shared) or dropped from the prefix index (if not) by the next
// kv_seq_reserve, so cached and shared contents are never overwritten.
int kv_seq_truncate(kv_pool *p, kv_seq *s, int32_t n);
// Releases all blocks and frees the sequence's arrays.
void kv_seq_release(kv_pool *p, kv_seq *s);

#endif
