"""The change model for endpoint-changing actions: read-only probes, typed changes, service
control, verification, and the `ChangeAction` base class that composes them (DESIGN.md,
"Endpoint-changing actions: the change model")."""

from flageemonitor.proxy.changes.action import ChangeAction, Plan, Skip
from flageemonitor.proxy.changes.model import (
    ApplyContext,
    Change,
    PutFile,
    RemovePath,
    RunCommand,
    ServiceChange,
    UnpackArchive,
    commit,
    kept_path,
    rollback,
    sha256_hex,
    unified_diff,
)
from flageemonitor.proxy.changes.probe import FileState, Probe, ProbeResult
from flageemonitor.proxy.changes.service import InitKind, Service, init_probe
from flageemonitor.proxy.changes.verify import ProcessState, parse_process, process_probe, wait_until

__all__ = [
    "ApplyContext", "Change", "ChangeAction", "FileState", "InitKind", "Plan", "Probe", "ProbeResult",
    "ProcessState", "PutFile", "RemovePath", "RunCommand", "Service", "ServiceChange", "Skip", "UnpackArchive",
    "commit", "init_probe", "kept_path", "parse_process", "process_probe", "rollback", "sha256_hex",
    "unified_diff", "wait_until",
]
