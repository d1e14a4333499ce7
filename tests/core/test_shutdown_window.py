"""The shutdown decision: the window across midnight (end hour included), concentrators and
exceptions never, and a window that cannot work refused by config validation."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from flageemonitor.core.config_model import validate_config
from flageemonitor.core.errors import ConfigInvalid
from flageemonitor.core.hosts import Host
from flageemonitor.core.shutdown import decide, in_window

SP = ZoneInfo("America/Sao_Paulo")


def config(**extra: Any) -> Any:
    return validate_config({"PARAM_REDE": "REDE1", "TIMEZONE": "America/Sao_Paulo", **extra})


@pytest.mark.parametrize(("hour", "inside"), [
    (21, False), (22, True), (23, True), (0, True), (5, True), (6, True), (7, False), (12, False),
])
def test_default_window_22_to_6_includes_the_whole_end_hour(hour: int, inside: bool) -> None:
    assert in_window(hour, 22, 6) is inside


@pytest.mark.parametrize(("start", "end"), [(6, 22), (5, 5), (0, 23)])
def test_a_window_that_does_not_cross_midnight_never_matches(start: int, end: int) -> None:
    assert not any(in_window(hour, start, end) for hour in range(24))


@pytest.mark.parametrize(("start", "end"), [(6, 22), (5, 5), (0, 0)])
def test_config_validation_refuses_a_window_with_start_not_after_end(start: int, end: int) -> None:
    with pytest.raises(ConfigInvalid, match=r"shutdown_window: .*start .* must be after end .*across midnight"):
        config(shutdown_window={"start": start, "end": end})


def test_config_validation_keeps_range_checks() -> None:
    with pytest.raises(ConfigInvalid, match=r"shutdown_window\.start"):
        config(shutdown_window={"start": 24, "end": 6})
    assert config(shutdown_window={"start": 1, "end": 0}).shutdown_window.start == 1
    assert config().shutdown_window.start == 22 and config().shutdown_window.end == 6


def host(ip: str = "10.0.0.21", name: str = "REDE1-LOJA001-PDV201", **kw: Any) -> Host:
    return Host.build(name, ip, **kw)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 10, hour, minute, tzinfo=SP)


def test_inside_and_outside_the_window_say_when_in_which_zone() -> None:
    go = decide(host(), config(), at(23, 30), "America/Sao_Paulo")
    assert go.go and go.rule == "window"
    assert go.reason == "inside the shutdown window 22:00-06:59 (now 23:30 America/Sao_Paulo)"
    edge = decide(host(), config(), at(6, 59), "America/Sao_Paulo")
    assert edge.go
    no = decide(host(), config(), at(7, 0), "America/Sao_Paulo")
    assert not no.go and no.rule == "outside_window"
    assert no.reason == "outside the shutdown window 22:00-06:59 (now 07:00 America/Sao_Paulo)"


@pytest.mark.parametrize("cfg", [
    {"PARAM_IP_CONCENTRADORES": ["10.0.0.21"]},
    {"CONCENTRADORES": [{"ip": " 10.0.0.21 ", "loja": 1}]},
])
def test_concentrators_by_address_are_never_shut_down(cfg: dict[str, Any]) -> None:
    decision = decide(host(), config(**cfg), at(23), "America/Sao_Paulo")
    assert not decision.go and decision.rule == "concentrator"


def test_concentrators_by_type_are_never_shut_down() -> None:
    by_name = decide(host(name="REDE1-LOJA001-CONCENTRADOR1"), config(), at(23), "America/Sao_Paulo")
    by_tag = decide(host(tags={"tipo": "concentrador"}), config(), at(23), "America/Sao_Paulo")
    assert by_name.rule == by_tag.rule == "concentrator"
    assert not by_name.go and not by_tag.go


def test_exception_ips_are_never_shut_down_and_the_reason_names_the_key() -> None:
    decision = decide(host(), config(shutdown_exception_ips=["10.0.0.21"]), at(23), "America/Sao_Paulo")
    assert not decision.go and decision.rule == "exception"
    assert "shutdown_exception_ips" in decision.reason
