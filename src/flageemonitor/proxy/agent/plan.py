"""What the agent actions probe on an endpoint and which changes they derive from it.

One probe (`agent_probe`) reads: the architecture, the installed bundle (VERSION, the marker
holding the installed archive's checksum, the checksums of the archive's key files), the
assets, the agent config, and the agent process (PID file, command line, listening ports).
`config_changes` is `update_endpoint_config`'s part (assets per architecture, the rendered
config, a restart only when something the agent reads changed or it does not run);
`install_changes` adds the bundle (stop, unpack keeping the old tree, setup.sh, marker).
"""

from __future__ import annotations

import contextlib
import io
import json
import posixpath
import shlex
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from flageemonitor.core.agent_conf import AgentSettings, render
from flageemonitor.core.errors import ActionFailed, PrepareFailed
from flageemonitor.core.facts import normalize_arch
from flageemonitor.proxy.actions.base import CommandResult
from flageemonitor.proxy.agent import layout
from flageemonitor.proxy.agent.bundle import Bundle
from flageemonitor.proxy.changes import (
    Change,
    FileState,
    Probe,
    ProbeResult,
    ProcessState,
    PutFile,
    RunCommand,
    Service,
    ServiceChange,
    UnpackArchive,
    parse_process,
    process_probe,
    sha256_hex,
)

SCRIPTS = Service.scripts(layout.SERVICE_NAME, layout.START, layout.STOP)
UNIT = Service.unit_over_scripts(layout.SERVICE_NAME, layout.STOP)
SYSTEMD_RUNS = "[ -d /run/systemd/system ] && echo yes; true"
KEY_MEMBERS = (layout.VERSION_FILE, layout.AGENTD, layout.SETUP, layout.START, layout.STOP)


@dataclass(frozen=True)
class Archive:
    """A bundle archive, checked and loaded once per run."""

    name: str
    sha256: str
    data: bytes
    version: str
    members: dict[str, str]  # endpoint path -> sha256, for KEY_MEMBERS


def inspect_archive(name: str, data: bytes) -> Archive:
    """Check the contract (gzip tar, every member under ariusmonitor/, no absolute paths, no
    `..`, only files, directories and relative links, the key files present); raises
    PrepareFailed naming the archive and the problem."""
    top = posixpath.basename(layout.ROOT)
    members: dict[str, str] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for info in tar.getmembers():
                path = info.name.lstrip("./") if info.name.startswith("./") else info.name
                parts = path.split("/")
                if path.startswith("/") or ".." in parts or parts[0] != top:
                    raise PrepareFailed(f"{name}: member {info.name!r} is outside {top}/")
                if not (info.isfile() or info.isdir() or info.issym()):
                    raise PrepareFailed(f"{name}: member {info.name!r} is not a file, directory or link")
                if info.issym():
                    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), info.linkname))
                    if info.linkname.startswith("/") or resolved.split("/")[0] != top:
                        raise PrepareFailed(f"{name}: link {info.name!r} points outside {top}/")
                endpoint_path = "/" + path.rstrip("/")
                if endpoint_path in KEY_MEMBERS and info.isfile():
                    extracted = tar.extractfile(info)
                    assert extracted is not None
                    members[endpoint_path] = sha256_hex(extracted.read())
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise PrepareFailed(f"{name}: not a readable gzip tar ({exc})") from None
    missing = [p for p in KEY_MEMBERS if p not in members]
    if missing:
        raise PrepareFailed(f"{name}: missing {', '.join(missing)} (see deploy/agent-bundle/LAYOUT.md)")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        extracted = tar.extractfile(layout.VERSION_FILE.lstrip("/"))
        version = extracted.read().decode("utf-8", "replace").strip().splitlines()[0] if extracted else "?"
    return Archive(name, sha256_hex(data), data, version[:40], members)


