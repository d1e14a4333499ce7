"""Web sign-in plumbing: cookies, CSRF, HTTPS detection, where to go after signing in.

- The session cookie (`fm_session`) is HttpOnly, SameSite=Lax, and Secure when the request came
  over HTTPS (directly, or as `X-Forwarded-Proto: https` from FLAGEEMONITOR_TRUSTED_PROXIES).
- CSRF: every POST form carries a token. The sign-in form's token is also in its own cookie
  (SameSite=Strict) and both must match; a signed-in form's token is the session's own. A POST
  whose `Origin` or `Sec-Fetch-Site` says it came from another site is refused before anything.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response

from flageemonitor.server.core.config import Settings

SESSION_COOKIE = "fm_session"
LOGIN_CSRF_COOKIE = "fm_login_csrf"


def via_https(request: Request) -> bool:
    """The request's scheme; a trusted proxy's `X-Forwarded-Proto` already set it (see app)."""
    return request.url.scheme == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, *, max_age: int,
               samesite: str = "lax") -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite=samesite,  # type: ignore[arg-type]
                        secure=via_https(request))


def clear_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, path="/")


def same_origin(request: Request, settings: Settings) -> bool:
    """False when the browser says the POST came from another site (Origin / Sec-Fetch-Site)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return False
    allowed = {request.headers.get("host", "").lower()}
    if settings.public_url:
        allowed.add(urlsplit(settings.public_url).netloc.lower())
    return urlsplit(origin).netloc.lower() in allowed


def tokens_match(expected: str | None, presented: str | None) -> bool:
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def safe_next(target: str | None) -> str:
    """Only a path on this server (no scheme, no host, no `//`) is followed after sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/fleet"
    if any(ord(c) < 33 for c in target) or len(target) > 500:
        return "/fleet"
    return target
