"""``closeloop compliance check``: check texts against the rule packs, one JSON object per input line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from closeloop.assistant.compliance.matcher import default_checker
from closeloop.assistant.compliance.packs import Lang
from closeloop.cli.common import fail

compliance_app = typer.Typer(
    help="The compliance checker (regulated wording in what reps write).", no_args_is_help=True
)

_FIELDS = ("start", "end", "span", "level", "category", "citation", "rewrite", "explanation")


def _lines(data: bytes) -> list[str | dict[str, Any]]:
    """The input's lines — split at line feeds only (a JSON string may hold U+2028 or a form feed),
    a UTF-8 byte-order mark and each line's CR dropped; a line that is not UTF-8 becomes
    ``{"error": …}`` naming the byte, in its place."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    raw = data.split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()  # the newline that ends the last line
    lines: list[str | dict[str, Any]] = []
    for line in raw:
        line = line.removesuffix(b"\r")
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError as error:
            bad = line[error.start : error.start + 1].hex().upper()
            lines.append({"error": f"not UTF-8 text (byte {error.start + 1} of the line: 0x{bad})"})
    return lines


def _inputs(lines: list[str | dict[str, Any]]) -> list[dict[str, Any]]:
    """Each line as ``{"text": …}``; a file whose first line is a JSON object is read as JSONL. A
    JSONL line that cannot be read becomes ``{"error": …}`` in its place: the other lines are still
    checked and printed in order."""
    first = next((line for line in lines if isinstance(line, str) and line.strip()), "")
    if not first.lstrip().startswith("{"):
        return [{"text": line} if isinstance(line, str) else line for line in lines]
    inputs: list[dict[str, Any]] = []
    for line in lines:
        if not isinstance(line, str):
            inputs.append(line)
            continue
        if not line.strip():
            inputs.append({"text": ""})
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            inputs.append({"error": f"not a JSON object ({exc})"})
            continue
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            inputs.append({"error": "a JSONL input needs a string field 'text'"})
            continue
        inputs.append(record)
    return inputs


def _lang(value: object) -> Lang | None:
    return "zh" if value == "zh" else "en" if value == "en" else None


@compliance_app.command("check")
def check(
    source: Annotated[str, typer.Argument(help="A text or JSONL file, or '-' for standard input")] = "-",
    lang: Annotated[str | None, typer.Option("--lang", help="zh or en (default: detected per line)")] = None,
) -> None:
    """Print one JSON object per input line, in order, with its ``findings`` (start, end, span, level,
    category, citation, rewrite). JSONL lines may carry ``lang`` and ``lead_time_days``; a line that
    is not UTF-8, or not a JSON object with a ``text``, gets ``{"line": N, "error": …}`` instead, the
    rest are still checked, and the command then exits with 2."""
    if lang not in (None, "zh", "en"):
        raise fail(f"--lang: expected zh or en, not {lang!r}", code=2)
    if source == "-":
        data = sys.stdin.buffer.read()
    else:
        path = Path(source)
        if not path.is_file():
            raise fail(f"{source}: no such file", code=2)
        data = path.read_bytes()
    inputs = _inputs(_lines(data))
    checker = default_checker()
    out = sys.stdout.buffer
    leads = [record.get("lead_time_days") for record in inputs]
    # one batch pass over all lines (the same findings as checking each line alone)
    found = checker.check_many(
        [record.get("text", "") for record in inputs],
        lang=[_lang(lang or record.get("lang")) for record in inputs],
        lead_time_days=[lead if isinstance(lead, int) else None for lead in leads],
    )
    unreadable = 0
    for number, (record, findings) in enumerate(zip(inputs, found, strict=True), start=1):
        result: dict[str, Any] = {"line": number}
        if "error" in record:
            unreadable += 1
            result["error"] = record["error"]
            typer.echo(f"line {number}: {record['error']}", err=True)
        else:
            if "id" in record:
                result["id"] = record["id"]
            result["findings"] = [{key: getattr(finding, key) for key in _FIELDS} for finding in findings]
        out.write(orjson.dumps(result) + b"\n")
    out.flush()
    if unreadable:
        raise typer.Exit(2)
