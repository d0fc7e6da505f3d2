"""The approval-flow editor as a form (CN-4): a flow's branches, conditions, steps, approvers and CC
as rows of form fields, read back into the definition :func:`closeloop.approvals.flows.check_definition`
checks, and its problems put back next to the field they are about ("第2步：角色不存在").

Field names carry the row's key, not its position: ``b3.name``, ``b3.c1.op``, ``b3.s2.mode``,
``b3.s2.a0.role``, ``b3.cc1.kind``. Rows added in the browser take fresh keys and removed rows just
disappear, so the keys are only an order (ascending) and never need renumbering.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from closeloop.approvals import flows, names
from closeloop.core.errors import FieldProblem
from closeloop.web.i18n import N_

KIND_LABELS = {
    "supervisor": N_("Direct supervisor"),
    "supervisors": N_("Supervisors, several levels up"),
    "role": N_("A role"),
    "users": N_("Named people"),
    "chosen": N_("Chosen by the submitter"),
}
OPERATOR_LABELS = {
    "eq": N_("equals"),
    "ne": N_("is not"),
    "gt": N_("greater than"),
    "gte": N_("at least"),
    "lt": N_("less than"),
    "lte": N_("at most"),
    "in": N_("one of"),
    "contains": N_("contains"),
}
WITHIN_LABELS = {"": N_("Anyone holding it"), "department": N_("In the submitter's department line"),
                 "region": N_("In the submitter's region")}  # fmt: skip
#: the message shown for a problem with each part of the definition
PROBLEM_TEXTS = {
    "name": N_("give the branch a name"),
    "priority": N_("the priority is a whole number"),
    "conditions": N_("the conditions are not readable"),
    "field": N_("no such field"),
    "op": N_("no such operator"),
    "value": N_("give a value (several, separated by commas, for “one of”)"),
    "steps": N_("add 1 to 10 steps"),
    "mode": N_("no such mode"),
    "approvers": N_("add 1 to 20 approvers"),
    "kind": N_("no such approver kind"),
    "levels": N_("levels are a whole number from 1 to 10"),
    "role": N_("no such role"),
    "within": N_("no such range"),
    "user_ids": N_("choose the people"),
    "not_found": N_("a chosen person does not exist"),
    "cc": N_("at most 20 people in CC"),
    "default": N_("add a default branch (one without conditions)"),
    "branches": N_("add 1 to 20 branches"),
    # a value that could never hold for the field's kind
    "not_a_number": N_("the value must be a number"),
    "not_a_date": N_("the value must be a date (YYYY-MM-DD)"),
    "not_an_id": N_("the value must be a record id (a whole number)"),
    "not_ordered": N_("this field is compared with equals, not equal or one of, not greater or less than"),
    "not_text": N_("“contains” is for text fields"),
    "not_a_field": N_("no such field"),
}


@dataclass
class Spec:
    key: int
    kind: str = "supervisor"
    levels: str = "2"
    role: str = "manager"
    within: str = ""
    users: list[int] = field(default_factory=list)

    def value(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"kind": self.kind}
        if self.kind == "supervisors":
            spec["levels"] = int(self.levels) if self.levels.strip().isdecimal() else self.levels
        elif self.kind == "role":
            spec["role"] = self.role
            spec["within"] = self.within or None
        elif self.kind == "users":
            spec["user_ids"] = list(self.users)
        return spec


@dataclass
class Condition:
    key: int
    field: str = ""
    op: str = "gt"
    value: str = ""


@dataclass
class Step:
    key: int
    name: str = ""
    mode: str = "any"
    approvers: list[Spec] = field(default_factory=list)
    #: a built-in step's key (its name shown in the reader's language)
    builtin: str = ""


@dataclass
class Branch:
    key: int
    name: str = ""
    priority: str = "1"
    conditions: list[Condition] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    cc: list[Spec] = field(default_factory=list)
    builtin: str = ""


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_text(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _spec(key: int, raw: Mapping[str, Any]) -> Spec:
    levels = raw.get("levels")
    return Spec(
        key=key,
        kind=str(raw.get("kind") or "supervisor"),
        levels=str(levels) if levels is not None else "2",
        role=str(raw.get("role") or "manager"),
        within=str(raw.get("within") or ""),
        users=[int(i) for i in raw.get("user_ids") or [] if isinstance(i, int)],
    )


def rows_of(definition: Mapping[str, Any], locale: str = "zh_CN") -> list[Branch]:
    """A stored definition as form rows (keys are positions), built-in names in ``locale``."""
    return [
        Branch(
            key=b,
            name=names.shown(str(branch.get("name") or ""), branch.get("key"), locale),
            builtin=str(branch.get("key") or ""),
            priority=str(branch.get("priority", b + 1)),
            conditions=[
                Condition(
                    c,
                    str(condition.get("field") or ""),
                    str(condition.get("op") or "eq"),
                    _text(condition.get("value")),
                )
                for c, condition in enumerate(branch.get("conditions") or [])
            ],
            steps=[
                Step(
                    key=s,
                    name=names.shown(str(step.get("name") or ""), step.get("key"), locale),
                    builtin=str(step.get("key") or ""),
                    mode=str(step.get("mode") or "all"),
                    approvers=[_spec(a, spec) for a, spec in enumerate(step.get("approvers") or [])],
                )
                for s, step in enumerate(branch.get("steps") or [])
            ],
            cc=[_spec(a, spec) for a, spec in enumerate(branch.get("cc") or [])],
        )
        for b, branch in enumerate(definition.get("branches") or [])
    ]


_NAME = re.compile(r"^b(?P<b>\d{1,6})\.(?:(?P<part>c|s|cc)(?P<i>\d{1,6})\.(?:a(?P<a>\d{1,6})\.)?)?(?P<leaf>[a-z_]+)$")


def rows_from_form(items: Iterable[tuple[str, Any]]) -> list[Branch]:
    """The editor's fields read back as rows, each list in the order of its keys."""
    branches: dict[int, Branch] = {}
    conditions: dict[tuple[int, int], Condition] = {}
    steps: dict[tuple[int, int], Step] = {}
    approvers: dict[tuple[int, int, int], Spec] = {}
    ccs: dict[tuple[int, int], Spec] = {}
    for name, raw in items:
        match = _NAME.match(name)
        if match is None:
            continue
        value = str(raw).strip()[:200]
        b, part, leaf = int(match["b"]), match["part"], match["leaf"]
        branch = branches.setdefault(b, Branch(key=b, priority=""))
        if part is None:
            if leaf in ("name", "priority", "builtin"):
                setattr(branch, leaf, value)
            continue
        i = int(match["i"])
        target: Any
        if part == "c":
            target = conditions.setdefault((b, i), Condition(i))
            if leaf in ("field", "op", "value"):
                setattr(target, leaf, value)
            continue
        if part == "s" and match["a"] is None:
            target = steps.setdefault((b, i), Step(i))
            if leaf in ("name", "mode", "builtin"):
                setattr(target, leaf, value)
            continue
        if part == "s":
            steps.setdefault((b, i), Step(i))
            target = approvers.setdefault((b, i, int(match["a"])), Spec(int(match["a"])))
        elif part == "cc" and match["a"] is None:
            target = ccs.setdefault((b, i), Spec(i))
        else:
            continue
        if leaf == "users":
            if value.isdecimal() and len(target.users) < flows.MAX_APPROVERS:
                target.users.append(int(value))
        elif leaf in ("kind", "levels", "role", "within"):
            setattr(target, leaf, value)
    for (b, _), condition in sorted(conditions.items()):
        branches[b].conditions.append(condition)
    for (b, s), step in sorted(steps.items()):
        step.approvers = [spec for (bb, ss, _), spec in sorted(approvers.items()) if (bb, ss) == (b, s)]
        branches[b].steps.append(step)
    for (b, _), spec in sorted(ccs.items()):
        branches[b].cc.append(spec)
    return [branches[b] for b in sorted(branches)]


