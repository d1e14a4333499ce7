"""The agent bundle's scripts and the reproducible archive writer (fast: no packages, no endpoints)."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from deploy.agent_bundle import archive
from deploy.agent_bundle.build import TEMPLATES, UTILITIES, upstream_version

SCRIPTS = sorted(p for p in (TEMPLATES / "utilities").iterdir() if p.name.endswith((".sh", ".init")))
SHELLS = (["dash", "-n"], ["bash", "--posix", "-n"], ["busybox", "sh", "-n"])


def test_every_utility_the_builder_ships_exists() -> None:
    assert sorted(UTILITIES) == sorted(p.name for p in (TEMPLATES / "utilities").iterdir())


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_shellcheck_clean_posix_sh(script: Path) -> None:
    assert shutil.which("shellcheck"), "shellcheck missing: run scripts/setup.sh"
    proc = subprocess.run(["shellcheck", "-x", "-s", "sh", script.name], cwd=script.parent, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout
    for shell in SHELLS:
        assert shutil.which(shell[0]), f"{shell[0]} missing"
        parsed = subprocess.run([*shell, str(script)], capture_output=True, text=True, check=False)
        assert parsed.returncode == 0, (shell, parsed.stderr)


def test_archives_are_byte_identical_whatever_the_order_of_entries(tmp_path: Path) -> None:
    entries = {"ariusmonitor/VERSION": archive.file(b"6.0.14-1\n"),
               "ariusmonitor/utilities/setup.sh": archive.file(b"#!/bin/sh\n", 0o755),
               "ariusmonitor/logs": archive.directory()}
    archive.write_tar_gz(tmp_path / "a.tar.gz", entries)
    archive.write_tar_gz(tmp_path / "b.tar.gz", dict(reversed(list(entries.items()))))
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        infos = tar.getmembers()
    assert [i.name for i in infos] == ["ariusmonitor", "ariusmonitor/VERSION", "ariusmonitor/logs",
                                       "ariusmonitor/utilities", "ariusmonitor/utilities/setup.sh"]
    assert {(i.uid, i.gid, i.mtime) for i in infos} == {(0, 0, archive.DEFAULT_MTIME)}
    assert [oct(i.mode) for i in infos if i.isdir()] == ["0o755"] * 3


@pytest.mark.parametrize("name", ["/etc/passwd", "../x", "ariusmonitor/../../etc", "a//b", ""])
def test_archive_refuses_unsafe_member_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="plain relative path"):
        archive.write_tar_gz(tmp_path / "x.tar.gz", {name: archive.file(b"x")})
    assert not (tmp_path / "x.tar.gz").exists()


@pytest.mark.parametrize(("debian", "upstream"), [("1:6.0.14+dfsg-1+b1", "6.0.14"), ("7.0.22-1", "7.0.22"),
                                                  ("1:6.0.40~rc1-2", "6.0.40")])
def test_bundle_version_is_the_agents_upstream_version(debian: str, upstream: str) -> None:
    assert upstream_version(debian) == upstream
