"""Typed changes to an endpoint: each describes itself (for the report and `plan`), applies
itself over the session, and knows how to undo and how to clean up after success.

Rules every change keeps:
- files land atomically: uploaded to a temporary name beside the target, their checksum verified
  on the endpoint, the current version kept as `.<name>.flagee-prev` beside it, then renamed over
  it (`RemoteSession.put`); removed paths are renamed aside the same way;
- `undo_script` restores what `apply` replaced (run in reverse order on rollback), `late_undo`
  runs after every file is back (service restarts), `commit_script` drops the kept versions;
- every value reaching a shell is quoted; every remote step has the context's timeout.
"""

from __future__ import annotations

import difflib
import hashlib
import posixpath
import secrets
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flageemonitor.core.errors import ActionFailed
from flageemonitor.proxy.actions.base import CommandResult, RemoteSession
from flageemonitor.proxy.changes.probe import FileState
from flageemonitor.proxy.changes.service import Service

_q = shlex.quote
DIFF_MAX_LINES = 200


@dataclass
class ApplyContext:
    """What applying a change needs: the session, whether to elevate, the per-command bound."""

    session: RemoteSession
    sudo: bool
    timeout: float

    async def sh(self, script: str, *, check: bool = True) -> CommandResult:
        return await self.session.run(script, sudo=self.sudo, timeout=self.timeout, check=check)


def kept_path(path: str) -> str:
    """Where the previous version of `path` is kept while a change is applied."""
    directory, name = posixpath.split(path.rstrip("/"))
    return posixpath.join(directory or "/", f".{name}.flagee-prev")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def unified_diff(old: str, new: str, path: str) -> str:
    """A unified diff of two texts (bounded to DIFF_MAX_LINES lines)."""
    lines = list(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                      fromfile=f"{path} (endpoint)", tofile=f"{path} (wanted)"))
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines[:DIFF_MAX_LINES])
    if len(lines) > DIFF_MAX_LINES:
        text += f"... {len(lines) - DIFF_MAX_LINES} more diff lines\n"
    return text


class Change:
    """One small change. Subclasses set `kind` and implement `summary` and `apply`."""

    kind: str = "change"

    def summary(self) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "summary": self.summary()}

    async def apply(self, ctx: ApplyContext) -> None:
        raise NotImplementedError

    def undo_script(self) -> str | None:
        """Shell that restores the state before `apply` (None: nothing to undo)."""
        return None

    def late_undo(self) -> str | None:
        """Shell run on rollback after every undo_script (e.g. restart a service on the
        restored files). Identical scripts of several changes run once."""
        return None

    def commit_script(self) -> str | None:
        """Shell that drops what was kept for a rollback, once the action verified."""
        return None


@dataclass
class PutFile(Change):
    """Upload `data` to `path` (mode `mode`); `old` is the probed state. With `text`, the
    description carries a unified diff when the old content was read back."""

    path: str
    data: bytes
    old: FileState
    mode: int = 0o644
    text: bool = False
    label: str = ""
    keep: bool = False  # keep the previous version after success (as .<name>.flagee-prev)
    owner: str | None = None  # numeric uid:gid; default: the old file's owner when it exists
    kind: str = "put_file"

    @property
    def sha256(self) -> str:
        return sha256_hex(self.data)

    def summary(self) -> str:
        what = f" ({self.label})" if self.label else ""
        if not self.old.exists:
            return f"create {self.path}{what}: {self.sha256[:12]}, mode {self.mode:04o}"
        if self.old.sha256 == self.sha256:
            return f"chmod {self.path}{what}: {self.old.mode or 0:04o} -> {self.mode:04o}"
        return f"update {self.path}{what}: {self.old.short()} -> {self.sha256[:12]}"

    def diff(self) -> str | None:
        if not self.text:
            return None
        try:
            new = self.data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if self.old.exists and self.old.content is None:
            return None
        return unified_diff(self.old.content or "", new, self.path) or None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(path=self.path, old_sha256=self.old.sha256, new_sha256=self.sha256, mode=f"{self.mode:04o}")
        diff = self.diff()
        if diff:
            out["diff"] = diff
        return out

    async def apply(self, ctx: ApplyContext) -> None:
        owner = self.owner
        if owner is None and self.old.exists and self.old.uid is not None and self.old.gid is not None:
            owner = f"{self.old.uid}:{self.old.gid}"
        await ctx.session.put(self.data, self.path, mode=self.mode, sudo=ctx.sudo, sha256=self.sha256,
                              backup=kept_path(self.path) if self.old.exists else None, owner=owner)

    def undo_script(self) -> str:
        prev = kept_path(self.path)
        if self.old.exists:  # no kept version: the upload failed before replacing anything
            return f"[ ! -e {_q(prev)} ] || mv -f -- {_q(prev)} {_q(self.path)}"
        return f"rm -f -- {_q(self.path)}"

    def commit_script(self) -> str | None:
        if self.keep or not self.old.exists:
            return None
        return f"rm -f -- {_q(kept_path(self.path))}"


