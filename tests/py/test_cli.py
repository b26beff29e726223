"""The e2h CLI contract: flags, outputs and exit codes (other tools call these)."""
import json
import os
import subprocess

import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
E2H = os.environ.get("E2H_BIN", os.path.join(ROOT, os.environ.get("BUILD", "build"), "e2h"))
FIX = os.path.join(ROOT, "tests", "fixtures", "models")
DEFAULT = os.path.join(ROOT, "weights", "SmolLM2-135M-Instruct.Q4_1.gguf")


def run(*args, check=True):
    p = subprocess.run([E2H, *args], capture_output=True, text=True, timeout=600)
    if check:
        assert p.returncode == 0, p.stderr
    return p


@pytest.mark.parametrize("cmd", ["info", "logits", "generate", "tokenize", "detokenize", "bench"])
def test_help(cmd):
    p = run(cmd, "--help")
    assert "usage" in p.stdout.lower()


def test_top_level_help_and_unknown_command():
    assert "generate" in run("--help").stdout
    p = run("frobnicate", check=False)
    assert p.returncode == 2 and "unknown command" in p.stderr


def test_info_json():
    info = json.loads(run("info", "-m", os.path.join(FIX, "qwen2_f32"), "--json").stdout)
    assert info["arch"] == "Qwen2ForCausalLM" and info["dim"] == 72 and info["n_kv_heads"] == 2
    assert info["qkv_bias"] is True and info["tie_embeddings"] is True


def test_info_amx_reason_and_forced_amx():
    """e2h info says why AMX is not used; --kernels amx where it cannot run: exit 2 + reason."""
    m = os.path.join(FIX, "qwen2_f32")
    info = json.loads(run("info", "-m", m, "--json").stdout)
    text = run("info", "-m", m).stdout
    if "amx_int8" not in open("/proc/cpuinfo").read():
        assert "CPUID leaf 7" in info["amx_why_not"] and info["kernels"] != "amx"
        assert "amx            not used: no AMX on this CPU" in text
        for cmd in (["info", "-m", m], ["generate", "-m", m, "--ids", "1,2", "-n", "1"]):
            p = run(*cmd, "--kernels", "amx", check=False)
            assert p.returncode == 2 and "'amx'" in p.stderr and "CPUID leaf 7" in p.stderr, p.stderr
    else:  # an AMX machine: auto leaves the never-hardware-tested tile kernels opt-in
        why = info["amx_why_not"] or ""
        assert info["kernels"] != "amx" and ("opt in" in why or "self-test" in why), why


def test_logits_npy_matches_transformers(tmp_path):
    d = os.path.join(FIX, "llama3_f32")
    ids = json.load(open(os.path.join(d, "tokens.json")))["ids"]
    out = tmp_path / "l.npy"
    run("logits", "-m", d, "--ids", ",".join(map(str, ids)), "-o", str(out), "-t", "2")
    got, ref = np.load(out), np.load(os.path.join(d, "logits.npy"))
    assert got.shape == ref.shape and got.dtype == np.float32
    assert np.abs(got - ref).max() <= 1e-4


def test_generate_greedy_json_matches_transformers():
    d = os.path.join(FIX, "mistral_f32")
    g = json.load(open(os.path.join(d, "greedy.json")))
    p = run("generate", "-m", d, "--ids", ",".join(map(str, g["prompt"])), "-n",
            str(len(g["continuation"])), "--temp", "0", "--ignore-eos", "--json")
    out = json.loads(p.stdout)
    assert out["index"] == 0 and out["prompt_tokens"] == len(g["prompt"])
    assert len(out["samples"]) == 1 and out["samples"][0]["ids"] == g["continuation"]
    assert out["samples"][0]["text"] is None and out["samples"][0]["stop"] == "length"


