"""Windows installer and wrappers. PowerShell cannot run on this machine: these tests check what
can be checked as text — rendering, encoding, and the docker command lines the scripts build.
Not verified here: that the scripts run under Windows PowerShell 5.1 / PowerShell 7, icacls, the
Administrator check, Invoke-WebRequest error handling, and Docker Desktop path handling."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flageemonitor import deploy
from flageemonitor.server import bootstrap
from tests.deploy.test_templates import HOSTILE, values

DEPLOY = Path(deploy.__file__).resolve().parent
PS_FILES = [*sorted((DEPLOY / "windows").glob("*.ps1")), DEPLOY / "windows/install.ps1.in"]
WRAPPERS = ("flageemonitor-update-config", "flageemonitor-update-image", "flageemonitor-run", "flageemonitor-logs",
            "flageemonitor-watchtower-logs")


def words(text: str, function: str) -> list[str]:
    """Every single-quoted literal and "double-quoted" template in a function body, in order."""
    body = text[text.index(f"function {function}"):]
    body = body[: body.index("\n}\n")]
    return [m.group(1) if m.group(1) is not None else m.group(2)
            for m in re.finditer(r"'([^']*)'|\"([^\"]*)\"", body)]


@pytest.mark.parametrize("path", PS_FILES, ids=lambda p: p.name)
def test_powershell_files_are_utf8_without_bom(path: Path) -> None:
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    raw.decode("utf-8")
    assert b"\r\n" not in raw


def test_every_windows_wrapper_exists_and_is_embedded_in_the_installer() -> None:
    template = deploy.read("windows/install.ps1.in")
    for name in (*WRAPPERS, "flageemonitor-common"):
        text = (DEPLOY / "windows" / f"{name}.ps1").read_text(encoding="utf-8")
        assert f"# >>> embedded: windows/{name}.ps1" in template
        assert text.rstrip("\n") in template


def test_rendered_windows_installer_quotes_hostile_values_and_stays_bom_free() -> None:
    rendered = bootstrap.render_windows(values(DEFAULT_REDE=HOSTILE))
    body = rendered.body.encode("utf-8")
    assert not body.startswith(b"\xef\xbb\xbf")
    assert "# @@FLAGEEMONITOR_DEFAULTS@@" not in rendered.body
    line = next(line for line in rendered.body.splitlines() if line.startswith("$DefaultRede = "))
    assert line == "$DefaultRede = " + bootstrap.powershell_literal(HOSTILE)
    # the assignments come after param(): PowerShell requires param() to be the first statement
    assert rendered.body.index("param(") < rendered.body.index("$DefaultRede = ")
    assert rendered.body.rstrip().endswith("Main")


def test_windows_installer_writes_files_without_bom_and_takes_no_password_argument() -> None:
    text = deploy.read("windows/install.ps1.in")
    assert "New-Object System.Text.UTF8Encoding($false)" in text
    assert "[System.IO.File]::WriteAllText($tmp, $text, $Utf8NoBom)" in text
    assert "Set-Content" not in text and "ConvertTo-Json" not in text  # the original's BOM and round-trip bugs
    assert "$RegistryPassword " not in text and "RegistryPasswordFile" in text
    assert "'X-Bot-Token' = $ClientToken" in text  # the token in a header, never in the URL
    assert "Nothing was changed on this host." in text


def test_windows_wrappers_pass_arguments_to_the_update_engine_only() -> None:
    """The swap, health wait, rollback and Watchtower logic live in `flageemonitor host`; the
    PowerShell side reads the env file as data and starts the engine's one-shot container."""
    common = (DEPLOY / "windows/flageemonitor-common.ps1").read_text(encoding="utf-8")
    read = {n: (DEPLOY / "windows" / f"{n}.ps1").read_text(encoding="utf-8") for n in WRAPPERS}
    for name, text in {**read, "flageemonitor-common": common}.items():
        assert len(text.splitlines()) <= 40, name
        for decision in ("rename", "Healthcheck", "Start-Sleep", "--cleanup", "tag "):
            assert decision not in text, (name, decision)
    body = common[common.index("function Invoke-Host"):]
    assert "run --rm --user 0:0 --network none" in body
    assert "FLAGEEMONITOR_HOST_ENV_FILE=$($script:EnvFile)" in words(common, "Invoke-Host")
    assert "host @args" in common
    assert "//var/run/docker.sock:/var/run/docker.sock" in common
    assert "$($script:EnvFile):/run/flageemonitor/host.env:ro" in common
    assert "ReadAllLines($script:EnvFile)" in common and "Invoke-Expression" not in common  # data, not code
    assert "exit (Invoke-Host update-image)" in read["flageemonitor-update-image"]
    assert "exit (Invoke-Host update-config @args)" in read["flageemonitor-update-config"]
    assert "exec @tty $script:Runtime flageemonitor run @args" in read["flageemonitor-run"]
    for text in read.values():
        assert ". (Join-Path $PSScriptRoot 'flageemonitor-common.ps1')" in text
        assert "param(" not in text  # no parameter named $Args shadowing the automatic variable


def test_every_installer_parameter_is_validated_by_powershell_binding() -> None:
    """Binding refuses a missing, empty, malformed or out-of-range value before the script runs
    (checked as text: PowerShell is not available on this machine)."""
    text = deploy.read("windows/install.ps1.in")
    params = text[text.index("param(") + len("param("): text.index("\n)\n")]
    declared = re.findall(r"^\s*(.*)\$(\w+)", params, re.M)
    assert {name for _, name in declared} >= {"ClientToken", "TokenFile", "ApiBase", "Prefix", "WatchtowerInterval"}
    for attributes, name in declared:
        if "[switch]" in attributes:
            continue
        assert re.search(r"\[Validate(Pattern|Range|NotNullOrEmpty)\(", attributes), name
    assert "[ValidateRange(30, 604800)][int]$WatchtowerInterval" in params
    assert "$env:FLAGEEMONITOR_TOKEN" in text and "-TokenFile" in text
