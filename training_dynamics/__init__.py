"""training-dynamics: dataset cartography for text classification on Hugging Face transformers."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``training_dynamics.Recorder``: record from any training loop (imported on first use)."""
    if name == "Recorder":
        from .recorder_api import Recorder

        return Recorder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
