"""Exports (CRM-4): any record type's rows that the actor may see, filtered as a list is, to CSV or
XLSX — through the one serializer, so masked fields are absent from the file, not empty.

Spreadsheet formula injection is neutralized: a text cell that starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return gets a leading single quote, so Excel shows it as text instead of
evaluating it. Numbers, dates and booleans are written as themselves (in XLSX, as typed cells).
CSV files are UTF-8 with a byte-order mark, which Excel needs to open Chinese text correctly.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from typing import IO, Any

import orjson
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.errors import NotFound
from closeloop.crm import customfields, records
from closeloop.crm.records import RecordType
from closeloop.governance.permissions import require


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
BATCH = 500
#: characters XLSX (XML 1.0) cannot hold
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def neutralize(text: str) -> str:
    """``text`` made safe to open in a spreadsheet: a would-be formula becomes literal text."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def exportable(plural: str) -> RecordType[Any]:
    """The record type called ``plural`` (``accounts``…); *not found* for anything else."""
    for record_type in records.all_record_types():
        if record_type.plural == plural:
            return record_type
    raise NotFound("record type", plural)


def _start(session: Session, actor: Actor, record_type: RecordType[Any], params: Mapping[str, str]) -> None:
    """Check the permissions and the filters before any byte is written."""
    require(actor, "exports:run")
    records.build_query(session, actor, record_type, params)


def check_export(session: Session, actor: Actor, record_type: RecordType[Any], params: Mapping[str, str]) -> None:
    """Raise now (403, 422) what an export of ``record_type`` with ``params`` would raise later."""
    _start(session, actor, record_type, params)


def serialized_rows(
    session: Session, actor: Actor, record_type: RecordType[Any], params: Mapping[str, str]
) -> Iterator[dict[str, Any]]:
    """The visible, filtered records, serialized (masks applied) in batches; custom fields as
    ``custom.<name>`` columns (a multi-choice value as its choices joined by ``; ``, as imports read it)."""
    _start(session, actor, record_type, params)
    for row in records.read_all(session, actor, record_type, params, batch=BATCH):
        for name, value in (row.pop("custom", None) or {}).items():
            row[customfields.PREFIX + name] = "; ".join(value) if isinstance(value, list) else value
        yield row


def _columns(
    session: Session, actor: Actor, record_type: RecordType[Any], first: Mapping[str, Any] | None
) -> list[str]:
    columns = [name for name in records.visible_fields(session, actor, record_type) if name != "custom"]
    if record_type.customizable:
        columns.extend(customfields.PREFIX + d.name for d in customfields.readable(session, actor, record_type.noun))
    if first is not None:
        columns.extend(name for name in first if name not in columns)
    return columns


def _text(value: Any) -> str:
    if isinstance(value, list | dict):
        return orjson.dumps(value, default=records.jsonable).decode()
    return str(value)


def csv_cell(value: Any) -> str:
    """A value as CSV text; text that could be a formula is neutralized."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return neutralize(str(value.value))
    if isinstance(value, str):
        return neutralize(value)
    if isinstance(value, Decimal | int | float | date):
        return str(records.jsonable(value))
    return neutralize(_text(value))


def xlsx_cell(value: Any) -> Any:
    """A value as an XLSX cell: numbers, dates and booleans typed; text neutralized."""
    if value is None or isinstance(value, bool | int | float | Decimal):
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None)  # Excel has no time zones; UTC, as the API
    if isinstance(value, date):
        return value
    text = str(value.value) if isinstance(value, Enum) else value if isinstance(value, str) else _text(value)
    return _ILLEGAL_XML.sub("", neutralize(text))


def _peek(rows: Iterator[dict[str, Any]]) -> tuple[dict[str, Any] | None, Iterable[dict[str, Any]]]:
    first = next(rows, None)
    if first is None:
        return None, ()
    return first, _chain(first, rows)


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


def iter_csv(
    session: Session,
    actor: Actor,
    record_type: RecordType[Any],
    params: Mapping[str, str],
    *,
    counter: list[int] | None = None,
) -> Iterator[bytes]:
    """The CSV file in chunks: BOM, header, then one line per record (``counter[0]`` counts them)."""
    first, rows = _peek(serialized_rows(session, actor, record_type, params))
    columns = _columns(session, actor, record_type, first)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    yield b"\xef\xbb\xbf" + buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    count = 0
    for count, row in enumerate(rows, start=1):
        writer.writerow([csv_cell(row.get(name)) for name in columns])
        if count % BATCH == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()
    if counter is not None:
        counter[0] = count


def write_xlsx(
    session: Session, actor: Actor, record_type: RecordType[Any], params: Mapping[str, str], out: IO[bytes]
) -> int:
    """Write the XLSX workbook (one sheet named after the records) to ``out``; returns the row count."""
    from openpyxl import Workbook

    first, rows = _peek(serialized_rows(session, actor, record_type, params))
    columns = _columns(session, actor, record_type, first)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(record_type.plural[:31])
    sheet.append(columns)
    count = 0
    for row in rows:
        sheet.append([xlsx_cell(row.get(name)) for name in columns])
        count += 1
    workbook.save(out)
    return count


def export_records(
    session: Session,
    actor: Actor,
    *,
    entity: str,
    params: Mapping[str, str],
    fmt: ExportFormat,
    out: IO[bytes],
) -> int:
    """Export ``entity`` (a plural such as ``accounts``) to ``out``; returns the number of records."""
    record_type = exportable(entity)
    if fmt is ExportFormat.XLSX:
        return write_xlsx(session, actor, record_type, params, out)
    counter = [0]
    for chunk in iter_csv(session, actor, record_type, params, counter=counter):
        out.write(chunk)
    return counter[0]


def export_file_name(entity: str, fmt: ExportFormat, today: date) -> str:
    return f"{entity}-{today.isoformat()}.{fmt.value}"


__all__ = [
    "ExportFormat",
    "check_export",
    "csv_cell",
    "export_records",
    "exportable",
    "iter_csv",
    "neutralize",
    "write_xlsx",
    "xlsx_cell",
]


def table_csv(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> bytes:
    """A small table as a CSV file (BOM, header, rows), cells neutralized like record exports."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(name)) for name in columns])
    return b"\xef\xbb\xbf" + buffer.getvalue().encode()


def table_xlsx(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], *, sheet_name: str) -> bytes:
    """A small table as an XLSX workbook with one sheet."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_name[:31])
    sheet.append(list(columns))
    for row in rows:
        sheet.append([xlsx_cell(row.get(name)) for name in columns])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
