"""The data asset map (GOV-7): read it, maintain an entry, export it as CSV or XLSX."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, ExpectedVersion, commit, json_response
from closeloop.core.clock import utcnow
from closeloop.crm import assets
from closeloop.integrations import exporting
from closeloop.integrations.exporting import ExportFormat

router = APIRouter(tags=["data asset map"])


@router.get(
    "/data-assets",
    operation_id="list_data_assets",
    summary="Who produces, consumes and answers for each record type, field group and metric",
    response_class=Response,
)
def list_data_assets(database: DatabaseDep, actor: CurrentActor) -> Response:
    with database.reading(actor) as session:
        return json_response({"items": assets.rows(session, actor)})


@router.get(
    "/data-assets/export",
    operation_id="export_data_assets",
    summary="The data asset map as CSV or XLSX",
    response_class=Response,
)
def export_data_assets(
    database: DatabaseDep,
    actor: CurrentActor,
    format: Annotated[ExportFormat, Query(description="csv or xlsx")] = ExportFormat.CSV,
) -> Response:
    with database.reading(actor) as session:
        table = assets.export_rows(session, actor)
    if format is ExportFormat.XLSX:
        content = exporting.table_xlsx(assets.COLUMNS, table, sheet_name="data assets")
    else:
        content = exporting.table_csv(assets.COLUMNS, table)
    name = f"data-assets-{utcnow().date().isoformat()}.{format.value}"
    return Response(
        content,
        media_type=exporting.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


AssetKind = Annotated[str, Path(max_length=20, description="record_type, field_group or metric")]
AssetKey = Annotated[str, Path(max_length=80, description="e.g. account, opportunity.finance, funnel")]

_MAINTAIN = (
    "Only the fields sent change; the others keep their value (for an asset never maintained: the defaults "
    "the map shows). `accountable_user_id` must be an active user who may read the whole asset, masked "
    "fields included (422 naming it otherwise); send it as `null` to clear it."
)


@router.patch(
    "/data-assets/{kind}/{key}",
    operation_id="change_data_asset",
    summary="Change who produces, consumes or answers for an asset (needs schema:manage)",
    description=_MAINTAIN,
    response_class=Response,
)
def change_data_asset(
    database: DatabaseDep,
    actor: CurrentActor,
    kind: AssetKind,
    key: AssetKey,
    expected_version: ExpectedVersion,
    body: Annotated[assets.AssetUpdate, Body()],
) -> Response:
    return maintain_data_asset(database, actor, kind, key, expected_version, body)


@router.put(
    "/data-assets/{kind}/{key}",
    operation_id="maintain_data_asset",
    summary="Say who produces, consumes and answers for an asset (needs schema:manage)",
    description=f"The same as PATCH (kept for existing clients): {_MAINTAIN}",
    response_class=Response,
)
def maintain_data_asset(
    database: DatabaseDep,
    actor: CurrentActor,
    kind: AssetKind,
    key: AssetKey,
    expected_version: ExpectedVersion,
    body: Annotated[assets.AssetUpdate, Body()],
) -> Response:
    with database.writing(actor) as session:
        entry = assets.maintain(session, actor, kind=kind, key=key, data=body, expected_version=expected_version)
        response = json_response(entry)
        commit(session)
        return response
