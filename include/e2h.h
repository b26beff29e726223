// e2h.h — the one public C API of the e2h inference engine.
//
// Handles are opaque. Every call returns an e2h_status; E2H_OK is 0. Calls on a handle keep
// the message of their last error in that handle (e2h_engine_last_error); calls that create
// a handle take an (err, err_len) buffer instead. There is no global state: two engines in
// one process do not interact.
//
// Ownership: whatever a *_load / *_init / *_create returns is owned by the caller and freed
// with the matching *_free / *_release. Pointers returned by getters stay owned by the
// handle and are valid until it is freed or changed.
//
// Options structs: each has an e2h_*_default() initializer, and a zero-filled struct (what
// memset, `= {0}`, ctypes and cffi give) means the documented defaults, except where a field
// says otherwise (e2h_append_opts.logprobs). A NULL options pointer means the defaults too.
//
// Threads: a loaded e2h_model (and its tokenizer) is immutable after e2h_model_load and may
// be shared by any number of engines on any number of threads. An e2h_engine, its sequences
// and an e2h_detok_stream are used by one thread at a time (one engine per thread); engines
// over one model on different threads do not interact. Engines that share a thread pool
// (e2h_engine_opts.share_pool_with) must be used from the same thread. The e2h_tokenize /
// e2h_detokenize / e2h_answer_* functions and the *_default() initializers are thread-safe.
#ifndef E2H_H
#define E2H_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// The version of this header; e2h_version() gives the library's ("MAJOR.MINOR.PATCH").
// libe2h.so's SONAME is libe2h.so.MAJOR.
#define E2H_VERSION_MAJOR 0
#define E2H_VERSION_MINOR 1
#define E2H_VERSION_PATCH 0

// libe2h is built with -fvisibility=hidden: the declarations of this header are the only
// symbols the shared library exports.
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility push(default)
#endif

const char *e2h_version(void);

typedef enum {
    E2H_OK = 0,
    E2H_ERR_INVALID_ARG = 1,  // a bad argument or option value
    E2H_ERR_IO = 2,           // file missing or unreadable
    E2H_ERR_FORMAT = 3,       // corrupt or truncated file, malformed JSON/JSONL
    E2H_ERR_UNSUPPORTED = 4,  // unknown architecture, dtype, tensor type, config value
    E2H_ERR_SHAPE = 5,        // tensor missing or of the wrong shape
    E2H_ERR_NOMEM = 6,
    E2H_ERR_CONTEXT = 7,      // prompt or sequence longer than the context
    E2H_ERR_KV_FULL = 8,      // KV pool exhausted and nothing could be evicted
    E2H_ERR_TOKENIZER = 9,    // tokenizer missing or invalid
} e2h_status;

// A short fixed name for a status ("E2H_ERR_FORMAT").
const char *e2h_status_name(e2h_status s);

typedef struct e2h_model e2h_model;
typedef struct e2h_tokenizer e2h_tokenizer;
typedef struct e2h_engine e2h_engine;
typedef struct e2h_seq e2h_seq;

// ---------------------------------------------------------------- model

typedef struct {
    const char *quant; // NULL: keep stored types; "q8_0", "q4_0", "q4_k": quantize on load
    int no_repack;     // 1: keep only the stored layout. 0 (default): where the CPU's kernels
                       // have one, q4_0/q4_1/q8_0 matrices also get a row-interleaved copy
                       // made at load (kernels/quant_r16.h; same size as the stored weights)
} e2h_load_opts;
e2h_load_opts e2h_load_opts_default(void); // all zero: stored types, repacked copies made

// Loads a Hugging Face model directory (config.json + model.safetensors or sharded
// safetensors with model.safetensors.index.json) or a .gguf file. Weights are mmapped and
// kept in their stored type. opts may be NULL. On failure *out is NULL and err holds a
// message naming the file and field. The caller owns *out (e2h_model_free).
e2h_status e2h_model_load(const char *path, const e2h_load_opts *opts, e2h_model **out,
                          char *err, size_t err_len);
void e2h_model_free(e2h_model *m);

