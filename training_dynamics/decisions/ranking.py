"""Rank training examples by how likely their label is wrong (``find_label_issues.py``).

Two sources, one output schema (``label_issues.jsonl`` + ``.csv`` + ``label_issues_settings.json``):

* ``model``: one batched, no-grad, eval-mode pass of a trained classifier over a dataset. Score =
  per-example cross-entropy of the gold label (``loss``); probabilities are a softmax over the
  *classes* of each example. The model's classes are matched to the data's labels **by name**
  (``config.id2label``), never by position or by the order labels happen to appear in.
* ``dynamics``: no model pass. Score = ``1-confidence`` (low mean gold probability over epochs) or
  ``-aum`` (low area under the margin), from the recorded training dynamics; probabilities are the
  mean over epochs of each epoch's softmax, so ``probabilities[gold] == confidence``.

In both, a higher ``score`` is more suspicious and ``rank`` 1 is the most suspicious example.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from training_dynamics.core import fileio
from training_dynamics.analysis import selection
from training_dynamics.core.data import DataError
from training_dynamics.core.data import TextClassificationData, encode_texts, example_texts
from training_dynamics.core.ids import as_guids
from training_dynamics.analysis.metrics import log_softmax
from training_dynamics.analysis.run import Run
from training_dynamics.core.errors import TrainingDynamicsError

logger = logging.getLogger(__name__)

ISSUES_NAME = "label_issues.jsonl"
ISSUES_CSV = "label_issues.csv"
SETTINGS_NAME = "label_issues_settings.json"
SOURCES = ("model", "dynamics")
#: dynamics scores: option -> (score_name, what it is); higher = more suspicious
DYNAMICS_SCORES = {"confidence": ("1-confidence", "low mean gold probability over epochs"),
                   "aum": ("-aum", "low area under the margin"),
                   "loss": ("mean loss", "mean cross-entropy of the gold label over epochs"),
                   "rank_mean": ("mean rank(1-confidence, -aum)", "mean of the two ranks, as a fraction of N"),
                   "worst_turn": ("1-worst_turn_confidence", "low confidence of the least confident assistant turn "
                                  "(conversational runs)"),
                   "combined": ("mean rank(1-heldout_confidence, 1-confidence)",
                                "a cross-fitted run (record --cross_fit 2): the mean of the ranks of its held-out and "
                                "in-sample confidence")}
DEFAULT_DYNAMICS_SCORE = "confidence"
AUTO_SCORE = "auto"  # combined on a cross-fitted run, confidence otherwise (resolve_score)
COLUMNS = ["rank", "guid", "text", "gold", "gold_name", "predicted", "predicted_name", "probabilities",
           "score", "score_name", "region"]
_GENERIC_LABEL = re.compile(r"^LABEL_\d+$")


# -- arithmetic -----------------------------------------------------------------------------------
def loss_and_probabilities(logits: np.ndarray, gold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-example cross-entropy (no reduction) and class probabilities.

    Args:
        logits: (N, C) model outputs.
        gold: (N,) int label ids.
    Returns:
        loss (N,) float64 and probabilities (N, C) float64 whose rows sum to 1.
    """
    logp = log_softmax(np.asarray(logits, dtype=np.float64))
    gold = np.asarray(gold, dtype=np.int64)
    return -logp[np.arange(len(gold)), gold], np.exp(logp)


