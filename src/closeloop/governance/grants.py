"""Who may hand out which role: nobody grants a role that sees more, or governs more, than they do.

A role may be granted (to a new user, by changing a user's role, or by resetting the password of
someone who holds it) only by an actor who may read every field that role may read, and who holds
every *governing* permission of that role (managing users or the organization, reading or
verifying the audit trail). Record permissions (reading and writing leads, deals, orders …) are
the everyday business of whoever manages users and are not compared.

So an IT director, who manages users but may not see margins, can add reps and managers but
cannot make anyone a CFO — nor reset a CFO's password and sign in as one; and nobody in the
product can mint an administrator above themselves. The operator's command line (the system
actor) is above this rule: it is how the first administrators and finance users are created.
"""

from __future__ import annotations

from closeloop.core.actor import Actor, ActorKind
from closeloop.core.errors import Forbidden
from closeloop.governance.fields import FIELD_RULES, masked_fields
from closeloop.governance.permissions import ROLE_PERMISSIONS, Role

#: permissions that govern the organization rather than work its records
GOVERNING = frozenset({"users:manage", "organization:manage", "audit:read", "audit:verify"})


def can_grant(actor: Actor, role: Role) -> bool:
    if actor.kind is ActorKind.SYSTEM:
        return True
    if not (ROLE_PERMISSIONS[role] & GOVERNING) <= actor.permissions:
        return False
    return all(masked_fields(actor.role, noun) <= masked_fields(role.value, noun) for noun in FIELD_RULES)


def require_grantable(actor: Actor, role: Role, *, field_name: str = "role") -> None:
    if not can_grant(actor, role):
        raise Forbidden(
            f"Your role ({actor.role}) cannot grant the role {role.value}: it sees fields or governs what you do not",
            field_name=field_name,
        )