typedef struct {
    const char *arch;      // owned by the model
    const char *source;    // "safetensors" or "gguf"
    const char *weight_type; // dominant stored weight type ("bf16", "q4_1", ...)
    int dim, n_layers, n_heads, n_kv_heads, head_dim, hidden_dim, vocab_size, max_ctx;
    float rope_theta, norm_eps;
    int tie_embeddings, has_qkv_bias;
    int bos_id, eos_id;    // -1 if none
    int64_t n_params;
    size_t weight_bytes;   // bytes of weights as stored (mmapped)
    int n_quant_fallback;  // --quant q4_k: matrices stored as q5_0 (rows not a multiple of 256)
    size_t packed_bytes;   // bytes of the row-interleaved copies made at load (0: none)
    char model_id[33];     // identity of the weights (32 hex chars; the KV prefix index key and
                           // what a PRM head file names as its policy)
} e2h_model_info;
void e2h_model_get_info(const e2h_model *m, e2h_model_info *info);
// The model's tokenizer, or NULL when the model came without one. Owned by the model.
const e2h_tokenizer *e2h_model_tokenizer(const e2h_model *m);
// The default system message of the model's ChatML chat template (GGUF tokenizer.chat_template
// or tokenizer_config.json chat_template), e.g. SmolLM2's "You are a helpful AI assistant
// named SmolLM, ...", which the template inserts when a conversation has no system turn;
// NULL if the template has none. Owned by the model.
const char *e2h_model_chat_system(const e2h_model *m);
// The model's chat template as stored (GGUF tokenizer.chat_template or tokenizer_config.json
// chat_template; Jinja text, not evaluated), or NULL when the model has none. Owned by the
// model. e2h_model_apply_chat renders ChatML whatever the template says: callers that must use
// the model's own layout check this first (a ChatML template contains "<|im_start|>").
const char *e2h_model_chat_template(const e2h_model *m);
// A ChatML prompt for one user turn (the layout the SmolLM2 / Qwen2 templates produce, and
// what `e2h generate --chat` uses):
//   <|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n
// system: NULL = the template's default (e2h_model_chat_system; no system turn if it has
// none), "" = no system turn. Writes a NUL-terminated text truncated to cap (out may be NULL
// with cap 0 to size it); *len gets the full length. Tokenize the result with add_special 0.
e2h_status e2h_model_apply_chat(const e2h_model *m, const char *system, const char *user,
                                char *out, size_t cap, size_t *len);
// The same for a conversation of n turns (roles "system" / "user" / "assistant"): the default
// system turn goes first only when the conversation has none (system as above).
e2h_status e2h_model_apply_chat_turns(const e2h_model *m, const char *system,
                                      const char *const *roles, const char *const *contents, int n,
                                      char *out, size_t cap, size_t *len);

// ---------------------------------------------------------------- tokenizer
// (see tokenizer/README.md for the supported families)

// Loads from a model directory (tokenizer.json [+ tokenizer_config.json]), a tokenizer.json
// path, or a .gguf file (a vocabulary-only GGUF works). Caller owns *out.
e2h_status e2h_tokenizer_load(const char *path, e2h_tokenizer **out, char *err, size_t err_len);
void e2h_tokenizer_free(e2h_tokenizer *t);
// Encodes len bytes of text. add_special: prepend BOS (etc.) the way the reference does by
// default. Writes up to cap ids and sets *n_ids to the full count (call again with a larger
// buffer if *n_ids > cap). Invalid UTF-8 is handled as the reference does.
e2h_status e2h_tokenize(const e2h_tokenizer *t, const char *text, size_t len, int add_special,
                        int32_t *ids, int32_t cap, int32_t *n_ids);
// Decodes ids to text (NUL-terminated, truncated to cap; *len gets the full length).
e2h_status e2h_detokenize(const e2h_tokenizer *t, const int32_t *ids, int32_t n, char *out,
                          size_t cap, size_t *len);
int32_t e2h_tokenizer_n_vocab(const e2h_tokenizer *t);
int32_t e2h_tokenizer_bos(const e2h_tokenizer *t); // -1 if none
int32_t e2h_tokenizer_eos(const e2h_tokenizer *t); // -1 if none
// Text of one token id with byte tokens resolved (owned by the tokenizer), or NULL.
const char *e2h_tokenizer_piece(const e2h_tokenizer *t, int32_t id, size_t *len);
// Id of a token given its exact text (added/special tokens such as "<|im_start|>" first, then
// the vocabulary form, e.g. "\u0120the" for byte-level vocabularies), or -1.
int32_t e2h_tokenizer_find(const e2h_tokenizer *t, const char *text, size_t len);
// Notes on e2h_detokenize (as the Hugging Face decoder does): special tokens render as their
// text ("<s>", "<|im_end|>"); the space that a SentencePiece dummy prefix added before the
// first word is removed; byte tokens that do not form valid UTF-8 become U+FFFD.

// Streaming decoder: feed ids one at a time; each push writes only whole UTF-8 characters
// (an unfinished multi-byte character is held until its last byte arrives). out is
// NUL-terminated, truncated to cap; *len gets the full length. Caller owns the stream.
typedef struct e2h_detok_stream e2h_detok_stream;
e2h_detok_stream *e2h_detok_stream_new(const e2h_tokenizer *t);
e2h_status e2h_detok_stream_push(e2h_detok_stream *s, int32_t id, char *out, size_t cap,
                                 size_t *len);
