"""How long an input a model can read: ``--max_seq_length`` capped by the tokenizer and the position table.

As transformers' ``run_glue.py``: a ``--max_seq_length`` above what the model allows would end in a
mid-training crash ("The expanded size of the tensor (102) must match ... (64)"); it is lowered, with one
log line, to the smallest of the tokenizer's ``model_max_length`` and the model's position table
(``max_position_embeddings``, ``n_positions``, ...; RoBERTa-like models keep ``pad_token_id + 1`` of theirs).
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

#: config attributes that bound the number of positions a model reads
POSITION_ATTRIBUTES = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")
#: models whose position ids start after the padding index (``pad_token_id + 1`` positions unused)
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "longformer", "bart", "mbart", "data2vec-text", "xmod")
_UNBOUNDED = 10 ** 7  # transformers' tokenizers say VERY_LARGE_INTEGER (1e30) when they know no limit


def model_limit(tokenizer: Any = None, config: Any = None) -> tuple[int, str] | None:
    """``(tokens, what sets it)``: the longest input the tokenizer and the model's position table allow,
    ``None`` when neither says."""
    limits: list[tuple[int, str]] = []
    tml = getattr(tokenizer, "model_max_length", None)
    if isinstance(tml, int) and 0 < tml < _UNBOUNDED:
        limits.append((tml, f"the tokenizer's model_max_length {tml}"))
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for attr in POSITION_ATTRIBUTES:
        value = getattr(text, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value < _UNBOUNDED:
            usable = value
            pad = getattr(text, "pad_token_id", None)
            if getattr(text, "model_type", "") in _OFFSET_POSITIONS and isinstance(pad, int):
                usable = value - pad - 1
            limits.append((usable, f"the model's {attr} {value}"))
            break
    return min(limits) if limits else None


def cap_max_seq_length(max_seq_length: int, tokenizer: Any = None, config: Any = None, *,
                       flag: str = "--max_seq_length") -> int:
    """``max_seq_length``, lowered (one warning line) to what the tokenizer and the model allow."""
    limit = model_limit(tokenizer, config)
    if limit is None or max_seq_length <= limit[0]:
        return int(max_seq_length)
    logger.warning("%s %d is longer than %s allows: using %s %d (longer inputs are truncated to it)", flag,
                   max_seq_length, limit[1], flag, limit[0])
    return int(limit[0])