def test_bench_depth_json():
    # -d D: each test runs after D tokens already in the sequence (pp appends to them)
    d = os.path.join(FIX, "llama2_f32")
    out = json.loads(run("bench", "-m", d, "-p", "8", "-n", "4", "-d", "20", "-r", "2", "--json").stdout)
    assert out["pp"]["n_depth"] == 20 and out["tg"]["n_depth"] == 20
    assert out["pp"]["n_tokens"] == 8 and out["tg"]["n_tokens"] == 4
    assert len(out["tg"]["tps"]) == 2 and min(out["pp"]["tps"] + out["tg"]["tps"]) > 0
    # CPU seconds of each repetition's timed part (bench/decode_roofline.py --clock cpu); a
    # run this short may read 0 where the process clock ticks coarsely
    assert len(out["tg"]["cpu_s"]) == 2 and min(out["pp"]["cpu_s"] + out["tg"]["cpu_s"]) >= 0
    table = run("bench", "-m", d, "-p", "8", "-n", "0", "-d", "20", "-r", "1").stdout
    assert "pp8 @ d20" in table


@pytest.mark.parametrize("args,needle", [
    (["bench", "-m", FIX + "/llama2_f32", "-p", "8", "-n", "4", "-d", "100000"], "context"),
    (["bench", "-m", FIX + "/llama2_f32", "-d", "-3"], "-d"),
    (["info", "-m", "/no/such/model"], "/no/such/model"),
    (["info"], "-m MODEL"),
    (["generate", "-m", FIX + "/llama2_f32", "--ids", "1,2,x"], "--ids"),
    (["generate", "-m", FIX + "/llama2_f32", "--ids", "1,2", "--temp", "abc"], "--temp"),
    (["generate", "-m", FIX + "/llama2_f32", "--ids", "1,99999"], "vocabulary"),
    (["generate", "-m", FIX + "/llama2_f32", "-p", "hello"], "tokenizer"),
    (["logits", "-m", FIX + "/llama2_f32", "--ids", ",".join(["1"] * 300), "-o", "/tmp/x.npy"], "context"),
    (["generate", "-m", FIX + "/llama2_f32", "--ids", "1", "--quant", "q3_x"], "--quant"),
    (["generate", "-m", FIX + "/llama2_f32", "--ids", "1", "-i", "x.jsonl"], "exactly one of"),
    (["generate", "-m", FIX + "/llama2_f32", "-i", "/no/such/prompts.jsonl"], "/no/such/prompts.jsonl"),
    (["generate", "-m", FIX + "/llama2_f32", "--ids", "1", "--samples", "0"], "--samples"),
    (["generate", "-m", FIX + "/llama2_f32", "--ids", "1", "--stop", ""], "--stop"),
    (["generate", "-m", FIX + "/llama2_f32", "--ids", "1", "-o", "/no/such/dir/o.jsonl"], "/no/such/dir"),
    (["generate", "-m", FIX + "/llama2_f32", "--ids", "1", "-n"], "-n needs a value"),
    (["generate", "-m", FIX + "/llama2_f32", "--ids", "1", "--frob"], "unknown option"),
    (["version", "extra"], "unexpected argument"),
])
def test_user_errors_exit_2(args, needle):
    p = run(*args, check=False)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert needle in p.stderr


needs_default = pytest.mark.skipif(not os.path.exists(DEFAULT),
                                   reason="default model absent (run `make model`)")


