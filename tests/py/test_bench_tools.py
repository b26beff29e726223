"""Tests of the benchmark tooling: tools/write_random_gguf.py, bench/vs_llamacpp.py's parsing
and byte accounting, and build*/bench/membw's JSON line."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SPM_VOCAB = REPO.parent / "shared/assets/tokenizers/ggml-vocab-llama-spm.gguf"
gguf = pytest.importorskip("gguf")


def load(name, rel):
    spec = importlib.util.spec_from_file_location(name, REPO / rel)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up here
    spec.loader.exec_module(mod)
    return mod


wrg = load("write_random_gguf", "tools/write_random_gguf.py")
vsl = load("vs_llamacpp", "bench/vs_llamacpp.py")

SMALL = ["--preset", "llama2-7b", "--dim", "96", "--layers", "2", "--heads", "3",
         "--kv-heads", "1", "--ffn", "160"]


@pytest.fixture(scope="module", params=["q4_0", "q8_0", "q4_1"])
def small_model(request, tmp_path_factory):
    if not SPM_VOCAB.exists():
        pytest.skip(f"{SPM_VOCAB} missing (../shared/ is needed)")
    out = tmp_path_factory.mktemp("gguf") / f"small-{request.param}.gguf"
    assert wrg.main(SMALL + ["--type", request.param, "-o", str(out)]) == 0
    return request.param, out


def test_random_gguf_shapes_types_and_scale(small_model):
    qtype, path = small_model
    r = gguf.GGUFReader(path)
    t = {x.name: x for x in r.tensors}
    assert len(t) == 1 + 2 * 9 + 2  # token_embd, 9 per layer, output_norm, output
    q = t["blk.1.attn_k.weight"]
    assert q.tensor_type.name == qtype.upper()
    assert [int(x) for x in q.shape] == [96, 32]  # ne0 = in (dim), ne1 = kv_heads * head_dim
    assert [int(x) for x in t["blk.0.ffn_down.weight"].shape] == [160, 96]
    w = gguf.quants.dequantize(t["blk.0.ffn_up.weight"].data, t["blk.0.ffn_up.weight"].tensor_type)
    assert w.shape == (160, 96)
    assert abs(float(w.std()) - 0.02) < 0.004  # ~N(0, 0.02)-sized weights
    # q4_0's nibbles minus 8 are centred on -0.5: a -0.5 d bias is inherent to the format
    assert abs(float(w.mean())) < (0.003 if qtype == "q4_0" else 0.001)
    assert np.all(t["output_norm.weight"].data == 1.0)
    f = r.fields
    assert f["general.architecture"].contents() == "llama"
    assert f["llama.attention.head_count_kv"].contents() == 1
    assert f["llama.rope.dimension_count"].contents() == 32
    assert len(f["tokenizer.ggml.tokens"].data) == 32000
    ref = gguf.GGUFReader(SPM_VOCAB).fields
    assert f["tokenizer.ggml.tokens"].contents(slice(0, 300)) == \
        ref["tokenizer.ggml.tokens"].contents(slice(0, 300))
    assert f["tokenizer.ggml.scores"].contents(slice(0, 300)) == \
        ref["tokenizer.ggml.scores"].contents(slice(0, 300))


def test_bytes_per_token_untied(small_model):
    qtype, path = small_model
    facts = vsl.weight_bytes_per_token(path)
    be, bb = {"q4_0": (32, 18), "q8_0": (32, 34), "q4_1": (32, 20)}[qtype]
    row = 96 // be * bb
    layer = (96 * row + 32 * row * 2 + 96 * row + 160 * row * 2 + 96 * (160 // be * bb)
             + 2 * 96 * 4)
    expect = 2 * layer + 96 * 4 + 32000 * row + row  # layers, output_norm, output, 1 embd row
    assert not facts["tied"]
    assert facts["bytes_per_token"] == expect


def test_impossible_shape_is_an_error(tmp_path):
    with pytest.raises(SystemExit) as e:
        wrg.main(SMALL[:2] + ["--dim", "100", "--type", "q8_0", "-o", str(tmp_path / "x.gguf")])
    assert "dim 100" in str(e.value)
    assert not (tmp_path / "x.gguf").exists()


def test_vocab_mismatch_names_file_and_field(tmp_path):
    if not SPM_VOCAB.exists():
        pytest.skip("../shared/ missing")
    with pytest.raises(SystemExit) as e:
        wrg.main(SMALL + ["--vocab", "1000", "--type", "q8_0", "-o", str(tmp_path / "x.gguf")])
    assert "tokenizer.ggml.tokens" in str(e.value) and "ggml-vocab-llama-spm" in str(e.value)


@pytest.mark.parametrize("records", [
    [{"pp": {"test": "pp512", "n_tokens": 512, "tps_mean": 100.0, "tps_std": 2.0,
             "tps": [98.0, 102.0]},
      "tg": {"test": "tg128", "n_tokens": 128, "tps_mean": 10.0, "tps_std": 0.5,
             "tps": [9.5, 10.5]}}],
    [{"n_prompt": 512, "n_gen": 0, "avg_ts": 100.0, "stddev_ts": 2.0},
     {"n_prompt": 0, "n_gen": 128, "avg_ts": 10.0, "stddev_ts": 0.5}],
    [{"pp_tok_s": 100.0, "pp_tok_s_std": 2.0, "tg_tok_s": 10.0, "tg_tok_s_std": 0.5}],
    [{"prefill": {"tok_s_mean": 100.0, "tok_s_std": 2.0},
      "decode": {"tok_s_mean": 10.0, "tok_s_std": 0.5}}],
])
def test_e2h_bench_json_layouts(records):
    assert vsl.e2h_extract(records, "pp") == (100.0, 2.0)
    assert vsl.e2h_extract(records, "tg") == (10.0, 0.5)


def test_e2h_bench_json_without_numbers():
    assert vsl.e2h_extract([{"model": "x", "n_prompt": 512}], "pp") is None


def test_vs_llamacpp_e2h_half_with_depth(small_model, tmp_path):
    # the e2h half end to end (llama.cpp is not needed): -d reaches e2h bench, each baseline
    # gets its own row, and the table names the test at its depth
    exe = REPO / "build" / "e2h"
    if not exe.exists():
        pytest.skip("build/e2h missing (make)")
    _, path = small_model
    out = tmp_path / "r.json"
    rc = vsl.main(["--models", str(path), "--threads", "1", "-p", "8", "-n", "4", "-d", "16", "-r", "1",
                   "--no-llama", "--membw-gbs", "1:10", "--e2h", str(exe), "--json-out", str(out),
                   "--llama-path", "", "--llama-path", str(tmp_path)])
    assert rc == 0
    rep = json.loads(out.read_text())
    assert rep["depth"] == 16 and len(rep["rows"]) == 4  # (pp, tg) x 2 baselines
    (m,) = rep["models"].values()
    e = m["rounds"][0]["e2h"]["1"]
    assert "-d" in e["cmd"] and e["cmd"][e["cmd"].index("-d") + 1] == "16"
    assert e["raw"][0]["tg"]["n_depth"] == 16 and e["pp"][0] > 0
    assert vsl.test_name("tg", 8, 4, 16) == "tg4@d16" and vsl.test_name("pp", 8, 4, 0) == "pp8"


def test_decode_roofline_ab_both_clocks(small_model, tmp_path):
    # bench/decode_roofline.py end to end on a tiny model: membw around every round, two
    # binaries (here the same one) side by side, % of roofline from the GGUF's bytes per token;
    # --clock cpu uses e2h bench's cpu_s and membw --cpu-clock
    exe, mb = REPO / "build" / "e2h", vsl.find_membw_bin()
    if not exe.exists() or mb is None:
        pytest.skip("build/e2h or build*/bench/membw missing (make all)")
    _, path = small_model
    for clock in ("wall", "cpu"):
        out = tmp_path / f"{clock}.json"
        p = subprocess.run([sys.executable, str(REPO / "bench/decode_roofline.py"), "-m", str(path),
                            "--e2h", str(exe), "--e2h", str(exe), "--threads", "1", "-n", "4",
                            "--rounds", "2", "--clock", clock, "--membw-mib", "16", "--json-out", str(out)],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        rep = json.loads(out.read_text())
        assert rep["clock"] == clock and rep["bytes_per_token"] == vsl.weight_bytes_per_token(path)["bytes_per_token"]
        rounds = rep["e2h"]["1"][str(exe)]
        assert len(rounds) == 4 and all(tps > 0 and gbs > 0 and pct > 0 for tps, gbs, pct in rounds)
        assert len(rep["membw"]["1"]) == 2 and "second/first tok/s per round" in p.stdout
    bad = subprocess.run([sys.executable, str(REPO / "bench/decode_roofline.py"), "-m", str(path),
                          "--threads", "1,2", "--clock", "cpu"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--clock cpu" in bad.stderr


def test_membw_cpu_clock():
    exe = vsl.find_membw_bin()
    if exe is None:
        pytest.skip("no build*/bench/membw (make bench)")
    p = subprocess.run([str(exe), "--size-mib", "16", "--l3-mib", "0", "--reps", "1", "--threads", "1",
                        "--cpu-clock", "--json"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    rec = json.loads(p.stdout.strip().splitlines()[-1])
    assert rec["clock"] == "cpu" and rec["dram_gbs"]["1"] > 0.1


def test_membw_json_line():
    exe = vsl.find_membw_bin()
    if exe is None:
        pytest.skip("no build*/bench/membw (make bench)")
    p = subprocess.run([str(exe), "--size-mib", "16", "--l3-mib", "2", "--reps", "1",
                        "--threads", "1,2", "--json"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    rec = json.loads(p.stdout.strip().splitlines()[-1])
    assert set(rec["dram_gbs"]) == {"1", "2"} and all(v > 0.1 for v in rec["dram_gbs"].values())
    assert rec["l3_gbs"]["1"] > 0.1
    bad = subprocess.run([str(exe), "--threads", "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--threads" in bad.stderr


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
