"""`flageemonitor-server secrets rotate`: a new key for the config secrets stored at rest."""

from __future__ import annotations

import typer

from flageemonitor.server.cli.common import DbUrl, secret_box, session

secrets_app = typer.Typer(help="The key that encrypts config secrets at rest.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(secrets_app, name="secrets")


@secrets_app.command("rotate")
def rotate(database_url_opt: DbUrl = None) -> None:
    """Put a new key first in the key file and re-encrypt every stored config version with it.

    The previous keys stay in the file (they still decrypt) until you delete their lines; do that
    once every server sharing the database has the new file.
    """
    box = secret_box(database_url_opt)
    box.rotate_key()
    from flageemonitor.server.services import configs

    with session(database_url_opt) as s:
        count = configs.reseal_all(s, box)
    typer.echo(f"new key first in {box.key_file}; {count} config version(s) re-encrypted with it")
