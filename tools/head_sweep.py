#!/usr/bin/env python3
"""Which evaluator? Trains tools/train_head.py heads of several kinds on the easy labels and measures each
by the step-classification AUC (hard label: any rollout reaches the answer) on held-out EASY problems
and on HARD (level 4-5) training problems, averaged over seeds (the seed sets the 80/20 problem split and
the initialization), plus, with --samples, the outcome AUC on sampled hard solutions (solution score =
min / product / last step score vs the solution's correctness).

The easy-to-hard comparison of the paper: the same head trained on all levels (--all-levels, hard
training problems included) measured on the hard problems ITS split held out; the easy head on the same
hard problems.

usage: python3 tools/head_sweep.py --easy runs/e2h-job/labels_easy --hard runs/e2h-job/labels_hard \\
         [--samples runs/e2h-job/samples_weighted16] [--seeds 0,1,2] [--configs NAME,...] [--json OUT]
Labels from e2h label (--feature-layer L for the configs that read the layer).
"""
import argparse
import collections
import contextlib
import io
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_head as th  # noqa: E402

# name: train_head.py arguments
CONFIGS = collections.OrderedDict([
    ("linear hidden+lp (shipped)", ["--features", "hidden+mean_logprob"]),
    ("linear hidden", ["--features", "hidden"]),
    ("linear layer", ["--features", "layer"]),
    ("linear layer+lp", ["--features", "layer+mean_logprob"]),
    ("linear hidden+lp+layer", ["--features", "hidden+mean_logprob+layer"]),
    ("linear hidden+lp l2=1", ["--features", "hidden+mean_logprob", "--l2", "1"]),
    ("linear hidden+lp+layer l2=1", ["--features", "hidden+mean_logprob+layer", "--l2", "1"]),
    ("linear hidden+lp+layer l2=10", ["--features", "hidden+mean_logprob+layer", "--l2", "10"]),
    ("linear hidden+lp target=hard", ["--features", "hidden+mean_logprob", "--target", "hard"]),
    ("linear hidden+lp+layer target=hard", ["--features", "hidden+mean_logprob+layer", "--target", "hard"]),
    ("mlp64 hidden+lp", ["--kind", "mlp", "--features", "hidden+mean_logprob"]),
    ("mlp64 hidden+lp+layer", ["--kind", "mlp", "--features", "hidden+mean_logprob+layer"]),
    ("mlp64 hidden+lp+layer l2=1", ["--kind", "mlp", "--features", "hidden+mean_logprob+layer", "--l2", "1"]),
])


def load_head(path):
    from safetensors import safe_open
    with safe_open(path, "np") as f:
        return f.metadata(), {k: f.get_tensor(k).astype(np.float64) for k in f.keys()}


def outcome_auc(meta, params, pre):
    cfg, rows, x = th.load_labels(pre)
    x = th.with_layer(x, pre, meta)
    sc = th.head_scores(params, meta["kind"], th.features(x, meta["features"], cfg["dim"]))
    sol = collections.OrderedDict()
    for r, s in zip(rows, sc):
        k = (r["unique_id"], r["solution"])
        sol.setdefault(k, [[], False])[0].append(float(s))
        if r["final"]:
            sol[k][1] = bool(r["hits"])
    ok = [v[1] for v in sol.values()]
    return {agg: th.auc([f(v[0]) for v in sol.values()], ok)
            for agg, f in (("min", min), ("prod", np.prod), ("last", lambda v: v[-1]))}


def subset(pre, frac, tmp, seed=12345):
    """The label rows of a seeded-hash fraction of pre's problems, written as a new prefix."""
    lines = [l for l in open(pre + ".jsonl") if l.strip()]
    rows = [json.loads(l) for l in lines[1:]]
    keep = np.array([th.split_of(r["unique_id"], seed, frac) for r in rows])
    out = os.path.join(tmp, f"{os.path.basename(pre)}.f{frac:g}")
    with open(out + ".jsonl", "w") as f:
        f.write(lines[0] if lines[0].endswith("\n") else lines[0] + "\n")
        for i, r in enumerate(r for r, k in zip(rows, keep) if k):
            r["row"] = i
            f.write(json.dumps(r) + "\n")
    np.save(out + ".npy", np.load(pre + ".npy")[keep])
    if os.path.exists(pre + ".layer.npy"):
        np.save(out + ".layer.npy", np.load(pre + ".layer.npy")[keep])
    return out, len({r["unique_id"] for r, k in zip(rows, keep) if k})


