"""`collect_coupon_lv` (`cupons_lv`): LV coupons, `retag.cupom` with `LV IN (0,1)` and
`tipooperacao IN (1,2,4,8)` → POST `/cupons/detalhes` (the details' endpoint, with the header
fields only: `rede`, `DataProc`, `nroloja`, `NroCupom`, `Pdv`, `HoraMinSeg`, `NroItens`,
`FlagEstorno`, `LV`, `tipooperacao`), batches of 200, following `HoraMinSeg`. Trap
`concentrador.cupons.lote`.
"""

from __future__ import annotations

from flageemonitor.proxy.collectors.coupon_details import HEADER
from flageemonitor.proxy.collectors.engine import BiCollector
from flageemonitor.proxy.collectors.traps import COUPON_BATCH

COUPON_LV = BiCollector(
    name="collect_coupon_lv", label="CUPONS LV", database="retag", table="cupom", fields=HEADER,
    position="HoraMinSeg", path="/cupons/detalhes", batch_size=200, start_days=1,
    condition="LV IN (0, 1) AND tipooperacao IN (1, 2, 4, 8)", trap=COUPON_BATCH,
)
