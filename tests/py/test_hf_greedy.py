"""tools/hf_greedy.py reproduces the stored greedy fixtures (skipped where torch/transformers are absent)."""
import json
import os
import subprocess
import sys

import pytest

try:  # a torch wheel without its CUDA libraries raises ValueError/OSError, not ImportError
    import torch  # noqa: F401
    import transformers  # noqa: F401
except Exception as exc:  # pragma: no cover - depends on the machine
    pytest.skip(f"torch/transformers unusable here: {type(exc).__name__}: {exc}",
                allow_module_level=True)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
MODELS = os.path.join(ROOT, "tests", "fixtures", "models")


@pytest.mark.parametrize("name", ["qwen2_bf16", "llama_sharded_f32"])
def test_hf_greedy_matches_fixture(name):
    d = os.path.join(MODELS, name)
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "hf_greedy.py"), d,
                          "--ids-file", os.path.join(d, "greedy.json"), "-n", "32", "--json"],
                         capture_output=True, text=True, check=True)
    got = json.loads(out.stdout)
    with open(os.path.join(d, "greedy.json")) as f:
        want = json.load(f)
    assert got["prompt"] == want["prompt"]
    assert got["continuation"] == want["continuation"]


def test_hf_greedy_rejects_out_of_range_ids():
    d = os.path.join(MODELS, "llama2_f32")
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "hf_greedy.py"), d, "--ids", "1,100000"],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "out of range" in out.stderr