def inspect_cached(name: str, data: bytes, cached: Path) -> Archive:
    """`inspect_archive`, remembered beside the cached archive (`<sha256>.json`): the cache is
    content-addressed, so what was found in it never changes, and a no-change run does not
    decompress the archives again."""
    memo = cached.with_name(cached.name + ".json")
    try:
        known = json.loads(memo.read_text())
        if known["sha256"] == cached.name:
            return Archive(name, known["sha256"], data, str(known["version"]), dict(known["members"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    archive = inspect_archive(name, data)
    with contextlib.suppress(OSError):  # a read-only cache only costs time
        memo.write_text(json.dumps({"sha256": archive.sha256, "version": archive.version,
                                    "members": archive.members}))
    return archive


@dataclass
class AgentState:
    arch: str
    probe: ProbeResult
    process: ProcessState

    def file(self, path: str) -> FileState:
        return self.probe.file(path)

    @property
    def running(self) -> bool:
        return self.process.runs(layout.AGENTD)

    @property
    def installed(self) -> bool:
        return self.file(layout.AGENTD).exists

    @property
    def version(self) -> str:
        text = self.file(layout.VERSION_FILE).content
        return text.strip().splitlines()[0][:40] if text and text.strip() else ("unknown" if self.installed else "none")

    @property
    def marker(self) -> str:
        return (self.file(layout.MARKER).content or "").strip()

    def service(self, *, setup_runs: bool = False) -> Service:
        return agent_service(self.probe, setup_runs=setup_runs)


def agent_service(probe: ProbeResult, *, setup_runs: bool = False) -> Service:
    """How the agent is started and stopped, from a probe that ran `SYSTEMD_RUNS` as "systemd" and
    looked at the unit: through the unit where systemd is the init system (what setup.sh checks
    before it installs the unit) and the unit is there, or `setup_runs` installs it; else with the
    bundle's scripts."""
    out = probe.outputs.get("systemd")
    systemd = out is not None and out.stdout.strip() == "yes"
    return UNIT if systemd and (probe.file(layout.UNIT).exists or setup_runs) else SCRIPTS


def agent_probe(port: int | None = None, extra: Probe | None = None) -> Probe:
    probe = extra or Probe()
    for path in (layout.VERSION_FILE, layout.MARKER, layout.CONF):
        probe.file(path, content=True)
    for path in KEY_MEMBERS[1:]:
        probe.file(path)
    for asset in layout.ASSETS:
        probe.file(asset.path, content=asset.name.endswith(".conf"))
    probe.file(layout.UNIT)
    probe.command("systemd", SYSTEMD_RUNS)
    probe.command("arch", "uname -m")
    probe.command("agent", process_probe(layout.PIDFILE, port))
    return probe


def agent_state(result: ProbeResult) -> AgentState:
    arch_out = result.outputs.get("arch")
    text = arch_out.stdout.strip() if arch_out else ""
    arch = normalize_arch(text.splitlines()[0]) if text else "unknown"
    proc = result.outputs.get("agent")
    return AgentState(arch, result, parse_process(proc.stdout if proc else ""))


@dataclass
class AgentPlan:
    changes: list[Change] = field(default_factory=list)
    restart_reasons: list[str] = field(default_factory=list)


def config_changes(settings: AgentSettings, state: AgentState, bundle: Bundle, data: dict[str, bytes],
                   only: tuple[str, ...] | None = None) -> AgentPlan:
    """Assets for the endpoint's architecture (`only`: just these asset names) and the agent
    config; the reasons a restart is needed."""
    plan = AgentPlan()
    for asset in layout.assets_for(state.arch):
        if only is not None and asset.name not in only:
            continue
        have = bundle.files.get(asset.name)
        if have is None:
            raise ActionFailed(f"{asset.name} is not in the bundle repository")
        old = state.file(asset.path)
        if old.sha256 == have.sha256 and old.mode == asset.mode:
            continue
        plan.changes.append(PutFile(asset.path, data[asset.name], old, mode=asset.mode,
                                    text=asset.name.endswith(".conf"), label=asset.name))
        if asset.restarts and old.sha256 != have.sha256:
            plan.restart_reasons.append(f"{asset.name} changed")
        if asset.name == layout.LIBS and old.sha256 != have.sha256:
            plan.changes.append(RunCommand(["tar", "-xzf", asset.path, "-C", layout.ROOT],
                                           f"extract {asset.name} into {layout.ROOT}"))
    if only is None:
        text = render(settings).encode()
        old = state.file(layout.CONF)
        if old.sha256 != sha256_hex(text):
            plan.changes.append(PutFile(layout.CONF, text, old, text=True, label="agent config"))
            plan.restart_reasons.append("agent config changed")
    return plan


def undo_setup(result: CommandResult) -> str | None:
    """Shell removing the links setup.sh reported it created (`created: PATH` outside the
    protected files: update-rc.d's and systemctl's links), newest first. The files it creates or
    changes, and the account files, are restored from their copies (`RunCommand.protect`)."""
    steps: list[str] = []
    for line in reversed(result.stdout.splitlines()):
        key, _, value = line.partition(": ")
        value = value.strip()
        if key == "created" and value.startswith("/etc/") and value not in SETUP_PROTECT:
            steps.append(f"rm -f -- {shlex.quote(value)}")
    return "; ".join(steps) or None


ACCOUNT_FILES = ("/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow")
# what setup.sh may write besides links: restored exactly if the install is rolled back
SETUP_PROTECT = (*layout.SETUP_FILES, layout.RC_LOCAL, *ACCOUNT_FILES, *(f"{f}-" for f in ACCOUNT_FILES))


def install_changes(settings: AgentSettings, state: AgentState, bundle: Bundle, data: dict[str, bytes],
                    archive: Archive) -> tuple[list[Change], list[str]]:
    """The bundle (when the installed one differs) plus the config; the start/restart last."""
    changes: list[Change] = []
    reasons: list[str] = []
    stale = [p for p, sha in archive.members.items() if state.file(p).sha256 != sha]
    bundle_changes = state.marker != archive.sha256 or bool(stale)
    if bundle_changes:
        if state.running:
            changes.append(ServiceChange(state.service(), "stop", was_running=True, reason="bundle upgrade"))
        changes.append(UnpackArchive(layout.ROOT, archive.data, f"{archive.name} {archive.version}",
                                     installed=state.version))
        changes.append(RunCommand(["sh", layout.SETUP], f"run {layout.SETUP}", undo=undo_setup,
                                  protect=SETUP_PROTECT))
        reasons.append("bundle installed" if not state.installed else f"bundle {state.version} -> {archive.version}")
    conf = config_changes(settings, state, bundle, data)
    changes += conf.changes
    reasons += conf.restart_reasons
    if bundle_changes:
        changes.append(PutFile(layout.MARKER, f"{archive.sha256}\n".encode(), state.file(layout.MARKER),
                               label="installed bundle"))
    changes += start_changes(state, reasons, stopped=bundle_changes, setup_runs=bundle_changes)
    return changes, reasons


def start_changes(state: AgentState, reasons: list[str], *, stopped: bool = False, setup_runs: bool = False,
                  start_if_stopped: bool = True) -> list[Change]:
    """Restart when something the agent reads changed, start when it does not run (unless
    `start_if_stopped` is false and nothing changed)."""
    running = state.running and not stopped
    if not reasons and (running or not start_if_stopped):
        return []
    why = ", ".join(reasons) if reasons else "not running"
    return [ServiceChange(state.service(setup_runs=setup_runs), "restart" if running else "start",
                          was_running=running, reason=why)]


def load_data(bundle: Bundle) -> dict[str, bytes]:
    return {name: f.read() for name, f in bundle.files.items()}
