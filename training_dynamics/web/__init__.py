"""The project's HTML pages: jinja2 templates, scripts and stylesheets shipped in this package.

Every page is ONE self-contained file (no server, no network, no CDN), rendered by :func:`render`:

* the template (``review.html.j2``, ``data_map.html.j2``, both extending ``base.html.j2``) is
  rendered by jinja2 with autoescaping on, so any text passed in (a title, a warning) is escaped;
* Python only builds a JSON payload, embedded with :func:`json_for_html` in a
  ``<script type="application/json" id="td-data">`` block that no text can close;
* the page's scripts (e.g. the shared ``data_map.js`` component + ``review.js``) and stylesheets are
  inlined verbatim, and a Content-Security-Policy allows exactly that script and that style (by
  sha256 hash) and no network at all.

Files are read with :mod:`importlib.resources`, so they work from a wheel as from a source tree.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any, Sequence

#: a review card with a button per class (what a kind's ``review_card`` returns; ``review.js`` reads it)
DEFAULT_CARD = {"title": "Label review", "flag": "flagged", "separator": None, "parts": None, "choices": "classes",
                "learned": None, "warn_integer_labels": True}

_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
#: what an inlined script or stylesheet may never contain: it would end (or confuse) its element
_RAW_TEXT_HAZARDS = re.compile(r"</script|<script|<!--|</style", re.IGNORECASE)


def json_for_html(obj) -> str:
    """JSON safe to embed in an HTML ``<script>`` block (``type="application/json"`` or classic).

    ``<``, ``>``, ``&``, U+2028 and U+2029 become ``\\uXXXX`` escapes (they only occur inside JSON
    strings, where the escape means the same character), so no text can close the block.
    """
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.translate(str.maketrans(_HTML_ESCAPES))


def asset(name: str) -> str:
    """The text of a file shipped in this package (a template, script or stylesheet)."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def inline_assets(names: Sequence[str]) -> str:
    """Scripts or stylesheets joined for inlining; refuses text that could end its element early."""
    parts = []
    for name in names:
        text = asset(name)
        bad = _RAW_TEXT_HAZARDS.search(text)
        if bad:
            raise ValueError(f"web/{name}: {bad.group(0)!r} cannot be inlined into a page")
        parts.append(text)
    return "\n".join(parts)


def csp_hash(text: str) -> str:
    """The CSP source expression ``'sha256-…'`` allowing exactly this inline script or style text."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def content_security_policy(script: str, style: str) -> str:
    """No network, no plugins, no forms; only this page's one script and one stylesheet run."""
    return (f"default-src 'none'; script-src {csp_hash(script)}; style-src {csp_hash(style)}; "
            "img-src data: blob:; connect-src 'none'; form-action 'none'; base-uri 'none'")


@lru_cache(maxsize=1)
def environment():
    """The one jinja2 environment of the project: templates from this package, autoescape on."""
    import jinja2

    def load(name: str) -> str | None:
        try:
            return asset(name)
        except FileNotFoundError:
            return None

    return jinja2.Environment(loader=jinja2.FunctionLoader(load), autoescape=True, undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True)


def render(template_name: str, *, payload: Any, scripts: Sequence[str], styles: Sequence[str], **context) -> str:
    """Render ``template_name`` into a complete page.

    Args:
        payload: JSON-able data for the page's script (read from ``#td-data``).
        scripts, styles: package files inlined, in this order, as the page's one ``<script>`` and
            one ``<style>``; the CSP allows exactly these texts.
        context: more template variables (autoescaped, e.g. ``title``).
    """
    from markupsafe import Markup

    script, style = inline_assets(scripts), inline_assets(styles)
    return environment().get_template(template_name).render(
        csp=Markup(content_security_policy(script, style)), script=Markup(script), style=Markup(style),
        data=Markup(json_for_html(payload)), **context)
