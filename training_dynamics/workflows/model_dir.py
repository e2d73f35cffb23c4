"""A recording's model folder (``--output_dir``), through the output guard (:mod:`~training_dynamics.core.outputs`).

Before training, the folder is claimed for ``record`` and checked, as ``run_glue.py`` checks it:

* new, or empty: trained into;
* holding files no training-dynamics command wrote (another saved model, the user's own
  ``all_results.json``): refused in one line, even with ``--overwrite_output_dir`` (nothing of theirs
  is ever replaced);
* holding an earlier recording's model: replaced only with ``--overwrite_output_dir`` (Hugging
  Face's flag and meaning), or continued with ``--resume_from_checkpoint``.

What the Trainer writes there (each checkpoint as it is saved, then the model, metrics and state) is
recorded in the folder's manifest as ``record``'s, so a crashed run can be resumed and a finished one
is recognised next time. When the model folder is also the run folder (or holds it), the run's own
files (``training_dynamics/``, its lock, the ``td_*`` metrics) are the run's, not the user's.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from training_dynamics.core.errors import OutputError
from training_dynamics.core.outputs import CLAIM_NAME, DYNAMICS_FOLDER_NAMES, OWN_FILES, Outputs, written_by

logger = logging.getLogger(__name__)

COMMAND = "record"


def _run_entry(name: str) -> bool:
    """A name a run folder holds of its own (when the model folder is the run folder)."""
    from training_dynamics.core.run_writer import LOCK_NAME

    return name in DYNAMICS_FOLDER_NAMES or name == LOCK_NAME or name.startswith("td_")


def entries(output_dir: str | os.PathLike, run_dir: str | os.PathLike | None = None) -> list[Path]:
    """The model folder's entries that are a recording's to answer for: not the guard's own files, not
    the path to the run folder, and not the run's own files when the two folders are one."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    real = folder.resolve()
    run = Path(run_dir).resolve() if run_dir is not None else None
    out = []
    for p in sorted(folder.iterdir()):
        if p.name in OWN_FILES or p.name.startswith(f".{CLAIM_NAME}."):
            continue
        if run is not None and (run == real and _run_entry(p.name) or p.resolve() == run or p.resolve() in run.parents):
            continue
        out.append(p)
    return out


def _names(paths: list[Path], limit: int = 3) -> str:
    names = [p.name + ("/" if p.is_dir() else "") for p in paths]
    return ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def check_model_dir(output_dir: str | os.PathLike, *, inputs=(), run_dir=None, overwrite: bool = False,
                    resume=None) -> Outputs:
    """Claim and check the model folder before training (see the module's docstring); returns the guard,
    which holds the claim until released.

    Raises:
        OutputError: one line naming the folder, what is in it and the flag to pass.
    """
    guard = Outputs(COMMAND, inputs=inputs, overwrite=overwrite)
    guard.check_folder(output_dir, flag="--output_dir")
    found = entries(output_dir, run_dir)
    by = {p: written_by(p) for p in found}
    foreign = [p for p, cmd in by.items() if cmd is None]
    if foreign:
        raise OutputError(f"--output_dir {output_dir} holds files training-dynamics did not write ({_names(foreign)}): "
                          "another model, or your own files; choose a new or empty folder (nothing there is replaced, "
                          "not even with --overwrite_output_dir)")
    ours = [p for p, cmd in by.items() if cmd == COMMAND]
    if ours and not overwrite and resume is None:
        raise OutputError(f"--output_dir {output_dir} holds the model of an earlier `training-dynamics record` "
                          f"({_names(ours)}); pass --overwrite_output_dir to replace it, --resume_from_checkpoint to "
                          "continue it, or choose another folder")
    return guard


def register(guard: Outputs, output_dir: str | os.PathLike, run_dir=None) -> None:
    """Record what is now in the model folder as written by ``record`` (it held nothing of anyone else's)."""
    found = [p for p in entries(output_dir, run_dir) if written_by(p) in (None, COMMAND)]
    if found:
        guard.written(*found)


def saves_callback(guard: Outputs, output_dir: str | os.PathLike, run_dir=None):
    """A ``TrainerCallback`` that records each checkpoint in the manifest as soon as it is saved (so the
    run can be resumed after a crash)."""
    from transformers import TrainerCallback

    class RecordSaves(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                register(guard, output_dir, run_dir)

    return RecordSaves()


def log_where(training_args, given: bool) -> None:
    """One line, before training, saying where the model goes when ``--output_dir`` was not given."""
    if not given:
        logger.info("--output_dir not given: the model, its checkpoints and metrics go to %s (the Trainer's "
                    "default); pass --output_dir to choose", Path(training_args.output_dir).resolve())
