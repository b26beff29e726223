"""ctypes declarations of include/e2h.h and the library lookup.

Struct layouts mirror include/e2h.h. Options structs that the library reads are passed with zeroed
spare bytes after them, so a library whose struct gained fields at the end (zero = default, the
header's rule) still reads defaults there. Functions are bound lazily: a symbol the loaded library
lacks raises E2HError naming it when called, so the package works across library versions.
"""
import ctypes
import ctypes.util
import os

c_int, c_int32, c_int64, c_float, c_double = ctypes.c_int, ctypes.c_int32, ctypes.c_int64, ctypes.c_float, ctypes.c_double
c_size_t, c_char_p, c_void_p, c_uint64 = ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_uint64
P = ctypes.POINTER
SPARE = 64  # zeroed bytes after every options struct we pass (see module docstring)

STATUS_NAMES = {0: "E2H_OK", 1: "E2H_ERR_INVALID_ARG", 2: "E2H_ERR_IO", 3: "E2H_ERR_FORMAT",
                4: "E2H_ERR_UNSUPPORTED", 5: "E2H_ERR_SHAPE", 6: "E2H_ERR_NOMEM", 7: "E2H_ERR_CONTEXT",
                8: "E2H_ERR_KV_FULL", 9: "E2H_ERR_TOKENIZER"}


class E2HError(Exception):
    """An e2h call failed. .status is the e2h_status code, .name its name, .message the engine's text."""

    def __init__(self, status, message, name=None):
        self.status = int(status)
        self.name = name or STATUS_NAMES.get(self.status, f"E2H_STATUS_{self.status}")
        self.message = message
        super().__init__(f"{self.name}: {message}" if message else self.name)


class LoadOpts(ctypes.Structure):
    _fields_ = [("quant", c_char_p), ("no_repack", c_int)]


class ModelInfo(ctypes.Structure):
    _fields_ = [("arch", c_char_p), ("source", c_char_p), ("weight_type", c_char_p),
                ("dim", c_int), ("n_layers", c_int), ("n_heads", c_int), ("n_kv_heads", c_int),
                ("head_dim", c_int), ("hidden_dim", c_int), ("vocab_size", c_int), ("max_ctx", c_int),
                ("rope_theta", c_float), ("norm_eps", c_float),
                ("tie_embeddings", c_int), ("has_qkv_bias", c_int), ("bos_id", c_int), ("eos_id", c_int),
                ("n_params", c_int64), ("weight_bytes", c_size_t), ("n_quant_fallback", c_int),
                ("packed_bytes", c_size_t), ("model_id", ctypes.c_char * 33),
                ("_spare", ctypes.c_char * SPARE)]


class EngineOpts(ctypes.Structure):
    _fields_ = [("n_threads", c_int), ("kv_mem_gib", c_double), ("kv_f16", c_int), ("block_size", c_int),
                ("max_batch_tokens", c_int), ("kernels", c_char_p), ("share_pool_with", c_void_p),
                ("feature_layer", c_int), ("_spare", ctypes.c_char * SPARE)]


class KVStats(ctypes.Structure):
    _fields_ = [("blocks_total", c_int32), ("blocks_used", c_int32), ("blocks_cached", c_int32),
                ("block_size", c_int32), ("block_bytes", c_size_t), ("independent_bytes", c_size_t),
                ("forward_passes", c_int64), ("forward_tokens", c_int64), ("preemptions", c_int64),
                ("_spare", ctypes.c_char * SPARE)]


class Sampling(ctypes.Structure):
    _fields_ = [("temperature", c_float), ("top_k", c_int), ("top_p", c_float), ("min_p", c_float),
                ("seed", c_uint64), ("_spare", ctypes.c_char * SPARE)]


class Stop(ctypes.Structure):
    _fields_ = [("max_tokens", c_int32), ("stop_strings", P(c_char_p)), ("n_stop_strings", c_int),
                ("ignore_eos", c_int), ("resume", c_int), ("_spare", ctypes.c_char * SPARE)]


class AppendOpts(ctypes.Structure):
    _fields_ = [("logprobs", c_int), ("capture", P(c_int32)), ("n_capture", c_int32),
                ("capture_logits", c_int), ("_spare", ctypes.c_char * SPARE)]


class PRMOpts(ctypes.Structure):
    _fields_ = [("protocol", c_char_p), ("ref_model", c_char_p), ("beta", c_float), ("load", LoadOpts),
                ("_spare", ctypes.c_char * SPARE)]


