"""The bundle builder's output: the contract's files, safe archive members, checksums that match,
real binaries of the right architecture with their libraries, and byte-identical rebuilds."""

from __future__ import annotations

import hashlib
import subprocess
import tarfile
from pathlib import Path

import pytest
from deploy.agent_bundle import build
from deploy.agent_bundle.elf import elf_class

pytestmark = [pytest.mark.slow, pytest.mark.agent]

REPOSITORY = {"ariusmonitor.tar.gz", "ariusmonitor-i686.tar.gz", "geral.conf", "MonitoraSATc", "MonitoraSATc64",
              "MonitoraSAT.sh", "MonitoraImpressora", "MonitoraImpressora64", "libs.tar.gz", "SHA256SUMS"}
CONTRACT_MEMBERS = {"ariusmonitor/VERSION", "ariusmonitor/zabbix/sbin/zabbix_agentd",
                    "ariusmonitor/zabbix/bin/zabbix_sender", "ariusmonitor/utilities/setup.sh",
                    "ariusmonitor/utilities/start.sh", "ariusmonitor/utilities/stop.sh",
                    "ariusmonitor/conf/zabbix_agentd.conf.d", "ariusmonitor/logs"}


def members(archive: Path) -> dict[str, tuple[tarfile.TarInfo, bytes | None]]:
    out: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}
    with tarfile.open(archive, "r:gz") as tar:
        for info in tar.getmembers():
            data = tar.extractfile(info).read() if info.isfile() else None  # type: ignore[union-attr]
            out[info.name] = (info, data)
    return out


def test_repository_holds_the_contracts_files_and_their_checksums(agent_bundle: Path) -> None:
    assert {p.name for p in agent_bundle.iterdir()} == REPOSITORY
    lines = (agent_bundle / "SHA256SUMS").read_text().splitlines()
    sums = {name: digest for digest, name in (line.split("  ", 1) for line in lines)}
    assert lines == sorted(lines, key=lambda line: line.split("  ", 1)[1])
    assert set(sums) == REPOSITORY - {"SHA256SUMS"}
    for name, digest in sums.items():
        assert hashlib.sha256((agent_bundle / name).read_bytes()).hexdigest() == digest, name
    check = subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=agent_bundle,
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize(("archive", "bits", "loader"), [("ariusmonitor.tar.gz", 64, "ld-linux-x86-64.so.2"),
                                                         ("ariusmonitor-i686.tar.gz", 32, "ld-linux.so.2")])
def test_archive_members_are_safe_and_carry_a_runnable_agent(agent_bundle: Path, tmp_path: Path, archive: str,
                                                              bits: int, loader: str) -> None:
    found = members(agent_bundle / archive)
    assert set(found) >= CONTRACT_MEMBERS
    for name, (info, _) in found.items():
        assert name == "ariusmonitor" or name.startswith("ariusmonitor/"), name
        assert not name.startswith("/") and ".." not in name.split("/"), name
        assert info.isdir() or info.isfile(), name  # no links, devices or fifos
        assert (info.uid, info.gid, info.uname, info.gname) == (0, 0, "root", "root"), name
        if info.isdir():
            assert info.mode == 0o755, name
    version = found["ariusmonitor/VERSION"][1]
    assert version is not None and version.decode().strip() == version.decode().rstrip("\n")
    assert version.decode().strip().startswith("6.0.") and version.decode().strip().endswith("-1")
    launcher = found["ariusmonitor/zabbix/sbin/zabbix_agentd"][1]
    assert launcher is not None and launcher.startswith(b"#!/bin/sh\n")
    assert f'"$lib/{loader}" --library-path "$lib" --argv0 /ariusmonitor/zabbix/sbin/zabbix_agentd'.encode() in launcher
    for binary in ("zabbix_agentd", "zabbix_sender", loader, "libc.so.6"):
        data = found[f"ariusmonitor/zabbix/lib/{binary}"][1]
        assert data is not None
        (tmp_path / binary).write_bytes(data)
        assert elf_class(tmp_path / binary) == bits, binary
    # the bundled loader maps every library the agent needs from the bundle alone
    with tarfile.open(agent_bundle / archive, "r:gz") as tar:
        tar.extractall(tmp_path / "x", filter="data")
    lib = tmp_path / "x/ariusmonitor/zabbix/lib"
    listed = subprocess.run([str(lib / loader), "--library-path", str(lib), "--list", str(lib / "zabbix_agentd")],
                            capture_output=True, text=True, check=True, env={}).stdout
    mapped = [line.split("=>")[1].split()[0] for line in listed.splitlines() if "=>" in line]
    assert mapped and all(path.startswith(str(lib)) for path in mapped), listed
    version_out = subprocess.run([str(lib / loader), "--library-path", str(lib), str(lib / "zabbix_agentd"), "-V"],
                                 capture_output=True, text=True, check=False, env={})
    assert version_out.returncode == 0 and "zabbix_agentd (daemon) (Zabbix) 6.0." in version_out.stdout


def test_libs_archive_extracts_into_the_bundle_directory(agent_bundle: Path) -> None:
    found = members(agent_bundle / "libs.tar.gz")
    assert set(found) == {"libs", "libs/README"}
    for name in ("MonitoraSATc", "MonitoraSAT.sh", "MonitoraImpressora64"):
        script = agent_bundle / name
        assert script.stat().st_mode & 0o111
        ran = subprocess.run([str(script)], capture_output=True, text=True, check=False)
        assert ran.returncode == 0 and "placeholder" in ran.stderr


def test_building_twice_gives_identical_bytes(agent_bundle: Path, tmp_path: Path) -> None:
    again = build.build(tmp_path / "again")
    for name in REPOSITORY:
        assert (tmp_path / "again" / name).read_bytes() == (agent_bundle / name).read_bytes(), name
    assert again.files == {name: hashlib.sha256((agent_bundle / name).read_bytes()).hexdigest()
                           for name in REPOSITORY - {"SHA256SUMS"}}
