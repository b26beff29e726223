#!/usr/bin/env python3
"""The easy-to-hard job, end to end (issue #15): an evaluator trained only on easy problems
re-ranks and guides search on hard ones.

Stages (each also a command of its own; this driver only chains them):
  1  problems    tools/gen_leveled_task.py   leveled problems; hard eval set = levels 4-5
  2  labels      e2h label                   Math-Shepherd labels + hidden-state features from
                                             levels 1-3 only (and, for the comparisons, hard
                                             labels with --allow-hard: never used by the easy head)
  3  head        tools/train_head.py         the easy head (+ the all-levels upper line)
  4  evaluate    e2h search + e2h report     greedy, maj/BoN/weighted@N, beam, REBASE on the hard
                                             set, per level with bootstrap CIs, PNG

  make demo                      = stages 1 and 4 with the shipped head (weights/), small
  python3 tools/e2h_job.py --stages 1,2,3,4 --full    the whole pipeline (see README)

The last line printed compares weighted@N with the easy-trained head to maj@N on the hard
problems: the gap in accuracy and its paired-bootstrap 95% CI.
"""
import argparse
import collections
import json
import os
import random
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(REPO, "tools")
DEFAULT_POLICY = os.path.join(REPO, "weights", "SmolLM2-135M-Instruct.Q4_1.gguf")
DEFAULT_HEAD = os.path.join(REPO, "weights", "e2h_head_smollm2_easy.safetensors")
SYSTEM = os.path.join(TOOLS, "job", "system.txt")
FEWSHOT = os.path.join(TOOLS, "job", "fewshot.jsonl")
# Problem index ranges of the generator (seed 0): training problems and evaluation problems
# never overlap; levels 4-5 never reach the easy head (unique ids carry the level).
TRAIN_START, EVAL_START = 0, 100000


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(cmd, **kw):
    log("$ " + " ".join(str(c) for c in cmd))
    r = subprocess.run([str(c) for c in cmd], **kw)
    if r.returncode:
        raise SystemExit(f"e2h-job: command failed with exit code {r.returncode}: {cmd[0]} {cmd[1]}")
    return r


# ------------------------------------------------------------------ stage 1

def stage_problems(a, out):
    ev = os.path.join(out, "hard_eval.jsonl")
    sh([sys.executable, os.path.join(TOOLS, "gen_leveled_task.py"), "--seed", a.task_seed,
        "--levels", a.eval_levels, "--start", a.eval_start, "--per-level", a.per_level, "-o", ev])
    if a.problems:  # a given problems file (MATH, GSM8K) instead of the generated task
        ev = a.problems
    return ev


# ------------------------------------------------------------------ stages 2, 3

def stage_labels(a, out):
    """Step labels from easy problems (levels 1-3) and, for the comparisons only, from hard
    training problems (levels 4-5, generator indices below the evaluation ones).
    --labels checker (default): `e2h label --rollouts 0` samples solutions step by step and
    tools/step_check.py labels each step against the reference solution (the role PRM800K's
    human labelers play; the leveled task only). --labels rollouts: Math-Shepherd labels from
    rollouts forked at every step end (any task with reference answers)."""
    easy = os.path.join(out, "train_easy.jsonl")
    hard = os.path.join(out, "train_hard.jsonl")
    if a.train_problems:  # e.g. ../shared/data/math/math_train.jsonl: its own levels
        take_levels(a.train_problems, easy, (1, 2, 3), a.label_per_level)
        take_levels(a.train_problems, hard, (4, 5), a.label_hard_per_level)
        if a.labels == "checker":  # refused before any sampling when the checker cannot read it
            sys.path.insert(0, TOOLS)
            import step_check
            step_check.load_problems(easy)
    else:
        gen = [sys.executable, os.path.join(TOOLS, "gen_leveled_task.py"), "--seed", a.task_seed,
               "--start", TRAIN_START]
        sh(gen + ["--levels", "1,2,3", "--per-level", a.label_per_level, "-o", easy])
        sh(gen + ["--levels", "4,5", "--per-level", a.label_hard_per_level, "-o", hard])
    common = ["-m", a.policy] + (["--system", a.system] if a.system is not None else []) + \
        (["--fewshot", a.fewshot] if a.fewshot else []) + ["--solutions",
              a.label_solutions, "--rollouts", a.label_rollouts, "--seed", a.seed, "-t", a.threads,
              "--kv-mem", str(a.kv_mem)] + (["--feature-layer", a.feature_layer] if a.feature_layer else [])
    if a.labels == "checker":
        common += ["--max-tokens", a.max_tokens]
    for path, levels, tag, extra in ((easy, "1,2,3", "easy", []), (hard, "4,5", "hard", ["--allow-hard"])):
        pre = os.path.join(out, f"labels_{tag}" if a.labels == "rollouts" else f"samples_{tag}")
        label_run(a, [a.e2h, "label", "--problems", path, "--levels", levels] + extra + common,
                  pre, n_problems(path, levels))
        if a.labels == "checker":
            sh([sys.executable, os.path.join(TOOLS, "step_check.py"), pre, "--problems", path,
                "-o", os.path.join(out, f"labels_{tag}")])


