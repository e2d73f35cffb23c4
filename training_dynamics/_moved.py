"""The previous release's flat import paths (``training_dynamics.trl_sft``, ``training_dynamics.record``, ...)
still import, as the module that now holds them, with a ``DeprecationWarning`` naming the new path
(docs/changes.md). Only paths that no longer exist are redirected; nothing here is imported by the library."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: old module (under ``training_dynamics.``) -> the module that holds its names now
MOVED = {
    "trl_sft": "kinds.generative.trl", "record": "core.recorder", "record_clm": "kinds.generative.record",
    "record_ner": "kinds.token.record", "clm_data": "kinds.generative.data", "chat": "kinds.generative.chat",
    "ner_data": "kinds.token.data", "token_dynamics": "kinds.token.dynamics", "token_issues": "kinds.token.issues",
    "token_metrics": "kinds.token.metrics", "token_review": "kinds.token.review", "run": "analysis.run",
    "metrics": "analysis.metrics", "streaming": "analysis.streaming", "partitions": "analysis.partitions",
    "multirun": "analysis.multirun", "selection": "analysis.selection", "compare": "analysis.compare",
    "plots": "analysis.plots", "glue_metrics": "analysis.glue_metrics", "label_errors": "decisions.ranking",
    "decision": "decisions.rules", "issues": "workflows.find_issues", "train": "workflows.train",
    "corrections": "review.corrections", "arguments": "core.arguments", "binding": "core.binding",
    "data": "core.data", "dynamics_file": "core.dynamics_file", "errors": "core.errors", "fileio": "core.fileio",
    "ids": "core.ids", "outputs": "core.outputs", "run_writer": "core.run_writer", "demo_data": "demo.data",
    "ner_demo_data": "demo.ner_data",
}
PACKAGE = "training_dynamics."


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``training_dynamics.<old>`` and hands back the module that replaced it."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.startswith(PACKAGE) and fullname[len(PACKAGE):] in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        new = PACKAGE + MOVED[spec.name[len(PACKAGE):]]
        warnings.warn(f"{spec.name} has moved to {new}; import it from there (docs/changes.md)",
                      DeprecationWarning, stacklevel=3)
        return importlib.import_module(new)

    def exec_module(self, module) -> None:
        """The module is the new one, already executed."""


def install() -> None:
    """Add the finder after the regular ones (a module that exists is always found first)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
