"""A loopback fleet of real sshd endpoints with personas, for tests, benchmarks and the demo.

    python -m devtools.fleet up            # persona fleet; prints paths and a run command
    python -m devtools.fleet sudo          # one endpoint with non-root users and real sudo (private root)
    python -m devtools.fleet bench 500     # 500 endpoints (10% dead) for benchmarks
    python -m devtools.fleet down DIR      # stop a fleet started by `up`/`sudo`/`bench`

How a persona is made (root, no systemd; OpenSSH 9.2 and busybox-static from Debian):

- one sshd per persona (`sshd -D`, PIDs recorded, stopped by those PIDs and their descendants),
  listening on its own 127.x.y.z address and a random free port;
- `ChrootDirectory` to a tree under /run (sshd refuses chroot paths with a component writable by
  others, so /tmp is out) holding busybox-static, /dev/null and the release files of the persona
  (`/etc/os-release`, or only `/etc/slackware-version`); root's login shell inside the tree is a
  two-line script that execs busybox `sh`;
- what an endpoint agent needs, on the four supported personas: the busybox applets its scripts
  use, `/proc` (mounted in the persona sshd's private mount namespace, so sessions and the
  processes they start see it and the machine sees nothing), `/dev/{null,zero,random,urandom}`,
  editable `/etc/passwd`, `/etc/group`, `/etc/shadow`, `/etc/gshadow` (with the backups and lock
  file a real system already has), the distro's init layout (Ubuntu / Mint: `/etc/init.d`,
  `/etc/rc?.d`, `/etc/sudoers.d`, `/etc/cron.d`, Debian's real `update-rc.d`; Slackware:
  `/etc/rc.d/rc.local`, no `/etc/init.d`) and the real shadow tools (`useradd`, `groupadd`,
  `userdel`, `groupdel`). Those tools (and the Perl that runs `update-rc.d`) are this machine's
  own binaries with their libraries and loader under `/usr/lib/fleet-tools`, started by
  two-line launchers: the persona's `/lib*` stays empty, so whatever the agent bundle needs it
  must bring (as on an endpoint whose glibc is too old);
- each persona has its own agent port (the inventory's `agent_port`), since the personas share
  the machine's network namespace and an agent binds every address;
- a 32-bit endpoint: root's login shell runs busybox `sh` under `linux32` (uname -m prints
  i686), so commands are 32-bit while SFTP (sshd's internal-sftp, no shell) still works;
  Slackware 13: sshd restricted to SHA-1/CBC-era algorithms and an RSA host key; a hanging
  endpoint answers the facts probe and never finishes any other command; a broken one answers
  the facts probe and fails (exit 1) every other command;
- password auth for root without touching the machine's /etc/shadow: with `UsePAM no` sshd
  checks the password with getspnam(), so each persona's sshd runs in its own mount namespace
  (`unshare --mount`) where a one-line shadow file holding the persona's hash is bind-mounted
  over /etc/shadow. The real file is never written; the bind mount vanishes with the process.
  The "wrong password" persona gets the hash of a different password than the inventory gives.
  One persona uses key auth (AuthorizedKeysFile in the fleet directory).

The benchmark fleet uses key auth only, one sshd per 16 addresses, `MaxStartups 4000`,
`MaxSessions 200`, a shared busybox chroot (no heavy remote home), and a share of dead hosts:
nothing listening (refused), blackholed (a listener whose accept queue is full, so SYNs are
dropped) and silent (accepts TCP, never speaks SSH), the last two served by a helper process.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

SSHD = "/usr/sbin/sshd"
BUSYBOX = "/usr/bin/busybox"
REDE = "FLEET"
PASSWORD = "fleet-Pass-1"
OTHER_PASSWORD = "not-the-inventory-one"
APPLETS = ("sh", "echo", "cat", "uname", "id", "sleep", "true", "false", "ls", "mktemp", "cp", "mv",
           "rm", "chmod", "which", "linux32", "env", "printf", "test", "[")
# what the agent's scripts and the agent actions use on a real endpoint (busybox-static has no
# pgrep/pkill and no adduser/addgroup: the shadow tools below stand for those)
AGENT_APPLETS = ("tar", "gzip", "gunzip", "zcat", "sha256sum", "md5sum", "readlink", "realpath", "ln", "mkdir",
                 "rmdir", "chown", "chgrp", "grep", "egrep", "sed", "awk", "kill", "ps", "pidof", "head", "tail",
                 "cut", "tr", "wc", "date", "stat", "find", "touch", "basename", "dirname", "sort", "uniq",
                 "xargs", "tee", "cmp", "diff", "od", "expr", "seq", "timeout", "setsid", "hostname", "sync",
                 "whoami", "groups")
SHADOW_TOOLS = ("/usr/sbin/useradd", "/usr/sbin/groupadd", "/usr/sbin/userdel", "/usr/sbin/groupdel")
DEBIAN_TOOLS = (*SHADOW_TOOLS, "/usr/sbin/update-rc.d")
TOOLS_DIR = "usr/lib/fleet-tools"  # inside a persona: the machine's tools, their libraries and loader
PERL_LIB = "/usr/lib/x86_64-linux-gnu/perl-base"  # Debian's perl-base modules (all update-rc.d uses)
DEVICES = {"null": (1, 3), "zero": (1, 5), "random": (1, 8), "urandom": (1, 9)}

LEGACY_SSHD = """KexAlgorithms diffie-hellman-group14-sha1,diffie-hellman-group1-sha1
HostKeyAlgorithms ssh-rsa
PubkeyAcceptedAlgorithms +ssh-rsa
Ciphers aes128-cbc,aes256-cbc,3des-cbc
MACs hmac-sha1
"""

HANG_SCRIPT = """#!/bin/busybox sh
# answers the facts probe, hangs on anything else
case "$SSH_ORIGINAL_COMMAND" in
  *@@flagee:uname*) exec /bin/busybox sh -c "$SSH_ORIGINAL_COMMAND" ;;
