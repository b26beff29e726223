#!/usr/bin/env python3
"""tools/plot_report.py — plots `e2h report --json` output: accuracy against N per method, easy
(levels 1-3) and hard (4-5) side by side, with the bootstrap 95% intervals as bands/error bars.

usage: python3 tools/plot_report.py REPORT.json PLOT.png     (e2h report ... --png PLOT.png runs it)
Without levels in the data there is one panel, "all". matplotlib is pinned in tools/requirements.txt.
"""
import json
import sys


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(argv[1]) as f:
        d = json.load(f)
    panels = [("easy", "easy (levels 1-3)"), ("hard", "hard (levels 4-5)")] if d.get("levels") else [("all", "all")]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False, sharey=True)
    methods = []
    for r in d["rows"]:
        if r["method"] not in methods:
            methods.append(r["method"])
    for ax, (bucket, title) in zip(axes[0], panels):
        for i, m in enumerate(methods):
            rows = sorted((r for r in d["rows"] if r["method"] == m), key=lambda r: r["k"])
            pts = [(r["k"], r["buckets"].get(bucket, {})) for r in rows]
            pts = [(k, c) for k, c in pts if c.get("acc") is not None and c.get("n", 0) > 0]
            if not pts:
                continue
            ks = [k for k, _ in pts]
            acc = [100 * c["acc"] for _, c in pts]
            lo = [100 * (c["lo"] if c.get("lo") is not None else c["acc"]) for _, c in pts]
            hi = [100 * (c["hi"] if c.get("hi") is not None else c["acc"]) for _, c in pts]
            color = f"C{i % 10}"
            sampled = any(r["estimator"] == "sampled" for r in rows)
            label = m + (" (sampled subsets)" if sampled else "")
            if len(ks) == 1:  # a search method: one point at its N
                ax.errorbar(ks, acc, yerr=[[a - l for a, l in zip(acc, lo)], [h - a for a, h in zip(acc, hi)]],
                            fmt="s", color=color, capsize=4, label=label)
            else:
                ax.plot(ks, acc, marker="o", color=color, label=label)
                ax.fill_between(ks, lo, hi, color=color, alpha=0.15)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("N (samples)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("accuracy (%)")
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.suptitle(f"e2h report: BoN aggregation {d.get('bon_agg')}, weighted {d.get('weighted_agg')}; "
                 f"95% bootstrap intervals")
    fig.tight_layout()
    fig.savefig(argv[2], dpi=120)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
