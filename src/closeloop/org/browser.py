"""Browser sessions: what the signed session cookie holds, and who it stands for.

The cookie (signed, HttpOnly, SameSite=Lax) holds the user id, the user's *session version* at
sign-in and a CSRF token. A password change, a deactivation or a role change bumps the user's
session version, which ends every session signed in before it — including copies of the cookie.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, MutableMapping
from typing import Any

from closeloop.core.actor import Actor
from closeloop.db.session import Database
from closeloop.org import service as org_service
from closeloop.org.models import User

USER_KEY = "user_id"
VERSION_KEY = "session_version"
CSRF_KEY = "csrf"
LOCALE_KEY = "locale"


def start(session_data: MutableMapping[str, Any], user: User) -> None:
    """Sign ``user`` in: a fresh session (never reuse an earlier one's CSRF token)."""
    session_data.clear()
    session_data[USER_KEY] = user.id
    session_data[VERSION_KEY] = user.session_version
    session_data[CSRF_KEY] = secrets.token_urlsafe(32)
    if user.locale:
        session_data[LOCALE_KEY] = user.locale


def credentials(session_data: Mapping[str, Any]) -> tuple[int, int] | None:
    """``(user id, session version)`` from the cookie, or ``None`` when nobody is signed in."""
    user_id, version = session_data.get(USER_KEY), session_data.get(VERSION_KEY)
    if isinstance(user_id, int) and isinstance(version, int):
        return user_id, version
    return None


def csrf_matches(session_data: Mapping[str, Any], sent: str | None) -> bool:
    expected = session_data.get(CSRF_KEY)
    return bool(expected and sent and secrets.compare_digest(str(expected), sent))


def resolve(database: Database, user_id: int, session_version: int) -> tuple[User, Actor] | None:
    """The signed-in user and what they may do; ``None`` if the session was ended since."""
    with database.reading(None, system=True) as session:
        user = session.get(User, user_id)
        if user is None or not user.is_active or user.session_version != session_version:
            return None
        return user, org_service.actor_for(session, user)
