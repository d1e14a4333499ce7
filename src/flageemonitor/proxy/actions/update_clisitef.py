"""`update_endpoint_clisitef` (`pdv_update_clisitef`): `/posnet/CliSiTef.ini` rendered from the
network's template `<PARAM_CLISITEF_DIR>/CliSiTef.template.ini`, carrying over the endpoint's
own `Porta` in `[PinPadCompartilhado]` and `MensagemPadrao` in `[PinPad]` byte for byte
(`core.ini_carry`). The template is read once per run, before any host: when it is missing the
run fails saying where to put it. Owner root, mode 0644, dated backups (see `posnet_file`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flageemonitor.core.errors import ActionFailed, PrepareFailed
from flageemonitor.core.hosts import Host
from flageemonitor.core.ini_carry import CarriedKey, carry_over, decode_exact, encode_exact
from flageemonitor.proxy.actions import register
from flageemonitor.proxy.actions.base import ActionContext
from flageemonitor.proxy.actions.posnet_file import PosnetFileAction, Rendered
from flageemonitor.proxy.changes import FileState, sha256_hex

CLISITEF = "/posnet/CliSiTef.ini"
TEMPLATE_NAME = "CliSiTef.template.ini"
DEFAULT_DIR = "/ariusmonitor/host-linux/clisitef"
CARRIED = (CarriedKey("PinPadCompartilhado", "Porta"), CarriedKey("PinPad", "MensagemPadrao"))
SHARED_KEY = "clisitef_template"


def template_path(ctx: ActionContext) -> Path:
    return Path(ctx.config.PARAM_CLISITEF_DIR or DEFAULT_DIR) / TEMPLATE_NAME


@register
class UpdateEndpointClisitef(PosnetFileAction):
    name = "update_endpoint_clisitef"
    version = "2.0.0"
    path = CLISITEF

    async def prepare(self, ctx: ActionContext, hosts: list[Host]) -> None:
        path = template_path(ctx)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise PrepareFailed(
                f"no CliSiTef template at {path}: put {TEMPLATE_NAME} in {path.parent} "
                "(or set PARAM_CLISITEF_DIR to the directory that holds it)") from None
        except OSError as exc:
            raise PrepareFailed(f"cannot read the CliSiTef template {path}: {exc.strerror or exc}") from None
        missing = carry_over(decode_exact(data), None, CARRIED).missing_in_template
        ctx.shared[SHARED_KEY] = data
        ctx.prepared["template"] = {"path": str(path), "sha256": sha256_hex(data), "size": len(data),
                                    "summary": f"{path} ({sha256_hex(data)[:12]})"
                                    + (f"; lacks {', '.join(missing)}" if missing else "")}

    def desired(self, host: Host, ctx: ActionContext) -> bytes:
        data = ctx.shared.get(SHARED_KEY)
        if not isinstance(data, bytes):
            raise PrepareFailed("the CliSiTef template was not prepared for this run")
        return data

    def render(self, desired: Any, current: FileState) -> Rendered:
        if current.exists and current.data is None:
            raise ActionFailed(f"{CLISITEF} is not a readable file of at most 64 KiB ({current.kind}, "
                               f"{current.size} bytes): its values cannot be carried over; nothing changed")
        existing = decode_exact(current.data) if current.data is not None else None
        result = carry_over(decode_exact(desired), existing, CARRIED)
        shown = {k: encode_exact(v).decode("utf-8", "replace") for k, v in result.carried.items()}
        return Rendered(encode_exact(result.text), {"carried": shown}, tuple(result.notes()))
