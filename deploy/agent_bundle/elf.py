"""ELF facts the bundle needs: which libraries a binary loads, and whether it is 32- or 64-bit.

The library list is what `ldd` prints, asked of the staged (Debian) loader itself with
`--list --library-path`, so it works for a foreign architecture and never looks at the
machine's own libraries.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

LOADERS = {"amd64": "ld-linux-x86-64.so.2", "i386": "ld-linux.so.2"}
TRIPLETS = {"amd64": "x86_64-linux-gnu", "i386": "i386-linux-gnu"}


class ElfError(RuntimeError):
    """A binary's libraries could not be listed or found; the message names them."""


def elf_class(path: Path) -> int:
    """32 or 64 (the ELF header's EI_CLASS)."""
    with open(path, "rb") as fh:
        head = fh.read(5)
    if head[:4] != b"\x7fELF" or head[4] not in (1, 2):
        raise ElfError(f"{path} is not an ELF file")
    return 32 if head[4] == 1 else 64


def library_dirs(stage: Path, arch: str) -> list[Path]:
    triplet = TRIPLETS[arch]
    return [stage / sub for sub in (f"lib/{triplet}", f"usr/lib/{triplet}", "lib", "usr/lib")]


def loader_path(stage: Path, arch: str) -> Path:
    for directory in library_dirs(stage, arch):
        candidate = directory / LOADERS[arch]
        if candidate.exists():
            return candidate
    raise ElfError(f"no {LOADERS[arch]} in the staged packages (is libc6:{arch} among them?)")


def needed_libraries(binary: Path, stage: Path, arch: str) -> dict[str, Path]:
    """soname -> file in `stage`, for every library the loader maps for `binary`."""
    loader = loader_path(stage, arch)
    search = ":".join(str(d) for d in library_dirs(stage, arch))
    proc = subprocess.run([str(loader), "--library-path", search, "--list", str(binary)], capture_output=True,
                          text=True, check=False, timeout=60)
    if proc.returncode != 0:
        raise ElfError(f"{loader.name} --list {binary.name} failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
    found: dict[str, Path] = {}
    missing: list[str] = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>":
            if parts[0].startswith("/"):
                continue  # the program interpreter: the bundle carries the staged loader itself
            if parts[2] == "not":
                missing.append(parts[0])
            elif parts[2].startswith(str(stage)):
                found[parts[0]] = Path(parts[2])
            else:  # resolved from the machine's own libraries: not something the bundle can carry
                missing.append(f"{parts[0]} (only on this machine: {parts[2]})")
    if missing:
        raise ElfError(f"{binary.name} needs {', '.join(missing)}, which no staged package provides")
    return found
