"""Find annotation errors in a token classification run, word by word, from its training dynamics.

One ranked row per recorded word (``guid`` = its sentence, ``word_index``, ``word``, the sentence as
``text``, ``gold_name``, ``predicted_name``, ``score``; the decision adds ``is_label_issue`` and
``likely_true_name``), in the format of :func:`training_dynamics.decisions.ranking.rank_examples`, so the
decisions of :mod:`training_dynamics.decisions.rules` apply unchanged.

The recorder keeps a word's gold-tag probability and its predicted tag per epoch, not the whole
distribution, so each word's ``probabilities`` (C,) are *vote probabilities*: the mean gold-tag
probability on the gold tag, and the rest shared among the other tags in proportion to how many
epochs predicted each (evenly when none did). The likely true tag is then the tag the model
predicted most often instead of the gold one.
"""

from __future__ import annotations

import logging

import numpy as np

from training_dynamics.decisions import ranking as le
from training_dynamics.analysis import metrics, selection
from training_dynamics.kinds.token.dynamics import TokenDynamics, read_token_dynamics
from training_dynamics.kinds.token.metrics import word_metrics

logger = logging.getLogger(__name__)


def vote_probabilities(dyn: TokenDynamics, *, epochs: int | None = None, num_classes: int | None = None) -> np.ndarray:
    """(W, C) vote probabilities of every word over the first ``epochs`` epochs (module docstring)."""
    pred = dyn.pred[:, :epochs]
    c = num_classes or int(max(dyn.gold.max(), pred.max()) + 1)
    w = len(dyn.gold)
    conf = np.exp(dyn.logprob[:, :epochs]).mean(axis=1)
    votes = np.zeros((w, c))
    np.add.at(votes, (np.repeat(np.arange(w), pred.shape[1]), pred.ravel()), 1.0)
    votes[np.arange(w), dyn.gold] = 0.0
    total = votes.sum(axis=1, keepdims=True)
    share = np.where(total > 0, votes / np.maximum(total, 1.0), 1.0 / (c - 1))
    share[np.arange(w), dyn.gold] = 0.0
    probs = share * (1.0 - conf)[:, None]
    probs[np.arange(w), dyn.gold] = conf
    return probs


def issues_from_token_dynamics(run, *, score: str = le.DEFAULT_DYNAMICS_SCORE, burn_out: int | None = None,
                               proportion: float = 0.33, data=None, dyn: TokenDynamics | None = None,
                               held: np.ndarray | None = None) -> "pd.DataFrame":  # noqa: F821
    """The ranked word table of a token classification run (:class:`~training_dynamics.analysis.run.Run`).

    ``data``: the training sentences (default: those named in the run's meta), for the words and texts.
    ``dyn``, ``held``: the run's dynamics and :func:`heldout_words`, when the caller has read them.
    """
    if dyn is None:
        dyn = read_token_dynamics(run.require().dynamics_dir)
        held = heldout_words(run, dyn)
    run.warn_if_incomplete(dyn.num_epochs)
    burn_out = metrics.resolve_burn_out(burn_out, dyn.num_epochs, where=dyn.dy_dir)
    cols = word_metrics(dyn, burn_out=burn_out)
    if held is not None:  # a cross-fitted run: each word's mean held-out probability of its given tag
        rows = cols["index"]
        cols["heldout_confidence"] = held[rows, :burn_out, dyn.gold[rows]].mean(axis=1)
    names = run.label_names or [str(i) for i in range(int(dyn.meta.get("num_labels") or dyn.gold.max() + 1))]
    probs = vote_probabilities(dyn, epochs=burn_out, num_classes=len(names))
    import pandas as pd

    data = data if data is not None else run.data()
    excluded = getattr(data, "excluded_guids", None)
    if excluded is not None and len(excluded):  # changed since recording (--allow_changed_data): left out
        keep = ~np.isin(cols["guid"], excluded)
        cols, probs = {k: v[keep] for k, v in cols.items()}, probs[keep]
        logger.info("left out the %d words of %d sentences changed since recording", int((~keep).sum()),
                    len(excluded))
    region = selection.region_of(pd.DataFrame(cols), proportion=proportion)
    words, texts = word_texts(cols["guid"], cols["word_index"], data)
    extra = {"word_index": cols["word_index"], "word": words, "index": cols["index"], "last_pred": cols["last_pred"]}
    extra |= {k: cols[k] for k in ("confidence", "variability", "correctness", "aum", "loss", "heldout_confidence")
              if k in cols}
    df = le.rank_examples(guids=cols["guid"], texts=texts, gold=cols["gold"], probabilities=probs,
                          score=le.dynamics_score(cols, score), score_name=le.DYNAMICS_SCORES[score][0],
                          label_names=names, region=list(region), extra=extra)
    first = ["rank", "guid", "word_index", "word"]
    out = df[first + [c for c in df.columns if c not in first]].copy()
    out.attrs = dict(df.attrs)
    return out


