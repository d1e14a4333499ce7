"""Signed configs at the API: the header over the exact body, the public key list, rotation
seen by the running app at its next request, and a broken key file as one clear 500."""

from __future__ import annotations

from flageemonitor.core.signing import HEADER, parse_header, parse_key_list, verify
from flageemonitor.server.core.signer import Signer
from flageemonitor.server.services import signing
from tests.server.conftest import Api

CONFIG = "/api/ingest/bot/config"
KEYS = CONFIG + "/keys"


def test_the_config_is_signed_and_a_rotation_applies_at_the_next_request(api: Api) -> None:
    signer = Signer(api.settings.signing_file)
    first = api.client.get(CONFIG, headers=api.headers())
    assert first.status_code == 200
    old = signer.public_keys()[0]
    assert verify(first.content, first.headers[HEADER], {old.id: old}) == old
    not_modified = api.client.get(CONFIG, headers={**api.headers(), "If-None-Match": first.headers["etag"]})
    assert not_modified.status_code == 304 and not_modified.content == b""

    with api.plane.session() as s:
        new = signing.rotate(s, signer, "test")
    again = api.client.get(CONFIG, headers=api.headers())
    assert again.content == first.content
    assert verify(again.content, again.headers[HEADER], {new.id: new}) == new

    listed = api.client.get(KEYS)  # no token: public keys only
    assert listed.status_code == 200
    assert parse_key_list(listed.content) == {new.id: new, old.id: old}
    assert {kid for kid, _ in parse_header(listed.headers[HEADER])} == {new.id, old.id}

    with api.plane.session() as s:
        signing.retire(s, signer, old.id, "test")
    assert parse_key_list(api.client.get(KEYS).content) == {new.id: new}


def test_an_unreadable_signing_key_is_one_clear_500_without_the_path(api: Api) -> None:
    api.settings.signing_file.parent.mkdir(parents=True, exist_ok=True)
    api.settings.signing_file.write_text("damaged\n")
    for path, headers in ((CONFIG, api.headers()), (KEYS, {})):
        r = api.client.get(path, headers=headers)
        assert r.status_code == 500, path
        assert r.json()["error"] == "signing_unavailable"
        assert "FLAGEEMONITOR_SIGNING_KEY_FILE" in r.json()["message"]
        assert str(api.settings.signing_file) not in r.text
