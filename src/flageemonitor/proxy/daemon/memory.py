"""Keep the long-running daemon's resident memory flat (glibc malloc only; no-ops elsewhere).

A run imports the SSH stack and allocates per-host buffers; without help glibc keeps the freed
memory in per-thread arenas. The daemon caps the number of arenas at start and hands freed
memory back to the kernel after its runs finish (`malloc_trim`), measured by
`benchmarks/soak`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

log = logging.getLogger("flageemonitor.daemon")

_M_ARENA_MAX = -8  # from <malloc.h>


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


_LIBC = _libc()


def limit_arenas(count: int = 2) -> None:
    if _LIBC is not None:
        _LIBC.mallopt(_M_ARENA_MAX, count)


def release() -> None:
    """Collect garbage and return free heap pages to the kernel."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
