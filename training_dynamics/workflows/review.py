"""Write the review page of a ranking (``training-dynamics review``): the run's kind says how its rows look."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from training_dynamics.analysis.run import Run
from training_dynamics.core import kind as kinds
from training_dynamics.decisions.ranking import read_issues
from training_dynamics.review.scale import select_rows
from training_dynamics.review.page import label_names_from_rows, review_payload, short_dataset_name, write_review_page

logger = logging.getLogger(__name__)


def build_review_page(issues_path: str | os.PathLike, output: str | os.PathLike, *,
                      model_dir: str | os.PathLike | None = None, burn_out: int | None = None,
                      max_map_points: int = 20000, title: str | None = None, top_k: int | None = None) -> Path:
    """Read ``label_issues.jsonl`` (+ its settings) and write the review page to ``output``.

    ``top_k``: the rows shown (:func:`training_dynamics.review.scale.select_rows`: the K most suspicious;
    by default the decision's flagged rows plus some context, or every row without a decision).

    The data map comes from ``model_dir`` (a recorded run folder), else from the run the issues
    were ranked from (``run_dir`` in the settings) when it still exists; else there is none. The
    training data named in the settings is read for the dataset fingerprint.
    """
    issues, settings = read_issues(issues_path)
    kind = kinds.of_meta(settings)
    label_names = settings.get("label_names") or label_names_from_rows(issues)
    issues = select_rows(issues, top_k)
    data_map = None
    folder = model_dir or settings.get("run_dir")
    if folder is not None:
        run = Run(folder)
        if model_dir is None and not run.dynamics_dir.is_dir():
            logger.warning("%s: no recorded dynamics any more; the page has no data map", folder)
        else:
            data_map = run.require().metrics(burn_out=burn_out if burn_out is not None else settings.get("burn_out"),
                                             save=False)
    issues, fingerprint, warnings, extra = kind.review_rows(issues, settings, label_names)
    score_name = settings.get("score_name") or (str(issues["score_name"].iloc[0]) if "score_name" in issues else "score")
    payload = review_payload(issues, label_names=label_names, dataset=short_dataset_name(settings),
                             score_name=score_name, data_map=data_map, max_map_points=max_map_points, title=title,
                             dataset_fingerprint=fingerprint, warnings=warnings, card=kind.review_card(),
                             kind=kind.name, extra=extra)  # the kind is exported with the corrections
    return write_review_page(output, payload)
