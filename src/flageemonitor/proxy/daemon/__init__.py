"""The proxy daemon: config refresh and in-process schedule (see `runner`).

Kept import-light on purpose: `flageemonitor health` imports `daemon.health` only.
"""
