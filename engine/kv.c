// engine/kv.c — the paged KV block pool (see kv.h).
//
// Every block is in exactly one of three states:
//   referenced  refcount > 0 (held by one or more sequences' block tables)
//   cached      refcount == 0, full, registered in the prefix index, linked in the LRU list
//   free        refcount == 0, not in the index, on the free stack
// A block registered in the index never changes its contents while registered: writers
// either copy it (shared) or unregister it first (sole owner after a truncate).
#include "kv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define KV_NIL (-1)

// One slot of the open-addressing prefix index (linear probing, backward-shift deletion,
// so no tombstones accumulate).
typedef struct {
    uint64_t h0, h1;
    int32_t block; // KV_NIL when empty
} kv_index_slot;

struct kv_pool {
    kv_config cfg;
    int32_t n_blocks;
    size_t elem_size;        // bytes per K/V element
    size_t block_layer_bytes;// bytes of K (or V) of one block in one layer
    uint8_t *data;           // [layer][k|v][block][kv_head] pieces (kernels/types.h)

    int32_t *refcount;       // (n_blocks)
    uint8_t *hashed;         // (n_blocks) 1 when registered in the index
    uint64_t *block_hash;    // (n_blocks * 2)
    int32_t *lru_prev, *lru_next; // (n_blocks) links of the cached list
    int32_t lru_head, lru_tail;   // head = least recently released
    int32_t n_cached;
    int32_t *free_stack;     // (n_blocks)
    int32_t n_free;
    int32_t limit;           // blocks that may be referenced or cached at once (<= n_blocks)

    kv_index_slot *index;    // (index_cap), index_cap a power of two >= 2 * n_blocks
    uint64_t index_mask;
    uint8_t *hash_buf;       // parent hash ‖ block tokens ‖ model id, hashed in one call
};

// ---------------------------------------------------------------- init / free

static int kv_check_config(const kv_config *c, char *err, size_t err_len) {
    const char *field = NULL;
    if (c->n_layers <= 0 || c->n_layers > 4096) field = "n_layers";
    else if (c->n_kv_heads <= 0 || c->n_kv_heads > 4096) field = "n_kv_heads";
    else if (c->head_dim <= 0 || c->head_dim > 65536) field = "head_dim";
    else if (c->block_size < 0 || c->block_size > 65536) field = "block_size";
    else if (c->kv_type != E2H_TYPE_F32 && c->kv_type != E2H_TYPE_F16) field = "kv_type";
    else if (c->max_blocks < 0) field = "max_blocks";
    if (field) {
        snprintf(err, err_len, "kv pool: invalid config field %s", field);
        return -1;
    }
    return 0;
}

kv_pool *kv_pool_init(const kv_config *cfg, char *err, size_t err_len) {
    if (!cfg) {
        snprintf(err, err_len, "kv pool: config is NULL");
        return NULL;
    }
    if (kv_check_config(cfg, err, err_len)) return NULL;
    kv_pool *p = calloc(1, sizeof *p);
    if (!p) goto nomem;
    p->cfg = *cfg;
    if (p->cfg.block_size == 0) p->cfg.block_size = 16;
    p->elem_size = cfg->kv_type == E2H_TYPE_F32 ? 4 : 2;
    p->block_layer_bytes = (size_t)cfg->n_kv_heads * (size_t)p->cfg.block_size *
                           (size_t)cfg->head_dim * p->elem_size;
    size_t per_block = 2 * (size_t)cfg->n_layers * p->block_layer_bytes;
    size_t nb = cfg->mem_bytes / per_block;
    if (cfg->max_blocks > 0 && nb > (size_t)cfg->max_blocks) nb = (size_t)cfg->max_blocks;
    if (nb > (size_t)INT32_MAX / 4) nb = (size_t)INT32_MAX / 4;
    if (nb == 0) {
        snprintf(err, err_len, "kv pool: mem_bytes %zu is below one block (%zu bytes)",
                 cfg->mem_bytes, per_block);
        free(p);
        return NULL;
    }
    p->n_blocks = (int32_t)nb;

    size_t data_bytes = (per_block * nb + 63) & ~(size_t)63;
    // Not util_alloc_large: on huge pages SmolLM2 pp512 (1 thread) measured 15% slower (1.3k
    // vs 1.5-1.7k tok/s); cause not analysed (L2 set conflicts of a contiguous pool?).
    p->data = aligned_alloc(64, data_bytes);
    p->refcount = calloc(nb, sizeof *p->refcount);
    p->hashed = calloc(nb, 1);
    p->block_hash = calloc(nb * 2, sizeof *p->block_hash);
    p->lru_prev = malloc(nb * sizeof *p->lru_prev);
    p->lru_next = malloc(nb * sizeof *p->lru_next);
    p->free_stack = malloc(nb * sizeof *p->free_stack);
    size_t cap = 16;
    while (cap < 2 * nb) cap *= 2;
    p->index = malloc(cap * sizeof *p->index);
    p->index_mask = cap - 1;
    p->hash_buf = malloc(32 + (size_t)p->cfg.block_size * sizeof(int32_t));
    if (!p->data || !p->refcount || !p->hashed || !p->block_hash || !p->lru_prev ||
        !p->lru_next || !p->free_stack || !p->index || !p->hash_buf) {
        kv_pool_free(p);
        goto nomem;
    }
    for (size_t i = 0; i < cap; i++) p->index[i].block = KV_NIL;
    // Pushed in reverse so block 0 is handed out first (predictable in tests).
    for (int32_t i = 0; i < p->n_blocks; i++) p->free_stack[i] = p->n_blocks - 1 - i;
    p->n_free = p->n_blocks;
    p->limit = p->n_blocks;
    p->lru_head = p->lru_tail = KV_NIL;
    return p;
nomem:
    snprintf(err, err_len, "kv pool: out of memory allocating the pool (mem_bytes %zu)",
             cfg->mem_bytes);
    return NULL;
}

