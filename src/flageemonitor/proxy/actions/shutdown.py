"""`shutdown_endpoint` (`pdv_shutdown`, `shutdown_host`): power an endpoint off, only inside
`shutdown_window` read in the config's time zone, never a concentrator or an address in
`shutdown_exception_ips` (`core.shutdown`).

`changed`: the power-off was handed to the endpoint (`/sbin/shutdown -h now`, started detached a
second later so the session's end is not mistaken for a failure). `skipped`: why not (outside
the window, exception, concentrator). A dry run says "would" or why not. `--at` sets the instant
the window is evaluated at (`actions.clock`).
"""

from __future__ import annotations

from dataclasses import dataclass

from flageemonitor.core.errors import ActionFailed
from flageemonitor.core.hosts import Host
from flageemonitor.core.shutdown import decide, window_text
from flageemonitor.proxy.actions import register
from flageemonitor.proxy.actions.base import ActionContext, RemoteSession
from flageemonitor.proxy.actions.clock import action_time
from flageemonitor.proxy.changes import ChangeAction, Plan, Probe, ProbeResult, Skip
from flageemonitor.proxy.changes.paths import EndSession

PROGRAMS = ("/sbin/shutdown", "/usr/sbin/shutdown")


@dataclass(frozen=True)
class ShutdownDesired:
    reason: str


@register
class ShutdownEndpoint(ChangeAction[ShutdownDesired, ProbeResult]):
    name = "shutdown_endpoint"
    version = "2.0.0"

    async def prepare(self, ctx: ActionContext, hosts: list[Host]) -> None:
        when, tz = action_time(ctx)  # a malformed --at is refused here, before any host
        window = ctx.config.shutdown_window
        ctx.prepared["clock"] = {
            "at": when.isoformat(timespec="seconds"), "timezone": tz, "window": window_text(window.start, window.end),
            "summary": f"{when:%Y-%m-%d %H:%M} {tz}, shutdown window {window_text(window.start, window.end)}",
        }

    def desired(self, host: Host, ctx: ActionContext) -> ShutdownDesired | Skip:
        when, tz = action_time(ctx)
        decision = decide(host, ctx.config, when, tz)
        return ShutdownDesired(decision.reason) if decision.go else Skip(decision.reason)

    async def probe(self, session: RemoteSession, host: Host, ctx: ActionContext,
                    desired: ShutdownDesired) -> ProbeResult:
        probe = Probe()
        for program in PROGRAMS:
            probe.file(program)
        return await probe.run(session, sudo=not session.is_root, timeout=ctx.command_timeout)

    def changes(self, desired: ShutdownDesired, state: ProbeResult, ctx: ActionContext) -> Plan:
        program = next((p for p in PROGRAMS if state.file(p).exists), None)
        if program is None:
            raise ActionFailed(f"no shutdown command on the endpoint ({', '.join(PROGRAMS)}); nothing was sent")
        command = [program, "-h", "now"]
        return Plan([EndSession(command, f"shut down now: {' '.join(command)}")],
                    {"decision": desired.reason, "command": command}, [desired.reason])
