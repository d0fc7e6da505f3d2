"""The import engine: plan every row, then write all valid rows in one transaction.

Planning a row means: parse its cells (:mod:`.values`), resolve what it references
(:mod:`.references`), validate it with the entity's Create schema — the API's own rules — and the
entity's service rules (:mod:`.entities`), and find the record it describes by natural key, so that
it is created, updated, or left unchanged. Invalid rows are reported (row, column, value, reason)
and skipped; the rest are written with set-based statements (:mod:`.writer`) plus one audit entry
per record, chained as any other (``audit.record_many``). Nothing is written when any statement
fails: the caller's transaction rolls back as a whole.

Blank cells mean "not given": on an update they leave the stored value as it is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.core.collector import cyclic_gc_paused
from closeloop.core.errors import Conflict, Forbidden, ValidationFailed
from closeloop.crm import customfields, records, search
from closeloop.crm.customfields import Definition
from closeloop.crm.opportunities.models import OpportunityProductLine, StageChange
from closeloop.crm.searchkey import Searchable, search_key
from closeloop.db.scope import RowAccess, tenant_clause, visibility_clause
from closeloop.db.session import bound_chunks, in_bound
from closeloop.db.types import ScaledDecimal, UTCDateTime
from closeloop.governance.audit import service as audit
from closeloop.governance.customfields.types import ValueProblem as CustomValueProblem
from closeloop.governance.customfields.types import clean_value
from closeloop.governance.fields import DEFAULTS, FieldPolicy, check_writable_with, policy_of
from closeloop.governance.permissions import require
from closeloop.integrations.importing import references, writer
from closeloop.integrations.importing.custom import as_import_fields, custom_fields_for
from closeloop.integrations.importing.entities import EntitySpec, ImportOptions, RowContext, entity_spec
from closeloop.integrations.importing.fields import ImportField, ValueKind, check_mapping, suggest_mapping
from closeloop.integrations.importing.readers import SourceTable
from closeloop.integrations.importing.report import ImportReport, RowProblem
from closeloop.integrations.importing.values import ValueProblem

Progress = Callable[[int], None]
SessionScope = Callable[[], AbstractContextManager[Session]]

#: rows between two progress reports
PROGRESS_EVERY = 1000
_PROTECTED = frozenset({"id", "version", "created_at", "updated_at", "deleted_at", "organization_id"})
#: values that ``audit.json_safe`` returns as they are
_PLAIN = frozenset({str, int, bool})


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"


@dataclass
class PlannedRow:
    """One valid row and what will be done with it."""

    number: int
    #: the row's validated values (after the owner default); the record's values for a create
    given: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)
    action: Action | None = None
    record_id: int | None = None
    version: int | None = None
    before: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    audit_action: str | None = None
    #: same-file references not found in the database: attribute → the key written in the cell
    pending: dict[str, str] = field(default_factory=dict)
    #: same-file references resolved: attribute → number of the row that creates the target
    deferred: dict[str, int] = field(default_factory=dict)


class Importer:
    """One import of one table into one entity, by one actor.

    Use :func:`run_import` for the common case (one session); background jobs call
    :meth:`plan` with short-lived sessions (so progress can be committed) and :meth:`apply` in
    the write transaction, which matches existing records again under the import lock.
    """

    def __init__(
        self,
        actor: Actor,
        entity: str,
        table: SourceTable,
        mapping: Mapping[str, str] | None = None,
        *,
        dry_run: bool = False,
        options: ImportOptions | None = None,
        custom_fields: Sequence[Definition] = (),
        field_policy: FieldPolicy = DEFAULTS,
    ) -> None:
        self.spec: EntitySpec = entity_spec(entity)
        require(actor, "imports:run")
        require(actor, f"{self.spec.record_type.plural}:write")
        self.actor = actor
        self.table = table
        self.options = options or ImportOptions()
        suggested = mapping is None
        extra = as_import_fields(custom_fields)
        #: ``custom.<name>`` → the definition of each custom field the import may fill
        self._custom = {customfields.PREFIX + d.name: d for d in custom_fields}
        chosen = suggest_mapping(table.headers, entity, extra) if mapping is None else dict(mapping)
        self.columns: dict[str, ImportField] = check_mapping(table.headers, entity, chosen, extra)
        try:
            check_writable_with(
                field_policy,
                actor,
                self.spec.noun,
                [f.key for f in self.columns.values() if not f.import_only and f.name not in self._custom],
            )
        except Forbidden as refused:  # name the column and the way out, not only the field
            field = refused.problems[0].field if refused.problems else None
            if field is None:
                raise
            column = next((h for h, f in self.columns.items() if f.key == field), field)
            raise Forbidden(
                f"column {column} → {field}: your role ({actor.role}) may not set this field; "
                "leave the column out of the mapping or import as someone who may",
                field_name=field,
            ) from None
        self.report = ImportReport(
            entity=entity, source=table.name, dry_run=dry_run, mapping=chosen, total_rows=len(table.rows)
        )
        if suggested:
            self.report.notes.append("The column mapping was suggested from the file's headers.")
        self.report.notes.extend(table.notes)
        self._fields = {f.name: f for f in (*self.spec.fields, *extra)}
        self._header_of: dict[str, str] = {}
        for header, import_field in self.columns.items():
            self._header_of[import_field.key] = header
            self._header_of[import_field.name] = header
        self._raw_cells = {row.number: row.cells for row in table.rows}
        self._problems: dict[int, list[RowProblem]] = defaultdict(list)
        #: problems found before matching (kept when rows are matched again in the write transaction)
        self._validation_problems: dict[int, list[RowProblem]] = {}
        self._duplicate_warnings: list[RowProblem] = []
        self._parsed: list[tuple[int, dict[str, Any]]] = []
        self._resolved: dict[str, dict[str, references.Resolution]] = {}
        self._rows: list[PlannedRow] = []
        self._decided_in: Session | None = None
        #: decimal columns, normalized to their scale as the services store them ("0" → "0.00")
        self._scaled: dict[str, ScaledDecimal] = {
            column.name: column.type for column in self.spec.table.columns if isinstance(column.type, ScaledDecimal)
        }
        #: the fields a created record's audit entry lists, as ``records.create`` lists them
        self._audited = [name for name in self.spec.record_type.read_fields if name not in _PROTECTED]
        self.now = utcnow()

    # --- planning -------------------------------------------------------------------------------

    def plan(self, session_scope: SessionScope, progress: Progress | None = None) -> ImportReport:
        """Parse, resolve, validate and match every row; nothing is written."""
        with cyclic_gc_paused():
            self._parse(progress)
            with session_scope() as session:
                self._resolve_references(session)
            self._validate(progress)
            with session_scope() as session:
                self._decide(session)
            return self._finish_report()

    def _problem(self, number: int, column: str | None, reason: str, code: str = "invalid", value: Any = None) -> None:
        if value is None and column is not None:
            cells = self._raw_cells.get(number, ())
            index = self.table.headers.index(column)
            value = cells[index] if index < len(cells) else None
        self._problems[number].append(RowProblem.of(number, column, value, reason, code))

    def _attribute_problem(self, number: int, attribute: str, message: str, code: str) -> None:
        column = self._header_of.get(attribute)
        reason = message if column is not None else f"{attribute}: {message}"
        self._problem(number, column, reason, code)

    def _parse(self, progress: Progress | None) -> None:
        """Parse every mapped cell; rows with an unparseable cell are reported and dropped."""
        headers = self.table.headers
        plan = [
            (headers.index(header), header, import_field.name, import_field.parser())
            for header, import_field in self.columns.items()
        ]
        parsed_rows = self._parsed
        for row in self.table.rows:
            cells = row.cells
            size = len(cells)
            parsed: dict[str, Any] = {}
            valid = True
            for index, header, name, parse in plan:
                raw = cells[index] if index < size else None
                if raw is None or raw == "":
                    continue
                try:
                    value = parse(raw)
                except ValueProblem as problem:
                    self._problem(row.number, header, str(problem), "bad_value", raw)
                    valid = False
                    continue
                except ArithmeticError:  # a value no parser foresaw: this row's problem, not the job's
                    self._problem(row.number, header, "is not a number", "bad_value", raw)
                    valid = False
                    continue
                if value is not None:
                    parsed[name] = value
            if valid:
                parsed_rows.append((row.number, parsed))

    def _resolve_references(self, session: Session) -> None:
        for import_field in self.columns.values():
            if import_field.kind is not ValueKind.REFERENCE or import_field.target is None:
                continue
            keys = {parsed[import_field.name] for _, parsed in self._parsed if import_field.name in parsed}
            self._resolved[import_field.name] = references.resolve(session, self.actor, import_field.target, keys)

    def _validate(self, progress: Progress | None) -> None:
        schema = self.spec.create_schema
        fields = self._fields
        owner_column: str | None = getattr(self.spec.record_type.model, "__owner_column__", None)
        default_owner = (
            self.actor.user_id
            if owner_column is not None and not getattr(self.spec.record_type.model, "__unowned_visible__", False)
            else None
        )
        total = len(self.table.rows)
        dropped = total - len(self._parsed)
        # (attribute, is a reference, is import-only, refers to this entity) of each field
        info = {
            f.name: (f.key, f.kind is ValueKind.REFERENCE, f.import_only, f.target == self.spec.noun)
            for f in fields.values()
        }
        plain = {
            name: key
            for name, (key, is_reference, is_import_only, _) in info.items()
            if not is_reference and not is_import_only and name not in self._custom
        }
        validate = schema.__pydantic_validator__.validate_python
        dump = schema.__pydantic_serializer__.to_python
        for count, (number, parsed) in enumerate(self._parsed, start=1):
            if progress is not None and count % PROGRESS_EVERY == 0:
                progress(dropped + count)
            data: dict[str, Any] = {}
            import_only: dict[str, Any] = {}
            pending: dict[str, str] = {}
            valid = True
            custom: dict[str, Any] = {}
            for name, value in parsed.items():
                plain_key = plain.get(name)
                if plain_key is not None:  # most cells: a value the schema checks as it is
                    data[plain_key] = value
                    continue
                definition = self._custom.get(name)
                if definition is not None:
                    try:
                        cleaned = clean_value(definition.rule, value)
                    except CustomValueProblem as problem:
                        self._problem(number, self._header_of[name], problem.message, problem.code, value)
                        valid = False
                        continue
                    if cleaned is not None:
                        custom[definition.name] = cleaned
                    continue
                key, is_reference, is_import_only, is_self = info[name]
                if is_reference:
                    resolution = self._resolved[name][value]
                    if resolution.record_id is None:
                        if is_self and resolution.code == "not_found":
                            pending[key] = value
                            continue
                        self._problem(number, self._header_of[name], resolution.problem or "", resolution.code, value)
                        valid = False
                        continue
                    value = [resolution.record_id] if key.endswith("_ids") else resolution.record_id
                if is_import_only:
                    import_only[key] = value
                else:
                    data[key] = value
            if not valid:
                continue
            try:
                # model_validate(data).model_dump(exclude_unset=True), without the per-call wrappers
                values = dump(validate(data), exclude_unset=True)
            except ValidationError as error:
                for detail in error.errors(include_url=False):
                    attribute = str(detail["loc"][0]) if detail["loc"] else ""
                    message = str(detail["msg"]).removeprefix("Value error, ")
                    self._attribute_problem(number, attribute, message, str(detail["type"]))
                continue
            values.update(import_only)
            if custom:
                values["custom"] = custom
            for name, column_type in self._scaled.items():
                if values.get(name) is not None:
                    values[name] = column_type.normalize(values[name])
            if owner_column is not None:
                if owner_column not in values and default_owner is not None:
                    values[owner_column] = default_owner
                try:
                    records.check_owner(self.actor, values.get(owner_column))
                except ValidationFailed as error:
                    self._failed(number, error)
                    continue
            self._rows.append(PlannedRow(number, values, pending=pending))
        self._validation_problems = {number: list(problems) for number, problems in self._problems.items()}
        if progress is not None:
            progress(total)

    def _failed(self, number: int, error: ValidationFailed) -> None:
        for problem in error.problems or []:
            self._attribute_problem(number, problem.field, problem.message, problem.code)
        if not error.problems:
            self._problem(number, None, error.message)

    # --- matching existing records --------------------------------------------------------------

    def _decide(self, session: Session) -> None:
        """Match every planned row to an existing record (or none) and decide what to do with it."""
        spec = self.spec
        keys = spec.natural_keys
        self._problems = defaultdict(list, {n: list(p) for n, p in self._validation_problems.items()})
        for row in self._rows:
            row.action = None
            row.values, row.before, row.extra, row.audit_action = {}, {}, {}, None
            row.record_id = row.version = None
            row.deferred = {}
        candidates = [self._keys_of(row.given) for row in self._rows]
        existing = self._existing(session, candidates)
        links = self._existing_links(session, existing)
        seen_keys: dict[tuple[int, tuple[Any, ...]], int] = {}
        seen_records: dict[int, int] = {}
        for row, row_keys in zip(self._rows, candidates, strict=True):
            if row.number in self._problems:
                continue
            match = self._match(row, row_keys, existing)
            if isinstance(match, bool):
                continue
            if match is None:
                # rows are told apart by their strongest key: two deals with the same name but
                # different external references are two deals
                strongest = row_keys[0] if row_keys else None
                if strongest is not None and strongest in seen_keys:
                    label = keys[strongest[0]].label
                    self._problem(
                        row.number, None, f"has the same {label} as row {seen_keys[strongest]}", "duplicate_in_file"
                    )
                    continue
                if strongest is not None:
                    seen_keys[strongest] = row.number
                self._plan_create(row)
                continue
            record_id = int(match["id"])
            if record_id in seen_records:
                self._problem(
                    row.number, None, f"describes the same record as row {seen_records[record_id]}", "duplicate_in_file"
                )
                continue
            seen_records[record_id] = row.number
            self._plan_update(row, match, links.get(record_id))
        self._resolve_pending()
        if spec.name in ("accounts", "leads"):
            self._check_duplicates(session)
        self._decided_in = session

    def _check_duplicates(self, session: Session) -> None:
        """New accounts or leads that duplicate an account or unconverted lead of the organization
        (CN-2: same company name without legal suffixes, width or script; same number) — or an
        earlier row of the file — are refused row by row when the organization blocks duplicates,
        and imported with a warning when it warns. One set-based check for the whole file
        (``pools.duplicates.check_batch``), not a lookup per row."""
        from closeloop.pools import duplicates
        from closeloop.pools import service as pools
        from closeloop.pools.models import DuplicateMode

        mode = pools.duplicate_mode(session, self.actor.organization_id)
        self._duplicate_warnings = []
        if mode is DuplicateMode.OFF:
            return
        kind = "account" if self.spec.name == "accounts" else "lead"
        new = [row for row in self._rows if row.action is Action.CREATE and row.number not in self._problems]
        verdicts = duplicates.check_batch(
            session,
            self.actor,
            kind,
            [(row.number, row.values) for row in new],
            block=mode is DuplicateMode.BLOCK,
        )
        for row, verdict in zip(new, verdicts, strict=True):
            if verdict is None:
                continue
            if mode is DuplicateMode.BLOCK:
                self._problem(row.number, None, verdict.reason, verdict.code)
                row.action = None
                continue
            name, number = duplicates.name_and_number(kind, row.values)
            warning = RowProblem.of(row.number, None, name or number, verdict.reason, verdict.code)
            self._duplicate_warnings.append(warning)

    def _keys_of(self, values: Mapping[str, Any]) -> list[tuple[int, tuple[Any, ...]]]:
        found = []
        for index, key in enumerate(self.spec.natural_keys):
            parts = tuple(values.get(attribute) for attribute in key.attributes)
            if parts[0] is None or (key.complete and None in parts):
                continue
            found.append((index, tuple(p if type(p) in _PLAIN else audit.json_safe(p) for p in parts)))
        return found

    def _existing(
        self, session: Session, candidates: list[list[tuple[int, tuple[Any, ...]]]]
    ) -> dict[int, dict[tuple[Any, ...], list[dict[str, Any]]]]:
        """Stored records (with whether the actor may see them) for every natural key in the file."""
        model = self.spec.record_type.model
        table = self.spec.table
        found: dict[int, dict[tuple[Any, ...], list[dict[str, Any]]]] = {}
        for index, key in enumerate(self.spec.natural_keys):
            firsts = sorted({k[0] for row_keys in candidates for i, k in row_keys if i == index}, key=str)
            if not firsts:
                continue
            by_key: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
            first = table.c[key.attributes[0]]
            # one statement per key, its values bound per chunk (compiled once, not once per chunk)
            statement = select(
                *table.c, visibility_clause(self.actor, model, access=RowAccess.WRITE).label("_visible")
            ).where(tenant_clause(self.actor.organization_id, model), in_bound(session, first, "keys"))
            values = [self._bind_value(key.attributes[0], v) for v in firsts] if self._rebound(first) else firsts
            for chunk in bound_chunks(session, first, values, references.CHUNK):
                for stored in session.execute(statement, {"keys": chunk}).mappings():
                    record = dict(stored)
                    stored_key = tuple(audit.json_safe(record[a]) for a in key.attributes)
                    by_key[stored_key].append(record)
            found[index] = by_key
        return found

    @staticmethod
    def _rebound(column: Any) -> bool:
        """Whether :meth:`_bind_value` changes any value of ``column`` (only date-times do)."""
        return isinstance(column.type, UTCDateTime)

    def _bind_value(self, attribute: str, value: Any) -> Any:
        """A natural-key part back in the column's Python type (keys are compared as JSON-safe values)."""
        column = self.spec.table.c[attribute]
        if isinstance(value, str) and isinstance(column.type, UTCDateTime):
            return datetime.fromisoformat(value)
        return value

    def _match(
        self,
        row: PlannedRow,
        row_keys: list[tuple[int, tuple[Any, ...]]],
        existing: dict[int, dict[tuple[Any, ...], list[dict[str, Any]]]],
    ) -> dict[str, Any] | bool | None:
        """The stored record this row describes, ``None`` for a new one, ``False`` when it cannot be
        told (the reason is reported)."""
        keys = self.spec.natural_keys
        given_keys = {index for index, _ in row_keys}
        for index, key_value in row_keys:
            stored = existing.get(index, {}).get(key_value, [])
            # A record found by a weaker key is the same one only if it has no stronger identifier
            # that the row contradicts (same name, but another external reference: another record).
            stronger = [keys[i] for i in given_keys if i < index and keys[i].complete]
            stored = [r for r in stored if all(r[a] is None for k in stronger for a in k.attributes)]
            if not stored:
                continue
            if len(stored) > 1:
                self._problem(
                    row.number,
                    None,
                    f"matches {len(stored)} existing {self.spec.record_type.plural} by {keys[index].label}; "
                    "add an external_ref column to tell them apart",
                    "ambiguous",
                )
                return False
            record = stored[0]
            if not record["_visible"]:
                self._problem(
                    row.number,
                    None,
                    f"an existing {self.spec.noun.replace('_', ' ')} with this {keys[index].label} belongs to "
                    "someone outside your reach; ask its owner or a manager to import it",
                    "collision",
                )
                return False
            return record
        return None

    def _existing_links(
        self, session: Session, existing: dict[int, dict[tuple[Any, ...], list[dict[str, Any]]]]
    ) -> dict[int, list[int]]:
        """Product lines of the stored opportunities this import may update (only when mapped)."""
        if self.spec.name != "opportunities" or "product_line" not in {f.name for f in self.columns.values()}:
            return {}
        ids = sorted({record["id"] for by_key in existing.values() for rows in by_key.values() for record in rows})
        links: dict[int, list[int]] = defaultdict(list)
        for chunk in references.chunks(ids):
            statement = (
                select(OpportunityProductLine.opportunity_id, OpportunityProductLine.product_line_id)
                .where(
                    tenant_clause(self.actor.organization_id, OpportunityProductLine),
                    OpportunityProductLine.opportunity_id.in_(chunk),
                )
                .order_by(OpportunityProductLine.product_line_id)
            )
            for opportunity_id, line_id in session.execute(statement):
                links[opportunity_id].append(line_id)
        return links

    def _context(self) -> RowContext:
        return RowContext(self.actor, self.now, self.options)

    def _plan_create(self, row: PlannedRow) -> None:
        values = dict(row.given)
        if self._custom:
            given = values.get("custom") or {}
            document = {
                d.name: d.default for d in self._custom.values() if d.default is not None and d.name not in given
            } | given
            missing = [d for d in self._custom.values() if d.required and document.get(d.name) in (None, [])]
            if missing:
                self._attribute_problem(row.number, customfields.PREFIX + missing[0].name, "is required", "required")
                return
            values["custom"] = document
        ctx = self._context()
        if self.spec.on_create is not None:
            try:
                self.spec.on_create(values, ctx)
            except ValidationFailed as error:
                self._failed(row.number, error)
                return
        row.values, row.extra, row.action = values, ctx.extra, Action.CREATE
        row.audit_action = f"{self.spec.noun}.created"

    def _plan_update(self, row: PlannedRow, record: dict[str, Any], links: list[int] | None) -> None:
        columns = self.spec.table.c
        given = row.given
        if "custom" in given:  # the file's custom fields change, the record's others stay
            given = {**given, "custom": {**(record.get("custom") or {}), **given["custom"]}}
        changes = {
            name: value
            for name, value in given.items()
            if name in columns and name not in _PROTECTED and audit.json_safe(value) != audit.json_safe(record[name])
        }
        ctx = self._context()
        owner_column: str | None = getattr(self.spec.record_type.model, "__owner_column__", None)
        try:
            if self.spec.on_update is not None:
                self.spec.on_update(changes, given, record, ctx)
            if owner_column is not None and owner_column in changes:
                records.check_owner(self.actor, changes[owner_column])
        except ValidationFailed as error:
            self._failed(row.number, error)
            return
        new_lines = ctx.extra.get("product_line_ids")
        if new_lines is not None and new_lines == (links or []):
            del ctx.extra["product_line_ids"]
        elif new_lines is not None:
            ctx.extra["previous_product_line_ids"] = links or []
        row.record_id, row.version = int(record["id"]), record.get("version")
        if not changes and "product_line_ids" not in ctx.extra and not row.pending:
            row.action = Action.UNCHANGED
            return
        row.values, row.extra, row.action = changes, ctx.extra, Action.UPDATE
        row.before = {name: record[name] for name in (*changes, *row.pending)}
        row.audit_action = ctx.action or f"{self.spec.noun}.updated"

    def _resolve_pending(self) -> None:
        """References to records that this same file creates (an account's parent further down)."""
        pending_rows = [row for row in self._rows if row.pending and row.action is not None]
        if not pending_rows:
            return
        target = references.TARGETS[self.spec.noun]
        creators: dict[str, list[int]] = defaultdict(list)
        for row in self._rows:
            if row.action is Action.CREATE:
                for column in target.keys:
                    value = row.values.get(column)
                    if value is not None:
                        creators[str(value)].append(row.number)
        written: dict[str, list[int]] = defaultdict(list)  # what every row of the file says, valid or not
        key_columns = [self.table.headers.index(self._header_of[k]) for k in target.keys if k in self._header_of]
        for source in self.table.rows:
            for index in key_columns:
                cell = source.cells[index] if index < len(source.cells) else None
                if cell not in (None, ""):
                    written[str(cell).strip()].append(source.number)
        for row in pending_rows:
            for attribute, key in row.pending.items():
                numbers = sorted(set(creators.get(key, [])))
                header = self._header_of.get(attribute)
                invalid = [n for n in written.get(key, []) if n != row.number]
                if not numbers and invalid:
                    self._problem(row.number, header, f"refers to row {invalid[0]}, which is invalid", "invalid", key)
                elif not numbers:
                    self._problem(row.number, header, f"no {self.spec.noun} '{key}' that you can see", "not_found", key)
                elif len(numbers) > 1:
                    self._problem(row.number, header, f"matches rows {numbers} of this file", "ambiguous", key)
                elif numbers[0] == row.number:
                    self._problem(row.number, header, f"a {self.spec.noun} cannot reference itself", "invalid", key)
                else:
                    row.deferred[attribute] = numbers[0]
        # a row whose same-file target turned out invalid is itself invalid now
        creating = {
            row.number for row in self._rows if row.action is Action.CREATE and row.number not in self._problems
        }
        changed = True
        while changed:
            changed = False
            for row in self._rows:
                if row.number in self._problems or row.action is None:
                    continue
                for attribute, number in row.deferred.items():
                    if number not in creating:
                        header = self._header_of.get(attribute)
                        self._problem(row.number, header, f"refers to row {number}, which is invalid", "invalid")
                        creating.discard(row.number)
                        changed = True
                        break

    def _finish_report(self) -> ImportReport:
        report = self.report
        valid = [row for row in self._rows if row.number not in self._problems and row.action is not None]
        report.created = sum(1 for row in valid if row.action is Action.CREATE)
        report.updated = sum(1 for row in valid if row.action is Action.UPDATE)
        report.unchanged = sum(1 for row in valid if row.action is Action.UNCHANGED)
        report.invalid = len(self._problems)
        report.problems = []
        report.problems_omitted = 0
        for number in sorted(self._problems):
            for problem in self._problems[number]:
                report.add_problem(problem)
        report.warnings = []
        for warning in self._duplicate_warnings:
            if warning.row not in self._problems:
                report.add_warning(warning)
        return report

    # --- writing --------------------------------------------------------------------------------

    def apply(self, session: Session) -> ImportReport:
        """Write every valid row in ``session``'s transaction (the caller commits or rolls back).

        When the rows were matched in another session (a background job plans in short read
        sessions), they are matched again here, under the import lock, so that records created
        meanwhile are updated rather than duplicated.
        """
        if self.report.dry_run:
            raise ValueError("a dry run writes nothing")
        with cyclic_gc_paused(), writer.overlapped(session):
            return self._apply(session)

    def _apply(self, session: Session) -> ImportReport:
        writer.lock_for_import(session, self.actor.organization_id, self.spec.name)
        if self._decided_in is not session:
            self._decide(session)
            self._finish_report()
        rows = [row for row in self._rows if row.number not in self._problems and row.action is not None]
        creates = [row for row in rows if row.action is Action.CREATE]
        updates = [row for row in rows if row.action is Action.UPDATE]
        table = self.spec.table
        # the chain's head is read before the first write, so that hashing the entries overlaps
        # with the server inserting the records (``writer.overlapped``)
        audit.read_tail(session, self.actor.organization_id)
        for row, record_id in zip(creates, writer.allocate_ids(session, table, len(creates)), strict=True):
            row.record_id = record_id
        created_ids = {row.number: row.record_id for row in creates}
        self._insert(session, creates, created_ids)
        self._update(session, updates, created_ids)
        self._write_extras(session, [row for row in creates + updates if row.extra])
        if updates and issubclass(self.spec.record_type.model, Searchable):  # created rows have theirs
            search.refresh_keys(
                session,
                self.actor.organization_id,
                nouns=[self.spec.record_type.noun],
                ids=[int(row.record_id or 0) for row in updates],
            )
        audit.record_many(
            session,
            self.actor,
            [self._audit_entry(row) for row in sorted(creates + updates, key=lambda r: r.number)],
            bulk_insert=writer.insert_rows,
        )
        return self.report

    def _defaults(self) -> dict[str, Any]:
        """Each column's Python-side default (timestamps: this import's time), as the ORM would fill it."""
        defaults: dict[str, Any] = {}
        for column in self.spec.table.columns:
            if column.name == "id":
                continue
            default: Any = column.default
            value: Any = None
            if default is not None and getattr(default, "is_scalar", False):
                value = default.arg
            elif default is not None and getattr(default, "is_callable", False):
                value = default.arg(None)
                if isinstance(value, datetime):
                    value = self.now
            defaults[column.name] = value
        defaults["organization_id"] = self.actor.organization_id
        return defaults

    def _insert(self, session: Session, creates: list[PlannedRow], created_ids: dict[int, int | None]) -> None:
        defaults = self._defaults()
        rows: list[dict[str, Any]] = []
        late: dict[str, list[dict[str, Any]]] = defaultdict(list)
        model = self.spec.record_type.model
        # the search key as the ORM's insert event computes it, written with the row
        searched: tuple[str, ...] = model.__search_fields__ if issubclass(model, Searchable) else ()
        for row in creates:
            record = dict(defaults)
            record.update(row.values)
            record["id"] = row.record_id
            if searched:
                record["search_key"] = search_key(*(record.get(name) for name in searched))
            row.values = record
            if row.deferred:
                record = dict(record)
                for attribute, number in row.deferred.items():
                    row.values[attribute] = created_ids[number]
                    record[attribute] = None  # set below, once its target exists
                    late[attribute].append({"id": row.record_id, attribute: created_ids[number]})
            rows.append(record)
        writer.insert_rows(session, self.spec.table, rows)
        for attribute, values in late.items():
            writer.update_rows(session, self.spec.table, (attribute,), values, versioned=False)

    def _update(self, session: Session, updates: list[PlannedRow], created_ids: dict[int, int | None]) -> None:
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for row in updates:
            for attribute, number in row.deferred.items():
                row.values[attribute] = created_ids[number]
            columns = (*sorted(row.values), "updated_at")
            groups[columns].append({**row.values, "updated_at": self.now, "id": row.record_id, "version": row.version})
        for columns, values in groups.items():
            matched = writer.update_rows(session, self.spec.table, columns, values)
            if matched != len(values):
                raise Conflict(
                    f"{len(values) - matched} {self.spec.record_type.plural} changed while the import ran; "
                    "nothing was imported — run the import again",
                    code="changed_meanwhile",
                )

    def _write_extras(self, session: Session, rows: list[PlannedRow]) -> None:
        history: list[dict[str, Any]] = []
        links: list[dict[str, Any]] = []
        relinked: list[int] = []
        org = self.actor.organization_id
        for row in rows:
            for step in row.extra.get("history", ()):
                history.append(
                    {
                        "organization_id": org,
                        "opportunity_id": row.record_id,
                        "from_stage": step.from_stage,
                        "to_stage": step.to_stage,
                        "changed_by_id": self.actor.user_id,
                        "changed_at": step.at,
                        "duration_seconds": step.duration_seconds,
                    }
                )
            line_ids = row.extra.get("product_line_ids")
            if line_ids is not None:
                if row.action is Action.UPDATE:
                    relinked.append(int(row.record_id or 0))
                links.extend(
                    {"organization_id": org, "opportunity_id": row.record_id, "product_line_id": line_id}
                    for line_id in line_ids
                )
        for chunk in references.chunks(relinked):
            session.execute(
                delete(OpportunityProductLine).where(
                    tenant_clause(org, OpportunityProductLine), OpportunityProductLine.opportunity_id.in_(chunk)
                )
            )
        writer.insert_rows(session, StageChange.__table__, history)  # type: ignore[arg-type]
        writer.insert_rows(session, OpportunityProductLine.__table__, links)  # type: ignore[arg-type]

    def _audit_entry(self, row: PlannedRow) -> audit.EntrySpec:
        noun = self.spec.noun
        if row.action is Action.CREATE:
            values = row.values
            changes: audit.Changes = {
                name: [None, value if type(value) in _PLAIN else audit.json_safe(value)]
                for name in self._audited
                if (value := values.get(name)) is not None
            }
            if "product_line_ids" in row.extra:
                changes["product_line_ids"] = [None, row.extra["product_line_ids"]]
            changes.update(customfields.changes(None, values.get("custom") or {}))
        else:
            changes = audit.diff(row.before, row.values)
            if "custom" in changes:
                del changes["custom"]
                changes.update(customfields.changes(row.before.get("custom"), row.values["custom"]))
            if "product_line_ids" in row.extra:
                changes["product_line_ids"] = [
                    row.extra.get("previous_product_line_ids", []),
                    row.extra["product_line_ids"],
                ]
        return (row.audit_action or f"{noun}.updated", noun, row.record_id, changes)


def run_import(
    session: Session,
    actor: Actor,
    *,
    entity: str,
    table: SourceTable,
    mapping: Mapping[str, str] | None = None,
    dry_run: bool = False,
    options: ImportOptions | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import ``table`` into ``entity`` in ``session`` (which the caller commits); without a
    ``mapping``, the suggested one. A dry run plans everything and writes nothing."""
    importer = Importer(
        actor,
        entity,
        table,
        mapping,
        dry_run=dry_run,
        options=options,
        custom_fields=custom_fields_for(session, actor, entity),
        field_policy=policy_of(session, actor),
    )
    if not dry_run:
        writer.lock_for_import(session, actor.organization_id, entity)
    report = importer.plan(lambda: nullcontext(session), progress)
    if not dry_run:
        importer.apply(session)
    return report


def iter_problem_lines(report: ImportReport) -> Iterator[str]:
    """The report's problems as lines of text (``row 7, column 行业 ('x'): reason``)."""
    for problem in report.problems:
        where = f"row {problem.row}"
        if problem.column:
            where += f", column {problem.column}"
        if problem.value is not None:
            where += f" ({problem.value!r})"
        yield f"{where}: {problem.reason}"
