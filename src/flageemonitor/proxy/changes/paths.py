"""Changes made from what is already on the endpoint (the counterparts of `model.PutFile`,
which uploads): a symbolic link, a copy of an endpoint file, a directory, a dated backup, and a
command that ends the session by design (a power-off).

Same rules as `model`: a replaced path lands atomically (built under a temporary name beside
it, then renamed over it), its previous version is kept as `.<name>.flagee-prev` until the
action verified (`undo_script` puts it back, `commit_script` drops it), every value is quoted.
"""

from __future__ import annotations

import posixpath
import re
import secrets
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flageemonitor.core.errors import ActionFailed, CommandTimeout, HostUnreachable
from flageemonitor.proxy.changes.model import ApplyContext, Change, kept_path
from flageemonitor.proxy.changes.probe import FileState

_q = shlex.quote


def _temp_beside(path: str) -> str:
    directory, name = posixpath.split(path)
    return posixpath.join(directory or "/", f".{name}.flagee-{secrets.token_hex(6)}")


def _keep_current(path: str) -> str:
    """Shell keeping `path` (a file or a link, not followed) as its kept version, if it exists."""
    p, prev = _q(path), _q(kept_path(path))
    return (f"{{ {{ [ ! -e {p} ] && [ ! -L {p} ]; }} || "
            f"{{ rm -f -- {prev} && {{ ln -- {p} {prev} 2>/dev/null || cp -pP -- {p} {prev}; }}; }}; }}")


def _describe(state: FileState) -> str:
    if not state.exists:
        return "absent"
    if state.kind == "link":
        return f"-> {state.target}"
    return f"{state.kind} {state.short()}"


@dataclass
class _ReplacesPath(Change):
    """A change that replaces `path` (probed as `old`) and keeps its previous version."""

    path: str
    old: FileState

    def _check_target(self) -> None:
        if self.old.kind == "dir":
            raise ActionFailed(f"{self.path} is a directory; refusing to replace it")

    async def _replace(self, ctx: ApplyContext, build: str, temp: str) -> None:
        """`build` creates `temp`; then the current path is kept and `temp` renamed over it."""
        self._check_target()
        script = (f"{build} && {_keep_current(self.path)} && mv -f -- {_q(temp)} {_q(self.path)}; "
                  f"rc=$?; [ $rc -eq 0 ] || rm -f -- {_q(temp)}; exit $rc")
        result = await ctx.sh(script, check=False)
        if not result.ok:
            tail = (result.stderr or result.stdout).strip()[-300:]
            raise ActionFailed(f"{self.summary()} failed (exit {result.exit_status}): {tail or 'no output'}")

    def undo_script(self) -> str:
        if self.old.exists:  # no kept version: it failed before replacing anything
            prev = _q(kept_path(self.path))
            return f"{{ [ ! -e {prev} ] && [ ! -L {prev} ]; }} || mv -f -- {prev} {_q(self.path)}"
        return f"rm -f -- {_q(self.path)}"

    def commit_script(self) -> str | None:
        return f"rm -f -- {_q(kept_path(self.path))}" if self.old.exists else None

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "path": self.path, "old": _describe(self.old)}


@dataclass
class PutLink(_ReplacesPath):
    """Make `path` a symbolic link to `target` (the link text, written as given)."""

    target: str = ""
    kind: str = "put_link"

    def summary(self) -> str:
        return f"link {self.path} -> {self.target} (was {_describe(self.old)})"

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "target": self.target}

    async def apply(self, ctx: ApplyContext) -> None:
        temp = _temp_beside(self.path)
        await self._replace(ctx, f"ln -s -- {_q(self.target)} {_q(temp)}", temp)


@dataclass
class CopyFile(_ReplacesPath):
    """Replace `path` with a copy of `source`, a file already on the endpoint whose probed
    checksum is `sha256` (verified on the copy before it replaces anything)."""

    source: str = ""
    sha256: str = ""
    mode: int = 0o644
    kind: str = "copy_file"

    def summary(self) -> str:
        return f"copy {self.source} to {self.path}: {_describe(self.old)} -> {self.sha256[:12]}"

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "source": self.source, "new_sha256": self.sha256}

    async def apply(self, ctx: ApplyContext) -> None:
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"not a sha256 hex digest: {self.sha256!r}")
        temp = _temp_beside(self.path)
        t = _q(temp)
        build = (f"cp -- {_q(self.source)} {t} && chmod {self.mode:o} {t} && set -- $(sha256sum {t}) && "
                 f"{{ [ \"$1\" = {self.sha256} ] || {{ echo \"{self.source} changed while copying\" >&2; false; }}; }}")
        await self._replace(ctx, build, temp)


