"""The publish gate names a module PyArmor cannot protect: real PyArmor (trial mode, offline),
on a generated module over the trial licence's size limit."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deploy.publish import pyarmor_failures

pytestmark = pytest.mark.slow


def test_a_module_over_the_trial_limit_is_named(tmp_path: Path) -> None:
    pyarmor = Path(sys.executable).parent / "pyarmor"
    assert pyarmor.exists() or shutil.which("pyarmor"), "pyarmor missing: uv sync installs it (dev group)"
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "small.py").write_text("def f(x):\n    return x + 1\n")
    (pkg / "too_big.py").write_text("".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(6000)))
    proc = subprocess.run([str(pyarmor), "gen", "-O", str(tmp_path / "out"), "-r", str(pkg)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0
    failures = pyarmor_failures(proc.stdout + proc.stderr)
    assert failures and failures[0].startswith("too_big.py: "), proc.stdout + proc.stderr
    assert "license" in failures[0]
