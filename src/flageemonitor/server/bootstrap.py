"""Render the packaged installers for one network: defaults become quoted literals.

Shell values are single-quoted with `'` written as `'\\''`: inside single quotes nothing is
special, a newline included, so no value can end the assignment or run anything. PowerShell
values are single-quoted with every single-quote character doubled — including the typographic
ones (U+2018..U+201B), which PowerShell also accepts as quotes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from flageemonitor import __version__, deploy

_PS_QUOTES = "'\u2018\u2019\u201a\u201b"


class RenderError(ValueError):
    """A value cannot be embedded (a NUL byte)."""


@dataclass(frozen=True)
class Rendered:
    body: str
    sha256: str
    media_type: str


def shell_literal(value: str) -> str:
    if "\x00" in value:
        raise RenderError("a value contains a NUL character")
    return "'" + value.replace("'", "'\\''") + "'"


def powershell_literal(value: str) -> str:
    if "\x00" in value:
        raise RenderError("a value contains a NUL character")
    out = "".join(c + c if c in _PS_QUOTES else c for c in value)
    return "'" + out + "'"


def pascal_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.lower().split("_"))


def _replace_placeholder(template: str, block: str) -> str:
    lines = template.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.strip() == deploy.PLACEHOLDER]
    if len(hits) != 1:
        raise RenderError(f"template must contain the line {deploy.PLACEHOLDER!r} exactly once")
    i = hits[0]
    return "".join([*lines[:i], block, *lines[i + 1 :]])


def _ordered(values: dict[str, str]) -> list[tuple[str, str]]:
    missing = [n for n in deploy.DEFAULT_NAMES if n not in values]
    if missing:
        raise RenderError(f"missing installer defaults: {', '.join(missing)}")
    return [(n, values[n]) for n in deploy.DEFAULT_NAMES]


def render_linux(values: dict[str, str]) -> Rendered:
    block = "".join(f"{name}={shell_literal(value)}\n" for name, value in _ordered(values))
    body = _replace_placeholder(deploy.read("linux/install.sh.in"), block)
    return Rendered(body, hashlib.sha256(body.encode("utf-8")).hexdigest(), "text/x-shellscript")


def render_windows(values: dict[str, str]) -> Rendered:
    block = "".join(f"${pascal_name(name)} = {powershell_literal(value)}\n" for name, value in _ordered(values))
    body = _replace_placeholder(deploy.read("windows/install.ps1.in"), block)
    return Rendered(body, hashlib.sha256(body.encode("utf-8")).hexdigest(), "text/plain")


def installer_version() -> str:
    return __version__
