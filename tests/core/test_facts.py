"""Parsing of the one-round-trip endpoint probe."""

from __future__ import annotations

from flageemonitor.core.facts import MARK, PROBE_COMMAND, normalize_arch, parse_probe


def probe(uname: str, os_release: str = "", lsb: str = "", slack: str = "") -> str:
    return (
        f"{MARK}uname\n{uname}\n{MARK}os-release\n{os_release}\n{MARK}lsb-release\n{lsb}\n"
        f"{MARK}slackware-version\n{slack}\n{MARK}end\n"
    )


def test_ubuntu_from_os_release() -> None:
    facts = parse_probe(probe("x86_64", 'NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="22.04"\n'))
    assert (facts.distro, facts.version, facts.arch, facts.source) == ("ubuntu", "22.04", "x86_64", "os-release")


def test_mint_id_is_normalised() -> None:
    facts = parse_probe(probe("x86_64", 'ID=linuxmint\nVERSION_ID="21.3"\n'))
    assert (facts.distro, facts.version) == ("mint", "21.3")


def test_slackware_13_without_os_release_is_detected_from_slackware_version() -> None:
    facts = parse_probe(probe("i686", slack="Slackware 13.37.0\n"))
    assert (facts.distro, facts.version, facts.arch, facts.source) == (
        "slackware", "13.37", "i686", "slackware-version")


def test_lsb_release_is_used_when_os_release_is_missing() -> None:
    facts = parse_probe(probe("i686", lsb="DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=14.04\n"))
    assert (facts.distro, facts.version, facts.arch) == ("ubuntu", "14.04", "i686")


def test_crlf_output_from_a_pty_parses() -> None:
    facts = parse_probe(probe("x86_64", "ID=ubuntu\nVERSION_ID=18.04").replace("\n", "\r\n"))
    assert (facts.distro, facts.version) == ("ubuntu", "18.04")


def test_nothing_known_is_unknown() -> None:
    facts = parse_probe(probe("aarch64"))
    assert (facts.distro, facts.version, facts.arch) == ("unknown", "", "aarch64")
    assert parse_probe("").arch == "unknown"


def test_32_bit_machine_names_become_i686() -> None:
    for raw in ("i386", "i486", "i586", "i686", "x86"):
        assert normalize_arch(raw) == "i686"
    assert normalize_arch("amd64") == "x86_64"


def test_probe_command_reads_every_release_file_once() -> None:
    for needle in ("uname -m", "/etc/os-release", "/etc/lsb-release", "/etc/slackware-version"):
        assert PROBE_COMMAND.count(needle) == 1
    assert "{" not in PROBE_COMMAND  # old shells: no brace groups
