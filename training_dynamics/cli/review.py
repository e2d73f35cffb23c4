"""Write ONE self-contained HTML page to review ranked label issues (open it from disk; no server).

Relabel, keep or mark unsure by click or key (a generative run's page: keep or drop each response);
choices survive a reload (localStorage); "Export corrections" downloads corrections.json for
`training-dynamics apply`, and "Load corrections" takes such a file back to resume in any browser.

  training-dynamics review --issues issues/label_issues.jsonl
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
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Replace a page an earlier `review` wrote "
                                       "there (never another file)."})

    def __post_init__(self):
        if self.output and self.output_dir:
            raise TrainingDynamicsError("give --output_dir or --output, not both")

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
    guard.check_file(args.page, flag="--output" if args.output else "--output_dir")
    path = build_review_page(args.issues, args.page, model_dir=args.run_dir, burn_out=args.burn_out,
                             max_map_points=args.max_map_points, title=args.title)
    guard.written(path)
    logger.info("open %s in a browser", path.resolve().as_uri())
    return 0