esac
exec /bin/busybox sleep 600
"""

FAIL_SCRIPT = """#!/bin/busybox sh
# answers the facts probe, fails anything else (exit 1), as a broken endpoint would
case "$SSH_ORIGINAL_COMMAND" in
  *@@flagee:uname*) exec /bin/busybox sh -c "$SSH_ORIGINAL_COMMAND" ;;
esac
echo "broken test endpoint: command refused" >&2
exit 1
"""
FORCED = {"hang": ("hang-unless-probe", HANG_SCRIPT), "fail": ("fail-unless-probe", FAIL_SCRIPT)}


# A supported endpoint has /sbin/shutdown; a test endpoint must never power anything off.
SHUTDOWN_STUB = """#!/bin/busybox sh
echo "shutdown: test endpoint, not powering off ($*)" >&2
exit 1
"""
WITH_SHUTDOWN = {"sbin/shutdown": SHUTDOWN_STUB}


def _os_release(distro_id: str, version: str, pretty: str) -> dict[str, str]:
    release = f'NAME="{pretty}"\nID={distro_id}\nVERSION_ID="{version}"\nPRETTY_NAME="{pretty}"\n'
    return {"etc/os-release": release}


# Init layouts as the real distros ship them. No systemd runs in a persona (the agent's setup
# takes the sysv path where /etc/init.d exists), but Ubuntu 22.04 / Mint 21 have its directory.
SYSV_DIRS = ("etc/init.d", *(f"etc/rc{level}.d" for level in "0123456S"))
UBUNTU_DIRS = (*SYSV_DIRS, "etc/sudoers.d", "etc/cron.d", "etc/systemd/system")
UPSTART_DIRS = (*SYSV_DIRS, "etc/init", "etc/sudoers.d", "etc/cron.d")
SLACKWARE_DIRS = ("etc/rc.d",)
SLACKWARE_RC_LOCAL = """#!/bin/sh
#
# /etc/rc.d/rc.local:  Local system initialization script.
#
# Put any local startup commands in here.  Also, if you have
# anything that needs to be run at shutdown time you can
# make an /etc/rc.d/rc.local_shutdown script and put those
# commands in there.

