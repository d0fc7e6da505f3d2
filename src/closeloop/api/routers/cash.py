"""Lead to cash (CN-3, 线索到回款): collection plans, collections and their approval, invoices, and a
contract's signed / collected / outstanding amounts.

(No ``from __future__ import annotations`` here: FastAPI reads the annotations at run time.)
"""

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from pydantic import ConfigDict, Field
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, commit, json_response
from closeloop.cash import service as cash
from closeloop.cash.models import CollectionMethod, CollectionStatus, InstalmentStatus, InvoiceKind, InvoiceStatus
from closeloop.crm.schemas import Money, Schema

router = APIRouter(tags=["cash"])

BigId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Positive = Annotated[Decimal, Field(gt=0, max_digits=16, decimal_places=2, examples=["50000.00"])]
Note = Annotated[str, Field(max_length=300)] | None


class InstalmentCreate(Schema):
    model_config = ConfigDict(extra="forbid")

    amount: Positive
    due_on: date
    remind_days: Annotated[int, Field(ge=0, le=365)] = 3
    note: Note = None


class InstalmentChange(Schema):
    model_config = ConfigDict(extra="forbid")

    amount: Positive | None = None
    due_on: date | None = None
    remind_days: Annotated[int, Field(ge=0, le=365)] | None = None
    note: Note = None
    is_void: bool | None = None


class CollectionCreate(Schema):
    model_config = ConfigDict(extra="forbid")

    amount: Positive
    received_on: date
    method: CollectionMethod = CollectionMethod.BANK_TRANSFER
    reference: Annotated[str, Field(max_length=100)] | None = None


class Decision(Schema):
    model_config = ConfigDict(extra="forbid")

    note: Note = None


class InvoiceCreate(Schema):
    model_config = ConfigDict(extra="forbid")

    kind: InvoiceKind = InvoiceKind.GENERAL
    amount: Money
    title_name: Annotated[str, Field(min_length=1, max_length=200, examples=["上海瑞金医院"])]
    tax_id: Annotated[str, Field(min_length=1, max_length=30, examples=["91350100M000100Y43"])]
    bank_name: Annotated[str, Field(max_length=100)] | None = None
    bank_account: Annotated[str, Field(max_length=40)] | None = None
    address_phone: Annotated[str, Field(max_length=200)] | None = None
    note: Annotated[str, Field(max_length=2000)] | None = None


class InvoiceStatusChange(Schema):
    model_config = ConfigDict(extra="forbid")

    status: InvoiceStatus
    number: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    issued_on: date | None = None


def contract_cash(session: Any, actor: Any, contract_id: int) -> dict[str, Any]:
    """The contract's money, plan, collections and invoices (one body for the API and the pages)."""
    return {
        "contract_id": contract_id,
        "amounts": cash.amounts(session, actor, contract_id=contract_id).as_dict(),
        "instalments": [line.as_dict() for line in cash.plan(session, actor, contract_id=contract_id)],
        "collections": [
            cash.serialize_collection(c) for c in cash.list_collections(session, actor, contract_id=contract_id)
        ],
        "invoices": [cash.serialize_invoice(i) for i in cash.list_invoices(session, actor, contract_id=contract_id)],
    }


@router.get(
    "/cash/contracts/{contract_id}",
    operation_id="get_contract_cash",
    summary="A contract's signed, collected and outstanding amounts, its collection plan, collections and invoices",
    response_class=Response,
)
def get_contract_cash(database: DatabaseDep, actor: CurrentActor, contract_id: BigId) -> Response:
    with database.reading(actor) as session:
        payload = contract_cash(session, actor, contract_id)
    return json_response(payload)


@router.post(
    "/cash/contracts/{contract_id}/instalments",
    operation_id="create_instalment",
    status_code=201,
    summary="Add an instalment to the contract's collection plan (the plan may not exceed the contract amount)",
    response_class=Response,
)
def create_instalment(
    database: DatabaseDep, actor: CurrentActor, contract_id: BigId, body: Annotated[InstalmentCreate, Body()]
) -> Response:
    with database.writing(actor) as session:
        instalment = cash.add_instalment(session, actor, contract_id=contract_id, **body.model_dump())
        payload = cash.PlanLine(instalment, cash.ZERO, cash.instalment_status(instalment, cash.ZERO, cash.today()))
        body_out = payload.as_dict()
        commit(session)
    return json_response(body_out, status_code=201)


