"""`register_endpoints` reading the endpoint list from a real store database (MariaDB)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flageemonitor.core.config_model import BotConfig, validate_config
from flageemonitor.core.errors import InventoryError
from flageemonitor.proxy.actions.register_endpoints import Endpoint, read_store_database
from flageemonitor.proxy.pipeline import RunRequest, execute
from tests.fixtures.mariadb import StoreDb
from tests.fixtures.zabbix import ZabbixServer

pytestmark = [pytest.mark.zabbix, pytest.mark.slow]


@pytest.fixture(scope="module")
def pf_pdv(store_db: StoreDb) -> StoreDb:
    store_db.execute("DELETE FROM pf_pdv")
    for row in [("Bematech", 1, 201, "127.0.3.1"), (None, 1, 150, "127.0.3.9"), (None, 2, 202, "0.0.0.0"),
                (None, 2, 203, ""), ("Elgin", 2, 204, "127.0.3.4")]:
        store_db.execute("INSERT INTO pf_pdv (sat_fabricante, nroloja, codigo, ip) VALUES (%s, %s, %s, %s)", row)
    return store_db


def _db_keys(db: StoreDb, **extra: object) -> dict[str, object]:
    return {"PARAM_IP_CONCENTRADORES": ["127.0.0.1"], "DB_PORT": db.port, "DB_USER": db.user,
            "DB_PASS": db.password, **extra}


def _cfg(db: StoreDb, **extra: object) -> BotConfig:
    return validate_config({"PARAM_REDE": "DBR", **_db_keys(db, **extra)})


def test_store_database_rows_become_the_endpoint_list(pf_pdv: StoreDb) -> None:
    # codes below 200 and rows without an address are not checkouts to reconcile
    assert read_store_database(_cfg(pf_pdv)) == [
        Endpoint(1, "201", "127.0.3.1", "PDV", "Bematech"),
        Endpoint(2, "204", "127.0.3.4", "PDV", "Elgin"),
    ]
    assert read_store_database(_cfg(pf_pdv), loja=2) == [Endpoint(2, "204", "127.0.3.4", "PDV", "Elgin")]


def test_store_database_errors_name_the_database_not_the_password(pf_pdv: StoreDb) -> None:
    wrong = "Wr0ng,Secret"
    with pytest.raises(InventoryError, match=r"store database 127\.0\.0\.1:\d+/controle: Access denied") as err:
        read_store_database(_cfg(pf_pdv, DB_PASS=wrong))
    assert wrong not in str(err.value) and pf_pdv.password not in str(err.value)
    with pytest.raises(InventoryError, match="no endpoint list"):
        read_store_database(validate_config({"PARAM_REDE": "DBR"}))


def test_register_without_a_file_reconciles_the_store_database(
    zabbix_server: ZabbixServer, pf_pdv: StoreDb, tmp_path: Path
) -> None:
    api = zabbix_server.api()
    gid = api.hostgroup.create(name="DBR")["groupids"][0]
    api.host.create(host="DBR-LOJA002-PDV209", groups=[{"groupid": gid}],
                    interfaces=[{"type": 1, "main": 1, "useip": 1, "ip": "127.0.3.29", "dns": "", "port": "10050"}])
    cfg = zabbix_server.config("DBR", PARAM_TEMPLATES=[], **_db_keys(pf_pdv))
    report = asyncio.run(execute(RunRequest(action="pdv_auto_register", dry_run=True, args={"loja": "LOJA001"}),
                                 cfg, state_dir=tmp_path))
    assert report.local is not None and not report.local_failed, report.local
    assert report.local["missing"] == [{"name": "DBR-LOJA001-PDV201", "ip": "127.0.3.1"}]
    assert report.local["zabbix_only"] == []  # LOJA002's host is outside the requested store
    report = asyncio.run(execute(RunRequest(action="register_endpoints", args={"autoregister": "1"}),
                                 cfg, state_dir=tmp_path))
    assert report.local is not None and not report.local_failed, report.local
    assert report.local["zabbix_only"] == ["DBR-LOJA002-PDV209"]
    created = api.host.get(filter={"host": ["DBR-LOJA001-PDV201", "DBR-LOJA002-PDV204"]},
                           selectMacros=["macro", "value"], output=["host"], sortfield="host")
    assert [(h["host"], h["macros"][0]["value"]) for h in created] == [
        ("DBR-LOJA001-PDV201", "Bematech"), ("DBR-LOJA002-PDV204", "Elgin")]
