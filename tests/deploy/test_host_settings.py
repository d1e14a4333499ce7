"""The update engine's settings and container specs (pure: no engine needed). The engine itself
runs against a real engine and registry in tests/e2e."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flageemonitor.deploy.host.settings import HostSettings, SettingsError, parse_env_text
from flageemonitor.deploy.host.specs import (
    REF_LABEL,
    SPEC_LABEL,
    WATCHTOWER_ENABLE,
    WATCHTOWER_SCOPE,
    channel_spec,
    hold_spec,
    runtime_spec,
    watchtower_spec,
)

ENV = """# written by the installer
FLAGEEMONITOR_REDE=FLEET
FLAGEEMONITOR_TOKEN=fmt_a=b$(id)
FLAGEEMONITOR_IMAGE=127.0.0.1:5000/flageemonitor-client:stable
FLAGEEMONITOR_RUNTIME_NAME=fm
FLAGEEMONITOR_CONTAINER_ROOT=/ariusmonitor
FLAGEEMONITOR_HOST_STATE_DIR=/var/lib/flageemonitor
FLAGEEMONITOR_DOCKER_NETWORK=host
FLAGEEMONITOR_WATCHTOWER_INTERVAL=3600
not a setting line
TZ="America/Sao_Paulo"\r
"""


def settings(text: str = ENV, **environ: str) -> HostSettings:
    return HostSettings.from_values(parse_env_text(text), environ)


def test_env_file_values_are_taken_literally() -> None:
    values = parse_env_text(ENV)
    assert values["FLAGEEMONITOR_TOKEN"] == "fmt_a=b$(id)"
    assert values["TZ"] == '"America/Sao_Paulo"'  # docker --env-file keeps quotes: so do we
    assert "not a setting line" not in " ".join(values)


def test_settings_defaults_and_overrides() -> None:
    s = settings()
    assert (s.runtime, s.state_dir, s.watchtower_interval, s.health_timeout, s.hold_interval) == (
        "fm", "/ariusmonitor/state", 3600, 120, 3600)
    s = settings(FLAGEEMONITOR_RUNTIME_NAME="other", FLAGEEMONITOR_HEALTH_TIMEOUT="20",
                 FLAGEEMONITOR_HOLD_INTERVAL="3")
    assert (s.runtime, s.next_name, s.hold_name, s.health_timeout, s.hold_interval) == (
        "other", "other-next", "other-hold", 20, 3)


@pytest.mark.parametrize(
    ("text", "environ", "needle"),
    [
        ("FLAGEEMONITOR_RUNTIME_NAME=x\n", {}, "FLAGEEMONITOR_IMAGE is not set"),
        (ENV, {"FLAGEEMONITOR_RUNTIME_NAME": "bad name;rm"}, "invalid FLAGEEMONITOR_RUNTIME_NAME"),
        (ENV + "FLAGEEMONITOR_WATCHTOWER_INTERVAL=99999999999999999999\n", {}, "from 30 to 604800"),
        (ENV, {"FLAGEEMONITOR_HEALTH_TIMEOUT": "-1"}, "FLAGEEMONITOR_HEALTH_TIMEOUT"),
    ],
)
def test_bad_settings_are_one_clear_error(text: str, environ: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError, match=needle.replace("(", r"\(")):
        settings(text, **environ)


def test_missing_env_file_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read the env file"):
        HostSettings.load(tmp_path / "none.env")


def test_runtime_spec_mounts_the_state_directory_and_scopes_watchtower() -> None:
    spec = runtime_spec(settings())
    assert spec.binds == ["/var/lib/flageemonitor:/ariusmonitor/state"]
    assert spec.environment["FLAGEEMONITOR_STATE_DIR"] == "/ariusmonitor/state"
    assert spec.labels["com.centurylinklabs.watchtower.scope"] == "fm"
    assert spec.restart == "unless-stopped" and spec.network == "host" and spec.stop_timeout == 30
    assert SPEC_LABEL not in spec.labels  # added at creation, from the digest


def test_digest_ignores_the_name_and_sees_every_setting() -> None:
    spec = runtime_spec(settings())
    assert spec.named("fm-next").digest == spec.digest
    assert runtime_spec(settings(ENV + "FLAGEEMONITOR_REDE=OTHER\n")).digest != spec.digest
    assert runtime_spec(settings(ENV.replace(":stable", ":v2"))).digest != spec.digest


def test_watchtower_and_hold_specs() -> None:
    s = settings()
    wt = watchtower_spec(s, registry_login=True)
    assert wt.command == ["--cleanup", "--label-enable", "--scope", "fm", "--interval", "3600"]
    assert wt.labels["com.centurylinklabs.watchtower.enable"] == "false"
    assert "/var/run/docker.sock:/var/run/docker.sock" in wt.binds
    assert wt.environment["DOCKER_CONFIG"] == "/flageemonitor-registry"
    assert "DOCKER_CONFIG" not in watchtower_spec(s, registry_login=False).environment
    hold = hold_spec(s, image_id="sha256:good", held="sha256:bad", host_env_file="/etc/flageemonitor/x.env",
                     registry_login=False)
    assert hold.image == "sha256:good" and hold.command[-2:] == ["--held-image", "sha256:bad"]
    assert (hold.user, hold.network, hold.restart) == ("0:0", "none", "on-failure")
    assert "/etc/flageemonitor/x.env:/run/flageemonitor/host.env:ro" in hold.binds
    assert "FLAGEEMONITOR_HEALTH_TIMEOUT" not in hold.environment  # the env file's, not a one-off override


def test_a_pinned_runtime_is_invisible_to_watchtower_and_records_what_was_asked() -> None:
    s = settings()
    follows = runtime_spec(s, image="r/x:canary", requested="r/x:canary", channel="canary")
    pinned = runtime_spec(s, image="r/x@sha256:" + "a" * 64, requested="r/x:1.0.0", channel="pinned to 1.0.0",
                          watchtower=False)
    assert follows.labels[WATCHTOWER_ENABLE] == "true" and pinned.labels[WATCHTOWER_ENABLE] == "false"
    assert pinned.labels[REF_LABEL] == "r/x:1.0.0" and pinned.image.startswith("r/x@sha256:")
    assert follows.labels[WATCHTOWER_SCOPE] == pinned.labels[WATCHTOWER_SCOPE] == "fm"
    assert follows.digest != pinned.digest


def test_channel_follower_spec() -> None:
    s = settings(FLAGEEMONITOR_CHANNEL_INTERVAL="2")
    spec = channel_spec(s, image=s.image, host_env_file="/etc/flageemonitor/x.env", registry_login=False)
    assert spec.name == "fm-channel" and spec.command == ["host", "follow", "--env-file", "/run/flageemonitor/host.env"]
    assert (spec.user, spec.network, spec.restart) == ("0:0", "none", "unless-stopped")
    assert spec.environment["FLAGEEMONITOR_CHANNEL_INTERVAL"] == "2"
    assert settings().channel_interval == 60
    with pytest.raises(SettingsError, match="FLAGEEMONITOR_CHANNEL_INTERVAL"):
        settings(FLAGEEMONITOR_CHANNEL_INTERVAL="0")


def test_the_engine_takes_the_reference_from_the_last_valid_config(tmp_path: Path) -> None:
    from typing import Any, cast

    from flageemonitor.deploy.host.engine import Engine, EngineError

    engine = Engine(cast(Any, None), settings(), say=lambda _msg: None)  # reading the config needs no engine
    engine.state_dir = tmp_path
    config = tmp_path / "config_bot.json"
    assert engine.target() == ("127.0.0.1:5000/flageemonitor-client:stable", None)  # no config yet
    config.write_text('{"PARAM_REDE": "FLEET"}')
    assert engine.target()[0] == "127.0.0.1:5000/flageemonitor-client:stable"  # a server before channels
    config.write_text('{"PARAM_REDE": "FLEET", "PARAM_IMAGE_CHANNEL": "canary", "PARAM_IMAGE_TAG": "canary"}')
    assert engine.target()[0] == "127.0.0.1:5000/flageemonitor-client:canary"
    digest = "sha256:" + "c" * 64
    config.write_text(json.dumps({"PARAM_IMAGE_CHANNEL": "pinned", "PARAM_IMAGE_TAG": digest}))
    assert engine.target()[0] == f"127.0.0.1:5000/flageemonitor-client@{digest}"
    # an unreadable or inconsistent config moves nothing: guessing could move a pinned runtime
    for text in ('{"PARAM_IMAGE_CHANNEL": "stable", "PARAM_IMAGE_TAG": "1.0"}', "{not json"):
        config.write_text(text)
        with pytest.raises(EngineError, match=r"config_bot\.json"):
            engine.target()
