"""The offline demo of the whole pipeline (``make demo``).

Generates a sentiment dataset with planted label noise and ambiguity, builds two tiny BERTs from
configs (a weak and a strong one), then runs every stage through its real command-line script,
printing each command exactly as a user would type it::

    python -m training_dynamics.demo --output_dir demo_output
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import subprocess
import sys
import time
from pathlib import Path

from .cli import setup_logging

logger = logging.getLogger("training_dynamics.demo")
ROOT = Path(__file__).resolve().parents[1]
TASK = "demo"
#: two tiny BERTs from configs, and the learning rate each trains well with
MODELS = {"weak": {"hidden_size": 16, "num_layers": 1, "num_heads": 1},
          "strong": {"hidden_size": 128, "num_layers": 2, "num_heads": 2}}
LEARNING_RATE = {"weak": "3e-3", "strong": "1e-3"}


def _run(script: str, *args) -> None:
    """Run a top-level script of the repo, echoing the command."""
    cmd = [sys.executable, script, *map(str, args)]
    shown = " ".join(shlex.quote(c) for c in ["python", *cmd[1:]])
    logger.info("$ %s", shown)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"demo: step failed ({proc.returncode}): {shown}")
    logger.info("  done in %.1f s", time.perf_counter() - t0)


def prepare(out: Path, *, n_train: int, seed: int) -> tuple[dict[str, Path], dict[str, Path]]:
    """Write the demo dataset and the two tiny models (skipped when already there)."""
    from .demo_data import build_tiny_bert, write_demo_dataset

    data_dir = out / "data"
    if not (data_dir / "train_truth.jsonl").exists():
        write_demo_dataset(data_dir, n_train=n_train, n_validation=max(200, n_train // 5), seed=seed)
    data = {k: data_dir / f"{k}.jsonl" for k in ("train", "validation")}
    data["truth"] = data_dir / "train_truth.jsonl"
    texts = [json.loads(line)["sentence"] for f in ("train", "validation") for line in open(data[f])]
    models = {}
    for name, shape in MODELS.items():
        path = out / "models" / f"tiny-bert-{name}"
        if not (path / "config.json").exists():
            build_tiny_bert(path, texts, seed=seed, **shape)
        models[name] = path
    return data, models


def main(argv: list[str] | None = None) -> int:
    """Run the offline demo end to end."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output_dir", default="demo_output", help="Everything the demo makes goes here (default: demo_output).")
    p.add_argument("--n_train", type=int, default=2000, help="Training examples to generate (default 2000).")
    p.add_argument("--epochs", type=int, default=5, help="Training epochs (default 5).")
    p.add_argument("--seed", type=int, default=42, help="Seed for data, models and training.")
    args = p.parse_args(argv)
    setup_logging()
    out = Path(args.output_dir).resolve()
    dy_log = out / "dy_log"
    t0 = time.perf_counter()
    data, models = prepare(out, n_train=args.n_train, seed=args.seed)

    for name, model in models.items():
        _run("run_glue_and_record_td.py", "--model_name_or_path", model, "--train_file", data["train"],
             "--validation_file", data["validation"], "--dy_task_name", TASK, "--dy_log_dir", dy_log,
             "--output_dir", out / "outputs" / model.name, "--num_train_epochs", args.epochs,
             "--learning_rate", LEARNING_RATE[name], "--per_device_train_batch_size", 32, "--per_device_eval_batch_size", 128,
             "--save_strategy", "no", "--report_to", "none", "--seed", args.seed, "--disable_tqdm", "true",
             "--overwrite_dynamics", "true")  # a rerun of the demo records again
    strong = dy_log / TASK / models["strong"].name
    weak = dy_log / TASK / models["weak"].name
    burn_out = str(args.epochs)
    _run("td_metrics.py", "--model_dir", strong, "--burn_out", burn_out)
    _run("plot_cartography.py", "--model_dir", strong, "--burn_out", burn_out, "--show_hist",
         "--plots_dir", out / "plots")
    _run("data_selection.py", "--model_dir", strong, "--burn_out", burn_out, "--proportion", "0.33")
    _run("compare_models.py", "--weak_dir", weak, "--strong_dir", strong, "--burn_out", burn_out,
         "--output_dir", out / "compare")
    _run("find_label_issues.py", "--source", "dynamics", "--model_dir", strong, "--output_dir", out / "label_issues")
    _run("review_label_issues.py", "--issues", out / "label_issues" / "label_issues.jsonl", "--model_dir", strong,
         "--output", out / "label_issues" / "review.html")
    report(out, strong, data["truth"])
    logger.info("demo finished in %.0f s; everything is in %s", time.perf_counter() - t0, out)
    return 0


def report(out: Path, run: Path, truth_file: Path) -> None:
    """Log how the map's regions line up with the planted ground truth."""
    import pandas as pd

    truth = pd.read_json(truth_file, lines=True).set_index("guid")
    regions = json.loads((run / "three_regions_data_indices.json").read_text())
    n_flipped = int((truth["kind"] == "flipped").sum())
    for region in ("hard", "ambiguous", "easy"):
        kinds = truth.loc[regions[region], "kind"].value_counts()
        logger.info("%-9s region (%4d examples): %s", region, len(regions[region]),
                    ", ".join(f"{k} {v}" for k, v in kinds.items()))
    issues = pd.read_json(out / "label_issues" / "label_issues.jsonl", lines=True).head(n_flipped)
    found = int((truth.loc[issues["guid"], "kind"] == "flipped").sum())
    logger.info("planted label flips among the %d top-ranked label issues: %d (%.0f%%)",
                n_flipped, found, 100 * found / max(n_flipped, 1))
    logger.info("data map: %s", ", ".join(str(p) for p in sorted((out / "plots").glob("*.png"))))
    logger.info("review page (open in a browser): %s", out / "label_issues" / "review.html")


if __name__ == "__main__":
    sys.exit(main())
