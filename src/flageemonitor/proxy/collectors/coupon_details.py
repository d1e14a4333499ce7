"""`collect_coupon_details` (`cupons_detalhes`): coupon headers, `retag.cupom` → POST
`/cupons/detalhes`, batches of 500, following `HoraMinSeg`. The first run reads 7 days back (the
original re-sent those every hour).

Payload per row: `rede`, `DataProc` (date), `nroloja`, `NroCupom`, `Pdv`, `HoraMinSeg` (ISO),
`NroItens`, `FlagEstorno`, `LV`, `tipooperacao`, `total` (number), `FlagInicupom`, `FlagFimCupom`.
"""

from __future__ import annotations

from flageemonitor.proxy.collectors.engine import BiCollector
from flageemonitor.proxy.collectors.payload import Field

HEADER = (
    Field("rede", "rede"), Field("DataProc", "date", "DataProc"), Field("nroloja", "int", "nroloja"),
    Field("NroCupom", "int", "NroCupom"), Field("Pdv", "int", "Pdv"), Field("HoraMinSeg", "iso", "HoraMinSeg"),
    Field("NroItens", "int", "NroItens"), Field("FlagEstorno", "text", "FlagEstorno"), Field("LV", "int", "LV"),
    Field("tipooperacao", "int", "tipooperacao"),
)
FIELDS = (*HEADER, Field("total", "float", "total"), Field("FlagInicupom", "text", "FlagInicupom"),
          Field("FlagFimCupom", "text", "FlagFimCupom"))

COUPON_DETAILS = BiCollector(
    name="collect_coupon_details", label="CUPONS DETALHES", database="retag", table="cupom", fields=FIELDS,
    position="HoraMinSeg", path="/cupons/detalhes", batch_size=500, start_days=7,
)
