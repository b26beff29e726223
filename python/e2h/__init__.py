"""e2h: Python binding of the e2h engine (libe2h.so through ctypes).

    Model(path)                  a loaded model (HF directory or .gguf); .info, .tokenizer, .chat(text)
    Tokenizer                    encode / decode (numpy int32 ids)
    Engine(model, ...)           KV pool + scheduler; create / extend / sync / eval_logits / kv_stats
    Seq                          a sequence in the tree: fork / extend / append / truncate / release;
                                 .tokens, .logprobs, .logits, .hidden as numpy copies, .text
    PRM(path, protocol=...)      a process reward model; .score(problem, steps) -> list of floats
    PRMReward(path, ...)         reward(prompts, completions, **kw) -> list[float] (TRL GRPO style)
    E2HError                     raised on every failure, with the engine's message

Handles are freed by close() or a with-block; a Seq belongs to its Engine and is released with it.
Not thread-safe per object (as the C API: one engine per thread).
"""
import ctypes
import math

import numpy as np

from ._lib import (AppendOpts, E2HError, EngineOpts, KVStats, LoadOpts, ModelInfo, PRMOpts, Sampling, Stop,
                   lib, P)

__all__ = ["kernels_resolve", "Model", "Tokenizer", "Engine", "Seq", "PRM", "PRMReward", "E2HError", "aggregate", "answer_extract",
           "answer_key", "answer_equal", "library_path"]
__version__ = "0.1.0"

ERR_LEN = 1024
STOP_REASONS = {0: None, 1: "eos", 2: "stop_string", 3: "length", 4: "context"}
AGGREGATES = {"min": 0, "prod": 1, "mean": 2, "last": 3}


def library_path():
    """Path of the libe2h.so in use."""
    return lib().path


def kernels_resolve(kernels=None):
    """Name of the kernel set that Engine(kernels=...) selects on this CPU (None/"auto": the best one,
    e.g. "avx512bf16"), or None if the name is unknown or this CPU cannot run it."""
    r = lib().e2h_kernels_resolve(_b(kernels))
    return None if r is None else r.decode()


def _b(s):
    return None if s is None else (s.encode("utf-8") if isinstance(s, str) else bytes(s))


def _check(status, message_fn):
    if status != 0:
        msg = message_fn() if callable(message_fn) else message_fn
        if isinstance(msg, bytes):
            msg = msg.decode("utf-8", "replace")
        raise E2HError(status, msg or "")


def _ids(x):
    a = np.ascontiguousarray(np.asarray(x, dtype=np.int32).reshape(-1))
    return a, a.ctypes.data_as(P(ctypes.c_int32))


def _copy(ptr, n, dtype):
    if not ptr or n <= 0:
        return None if not ptr else np.zeros(0, dtype=dtype)
    return np.ctypeslib.as_array(ptr, shape=(n,)).astype(dtype, copy=True)


class _Handle:
    _ptr = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    @property
    def closed(self):
        return not self._ptr

    def _live(self):
        if not self._ptr:
            raise E2HError(1, f"{type(self).__name__} is closed")
        return self._ptr


# ---------------------------------------------------------------- tokenizer