@dataclass
class RemovePath(Change):
    """Remove a file, link or directory tree: renamed aside on apply, deleted on commit."""

    path: str
    old: FileState
    kind: str = "remove_path"

    def summary(self) -> str:
        what = "directory" if self.old.kind == "dir" else self.old.kind
        return f"remove {what} {self.path}" + (f" ({self.old.short()})" if self.old.sha256 else "")

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "path": self.path, "old_sha256": self.old.sha256}

    async def apply(self, ctx: ApplyContext) -> None:
        prev = kept_path(self.path)
        await ctx.sh(f"rm -rf -- {_q(prev)} && mv -f -- {_q(self.path)} {_q(prev)}")

    def undo_script(self) -> str:
        return f"[ ! -e {_q(kept_path(self.path))} ] || mv -f -- {_q(kept_path(self.path))} {_q(self.path)}"

    def commit_script(self) -> str:
        return f"rm -rf -- {_q(kept_path(self.path))}"


@dataclass
class RunCommand(Change):
    """Run a command (an argv list, quoted here, or already quoted shell text). `protect`: files
    the command may change, copied aside before it runs and restored (or removed, when they did
    not exist) by the undo. `undo` adds undo shell built from the command's result (e.g. remove
    what a setup script reported it created); it runs before the protected files are restored."""

    command: Sequence[str] | str
    description: str
    undo: Callable[[CommandResult], str | None] | None = None
    protect: tuple[str, ...] = ()
    kind: str = "run_command"
    result: CommandResult | None = field(default=None, init=False)
    existed: list[str] = field(default_factory=list, init=False)

    def summary(self) -> str:
        return self.description

    def text(self) -> str:
        return self.command if isinstance(self.command, str) else " ".join(_q(a) for a in self.command)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "command": self.text()}

    async def apply(self, ctx: ApplyContext) -> None:
        if self.protect:
            keep = "; ".join(f"if [ -e {_q(p)} ]; then cp -p -- {_q(p)} {_q(kept_path(p))} || exit 1; echo {_q(p)}; fi"
                             for p in self.protect)
            saved = await ctx.sh(keep)
            self.existed = [line for line in saved.stdout.splitlines() if line in self.protect]
        self.result = await ctx.sh(self.text(), check=False)
        if not self.result.ok:
            tail = (self.result.stderr or self.result.stdout).strip()[-300:]
            raise ActionFailed(f"{self.description} failed (exit {self.result.exit_status}): {tail or 'no output'}")

    def undo_script(self) -> str | None:
        steps = [s for s in [self.undo(self.result) if self.undo and self.result else None] if s]
        for path in self.protect:
            if path in self.existed:
                steps.append(f"mv -f -- {_q(kept_path(path))} {_q(path)}")
            else:
                steps.append(f"rm -f -- {_q(path)}")
        return "; ".join(steps) or None

    def commit_script(self) -> str | None:
        return "; ".join(f"rm -f -- {_q(kept_path(p))}" for p in self.existed) or None