// Emits what is still held (an unfinished character becomes U+FFFD).
e2h_status e2h_detok_stream_flush(e2h_detok_stream *s, char *out, size_t cap, size_t *len);
void e2h_detok_stream_free(e2h_detok_stream *s);
// Message of the stream's last failed push / flush (which id, what was wrong); "" after a
// successful call. Owned by the stream. A failed push leaves the stream as it was.
const char *e2h_detok_stream_last_error(const e2h_detok_stream *s);

// ---------------------------------------------------------------- engine

// The kernel set that engine option `kernels` (NULL/"auto", "ref", "avx2", "avx512",
// "avx512bf16", "amx", "amx-emu") selects on this CPU: its name (a static string, e.g. "avx512bf16" for auto on a
// CPU with AVX512_BF16), or NULL if the name is unknown or the CPU cannot run it. Thread-safe.
const char *e2h_kernels_resolve(const char *kernels);
// Why kernel set `kernels` cannot run on this CPU, written to buf (len bytes, NUL-terminated)
// and returned; "" when it can. For NULL/"auto": why auto does not choose "amx" (e.g. "no AMX
// on this CPU (CPUID leaf 7 lacks AMX-TILE AMX-INT8 AMX-BF16)"; where AMX can run: that auto
// leaves the never-hardware-tested tile kernels opt-in), never "" today. May request
// the Linux AMX permission (arch_prctl; process-wide). Thread-safe.
const char *e2h_kernels_why_not(const char *kernels, char *buf, size_t len);

typedef struct {
    int n_threads;        // 0: 1 thread
    double kv_mem_gib;    // KV pool budget; 0: the larger of one full context (+ margin) and
                          // 1 GiB (pages are touched only as blocks are first used)
    int kv_f16;           // store K/V in f16 (default 0: f32)
    int block_size;       // KV block size in tokens; 0: 16
    int max_batch_tokens; // tokens per forward pass; 0: 512
    const char *kernels;  // NULL/"auto", "ref", "avx2", "avx512", "avx512bf16" (AVX512_BF16:
                          // bf16 weights x activations rounded to bf16, as torch does; auto's
                          // choice where the CPU has it), "amx" (avx512bf16 + AMX int8 tiles for
                          // q4_0/q4_1/q8_0 batches of 16+ tokens, same results; opt-in where CPU,
                          // OS and permission allow: never auto's choice until it has run on
                          // AMX hardware), "amx-emu" (those tile kernels
                          // on a scalar emulator: slow, for tests). See e2h_kernels_resolve.
    // NULL (default): the engine makes its own pool of n_threads threads. Else another engine
    // whose thread pool this one uses (n_threads is then that pool's size), so that two models
    // (a policy and a PRM hosted beside it) never oversubscribe the cores. The two engines
    // must be used from the same thread; either may be freed first (the pool lives until
    // both are freed).
    const struct e2h_engine *share_pool_with;
    // 0 (default): off. L in 1..n_layers: at every output row (each sequence's last token,
    // captured positions) also keep the raw residual stream after L decoder blocks (before any
    // norm; Hugging Face's hidden_states[L] for L < n_layers), read with
    // e2h_seq_hidden_layer(_at). Features for PRM heads from an intermediate layer; logits
    // are unchanged (bit for bit). Costs dim floats per sequence and per capture.
    int feature_layer;
} e2h_engine_opts;
e2h_engine_opts e2h_engine_opts_default(void); // all zero: see the fields

// Creates an engine over a loaded model (the model must outlive it). Allocates the run
// state, the KV pool and the thread pool once. Caller owns *out (e2h_engine_free).
e2h_status e2h_engine_init(const e2h_model *m, const e2h_engine_opts *opts, e2h_engine **out,
                           char *err, size_t err_len);
// Frees the engine and every sequence still live in it (so a garbage-collected binding may
// free in any order). Sequences handles are invalid afterwards: do not release them again.
void e2h_engine_free(e2h_engine *e);
const char *e2h_engine_last_error(const e2h_engine *e);
const e2h_model *e2h_engine_model(const e2h_engine *e);

// KV pool occupancy: blocks referenced by live sequences, blocks kept only as cached
// prefixes, the pool's size, bytes per block (all layers, K+V), and the bytes that the live
// sequences would need without sharing (sum over sequences of their own block counts).
// Also the engine's forward-pass counters since e2h_engine_init: passes run and tokens
// computed by them (the scheduler's batching shows as tokens per pass), and preemptions: how
// often a sequence's K/V was dropped to make room (see "Overload" below).
typedef struct {
    int32_t blocks_total, blocks_used, blocks_cached, block_size;
    size_t block_bytes;
    size_t independent_bytes;
    int64_t forward_passes, forward_tokens;
    int64_t preemptions;
} e2h_kv_stats;
void e2h_engine_get_kv_stats(const e2h_engine *e, e2h_kv_stats *out);