class Tokenizer(_Handle):
    """Text <-> ids. Tokenizer.load(path) owns its handle; Model.tokenizer is borrowed from the model."""

    def __init__(self, ptr, owner=None, owned=False):
        self._ptr, self._owner, self._owned = ptr, owner, owned

    @classmethod
    def load(cls, path):
        out, err = ctypes.c_void_p(), ctypes.create_string_buffer(ERR_LEN)
        _check(lib().e2h_tokenizer_load(_b(str(path)), ctypes.byref(out), err, ERR_LEN), err.value)
        return cls(out.value, owned=True)

    def close(self):
        if self._ptr and self._owned:
            lib().e2h_tokenizer_free(self._ptr)
        self._ptr = None

    def encode(self, text, add_special=False):
        """ids (numpy int32) of text; add_special: BOS etc. as the model adds them by default."""
        data = _b(text)
        cap = max(16, len(data) + 8)
        n = ctypes.c_int32()
        while True:
            buf = (ctypes.c_int32 * cap)()
            _check(lib().e2h_tokenize(self._live(), data, len(data), int(bool(add_special)), buf, cap,
                                      ctypes.byref(n)), "tokenize failed")
            if n.value <= cap:
                return np.frombuffer(buf, dtype=np.int32, count=n.value).copy()
            cap = n.value

    def decode(self, ids):
        a, p = _ids(ids)
        cap = max(64, 8 * len(a) + 16)
        ln = ctypes.c_size_t()
        while True:
            buf = ctypes.create_string_buffer(cap)
            _check(lib().e2h_detokenize(self._live(), p, len(a), buf, cap, ctypes.byref(ln)), "detokenize failed")
            if ln.value < cap:
                return buf.raw[:ln.value].decode("utf-8", "replace")
            cap = ln.value + 1

    def piece(self, token_id):
        ln = ctypes.c_size_t()
        p = lib().e2h_tokenizer_piece(self._live(), int(token_id), ctypes.byref(ln))
        return None if not p else ctypes.string_at(p, ln.value).decode("utf-8", "replace")

    def find(self, text):
        """Id of a token given its exact text, or -1."""
        d = _b(text)
        return int(lib().e2h_tokenizer_find(self._live(), d, len(d)))

    @property
    def n_vocab(self):
        return int(lib().e2h_tokenizer_n_vocab(self._live()))

    @property
    def bos(self):
        return int(lib().e2h_tokenizer_bos(self._live()))

    @property
    def eos(self):
        return int(lib().e2h_tokenizer_eos(self._live()))


# ---------------------------------------------------------------- model


class Model(_Handle):
    """A loaded model: Model(path, quant=None, no_repack=False). path: HF directory or .gguf."""

    def __init__(self, path, quant=None, no_repack=False, _borrowed=None):
        self.path = str(path)
        self._owned = _borrowed is None
        if _borrowed is not None:
            self._ptr, self._keep = _borrowed
        else:
            opts = LoadOpts(_b(quant), int(bool(no_repack)))
            out, err = ctypes.c_void_p(), ctypes.create_string_buffer(ERR_LEN)
            _check(lib().e2h_model_load(_b(self.path), ctypes.byref(opts), ctypes.byref(out), err, ERR_LEN),
                   err.value)
            self._ptr = out.value
        self._tok = None

    def close(self):
        if self._ptr and self._owned:
            lib().e2h_model_free(self._ptr)
        self._ptr = None

    @property
    def info(self):
        """Model facts as a simple namespace (arch, dim, n_layers, vocab_size, bos_id, eos_id, model_id, ...)."""
        mi = ModelInfo()
        lib().e2h_model_get_info(self._live(), ctypes.byref(mi))
        d = {}
        for name, _ in ModelInfo._fields_:
            if name.startswith("_"):
                continue
            v = getattr(mi, name)
            d[name] = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
        d["model_id"] = d.get("model_id") or None
        return _NS(d)

    @property
    def tokenizer(self):
        if self._tok is None:
            p = lib().e2h_model_tokenizer(self._live())
            if not p:
                raise E2HError(9, f"{self.path}: model has no tokenizer")
            self._tok = Tokenizer(p, owner=self)
        return self._tok

    @property
    def chat_system(self):
        s = lib().e2h_model_chat_system(self._live())
        return None if s is None else s.decode("utf-8", "replace")

    @property
    def chat_template(self):
        """The model's chat template text (Jinja, not evaluated), or None."""
        s = lib().e2h_model_chat_template(self._live())
        return None if s is None else s.decode("utf-8", "replace")

    def encode(self, text, add_special=True):
        return self.tokenizer.encode(text, add_special)

    def decode(self, ids):
        return self.tokenizer.decode(ids)

    def chat(self, user, system=None):
        """Token ids of a one-turn ChatML prompt ending with the assistant header (with the template's
        default system message), for models whose tokenizer has <|im_start|>; else plain text ids."""
        t = self.tokenizer
        if t.find("<|im_start|>") < 0:
            return t.encode(user, add_special=True)
        system = system if system is not None else self.chat_system
        text = ""
        if system:
            text += f"<|im_start|>system\n{system}<|im_end|>\n"
        text += f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
        return t.encode(text, add_special=False)


