"""The interface every action module implements.

A remote action runs once per selected endpoint over an already open SSH session (the same
connection the compatibility probe used). A local action runs once, in the proxy. Both declare
their version (reported in results) and honour dry-run: a remote action is never called in
dry-run (the pipeline reports `planned` instead) unless it declares `previews = True` (the
change model, `proxy.changes`: it is then called with `ctx.dry_run` set, sends only read-only
commands and reports its planned changes); a local action receives `ctx.dry_run` and must not
change anything when it is set. `prepare` runs once per run, before any host is contacted (and
in dry runs too); raising there ends the run with no host touched.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.hosts import Host, HostFilter


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class RemoteSession(Protocol):
    """What an action may do on an endpoint. Implemented by the SSH transport."""

    user: str

    @property
    def is_root(self) -> bool: ...

    async def run(
        self,
        command: str | Sequence[str],
        *,
        sudo: bool = False,
        timeout: float | None = None,
        input: str | None = None,
        check: bool = False,
    ) -> CommandResult:
        """Run a command. A sequence is quoted argument by argument (shlex.quote); a string is
        passed to the remote shell as is and must already be quoted. `sudo=True` elevates only
        when the user is not root, feeding the password on stdin. Raises CommandTimeout."""
        ...

    async def put(self, data: bytes, remote_path: str, *, mode: int = 0o644, sudo: bool = False,
                  sha256: str | None = None, backup: str | None = None, owner: str | None = None) -> None:
        """Upload to a temporary name beside `remote_path`, then rename atomically; `sha256`
        verifies the temporary file on the endpoint first, `backup` keeps the current target
        under that path, `owner` (numeric uid:gid) sets the new file's owner."""
        ...


@dataclass
class ActionContext:
    config: BotConfig
    dry_run: bool = False
    args: dict[str, Any] = field(default_factory=dict)  # action-specific CLI options
    state_dir: Path = Path("/flageemonitor/state")
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("flageemonitor.action"))
    command_timeout: float = 120.0
    filters: HostFilter = field(default_factory=HostFilter)  # the request's host selection
    prepared: dict[str, Any] = field(default_factory=dict)  # set by `Action.prepare`, shown in the report
    shared: dict[str, Any] = field(default_factory=dict)  # what `prepare` hands every host's run (not reported)


@dataclass
class ActionOutcome:
    """What an action reports for one host (or, for a local action, for the run).

    `ok` false is a failure. Otherwise `skipped` (the action decided not to act; `detail` says
    why), `planned` (a dry run's answer), `changed` (the endpoint changed, or in a dry run would)
    choose the status; plain `ok` means succeeded without change. `changes` lists the typed
    changes applied or planned (`Change.to_dict()`)."""

    ok: bool
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    changed: bool = False
    changes: list[dict[str, Any]] = field(default_factory=list)
    skipped: bool = False
    planned: bool = False


class Action(ABC):
    name: ClassVar[str]  # canonical name from the catalog
    version: ClassVar[str] = "1.0.0"

    async def prepare(self, ctx: ActionContext, hosts: list[Host]) -> None:  # noqa: B027 - optional hook
        """Once per run, before any host is contacted (downloads, request checks). Raise a
        FlageeError (PrepareFailed, ActionRefused) to end the run with no host touched; put what
        the report should show in `ctx.prepared`."""


class RemoteAction(Action):
    previews: ClassVar[bool] = False  # dry run calls `run` (read-only probe, planned changes)

    @abstractmethod
    async def run(self, session: RemoteSession, host: Host, ctx: ActionContext) -> ActionOutcome:
        ...


class LocalAction(Action):
    @abstractmethod
    async def run_local(self, ctx: ActionContext, hosts: list[Host] | None) -> ActionOutcome:
        """`hosts` is the selection when the action wants one (see `wants_hosts`), else None."""
        ...

    wants_hosts: ClassVar[bool] = False
