#!/usr/bin/env python
"""Held-out evidence at the cost of one run, emulated with the existing scripts (a benchmark, not a test).

    nice -n 10 python bench/crossfit_halves.py bench/results/short_run/n3000_h0.6_d0.7    # after bench/short_run.py

Splits the rows of a ``bench/short_run.py`` setting in two halves by a seeded hash of the guid, records one run
per half with the same settings (``run_glue_and_record_td.py``, ``--save_strategy epoch``: same total gradient
steps as the one plain run), scores the *other* half with each epoch's checkpoint in eval mode, and assembles a
cross-fitted run folder (both halves' in-sample epochs, ``heldout_epoch_<e>.npz``; ``training_dynamics/crossfit.py``)
on which ``find-issues`` then counts from the held-out probabilities. Reports, against the planted flips, the
plain run and the cross-fitted one: flagged, precision, recall, F1, AUROC / AP of the dynamics ranking and of the
held-out ranking, the "first visit" ranking (epoch 0 in-training confidence standardised by position in the epoch
is not recorded by the scripts: epoch 0's confidence is reported as is), and the training CPU seconds.
"""
from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def half_of(guids, seed: int) -> np.ndarray:
    return np.array([hashlib.sha256(f"{seed}:{g}".encode()).digest()[0] % 2 for g in guids])


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main(argv=None) -> int:
    work = Path((argv or sys.argv[1:])[0])
    res = json.loads((work / "result.json").read_text())
    rows = [json.loads(line) for line in open(work / "train.jsonl")]
    guids = np.array([r["guid"] for r in rows])
    seed = res["seed"]
    half = half_of(guids, seed)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    names = ["negative", "positive", "neutral"]
    cf = work / "crossfit"
    cpu0 = cpu_children()
    for k in (0, 1):
        path = cf / f"half_{k}.jsonl"
        cf.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r, h in zip(rows, half) if h == k))
        if (cf / f"out_{k}" / "train_results.json").exists():
            continue
        cmd = [sys.executable, str(ROOT / "run_glue_and_record_td.py"), "--model_name_or_path", work / "model",
               "--train_file", path, "--class_names", ",".join(names), "--output_dir", cf / f"out_{k}",
               "--dy_log_dir", cf / "dy", "--dy_task_name", f"half_{k}", "--dy_model_name", "tiny",
               "--num_train_epochs", len(res["training_accuracy"]), "--learning_rate", "3e-3",
               "--per_device_train_batch_size", 16, "--max_seq_length", 64, "--report_to", "none",
               "--save_strategy", "epoch", "--seed", seed, "--disable_tqdm", "true"]
        subprocess.run([str(c) for c in cmd], env=env, cwd=ROOT, check=True, capture_output=True)
    train_cpu = cpu_children() - cpu0
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training_dynamics.workflows import crossfit
    from training_dynamics.core import dynamics_file
    from training_dynamics.decisions.ranking import predict_logits
    from training_dynamics.analysis.metrics import log_softmax
    from training_dynamics.analysis.run import Run

    torch.set_num_threads(1)
    import time

    t0 = time.process_time()
    text = {r["guid"]: r["sentence"] for r in rows}
    epochs = len(res["training_accuracy"])
    held = {}
    ins = {}
    for k in (0, 1):
        other = guids[half != k]
        ckpts = sorted((cf / f"out_{k}").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        assert len(ckpts) == epochs, ckpts
        tok = AutoTokenizer.from_pretrained(work / "model")
        for e, ck in enumerate(ckpts):
            model = AutoModelForSequenceClassification.from_pretrained(ck)
            logits = predict_logits(model, tok, [[text[g] for g in other]], batch_size=256, max_seq_length=64,
                                    device="cpu", progress=False)
            held.setdefault(e, []).append((other, np.exp(log_softmax(logits.astype(np.float64)))))
        ins[k] = Run(cf / "dy" / f"half_{k}" / "tiny").dynamics(progress=False)
    score_cpu = time.process_time() - t0
    run = cf / "dy" / "train" / "crossfit"
    dy = dynamics_file.dynamics_dir(run)
    dy.mkdir(parents=True, exist_ok=True)
    for e in range(epochs):
        g = np.concatenate([ins[k].guids for k in (0, 1)])
        dynamics_file.write_epoch(dy, e, g, np.concatenate([ins[k].logits[:, e] for k in (0, 1)]).astype(np.float32),
                                  np.concatenate([ins[k].gold for k in (0, 1)]))
        crossfit.write_heldout_epoch(dy, e, np.concatenate([x[0] for x in held[e]]),
                                     np.concatenate([x[1] for x in held[e]]))
    (dy / dynamics_file.META_NAME).write_text(json.dumps({"label_names": names, "cross_fit": 2}))
    from sklearn.metrics import average_precision_score, roc_auc_score

    sys.path.insert(0, str(ROOT / "bench"))
    import short_run

    texts, clean, _ = short_run.make_three_class(res["n"], seed=seed, **res.get("data", {}))
    noisy = short_run.flip_uniform(clean, rate=0.1, classes=3, seed=seed + 1)
    flipped_by_guid = noisy != clean
    out = {}
    for name, rdir in (("plain", work / "dy" / "train" / "tiny"), ("cross_fit_2", run)):
        issues = cf / f"issues_{name}"
        proc = subprocess.run([sys.executable, "-m", "training_dynamics", "find-issues", "--source", "dynamics",
                               "--run_dir", str(rdir), "--output_dir", str(issues), "--overwrite_output_dir",
                               "--disable_tqdm"], env=env, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode:
            print(proc.stderr[-2000:])
            return 1
        import pandas as pd

        got = pd.read_json(issues / "label_issues.jsonl", lines=True).set_index("guid").sort_index()
        fl = got["is_label_issue"].to_numpy(bool)
        flips = flipped_by_guid[got.index.to_numpy()]
        p = float(flips[fl].mean()) if fl.any() else 0.0
        r = float(fl[flips].mean())
        settings = json.loads((issues / "label_issues_settings.json").read_text())
        row = {"line": proc.stdout.strip().splitlines()[0], "flagged": int(fl.sum()), "flipped": int(flips.sum()),
               "precision": round(p, 3), "recall": round(r, 3), "f1": round(2 * p * r / max(p + r, 1e-12), 3),
               "auroc_dynamics": round(float(roc_auc_score(flips, got["score"])), 4),
               "ap_dynamics": round(float(average_precision_score(flips, got["score"])), 4),
               "agreement": settings.get("agreement")}
        if name == "cross_fit_2":
            hg, hp = crossfit.read_heldout(dy, got.index.to_numpy())
            gold = got["gold"].to_numpy()
            hs = 1 - hp[:, -1][np.arange(len(gold)), gold]
            row.update(auroc_heldout=round(float(roc_auc_score(flips, hs)), 4),
                       ap_heldout=round(float(average_precision_score(flips, hs)), 4),
                       train_cpu_s=round(train_cpu, 1), heldout_scoring_cpu_s=round(score_cpu, 1))
            d = Run(run).dynamics(progress=False)
            first = np.exp(log_softmax(d.logits[:, 0].astype(np.float64)))
            fv = 1 - first[np.arange(len(d.gold)), d.gold]  # suspicion: low epoch-0 (first visit) confidence
            row.update(auroc_epoch0=round(float(roc_auc_score(flipped_by_guid[d.guids], fv)), 4),
                       ap_epoch0=round(float(average_precision_score(flipped_by_guid[d.guids], fv)), 4))
        out[name] = row
        print(name, json.dumps({k: v for k, v in row.items() if k != "agreement"}))
    (cf / "result.json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