class _NS(dict):
    __getattr__ = dict.__getitem__

    def __repr__(self):
        return "ModelInfo(" + ", ".join(f"{k}={v!r}" for k, v in self.items()) + ")"


# ---------------------------------------------------------------- engine and sequences


class Engine(_Handle):
    """Engine(model, n_threads=1, kv_mem_gib=0, kv_f16=False, block_size=0, max_batch_tokens=0, kernels=None,
    feature_layer=0).

    The model must outlive the engine (the Engine keeps a reference). Sequences created here are released
    when the engine closes. feature_layer L (1..n_layers) also keeps the residual stream after L blocks at
    each output row (Seq.hidden_layer, Seq.hidden_layer_at)."""

    def __init__(self, model, n_threads=1, kv_mem_gib=0.0, kv_f16=False, block_size=0, max_batch_tokens=0,
                 kernels=None, feature_layer=0):
        self.model = model
        self._kernels = _b(kernels)
        opts = EngineOpts(n_threads=n_threads, kv_mem_gib=kv_mem_gib, kv_f16=int(bool(kv_f16)),
                          block_size=block_size, max_batch_tokens=max_batch_tokens, kernels=self._kernels,
                          feature_layer=feature_layer)
        out, err = ctypes.c_void_p(), ctypes.create_string_buffer(ERR_LEN)
        _check(lib().e2h_engine_init(model._live(), ctypes.byref(opts), ctypes.byref(out), err, ERR_LEN), err.value)
        self._ptr = out.value
        self._seqs = set()
        self.prm = None

    def close(self):
        if self._ptr:
            for s in list(self._seqs):
                s.release()
            lib().e2h_engine_free(self._ptr)
        self._ptr = None

    def _err(self):
        m = lib().e2h_engine_last_error(self._ptr) if self._ptr else None
        return m.decode("utf-8", "replace") if m else ""

    def _call(self, status):
        _check(status, self._err)

    def _wrap(self, ptr):
        s = Seq(self, ptr)
        self._seqs.add(s)
        return s

    def create(self, prompt, temperature=0.0, top_k=0, top_p=1.0, min_p=0.0, seed=1, problem=None):
        """A new sequence holding prompt (ids, or text encoded with the model's special tokens).
        problem: the problem text the PRM sees (e2h_seq_set_problem)."""
        if isinstance(prompt, str):
            prompt = self.model.encode(prompt, add_special=True)
        a, p = _ids(prompt)
        sp = Sampling(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, seed=seed)
        out = ctypes.c_void_p()
        self._call(lib().e2h_seq_create(self._live(), p, len(a), ctypes.byref(sp), ctypes.byref(out)))
        s = self._wrap(out.value)
        if problem is not None:
            s.set_problem(problem)
        return s

    @staticmethod
    def _arr(seqs):
        seqs = list(seqs)
        arr = (ctypes.c_void_p * max(1, len(seqs)))(*[s._live() for s in seqs])
        return seqs, arr

    def sync(self, seqs):
        """Computes every pending token of seqs in shared forward passes (lazy scheduler)."""
        seqs, arr = self._arr(seqs)
        if not lib().has("e2h_engine_sync"):
            return
        self._call(lib().e2h_engine_sync(self._live(), arr, len(seqs)))

    def extend(self, seqs, max_tokens=256, stop=(), stop_at_eos=True):
        """Samples all seqs together until each hits EOS, a stop string or max_tokens."""
        seqs, arr = self._arr(seqs)
        enc = [_b(x) for x in stop]
        sarr = (ctypes.c_char_p * max(1, len(enc)))(*enc)
        st = Stop(max_tokens=max_tokens, stop_strings=sarr if enc else None, n_stop_strings=len(enc),
                  ignore_eos=int(not stop_at_eos))
        self._call(lib().e2h_seq_extend(self._live(), arr, len(seqs), ctypes.byref(st)))

    def eval_logits(self, ids):
        """(n, vocab) logits of every position of ids, from scratch."""
        a, p = _ids(ids)
        V = self.model.info.vocab_size
        out = np.empty((len(a), V), dtype=np.float32)
        self._call(lib().e2h_eval_logits(self._live(), p, len(a), out.ctypes.data_as(P(ctypes.c_float))))
        return out

    def kv_stats(self):
        st = KVStats()
        lib().e2h_engine_get_kv_stats(self._live(), ctypes.byref(st))
        return {k: getattr(st, k) for k, _ in KVStats._fields_ if not k.startswith("_")}

    # -- PRM
    def attach_prm(self, prm):
        """Attaches a PRM: sequences get PRM mirrors on their first scoring (score_new_steps; set the problem
        with create(..., problem=) or set_problem). May be called while sequences exist (KV_FULL if they hold
        more than the policy's share of the split budget)."""
        self._call(lib().e2h_engine_attach_prm(self._live(), prm._live()))
        self.prm = prm

    def score_new_steps(self, seqs, is_final=False):
        """Scores each seq's new step(s) since its previous scoring; returns the newest step's score per seq."""
        seqs, arr = self._arr(seqs)
        out = np.full(len(seqs), np.nan, dtype=np.float32)
        self._call(lib().e2h_prm_score_new_steps(self._live(), arr, len(seqs), int(bool(is_final)),
                                                 out.ctypes.data_as(P(ctypes.c_float))))
        return out

    def score_texts(self, problem, steps):
        """Per-step scores (numpy float32) of a given solution with the attached PRM."""
        steps = list(steps)
        enc = [_b(s) for s in steps]
        sarr = (ctypes.c_char_p * max(1, len(enc)))(*enc)
        out = np.full(len(steps), np.nan, dtype=np.float32)
        self._call(lib().e2h_prm_score_texts(self._live(), _b(problem), sarr, len(steps),
                                             out.ctypes.data_as(P(ctypes.c_float))))
        return out

    @property
    def prm_tokens(self):
        """PRM tokens computed by the attached PRM's engine so far."""
        return int(lib().e2h_engine_prm_tokens(self._live()))