@router.patch(
    "/cash/instalments/{instalment_id}",
    operation_id="update_instalment",
    summary="Change or void an instalment",
    response_class=Response,
)
def update_instalment(
    database: DatabaseDep, actor: CurrentActor, instalment_id: BigId, body: Annotated[InstalmentChange, Body()]
) -> Response:
    with database.writing(actor) as session:
        instalment = cash.update_instalment(
            session, actor, instalment_id=instalment_id, changes=body.model_dump(exclude_unset=True)
        )
        line = next(
            line
            for line in cash.plan(session, actor, contract_id=instalment.contract_id)
            if line.instalment.id == instalment.id
        )
        payload = line.as_dict()
        commit(session)
    return json_response(payload)


@router.post(
    "/cash/instalments/{instalment_id}/collections",
    operation_id="record_collection",
    status_code=201,
    summary="Record a collection (回款) against an instalment; it counts once approved",
    response_class=Response,
)
def record_collection(
    database: DatabaseDep, actor: CurrentActor, instalment_id: BigId, body: Annotated[CollectionCreate, Body()]
) -> Response:
    with database.writing(actor) as session:
        collection = cash.record_collection(session, actor, instalment_id=instalment_id, **body.model_dump())
        payload = cash.serialize_collection(collection)
        commit(session)
    return json_response(payload, status_code=201)


@router.get(
    "/cash/collections",
    operation_id="list_collections",
    summary="Collections on contracts in your reach; to_approve: those waiting for your decision",
    response_class=Response,
)
def list_collections(
    database: DatabaseDep,
    actor: CurrentActor,
    status: Annotated[CollectionStatus | None, Query()] = None,
    to_approve: Annotated[bool, Query()] = False,
) -> Response:
    with database.reading(actor) as session:
        found = cash.to_approve(session, actor) if to_approve else cash.list_collections(session, actor, status=status)
        items = [cash.serialize_collection(c) for c in found]
    return json_response({"items": items})


def _decide(database: Any, actor: Any, collection_id: int, body: Decision, *, approve: bool) -> Response:
    with database.writing(actor) as session:
        decide = cash.approve_collection if approve else cash.reject_collection
        collection = decide(session, actor, collection_id, note=body.note)
        payload = cash.serialize_collection(collection)
        commit(session)
    return json_response(payload)


@router.post(
    "/cash/collections/{collection_id}/approve",
    operation_id="approve_collection",
    summary="Approve a collection (finance, or the contract owner's manager)",
    response_class=Response,
)
def approve_collection(
    database: DatabaseDep, actor: CurrentActor, collection_id: BigId, body: Annotated[Decision, Body()]
) -> Response:
    return _decide(database, actor, collection_id, body, approve=True)


@router.post(
    "/cash/collections/{collection_id}/reject",
    operation_id="reject_collection",
    summary="Reject a collection (finance, or the contract owner's manager)",
    response_class=Response,
)
def reject_collection(
    database: DatabaseDep, actor: CurrentActor, collection_id: BigId, body: Annotated[Decision, Body()]
) -> Response:
    return _decide(database, actor, collection_id, body, approve=False)


@router.get(
    "/cash/overdue",
    operation_id="list_overdue_instalments",
    summary="Unpaid instalments past their due date on contracts in your reach",
    response_class=Response,
)
def list_overdue(database: DatabaseDep, actor: CurrentActor) -> Response:
    with database.reading(actor) as session:
        items = [
            {
                **cash.PlanLine(line.instalment, line.collected, InstalmentStatus.OVERDUE).as_dict(),
                "contract_number": line.contract.number,
                "contract_title": line.contract.title,
                "owner_id": line.contract.owner_id,
            }
            for line in cash.overdue(session, actor)
        ]
    return json_response({"items": items})


@router.post(
    "/cash/contracts/{contract_id}/invoices",
    operation_id="create_invoice",
    status_code=201,
    summary="A draft invoice (发票) with the buyer's invoice title; the tax number is checked",
    response_class=Response,
)
def create_invoice(
    database: DatabaseDep, actor: CurrentActor, contract_id: BigId, body: Annotated[InvoiceCreate, Body()]
) -> Response:
    with database.writing(actor) as session:
        invoice = cash.create_invoice(session, actor, contract_id=contract_id, values=body.model_dump())
        payload = cash.serialize_invoice(invoice)
        commit(session)
    return json_response(payload, status_code=201)


@router.post(
    "/cash/invoices/{invoice_id}/status",
    operation_id="set_invoice_status",
    summary="Issue (with its number) or void an invoice",
    response_class=Response,
)
def set_invoice_status(
    database: DatabaseDep, actor: CurrentActor, invoice_id: BigId, body: Annotated[InvoiceStatusChange, Body()]
) -> Response:
    with database.writing(actor) as session:
        invoice = cash.set_invoice_status(
            session, actor, invoice_id=invoice_id, status=body.status, number=body.number, issued_on=body.issued_on
        )
        payload = cash.serialize_invoice(invoice)
        commit(session)
    return json_response(payload)
