"""Image channels: which proxy image a network runs (`stable`, `canary`, or a pinned version).

Rules:
- a network's channel is `stable` (the default), `canary`, or a pin: an immutable version tag
  (`1.4.2`) or a manifest digest (`sha256:<64 hex>`); `latest`, `stable` and `canary` are moving
  tags and never a pin;
- the server puts the channel in the served config as two reserved keys,
  `PARAM_IMAGE_CHANNEL` (`stable` | `canary` | `pinned`) and `PARAM_IMAGE_TAG` (the tag or digest
  to run); an operator's config may not set them (`flageemonitor-server network channel` does);
- the host takes the image repository from its env file (`FLAGEEMONITOR_IMAGE` without its tag)
  and the tag from the config: `repo:stable`, `repo:canary`, `repo:1.4.2`, `repo@sha256:…`;
  without the keys (a server before channels) it runs `FLAGEEMONITOR_IMAGE` as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CHANNEL_KEY = "PARAM_IMAGE_CHANNEL"
TAG_KEY = "PARAM_IMAGE_TAG"
RESERVED_KEYS = (CHANNEL_KEY, TAG_KEY)
STABLE, CANARY, PINNED = "stable", "canary", "pinned"
MOVING_TAGS = frozenset({STABLE, CANARY, "latest"})
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")  # the OCI distribution tag grammar
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


class ChannelInvalid(ValueError):
    """A channel, tag or digest that cannot be used; the message says what is accepted."""


@dataclass(frozen=True)
class ImageChannel:
    channel: str  # stable | canary | pinned
    tag: str  # the tag to run, or a digest `sha256:…` for a pin by digest

    @property
    def pinned(self) -> bool:
        return self.channel == PINNED

    @property
    def by_digest(self) -> bool:
        return self.tag.startswith("sha256:")

    def describe(self) -> str:
        return f"pinned to {self.tag}" if self.pinned else self.channel

    def as_config(self) -> dict[str, str]:
        return {CHANNEL_KEY: self.channel, TAG_KEY: self.tag}


DEFAULT = ImageChannel(STABLE, STABLE)


def parse_channel(text: str) -> ImageChannel:
    """What an operator types: `stable`, `canary`, a version tag or `sha256:<hex>` (a pin)."""
    value = text.strip()
    if value in (STABLE, CANARY):
        return ImageChannel(value, value)
    if value.lower().startswith("sha256:"):
        if not DIGEST_RE.match(value):
            raise ChannelInvalid(f"{text!r}: a digest pin is sha256: followed by 64 lower-case hex digits")
        return ImageChannel(PINNED, value)
    if value == "latest":
        raise ChannelInvalid("'latest' is a moving tag: pin a version tag (e.g. 1.4.2) or a digest (sha256:…)")
    if not TAG_RE.match(value):
        raise ChannelInvalid(f"{text!r}: expected stable, canary, a version tag (e.g. 1.4.2) or a digest "
                             "(sha256:…)")
    return ImageChannel(PINNED, value)


def from_stored(text: str | None) -> ImageChannel:
    """The channel as the server stores it (the operator's text, already checked)."""
    return parse_channel(text) if text else DEFAULT


def from_config(data: Mapping[str, Any]) -> ImageChannel | None:
    """The channel a served config names; None when it names none (a server before channels).
    Raises ChannelInvalid when the two keys are malformed or disagree."""
    channel, tag = data.get(CHANNEL_KEY), data.get(TAG_KEY)
    if channel is None and tag is None:
        return None
    if not isinstance(channel, str) or not isinstance(tag, str):
        raise ChannelInvalid(f"{CHANNEL_KEY} and {TAG_KEY} must both be strings")
    parsed = parse_channel(tag) if tag not in (STABLE, CANARY) else ImageChannel(tag, tag)
    if parsed.channel != channel:
        raise ChannelInvalid(f"{CHANNEL_KEY} {channel!r} does not match {TAG_KEY} {tag!r}")
    return parsed


def repository(image: str) -> str:
    """`registry/name:tag` or `registry/name@sha256:…` → `registry/name` (a registry port kept)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return name


def image_reference(image: str, channel: ImageChannel | None) -> str:
    """The reference to run: the env file's image with the channel's tag or digest."""
    if channel is None:
        return image
    repo = repository(image)
    return f"{repo}@{channel.tag}" if channel.by_digest else f"{repo}:{channel.tag}"
