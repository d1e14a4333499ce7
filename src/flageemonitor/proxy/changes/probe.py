"""Read-only probe of remote state in one round trip: files (and small text contents) and the
output of read-only commands.

The script is POSIX sh that busybox ash and Slackware 13's bash run: `stat -c`, `sha256sum`,
`readlink`, `cat`, `head`. Every path is quoted; sections are delimited by a random nonce so a
file's content can never fake a marker. A text content is trusted only when its SHA-256 matches
the file's (binary or non-UTF-8 contents come back as None).

    probe = Probe()
    probe.file("/ariusmonitor/VERSION", content=True)
    probe.command("arch", "uname -m")
    result = await probe.run(session, sudo=True, timeout=30)
    result.files["/ariusmonitor/VERSION"].content, result.outputs["arch"].stdout
"""

from __future__ import annotations

import hashlib
import re
import secrets
import shlex
from dataclasses import dataclass, field, replace
from typing import Any

from flageemonitor.core.errors import ActionFailed
from flageemonitor.proxy.actions.base import RemoteSession

MAX_CONTENT = 64 * 1024  # larger files are checksummed, never read back


@dataclass(frozen=True)
class FileState:
    """What a path is on the endpoint. `kind`: file, dir, link, other or missing. For a link,
    `target` is the link text and sha256/size describe what it points to (when a file)."""

    path: str
    kind: str = "missing"
    sha256: str | None = None
    size: int | None = None
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    owner: str | None = None
    group: str | None = None
    target: str | None = None
    content: str | None = None  # text, only when asked for, small and exact

    @property
    def exists(self) -> bool:
        return self.kind != "missing"

    def short(self) -> str:
        """`absent`, or the first 12 hex digits of the checksum (a directory says `dir`)."""
        if not self.exists:
            return "absent"
        if self.sha256:
            return self.sha256[:12]
        return self.kind

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if v is not None and k != "content"}
        if self.mode is not None:
            out["mode"] = f"{self.mode:04o}"
        return out


@dataclass(frozen=True)
class CommandOutput:
    exit_status: int
    stdout: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


@dataclass
class ProbeResult:
    files: dict[str, FileState] = field(default_factory=dict)
    outputs: dict[str, CommandOutput] = field(default_factory=dict)

    def file(self, path: str) -> FileState:
        return self.files.get(path, FileState(path))


_KINDS = {"regular file": "file", "regular empty file": "file", "directory": "dir", "symbolic link": "link"}
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


class Probe:
    """Collects the files and read-only commands of one probe; `run` sends them as one command."""

    def __init__(self) -> None:
        self._files: dict[str, bool] = {}
        self._commands: dict[str, str] = {}

    def file(self, path: str, *, content: bool = False) -> Probe:
        """Probe `path` (absolute); with `content`, read it back when it is a text file of at
        most MAX_CONTENT bytes."""
        if not path.startswith("/") or "\n" in path or "\0" in path:
            raise ValueError(f"probe paths are absolute and on one line: {path!r}")
        self._files[path] = self._files.get(path, False) or content
        return self

    def command(self, name: str, script: str) -> Probe:
        """A read-only command (already quoted shell text) whose output and exit status are
        reported under `name`. It runs in a subshell with stderr merged into stdout."""
        if not _NAME_RE.match(name):
            raise ValueError(f"probe command names are short identifiers: {name!r}")
        self._commands[name] = script
        return self

    def script(self, nonce: str) -> str:
        mark = f"@@{nonce}:"
        parts = []
        for path, content in self._files.items():
            q = shlex.quote(path)
            parts.append(
                f"echo '{mark}file:'{q}; "
                f"if [ -L {q} ]; then echo \"link:$(readlink {q})\"; fi; "
                f"if [ -e {q} ] || [ -L {q} ]; then "
                f"echo \"stat:$(stat -c '%F|%a|%u|%g|%U|%G|%s' {q} 2>/dev/null)\"; "
                f"if [ -f {q} ]; then echo \"sha:$(sha256sum < {q} 2>/dev/null)\"; "
                f"echo \"size:$(stat -L -c %s {q} 2>/dev/null)\"; fi; "
                "fi"
            )
            if content:
                parts.append(
                    f"if [ -f {q} ] && [ \"$(stat -L -c %s {q} 2>/dev/null || echo 0)\" -le {MAX_CONTENT} ]; then "
                    f"echo '{mark}content'; cat {q}; echo; echo '{mark}endcontent'; fi"
                )
        for name, command in self._commands.items():
            parts.append(f"echo '{mark}cmd:{name}'; ( {command} ) 2>&1; echo \"{mark}rc:$?\"")
        parts.append(f"echo '{mark}end'")
        # Collected and written at once: every echo and `cat` written straight through would leave
        # the endpoint as its own SSH packet (dozens per host, each costing the controller CPU).
        return "flagee_probe_out=$(" + "; ".join(parts) + "); printf '%s\\n' \"$flagee_probe_out\""

    async def run(self, session: RemoteSession, *, sudo: bool = False, timeout: float | None = None) -> ProbeResult:
        """Send the probe as one remote command (elevated with `sudo` for a non-root user)."""
        nonce = secrets.token_hex(8)
        result = await session.run(self.script(nonce), sudo=sudo, timeout=timeout)
        marker = f"@@{nonce}:end"
        if marker not in result.stdout:
            tail = (result.stderr or result.stdout).strip()[-300:]
            raise ActionFailed(f"the probe did not complete (exit {result.exit_status}): {tail or 'no output'}")
        return parse_probe_output(result.stdout, nonce)


