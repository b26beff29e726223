"""Tests of the easy-to-hard job's tools: the leveled task generator, the head trainer (format,
determinism, the easy-only guard), and the shipped head's training ids (no level 4-5 problem)."""
import collections
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def load(name, rel):
    spec = importlib.util.spec_from_file_location(name, REPO / rel)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


gen = load("gen_leveled_task", "tools/gen_leveled_task.py")
th = load("train_head", "tools/train_head.py")


def run_gen(*args):
    return subprocess.run([sys.executable, str(REPO / "tools/gen_leveled_task.py"), *args],
                          check=True, capture_output=True, text=True).stdout


def test_generator_deterministic_and_schema():
    a = run_gen("--per-level", "5", "--seed", "3")
    assert a == run_gen("--per-level", "5", "--seed", "3")
    assert a != run_gen("--per-level", "5", "--seed", "4")
    rows = [json.loads(l) for l in a.splitlines()]
    assert len(rows) == 25
    for r in rows:
        assert set(r) >= {"problem", "answer", "level", "unique_id", "solution"}
        assert r["level"] in range(1, 6)
        assert f"/L{r['level']}/" in r["unique_id"]
        steps = r["solution"].split("\n\n")
        assert len(steps) == gen.LEVELS[r["level"]][0] + 1  # one step per operation + the answer
        assert steps[-1] == f"The answer is {r['answer']}."
        # every step's arithmetic is right, and the chain ends at the answer
        for s in steps[:-1]:
            lhs, rhs = s.split(" = ")
            expr = lhs.split(" has ")[-1]
            assert eval(expr.replace("/", "//")) == int(rhs.split()[0]), s
    assert len({r["unique_id"] for r in rows}) == 25


