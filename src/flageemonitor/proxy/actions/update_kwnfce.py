"""`update_endpoint_kwnfce` (`pdv_update_kwnfce`): `/posnet/kwnfce.conf` holds exactly
`HORA_Z=0`, owner root, mode 0644 (see `posnet_file` for the probe, backups and verification)."""

from __future__ import annotations

from typing import Any

from flageemonitor.core.hosts import Host
from flageemonitor.proxy.actions import register
from flageemonitor.proxy.actions.base import ActionContext
from flageemonitor.proxy.actions.posnet_file import PosnetFileAction, Rendered
from flageemonitor.proxy.changes import FileState

KWNFCE = "/posnet/kwnfce.conf"
CONTENT = b"HORA_Z=0\n"


@register
class UpdateEndpointKwnfce(PosnetFileAction):
    name = "update_endpoint_kwnfce"
    version = "2.0.0"
    path = KWNFCE

    def desired(self, host: Host, ctx: ActionContext) -> bytes:
        return CONTENT

    def render(self, desired: Any, current: FileState) -> Rendered:
        return Rendered(CONTENT, {})