void kv_pool_free(kv_pool *p) {
    if (!p) return;
    free(p->data);
    free(p->refcount);
    free(p->hashed);
    free(p->block_hash);
    free(p->lru_prev);
    free(p->lru_next);
    free(p->free_stack);
    free(p->index);
    free(p->hash_buf);
    free(p);
}

// ---------------------------------------------------------------- getters

const kv_config *kv_pool_config(const kv_pool *p) { return &p->cfg; }
int32_t kv_pool_n_blocks(const kv_pool *p) { return p->limit; }
// free blocks within the limit
int32_t kv_pool_n_free(const kv_pool *p) { return p->n_free - (p->n_blocks - p->limit); }
int32_t kv_pool_n_cached(const kv_pool *p) { return p->n_cached; }
int32_t kv_pool_n_used(const kv_pool *p) { return p->n_blocks - p->n_free - p->n_cached; }
int32_t kv_pool_n_available(const kv_pool *p) { return kv_pool_n_free(p) + p->n_cached; }

static void kv_lru_unlink(kv_pool *p, int32_t b);
static void kv_index_remove(kv_pool *p, int32_t block);

int kv_pool_set_limit(kv_pool *p, int32_t limit) {
    if (limit < 1 || limit > p->n_blocks || kv_pool_n_used(p) > limit) return -1;
    // referenced + cached blocks must fit: evict the least recently used cached ones
    while (p->n_blocks - p->n_free > limit && p->lru_head != KV_NIL) {
        int32_t b = p->lru_head;
        kv_lru_unlink(p, b);
        kv_index_remove(p, b);
        p->free_stack[p->n_free++] = b;
    }
    p->limit = limit;
    return 0;
}
size_t kv_pool_block_bytes(const kv_pool *p) {
    return 2 * (size_t)p->cfg.n_layers * p->block_layer_bytes;
}

int32_t kv_pool_refcount(const kv_pool *p, int32_t block) {
    if (block < 0 || block >= p->n_blocks) return -1;
    return p->refcount[block];
}

static uint8_t *kv_layer_k(const kv_pool *p, int layer) {
    return p->data + (size_t)layer * 2 * (size_t)p->n_blocks * p->block_layer_bytes;
}

e2h_kv_layer_view kv_pool_layer_view(const kv_pool *p, int layer) {
    e2h_kv_layer_view v;
    uint8_t *k = kv_layer_k(p, layer);
    v.k = k;
    v.v = k + (size_t)p->n_blocks * p->block_layer_bytes;
    v.kv_type = p->cfg.kv_type;
    v.block_size = p->cfg.block_size;
    v.n_kv_heads = p->cfg.n_kv_heads;
    v.head_dim = p->cfg.head_dim;
    return v;
}

