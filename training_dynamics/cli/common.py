"""Shared command-line plumbing: logging, one-line errors, and parsing dataclass arguments."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from training_dynamics.core.errors import TrainingDynamicsError

#: the operating system's file errors: bad input too (a path that is not there, not readable, ...)
FILE_ERRORS: tuple[type[OSError], ...] = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError,
                                          FileExistsError)
#: what becomes one line; anything else (a KeyError, a TypeError, ...) is a bug and keeps its traceback
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (TrainingDynamicsError, *FILE_ERRORS)


class ProgressBarSafeHandler(logging.StreamHandler):
    """A stream handler that writes each line above any tqdm progress bar (``tqdm.write``), so a log
    line never sticks to the end of a bar. Without tqdm imported there is no bar: a plain write."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm = sys.modules.get("tqdm")
        if tqdm is None:
            super().emit(record)
            return
        try:
            tqdm.tqdm.write(self.format(record), file=self.stream)
            self.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's own rule: a failed emit never raises
            self.handleError(record)


def setup_logging(level: int = logging.INFO) -> None:
    """Configure the root logger once, for a command-line entry point (never at import).

    ``force=True`` replaces any handler installed earlier, so no line is printed twice; the handler
    keeps log lines off the progress bars (:class:`ProgressBarSafeHandler`).
    """
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        level=level, handlers=[ProgressBarSafeHandler(sys.stderr)], force=True)
    for noisy in ("httpx", "urllib3", "filelock", "datasets", "fsspec", "matplotlib", "PIL", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextlib.contextmanager
def progress_bars_disabled(disable: bool = True) -> Iterator[None]:
    """``--disable_tqdm``: inside the block, no progress bar from datasets (loading, map), huggingface_hub
    or, when it is imported already, transformers (loading weights, training, saving); each library's
    setting is restored after it (a command run in a notebook leaves the kernel as it was).
    ``disable=False``: nothing changes."""
    if not disable:
        yield
        return
    import datasets
    import huggingface_hub.utils as hub

    tf_logging = sys.modules.get("transformers.utils.logging")
    before = (datasets.is_progress_bar_enabled(), hub.are_progress_bars_disabled(),
              tf_logging is not None and tf_logging.is_progress_bar_enabled())
    datasets.disable_progress_bars()
    hub.disable_progress_bars()
    if tf_logging is not None:
        tf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if before[0]:
            datasets.enable_progress_bars()
        if not before[1]:
            hub.enable_progress_bars()
        if before[2]:
            tf_logging.enable_progress_bar()


def run(main: Callable[[], int | None], prog: str) -> int:
    """Call ``main``; a project error (:class:`TrainingDynamicsError`) or one of the OS's file errors
    (:data:`FILE_ERRORS`, each named there: not every ``OSError``) becomes ``prog: error: <message>`` on
    one line and exit 2. Any other exception is a bug and keeps its traceback."""
    try:
        return int(main() or 0)
    except EXPECTED_ERRORS as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return 2


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """``--help`` that shows each flag once (``--run_dir, --model_dir DIR``: the dashed twins that
    ``HfArgumentParser`` adds are accepted but not listed), no value placeholder on switches, and
    ``(default: X)`` only where a flag has a real default its help text does not already state."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings:
            return super()._format_action_invocation(action)
        names = ", ".join(o for o in action.option_strings if "-" not in o[2:])
        if action.nargs == 0 or (action.nargs == "?" and action.const is True):  # a switch
            return names
        return f"{names} {self._format_args(action, self._get_default_metavar_for_optional(action))}"

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text.lower() or action.default in (None, False, argparse.SUPPRESS)
                or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


def headless_matplotlib() -> None:
    """Agg for a command run from a shell; left alone inside Jupyter, where the demo's commands run
    in the kernel and the notebook's own figures must stay inline."""
    import matplotlib

    if "ipykernel" not in sys.modules:
        matplotlib.use("Agg")


def hf_argument_parser() -> type:
    """transformers' ``HfArgumentParser``, without importing all of transformers when it is not loaded yet.

    Its module needs only the standard library and yaml, so it is loaded from its own file: the
    analysis commands (which need nothing else from transformers) start about a second sooner.
    Falls back to the plain import if that ever fails.
    """
    if "transformers" not in sys.modules:
        try:
            spec = importlib.util.find_spec("transformers")
            path = Path(next(iter(spec.submodule_search_locations))) / "hf_argparser.py"
            mod_spec = importlib.util.spec_from_file_location("training_dynamics.cli._hf_argparser", path)
            module = importlib.util.module_from_spec(mod_spec)
            mod_spec.loader.exec_module(module)
            return module.HfArgumentParser
        except Exception:  # noqa: BLE001 - a future layout: the plain import below still works
            pass
    from transformers import HfArgumentParser

    return HfArgumentParser


def parser_for(dataclass_types: Sequence[type], *, prog: str, doc: str | None, **kwargs):
    """An ``HfArgumentParser`` over ``dataclass_types`` with this project's help style.

    ``doc``: the command's module docstring; its first paragraph is the description and the rest
    (usage examples) is shown after the flags. ``kwargs`` go to ``argparse.ArgumentParser``.
    """
    head, _, rest = (doc or "").strip().partition("\n\n")
    return hf_argument_parser()(list(dataclass_types), prog=prog, usage=f"{prog} [flags]   (--help lists them)",
                            description=head, epilog=rest or None, formatter_class=HelpFormatter, **kwargs)


def parse(dataclass_types: Sequence[type], argv: Sequence[str] | None, *, prog: str, doc: str | None) -> tuple[Any, ...]:
    """Parse ``argv`` into one instance of each dataclass (``--help`` lists them all, grouped).

    A value a dataclass refuses (its ``__post_init__``) or an unknown flag raises ``ValueError``;
    it becomes a :class:`TrainingDynamicsError`, which :func:`run` prints as one line.
    """
    from training_dynamics.cli.flags import check_unknown, option_names

    parser = parser_for(dataclass_types, prog=prog, doc=doc)
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" not in argv and "--help" not in argv:
        check_unknown(argv, option_names(parser))  # a typo first, before the flag it left missing (--corection)
    with usage_errors():
        *parsed, unknown = parser.parse_args_into_dataclasses(args=argv, look_for_args_file=False,
                                                             return_remaining_strings=True)
    check_unknown(unknown, option_names(parser))
    if unknown:  # a stray value, not a flag
        raise TrainingDynamicsError(f"unrecognized argument(s): {' '.join(unknown)}; --help lists the flags")
    return tuple(parsed)


@contextlib.contextmanager
def usage_errors() -> Iterator[None]:
    """Turn the ``ValueError`` of a refused flag value (a dataclass ``__post_init__``, an unknown flag
    in ``HfArgumentParser``) into a :class:`TrainingDynamicsError`: one line, no traceback."""
    try:
        yield
    except TrainingDynamicsError:
        raise
    except ValueError as exc:
        raise TrainingDynamicsError(str(exc)) from exc
