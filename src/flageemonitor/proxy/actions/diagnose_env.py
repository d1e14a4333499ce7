"""`diagnose_env`: check the proxy itself and, when hosts are selected, each endpoint.

Proxy checks (run once, with or without hosts): config present and valid, control plane
reachable (`FLAGEEMONITOR_CONFIG_URL` or `FLAGEEMONITOR_API_BASE`, token in the `X-Bot-Token`
header, never in the URL, short timeout), inventory readable, state directory writable, time
zone valid. Endpoint checks: PATH and where `sudo` and `shutdown` live. Read-only everywhere.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from flageemonitor import __version__
from flageemonitor.core import env
from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.facts import split_sections
from flageemonitor.core.hosts import Host, HostFilter
from flageemonitor.proxy.actions import register
from flageemonitor.proxy.actions.base import ActionContext, ActionOutcome, RemoteAction, RemoteSession

CONTROL_PLANE_TIMEOUT = 5.0
MARK = "@@diag:"
ENDPOINT_COMMAND = (
    f"echo '{MARK}path'; echo \"$PATH\"; "
    f"echo '{MARK}sudo'; command -v sudo 2>/dev/null || which sudo 2>/dev/null; "
    f"echo '{MARK}shutdown'; command -v shutdown 2>/dev/null || which shutdown 2>/dev/null "
    "|| { [ -x /sbin/shutdown ] && echo /sbin/shutdown; }; "
    f"echo '{MARK}end'"
)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    skipped: bool = False


def check_config(config: BotConfig | None, error: str | None = None) -> Check:
    if config is None:
        return Check("config", False, error or "no config")
    return Check("config", True, f"valid (network {config.PARAM_REDE}, version {config.CONFIG_VERSION or '-'})")


def check_control_plane(timeout: float = CONTROL_PLANE_TIMEOUT) -> Check:
    url = env.get("CONFIG_URL")
    if not url:
        base = env.get("API_BASE")
        url = base.rstrip("/") + "/bot/config" if base else None
    if not url:
        return Check("control_plane", True, "no FLAGEEMONITOR_CONFIG_URL / FLAGEEMONITOR_API_BASE set", skipped=True)
    headers = {"User-Agent": f"flageemonitor-proxy/{__version__}"}
    token = env.get("TOKEN")
    if token:
        headers["X-Bot-Token"] = token
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            response = client.head(url, headers=headers)
            if response.status_code in (405, 501):
                response = client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        return Check("control_plane", False, f"{url}: {type(exc).__name__}")
    code = response.status_code
    if code in (401, 403):
        return Check("control_plane", False, f"{url}: reachable but the token was refused (HTTP {code})")
    if code >= 400:
        return Check("control_plane", False, f"{url}: HTTP {code}")
    return Check("control_plane", True, f"{url}: HTTP {code}")


def check_inventory(config: BotConfig, inventory_file: Path | None, error: str | None) -> Check:
    if error:
        return Check("inventory", False, error)
    from flageemonitor.proxy.inventory import open_inventory

    try:
        source = open_inventory(config, inventory_file)
        hosts = source.select(HostFilter())
    except Exception as exc:  # any inventory failure is this check's finding
        return Check("inventory", False, str(exc))
    return Check("inventory", True, f"{source.name}: {len(hosts)} host(s) in network {config.PARAM_REDE}")


def check_state_dir(state_dir: Path) -> Check:
    """Writable, or creatable: a diagnosis never creates the directory it checks."""
    if not state_dir.exists():
        parent = next((p for p in state_dir.parents if p.exists()), Path("/"))
        if os.access(parent, os.W_OK | os.X_OK):
            return Check("state_dir", True, f"{state_dir}: does not exist yet; {parent} lets it be created")
        return Check("state_dir", False, f"{state_dir}: does not exist and {parent} is not writable")
    try:
        fd, name = tempfile.mkstemp(prefix=".diag-", dir=state_dir)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        return Check("state_dir", False, f"{state_dir}: not writable ({exc.strerror or exc})")
    return Check("state_dir", True, f"{state_dir}: writable")


def check_timezone(config: BotConfig | None) -> Check:
    name = (config.TIMEZONE if config else None) or env.get_plain("TZ")
    if not name:
        return Check("timezone", True, "no TIMEZONE/TZ set: UTC", skipped=True)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return Check("timezone", False, f"{name!r} is not a known IANA time zone")
    return Check("timezone", True, name)


def summarise(checks: list[Check]) -> ActionOutcome:
    failed = [c.name for c in checks if not c.ok]
    detail = f"proxy checks failed: {', '.join(failed)}" if failed else "proxy checks passed"
    return ActionOutcome(not failed, detail, {"checks": [asdict(c) for c in checks]})


def parse_endpoint(output: str) -> dict[str, str]:
    sections = split_sections(output, MARK)
    firsts = {key: next((ln.strip() for ln in lines if ln.strip()), "") for key, lines in sections.items()}
    return {key: firsts.get(key, "") for key in ("path", "sudo", "shutdown")}


@register
class DiagnoseEnv(RemoteAction):
    name = "diagnose_env"
    version = "1.0.0"

    async def proxy_checks(self, ctx: ActionContext, inventory_error: str | None) -> ActionOutcome:
        import asyncio

        inventory_file = ctx.args.get("inventory_file")
        checks = [
            check_config(ctx.config),
            await asyncio.to_thread(check_control_plane),
            await asyncio.to_thread(check_inventory, ctx.config,
                                    Path(inventory_file) if inventory_file else None, inventory_error),
            check_state_dir(ctx.state_dir),
            check_timezone(ctx.config),
        ]
        return summarise(checks)

    async def run(self, session: RemoteSession, host: Host, ctx: ActionContext) -> ActionOutcome:
        result = await session.run(ENDPOINT_COMMAND, timeout=ctx.command_timeout)
        found: dict[str, Any] = parse_endpoint(result.stdout)
        warnings = []
        if not found["sudo"] and not session.is_root:
            warnings.append(f"no sudo for non-root user {session.user}")
        if not found["shutdown"]:
            warnings.append("no shutdown command")
        if not found["path"]:
            warnings.append("empty PATH")
        detail = "; ".join(warnings) or f"sudo {found['sudo'] or '-'}, shutdown {found['shutdown']}"
        return ActionOutcome(not warnings, detail, found)
