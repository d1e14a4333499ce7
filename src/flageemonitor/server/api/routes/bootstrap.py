"""`GET /api/bootstrap/install.sh|install.ps1`: installers rendered for the token's network."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from flageemonitor.server import bootstrap
from flageemonitor.server.api.deps import Authorized, SettingsDep, require
from flageemonitor.server.api.errors import AUTH_RESPONSES
from flageemonitor.server.core.config import Settings

router = APIRouter(prefix="/api/bootstrap", tags=["bootstrap"])

AuthDep = Annotated[Authorized, Depends(require("bootstrap:read"))]


def installer_values(auth: Authorized, settings: Settings, request: Request) -> dict[str, str]:
    server_url = settings.public_url or str(request.base_url).rstrip("/")
    net = auth.network
    return {
        "DEFAULT_SERVER_URL": server_url,
        "DEFAULT_API_BASE": server_url + "/api/ingest",
        "DEFAULT_REDE": net.code,
        "DEFAULT_IMAGE": net.image or settings.default_image,
        "DEFAULT_RUNTIME_NAME": net.runtime_name or settings.default_runtime_name,
        "DEFAULT_CONTAINER_ROOT": net.container_root or settings.default_container_root,
        "DEFAULT_TIMEZONE": net.timezone or settings.default_timezone,
        "DEFAULT_WATCHTOWER_IMAGE": settings.watchtower_image,
        "DEFAULT_WATCHTOWER_INTERVAL": str(settings.watchtower_interval),
        "INSTALLER_VERSION": bootstrap.installer_version(),
    }


def _respond(rendered: bootstrap.Rendered) -> Response:
    return Response(
        rendered.body.encode("utf-8"),
        media_type=rendered.media_type,
        headers={"Cache-Control": "no-store", "X-Content-SHA256": rendered.sha256},
    )


@router.get(
    "/install.sh",
    response_class=Response,
    responses={**AUTH_RESPONSES, 200: {"content": {"text/x-shellscript": {"schema": {"type": "string"}}}}},
)
def install_sh(auth: AuthDep, settings: SettingsDep, request: Request) -> Response:
    return _respond(bootstrap.render_linux(installer_values(auth, settings, request)))


@router.get(
    "/install.ps1",
    response_class=Response,
    responses={**AUTH_RESPONSES, 200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def install_ps1(auth: AuthDep, settings: SettingsDep, request: Request) -> Response:
    return _respond(bootstrap.render_windows(installer_values(auth, settings, request)))
