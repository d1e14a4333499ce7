"""Build a real AriusMonitor agent bundle repository from Debian's zabbix-agent packages.

    uv run python -m deploy.agent_bundle.build --out DIR [--cache DIR] [--revision N]

DIR receives what a bundle repository holds (see deploy/agent-bundle/LAYOUT.md):
`ariusmonitor.tar.gz` (amd64, for x86_64 endpoints), `ariusmonitor-i686.tar.gz` (i386), the
agent assets (`geral.conf`, the `Monitora*` placeholders, `libs.tar.gz`) and `SHA256SUMS`.
Each archive carries Debian's `zabbix_agentd` and `zabbix_sender`, every library the loader
maps for them and the loader itself, POSIX sh launchers, and the utilities scripts. Downloads
are cached (default /var/cache/flageemonitor-test/agent-bundle) and checked against apt's
indexes; the same packages give byte-identical files. Needs a Debian machine with apt and, the
first time the i386 packages are fetched, root (`dpkg --add-architecture i386`, `apt-get update`).
Exit codes: 0 built, 1 build failed (one line says why), 2 usage.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deploy.agent_bundle import apt, elf
from deploy.agent_bundle.archive import Entry, directory, file, write_tar_gz

TEMPLATES = Path(__file__).resolve().parents[1] / "agent-bundle"
DEFAULT_CACHE = Path("/var/cache/flageemonitor-test/agent-bundle")
PACKAGE = "zabbix-agent"  # Debian's package ships zabbix_agentd and zabbix_sender
ARCHIVES = {"amd64": "ariusmonitor.tar.gz", "i386": "ariusmonitor-i686.tar.gz"}
PROGRAMS = {"zabbix_agentd": ("usr/sbin/zabbix_agentd", "zabbix/sbin"),
            "zabbix_sender": ("usr/bin/zabbix_sender", "zabbix/bin")}
UTILITIES = ("setup.sh", "start.sh", "stop.sh", "agent-common.sh", "ariusmonitor.init", "ariusmonitor.service",
             "ariusmonitor.sudoers", "ariusmonitor-check-service.cron")
EXECUTABLE = {"setup.sh", "start.sh", "stop.sh", "ariusmonitor.init"}
PLACEHOLDERS = ("MonitoraSATc", "MonitoraSATc64", "MonitoraSAT.sh", "MonitoraImpressora", "MonitoraImpressora64")
ROOT = "ariusmonitor"


class BuildError(RuntimeError):
    """The bundle could not be built; the message says why in one line."""


@dataclass(frozen=True)
class Built:
    version: str
    files: dict[str, str]  # repository file name -> sha256


def upstream_version(debian_version: str) -> str:
    """`1:6.0.14+dfsg-1+b1` -> `6.0.14`."""
    text = debian_version.split(":", 1)[-1]
    return re.split(r"[+~-]", text, maxsplit=1)[0]


def _template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def launcher(program: str, loader: str, argv0: str) -> bytes:
    text = _template("launcher.sh.in")
    for key, value in {"@PROGRAM@": program, "@LOADER@": loader, "@ARGV0@": argv0}.items():
        text = text.replace(key, value)
    return text.encode()


def arch_entries(stage: Path, arch: str, version: str, packages: list[apt.Package]) -> dict[str, Entry]:
    """The members of one architecture's archive, from the extracted packages in `stage`."""
    entries: dict[str, Entry] = {
        f"{ROOT}/VERSION": file(f"{version}\n".encode()),
        f"{ROOT}/zabbix/PACKAGES": file("".join(f"{p.spec} {p.version} {p.sha256}\n" for p in packages).encode()),
        f"{ROOT}/conf/zabbix_agentd.conf.d": directory(),
        f"{ROOT}/logs": directory(),
    }
    loader = elf.loader_path(stage, arch)
    entries[f"{ROOT}/zabbix/lib/{loader.name}"] = file(loader.read_bytes(), 0o755)
    for program, (source, bindir) in PROGRAMS.items():
        binary = stage / source
        if not binary.is_file():
            raise BuildError(f"{PACKAGE}:{arch} has no {source}")
        entries[f"{ROOT}/zabbix/lib/{program}"] = file(binary.read_bytes(), 0o755)
        argv0 = f"/{ROOT}/{bindir}/{program}"
        entries[f"{ROOT}/{bindir}/{program}"] = file(launcher(program, loader.name, argv0), 0o755)
        for soname, path in elf.needed_libraries(binary, stage, arch).items():
            entries[f"{ROOT}/zabbix/lib/{soname}"] = file(path.resolve().read_bytes(), 0o644)
    for name in UTILITIES:
        data = (TEMPLATES / "utilities" / name).read_bytes()
        entries[f"{ROOT}/utilities/{name}"] = file(data, 0o755 if name in EXECUTABLE else 0o644)
    return entries


