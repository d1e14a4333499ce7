"""Time settings: the original's resolution chain, validation before any command is built,
timesyncd.conf rendering and the parsers of timedatectl and ntpdate output."""

from __future__ import annotations

from typing import Any

import pytest

from flageemonitor.core.config_model import validate_config
from flageemonitor.core.timesettings import (
    SettingInvalid,
    parse_ntpdate_offset,
    parse_timedatectl,
    render_timesyncd_conf,
    resolve_time_settings,
    valid_timezone_name,
)


def config(**extra: Any) -> Any:
    return validate_config({"PARAM_REDE": "REDE1", **extra})


def test_each_setting_comes_from_the_first_place_that_has_it() -> None:
    cfg = config(
        TIMEZONE="America/Sao_Paulo", NTP_ENABLE="yes", NTP_SERVER="top.example", TIMEZONE_LOCALTIME_TARGET="/etc/tz",
        PDV_TIMEZONE_SETTINGS={
            "default": {"timezone": "America/Recife", "ntp_server": "default.example", "force_timesyncd": "1"},
            "REDE1": {"timezone": "America/Manaus"},
            "OTHER": {"timezone": "Europe/Lisbon", "ntp_server": "other.example"},
        })
    s = resolve_time_settings(cfg, {})
    assert (s.timezone, s.ntp_server, s.enable_ntp, s.force_timesyncd, s.localtime_target) == (
        "America/Manaus", "default.example", True, True, "/etc/tz")
    assert dict(s.sources) == {
        "timezone": "PDV_TIMEZONE_SETTINGS['REDE1'].timezone",
        "ntp_server": "PDV_TIMEZONE_SETTINGS['default'].ntp_server",
        "enable_ntp": "NTP_ENABLE", "force_timesyncd": "PDV_TIMEZONE_SETTINGS['default'].force_timesyncd",
        "localtime_target": "TIMEZONE_LOCALTIME_TARGET"}
    cli = resolve_time_settings(cfg, {"timezone": "UTC", "ntp_server": "10.0.0.1", "enable_ntp": "off"})
    assert (cli.timezone, cli.ntp_server, cli.enable_ntp) == ("UTC", "10.0.0.1", False)
    assert dict(cli.sources)["timezone"] == "--timezone"


def test_top_level_keys_and_defaults() -> None:
    s = resolve_time_settings(config(TIMEZONE="America/Sao_Paulo"), {})
    assert s.localtime_target == "/usr/share/zoneinfo/America/Sao_Paulo"
    assert (s.enable_ntp, s.ntp_server, s.force_timesyncd) == (False, None, False)
    # an empty value falls through to the next place
    s = resolve_time_settings(config(TIMEZONE="UTC", PDV_TIMEZONE_SETTINGS={"REDE1": {"timezone": ""}}),
                              {"timezone": ""})
    assert s.timezone == "UTC"


def test_no_time_zone_anywhere_says_where_to_set_one() -> None:
    with pytest.raises(SettingInvalid, match="no time zone: set TIMEZONE"):
        resolve_time_settings(config(), {})


@pytest.mark.parametrize("hostile", [
    "America/Sao_Paulo; touch /tmp/x", "$(id)", "America/Sao_Paulo\n", "America/Sao_Paulo\ntouch /tmp/x", "`id`",
    "../../etc/shadow", "America/../../etc/passwd", "/etc/passwd", "America/Sao Paulo", "'quoted'", "",
    "a" * 65, "America/Sao_Paulo|id", "America/Sao_Paulo&",
])
def test_hostile_or_malformed_time_zones_are_refused_naming_the_source(hostile: str) -> None:
    assert not valid_timezone_name(hostile)
    with pytest.raises(SettingInvalid) as err:
        resolve_time_settings(config(PDV_TIMEZONE_SETTINGS={"REDE1": {"timezone": hostile}}), {"timezone": hostile})
    assert "--timezone" in str(err.value) or not hostile


@pytest.mark.parametrize("good", ["America/Sao_Paulo", "UTC", "Etc/UTC", "Etc/GMT+3", "America/Argentina/Buenos_Aires",
                                  "America/Port-au-Prince"])
def test_iana_names_are_accepted(good: str) -> None:
    assert valid_timezone_name(good)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("ntp_server", "pool.ntp.org; reboot", "not a host name or an IP address"),
    ("ntp_server", "$(id)", "not a host name or an IP address"),
    ("ntp_server", "a.b\nc", "not a host name or an IP address"),
    ("ntp_server", "-oProxyCommand=x", "not a host name or an IP address"),
    ("localtime_target", "relative/path", "not an absolute path"),
    ("localtime_target", "/usr/share/zoneinfo/../../etc/shadow", "not an absolute path"),
    ("localtime_target", "/usr/share/zoneinfo/X;id", "not an absolute path"),
])
def test_hostile_server_and_target_are_refused(key: str, value: str, message: str) -> None:
    with pytest.raises(SettingInvalid, match=message):
        resolve_time_settings(config(TIMEZONE="UTC"), {key: value})


