#!/usr/bin/env python3
"""Stage 3 of the easy-to-hard job: train the `head` PRM (PLAN.md §4) in numpy.

Inputs are `e2h label` outputs (PREFIX.npy features + PREFIX.jsonl step labels). The head is a
logistic regression (--kind linear) or a one-hidden-layer ReLU MLP (--kind mlp) on the policy's
final-normed hidden state at each step end (optionally + the step's mean token log-prob),
trained with binary cross-entropy against the soft (Math-Shepherd: fraction of rollouts that
reach the reference answer) or hard (any rollout does) label. Problems (not steps) are split
into train / held-out by a seeded hash of their unique_id; the held-out split early-stops
full-batch Adam. Feature standardization is folded into the first layer, so the written head
applies to raw hidden states exactly as the head protocol does: score = sigmoid(output).

Easy-to-hard guard: rows whose level is not in --levels (default 1,2,3) are REFUSED (the run
fails) unless --all-levels; --hard-ids FILE (a problems JSONL) additionally fails the run if
any training id appears in it. The ids used are written to OUT.ids.txt next to the head.

Deterministic given --seed (no threads-dependent reductions beyond numpy's BLAS on small,
fixed-order matrices).

usage: python3 tools/train_head.py LABELS_PREFIX [...] -o weights/head.safetensors
       [--kind linear|mlp] [--hidden 64] [--features hidden|hidden+mean_logprob]
       [--target soft|hard] [--seed 0] [--eval PREFIX ...]
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np


def load_labels(prefix):
    lines = [json.loads(l) for l in open(prefix + ".jsonl") if l.strip()]
    if not lines or "config" not in lines[0]:
        raise SystemExit(f"{prefix}.jsonl: first line must be the {{\"config\": ...}} of e2h label")
    cfg, rows = lines[0]["config"], lines[1:]
    x = np.load(prefix + ".npy")
    if x.ndim != 2 or x.shape[0] != len(rows) or x.shape[1] != cfg["dim"] + 1:
        raise SystemExit(f"{prefix}.npy: shape {x.shape} does not match {len(rows)} steps x "
                         f"(dim {cfg['dim']} + 1)")
    return cfg, rows, x.astype(np.float64)


def auc(scores, labels):
    """ROC AUC (Mann-Whitney with ties), nan if one class is empty."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    n1, n0 = labels.sum(), (~labels).sum()
    if n1 == 0 or n0 == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i:j + 1] = (i + j) / 2 + 1
        i = j + 1
    r = np.empty(len(s))
    r[order] = ranks
    return float((r[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def split_of(uid, seed, frac):
    h = hashlib.sha256(f"{seed}/{uid}".encode()).digest()
    return int.from_bytes(h[:8], "little") / 2**64 < frac


FEATURES = ["hidden", "hidden+mean_logprob", "layer", "layer+mean_logprob", "hidden+mean_logprob+layer"]


def needs_layer(kind):
    return "layer" in kind.split("+")


def with_layer(x, prefix, meta_or_kind):
    """x (n, dim + 1) of PREFIX.npy, extended by PREFIX.layer.npy (n, dim) to (n, 2 dim + 1) when
    the features need the feature layer (e2h label --feature-layer)."""
    kind = meta_or_kind if isinstance(meta_or_kind, str) else meta_or_kind.get("features", "hidden")
    if not needs_layer(kind):
        return x
    if not os.path.exists(prefix + ".layer.npy"):
        raise SystemExit(f"{prefix}.layer.npy: missing; features {kind!r} need e2h label --feature-layer")
    xl = np.load(prefix + ".layer.npy").astype(np.float64)
    if xl.shape != (x.shape[0], x.shape[1] - 1):
        raise SystemExit(f"{prefix}.layer.npy: shape {xl.shape}, expected {(x.shape[0], x.shape[1] - 1)}")
    return np.concatenate([x, xl], axis=1)


def features(x, kind, dim=None):
    """Columns of x for a feature kind. x is (n, dim + 1) = [hidden, mean log-prob] (dim None:
    inferred), or (n, 2 dim + 1) = [hidden, mean log-prob, feature layer] from with_layer."""
    d = x.shape[1] - 1 if dim is None else dim
    if kind == "hidden":
        return x[:, :d]
    if kind == "hidden+mean_logprob":
        return x[:, :d + 1]
    if kind not in FEATURES:
        raise SystemExit(f"unknown features {kind!r} (one of {', '.join(FEATURES)})")
    if x.shape[1] != 2 * d + 1:
        raise SystemExit(f"features {kind!r} need the feature layer (e2h label --feature-layer)")
    if kind == "layer":
        return x[:, d + 1:]
    if kind == "layer+mean_logprob":
        return x[:, d:]
    return x


class Model:
    def __init__(self, kind, n_in, hidden, rng):
        self.kind = kind
        if kind == "linear":
            self.p = {"w": np.zeros((1, n_in)), "b": np.zeros(1)}
        else:
            self.p = {"w1": rng.normal(0, 1 / np.sqrt(n_in), (hidden, n_in)), "b1": np.zeros(hidden),
                      "w2": rng.normal(0, 1 / np.sqrt(hidden), (1, hidden)), "b2": np.zeros(1)}

    def forward(self, x):
        p = self.p
        if self.kind == "linear":
            return x @ p["w"][0] + p["b"][0], None
        h = np.maximum(x @ p["w1"].T + p["b1"], 0)
        return h @ p["w2"][0] + p["b2"][0], h

    def grads(self, x, y, wt, l2):
        z, h = self.forward(x)
        q = 1 / (1 + np.exp(-z))
        d = (q - y) * wt / wt.sum()          # dL/dz of the weighted mean BCE
        p, g = self.p, {}
        if self.kind == "linear":
            g["w"] = (d @ x)[None, :] + l2 * p["w"]
            g["b"] = np.array([d.sum()])
        else:
            g["w2"] = (d @ h)[None, :] + l2 * p["w2"]
            g["b2"] = np.array([d.sum()])
            dh = np.outer(d, p["w2"][0]) * (h > 0)
            g["w1"] = dh.T @ x + l2 * p["w1"]
            g["b1"] = dh.sum(0)
        return g

    def loss(self, x, y, wt):
        z, _ = self.forward(x)
        l = np.logaddexp(0, z) - y * z
        return float((l * wt).sum() / wt.sum())


def train(xtr, ytr, wtr, xva, yva, wva, kind, hidden, l2, lr, epochs, patience, seed):
    rng = np.random.default_rng(seed)
    m = Model(kind, xtr.shape[1], hidden, rng)
    mom = {k: np.zeros_like(v) for k, v in m.p.items()}
    vel = {k: np.zeros_like(v) for k, v in m.p.items()}
    best, best_p, best_ep, bad = np.inf, None, 0, 0
    for ep in range(1, epochs + 1):
        g = m.grads(xtr, ytr, wtr, l2)
        for k in m.p:  # Adam
            mom[k] = 0.9 * mom[k] + 0.1 * g[k]
            vel[k] = 0.999 * vel[k] + 0.001 * g[k] ** 2
            mh, vh = mom[k] / (1 - 0.9 ** ep), vel[k] / (1 - 0.999 ** ep)
            m.p[k] = m.p[k] - lr * mh / (np.sqrt(vh) + 1e-8)
        vl = m.loss(xva, yva, wva)
        if vl < best - 1e-6:
            best, best_p, best_ep, bad = vl, {k: v.copy() for k, v in m.p.items()}, ep, 0
        else:
            bad += 1
            if bad >= patience:
                break
    m.p = best_p
    return m, best, best_ep, ep


def fold(m, mu, sd):
    """Parameters on raw features: w' = w / sd, b' = b - w . (mu / sd)."""
    p = m.p
    if m.kind == "linear":
        w = p["w"] / sd
        return {"w": w, "b": p["b"] - w @ mu}
    w1 = p["w1"] / sd
    return {"w1": w1, "b1": p["b1"] - w1 @ mu, "w2": p["w2"], "b2": p["b2"]}


def head_scores(params, kind, x):
    if kind == "linear":
        z = x @ params["w"][0] + params["b"][0]
    else:
        z = np.maximum(x @ params["w1"].T + params["b1"], 0) @ params["w2"][0] + params["b2"][0]
    return 1 / (1 + np.exp(-z))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("labels", nargs="+", help="e2h label output prefixes")
    ap.add_argument("-o", "--output", required=True, help="head .safetensors")
    ap.add_argument("--kind", choices=["linear", "mlp"], default="linear")
    ap.add_argument("--hidden", type=int, default=64, help="MLP width (default 64)")
    ap.add_argument("--features", choices=FEATURES, default="hidden+mean_logprob",
                    help="...+layer / layer...: also the residual stream of e2h label --feature-layer "
                         "(PREFIX.layer.npy; metadata feature_layer); the C head protocol (e2h search / "
                         "score / serve --prm-head) reads every kind and keeps that layer itself")
    ap.add_argument("--target", choices=["soft", "hard"], default="soft")
    ap.add_argument("--levels", default="1,2,3", help="levels allowed in training (default 1,2,3)")
    ap.add_argument("--all-levels", action="store_true", help="allow every level (the upper line)")
    ap.add_argument("--hard-ids", help="problems JSONL whose ids must not reach training")
    ap.add_argument("--heldout", type=float, default=0.2, help="held-out fraction of problems")
    ap.add_argument("--l2", type=float, default=1e-2)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--epochs", type=int, default=2000)
    ap.add_argument("--patience", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval", nargs="*", default=[], help="label prefixes to report AUC on (e.g. hard)")
    ap.add_argument("--json", help="write the metrics here")
    ap.add_argument("--eval-ids", help="metrics JSON of the all-levels head: also report AUC on its held-out hard problems")
    ap.add_argument("--model-id", help="stamp this policy model id (32 hex) instead of the labels' one")
    a = ap.parse_args(argv)

    if a.model_id and (len(a.model_id) != 32 or any(c not in "0123456789abcdef" for c in a.model_id)):
        ap.error("--model-id: 32 lowercase hex characters")
    allowed = set(range(1, 6)) if a.all_levels else {int(v) for v in a.levels.split(",") if v}
    xs, rows, cfg0 = [], [], None
    for pre in a.labels:
        cfg, r, x = load_labels(pre)
        if cfg0 is None:
            cfg0 = cfg
        elif (cfg["model_id"], cfg["dim"]) != (cfg0["model_id"], cfg0["dim"]):
            raise SystemExit(f"{pre}: labels of another policy (model_id {cfg['model_id']} vs "
                             f"{cfg0['model_id']})")
        elif needs_layer(a.features) and cfg.get("feature_layer") != cfg0.get("feature_layer"):
            raise SystemExit(f"{pre}: feature layer {cfg.get('feature_layer')} vs {cfg0.get('feature_layer')}")
        x = with_layer(x, pre, a.features)
        bad = sorted({row["unique_id"] for row in r if row["level"] not in allowed})
        if bad:
            raise SystemExit(f"{pre}: {len(bad)} problems of levels outside {sorted(allowed)} "
                             f"(e.g. {bad[0]}); the easy head trains on easy problems only "
                             f"(--all-levels for the upper line)")
        xs.append(x)
        rows += r
    x = np.concatenate(xs)
    ids = [r["unique_id"] for r in rows]
    if a.hard_ids:
        hard = {json.loads(l).get("unique_id") for l in open(a.hard_ids) if l.strip()}
        leak = sorted(set(ids) & hard)
        if leak:
            raise SystemExit(f"{len(leak)} training problem ids are in {a.hard_ids} (e.g. {leak[0]})")
    y = np.array([r[a.target] for r in rows], float)
    yh = np.array([r["hard"] for r in rows], bool)
    # each problem weighs the same whatever its number of steps
    per = {}
    for u in ids:
        per[u] = per.get(u, 0) + 1
    wt = np.array([1 / per[u] for u in ids])
    va = np.array([split_of(u, a.seed, a.heldout) for u in ids])
    if va.all() or not va.any():
        raise SystemExit(f"{len(per)} problems: the {a.heldout:g} held-out split (seed {a.seed}) leaves "
                         f"{'no training' if va.all() else 'no held-out'} problem; more problems or another --heldout")
    dim = cfg0["dim"]
    f = features(x, a.features, dim)
    mu, sd = f[~va].mean(0), f[~va].std(0) + 1e-6
    fz = (f - mu) / sd
    m, best, best_ep, last_ep = train(fz[~va], y[~va], wt[~va], fz[va], y[va], wt[va], a.kind,
                                      a.hidden, a.l2, a.lr, a.epochs, a.patience, a.seed)
    params = fold(m, mu, sd)
    s_all = head_scores(params, a.kind, f)
    metrics = {"n_steps": int(len(rows)), "n_problems": len(per),
               "n_train_problems": len({u for u, v in zip(ids, va) if not v}),
               "n_heldout_problems": len({u for u, v in zip(ids, va) if v}),
               "best_heldout_loss": best, "best_epoch": best_ep, "epochs_run": last_ep,
               "auc_train_hard": auc(s_all[~va], yh[~va]), "auc_heldout_hard": auc(s_all[va], yh[va]),
               "auc_heldout_mean_logprob": auc(x[va, dim], yh[va]),
               "positive_rate": float(yh.mean())}
    lv_all = np.array([r["level"] if r["level"] is not None else 0 for r in rows])
    hard_va = va & (lv_all >= 4)
    if hard_va.any():  # the all-levels head: AUC on its held-out hard problems (not trained on)
        metrics["auc_heldout_hard_levels45"] = auc(s_all[hard_va], yh[hard_va])
        metrics["heldout_hard_ids"] = sorted({u for u, v in zip(ids, hard_va) if v})
    for pre in a.eval:
        cfg, r, xe = load_labels(pre)
        se = head_scores(params, a.kind, features(with_layer(xe, pre, a.features), a.features, cfg["dim"]))
        lab = np.array([q["hard"] for q in r], bool)
        metrics[f"auc_eval_hard[{os.path.basename(pre)}]"] = auc(se, lab)
        if a.eval_ids:  # the same steps the all-levels head held out
            keep = set(json.load(open(a.eval_ids)).get("heldout_hard_ids", []))
            sel = np.array([q["unique_id"] in keep for q in r])
            if sel.any():
                metrics[f"auc_eval_hard[{os.path.basename(pre)}][heldout_of_all_levels_head]"] = auc(se[sel], lab[sel])
        for lv in sorted({q["level"] for q in r if q["level"] is not None}):
            sel = np.array([q["level"] == lv for q in r])
            metrics[f"auc_eval_hard[{os.path.basename(pre)}][L{lv}]"] = auc(se[sel], lab[sel])

    from safetensors.numpy import save_file
    meta = {"format": "e2h-head", "version": "1", "kind": a.kind, "dim": str(cfg0["dim"]),
            "model_id": a.model_id or cfg0["model_id"], "layer": "final", "pooling": "last",
            "step_delimiter": "\n\n", "features": a.features, "activation": "relu",
            "trained_levels": ",".join(str(v) for v in sorted(allowed)),
            "target": a.target, "seed": str(a.seed),
            "feature_layer": str(cfg0.get("feature_layer", 0) if needs_layer(a.features) else 0),
            "command": "python3 tools/train_head.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    tensors = {k: np.ascontiguousarray(v.astype(np.float32)) for k, v in params.items()}
    os.makedirs(os.path.dirname(os.path.abspath(a.output)), exist_ok=True)
    save_file(tensors, a.output, metadata=meta)
    with open(os.path.splitext(a.output)[0] + ".ids.txt", "w") as fo:
        for u in sorted(per):
            fo.write(u + "\n")
    txt = json.dumps(metrics, indent=1)
    print(txt)
    if a.json:
        open(a.json, "w").write(txt + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
