"""`GET /api/ingest/bot/config`: the network's current config_bot.json."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from flageemonitor.server.api.deps import Authorized, openapi_auth, run_authorized
from flageemonitor.server.api.errors import AUTH_RESPONSES, ApiError
from flageemonitor.server.cache import ConfigView, LookupCache
from flageemonitor.server.core.secretbox import SecretBox, SecretKeyError
from flageemonitor.server.services import configs

router = APIRouter(prefix="/api/ingest", tags=["ingest"])
log = logging.getLogger("flageemonitor.server.ingest")


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def _current(cache: LookupCache, box: SecretBox, session: Session, auth: Authorized) -> ConfigView:
    cached = cache.get("config", auth.network.id)
    if isinstance(cached, ConfigView):
        return cached
    row = configs.latest(session, auth.network.id)
    code = auth.network.code
    if row is None:
        raise ApiError(
            404,
            "config_missing",
            f"network {code!r} has no config yet; the operator must run "
            f"'flageemonitor-server config set --network {code} FILE'",
        )
    try:
        body = configs.served_body(row, box)
    except SecretKeyError as exc:
        log.error("network %s: %s", code, exc)
        raise ApiError(500, "secrets_unavailable", "the server cannot open this network's config secrets; "
                       "the operator must check FLAGEEMONITOR_SECRETS_KEY_FILE") from None
    view = ConfigView(network=code, version=row.version, body=body.encode("utf-8"), etag=row.etag)
    cache.put(auth.generation, "config", auth.network.id, view)
    return view


@router.get(
    "/bot/config",
    responses={
        **AUTH_RESPONSES,
        200: {"content": {"application/json": {"schema": {"type": "object"}}}, "description": "config_bot.json"},
        304: {"description": "unchanged since the ETag sent in If-None-Match"},
    },
    response_class=Response,
    openapi_extra=openapi_auth(
        {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"},
         "description": "ETag of the copy the caller has; 304 when it is still current"}
    ),
)
async def bot_config(request: Request) -> Response:
    cache: LookupCache = request.app.state.cache
    box: SecretBox = request.app.state.box
    view = await run_authorized(request, "config:read", lambda s, auth: _current(cache, box, s, auth))
    if_none_match = request.headers.get("if-none-match")
    headers = {"ETag": view.etag, "Cache-Control": "no-cache", "X-Config-Version": str(view.version)}
    if _matches(if_none_match, view.etag):
        return Response(status_code=304, headers=headers)
    return Response(view.body, media_type="application/json", headers=headers)
