"""Turn per-epoch predictions made elsewhere (probabilities or logits, one file per epoch) into a run folder.

Any training loop, framework or served model can give its per-epoch outputs on the training examples; the
result is a run folder like a `record` run's (epoch files, dynamics_meta.json, the data binding), so
metrics, plot, select, find-issues, review and apply work on it unchanged. One file per epoch, epoch 0
first: an (examples, classes) .npy array whose rows --ids_file names (a .npy array or a .txt file of one
id per line; default: row i is guid i), or a .parquet/.jsonl table with an id column (guid, idx or id) and
a list column `probabilities` (or probs, pred_probs) or `logits`. Classes are in the order of the data's
label names (--class_names, else sorted distinct labels). Probabilities are stored as log-probabilities:
every metric equals the one the logits would give. Format details: docs/recording_anywhere.md.

  training-dynamics import --train_file train.jsonl --run_dir dy_log/train/my_model \\
      --epoch_files probs_0.npy probs_1.npy probs_2.npy --ids_file ids.npy
  training-dynamics import --train_file train.jsonl --run_dir dy_log/train/served --epoch_files e0.parquet e1.parquet
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from training_dynamics.core.arguments import DataArguments
from training_dynamics.core.data import split_list
from training_dynamics.core.errors import TrainingDynamicsError
from training_dynamics.cli.common import parse, setup_logging


@dataclass
class ImportArguments:
    _argument_group_name = "import"
    run_dir: str = field(metadata={"help": "The run folder to write (e.g. dy_log/<task>/<model>); its "
                                   "training_dynamics/ gets the epoch files."})
    epoch_files: list[str] = field(metadata={"help": "One file per epoch, epoch 0 first: .npy (examples, classes), "
                                             "or .parquet / .jsonl with an id column and a probabilities or logits "
                                             "list column."})
    ids_file: str | None = field(default=None, metadata={"help": "The example id of each row of the .npy files: a "
                                 ".npy array or a .txt file (one id per line). Default: row i is the example with "
                                 "guid i (the data's idx/guid column, else its row)."})
    values: Literal["probabilities", "logits"] = field(default="probabilities", metadata={"help": "What the .npy "
                                                       "files hold: probabilities (each row sums to 1) or logits "
                                                       "(a table's column name says it for itself)."})
    model_name: str | None = field(default=None, metadata={"help": "The model's name, kept in the run's meta."})
    td_format: Literal["jsonl", "npz"] = field(default="jsonl", metadata={"help": "Epoch files as jsonl (the seed's "
                                               "format) or npz (binary, for large datasets)."})
    overwrite_dynamics: bool = field(default=False, metadata={"help": "Replace the dynamics already in --run_dir "
                                     "(only once the import's first epoch is written)."})


def main(argv: list[str] | None = None, *, prog: str = "training-dynamics import") -> int:
    """Read and check every epoch file, then write the run folder."""
    args, data_args = parse((ImportArguments, DataArguments), argv, prog=prog, doc=__doc__)
    if not data_args.given:
        raise TrainingDynamicsError("give --train_file (the training data the predictions are about) or --task_name")
    if data_args.max_train_samples is not None:
        raise TrainingDynamicsError("--max_train_samples does not apply here: every epoch file covers the whole "
                                    "training set")
    setup_logging()
    from training_dynamics.workflows.importer import import_run

    data = data_args.load()
    import_run(args.run_dir, args.epoch_files, data=data, train_file=data_args.train_file, ids_file=args.ids_file,
               values=args.values, label_names=split_list(data_args.class_names), model_name=args.model_name,
               fmt=args.td_format, overwrite=args.overwrite_dynamics)
    return 0
