"""The token classification kind (NER): one row per word; ``guid`` is the sentence."""

from __future__ import annotations

import os
from typing import Sequence

from training_dynamics.core.kind import Kind, KindError
from training_dynamics.kinds.token.data import KIND as NAME
from training_dynamics.kinds.token.data import load_token_source, write_sentences


def _metrics():
    from training_dynamics.kinds.token import metrics  # pandas: imported when a token run's metrics are needed

    return metrics


class TokenClassificationKind(Kind):
    """A token classifier on tagged sentences. Decisions rank the words
    (:mod:`training_dynamics.kinds.token.issues`) from each word's vote probabilities; confident learning
    and the AUM threshold need full distributions or a threshold run."""

    name = NAME
    example_noun = "word tag"
    decisions = ("rank_count", "score_mixture", "loss_mixture", "aum_mixture", "none")
    default_decision = "rank_count"
    #: a sentence's words and tags are lists; CoNLL: one word per line (:mod:`training_dynamics.kinds.token.conll`)
    output_formats = (".jsonl", ".json", ".parquet", ".conll", ".iob", ".bio", ".txt")
    metric_columns = {"word_index": "int"}  #: td_metrics (one row per word) beside the shared columns
    meta_counts = ("num_examples", "num_sentences", "num_words")

    def load_data(self, src: dict, *, label_names: Sequence[str] | None = None, cache_dir: str | None = None,
                  where: str | os.PathLike = "the settings"):
        return load_token_source(src, label_names=label_names, cache_dir=cache_dir, where=str(where))

    def write_metrics(self, run, *, burn_out=None, include_ci=False, progress=True, output_format="auto"):
        """Words (``td_metrics.jsonl``) and sentences (``td_sentence_metrics.jsonl``)."""
        return _metrics().write_run_metrics(run, burn_out=burn_out, include_ci=include_ci, progress=progress)

    def compute_metrics(self, run, *, burn_out=None, include_ci=False, progress=False) -> dict:
        return _metrics().run_metrics(run, burn_out=burn_out, include_ci=include_ci)

    def extra_maps(self, run) -> dict:
        """The sentence map: one point per sentence, at its least confident word."""
        return {"sentence_map": (_metrics().read_sentence_metrics(run.path),
                                 "Sentence Map (each sentence at its least confident word)")}

    def selection_table(self, rm):
        """Sentences (``td_sentence_metrics.jsonl``: each at its least confident word), not words."""
        return _metrics().read_sentence_metrics(rm.run.path)

    def write_selected_data(self, path, data, guids):
        """The selected sentences in the columns the run read (words, tag names, guid): ``record-ner`` reads it."""
        return write_sentences(path, data, guids)

    def heldout_scorer(self, trainer, rows, data):
        """Each recorded word of the other half, by its first sub-token (:func:`~training_dynamics.kinds.token.record.heldout_scorer`)."""
        from training_dynamics.kinds.token.record import heldout_scorer

        return heldout_scorer(trainer, rows, data)

    def check_joinable(self, run) -> None:
        raise KindError(f"{run.path} is a {self.name} run: averaging and comparing its runs is not supported yet; "
                        "give one --run_dir (metrics, plot, select and find-issues work on it)")

    def find_issues(self, runs: Sequence, *, data, source: str, score: str, rule: str, burn_out=None,
                    proportion: float = 0.33, count_epochs=None, top_k=None, **_):
        """Words ranked from their vote probabilities (:func:`~training_dynamics.kinds.token.issues.find_word_issues`)."""
        from training_dynamics.kinds.token.issues import find_word_issues

        if len(runs) != 1:
            raise KindError(f"{runs[0].path if runs else 'find-issues'} is a token classification run: give one "
                            "--run_dir (token runs are not averaged yet)")
        return find_word_issues(runs[0], data=data, score=score, rule=rule, burn_out=burn_out,
                                proportion=proportion, count_epochs=count_epochs, top_k=top_k)

    def describe_decision(self, dec, label_names: Sequence[str]) -> str:
        n = len(dec.flagged)
        pairs = dec.summary(label_names)["by_class_pair"]
        top = sorted(pairs, key=lambda p: -p["count"])[:8]
        more = f", ... ({len(pairs) - len(top)} more pairs)" if len(pairs) > len(top) else ""
        listed = ", ".join(f"{p['given']} -> {p['likely_true']}: {p['count']}" for p in top)
        return (f"{dec.rule}: estimated {dec.num_flagged} of {n} word tags wrong "
                f"({100.0 * dec.num_flagged / max(n, 1):.1f}%){': ' + listed + more if listed else ''}")

    def review_card(self) -> dict:
        """A card per word: its sentence as BIO spans (the page draws them from the payload's
        ``sentences``), a button per tag."""
        return {"title": "Tag review", "flag": "flagged", "separator": None, "parts": None, "choices": "classes",
                "learned": None, "warn_integer_labels": True}

    def review_rows(self, issues, settings: dict, label_names: Sequence[str]):
        """Words of sentences still as ranked, each sentence's words and tags, and (guid, word_index) keys
        (:func:`training_dynamics.kinds.token.review.review_rows`)."""
        from training_dynamics.kinds.token.review import review_rows

        rows, fingerprint, warnings, extra = review_rows(issues, settings, label_names, data=self._data(settings, label_names))
        return rows, fingerprint, warnings, {**extra, "map_by": ["guid", "word_index"]}

    def _data(self, settings: dict, label_names: Sequence[str]):
        from training_dynamics.core.errors import TrainingDynamicsError

        src = {k: v for k, v in (settings.get("data") or {}).items() if k != "max_train_samples"}
        try:
            return self.load_data(src, label_names=[str(n) for n in label_names], where="the issues' settings")
        except (TrainingDynamicsError, OSError, ValueError) as exc:
            raise TrainingDynamicsError(f"the review page of a word ranking shows each sentence's tags, but the "
                                        f"training sentences cannot be read: {exc}") from None

    def output_writers(self, data) -> dict:
        """CoNLL (one word and its tag per line): the corrected tags written back into a copy of the CoNLL file
        the sentences came from (:func:`~training_dynamics.kinds.token.conll.write_corrected_conll`)."""
        from functools import partial

        from training_dynamics.kinds.token.conll import SUFFIXES, write_corrected_conll

        return {s: partial(write_corrected_conll, source=data.source) for s in SUFFIXES}

    def apply_corrections(self, data, parsed, *, where: str, unsure: str, skip_changed: bool, fingerprints):
        """The corrected sentences in the columns the data had
        (:func:`training_dynamics.kinds.token.review.apply_word_corrections`)."""
        from training_dynamics.kinds.token.review import apply_word_corrections

        return apply_word_corrections(data, parsed, where=where, unsure=unsure, skip_changed=skip_changed,
                                      fingerprints=fingerprints)


KIND = TokenClassificationKind()
