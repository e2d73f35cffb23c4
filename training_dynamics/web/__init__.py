"""The project's HTML pages: templates under ``training_dynamics/web/``, filled from Python-built JSON."""

from __future__ import annotations

import json

_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def json_for_html(obj) -> str:
    """JSON safe to embed in an HTML ``<script>`` block (``type="application/json"`` or classic).

    ``<``, ``>``, ``&``, U+2028 and U+2029 become ``\\uXXXX`` escapes (they only occur inside JSON
    strings, where the escape means the same character), so no text can close the block.
    """
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.translate(str.maketrans(_HTML_ESCAPES))
