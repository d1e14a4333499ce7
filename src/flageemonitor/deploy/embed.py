"""Keep the installers self-contained: the wrapper files are embedded verbatim in them.

An installer template marks each embedded file with a line `# >>> embedded: <relative path>`;
the next line opens a literal block (a quoted here-doc in shell, a single-quoted here-string in
PowerShell) and the block ends at its terminator line. `embed_all()` rewrites every block from the
current wrapper files; a test checks the committed templates are up to date. Run
`python -m flageemonitor.deploy.embed` after editing a wrapper.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARKER = re.compile(r"^\s*# >>> embedded: (?P<path>\S+)")
TEMPLATES = ("linux/install.sh.in", "windows/install.ps1.in")
TERMINATORS = {".sh.in": "FLAGEEMONITOR_WRAPPER_EOF", ".ps1.in": "'@"}


class EmbedError(ValueError):
    """A template or wrapper cannot be embedded safely."""


def terminator_for(template: str) -> str:
    for suffix, term in TERMINATORS.items():
        if template.endswith(suffix):
            return term
    raise EmbedError(f"no embedding rule for {template}")


def embed(template_text: str, terminator: str, read: dict[str, str]) -> str:
    """Return `template_text` with every marked block replaced by the text of its file."""
    lines = template_text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        match = MARKER.match(line)
        i += 1
        if not match:
            continue
        rel = match.group("path")
        if rel not in read:
            raise EmbedError(f"embedded file not found: {rel}")
        body = read[rel].rstrip("\n").split("\n")
        if terminator in (b.rstrip() for b in body):
            raise EmbedError(f"{rel} contains the terminator line {terminator!r}")
        out.append(lines[i])  # the opener
        i += 1
        while i < len(lines) and lines[i].rstrip() != terminator:
            i += 1
        if i >= len(lines):
            raise EmbedError(f"block for {rel} has no terminator {terminator!r}")
        out.extend(body)
    return "\n".join(out)


def _files_for(template_text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in template_text.split("\n"):
        match = MARKER.match(line)
        if match:
            rel = match.group("path")
            path = HERE / rel
            if not path.is_file():
                raise EmbedError(f"embedded file not found: {rel}")
            found[rel] = path.read_text(encoding="utf-8")
    return found


def rendered_template(template: str) -> str:
    text = (HERE / template).read_text(encoding="utf-8")
    return embed(text, terminator_for(template), _files_for(text))


def embed_all() -> list[str]:
    """Rewrite the templates whose embedded blocks are stale; returns the ones changed."""
    changed = []
    for template in TEMPLATES:
        path = HERE / template
        new = rendered_template(template)
        if new != path.read_text(encoding="utf-8"):
            path.write_bytes(new.encode("utf-8"))
            changed.append(template)
    return changed


if __name__ == "__main__":
    for name in embed_all():
        print(f"updated {name}")
    sys.exit(0)
