"""Bootstrap installers: rendering, headers, and values that must never execute."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from flageemonitor import deploy
from flageemonitor.server import bootstrap
from flageemonitor.server.services import networks
from tests.server.conftest import Api, make_api

HOSTILE = "evil\"$(touch {marker})`touch {marker}`'; touch {marker}\nDEFAULT_REDE=pwned $(id) \\ end"


def _values(**overrides: str) -> dict[str, str]:
    values = {name: f"value-of-{name.lower()}" for name in deploy.DEFAULT_NAMES}
    values.update(overrides)
    return values


def _prelude(script: str) -> str:
    """The rendered script with `main` stubbed out: only the assignments run."""
    last_line = 'main "$@"'
    assert script.rstrip().endswith(last_line), "installer must end with its main call; refusing to run it"
    return script.rstrip()[: -len(last_line)] + "main() { :; }\n"


def test_install_sh_is_rendered_for_the_token_network_with_integrity_headers(api: Api) -> None:
    r = api.client.get("/api/bootstrap/install.sh", headers=api.headers())
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/x-shellscript")
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-sha256"] == hashlib.sha256(r.content).hexdigest()
    text = r.text
    assert deploy.PLACEHOLDER not in text
    assert f"DEFAULT_REDE='{api.plane.rede}'\n" in text
    assert "DEFAULT_SERVER_URL='http://cp.test'\n" in text
    assert "DEFAULT_API_BASE='http://cp.test/api/ingest'\n" in text
    assert "DEFAULT_TIMEZONE='America/Sao_Paulo'\n" in text
    assert api.plane.token not in text
    for name in deploy.DEFAULT_NAMES:
        assert re.search(rf"^{name}='", text, re.MULTILINE), name
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)


def test_install_sh_accepts_bearer_and_uses_the_public_url_when_set(api: Api) -> None:
    with make_api(api.plane, public_url="https://monitor.example.com") as client:
        r = client.get("/api/bootstrap/install.sh", headers={"Authorization": f"Bearer {api.plane.token}"})
    assert r.status_code == 200
    assert "DEFAULT_API_BASE='https://monitor.example.com/api/ingest'\n" in r.text


def test_install_ps1_uses_powershell_literals(api: Api) -> None:
    r = api.client.get("/api/bootstrap/install.ps1", headers=api.headers())
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-sha256"] == hashlib.sha256(r.content).hexdigest()
    assert f"$DefaultRede = '{api.plane.rede}'\n" in r.text
    assert "$InstallerVersion = '" in r.text
    assert api.plane.token not in r.text


def test_bootstrap_needs_a_valid_token_with_bootstrap_scope(api: Api) -> None:
    assert api.client.get("/api/bootstrap/install.sh").status_code == 401
    assert api.client.get("/api/bootstrap/install.sh", headers=api.headers("fmt_" + "Z" * 43)).status_code == 401
    config_only = api.plane.issue_token(scopes=["config:read"])
    r = api.client.get("/api/bootstrap/install.ps1", headers=api.headers(config_only))
    assert r.status_code == 403
    assert "bootstrap:read" in r.json()["message"]


def test_hostile_network_values_are_inert_literals_in_the_shell_installer(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    hostile = HOSTILE.format(marker=marker)
    rendered = bootstrap.render_linux(_values(DEFAULT_REDE=hostile, DEFAULT_IMAGE=hostile))
    script = _prelude(rendered.body) + '\nprintf "%s" "$DEFAULT_REDE" > "$1"\nprintf "%s" "$DEFAULT_IMAGE" > "$2"\n'
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    out_rede, out_image = tmp_path / "rede", tmp_path / "image"
    subprocess.run(["bash", "-s", "--", str(out_rede), str(out_image)], input=script, text=True, check=True)
    assert out_rede.read_text() == hostile
    assert out_image.read_text() == hostile
    assert not marker.exists()


def test_hostile_image_set_by_the_operator_is_served_inert(api: Api, tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    hostile = HOSTILE.format(marker=marker)
    with api.plane.session() as s:
        networks.add(s, api.plane.client, "HOSTILE", "test", image=hostile)
    token = api.plane.issue_token(network="HOSTILE")
    r = api.client.get("/api/bootstrap/install.sh", headers=api.headers(token))
    assert r.status_code == 200
    out = tmp_path / "image"
    script = _prelude(r.text) + '\nprintf "%s" "$DEFAULT_IMAGE" > "$1"\n'
    subprocess.run(["bash", "-s", "--", str(out)], input=script, text=True, check=True)
    assert out.read_text() == hostile
    assert not marker.exists()


def test_powershell_literals_double_every_single_quote_form() -> None:
    assert bootstrap.powershell_literal("it's") == "'it''s'"
    assert bootstrap.powershell_literal("a\u2019b") == "'a\u2019\u2019b'"
    assert bootstrap.powershell_literal('$(whoami) "x"') == "'$(whoami) \"x\"'"
    assert bootstrap.pascal_name("DEFAULT_WATCHTOWER_INTERVAL") == "DefaultWatchtowerInterval"
    rendered = bootstrap.render_windows(_values(DEFAULT_REDE="O'Brien"))
    assert "$DefaultRede = 'O''Brien'\n" in rendered.body


def test_nul_bytes_are_refused_not_rendered() -> None:
    with pytest.raises(bootstrap.RenderError):
        bootstrap.render_linux(_values(DEFAULT_IMAGE="a\x00b"))
    with pytest.raises(bootstrap.RenderError):
        bootstrap.render_windows(_values(DEFAULT_IMAGE="a\x00b"))


def test_installer_is_never_rendered_for_a_host_name_nobody_configured(api: Api) -> None:
    evil = {**api.headers(), "Host": "evil.example:4444"}
    r = api.client.get("/api/bootstrap/install.sh", headers=evil)
    assert r.status_code == 400 and r.json()["error"] == "host_not_allowed"
    assert "FLAGEEMONITOR_PUBLIC_URL" in r.json()["message"] and "evil.example:4444/" not in r.text
    assert api.client.get("/api/bootstrap/install.ps1", headers=evil).status_code == 400
    # a configured public URL wins over any Host header
    with make_api(api.plane, public_url="https://monitor.example.com") as client:
        body = client.get("/api/bootstrap/install.sh", headers=evil).text
        assert "DEFAULT_SERVER_URL='https://monitor.example.com'\n" in body and "evil" not in body
    # nothing configured: loopback names (the demo, a local test) still work, others are refused
    with make_api(api.plane, allowed_hosts=()) as client:
        local = client.get("/api/bootstrap/install.sh", headers={**api.headers(), "Host": "127.0.0.1:8000"})
        assert local.status_code == 200 and "DEFAULT_SERVER_URL='http://127.0.0.1:8000'\n" in local.text
        assert client.get("/api/bootstrap/install.sh", headers=evil).status_code == 400
