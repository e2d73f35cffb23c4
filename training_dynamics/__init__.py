"""training-dynamics: dataset cartography for fine-tuning data (classification, multi-label, token
classification, generative and chat) on Hugging Face transformers."""

from training_dynamics import _moved
from training_dynamics.core.version import __version__  # noqa: F401

_moved.install()  # the previous release's flat import paths still import (docs/changes.md)


def __getattr__(name: str):
    """``training_dynamics.Recorder``: record from any training loop (imported on first use)."""
    if name == "Recorder":
        from training_dynamics.workflows.recorder_api import Recorder

        return Recorder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