class Seq:
    """A sequence of an Engine. Arrays returned are copies (safe after the seq changes)."""

    def __init__(self, engine, ptr):
        self.engine, self._ptr = engine, ptr

    def _live(self):
        if not self._ptr:
            raise E2HError(1, "sequence was released")
        return self._ptr

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def release(self):
        if self._ptr and self.engine._ptr:
            lib().e2h_seq_release(self.engine._ptr, self._ptr)
        self.engine._seqs.discard(self)
        self._ptr = None

    def __len__(self):
        return int(lib().e2h_seq_len(self._live()))

    @property
    def n_prompt(self):
        return int(lib().e2h_seq_n_prompt(self._live()))

    @property
    def tokens(self):
        return _copy(lib().e2h_seq_tokens(self._live()), len(self), np.int32)

    @property
    def new_tokens(self):
        return self.tokens[self.n_prompt:]

    @property
    def logprobs(self):
        """(len,) float32, lp[i] = log p(tokens[i] | tokens[:i]) where known, NaN elsewhere."""
        return _copy(lib().e2h_seq_logprobs(self._live()), len(self), np.float32)

    @property
    def text(self):
        """The decoded tokens after the prompt."""
        return self.engine.model.decode(self.new_tokens)

    @property
    def stop_reason(self):
        return STOP_REASONS.get(int(lib().e2h_seq_stop_reason(self._live())))

    def _vec(self, ptr, n):
        if not ptr:
            return None
        return _copy(ptr, n, np.float32)

    @property
    def logits(self):
        """(vocab,) next-token logits, or None while tokens are pending (call engine.sync)."""
        return self._vec(lib().e2h_seq_logits(self._live()), self.engine.model.info.vocab_size)

    @property
    def hidden(self):
        """(dim,) final-normed hidden state of the last token, or None while pending."""
        return self._vec(lib().e2h_seq_hidden(self._live()), self.engine.model.info.dim)

    def hidden_at(self, pos):
        return self._vec(lib().e2h_seq_hidden_at(self._live(), int(pos)), self.engine.model.info.dim)

    @property
    def hidden_layer(self):
        """(dim,) residual stream after the engine's feature_layer blocks at the last token; None while
        pending or without a feature layer."""
        return self._vec(lib().e2h_seq_hidden_layer(self._live()), self.engine.model.info.dim)

    def hidden_layer_at(self, pos):
        return self._vec(lib().e2h_seq_hidden_layer_at(self._live(), int(pos)), self.engine.model.info.dim)

    def logits_at(self, pos):
        return self._vec(lib().e2h_seq_logits_at(self._live(), int(pos)), self.engine.model.info.vocab_size)

    def fork(self, k):
        """k children sharing this sequence's KV blocks."""
        arr = (ctypes.c_void_p * k)()
        self.engine._call(lib().e2h_seq_fork(self.engine._live(), self._live(), int(k), arr))
        return [self.engine._wrap(arr[i]) for i in range(k)]

    def extend(self, max_tokens=256, stop=(), stop_at_eos=True):
        self.engine.extend([self], max_tokens=max_tokens, stop=stop, stop_at_eos=stop_at_eos)
        return self

    def append(self, ids, logprobs=True, capture=None, capture_logits=False):
        """Teacher-forces ids (or text, encoded without special tokens). capture: offsets into ids whose
        hidden state (and logits) to keep. Lazy with the scheduler: computed at the next sync."""
        if isinstance(ids, str):
            ids = self.engine.model.encode(ids, add_special=False)
        a, p = _ids(ids)
        if lib().has("e2h_seq_append_ex"):
            cap, cp = _ids(capture if capture is not None else [])
            o = AppendOpts(logprobs=int(bool(logprobs)), capture=cp if len(cap) else None, n_capture=len(cap),
                           capture_logits=int(bool(capture_logits)))
            self.engine._call(lib().e2h_seq_append_ex(self.engine._live(), self._live(), p, len(a), ctypes.byref(o)))
        else:
            if capture is not None and len(capture):
                raise E2HError(4, "captures need e2h_seq_append_ex (not in this libe2h)")
            self.engine._call(lib().e2h_seq_append(self.engine._live(), self._live(), p, len(a)))
        return self

    def truncate(self, n_tokens):
        self.engine._call(lib().e2h_seq_truncate(self.engine._live(), self._live(), int(n_tokens)))
        return self

    def sync(self):
        self.engine.sync([self])
        return self

    def set_problem(self, problem):
        self.engine._call(lib().e2h_seq_set_problem(self.engine._live(), self._live(), _b(problem)))

    def score(self, is_final=False):
        """Scores the new step(s) since the previous scoring; returns the newest step's score."""
        return float(self.engine.score_new_steps([self], is_final)[0])

    @property
    def step_scores(self):
        p = P(ctypes.c_float)()
        n = int(lib().e2h_seq_step_scores(self._live(), ctypes.byref(p)))
        return _copy(p, n, np.float32) if n > 0 else np.zeros(0, dtype=np.float32)


