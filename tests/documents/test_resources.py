"""What a PDF template may load: files inside the template folders, nothing else, never the network.

Each refusal test has a positive control next to it (the same reference to an allowed file does load), so
a test cannot pass merely because loading is broken altogether.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from documents.rendering import (
    BUILTIN_TEMPLATE_DIR,
    BUNDLED_FONT_DIR,
    _pisa_link_callback,
    render_invoice_pdf,
    safe_link_callback,
)
from tests.documents.conftest import CountingServer
from tests.documents.samples import NUMBER, document, image_colours, image_count, png, text

BLUE = (0, 0, 255)
RED = (255, 0, 0)


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """A user template folder with a blue logo, and a red secret.png in its parent (outside it)."""
    folder = tmp_path / "templates"
    (folder / "img").mkdir(parents=True)
    (folder / "img" / "logo.png").write_bytes(png(8, 8, BLUE))
    (tmp_path / "secret.png").write_bytes(png(8, 8, RED))
    (tmp_path / "secret.css").write_text(".marker { display: none; }")
    return folder, tmp_path


def override(folder: Path, head: str = "", body: str = "") -> None:
    (folder / "invoice.html").write_text(
        f"<html><head>{head}</head><body>{body}<p class='marker'>MARKER "
        f"{{{{ doc.number }}}}</p></body></html>"
    )


# --- the resolver itself --------------------------------------------------------------------------------


def test_link_callback_allows_files_inside_the_folders_only(folders: tuple[Path, Path]) -> None:
    folder, parent = folders
    resolve = safe_link_callback([folder, BUILTIN_TEMPLATE_DIR])
    logo = str((folder / "img" / "logo.png").resolve())
    assert resolve("img/logo.png") == logo
    assert resolve("./img/../img/logo.png") == logo  # a `..` that stays inside is fine
    assert resolve(logo) == logo  # absolute, but inside
    assert resolve("img/logo.png?v=2#top") == logo
    assert resolve("img%2Flogo.png") == logo

    refused = [
        "../secret.png",
        "img/../../secret.png",
        "%2e%2e/secret.png",
        "..%2fsecret.png",
        str(parent / "secret.png"),
        "/etc/passwd",
        "/etc/hostname",
        "img",  # a directory
        "img/missing.png",
        "",
        "   ",
        "file:///etc/passwd",
        f"file://{parent / 'secret.png'}",
        "http://127.0.0.1/logo.png",
        "https://example.com/logo.png",
        "HTTP://EXAMPLE.COM/logo.png",
        "ftp://example.com/logo.png",
        "data:image/png;base64,iVBORw0KGgo=",
        "//127.0.0.1/logo.png",
        "\\\\server\\share\\logo.png",
        "img/logo.png\x00.txt",
        "fonts/../../secret.png",
        "fonts/../secret.png",
        "fonts/00readme.txt",  # the bundled-font fallback serves .ttf files only
    ]
    for reference in refused:
        assert resolve(reference) is None, reference


def test_link_callback_refuses_symlinks_that_leave_the_folder(folders: tuple[Path, Path]) -> None:
    folder, parent = folders
    try:
        os.symlink(parent / "secret.png", folder / "img" / "innocent.png")
        os.symlink(parent, folder / "up")
    except OSError:
        pytest.skip("no symlinks here")
    resolve = safe_link_callback([folder])
    assert resolve("img/innocent.png") is None
    assert resolve("up/secret.png") is None


def test_user_folder_first_then_builtin_then_bundled_fonts(folders: tuple[Path, Path]) -> None:
    folder, _ = folders
    resolve = safe_link_callback([folder, BUILTIN_TEMPLATE_DIR])
    assert resolve("invoice.html") == str(BUILTIN_TEMPLATE_DIR / "invoice.html")
    override(folder)
    assert resolve("invoice.html") == str((folder / "invoice.html").resolve())
    assert resolve("fonts/Vera.ttf") == str(BUNDLED_FONT_DIR / "Vera.ttf")
    (folder / "fonts").mkdir()
    (folder / "fonts" / "Vera.ttf").write_bytes(b"not really a font")
    assert resolve("fonts/Vera.ttf") == str((folder / "fonts" / "Vera.ttf").resolve())


def test_refusal_is_logged(folders: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    folder, _ = folders
    with caplog.at_level(logging.WARNING, logger="invoiceflow.rendering"):
        assert safe_link_callback([folder])("http://169.254.169.254/latest/meta-data/") is None
    assert "169.254.169.254" in caplog.text and "never fetched" in caplog.text


def test_callback_given_to_xhtml2pdf_never_answers_with_nothing(folders: tuple[Path, Path]) -> None:
    # xhtml2pdf keeps the ORIGINAL reference when link_callback returns a false value, so a refusal must
    # come back as something harmless: a path inside the template folder that does not exist.
    folder, _ = folders
    callback = _pisa_link_callback([folder, BUILTIN_TEMPLATE_DIR])
    for reference in ("http://127.0.0.1/x.png", "../secret.png", "/etc/passwd", ""):
        answer = callback(reference, "/")
        assert answer and Path(answer).parent == folder.resolve() and not Path(answer).exists()
    assert callback("img/logo.png", "/") == str((folder / "img" / "logo.png").resolve())


# --- whole renders --------------------------------------------------------------------------------------


def test_local_image_inside_the_folder_is_embedded(folders: tuple[Path, Path]) -> None:
    folder, _ = folders
    override(folder, body='<img src="img/logo.png" width="40" height="40">')
    pdf = render_invoice_pdf(document(), folder)
    assert image_colours(pdf) == [BLUE]


@pytest.mark.parametrize(
    "reference",
    ["../secret.png", "img/../../secret.png", "{parent}/secret.png", "file://{parent}/secret.png"],
)
def test_image_outside_the_folder_is_not_read(folders: tuple[Path, Path], reference: str) -> None:
    folder, parent = folders
    src = reference.format(parent=parent)
    override(
        folder,
        body=f'<img src="{src}" width="40" height="40"><img src="img/logo.png" width="40" height="40">',
    )
    pdf = render_invoice_pdf(document(), folder)  # no exception: the image is just missing
    assert f"MARKER {NUMBER}" in text(pdf)
    assert image_colours(pdf) == [BLUE]  # the allowed logo only; no red secret


@pytest.mark.parametrize("reference", ["../secret.png", "{parent}/secret.png"])
def test_page_background_outside_the_folder_is_not_read(folders: tuple[Path, Path], reference: str) -> None:
    folder, parent = folders
    override(folder, head="<style>@page { background-image: url('img/logo.png'); }</style>")
    assert image_colours(render_invoice_pdf(document(), folder)) == [BLUE]  # control: inside is drawn
    src = reference.format(parent=parent)
    override(folder, head=f"<style>@page {{ background-image: url('{src}'); }}</style>")
    assert image_colours(render_invoice_pdf(document(), folder)) == []


def test_stylesheet_outside_the_folder_is_not_read(folders: tuple[Path, Path]) -> None:
    folder, parent = folders
    (folder / "hide.css").write_text((parent / "secret.css").read_text())
    # positive control: the same stylesheet inside the folder is applied and hides the marker
    override(folder, head='<link rel="stylesheet" href="hide.css">')
    assert "MARKER" not in text(render_invoice_pdf(document(), folder))
    for head in (
        '<link rel="stylesheet" href="../secret.css">',
        f'<link rel="stylesheet" href="{parent}/secret.css">',
        "<style>@import url(../secret.css);</style>",
    ):
        override(folder, head=head)
        assert "MARKER" in text(render_invoice_pdf(document(), folder)), head


def test_remote_references_are_never_fetched(
    folders: tuple[Path, Path], counting_server: CountingServer
) -> None:
    folder, _ = folders
    base = counting_server.base
    override(
        folder,
        head=(
            f'<link rel="stylesheet" href="{base}/style.css">'
            f"<style>@import url({base}/import.css);"
            f"@font-face {{ font-family: Remote; src: url({base}/font.ttf); }}"
            f"body {{ font-family: Remote, Helvetica; background-image: url({base}/bg.png); }}</style>"
        ),
        body=(
            f'<img src="{base}/logo.png" width="40" height="40">'
            f'<img src="//127.0.0.1:{base.rsplit(":", 1)[1]}/proto-relative.png" width="40" height="40">'
            f'<div style="background-image: url({base}/div.png)">x</div>'
            f'<a href="{base}/link">link</a>'
            f'<pdf:barcode value="1" type="code128" />'
        ),
    )
    pdf = render_invoice_pdf(document(), folder)
    assert f"MARKER {NUMBER}" in text(pdf)
    assert image_count(pdf) == 0
    assert counting_server.requests == []


def test_counting_server_does_count(counting_server: CountingServer) -> None:
    # control for the test above: the server is reachable, so zero requests means nothing was attempted
    from urllib.request import urlopen

    with urlopen(f"{counting_server.base}/probe.png", timeout=5) as response:  # noqa: S310
        assert response.read().startswith(b"\x89PNG")
    assert counting_server.requests == ["/probe.png"]
