"""What kinds with one row per example share (classification, generative, multi-label pairs aside).

:class:`ExampleKind` implements the parts of :class:`~training_dynamics.core.kind.Kind` that are the same
whenever every recorded row is one training example: metrics streamed from the epoch files, selection of
examples, ranking examples from their dynamics or a model, a review card per example.
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

from training_dynamics.core.arguments import MAX_SEQ_LENGTH
from training_dynamics.core.data import DataError
from training_dynamics.core.errors import TrainingDynamicsError
from training_dynamics.core.kind import Kind, KindError

logger = logging.getLogger(__name__)


def check_source(src: dict, where, *, allow_task: bool) -> None:
    """A recorded source names data that is still there; else one line that says to pass ``--train_file``."""
    if not (src.get("train_file") or (allow_task and src.get("task_name"))):
        raise DataError(f"{where}: names no training data; pass --train_file")
    if src.get("train_file") and not os.path.exists(src["train_file"]):
        raise DataError(f"{src['train_file']}: the training file named in {where} is gone "
                        "(moved?); pass --train_file with its new path")


class ExampleKind(Kind):
    """A kind whose recorded rows are training examples, one each (the metrics of ``analysis``)."""

    def write_metrics(self, run, *, burn_out=None, include_ci=False, progress=True, output_format="auto"):
        return run.write_example_metrics(burn_out=burn_out, include_ci=include_ci, progress=progress,
                                         output_format=output_format)

    def compute_metrics(self, run, *, burn_out=None, include_ci=False, progress=False) -> dict:
        return run.example_metrics(burn_out=burn_out, include_ci=include_ci, progress=progress)

    def check_metrics_flags(self, run, used) -> None:
        """Every flag applies: partitions and parquet are the streamed example metrics'."""

    def ranking_extras(self, run, guids, *, data, burn_out=None) -> dict:
        """Columns a ranking from dynamics adds for this kind (``seen``: a Series by guid of what the model
        read of each cut text, which the review page greys around)."""
        if data is None:
            return {}
        from training_dynamics.decisions.ranking import seen_by_model

        seen = seen_by_model(run, guids, data)
        return {} if seen is None else {"seen": seen}

    def write_selected_data(self, path, data, guids):
        from training_dynamics.analysis.selection import write_selected_data

        return write_selected_data(path, data.train, guids, text_columns=data.text_columns,
                                   label_names=data.label_names, with_label=True)

    def review_rows(self, issues, settings: dict, label_names: Sequence[str]):
        """One row per example, checked against the data the ranking names (:func:`review.page.data_check`)."""
        from training_dynamics.review.page import data_check

        fingerprint, warnings = data_check(issues, settings, label_names, data=self._settings_data(settings))
        return issues, fingerprint, warnings, {}

    def _settings_data(self, settings: dict):
        """The training data a ranking's settings name, or ``None`` when it cannot be read (the page warns)."""
        src = settings.get("data") or {}
        if not (src.get("train_file") or src.get("task_name")):
            return None
        try:
            return self.load_data({k: v for k, v in src.items() if k != "max_train_samples"},
                                  where="the issues' settings")
        except (TrainingDynamicsError, OSError, ValueError) as exc:
            logger.warning("could not read the training data named in the settings (%s)", exc)
            return None

    def apply_corrections(self, data, parsed, *, where: str, unsure: str, skip_changed: bool, fingerprints):
        from training_dynamics.review.corrections import apply_corrections

        return self.finish_corrections(apply_corrections(data, parsed, where=where, unsure=unsure,
                                                         skip_changed=skip_changed, fingerprints=fingerprints))

    def finish_corrections(self, df):
        """The corrected table as a dataset of this kind (default: the relabelled rows, unchanged)."""
        return df

    def find_issues(self, runs: Sequence, *, data, source: str, score: str, rule: str, burn_out=None,
                    proportion: float = 0.33, count_epochs=None, threshold_run=None, top_k=None,
                    model_name_or_path=None, batch_size: int = 64, max_seq_length: int | None = None, device=None,
                    trust_label_order: bool = False, cache_dir=None, progress: bool = True, compare: bool = True, **_):
        """Rank the examples from their dynamics (or one model pass) and decide on the ranking; say when the run
        cannot support a count (:mod:`training_dynamics.decisions.evidence`) and, with ``compare``, how far the
        other source at hand agrees (:mod:`training_dynamics.decisions.agreement`)."""
        from training_dynamics.core.heldout import heldout_count_probabilities
        from training_dynamics.decisions import ranking as le
        from training_dynamics.decisions import rules as decision

        settings: dict = {"source": source, "top_k": top_k, "kind": self.name}
        if source == "model":
            if data is None or not model_name_or_path:
                raise TrainingDynamicsError("--source model needs a model (--model_name_or_path) and data "
                                            "(--task_name or --train_file)")
            regions = le.region_labels(runs[0], burn_out=burn_out, proportion=proportion) if runs else None
            cut = (runs[0].meta.get("truncation") or {}) if runs else {}  # read the spans the run trained on
            max_seq_length = max_seq_length or cut.get("max_seq_length") or MAX_SEQ_LENGTH
            df = le.issues_from_model(data, model_name_or_path, batch_size=batch_size, max_seq_length=max_seq_length,
                                      truncation=cut.get("strategy", "head"), device=device,
                                      trust_label_order=trust_label_order, regions=regions, cache_dir=cache_dir,
                                      progress=progress)
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
        if source == "dynamics" and len(runs) == 1:  # a cross-fitted run: held-out probabilities beside its epochs
            heldout = heldout_count_probabilities(runs[0], burn_out=burn_out)
        if rule == "rank_count" and source == "dynamics" and heldout is not None and count_epochs is None:
            settings.update(heldout[2])  # the count from held-out probabilities (workflows/crossfit.py)
            df, dec = decision.decide_table(df, rule, threshold=threshold, count_probabilities=heldout[:2])
        else:
            if rule == "rank_count" and source == "dynamics":
                counted = le.count_probabilities(runs, count_epochs=count_epochs, burn_out=burn_out)
                settings.update(counted[2].details())
            df, dec = decision.decide_table(df, rule, threshold=threshold,
                                            count_probabilities=counted[:2] if counted else None)
        if dec is not None and rule != "aum_threshold" and (runs or source == "model"):  # can this run count at all?
            df, dec, counted = self._judge(df, dec, rule=rule, runs=runs, source=source, counted=counted,
                                           heldout=heldout, count_epochs=count_epochs, burn_out=burn_out,
                                           settings=settings)
        if compare and dec is not None:  # which source to believe
            self._compare_sources(df, dec, settings, runs=runs, data=data, source=source, score=score, rule=rule,
                                  burn_out=burn_out, proportion=proportion, count_epochs=count_epochs,
                                  threshold_run=threshold_run, model_name_or_path=model_name_or_path,
                                  batch_size=batch_size, max_seq_length=max_seq_length, device=device,
                                  trust_label_order=trust_label_order, cache_dir=cache_dir, progress=progress,
                                  heldout=heldout)
        if top_k is not None:
            df = df.head(top_k).copy()
        return df, dec, settings

    def judge_count(self, df, dec, *, runs, source: str, window=None, burn_out: int | None = None):
        """Whether the run's evidence supports the decision's count (:func:`decisions.evidence.judge_table`)."""
        from training_dynamics.decisions.evidence import judge_table

        return judge_table(df, dec, runs=runs, source=source, window=window, burn_out=burn_out)

    def _judge(self, df, dec, *, rule, runs, source, counted, heldout, count_epochs, burn_out, settings):
        """The decision keeping only the flags the evidence supports, with the count window grown by the evidence
        where a later one is supported (a model still learning in the default window)."""
        import numpy as np

        from training_dynamics.decisions import rules as decision
        from training_dynamics.decisions.evidence import align, countable_window, judge_classification, restrict

        if heldout is not None and not counted:  # judged on the probabilities the count rests on
            verdict = judge_classification(align(heldout[0], heldout[1], df["guid"].to_numpy()),
                                           df["gold"].to_numpy(np.int64), num_flagged=dec.num_flagged,
                                           accuracy=heldout[2]["heldout_accuracy"],
                                           epoch=heldout[2]["count_heldout_epoch"], what="held-out accuracy")
        else:
            verdict = self.judge_count(df, dec, runs=runs, source=source, window=counted[2] if counted else None,
                                       burn_out=burn_out)
        if not verdict.countable and counted and count_epochs is None:  # (counted: rank_count over classes)
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
                verdict = self.judge_count(df, dec, runs=runs, source=source, window=counted[2], burn_out=burn_out)
        dec = restrict(dec, verdict, df["gold"].to_numpy(), noun=f"{self.example_noun}s")
        df["is_label_issue"] = dec.flagged
        return df, dec, counted

    def _compare_sources(self, df, dec, settings, *, runs, data, source, score, rule, burn_out, proportion,
                         count_epochs, threshold_run, model_name_or_path, batch_size, max_seq_length, device,
                         trust_label_order, cache_dir, progress, heldout):
        """``settings["agreement"]``: how far the dynamics', the model's and the held-out rankings and flags agree."""
        import numpy as np

        from training_dynamics.decisions import agreement
        from training_dynamics.decisions import rules as decision
        from training_dynamics.decisions.evidence import align

        other = ("model" if source == "dynamics" and model_name_or_path and data is not None
                 else "dynamics" if source == "model" and runs else None)
        alt = None
        if other is not None:
            try:
                self.check_decision(rule, source=other, where="the other source")
            except KindError:
                other = None  # this kind is not scored by a model
        if other is not None:
            other_rule = (rule if rule not in ("aum_mixture", "aum_threshold") or other == "dynamics"
                          else self.default_decision)
            table, alt_dec, _ = self.find_issues(
                runs, data=data, source=other, score=score, rule=other_rule, burn_out=burn_out, proportion=proportion,
                count_epochs=count_epochs if other == "dynamics" else None, threshold_run=threshold_run,
                model_name_or_path=model_name_or_path, batch_size=batch_size, max_seq_length=max_seq_length,
                device=device, trust_label_order=trust_label_order, cache_dir=cache_dir, progress=progress,
                compare=False)
            alt = table
            settings["agreement"] = agreement.compare({source: df, other: table}, used=source)
            settings["agreement"]["countable"] = {source: dec.details.get("countable"),
                                                  other: alt_dec.details.get("countable") if alt_dec else None}
        if heldout is not None:  # the held-out ranking beside the dynamics'
            held = align(heldout[0], heldout[1], df["guid"].to_numpy())
            gold = df["gold"].to_numpy(np.int64)
            held_score = 1.0 - held[np.arange(len(gold)), gold]
            k = int(dec.details.get("would_flag", dec.num_flagged))
            held_table = df[["guid"]].assign(score=held_score,
                                             is_label_issue=decision.top_k(held_score, k, df["guid"].to_numpy()))
            tables = {source: df, "held-out": held_table}
            if alt is not None:
                tables[other] = alt
            used = f"{source} (count from held-out)" if settings.get("count_source") == "held-out" else source
            settings["agreement"] = {**settings.get("agreement", {}), **agreement.compare(tables, used=used)}


__all__ = ["ExampleKind", "Kind", "KindError", "check_source"]
