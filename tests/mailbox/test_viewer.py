"""The HTTP viewer: JSON API and HTML pages, over messages that arrived by real SMTP."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from invoiceflow.mailbox import DevMailbox, StoredMessage

from .helpers import PDF_BYTES, invoice_message, send

EVIL_SUBJECT = 'Invoice <script>alert("x")</script> & <b>co</b>'


@pytest.fixture
def delivered(mailbox: DevMailbox) -> StoredMessage:
    message = invoice_message(EVIL_SUBJECT)
    message.replace_header("From", "Mallory <script>1</script> <mallory@example.com>")
    send(mailbox.smtp_port, message)
    [stored] = mailbox.store.list()
    return stored


@pytest.fixture
def mailbox(tmp_path: Path) -> Iterator[DevMailbox]:
    """SMTP server and viewer, both running for real (the viewer on a free port)."""
    with DevMailbox(tmp_path / "mail", http_port=0) as mb:
        yield mb


@pytest.fixture
def client(mailbox: DevMailbox) -> Iterator[httpx.Client]:
    assert mailbox.http_url is not None
    with httpx.Client(base_url=mailbox.http_url, timeout=10) as http:
        yield http


def test_json_api_lists_the_message(client: httpx.Client, delivered: StoredMessage) -> None:
    response = client.get("/api/messages")
    assert response.status_code == 200
    [item] = response.json()
    assert item["id"] == delivered.id
    assert item["from"] == "billing@invoiceflow.localhost"
    assert item["to"] == ["client@example.com"]
    assert item["subject"] == EVIL_SUBJECT
    assert item["message_id"] == delivered.message_id and item["message_id"]
    assert item["received_at"] == delivered.received_at.isoformat()
    assert item["attachments"] == [
        {"filename": "INV-0001.pdf", "content_type": "application/pdf", "size": len(PDF_BYTES)}
    ]

    detail = client.get(f"/api/messages/{delivered.id}").json()
    assert "please find invoice INV-0001 attached." in detail["text"]
    assert "<b>INV-0001</b>" in detail["html"]
    assert ["Subject", EVIL_SUBJECT] in detail["headers"]


def test_json_api_is_newest_first(mailbox: DevMailbox, client: httpx.Client) -> None:
    for subject in ("first", "second", "third"):
        send(mailbox.smtp_port, invoice_message(subject))
    assert [m["subject"] for m in client.get("/api/messages").json()] == ["third", "second", "first"]


def test_list_page_escapes_and_links(client: httpx.Client, delivered: StoredMessage) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;co&lt;/b&gt;" in page
    assert f'href="/messages/{delivered.id}"' in page
    assert "client@example.com" in page
    assert "INV-0001.pdf" in page
    assert "1 message<" in page


def test_list_page_is_newest_first(mailbox: DevMailbox, client: httpx.Client) -> None:
    for subject in ("older-one", "newer-one"):
        send(mailbox.smtp_port, invoice_message(subject))
    page = client.get("/").text
    assert page.index("newer-one") < page.index("older-one")


def test_message_page(client: httpx.Client, delivered: StoredMessage) -> None:
    response = client.get(f"/messages/{delivered.id}")
    assert response.status_code == 200
    page = response.text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(" in page
    assert "Mallory &lt;script&gt;1&lt;/script&gt;" in page
    text = "Hello,\n\nplease find invoice INV-0001 attached.\n.\nA line with a dot above.\n"
    assert f"<pre>{text}</pre>" in page
    assert f'<iframe sandbox title="HTML body" src="/messages/{delivered.id}/html"></iframe>' in page
    assert f'href="/messages/{delivered.id}/attachments/0">INV-0001.pdf</a>' in page
    assert f'href="/messages/{delivered.id}/raw"' in page
    assert delivered.message_id is not None
    assert delivered.message_id.replace("<", "&lt;").replace(">", "&gt;") in page


def test_html_part_is_served_sandboxed(client: httpx.Client, delivered: StoredMessage) -> None:
    response = client.get(f"/messages/{delivered.id}/html")
    assert response.status_code == 200
    assert response.text == "<p>Hello,</p><p>please find <b>INV-0001</b> attached.</p>\n"
    csp = response.headers["content-security-policy"]
    assert "sandbox" in csp and "default-src 'none'" in csp and "script-src" not in csp


def test_raw_and_attachment_downloads(client: httpx.Client, delivered: StoredMessage) -> None:
    raw = client.get(f"/messages/{delivered.id}/raw")
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "message/rfc822"
    assert raw.content == delivered.raw

    attachment = client.get(f"/messages/{delivered.id}/attachments/0")
    assert attachment.status_code == 200
    assert attachment.content == PDF_BYTES
    assert attachment.headers["content-type"] == "application/pdf"
    assert attachment.headers["content-disposition"].startswith('attachment; filename="INV-0001.pdf"')
    assert attachment.headers["x-content-type-options"] == "nosniff"


def test_not_found(client: httpx.Client, delivered: StoredMessage) -> None:
    assert client.get("/messages/nope").status_code == 404
    assert client.get("/messages/..%2F..%2Fetc%2Fpasswd/raw").status_code == 404
    assert client.get(f"/messages/{delivered.id}/attachments/1").status_code == 404
    assert client.get(f"/messages/{delivered.id}/attachments/-1").status_code == 404
    assert client.get("/api/messages/20250101T000000.000000Z-" + "a" * 32).status_code == 404


def test_delete_all(client: httpx.Client, delivered: StoredMessage, mailbox: DevMailbox) -> None:
    response = client.delete("/api/messages")
    assert response.status_code == 200
    assert response.json() == {"deleted": 1}
    assert client.get("/api/messages").json() == []
    assert mailbox.store.list() == []
    assert "0 messages" in client.get("/").text


def test_inline_cid_image_points_at_the_attachment(mailbox: DevMailbox, client: httpx.Client) -> None:
    message = invoice_message("With logo")
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    html_part.set_content('<img src="cid:logo@invoiceflow"><p>hi</p>', subtype="html")
    html_part.add_related(b"\x89PNG\r\n\x1a\nfake", maintype="image", subtype="png", cid="<logo@invoiceflow>")
    send(mailbox.smtp_port, message)
    [saved] = mailbox.store.list()
    names = [a["filename"] for a in client.get("/api/messages").json()[0]["attachments"]]
    assert "INV-0001.pdf" in names
    index = next(i for i, a in enumerate(saved.attachments()) if a.content_id == "logo@invoiceflow")
    html = client.get(f"/messages/{saved.id}/html").text
    assert f'<img src="/messages/{saved.id}/attachments/{index}"><p>hi</p>' in html
    assert client.get(f"/messages/{saved.id}/attachments/{index}").content == b"\x89PNG\r\n\x1a\nfake"


def test_viewer_stops_with_the_mailbox(tmp_path: Path) -> None:
    with DevMailbox(tmp_path, http_port=0) as mb:
        assert mb.http_port and mb.http_url == f"http://127.0.0.1:{mb.http_port}"
        assert httpx.get(f"{mb.http_url}/api/messages", timeout=10).json() == []
        url, smtp_port = mb.http_url, mb.smtp_port
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=2)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", smtp_port), timeout=2).close()
