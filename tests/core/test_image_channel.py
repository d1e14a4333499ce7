"""Image channels: what an operator may type, what the config carries, what the host runs."""

from __future__ import annotations

import pytest

from flageemonitor.core.image_channel import (
    ChannelInvalid,
    ImageChannel,
    from_config,
    image_reference,
    parse_channel,
    repository,
)

DIGEST = "sha256:" + "0f" * 32


@pytest.mark.parametrize(("text", "channel", "tag"), [
    ("stable", "stable", "stable"), ("canary", "canary", "canary"), (" 1.4.2 ", "pinned", "1.4.2"),
    ("2026.11.30-rc1", "pinned", "2026.11.30-rc1"), (DIGEST, "pinned", DIGEST),
])
def test_operator_input(text: str, channel: str, tag: str) -> None:
    assert parse_channel(text) == ImageChannel(channel, tag)


@pytest.mark.parametrize("text", ["latest", "", "1.0;rm -rf /", "a/b", "sha256:abc", "SHA256:" + "0F" * 32,
                                  ".hidden", "x" * 129, "1.0 2"])
def test_moving_or_malformed_pins_are_refused(text: str) -> None:
    with pytest.raises(ChannelInvalid):
        parse_channel(text)


@pytest.mark.parametrize(("image", "repo"), [
    ("ghcr.io/flagee-cloud/flageemonitor-client:latest", "ghcr.io/flagee-cloud/flageemonitor-client"),
    ("127.0.0.1:5000/flageemonitor-client:stable", "127.0.0.1:5000/flageemonitor-client"),
    ("127.0.0.1:5000/flageemonitor-client", "127.0.0.1:5000/flageemonitor-client"),
    (f"registry:5000/a/b:1.0@{DIGEST}", "registry:5000/a/b"),
    ("flageemonitor-client", "flageemonitor-client"),
])
def test_repository_strips_tag_and_digest_but_keeps_the_registry_port(image: str, repo: str) -> None:
    assert repository(image) == repo


def test_the_host_runs_the_env_files_repository_with_the_configs_tag() -> None:
    image = "127.0.0.1:5000/fm/client:latest"
    assert image_reference(image, None) == image  # a server before channels: unchanged
    assert image_reference(image, from_config({"PARAM_IMAGE_CHANNEL": "canary", "PARAM_IMAGE_TAG": "canary"})) \
        == "127.0.0.1:5000/fm/client:canary"
    assert image_reference(image, parse_channel("1.4.2")) == "127.0.0.1:5000/fm/client:1.4.2"
    assert image_reference(image, parse_channel(DIGEST)) == f"127.0.0.1:5000/fm/client@{DIGEST}"


@pytest.mark.parametrize("data", [
    {"PARAM_IMAGE_CHANNEL": "stable"}, {"PARAM_IMAGE_TAG": "canary"},
    {"PARAM_IMAGE_CHANNEL": "canary", "PARAM_IMAGE_TAG": "stable"},
    {"PARAM_IMAGE_CHANNEL": "stable", "PARAM_IMAGE_TAG": "1.0"},
    {"PARAM_IMAGE_CHANNEL": "pinned", "PARAM_IMAGE_TAG": "latest"},
    {"PARAM_IMAGE_CHANNEL": "pinned", "PARAM_IMAGE_TAG": 1},
])
def test_config_keys_must_agree(data: dict[str, object]) -> None:
    with pytest.raises(ChannelInvalid):
        from_config(data)
