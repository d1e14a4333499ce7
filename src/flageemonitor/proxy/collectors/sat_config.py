"""`collect_sat_config` (`sat_config`): SAT keys, `controle.conf_nfce` rows whose
`ChaveConciliaSat` has 36 characters → POST `/sat/config` as `{rede, nroloja, chaveSeguranca}`.

A small table sent as a snapshot: a run sends the rows that are new or changed since the last
one; `--dtini` (any date) sends them all again.
"""

from __future__ import annotations

from typing import Any

from flageemonitor.proxy.collectors.engine import BiCollector, Row
from flageemonitor.proxy.collectors.fields import as_int

COLUMNS = ("nroloja", "ChaveConciliaSat")


def to_payload(row: Row, rede: str) -> dict[str, Any]:
    return {"rede": rede, "nroloja": as_int(row[0]), "chaveSeguranca": row[1]}


SAT_CONFIG = BiCollector(
    name="collect_sat_config", label="SAT CONFIG", database="controle", table="conf_nfce", columns=COLUMNS,
    position=None, path="/sat/config", to_payload=to_payload, batch_size=500,
    condition="CHAR_LENGTH(ChaveConciliaSat) = 36",
)
