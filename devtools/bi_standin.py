"""A stand-in for the customer's BI API, for tests and benchmarks.

The BI is a third-party service we cannot run here, so this HTTPS server takes its place: it
accepts `POST <path>` with a JSON list body and `Authorization: Bearer <token>`, answers 200, and
records every batch (path, rows, and whether it answered 200). It can be told to fail (any
status), hang (hold requests until released, then drop them unanswered), or cut connections (close
without answering).
Its certificate comes from a throwaway test CA made at start (`TestCa`), so clients verify TLS as
they would against the real BI.

In-process: `BiStandIn(...)` then `.start()`. As a process (benchmarks):
`python -m devtools.bi_standin --port N --dir DIR --token T [--count-only]` writes the CA to
`DIR/ca.pem`, prints `ready`, and serves `GET /_stats` (JSON counters) without authentication.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import re
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_CHAVE = re.compile(rb'"Chave":\s*"([^"]*)"')


class TestCa:
    """A CA and a server certificate for 127.0.0.1/localhost, written as PEM files in `directory`."""

    def __init__(self, directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> None:
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "FlageeMonitor test CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
              .not_valid_after(now + dt.timedelta(days=2))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                           data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                           crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        for h in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                names.append(x509.DNSName(h))
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        self.ca_file = directory / "ca.pem"
        self.cert_file = directory / "server.pem"
        self.key_file = directory / "server.key"
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
        self.key_file.chmod(0o600)


@dataclass
class Batch:
    path: str
    rows: list[dict[str, Any]]
    acked: bool = False
    arrived: int = 0  # when it arrived and when it was acknowledged, on one counter of events
    acked_at: int | None = None


@dataclass
class _State:
    token: str
    count_only: bool
    mode: str = "ok"  # ok | fail | hang | cut
    after: int = 0  # requests still answered 200 before `mode` applies
    times: int | None = None  # requests `mode` still applies to before the BI is ok again (None: all)
    fail_status: int = 500
    batches: list[Batch] = field(default_factory=list)
    requests: int = 0
    rows: int = 0
    acked_rows: int = 0
    keys: set[int] = field(default_factory=set)
    unauthorized: int = 0
    events: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    released: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Condition = field(default_factory=threading.Condition)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _reply(self, status: int, body: bytes = b"{}") -> bool:
        try:
            reason = self.responses.get(status, ("",))[0]
            # status line, headers and body in one write: small separate writes meet the client's
            # delayed ACK and cost 40 ms a request
            head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode("ascii")
            self.wfile.write(head + body)
            self.wfile.flush()
            return True
        except OSError:
            return False

    def do_GET(self) -> None:
        st = self.server.state
        if self.path != "/_stats":
            self._reply(404)
            return
        with st.lock:
            data = {"requests": st.requests, "rows": st.rows, "acked_rows": st.acked_rows,
                    "distinct_keys": len(st.keys), "unauthorized": st.unauthorized}
        self._reply(200, json.dumps(data).encode())

    def do_POST(self) -> None:
        st = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.headers.get("Authorization") != f"Bearer {st.token}":
            with st.lock:
                st.unauthorized += 1
            self._reply(401, b'{"error":"unauthorized"}')
            return
        if st.count_only:  # benchmarks: count rows and distinct keys without building objects
            keys = _CHAVE.findall(body)
            rows: list[Any] = keys
        else:
            rows = json.loads(body)
            if not isinstance(rows, list):
                self._reply(400, b'{"error":"expected a JSON list"}')
                return
        batch = Batch(self.path, [] if st.count_only else rows)
        with st.lock:
            st.requests += 1
            st.rows += len(rows)
            if st.count_only:
                st.keys.update(hash(k) for k in keys)
            else:
                st.batches.append(batch)
            st.events += 1
            batch.arrived = st.events
            mode = st.mode
            if st.after > 0:
                st.after -= 1
                mode = "ok"
            elif st.times is not None:
                st.times -= 1
                if st.times <= 0:
                    st.mode, st.times = "ok", None
        with st.arrived:
            st.arrived.notify_all()
        if mode == "hang":  # held until released, then dropped unanswered: a hung BI never acknowledges
            st.released.wait()
            mode = "cut"
        if mode == "cut":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "fail":
            self._reply(st.fail_status, b'{"error":"told to fail"}')
            return
        # recorded as acknowledged before the answer leaves: a client that got its 200 always finds
        # its batch acknowledged; an answer that could not be written is taken back
        with st.lock:
            st.events += 1
            batch.acked, batch.acked_at = True, st.events
            st.acked_rows += len(rows)
        if not self._reply(200, b'{"ok":true}'):
            with st.lock:
                batch.acked, batch.acked_at = False, None
                st.acked_rows -= len(rows)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: _State, tls: ssl.SSLContext) -> None:
        self.state = state
        self.tls = tls
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # the handshake happens in the handler's thread: a silent client cannot block accept()
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:  # cut/timed-out clients are expected
        return


class BiStandIn:
    """The BI stand-in server on `host` (a free port unless given)."""

    def __init__(self, directory: Path, token: str, *, host: str = "127.0.0.1", port: int = 0,
                 count_only: bool = False) -> None:
        self.ca = TestCa(directory, (host, "localhost"))
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(self.ca.cert_file, self.ca.key_file)
        self.state = _State(token, count_only)
        self.state.released.set()
        self._server = _Server((host, port), self.state, tls)
        self.host, self.port = host, int(self._server.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def server(self) -> str:
        """The value for PARAM_BI_SERVER."""
        return f"{self.host}:{self.port}"

    def start(self) -> BiStandIn:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True, name="bi-standin")
        self._thread.start()
        return self

    def stop(self) -> None:
        self.state.released.set()
        self._server.shutdown()
        self._server.server_close()

    # --- behaviour
    def behave(self, mode: str, status: int = 500, *, after: int = 0, times: int | None = None) -> None:
        """`ok`, `fail` (answer `status`), `hang` (hold requests until the next behave, then drop them
        unanswered), `cut`; the next `after` requests are still answered 200, and with `times` the
        mode applies to that many requests only (then the BI is ok again)."""
        if mode not in ("ok", "fail", "hang", "cut"):
            raise ValueError(mode)
        with self.state.lock:
            self.state.mode, self.state.fail_status, self.state.after = mode, status, after
            self.state.times = times
        if mode == "hang":
            self.state.released.clear()
        else:
            self.state.released.set()

    # --- what arrived
    def batches(self, path: str | None = None) -> list[Batch]:
        with self.state.lock:
            return [b for b in self.state.batches if path is None or b.path == path]

    def rows(self, path: str | None = None, *, acked_only: bool = True) -> list[dict[str, Any]]:
        return [r for b in self.batches(path) if b.acked or not acked_only for r in b.rows]

    def wait_for_batches(self, count: int, timeout: float = 60) -> bool:
        """Until at least `count` batches arrived (acknowledged or not), or `timeout`."""
        with self.state.arrived:
            return self.state.arrived.wait_for(lambda: len(self.state.batches) >= count, timeout)

    def reset(self) -> None:
        with self.state.lock:
            self.state.batches.clear()
            self.state.requests = self.state.rows = self.state.acked_rows = self.state.unauthorized = 0
            self.state.events = 0
            self.state.keys.clear()
        self.behave("ok")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--count-only", action="store_true")
    args = parser.parse_args()
    bi = BiStandIn(args.dir, args.token, host=args.host, port=args.port, count_only=args.count_only)
    print(f"ready {bi.port}", flush=True)
    bi._server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
