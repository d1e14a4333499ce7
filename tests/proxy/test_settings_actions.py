"""The endpoint-settings actions' decisions from a probed state (fast): the paths the chroot
personas cannot take (a working timedatectl, systemd-timesyncd, apt-get; on real systemd
endpoints in tests/settings/test_systemd_endpoint.py), what counts as unchanged, and the `--at`
clock."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from flageemonitor.core.config_model import validate_config
from flageemonitor.core.errors import ActionFailed, ActionRefused
from flageemonitor.core.facts import EndpointFacts
from flageemonitor.core.timesettings import TIMESYNCD_FORCE_DROPIN, TimedatectlStatus, resolve_time_settings
from flageemonitor.proxy.actions.base import ActionContext
from flageemonitor.proxy.actions.clock import action_time, parse_at
from flageemonitor.proxy.actions.update_timezone import NtpState, TimeState, ntp_changes, zone_changes
from flageemonitor.proxy.changes import FileState

ZONE = "America/Sao_Paulo"
ZONE_FILE = f"/usr/share/zoneinfo/{ZONE}"
SP_SHA = "a" * 64


def settings(**cli: Any) -> Any:
    return resolve_time_settings(validate_config({"PARAM_REDE": "R", "TIMEZONE": ZONE}), cli)


def state(distro: str = "ubuntu", *, td: TimedatectlStatus | None = None,
          localtime_real: str = "/usr/share/zoneinfo/UTC", timezone: str | None = "UTC\n",
          ntp: NtpState | None = None, localtime: FileState | None = None) -> TimeState:
    return TimeState(
        facts=EndpointFacts(distro, "1", "x86_64"),
        localtime=localtime or FileState("/etc/localtime", kind="link", target="/usr/share/zoneinfo/UTC",
                                         sha256="b" * 64),
        localtime_real=localtime_real,
        copied_from=FileState("/etc/localtime-copied-from"), copied_from_real="",
        timezone_file=FileState("/etc/timezone", kind="file", content=timezone) if timezone is not None
        else FileState("/etc/timezone"),
        target=FileState(ZONE_FILE, kind="file", sha256=SP_SHA), target_real=ZONE_FILE, magic="TZif",
        timedatectl=td or TimedatectlStatus(False), date="UTC +0000", ntp=ntp)


def kinds(changes: list[Any]) -> list[str]:
    return [c.kind for c in changes]


def test_a_working_timedatectl_sets_the_zone_and_the_name_file_follows() -> None:
    td = TimedatectlStatus(True, "Etc/UTC", ntp_enabled=True, rtc_local=False)
    changes = zone_changes(settings(), state(td=td))
    assert changes[0].summary() == f"timedatectl set-timezone {ZONE} (was Etc/UTC)"
    assert changes[0].to_dict()["command"] == f"timedatectl set-timezone {ZONE}"
    assert kinds(changes) == ["run_command", "put_file"]
    assert changes[1].undo_script() is not None  # the name file comes back on rollback


def test_unchanged_when_the_link_resolves_or_the_copy_matches() -> None:
    assert zone_changes(settings(), state(localtime_real=ZONE_FILE, timezone=ZONE + "\n")) == []
    copy = FileState("/etc/localtime", kind="file", sha256=SP_SHA)
    assert zone_changes(settings(), state(localtime=copy, localtime_real="/etc/localtime", timezone=ZONE)) == []
    td = TimedatectlStatus(True, ZONE)
    assert zone_changes(settings(), state(td=td, localtime_real=ZONE_FILE, timezone=ZONE + "\n")) == []


def ntp(**kw: Any) -> NtpState:
    base: dict[str, Any] = dict(timesyncd=False, timesyncd_active=False, conf=FileState("/etc/systemd/timesyncd.conf"),
                                dropin=FileState("/x"), dropin_dir=FileState("/d"), ntpdate=None, apt=False,
                                offset=None, query="")
    base.update(kw)
    return NtpState(**base)


def test_timesyncd_gets_the_server_the_forced_drop_in_a_reload_and_a_restart() -> None:
    s = settings(enable_ntp="1", ntp_server="10.0.0.1", force_timesyncd="yes")
    conf = FileState("/etc/systemd/timesyncd.conf", kind="file", content="[Time]\n#NTP=\n")
    td = TimedatectlStatus(True, ZONE, ntp_enabled=False, rtc_local=True)
    changes, notes = ntp_changes(s, state(td=td, ntp=ntp(timesyncd=True, timesyncd_active=True, conf=conf)))
    assert kinds(changes) == ["put_file", "make_dir", "put_file", "run_command", "service", "run_command",
                              "run_command"]
    assert changes[0].data == b"[Time]\n#NTP=\nNTP=10.0.0.1\nFallbackNTP=\n"  # type: ignore[attr-defined]
    assert changes[2].data == TIMESYNCD_FORCE_DROPIN.encode()  # type: ignore[attr-defined]
    assert changes[3].late_undo() == "systemctl daemon-reload"
    assert [c.summary() for c in changes[4:]] == ["restart systemd-timesyncd (systemd) (NTP=10.0.0.1)",
                                                  "enable NTP sync", "keep the hardware clock in UTC"]
    assert notes == ["NTP 10.0.0.1 via systemd-timesyncd"]
    rendered = "[Time]\n#NTP=\nNTP=10.0.0.1\nFallbackNTP=\n"
    settled = ntp(timesyncd=True, timesyncd_active=True, conf=FileState("/c", kind="file", content=rendered),
                  dropin=FileState("/x", kind="file", content=TIMESYNCD_FORCE_DROPIN))
    assert ntp_changes(s, state(td=TimedatectlStatus(True, ZONE, True, False), ntp=settled))[0] == []


def test_ntpdate_missing_is_installed_with_apt_only_on_a_debian_like_endpoint() -> None:
    s = settings(enable_ntp="1", ntp_server="pool.ntp.org")
    changes, _ = ntp_changes(s, state("ubuntu", ntp=ntp(apt=True)))
    assert [c.to_dict()["command"] for c in changes] == [
        "env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -o "
        "Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold ntpdate", "ntpdate -u pool.ntp.org"]
    with pytest.raises(ActionFailed, match=r"\(slackware: not installed with apt\); install ntpdate"):
        ntp_changes(s, state("slackware", ntp=ntp(apt=True)))
    with pytest.raises(ActionFailed, match="nothing changed"):
        ntp_changes(s, state("ubuntu", ntp=ntp(apt=False)))


def test_ntpdate_steps_only_past_the_tolerance_and_a_silent_server_is_a_note() -> None:
    s = settings(enable_ntp="1", ntp_server="10.0.0.1")
    close, _ = ntp_changes(s, state(ntp=ntp(ntpdate="/usr/sbin/ntpdate", offset=0.4)))
    far, _ = ntp_changes(s, state(ntp=ntp(ntpdate="/usr/sbin/ntpdate", offset=-2.0)))
    silent, notes = ntp_changes(s, state(ntp=ntp(ntpdate="/usr/sbin/ntpdate", offset=None, query="no server")))
    assert close == [] and silent == [] and "did not answer" in notes[0]
    assert [c.to_dict()["command"] for c in far] == ["/usr/sbin/ntpdate -u 10.0.0.1"]


def ctx(**config: Any) -> ActionContext:
    return ActionContext(config=validate_config({"PARAM_REDE": "R", **config}))


def test_at_is_wall_clock_time_in_the_config_zone_unless_it_has_an_offset() -> None:
    c = ctx(TIMEZONE=ZONE)
    assert parse_at("2026-03-10T23:30", c) == datetime(2026, 3, 10, 23, 30, tzinfo=ZoneInfo(ZONE))
    assert parse_at("2026-03-11T01:30:00+00:00", c).strftime("%H:%M %z") == "22:30 -0300"
    c.args["at"] = "2026-03-11T01:30:00Z"
    assert action_time(c)[0].strftime("%H:%M") == "22:30" and action_time(c)[1] == ZONE
    with pytest.raises(ActionRefused, match="--at 'tonight': expected an ISO 8601 time"):
        parse_at("tonight", c)
