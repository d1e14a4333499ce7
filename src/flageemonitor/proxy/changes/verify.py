"""Verification helpers: is the process of a PID file alive (and is it the right program), does
it listen on a TCP port. Read from /proc (busybox has no pgrep/pkill, Slackware 13 has no ss).

`process_probe(pidfile)` is a probe command; `parse_process` reads its output. A socket counts
as the process's when its inode is among the process's open files (read as root); when the
file descriptors cannot be read, any LISTEN socket on the port counts.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
_MARK = "@@proc:"
LISTEN = "0A"


# The kernel lists a TCP table's listening sockets first (in kernels before 4.4 with their
# half-open requests, SYN_RECV "03", among them) and every other socket after them. Reading on
# costs the kernel a walk of the whole connection table, a cost that grows with the host's
# connections and is paid on every probe; one awk reads each table up to the first socket that
# is neither, and prints the listening lines (on `want`, a ":PORT" in the kernel's hex).
_LISTENERS_AWK = (
    'function take(line, f) { split(line, f, " "); if (f[4] != "0A" && f[4] != "03") return 0; '
    'if (f[4] == "0A" && (want == "" || substr(f[2], length(f[2]) - length(want) + 1) == want)) print line; '
    "return 1 } "
    "FNR == 1 { next } "
    "!take($0) { exit } "
    'END { n = 0; while ((getline line < "/proc/net/tcp6") > 0) { if (n++ > 0 && !take(line)) break } }'
)


def listeners_command(port: int | None = None) -> str:
    """Read-only shell: the LISTEN lines of /proc/net/tcp and tcp6 (only those on `port` when
    given), reading each table no further than its listening section."""
    want = "" if port is None else f":{int(port):04X}"
    return f"awk -v want={shlex.quote(want)} {shlex.quote(_LISTENERS_AWK)} /proc/net/tcp 2>/dev/null"


def process_probe(pidfile: str, port: int | None = None) -> str:
    """Read-only shell: the PID in `pidfile`, its command line, its socket inodes and the
    listening sockets of the kernel's TCP tables (with `port`, only those on that port)."""
    q = shlex.quote(pidfile)
    # `read` is the shell's own: every process saved here is saved on every endpoint of a run
    return (
        f"p=; if [ -r {q} ]; then read -r p < {q}; fi; case \"$p\" in ''|*[!0-9]*) p= ;; esac; "
        f"echo '{_MARK}pid'; echo \"$p\"; "
        f"echo '{_MARK}cmdline'; if [ -n \"$p\" ] && [ -r /proc/$p/cmdline ]; then "
        "tr '\\000' ' ' < /proc/$p/cmdline; echo; fi; "
        f"echo '{_MARK}fds'; if [ -n \"$p\" ]; then ls -l /proc/$p/fd 2>/dev/null; fi; "
        f"echo '{_MARK}tcp'; {listeners_command(port)}; true"
    )


@dataclass(frozen=True)
class ProcessState:
    pid: int | None
    cmdline: str = ""
    sockets: frozenset[int] = frozenset()
    listening: dict[int, frozenset[int]] = field(default_factory=dict)  # port -> socket inodes

    @property
    def alive(self) -> bool:
        return self.pid is not None and bool(self.cmdline)

    def runs(self, program: str) -> bool:
        """Alive, and its command line names `program` (its first word or an argument)."""
        return self.alive and any(program in word for word in self.cmdline.split())

    def listens_on(self, port: int) -> bool:
        inodes = self.listening.get(port, frozenset())
        if not inodes:
            return False
        return not self.sockets or bool(inodes & self.sockets)


def listening_ports(tcp_tables: str) -> dict[int, frozenset[int]]:
    """Ports in LISTEN state and their socket inodes, from /proc/net/tcp and tcp6."""
    found: dict[int, set[int]] = {}
    for line in tcp_tables.splitlines():
        cols = line.split()
        if len(cols) < 10 or ":" not in cols[1] or cols[3] != LISTEN:
            continue
        try:
            port = int(cols[1].rsplit(":", 1)[1], 16)
            inode = int(cols[9])
        except ValueError:
            continue
        found.setdefault(port, set()).add(inode)
    return {port: frozenset(inodes) for port, inodes in found.items()}


def parse_process(output: str) -> ProcessState:
    from flageemonitor.core.facts import split_sections

    sec = split_sections(output, _MARK)
    pid_text = next((ln.strip() for ln in sec.get("pid", []) if ln.strip()), "")
    pid = int(pid_text) if pid_text.isdigit() else None
    cmdline = " ".join(ln.strip() for ln in sec.get("cmdline", []) if ln.strip())
    sockets = frozenset(int(m) for ln in sec.get("fds", []) for m in re.findall(r"socket:\[(\d+)\]", ln))
    return ProcessState(pid, cmdline if pid else "", sockets, listening_ports("\n".join(sec.get("tcp", []))))


async def wait_until(check: Callable[[], Awaitable[T]], ok: Callable[[T], bool], *, deadline_s: float,
                     interval_s: float = 0.5) -> T:
    """Call `check` until `ok(result)` or the deadline; returns the last result either way."""
    end = time.monotonic() + deadline_s
    while True:
        result = await check()
        if ok(result) or time.monotonic() >= end:
            return result
        await asyncio.sleep(interval_s)