// Logits of every position of ids[0..n) computed from scratch (no cache reuse).
// logits: caller's buffer of (n, vocab) floats.
e2h_status e2h_eval_logits(e2h_engine *e, const int32_t *ids, int32_t n, float *logits);

// ---------------------------------------------------------------- sampling

typedef struct {
    float temperature; // 0 (default): greedy
    int top_k;         // 0 (default): off
    float top_p;       // 0 or 1 (default): off
    float min_p;       // 0 (default): off
    uint64_t seed;     // the RNG seed (1 from e2h_sampling_default, 0 when zero-filled: greedy
                       // decoding does not use it; with a temperature every value is valid)
} e2h_sampling;
e2h_sampling e2h_sampling_default(void); // greedy, seed 1

typedef struct {
    int32_t max_tokens;             // token budget of one extend call; 0 (default): none (up
                                    // to the context)
    const char *const *stop_strings;// stop when the text generated by this extend call
    int n_stop_strings;             //   contains one (empty strings are ignored)
    int ignore_eos;                 // 0 (default): stop at an end-of-sequence token; 1: go on
    int resume;                     // 1: a sequence whose previous extend call stopped at its
                                    //   max_tokens (and that was not appended to or truncated
                                    //   since) continues that call's stop-string matching, so a
                                    //   stop string may begin in the previous call's text:
                                    //   generating in chunks of max_tokens then stops where one
                                    //   call would. Other sequences start afresh. Give the same
                                    //   stop strings. 0 (default): every call starts afresh.
} e2h_stop;
e2h_stop e2h_stop_default(void); // all zero: stop at EOS, no budget, no stop strings

// Why a sequence stopped.
typedef enum {
    E2H_STOP_NONE = 0, E2H_STOP_EOS = 1, E2H_STOP_STRING = 2, E2H_STOP_LENGTH = 3,
    E2H_STOP_CONTEXT = 4
} e2h_stop_reason;

// ---------------------------------------------------------------- sequences (the tree API)
//
// Laziness: e2h_seq_create, e2h_seq_append(_ex) and e2h_seq_truncate only validate and record
// tokens. Tokens whose K/V are not yet in the cache are "pending"; nothing runs until
// e2h_engine_sync (or an extend / fork of that sequence) computes the pending tokens of many
// sequences together in shared forward passes (up to max_batch_tokens tokens each). So
// teacher-forcing 16 candidate steps is one pass, not 16. While a sequence has pending tokens,
// e2h_seq_logits / e2h_seq_hidden return NULL (and captured rows not yet computed read NULL).
// Sequences that share a prefix share its K/V only when the prefix was computed before the
// later sequence was created (fork from a synced parent, or sync the first one first).
// Overload: when the pool has no free block for a pass, the scheduler preempts instead of
// failing (vLLM's recompute mode): it drops the K/V of other sequences of this engine and keeps
// their tokens and their computed outputs (logits, hidden state, log-probs, captures stay
// readable); their K/V is recomputed (or taken from the prefix cache) when next needed, with
// bit-identical results. Victims, in order: sequences outside the call and sequences of the call
// already computed, least recently used first; then those listed after the one that needs room
// (a lower index is a higher priority). e2h_seq_extend does not recompute its preempted
// sequences every step: they wait until blocks free up or the others stop. E2H_ERR_KV_FULL only
// when one sequence cannot fit even with every other sequence's K/V dropped.

// Creates a sequence holding ids[0..n) (lazy: computed by the next sync; a cached prefix is
// reused). Its sampler state starts from `sampling` (NULL: e2h_sampling_default(); each
// sequence has its own RNG). Fails with E2H_ERR_KV_FULL only if n tokens exceed the whole
// pool; other sequences filling the pool are preempted at sync (see Overload). Caller owns *out.
e2h_status e2h_seq_create(e2h_engine *e, const int32_t *ids, int32_t n,
                          const e2h_sampling *sampling, e2h_seq **out);
// Computes every pending token of seqs[0..n) in shared forward passes (a sequence listed twice,
// or with nothing pending, is fine). A full pool preempts other sequences (see Overload);
// E2H_ERR_KV_FULL only when one sequence cannot fit in the pool with every other sequence's K/V
// dropped (release sequences and call again). On failure every sequence stays valid; some may
// still have pending tokens.
e2h_status e2h_engine_sync(e2h_engine *e, e2h_seq *const *seqs, int n);
// k children sharing every block of parent (synced first); child i's RNG is seeded from
// (seed, i). Children inherit the parent's tokens, log-probs and captures.
e2h_status e2h_seq_fork(e2h_engine *e, e2h_seq *parent, int k, e2h_seq **children);
// Syncs seqs, then advances them together (one batched forward pass per token) until each hits
// its stop. Afterwards every seq is synced (logits and hidden state of its last token current).
e2h_status e2h_seq_extend(e2h_engine *e, e2h_seq *const *seqs, int n, const e2h_stop *stop);

