"""`install_endpoint_agent` (`pdv_install`): make the endpoint run the configured agent bundle,
then apply `update_endpoint_config`.

The bundle is (re)installed only when the endpoint's marker or the checksums of the archive's
key files differ from the repository's archive for its architecture: stop the agent, unpack
keeping the old tree, run `utilities/setup.sh`; then the assets and the config; then one start
or restart. A second run on an unchanged endpoint sends nothing but the probe. If the agent does
not come back, the old tree and files are restored and the old agent restarted.
"""

from __future__ import annotations

from flageemonitor.core.errors import ActionFailed
from flageemonitor.proxy.actions import register
from flageemonitor.proxy.actions.base import ActionContext
from flageemonitor.proxy.agent import layout
from flageemonitor.proxy.agent.action import AgentAction, AgentDesired
from flageemonitor.proxy.agent.plan import AgentState, install_changes
from flageemonitor.proxy.changes import Plan


@register
class InstallEndpointAgent(AgentAction):
    name = "install_endpoint_agent"
    version = "2.0.0"
    needs_archives = True

    def changes(self, desired: AgentDesired, state: AgentState, ctx: ActionContext) -> Plan:
        prep = self.prepared(ctx)
        archive = prep.archives.get(state.arch)
        if archive is None:
            raise ActionFailed(f"no {state.arch} bundle: {layout.ARCHIVES[state.arch]} is not in the repository")
        changes, reasons = install_changes(desired.settings, state, prep.bundle, prep.data, archive)
        data = {"arch": state.arch, "installed": state.version, "bundle": archive.version,
                "agent_running": state.running, "restart_reasons": reasons}
        return Plan(changes, data, self.notes(ctx))
