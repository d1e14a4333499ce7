"""The shared control_plane fixture serves what it seeded."""

from __future__ import annotations

import httpx

from tests.fixtures.server import ControlPlane


def test_control_plane_fixture_serves_seeded_config_and_new_versions(control_plane: ControlPlane) -> None:
    r = httpx.get(control_plane.config_url, headers=control_plane.headers())
    assert r.status_code == 200
    assert r.json()["PARAM_REDE"] == control_plane.rede
    assert r.json()["CONFIG_VERSION"] == 1
    version = control_plane.set_config({"PARAM_PROVIDER": "zanthus"})
    assert version == 2
    assert httpx.get(control_plane.config_url, headers=control_plane.headers()).json()["PARAM_PROVIDER"] == "zanthus"
    control_plane.revoke_token(control_plane.token_id)
    assert httpx.get(control_plane.config_url, headers=control_plane.headers()).status_code == 403
    listed = control_plane.admin("token", "list", "--client", control_plane.client, "--json", check=True)
    assert [t["revoked"] for t in __import__("json").loads(listed.stdout)] == [True]
