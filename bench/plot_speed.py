#!/usr/bin/env python
"""Time a data map of 400,000 examples with histograms, saved as PNG + PDF (goal: < 10 s).

    python bench/plot_speed.py [--n 400000] [--epochs 5] [--out bench/results]

The data are synthetic and seeded: per-example probabilities of the gold label over E epochs
drift from chance toward (or away from) the label, as in a real run, so the map has the usual arch.
The last line printed is ``seconds=<x>`` (drawing + saving both files; data generation excluded);
the numbers also go to ``<out>/plot_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from training_dynamics.analysis import plots  # noqa: E402


def synthetic_metrics(n: int, epochs: int, seed: int = 0) -> pd.DataFrame:
    """td_metrics-like table (N rows) from simulated p_gold (N, E), vectorised."""
    rng = np.random.default_rng(seed)
    skill = rng.normal(1.2, 1.6, size=(n, 1))  # how learnable each example is
    speed = rng.uniform(0.3, 1.5, size=(n, 1))
    logit = skill * (1 - np.exp(-speed * np.arange(1, epochs + 1)[None, :])) + rng.normal(0, 0.9, size=(n, epochs))
    p = 1 / (1 + np.exp(-logit))
    return pd.DataFrame({"guid": np.arange(n), "confidence": p.mean(1), "variability": p.std(1),
                         "correctness": (p > 0.5).sum(1)})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=400_000, help="Number of examples.")
    ap.add_argument("--epochs", type=int, default=5, help="Epochs (correctness bins = epochs + 1).")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results", help="Output folder.")
    args = ap.parse_args(argv)
    df = synthetic_metrics(args.n, args.epochs)
    t0 = time.perf_counter()
    fig = plots.plot_data_map(df, num_epochs=args.epochs, show_hist=True, title=f"synthetic ({args.n:,} examples)")
    t1 = time.perf_counter()
    paths = plots.save_figure(fig, args.out / "plot_speed_data_map")
    t2 = time.perf_counter()
    sizes = {p.suffix[1:] + "_MB": round(p.stat().st_size / 1e6, 2) for p in paths}
    record = {"examples": args.n, "epochs": args.epochs, "draw_s": round(t1 - t0, 2), "save_png_pdf_s": round(t2 - t1, 2),
              "seconds": round(t2 - t0, 2), **sizes, "cpus": os.cpu_count(), "load_average": os.getloadavg()}
    (args.out / "plot_speed.json").write_text(json.dumps(record, indent=2) + "\n")
    for p in paths:
        print(f"{p}: {p.stat().st_size / 1e6:.2f} MB")
    print(f"draw {t1 - t0:.2f}s, save png+pdf {t2 - t1:.2f}s (goal: < 10 s in all)")
    print(f"seconds={t2 - t0:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
