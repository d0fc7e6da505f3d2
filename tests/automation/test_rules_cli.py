"""``closeloop rules parse``: the structured rule as JSON and the read-back, or exit 2 naming the span."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from closeloop.cli.main import app


def test_a_rule_prints_as_json_with_its_read_back() -> None:
    result = CliRunner().invoke(app, ["rules", "parse", "新线索24小时内未分配,提醒销售运营"])
    assert result.exit_code == 0, result.output
    text, _, readback = result.stdout.rpartition("}")
    assert json.loads(text + "}") == {
        "trigger": {"kind": "schedule", "frequency": "hourly", "time": None, "inferred": True},
        "conditions": [{"field_or_metric": "lead.unassigned_duration", "op": ">=", "value": 24, "unit": "hour"}],
        "actions": [{"type": "notify", "target": "role:sales_ops", "params": {}}],
    }
    assert readback.strip() == "每小时检查一次（按条件推断），如果线索未分配时长不少于24小时：通知销售运营。"


def test_the_language_can_be_chosen() -> None:
    result = CliRunner().invoke(app, ["rules", "parse", "新线索24小时内未分配,提醒销售运营", "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert "notify sales ops." in result.stdout


def test_what_is_not_understood_exits_2_with_its_position() -> None:
    result = CliRunner().invoke(app, ["rules", "parse", "When a deal is big, tell the boss."])
    assert result.exit_code == 2
    assert "15–18 'big'" in result.stderr
    assert "25–33 'the boss'" in result.stderr
    assert result.stdout == ""

    result = CliRunner().invoke(app, ["rules", "parse", "超过一段时间没跟进的商机，提醒一下销售。"])
    assert result.exit_code == 2
    assert "2–6 '一段时间'" in result.stderr
    assert "没有给出具体时长" in result.stderr

    assert CliRunner().invoke(app, ["rules", "parse", "x", "--lang", "fr"]).exit_code == 2