typedef struct {
    int logprobs;            // 1 (default): fill e2h_seq_logprobs for the appended tokens (costs a
                             // vocab row per token); 0: leave them NaN. NB: unlike the other options
                             // structs, zero-filling turns this off; start from the default.
    const int32_t *capture;  // offsets into this append's ids [0, n), ascending: keep the final-normed
    int32_t n_capture;       //   hidden state (dim) of those positions once computed (e2h_seq_hidden_at)
    int capture_logits;      // 1: also keep their logits (vocab) (e2h_seq_logits_at)
} e2h_append_opts;
e2h_append_opts e2h_append_opts_default(void); // logprobs 1, no captures
// Appends given tokens (teacher forcing, e.g. a PRM step) without sampling. Lazy: computed by
// the next sync / extend / fork. opts NULL = defaults. On error the sequence is unchanged.
e2h_status e2h_seq_append_ex(e2h_engine *e, e2h_seq *s, const int32_t *ids, int32_t n,
                             const e2h_append_opts *opts);
// == e2h_seq_append_ex(e, s, ids, n, NULL)
e2h_status e2h_seq_append(e2h_engine *e, e2h_seq *s, const int32_t *ids, int32_t n);
// Keeps the first n_tokens tokens (1..len). Lazy: the last kept token becomes pending again
// (its logits are recomputed by the next sync). Captures at positions >= n_tokens are dropped.
e2h_status e2h_seq_truncate(e2h_engine *e, e2h_seq *s, int32_t n_tokens);
void e2h_seq_release(e2h_engine *e, e2h_seq *s);

int32_t e2h_seq_len(const e2h_seq *s);
const int32_t *e2h_seq_tokens(const e2h_seq *s);        // (len), owned by the seq
// Log-probabilities indexed by ABSOLUTE position: lp[i] = log p(tokens[i] | tokens[0..i)) for
// i in [n_prompt, len) where known: sampled tokens always, appended tokens once computed when
// appended with logprobs on (the default); NaN otherwise (prompt tokens, logprobs off, not yet
// synced). (len) floats owned by the seq.
const float *e2h_seq_logprobs(const e2h_seq *s);
int32_t e2h_seq_n_prompt(const e2h_seq *s);
e2h_stop_reason e2h_seq_stop_reason(const e2h_seq *s);
// Logits (vocab) of the next token after the last one, owned by the seq; NULL while the
// sequence has pending tokens.
const float *e2h_seq_logits(const e2h_seq *s);
// (dim) final-normed hidden state of the LAST token (the row the logits come from); valid
// whenever e2h_seq_logits is (also after extend), else NULL.
const float *e2h_seq_hidden(const e2h_seq *s);
// (dim) hidden state / (vocab) logits at absolute position pos, captured by an append with
// opts.capture (logits only with capture_logits); NULL if not captured or not yet computed.
// Captures are inherited by fork and dropped by a truncate below them.
const float *e2h_seq_hidden_at(const e2h_seq *s, int32_t pos);
const float *e2h_seq_logits_at(const e2h_seq *s, int32_t pos);
// (dim) residual stream after e2h_engine_opts.feature_layer blocks at the last token / at a
// captured position, valid exactly when e2h_seq_hidden / e2h_seq_hidden_at are; NULL when the
// engine keeps no feature layer. Owned by the seq.
const float *e2h_seq_hidden_layer(const e2h_seq *s);
const float *e2h_seq_hidden_layer_at(const e2h_seq *s, int32_t pos);

// ---------------------------------------------------------------- answers (MATH / GSM8K grading)
// Pure functions: no state, no allocation visible to the caller, safe from any thread. No
// function reads past text[len) (nor past a NUL before it).

// Extracts the final answer from a solution: "# Answer\n\n..." (the paper's PRM800K format), else
// the last \boxed{...}/\boxed 7/\fbox{}, else GSM8K "#### N", else "The answer is ...".
// Writes a NUL-terminated string; returns 1 if found, 0 if not (out is then "", also when the
// answer does not fit in cap bytes).
int e2h_answer_extract(const char *text, size_t len, char *out, size_t cap);
// Canonical key (equivalent answers -> equal keys): Hendrycks/PRM800K normalization, exact
// rationals over simple radicals, structural tuples/intervals/unordered lists. Returns 1 on
// success, 0 if it does not fit in cap (out is then "").
int e2h_answer_key(const char *answer, size_t len, char *out, size_t cap);
// 1 if the two answers are equivalent (equal non-empty keys), else 0.
int e2h_answer_equal(const char *a, size_t alen, const char *b, size_t blen);