static size_t kv_row_offset(const kv_pool *p, int32_t block, int kv_head, int slot) {
    return (size_t)block * p->block_layer_bytes +
           ((size_t)kv_head * (size_t)p->cfg.block_size + (size_t)slot) *
               (size_t)p->cfg.head_dim * p->elem_size;
}

void *kv_pool_k_piece(kv_pool *p, int layer, int32_t block, int kv_head) {
    return kv_layer_k(p, layer) + kv_row_offset(p, block, kv_head, 0);
}

void *kv_pool_v_ptr(kv_pool *p, int layer, int32_t block, int kv_head, int slot) {
    return kv_layer_k(p, layer) + (size_t)p->n_blocks * p->block_layer_bytes +
           kv_row_offset(p, block, kv_head, slot);
}

// ---------------------------------------------------------------- prefix index

static uint64_t kv_index_find_slot(const kv_pool *p, uint64_t h0, uint64_t h1) {
    uint64_t i = h0 & p->index_mask;
    while (p->index[i].block != KV_NIL && (p->index[i].h0 != h0 || p->index[i].h1 != h1))
        i = (i + 1) & p->index_mask;
    return i;
}

static int32_t kv_index_lookup(const kv_pool *p, const uint64_t h[2]) {
    return p->index[kv_index_find_slot(p, h[0], h[1])].block;
}

// The index holds at most n_blocks entries in >= 2 * n_blocks slots, so probing ends.
static void kv_index_insert(kv_pool *p, int32_t block, const uint64_t h[2]) {
    uint64_t i = kv_index_find_slot(p, h[0], h[1]);
    p->index[i].h0 = h[0];
    p->index[i].h1 = h[1];
    p->index[i].block = block;
    p->hashed[block] = 1;
    p->block_hash[2 * block] = h[0];
    p->block_hash[2 * block + 1] = h[1];
}

// Backward-shift deletion: moves later entries of the probe run into the hole so lookups
// never stop early at it.
static void kv_index_remove(kv_pool *p, int32_t block) {
    uint64_t mask = p->index_mask;
    uint64_t i = kv_index_find_slot(p, p->block_hash[2 * block], p->block_hash[2 * block + 1]);
    p->hashed[block] = 0;
    if (p->index[i].block != block) return; // not found (cannot happen if hashed was set)
    p->index[i].block = KV_NIL;
    uint64_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (p->index[j].block == KV_NIL) return;
        uint64_t home = p->index[j].h0 & mask;
        // Entry j may fill hole i unless its home lies cyclically in (i, j].
        int in_between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_between) {
            p->index[i] = p->index[j];
            p->index[j].block = KV_NIL;
            i = j;
        }
    }
}

// Chained hash of one full block: XXH3-128 over parent hash ‖ token ids ‖ model id.
static void kv_block_hash(kv_pool *p, const uint64_t *parent, const int32_t *tokens,
                          uint64_t out[2]) {
    size_t bs = (size_t)p->cfg.block_size;
    uint64_t zero[2] = {0, 0};
    memcpy(p->hash_buf, parent ? parent : zero, 16);
    memcpy(p->hash_buf + 16, tokens, bs * sizeof(int32_t));
    memcpy(p->hash_buf + 16 + bs * sizeof(int32_t), p->cfg.model_id, 16);
    XXH128_hash_t h = XXH3_128bits(p->hash_buf, 32 + bs * sizeof(int32_t));
    out[0] = h.low64;
    out[1] = h.high64;
}

// ---------------------------------------------------------------- block states

static void kv_lru_unlink(kv_pool *p, int32_t b) {
    int32_t pr = p->lru_prev[b], nx = p->lru_next[b];
    if (pr != KV_NIL) p->lru_next[pr] = nx; else p->lru_head = nx;
    if (nx != KV_NIL) p->lru_prev[nx] = pr; else p->lru_tail = pr;
    p->n_cached--;
}

static void kv_lru_push_tail(kv_pool *p, int32_t b) {
    p->lru_prev[b] = p->lru_tail;
    p->lru_next[b] = KV_NIL;
    if (p->lru_tail != KV_NIL) p->lru_next[p->lru_tail] = b; else p->lru_head = b;
    p->lru_tail = b;
    p->n_cached++;
}

