"""training-dynamics: dataset cartography for text classification on Hugging Face transformers."""

__version__ = "0.1.0"
