"""`collect_coupon_lv` (`cupons_lv`): LV coupons, `retag.cupom` with `LV IN (0,1)` and
`tipooperacao IN (1,2,4,8)` → POST `/cupons/detalhes` (the same endpoint as the details, fewer
fields), batches of 200, following `HoraMinSeg`. Trap `concentrador.cupons.lote`.

Payload per row: `rede`, `DataProc`, `nroloja`, `NroCupom`, `Pdv`, `HoraMinSeg` (ISO), `NroItens`,
`FlagEstorno`, `LV`, `tipooperacao`.
"""

from __future__ import annotations

from typing import Any

from flageemonitor.proxy.collectors.engine import BiCollector, Row
from flageemonitor.proxy.collectors.fields import as_int, iso
from flageemonitor.proxy.collectors.traps import COUPON_BATCH

COLUMNS = ("DataProc", "nroloja", "NroCupom", "Pdv", "HoraMinSeg", "NroItens", "FlagEstorno", "LV", "tipooperacao")


def to_payload(row: Row, rede: str) -> dict[str, Any]:
    data, loja, cupom, pdv, hora, itens, estorno, lv, tipo = row
    return {"rede": rede, "DataProc": None if data is None else str(data), "nroloja": as_int(loja),
            "NroCupom": as_int(cupom), "Pdv": as_int(pdv), "HoraMinSeg": iso(hora), "NroItens": as_int(itens),
            "FlagEstorno": estorno, "LV": as_int(lv), "tipooperacao": as_int(tipo)}


COUPON_LV = BiCollector(
    name="collect_coupon_lv", label="CUPONS LV", database="retag", table="cupom", columns=COLUMNS,
    position="HoraMinSeg", path="/cupons/detalhes", to_payload=to_payload, batch_size=200, start_days=1,
    condition="LV IN (0, 1) AND tipooperacao IN (1, 2, 4, 8)", trap=COUPON_BATCH,
)
