"""Example ids (``guid``): the one place that knows what an id is and how it is written.

An id is an integer (int64) or a string, one kind for every example of a data set; ids are never
converted between the two (``"000"`` stays a string), and never floats.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from training_dynamics.core.errors import TrainingDynamicsError


class IdError(TrainingDynamicsError):
    """Ids that are not integers or strings, or that mix the two."""


def as_guids(values: Any, *, where: str = "guid") -> np.ndarray:
    """Example ids as an array: int64 when every id is an integer, else ``str`` (ids such as SNLI
    ``pairID``s or WinoGrande ``qID``s are kept as they are, never converted).

    Raises:
        IdError: ids that are floats (a truncated id could merge two examples), booleans, missing,
            or a mix of integers and strings; ``where`` names the column in the message.
    """
    # a typed array keeps its dtype; a plain sequence is inspected value by value (np.asarray would
    # silently turn [1, "a"] into strings)
    arr = np.asarray(values) if hasattr(values, "dtype") else np.asarray(list(values), dtype=object)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    kind = arr.dtype.kind
    if kind in "iu" or len(arr) == 0:
        return arr.astype(np.int64, copy=False)
    if kind in "US":
        return arr.astype(str)
    if kind == "O":
        values = arr.tolist()
        is_int = [isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values]
        is_str = [isinstance(v, str) for v in values]
        if all(is_int):
            return np.asarray(values, dtype=np.int64)
        if all(is_str):
            return np.asarray(values, dtype=str)
        odd = [v for v, i, t in zip(values, is_int, is_str) if not (i or t)]
        if not odd:
            raise IdError(f"{where}: ids mix integers and strings ({values[is_int.index(True)]!r} and "
                             f"{values[is_str.index(True)]!r}); use one kind for every example")
        bad = odd[0]
    else:
        bad = arr.tolist()[0]
    raise IdError(f"{where}: ids must be integers or strings, not {_kind_of(bad)} (e.g. {bad!r})")


def _kind_of(value: Any) -> str:
    if value is None:
        return "missing values"
    if isinstance(value, (bool, np.bool_)):
        return "booleans"
    if isinstance(value, (float, np.floating)):
        return "real numbers"
    return f"{type(value).__name__} values"


def guid_list(guids: np.ndarray) -> list:
    """Ids as JSON-ready Python ints or strs."""
    return np.asarray(guids).tolist()




def guid_keys(guids: Any) -> list[str]:
    """The text key of each id (``"7"`` for the integer 7, the string itself for a string id): how
    corrections and the review page match ids."""
    return [str(g) for g in as_guids(guids).tolist()]
