"""Find label issues as a library call: rank the examples, decide which labels are wrong, return a table.

``training-dynamics find-issues`` parses its flags and calls :func:`find_label_issues`; so can a
notebook::

    from training_dynamics.workflows.find_issues import find_label_issues
    from training_dynamics.analysis.run import Run

    found = find_label_issues(runs=[Run("dy_log/sst2/bert-tiny")])
    found.table.head()           # guid, text, gold_name, score, is_label_issue, likely_true_name, ...
    print(found.describe())      # rank_count: estimated 579 of 5000 labels wrong (11.6%): ...
    found.write("issues")        # label_issues.jsonl, .csv and label_issues_settings.json
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from training_dynamics.core import kind as kinds
from training_dynamics.decisions import ranking as le
from training_dynamics.decisions import rules as decision
from training_dynamics.core.errors import TrainingDynamicsError

if TYPE_CHECKING:
    import pandas as pd

    from training_dynamics.analysis.run import Run

logger = logging.getLogger(__name__)


@dataclass
class Issues:
    """The ranked examples (most suspicious first), the decision made on them and what produced them."""

    table: "pd.DataFrame"
    decision: decision.Decision | None
    settings: dict = field(default_factory=dict)
    kind: kinds.Kind = field(default_factory=lambda: kinds.get(None))

    @property
    def label_names(self) -> list[str]:
        return list(self.table.attrs["label_names"])

    def describe(self) -> str:
        """The decision in one line, in the words of the run's kind ("" without a decision); when the run
        cannot support a count, the line that says so (:mod:`training_dynamics.decisions.evidence`)."""
        if self.decision is None:
            return ""
        return self.decision.details.get("cannot_count") or self.kind.describe_decision(self.decision, self.label_names)

    def describe_agreement(self) -> str:
        """How far the sources at hand agree, in one line ("" with one source; :mod:`training_dynamics.decisions.agreement`)."""
        from training_dynamics.decisions.agreement import describe

        return describe(self.settings["agreement"]) if self.settings.get("agreement") else ""

    def rename_labels(self, names: Sequence[str], *, flag: str = "--class_names") -> None:
        """Name the classes ``names`` (in id order) in the table (``*_name`` columns), the settings and the
        decision's summary: ``find-issues --class_names`` on any source (a run of integer labels records
        ``0``, ``1``, ...).

        Raises:
            TrainingDynamicsError: not one name per class.
        """
        old = self.label_names
        names = [str(n) for n in names]
        if len(names) != len(old):
            raise TrainingDynamicsError(f"{flag} names {len(names)} classes ({', '.join(names)}) but the ranking has "
                                        f"{len(old)} ({', '.join(old)}); give one name per class, in id order")
        rename = dict(zip(old, names))
        for col in [c for c in self.table.columns if str(c).endswith("_name") and c != "score_name"]:
            self.table[col] = self.table[col].map(lambda v: rename.get(v, v))
        self.table.attrs["label_names"] = names
        self.settings["label_names"] = names
        if self.decision is not None:
            self.settings["decision"] = self.decision.summary(names)

    def write(self, output_dir: str | os.PathLike) -> None:
        """``label_issues.jsonl``, ``label_issues.csv`` and ``label_issues_settings.json`` in ``output_dir``."""
        le.write_issues(self.table, output_dir, self.settings)


def find_label_issues(*, runs: Sequence[Run] = (), data=None, source: str = "dynamics",
                      score: str = "auto", rule: str | None = None, burn_out: int | None = None,
                      proportion: float = 0.33, count_epochs: int | None = None, threshold_run: Run | None = None,
                      top_k: int | None = None, model_name_or_path: str | None = None, batch_size: int = 64,
                      max_seq_length: int | None = None, device: str | None = None, trust_label_order: bool = False,
                      cache_dir: str | None = None, progress: bool = True, compare: bool = True) -> Issues:
    """Rank training examples by how likely their label is wrong and flag the likely wrong ones.

    Args:
        runs: recorded runs of the same data (averaged; an averaged folder's runs, see
            :meth:`Run.recorded_runs`). Needed for ``source="dynamics"``; with ``source="model"`` they
            only give each example's region.
        data: the training data (default: the data the first run names, checked against its binding).
        source: ``"dynamics"`` (score from the recorded epochs) or ``"model"`` (one pass of
            ``model_name_or_path``; score = loss).
        score: the dynamics score (:data:`ranking.DYNAMICS_SCORES`); ``"auto"``: ``combined`` for one
            cross-fitted run, else ``confidence`` (:func:`ranking.resolve_score`).
        rule: the decision (:data:`rules.DECISIONS`; default: the kind's default).
        count_epochs: ``rank_count`` from dynamics: the epochs the count rests on (default: chosen by
            :func:`ranking.count_probabilities`).
        threshold_run: ``aum_threshold``: the run with threshold samples.
        top_k: keep only the K most suspicious examples.
        compare: when another source is at hand (the runs beside ``source="model"``, a model beside
            ``source="dynamics"``), apply the same rule to it too and record how far the two agree
            (:mod:`training_dynamics.decisions.agreement`; ``settings["agreement"]``).

    Returns:
        :class:`Issues`: the table, the decision and the settings that produced them.
    """
    runs = list(runs)
    kind = kinds.of_runs(runs)
    if data is None and runs and runs[0].meta.get("data"):
        data = runs[0].data(cache_dir=cache_dir)
    rule = rule or kind.default_decision
    score = le.resolve_score(score, runs)
    kind.check_decision(rule, source=source, where=str(runs[0].path) if runs else "the data")
    df, dec, settings = kind.find_issues(runs, data=data, source=source, score=score, rule=rule, burn_out=burn_out,
                                         proportion=proportion, count_epochs=count_epochs, threshold_run=threshold_run,
                                         top_k=top_k, model_name_or_path=model_name_or_path, batch_size=batch_size,
                                         max_seq_length=max_seq_length, device=device,
                                         trust_label_order=trust_label_order, cache_dir=cache_dir, progress=progress,
                                         compare=compare)
    if "label_names" not in settings:
        settings["label_names"] = df.attrs["label_names"]
        settings["decision"] = dec.summary(df.attrs["label_names"]) if dec is not None else {"rule": "none"}
    return Issues(table=df, decision=dec, settings=settings, kind=kind)
