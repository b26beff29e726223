"""tools/ray_search.py: two shards as Ray tasks on a local Ray instance, merged in problem
order, equal to one unsharded run (greedy is deterministic); a rejected configuration is
not retried; --merge-only merges shard files made elsewhere (e.g. by a Slurm array)."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
E2H = os.environ.get("E2H_BIN", os.path.join(ROOT, os.environ.get("BUILD", "build"), "e2h"))
DEFAULT = os.path.join(ROOT, "weights", "SmolLM2-135M-Instruct.Q4_1.gguf")
TOOL = os.path.join(ROOT, "tools", "ray_search.py")

try:
    import ray  # noqa: F401
    HAVE_RAY = True
except Exception:  # pragma: no cover
    HAVE_RAY = False

pytestmark = [
    pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed (pip install ray==2.40.0, "
                       "tools/requirements.txt); the Ray shard runner is not tested"),
    pytest.mark.skipif(not os.path.exists(DEFAULT), reason="default model missing (run `make model`)"),
]

PROBLEMS = [{"problem": f"What is {a} + {b}?", "answer": str(a + b), "level": 1 + a % 5,
             "unique_id": f"p{a}"} for a, b in [(1, 2), (3, 4), (5, 6), (7, 8), (9, 1)]]
ARGS = ["--policy", DEFAULT, "--method", "greedy", "--max-tokens", "8"]


def rows(path):
    with open(path) as f:
        return [json.loads(x) for x in f]


def strip(r):
    return {k: v for k, v in r.items() if k != "seconds"}


def test_two_shards_on_local_ray(tmp_path):
    probs = tmp_path / "p.jsonl"
    probs.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    out = tmp_path / "merged.jsonl"
    p = subprocess.run([sys.executable, TOOL, "--shards", "2", "--num-cpus", "2", "-o", str(out),
                        "--e2h", E2H, "--", *ARGS, "--problems", str(probs)],
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr
    merged = rows(out)
    cfg = merged[0]["config"]
    assert cfg["shard"] == "*/2" and cfg["shards"] == 2 and cfg["method"] == "greedy"
    assert [r["unique_id"] for r in merged[1:]] == ["p1", "p3", "p5", "p7", "p9"]
    assert os.path.exists(tmp_path / "merged.jsonl.shards" / "shard-1-of-2.jsonl")
    # the same as one unsharded run
    single = tmp_path / "single.jsonl"
    q = subprocess.run([E2H, "search", *ARGS, "--problems", str(probs), "-o", str(single), "--quiet"],
                       capture_output=True, text=True, timeout=600)
    assert q.returncode == 0, q.stderr
    assert [strip(r) for r in rows(single)[1:]] == [strip(r) for r in merged[1:]]
    # merge-only (shard files made elsewhere) gives the same file
    out2 = tmp_path / "again.jsonl"
    p = subprocess.run([sys.executable, TOOL, "--shards", "2", "--merge-only", "-o", str(out2),
                        "--work", str(tmp_path / "merged.jsonl.shards"), "--", *ARGS,
                        "--problems", str(probs)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert rows(out2) == merged
    # a rejected configuration (M does not divide N) fails fast with exit 2
    p = subprocess.run([sys.executable, TOOL, "--shards", "2", "--num-cpus", "2", "--retries", "3",
                        "-o", str(tmp_path / "bad.jsonl"), "--e2h", E2H, "--", "--policy", DEFAULT,
                        "--method", "beam", "-n", "6", "-M", "4", "--prm-head", "x", "--problems", str(probs)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 2 and "must divide" in p.stderr, p.stderr
