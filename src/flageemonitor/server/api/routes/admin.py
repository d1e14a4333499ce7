"""`/api/admin/`: everything the admin CLI does, as JSON, over the same service functions.

Clients, networks, configs (history, show, diff, rollback), client tokens, admin tokens, the
audit log, and the fleet overview the `/fleet` page shows. Admin tokens only (see admin_auth).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy.orm import Session

from flageemonitor.server.api.admin_auth import ADMIN_RESPONSES, admin_call
from flageemonitor.server.core.secretbox import SecretBox
from flageemonitor.server.services import admin_tokens, audit, clients, configs, fleet_views, networks, tokens

router = APIRouter(prefix="/api/admin", tags=["admin"], responses=ADMIN_RESPONSES)

# the same rules the services apply, so that the schema tells a client what is accepted
# no control character, and no white space at either end (what str.strip() removes), spelled out:
# `\s` differs between regex engines (a client's validator and ours)
_EDGE = r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=rf"^{_EDGE}(?:[^\x00-\x1f\x7f-\x9f]*{_EDGE})?$")]
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Scope = Literal["config:read", "bootstrap:read", "report:write", "admin"]
Optional500 = Annotated[str, Field(max_length=500)] | None


class ClientIn(BaseModel):
    name: Name


class ClientOut(BaseModel):
    id: int
    name: str
    networks: list[str]


class NetworkIn(BaseModel):
    code: Code
    client: Name
    provider: Annotated[str, Field(max_length=64)] | None = None
    timezone: Annotated[str, Field(max_length=64)] | None = None
    image: Optional500 = None
    runtime_name: Annotated[str, Field(max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")] | None = None
    container_root: Optional500 = None


class NetworkOut(BaseModel):
    code: str
    client: str
    provider: str | None
    timezone: str | None
    image: str | None
    runtime_name: str | None
    container_root: str | None


class ConfigIn(BaseModel):
    config: dict[str, Any] = Field(description="config_bot.json; PARAM_REDE and CONFIG_VERSION are set by the server")
    comment: Optional500 = None


class ConfigVersionOut(BaseModel):
    version: int
    created_at: str
    created_by: str
    comment: str | None
    etag: str


class ConfigOut(ConfigVersionOut):
    network: str
    config: dict[str, Any]


class DiffOut(BaseModel):
    network: str
    diff: str


class RollbackIn(BaseModel):
    to: Annotated[int, Field(ge=1, le=2**31 - 1)]


class TokenIn(BaseModel):
    client: Name
    networks: Annotated[list[Code], Field(max_length=100)] | None = None
    scopes: Annotated[list[Scope], Field(max_length=10)] | None = None
    expires_at: AwareDatetime | None = None


class TokenOut(BaseModel):
    id: int
    prefix: str
    networks: list[str]
    scopes: list[str]
    created_at: str | None
    expires_at: str | None
    revoked: bool
    last_used_at: str | None


class TokenIssued(TokenOut):
    token: str = Field(description="the token itself: shown only in this answer")


class AdminTokenIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")]
    expires_at: AwareDatetime | None = None


class AdminTokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: str
    created_by: str
    expires_at: str | None
    revoked: bool
    last_used_at: str | None


class AdminTokenIssued(AdminTokenOut):
    token: str


class AuditOut(BaseModel):
    id: int
    at: str
    actor: str
    action: str
    target: str
    detail: str | None


def _created(model: BaseModel) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json"), status_code=201)


@router.get("/clients", response_model=list[ClientOut])
async def list_clients(request: Request) -> Any:
    return await admin_call(request, lambda s, _a: [clients.summary(c) for c in clients.all_clients(s)])


@router.post("/clients", status_code=201, response_model=ClientOut)
async def add_client(request: Request, body: ClientIn) -> Any:
    def work(s: Session, actor: str) -> ClientOut:
        client = clients.add(s, body.name, actor)
        return ClientOut(id=client.id, name=client.name, networks=[])

    return _created(await admin_call(request, work))


@router.get("/networks", response_model=list[NetworkOut])
async def list_networks(request: Request, client: Annotated[str | None, Query(max_length=200)] = None) -> Any:
    return await admin_call(request, lambda s, _a: [networks.summary(n) for n in networks.all_networks(s, client)])


@router.post("/networks", status_code=201, response_model=NetworkOut)
async def add_network(request: Request, body: NetworkIn) -> Any:
    def work(s: Session, actor: str) -> NetworkOut:
        net = networks.add(s, body.client, body.code, actor, provider=body.provider, timezone=body.timezone,
                           image=body.image, runtime_name=body.runtime_name, container_root=body.container_root)
        s.refresh(net)
        return NetworkOut(**networks.summary(net))

    return _created(await admin_call(request, work))


@router.get("/networks/{code}/configs", response_model=list[ConfigVersionOut])
async def config_history(request: Request, code: str) -> Any:
    return await admin_call(request, lambda s, _a: [configs.version_summary(r) for r in configs.history(s, code)])


def _box(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.box
    return box


ShowSecrets = Annotated[bool, Query(description="secret values in clear instead of ***")]


@router.post("/networks/{code}/configs", status_code=201, response_model=ConfigVersionOut)
async def config_set(request: Request, code: str, body: ConfigIn) -> Any:
    box = _box(request)

    def work(s: Session, actor: str) -> ConfigVersionOut:
        row = configs.store(s, code, body.config, actor, body.comment, box=box)
        return ConfigVersionOut(**configs.version_summary(row))

    return _created(await admin_call(request, work))


def _config_out(code: str, version: int | None, box: SecretBox, secrets: bool) -> Any:
    def work(s: Session, _actor: str) -> ConfigOut:
        row = configs.get(s, code, version)
        shown = json.loads(configs.shown_body(row, box, secrets=secrets))
        return ConfigOut(network=code, config=shown, **configs.version_summary(row))

    return work


@router.get("/networks/{code}/config", response_model=ConfigOut, summary="The latest config, as served")
async def config_latest(request: Request, code: str, show_secrets: ShowSecrets = False) -> Any:
    return await admin_call(request, _config_out(code, None, _box(request), show_secrets))


@router.get("/networks/{code}/configs/{version}", response_model=ConfigOut)
async def config_show(request: Request, code: str, version: Annotated[int, Path(ge=1, le=2**31 - 1)],
                      show_secrets: ShowSecrets = False) -> Any:
    return await admin_call(request, _config_out(code, version, _box(request), show_secrets))


@router.get("/networks/{code}/diff", response_model=DiffOut, summary="Unified diff between two versions")
async def config_diff(
    request: Request,
    code: str,
    from_version: Annotated[int | None, Query(alias="from", ge=1, le=2**31 - 1)] = None,
    to_version: Annotated[int | None, Query(alias="to", ge=1, le=2**31 - 1)] = None,
    show_secrets: ShowSecrets = False,
) -> Any:
    box = _box(request)
    return await admin_call(request, lambda s, _a: DiffOut(
        network=code, diff=configs.diff(s, code, from_version, to_version, box=box, secrets=show_secrets)))


@router.post("/networks/{code}/rollback", status_code=201, response_model=ConfigVersionOut)
async def config_rollback(request: Request, code: str, body: RollbackIn) -> Any:
    box = _box(request)

    def work(s: Session, actor: str) -> ConfigVersionOut:
        return ConfigVersionOut(**configs.version_summary(configs.rollback(s, code, body.to, actor, box=box)))

    return _created(await admin_call(request, work))


@router.get("/tokens", response_model=list[TokenOut])
async def list_tokens(request: Request, client: Annotated[str, Query(min_length=1, max_length=200)]) -> Any:
    return await admin_call(request, lambda s, _a: [tokens.summary(t) for t in tokens.of_client(s, client)])


@router.post("/tokens", status_code=201, response_model=TokenIssued)
async def issue_token(request: Request, body: TokenIn) -> Any:
    def work(s: Session, actor: str) -> TokenIssued:
        scopes = [str(x) for x in body.scopes] if body.scopes else None
        clear, token = tokens.issue(s, body.client, actor, networks=body.networks, scopes=scopes,
                                    expires_at=body.expires_at)
        return TokenIssued(token=clear, **tokens.summary(token))

    return _created(await admin_call(request, work))


@router.post("/tokens/{token_id}/revoke", response_model=TokenOut)
async def revoke_token(request: Request, token_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> Any:
    def work(s: Session, actor: str) -> TokenOut:
        token = tokens.revoke(s, token_id, actor)
        s.refresh(token)
        return TokenOut(**tokens.summary(token))

    return await admin_call(request, work)


@router.get("/admin-tokens", response_model=list[AdminTokenOut])
async def list_admin_tokens(request: Request) -> Any:
    return await admin_call(request, lambda s, _a: [admin_tokens.summary(t) for t in admin_tokens.all_tokens(s)])


@router.post("/admin-tokens", status_code=201, response_model=AdminTokenIssued)
async def issue_admin_token(request: Request, body: AdminTokenIn) -> Any:
    def work(s: Session, actor: str) -> AdminTokenIssued:
        clear, row = admin_tokens.issue(s, body.name, actor, body.expires_at)
        return AdminTokenIssued(token=clear, **admin_tokens.summary(row))

    return _created(await admin_call(request, work))


@router.post("/admin-tokens/{token_id}/revoke", response_model=AdminTokenOut)
async def revoke_admin_token(request: Request, token_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> Any:
    return await admin_call(request, lambda s, actor: admin_tokens.summary(admin_tokens.revoke(s, token_id, actor)))


@router.get("/audit", response_model=list[AuditOut])
async def audit_list(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    target: Annotated[str | None, Query(max_length=200)] = None,
) -> Any:
    return await admin_call(request, lambda s, _a: [audit.summary(e) for e in audit.entries(s, limit, target)])


@router.get("/fleet", response_model=list[fleet_views.NetworkView], summary="What /fleet shows, as JSON")
async def fleet(request: Request) -> Any:
    return await admin_call(request, lambda s, _a: fleet_views.overview(s, datetime.now(UTC)))


for _route in router.routes:
    if isinstance(_route, APIRoute):
        _route.openapi_extra = {"security": [{"AdminBearer": []}]}