"""


@dataclass(frozen=True)
class Persona:
    key: str
    host: str  # technical name in the inventory
    files: dict[str, str] = field(default_factory=dict)
    arch32: bool = False
    legacy_only: bool = False
    hang: bool = False
    fails: bool = False  # answers the facts probe, every other command exits 1
    auth: str = "password"  # password | key
    accepts: str = PASSWORD
    listening: bool = True
    dirs: tuple[str, ...] = ()  # empty directories of the distro's layout (init, sudoers.d, cron.d)
    tools: tuple[str, ...] = ()  # programs of this machine installed at the same path (see TOOLS_DIR)
    provider: str | None = None
    same_endpoint_as: str | None = None  # another inventory name for an existing persona
    # what the pipeline should find (None: not contacted)
    expect_distro: str | None = None
    expect_version: str | None = None
    expect_arch: str | None = None
    expect_level: str | None = None
    expect_status: str = "ok"


PERSONAS: tuple[Persona, ...] = (
    Persona("ubuntu2204", "FLEET-LOJA001-PDV201",
            {**_os_release("ubuntu", "22.04", "Ubuntu 22.04.4 LTS"), **WITH_SHUTDOWN},
            dirs=UBUNTU_DIRS, tools=DEBIAN_TOOLS,
            expect_distro="ubuntu", expect_version="22.04", expect_arch="x86_64", expect_level="L1"),
    Persona("ubuntu1404_i686", "FLEET-LOJA001-PDV202",
            {**_os_release("ubuntu", "14.04", "Ubuntu 14.04.6 LTS"),
             "etc/lsb-release": "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=14.04\n", **WITH_SHUTDOWN},
            dirs=UPSTART_DIRS, tools=DEBIAN_TOOLS, arch32=True,
            expect_distro="ubuntu", expect_version="14.04", expect_arch="i686", expect_level="L2"),
    Persona("mint21", "FLEET-LOJA001-PDV203", {**_os_release("linuxmint", "21", "Linux Mint 21"), **WITH_SHUTDOWN},
            dirs=UBUNTU_DIRS, tools=DEBIAN_TOOLS, auth="key",
            expect_distro="mint", expect_version="21", expect_arch="x86_64", expect_level="L1"),
    Persona("slackware1337", "FLEET-LOJA001-PDV204",
            {"etc/slackware-version": "Slackware 13.37.0\n", "etc/rc.d/rc.local": SLACKWARE_RC_LOCAL,
             **WITH_SHUTDOWN},
            dirs=SLACKWARE_DIRS, tools=SHADOW_TOOLS, legacy_only=True,
            expect_distro="slackware", expect_version="13.37", expect_arch="x86_64",
            expect_level="L2"),
    Persona("unknown", "FLEET-LOJA001-PDV205", _os_release("plan9", "4", "Plan 9"),
            expect_distro="plan9", expect_version="4", expect_arch="x86_64", expect_level=None),
    Persona("hang", "FLEET-LOJA001-PDV206", _os_release("ubuntu", "22.04", "Ubuntu 22.04.4 LTS"), hang=True,
            expect_distro="ubuntu", expect_version="22.04", expect_arch="x86_64", expect_level="L1",
            expect_status="timeout"),
    Persona("wrong_password", "FLEET-LOJA001-PDV207", _os_release("ubuntu", "22.04", "Ubuntu 22.04.4 LTS"),
            accepts=OTHER_PASSWORD, expect_status="auth_failed"),
    Persona("nothing_listens", "FLEET-LOJA001-PDV208", listening=False, expect_status="unreachable"),
    Persona("zanthus_rollout", "FLEET-LOJA002-PDV201", provider="zanthus", same_endpoint_as="ubuntu2204",
            expect_status="skipped_rollout"),
)


def _staging_personas() -> tuple[Persona, ...]:
    """Cheap endpoints for staged runs (batches, stop rules): store 010 is ten endpoints in name
    order, three of them failing deterministically (203 refuses the password, 206 fails every
    command but the facts probe, 209 has nothing listening); store 011 is four hanging endpoints
    (a batch in flight stays in flight)."""
    ubuntu = _os_release("ubuntu", "22.04", "Ubuntu 22.04.4 LTS")
    kinds: dict[int, dict[str, Any]] = {3: {"accepts": OTHER_PASSWORD, "expect_status": "auth_failed"},
                                        6: {"fails": True, "expect_status": "failed"},
                                        9: {"listening": False, "expect_status": "unreachable"}}
    store010 = tuple(Persona(f"staged{n:02d}", f"{REDE}-LOJA010-PDV{200 + n}", ubuntu, **kinds.get(n, {}))
                     for n in range(1, 11))
    store011 = tuple(Persona(f"staged_hang{n}", f"{REDE}-LOJA011-PDV{200 + n}", ubuntu, hang=True,
                             expect_status="timeout") for n in range(1, 5))
    return store010 + store011


STAGING_PERSONAS: tuple[Persona, ...] = _staging_personas()


@dataclass
class Endpoint:
    name: str
    ip: str
    port: int
    persona: str
    auth: str
    provider: str | None = None
    dead: str | None = None  # refused | blackhole | silent (benchmark fleet)
    user: str = "root"
    agent_port: int | None = None  # where an agent on this endpoint listens (distinct per persona)

    def inventory_entry(self, key_file: Path) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "ip": self.ip, "port": self.port, "user": self.user}
        if self.agent_port is not None:
            entry["agent_port"] = self.agent_port
        if self.auth == "key":
            entry["key_file"] = str(key_file)
        else:
            entry["password"] = PASSWORD
        if self.provider:
            entry["provider"] = self.provider
        entry["tags"] = {"persona": self.persona}
        return entry


class FleetError(RuntimeError):
    """The fleet could not start; the message says why (sshd log included)."""


def _run(argv: list[str], stdin: str | None = None) -> str:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise FleetError(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    return proc.stdout


def require_tools() -> None:
    missing = [p for p in (SSHD, BUSYBOX, "/usr/bin/ssh-keygen", "/usr/bin/unshare", "/usr/bin/openssl")
               if not os.path.exists(p)]
    if missing:
        raise FleetError(f"missing {', '.join(missing)}: install openssh-server, openssh-client and "
                         "busybox-static (scripts/setup.sh)")
    if os.geteuid() != 0:
        raise FleetError("the sshd fleet must be started as root (sshd chroot and mount namespaces)")


def pick_subnet(rng: random.Random) -> tuple[int, int]:
    """A random 127.A.B.0/24-ish block (A in 100..250) where nothing listens yet."""
    for _ in range(50):
        a, b = rng.randint(100, 250), rng.randint(1, 250)
        with contextlib.closing(socket.socket()) as s:
            s.settimeout(0.2)
            if s.connect_ex((f"127.{a}.{b}.1", 22)) != 0:
                return a, b
    raise FleetError("no free 127.x.y.0 block found")


def free_port(ip: str) -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def free_agent_port(rng: random.Random, taken: set[int]) -> int:
    """A port below the ephemeral range that nothing on any address uses now (an agent binds all
    addresses), distinct from `taken`; added to `taken`."""
    low = _ephemeral_low()
    for _ in range(200):
        port = rng.randint(low // 2, low - 1)
        if port in taken:
            continue
        with contextlib.closing(socket.socket()) as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise FleetError("no free agent port found")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _keygen(path: Path, kind: str) -> None:
    if not path.exists():
        argv = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "flageemonitor-fleet", "-f", str(path)]
        if kind == "rsa":
            argv[4:4] = ["-b", "2048"]
        _run(argv)


LOGGING_SHELL = """#!/bin/busybox sh
# root's login shell: record the command sent (evidence for tests), then run it with busybox sh
echo "${SSH_ORIGINAL_COMMAND:-$2}" >> /var/log/commands
exec @PERSONALITY@/bin/busybox sh "$@"
"""
PLAIN_SHELL = '#!/bin/busybox sh\nexec @PERSONALITY@/bin/busybox sh "$@"\n'


def build_chroot(root: Path, files: dict[str, str], busybox: Path, *, hang: bool = False,
                 fails: bool = False, log_commands: bool = False, dirs: tuple[str, ...] = (), tools: Path | None = None,
                 programs: tuple[str, ...] = (), arch32: bool = False) -> None:
    """A minimal endpoint tree: busybox applets, /dev nodes, /proc (mounted by the persona's sshd),
    /root, /tmp, the user database, the release files and `dirs`; `programs` are installed from the
    staged `tools` (see `stage_tools`). With `log_commands` every command sent is appended to
    /var/log/commands in the tree; with `arch32` root's shell runs under linux32 (uname -m: i686)."""
    for sub in ("bin", "sbin", "etc", "root", "tmp", "dev", "proc", "var/log", *dirs):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)  # noqa: S103 - an endpoint's / as on a real system (inside a 0700 fleet dir)
    os.chmod(root / "tmp", 0o1777)  # noqa: S103 - an endpoint's /tmp
    _link_or_copy(busybox, root / "bin" / "busybox")
    for applet in (*APPLETS, *AGENT_APPLETS):
        link = root / "bin" / applet
        if not link.is_symlink():
            link.symlink_to("busybox")
    shell = root / "bin" / "bash"
    text = LOGGING_SHELL if log_commands else PLAIN_SHELL
    shell.write_text(text.replace("@PERSONALITY@", "/bin/linux32 " if arch32 else ""))
    shell.chmod(0o755)
    for name, (major, minor) in DEVICES.items():
        node = root / "dev" / name
        if not node.exists():
            try:
                os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(major, minor))
            except OSError:
                node.touch()  # no CAP_MKNOD: a plain file still swallows redirects
            os.chmod(node, 0o666)  # noqa: S103 - world-usable devices, as on any system
    _user_database(root / "etc")
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        if path.parent.name in {"bin", "sbin", "rc.d"}:
            path.chmod(0o755)
    if programs:
        assert tools is not None, "programs need staged tools"
        _install_tools(root, tools, programs)
    for kind, on in (("hang", hang), ("fail", fails)):
        if on:
            name, text = FORCED[kind]
            script = root / "bin" / name
            script.write_text(text)
            script.chmod(0o755)


