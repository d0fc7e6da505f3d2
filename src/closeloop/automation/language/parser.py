"""From tokens to a structured rule: trigger, conditions, actions.

The parser works in passes over the token list (each pass folds a pattern of token kinds into one
richer token), then reads each clause:

1. quantities: number [+] unit / currency / %  →  ``qty``
2. deadlines and summaries: "due in" qty, qty "后到期", "最近" qty "次" "沟通摘要"  →  ``due`` / ``summary``
3. bounds: [comparison] qty [以上 / 以内]  →  ``bound`` (operator still open when none was written)
4. clauses (split at 且 / 并 / , / and): a clause with an action word yields actions, every clause
   yields conditions (metric ↔ nearest bound, categorical values, stages) and trigger parts
5. the trigger: a schedule, an event, a stage or field change — or, when the sentence only
   describes a state, a periodic check (``inferred: true``)

Whatever is left unexplained (an unknown word, a vague word, a number that measures nothing, a
measure with no threshold) becomes a :class:`ParseProblem` with its character span.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from closeloop.automation.language.lexer import Token, tokenize
from closeloop.automation.language.lexicon import DURATION_METRICS, METRICS

TIME_UNITS = ("minute", "hour", "day", "business_day", "week", "month")
STRONG_ACTIONS = ("require_approval", "escalate", "assign", "webhook", "create_task", "push_summary")


@dataclass(frozen=True, slots=True)
class ParseProblem:
    """A part of the text the parser did not understand (``start``/``end`` are character offsets)."""

    start: int
    end: int
    fragment: str
    message_en: str
    message_zh: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "fragment": self.fragment,
            "message_en": self.message_en,
            "message_zh": self.message_zh,
        }


@dataclass(slots=True)
class _Qty:
    value: int | float
    unit: str | None
    currency: str | None
    magnitude: bool
    op: str | None = None  # from "30+"


@dataclass(slots=True)
class _State:
    text: str
    lang: str
    problems: list[ParseProblem] = field(default_factory=list)
    #: spans of unknown and vague words: what else goes wrong in their clause follows from them
    primary: list[tuple[int, int]] = field(default_factory=list)
    muted: bool = False

    def problem(self, start: int, end: int, en: str, zh: str) -> None:
        if self.muted:
            return
        self.problems.append(ParseProblem(start, end, self.text[start:end], en, zh))

    def problem_at(self, token: Token, en: str, zh: str) -> None:
        self.problem(token.start, token.end, en, zh)


_VAGUE_EXAMPLES = {
    "threshold": (
        "write a number, e.g. 'more than 14 days' or 'over 1,000,000'",
        "请写明数值，例如“超过14天”“超过100万”",
    ),
    "recipient": (
        "name a person or role, e.g. 'the owner's manager' or 'the regional director'",
        "请写明人员或角色，例如“负责人的主管”“区域总监”",
    ),
    "due": ("give a deadline, e.g. 'due in 3 days'", "请写明期限，例如“3天内完成”"),
}


def detect_language(text: str) -> str:
    return "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in text) else "en"


# --- pass 1: quantities ----------------------------------------------------------------------
def _fold_quantities(tokens: list[Token]) -> list[Token]:
    out: list[Token] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.kind == "percent_of" and i + 1 < len(tokens) and tokens[i + 1].kind == "num":
            number = tokens[i + 1]
            qty = _Qty(number.value, "percent", None, False)
            out.append(Token("qty", qty, token.start, number.end, ""))
            i += 2
            continue
        if token.kind == "unit1":
            out.append(Token("qty", _Qty(1, token.value, None, False), token.start, token.end, token.text))
            i += 1
            continue
        if token.kind != "num":
            out.append(token)
            i += 1
            continue
        qty = _Qty(token.value, None, token.attrs.get("currency"), bool(token.attrs.get("magnitude")))
        end = token.end
        j = i + 1
        while j < len(tokens):
            nxt = tokens[j]
            if nxt.kind == "plus" and qty.op is None:
                qty.op = ">="
            elif nxt.kind == "currency" and qty.currency is None and qty.unit is None:
                qty.currency = nxt.value
            elif nxt.kind == "unit" and qty.unit is None:
                qty.unit = nxt.value
            else:
                break
            end = nxt.end
            j += 1
        if qty.unit == "year":
            qty.unit, qty.value = "month", qty.value * 12
        out.append(Token("qty", qty, token.start, end, ""))
        i = j
    return out


# --- pass 2: deadlines and summaries ---------------------------------------------------------
def _fold_action_quantities(tokens: list[Token]) -> list[Token]:
    out: list[Token] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        after = tokens[i + 2] if i + 2 < len(tokens) else None
        if token.kind == "due_marker" and nxt is not None and nxt.kind == "qty" and _is_time(nxt.value):
            out.append(Token("due", nxt.value, token.start, nxt.end, ""))
            i += 2
            continue
        if token.kind == "qty" and _is_time(token.value) and nxt is not None and nxt.kind == "due_marker":
            out.append(Token("due", token.value, token.start, nxt.end, ""))
            i += 2
            continue
        if (
            token.kind == "last"
            and nxt is not None
            and nxt.kind == "qty"
            and nxt.value is not None
            and nxt.value.unit in (None, "count")
            and after is not None
            and after.kind == "summary"
        ):
            out.append(Token("summary", {"last_n": nxt.value.value}, token.start, after.end, ""))
            i += 3
            continue
        if token.kind == "summary":
            # "summary of the last 5 interactions" / "summary, last 5"
            j = i + 1 + (nxt is not None and nxt.kind == "last")
            count = tokens[j] if j < len(tokens) else None
            if (
                count is not None
                and count.kind == "qty"
                and count.value is not None
                and count.value.unit
                in (
                    None,
                    "count",
                )
            ):
                out.append(Token("summary", {"last_n": count.value.value}, token.start, count.end, ""))
                i = j + 1
                continue
        if token.kind == "summary" and not isinstance(token.value, dict):
            token = Token("summary", {"scope": "communication_history"}, token.start, token.end, token.text)
        out.append(token)
        i += 1
    return out


def _is_time(qty: _Qty | None) -> bool:
    return qty is not None and qty.unit in TIME_UNITS


# --- pass 3: bounds --------------------------------------------------------------------------
def _fold_bounds(tokens: list[Token]) -> list[Token]:
    out: list[Token] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        is_pre = token.kind in ("cmp", "within") and token.attrs.get("position", "pre") == "pre"
        if is_pre and i + 1 < len(tokens) and tokens[i + 1].kind == "qty":
            qty = tokens[i + 1].value
            op = "within" if token.kind == "within" else token.value
            end = tokens[i + 1].end
            i += 2
            if i < len(tokens) and tokens[i].kind == "unit" and qty is not None and qty.unit is None:
                qty.unit = tokens[i].value
                end = tokens[i].end
                i += 1
            if i < len(tokens) and tokens[i].kind == "cmp" and tokens[i].attrs.get("position") == "post":
                op, end = tokens[i].value, tokens[i].end  # 达到80分以上: the closing word decides
                i += 1
            out.append(Token("bound", {"op": op, "qty": qty}, token.start, end, ""))
            continue
        if token.kind == "qty":
            op = token.value.op if token.value is not None else None
            end = token.end
            if i + 1 < len(tokens) and tokens[i + 1].kind in ("cmp", "within"):
                follower = tokens[i + 1]
                if follower.kind == "within":
                    op, end, i = "within", follower.end, i + 1
                elif follower.attrs.get("position") == "post":
                    op, end, i = follower.value, follower.end, i + 1
            out.append(Token("bound", {"op": op, "qty": token.value}, token.start, end, ""))
            i += 1
            continue
        out.append(token)
        i += 1
    return out


def _split_clauses(tokens: list[Token]) -> list[list[Token]]:
    clauses: list[list[Token]] = [[]]
    for token in tokens:
        if token.kind == "sep":
            if clauses[-1]:
                clauses.append([])
        else:
            clauses[-1].append(token)
    return [clause for clause in clauses if clause]


ACTION_KINDS = {"verb", "weak_verb", "task", "task_kind", "summary", "url", "title"}
MODIFIER_KINDS = {"target", "conj", "due", "due_today", "purpose", "content"}
CONDITION_KINDS = {"metric", "bound", "value", "stage", "event", "schedule", "clock", "window", "letter"}


@dataclass(slots=True)
class _Rule:
    schedule: dict[str, Any] = field(default_factory=dict)
    clock: str | None = None
    daypart: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    conditions: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)
    teams: list[str] = field(default_factory=list)
    terminal_stages: list[str] = field(default_factory=list)
    approval_on_quote: bool = False


def parse_tokens(text: str, lang: str) -> tuple[dict[str, Any] | None, list[ParseProblem]]:
    state = _State(text, lang)
    raw = tokenize(text)
    for token in raw:
        if token.kind == "unknown":
            state.problem_at(token, "I do not understand this part", "无法理解这部分")
        elif token.kind == "vague":
            en, zh = token.value
            example_en, example_zh = _VAGUE_EXAMPLES.get(token.attrs.get("role", ""), ("", ""))
            state.problem_at(token, f"Too vague: {en}; {example_en}", f"表述不明确：{zh}，{example_zh}")
    primary = bool(state.problems)
    tokens = [_placeholder(t) for t in raw if t.kind not in ("filler", "unknown")]
    tokens = _fold_bounds(_fold_action_quantities(_fold_quantities(tokens)))
    rule = _Rule()
    clauses = _split_clauses(tokens)
    if not clauses:
        if not state.problems:
            state.problem(0, len(text), "There is no rule here", "这里没有规则内容")
        return None, _sorted(state.problems)
    # clauses that only name recipients or a deadline belong to the action before them
    merged: list[list[Token]] = []
    for clause in clauses:
        kinds = {t.kind for t in clause}
        modifier_only = kinds <= MODIFIER_KINDS and kinds & {"target", "due", "due_today", "purpose", "content"}
        if modifier_only and merged and any(t.kind in ACTION_KINDS for t in merged[-1]):
            merged[-1].extend(clause)
        else:
            merged.append(clause)
    for token in raw:
        if token.kind in ("unknown", "vague"):
            state.primary.append((token.start, token.end))
    for clause in merged:
        begin, end = clause[0].start, clause[-1].end
        state.muted = any(begin <= start and stop <= end for start, stop in state.primary) or any(
            start <= begin < stop for start, stop in state.primary
        )
        _read_clause(clause, rule, state)
        state.muted = False
    for condition in rule.conditions:
        _finish_condition(condition, rule)
    trigger = _trigger(rule, state, quiet=primary)
    if not rule.actions and not state.problems:
        state.problem(
            0,
            len(text),
            "I found no action: say what should happen (notify, create a task, ...)",
            "没有找到动作：请写明要做什么（提醒、创建任务……）",
        )
    _normalise_targets(rule, trigger)
    if state.problems or trigger is None:
        return None, _sorted(state.problems)
    conditions = [_public_condition(c) for c in rule.conditions]
    return {"trigger": trigger, "conditions": conditions, "actions": rule.actions}, []


def _placeholder(token: Token) -> Token:
    """A vague word keeps its place (so "超过一段时间" still reads as a threshold) but carries no value."""
    if token.kind != "vague":
        return token
    role = token.attrs.get("role")
    if role == "recipient":
        return Token("target", None, token.start, token.end, token.text)
    if role == "due":
        return Token("due", None, token.start, token.end, token.text)
    return Token("qty", None, token.start, token.end, token.text)


def _sorted(problems: list[ParseProblem]) -> list[ParseProblem]:
    seen: set[tuple[int, int]] = set()
    out = []
    for problem in sorted(problems, key=lambda p: (p.start, p.end)):
        if (problem.start, problem.end) not in seen:
            seen.add((problem.start, problem.end))
            out.append(problem)
    return out


# --- clauses ---------------------------------------------------------------------------------
def _read_clause(clause: list[Token], rule: _Rule, state: _State) -> None:
    used: set[int] = set()
    for index, token in enumerate(clause):
        if token.kind == "entity":
            rule.entities.append(token.value)
            used.add(index)
        elif token.kind == "schedule":
            for key, value in token.value.items():
                rule.schedule.setdefault(key, value)
            used.add(index)
        elif token.kind == "clock":
            rule.clock = token.value
            used.add(index)
        elif token.kind == "daypart":
            rule.daypart = token.value
            used.add(index)
        elif token.kind == "event":
            rule.events.append(dict(token.value))
            used.add(index)
        elif token.kind == "target" and token.value is not None and token.value.startswith("team:"):
            rule.teams.append(token.value.removeprefix("team:"))
    _read_changes(clause, rule, used)
    if any(t.kind in ACTION_KINDS for t in clause) or (any(t.kind == "verb" for t in clause)):
        _read_actions(clause, rule, state, used)
    _read_conditions(clause, rule, state, used)
    for index, token in enumerate(clause):
        if index in used or token.kind in ("conj", "equals", "change_from", "streak", "last"):
            continue
        if token.kind in ("cmp", "within", "plus", "unit", "currency", "due_marker", "change_to", "daypart"):
            state.problem_at(
                token,
                "This comparison or unit is not attached to any number or measure",
                "这个比较词或单位没有对应的数字或指标",
            )
        elif token.kind in ("target", "due", "due_today", "purpose", "content"):
            state.problem_at(token, "I cannot tell which action this belongs to", "看不出这部分属于哪个动作")
        else:
            state.problem_at(token, "I cannot tell how this part fits into the rule", "看不出这部分在规则中的作用")


def _read_changes(clause: list[Token], rule: _Rule, used: set[int]) -> None:
    """Stage changes (阶段变为谈判 / moves to Closed Lost) and field changes (等级从B类调整为A类 /
    tier changes from B to A)."""
    for index, token in enumerate(clause):
        if token.kind != "change_to" or index in used:
            continue
        values: list[int] = []
        from_after: int | None = None
        for j in range(index + 1, len(clause)):
            kind = clause[j].kind
            if kind in ("stage", "value", "letter"):
                values.append(j)
            elif kind == "change_from" and not values:
                from_after = j
            elif kind not in ("entity", "metric", "equals", "conj", "change_to"):
                break
        if not values:
            continue
        target_index = values[1] if from_after is not None and len(values) >= 2 else values[0]
        target = clause[target_index]
        used.update({index, target_index})
        if target.kind == "stage":
            rule.events.append({"event": "opportunity_stage_changed", "to_stage": target.value})
            for j, other in enumerate(clause):
                if other.kind == "metric" and other.value == "opportunity.stage" and j < index:
                    used.add(j)
            continue
        field_name, to_value = _categorical(target, clause, index)
        event: dict[str, Any] = {"event": "field_changed", "field": field_name}
        if from_after is not None and len(values) >= 2:
            event["from"] = _categorical(clause[values[0]], clause, index)[1]
            used.update({from_after, values[0]})
        else:
            from_index = _previous_index(clause, index, {"change_from"})
            if from_index is not None:
                value_index = _next_index(clause, from_index, {"value", "letter"})
                if value_index is not None and value_index < index:
                    event["from"] = _categorical(clause[value_index], clause, from_index)[1]
                    used.update({from_index, value_index})
        event["to"] = to_value
        for j, other in enumerate(clause):
            if other.kind == "metric" and other.value == field_name and j < index:
                used.add(j)
        rule.events.append(event)


def _categorical(token: Token, clause: list[Token], index: int) -> tuple[str, Any]:
    if token.kind == "value":
        field_name, value = token.value
        return str(field_name), value
    # a bare letter (等级为A, tier A): the field is the categorical metric before it
    metric_index = _previous_index(clause, index + 1, {"metric"})
    field_name = clause[metric_index].value if metric_index is not None else "account.tier"
    return str(field_name), token.text.upper()


def _next_index(clause: list[Token], index: int, kinds: set[str]) -> int | None:
    for j in range(index + 1, len(clause)):
        if clause[j].kind in kinds:
            return j
        if clause[j].kind not in ("entity", "metric", "change_from", "equals", "conj"):
            return None
    return None


def _previous_index(clause: list[Token], index: int, kinds: set[str]) -> int | None:
    for j in range(index - 1, -1, -1):
        if clause[j].kind in kinds:
            return j
    return None


def _read_conditions(clause: list[Token], rule: _Rule, state: _State, used: set[int]) -> None:
    streak_marker = any(t.kind == "streak" for t in clause)
    clause_entity = next((t.value for t in clause if t.kind == "entity"), None)
    metrics = [i for i, t in enumerate(clause) if t.kind == "metric" and i not in used]
    bounds = [i for i, t in enumerate(clause) if t.kind == "bound" and i not in used]
    stages = [i for i, t in enumerate(clause) if t.kind == "stage" and i not in used]
    made: list[dict[str, Any]] = []
    # categorical values (A类客户, 医疗行业, 重点客户, 等级为A)
    for index, token in enumerate(clause):
        if index in used:
            continue
        if token.kind == "value":
            field_name, value = token.value
            made.append(
                {"field_or_metric": field_name, "op": "==", "value": value, "unit": None, "_entity": clause_entity}
            )
            used.add(index)
            for m in metrics:
                if clause[m].value == field_name:
                    used.add(m)
        elif token.kind == "letter":
            metric_index = _previous_index(clause, index, {"metric"})
            if metric_index is not None and METRICS[clause[metric_index].value].categorical:
                made.append(
                    {
                        "field_or_metric": clause[metric_index].value,
                        "op": "==",
                        "value": token.text.upper(),
                        "unit": None,
                        "_entity": clause_entity,
                    }
                )
                used.update({index, metric_index})
    # pipeline stages named without a change: a state (在谈判阶段停留) or, for won / lost, the event
    for index in stages:
        stage = clause[index].value
        made.append(
            {"field_or_metric": "opportunity.stage", "op": "==", "value": stage, "unit": None, "_token": clause[index]}
        )
        used.add(index)
        for m in metrics:
            if clause[m].value == "opportunity.stage":
                used.add(m)
    # measures with their thresholds, nearest first
    pairs: list[tuple[int, int]] = []
    free_bounds = list(bounds)
    for m in metrics:
        if m in used or METRICS[clause[m].value].categorical:
            continue
        if not free_bounds:
            continue
        fitting = [b for b in free_bounds if _fits(clause[m].value, clause[b].value["qty"])] or free_bounds
        nearest = min(fitting, key=lambda b: (abs(b - m), b < m))
        pairs.append((m, nearest))
        free_bounds.remove(nearest)
    for m, b in pairs:
        condition = _measure(clause[m].value, clause[b], streak_marker, state)
        used.update({m, b})
        if condition is None:
            continue
        condition["_entity"] = clause_entity
        made.append(condition)
        used.update({m, b})
    # a number with no measure: money → the record's amount, a duration beside a stage → time in stage
    for b in free_bounds:
        qty: _Qty | None = clause[b].value["qty"]
        if qty is None:
            used.add(b)
            continue
        if qty.currency or (qty.unit is None and (qty.magnitude or qty.value >= 1000)):
            condition = _measure("amount", clause[b], streak_marker, state)
        elif _is_time(qty) and stages:
            condition = _measure("stage_duration", clause[b], streak_marker, state)
        else:
            state.problem_at(clause[b], "I cannot tell what this number measures", "看不出这个数字衡量的是什么")
            continue
        if condition is not None:
            condition["_entity"] = clause_entity
            made.append(condition)
        used.add(b)
    # the same measure said twice (工单打开超过48小时还没关闭) needs one threshold
    for m in metrics:
        if m in used:
            continue
        name = clause[m].value
        if any(c["field_or_metric"] == name for c in made + rule.conditions):
            used.add(m)
        elif METRICS[name].categorical:
            state.problem_at(clause[m], "Which value should this field have?", "这个字段应该等于什么值？")
            used.add(m)
        else:
            state.problem_at(
                clause[m],
                "This measure has no threshold: give a number (e.g. more than 14 days)",
                "这个指标没有阈值：请给出数字（例如超过14天）",
            )
            used.add(m)
    window = next((i for i, t in enumerate(clause) if t.kind == "window"), None)
    if window is not None:
        target = next((c for c in made if c["field_or_metric"] not in ("opportunity.stage",)), None)
        if target is not None:
            target["window"] = clause[window].value
            used.add(window)
    if any(c["field_or_metric"] == "stage_duration" for c in made + rule.conditions):
        for condition in made:
            condition.pop("_token", None)
    rule.conditions.extend(made)
    for index, token in enumerate(clause):
        if token.kind in ("streak", "last", "equals"):
            used.add(index)


def _fits(metric: str, qty: _Qty | None) -> bool:
    """Whether a quantity can be the threshold of a metric (a duration for a duration, money for an amount)."""
    if qty is None:
        return True
    info = METRICS[metric]
    if info.streakable:
        return qty.unit in (None, "count") or (qty.unit == "month" and metric == "quota_missed")
    if metric in DURATION_METRICS:
        return qty.unit in TIME_UNITS
    if metric in ("amount", "account.annual_purchase"):
        return qty.unit is None and (qty.currency is not None or qty.magnitude or qty.value >= 100)
    return qty.unit not in TIME_UNITS


def _measure(metric: str, bound: Token, streak_marker: bool, state: _State) -> dict[str, Any] | None:
    info = METRICS[metric]
    op: str | None = bound.value["op"]
    qty: _Qty | None = bound.value["qty"]
    if qty is None:  # a vague threshold, already reported
        return None
    unit = qty.unit
    if qty.currency:
        unit = qty.currency
    if info.streakable:
        if unit in (None, "count") or (unit == "month" and metric == "quota_missed"):
            return {"field_or_metric": metric, "op": "streak", "value": qty.value, "unit": unit or info.default_unit}
        state.problem_at(bound, "A streak is counted in times (e.g. 3 in a row)", "连续次数请用“次”（例如连续3次）")
        return None
    is_duration = metric in DURATION_METRICS
    if is_duration and unit not in TIME_UNITS:
        state.problem_at(
            bound, "This needs a duration (e.g. 14 days, 48 hours)", "这里需要一个时长（例如14天、48小时）"
        )
        return None
    if not is_duration and unit in TIME_UNITS:
        state.problem_at(bound, "A duration does not fit this measure", "这个指标不能用时长来比较")
        return None
    if unit is None:
        unit = info.default_unit
    if metric == "amount" and unit not in ("CNY", "USD"):
        if unit in ("percent", "count"):
            state.problem_at(bound, "An amount needs a sum of money", "金额需要是一个钱数")
            return None
        unit = "CNY"
    if op == "within":
        op = ">=" if info.negated else "<="
    elif op is None:
        op = ">=" if info.negated else "<=" if is_duration else "=="
    if streak_marker and metric == "quota_missed":
        op = "streak"
    return {"field_or_metric": metric, "op": op, "value": qty.value, "unit": unit}


def _finish_condition(condition: dict[str, Any], rule: _Rule) -> None:
    entity = condition.pop("_entity", None) or _subject_entity(rule, record_only=True)
    name = condition["field_or_metric"]
    if name == "amount":
        condition["field_or_metric"] = f"{entity or 'opportunity'}.amount"
    elif name == "region":
        condition["field_or_metric"] = "lead.region" if entity == "lead" else "account.region"


def _public_condition(condition: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in condition.items() if not key.startswith("_")}


# --- actions ---------------------------------------------------------------------------------
def _read_actions(clause: list[Token], rule: _Rule, state: _State, used: set[int]) -> None:
    kinds: list[str] = []
    notify = False
    weak: Token | None = None
    approval_kind: str | None = None
    for index, token in enumerate(clause):
        if token.kind == "verb":
            used.add(index)
            if token.value == "notify":
                notify = True
            elif token.value not in kinds:
                kinds.append(token.value)
            if token.attrs.get("approval_kind"):
                approval_kind = token.attrs["approval_kind"]
        elif token.kind == "weak_verb":
            used.add(index)
            weak = weak or token
        elif token.kind in ("task", "task_kind") and "create_task" not in kinds:
            nouned = token.kind == "task" or token.attrs.get("task") or any(t.kind == "task" for t in clause)
            if nouned or weak is not None:
                kinds.append("create_task")
        elif token.kind == "summary" and "push_summary" not in kinds:
            kinds.append("push_summary")
        elif token.kind == "url" and "webhook" not in kinds:
            kinds.append("webhook")
    if not kinds and notify:
        kinds = ["notify"]
    if not kinds:
        if weak is not None:
            state.problem_at(weak, "What should be created or sent?", "要创建或发送什么？")
        return
    targets: list[str] = []
    url: str | None = None
    params: dict[str, Any] = {}
    title: str | None = None
    for index, token in enumerate(clause):
        kind = token.kind
        if kind == "target":
            targets.append(token.value)  # None for a vague recipient (already reported)
        elif kind == "url":
            url = token.value
        elif kind == "purpose":
            params["purpose"] = token.value
        elif kind == "content":
            params["content"] = token.value
        elif kind == "due":
            if token.value is not None:
                params["due_in"] = {"value": token.value.value, "unit": token.value.unit}
        elif kind == "due_today":
            params["due"] = "today"
        elif kind == "summary":
            params["summary"] = token.value
        elif kind == "title":
            title = token.value
        elif kind == "task_kind":
            title = title or (token.value if token.value is not None else token.text.strip())
        elif kind == "entity" and token.value == "quote":
            rule.approval_on_quote = True
        elif kind not in ("task", "conj"):
            continue
        used.add(index)
    previous_targets = [a["target"] for a in rule.actions if a["type"] != "webhook"]
    targets_named = bool(targets)
    for kind in kinds:
        if kind == "webhook":
            if url is None:
                verb = next(t for t in clause if t.kind in ("verb", "weak_verb"))
                state.problem_at(
                    verb, "A webhook needs the address to call (https://…)", "webhook 需要一个地址（https://…）"
                )
                continue
            rule.actions.append({"type": "webhook", "target": url, "params": {}})
            continue
        recipients: list[str | None] = list(targets)
        if not targets_named and previous_targets:
            recipients = [previous_targets[-1]]
        if not recipients and kind == "create_task":
            recipients = ["owner"]
        if not recipients:
            anchor = next(t for t in clause if t.kind in ("verb", "weak_verb", "task", "summary"))
            state.problem_at(
                anchor,
                "Who should this go to? Name a person or role (e.g. the owner, the manager)",
                "发给谁？请写明人员或角色（例如负责人、主管）",
            )
            continue
        for recipient in recipients:
            if recipient is None:
                continue
            action_params: dict[str, Any] = {}
            if kind == "notify":
                for key in ("purpose", "content"):
                    if key in params:
                        action_params[key] = params[key]
            elif kind == "create_task":
                task_title = title
                if task_title is None and params.get("purpose") == "follow_up":
                    task_title = "跟进" if state.lang == "zh" else "follow-up"
                if task_title:
                    action_params["title"] = task_title
                if "due_in" in params:
                    action_params["due_in"] = params["due_in"]
                elif "due" in params:
                    action_params["due"] = params["due"]
            elif kind == "push_summary":
                action_params.update(params.get("summary", {"scope": "communication_history"}))
            elif kind == "require_approval":
                if approval_kind:
                    action_params["kind"] = approval_kind
                elif rule.approval_on_quote:
                    action_params["kind"] = "quote"
            rule.actions.append({"type": kind, "target": recipient, "params": action_params})


# --- the trigger -----------------------------------------------------------------------------
def _trigger(rule: _Rule, state: _State, *, quiet: bool = False) -> dict[str, Any] | None:
    duration_conditions = [c for c in rule.conditions if c["field_or_metric"] in DURATION_METRICS]
    if rule.schedule or rule.clock:
        trigger: dict[str, Any] = {"kind": "schedule"}
        frequency = rule.schedule.get("frequency") or ("weekly" if "day" in rule.schedule else "daily")
        if rule.schedule.get("day") == "last_day":
            frequency = "monthly"
        trigger["frequency"] = frequency
        trigger["time"] = _clock_time(rule.clock, rule.daypart)
        for key in ("day", "day_of_month", "days"):
            if key in rule.schedule:
                trigger[key] = rule.schedule[key]
        if trigger["time"] is None and rule.daypart in ("afternoon", "morning", "evening"):
            trigger["time_of_day"] = rule.daypart
        _drop_event_stages(rule)
        return trigger
    events = list(rule.events)
    if events:
        event = events[0]
        state_of_same_record = any(
            c["field_or_metric"].split(".")[0] == event["event"].split("_")[0] for c in duration_conditions
        )
        if not state_of_same_record:
            _drop_event_stages(rule, keep=event)
            return {"kind": "event", **event}
    stage_conditions = [c for c in rule.conditions if "_token" in c and c["value"] in ("closed_won", "closed_lost")]
    if not events and stage_conditions and not duration_conditions:
        condition = stage_conditions[0]
        rule.conditions.remove(condition)
        return {"kind": "event", "event": "opportunity_stage_changed", "to_stage": condition["value"]}
    if not duration_conditions:
        if rule.approval_on_quote:
            return {"kind": "event", "event": "quote_submitted"}
        if any(c["field_or_metric"].startswith("order.") for c in rule.conditions):
            return {"kind": "event", "event": "order_placed"}
    if not rule.conditions:
        if rule.actions and not quiet:
            state.problem(
                0,
                len(state.text),
                "Say when the rule should run: an event (when a new lead comes in) "
                "or a schedule (every Monday at 9:00)",
                "请写明规则何时运行：事件（例如新线索进来时）或定时（例如每周一9点）",
            )
        return None
    hours = any(c.get("unit") in ("hour", "minute") for c in duration_conditions)
    months = any(c["op"] == "streak" and c.get("unit") == "month" for c in rule.conditions)
    frequency = "hourly" if hours else "monthly" if months else "daily"
    return {"kind": "schedule", "frequency": frequency, "time": None, "inferred": True}


def _drop_event_stages(rule: _Rule, keep: dict[str, Any] | None = None) -> None:
    for condition in rule.conditions:
        condition.pop("_token", None)


def _clock_time(clock: str | None, daypart: str | None) -> str | None:
    if clock is None:
        return "12:00" if daypart == "noon" else None
    hour, minute = (int(part) for part in clock.split(":"))
    if daypart in ("afternoon", "evening") and hour < 12:
        hour += 12
    return f"{hour:02d}:{minute:02d}"


# --- recipients ------------------------------------------------------------------------------
def _subject_entity(rule: _Rule, trigger: dict[str, Any] | None = None, *, record_only: bool = False) -> str | None:
    """The record the rule is about: decides what "owner" and "amount" refer to."""
    event = (trigger or {}).get("event") or (rule.events[0]["event"] if rule.events else None)
    by_event = {
        "email_received": "email",
        "ticket_opened": "ticket",
        "lead_created": "lead",
        "order_placed": "order",
        "opportunity_stage_changed": "opportunity",
        "quote_submitted": "quote",
    }
    if event in by_event and not record_only:
        return by_event[event]
    names = [c["field_or_metric"] for c in rule.conditions]
    if not record_only:
        if "email_unreplied" in names:
            return "email"
        for prefix in ("ticket", "lead", "contract", "order", "opportunity"):
            if any(n.startswith(prefix + ".") for n in names):
                return prefix
        if "stage_duration" in names:
            return "opportunity"
    for entity in rule.entities:
        if entity not in ("quote", "account"):
            return entity
    if event in by_event and by_event[event] in ("order", "opportunity", "lead", "ticket"):
        return by_event[event]
    return rule.entities[0] if rule.entities else None


def _normalise_targets(rule: _Rule, trigger: dict[str, Any] | None) -> None:
    subject = _subject_entity(rule, trigger) or "account"
    unowned = (
        subject == "lead" and any(c["field_or_metric"] == "lead.unassigned_duration" for c in rule.conditions)
    ) or (trigger or {}).get("event") == "lead_created"
    for action in rule.actions:
        target = action["target"]
        if target == "account_owner" and subject == "account":
            action["target"] = "owner"
        elif target == "manager_or_role":
            action["target"] = "role:sales_manager" if unowned else "manager"
        if action["params"].get("content") == "record_list":
            action["params"]["content"] = "list_of_reps" if subject == "rep" else f"{subject}_list"
        if action["target"] == "role:team_lead" and rule.teams:
            action["params"].setdefault("team", rule.teams[0])
