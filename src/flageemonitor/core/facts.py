"""Endpoint facts (distro, version, arch): the remote probe and the parser of its output.

One remote round trip prints `uname -m` and the release files between markers. Slackware 13
has no `/etc/os-release`, only `/etc/slackware-version` ("Slackware 13.37.0"), so the files
are consulted in this order: os-release, lsb-release, slackware-version.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

MARK = "@@flagee:"

# POSIX sh, no braces or bashisms, so busybox and Slackware-era shells run it unchanged.
PROBE_COMMAND = (
    f"echo '{MARK}uname'; uname -m 2>/dev/null; "
    f"echo '{MARK}os-release'; cat /etc/os-release 2>/dev/null; "
    f"echo '{MARK}lsb-release'; cat /etc/lsb-release 2>/dev/null; "
    f"echo '{MARK}slackware-version'; cat /etc/slackware-version 2>/dev/null; "
    f"echo '{MARK}end'"
)

_ARCH = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "i386": "i686",
    "i486": "i686",
    "i586": "i686",
    "i686": "i686",
    "x86": "i686",
}
_DISTRO = {
    "linuxmint": "mint",
    "mint": "mint",
    "ubuntu": "ubuntu",
    "slackware": "slackware",
    "slack": "slackware",
}


@dataclass(frozen=True)
class EndpointFacts:
    distro: str
    version: str
    arch: str
    raw_arch: str = ""
    source: str = ""  # which file gave distro/version

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EndpointFacts:
        return cls(
            distro=str(data.get("distro", "unknown")),
            version=str(data.get("version", "")),
            arch=str(data.get("arch", "unknown")),
            raw_arch=str(data.get("raw_arch", "")),
            source=str(data.get("source", "")),
        )


def normalize_arch(raw: str) -> str:
    value = raw.strip().lower()
    return _ARCH.get(value, value or "unknown")


def normalize_distro(raw: str) -> str:
    value = raw.strip().strip("\"'").lower()
    if not value:
        return "unknown"
    if value in _DISTRO:
        return _DISTRO[value]
    if "slack" in value:
        return "slackware"
    if "mint" in value:
        return "mint"
    return value


def split_sections(output: str, mark: str = MARK) -> dict[str, list[str]]:
    """Lines of a marker-delimited remote output, by section name (`<mark>name` lines open one)."""
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in output.replace("\r\n", "\n").split("\n"):
        if line.startswith(mark):
            current = line[len(mark):].strip()
            sections.setdefault(current, [])
        elif current is not None:
            sections[current].append(line)
    return sections


def _key_values(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        out[key.strip()] = value.strip().strip("\"'")
    return out


def _slackware_version(lines: list[str]) -> str | None:
    text = " ".join(lines)
    match = re.search(r"slackware\S*\s+(\d+(?:\.\d+)*)", text, re.IGNORECASE)
    if not match:
        return None
    parts = match.group(1).split(".")
    return ".".join(parts[:2])  # 13.37.0 -> 13.37


def parse_probe(output: str) -> EndpointFacts:
    """Parse the output of PROBE_COMMAND into normalised facts (unknown fields say so)."""
    sec = split_sections(output)
    raw_arch = next((ln.strip() for ln in sec.get("uname", []) if ln.strip()), "")
    arch = normalize_arch(raw_arch)

    osr = _key_values(sec.get("os-release", []))
    if osr.get("ID"):
        return EndpointFacts(normalize_distro(osr["ID"]), osr.get("VERSION_ID", ""), arch, raw_arch,
                             "os-release")
    lsb = _key_values(sec.get("lsb-release", []))
    if lsb.get("DISTRIB_ID"):
        return EndpointFacts(normalize_distro(lsb["DISTRIB_ID"]), lsb.get("DISTRIB_RELEASE", ""),
                             arch, raw_arch, "lsb-release")
    slack = _slackware_version(sec.get("slackware-version", []))
    if slack:
        return EndpointFacts("slackware", slack, arch, raw_arch, "slackware-version")
    return EndpointFacts("unknown", "", arch, raw_arch, "")
