"""The agent actions' decisions that need no endpoint (fast suite): aliases, the uninstall
safeguards, hostile values refused before anything is sent, preparation failures before any
host. The persona suites (tests/agent/) run them on real endpoints."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from flageemonitor.core.catalog import load_catalog
from flageemonitor.core.config_model import BotConfig, validate_config
from flageemonitor.core.errors import ActionRefused, ConfigInvalid, PrepareFailed
from flageemonitor.core.hosts import Host, HostFilter
from flageemonitor.core.results import Status
from flageemonitor.proxy.actions import get_action
from flageemonitor.proxy.actions.base import RemoteAction
from flageemonitor.proxy.actions.uninstall_agent import has_host_filter, named_explicitly, without_block
from flageemonitor.proxy.pipeline import RunRequest, execute, resolve_action
from tests.fixtures.bundle_repo import write_repository

ALIASES = {
    "pdv_install": "install_endpoint_agent", "install_client_agent": "install_endpoint_agent",
    "pdv_uninstall": "uninstall_endpoint_agent", "pdv_update_config": "update_endpoint_config",
    "update_client_config": "update_endpoint_config", "pdv_update_geral_conf": "update_endpoint_agent_include",
}


class NoSession:
    """Stands for the SSH transport where a host must be skipped without any remote command."""

    user = "root"
    is_root = True

    async def run(self, *args: object, **kw: object) -> object:
        raise AssertionError("a remote command was sent")

    async def close(self) -> None:
        return None


class Opener:
    def __init__(self) -> None:
        self.opened: list[str] = []

    async def open(self, host: Host) -> NoSession:
        self.opened.append(host.name)
        return NoSession()


def config(tmp_path: Path, **extra: object) -> BotConfig:
    repo = tmp_path / "repo"
    if not repo.exists():
        write_repository(repo)
    return validate_config({"PARAM_REDE": "R1", "PARAM_LOCAL_REPO_DIR": str(repo), **extra})


def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "inv.yaml"
    path.write_text(yaml.safe_dump({"hosts": [
        {"name": "R1-LOJA001-PDV201", "ip": "127.0.0.2"},
        {"name": "R1-LOJA001-CONCENTRADOR", "ip": "127.0.0.3"},
        {"name": "R1-LOJA001-PDV202", "ip": "127.0.0.4"},
    ]}))
    return path


@pytest.mark.parametrize(("alias", "canonical"), sorted(ALIASES.items()))
def test_aliases_resolve_to_implemented_agent_actions(alias: str, canonical: str, tmp_path: Path) -> None:
    resolved = resolve_action(RunRequest(alias), config(tmp_path))
    assert resolved.spec.name == canonical and get_action(canonical) is resolved.impl


def test_zanthus_install_name_resolves(tmp_path: Path) -> None:
    assert load_catalog().resolve("install_terminal_agent", "zanthus").canonical == "install_endpoint_agent"
    impl = resolve_action(RunRequest("install_terminal_agent", provider="zanthus"), config(tmp_path)).impl
    assert issubclass(impl, RemoteAction) and impl.previews


def test_uninstall_without_a_host_filter_is_refused_before_any_host(tmp_path: Path) -> None:
    opener = Opener()
    with pytest.raises(ActionRefused, match="--all"):
        asyncio.run(execute(RunRequest("pdv_uninstall", inventory_file=inventory(tmp_path), dry_run=True),
                            config(tmp_path), state_dir=tmp_path, opener=opener))
    assert opener.opened == []
    assert not has_host_filter(HostFilter(rede="R1", limit=3)) and has_host_filter(HostFilter(loja="1"))


def test_concentrators_are_skipped_unless_named_exactly(tmp_path: Path) -> None:
    cfg = config(tmp_path, PARAM_IP_CONCENTRADORES=["127.0.0.4"])
    report = asyncio.run(execute(RunRequest("pdv_uninstall", inventory_file=inventory(tmp_path), compat_mode="off",
                                            filters=HostFilter(host_glob="R1-LOJA001-[CP]*"),
                                            args={}), cfg, state_dir=tmp_path, opener=Opener()))
    by_name = {h.host: h for h in report.hosts}
    for name in ("R1-LOJA001-CONCENTRADOR", "R1-LOJA001-PDV202"):  # by type, and by PARAM_IP_CONCENTRADORES
        assert by_name[name].status is Status.SKIPPED and "named explicitly" in by_name[name].detail
    concentrator = Host.build("R1-LOJA001-CONCENTRADOR", "127.0.0.3")
    assert named_explicitly(concentrator, HostFilter(host_glob="r1-loja001-concentrador"))
    assert named_explicitly(concentrator, HostFilter(pdv_ip=("127.0.0.3",)))
    assert not named_explicitly(concentrator, HostFilter(host_glob="R1-LOJA001-CONCENTRADO*"))


def test_hostile_host_name_fails_the_host_before_any_command(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text(yaml.safe_dump({"hosts": [{"name": "R1-LOJA001-PDV201$(touch /tmp/x)", "ip": "127.0.0.2"}]}))
    report = asyncio.run(execute(RunRequest("pdv_install", inventory_file=inv, compat_mode="off"), config(tmp_path),
                                 state_dir=tmp_path, opener=Opener()))
    (host,) = report.hosts
    assert host.status is Status.FAILED and "refused before contacting the endpoint" in host.detail


def test_hostile_proxy_ip_fails_the_run_before_any_host(tmp_path: Path) -> None:
    opener = Opener()
    with pytest.raises(ConfigInvalid, match="PARAM_PROXY_IP"):
        asyncio.run(execute(RunRequest("pdv_update_config", inventory_file=inventory(tmp_path)),
                            config(tmp_path, PARAM_PROXY_IP="10.0.0.1;touch /tmp/x"), state_dir=tmp_path,
                            opener=opener))
    assert opener.opened == []


def test_missing_bundle_fails_the_run_before_any_host(tmp_path: Path) -> None:
    opener = Opener()
    with pytest.raises(PrepareFailed, match="no such file"):
        repo = write_repository(tmp_path / "repo")
        (repo / "geral.conf").unlink()
        asyncio.run(execute(RunRequest("pdv_install", inventory_file=inventory(tmp_path)), config(tmp_path),
                            state_dir=tmp_path, opener=opener))
    assert opener.opened == []


def test_rc_local_block_removal_keeps_everything_else() -> None:
    text = "#!/bin/sh\nfoo\n# BEGIN ARIUSMONITOR\n/etc/rc.d/rc.ariusmonitor start\n# END ARIUSMONITOR\nbar\n"
    assert without_block(text) == "#!/bin/sh\nfoo\nbar\n"
