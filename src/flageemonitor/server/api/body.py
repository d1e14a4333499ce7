"""Reading a JSON request body within bounds: size on the wire, gzip, size once decoded."""

from __future__ import annotations

import zlib
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from flageemonitor.server.api.errors import ApiError

M = TypeVar("M", bound=BaseModel)


async def read_limited(request: Request, limit: int) -> bytes:
    """The raw body; 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "body_too_large", f"request body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"request body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def decode(raw: bytes, encoding: str | None, decoded_limit: int) -> bytes:
    """Undo `Content-Encoding` (identity or gzip), never inflating past `decoded_limit` bytes."""
    name = (encoding or "identity").strip().lower()
    if name in ("", "identity"):
        return raw
    if name not in ("gzip", "x-gzip"):
        raise ApiError(415, "unsupported_encoding", f"Content-Encoding {name!r} not supported: send gzip or none")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(raw, decoded_limit + 1)
    except zlib.error:
        raise ApiError(400, "bad_gzip", "body is not valid gzip") from None
    if len(out) > decoded_limit or inflater.unconsumed_tail:
        raise ApiError(413, "body_too_large", f"decompressed body over {decoded_limit} bytes")
    if not inflater.eof:
        raise ApiError(400, "bad_gzip", "gzip body is truncated")
    return out


def parse(model: type[M], data: bytes) -> M:
    """The validated body; 400 for what is not JSON, 422 naming the first bad field otherwise."""
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        first = errors[0]
        if first["type"] == "json_invalid":
            raise ApiError(400, "invalid_json", "body is not valid JSON") from None
        where = ".".join(str(p) for p in first["loc"]) or "body"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ApiError(422, "invalid_body", f"{where}: {first['msg']}{more}") from None
