"""What differs between the kinds of run: the one module that knows them.

A run's kind is written in its meta at recording (``dynamics_meta.json``: ``"kind"``; a run without
one is classification, as the seed's runs are) and that is the only truth: analysis code asks
:func:`of_meta` / :func:`of_run` for the :class:`Kind` and calls it, it never branches on a kind.

A kind says:

* how its training data is loaded from a recorded source (the columns the run recorded);
* how an example is shown (``display_texts``: a pair joined by `` [SEP] ``, a prompt and response
  joined by an arrow, a conversation one line per turn);
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
TOKEN_CLASSIFICATION = "token_classification"


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
    ranks_words = False  #: find-issues ranks words (token_issues), not examples
    joins_runs = True  #: runs of this kind can be averaged (metrics, find-issues) and compared

    def check_joinable(self, run) -> None:
        """Refuse, in one line, to average or compare a run of a kind that cannot be joined yet."""
        if not self.joins_runs:
            raise KindError(f"{run.path} is a {self.name} run: averaging and comparing its runs is not supported yet; "
                            "give one --run_dir (metrics, plot, select and find-issues work on it)")
    writes_labels = True  #: rows written as data (``select --write_data``) carry a label column
    corrections_name_labels = True  #: a corrections file names the data's own labels (apply checks them first)

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

    def metrics_module(self):
        """The module that computes and writes this kind's metrics tables (``write_run_metrics(run, ...)``,
        ``run_metrics(run, ...)``), or ``None``: :mod:`training_dynamics.metrics`, one row per example."""
        return None

    def extra_maps(self, run) -> dict:
        """More data maps of a run beside its map of examples: ``{file name part: (table, title)}``."""
        return {}

    def selection_table(self, rm):
        """The table ``select`` chooses rows of (``rm``: :class:`~training_dynamics.run.RunMetrics`)."""
        return rm.df

    def write_selected_data(self, path, data, guids):
        """Write the selected examples of ``data`` as a file the recording command of this kind reads."""
        from .selection import write_selected_data

        return write_selected_data(path, data.train, guids, text_columns=data.text_columns,
                                   label_names=data.label_names, with_label=self.writes_labels)

    def binding_labels(self, data, label_names: Sequence[str] | None = None) -> list[str]:
        """Each training example's label as its binding (and its review fingerprint) hashes it: the label's
        name (``label_names``: the names of the ids, default ``data.label_names``)."""
        import numpy as np

        names = np.asarray(list(label_names if label_names is not None else data.label_names), dtype=object)
        return names[np.asarray(data.train["label"], dtype=np.int64)].tolist()

    #: what ``apply --output`` may write for this kind
    output_formats: tuple[str, ...] = (".jsonl", ".json", ".csv", ".tsv", ".parquet")

    def review_rows(self, issues, settings: dict, label_names: Sequence[str]):
        """``(rows, dataset fingerprint or None, warnings, extra payload)`` for the review page of ranked
        ``issues`` (:func:`training_dynamics.review.data_check`; no extra payload for one row per example)."""
        from .review import data_check

        fingerprint, warnings = data_check(issues, settings, label_names)
        return issues, fingerprint, warnings, {}

    def apply_corrections(self, data, parsed, *, where: str, unsure: str, skip_changed: bool, fingerprints):
        """The corrected dataset as a table (:func:`training_dynamics.corrections.apply_corrections`, then
        :meth:`finish_corrections`)."""
        from .corrections import apply_corrections

        return self.finish_corrections(apply_corrections(data, parsed, where=where, unsure=unsure,
                                                         skip_changed=skip_changed, fingerprints=fingerprints))

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

    def judge_count(self, df, dec, *, runs, source: str, window=None, burn_out: int | None = None):
        """Whether the run's evidence supports the decision's count (:mod:`training_dynamics.evidence`)."""
        from .evidence import judge_table

        return judge_table(df, dec, runs=runs, source=source, window=window, burn_out=burn_out)

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
    corrections_name_labels = False  #: ``response`` / ``other``, the page's names, not the data's

    def load_data(self, src: dict, *, label_names: Sequence[str] | None = None, cache_dir: str | None = None,
                  where: str | os.PathLike = "the settings"):
        from .clm_data import load_generative_columns

        _check_source(src, where, allow_task=False)
        return load_generative_columns(src["train_file"], src.get("text_columns"),
                                       max_train_samples=src.get("max_train_samples"), cache_dir=cache_dir)

    def display_texts(self, data) -> list[str]:
        """Prompt, arrow, response; a conversation one ``role: content`` line per turn, the assistant turns
        numbered (:func:`training_dynamics.chat.conversation_text`)."""
        if getattr(data, "conversational", False):
            from .chat import conversation_text

            return [conversation_text(m) for m in data.train[data.text_columns[0]]]
        return super().display_texts(data)

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

    def judge_count(self, df, dec, *, runs, source: str, window=None, burn_out: int | None = None):
        """Flags are supported when the loss fell and the responses were learned (:func:`evidence.judge_generative`)."""
        from .evidence import judge_generative_runs

        return judge_generative_runs(runs, dec, burn_out=burn_out)

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


class TokenClassificationKind(Kind):
    """A token classifier (NER) on tagged sentences: one row per word; ``guid`` is the sentence.

    Decisions rank the words (:mod:`training_dynamics.token_issues`) from each word's vote
    probabilities; confident learning and the AUM threshold need full distributions or a threshold run.
    """

    name = TOKEN_CLASSIFICATION
    decisions = ("rank_count", "score_mixture", "loss_mixture", "aum_mixture", "none")
    default_decision = "rank_count"
    scores_with_model = False
    example_noun = "word tag"
    ranks_words = True
    joins_runs = False
    output_formats = (".jsonl", ".json", ".parquet")  #: a sentence's words and tags are lists

    def review_card(self) -> dict:
        """A card per word: its sentence as BIO spans (the page draws them from the payload's
        ``sentences``), a button per tag."""
        return {"title": "Tag review", "flag": "flagged", "separator": None, "parts": None, "choices": "classes",
                "learned": None, "warn_integer_labels": True}

    def load_data(self, src: dict, *, label_names: Sequence[str] | None = None, cache_dir: str | None = None,
                  where: str | os.PathLike = "the settings"):
        from .ner_data import load_token_source

        return load_token_source(src, label_names=label_names, cache_dir=cache_dir, where=str(where))

    def metrics_module(self):
        from . import token_metrics

        return token_metrics

    def selection_table(self, rm):
        """Sentences (``td_sentence_metrics.jsonl``: each at its least confident word), not words."""
        from .token_metrics import read_sentence_metrics

        return read_sentence_metrics(rm.run.path)

    def write_selected_data(self, path, data, guids):
        """The selected sentences in the columns the run read (words, tag names, guid): ``record-ner`` reads it."""
        from .ner_data import write_sentences

        return write_sentences(path, data, guids)

    def extra_maps(self, run) -> dict:
        """The sentence map: one point per sentence, at its least confident word."""
        from .token_metrics import read_sentence_metrics

        return {"sentence_map": (read_sentence_metrics(run.path), "Sentence Map (each sentence at its least "
                                                                  "confident word)")}

    def display_texts(self, data) -> list[str]:
        """A sentence: its words joined by spaces."""
        return [" ".join(words) for words in data.train["tokens"]]

    def binding_labels(self, data, label_names: Sequence[str] | None = None) -> list[str]:
        """A sentence's tags, by name, joined by spaces."""
        names = list(label_names if label_names is not None else data.label_names)
        return [" ".join(names[t] for t in tags) for tags in data.train["tags"]]

    def review_rows(self, issues, settings: dict, label_names: Sequence[str]):
        """Words of sentences still as ranked, each sentence's words and tags, and (guid, word_index) keys
        (:func:`training_dynamics.token_review.review_rows`)."""
        from .token_review import review_rows

        return review_rows(issues, settings, label_names)

    def apply_corrections(self, data, parsed, *, where: str, unsure: str, skip_changed: bool, fingerprints):
        """The corrected sentences in the columns the data had (:func:`training_dynamics.token_review.apply_word_corrections`)."""
        from .token_review import apply_word_corrections

        return apply_word_corrections(data, parsed, where=where, unsure=unsure, skip_changed=skip_changed,
                                      fingerprints=fingerprints)

    def describe_decision(self, dec, label_names: Sequence[str]) -> str:
        n = len(dec.flagged)
        pairs = dec.summary(label_names)["by_class_pair"]
        top = sorted(pairs, key=lambda p: -p["count"])[:8]
        more = f", ... ({len(pairs) - len(top)} more pairs)" if len(pairs) > len(top) else ""
        listed = ", ".join(f"{p['given']} -> {p['likely_true']}: {p['count']}" for p in top)
        return (f"{dec.rule}: estimated {dec.num_flagged} of {n} word tags wrong "
                f"({100.0 * dec.num_flagged / max(n, 1):.1f}%){': ' + listed + more if listed else ''}")


def _check_source(src: dict, where, *, allow_task: bool) -> None:
    from .data import DataError

    if not (src.get("train_file") or (allow_task and src.get("task_name"))):
        raise DataError(f"{where}: names no training data; pass --train_file")
    if src.get("train_file") and not os.path.exists(src["train_file"]):
        raise DataError(f"{src['train_file']}: the training file named in {where} is gone "
                        "(moved?); pass --train_file with its new path")


#: every kind, by the name a run's meta records
KINDS: dict[str, Kind] = {CLASSIFICATION: Kind(), GENERATIVE: GenerativeKind(),
                          TOKEN_CLASSIFICATION: TokenClassificationKind()}


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
