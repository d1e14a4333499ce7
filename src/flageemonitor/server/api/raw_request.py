"""Reading a raw ASGI request's headers and query, for the fast paths in front of the framework."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import Scope


def first_headers(scope: Scope, names: tuple[bytes, ...]) -> dict[bytes, str]:
    """The first value of each of `names` (lower-case) the request carries."""
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in names and name not in found:
            found[name] = value.decode("latin-1")
    return found


def rede_only(scope: Scope) -> tuple[bool, str | None]:
    """(True, `?rede=` as given or None) for a query of `rede` alone or none; (False, None) otherwise."""
    query = scope.get("query_string", b"")
    if not query:
        return True, None
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    if any(name != "rede" for name, _ in pairs):
        return False, None
    return True, pairs[-1][1] if pairs else None
