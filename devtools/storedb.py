"""The store database ("concentrador") schemas the collectors read, for tests and benchmarks.

The column names and types follow the original's queries (`retag.nfce`, `retag.cupom`,
`controle.conf_nfce`, `controle.pf_pdv`, `controle.pf_hw`, `controle.impnaofiscal`); the
field store system's full tables have more columns, which the collectors never read.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from devtools.mariadb import MariaDb

SCHEMA = [
    "CREATE DATABASE IF NOT EXISTS retag",
    "CREATE DATABASE IF NOT EXISTS controle",
    """CREATE TABLE IF NOT EXISTS retag.nfce (
        id INT AUTO_INCREMENT PRIMARY KEY,
        nroloja INT NOT NULL, dthr_emit_nfe DATETIME NULL, Pdv INT NULL, NroCupom INT NULL,
        estornado TINYINT NULL, chave_nfe VARCHAR(60) NULL,
        vICMS DECIMAL(12,2) NULL, vICMS_ST DECIMAL(12,2) NULL, vPIS DECIMAL(12,2) NULL,
        vPIS_ST DECIMAL(12,2) NULL, vCOFINS DECIMAL(12,2) NULL, vCOFINS_ST DECIMAL(12,2) NULL,
        vFCP DECIMAL(12,2) NULL, vFCP_ST DECIMAL(12,2) NULL, LV TINYINT NULL, Status VARCHAR(60) NULL,
        KEY nfce_emit (dthr_emit_nfe)
    ) CHARACTER SET utf8mb4""",
    """CREATE TABLE IF NOT EXISTS retag.cupom (
        id INT AUTO_INCREMENT PRIMARY KEY,
        DataProc DATE NULL, nroloja INT NOT NULL, NroCupom INT NULL, Pdv INT NULL, HoraMinSeg DATETIME NULL,
        NroItens INT NULL, FlagEstorno CHAR(1) NULL, LV TINYINT NULL, tipooperacao INT NULL,
        total DECIMAL(12,2) NULL, FlagInicupom CHAR(1) NULL, FlagFimCupom CHAR(1) NULL,
        KEY cupom_hora (HoraMinSeg)
    ) CHARACTER SET utf8mb4""",
    """CREATE TABLE IF NOT EXISTS controle.conf_nfce (
        nroloja INT NOT NULL, ChaveConciliaSat VARCHAR(80) NULL
    ) CHARACTER SET utf8mb4""",
    """CREATE TABLE IF NOT EXISTS controle.pf_pdv (
        sat_fabricante VARCHAR(40), nroloja INT, codigo INT, ip VARCHAR(40)
    ) CHARACTER SET utf8mb4""",
    """CREATE TABLE IF NOT EXISTS controle.pf_hw (
        codigo VARCHAR(20) NOT NULL, descricao VARCHAR(80) NULL, codimpnfiscal INT NULL
    ) CHARACTER SET utf8mb4""",
    """CREATE TABLE IF NOT EXISTS controle.impnaofiscal (
        codigo INT NOT NULL, disp_imp VARCHAR(80) NULL, nomelib VARCHAR(80) NULL
    ) CHARACTER SET utf8mb4""",
]

NFCE_COLUMNS = ("nroloja", "dthr_emit_nfe", "Pdv", "NroCupom", "estornado", "chave_nfe", "vICMS", "vICMS_ST",
                "vPIS", "vPIS_ST", "vCOFINS", "vCOFINS_ST", "vFCP", "vFCP_ST", "LV", "Status")
CUPOM_COLUMNS = ("DataProc", "nroloja", "NroCupom", "Pdv", "HoraMinSeg", "NroItens", "FlagEstorno", "LV",
                 "tipooperacao", "total", "FlagInicupom", "FlagFimCupom")


def create_schema(db: MariaDb) -> None:
    for statement in SCHEMA:
        db.execute(statement)


def access_key(loja: int, pdv: int, cupom: int, modelo: int = 65) -> str:
    """A 44-digit NF-e access key with `modelo` at characters 21-22 (1-based)."""
    return f"35{2611:04d}{12345678000190 + loja:014d}{modelo:02d}{pdv:03d}{cupom:09d}1{cupom % 10**8:08d}"[:44]


def nfce_row(loja: int, when: datetime, pdv: int, cupom: int, rng: random.Random) -> tuple[Any, ...]:
    def money() -> Decimal:
        return Decimal(rng.randint(0, 99999)) / 100

    return (loja, when, pdv, cupom, rng.choice((0, 0, 0, 1)), access_key(loja, pdv, cupom),
            money(), money(), money(), money(), money(), money(), money(), money(),
            rng.choice((0, 1)), rng.choice(("100", "100", "135", None)))


def nfce_rows(count: int, *, loja: int = 1, start: datetime, span: timedelta, seed: int = 7,
              first_cupom: int = 1) -> Iterator[tuple[Any, ...]]:
    """`count` rows with emission times spread evenly over `span` from `start`."""
    rng = random.Random(seed)
    step = span / max(count, 1)
    for n in range(count):
        yield nfce_row(loja, start + step * n, 201 + n % 8, first_cupom + n, rng)


def insert_nfce(db: MariaDb, rows: Iterator[tuple[Any, ...]] | list[tuple[Any, ...]], chunk: int = 5000) -> int:
    sql = f"INSERT INTO nfce ({', '.join(NFCE_COLUMNS)}) VALUES ({', '.join(['%s'] * len(NFCE_COLUMNS))})"  # noqa: S608
    total = 0
    with db.connect("retag") as conn, conn.cursor() as cur:
        buf: list[tuple[Any, ...]] = []
        for row in rows:
            buf.append(row)
            if len(buf) >= chunk:
                cur.executemany(sql, buf)
                total += len(buf)
                buf.clear()
        if buf:
            cur.executemany(sql, buf)
            total += len(buf)
    return total


def insert_cupom(db: MariaDb, rows: list[tuple[Any, ...]]) -> None:
    sql = f"INSERT INTO cupom ({', '.join(CUPOM_COLUMNS)}) VALUES ({', '.join(['%s'] * len(CUPOM_COLUMNS))})"  # noqa: S608
    db.executemany(sql, rows, database="retag")
