"""The endpoint list readers and the pure reconciliation of `register_endpoints` (fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flageemonitor.core.errors import InventoryError
from flageemonitor.proxy.actions.register_endpoints import (
    Endpoint,
    ZabbixHost,
    read_endpoints_file,
    reconcile,
)


def test_csv_list_accepts_the_store_database_column_names(tmp_path: Path) -> None:
    path = tmp_path / "pdvs.csv"
    path.write_text("nroloja,codigo,ip,sat_fabricante\n1,201,10.0.1.201,Bematech\n2,PDV202,10.0.2.202,\n"
                    "3,203,0.0.0.0,\n4,204,,\n")
    assert read_endpoints_file(path) == [
        Endpoint(1, "201", "10.0.1.201", "PDV", "Bematech"),
        Endpoint(2, "202", "10.0.2.202", "PDV", None),
    ]


def test_yaml_list_with_types(tmp_path: Path) -> None:
    path = tmp_path / "pdvs.yaml"
    path.write_text("endpoints:\n  - {loja: LOJA005, pdv: 301, ip: 10.0.5.31, type: self}\n"
                    "  - {loja: 5, pdv: '', ip: 10.0.5.1, tipo: CONCENTRADOR}\n")
    with pytest.raises(InventoryError, match="entry 2: 'loja' and 'pdv' are required"):
        read_endpoints_file(path)
    path.write_text("- {loja: LOJA005, pdv: 301, ip: 10.0.5.31, type: self}\n")
    [e] = read_endpoints_file(path)
    assert e.name("R") == "R-LOJA005-SELF301" and e.visible_name("R") == "R (LOJA005) SELF301"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("loja,pdv,ip\n1,201,not-an-ip\n", "line 2: 'not-an-ip' is not an IP address"),
        ("loja,pdv,ip,type\n1,201,10.0.0.1,BALANCA\n", "line 2: type must be one of"),
        ("loja,pdv,ip\nx,201,10.0.0.1\n", "line 2: loja 'x' is not a number"),
        ("loja,pdv,ip\n1,2;01,10.0.0.1\n", "not alphanumeric"),
    ],
)
def test_bad_rows_are_named_by_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "pdvs.csv"
    path.write_text(text)
    with pytest.raises(InventoryError, match=message):
        read_endpoints_file(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"endpoint list .*nope\.yaml"):
        read_endpoints_file(tmp_path / "nope.yaml")


def test_reconcile_classifies_each_difference_once() -> None:
    hosts = [
        ZabbixHost("1", "R-LOJA001-PDV201", "10.0.0.1", "11"),
        ZabbixHost("2", "r-loja001-pdv202", "10.0.0.99", "12"),  # names compare case-insensitively
        ZabbixHost("3", "R-LOJA001-OLD", "10.0.0.3", "13"),
        ZabbixHost("4", "R-LOJA009-PDV201", "10.0.9.1", "14"),
        ZabbixHost("5", "R-PROXY", None, None),
    ]
    rec = reconcile("R", [
        Endpoint(1, "201", "10.0.0.1"),
        Endpoint(1, "202", "10.0.0.2"),
        Endpoint(1, "203", "10.0.0.3"),
        Endpoint(1, "204", "10.0.0.4"),
        Endpoint(1, "205", "10.0.0.99"),
    ], hosts)
    assert rec.ok == ["R-LOJA001-PDV201"]
    assert rec.ip_divergent == [{"name": "R-LOJA001-PDV202", "ip": "10.0.0.2", "zabbix_ip": "10.0.0.99"}]
    assert rec.renamed == [{"name": "R-LOJA001-PDV203", "ip": "10.0.0.3", "current": "R-LOJA001-OLD"}]
    assert rec.missing == [{"name": "R-LOJA001-PDV204", "ip": "10.0.0.4"}]
    assert rec.conflicts == [{"name": "R-LOJA001-PDV205", "ip": "10.0.0.99",
                              "reason": "IP in use by r-loja001-pdv202"}]
    assert rec.zabbix_only == ["R-LOJA009-PDV201"]