_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def _value(text: str) -> Any:
    if _NUMBER.match(text):
        try:
            number = Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
            return text
        return int(number) if number == number.to_integral_value() and "." not in text else float(number)
    return text


def definition_of(rows: list[Branch]) -> tuple[dict[str, Any], list[FieldProblem]]:
    """The definition the rows say, and the problem the form itself sees (an empty value); the rest
    — a field the record type does not have, a value of the wrong kind — is for
    :func:`flows.check_definition`, as on the API."""
    problems: list[FieldProblem] = []
    branches = []
    for b, branch in enumerate(rows):
        conditions = []
        for c, row in enumerate(branch.conditions):
            where = f"definition.branches.{b}.conditions.{c}"
            if not row.value:
                problems.append(FieldProblem(f"{where}.value", "give a value", "required"))
            value: Any = (
                [_value(item.strip()) for item in re.split(r"[,，、]", row.value) if item.strip()]
                if row.op == "in"
                else _value(row.value)
            )
            conditions.append({"field": row.field, "op": row.op, "value": value})
        priority: Any = int(branch.priority) if re.fullmatch(r"-?\d{1,6}", branch.priority) else branch.priority
        branches.append(
            {
                **({"key": branch.builtin} if branch.builtin else {}),
                "name": branch.name,
                "priority": priority,
                "conditions": conditions,
                "steps": [
                    {
                        **({"key": step.builtin} if step.builtin else {}),
                        "name": step.name or str(s + 1),
                        "mode": step.mode,
                        "approvers": [spec.value() for spec in step.approvers],
                    }
                    for s, step in enumerate(branch.steps)
                ],
                "cc": [spec.value() for spec in branch.cc],
            }
        )
    return {"branches": branches}, problems


