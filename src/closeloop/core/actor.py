"""Who is acting: a user, an API token, the system, an automation rule or an assistant."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum


class ActorKind(StrEnum):
    USER = "user"
    TOKEN = "token"  # noqa: S105 - the kind of actor, not a secret
    SYSTEM = "system"
    RULE = "rule"
    ASSISTANT = "assistant"


class RowScope(StrEnum):
    """How far an actor's reading reaches inside its organization."""

    OWN = "own"  # records the actor owns
    TEAM = "team"  # records owned by the actor or anyone reporting to them, directly or not
    ALL = "all"  # every record of the organization


@dataclass(frozen=True, slots=True)
class Actor:
    """An authenticated caller, resolved once per request, job or command.

    ``owner_ids`` is the set of user ids whose records the actor may see when its scope is
    OWN or TEAM; it is ignored for ALL.
    """

    organization_id: int
    role: str
    kind: ActorKind
    label: str
    permissions: frozenset[str]
    scope: RowScope
    user_id: int | None = None
    token_id: int | None = None
    owner_ids: frozenset[int] = field(default_factory=frozenset)
    locale: str = "zh_CN"
    request_id: str | None = None

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def with_request(self, request_id: str | None, locale: str | None = None) -> Actor:
        """This actor acting for one request (whose language, when given, its answer is in)."""
        return replace(self, request_id=request_id, locale=locale or self.locale)