def _link_or_copy(source: Path, target: Path) -> None:
    if not target.exists():
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)


def _user_database(etc: Path) -> None:
    """passwd, group, shadow and gshadow as on an installed system: with the `-` backups and the
    lock file the shadow tools leave behind, so changing a user creates no new file."""
    tables = {"passwd": ("root:x:0:0:root:/root:/bin/bash\n", 0o644),
              "group": ("root:x:0:\n", 0o644),
              "shadow": ("root:*:19000:0:99999:7:::\n", 0o640),
              "gshadow": ("root:*::\n", 0o640)}
    for name, (content, mode) in tables.items():
        for suffix in ("", "-"):
            path = etc / (name + suffix)
            path.write_text(content)
            path.chmod(mode)
    lock = etc / ".pwd.lock"
    lock.touch()
    lock.chmod(0o600)
    if Path("/etc/login.defs").exists():
        shutil.copyfile("/etc/login.defs", etc / "login.defs")


TOOL_LAUNCHER = """#!/bin/busybox sh
# {name} from the machine running this test endpoint, with its own libraries and loader
exec /{tools}/{loader} --library-path /{tools} /{tools}/{name} "$@"
"""


def stage_tools(directory: Path, programs: tuple[str, ...]) -> Path:
    """Copy `programs` (ELF binaries, or scripts whose interpreter is an ELF binary) with every
    library `ldd` lists and the dynamic loader into `directory`, once per fleet. Perl scripts get
    Debian's perl-base modules beside them."""
    directory.mkdir(parents=True, exist_ok=True)
    elves: set[str] = set()
    for program in programs:
        head = Path(program).read_bytes()[:128]
        if head.startswith(b"#!"):
            interpreter = head[2:].split(b"\n", 1)[0].split()[0].decode()
            shutil.copy2(program, directory / Path(program).name)
            elves.add(interpreter)
            if Path(interpreter).name == "perl":
                shutil.copytree(PERL_LIB, directory / "perl-base", dirs_exist_ok=True)
        else:
            elves.add(program)
    for elf in sorted(elves):
        shutil.copy2(elf, directory / Path(elf).name)
        for line in _run(["ldd", elf]).splitlines():
            parts = line.split()
            if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
                name, path = parts[0], parts[2]
            elif parts and parts[0].startswith("/"):
                name, path = Path(parts[0]).name, parts[0]
                (directory / "LOADER").write_text(name)
            else:
                continue
            if not (directory / name).exists():
                shutil.copy2(os.path.realpath(path), directory / name)
    return directory


def _install_tools(root: Path, tools: Path, programs: tuple[str, ...]) -> None:
    """Hard links to the staged tools under TOOLS_DIR, and at each program's own path either a
    launcher (ELF) or the script itself with a launcher for its interpreter."""
    target = root / TOOLS_DIR
    target.mkdir(parents=True, exist_ok=True)
    for item in tools.iterdir():
        if item.is_file():
            _link_or_copy(item, target / item.name)
    loader = (tools / "LOADER").read_text()

    def launcher(path: str) -> None:
        dest = root / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(TOOL_LAUNCHER.format(name=Path(path).name, tools=TOOLS_DIR, loader=loader))
        dest.chmod(0o755)

    for program in programs:
        head = Path(program).read_bytes()[:128]
        if not head.startswith(b"#!"):
            launcher(program)
            continue
        interpreter = head[2:].split(b"\n", 1)[0].split()[0].decode()
        dest = root / program.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(tools / Path(program).name, dest)
        launcher(interpreter)
        if Path(interpreter).name == "perl" and (tools / "perl-base").is_dir():
            shutil.copytree(tools / "perl-base", root / PERL_LIB.lstrip("/"), copy_function=os.link,
                            dirs_exist_ok=True)


def _sshd_config(base: Path, listen: list[tuple[str, int]], host_keys: list[Path], chroot: Path,
                 authorized_keys: Path, *, password: bool, extra: str = "") -> str:
    lines = [f"ListenAddress {ip}:{port}" for ip, port in listen]
    lines += [f"HostKey {k}" for k in host_keys]
    lines += [
        f"PidFile {base / 'sshd.pid'}",
        "UsePAM no",
        "PermitRootLogin yes",
        f"PasswordAuthentication {'yes' if password else 'no'}",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        f"AuthorizedKeysFile {authorized_keys}",
        "StrictModes no",
        f"ChrootDirectory {chroot}",
        "Subsystem sftp internal-sftp",
        "UseDNS no",
        "PrintMotd no",
        "PrintLastLog no",
        "X11Forwarding no",
        "AllowTcpForwarding no",
        "ClientAliveInterval 0",
        "LogLevel ERROR",
        "MaxStartups 4000",
        "MaxSessions 200",
        "MaxAuthTries 6",
        "LoginGraceTime 60",
    ]
    return "\n".join(lines) + "\n" + extra