_PATH = re.compile(
    r"^definition\.branches(?:\.(?P<b>\d+)(?:\.(?P<part>conditions|steps|cc)(?:\.(?P<i>\d+))?"
    r"(?:\.approvers(?:\.(?P<a>\d+))?)?)?)?(?:\.(?P<leaf>[a-z_]+))?$"
)


@dataclass(frozen=True)
class Placed:
    """A problem put in its place: the form field it belongs to and its text in the page's language."""

    name: str
    text: str


def place(problems: Iterable[FieldProblem], rows: list[Branch], gettext: Callable[[str], str]) -> list[Placed]:
    """Each problem as the field it names (``b3.s2.a0.role``) and a text saying where it is."""
    placed = []
    for problem in problems:
        match = _PATH.match(problem.field)
        if match is None:
            placed.append(Placed("", problem.message))
            continue
        leaf = match["leaf"] or match["part"] or ("branches" if match["b"] is None else "name")
        if match["leaf"] is None and problem.field.endswith(".approvers"):
            leaf = "approvers"
        topic = leaf
        if problem.code == "not_found" or problem.code in PROBLEM_TEXTS:
            topic = problem.code
        elif leaf == "branches" and "default" in problem.message:
            topic = "default"
        text = gettext(PROBLEM_TEXTS[topic]) if topic in PROBLEM_TEXTS else problem.message
        if match["b"] is None or int(match["b"]) >= len(rows):
            placed.append(Placed("branches", text))
            continue
        b = int(match["b"])
        branch = rows[b]
        leaf = "users" if leaf == "user_ids" else leaf
        where = gettext("Branch %(n)s") % {"n": b + 1}
        name = f"b{branch.key}.{leaf}"
        part, i, a = match["part"], match["i"], match["a"]
        index = int(i) if i is not None else -1
        if part == "conditions" and 0 <= index < len(branch.conditions):
            where = gettext("Condition %(n)s") % {"n": index + 1}
            name = f"b{branch.key}.c{branch.conditions[index].key}.{leaf}"
        elif part == "steps" and 0 <= index < len(branch.steps):
            step = branch.steps[index]
            where = gettext("Step %(n)s") % {"n": index + 1}
            name = f"b{branch.key}.s{step.key}.{leaf}"
            if a is not None and int(a) < len(step.approvers):
                name = f"b{branch.key}.s{step.key}.a{step.approvers[int(a)].key}.{leaf}"
        elif part == "cc" and 0 <= index < len(branch.cc):
            where = gettext("CC %(n)s") % {"n": index + 1}
            name = f"b{branch.key}.cc{branch.cc[index].key}.{leaf}"
        placed.append(Placed(name, gettext("%(where)s: %(problem)s") % {"where": where, "problem": text}))
    return placed
