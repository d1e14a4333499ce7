"""`collect_coupon_details` (`cupons_detalhes`): coupon headers, `retag.cupom` → POST
`/cupons/detalhes`, batches of 500, following `HoraMinSeg`.

Payload per row: `rede`, `DataProc` (date text), `nroloja`, `NroCupom`, `Pdv`, `HoraMinSeg` (ISO),
`NroItens`, `FlagEstorno`, `LV`, `tipooperacao`, `total` (number), `FlagInicupom`, `FlagFimCupom`.
The first run reads 7 days back (the original re-sent those every hour).
"""

from __future__ import annotations

from typing import Any

from flageemonitor.proxy.collectors.engine import BiCollector, Row
from flageemonitor.proxy.collectors.fields import as_float, as_int, iso

COLUMNS = ("DataProc", "nroloja", "NroCupom", "Pdv", "HoraMinSeg", "NroItens", "FlagEstorno", "LV",
           "tipooperacao", "total", "FlagInicupom", "FlagFimCupom")


def to_payload(row: Row, rede: str) -> dict[str, Any]:
    data, loja, cupom, pdv, hora, itens, estorno, lv, tipo, total, ini, fim = row
    return {"rede": rede, "DataProc": None if data is None else str(data), "nroloja": as_int(loja),
            "NroCupom": as_int(cupom), "Pdv": as_int(pdv), "HoraMinSeg": iso(hora), "NroItens": as_int(itens),
            "FlagEstorno": estorno, "LV": as_int(lv), "tipooperacao": as_int(tipo), "total": as_float(total),
            "FlagInicupom": ini, "FlagFimCupom": fim}


COUPON_DETAILS = BiCollector(
    name="collect_coupon_details", label="CUPONS DETALHES", database="retag", table="cupom", columns=COLUMNS,
    position="HoraMinSeg", path="/cupons/detalhes", to_payload=to_payload, batch_size=500, start_days=7,
)
