"""Signing in to the pages with a test client (the form's CSRF token read from the page)."""

from __future__ import annotations

import re

import httpx

from tests.fixtures.server import ControlPlane

PASSWORD = "correct-horse-battery"
_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = _CSRF_RE.search(html)
    assert m, "no csrf_token field on the page"
    return m.group(1)


def create_person(plane: ControlPlane, name: str = "alice", password: str = PASSWORD) -> None:
    """In-process through the service the CLI calls (`admin create` itself is tested in test_cli_admin)."""
    from flageemonitor.server.services import people

    with plane.session() as s:
        people.create(s, name, password, "test")


def admin_token(plane: ControlPlane, name: str = "ci") -> str:
    from flageemonitor.server.services import admin_tokens

    with plane.session() as s:
        return admin_tokens.issue(s, name, "test")[0]


def sign_in(client: httpx.Client, name: str = "alice", password: str = PASSWORD, **extra: str) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"username": name, "password": password, "csrf_token": token, **extra},
                       follow_redirects=False)


