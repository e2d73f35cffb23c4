"""Apply reviewed corrections (corrections.json from the review page) and write the corrected dataset.

Columns: guid, the text column(s), original_label, corrected_label, review_action, review_note. The
corrections must carry the fingerprint of this very data (else --ignore_fingerprint); outputs never
replace an input or files an earlier run did not write. Retrain on the result with
`training-dynamics record --train_file OUT --label_column corrected_label`.
A token classification run's word corrections are written back into the file's own columns (words, tags
as names or ids as the file held them, guid, original_tags, review_actions): `record-ner --train_file OUT`;
`--output corrected.conll` writes a CoNLL training file back with only the corrected tags rewritten.

  training-dynamics apply --train_file train.jsonl --corrections corrections.json --output corrected.jsonl
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from training_dynamics.core.data import split_list
from training_dynamics.core.arguments import DataArguments
from training_dynamics.cli.common import parse, setup_logging
from training_dynamics.core.errors import TrainingDynamicsError


@dataclass
class ApplyArguments:
    _argument_group_name = "corrections"
    corrections: str = field(metadata={"help": "corrections.json exported by the review page."})
    output: str | None = field(default=None, metadata={"help": "Corrected dataset file: .jsonl, .json (lines), .csv "
                               "or .parquet (never one of the inputs); for tagged sentences also CoNLL (.conll, .iob, "
                               ".bio, .txt: a CoNLL input file with only the corrected tags rewritten)."})
    save_to_disk: str | None = field(default=None, metadata={"help": "Also (or instead) write a datasets.save_to_disk "
                                     "folder (a new or empty one)."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Let --output and --save_to_disk replace the "
                                       "corrected dataset an earlier run wrote there (only that: another file, or a folder "
                                       "holding other files, is refused)."})
    ignore_fingerprint: bool = field(default=False, metadata={"help": "Apply to data that changed since the review: "
                                     "corrections whose example (guid, text, label) is unchanged are applied, the "
                                     "others skipped with a warning."})
    unsure: Literal["keep", "drop"] = field(default="keep", metadata={"help": "Examples marked unsure: keep them "
                                            "(with their original label) or drop them from the output."})
    push_to_hub: str | None = field(default=None, metadata={"help": "Also upload the corrected dataset to the Hub "
                                    "under this repo id (needs a login)."})
    private: bool = field(default=False, metadata={"help": "With --push_to_hub: make the Hub dataset private."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where Hub downloads are cached."})

    def __post_init__(self):
        from training_dynamics import kinds

        # what any kind writes (CoNLL: tagged sentences only; the corrections' kind checks it later)
        formats = tuple(dict.fromkeys(f for name in kinds.names() for f in kinds.get(name).output_formats))
        if not (self.output or self.save_to_disk or self.push_to_hub):
            raise TrainingDynamicsError("give --output FILE, --save_to_disk DIR and/or --push_to_hub REPO")
        if self.output and not self.output.lower().endswith(formats):
            raise TrainingDynamicsError(f"--output must end with one of {', '.join(formats)}")


def main(argv: list[str] | None = None, *, prog: str = "training-dynamics apply") -> int:
    """Check everything, then apply and write."""
    args, data_args = parse((ApplyArguments, DataArguments), argv, prog=prog, doc=__doc__)
    if not data_args.given:
        raise TrainingDynamicsError("give --train_file (the dataset that was reviewed) or --task_name")
    if data_args.max_train_samples is not None:
        raise TrainingDynamicsError("--max_train_samples does not apply here: corrections apply to the whole dataset")
    setup_logging()
    from training_dynamics.workflows.apply import apply_corrections_file

    apply_corrections_file(args.corrections, train_file=data_args.train_file, task_name=data_args.task_name,
                           text_columns=split_list(data_args.text_columns), label_column=data_args.label_column,
                           class_names=split_list(data_args.class_names), cache_dir=args.cache_dir, output=args.output,
                           save_to_disk=args.save_to_disk, overwrite_output_dir=args.overwrite_output_dir,
                           ignore_fingerprint=args.ignore_fingerprint, unsure=args.unsure,
                           push_to_hub_repo=args.push_to_hub, private=args.private)
    return 0
