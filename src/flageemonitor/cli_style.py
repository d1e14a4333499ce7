"""What both command lines (`flageemonitor`, `flageemonitor-server`) share in how they look and fail.

- `-h` and `--help`, `--version`, shell completion (`--install-completion`);
- plain metavars, as operators know them from other tools: `ACTION`, `CODE`, `FILE`, `TEXT`
  (this Typer version prints `{action}` and `<str>`; `plain_metavars` restores click's style);
- `--json` errors are JSON: `run_app` prints `{"error": ..., "exit_code": N}` on stdout for any
  error (ours or a usage error) when `--json` is on the command line, and one `error:` line on
  stderr otherwise.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, _TyperParameter

CONTEXT = {"help_option_names": ["-h", "--help"]}

_TYPE_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "bool": "", "path": "PATH"}


def _display_type(self: _TyperParameter, ctx: Any) -> str:
    if getattr(self, "is_flag", False) or getattr(self, "count", False):
        return ""
    if self.metavar is not None:
        return "" if isinstance(self, TyperArgument) else self.metavar  # an argument's name is its metavar
    kind = self.type_descriptor
    if kind.is_choice:
        return "[" + "|".join(str(c) for c in kind.choices or ()) + "]"
    if kind.is_path:
        return "PATH"
    name = str(getattr(getattr(self, "type", None), "name", "text"))
    return _TYPE_NAMES.get(name, name.upper().replace(" RANGE", ""))


def _usage_display_name(self: TyperArgument) -> str:
    name = self.display_name_raw.upper()
    name = name if self.required else f"[{name}]"
    return name + ("..." if self.nargs != 1 else "")


def plain_metavars() -> None:
    """Patch Typer's help rendering once (idempotent)."""
    _TyperParameter.display_type = _display_type  # type: ignore[method-assign]
    TyperArgument._usage_display_name = _usage_display_name  # type: ignore[method-assign]


def show_version(value: bool) -> None:
    """`--version` callback (eager): print the product version and exit 0."""
    if value:
        from flageemonitor import __version__

        typer.echo(__version__)
        raise typer.Exit(0)


VersionOpt = Annotated[bool, typer.Option("--version", callback=show_version, is_eager=True,
                                          help="print the version and exit")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="more log output (debug)")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="warnings and errors only")]


def json_requested(argv: list[str]) -> bool:
    return "--json" in argv


def error_json(message: str, exit_code: int) -> str:
    return json.dumps({"error": message, "exit_code": exit_code}, ensure_ascii=False)


def emit_error(message: str, exit_code: int, prefix: str = "error") -> None:
    """One line: JSON on stdout under --json, `prefix: message` on stderr otherwise."""
    if json_requested(sys.argv[1:]):
        typer.echo(error_json(message, exit_code))
    else:
        typer.echo(f"{prefix}: {message}", err=True)


def run_app(app: typer.Typer, prog_name: str, argv: list[str] | None = None) -> None:
    """Run a Typer app; usage errors become JSON under --json. Exits with the command's code."""
    args = sys.argv[1:] if argv is None else argv
    try:
        result: Any = app(args=args, prog_name=prog_name, standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # usage errors: unknown option, missing value, bad parameter
        code = int(getattr(exc, "exit_code", 2))
        if json_requested(args):
            typer.echo(error_json(exc.format_message(), code))
        elif hasattr(exc, "show"):
            exc.show()
        else:
            typer.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)
