"""INI files rendered from a template with some of the endpoint's own values carried over
(CliSiTef.ini: the PinPad port and message of each checkout).

Pure functions on text. Decode files with `decode_exact` and encode the result with
`encode_exact`: any byte sequence (UTF-8, Latin-1, CRLF) then round-trips unchanged, so carried
values and every line not touched are kept byte for byte.

Reading rules (what the CliSiTef library and the original action accept):
- a line is a comment when its first non-blank character is `#` or `;`; comments are ignored;
- `[Name]` (blanks around allowed) starts a section; section names and keys compare without
  regard to case; lines before the first header belong to no section;
- a key's value is everything after the first `=` of its line, as is (blanks, further `=`,
  trailing blanks), without the line ending;
- `find_value(section, key)`: the first active `key=` line inside `section`; when the file has
  no such section, the first one before any section header (a flat file). Never another
  section's: the original searched the whole file and could carry `[PinPad]`'s `Porta` into
  `[PinPadCompartilhado]`.

Rendering (`carry_over`): in the template, the first active `key=` line of `section` gets the
carried value after its `=`; the key's spelling, the line ending and every other line are the
template's. A value the endpoint does not have keeps the template's; a key the template lacks
is reported, never invented.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

ENCODING = "utf-8"
ERRORS = "surrogateescape"


def decode_exact(data: bytes) -> str:
    """Text whose `encode_exact` gives back exactly `data`, whatever its encoding."""
    return data.decode(ENCODING, ERRORS)


def encode_exact(text: str) -> bytes:
    return text.encode(ENCODING, ERRORS)


@dataclass(frozen=True)
class _Line:
    index: int
    body: str  # without the line ending
    ending: str  # "\n", "\r\n", "\r" or "" (last line without one)
    section: str | None  # lower-cased name of the section the line is in


def _split(text: str) -> Iterator[tuple[str, str]]:
    for raw in text.splitlines(keepends=True):
        body = raw.rstrip("\r\n")
        yield body, raw[len(body):]


def _header(body: str) -> str | None:
    stripped = body.strip().lstrip("\ufeff").strip()
    if len(stripped) >= 2 and stripped[0] == "[" and stripped[-1] == "]":
        return stripped[1:-1].strip().lower()
    return None


def _lines(text: str) -> list[_Line]:
    out: list[_Line] = []
    section: str | None = None
    for index, (body, ending) in enumerate(_split(text)):
        name = _header(body)
        if name is not None:
            section = name
        out.append(_Line(index, body, ending, section))
    return out


def _is_comment(body: str) -> bool:
    stripped = body.lstrip().lstrip("\ufeff")
    return stripped.startswith(("#", ";"))


def _key_value(body: str) -> tuple[str, str] | None:
    """(key as written, value) of an active `key=value` line, else None."""
    if _is_comment(body) or _header(body) is not None or "=" not in body:
        return None
    key, _, value = body.partition("=")
    key = key.strip().lstrip("\ufeff").strip()
    return (key, value) if key else None


def _matches(line: _Line, key: str) -> str | None:
    kv = _key_value(line.body)
    if kv is not None and kv[0].lower() == key.lower():
        return kv[1]
    return None


def find_value(text: str, section: str, key: str) -> str | None:
    """The value of `key` in `section` (in a file without that section: before any header);
    None when absent."""
    lines = _lines(text)
    wanted = section.lower()
    where = wanted if any(line.section == wanted for line in lines) else None
    for line in lines:
        if line.section == where and (value := _matches(line, key)) is not None:
            return value
    return None


def replace_value(text: str, section: str, key: str, value: str) -> str | None:
    """`text` with the first active `key=` line of `section` carrying `value`; None when the
    section has no such line."""
    if "\n" in value or "\r" in value:
        raise ValueError(f"an INI value is one line: {value!r}")
    lines = _lines(text)
    wanted = section.lower()
    for line in lines:
        if line.section == wanted and _matches(line, key) is not None:
            prefix = line.body.partition("=")[0]
            parts = [ln.body + ln.ending for ln in lines]
            parts[line.index] = f"{prefix}={value}{line.ending}"
            return "".join(parts)
    return None


@dataclass(frozen=True)
class CarriedKey:
    section: str
    key: str


@dataclass
class CarryOver:
    """The rendered text and what happened to each carried key."""

    text: str
    carried: dict[str, str] = field(default_factory=dict)  # "Section.Key" -> value taken from the endpoint
    template_values: dict[str, str] = field(default_factory=dict)  # endpoint lacks it: the template's kept
    missing_in_template: list[str] = field(default_factory=list)  # nothing to carry into

    def notes(self) -> list[str]:
        out = [f"{name} not on the endpoint: template value kept" for name in self.template_values]
        out += [f"{name} not in the template: not carried" for name in self.missing_in_template]
        return out


def carry_over(template: str, current: str | None, keys: Sequence[CarriedKey]) -> CarryOver:
    """Render `template` with the values of `keys` found in `current` (the endpoint's file,
    None when it has none)."""
    result = CarryOver(template)
    for item in keys:
        name = f"{item.section}.{item.key}"
        template_value = find_value(template, item.section, item.key)
        value = find_value(current, item.section, item.key) if current is not None else None
        if value is None:
            if template_value is None:
                result.missing_in_template.append(name)
            else:
                result.template_values[name] = template_value
            continue
        rendered = replace_value(result.text, item.section, item.key, value)
        if rendered is None:
            result.missing_in_template.append(name)
            continue
        result.text = rendered
        result.carried[name] = value
    return result
