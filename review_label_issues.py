#!/usr/bin/env python
"""Write ONE self-contained HTML page to review ranked label issues (open it from disk; no server).

Relabel, keep or mark unsure by click or key; choices survive a reload (localStorage);
"Export corrections" downloads corrections.json for apply_corrections.py.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from training_dynamics.cli import HelpFormatter, run, setup_logging
from training_dynamics.review import build_review_page


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="review_label_issues.py", description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--issues", required=True, help="label_issues.jsonl written by find_label_issues.py.")
    p.add_argument("--output", help="The HTML page to write (default: review.html beside --issues).")
    p.add_argument("--model_dir", help="A recorded run folder dy_log/<task>/<model> whose data map the page shows "
                                       "(default: the run the issues were ranked from, if any).")
    p.add_argument("--burn_out", type=int, help="Data map over the first N epochs only (default: as ranked, else all).")
    p.add_argument("--max_map_points", type=int, default=20000, help="Background points of the data map at most (a seeded sample).")
    p.add_argument("--title", help="Page title (default: 'Label review: <dataset>').")
    args = p.parse_args(argv)
    setup_logging()
    output = Path(args.output) if args.output else Path(args.issues).with_name("review.html")
    path = build_review_page(args.issues, output, model_dir=args.model_dir, burn_out=args.burn_out,
                             max_map_points=args.max_map_points, title=args.title)
    logging.getLogger("review_label_issues").info("open %s in a browser", path.resolve().as_uri())
    return 0


if __name__ == "__main__":
    sys.exit(run(main, "review_label_issues.py"))
