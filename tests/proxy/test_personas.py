"""The pipeline and `flageemonitor run` against real sshd personas (see devtools.fleet)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from devtools.fleet import PASSWORD, PERSONAS, Fleet

from flageemonitor.core.hosts import Host
from flageemonitor.proxy.ssh import Connector, ConnectSettings
from flageemonitor.proxy.ssh.known_hosts import HostKeyStore
from tests.fixtures.sshd import FleetRun

pytestmark = pytest.mark.slow

BY_HOST = {p.host: p for p in PERSONAS}
PROBE_MARK = "@@flagee:uname"
ECHO = "flageemonitor-ok"


def test_run_reports_facts_level_and_status_of_every_persona(fleet_run: FleetRun) -> None:
    result = fleet_run("run", "test_endpoint_connection", "--json", "--timeout", "3")
    assert result.returncode == 1, result.stderr  # some hosts fail
    hosts = result.hosts()
    assert set(hosts) == set(BY_HOST)
    for name, persona in BY_HOST.items():
        host = hosts[name]
        assert host["status"] == persona.expect_status, (name, host)
        if persona.expect_distro is None:
            assert host["facts"] is None, name
            continue
        facts = host["facts"]
        assert (facts["distro"], facts["version"], facts["arch"]) == (
            persona.expect_distro, persona.expect_version, persona.expect_arch), name
        assert facts["level"] == persona.expect_level, name
    assert "not in the compatibility matrix" in hosts["FLEET-LOJA001-PDV205"]["detail"]  # warn: runs, says so
    assert hosts["FLEET-LOJA001-PDV204"]["facts"]["source"] == "slackware-version"
    assert hosts["FLEET-LOJA001-PDV202"]["facts"]["raw_arch"] == "i686"
    summary = result.report()["summary"]
    assert summary["failures"] == 3 and summary["ok"] == 5
    assert PASSWORD not in result.stdout + result.stderr


def test_enforce_blocks_only_the_unknown_environment(fleet_run: FleetRun) -> None:
    result = fleet_run("run", "pdv_test_connection", "--json", "--timeout", "3", "--compat-mode", "enforce")
    hosts = result.hosts()
    assert result.report()["action"]["canonical"] == "test_endpoint_connection"
    assert hosts["FLEET-LOJA001-PDV205"]["status"] == "blocked_compat"
    assert "not in the compatibility matrix" in hosts["FLEET-LOJA001-PDV205"]["detail"]
    for name in ("FLEET-LOJA001-PDV201", "FLEET-LOJA001-PDV202", "FLEET-LOJA001-PDV203", "FLEET-LOJA001-PDV204"):
        assert hosts[name]["status"] == "ok", hosts[name]
    sent = fleet_run.fleet.commands("unknown")
    assert len(sent) == 1 and PROBE_MARK in sent[0]  # blocked: the probe only, never the action
    assert result.returncode == 1  # the hang/auth/unreachable personas still fail


def test_dry_run_sends_only_the_probe_and_reports_decisions(fleet_run: FleetRun) -> None:
    fleet = fleet_run.fleet
    started = time.monotonic()
    result = fleet_run("plan", "test_endpoint_connection", "--json", "--timeout", "3", "--compat-mode", "enforce")
    hosts = result.hosts()
    assert hosts["FLEET-LOJA001-PDV201"]["status"] == "planned"
    assert hosts["FLEET-LOJA001-PDV206"]["status"] == "planned"  # the hang host never gets the action
    assert time.monotonic() - started < 3 + 10
    assert hosts["FLEET-LOJA001-PDV205"]["status"] == "blocked_compat"
    assert hosts["FLEET-LOJA001-PDV205"]["facts"]["distro"] == "plan9"
    assert hosts["FLEET-LOJA001-PDV205"]["data"]["compat"]["required"] == "L2"
    skipped = hosts["FLEET-LOJA002-PDV201"]
    assert skipped["status"] == "skipped_rollout"
    assert skipped["data"]["rollout"]["percentage"] == 0 and skipped["data"]["rollout"]["provider"] == "zanthus"
    assert "bucket" in skipped["detail"] and "0%" in skipped["detail"]
    assert result.report()["dry_run"] is True
    for persona in ("ubuntu2204", "ubuntu1404_i686", "mint21", "slackware1337", "unknown", "hang"):
        sent = fleet.commands(persona)
        assert len(sent) == 1 and PROBE_MARK in sent[0], (persona, sent)
        assert not any(ECHO in c for c in sent)
    assert result.returncode == 1  # auth_failed and unreachable are found even in a plan


def test_second_run_uses_cached_facts_and_skips_detection(fleet_run: FleetRun) -> None:
    fleet = fleet_run.fleet
    first = fleet_run("run", "test_endpoint_connection", "--json", "--host", "FLEET-LOJA001-PDV20[1-4]")
    assert first.returncode == 0, first.stderr
    assert all(h["facts"]["cached"] is False for h in first.report()["hosts"])
    fleet.clear_commands()
    second = fleet_run("run", "test_endpoint_connection", "--json", "--host", "FLEET-LOJA001-PDV20[1-4]")
    assert second.returncode == 0
    hosts = second.hosts()
    assert all(h["facts"]["cached"] is True for h in hosts.values())
    assert hosts["FLEET-LOJA001-PDV204"]["facts"]["distro"] == "slackware"
    for persona in ("ubuntu2204", "mint21", "slackware1337"):
        sent = fleet.commands(persona)
        assert len(sent) == 1 and ECHO in sent[0] and PROBE_MARK not in sent[0], (persona, sent)
    assert len(list((fleet_run.state_dir / "facts").glob("*.json"))) == 4


def test_hanging_host_times_out_while_the_others_complete(fleet_run: FleetRun) -> None:
    result = fleet_run("run", "test_endpoint_connection", "--json", "--timeout", "2",
                       "--host", "FLEET-LOJA001-PDV20[1236]")
    hosts = result.hosts()
    assert result.returncode == 1
    hang = hosts["FLEET-LOJA001-PDV206"]
    assert hang["status"] == "timeout" and "2s" in hang["detail"]
    assert 2 <= hang["duration_s"] < 6
    for name in ("FLEET-LOJA001-PDV201", "FLEET-LOJA001-PDV202", "FLEET-LOJA001-PDV203"):
        assert hosts[name]["status"] == "ok"
        assert hosts[name]["duration_s"] < 2


def test_zanthus_host_runs_once_its_rollout_is_raised(fleet_run: FleetRun) -> None:
    fleet_run.write_config(PARAM_ROLLOUT_ZANTHUS=100)
    result = fleet_run("run", "test_endpoint_connection", "--json", "--host", "FLEET-LOJA002-*")
    assert result.returncode == 0, result.stderr
    host = result.hosts()["FLEET-LOJA002-PDV201"]
    assert host["status"] == "ok" and host["data"]["rollout"]["provider"] == "zanthus"


def test_changed_host_key_is_refused_with_a_repin_hint(fleet_run: FleetRun) -> None:
    first = fleet_run("run", "test_endpoint_connection", "--json", "--host", "FLEET-LOJA001-PDV201")
    assert first.returncode == 0
    known = fleet_run.state_dir / "known_hosts"
    endpoint = fleet_run.fleet.endpoint("FLEET-LOJA001-PDV201")
    other = (fleet_run.fleet.base / "client_ed25519.pub").read_text().split()
    known.write_text(f"[{endpoint.ip}]:{endpoint.port} {other[0]} {other[1]}\n")
    fleet_run.fleet.clear_commands()
    second = fleet_run("run", "test_endpoint_connection", "--json", "--host", "FLEET-LOJA001-PDV201",
                       "--compat-mode", "off")
    host = second.hosts()["FLEET-LOJA001-PDV201"]
    assert second.returncode == 1
    assert host["status"] == "failed"
    assert "CHANGED" in host["detail"] and "FLEET-LOJA001-PDV201" in host["detail"]
    assert f"ssh-keygen -R '[{endpoint.ip}]:{endpoint.port}' -f {known}" in host["detail"]
    assert fleet_run.fleet.commands("ubuntu2204") == []  # refused before authenticating


def test_strict_policy_refuses_unpinned_hosts_and_insecure_pins_nothing(fleet_run: FleetRun) -> None:
    fleet_run.write_config(ssh={"timeout": 5, "host_key_policy": "strict"})
    strict = fleet_run("run", "test_endpoint_connection", "--json", "--host", "FLEET-LOJA001-PDV201")
    host = strict.hosts()["FLEET-LOJA001-PDV201"]
    assert strict.returncode == 1 and host["status"] == "failed"
    assert "not pinned" in host["detail"] and "strict" in host["detail"]
    fleet_run.write_config(ssh={"timeout": 5, "host_key_policy": "insecure"})
    insecure = fleet_run("run", "test_endpoint_connection", "--json", "--host", "FLEET-LOJA001-PDV201")
    assert insecure.returncode == 0
    assert not (fleet_run.state_dir / "known_hosts").exists()


def test_slackware_needs_the_legacy_algorithms(fleet_run: FleetRun) -> None:
    fleet_run.write_config(ssh={"timeout": 5, "legacy_algorithms": False})
    result = fleet_run("run", "test_endpoint_connection", "--json", "--host", "FLEET-LOJA001-PDV20[14]")
    hosts = result.hosts()
    assert hosts["FLEET-LOJA001-PDV201"]["status"] == "ok"
    assert hosts["FLEET-LOJA001-PDV204"]["status"] == "unreachable"
    # who notices first that no algorithm is common decides which of the two is reported
    detail = hosts["FLEET-LOJA001-PDV204"]["detail"]
    assert "negotiation failed" in detail or "connection closed by the endpoint" in detail


def test_privilege_check_as_root_needs_no_sudo(fleet_run: FleetRun) -> None:
    result = fleet_run("run", "pdv_test_sudo", "--json", "--host", "FLEET-LOJA001-PDV20[123]")
    assert result.returncode == 0, result.stderr
    for host in result.report()["hosts"]:
        assert host["status"] == "ok" and host["data"]["via"] == "root"
    assert not any("sudo" in c for c in fleet_run.fleet.commands("ubuntu2204"))


def test_diagnose_env_reports_proxy_checks_and_endpoint_paths(fleet_run: FleetRun) -> None:
    result = fleet_run("run", "diagnose_env", "--json", "--host", "FLEET-LOJA001-PDV20[15]")
    report = result.report()
    checks = {c["name"]: c for c in report["local"]["checks"]}
    assert checks["config"]["ok"] and checks["state_dir"]["ok"]
    assert checks["inventory"]["ok"] and "9 host(s)" in checks["inventory"]["detail"]
    supported = result.hosts()["FLEET-LOJA001-PDV201"]
    assert "/bin" in supported["data"]["path"]
    assert supported["data"]["shutdown"] == "/sbin/shutdown"
    assert supported["status"] == "ok"
    bare = result.hosts()["FLEET-LOJA001-PDV205"]  # the unknown distro has no shutdown command
    assert bare["data"]["shutdown"] == ""
    assert bare["status"] == "failed" and "no shutdown command" in bare["detail"]
    assert result.returncode == 1


def test_sftp_upload_lands_atomically_with_its_mode(persona_fleet: Fleet, tmp_path: Path) -> None:
    endpoint = persona_fleet.endpoint("FLEET-LOJA001-PDV201")
    host = Host.build(endpoint.name, endpoint.ip, port=endpoint.port, password=PASSWORD)
    connector = Connector(ConnectSettings(connect_timeout=5, command_timeout=10),
                          HostKeyStore(tmp_path / "known_hosts", "pin"))

    async def upload() -> str:
        session = await connector.open(host)
        try:
            await session.put(b"agent-config v2\n", "/root/agent.conf", mode=0o640)
            listing = await session.run(["ls", "-la", "/root"])
            return listing.stdout
        finally:
            await session.close()

    listing = asyncio.run(upload())
    target = persona_fleet.chroot("ubuntu2204") / "root" / "agent.conf"
    assert target.read_bytes() == b"agent-config v2\n"
    assert target.stat().st_mode & 0o777 == 0o640
    assert ".flagee-" not in listing  # no temp file left behind
    assert (tmp_path / "known_hosts").read_text().startswith(f"[{endpoint.ip}]:{endpoint.port} ssh-ed25519 ")


def test_concurrent_first_contacts_to_one_endpoint_pin_its_key_once(persona_fleet: Fleet, tmp_path: Path) -> None:
    endpoint = persona_fleet.endpoint("FLEET-LOJA001-PDV201")
    host = Host.build(endpoint.name, endpoint.ip, port=endpoint.port, password=PASSWORD)
    connector = Connector(ConnectSettings(connect_timeout=5, command_timeout=10),
                          HostKeyStore(tmp_path / "known_hosts", "pin"))

    async def one() -> int:
        session = await connector.open(host)
        try:
            return (await session.run(["true"])).exit_status
        finally:
            await session.close()

    async def many() -> list[int]:
        return list(await asyncio.gather(*(one() for _ in range(20))))

    assert asyncio.run(many()) == [0] * 20
    assert len((tmp_path / "known_hosts").read_text().splitlines()) == 1
