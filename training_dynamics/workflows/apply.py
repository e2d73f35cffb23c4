"""Apply reviewed corrections to a dataset (``training-dynamics apply``): the corrections' kind says how."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from training_dynamics.core import kind as kinds
from training_dynamics.core.errors import TrainingDynamicsError
from training_dynamics.review.corrections import (CorrectionsError, check_dataset_fingerprint, check_outputs,
                                                  data_fingerprints, push_to_hub, read_corrections, write_corrected)


def apply_corrections_file(corrections: str | os.PathLike, *, train_file: str | None = None,
                           task_name: str | None = None, text_columns: Sequence[str] | None = None,
                           label_column: str | None = None, class_names: Sequence[str] | None = None,
                           cache_dir: str | None = None, output: str | os.PathLike | None = None,
                           save_to_disk: str | os.PathLike | None = None, overwrite_output_dir: bool = False,
                           ignore_fingerprint: bool = False, unsure: str = "keep", push_to_hub_repo: str | None = None,
                           private: bool = False) -> pd.DataFrame:
    """``apply_corrections.py`` as a function: every check (outputs, corrections, fingerprints,
    labels) runs before anything is written; returns the corrected table."""
    inputs = [corrections, train_file]
    guard = check_outputs(output=output, save_to_disk=save_to_disk, inputs=inputs,
                          overwrite_output_dir=overwrite_output_dir)  # (claimed while this runs)
    parsed = read_corrections(corrections)
    kind = kinds.get(parsed.kind)  # what the review page exported (classification for older files)
    where = str(corrections)
    if output is not None and Path(output).suffix.lower() not in kind.output_formats:
        raise CorrectionsError(f"--output {output}: a corrected {kind.name} dataset is written as "
                               f"{', '.join(kind.output_formats)}")
    kind.check_apply_source(train_file, where)
    try:
        data = kind.load_data({"kind": kind.name, "task_name": task_name,
                               "train_file": str(Path(train_file).resolve()) if train_file else None,
                               "text_columns": text_columns, "label_column": label_column},
                              label_names=class_names, cache_dir=cache_dir, where=str(corrections))
    except TrainingDynamicsError:
        kind.explain_load_failure(where, train_file, cache_dir)
        raise
    kind.check_corrections(data, parsed, where=where)  # before the fingerprints, which only say the data changed
    fingerprints = data_fingerprints(data)
    check_dataset_fingerprint(data, parsed, ignore=ignore_fingerprint, where=where, fingerprints=fingerprints)
    df = kind.apply_corrections(data, parsed, where=where, unsure=unsure, skip_changed=ignore_fingerprint,
                                fingerprints=fingerprints)
    write_corrected(df, output=output, save_to_disk=save_to_disk, inputs=inputs,
                    overwrite_output_dir=overwrite_output_dir, writers=kind.output_writers(data))
    guard.release()  # written: the folder is free again
    if push_to_hub_repo:
        push_to_hub(df, push_to_hub_repo, private=private)
    return df
