"""Changes made from what is on the endpoint (link, copy, directory, dated backup, a command that
ends the session) and the exact-bytes probe, their shell run for real by busybox (fast suite)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest

from flageemonitor.core.errors import ActionFailed, HostUnreachable
from flageemonitor.proxy.actions.base import CommandResult
from flageemonitor.proxy.changes import ApplyContext, FileState, Probe, PutFile, commit, kept_path, rollback
from flageemonitor.proxy.changes.paths import (
    BackupCopy,
    CopyFile,
    EndSession,
    MakeDir,
    PutLink,
    backup_name,
    backup_plan,
    existing_backups,
)
from tests.fixtures.local_shell import LocalShell
from tests.proxy.test_changes import tree


def ctx_for(shell: LocalShell) -> ApplyContext:
    return ApplyContext(shell, sudo=False, timeout=10)


def probe(shell: LocalShell, *paths: Path, data: bool = False) -> dict[str, FileState]:
    p = Probe()
    for path in paths:
        p.file(str(path), data=data)
    result = asyncio.run(p.run(shell))
    return {str(path): result.file(str(path)) for path in paths}


def test_probe_reads_exact_bytes_whatever_the_encoding(shell: LocalShell) -> None:
    latin = shell.root / "latin.ini"
    latin.write_bytes(b"[PinPad]\r\nMensagemPadrao=Ol\xe1 caf\xe9\r\n")
    utf8 = shell.root / "utf8.ini"
    utf8.write_bytes("Olá\n".encode())
    empty = shell.root / "empty"
    empty.write_bytes(b"")
    big = shell.root / "big"
    big.write_bytes(b"x" * (64 * 1024 + 1))
    states = probe(shell, latin, utf8, empty, big, shell.root / "absent", data=True)
    assert states[str(latin)].data == latin.read_bytes() and states[str(latin)].content is None
    assert states[str(utf8)].data == "Olá\n".encode() and states[str(utf8)].content == "Olá\n"
    assert states[str(empty)].data == b"" and states[str(empty)].content == ""
    assert states[str(big)].data is None and states[str(big)].sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
    assert states[str(shell.root / "absent")].data is None
    assert "data" not in states[str(latin)].to_dict()


@pytest.mark.parametrize("before", ["absent", "file", "link"])
def test_put_link_replaces_atomically_and_rolls_back_exactly(shell: LocalShell, before: str) -> None:
    root = shell.root
    (root / "zones").mkdir()
    (root / "zones" / "UTC").write_bytes(b"TZif-utc")
    (root / "zones" / "Sao_Paulo").write_bytes(b"TZif-sp")
    link = root / "localtime"
    if before == "file":
        link.write_bytes(b"TZif-utc")
    elif before == "link":
        link.symlink_to(root / "zones" / "UTC")
    snapshot = tree(root)
    change = PutLink(str(link), probe(shell, link)[str(link)], target=str(root / "zones" / "Sao_Paulo"))
    assert change.summary().startswith(f"link {link} -> {root}/zones/Sao_Paulo (was ")
    ctx = ctx_for(shell)
    asyncio.run(change.apply(ctx))
    assert os.readlink(link) == str(root / "zones" / "Sao_Paulo") and link.read_bytes() == b"TZif-sp"
    assert asyncio.run(rollback([change], ctx)) == []
    assert tree(root) == snapshot
    asyncio.run(change.apply(ctx))
    asyncio.run(commit([change], ctx))
    assert not os.path.lexists(kept_path(str(link)))
    assert sorted(p.name for p in root.iterdir()) == ["localtime", "zones"]  # no temporary left


def test_put_link_refuses_to_replace_a_directory(shell: LocalShell) -> None:
    (shell.root / "d").mkdir()
    change = PutLink(str(shell.root / "d"), probe(shell, shell.root / "d")[str(shell.root / "d")], target="/x")
    with pytest.raises(ActionFailed, match="is a directory"):
        asyncio.run(change.apply(ctx_for(shell)))


def test_copy_file_checks_the_copy_and_keeps_the_previous_version(shell: LocalShell) -> None:
    src = shell.root / "Sao_Paulo"
    src.write_bytes(b"TZif-sp")
    dst = shell.root / "localtime"
    dst.write_bytes(b"TZif-utc")
    dst.chmod(0o600)
    snapshot = tree(shell.root)
    old = probe(shell, dst)[str(dst)]
    good = CopyFile(str(dst), old, source=str(src), sha256=hashlib.sha256(b"TZif-sp").hexdigest())
    ctx = ctx_for(shell)
    asyncio.run(good.apply(ctx))
    assert dst.read_bytes() == b"TZif-sp" and dst.stat().st_mode & 0o777 == 0o644
    assert asyncio.run(rollback([good], ctx)) == [] and tree(shell.root) == snapshot
    stale = CopyFile(str(dst), old, source=str(src), sha256="0" * 64)
    with pytest.raises(ActionFailed, match="changed while copying"):
        asyncio.run(stale.apply(ctx))
    assert tree(shell.root) == snapshot  # nothing replaced, no temporary left


def test_make_dir_is_removed_on_rollback(shell: LocalShell) -> None:
    posnet = shell.root / "posnet"
    change = MakeDir(str(posnet))
    ctx = ctx_for(shell)
    asyncio.run(change.apply(ctx))
    assert posnet.is_dir() and posnet.stat().st_mode & 0o777 == 0o755
    assert asyncio.run(rollback([change], ctx)) == [] and not posnet.exists()


WHEN = datetime(2026, 3, 10, 23, 30, 0)


def test_backup_names_and_the_last_n_kept() -> None:
    assert backup_name("/posnet/CliSiTef.ini", WHEN) == "/posnet/CliSiTef-bkp-20260310-233000.ini"
    assert backup_name("/posnet/kwnfce.conf", WHEN, 2) == "/posnet/kwnfce-bkp-20260310-233000-2.conf"
    assert backup_name("/etc/noext", WHEN) == "/etc/noext-bkp-20260310-233000"
    names = ["CliSiTef.ini", "CliSiTef-bkp.ini", "CliSiTef-bkp-20260101-000000.ini", "other-bkp-20260101-000000.ini",
             "CliSiTef-bkp-20250101-000000.ini", "CliSiTef-bkp-20260310-233000.ini", "CliSiTef-bkp-x.ini"]
    assert existing_backups("/posnet/CliSiTef.ini", names) == [
        "/posnet/CliSiTef-bkp-20250101-000000.ini", "/posnet/CliSiTef-bkp-20260101-000000.ini",
        "/posnet/CliSiTef-bkp-20260310-233000.ini"]
    new, prune = backup_plan("/posnet/CliSiTef.ini", names, WHEN, keep=2)
    assert new == "/posnet/CliSiTef-bkp-20260310-233000-2.ini"  # same second as an existing one
    assert prune == ["/posnet/CliSiTef-bkp-20250101-000000.ini", "/posnet/CliSiTef-bkp-20260101-000000.ini"]
    assert backup_plan("/posnet/CliSiTef.ini", names, WHEN, keep=5)[1] == []
    with pytest.raises(ValueError):
        backup_plan("/posnet/CliSiTef.ini", names, WHEN, keep=0)


def test_backup_copy_prunes_only_after_commit(shell: LocalShell) -> None:
    conf = shell.root / "CliSiTef.ini"
    conf.write_text("current\n")
    old_backup = shell.root / "CliSiTef-bkp-20250101-000000.ini"
    old_backup.write_text("ancient\n")
    snapshot = tree(shell.root)
    new, prune = backup_plan(str(conf), os.listdir(shell.root), WHEN, keep=1)
    change = BackupCopy(str(conf), new, prune)
    ctx = ctx_for(shell)
    asyncio.run(change.apply(ctx))
    assert Path(new).read_text() == "current\n" and old_backup.exists()
    assert asyncio.run(rollback([change], ctx)) == [] and tree(shell.root) == snapshot
    asyncio.run(change.apply(ctx))
    asyncio.run(commit([change], ctx))
    assert sorted(p.name for p in shell.root.iterdir()) == ["CliSiTef-bkp-20260310-233000.ini", "CliSiTef.ini"]


def test_end_session_returns_at_once_and_the_command_runs_detached(shell: LocalShell) -> None:
    record = shell.root / "calls"
    script = shell.root / "fake-shutdown"
    script.write_text(f"#!/usr/bin/busybox sh\necho \"$*\" >> {record}\n")
    script.chmod(0o755)
    change = EndSession([str(script), "-h", "now"], "power off now")
    started = time.monotonic()
    asyncio.run(change.apply(ctx_for(shell)))
    assert time.monotonic() - started < 5  # the command's own 1 s delay runs after it returned
    deadline = time.monotonic() + 10
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert record.read_text() == "-h now\n"
    assert change.undo_script() is None and change.to_dict()["command"] == f"{script} -h now"


class _Dropping:
    """A session whose connection drops under the command (the endpoint powered off at once)."""

    user = "root"
    is_root = True

    async def run(self, command: str | Sequence[str], **kw: object) -> CommandResult:
        raise HostUnreachable("connection lost during a command")

    async def put(self, *a: object, **kw: object) -> None:
        raise AssertionError("no upload expected")


def test_end_session_counts_a_dropped_connection_as_sent() -> None:
    asyncio.run(EndSession(["/sbin/shutdown", "-h", "now"], "power off").apply(
        ApplyContext(_Dropping(), sudo=False, timeout=5)))  # type: ignore[arg-type]


def test_a_replacement_that_failed_before_replacing_rolls_back_without_errors(shell: LocalShell) -> None:
    snapshot = tree(shell.root)
    ctx = ctx_for(shell)
    existed = FileState("f", kind="file", sha256="0" * 64)  # probed as present; its directory is gone since
    upload = PutFile(str(shell.root / "gone" / "timezone"), b"America/Sao_Paulo\n", existed)
    with pytest.raises(OSError):
        asyncio.run(upload.apply(ctx))
    link = PutLink(str(shell.root / "gone" / "localtime"), existed, target="/usr/share/zoneinfo/UTC")
    with pytest.raises(ActionFailed):
        asyncio.run(link.apply(ctx))
    assert asyncio.run(rollback([upload, link], ctx)) == []  # nothing was kept: nothing to restore, no error
    assert tree(shell.root) == snapshot