// ---------------------------------------------------------------- search and re-ranking
// (engine/search/: one file per method; every method runs on the tree API above)

typedef enum {
    E2H_SEARCH_GREEDY = 0,   // one greedy solution
    E2H_SEARCH_MAJ = 1,      // N samples, majority vote over canonical answer keys
    E2H_SEARCH_BON = 2,      // N samples, the best by an aggregate of step scores (default min)
    E2H_SEARCH_WEIGHTED = 3, // N samples, vote weighted by an aggregate (default prod)
    E2H_SEARCH_BEAM = 4,     // step-level beam search: N beams, keep N/M, each gets M children
    E2H_SEARCH_DVTS = 5,     // N/M independent subtrees, each greedy by step score over M children
    E2H_SEARCH_REBASE = 6,   // reward-balanced tree search (children by softmax of step scores)
} e2h_search_method;
// "greedy", "maj", "bon", "weighted", "beam", "dvts", "rebase"; NULL for an unknown value.
const char *e2h_search_method_name(e2h_search_method m);
// Parses a name as above; returns 0 and sets *out, or -1 when unknown.
int e2h_search_method_parse(const char *name, e2h_search_method *out);

// How a sample's step scores become one number.
typedef enum { E2H_AGG_MIN = 0, E2H_AGG_PROD = 1, E2H_AGG_MEAN = 2, E2H_AGG_LAST = 3 } e2h_agg;
const char *e2h_agg_name(e2h_agg a);
int e2h_agg_parse(const char *name, e2h_agg *out);

// Scores the newest step of each seq (the tokens since that seq's previous scoring);
// is_final marks the end of the solutions. scores[i] in [0, 1]. Must be deterministic for
// search results to be. Returns E2H_OK or an error (the search stops with it).
typedef e2h_status (*e2h_search_score_fn)(void *ctx, e2h_engine *e, e2h_seq *const *seqs, int n,
                                          int is_final, float *scores);

// Called after each round of a step-level method (and after each step round of the
// sampling methods) once pruned branches are released: `kept` are the live sequences that
// continue, `n_completed` the solutions finished so far. For progress and tests.
typedef struct {
    int round;
    e2h_seq *const *kept;
    int n_kept;
    int n_completed;
    int n_generated;  // sequences extended this round
} e2h_search_round_info;
typedef void (*e2h_search_round_fn)(void *ctx, e2h_engine *e, const e2h_search_round_info *info);

typedef struct {
    e2h_search_method method;
    int n;                  // samples / beams / total budget (default 4, search-and-learn)
    int m;                  // beam width M for beam/dvts (default 4); N % M == 0
    int max_rounds;         // step rounds of beam/dvts/rebase (default 40); the last one
                            // generates to the end of the solution
    int32_t max_tokens;     // generated tokens per solution (default 2048, search-and-learn)
    const char *step_delimiter;  // NULL: "\n\n"
    e2h_sampling sampling;  // default temperature 0.8, top_p 1.0, seed 42 (search-and-learn)
    e2h_agg agg_bon;        // default E2H_AGG_MIN (Lightman et al. 2023 / the e2h paper)
    e2h_agg agg_weighted;   // default E2H_AGG_PROD (Sun et al. 2024)
    e2h_agg agg_search;     // beam/dvts/rebase ranking, default E2H_AGG_LAST (search-and-learn)
    float rebase_temperature; // REBASE balance temperature T_b (default 0.1, Wu et al. 2024)
    e2h_search_score_fn score;  // step scorer; NULL: none (greedy and maj only)
    void *score_ctx;
    e2h_search_round_fn on_round;  // optional
    void *round_ctx;
    const char *problem;    // problem text given to an attached PRM (e2h_seq_set_problem)
} e2h_search_opts;
e2h_search_opts e2h_search_opts_default(void);

typedef struct {
    char *text;             // the generated solution (NUL-terminated)
    int32_t n_tokens;       // generated tokens
    int32_t n_steps;
    char **steps;           // (n_steps) step texts; concatenated they give text
    float *step_scores;     // (n_steps); NaN without a scorer
    char *answer;           // extracted final answer, or NULL
    char *key;              // canonical key of answer, or NULL
    float agg[4];           // indexed by e2h_agg; NaN without scores
    e2h_stop_reason stop;
} e2h_search_sample;

typedef struct {
    int n_samples;
    e2h_search_sample *samples; // (n_samples) in generation (completion) order
    int selected;           // index of the selected sample, -1 when none has an answer
    int64_t policy_tokens;  // tokens the policy computed: prompt once + every generated token
                            // of every branch, pruned ones included
    int64_t prm_tokens;     // policy tokens passed to the scorer (each once)
    int rounds;             // step rounds run
    double seconds;
} e2h_search_result;