def align_labels(model_names: Sequence[str], data_names: Sequence[str], *,
                 trust_order: bool = False) -> tuple[np.ndarray, list[str]]:
    """Map the data's label ids to the model's class ids **by name** (exact, else case-insensitive
    when that is unambiguous).

    Args:
        model_names: (C,) the model's class names, ``config.id2label[i]`` for i = 0..C-1.
        data_names: (K,) the data's label names in data-id order (K <= C).
        trust_order: only for a model whose config has generic names (``LABEL_0``, ...): take its
            class i to be the data's i-th label.
    Returns:
        ``data_to_model`` (K,) int, the model class of each data label id, and the label names of
        the output in model-class order (the data's spelling; the model's for classes the data lacks).
    Raises:
        ValueError: when a data label has no class of that name in the model.
    """
    model_names = [str(n) for n in model_names]
    data_names = [str(n) for n in data_names]
    generic = all(_GENERIC_LABEL.match(n) for n in model_names)
    if trust_order:
        if not generic:
            raise TrainingDynamicsError(f"--trust_label_order is only for models without label names; this model names its "
                             f"classes {model_names}, and they are matched by name")
        if len(model_names) != len(data_names):
            raise TrainingDynamicsError(f"the model has {len(model_names)} classes but the data has {len(data_names)} labels "
                             f"{data_names}")
        return np.arange(len(data_names), dtype=np.int64), data_names
    index = {n: i for i, n in enumerate(model_names)}
    if len(index) != len(model_names):
        raise TrainingDynamicsError(f"the model's label names repeat: {model_names}")
    folded = {n.casefold(): i for i, n in enumerate(model_names)}
    if len(folded) == len(model_names):  # "NEGATIVE" (a Hub model) matches "negative" (GLUE) when unambiguous
        index = {**folded, **index}
        data_names_key = [n if n in index else n.casefold() for n in data_names]
    else:
        data_names_key = data_names
    missing = [n for n, key in zip(data_names, data_names_key) if key not in index]
    if missing:
        hint = (" (its config has no label names: pass --trust_label_order if its class i is the data's "
                "i-th label, or --class_names)") if generic else " (pass --class_names to name the data's labels)"
        raise TrainingDynamicsError(f"data label(s) {missing} are not among the model's classes {model_names} "
                         f"(config.id2label){hint}")
    mapping = np.array([index[key] for key in data_names_key], dtype=np.int64)
    if len(np.unique(mapping)) != len(mapping):
        raise TrainingDynamicsError(f"data labels {data_names} map onto the same model class ({model_names}); pass --class_names")
    names = list(model_names)
    for j, m in enumerate(mapping):  # the data's spelling, so corrections name the dataset's labels
        names[m] = data_names[j]
    return mapping, names


