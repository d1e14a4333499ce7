"""`collect_coupons` (`cupons`): NFC-e coupons, `retag.nfce` → POST `/cupons/batch`.

Rows with an access key, following `dthr_emit_nfe`. Payload per row: `rede`, `nroloja`,
`DataProc` and `dEmi` (ISO emission time), `Pdv`, `Chave`, `modelo` (characters 21-22 of the key,
0 when the key is shorter or not numeric there), `emServidor` 1, `nCupom`, the eight tax values
as numbers, `LV`, `estornado`, `Status` (text, "" when null). Trap `concentrador.mysql.conexao`.
"""

from __future__ import annotations

from typing import Any

from flageemonitor.proxy.collectors.engine import BiCollector, Row
from flageemonitor.proxy.collectors.fields import as_int, as_text, iso
from flageemonitor.proxy.collectors.traps import COUPONS_CONNECTION

TAXES = ("vICMS", "vICMS_ST", "vPIS", "vPIS_ST", "vCOFINS", "vCOFINS_ST", "vFCP", "vFCP_ST")
COLUMNS = ("nroloja", "dthr_emit_nfe", "Pdv", "NroCupom", "estornado", "chave_nfe", *TAXES, "LV", "Status")


def modelo(chave: Any) -> int:
    text = as_text(chave)
    part = text[20:22]
    return int(part) if len(part) == 2 and part.isdigit() else 0


def to_payload(row: Row, rede: str) -> dict[str, Any]:
    loja, emitted, pdv, cupom, estornado, chave = row[:6]
    lv, status = row[14], row[15]
    when = iso(emitted)
    out: dict[str, Any] = {"rede": rede, "nroloja": as_int(loja), "DataProc": when, "dEmi": when,
                           "Pdv": as_int(pdv), "Chave": as_text(chave), "modelo": modelo(chave), "emServidor": 1,
                           "nCupom": as_int(cupom)}
    for name, value in zip(TAXES, row[6:14], strict=True):
        out[name] = value
    out.update(LV=as_int(lv), estornado=as_int(estornado), Status=as_text(status))
    return out


COUPONS = BiCollector(
    name="collect_coupons", label="NFCE", database="retag", table="nfce", columns=COLUMNS,
    position="dthr_emit_nfe", path="/cupons/batch", to_payload=to_payload, batch_size=200, start_days=1,
    condition="chave_nfe IS NOT NULL AND chave_nfe <> ''", trap=COUPONS_CONNECTION,
)