def test_generator_prefix_stable_and_bad_levels():
    big = run_gen("--per-level", "6", "--levels", "4").splitlines()
    small = run_gen("--per-level", "3", "--levels", "4").splitlines()
    assert big[:3] == small
    p = subprocess.run([sys.executable, str(REPO / "tools/gen_leveled_task.py"), "--levels", "0,6"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "--levels" in p.stderr


def write_labels(prefix, levels, n_per=12, dim=8, seed=0):
    """Synthetic `e2h label` output: the label is a linear function of the features."""
    rng = np.random.default_rng(seed)
    rows, xs = [], []
    w = rng.normal(size=dim)
    for lv in levels:
        for p in range(n_per):
            for s in range(3):
                x = rng.normal(size=dim + 1)
                y = float(1 / (1 + np.exp(-3 * x[:dim] @ w)) > 0.5)
                rows.append({"row": len(rows), "unique_id": f"t/L{lv}/{p}", "level": lv, "solution": 0,
                             "step": s, "final": s == 2, "soft": y, "hard": int(y), "mean_logprob": x[-1]})
                xs.append(x)
    cfg = {"config": {"model_id": "0" * 32, "dim": dim}}
    with open(f"{prefix}.jsonl", "w") as f:
        f.write(json.dumps(cfg) + "\n")
        for r in rows:
            f.write(json.dumps(r) + "\n")
    np.save(f"{prefix}.npy", np.array(xs, np.float32))


def test_train_head_format_and_determinism(tmp_path):
    from safetensors import safe_open
    write_labels(tmp_path / "easy", [1, 2, 3])
    write_labels(tmp_path / "hard", [4, 5], seed=0)
    outs = []
    for i in range(2):
        o = tmp_path / "h0.safetensors"
        th.main([str(tmp_path / "easy"), "-o", str(o), "--seed", "5", "--eval", str(tmp_path / "hard"),
                 "--json", str(tmp_path / "m0.json")])
        with safe_open(str(o), "np") as f:  # (the header's key order is not stable)
            outs.append((f.metadata(), {k: f.get_tensor(k).tobytes() for k in f.keys()}))
    assert outs[0] == outs[1]
    m = json.load(open(tmp_path / "m0.json"))
    assert m["auc_heldout_hard"] > 0.8  # a learnable synthetic task is learned
    with safe_open(str(tmp_path / "h0.safetensors"), "np") as f:
        meta = f.metadata()
        assert meta["format"] == "e2h-head" and meta["kind"] == "linear" and meta["dim"] == "8"
        assert meta["trained_levels"] == "1,2,3"
        assert f.get_tensor("w").shape == (1, 9) and f.get_tensor("b").shape == (1,)
    ids = (tmp_path / "h0.ids.txt").read_text().split()
    assert ids and all("/L4/" not in u and "/L5/" not in u for u in ids)
    th.main([str(tmp_path / "easy"), "-o", str(tmp_path / "m.safetensors"), "--kind", "mlp",
             "--hidden", "4", "--features", "hidden"])
    with safe_open(str(tmp_path / "m.safetensors"), "np") as f:
        assert f.get_tensor("w1").shape == (4, 8) and f.get_tensor("w2").shape == (1, 4)


def test_train_head_layer_features(tmp_path):
    """Features from e2h label --feature-layer (PREFIX.layer.npy): a label that depends on the layer
    only is learned by a head that reads it and not by one that reads the final hidden state."""
    from safetensors import safe_open
    write_labels(tmp_path / "e", [1, 2, 3], n_per=20)
    x = np.load(tmp_path / "e.npy")
    rows = [json.loads(l) for l in open(tmp_path / "e.jsonl")]
    rows[0]["config"]["feature_layer"] = 7
    rng = np.random.default_rng(1)
    xl = rng.normal(size=(len(x), 8)).astype(np.float32)
    y = (xl @ rng.normal(size=8) > 0).astype(float)
    with open(tmp_path / "e.jsonl", "w") as f:
        f.write(json.dumps(rows[0]) + "\n")
        for r, v in zip(rows[1:], y):
            r["soft"], r["hard"] = v, int(v)
            f.write(json.dumps(r) + "\n")
    with pytest.raises(SystemExit, match="layer.npy: missing"):
        th.main([str(tmp_path / "e"), "-o", str(tmp_path / "l.safetensors"), "--features", "layer"])
    np.save(tmp_path / "e.layer.npy", xl)
    aucs = {}
    for feat in ("hidden+mean_logprob", "layer", "hidden+mean_logprob+layer"):
        o = tmp_path / f"{feat}.safetensors"
        th.main([str(tmp_path / "e"), "-o", str(o), "--features", feat, "--json", str(tmp_path / "m.json")])
        aucs[feat] = json.load(open(tmp_path / "m.json"))["auc_heldout_hard"]
        with safe_open(str(o), "np") as f:
            meta = f.metadata()
            assert meta["feature_layer"] == ("7" if "layer" in feat else "0")
            n_in = f.get_tensor("w").shape[1]
        assert n_in == {"hidden+mean_logprob": 9, "layer": 8, "hidden+mean_logprob+layer": 17}[feat]
        # the numpy scorer of tools/e2h_job.py reads the same columns
        xx = th.with_layer(x.astype(np.float64), str(tmp_path / "e"), meta)
        assert th.features(xx, feat, 8).shape == (len(x), n_in)
    assert aucs["layer"] > 0.8 and aucs["hidden+mean_logprob+layer"] > 0.8 and aucs["hidden+mean_logprob"] < 0.7


def test_train_head_refuses_hard_rows(tmp_path):
    write_labels(tmp_path / "mixed", [2, 5])
    with pytest.raises(SystemExit, match="easy problems only"):
        th.main([str(tmp_path / "mixed"), "-o", str(tmp_path / "x.safetensors")])
    th.main([str(tmp_path / "mixed"), "-o", str(tmp_path / "x.safetensors"), "--all-levels"])
    write_labels(tmp_path / "easy", [1])
    hard = tmp_path / "hard.jsonl"
    hard.write_text(json.dumps({"unique_id": "t/L1/3", "problem": "x", "answer": "1"}) + "\n")
    with pytest.raises(SystemExit, match="are in"):
        th.main([str(tmp_path / "easy"), "-o", str(tmp_path / "y.safetensors"), "--hard-ids", str(hard)])


sc = load("step_check", "tools/step_check.py")


def test_step_check_labels():
    """The checker marks a step correct only when each equation is one of the reference's (with
    + and * operands in either order) and a stated answer is the reference answer."""
    sol = "Eva has 3 * 4 = 12 books.\n\n12 - 2 = 10 books.\n\n10 + 5 = 15 books.\n\nThe answer is 15."
    ref = sc.reference_set(sol)
    cases = {
        "Eva has 3 * 4 = 12 books.\n\n": 1,
        "4 x 3 = 12 books.\n\n": 1,            # commuted, 'x' for times
        "5 + 10 = 15 books.\n\n": 1,
        "12 - 2 = 10 books. Then 10 + 5 = 15 books.\n\n": 1,
        "2 - 12 = -10 books.\n\n": 0,          # - does not commute
        "12 - 2 = 9 books.\n\n": 0,            # wrong arithmetic
        "12 + 2 = 14 books.\n\n": 0,           # right arithmetic, not the story's operation
        "12 - 2 = 10 books. 10 + 6 = 16.\n\n": 0,  # one wrong equation spoils the step
        "The answer is 15.": 1,
        "10 + 5 = 15 books.\n\nThe answer is 16.": 0,
        "The answer is 1,5.": 1,                # digits with a thousands separator read as 15
        "Eva has some books.\n\n": None,
        "": None,
    }
    for text, want in cases.items():
        assert sc.step_label(text, ref, "15") == want, text
    # every step of every generated reference solution checks as correct
    for line in run_gen("--per-level", "20", "--seed", "7").splitlines():
        p = json.loads(line)
        r = sc.reference_set(p["solution"])
        for step in p["solution"].split("\n\n"):
            assert sc.step_label(step, r, p["answer"]) == 1, (p["unique_id"], step)


def test_step_check_cli(tmp_path):
    probs = tmp_path / "p.jsonl"
    probs.write_text(run_gen("--per-level", "1", "--levels", "1"))
    p = json.loads(probs.read_text())
    steps = [p["solution"].split("\n\n")[0] + "\n\n", "I like apples.\n\n", "9 + 9 = 17.\n\n",
             "The answer is " + p["answer"] + "."]
    cfg = {"config": {"model_id": "0" * 32, "dim": 2, "feature_layer": 3}}
    with open(tmp_path / "l.jsonl", "w") as f:
        f.write(json.dumps(cfg) + "\n")
        for i, t in enumerate(steps):
            f.write(json.dumps({"row": i, "unique_id": p["unique_id"], "level": 1, "solution": 0, "step": i,
                                "final": i == 3, "text": t, "soft": 0.0, "hard": 0}) + "\n")
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "l.npy", x)
    np.save(tmp_path / "l.layer.npy", x[:, :2] * 10)
    assert sc.main([str(tmp_path / "l"), "--problems", str(probs), "-o", str(tmp_path / "c")]) == 0
    rows = [json.loads(l) for l in open(tmp_path / "c.jsonl")]
    assert rows[0]["config"]["labels"] == "checker" and rows[0]["config"]["checker_unlabeled"] == 1
    assert [(r["step"], r["hard"], r["soft"]) for r in rows[1:]] == [(0, 1, 1.0), (2, 0, 0.0), (3, 1, 1.0)]
    assert [r["row"] for r in rows[1:]] == [0, 1, 2]
    assert np.array_equal(np.load(tmp_path / "c.npy"), x[[0, 2, 3]])
    assert np.array_equal(np.load(tmp_path / "c.layer.npy"), x[[0, 2, 3], :2] * 10)
    # train_head reads it (a head trains on checker labels like on rollout labels)
    cfg2, r2, x2 = th.load_labels(str(tmp_path / "c"))
    assert len(r2) == 3 and x2.shape == (3, 3)
    # MATH-style problems (no reference equation) and unknown problems are refused
    math = tmp_path / "math.jsonl"
    math.write_text(json.dumps({"unique_id": p["unique_id"], "solution": "So $x=2$.", "answer": "2"}) + "\n")
    with pytest.raises(SystemExit, match="no equation"):
        sc.main([str(tmp_path / "l"), "--problems", str(math), "-o", str(tmp_path / "d")])
    other = tmp_path / "other.jsonl"
    other.write_text(run_gen("--per-level", "1", "--levels", "2"))
    with pytest.raises(SystemExit, match="is not in"):
        sc.main([str(tmp_path / "l"), "--problems", str(other), "-o", str(tmp_path / "d")])


def test_auc():
    assert th.auc([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1]) == 1.0
    assert th.auc([0.4, 0.3, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert th.auc([0.5, 0.5], [0, 1]) == 0.5


def test_shipped_head_trained_on_easy_only():
    """The shipped head's training problem ids (weights/*.ids.txt) contain no level 4-5 problem:
    neither by their level tag nor against the hard problems the job evaluates on."""
    heads = sorted((REPO / "weights").glob("*easy*.ids.txt"))
    if not heads:
        pytest.skip("no shipped easy head in weights/")
    hard = {json.loads(l)["unique_id"] for l in run_gen("--per-level", "400", "--levels", "4,5").splitlines()}
    for h in heads:
        ids = h.read_text().split()
        assert ids, h
        assert not any("/L4/" in u or "/L5/" in u for u in ids), h
        assert not set(ids) & hard, h


# ------------------------------------------------------------------ e2h label (stage 2)

import os  # noqa: E402

E2H = os.environ.get("E2H_BIN", str(REPO / os.environ.get("BUILD", "build") / "e2h"))
DEFAULT = REPO / "weights" / "SmolLM2-135M-Instruct.Q4_1.gguf"
JOB = ["--system", "@" + str(REPO / "tools/job/system.txt"), "--fewshot", str(REPO / "tools/job/fewshot.jsonl")]


def e2h(*args):
    return subprocess.run([E2H, *map(str, args)], capture_output=True, text=True, timeout=600)


def test_label_bad_input(tmp_path):
    probs = tmp_path / "p.jsonl"
    probs.write_text(run_gen("--per-level", "1"))
    nolevel = tmp_path / "nolevel.jsonl"
    nolevel.write_text(json.dumps({"problem": "1+1?", "answer": "2"}) + "\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"problem": "1+1?", "answer": "2", "level": 1}) + "\n{oops\n")
    badlevel = tmp_path / "badlevel.jsonl"
    badlevel.write_text(json.dumps({"problem": "1+1?", "answer": "2", "level": "Level 9"}) + "\n")
    fix = REPO / "tests/fixtures/models/qwen2_f32"
    p = e2h("label", "-m", fix, "--problems", probs, "-o", tmp_path / "x", "--levels", "4")
    assert p.returncode == 2 and "--allow-hard" in p.stderr
    p = e2h("label", "-m", fix, "--problems", nolevel, "-o", tmp_path / "x")
    assert p.returncode == 2 and "no levels" in p.stderr
    p = e2h("label", "-m", fix, "--problems", bad, "-o", tmp_path / "x")
    assert p.returncode == 2 and "bad.jsonl:2" in p.stderr
    p = e2h("label", "-m", fix, "--problems", badlevel, "-o", tmp_path / "x")
    assert p.returncode == 2 and "badlevel.jsonl:1" in p.stderr and "level" in p.stderr
    p = e2h("label", "-m", fix, "--problems", probs, "-o", tmp_path / "x")  # no tokenizer/template
    assert p.returncode == 2 and "tokenizer" in p.stderr
    p = e2h("label", "-m", fix, "--problems", probs, "-o", tmp_path / "x", "--rollouts", "999")
    assert p.returncode == 2 and "--rollouts" in p.stderr


@pytest.mark.skipif(not DEFAULT.exists(), reason="default model absent (make model)")
def test_label_smollm2_labels_and_determinism(tmp_path):
    probs = tmp_path / "p.jsonl"
    probs.write_text(run_gen("--per-level", "1", "--levels", "1,4"))
    outs = []
    for i in range(2):  # the second run also keeps layer 20 (--feature-layer): nothing else changes
        p = e2h("label", "-m", DEFAULT, "--problems", probs, "-o", tmp_path / f"l{i}", "--solutions", "2",
                "--rollouts", "2", "--max-tokens", "64", "-t", "2" if i else "1", *JOB,
                *(["--feature-layer", "20"] if i else []))
        assert p.returncode == 0, p.stderr
        txt = (tmp_path / f"l{i}.jsonl").read_text()
        assert json.loads(txt.splitlines()[0])["config"]["feature_layer"] == (20 if i else 0)
        outs.append(((tmp_path / f"l{i}.npy").read_bytes(), txt.replace('"feature_layer": 20', '"feature_layer": 0')))
    assert outs[0] == outs[1]  # same seed, same labels and features, whatever the threads
    assert not (tmp_path / "l0.layer.npy").exists()
    xl, xf = np.load(tmp_path / "l1.layer.npy"), np.load(tmp_path / "l1.npy")
    assert xl.shape == (xf.shape[0], 576) and np.isfinite(xl).all()
    assert np.abs(xl - xf[:, :576]).max() > 1e-2  # a raw residual stream, not the final-normed state
    p = e2h("label", "-m", DEFAULT, "--problems", probs, "-o", tmp_path / "bad", "--feature-layer", "31", *JOB)
    assert p.returncode == 2 and "--feature-layer" in p.stderr and "0..30" in p.stderr
    rows = [json.loads(l) for l in outs[0][1].splitlines()]
    cfg, steps = rows[0]["config"], rows[1:]
    assert cfg["dim"] == 576 and len(cfg["model_id"]) == 32 and cfg["levels"] == [1, 2, 3]
    assert steps and all(s["level"] == 1 for s in steps)  # the level-4 problem is not labelled
    x = np.load(tmp_path / "l0.npy")
    assert x.shape == (len(steps), 577) and np.isfinite(x).all()
    for s in steps:
        assert 0 <= s["hits"] <= s["rollouts"] and s["soft"] == pytest.approx(s["hits"] / s["rollouts"], abs=1e-6)
        assert s["hard"] == int(s["hits"] > 0)
        assert s["final"] or s["text"].endswith("\n\n")
        assert "<|im_end|>" not in s["text"]
        assert s["rollouts"] == (1 if s["final"] else 2)
    # every solution ends with exactly one final step
    finals = collections.Counter((s["unique_id"], s["solution"]) for s in steps if s["final"])
    assert set(finals.values()) == {1} and len(finals) == 2


@pytest.mark.skipif(not DEFAULT.exists(), reason="default model absent (make model)")
def test_job_refuses_head_of_another_model(tmp_path):
    """A head trained for another policy is refused (with the reason) before any sampling."""
    head = REPO / "tests/fixtures/prm/policy/head_linear.safetensors"
    if not head.exists():
        pytest.skip("PRM fixtures absent")
    p = subprocess.run([sys.executable, str(REPO / "tools/e2h_job.py"), "--e2h", E2H, "--head", str(head),
                        "--per-level", "1", "-o", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "dim 48" in p.stderr and "refusing" in p.stderr


def test_head_sweep_smoke(tmp_path):
    """tools/head_sweep.py on synthetic labels: the easy head, the all-levels head on ITS held-out hard
    problems, and the learning curve are measured (a learnable task is learned)."""
    head_sweep = load("head_sweep", "tools/head_sweep.py")
    write_labels(tmp_path / "easy", [1, 2, 3], n_per=20)
    write_labels(tmp_path / "hard", [4, 5], n_per=20)
    assert head_sweep.main(["--easy", str(tmp_path / "easy"), "--hard", str(tmp_path / "hard"), "--seeds", "0",
                            "--configs", "linear hidden+lp (shipped)", "--json", str(tmp_path / "s.json")]) == 0
    r = json.load(open(tmp_path / "s.json"))["results"]["linear hidden+lp (shipped)"]
    assert r["easy_heldout"][0] > 0.8 and r["hard"][0] > 0.8 and r["all_levels_hard"][0] > 0.8
    assert head_sweep.main(["--easy", str(tmp_path / "easy"), "--hard", str(tmp_path / "hard"), "--seeds", "0",
                            "--configs", "linear hidden", "--fractions", "0.5,1", "--json", str(tmp_path / "c.json")]) == 0
    c = json.load(open(tmp_path / "c.json"))["results"]
    assert c["linear hidden @ 1"]["n_problems"] == 60 and 0 < c["linear hidden @ 0.5"]["n_problems"] < 60


@pytest.mark.skipif(not DEFAULT.exists(), reason="default model absent (make model)")
def test_job_checker_labels_end_to_end(tmp_path):
    """Stages 1-4 with checker labels on a few problems: the easy head trains on levels 1-3 only
    (ids), the all-levels head on 1-5, stage 4 reports the step AUC against the checker and the
    two closing lines; an evaluation range overlapping the training problems is refused."""
    from safetensors import safe_open
    job = [sys.executable, str(REPO / "tools/e2h_job.py"), "--e2h", E2H, "-o", str(tmp_path), "-t", "2",
           "--label-per-level", "4", "--label-hard-per-level", "2", "--label-solutions", "2", "-n", "2",
           "--per-level", "2", "--max-tokens", "64"]
    p = subprocess.run(job + ["--stages", "1,2,3,4"], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "step_check:" in p.stderr and "labels_easy" in p.stderr
    for name, levels in (("head_easy", "1,2,3"), ("head_all", "1,2,3,4,5")):
        with safe_open(str(tmp_path / f"{name}.safetensors"), "np") as f:
            meta = f.metadata()
        assert meta["trained_levels"] == levels and meta["features"] == "hidden+mean_logprob+layer"
        assert meta["feature_layer"] == "20"
    ids = (tmp_path / "head_easy.ids.txt").read_text().split()
    assert ids and not any("/L4/" in u or "/L5/" in u for u in ids)
    rows = [json.loads(l) for l in open(tmp_path / "labels_easy.jsonl")][1:]
    assert rows and all(r["label_source"] == "checker" and r["hard"] in (0, 1) for r in rows)
    s = json.load(open(tmp_path / "summary.json"))
    assert "auc_steps_checker[easy head]" in s and "bon_vs_greedy" in s and s["n_problems"] == 4
    assert "bon@2 with the easy-trained evaluator" in p.stdout and "weighted@2 with the easy-trained" in p.stdout
    p = subprocess.run(job + ["--stages", "1", "--eval-start", "3"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--eval-start" in p.stderr


def math_like(tmp_path, name, rows):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.skipif(not DEFAULT.exists(), reason="default model absent (make model)")
def test_job_train_problems_math_schema(tmp_path):
    """--train-problems: stage 2 takes levels 1-3 (and 4-5) of a MATH-schema file ("Level N", the
    answer from the solution's \\boxed{} when there is no "answer" field, as MATH's train file);
    the checker refuses it before sampling; evaluation problems among the training ids are refused."""
    rows = [{"problem": f"What is {a} + {a}?", "solution": f"{a} + {a} = {2 * a}. So \\boxed{{{2 * a}}}.",
             "level": f"Level {1 + a % 5}", "unique_id": f"m/{a}.json"} for a in range(1, 16)]
    train = math_like(tmp_path, "train.jsonl", rows)
    ev = math_like(tmp_path, "eval.jsonl", [dict(rows[0], unique_id="m/eval.json", level="Level 4")])
    job = [sys.executable, str(REPO / "tools/e2h_job.py"), "--e2h", E2H, "-o", str(tmp_path / "o"), "-t", "2",
           "--train-problems", str(train), "--label-per-level", "2", "--label-hard-per-level", "1",
           "--label-solutions", "2", "--max-tokens", "48", "--system", "", "--fewshot", ""]
    p = subprocess.run(job + ["--stages", "2,3", "--labels", "rollouts", "--label-rollouts", "2", "--problems",
                              str(ev)], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    ids = (tmp_path / "o" / "head_easy.ids.txt").read_text().split()
    want = [r["unique_id"] for r in rows if r["level"] in ("Level 1", "Level 2", "Level 3")]
    assert sorted(ids) == sorted(u for L in (1, 2, 3)
                                 for u in [r["unique_id"] for r in rows if r["level"] == f"Level {L}"][:2])
    assert len(ids) == 6 and set(ids) <= set(want)
    lab = [json.loads(l) for l in open(tmp_path / "o" / "labels_easy.jsonl")][1:]
    assert lab and all(r["rollouts"] >= 1 for r in lab)
    p = subprocess.run(job + ["--stages", "2", "--labels", "checker"], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and 'no field "answer"' in p.stderr and "e2h label" not in p.stderr
    p = subprocess.run(job + ["--stages", "3", "--labels", "rollouts", "--problems", str(train)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "are in" in p.stderr
    bad = math_like(tmp_path, "bad.jsonl", [{"problem": "x?", "solution": "no answer here", "level": 1}])
    p = e2h("label", "-m", DEFAULT, "--problems", bad, "-o", tmp_path / "b", *JOB)
    assert p.returncode == 2 and "bad.jsonl:1" in p.stderr and "solution" in p.stderr
