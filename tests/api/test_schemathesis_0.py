"""Schemathesis fuzzing of the API, shard 0 of 2 (the operations and checks are in :mod:`tests.api.fuzzing`)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from closeloop.db.session import Database
from tests.api.fuzzing import MARKS, no_operation_answers_with_a_server_error
from tests.factories import Tenant

pytestmark = MARKS


def test_no_operation_answers_with_a_server_error(client: TestClient, db: Database, tenant: Tenant) -> None:
    no_operation_answers_with_a_server_error(client, db, tenant, shard=0)
