"""Building the remote command line: quoting and privilege elevation (pure functions)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from enum import StrEnum


class SudoMode(StrEnum):
    NONE = "none"          # run as the login user (root, or no elevation asked)
    PASSWORDLESS = "n"     # `sudo -n`: NOPASSWD rule or no password known
    PASSWORD = "S"  # noqa: S105 - `sudo -S -p ''` with the password as the first stdin line


def command_text(command: str | Sequence[str]) -> str:
    """A sequence is quoted argument by argument; a string is taken as an already quoted line."""
    if isinstance(command, str):
        return command
    if not command:
        raise ValueError("empty command")
    return " ".join(shlex.quote(str(arg)) for arg in command)


def elevate(command: str | Sequence[str], mode: SudoMode) -> str:
    """The command line for `mode`. A string runs under `sh -c` so the WHOLE command list is
    elevated, not only its first simple command."""
    if mode is SudoMode.NONE:
        return command_text(command)
    prefix = "sudo -n" if mode is SudoMode.PASSWORDLESS else "sudo -S -p ''"
    return f"{prefix} {_elevated_part(command)}"


def _elevated_part(command: str | Sequence[str]) -> str:
    return f"sh -c {shlex.quote(command)}" if isinstance(command, str) else command_text(command)


def elevate_deciding(command: str | Sequence[str], mark: str) -> str:
    """The command line for a user whose password is known but whose sudo mode is not yet:
    the endpoint tries `sudo -n` first and otherwise gives sudo the password, in the same
    command. The branch taken is written to stderr as `<mark>n` or `<mark>S` (first line).
    stdin is `stdin_for(SudoMode.PASSWORD, ...)`: the `sudo -n` branch reads the password line
    itself, so the command sees only the caller's data either way."""
    if not mark.replace("@", "").replace("-", "").replace(":", "").isalnum():
        raise ValueError(f"not a plain marker: {mark!r}")
    inner = _elevated_part(command)
    return (f"if sudo -n true 2>/dev/null; then echo '{mark}{SudoMode.PASSWORDLESS.value}' >&2; "
            f"read -r flagee_pw; exec sudo -n {inner}; "
            f"else echo '{mark}{SudoMode.PASSWORD.value}' >&2; exec sudo -S -p '' {inner}; fi")


def stdin_for(mode: SudoMode, password: str | None, data: str | None) -> str | None:
    """What to feed on stdin: the password line first when sudo reads it, then the caller's data."""
    if mode is SudoMode.PASSWORD:
        return f"{password or ''}\n{data or ''}"
    return data
