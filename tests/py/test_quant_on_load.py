"""--quant q8_0|q4_0|q4_k on a Hugging Face model: logits stay close to the f32 model's.

A random Llama with block-aligned sizes (dim 256, ffn 512) is written with tools/make_random_hf.py;
e2h's f32 logits are themselves checked against the numpy reference forward of the consistency
test elsewhere, so here the quantized logits are compared with the f32 ones: the error must shrink
with the bits (q8_0 < q4_k <= q4_0 bounds) and the argmax must mostly agree.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
E2H = os.environ.get("E2H_BIN", os.path.join(ROOT, os.environ.get("BUILD", "build"), "e2h"))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("q") / "m"
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_random_hf.py"), str(d),
                    "--layers", "2", "--dim", "256", "--ffn", "512", "--heads", "4",
                    "--kv-heads", "2", "--vocab", "300"], check=True, capture_output=True)
    return str(d)


def logits(model, quant, tmp_path):
    ids = ",".join(str((i * 37 + 5) % 300) for i in range(40))
    out = tmp_path / f"{quant}.npy"
    args = [E2H, "logits", "-m", model, "--ids", ids, "-o", str(out), "-t", "2"]
    if quant != "none":
        args += ["--quant", quant]
    p = subprocess.run(args, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return np.load(out)


@pytest.mark.parametrize("quant,max_rel", [("q8_0", 0.03), ("q4_k", 0.25), ("q4_0", 0.3)])
def test_quantized_logits_close_to_f32(model, tmp_path, quant, max_rel):
    ref = logits(model, "none", tmp_path)
    got = logits(model, quant, tmp_path)
    rel = np.sqrt(((got - ref) ** 2).mean() / (ref ** 2).mean())
    corr = np.corrcoef(got.ravel(), ref.ravel())[0, 1]
    print(quant, "rms rel err", rel, "corr", corr)
    assert rel < max_rel
    assert corr > 1 - max_rel / 5
    assert not np.array_equal(got, ref)  # the quantization really happened


def test_quant_unaligned_rows_is_a_clear_error():
    d = os.path.join(ROOT, "tests", "fixtures", "models", "llama2_f32")  # hidden 72
    p = subprocess.run([E2H, "logits", "-m", d, "--ids", "1,2", "-o", "/tmp/e2h_q.npy",
                        "--quant", "q8_0"], capture_output=True, text=True)
    assert p.returncode == 2 and "multiple of" in p.stderr
