#!/usr/bin/env python
"""Benchmark: td_metrics at millions of examples against the floor of only reading the same files.

    python bench/metrics_scale.py [--sizes 2M,10M] [--epochs 10] [--classes 2] [--repeat 3]
                                  [--workdir DIR] [--keep] [--extra_args "--output_format parquet"]

For each size, writes npz epoch files (the documented arrays ``guid`` int64, ``logits`` float32
(N, C), ``gold`` int64; ids 0..N-1, rows in a new random order every epoch, logits drifting toward
gold), then runs, each as its own process and reading included:

- ``td_metrics.py --model_dir DIR --no_progress`` (plus ``--extra_args``), and
- ``np.load`` only: a process that imports numpy and loads every array of the same files.

Reports wall time, CPU time and peak resident memory of each process (``os.wait4`` rusage), the
fastest of ``--repeat`` runs, and the ratio td_metrics / np.load; writes
bench/results/metrics_scale.json. The generated files are deleted at the end unless ``--keep``
(10M x 10 epochs x 2 classes is about 2.4 GB of npz). On a shared machine wall time swings with
the load (the load average is printed and saved); CPU time much less.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOAD_ONLY = ("import sys, numpy as np\n"
             "for f in sys.argv[1:]:\n"
             "    with np.load(f) as z:\n"
             "        arrays = [z[k] for k in z.files]\n")


def parse_size(text: str) -> int:
    text = text.strip().upper()
    mult = {"K": 10**3, "M": 10**6, "G": 10**9}.get(text[-1:], 1)
    return int(float(text.rstrip("KMG")) * mult)


def generate(run_dir: Path, n: int, epochs: int, classes: int, *, seed: int = 0) -> float:
    """npz epoch files (guid, logits, gold), rows shuffled per epoch; returns their total size in MB."""
    import numpy as np

    dy = run_dir / "training_dynamics"
    dy.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    gold = rng.integers(classes, size=n)
    speed = rng.uniform(-0.5, 1.5, size=n).astype(np.float32)
    size = 0
    for e in range(epochs):
        logits = rng.standard_normal(size=(n, classes), dtype=np.float32)
        logits[np.arange(n), gold] += np.float32(3 * e / max(epochs - 1, 1)) * speed
        order = rng.permutation(n)
        path = dy / f"dynamics_epoch_{e}.npz"
        np.savez(path, guid=order.astype(np.int64), logits=logits[order], gold=gold[order].astype(np.int64))
        size += path.stat().st_size
        del logits, order
    return size / 2**20


def timed(cmd: list[str], log: Path) -> tuple[float, float, float, int]:
    """Run ``cmd``; (wall seconds, CPU seconds user+sys, peak RSS in MB, return code) of that process alone."""
    with open(log, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def measure(name: str, cmd: list[str], repeat: int, log: Path) -> dict:
    runs = []
    for _ in range(repeat):
        wall, cpu, peak, rc = timed(cmd, log)
        if rc:
            raise SystemExit(f"{name} failed (exit {rc}); see {log}:\n{log.read_text()[-3000:]}")
        runs.append((wall, cpu, peak))
    wall, cpu, peak = min(runs)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_MB": round(max(r[2] for r in runs)),
            "all_wall_s": [round(r[0], 2) for r in runs]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2M,10M", help="Comma-separated example counts (2M, 500K, 10000000).")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each process; the fastest is reported.")
    parser.add_argument("--workdir", type=Path, default=None, help="Where to generate (default: a temp dir).")
    parser.add_argument("--keep", action="store_true", help="Keep the generated files.")
    parser.add_argument("--extra_args", default="", help="More td_metrics.py flags, e.g. '--output_format jsonl'.")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "metrics_scale.json")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="td_scale_"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"workdir {workdir}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} "
          "(a shared machine: wall times vary)", flush=True)
    results = []
    try:
        for text in args.sizes.split(","):
            n = parse_size(text)
            run_dir = workdir / f"n{n}"
            t0 = time.perf_counter()
            mb = generate(run_dir, n, args.epochs, args.classes)
            print(f"{text}: generated {n:,} x {args.epochs} x {args.classes} ({mb:,.0f} MB of npz) in "
                  f"{time.perf_counter() - t0:.1f}s", flush=True)
            files = [str(run_dir / "training_dynamics" / f"dynamics_epoch_{e}.npz") for e in range(args.epochs)]
            load_before = os.getloadavg()[0]
            load = measure("np.load", [sys.executable, "-c", LOAD_ONLY, *files], args.repeat, workdir / "load.log")
            td = measure("td_metrics", [sys.executable, str(ROOT / "td_metrics.py"), "--model_dir", str(run_dir),
                                        "--no_progress", *shlex.split(args.extra_args)], args.repeat,
                         workdir / "td_metrics.log")
            outputs = sorted(p.name for p in run_dir.glob("td_metrics.*"))
            row = {"examples": n, "epochs": args.epochs, "classes": args.classes, "npz_MB": round(mb),
                   "np_load": load, "td_metrics": td, "ratio_wall": round(td["wall_s"] / load["wall_s"], 2),
                   "ratio_cpu": round(td["cpu_s"] / load["cpu_s"], 2), "outputs": outputs,
                   "output_MB": round(sum((run_dir / o).stat().st_size for o in outputs) / 2**20, 1),
                   "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                   "extra_args": args.extra_args}
            for name in ("np_load", "td_metrics"):
                r = row[name]
                print(f"{text:>5s} {name:10s} {r['wall_s']:7.2f} s wall {r['cpu_s']:7.2f} s CPU {r['peak_MB']:6d} MB "
                      f"peak RSS (runs: {r['all_wall_s']})", flush=True)
            print(f"{text:>5s} td_metrics / np.load: {row['ratio_wall']}x wall, {row['ratio_cpu']}x CPU; wrote "
                  f"{', '.join(outputs)} ({row['output_MB']} MB); load average {row['load_average']}", flush=True)
            results.append(row)
            if not args.keep:
                shutil.rmtree(run_dir)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"cpus": os.cpu_count(), "results": results}, indent=2) + "\n")
    print(f"results in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
