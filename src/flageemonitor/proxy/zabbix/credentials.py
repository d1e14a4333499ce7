"""SSH credentials kept in a Zabbix host's inventory `notes` field.

Format (first non-empty line of `notes`): `user,password[,port]`. The rule for commas:

- the first field is the user;
- with three or more fields, a last field made only of digits (1..65535) is the SSH port;
- everything between the user and the port (or to the end) is the password, commas included,
  with surrounding whitespace trimmed.

So `root,pa,ss,2222` is user `root`, password `pa,ss`, port 2222, and `root,a,b` is password
`a,b` on the default port. A password that itself ends in `,<digits>` must be followed by an
explicit port: `root,secret,123,22`. Empty fields fall back to the config defaults
(`PARAM_SSH_USER`, `PARAM_SSH_PASSWORD`, port 22).
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_SSH_PORT = 22


@dataclass(frozen=True)
class NotesCredentials:
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    port: int | None = None


def _port(text: str) -> int | None:
    text = text.strip()
    if text.isdigit() and 0 < int(text) < 65536:
        return int(text)
    return None


def parse_notes(notes: str | None) -> NotesCredentials:
    """Credentials from inventory notes; an empty or missing field is None (use the default)."""
    if not notes:
        return NotesCredentials()
    line = next((ln.strip() for ln in notes.splitlines() if ln.strip()), "")
    if not line:
        return NotesCredentials()
    fields = line.split(",")
    user = fields[0].strip() or None
    rest = fields[1:]
    port = None
    if len(rest) >= 2 and (p := _port(rest[-1])) is not None:
        port = p
        rest = rest[:-1]
    password = ",".join(rest).strip() or None
    return NotesCredentials(user=user, password=password, port=port)
