"""The kinds of run, one package each, every one implementing :class:`~training_dynamics.core.kind.Kind`.

::

    kinds/base.py              what kinds with one row per example share (ExampleKind)
    kinds/classification/      texts with one label each (the seed's runs)
    kinds/generative/          causal LMs on prompt/response data and conversations (full, LoRA, TRL)
    kinds/token/               token classification (NER), word by word
    kinds/multilabel/          multi-label classification, per (example, label)
    kinds/recording.py         what every kind's recording shares (run folder, model loading, head size)

Each kind's ``kind.py`` holds its :class:`Kind` object (``KIND``); ``pyproject.toml`` names it in the
``training_dynamics.kinds`` entry-point group, which is how the registry (:mod:`training_dynamics.core.kind`)
finds it. A kind of another package is added the same way (``docs/design.md``, "Adding a kind").
"""

from __future__ import annotations

from training_dynamics.core.kind import (Kind, KindError, for_problem_type, get, kind_name, names, of_meta, of_runs,
                                         problem_types, register)
from training_dynamics.kinds.classification.kind import KIND as CLASSIFICATION_KIND
from training_dynamics.kinds.generative.kind import KIND as GENERATIVE_KIND
from training_dynamics.kinds.multilabel.kind import KIND as MULTILABEL_KIND
from training_dynamics.kinds.token.kind import KIND as TOKEN_KIND

#: the built-in kinds by name (what the entry points name; the registry falls back on it in a source checkout)
BUILTIN: dict[str, Kind] = {k.name: k for k in (CLASSIFICATION_KIND, GENERATIVE_KIND, TOKEN_KIND, MULTILABEL_KIND)}


def of_run(run) -> Kind:
    """The kind of a :class:`~training_dynamics.analysis.run.Run` (:attr:`Run.kind`)."""
    return run.kind


__all__ = ["BUILTIN", "Kind", "KindError", "for_problem_type", "get", "kind_name", "names", "of_meta", "of_run",
           "of_runs", "problem_types", "register"]
