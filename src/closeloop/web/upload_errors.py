"""Upload refusals and parse failures as the reader reads them: in their language, naming the file
and, for a wrong type, the types accepted. The services speak English with stable codes (the API's
problem documents); the pages translate by code here, never showing the service's sentence to a
Chinese reader."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from closeloop.core.errors import DomainError
from closeloop.web.i18n import N_

Gettext = Callable[[str], str]

#: the parser's reasons (``closeloop.assistant.knowledge.parsing``), each with its translation
_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"not a readable PDF(?: file)? \((?P<detail>.*)\)$", re.S), N_("not a readable PDF file (%(detail)s)")),
    (re.compile(r"not a readable DOCX file \((?P<detail>.*)\)$", re.S), N_("not a readable DOCX file (%(detail)s)")),
    (re.compile(r"the file is neither UTF-8 nor GB18030 text$"), N_("the file is neither UTF-8 nor GB18030 text")),
    (re.compile(r"no text found in the file$"), N_("no text was found in the file")),
    (re.compile(r"indexing failed \((?P<detail>.*)\)$", re.S), N_("indexing failed (%(detail)s)")),
)


def reason_text(gettext: Gettext, reason: str) -> str:
    """A parser's reason in the reader's language (the technical detail in brackets kept as is)."""
    for pattern, message in _REASONS:
        match = pattern.match(reason)
        if match is not None:
            return gettext(message) % {"detail": match.groupdict().get("detail", "")}
    return reason


def failure_text(gettext: Gettext, filename: str, stored: str | None) -> str | None:
    """A failed document's stored reason (``name.docx: not a readable DOCX file (…)``), localized."""
    if not stored:
        return None
    reason = stored.removeprefix(f"{filename}: ")
    return gettext("%(file)s: %(reason)s") % {"file": filename, "reason": reason_text(gettext, reason)}


def refusal_text(gettext: Gettext, error: DomainError, filename: str, formats: Iterable[str]) -> str:
    """Why an upload was refused, naming the file (and the accepted types for a wrong type)."""
    code = error.problems[0].code if error.problems else error.code
    accepted = ", ".join(sorted(formats))
    if code == "unsupported_type":
        return gettext("%(file)s cannot be added: this file type is not accepted. Accepted types: %(formats)s.") % {
            "file": filename,
            "formats": accepted,
        }
    if code == "empty":
        return gettext("%(file)s is empty.") % {"file": filename}
    if code == "too_large":
        return gettext("%(file)s is too large.") % {"file": filename}
    if code == "no_text":
        return gettext("%(file)s has no text.") % {"file": filename}
    if code == "no_clauses":
        return gettext(
            "%(file)s has no numbered clauses (such as 第一条, 一、, 1. or Article 1). "
            "A template is compared clause by clause: upload one whose clauses are numbered."
        ) % {"file": filename}
    if code == "duplicate":
        existing = error.extra.get("existing_document", {}).get("filename", "")
        return gettext(
            "%(file)s has the same content as %(existing)s, already in this collection: its passages would "
            "be found twice. Delete that document first to replace it."
        ) % {"file": filename, "existing": existing}
    stated = error.problems[0].message if error.problems else error.message
    reason = stated.removeprefix(f"{filename}: ")
    translated = reason_text(gettext, reason)
    if translated != reason:
        return gettext("%(file)s: %(reason)s") % {"file": filename, "reason": translated}
    return gettext("%(file)s could not be read. Accepted types: %(formats)s.") % {
        "file": filename,
        "formats": accepted,
    }
