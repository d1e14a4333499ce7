"""Config signing keys as admin operations: rotate and retire are audited and bump the change
generation, so every worker re-reads the key file before it serves the next config."""

from __future__ import annotations

from sqlalchemy.orm import Session

from flageemonitor.core.signing import PublicKey
from flageemonitor.server.core.signer import Signer
from flageemonitor.server.services import audit, generation

TARGET = "signing"


def rotate(s: Session, signer: Signer, actor: str) -> PublicKey:
    new = signer.rotate()
    audit.record(s, actor, "signing.rotate", TARGET, f"new signing key {new.id}")
    generation.bump(s)
    return new


def retire(s: Session, signer: Signer, key_id: str, actor: str) -> PublicKey:
    gone = signer.retire(key_id)
    audit.record(s, actor, "signing.retire", TARGET, f"retired key {gone.id}")
    generation.bump(s)
    return gone
