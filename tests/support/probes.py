"""Telling the read-only probes apart in an endpoint's command log."""

from __future__ import annotations

# the facts probe starts with its marker; a change-model probe collects its output in one variable
# and writes it at once
PROBE_STARTS = ("echo '@@", "flagee_probe_out=$(echo '@@")


def is_probe(command: str) -> bool:
    return command.startswith(PROBE_STARTS)
