"""Find label issues as a library call: rank the examples, decide which labels are wrong, return a table.

``training-dynamics find-issues`` parses its flags and calls :func:`find_label_issues`; so can a
notebook::

    from training_dynamics.issues import find_label_issues
    from training_dynamics.run import Run

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

import numpy as np

from . import decision, kinds
from . import label_errors as le
from .errors import TrainingDynamicsError

if TYPE_CHECKING:
    import pandas as pd

    from .run import Run

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
        cannot support a count, the line that says so (:mod:`training_dynamics.evidence`)."""
        if self.decision is None:
            return ""
        return self.decision.details.get("cannot_count") or self.kind.describe_decision(self.decision, self.label_names)

    def describe_agreement(self) -> str:
        """How far the sources at hand agree, in one line ("" with one source; :mod:`training_dynamics.agreement`)."""
        from .agreement import describe

        return describe(self.settings["agreement"]) if self.settings.get("agreement") else ""

    def write(self, output_dir: str | os.PathLike) -> None:
        """``label_issues.jsonl``, ``label_issues.csv`` and ``label_issues_settings.json`` in ``output_dir``."""
        le.write_issues(self.table, output_dir, self.settings)


def find_label_issues(*, runs: Sequence[Run] = (), data=None, source: str = "dynamics",
                      score: str = "confidence", rule: str | None = None, burn_out: int | None = None,
                      proportion: float = 0.33, count_epochs: int | None = None, threshold_run: Run | None = None,
                      top_k: int | None = None, model_name_or_path: str | None = None, batch_size: int = 64,
                      max_seq_length: int = 128, device: str | None = None, trust_label_order: bool = False,
                      cache_dir: str | None = None, progress: bool = True, compare: bool = True) -> Issues:
    """Rank training examples by how likely their label is wrong and flag the likely wrong ones.

    Args:
        runs: recorded runs of the same data (averaged; an averaged folder's runs, see
            :meth:`Run.recorded_runs`). Needed for ``source="dynamics"``; with ``source="model"`` they
            only give each example's region.
        data: the training data (default: the data the first run names, checked against its binding).
        source: ``"dynamics"`` (score from the recorded epochs) or ``"model"`` (one pass of
            ``model_name_or_path``; score = loss).
        score: the dynamics score (:data:`label_errors.DYNAMICS_SCORES`).
        rule: the decision (:data:`decision.DECISIONS`; default: the kind's default).
        count_epochs: ``rank_count`` from dynamics: the epochs the count rests on (default: chosen by
            :func:`label_errors.count_probabilities`).
        threshold_run: ``aum_threshold``: the run with threshold samples.
        top_k: keep only the K most suspicious examples.
        compare: when another source is at hand (the runs beside ``source="model"``, a model beside
            ``source="dynamics"``), apply the same rule to it too and record how far the two agree
            (:mod:`training_dynamics.agreement`; ``settings["agreement"]``).

    Returns:
        :class:`Issues`: the table, the decision and the settings that produced them.
    """
    runs = list(runs)
    kind = kinds.of_runs(runs)
    if data is None and runs and runs[0].meta.get("data"):
        data = runs[0].data(cache_dir=cache_dir)
    rule = rule or kind.default_decision
    kind.check_decision(rule, source=source, where=str(runs[0].path) if runs else "the data")
    if kind.ranks_words:  # a token classification run: one row per word
        from .token_issues import find_word_issues

        if len(runs) != 1:
            raise ValueError(f"{runs[0].path} is a token classification run: give one --run_dir (token runs are not "
                             "averaged yet)")
        table, dec, settings = find_word_issues(runs[0], data=data, score=score, rule=rule, burn_out=burn_out,
                                                proportion=proportion, count_epochs=count_epochs, top_k=top_k)
        return Issues(table=table, decision=dec, settings=settings, kind=kind)
    settings: dict = {"source": source, "top_k": top_k, "kind": kind.name}
    if source == "model":
        if data is None or not model_name_or_path:
            raise TrainingDynamicsError("--source model needs a model (--model_name_or_path) and data (--task_name or --train_file)")
        regions = le.region_labels(runs[0], burn_out=burn_out, proportion=proportion) if runs else None
        df = le.issues_from_model(data, model_name_or_path, batch_size=batch_size, max_seq_length=max_seq_length,
                                  device=device, trust_label_order=trust_label_order, regions=regions,
                                  cache_dir=cache_dir, progress=progress)
        settings.update(score_name="loss", model_name_or_path=model_name_or_path, data=data.source,
                        dataset=le.dataset_name(data.source))
    else:
        if not runs:
            raise TrainingDynamicsError("--source dynamics needs --run_dir (a run folder dy_log/<task>/<model>)")
        df = le.issues_from_dynamics(runs, score=score, burn_out=burn_out, proportion=proportion, data=data,
                                     progress=progress)
        src = data.source if data is not None else runs[0].meta.get("data", {})
        settings.update(score_name=le.DYNAMICS_SCORES[score][0], score=score, burn_out=burn_out, data=src,
                        dataset=le.dataset_name(src), model_name_or_path=runs[0].meta.get("model_name_or_path"))
    if data is not None and len(getattr(data, "excluded_guids", ())):
        settings["left_out_changed"] = len(data.excluded_guids)  # changed since recording (--allow_changed_data)
    if runs:
        settings.update(run_dir=str(runs[0].path.resolve()), proportion=proportion)
        if len(runs) > 1:
            settings["run_dirs"] = [str(r.path.resolve()) for r in runs]
    threshold = None
    if rule == "aum_threshold":
        if threshold_run is None:
            raise TrainingDynamicsError("--decision aum_threshold needs --threshold_run_dir")
        threshold = decision.aum_threshold_from_run(threshold_run.require(), burn_out=burn_out)
    counted = heldout = None
    if source == "dynamics" and len(runs) == 1 and kind.name == kinds.CLASSIFICATION:  # a cross-fitted run
        from .crossfit import heldout_count_probabilities

        heldout = heldout_count_probabilities(runs[0], burn_out=burn_out)
    if rule == "rank_count" and source == "dynamics" and heldout is not None and count_epochs is None:
        settings.update(heldout[2])  # the count from held-out probabilities (training_dynamics/crossfit.py)
        df, dec = decision.decide_table(df, rule, threshold=threshold, count_probabilities=heldout[:2])
    else:
        if rule == "rank_count" and source == "dynamics":
            counted = le.count_probabilities(runs, count_epochs=count_epochs, burn_out=burn_out)
            settings.update(counted[2].details())
        df, dec = decision.decide_table(df, rule, threshold=threshold,
                                        count_probabilities=counted[:2] if counted else None)
    if dec is not None and rule != "aum_threshold" and (runs or source == "model"):  # can this run count at all?
        from .evidence import align, judge_classification, restrict

        if heldout is not None and not counted:  # judged on the probabilities the count rests on
            verdict = judge_classification(align(heldout[0], heldout[1], df["guid"].to_numpy()),
                                           df["gold"].to_numpy(np.int64), num_flagged=dec.num_flagged,
                                           accuracy=heldout[2]["heldout_accuracy"],
                                           epoch=heldout[2]["count_heldout_epoch"], what="held-out accuracy")
        else:
            verdict = kind.judge_count(df, dec, runs=runs, source=source, window=counted[2] if counted else None,
                                       burn_out=burn_out)
        if not verdict.countable and counted and count_epochs is None and kind.name == kinds.CLASSIFICATION:
            from .evidence import countable_window  # a later window whose count the evidence supports

            grown = countable_window(runs, counted[2], burn_out=burn_out)
            if grown is not None and grown[:2] != (0, counted[2].epochs):
                first, end, guids, probs = grown
                logger.info("rank_count: at epoch %d the model rejects too few of the labels it would count; the "
                            "count window grows to epoch(s) %d..%d", counted[2].epochs - 1, first, end - 1)
                window = decision.CountWindow(end, counted[2].accuracy, counted[2].chance, counted[2].fitted)
                counted = (guids, probs, window)
                settings.update(window.details(), count_first_epoch=first,
                                count_window_grown_by="the evidence (rejected labels)")
                df, dec = decision.decide_table(df.drop(columns=["is_label_issue", "likely_true", "likely_true_name"]),
                                                rule, count_probabilities=counted[:2])
                verdict = kind.judge_count(df, dec, runs=runs, source=source, window=counted[2], burn_out=burn_out)
        dec = restrict(dec, verdict, df["gold"].to_numpy(), noun=f"{kind.example_noun}s")
        df["is_label_issue"] = dec.flagged
    other = ("model" if source == "dynamics" and model_name_or_path and data is not None
             else "dynamics" if source == "model" and runs else None)
    if compare and other and dec is not None and kind.scores_with_model:  # which source to believe
        from . import agreement

        other_rule = rule if rule not in ("aum_mixture", "aum_threshold") or other == "dynamics" else kind.default_decision
        alt = find_label_issues(runs=runs, data=data, source=other, score=score, rule=other_rule, burn_out=burn_out,
                                proportion=proportion, count_epochs=count_epochs if other == "dynamics" else None,
                                threshold_run=threshold_run, model_name_or_path=model_name_or_path,
                                batch_size=batch_size, max_seq_length=max_seq_length, device=device,
                                trust_label_order=trust_label_order, cache_dir=cache_dir, progress=progress,
                                compare=False)
        settings["agreement"] = agreement.compare({source: df, other: alt.table}, used=source)
        settings["agreement"]["countable"] = {source: dec.details.get("countable"),
                                              other: alt.decision.details.get("countable") if alt.decision else None}
    if compare and heldout is not None and dec is not None:  # the held-out ranking beside the dynamics'
        from . import agreement
        from .evidence import align

        held = align(heldout[0], heldout[1], df["guid"].to_numpy())
        gold = df["gold"].to_numpy(np.int64)
        score = 1.0 - held[np.arange(len(gold)), gold]
        k = int(dec.details.get("would_flag", dec.num_flagged))
        held_table = df[["guid"]].assign(score=score, is_label_issue=decision.top_k(score, k, df["guid"].to_numpy()))
        tables = {source: df, "held-out": held_table}
        if other and "agreement" in settings:
            tables[other] = alt.table
        used = f"{source} (count from held-out)" if settings.get("count_source") == "held-out" else source
        settings["agreement"] = {**settings.get("agreement", {}), **agreement.compare(tables, used=used)}
    if top_k is not None:
        df = df.head(top_k).copy()
    settings["label_names"] = df.attrs["label_names"]
    settings["decision"] = dec.summary(df.attrs["label_names"]) if dec is not None else {"rule": "none"}
    return Issues(table=df, decision=dec, settings=settings, kind=kind)