// Takes a block for exclusive use (refcount 1): a free one, else the least recently used
// cached one (dropping it from the index). KV_NIL when neither exists.
static int32_t kv_block_alloc(kv_pool *p) {
    int32_t b;
    if (p->n_free > 0 && p->n_blocks - p->n_free < p->limit) {
        b = p->free_stack[--p->n_free];
    } else if (p->lru_head != KV_NIL) {
        b = p->lru_head;
        kv_lru_unlink(p, b);
        kv_index_remove(p, b);
    } else {
        return KV_NIL;
    }
    p->refcount[b] = 1;
    return b;
}

static void kv_block_ref(kv_pool *p, int32_t b) {
    if (p->refcount[b] == 0 && p->hashed[b]) kv_lru_unlink(p, b);
    p->refcount[b]++;
}

static void kv_block_unref(kv_pool *p, int32_t b) {
    if (--p->refcount[b] > 0) return;
    if (p->hashed[b]) kv_lru_push_tail(p, b);
    else p->free_stack[p->n_free++] = b;
}

// Copies block src's K and V in every layer into dst.
static void kv_block_copy(kv_pool *p, int32_t dst, int32_t src) {
    for (int l = 0; l < p->cfg.n_layers; l++) {
        uint8_t *k = kv_layer_k(p, l);
        uint8_t *v = k + (size_t)p->n_blocks * p->block_layer_bytes;
        memcpy(k + (size_t)dst * p->block_layer_bytes, k + (size_t)src * p->block_layer_bytes,
               p->block_layer_bytes);
        memcpy(v + (size_t)dst * p->block_layer_bytes, v + (size_t)src * p->block_layer_bytes,
               p->block_layer_bytes);
    }
}

// ---------------------------------------------------------------- sequence arrays

void kv_seq_init(kv_seq *s) { memset(s, 0, sizeof *s); }

static int kv_seq_grow_tokens(kv_seq *s, int32_t need) {
    if (need <= s->cap_tokens) return 0;
    int64_t cap = s->cap_tokens ? s->cap_tokens : 64;
    while (cap < need) cap *= 2;
    if (cap > INT32_MAX) cap = INT32_MAX;
    int32_t *t = realloc(s->tokens, (size_t)cap * sizeof *t);
    if (!t) return -1;
    s->tokens = t;
    s->cap_tokens = (int32_t)cap;
    return 0;
}

static int kv_seq_grow_blocks(kv_seq *s, int32_t need) {
    if (need <= s->cap_blocks) return 0;
    int64_t cap = s->cap_blocks ? s->cap_blocks : 8;
    while (cap < need) cap *= 2;
    if (cap > INT32_MAX / 2) cap = INT32_MAX / 2;
    int32_t *b = realloc(s->blocks, (size_t)cap * sizeof *b);
    if (!b) return -1;
    s->blocks = b;
    uint64_t *h = realloc(s->hashes, (size_t)cap * 2 * sizeof *h);
    if (!h) return -1; // blocks grew but cap_blocks did not: still consistent
    s->hashes = h;
    s->cap_blocks = (int32_t)cap;
    return 0;
}

int kv_seq_init_capacity(const kv_pool *p, kv_seq *s, int32_t cap_tokens) {
    kv_seq_init(s);
    if (cap_tokens <= 0) return 0;
    int32_t bs = p->cfg.block_size;
    if (kv_seq_grow_tokens(s, cap_tokens) ||
        kv_seq_grow_blocks(s, (int32_t)(((int64_t)cap_tokens + bs - 1) / bs))) {
        free(s->tokens);
        free(s->blocks);
        free(s->hashes);
        kv_seq_init(s);
        return -1;
    }
    return 0;
}

// ---------------------------------------------------------------- sequence operations

int32_t kv_seq_match_prefix(kv_pool *p, kv_seq *s, const int32_t *tokens, int32_t n) {
    if (s->n_tokens != 0 || s->n_blocks != 0 || n <= 1 || !tokens) return 0;
    int32_t bs = p->cfg.block_size;
    int32_t max_blocks = (n - 1) / bs; // leave the last token to be computed
    if (kv_seq_grow_blocks(s, max_blocks) || kv_seq_grow_tokens(s, max_blocks * bs)) return 0;
    int32_t m = 0;
    while (m < max_blocks) {
        uint64_t h[2];
        kv_block_hash(p, m ? &s->hashes[2 * (m - 1)] : NULL, tokens + (size_t)m * bs, h);
        int32_t b = kv_index_lookup(p, h);
        if (b == KV_NIL) break;
        kv_block_ref(p, b);
        s->blocks[m] = b;
        s->hashes[2 * m] = h[0];
        s->hashes[2 * m + 1] = h[1];
        m++;
    }
    s->n_blocks = m;
    s->n_tokens = m * bs;
    if (m) memcpy(s->tokens, tokens, (size_t)m * bs * sizeof *tokens);
    return s->n_tokens;
}

