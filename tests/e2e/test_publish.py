"""The publish gate on the real engine and registry: a protected build is checked (no plain
product source, daemon healthy, `run diagnose_env` against a real persona) and pushed; an image
with plain sources is refused and nothing reaches the registry."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from devtools.oci import Oci

from tests.e2e.conftest import ROOT, host_ca_bundle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = "flagee-cloud/flageemonitor-publish"
MAX_GROWTH_MB = 80


def publish(oci: Oci, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deploy.publish", "--engine", "podman", *args], cwd=ROOT,
                          env=oci.env, capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL,
                          check=False)


def registry_tags(oci: Oci) -> list[str]:
    try:
        with urllib.request.urlopen(f"http://{oci.registry}/v2/{REPO}/tags/list", timeout=10) as r:
            return list(json.load(r).get("tags") or [])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise


def test_publish_refuses_an_image_with_plain_sources(oci: Oci) -> None:
    ref = f"{oci.registry}/{REPO}:plain"
    build = subprocess.run([str(ROOT / "deploy/build-image.sh"), "--engine", "podman", "--tag", ref,
                            "--base", oci.base_image, "--network", "host", *host_ca_bundle()],
                           env=oci.env, capture_output=True, text=True, timeout=900, check=False)
    assert build.returncode == 0, build.stderr[-3000:]
    proc = publish(oci, "--tag", ref, "--no-build")
    assert proc.returncode == 1, proc.stderr
    assert "REFUSED: the image's runtime holds plain product source" in proc.stderr
    assert "flageemonitor/__init__.py" in proc.stderr and "nothing was pushed" in proc.stderr
    assert "plain" not in registry_tags(oci)


def test_publish_builds_the_protected_runtime_checks_it_and_pushes(oci: Oci) -> None:
    ref = f"{oci.registry}/{REPO}:protected"
    proc = publish(oci, "--tag", ref, "--base", oci.base_image, "--network", "host", *host_ca_bundle())
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "every product module is protected by PyArmor" in proc.stderr
    assert "smoke: daemon started, health ok" in proc.stderr
    assert "smoke: run diagnose_env reached FLEET-LOJA001-PDV201" in proc.stderr
    assert "protected" in registry_tags(oci)
    labels = json.loads(oci.podman("image", "inspect", "--format", "{{json .Labels}}", ref).stdout)
    assert labels["io.flageemonitor.protected"] == "1"
    size = int(oci.podman("image", "inspect", "--format", "{{.Size}}", ref).stdout)
    base = int(oci.podman("image", "inspect", "--format", "{{.Size}}", oci.base_image).stdout)
    print(f"protected image {size / 1e6:.0f} MB vs base {base / 1e6:.0f} MB (+{(size - base) / 1e6:.0f} MB)")
    assert size - base <= MAX_GROWTH_MB * 1_000_000
