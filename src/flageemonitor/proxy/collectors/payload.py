"""A collector's payload, declared once as fields and rendered to JSON either by the database or
by Python.

Servers with `JSON_QUOTE` (MariaDB 10.2.3+, MySQL 5.7.8+) build each row's JSON text themselves, so
the proxy only joins rows into batches (several times faster than decoding every column in Python);
older servers get the plain columns and Python renders the same JSON. Both renderings give the
same values (a test compares them on real rows); NULL stays null, nothing is invented.

Kinds: `int` (an integer column), `float` (a number), `text` (text, null kept), `text0` (text,
null as ""), `iso` (DATETIME as `YYYY-MM-DDTHH:MM:SS`), `date` (`YYYY-MM-DD`), `modelo` (characters
21-22 of an NF-e access key as a number, 0 when absent), `rede` (the network code), `one` (1).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # field and column names reach SQL text
KINDS = ("int", "float", "text", "text0", "iso", "date", "modelo", "rede", "one")


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    column: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown field kind {self.kind!r}")
        if self.kind not in ("rede", "one") and not self.column:
            raise ValueError(f"field {self.name} needs a column")
        if not _NAME.match(self.name) or (self.column and not _NAME.match(self.column)):
            raise ValueError(f"field {self.name!r} / column {self.column!r}: letters, digits and _ only")


def columns(fields: Sequence[Field]) -> list[str]:
    """The raw columns the Python rendering needs, in first-use order."""
    out: list[str] = []
    for f in fields:
        if f.column and f.column not in out:
            out.append(f.column)
    return out


# --------------------------------------------------------------------------- in the database
_DATETIME = "'%%Y-%%m-%%dT%%H:%%i:%%s'"  # doubled %: the driver formats parameters with %


def _quoted(expr: str) -> str:
    """A text expression as a JSON string, SQL NULL as JSON null."""
    return f"COALESCE(JSON_QUOTE({expr}), 'null')"


def _sql(f: Field) -> tuple[str, list[Any]]:
    """The SQL expression giving the field's value as JSON text (never SQL NULL). Only JSON_QUOTE's
    output, integers, decimals and fixed formats reach the text: a stored value cannot break out."""
    c = f.column
    return {
        "int": (f"COALESCE(CAST({c} AS SIGNED), 'null')", []),
        # a DECIMAL stays decimal (its text is a JSON number: no costly double formatting); `+ 0.0`
        # gives a whole-number column a decimal point, so the BI always sees a float
        "float": (f"COALESCE({c} + 0.0, 'null')", []),
        "text": (_quoted(f"CAST({c} AS CHAR)"), []),
        "text0": (f"JSON_QUOTE(COALESCE(CAST({c} AS CHAR), ''))", []),
        "iso": (f"COALESCE(CONCAT('\"', DATE_FORMAT({c}, {_DATETIME}), '\"'), 'null')", []),
        "date": (f"COALESCE(CONCAT('\"', DATE_FORMAT({c}, '%%Y-%%m-%%d'), '\"'), 'null')", []),
        "modelo": (f"IF(SUBSTRING({c}, 21, 2) REGEXP '^[0-9][0-9]$', CAST(SUBSTRING({c}, 21, 2) AS UNSIGNED), 0)",
                   []),
        "one": ("1", []),
        "rede": ("JSON_QUOTE(%s)", []),  # bound by the caller
    }[f.kind]


def sql_json(fields: Sequence[Field], rede: str) -> tuple[str, list[Any]]:
    """`CONCAT('{"name":', expr, ',"name":', expr, ..., '}')` and its bound parameters (in order).

    Built with CONCAT and JSON_QUOTE rather than JSON_OBJECT: the same values at about a third of
    the database's CPU (MariaDB 10.11, 1,000,000 coupons)."""
    parts: list[str] = []
    params: list[Any] = []
    for n, f in enumerate(fields):
        expr, p = _sql(f)
        parts.append("'" + ("{" if n == 0 else ",") + f'"{f.name}":' + "'")
        parts.append(expr)
        params.extend([rede] if f.kind == "rede" else p)
    parts.append("'}'" if fields else "'{}'")
    return f"CONCAT({', '.join(parts)})", params


def supports_json(server_info: str) -> bool:
    """Whether a server (its version string) has JSON_QUOTE. MariaDB announces itself to old
    clients as `5.5.5-10.x.y-MariaDB`: its own version is the one before `-MariaDB`."""
    text = server_info or ""
    mariadb = re.search(r"(\d+)\.(\d+)\.(\d+)-MariaDB", text, re.IGNORECASE)
    if mariadb:
        return tuple(int(x) for x in mariadb.groups()) >= (10, 2, 3)
    mysql = re.match(r"(\d+)\.(\d+)\.(\d+)", text)
    return mysql is not None and tuple(int(x) for x in mysql.groups()) >= (5, 7, 8)


# --------------------------------------------------------------------------- in Python
def _int(v: Any) -> Any:
    return None if v is None else int(v)


def _float(v: Any) -> Any:
    return None if v is None else float(v)


def _text(v: Any) -> Any:
    return None if v is None else str(v)


def _modelo(v: Any) -> int:
    part = ("" if v is None else str(v))[20:22]
    return int(part) if len(part) == 2 and part.isdigit() else 0


_PY: dict[str, Callable[[Any], Any]] = {
    "int": _int, "float": _float, "text": _text, "text0": lambda v: "" if v is None else str(v),
    "iso": lambda v: None if v is None else str(v)[:19].replace(" ", "T", 1),
    "date": lambda v: None if v is None else str(v)[:10], "modelo": _modelo,
}


def python_json(fields: Sequence[Field], rede: str) -> Callable[[Sequence[Any]], str]:
    """A function from a row of `columns(fields)` to the row's JSON text."""
    index = {c: i for i, c in enumerate(columns(fields))}
    plan = [(f.name, _PY.get(f.kind), index.get(f.column or "", -1), f.kind) for f in fields]
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def render(row: Sequence[Any]) -> str:
        out: dict[str, Any] = {}
        for name, fn, i, kind in plan:
            if kind == "rede":
                out[name] = rede
            elif kind == "one":
                out[name] = 1
            else:
                assert fn is not None
                out[name] = fn(row[i])
        return dumps(out)

    return render
