"""Page numbers "of Y" in one layout pass when the number of pages is guessed right (``GuessingDoc``).

Imported by ``documents.rendering`` on the first PDF render, with xhtml2pdf itself: a process that never
renders a PDF does not load the PDF libraries.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from xhtml2pdf import document as pisa_document
from xhtml2pdf.xhtml2pdf_reportlab import PmlBaseDoc, PmlPageCount

#: The page count the render under way expects (``guessed_pages``); None: xhtml2pdf's own two passes.
_guess: ContextVar[int | None] = ContextVar("invoiceflow_page_count_guess", default=None)


@contextmanager
def guessed_pages(pages: int | None) -> Iterator[None]:
    """Render the documents built inside as if they had ``pages`` pages (checked: see ``GuessingDoc``)."""
    token = _guess.set(pages if pages and pages > 0 else None)
    try:
        yield
    finally:
        _guess.reset(token)


class _GuessedPageCount(PmlPageCount):
    """xhtml2pdf's page-count marker, satisfied after the first pass when the guess held."""

    def __init__(self, doc: GuessingDoc, guess: int) -> None:
        super().__init__()
        self._doc = doc
        self._guess = guess
        self._passes = 0

    def isSatisfied(self) -> bool:  # noqa: N802 (reportlab's name)
        self._passes += 1
        if self._passes > 1:
            return True
        pages = self._doc.pages_laid_out
        if pages == self._guess and not self._doc.renumbers_pages():
            return True
        self._doc.set_page_count(pages)  # the next pass prints the number this one found
        return False


class GuessingDoc(PmlBaseDoc):
    """xhtml2pdf's document template, except that a document whose only reason for a second layout pass
    is ``<pdf:pagecount>`` starts its first pass with the page count guessed by the caller
    (``guessed_pages``) instead of counting up. The body's layout does not depend on the number printed
    (it is drawn in static frames, painted as each page begins), so when the first pass ends on exactly
    the guessed page, every page already shows the right "of Y" and the second pass is skipped. Any
    other outcome takes the second pass with the count the first one found, as xhtml2pdf would: a wrong
    guess costs what xhtml2pdf always costs, never a whole render more.

    Only the plain case is guessed: one page-count marker and nothing else that needs another pass
    (a table of contents, ``<pdf:resetpagenumber>``, inserted PDFs)."""

    pages_laid_out = 0

    def handle_pageBegin(self) -> None:  # noqa: N802 (reportlab's name)
        super().handle_pageBegin()
        self.pages_laid_out = max(self.pages_laid_out, self.page)

    def set_page_count(self, pages: int) -> None:
        """The "of Y" every page template and this document print from now on."""
        self._page_count = pages
        for template in self.pageTemplates:
            template._page_count = pages

    def build(self, flowables: Any, *args: Any, **kwargs: Any) -> Any:
        self.pages_laid_out = 0
        return super().build(flowables, *args, **kwargs)

    def multiBuild(self, story: list[Any], *args: Any, **kwargs: Any) -> Any:  # noqa: N802
        guess = _guess.get()
        indexing = [index for index, flowable in enumerate(story) if flowable.isIndexing()]
        if guess is not None and len(indexing) == 1 and type(story[indexing[0]]) is PmlPageCount:
            story = list(story)
            story[indexing[0]] = _GuessedPageCount(self, guess)
            self.set_page_count(guess)
        return super().multiBuild(story, *args, **kwargs)

    def renumbers_pages(self) -> bool:
        """Whether this pass reset page numbers or inserted pages: the guess is not trusted then."""
        return bool(getattr(self, "pageNumberResets", None) or getattr(self, "pdfInserts", None))


def install() -> None:
    """Make ``GuessingDoc`` the document template xhtml2pdf's ``pisaDocument`` builds (idempotent)."""
    if pisa_document.PmlBaseDoc is PmlBaseDoc:
        pisa_document.PmlBaseDoc = GuessingDoc