def word_texts(word_guids: np.ndarray, word_index: np.ndarray, data) -> tuple[list[str], list[str]]:
    """(the word, its sentence joined by spaces) of each (guid, word_index), from the training sentences."""
    from training_dynamics.core.data import DataError
    from training_dynamics.core.dynamics_file import as_guids

    sent_guids = as_guids(data.train["guid"])
    row_of = {g: i for i, g in enumerate(sent_guids.tolist())}
    tokens = data.train[:]["tokens"]  # plain lists (a dataset's column is read lazily, row by row)
    words, texts = [], []
    for g, w in zip(np.asarray(word_guids).tolist(), np.asarray(word_index).tolist()):
        row = row_of.get(g)
        if row is None or w >= len(tokens[row]):
            raise DataError(f"sentence guid {g} word {w} of the dynamics is not in the training data "
                            f"({data.source.get('train_file') or data.source.get('dataset_name')}); pass --train_file")
        words.append(tokens[row][w])
        texts.append(" ".join(tokens[row]))
    return words, texts


def heldout_words(run, dyn) -> np.ndarray | None:
    """(W, E, C) the held-out probabilities of each recorded word (``record-ner --cross_fit 2``) in the dynamics'
    word order; ``None`` when the run has none."""
    from training_dynamics.core.heldout import align_heldout, read_heldout_rows

    found = read_heldout_rows(run.dynamics_dir)
    return None if found is None else align_heldout(
        found, {"guid": dyn.word_guids, "word_index": dyn.word_index}, where=run.dynamics_dir)


def count_probabilities(run, *, count_epochs: int | None = None, burn_out: int | None = None):
    """``(guids, probabilities, epochs)`` for ``rank_count``: vote probabilities of the first half of the
    epochs (:func:`training_dynamics.decisions.rules.count_epochs`), aligned with the word table by row."""
    from training_dynamics.decisions.rules import count_epochs as default_epochs

    dyn = read_token_dynamics(run.dynamics_dir)
    used = dyn.num_epochs if burn_out is None else burn_out
    epochs = count_epochs if count_epochs is not None else default_epochs(used)
    names = run.label_names or []
    return vote_probabilities(dyn, epochs=epochs, num_classes=len(names) or None), epochs


def decide_words(df, rule: str, *, counted: np.ndarray | None = None):
    """:func:`training_dynamics.decisions.rules.decide_table` on the ranked word table (whose ``guid`` repeats:
    rows are matched by position). ``counted``: (W, C) count probabilities in the dynamics' word order
    (the table's ``index`` column)."""
    from training_dynamics.decisions.rules import decide_table

    keys = np.arange(len(df))
    count = (keys, np.asarray(counted)[df["index"].to_numpy()]) if counted is not None else None
    keyed = df.assign(guid=keys)
    keyed.attrs = dict(df.attrs)
    out, dec = decide_table(keyed, rule, count_probabilities=count)
    out["guid"] = df["guid"].to_numpy()
    return out, dec


