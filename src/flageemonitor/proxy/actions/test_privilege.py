"""`test_endpoint_privilege`: can the SSH user act as root?

As root nothing is elevated: `id -u` must print 0. Otherwise `sudo -n true` tells whether sudo
works without a password; if not, the password is fed to `sudo -S` on stdin.
"""

from __future__ import annotations

from flageemonitor.core.hosts import Host
from flageemonitor.proxy.actions import register
from flageemonitor.proxy.actions.base import ActionContext, ActionOutcome, RemoteAction, RemoteSession


@register
class TestEndpointPrivilege(RemoteAction):
    name = "test_endpoint_privilege"
    version = "1.0.0"

    async def run(self, session: RemoteSession, host: Host, ctx: ActionContext) -> ActionOutcome:
        t = ctx.command_timeout
        if session.is_root:
            uid = await session.run(["id", "-u"], timeout=t)
            if uid.ok and uid.stdout.strip() == "0":
                return ActionOutcome(True, "logged in as root; no sudo needed", {"via": "root"})
            return ActionOutcome(False, f"user root but id -u printed {uid.stdout.strip()!r}", {"via": "root"})
        passwordless = await session.run(["sudo", "-n", "true"], timeout=t)
        uid = await session.run(["id", "-u"], sudo=True, timeout=t)
        via = "sudo -n" if passwordless.ok else "sudo with password"
        if uid.ok and uid.stdout.strip() == "0":
            return ActionOutcome(True, f"{session.user} becomes root through {via}", {"via": via})
        tail = (uid.stderr or uid.stdout).strip()[-200:]
        return ActionOutcome(False, f"{session.user} cannot become root through sudo: {tail or 'refused'}",
                             {"via": "none"})
