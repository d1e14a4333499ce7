"""`update_endpoint_config` (`pdv_update_config`): sync the agent assets for the endpoint's
architecture (geral.conf, MonitoraSATc/64, MonitoraSAT.sh, MonitoraImpressora/64, libs.tar.gz)
and render `zabbix_agentd.conf` (Server/ServerActive = PARAM_PROXY_IP, ListenPort = the host's
agent port, Hostname = the technical name); restart the agent only when the config or
geral.conf changed (start it when it does not run); verify; send `ligado`. The bundle must be
installed (`install_endpoint_agent`).
"""

from __future__ import annotations

from flageemonitor.core.errors import ActionFailed
from flageemonitor.proxy.actions import register
from flageemonitor.proxy.actions.base import ActionContext
from flageemonitor.proxy.agent import layout
from flageemonitor.proxy.agent.action import AgentAction, AgentDesired
from flageemonitor.proxy.agent.plan import AgentState, config_changes, start_changes
from flageemonitor.proxy.changes import Plan


def require_bundle(state: AgentState) -> None:
    if not state.installed:
        raise ActionFailed(f"the agent bundle is not installed ({layout.AGENTD} missing): run install_endpoint_agent")


@register
class UpdateEndpointConfig(AgentAction):
    name = "update_endpoint_config"
    version = "2.0.0"

    def changes(self, desired: AgentDesired, state: AgentState, ctx: ActionContext) -> Plan:
        require_bundle(state)
        prep = self.prepared(ctx)
        plan = config_changes(desired.settings, state, prep.bundle, prep.data)
        changes = plan.changes + start_changes(state, plan.restart_reasons)
        data = {"arch": state.arch, "installed": state.version, "agent_running": state.running,
                "restart_reasons": plan.restart_reasons}
        return Plan(changes, data, self.notes(ctx))
