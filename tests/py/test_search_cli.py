"""`e2h search` end to end with majority voting (no PRM needed) on the default SmolLM2 model:
the results JSONL schema (PLAN.md §6), resume, configuration mismatch, shards, bad lines,
MATH500 and GSM8K schemas, exit codes."""
import json
import os
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
E2H = os.environ.get("E2H_BIN", os.path.join(ROOT, os.environ.get("BUILD", "build"), "e2h"))
DEFAULT = os.path.join(ROOT, "weights", "SmolLM2-135M-Instruct.Q4_1.gguf")

pytestmark = pytest.mark.skipif(not os.path.exists(DEFAULT),
                                reason="default model missing (run `make model`)")

PROBLEMS = [
    {"problem": "What is $2+3$?", "answer": "5", "level": "Level 1", "unique_id": "t/1.json"},
    {"problem": "Compute $7 \\cdot 6$.", "answer": "42", "level": 2, "unique_id": "t/2.json"},
    {"problem": "What is $10-4$?", "answer": "6", "level": "Level 5", "unique_id": "t/3.json"},
]
FAST = ["-n", "2", "--max-tokens", "12", "--quiet"]


def run(*args):
    return subprocess.run([E2H, "search", *args], capture_output=True, text=True, timeout=600)


def write_jsonl(path, rows, extra_lines=()):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
        for x in extra_lines:
            f.write(x + "\n")


def read(path):
    with open(path) as f:
        return [json.loads(x) for x in f]


def test_maj_schema_resume_and_config(tmp_path):
    probs, out = tmp_path / "p.jsonl", tmp_path / "r.jsonl"
    write_jsonl(probs, PROBLEMS, ['{"problem": 3}', "not json"])
    p = run("--policy", DEFAULT, "--problems", str(probs), "--method", "maj", "-o", str(out), *FAST)
    assert p.returncode == 0, p.stderr
    # the two bad lines are reported with file:line and skipped
    assert f"{probs}:4:" in p.stderr and f"{probs}:5:" in p.stderr
    rows = read(out)
    cfg = rows[0]["config"]
    assert cfg["method"] == "maj" and cfg["n"] == 2 and cfg["seed"] == 42 and cfg["shard"] == "0/1"
    assert cfg["prm"] is None and cfg["policy"] == DEFAULT and cfg["max_tokens"] == 12
    assert [r["unique_id"] for r in rows[1:]] == ["t/1.json", "t/2.json", "t/3.json"]
    assert [r["level"] for r in rows[1:]] == [1, 2, 5]
    for r in rows[1:]:
        assert r["method"] == "maj" and r["n"] == 2 and len(r["samples"]) == 2
        assert set(r["selected"]) == {"answer", "correct"}
        assert r["policy_tokens"] > 0 and r["seconds"] > 0
        for s in r["samples"]:
            assert set(s) == {"text", "steps", "step_scores", "answer", "key", "correct", "agg", "tokens"}
            assert "".join(s["steps"]) == s["text"] and 1 <= s["tokens"] <= 12
            assert s["step_scores"] == [None] * len(s["steps"])  # no PRM
            assert set(s["agg"]) == {"min", "prod", "mean", "last"}
    # resume: nothing new; the file is unchanged
    before = out.read_text()
    p = run("--policy", DEFAULT, "--problems", str(probs), "--method", "maj", "-o", str(out), *FAST)
    assert p.returncode == 0 and out.read_text() == before
    # a killed run's unfinished last line is cut and that problem redone
    lines = before.splitlines(keepends=True)
    out.write_text("".join(lines[:-1]) + lines[-1][:40])
    p = run("--policy", DEFAULT, "--problems", str(probs), "--method", "maj", "-o", str(out), *FAST)
    assert p.returncode == 0, p.stderr
    def strip(rows):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    assert strip(read(out)) == strip(rows)  # same seed: the same line again
    # another configuration into the same file: exit 2 naming the field
    p = run("--policy", DEFAULT, "--problems", str(probs), "--method", "maj", "-o", str(out),
            "-n", "2", "--max-tokens", "12", "--seed", "3")
    assert p.returncode == 2 and '"seed"' in p.stderr


def test_shards_split_deterministically(tmp_path):
    probs = tmp_path / "p.jsonl"
    write_jsonl(probs, PROBLEMS)
    ids = []
    for i in range(2):
        out = tmp_path / f"r{i}.jsonl"
        p = run("--policy", DEFAULT, "--problems", str(probs), "--method", "greedy", "-o", str(out),
                "--shard", f"{i}/2", *FAST)
        assert p.returncode == 0, p.stderr
        rows = read(out)
        assert rows[0]["config"]["shard"] == f"{i}/2"
        ids.append([r["unique_id"] for r in rows[1:]])
    assert ids == [["t/1.json", "t/3.json"], ["t/2.json"]]