@dataclass
class UnpackArchive(Change):
    """Unpack a gzip tar whose members all live under `root` (e.g. `/ariusmonitor`) into its
    parent directory. The archive is uploaded to a temporary file (checksum verified), the
    current tree is kept as a copy beside it, the archive is extracted over it and removed."""

    root: str
    data: bytes
    label: str
    installed: str  # what the endpoint has now ("none", a version)
    kind: str = "unpack_archive"
    had_tree: bool = True

    def summary(self) -> str:
        return f"unpack {self.label} ({sha256_hex(self.data)[:12]}) into {self.root} (installed: {self.installed})"

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "path": self.root, "new_sha256": sha256_hex(self.data)}

    async def apply(self, ctx: ApplyContext) -> None:
        parent = posixpath.dirname(self.root.rstrip("/")) or "/"
        upload = posixpath.join("/tmp", f".flagee-unpack-{secrets.token_hex(6)}.tar.gz")  # noqa: S108
        await ctx.session.put(self.data, upload, mode=0o600, sudo=ctx.sudo, sha256=sha256_hex(self.data))
        prev = kept_path(self.root)
        root = _q(self.root)
        await ctx.sh(
            f"rm -rf -- {_q(prev)} && {{ [ ! -d {root} ] || cp -a -- {root} {_q(prev)}; }} && "
            f"tar -xzf {_q(upload)} -C {_q(parent)}; rc=$?; rm -f -- {_q(upload)}; exit $rc"
        )

    def undo_script(self) -> str:
        prev = _q(kept_path(self.root))
        return f"rm -rf -- {_q(self.root)} && {{ [ ! -d {prev} ] || mv -f -- {prev} {_q(self.root)}; }}"

    def commit_script(self) -> str:
        return f"rm -rf -- {_q(kept_path(self.root))}"


@dataclass
class ServiceChange(Change):
    """Start, stop or restart a service (see `service.Service`). On rollback the service is put
    back as it was: stopped before the files are restored when it was not running, restarted on
    the restored files when it was."""

    service: Service
    verb: str  # start | stop | restart
    was_running: bool
    reason: str = ""
    kind: str = "service"

    def summary(self) -> str:
        return f"{self.verb} {self.service.label}" + (f" ({self.reason})" if self.reason else "")

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "service": self.service.name, "verb": self.verb}

    async def apply(self, ctx: ApplyContext) -> None:
        result = await ctx.sh(self.service.command(self.verb), check=False)
        if not result.ok:
            tail = (result.stderr or result.stdout).strip()[-300:]
            journal = self.service.journal_command()
            if journal:  # systemctl only says "see journalctl": say what the journal says
                logged = (await ctx.sh(journal, check=False)).stdout.strip()
                if logged:
                    tail = f"{tail} | journal: {' | '.join(logged.splitlines())[-400:]}"
            raise ActionFailed(f"{self.verb} {self.service.label} failed (exit {result.exit_status}): {tail}")

    def undo_script(self) -> str | None:
        """A service that was not running is stopped before the files are restored (its files
        may go away with them)."""
        return None if self.was_running or self.verb == "stop" else self.service.command("stop")

    def late_undo(self) -> str | None:
        """A service that was running is restarted on the restored files."""
        return self.service.command("restart") if self.was_running else None


async def rollback(applied: list[Change], ctx: ApplyContext) -> list[str]:
    """Undo `applied` in reverse order, then the late undos (deduplicated). Returns the errors
    (empty: everything restored). Each step runs even when an earlier one failed."""
    errors: list[str] = []
    scripts = [s for c in reversed(applied) if (s := c.undo_script())]
    late: list[str] = []
    for change in applied:
        script = change.late_undo()
        if script and script not in late:
            late.append(script)
    for script in [*scripts, *late]:
        try:
            result = await ctx.sh(script, check=False)
        except Exception as exc:  # keep restoring what can be restored
            errors.append(f"{script[:80]}: {exc}")
            continue
        if not result.ok:
            errors.append(f"{script[:80]}: exit {result.exit_status} {(result.stderr or result.stdout).strip()[-120:]}")
    return errors


async def commit(applied: list[Change], ctx: ApplyContext) -> None:
    """Drop the kept versions in one command (a failure leaves harmless leftovers)."""
    scripts = [s for c in applied if (s := c.commit_script())]
    if scripts:
        await ctx.sh("; ".join(scripts), check=False)
