"""The typed model of `config_bot.json`.

It accepts every key the original proxy reads (reference Appendix A), keeps unknown keys (the
server may send keys a newer proxy understands), and is the single source of the JSON Schema
shipped in `contracts/bot-config.schema.v1.json`. The same model validates on the server (before
a config is stored) and on the proxy (before a fetched config replaces the last valid one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from flageemonitor.core import staging
from flageemonitor.core.env import truthy
from flageemonitor.core.errors import ConfigInvalid
from flageemonitor.core.image_channel import ChannelInvalid, from_config

CONFIG_SCHEMA_ID = "https://flagee.cloud/schemas/flageemonitor/bot-config.v1.json"


def _boolish(value: Any) -> Any:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return truthy(value)
    return value


BoolIsh = Annotated[bool, BeforeValidator(_boolish)]
IdLike = str | int


def valid_cron(expr: str) -> bool:
    return bool(croniter.is_valid(expr)) and len(expr.split()) == 5


class CronActionSpec(BaseModel):
    """`PARAM_CRON_ACTIONS` entry in its long form. `batch` and `max_fail_percent` stage the
    scheduled run as `--batch` / `--max-fail-percent` do, and win over those options in `args`."""

    model_config = ConfigDict(extra="forbid")

    cron: str | None = Field(None, description="5-field cron expression, evaluated in TIMEZONE")
    args: list[str] = Field(default_factory=list, description="extra CLI arguments for the run")
    enabled: BoolIsh = True
    batch: str | int | None = Field(
        None, description="hosts per batch: N, P% (rounded down, at least 1), all (one batch) or a list such as "
        "'1,10%' (the last size repeats); default for actions that change endpoints: '5%,100%'")
    max_fail_percent: float | str | None = Field(
        None, description="0-100: stop before the next batch when more than this share of the hosts attempted "
        "so far failed; default 0 for actions that change endpoints, else 100")

    @field_validator("cron")
    @classmethod
    def _cron_ok(cls, v: str | None) -> str | None:
        if v is not None and not valid_cron(v):
            raise ValueError(f"invalid cron expression {v!r} (want 5 fields, e.g. '*/5 * * * *')")
        return v

    @field_validator("batch", mode="before")
    @classmethod
    def _batch_ok(cls, v: Any) -> str | None:
        return None if v is None else str(staging.parse_batch(v))

    @field_validator("max_fail_percent", mode="before")
    @classmethod
    def _max_fail_ok(cls, v: Any) -> float | None:
        return None if v is None else float(staging.parse_max_fail(v))

    @model_validator(mode="after")
    def _stop_rule_has_batches(self) -> CronActionSpec:
        if self.batch == staging.ALL and self.max_fail_percent is not None:
            raise ValueError("max_fail_percent has nothing to stop with batch 'all' (one batch)")
        return self


def _entry_kind(value: Any) -> str:
    """Which form a PARAM_CRON_ACTIONS entry takes, so an error names that form's problem only."""
    if isinstance(value, bool | str):
        return type(value).__name__
    return "long form"


CronEntry = Annotated[
    Annotated[bool, Tag("bool")] | Annotated[str, Tag("str")] | Annotated[CronActionSpec, Tag("long form")],
    Discriminator(_entry_kind),
]


class SshSettings(BaseModel):
    model_config = ConfigDict(extra="allow")

    timeout: float = Field(30, gt=0, description="SSH connect timeout, seconds")
    command_timeout: float = Field(120, gt=0, description="per remote command timeout, seconds")
    host_key_policy: Literal["pin", "strict", "insecure"] = Field(
        "pin",
        description="pin: trust a new key on first use and refuse a changed one; "
        "strict: refuse keys not already pinned; insecure: accept any key, pin nothing",
    )
    legacy_algorithms: BoolIsh = Field(True, description="offer SHA-1/CBC algorithms old endpoints need")


class LogFiles(BaseModel):
    model_config = ConfigDict(extra="allow")
    general: str | None = None


class LogRotation(BaseModel):
    model_config = ConfigDict(extra="allow")
    max_bytes: int = Field(10 * 1024 * 1024, ge=0)
    backup_count: int = Field(5, ge=0)


class ShutdownWindow(BaseModel):
    model_config = ConfigDict(extra="allow")
    start: int = Field(22, ge=0, le=23)
    end: int = Field(6, ge=0, le=23)


class Concentrador(BaseModel):
    model_config = ConfigDict(extra="allow")
    ip: str
    loja: IdLike | None = None


class TimezoneSettings(BaseModel):
    model_config = ConfigDict(extra="allow")
    timezone: str | None = None
    localtime_target: str | None = None
    enable_ntp: BoolIsh | None = None
    ntp_server: str | None = None
    force_timesyncd: BoolIsh | None = None


