"""Debian packages for the bundle: resolve, download once into a cache, extract.

Rules:
- apt's ordinary client does all network work (`apt-get download`); every file is checked
  against the SHA-256 apt's signed indexes give (`--print-uris`), and a cached file with the
  right checksum is never downloaded again.
- Only library packages are followed from the agent's `Depends` (names `lib*`, `zlib*`): the
  bundle needs the libraries, never the maintainer-script tools (adduser, ucf, ...).
- A foreign architecture (i386 on an amd64 machine) is added to dpkg and the indexes updated
  only when apt does not know the package for it yet.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

APT_OPTIONS = ["-o", "APT::Sandbox::User=root", "-q"]


def use_cache(cache: Path) -> None:
    """Keep apt's binary package cache in `cache` (images often switch it off, and rebuilding it
    costs seconds per apt-cache call)."""
    cache.mkdir(parents=True, exist_ok=True)
    APT_OPTIONS[3:] = ["-o", f"Dir::Cache::pkgcache={cache / 'pkgcache.bin'}",
                       "-o", f"Dir::Cache::srcpkgcache={cache / 'srcpkgcache.bin'}"]


class AptError(RuntimeError):
    """A package could not be resolved, downloaded or extracted; the message says which and why."""


@dataclass(frozen=True)
class Package:
    name: str
    arch: str
    version: str
    filename: str
    sha256: str

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.arch}"


def _run(argv: list[str], *, cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd, timeout=900)
    except FileNotFoundError:
        raise AptError(f"{argv[0]} not found: this builder needs a Debian machine (apt, dpkg)") from None
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        raise AptError(f"{' '.join(argv[:3])} ... failed ({proc.returncode}): {' | '.join(tail)}")
    return proc.stdout


def ensure_architecture(arch: str, probe: str) -> None:
    """Make apt know `probe` for `arch`: add the architecture to dpkg and update the indexes
    when needed (idempotent; needs root only when something must change)."""
    native = _run(["dpkg", "--print-architecture"]).strip()
    if arch != native and arch not in _run(["dpkg", "--print-foreign-architectures"]).split():
        _run(["dpkg", "--add-architecture", arch])
    if _known(f"{probe}:{arch}"):
        return
    # a mirror in mid-sync may fail one index (e.g. security) while the one needed arrives
    try:
        _run(["apt-get", *APT_OPTIONS, "update"])
        failure = ""
    except AptError as exc:
        failure = f" ({exc})"
    if not _known(f"{probe}:{arch}"):
        raise AptError(f"apt does not know {probe}:{arch}, even after apt-get update{failure}")


def _known(spec: str) -> bool:
    proc = subprocess.run(["apt-cache", *APT_OPTIONS, "show", "--no-all-versions", spec], capture_output=True,
                          text=True, check=False)
    return proc.returncode == 0 and bool(proc.stdout.strip())


def _is_library(name: str) -> bool:
    return name.startswith(("lib", "zlib"))


def _depends(names: list[str], arch: str) -> list[str]:
    """First alternative of each Depends / Pre-Depends of the candidate versions (one apt-cache call)."""
    text = _run(["apt-cache", *APT_OPTIONS, "show", "--no-all-versions", *(f"{n}:{arch}" for n in names)])
    found: list[str] = []
    for line in text.splitlines():
        if line.startswith(("Depends:", "Pre-Depends:")):
            for clause in line.split(":", 1)[1].split(","):
                first = clause.split("|")[0].strip()
                name = re.split(r"[\s(:]", first, maxsplit=1)[0]
                if name:
                    found.append(name)
    return found


def library_closure(package: str, arch: str) -> list[str]:
    """`package` and every library package it needs, recursively, sorted."""
    seen = {package}
    level = [package]
    while level:
        level = sorted({d for d in _depends(level, arch) if _is_library(d)} - seen)
        seen.update(level)
    return sorted(seen)


_URI_LINE = re.compile(r"^'(?P<url>[^']+)' (?P<file>\S+) (?P<size>\d+) SHA256:(?P<sha>[0-9a-f]{64})$")


def resolve(names: list[str], arch: str) -> list[Package]:
    """The candidate version, file name and SHA-256 of each package, from apt's indexes."""
    with tempfile.TemporaryDirectory() as empty:  # --print-uris skips files present in the cwd
        text = _run(["apt-get", *APT_OPTIONS, "download", "--print-uris", *(f"{n}:{arch}" for n in names)],
                    cwd=Path(empty))
    found: dict[str, Package] = {}
    for line in text.splitlines():
        m = _URI_LINE.match(line.strip())
        if not m:
            continue
        filename = m.group("file")
        name, version = filename.split("_")[:2]
        found[name] = Package(name, arch, version.replace("%3a", ":"), filename, m.group("sha"))
    missing = sorted(set(names) - set(found))
    if missing:
        raise AptError(f"apt gave no download for {', '.join(f'{n}:{arch}' for n in missing)}")
    return [found[n] for n in names]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(packages: list[Package], cache: Path) -> dict[str, Path]:
    """Each package's .deb in `cache` (downloaded only when absent or corrupt), by name."""
    cache.mkdir(parents=True, exist_ok=True)
    wanted = [p for p in packages if not _cached(cache / p.filename, p.sha256)]
    if wanted:
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            _run(["apt-get", *APT_OPTIONS, "download", *(f"{p.spec}={p.version}" for p in wanted)], cwd=Path(tmp))
            for p in wanted:
                got = Path(tmp) / p.filename
                if not got.exists():
                    matches = list(Path(tmp).glob(f"{p.name}_*_{p.arch}.deb"))
                    if len(matches) != 1:
                        raise AptError(f"apt-get download left no {p.filename}")
                    got = matches[0]
                if sha256_of(got) != p.sha256:
                    raise AptError(f"{p.filename}: SHA-256 differs from apt's index")
                shutil.move(got, cache / p.filename)
    return {p.name: cache / p.filename for p in packages}


def _cached(path: Path, sha256: str) -> bool:
    return path.is_file() and sha256_of(path) == sha256


def extract(deb: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    _run(["dpkg-deb", "-x", str(deb), str(dest)])
