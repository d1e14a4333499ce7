"""kwnfce.conf and CliSiTef.ini on real endpoints: every supported persona and sudo users.

Content, owner root, mode 0644, /posnet created when missing; a previous content that differs
is kept as a dated backup (the last PARAM_POSNET_BACKUP_KEEP); the endpoint's own PinPad port
and message carried over byte for byte (Latin-1, '=' and blanks in the value); plan changes
nothing; a rerun is unchanged; a missing template fails the run before any host."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from devtools.fleet import Fleet

from tests.agent.conftest import diff
from tests.fixtures.sshd import FleetRun
from tests.settings.conftest import PERSONAS, SettingsCli, Target, hostile_marker, mutating

pytestmark = [pytest.mark.slow, pytest.mark.settings]

BACKUP = re.compile(r"(kwnfce|CliSiTef)-bkp-(\d{8}-\d{6})(?:-(\d+))?\.(conf|ini)")


def _taken(path: Path) -> tuple[str, int]:
    """When a backup was taken: its stamp, then its number within that second (none: 1)."""
    m = BACKUP.fullmatch(path.name)
    assert m is not None
    return m.group(2), int(m.group(3) or 1)


def backups(target: Target, stem: str) -> list[Path]:
    """The dated backups, oldest first (`-bkp-<stamp>-2.ini` was taken after `-bkp-<stamp>.ini`)."""
    posnet = target.root / "posnet"
    return sorted((p for p in posnet.iterdir() if BACKUP.fullmatch(p.name) and p.name.startswith(stem)), key=_taken)


def owned_by_root_0644(path: Path) -> bool:
    st = path.stat()
    return (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 0, 0o644)


def test_kwnfce_created_rerun_backed_up_and_fixed(target: Target, cli: SettingsCli) -> None:
    target.reset_posnet()
    conf = target.root / "posnet" / "kwnfce.conf"
    before = target.tree()
    planned = cli.host("plan", "pdv_update_kwnfce")
    assert planned["status"] == "planned" and [c["kind"] for c in planned["changes"]] == ["make_dir", "put_file"]
    assert diff(before, target.tree()) == {}

    done = cli.host("run", "update_endpoint_kwnfce")
    assert done["status"] == "changed", done["detail"]
    assert conf.read_bytes() == b"HORA_Z=0\n" and owned_by_root_0644(conf)
    assert (target.root / "posnet").stat().st_mode & 0o777 == 0o755

    target.clear()
    again = cli.host("run", "update_host_kwnfce")
    assert again["status"] == "ok" and again["detail"].startswith("unchanged")
    if target.logs_commands:
        assert mutating(target.commands()) == []

    conf.write_bytes(b"HORA_Z=3\n")  # someone changed it, as another user, another mode
    conf.chmod(0o600)
    os.chown(conf, 1000, 1000)
    fixed = cli.host("run", "pdv_update_kwnfce")
    assert fixed["status"] == "changed" and [c["kind"] for c in fixed["changes"]] == ["backup", "put_file"]
    assert conf.read_bytes() == b"HORA_Z=0\n" and owned_by_root_0644(conf)
    [kept] = backups(target, "kwnfce")
    assert kept.read_bytes() == b"HORA_Z=3\n" and kept.stat().st_uid == 1000  # the previous file as it was

    conf.chmod(0o600)  # same content, wrong mode: fixed without a backup
    chmod = cli.host("run", "pdv_update_kwnfce")
    assert [c["kind"] for c in chmod["changes"]] == ["put_file"] and chmod["changes"][0]["summary"].startswith("chmod")
    assert owned_by_root_0644(conf) and backups(target, "kwnfce") == [kept]


TEMPLATE = (b"[Geral]\r\nVersao=2\r\n[PinPad]\r\nTipo=AUTO\r\nPorta=AUTO_USB\r\nMensagemPadrao=MENSAGEM MODELO\r\n"
            b"[PinPadCompartilhado]\r\n; Porta=comentada\r\nPorta=11\r\nHabilitado=1\r\n")


def endpoint_ini(message: bytes, port: bytes) -> bytes:
    return (b"[PinPad]\nPorta=COM1\nMensagemPadrao=" + message + b"\n[PinPadCompartilhado]\n#Porta=99\nPorta="
            + port + b"\n")


def rendered(message: bytes, port: bytes) -> bytes:
    return (TEMPLATE.replace(b"MensagemPadrao=MENSAGEM MODELO", b"MensagemPadrao=" + message)
            .replace(b"\r\nPorta=11\r\n", b"\r\nPorta=" + port + b"\r\n"))


def test_clisitef_carries_the_endpoint_values_over_and_keeps_the_last_backups(target: Target, cli: SettingsCli,
                                                                              tmp_path: Path) -> None:
    templates = tmp_path / "clisitef"
    templates.mkdir()
    (templates / "CliSiTef.template.ini").write_bytes(TEMPLATE)
    cli.configure(PARAM_CLISITEF_DIR=str(templates), PARAM_POSNET_BACKUP_KEEP=2)
    target.reset_posnet()
    (target.root / "posnet").mkdir()
    ini = target.root / "posnet" / "CliSiTef.ini"
    tricky = b"Bem vindo = 100%  "  # '=' and trailing blanks kept byte for byte
    ini.write_bytes(endpoint_ini(tricky, b"7"))
    before = target.tree()

    planned = cli.host("plan", "pdv_update_clisitef")
    assert planned["status"] == "planned" and [c["kind"] for c in planned["changes"]] == ["backup", "put_file"]
    assert "+MensagemPadrao=Bem vindo = 100%  " in planned["changes"][1]["diff"]
    assert diff(before, target.tree()) == {}

    done = cli.host("run", "update_endpoint_clisitef")
    assert done["status"] == "changed", done["detail"]
    assert ini.read_bytes() == rendered(tricky, b"7") and owned_by_root_0644(ini)
    assert done["data"]["carried"] == {"PinPadCompartilhado.Porta": "7", "PinPad.MensagemPadrao": "Bem vindo = 100%  "}
    assert [b.read_bytes() for b in backups(target, "CliSiTef")] == [endpoint_ini(tricky, b"7")]

    target.clear()
    again = cli.host("run", "update_host_clisitef")
    assert again["status"] == "ok" and again["detail"].startswith("unchanged"), again["detail"]
    if target.logs_commands:
        assert mutating(target.commands()) == []

    marker = hostile_marker()
    m = str(marker).encode()
    hostile = (b"$(touch " + m + b") `touch " + m + b"` '; touch " + m + b"; ' \\", b"1; touch " + m)
    latin1 = b"Ol\xe1, caf\xe9 = sim"  # not UTF-8: carried as the endpoint's bytes
    for message, port in [hostile, (latin1, b"8"), (b"terceira", b"9")]:
        ini.write_bytes(endpoint_ini(message, port))
        changed = cli.host("run", "pdv_update_clisitef")
        assert changed["status"] == "changed", changed["detail"]
        assert ini.read_bytes() == rendered(message, port)  # data, never a command
    assert not marker.exists() and not (target.root / marker.relative_to("/")).exists()
    kept = backups(target, "CliSiTef")
    assert [b.read_bytes() for b in kept] == [endpoint_ini(latin1, b"8"), endpoint_ini(b"terceira", b"9")]


def test_clisitef_without_a_template_fails_before_any_host(fleet_run: FleetRun, persona_fleet: Fleet,
                                                           tmp_path: Path) -> None:
    fleet_run.write_config(PARAM_CLISITEF_DIR=str(tmp_path / "nowhere"))
    result = fleet_run("plan", "pdv_update_clisitef", "--host", "FLEET-LOJA001-PDV20[1-4]")
    assert result.returncode == 4, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"flageemonitor: no CliSiTef template at {tmp_path}/nowhere/CliSiTef.template.ini: put "
        f"CliSiTef.template.ini in {tmp_path}/nowhere (or set PARAM_CLISITEF_DIR to the directory that holds "
        "it); no host was contacted")
    for persona in PERSONAS:
        assert persona_fleet.commands(persona) == []
