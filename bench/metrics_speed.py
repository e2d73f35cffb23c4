#!/usr/bin/env python
"""Benchmark: td_metrics.py end to end against a per-example implementation of the seed's approach.

    python bench/metrics_speed.py [--workdir /tmp/td_bench] [--scales sst2,mnli] [--repeat N]

Generates seed-format jsonl dynamics (guids in a different random order each epoch, as a shuffling
data loader writes them) at SST-2 scale (67,349 x 5 epochs x 2 classes) and MNLI scale
(392,702 x 5 x 3), then runs, each as a separate process and reading included:

- ``td_metrics.py --model_dir DIR --no_progress`` (this project), and
- the seed's approach, written below (``--seed_baseline DIR``): ``json.loads`` per line, a dict of
  lists keyed by guid, a softmax per example and epoch, the seed columns written with pandas
  ``to_json``. As in the original ``compute_train_dy_metrics`` the softmax is
  ``torch.nn.functional.softmax(torch.Tensor(logits))`` and the per-epoch loss a torch
  ``CrossEntropyLoss`` ("seed (torch)", the ratio on the last line); a variant with a numpy softmax
  ("seed (numpy)", cheaper start-up and per-call cost) is reported beside it as a stricter reference.

Reports wall time, CPU time (user + sys) and peak resident memory of each process (``os.wait4``
rusage; on a shared machine wall time swings with the load, CPU time much less), checks that both
wrote the same seed columns, writes bench/results/metrics_speed.json, and ends with the line
``speedup=<SST-2-scale ratio>``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCALES = {"sst2": (67_349, 5, 2), "mnli": (392_702, 5, 3)}


# ---------------------------------------------------------------------------------------------
# the seed's approach (baseline), run as its own process
# ---------------------------------------------------------------------------------------------


def seed_baseline(model_dir: Path, impl: str = "torch") -> None:
    """Per-example metrics the way the seed computes them; writes td_metrics_seed.jsonl."""
    from collections import defaultdict

    import numpy as np
    import pandas as pd

    if impl == "torch":
        import torch

        def softmax(z):
            return torch.nn.functional.softmax(torch.Tensor(z), dim=-1)
    else:
        def softmax(z):
            z = np.asarray(z)
            p = np.exp(z - z.max())
            return p / p.sum()

    td_dir = model_dir / "training_dynamics"
    files = sorted(td_dir.glob("dynamics_epoch_*.jsonl"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    dynamics: dict[int, dict] = {}
    for epoch, path in enumerate(files):
        with open(path) as fh:
            for line in fh:
                record = json.loads(line)
                guid = record["guid"]
                if guid not in dynamics:
                    assert epoch == 0
                    dynamics[guid] = {"logits": [], "gold": record["gold"]}
                dynamics[guid]["logits"].append(record[f"logits_epoch_{epoch}"])

    def forgetfulness(trend: list[bool]) -> int:
        if not any(trend):
            return 1000
        learnt, forgotten = False, 0
        for ok in trend:
            if learnt and not ok:
                forgotten += 1
            learnt = ok
        return forgotten

    confidence, variability, threshold_closeness, correctness, forgetful = {}, {}, {}, {}, {}
    correct_sum = defaultdict(int)
    epoch_logits_all, epoch_gold_all = defaultdict(list), defaultdict(list)
    for guid, record in dynamics.items():
        true_probs, correct_trend = [], []
        for epoch, epoch_logits in enumerate(record["logits"]):
            probs = softmax(epoch_logits)
            true_probs.append(float(probs[record["gold"]]))
            is_correct = int(np.argmax(epoch_logits)) == record["gold"]
            correct_trend.append(is_correct)
            correct_sum[epoch] += is_correct
            epoch_logits_all[epoch].append(epoch_logits)
            epoch_gold_all[epoch].append(record["gold"])
        confidence[guid] = np.mean(true_probs)
        variability[guid] = np.std(true_probs)
        threshold_closeness[guid] = confidence[guid] * (1 - confidence[guid])
        correctness[guid] = sum(correct_trend)
        forgetful[guid] = forgetfulness(correct_trend)
    df = pd.DataFrame([[g, i, threshold_closeness[g], confidence[g], variability[g], correctness[g], forgetful[g]]
                       for i, g in enumerate(dynamics)],
                      columns=["guid", "index", "threshold_closeness", "confidence", "variability", "correctness",
                               "forgetfulness"])
    df.to_json(model_dir / "td_metrics_seed.jsonl", orient="records", lines=True)
    for epoch in sorted(correct_sum):
        z, y = np.asarray(epoch_logits_all[epoch]), np.asarray(epoch_gold_all[epoch])
        if impl == "torch":
            loss = torch.nn.CrossEntropyLoss()(torch.Tensor(z), torch.LongTensor(y)).item()
        else:
            zs = z - z.max(1, keepdims=True)
            loss = float(np.mean(np.log(np.exp(zs).sum(1)) - zs[np.arange(len(y)), y]))
        print(f"epoch {epoch}: loss {loss:.4f} "
              f"acc {correct_sum[epoch] / len(dynamics):.4f}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# harness
# ---------------------------------------------------------------------------------------------


def generate(run_dir: Path, n: int, epochs: int, classes: int, *, seed: int = 0) -> None:
    """Seed-format jsonl dynamics, examples in a new random order each epoch; logits drift toward gold."""
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from training_dynamics.core import dynamics_file

    rng = np.random.default_rng(seed)
    guids = rng.choice(10 * n, size=n, replace=False).astype(np.int64)
    gold = rng.integers(classes, size=n)
    speed = rng.uniform(-0.5, 1.5, size=n)
    for e in range(epochs):
        logits = rng.normal(size=(n, classes)).astype(np.float32)
        logits[np.arange(n), gold] += 3 * e / max(epochs - 1, 1) * speed
        order = rng.permutation(n)
        dynamics_file.write_epoch(dynamics_file.dynamics_dir(run_dir), e, guids[order], logits[order], gold[order], device="cuda:0")


def timed(cmd: list[str], log: Path) -> tuple[float, float, float, int]:
    """Run ``cmd``; (wall seconds, CPU seconds user+sys, peak RSS in MB, return code) of that process alone."""
    with open(log, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode


def compare(run_dir: Path) -> float:
    """Largest difference between the seed columns of the two outputs (same guid, same column)."""
    import numpy as np
    import pandas as pd

    ours = pd.read_json(run_dir / "td_metrics.jsonl", lines=True).set_index("guid").sort_index()
    seed = pd.read_json(run_dir / "td_metrics_seed.jsonl", lines=True).set_index("guid").sort_index()
    cols = ["index", "threshold_closeness", "confidence", "variability", "correctness", "forgetfulness"]
    assert ours.index.equals(seed.index), "different guids"
    return float(max(np.abs(ours[c].to_numpy(float) - seed[c].to_numpy(float)).max() for c in cols))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=None, help="Where to generate dynamics (default: a temp dir).")
    parser.add_argument("--scales", default="sst2,mnli", help="Comma-separated subset of: " + ", ".join(SCALES))
    parser.add_argument("--repeat", type=int, default=None,
                        help="Runs per implementation and scale; the fastest is reported (default: 3 at SST-2 scale, "
                             "where start-up noise matters, 1 at MNLI scale).")
    parser.add_argument("--seed_baseline", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--seed_impl", default="torch", choices=("torch", "numpy"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seed_baseline is not None:
        seed_baseline(args.seed_baseline, args.seed_impl)
        return 0

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="td_bench_"))
    print(f"workdir {workdir}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} "
          f"(a shared machine: timings vary)", flush=True)
    cmds = {"td_metrics.py": lambda d: [sys.executable, str(ROOT / "td_metrics.py"), "--model_dir", str(d),
                                        "--no_progress"],
            "seed (torch)": lambda d: [sys.executable, str(Path(__file__).resolve()), "--seed_baseline", str(d)],
            "seed (numpy)": lambda d: [sys.executable, str(Path(__file__).resolve()), "--seed_baseline", str(d),
                                       "--seed_impl", "numpy"]}
    results = []
    for scale in args.scales.split(","):
        n, epochs, classes = SCALES[scale]
        run_dir = workdir / scale
        if not (run_dir / "training_dynamics" / f"dynamics_epoch_{epochs - 1}.jsonl").exists():
            t0 = time.perf_counter()
            generate(run_dir, n, epochs, classes)
            print(f"{scale}: generated {n} x {epochs} x {classes} in {time.perf_counter() - t0:.1f}s", flush=True)
        size = sum(p.stat().st_size for p in (run_dir / "training_dynamics").glob("*.jsonl")) / 2**20
        row = {"scale": scale, "examples": n, "epochs": epochs, "classes": classes, "jsonl_MB": round(size, 1)}
        for name, cmd in cmds.items():
            runs = []
            for _ in range(args.repeat or (3 if scale == "sst2" else 1)):
                wall, cpu, peak, rc = timed(cmd(run_dir), workdir / f"{scale}_{name.replace(' ', '_')}.log")
                if rc:
                    raise SystemExit(f"{name} failed on {scale} (exit {rc}); see {workdir}/{scale}_*.log")
                runs.append((wall, cpu, peak))
            wall, cpu, peak = min(runs)
            row[name] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_MB": round(peak)}
            print(f"{scale:5s} {name:14s} {wall:8.2f} s wall {cpu:8.2f} s CPU {peak:7.0f} MB peak RSS", flush=True)
        ours = row["td_metrics.py"]
        row["speedup"] = round(row["seed (torch)"]["wall_s"] / ours["wall_s"], 1)
        row["cpu_speedup"] = round(row["seed (torch)"]["cpu_s"] / ours["cpu_s"], 1)
        row["speedup_vs_numpy_variant"] = round(row["seed (numpy)"]["wall_s"] / ours["wall_s"], 1)
        row["max_abs_diff_seed_columns"] = compare(run_dir)
        print(f"{scale:5s} speedup {row['speedup']}x wall, {row['cpu_speedup']}x CPU vs the seed (torch); "
              f"{row['speedup_vs_numpy_variant']}x wall vs the numpy variant; seed columns agree to "
              f"{row['max_abs_diff_seed_columns']:.1e}", flush=True)
        results.append(row)
    out = ROOT / "bench" / "results" / "metrics_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"load_average": os.getloadavg(), "cpus": os.cpu_count(), "results": results},
                              indent=2) + "\n")
    print(f"results in {out}")
    first = next((r for r in results if r["scale"] == "sst2"), results[0])
    print(f"speedup={first['speedup']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
