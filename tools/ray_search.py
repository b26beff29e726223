#!/usr/bin/env python3
"""Runs `e2h search` over a problems file as Ray tasks, one task per shard, and merges them.

    python3 tools/ray_search.py --shards 8 -o results.jsonl [--address auto] [--retries 3] \\
        -- --policy weights/SmolLM2-135M-Instruct.Q4_1.gguf --problems ../shared/data/math/math500.jsonl \\
           --method beam -n 16 -M 4 -t 2

Everything after `--` goes to `e2h search` unchanged (except -o and --shard, which this tool
sets). Task i runs `e2h search ... --shard i/N -o WORK/shard-i.jsonl`; a task that fails is
retried (Ray `max_retries` for lost workers, `retry_exceptions` for a non-zero exit) and,
since `e2h search` resumes, a retry on the same node continues where the failed try stopped.
Exit code 2 of `e2h search` (bad options, a results file of another configuration) is not
retried. Each task returns its shard's lines, so the cluster needs no shared file system
(the e2h binary, the models and the problems file must exist at the same paths on every
node). The merged file has one config line (the shards' config with "shard": "*/N" and
"shards": N) and the problem lines in the order of the problems file.

Slurm array equivalent (one job per shard, then merge with --merge-only):
    sbatch --array=0-7 --wrap 'build/e2h search ARGS --shard $SLURM_ARRAY_TASK_ID/8 -o work/shard-$SLURM_ARRAY_TASK_ID.jsonl'
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


class ShardFailed(RuntimeError):
    """A shard's e2h run failed in a way a retry may fix (crash, kill, I/O)."""


class ShardRejected(RuntimeError):
    """e2h search refused its arguments (exit 2): retrying cannot help."""


def run_shard(e2h, args, i, n, work):
    """Runs one shard to completion (resuming its file) and returns its lines."""
    out = os.path.join(work, f"shard-{i}-of-{n}.jsonl")
    cmd = [e2h, "search", *args, "--shard", f"{i}/{n}", "-o", out, "--quiet"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode == 2:
        raise ShardRejected(f"shard {i}/{n}: {p.stderr.strip()}")
    if p.returncode != 0:
        raise ShardFailed(f"shard {i}/{n}: exit {p.returncode}: {p.stderr.strip()[-2000:]}")
    with open(out) as f:
        return f.read().splitlines(), p.stderr


def problem_order(path):
    """unique_id -> index in the problems file (as e2h search names them)."""
    order = {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                uid = json.loads(line).get("unique_id")
            except (ValueError, AttributeError):
                continue
            order.setdefault(uid if isinstance(uid, str) else f"line:{lineno}", len(order))
    return order


def merge(shard_lines, n, problems):
    """One config line, then every shard's problem lines in problems-file order."""
    configs = []
    rows = []
    for lines in shard_lines:
        if not lines:
            raise ShardFailed("a shard produced an empty results file")
        configs.append(json.loads(lines[0])["config"])
        rows += [json.loads(x) for x in lines[1:] if x.strip()]
    base = {k: v for k, v in configs[0].items() if k != "shard"}
    for c in configs[1:]:
        if {k: v for k, v in c.items() if k != "shard"} != base:
            raise ShardRejected("shards disagree on the configuration")
    order = problem_order(problems) if problems and os.path.exists(problems) else {}
    rows.sort(key=lambda r: order.get(r.get("unique_id"), len(order)))
    cfg = dict(configs[0], shard=f"*/{n}", shards=n)
    return [json.dumps({"config": cfg})] + [json.dumps(r) for r in rows]


def e2h_arg(args, flag):
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", type=int, required=True, help="number of shards (Ray tasks)")
    ap.add_argument("-o", "--output", required=True, help="merged results JSONL")
    ap.add_argument("--work", help="folder for the shard files (default: OUTPUT.shards/)")
    ap.add_argument("--address", default=None,
                    help="Ray cluster address ('auto' to join a running cluster); default: start a local one")
    ap.add_argument("--num-cpus", type=int, default=None, help="CPUs for a local Ray instance")
    ap.add_argument("--cpus-per-task", type=float, default=1, help="Ray CPUs reserved per shard task")
    ap.add_argument("--retries", type=int, default=3, help="retries per shard")
    ap.add_argument("--e2h", default=os.path.join(ROOT, os.environ.get("BUILD", "build"), "e2h"))
    ap.add_argument("--merge-only", action="store_true",
                    help="do not run anything: merge WORK/shard-*-of-N.jsonl (e.g. after a Slurm array)")
    ap.add_argument("e2h_args", nargs=argparse.REMAINDER, help="-- then the arguments of e2h search")
    a = ap.parse_args(argv)
    args = a.e2h_args[1:] if a.e2h_args[:1] == ["--"] else a.e2h_args
    if a.shards < 1:
        ap.error("--shards must be >= 1")
    if "-o" in args or "--shard" in args:
        ap.error("-o and --shard are set by this tool; give the merged file with -o before --")
    work = os.path.abspath(a.work or a.output + ".shards")
    os.makedirs(work, exist_ok=True)
    problems = e2h_arg(args, "--problems")

    if a.merge_only:
        shard_lines = []
        for i in range(a.shards):
            with open(os.path.join(work, f"shard-{i}-of-{a.shards}.jsonl")) as f:
                shard_lines.append(f.read().splitlines())
    else:
        import ray  # only needed to run

        ray.init(address=a.address, num_cpus=a.num_cpus if a.address is None else None,
                 include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        task = ray.remote(num_cpus=a.cpus_per_task, max_retries=a.retries,
                          retry_exceptions=[ShardFailed])(run_shard)
        e2h = os.path.abspath(a.e2h)
        refs = [task.remote(e2h, args, i, a.shards, work) for i in range(a.shards)]
        shard_lines = []
        try:
            for i, r in enumerate(refs):
                lines, err = ray.get(r)
                shard_lines.append(lines)
                print(f"ray_search: shard {i}/{a.shards} done ({len(lines) - 1} problems)", file=sys.stderr)
        except ray.exceptions.RayTaskError as ex:
            print(f"ray_search: {ex.cause if hasattr(ex, 'cause') else ex}", file=sys.stderr)
            return 2 if isinstance(getattr(ex, "cause", None), ShardRejected) else 1
        finally:
            ray.shutdown()
    merged = merge(shard_lines, a.shards, problems)
    tmp = a.output + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(merged) + "\n")
    os.replace(tmp, a.output)
    print(f"ray_search: {len(merged) - 1} problems from {a.shards} shards -> {a.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