// The block that the next write (position n_tokens) goes into needs a private copy (it is
// shared) or must leave the index (sole owner of a registered block, after a truncate).
static int kv_seq_next_block_shared(const kv_pool *p, const kv_seq *s) {
    int32_t i = s->n_tokens / p->cfg.block_size;
    return i < s->n_blocks && p->refcount[s->blocks[i]] > 1;
}

int32_t kv_seq_blocks_needed(const kv_pool *p, const kv_seq *s, int32_t n_new) {
    if (n_new <= 0) return 0;
    int32_t bs = p->cfg.block_size;
    int64_t need_blocks = ((int64_t)s->n_tokens + n_new + bs - 1) / bs;
    int64_t extra = need_blocks > s->n_blocks ? need_blocks - s->n_blocks : 0;
    extra += kv_seq_next_block_shared(p, s);
    return extra > INT32_MAX ? INT32_MAX : (int32_t)extra;
}

int kv_seq_reserve(kv_pool *p, kv_seq *s, int32_t n_new) {
    if (n_new < 0) return -1;
    if (n_new == 0) return 0;
    int32_t bs = p->cfg.block_size;
    int64_t total = (int64_t)s->n_tokens + n_new;
    if (total > INT32_MAX - bs) return -1;
    int32_t need_blocks = (int32_t)((total + bs - 1) / bs);
    // Check everything that can fail before changing any state.
    if (kv_seq_blocks_needed(p, s, n_new) > kv_pool_n_available(p)) return -1;
    if (kv_seq_grow_blocks(s, need_blocks) || kv_seq_grow_tokens(s, (int32_t)total)) return -1;

    int32_t i = s->n_tokens / bs;
    if (i < s->n_blocks) {
        int32_t b = s->blocks[i];
        if (p->refcount[b] > 1) { // copy on write
            int32_t c = kv_block_alloc(p);
            kv_block_copy(p, c, b);
            kv_block_unref(p, b);
            s->blocks[i] = c;
        } else if (p->hashed[b]) { // sole owner: the cached contents are about to change
            kv_index_remove(p, b);
        }
    }
    while (s->n_blocks < need_blocks) s->blocks[s->n_blocks++] = kv_block_alloc(p);
    return 0;
}

int kv_seq_commit(kv_pool *p, kv_seq *s, const int32_t *tokens, int32_t n) {
    if (n < 0 || (n > 0 && !tokens)) return -1;
    int32_t bs = p->cfg.block_size;
    int64_t end = (int64_t)s->n_tokens + n;
    if (end > (int64_t)s->n_blocks * bs || end > s->cap_tokens) return -1;
    if (n == 0) return 0;
    // Writes must have gone to a private, unregistered block (kv_seq_reserve ensures it).
    int32_t first = s->blocks[s->n_tokens / bs];
    if (p->refcount[first] != 1 || p->hashed[first]) return -1;

    memcpy(s->tokens + s->n_tokens, tokens, (size_t)n * sizeof *tokens);
    int32_t done_before = s->n_tokens / bs;
    s->n_tokens = (int32_t)end;
    for (int32_t i = done_before; i < s->n_tokens / bs; i++) {
        uint64_t h[2];
        kv_block_hash(p, i ? &s->hashes[2 * (i - 1)] : NULL, s->tokens + (size_t)i * bs, h);
        s->hashes[2 * i] = h[0];
        s->hashes[2 * i + 1] = h[1];
        int32_t b = s->blocks[i];
        // An identical block computed elsewhere may already be registered; keep that one.
        if (!p->hashed[b] && kv_index_lookup(p, h) == KV_NIL) kv_index_insert(p, b, h);
    }
    return 0;
}

int kv_seq_fork(kv_pool *p, const kv_seq *src, kv_seq *dst) {
    if (src == dst || dst->n_blocks != 0 || dst->n_tokens != 0) return -1;
    int32_t bs = p->cfg.block_size;
    int32_t nb = (src->n_tokens + bs - 1) / bs;
    if (kv_seq_grow_blocks(dst, nb) || kv_seq_grow_tokens(dst, src->n_tokens)) return -1;
    for (int32_t i = 0; i < nb; i++) {
        dst->blocks[i] = src->blocks[i];
        kv_block_ref(p, src->blocks[i]);
    }
    if (nb) memcpy(dst->hashes, src->hashes, (size_t)nb * 2 * sizeof *dst->hashes);
    if (src->n_tokens)
        memcpy(dst->tokens, src->tokens, (size_t)src->n_tokens * sizeof *dst->tokens);
    dst->n_blocks = nb;
    dst->n_tokens = src->n_tokens;
    return 0;
}

