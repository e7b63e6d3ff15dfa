"""Run the official EN 16931 rules on a document: compiled XSLT (Schematron → SVRL) via saxonche.

The rule files ship in ``documents/einvoice/rules`` (versions and licences in its README.md). A
stylesheet is compiled on first use and kept for the life of the process (compiling the CEN UBL rules
takes about half a second, running them a few milliseconds). saxonche is a native library: callers
in a long-lived process go through ``ValidationPool`` so that a crash in it costs a child process,
not the worker; ``failed_asserts`` itself is what the child runs.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RULES_DIR = Path(__file__).resolve().parent / "rules"
RULE_SETS: dict[str, Path] = {
    "cen-ubl": RULES_DIR / "cen" / "EN16931-UBL-validation.xslt",
    "cen-cii": RULES_DIR / "cen" / "EN16931-CII-validation.xslt",
    "xrechnung-ubl": RULES_DIR / "xrechnung" / "XRechnung-UBL-validation.xsl",
    "xrechnung-cii": RULES_DIR / "xrechnung" / "XRechnung-CII-validation.xsl",
    "peppol-ubl": RULES_DIR / "peppol" / "PEPPOL-EN16931-UBL.xsl",
}
#: What the README and the API report as the versions in force.
RULE_VERSIONS: dict[str, str] = {
    "cen-ubl": "CEN EN 16931 validation artefacts 1.3.16 (UBL)",
    "cen-cii": "CEN EN 16931 validation artefacts 1.3.16 (CII)",
    "xrechnung-ubl": "KoSIT XRechnung Schematron 2.5.0 (XRechnung 3.0, UBL)",
    "xrechnung-cii": "KoSIT XRechnung Schematron 2.5.0 (XRechnung 3.0, CII)",
    "peppol-ubl": "OpenPEPPOL Peppol BIS Billing 3.0.19 (May 2025) PEPPOL-EN16931-UBL",
}
SVRL = "{http://purl.oclc.org/dsdl/svrl}"
ERROR_FLAGS = ("fatal", "error")


@dataclass(frozen=True)
class Violation:
    """One failed assert: the rule id (BR-..., PEPPOL-..., BR-DE-...), its flag and its text."""

    id: str
    flag: str
    text: str
    location: str
    rule_set: str

    @property
    def is_error(self) -> bool:
        return self.flag in ERROR_FLAGS

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class _Compiled:
    """saxonche processor and compiled stylesheets of this process (one processor per process)."""

    def __init__(self) -> None:
        from saxonche import PySaxonProcessor

        self._lock = threading.Lock()
        self.processor = PySaxonProcessor(license=False)
        self.sheets: dict[str, Any] = {}

    def sheet(self, name: str) -> Any:
        with self._lock:
            if name not in self.sheets:
                path = RULE_SETS[name]
                compiler = self.processor.new_xslt30_processor()
                self.sheets[name] = compiler.compile_stylesheet(stylesheet_file=str(path))
            return self.sheets[name]


_compiled: _Compiled | None = None
_init_lock = threading.Lock()


def _state() -> _Compiled:
    global _compiled
    with _init_lock:
        if _compiled is None:
            _compiled = _Compiled()
        return _compiled


def failed_asserts(xml: bytes, rule_sets: tuple[str, ...] | list[str]) -> list[dict[str, str]]:
    """Every failed assert of ``rule_sets`` on ``xml``, errors and warnings alike, as plain dicts (so
    the result crosses a process boundary as is)."""
    state = _state()
    out: list[dict[str, str]] = []
    with state._lock:
        node = state.processor.parse_xml(xml_text=xml.decode("utf-8"))
    for name in rule_sets:
        sheet = state.sheet(name)
        with state._lock:  # one transformation at a time per compiled sheet and processor
            svrl = sheet.transform_to_string(xdm_node=node)
        for fa in ET.fromstring(svrl.encode()).iter(SVRL + "failed-assert"):
            text = " ".join((fa.findtext(SVRL + "text") or "").split())
            out.append(
                Violation(
                    id=fa.get("id") or "?",
                    flag=fa.get("flag") or "error",
                    text=text,
                    location=fa.get("location") or "",
                    rule_set=name,
                ).to_dict()
            )
    return out


def warm(rule_sets: tuple[str, ...] = tuple(RULE_SETS)) -> int:
    """Compile the given rule sets now (a child process does this once); returns how many."""
    state = _state()
    for name in rule_sets:
        state.sheet(name)
    return len(rule_sets)


def errors_of(violations: list[dict[str, str]]) -> list[dict[str, str]]:
    return [v for v in violations if v.get("flag") in ERROR_FLAGS]
