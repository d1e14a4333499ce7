"""Liveness with a database check, for load balancers and the installer."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from flageemonitor import __version__
from flageemonitor.server.api.deps import run_db

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    version: str
    database: Literal["ok", "unreachable"]


def _ping(engine: Any) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


async def _check(request: Request) -> JSONResponse:
    try:
        await run_db(request, lambda: _ping(request.app.state.engine))
    except Exception:  # any driver error means the same thing to a probe
        body = Health(status="unavailable", version=__version__, database="unreachable")
        return JSONResponse(body.model_dump(), status_code=503)
    return JSONResponse(Health(status="ok", version=__version__, database="ok").model_dump())


_RESPONSES: dict[int | str, dict[str, object]] = {503: {"model": Health, "description": "database unreachable"}}


@router.get("/health", response_model=Health, responses=_RESPONSES)
async def health(request: Request) -> JSONResponse:
    return await _check(request)


@router.get("/api/bootstrap/health", response_model=Health, responses=_RESPONSES)
async def bootstrap_health(request: Request) -> JSONResponse:
    return await _check(request)
