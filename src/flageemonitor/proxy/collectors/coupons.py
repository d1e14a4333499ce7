"""`collect_coupons` (`cupons`): NFC-e coupons, `retag.nfce` → POST `/cupons/batch`, batches of 200,
following `dthr_emit_nfe`; rows with an access key only. Trap `concentrador.mysql.conexao`.

Payload per row: `rede`, `nroloja`, `DataProc` and `dEmi` (ISO emission time), `Pdv`, `Chave`,
`modelo` (characters 21-22 of the key, 0 when absent), `emServidor` 1, `nCupom`, the eight tax
values as numbers, `LV`, `estornado`, `Status` ("" when null).
"""

from __future__ import annotations

from flageemonitor.proxy.collectors.engine import BiCollector
from flageemonitor.proxy.collectors.payload import Field
from flageemonitor.proxy.collectors.traps import COUPONS_CONNECTION

TAXES = ("vICMS", "vICMS_ST", "vPIS", "vPIS_ST", "vCOFINS", "vCOFINS_ST", "vFCP", "vFCP_ST")

FIELDS = (
    Field("rede", "rede"), Field("nroloja", "int", "nroloja"), Field("DataProc", "iso", "dthr_emit_nfe"),
    Field("dEmi", "iso", "dthr_emit_nfe"), Field("Pdv", "int", "Pdv"), Field("Chave", "text0", "chave_nfe"),
    Field("modelo", "modelo", "chave_nfe"), Field("emServidor", "one"), Field("nCupom", "int", "NroCupom"),
    *(Field(t, "float", t) for t in TAXES),
    Field("LV", "int", "LV"), Field("estornado", "int", "estornado"), Field("Status", "text0", "Status"),
)

COUPONS = BiCollector(
    name="collect_coupons", label="NFCE", database="retag", table="nfce", fields=FIELDS,
    position="dthr_emit_nfe", path="/cupons/batch", batch_size=200, start_days=1,
    condition="chave_nfe IS NOT NULL AND chave_nfe <> ''", trap=COUPONS_CONNECTION,
)
