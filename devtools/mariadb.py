"""Throwaway MariaDB servers from Debian's `mariadb-server` (scripts/setup.sh installs it).

`start_mariadb(address, port)` initialises a data directory in a temporary folder, starts
`mariadbd` bound to `address:port` with a private socket, waits until it accepts connections and
returns a handle whose `stop()` ends exactly that server (its own process group) and removes the
folder. Root connects through the socket without a password; `create_reader` adds a SELECT-only
user reachable over TCP, as a store database ("concentrador") has.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.processes import stop_group

MARIADBD = "/usr/sbin/mariadbd"


class MariaDbError(RuntimeError):
    """The server could not be initialised or started; the message carries its log tail."""


def free_port(*addresses: str) -> int:
    """A TCP port free on every address given (default 127.0.0.1)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((addresses[0] if addresses else "127.0.0.1", 0))
            port = int(s.getsockname()[1])
        try:
            for address in addresses[1:]:
                with socket.socket() as s:
                    s.bind((address, port))
        except OSError:
            continue
        return port
    raise MariaDbError(f"no port free on all of {addresses}")


@dataclass
class MariaDb:
    address: str
    port: int
    base: Path
    socket: Path
    proc: subprocess.Popen[bytes]

    def connect(self, database: str | None = None, **kwargs: Any) -> Any:
        """A root connection through the private socket (pymysql)."""
        import pymysql

        return pymysql.connect(unix_socket=str(self.socket), user="root", password="", database=database,
                               autocommit=True, **kwargs)

    def execute(self, sql: str, params: Any = None, database: str | None = None) -> None:
        with self.connect(database) as conn, conn.cursor() as cur:
            cur.execute(sql, params)

    def executemany(self, sql: str, rows: list[Any], database: str | None = None) -> None:
        with self.connect(database) as conn, conn.cursor() as cur:
            cur.executemany(sql, rows)

    def query(self, sql: str, params: Any = None, database: str | None = None) -> list[tuple[Any, ...]]:
        with self.connect(database) as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())

    def create_reader(self, user: str, password: str, *databases: str) -> None:
        """A user allowed to SELECT on `databases`, from any address (loopback clients)."""
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (user, password))
            for db in databases:
                cur.execute(f"GRANT SELECT ON `{db}`.* TO %s@'%%'", (user,))

    def stop(self) -> None:
        stop_group(self.proc, grace_s=30)
        shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        log = self.base / "error.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def start_mariadb(address: str = "127.0.0.1", port: int | None = None, *, buffer_pool: str = "64M",
                  deadline_s: float = 90) -> MariaDb:
    import pymysql

    for tool in ("mariadb-install-db", MARIADBD):
        if shutil.which(tool) is None and not Path(tool).exists():
            raise MariaDbError(f"{tool} not found: install mariadb-server (scripts/setup.sh)")
    base = Path(tempfile.mkdtemp(prefix="fm-mariadb-"))
    base.chmod(0o755)
    data, sock, log = base / "data", base / "mysqld.sock", base / "error.log"
    data.mkdir()
    shutil.chown(data, "mysql", "mysql")
    shutil.chown(base, "mysql", "mysql")
    init = subprocess.run(
        ["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=mysql",
         "--auth-root-authentication-method=normal", "--skip-test-db"],
        capture_output=True, text=True, timeout=180, check=False,
    )
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        raise MariaDbError(f"mariadb-install-db failed:\n{init.stdout[-2000:]}{init.stderr[-2000:]}")
    port = port or free_port(address)
    proc = subprocess.Popen(
        [MARIADBD, "--no-defaults", f"--datadir={data}", "--user=mysql", f"--port={port}",
         f"--bind-address={address}", f"--socket={sock}", f"--pid-file={base / 'mysqld.pid'}",
         f"--log-error={log}", "--skip-name-resolve", f"--innodb-buffer-pool-size={buffer_pool}",
         "--innodb-flush-log-at-trx-commit=2", "--character-set-server=utf8mb4"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    server = MariaDb(address, port, base, sock, proc)
    end = time.monotonic() + deadline_s
    while True:
        if proc.poll() is not None:
            tail = server.log_tail()
            shutil.rmtree(base, ignore_errors=True)
            raise MariaDbError(f"mariadbd on {address}:{port} exited ({proc.returncode}):\n{tail}")
        try:
            pymysql.connect(unix_socket=str(sock), user="root", password="").close()
            return server
        except pymysql.MySQLError:
            pass
        if time.monotonic() > end:
            tail = server.log_tail()
            server.stop()
            raise MariaDbError(f"mariadbd on {address}:{port} not ready after {deadline_s:.0f}s:\n{tail}")
        time.sleep(0.2)
