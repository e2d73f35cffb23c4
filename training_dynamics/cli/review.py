"""Write ONE self-contained HTML page to review ranked label issues (open it from disk; no server),
or hand them to a labeling tool (--format label-studio | argilla; docs/integrations.md).

Relabel, keep or mark unsure by click or key (a generative run's page: keep or drop each response);
choices survive a reload (localStorage); "Export corrections" downloads corrections.json for
`training-dynamics apply`, and "Load corrections" takes such a file back to resume in any browser.

  training-dynamics review --issues issues/label_issues.jsonl
  training-dynamics review --issues issues/label_issues.jsonl --format label-studio --output_dir ls
  training-dynamics import-labels --format label-studio --input export.json --issues issues/label_issues.jsonl

Rows shown: --top_k N most suspicious; by default the decision's flagged rows plus some context
(max(25, 10% of the flagged) unflagged rows next in rank), or every row when the ranking has no decision.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from training_dynamics.cli.common import parse, setup_logging
from training_dynamics.core.errors import TrainingDynamicsError

logger = logging.getLogger(__name__)
PAGE_NAME = "review.html"


@dataclass
class ReviewArguments:
    _argument_group_name = "the page"
    issues: str = field(metadata={"help": "label_issues.jsonl written by `training-dynamics find-issues`."})
    output_dir: str | None = field(default=None, metadata={"help": f"Folder for {PAGE_NAME} (default: the folder of --issues)."})
    output: str | None = field(default=None, metadata={"help": "The page's exact file name, instead of "
                               f"<output_dir>/{PAGE_NAME}."})
    run_dir: str | None = field(default=None, metadata={"aliases": ["--model_dir"], "help": "A recorded run folder "
                                "whose data map the page shows (default: the run the issues were ranked from, if any)."})
    burn_out: int | None = field(default=None, metadata={"help": "Data map over the first N epochs only (default: as ranked, else all)."})
    max_map_points: int = field(default=20000, metadata={"help": "Background points of the data map at most (a seeded sample)."})
    title: str | None = field(default=None, metadata={"help": "Page title (default: 'Label review: <dataset>')."})
    top_k: int | None = field(default=None, metadata={"help": "Review the K most suspicious rows (default: the "
                              "decision's flagged rows plus max(25, 10%% of them) more as context; every row when "
                              "find-issues ran without --decision)."})
    format: str = field(default="html", metadata={"choices": ["html", "label-studio", "argilla"], "help": "html: "
                        f"the review page ({PAGE_NAME}); label-studio: label_studio_tasks.json + "
                        "label_studio_config.xml; argilla: argilla_records.json + argilla_settings.json (Argilla 2.x), "
                        "into --output_dir. Bring the labels back with `training-dynamics import-labels`."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Replace a page an earlier `review` wrote "
                                       "there (never another file)."})

    def __post_init__(self):
        if self.output and self.output_dir:
            raise TrainingDynamicsError("give --output_dir or --output, not both")
        if self.top_k is not None and self.top_k < 1:
            raise TrainingDynamicsError("--top_k must be at least 1")
        if self.format != "html" and self.output:
            raise TrainingDynamicsError(f"--format {self.format} writes two files: give --output_dir, not --output")

    @property
    def page(self) -> Path:
        if self.output:
            return Path(self.output)
        return Path(self.output_dir or Path(self.issues).parent) / PAGE_NAME


def main(argv: list[str] | None = None, *, prog: str = "training-dynamics review") -> int:
    """Build the page."""
    (args,) = parse((ReviewArguments,), argv, prog=prog, doc=__doc__)
    setup_logging()
    from training_dynamics.decisions.ranking import SETTINGS_NAME
    from training_dynamics.core.outputs import Outputs
    from training_dynamics.workflows.review import build_review_page

    issues = Path(args.issues)
    guard = Outputs("review", inputs=[issues, issues.parent / SETTINGS_NAME, args.run_dir],
                    overwrite=args.overwrite_output_dir)
    if args.format != "html":
        from training_dynamics.workflows.labeling_tools import EXPORT_FILES, export_issues

        folder = Path(args.output_dir or issues.parent)
        guard.check_files([folder / n for n in EXPORT_FILES[args.format]])
        guard.written(*export_issues(args.issues, args.format, folder, top_k=args.top_k))
        return 0
    guard.check_file(args.page, flag="--output" if args.output else "--output_dir")
    path = build_review_page(args.issues, args.page, model_dir=args.run_dir, burn_out=args.burn_out,
                             max_map_points=args.max_map_points, title=args.title, top_k=args.top_k)
    guard.written(path)
    logger.info("open %s in a browser", path.resolve().as_uri())
    return 0
