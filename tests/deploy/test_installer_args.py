"""The Linux installer's argument corpus: every bad argument stops it at once, with one error
line naming the option, exit code 2, and nothing on the host changed or run.

The host is a private prefix (`FLAGEEMONITOR_PREFIX`, so the option under test never decides
where the installer writes) holding files of its own; its tree is compared byte for byte before
and after. `docker` and `curl` on PATH are recorders: stand-ins that only log their arguments,
so an installer that went on past a bad argument (to its Docker or token checks) is seen even
though no daemon or server answers here.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest

from flageemonitor.server import bootstrap
from tests.deploy.test_templates import values

VALUE_OPTIONS = (
    "--api-base", "--rede", "--image", "--runtime-name", "--container-root", "--timezone", "--network",
    "--registry-user", "--registry-password-file", "--token-file", "--watchtower-image",
    "--watchtower-interval", "--prefix",
)
HOSTILE_VALUES = {
    "space": "a b",
    "newline": "a\nb",
    "subst": "$(touch {marker})",
    "backtick": "`touch {marker}`",
    "ampersand": "/x&y",
    "backslash": "/x\\y",
    "quote": "/x'y",
}
REAL_PATHS = ("/etc/flageemonitor", "/var/lib/flageemonitor", "/usr/local/bin/flageemonitor-run")
RECORDER = '#!/bin/sh\nprintf "%s\\n" "${0##*/} $*" >> "$FM_RECORD"\nexit 0\n'


class Host:
    """A fake root for one installer run, with recorders for docker and curl."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "host"
        (self.root / "etc").mkdir(parents=True)
        (self.root / "etc/hostname").write_text("store-host\n")
        (self.root / "usr/local/bin").mkdir(parents=True)
        self.bin = base / "recorders"
        self.bin.mkdir()
        for tool in ("docker", "curl"):
            (self.bin / tool).write_text(RECORDER)
            (self.bin / tool).chmod(0o755)
        self.record = base / "calls.log"
        self.marker = base / "executed"
        self.script = base / "install.sh"
        self.script.write_text(bootstrap.render_linux(values(DEFAULT_API_BASE="http://127.0.0.1:9/api/ingest")).body)

    def tree(self) -> dict[str, tuple[int, str]]:
        found: dict[str, tuple[int, str]] = {}
        for path in sorted(self.root.rglob("*")):
            st = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            found[str(path.relative_to(self.root))] = (stat.S_IMODE(st.st_mode), digest)
        return found

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        full_env = {"PATH": f"{self.bin}:/usr/bin:/bin", "FM_RECORD": str(self.record),
                    "FLAGEEMONITOR_PREFIX": str(self.root), **env}
        return subprocess.run(["bash", str(self.script), *args], capture_output=True, text=True, timeout=20,
                              stdin=subprocess.DEVNULL, env=full_env, check=False)


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


def assert_refused(host: Host, args: list[str], needle: str, **env: str) -> None:
    real_before = {p: os.path.exists(p) for p in REAL_PATHS}
    before = host.tree()
    proc = host.run(*args, **env)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("flageemonitor-install: error:")]
    assert proc.returncode == 2, (args, proc.returncode, proc.stderr)
    assert len(errors) == 1 and needle in errors[0], (args, proc.stderr)
    if "unknown option" not in needle and "token is required" not in needle:
        assert proc.stderr.count("\n") == 1, proc.stderr  # the error alone, on one line
    assert "dry run" not in proc.stderr and "would " not in proc.stderr
    assert not host.record.exists(), f"{args}: went on and ran {host.record.read_text()!r}"
    assert host.tree() == before
    assert not host.marker.exists()
    assert {p: os.path.exists(p) for p in REAL_PATHS} == real_before


@pytest.mark.parametrize("option", VALUE_OPTIONS)
def test_an_option_without_its_value_at_the_end_stops_the_installer(host: Host, option: str) -> None:
    assert_refused(host, ["TOKEN", option], f"{option} needs a value")


@pytest.mark.parametrize("option", VALUE_OPTIONS)
@pytest.mark.parametrize("following", ["--dry-run", "--uninstall", "--rede"])
def test_an_option_followed_by_another_option_stops_the_installer(host: Host, option: str, following: str) -> None:
    # the original bug: `--rede --dry-run` reported the error, then installed without --dry-run
    assert_refused(host, ["TOKEN", option, following, "--dry-run"], f"{option} needs a value")


@pytest.mark.parametrize("option", VALUE_OPTIONS)
def test_an_empty_value_stops_the_installer(host: Host, option: str) -> None:
    assert_refused(host, ["TOKEN", option, ""], f"{option} needs a value")


@pytest.mark.parametrize("option", VALUE_OPTIONS)
@pytest.mark.parametrize("kind", sorted(HOSTILE_VALUES))
def test_a_hostile_value_is_refused_and_never_runs(host: Host, option: str, kind: str) -> None:
    value = HOSTILE_VALUES[kind].format(marker=host.marker)
    assert_refused(host, ["TOKEN", option, value, "--dry-run"], option)


@pytest.mark.parametrize("value", ["29", "604801", "99999999999999999999", "0x20", "30.5", "1e3", "+60", "٣٠"])
def test_watchtower_interval_is_range_checked(host: Host, value: str) -> None:
    assert_refused(host, ["TOKEN", "--watchtower-interval", value, "--dry-run"], "from 30 to 604800")


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        ([], {}, "the client token is required"),
        ([""], {}, "the token argument is empty"),
        (["a b"], {}, "the token may hold only"),
        (["T1", "T2"], {}, "the token was already given"),
        (["T", "--token-file", "/nonexistent/token"], {}, "give the token once"),
        (["--token-file", "/nonexistent/token"], {}, "--token-file: cannot read"),
        ([], {"FLAGEEMONITOR_TOKEN": "x$(id)"}, "the token may hold only"),
        (["T", "--registry-password", "secret"], {}, "is not accepted"),
        (["T", "--bogus"], {}, "unknown option: --bogus"),
    ],
)
def test_token_and_option_mistakes_stop_the_installer(host: Host, args: list[str], env: dict[str, str],
                                                       needle: str) -> None:
    assert_refused(host, [*args, "--dry-run"], needle, **env)


def test_an_empty_token_file_is_refused(host: Host) -> None:
    empty = host.base / "token"
    empty.write_text("")
    assert_refused(host, ["--token-file", str(empty), "--dry-run"], "is empty")


def test_a_hostile_prefix_from_the_environment_is_refused_for_uninstall_too(host: Host) -> None:
    assert_refused(host, ["--uninstall"], "--prefix must be an absolute path", FLAGEEMONITOR_PREFIX="/tmp/a&b")


def test_a_good_token_file_passes_validation_and_reaches_the_checks(host: Host) -> None:
    """The token file is read (not the argument list): the run goes on to the Docker check."""
    token = host.base / "token"
    token.write_text("fmt_abc-DEF_123\n")
    proc = host.run("--token-file", str(token), "--dry-run")
    assert "docker info" in host.record.read_text()  # reached the checks: validation passed
    assert proc.returncode != 0  # the recorder's curl answers no HTTP code: the token check stops it
    assert "fmt_abc-DEF_123" not in proc.stderr
