"""Shared command-line plumbing: logging set-up and one-line errors instead of tracebacks."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, KeyError, OSError)


def setup_logging(level: int = logging.INFO) -> None:
    """Configure the root logger once, for a command-line entry point (never at import)."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        level=level, stream=sys.stderr, force=True)
    for noisy in ("httpx", "urllib3", "filelock", "datasets", "fsspec", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run(main: Callable[[], int | None], prog: str) -> int:
    """Call ``main``; an expected error becomes ``prog: error: <message>`` on one line and exit 2."""
    try:
        return int(main() or 0)
    except EXPECTED_ERRORS as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return 2


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """``--help`` that appends ``(default: X)`` to a flag only when it has a real default and its
    help text does not already state one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text.lower() or action.default in (None, False, argparse.SUPPRESS)
                or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"
