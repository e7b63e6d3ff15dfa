"""Template folders and jinja2 environments: the user's folder first, then the built-in one; filters;
environments cached per folder set (compiled templates are reused across renders)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import (
    BaseLoader,
    ChainableUndefined,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    Undefined,
    pass_eval_context,
    select_autoescape,
)
from jinja2.loaders import split_template_path
from markupsafe import Markup, escape

if TYPE_CHECKING:
    pass


from documents.view import RenderError

BUILTIN_TEMPLATE_DIR: Path = Path(__file__).resolve().parent / "templates"


# --- template folders and jinja2 environments ----------------------------------------------------------


def template_folders(template_dir: Path | str | None = None) -> tuple[Path, ...]:
    """The folders templates and resources come from, in lookup order: the user's, then the built-in."""
    builtin = BUILTIN_TEMPLATE_DIR
    if template_dir is None or str(template_dir) == "":
        return (builtin,)
    user = Path(template_dir).expanduser().resolve()
    if not user.is_dir():
        raise RenderError(f"template folder {str(template_dir)!r} does not exist or is not a directory")
    return (builtin,) if user == builtin else (user, builtin)


@pass_eval_context
def _nl2br(eval_ctx, value: object) -> str:  # type: ignore[no-untyped-def]
    """Multi-line text → lines joined by ``<br/>`` (escaped first in autoescaping templates)."""
    text = "" if value is None or isinstance(value, Undefined) else str(value)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n").split("\n")
    if eval_ctx.autoescape:
        return Markup("<br/>").join(escape(line) for line in lines)
    return "\n".join(lines)


def _days(value: object) -> str:
    """``1`` → "1 day", ``14`` → "14 days" (sign dropped: callers say "ago" or "in")."""
    try:
        n = abs(int(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return ""
    return f"{n} day" if n == 1 else f"{n} days"


def _is_link(value: object) -> bool:
    """Only http(s) URLs become clickable links; anything else (``javascript:``) stays plain text."""
    return isinstance(value, str) and value.lower().startswith(("https://", "http://"))


class _FolderLoader(BaseLoader):
    """Looks a template up in ``folders`` in order (like ``ChoiceLoader``) and keeps a compiled template
    valid only while it would still be the one loaded: its file's text is unchanged and no earlier folder
    has gained a file of that name. Environments are cached for the life of the process, and this keeps a
    user's template edits and new overrides taking effect at once, as they did when every render built
    its own environment. Text, not mtime: two quick edits can share an mtime; reading a few KB is cheap."""

    def __init__(self, folders: Sequence[Path]) -> None:
        self._loaders = [FileSystemLoader(str(folder)) for folder in folders]

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool]]:
        for index, loader in enumerate(self._loaders):
            try:
                source, filename, _ = loader.get_source(environment, template)
            except TemplateNotFound:
                continue
            earlier = [
                Path(searchpath, *split_template_path(template)) for searchpath in self._searchpaths(index)
            ]

            def uptodate(
                filename: str | None = filename, source: str = source, earlier: list[Path] = earlier
            ) -> bool:
                try:
                    shadowed = any(path.is_file() for path in earlier)
                    return not shadowed and Path(str(filename)).read_bytes().decode("utf-8") == source
                except (OSError, UnicodeDecodeError):
                    return False

            return source, filename, uptodate
        raise TemplateNotFound(template)

    def _searchpaths(self, before: int) -> list[str]:
        return [path for loader in self._loaders[:before] for path in loader.searchpath]

    def list_templates(self) -> list[str]:
        return sorted({name for loader in self._loaders for name in loader.list_templates()})


@lru_cache(maxsize=32)
def _environment(folders: tuple[Path, ...], *, strict: bool) -> Environment:
    """One environment per (folders, strictness) for the life of the process: compiling ``invoice.html``
    took longer than laying a one-page invoice out. Thread-safe: jinja2 locks its template cache."""
    env = Environment(
        loader=_FolderLoader(folders),
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "xml"), default_for_string=False, default=False
        ),
        undefined=StrictUndefined if strict else ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=True,  # asks _FolderLoader's uptodate on every get_template
    )
    env.filters["nl2br"] = _nl2br
    env.filters["days"] = _days
    env.tests["link"] = _is_link
    return env


def _render(env: Environment, name: str, **context: object) -> str:
    try:
        return env.get_template(name).render(**context)
    except TemplateError as exc:
        where = f" (line {exc.lineno})" if getattr(exc, "lineno", None) else ""
        raise RenderError(f"template {name}{where}: {type(exc).__name__}: {exc}") from exc
