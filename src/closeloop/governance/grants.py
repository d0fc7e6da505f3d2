"""Who may hand out which role: nobody grants a role that sees more, or governs more, than they do.

A role may be granted (to a new user, by changing a user's role, or by resetting the password of
someone who holds it) only by an actor who may read every field that role may read, and who holds
every *governing* permission of that role (managing users, the organization or its schema,
reading or verifying the audit trail). Record permissions (reading and writing leads, deals, orders …) are
the everyday business of whoever manages users and are not compared.

So an IT director, who manages users but may not see margins, can add reps and managers but
cannot make anyone a CFO — nor reset a CFO's password and sign in as one, nor demote or deactivate
a CFO (what one cannot grant back, one cannot take away); and nobody in the
product can mint an administrator above themselves. The operator's command line (the system
actor) is above this rule: it is how the first administrators and finance users are created.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from closeloop.core.actor import Actor, ActorKind
from closeloop.core.errors import Forbidden
from closeloop.governance.fields import FIELD_RULES, policy_of
from closeloop.governance.permissions import ROLE_PERMISSIONS, Role

#: permissions that govern the organization rather than work its records
GOVERNING = frozenset({"users:manage", "organization:manage", "schema:manage", "audit:read", "audit:verify"})


def can_grant(session: Session | None, actor: Actor, role: Role) -> bool:
    """Whether ``actor`` may hand out ``role``, under the organization's field masks as configured
    (a role that reads or edits a field the actor may not is out of reach)."""
    if actor.kind is ActorKind.SYSTEM:
        return True
    if not (ROLE_PERMISSIONS[role] & GOVERNING) <= actor.permissions:
        return False
    matrix = policy_of(session, actor)
    nouns = set(FIELD_RULES) | {noun for noun, _ in matrix.configured}
    return all(
        matrix.masked(actor.role, noun) <= matrix.masked(role.value, noun)
        and matrix.read_only(actor.role, noun) <= matrix.read_only(role.value, noun) | matrix.masked(role.value, noun)
        for noun in nouns
    )


def require_grantable(session: Session | None, actor: Actor, role: Role, *, field_name: str = "role") -> None:
    if not can_grant(session, actor, role):
        raise Forbidden(
            f"Your role ({actor.role}) cannot grant the role {role.value}: it sees fields or governs what you do not",
            field_name=field_name,
        )


def require_takeable(session: Session | None, actor: Actor, role: Role, *, field_name: str = "role") -> None:
    """The mirror of :func:`require_grantable`: changing a user's ``role`` to another one, or
    deactivating its holder, takes the role away — allowed only to those who could grant it back
    (an IT director who could demote a CFO could never restore them)."""
    if not can_grant(session, actor, role):
        raise Forbidden(
            f"Your role ({actor.role}) cannot take away the role {role.value}, as it could not grant it back: "
            "it sees fields or governs what you do not",
            field_name=field_name,
        )