# ---------------------------------------------------------------- PRM


class PRM(_Handle):
    """A process reward model.

    PRM(path, protocol=None, policy=None, ref_model=None, beta=0.0, quant=None, n_threads=1, kv_mem_gib=0)
      path: the PRM model (dir or gguf) or, for protocol "head", the head .safetensors (then policy is the
      policy Model, or its path). protocol None: detected from the model. The PRM owns an engine that scores
      texts (on its own model, or on the policy for "head"); Engine.attach_prm(prm) uses it for sampling."""

    def __init__(self, path, protocol=None, policy=None, ref_model=None, beta=0.0, quant=None, n_threads=1,
                 kv_mem_gib=0.0):
        self.path = str(path)
        self._own_policy = isinstance(policy, str)
        self.policy = Model(policy) if isinstance(policy, str) else policy
        self._strs = (_b(protocol), _b(ref_model), _b(quant))
        opts = PRMOpts(protocol=self._strs[0], ref_model=self._strs[1], beta=beta,
                       load=LoadOpts(self._strs[2], 0))
        out, err = ctypes.c_void_p(), ctypes.create_string_buffer(ERR_LEN)
        _check(lib().e2h_prm_load(_b(self.path), self.policy._live() if self.policy else None, ctypes.byref(opts),
                                  ctypes.byref(out), err, ERR_LEN), err.value)
        self._ptr = out.value
        self._engine_args = dict(n_threads=n_threads, kv_mem_gib=kv_mem_gib)
        self._engine = None
        self._model_view = None

    def close(self):
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        if self._ptr:
            lib().e2h_prm_free(self._ptr)
        self._ptr = None
        if self._own_policy and self.policy is not None:
            self.policy.close()

    @property
    def protocol(self):
        return lib().e2h_prm_protocol(self._live()).decode()

    @property
    def feature_layer(self):
        """The policy layer a "head" also reads (its metadata feature_layer), 0 if none; an engine it is
        attached to must be created with that feature_layer (the engine property does so)."""
        return int(lib().e2h_prm_feature_layer(self._live())) if lib().has("e2h_prm_feature_layer") else 0

    @property
    def step_delimiter(self):
        d = lib().e2h_prm_step_delimiter(self._live()) if lib().has("e2h_prm_step_delimiter") else None
        return d.decode("utf-8") if d else "\n\n"

    def split(self, solution):
        """The steps of a solution string, split as the protocol does."""
        if not lib().has("e2h_prm_split_solution"):
            return [s for s in solution.split(self.step_delimiter) if s.strip()]
        data = _b(solution)
        cap = 64
        while True:
            st, ln = (ctypes.c_size_t * cap)(), (ctypes.c_size_t * cap)()
            n = lib().e2h_prm_split_solution(self._live(), data, len(data), st, ln, cap)
            if n <= cap:
                return [data[st[i]:st[i] + ln[i]].decode("utf-8", "replace") for i in range(n)]
            cap = n

    @property
    def engine(self):
        """The engine that scores texts: over the PRM's model, or over the policy for "head"."""
        if self._engine is None:
            if self.policy is not None and self.protocol == "head":
                model = self.policy
            else:
                mp = lib().e2h_prm_model(self._live())
                if not mp:
                    raise E2HError(1, f"{self.path}: PRM has no model; pass policy=")
                model = Model(self.path, _borrowed=(mp, self))
                self._model_view = model
            fl = self.feature_layer
            self._engine = Engine(model, **self._engine_args, **({"feature_layer": fl} if fl else {}))
            self._engine.attach_prm(self)
        return self._engine

    def score(self, problem, steps):
        """Per-step scores (list of float) of steps (a list, or a solution string split by the protocol)."""
        if isinstance(steps, str):
            steps = self.split(steps)
        if not steps:
            return []
        return [float(x) for x in self.engine.score_texts(problem, steps)]

    def score_batch(self, problems, solutions):
        return [self.score(p, s) for p, s in zip(problems, solutions)]

    @property
    def tokens(self):
        """PRM tokens computed so far by this PRM's scoring engine."""
        return self._engine.prm_tokens if self._engine is not None else 0


