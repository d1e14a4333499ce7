"""`flageemonitor host update-image | update-config | hold | follow | explain-missing`: the host update
engine (`flageemonitor.deploy.host`), run by the host wrappers in a one-shot container of this
image with the engine socket and the installer's env file mounted.

Exit codes: 0 done, 1 error (one line says which), 2 rolled back (update-image);
update-config passes the in-container command's code through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flageemonitor.deploy.host.settings import ENGINE_ENV_FILE

EnvFile = Annotated[Path, typer.Option("--env-file", help="the installer's env file (as mounted)")]

host_app = typer.Typer(name="host", help="Host side: update the runtime and Watchtower through the engine API.",
                       no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Registers the host engine commands."""
    app.add_typer(host_app)


def _run(env_file: Path, action: str, *args: object) -> None:
    import docker
    import docker.errors

    from flageemonitor.deploy.host.engine import Engine, EngineError
    from flageemonitor.deploy.host.settings import HostSettings, SettingsError

    try:
        engine = Engine(docker.from_env(), HostSettings.load(env_file))
        code = getattr(engine, action)(*args)
    except SettingsError as exc:
        typer.echo(f"flageemonitor-host: error: {exc}", err=True)
        raise typer.Exit(1) from None
    except EngineError as exc:
        typer.echo(f"flageemonitor-host: error: {exc}", err=True)
        raise typer.Exit(1) from None
    except docker.errors.DockerException as exc:
        typer.echo(f"flageemonitor-host: error: the container engine: {exc}", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(int(code))


@host_app.command("update-image", help="Pull; swap the runtime once the new one is healthy, else roll back; "
                  "make sure Watchtower is present and right.")
def update_image(env_file: EnvFile = Path(ENGINE_ENV_FILE)) -> None:
    _run(env_file, "update_image")


@host_app.command("update-config", help="The validated config refresh in the runtime (then SIGHUP), or in a "
                  "one-shot container when it is not running.",
                  context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def update_config(ctx: typer.Context, env_file: EnvFile = Path(ENGINE_ENV_FILE)) -> None:
    _run(env_file, "update_config", list(ctx.args))


@host_app.command("hold", help="After a rollback: poll for another image, update through the health gate, "
                  "then start Watchtower again.")
def hold(held_image: Annotated[str, typer.Option("--held-image", help="the image ID that was rolled back")],
         env_file: EnvFile = Path(ENGINE_ENV_FILE)) -> None:
    _run(env_file, "hold", held_image)


@host_app.command("follow", help="Every FLAGEEMONITOR_CHANNEL_INTERVAL seconds: move the runtime through the "
                  "health gate when the config names another image channel (what <runtime>-channel runs).")
def follow(env_file: EnvFile = Path(ENGINE_ENV_FILE)) -> None:
    _run(env_file, "follow")


@host_app.command("explain-missing", help="Exit 0 when the container exists; else say how to fix it.")
def explain_missing(name: Annotated[str, typer.Argument(help="the runtime's or Watchtower's name")],
                    env_file: EnvFile = Path(ENGINE_ENV_FILE)) -> None:
    _run(env_file, "explain_missing", name)
