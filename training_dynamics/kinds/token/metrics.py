"""Per-word and per-sentence training-dynamics metrics of a token classification run.

Per word (one row per recorded word, keyed by ``guid`` (its sentence) and ``word_index``): every
column of :data:`training_dynamics.analysis.metrics.COLUMNS`, with the definitions of
:mod:`training_dynamics.analysis.metrics` applied to the word's first sub-token (``p_e`` its gold tag's
probability at epoch ``e``, correct when the predicted tag is the gold tag). ``index`` is the word's
row in the table.

Per sentence (:data:`SENTENCE_COLUMNS`): a sentence is as doubtful as its most doubtful word. The
seed's columns (``confidence``, ``variability``, ``correctness``, ``forgetfulness``,
``threshold_closeness``) are those of its *least confident word* (``least_confident_word`` is its
``word_index``), so the sentence map is the word map seen one point per sentence;
``mean_confidence`` and ``mean_variability`` average over its words, ``aum`` is its lowest word AUM,
``loss`` its mean word loss, ``num_words`` and ``num_never_learned`` count words.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from training_dynamics.core.version import __version__
from training_dynamics.analysis import metrics
from training_dynamics.kinds.token.dynamics import TokenDynamics, read_token_dynamics

logger = logging.getLogger(__name__)

SENTENCE_METRICS_NAME = "td_sentence_metrics.jsonl"
WORD_COLUMNS = ("guid", "word_index") + metrics.COLUMNS[1:]
SENTENCE_COLUMNS = ("guid", "index", "threshold_closeness", "confidence", "variability", "correctness", "forgetfulness",
                    "least_confident_word", "mean_confidence", "mean_variability", "aum", "loss", "num_words",
                    "num_never_learned")


def word_metrics(dyn: TokenDynamics, *, burn_out: int | None = None, include_ci: bool = False) -> dict[str, np.ndarray]:
    """``{column: (W,) array}`` in :data:`WORD_COLUMNS` order over the first ``burn_out`` epochs."""
    burn_out = metrics.resolve_burn_out(burn_out, dyn.num_epochs, where=dyn.dy_dir)
    cols = metrics.aggregate_epochs(dyn.per_epoch(burn_out), dyn.gold, include_ci=include_ci)
    cols |= {"guid": dyn.word_guids, "word_index": dyn.word_index, "index": np.arange(dyn.num_words_total)}
    return {c: cols[c] for c in WORD_COLUMNS}


def sentence_metrics(words: dict[str, np.ndarray], guids: np.ndarray, num_words: np.ndarray) -> dict[str, np.ndarray]:
    """``{column: (N,) array}`` in :data:`SENTENCE_COLUMNS` order from :func:`word_metrics` (words
    grouped by sentence, sentences in ``guids`` order with ``num_words`` words each)."""
    starts = np.concatenate([[0], np.cumsum(num_words)[:-1]]).astype(np.int64)
    sentence = np.repeat(np.arange(len(guids)), num_words)
    conf = words["confidence"]
    # the least confident word of each sentence (ties: the first): lexsort by (sentence, confidence, position)
    order = np.lexsort((np.arange(len(conf)), conf, sentence))
    worst = order[starts]
    n = np.asarray(num_words, dtype=np.float64)
    return {
        "guid": guids, "index": np.arange(len(guids)),
        "threshold_closeness": words["threshold_closeness"][worst], "confidence": conf[worst],
        "variability": words["variability"][worst], "correctness": words["correctness"][worst],
        "forgetfulness": words["forgetfulness"][worst], "least_confident_word": words["word_index"][worst],
        "mean_confidence": np.add.reduceat(conf, starts) / n,
        "mean_variability": np.add.reduceat(words["variability"], starts) / n,
        "aum": np.minimum.reduceat(words["aum"], starts), "loss": np.add.reduceat(words["loss"], starts) / n,
        "num_words": np.asarray(num_words, dtype=np.int64),
        "num_never_learned": np.add.reduceat(words["never_learned"].astype(np.int64), starts),
    }


def training_summary(dyn: TokenDynamics) -> dict[str, np.ndarray]:
    """Per recorded epoch, over all words: mean loss and accuracy (``num_examples`` = words)."""
    e = dyn.num_epochs
    return {"epoch": np.arange(e), "loss": -dyn.logprob.mean(axis=0), "accuracy": (dyn.pred == dyn.gold[:, None]).mean(axis=0),
            "num_examples": np.full(e, dyn.num_words_total)}


def write_run_metrics(run, *, burn_out: int | None = None, include_ci: bool = False,
                      progress: bool = True) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """:meth:`training_dynamics.analysis.run.Run.write_metrics` of a token classification run: ``td_metrics.jsonl``
    (words), ``td_sentence_metrics.jsonl`` (sentences), ``td_training_summary.jsonl`` and the settings."""
    t0 = time.perf_counter()
    dyn = read_token_dynamics(run.require().dynamics_dir)
    run.warn_if_incomplete(dyn.num_epochs)
    burn_out = metrics.resolve_burn_out(burn_out, dyn.num_epochs, where=dyn.dy_dir)
    words = word_metrics(dyn, burn_out=burn_out, include_ci=include_ci)
    sentences = sentence_metrics(words, dyn.guids, dyn.num_words)
    summary = training_summary(dyn)
    settings = {"kind": dyn.meta.get("kind"), "burn_out": burn_out, "include_ci": bool(include_ci),
                "epochs_used": list(range(burn_out)), "num_epochs_recorded": dyn.num_epochs,
                "num_examples": dyn.num_words_total, "num_sentences": dyn.num_sentences,
                "num_classes": len(run.label_names or []) or int(dyn.meta.get("num_labels") or 0),
                "columns": list(metrics.COLUMNS), "version": __version__,
                "dynamics_dir": dyn.dy_dir.name, "sources": dyn.sources}
    run.save_metrics(words, summary, settings, output_format="jsonl", tables={SENTENCE_METRICS_NAME: sentences})
    logger.info("%d words in %d sentences x %d epochs: metrics in %.2fs", dyn.num_words_total, dyn.num_sentences,
                dyn.num_epochs, time.perf_counter() - t0)
    return words, summary


def run_metrics(run, *, burn_out: int | None = None, include_ci: bool = False) -> dict[str, np.ndarray]:
    """The word table of a run, computed without writing anything."""
    return word_metrics(read_token_dynamics(run.require().dynamics_dir), burn_out=burn_out, include_ci=include_ci)


def read_sentence_metrics(run_dir) -> "pd.DataFrame":  # noqa: F821
    """``td_sentence_metrics.jsonl`` of a run folder (written by ``training-dynamics metrics``)."""
    import pandas as pd

    from pathlib import Path

    path = Path(run_dir) / SENTENCE_METRICS_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; run `training-dynamics metrics --run_dir {run_dir}` first")
    return pd.read_json(path, lines=True, dtype=False)
