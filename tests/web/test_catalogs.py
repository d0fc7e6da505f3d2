"""Every text the workspace shows has its Chinese translation (Babel extraction over the templates
and the page modules, compared with the merged zh_CN catalog)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from babel.messages.extract import extract_from_dir, extract_python

from closeloop.web import i18n

WEB = Path(i18n.__file__).parent
METHODS = [("templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
#: texts that are the same in both languages
SAME_IN_BOTH = {"Closeloop", "API", "ID", "CSV", "XLSX", "Email", "SLA"}


#: the modules outside the pages that phrase text from the same catalogues (the problem documents'
#: and the reports' words, the command line's import report)
SHARED = [WEB.parent / "core" / "messages.py", WEB.parent / "cli" / "data_commands.py"]
KEYWORDS = {"_": None, "gettext": None, "N_": None}


def used_texts() -> dict[str, str]:
    """Each message id the workspace uses, with one place it is used."""
    found: dict[str, str] = {}
    extracted: list[tuple[str, Any]] = [
        (filename, message)
        for filename, _lineno, message, _comments, _context in extract_from_dir(
            WEB, METHODS, OPTIONS, keywords=KEYWORDS
        )
    ]
    for path in SHARED:
        with path.open("rb") as handle:
            extracted.extend((path.name, message) for _, _, message, _ in extract_python(handle, KEYWORDS, [], {}))
    for filename, message in extracted:
        texts = message if isinstance(message, tuple) else (message,)
        for text in texts:
            if text:
                found.setdefault(text, filename)
    return found


def test_every_text_of_the_workspace_has_a_chinese_translation() -> None:
    catalog = i18n.catalog("zh_CN")
    translated = {message.id for message in catalog if message.id and message.string}
    missing = sorted(
        f"{where}: {text!r}"
        for text, where in used_texts().items()
        if text not in SAME_IN_BOTH and text not in translated
    )
    assert not missing, "translate these in translations/zh_CN/LC_MESSAGES/*.po:\n" + "\n".join(missing)


def test_the_check_sees_texts_in_templates_and_pages() -> None:
    texts = used_texts()
    assert "Sign in" in texts  # a template
    assert "Unknown username or wrong password." in texts  # a page module
    assert "Unprocessable content" in texts  # the problem documents' words
    assert "row %(row)s" in texts  # the command line's import report


def test_a_text_translated_in_two_areas_is_translated_the_same_way() -> None:
    from babel.messages.pofile import read_po

    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for po_path in sorted((i18n.TRANSLATIONS / "zh_CN" / "LC_MESSAGES").glob("*.po")):
        with po_path.open("rb") as handle:
            for message in read_po(handle, locale="zh_CN"):
                if not message.id or not message.string:
                    continue
                earlier = seen.setdefault(str(message.id), (po_path.name, str(message.string)))
                if earlier[1] != str(message.string):
                    clashes.append(
                        f"{message.id!r}: {earlier[0]} says {earlier[1]!r}, {po_path.name} {message.string!r}"
                    )
    assert not clashes, "one word for one thing (GLOSSARY.md):\n" + "\n".join(clashes)