def level_of(row):
    """A problem's level as an int (MATH writes "Level 3"), or None."""
    L = row.get("level")
    if L in (None, ""):
        return None
    try:
        return int(str(L).replace("Level ", ""))
    except ValueError:
        return None


def take_levels(src, dst, levels, per_level):
    """The first per_level problems of each of levels from src (a MATH-schema JSONL) into dst."""
    got = {L: [] for L in levels}
    for i, line in enumerate(open(src), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as ex:
            raise SystemExit(f"e2h-job: {src}:{i}: not JSON ({ex})")
        L = level_of(row) if isinstance(row, dict) else None
        if L in got and len(got[L]) < per_level:
            got[L].append(line if line.endswith("\n") else line + "\n")
    empty = [L for L, rows in got.items() if not rows]
    if empty:
        raise SystemExit(f"e2h-job: {src}: no problem of level {empty[0]} (--train-problems needs levels "
                         f"{','.join(map(str, levels))})")
    with open(dst, "w") as fo:
        for L in levels:
            fo.writelines(got[L])
    log(f"{dst}: {sum(map(len, got.values()))} problems of levels {levels} from {src}")


def n_problems(path, levels, any_level=False):
    lv = {int(v) for v in levels.split(",") if v}
    n = 0
    for line in open(path):
        if line.strip():
            L = level_of(json.loads(line))
            n += (L in lv) if L is not None else any_level
    return n


def label_run(a, cmd, pre, n):
    """e2h label cmd -o pre, in shards of --shard problems when given (e2h label --skip/--limit:
    seeds follow the file's lines, so the merged shards equal the whole run). A finished shard
    (its .npy exists) made with the same command is kept: an interrupted run resumes there."""
    if not a.shard or n <= a.shard:
        sh(cmd + ["-o", pre])
        return
    parts = []
    for k in range(0, n, a.shard):
        part = f"{pre}.part{k:05d}"
        full = cmd + ["--skip", k, "--limit", a.shard, "-o", part]
        key = " ".join(map(str, full))
        if os.path.exists(part + ".npy") and os.path.exists(part + ".cmd") and open(part + ".cmd").read() == key:
            log(f"{part}: done before, kept")
        else:
            sh(full)
            open(part + ".cmd", "w").write(key)
        parts.append(part)
    import numpy as np
    rows, xs, xl, cfg = [], [], [], None
    for part in parts:
        lines = [l for l in open(part + ".jsonl") if l.strip()]
        cfg = cfg or lines[0]
        for l in lines[1:]:
            r = json.loads(l)
            r["row"] = len(rows)
            rows.append(json.dumps(r))
        xs.append(np.load(part + ".npy"))
        if os.path.exists(part + ".layer.npy"):
            xl.append(np.load(part + ".layer.npy"))
    with open(pre + ".jsonl", "w") as fo:
        fo.write(cfg if cfg.endswith("\n") else cfg + "\n")
        for r in rows:
            fo.write(r + "\n")
    np.save(pre + ".npy", np.concatenate(xs))
    if xl:
        np.save(pre + ".layer.npy", np.concatenate(xl))
    log(f"{pre}: {len(rows)} steps from {len(parts)} shards")


def stage_head(a, out, problems):
    ev = problems  # the evaluation problems: no training id may be among them
    base = [sys.executable, os.path.join(TOOLS, "train_head.py"), "--seed", a.head_seed,
            "--kind", a.head_kind] + (["--features", a.head_features] if a.head_features else [])
    easy_head = os.path.join(out, "head_easy.safetensors")
    sh(base + [os.path.join(out, "labels_easy"), "-o", easy_head, "--hard-ids", ev,
               "--eval", os.path.join(out, "labels_hard"), "--json", os.path.join(out, "head_easy.json")])
    # the upper line: the same head trained on all levels (easy + hard training problems,
    # still none of the evaluation problems); AUC on hard steps is then in-distribution, so
    # it is measured on the held-out split of the hard training problems by train_head.
    sh(base + [os.path.join(out, "labels_easy"), os.path.join(out, "labels_hard"), "--all-levels",
               "-o", os.path.join(out, "head_all.safetensors"), "--hard-ids", ev,
               "--eval", os.path.join(out, "labels_hard"), "--json", os.path.join(out, "head_all.json")])
    compare_heads(a.head, easy_head, os.path.join(out, "labels_easy"))
    return easy_head


def compare_heads(shipped, new, labels):
    """Scores of the shipped head and the retrained one on the same steps."""
    if not os.path.exists(shipped) or os.path.abspath(shipped) == os.path.abspath(new):
        return
    import numpy as np
    from safetensors import safe_open
    sys.path.insert(0, TOOLS)
    import train_head as th
    x0 = np.load(labels + ".npy").astype(np.float64)
    sc = []
    for path in (shipped, new):
        with safe_open(path, "np") as f:
            meta = f.metadata()
            params = {k: f.get_tensor(k).astype(np.float64) for k in f.keys()}
        if int(meta["dim"]) + 1 != x0.shape[1]:
            log(f"{path}: head for dim {meta['dim']}, labels of dim {x0.shape[1] - 1}: not compared")
            return
        x = th.with_layer(x0, labels, meta)
        sc.append(th.head_scores(params, meta["kind"], th.features(x, meta["features"], int(meta["dim"]))))
    d = np.abs(sc[0] - sc[1])
    log(f"retrained head vs shipped {os.path.basename(shipped)} on {len(d)} easy steps: "
        f"max |score difference| {d.max():.2e}, mean {d.mean():.2e} "
        f"({'same head within 1e-3' if d.max() < 1e-3 else 'DIFFERENT head'})")


# ------------------------------------------------------------------ stage 4

def search(a, out, problems, method, n, head, tag):
    res = os.path.join(out, f"results_{tag}.jsonl")
    if os.path.exists(res) and not a.resume:
        os.unlink(res)
    cmd = [a.e2h, "search", "--policy", a.policy, "--problems", problems, "--method", method,
           "-n", n, "--seed", a.seed, "--temp", a.temp, "--max-tokens", a.max_tokens,
           "-o", res, "-t", a.threads, "--kv-mem", str(a.kv_mem), "--quiet"]
    if a.system is not None:
        cmd += ["--system", open(a.system[1:]).read().strip() if a.system.startswith("@") else a.system]
    if a.fewshot:
        cmd += ["--fewshot", a.fewshot]
    if method in ("beam", "dvts"):
        cmd += ["-M", a.beam_width]
    if method == "weighted":
        cmd += ["--weighted-agg", a.weighted_agg]
    if head and a.prm:
        cmd += ["--prm", a.prm] + (["--prm-protocol", a.prm_protocol] if a.prm_protocol else [])
    elif head:
        cmd += ["--prm-head", head]
    sh(cmd)
    return res


def offline_run(a, out, problems, n, temp, head, tag):
    """Stage 4 without the PRM API in e2h search: `e2h label --rollouts 0` samples n solutions
    per problem step by step (the same tree API calls) and records each step's hidden state; the
    head (numpy, the same formula as the head protocol) scores the steps. Writes a results file
    in the search schema (PLAN.md §6) so that e2h report and the tables read it alike."""
    import numpy as np
    from safetensors import safe_open
    sys.path.insert(0, TOOLS)
    import train_head as th
    pre = os.path.join(out, f"samples_{tag}")
    # greedy (n = 1) needs no step scores (its answer is its only sample): no feature layer
    fl = a.feature_layer if n > 1 else 0
    want = {"policy": a.policy, "problems": problems, "solutions": n, "temperature": float(temp),
            "seed": a.seed, "max_tokens": a.max_tokens, "feature_layer": fl}
    if a.resume and os.path.exists(pre + ".jsonl"):
        have = json.loads(open(pre + ".jsonl").readline()).get("config", {})
        diff = {k: (have.get(k, 0 if k == "feature_layer" else None), v) for k, v in want.items()
                if have.get(k, 0 if k == "feature_layer" else None) != v}
        if diff:
            raise SystemExit(f"e2h-job: --resume: {pre}.jsonl was made with another configuration "
                             + ", ".join(f"{k}: {h!r} there, {v!r} now" for k, (h, v) in diff.items()))
    nolevel = all(json.loads(l).get("level") in (None, "") for l in open(problems) if l.strip())
    if nolevel:
        log(f"{problems} has no levels: all its problems count as one level")
    if not (a.resume and os.path.exists(pre + ".npy")):
        label_run(a, [a.e2h, "label", "-m", a.policy, "--problems", problems, "--levels", a.eval_levels,
                      "--allow-hard", "--solutions", n, "--rollouts", 0, "--temp", temp, "--seed", a.seed,
                      "--max-tokens", a.max_tokens, "-t", a.threads, "--kv-mem", str(a.kv_mem)]
                  + (["--system", a.system] if a.system is not None else [])
                  + (["--fewshot", a.fewshot] if a.fewshot else []) + (["--any-level"] if nolevel else [])
                  + (["--feature-layer", fl] if fl else []),
                  pre, n_problems(problems, a.eval_levels, nolevel))
    cfg, rows, x = th.load_labels(pre)
    with safe_open(head, "np") as f:
        meta = f.metadata()
        params = {k: f.get_tensor(k).astype(np.float64) for k in f.keys()}
    if meta.get("format") != "e2h-head":
        raise SystemExit(f"e2h-job: {head} is not an e2h head (metadata format {meta.get('format')!r})")
    if int(meta["dim"]) != cfg["dim"]:
        raise SystemExit(f"e2h-job: head {head} was trained for a policy of dim {meta['dim']}; "
                         f"{a.policy} has dim {cfg['dim']}: refusing to score with it")
    zero = "0" * 32
    if zero not in (meta.get("model_id"), cfg["model_id"]) and meta.get("model_id") != cfg["model_id"]:
        raise SystemExit(f"e2h-job: head {head} was trained for model id {meta.get('model_id')}; "
                         f"{a.policy} has model id {cfg['model_id']}: refusing to score with it")
    if n == 1 and th.needs_layer(meta.get("features", "")) and not cfg.get("feature_layer"):
        sc = np.full(len(rows), np.nan)  # greedy: scores are not used to select
    elif th.needs_layer(meta.get("features", "")) and str(cfg.get("feature_layer", 0)) != meta.get("feature_layer"):
        raise SystemExit(f"e2h-job: head {head} reads layer {meta.get('feature_layer')}; {pre} has feature "
                         f"layer {cfg.get('feature_layer', 0)} (--feature-layer)")
    else:
        sc = th.head_scores(params, meta["kind"], th.features(th.with_layer(x, pre, meta), meta["features"],
                                                              cfg["dim"]))
    probs = {}
    for l in open(problems):
        if l.strip():
            j = json.loads(l)
            probs[j["unique_id"]] = j
    by = collections.OrderedDict()
    for r, s in zip(rows, sc):
        by.setdefault(r["unique_id"], collections.OrderedDict()).setdefault(r["solution"], []).append((r, float(s)))
    res = os.path.join(out, f"results_{tag}.jsonl")
    method = "greedy" if n == 1 else "weighted"
    with open(res, "w") as fo:
        fo.write(json.dumps({"config": {"policy": a.policy, "prm": head, "protocol": "head",
                             "method": method, "n": n, "m": n, "seed": a.seed, "weighted_agg": a.weighted_agg, "temperature": float(a.temp),
                             "top_p": 1, "max_tokens": a.max_tokens, "problems": problems,
                             "shard": "0/1", "source": "e2h label --rollouts 0 (offline head scoring)"}}) + "\n")
        for uid, sols in by.items():
            samples = []
            for k in sorted(sols):
                steps = sols[k]
                fin = steps[-1][0]
                ss = [s for _, s in steps]
                unscored = not np.isfinite(ss).all()  # greedy without the head's layer: null scores
                samples.append({"text": "".join(r["text"] for r, _ in steps), "steps": [r["text"] for r, _ in steps],
                                "step_scores": [None] * len(ss) if unscored else ss, "answer": fin.get("key"),
                                "key": fin.get("key"), "correct": bool(fin["hits"]),
                                "agg": {k: None for k in ("min", "prod", "mean", "last")} if unscored else
                                       {"min": min(ss), "prod": float(np.prod(ss)), "mean": float(np.mean(ss)),
                                        "last": ss[-1]},
                                "tokens": sum(r["tokens"] for r, _ in steps)})
            how = "selected" if n == 1 else "weighted"
            i = 0 if n == 1 else pick(samples, "weighted", a.weighted_agg)
            sel = samples[i] if i is not None else None
            p = probs[uid]
            fo.write(json.dumps({"unique_id": uid, "level": p.get("level"), "problem": p["problem"],
                                 "answer": p["answer"], "method": method, "n": n, "samples": samples,
                                 "selected": {"answer": sel["key"] if sel else None,
                                              "correct": bool(sel and sel["correct"])}}) + "\n")
            del how
    return res


def outcome_logprob_auc(out, n):
    """Outcome AUC of the no-head baseline: a solution's mean step log-prob (min over its steps)."""
    pre = os.path.join(out, f"samples_weighted{n}")
    if not os.path.exists(pre + ".jsonl"):
        return float("nan")
    sys.path.insert(0, TOOLS)
    import train_head as th
    rows = [json.loads(l) for l in open(pre + ".jsonl") if l.strip()][1:]
    sol = collections.OrderedDict()
    for r in rows:
        k = (r["unique_id"], r["solution"])
        sol.setdefault(k, [[], False])
        sol[k][0].append(r["mean_logprob"])
        if r["final"]:
            sol[k][1] = bool(r["hits"])
    return th.auc([min(v[0]) for v in sol.values()], [v[1] for v in sol.values()])


def checker_step_auc(problems, rows):
    """AUC of a head's step scores against tools/step_check.py's labels of the same steps, or nan
    where the problems are not the leveled task (no reference equations to check against)."""
    sys.path.insert(0, TOOLS)
    import step_check
    import train_head as th
    try:
        ref = step_check.load_problems(problems)
    except SystemExit as ex:
        log(f"no step AUC: {ex}")
        return float("nan")
    sc, lab = [], []
    for r in rows:
        rs, ans = ref[r["unique_id"]]
        for s in r["samples"]:
            for text, v in zip(s["steps"], s["step_scores"]):
                y = step_check.step_label(text, rs, ans)
                if y is not None and v is not None:
                    sc.append(v)
                    lab.append(y)
    return th.auc(sc, lab)


def read_results(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    cfg = rows[0].get("config", {}) if rows and "config" in rows[0] else {}
    return cfg, [r for r in rows if "unique_id" in r]


def pick(samples, how, agg="prod"):
    """Index of the selected sample among samples (k = all of them), or None. Weighted voting
    sums the solutions' `agg` step-score aggregate per answer (e2h search --weighted-agg)."""
    keyed = [(i, s) for i, s in enumerate(samples) if s.get("key")]
    if not keyed:
        return None
    if how == "bon":
        return max(keyed, key=lambda t: (t[1]["agg"]["min"] if t[1]["agg"]["min"] is not None
                                         else -1, -t[0]))[0]
    score = collections.defaultdict(float)
    first = {}
    for i, s in keyed:
        w = 1.0 if how == "maj" else (s["agg"][agg] or 0.0)
        score[s["key"]] += w
        first.setdefault(s["key"], i)
    best = max(score, key=lambda k: (score[k], -first[k]))
    return first[best]


def credit(samples, how, agg="prod"):
    """Expected correctness of rule `how` on all of samples, ties sharing the credit (as
    e2h report): maj / weighted vote over answer keys, bon = best min step score."""
    keyed = [s for s in samples if s.get("key")]
    if not keyed:
        return 0.0
    if how == "bon":
        sc = [s["agg"]["min"] if s["agg"]["min"] is not None else float("-inf") for s in keyed]
        top = [s for s, v in zip(keyed, sc) if v == max(sc)]
        return sum(bool(s["correct"]) for s in top) / len(top)
    score, ok = collections.defaultdict(float), {}
    for s in keyed:
        score[s["key"]] += 1.0 if how == "maj" else (s["agg"][agg] or 0.0)
        ok[s["key"]] = ok.get(s["key"], False) or bool(s["correct"])
    best = max(score.values())
    win = [k for k, v in score.items() if v == best]
    return sum(ok[k] for k in win) / len(win)


def correct_of(rows, how, agg="prod"):
    out = {}
    for r in rows:
        if how == "selected":
            out[r["unique_id"]] = float(bool(r["selected"]["correct"]))
        else:
            out[r["unique_id"]] = credit(r["samples"], how, agg)
    return out


def bootstrap(vals, b=2000, seed=0):
    rng = random.Random(seed)
    n = len(vals)
    if not n:
        return float("nan"), float("nan"), float("nan")
    means = sorted(sum(vals[rng.randrange(n)] for _ in range(n)) / n for _ in range(b))
    return sum(vals) / n, means[int(0.025 * b)], means[int(0.975 * b) - 1]


def table(lines, levels, by_level):
    w = max(len(m) for m in lines)
    head = f"{'method':<{w}}" + "".join(f"  {('L' + str(l)):>20}" for l in levels) + f"  {'hard (all)':>20}"
    print(head)
    for m, corr in lines.items():
        cells = []
        for l in levels + ["all"]:
            ids = by_level[l]
            v = [float(corr[i]) for i in ids if i in corr]
            mean, lo, hi = bootstrap(v)
            cells.append(f"{mean:5.3f} [{lo:4.2f},{hi:4.2f}]" if v else "-")
        print(f"{m:<{w}}" + "".join(f"  {c:>20}" for c in cells))


def check_head(a, head):
    """Refuses a head made for another policy (dimension or model id) before any sampling."""
    from safetensors import safe_open
    try:
        with safe_open(head, "np") as f:
            meta = f.metadata() or {}
    except Exception as ex:  # noqa: BLE001 (safetensors raises several types)
        raise SystemExit(f"e2h-job: {head}: not a readable safetensors head ({ex})")
    if meta.get("format") != "e2h-head":
        raise SystemExit(f"e2h-job: {head} is not an e2h head (metadata format {meta.get('format')!r})")
    info = json.loads(subprocess.run([a.e2h, "info", "-m", a.policy, "--json"], capture_output=True,
                                     text=True, check=True).stdout)
    if int(meta.get("dim", -1)) != info["dim"]:
        raise SystemExit(f"e2h-job: head {head} was trained for a policy of dim {meta.get('dim')}; "
                         f"{a.policy} has dim {info['dim']}: refusing to score with it")
    mid, zero = info.get("model_id"), "0" * 32
    if mid and zero not in (mid, meta.get("model_id")) and meta.get("model_id") != mid:
        raise SystemExit(f"e2h-job: head {head} was trained for model id {meta.get('model_id')}; "
                         f"{a.policy} has model id {mid}: refusing to score with it")


def stage_evaluate(a, out, problems, head):
    n = a.n
    if not a.prm:
        check_head(a, head)
        sys.path.insert(0, TOOLS)
        import train_head as th
        from safetensors import safe_open
        for h in [head] + ([a.all_levels_head] if a.all_levels_head and os.path.exists(a.all_levels_head) else []):
            with safe_open(h, "np") as f:
                meta = f.metadata() or {}
            if th.needs_layer(meta.get("features", "")):  # the samples must record the head's layer
                L = int(meta.get("feature_layer", 0))
                if a.feature_layer not in (0, L):
                    raise SystemExit(f"e2h-job: head {h} reads layer {L}, --feature-layer {a.feature_layer} given")
                a.feature_layer = L
    if a.via == "label":
        runs = {"greedy": offline_run(a, out, problems, 1, 0, head, "greedy"),
                "rerank": offline_run(a, out, problems, n, a.temp, head, f"weighted{n}")}
        if a.all_levels_head and os.path.exists(a.all_levels_head):
            # the same samples, re-scored by the all-levels head (no new sampling)
            a.resume, keep = True, a.resume
            runs["rerank_all"] = offline_run(a, out, problems, n, a.temp, a.all_levels_head, f"weighted{n}")
            os.replace(runs["rerank_all"], os.path.join(out, f"results_weighted{n}_all.jsonl"))
            runs["rerank_all"] = os.path.join(out, f"results_weighted{n}_all.jsonl")
            runs["rerank"] = offline_run(a, out, problems, n, a.temp, head, f"weighted{n}")
            a.resume = keep
        a.search_methods = ""
    else:
        runs = {"greedy": search(a, out, problems, "greedy", 1, head, "greedy"),
                "rerank": search(a, out, problems, "weighted", n, head, f"weighted{n}")}
        for m in a.search_methods.split(","):
            if m:
                runs[m] = search(a, out, problems, m, n, head, f"{m}{n}")
        if a.all_levels_head:
            runs["rerank_all"] = search(a, out, problems, "weighted", n, a.all_levels_head, f"weighted{n}_all")
    _, greedy = read_results(runs["greedy"])
    _, rr = read_results(runs["rerank"])
    lines = collections.OrderedDict()
    lines["greedy"] = correct_of(greedy, "selected")
    lines[f"maj@{n}"] = correct_of(rr, "maj")
    lines[f"bon@{n} (easy head)"] = correct_of(rr, "bon")
    lines[f"weighted@{n} (easy head)"] = correct_of(rr, "weighted", a.weighted_agg)
    lines[f"pass@{n}"] = {r["unique_id"]: any(s["correct"] for s in r["samples"]) for r in rr}
    for m in a.search_methods.split(","):
        if m:
            _, rows = read_results(runs[m])
            lines[f"{m}@{n} (easy head)"] = correct_of(rows, "selected")
    if "rerank_all" in runs:
        _, ra = read_results(runs["rerank_all"])
        lines[f"bon@{n} (all-levels head)"] = correct_of(ra, "bon")
        lines[f"weighted@{n} (all-levels head)"] = correct_of(ra, "weighted", a.weighted_agg)
    levels = sorted({r["level"] for r in rr if r.get("level") is not None})
    by_level = collections.defaultdict(list)
    for r in rr:
        by_level[r.get("level")].append(r["unique_id"])
        by_level["all"].append(r["unique_id"])
    if not levels:
        log("the problems file has no levels: everything is one level")
    print(f"\naccuracy on {len(rr)} problems (95% bootstrap CI over problems), policy "
          f"{os.path.basename(a.policy)}, head {os.path.basename(head)}")
    table(lines, levels, by_level)
    # e2h report's table and PNG (the project's report; our table above is the job's own)
    rep = shutil.which(a.e2h) or a.e2h
    png = os.path.join(out, "e2h_job.png")
    try:
        r = subprocess.run([rep, "report", "--help"], capture_output=True, text=True)
        if r.returncode == 0:
            sh([rep, "report", runs["greedy"], runs["rerank"]] +
               [runs[m] for m in a.search_methods.split(",") if m] +
               ["--weighted-agg", a.weighted_agg, "--png", png])
    except OSError:
        pass
    # the closing line: weighted@N (easy head) vs maj@N on the hard problems, paired bootstrap
    ids = [u for u in by_level["all"]]
    wv, mv = lines[f"weighted@{n} (easy head)"], lines[f"maj@{n}"]
    diff = [float(wv[u]) - float(mv[u]) for u in ids]
    d, lo, hi = bootstrap(diff, seed=1)
    summary = {"n_problems": len(ids), f"weighted@{n}": sum(wv[u] for u in ids) / len(ids),
               f"maj@{n}": sum(mv[u] for u in ids) / len(ids), "gap": d, "ci95": [lo, hi],
               "lines": {k: sum(v.values()) / max(1, len(v)) for k, v in lines.items()}}
    # does the head's solution score predict a hard sample's correctness? (outcome AUC over all
    # sampled solutions; the step labels of the hard samples are not known without rollouts)
    sys.path.insert(0, TOOLS)
    import train_head as th
    heads = [("easy head", rr)] + ([("all-levels head", read_results(runs["rerank_all"])[1])]
                                   if "rerank_all" in runs else [])
    for name, rows in heads:
        sam = [s for r in rows for s in r["samples"]]
        ok = [bool(s["correct"]) for s in sam]
        for agg in ("min", "prod", "last"):
            summary[f"auc_outcome_{agg}[{name}]"] = th.auc([s["agg"][agg] for s in sam], ok)
    for name, rows in heads:
        summary[f"auc_steps_checker[{name}]"] = checker_step_auc(problems, rows)
    sam = [s for r in rr for s in r["samples"]]
    summary["n_samples"] = len(sam)
    # a baseline without any head: fewer steps = more likely right (a product of scores < 1 favours
    # short solutions by itself)
    summary["auc_outcome_fewer_steps_baseline"] = th.auc([-len(s["steps"]) for s in sam],
                                                         [bool(s["correct"]) for s in sam])
    summary["auc_outcome_mean_logprob_baseline"] = outcome_logprob_auc(out, n)
    print("outcome AUC (solution score vs correctness, all sampled hard solutions): " + ", ".join(
        f"{k[12:]} {v:.3f}" for k, v in summary.items() if k.startswith("auc_outcome_") and v == v))
    steps = {k[18:-1]: v for k, v in summary.items() if k.startswith("auc_steps_checker[") and v == v}
    if steps:
        print("step AUC on the sampled hard steps (tools/step_check.py labels; no head saw these problems): "
              + ", ".join(f"{k} {v:.3f}" for k, v in steps.items()))
    bv, gv = lines[f"bon@{n} (easy head)"], lines["greedy"]
    bd, blo, bhi = bootstrap([float(bv[u]) - float(gv.get(u, 0.0)) for u in ids], seed=2)
    summary["bon_vs_greedy"] = {"gap": bd, "ci95": [blo, bhi]}
    json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=1)
    print(f"\nhard problems: bon@{n} with the easy-trained evaluator {sum(bv[u] for u in ids) / len(ids):.3f} "
          f"vs greedy {sum(gv.get(u, 0.0) for u in ids) / len(ids):.3f}: gap {bd:+.3f}, 95% CI [{blo:+.3f}, {bhi:+.3f}]")
    print(f"hard problems (levels {','.join(map(str, levels)) or 'n/a'}, n={len(ids)}): "
          f"weighted@{n} with the easy-trained evaluator {summary[f'weighted@{n}']:.3f} vs maj@{n} "
          f"{summary[f'maj@{n}']:.3f}: gap {d:+.3f}, 95% CI [{lo:+.3f}, {hi:+.3f}]")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stages", default="1,4", help="comma-separated stages (default 1,4)")
    ap.add_argument("--e2h", default=os.path.join(REPO, "build", "e2h"))
    ap.add_argument("--policy", default=DEFAULT_POLICY)
    ap.add_argument("--head", default=DEFAULT_HEAD, help="head for stage 4 without stage 3")
    ap.add_argument("--all-levels-head", help="also re-rank with this head (the upper line)")
    ap.add_argument("--problems", help="evaluate on this problems JSONL instead of the generated task")
    ap.add_argument("--prm", help="stage 4 with this PRM model instead of the head (e.g. the paper's OPRM)")
    ap.add_argument("--prm-protocol", help="its protocol (e.g. e2h-paper)")
    ap.add_argument("--system", default="@" + SYSTEM, help="system turn, TEXT or @FILE (default the job's)")
    ap.add_argument("--fewshot", default=FEWSHOT, help="few-shot JSONL ('' for none; default the job's)")
    ap.add_argument("--kv-mem", type=float, default=2.0)
    ap.add_argument("-o", "--out", default=os.path.join(REPO, "runs", "e2h-job"))
    ap.add_argument("--per-level", type=int, default=10, help="hard problems per level (default 10)")
    ap.add_argument("--eval-levels", default="4,5")
    ap.add_argument("--eval-start", type=int, default=EVAL_START,
                    help=f"first generator index of the evaluation problems (default {EVAL_START}; "
                         f"training problems use indices from {TRAIN_START}, fewer than {EVAL_START})")
    ap.add_argument("-n", type=int, default=16, help="N of maj/BoN/weighted/search (default 16)")
    ap.add_argument("--search-methods", default="", help="e.g. beam,rebase (default none)")
    ap.add_argument("--beam-width", type=int, default=4)
    ap.add_argument("--weighted-agg", choices=["min", "prod", "mean", "last"], default="prod",
                    help="step-score aggregate that weighted voting sums per answer (default prod, "
                         "as e2h search --weighted-agg)")
    ap.add_argument("--temp", default="0.7")
    ap.add_argument("--max-tokens", type=int, default=160)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--task-seed", type=int, default=0)
    ap.add_argument("--head-seed", type=int, default=0)
    ap.add_argument("--head-kind", default="linear")
    ap.add_argument("--head-features", default="hidden+mean_logprob+layer",
                    help="train_head.py --features of the heads stage 3 trains (default "
                         "hidden+mean_logprob+layer: the final hidden state, the step's mean log-prob "
                         "and the residual stream after --feature-layer blocks)")
    ap.add_argument("--feature-layer", type=int, default=None,
                    help="e2h label --feature-layer L: also record the residual stream after L blocks "
                         "(stage 2: default 20 when --head-features reads a layer, else 0; stage 4: "
                         "the head's own layer)")
    ap.add_argument("--shard", type=int, default=0,
                    help="run e2h label in shards of this many problems (resumable; same rows)")
    ap.add_argument("--train-problems", help="stage 2 on this MATH-schema JSONL's levels 1-3 (and 4-5 for the "
                    "all-levels head) instead of the generated task, e.g. ../shared/data/math/math_train.jsonl "
                    "with --labels rollouts; its ids must not be among the evaluation problems")
    ap.add_argument("--labels", choices=["checker", "rollouts"], default="checker",
                    help="stage 2 step labels: checker (tools/step_check.py on sampled solutions; the "
                         "leveled task) or rollouts (Math-Shepherd, e2h label --rollouts R)")
    ap.add_argument("--label-per-level", type=int, help="easy training problems per level "
                    "(default 200 with checker labels, 24 with rollouts)")
    ap.add_argument("--label-hard-per-level", type=int, help="hard training problems per level, for the "
                    "all-levels head only (default 100 / 20)")
    ap.add_argument("--label-solutions", type=int, help="sampled solutions per problem (default 16 / 4)")
    ap.add_argument("--label-rollouts", type=int, help="rollouts per step end (default 0 / 4)")
    ap.add_argument("-t", "--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--via", choices=["label", "search"], default="label",
                    help="stage 4 sampling: 'label' (e2h label --rollouts 0 + the head in numpy; "
                         "greedy, maj, BoN, weighted) or 'search' (e2h search --prm-head; also "
                         "--search-methods beam,rebase). Default label")
    ap.add_argument("--resume", action="store_true", help="append to existing results (same config)")
    a = ap.parse_args(argv)
    for k, checker, rollouts in (("label_per_level", 200, 24), ("label_hard_per_level", 100, 20),
                                 ("label_solutions", 16, 4), ("label_rollouts", 0, 4)):
        if getattr(a, k) is None:
            setattr(a, k, checker if a.labels == "checker" else rollouts)
    try:
        stages = {int(s) for s in a.stages.split(",") if s}
    except ValueError:
        ap.error("--stages: 1..4")
    if a.feature_layer is None:  # stage 2 records the layer its heads will read
        a.feature_layer = 20 if 2 in stages and "layer" in a.head_features.split("+") else 0
    if a.labels == "checker" and a.label_rollouts:
        ap.error("--labels checker labels sampled solutions: --label-rollouts must be 0")
    if not stages <= {1, 2, 3, 4}:
        ap.error("--stages: 1..4")
    for p in (a.e2h, a.policy):
        if not os.path.exists(p):
            raise SystemExit(f"e2h-job: {p} not found (make, make model)")
    if a.eval_start < max(a.label_per_level, a.label_hard_per_level):
        ap.error(f"--eval-start {a.eval_start}: the training problems use generator indices "
                 f"{TRAIN_START}..{max(a.label_per_level, a.label_hard_per_level) - 1}")
    os.makedirs(a.out, exist_ok=True)
    t0 = time.time()
    problems = stage_problems(a, a.out) if 1 in stages else (a.problems or os.path.join(a.out, "hard_eval.jsonl"))
    head = a.prm or a.head
    if 2 in stages:
        stage_labels(a, a.out)
    if 3 in stages:
        head = stage_head(a, a.out, problems)
        if not a.all_levels_head:
            a.all_levels_head = os.path.join(a.out, "head_all.safetensors")
    if 4 in stages:
        if not a.prm and not os.path.exists(head):
            raise SystemExit(f"e2h-job: head {head} not found (run stages 2,3 or give --head)")
        stage_evaluate(a, a.out, problems, head)
    log(f"done in {time.time() - t0:.0f} s; outputs in {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