class ParsingRule(BaseModel):
    model_config = ConfigDict(extra="allow")
    regex: str
    source_field: str = "descricao"


class BotConfig(BaseModel):
    """`config_bot.json`: one customer network's proxy configuration."""

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
        json_schema_extra={"$id": CONFIG_SCHEMA_ID, "title": "FlageeMonitor Bot Config V1"},
    )

    # --- identity and provider
    PARAM_REDE: str = Field(..., min_length=1, description="network code (host name prefix, host group)")
    PARAM_PROVIDER: str | None = Field(None, description="execution provider; default arius")
    provider: str | None = Field(None, description="legacy spelling of PARAM_PROVIDER (read as a fallback)")
    PARAM_PROVIDER_ROLLOUT: dict[str, int] | int | None = Field(
        None, description="rollout percentage per provider, or one int for every provider"
    )
    PARAM_PROVIDER_ACTION_OVERRIDES: dict[str, dict[str, str]] = Field(default_factory=dict)
    PARAM_COMPATIBILITY_MODE: Literal["off", "warn", "enforce"] | None = None
    CONFIG_VERSION: int | None = Field(None, description="set by the server: version of this config")
    PARAM_IMAGE_CHANNEL: Literal["stable", "canary", "pinned"] | None = Field(
        None, description="set by the server: the network's image channel (flageemonitor-server network channel)"
    )
    PARAM_IMAGE_TAG: str | None = Field(
        None, description="set by the server: the image tag (stable, canary, a version) or digest (sha256:...) "
        "the host runs, from the repository of FLAGEEMONITOR_IMAGE"
    )

    # --- schedule
    PARAM_CRON_ACTIONS: dict[str, CronEntry] = Field(
        default_factory=dict,
        description="per action: bool (enable its default schedule), a cron expression, "
        "or {cron, args, enabled}",
    )
    TIMEZONE: str | None = Field(None, description="IANA time zone; schedules are evaluated in it")
    TIMEZONE_LOCALTIME_TARGET: str | None = None
    NTP_ENABLE: BoolIsh | None = None
    NTP_SERVER: str | None = None
    PDV_TIMEZONE_SETTINGS: dict[str, TimezoneSettings] = Field(default_factory=dict)

    # --- inventory
    PARAM_INVENTORY: Literal["file", "zabbix"] | None = Field(
        None, description="host source; default zabbix when a Zabbix server is configured, else file"
    )
    PARAM_INVENTORY_FILE: str | None = Field(None, description="YAML file inventory path")
    PARAM_ZABBIX_SERVER: str | None = Field(None, description="Zabbix frontend host (https implied)")
    PARAM_ZABBIX_URL: str | None = Field(None, description="full Zabbix URL; wins over PARAM_ZABBIX_SERVER")
    PARAM_TOKEN: str | None = Field(None, description="Zabbix API token")
    PARAM_ZABBIX_USER: str | None = None
    PARAM_ZABBIX_PASSWORD: str | None = None
    PARAM_ZABBIX_CA_BUNDLE: str | None = None
    PARAM_ZABBIX_VERIFY_TLS: BoolIsh = True
    PARAM_ZABBIX_HOSTGROUP: str | None = Field(None, description="host group scoping selection; default PARAM_REDE")
    PARAM_ZABBIX_PORT: int = 10050
    PARAM_ZABBIX_PROXYID: IdLike | None = None
    PARAM_TEMPLATES: list[IdLike] = Field(default_factory=lambda: list[IdLike](["10543", "10552"]))
    PARAM_ZABBIX_SENDER_SERVER: str | None = None
    PARAM_ZABBIX_SENDER_PORT: int = 10051
    PARAM_ZABBIX_GROUPID: IdLike | None = None
    EXCLUDE_TEMPLATE_IDS: list[IdLike] = Field(default_factory=list)
    PARAM_ZABBIX_REPORTING: BoolIsh = Field(
        False,
        description="send per-host results and a heartbeat to Zabbix trapper items after each run "
        "(target PARAM_ZABBIX_SENDER_SERVER/PORT; create the items with `flageemonitor zabbix setup-reporting`)",
    )
    PARAM_REGISTER_INVENTORY_NOTES: BoolIsh = Field(
        False,
        description="register_endpoints writes PARAM_SSH_USER,PARAM_SSH_PASSWORD into a created host's "
        "inventory notes (off by default: it puts a password in Zabbix)",
    )

    # --- SSH to endpoints
    PARAM_SSH_USER: str = Field("root", description="default SSH user when the inventory has none")
    PARAM_SSH_PASSWORD: str | None = None
    PARAM_SSH_KEY_FILE: str | None = None
    PARAM_FACTS_TTL: int = Field(86400, ge=0, description="seconds endpoint facts stay cached")
    max_threads: int = Field(50, ge=1, le=5000)
    ssh: SshSettings = Field(default_factory=SshSettings)  # type: ignore[arg-type]

    # --- assets and agent
    PARAM_REPO_URL: str | None = Field(
        None, description="agent bundle repository (HTTP or HTTPS); default https://ariusmonitor-repo.flagee.cloud")
    PARAM_LOCAL_ASSET_DIR: str | None = None
    PARAM_LOCAL_REPO_DIR: str | None = Field(
        None, description="local agent bundle repository directory; preferred over PARAM_REPO_URL")
    PARAM_AGENT_BUNDLE_SHA256: dict[str, str] = Field(
        default_factory=dict,
        description="pinned SHA-256 per bundle file name (e.g. ariusmonitor.tar.gz); checked together with "
        "the repository's SHA256SUMS, and required for files it does not list",
    )
    PARAM_ALLOW_UNVERIFIED_BUNDLE: BoolIsh = Field(
        False, description="use bundle files that neither SHA256SUMS nor PARAM_AGENT_BUNDLE_SHA256 covers "
        "(the run report says so)")
    PARAM_PROXY_IP: str | None = Field(
        None, description="Zabbix proxy address(es) written as the agent's Server/ServerActive; default 127.0.0.1")
    PARAM_BASE_DIR: str | None = None
    PARAM_PATH_GERAL_LOCAL: str | None = None
    PARAM_PATH_GERAL_REMOTE: str | None = None
    PARAM_CLISITEF_DIR: str | None = None
    PARAM_AGENTD_LOG: str | None = None
    PARAM_AGENTD_PID: str | None = None
    PARAM_AGENTD_CONF_DIR: str | None = None
    PARAM_PORT: str | int | None = None

    # --- store databases and BI
    PARAM_IP_CONCENTRADORES: list[str] = Field(default_factory=list)
    CONCENTRADORES: list[Concentrador] | None = None
    PARAM_BI_SERVER: str | None = None
    PARAM_TOKEN_BI: str | None = None
    PARAM_BI_CERTI_PATH: str | None = Field(None, description="CA bundle the BI's TLS certificate is verified against")
    PARAM_BI_TIMEOUT: float = Field(90, gt=0, le=3600, description="seconds a BI request may take (read/write)")
    PARAM_BI_BATCH_SIZE: dict[str, int] | int | None = Field(
        None, description="rows per BI batch: one number, or per collector (canonical or legacy name); "
        "default 200 (cupons, cupons_lv) and 500 (cupons_detalhes)")
    PARAM_COLLECTOR_LOOKBACK_S: int = Field(
        600, ge=0, le=7 * 86400, description="collectors re-read this many seconds before their cursor "
        "(late rows); rows already sent are skipped")
    PARAM_COLLECTOR_START_DAYS: float | None = Field(
        None, description="first run of a collector (no cursor yet): read this many days back "
        "(default 1, cupons_detalhes 7); 0 reads the whole table")
    PARAM_COLLECTOR_DRAIN_S: float = Field(
        120, gt=0, description="after reading, seconds a collector run may spend sending the spool")
    PARAM_SPOOL_MAX_MB: int = Field(
        256, ge=1, description="bound of each spool queue; when full the oldest batches are dropped (logged)")
    PARAM_EMPRESA_ID: IdLike | None = None
    DB_USER: str | None = None
    DB_PASS: str | None = None
    DB_NAME: str = "controle"
    DB_PORT: int = Field(3306, ge=1, le=65535, description="MySQL port of the concentrators")
    DB_TIMEOUT: float = Field(30, gt=0, le=3600, description="seconds to connect to, or wait on, a store database")
    DB_PG_USER: str | None = None
    DB_PG_PASS: str | None = None
    DB_PG_DB: str | None = None
    DB_PG_PORT: int = 5432
    DB_HOST_BI: str | None = None
    DB_USER_BI: str | None = None
    DB_PASS_BI: str | None = None
    DB_NAME_BI: str | None = None

    # --- shutdown
    shutdown_window: ShutdownWindow = Field(default_factory=ShutdownWindow)  # type: ignore[arg-type]
    shutdown_exception_ips: list[str] = Field(default_factory=list)

    # --- logging (the proxy logs to stdout; these are kept for compatibility)
    logfiles: LogFiles = Field(default_factory=LogFiles)
    log_rotation: LogRotation = Field(default_factory=LogRotation)  # type: ignore[arg-type]

    # --- printers
    PDV_PARSING_RULE: ParsingRule | None = None

    @field_validator("PARAM_REDE")
    @classmethod
    def _rede_ok(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be empty")
        return v

    @field_validator("TIMEZONE")
    @classmethod
    def _tz_ok(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (expected an IANA name like America/Sao_Paulo)") from None
        return v

    @field_validator("PARAM_AGENT_BUNDLE_SHA256")
    @classmethod
    def _sha_ok(cls, v: dict[str, str]) -> dict[str, str]:
        out = {}
        for name, digest in v.items():
            text = digest.strip().lower()
            if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
                raise ValueError(f"{name}: {digest!r} is not a SHA-256 hex digest")
            if not name or "/" in name or name.startswith("."):
                raise ValueError(f"{name!r}: expected a bundle file name")
            out[name] = text
        return out

    @field_validator("PARAM_CRON_ACTIONS", mode="before")
    @classmethod
    def _cron_entries(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        out: dict[str, Any] = {}
        for name, entry in v.items():
            if isinstance(entry, str):
                text = entry.strip()
                if text.lower() in {"1", "true", "yes", "y", "on", "0", "false", "no", "n", "off", ""}:
                    out[name] = truthy(text)
                elif valid_cron(text):
                    out[name] = text
                else:
                    raise ValueError(f"{name}: {entry!r} is neither a bool nor a 5-field cron expression")
            elif isinstance(entry, int | float) and not isinstance(entry, bool):
                out[name] = entry != 0
            else:
                out[name] = entry
        return out

    @model_validator(mode="after")
    def _image_channel(self) -> BotConfig:
        try:
            given = {"PARAM_IMAGE_CHANNEL": self.PARAM_IMAGE_CHANNEL, "PARAM_IMAGE_TAG": self.PARAM_IMAGE_TAG}
            from_config({k: v for k, v in given.items() if v is not None})
        except ChannelInvalid as exc:
            raise ValueError(str(exc)) from None
        return self

    @model_validator(mode="after")
    def _rollout_keys(self) -> BotConfig:
        for key, value in (self.model_extra or {}).items():
            if key.startswith("PARAM_ROLLOUT_"):
                try:
                    pct = int(str(value).strip().rstrip("%"))
                except ValueError:
                    raise ValueError(f"{key}: {value!r} is not a percentage 0..100") from None
                if not 0 <= pct <= 100:
                    raise ValueError(f"{key}: {pct} is outside 0..100")
        return self

    # --- derived values
    @property
    def effective_provider(self) -> str | None:
        """`PARAM_PROVIDER`, falling back to the legacy `provider` key."""
        for value in (self.PARAM_PROVIDER, self.provider):
            if value and value.strip():
                return value.strip().lower()
        return None

    @property
    def zabbix_configured(self) -> bool:
        return bool(self.PARAM_ZABBIX_URL or self.PARAM_ZABBIX_SERVER)

    @property
    def inventory_kind(self) -> str:
        if self.PARAM_INVENTORY:
            return self.PARAM_INVENTORY
        return "zabbix" if self.zabbix_configured and not self.PARAM_INVENTORY_FILE else "file"

    def raw(self) -> dict[str, Any]:
        """The config as plain data, with unknown keys kept and unset keys omitted."""
        return self.model_dump(mode="json", exclude_unset=True)


def _format_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def validate_config(data: Any) -> BotConfig:
    """Validate parsed JSON; raises ConfigInvalid naming each failing field and the reason."""
    if not isinstance(data, dict):
        raise ConfigInvalid(f"config must be a JSON object, got {type(data).__name__}")
    try:
        return BotConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigInvalid(_format_error(exc)) from None


def parse_config_text(text: str | bytes) -> BotConfig:
    """Parse and validate a config document (UTF-8, a leading BOM tolerated)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ConfigInvalid(f"config is not UTF-8: {exc}") from None
    text = text.lstrip("\ufeff")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigInvalid(f"config is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ConfigInvalid("config is not valid JSON: arrays or objects nested too deeply") from None
    except ValueError:  # the interpreter's limit on integer digits
        raise ConfigInvalid("config is not valid JSON: a number with too many digits") from None
    try:
        return validate_config(data)
    except RecursionError:
        raise ConfigInvalid("config nests values too deeply") from None


def load_config_file(path: Path) -> BotConfig:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        from flageemonitor.core.errors import ConfigMissing

        raise ConfigMissing(f"no config at {path}") from None
    try:
        return parse_config_text(data)
    except ConfigInvalid as exc:
        raise ConfigInvalid(f"{path}: {exc}") from None


def config_json_schema() -> dict[str, Any]:
    schema = BotConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def render_config_schema() -> str:
    return json.dumps(config_json_schema(), indent=2, sort_keys=True) + "\n"
