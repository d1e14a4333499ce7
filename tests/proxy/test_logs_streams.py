"""Log lines follow the process's current standard streams."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest

from flageemonitor.proxy import logs


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_log_lines_reach_the_current_stderr_after_it_was_swapped(
    monkeypatch: pytest.MonkeyPatch, restore_root_logger: None
) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    logs.setup(stream=sys.stderr)
    logging.getLogger("flageemonitor.test").warning("first line")
    first.close()  # what a command runner does with the stream of a finished invocation
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("flageemonitor.test").warning("second line")
    assert "second line" in second.getvalue()
    assert "Logging error" not in second.getvalue()


def test_an_explicit_stream_is_kept(restore_root_logger: None) -> None:
    target = io.StringIO()
    logs.setup(stream=target)
    logging.getLogger("flageemonitor.test").warning("to the given stream")
    assert "to the given stream" in target.getvalue()
