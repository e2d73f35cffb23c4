"""``training-dynamics <command>``: one command line for every step (a module per command)."""

from __future__ import annotations

import difflib
import importlib
import sys

from training_dynamics.cli.common import run, setup_logging  # noqa: F401  (the scripts' shared helpers)

#: command -> (module, one-line summary)
COMMANDS = {
    "record": ("record", "fine-tune a classifier and record every example's logits once per epoch"),
    "record-clm": ("record_clm", "fine-tune a causal LM on prompt/response data and record each response's "
                                 "mean token log-probability once per epoch"),
    "record-ner": ("record_ner", "fine-tune a token classifier (NER) and record each word's gold-tag probability "
                                 "and predicted tag once per epoch"),
    "import": ("import_", "turn per-epoch probabilities or logits made elsewhere (npy/parquet, one file per epoch) "
                          "into a run folder"),
    "metrics": ("metrics", "per-example metrics (confidence, variability, correctness, ...) of a run"),
    "plot": ("plot", "the data map: variability vs confidence, coloured by correctness"),
    "select": ("select", "hard / easy / ambiguous subsets, or the paper's metric filtering"),
    "compare": ("compare", "how the dynamics of two runs differ (a weak and a strong model, two seeds, ...)"),
    "find-issues": ("find_issues", "rank examples by how likely their label is wrong"),
    "review": ("review", "a self-contained HTML page to review the ranked label issues"),
    "import-labels": ("import_labels", "bring the labels chosen in Label Studio or Argilla back as corrections.json"),
    "apply": ("apply", "apply the reviewed corrections and write a corrected dataset"),
    "demo": ("demo", "the whole pipeline offline, on generated data and tiny models"),
}
PROG = "training-dynamics"


def _overview() -> str:
    from training_dynamics import __version__

    width = max(map(len, COMMANDS))
    lines = [f"usage: {PROG} <command> [flags]   ({PROG} <command> --help for a command's flags)", "",
             f"Dataset cartography for fine-tuning data (version {__version__}). Commands, in pipeline order:", ""]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


def run_command(command: str, argv: list[str], *, prog: str | None = None) -> int:
    """Run one command's ``main`` on ``argv``; expected errors become one line and exit 2."""
    module = importlib.import_module(f".{COMMANDS[command][0]}", __name__)
    prog = prog or f"{PROG} {command}"
    return run(lambda: module.main(argv, prog=prog), prog)


def main(argv: list[str] | None = None) -> int:
    """The ``training-dynamics`` entry point."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_overview())
        return 0
    if argv[0] == "--version":
        from training_dynamics import __version__

        print(__version__)
        return 0
    if argv[0] not in COMMANDS:
        close = difflib.get_close_matches(argv[0], COMMANDS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        print(f"{PROG}: error: unknown command {argv[0]!r}{hint}; choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return run_command(argv[0], argv[1:])
