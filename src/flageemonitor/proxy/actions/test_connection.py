"""`test_endpoint_connection`: open the session and run a trivial command."""

from __future__ import annotations

from flageemonitor.core.hosts import Host
from flageemonitor.proxy.actions import register
from flageemonitor.proxy.actions.base import ActionContext, ActionOutcome, RemoteAction, RemoteSession

TOKEN = "flageemonitor-ok"  # noqa: S105 - an echo marker, not a secret


@register
class TestEndpointConnection(RemoteAction):
    name = "test_endpoint_connection"
    version = "1.0.0"

    async def run(self, session: RemoteSession, host: Host, ctx: ActionContext) -> ActionOutcome:
        result = await session.run(["echo", TOKEN], timeout=ctx.command_timeout)
        if result.ok and TOKEN in result.stdout:
            return ActionOutcome(True, "connected, command ran")
        tail = (result.stderr or result.stdout).strip()[-200:]
        return ActionOutcome(False, f"echo exited {result.exit_status}: {tail}", {"exit_status": result.exit_status})
