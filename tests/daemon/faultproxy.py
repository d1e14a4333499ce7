"""A small fault-injecting HTTP proxy in front of the real control plane (real TCP both ways).

The real server cannot be made to answer 500, cut a body half-way, trickle an answer one byte at
a time or serve a body its own model rejects (it validates before storing: a config failing the
schema, 200000 nested `[`, a 5000-digit integer), so those faults are injected here, AFTER the
request went through to the real server. Everything else is the server's own answer: for 401
and 403 the proxy only swaps the token for a revoked one / one scoped to another network and
forwards the request, so the real server rejects it. `pause()` closes the listening socket
(connection refused, as for a stopped server) and `resume()` listens again on the same port.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

MODES = ("pass", "500", "cut", "schema", "not_json", "wrong_network", "swap_token", "hang", "nested", "huge_int",
         "trickle", "rede_case")
# bodies that crash a naive JSON parser: recursion depth, the interpreter's integer-digit limit
NESTED_BODY = b"[" * 200_000
HUGE_INT_BODY = b'{"PARAM_REDE": "TESTNET", "max_threads": ' + b"9" * 5000 + b"}"


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.mode = "pass"
        self.swap_token: str | None = None
        self.trickle_interval = 1.0  # seconds between bytes in "trickle" mode
        self.requests = 0
        self.faults_served = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self._listen()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set(self, mode: str, swap_token: str | None = None) -> None:
        assert mode in MODES, mode
        with self._lock:
            self.mode = mode
            self.swap_token = swap_token

    def _listen(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                proxy.handle(self)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that give up on a cut or hanging answer reset the connection

        server = Server(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        server.allow_reuse_address = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True, name="fault-proxy")
        self._thread.start()

    def pause(self) -> None:
        """Stop listening: clients get connection refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def resume(self) -> None:
        if self._server is None:
            self._listen()

    def close(self) -> None:
        self.pause()

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            mode, swap = self.mode, self.swap_token
            self.requests += 1
        if mode == "hang":  # accept the request, never answer within the client's timeouts
            time.sleep(120)
            return
        if mode == "trickle":  # a valid answer, one byte at a time: no single read ever times out
            self._trickle(h)
            return
        headers = {k: v for k, v in h.headers.items() if k.lower() in ("x-bot-token", "if-none-match", "accept")}
        if mode == "swap_token" and swap is not None:
            headers = {k: v for k, v in headers.items() if k.lower() != "x-bot-token"}
            headers["X-Bot-Token"] = swap
        try:
            up = httpx.get(self.upstream + h.path, headers=headers, timeout=10)
        except httpx.HTTPError as exc:
            self._send(h, 502, f"bad gateway: {type(exc).__name__}".encode(), {})
            return
        body, status = up.content, up.status_code
        out_headers = {k: v for k, v in up.headers.items() if k.lower() in ("etag", "content-type")}
        if mode != "pass" and mode != "swap_token":
            with self._lock:
                self.faults_served += 1
        if mode == "500":
            self._send(h, 500, b'{"error":"internal"}', {"Content-Type": "application/json"})
        elif mode == "cut" and status == 200:
            # promise the whole body, send half of it, close the connection
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_RDWR)
        elif mode == "schema" and status == 200:
            doc = json.loads(body)
            doc["TIMEZONE"] = "Mars/Olympus_Mons"
            doc["max_threads"] = -5
            self._send(h, 200, json.dumps(doc).encode(), {"Content-Type": "application/json"})
        elif mode == "rede_case" and status == 200:
            doc = json.loads(body)
            doc["PARAM_REDE"] = doc["PARAM_REDE"].lower()
            self._send(h, 200, json.dumps(doc).encode(), {"Content-Type": "application/json"})
        elif mode == "nested" and status == 200:
            self._send(h, 200, NESTED_BODY, {"Content-Type": "application/json"})
        elif mode == "huge_int" and status == 200:
            self._send(h, 200, HUGE_INT_BODY, {"Content-Type": "application/json"})
        elif mode == "not_json" and status == 200:
            self._send(h, 200, b"<html>maintenance</html>", {"Content-Type": "text/html"})
        elif mode == "wrong_network" and status == 200:
            doc = json.loads(body)
            doc["PARAM_REDE"] = "SOMEONE_ELSE"
            self._send(h, 200, json.dumps(doc).encode(), {"Content-Type": "application/json"})
        else:
            self._send(h, status, body, out_headers)

    def _trickle(self, h: BaseHTTPRequestHandler) -> None:
        body = json.dumps({"PARAM_REDE": "TESTNET", "NOTE": "slow"}).encode()
        raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        with self._lock:
            self.faults_served += 1
        h.close_connection = True
        try:
            for i in range(len(raw)):
                h.wfile.write(raw[i : i + 1])
                h.wfile.flush()
                time.sleep(self.trickle_interval)
        except OSError:
            pass  # the client gave up, as it should

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if status != 304:
            h.wfile.write(body)
