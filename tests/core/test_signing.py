"""The signature format, pinned keys, the key list, the server's key file and the proxy's trust."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from flageemonitor.core import signing
from flageemonitor.core.signing import SigningError, parse_header, parse_key_list, parse_pinned, public_of, verify
from flageemonitor.proxy.config_trust import LEARNED_NAME, Trust
from flageemonitor.server.core.signer import Signer, SigningKeyError

BODY = b'{\n  "PARAM_REDE": "TESTNET"\n}\n'


def test_a_signature_verifies_the_exact_bytes_only() -> None:
    key = Ed25519PrivateKey.generate()
    pub = public_of(key)
    header = signing.sign_entry(key, BODY)
    assert verify(BODY, header, {pub.id: pub}) == pub
    with pytest.raises(SigningError, match="does not match the body"):
        verify(BODY.replace(b"TESTNET", b"TESTNEU"), header, {pub.id: pub})
    with pytest.raises(SigningError, match="does not match the body"):
        verify(BODY + b" ", header, {pub.id: pub})
    with pytest.raises(SigningError, match="not signed"):
        verify(BODY, None, {pub.id: pub})
    other = public_of(Ed25519PrivateKey.generate())
    with pytest.raises(SigningError, match=f"signed by key {pub.id}, which this proxy does not trust"):
        verify(BODY, header, {other.id: other})


def test_a_header_with_several_entries_is_accepted_by_any_trusted_one() -> None:
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    header = f"{signing.sign_entry(a, BODY)}, {signing.sign_entry(b, BODY)}"
    assert [kid for kid, _ in parse_header(header)] == [public_of(a).id, public_of(b).id]
    assert verify(BODY, header, {public_of(b).id: public_of(b)}) == public_of(b)


@pytest.mark.parametrize("header", ["keyid=zz; sig=abc", "sig=only", "keyid=0123456789abcdef", "x" * 500,
                                    "keyid=0123456789abcdef; sig=" + "A" * 86 + "==; extra=1"])
def test_a_malformed_signature_header_is_refused(header: str) -> None:
    with pytest.raises(SigningError, match="malformed"):
        parse_header(header)


def test_pinned_keys_round_trip_and_bad_pins_name_the_problem() -> None:
    keys = [public_of(Ed25519PrivateKey.generate()) for _ in range(2)]
    text = signing.format_pinned(keys)
    assert parse_pinned(text) == {k.id: k for k in keys}
    assert parse_pinned(f" {keys[0].pinned} , ,") == {keys[0].id: keys[0]}
    assert parse_pinned("") == {}
    with pytest.raises(SigningError, match="does not match its key"):
        parse_pinned(f"{keys[1].id}:{keys[0].b64}")
    with pytest.raises(SigningError, match="not base64"):
        parse_pinned(f"{keys[0].id}:not*base64")
    with pytest.raises(SigningError, match="32 bytes"):
        parse_pinned(f"{keys[0].id}:{base64.b64encode(b'short').decode()}")
    with pytest.raises(SigningError, match="keyid:base64"):
        parse_pinned(keys[0].b64)


def test_the_key_list_is_never_mistaken_for_a_config() -> None:
    pub = public_of(Ed25519PrivateKey.generate())
    body = signing.key_list_body([pub], pub)
    assert parse_key_list(body) == {pub.id: pub}
    for bad, why in ((BODY, "not a config signing key list"), (b"[", "not JSON"),
                     (body.replace(pub.id.encode(), b"0" * 16), "does not match its key"),
                     (json.dumps({"purpose": signing.KEY_LIST_PURPOSE, "keys": []}).encode(), "empty")):
        with pytest.raises(SigningError, match=why):
            parse_key_list(bad)


def test_the_signing_key_file_is_created_private_and_rotated_and_retired(tmp_path: Path) -> None:
    s = Signer(tmp_path / "keys" / "signing.key")
    first = s.public_keys()
    assert len(first) == 1
    assert (s.key_file.stat().st_mode & 0o777) == 0o600
    worker = Signer(s.key_file)  # another worker process reading the same file
    assert verify(BODY, worker.sign(BODY), {first[0].id: first[0]}) == first[0]
    new = s.rotate()
    assert [k.id for k in s.public_keys()] == [new.id, first[0].id]
    assert (s.key_file.stat().st_mode & 0o777) == 0o600
    assert verify(BODY, worker.sign(BODY), {new.id: new}) == new  # the worker noticed the new file
    listed = worker.key_list()
    assert parse_key_list(listed.body) == {new.id: new, first[0].id: first[0]}
    assert {kid for kid, _ in parse_header(listed.signature)} == {new.id, first[0].id}
    with pytest.raises(SigningKeyError, match="signs configs now"):
        s.retire(new.id)
    with pytest.raises(SigningKeyError, match="no signing key"):
        s.retire("0" * 16)
    assert s.retire(first[0].id) == first[0]
    assert [k.id for k in worker.public_keys()] == [new.id]


def test_a_body_is_signed_once_per_signing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    real = signing.sign_entry

    def counting(key: Ed25519PrivateKey, body: bytes) -> str:
        calls.append(body)
        return real(key, body)

    monkeypatch.setattr(signing, "sign_entry", counting)  # what the signer calls
    s = Signer(tmp_path / "signing.key")
    assert {s.sign(BODY) for _ in range(50)} == {s.sign(BODY)}
    assert calls == [BODY]
    s.rotate()
    s.sign(BODY)
    s.sign(BODY)
    assert calls == [BODY, BODY]


def test_a_damaged_signing_key_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    path.write_text("not-a-key\n")
    with pytest.raises(SigningKeyError, match="malformed key"):
        Signer(path).sign(BODY)
    path.write_text("")
    with pytest.raises(SigningKeyError, match="empty"):
        Signer(path).public_keys()


def test_the_proxy_learns_a_key_list_only_from_a_key_it_trusts(tmp_path: Path) -> None:
    old, new, evil = (Ed25519PrivateKey.generate() for _ in range(3))
    trust = Trust(tmp_path, public_of(old).pinned)
    assert trust.trusted() == {public_of(old).id: public_of(old)}
    forged = signing.key_list_body([public_of(evil)], public_of(evil))
    with pytest.raises(SigningError, match="key list was refused"):
        trust.learn(forged, signing.sign_entry(evil, forged))
    assert not (tmp_path / LEARNED_NAME).exists()
    overlap = signing.key_list_body([public_of(new), public_of(old)], public_of(new))
    trust.learn(overlap, signing.sign_entry(new, overlap) + ", " + signing.sign_entry(old, overlap))
    assert set(trust.trusted()) == {public_of(new).id, public_of(old).id}
    retired = signing.key_list_body([public_of(new)], public_of(new))
    trust.learn(retired, signing.sign_entry(new, retired))  # vouched by the key learned during the overlap
    assert set(trust.trusted()) == {public_of(new).id}
    # the operator re-pins (installer re-run): what was learned under the old pins is dropped
    assert set(Trust(tmp_path, public_of(evil).pinned).trusted()) == {public_of(evil).id}
    assert Trust(tmp_path, "").trusted() == {}
    (tmp_path / LEARNED_NAME).write_text("{damaged")
    assert set(trust.trusted()) == {public_of(old).id}