def _descendants(pids: set[int]) -> set[int]:
    """`pids` and every process descending from them (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = set(), list(pids)
    while todo:
        pid = todo.pop()
        if pid in out:
            continue
        out.add(pid)
        todo.extend(children.get(pid, []))
    return out


def _rooted_in(directory: Path) -> set[int]:
    """Processes whose root directory is inside `directory` (sessions chrooted into our trees)."""
    found = set()
    prefix = str(directory.resolve())
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/root").startswith(prefix):
                    found.add(int(entry))
            except OSError:
                continue
    return found


def stop_pids(pids: set[int], directory: Path | None = None, grace: float = 3.0) -> None:
    """Terminate our recorded processes, their descendants and sessions chrooted in `directory`."""
    targets = _descendants({p for p in pids if p > 1})
    if directory is not None and directory.exists():
        targets |= _rooted_in(directory)
    targets.discard(os.getpid())
    for pid in targets:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        alive = [p for p in targets if _alive(p)]
        if not alive:
            return
        time.sleep(0.05)
    for pid in targets:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def wait_listening(addresses: list[tuple[str, int]], timeout: float, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    pending = list(addresses)
    while pending and time.monotonic() < deadline:
        still = []
        for ip, port in pending:
            with contextlib.closing(socket.socket()) as s:
                s.settimeout(0.5)
                if s.connect_ex((ip, port)) != 0:
                    still.append((ip, port))
        pending = still
        if pending:
            time.sleep(0.05)
    if pending:
        tails = []
        for log in logs:
            with contextlib.suppress(OSError):
                text = log.read_text(errors="replace").strip()
                if text:
                    tails.append(f"{log.name}: {text[-600:]}")
        raise FleetError(f"sshd did not listen on {pending[:3]} within {timeout:g}s; " + " | ".join(tails))


class Fleet:
    """A started fleet: endpoints, the inventory and config files, and the processes to stop."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.endpoints: list[Endpoint] = []
        self.pids: set[int] = set()
        self._procs: list[subprocess.Popen[bytes]] = []
        self.client_key = base / "client_ed25519"
        self.inventory_path = base / "inventory.yaml"
        self.config_path = base / "config_bot.json"
        self.state_dir = base / "state"
        self.roots: dict[str, Path] = {}  # persona -> its / where that is not a tree in `base`

    # --- lifecycle
    def _spawn(self, argv: list[str], log: Path) -> int:
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    start_new_session=True)
        self._procs.append(proc)
        self.pids.add(proc.pid)
        (self.base / "pids").write_text("".join(f"{p}\n" for p in sorted(self.pids)))
        return proc.pid

    def stop(self) -> None:
        stop_pids(self.pids, self.base)
        for proc in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2)
        _reap()
        self.pids.clear()
        (self.base / "pids").unlink(missing_ok=True)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    # --- files
    def write_inventory(self) -> Path:
        doc = {"hosts": [e.inventory_entry(self.client_key) for e in self.endpoints]}
        self.inventory_path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return self.inventory_path

    def write_config(self, **extra: Any) -> Path:
        config: dict[str, Any] = {
            "PARAM_REDE": REDE,
            "PARAM_INVENTORY_FILE": str(self.inventory_path),
            "ssh": {"timeout": 5, "command_timeout": 30, "host_key_policy": "pin"},
        }
        config.update(extra)
        self.config_path.write_text(json.dumps(config, indent=2))
        return self.config_path

    def env(self) -> dict[str, str]:
        """Environment for a `flageemonitor` process using this fleet's state directory."""
        return {**os.environ, "FLAGEEMONITOR_STATE_DIR": str(self.state_dir),
                "FLAGEEMONITOR_CONFIG_PATH": str(self.config_path)}

    def endpoint(self, name: str) -> Endpoint:
        return next(e for e in self.endpoints if e.name == name)

    def chroot(self, persona: str) -> Path:
        """The filesystem tree of a persona endpoint (what the endpoint sees as /); the sudo
        endpoint's users (`sudo:<user>`) share one."""
        return self.roots.get(persona.split(":")[0], self.base / persona / "root")

    def commands(self, persona: str) -> list[str]:
        """Every command the persona endpoint was sent, in order."""
        log = self.chroot(persona) / "var" / "log" / "commands"
        return log.read_text().splitlines() if log.exists() else []

    def clear_commands(self) -> None:
        for endpoint in self.endpoints:
            (self.chroot(endpoint.persona) / "var" / "log" / "commands").unlink(missing_ok=True)


FLEET_PREFIXES = ("flageemonitor-fleet-", "flageemonitor-bench-")


