"""Dead endpoints for the benchmark fleet, served by one helper process.

    python -m devtools.deadhosts blackhole:127.1.2.3:2222,silent:127.1.2.4:2222

- `blackhole`: a listener whose accept queue is already full (backlog 0, one connection parked
  and never accepted), so the kernel drops further SYNs: the client sees no answer at all, as
  with a firewalled or powered-off endpoint;
- `silent`: accepts TCP and never sends an SSH banner (a hung sshd or a wrong service).

Prints "ready" once every listener is set up, then sleeps until terminated.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time


def blackhole(ip: str, port: int) -> list[socket.socket]:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((ip, port))
    listener.listen(0)
    parked = []
    for _ in range(2):  # fill the accept queue (its size is backlog + 1)
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((ip, port))
        parked.append(s)
    time.sleep(0.05)
    return [listener, *parked]


def silent(ip: str, port: int) -> list[socket.socket]:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((ip, port))
    listener.listen(1024)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            conn, _ = listener.accept()
            held.append(conn)  # keep it open, say nothing

    threading.Thread(target=accept, daemon=True).start()
    return [listener]


def main(spec: str) -> int:
    keep: list[socket.socket] = []
    for item in spec.split(","):
        kind, ip, port = item.split(":")
        keep += (blackhole if kind == "blackhole" else silent)(ip, int(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