vp = c_void_p
# name -> (restype, argtypes)
SIGS = {
    "e2h_status_name": (c_char_p, [c_int]),
    "e2h_model_load": (c_int, [c_char_p, P(LoadOpts), P(vp), c_char_p, c_size_t]),
    "e2h_model_free": (None, [vp]),
    "e2h_model_get_info": (None, [vp, P(ModelInfo)]),
    "e2h_model_tokenizer": (vp, [vp]),
    "e2h_model_chat_system": (c_char_p, [vp]),
    "e2h_model_chat_template": (c_char_p, [vp]),
    "e2h_tokenizer_load": (c_int, [c_char_p, P(vp), c_char_p, c_size_t]),
    "e2h_tokenizer_free": (None, [vp]),
    "e2h_tokenize": (c_int, [vp, c_char_p, c_size_t, c_int, P(c_int32), c_int32, P(c_int32)]),
    "e2h_detokenize": (c_int, [vp, P(c_int32), c_int32, c_char_p, c_size_t, P(c_size_t)]),
    "e2h_tokenizer_n_vocab": (c_int32, [vp]),
    "e2h_tokenizer_bos": (c_int32, [vp]),
    "e2h_tokenizer_eos": (c_int32, [vp]),
    "e2h_tokenizer_piece": (ctypes.POINTER(ctypes.c_char), [vp, c_int32, P(c_size_t)]),
    "e2h_tokenizer_find": (c_int32, [vp, c_char_p, c_size_t]),
    "e2h_kernels_resolve": (c_char_p, [c_char_p]),
    "e2h_engine_init": (c_int, [vp, P(EngineOpts), P(vp), c_char_p, c_size_t]),
    "e2h_engine_free": (None, [vp]),
    "e2h_engine_last_error": (c_char_p, [vp]),
    "e2h_engine_get_kv_stats": (None, [vp, P(KVStats)]),
    "e2h_eval_logits": (c_int, [vp, P(c_int32), c_int32, P(c_float)]),
    "e2h_seq_create": (c_int, [vp, P(c_int32), c_int32, P(Sampling), P(vp)]),
    "e2h_engine_sync": (c_int, [vp, P(vp), c_int]),
    "e2h_seq_fork": (c_int, [vp, vp, c_int, P(vp)]),
    "e2h_seq_extend": (c_int, [vp, P(vp), c_int, P(Stop)]),
    "e2h_seq_append": (c_int, [vp, vp, P(c_int32), c_int32]),
    "e2h_seq_append_ex": (c_int, [vp, vp, P(c_int32), c_int32, P(AppendOpts)]),
    "e2h_seq_truncate": (c_int, [vp, vp, c_int32]),
    "e2h_seq_release": (None, [vp, vp]),
    "e2h_seq_len": (c_int32, [vp]),
    "e2h_seq_tokens": (P(c_int32), [vp]),
    "e2h_seq_logprobs": (P(c_float), [vp]),
    "e2h_seq_n_prompt": (c_int32, [vp]),
    "e2h_seq_stop_reason": (c_int, [vp]),
    "e2h_seq_logits": (P(c_float), [vp]),
    "e2h_seq_hidden": (P(c_float), [vp]),
    "e2h_seq_hidden_at": (P(c_float), [vp, c_int32]),
    "e2h_seq_logits_at": (P(c_float), [vp, c_int32]),
    "e2h_seq_hidden_layer": (P(c_float), [vp]),
    "e2h_seq_hidden_layer_at": (P(c_float), [vp, c_int32]),
    "e2h_answer_extract": (c_int, [c_char_p, c_size_t, c_char_p, c_size_t]),
    "e2h_answer_key": (c_int, [c_char_p, c_size_t, c_char_p, c_size_t]),
    "e2h_answer_equal": (c_int, [c_char_p, c_size_t, c_char_p, c_size_t]),
    "e2h_prm_load": (c_int, [c_char_p, vp, P(PRMOpts), P(vp), c_char_p, c_size_t]),
    "e2h_prm_free": (None, [vp]),
    "e2h_prm_protocol": (c_char_p, [vp]),
    "e2h_prm_feature_layer": (c_int, [vp]),
    "e2h_prm_step_delimiter": (c_char_p, [vp]),
    "e2h_prm_split_solution": (c_int, [vp, c_char_p, c_size_t, P(c_size_t), P(c_size_t), c_int]),
    "e2h_prm_model": (vp, [vp]),
    "e2h_engine_attach_prm": (c_int, [vp, vp]),
    "e2h_engine_prm": (vp, [vp]),
    "e2h_seq_set_problem": (c_int, [vp, vp, c_char_p]),
    "e2h_prm_score_new_steps": (c_int, [vp, P(vp), c_int, c_int, P(c_float)]),
    "e2h_seq_step_scores": (c_int32, [vp, P(P(c_float))]),
    "e2h_prm_score_texts": (c_int, [vp, c_char_p, P(c_char_p), c_int, P(c_float)]),
    "e2h_engine_prm_tokens": (c_int64, [vp]),
    "e2h_prm_aggregate": (c_float, [P(c_float), c_int, c_int]),
    "e2h_model_apply_chat": None,  # signature not fixed yet; not bound
}


def _candidates():
    env = os.environ.get("E2H_LIB")
    if env:
        yield env
    b = os.environ.get("E2H_BUILD")
    if b:
        yield os.path.join(b, "libe2h.so")
    here = os.path.dirname(os.path.abspath(__file__))
    for up in (os.path.join(here, "..", ".."), os.path.join(here, "..", "..", "..")):
        yield os.path.normpath(os.path.join(up, "build", "libe2h.so"))
    found = ctypes.util.find_library("e2h")
    if found:
        yield found


class _Lib:
    """The loaded library with lazily-declared functions: lib.e2h_seq_len(...)."""

    def __init__(self):
        self._dll = None
        self.path = None
        tried = []
        for c in _candidates():
            tried.append(c)
            if os.path.sep in c and not os.path.exists(c):
                continue
            try:
                self._dll = ctypes.CDLL(c)
                self.path = c
                break
            except OSError as ex:
                tried[-1] += f" ({ex})"
        if self._dll is None:
            raise ImportError("e2h: libe2h.so not found; build it with `make` and/or set E2H_LIB=/path/to/libe2h.so "
                              "(tried: " + ", ".join(tried) + ")")

    def has(self, name):
        return hasattr(self._dll, name)

    def __getattr__(self, name):
        if not name.startswith("e2h_"):
            raise AttributeError(name)
        sig = SIGS.get(name)
        if not hasattr(self._dll, name) or sig is None:
            def missing(*_a, **_k):
                raise E2HError(4, f"{name} is not available in this libe2h ({self.path})")
            return missing
        fn = getattr(self._dll, name)
        fn.restype, fn.argtypes = sig
        setattr(self, name, fn)
        return fn


_LIB = None


def lib():
    global _LIB
    if _LIB is None:
        _LIB = _Lib()
    return _LIB
