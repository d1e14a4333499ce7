"""`GET /api/ingest/bot/config`: the network's current config_bot.json."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Response

from flageemonitor.server import crud
from flageemonitor.server.api.deps import Authorized, SessionDep, require
from flageemonitor.server.api.errors import AUTH_RESPONSES, ApiError

router = APIRouter(prefix="/api/ingest", tags=["ingest"])


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


@router.get(
    "/bot/config",
    responses={
        **AUTH_RESPONSES,
        200: {"content": {"application/json": {"schema": {"type": "object"}}}, "description": "config_bot.json"},
        304: {"description": "unchanged since the ETag sent in If-None-Match"},
    },
    response_class=Response,
)
def bot_config(
    auth: Annotated[Authorized, Depends(require("config:read"))],
    session: SessionDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Any:
    row = crud.latest_config(session, auth.network.id)
    if row is None:
        code = auth.network.code
        raise ApiError(404, "config_missing", f"network {code!r} has no config yet; the operator must run "
                       f"'flageemonitor-server config set --network {code} FILE'")
    headers = {"ETag": row.etag, "Cache-Control": "no-cache", "X-Config-Version": str(row.version)}
    if _matches(if_none_match, row.etag):
        return Response(status_code=304, headers=headers)
    return Response(row.body.encode("utf-8"), media_type="application/json", headers=headers)
