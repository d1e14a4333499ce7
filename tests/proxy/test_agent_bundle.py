"""The agent bundle source: a real local HTTP server or a directory, SHA256SUMS and pinned
checksums, the opt-in for unverified files, the cache by checksum, and every fault failing the
run's preparation with one line naming the URL or file (fast suite)."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

from flageemonitor.core.config_model import BotConfig, validate_config
from flageemonitor.core.errors import PrepareFailed
from flageemonitor.proxy.agent.bundle import BundleFetcher, parse_sums, public_url
from flageemonitor.proxy.agent.layout import ARCHIVES, asset_names
from flageemonitor.proxy.agent.plan import inspect_archive
from tests.fixtures.bundle_repo import archive, write_repository, write_sums
from tests.fixtures.repo_server import serve_directory

REQUIRED = [ARCHIVES["x86_64"], *asset_names()]
OPTIONAL = [ARCHIVES["i686"]]


def cfg(**extra: object) -> BotConfig:
    return validate_config({"PARAM_REDE": "R", **extra})


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_http_repository_with_sums_is_fetched_once_then_served_from_the_cache(tmp_path: Path) -> None:
    repo = write_repository(tmp_path / "repo")
    with serve_directory(repo) as (url, hits):
        first = BundleFetcher(cfg(PARAM_REPO_URL=url), tmp_path / "state").fetch(REQUIRED, OPTIONAL)
        assert first.verified and first.checked_by == "SHA256SUMS" and not first.absent
        assert sorted(first.downloaded) == sorted(REQUIRED + OPTIONAL)
        assert first.files["ariusmonitor.tar.gz"].sha256 == sha(repo / "ariusmonitor.tar.gz")
        assert (tmp_path / "state" / "bundles" / sha(repo / "geral.conf")).is_file()
        hits.clear()
        second = BundleFetcher(cfg(PARAM_REPO_URL=url), tmp_path / "state").fetch(REQUIRED, OPTIONAL)
    assert second.downloaded == [] and hits == ["/SHA256SUMS"]  # only the checksum list is read again
    assert second.files["geral.conf"].read() == (repo / "geral.conf").read_bytes()


def test_optional_i686_archive_absent_from_the_sums_is_not_fetched(tmp_path: Path) -> None:
    repo = write_repository(tmp_path / "repo", i686=False)
    with serve_directory(repo) as (url, hits):
        bundle = BundleFetcher(cfg(PARAM_REPO_URL=url), tmp_path / "state").fetch(REQUIRED, OPTIONAL)
    assert bundle.absent == ["ariusmonitor-i686.tar.gz"] and "/ariusmonitor-i686.tar.gz" not in hits
    assert "not in the repository: ariusmonitor-i686.tar.gz" in bundle.summary()


def test_missing_required_file_fails_naming_the_url(tmp_path: Path) -> None:
    repo = write_repository(tmp_path / "repo")
    (repo / "MonitoraImpressora64").unlink()
    with serve_directory(repo) as (url, _), pytest.raises(PrepareFailed) as err:
        BundleFetcher(cfg(PARAM_REPO_URL=url), tmp_path / "state").fetch(REQUIRED, OPTIONAL)
    assert str(err.value) == f"{url}/MonitoraImpressora64: HTTP 404 (not in the repository)"


def test_checksum_mismatch_fails_and_caches_nothing(tmp_path: Path) -> None:
    repo = write_repository(tmp_path / "repo")
    (repo / "ariusmonitor.tar.gz").write_bytes(archive("tampered"))
    with serve_directory(repo) as (url, _), pytest.raises(PrepareFailed, match="checksum mismatch") as err:
        BundleFetcher(cfg(PARAM_REPO_URL=url), tmp_path / "state").fetch(REQUIRED, OPTIONAL)
    assert f"{url}/ariusmonitor.tar.gz" in str(err.value)
    assert sha(repo / "ariusmonitor.tar.gz") not in {p.name for p in (tmp_path / "state" / "bundles").iterdir()}
    assert not list((tmp_path / "state" / "bundles").glob(".download-*"))


def test_server_down_fails_naming_the_url(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PrepareFailed, match=rf"http://127.0.0.1:{port}/SHA256SUMS: ConnectError"):
        BundleFetcher(cfg(PARAM_REPO_URL=f"http://127.0.0.1:{port}"), tmp_path / "s").fetch(REQUIRED)


def test_redirect_to_another_host_is_refused_same_host_followed(tmp_path: Path) -> None:
    repo = write_repository(tmp_path / "repo")
    with serve_directory(repo, ip="127.0.0.2") as (other, _):
        redirects = {"/SHA256SUMS": f"{other}/SHA256SUMS", "/geral.conf": "/moved/geral.conf"}
        (repo / "moved").mkdir()
        (repo / "moved" / "geral.conf").write_bytes((repo / "geral.conf").read_bytes())
        with serve_directory(repo, redirects=redirects) as (url, _):
            with pytest.raises(PrepareFailed, match="redirected to another host"):
                BundleFetcher(cfg(PARAM_REPO_URL=url), tmp_path / "state").fetch(REQUIRED)
            del redirects["/SHA256SUMS"]
        with serve_directory(repo, redirects=redirects) as (url, hits):
            bundle = BundleFetcher(cfg(PARAM_REPO_URL=url), tmp_path / "state2").fetch(["geral.conf"])
    assert bundle.files["geral.conf"].read() == (repo / "geral.conf").read_bytes() and "/moved/geral.conf" in hits


def test_no_checksums_is_refused_unless_opted_in_and_then_reported_unverified(tmp_path: Path) -> None:
    repo = write_repository(tmp_path / "repo", sums=False)
    with pytest.raises(PrepareFailed, match=r"no checksum .* PARAM_ALLOW_UNVERIFIED_BUNDLE"):
        BundleFetcher(cfg(PARAM_LOCAL_REPO_DIR=str(repo)), tmp_path / "state").fetch(REQUIRED, OPTIONAL)
    bundle = BundleFetcher(cfg(PARAM_LOCAL_REPO_DIR=str(repo), PARAM_ALLOW_UNVERIFIED_BUNDLE=True),
                           tmp_path / "state").fetch(REQUIRED, OPTIONAL)
    assert not bundle.verified and "UNVERIFIED" in bundle.summary() and bundle.to_dict()["verified"] is False


def test_pins_verify_files_alone_and_must_agree_with_the_sums(tmp_path: Path) -> None:
    repo = write_repository(tmp_path / "repo", sums=False)
    pins = {name: sha(repo / name) for name in REQUIRED}
    bundle = BundleFetcher(cfg(PARAM_LOCAL_REPO_DIR=str(repo), PARAM_AGENT_BUNDLE_SHA256=pins),
                           tmp_path / "state").fetch(REQUIRED, OPTIONAL)
    assert bundle.verified and bundle.checked_by == "PARAM_AGENT_BUNDLE_SHA256"
    assert bundle.absent == ["ariusmonitor-i686.tar.gz"]  # an optional file nothing pins is not used
    write_sums(repo)
    wrong = {**pins, "geral.conf": "0" * 64}
    with pytest.raises(PrepareFailed, match="disagree"):
        BundleFetcher(cfg(PARAM_LOCAL_REPO_DIR=str(repo), PARAM_AGENT_BUNDLE_SHA256=wrong),
                      tmp_path / "state").fetch(REQUIRED, OPTIONAL)


def test_bad_sources_fail_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(PrepareFailed, match="not a directory"):
        BundleFetcher(cfg(PARAM_LOCAL_REPO_DIR=str(tmp_path / "nope")), tmp_path).fetch(REQUIRED)
    with pytest.raises(PrepareFailed, match="expected an http:// or https:// URL"):
        BundleFetcher(cfg(PARAM_REPO_URL="file:///etc"), tmp_path).fetch(REQUIRED)


def test_credentials_in_the_repository_url_never_reach_a_message() -> None:
    assert public_url("https://user:s3cret@repo.example:8443/path/") == "https://repo.example:8443/path/"


def test_sums_parser_takes_sha256sum_output_only() -> None:
    text = f"{'a' * 64}  geral.conf\n{'B' * 64} *bin/libs.tar.gz\nnot a line\n{'c' * 63}  short\n"
    assert parse_sums(text) == {"geral.conf": "a" * 64, "libs.tar.gz": "b" * 64}


def test_archive_contract_is_checked(tmp_path: Path) -> None:
    good = inspect_archive("ariusmonitor.tar.gz", archive("6.0.14-1"))
    assert good.version == "6.0.14-1" and "/ariusmonitor/utilities/setup.sh" in good.members
    with pytest.raises(PrepareFailed, match="outside ariusmonitor/"):
        inspect_archive("x.tar.gz", archive(extra={"etc/passwd": b"x"}))
    with pytest.raises(PrepareFailed, match="outside ariusmonitor/"):
        inspect_archive("x.tar.gz", archive(extra={"ariusmonitor/../../etc/passwd": b"x"}))
    with pytest.raises(PrepareFailed, match="not a readable gzip tar"):
        inspect_archive("x.tar.gz", b"<html>not found</html>")
