"""The agent bundle's files: where they come from, how they are verified, where they are cached.

Source: `PARAM_LOCAL_REPO_DIR` (or `/ariusmonitor/repositorio` when it exists), else
`PARAM_REPO_URL` (default https://ariusmonitor-repo.flagee.cloud): a flat repository of the
contract's files (deploy/agent-bundle/LAYOUT.md).

Checksums, before anything is uploaded anywhere: the repository's `SHA256SUMS` (`sha256sum`
format) and the config's `PARAM_AGENT_BUNDLE_SHA256` pins (both must agree where both name a
file); a file neither covers is refused unless `PARAM_ALLOW_UNVERIFIED_BUNDLE` is true, and
then the run report says the bundle was unverified.

Downloads: httpx, bounded in time and size, TLS verified, redirects followed only to the same
host; once per run (the pipeline's prepare step), cached in `<state dir>/bundles/<sha256>`, so a
verified file already cached is not downloaded again. Any failure raises PrepareFailed naming the
URL or file and the reason: the run ends before any host is touched.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit, urlunsplit

from flageemonitor import __version__
from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.errors import PrepareFailed

if TYPE_CHECKING:  # httpx is imported only when a run downloads (a local repository needs none of it)
    import httpx

DEFAULT_REPO_URL = "https://ariusmonitor-repo.flagee.cloud"
LEGACY_LOCAL_REPO = Path("/ariusmonitor/repositorio")
SUMS = "SHA256SUMS"
MAX_BYTES = 512 * 1024 * 1024
MAX_REDIRECTS = 5
TIMEOUT_S, CONNECT_TIMEOUT_S = 60.0, 10.0


@dataclass(frozen=True)
class BundleFile:
    """A verified file: `data` are the very bytes whose SHA-256 was checked (read once, so what is
    uploaded cannot differ from what was verified)."""

    name: str
    sha256: str
    path: Path  # the cached copy
    data: bytes = field(repr=False, default=b"")

    def read(self) -> bytes:
        return self.data


@dataclass
class Bundle:
    source: str  # URL (without credentials) or directory
    verified: bool
    checked_by: str  # "SHA256SUMS", "PARAM_AGENT_BUNDLE_SHA256", both, or "nothing (unverified)"
    files: dict[str, BundleFile] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)  # optional files the repository does not have
    downloaded: list[str] = field(default_factory=list)
    unverified_files: list[str] = field(default_factory=list)

    def summary(self) -> str:
        check = "verified by " + self.checked_by if self.verified else "UNVERIFIED (PARAM_ALLOW_UNVERIFIED_BUNDLE)"
        got = f"{len(self.files)} file(s), {len(self.downloaded)} downloaded"
        return f"bundle from {self.source}: {got}, {check}" + (
            f"; not in the repository: {', '.join(self.absent)}" if self.absent else "")

    def to_dict(self) -> dict[str, object]:
        return {
            "summary": self.summary(), "source": self.source, "verified": self.verified,
            "checked_by": self.checked_by, "files": {n: f.sha256 for n, f in sorted(self.files.items())},
            "absent": self.absent, "downloaded": self.downloaded, "unverified_files": self.unverified_files,
        }


def public_url(url: str) -> str:
    """`url` without user:password@ (safe for messages and reports)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, ""))


