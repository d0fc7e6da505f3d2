"""``closeloop compliance check``: one JSON object per input line, in order, from text or JSONL."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from closeloop.cli.main import app


def _run(*args: str, stdin: str | None = None) -> tuple[int, list[dict[str, object]]]:
    result = CliRunner().invoke(app, ["compliance", "check", *args], input=stdin)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, lines


def test_text_lines_in_order_blank_lines_included() -> None:
    code, out = _run("-", stdin="全网最低价，仅此一次。\n\n最近天气转凉，注意保暖。\nThe #1 CRM in China.\n")
    assert code == 0
    assert [line["line"] for line in out] == [1, 2, 3, 4]
    assert [len(line["findings"]) for line in out] == [2, 0, 0, 1]  # type: ignore[arg-type]
    first = out[0]["findings"][0]  # type: ignore[index]
    assert set(first) >= {"start", "end", "span", "level", "category", "citation", "rewrite"}
    assert first["span"] == "全网最低价"


def test_jsonl_with_lang_and_lead_time(tmp_path: Path) -> None:
    source = tmp_path / "drafts.jsonl"
    rows = [
        {"id": "a", "text": "我保证后天送到。", "lead_time_days": 10},
        {"id": "b", "text": "我保证后天送到。", "lead_time_days": 1},
        {"id": "c", "text": "Guaranteed returns of 9% a year."},
    ]
    source.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n", encoding="utf-8")
    code, out = _run(str(source))
    assert code == 0
    assert [line["id"] for line in out] == ["a", "b", "c"]
    assert [[f["category"] for f in line["findings"]] for line in out] == [  # type: ignore[attr-defined]
        ["overpromise"],
        [],
        ["investment_guarantee"],
    ]
    code, out = _run("--lang", "zh", str(source))
    assert out[2]["findings"] == []


def test_an_unreadable_line_is_named_in_its_place_and_the_rest_still_checked(tmp_path: Path) -> None:
    """One object per input line, in order, even when a line cannot be read: that line's object
    carries the error instead of findings, the others are checked, and the exit code says so."""
    source = tmp_path / "bad.jsonl"
    source.write_text('{"text": "全网最低价"}\n{"body": "no text"}\n{"bad json\n{"text": "ok"}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["compliance", "check", str(source)])
    assert result.exit_code == 2
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["line"] for line in out] == [1, 2, 3, 4]
    assert [line["findings"][0]["span"] for line in out[:1]] == ["全网最低价"]
    assert "string field 'text'" in out[1]["error"]
    assert "not a JSON object" in out[2]["error"]
    assert out[3]["findings"] == []
    assert "line 2" in result.stderr
    assert "line 3" in result.stderr
    assert CliRunner().invoke(app, ["compliance", "check", "--lang", "fr", "-"], input="x").exit_code == 2


def test_bytes_that_are_not_utf8_are_named_in_their_line(tmp_path: Path) -> None:
    """A line that is not UTF-8 gets an error naming its byte — no traceback — and the other lines
    (a byte-order mark, CRLF and a JSON string holding U+2028 included) are read as sent."""
    source = tmp_path / "mixed.jsonl"
    record = json.dumps({"text": "您好\u2028全国最好"}, ensure_ascii=False).encode()
    source.write_bytes(b"\xef\xbb\xbf" + record + b"\r\n" + '{"text": "全国最好\xff"}'.encode() + b"\xff\n")
    result = CliRunner().invoke(app, ["compliance", "check", str(source)])
    assert result.exit_code == 2
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["line"] for line in out] == [1, 2]
    assert out[0]["findings"][0]["span"] == "全国最好"
    assert out[0]["findings"][0]["start"] == 3
    assert "not UTF-8 text" in out[1]["error"]
    assert "0xFF" in out[1]["error"]
    assert "Traceback" not in result.output

    plain = CliRunner().invoke(
        app, ["compliance", "check", "-"], input=b"\xef\xbb\xbf\xe5\x85\xa8\xe5\x9b\xbd\xe6\x9c\x80\xe5\xa5\xbd\n\xff\n"
    )
    assert plain.exit_code == 2
    lines = [json.loads(line) for line in plain.stdout.splitlines()]
    assert lines[0]["findings"][0]["start"] == 0  # the mark is not a character of the text
    assert "not UTF-8" in lines[1]["error"]


def test_version_detail_says_how_the_checker_runs() -> None:
    """For the operator: which plain path and which prefilter scan this installation uses."""
    from closeloop.assistant.compliance.matcher import plain_path_implementation
    from closeloop.assistant.compliance.prefilter import engine_in_use

    plain = CliRunner().invoke(app, ["version"])
    assert plain.exit_code == 0
    assert "compliance" not in plain.stdout
    result = CliRunner().invoke(app, ["version", "--detail"])
    assert result.exit_code == 0
    assert f"compliance plain path: {plain_path_implementation()}" in result.stdout
    assert f"compliance prefilter scan: {engine_in_use()}" in result.stdout
