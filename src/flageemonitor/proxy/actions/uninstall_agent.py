"""`uninstall_endpoint_agent` (`pdv_uninstall`): remove exactly what the install put on the
endpoint, and nothing else: stop the agent, the boot integration setup.sh created (systemd unit,
sysv script and its rc?.d links, Slackware rc script and the rc.local block), the sudoers and
cron files, /ariusmonitor, upload leftovers, and the `ariusmonitor` user and group.

Safeguards: a run without a host filter is refused unless `--all` is given; concentrators
(`PARAM_IP_CONCENTRADORES`, `CONCENTRADORES[].ip`, endpoint type CONCENTRADOR) are skipped unless
named explicitly: `--host` with the exact technical name (no wildcard) or `--pdv-ip` with its
address. `--dry-run` / `plan` lists what would be removed.
"""

from __future__ import annotations

from dataclasses import dataclass

from flageemonitor.core import hosts as core_hosts
from flageemonitor.core.errors import ActionRefused
from flageemonitor.core.hosts import Host, HostFilter
from flageemonitor.proxy.actions import register
from flageemonitor.proxy.actions.base import ActionContext, RemoteSession
from flageemonitor.proxy.agent import layout
from flageemonitor.proxy.agent.plan import SYSTEMD_RUNS, UNIT, agent_service
from flageemonitor.proxy.changes import (
    Change,
    ChangeAction,
    FileState,
    Plan,
    Probe,
    ProbeResult,
    PutFile,
    RemovePath,
    RunCommand,
    ServiceChange,
    Skip,
    parse_process,
    process_probe,
)

ACCOUNT_FILES = ("/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow")
# the original's upload paths, and a kept tree of an interrupted install
LEFTOVERS = ("/tmp/ariusmonitor.tar.gz", "/ariusmonitor.tar.gz", "/.ariusmonitor.flagee-prev")  # noqa: S108
# boot links (update-rc.d, systemctl enable) and upload leftovers of interrupted installs
LINKS = ("ls -d /etc/rc[0-6S].d/[SK][0-9][0-9]ariusmonitor /etc/systemd/system/*.wants/ariusmonitor.service "
         "/tmp/.flagee-unpack-*.tar.gz 2>/dev/null; true")


def has_host_filter(filters: HostFilter) -> bool:
    return any([filters.loja, filters.pdv, filters.pdv_ip, filters.host_glob, filters.tags,
                filters.agent_status is not None, filters.trigger_ids, filters.trigger_name])


def named_explicitly(host: Host, filters: HostFilter) -> bool:
    """`--host` with the exact name (no wildcard) or `--pdv-ip` with the host's address."""
    glob = (filters.host_glob or "").strip()
    exact = bool(glob) and not any(c in glob for c in "*?[") and glob.upper() == host.name.upper()
    return exact or host.ip in filters.pdv_ip


def is_concentrator(host: Host, ctx: ActionContext) -> bool:
    return core_hosts.is_concentrator(host, ctx.config.concentrator_ips)


def without_block(text: str) -> str:
    """rc.local without the lines between (and including) the ARIUSMONITOR markers."""
    out, inside = [], False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped == layout.RC_BEGIN:
            inside = True
            continue
        if stripped == layout.RC_END and inside:
            inside = False
            continue
        if not inside:
            out.append(line)
    return "".join(out)


def without_account(text: str, name: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith(f"{name}:"))


@dataclass(frozen=True)
class Wanted:
    host: str


@register
class UninstallEndpointAgent(ChangeAction[Wanted, ProbeResult]):
    name = "uninstall_endpoint_agent"
    version = "2.0.0"

    async def prepare(self, ctx: ActionContext, hosts: list[Host]) -> None:
        if not has_host_filter(ctx.filters) and str(ctx.args.get("all", "")).lower() not in {"1", "true", "yes"}:
            raise ActionRefused(
                f"uninstall_endpoint_agent would remove the agent from all {len(hosts)} selected endpoint(s): "
                "name them (--loja, --pdv, --pdv-ip, --host, --tag, ...) or pass --all")

    def desired(self, host: Host, ctx: ActionContext) -> Wanted | Skip:
        if is_concentrator(host, ctx) and not named_explicitly(host, ctx.filters):
            return Skip("concentrator: not touched unless named explicitly (--host with its exact name, "
                        "or --pdv-ip with its address)")
        return Wanted(host.name)

    async def probe(self, session: RemoteSession, host: Host, ctx: ActionContext, desired: Wanted) -> ProbeResult:
        probe = Probe().file(layout.ROOT).file(layout.STOP).file(layout.RC_LOCAL, content=True)
        for path in (*layout.SETUP_FILES, *LEFTOVERS):
            probe.file(path)
        for path in ACCOUNT_FILES:
            probe.file(path, content=True)
        probe.command("links", LINKS)
        probe.command("systemd", SYSTEMD_RUNS)
        probe.command("agent", process_probe(layout.PIDFILE))
        return await probe.run(session, sudo=not session.is_root, timeout=ctx.command_timeout)

    def changes(self, desired: Wanted, state: ProbeResult, ctx: ActionContext) -> Plan:
        changes: list[Change] = []
        agent = parse_process(state.outputs["agent"].stdout if "agent" in state.outputs else "")
        service = agent_service(state)
        if agent.runs(layout.AGENTD) and state.file(layout.STOP).exists:
            changes.append(ServiceChange(service, "stop", was_running=True, reason="uninstall"))
        links = [ln.strip() for ln in state.outputs["links"].stdout.splitlines() if ln.strip().startswith("/")]
        for path in links:
            kind = "link" if path.startswith("/etc/") else "file"
            changes.append(RemovePath(path, FileState(path, kind=kind)))
        for path in layout.SETUP_FILES:
            if state.file(path).exists:
                changes.append(RemovePath(path, state.file(path)))
        rc_local = state.file(layout.RC_LOCAL)
        if rc_local.content is not None and layout.RC_BEGIN in rc_local.content:
            rest = without_block(rc_local.content)
            if rest.strip() in {"", "#!/bin/sh"}:  # setup.sh created it for the block alone (LAYOUT.md)
                changes.append(RemovePath(layout.RC_LOCAL, rc_local))
            else:
                changes.append(PutFile(layout.RC_LOCAL, rest.encode(), rc_local, mode=rc_local.mode or 0o755,
                                       text=True, label="remove the ARIUSMONITOR block"))
        for path in (layout.ROOT, *LEFTOVERS):
            if state.file(path).exists:
                changes.append(RemovePath(path, state.file(path)))
        if service is UNIT:
            changes.append(RunCommand(["systemctl", "daemon-reload"], "systemctl daemon-reload"))
        for path in ACCOUNT_FILES:
            old = state.file(path)
            if old.content is None:
                continue
            new_text = without_account(old.content, layout.USER)
            if new_text != old.content:  # no diff for the shadow files: their lines hold password hashes
                changes.append(PutFile(path, new_text.encode(), old, mode=old.mode or 0o644,
                                       text="shadow" not in path, label=f"remove {layout.USER}"))
        return Plan(changes, {"agent_running": agent.runs(layout.AGENTD)})