@needs_default
def test_default_model_stop_string_and_samples():
    p = run("generate", "-m", DEFAULT, "--chat", "-p", "Count from 1 to 20, one number per line.",
            "-n", "60", "--stop", "5", "--json", "-t", "2")
    out = json.loads(p.stdout)["samples"][0]
    # the stop string and what follows it are cut from the text, and named
    assert out["stop"] == "stop" and out["stop_string"] == "5"
    assert "4" in out["text"] and "5" not in out["text"] and out["text"].rstrip().endswith("4")
    kept = json.loads(run("generate", "-m", DEFAULT, "--chat", "-p", "Count from 1 to 20, one number per line.",
                          "-n", "60", "--stop", "5", "--json", "-t", "2", "--keep-stop").stdout)["samples"][0]
    assert kept["ids"] == out["ids"] and kept["text"].startswith(out["text"]) and "5" in kept["text"]
    assert "9" not in kept["text"]
    p = run("generate", "-m", DEFAULT, "--chat", "-p", "What is 2+2?", "-n", "16", "--temp", "0.8",
            "--samples", "3", "--seed", "4", "-t", "2")
    lines = [json.loads(l) for l in p.stdout.splitlines()]
    assert len(lines) == 1 and len(lines[0]["samples"]) == 3
    assert all(s["tokens"] >= 1 and s["logprob"] <= 0 for s in lines[0]["samples"])
    stats = _stats(p.stderr)
    assert stats["samples"] == 3 and stats["prompts"] == 1 and stats["temperature"] == pytest.approx(0.8)


def _stats(stderr):
    """The {"stats": ...} JSON line of a generate run's stderr."""
    found = [json.loads(l)["stats"] for l in stderr.splitlines() if l.startswith('{"stats"')]
    assert len(found) == 1, stderr
    return found[0]


@needs_default
def test_default_model_end_of_turn_stripped():
    """The end-of-turn token is left out of "text" by default (stop "eos"), kept with --keep-stop;
    ids, tokens and logprob count it either way."""
    args = ["generate", "-m", DEFAULT, "--chat", "-p", "Say only the word yes.", "-n", "64", "--json"]
    a = json.loads(run(*args).stdout)["samples"][0]
    b = json.loads(run(*args, "--keep-stop").stdout)["samples"][0]
    assert a["stop"] == b["stop"] == "eos" and a["ids"] == b["ids"]
    assert "<|im_end|>" not in a["text"] and b["text"] == a["text"] + "<|im_end|>"
    assert a["tokens"] == len(a["ids"])
    plain = run(*args[:-1]).stdout  # plain text: the same text
    assert plain == a["text"] + "\n"


@needs_default
def test_default_model_samples_default_to_sampling():
    """--samples K > 1 samples at temperature 0.7 unless --temp is given; an explicit --temp 0
    gives K identical greedy samples and says so on stderr."""
    args = ["generate", "-m", DEFAULT, "--chat", "-p", "Write a word.", "-n", "12", "--samples", "4", "-t", "2"]
    p = run(*args)
    samples = json.loads(p.stdout)["samples"]
    assert len({tuple(s["ids"]) for s in samples}) > 1 and "warning" not in p.stderr
    assert _stats(p.stderr)["temperature"] == pytest.approx(0.7)
    p = run(*args, "--temp", "0")
    samples = json.loads(p.stdout)["samples"]
    assert len({tuple(s["ids"]) for s in samples}) == 1
    assert "warning" in p.stderr and "greedy" in p.stderr
    # one sample stays greedy by default: the same ids as --temp 0
    one = json.loads(run("generate", "-m", DEFAULT, "--chat", "-p", "Write a word.", "-n", "12", "--json").stdout)
    assert one["samples"][0]["ids"] == samples[0]["ids"]


