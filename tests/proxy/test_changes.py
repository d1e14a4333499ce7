"""The change model's primitives, their shell run for real by busybox (fast suite): probe,
atomic put with checksum and kept version, removal, unpacking, rollback and commit, service
commands, process and port verification."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import socket
import subprocess
import tarfile
from pathlib import Path

import pytest

from flageemonitor.core.errors import ActionFailed
from flageemonitor.core.hosts import Host
from flageemonitor.proxy.actions.base import ActionContext, RemoteSession
from flageemonitor.proxy.changes import (
    ApplyContext,
    ChangeAction,
    FileState,
    InitKind,
    Plan,
    Probe,
    ProbeResult,
    PutFile,
    RemovePath,
    RunCommand,
    Service,
    Skip,
    UnpackArchive,
    commit,
    kept_path,
    parse_process,
    process_probe,
    rollback,
    unified_diff,
)
from flageemonitor.proxy.changes.probe import MAX_CONTENT, parse_probe_output
from flageemonitor.proxy.changes.verify import listeners_command, listening_ports
from tests.fixtures.local_shell import LocalShell


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree(root: Path) -> dict[str, tuple[str, int]]:
    """Relative path -> (sha256 or link target or 'dir', mode) for everything under root."""
    out: dict[str, tuple[str, int]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = ("-> " + os.readlink(path), 0)
        elif path.is_dir():
            out[rel] = ("dir", st.st_mode & 0o7777)
        else:
            out[rel] = (sha(path.read_bytes()), st.st_mode & 0o7777)
    return out


def test_probe_reads_files_links_contents_and_commands_in_one_round_trip(shell: LocalShell) -> None:
    root = shell.root
    (root / "conf").write_text("Server=10.0.0.1\nno newline at end")
    (root / "bin").write_bytes(b"\x7fELF\xff\xfe binary")
    (root / "bin").chmod(0o750)
    (root / "link").symlink_to("conf")
    (root / "dir").mkdir()
    (root / "tricky").write_text("@@fake:end\n@@x:file:/etc/shadow\n")
    probe = Probe().file(str(root / "conf"), content=True).file(str(root / "bin"), content=True)
    probe.file(str(root / "link")).file(str(root / "dir")).file(str(root / "absent"), content=True)
    probe.file(str(root / "tricky"), content=True)
    probe.command("arch", "echo x86_64").command("fails", "echo oops; exit 3")
    result = asyncio.run(probe.run(shell))
    assert len(shell.commands) == 1
    conf = result.file(str(root / "conf"))
    assert conf.kind == "file" and conf.content == "Server=10.0.0.1\nno newline at end"
    assert conf.sha256 == sha((root / "conf").read_bytes()) and conf.size == 33 and conf.mode == 0o644
    binary = result.file(str(root / "bin"))
    assert binary.mode == 0o750 and binary.content is None and binary.sha256 == sha((root / "bin").read_bytes())
    link = result.file(str(root / "link"))
    assert link.kind == "link" and link.target == "conf" and link.sha256 == conf.sha256
    assert result.file(str(root / "dir")).kind == "dir"
    assert not result.file(str(root / "absent")).exists and result.file(str(root / "absent")).short() == "absent"
    assert result.file(str(root / "tricky")).content == "@@fake:end\n@@x:file:/etc/shadow\n"
    assert result.outputs["arch"].stdout.strip() == "x86_64" and result.outputs["arch"].ok
    assert result.outputs["fails"].exit_status == 3 and "oops" in result.outputs["fails"].stdout


def test_probe_quotes_hostile_paths(shell: LocalShell, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = str(shell.root / f"x'; touch {marker}; echo '$(touch {marker})")
    result = asyncio.run(Probe().file(hostile, content=True).run(shell))
    assert not marker.exists() and not result.file(hostile).exists
    with pytest.raises(ValueError):
        Probe().file("relative/path")
    with pytest.raises(ValueError):
        Probe().command("bad name; rm", "true")


def test_probe_reads_every_path_with_one_stat_and_one_checksum_process(shell: LocalShell) -> None:
    """Odd names (a pipe, a backslash, spaces), links to a file and to a directory, a FIFO (never
    read: it would block) and a file larger than the content limit, read in one command whose
    process count does not grow with the number of paths."""
    root = shell.root
    odd = root / "a|b\\c d.conf"
    odd.write_text("x=1\n")
    (root / "dir").mkdir()
    (root / "to-dir").symlink_to("dir")
    (root / "to-odd").symlink_to(odd.name)
    os.mkfifo(root / "fifo")
    big = root / "big"
    big.write_bytes(b"y" * (MAX_CONTENT + 10))
    paths = [odd, root / "dir", root / "to-dir", root / "to-odd", root / "fifo", big, root / "absent"]
    probe = Probe()
    for path in paths:
        probe.file(str(path), content=True)
    script = probe.script("n0")
    assert script.count("sha256sum") == 1 and script.count("stat -c") == 1
    result = asyncio.run(probe.run(shell, timeout=20))
    state = {path.name: result.file(str(path)) for path in paths}
    assert state[odd.name].content == "x=1\n" and state[odd.name].sha256 == sha(b"x=1\n")
    assert state[odd.name].size == 4 and state[odd.name].kind == "file"
    assert state["to-odd"].kind == "link" and state["to-odd"].target == odd.name
    assert state["to-odd"].sha256 == sha(b"x=1\n") and state["to-odd"].size == 4
    assert state["to-odd"].content == "x=1\n"
    assert state["dir"].kind == "dir" and state["dir"].sha256 is None
    assert state["to-dir"].kind == "link" and state["to-dir"].target == "dir" and state["to-dir"].sha256 is None
    assert state["fifo"].kind == "other" and state["fifo"].sha256 is None and state["fifo"].content is None
    assert state["big"].sha256 == sha(big.read_bytes()) and state["big"].size == MAX_CONTENT + 10
    assert state["big"].content is None
    assert not state["absent"].exists


def test_gnu_escaped_checksum_lines_name_the_right_path() -> None:
    """GNU sha256sum marks a line with a backslash and escapes the name when it holds one."""
    nonce, digest = "n0", "a" * 64
    text = (f"@@{nonce}:stat\nregular file|644|0|0|root|root|1|/a\\b\n@@{nonce}:sha\n\\{digest}  /a\\\\b\n"
            f"@@{nonce}:end\n")
    assert parse_probe_output(text, nonce, ["/a\\b"]).file("/a\\b").sha256 == digest


def test_content_with_a_wrong_checksum_is_not_trusted() -> None:
    nonce = "n0"
    text = (f"@@{nonce}:stat\nregular file|644|0|0|root|root|3|/f\n@@{nonce}:sha\n{'0' * 64}  /f\n"
            f"@@{nonce}:content:0\nabc\n@@{nonce}:endcontent\n@@{nonce}:end\n")
    state = parse_probe_output(text, nonce, ["/f"]).file("/f")
    assert state.exists and state.content is None


def test_put_file_lands_atomically_keeps_the_old_version_until_commit(shell: LocalShell) -> None:
    target = shell.root / "agent.conf"
    target.write_text("old\n")
    before = asyncio.run(Probe().file(str(target), content=True).run(shell)).file(str(target))
    change = PutFile(str(target), b"new\n", before, mode=0o600, text=True)
    old_sha, new_sha = sha(b"old\n")[:12], sha(b"new\n")[:12]
    assert change.summary() == f"update {target}: {old_sha} -> {new_sha}"
    assert "-old\n+new\n" in (change.to_dict()["diff"] or "")
    ctx = ApplyContext(shell, sudo=False, timeout=10)
    asyncio.run(change.apply(ctx))
    assert target.read_text() == "new\n" and target.stat().st_mode & 0o777 == 0o600
    assert Path(kept_path(str(target))).read_text() == "old\n"
    asyncio.run(commit([change], ctx))
    assert not Path(kept_path(str(target))).exists()
    assert sorted(p.name for p in shell.root.iterdir()) == ["agent.conf"]  # no temporary file left


def test_rollback_restores_replaced_created_and_removed_paths_byte_for_byte(shell: LocalShell) -> None:
    root = shell.root
    (root / "keep.conf").write_text("a\n")
    (root / "gone").mkdir()
    (root / "gone" / "file").write_text("inside\n")
    snapshot = tree(root)
    states = asyncio.run(Probe().file(str(root / "keep.conf")).file(str(root / "new.bin"))
                         .file(str(root / "gone")).run(shell))
    changes = [
        PutFile(str(root / "keep.conf"), b"b\n", states.file(str(root / "keep.conf"))),
        PutFile(str(root / "new.bin"), b"\x00new", states.file(str(root / "new.bin")), mode=0o755),
        RemovePath(str(root / "gone"), states.file(str(root / "gone"))),
    ]
    ctx = ApplyContext(shell, sudo=False, timeout=10)
    for change in changes:
        asyncio.run(change.apply(ctx))
    assert not (root / "gone").exists() and (root / "new.bin").exists()
    assert asyncio.run(rollback(changes, ctx)) == []
    assert tree(root) == snapshot


def test_checksum_mismatch_after_upload_leaves_the_target_untouched(shell: LocalShell) -> None:
    target = shell.root / "f"
    target.write_text("old\n")
    with pytest.raises(ActionFailed, match="checksum mismatch"):
        asyncio.run(shell.put(b"new\n", str(target), sha256="0" * 64, backup=kept_path(str(target))))
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in shell.root.iterdir()) == ["f"]


def _archive(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_unpack_archive_keeps_the_previous_tree_for_rollback(shell: LocalShell) -> None:
    app = shell.root / "app"
    app.mkdir()
    (app / "VERSION").write_text("1\n")
    (app / "local.conf").write_text("mine\n")
    snapshot = tree(shell.root)
    change = UnpackArchive(str(app), _archive({"app/VERSION": b"2\n", "app/bin/run": b"#!/bin/sh\n"}), "app.tar.gz",
                           installed="1")
    ctx = ApplyContext(shell, sudo=False, timeout=10)
    asyncio.run(change.apply(ctx))
    assert (app / "VERSION").read_text() == "2\n" and (app / "local.conf").read_text() == "mine\n"
    assert asyncio.run(rollback([change], ctx)) == []
    assert tree(shell.root) == snapshot


def test_a_failed_command_raises_and_its_undo_comes_from_its_output(shell: LocalShell) -> None:
    made = shell.root / "made"
    cmd = RunCommand(f"touch {made} && echo created: {made}", "run setup",
                     undo=lambda r: " ; ".join(f"rm -f {line.split(': ', 1)[1]}" for line in r.stdout.splitlines()))
    ctx = ApplyContext(shell, sudo=False, timeout=10)
    asyncio.run(cmd.apply(ctx))
    assert made.exists()
    assert asyncio.run(rollback([cmd], ctx)) == [] and not made.exists()
    with pytest.raises(ActionFailed, match=r"run broken failed \(exit 4\): why"):
        asyncio.run(RunCommand("echo why >&2; exit 4", "run broken").apply(ctx))


def test_service_commands_per_init_kind_are_quoted() -> None:
    assert Service.detect("ariusmonitor", "sysv\nslackware\n") == Service("ariusmonitor", InitKind.SYSV)
    assert Service.detect("ariusmonitor", "") is None
    assert Service("x", InitKind.SYSTEMD).command("restart") == "systemctl restart x.service"
    assert Service("x", InitKind.SLACKWARE).command("stop") == "/etc/rc.d/rc.x stop"
    scripts = Service.scripts("agent", "/opt/a b/start.sh", "/opt/a b/stop.sh")
    assert scripts.command("restart") == "sh '/opt/a b/start.sh'" and scripts.command("stop") == "sh '/opt/a b/stop.sh'"
    unit = Service.unit_over_scripts("agent", "/opt/a b/stop.sh")
    assert unit.command("restart") == "systemctl restart agent.service" and unit.label == "agent (systemd)"
    assert unit.command("stop") == "systemctl stop agent.service; sh '/opt/a b/stop.sh'"  # one started beside it too
    assert "journalctl -u agent.service" in (unit.journal_command() or "") and scripts.journal_command() is None
    with pytest.raises(ValueError):
        Service.scripts("x; reboot", "/s", "/t")


def test_process_and_port_verification_reads_proc(shell: LocalShell, tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        pidfile = tmp_path / "me.pid"
        pidfile.write_text(f"{os.getpid()}\n")
        state = parse_process(asyncio.run(shell.run(process_probe(str(pidfile)))).stdout)
        assert state.alive and state.pid == os.getpid() and state.runs("python")
        assert state.listens_on(port)
    dead = tmp_path / "dead.pid"
    dead.write_text("$(touch /tmp/x)\n")
    assert not parse_process(asyncio.run(shell.run(process_probe(str(dead)))).stdout).alive
    proc = subprocess.run(["cat", "/proc/net/tcp"], capture_output=True, text=True, check=True)
    assert all(isinstance(p, int) for p in listening_ports(proc.stdout))


def _listening_lines(port: int | None = None) -> set[str]:
    """The LISTEN lines of both whole tables (on `port`), read as they are."""
    lines: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and (port is None or cols[1].endswith(f":{port:04X}")):
                lines.add(line)
    return lines


@pytest.mark.parametrize("awk", [["gawk"], ["mawk"], ["busybox", "awk"]])
def test_listeners_are_read_up_to_the_end_of_the_listening_section_by_every_awk(awk: list[str]) -> None:
    """Listeners on IPv4 and IPv6 are found whatever follows them in the tables (connections
    established and closing); the table is read no further than its listening section."""
    with socket.socket() as v4, socket.socket(socket.AF_INET6) as v6, socket.socket() as client:
        v4.bind(("127.0.0.1", 0))
        v4.listen()
        v6.bind(("::1", 0))
        v6.listen()
        client.connect(v4.getsockname())
        accepted, _ = v4.accept()
        with accepted:
            ours = (v4.getsockname()[1], v6.getsockname()[1])
            for port in ours:
                command = listeners_command(port).replace("awk", " ".join(awk), 1)
                out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
                assert set(out.splitlines()) == _listening_lines(port), (awk, port)
                assert set(listening_ports(out)) == {port}
            # without a port: every listener, ours among them (other processes on this machine
            # open and close theirs meanwhile, so the two reads are not compared whole)
            out = subprocess.run(["sh", "-c", listeners_command().replace("awk", " ".join(awk), 1)],
                                 capture_output=True, text=True, check=True).stdout
            assert all(line.split()[3] == "0A" for line in out.splitlines()), out
            assert set(ours) <= set(listening_ports(out))
    # the command stops at the first socket past the listening section: a listening line of
    # the same table placed after an established one is never read
    fake = "  sl  local_address rem_address   st\n" \
        "   0: 0100007F:0016 00000000:0000 0A 0 0 0 0 0 0 0 11\n" \
        "   1: 0100007F:1F90 0100007F:C350 03 0 0 0 0 0 0 0 12\n" \
        "   2: 0100007F:C350 0100007F:1F90 01 0 0 0 0 0 0 0 13\n" \
        "   3: 0100007F:0050 00000000:0000 0A 0 0 0 0 0 0 0 14\n"
    command = listeners_command().replace("awk", " ".join(awk), 1).replace("/proc/net/tcp 2>", "- 2>")
    out = subprocess.run(["sh", "-c", command], input=fake, capture_output=True, text=True, check=True).stdout
    assert [line.split()[1] for line in out.splitlines() if line.split()[1].startswith("0100007F")] == ["0100007F:0016"]


def test_unified_diff_is_bounded() -> None:
    old = "".join(f"{i}\n" for i in range(1000))
    diff = unified_diff(old, "", "/f")
    assert diff.count("\n") <= 201 and "more diff lines" in diff
    assert FileState("/f").short() == "absent"


# ---- the ChangeAction base class
class EnsureFile(ChangeAction[bytes, ProbeResult]):
    """Wants `want` at ctx.args['path']; verification fails when ctx.args['break'] is set."""

    name = "test_ensure_file"

    def desired(self, host: Host, ctx: ActionContext) -> bytes | Skip:
        if host.endpoint_type == "CONCENTRADOR":
            return Skip("concentrator")
        want = str(ctx.args["want"])
        if "\n" in want:
            raise ActionFailed("refused: a newline in the wanted value")
        return want.encode() + b"\n"

    async def probe(self, session: RemoteSession, host: Host, ctx: ActionContext, desired: bytes) -> ProbeResult:
        return await Probe().file(ctx.args["path"], content=True).run(session)

    def changes(self, desired: bytes, state: ProbeResult, ctx: ActionContext) -> Plan | Skip:
        old = state.file(ctx.args["path"])
        if old.sha256 == sha(desired):
            return Plan([])
        return Plan([PutFile(ctx.args["path"], desired, old, text=True)])

    async def verify(self, apply: ApplyContext, desired: bytes, state: ProbeResult, plan: Plan) -> str | None:
        return "verification failed on purpose" if apply.timeout == 9 else None


def _ctx(path: Path, want: str, *, dry_run: bool = False, broken: bool = False) -> ActionContext:
    from flageemonitor.core.config_model import validate_config

    return ActionContext(config=validate_config({"PARAM_REDE": "R"}), dry_run=dry_run,
                         args={"path": str(path), "want": want}, command_timeout=9 if broken else 10)


def test_change_action_plans_applies_is_idempotent_and_rolls_back(shell: LocalShell) -> None:
    target = shell.root / "setting"
    target.write_text("old\n")
    host = Host.build("R-LOJA001-PDV201", "127.0.0.2")
    action = EnsureFile()

    planned = asyncio.run(action.run(shell, host, _ctx(target, "new", dry_run=True)))
    assert planned.planned and planned.changed and planned.changes[0]["diff"].endswith("-old\n+new\n")
    assert target.read_text() == "old\n" and len(shell.commands) == 1  # the probe only

    shell.commands.clear()
    failed = asyncio.run(action.run(shell, host, _ctx(target, "new", broken=True)))
    assert not failed.ok and failed.detail == "verification failed on purpose; rolled back" and not failed.changed
    assert target.read_text() == "old\n" and sorted(p.name for p in shell.root.iterdir()) == ["setting"]

    done = asyncio.run(action.run(shell, host, _ctx(target, "new")))
    assert done.ok and done.changed and target.read_text() == "new\n"
    shell.commands.clear()
    again = asyncio.run(action.run(shell, host, _ctx(target, "new")))
    assert again.ok and not again.changed and again.detail == "unchanged" and len(shell.commands) == 1

    skipped = asyncio.run(action.run(shell, Host.build("R-LOJA001-CONCENTRADOR", "127.0.0.3"), _ctx(target, "x")))
    assert skipped.skipped and skipped.detail == "concentrator"
    shell.commands.clear()
    with pytest.raises(ActionFailed, match="newline"):
        asyncio.run(action.run(shell, host, _ctx(target, "a\nb")))
    assert shell.commands == []  # refused before any command was built


def test_protected_files_of_a_command_are_restored_exactly_on_rollback(shell: LocalShell) -> None:
    passwd, made = shell.root / "passwd", shell.root / "made.conf"
    passwd.write_text("root:x:0:0::/root:/bin/sh\n")
    snapshot = tree(shell.root)
    cmd = RunCommand(f"echo 'svc:x:9:9::/:/bin/false' >> {passwd} && echo new > {made}", "run setup",
                     protect=(str(passwd), str(made)))
    ctx = ApplyContext(shell, sudo=False, timeout=10)
    asyncio.run(cmd.apply(ctx))
    assert "svc:" in passwd.read_text() and made.exists()
    assert asyncio.run(rollback([cmd], ctx)) == []
    assert tree(shell.root) == snapshot
    asyncio.run(cmd.apply(ctx))
    asyncio.run(commit([cmd], ctx))
    assert sorted(p.name for p in shell.root.iterdir()) == ["made.conf", "passwd"]
