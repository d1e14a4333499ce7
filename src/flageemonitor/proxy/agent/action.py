"""What the agent actions share: per-run preparation (the config values checked, the bundle
fetched and verified once), the per-host desired state, the probe, verification (the agent's
PID alive with the bundled agent's command line, its ListenPort listening) and the `ligado`
notification after a (re)start."""

from __future__ import annotations

import asyncio
import shlex
from dataclasses import dataclass
from typing import ClassVar

from flageemonitor.core.agent_conf import AgentSettings, agent_hostname, agent_port, proxy_addresses
from flageemonitor.core.errors import ActionFailed, PrepareFailed
from flageemonitor.core.hosts import Host
from flageemonitor.proxy.actions.base import ActionContext, RemoteSession
from flageemonitor.proxy.agent import layout
from flageemonitor.proxy.agent.bundle import Bundle, BundleFetcher
from flageemonitor.proxy.agent.plan import AgentState, Archive, agent_probe, agent_state, inspect_cached
from flageemonitor.proxy.changes import ApplyContext, ChangeAction, Plan, ServiceChange, parse_process, process_probe
from flageemonitor.proxy.changes.verify import ProcessState, wait_until

VERIFY_DEADLINE_S = 20.0
LIGADO_TIMEOUT_S = 15


@dataclass(frozen=True)
class AgentDesired:
    settings: AgentSettings


@dataclass
class Prepared:
    """Handed from `prepare` to every host's run (`ctx.shared["agent"]`)."""

    bundle: Bundle
    data: dict[str, bytes]
    archives: dict[str, Archive]  # arch -> archive


class AgentAction(ChangeAction[AgentDesired, AgentState]):
    """Base of the agent actions; subclasses say which bundle files they need and build changes."""

    needs_archives: ClassVar[bool] = False
    asset_names: ClassVar[tuple[str, ...] | None] = None  # None: every asset

    def bundle_files(self) -> tuple[list[str], list[str]]:
        """(required, optional) repository file names."""
        assets = list(self.asset_names) if self.asset_names is not None else layout.asset_names()
        if not self.needs_archives:
            return assets, []
        return [layout.ARCHIVES["x86_64"], *assets], [layout.ARCHIVES["i686"]]

    async def prepare(self, ctx: ActionContext, hosts: list[Host]) -> None:
        proxy_addresses(ctx.config.PARAM_PROXY_IP)  # ConfigInvalid before anything else
        required, optional = self.bundle_files()
        fetcher = BundleFetcher(ctx.config, ctx.state_dir)
        bundle = await asyncio.to_thread(fetcher.fetch, required, optional)
        data = {name: f.read() for name, f in bundle.files.items()}
        archives = {}
        for arch, name in layout.ARCHIVES.items():
            if name in data:
                archives[arch] = await asyncio.to_thread(inspect_cached, name, data[name],
                                                         bundle.files[name].path)
        ctx.shared["agent"] = Prepared(bundle, data, archives)
        ctx.prepared["bundle"] = bundle.to_dict()
        if not bundle.verified:
            ctx.logger.warning("%s", bundle.summary())

    @staticmethod
    def prepared(ctx: ActionContext) -> Prepared:
        found = ctx.shared.get("agent")
        if not isinstance(found, Prepared):
            raise PrepareFailed("the agent bundle was not prepared for this run")
        return found

    def desired(self, host: Host, ctx: ActionContext) -> AgentDesired:
        try:
            settings = AgentSettings(proxy_addresses(ctx.config.PARAM_PROXY_IP), agent_hostname(host.name),
                                     agent_port(host.agent_port))
        except ValueError as exc:
            raise ActionFailed(f"refused before contacting the endpoint: {exc}") from None
        return AgentDesired(settings)

    async def probe(self, session: RemoteSession, host: Host, ctx: ActionContext, desired: AgentDesired) -> AgentState:
        probe = agent_probe(desired.settings.listen_port)
        result = await probe.run(session, sudo=not session.is_root, timeout=ctx.command_timeout)
        state = agent_state(result)
        if state.arch not in layout.ARCHIVES:
            raise ActionFailed(f"unsupported architecture {state.arch!r} (bundles exist for "
                               f"{', '.join(layout.ARCHIVES)})")
        return state

    def notes(self, ctx: ActionContext) -> list[str]:
        bundle = self.prepared(ctx).bundle
        return [] if bundle.verified else ["bundle UNVERIFIED"]

    @staticmethod
    def restarted(plan: Plan) -> bool:
        return any(isinstance(c, ServiceChange) and c.verb in {"start", "restart"} for c in plan.changes)

    async def verify(self, apply: ApplyContext, desired: AgentDesired, state: AgentState, plan: Plan) -> str | None:
        if not self.restarted(plan):
            return None
        port = desired.settings.listen_port

        async def check() -> ProcessState:
            out = await apply.sh(process_probe(layout.PIDFILE, port), check=False)
            return parse_process(out.stdout)

        got = await wait_until(check, lambda p: p.runs(layout.AGENTD) and p.listens_on(port),
                               deadline_s=VERIFY_DEADLINE_S)
        if got.runs(layout.AGENTD) and got.listens_on(port):
            return None
        why = "the agent is not running" if not got.runs(layout.AGENTD) else f"nothing listens on port {port}"
        tail = await apply.sh(f"tail -n 3 {shlex.quote(layout.LOGFILE)} 2>/dev/null", check=False)
        last = " | ".join(ln.strip() for ln in tail.stdout.splitlines() if ln.strip())[-300:]
        return f"{why} {VERIFY_DEADLINE_S:g}s after the (re)start" + (f" (log: {last})" if last else "")

    async def after_apply(self, apply: ApplyContext, desired: AgentDesired, state: AgentState, plan: Plan) -> list[str]:
        """`ligado` = 1 from the endpoint's own zabbix_sender after a (re)start; a failure is a warning."""
        if not self.restarted(plan):
            return []
        command = [layout.SENDER, "-c", layout.CONF, "-k", "ligado", "-o", "1"]
        try:
            result = await apply.session.run(command, sudo=apply.sudo, timeout=LIGADO_TIMEOUT_S)
        except Exception as exc:  # a notification must not fail a verified change
            return [f"warning: ligado not sent ({exc})"]
        if not result.ok:
            text = (result.stderr or result.stdout).strip().splitlines()
            return [f"warning: ligado not sent (exit {result.exit_status}: {(text[-1] if text else '')[:160]})"]
        return ["ligado sent"]

