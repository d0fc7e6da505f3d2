"""What every command shares: the database, the organization and the actor it acts as, error output."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from sqlalchemy import select

from closeloop.config import settings
from closeloop.core import i18n
from closeloop.core.actor import Actor
from closeloop.core.errors import DomainError
from closeloop.db.session import Database, connect
from closeloop.org import service as org_service
from closeloop.org.models import Organization, OrganizationKind, User

console = Console()
errors = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def database() -> Database:
    return connect(settings.effective_database_url, app_role=settings.database_app_role)


def fail(message: str, code: int = 1) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def reports_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Turn domain errors into one line on stderr and exit status 1 (2 for bad input)."""

    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except DomainError as error:
            raise fail(str(error), 2 if error.status in (400, 422) else 1) from None

    return wrapper


def resolve_organization(db: Database, reference: str | None) -> Organization:
    """``--org`` by slug, id or name; without it, the only seller organization there is."""
    with db.reading(None, system=True) as session:
        if reference:
            return org_service.find_organization(session, reference)
        sellers = list(
            session.scalars(
                select(Organization).where(Organization.kind == OrganizationKind.SELLER.value).order_by(Organization.id)
            )
        )
    if len(sellers) == 1:
        return sellers[0]
    if not sellers:
        raise fail("there is no organization yet: run 'closeloop demo' or 'closeloop org create NAME'")
    names = ", ".join(o.slug for o in sellers)
    raise fail(f"several organizations exist ({names}); choose one with --org")


def resolve_actor(db: Database, organization: Organization, username: str | None, *, label: str) -> Actor:
    """``--as USERNAME`` acts as that user (with its row scope and field masks); default: the system."""
    if username is None:
        return org_service.system_actor(organization.id, label=label)
    with db.reading(None, system=True) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None or user.organization_id != organization.id:
            raise fail(f"no user '{username}' in {organization.slug}")
        return org_service.actor_for(session, user)


@contextmanager
def exit_on_interrupt() -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        errors.print("interrupted")
        sys.exit(130)


__all__ = ["Any", "console", "database", "errors", "fail", "reports_errors", "resolve_actor", "resolve_organization"]


#: ``--lang`` of the commands that report in the reader's language
LANGUAGES = {"zh": "zh_CN", "zh_CN": "zh_CN", "en": "en"}


def report_language(option: str | None, organization: Organization | None, *, user: User | None = None) -> str:
    """The language a command reports in: ``--lang zh|en``; else the environment (``CLOSELOOP_LANG``,
    then ``LC_ALL`` / ``LC_MESSAGES`` / ``LANG`` when they name Chinese or English — ``C`` and
    ``POSIX`` name neither); else the acting user's own setting; else the organization's default."""
    if option is not None:
        if option not in LANGUAGES:
            raise typer.BadParameter(f"'{option}' is not zh or en", param_hint="--lang")
        return LANGUAGES[option]
    for variable in ("CLOSELOOP_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable, "").split(".")[0]
        if value:
            found = i18n.accepted_language(value)
            if found is not None:
                return found
            if variable == "CLOSELOOP_LANG":
                raise fail(f"CLOSELOOP_LANG={value} is not zh or en", 2)
    return i18n.language(None, user.locale if user else None, organization.default_locale if organization else None)
