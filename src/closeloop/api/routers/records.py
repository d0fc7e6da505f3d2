"""Routes for every CRM record type, plus the record-specific actions (stage moves, lead conversion)."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, ExpectedVersion, commit, json_response
from closeloop.api.idempotency import run_create
from closeloop.api.resources import RecordEndpoints, RecordId, record_body, record_response, record_router
from closeloop.crm.accounts import service as account_service
from closeloop.crm.accounts.schemas import AccountCreate, AccountUpdate
from closeloop.crm.activities import service as activity_service
from closeloop.crm.activities.schemas import ActivityCreate, ActivityUpdate
from closeloop.crm.contacts import service as contact_service
from closeloop.crm.contacts.schemas import ContactCreate, ContactUpdate
from closeloop.crm.contracts import service as contract_service
from closeloop.crm.contracts.schemas import ContractCreate, ContractUpdate
from closeloop.crm.leads import service as lead_service
from closeloop.crm.leads.schemas import LeadAssign, LeadConvert, LeadCreate, LeadUpdate
from closeloop.crm.opportunities import service as opportunity_service
from closeloop.crm.opportunities.schemas import OpportunityCreate, OpportunityUpdate, StageMove
from closeloop.crm.orders import service as order_service
from closeloop.crm.orders.schemas import OrderCreate, OrderUpdate
from closeloop.crm.products import service as product_service
from closeloop.crm.products.schemas import ProductCreate, ProductLineCreate, ProductLineUpdate, ProductUpdate
from closeloop.crm.quotes import service as quote_service
from closeloop.crm.quotes.schemas import QuoteCreate, QuoteUpdate
from closeloop.crm.referrals import service as referral_service
from closeloop.crm.referrals.schemas import ReferralCreate, ReferralUpdate
from closeloop.crm.tasks import service as task_service
from closeloop.crm.tasks.schemas import TaskCreate, TaskUpdate
from closeloop.crm.tickets import service as ticket_service
from closeloop.crm.tickets.schemas import TicketCreate, TicketUpdate

router = APIRouter()

_LINE = list[dict[str, Any]]

ENDPOINTS = [
    RecordEndpoints(
        account_service.ACCOUNTS,
        AccountCreate,
        AccountUpdate,
        create=account_service.create_account,
        update=lambda s, a, *, record_id, data, expected_version: account_service.update_account(
            s, a, account_id=record_id, data=data, expected_version=expected_version
        ),
        delete=lambda s, a, *, record_id, expected_version: account_service.delete_account(
            s, a, account_id=record_id, expected_version=expected_version
        ),
    ),
    RecordEndpoints(
        contact_service.CONTACTS,
        ContactCreate,
        ContactUpdate,
        create=contact_service.create_contact,
        update=lambda s, a, *, record_id, data, expected_version: contact_service.update_contact(
            s, a, contact_id=record_id, data=data, expected_version=expected_version
        ),
        delete=lambda s, a, *, record_id, expected_version: contact_service.delete_contact(
            s, a, contact_id=record_id, expected_version=expected_version
        ),
    ),
    RecordEndpoints(
        lead_service.LEADS,
        LeadCreate,
        LeadUpdate,
        create=lead_service.create_lead,
        update=lambda s, a, *, record_id, data, expected_version: lead_service.update_lead(
            s, a, lead_id=record_id, data=data, expected_version=expected_version
        ),
        delete=lambda s, a, *, record_id, expected_version: lead_service.delete_lead(
            s, a, lead_id=record_id, expected_version=expected_version
        ),
    ),
    RecordEndpoints(
        opportunity_service.OPPORTUNITIES,
        OpportunityCreate,
        OpportunityUpdate,
        create=opportunity_service.create_opportunity,
        update=lambda s, a, *, record_id, data, expected_version: opportunity_service.update_opportunity(
            s, a, opportunity_id=record_id, data=data, expected_version=expected_version
        ),
        delete=lambda s, a, *, record_id, expected_version: opportunity_service.delete_opportunity(
            s, a, opportunity_id=record_id, expected_version=expected_version
        ),
        read_extra={"product_line_ids": list[int]},
    ),
    RecordEndpoints(
        product_service.PRODUCT_LINES,
        ProductLineCreate,
        ProductLineUpdate,
        create=product_service.create_product_line,
        update=lambda s, a, *, record_id, data, expected_version: product_service.update_product_line(
            s, a, product_line_id=record_id, data=data, expected_version=expected_version
        ),
        delete=lambda s, a, *, record_id, expected_version: product_service.delete_product_line(
            s, a, product_line_id=record_id, expected_version=expected_version
        ),
    ),
    RecordEndpoints(
        product_service.PRODUCTS,
        ProductCreate,
        ProductUpdate,
        create=product_service.create_product,
        update=lambda s, a, *, record_id, data, expected_version: product_service.update_product(
            s, a, product_id=record_id, data=data, expected_version=expected_version
        ),
        delete=lambda s, a, *, record_id, expected_version: product_service.delete_product(
            s, a, product_id=record_id, expected_version=expected_version
        ),
    ),
    RecordEndpoints(
        quote_service.QUOTES,
        QuoteCreate,
        QuoteUpdate,
        create=quote_service.create_quote,
        update=lambda s, a, *, record_id, data, expected_version: quote_service.update_quote(
            s, a, quote_id=record_id, data=data, expected_version=expected_version
        ),
        delete=lambda s, a, *, record_id, expected_version: quote_service.delete_quote(
            s, a, quote_id=record_id, expected_version=expected_version
        ),
        read_extra={"lines": _LINE},
    ),
    RecordEndpoints(
        contract_service.CONTRACTS,
        ContractCreate,
        ContractUpdate,
        create=contract_service.create_contract,
        update=lambda s, a, *, record_id, data, expected_version: contract_service.update_contract(
            s, a, contract_id=record_id, data=data, expected_version=expected_version
        ),
        delete=lambda s, a, *, record_id, expected_version: contract_service.delete_contract(
            s, a, contract_id=record_id, expected_version=expected_version
        ),
    ),
    RecordEndpoints(
        order_service.ORDERS,
        OrderCreate,
        OrderUpdate,
        create=order_service.place_order,
        update=lambda s, a, *, record_id, data, expected_version: order_service.update_order(
            s, a, order_id=record_id, data=data, expected_version=expected_version
        ),
        delete=lambda s, a, *, record_id, expected_version: order_service.delete_order(
            s, a, order_id=record_id, expected_version=expected_version
        ),
        read_extra={"lines": _LINE},
    ),
    RecordEndpoints(
        activity_service.ACTIVITIES,
        ActivityCreate,
        ActivityUpdate,
        create=activity_service.log_activity,
        update=lambda s, a, *, record_id, data, expected_version: activity_service.update_activity(
            s, a, activity_id=record_id, data=data, expected_version=expected_version
        ),
        delete=lambda s, a, *, record_id, expected_version: activity_service.delete_activity(
            s, a, activity_id=record_id, expected_version=expected_version
        ),
    ),
    RecordEndpoints(
        ticket_service.TICKETS,
        TicketCreate,
        TicketUpdate,
        create=ticket_service.open_ticket,
        update=lambda s, a, *, record_id, data, expected_version: ticket_service.update_ticket(
            s, a, ticket_id=record_id, data=data, expected_version=expected_version
        ),
        delete=lambda s, a, *, record_id, expected_version: ticket_service.delete_ticket(
            s, a, ticket_id=record_id, expected_version=expected_version
        ),
    ),
    RecordEndpoints(
        referral_service.REFERRALS,
        ReferralCreate,
        ReferralUpdate,
        create=referral_service.record_referral,
        update=lambda s, a, *, record_id, data, expected_version: referral_service.update_referral(
            s, a, referral_id=record_id, data=data, expected_version=expected_version
        ),
        delete=lambda s, a, *, record_id, expected_version: referral_service.delete_referral(
            s, a, referral_id=record_id, expected_version=expected_version
        ),
    ),
    RecordEndpoints(
        task_service.TASKS,
        TaskCreate,
        TaskUpdate,
        create=task_service.create_task,
        update=lambda s, a, *, record_id, data, expected_version: task_service.update_task(
            s, a, task_id=record_id, data=data, expected_version=expected_version
        ),
        delete=lambda s, a, *, record_id, expected_version: task_service.delete_task(
            s, a, task_id=record_id, expected_version=expected_version
        ),
    ),
]


#: one router per record type, each under its own prefix; the record-specific actions join them
routers = {spec.record_type.plural: record_router(spec) for spec in ENDPOINTS}


@routers["opportunities"].post(
    "/{record_id}/stage",
    tags=["opportunities"],
    operation_id="move_opportunity_stage",
    summary="Move an opportunity to another stage",
    response_class=Response,
)
def move_stage(
    database: DatabaseDep,
    actor: CurrentActor,
    record_id: RecordId,
    expected_version: ExpectedVersion,
    body: Annotated[StageMove, Body()],
) -> Response:
    """The same move the pipeline board makes: stage history and audit are written; *lost* needs a reason."""
    with database.writing(actor) as session:
        opportunity = opportunity_service.move_stage(
            session,
            actor,
            opportunity_id=record_id,
            stage=body.stage,
            lost_reason=body.lost_reason,
            expected_version=expected_version,
        )
        response = record_response(session, actor, opportunity_service.OPPORTUNITIES, opportunity)
        commit(session)
        return response


@routers["opportunities"].get(
    "/{record_id}/stage-history",
    tags=["opportunities"],
    operation_id="opportunity_stage_history",
    summary="Stage history of an opportunity",
    response_class=Response,
)
def stage_history(database: DatabaseDep, actor: CurrentActor, record_id: RecordId) -> Response:
    with database.reading(actor) as session:
        changes = opportunity_service.stage_history(session, actor, opportunity_id=record_id)
        return json_response(
            {
                "items": [
                    {
                        "from_stage": c.from_stage,
                        "to_stage": c.to_stage,
                        "changed_by_id": c.changed_by_id,
                        "changed_at": c.changed_at,
                        "duration_seconds": c.duration_seconds,
                    }
                    for c in changes
                ]
            }
        )


@routers["leads"].post(
    "/{record_id}/assign",
    tags=["leads"],
    operation_id="assign_lead",
    summary="Assign a lead to a rep (or back to the inbox)",
    response_class=Response,
)
def assign_lead(
    database: DatabaseDep,
    actor: CurrentActor,
    record_id: RecordId,
    expected_version: ExpectedVersion,
    body: Annotated[LeadAssign, Body()],
) -> Response:
    with database.writing(actor) as session:
        lead = lead_service.assign_lead(
            session, actor, lead_id=record_id, owner_id=body.owner_id, expected_version=expected_version
        )
        response = record_response(session, actor, lead_service.LEADS, lead)
        commit(session)
        return response


@routers["leads"].post(
    "/{record_id}/convert",
    tags=["leads"],
    operation_id="convert_lead",
    status_code=201,
    summary="Convert a lead into account, contact and opportunity in one step",
    response_class=Response,
)
def convert_lead(
    request: Request,
    database: DatabaseDep,
    actor: CurrentActor,
    record_id: RecordId,
    expected_version: ExpectedVersion,
    body: Annotated[LeadConvert, Body()],
) -> Response:
    """All or nothing: if any part is invalid, nothing is created and the lead is unchanged."""

    with database.writing(actor) as session:

        def produce() -> tuple[int, Any, str | None, int | None]:
            result = lead_service.convert_lead(
                session, actor, lead_id=record_id, data=body, expected_version=expected_version
            )
            payload = {
                "lead": record_body(session, actor, lead_service.LEADS, result.lead),
                "account": record_body(session, actor, account_service.ACCOUNTS, result.account),
                "contact": record_body(session, actor, contact_service.CONTACTS, result.contact)
                if result.contact
                else None,
                "opportunity": record_body(session, actor, opportunity_service.OPPORTUNITIES, result.opportunity)
                if result.opportunity
                else None,
            }
            warnings = session.info.pop("duplicate_warnings", None)
            if warnings:  # merged into an existing account, or a duplicate let through (CN-2)
                payload["duplicate_warnings"] = warnings
            return 201, payload, f"/api/v1/accounts/{result.account.id}", result.lead.id

        return run_create(request, session, actor, {"lead": record_id, **body.model_dump(mode="json")}, produce)


for _router in routers.values():
    router.include_router(_router)
