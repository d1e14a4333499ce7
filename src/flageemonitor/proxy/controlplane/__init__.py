"""What the proxy tells the control plane: check-ins and run reports (contract v1,
`core.fleet_contract`), through the durable outbox on the state volume (`proxy.spool`).

`identity` (proxy id, image), `bodies` (bounded, redacted JSON bodies), `sender` (one bounded
HTTP client per pass), `outbox` (the queues, and one delivery pass over them).
"""
