"""Read-only probe of remote state in one round trip: files (and small text contents) and the
output of read-only commands.

The script is POSIX sh that busybox ash, dash and Slackware 13's bash run. Its cost on the
endpoint does not grow with the number of paths: ONE `stat -c` and ONE `sha256sum` cover every
path (a regular file only: a FIFO or device is never read), `readlink` runs only for links and
`head -c` once per content read; a path's state is found by its name in their output (the name
last in `stat`'s line; GNU's escaped checksum lines undone) or by its index. Every path is
quoted; sections are delimited by a random nonce so a file's content can never fake a marker.
A text content is trusted only when its SHA-256 matches the file's (binary or non-UTF-8
contents come back as None). `data=True` reads the exact bytes whatever they are (sent as hex
by `od`, checked against the checksum too); a file that is also valid UTF-8 then gets its
`content` as well.

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
    data: bytes | None = None  # exact bytes, only when asked for (`Probe.file(data=True)`), small

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
        out = {k: v for k, v in self.__dict__.items() if v is not None and k not in {"content", "data"}}
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
        self._data: set[str] = set()

    def file(self, path: str, *, content: bool = False, data: bool = False) -> Probe:
        """Probe `path` (absolute); with `content`, read it back when it is a text file of at
        most MAX_CONTENT bytes; with `data`, read its exact bytes (any encoding, same limit)."""
        if not path.startswith("/") or "\n" in path or "\0" in path:
            raise ValueError(f"probe paths are absolute and on one line: {path!r}")
        self._files[path] = self._files.get(path, False) or (content and not data)
        if data:
            self._data.add(path)
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
        paths = list(self._files)
        quoted = " ".join(shlex.quote(path) for path in paths)
        parts = [f"echo '{mark}stat'"]
        if paths:
            # One `stat` and one `sha256sum` for every path: a process per file would cost the
            # endpoint dozens of forks per probe. A path's section is its index in `paths`.
            parts += [
                f"stat -c '%F|%a|%u|%g|%U|%G|%s|%n' {quoted} 2>/dev/null",
                f"i=0; for f in {quoted}; do "
                f"if [ -L \"$f\" ]; then echo \"{mark}link:$i\"; printf 'target:%s\\n' \"$(readlink \"$f\")\"; "
                f"if [ -f \"$f\" ]; then printf 'size:%s\\n' \"$(stat -L -c %s \"$f\" 2>/dev/null)\"; fi; fi; "
                "i=$((i+1)); done",
                f"echo '{mark}sha'; set --; for f in {quoted}; do if [ -f \"$f\" ]; then set -- \"$@\" \"$f\"; fi; "
                "done; if [ $# -gt 0 ]; then sha256sum \"$@\" 2>/dev/null; fi",
            ]
        for index, (path, content) in enumerate(self._files.items()):
            q = shlex.quote(path)
            if content:  # a larger file comes back cut, and its checksum then rejects it
                parts.append(f"if [ -f {q} ]; then echo '{mark}content:{index}'; head -c {MAX_CONTENT + 1} {q}; "
                             f"echo; echo '{mark}endcontent'; fi")
            if path in self._data:
                parts.append(
                    f"if [ -f {q} ] && [ \"$(stat -L -c %s {q} 2>/dev/null || echo 0)\" -le {MAX_CONTENT} ]; then "
                    f"echo '{mark}data:{index}'; od -An -v -tx1 {q}; echo '{mark}enddata'; fi"
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
        return parse_probe_output(result.stdout, nonce, list(self._files))


def parse_probe_output(output: str, nonce: str, paths: list[str]) -> ProbeResult:
    """Parse what `Probe.script(nonce)` printed for the probed `paths` (in the probe's order)."""
    mark = f"@@{nonce}:"
    out = ProbeResult()
    stats: dict[str, list[str]] = {}
    shas: dict[str, str] = {}
    links: dict[int, dict[str, str]] = {}
    contents: dict[int, str] = {}
    data: dict[int, str] = {}
    for piece in output.split(mark)[1:]:
        head, _, body = piece.partition("\n")
        kind, _, arg = head.partition(":")
        index = int(arg) if arg.isdigit() and int(arg) < len(paths) else None
        if kind == "stat":
            for line in body.splitlines():
                fields = line.split("|", 7)
                if len(fields) == 8:
                    stats[fields[7]] = fields[:7]
        elif kind == "sha":
            shas.update(_sha_lines(body))
        elif kind == "link" and index is not None:
            links[index] = dict(ln.partition(":")[::2] for ln in body.splitlines() if ":" in ln)
        elif kind == "content" and index is not None:
            contents[index] = body
        elif kind == "data" and index is not None:
            data[index] = body
        elif kind == "cmd":
            out.outputs[arg] = CommandOutput(-1, body)
        elif kind == "rc" and out.outputs:
            name = next(reversed(out.outputs))
            try:
                status = int(arg.strip())
            except ValueError:
                status = -1
            out.outputs[name] = CommandOutput(status, out.outputs[name].stdout)
    for index, path in enumerate(paths):
        state = _file_state(path, stats.get(path), shas.get(path), links.get(index, {}))
        if index in contents:
            exact = _exact_content(contents[index], state.sha256)
            if exact is not None:
                state = replace(state, content=exact)
        if index in data:
            raw = _exact_data(data[index], state.sha256)
            if raw is not None:
                state = replace(state, data=raw, content=_utf8(raw))
        out.files[path] = state
    return out


def _sha_lines(body: str) -> dict[str, str]:
    """path -> digest from `sha256sum` lines (`<hex>  <path>`; GNU escapes a path holding a
    backslash or newline and marks the line with a leading backslash)."""
    found: dict[str, str] = {}
    for line in body.splitlines():
        escaped = line.startswith("\\")
        digest, sep, name = line[escaped:].partition("  ")
        if not sep or not re.fullmatch(r"[0-9a-f]{64}", digest):
            continue
        if escaped:
            name = re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), name)
        found[name] = digest
    return found


def _exact_content(body: str, sha256: str | None) -> str | None:
    """`body` is the content plus the newline `echo` printed (the marker's own newline was split
    off). Return the content only if its checksum proves it exact."""
    if sha256 is None or not body.endswith("\n"):
        return None
    text = body[:-1]
    if hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest() == sha256:
        return text
    return None


def _utf8(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _exact_data(body: str, sha256: str | None) -> bytes | None:
    """The bytes `od -An -v -tx1` printed as hex, only if their checksum proves them exact."""
    try:
        raw = bytes.fromhex("".join(body.split()))
    except ValueError:
        return None
    if sha256 is None or hashlib.sha256(raw).hexdigest() != sha256:
        return None
    return raw


def _file_state(path: str, stat: list[str] | None, digest: str | None, link: dict[str, str]) -> FileState:
    """A path's state from its `stat` fields (kind|mode|uid|gid|user|group|size), its checksum
    and, for a link, its target and the size of what it points to."""
    if stat is None:
        return FileState(path)
    kind = _KINDS.get(stat[0], "other")
    size_text = link.get("size", stat[6]).strip() if kind == "link" else stat[6].strip()
    return FileState(
        path,
        kind=kind,
        sha256=digest,
        size=int(size_text) if size_text.isdigit() else None,
        mode=int(stat[1], 8) if stat[1].isdigit() else None,
        uid=int(stat[2]) if stat[2].isdigit() else None,
        gid=int(stat[3]) if stat[3].isdigit() else None,
        owner=stat[4] or None,
        group=stat[5] or None,
        target=link.get("target") if kind == "link" else None,
    )
