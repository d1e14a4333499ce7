"""shutdown_endpoint on real endpoints. The endpoints' /sbin/shutdown records its arguments
instead of powering anything off (on the sudo endpoint, whose / is a copy of this machine's,
the recorder replaces the machine's own command in that private root before anything runs).

The window is read in São Paulo time while the proxy process runs with TZ=UTC: 01:30 UTC is
22:30 in São Paulo (inside 22-6) and 23:30 UTC is 20:30 there (outside, though inside if it
were read in UTC)."""

from __future__ import annotations

import time

import pytest
from devtools.fleet import SHUTDOWN_RECORDER, Fleet

from tests.agent.conftest import diff
from tests.fixtures.sshd import FleetRun
from tests.settings.conftest import GLOB, PERSONAS, SettingsCli, Target, hostile_marker, mutating, untouched

pytestmark = [pytest.mark.slow, pytest.mark.settings]

UTC_ENV = {"TZ": "UTC"}
INSIDE = "2026-03-11T01:30:00+00:00"  # 22:30 in São Paulo
OUTSIDE = "2026-03-10T23:30:00+00:00"  # 20:30 in São Paulo, 23:30 in UTC


def wait_for_calls(fleet: Fleet, persona: str, count: int, timeout: float = 20) -> list[str]:
    """The recorder's calls once there are `count` of them (the power-off starts a second after
    the command that hands it off returned)."""
    deadline = time.monotonic() + timeout
    while True:
        calls = fleet.shutdown_calls(persona)
        if len(calls) >= count or time.monotonic() > deadline:
            return calls
        time.sleep(0.1)


def recorder_in_place(target: Target) -> None:
    if target.persona == "sudo":
        target.fleet.install_shutdown_recorder("sudo")
    shutdown = target.root / "sbin" / "shutdown"
    assert "powers nothing off" in shutdown.read_text(), "refusing to test shutdown without the recorder"
    assert SHUTDOWN_RECORDER.splitlines()[1] in shutdown.read_text()


def test_inside_the_window_shutdown_is_called_once_with_the_expected_arguments(target: Target,
                                                                               cli: SettingsCli) -> None:
    recorder_in_place(target)
    calls = target.fleet.shutdown_calls(target.persona)
    before = target.tree()
    planned = cli.host("plan", "pdv_shutdown", "--at", INSIDE, env=UTC_ENV)
    assert planned["status"] == "planned" and planned["changed"]
    assert planned["detail"].startswith("would apply 1 change(s): shut down now: /sbin/shutdown -h now")
    assert "inside the shutdown window 22:00-06:59 (now 22:30 America/Sao_Paulo)" in planned["detail"]
    assert diff(before, target.tree()) == {}

    done = cli.host("run", "shutdown_host", "--at", INSIDE, env=UTC_ENV)
    assert done["status"] == "changed", done["detail"]
    assert [c["command"] for c in done["changes"]] == ["/sbin/shutdown -h now"]
    assert wait_for_calls(target.fleet, target.persona, len(calls) + 1) == [*calls, "-h now"]


def test_outside_the_window_read_in_sao_paulo_nothing_is_called(persona_fleet: Fleet, fleet_run: FleetRun,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    fleet_run.write_config(TIMEZONE="America/Sao_Paulo")
    calls = {p: persona_fleet.shutdown_calls(p) for p in PERSONAS}
    result = fleet_run("run", "pdv_shutdown", "--json", "--host", GLOB, "--at", OUTSIDE)
    assert result.returncode == 0, result.stderr
    for persona, name in PERSONAS.items():
        host = result.hosts()[name]
        assert host["status"] == "skipped" and not host["changed"]
        assert host["detail"] == "outside the shutdown window 22:00-06:59 (now 20:30 America/Sao_Paulo)"
        assert mutating(persona_fleet.commands(persona)) == []  # the facts probe only: nothing handed off
    assert {p: persona_fleet.shutdown_calls(p) for p in PERSONAS} == calls


def test_exceptions_and_concentrators_are_never_shut_down(persona_fleet: Fleet, fleet_run: FleetRun,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    ip = {p: persona_fleet.endpoint(n).ip for p, n in PERSONAS.items()}
    fleet_run.write_config(TIMEZONE="America/Sao_Paulo", shutdown_exception_ips=[ip["ubuntu2204"]],
                           PARAM_IP_CONCENTRADORES=[ip["slackware1337"]],
                           CONCENTRADORES=[{"ip": ip["ubuntu1404_i686"], "loja": 1}])
    calls = {p: persona_fleet.shutdown_calls(p) for p in PERSONAS}
    result = fleet_run("run", "shutdown_endpoint", "--json", "--host", GLOB, "--at", INSIDE)
    assert result.returncode == 0, result.stderr
    hosts = {p: result.hosts()[n] for p, n in PERSONAS.items()}
    assert hosts["ubuntu2204"]["status"] == "skipped"
    assert hosts["ubuntu2204"]["detail"] == f"{ip['ubuntu2204']} is in shutdown_exception_ips"
    for persona in ("slackware1337", "ubuntu1404_i686"):
        assert hosts[persona]["status"] == "skipped"
        assert hosts[persona]["detail"] == "concentrator (store server): never shut down"
    assert hosts["mint21"]["status"] == "changed"
    assert wait_for_calls(persona_fleet, "mint21", len(calls["mint21"]) + 1) == [*calls["mint21"], "-h now"]
    for persona in ("ubuntu2204", "slackware1337", "ubuntu1404_i686"):
        assert persona_fleet.shutdown_calls(persona) == calls[persona]
        assert mutating(persona_fleet.commands(persona)) == []


@pytest.mark.parametrize("template", ["$(touch {m})", "2026-03-11T01:30; touch {m}", "2026-03-11T01:30\ntouch {m}"])
def test_a_hostile_at_is_refused_before_anything_is_sent(persona_fleet: Fleet, fleet_run: FleetRun,
                                                        template: str) -> None:
    marker = hostile_marker()
    fleet_run.write_config(TIMEZONE="America/Sao_Paulo")
    calls = {p: persona_fleet.shutdown_calls(p) for p in PERSONAS}
    result = fleet_run("run", "pdv_shutdown", "--host", GLOB, "--at", template.format(m=marker))
    assert result.returncode == 2, result.stderr
    assert "expected an ISO 8601 time like 2026-03-10T23:30" in result.stderr.strip().splitlines()[-1]
    untouched(persona_fleet, marker)
    assert {p: persona_fleet.shutdown_calls(p) for p in PERSONAS} == calls
