"""Apply reviewed corrections (corrections.json from the review page) and write the corrected dataset.

Columns: guid, the text column(s), original_label, corrected_label, review_action. Retrain on it with
`training-dynamics record --train_file OUT --label_column corrected_label`.

  training-dynamics apply --train_file train.jsonl --corrections corrections.json --output corrected.jsonl
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .args import DataArguments
from .common import parse, setup_logging


@dataclass
class ApplyArguments:
    _argument_group_name = "corrections"
    corrections: str = field(metadata={"help": "corrections.json exported by the review page."})
    output: str | None = field(default=None, metadata={"help": "Corrected dataset file: .jsonl, .json (lines), .csv or .parquet."})
    save_to_disk: str | None = field(default=None, metadata={"help": "Also (or instead) write a datasets.save_to_disk folder."})
    push_to_hub: str | None = field(default=None, metadata={"help": "Also upload the corrected dataset to the Hub "
                                    "under this repo id (needs a login)."})
    private: bool = field(default=False, metadata={"help": "With --push_to_hub: make the Hub dataset private."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where Hub downloads are cached."})

    def __post_init__(self):
        from ..corrections import OUTPUT_FORMATS

        if not (self.output or self.save_to_disk or self.push_to_hub):
            raise ValueError("give --output FILE, --save_to_disk DIR and/or --push_to_hub REPO")
        if self.output and not self.output.lower().endswith(OUTPUT_FORMATS):
            raise ValueError(f"--output must end with one of {', '.join(OUTPUT_FORMATS)}")


def main(argv: list[str] | None = None, *, prog: str = "training-dynamics apply") -> int:
    """Read corrections, load the data, apply, write."""
    args, data_args = parse((ApplyArguments, DataArguments), argv, prog=prog, doc=__doc__)
    if not data_args.given:
        raise ValueError("give --train_file (the dataset that was reviewed) or --task_name")
    setup_logging()
    from .. import corrections as co

    corrections = co.read_corrections(args.corrections)
    data = data_args.load(cache_dir=args.cache_dir)
    df = co.apply_corrections(data, corrections, where=args.corrections)
    co.write_corrected(df, output=args.output, save_to_disk=args.save_to_disk)
    if args.push_to_hub:
        co.push_to_hub(df, args.push_to_hub, private=args.private)
    return 0
