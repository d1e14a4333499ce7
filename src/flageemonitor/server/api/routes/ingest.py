"""`GET /api/ingest/bot/config`: the network's current config_bot.json."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from flageemonitor.core.image_channel import from_stored
from flageemonitor.server.api.config_poll import ConfigPoll, config_headers, matches
from flageemonitor.server.api.deps import Authorized, openapi_auth, run_authorized
from flageemonitor.server.api.errors import AUTH_RESPONSES, ApiError
from flageemonitor.server.cache import ConfigView, LookupCache
from flageemonitor.server.core.secretbox import SecretBox, SecretKeyError
from flageemonitor.server.services import configs

router = APIRouter(prefix="/api/ingest", tags=["ingest"])
log = logging.getLogger("flageemonitor.server.ingest")


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
        body, etag = configs.delivered_body(row, from_stored(auth.network.image_channel), box)
    except SecretKeyError as exc:
        log.error("network %s: %s", code, exc)
        raise ApiError(500, "secrets_unavailable", "the server cannot open this network's config secrets; "
                       "the operator must check FLAGEEMONITOR_SECRETS_KEY_FILE") from None
    view = ConfigView(network=code, version=row.version, body=body.encode("utf-8"), etag=etag)
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
    """The config; usually answered by `ConfigPollFastPath` when the caller's copy is current."""
    cache: LookupCache = request.app.state.cache
    box: SecretBox = request.app.state.box
    seen: list[Authorized] = []

    def work(s: Session, auth: Authorized) -> ConfigView:
        seen.append(auth)
        return _current(cache, box, s, auth)

    view = await run_authorized(request, "config:read", work)
    headers = request.headers
    poll: ConfigPoll = request.app.state.poll
    poll.remember(request.scope, headers.get("x-bot-token"), headers.get("authorization"),
                  request.query_params.get("rede"), seen[0], view)
    if matches(headers.get("if-none-match"), view.etag):
        return Response(status_code=304, headers=config_headers(view))
    return Response(view.body, media_type="application/json", headers=config_headers(view))