@needs_default
def test_default_model_batch_file(tmp_path):
    """-i: every kind of line, fields copied through, the same samples as one prompt at a time
    with seed --seed + index, streamed JSON lines, stats, progress, --parallel, --logprobs."""
    rows = [{"prompt": "The capital of France is", "id": "a"},
            {"messages": [{"role": "user", "content": "Say hi"}], "id": "b"},
            {"problem": "What is 1+1?", "answer": "2", "level": 1},
            {"question": "Tom has 3 apples and eats one. How many are left?", "seed": 99},
            {"ids": [1, 504, 3458]}]
    inp = tmp_path / "p.jsonl"
    inp.write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\n\n" +
                   "\n".join(json.dumps(r) for r in rows[2:]) + "\n")
    out = tmp_path / "o.jsonl"
    common = ["-n", "10", "--temp", "0.9", "--seed", "5", "-t", "2"]
    p = run("generate", "-m", DEFAULT, "-i", str(inp), "-o", str(out), "--samples", "2", "--logprobs", *common)
    assert p.stdout == ""
    got = [json.loads(l) for l in out.read_text().splitlines()]
    assert [g["index"] for g in got] == [0, 1, 2, 3, 4] and [g["line"] for g in got] == [1, 2, 4, 5, 6]
    assert got[0]["id"] == "a" and got[2]["answer"] == "2" and got[2]["level"] == 1
    for g in got:
        assert len(g["samples"]) == 2
        for s in g["samples"]:
            assert len(s["logprobs"]) == s["tokens"] == len(s["ids"])
            assert abs(sum(s["logprobs"]) - s["logprob"]) < 1e-3 and max(s["logprobs"]) <= 0
    stats = _stats(p.stderr)
    assert stats["prompts"] == 5 and stats["samples"] == 10
    assert stats["generated_tokens"] == sum(s["tokens"] for g in got for s in g["samples"])
    assert "5/5 prompts" in p.stderr and "tok/s" in p.stderr
    # line 0 == -p with --seed 5 + 0; line 3 has its own seed; --parallel changes nothing
    single = json.loads(run("generate", "-m", DEFAULT, "-p", rows[0]["prompt"], "--samples", "2", *common).stdout)
    assert [s["ids"] for s in single["samples"]] == [s["ids"] for s in got[0]["samples"]]
    q = json.loads(run("generate", "-m", DEFAULT, "--chat", "-p", rows[3]["question"] +
                       "\nPlease reason step by step, and put your final answer within \\boxed{}.",
                       "--samples", "2", *common[:4], "--seed", "99", "-t", "2").stdout)
    assert [s["ids"] for s in q["samples"]] == [s["ids"] for s in got[3]["samples"]]
    par = run("generate", "-m", DEFAULT, "-i", str(inp), "--samples", "2", "--parallel", "3", "--quiet", *common)
    assert [[s["ids"] for s in json.loads(l)["samples"]] for l in par.stdout.splitlines()] == \
           [[s["ids"] for s in g["samples"]] for g in got]
    assert "prompts," not in par.stderr  # --quiet: no progress line


def _bad_file(tmp_path, text):
    f = tmp_path / "bad.jsonl"
    f.write_text(text)
    return str(f)


@pytest.mark.parametrize("text,needle", [
    ('{"ids": [1, 2]}\n{"ids": [1, 2\n', "bad.jsonl:2: malformed JSON"),
    ('[1, 2]\n', "bad.jsonl:1: expected a JSON object"),
    ('{"id": 3}\n', "bad.jsonl:1: no prompt"),
    ('{"prompt": 3}\n', "bad.jsonl:1: prompt: expected a string"),
    ('{"prompt": "a", "ids": [1]}\n', "bad.jsonl:1: give only one of"),
    ('\n\n{"ids": [1, -2]}\n', "bad.jsonl:3: ids[1]"),
    ('{"ids": []}\n', "bad.jsonl:1: ids"),
    ('{"ids": [1, 1e30]}\n', "bad.jsonl:1: ids[1]"),
    ('{"messages": "hi"}\n', "bad.jsonl:1: messages"),
    ('{"messages": [{"role": "bot", "content": "x"}]}\n', "bad.jsonl:1: messages[0].role"),
    ('{"messages": [{"role": "user", "content": 1}]}\n', "bad.jsonl:1: messages[0].content"),
    ('{"ids": [1], "seed": -1}\n', "bad.jsonl:1: seed"),
    ('\n \n', "no prompts"),
    ('{"ids": [1, 2]}\n{"ids": [1, 99999]}\n', "bad.jsonl:2: ids"),   # outside the vocabulary
    ('{"prompt": "hello"}\n', "bad.jsonl:1: prompt: this model has no tokenizer"),
])
def test_batch_file_errors_exit_2(tmp_path, text, needle):
    p = run("generate", "-m", FIX + "/llama2_f32", "-i", _bad_file(tmp_path, text), "-n", "2", check=False)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert needle in p.stderr, p.stderr
    assert p.stdout == ""


