"""`collect_sat_config` (`sat_config`): SAT keys, `controle.conf_nfce` rows whose
`ChaveConciliaSat` has 36 characters → POST `/sat/config` as `{rede, nroloja, chaveSeguranca}`.

A small table sent as a snapshot: a run sends the rows that are new or changed since the last
one; `--dtini` (any date) sends them all again.
"""

from __future__ import annotations

from flageemonitor.proxy.collectors.engine import BiCollector
from flageemonitor.proxy.collectors.payload import Field

SAT_CONFIG = BiCollector(
    name="collect_sat_config", label="SAT CONFIG", database="controle", table="conf_nfce",
    fields=(Field("rede", "rede"), Field("nroloja", "int", "nroloja"),
            Field("chaveSeguranca", "text", "ChaveConciliaSat")),
    position=None, path="/sat/config", batch_size=500, condition="CHAR_LENGTH(ChaveConciliaSat) = 36",
)