def rank_examples(*, guids: np.ndarray, texts: Sequence[str], gold: np.ndarray, probabilities: np.ndarray,
                  score: np.ndarray, score_name: str, label_names: Sequence[str],
                  region: Sequence[str] | None = None, extra: dict[str, np.ndarray] | None = None,
                  top_k: int | None = None) -> pd.DataFrame:
    """The ranked issues table, most suspicious first (ties: lower guid first).

    Args:
        guids, gold, score: (N,) arrays; texts, region: N strings each.
        probabilities: (N, C) class probabilities in ``label_names`` order.
        extra: more (N,) columns to keep (e.g. ``loss``, ``variability``).
        top_k: keep only the first ``top_k`` rows.
    Returns:
        DataFrame with :data:`COLUMNS` then the ``extra`` columns; ``df.attrs["label_names"]``.
    """
    guids = as_guids(guids)
    gold = np.asarray(gold, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    score = np.asarray(score, dtype=np.float64)
    names = np.asarray([str(n) for n in label_names], dtype=object)
    n = len(guids)
    if probabilities.shape != (n, len(names)) or gold.shape != (n,) or score.shape != (n,) or len(texts) != n:
        raise ValueError(f"shapes disagree: guids {guids.shape}, gold {gold.shape}, score {score.shape}, "
                         f"probabilities {probabilities.shape}, {len(texts)} texts, {len(names)} label names")
    if not np.isfinite(score).all():
        raise TrainingDynamicsError(f"guid {guids[~np.isfinite(score)][0]}: score is not finite")
    order = np.lexsort((guids, -score))
    predicted = probabilities.argmax(axis=1)
    df = pd.DataFrame({
        "rank": np.arange(1, n + 1),
        "guid": guids[order],
        "text": np.asarray(texts, dtype=object)[order],
        "gold": gold[order],
        "gold_name": names[gold[order]],
        "predicted": predicted[order],
        "predicted_name": names[predicted[order]],
        "probabilities": list(probabilities[order]),
        "score": score[order],
        "score_name": score_name,
        "region": np.asarray(region if region is not None else [""] * n, dtype=object)[order],
    })
    for key, values in (extra or {}).items():
        df[key] = np.asarray(values)[order]
    df.attrs["label_names"] = names.tolist()
    return df.head(top_k).copy() if top_k is not None else df


# -- model source ---------------------------------------------------------------------------------
_MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")

def predict_logits(model, tokenizer, texts: Sequence[Sequence[str]], *, batch_size: int = 64,
                   max_seq_length: int = 128, truncation: str = "head", device: str | None = None,
                   progress: bool = True) -> np.ndarray:
    """Logits of a sequence classifier, batched, ``model.eval()`` and ``torch.no_grad()``.

    Args:
        texts: one sequence of N strings per text column (one column, or two for a pair).
        truncation: how a text longer than ``max_seq_length`` tokens is cut: the one cutter
            (:func:`~training_dynamics.core.data.encode_texts`), as the run was trained.
    Returns:
        (N, C) float32 logits in input order. Batches are formed from length-sorted inputs (less padding).
    """
    import torch
    from tqdm.auto import tqdm

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    model.eval()
    n = len(texts[0])
    order = np.argsort([len(t) for t in texts[0]], kind="stable")
    out = np.empty((n, model.config.num_labels), dtype=np.float32)
    with torch.no_grad():
        for start in tqdm(range(0, n, batch_size), desc="scoring", unit="batch", disable=not progress):
            rows = order[start:start + batch_size]
            features, _ = encode_texts(tokenizer, [[col[i] for i in rows] for col in texts], max_seq_length,
                                       truncation=truncation)
            enc = tokenizer.pad({k: v for k, v in features.items() if k in _MODEL_INPUTS}, return_tensors="pt")
            enc = {k: v.to(device) for k, v in enc.items()}
            out[rows] = model(**enc).logits.float().cpu().numpy()
    return out


def issues_from_model(data: TextClassificationData, model_name_or_path: str, *, batch_size: int = 64,
                      max_seq_length: int = 128, truncation: str = "head", device: str | None = None,
                      trust_label_order: bool = False,
                      regions: pd.Series | None = None, cache_dir: str | None = None, progress: bool = True,
                      top_k: int | None = None) -> pd.DataFrame:
    """Score every training example of ``data`` with a trained model; rank by loss (highest first).

    ``regions``: optional region label per guid (index = guid) from recorded dynamics. ``max_seq_length`` and
    ``truncation`` cut long texts as the run did (``find-issues`` takes them from the run's meta).
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_name_or_path, cache_dir=cache_dir)
        model = AutoModelForSequenceClassification.from_pretrained(model_name_or_path, cache_dir=cache_dir)
    except OSError as exc:  # transformers: not a folder nor a reachable Hub id
        raise TrainingDynamicsError(f"--model_name_or_path {model_name_or_path}: cannot load the model "
                                    f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from exc
    if getattr(model.config, "problem_type", None) == "regression":
        raise TrainingDynamicsError(f"{model_name_or_path} is a regression model; label issues need a classifier")
    model_names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    data_to_model, label_names = align_labels(model_names, data.label_names, trust_order=trust_label_order)
    train = data.train
    logits = predict_logits(model, tokenizer, [train[c] for c in data.text_columns], batch_size=batch_size,
                            max_seq_length=max_seq_length, truncation=truncation, device=device, progress=progress)
    gold = data_to_model[np.asarray(train["label"], dtype=np.int64)]
    loss, probs = loss_and_probabilities(logits, gold)
    guids = as_guids(train["guid"])
    region = _regions_for(guids, regions)
    df = rank_examples(guids=guids, texts=example_texts(train, data.text_columns), gold=gold,
                       probabilities=probs, score=loss, score_name="loss", label_names=label_names,
                       region=region, extra={"loss": loss}, top_k=top_k)
    from training_dynamics.core.data import seen_spans

    try:
        seen = pd.Series(seen_spans(tokenizer, [list(train[c]) for c in data.text_columns], max_seq_length,
                                    truncation=truncation), index=guids, dtype=object)
    except NotImplementedError:  # a tokenizer without character offsets: the page shows whole texts
        seen = pd.Series(None, index=guids, dtype=object)
    if seen.notna().any():
        logger.info("%d of %d texts are longer than --max_seq_length %d tokens: the model scored %d of their tokens "
                    "(--truncation %s)", int(seen.notna().sum()), len(seen), max_seq_length, max_seq_length, truncation)
        df["seen"] = seen.reindex(df["guid"].to_numpy()).tolist()
    return df


# -- dynamics source ------------------------------------------------------------------------------
def region_labels(run: Run, *, burn_out: int | None = None, proportion: float = 0.33) -> pd.Series:
    """Region (``easy``/``ambiguous``/``hard``/``""``) of each recorded example, indexed by guid."""
    df = run.metrics(burn_out=burn_out, save=False)
    region = selection.region_of(df, proportion=proportion)
    return pd.Series(np.asarray(region, dtype=object), index=df["guid"].to_numpy())


def _regions_for(guids: np.ndarray, regions: pd.Series | None) -> list[str]:
    if regions is None:
        return [""] * len(guids)
    return regions.reindex(guids).fillna("").astype(str).tolist()


def ranks01(x: np.ndarray) -> np.ndarray:
    """(N,) average ranks of ``x`` scaled to (0, 1] (ties share their mean rank)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    first = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(x)]
    ranks = np.empty(len(x))
    ranks[order] = ((starts + ends + 1) / 2.0)[group]  # 1-based mean rank of each tie group
    return ranks / len(x)


