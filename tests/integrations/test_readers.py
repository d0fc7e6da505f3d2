"""Reading CSV files in the encodings spreadsheets save, and XLSX workbooks."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from openpyxl import Workbook

from closeloop.integrations.importing.errors import UnreadableFile
from closeloop.integrations.importing.readers import read_table

TEXT = '客户名称,行业,员工数\n北京协和医院,医疗,5000\n华为,通信,"1,000"\n'


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + TEXT.encode("utf-8"), "utf-8-sig"),
        (TEXT.encode("gbk"), "gb18030"),
        (TEXT.encode("utf-16"), "utf-16"),
        (TEXT.replace("\n", "\r\n").encode("gbk"), "gb18030"),
    ],
    ids=["utf-8", "utf-8-bom", "gbk", "utf-16-bom", "gbk-crlf"],
)
def test_csv_is_read_in_every_encoding_excel_saves(data: bytes, encoding: str) -> None:
    table = read_table(data, name="客户.csv")

    assert table.encoding == encoding
    assert table.headers == ["客户名称", "行业", "员工数"]
    assert [(row.number, row.cells) for row in table.rows] == [
        (2, ("北京协和医院", "医疗", "5000")),
        (3, ("华为", "通信", "1,000")),
    ]


def test_an_undecodable_byte_is_named_by_line_and_byte() -> None:
    data = "name,industry\n北京协和医院,医疗\n上海瑞金医院,医疗\n".encode() + b"Acme,\xff\xfe\n"

    with pytest.raises(UnreadableFile) as raised:
        read_table(data, name="broken.csv")

    assert str(raised.value) == (
        "cannot decode the file as UTF-8: line 4, byte 6 of that line (byte offset 71: 0xFF). "
        "Save it as UTF-8, or name its encoding (--encoding gbk)"
    )


def test_a_gbk_file_with_a_bad_byte_is_named_where_gbk_stops_too() -> None:
    """UTF-8 stops at a GBK file's first Chinese character; the byte to name is where the GBK
    reading stops as well (line 3, 0xFF), in Chinese with the byte counted from 1."""
    data = "name\n中国医院\nAcme ".encode("gbk") + b"\xff\n"

    with pytest.raises(UnreadableFile) as raised:
        read_table(data, name="g.csv")

    assert "cannot decode the file as UTF-8 or GBK: line 3, byte 6 of that line" in str(raised.value)
    assert "0xFF" in str(raised.value)
    chinese = raised.value.extra["message_zh"]
    assert "UTF-8 或 GBK" in chinese
    assert "第 3 行第 6 个字节" in chinese
    position = data.index(b"\xff") + 1
    assert f"文件的第 {position} 个字节：0xFF" in chinese


def test_a_bad_byte_after_a_byte_order_mark_is_named_as_an_editor_shows_it() -> None:
    data = b"\xef\xbb\xbfname\xff\nAcme\n"

    with pytest.raises(UnreadableFile) as raised:
        read_table(data, name="bom.csv")

    assert "line 1, byte 5 of that line (byte offset 7: 0xFF)" in str(raised.value)


def test_a_named_encoding_is_used_strictly() -> None:
    data = TEXT.encode("gbk")

    assert read_table(data, name="a.csv", encoding="gbk").rows[0].cells[0] == "北京协和医院"
    with pytest.raises(
        UnreadableFile, match=r"cannot decode the file as utf-8: line 1, byte 1 of that line \(byte offset 0: 0xBF\)"
    ):
        read_table(data, name="a.csv", encoding="utf-8")
    with pytest.raises(UnreadableFile, match="unknown encoding 'klingon'"):
        read_table(data, name="a.csv", encoding="klingon")


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_the_delimiter_is_found_from_the_header(delimiter: str) -> None:
    data = f"name{delimiter}city\nAcme, Inc.{delimiter}Hangzhou\n".encode()

    table = read_table(data, name="a.csv")

    assert table.delimiter == delimiter
    assert table.rows[0].cells == ("Acme, Inc.", "Hangzhou")


def test_blank_rows_are_skipped_but_keep_their_numbers_and_headers_are_made_unique() -> None:
    data = b"name,name,,\n\nAcme,Other,,\n,,,\nBeta,B2,,\n"

    table = read_table(data, name="a.csv")

    assert table.headers == ["name", "name (2)"]
    assert [(row.number, row.cells[0]) for row in table.rows] == [(3, "Acme"), (5, "Beta")]


def test_an_empty_file_has_no_header() -> None:
    with pytest.raises(UnreadableFile, match=r"empty\.csv is empty: no header row"):
        read_table(b"\n\n", name="empty.csv")


def _workbook(rows: list[list[object]], title: str = "客户") -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = title
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_xlsx_keeps_typed_cells_and_row_numbers() -> None:
    data = _workbook(
        [
            ["客户名称", "员工数", "成立日期"],
            ["北京协和医院", 5000, datetime(1921, 9, 16)],  # noqa: DTZ001 - spreadsheets hold naive date-times
            [None, None, None],
            ["华为", 1000.0, "1987/9/15"],
        ]
    )

    table = read_table(data, name="客户.xlsx")

    assert table.format == "xlsx"
    assert table.sheet == "客户"
    assert table.headers == ["客户名称", "员工数", "成立日期"]
    assert [(row.number, row.cells) for row in table.rows] == [
        (2, ("北京协和医院", 5000, datetime(1921, 9, 16))),  # noqa: DTZ001
        (4, ("华为", 1000, "1987/9/15")),
    ]


def test_xlsx_sheet_is_chosen_by_name() -> None:
    workbook = Workbook()
    workbook.active.append(["ignored"])
    workbook.create_sheet("leads").append(["姓名"])
    workbook["leads"].append(["王伟"])
    buffer = io.BytesIO()
    workbook.save(buffer)

    table = read_table(buffer.getvalue(), name="book.xlsx", sheet="leads")

    assert table.headers == ["姓名"]
    assert table.rows[0].cells == ("王伟",)
    with pytest.raises(UnreadableFile, match=r"book\.xlsx has no sheet 'nope' \(sheets: Sheet, leads\)"):
        read_table(buffer.getvalue(), name="book.xlsx", sheet="nope")


def test_broken_and_old_workbooks_are_refused_with_a_reason() -> None:
    with pytest.raises(UnreadableFile, match=r"a\.xlsx is not a readable XLSX workbook"):
        read_table(b"PK\x03\x04 not really a zip", name="a.xlsx")
    with pytest.raises(UnreadableFile, match=r"old-style \.xls workbook; save it as \.xlsx or CSV"):
        read_table(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", name="a.xls")
