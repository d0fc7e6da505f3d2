"""Over small random ownership graphs — accounts with owners (or none: the pool), and deals, contacts
and tickets on them, some deleted — what a scoped actor reads is exactly its own accounts and the
accounts of its own live children, and what it may change is exactly its own accounts; by every
way in: the clause, the prepared template (the fast reads), and the lookup a change starts with."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from closeloop.core.clock import utcnow
from closeloop.core.errors import NotFound, ReadOnly
from closeloop.crm import records
from closeloop.crm.accounts.models import Account
from closeloop.crm.accounts.service import ACCOUNTS
from closeloop.crm.contacts.models import Contact
from closeloop.crm.opportunities.models import Opportunity
from closeloop.crm.tickets.models import Ticket
from closeloop.db.scope import RowAccess, parent_read_grants, visibility_clause
from closeloop.db.session import Database
from closeloop.org import service as org_service
from tests.factories import Tenant

#: who may own a record (``None``: nobody, a pool account) and who reads: a rep, another rep, their
#: manager (TEAM scope: both reps and the manager)
OWNERS = ("rep", "rep2", "manager", "director", None)
READERS = ("rep", "rep2", "manager")
CHILD_KINDS = ("opportunity", "contact", "ticket")


@dataclass(frozen=True)
class Child:
    kind: str
    account: int  # index into the graph's accounts
    owner: str | None
    deleted: bool


graphs = st.integers(min_value=1, max_value=5).flatmap(
    lambda size: st.tuples(
        st.lists(st.sampled_from(OWNERS), min_size=size, max_size=size),
        st.lists(
            st.builds(
                Child,
                kind=st.sampled_from(CHILD_KINDS),
                account=st.integers(min_value=0, max_value=size - 1),
                owner=st.sampled_from(OWNERS),
                deleted=st.booleans(),
            ),
            max_size=6,
        ),
    )
)


def test_the_children_that_grant_a_read_of_an_account_are_the_deal_the_contact_and_the_ticket() -> None:
    assert parent_read_grants(Account) == (
        (Contact, "account_id"),
        (Opportunity, "account_id"),
        (Ticket, "account_id"),
    )
    assert parent_read_grants(Opportunity) == ()


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(graph=graphs)
def test_read_is_own_and_parents_of_own_children_write_is_own(
    db: Database, tenant: Tenant, graph: tuple[list[str | None], list[Child]]
) -> None:
    account_owners, children = graph
    user_id = {key: tenant[key].user_id for key in OWNERS if key is not None}
    system = org_service.system_actor(tenant.organization_id)
    with db.unit_of_work(system) as session:
        accounts = [
            Account(organization_id=tenant.organization_id, name=f"客户 {index}", owner_id=user_id.get(owner or ""))
            for index, owner in enumerate(account_owners)
        ]
        session.add_all(accounts)
        session.flush()
        ids = [account.id for account in accounts]
        for child in children:
            common = {
                "organization_id": tenant.organization_id,
                "account_id": ids[child.account],
                "owner_id": user_id.get(child.owner or ""),
                "deleted_at": utcnow() if child.deleted else None,
            }
            if child.kind == "opportunity":
                session.add(Opportunity(name="商机", **common))
            elif child.kind == "contact":
                session.add(Contact(name="联系人", **common))
            else:
                session.add(Ticket(subject="工单", **common))

    for reader in READERS:
        actor = tenant[reader].actor
        reach = actor.owner_ids
        own = {ids[i] for i, owner in enumerate(account_owners) if owner is not None and user_id[owner] in reach}
        parents = {
            ids[child.account]
            for child in children
            if not child.deleted and child.owner is not None and user_id[child.owner] in reach
        }
        with db.reading(actor) as session:
            read = set(
                session.scalars(
                    select(Account.id).where(
                        visibility_clause(actor, Account, access=RowAccess.READ), Account.id.in_(ids)
                    )
                )
            )
            written = set(
                session.scalars(
                    select(Account.id).where(
                        visibility_clause(actor, Account, access=RowAccess.WRITE), Account.id.in_(ids)
                    )
                )
            )
            prepared = set()
            for account_id in ids:  # the prepared statement the fast reads run
                with contextlib.suppress(NotFound):
                    prepared.add(records.read_one(session, actor, ACCOUNTS, account_id)["id"])
            refused, missing = set(), set()
            for account_id in ids:
                try:
                    records.get(session, actor, ACCOUNTS, account_id, access=RowAccess.WRITE)
                except ReadOnly:
                    refused.add(account_id)
                except NotFound:
                    missing.add(account_id)

        assert read == own | parents, reader
        assert prepared == read, reader
        assert written == own, reader
        assert refused == read - own, reader
        assert missing == set(ids) - read, reader
