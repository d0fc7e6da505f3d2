"""``closeloop rules parse "<sentence>"``: a rule in plain Chinese or English → the structured rule."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from closeloop.automation.language import parse_rule
from closeloop.cli.common import console, errors

rules_app = typer.Typer(help="Automation rules written in plain language.", no_args_is_help=True)


@rules_app.command("parse")
def parse(
    sentence: Annotated[str, typer.Argument(help="The rule, e.g. 新线索24小时内未分配，提醒销售运营")],
    lang: Annotated[str | None, typer.Option("--lang", help="zh or en (detected when left out)")] = None,
) -> None:
    """Print the structured rule as JSON and its read-back in plain words; exit 2 and show the parts
    not understood (with their character positions) otherwise. Nothing is saved."""
    if lang is not None and lang not in ("zh", "en"):
        errors.print("[bold red]error:[/] --lang must be zh or en", highlight=False)
        raise typer.Exit(2)
    parsed = parse_rule(sentence, lang)
    if parsed.rule is None:
        zh = parsed.lang == "zh"
        errors.print(
            "[bold red]error:[/] " + ("没有理解以下部分：" if zh else "not understood:"),
            highlight=False,
            soft_wrap=True,
        )
        for problem in parsed.problems:
            message = problem.message_zh if zh else problem.message_en
            errors.print(
                f"  {problem.start}–{problem.end} {problem.fragment!r}: {message}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
            errors.print(f"    {sentence}", highlight=False, markup=False, soft_wrap=True)
            errors.print(
                "    " + _marker(sentence, problem.start, problem.end), highlight=False, markup=False, soft_wrap=True
            )
        raise typer.Exit(2)
    console.print_json(json.dumps(parsed.rule, ensure_ascii=False))
    console.print(parsed.readback, highlight=False, markup=False, soft_wrap=True)


def _marker(sentence: str, start: int, end: int) -> str:
    """Carets under the span (wide characters take two columns)."""

    def width(text: str) -> int:
        return sum(2 if "\u2e80" <= ch <= "\uffef" else 1 for ch in text)

    return " " * width(sentence[:start]) + "^" * max(1, width(sentence[start:end]))


@rules_app.command("run-once")
def run_once() -> None:
    """Do once what the worker does continuously: process waiting outbox events through the rules,
    run the actions whose undo window ended and send the webhooks that are due (retries included).
    For operators without a running worker, and for tests."""
    from closeloop.automation import engine, webhooks
    from closeloop.cli.common import database

    db = database()
    events = engine.drain(db)
    actions = engine.run_due_actions(db)
    sent = webhooks.deliver_due(db)
    console.print(f"events: {events}  actions: {actions}  webhook attempts: {sent}", highlight=False)
