"""`GET /api/bootstrap/install.sh|install.ps1`: installers rendered for the token's network."""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Request, Response

from flageemonitor.server import bootstrap
from flageemonitor.server.api.deps import Authorized, openapi_auth, run_authorized
from flageemonitor.server.api.errors import AUTH_RESPONSES, ApiError
from flageemonitor.server.core.config import Settings

router = APIRouter(prefix="/api/bootstrap", tags=["bootstrap"])


def installer_values(auth: Authorized, settings: Settings, server_url: str) -> dict[str, str]:
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


def _server_url(request: Request, settings: Settings) -> str:
    """The address installers point proxies at: the configured public URL, else this request's
    own URL when its Host is allowed (FLAGEEMONITOR_ALLOWED_HOSTS, loopback, or the address the
    server listens on). Any other Host is refused: it would send the proxy and its token there."""
    if settings.public_url:
        return settings.public_url
    host = (request.url.hostname or "").lower().rstrip(".")
    if host in settings.allowed_hosts or host == "localhost" or _loopback(host) or _local_socket(request, host):
        return str(request.base_url).rstrip("/")
    raise ApiError(
        400,
        "host_not_allowed",
        f"this server does not render installers for the host name {host[:100]!r}: the operator must set "
        "FLAGEEMONITOR_PUBLIC_URL (or list the name in FLAGEEMONITOR_ALLOWED_HOSTS)",
    )


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _local_socket(request: Request, host: str) -> bool:
    server = request.scope.get("server")
    return server is not None and host.strip("[]") == str(server[0]).lower()


async def _installer(request: Request, windows: bool) -> Response:
    settings: Settings = request.app.state.settings
    server_url = _server_url(request, settings)

    def values(_session: object, auth: Authorized) -> dict[str, str]:
        return installer_values(auth, settings, server_url)

    rendered_values = await run_authorized(request, "bootstrap:read", values)
    rendered = (bootstrap.render_windows if windows else bootstrap.render_linux)(rendered_values)
    return Response(
        rendered.body.encode("utf-8"),
        media_type=rendered.media_type,
        headers={"Cache-Control": "no-store", "X-Content-SHA256": rendered.sha256},
    )


@router.get(
    "/install.sh",
    response_class=Response,
    responses={**AUTH_RESPONSES, 200: {"content": {"text/x-shellscript": {"schema": {"type": "string"}}}}},
    openapi_extra=openapi_auth(),
)
async def install_sh(request: Request) -> Response:
    return await _installer(request, windows=False)


@router.get(
    "/install.ps1",
    response_class=Response,
    responses={**AUTH_RESPONSES, 200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    openapi_extra=openapi_auth(),
)
async def install_ps1(request: Request) -> Response:
    return await _installer(request, windows=True)
