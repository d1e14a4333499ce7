"""`flageemonitor-server signing list|rotate|retire`: the keys that sign served configs."""

from __future__ import annotations

from typing import Annotated

import typer

from flageemonitor.core.signing import format_pinned
from flageemonitor.server.cli.common import DbUrl, JsonOut, actor, fail, print_json, session, settings

signing_app = typer.Typer(help="The Ed25519 keys that sign served configs.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(signing_app, name="signing")


@signing_app.command("list")
def signing_list(database_url_opt: DbUrl = None, as_json: JsonOut = False) -> None:
    """The valid keys, the signing one first, and the FLAGEEMONITOR_CONFIG_KEYS value that pins them."""
    from flageemonitor.server.core.signer import Signer, SigningKeyError

    signer = Signer(settings(database_url_opt).signing_file)
    try:
        keys = signer.public_keys()
    except SigningKeyError as exc:
        raise fail(str(exc)) from None
    if as_json:
        print_json({"key_file": str(signer.key_file), "signing": keys[0].id,
                    "keys": [{"id": k.id, "public_key": k.b64} for k in keys], "pin": format_pinned(keys)})
        return
    for i, key in enumerate(keys):
        typer.echo(f"{key.id}  {'signs' if i == 0 else 'valid (overlap)'}  {key.b64}")
    typer.echo(f"FLAGEEMONITOR_CONFIG_KEYS={format_pinned(keys)}")


@signing_app.command("rotate")
def signing_rotate(database_url_opt: DbUrl = None, as_json: JsonOut = False) -> None:
    """A new key signs from now on; the previous ones stay valid until retired.

    Proxies that trust an old key learn the new one from the key list the server serves signed
    by every valid key. Retire the old key once every proxy has fetched a config since.
    """
    from flageemonitor.server.core.signer import Signer, SigningKeyError
    from flageemonitor.server.services import signing

    signer = Signer(settings(database_url_opt).signing_file)
    try:
        signer.public_keys()  # a broken key file is reported before anything changes
        with session(database_url_opt) as s:
            new = signing.rotate(s, signer, actor())
    except SigningKeyError as exc:
        raise fail(str(exc)) from None
    if as_json:
        print_json({"signing": new.id, "public_key": new.b64})
    else:
        typer.echo(f"key {new.id} signs configs from now on; the previous keys stay valid until retired")


@signing_app.command("retire")
def signing_retire(
    key_id: Annotated[str, typer.Argument(metavar="KEYID", help="the key id shown by 'signing list'")],
    database_url_opt: DbUrl = None,
    as_json: JsonOut = False,
) -> None:
    """Remove a key that no longer signs: proxies stop trusting it at their next config update."""
    from flageemonitor.server.core.signer import Signer, SigningKeyError
    from flageemonitor.server.services import signing

    signer = Signer(settings(database_url_opt).signing_file)
    try:
        with session(database_url_opt) as s:
            gone = signing.retire(s, signer, key_id.strip().lower(), actor())
    except SigningKeyError as exc:
        raise fail(str(exc)) from None
    if as_json:
        print_json({"retired": gone.id})
    else:
        typer.echo(f"key {gone.id} retired; it no longer vouches for configs or key lists")
