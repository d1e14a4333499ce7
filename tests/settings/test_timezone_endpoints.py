"""update_endpoint_timezone on real endpoints: every supported persona and sudo users.

plan leaves the tree byte-identical and sends only probes -> run: the zone reads back inside
the endpoint (`readlink -f`, `date +%Z`) -> a second run is `ok`/unchanged and sends no
mutating command. Hostile values are refused before anything is sent. NTP through ntpdate
steps the clock only when it is off; an endpoint with no way to use the server fails before
any change; a failure after the first changes puts every file back."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from devtools.fleet import NTP_OFFSET, NTP_STEP_FAILS, NTPDATE_LOG, Fleet

from tests.agent.conftest import diff
from tests.fixtures.sshd import FleetRun
from tests.settings.conftest import GLOB, PERSONAS, SettingsCli, Target, hostile_marker, mutating, untouched

pytestmark = [pytest.mark.slow, pytest.mark.settings]

ZONE = "America/Sao_Paulo"
ZONE_FILE = f"/usr/share/zoneinfo/{ZONE}"
# what each endpoint has and therefore does: (method, the kinds of the changes)
EXPECTED = {
    "ubuntu2204": ("files", ["put_link", "put_file"]),  # real timedatectl, failing: no systemd running
    "ubuntu1404_i686": ("files", ["put_link", "put_file"]),  # /etc/localtime was a copy; now a link
    "mint21": ("files", ["put_link", "put_file"]),
    "slackware1337": ("slackware files", ["copy_file", "put_link"]),  # copy + localtime-copied-from
    "sudo": ("files", ["put_link", "put_file"]),  # this machine's Debian 12 userland and tzdata
}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_time_zone_plan_run_and_rerun(target: Target, cli: SettingsCli) -> None:
    target.reset_clock("UTC")
    before = target.tree()

    target.clear()
    planned = cli.host("plan", "pdv_update_timezone")
    assert planned["status"] == "planned" and planned["changed"], planned["detail"]
    method, kinds = EXPECTED[target.persona]
    assert [c["kind"] for c in planned["changes"]] == kinds
    assert planned["data"]["method"] == method and planned["data"]["current"]["timedatectl"] is False
    assert planned["data"]["target"]["timezone"] == ZONE and "UTC -> America/Sao_Paulo" in planned["detail"]
    assert diff(before, target.tree()) == {}
    if target.logs_commands:
        assert mutating(target.commands()) == []

    done = cli.host("run", "update_endpoint_timezone")
    assert done["status"] == "changed", done["detail"]
    assert [c["kind"] for c in done["changes"]] == kinds
    root = target.root
    if target.persona == "slackware1337":
        assert target.inside("readlink", "-f", "/etc/localtime-copied-from") == ZONE_FILE
        assert (root / "etc/localtime").is_file() and not (root / "etc/localtime").is_symlink()
        assert sha(root / "etc/localtime") == sha(root / ZONE_FILE.lstrip("/"))
        assert not (root / "etc/timezone").exists()  # Slackware has none, and gets none
    else:
        assert target.inside("readlink", "-f", "/etc/localtime") == ZONE_FILE
        assert (root / "etc/timezone").read_text() == ZONE + "\n"
    assert target.inside("date", "+%Z") == datetime.now(ZoneInfo(ZONE)).strftime("%Z")
    assert done["data"]["after"]["date"].split()[1] == datetime.now(ZoneInfo(ZONE)).strftime("%z")

    target.clear()
    again = cli.host("run", "update_host_timezone")
    assert again["status"] == "ok" and again["detail"].startswith("unchanged"), again["detail"]
    assert again["changes"] == [] and not again["changed"]
    if target.logs_commands:
        assert mutating(target.commands()) == []


def test_a_user_without_sudo_rights_fails_and_changes_nothing(sudo_fleet: Fleet, tmp_path: Path) -> None:
    target = Target(sudo_fleet, "FLEET-LOJA003-PDV203", "sudo", sudo_fleet.chroot("sudo"), ("etc",))
    cli = SettingsCli(target, tmp_path / "state", tmp_path / "config.json")
    cli.configure()
    target.reset_clock("UTC")
    before = target.tree()
    result = cli.host("run", "pdv_update_timezone", "--timezone", ZONE)
    assert result["status"] == "failed" and "probe" in result["detail"], result["detail"]
    assert diff(before, target.tree()) == {}


REFUSAL = {"--timezone": "not an IANA time zone name", "PDV_TIMEZONE_SETTINGS": "not an IANA time zone name",
           "--localtime-target": "not an absolute path to a zoneinfo file",
           "TIMEZONE_LOCALTIME_TARGET": "not an absolute path to a zoneinfo file",
           "--ntp-server": "not a host name or an IP address", "NTP_SERVER": "not a host name or an IP address"}


@pytest.mark.parametrize("how", list(REFUSAL))
@pytest.mark.parametrize("template", ["America/Sao_Paulo; touch {m}", "$(touch {m})", "America/Sao_Paulo\ntouch {m}"])
def test_hostile_values_are_refused_before_anything_is_sent(fleet_run: FleetRun, persona_fleet: Fleet, how: str,
                                                            template: str) -> None:
    marker = hostile_marker()
    value = template.format(m=marker)
    args = ["run", "pdv_update_timezone", "--host", GLOB]
    if how == "--timezone":
        fleet_run.write_config(TIMEZONE=ZONE)
        args += ["--timezone", value]
    elif how == "PDV_TIMEZONE_SETTINGS":
        fleet_run.write_config(TIMEZONE=ZONE, PDV_TIMEZONE_SETTINGS={"FLEET": {"timezone": value}})
    elif how == "--localtime-target":
        fleet_run.write_config(TIMEZONE=ZONE)
        args += ["--localtime-target", f"/usr/share/zoneinfo/{value}"]
    elif how == "TIMEZONE_LOCALTIME_TARGET":
        fleet_run.write_config(TIMEZONE=ZONE, TIMEZONE_LOCALTIME_TARGET=f"/usr/share/zoneinfo/{value}")
    elif how == "--ntp-server":
        fleet_run.write_config(TIMEZONE=ZONE)
        args += ["--enable-ntp", "--ntp-server", value]
    else:
        fleet_run.write_config(TIMEZONE=ZONE, NTP_ENABLE=True, NTP_SERVER=value)
    result = fleet_run(*args)
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("flageemonitor: update_endpoint_timezone: ") and "nothing was sent" in message
    assert REFUSAL[how] in message
    untouched(persona_fleet, marker)


def _ntp_target(fleet: Fleet, persona: str) -> Target:
    return Target(fleet, PERSONAS[persona], persona, fleet.chroot(persona), ("",))


@pytest.mark.parametrize("persona", ["ubuntu1404_i686", "slackware1337"])
def test_ntpdate_sets_the_clock_only_when_it_is_off(persona_fleet: Fleet, persona: str, tmp_path: Path) -> None:
    target = _ntp_target(persona_fleet, persona)
    target.reset_clock(ZONE)
    (target.root / NTP_OFFSET).parent.mkdir(parents=True, exist_ok=True)
    (target.root / NTP_OFFSET).write_text("-5.250000\n")
    (target.root / NTPDATE_LOG).unlink(missing_ok=True)
    cli = SettingsCli(target, tmp_path / "state", tmp_path / "config.json")
    cli.configure(NTP_ENABLE="yes", NTP_SERVER="10.9.8.7")
    target.clear()
    done = cli.host("run", "pdv_update_timezone")
    assert done["status"] == "changed", done["detail"]
    assert [c["summary"] for c in done["changes"]] == ["set the clock from 10.9.8.7 (off by -5.250 s)"]
    assert (target.root / NTPDATE_LOG).read_text() == "-u 10.9.8.7\n"
    target.clear()
    again = cli.host("run", "pdv_update_timezone")
    assert again["status"] == "ok" and "clock within 1 s of 10.9.8.7" in again["detail"], again["detail"]
    assert mutating(target.commands()) == [] and (target.root / NTPDATE_LOG).read_text() == "-u 10.9.8.7\n"


def test_ntp_without_timesyncd_or_ntpdate_fails_before_any_change(persona_fleet: Fleet, tmp_path: Path) -> None:
    target = _ntp_target(persona_fleet, "ubuntu2204")
    target.reset_clock("UTC")
    before = target.tree()
    cli = SettingsCli(target, tmp_path / "state", tmp_path / "config.json")
    cli.configure(NTP_ENABLE=True, NTP_SERVER="pool.ntp.org")
    target.clear()
    result = cli.host("run", "pdv_update_timezone")
    assert result["status"] == "failed" and "no systemd-timesyncd and has no ntpdate" in result["detail"]
    assert "nothing changed" in result["detail"]
    assert diff(before, target.tree()) == {} and mutating(target.commands()) == []


def test_a_failure_after_the_first_changes_puts_every_file_back(persona_fleet: Fleet, tmp_path: Path) -> None:
    target = _ntp_target(persona_fleet, "slackware1337")
    target.reset_clock("UTC")
    (target.root / NTP_OFFSET).parent.mkdir(parents=True, exist_ok=True)
    (target.root / NTP_OFFSET).write_text("30.000000\n")
    (target.root / NTP_STEP_FAILS).touch()
    try:
        before = target.tree()
        cli = SettingsCli(target, tmp_path / "state", tmp_path / "config.json")
        cli.configure(NTP_ENABLE=True, NTP_SERVER="10.9.8.7")
        result = cli.host("run", "pdv_update_timezone")
        assert result["status"] == "failed", result["detail"]
        assert "NTP socket is in use" in result["detail"] and result["detail"].endswith("rolled back")
        assert [c["kind"] for c in result["changes"]] == ["copy_file", "put_link", "run_command"]  # what was tried
        assert not result["changed"]
        assert diff(before, target.tree()) == {}  # /etc/localtime and its link are the UTC ones again
    finally:
        (target.root / NTP_STEP_FAILS).unlink()
