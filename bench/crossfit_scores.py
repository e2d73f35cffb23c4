"""Which ranking a cross-fitted run should default to: score variants on the run folders of ``crossfit_minilm.py``.

Reads a bench work folder (``bench/results/crossfit_minilm/sst2_<noise>``: its plain run ``dy_log/noisy/m``, its
``--cross_fit 2`` run ``dy_log/noisy_cf/m`` and the clean labels) and prints AUROC / AP / P@k of each candidate
score against the planted flips. No training: run it after ``crossfit_minilm.py``::

    python bench/crossfit_scores.py bench/results/crossfit_minilm/sst2_instance bench/results/crossfit_minilm/sst2_uniform
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import label_noise as ln  # noqa: E402


def labels(path: Path, key: str = "label") -> dict:
    return {r["guid"]: r[key] for r in map(json.loads, open(path, encoding="utf-8"))}


def flips(work: Path) -> dict:
    noisy = labels(work / "train.jsonl")
    clean = labels(work / "clean.jsonl") if (work / "clean.jsonl").exists() else labels(work / "truth.jsonl",
                                                                                         "clean_label")
    return {g: noisy[g] != clean[g] for g in noisy}


def variants(run_dir: Path) -> tuple[np.ndarray, dict]:
    """(guids, {name: score}) of the candidate scores a run supports."""
    from training_dynamics.analysis.metrics import log_softmax
    from training_dynamics.analysis.run import Run
    from training_dynamics.core.heldout import read_heldout
    from training_dynamics.decisions.ranking import ranks01

    dyn = Run(run_dir).dynamics(progress=False)
    guids, gold = np.asarray(dyn.guids), np.asarray(dyn.gold)
    p_in = np.exp(log_softmax(np.asarray(dyn.logits, dtype=np.float64)))
    n = np.arange(len(gold))
    g_in = p_in[n, :, gold]  # (N, E)
    out = {"in-sample 1-confidence": 1 - g_in.mean(1)}
    found = read_heldout(Path(run_dir) / "training_dynamics", guids)
    if found is not None:
        p_ho = found[1]
        g_ho = p_ho[n, :, gold]
        out["held-out 1-p (last epoch)"] = 1 - g_ho[:, -1]
        out["held-out 1-p (mean of epochs)"] = 1 - g_ho.mean(1)
        out["held-out 1-p (mean of last 2)"] = 1 - g_ho[:, -2:].mean(1)
        out["all epochs 1-p (in-sample + held-out)"] = 1 - (g_in.mean(1) + g_ho.mean(1)) / 2
        out["rank mean (held-out mean, in-sample)"] = (ranks01(g_ho.mean(1) * -1) + ranks01(-g_in.mean(1))) / 2
        out["rank mean (held-out last, in-sample)"] = (ranks01(-g_ho[:, -1]) + ranks01(-g_in.mean(1))) / 2
        other = p_ho.mean(1).copy()
        other[n, gold] = -1.0
        out["held-out margin (best other - gold)"] = other.max(1) - g_ho.mean(1)
    return guids, out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("work", nargs="+", type=Path)
    args = p.parse_args()
    for work in args.work:
        truth = flips(work)
        print(f"\n{work.name}: {sum(truth.values())} flips of {len(truth)}")
        print("| run | score | AUROC | AP | P@k |\n|---|---|---:|---:|---:|")
        for run_name, run in (("plain", work / "dy_log" / "noisy" / "m"), ("cross_fit 2", work / "dy_log" / "noisy_cf" / "m")):
            if not run.exists():
                continue
            guids, scores = variants(run)
            flipped = np.array([truth[int(g)] for g in guids])
            for name, s in scores.items():
                m = ln.ranking_metrics(s, flipped, guids)
                print(f"| {run_name} | {name} | {m['auroc']:.3f} | {m['ap']:.3f} | {m['p_at_k']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
