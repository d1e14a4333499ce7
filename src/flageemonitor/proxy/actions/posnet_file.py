"""What the actions that own one file of the point-of-sale software under /posnet share
(kwnfce.conf, CliSiTef.ini): the wanted bytes, owner root, mode 0644.

Probe (one round trip): the directory, the file with its exact bytes, the directory's names
(for the dated backups). Changes, only what differs: create /posnet when missing, a dated copy
of a previous content that differs (the last `PARAM_POSNET_BACKUP_KEEP` kept, older ones
deleted once the new file verified), the file uploaded and renamed into place atomically.
Verify: the file reads back with the wanted checksum, mode and owner; otherwise the previous
file is restored and the host reports `failed`, "rolled back".
"""

from __future__ import annotations

import posixpath
import shlex
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from flageemonitor.core.hosts import Host
from flageemonitor.proxy.actions.base import ActionContext, RemoteSession
from flageemonitor.proxy.actions.clock import action_time
from flageemonitor.proxy.changes import ApplyContext, Change, ChangeAction, FileState, Plan, Probe, PutFile, sha256_hex
from flageemonitor.proxy.changes.paths import BackupCopy, MakeDir, backup_plan

MODE = 0o644
ROOT_OWNER = "0:0"


@dataclass(frozen=True)
class PosnetState:
    directory: FileState
    file: FileState
    names: tuple[str, ...]  # entries of the directory


@dataclass(frozen=True)
class Rendered:
    data: bytes
    data_for_report: dict[str, Any]
    notes: tuple[str, ...] = ()


def file_ok(state: FileState, sha256: str) -> bool:
    return (state.kind == "file" and state.sha256 == sha256 and state.mode == MODE
            and state.uid == 0 and state.gid == 0)


class PosnetFileAction(ChangeAction[Any, PosnetState]):
    """Subclasses set `path` and implement `render` (the wanted bytes from the desired state
    and the endpoint's current file)."""

    path: ClassVar[str]

    @abstractmethod
    def render(self, desired: Any, current: FileState) -> Rendered: ...

    @property
    def directory(self) -> str:
        return posixpath.dirname(self.path)

    async def probe(self, session: RemoteSession, host: Host, ctx: ActionContext, desired: Any) -> PosnetState:
        probe = Probe().file(self.directory).file(self.path, data=True)
        probe.command("names", f"ls -1a {shlex.quote(self.directory)} 2>/dev/null; true")
        result = await probe.run(session, sudo=not session.is_root, timeout=ctx.command_timeout)
        names = tuple(n for n in result.outputs["names"].stdout.splitlines() if n not in {"", ".", ".."})
        return PosnetState(result.file(self.directory), result.file(self.path), names)

    def changes(self, desired: Any, state: PosnetState, ctx: ActionContext) -> Plan:
        rendered = self.render(desired, state.file)
        wanted = sha256_hex(rendered.data)
        data = {"path": self.path, "sha256": wanted, "current": state.file.to_dict(), **rendered.data_for_report}
        if file_ok(state.file, wanted):
            return Plan([], data, list(rendered.notes))
        changes: list[Change] = []
        if not state.directory.exists:
            changes.append(MakeDir(self.directory))
        if state.file.exists and state.file.sha256 != wanted:
            when, _ = action_time(ctx)
            backup, prune = backup_plan(self.path, state.names, when, ctx.config.PARAM_POSNET_BACKUP_KEEP)
            changes.append(BackupCopy(self.path, backup, prune))
        label = ""
        if state.file.exists and (state.file.uid, state.file.gid) != (0, 0):
            label = f"owner {state.file.uid}:{state.file.gid} -> root"
        changes.append(PutFile(self.path, rendered.data, state.file, mode=MODE, text=True, owner=ROOT_OWNER,
                               label=label))
        return Plan(changes, data, list(rendered.notes))

    async def verify(self, apply: ApplyContext, desired: Any, state: PosnetState, plan: Plan) -> str | None:
        result = await Probe().file(self.path).run(apply.session, sudo=apply.sudo, timeout=apply.timeout)
        found = result.file(self.path)
        if file_ok(found, plan.data["sha256"]):
            return None
        return (f"{self.path} did not read back as written (sha256 {found.short()}, mode "
                f"{found.mode or 0:04o}, owner {found.uid}:{found.gid})")
