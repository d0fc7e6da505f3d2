"""Property-based fuzzing of every operation in the API's OpenAPI description (schemathesis).

Valid and invalid requests, with random ids and with the ids of real records, as the admin: no
answer may be a server error, and answers the description documents must match it. The number of
examples per operation is ``CLOSELOOP_FUZZ_EXAMPLES`` (default 12), so the run stays short.

The operations are split into shards (``test_schemathesis_<n>.py``), one test file each, so that
the suite's workers share the fuzzing instead of one of them doing all of it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from closeloop.db.session import Database
from closeloop.org import service as org_service
from closeloop.org.models import User
from tests.factories import Tenant
from tests.samples import SPEC_BY_PLURAL, Api

# Committing: thousands of writes in one rolled-back transaction would exhaust PostgreSQL's lock table.
MARKS = [pytest.mark.slow, pytest.mark.committing]
SHARDS = 2

EXAMPLES = int(os.environ.get("CLOSELOOP_FUZZ_EXAMPLES", "12"))
RECORD_PATH = re.compile(r"^/v1/(?P<plural>[a-z_]+)/\{record_id\}")


def real_ids(client: TestClient, db: Database, tenant: Tenant) -> dict[str, int]:
    """An existing record for every ``/v1/<plural>/{record_id}`` path, made by the sales VP."""
    maker = Api(client, tenant["sales_vp"])
    ids = {plural: maker.create(plural, spec.body(maker))["id"] for plural, spec in SPEC_BY_PLURAL.items()}
    ids["users"] = tenant["rep"].user_id
    with db.unit_of_work(None, system=True) as session:
        user = session.get(User, tenant["admin"].user_id)
        assert user is not None
        token, _ = org_service.issue_token(
            session, org_service.system_actor(tenant.organization_id), user=user, name="fuzzed"
        )
        ids["auth"] = token.id
    return ids


def fuzz(strategy: Any, call: Callable[[Any], None]) -> str | None:
    """Run ``call`` on up to EXAMPLES cases; the first failure's description, if any."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        call(case)

    try:
        run()
    except Unsatisfiable:  # no invalid request exists for an operation without parameters
        return None
    except Exception as error:  # the failure, with hypothesis's falsifying example in its notes
        notes = "\n".join(getattr(error, "__notes__", []))
        return f"{type(error).__name__}: {error}\n{notes}"
    return None


def no_operation_answers_with_a_server_error(
    client: TestClient, db: Database, tenant: Tenant, *, shard: int, shards: int = SHARDS
) -> None:
    """Fuzz every ``shards``-th operation of the description, starting at ``shard``."""
    headers = tenant["admin"].headers
    ids = real_ids(client, db, tenant)
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", client.app)
    failures: dict[str, str] = {}
    operations = 0

    for index, result in enumerate(schema.get_all_operations()):
        operation = result.ok()  # type: ignore[union-attr]  # an unusable operation fails the run loudly
        operations += 1
        if index % shards != shard:
            continue
        match = RECORD_PATH.match(operation.path)
        strategies = [operation.as_strategy(generation_mode=mode) for mode in GenerationMode]
        if match and match["plural"] in ids:
            path = {"record_id": ids[match["plural"]]}
            strategies.append(operation.as_strategy(generation_mode=GenerationMode.POSITIVE, path_parameters=path))

        def call(case: Any) -> None:
            response = case.call(headers=headers, timeout=60)  # a loaded CI machine is slow, not broken
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance], headers=headers)

        for strategy in strategies:
            failure = fuzz(strategy, call)
            if failure is not None:
                failures[operation.label] = failure
                break

    assert operations >= 90
    assert failures == {}, "\n\n".join(f"{label}\n{failure}" for label, failure in failures.items())
