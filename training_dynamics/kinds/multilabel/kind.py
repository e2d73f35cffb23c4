"""The multi-label kind: what :mod:`training_dynamics.kinds` asks of a kind, for multi-label text classification.

A run records every (example, label) pair (:mod:`.record`, :mod:`.dynamics`); its metrics are a pair
table and an example table (:mod:`.metrics`); ``find-issues`` ranks pairs (:mod:`.issues`); the
review page shows each example's labels as toggles (:mod:`.review`); ``apply`` writes the corrected
label lists back in the file's own format.
"""

from __future__ import annotations

import os
from typing import Sequence

from training_dynamics.core.kind import Kind, KindError
from training_dynamics.kinds.multilabel import data as ml_data
from training_dynamics.kinds.multilabel.data import DECISIONS, DEFAULT_DECISION

NAME = ml_data.KIND
#: the decisions that apply to pairs (:mod:`.issues`), and the default


class MultiLabelKind(Kind):
    """Texts with any number of labels each; ranked and reviewed per (example, label)."""

    name = NAME
    decisions = DECISIONS
    default_decision = DEFAULT_DECISION
    example_noun = "(example, label) pair"
    problem_type = ml_data.PROBLEM_TYPE  #: ``record --problem_type`` (transformers' name) that records this kind
    output_formats = (".jsonl", ".json", ".parquet")  #: a row's labels are a list

    def load_data(self, src: dict, *, label_names: Sequence[str] | None = None, cache_dir: str | None = None,
                  where: str | os.PathLike = "the settings"):
        if not src.get("train_file"):
            raise ml_data.DataError(f"{where}: names no training data; pass --train_file")
        if not os.path.exists(src["train_file"]):
            raise ml_data.DataError(f"{src['train_file']}: the training file named in {where} is gone (moved?); pass "
                                    "--train_file with its new path")
        return ml_data.load_multilabel(train_file=src["train_file"], text_columns=src.get("text_columns"),
                                       label_column=src.get("label_column"), label_names=label_names,
                                       max_train_samples=src.get("max_train_samples"), cache_dir=cache_dir)

    def recording(self):
        """``(data arguments class, trainer builder)`` of ``record --problem_type multi_label_classification``."""
        from training_dynamics.kinds.multilabel.arguments import MultiLabelDataArguments
        from training_dynamics.kinds.multilabel.record import build_trainer

        return MultiLabelDataArguments, build_trainer

    def write_metrics(self, run, *, burn_out=None, include_ci=False, progress=True, output_format="auto"):
        """Pairs (``td_pair_metrics.jsonl``) and examples (``td_metrics.jsonl``: each at its least confident label)."""
        from training_dynamics.kinds.multilabel import metrics

        return metrics.write_run_metrics(run, burn_out=burn_out, include_ci=include_ci, progress=progress)

    def compute_metrics(self, run, *, burn_out=None, include_ci=False, progress=False) -> dict:
        from training_dynamics.kinds.multilabel import metrics

        return metrics.run_metrics(run, burn_out=burn_out, include_ci=include_ci)

    def check_joinable(self, run) -> None:
        raise KindError(f"{run.path} is a multi-label run: averaging and comparing its runs is not supported yet; "
                        "give one --run_dir")

    def check_decision(self, rule: str, *, source: str, where: str) -> None:
        if source == "model":
            raise KindError(f"{where} is a multi-label run: --source model scores a single-label classifier; use "
                            "--source dynamics")
        super().check_decision(rule, source=source, where=where)

    def extra_maps(self, run) -> dict:
        """The map of (example, label) pairs, one panel per label."""
        from training_dynamics.kinds.multilabel.metrics import read_pair_metrics

        pairs = read_pair_metrics(run)
        shown = pairs.assign(gold=pairs["label_index"])  # a panel per label
        return {"pair_map": (shown, "Map of (example, label) pairs, by label",
                             {"facet_by_gold": True, "label_names": run.label_names})}

    def write_selected_data(self, path, data, guids):
        """The selected examples in the file's own columns (text, labels as the file wrote them, guid)."""
        from training_dynamics.kinds.multilabel.review import write_rows

        return write_rows(path, data, guids)

    def heldout_scorer(self, trainer, rows, data):
        """Every (example, label) pair of the other half (:func:`~training_dynamics.kinds.multilabel.record.heldout_scorer`)."""
        from training_dynamics.kinds.multilabel.record import heldout_scorer

        return heldout_scorer(trainer, rows, data)

    def find_issues(self, runs, *, data=None, source: str = "dynamics", score: str = "confidence",
                    rule: str | None = None, burn_out: int | None = None, proportion: float = 0.33,
                    count_epochs: int | None = None, top_k: int | None = None, **_):
        """(ranked pair table, decision, settings): one row per (example, label) (:mod:`.issues`)."""
        from training_dynamics.kinds.multilabel import issues as ml_issues

        if len(runs) != 1:
            raise KindError(f"{runs[0].path if runs else 'the run'} is a multi-label run: give one --run_dir "
                            "(multi-label runs are not averaged yet)")
        return ml_issues.find_pair_issues(runs[0], data=data, score=score, rule=rule or self.default_decision,
                                          burn_out=burn_out, proportion=proportion, count_epochs=count_epochs,
                                          top_k=top_k)

    def describe_decision(self, dec, label_names: Sequence[str]) -> str:
        from training_dynamics.kinds.multilabel.issues import describe

        return describe(dec)

    def review_card(self) -> dict:
        """The text with its labels as toggles, the pair's own label boxed (``choices: "toggles"``)."""
        return {"title": "Multi-label review", "flag": "flagged", "separator": None, "parts": None,
                "choices": "toggles", "learned": None, "warn_integer_labels": True}

    def review_rows(self, issues, settings: dict, label_names: Sequence[str]):
        from training_dynamics.core.errors import TrainingDynamicsError
        from training_dynamics.kinds.multilabel.review import review_rows

        src = {k: v for k, v in (settings.get("data") or {}).items() if k != "max_train_samples"}
        try:
            data = self.load_data(src, label_names=[str(n) for n in label_names], where="the issues' settings")
        except (TrainingDynamicsError, OSError, ValueError) as exc:
            raise TrainingDynamicsError(f"the review page of a multi-label ranking shows each example's labels, but "
                                        f"the training data cannot be read: {exc}") from None
        rows, fingerprint, warnings, extra = review_rows(issues, settings, label_names, data=data)
        return rows, fingerprint, warnings, extra  # on the data map, a pair is its example

    labeling_choice = "multiple"  #: an annotator in Label Studio / Argilla picks the example's whole label set

    def labeling_examples(self, rows, payload: dict) -> list[dict]:
        """One task / record per example: its given labels and the suggested changes (add / remove a label)."""
        from training_dynamics.kinds.multilabel.review import labeling_examples

        return labeling_examples(rows, payload)

    def labeling_corrections(self, choices, *, issues, label_names: Sequence[str], where: str) -> list[dict]:
        """Pair corrections (``label_index``, ``fix``, as the review page exports them) from the chosen label sets."""
        from training_dynamics.kinds.multilabel.review import labeling_corrections

        return labeling_corrections(choices, issues=issues, label_names=label_names, where=where)

    def apply_corrections(self, data, parsed, *, where: str, unsure: str, skip_changed: bool, fingerprints):
        from training_dynamics.kinds.multilabel.review import apply_pair_corrections

        return apply_pair_corrections(data, parsed, where=where, unsure=unsure, skip_changed=skip_changed,
                                      fingerprints=fingerprints)


KIND = MultiLabelKind()
