"""Fixtures shared by the change-model tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.local_shell import LocalShell


@pytest.fixture
def shell(tmp_path: Path) -> LocalShell:
    """A local busybox session whose endpoint tree is an empty directory (see LocalShell)."""
    root = tmp_path / "endpoint"
    root.mkdir()
    return LocalShell(root)