def run(args, tmp, tag):
    out = os.path.join(tmp, tag + ".safetensors")
    js = os.path.join(tmp, tag + ".json")
    with contextlib.redirect_stdout(io.StringIO()):
        th.main(args + ["-o", out, "--json", js])
    return json.load(open(js)), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--easy", required=True)
    ap.add_argument("--hard", required=True)
    ap.add_argument("--samples", help="hard samples (e2h label --rollouts 0) for the outcome AUC")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--configs", help="comma-separated names (default all)")
    ap.add_argument("--fractions", help="learning curve instead: train each config on these fractions "
                    "of the easy problems (e.g. 0.25,0.5,1); hard AUC on --hard")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    names = a.configs.split(",") if a.configs else list(CONFIGS)
    for pre in (a.easy, a.hard):  # no-head baselines: earlier step / higher mean log-prob = positive
        cfg, rows, x = th.load_labels(pre)
        y = [r["hard"] for r in rows]
        print(f"baseline on {os.path.basename(pre)}: AUC(earlier step) {th.auc([-r['step'] for r in rows], y):.3f}, "
              f"AUC(mean log-prob) {th.auc(x[:, cfg['dim']], y):.3f}, {len(rows)} steps, positive rate "
              f"{np.mean(y):.3f}", flush=True)
    seeds = [int(s) for s in a.seeds.split(",")]
    hb = os.path.basename(a.hard)
    res = collections.OrderedDict()
    with tempfile.TemporaryDirectory() as tmp:
        if a.fractions:
            for name in names:
                for fr in (float(v) for v in a.fractions.split(",")):
                    pre, n_prob = subset(a.easy, fr, tmp)
                    ms = [run([pre, "--eval", a.hard] + CONFIGS[name] + ["--seed", str(sd)], tmp, f"lc{sd}")[0]
                          for sd in seeds]
                    e = [m["auc_heldout_hard"] for m in ms]
                    h = [m[f"auc_eval_hard[{hb}]"] for m in ms]
                    res[f"{name} @ {fr:g}"] = {"n_problems": n_prob, "easy_heldout": (np.mean(e), np.std(e)),
                                               "hard": (np.mean(h), np.std(h))}
                    print(f"{name:<32} {fr:5.2f} of easy ({n_prob} problems): easy_heldout "
                          f"{np.mean(e):.3f}±{np.std(e):.3f}  hard {np.mean(h):.3f}±{np.std(h):.3f}", flush=True)
            names = []
        for name in names:
            rows = []
            for sd in seeds:
                base = CONFIGS[name] + ["--seed", str(sd)]
                m_all, _ = run([a.easy, a.hard, "--all-levels"] + base, tmp, f"all{sd}")
                m_easy, head = run([a.easy, "--eval", a.hard, "--eval-ids", os.path.join(tmp, f"all{sd}.json")]
                                   + base, tmp, f"easy{sd}")
                r = {"easy_heldout": m_easy["auc_heldout_hard"], "hard": m_easy[f"auc_eval_hard[{hb}]"],
                     "hard_same_as_all": m_easy.get(f"auc_eval_hard[{hb}][heldout_of_all_levels_head]", np.nan),
                     "all_levels_hard": m_all.get("auc_heldout_hard_levels45", np.nan),
                     "lp_easy_heldout": m_easy["auc_heldout_mean_logprob"]}
                if a.samples:
                    meta, params = load_head(head)
                    for k, v in outcome_auc(meta, params, a.samples).items():
                        r[f"outcome_{k}"] = v
                rows.append(r)
            res[name] = {k: (float(np.nanmean([r[k] for r in rows])), float(np.nanstd([r[k] for r in rows])))
                         for k in rows[0]}
            cells = "  ".join(f"{k} {m:.3f}±{s:.3f}" for k, (m, s) in res[name].items())
            print(f"{name:<32} {cells}", flush=True)
    if a.json:
        json.dump({"seeds": seeds, "easy": a.easy, "hard": a.hard, "samples": a.samples, "results": res},
                  open(a.json, "w"), indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
