"""Stylesheets parsed once per process for xhtml2pdf (see ``CSSCachingContext``).

Imported by ``documents.rendering`` on the first PDF render, with xhtml2pdf itself: a process that never
renders a PDF does not load the PDF libraries.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from xhtml2pdf import document as pisa_document
from xhtml2pdf.context import pisaContext
from xhtml2pdf.parser import DEFAULT_CSS_SOURCE

#: Parsed stylesheets kept (LRU): a few per template folder and kind of document is all there is.
CSS_CACHE_SIZE = 64
_css_cache: OrderedDict[tuple[object, ...], tuple[Any, frozenset[str], dict[str, str]]] = OrderedDict()
_css_cache_lock = threading.Lock()
_ABSENT = object()


class CSSCachingContext(pisaContext):
    """xhtml2pdf's per-document context, except that a stylesheet without at-rules is parsed once per
    process rather than once per document: xhtml2pdf's user agent stylesheet (``DEFAULT_CSS``) and a
    template's plain ``<style>`` blocks are the same text render after render, and parsing them took
    longer than laying out a line item.

    Only what parsing such a text gives is reused, and only for the same text in the same place:

    * A source with an ``@`` anywhere is parsed on every render, as before: at-rules (``@page``,
      ``@font-face``, ``@import``, ``@media`` ...) act on the document being built (page templates,
      fonts, files read through the resource policy). Plain rules touch nothing but the parser.
    * A document's own stylesheets are keyed by all of the document's stylesheet texts (and names) and
      the position among them, never by one text alone: the cascade breaks ties by the order rules were
      parsed in, and that order is only right for the sequence it was parsed in. If a source that is
      parsed afresh yields element rules, every later source of that document is parsed afresh too.
    * What a parse records besides its rules is replayed: the declared property names (the warning
      about properties xhtml2pdf ignores) and the ``:root`` custom properties later at-rules may read.

    Templates are looked up by their text, so an edited or newly overriding template has a new key.
    ``install`` makes it the context ``pisaDocument`` builds, once per process; xhtml2pdf renders one
    document at a time in a process (its ``_RENDER_LOCK``), the cache has a lock of its own, parsed
    rules are only read afterwards, and each render process has its own cache."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._css_position = 0
        self._css_fresh = False

    def _parseCSSSource(self, text: str, sourceName: str) -> Any:  # noqa: N802 (xhtml2pdf's name)
        if sourceName == DEFAULT_CSS_SOURCE and text == self.cssDefaultText:
            key: tuple[object, ...] = ("user agent", text)
        else:
            key = ("document", tuple(self.cssSources), self._css_position)
            self._css_position += 1
            if self._css_fresh or "@" in text:
                result = super()._parseCSSSource(text, sourceName)
                self._css_fresh = self._css_fresh or any(result)
                return result
        with _css_cache_lock:
            entry = _css_cache.get(key)
            if entry is not None:
                _css_cache.move_to_end(key)
        if entry is None:
            roots = self.cssBuilder.rootCustomProperties
            before = dict(roots)
            result = super()._parseCSSSource(text, sourceName)
            declared = frozenset(self.cssParser.declaredBySource.get(sourceName, ()))
            added = {name: value for name, value in roots.items() if before.get(name, _ABSENT) != value}
            with _css_cache_lock:
                _css_cache[key] = (result, declared, added)
                while len(_css_cache) > CSS_CACHE_SIZE:
                    _css_cache.popitem(last=False)
            return result
        result, declared, added = entry
        if declared:
            self.cssParser.declaredBySource.setdefault(sourceName, set()).update(declared)
        self.cssBuilder.rootCustomProperties.update(added)
        return result


def install() -> None:
    """Make ``CSSCachingContext`` the context xhtml2pdf's ``pisaDocument`` builds (idempotent)."""
    if pisa_document.pisaContext is pisaContext:
        pisa_document.pisaContext = CSSCachingContext