@pytest.mark.parametrize("server", ["pool.ntp.org", "10.1.2.3", "fe80::1", "ntp-1.rede.local"])
def test_ntp_servers_accepted(server: str) -> None:
    assert resolve_time_settings(config(TIMEZONE="UTC"), {"ntp_server": server}).ntp_server == server


@pytest.mark.parametrize(("status", "output", "works", "zone", "ntp", "rtc"), [
    (0, "               Local time: Tue 2026-03-10 22:00:00 -03\n"
        "           Universal time: Wed 2026-03-11 01:00:00 UTC\n"
        "                Time zone: America/Sao_Paulo (-03, -0300)\nSystem clock synchronized: yes\n"
        "              NTP service: active\n          RTC in local TZ: no\n", True, "America/Sao_Paulo", True, False),
    (0, "      Local time: Tue 2016-03-10 22:00:00 BRT\n       Time zone: America/Sao_Paulo (BRT, -0300)\n"
        "     NTP enabled: no\nNTP synchronized: no\n RTC in local TZ: yes\n", True, "America/Sao_Paulo", False, True),
    (0, "Time zone: Etc/UTC (UTC, +0000)\nNetwork time on: yes\n", True, "Etc/UTC", True, None),
    # Debian 12 without systemd-timesyncd (tests/settings/test_systemd_endpoint.py): no NTP unit to enable
    (0, "Local time: Mon 2026-11-30 15:24:58 UTC\n           Universal time: Mon 2026-11-30 15:24:58 UTC\n"
        "                 RTC time: n/a\n                Time zone: Etc/UTC (UTC, +0000)\n"
        "System clock synchronized: no\n              NTP service: n/a\n          RTC in local TZ: no",
     True, "Etc/UTC", None, False),
    (1, "System has not been booted with systemd as init system (PID 1). Can't operate.\n"
        "Failed to connect to bus: Host is down\n", False, None, None, None),
    (0, "Failed to query server: Connection timed out\n", False, None, None, None),
])
def test_timedatectl_status(status: int, output: str, works: bool, zone: str | None, ntp: bool | None,
                            rtc: bool | None) -> None:
    parsed = parse_timedatectl(status, output)
    assert (parsed.works, parsed.timezone, parsed.ntp_enabled, parsed.rtc_local) == (works, zone, ntp, rtc)


def test_timesyncd_conf_puts_the_server_in_the_time_section_only_once() -> None:
    stock = "#  This file is part of systemd.\n[Time]\n#NTP=\n#FallbackNTP=ntp.ubuntu.com\n#RootDistanceMaxSec=5\n"
    out = render_timesyncd_conf(stock, "10.0.0.1")
    assert out == ("#  This file is part of systemd.\n[Time]\n#NTP=\n#FallbackNTP=ntp.ubuntu.com\n"
                   "#RootDistanceMaxSec=5\nNTP=10.0.0.1\nFallbackNTP=\n")
    assert render_timesyncd_conf(out, "10.0.0.1") == out  # idempotent
    changed = render_timesyncd_conf(out, "pool.ntp.org")
    assert changed.count("NTP=pool.ntp.org") == 1 and "10.0.0.1" not in changed


def test_timesyncd_conf_section_added_or_kept_before_the_next_section() -> None:
    assert render_timesyncd_conf(None, "a.example") == "[Time]\nNTP=a.example\nFallbackNTP=\n"
    assert render_timesyncd_conf("[Other]\nX=1\n", "a.example") == (
        "[Other]\nX=1\n\n[Time]\nNTP=a.example\nFallbackNTP=\n")
    text = "[Time]\nNTP=old\nPollIntervalMinSec=32\n\n[Other]\nNTP=not-ours\n"
    assert render_timesyncd_conf(text, "a.example") == (
        "[Time]\nPollIntervalMinSec=32\nNTP=a.example\nFallbackNTP=\n\n[Other]\n")
    with pytest.raises(SettingInvalid):
        render_timesyncd_conf(text, "x;reboot")


@pytest.mark.parametrize(("output", "offset"), [
    ("server 10.0.0.1, stratum 2, offset -0.001234, delay 0.02571\n"
     "10 Mar 22:00:00 ntpdate[1234]: adjust time server 10.0.0.1 offset -0.001234 sec\n", -0.001234),
    ("server 10.0.0.1, stratum 2, offset 12.5, delay 0.02\n"
     "10 Mar 22:00:00 ntpdate[99]: step time server 10.0.0.1 offset 12.500000 sec\n", 12.5),
    ("10 Mar 22:00:00 ntpdate[1]: no server suitable for synchronization found\n", None),
    ("", None),
])
def test_ntpdate_offset(output: str, offset: float | None) -> None:
    assert parse_ntpdate_offset(output) == offset
