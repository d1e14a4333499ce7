"""Reproducible gzip tar archives: the same inputs give the same bytes.

Members are written in sorted order, owned by root:root (uid/gid 0), with one fixed mtime
(`SOURCE_DATE_EPOCH` when set), in ustar format; the gzip header carries no name and mtime 0.
Member names must be relative and free of `..`; only directories and regular files are stored.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

DEFAULT_MTIME = 1704067200  # 2024-01-01T00:00:00Z


def fixed_mtime() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    return int(value) if value.isdigit() else DEFAULT_MTIME


@dataclass(frozen=True)
class Entry:
    """A directory (data is None) or a regular file with its mode."""

    data: bytes | None
    mode: int


def directory(mode: int = 0o755) -> Entry:
    return Entry(None, mode)


def file(data: bytes, mode: int = 0o644) -> Entry:
    return Entry(data, mode)


def check_name(name: str) -> str:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or name != str(path):
        raise ValueError(f"archive member {name!r} must be a plain relative path")
    return name


def with_parents(entries: Mapping[str, Entry]) -> dict[str, Entry]:
    """`entries` plus a 0755 directory entry for every parent not listed."""
    out = dict(entries)
    for name in entries:
        for parent in PurePosixPath(name).parents:
            if str(parent) != "." and str(parent) not in out:
                out[str(parent)] = directory()
    return out


def write_tar_gz(path: Path, entries: Mapping[str, Entry], mtime: int | None = None) -> None:
    """Write `entries` (member name -> Entry) to `path` reproducibly, atomically."""
    stamp = fixed_mtime() if mtime is None else mtime
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        full = with_parents(entries)
        for name in sorted(full):
            entry = full[name]
            info = tarfile.TarInfo(check_name(name))
            info.mtime, info.mode = stamp, entry.mode
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if entry.data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as out, gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    tmp.replace(path)
