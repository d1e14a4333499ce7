"""`update_endpoint_agent_include` (`pdv_update_geral_conf`): sync the agent's include file
`geral.conf` (its UserParameters) from the bundle repository, with its checksum verified like
every bundle file, and restart the agent only when it changed."""

from __future__ import annotations

from flageemonitor.proxy.actions import register
from flageemonitor.proxy.actions.base import ActionContext
from flageemonitor.proxy.actions.update_agent_config import require_bundle
from flageemonitor.proxy.agent.action import AgentAction, AgentDesired
from flageemonitor.proxy.agent.plan import AgentState, config_changes, start_changes
from flageemonitor.proxy.changes import Plan


@register
class UpdateEndpointAgentInclude(AgentAction):
    name = "update_endpoint_agent_include"
    version = "2.0.0"
    asset_names = ("geral.conf",)

    def changes(self, desired: AgentDesired, state: AgentState, ctx: ActionContext) -> Plan:
        require_bundle(state)
        prep = self.prepared(ctx)
        plan = config_changes(desired.settings, state, prep.bundle, prep.data, only=self.asset_names)
        changes = plan.changes + start_changes(state, plan.restart_reasons, start_if_stopped=False)
        return Plan(changes, {"agent_running": state.running, "restart_reasons": plan.restart_reasons},
                    self.notes(ctx))
