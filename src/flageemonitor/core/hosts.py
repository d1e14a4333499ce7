"""Endpoints and the filters that select them, plus the network's host naming convention.

Technical names follow `<REDE>-LOJA<nnn>-<TYPE><code>` (e.g. `MLAR-LOJA045-PDV213`), where TYPE
is PDV, SELF or CONCENTRADOR. Filters are pure predicates so every inventory source applies
them the same way.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

ENDPOINT_TYPES = ("PDV", "SELF", "CONCENTRADOR")
_NAME_RE = re.compile(
    r"^(?P<rede>.+?)-LOJA(?P<loja>\d+)(?:-(?P<type>PDV|SELF|CONCENTRADOR)(?P<code>[A-Za-z0-9]*))?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class HostName:
    rede: str | None
    loja: int | None
    endpoint_type: str | None
    code: str | None


def parse_host_name(name: str) -> HostName:
    m = _NAME_RE.match(name.strip())
    if not m:
        upper = name.upper()
        etype = next((t for t in ENDPOINT_TYPES if t in upper), None)
        return HostName(None, None, etype, None)
    etype = m.group("type").upper() if m.group("type") else None
    return HostName(m.group("rede"), int(m.group("loja")), etype, m.group("code") or None)


def technical_name(rede: str, loja: int, code: str | int, endpoint_type: str = "PDV") -> str:
    code_text = f"{int(code):03d}" if str(code).isdigit() else str(code)
    return f"{rede}-LOJA{int(loja):03d}-{endpoint_type.upper()}{code_text}"


@dataclass(frozen=True)
class Host:
    """One endpoint as the pipeline sees it, whatever inventory it came from."""

    name: str
    ip: str
    port: int = 22
    user: str = "root"
    password: str | None = field(default=None, repr=False)
    key_file: str | None = None
    provider: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    rede: str | None = None
    loja: int | None = None
    endpoint_type: str | None = None
    code: str | None = None
    inventory_id: str | None = None  # e.g. the Zabbix hostid
    agent_port: int = 10050  # the agent's interface port (its ListenPort); inventories default to PARAM_ZABBIX_PORT

    @classmethod
    def build(cls, name: str, ip: str, **kw: object) -> Host:
        """A host with rede/loja/type/code filled from the name when not given."""
        parsed = parse_host_name(name)
        tags = kw.get("tags") or {}
        assert isinstance(tags, Mapping)
        tag_type = next((str(v) for k, v in tags.items() if str(k).lower() in {"tipo", "type"}), None)
        base = cls(name=name, ip=ip, **kw)  # type: ignore[arg-type]
        return replace(
            base,
            rede=base.rede or parsed.rede,
            loja=base.loja if base.loja is not None else parsed.loja,
            endpoint_type=(tag_type.upper() if tag_type else None) or base.endpoint_type or parsed.endpoint_type,
            code=base.code or parsed.code,
        )


def _digits(value: str, prefix: str) -> str:
    text = value.strip().upper()
    if text.startswith(prefix):
        text = text[len(prefix):]
    return text


@dataclass(frozen=True)
class HostFilter:
    """Selection filters. None/empty means "not filtered on this"."""

    rede: str | None = None
    loja: str | None = None
    pdv: str | None = None
    pdv_ip: tuple[str, ...] = ()
    host_glob: str | None = None
    limit: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    agent_status: int | None = None
    trigger_ids: tuple[str, ...] = ()
    trigger_name: str | None = None

    @property
    def loja_number(self) -> int | None:
        if not self.loja:
            return None
        digits = _digits(self.loja, "LOJA")
        if not digits.isdigit():
            raise ValueError(f"--loja {self.loja!r}: expected LOJA<number> or a number")
        return int(digits)

    @property
    def pdv_code(self) -> str | None:
        if not self.pdv:
            return None
        code = self.pdv.strip().upper()
        for prefix in ENDPOINT_TYPES:
            if code.startswith(prefix):
                code = code[len(prefix):]
                break
        return code

    def matches(self, host: Host) -> bool:
        """Every filter except `limit` (which applies to the ordered result)."""
        if self.rede and (host.rede or "").upper() != self.rede.strip().upper():
            return False
        loja = self.loja_number
        if loja is not None and host.loja != loja:
            return False
        code = self.pdv_code
        if code is not None:
            have = (host.code or "").upper()
            if not (have == code or (have.isdigit() and code.isdigit() and int(have) == int(code))):
                return False
        if self.pdv_ip and host.ip not in self.pdv_ip:
            return False
        if self.host_glob and not fnmatch.fnmatchcase(host.name.upper(), self.host_glob.upper()):
            return False
        return all(str(host.tags.get(key, "")) == value for key, value in self.tags.items())

    def apply(self, hosts: Iterable[Host]) -> list[Host]:
        selected = sorted((h for h in hosts if self.matches(h)), key=lambda h: h.name)
        if self.limit is not None:
            selected = selected[: max(0, self.limit)]
        return selected
