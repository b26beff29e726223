"""ctypes access to e2h's answer functions (libe2h.so): extract, key, equal.

The library is found at $E2H_LIB, else <repo>/build/libe2h.so (build it with `make lib`).
"""
import ctypes
import os

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class E2HAnswers:
    def __init__(self, path=None):
        path = path or os.environ.get("E2H_LIB") or os.path.join(_REPO, "build", "libe2h.so")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: libe2h.so not found (run `make lib` or set E2H_LIB)")
        self.lib = ctypes.CDLL(path)
        for name in ("e2h_answer_extract", "e2h_answer_key"):
            f = getattr(self.lib, name)
            f.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
            f.restype = ctypes.c_int
        self._buf = ctypes.create_string_buffer(1 << 16)  # reused output buffer (grown on demand)
        f = self.lib.e2h_answer_equal
        f.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
        f.restype = ctypes.c_int

    def extract(self, text):
        """The final answer of a solution, or None."""
        b = text.encode("utf-8", "replace")
        if len(b) + 1 > len(self._buf):
            self._buf = ctypes.create_string_buffer(len(b) + 1)
        if not self.lib.e2h_answer_extract(b, len(b), self._buf, len(self._buf)):
            return None
        return self._buf.value.decode("utf-8", "replace")

    def key(self, answer):
        b = answer.encode("utf-8", "replace")
        cap = 4 * len(b) + 256
        if cap > len(self._buf):
            self._buf = ctypes.create_string_buffer(cap)
        if not self.lib.e2h_answer_key(b, len(b), self._buf, len(self._buf)):
            return None
        return self._buf.value.decode("utf-8", "replace")

    def equal(self, a, b):
        x, y = a.encode("utf-8", "replace"), b.encode("utf-8", "replace")
        return bool(self.lib.e2h_answer_equal(x, len(x), y, len(y)))

    def check(self, pred_text, ref):
        """Grades a predicted solution (or answer) against a reference answer, as `e2h answer
        --pred --ref` does: a one-line prediction that keys entirely as math is the answer itself,
        anything else is a solution whose final answer is extracted."""
        if "\n" not in pred_text:
            k = self.key(pred_text)
            if k is not None and "S:" not in k:
                return self.equal(pred_text, ref)
        ans = self.extract(pred_text)
        return self.equal(ans if ans is not None else pred_text, ref)
