"""The classification kind: texts (one or a pair) with one label each (``training-dynamics record``).

Its data loader and recorder are the shared ones (``core.data``, ``core.recorder``); :mod:`.kind` says
what differs for the analysis, decision and review layers.
"""

from training_dynamics.kinds.classification.kind import KIND, NAME, ClassificationKind

__all__ = ["KIND", "NAME", "ClassificationKind"]