@dataclass
class MakeDir(Change):
    """Create the directory `path` (its parent must exist); removed again on rollback."""

    path: str
    mode: int = 0o755
    kind: str = "make_dir"

    def summary(self) -> str:
        return f"create directory {self.path} (mode {self.mode:04o})"

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "path": self.path}

    async def apply(self, ctx: ApplyContext) -> None:
        await ctx.sh(f"mkdir -m {self.mode:o} -- {_q(self.path)}")

    def undo_script(self) -> str:
        return f"rmdir -- {_q(self.path)}"


# ------------------------------------------------------------------ dated backups
def _stem_ext(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    return (stem, dot + ext) if stem else (name, "")


def backup_name(path: str, when: datetime, n: int = 1) -> str:
    """`/posnet/CliSiTef.ini` at 2026-03-10 23:30:00 -> `/posnet/CliSiTef-bkp-20260310-233000.ini`
    (`n` > 1: `...-233000-2.ini`, for a second backup within the same second)."""
    directory, name = posixpath.split(path)
    stem, ext = _stem_ext(name)
    extra = f"-{n}" if n > 1 else ""
    return posixpath.join(directory, f"{stem}-bkp-{when:%Y%m%d-%H%M%S}{extra}{ext}")


def existing_backups(path: str, names: Iterable[str]) -> list[str]:
    """The dated backups of `path` among the file `names` of its directory, oldest first."""
    directory, name = posixpath.split(path)
    stem, ext = _stem_ext(name)
    pattern = re.compile(re.escape(stem) + r"-bkp-(\d{8}-\d{6})(?:-(\d+))?" + re.escape(ext))
    found = [(m.group(1), int(m.group(2) or 1), n) for n in (x.strip() for x in names) if (m := pattern.fullmatch(n))]
    return [posixpath.join(directory, n) for *_, n in sorted(found)]


def backup_plan(path: str, names: Sequence[str], when: datetime, keep: int) -> tuple[str, list[str]]:
    """(the new backup's path, the older backups to delete so that `keep` remain with it)."""
    if keep < 1:
        raise ValueError("keep at least one backup")
    old = existing_backups(path, names)
    n = 1
    while backup_name(path, when, n) in old:
        n += 1
    return backup_name(path, when, n), old[: max(0, len(old) - (keep - 1))]


@dataclass
class BackupCopy(Change):
    """Copy `path` (mode and times kept) to the dated `backup`; once the action verified, the
    older backups in `prune` are deleted (a rollback removes the new copy and deletes nothing)."""

    path: str
    backup: str
    prune: list[str] = field(default_factory=list)
    kind: str = "backup"

    def summary(self) -> str:
        dropped = f", dropping {len(self.prune)} older" if self.prune else ""
        return f"back up {self.path} as {self.backup}{dropped}"

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "path": self.path, "backup": self.backup, "prune": list(self.prune)}

    async def apply(self, ctx: ApplyContext) -> None:
        await ctx.sh(f"cp -p -- {_q(self.path)} {_q(self.backup)}")

    def undo_script(self) -> str:
        return f"rm -f -- {_q(self.backup)}"

    def commit_script(self) -> str | None:
        return "rm -f -- " + " ".join(_q(p) for p in self.prune) if self.prune else None


# ------------------------------------------------------------------ ending the session
@dataclass
class EndSession(Change):
    """A command that ends the endpoint's session by design (a power-off). It is handed to a
    detached process that starts it `delay_s` seconds later, so the command that sends it
    returns cleanly; a connection that drops while sending it counts as sent. Nothing to undo."""

    command: Sequence[str]
    description: str
    delay_s: int = 1
    kind: str = "end_session"

    def summary(self) -> str:
        return self.description

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "command": " ".join(_q(a) for a in self.command)}

    def script(self) -> str:
        inner = f"trap '' HUP; sleep {int(self.delay_s)}; exec " + " ".join(_q(a) for a in self.command)
        return f"( {inner} ) </dev/null >/dev/null 2>&1 &"

    async def apply(self, ctx: ApplyContext) -> None:
        try:
            result = await ctx.sh(self.script(), check=False)
        except (HostUnreachable, CommandTimeout):
            return  # the endpoint went down under the command meant to take it down
        if not result.ok:
            tail = (result.stderr or result.stdout).strip()[-300:]
            raise ActionFailed(f"{self.description} could not be started (exit {result.exit_status}): {tail}")