def aggregate(scores, how="min"):
    """min / prod / mean / last of step scores (NaN for none), as the engine computes them."""
    s = [float(x) for x in scores]
    if not s:
        return math.nan
    if how == "min":
        return min(s)
    if how == "prod":
        return float(np.prod(np.asarray(s, dtype=np.float64)))
    if how == "mean":
        return sum(s) / len(s)
    if how == "last":
        return s[-1]
    raise ValueError(f"unknown aggregate {how!r}; one of {', '.join(AGGREGATES)}")


class PRMReward:
    """A reward function for RL trainers: reward(prompts, completions, **kwargs) -> list[float].

    TRL's GRPOTrainer(reward_funcs=[PRMReward(...)]) calls it with prompts and completions either as
    strings or as lists of chat messages; the problem is the last user message of the prompt and the
    solution the completion's (first assistant) content. The solution is split into steps by the PRM's
    protocol, scored, and the step scores aggregated (min / prod / mean / last). Empty solutions get
    `empty_reward`. `problem_key`: name of a dataset column (passed by TRL as a keyword) to use as the
    problem text instead of the prompt."""

    def __init__(self, prm, protocol=None, aggregate="min", empty_reward=0.0, problem_key=None, **prm_kwargs):
        if aggregate not in AGGREGATES:
            raise ValueError(f"unknown aggregate {aggregate!r}")
        self.prm = prm if isinstance(prm, PRM) else PRM(prm, protocol=protocol, **prm_kwargs)
        self.aggregate, self.empty_reward, self.problem_key = aggregate, empty_reward, problem_key
        self.__name__ = f"e2h_prm_{aggregate}"

    @staticmethod
    def _problem(prompt):
        if isinstance(prompt, str):
            return prompt
        msgs = [m for m in prompt if isinstance(m, dict)]
        users = [m for m in msgs if m.get("role") == "user"]
        return str((users or msgs)[-1].get("content", "")) if msgs else ""

    @staticmethod
    def _solution(completion):
        if isinstance(completion, str):
            return completion
        msgs = [m for m in completion if isinstance(m, dict)]
        asst = [m for m in msgs if m.get("role") == "assistant"] or msgs
        return "".join(str(m.get("content", "")) for m in asst)

    def __call__(self, prompts, completions, **kwargs):
        problems = kwargs.get(self.problem_key) if self.problem_key else None
        out = []
        for i, (p, c) in enumerate(zip(prompts, completions)):
            problem = problems[i] if problems is not None else self._problem(p)
            steps = self.prm.split(self._solution(c))
            if not steps:
                out.append(float(self.empty_reward))
                continue
            out.append(aggregate(self.prm.score(problem, steps), self.aggregate))
        return out

    def close(self):
        self.prm.close()


# ---------------------------------------------------------------- answers


def answer_extract(text):
    """The final answer of a solution ("# Answer", last \\boxed{}, "The answer is", "####"), or None."""
    d = _b(text)
    buf = ctypes.create_string_buffer(4096)
    ok = lib().e2h_answer_extract(d, len(d), buf, len(buf))
    return buf.value.decode("utf-8", "replace") if ok else None


def answer_key(answer):
    d = _b(answer)
    buf = ctypes.create_string_buffer(4096)
    ok = lib().e2h_answer_key(d, len(d), buf, len(buf))
    return buf.value.decode("utf-8", "replace") if ok else None


def answer_equal(a, b):
    x, y = _b(a), _b(b)
    return bool(lib().e2h_answer_equal(x, len(x), y, len(y)))

