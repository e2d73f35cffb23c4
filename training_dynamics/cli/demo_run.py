"""The offline demo of the whole pipeline (``training-dynamics demo``, ``make demo``).

Generates a sentiment dataset with planted label noise and ambiguity, builds two tiny BERTs from
configs (a weak and a strong one), then runs every stage through its real command (in this
process), logging each command exactly as a user would type it. Then the same for generative
fine-tuning (prompt/response pairs with planted bad responses and a tiny GPT-2) and for token
classification (BIO sentences with retyped mentions and a tiny BERT token classifier).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import time
from pathlib import Path
from typing import Iterator

logger = logging.getLogger("training_dynamics.demo")
TASK = "demo"
#: two tiny BERTs from configs, and the learning rate each trains well with
MODELS = {"weak": {"hidden_size": 16, "num_layers": 1, "num_heads": 1},
          "strong": {"hidden_size": 128, "num_layers": 2, "num_heads": 2}}
LEARNING_RATE = {"weak": "3e-3", "strong": "1e-3"}


def _run(command: str, *args) -> None:
    """Run one ``training-dynamics`` command in this process, logging it as a user would type it."""
    from training_dynamics.cli import run_command

    argv = [str(a) for a in args]
    logger.info("$ %s", " ".join(shlex.quote(c) for c in ["training-dynamics", command, *argv]))
    t0 = time.perf_counter()
    code = run_command(command, argv)
    if code != 0:
        raise SystemExit(f"demo: step failed ({code}): training-dynamics {command}")
    logger.info("  done in %.1f s", time.perf_counter() - t0)


def prepare(out: Path, *, n_train: int, seed: int) -> tuple[dict[str, Path], dict[str, Path]]:
    """Write the demo dataset and the two tiny models (skipped when already there)."""
    from training_dynamics.demo.data import build_tiny_bert, write_demo_dataset

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


@contextlib.contextmanager
def cpu_threads(num_threads: int | None = None) -> Iterator[int]:
    """Train on ``num_threads`` CPU threads inside the block (torch's setting is restored after it).

    ``None``: one thread, unless the user set ``OMP_NUM_THREADS`` (then torch's own choice stands). The
    demo's models are tiny: one thread trains them as fast as several on an idle machine, and on a
    busy one several threads wait for each other (measured: 15 minutes instead of under one).
    """
    import torch

    before = torch.get_num_threads()
    if num_threads is None and "OMP_NUM_THREADS" not in os.environ:
        num_threads = 1
    if num_threads:
        torch.set_num_threads(num_threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def run_demo(output_dir: str | Path = "demo_output", *, n_train: int = 2000, epochs: int = 5, seed: int = 42,
             generative: bool = True, ner: bool = True, num_threads: int | None = None) -> Path:
    """Run the offline demo end to end into ``output_dir``; returns its absolute path.

    ``generative``: also the causal-LM part (:func:`run_generative_demo`, into ``output_dir/generative``).
    ``ner``: also the token classification part (:func:`run_ner_demo`, into ``output_dir/ner``).
    ``num_threads``: CPU threads for training (:func:`cpu_threads`; default one unless ``OMP_NUM_THREADS`` is set).
    """
    with cpu_threads(num_threads) as threads:
        logger.info("training on %d CPU thread%s (--num_threads or OMP_NUM_THREADS to change)", threads,
                    "" if threads == 1 else "s")
        return _run_demo(output_dir, n_train=n_train, epochs=epochs, seed=seed, generative=generative, ner=ner)


def _run_demo(output_dir: str | Path, *, n_train: int, epochs: int, seed: int, generative: bool, ner: bool) -> Path:
    out = Path(output_dir).resolve()
    dy_log = out / "dy_log"
    t0 = time.perf_counter()
    data, models = prepare(out, n_train=n_train, seed=seed)
    for name, model in models.items():
        _run("record", "--model_name_or_path", model, "--train_file", data["train"],
             "--validation_file", data["validation"], "--dy_task_name", TASK, "--dy_log_dir", dy_log,
             "--output_dir", out / "outputs" / model.name, "--num_train_epochs", epochs,
             "--learning_rate", LEARNING_RATE[name], "--per_device_train_batch_size", 32,
             "--per_device_eval_batch_size", 128, "--save_strategy", "no", "--report_to", "none", "--seed", seed,
             "--disable_tqdm", "true", "--overwrite_dynamics", "true",
             "--overwrite_output_dir", "true")  # a rerun of the demo records again, into its own model folder
    strong = dy_log / TASK / models["strong"].name
    weak = dy_log / TASK / models["weak"].name
    _run("metrics", "--run_dir", strong, "--burn_out", epochs)
    again = "--overwrite_output_dir"  # a rerun of the demo replaces what the demo wrote (and only that)
    _run("plot", "--run_dir", strong, "--burn_out", epochs, "--show_hist", "--output_dir", out / "plots", again)
    _run("select", "--run_dir", strong, "--burn_out", epochs, "--proportion", "0.33", again)
    _run("compare", "--weak_dir", weak, "--strong_dir", strong, "--burn_out", epochs, "--output_dir", out / "compare",
         again)
    _run("find-issues", "--source", "dynamics", "--run_dir", strong, "--output_dir", out / "label_issues", again)
    _run("review", "--issues", out / "label_issues" / "label_issues.jsonl", "--run_dir", strong, again)
    report(out, strong, data["truth"])
    if generative:
        run_generative_demo(out / "generative", seed=seed)
    if ner:
        run_ner_demo(out / "ner", seed=seed)
    logger.info("demo finished in %.0f s; everything is in %s", time.perf_counter() - t0, out)
    return out


GENERATIVE_TASK = "instructions"


def run_generative_demo(out: Path, *, n_train: int = 800, epochs: int = 8, seed: int = 42) -> Path:
    """Prompt/response pairs with 10% planted bad responses (the response of another prompt), a tiny
    GPT-2 from a config, and record-clm, metrics, plot, find-issues and review on it."""
    from training_dynamics.demo.data import build_tiny_gpt2, write_generative_demo

    data_dir, model = out / "data", out / "models" / "tiny-gpt2"
    if not (data_dir / "train_truth.jsonl").exists():
        write_generative_demo(data_dir, n_train=n_train, n_validation=max(40, n_train // 10), seed=seed)
    if not (model / "config.json").exists():
        texts = [json.loads(line)[k] for f in ("train", "validation") for line in open(data_dir / f"{f}.jsonl")
                 for k in ("prompt", "response")]
        build_tiny_gpt2(model, texts, seed=seed)
    dy_log = out / "dy_log"
    _run("record-clm", "--model_name_or_path", model, "--train_file", data_dir / "train.jsonl",
         "--validation_file", data_dir / "validation.jsonl", "--prompt_column", "prompt", "--response_column", "response",
         "--dy_task_name", GENERATIVE_TASK, "--dy_log_dir", dy_log, "--output_dir", out / "outputs" / model.name,
         "--num_train_epochs", epochs, "--learning_rate", "3e-3", "--warmup_steps", 30,
         "--per_device_train_batch_size", 8, "--max_seq_length", 64, "--save_strategy", "no", "--report_to", "none",
         "--seed", seed, "--disable_tqdm", "true", "--overwrite_dynamics", "true",
         "--overwrite_output_dir", "true")
    run = dy_log / GENERATIVE_TASK / model.name
    _run("metrics", "--run_dir", run)
    again = "--overwrite_output_dir"  # a rerun of the demo replaces what the demo wrote (and only that)
    _run("plot", "--run_dir", run, "--output_dir", out / "plots", again)
    _run("find-issues", "--source", "dynamics", "--run_dir", run, "--output_dir", out / "response_issues", again)
    _run("review", "--issues", out / "response_issues" / "label_issues.jsonl", "--run_dir", run, again)
    report_generative(out, run, data_dir / "train_truth.jsonl")
    return out


def report_generative(out: Path, run: Path, truth_file: Path) -> None:
    """Log how well low confidence and the decision find the planted bad responses."""
    import pandas as pd

    truth = pd.read_json(truth_file, lines=True).set_index("guid")
    issues = pd.read_json(out / "response_issues" / "label_issues.jsonl", lines=True)
    bad = truth.loc[issues["guid"], "kind"].eq("bad").to_numpy()
    n_bad = int(bad.sum())
    flagged = issues["is_label_issue"].to_numpy(bool)
    logger.info("planted bad responses among the %d lowest-confidence responses: %d (%.0f%%)", n_bad,
                int(bad[:n_bad].sum()), 100 * bad[:n_bad].mean())
    logger.info("flagged as suspicious: %d responses, %d of them planted bad (precision %.2f, recall %.2f)",
                int(flagged.sum()), int((flagged & bad).sum()), (flagged & bad).sum() / max(flagged.sum(), 1),
                (flagged & bad).sum() / max(n_bad, 1))
    logger.info("generative data map: %s", ", ".join(str(p) for p in sorted((out / "plots").glob("*.png"))))
    logger.info("review page of the responses: %s", out / "response_issues" / "review.html")


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


NER_TASK = "ner"


def run_ner_demo(out: Path, *, n_train: int = 400, epochs: int = 6, seed: int = 42) -> Path:
    """BIO sentences of PER/LOC/ORG with 10% of the mentions given another type, a tiny BERT token
    classifier (WordPiece, so some words split into sub-tokens), and record-ner, metrics, plot,
    find-issues and review on it, word by word."""
    from training_dynamics.demo.ner_data import build_tiny_token_bert, write_ner_demo

    data_dir, model = out / "data", out / "models" / "tiny-bert-ner"
    if not (data_dir / "train_truth.jsonl").exists():
        write_ner_demo(data_dir, n_train=n_train, n_validation=max(40, n_train // 10), seed=seed, retype_rate=0.1)
    if not (model / "config.json").exists():
        sentences = [json.loads(line)["tokens"] for f in ("train", "validation") for line in open(data_dir / f"{f}.jsonl")]
        build_tiny_token_bert(model, sentences, hidden_size=32, seed=seed)
    dy_log = out / "dy_log"
    _run("record-ner", "--model_name_or_path", model, "--train_file", data_dir / "train.jsonl",
         "--text_column_name", "tokens", "--label_column_name", "ner_tags", "--dy_task_name", NER_TASK,
         "--dy_log_dir", dy_log, "--output_dir", out / "outputs" / model.name, "--num_train_epochs", epochs,
         "--learning_rate", "3e-3", "--per_device_train_batch_size", 16, "--save_strategy", "no",
         "--report_to", "none", "--seed", seed, "--disable_tqdm", "true", "--overwrite_dynamics", "true",
         "--overwrite_output_dir", "true")
    run = dy_log / NER_TASK / model.name
    _run("metrics", "--run_dir", run)
    again = "--overwrite_output_dir"  # a rerun of the demo replaces what the demo wrote (and only that)
    _run("plot", "--run_dir", run, "--output_dir", out / "plots", again)
    _run("find-issues", "--source", "dynamics", "--run_dir", run, "--output_dir", out / "tag_issues", again)
    _run("review", "--issues", out / "tag_issues" / "label_issues.jsonl", "--run_dir", run, again)
    report_ner(out, data_dir / "train_truth.jsonl")
    return out


def report_ner(out: Path, truth_file: Path) -> dict:
    """Log how well the word ranking and the decision find the planted tag errors; returns the scores."""
    from training_dynamics.demo.ner_data import planted_scores

    s = planted_scores(out / "tag_issues" / "label_issues.jsonl", truth_file)
    logger.info("planted tag errors: %d of %d words; ranking AUROC %.3f, AP %.3f", s["num_planted"], s["num_words"],
                s["auroc"], s["ap"])
    logger.info("flagged as wrong: %d words, %d of them planted (precision %.2f, recall %.2f)", s["num_flagged"],
                round(s["precision"] * s["num_flagged"]), s["precision"], s["recall"])
    logger.info("word and sentence maps: %s", ", ".join(str(p) for p in sorted((out / "plots").glob("*.png"))))
    logger.info("review page of the words: %s", out / "tag_issues" / "review.html")
    return s
