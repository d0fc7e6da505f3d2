"""What can be approved: a registry of record types. A package that owns a record type plugs it in
with :func:`register` — how to load the record's fields for the snapshot (as the submitter sees
it) and what to do once the approval is decided. ``closeloop.cash`` registers ``collection``;
the built-ins (quote discount, contract, account transfer, expense claim) are in
:mod:`closeloop.approvals.builtins`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from closeloop.core.actor import Actor

if TYPE_CHECKING:
    from closeloop.approvals.models import Approval


@dataclass(frozen=True)
class Loaded:
    """A record as submitted: a title for lists and its fields (JSON-safe) for the snapshot."""

    title: str
    fields: dict[str, Any]
    owner_id: int | None = None


#: (session, submitter, record id or None, the submitter's details) → the record as submitted
Loader = Callable[[Session, Actor, int | None, Mapping[str, Any]], Loaded]
#: (session, the approval, approved?) → the record's consequence, in the same transaction
Decided = Callable[[Session, "Approval", bool], None]
#: (session, submitter, record id, the record as loaded) → raise when it may not be submitted now
Admits = Callable[[Session, Actor, int | None, Loaded], None]
#: (the snapshot, the reader's locale) → the approval's title in that locale
Titled = Callable[[Mapping[str, Any], str], str]


@dataclass(frozen=True)
class Subject:
    record_type: str
    label_zh: str
    label_en: str
    load: Loader
    on_decided: Decided | None = None
    #: fields a flow's conditions may name (shown by the flow editor); none declared: any snapshot key
    fields: tuple[str, ...] = ()
    #: each declared field's kind (number, date, text or id), what a condition's value must be
    field_kinds: Mapping[str, str] = field(default_factory=dict)
    #: whether an approval needs an existing record (an expense claim lives in the approval itself)
    needs_record: bool = True
    #: the record's page, for links
    link: Callable[[int | None], str | None] = field(default=lambda record_id: None)
    #: a person's submission is refused when this raises (a rule's request is not held by it)
    admits: Admits | None = None
    #: the title per reader's locale (otherwise the title stored at submission)
    titled: Titled | None = None


_REGISTRY: dict[str, Subject] = {}

#: record types flows may be written for before their package registers (labels for the pages)
KNOWN_TYPES: dict[str, tuple[str, str]] = {
    "quote": ("报价折扣", "Quote discount"),
    "contract": ("合同", "Contract"),
    "collection": ("回款", "Collection"),
    "expense": ("费用报销", "Expense"),
    "account_transfer": ("客户转移", "Account transfer"),
}


def register(
    record_type: str,
    *,
    load: Loader,
    on_decided: Decided | None = None,
    label_zh: str | None = None,
    label_en: str | None = None,
    fields: Mapping[str, str] | tuple[str, ...] = (),
    needs_record: bool = True,
    link: Callable[[int | None], str | None] | None = None,
    admits: Admits | None = None,
    titled: Titled | None = None,
) -> Subject:
    """Make ``record_type`` approvable (registering again replaces the earlier registration).

    ``fields`` names the snapshot fields a flow's conditions may test, as a mapping to each one's
    kind (``number``, ``date``, ``text`` or ``id``) so that a condition's value is checked when the
    flow is saved."""
    zh, en = KNOWN_TYPES.get(record_type, (record_type, record_type))
    subject = Subject(
        record_type=record_type,
        label_zh=label_zh or zh,
        label_en=label_en or en,
        load=load,
        on_decided=on_decided,
        fields=tuple(fields),
        field_kinds=dict(fields) if isinstance(fields, Mapping) else {},
        needs_record=needs_record,
        link=link or (lambda record_id: None),
        admits=admits,
        titled=titled,
    )
    _REGISTRY[record_type] = subject
    KNOWN_TYPES.setdefault(record_type, (subject.label_zh, subject.label_en))
    return subject


def get(record_type: str) -> Subject | None:
    return _REGISTRY.get(record_type)


def registered() -> list[Subject]:
    return list(_REGISTRY.values())


def label(record_type: str, locale: str) -> str:
    zh, en = KNOWN_TYPES.get(record_type, (record_type, record_type))
    return en if locale == "en" else zh
