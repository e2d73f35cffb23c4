"""What differs between the kinds of run: the one module that knows them.

A run's kind is written in its meta at recording (``dynamics_meta.json``: ``"kind"``; a run without
one is classification, as the seed's runs are) and that is the only truth: analysis code asks
:func:`of_meta` / :func:`of_run` for the :class:`Kind` and calls it, it never branches on a kind.

A kind says:

* how its training data is loaded from a recorded source (the columns the run recorded);
* how an example is shown (``display_texts``: a pair joined by `` [SEP] ``, a prompt and response
  joined by an arrow);
* which decisions of :mod:`training_dynamics.decision` apply and which is the default, and how a
  refused one is explained;
* what a decision's summary line calls the flagged examples;
* how the review page presents an example (``review_card``: the page's title, the flag's name,
  the labelled parts of the text shown, the choices a card offers);
* how reviewed corrections become a dataset (classification: relabel; generative: drop the bad
  responses).

Adding a kind: subclass :class:`Kind`, fill in these, and register it in :data:`KINDS`
(``docs/design.md``, "Adding a kind", walks through the generative kind).
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

from .decision import DECISIONS
from .errors import TrainingDynamicsError

logger = logging.getLogger(__name__)

CLASSIFICATION = "classification"
GENERATIVE = "generative"


class KindError(TrainingDynamicsError):
    """A run of an unknown kind, or an action its kind does not support."""


class Kind:
    """Classification: texts (one or a pair) with one label each; the base every kind refines."""

    name = CLASSIFICATION
    #: decisions of :mod:`decision` that apply to this kind, and the default
    decisions: tuple[str, ...] = DECISIONS
    default_decision = "rank_count"
    scores_with_model = True  #: ``find-issues --source model`` applies
    example_noun = "label"  #: what a decision's summary counts ("labels wrong")
    writes_labels = True  #: rows written as data (``select --write_data``) carry a label column

    def load_data(self, src: dict, *, label_names: Sequence[str] | None = None, cache_dir: str | None = None,
                  where: str | os.PathLike = "the settings"):
        """The data a recorded source names (``{"task_name" | "train_file", "text_columns", "label_column",
        "max_train_samples"}``, as a run's meta or a ranking's settings hold it)."""
        from .data import load_text_classification

        _check_source(src, where, allow_task=True)
        return load_text_classification(
            task_name=src.get("task_name"), train_file=src.get("train_file"), text_columns=src.get("text_columns"),
            label_column=src.get("label_column"), label_names=label_names,
            max_train_samples=src.get("max_train_samples"), cache_dir=cache_dir)

    def display_texts(self, data) -> list[str]:
        """One string per training example of ``data``, as every tool shows it."""
        from .data import example_texts

        return example_texts(data.train, data.text_columns, separator=getattr(data, "separator", None))

    def check_decision(self, rule: str, *, source: str, where: str) -> None:
        """Refuse, in one line, a decision (or ``--source model``) this kind cannot make."""
        if source == "model" and not self.scores_with_model:
            raise KindError(f"{where} is a {self.name} run: --source model scores a classifier; use --source dynamics")
        if rule not in self.decisions:
            raise KindError(f"{where} is a {self.name} run: --decision {rule} does not apply; choose one of "
                            f"{', '.join(self.decisions)} (default {self.default_decision})")

    def describe_decision(self, dec, label_names: Sequence[str]) -> str:
        """The decision's one-line summary, in this kind's words."""
        n = len(dec.flagged)
        share = f"({100.0 * dec.num_flagged / max(n, 1):.1f}%)"
        pairs = ", ".join(f"{p['given']} -> {p['likely_true']}: {p['count']}"
                          for p in dec.summary(label_names)["by_class_pair"])
        return f"{dec.rule}: estimated {dec.num_flagged} of {n} labels wrong {share}{': ' + pairs if pairs else ''}"

    def finish_corrections(self, df):
        """The corrected table as a dataset of this kind (classification: the relabelled rows, unchanged)."""
        return df

    def review_card(self) -> dict:
        """How the review page presents an example of this kind (JSON for the page's script):
        ``title`` (the page's title word), ``flag`` (the tag of a flagged row), ``separator`` and
        ``parts`` (the shown text split into labelled parts; ``None``: one text), ``choices``
        (``"classes"``: a button per class; ``"keep_drop"``: keep, or drop = relabel to the second
        label), ``learned`` (the metric shown as "learned", or ``None``) and whether the page warns
        about bare integer label ids."""
        return {"title": "Label review", "flag": "flagged", "separator": None, "parts": None, "choices": "classes",
                "learned": None, "warn_integer_labels": True}


class GenerativeKind(Kind):
    """A causal LM on prompt/response (or plain text) data: one "class" per example (the response)."""

    name = GENERATIVE
    decisions = ("score_mixture", "loss_mixture", "aum_mixture", "none")
    default_decision = "score_mixture"
    scores_with_model = False
    example_noun = "response"
    writes_labels = False  #: prompt, response and guid: what record-clm reads

    def load_data(self, src: dict, *, label_names: Sequence[str] | None = None, cache_dir: str | None = None,
                  where: str | os.PathLike = "the settings"):
        from .clm_data import load_generative_columns

        _check_source(src, where, allow_task=False)
        return load_generative_columns(src["train_file"], src.get("text_columns"),
                                       max_train_samples=src.get("max_train_samples"), cache_dir=cache_dir)

    def check_decision(self, rule: str, *, source: str, where: str) -> None:
        if source == "model" or rule not in self.decisions:
            what = ("--source model scores a classifier" if source == "model"
                    else f"--decision {rule} counts label errors between classes")
            raise KindError(f"{where} is a generative run (responses, no classes): {what}; use --source dynamics with "
                            f"--decision {self.default_decision} (its default), "
                            f"{', '.join(d for d in self.decisions if d != self.default_decision)}")

    def describe_decision(self, dec, label_names: Sequence[str]) -> str:
        n = len(dec.flagged)
        return (f"{dec.rule}: {dec.num_flagged} of {n} responses flagged as suspicious "
                f"({100.0 * dec.num_flagged / max(n, 1):.1f}%)")

    def finish_corrections(self, df):
        """Responses relabelled as bad (``other``) are left out; the rest keep prompt, response and guid."""
        from .clm_data import LABEL_NAMES

        bad = df["corrected_label"] == LABEL_NAMES[1]
        logger.info("left out %d response(s) marked bad (%s); %d prompt/response pairs remain", int(bad.sum()),
                    LABEL_NAMES[1], int((~bad).sum()))
        return df[~bad].drop(columns=["original_label", "corrected_label"]).reset_index(drop=True)

    def review_card(self) -> dict:
        """Prompt and response as two labelled parts, how well the model learned the response
        (its confidence), keep or drop; no classes."""
        from .clm_data import SEPARATOR

        return {"title": "Response review", "flag": "suspicious response", "separator": SEPARATOR,
                "parts": ["prompt", "response"], "choices": "keep_drop", "learned": "confidence",
                "warn_integer_labels": False}


def _check_source(src: dict, where, *, allow_task: bool) -> None:
    from .data import DataError

    if not (src.get("train_file") or (allow_task and src.get("task_name"))):
        raise DataError(f"{where}: names no training data; pass --train_file")
    if src.get("train_file") and not os.path.exists(src["train_file"]):
        raise DataError(f"{src['train_file']}: the training file named in {where} is gone "
                        "(moved?); pass --train_file with its new path")


#: every kind, by the name a run's meta records
KINDS: dict[str, Kind] = {CLASSIFICATION: Kind(), GENERATIVE: GenerativeKind()}


def get(name: str | None) -> Kind:
    """The kind called ``name`` (``None``: classification, the seed's runs)."""
    kind = KINDS.get(name or CLASSIFICATION)
    if kind is None:
        raise KindError(f"unknown kind of run {name!r} (known: {', '.join(KINDS)}); a newer version of "
                        "training-dynamics recorded it?")
    return kind


def of_meta(meta: dict) -> Kind:
    """The kind a run's (or a ranking's, or a corrections file's) meta records."""
    return get((meta or {}).get("kind"))


def of_run(run) -> Kind:
    """The kind of a :class:`~training_dynamics.run.Run`."""
    return of_meta(run.meta)


def of_runs(runs: Sequence) -> Kind:
    """The one kind of several runs; a one-line error when they mix kinds."""
    kinds = {of_run(r).name for r in runs}
    if len(kinds) > 1:
        raise KindError(f"the runs mix kinds ({', '.join(sorted(kinds))}); give runs of one kind")
    return of_run(runs[0]) if runs else get(None)