def test_gsm8k_schema(tmp_path):
    probs, out = tmp_path / "g.jsonl", tmp_path / "r.jsonl"
    write_jsonl(probs, [{"question": "Tom has 3 apples and buys 4 more. How many?",
                         "answer": "3 + 4 = 7\n#### 7"}])
    p = run("--policy", DEFAULT, "--problems", str(probs), "--method", "greedy", "-o", str(out), *FAST)
    assert p.returncode == 0, p.stderr
    r = read(out)[1]
    assert r["answer"] == "7" and r["level"] is None and r["unique_id"] == "line:1"
    assert len(r["samples"]) == 1


def test_math_train_schema_answer_from_solution(tmp_path):
    """MATH's train/test files have no "answer": the solution's final answer (\\boxed{}) is the
    reference; a line with neither is reported with its line number and skipped (as any bad line)."""
    probs, out = tmp_path / "p.jsonl", tmp_path / "r.jsonl"
    write_jsonl(probs, [{"problem": "What is $2+3$?", "solution": "$2+3=\\boxed{5}$.", "level": "Level 1",
                         "unique_id": "train/x/1.json"}])
    p = run("--policy", DEFAULT, "--problems", str(probs), "--method", "greedy", "-o", str(out), *FAST)
    assert p.returncode == 0, p.stderr
    assert read(out)[1]["answer"] == "5"
    write_jsonl(probs, [{"problem": "What is $2+3$?", "solution": "It is five.", "unique_id": "u"}])
    p = run("--policy", DEFAULT, "--problems", str(probs), "--method", "greedy", "-o", str(tmp_path / "s.jsonl"), *FAST)
    assert "p.jsonl:1" in p.stderr and "solution" in p.stderr and "skipped" in p.stderr, p.stderr
    assert len(read(tmp_path / "s.jsonl")) == 1  # the config line only: the bad line is reported, skipped
    # a file whose every line is bad is an error, not an empty success
    assert p.returncode == 2 and "no problem could be run" in p.stderr, p.stderr


@pytest.mark.parametrize("args,msg", [
    (["--method", "beam", "-n", "6", "-M", "4", "--prm-head", "x"], "must divide"),
    (["--method", "dvts", "-n", "4", "-M", "8", "--prm-head", "x"], "must divide"),
    (["--method", "bon", "-n", "4"], "needs a PRM"),
    (["--method", "frob", "-n", "4"], "--method"),
    (["--method", "maj", "-n", "0"], "-n"),
    (["--method", "maj", "--shard", "2/2"], "--shard"),
    (["--method", "weighted", "--weighted-agg", "max", "--prm-head", "x"], "--weighted-agg"),
    (["--method", "bon", "--bon-agg", "", "--prm-head", "x"], "--bon-agg"),
])
def test_bad_options_exit_2(tmp_path, args, msg):
    probs = tmp_path / "p.jsonl"
    write_jsonl(probs, PROBLEMS)
    p = run("--policy", DEFAULT, "--problems", str(probs), "-o", str(tmp_path / "r.jsonl"), *args)
    assert p.returncode == 2 and msg in p.stderr, p.stderr


def test_system_and_fewshot(tmp_path):
    probs, out, shots = tmp_path / "p.jsonl", tmp_path / "r.jsonl", tmp_path / "shots.jsonl"
    write_jsonl(probs, PROBLEMS[:1])
    write_jsonl(shots, [{"problem": "What is 1+1?", "solution": "1 + 1 = 2.\n\nThe answer is 2."}])
    p = run("--policy", DEFAULT, "--problems", str(probs), "--method", "greedy", "-o", str(out),
            "--system", "Be brief.", "--fewshot", str(shots), *FAST)
    assert p.returncode == 0, p.stderr
    cfg = read(out)[0]["config"]
    assert cfg["system"] == "Be brief." and cfg["fewshot"] == str(shots)
    # the few-shot prompt is longer than the plain one
    plain = tmp_path / "plain.jsonl"
    assert run("--policy", DEFAULT, "--problems", str(probs), "--method", "greedy", "-o", str(plain),
               *FAST).returncode == 0
    assert read(out)[1]["policy_tokens"] > read(plain)[1]["policy_tokens"]
    assert "system" not in read(plain)[0]["config"]
    write_jsonl(shots, [{"problem": "x"}])
    p = run("--policy", DEFAULT, "--problems", str(probs), "--method", "greedy", "-o",
            str(tmp_path / "r2.jsonl"), "--fewshot", str(shots), *FAST)
    assert p.returncode == 2 and f"{shots}:1:" in p.stderr