// Unreferences blocks [keep, n_blocks) last first, so the LRU list evicts the deepest
// blocks of a chain before its root (a missing root makes the whole chain unreachable).
static void kv_seq_drop_blocks(kv_pool *p, kv_seq *s, int32_t keep) {
    while (s->n_blocks > keep) kv_block_unref(p, s->blocks[--s->n_blocks]);
}

int kv_seq_truncate(kv_pool *p, kv_seq *s, int32_t n) {
    if (n < 0 || n > s->n_tokens) return -1;
    int32_t bs = p->cfg.block_size;
    kv_seq_drop_blocks(p, s, (n + bs - 1) / bs);
    s->n_tokens = n;
    return 0;
}

void kv_seq_release(kv_pool *p, kv_seq *s) {
    kv_seq_drop_blocks(p, s, 0);
    free(s->blocks);
    free(s->tokens);
    free(s->hashes);
    kv_seq_init(s);
}

// ---------------------------------------------------------------- self-check (tests)

int kv_pool_validate(const kv_pool *p, char *err, size_t err_len) {
    int32_t n = p->n_blocks, n_lru = 0, n_index = 0, n_hashed = 0;
    uint8_t *seen = calloc((size_t)n, 1); // 1: on the free stack, 2: in the LRU list
    if (!seen) {
        snprintf(err, err_len, "kv validate: out of memory");
        return -1;
    }
    int bad = 0;
#define KV_FAIL(...) do { snprintf(err, err_len, __VA_ARGS__); bad = 1; goto done; } while (0)
    if (p->n_free < 0 || p->n_free > n) KV_FAIL("n_free %d out of range", p->n_free);
    for (int32_t i = 0; i < p->n_free; i++) {
        int32_t b = p->free_stack[i];
        if (b < 0 || b >= n || seen[b]) KV_FAIL("free stack entry %d: bad or repeated block %d", i, b);
        if (p->refcount[b] != 0 || p->hashed[b]) KV_FAIL("free block %d is referenced or hashed", b);
        seen[b] = 1;
    }
    int32_t prev = KV_NIL;
    for (int32_t b = p->lru_head; b != KV_NIL; b = p->lru_next[b]) {
        if (b < 0 || b >= n || seen[b]) KV_FAIL("lru: bad or repeated block %d", b);
        if (p->refcount[b] != 0 || !p->hashed[b]) KV_FAIL("lru block %d referenced or unhashed", b);
        if (p->lru_prev[b] != prev) KV_FAIL("lru block %d: broken prev link", b);
        seen[b] = 2;
        prev = b;
        n_lru++;
    }
    if (prev != p->lru_tail) KV_FAIL("lru tail %d, last reached %d", p->lru_tail, prev);
    if (n_lru != p->n_cached) KV_FAIL("lru length %d != n_cached %d", n_lru, p->n_cached);
    for (int32_t b = 0; b < n; b++) {
        if (p->refcount[b] < 0) KV_FAIL("block %d: negative refcount", b);
        if (!seen[b] && p->refcount[b] == 0) KV_FAIL("block %d: unreferenced but in no list", b);
        if (!p->hashed[b]) continue;
        n_hashed++;
        const uint64_t h[2] = {p->block_hash[2 * b], p->block_hash[2 * b + 1]};
        if (kv_index_lookup(p, h) != b) KV_FAIL("block %d: not found by its hash", b);
    }
    for (uint64_t i = 0; i <= p->index_mask; i++) {
        int32_t b = p->index[i].block;
        if (b == KV_NIL) continue;
        n_index++;
        if (b < 0 || b >= n || !p->hashed[b]) KV_FAIL("index slot %llu: block %d not hashed",
                                                     (unsigned long long)i, b);
    }
    if (n_index != n_hashed) KV_FAIL("index holds %d entries, %d blocks hashed", n_index, n_hashed);
#undef KV_FAIL
done:
    free(seen);
    return bad ? -1 : 0;
}
