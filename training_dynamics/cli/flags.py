"""Unknown flags refused at once, with the closest known flag (``--num_epochs`` -> ``--num_train_epochs``).

The recording commands parse their own flags before torch is imported (a "no" in a second); the flags of
``transformers.TrainingArguments`` are read from the source of its module (``ast``, no import), so that a
mistyped flag is refused before the seconds of loading torch and transformers, not after.
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib.util
from pathlib import Path
from typing import Iterable, Sequence

from training_dynamics.core.errors import TrainingDynamicsError


class UnknownFlagError(TrainingDynamicsError):
    """A flag no parser of the command knows."""


@functools.lru_cache(maxsize=1)
def training_argument_names() -> frozenset[str] | None:
    """The field names of ``transformers.TrainingArguments`` read from its source file, without importing it
    (``None`` when the file cannot be found or read: the full parser then reports unknown flags)."""
    try:
        spec = importlib.util.find_spec("transformers")
        path = Path(next(iter(spec.submodule_search_locations))) / "training_args.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - another layout: the full parser still checks
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "TrainingArguments":
            return frozenset(n.target.id for n in node.body if isinstance(n, ast.AnnAssign)
                             and isinstance(n.target, ast.Name) and not n.target.id.startswith("_"))
    return None


def option_names(parser) -> set[str]:
    """Every long option of an argparse parser, as typed (``--output_dir``)."""
    return {o for action in parser._actions for o in action.option_strings if o.startswith("--")}


def check_unknown(remaining: Sequence[str], known: Iterable[str], *, extra_fields: Iterable[str] = ()) -> None:
    """Refuse the first flag of ``remaining`` (what the parser did not take) that is neither in ``known``
    (long options, ``--x``) nor a field of ``extra_fields`` (``--x``, ``--x-y``, ``--no_x``).

    Raises:
        UnknownFlagError: ``unrecognized argument --num_epochs (did you mean --num_train_epochs?)``.
    """
    fields = set(extra_fields)
    known = set(known) | {f"--{f}" for f in fields}
    for arg in remaining:
        if not arg.startswith("--"):
            continue
        flag = arg.split("=", 1)[0]
        name = flag[2:].replace("-", "_")
        if flag in known or f"--{name}" in known or (name.startswith("no_") and name[3:] in fields):
            continue
        close = difflib.get_close_matches(flag, sorted(known), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UnknownFlagError(f"unrecognized argument {flag}{hint}; --help lists the flags")


def typed_flag(argv: Sequence[str] | None, *names: str) -> str:
    """Which of a flag's ``names`` (aliases, first = the canonical one) the user typed in ``argv``, so that a
    message names the flag the user wrote (``--plots_dir``, not its alias ``--output_dir``)."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    for arg in args:
        flag = arg.split("=", 1)[0]
        for name in names:
            if flag in (name, name.replace("_", "-")):
                return name
    return names[0]
