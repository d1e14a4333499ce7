"""`GET /metrics` in the Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Response

from flageemonitor.server.metrics import render_latest

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, include_in_schema=False)
def metrics() -> Response:
    body, content_type = render_latest()
    return Response(body, media_type=content_type)
