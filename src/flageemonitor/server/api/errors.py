"""JSON error bodies an operator can act on."""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel


class ErrorBody(BaseModel):
    error: str
    message: str


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers or {}


async def api_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(
        {"error": exc.error, "message": exc.message}, status_code=exc.status, headers=exc.headers
    )


def signing_unavailable(exc: Exception) -> ApiError:
    """The signing key file cannot be read: logged in full, answered without the path."""
    logging.getLogger("flageemonitor.server").error("%s", exc)
    return ApiError(500, "signing_unavailable", "the server cannot read its config signing key; "
                    "the operator must check FLAGEEMONITOR_SIGNING_KEY_FILE")


TOKEN_HINT = "check the client token and network (FLAGEEMONITOR_TOKEN / --rede)"  # noqa: S105

AUTH_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorBody, "description": "the token covers several networks and no ?rede= was given"},
    401: {"model": ErrorBody, "description": "token missing, malformed or unknown"},
    403: {"model": ErrorBody, "description": "token revoked, expired, out of scope or for another network"},
    404: {"model": ErrorBody, "description": "the network has nothing to serve yet"},
    429: {"model": ErrorBody, "description": "too many failed authentications from this address"},
}
