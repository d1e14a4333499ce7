"""The JSON admin API: admin tokens only, the same service functions (and audit) as the CLI."""

from __future__ import annotations

import json
import uuid

from tests.server.conftest import Api
from tests.server.fleet_bodies import checkin, host, run_report
from tests.server.web_login import admin_token, create_person, sign_in


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_only_admin_tokens_open_the_admin_api(api: Api) -> None:
    r = api.client.get("/api/admin/clients")
    assert r.status_code == 401 and "admin token issue" in r.json()["message"]
    for headers in (api.headers(), _auth(api.plane.token), _auth("fma_" + "Z" * 43)):
        r = api.client.get("/api/admin/clients", headers=headers)
        assert r.status_code == 401, headers
    create_person(api.plane)
    assert sign_in(api.client).status_code == 303  # a web session is not an admin credential either
    assert api.client.get("/api/admin/clients").status_code == 401
    token = admin_token(api.plane)
    r = api.client.get("/api/admin/clients", headers=_auth(token))
    assert r.status_code == 200
    assert r.json() == [{"id": 1, "name": "test-client", "networks": ["TESTNET"]}]
    # an admin token fetches no config
    assert api.client.get("/api/ingest/bot/config", headers=api.headers(token)).status_code == 401


def test_revoked_admin_token_is_refused_at_once(api: Api) -> None:
    first, second = admin_token(api.plane, "first"), admin_token(api.plane, "second")
    listed = api.client.get("/api/admin/admin-tokens", headers=_auth(first)).json()
    assert [t["name"] for t in listed] == ["first", "second"] and all("token" not in t for t in listed)
    r = api.client.post(f"/api/admin/admin-tokens/{listed[1]['id']}/revoke", headers=_auth(first))
    assert r.status_code == 200 and r.json()["revoked"] is True
    r = api.client.get("/api/admin/clients", headers=_auth(second))
    assert r.status_code == 403 and r.json()["error"] == "token_revoked"


def test_admin_api_does_what_the_cli_does_with_the_same_audit(api: Api) -> None:
    h = _auth(admin_token(api.plane, "backoffice"))
    assert api.client.post("/api/admin/clients", json={"name": "ACME"}, headers=h).status_code == 201
    r = api.client.post("/api/admin/clients", json={"name": "ACME"}, headers=h)
    assert r.status_code == 409 and "already exists" in r.json()["message"]
    r = api.client.post("/api/admin/networks", json={"code": "ACME01", "client": "ACME", "timezone": "Mars/Base"},
                        headers=h)
    assert r.status_code == 400 and "time zone" in r.json()["message"]
    r = api.client.post("/api/admin/networks", json={"code": "ACME01", "client": "ACME", "provider": "arius"},
                        headers=h)
    assert r.status_code == 201 and r.json()["client"] == "ACME"
    assert api.client.post("/api/admin/networks", json={"code": "X", "client": "NOPE"}, headers=h).status_code == 404

    r = api.client.post("/api/admin/networks/ACME01/configs", json={"config": {"max_threads": "many"}}, headers=h)
    assert r.status_code == 400 and "max_threads" in r.json()["message"]
    for threads in (10, 20):
        r = api.client.post("/api/admin/networks/ACME01/configs",
                            json={"config": {"PARAM_PROVIDER": "arius", "max_threads": threads}, "comment": "t"},
                            headers=h)
        assert r.status_code == 201
    assert [v["version"] for v in api.client.get("/api/admin/networks/ACME01/configs", headers=h).json()] == [1, 2]
    latest = api.client.get("/api/admin/networks/ACME01/config", headers=h).json()
    assert latest["version"] == 2 and latest["config"]["max_threads"] == 20
    assert latest["config"]["PARAM_REDE"] == "ACME01"
    diff = api.client.get("/api/admin/networks/ACME01/diff", headers=h).json()["diff"]
    assert '-  "max_threads": 10' in diff and '+  "max_threads": 20' in diff
    r = api.client.post("/api/admin/networks/ACME01/rollback", json={"to": 1}, headers=h)
    assert r.status_code == 201 and r.json()["comment"] == "rollback to v1"
    assert api.client.get("/api/admin/networks/ACME01/configs/3", headers=h).json()["config"]["max_threads"] == 10
    assert api.client.get("/api/admin/networks/ACME01/configs/9", headers=h).status_code == 404

    r = api.client.post("/api/admin/tokens", json={"client": "ACME", "networks": ["ACME01"]}, headers=h)
    assert r.status_code == 201
    issued = r.json()
    assert issued["token"].startswith("fmt_") and "report:write" in issued["scopes"]
    fetched = api.client.get("/api/ingest/bot/config", headers=api.headers(issued["token"]))
    assert fetched.status_code == 200 and json.loads(fetched.content)["max_threads"] == 10
    listed = api.client.get("/api/admin/tokens", params={"client": "ACME"}, headers=h).json()
    assert [t["id"] for t in listed] == [issued["id"]] and "token" not in listed[0]
    assert api.client.post(f"/api/admin/tokens/{issued['id']}/revoke", headers=h).json()["revoked"] is True
    assert api.client.get("/api/ingest/bot/config", headers=api.headers(issued["token"])).status_code == 403
    r = api.client.post("/api/admin/tokens", json={"client": "ACME", "scopes": ["root"]}, headers=h)
    assert r.status_code == 422 and "config:read" in r.text  # the schema lists the scopes

    entries = api.client.get("/api/admin/audit", params={"target": "network:ACME01"}, headers=h).json()
    assert {e["action"] for e in entries} >= {"network.add", "config.set", "config.rollback"}
    assert {e["actor"] for e in entries} == {"api:backoffice"}
    cli = api.plane.admin("network", "list", "--json")  # the CLI reads what the API wrote
    assert "ACME01" in [n["code"] for n in json.loads(cli.stdout)]


def test_admin_api_gives_the_fleet_as_json(api: Api) -> None:
    proxy = str(uuid.uuid4())
    api.client.post("/api/ingest/bot/checkin", json=checkin(proxy, hostname="px1"), headers=api.headers())
    api.client.post("/api/ingest/bot/runs", json=run_report(proxy, [host("TESTNET-LOJA001-PDV201", "timeout")]),
                    headers=api.headers())
    fleet = api.client.get("/api/admin/fleet", headers=_auth(admin_token(api.plane))).json()
    [net] = fleet
    [px] = net["proxies"]
    assert (net["code"], px["uid"], px["hostname"], px["state"]) == ("TESTNET", proxy, "px1", "online")
    assert px["runs"][0]["failures"] == 1


def test_a_network_named_twice_binds_the_token_to_it_once(api: Api) -> None:
    h = _auth(admin_token(api.plane))
    r = api.client.post("/api/admin/tokens", json={"client": "test-client", "networks": ["TESTNET"] * 2}, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["networks"] == ["TESTNET"]
    assert api.client.get("/api/ingest/bot/config", headers=api.headers(r.json()["token"])).status_code == 200
    cli = api.plane.admin("token", "issue", "--client", "test-client", "--network", "TESTNET", "--network", "TESTNET")
    assert cli.returncode == 0, cli.stderr
