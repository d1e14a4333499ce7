"""Promote a published image from one channel tag to another by digest: no rebuild, no re-push of
layers, the same manifest bytes under another tag (the OCI distribution API).

    uv run python -m deploy.publish promote --image REGISTRY/flagee-cloud/flageemonitor-client \\
        [--from canary] [--to stable] [--digest sha256:…] [--no-latest]

Rules:
- the manifest `--from` points to is read with its digest, checked against the bytes, and put
  unchanged under `--to` (and `latest`, which proxies installed before channels follow, unless
  `--no-latest`); the registry must answer with the same digest, so what runs on stable is exactly
  what ran on canary;
- `--digest` names what was tested: when `--from` points elsewhere by now, nothing is promoted;
- credentials, when the registry wants them: `FLAGEEMONITOR_REGISTRY_USER` and
  `FLAGEEMONITOR_REGISTRY_PASSWORD` (Basic, or a Bearer token fetched with them); never an argument;
- plain HTTP only for a loopback registry.
Exit codes: 0 promoted (or already there), 1 refused or failed (one line), 2 usage.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import ipaddress
import os
import re
import sys
from collections.abc import Sequence

import httpx

from flageemonitor.core.image_channel import DIGEST_RE, TAG_RE, repository

MANIFEST_TYPES = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
TIMEOUT = httpx.Timeout(30.0)


class PromoteError(RuntimeError):
    """Nothing (more) was promoted; the message says why."""


def say(msg: str) -> None:
    print(f"publish: {msg}", file=sys.stderr, flush=True)


def split_image(image: str) -> tuple[str, str]:
    """`registry[:port]/name` → (registry, name); Docker Hub names get their `library/`."""
    repo = repository(image)
    first, _, rest = repo.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return "registry-1.docker.io", repo if "/" in repo else f"library/{repo}"


def _loopback(registry: str) -> bool:
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Registry:
    """The distribution API of one repository, with Basic or Bearer auth from the environment."""

    def __init__(self, registry: str, name: str) -> None:
        self.name = name
        scheme = "http" if _loopback(registry) else "https"
        self.base = f"{scheme}://{registry}/v2/{name}"
        self.user = os.environ.get("FLAGEEMONITOR_REGISTRY_USER", "")
        self.password = os.environ.get("FLAGEEMONITOR_REGISTRY_PASSWORD", "")
        self.http = httpx.Client(timeout=TIMEOUT, follow_redirects=False)
        self.auth_header: dict[str, str] = {}

    def _authenticate(self, challenge: str) -> None:
        creds = base64.b64encode(f"{self.user}:{self.password}".encode()).decode() if self.user else ""
        if challenge.lower().startswith("basic"):
            if not creds:
                raise PromoteError("the registry wants credentials: set FLAGEEMONITOR_REGISTRY_USER and "
                                   "FLAGEEMONITOR_REGISTRY_PASSWORD")
            self.auth_header = {"Authorization": f"Basic {creds}"}
            return
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.pop("realm", "")
        if not realm or (not realm.startswith("https://") and not _loopback(httpx.URL(realm).host)):
            raise PromoteError(f"the registry asks for a token from {realm!r}: not an HTTPS token service")
        params["scope"] = f"repository:{self.name}:pull,push"
        try:
            r = self.http.get(realm, params=params, headers={"Authorization": f"Basic {creds}"} if creds else {})
        except httpx.HTTPError as exc:
            raise PromoteError(f"the registry's token service: {exc}") from None
        token = (r.json().get("token") or r.json().get("access_token")) if r.status_code == 200 else None
        if not token:
            raise PromoteError(f"the registry's token service gave no token ({r.status_code})")
        self.auth_header = {"Authorization": f"Bearer {token}"}

    def request(self, method: str, ref: str, *, headers: dict[str, str],
                content: bytes | None = None) -> httpx.Response:
        url = f"{self.base}/manifests/{ref}"
        for attempt in (1, 2):
            try:
                r = self.http.request(method, url, headers={**self.auth_header, **headers}, content=content)
            except httpx.HTTPError as exc:
                raise PromoteError(f"{method} {url}: {exc}") from None
            if r.status_code == 401 and attempt == 1 and not self.auth_header:
                self._authenticate(r.headers.get("www-authenticate", ""))
                continue
            return r
        return r

    def manifest(self, ref: str) -> tuple[bytes, str, str]:
        """(exact bytes, media type, digest) of the manifest `ref` (a tag or digest) names."""
        r = self.request("GET", ref, headers={"Accept": MANIFEST_TYPES})
        if r.status_code == 404:
            raise PromoteError(f"{self.name}:{ref} does not exist in the registry")
        if r.status_code != 200:
            raise PromoteError(f"reading {self.name}:{ref} failed ({r.status_code}): {r.text[:200]}")
        digest = "sha256:" + hashlib.sha256(r.content).hexdigest()
        claimed = r.headers.get("docker-content-digest", digest)
        if claimed != digest:
            raise PromoteError(f"{self.name}:{ref}: the registry says {claimed} but the bytes hash to {digest}")
        return r.content, r.headers.get("content-type", ""), digest

    def put(self, tag: str, body: bytes, media_type: str, digest: str) -> None:
        r = self.request("PUT", tag, content=body, headers={"Content-Type": media_type})
        if r.status_code not in (200, 201):
            raise PromoteError(f"tagging {digest} as {tag} failed ({r.status_code}): {r.text[:200]}")
        stored = r.headers.get("docker-content-digest", digest)
        if stored != digest:
            raise PromoteError(f"the registry stored {tag} as {stored}, not {digest}")


def promote(image: str, source: str, target: str, digest: str | None, extra: Sequence[str]) -> str:
    registry, name = split_image(image)
    reg = Registry(registry, name)
    body, media_type, current = reg.manifest(source)
    if digest and digest != current:
        raise PromoteError(f"{source} points to {current} now, not {digest}: test that one, or promote "
                           f"{digest} after pointing {source} back at it")
    for tag in (target, *extra):
        try:
            before = reg.manifest(tag)[2]
        except PromoteError:
            before = ""
        if before == current:
            say(f"{name}:{tag} is already {current}")
            continue
        reg.put(tag, body, media_type, current)
        if reg.manifest(tag)[2] != current:
            raise PromoteError(f"{name}:{tag} does not read back as {current}")
        say(f"{name}:{tag} -> {current}" + (f" (was {before})" if before else ""))
    return current


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m deploy.publish promote",
                                description="Promote an image between channel tags by digest (no rebuild).")
    p.add_argument("--image", required=True,
                   help="the image repository, e.g. REGISTRY/flagee-cloud/flageemonitor-client")
    p.add_argument("--from", dest="source", default="canary", help="the tag promoted from (default canary)")
    p.add_argument("--to", dest="target", default="stable", help="the tag promoted to (default stable)")
    p.add_argument("--digest", help="the digest that was tested (sha256:…); refused if --from points elsewhere")
    p.add_argument("--no-latest", action="store_true", help="leave `latest` alone (it follows stable by default)")
    args = p.parse_args(argv)
    for tag in (args.source, args.target):
        if not TAG_RE.match(tag):
            p.error(f"not a tag: {tag!r}")
    if args.source == args.target:
        p.error("--from and --to are the same tag")
    if args.digest and not DIGEST_RE.match(args.digest):
        p.error(f"--digest: expected sha256: and 64 lower-case hex digits, not {args.digest!r}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    extra = [] if args.no_latest or args.target != "stable" else ["latest"]
    try:
        digest = promote(args.image, args.source, args.target, args.digest, extra)
    except PromoteError as exc:
        say(f"REFUSED: {exc}; nothing more was promoted")
        return 1
    say(f"promoted {repository(args.image)}@{digest} from {args.source} to {', '.join([args.target, *extra])} "
        "(no rebuild)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
