"""Collections as an approvable record type (CN-3 meets CN-4): the snapshot an approver sees and what
happens when the flow ends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from closeloop.approvals import subjects
from closeloop.approvals.subjects import Loaded
from closeloop.cash import service
from closeloop.core.actor import Actor
from closeloop.core.errors import ValidationFailed
from closeloop.core.money import written
from closeloop.crm.contracts.service import get_contract
from closeloop.governance.audit.service import json_safe

#: the snapshot's fields, which a flow's conditions may name (e.g. ``amount gte 100000``)
FIELDS = {
    "amount": "number", "currency": "text", "received_on": "date", "method": "text", "reference": "text",
    "contract_id": "id", "contract_number": "text", "contract_amount": "number", "instalment_id": "id",
    "owner_id": "id",
}  # fmt: skip


def load_collection(session: Session, actor: Actor, record_id: int | None, details: Mapping[str, Any]) -> Loaded:
    if record_id is None:
        raise ValidationFailed.one("record_id", "a collection approval needs the collection", "required")
    collection = service.get_collection(session, actor, collection_id=record_id)
    contract = get_contract(session, actor, contract_id=collection.contract_id)
    fields = {
        "amount": json_safe(collection.amount),
        "currency": contract.currency,
        "received_on": json_safe(collection.received_on),
        "method": str(collection.method),
        "reference": collection.reference,
        "contract_id": contract.id,
        "contract_number": contract.number,
        "contract_amount": json_safe(contract.amount),
        "instalment_id": collection.instalment_id,
        "owner_id": contract.owner_id,
    }
    return Loaded(f"{contract.number} · {written(collection.amount, contract.currency)}", fields, contract.owner_id)


def register() -> None:
    subjects.register(
        "collection",
        load=load_collection,
        on_decided=service.decide_by_approval,
        fields=FIELDS,
        link=lambda record_id: None,
    )
