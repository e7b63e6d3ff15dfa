"""Render invoice documents (jinja2 → HTML → xhtml2pdf → PDF bytes) and emails, from templates a user may
override. Pure and synchronous: no database, no network, no clock. xhtml2pdf serialises its renders behind
a process-wide lock (reportlab keeps fonts and caches in module globals), so threads gain nothing: the PDF
activity runs ``render_invoice_pdf_from_dict`` in render processes (``activities.pdf.RenderPool``); the
API's PDF preview calls ``render_invoice_pdf`` on a thread.

Speed
    jinja2 environments (and so compiled templates), the link callback and the resource policy are built
    once per template folder and process. An invoice is laid out in one pass instead of two when its page
    count is guessed right (``render_invoice_pdf``), as nearly all are. Stylesheets without at-rules
    (xhtml2pdf's own defaults, the template's plain ``<style>``) are parsed once per process
    (``documents.css_cache``): they are the same text render after render, and the cache is keyed by the
    document's stylesheet texts, so an edited or overriding template is parsed afresh; at-rules (``@page``,
    ``@font-face``) are parsed per document because they build that document's page templates and load its
    fonts. The fallback font is declared only for a document that needs it (``needs_fallback_font``). The
    rest is xhtml2pdf parsing the HTML and laying the page out, once per invoice: it depends on the
    invoice's text, and costs in proportion to table cells and elements (a cell is wrapped several times and
    drawn inside a keep-in-frame box), which is why the built-in template is written with as few of both as
    its layout allows.

Inputs are already formatted: every amount, date and percentage arrives as the string to print. Nothing
here does arithmetic or formats money.

Templates
    ``BUILTIN_TEMPLATE_DIR`` (``documents/templates``) holds ``invoice.html`` and, per email kind in
    ``EMAIL_KINDS``, ``email/<kind>.subject.txt``, ``email/<kind>.txt`` and ``email/<kind>.html`` (the HTML
    ones extend ``email/_layout.html``). ``template_dir`` names a user folder searched *before* the
    built-in one (jinja2 ``ChoiceLoader``), so a user can override a single file, e.g. only
    ``invoice.html``, and keep the rest. A ``template_dir`` that is not a directory is a ``RenderError``
    rather than a silent fall back to the built-ins.

Undefined values
    ``invoice.html`` renders with ``StrictUndefined``: the document is a typed dataclass, so an unknown
    name is a template bug (a typo would otherwise print an empty total) and raises ``RenderError``.
    Email templates render with jinja2's ``ChainableUndefined``: their context is a loose mapping, and a
    missing key (even ``{{ contact.first_name }}`` in an overriding template) prints as empty. ``None``
    values print as empty too. ``offset_days`` is the one key that
    is not defaulted to ``""``: when absent it is ``None`` and the reminder falls back to a neutral tone.

Escaping
    ``.html`` templates autoescape, so client-supplied text (names, line descriptions, notes) is shown,
    never interpreted as markup; ``.txt`` templates (subjects, plain-text bodies) are not HTML-escaped.
    Subjects are folded to a single line (no header injection through a name with a newline).

Resources (what a PDF template may load)
    The renderer never fetches anything over a network and reads no file outside the template folders in
    use. Two layers enforce it:

    1. ``safe_link_callback`` (xhtml2pdf's ``link_callback``) refuses every URL scheme (``http``,
       ``https``, ``ftp``, ``file``, ``data`` ...), protocol-relative ``//host`` references and every path
       that resolves (after ``..`` and symlinks) outside the template folders. A relative path is looked
       up in the user folder first, then the built-in one (relative to the folder, also when written in a
       stylesheet: ``url(img/logo.png)``, not ``url(../img/logo.png)`` from ``css/style.css``). One
       exception: ``fonts/<name>.ttf`` that is in
       no template folder falls back to the TrueType fonts bundled with reportlab (Bitstream Vera). A
       refusal is logged as a warning and the resource renders as missing; it is never an exception.
       xhtml2pdf keeps the *original* URL when a callback returns nothing, so the callback actually
       handed to xhtml2pdf answers a refusal with a path that does not exist inside the template folder.
    2. xhtml2pdf's ``ResourceAccessPolicy`` (``allow_remote=False``, reads confined to the same folders,
       size and time limits) is passed as well: it also covers the code paths in xhtml2pdf that do not
       consult ``link_callback`` at all.

Fonts
    The built-in template draws with Helvetica, one of the PDF standard fonts (not embedded; every viewer
    has it). Its WinAnsi encoding covers Western European text and the symbols invoices need: € £ ¥ – “ ”
    • ™ ©. xhtml2pdf picks a font per character from the ``font-family`` list, so characters Helvetica
    lacks fall back to Bitstream Vera (``fonts/Vera.ttf``, ``fonts/VeraBd.ttf``), which ships inside the
    reportlab wheel that xhtml2pdf depends on, so it exists wherever this code runs. Vera adds Ł ł Č č Ć ć
    Đ đ Ğ ğ İ ı Ş ş and is embedded (subset) only when used; the template declares it only for documents
    with such characters (``needs_fallback_font``). Still NOT covered, and drawn as blank
    boxes with a logged warning: most other Central European letters (ą ę ń ś ź ż ř ě ů ő ű ...), Greek,
    Cyrillic, CJK, Arabic, Hebrew and currency signs such as ₹ ₽ ₩ ₪ ₺. Users who need them put a TTF
    that covers them (e.g. DejaVuSans.ttf, Noto Sans) into their template folder and declare it with
    ``@font-face { font-family: ...; src: url("fonts/DejaVuSans.ttf") }`` in an overriding
    ``invoice.html``; a file named ``fonts/Vera.ttf`` in the user folder also replaces the fallback.
    Fonts from the operating system (e.g. Debian's fonts-dejavu) are deliberately not used: output must
    not depend on the machine.

Errors
    ``RenderError`` for: unknown email kind, missing or broken templates, undefined names in
    ``invoice.html``, xhtml2pdf reporting errors (``status.err``) or raising, and render limits.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import multiprocessing.connection
import os
import re
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import fields, is_dataclass
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from jinja2 import (
    Environment,
)

from documents.jinja_env import (  # noqa: F401 (re-exported)
    BUILTIN_TEMPLATE_DIR,
    _days,
    _environment,
    _FolderLoader,
    _is_link,
    _nl2br,
    _render,
    template_folders,
)
from documents.page_estimate import estimated_pages
from documents.view import DocumentLine, DocumentTotal, InvoiceDocument, Party, RenderedEmail, RenderError  # noqa: F401 (re-exported)

if TYPE_CHECKING:
    from xhtml2pdf.config.resources import ResourceAccessPolicy

log = logging.getLogger("invoiceflow.rendering")

#: The TrueType fonts shipped inside the reportlab wheel; ``fonts/<name>.ttf`` falls back to them.
#: Found without importing reportlab: xhtml2pdf, reportlab and pypdf (about 40 MB) are imported by the
#: first PDF render (``_xhtml2pdf``), so a worker process, whose PDFs render in its render processes,
#: and the API, until it renders a preview, do not hold them.
BUNDLED_FONT_DIR: Path = Path(str(find_spec("reportlab").origin)).resolve().parent / "fonts"  # type: ignore[union-attr]

EMAIL_KINDS: tuple[str, ...] = (
    "invoice",
    "reminder",
    "escalation",
    "payment_receipt",
    "approval_request",
    "approval_rejected",
    "estimate",
    "credit_note",
    "dunning_notice",
)
#: Keys every email template may use; absent ones render as empty (``offset_days`` as ``None``).
EMAIL_CONTEXT_KEYS: tuple[str, ...] = (
    "customer_name",
    "seller_name",
    "number",
    "total",
    "amount_due",
    "amount_paid",
    "due_date",
    "currency",
    "pay_url",
    "offset_days",
    "owner_name",
    "approval_url",  # approval_request: the signed link to the approval page
    "approver",  # approval_request / approval_rejected: who is asked, who rejected
    "step",  # approval_request: "1 of 2"
    "reminder",  # approval_request: truthy for the reminder of an undecided request
    "comment",  # approval_rejected: the approver's reason
    "valid_until",  # estimate: last day it can be accepted
    "estimate_url",  # estimate: the signed link to the hosted estimate page
    "open_pixel_url",  # client emails: the open-tracking pixel (a weak signal, see api.routes.hosted)
    "credit_note_number",  # credit_note: its own number (CN-2026-000001); "number" is the invoice's
    "credit_note_total",  # credit_note: the amount credited
    "reason",  # credit_note: why the invoice is credited
    "tone",  # dunning policy steps: friendly | firm | final ("" for the default reminders)
    "client_emails",  # dunning_notice: who the client-facing reminder went to
)

#: Upper bound for one PDF render (a runaway template, not a long invoice: 1,000 lines take seconds).
MAX_RENDER_SECONDS = 120.0

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
#: Markup whose page numbers the first layout pass cannot know (renumbered or inserted pages, a table of
#: contents): such a document is not guessed and takes xhtml2pdf's own passes. Client text cannot fake
#: the tags (it is escaped); at worst a document takes the two passes, which are always right.
_RENUMBERS_PAGES = re.compile(r"<pdf:(resetpagenumber|insertpdf|toc)\b", re.IGNORECASE)
_REFUSED_NAME = ".invoiceflow-refused-resource"
#: ``xhtml2pdf.default.PML_ERROR``, written here so that reading a render's log needs no import.
PML_ERROR_LEVEL = "error"


# --- resources ---------------------------------------------------------------------------------------


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def safe_link_callback(folders: Sequence[Path]) -> Callable[..., str | None]:
    """The resolver behind the PDF's ``link_callback``: the absolute path of a file inside one of
    ``folders`` (tried in order), or ``None`` when the reference is refused (logged as a warning).

    Refused: any URL scheme (``http:``, ``https:``, ``ftp:``, ``file:``, ``data:`` ...), ``//host/...``,
    NUL bytes, and any path that resolves, after ``..``, percent-decoding and symlinks, outside ``folders``
    or to something that is not a regular file. ``rel`` (xhtml2pdf's base, the process's working
    directory) is ignored on purpose. ``fonts/<name>.ttf`` found in no folder falls back to
    ``BUNDLED_FONT_DIR``.
    """
    roots = tuple(Path(folder).resolve() for folder in folders)

    def refuse(uri: str, why: str) -> None:
        log.warning("invoice template refers to %r: %s; rendered without it", uri[:200], why)
        return None

    def resolve(uri: object, rel: object = None) -> str | None:
        raw = str(uri or "").strip()
        if not raw:
            return refuse(raw, "empty reference")
        if _SCHEME.match(raw) or raw.startswith(("//", "\\\\")):
            return refuse(raw, "URLs are never fetched")
        text = unquote(raw.split("#", 1)[0].split("?", 1)[0])
        if not text or "\x00" in text or _SCHEME.match(text):
            return refuse(raw, "not a file name")
        path = Path(text)
        try:
            candidates = (
                [path.resolve()] if path.is_absolute() else [(root / path).resolve() for root in roots]
            )
            for candidate in candidates:
                if _inside(candidate, roots) and candidate.is_file():
                    return str(candidate)
            if not path.is_absolute() and len(path.parts) == 2 and path.parts[0] == "fonts":
                font = (BUNDLED_FONT_DIR / path.name).resolve()
                if font.suffix.lower() == ".ttf" and font.parent == BUNDLED_FONT_DIR and font.is_file():
                    return str(font)
        except (OSError, ValueError) as exc:
            return refuse(raw, f"unusable path ({exc})")
        return refuse(raw, "no such file inside the template folders " + ", ".join(map(str, roots)))

    return resolve


def _pisa_link_callback(folders: Sequence[Path]) -> Callable[..., str]:
    """``safe_link_callback`` for xhtml2pdf, which falls back to the original URL when a callback
    returns a false value: a refusal becomes a path that does not exist inside the first folder."""
    resolve = safe_link_callback(folders)
    missing = str(Path(folders[0]).resolve() / _REFUSED_NAME)

    def callback(uri: object, rel: object = None) -> str:
        return resolve(uri, rel) or missing

    return callback


def _xhtml2pdf() -> Any:
    """xhtml2pdf's ``pisa``, imported on first use (see ``BUNDLED_FONT_DIR``), with the stylesheet
    cache (``documents.css_cache``) and the guessed page count (``documents.page_count``) installed."""
    from xhtml2pdf import pisa

    from documents import css_cache, page_count

    css_cache.install()
    page_count.install()
    return pisa


def _resource_policy(folders: Sequence[Path]) -> ResourceAccessPolicy:
    from xhtml2pdf.config.resources import ResourceAccessPolicy

    roots = [Path(folder).resolve() for folder in folders]
    return ResourceAccessPolicy.server(
        base_dir=roots[0],
        extra_roots=(*roots[1:], BUNDLED_FONT_DIR),
        allow_remote=False,
        max_render_seconds=MAX_RENDER_SECONDS,
    )


@lru_cache(maxsize=32)
def _pisa_options(folders: tuple[Path, ...]) -> tuple[Callable[..., str], ResourceAccessPolicy]:
    """Link callback and resource policy for ``folders``, built once: both are stateless (xhtml2pdf keeps
    a render's budget apart from its frozen policy) and resolving the folders is not free."""
    return _pisa_link_callback(folders), _resource_policy(folders)


def _html_to_pdf(html: str, folders: tuple[Path, ...], number: str, pages: int | None = None) -> bytes:
    """The PDF of ``html``; ``pages``: the page count to start the layout with (``page_count``)."""
    link_callback, policy = _pisa_options(folders)
    out = io.BytesIO()
    pisa = _xhtml2pdf()
    from documents.page_count import guessed_pages

    try:
        with guessed_pages(pages):
            status = pisa.CreatePDF(
                html, dest=out, encoding="utf-8", link_callback=link_callback, resource_policy=policy
            )
    except Exception as exc:  # xhtml2pdf raises a wide range of exceptions on malformed input
        raise RenderError(
            f"xhtml2pdf failed rendering invoice {number}: {type(exc).__name__}: {exc}"
        ) from exc
    if status.err:
        details = "; ".join(
            (f"line {line}: {message}" if line else str(message))
            for level, line, message, _fragment in getattr(status, "log", [])
            if level == PML_ERROR_LEVEL
        )
        raise RenderError(
            f"xhtml2pdf reported {status.err} error(s) rendering invoice {number}"
            + (f": {details}" if details else "")
        )
    content = out.getvalue()
    if not content.startswith(b"%PDF"):
        raise RenderError(f"xhtml2pdf produced no PDF for invoice {number}")
    return content


# --- public API ------------------------------------------------------------------------------------


#: The faces the built-in template draws with before its fallback: PDF standard fonts in WinAnsi encoding.
_STANDARD_FACES = ("Helvetica", "Helvetica-Bold")


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif is_dataclass(value):
        for field in fields(value):
            yield from _strings(getattr(value, field.name))
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _strings(item)


def needs_fallback_font(doc: InvoiceDocument) -> bool:
    """Whether some text of ``doc`` has a character Helvetica cannot draw (upper-cased too: the template
    prints some fields with ``| upper``). Asked of xhtml2pdf's own coverage table, the one it picks a
    face per character by, so the answer is the one the render would come to. The built-in template
    declares its fallback font only then: loading it costs every render, and a document Helvetica
    covers never draws with it (the PDF is the same either way). White space is drawn by no face."""
    from xhtml2pdf.util import font_has_glyph

    text = "".join(_strings(doc))
    return any(
        not char.isspace() and not all(font_has_glyph(face, char) for face in _STANDARD_FACES)
        for char in set(text) | set(text.upper())
    )


def _render_invoice(
    env: Environment, doc: InvoiceDocument, page_count: int | None, fallback_font: bool
) -> str:
    return _render(env, "invoice.html", doc=doc, page_count=page_count, fallback_font=fallback_font)


def render_invoice_html(
    doc: InvoiceDocument, template_dir: Path | None = None, *, page_count: int | None = None
) -> str:
    """The invoice as HTML (the input of the PDF renderer; also usable for a web preview). ``page_count``
    None lets xhtml2pdf count the pages (``<pdf:pagecount>``); see ``render_invoice_pdf``. Templates also
    get ``fallback_font`` (see ``needs_fallback_font``)."""
    env = _environment(template_folders(template_dir), strict=True)
    return _render_invoice(env, doc, page_count, needs_fallback_font(doc))


def render_invoice_pdf(doc: InvoiceDocument, template_dir: Path | None = None) -> bytes:
    """The invoice as an A4 PDF. Raises ``RenderError`` if the template or xhtml2pdf fails.

    "Page X of Y" (``<pdf:pagecount>``) costs xhtml2pdf a second layout pass: it only knows Y once every
    page is laid out. Here the first pass starts with Y guessed from the invoice's lines
    (``estimated_pages``); when that pass ends on the guessed page, every footer is already right and
    the second pass is skipped (``documents.page_count``). A wrong guess takes xhtml2pdf's second pass
    with the count it found, as before. Templates that renumber pages or insert PDFs are never guessed.
    """
    folders = template_folders(template_dir)
    env = _environment(folders, strict=True)
    html = _render_invoice(env, doc, None, needs_fallback_font(doc))
    guess = None if _RENUMBERS_PAGES.search(html) else estimated_pages(doc)
    return _html_to_pdf(html, folders, doc.number, guess)


def render_email(kind: str, context: Mapping[str, object], template_dir: Path | None = None) -> RenderedEmail:
    """Subject, plain-text and HTML body of one email kind (see ``EMAIL_KINDS``)."""
    if kind not in EMAIL_KINDS:
        raise RenderError(f"unknown email kind {kind!r}; known: {', '.join(EMAIL_KINDS)}")
    return _render_email(kind, context, template_dir)


_TEMPLATE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def missing_email_templates(name: str, template_dir: Path | None = None) -> list[str]:
    """The files ``email/<name>.subject.txt``, ``.txt`` and ``.html`` that no template folder has (a
    dunning policy may name its own templates; they must exist before the policy is saved)."""
    if not _TEMPLATE_NAME.fullmatch(name) or name.startswith("_"):
        return [f"email/{name}"]
    folders = template_folders(template_dir)
    return [
        f"email/{name}.{suffix}"
        for suffix in ("subject.txt", "txt", "html")
        if not any((folder / "email" / f"{name}.{suffix}").is_file() for folder in folders)
    ]


def render_named_email(
    name: str, context: Mapping[str, object], template_dir: Path | None = None
) -> RenderedEmail:
    """Like ``render_email`` for a template a dunning policy names (a built-in kind or the user's own)."""
    missing = missing_email_templates(name, template_dir)
    if missing:
        raise RenderError(f"email template {name!r} is missing: {', '.join(missing)}")
    return _render_email(name, context, template_dir)


def _render_email(kind: str, context: Mapping[str, object], template_dir: Path | None) -> RenderedEmail:
    env = _environment(template_folders(template_dir), strict=False)
    values: dict[str, object] = {key: "" for key in EMAIL_CONTEXT_KEYS}
    values.update({key: value for key, value in context.items() if value is not None})
    offset = context.get("offset_days")
    try:
        values["offset_days"] = None if offset is None or offset == "" else int(offset)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise RenderError(f"offset_days must be a whole number of days, got {offset!r}") from exc
    subject = _render(env, f"email/{kind}.subject.txt", **values)
    return RenderedEmail(
        subject=" ".join(subject.split()),
        text=_render(env, f"email/{kind}.txt", **values).strip() + "\n",
        html=_render(env, f"email/{kind}.html", **values),
    )


# --- render processes ------------------------------------------------------------------------------------


def render_process_init() -> None:
    """Initializer of a render process (``activities.pdf.RenderPool``). Ignores Ctrl-C, which a terminal
    sends to the whole process group, so that the worker decides when renders stop; and exits as soon as
    the worker process is gone, however it died (SIGKILL, OOM killer), so no render process outlives it:
    a process pool's children otherwise wait on their task queue forever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def exit_with_parent() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=exit_with_parent, name="exit-with-parent", daemon=True).start()


def render_invoice_pdf_from_dict(document: Mapping[str, Any], template_dir: str | None) -> bytes:
    """What a render process runs: ``InvoiceDocument.to_dict()`` and the template folder in, PDF bytes out."""
    return render_invoice_pdf(
        InvoiceDocument.from_dict(document), Path(template_dir) if template_dir else None
    )
