"""The installer templates: embedded wrappers up to date, server rendering, shell hygiene."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from flageemonitor import deploy
from flageemonitor.deploy import embed
from flageemonitor.server import bootstrap

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "src/flageemonitor/deploy"
SHELL_FILES = [
    DEPLOY / "linux/install.sh.in",
    DEPLOY / "linux/flageemonitor-wrapper.sh",
    ROOT / "deploy/build-image.sh",
    ROOT / "deploy/image/entrypoint.sh",
    ROOT / "deploy/image/run_action.sh",
    ROOT / "deploy/image/update_config.sh",
    ROOT / "scripts/demo",
]
HOSTILE = "x'; touch /tmp/pwned-by-installer; echo '$(id) `id` \" \\"


def values(**override: str) -> dict[str, str]:
    base = {
        "DEFAULT_SERVER_URL": "https://control.example",
        "DEFAULT_API_BASE": "https://control.example/api/ingest",
        "DEFAULT_REDE": "REDE1",
        "DEFAULT_IMAGE": "ghcr.io/flagee-cloud/flageemonitor-client:latest",
        "DEFAULT_RUNTIME_NAME": "flageemonitor",
        "DEFAULT_CONTAINER_ROOT": "/flageemonitor",
        "DEFAULT_TIMEZONE": "America/Sao_Paulo",
        "DEFAULT_WATCHTOWER_IMAGE": "nickfedor/watchtower:1.20.2",
        "DEFAULT_WATCHTOWER_INTERVAL": "300",
        "INSTALLER_VERSION": "1.2.3",
    }
    base.update(override)
    return base


def run_installer(script: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL, env=env, check=False)


@pytest.mark.parametrize("template", embed.TEMPLATES)
def test_embedded_wrappers_match_their_files(template: str) -> None:
    # run `python -m flageemonitor.deploy.embed` after editing a wrapper
    assert embed.rendered_template(template) == deploy.read(template)


def test_embed_refuses_a_wrapper_containing_the_terminator() -> None:
    template = "a\n# >>> embedded: w.sh\ncat <<'FLAGEEMONITOR_WRAPPER_EOF'\nold\nFLAGEEMONITOR_WRAPPER_EOF\n"
    with pytest.raises(embed.EmbedError):
        embed.embed(template, "FLAGEEMONITOR_WRAPPER_EOF", {"w.sh": "echo\nFLAGEEMONITOR_WRAPPER_EOF\n"})
    out = embed.embed(template, "FLAGEEMONITOR_WRAPPER_EOF", {"w.sh": "new\n"})
    assert out == "a\n# >>> embedded: w.sh\ncat <<'FLAGEEMONITOR_WRAPPER_EOF'\nnew\nFLAGEEMONITOR_WRAPPER_EOF\n"


@pytest.mark.parametrize("path", SHELL_FILES, ids=lambda p: p.name)
def test_shell_files_are_shellcheck_clean(path: Path) -> None:
    assert shutil.which("shellcheck"), "shellcheck missing: run scripts/setup.sh"
    proc = subprocess.run(["shellcheck", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout


def test_rendered_installer_is_valid_bash_even_with_hostile_values(tmp_path: Path) -> None:
    rendered = bootstrap.render_linux(values(DEFAULT_REDE=HOSTILE, DEFAULT_SERVER_URL=HOSTILE)).body
    script = tmp_path / "install.sh"
    script.write_text(rendered)
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    proc = run_installer(script, "--help")
    assert proc.returncode == 0
    assert "1.2.3" in proc.stdout and "--registry-password-stdin" in proc.stdout
    assert not Path("/tmp/pwned-by-installer").exists()


def test_truncated_download_runs_nothing(tmp_path: Path) -> None:
    body = bootstrap.render_linux(values()).body
    main_at = body.rindex('main "$@"')
    for cut in (len(body) // 4, len(body) // 2, main_at - 1, main_at + 3):
        script = tmp_path / f"cut-{cut}.sh"
        script.write_text(body[:cut])
        proc = run_installer(script, "TOKEN", "--prefix", str(tmp_path / "host"))
        assert "flageemonitor-install" not in proc.stderr, (cut, proc.stderr)
        assert not (tmp_path / "host").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the client token is required"),
        (["T", "--watchtower-interval", "10"], "from 30 to 604800"),
        (["T", "--registry-password", "secret"], "is not accepted"),
        (["T", "--registry-user", "bot"], "needs --registry-password-stdin"),
        (["T", "--runtime-name", "bad name;rm"], "--runtime-name"),
        (["T", "--image", "x$(id)"], "not an image reference"),
        (["T", "--prefix", "relative/dir"], "absolute path"),
        (["T", "--bogus"], "unknown option"),
    ],
)
def test_installer_rejects_bad_options_before_touching_anything(tmp_path: Path, args: list[str], message: str) -> None:
    script = tmp_path / "install.sh"
    script.write_text(bootstrap.render_linux(values()).body)
    proc = run_installer(script, *args)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "secret" not in proc.stderr or "--registry-password" in " ".join(args)


def test_wrapper_reads_the_env_file_as_data_never_as_shell(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    env_file = tmp_path / "flageemonitor.env"
    env_file.write_text(f"FLAGEEMONITOR_REDE=$(touch {marker})\nFLAGEEMONITOR_RUNTIME_NAME=`touch {marker}`\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "flageemonitor-logs"
    shutil.copy(DEPLOY / "linux/flageemonitor-wrapper.sh", wrapper)
    # no engine reachable here: the wrapper reads the file, then stops at the docker check
    env = {**os.environ, "FLAGEEMONITOR_ENV_FILE": str(env_file), "DOCKER_HOST": f"unix://{tmp_path}/none.sock"}
    proc = subprocess.run(["bash", str(wrapper)], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "docker" in proc.stderr.lower()
    assert not marker.exists()


def test_wrapper_installed_under_an_unknown_name_refuses(tmp_path: Path) -> None:
    env_file = tmp_path / "flageemonitor.env"
    env_file.write_text("FLAGEEMONITOR_RUNTIME_NAME=x\n")
    wrapper = tmp_path / "flageemonitor-something"
    shutil.copy(DEPLOY / "linux/flageemonitor-wrapper.sh", wrapper)
    proc = subprocess.run(["bash", str(wrapper)], env={**os.environ, "FLAGEEMONITOR_ENV_FILE": str(env_file)},
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "unknown command name 'flageemonitor-something'" in proc.stderr


def test_the_linux_wrapper_only_passes_arguments() -> None:
    """Swap, health wait, rollback and Watchtower live in `flageemonitor host`, not in shell."""
    text = (DEPLOY / "linux/flageemonitor-wrapper.sh").read_text()
    assert len(text.splitlines()) <= 40
    for decision in ("rename", "Healthcheck", "sleep", "--cleanup", "docker tag", "sha256sum"):
        assert decision not in text, decision
    assert 'host update-image' in text and 'host update-config "$@"' in text


def test_installed_wrapper_names_its_env_file_on_the_second_line(tmp_path: Path) -> None:
    """The installer writes the wrapper from pieces: the prefix is never substituted into its text."""
    script = tmp_path / "install.sh"
    script.write_text(bootstrap.render_linux(values()).body.removesuffix('main "$@"\n'))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env_file = "/srv/fm-host.1/etc/flageemonitor/flageemonitor.env"
    proc = subprocess.run(["bash", "-c", 'source "$1"; ENV_FILE=$2 BIN_DIR=$3 DRY_RUN=0; install_wrappers',
                           "bash", str(script), env_file, str(bin_dir)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = (bin_dir / "flageemonitor-run").read_text().splitlines()
    assert lines[:2] == ["#!/usr/bin/env bash", f"FLAGEEMONITOR_DEFAULT_ENV_FILE='{env_file}'"]
    assert lines[2:] == (DEPLOY / "linux/flageemonitor-wrapper.sh").read_text().splitlines()[1:]
