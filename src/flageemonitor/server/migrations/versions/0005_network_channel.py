"""Each network's image channel: `stable` (every existing network), `canary`, or a pinned version.

`networks.image_channel` holds what the operator set (`stable`, `canary`, a version tag or a
digest `sha256:…`); the server serves it in the config as `PARAM_IMAGE_CHANNEL`/`PARAM_IMAGE_TAG`.

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("networks", sa.Column("image_channel", sa.String(80), nullable=False, server_default="stable"))


def downgrade() -> None:
    with op.batch_alter_table("networks") as batch:
        batch.drop_column("image_channel")
