"""Image, installer, wrappers and Watchtower end to end: podman + runc + a local registry + the
real docker CLI through `podman system service`. The tests run in order on one installed host
prefix (each step starts from the state the previous one left, as on a real host)."""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from flageemonitor.proxy.daemon.state import HEARTBEAT_NAME
from tests.e2e.conftest import RUNTIME, Scene
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WATCHTOWER = f"{RUNTIME}-watchtower"
HOLD = f"{RUNTIME}-hold"
CHANNEL = f"{RUNTIME}-channel"
RUNTIME_UID = 10001
MAX_GROWTH_MB = 80
HEALTHCHECK_INTERVAL_S = 30  # the image's HEALTHCHECK --interval
WRAPPERS = ("flageemonitor-update-config", "flageemonitor-update-image", "flageemonitor-run",
            "flageemonitor-logs", "flageemonitor-watchtower-logs")


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    wait_until(predicate, timeout, what, interval=0.5)  # each look runs the engine's CLI


def test_installer_from_server_starts_runtime_and_scoped_watchtower(
    scene: Scene, host_paths_before: dict[str, bool]
) -> None:
    v1 = scene.build("1.0.0")
    base_size = int(scene.oci.podman("image", "inspect", "--format", "{{.Size}}", scene.oci.base_image).stdout)
    size = int(scene.oci.podman("image", "inspect", "--format", "{{.Size}}", scene.image).stdout)
    layers = scene.oci.podman("history", "--format", "{{.Size}}\t{{.CreatedBy}}", scene.image).stdout
    print(f"image size {size / 1e6:.0f} MB vs base {base_size / 1e6:.0f} MB (+{(size - base_size) / 1e6:.0f} MB)")
    print("\n".join(line[:110] for line in layers.splitlines() if not line.startswith("0 B")))
    assert size - base_size <= MAX_GROWTH_MB * 1_000_000, layers

    proc = scene.install()
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert "token accepted" in proc.stderr
    assert "flageemonitor-run diagnose_env" in proc.stderr  # the summary lists the seed's checks

    # the env file: --env-file format, no quotes, mode 600
    env_text = scene.env_file.read_text()
    assert stat.S_IMODE(scene.env_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(scene.env_file.parent.stat().st_mode) == 0o700
    lines = dict(line.split("=", 1) for line in env_text.splitlines() if line and not line.startswith("#"))
    assert lines["TZ"] == "America/Sao_Paulo"
    assert lines["FLAGEEMONITOR_TOKEN"] == scene.server.token
    assert lines["FLAGEEMONITOR_REDE"] == "FLEET"
    assert lines["FLAGEEMONITOR_IMAGE"] == scene.image
    assert lines["FLAGEEMONITOR_WATCHTOWER_IMAGE"] == scene.watchtower_image  # the server's default
    assert not any(v.startswith(('"', "'")) for v in lines.values())
    for name in WRAPPERS:
        assert os.access(scene.bin / name, os.X_OK), name

    # the runtime: v1, running, the state DIRECTORY mounted, restart unless-stopped
    rt = scene.inspect(RUNTIME)
    assert rt["State"]["Running"] and scene.running_version() == "1.0.0"
    assert rt["Image"].removeprefix("sha256:") == v1
    assert rt["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    mounts = [(m["Source"], m["Destination"]) for m in rt["Mounts"] if m["Type"] == "bind"]
    assert mounts == [(str(scene.state), "/flageemonitor/state")]
    labels = rt["Config"]["Labels"]
    assert labels["com.centurylinklabs.watchtower.enable"] == "true"
    assert labels["com.centurylinklabs.watchtower.scope"] == RUNTIME
    assert (scene.state / "config_bot.json").is_file()  # the initial update-config ran
    date = scene.oci.docker("exec", RUNTIME, "date", "+%z").stdout.strip()
    assert date == "-0300"  # TZ without literal quotes reaches the container
    # the proxy runs unprivileged; the state it writes on the host belongs to that user
    assert rt["Config"]["User"] == f"{RUNTIME_UID}:{RUNTIME_UID}"
    assert scene.oci.docker("exec", RUNTIME, "id", "-u").stdout.strip() == str(RUNTIME_UID)
    assert (scene.state / "config_bot.json").stat().st_uid == RUNTIME_UID
    # the installed product carries no test fleet or development tools
    listing = "import importlib.metadata as m; print('\\n'.join(map(str, m.files('flageemonitor'))))"
    files = scene.oci.docker("exec", RUNTIME, "python", "-c", listing).stdout
    assert "flageemonitor/proxy/cli/app.py" in files
    # (the product's own fleet pages and contract are not the test fleet: devtools/fleet.py)
    assert not [f for f in files.splitlines()
                if f.startswith(("tests/", "devtools/", "flageemonitor/testing/")) or f.endswith("/fleet.py")]
    found = scene.oci.docker("exec", "--user", "0", RUNTIME, "sh", "-c",
                             "find / -xdev \\( -name devtools -o -name fleet.py -o -name conftest.py \\) -print").stdout
    assert found == ""

    # Watchtower (stand-in under the configured name): arguments, labels, mounts, restart policy
    wt = scene.inspect(WATCHTOWER)
    assert wt["State"]["Running"]
    assert wt["Config"]["Image"] == scene.watchtower_image
    assert wt["Args"][-6:] == ["--cleanup", "--label-enable", "--scope", RUNTIME, "--interval", "3600"]
    assert wt["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert wt["Config"]["Labels"]["com.centurylinklabs.watchtower.scope"] == RUNTIME
    assert wt["Config"]["Labels"]["com.centurylinklabs.watchtower.enable"] == "false"
    assert [m["Destination"] for m in wt["Mounts"]] == ["/var/run/docker.sock"]
    wait_for(lambda: "docker socket: ok" in scene.wrapper("flageemonitor-watchtower-logs", "--tail", "50").stdout,
             20, "the stand-in to reach the docker socket")
    logs = scene.wrapper("flageemonitor-watchtower-logs", "--tail", "50").stdout
    for arg in ("--cleanup", "--label-enable", "--scope", RUNTIME, "--interval", "3600"):
        assert f"watchtower-standin arg: {arg}\n" in logs

    # an action through the wrapper, against a real sshd endpoint
    (scene.state / "inventory.yaml").write_text(yaml.safe_dump({"hosts": [scene.inventory_entry]}))
    run = scene.wrapper("flageemonitor-run", "diagnose_env", "--loja", "1", "--pdv", "PDV201", "--json", timeout=180)
    report = json.loads(run.stdout)
    assert [h["host"] for h in report["hosts"]] == [scene.inventory_entry["name"]], run.stdout[-3000:]
    assert report["hosts"][0]["facts"]["distro"] == "ubuntu"  # the endpoint was reached over SSH
    assert run.returncode == (1 if report["summary"]["failures"] else 0)  # exit code passed through
    assert scene.wrapper("flageemonitor-logs", "--tail", "20").returncode == 0

    # nothing was written to the machine's real paths
    assert host_paths_before == {p: os.path.exists(p) for p in host_paths_before}


def daemon_config_version(scene: Scene) -> object:
    """The config version the running daemon works with (its heartbeat in the state dir)."""
    try:
        return json.loads((scene.state / HEARTBEAT_NAME).read_text()).get("config_version")
    except (OSError, ValueError):
        return None


def test_update_config_reaches_the_running_daemon(scene: Scene) -> None:
    before = daemon_config_version(scene)
    new_config = {
        "PARAM_PROVIDER": "arius",
        "TIMEZONE": "America/Sao_Paulo",
        "PARAM_INVENTORY": "file",
        "PARAM_INVENTORY_FILE": "/flageemonitor/state/inventory.yaml",
        "ssh": {"timeout": 7, "command_timeout": 30},
    }
    version = scene.server.set_config(new_config)
    assert version != before
    proc = scene.wrapper("flageemonitor-update-config")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((scene.state / "config_bot.json").read_text())["CONFIG_VERSION"] == version
    wait_for(lambda: daemon_config_version(scene) == version, 30,
             f"the daemon to run on config version {version} (was {before})")


def test_update_image_swaps_to_v2_keeping_state(scene: Scene) -> None:
    marker = scene.state / "kept-across-updates"
    marker.write_text("v1 was here\n")  # written by root, as a root install left its state
    os.chown(scene.state, 0, 0)
    old_id = scene.inspect(RUNTIME)["Id"]
    scene.build("2.0.0")
    proc = scene.wrapper("flageemonitor-update-image", FLAGEEMONITOR_HEALTH_TIMEOUT="120")
    assert proc.returncode == 0, proc.stderr
    assert "starting it as" in proc.stderr
    # an upgrade from a root install gives the state to the runtime's user, once
    assert "entries given to 10001:10001" in proc.stderr
    assert marker.stat().st_uid == RUNTIME_UID and scene.state.stat().st_uid == RUNTIME_UID
    # both daemons ran together only while the new one proved healthy, then the old one stopped
    overlap = re.search(r"both daemons ran together for ([0-9.]+)s \(healthy after ([0-9.]+)s", proc.stderr)
    assert overlap, proc.stderr
    print(f"swap overlap {overlap.group(1)} s (healthy after {overlap.group(2)} s)")
    assert float(overlap.group(1)) < HEALTHCHECK_INTERVAL_S
    rt = scene.inspect(RUNTIME)
    assert rt["Id"] != old_id and rt["State"]["Running"]
    assert scene.running_version() == "2.0.0"
    assert marker.read_text() == "v1 was here\n"
    assert (scene.state / "config_bot.json").is_file()
    assert sorted(scene.oci.container_names()) == sorted([RUNTIME, WATCHTOWER, CHANNEL])


def test_update_image_rolls_back_a_release_that_never_becomes_healthy(scene: Scene) -> None:
    good_id = scene.inspect(RUNTIME)["Id"]
    scene.build("3.0.0-broken", broken=True)
    proc = scene.wrapper("flageemonitor-update-image", FLAGEEMONITOR_HEALTH_TIMEOUT="20",
                         FLAGEEMONITOR_HOLD_INTERVAL="3")
    assert proc.returncode == 2, proc.stderr
    assert "ROLLED BACK" in proc.stderr
    rt = scene.inspect(RUNTIME)
    assert rt["Id"] == good_id and rt["State"]["Running"]  # the old container never stopped
    assert scene.running_version() == "2.0.0"
    assert sorted(scene.oci.container_names()) == sorted([RUNTIME, HOLD, WATCHTOWER, CHANNEL])
    # Watchtower is stopped so it does not deploy the broken tag without a health gate
    assert not scene.inspect(WATCHTOWER)["State"]["Running"]
    assert "Watchtower" in proc.stderr and "stopped" in proc.stderr
    assert scene.inspect(HOLD)["State"]["Running"]

    # a fixed release: with nobody running the wrapper, the hold container takes it through the
    # health gate, then Watchtower runs again and the hold container is gone
    scene.build("4.0.0")
    try:
        wait_for(lambda: scene.running_version() == "4.0.0", 240, "the hold container to deploy 4.0.0")
    except AssertionError:
        logs = scene.oci.docker("logs", "--tail", "60", HOLD, check=False)
        raise AssertionError(f"the hold container did not deploy 4.0.0; its log:\n{logs.stdout}{logs.stderr}") from None
    wait_for(lambda: scene.inspect(WATCHTOWER)["State"]["Running"], 60, "Watchtower to run again")
    wait_for(lambda: HOLD not in scene.oci.container_names(), 60, "the hold container to remove itself")
    assert sorted(scene.oci.container_names()) == sorted([RUNTIME, WATCHTOWER, CHANNEL])
    proc = scene.wrapper("flageemonitor-update-image")
    assert proc.returncode == 0 and "runtime unchanged" in proc.stderr, proc.stderr


def test_update_image_restores_a_removed_watchtower_without_touching_the_runtime(scene: Scene) -> None:
    rt_before = scene.inspect(RUNTIME)
    scene.oci.docker("rm", "-f", WATCHTOWER)
    missing = scene.wrapper("flageemonitor-watchtower-logs", "--tail", "5")
    assert missing.returncode != 0 and "flageemonitor-update-image" in missing.stderr
    proc = scene.wrapper("flageemonitor-update-image")
    assert proc.returncode == 0, proc.stderr
    assert "runtime unchanged" in proc.stderr
    wt = scene.inspect(WATCHTOWER)
    assert wt["State"]["Running"] and wt["Args"][-6:] == ["--cleanup", "--label-enable", "--scope", RUNTIME,
                                                          "--interval", "3600"]
    rt = scene.inspect(RUNTIME)
    assert rt["Id"] == rt_before["Id"] and rt["State"]["StartedAt"] == rt_before["State"]["StartedAt"]


def test_wrapper_with_a_wrong_runtime_name_says_where_to_fix_it(scene: Scene) -> None:
    proc = scene.wrapper("flageemonitor-logs", "--tail", "1", FLAGEEMONITOR_RUNTIME_NAME="not-the-runtime")
    assert proc.returncode == 1
    assert "FLAGEEMONITOR_RUNTIME_NAME" in proc.stderr and RUNTIME in proc.stderr


def test_wrong_token_stops_the_installer_before_any_change(scene: Scene, tmp_path: Path) -> None:
    installer = tmp_path / "install.sh"
    scene.fetch_installer(installer)
    fresh = tmp_path / "fresh-host"
    containers = scene.oci.container_names()
    q = shlex.quote
    proc = scene.sh(f"bash {q(str(installer))} wrong-token-0000 --image {q(scene.image)} --runtime-name other "
                    f"--prefix {q(str(fresh))}")
    assert proc.returncode != 0
    assert "HTTP 401" in proc.stderr and "Nothing was changed" in proc.stderr
    assert not fresh.exists()
    assert scene.oci.container_names() == containers

    # --dry-run prints every change and makes none
    password_file = tmp_path / "registry-password"
    password_file.write_text("registry-secret-0451\n")
    proc = scene.sh(f"bash {q(str(installer))} {q(scene.server.token)} --image {q(scene.image)} "
                    f"--runtime-name other --prefix {q(str(fresh))} --dry-run "
                    f"--registry-user bot --registry-password-file {q(str(password_file))}")
    assert proc.returncode == 0, proc.stderr
    assert f"would log in to {scene.oci.registry} as bot" in proc.stderr
    assert "registry-secret-0451" not in proc.stderr
    assert f"would write {fresh}/etc/flageemonitor/flageemonitor.env (mode 600)" in proc.stderr
    assert "would run" in proc.stderr and "FLAGEEMONITOR_TOKEN=********" in proc.stderr
    assert scene.server.token not in proc.stderr
    assert not fresh.exists()
    assert scene.oci.container_names() == containers

    # the token from the environment or a file (forms that keep it out of `ps`) reaches the server
    token_file = tmp_path / "token"
    token_file.write_text(scene.server.token + "\n")
    for source, env_token in ((f"--token-file {q(str(token_file))}", ""), ("", scene.server.token)):
        proc = scene.sh(f"bash {q(str(installer))} {source} --image {q(scene.image)} --runtime-name other "
                        f"--prefix {q(str(fresh))} --dry-run", FLAGEEMONITOR_TOKEN=env_token)
        assert proc.returncode == 0 and "token accepted" in proc.stderr, proc.stderr
        assert scene.server.token not in proc.stderr
    assert not fresh.exists()


def test_rerun_converges_and_uninstall_purge_leaves_nothing(scene: Scene, host_paths_before: dict[str, bool]) -> None:
    files = {p: p.read_bytes() for p in [scene.env_file, *(scene.bin / w for w in WRAPPERS)]}
    ids = {name: scene.inspect(name)["Id"] for name in (RUNTIME, WATCHTOWER)}
    proc = scene.install()
    assert proc.returncode == 0, proc.stderr
    assert {p: p.read_bytes() for p in files} == files
    assert {name: scene.inspect(name)["Id"] for name in ids} == ids  # same containers, not recreated

    header = shlex.quote(f"X-Bot-Token: {scene.server.token}")
    url = shlex.quote(f"{scene.server.url}/api/bootstrap/install.sh")
    prefix = shlex.quote(str(scene.prefix))
    proc = scene.sh(f"curl -fsSL -H {header} {url} | bash -s -- --uninstall --purge --prefix {prefix}")
    assert proc.returncode == 0, proc.stderr
    assert scene.oci.container_names() == []
    assert not (scene.prefix / "etc/flageemonitor").exists()
    assert not scene.state.exists()
    assert not any((scene.bin / w).exists() for w in WRAPPERS)
    assert scene.oci.docker("image", "inspect", scene.image, check=False).returncode != 0
    assert host_paths_before == {p: os.path.exists(p) for p in host_paths_before}


def test_legacy_container_root_keeps_the_state_under_ariusmonitor(scene: Scene, tmp_path: Path) -> None:
    prefix = tmp_path / "legacy-host"
    proc = scene.install("--container-root", "/ariusmonitor", "--runtime-name", "fm-legacy", prefix=prefix)
    try:
        assert proc.returncode == 0, proc.stderr[-4000:]
        rt = scene.inspect("fm-legacy")
        assert [m["Destination"] for m in rt["Mounts"] if m["Type"] == "bind"] == ["/ariusmonitor/state"]
        env = dict(e.split("=", 1) for e in rt["Config"]["Env"])
        assert env["FLAGEEMONITOR_STATE_DIR"] == "/ariusmonitor/state"
        assert (prefix / "var/lib/flageemonitor/config_bot.json").is_file()
        same = scene.oci.docker("exec", "fm-legacy", "cat", "/ariusmonitor/state/config_bot.json").stdout
        assert same == (prefix / "var/lib/flageemonitor/config_bot.json").read_text()
        # SIGTERM reaches the daemon through tini: a clean exit, not a kill after the grace period
        assert rt["Config"]["StopTimeout"] == 30
        scene.oci.docker("stop", "fm-legacy")
        assert scene.inspect("fm-legacy")["State"]["ExitCode"] == 0
        assert "daemon stopped" in scene.oci.docker("logs", "--tail", "3", "fm-legacy").stdout
    finally:
        installer = tmp_path / "install.sh"
        scene.fetch_installer(installer)
        q = shlex.quote
        removed = scene.sh(f"bash {q(str(installer))} --uninstall --purge --prefix {q(str(prefix))}")
        assert removed.returncode == 0, removed.stderr
    assert "fm-legacy" not in scene.oci.container_names()