def build_arch(arch: str, cache: Path, revision: int, out: Path) -> str:
    """Write one architecture's archive into `out`; returns the bundle version."""
    apt.ensure_architecture(arch, PACKAGE)
    packages = apt.resolve(apt.library_closure(PACKAGE, arch), arch)
    debs = apt.fetch(packages, cache / "debs" / arch)
    agent = next(p for p in packages if p.name == PACKAGE)
    version = f"{upstream_version(agent.version)}-{revision}"
    with tempfile.TemporaryDirectory(prefix=f"agent-bundle-{arch}-") as tmp:
        stage = Path(tmp)
        for package in packages:
            apt.extract(debs[package.name], stage)
        entries = arch_entries(stage, arch, version, packages)
    write_tar_gz(out / ARCHIVES[arch], entries)
    return version


def asset_files() -> dict[str, tuple[bytes, int]]:
    """Repository assets beside the archives: name -> (content, mode)."""
    assets: dict[str, tuple[bytes, int]] = {"geral.conf": ((TEMPLATES / "assets/geral.conf").read_bytes(), 0o644)}
    template = _template("assets/placeholder.sh.in")
    for name in PLACEHOLDERS:
        assets[name] = (template.replace("@NAME@", name).encode(), 0o755)
    return assets


def libs_entries() -> Mapping[str, Entry]:
    return {"libs/README": file((TEMPLATES / "assets/libs/README").read_bytes())}


def sha256sums(out: Path, names: list[str]) -> dict[str, str]:
    sums = {name: apt.sha256_of(out / name) for name in sorted(names)}
    (out / "SHA256SUMS").write_text("".join(f"{digest}  {name}\n" for name, digest in sums.items()))
    return sums


def build(out: Path, cache: Path = DEFAULT_CACHE, revision: int = 1) -> Built:
    """Build into a temporary directory beside `out`, then move the files in, SHA256SUMS last:
    a failed build leaves `out` as it was."""
    out.mkdir(parents=True, exist_ok=True)
    apt.use_cache(cache / "apt")
    with tempfile.TemporaryDirectory(prefix=".build-", dir=out) as tmp:
        work = Path(tmp)
        versions = {build_arch(arch, cache, revision, work) for arch in ARCHIVES}
        if len(versions) != 1:
            raise BuildError(f"amd64 and i386 packages differ in version: {sorted(versions)}")
        for name, (data, mode) in asset_files().items():
            (work / name).write_bytes(data)
            (work / name).chmod(mode)
        write_tar_gz(work / "libs.tar.gz", libs_entries())
        names = [*ARCHIVES.values(), *asset_files(), "libs.tar.gz"]
        sums = sha256sums(work, names)
        for name in [*names, "SHA256SUMS"]:
            (work / name).replace(out / name)
    return Built(versions.pop(), sums)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.agent_bundle.build",
                                     description="Build an agent bundle repository from Debian's zabbix-agent.")
    parser.add_argument("--out", type=Path, required=True, help="directory to write the repository into")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"download cache (default {DEFAULT_CACHE})")
    parser.add_argument("--revision", type=int, default=1, help="bundle revision after the agent version (default 1)")
    args = parser.parse_args(argv)
    if args.revision < 1:
        parser.error("--revision must be 1 or more")
    try:
        built = build(args.out, args.cache, args.revision)
    except (BuildError, apt.AptError, elf.ElfError, OSError, ValueError) as exc:
        print(f"agent bundle: {exc}", file=sys.stderr)
        return 1
    print(f"agent bundle {built.version} in {args.out}")
    for name, digest in built.files.items():
        print(f"{digest}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
