"""The supported personas carry what an endpoint agent needs: applets, /proc, devices, a user
database the real shadow tools edit, the distro's init layout, and an agent port of their own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from devtools.fleet import AGENT_APPLETS, PERSONAS, Fleet

from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.hosts import HostFilter
from flageemonitor.proxy.inventory import open_inventory
from tests.fixtures.sshd import run_on

pytestmark = pytest.mark.slow

SUPPORTED = {"ubuntu2204": "FLEET-LOJA001-PDV201", "ubuntu1404_i686": "FLEET-LOJA001-PDV202",
             "mint21": "FLEET-LOJA001-PDV203", "slackware1337": "FLEET-LOJA001-PDV204"}
SYSV = ("ubuntu2204", "ubuntu1404_i686", "mint21")


def tree(root: Path) -> set[str]:
    """Every path under an endpoint's / (as the machine sees it), minus the command log."""
    return {str(p.relative_to(root)) for p in root.rglob("*")} - {"var/log/commands"}


@pytest.mark.parametrize("persona", sorted(SUPPORTED))
def test_persona_has_proc_devices_and_the_applets_agent_scripts_use(persona_fleet: Fleet, tmp_path: Path,
                                                                    persona: str) -> None:
    applets = " ".join(AGENT_APPLETS)
    probe, missing, devices, ps = run_on(persona_fleet, SUPPORTED[persona], [
        "read -r pid rest < /proc/self/stat && echo $pid && test -r /proc/net/tcp && test -r /proc/1/cmdline",
        f"for a in {applets}; do command -v $a >/dev/null || echo $a; done",
        "for d in null zero random urandom; do test -c /dev/$d || echo $d; done; echo x > /dev/null && echo ok",
        "ps -o pid,args",
    ], tmp_path / "known_hosts")
    assert probe.ok and probe.stdout.strip().isdigit(), probe
    assert missing.stdout.split() == []
    assert devices.stdout.split() == ["ok"]
    assert "ps -o pid,args" in ps.stdout  # busybox ps reads the persona's /proc
    # the /proc mount lives in the persona sshd's namespace only: the machine sees an empty directory
    assert list((persona_fleet.chroot(persona) / "proc").iterdir()) == []


@pytest.mark.parametrize("persona", sorted(SUPPORTED))
def test_shadow_tools_edit_the_user_database_in_place(persona_fleet: Fleet, tmp_path: Path, persona: str) -> None:
    root = persona_fleet.chroot(persona)
    before = tree(root)
    passwd_before = (root / "etc/passwd").read_text()
    add, listed = run_on(persona_fleet, SUPPORTED[persona], [
        "groupadd -r fmprobe && useradd -r -M -d /nonexistent -s /bin/false -g fmprobe fmprobe",
        "id fmprobe",
    ], tmp_path / "known_hosts")
    assert add.ok, add.stderr
    assert "(fmprobe)" in listed.stdout
    assert (root / "etc/passwd").read_text().count("fmprobe:") == 1
    assert "fmprobe:" in (root / "etc/shadow").read_text() and "fmprobe:" in (root / "etc/group").read_text()
    assert tree(root) == before  # the tables change in place; backups and lock file already existed
    (deleted,) = run_on(persona_fleet, SUPPORTED[persona], ["userdel fmprobe; getent=$(grep -c fmprobe /etc/group)"
                                                             "; echo $getent"], tmp_path / "known_hosts")
    assert deleted.stdout.split()[-1] == "0"  # userdel removed the user's own group too
    assert (root / "etc/passwd").read_text() == passwd_before
    assert tree(root) == before


def test_init_layouts_are_the_real_distros(persona_fleet: Fleet, tmp_path: Path) -> None:
    script = ("printf '#!/bin/sh\\n### BEGIN INIT INFO\\n# Provides: fmprobe\\n# Default-Start: 2 3 4 5\\n"
              "# Default-Stop: 0 1 6\\n### END INIT INFO\\n' > /etc/init.d/fmprobe && chmod 755 /etc/init.d/fmprobe"
              " && update-rc.d fmprobe defaults && ls /etc/rc2.d /etc/rc6.d")
    for persona in SYSV:
        root = persona_fleet.chroot(persona)
        assert (root / "etc/sudoers.d").is_dir() and (root / "etc/cron.d").is_dir()
        assert not (root / "run/systemd/system").exists()  # no systemd runs in a persona
        (enabled, removed) = run_on(persona_fleet, SUPPORTED[persona], [
            script, "update-rc.d -f fmprobe remove && rm /etc/init.d/fmprobe && ls /etc/rc2.d /etc/rc6.d"],
            tmp_path / f"known_hosts-{persona}")
        assert enabled.ok, enabled.stderr  # Debian's own update-rc.d (Perl) made the links
        assert "S01fmprobe" in enabled.stdout and "K01fmprobe" in enabled.stdout
        assert removed.ok and "fmprobe" not in removed.stdout
    slackware = persona_fleet.chroot("slackware1337")
    assert os.access(slackware / "etc/rc.d/rc.local", os.X_OK)
    for absent in ("etc/init.d", "etc/sudoers.d", "etc/cron.d", "usr/sbin/update-rc.d"):
        assert not (slackware / absent).exists(), absent
    (which,) = run_on(persona_fleet, SUPPORTED["slackware1337"], ["command -v useradd; command -v groupdel"],
                      tmp_path / "known_hosts")
    assert which.stdout.split() == ["/usr/sbin/useradd", "/usr/sbin/groupdel"]


def test_personas_keep_the_loader_paths_empty(persona_fleet: Fleet) -> None:
    """The shadow tools bring their own loader: an agent bundle cannot lean on a system libc."""
    for persona in SUPPORTED:
        root = persona_fleet.chroot(persona)
        for loader in ("lib64/ld-linux-x86-64.so.2", "lib/ld-linux.so.2", "lib/x86_64-linux-gnu"):
            assert not (root / loader).exists(), (persona, loader)


def test_each_persona_has_its_own_agent_port_in_the_inventory(persona_fleet: Fleet) -> None:
    hosts = {h.name: h for h in open_inventory(BotConfig(PARAM_REDE="FLEET"), persona_fleet.inventory_path)
             .select(HostFilter(rede="FLEET"))}
    listening = [p for p in PERSONAS if p.listening and not p.same_endpoint_as]
    ports = [hosts[p.host].agent_port for p in listening]
    assert len(set(ports)) == len(listening)
    assert all(1024 < port < 65536 and port != 10050 for port in ports)
    for persona in listening:
        assert hosts[persona.host].agent_port == persona_fleet.endpoint(persona.host).agent_port
    twin = hosts["FLEET-LOJA002-PDV201"]  # another name for the Ubuntu 22.04 endpoint: the same agent
    assert twin.agent_port == hosts["FLEET-LOJA001-PDV201"].agent_port
