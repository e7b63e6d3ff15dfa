"""Render invoice PDFs (jinja2 → HTML → xhtml2pdf) and emails from templates the user may override.

Pure and synchronous: the PDF activity calls it on a worker thread. Safety rules:

- HTML templates autoescape, so client-supplied text (line descriptions, names) is shown, never
  interpreted as markup; text templates are not HTML-escaped.
- The PDF renderer never fetches: every URL scheme is refused and a relative path resolves only to a
  file *inside* a template folder in use (``..`` escapes and absolute paths elsewhere are refused). A
  refused resource renders as missing and is logged.
- A user folder (``INVOICEFLOW_TEMPLATE_DIR``) is searched before the built-in one, so overriding
  only ``invoice.html`` works.

Fonts: xhtml2pdf's default Helvetica (WinAnsi encoding) covers Western European text and "€"; scripts
outside that (CJK, Cyrillic) need a TTF declared with ``@font-face`` in an overriding template.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from xhtml2pdf import pisa
from xhtml2pdf.config.resources import ResourceAccessPolicy

log = logging.getLogger("invoiceflow.rendering")

BUILTIN_TEMPLATE_DIR = Path(__file__).parent / "templates"
EMAIL_KINDS = ("invoice", "reminder", "escalation", "payment_receipt")


class RenderError(Exception):
    pass


@dataclass(frozen=True)
class Party:
    name: str
    address: str = ""
    email: str = ""
    tax_id: str = ""


@dataclass(frozen=True)
class DocumentLine:
    description: str
    quantity: str
    unit_price: str
    discount: str
    tax_rate: str
    amount: str


@dataclass(frozen=True)
class DocumentTotal:
    label: str
    amount: str
    emphasis: bool = False


@dataclass(frozen=True)
class InvoiceDocument:
    title: str
    number: str
    issue_date: str
    due_date: str
    currency: str
    seller: Party
    customer: Party
    lines: tuple[DocumentLine, ...]
    totals: tuple[DocumentTotal, ...]
    notes: str = ""
    terms: str = ""
    status_stamp: str = ""
    pay_url: str = ""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def _folders(template_dir: Path | None) -> list[Path]:
    folders = [template_dir.resolve()] if template_dir else []
    return [*folders, BUILTIN_TEMPLATE_DIR.resolve()]


def _environment(template_dir: Path | None) -> Environment:
    # StrictUndefined: a typo in an invoice template should fail loudly, not print an empty total.
    return Environment(
        loader=ChoiceLoader([FileSystemLoader(str(folder)) for folder in _folders(template_dir)]),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def safe_link_callback(folders: list[Path]):  # type: ignore[no-untyped-def]
    """xhtml2pdf link_callback: a path inside one of ``folders``, or None (= missing) for anything else."""

    def resolve(uri: str, rel: str | None = None) -> str | None:
        if ":" in uri.split("/", 1)[0]:  # any scheme: http, https, file, data, ftp ...
            log.warning("PDF template refers to %r; remote and scheme URLs are not fetched", uri)
            return None
        for folder in folders:
            candidate = (folder / uri.lstrip("/")).resolve() if not uri.startswith("/") else Path(uri).resolve()
            if candidate.is_relative_to(folder) and candidate.is_file():
                return str(candidate)
        log.warning("PDF template refers to %r, outside the template folders; ignored", uri)
        return None

    return resolve


def render_invoice_html(doc: InvoiceDocument, template_dir: Path | None = None) -> str:
    return _environment(template_dir).get_template("invoice.html").render(doc=doc)


def render_invoice_pdf(doc: InvoiceDocument, template_dir: Path | None = None) -> bytes:
    html = render_invoice_html(doc, template_dir)
    folders = _folders(template_dir)
    out = io.BytesIO()
    # Two layers: our link_callback decides what a reference means; xhtml2pdf's own resource policy
    # then refuses the network outright and confines file reads to the same folders.
    policy = ResourceAccessPolicy(
        allow_remote=False, base_dir=folders[0], extra_roots=tuple(folders[1:]), max_render_seconds=60
    )
    status = pisa.CreatePDF(
        html, dest=out, encoding="utf-8", link_callback=safe_link_callback(folders), resource_policy=policy
    )
    if status.err:
        raise RenderError(f"xhtml2pdf reported {status.err} error(s) rendering invoice {doc.number}")
    return out.getvalue()


def render_email(kind: str, context: Mapping[str, object], template_dir: Path | None = None) -> RenderedEmail:
    if kind not in EMAIL_KINDS:
        raise RenderError(f"unknown email kind {kind!r}; known: {', '.join(EMAIL_KINDS)}")
    env = _environment(template_dir)
    values = {
        "customer_name": "", "seller_name": "", "number": "", "total": "", "amount_due": "", "amount_paid": "",
        "due_date": "", "currency": "", "pay_url": "", "offset_days": 0, "owner_name": "",
        **context,
    }
    subject = env.get_template(f"email/{kind}.subject.txt").render(**values)
    return RenderedEmail(
        subject=" ".join(subject.split()),
        text=env.get_template(f"email/{kind}.txt").render(**values),
        html=env.get_template(f"email/{kind}.html").render(**values),
    )