def parse_sums(text: str) -> dict[str, str]:
    """`sha256sum` output: `<64 hex>  <name>` (or ` *<name>`) per line; other lines ignored."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        digest, _, name = line.strip().partition(" ")
        name = name.strip().lstrip("*").strip()
        if len(digest) == 64 and all(c in "0123456789abcdefABCDEF" for c in digest) and name:
            out[os.path.basename(name)] = digest.lower()
    return out


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Http:
    """GET with bounded time and size; redirects only to the same host."""

    def __init__(self, base: str) -> None:
        import httpx

        parts = urlsplit(base)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise PrepareFailed(f"PARAM_REPO_URL {public_url(base)!r}: expected an http:// or https:// URL")
        self.base = base.rstrip("/") + "/"
        self.host = parts.hostname
        self.client = httpx.Client(timeout=httpx.Timeout(TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
                                   follow_redirects=False,
                                   headers={"User-Agent": f"flageemonitor-proxy/{__version__}"})

    def close(self) -> None:
        self.client.close()

    def url(self, name: str) -> str:
        return urljoin(self.base, name)

    def get(self, name: str, sink: Path | None) -> tuple[int, bytes]:
        """Status and body (or, with `sink`, the body streamed into that file); 404 -> (404, b'')."""
        import httpx

        url = self.url(name)
        for _ in range(MAX_REDIRECTS + 1):
            try:
                with self.client.stream("GET", url) as resp:
                    if resp.is_redirect:
                        target = urljoin(url, resp.headers.get("location", ""))
                        if urlsplit(target).hostname != self.host:
                            raise PrepareFailed(f"{public_url(url)}: redirected to another host "
                                                f"({public_url(target)}); refused")
                        url = target
                        continue
                    if resp.status_code == 404:
                        return 404, b""
                    if resp.status_code != 200:
                        raise PrepareFailed(f"{public_url(url)}: HTTP {resp.status_code}")
                    return 200, self._body(resp, url, sink)
            except httpx.HTTPError as exc:
                raise PrepareFailed(f"{public_url(url)}: {type(exc).__name__}: {exc}") from None
        raise PrepareFailed(f"{public_url(url)}: more than {MAX_REDIRECTS} redirects")

    @staticmethod
    def _body(resp: httpx.Response, url: str, sink: Path | None) -> bytes:
        size = 0
        chunks: list[bytes] = []
        out = open(sink, "wb") if sink is not None else None  # noqa: SIM115 - closed below
        try:
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > MAX_BYTES:
                    raise PrepareFailed(f"{public_url(url)}: larger than {MAX_BYTES // (1024 * 1024)} MiB; refused")
                if out is not None:
                    out.write(chunk)
                else:
                    chunks.append(chunk)
        finally:
            if out is not None:
                out.close()
        return b"".join(chunks)


class BundleFetcher:
    """Gets bundle files for one run (blocking; the pipeline runs it in a thread)."""

    def __init__(self, config: BotConfig, state_dir: Path) -> None:
        self.config = config
        self.cache = state_dir / "bundles"
        local = config.PARAM_LOCAL_REPO_DIR or (str(LEGACY_LOCAL_REPO) if LEGACY_LOCAL_REPO.is_dir() else None)
        self.local = Path(local) if local else None
        self.remote = None if self.local else (config.PARAM_REPO_URL or DEFAULT_REPO_URL)

    @property
    def source(self) -> str:
        return str(self.local) if self.local else public_url(self.remote or "")

    def fetch(self, required: Sequence[str], optional: Sequence[str] = ()) -> Bundle:
        if self.local is not None and not self.local.is_dir():
            raise PrepareFailed(f"PARAM_LOCAL_REPO_DIR {self.local}: not a directory")
        try:
            self.cache.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PrepareFailed(f"bundle cache {self.cache}: {exc.strerror or exc}") from None
        http = _Http(self.remote) if self.remote else None
        try:
            return self._fetch(http, list(required), list(optional))
        finally:
            if http is not None:
                http.close()

    def _where(self, http: _Http | None, name: str) -> str:
        return public_url(http.url(name)) if http else str(self.local / name if self.local else name)

    def _sums(self, http: _Http | None) -> dict[str, str] | None:
        if http is not None:
            status, body = http.get(SUMS, None)
            return parse_sums(body.decode("utf-8", "replace")) if status == 200 else None
        assert self.local is not None
        path = self.local / SUMS
        return parse_sums(path.read_text(errors="replace")) if path.is_file() else None

    def _fetch(self, http: _Http | None, required: list[str], optional: list[str]) -> Bundle:
        sums = self._sums(http)
        pins = self.config.PARAM_AGENT_BUNDLE_SHA256
        allow = bool(self.config.PARAM_ALLOW_UNVERIFIED_BUNDLE)
        checked = [label for label, present in ((SUMS, sums is not None), ("PARAM_AGENT_BUNDLE_SHA256", bool(pins)))
                   if present]
        bundle = Bundle(self.source, verified=True, checked_by=" and ".join(checked) or "nothing")
        for name in [*required, *optional]:
            is_optional = name in optional
            listed, pinned = (sums or {}).get(name), pins.get(name)
            if listed and pinned and listed != pinned:
                raise PrepareFailed(f"{self._where(http, name)}: SHA256SUMS says {listed[:12]}…, "
                                    f"PARAM_AGENT_BUNDLE_SHA256 pins {pinned[:12]}…; refusing a bundle they "
                                    "disagree on")
            expected = pinned or listed
            if expected is None and is_optional and (sums is not None or pins):
                bundle.absent.append(name)  # the checksum lists name the files to use, and not this one
                continue
            if expected is None and not allow:
                raise PrepareFailed(
                    f"{self._where(http, name)}: no checksum (the repository's {SUMS} does not list it and "
                    "PARAM_AGENT_BUNDLE_SHA256 does not pin it); set PARAM_ALLOW_UNVERIFIED_BUNDLE: true to use it "
                    "unverified")
            got = self._one(http, name, expected, is_optional, bundle)
            if got is None:
                bundle.absent.append(name)
                continue
            bundle.files[name] = got
            if expected is None:
                bundle.verified = False
                bundle.unverified_files.append(name)
        if not bundle.verified:
            bundle.checked_by = "nothing (unverified)" if not checked else bundle.checked_by + " (partly)"
        return bundle

    def _one(self, http: _Http | None, name: str, expected: str | None, optional: bool,
             bundle: Bundle) -> BundleFile | None:
        where = self._where(http, name)
        if expected is not None:
            cached = self.cache / expected
            try:
                data = cached.read_bytes()
            except OSError:
                data = None
            if data is not None and _sha256(data) == expected:
                return BundleFile(name, expected, cached, data)
        fd, tmp_name = tempfile.mkstemp(prefix=".download-", dir=self.cache)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            if http is not None:
                status, _ = http.get(name, tmp)
                if status == 404:
                    if optional:
                        return None
                    raise PrepareFailed(f"{where}: HTTP 404 (not in the repository)")
                bundle.downloaded.append(name)
            else:
                assert self.local is not None
                source = self.local / name
                if not source.is_file():
                    if optional:
                        return None
                    raise PrepareFailed(f"{where}: no such file")
                tmp.write_bytes(source.read_bytes())
            data = tmp.read_bytes()
            actual = _sha256(data)
            if expected is not None and actual != expected:
                raise PrepareFailed(f"{where}: checksum mismatch (expected {expected[:12]}…, got {actual[:12]}…)")
            final = self.cache / actual
            os.replace(tmp, final)
            return BundleFile(name, actual, final, data)
        except OSError as exc:
            raise PrepareFailed(f"{where}: {exc.strerror or exc}") from None
        finally:
            tmp.unlink(missing_ok=True)