def _start_time(pid: int) -> str | None:
    """The kernel start time of `pid` (with the pid, it identifies a process across pid reuse)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _new_base(prefix: str) -> Path:
    Path("/run").mkdir(exist_ok=True)
    reap_orphans()
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/run"))  # 0700: holds the client key and hashes
    (base / "owner").write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")
    return base


def reap_orphans() -> list[Path]:
    """Stop fleets whose owning process died without stopping them (a killed test run), by the
    PIDs those fleets recorded. Fleets started from the command line (`up`) have no owner
    process and are left alone, as are fleets whose owner still runs."""
    reaped = []
    for prefix in FLEET_PREFIXES:
        for directory in Path("/run").glob(prefix + "*"):
            try:
                pid_text, start = (directory / "owner").read_text().split()
            except (OSError, ValueError):
                continue
            if pid_text == "manual" or _start_time(int(pid_text)) == start:
                continue
            stop_dir(directory)
            reaped.append(directory)
    return reaped


def _password_hash(password: str) -> str:
    return _run(["openssl", "passwd", "-6", "-stdin"], stdin=password + "\n").strip()


def start_persona_fleet(personas: tuple[Persona, ...] = PERSONAS, *, seed: int | None = None,
                        startup_timeout: float = 15.0) -> Fleet:
    """Start one sshd per persona; returns the fleet with its inventory and config written."""
    require_tools()
    rng = random.Random(seed)
    a, b = pick_subnet(rng)
    fleet = Fleet(_new_base("flageemonitor-fleet-"))
    try:
        _start_personas(fleet, personas, a, b, rng)
    except BaseException:
        fleet.remove()
        raise
    return fleet


def _start_personas(fleet: Fleet, personas: tuple[Persona, ...], a: int, b: int, rng: random.Random) -> None:
    base = fleet.base
    _keygen(fleet.client_key, "ed25519")
    authorized = base / "authorized_keys"
    authorized.write_text((base / "client_ed25519.pub").read_text())
    ed_key, rsa_key = base / "host_ed25519", base / "host_rsa"
    _keygen(ed_key, "ed25519")
    busybox = base / "busybox"
    shutil.copy2(BUSYBOX, busybox)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    hashes = {pw: _password_hash(pw) for pw in {p.accepts for p in personas}}
    programs = tuple(sorted({t for p in personas for t in p.tools}))
    tools = stage_tools(base / "tools", programs) if programs else None
    listen: list[tuple[str, int]] = []
    logs: list[Path] = []
    by_key: dict[str, Endpoint] = {}
    agent_ports: set[int] = set()
    for index, persona in enumerate(personas, start=2):
        if persona.same_endpoint_as:
            twin = by_key[persona.same_endpoint_as]
            fleet.endpoints.append(Endpoint(persona.host, twin.ip, twin.port, persona.key, twin.auth,
                                            provider=persona.provider, agent_port=twin.agent_port))
            continue
        ip = f"127.{a}.{b}.{index}"
        port = free_port(ip)
        agent_port = free_agent_port(rng, agent_ports) if persona.listening else None
        endpoint = Endpoint(persona.host, ip, port, persona.key, persona.auth, provider=persona.provider,
                            agent_port=agent_port)
        by_key[persona.key] = endpoint
        fleet.endpoints.append(endpoint)
        if not persona.listening:
            continue
        pdir = base / persona.key
        pdir.mkdir(mode=0o700)
        chroot = pdir / "root"
        build_chroot(chroot, persona.files, busybox, hang=persona.hang, fails=persona.fails, log_commands=True,
                     dirs=persona.dirs, tools=tools, programs=persona.tools, arch32=persona.arch32)
        extra = ""
        keys = [ed_key]
        if persona.legacy_only:
            _keygen(rsa_key, "rsa")
            keys = [rsa_key]
            extra += LEGACY_SSHD
        for kind, on in (("hang", persona.hang), ("fail", persona.fails)):
            if on:
                extra += f"ForceCommand /bin/{FORCED[kind][0]}\n"
        config = pdir / "sshd_config"
        config.write_text(_sshd_config(pdir, [(ip, port)], keys, chroot, authorized,
                                       password=persona.auth == "password", extra=extra))
        shadow = pdir / "shadow"
        shadow.write_text(f"root:{hashes[persona.accepts]}:19000:0:99999:7:::\n")
        shadow.chmod(0o600)
        log = pdir / "sshd.log"
        logs.append(log)
        _run([SSHD, "-t", "-f", str(config)])
        # A private mount namespace: the persona's shadow file hides /etc/shadow for this sshd only,
        # and the sessions (and the agents they start) see a /proc the machine does not have mounted there.
        script = 'mount --bind "$1" /etc/shadow && mount -t proc proc "$2/proc" && exec "$3" -D -e -f "$4"'
        fleet._spawn(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "fleet-sshd",
                      str(shadow), str(chroot), SSHD, str(config)], log)
        listen.append((ip, port))
    wait_listening(listen, 15.0, logs)
    fleet.write_inventory()
    fleet.write_config()


# ------------------------------------------------------------------ non-root endpoint with real sudo
@dataclass(frozen=True)
class SudoUser:
    name: str
    uid: int
    rule: str | None  # sudoers rule body, None: no sudo rights
    host: str


SUDO_USERS: tuple[SudoUser, ...] = (
    SudoUser("fmtest-pw", 61001, "ALL=(ALL) ALL", "FLEET-LOJA003-PDV201"),
    SudoUser("fmtest-np", 61002, "ALL=(ALL) NOPASSWD: ALL", "FLEET-LOJA003-PDV202"),
    SudoUser("fmtest-no", 61003, None, "FLEET-LOJA003-PDV203"),
)


def start_sudo_fleet(users: tuple[SudoUser, ...] = SUDO_USERS, *, seed: int | None = None) -> Fleet:
    """One endpoint (the machine's own tools and sudo) where non-root users log in with a password
    and elevate through the real sudo. Its / is private and copy-on-write: in the sshd's own mount
    namespace an overlay of the machine's / (upper layer on a tmpfs of that namespace) with /dev
    and /proc, and sshd runs chrooted into it. The users, their password hashes and sudoers rules
    are written there, and whatever root installs through sudo (an agent, users, init scripts)
    lands there too: the machine's files are untouched and everything vanishes with the
    namespace. `Fleet.chroot("sudo")` reaches that tree while the endpoint runs. Needs `sudo`."""
    require_tools()
    if not os.path.exists("/usr/bin/sudo"):
        raise FleetError("missing /usr/bin/sudo: install the sudo package (scripts/setup.sh)")
    rng = random.Random(seed)
    a, b = pick_subnet(rng)
    fleet = Fleet(_new_base("flageemonitor-fleet-"))
    try:
        _start_sudo(fleet, users, f"127.{a}.{b}.2", rng)
    except BaseException:
        fleet.remove()
        raise
    return fleet


SUDO_ROOT_SCRIPT = """set -e
mount -t tmpfs -o mode=0700 fleet-sudo-root "$1"
mkdir "$1/upper" "$1/work" "$1/root"
mount -t overlay fleet-sudo-root -o lowerdir=/,upperdir="$1/upper",workdir="$1/work" "$1/root"
mount --rbind /dev "$1/root/dev"
mount -t proc proc "$1/root/proc"
for f in passwd group shadow sudoers; do cat "$2/$f" > "$1/root/etc/$f"; done
exec chroot "$1/root" "$3" -D -e -f "$4"
"""


def _start_sudo(fleet: Fleet, users: tuple[SudoUser, ...], ip: str, rng: random.Random) -> None:
    base = fleet.base
    pdir = base / "sudo"
    pdir.mkdir(mode=0o700)
    host_key = base / "host_ed25519"
    _keygen(host_key, "ed25519")
    _keygen(fleet.client_key, "ed25519")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    target = base / "sudo_target"  # where root (through sudo) may write in tests
    target.mkdir(mode=0o700)
    hashed = _password_hash(PASSWORD)
    passwd = Path("/etc/passwd").read_text() + "".join(
        f"{u.name}:x:{u.uid}:{u.uid}:fleet test user:/tmp:/bin/sh\n" for u in users)
    group = Path("/etc/group").read_text() + "".join(f"{u.name}:x:{u.uid}:\n" for u in users)
    shadow = "".join(f"{u.name}:{hashed}:19000:0:99999:7:::\n" for u in users)
    ts_dir = pdir / "sudo-ts"
    ts_dir.mkdir(mode=0o700)
    sudoers = (f"Defaults env_reset, lecture=never, !fqdn, timestampdir={ts_dir}\n"
               'Defaults secure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"\n'
               "root ALL=(ALL:ALL) ALL\n" + "".join(f"{u.name} {u.rule}\n" for u in users if u.rule))
    files = {"passwd": (passwd, 0o644), "group": (group, 0o644), "shadow": (shadow, 0o600),
             "sudoers": (sudoers, 0o440)}
    for name, (content, mode) in files.items():
        (pdir / name).write_text(content)
        (pdir / name).chmod(mode)
    (pdir / "layers").mkdir(mode=0o700)
    port = free_port(ip)
    config = pdir / "sshd_config"
    config.write_text("\n".join([
        f"ListenAddress {ip}:{port}", f"HostKey {host_key}", f"PidFile {pdir / 'sshd.pid'}", "UsePAM no",
        "PermitRootLogin no", "PasswordAuthentication yes", "KbdInteractiveAuthentication no",
        f"AllowUsers {' '.join(u.name for u in users)}", "Subsystem sftp internal-sftp", "UseDNS no",
        "PrintMotd no", "PrintLastLog no", "X11Forwarding no", "AllowTcpForwarding no", "LogLevel ERROR",
    ]) + "\n")
    _run([SSHD, "-t", "-f", str(config)])
    log = pdir / "sshd.log"
    pid = fleet._spawn(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", SUDO_ROOT_SCRIPT,
                        "fleet-sshd", str(pdir / "layers"), str(pdir), SSHD, str(config)], log)
    fleet.roots["sudo"] = Path(f"/proc/{pid}/root")
    wait_listening([(ip, port)], 15.0, [log])
    agent_port = free_agent_port(rng, set())
    fleet.endpoints = [Endpoint(u.host, ip, port, f"sudo:{u.name}", "password", user=u.name,
                                agent_port=agent_port) for u in users]
    fleet.write_inventory()
    fleet.write_config()


# ------------------------------------------------------------------ benchmark fleet
DEAD_KINDS = ("refused", "blackhole", "silent")


def start_bench_fleet(count: int, *, dead_share: float = 0.1, per_sshd: int = 16, seed: int | None = None,
                      startup_timeout: float = 60.0) -> Fleet:
    """`count` endpoints on 127.A.x.y, one sshd per `per_sshd` addresses, key auth, busybox
    chroot; `dead_share` of them dead (refused / blackholed / silent, in turn)."""
    require_tools()
    rng = random.Random(seed)
    a, _ = pick_subnet(rng)
    return _started("flageemonitor-bench-", lambda fleet: _start_bench(fleet, count, dead_share, per_sshd, a,
                                                                         startup_timeout))


def _started(prefix: str, start: Callable[[Fleet], None]) -> Fleet:
    """A new fleet directory, filled by `start`; removed again (processes stopped) if it fails."""
    fleet = Fleet(_new_base(prefix))
    try:
        start(fleet)
    except BaseException:
        fleet.remove()
        raise
    return fleet


def _bench_keys(fleet: Fleet) -> tuple[Path, Path, Path]:
    """The client key authorized, the host key and busybox of a benchmark fleet."""
    base = fleet.base
    _keygen(fleet.client_key, "ed25519")
    authorized = base / "authorized_keys"
    authorized.write_text((base / "client_ed25519.pub").read_text())
    host_key = base / "host_ed25519"
    _keygen(host_key, "ed25519")
    busybox = base / "busybox"
    shutil.copy2(BUSYBOX, busybox)
    return authorized, host_key, busybox


def _start_bench(fleet: Fleet, count: int, dead_share: float, per_sshd: int, a: int, timeout: float) -> None:
    base = fleet.base
    authorized, host_key, busybox = _bench_keys(fleet)
    chroot = base / "root"
    build_chroot(chroot, _os_release("ubuntu", "22.04", "Ubuntu 22.04.4 LTS"), busybox)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    dead = round(count * dead_share)
    port = free_port(f"127.{a}.1.1")
    live: list[tuple[str, int]] = []
    dead_eps: list[Endpoint] = []
    for i in range(count):
        ip = f"127.{a}.{1 + i // 200}.{1 + i % 200}"
        name = f"{REDE}-LOJA{1 + i // 100:03d}-PDV{200 + i % 100}"
        kind = DEAD_KINDS[i % len(DEAD_KINDS)] if i >= count - dead else None
        ep = Endpoint(name, ip, port, "bench" if kind is None else f"dead-{kind}", "key", dead=kind)
        fleet.endpoints.append(ep)
        if kind is None:
            live.append((ip, port))
        else:
            dead_eps.append(ep)
    logs: list[Path] = []
    for n in range(0, len(live), per_sshd):
        group = live[n:n + per_sshd]
        sdir = base / f"sshd{n // per_sshd:03d}"
        sdir.mkdir(mode=0o700)
        config = sdir / "sshd_config"
        config.write_text(_sshd_config(sdir, group, [host_key], chroot, authorized, password=False))
        log = sdir / "sshd.log"
        logs.append(log)
        fleet._spawn([SSHD, "-D", "-e", "-f", str(config)], log)
    helpers = [e for e in dead_eps if e.dead in ("blackhole", "silent")]
    if helpers:
        spec = ",".join(f"{e.dead}:{e.ip}:{e.port}" for e in helpers)
        fleet._spawn([sys.executable, str(Path(__file__).with_name("deadhosts.py")), spec], base / "deadhosts.log")
    wait_listening(live, timeout, logs)
    if helpers:
        _wait_ready(base / "deadhosts.log", timeout)
    fleet.write_inventory()
    fleet.write_config()


# ------------------------------------------------------------------ agent install benchmark fleet
BENCH_PYTHON = "/usr/bin/python3.11"  # Ansible's modules need Python on the endpoint
BENCH_TAR = "/usr/bin/tar"  # and its unarchive needs GNU tar, as an Ubuntu endpoint has
AGENT_BENCH_SCRIPT = """set -e
layers="$1"; sshd="$2"; config="$3"; shift 3
for root in "$@"; do
  mount -t proc proc "$root/proc"
  mount --bind -o ro /usr/lib/python3.11 "$root/usr/lib/python3.11"
  mount --bind -o ro /usr/lib/x86_64-linux-gnu "$root/usr/lib/x86_64-linux-gnu"
done
exec "$sshd" -D -e -f "$config"
"""


def start_agent_bench_fleet(count: int, *, per_sshd: int = 16, seed: int | None = None,
                            startup_timeout: float = 120.0) -> Fleet:
    """`count` agent-capable endpoints for install benchmarks: each its own Ubuntu 22.04 tree
    (like the persona's: init layout, shadow tools, update-rc.d, /proc) with Python for
    Ansible's modules (this machine's, its standard library and shared libraries mounted
    read-only), its own agent port, key auth; one sshd per `per_sshd` addresses choosing the
    tree by the address connected to (`Match LocalAddress`)."""
    require_tools()
    rng = random.Random(seed)
    a, _ = pick_subnet(rng)
    return _started("flageemonitor-bench-", lambda fleet: _start_agent_bench(fleet, count, per_sshd, a, rng,
                                                                               startup_timeout))


def _start_agent_bench(fleet: Fleet, count: int, per_sshd: int, a: int, rng: random.Random, timeout: float) -> None:
    base = fleet.base
    authorized, host_key, busybox = _bench_keys(fleet)
    ubuntu = next(p for p in PERSONAS if p.key == "ubuntu2204")
    programs = (*ubuntu.tools, BENCH_PYTHON, BENCH_TAR)
    tools = stage_tools(base / "tools", programs)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port = free_port(f"127.{a}.1.1")
    agent_ports: set[int] = set()
    roots: dict[str, Path] = {}
    for i in range(count):
        ip = f"127.{a}.{1 + i // 200}.{1 + i % 200}"
        name = f"{REDE}-LOJA{1 + i // 100:03d}-PDV{200 + i % 100}"
        key = f"ep{i:04d}"
        root = base / key / "root"
        build_chroot(root, ubuntu.files, busybox, dirs=(*ubuntu.dirs, "usr/lib/python3.11",
                                                        "usr/lib/x86_64-linux-gnu"), tools=tools, programs=programs)
        (root / "bin" / "sha1sum").symlink_to("busybox")
        (root / "usr" / "bin" / "python3").symlink_to("python3.11")
        roots[ip] = root
        fleet.endpoints.append(Endpoint(name, ip, port, key, "key", agent_port=free_agent_port(rng, agent_ports)))
    logs: list[Path] = []
    ips = list(roots)
    for n in range(0, count, per_sshd):
        group = ips[n:n + per_sshd]
        sdir = base / f"sshd{n // per_sshd:03d}"
        sdir.mkdir(mode=0o700)
        config = sdir / "sshd_config"
        matches = "".join(f"Match LocalAddress {ip}\n    ChrootDirectory {roots[ip]}\n" for ip in group)
        config.write_text(_sshd_config(sdir, [(ip, port) for ip in group], [host_key], roots[group[0]], authorized,
                                       password=False) + matches)
        _run([SSHD, "-t", "-f", str(config)])
        log = sdir / "sshd.log"
        logs.append(log)
        fleet._spawn(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", AGENT_BENCH_SCRIPT,
                      "fleet-bench-sshd", str(sdir), SSHD, str(config), *(str(roots[ip]) for ip in group)], log)
    wait_listening([(ip, port) for ip in ips], timeout, logs)
    fleet.write_inventory()
    fleet.write_config()


def _wait_ready(log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if "ready" in log.read_text():
                return
        time.sleep(0.05)
    raise FleetError(f"dead-host helper not ready: {log.read_text(errors='replace')[-400:] if log.exists() else ''}")


# ------------------------------------------------------------------ command line
def run_command(fleet: Fleet, action: str = "test_endpoint_connection") -> str:
    """The shell command that runs `action` over this fleet with its own state directory."""
    import shlex

    return (f"FLAGEEMONITOR_STATE_DIR={shlex.quote(str(fleet.state_dir))} flageemonitor run {action} "
            f"--config {shlex.quote(str(fleet.config_path))} --inventory {shlex.quote(str(fleet.inventory_path))}")


def _describe(fleet: Fleet) -> dict[str, Any]:
    return {"dir": str(fleet.base), "inventory": str(fleet.inventory_path), "config": str(fleet.config_path),
            "state_dir": str(fleet.state_dir), "pids": sorted(fleet.pids), "run": run_command(fleet),
            "endpoints": [asdict(e) for e in fleet.endpoints[:20]], "count": len(fleet.endpoints)}


def stop_dir(directory: Path) -> None:
    """Stop a fleet from its directory (the PIDs it recorded), then remove the directory."""
    pid_file = directory / "pids"
    pids = {int(x) for x in pid_file.read_text().split()} if pid_file.exists() else set()
    stop_pids(pids, directory)
    shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def persona_fleet() -> Iterator[Fleet]:
    fleet = start_persona_fleet()
    try:
        yield fleet
    finally:
        fleet.remove()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in {"up", "sudo", "bench", "down"}:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        if args[0] == "down":
            for d in args[1:]:
                stop_dir(Path(d))
            return 0
        if args[0] == "up":
            fleet = start_persona_fleet()
        elif args[0] == "sudo":
            fleet = start_sudo_fleet()
        else:
            fleet = start_bench_fleet(int(args[1]) if len(args) > 1 else 500)
    except FleetError as exc:
        print(f"fleet: {exc}", file=sys.stderr)
        return 1
    (fleet.base / "owner").write_text("manual -\n")  # outlives this command; `down` stops it
    print(json.dumps(_describe(fleet), indent=2))
    print(f"stop with: python -m devtools.fleet down {fleet.base}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["PASSWORD", "PERSONAS", "REDE", "STAGING_PERSONAS", "SUDO_USERS", "Endpoint", "Fleet", "FleetError",
           "Persona", "SudoUser", "start_agent_bench_fleet", "start_bench_fleet", "start_persona_fleet",
           "start_sudo_fleet", "stop_dir"]