def test_batch_file_ids_without_tokenizer(tmp_path):
    """A model without a tokenizer: {"ids"} lines, one load, greedy ids as --ids gives them."""
    f = _bad_file(tmp_path, '{"ids": [1, 2, 3]}\n{"ids": [4, 5], "k": [1]}\n')
    got = [json.loads(l) for l in run("generate", "-m", FIX + "/llama2_f32", "-i", f, "-n", "4").stdout.splitlines()]
    assert [g["k"] for g in got[1:]] == [[1]] and got[0]["samples"][0]["text"] is None
    one = json.loads(run("generate", "-m", FIX + "/llama2_f32", "--ids", "4,5", "-n", "4", "--json").stdout)
    assert one["samples"][0]["ids"] == got[1]["samples"][0]["ids"]
    # the same layout for one prompt and several; stats always a JSON line on stderr
    assert set(one) == set(got[0]) - {"line", "ids"} and set(one["samples"][0]) == set(got[0]["samples"][0])
    plain = run("generate", "-m", FIX + "/llama2_f32", "--ids", "4,5", "-n", "4", "--stats")
    assert plain.stdout.strip() == ",".join(map(str, one["samples"][0]["ids"]))
    assert _stats(plain.stderr)["generated_tokens"] == 4


def test_version():
    v = run("--version").stdout
    assert v.startswith("e2h ") and v.count(".") >= 2
    assert run("version").stdout == v


@pytest.mark.parametrize("ids,needle", [
    ("1,2,x", "item 3 'x' is not a token id"),
    ("1,99999", "id 99999 (item 2) is outside the vocabulary"),
    ("-5", "item 1 '-5'"),
    ("1;2", "'1;2'"),
])
def test_detokenize_errors(ids, needle):
    p = run("detokenize", "-m", os.path.join(ROOT, "tests", "fixtures", "tokenizer", "smollm.gguf"), ids, check=False)
    assert p.returncode == 2 and needle in p.stderr, p.stderr
    p = run("detokenize", "1,2", check=False)
    assert p.returncode == 2 and "-m MODEL" in p.stderr


@needs_default
def test_default_model_chat_system_and_repack():
    """The GGUF chat template's default system turn is found and used by --chat (as HF's
    apply_chat_template does for SmolLM2); the r16 copy is reported and --no-repack drops it."""
    info = json.loads(run("info", "-m", DEFAULT, "--json").stdout)
    assert info["chat_system"] == "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    assert json.loads(run("info", "-m", DEFAULT, "--json", "--no-repack").stdout)["packed_bytes"] == 0
    if "avx512_vnni" in open("/proc/cpuinfo").read():
        assert info["packed_bytes"] > 0.9 * info["weight_bytes"]
    # --chat == the explicit template with that system turn; --system "" == none
    msg = "What is 3+4?"
    sys_t = ("<|im_start|>system\n" + info["chat_system"] + "<|im_end|>\n<|im_start|>user\n" + msg +
             "<|im_end|>\n<|im_start|>assistant\n")
    a = json.loads(run("generate", "-m", DEFAULT, "--chat", "-p", msg, "-n", "4", "--json").stdout)
    b = json.loads(run("generate", "-m", DEFAULT, "-p", sys_t, "-n", "4", "--json").stdout)
    c = json.loads(run("generate", "-m", DEFAULT, "--chat", "--system", "", "-p", msg, "-n", "4", "--json").stdout)
    assert a["prompt_tokens"] == b["prompt_tokens"] and a["samples"][0]["ids"] == b["samples"][0]["ids"]
    assert c["prompt_tokens"] < a["prompt_tokens"]