PRM_FIX = os.path.join(ROOT, "tests", "fixtures", "prm")


def test_beam_with_a_prm_model(tmp_path):
    """--prm: a PRM model (the e2h-paper fixture) attached to the policy scores every step."""
    probs, out = tmp_path / "p.jsonl", tmp_path / "r.jsonl"
    write_jsonl(probs, PROBLEMS[:2])
    p = run("--policy", DEFAULT, "--prm", os.path.join(PRM_FIX, "e2h_paper"), "--prm-protocol", "e2h-paper",
            "--problems", str(probs), "--method", "beam", "-n", "4", "-M", "2", "--max-tokens", "24",
            "--max-rounds", "4", "-o", str(out), "--quiet")
    assert p.returncode == 0, p.stderr
    rows = read(out)
    assert rows[0]["config"]["protocol"] == "e2h-paper" and rows[0]["config"]["m"] == 2
    for r in rows[1:]:
        assert len(r["samples"]) == 4 and r["prm_tokens"] > 0
        best = max(s["agg"]["last"] for s in r["samples"])
        for s in r["samples"]:
            assert s["step_scores"] and all(0 <= x <= 1 for x in s["step_scores"])
            assert s["agg"]["last"] == s["step_scores"][-1]
            assert abs(s["agg"]["min"] - min(s["step_scores"])) < 1e-6
        # beam selects the best last-step score
        sel = [s for s in r["samples"] if s["agg"]["last"] == best][0]
        assert r["selected"]["answer"] == sel["answer"]


def test_bon_with_a_head(tmp_path):
    """--prm-head: an e2h head on the policy's own hidden states (the fixture policy + head)."""
    probs, out = tmp_path / "p.jsonl", tmp_path / "r.jsonl"
    write_jsonl(probs, PROBLEMS[:1])
    pol = os.path.join(PRM_FIX, "policy")
    p = run("--policy", pol, "--prm-head", os.path.join(pol, "head_linear.safetensors"),
            "--problems", str(probs), "--method", "bon", "-n", "3", "--max-tokens", "16", "-o", str(out), "--quiet")
    assert p.returncode == 0, p.stderr
    rows = read(out)
    assert rows[0]["config"]["protocol"] == "head"
    r = rows[1]
    assert len(r["samples"]) == 3 and r["prm_tokens"] == 0  # the head needs no PRM forward pass
    assert all(s["step_scores"] and None not in s["step_scores"] for s in r["samples"])
    # a head for another model is refused with exit 2
    p = run("--policy", DEFAULT, "--prm-head", os.path.join(pol, "head_linear.safetensors"),
            "--problems", str(probs), "--method", "bon", "-n", "2", "-o", str(tmp_path / "x.jsonl"))
    assert p.returncode == 2, p.stderr


def test_weighted_and_bon_aggregates(tmp_path):
    """--weighted-agg / --bon-agg: the selected answer is the vote (or the best sample) by that
    aggregate of each sample's step scores, recomputed here from the samples' own agg fields; the
    config records a non-default aggregate (and a results file of another aggregate is not resumed)."""
    import collections
    probs = tmp_path / "p.jsonl"
    write_jsonl(probs, PROBLEMS)
    pol, head = DEFAULT, os.path.join(ROOT, "weights", "e2h_head_smollm2_easy.safetensors")
    n_contested = 0
    for method, flag, agg in (("weighted", "--weighted-agg", "min"), ("weighted", "--weighted-agg", "last"),
                              ("bon", "--bon-agg", "prod"), ("bon", "--bon-agg", "last")):
        out = tmp_path / f"{method}_{agg}.jsonl"
        p = run("--policy", pol, "--prm-head", head, "--problems", str(probs), "--method", method, "-n", "6",
                "--max-tokens", "96", "--temp", "1.0", "--seed", "3", flag, agg, "-o", str(out), "--quiet")
        assert p.returncode == 0, p.stderr
        rows = read(out)
        assert rows[0]["config"][flag[2:].replace("-", "_")] == agg
        for r in rows[1:]:
            keyed = [s for s in r["samples"] if s["key"]]
            if len({s["key"] for s in keyed}) < 2:
                continue
            n_contested += 1
            if method == "weighted":
                w = collections.defaultdict(float)
                for s in keyed:
                    w[s["key"]] += s["agg"][agg]
                assert w[r["selected"]["answer"]] == pytest.approx(max(w.values()), rel=1e-6)
            else:
                best = max(s["agg"][agg] for s in r["samples"])  # BoN ranks every sample
                assert any(s["agg"][agg] == best and s["key"] == r["selected"]["answer"] for s in r["samples"])
    assert n_contested >= 2  # the checks above compared different answers
    p = run("--policy", pol, "--prm-head", head, "--problems", str(probs), "--method", "weighted", "-n", "6",
            "--max-tokens", "96", "--temp", "1.0", "--seed", "3", "-o", str(tmp_path / "weighted_min.jsonl"), "--quiet")
    assert p.returncode == 2 and "config" in p.stderr.lower(), p.stderr


