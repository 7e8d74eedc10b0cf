"""What the OCR processors (``pdf.transcribe``, ``pdf.markdown``, ``image.ocr``) share:
the languages parameter and the ``jobtui doctor`` check for Tesseract.

PyMuPDF runs Tesseract through MuPDF's own copy of the library; what it needs from the
machine is the trained data of each language (``tesseract-ocr-deu`` ...), found
through ``TESSDATA_PREFIX`` or the ``tesseract`` program. The check looks for both.
"""

from __future__ import annotations

import shutil

from jobtui.engine.checks import FAIL, OK, Check, CheckContext, run_command

DEFAULT_LANGUAGES = "deu+eng"
LANGUAGES_PATTERN = r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$"  # tesseract's "deu+eng" form


def parse_langs(output: str) -> list[str]:
    """Languages from ``tesseract --list-langs`` (after its "List of available..." line)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for i, ln in enumerate(lines):
        if ln.lower().startswith("list of available languages"):
            return lines[i + 1 :]
    return lines


def _package(lang: str) -> str:
    return "tesseract-ocr-" + lang.lower().replace("_", "-")


async def tesseract_check(ctx: CheckContext) -> list[Check]:
    """Tesseract on PATH and every language OCR jobs ask for: the operator's
    ``languages`` option (``jobtui doctor --languages``), else ``deu+eng``."""
    languages = str(ctx.option("languages", DEFAULT_LANGUAGES))
    binary = str(ctx.option("tesseract", "tesseract"))
    wanted = [lang for lang in languages.split("+") if lang]
    path = shutil.which(binary)
    if path is None:
        return [
            Check(
                "tesseract",
                FAIL,
                f"{binary} not found on PATH (OCR of scanned pages and images)",
                "apt-get install tesseract-ocr " + " ".join(_package(x) for x in wanted),
            )
        ]
    code, out = await run_command([path, "--list-langs"])
    if code != 0:
        return [
            Check(
                "tesseract",
                FAIL,
                f"{path} --list-langs failed: {out.strip()[:200]}",
                "reinstall tesseract-ocr; check TESSDATA_PREFIX",
            )
        ]
    have = parse_langs(out)
    missing = [lang for lang in wanted if lang not in have]
    if missing:
        names = ", ".join(f"'{m}'" for m in missing)
        return [
            Check(
                "tesseract",
                FAIL,
                f"language{'s' if len(missing) > 1 else ''} {names} missing "
                f"(installed: {', '.join(have) or 'none'})",
                "apt-get install "
                + " ".join(_package(m) for m in missing)
                + " (or put <lang>.traineddata into TESSDATA_PREFIX)",
            )
        ]
    _, version = await run_command([path, "--version"])
    first = version.splitlines()[0].strip() if version.strip() else "tesseract"
    return [Check("tesseract", OK, f"{first}; languages {', '.join(wanted)} present")]