def combined_score(heldout_confidence: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """(N,) the default score of a cross-fitted run: the mean of the ranks (as fractions of N) of low held-out
    confidence (the mean gold probability of the epochs in which a model that never trained on the example scored
    it) and low in-sample confidence. Chosen on ``bench/crossfit_scores.py``: docs/results.md."""
    return (ranks01(-np.asarray(heldout_confidence, dtype=np.float64))
            + ranks01(-np.asarray(confidence, dtype=np.float64))) / 2.0


def resolve_score(score: str, runs: Sequence[Run]) -> str:
    """``auto`` (the default) → ``combined`` for one cross-fitted run (it has held-out files), else ``confidence``."""
    from training_dynamics.core.heldout import heldout_epochs

    if score != AUTO_SCORE:
        return score
    return "combined" if len(runs) == 1 and heldout_epochs(runs[0].dynamics_dir) else DEFAULT_DYNAMICS_SCORE


def dynamics_score(cols: dict[str, np.ndarray], score: str) -> np.ndarray:
    """(N,) suspicion score (higher = more suspicious) from metric columns; see :data:`DYNAMICS_SCORES`."""
    if score == "confidence":
        return 1.0 - np.asarray(cols["confidence"], dtype=np.float64)
    if score == "aum":
        return -np.asarray(cols["aum"], dtype=np.float64)
    if score == "loss":
        return np.asarray(cols["loss"], dtype=np.float64)
    if score == "worst_turn":
        if "worst_turn_confidence" not in cols:
            raise TrainingDynamicsError("--score worst_turn ranks conversations by their least confident assistant "
                                        "turn; this run has no per-turn values (a conversational run with several "
                                        "assistant turns has); use --score confidence")
        return 1.0 - np.asarray(cols["worst_turn_confidence"], dtype=np.float64)
    if score == "rank_mean":
        return (ranks01(-np.asarray(cols["confidence"])) + ranks01(-np.asarray(cols["aum"]))) / 2.0
    if score == "combined":
        if "heldout_confidence" not in cols:
            raise TrainingDynamicsError("--score combined needs held-out probabilities: record the run with "
                                        "--cross_fit 2 (one run folder), or use --score confidence")
        return combined_score(cols["heldout_confidence"], cols["confidence"])
    raise TrainingDynamicsError(f"--score must be one of {', '.join(DYNAMICS_SCORES)}, not {score!r}")


def issues_from_dynamics(run: Run | Sequence[Run], *, score: str = DEFAULT_DYNAMICS_SCORE, burn_out: int | None = None,
                         proportion: float = 0.33, data: TextClassificationData | None = None,
                         progress: bool = True, top_k: int | None = None) -> pd.DataFrame:
    """Rank recorded examples from their training dynamics (no model pass).

    Args:
        run: a recorded run (see :class:`training_dynamics.analysis.run.Run`), or several runs of the same
            data whose metrics and probabilities are averaged (:mod:`training_dynamics.analysis.multirun`).
        score: one of :data:`DYNAMICS_SCORES`.
        burn_out: use the first ``burn_out`` epochs of each run (default: all).
        data: the training data, for the texts; default: the data named in the first run's meta
            (texts are left empty, with a warning, when it names none).
    Returns:
        The ranked table with the columns ``confidence``, ``variability``, ``correctness``, ``aum``
        and ``loss`` kept.
    """
    from training_dynamics.analysis.multirun import average_runs

    if score not in DYNAMICS_SCORES:
        raise TrainingDynamicsError(f"--score must be one of {', '.join(DYNAMICS_SCORES)}, not {score!r}")
    runs = [run] if isinstance(run, Run) else list(run)
    cols, probs = average_runs(runs, burn_out=burn_out, progress=progress)
    excluded = getattr(data, "excluded_guids", None)
    if excluded is not None and len(excluded):  # changed since recording: left out (binding.check said so)
        keep = ~np.isin(cols["guid"], excluded)
        cols, probs = {k: v[keep] for k, v in cols.items()}, probs[keep]
    df = pd.DataFrame(cols)
    region = selection.region_of(df, proportion=proportion)
    first = runs[0]
    label_names = first.label_names or [str(i) for i in range(probs.shape[1])]
    if data is None and not first.meta.get("data"):
        logger.warning("%s: dynamics_meta.json names no dataset; texts are left empty (pass --train_file)", first.path)
        texts = [""] * len(df)
    else:
        data = data if data is not None else first.data()
        texts = first.texts(cols["guid"], data)
    extra = {k: cols[k] for k in ("confidence", "variability", "correctness", "aum", "loss")}
    if len(runs) == 1:  # a cross-fitted run: the mean held-out gold probability beside the in-sample one
        from training_dynamics.core.heldout import heldout_confidence

        held = heldout_confidence(first, cols["guid"], cols["gold"], burn_out=burn_out)
        if held is not None:
            extra["heldout_confidence"] = held
    kind_extra = dict(first.kind.ranking_extras(first, cols["guid"], data=data, burn_out=burn_out))
    seen = kind_extra.pop("seen", None)  # what the model read of each cut text (a Series by guid)
    extra.update(kind_extra)
    df = rank_examples(guids=cols["guid"], texts=texts, gold=cols["gold"], probabilities=probs,
                       score=dynamics_score({**cols, **extra}, score), score_name=DYNAMICS_SCORES[score][0],
                       label_names=label_names, region=list(region), extra=extra, top_k=top_k)
    if seen is not None:
        df["seen"] = seen.reindex(df["guid"].to_numpy()).tolist()
    return df


def seen_by_model(run: Run, guids: np.ndarray, data: TextClassificationData) -> pd.Series | None:
    """Per guid, what the model read of a text cut by ``--max_seq_length`` (the run's meta ``truncation``):
    ``[[start, end], ...]`` character spans of the display text, ``None`` for a text read whole.
    ``None`` when the run cut no text, or its tokenizer cannot be loaded (a warning)."""
    from training_dynamics.core import data as td_data

    cut = run.meta.get("truncation") or {}
    if not cut.get("num_truncated"):
        return None
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(run.meta["model_name_or_path"])
    except Exception as exc:  # a moved model folder or no Hub: the page then shows whole texts
        logger.warning("%s: cannot load the run's tokenizer (%s), so the review cannot mark what the model saw of "
                       "the %d cut texts", run.path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                       cut["num_truncated"])
        return None
    train = data.train
    row = pd.Series(np.arange(len(train)), index=as_guids(train["guid"])).reindex(as_guids(guids)).to_numpy()
    columns = [[col[int(i)] for i in row] for col in (list(train[c]) for c in data.text_columns)]
    try:
        spans = td_data.seen_spans(tokenizer, columns, int(cut["max_seq_length"]), truncation=cut.get("strategy", "head"))
    except NotImplementedError:  # a tokenizer without character offsets
        return None
    return pd.Series(spans, index=as_guids(guids), dtype=object)


def count_probabilities(runs: Sequence[Run], *, count_epochs: int | None = None,
                        burn_out: int | None = None) -> tuple[np.ndarray, np.ndarray, "decision.CountWindow"]:  # noqa: F821
    """(guids (N,), probabilities (N, C), window): the runs' probabilities averaged over the first
    ``window.epochs`` epochs, for ``rank_count``'s estimate of how many labels are wrong. The window is
    ``count_epochs`` when given, else chosen from the training curve (:func:`rules.choose_count_epochs`;
    each epoch's training accuracy averaged over the runs). It warns when the count can only rest on
    epochs in which the model had not yet fitted the data."""
    from training_dynamics.decisions import rules as decision
    from training_dynamics.analysis import metrics
    from training_dynamics.analysis.multirun import aligned_rows, check_label_names

    check_label_names(runs)
    dyns = [run.dynamics(progress=False) for run in runs]
    used = metrics.resolve_burn_out(burn_out, min(d.num_epochs for d in dyns), where=runs[0].path)
    ref = dyns[0]
    rows = [np.arange(len(ref.guids))] + [aligned_rows(ref, d, ref_name=str(runs[0].path), name=str(r.path))
                                          for r, d in zip(runs[1:], dyns[1:])]
    gold = np.asarray(ref.gold, dtype=np.int64)
    accuracy = np.mean([(d.logits[r, :used].argmax(axis=-1) == gold[:, None]).mean(axis=0)
                        for d, r in zip(dyns, rows)], axis=0)
    chance = float(np.bincount(gold).max() / len(gold))
    window = decision.choose_count_epochs(accuracy, chance=chance)
    if count_epochs is not None:
        window = decision.CountWindow(min(int(count_epochs), used), window.accuracy, chance, window.fitted,
                                      chosen=False)
    logger.info("%s", window.describe())
    if window.underfit:
        best = max(window.accuracy[:window.epochs])
        logger.warning("rank_count: the count rests on underfit epochs (training accuracy %.2f at best in epochs 0..%d, "
                       "%.2f by always predicting the most common label): the model had not yet fitted the data, so "
                       "the count is too high; train longer (or with a larger learning rate), or read the ranking "
                       "without a count (--decision none)", best, window.epochs - 1, chance)
    probs = np.mean([np.exp(log_softmax(d.logits[r, :window.epochs])).mean(axis=1) for d, r in zip(dyns, rows)], axis=0)
    return ref.guids, probs, window


# -- output ---------------------------------------------------------------------------------------
def dataset_name(source: dict) -> str:
    """A short name of the data source: the GLUE task or the training file's path."""
    return str(source.get("task_name") or source.get("train_file") or "")


def issue_paths(output_dir: str | os.PathLike) -> dict[str, Path]:
    """The files :func:`write_issues` writes into ``output_dir``."""
    out = Path(output_dir)
    return {"jsonl": out / ISSUES_NAME, "csv": out / ISSUES_CSV, "settings": out / SETTINGS_NAME}


def write_issues(df: pd.DataFrame, output_dir: str | os.PathLike, settings: dict) -> dict[str, Path]:
    """Write ``label_issues.jsonl``, ``label_issues.csv`` and ``label_issues_settings.json`` atomically."""
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    paths = issue_paths(output_dir)
    rows = df.assign(probabilities=[[float(p) for p in ps] for ps in df["probabilities"]])
    with fileio.atomic_write(paths["jsonl"]) as fh:
        rows.to_json(fh, orient="records", lines=True, force_ascii=False, double_precision=15)
    with fileio.atomic_write(paths["csv"]) as fh:
        as_text = {c: [json.dumps(v) for v in rows[c]] for c in ("probabilities", "seen") if c in rows}
        rows.assign(**as_text).to_csv(fh, index=False)
    fileio.write_json(paths["settings"], {**settings, "num_rows": len(df), "columns": list(df.columns)})
    logger.info("wrote %d ranked examples to %s (+ .csv)", len(df), paths["jsonl"])
    return paths


def read_issues(path: str | os.PathLike) -> tuple[pd.DataFrame, dict]:
    """Read ``label_issues.jsonl`` and the settings file beside it (``{}`` when missing)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    rows = [rec for _, rec in fileio.jsonl_records(path, error=DataError)]
    if not rows:
        raise TrainingDynamicsError(f"{path}: no examples")
    df = pd.DataFrame(rows)
    missing = [c for c in ("guid", "text", "gold", "probabilities", "score") if c not in df.columns]
    if missing:
        raise TrainingDynamicsError(f"{path}: missing column(s) {', '.join(missing)} (not written by find_label_issues.py?)")
    settings_path = path.parent / SETTINGS_NAME
    try:
        settings = fileio.json_loads(settings_path.read_text(encoding="utf-8")) if settings_path.is_file() else {}
    except json.JSONDecodeError as exc:
        raise TrainingDynamicsError(f"{settings_path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    return df, settings