def parse_probe_output(output: str, nonce: str) -> ProbeResult:
    """Parse what `Probe.script(nonce)` printed."""
    mark = f"@@{nonce}:"
    out = ProbeResult()
    pieces = output.split(mark)
    for piece in pieces[1:]:
        head, _, body = piece.partition("\n")
        if head.startswith("file:"):
            path = head[len("file:"):]
            out.files[path] = _file_state(path, body)
        elif head == "content" and out.files:
            path = next(reversed(out.files))
            state = out.files[path]
            exact = _exact_content(body, state.sha256)
            if exact is not None:
                out.files[path] = replace(state, content=exact)
        elif head.startswith("cmd:"):
            out.outputs[head[len("cmd:"):]] = CommandOutput(-1, body)
        elif head.startswith("rc:") and out.outputs:
            name = next(reversed(out.outputs))
            try:
                status = int(head[len("rc:"):].strip())
            except ValueError:
                status = -1
            out.outputs[name] = CommandOutput(status, out.outputs[name].stdout)
    return out


def _exact_content(body: str, sha256: str | None) -> str | None:
    """`body` is the content plus the newline `echo` printed (the marker's own newline was split
    off). Return the content only if its checksum proves it exact."""
    if sha256 is None or not body.endswith("\n"):
        return None
    text = body[:-1]
    if hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest() == sha256:
        return text
    return None


def _file_state(path: str, body: str) -> FileState:
    values: dict[str, str] = {}
    for line in body.splitlines():
        key, sep, value = line.partition(":")
        if sep and key in {"link", "stat", "sha", "size"}:
            values[key] = value
    if "stat" not in values:
        return FileState(path)
    fields = values["stat"].split("|")
    if len(fields) < 7:
        return FileState(path, kind="other", target=values.get("link"))
    kind = _KINDS.get(fields[0], "other")
    sha = values.get("sha", "").split()
    digest = sha[0] if sha and re.fullmatch(r"[0-9a-f]{64}", sha[0]) else None
    size_text = values.get("size", fields[6]).strip()
    return FileState(
        path,
        kind=kind,
        sha256=digest,
        size=int(size_text) if size_text.isdigit() else None,
        mode=int(fields[1], 8) if fields[1].isdigit() else None,
        uid=int(fields[2]) if fields[2].isdigit() else None,
        gid=int(fields[3]) if fields[3].isdigit() else None,
        owner=fields[4] or None,
        group=fields[5] or None,
        target=values.get("link"),
    )
