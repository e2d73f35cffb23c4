"""Bring the labels chosen in Label Studio or Argilla back as corrections.json (the review page's format),
for `training-dynamics apply`. The tasks / records must come from `training-dynamics review --format ...`:
each carries its example's guid and fingerprints, so apply refuses changed data as for the page's export.

  training-dynamics import-labels --format label-studio --input project-1-at-2026-01-31.json \\
      --issues issues/label_issues.jsonl --output_dir issues
  training-dynamics import-labels --format argilla --input argilla_export.json --issues issues/label_issues.jsonl
  training-dynamics apply --corrections issues/corrections.json --train_file train.jsonl --output fixed.jsonl

A chosen label is a keep when it is the given label, else a relabel; a skipped task (Label Studio) or a
discarded record (Argilla) is unsure; annotators who disagree give unsure with a note of their votes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from training_dynamics.cli.common import parse, setup_logging
from training_dynamics.core.errors import TrainingDynamicsError

logger = logging.getLogger(__name__)
NAME = "corrections.json"


@dataclass
class ImportLabelsArguments:
    _argument_group_name = "import"
    format: str = field(metadata={"choices": ["label-studio", "argilla"], "help": "label-studio: its JSON or "
                        "JSON-MIN export; argilla: dataset.records.to_json(...) (nested), records.to_list(flatten=True) "
                        "saved as JSON, or a dataset.to_disk(...) folder."})
    input: str = field(metadata={"help": "The labeling tool's export (tasks / records made by `training-dynamics "
                       "review --format ...`)."})
    issues: str = field(metadata={"help": "The label_issues.jsonl the tasks were exported from (its settings give "
                        "the kind of run and the label names)."})
    output_dir: str | None = field(default=None, metadata={"help": f"Folder for {NAME} (default: the folder of --issues)."})
    output: str | None = field(default=None, metadata={"help": f"The exact file name, instead of <output_dir>/{NAME}."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": f"Replace a {NAME} an earlier `import-labels` "
                                       "wrote there (never another file)."})

    def __post_init__(self):
        if self.output and self.output_dir:
            raise TrainingDynamicsError("give --output_dir or --output, not both")

    @property
    def path(self) -> Path:
        return Path(self.output) if self.output else Path(self.output_dir or Path(self.issues).parent) / NAME


def main(argv: list[str] | None = None, *, prog: str = "training-dynamics import-labels") -> int:
    """Read the export, write corrections.json."""
    (args,) = parse((ImportLabelsArguments,), argv, prog=prog, doc=__doc__)
    setup_logging()
    from training_dynamics.decisions.ranking import SETTINGS_NAME
    from training_dynamics.workflows.labeling_tools import corrections_from_export, write_corrections
    from training_dynamics.core.outputs import Outputs

    issues = Path(args.issues)
    guard = Outputs("import-labels", inputs=[issues, issues.parent / SETTINGS_NAME, args.input],
                    overwrite=args.overwrite_output_dir)
    guard.check_file(args.path, flag="--output" if args.output else "--output_dir")
    guard.written(write_corrections(corrections_from_export(args.input, args.format, args.issues), args.path))
    return 0
