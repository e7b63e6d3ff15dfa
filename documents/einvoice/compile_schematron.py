"""Compile a Schematron file to the XSLT that ``documents.einvoice.validation`` runs (maintainers only).

    python -m documents.einvoice.compile_schematron <SchXslt pipeline-for-svrl.xsl> <in.sch> <out.xsl>

SchXslt 2.0's ``pipeline-for-svrl.xsl`` (include, expand, compile) on saxonche, as the Peppol and
KoSIT kits recommend; the output writes SVRL, which ``validation.failed_asserts`` reads.
"""

from __future__ import annotations

import sys


def compile_schematron(pipeline: str, source: str, target: str) -> None:
    from saxonche import PySaxonProcessor

    with PySaxonProcessor(license=False) as proc:
        exe = proc.new_xslt30_processor().compile_stylesheet(stylesheet_file=pipeline)
        out = exe.transform_to_string(source_file=source)
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(out)
        proc.new_xslt30_processor().compile_stylesheet(stylesheet_file=target)  # it must compile


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    compile_schematron(*sys.argv[1:])
