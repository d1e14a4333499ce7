"""Collectors that talk to Zabbix, against the real Zabbix 6.0 and 7.0: the checkout operator from
a real PostgreSQL (NEO tables) into trapper history, the coupon connection trap, and the printer
macros from a real MariaDB store database."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from devtools.bi_standin import BiStandIn

from tests.collectors.conftest import by_store, config_data, local, realistic_nfce, run
from tests.fixtures.mariadb import StorePair
from tests.fixtures.postgres import PostgresCluster
from tests.fixtures.zabbix import ZabbixServer, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.collectors, pytest.mark.zabbix]

CHAR, TEXT = 1, 4


def _group(api: Any, name: str) -> str:
    found = api.hostgroup.get(filter={"name": [name]}, output=["groupid"])
    return str(found[0]["groupid"]) if found else str(api.hostgroup.create(name=name)["groupids"][0])


def _host(api: Any, name: str, groupid: str, macros: list[dict[str, Any]] | None = None) -> str:
    params: dict[str, Any] = {"host": name, "groups": [{"groupid": groupid}],
                              "interfaces": [{"type": 1, "main": 1, "useip": 1, "ip": "127.0.0.1", "dns": "",
                                              "port": "10050"}]}
    if macros:
        params["macros"] = macros
    return str(api.host.create(**params)["hostids"][0])


def _trapper(api: Any, hostid: str, key: str, value_type: int) -> None:
    api.item.create(hostid=hostid, name=key, key_=key, type=2, value_type=value_type, history="1d")


def _rede(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:4].upper()}"


# ------------------------------------------------------------------ status_caixa
NEO = [
    "CREATE TABLE loja (id serial PRIMARY KEY, codigo integer NOT NULL)",
    "CREATE TABLE pdv (id serial PRIMARY KEY, codigo integer NOT NULL, lojaid integer REFERENCES loja(id))",
    "CREATE TABLE pdvvalor (id serial PRIMARY KEY, pdvid integer REFERENCES pdv(id), coo integer, tipo integer, "
    "operadorid varchar(20))",
]


def _neo(postgres: PostgresCluster) -> str:
    dbname = f"neo_{uuid.uuid4().hex[:8]}"
    postgres.create_database(dbname)
    with psycopg.connect(f"host=127.0.0.1 port={postgres.port} user=postgres dbname={dbname}",
                         autocommit=True) as conn:
        for statement in NEO:
            conn.execute(statement)
        conn.execute("INSERT INTO loja (id, codigo) VALUES (1, 1), (2, 2)")
        conn.execute("INSERT INTO pdv (id, codigo, lojaid) VALUES (1, 201, 1), (2, 202, 1), (3, 301, 2)")
        rows = [(1, 10, 5, "OP7"), (1, 12, 5, "OP9"), (1, 13, 1, "not-an-operator"),  # latest tipo 5: OP9
                (2, 40, 5, "O'Neil \"42\""), (2, 3, 5, "old"), (3, 7, 5, "1234")]
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO pdvvalor (pdvid, coo, tipo, operadorid) VALUES (%s, %s, %s, %s)", rows)
    return dbname


def test_checkout_operators_land_in_zabbix_history(zabbix_server: ZabbixServer, postgres: PostgresCluster,
                                                   tmp_path: Path) -> None:
    rede = _rede("CX")
    api = zabbix_server.api()
    gid = _group(api, rede)
    expected = {f"{rede}-LOJA001-PDV201": "OP9", f"{rede}-LOJA001-PDV202": "O'Neil \"42\"",
                f"{rede}-LOJA002-PDV301": "1234"}
    for host in expected:
        _trapper(api, _host(api, host, gid), "pdv.neo.operador_id", CHAR)
    dbname = _neo(postgres)
    cfg = zabbix_server.config(rede, PARAM_IP_CONCENTRADORES=["127.0.0.1"], DB_PG_PORT=postgres.port,
                               DB_PG_USER="postgres", DB_PG_DB=dbname, DB_PG_PASS="pg-Secret,1",
                               PARAM_ZABBIX_SENDER_SERVER=zabbix_server.trapper_host,
                               PARAM_ZABBIX_SENDER_PORT=zabbix_server.trapper_port)
    planned = run("status_caixa", cfg, tmp_path, dry_run=True, loja="LOJA002")
    assert local(planned)["concentrators"][0]["would_send"] == {f"{rede}-LOJA002-PDV301": "1234"}

    def delivered() -> bool:  # new trapper items are accepted once the server's cache reloads
        report = run("collect_checkout_status", cfg, tmp_path)
        store = local(report)["concentrators"][0]
        return store["read"] == 3 and store["sent"] == 3 and not report.failed

    wait_for("the trapper to accept pdv.neo.operador_id", delivered, deadline_s=90, every_s=2)
    def history() -> dict[str, str | None]:
        return {host: zabbix_server.last_value(host, "pdv.neo.operador_id") for host in expected}

    wait_for("the operators in history", lambda: history() == expected, deadline_s=60)


def test_checkout_status_reports_a_database_it_cannot_read(zabbix_server: ZabbixServer, postgres: PostgresCluster,
                                                           tmp_path: Path) -> None:
    cfg = zabbix_server.config("CXDOWN", PARAM_IP_CONCENTRADORES=["127.0.0.1"], DB_PG_PORT=postgres.port,
                               DB_PG_USER="postgres", DB_PG_DB="no_such_db",
                               PARAM_ZABBIX_SENDER_SERVER=zabbix_server.trapper_host,
                               PARAM_ZABBIX_SENDER_PORT=zabbix_server.trapper_port)
    report = run("status_caixa", cfg, tmp_path)
    assert report.failed
    assert "no_such_db" in local(report)["concentrators"][0]["error"]
    missing = zabbix_server.config("CXDOWN", PARAM_IP_CONCENTRADORES=["127.0.0.1"])
    report = run("status_caixa", missing, tmp_path)
    assert report.failed and "DB_PG" in local(report)["detail"]


# ------------------------------------------------------------------ the coupon connection trap
def test_coupon_run_sends_its_connection_trap(zabbix_server: ZabbixServer, stores: StorePair, bi: BiStandIn,
                                              tmp_path: Path) -> None:
    from datetime import datetime

    rede = _rede("TR")
    api = zabbix_server.api()
    proxy_host = f"{rede}-PROXY"
    _trapper(api, _host(api, proxy_host, _group(api, rede)), "concentrador.mysql.conexao", TEXT)
    zabbix_server.send_until_processed(proxy_host, "concentrador.mysql.conexao", '{"status":"probe"}')
    realistic_nfce(stores.first, 1, datetime.now().replace(microsecond=0))
    data = config_data(stores, bi, PARAM_REDE=rede, PARAM_IP_CONCENTRADORES=[stores.first.address, stores.down],
                       PARAM_ZABBIX_SENDER_SERVER=zabbix_server.trapper_host,
                       PARAM_ZABBIX_SENDER_PORT=zabbix_server.trapper_port)
    from flageemonitor.core.config_model import validate_config

    report = run("cupons", validate_config(data), tmp_path)
    assert report.failed and by_store(report)[stores.first.address]["error"] is None

    def values() -> list[dict[str, Any]]:
        item = api.item.get(host=proxy_host, filter={"key_": ["concentrador.mysql.conexao"]}, output=["itemid"])
        hist = api.history.get(itemids=[item[0]["itemid"]], history=TEXT, sortfield="clock", sortorder="DESC",
                               limit=10)
        return [json.loads(h["value"]) for h in hist if "message" in h["value"]]

    got = wait_for("both connection traps", lambda: len(values()) >= 2 and values(), deadline_s=60)
    by_status = {v["status"]: v["message"] for v in got}
    assert by_status["sucesso"].startswith(f"NFCE - {stores.first.address}: read ")
    assert by_status["erro"].startswith(f"NFCE - {stores.down}: read 0") and "ERROR" in by_status["erro"]
    assert stores.password not in json.dumps(got)


# ------------------------------------------------------------------ printer macros
PATH, LIB = "{$PDV_IMPRESSORA_PATH}", "{$PDV_IMPRESSORA_LIB}"


def _macros(api: Any, host: str) -> dict[str, str | None]:
    found = api.host.get(filter={"host": [host]}, selectMacros=["macro", "value", "type"], output=["hostid"])
    return {m["macro"]: m.get("value") for m in found[0]["macros"]}


def test_printer_macros_set_once_others_kept(zabbix_server: ZabbixServer, stores: StorePair, tmp_path: Path) -> None:
    rede = _rede("PR")
    api = zabbix_server.api()
    gid = _group(api, rede)
    h201, h202, h301 = f"{rede}-LOJA001-PDV201", f"{rede}-LOJA001-PDV202", f"{rede}-LOJA002-PDV301"
    _host(api, h201, gid, [{"macro": "{$OTHER}", "value": "keep me"}, {"macro": PATH, "value": "/dev/old"},
                           {"macro": "{$SECRET}", "value": "s3cret", "type": 1}])
    _host(api, h202, gid)
    _host(api, h301, gid, [{"macro": "{$OTHER}", "value": "store 2"}])
    stores.first.executemany("INSERT INTO impnaofiscal (codigo, disp_imp, nomelib) VALUES (%s, %s, %s)",
                             [(1, "/dev/ttyS0", "libbema.so"), (2, "/dev/usb/lp0", "libelgin.so")],
                             database="controle")
    stores.first.executemany("INSERT INTO pf_hw (codigo, descricao, codimpnfiscal) VALUES (%s, %s, %s)",
                             [("1201", "PDV 201", 1), ("1202", "PDV 202", 2), ("1203", "PDV 203", 1)],
                             database="controle")
    stores.second.executemany("INSERT INTO impnaofiscal (codigo, disp_imp, nomelib) VALUES (%s, %s, %s)",
                              [(7, "/dev/lp1", "libdaruma.so")], database="controle")
    stores.second.executemany("INSERT INTO pf_hw (codigo, descricao, codimpnfiscal) VALUES (%s, %s, %s)",
                              [("99", "Caixa L002 P301", 7), ("98", "Balcao sem numero", 7)], database="controle")
    db = {"DB_PORT": stores.port, "DB_USER": stores.user, "DB_PASS": stores.password}
    cfg = zabbix_server.config(rede, CONCENTRADORES=[{"ip": stores.first.address, "loja": 1}], **db)

    planned = run("pdv_atualiza_impressora", cfg, tmp_path, dry_run=True)
    assert not planned.failed, local(planned)
    assert sorted(local(planned)["lines"][:4]) == [
        f"{h201}: {LIB} None -> 'libbema.so'", f"{h201}: {PATH} '/dev/old' -> '/dev/ttyS0'",
        f"{h202}: {LIB} None -> 'libelgin.so'", f"{h202}: {PATH} None -> '/dev/usb/lp0'"]
    assert local(planned)["missing"] == [f"{rede}-LOJA001-PDV203"]
    assert _macros(api, h201)[PATH] == "/dev/old" and PATH not in _macros(api, h202)  # dry run changed nothing

    report = run("refresh_endpoint_printer", cfg, tmp_path)
    assert not report.failed, local(report)
    m201 = _macros(api, h201)
    assert m201[PATH] == "/dev/ttyS0" and m201[LIB] == "libbema.so" and m201["{$OTHER}"] == "keep me"
    assert "{$SECRET}" in m201  # a secret macro survives (its value is never returned by the API)
    assert _macros(api, h202) == {PATH: "/dev/usb/lp0", LIB: "libelgin.so"}
    again = run("refresh_endpoint_printer", cfg, tmp_path)
    assert not again.failed and local(again)["changes"] == [] and local(again)["unchanged"] == 2

    # a parsing rule on the description, a concentrator without a loja, and --loja
    rule = {"regex": r"L(?P<loja_num>\d+)\s+P(?P<pdv_num>\d+)", "source_field": "descricao"}
    cfg2 = zabbix_server.config(rede, CONCENTRADORES=[{"ip": stores.second.address}], PDV_PARSING_RULE=rule, **db)
    report = run("refresh_endpoint_printer", cfg2, tmp_path, loja="LOJA002")
    assert not report.failed, local(report)
    assert _macros(api, h301) == {"{$OTHER}": "store 2", PATH: "/dev/lp1", LIB: "libdaruma.so"}
    assert any("Balcao sem numero" in s for s in local(report)["skipped"])
    none = run("refresh_endpoint_printer", cfg2, tmp_path, loja="LOJA001")
    assert local(none)["changes"] == [] and _macros(api, h201)[PATH] == "/dev/ttyS0"
    no_rule = zabbix_server.config(rede, CONCENTRADORES=[{"ip": stores.second.address}], **db)
    skipped = local(run("refresh_endpoint_printer", no_rule, tmp_path))["skipped"]
    assert skipped and all("no loja" in s for s in skipped)
