"""update_endpoint_timezone where systemd runs (a Debian 12 endpoint whose PID 1 is systemd,
`tests.fixtures.systemd_endpoint`): `timedatectl set-timezone`, systemd-timesyncd with the forced
drop-in, and apt-get installing ntpdate where no timesyncd runs; and shutdown_endpoint powering
one off for real.

Each is planned first (the endpoint's /etc stays byte-identical), run (the endpoint's own tools
read the result back), then run again (`unchanged`, and nothing restarted or sent)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from devtools.fleet import NTPDATE_LOG

from flageemonitor.core.timesettings import TIMESYNCD_FORCE_DROPIN
from tests.agent.conftest import diff, listing
from tests.fixtures.systemd_endpoint import SystemdEndpoint, offer_ntpdate, systemd_endpoints
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.settings]

TIMESYNCD = "FLEET-LOJA009-PDV201"  # systemd-timesyncd runs
APT = "FLEET-LOJA009-PDV202"  # no timesyncd; apt-get can install ntpdate from its repository
POWER = "FLEET-LOJA009-PDV203"  # powered off for real by shutdown_endpoint
INSIDE = "2026-03-11T01:30:00+00:00"  # 22:30 in Recife, inside the default window 22-6
ZONE = "America/Recife"
SERVER = "10.9.8.7"
CONF = "/etc/systemd/timesyncd.conf"
DROPIN_DIR = "/etc/systemd/system/systemd-timesyncd.service.d"


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SystemdEndpoint]]:
    work = tmp_path_factory.mktemp("systemd")
    with systemd_endpoints(work, (TIMESYNCD, APT, POWER)) as eps:
        apt = eps[APT]
        apt.inside("systemctl", "disable", "--now", "systemd-timesyncd")
        apt.inside("dpkg", "--purge", "systemd-timesyncd")
        offer_ntpdate(apt, work)
        eps[TIMESYNCD].inside("cp", "-p", CONF, CONF + ".image")
        yield eps


def run(ep: SystemdEndpoint, tmp: Path, *args: str, env: dict[str, str] | None = None,
        config: dict[str, Any] | None = None) -> dict[str, Any]:
    base = {"PARAM_REDE": "FLEET", "TIMEZONE": ZONE,
            "ssh": {"timeout": 10, "command_timeout": 120, "host_key_policy": "pin"}}
    return ep.flageemonitor(tmp, *args, config={**base, **(config or {})}, env=env)


def etc(ep: SystemdEndpoint) -> dict[str, tuple[Any, ...]]:
    return listing(ep.root, under=("etc",))


def summaries(result: dict[str, Any]) -> list[str]:
    return [str(c["summary"]) for c in result["changes"]]


def test_timedatectl_sets_the_zone_and_a_second_run_changes_nothing(
        endpoints: dict[str, SystemdEndpoint], tmp_path: Path) -> None:
    ep = endpoints[TIMESYNCD]
    ep.inside("timedatectl", "set-timezone", "Etc/UTC")
    ep.inside("sh", "-c", "echo Etc/UTC > /etc/timezone")
    before = etc(ep)

    planned = run(ep, tmp_path, "plan", "pdv_update_timezone")
    assert planned["status"] == "planned" and planned["changed"], planned["detail"]
    assert planned["data"]["method"] == "timedatectl" and planned["data"]["current"]["timedatectl"] is True
    assert summaries(planned)[0] == f"timedatectl set-timezone {ZONE} (was Etc/UTC)"
    assert diff(before, etc(ep)) == {}

    done = run(ep, tmp_path, "run", "update_endpoint_timezone")
    assert done["status"] == "changed", done["detail"]
    assert summaries(done) == summaries(planned)
    assert ep.inside("timedatectl", "show", "-p", "Timezone", "--value") == ZONE
    assert ep.inside("readlink", "-f", "/etc/localtime") == f"/usr/share/zoneinfo/{ZONE}"
    assert (ep.root / "etc/timezone").read_text() == ZONE + "\n"
    assert ep.inside("date", "+%z") == datetime.now(ZoneInfo(ZONE)).strftime("%z")
    after = etc(ep)

    again = run(ep, tmp_path, "run", "update_host_timezone")
    assert again["status"] == "ok" and again["detail"].startswith("unchanged"), again["detail"]
    assert again["changes"] == [] and not again["changed"]
    assert diff(after, etc(ep)) == {}


def test_timesyncd_gets_the_server_and_the_forced_drop_in_once(
        endpoints: dict[str, SystemdEndpoint], tmp_path: Path) -> None:
    ep = endpoints[TIMESYNCD]
    ep.inside("sh", "-c", f"cp -p {CONF}.image {CONF}; rm -rf {DROPIN_DIR}; systemctl daemon-reload; "
              f"timedatectl set-timezone {ZONE}; echo {ZONE} > /etc/timezone; systemctl restart systemd-timesyncd")
    assert ep.inside("systemctl", "is-active", "systemd-timesyncd") == "active"
    config: dict[str, Any] = {"NTP_ENABLE": "1", "NTP_SERVER": SERVER,
                              "PDV_TIMEZONE_SETTINGS": {"default": {"force_timesyncd": "1"}}}
    before = etc(ep)

    planned = run(ep, tmp_path, "plan", "update_endpoint_timezone", config=config)
    assert planned["status"] == "planned" and planned["changed"], planned["detail"]
    assert [c["kind"] for c in planned["changes"]] == ["put_file", "make_dir", "put_file", "run_command",
                                                       "service"], planned["changes"]
    assert diff(before, etc(ep)) == {}

    done = run(ep, tmp_path, "run", "update_endpoint_timezone", config=config)
    assert done["status"] == "changed", done["detail"]
    lines = (ep.root / CONF.lstrip("/")).read_text().splitlines()
    active = [line for line in lines if line.split("=", 1)[0] in ("NTP", "FallbackNTP")]
    assert active == [f"NTP={SERVER}", "FallbackNTP="] and "[Time]" in lines
    assert (ep.root / DROPIN_DIR.lstrip("/") / "override.conf").read_text() == TIMESYNCD_FORCE_DROPIN
    assert ep.inside("systemctl", "is-active", "systemd-timesyncd") == "active"
    # the running timesyncd took the file: it names the server it was given
    assert ep.inside("timedatectl", "show-timesync", "-p", "SystemNTPServers", "--value") == SERVER
    pid = ep.inside("systemctl", "show", "-p", "MainPID", "--value", "systemd-timesyncd")
    after = etc(ep)

    again = run(ep, tmp_path, "run", "update_endpoint_timezone", config=config)
    assert again["status"] == "ok" and again["detail"].startswith("unchanged"), again["detail"]
    assert again["changes"] == [] and f"NTP {SERVER} via systemd-timesyncd" in again["detail"]
    assert ep.inside("systemctl", "show", "-p", "MainPID", "--value", "systemd-timesyncd") == pid  # no restart
    assert diff(after, etc(ep)) == {}


def test_apt_installs_ntpdate_where_no_timesyncd_runs_and_only_once(
        endpoints: dict[str, SystemdEndpoint], tmp_path: Path) -> None:
    ep = endpoints[APT]
    ep.inside("sh", "-c", f"timedatectl set-timezone {ZONE}; echo {ZONE} > /etc/timezone")
    config = {"NTP_ENABLE": "yes", "NTP_SERVER": SERVER}
    before = etc(ep)

    planned = run(ep, tmp_path, "plan", "pdv_update_timezone", config=config)
    assert planned["status"] == "planned" and planned["changed"], planned["detail"]
    assert summaries(planned) == ["install ntpdate (apt-get)", f"set the clock from {SERVER}"]
    assert diff(before, etc(ep)) == {}
    assert ep.inside("dpkg-query", "-W", "-f", "${Status}", "ntpdate", check=False) == ""

    done = run(ep, tmp_path, "run", "pdv_update_timezone", config=config)
    assert done["status"] == "changed", done["detail"]
    assert ep.inside("dpkg-query", "-W", "-f", "${Status}", "ntpdate") == "install ok installed"
    assert (ep.root / NTPDATE_LOG).read_text() == f"-u {SERVER}\n"

    again = run(ep, tmp_path, "run", "pdv_update_timezone", config=config)
    assert again["status"] == "ok" and f"clock within 1 s of {SERVER}" in again["detail"], again["detail"]
    assert again["changes"] == [] and (ep.root / NTPDATE_LOG).read_text() == f"-u {SERVER}\n"


def test_shutdown_powers_a_systemd_endpoint_off_and_the_next_tick_finds_it_unreachable(
        endpoints: dict[str, SystemdEndpoint], tmp_path: Path) -> None:
    ep = endpoints[POWER]
    utc = {"TZ": "UTC"}
    before = etc(ep)
    planned = run(ep, tmp_path, "plan", "pdv_shutdown", "--at", INSIDE, env=utc)
    assert planned["status"] == "planned" and "shut down now: /sbin/shutdown -h now" in planned["detail"]
    assert ep.state() == "running" and diff(before, etc(ep)) == {}

    done = run(ep, tmp_path, "run", "shutdown_endpoint", "--at", INSIDE, env=utc)
    assert done["status"] == "changed", done["detail"]  # the session ending under it is the shutdown working
    wait_until(lambda: ep.state() == "exited", 60, f"{ep.container} to power off")
    assert ep.exit_code() == 0  # systemd's own power-off, not a crash

    again = run(ep, tmp_path, "run", "shutdown_endpoint", "--at", INSIDE, env=utc)
    assert again["status"] == "unreachable", again["detail"]
