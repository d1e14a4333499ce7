"""Per-network config version counter; network codes unique whatever their case.

`networks.config_seq` is the last config version allocated for the network: a new version is
taken with one UPDATE of that row (a row lock on PostgreSQL, the write lock on SQLite), so
concurrent writers never compute the same version. Existing networks start at their highest
stored version. Codes become unique case-insensitively (`NET1` and `net1` cannot both exist);
a database that already holds such a pair is not migrated, and the message names the pair.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flageemonitor.server.errors import MigrationRefused

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    clashes = conn.execute(sa.text(
        "SELECT lower(code), count(*) FROM networks GROUP BY lower(code) HAVING count(*) > 1"
    )).all()
    if clashes:
        names = ", ".join(f"{folded} ({count} networks)" for folded, count in clashes)
        raise MigrationRefused(
            f"network codes that differ only in case: {names}; rename all but one before upgrading"
        )
    op.add_column("networks", sa.Column("config_seq", sa.Integer, nullable=False, server_default="0"))
    conn.execute(sa.text(
        "UPDATE networks SET config_seq = COALESCE("
        "(SELECT MAX(version) FROM config_versions WHERE config_versions.network_id = networks.id), 0)"
    ))
    op.create_index("uq_networks_code_folded", "networks", [sa.text("lower(code)")], unique=True)


def downgrade() -> None:
    op.drop_index("uq_networks_code_folded", table_name="networks")
    with op.batch_alter_table("networks") as batch:
        batch.drop_column("config_seq")