def tokenize(model, text, bos):
    p = subprocess.run([E2H, "tokenize", "-m", model] + ([] if bos else ["--no-bos"]) + [text],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


INSTRUCTION = ("Solve the following math problem step by step. Separate the steps with a blank line. "
               "Put the final answer in \\boxed{}.")


def chatml(system, turns):
    s = f"<|im_start|>system\n{system}<|im_end|>\n" if system else ""
    for role, text in turns:
        s += f"<|im_start|>{role}\n{text}<|im_end|>\n"
    return s + "<|im_start|>assistant\n"


def test_prompt_is_the_chat_template(tmp_path):
    """The prompt comes from the policy's chat template (e2h_model_apply_chat_turns): on SmolLM2
    it is the ChatML text search-and-learn uses, token for token (prompt_tokens counts it)."""
    probs, shots = tmp_path / "p.jsonl", tmp_path / "shots.jsonl"
    write_jsonl(probs, PROBLEMS[:1])
    shot = {"problem": "What is 1+1?", "solution": "1 + 1 = 2.\n\nThe answer is 2."}
    write_jsonl(shots, [shot])
    q = PROBLEMS[0]["problem"]
    cases = [([], chatml(INSTRUCTION, [("user", q)])),
             (["--system", ""], chatml("", [("user", q)])),
             (["--system", "Be brief.", "--fewshot", str(shots)],
              chatml("Be brief.", [("user", shot["problem"]), ("assistant", shot["solution"]), ("user", q)]))]
    for i, (args, text) in enumerate(cases):
        out = tmp_path / f"r{i}.jsonl"
        p = run("--policy", DEFAULT, "--problems", str(probs), "--method", "greedy", "-o", str(out), *args, *FAST)
        assert p.returncode == 0, p.stderr
        r = read(out)[1]
        assert r["prompt_tokens"] == len(tokenize(DEFAULT, text, bos=False)), (args, r["prompt_tokens"])
        # prompt once + the generated tokens (greedy: one sample, every token kept)
        assert r["policy_tokens"] == r["prompt_tokens"] + r["samples"][0]["tokens"]
        assert "chat" not in read(out)[0]["config"]


def test_no_chat_and_policies_without_a_chatml_template(tmp_path):
    """--no-chat gives the raw text (blank-line separated, BOS added as the tokenizer does); a
    policy without a chat template, or with a non-ChatML one, is refused with exit 2 unless
    --no-chat (the fixture policy with its template removed / replaced)."""
    probs = tmp_path / "p.jsonl"
    write_jsonl(probs, PROBLEMS[:1])
    out = tmp_path / "raw.jsonl"
    p = run("--policy", DEFAULT, "--problems", str(probs), "--method", "greedy", "-o", str(out),
            "--no-chat", *FAST)
    assert p.returncode == 0, p.stderr
    rows = read(out)
    assert rows[0]["config"]["chat"] is False
    raw = f"{INSTRUCTION}\n\n{PROBLEMS[0]['problem']}\n\n"
    assert rows[1]["prompt_tokens"] == len(tokenize(DEFAULT, raw, bos=True))
    # resuming with the chat prompt is another configuration
    p = run("--policy", DEFAULT, "--problems", str(probs), "--method", "greedy", "-o", str(out), *FAST)
    assert p.returncode == 2 and '"chat"' in p.stderr, p.stderr

    import shutil
    src = os.path.join(PRM_FIX, "policy")
    for name, template, msg in (("none", None, "has no chat template"),
                                ("other", "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}{% endfor %}",
                                 "is not ChatML")):
        pol = tmp_path / name
        shutil.copytree(src, pol)
        cfg = json.load(open(pol / "tokenizer_config.json"))
        cfg.pop("chat_template", None)
        if template:
            cfg["chat_template"] = template
        json.dump(cfg, open(pol / "tokenizer_config.json", "w"))
        p = run("--policy", str(pol), "--problems", str(probs), "--method", "greedy", "-o",
                str(tmp_path / f"{name}.jsonl"), *FAST)
        assert p.returncode == 2 and msg in p.stderr and "--no-chat" in p.stderr, p.stderr
        p = run("--policy", str(pol), "--problems", str(probs), "--method", "greedy", "-o",
                str(tmp_path / f"{name}.jsonl"), "--no-chat", *FAST)
        assert p.returncode == 0, p.stderr
        assert read(tmp_path / f"{name}.jsonl")[1]["prompt_tokens"] > 0