def find_word_issues(run, *, data=None, score: str = le.DEFAULT_DYNAMICS_SCORE, rule: str = "rank_count",
                     burn_out: int | None = None, proportion: float = 0.33, count_epochs: int | None = None,
                     top_k: int | None = None):
    """(ranked word table, decision or ``None``, settings) of a token classification run: what
    :func:`training_dynamics.workflows.find_issues.find_label_issues` returns for this kind."""
    data = data if data is not None else run.data()
    dyn = read_token_dynamics(run.require().dynamics_dir)
    held = heldout_words(run, dyn)  # a cross-fitted run (record-ner --cross_fit 2)
    df = issues_from_token_dynamics(run, score=score, burn_out=burn_out, proportion=proportion, data=data, dyn=dyn,
                                    held=held)
    settings = {"source": "dynamics", "kind": run.meta.get("kind"), "top_k": top_k,
                "score_name": le.DYNAMICS_SCORES[score][0], "score": score, "burn_out": burn_out, "data": data.source,
                "dataset": le.dataset_name(data.source), "model_name_or_path": run.meta.get("model_name_or_path"),
                "run_dir": str(run.path.resolve()), "proportion": proportion}
    if len(getattr(data, "excluded_guids", ())):
        settings["left_out_changed"] = len(data.excluded_guids)
    counted = None
    if rule == "rank_count":
        if held is not None and count_epochs is None:  # count on the last held-out epoch (never trained on the word)
            last = (held.shape[1] if burn_out is None else min(burn_out, held.shape[1])) - 1
            counted = held[:, last]
            acc = float((counted.argmax(axis=1) == dyn.gold).mean())
            settings.update(count_source="held-out", count_heldout_epoch=last, heldout_accuracy=round(acc, 4))
        else:
            counted, settings["count_epochs"] = count_probabilities(run, count_epochs=count_epochs, burn_out=burn_out)
    df, dec = decide_words(df, rule, counted=counted)
    if dec is not None:  # can this run count at all? (training_dynamics.decisions.evidence)
        dec = judge_word_count(run, df, dec, epochs=settings.get("count_epochs"), burn_out=burn_out, dyn=dyn,
                               heldout=(counted, settings["count_heldout_epoch"]) if "count_heldout_epoch" in settings
                               else None)
        df["is_label_issue"] = dec.flagged
    if top_k is not None:
        df = df.head(top_k).copy()
    settings["label_names"] = df.attrs["label_names"]
    settings["decision"] = dec.summary(df.attrs["label_names"]) if dec is not None else {"rule": "none"}
    return df, dec, settings


def judge_word_count(run, df, dec, *, epochs: int | None = None, burn_out: int | None = None, heldout=None,
                     dyn: TokenDynamics | None = None):
    """The decision with only the supported flags kept when the run cannot support a count
    (:func:`training_dynamics.kinds.token.evidence.judge_tokens`, judged at the last epoch the count rests on: the
    first half of the epochs unless ``epochs`` is given; ``heldout``: ``(probabilities (W, C), epoch)`` of a
    cross-fitted run's count, judged on them)."""
    from training_dynamics.decisions.rules import count_epochs as default_epochs
    from training_dynamics.decisions.evidence import restrict
    from training_dynamics.kinds.token.evidence import judge_tokens

    dyn = dyn if dyn is not None else read_token_dynamics(run.dynamics_dir)
    used = dyn.num_epochs if burn_out is None else min(burn_out, dyn.num_epochs)
    last = (epochs if epochs is not None else default_epochs(used)) - 1
    rows = df["index"].to_numpy()
    gold = dyn.gold[rows]
    names = df.attrs.get("label_names") or run.label_names or []
    if heldout is not None:
        probs = heldout[0][rows]
        verdict = judge_tokens(probs.argmax(axis=1), gold, probs[np.arange(len(rows)), gold],
                               num_flagged=dec.num_flagged, label_names=names, likely_true=dec.likely_true,
                               where=f"held-out epoch {heldout[1]}")
    else:
        verdict = judge_tokens(dyn.pred[rows, last], gold, np.exp(dyn.logprob[rows, last]),
                               num_flagged=dec.num_flagged, label_names=names, likely_true=dec.likely_true, epoch=last)
    return restrict(dec, verdict, gold, noun="word tags")