@needs_default
def test_repacked_and_stored_layouts_agree(tmp_path):
    """Logits of the r16 path and of the stored-layout kernels on the default model: the same
    integer block dots in another float order. Through 30 layers of int8/f16 activation
    rounding that order noise reaches a mean |diff| of ~0.2 over the vocabulary (each path is
    ~0.19 from the f32 dequantization, as far as llama.cpp is); a wrong kernel is off by units."""
    ids = "1,9690,198,2683,359,253,5356,5646,11173,3365,7018,30,2,198,1,4093,198,8537,314,216,34"
    run("logits", "-m", DEFAULT, "--ids", ids, "-o", str(tmp_path / "a.npy"), "-t", "2")
    run("logits", "-m", DEFAULT, "--ids", ids, "-o", str(tmp_path / "b.npy"), "-t", "2", "--no-repack")
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert a.shape == b.shape == (21, 49152)
    d = np.abs(a - b)[1:]  # position 0 (BOS alone) has extreme activations in this model
    assert d.mean() < 0.35, d.mean()
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.85


def test_bad_files_name_the_problem(tmp_path):
    """#16: a directory, a NUL byte and a symlink loop are errors naming the file (exit 2),
    never an empty result with exit 0 or a misleading message."""
    tok = os.path.join(ROOT, "tests", "fixtures", "tokenizer", "smollm.gguf")
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"hello\0world")
    loop_a, loop_b = tmp_path / "loop_a", tmp_path / "loop_b"
    os.symlink(loop_b, loop_a)
    os.symlink(loop_a, loop_b)
    cases = [
        (["tokenize", "-m", tok, "-f", str(tmp_path)], "is a directory"),
        (["tokenize", "-m", tok, "-f", str(nul)], "NUL byte at offset 5"),
        (["tokenize", "-m", tok, "-f", str(loop_a)], "symbolic links"),
        (["info", "-m", str(loop_a)], "symbolic links"),
    ]
    if os.path.exists(DEFAULT):  # generate -f needs a model with a tokenizer
        cases += [(["generate", "-m", DEFAULT, "-f", str(tmp_path), "-n", "1"], "is a directory"),
                  (["generate", "-m", DEFAULT, "-f", str(nul), "-n", "1"], "NUL byte")]
    for args, needle in cases:
        p = run(*args, check=False)
        assert p.returncode == 2, (args, p.returncode, p.stdout, p.stderr)
        assert needle in p.stderr, (args, p.stderr)
        assert p.stdout.strip() == "", (args, p.stdout)


@pytest.mark.parametrize("temp", ["0", "1.5"])
def test_logprobs_are_the_models(tmp_path, temp):
    """--logprobs: each generated token's log-probability under the model (temperature 1, before
    filtering), checked against log-softmax of `e2h logits` over prompt + continuation."""
    d = os.path.join(FIX, "llama2_f32")
    prompt = [1, 15, 27, 3, 99]
    out = json.loads(run("generate", "-m", d, "--ids", ",".join(map(str, prompt)), "-n", "6", "--temp", temp,
                         "--top-k", "5", "--ignore-eos", "--logprobs", "--json", "--seed", "3").stdout)
    s = out["samples"][0]
    assert len(s["logprobs"]) == s["tokens"] == 6
    ids = prompt + s["ids"]
    run("logits", "-m", d, "--ids", ",".join(map(str, ids)), "-o", str(tmp_path / "l.npy"))
    lg = np.load(tmp_path / "l.npy").astype(np.float64)
    lsm = lg - lg.max(1, keepdims=True)
    lsm -= np.log(np.exp(lsm).sum(1, keepdims=True))
    want = [lsm[len(prompt) - 1 + i, t] for i, t in enumerate(s["ids"])]
    assert np.allclose(s["logprobs"], want, atol=1e-3), (s["logprobs"], want)
    assert abs(s["logprob"] - sum(want)) < 1e-3
