"""Image channels on the server: set with the admin CLI, audited, served in the config body (so
the ETag changes with the channel), never settable through `config set`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flageemonitor.server.services import networks
from tests.server.conftest import Api
from tests.server.test_cli import Cli

CONFIG = "/api/ingest/bot/config"
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def cli(db_url: str, tmp_path: Path) -> Cli:
    c = Cli(db_url, tmp_path)
    c("client", "add", "acme")
    c("network", "add", "--client", "acme", "ACME01")
    return c


def test_config_names_the_channel_and_a_channel_change_is_a_new_etag(api: Api) -> None:
    first = api.client.get(CONFIG, headers=api.headers())
    body = first.json()
    assert (body["PARAM_IMAGE_CHANNEL"], body["PARAM_IMAGE_TAG"]) == ("stable", "stable")
    etag = first.headers["etag"]

    with api.plane.session() as s:
        networks.set_channel(s, api.plane.rede, "canary", "test")
    moved = api.client.get(CONFIG, headers={**api.headers(), "If-None-Match": etag})
    assert moved.status_code == 200  # the old ETag no longer matches
    assert (moved.json()["PARAM_IMAGE_CHANNEL"], moved.json()["PARAM_IMAGE_TAG"]) == ("canary", "canary")
    assert moved.json()["CONFIG_VERSION"] == body["CONFIG_VERSION"]  # same config version, another body
    assert moved.headers["etag"] != etag

    with api.plane.session() as s:
        networks.set_channel(s, api.plane.rede, DIGEST, "test")
    pinned = api.client.get(CONFIG, headers={**api.headers(), "If-None-Match": moved.headers["etag"]})
    assert (pinned.json()["PARAM_IMAGE_CHANNEL"], pinned.json()["PARAM_IMAGE_TAG"]) == ("pinned", DIGEST)
    again = api.client.get(CONFIG, headers={**api.headers(), "If-None-Match": pinned.headers["etag"]})
    assert again.status_code == 304
    # the ETag is the hash of exactly the bytes served
    from flageemonitor.server.services.configs import etag_for

    assert pinned.headers["etag"] == etag_for(pinned.content.decode())


def test_cli_sets_shows_and_audits_the_channel_and_refuses_moving_tags_as_pins(cli: Cli) -> None:
    assert "stable" in cli("network", "channel", "ACME01")[1]
    out = cli("network", "channel", "ACME01", "canary")[1]
    assert "stable -> canary" in out
    assert "already on canary" in cli("network", "channel", "ACME01", "canary")[1]
    shown = json.loads(cli("network", "channel", "ACME01", "1.4.2", "--json")[1])
    assert shown == {"network": "ACME01", "channel": "pinned", "tag": "1.4.2", "previous": "canary",
                     "changed": True}
    listed = json.loads(cli("network", "list", "--json")[1])
    assert listed[0]["image_channel"] == "pinned to 1.4.2"
    audit = cli("audit", "list")[1]
    assert "network.channel" in audit and "stable -> canary" in audit and "canary -> pinned to 1.4.2" in audit
    assert audit.count("network.channel") == 2  # setting the same channel again records nothing

    for bad in ("latest", "x;y", "sha256:abc", "1.0/evil", ".x", " "):
        code, _, err = cli("network", "channel", "ACME01", bad, ok=False)
        last = err.strip().splitlines()[-1]  # (earlier lines: migration logs, when a test set up logging)
        assert code != 0 and last.startswith("error: channel "), (bad, err)
    assert json.loads(cli("network", "channel", "ACME01", "--json")[1])["tag"] == "1.4.2"  # unchanged
    code, _, err = cli("network", "channel", "NOPE", "canary", ok=False)
    assert code != 0 and "unknown network 'NOPE'" in err


def test_config_set_refuses_the_reserved_channel_keys(cli: Cli) -> None:
    path = cli.config_file({"PARAM_PROVIDER": "arius", "PARAM_IMAGE_TAG": "canary"})
    code, _, err = cli("config", "set", "--network", "ACME01", path, ok=False)
    assert code != 0
    assert "PARAM_IMAGE_TAG: set by the server" in err and "network channel ACME01" in err
    assert json.loads(cli("config", "history", "--network", "ACME01", "--json")[1]) == []  # nothing stored
