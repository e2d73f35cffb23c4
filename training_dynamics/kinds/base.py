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
                    trust_label_order: bool = False, cache_dir=None, progress: bool = True, **_):
        """Rank the examples from their dynamics (or one model pass) and decide on the ranking."""
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
        counted = None
        if rule == "rank_count" and source == "dynamics":
            counted = le.count_probabilities(runs, count_epochs=count_epochs, burn_out=burn_out)
            settings.update(counted[2].details())
        df, dec = decision.decide_table(df, rule, threshold=threshold,
                                        count_probabilities=counted[:2] if counted else None)
        if top_k is not None:
            df = df.head(top_k).copy()
        return df, dec, settings


__all__ = ["ExampleKind", "Kind", "KindError", "check_source"]