// Runs one search from a prompt (token ids, e.g. a chat-templated problem) on e. Every
// sequence it creates is released before it returns, also on error (a KV pool too small
// for the search gives E2H_ERR_KV_FULL with a message in e2h_engine_last_error). The same
// seed gives the same result whatever the thread count. *out is filled on success and
// freed with e2h_search_result_free.
e2h_status e2h_search_run(e2h_engine *e, const int32_t *prompt, int32_t n_prompt,
                          const e2h_search_opts *opts, e2h_search_result *out);
void e2h_search_result_free(e2h_search_result *r);

// ---- several searches at once (search-and-learn's search_batch_size; vLLM's batching)
// e2h_search_run_batch runs one search per job that next() hands out, up to max_concurrent
// at a time, on one engine: the running searches' sequences are extended together, in
// decode batches of a few tokens at a time (e2h_stop.resume keeps their step delimiters
// exact), so the short steps of one search do not wait alone for the long steps of another,
// and a step that finishes early lets its search score, prune and fork while the others
// decode on. Each job's result is identical to e2h_search_run's for the same prompt and
// options (the engine's outputs do not depend on the batch); only `seconds` differs (the
// job's wall time, waits included).
typedef struct {
    const int32_t *prompt;  // token ids; must stay valid until done() is called for the job
    int32_t n_prompt;
    e2h_search_opts opts;   // the job's options (strings it points to stay valid until done())
    void *tag;              // the caller's, handed back to done()
} e2h_search_job;
typedef struct {
    int max_concurrent;     // searches in flight, 1..256 (1: one after the other)
    // Fills *job and returns 1, or returns 0 when there are no more jobs.
    int (*next)(void *ctx, e2h_search_job *job);
    // A job ended: st == E2H_OK with *res (the callee owns it: e2h_search_result_free), or an
    // error st with its message. Return non-zero to hand out no further jobs (the running ones
    // still end and are reported).
    int (*done)(void *ctx, void *tag, e2h_status st, const char *msg, e2h_search_result *res);
    void *ctx;
} e2h_search_batch;
// Thread-safety: next() and done() are called on threads this call creates, one call at a
// time and never while the engine works (no locking needed in them); they must not use e.
// Returns E2H_OK once every job handed out has been reported to done(), or an error of the
// batch itself (bad arguments, no thread could be started), message in e2h_engine_last_error.
e2h_status e2h_search_run_batch(e2h_engine *e, const e2h_search_batch *b);

// ---------------------------------------------------------------- process reward models (PRM)
//
// A PRM gives each step of a step-by-step solution a probability of being correct. Protocols
// (how the text is laid out for the PRM and where its score is read; see engine/prm/*.c):
//   "e2h-paper"      easy-to-hard paper's Llemma reward models: sigmoid of the mean over the
//                    vocabulary of the logits at the first "\n" after each step;
//                    "e2h-paper-orm" reads only the final answer, "e2h-paper-oprm" every step
//                    plus the final answer
//   "math-shepherd"  steps end with the tag "ки"; P(+) of softmax over the "+" / "-" logits
//   "qwen-prm"       Qwen2.5-Math-PRM: chat template, "<extra_0>" after each step, 2-class head
//   "rlhflow"        RLHFlow Llama-3.1 PRMs: a user turn per step answered "+"; P(+) vs "-"
//   "value-head"     Skywork-o1-Open-PRM style: linear value head at each step end, sigmoid
//   "implicit"       PRIME / EurusPRM: beta * sum over the step's tokens of
//                    (log pi(token) - log pi_ref(token)), two causal LMs
//   "head"           e2h's own head (small safetensors, PLAN §4) on the POLICY's hidden state
//                    at each step end [+ the step's mean token log-prob] [+ the residual stream
//                    after feature_layer blocks there]: no PRM model, no extra forward pass
// Step scores are in [0, 1] except "implicit" (a log-ratio, unbounded).
typedef struct e2h_prm e2h_prm;     // a loaded PRM: immutable after load, shareable by engines
typedef struct {
    const char *protocol;  // NULL: detect from config.json / GGUF metadata (error if ambiguous)
    const char *ref_model; // "implicit": the reference model path (required)
    float beta;            // "implicit": 0 = default (0.001 as EurusPRM)
    e2h_load_opts load;    // how the PRM model is loaded (quantize on load, ...)
} e2h_prm_opts;
e2h_prm_opts e2h_prm_opts_default(void);
// path: a PRM model (dir or gguf) or, for "head", a head .safetensors; policy: required for
// "head" (its dim and model id must match the head's metadata), may be NULL otherwise.
// The policy must outlive the PRM. Caller owns *out (e2h_prm_free). Errors: INVALID_ARG
// (unknown protocol), UNSUPPORTED (the model's head does not match the protocol), SHAPE,
// FORMAT, IO, TOKENIZER (a model protocol needs the PRM's tokenizer).
e2h_status e2h_prm_load(const char *path, const e2h_model *policy, const e2h_prm_opts *opts,
                        e2h_prm **out, char *err, size_t err_len);
