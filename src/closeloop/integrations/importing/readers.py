"""Reading CSV and XLSX files into a table of header + numbered rows.

CSV files arrive in whatever encoding the spreadsheet that saved them used: UTF-8 (with or without
a byte-order mark), UTF-16 with a BOM ("Unicode text" from Excel), or GBK / GB18030 (what Chinese
Excel writes by default). The encoding is found from the bytes unless the caller names one; when
no encoding fits, the error names the line and the byte that does not decode.

Row numbers are those a spreadsheet shows: the header is row 1, the first data row is row 2.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from closeloop.integrations.importing.errors import UnreadableFile

#: cell values as read: text from CSV; text, numbers, booleans, dates and times from XLSX
Cell = str | int | float | bool | date | datetime | time | None

_DELIMITERS = (",", "\t", ";", "|")
_XLSX_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the pre-2007 .xls format
#: a UTF-8 file with this many well-formed non-ASCII characters before a bad byte is a damaged
#: UTF-8 file, not a GBK one (GBK text fails as UTF-8 within its first few characters)
_UTF8_EVIDENCE = 8


@dataclass(frozen=True, slots=True)
class SourceRow:
    number: int
    cells: tuple[Cell, ...]


@dataclass
class SourceTable:
    """A header and its data rows (blank rows dropped), with how the file was read."""

    name: str
    headers: list[str]
    rows: list[SourceRow]
    format: str  # "csv" | "xlsx" | "memory"
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    notes: list[str] = field(default_factory=list)


def read_table(
    source: Path | bytes,
    *,
    name: str | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
) -> SourceTable:
    """Read a CSV or XLSX file (from a path or its bytes); the format is told by its first bytes."""
    if isinstance(source, Path):
        try:
            data = source.read_bytes()
        except OSError as error:
            raise UnreadableFile(
                f"cannot open {source}: {error.strerror or error}", f"无法打开 {source}：{error.strerror or error}"
            ) from None
        name = name or source.name
    else:
        data = source
    name = name or "upload"
    if data.startswith(_XLSX_MAGIC) or name.lower().endswith((".xlsx", ".xlsm")):
        return read_xlsx(data, name=name, sheet=sheet)
    if data.startswith(_OLE_MAGIC) or name.lower().endswith(".xls"):
        raise UnreadableFile(
            f"{name} is an old-style .xls workbook; save it as .xlsx or CSV and import that",
            f"{name} 是旧版 .xls 工作簿：请另存为 .xlsx 或 CSV 后再导入",
        )
    if sheet is not None:
        raise UnreadableFile(
            f"{name} is a CSV file; --sheet applies to XLSX workbooks only",
            f"{name} 是 CSV 文件；--sheet 只适用于 XLSX 工作簿",
        )
    return read_csv(data, name=name, encoding=encoding)


# --- CSV --------------------------------------------------------------------------------------


def decode(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """Return ``(text, encoding used)``. Without ``encoding``: BOM, else UTF-8, else GB18030."""
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise UnreadableFile(f"unknown encoding '{encoding}'", f"未知的编码“{encoding}”") from None
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError as error:
            raise UnreadableFile(*_decode_error(data, error, encoding)) from None
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8) :].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as error:
            error.start += len(codecs.BOM_UTF8)
            error.end += len(codecs.BOM_UTF8)
            raise UnreadableFile(*_decode_error(data, error, "UTF-8")) from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as error:
            raise UnreadableFile(*_decode_error(data, error, "UTF-16")) from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as utf8_error:
        evidence = sum(1 for char in data[: utf8_error.start].decode("utf-8") if ord(char) > 127)
        if evidence >= _UTF8_EVIDENCE:
            raise UnreadableFile(*_decode_error(data, utf8_error, "UTF-8")) from None
        try:
            return data.decode("gb18030"), "gb18030"
        except UnicodeDecodeError as gbk_error:
            # neither reading gets past the later of the two places (a GBK file's bad byte, not
            # its first Chinese character, where UTF-8 stopped)
            later = gbk_error if gbk_error.start > utf8_error.start else utf8_error
            raise UnreadableFile(*_decode_error(data, later, "UTF-8 or GBK")) from None


def _decode_error(data: bytes, error: UnicodeDecodeError, encoding: str) -> tuple[str, str]:
    """Where the bytes stop being ``encoding`` text, in English and in Chinese."""
    line = data.count(b"\n", 0, error.start) + 1
    line_start = data.rfind(b"\n", 0, error.start) + 1
    if line == 1 and data.startswith(codecs.BOM_UTF8):
        line_start = len(codecs.BOM_UTF8)  # the mark is no byte of the line an editor shows
    column = error.start - line_start + 1
    bad = data[error.start : min(error.end, error.start + 4)].hex(" ").upper()
    return (
        f"cannot decode the file as {encoding}: line {line}, byte {column} of that line "
        f"(byte offset {error.start}: 0x{bad}). Save it as UTF-8, or name its encoding (--encoding gbk)",
        f"无法按 {encoding.replace(' or ', ' 或 ')} 解码该文件：第 {line} 行第 {column} 个字节"
        f"（文件的第 {error.start + 1} 个字节：0x{bad}）。请另存为 UTF-8，或指明其编码（如 GBK）",
    )


def sniff_delimiter(text: str) -> str:
    """The delimiter the header line uses most (outside quotes): comma, tab, semicolon or bar."""
    header = _first_record_text(text)
    counts = dict.fromkeys(_DELIMITERS, 0)
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _first_record_text(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line
    return ""


def read_csv(data: bytes, *, name: str, encoding: str | None = None) -> SourceTable:
    text, used = decode(data, encoding)
    delimiter = sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    headers: list[str] | None = None
    rows: list[SourceRow] = []
    try:
        for number, record in enumerate(reader, start=1):
            if headers is None:
                if not any(cell.strip() for cell in record):
                    continue
                headers = _headers(record, name)
                continue
            if not any(cell.strip() for cell in record):
                continue
            rows.append(SourceRow(number, tuple(record)))
    except csv.Error as error:
        raise UnreadableFile(
            f"{name}: line {reader.line_num}: {error}", f"{name}：第 {reader.line_num} 行不是有效的 CSV（{error}）"
        ) from None
    if headers is None:
        raise UnreadableFile(f"{name} is empty: no header row", f"{name} 是空文件：没有表头行")
    return SourceTable(name, headers, rows, "csv", encoding=used, delimiter=delimiter)


def _headers(record: Sequence[Any], name: str) -> list[str]:
    """Trimmed header texts; blanks become ``column N`` and repeats get `` (2)``, `` (3)``…"""
    headers: list[str] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(record, start=1):
        text = "" if raw is None else str(raw).replace("\ufeff", "").strip()
        text = text or f"column {index}"
        if text in seen:
            seen[text] += 1
            text = f"{text} ({seen[text]})"
        else:
            seen[text] = 1
        headers.append(text)
    while headers and headers[-1].startswith("column ") and len(headers) > 1:
        headers.pop()
    if not headers:
        raise UnreadableFile(f"{name} has no header row", f"{name} 没有表头行")
    return headers


# --- XLSX -------------------------------------------------------------------------------------


def read_xlsx(data: bytes, *, name: str, sheet: str | None = None) -> SourceTable:
    """Read one sheet (the named one, else the first) of a workbook in openpyxl's streaming mode."""
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
        raise UnreadableFile(
            f"{name} is not a readable XLSX workbook ({error})", f"{name} 不是可读取的 XLSX 工作簿（{error}）"
        ) from None
    try:
        if sheet is not None:
            if sheet not in workbook.sheetnames:
                sheets = ", ".join(workbook.sheetnames)
                raise UnreadableFile(
                    f"{name} has no sheet '{sheet}' (sheets: {sheets})",
                    f"{name} 中没有名为“{sheet}”的工作表（现有：{sheets}）",
                )
            worksheet = workbook[sheet]
        else:
            worksheet = workbook.worksheets[0]
        headers: list[str] | None = None
        rows: list[SourceRow] = []
        for number, values in enumerate(worksheet.iter_rows(values_only=True), start=1):
            cells = tuple(_xlsx_cell(value) for value in values)
            if not any(cell is not None and cell != "" for cell in cells):
                continue
            if headers is None:
                headers = _headers(cells, name)
                continue
            rows.append(SourceRow(number, cells))
        title = worksheet.title
    finally:
        workbook.close()
    if headers is None:
        raise UnreadableFile(
            f"sheet '{title}' of {name} is empty: no header row", f"{name} 的工作表“{title}”是空的：没有表头行"
        )
    return SourceTable(name, headers, rows, "xlsx", sheet=title)


def _xlsx_cell(value: Any) -> Cell:
    if value is None or isinstance(value, str | bool | int | float | datetime | date | time):
        cell: Cell = value
        return cell
    return str(value)