void e2h_prm_free(e2h_prm *p);
const char *e2h_prm_protocol(const e2h_prm *p);   // the protocol's name (owned by the PRM)
// The policy layer L a "head" PRM also reads (its metadata feature_layer: features "layer",
// "layer+mean_logprob", "hidden+mean_logprob+layer"), 0 if none (other heads and protocols).
// An engine the PRM is attached to must keep that layer: create it with
// e2h_engine_opts.feature_layer = e2h_prm_feature_layer(p) (e2h_engine_attach_prm refuses an
// engine that keeps another). A pure read of the immutable PRM: safe from any thread.
int e2h_prm_feature_layer(const e2h_prm *p);
// The text that separates steps in a solution string ("\n\n"), owned by the PRM.
const char *e2h_prm_step_delimiter(const e2h_prm *p);
// Splits a solution into steps on the protocol's delimiter (a "# Answer" line joins the
// answer that follows it; empty pieces are dropped). Writes up to cap (start, length) pairs
// into starts/lens and returns the number of steps (call again with more room if > cap).
int e2h_prm_split_solution(const e2h_prm *p, const char *text, size_t len, size_t *starts,
                           size_t *lens, int cap);

// Attaches a PRM to a policy engine (at most one; the PRM must outlive the engine, or be
// detached by e2h_engine_free). A model PRM gets its own engine that shares the policy
// engine's thread pool; the --kv-mem budget is SPLIT: the policy's pool keeps the share
// policy_bytes/(policy_bytes + prm_bytes) per token of its blocks, the PRM pool gets the rest
// (both hold the same number of tokens). Each pool's prefix index hashes its model's id.
// Policy sequences then get PRM mirrors that fork / truncate / release with them. The "head"
// protocol needs no PRM engine and reads the policy's own hidden states. May be called while
// sequences exist: a sequence's mirror is made on its first scoring (after e2h_seq_set_problem
// on it or on an ancestor forked after the attach). The split evicts cached policy blocks beyond
// the policy's share; if the live sequences reference more blocks than that share, nothing is
// attached and E2H_ERR_KV_FULL says so (attach earlier, release sequences or raise --kv-mem).
// A head that reads a policy layer (e2h_prm_feature_layer) needs an engine created with that
// feature_layer; another engine is refused (INVALID_ARG, the message names both layers).
e2h_status e2h_engine_attach_prm(e2h_engine *e, const e2h_prm *p);
// The PRM attached to e, or NULL.
const e2h_prm *e2h_engine_prm(const e2h_engine *e);
// Sets the problem text of a (root) policy sequence; forks inherit it. Copies the text.
e2h_status e2h_seq_set_problem(e2h_engine *e, e2h_seq *s, const char *problem);
// Scores, for each seq, the new step(s) since that seq's previous scoring: the policy text
// generated since then (tokens after the prompt, a trailing EOS dropped) split on the step
// delimiter; is_final marks the end of the solution (ORM / answer reads). scores[i] = score of
// seq i's newest step (NaN if it had no new text). Batched: all mirrors' new tokens run in
// shared forward passes; a scored prefix is never recomputed. Re-scoring with no new text
// returns the last score again at no cost.
e2h_status e2h_prm_score_new_steps(e2h_engine *e, e2h_seq *const *seqs, int n, int is_final,
                                   float *scores);
// All step scores of a sequence so far (owned by the seq; valid until it is scored, truncated
// or released). Returns the count.
int32_t e2h_seq_step_scores(const e2h_seq *s, const float **scores);
// Scores given texts: problem + steps (no policy sampling); step_scores: (n_steps). The
// solution is treated as final. Uses a temporary mirror (its prefix stays cached).
e2h_status e2h_prm_score_texts(e2h_engine *e, const char *problem, const char *const *steps,
                               int n_steps, float *step_scores);
// PRM tokens computed by the attached PRM's engine so far (for benchmarks; 0 for "head").
int64_t e2h_engine_prm_tokens(const e2h_engine *e);

// Aggregates of step scores (e2h_agg above; n >= 1, NaN for n == 0).
float e2h_prm_aggregate(const float *scores, int n, e2h_agg how);
// The PRM's own model (NULL for "head"), e.g. to run a PRM without a policy: an engine on it
// with the PRM attached scores texts in that same engine (no second pool).
const e2h_model *e2h_prm_model(const e2h_prm *p);

#if defined(__GNUC__) || defined(__clang__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif
